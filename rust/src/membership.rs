// SPDX-License-Identifier: GPL-2.0

//! Cluster membership: which nodes are up, failure detection and the leader.
//!
//! Pure bookkeeping driven by the kernel: it reports hellos and heartbeats as they
//! arrive and calls [`Membership::tick`] periodically with the current time in
//! milliseconds; the returned [`Event`]s say what changed. Only comparisons and
//! subtraction on `u64` times: safe on 32-bit ARM.
//!
//! Rules:
//! - A configured peer becomes `Up` only through a hello with our ABI version.
//! - An `Up` peer silent for more than `down_after_ms` becomes `Down`; its heartbeats
//!   are then ignored until it says hello again (it must reconnect). Any frame from it
//!   counts as hearing from it, not only heartbeats.
//! - Time this node itself was stalled does not count as a peer's silence: when a
//!   tick comes more than `down_after_ms / 2` after the previous one (a virtual machine
//!   that was not scheduled, a long interrupt storm), every `Up` peer is credited with
//!   the gap. Otherwise the first tick after the stall would find every peer silent.
//! - A hello with a new incarnation from a known peer means it restarted.
//! - The leader is the lowest id among this node and its `Up` peers.
//!
//! The silence that means "down" is a setting: the default keeps the cluster's promise
//! (down within 2 s), but a node that is only descheduled for longer than that (an
//! overloaded virtual machine host) is then declared dead, with everything that
//! follows (its pages lost, regions homed there killed). The longest gap heard from
//! each peer and the longest stall of this node are recorded to size it.

/// Default heartbeat period.
pub const HEARTBEAT_INTERVAL_MS: u64 = 200;
/// Default silence after which a peer is down (detection within this plus one tick,
/// well inside the 2 s the cluster promises).
pub const DOWN_AFTER_MS: u64 = 1000;
/// The shortest silence that may mean "down": two and a half heartbeat periods.
pub const MIN_DOWN_AFTER_MS: u64 = 500;
/// The longest: a minute.
pub const MAX_DOWN_AFTER_MS: u64 = 60_000;

/// A peer's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    /// Configured, never heard from (or removed and re-added).
    Configured,
    /// Said hello and is heard from.
    Up,
    /// Was up, then went silent or disconnected.
    Down,
}

impl PeerState {
    /// Lowercase label for listings.
    pub fn label(self) -> &'static str {
        match self {
            Self::Configured => "configured",
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

/// One peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its node id.
    pub id: u16,
    /// Its state.
    pub state: PeerState,
    /// Its incarnation from its last hello (0 before any).
    pub incarnation: u32,
    /// When we last heard from it (ms).
    pub last_heard_ms: u64,
    /// The leader it last reported.
    pub leader_seen: u16,
    /// The bookkeeping version it last reported.
    pub kv_version: u64,
    /// The longest silence heard from it while it was up (ms), not counting stalls of
    /// this node.
    pub longest_gap_ms: u64,
}

impl Peer {
    /// Something arrived from it at `now_ms` (older news does not move time back).
    fn heard(&mut self, now_ms: u64) {
        self.longest_gap_ms = self
            .longest_gap_ms
            .max(now_ms.saturating_sub(self.last_heard_ms));
        self.last_heard_ms = self.last_heard_ms.max(now_ms);
    }
}

/// What changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The peer is up (first hello, or hello after being down).
    Up {
        /// The peer.
        id: u16,
        /// It came back with a new incarnation (it restarted).
        restarted: bool,
    },
    /// The peer restarted while we still thought it up.
    Restarted {
        /// The peer.
        id: u16,
    },
    /// The peer is down.
    Down {
        /// The peer.
        id: u16,
    },
    /// The leader changed.
    LeaderChanged {
        /// The new leader.
        leader: u16,
    },
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipError {
    /// The id is this node's own.
    IsSelf,
    /// The peer is configured already.
    Duplicate,
    /// No room for another peer.
    Full,
    /// No such peer.
    UnknownPeer,
    /// The peer speaks another ABI version.
    AbiMismatch {
        /// Its version.
        theirs: u32,
        /// Ours.
        ours: u32,
    },
}

/// Up to `N` events from one call.
#[derive(Debug)]
pub struct Events<const N: usize> {
    items: [Option<Event>; N],
    len: usize,
}

impl<const N: usize> Default for Events<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Events<N> {
    fn new() -> Self {
        Self {
            items: [None; N],
            len: 0,
        }
    }

    fn push(&mut self, e: Event) {
        // Callers size N for the worst case (one per peer plus one leader change).
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = Some(e);
            self.len += 1;
        }
    }

    /// The events in order.
    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.items[..self.len].iter().flatten()
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The membership view of one node, with room for `N` peers.
pub struct Membership<const N: usize> {
    self_id: u16,
    abi_version: u32,
    down_after_ms: u64,
    peers: [Option<Peer>; N],
    leader: u16,
    /// The time of the previous tick (`None` before the first).
    last_tick_ms: Option<u64>,
    /// The longest stall of this node seen between two ticks (ms), 0 if none.
    longest_stall_ms: u64,
}

impl<const N: usize> Membership<N> {
    /// A node alone.
    pub const fn new(self_id: u16, abi_version: u32, down_after_ms: u64) -> Self {
        Self {
            self_id,
            abi_version,
            down_after_ms,
            peers: [None; N],
            leader: self_id,
            last_tick_ms: None,
            longest_stall_ms: 0,
        }
    }

    /// Starts over as `self_id`, alone, declaring peers down after `down_after_ms` of
    /// silence (clamped to [`MIN_DOWN_AFTER_MS`]..=[`MAX_DOWN_AFTER_MS`]); in place (the
    /// table may be too large for a kernel stack).
    pub fn reset(&mut self, self_id: u16, down_after_ms: u64) {
        self.self_id = self_id;
        self.down_after_ms = down_after_ms.clamp(MIN_DOWN_AFTER_MS, MAX_DOWN_AFTER_MS);
        self.leader = self_id;
        self.last_tick_ms = None;
        self.longest_stall_ms = 0;
        self.peers.iter_mut().for_each(|p| *p = None);
    }

    /// The silence after which a peer is down (ms).
    pub fn down_after_ms(&self) -> u64 {
        self.down_after_ms
    }

    /// The longest stall of this node seen so far (ms): a tick that came that late.
    pub fn longest_stall_ms(&self) -> u64 {
        self.longest_stall_ms
    }

    /// This node's id.
    pub fn self_id(&self) -> u16 {
        self.self_id
    }

    /// The current leader.
    pub fn leader(&self) -> u16 {
        self.leader
    }

    /// The configured peers, in slot order.
    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.iter().flatten()
    }

    /// One peer.
    pub fn peer(&self, id: u16) -> Option<&Peer> {
        self.peers().find(|p| p.id == id)
    }

    /// True if `id` is this node or an `Up` peer.
    pub fn is_live(&self, id: u16) -> bool {
        id == self.self_id || self.peer(id).is_some_and(|p| p.state == PeerState::Up)
    }

    fn peer_mut(&mut self, id: u16) -> Option<&mut Peer> {
        self.peers.iter_mut().flatten().find(|p| p.id == id)
    }

    /// Adds a peer to watch.
    pub fn add_peer(&mut self, id: u16) -> Result<(), MembershipError> {
        if id == self.self_id {
            return Err(MembershipError::IsSelf);
        }
        if self.peer(id).is_some() {
            return Err(MembershipError::Duplicate);
        }
        let slot = self
            .peers
            .iter_mut()
            .find(|s| s.is_none())
            .ok_or(MembershipError::Full)?;
        *slot = Some(Peer {
            id,
            state: PeerState::Configured,
            incarnation: 0,
            last_heard_ms: 0,
            leader_seen: id,
            kv_version: 0,
            longest_gap_ms: 0,
        });
        Ok(())
    }

    /// Forgets a peer. Returns the leader change it causes, if any.
    pub fn remove_peer(&mut self, id: u16) -> Result<Option<Event>, MembershipError> {
        let slot = self
            .peers
            .iter_mut()
            .find(|s| matches!(s, Some(p) if p.id == id))
            .ok_or(MembershipError::UnknownPeer)?;
        *slot = None;
        Ok(self.elect())
    }

    /// Recomputes the leader; returns a change event if it moved.
    fn elect(&mut self) -> Option<Event> {
        let leader = self
            .peers()
            .filter(|p| p.state == PeerState::Up)
            .map(|p| p.id)
            .fold(self.self_id, |a, b| a.min(b));
        if leader == self.leader {
            return None;
        }
        self.leader = leader;
        Some(Event::LeaderChanged { leader })
    }

    /// A hello arrived from `id`.
    pub fn on_hello(
        &mut self,
        id: u16,
        abi_version: u32,
        incarnation: u32,
        now_ms: u64,
    ) -> Result<Events<2>, MembershipError> {
        let ours = self.abi_version;
        let peer = self.peer_mut(id).ok_or(MembershipError::UnknownPeer)?;
        if abi_version != ours {
            return Err(MembershipError::AbiMismatch {
                theirs: abi_version,
                ours,
            });
        }
        let mut events = Events::new();
        let restarted = peer.incarnation != 0 && peer.incarnation != incarnation;
        match peer.state {
            PeerState::Up if restarted => events.push(Event::Restarted { id }),
            PeerState::Up => {}
            PeerState::Configured | PeerState::Down => events.push(Event::Up { id, restarted }),
        }
        peer.state = PeerState::Up;
        peer.incarnation = incarnation;
        peer.last_heard_ms = now_ms;
        if let Some(e) = self.elect() {
            events.push(e);
        }
        Ok(events)
    }

    /// A heartbeat arrived from `id`. Ignored unless the peer is up with this
    /// incarnation (a restarted or down peer must say hello first).
    pub fn on_heartbeat(
        &mut self,
        id: u16,
        incarnation: u32,
        leader: u16,
        kv_version: u64,
        now_ms: u64,
    ) -> bool {
        match self.peer_mut(id) {
            Some(p) if p.state == PeerState::Up && p.incarnation == incarnation => {
                p.heard(now_ms);
                p.leader_seen = leader;
                p.kv_version = kv_version;
                true
            }
            _ => false,
        }
    }

    /// Some frame arrived from `id`: an `Up` peer is alive. Returns false if ignored
    /// (the peer is not up: only a hello brings it back).
    pub fn on_traffic(&mut self, id: u16, now_ms: u64) -> bool {
        match self.peer_mut(id) {
            Some(p) if p.state == PeerState::Up => {
                p.heard(now_ms);
                true
            }
            _ => false,
        }
    }

    /// The connection to `id` broke: it is down now.
    pub fn on_disconnect(&mut self, id: u16) -> Events<2> {
        let mut events = Events::new();
        if let Some(p) = self.peer_mut(id) {
            if p.state == PeerState::Up {
                p.state = PeerState::Down;
                events.push(Event::Down { id });
            }
        }
        if let Some(e) = self.elect() {
            events.push(e);
        }
        events
    }

    /// Marks silent peers down. Call at least every heartbeat interval. `E` must be at
    /// least `N + 1`.
    pub fn tick<const E: usize>(&mut self, now_ms: u64) -> Events<E> {
        let mut events = Events::new();
        let down_after = self.down_after_ms;
        let stalled_ms = match self.last_tick_ms {
            Some(last) if now_ms.saturating_sub(last) > down_after / 2 => now_ms - last,
            _ => 0,
        };
        self.last_tick_ms = Some(now_ms);
        self.longest_stall_ms = self.longest_stall_ms.max(stalled_ms);
        for p in self.peers.iter_mut().flatten() {
            if p.state == PeerState::Up && stalled_ms > 0 {
                p.last_heard_ms = now_ms.min(p.last_heard_ms.saturating_add(stalled_ms));
            }
            if p.state == PeerState::Up && now_ms.saturating_sub(p.last_heard_ms) > down_after {
                p.state = PeerState::Down;
                events.push(Event::Down { id: p.id });
            }
        }
        if let Some(e) = self.elect() {
            events.push(e);
        }
        events
    }
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_membership))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    const ABI: u32 = 1;

    fn three() -> Membership<4> {
        let mut m = Membership::new(1, ABI, DOWN_AFTER_MS);
        assert_eq!(m.add_peer(0), Ok(()));
        assert_eq!(m.add_peer(2), Ok(()));
        m
    }

    #[test]
    fn peers_come_up_by_hello_and_lowest_id_leads() {
        let mut m = three();
        assert_eq!(m.leader(), 1);
        let ev = m.on_hello(2, ABI, 7, 100);
        assert!(ev.is_ok());
        assert_eq!(m.leader(), 1);
        let ev = m.on_hello(0, ABI, 9, 100).map(|e| e.len()).unwrap_or(0);
        assert_eq!(ev, 2); // Up + LeaderChanged
        assert_eq!(m.leader(), 0);
        assert!(m.is_live(0) && m.is_live(1) && m.is_live(2));
    }

    #[test]
    fn refuses_bad_peers_and_versions() {
        let mut m = three();
        assert_eq!(m.add_peer(1), Err(MembershipError::IsSelf));
        assert_eq!(m.add_peer(2), Err(MembershipError::Duplicate));
        assert_eq!(
            m.on_hello(5, ABI, 1, 0).err(),
            Some(MembershipError::UnknownPeer)
        );
        assert_eq!(
            m.on_hello(2, ABI + 1, 1, 0).err(),
            Some(MembershipError::AbiMismatch {
                theirs: ABI + 1,
                ours: ABI
            })
        );
        assert_eq!(m.peer(2).map(|p| p.state), Some(PeerState::Configured));
        assert_eq!(m.add_peer(3), Ok(()));
        assert_eq!(m.add_peer(4), Ok(()));
        assert_eq!(m.add_peer(6), Err(MembershipError::Full));
    }

    #[test]
    fn silent_peer_goes_down_and_leader_moves() {
        let mut m = three();
        assert!(m.on_hello(0, ABI, 1, 0).is_ok());
        assert!(m.on_hello(2, ABI, 1, 0).is_ok());
        assert!(m.on_heartbeat(2, 1, 0, 0, 900));
        let ev: Events<5> = m.tick(DOWN_AFTER_MS);
        assert!(ev.is_empty());
        let ev: Events<5> = m.tick(DOWN_AFTER_MS + 1);
        // Node 0 went silent: down, and node 1 leads.
        assert_eq!(ev.iter().copied().next(), Some(Event::Down { id: 0 }));
        assert_eq!(m.leader(), 1);
        assert_eq!(m.peer(2).map(|p| p.state), Some(PeerState::Up));
        // A heartbeat does not bring a down peer back: it must say hello.
        assert!(!m.on_heartbeat(0, 1, 0, 0, 1500));
        assert_eq!(m.peer(0).map(|p| p.state), Some(PeerState::Down));
        let ev = m
            .on_hello(0, ABI, 2, 1600)
            .map(|e| e.iter().copied().next());
        assert_eq!(
            ev,
            Ok(Some(Event::Up {
                id: 0,
                restarted: true
            }))
        );
        assert_eq!(m.leader(), 0);
    }

    #[test]
    fn a_stall_of_this_node_is_not_the_silence_of_its_peers() {
        let mut m = three();
        assert!(m.on_hello(2, ABI, 1, 0).is_ok());
        for t in (200..=600).step_by(200) {
            assert!(m.on_heartbeat(2, 1, 1, 0, t));
            let ev: Events<5> = m.tick(t);
            assert!(ev.is_empty());
        }
        // This node was not scheduled for 2 s: node 2's last heartbeat is 2 s old, but
        // so is our previous tick.
        let ev: Events<5> = m.tick(2600);
        assert!(ev.is_empty());
        assert_eq!(m.peer(2).map(|p| p.state), Some(PeerState::Up));
        // Regular ticks again: node 2 really is silent now and goes down on time.
        for t in (2800..=3600).step_by(200) {
            let ev: Events<5> = m.tick(t);
            assert!(ev.is_empty());
        }
        let ev: Events<5> = m.tick(3800);
        assert_eq!(ev.iter().copied().next(), Some(Event::Down { id: 2 }));
    }

    #[test]
    fn any_frame_keeps_a_peer_up_but_does_not_revive_it() {
        let mut m = three();
        assert!(m.on_hello(2, ABI, 1, 0).is_ok());
        for t in (200..=3000).step_by(200) {
            assert!(m.on_traffic(2, t));
            let ev: Events<5> = m.tick(t);
            assert!(ev.is_empty());
        }
        // Older news does not move the time back.
        assert!(m.on_traffic(2, 100));
        assert_eq!(m.peer(2).map(|p| p.last_heard_ms), Some(3000));
        assert!(!m.on_disconnect(2).is_empty());
        assert!(!m.on_traffic(2, 3200));
        assert_eq!(m.peer(2).map(|p| p.state), Some(PeerState::Down));
        // Node 0 never said hello.
        assert!(!m.on_traffic(0, 3200));
    }

    #[test]
    fn a_longer_timeout_rides_out_a_peer_stall_and_records_it() {
        let mut m = three();
        m.reset(1, 4000);
        assert_eq!(m.add_peer(2), Ok(()));
        assert_eq!(m.down_after_ms(), 4000);
        assert!(m.on_hello(2, ABI, 1, 0).is_ok());
        // Node 2 is descheduled for 2.6 s while this node ticks on time.
        for t in (200..=2600).step_by(200) {
            if t == 2600 {
                assert!(m.on_heartbeat(2, 1, 1, 0, t));
            }
            let ev: Events<5> = m.tick(t);
            assert!(ev.is_empty());
        }
        assert_eq!(m.peer(2).map(|p| p.state), Some(PeerState::Up));
        assert_eq!(m.peer(2).map(|p| p.longest_gap_ms), Some(2600));
        assert_eq!(m.longest_stall_ms(), 0);
        // Silence past the timeout is still a death.
        for t in (2800..=6600).step_by(200) {
            let ev: Events<5> = m.tick(t);
            assert!(ev.is_empty());
        }
        let ev: Events<5> = m.tick(6700);
        assert_eq!(ev.iter().copied().next(), Some(Event::Down { id: 2 }));
    }

    #[test]
    fn the_timeout_is_clamped_and_stalls_are_recorded() {
        let mut m = three();
        m.reset(1, 1);
        assert_eq!(m.down_after_ms(), MIN_DOWN_AFTER_MS);
        m.reset(1, u64::MAX);
        assert_eq!(m.down_after_ms(), MAX_DOWN_AFTER_MS);
        m.reset(1, DOWN_AFTER_MS);
        let _: Events<5> = m.tick(200);
        let _: Events<5> = m.tick(400);
        assert_eq!(m.longest_stall_ms(), 0);
        let _: Events<5> = m.tick(3400);
        assert_eq!(m.longest_stall_ms(), 3000);
    }

    #[test]
    fn restart_while_up_and_disconnect() {
        let mut m = three();
        assert!(m.on_hello(2, ABI, 1, 0).is_ok());
        let ev = m.on_hello(2, ABI, 2, 10).map(|e| e.iter().copied().next());
        assert_eq!(ev, Ok(Some(Event::Restarted { id: 2 })));
        assert!(!m.on_heartbeat(2, 1, 2, 0, 20));
        assert!(m.on_heartbeat(2, 2, 2, 0, 20));
        let ev = m.on_disconnect(2);
        assert_eq!(ev.iter().copied().next(), Some(Event::Down { id: 2 }));
        assert_eq!(m.remove_peer(2), Ok(None));
        assert_eq!(m.remove_peer(2), Err(MembershipError::UnknownPeer));
    }
}
