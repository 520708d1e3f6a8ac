//! Model test of the page directory (`rust/src/directory.rs`): simulated nodes with
//! page caches run random reads, writes, evictions and crashes through the directory's
//! plans, carried out as the kernel does (`Plan::home_revokes`, `Plan::steps`: revoked
//! copies, plans aborted at any step, releases lost), and every step is checked
//! against a reference memory (one value per page, as on a single machine) and the
//! single-writer/many-readers invariants.

use proptest::prelude::*;
use ssi_shared::directory::{Access, DirError, Directory, OwnerStep, PageState, Slot, Source};

const NODES: usize = 4;
const PAGES: usize = 3;
/// The regions' home (directory node).
const HOME: u16 = 0;

/// How a fault's plan fares: aborted before step `abort_at` (0: the home's answer is
/// lost, 1: after the contents, 2: after the read-only copies went, 3: after the
/// owner's step, when that step leaves the owner its copy), or carried out
/// (`abort_at` >= 4); `lose_release`: the `PageRelease` to a revoked owner is lost.
#[derive(Clone, Copy, Debug)]
struct Fate {
    abort_at: u8,
    lose_release: bool,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Read {
        node: u16,
        page: usize,
        fate: Fate,
    },
    Write {
        node: u16,
        page: usize,
        value: u32,
        fate: Fate,
    },
    Evict {
        node: u16,
        page: usize,
    },
    Crash {
        node: u16,
    },
}

fn fate() -> impl Strategy<Value = Fate> {
    (prop_oneof![6 => Just(9u8), 1 => 0u8..4], any::<bool>()).prop_map(
        |(abort_at, lose_release)| Fate {
            abort_at,
            lose_release,
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    let node = 0..NODES as u16;
    let page = 0..PAGES;
    prop_oneof![
        5 => (node.clone(), page.clone(), fate()).prop_map(|(node, page, fate)| Op::Read { node, page, fate }),
        5 => (node.clone(), page.clone(), 1..u32::MAX, fate())
            .prop_map(|(node, page, value, fate)| Op::Write { node, page, value, fate }),
        2 => (node.clone(), page).prop_map(|(node, page)| Op::Evict { node, page }),
        1 => node.prop_map(|node| Op::Crash { node }),
    ]
}

/// A node's copy of a page.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Copy {
    value: u32,
    writable: bool,
    /// Revoked by node `.0`'s plan with tag `.1` (0: the home's own copy).
    revoked: Option<(u16, u32)>,
    /// The only copy (the directory's exclusive owner): a write upgrades it locally.
    alone: bool,
}

impl Copy {
    fn serves(&self, write: bool) -> bool {
        self.revoked.is_none() && (!write || self.writable)
    }
}

/// Why a fault did not map the page.
#[derive(Debug, PartialEq)]
enum Failed {
    Dir(DirError),
    Aborted,
    /// The node the plan reads from has no copy: the fault fails (the kernel retries
    /// until its budget runs out, then `SIGBUS`).
    NoCopy,
}

struct Cluster {
    dir: Directory<Vec<Slot>>,
    cache: [[Option<Copy>; PAGES]; NODES],
    /// The reference: what a single machine's memory would hold (`None`: lost).
    mem: [Option<u32>; PAGES],
    /// The last revoke tag.
    tag: u32,
}

impl Cluster {
    fn new() -> Self {
        Self {
            dir: Directory::new(vec![None; PAGES]),
            cache: [[None; PAGES]; NODES],
            mem: [Some(0); PAGES],
            tag: 0,
        }
    }

    fn copy(&mut self, node: u16, page: usize) -> &mut Option<Copy> {
        &mut self.cache[usize::from(node)][page]
    }

    /// The home's side of an ended plan (`PageDone`).
    fn finish(&mut self, node: u16, page: usize, ok: bool, dropped: u64) {
        if ok {
            self.dir.complete(page, node).unwrap();
        } else {
            self.dir.abort(page, node, dropped).unwrap();
        }
        if node == HOME {
            return;
        }
        let home = self.copy(HOME, page);
        if home.is_some_and(|c| c.revoked == Some((node, 0))) {
            if ok {
                *home = None;
            } else if let Some(c) = home {
                c.revoked = None;
            }
        }
    }

    /// Runs a fault through the directory like the kernel would; returns the mapped copy.
    fn fault(
        &mut self,
        node: u16,
        page: usize,
        access: Access,
        fate: Fate,
    ) -> Result<Copy, Failed> {
        let owner = match self.dir.state(page).map_err(Failed::Dir)? {
            PageState::Shared { owner, .. } | PageState::Exclusive { owner } => owner,
            _ => u16::MAX,
        };
        let mut plan = self.dir.request(page, node, access).map_err(Failed::Dir)?;
        self.tag += 1;
        let tag = self.tag;
        // Read-only copies this plan dropped so far (reported if it is aborted).
        let mut dropped = 0u64;
        // The home answers: its contents with the plan, its own copy revoked.
        let inline = plan.source == Source::Node(HOME) && node != HOME;
        let mut value = None;
        if inline {
            let c = self
                .copy(HOME, page)
                .as_mut()
                .expect("the home serves its copy");
            c.writable = false;
            c.alone = false;
            value = Some(c.value);
            if plan.downgrade == Some(HOME) {
                plan.downgrade = None;
            }
        }
        if plan.home_revokes(node, HOME) {
            if let Some(c) = self.copy(HOME, page) {
                c.writable = false;
                c.alone = false;
                c.revoked = Some((node, 0));
            }
        }
        if fate.abort_at == 0 {
            self.finish(node, page, false, dropped);
            return Err(Failed::Aborted);
        }
        let steps = plan.steps(node, owner, inline);
        // 1. Contents.
        match plan.source {
            Source::Zero => value = Some(0),
            Source::Local => {
                let mine = *self.copy(node, page);
                value = match mine {
                    Some(c) => Some(c.value),
                    // An aborted plan dropped the copy the directory still counts: the
                    // kernel reads the owner's.
                    None if owner != node && self.copy(owner, page).is_some() => {
                        Some(self.copy(owner, page).unwrap().value)
                    }
                    None => {
                        self.finish(node, page, false, dropped);
                        return Err(Failed::NoCopy);
                    }
                };
            }
            Source::Node(_) => {
                if let Some(f) = steps.fetch {
                    let Some(c) = self.copy(f, page).as_mut() else {
                        self.finish(node, page, false, dropped);
                        return Err(Failed::NoCopy);
                    };
                    c.writable = false;
                    c.alone = false;
                    value = Some(c.value);
                }
            }
        }
        if fate.abort_at == 1 {
            self.finish(node, page, false, dropped);
            return Err(Failed::Aborted);
        }
        // 2. Read-only copies.
        for b in 0..NODES as u16 {
            if steps.invalidate & (1 << b) != 0 {
                assert_ne!(b, node, "the faulting node is never invalidated");
                assert_ne!(b, owner, "the owner goes last");
                *self.copy(b, page) = None;
                dropped |= 1 << b;
            }
        }
        if fate.abort_at == 2 {
            self.finish(node, page, false, dropped);
            return Err(Failed::Aborted);
        }
        // The owner's step.
        match steps.owner {
            OwnerStep::Keep => {}
            OwnerStep::Take(o) => {
                let Some(c) = self.copy(o, page).as_mut() else {
                    self.finish(node, page, false, dropped);
                    return Err(Failed::NoCopy);
                };
                c.writable = false;
                c.alone = false;
                c.revoked = Some((node, tag));
                value = Some(c.value);
            }
            OwnerStep::Invalidate(o) => *self.copy(o, page) = None,
        }
        // Aborting after the commit is allowed only when the owner kept its copy.
        if fate.abort_at == 3 && !matches!(steps.owner, OwnerStep::Invalidate(_)) {
            self.finish(node, page, false, dropped);
            return Err(Failed::Aborted);
        }
        // 3. Install and map; 4. done, then the release.
        let copy = Copy {
            value: value.expect("the plan gave contents"),
            writable: plan.map_writable,
            revoked: None,
            alone: plan.alone,
        };
        *self.copy(node, page) = Some(copy);
        self.finish(node, page, true, 0);
        if let (OwnerStep::Take(o), false) = (steps.owner, fate.lose_release) {
            let c = self.copy(o, page);
            if c.is_some_and(|c| c.revoked == Some((node, tag))) {
                *c = None;
            }
        }
        Ok(copy)
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Read { node, page, fate } => {
                let got = match self.cache[usize::from(node)][page] {
                    Some(c) if c.serves(false) => Ok(c.value),
                    _ => self.fault(node, page, Access::Read, fate).map(|c| c.value),
                };
                match (self.mem[page], got) {
                    (_, Err(Failed::Aborted)) => {}
                    (Some(v), got) => assert_eq!(got, Ok(v), "read of page {page} by node {node}"),
                    (None, Err(Failed::NoCopy | Failed::Dir(DirError::Lost))) => {}
                    (None, got) => panic!("read of lost page {page} by node {node}: {got:?}"),
                }
            }
            Op::Write {
                node,
                page,
                value,
                fate,
            } => {
                let n = usize::from(node);
                let writable = self.cache[n][page].is_some_and(|c| c.serves(true));
                let upgrade = self.cache[n][page].is_some_and(|c| c.serves(false) && c.alone);
                let got = if writable {
                    Ok(())
                } else if upgrade {
                    // Taken whole by a read: upgraded here, the directory told.
                    self.dir.written(page, node);
                    Ok(())
                } else {
                    self.fault(node, page, Access::Write, fate).map(|_| ())
                };
                if got == Err(Failed::Aborted) {
                    return;
                }
                if self.mem[page].is_none() {
                    assert!(got.is_err(), "a write to a lost page must fail");
                    return;
                }
                assert_eq!(got, Ok(()));
                self.cache[n][page] = Some(Copy {
                    value,
                    writable: true,
                    revoked: None,
                    alone: true,
                });
                self.mem[page] = Some(value);
            }
            Op::Evict { node, page } => {
                let n = usize::from(node);
                let owner = match self.dir.state(page).unwrap() {
                    PageState::Shared { owner, .. } | PageState::Exclusive { owner } => Some(owner),
                    _ => None,
                };
                // Only read-only copies of non-owners can be dropped silently.
                if self.cache[n][page].is_some_and(|c| c.serves(false) && !c.writable)
                    && owner != Some(node)
                {
                    self.dir.drop_copy(page, node).unwrap();
                    self.cache[n][page] = None;
                }
            }
            Op::Crash { node } => {
                let n = usize::from(node);
                self.cache[n] = [None; PAGES];
                self.dir.node_lost(node);
                for p in 0..PAGES {
                    // Revoked copies are unusable and may be stale: only a usable copy
                    // or one the directory still counts survives.
                    let current =
                        |m: usize| self.cache[m][p].is_some_and(|c| Some(c.value) == self.mem[p]);
                    let lost = self.dir.state(p).unwrap() == PageState::Lost;
                    if lost {
                        assert!(
                            !(0..NODES).any(|m| self.cache[m][p].is_some_and(|c| c.serves(false))),
                            "page {p} lost while a node maps it"
                        );
                        self.mem[p] = None;
                    } else if let PageState::Shared { owner, .. } | PageState::Exclusive { owner } =
                        self.dir.state(p).unwrap()
                    {
                        assert!(
                            current(usize::from(owner)),
                            "page {p}: the new owner has no current copy"
                        );
                    }
                }
            }
        }
    }

    fn check(&self) {
        for p in 0..PAGES {
            // Copies that serve faults without asking the directory.
            let usable: Vec<usize> = (0..NODES)
                .filter(|&m| self.cache[m][p].is_some_and(|c| c.serves(false)))
                .collect();
            // Writable, or able to become so without asking.
            let writers: Vec<usize> = usable
                .iter()
                .copied()
                .filter(|&m| self.cache[m][p].is_some_and(|c| c.writable || c.alone))
                .collect();
            assert!(writers.len() <= 1, "page {p}: several writers {writers:?}");
            if !writers.is_empty() {
                assert_eq!(usable, writers, "page {p}: copies beside the writer");
            }
            for &m in &usable {
                assert_eq!(
                    Some(self.cache[m][p].unwrap().value),
                    self.mem[p],
                    "page {p}: node {m} holds a stale copy"
                );
            }
            let usable_set: u64 = usable.iter().map(|&m| 1u64 << m).sum();
            // Every copy the directory counts is current (revoked ones included: the
            // directory grants them again).
            let current = |m: u16| {
                self.cache[usize::from(m)][p].is_some_and(|c| Some(c.value) == self.mem[p])
            };
            match self.dir.state(p).unwrap() {
                PageState::Untouched => assert!(usable.is_empty()),
                PageState::Exclusive { owner } => {
                    assert!(
                        self.mem[p].is_none() || current(owner),
                        "page {p}: owner {owner} lost the contents"
                    );
                    assert!(
                        usable_set & !(1 << owner) == 0,
                        "page {p}: a copy beside the owner"
                    );
                }
                PageState::Shared { owner, copies: c } => {
                    assert!(writers.is_empty());
                    assert_eq!(
                        usable_set & !c,
                        0,
                        "page {p}: a copy the directory does not count"
                    );
                    for m in 0..NODES as u16 {
                        // An aborted plan may have dropped a counted copy.
                        if c & (1 << m) != 0 && self.cache[usize::from(m)][p].is_some() {
                            assert!(current(m), "page {p}: node {m}'s counted copy");
                        }
                    }
                    assert!(
                        self.mem[p].is_none() || current(owner),
                        "page {p}: owner lost"
                    );
                }
                PageState::Lost => {
                    assert!(usable.is_empty());
                    assert_eq!(self.mem[p], None);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Every read returns the last write (sequential consistency per page), there is at
    /// most one writer and no stale copy, whatever the interleaving of faults, evictions
    /// and crashes.
    #[test]
    fn directory_matches_a_single_memory(ops in prop::collection::vec(op(), 1..80)) {
        let mut c = Cluster::new();
        for op in ops {
            c.apply(op);
            c.check();
        }
    }
}
