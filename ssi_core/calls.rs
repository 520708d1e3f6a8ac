// SPDX-License-Identifier: GPL-2.0

//! Requests that wait for an answer (RPCs), and round-trip probes.
//!
//! Every outstanding request is in the `PendingTable` of `rust/src/rpc.rs` with a
//! deadline; an answer completes it only if it comes from the node asked, with the
//! request's sequence number. The caller sleeps on its own [`Waiter`] with a timeout, so
//! no request waits forever: it ends with the answer, `ETIMEDOUT`, `EHOSTDOWN` (the node
//! went down), or `ERESTARTSYS` (a signal).
//!
//! Lock order: `PENDING`, then a waiter's lock. A caller never holds its waiter's lock
//! while taking `PENDING`.

use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{global_lock, Arc, CondVar, CondVarTimeoutResult, Mutex},
    time::msecs_to_jiffies,
};

use crate::shared::rpc::PendingTable;
use crate::shared::transport::SSI_TRANSPORT_F_EMULATED_READS;
use crate::shared::wire::{Header, Message};
use crate::{clock, errno, nodes, transmit};

/// Most requests outstanding at once, node-wide.
const MAX_PENDING: usize = 128;
/// How long a probe may take before it counts as a timeout.
const PROBE_TIMEOUT_MS: u64 = 2000;

/// Where the answer to a request goes.
#[pin_data]
struct Waiter {
    /// `None` until answered; then the answer frame (or why there is none).
    #[pin]
    answer: Mutex<Option<Result<KVec<u8>>>>,
    #[pin]
    answered: CondVar,
}

impl Waiter {
    fn finish(&self, answer: Result<KVec<u8>>) {
        *self.answer.lock() = Some(answer);
        self.answered.notify_all();
    }
}

enum Pending {
    /// A caller waits.
    Call(Arc<Waiter>),
    /// A round-trip probe sent at this time (ns).
    Probe(u64),
}

global_lock! {
    // SAFETY: `init` runs in module init before any frame or ioctl can arrive.
    unsafe(uninit) static PENDING: Mutex<PendingTable<Pending, MAX_PENDING>> = PendingTable::new();
}

/// Initialises the table. Called once from module init.
pub(crate) fn init() {
    // SAFETY: Called exactly once, from the module initialiser, before any other use.
    unsafe { PENDING.init() };
}

/// Core's own request timeouts are sized for RDMA; over a link whose transport
/// emulates reads (a byte-serial bus such as the GPIO cable, bytes per second rather
/// than gigabytes) a request may wait seconds for the bus: such a link gets at least
/// `SLOW_LINK_TIMEOUT_MS`.
pub(crate) fn link_timeout(node: u32, timeout_ms: u32) -> u32 {
    let slow = crate::nodes::route(node)
        .and_then(crate::registry::transport)
        .is_some_and(|t| t.flags() & SSI_TRANSPORT_F_EMULATED_READS != 0);
    if slow {
        timeout_ms.max(SLOW_LINK_TIMEOUT_MS)
    } else {
        timeout_ms
    }
}

/// See [`link_timeout`].
pub(crate) const SLOW_LINK_TIMEOUT_MS: u32 = 180_000;

/// Sends `msg` to `node` and waits at most `timeout_ms` for the answer; returns the
/// answer frame (decode it with `wire::decode`). An `Error` answer becomes its errno.
/// A signal ends the wait with `ERESTARTSYS`.
pub(crate) fn call(node: u32, msg: &Message<'_>, timeout_ms: u32) -> Result<KVec<u8>> {
    call_with(node, msg, timeout_ms, true)
}

/// Like [`call`], but signals do not end the wait: for steps that must not be left
/// half done (a page fault carrying out a directory plan). The wait still ends by the
/// deadline: [`expire`] fails the request then.
pub(crate) fn call_uninterruptible(
    node: u32,
    msg: &Message<'_>,
    timeout_ms: u32,
) -> Result<KVec<u8>> {
    call_with(node, msg, timeout_ms, false)
}

fn call_with(
    node: u32,
    msg: &Message<'_>,
    timeout_ms: u32,
    interruptible: bool,
) -> Result<KVec<u8>> {
    let (seq, waiter, deadline) = start(node, msg, timeout_ms)?;
    finish(node, seq, &waiter, deadline, interruptible)
}

/// Sends every message of `msgs` to `node` before waiting for any answer (they travel
/// pipelined), then waits for all of them, each by the same deadline. Returns one result
/// per message, in order.
pub(crate) fn call_many(
    node: u32,
    msgs: &[Message<'_>],
    timeout_ms: u32,
    interruptible: bool,
) -> Result<KVec<Result<KVec<u8>>>> {
    let mut started = KVec::with_capacity(msgs.len(), GFP_KERNEL)?;
    for msg in msgs {
        started.push(start(node, msg, timeout_ms), GFP_KERNEL)?;
    }
    let mut results = KVec::with_capacity(msgs.len(), GFP_KERNEL)?;
    for s in started {
        let r = s.and_then(|(seq, waiter, deadline)| {
            finish(node, seq, &waiter, deadline, interruptible)
        });
        results.push(r, GFP_KERNEL)?;
    }
    Ok(results)
}

/// Registers a request for `msg` and sends it; returns its sequence number, its waiter
/// and its deadline (ms).
fn start(node: u32, msg: &Message<'_>, timeout_ms: u32) -> Result<(u32, Arc<Waiter>, u64)> {
    if !nodes::is_configured(node) {
        return Err(ENOENT);
    }
    if !nodes::is_up(node) {
        return Err(errno::ehostdown());
    }
    let waiter = Arc::pin_init(
        pin_init!(Waiter {
            answer <- new_mutex!(None),
            answered <- new_condvar!(),
        }),
        GFP_KERNEL,
    )?;
    let now = clock::now_ms();
    let timeout = u64::from(timeout_ms);
    // Ids are below 64.
    let seq = PENDING
        .lock()
        .start(node as u16, now, timeout, Pending::Call(waiter.clone()))
        .map_err(|_| EBUSY)?;
    if let Err(e) = transmit::send(node, msg, 0, seq) {
        PENDING.lock().cancel(seq);
        return Err(e);
    }
    Ok((seq, waiter, now + timeout))
}

/// Waits for the answer to request `seq` (see [`call`]).
fn finish(
    node: u32,
    seq: u32,
    waiter: &Waiter,
    deadline: u64,
    interruptible: bool,
) -> Result<KVec<u8>> {
    let mut answer = waiter.answer.lock();
    loop {
        if let Some(a) = answer.take() {
            return a;
        }
        let now = clock::now_ms();
        let signalled = if now >= deadline {
            false
        } else if !interruptible {
            // Woken by the answer, `fail_node` or `expire` (every heartbeat tick).
            waiter.answered.wait(&mut answer);
            false
        } else {
            // At most 60 s: fits in u32.
            let left = msecs_to_jiffies((deadline - now) as u32);
            matches!(
                waiter
                    .answered
                    .wait_interruptible_timeout(&mut answer, left),
                CondVarTimeoutResult::Signal { .. }
            )
        };
        if signalled || clock::now_ms() >= deadline {
            // Withdraw the request; if it was answered meanwhile, take the answer
            // (set under `PENDING` before the request left the table).
            drop(answer);
            let withdrawn = PENDING.lock().cancel(seq).is_some();
            answer = waiter.answer.lock();
            if withdrawn {
                if signalled {
                    return Err(ERESTARTSYS);
                }
                nodes::count(node, |c| c.timeouts += 1);
                return Err(ETIMEDOUT);
            }
        }
    }
}

/// Sends a round-trip probe to `node`; its answer sets the node's RTT.
pub(crate) fn probe(node: u32) {
    let now = clock::now_ms();
    let Ok(seq) = PENDING.lock().start(
        node as u16,
        now,
        PROBE_TIMEOUT_MS,
        Pending::Probe(clock::now_ns()),
    ) else {
        return;
    };
    if transmit::send(node, &Message::Ping { data: b"probe" }, 0, seq).is_err() {
        PENDING.lock().cancel(seq);
    }
}

/// An answer arrived: wake its caller (or record the probe's round trip).
pub(crate) fn complete(node: u32, h: &Header, msg: &Message<'_>, frame: &[u8]) {
    let mut pending = PENDING.lock();
    // Ids are below 64. Unmatched answers (late, or forged) are dropped.
    match pending.complete(node as u16, h.seq) {
        Some(Pending::Call(w)) => {
            let answer = match msg {
                Message::Error { errno } => Err(errno::from_peer(*errno)),
                _ => KVec::from_elem(0u8, frame.len(), GFP_KERNEL)
                    .map(|mut v| {
                        v.copy_from_slice(frame);
                        v
                    })
                    .map_err(Error::from),
            };
            w.finish(answer);
        }
        Some(Pending::Probe(sent_ns)) => {
            drop(pending);
            nodes::set_rtt(node, clock::now_ns().saturating_sub(sent_ns));
        }
        None => {}
    }
}

/// Fails every request to `node` (it went down or away).
pub(crate) fn fail_node(node: u32) {
    PENDING.lock().fail_node(node as u16, |_, p| {
        if let Pending::Call(w) = p {
            w.finish(Err(errno::ehostdown()));
        }
    });
}

/// Fails requests whose deadline passed (callers time out by themselves too; this
/// catches probes).
pub(crate) fn expire(now_ms: u64) {
    let mut timed_out = [0u32; 64];
    PENDING.lock().expire(now_ms, |node, _, p| {
        if let Some(n) = timed_out.get_mut(usize::from(node)) {
            *n += 1;
        }
        if let Pending::Call(w) = p {
            w.finish(Err(ETIMEDOUT));
        }
    });
    for (node, n) in timed_out.iter().enumerate() {
        if *n > 0 {
            nodes::count(node as u32, |c| c.timeouts += u64::from(*n));
        }
    }
}
