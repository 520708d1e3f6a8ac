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
//!
//! *Migratory* pages (a lock word, a counter, a flag two threads hand back and forth) are
//! read and then written by one node after another. Shared the usual way, each hand-off
//! costs two transfers: a read-only copy, then an upgrade that invalidates the previous
//! holder. A page whose writer first read it while only the previous writer held it
//! becomes migratory: a read of it then takes it whole (`Plan::alone`), mapped read-only
//! so that the reader's first write, which needs no other node, is still seen
//! ([`Directory::written`]). A node that took it by reading and had not written it when
//! the next reader comes shows that the page is read-shared: it stops being migratory.

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
    /// The faulting node becomes the page's only holder (`Exclusive`); when it maps the
    /// page read-only (a read of a migratory page), its first write upgrades its own
    /// copy and reports it with [`Directory::written`].
    pub alone: bool,
}

/// What the faulting node does to the copy of the node that held the current contents
/// when the plan was made (its *owner*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerStep {
    /// Nothing: a read leaves the owner its copy, or the faulting node is the owner, or
    /// the home gave its copy up while it made the plan ([`Plan::home_revokes`]).
    Keep,
    /// One request reads the owner's contents and revokes its copy: the owner keeps it,
    /// unmapped and unusable until the directory grants it again, so that an aborted plan
    /// loses nothing; the faulting node releases it once the plan completed.
    Take(u16),
    /// The owner drops its copy (the faulting node holds the contents already).
    Invalidate(u16),
}

/// The requests a faulting node makes to carry out a plan, in this order. Everything
/// before the owner's step can be aborted (no current contents have been touched); the
/// owner's step commits the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Steps {
    /// Read the contents from this node first (it keeps its copy, write-protected if the
    /// plan downgrades it).
    pub fetch: Option<u16>,
    /// Then these nodes drop their read-only copies.
    pub invalidate: u64,
    /// Last, the owner's copy.
    pub owner: OwnerStep,
}

impl Plan {
    /// The home, answering `node`'s request, gives its own copy up on the spot when the
    /// plan would have `node` invalidate it (revoked, like [`OwnerStep::Take`]: kept
    /// unusable until the plan completes, then dropped; granted back if it is aborted).
    /// That saves the faulting node a round trip. Returns true if the home must revoke
    /// its copy; the plan no longer lists it.
    pub fn home_revokes(&mut self, node: u16, home: u16) -> bool {
        if node == home || home >= MAX_NODES || self.invalidate & bit(home) == 0 {
            return false;
        }
        self.invalidate &= !bit(home);
        true
    }

    /// The steps of faulting node `me`; `owner` held the current contents when the plan
    /// was made (or is out of range), `inline`: the home sent them with the plan.
    pub fn steps(&self, me: u16, owner: u16, inline: bool) -> Steps {
        let owner_bit = if owner < MAX_NODES { bit(owner) } else { 0 };
        let mine = if me < MAX_NODES { bit(me) } else { 0 };
        let others = self.invalidate & !mine;
        let fetch = match self.source {
            Source::Node(n) if !inline && n != me => Some(n),
            _ => None,
        };
        let owner_goes = owner != me && others & owner_bit != 0;
        let (fetch, owner_step) = match fetch {
            // Read and revoked in one request (the plan's source is always the owner
            // when the owner goes).
            Some(n) if owner_goes && n == owner => (None, OwnerStep::Take(owner)),
            f if owner_goes => (f, OwnerStep::Invalidate(owner)),
            f => (f, OwnerStep::Keep),
        };
        Steps {
            fetch,
            invalidate: others & !owner_bit,
            owner: owner_step,
        }
    }
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
    /// Read, then written, by one node after another: reads take it whole.
    migratory: bool,
    /// `Exclusive` by a read of a migratory page, and not written since.
    unwritten: bool,
    /// The request in flight takes the page whole.
    in_flight_alone: bool,
}

const FRESH: Entry = Entry {
    state: PageState::Untouched,
    in_flight: None,
    migratory: false,
    unwritten: false,
    in_flight_alone: false,
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
            // Nobody else has it: even a read takes it whole (read-only), so that the
            // write that usually follows a first read needs no second request.
            (PageState::Untouched, a) => Plan {
                downgrade: None,
                source: Source::Zero,
                invalidate: 0,
                map_writable: a == Access::Write,
                alone: true,
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
                alone: false,
            },
            (PageState::Shared { owner, copies }, Access::Write) => {
                // Read, then written, while only the previous writer held it: migratory.
                if owner != node && copies == bit(owner) | me {
                    e.migratory = true;
                }
                Plan {
                    downgrade: None,
                    // The owner's copy is current even if it is not in `copies` any
                    // more (it keeps the contents to serve them).
                    source: if copies & me != 0 || owner == node {
                        Source::Local
                    } else {
                        Source::Node(owner)
                    },
                    invalidate: copies & !me,
                    map_writable: true,
                    alone: true,
                }
            }
            (PageState::Exclusive { owner }, a) if owner == node => Plan {
                // A spurious fault of the owner (e.g. after a local zap): remap, as
                // it was (a page taken by a read and not written yet stays read-only).
                downgrade: None,
                source: Source::Local,
                invalidate: 0,
                map_writable: !(e.unwritten && a == Access::Read),
                alone: true,
            },
            (PageState::Exclusive { owner }, Access::Read) => {
                if e.unwritten {
                    // Its holder took it by reading and did not write: read-shared.
                    e.migratory = false;
                }
                if e.migratory {
                    Plan {
                        downgrade: None,
                        source: Source::Node(owner),
                        invalidate: bit(owner),
                        map_writable: false,
                        alone: true,
                    }
                } else {
                    Plan {
                        downgrade: Some(owner),
                        source: Source::Node(owner),
                        invalidate: 0,
                        map_writable: false,
                        alone: false,
                    }
                }
            }
            (PageState::Exclusive { owner }, Access::Write) => Plan {
                downgrade: None,
                source: Source::Node(owner),
                invalidate: bit(owner),
                map_writable: true,
                alone: true,
            },
        };
        e.in_flight = Some((node, access));
        e.in_flight_alone = plan.alone;
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
        let taken_by_read = access == Access::Read && e.in_flight_alone;
        let own_fault = matches!(e.state, PageState::Exclusive { owner } if owner == node);
        e.unwritten = match (access, own_fault) {
            (Access::Write, _) => false,
            // A spurious fault of the owner changes nothing.
            (Access::Read, true) => e.unwritten,
            // Only a read that took a migratory page whole is watched for its write.
            (Access::Read, false) => taken_by_read && e.migratory,
        };
        e.state = match (e.state, access) {
            (_, Access::Write) => PageState::Exclusive { owner: node },
            (_, Access::Read) if taken_by_read => PageState::Exclusive { owner: node },
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
    /// is no longer busy and its state is unchanged, except that the read-only copies in
    /// `dropped` are gone (the plan invalidated them before it failed; never the owner's,
    /// whose step comes last). Counting them would let [`Directory::node_lost`] make a
    /// node without a copy the owner.
    pub fn abort(&mut self, page: usize, node: u16, dropped: u64) -> Result<(), DirError> {
        let mut e = self.entry(page)?;
        match e.in_flight {
            Some((n, _)) if n == node => {
                e.in_flight = None;
                if let PageState::Shared { owner, copies } = e.state {
                    let keep = if owner < MAX_NODES { bit(owner) } else { 0 };
                    e.state = PageState::Shared {
                        owner,
                        copies: copies & !(dropped & !keep),
                    };
                }
                self.set(page, e);
                Ok(())
            }
            _ => Err(DirError::NotInFlight),
        }
    }

    /// `node`, which took `page` whole by reading it, wrote it (it upgraded its own copy):
    /// the page is still migratory. Ignored unless `node` is the page's exclusive owner.
    pub fn written(&mut self, page: usize, node: u16) {
        if let Ok(mut e) = self.entry(page) {
            if e.state == (PageState::Exclusive { owner: node }) {
                e.unwritten = false;
                self.set(page, e);
            }
        }
    }

    /// Whether `page` is migratory (reads take it whole).
    pub fn is_migratory(&self, page: usize) -> bool {
        self.entry(page).is_ok_and(|e| e.migratory)
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
        // A first read takes the page whole, read-only: its write needs no request.
        let p = d.request(0, 1, Access::Read).unwrap();
        assert_eq!(p.source, Source::Zero);
        assert!(!p.map_writable && p.alone);
        assert_eq!(d.complete(0, 1), Ok(PageState::Exclusive { owner: 1 }));
        // Another node's read shares it.
        let p = d.request(0, 3, Access::Read).unwrap();
        assert_eq!(
            (p.source, p.downgrade, p.alone),
            (Source::Node(1), Some(1), false)
        );
        assert_eq!(
            d.complete(0, 3),
            Ok(PageState::Shared {
                owner: 1,
                copies: 0b1010
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
        d.abort(0, 1, 0).unwrap();
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
    fn a_write_takes_the_owners_copy_in_one_request() {
        let mut store = [None; 2];
        let mut d = Directory::new(&mut store[..]);
        d.adopt(0, 2).unwrap();
        // Node 1 writes the page node 2 owns: read and revoked together.
        let plan = d.request(0, 1, Access::Write).unwrap();
        assert_eq!(
            plan.steps(1, 2, false),
            Steps {
                fetch: None,
                invalidate: 0,
                owner: OwnerStep::Take(2)
            }
        );
        d.complete(0, 1).unwrap();
        // Nodes 0 and 3 read; node 3 writes: node 0's copy goes first, node 1 (the
        // owner) last, in one request with the read.
        for n in [0, 3] {
            d.request(0, n, Access::Read).unwrap();
            d.complete(0, n).unwrap();
        }
        let plan = d.request(0, 3, Access::Write).unwrap();
        assert_eq!(plan.source, Source::Local);
        assert_eq!(
            plan.steps(3, 1, false),
            Steps {
                fetch: None,
                invalidate: 0b1,
                owner: OwnerStep::Invalidate(1)
            }
        );
        d.abort(0, 3, 0).unwrap();
        // The home (0) answering node 2's write gives its own copy up.
        let mut plan = d.request(0, 2, Access::Write).unwrap();
        assert_eq!(plan.invalidate, 0b1011);
        assert!(plan.home_revokes(2, 0));
        assert_eq!(plan.invalidate, 0b1010);
        assert!(!plan.home_revokes(2, 0));
        assert_eq!(
            plan.steps(2, 1, false),
            Steps {
                fetch: None,
                invalidate: 0b1000,
                owner: OwnerStep::Take(1)
            }
        );
        // Contents sent with the plan: nothing to read, the owner only drops its copy.
        assert_eq!(plan.steps(2, 1, true).owner, OwnerStep::Invalidate(1));
        // The home's own fault never revokes its copy.
        assert!(!plan.home_revokes(0, 0));
    }

    #[test]
    fn migratory_pages_are_taken_whole_by_reads_until_read_shared() {
        let mut store = [None; 1];
        let mut d = Directory::new(&mut store[..]);
        d.request(0, 1, Access::Write).unwrap();
        d.complete(0, 1).unwrap();
        // Node 2 reads, then writes, while only node 1 held it: migratory.
        d.request(0, 2, Access::Read).unwrap();
        d.complete(0, 2).unwrap();
        assert!(!d.is_migratory(0));
        d.request(0, 2, Access::Write).unwrap();
        d.complete(0, 2).unwrap();
        assert!(d.is_migratory(0));
        // Node 1's read takes it whole, read-only, from node 2.
        let plan = d.request(0, 1, Access::Read).unwrap();
        assert_eq!(
            plan,
            Plan {
                downgrade: None,
                source: Source::Node(2),
                invalidate: 0b100,
                map_writable: false,
                alone: true
            }
        );
        assert_eq!(plan.steps(1, 2, false).owner, OwnerStep::Take(2));
        assert_eq!(d.complete(0, 1), Ok(PageState::Exclusive { owner: 1 }));
        // A spurious fault keeps it read-only; node 1 writes it by itself.
        assert!(!d.request(0, 1, Access::Read).unwrap().map_writable);
        d.complete(0, 1).unwrap();
        d.written(0, 1);
        assert!(d.request(0, 2, Access::Read).unwrap().alone);
        d.complete(0, 2).unwrap();
        // Node 2 took it by reading and did not write: node 3's read shares it.
        let plan = d.request(0, 3, Access::Read).unwrap();
        assert!(!plan.alone);
        assert_eq!(plan.downgrade, Some(2));
        assert!(!d.is_migratory(0));
        assert_eq!(
            d.complete(0, 3),
            Ok(PageState::Shared {
                owner: 2,
                copies: 0b1100
            })
        );
        // `written` from a node that is not the exclusive owner changes nothing.
        d.written(0, 3);
        assert!(!d.is_migratory(0));
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
