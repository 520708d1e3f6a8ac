//! Model test of the home's gate between address-space changes and thread hops
//! (`rust/src/space_gate.rs`).
//!
//! Random changes and hops of a few processes begin, end, give up, and lose their
//! source node, in any order, as the kernel side drives them (a hop announces itself,
//! then asks to begin until it may). Whatever the order: no change is ever admitted
//! while a hop of its process is in flight, no hop begins while a change of its process
//! is under way, a waiting hop is never overtaken for ever by new changes, and once
//! everything ended every gate is free again.

use proptest::prelude::*;
use ssi_shared::space_gate::{Admit, SpaceGates, GATES};

const PROCESSES: u64 = 3;

#[derive(Clone, Debug)]
enum Op {
    BeginChange(u64),
    EndChange(usize),
    WantHop(u64, u32),
    TryHop(usize),
    GiveUp(usize),
    EndHop(usize),
    NodeDown(u32),
    Tick(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1..=PROCESSES).prop_map(Op::BeginChange),
        any::<usize>().prop_map(Op::EndChange),
        (1..=PROCESSES, 1u32..4).prop_map(|(p, n)| Op::WantHop(p, n)),
        any::<usize>().prop_map(Op::TryHop),
        any::<usize>().prop_map(Op::GiveUp),
        any::<usize>().prop_map(Op::EndHop),
        (1u32..4).prop_map(Op::NodeDown),
        (0u64..40_000).prop_map(Op::Tick),
    ]
}

#[derive(Clone, Copy, Debug)]
struct HopActor {
    process: u64,
    node: u32,
    token: u64,
    in_flight: bool,
    since: u64,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn changes_and_hops_of_a_process_never_overlap(ops in prop::collection::vec(op(), 1..120)) {
        let mut g = SpaceGates::new();
        let mut changes: Vec<u64> = Vec::new();
        let mut hops: Vec<HopActor> = Vec::new();
        let mut down = [false; 4];
        let mut now = 0u64;
        let mut next_token = 1u64;
        const MAX_AGE: u64 = 60_000;
        for op in ops {
            match op {
                Op::BeginChange(p) => match g.begin_change(p) {
                    Admit::Yes => {
                        prop_assert!(
                            !hops.iter().any(|h| h.process == p),
                            "a change of {} admitted while a hop of it waits or flies", p
                        );
                        changes.push(p);
                    }
                    Admit::Wait => prop_assert!(hops.iter().any(|h| h.process == p)),
                    Admit::Full => prop_assert!(false, "a table of {} gates full", GATES),
                },
                Op::EndChange(i) if !changes.is_empty() => {
                    let p = changes.remove(i % changes.len());
                    g.end_change(p);
                }
                Op::WantHop(p, node) if !down[node as usize] => {
                    prop_assert_eq!(g.want_hop(p), Admit::Yes);
                    hops.push(HopActor { process: p, node, token: next_token, in_flight: false, since: 0 });
                    next_token += 1;
                }
                Op::TryHop(i) if !hops.is_empty() => {
                    let i = i % hops.len();
                    let h = hops[i];
                    if !h.in_flight {
                        match g.begin_hop(h.process, h.node, h.token, now) {
                            Admit::Yes => {
                                prop_assert!(
                                    !changes.contains(&h.process),
                                    "a hop of {} began during a change", h.process
                                );
                                hops[i].in_flight = true;
                                hops[i].since = now;
                            }
                            Admit::Wait => prop_assert!(
                                changes.contains(&h.process)
                                    || hops.iter().filter(|o| o.process == h.process && o.in_flight).count() >= ssi_shared::space_gate::HOPS
                            ),
                            Admit::Full => prop_assert!(false, "a wanted hop lost its gate"),
                        }
                    }
                }
                Op::GiveUp(i) if !hops.is_empty() => {
                    let i = i % hops.len();
                    if !hops[i].in_flight {
                        let h = hops.remove(i);
                        g.give_up_hop(h.process);
                    }
                }
                Op::EndHop(i) if !hops.is_empty() => {
                    let i = i % hops.len();
                    if hops[i].in_flight {
                        let h = hops.remove(i);
                        // Forgotten already if it expired (see Tick/NodeDown).
                        g.end_hop(h.process, h.node, h.token);
                    }
                }
                Op::NodeDown(n) => {
                    down[n as usize] = true;
                    g.expire(now, MAX_AGE, |node| !down[node as usize]);
                    // The hops in flight from that node are forgotten; the waiting ones
                    // give up (their source is gone).
                    let mut kept = Vec::new();
                    for h in hops.drain(..) {
                        if h.node != n {
                            kept.push(h);
                        } else if !h.in_flight {
                            g.give_up_hop(h.process);
                        }
                    }
                    hops = kept;
                }
                Op::Tick(ms) => {
                    now += ms;
                    let forgotten = g.expire(now, MAX_AGE, |node| !down[node as usize]);
                    // What the gate forgot (too old) is in flight no more for the model.
                    let before = hops.len();
                    hops.retain(|h| !(h.in_flight && now - h.since > MAX_AGE));
                    prop_assert_eq!(forgotten, before - hops.len());
                }
                _ => {}
            }
            for p in 1..=PROCESSES {
                let (c, in_flight) = g.state(p);
                prop_assert!(c == 0 || in_flight == 0, "process {}: {} changes and {} hops", p, c, in_flight);
                prop_assert_eq!(c as usize, changes.iter().filter(|&&q| q == p).count());
            }
        }
        // Everything ends: every gate is free again.
        for p in changes.drain(..) {
            g.end_change(p);
        }
        for h in hops.drain(..) {
            if h.in_flight {
                g.end_hop(h.process, h.node, h.token);
            } else {
                g.give_up_hop(h.process);
            }
        }
        for p in 1..=GATES as u64 {
            prop_assert_eq!(g.begin_change(1000 + p), Admit::Yes);
        }
    }
}
