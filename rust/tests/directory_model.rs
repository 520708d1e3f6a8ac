//! Model test of the page directory (`rust/src/directory.rs`): simulated nodes with
//! page caches run random reads, writes, evictions and crashes through the directory's
//! plans, and every step is checked against a reference memory (one value per page, as
//! on a single machine) and the single-writer/many-readers invariants.

use proptest::prelude::*;
use ssi_shared::directory::{Access, DirError, Directory, PageState, Slot, Source};

const NODES: usize = 4;
const PAGES: usize = 3;

#[derive(Clone, Copy, Debug)]
enum Op {
    Read { node: u16, page: usize },
    Write { node: u16, page: usize, value: u32 },
    Evict { node: u16, page: usize },
    Crash { node: u16 },
}

fn op() -> impl Strategy<Value = Op> {
    let node = 0..NODES as u16;
    let page = 0..PAGES;
    prop_oneof![
        5 => (node.clone(), page.clone()).prop_map(|(node, page)| Op::Read { node, page }),
        5 => (node.clone(), page.clone(), 1..u32::MAX)
            .prop_map(|(node, page, value)| Op::Write { node, page, value }),
        2 => (node.clone(), page).prop_map(|(node, page)| Op::Evict { node, page }),
        1 => node.prop_map(|node| Op::Crash { node }),
    ]
}

/// A node's copy of a page.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Copy {
    value: u32,
    writable: bool,
}

struct Cluster {
    dir: Directory<Vec<Slot>>,
    cache: [[Option<Copy>; PAGES]; NODES],
    /// The reference: what a single machine's memory would hold (`None`: lost).
    mem: [Option<u32>; PAGES],
}

impl Cluster {
    fn new() -> Self {
        Self {
            dir: Directory::new(vec![None; PAGES]),
            cache: [[None; PAGES]; NODES],
            mem: [Some(0); PAGES],
        }
    }

    /// Runs a fault through the directory like the kernel would; returns the mapped copy.
    fn fault(&mut self, node: u16, page: usize, access: Access) -> Result<Copy, DirError> {
        let plan = self.dir.request(page, node, access)?;
        let n = usize::from(node);
        if let Some(o) = plan.downgrade {
            let c = self.cache[usize::from(o)][page]
                .as_mut()
                .expect("downgraded node holds the page");
            c.writable = false;
        }
        let value = match plan.source {
            Source::Zero => 0,
            Source::Local => {
                self.cache[n][page]
                    .expect("local source holds the page")
                    .value
            }
            Source::Node(o) => {
                self.cache[usize::from(o)][page]
                    .expect("source node holds the page")
                    .value
            }
        };
        for b in 0..NODES {
            if plan.invalidate & (1 << b) != 0 {
                assert_ne!(b, n, "the faulting node is never invalidated");
                self.cache[b][page] = None;
            }
        }
        let copy = Copy {
            value,
            writable: plan.map_writable,
        };
        self.cache[n][page] = Some(copy);
        self.dir.complete(page, node).unwrap();
        Ok(copy)
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Read { node, page } => {
                let got = match self.cache[usize::from(node)][page] {
                    Some(c) => Ok(c.value),
                    None => self.fault(node, page, Access::Read).map(|c| c.value),
                };
                match self.mem[page] {
                    Some(v) => assert_eq!(got, Ok(v), "read of page {page} by node {node}"),
                    None => assert_eq!(got, Err(DirError::Lost)),
                }
            }
            Op::Write { node, page, value } => {
                let n = usize::from(node);
                let writable = self.cache[n][page].is_some_and(|c| c.writable);
                let ok = writable || self.fault(node, page, Access::Write).is_ok();
                if self.mem[page].is_none() {
                    assert!(!ok, "a write to a lost page must fail");
                    return;
                }
                assert!(ok);
                self.cache[n][page] = Some(Copy {
                    value,
                    writable: true,
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
                if self.cache[n][page].is_some_and(|c| !c.writable) && owner != Some(node) {
                    self.dir.drop_copy(page, node).unwrap();
                    self.cache[n][page] = None;
                }
            }
            Op::Crash { node } => {
                let n = usize::from(node);
                self.cache[n] = [None; PAGES];
                self.dir.node_lost(node);
                for p in 0..PAGES {
                    let anyone = (0..NODES).any(|m| self.cache[m][p].is_some());
                    let untouched = self.dir.state(p).unwrap() == PageState::Untouched;
                    if !anyone && !untouched {
                        self.mem[p] = None;
                    }
                }
            }
        }
    }

    fn check(&self) {
        for p in 0..PAGES {
            let holders: Vec<usize> = (0..NODES).filter(|&m| self.cache[m][p].is_some()).collect();
            let writers: Vec<usize> = holders
                .iter()
                .copied()
                .filter(|&m| self.cache[m][p].unwrap().writable)
                .collect();
            assert!(writers.len() <= 1, "page {p}: several writers {writers:?}");
            if !writers.is_empty() {
                assert_eq!(holders, writers, "page {p}: copies beside the writer");
            }
            for &m in &holders {
                assert_eq!(
                    Some(self.cache[m][p].unwrap().value),
                    self.mem[p],
                    "page {p}: node {m} holds a stale copy"
                );
            }
            let copies: u64 = holders.iter().map(|&m| 1u64 << m).sum();
            match self.dir.state(p).unwrap() {
                PageState::Untouched => assert!(holders.is_empty()),
                PageState::Exclusive { owner } => assert_eq!(writers, vec![usize::from(owner)]),
                PageState::Shared { owner, copies: c } => {
                    assert!(writers.is_empty());
                    assert_eq!(c, copies, "page {p}: directory copy set");
                    assert!(
                        self.cache[usize::from(owner)][p].is_some(),
                        "page {p}: owner lost"
                    );
                }
                PageState::Lost => {
                    assert!(holders.is_empty());
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
