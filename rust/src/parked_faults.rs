// SPDX-License-Identifier: GPL-2.0

//! The faults a region's home holds until their page is free.
//!
//! While a plan is in flight its page is busy at the directory (`directory.rs`). A remote
//! fault on a busy page used to be answered `Busy` at once, and the faulting node slept a
//! little and asked again: under a lock handed between nodes that is a large share of
//! the faults (four threads on three nodes on one `pthread_mutex`: 51 of one node's 132),
//! each a round trip and two messages spent for nothing, and the page went to whoever
//! asked at the right moment rather than to who asked first. Instead the home *parks*
//! the fault here and answers it with its plan the moment the page is free (the plan in
//! flight completed or was aborted, or its node went down), first come, first served.
//!
//! A node has at most one fault of a region in flight (faults of a region are serialised
//! on each node), so there is at most one parked fault per node: a slot per node id. A
//! new fault from a node replaces what it had parked (an earlier one it gave up on). A
//! parked fault waits at most as long as its node waits for the answer: a node that gives
//! up tells the home (its `PageDone` for the page, not ok), which cancels the parked
//! fault ([`ParkedFaults::cancel`]) unless the plan was made meanwhile, which the
//! `PageDone` then aborts as before.

use super::directory::MAX_NODES;

/// A fault answered later: its page, the faulting node, its request's sequence number
/// (the answer names it) and whether it is a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParkedFault {
    /// The page.
    pub page: u32,
    /// The faulting node.
    pub node: u16,
    /// The sequence number of the node's request.
    pub seq: u32,
    /// A write fault.
    pub write: bool,
}

/// One node's slot: its parked fault and when it was parked (0: empty).
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    order: u32,
    page: u32,
    seq: u32,
    write: bool,
}

/// The parked faults of one region (home only).
#[derive(Debug)]
pub struct ParkedFaults {
    slots: [Slot; MAX_NODES as usize],
    /// The order of the next parked fault (never 0).
    next: u32,
    parked: usize,
}

impl Default for ParkedFaults {
    fn default() -> Self {
        Self::new()
    }
}

impl ParkedFaults {
    /// No fault parked.
    pub const fn new() -> Self {
        Self {
            slots: [Slot {
                order: 0,
                page: 0,
                seq: 0,
                write: false,
            }; MAX_NODES as usize],
            next: 1,
            parked: 0,
        }
    }

    /// No fault parked, the next one numbered `next` in the order of arrival (tests
    /// start near the counter's wrap; 0 counts as 1).
    pub const fn with_next_order(next: u32) -> Self {
        let mut p = Self::new();
        p.next = if next == 0 { 1 } else { next };
        p
    }

    /// How many faults are parked.
    pub fn len(&self) -> usize {
        self.parked
    }

    /// True if no fault is parked.
    pub fn is_empty(&self) -> bool {
        self.parked == 0
    }

    /// Parks `f` behind the faults parked before it, replacing what its node had parked.
    /// False (nothing parked) for a node id out of range.
    pub fn park(&mut self, f: ParkedFault) -> bool {
        let Some(slot) = self.slots.get_mut(usize::from(f.node)) else {
            return false;
        };
        if slot.order == 0 {
            self.parked += 1;
        }
        *slot = Slot {
            order: self.next,
            page: f.page,
            seq: f.seq,
            write: f.write,
        };
        // Orders only compare parked faults, which number at most MAX_NODES: after a
        // wrap, renumber them in their order.
        self.next = self.next.wrapping_add(1);
        if self.next == 0 {
            self.renumber();
        }
        true
    }

    /// Takes the fault parked first on `page`.
    pub fn take_next(&mut self, page: u32) -> Option<ParkedFault> {
        let (node, slot) = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.order != 0 && s.page == page)
            .min_by_key(|(_, s)| s.order)?;
        let f = ParkedFault {
            page,
            // Below MAX_NODES.
            node: node as u16,
            seq: slot.seq,
            write: slot.write,
        };
        self.clear(node);
        Some(f)
    }

    /// Node `node` gave up on its fault on `page`: forgets it if it is parked. True if
    /// it was.
    pub fn cancel(&mut self, node: u16, page: u32) -> bool {
        let n = usize::from(node);
        match self.slots.get(n) {
            Some(s) if s.order != 0 && s.page == page => {
                self.clear(n);
                true
            }
            _ => false,
        }
    }

    /// Node `node` went down: forgets its parked fault.
    pub fn drop_node(&mut self, node: u16) {
        let n = usize::from(node);
        if self.slots.get(n).is_some_and(|s| s.order != 0) {
            self.clear(n);
        }
    }

    /// The pages with a parked fault, the one parked first for each page first (a page
    /// may come more than once).
    pub fn pages(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().filter(|s| s.order != 0).map(|s| s.page)
    }

    fn clear(&mut self, n: usize) {
        self.slots[n] = Slot::default();
        self.parked -= 1;
    }

    fn renumber(&mut self) {
        let mut order = 1;
        while let Some((n, _)) = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.order >= order)
            .min_by_key(|(_, s)| s.order)
        {
            // The smallest order not renumbered yet becomes `order`; renumbered ones are
            // below `order` and so left alone.
            self.slots[n].order = order;
            order += 1;
            if order as usize > MAX_NODES as usize {
                break;
            }
        }
        self.next = order;
    }
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_parked_faults))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    fn fault(page: u32, node: u16, seq: u32) -> ParkedFault {
        ParkedFault {
            page,
            node,
            seq,
            write: node.is_multiple_of(2),
        }
    }

    #[test]
    fn first_come_first_served_per_page() {
        let mut p = ParkedFaults::new();
        assert!(p.park(fault(7, 3, 30)));
        assert!(p.park(fault(9, 1, 10)));
        assert!(p.park(fault(7, 2, 20)));
        assert_eq!(p.len(), 3);
        assert_eq!(p.take_next(7), Some(fault(7, 3, 30)));
        assert_eq!(p.take_next(7), Some(fault(7, 2, 20)));
        assert_eq!(p.take_next(7), None);
        assert_eq!(p.take_next(9), Some(fault(9, 1, 10)));
        assert!(p.is_empty());
    }

    #[test]
    fn a_node_parks_one_fault_its_latest() {
        let mut p = ParkedFaults::new();
        assert!(p.park(fault(7, 3, 30)));
        assert!(p.park(fault(7, 4, 40)));
        // Node 3 gave up on seq 30 and asks again: it goes behind node 4.
        assert!(p.park(fault(8, 3, 31)));
        assert_eq!(p.len(), 2);
        assert_eq!(p.take_next(7), Some(fault(7, 4, 40)));
        assert_eq!(p.take_next(7), None);
        assert_eq!(p.take_next(8), Some(fault(8, 3, 31)));
    }

    #[test]
    fn cancel_and_node_loss_forget_only_what_they_name() {
        let mut p = ParkedFaults::new();
        assert!(p.park(fault(7, 3, 30)));
        assert!(p.park(fault(7, 5, 50)));
        assert!(!p.cancel(3, 8));
        assert!(p.cancel(3, 7));
        assert!(!p.cancel(3, 7));
        p.drop_node(9);
        assert_eq!(p.len(), 1);
        p.drop_node(5);
        assert!(p.is_empty());
        assert_eq!(p.take_next(7), None);
    }

    #[test]
    fn node_ids_out_of_range_are_refused() {
        let mut p = ParkedFaults::new();
        assert!(!p.park(fault(1, MAX_NODES, 1)));
        assert!(!p.cancel(MAX_NODES, 1));
        p.drop_node(u16::MAX);
        assert!(p.is_empty());
    }

    #[test]
    fn order_survives_the_counter_wrapping() {
        let mut p = ParkedFaults::with_next_order(u32::MAX - 1);
        assert!(p.park(fault(7, 3, 1)));
        assert!(p.park(fault(7, 1, 2)));
        // Wrapped: renumbered in their order.
        assert!(p.park(fault(7, 2, 3)));
        assert_eq!(p.take_next(7).map(|f| f.node), Some(3));
        assert_eq!(p.take_next(7).map(|f| f.node), Some(1));
        assert_eq!(p.take_next(7).map(|f| f.node), Some(2));
    }

    #[test]
    fn pages_lists_every_parked_page() {
        let mut p = ParkedFaults::new();
        assert!(p.park(fault(7, 3, 1)));
        assert!(p.park(fault(9, 1, 2)));
        let mut pages = [0u32; 2];
        for (i, page) in p.pages().enumerate() {
            pages[i] = page;
        }
        pages.sort_unstable();
        assert_eq!(pages, [7, 9]);
    }
}
