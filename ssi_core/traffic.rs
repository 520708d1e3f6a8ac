// SPDX-License-Identifier: GPL-2.0

//! This node's message traffic by type: how many frames of each message type it sent
//! and received since `ssi_core` was loaded, service messages by service as well. The
//! per-node counters of `/proc/ssi/nodes` say how busy a link is; these say which part
//! of the protocol the traffic is (page faults, their plans and fetches, futex and
//! migration service calls, heartbeats), which is what a workload's cost is made of:
//! under emulation each message costs both nodes more CPU than its latency. Shown in
//! `/proc/ssi/messages`.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::shared::wire::{Message, MsgType};

/// Service ids below this one are counted each on its own; the rest together.
const SERVICE_SLOTS: usize = 16;

/// Sent and received counts of one kind of message.
struct Pair {
    sent: AtomicU32,
    received: AtomicU32,
}

impl Pair {
    const ZERO: Pair = Pair {
        sent: AtomicU32::new(0),
        received: AtomicU32::new(0),
    };

    fn bump(&self, sent: bool) {
        let c = if sent { &self.sent } else { &self.received };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn load(&self) -> (u32, u32) {
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

/// By type byte (`MsgType` as `u8`; slot 0 is unused).
static BY_TYPE: [Pair; MsgType::MAX_RAW + 1] = [Pair::ZERO; MsgType::MAX_RAW + 1];
/// Service messages by service id (slot 0: ids of `SERVICE_SLOTS` and above).
static BY_SERVICE: [Pair; SERVICE_SLOTS] = [Pair::ZERO; SERVICE_SLOTS];

/// Counts `msg`, which this node sent (`sent`) or received.
pub(crate) fn count(msg: &Message<'_>, sent: bool) {
    if let Some(p) = BY_TYPE.get(msg.msg_type() as usize) {
        p.bump(sent);
    }
    if let Message::Service { service, .. } = msg {
        let slot = usize::from(*service);
        BY_SERVICE[if slot < SERVICE_SLOTS { slot } else { 0 }].bump(sent);
    }
}

/// Calls `f(type, sent, received)` for every message type this node sent or received.
pub(crate) fn for_each_type(mut f: impl FnMut(MsgType, u32, u32)) {
    for (raw, p) in BY_TYPE.iter().enumerate() {
        let (sent, received) = p.load();
        let Some(t) = u8::try_from(raw).ok().and_then(MsgType::from_raw) else {
            continue;
        };
        if sent != 0 || received != 0 {
            f(t, sent, received);
        }
    }
}

/// Calls `f(service id, sent, received)` for every service whose messages this node
/// sent or received; id 0 stands for all ids of `SERVICE_SLOTS` and above.
pub(crate) fn for_each_service(mut f: impl FnMut(u16, u32, u32)) {
    for (id, p) in BY_SERVICE.iter().enumerate() {
        let (sent, received) = p.load();
        if sent != 0 || received != 0 {
            // Below SERVICE_SLOTS.
            f(id as u16, sent, received);
        }
    }
}
