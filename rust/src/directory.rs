// SPDX-License-Identifier: GPL-2.0

//! The page directory of an SSI region: for each page, who owns the current contents
//! and which nodes hold copies (single writer / many readers).
//!
//! Pure bookkeeping, run by the page's directory node (the region's home). A node that
//! faults asks the directory; [`Directory::request`] answers with the [`Plan`] the
//! directory carries out: which nodes must drop their copy (invalidate), which must stop
//! writing (downgrade to read-only), where the faulting node gets the contents from, and
//! how it may map the page. While a plan is in flight the page is busy; other requests
//! for it wait (`Busy`) until [`Directory::complete`]. States:
//!
//! - `Untouched`: never written; a fault maps a zero page, no transfer.
//! - `Shared { owner, copies }`: read-only everywhere; `owner` has the current contents
//!   (and is in `copies` unless it dropped its copy).
//! - `Exclusive { owner }`: `owner` alone maps it, writable.
//!
//! A node that loses its connection loses its copies ([`Directory::node_lost`]); pages it
//! owned without a surviving copy become `Lost` (faults on them fail).

/// Most nodes (ids 0..64): copy sets are `u64` bitmaps.
pub const MAX_NODES: u16 = 64;

/// What a faulting node wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A read fault.
    Read,
    /// A write fault (including a write to a read-only copy).
    Write,
}

/// The state of one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageState {
    /// Never written anywhere: zero.
    Untouched,
    /// Read-only copies on `copies` (bitmap); `owner` holds the current contents.
    Shared {
        /// The node whose copy is authoritative.
        owner: u16,
        /// Bitmap of nodes that map it read-only.
        copies: u64,
    },
    /// Mapped writable by `owner` only.
    Exclusive {
        /// The only node that maps it.
        owner: u16,
    },
    /// Its only up-to-date copy was on a node that went down.
    Lost,
}

/// Where the faulting node gets the page contents from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Zero-fill locally (never-touched page).
    Zero,
    /// It already holds the current contents (upgrade of its own copy).
    Local,
    /// Read them from this node (one-sided read where the transport can).
    Node(u16),
}

/// What the directory does for one fault. Carried out in order: downgrade, fetch,
/// invalidate, then the faulting node maps the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// This node must write-protect its mapping (it keeps a read-only copy).
    pub downgrade: Option<u16>,
    /// The faulting node's source of the contents (read before any invalidation).
    pub source: Source,
    /// Bitmap of nodes that must drop their copy.
    pub invalidate: u64,
    /// How the faulting node maps the page.
    pub map_writable: bool,
}

/// Why a request cannot be served now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirError {
    /// Node id out of range or page index out of range.
    Invalid,
    /// Another fault on this page is in flight: retry after it completes.
    Busy,
    /// The page's contents were lost with a node.
    Lost,
    /// `complete` without a matching request in flight.
    NotInFlight,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    state: PageState,
    /// The node whose request is in flight, and what it asked.
    in_flight: Option<(u16, Access)>,
}

const FRESH: Entry = Entry {
    state: PageState::Untouched,
    in_flight: None,
};

fn bit(node: u16) -> u64 {
    1u64 << node
}

/// The directory of one region's pages, over caller-provided storage (the kernel uses a
/// `KVec`, tests a `Vec`).
pub struct Directory<S> {
    pages: S,
}

/// Storage of a [`Directory`]: one opaque slot per page.
pub type Slot = Option<EntrySlot>;

/// An opaque per-page record (so callers can allocate storage without seeing inside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntrySlot(Entry);

impl<S: core::ops::DerefMut<Target = [Slot]>> Directory<S> {
    /// A directory whose pages are all untouched. `pages.len()` is the region's size in
    /// pages.
    pub fn new(mut pages: S) -> Self {
        pages.iter_mut().for_each(|p| *p = Some(EntrySlot(FRESH)));
        Self { pages }
    }

    /// Number of pages.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// True for a zero-page region.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    fn entry(&self, page: usize) -> Result<Entry, DirError> {
        self.pages
            .get(page)
            .copied()
            .flatten()
            .map(|e| e.0)
            .ok_or(DirError::Invalid)
    }

    fn set(&mut self, page: usize, e: Entry) {
        if let Some(slot) = self.pages.get_mut(page) {
            *slot = Some(EntrySlot(e));
        }
    }

    /// The state of `page`.
    pub fn state(&self, page: usize) -> Result<PageState, DirError> {
        Ok(self.entry(page)?.state)
    }

    /// Node `node` faults on `page` for `access`: returns the plan and marks the page
    /// busy until [`Directory::complete`].
    pub fn request(&mut self, page: usize, node: u16, access: Access) -> Result<Plan, DirError> {
        if node >= MAX_NODES {
            return Err(DirError::Invalid);
        }
        let mut e = self.entry(page)?;
        if e.in_flight.is_some() {
            return Err(DirError::Busy);
        }
        let me = bit(node);
        let plan = match (e.state, access) {
            (PageState::Lost, _) => return Err(DirError::Lost),
            (PageState::Untouched, a) => Plan {
                downgrade: None,
                source: Source::Zero,
                invalidate: 0,
                map_writable: a == Access::Write,
            },
            (PageState::Shared { owner, copies }, Access::Read) => Plan {
                downgrade: None,
                source: if copies & me != 0 {
                    Source::Local
                } else {
                    Source::Node(owner)
                },
                invalidate: 0,
                map_writable: false,
            },
            (PageState::Shared { owner, copies }, Access::Write) => Plan {
                downgrade: None,
                // The owner's copy is current even if it is not in `copies` any more
                // (it keeps the contents to serve them).
                source: if copies & me != 0 || owner == node {
                    Source::Local
                } else {
                    Source::Node(owner)
                },
                invalidate: copies & !me,
                map_writable: true,
            },
            (PageState::Exclusive { owner }, _) if owner == node => Plan {
                // A spurious fault of the owner (e.g. after a local zap): remap.
                downgrade: None,
                source: Source::Local,
                invalidate: 0,
                map_writable: true,
            },
            (PageState::Exclusive { owner }, Access::Read) => Plan {
                downgrade: Some(owner),
                source: Source::Node(owner),
                invalidate: 0,
                map_writable: false,
            },
            (PageState::Exclusive { owner }, Access::Write) => Plan {
                downgrade: None,
                source: Source::Node(owner),
                invalidate: bit(owner),
                map_writable: true,
            },
        };
        e.in_flight = Some((node, access));
        self.set(page, e);
        Ok(plan)
    }

    /// The plan for `node`'s fault on `page` was carried out: record the new state.
    pub fn complete(&mut self, page: usize, node: u16) -> Result<PageState, DirError> {
        let mut e = self.entry(page)?;
        let Some((n, access)) = e.in_flight else {
            return Err(DirError::NotInFlight);
        };
        if n != node {
            return Err(DirError::NotInFlight);
        }
        e.state = match (e.state, access) {
            (_, Access::Write) => PageState::Exclusive { owner: node },
            (PageState::Untouched, Access::Read) => PageState::Shared {
                owner: node,
                copies: bit(node),
            },
            (PageState::Shared { owner, copies }, Access::Read) => PageState::Shared {
                owner,
                copies: copies | bit(node),
            },
            (PageState::Exclusive { owner }, Access::Read) if owner == node => e.state,
            (PageState::Exclusive { owner }, Access::Read) => PageState::Shared {
                owner,
                copies: bit(owner) | bit(node),
            },
            (PageState::Lost, Access::Read) => PageState::Lost,
        };
        e.in_flight = None;
        self.set(page, e);
        Ok(e.state)
    }

    /// The plan for `node`'s fault on `page` failed (e.g. a transfer timed out): the page
    /// is no longer busy and its state is unchanged.
    pub fn abort(&mut self, page: usize, node: u16) -> Result<(), DirError> {
        let mut e = self.entry(page)?;
        match e.in_flight {
            Some((n, _)) if n == node => {
                e.in_flight = None;
                self.set(page, e);
                Ok(())
            }
            _ => Err(DirError::NotInFlight),
        }
    }

    /// `node` already holds contents of the untouched `page` that nobody else has: it
    /// becomes the page's exclusive owner. This is how memory that existed before the
    /// region did (a process's private memory when it becomes distributed) enters the
    /// directory; only an untouched page with no fault in flight can be adopted.
    pub fn adopt(&mut self, page: usize, node: u16) -> Result<(), DirError> {
        if node >= MAX_NODES {
            return Err(DirError::Invalid);
        }
        let mut e = self.entry(page)?;
        if e.state != PageState::Untouched || e.in_flight.is_some() {
            return Err(DirError::Busy);
        }
        e.state = PageState::Exclusive { owner: node };
        self.set(page, e);
        Ok(())
    }

    /// `node` dropped its read-only copy of `page` by itself (unmap, exit). The owner's
    /// contents stay authoritative; a copy that was the only current one is never
    /// dropped this way (the owner keeps it to serve it).
    pub fn drop_copy(&mut self, page: usize, node: u16) -> Result<(), DirError> {
        let mut e = self.entry(page)?;
        if let PageState::Shared { owner, copies } = e.state {
            if owner != node {
                e.state = PageState::Shared {
                    owner,
                    copies: copies & !bit(node),
                };
                self.set(page, e);
            }
        }
        Ok(())
    }

    /// `node` went down: its copies are gone. Pages it owned become owned by another
    /// holder of a current copy, or `Lost`. Returns how many pages were lost. Requests
    /// of that node in flight are aborted.
    pub fn node_lost(&mut self, node: u16) -> usize {
        let mut lost = 0;
        for i in 0..self.pages.len() {
            let Ok(mut e) = self.entry(i) else {
                continue;
            };
            if matches!(e.in_flight, Some((n, _)) if n == node) {
                e.in_flight = None;
            }
            e.state = match e.state {
                PageState::Exclusive { owner } if owner == node => {
                    lost += 1;
                    PageState::Lost
                }
                PageState::Shared { owner, copies } => {
                    let rest = copies & !bit(node);
                    if owner != node {
                        PageState::Shared {
                            owner,
                            copies: rest,
                        }
                    } else if rest != 0 {
                        // Read-only copies are all current: any survivor can own it.
                        PageState::Shared {
                            owner: rest.trailing_zeros() as u16,
                            copies: rest,
                        }
                    } else {
                        lost += 1;
                        PageState::Lost
                    }
                }
                s => s,
            };
            self.set(i, e);
        }
        lost
    }
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_directory))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    #[test]
    fn untouched_pages_are_zero_filled_without_transfer() {
        let mut store = [None; 4];
        let mut d = Directory::new(&mut store[..]);
        let p = d.request(0, 1, Access::Read).unwrap();
        assert_eq!(p.source, Source::Zero);
        assert!(!p.map_writable);
        assert_eq!(
            d.complete(0, 1),
            Ok(PageState::Shared {
                owner: 1,
                copies: 0b10
            })
        );
        let p = d.request(1, 2, Access::Write).unwrap();
        assert_eq!(
            (p.source, p.map_writable, p.invalidate),
            (Source::Zero, true, 0)
        );
        assert_eq!(d.complete(1, 2), Ok(PageState::Exclusive { owner: 2 }));
    }

    #[test]
    fn write_invalidates_other_copies_and_moves_ownership() {
        let mut store = [None; 4];
        let mut d = Directory::new(&mut store[..]);
        d.request(0, 1, Access::Write).unwrap();
        d.complete(0, 1).unwrap();
        // Node 2 reads: node 1 is downgraded and serves the contents.
        let p = d.request(0, 2, Access::Read).unwrap();
        assert_eq!(p.downgrade, Some(1));
        assert_eq!(p.source, Source::Node(1));
        d.complete(0, 2).unwrap();
        // Node 3 reads from the owner.
        assert_eq!(
            d.request(0, 3, Access::Read).unwrap().source,
            Source::Node(1)
        );
        d.complete(0, 3).unwrap();
        // Node 2 writes its read-only copy: 1 and 3 are invalidated, no transfer.
        let p = d.request(0, 2, Access::Write).unwrap();
        assert_eq!(p.source, Source::Local);
        assert_eq!(p.invalidate, 0b1010);
        assert_eq!(d.complete(0, 2), Ok(PageState::Exclusive { owner: 2 }));
    }

    #[test]
    fn busy_pages_make_others_wait() {
        let mut store = [None; 4];
        let mut d = Directory::new(&mut store[..]);
        d.request(0, 1, Access::Write).unwrap();
        assert_eq!(d.request(0, 2, Access::Read), Err(DirError::Busy));
        assert_eq!(d.complete(0, 2), Err(DirError::NotInFlight));
        d.abort(0, 1).unwrap();
        assert_eq!(d.state(0), Ok(PageState::Untouched));
        assert!(d.request(0, 2, Access::Read).is_ok());
    }

    #[test]
    fn losing_a_node_loses_only_pages_without_other_copies() {
        let mut store = [None; 4];
        let mut d = Directory::new(&mut store[..]);
        d.request(0, 1, Access::Write).unwrap();
        d.complete(0, 1).unwrap();
        d.request(1, 1, Access::Read).unwrap();
        d.complete(1, 1).unwrap();
        d.request(1, 2, Access::Read).unwrap();
        d.complete(1, 2).unwrap();
        assert_eq!(d.node_lost(1), 1);
        assert_eq!(d.state(0), Ok(PageState::Lost));
        assert_eq!(d.request(0, 2, Access::Read), Err(DirError::Lost));
        assert_eq!(
            d.state(1),
            Ok(PageState::Shared {
                owner: 2,
                copies: 0b100
            })
        );
    }

    #[test]
    fn adopted_pages_are_served_by_their_owner() {
        let mut store = [None; 2];
        let mut d = Directory::new(&mut store[..]);
        assert_eq!(d.adopt(0, 3), Ok(()));
        assert_eq!(d.state(0), Ok(PageState::Exclusive { owner: 3 }));
        // Only untouched pages, once.
        assert_eq!(d.adopt(0, 1), Err(DirError::Busy));
        assert_eq!(d.adopt(5, 1), Err(DirError::Invalid));
        assert_eq!(d.adopt(1, MAX_NODES), Err(DirError::Invalid));
        // Another node's read gets the owner's contents and downgrades it.
        let plan = d.request(0, 1, Access::Read).unwrap();
        assert_eq!(plan.source, Source::Node(3));
        assert_eq!(plan.downgrade, Some(3));
        assert_eq!(d.adopt(1, 1), Ok(()));
    }

    #[test]
    fn bad_arguments_are_refused() {
        let mut store = [None; 4];
        let mut d = Directory::new(&mut store[..]);
        assert_eq!(d.request(4, 1, Access::Read), Err(DirError::Invalid));
        assert_eq!(
            d.request(0, MAX_NODES, Access::Read),
            Err(DirError::Invalid)
        );
    }
}
