// SPDX-License-Identifier: GPL-2.0

//! The threads of a distributed process, as its home keeps them: which node each runs
//! on, which is on its way to another node, and how the process ends.
//!
//! The home answers three questions from this table. Is a node entitled to speak for the
//! process (only the home and a node that runs one of its threads, or is receiving one,
//! may queue a futex wait or ask for a page)? How many threads does the process have in
//! the whole cluster (the kernel's own count sees only one node's, and the clear-tid wake
//! at thread exit depends on it)? And what happens when a node goes down: a process
//! that loses a thread cannot go on (its memory and locks may be half-updated), so it
//! ends, killed everywhere, with the lost node named in the kernel log. A move whose
//! destination goes down before the thread arrived just fails: the thread is still
//! frozen at its source and resumes there. Once the process is ending, nothing new is
//! started or moved.
//!
//! Pure bookkeeping over caller-provided storage, like the page directory; the thread
//! ids are the ones the process sees (`gettid()`), stable across moves.

use super::errno::{EALREADY, EEXIST, EINVAL, ENOMEM, ESRCH};

/// One slot of a [`ThreadTable`]'s storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadSlot(Option<Entry>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    tid: u32,
    node: u16,
    moving_to: Option<u16>,
}

/// One thread as `ssictl ps` lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadInfo {
    /// Its id (as `gettid()` gives it).
    pub tid: u32,
    /// The node it runs on (or is frozen on, while it moves).
    pub node: u16,
    /// Where it is moving to.
    pub moving_to: Option<u16>,
}

/// How a distributed process ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// A thread called `exit_group` (or the process was killed) with this wait status.
    Exit {
        /// The status its parent sees.
        status: i32,
    },
    /// A node that ran one of its threads went down: every thread is killed (`SIGKILL`).
    NodeLost {
        /// The lost node.
        node: u16,
    },
}

/// Why the table refused a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadError {
    /// No such thread.
    Unknown,
    /// The thread is already in the table.
    Duplicate,
    /// The thread is already moving.
    Moving,
    /// The thread already runs on that node.
    SameNode,
    /// The process is ending.
    Ending,
    /// No room for another thread.
    Full,
}

impl ThreadError {
    /// The errno a caller gets (positive).
    pub fn errno(self) -> i32 {
        match self {
            // The process is going away: as for one that is gone.
            ThreadError::Unknown | ThreadError::Ending => ESRCH,
            ThreadError::Duplicate => EEXIST,
            ThreadError::Moving => EALREADY,
            ThreadError::SameNode => EINVAL,
            ThreadError::Full => ENOMEM,
        }
    }
}

/// The threads of one distributed process, kept by its home.
pub struct ThreadTable<S> {
    slots: S,
    home: u16,
    ending: Option<Ending>,
}

impl<S: core::ops::DerefMut<Target = [ThreadSlot]>> ThreadTable<S> {
    /// An empty table of the process whose home is `home`.
    pub fn new(mut slots: S, home: u16) -> Self {
        slots.iter_mut().for_each(|s| *s = ThreadSlot(None));
        Self {
            slots,
            home,
            ending: None,
        }
    }

    fn find(&self, tid: u32) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.0.is_some_and(|e| e.tid == tid))
    }

    fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.slots.iter().filter_map(|s| s.0)
    }

    /// How the process ends, once it does.
    pub fn ending(&self) -> Option<Ending> {
        self.ending
    }

    /// How many threads it has in the whole cluster.
    pub fn threads(&self) -> usize {
        self.entries().count()
    }

    /// Where `tid` runs (its source while it moves).
    pub fn node_of(&self, tid: u32) -> Option<u16> {
        self.entries().find(|e| e.tid == tid).map(|e| e.node)
    }

    /// Whether `node` may speak for the process: the home, or a node that runs one of
    /// its threads or is receiving one.
    pub fn entitled(&self, node: u16) -> bool {
        node == self.home
            || self
                .entries()
                .any(|e| e.node == node || e.moving_to == Some(node))
    }

    /// The nodes that run a thread (bit `n` for node `n`, below 64), to tell when the
    /// process ends.
    pub fn nodes(&self) -> u64 {
        self.entries()
            .filter(|e| e.node < 64)
            .fold(0, |m, e| m | 1u64 << e.node)
    }

    /// Each thread, for `ssictl ps`.
    pub fn list(&self) -> impl Iterator<Item = ThreadInfo> + '_ {
        self.entries().map(|e| ThreadInfo {
            tid: e.tid,
            node: e.node,
            moving_to: e.moving_to,
        })
    }

    /// A new thread `tid` started on `node` (`clone` there, or the process's first).
    pub fn add(&mut self, tid: u32, node: u16) -> Result<(), ThreadError> {
        if self.ending.is_some() {
            return Err(ThreadError::Ending);
        }
        if self.find(tid).is_some() {
            return Err(ThreadError::Duplicate);
        }
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.0.is_none())
            .ok_or(ThreadError::Full)?;
        *slot = ThreadSlot(Some(Entry {
            tid,
            node,
            moving_to: None,
        }));
        Ok(())
    }

    /// `tid` starts moving to `to` (it is frozen at its node until the move ends).
    pub fn start_move(&mut self, tid: u32, to: u16) -> Result<(), ThreadError> {
        if self.ending.is_some() {
            return Err(ThreadError::Ending);
        }
        let i = self.find(tid).ok_or(ThreadError::Unknown)?;
        let Some(e) = self.slots[i].0.as_mut() else {
            return Err(ThreadError::Unknown);
        };
        if e.moving_to.is_some() {
            return Err(ThreadError::Moving);
        }
        if e.node == to {
            return Err(ThreadError::SameNode);
        }
        e.moving_to = Some(to);
        Ok(())
    }

    /// The move of `tid` ended: it runs at its destination (`arrived`), or it failed
    /// and the thread resumes at its source.
    pub fn end_move(&mut self, tid: u32, arrived: bool) -> Result<u16, ThreadError> {
        let i = self.find(tid).ok_or(ThreadError::Unknown)?;
        let Some(e) = self.slots[i].0.as_mut() else {
            return Err(ThreadError::Unknown);
        };
        let to = e.moving_to.take().ok_or(ThreadError::Unknown)?;
        if arrived {
            e.node = to;
        }
        Ok(e.node)
    }

    /// `tid` exited; returns how many threads are left.
    pub fn exited(&mut self, tid: u32) -> Result<usize, ThreadError> {
        let i = self.find(tid).ok_or(ThreadError::Unknown)?;
        self.slots[i].0 = None;
        Ok(self.threads())
    }

    /// A thread called `exit_group(status)` (or a fatal signal ended the process): the
    /// process ends, unless it already is (the first ending stands). Returns the ending.
    pub fn exit_group(&mut self, status: i32) -> Ending {
        *self.ending.get_or_insert(Ending::Exit { status })
    }

    /// `node` went down. A move to it fails (its thread resumes at its source); a
    /// thread that ran there is lost and the process ends (unless it already was).
    /// Returns the ending when this loss ends the process.
    pub fn node_lost(&mut self, node: u16) -> Option<Ending> {
        let mut lost = false;
        for e in self.slots.iter_mut().filter_map(|s| s.0.as_mut()) {
            if e.node == node {
                lost = true;
            } else if e.moving_to == Some(node) {
                e.moving_to = None;
            }
        }
        if !lost || self.ending.is_some() {
            return None;
        }
        self.ending = Some(Ending::NodeLost { node });
        self.ending
    }
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_threads))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    #[test]
    fn threads_start_move_and_exit() {
        let mut store = [ThreadSlot::default(); 4];
        let mut t = ThreadTable::new(&mut store[..], 0);
        t.add(100, 0).unwrap();
        t.add(101, 0).unwrap();
        assert_eq!(t.add(101, 1), Err(ThreadError::Duplicate));
        t.start_move(101, 1).unwrap();
        assert_eq!(t.start_move(101, 2), Err(ThreadError::Moving));
        assert_eq!(t.node_of(101), Some(0));
        // The destination may already speak (it asks for pages while the thread arrives).
        assert!(t.entitled(1) && !t.entitled(2));
        assert_eq!(t.end_move(101, true), Ok(1));
        assert_eq!(t.node_of(101), Some(1));
        assert_eq!(t.nodes(), 0b11);
        assert_eq!(t.start_move(100, 0), Err(ThreadError::SameNode));
        t.start_move(100, 2).unwrap();
        assert_eq!(t.end_move(100, false), Ok(0));
        assert_eq!(t.end_move(100, false), Err(ThreadError::Unknown));
        t.add(102, 1).unwrap();
        assert_eq!(t.threads(), 3);
        assert_eq!(t.exited(101), Ok(2));
        assert_eq!(t.exited(101), Err(ThreadError::Unknown));
        assert_eq!(t.exited(101).unwrap_err().errno(), ESRCH);
        let mut n = 0;
        for i in t.list() {
            assert!(matches!((i.tid, i.node), (100, 0) | (102, 1)));
            assert_eq!(i.moving_to, None);
            n += 1;
        }
        assert_eq!(n, 2);
        t.add(103, 2).unwrap();
        t.add(104, 2).unwrap();
        assert_eq!(t.add(105, 2), Err(ThreadError::Full));
    }

    #[test]
    fn the_home_is_always_entitled_and_a_node_without_threads_never() {
        let mut store = [ThreadSlot::default(); 2];
        let mut t = ThreadTable::new(&mut store[..], 3);
        assert!(t.entitled(3) && !t.entitled(1));
        t.add(7, 1).unwrap();
        assert!(t.entitled(1));
        t.exited(7).unwrap();
        assert!(!t.entitled(1) && t.entitled(3));
    }

    #[test]
    fn losing_a_node_that_runs_a_thread_ends_the_process() {
        let mut store = [ThreadSlot::default(); 4];
        let mut t = ThreadTable::new(&mut store[..], 0);
        t.add(1, 0).unwrap();
        t.add(2, 1).unwrap();
        t.add(3, 0).unwrap();
        t.start_move(3, 2).unwrap();
        // Node 2 was only receiving thread 3: that move fails, nothing is lost.
        assert_eq!(t.node_lost(2), None);
        assert_eq!(t.node_of(3), Some(0));
        assert_eq!(t.end_move(3, true), Err(ThreadError::Unknown));
        assert_eq!(t.node_lost(5), None);
        assert_eq!(t.ending(), None);
        assert_eq!(t.node_lost(1), Some(Ending::NodeLost { node: 1 }));
        // The first ending stands; nothing new starts or moves.
        assert_eq!(t.node_lost(0), None);
        assert_eq!(t.exit_group(0), Ending::NodeLost { node: 1 });
        assert_eq!(t.add(4, 0), Err(ThreadError::Ending));
        assert_eq!(t.start_move(1, 1), Err(ThreadError::Ending));
    }

    #[test]
    fn exit_group_from_any_thread_ends_the_process_once() {
        let mut store = [ThreadSlot::default(); 2];
        let mut t = ThreadTable::new(&mut store[..], 0);
        t.add(1, 0).unwrap();
        t.add(2, 1).unwrap();
        assert_eq!(t.exit_group(3 << 8), Ending::Exit { status: 3 << 8 });
        assert_eq!(t.exit_group(0), Ending::Exit { status: 3 << 8 });
        assert_eq!(t.node_lost(1), None);
        assert_eq!(t.ending(), Some(Ending::Exit { status: 3 << 8 }));
    }
}
