// SPDX-License-Identifier: GPL-2.0

//! The node table: this node, the peers it was told about (`ssictl node add`) with
//! their addresses, and their membership state (rust/src/membership.rs).
//!
//! Peers stay `configured` until a transport connects them and their hello arrives
//! (the messaging layer).

use kernel::{prelude::*, sync::global_lock};

use crate::shared::ioctl::{
    SsiNodeAddr, SsiNodeInfo, SsiNodeList, SSI_ABI_VERSION, SSI_DEFAULT_PORT, SSI_NODE_CONFIGURED,
    SSI_NODE_DOWN, SSI_NODE_SELF, SSI_NODE_UP,
};
use crate::shared::membership::{Membership, MembershipError, PeerState, DOWN_AFTER_MS};
use crate::shared::node::{NodeId, SSI_MAX_NODES};

/// Room for every node but this one.
const MAX_PEERS: usize = SSI_MAX_NODES as usize - 1;

/// A peer's address.
#[derive(Clone, Copy)]
struct Address {
    ipv4: [u8; 4],
    port: u16,
}

pub(crate) struct NodeTable {
    membership: Membership<MAX_PEERS>,
    /// Indexed by node id.
    addresses: [Option<Address>; SSI_MAX_NODES as usize],
}

global_lock! {
    // SAFETY: `init` runs in the module initialiser before `/dev/ssi` and `/proc/ssi`
    // exist, which are the only ways in.
    unsafe(uninit) static NODES: Mutex<NodeTable> = NodeTable {
        membership: Membership::new(0, SSI_ABI_VERSION, DOWN_AFTER_MS),
        addresses: [None; SSI_MAX_NODES as usize],
    };
}

/// Initialises the table for this node. Called once from module init.
pub(crate) fn init(self_id: NodeId) {
    // SAFETY: Called exactly once, from the module initialiser, before any other use.
    unsafe { NODES.init() };
    // Node ids are below SSI_MAX_NODES (64): they fit in u16.
    NODES.lock().membership.reset(self_id.get() as u16);
}

/// Adds a peer. Errors: `EINVAL` (bad id, this node, bad address), `EEXIST`, `ENOSPC`.
pub(crate) fn add(req: &SsiNodeAddr) -> Result {
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
    pr_info!(
        "node {} added at {}.{}.{}.{}:{}\n",
        id.get(),
        ip[0],
        ip[1],
        ip[2],
        ip[3],
        port
    );
    Ok(())
}

/// Removes a peer. Errors: `EINVAL` (bad id), `ENOENT` (not configured).
pub(crate) fn remove(raw_id: u32) -> Result {
    let id = NodeId::new(i64::from(raw_id)).map_err(|_| EINVAL)?;
    let mut t = NODES.lock();
    t.membership
        .remove_peer(id.get() as u16)
        .map_err(|_| ENOENT)?;
    t.addresses[id.get() as usize] = None;
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

/// The node list as `SSI_IOC_NODES` reports it: this node first, then the peers in
/// id order.
pub(crate) fn list(out: &mut SsiNodeList) {
    let t = NODES.lock();
    let m = &t.membership;
    out.self_id = u32::from(m.self_id());
    out.leader = u32::from(m.leader());
    out.nodes[0] = SsiNodeInfo {
        node_id: out.self_id,
        state: SSI_NODE_SELF,
        ..Default::default()
    };
    let mut n = 1;
    for id in 0..SSI_MAX_NODES as u16 {
        let (Some(p), Some(a)) = (m.peer(id), t.addresses[usize::from(id)]) else {
            continue;
        };
        out.nodes[n] = SsiNodeInfo {
            node_id: u32::from(id),
            state: state_code(p.state),
            ipv4: a.ipv4,
            port: a.port,
            incarnation: p.incarnation,
            ..Default::default()
        };
        n += 1;
    }
    // At most 1 + MAX_PEERS == 64 entries.
    out.count = n as u32;
}

/// Calls `f(id, address, port, state label)` for each node, this one first (address
/// `None`), and returns the leader.
pub(crate) fn for_each(mut f: impl FnMut(u32, Option<[u8; 4]>, u16, &str)) -> u32 {
    let t = NODES.lock();
    let m = &t.membership;
    f(u32::from(m.self_id()), None, 0, "self");
    for id in 0..SSI_MAX_NODES as u16 {
        if let (Some(p), Some(a)) = (m.peer(id), t.addresses[usize::from(id)]) {
            f(u32::from(id), Some(a.ipv4), a.port, p.state.label());
        }
    }
    u32::from(m.leader())
}
