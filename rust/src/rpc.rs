// SPDX-License-Identifier: GPL-2.0

//! Outstanding requests: matching responses to requests, and timeouts.
//!
//! Every request gets a fresh sequence number and a deadline. A response completes
//! the request only if it comes from the node the request went to and carries its
//! sequence number (a hostile or confused peer cannot complete someone else's request).
//! [`PendingTable::expire`] fails requests whose deadline passed, and
//! [`PendingTable::fail_node`] fails every request to a node that went down, so no
//! caller waits forever.

/// Why a request could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpcError {
    /// Too many requests outstanding.
    Busy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot<T> {
    seq: u32,
    node: u16,
    deadline_ms: u64,
    waiter: T,
}

/// At most `N` outstanding requests, each with a waiter `T` (in the kernel, what wakes
/// the caller).
pub struct PendingTable<T, const N: usize> {
    slots: [Option<Slot<T>>; N],
    next_seq: u32,
}

impl<T, const N: usize> PendingTable<T, N> {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            slots: [const { None }; N],
            next_seq: 1,
        }
    }

    /// Number of outstanding requests.
    pub fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// True when nothing is outstanding.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a request to `node` that times out at `now_ms + timeout_ms`. Returns
    /// the sequence number to send it with.
    pub fn start(
        &mut self,
        node: u16,
        now_ms: u64,
        timeout_ms: u64,
        waiter: T,
    ) -> Result<u32, RpcError> {
        if self.slots.iter().all(|s| s.is_some()) {
            return Err(RpcError::Busy);
        }
        // Sequence numbers wrap; skip 0 (never used) and any still outstanding. At most
        // N - 1 are outstanding, so this ends.
        let mut seq = self.next_seq;
        while seq == 0 || self.slots.iter().flatten().any(|s| s.seq == seq) {
            seq = seq.wrapping_add(1);
        }
        self.next_seq = seq.wrapping_add(1);
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.is_none())
            .ok_or(RpcError::Busy)?;
        *slot = Some(Slot {
            seq,
            node,
            deadline_ms: now_ms.saturating_add(timeout_ms),
            waiter,
        });
        Ok(seq)
    }

    /// A response with `seq` arrived from `node`: returns the waiter if it matches an
    /// outstanding request to that node.
    pub fn complete(&mut self, node: u16, seq: u32) -> Option<T> {
        let slot = self
            .slots
            .iter_mut()
            .find(|s| matches!(s, Some(p) if p.seq == seq && p.node == node))?;
        slot.take().map(|s| s.waiter)
    }

    /// Gives up a request (the caller stopped waiting, e.g. on a signal).
    pub fn cancel(&mut self, seq: u32) -> Option<T> {
        let slot = self
            .slots
            .iter_mut()
            .find(|s| matches!(s, Some(p) if p.seq == seq))?;
        slot.take().map(|s| s.waiter)
    }

    /// Removes every request whose deadline is at or before `now_ms`, calling
    /// `timed_out(node, seq, waiter)` for each.
    pub fn expire(&mut self, now_ms: u64, mut timed_out: impl FnMut(u16, u32, T)) {
        for slot in self.slots.iter_mut() {
            if matches!(slot, Some(p) if p.deadline_ms <= now_ms) {
                if let Some(s) = slot.take() {
                    timed_out(s.node, s.seq, s.waiter);
                }
            }
        }
    }

    /// Removes every request to `node`, calling `failed(seq, waiter)` for each.
    pub fn fail_node(&mut self, node: u16, mut failed: impl FnMut(u32, T)) {
        for slot in self.slots.iter_mut() {
            if matches!(slot, Some(p) if p.node == node) {
                if let Some(s) = slot.take() {
                    failed(s.seq, s.waiter);
                }
            }
        }
    }

    /// The earliest deadline, to arm a timer.
    pub fn next_deadline(&self) -> Option<u64> {
        self.slots.iter().flatten().map(|s| s.deadline_ms).min()
    }
}

impl<T, const N: usize> Default for PendingTable<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_rpc))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    #[test]
    fn responses_match_node_and_seq() {
        let mut t: PendingTable<u8, 4> = PendingTable::new();
        let a = t.start(1, 0, 100, 10).unwrap_or(0);
        let b = t.start(2, 0, 100, 20).unwrap_or(0);
        assert!(a != 0 && b != 0 && a != b);
        // Wrong node, unknown seq: ignored.
        assert_eq!(t.complete(2, a), None);
        assert_eq!(t.complete(1, 999), None);
        assert_eq!(t.complete(1, a), Some(10));
        assert_eq!(t.complete(1, a), None);
        assert_eq!(t.len(), 1);
        assert_eq!(t.cancel(b), Some(20));
        assert!(t.is_empty());
    }

    #[test]
    fn deadlines_expire_and_down_nodes_fail() {
        let mut t: PendingTable<u8, 4> = PendingTable::new();
        assert!(t.start(1, 0, 50, 1).is_ok());
        assert!(t.start(1, 0, 500, 2).is_ok());
        assert!(t.start(2, 0, 500, 3).is_ok());
        assert_eq!(t.next_deadline(), Some(50));
        let mut expired = 0u32;
        t.expire(49, |_, _, _| expired += 1);
        assert_eq!(expired, 0);
        t.expire(50, |node, _, w| {
            expired += u32::from(node) * 100 + u32::from(w)
        });
        assert_eq!(expired, 101);
        let mut failed = 0u32;
        t.fail_node(1, |_, w| failed += u32::from(w));
        assert_eq!(failed, 2);
        assert_eq!(t.len(), 1);
        assert_eq!(t.next_deadline(), Some(500));
    }

    #[test]
    fn a_full_table_is_busy_and_seq_skips_zero() {
        let mut t: PendingTable<(), 2> = PendingTable::new();
        t.next_seq = u32::MAX;
        assert_eq!(t.start(1, 0, 1, ()), Ok(u32::MAX));
        assert_eq!(t.start(1, 0, 1, ()), Ok(1));
        assert_eq!(t.start(1, 0, 1, ()), Err(RpcError::Busy));
    }
}
