// SPDX-License-Identifier: GPL-2.0

//! Changes of a distributed process's address space and the hops of its threads, kept
//! apart at the process's home.
//!
//! A thread that moves takes its process's layout with it (the mappings, region
//! mappings included) and the destination builds an address space from it. A change
//! (a shared mapping made or removed, memory opened with `mprotect`) reaches every
//! address space the nodes hold through the home, which applies it on every node
//! before the change is over. Between the snapshot of the layout and the moment the
//! destination holds the new address space, a change would reach neither: the layout
//! was taken before it, and the destination has nothing to apply it to yet. So the home
//! lets a hop capture the layout only while no change of the process is under way, and
//! holds back the changes that come while a hop is in flight until the destination
//! holds the address space (the source then says the hop is over, whether it worked or
//! not). A hop waiting to begin holds back new changes too, so that a busy program
//! cannot starve it.
//!
//! [`SpaceGates`] is that bookkeeping, one gate per process with anything under way;
//! `ssi_migrate/address_space.rs` waits on it. A hop whose source went down, or that
//! has been in flight for longer than any hop may take, is forgotten ([`SpaceGates::expire`]):
//! a lost `end` must not hold a process's changes back for ever.

/// Processes with changes or hops under way at once. A change finds a gate nearly
/// always (they last a few round trips); one that does not goes on untracked, while a
/// hop that does not is refused (try again).
pub const GATES: usize = 16;
/// Hops of one process in flight at once (more wait).
pub const HOPS: usize = 4;

/// A hop in flight: from `node`, `token` its id there, since `since_ms`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Hop {
    used: bool,
    node: u32,
    token: u64,
    since_ms: u64,
}

const NO_HOP: Hop = Hop {
    used: false,
    node: 0,
    token: 0,
    since_ms: 0,
};

/// One process's gate.
#[derive(Clone, Copy, Debug, Default)]
struct Gate {
    /// 0: the slot is free.
    process: u64,
    changes: u32,
    /// Hops waiting to begin.
    waiting: u32,
    hops: [Hop; HOPS],
}

impl Gate {
    fn hops_in_flight(&self) -> usize {
        self.hops.iter().filter(|h| h.used).count()
    }

    fn idle(&self) -> bool {
        self.changes == 0 && self.waiting == 0 && self.hops_in_flight() == 0
    }
}

/// What a request to begin gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// It may go on (and must be ended).
    Yes,
    /// Not now: try again once something ended.
    Wait,
    /// No room to keep track of it.
    Full,
}

/// The gates of the processes homed here.
#[derive(Debug)]
pub struct SpaceGates {
    gates: [Gate; GATES],
}

impl Default for SpaceGates {
    fn default() -> Self {
        Self::new()
    }
}

impl SpaceGates {
    pub const fn new() -> Self {
        const FREE: Gate = Gate {
            process: 0,
            changes: 0,
            waiting: 0,
            hops: [NO_HOP; HOPS],
        };
        Self {
            gates: [FREE; GATES],
        }
    }

    fn find(&mut self, process: u64) -> Option<&mut Gate> {
        self.gates.iter_mut().find(|g| g.process == process)
    }

    fn find_or_add(&mut self, process: u64) -> Option<&mut Gate> {
        let i = match self.gates.iter().position(|g| g.process == process) {
            Some(i) => i,
            None => {
                let i = self.gates.iter().position(|g| g.process == 0)?;
                self.gates[i] = Gate {
                    process,
                    ..Gate::default()
                };
                i
            }
        };
        Some(&mut self.gates[i])
    }

    fn release_if_idle(&mut self, process: u64) {
        if let Some(g) = self.find(process) {
            if g.idle() {
                g.process = 0;
            }
        }
    }

    /// A change of `process` wants to begin: it may while no hop of it is in flight or
    /// waiting. [`Admit::Yes`] must be followed by [`Self::end_change`].
    pub fn begin_change(&mut self, process: u64) -> Admit {
        if process == 0 {
            return Admit::Yes;
        }
        let Some(g) = self.find_or_add(process) else {
            return Admit::Full;
        };
        if g.waiting > 0 || g.hops_in_flight() > 0 {
            return Admit::Wait;
        }
        g.changes += 1;
        Admit::Yes
    }

    /// A change that was admitted is over.
    pub fn end_change(&mut self, process: u64) {
        if let Some(g) = self.find(process) {
            g.changes = g.changes.saturating_sub(1);
        }
        self.release_if_idle(process);
    }

    /// A hop of `process` wants to begin: from now on new changes wait. Must be
    /// followed by [`Self::begin_hop`] until it is admitted, or [`Self::give_up_hop`].
    pub fn want_hop(&mut self, process: u64) -> Admit {
        match self.find_or_add(process) {
            Some(g) => {
                g.waiting += 1;
                Admit::Yes
            }
            None => Admit::Full,
        }
    }

    /// The hop `token` of `node` (announced by [`Self::want_hop`]) begins if no change
    /// of `process` is under way; [`Admit::Yes`] must be followed by
    /// [`Self::end_hop`].
    pub fn begin_hop(&mut self, process: u64, node: u32, token: u64, now_ms: u64) -> Admit {
        let Some(g) = self.find(process) else {
            return Admit::Full;
        };
        if g.changes > 0 {
            return Admit::Wait;
        }
        let Some(slot) = g.hops.iter_mut().find(|h| !h.used) else {
            return Admit::Wait;
        };
        *slot = Hop {
            used: true,
            node,
            token,
            since_ms: now_ms,
        };
        g.waiting = g.waiting.saturating_sub(1);
        Admit::Yes
    }

    /// A hop announced by [`Self::want_hop`] will not begin after all.
    pub fn give_up_hop(&mut self, process: u64) {
        if let Some(g) = self.find(process) {
            g.waiting = g.waiting.saturating_sub(1);
        }
        self.release_if_idle(process);
    }

    /// The hop `token` of `node` is over (the destination holds the address space, or
    /// the hop failed). Whether it was in flight.
    pub fn end_hop(&mut self, process: u64, node: u32, token: u64) -> bool {
        let mut found = false;
        if let Some(g) = self.find(process) {
            for h in g.hops.iter_mut() {
                if h.used && h.node == node && h.token == token {
                    *h = NO_HOP;
                    found = true;
                }
            }
        }
        self.release_if_idle(process);
        found
    }

    /// Forgets the hops in flight whose node is not up, or that began more than
    /// `max_age_ms` ago; the number forgotten.
    pub fn expire(&mut self, now_ms: u64, max_age_ms: u64, up: impl Fn(u32) -> bool) -> usize {
        let mut n = 0;
        for g in self.gates.iter_mut().filter(|g| g.process != 0) {
            for h in g.hops.iter_mut() {
                if h.used && (!up(h.node) || now_ms.saturating_sub(h.since_ms) > max_age_ms) {
                    *h = NO_HOP;
                    n += 1;
                }
            }
            if g.idle() {
                g.process = 0;
            }
        }
        n
    }

    /// Changes of `process` under way and hops of it in flight.
    pub fn state(&self, process: u64) -> (u32, usize) {
        self.gates
            .iter()
            .find(|g| g.process == process && process != 0)
            .map_or((0, 0), |g| (g.changes, g.hops_in_flight()))
    }
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_space_gate))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    #[test]
    fn a_hop_waits_for_changes_and_holds_new_ones_back() {
        let mut g = SpaceGates::new();
        assert_eq!(g.begin_change(7), Admit::Yes);
        assert_eq!(g.want_hop(7), Admit::Yes);
        // The change under way keeps the hop from beginning; a new one waits.
        assert_eq!(g.begin_hop(7, 1, 100, 0), Admit::Wait);
        assert_eq!(g.begin_change(7), Admit::Wait);
        g.end_change(7);
        assert_eq!(g.begin_hop(7, 1, 100, 0), Admit::Yes);
        assert_eq!(g.state(7), (0, 1));
        assert_eq!(g.begin_change(7), Admit::Wait);
        // Another process is not held back.
        assert_eq!(g.begin_change(8), Admit::Yes);
        g.end_change(8);
        assert!(g.end_hop(7, 1, 100));
        assert!(!g.end_hop(7, 1, 100));
        assert_eq!(g.begin_change(7), Admit::Yes);
        g.end_change(7);
        assert_eq!(g.state(7), (0, 0));
    }

    #[test]
    fn a_hop_given_up_releases_the_changes() {
        let mut g = SpaceGates::new();
        assert_eq!(g.want_hop(3), Admit::Yes);
        assert_eq!(g.begin_change(3), Admit::Wait);
        g.give_up_hop(3);
        assert_eq!(g.begin_change(3), Admit::Yes);
        g.end_change(3);
    }

    #[test]
    fn hops_of_lost_nodes_and_old_hops_are_forgotten() {
        let mut g = SpaceGates::new();
        assert_eq!(g.want_hop(5), Admit::Yes);
        assert_eq!(g.begin_hop(5, 2, 1, 1000), Admit::Yes);
        assert_eq!(g.want_hop(5), Admit::Yes);
        assert_eq!(g.begin_hop(5, 3, 1, 1000), Admit::Yes);
        assert_eq!(g.expire(2000, 60_000, |n| n != 2), 1);
        assert_eq!(g.state(5), (0, 1));
        assert_eq!(g.expire(70_000, 60_000, |_| true), 1);
        assert_eq!(g.begin_change(5), Admit::Yes);
        g.end_change(5);
    }

    #[test]
    fn the_table_is_bounded_and_slots_come_back() {
        let mut g = SpaceGates::new();
        for p in 1..=GATES as u64 {
            assert_eq!(g.begin_change(p), Admit::Yes);
        }
        assert_eq!(g.begin_change(1000), Admit::Full);
        assert_eq!(g.want_hop(1000), Admit::Full);
        g.end_change(1);
        assert_eq!(g.begin_change(1000), Admit::Yes);
        // Process 0 is no distributed process: nothing to keep apart.
        assert_eq!(g.begin_change(0), Admit::Yes);
    }
}
