// SPDX-License-Identifier: GPL-2.0

//! Sending: encodes messages and hands frames to the transport that links each node,
//! counting what was sent. The bottom of cluster messaging: every part of core that
//! talks to other nodes sends through here, and nothing here looks at what comes in
//! (that is `dispatch.rs`).

use core::sync::atomic::{AtomicU32, Ordering};

use kernel::{prelude::*, time::delay::fsleep, time::Delta};

use crate::shared::wire::{self, Header, Message, FLAG_RESPONSE, MAX_FRAME};
use crate::{errno, nodes, registry, traffic};

static INCARNATION: AtomicU32 = AtomicU32::new(0);

/// Picks this load's incarnation (random, odd so never 0); before any hello is sent.
pub(crate) fn new_incarnation() {
    INCARNATION.store(crate::random::random_u32() | 1, Ordering::Relaxed);
}

/// This load of `ssi_core`, as announced in hellos: random, never 0.
pub(crate) fn incarnation() -> u32 {
    INCARNATION.load(Ordering::Relaxed)
}

/// Encodes `msg` and sends it to `node` over the node's link.
pub(crate) fn send(node: u32, msg: &Message<'_>, flags: u16, seq: u32) -> Result {
    let (self_id, _) = nodes::self_and_leader();
    let Some(tid) = nodes::route(node) else {
        nodes::count(node, |c| c.send_errors += 1);
        return Err(errno::enotconn());
    };
    // Ids are below 64.
    let dst = node as u16;
    // Most frames are small: encode on the stack, fall back to the heap for big ones.
    let mut small = [0u8; 320];
    let result = match wire::encode(msg, flags, self_id, dst, seq, &mut small) {
        Ok(len) => send_frame(tid, node, &small[..len]),
        Err(wire::WireError::BufferTooSmall) | Err(wire::WireError::TooLong) => {
            let mut big = KVec::with_capacity(MAX_FRAME, GFP_KERNEL)?;
            big.resize(MAX_FRAME, 0, GFP_KERNEL)?;
            let len =
                wire::encode(msg, flags, self_id, dst, seq, &mut big).map_err(|_| EMSGSIZE)?;
            send_frame(tid, node, &big[..len])
        }
        Err(_) => Err(EINVAL),
    };
    match result {
        Ok(()) => {
            nodes::count(node, |c| c.sent += 1);
            traffic::count(msg, true);
        }
        Err(_) => nodes::count(node, |c| c.send_errors += 1),
    }
    result
}

fn send_frame(tid: u32, node: u32, frame: &[u8]) -> Result {
    let t = registry::transport(tid).ok_or_else(errno::enotconn)?;
    t.send(node, frame)
}

/// Sends `msg`, which is not answered, trying again while `node`'s send queue is full
/// (it drains in microseconds): up to `tries` attempts, `pause` apart. Done also when
/// `node` is down (nothing to tell it any more); `EAGAIN` if every attempt failed.
pub(crate) fn send_retrying(node: u32, msg: &Message<'_>, tries: u32, pause: Delta) -> Result {
    for _ in 0..tries {
        if send(node, msg, 0, 0).is_ok() || !nodes::is_up(node) {
            return Ok(());
        }
        fsleep(pause);
    }
    Err(EAGAIN)
}

/// Answers request `h` with `msg`.
pub(crate) fn reply(h: &Header, msg: &Message<'_>) {
    // A lost answer shows up as a timeout on the other side.
    let _ = send(u32::from(h.src), msg, FLAG_RESPONSE, h.seq);
}

/// Answers request `h` with the message, or with an `Error` carrying the errno.
pub(crate) fn answer(h: &Header, result: Result<Message<'_>>) {
    answer_to(u32::from(h.src), h.seq, result);
}

/// Answers request number `seq` of `node` (see [`answer`]).
pub(crate) fn answer_to(node: u32, seq: u32, result: Result<Message<'_>>) {
    let msg = match result {
        Ok(msg) => msg,
        Err(e) => Message::Error {
            errno: e.to_errno().unsigned_abs(),
        },
    };
    // A lost answer shows up as a timeout on the other side.
    let _ = send(node, &msg, FLAG_RESPONSE, seq);
}
