//! Model test of the faults a home parks on busy pages (`rust/src/parked_faults.rs`).
//!
//! Random parks (a node's new fault replaces its old one), takes, cancels and node
//! losses, checked against a plain list in arrival order: every take returns the fault
//! the model says was parked first on that page, nothing parked is lost or served twice,
//! and the count and the listed pages always agree with the model. The order counter
//! starts near its wrap so that renumbering is exercised too.

use proptest::prelude::*;
use ssi_shared::parked_faults::{ParkedFault, ParkedFaults};

const NODES: u16 = 6;
const PAGES: u32 = 4;

#[derive(Clone, Debug)]
enum Op {
    Park(u16, u32, bool),
    Take(u32),
    Cancel(u16, u32),
    NodeLost(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..NODES, 0..PAGES, any::<bool>()).prop_map(|(n, p, w)| Op::Park(n, p, w)),
        3 => (0..PAGES).prop_map(Op::Take),
        1 => (0..NODES, 0..PAGES).prop_map(|(n, p)| Op::Cancel(n, p)),
        1 => (0..NODES).prop_map(Op::NodeLost),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn parked_faults_are_served_first_come_first_served(
        ops in prop::collection::vec(op(), 1..200),
        wrap_in in 0u32..300,
    ) {
        let mut parked = ParkedFaults::with_next_order(u32::MAX - wrap_in);
        // The model: parked faults in arrival order.
        let mut model: Vec<ParkedFault> = Vec::new();
        let mut seq = 0u32;
        for op in ops {
            match op {
                Op::Park(node, page, write) => {
                    seq += 1;
                    let f = ParkedFault { page, node, seq, write };
                    prop_assert!(parked.park(f));
                    model.retain(|m| m.node != node);
                    model.push(f);
                }
                Op::Take(page) => {
                    let want = model.iter().position(|m| m.page == page);
                    let got = parked.take_next(page);
                    prop_assert_eq!(got, want.map(|i| model.remove(i)));
                }
                Op::Cancel(node, page) => {
                    let want = model.iter().position(|m| m.node == node && m.page == page);
                    prop_assert_eq!(parked.cancel(node, page), want.is_some());
                    if let Some(i) = want {
                        model.remove(i);
                    }
                }
                Op::NodeLost(node) => {
                    parked.drop_node(node);
                    model.retain(|m| m.node != node);
                }
            }
            prop_assert_eq!(parked.len(), model.len());
            prop_assert_eq!(parked.is_empty(), model.is_empty());
            let mut pages: Vec<u32> = parked.pages().collect();
            let mut want: Vec<u32> = model.iter().map(|m| m.page).collect();
            pages.sort_unstable();
            want.sort_unstable();
            prop_assert_eq!(pages, want);
        }
    }
}
