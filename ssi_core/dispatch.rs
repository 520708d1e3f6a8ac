// SPDX-License-Identifier: GPL-2.0

//! Cluster messaging, the receiving side: decoding and checking each incoming frame and
//! handing it to the part of core it is for; links and membership events, heartbeats and
//! round-trip probes. The top of messaging: it calls every feature, and none calls it
//! (they send through `transmit.rs`).
//!
//! Transports hand received frames to [`deliver`] from their completion context
//! (process context, but the transport's receive path is stalled meanwhile): handlers
//! here never wait for another frame. Requests that need an answer go through
//! `calls.rs`, whose callers sleep in process context (ioctls).

use core::sync::atomic::{AtomicU32, Ordering};

use kernel::prelude::*;

use crate::shared::arith::div_small;
use crate::shared::membership::{Event, PeerState, HEARTBEAT_INTERVAL_MS};
use crate::shared::wire::{self, Message};
use crate::transmit::{answer, incarnation, reply, send};
use crate::{
    calls, clock, coherence, kvstore, nodes, pages, regions, registry, services, traffic, transmit,
};

/// Ticks between two round-trip probes of each peer.
const PROBE_EVERY_TICKS: u32 = 5;
static TICKS: AtomicU32 = AtomicU32::new(0);

/// Starts messaging: picks the incarnation and starts the heartbeat.
pub(crate) fn start() -> Heartbeat {
    transmit::new_incarnation();
    crate::ticker::ticker_start(HEARTBEAT_INTERVAL_MS as u32);
    Heartbeat(())
}

/// The running heartbeat; stops it when dropped.
pub(crate) struct Heartbeat(());

impl Drop for Heartbeat {
    fn drop(&mut self) {
        crate::ticker::ticker_stop();
    }
}

/// Logs the first malformed frames of each node, then only counts them.
fn note_malformed(node: u32, what: &str) {
    static LOGGED: AtomicU32 = AtomicU32::new(0);
    nodes::count(node, |c| c.malformed += 1);
    if LOGGED.fetch_add(1, Ordering::Relaxed) < 20 {
        pr_warn!("dropped a malformed frame from node {}: {}\n", node, what);
    }
}

/// A frame arrived from `node` over transport `tid`.
pub(crate) fn deliver(tid: u32, node: u32, frame: &[u8]) {
    if !nodes::is_configured(node) {
        return;
    }
    let (h, msg) = match wire::decode(frame) {
        Ok(v) => v,
        Err(e) => {
            let why = match e {
                wire::WireError::Truncated => "truncated",
                wire::WireError::TrailingBytes => "trailing bytes",
                wire::WireError::BadMagic => "bad magic",
                wire::WireError::BadVersion => "unknown protocol version",
                wire::WireError::UnknownType => "unknown message type",
                wire::WireError::BadFlags => "unknown flags or reserved bits",
                wire::WireError::TooLong => "too long",
                wire::WireError::BadLength => "payload length does not fit its type",
                wire::WireError::BadField => "invalid field",
                wire::WireError::BufferTooSmall => "?",
            };
            note_malformed(node, why);
            return;
        }
    };
    let (self_id, _) = nodes::self_and_leader();
    if u32::from(h.src) != node {
        note_malformed(node, "source is another node (spoofed)");
        return;
    }
    if h.dst != self_id {
        note_malformed(node, "addressed to another node");
        return;
    }
    // The link may have come up on the transport's side just now.
    if nodes::route(node).is_none() {
        nodes::link_up(node, tid);
    }
    let now = clock::now_ms();
    nodes::received(node, now);
    traffic::count(&msg, false);
    // Every hello is answered with ours (the answer is not answered): a side that
    // missed the other's hello on link-up keeps sending hellos until it hears one.
    if let Message::Hello {
        abi_version,
        incarnation,
    } = msg
    {
        on_hello(node, abi_version, incarnation, now);
        if !h.is_response() {
            reply(&h, &hello());
        }
        return;
    }
    if h.is_response() {
        calls::complete(node, &h, &msg, frame);
        return;
    }
    match msg {
        Message::Hello { .. } => {}
        Message::Heartbeat {
            incarnation,
            leader,
            kv_version,
        } => {
            if nodes::on_heartbeat(h.src, incarnation, leader, kv_version, now) {
                kvstore::on_heartbeat(node, kv_version);
            }
        }
        Message::Ping { data } => reply(&h, &Message::Ping { data }),
        Message::PageQuery { handle } => answer(&h, pages::answer_query(tid, node, handle)),
        Message::KvPut { key, value } => kvstore::on_put(&h, key, value, false),
        Message::KvCreate { key, value } => kvstore::on_put(&h, key, value, true),
        Message::KvUpdate {
            prev_version,
            version,
            key,
            value,
        } => kvstore::on_update(node, prev_version, version, key, value),
        Message::KvSync { from_version } => kvstore::on_sync(node, from_version),
        Message::Service { service, data } => services::on_request(&h, service, data),
        Message::PageFault {
            region,
            page,
            write,
        } => coherence::on_fault(&h, region, page, write),
        Message::PageDone {
            region,
            page,
            ok,
            dropped,
        } => coherence::on_done(node, region, page, ok, dropped),
        Message::PageFetch {
            region,
            page,
            downgrade,
            revoke,
        } => coherence::on_fetch(&h, region, page, downgrade, revoke),
        Message::PageInvalidate { region, page } => coherence::on_invalidate(&h, region, page),
        Message::PageRelease { region, page, tag } => {
            coherence::on_release(h.src, region, page, tag)
        }
        Message::PageWritten { region, page } => coherence::on_written(h.src, region, page),
        Message::RegionGone { region } => regions::on_private_gone(h.src, region),
        Message::PageInfo { .. }
        | Message::Error { .. }
        | Message::PagePlan { .. }
        | Message::PageData { .. } => note_malformed(node, "answer type sent as a request"),
    }
}

/// Our hello.
fn hello() -> Message<'static> {
    Message::Hello {
        abi_version: crate::shared::ioctl::SSI_ABI_VERSION,
        incarnation: incarnation(),
    }
}

/// A hello from `node`: it is up (or its ABI does not match ours).
fn on_hello(node: u32, abi_version: u32, incarnation: u32, now: u64) {
    // Ids are below 64.
    match nodes::on_hello(node as u16, abi_version, incarnation, now) {
        Ok(events) => {
            for e in events.iter() {
                on_event(*e);
            }
        }
        Err(e) => {
            pr_warn!("node {}: hello refused: {:?}\n", node, e);
            reset_link(node);
        }
    }
}

/// Asks the transport of `node` to drop and re-establish its link.
fn reset_link(node: u32) {
    if let Some(t) = nodes::route(node).and_then(registry::transport) {
        t.reset(node);
    }
}

/// Reacts to a membership change.
fn on_event(e: Event) {
    match e {
        Event::Up { id, restarted } => {
            pr_info!(
                "node {} up{}\n",
                id,
                if restarted { " (restarted)" } else { "" }
            );
        }
        Event::Restarted { id } => {
            pr_info!("node {} restarted\n", id);
            calls::fail_node(u32::from(id));
            pages::forget_node(u32::from(id));
            coherence::node_lost(id);
        }
        Event::Down { id } => {
            pr_info!(
                "node {} down ({} ms since it was last heard)\n",
                id,
                nodes::down_silence_ms(u32::from(id))
            );
            calls::fail_node(u32::from(id));
            pages::forget_node(u32::from(id));
            coherence::node_lost(id);
        }
        Event::LeaderChanged { leader } => pr_info!("leader is now node {}\n", leader),
    }
}

/// A transport's link to `node` came up or went down.
pub(crate) fn link_event(tid: u32, node: u32, up: bool) {
    if up {
        // Registrations made for an earlier link of this node are dead with it.
        pages::forget_node(node);
        if nodes::link_up(node, tid) {
            let _ = send(node, &hello(), 0, 0);
        }
    } else {
        pages::forget_node(node);
        for e in nodes::link_down(node, tid, clock::now_ms()).iter() {
            on_event(*e);
        }
    }
}

/// A transport registered: have it connect every configured peer.
pub(crate) fn transport_added(t: &registry::TransportUse) {
    nodes::addresses(|id, ip, port| {
        // Transports that do not reach nodes by IP answer EOPNOTSUPP.
        let _ = t.connect(id, ip, port);
    });
}

/// A transport is going away: its links are down.
pub(crate) fn transport_removed(tid: u32) {
    nodes::transport_gone(tid, clock::now_ms(), on_event);
}

/// A peer was configured: every transport tries to reach it.
pub(crate) fn node_added(id: u32, ip: [u8; 4], port: u16) {
    for t in registry::all_transports().iter() {
        let _ = t.connect(id, ip, port);
    }
}

/// A peer was removed: transports forget it.
pub(crate) fn node_removed(id: u32) {
    for t in registry::all_transports().iter() {
        t.disconnect(id);
    }
    calls::fail_node(id);
    pages::forget_node(id);
    // Ids are below 64.
    coherence::node_lost(id as u16);
}

/// Every `HEARTBEAT_INTERVAL_MS`: failure detection and request timeouts; heartbeats,
/// hellos to linked peers that are not up and round-trip probes every
/// `down_after_ms / 10` (at least every tick).
pub(crate) fn tick() {
    let now = clock::now_ms();
    for e in nodes::tick(now).iter() {
        on_event(*e);
        if let Event::Down { id } = e {
            // Silent but maybe still linked: the link is suspect.
            reset_link(u32::from(*id));
        }
    }
    calls::expire(now);
    let (_, leader) = nodes::self_and_leader();
    // Heartbeats every tenth of the failure timeout, at least every tick: a long
    // timeout (set for a slow link such as a GPIO cable) also means less traffic.
    let (down_after_ms, _) = nodes::detector();
    // down_after_ms / 10 / HEARTBEAT_INTERVAL_MS, without a u64 division (32-bit ARM).
    const _: () = assert!(10 * HEARTBEAT_INTERVAL_MS == 2000);
    let every = u32::try_from(div_small(down_after_ms, 2000).0)
        .unwrap_or(u32::MAX)
        .max(1);
    let tick = TICKS.fetch_add(1, Ordering::Relaxed);
    if tick % every != 0 {
        return;
    }
    let probe = (tick / every) % PROBE_EVERY_TICKS == 0;
    for (id, state) in nodes::linked_peers().iter() {
        let msg = if *state == PeerState::Up {
            Message::Heartbeat {
                incarnation: incarnation(),
                leader,
                kv_version: kvstore::version(),
            }
        } else {
            hello()
        };
        let _ = send(*id, &msg, 0, 0);
        if probe && *state == PeerState::Up {
            calls::probe(*id);
        }
    }
}
