// SPDX-License-Identifier: GPL-2.0

//! The node table: this node, the peers it was told about (`ssictl node add`) with
//! their addresses, and their membership state (rust/src/membership.rs).
//!
//! Per peer it also keeps the transport its link runs over and the message counters.
//! Peers stay `configured` until a transport connects them and their hello arrives
//! (`dispatch.rs`). Nothing here calls out of core: callers act on the returned
//! membership events after the lock is released.

use kernel::{prelude::*, sync::global_lock};

use crate::shared::ioctl::{
    SsiNodeAddr, SsiNodeInfo, SsiNodeList, SSI_ABI_VERSION, SSI_DEFAULT_PORT, SSI_NODE_CONFIGURED,
    SSI_NODE_DOWN, SSI_NODE_SELF, SSI_NODE_UP,
};
use crate::shared::membership::{
    Event, Events, Membership, MembershipError, PeerState, DOWN_AFTER_MS,
};
use crate::shared::node::{NodeId, SSI_MAX_NODES};

/// Room for every node but this one.
const MAX_PEERS: usize = SSI_MAX_NODES as usize - 1;

/// A peer's address.
#[derive(Clone, Copy)]
struct Address {
    ipv4: [u8; 4],
    port: u16,
}

/// Message counters of one peer.
#[derive(Clone, Copy, Default)]
pub(crate) struct Counters {
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) malformed: u64,
    pub(crate) timeouts: u64,
    pub(crate) send_errors: u64,
}

/// What the messaging layer tracks per node id.
#[derive(Clone, Copy)]
struct Link {
    /// The transport whose link to the node is up.
    transport: Option<u32>,
    counters: Counters,
    rtt_ns: u64,
    /// When it last went down: how long it had been silent (the detection latency).
    down_silence_ms: u64,
}

const NO_LINK: Link = Link {
    transport: None,
    counters: Counters {
        sent: 0,
        received: 0,
        malformed: 0,
        timeouts: 0,
        send_errors: 0,
    },
    rtt_ns: 0,
    down_silence_ms: 0,
};

pub(crate) struct NodeTable {
    membership: Membership<MAX_PEERS>,
    /// Indexed by node id.
    addresses: [Option<Address>; SSI_MAX_NODES as usize],
    /// Indexed by node id.
    links: [Link; SSI_MAX_NODES as usize],
}

global_lock! {
    // SAFETY: `init` runs in the module initialiser before `/dev/ssi` and `/proc/ssi`
    // exist, which are the only ways in.
    unsafe(uninit) static NODES: Mutex<NodeTable> = NodeTable {
        membership: Membership::new(0, SSI_ABI_VERSION, DOWN_AFTER_MS),
        addresses: [None; SSI_MAX_NODES as usize],
        links: [NO_LINK; SSI_MAX_NODES as usize],
    };
}

/// Initialises the table for this node, which declares peers down after
/// `down_after_ms` of silence (checked by the caller). Called once from module init.
pub(crate) fn init(self_id: NodeId, down_after_ms: u64) {
    // SAFETY: Called exactly once, from the module initialiser, before any other use.
    unsafe { NODES.init() };
    // Node ids are below SSI_MAX_NODES (64): they fit in u16.
    NODES
        .lock()
        .membership
        .reset(self_id.get() as u16, down_after_ms);
}

/// The failure detector's settings and record: the silence after which a peer is down
/// and the longest stall of this node (ms).
pub(crate) fn detector() -> (u64, u64) {
    let t = NODES.lock();
    (
        t.membership.down_after_ms(),
        t.membership.longest_stall_ms(),
    )
}

/// Adds a peer; returns its id, address and port. Errors: `EINVAL` (bad id, this node,
/// bad address), `EEXIST`, `ENOSPC`.
pub(crate) fn add(req: &SsiNodeAddr) -> Result<(u32, [u8; 4], u16)> {
    let id = NodeId::new(i64::from(req.node_id)).map_err(|_| {
        pr_warn!(
            "node add: id {} out of range (0..{})\n",
            req.node_id,
            SSI_MAX_NODES
        );
        EINVAL
    })?;
    if req.flags != 0 || req.reserved != 0 {
        return Err(EINVAL);
    }
    let ip = req.ipv4;
    if ip == [0; 4] || ip == [255; 4] || ip[0] >= 224 {
        pr_warn!(
            "node add: {}.{}.{}.{} is not a unicast address\n",
            ip[0],
            ip[1],
            ip[2],
            ip[3]
        );
        return Err(EINVAL);
    }
    let port = if req.port == 0 {
        SSI_DEFAULT_PORT
    } else {
        req.port
    };
    let mut t = NODES.lock();
    // Ids are below 64: the conversions cannot truncate.
    match t.membership.add_peer(id.get() as u16) {
        Ok(()) => {}
        Err(MembershipError::IsSelf) => {
            pr_warn!("node add: {} is this node\n", id.get());
            return Err(EINVAL);
        }
        Err(MembershipError::Duplicate) => return Err(EEXIST),
        Err(_) => return Err(ENOSPC),
    }
    t.addresses[id.get() as usize] = Some(Address { ipv4: ip, port });
    t.links[id.get() as usize] = NO_LINK;
    pr_info!(
        "node {} added at {}.{}.{}.{}:{}\n",
        id.get(),
        ip[0],
        ip[1],
        ip[2],
        ip[3],
        port
    );
    Ok((id.get(), ip, port))
}

/// Removes a peer. Errors: `EINVAL` (bad id), `ENOENT` (not configured).
pub(crate) fn remove(raw_id: u32) -> Result {
    let id = NodeId::new(i64::from(raw_id)).map_err(|_| EINVAL)?;
    let mut t = NODES.lock();
    t.membership
        .remove_peer(id.get() as u16)
        .map_err(|_| ENOENT)?;
    t.addresses[id.get() as usize] = None;
    t.links[id.get() as usize] = NO_LINK;
    pr_info!("node {} removed\n", id.get());
    Ok(())
}

fn state_code(s: PeerState) -> u32 {
    match s {
        PeerState::Configured => SSI_NODE_CONFIGURED,
        PeerState::Up => SSI_NODE_UP,
        PeerState::Down => SSI_NODE_DOWN,
    }
}

/// The node list as `SSI_IOC_NODES` reports it: this node first (with `kv_version`, the
/// version of its bookkeeping store), then the peers in id order.
pub(crate) fn list(out: &mut SsiNodeList, kv_version: u64) {
    let t = NODES.lock();
    let m = &t.membership;
    out.self_id = u32::from(m.self_id());
    out.leader = u32::from(m.leader());
    out.nodes[0] = SsiNodeInfo {
        node_id: out.self_id,
        state: SSI_NODE_SELF,
        leader_seen: out.leader,
        kv_version,
        ..Default::default()
    };
    let mut n = 1;
    for id in 0..SSI_MAX_NODES as u16 {
        let (Some(p), Some(a)) = (m.peer(id), t.addresses[usize::from(id)]) else {
            continue;
        };
        let l = &t.links[usize::from(id)];
        out.nodes[n] = SsiNodeInfo {
            node_id: u32::from(id),
            state: state_code(p.state),
            ipv4: a.ipv4,
            port: a.port,
            incarnation: p.incarnation,
            leader_seen: u32::from(p.leader_seen),
            rtt_ns: l.rtt_ns,
            sent: l.counters.sent,
            received: l.counters.received,
            malformed: l.counters.malformed,
            timeouts: l.counters.timeouts,
            send_errors: l.counters.send_errors,
            kv_version: p.kv_version,
            ..Default::default()
        };
        n += 1;
    }
    // At most 1 + MAX_PEERS == 64 entries.
    out.count = n as u32;
}

/// One row of `/proc/ssi/nodes`.
pub(crate) struct NodeRow<'a> {
    pub(crate) id: u32,
    /// `None` for this node.
    pub(crate) addr: Option<([u8; 4], u16)>,
    pub(crate) state: &'a str,
    pub(crate) leader_seen: u32,
    pub(crate) rtt_ns: u64,
    pub(crate) counters: Counters,
    /// The longest silence heard from the peer while it was up (ms).
    pub(crate) longest_gap_ms: u64,
}

/// Calls `f` for each node, this one first, and returns the leader.
pub(crate) fn for_each(mut f: impl FnMut(&NodeRow<'_>)) -> u32 {
    let t = NODES.lock();
    let m = &t.membership;
    f(&NodeRow {
        id: u32::from(m.self_id()),
        addr: None,
        state: "self",
        leader_seen: u32::from(m.leader()),
        rtt_ns: 0,
        counters: Counters::default(),
        longest_gap_ms: 0,
    });
    for id in 0..SSI_MAX_NODES as u16 {
        if let (Some(p), Some(a)) = (m.peer(id), t.addresses[usize::from(id)]) {
            let l = &t.links[usize::from(id)];
            f(&NodeRow {
                id: u32::from(id),
                addr: Some((a.ipv4, a.port)),
                state: p.state.label(),
                leader_seen: u32::from(p.leader_seen),
                rtt_ns: l.rtt_ns,
                counters: l.counters,
                longest_gap_ms: p.longest_gap_ms,
            });
        }
    }
    u32::from(m.leader())
}

// ---- used by the messaging layer --------------------------------------------------------

/// Converts a node id of the wire or a transport to a table index.
fn index(node: u32) -> Option<usize> {
    (node < SSI_MAX_NODES).then_some(node as usize)
}

/// This node's id and the leader.
pub(crate) fn self_and_leader() -> (u16, u16) {
    let t = NODES.lock();
    (t.membership.self_id(), t.membership.leader())
}

/// The address of every configured peer, for a transport that just registered.
pub(crate) fn addresses(mut f: impl FnMut(u32, [u8; 4], u16)) {
    // Copied out first: `f` calls into the transport.
    let addrs = NODES.lock().addresses;
    for (id, a) in addrs.iter().enumerate() {
        if let Some(a) = a {
            // id < SSI_MAX_NODES.
            f(id as u32, a.ipv4, a.port);
        }
    }
}

/// The transport to send to `node` over.
pub(crate) fn route(node: u32) -> Option<u32> {
    let i = index(node)?;
    NODES.lock().links[i].transport
}

/// Updates `node`'s counters.
pub(crate) fn count(node: u32, f: impl FnOnce(&mut Counters)) {
    if let Some(i) = index(node) {
        f(&mut NODES.lock().links[i].counters);
    }
}

/// A frame arrived from `node`: counts it, and an `Up` peer is heard from.
pub(crate) fn received(node: u32, now_ms: u64) {
    if let Some(i) = index(node) {
        let mut t = NODES.lock();
        t.links[i].counters.received += 1;
        t.membership.on_traffic(node as u16, now_ms);
    }
}

/// Records a measured round trip.
pub(crate) fn set_rtt(node: u32, rtt_ns: u64) {
    if let Some(i) = index(node) {
        NODES.lock().links[i].rtt_ns = rtt_ns;
    }
}

/// A link to a configured peer came up over `transport`. Returns false for nodes that
/// are not configured (the transport should not have linked them).
pub(crate) fn link_up(node: u32, transport: u32) -> bool {
    let Some(i) = index(node) else {
        return false;
    };
    let mut t = NODES.lock();
    if t.addresses[i].is_none() {
        return false;
    }
    t.links[i].transport = Some(transport);
    true
}

impl NodeTable {
    /// Records, for peers that just went down, how long they had been silent.
    fn note_downs<'a>(&mut self, events: impl Iterator<Item = &'a Event>, now_ms: u64) {
        for e in events {
            if let Event::Down { id } = e {
                let heard = self
                    .membership
                    .peer(*id)
                    .map_or(now_ms, |p| p.last_heard_ms);
                self.links[usize::from(*id)].down_silence_ms = now_ms.saturating_sub(heard);
            }
        }
    }
}

/// How long `node` had been silent when it last went down.
pub(crate) fn down_silence_ms(node: u32) -> u64 {
    index(node).map_or(0, |i| NODES.lock().links[i].down_silence_ms)
}

/// The link to `node` over `transport` went down: the peer is down.
pub(crate) fn link_down(node: u32, transport: u32, now_ms: u64) -> Events<2> {
    let mut t = NODES.lock();
    match index(node) {
        Some(i) if t.links[i].transport == Some(transport) => {
            t.links[i].transport = None;
            // Ids are below 64.
            let events = t.membership.on_disconnect(node as u16);
            t.note_downs(events.iter(), now_ms);
            events
        }
        _ => Events::default(),
    }
}

/// Every node linked over `transport` (which is going away) goes down.
pub(crate) fn transport_gone(transport: u32, now_ms: u64, mut on_event: impl FnMut(Event)) {
    let mut events = KVec::<Event>::new();
    {
        let mut t = NODES.lock();
        for i in 0..SSI_MAX_NODES as usize {
            if t.links[i].transport == Some(transport) {
                t.links[i].transport = None;
                let downs = t.membership.on_disconnect(i as u16);
                t.note_downs(downs.iter(), now_ms);
                for e in downs.iter() {
                    let _ = events.push(*e, GFP_KERNEL);
                }
            }
        }
    }
    for e in events.iter() {
        on_event(*e);
    }
}

/// A hello from `node`.
pub(crate) fn on_hello(
    node: u16,
    abi_version: u32,
    incarnation: u32,
    now_ms: u64,
) -> core::result::Result<Events<2>, MembershipError> {
    NODES
        .lock()
        .membership
        .on_hello(node, abi_version, incarnation, now_ms)
}

/// A heartbeat from `node`; false if ignored (not up, or another incarnation).
pub(crate) fn on_heartbeat(
    node: u16,
    incarnation: u32,
    leader: u16,
    kv_version: u64,
    now_ms: u64,
) -> bool {
    NODES
        .lock()
        .membership
        .on_heartbeat(node, incarnation, leader, kv_version, now_ms)
}

/// Most events one tick can produce: every peer going down, and a leader change.
pub(crate) const TICK_EVENTS: usize = MAX_PEERS + 1;

/// Marks silent peers down.
pub(crate) fn tick(now_ms: u64) -> Events<TICK_EVENTS> {
    let mut t = NODES.lock();
    let events = t.membership.tick(now_ms);
    t.note_downs(events.iter(), now_ms);
    events
}

/// Peers with a link: (id, state). Copied out so the caller can send without the lock.
pub(crate) fn linked_peers() -> KVec<(u32, PeerState)> {
    let t = NODES.lock();
    let mut v = KVec::new();
    for p in t.membership.peers() {
        if t.links[usize::from(p.id)].transport.is_some() {
            let _ = v.push((u32::from(p.id), p.state), GFP_KERNEL);
        }
    }
    v
}

/// True if `node` is up.
pub(crate) fn is_up(node: u32) -> bool {
    index(node).is_some_and(|_| {
        NODES
            .lock()
            .membership
            .peer(node as u16)
            .is_some_and(|p| p.state == PeerState::Up)
    })
}

/// True if `node` is configured.
pub(crate) fn is_configured(node: u32) -> bool {
    index(node).is_some_and(|i| NODES.lock().addresses[i].is_some())
}
