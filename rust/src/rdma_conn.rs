// SPDX-License-Identifier: GPL-2.0

//! The rules of `ssi_rdma`'s connection engine: who connects to whom, what a connection
//! request must carry and why one is refused, and when a link is reported up or down,
//! torn down and retried.
//!
//! `ssi_rdma/conn.c` drives the RDMA CM and verbs (macros and static inlines, so C) and
//! keeps the locks, the work items and the memory. At each decision it asks this file
//! (through `ssi_rdma/policy.rs`), handing over the state it guards, and does what the
//! answer says; here every rule can be tested on the host. Nothing here sleeps,
//! allocates or keeps global state: `conn.c` calls it under spinlocks. Only `u32`
//! arithmetic and formatting: safe on 32-bit ARM.
//!
//! Rules:
//! - Of two nodes, the one with the higher id connects (the active side); the other
//!   accepts (the passive side) and refuses requests from higher ids.
//! - The CM private data ([`CmPriv`], 16 bytes, little-endian, both ways) carries magic
//!   `SSIC`, protocol, node id, ABI version and incarnation; in a reject, the reason.
//!   A request is refused, in this order, when it is malformed, speaks another ABI,
//!   claims an impossible node (out of range, ours, or without incarnation), comes from
//!   a lower id, names a node that is not configured, comes from another address than
//!   the configured one, or arrives while the engine stops ([`Refusal`]).
//! - A connection ([`Conn`]) is connecting, up or closing. It is reported up once, when
//!   it is established (or its first frame arrives, which can overtake the CM event).
//!   Every failure asks for its teardown; only the first one queues it.
//! - After the teardown, the link is reported down only if this connection was the
//!   last one reported up: a newer connection that replaced it keeps the link.
//! - The active side retries [`RETRY_MS`] after every teardown or attempt that could
//!   not start, while core wants the link ([`Peer`]); the passive side waits for the
//!   peer. Forgetting a peer (core's `disconnect`) or stopping the engine ends retries.

use core::fmt;

use super::node::SSI_MAX_NODES;

/// `SSIC`: the first four bytes of the CM private data.
pub const CM_MAGIC: u32 = 0x4349_5353;
/// The version of the CM private data.
pub const CM_PROTO: u8 = 1;
/// Bytes of CM private data ([`CmPriv`]) on the wire (`SSI_CM_PRIV_LEN` in `conn.h`).
pub const CM_PRIV_LEN: usize = 16;
/// How long the active side waits before trying again, after a teardown or an attempt
/// that could not start.
pub const RETRY_MS: u32 = 500;

/// Why a connection request was rejected, carried in the reject's private data
/// (`enum ssi_reject_reason` in `conn.h`; `tests/tools/ssi-hostile.c` reads the numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RejectReason {
    /// Not rejected (the value in an accept's private data).
    None = 0,
    /// Private data too short, without magic, of another protocol, or impossible.
    BadPrivateData = 1,
    /// The node is not configured on the acceptor.
    UnknownNode = 2,
    /// The request came from another address than the one configured for the node.
    Address = 3,
    /// The requester speaks another ABI version.
    Abi = 4,
    /// The acceptor cannot take the connection (out of memory, stopping).
    NoResources = 5,
    /// The requester has the lower id: it must accept, not connect.
    Role = 6,
}

impl RejectReason {
    /// Every reason, in the order of their numbers.
    pub const ALL: [RejectReason; 7] = [
        Self::None,
        Self::BadPrivateData,
        Self::UnknownNode,
        Self::Address,
        Self::Abi,
        Self::NoResources,
        Self::Role,
    ];

    /// The reason with number `code`, if there is one.
    pub fn from_u8(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// Its number on the wire.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// What it means, for the logs of both sides.
    pub fn text(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::BadPrivateData => "malformed connection request",
            Self::UnknownNode => "node not configured there",
            Self::Address => "source address does not match the configured one",
            Self::Abi => "ABI version mismatch",
            Self::NoResources => "no resources",
            Self::Role => "wrong role (the higher node id connects)",
        }
    }
}

/// The text of a reason number as received (a newer peer may send one we do not know).
pub fn reason_text(code: u8) -> &'static str {
    RejectReason::from_u8(code).map_or("unknown reason", RejectReason::text)
}

/// The CM private data of a request, an accept or a reject (`magic` aside, which
/// [`CmPriv::encode`] writes and [`CmPriv::decode`] checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmPriv {
    /// Protocol version ([`CM_PROTO`]).
    pub proto: u8,
    /// A [`RejectReason`] number: why, in a reject; 0 otherwise.
    pub reason: u8,
    /// The sender's node id.
    pub node: u16,
    /// The sender's ABI version.
    pub abi: u32,
    /// The sender's incarnation (never 0 from a valid sender).
    pub incarnation: u32,
}

impl CmPriv {
    /// The 16 bytes on the wire: magic, proto, reason, node, abi, incarnation, packed
    /// little-endian.
    pub fn encode(&self) -> [u8; CM_PRIV_LEN] {
        let mut b = [0u8; CM_PRIV_LEN];
        b[0..4].copy_from_slice(&CM_MAGIC.to_le_bytes());
        b[4] = self.proto;
        b[5] = self.reason;
        b[6..8].copy_from_slice(&self.node.to_le_bytes());
        b[8..12].copy_from_slice(&self.abi.to_le_bytes());
        b[12..16].copy_from_slice(&self.incarnation.to_le_bytes());
        b
    }

    /// Reads private data; `None` if it is shorter than [`CM_PRIV_LEN`] or lacks the
    /// magic. Longer data is fine: the CM pads private data to a fixed size. The
    /// protocol is not checked here (see [`Local::check_request`]).
    pub fn decode(data: &[u8]) -> Option<Self> {
        let b = data.get(..CM_PRIV_LEN)?;
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        if u32_at(0) != CM_MAGIC {
            return None;
        }
        Some(Self {
            proto: b[4],
            reason: b[5],
            node: u16::from_le_bytes([b[6], b[7]]),
            abi: u32_at(8),
            incarnation: u32_at(12),
        })
    }
}

/// Who opens the connection between this node and a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// This node connects (it has the higher id) and retries.
    Active,
    /// This node accepts and waits.
    Passive,
}

/// Why a connection request was refused: the reason sent back, and a sentence for this
/// node's log (see [`Refusal::message`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Too short, no magic, or another protocol.
    Malformed,
    /// Another ABI version.
    Abi {
        /// The node it claims to be.
        node: u32,
        /// Its ABI version.
        theirs: u32,
        /// Ours.
        ours: u32,
    },
    /// It claims a node id out of range, our own, or has no incarnation.
    BadNode {
        /// The node it claims to be.
        node: u32,
    },
    /// It has the lower id: it should have waited for us to connect.
    Role {
        /// The node it claims to be.
        node: u32,
        /// This node.
        me: u32,
    },
    /// Core has not configured (or has removed) the node.
    UnknownNode {
        /// The node it claims to be.
        node: u32,
    },
    /// The request came from another address than the node's configured one.
    Address {
        /// The node it claims to be.
        node: u32,
    },
    /// The engine is stopping.
    Stopping {
        /// The node it claims to be.
        node: u32,
    },
}

impl Refusal {
    /// The reason sent back in the reject.
    pub fn reason(&self) -> RejectReason {
        match self {
            Self::Malformed | Self::BadNode { .. } => RejectReason::BadPrivateData,
            Self::Abi { .. } => RejectReason::Abi,
            Self::Role { .. } => RejectReason::Role,
            Self::UnknownNode { .. } => RejectReason::UnknownNode,
            Self::Address { .. } => RejectReason::Address,
            Self::Stopping { .. } => RejectReason::NoResources,
        }
    }

    /// The log line (without the module prefix) for a request from `from`, the
    /// requester's address as the kernel prints it (`%pISc`).
    pub fn message<'a>(&'a self, from: &'a str) -> RefusalMessage<'a> {
        RefusalMessage {
            refusal: self,
            from,
        }
    }
}

/// A [`Refusal`] as this node logs it.
pub struct RefusalMessage<'a> {
    refusal: &'a Refusal,
    from: &'a str,
}

impl fmt::Display for RefusalMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = self.from;
        match *self.refusal {
            Refusal::Malformed => write!(f, "refused a malformed connection request from {from}"),
            Refusal::Abi { node, theirs, ours } => write!(
                f,
                "refused node {node} at {from}: it speaks ABI v{theirs}, this node v{ours}"
            ),
            Refusal::BadNode { node } => {
                write!(f, "refused a request claiming node {node} from {from}")
            }
            Refusal::Role { node, me } => write!(
                f,
                "refused node {node} at {from}: this node ({me}) connects to lower ids"
            ),
            Refusal::UnknownNode { node }
            | Refusal::Address { node }
            | Refusal::Stopping { node } => {
                write!(
                    f,
                    "refused node {node} at {from}: {}",
                    self.refusal.reason().text()
                )
            }
        }
    }
}

/// A peer refused our connection request with ssi private data: what the active side
/// logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The peer.
    pub peer: u32,
    /// Its [`RejectReason`] number.
    pub reason: u8,
    /// Its ABI version.
    pub abi_there: u32,
    /// Ours.
    pub abi_here: u32,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node {} refused the connection: {} (ABI v{} there, v{} here)",
            self.peer,
            reason_text(self.reason),
            self.abi_there,
            self.abi_here
        )
    }
}

/// This node, as the connection engine presents it (`struct ssi_local` in `conn.h`).
/// Fixed once the engine is started.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Local {
    /// Its node id.
    pub node: u32,
    /// Its ABI version.
    pub abi: u32,
    /// Its incarnation, never 0.
    pub incarnation: u32,
}

// The C mirror has the same layout (`struct ssi_local`, asserted in `conn.c`).
const _: () = assert!(core::mem::size_of::<Local>() == 12);

impl Local {
    /// This node; an incarnation of 0 (core has none) is sent as 1, as 0 is refused.
    pub fn new(node: u32, abi: u32, incarnation: u32) -> Self {
        Self {
            node,
            abi,
            incarnation: incarnation.max(1),
        }
    }

    /// Who connects between this node and `peer`: the higher id.
    pub fn role(&self, peer: u32) -> Role {
        if self.node > peer {
            Role::Active
        } else {
            Role::Passive
        }
    }

    /// The private data this node sends: in its requests and accepts with
    /// [`RejectReason::None`], in its rejects with the reason number.
    pub fn private_data(&self, reason: u8) -> [u8; CM_PRIV_LEN] {
        CmPriv {
            proto: CM_PROTO,
            reason,
            // Node ids are below SSI_MAX_NODES (64): they fit.
            node: self.node as u16,
            abi: self.abi,
            incarnation: self.incarnation,
        }
        .encode()
    }

    /// The checks of a connection request that need no peer state, on its private
    /// data; on success, the node it claims to be (below [`SSI_MAX_NODES`], higher
    /// than ours), which [`Peer::check_request`] then checks against the peer table.
    pub fn check_request(&self, data: &[u8]) -> Result<u32, Refusal> {
        let req = match CmPriv::decode(data) {
            Some(req) if req.proto == CM_PROTO => req,
            _ => return Err(Refusal::Malformed),
        };
        let node = u32::from(req.node);
        if req.abi != self.abi {
            return Err(Refusal::Abi {
                node,
                theirs: req.abi,
                ours: self.abi,
            });
        }
        if node >= SSI_MAX_NODES || node == self.node || req.incarnation == 0 {
            return Err(Refusal::BadNode { node });
        }
        if self.role(node) == Role::Active {
            return Err(Refusal::Role {
                node,
                me: self.node,
            });
        }
        Ok(node)
    }

    /// The reject private data `data` that `peer` answered our request with, if it is
    /// ssi's (another reject comes from the CM or the network: the caller logs that).
    pub fn rejection(&self, peer: u32, data: &[u8]) -> Option<Rejection> {
        let rej = CmPriv::decode(data)?;
        Some(Rejection {
            peer,
            reason: rej.reason,
            abi_there: rej.abi,
            abi_here: self.abi,
        })
    }
}

/// What to do, as decided by [`Conn`] and [`Peer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    Nothing,
    /// Start a connection attempt to the peer after this many milliseconds (replacing
    /// one already scheduled).
    Connect {
        /// The delay.
        after_ms: u32,
    },
    /// Report the link up to core.
    AnnounceUp,
    /// Report the link down to core.
    AnnounceDown,
    /// Log that a replaced connection closed; core keeps the link of the newer one.
    ReplacedClosed,
    /// Queue the connection's teardown.
    QueueTeardown,
}

/// The state of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// Being set up: frames may be received (once the QP exists), none sent.
    Connecting = 0,
    /// Established: frames flow both ways.
    Up = 1,
    /// Its teardown runs: nothing is posted any more.
    Closing = 2,
}

/// One connection's life (`struct ssi_conn_fsm` in `conn.h`, guarded by the
/// connection's spinlock and changed only through these methods).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conn {
    /// A [`ConnState`] (a byte, so that any value C holds is valid).
    state: u8,
    /// Its teardown has been queued.
    teardown_queued: bool,
    /// It was reported up (`conn.c` delivers and sends frames only then).
    announced: bool,
}

// The C mirror has the same layout (`struct ssi_conn_fsm`, asserted in `conn.c`).
const _: () = assert!(core::mem::size_of::<Conn>() == 3);

impl Default for Conn {
    fn default() -> Self {
        Self::new()
    }
}

impl Conn {
    /// A new connection, connecting.
    pub const fn new() -> Self {
        Self {
            state: ConnState::Connecting as u8,
            teardown_queued: false,
            announced: false,
        }
    }

    /// Its state.
    pub fn state(&self) -> ConnState {
        match self.state {
            0 => ConnState::Connecting,
            1 => ConnState::Up,
            _ => ConnState::Closing,
        }
    }

    /// Work requests may be posted to its send queue.
    pub fn may_send(&self) -> bool {
        self.state() == ConnState::Up
    }

    /// Its teardown runs (or ran): nothing may be posted or created any more.
    pub fn closing(&self) -> bool {
        self.state() == ConnState::Closing
    }

    /// It was reported up.
    pub fn announced(&self) -> bool {
        self.announced
    }

    /// The CM says it is established, or its first frame arrived: it is up, and
    /// reported up once (a closing connection stays closed).
    pub fn established(&mut self) -> Action {
        if self.state() == ConnState::Connecting {
            self.state = ConnState::Up as u8;
        }
        if self.state() == ConnState::Up && !self.announced {
            self.announced = true;
            return Action::AnnounceUp;
        }
        Action::Nothing
    }

    /// Something failed (a CM error or disconnect, a completion error, a stuck read,
    /// core resetting the link): its one teardown is queued by the first failure.
    pub fn fail(&mut self) -> Action {
        if self.teardown_queued {
            return Action::Nothing;
        }
        self.teardown_queued = true;
        Action::QueueTeardown
    }

    /// Its teardown starts: nothing is posted from now on.
    pub fn close(&mut self) {
        self.state = ConnState::Closing as u8;
    }

    /// Its teardown freed everything. `reported_up`: it is the connection that last
    /// reported the peer's link up (none newer replaced it since).
    pub fn closed(&self, reported_up: bool) -> Action {
        if reported_up {
            Action::AnnounceDown
        } else if self.announced {
            Action::ReplacedClosed
        } else {
            Action::Nothing
        }
    }
}

/// What `conn.c` knows about a peer besides its [`Peer`] state, read under the same
/// lock (`struct ssi_peer_facts` in `conn.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerFacts {
    /// The peer's node id.
    pub node: u32,
    /// The engine is stopping.
    pub stopping: bool,
    /// A connection to the peer is installed (connecting or up, not yet torn down).
    pub has_conn: bool,
}

/// What the engine keeps about a peer to decide on connecting and retrying (`struct
/// ssi_peer_fsm` in `conn.h`, guarded by the peer table's spinlock and changed only
/// through these methods).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    /// Core wants a link to it: from `connect` until `disconnect` or the engine stops.
    wanted: bool,
    /// Connections in a row, made by this node, that closed without coming up.
    failures: u32,
}

// The C mirror has the same layout (`struct ssi_peer_fsm`, asserted in `conn.c`).
const _: () = assert!(core::mem::size_of::<Peer>() == 8);
const _: () = assert!(core::mem::size_of::<PeerFacts>() == 8);

impl Peer {
    /// A peer core does not want a link to.
    pub const fn new() -> Self {
        Self {
            wanted: false,
            failures: 0,
        }
    }

    /// Core wants a link to it.
    pub fn wanted(&self) -> bool {
        self.wanted
    }

    /// Connections in a row, made by this node, that closed without coming up.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Core asks for a link to the peer (again): the active side connects at once.
    pub fn connect(&mut self, local: &Local, f: &PeerFacts) -> Action {
        self.wanted = true;
        self.failures = 0;
        self.connect_after(local, f, 0)
    }

    /// Whether a scheduled connection attempt may start now: the link is still wanted,
    /// none is installed, the engine is not stopping, and this node connects.
    pub fn may_connect(&self, local: &Local, f: &PeerFacts) -> bool {
        !f.stopping && self.wanted && !f.has_conn && local.role(f.node) == Role::Active
    }

    /// A connection attempt could not even start (no memory, no CM id): try again.
    pub fn attempt_failed(&self, local: &Local, f: &PeerFacts) -> Action {
        self.connect_after(local, f, RETRY_MS)
    }

    /// A connection to the peer was torn down. `active`: this node had made it;
    /// `came_up`: it had been reported up. The side that made it tries again.
    pub fn closed(&mut self, local: &Local, f: &PeerFacts, active: bool, came_up: bool) -> Action {
        if !active {
            return Action::Nothing;
        }
        self.failures = if came_up {
            0
        } else {
            self.failures.saturating_add(1)
        };
        self.connect_after(local, f, RETRY_MS)
    }

    /// Core no longer wants a link to the peer (or the engine stops): no more attempts
    /// and no more accepted requests.
    pub fn forget(&mut self) {
        self.wanted = false;
    }

    /// The checks of a connection request from the peer (after
    /// [`Local::check_request`]) against what core configured. `source`: the
    /// requester's IPv4 address, `None` for another family; `configured`: the
    /// peer's address given to `connect` (both in network byte order).
    pub fn check_request(
        &self,
        f: &PeerFacts,
        source: Option<u32>,
        configured: u32,
    ) -> Result<(), Refusal> {
        let node = f.node;
        if !self.wanted {
            return Err(Refusal::UnknownNode { node });
        }
        if source != Some(configured) {
            return Err(Refusal::Address { node });
        }
        if f.stopping {
            return Err(Refusal::Stopping { node });
        }
        Ok(())
    }

    fn connect_after(&self, local: &Local, f: &PeerFacts, after_ms: u32) -> Action {
        if self.may_connect(local, f) {
            Action::Connect { after_ms }
        } else {
            Action::Nothing
        }
    }
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_rdma_conn))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::super::text::SliceWriter;
    use super::*;
    use core::fmt::Write;

    const ABI: u32 = 4;

    /// Node 1 of a cluster: it accepts from 2 and up, and connects to 0.
    fn local() -> Local {
        Local::new(1, ABI, 7)
    }

    /// A valid request from node 2.
    fn request() -> CmPriv {
        CmPriv {
            proto: CM_PROTO,
            reason: 0,
            node: 2,
            abi: ABI,
            incarnation: 3,
        }
    }

    fn facts(node: u32) -> PeerFacts {
        PeerFacts {
            node,
            stopping: false,
            has_conn: false,
        }
    }

    /// `d` formatted into `buf`; returns the length.
    fn show(d: &dyn fmt::Display, buf: &mut [u8; 160]) -> usize {
        let mut w = SliceWriter::new(buf);
        assert!(write!(w, "{}", d).is_ok());
        w.len()
    }

    #[test]
    fn private_data_has_the_documented_layout() {
        let b = request().encode();
        assert_eq!(&b[0..4], b"SSIC");
        assert_eq!(
            b,
            [b'S', b'S', b'I', b'C', 1, 0, 2, 0, 4, 0, 0, 0, 3, 0, 0, 0]
        );
        let p = Local::new(0x0102, 0x0a0b_0c0d, 0x1122_3344).private_data(6);
        assert_eq!(
            p,
            [
                0x53, 0x53, 0x49, 0x43, 1, 6, 0x02, 0x01, 0x0d, 0x0c, 0x0b, 0x0a, 0x44, 0x33, 0x22,
                0x11
            ]
        );
    }

    #[test]
    fn private_data_round_trips() {
        let all = CmPriv {
            proto: 0xfe,
            reason: 0xff,
            node: u16::MAX,
            abi: u32::MAX,
            incarnation: 0x8000_0001,
        };
        for p in [request(), all] {
            assert_eq!(CmPriv::decode(&p.encode()), Some(p));
        }
        // The CM pads private data: trailing bytes are ignored.
        let mut padded = [0xaau8; 56];
        padded[..CM_PRIV_LEN].copy_from_slice(&request().encode());
        assert_eq!(CmPriv::decode(&padded), Some(request()));
    }

    #[test]
    fn short_or_foreign_private_data_does_not_decode() {
        let good = request().encode();
        assert_eq!(CmPriv::decode(&[]), None);
        assert_eq!(CmPriv::decode(&good[..3]), None);
        assert_eq!(CmPriv::decode(&good[..CM_PRIV_LEN - 1]), None);
        for i in 0..4 {
            let mut bad = good;
            bad[i] ^= 0x20;
            assert_eq!(CmPriv::decode(&bad), None);
        }
    }

    #[test]
    fn reject_reasons_keep_their_numbers_and_texts() {
        let expected: [(RejectReason, u8, &str); 7] = [
            (RejectReason::None, 0, "none"),
            (
                RejectReason::BadPrivateData,
                1,
                "malformed connection request",
            ),
            (RejectReason::UnknownNode, 2, "node not configured there"),
            (
                RejectReason::Address,
                3,
                "source address does not match the configured one",
            ),
            (RejectReason::Abi, 4, "ABI version mismatch"),
            (RejectReason::NoResources, 5, "no resources"),
            (
                RejectReason::Role,
                6,
                "wrong role (the higher node id connects)",
            ),
        ];
        for (reason, code, text) in expected {
            assert_eq!(reason.code(), code);
            assert_eq!(RejectReason::from_u8(code), Some(reason));
            assert_eq!(reason.text(), text);
            assert_eq!(reason_text(code), text);
        }
        assert_eq!(RejectReason::from_u8(7), None);
        assert_eq!(reason_text(7), "unknown reason");
        assert_eq!(reason_text(u8::MAX), "unknown reason");
    }

    #[test]
    fn the_higher_id_connects() {
        let l = local();
        assert_eq!(l.role(0), Role::Active);
        assert_eq!(l.role(2), Role::Passive);
        assert_eq!(l.role(63), Role::Passive);
        assert_eq!(Local::new(63, ABI, 1).role(62), Role::Active);
        assert_eq!(Local::new(0, ABI, 1).role(1), Role::Passive);
    }

    #[test]
    fn a_zero_incarnation_is_sent_as_one() {
        assert_eq!(Local::new(1, ABI, 0).incarnation, 1);
        assert_eq!(Local::new(1, ABI, 9).incarnation, 9);
    }

    #[test]
    fn a_valid_request_from_a_higher_id_passes() {
        assert_eq!(local().check_request(&request().encode()), Ok(2));
        let last = CmPriv {
            node: 63,
            ..request()
        };
        assert_eq!(local().check_request(&last.encode()), Ok(63));
    }

    #[test]
    fn malformed_requests_are_refused() {
        let l = local();
        let good = request().encode();
        let other_proto = CmPriv {
            proto: 2,
            ..request()
        }
        .encode();
        let mut no_magic = good;
        no_magic[0] = b'X';
        for data in [&[][..], &good[..15], &no_magic[..], &other_proto[..]] {
            let r = l.check_request(data);
            assert_eq!(r, Err(Refusal::Malformed));
            if let Err(r) = r {
                assert_eq!(r.reason(), RejectReason::BadPrivateData);
            }
        }
    }

    #[test]
    fn another_abi_is_refused_before_the_node_is_looked_at() {
        let l = local();
        let other = CmPriv {
            abi: 99,
            ..request()
        };
        let expected = Refusal::Abi {
            node: 2,
            theirs: 99,
            ours: ABI,
        };
        assert_eq!(l.check_request(&other.encode()), Err(expected));
        assert_eq!(expected.reason(), RejectReason::Abi);
        // Even when the node it claims is impossible.
        let both = CmPriv {
            node: 1,
            incarnation: 0,
            ..other
        };
        assert_eq!(
            l.check_request(&both.encode()),
            Err(Refusal::Abi {
                node: 1,
                theirs: 99,
                ours: ABI
            })
        );
    }

    #[test]
    fn impossible_node_claims_are_refused() {
        let l = local();
        for (node, incarnation) in [(64, 3), (u16::MAX, 3), (1, 3), (2, 0)] {
            let req = CmPriv {
                node,
                incarnation,
                ..request()
            };
            let r = l.check_request(&req.encode());
            let node = u32::from(node);
            assert_eq!(r, Err(Refusal::BadNode { node }));
            if let Err(r) = r {
                assert_eq!(r.reason(), RejectReason::BadPrivateData);
            }
        }
    }

    #[test]
    fn a_lower_id_must_not_connect() {
        let req = CmPriv {
            node: 0,
            ..request()
        };
        let r = local().check_request(&req.encode());
        assert_eq!(r, Err(Refusal::Role { node: 0, me: 1 }));
        if let Err(r) = r {
            assert_eq!(r.reason(), RejectReason::Role);
        }
    }

    #[test]
    fn requests_are_checked_against_the_configured_peer() {
        const IP: u32 = 0x0300_000a; // 10.0.0.3 in network byte order on little-endian.
        let f = facts(2);
        let mut p = Peer::new();
        let unknown = p.check_request(&f, Some(IP), IP);
        assert_eq!(unknown, Err(Refusal::UnknownNode { node: 2 }));
        assert_eq!(
            Refusal::UnknownNode { node: 2 }.reason(),
            RejectReason::UnknownNode
        );
        p.connect(&local(), &f);
        assert_eq!(p.check_request(&f, Some(IP), IP), Ok(()));
        for source in [Some(IP + 1), None] {
            assert_eq!(
                p.check_request(&f, source, IP),
                Err(Refusal::Address { node: 2 })
            );
        }
        assert_eq!(Refusal::Address { node: 2 }.reason(), RejectReason::Address);
        let stopping = PeerFacts {
            stopping: true,
            ..f
        };
        assert_eq!(
            p.check_request(&stopping, Some(IP), IP),
            Err(Refusal::Stopping { node: 2 })
        );
        assert_eq!(
            Refusal::Stopping { node: 2 }.reason(),
            RejectReason::NoResources
        );
        // An unknown node is reported before its address, the address before stopping.
        assert_eq!(
            p.check_request(&stopping, None, IP),
            Err(Refusal::Address { node: 2 })
        );
        p.forget();
        assert_eq!(
            p.check_request(&stopping, None, IP),
            Err(Refusal::UnknownNode { node: 2 })
        );
    }

    #[test]
    fn refusals_are_logged_as_before() {
        let mut buf = [0u8; 160];
        let from = "10.0.0.3";
        let cases: [(Refusal, &[u8]); 7] = [
            (
                Refusal::Malformed,
                b"refused a malformed connection request from 10.0.0.3",
            ),
            (
                Refusal::Abi {
                    node: 9,
                    theirs: 99,
                    ours: 4,
                },
                b"refused node 9 at 10.0.0.3: it speaks ABI v99, this node v4",
            ),
            (
                Refusal::BadNode { node: 64 },
                b"refused a request claiming node 64 from 10.0.0.3",
            ),
            (
                Refusal::Role { node: 0, me: 1 },
                b"refused node 0 at 10.0.0.3: this node (1) connects to lower ids",
            ),
            (
                Refusal::UnknownNode { node: 42 },
                b"refused node 42 at 10.0.0.3: node not configured there",
            ),
            (
                Refusal::Address { node: 9 },
                b"refused node 9 at 10.0.0.3: source address does not match the configured one",
            ),
            (
                Refusal::Stopping { node: 2 },
                b"refused node 2 at 10.0.0.3: no resources",
            ),
        ];
        for (refusal, text) in cases {
            let n = show(&refusal.message(from), &mut buf);
            assert_eq!(&buf[..n], text);
        }
    }

    #[test]
    fn the_connecting_side_reads_and_explains_a_reject() {
        let l = local();
        let theirs = Local::new(0, 3, 5).private_data(RejectReason::Abi.code());
        let r = l.rejection(0, &theirs);
        assert_eq!(
            r,
            Some(Rejection {
                peer: 0,
                reason: 4,
                abi_there: 3,
                abi_here: ABI
            })
        );
        let mut buf = [0u8; 160];
        if let Some(r) = r {
            let n = show(&r, &mut buf);
            assert_eq!(
                &buf[..n],
                b"node 0 refused the connection: ABI version mismatch (ABI v3 there, v4 here)"
            );
        }
        let odd = Rejection {
            peer: 5,
            reason: 200,
            abi_there: 4,
            abi_here: 4,
        };
        let n = show(&odd, &mut buf);
        assert_eq!(
            &buf[..n],
            b"node 5 refused the connection: unknown reason (ABI v4 there, v4 here)"
        );
        // A reject without ssi's private data (from the CM, or truncated).
        assert_eq!(l.rejection(0, &[]), None);
        assert_eq!(l.rejection(0, &theirs[..CM_PRIV_LEN - 1]), None);
        assert_eq!(l.rejection(0, &[0u8; 56]), None);
    }

    #[test]
    fn a_connection_is_announced_up_once() {
        let mut c = Conn::new();
        assert_eq!(c.state(), ConnState::Connecting);
        assert!(!c.may_send() && !c.closing() && !c.announced());
        assert_eq!(c.established(), Action::AnnounceUp);
        assert_eq!(c.state(), ConnState::Up);
        assert!(c.may_send() && c.announced());
        // The CM event after a frame that overtook it, or the other way round.
        assert_eq!(c.established(), Action::Nothing);
        assert_eq!(c.state(), ConnState::Up);
    }

    #[test]
    fn a_failure_while_connecting_tears_down_without_reporting() {
        let mut c = Conn::new();
        assert_eq!(c.fail(), Action::QueueTeardown);
        assert_eq!(c.fail(), Action::Nothing);
        c.close();
        assert!(c.closing() && !c.may_send());
        // A late ESTABLISHED does not bring a closing connection up.
        assert_eq!(c.established(), Action::Nothing);
        assert!(!c.announced());
        assert_eq!(c.closed(false), Action::Nothing);
    }

    #[test]
    fn a_failure_while_up_reports_down_after_one_teardown() {
        let mut c = Conn::new();
        assert_eq!(c.established(), Action::AnnounceUp);
        assert_eq!(c.fail(), Action::QueueTeardown);
        // A second failure (e.g. the CM disconnect after a completion error) and one
        // while the teardown runs queue nothing more.
        assert_eq!(c.fail(), Action::Nothing);
        // Still up until the teardown starts.
        assert!(c.may_send());
        c.close();
        assert_eq!(c.fail(), Action::Nothing);
        assert_eq!(c.closed(true), Action::AnnounceDown);
    }

    #[test]
    fn a_replaced_connection_closes_without_reporting_down() {
        let mut c = Conn::new();
        assert_eq!(c.established(), Action::AnnounceUp);
        assert_eq!(c.fail(), Action::QueueTeardown);
        c.close();
        assert_eq!(c.closed(false), Action::ReplacedClosed);
    }

    #[test]
    fn the_active_side_connects_and_retries_after_500_ms() {
        let l = local();
        let mut p = Peer::new();
        let f = facts(0);
        // Not wanted yet.
        assert!(!p.may_connect(&l, &f));
        assert_eq!(p.connect(&l, &f), Action::Connect { after_ms: 0 });
        assert!(p.wanted() && p.may_connect(&l, &f));
        let installed = PeerFacts {
            has_conn: true,
            ..f
        };
        // One attempt at a time.
        assert!(!p.may_connect(&l, &installed));
        // An attempt that never came up, twice: retried every 500 ms, counted.
        assert_eq!(
            p.closed(&l, &f, true, false),
            Action::Connect { after_ms: 500 }
        );
        assert_eq!(
            p.closed(&l, &f, true, false),
            Action::Connect { after_ms: RETRY_MS }
        );
        assert_eq!(p.failures(), 2);
        // One that had come up resets the count and is retried the same way.
        assert_eq!(
            p.closed(&l, &f, true, true),
            Action::Connect { after_ms: 500 }
        );
        assert_eq!(p.failures(), 0);
        // An attempt that could not start.
        assert_eq!(p.attempt_failed(&l, &f), Action::Connect { after_ms: 500 });
        // A newer connection is installed already: no retry.
        assert_eq!(p.closed(&l, &installed, true, false), Action::Nothing);
        // Core asking again restarts at once and clears the count.
        assert_eq!(p.connect(&l, &f), Action::Connect { after_ms: 0 });
        assert_eq!(p.failures(), 0);
        assert_eq!(p.connect(&l, &installed), Action::Nothing);
    }

    #[test]
    fn the_passive_side_waits() {
        let l = local();
        let mut p = Peer::new();
        let f = facts(2);
        assert_eq!(p.connect(&l, &f), Action::Nothing);
        assert!(p.wanted() && !p.may_connect(&l, &f));
        assert_eq!(p.attempt_failed(&l, &f), Action::Nothing);
        // An accepted connection that closes: the peer reconnects, not us.
        assert_eq!(p.closed(&l, &f, false, true), Action::Nothing);
        assert_eq!(p.closed(&l, &f, false, false), Action::Nothing);
        assert_eq!(p.failures(), 0);
    }

    #[test]
    fn forgetting_a_peer_stops_retrying() {
        let l = local();
        let mut p = Peer::new();
        let f = facts(0);
        assert_eq!(p.connect(&l, &f), Action::Connect { after_ms: 0 });
        p.forget();
        assert!(!p.wanted());
        // A retry already scheduled finds it unwanted, and nothing schedules another.
        assert!(!p.may_connect(&l, &f));
        assert_eq!(p.closed(&l, &f, true, true), Action::Nothing);
        assert_eq!(p.attempt_failed(&l, &f), Action::Nothing);
    }

    #[test]
    fn stopping_ends_every_attempt() {
        let l = local();
        let mut p = Peer::new();
        let f = facts(0);
        assert_eq!(p.connect(&l, &f), Action::Connect { after_ms: 0 });
        let stopping = PeerFacts {
            stopping: true,
            ..f
        };
        assert!(!p.may_connect(&l, &stopping));
        assert_eq!(p.closed(&l, &stopping, true, false), Action::Nothing);
        assert_eq!(p.attempt_failed(&l, &stopping), Action::Nothing);
        assert_eq!(p.connect(&l, &stopping), Action::Nothing);
        // The engine forgets every peer as it stops.
        p.forget();
        assert!(!p.may_connect(&l, &f));
    }

    #[test]
    fn a_link_that_fails_while_up_is_reported_down_and_redialled() {
        // The whole cycle on the active side, as conn.c runs it.
        let l = local();
        let mut p = Peer::new();
        let f = facts(0);
        assert_eq!(p.connect(&l, &f), Action::Connect { after_ms: 0 });
        let mut c = Conn::new();
        assert_eq!(c.established(), Action::AnnounceUp);
        assert_eq!(c.fail(), Action::QueueTeardown);
        assert_eq!(c.fail(), Action::Nothing);
        c.close();
        assert_eq!(c.closed(true), Action::AnnounceDown);
        assert_eq!(
            p.closed(&l, &f, true, c.announced()),
            Action::Connect { after_ms: RETRY_MS }
        );
        assert_eq!(p.failures(), 0);
    }
}
