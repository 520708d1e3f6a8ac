//! Model tests of the futex master (`rust/src/futex.rs`).
//!
//! 1. Random waits, wakes, requeues, wake-ops, cancels, lost nodes and ended processes
//!    run on a `FutexTable` and on a reference (one FIFO list per futex, as a single
//!    kernel keeps them); every answer and every woken waiter, in order, must agree.
//! 2. Threads on several nodes take and release a glibc-style lock (0 free, 1 taken,
//!    2 taken with waiters) whose waits and wakes go through the master as messages that
//!    arrive in any order; a waiter reads the word again once its wait is queued (at a
//!    moment of the schedule's choosing). No thread is ever left asleep while the lock
//!    is free, and the lock is never held twice. (A waiter that trusted the value it saw
//!    before sending its wait fails this within a few cases: a wake that arrives before
//!    the wait is lost.)

use std::collections::VecDeque;

use proptest::prelude::*;
use ssi_shared::futex::{
    Cancelled, FutexMsg, FutexTable, Key, QueueError, RemoteWait, WaitEvent, WaitStep, Waiter,
    WaiterSlot, FUTEX_MSG_MAGIC, FUTEX_MSG_MAX,
};

const SLOTS: usize = 6;
const ANY: u32 = u32::MAX;

fn key(k: u8) -> Key {
    Key {
        space: u64::from(k / 2),
        addr: u64::from(k % 2) * 4,
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Wait {
        k: u8,
        node: u16,
        token: u8,
        bits: u32,
    },
    Wake {
        k: u8,
        nr: i32,
        bits: u32,
    },
    Requeue {
        from: u8,
        to: u8,
        nr_wake: i32,
        nr_requeue: i32,
        cmp: Option<bool>,
    },
    WakeTwo {
        k: u8,
        k2: u8,
        nr: i32,
        nr2: i32,
        holds: bool,
    },
    Cancel {
        node: u16,
        token: u8,
    },
    NodeLost {
        node: u16,
    },
    SpaceEnded {
        space: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0u8..4;
    let node = 0u16..3;
    let bits = prop_oneof![Just(ANY), Just(0u32), 1u32..4];
    let nr = -1i32..4;
    prop_oneof![
        6 => (k.clone(), node.clone(), 0u8..4, bits.clone())
            .prop_map(|(k, node, token, bits)| Op::Wait { k, node, token, bits }),
        3 => (k.clone(), nr.clone(), bits).prop_map(|(k, nr, bits)| Op::Wake { k, nr, bits }),
        2 => (k.clone(), k.clone(), nr.clone(), nr.clone(), prop::option::of(any::<bool>()))
            .prop_map(|(from, to, nr_wake, nr_requeue, cmp)| Op::Requeue { from, to, nr_wake, nr_requeue, cmp }),
        1 => (k.clone(), k.clone(), nr.clone(), nr, any::<bool>())
            .prop_map(|(k, k2, nr, nr2, holds)| Op::WakeTwo { k, k2, nr, nr2, holds }),
        2 => (node.clone(), 0u8..4).prop_map(|(node, token)| Op::Cancel { node, token }),
        1 => node.prop_map(|node| Op::NodeLost { node }),
        1 => (0u8..2).prop_map(|space| Op::SpaceEnded { space }),
    ]
}

/// The reference: one FIFO per futex of (waiter, bitset).
#[derive(Default)]
struct Reference {
    queues: Vec<(Key, VecDeque<(Waiter, u32)>)>,
}

impl Reference {
    fn queue(&mut self, k: Key) -> &mut VecDeque<(Waiter, u32)> {
        if let Some(i) = self.queues.iter().position(|(q, _)| *q == k) {
            return &mut self.queues[i].1;
        }
        self.queues.push((k, VecDeque::new()));
        &mut self.queues.last_mut().unwrap().1
    }
    fn count(&self) -> usize {
        self.queues.iter().map(|(_, q)| q.len()).sum()
    }
    fn waiting(&self, w: Waiter) -> bool {
        self.queues
            .iter()
            .any(|(_, q)| q.iter().any(|(x, _)| *x == w))
    }
    fn take(&mut self, k: Key, nr: usize, bits: u32) -> Vec<Waiter> {
        self.take_with_bits(k, nr, bits)
            .into_iter()
            .map(|(w, _)| w)
            .collect()
    }
    fn take_with_bits(&mut self, k: Key, nr: usize, bits: u32) -> Vec<(Waiter, u32)> {
        let q = self.queue(k);
        let mut out = Vec::new();
        let mut i = 0;
        while i < q.len() && out.len() < nr {
            if q[i].1 & bits != 0 {
                out.push(q.remove(i).unwrap());
            } else {
                i += 1;
            }
        }
        out
    }
    fn retain(&mut self, keep: impl Fn(Key, Waiter) -> bool) -> Vec<Waiter> {
        let mut gone = Vec::new();
        for (k, q) in &mut self.queues {
            q.retain(|(w, _)| {
                let k2 = keep(*k, *w);
                if !k2 {
                    gone.push(*w);
                }
                k2
            });
        }
        gone
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_table_keeps_the_queues_a_single_kernel_would(ops in prop::collection::vec(op(), 1..60)) {
        let mut t = FutexTable::new(vec![WaiterSlot::default(); SLOTS]);
        let mut r = Reference::default();
        for op in ops {
            let mut got = Vec::new();
            match op {
                Op::Wait { k, node, token, bits } => {
                    let wt = Waiter { node, token: u64::from(token) };
                    let want = if bits == 0 {
                        Err(QueueError::EmptyBitset)
                    } else if r.waiting(wt) {
                        Err(QueueError::AlreadyWaiting)
                    } else if r.count() == SLOTS {
                        Err(QueueError::Full)
                    } else {
                        r.queue(key(k)).push_back((wt, bits));
                        Ok(())
                    };
                    prop_assert_eq!(t.wait(key(k), wt, bits), want);
                }
                Op::Wake { k, nr, bits } => {
                    let n = t.wake(key(k), nr, bits, |w| got.push(w));
                    let want = if bits == 0 { Vec::new() } else { r.take(key(k), nr.max(1) as usize, bits) };
                    prop_assert_eq!(n, want.len());
                    prop_assert_eq!(&got, &want);
                }
                Op::Requeue { from, to, nr_wake, nr_requeue, cmp } => {
                    let res = t.requeue(key(from), key(to), nr_wake, nr_requeue, cmp, |w| got.push(w));
                    if nr_wake < 0 || nr_requeue < 0 {
                        prop_assert_eq!(res, Err(QueueError::NegativeCount));
                    } else if cmp == Some(false) {
                        prop_assert_eq!(res, Err(QueueError::ValueChanged));
                    } else {
                        let woken = r.take(key(from), nr_wake as usize, ANY);
                        let moved = if from == to {
                            // The kernel relabels in place: nothing moves.
                            r.queue(key(from)).len().min(nr_requeue as usize)
                        } else {
                            // Moved waiters keep their bitsets and go to the end of `to`.
                            let moved = r.take_with_bits(key(from), nr_requeue as usize, ANY);
                            let n = moved.len();
                            r.queue(key(to)).extend(moved);
                            n
                        };
                        prop_assert_eq!(res, Ok(woken.len() + moved));
                        prop_assert_eq!(&got, &woken);
                    }
                }
                Op::WakeTwo { k, k2, nr, nr2, holds } => {
                    let n = t.wake_op(key(k), key(k2), nr, nr2, holds, |w| got.push(w));
                    let mut want = r.take(key(k), nr.max(1) as usize, ANY);
                    if holds {
                        want.extend(r.take(key(k2), nr2.max(1) as usize, ANY));
                    }
                    prop_assert_eq!(n, want.len());
                    prop_assert_eq!(&got, &want);
                }
                Op::Cancel { node, token } => {
                    let wt = Waiter { node, token: u64::from(token) };
                    let want = if r.retain(|_, w| w != wt).is_empty() {
                        Cancelled::NotWaiting
                    } else {
                        Cancelled::Removed
                    };
                    prop_assert_eq!(t.cancel(wt), want);
                }
                Op::NodeLost { node } => {
                    let gone = r.retain(|_, w| w.node != node);
                    prop_assert_eq!(t.node_lost(node), gone.len());
                }
                Op::SpaceEnded { space } => {
                    let mut gone = r.retain(|k, _| k.space != u64::from(space));
                    let n = t.space_ended(u64::from(space), |w| got.push(w));
                    prop_assert_eq!(n, gone.len());
                    got.sort();
                    gone.sort();
                    prop_assert_eq!(&got, &gone);
                }
            }
            prop_assert_eq!(t.waiting(), r.count());
            for k in 0..4 {
                prop_assert_eq!(t.waiters_of(key(k)), r.queue(key(k)).len());
            }
        }
    }
}

/// What a thread of the lock simulation is doing.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Thread {
    /// About to try the lock.
    Trying,
    /// Back from a wait, about to try again (glibc's `__lll_lock_wait`: only `xchg 2`,
    /// since other waiters may still be queued).
    Retrying,
    /// In a remote wait (`true`: about to read the word for its check).
    Waiting(RemoteWait, bool),
    /// Holds the lock.
    Holding,
    /// All rounds done.
    Done,
}

#[derive(Clone, Copy, Debug)]
enum Msg {
    /// Thread → master.
    Wait {
        thread: usize,
    },
    Wake,
    Cancel {
        thread: usize,
    },
    /// Master → thread.
    ToThread {
        thread: usize,
        event: WaitEvent,
    },
}

/// A glibc-style lock (0 free, 1 taken, 2 taken and maybe waiters) used by `threads`
/// threads, each on its own node, for `rounds` rounds each; the schedule (which thread
/// steps, which message in flight arrives next, which waiter times out, if `timeouts`)
/// comes from `choices`. Returns an error text on a broken lock or a thread left asleep
/// (without timeouts, a lost wake leaves its waiter asleep for ever).
fn run_lock(threads: usize, rounds: u32, timeouts: bool, choices: &[u16]) -> Result<(), String> {
    let lock = Key {
        space: 1,
        addr: 0x40,
    };
    let waiter = |t: usize| Waiter {
        node: t as u16,
        token: 1,
    };
    let mut word = 0u32;
    let mut table = FutexTable::new(vec![WaiterSlot::default(); threads]);
    let mut state = vec![Thread::Trying; threads];
    let mut left = vec![rounds; threads];
    let mut flight: Vec<Msg> = Vec::new();
    let mut holders = 0;
    let mut step = 0usize;
    // Once the choices run out, the oldest enabled action goes first (a fair drain).
    let mut choice = |n: usize| {
        let c = choices.get(step).copied().unwrap_or(0) as usize;
        step += 1;
        c % n
    };
    // Each wait times out at most once (the thread then waits for its cancel's answer).
    let mut timed_out = vec![false; threads];
    for _ in 0..20_000 {
        // The enabled actions: 0 a thread's step, 1 a message's arrival, 2 a timeout, 3 a
        // waiter's read of the word.
        let mut enabled: Vec<(u8, usize)> = Vec::new();
        for (i, s) in state.iter().enumerate() {
            match s {
                Thread::Trying | Thread::Retrying | Thread::Holding => enabled.push((0, i)),
                Thread::Waiting(_, true) => enabled.push((3, i)),
                Thread::Waiting(_, false) if timeouts && !timed_out[i] => enabled.push((2, i)),
                _ => {}
            }
        }
        enabled.extend((0..flight.len()).map(|i| (1, i)));
        if enabled.is_empty() {
            break;
        }
        // Timeouts are rare.
        let mut pick = enabled[choice(enabled.len())];
        if pick.0 == 2 && choice(8) != 0 {
            if let Some(other) = enabled.iter().find(|a| a.0 != 2) {
                pick = *other;
            }
        }
        let mut event = None;
        match pick {
            (0, t) if matches!(state[t], Thread::Trying | Thread::Retrying) => {
                // lll_lock: cas 0 -> 1, else xchg 2 and wait while it was taken.
                if word == 0 && state[t] == Thread::Trying {
                    word = 1;
                } else if std::mem::replace(&mut word, 2) != 0 {
                    state[t] = Thread::Waiting(RemoteWait::new(), false);
                    timed_out[t] = false;
                    flight.push(Msg::Wait { thread: t });
                    continue;
                }
                state[t] = Thread::Holding;
                holders += 1;
                if holders > 1 {
                    return Err(format!("thread {t} took a lock that was held"));
                }
            }
            (0, t) => {
                holders -= 1;
                left[t] -= 1;
                state[t] = if left[t] == 0 {
                    Thread::Done
                } else {
                    Thread::Trying
                };
                // lll_unlock: xchg 0, wake one if there may be waiters.
                if std::mem::replace(&mut word, 0) == 2 {
                    flight.push(Msg::Wake);
                }
            }
            (2, t) => {
                timed_out[t] = true;
                event = Some((t, WaitEvent::GiveUp));
            }
            (3, t) => {
                if let Thread::Waiting(w, _) = state[t] {
                    state[t] = Thread::Waiting(w, false);
                }
                event = Some((t, WaitEvent::Value { matches: word == 2 }));
            }
            (_, i) => match flight.remove(i) {
                Msg::Wait { thread } => {
                    let answer = match table.wait(lock, waiter(thread), ANY) {
                        Ok(()) => WaitEvent::Queued,
                        Err(e) => WaitEvent::Refused(e.errno()),
                    };
                    flight.push(Msg::ToThread {
                        thread,
                        event: answer,
                    });
                }
                Msg::Wake => {
                    table.wake(lock, 1, ANY, |w| {
                        let thread = usize::from(w.node);
                        flight.push(Msg::ToThread {
                            thread,
                            event: WaitEvent::Woken,
                        })
                    });
                }
                Msg::Cancel { thread } => {
                    let answer = match table.cancel(waiter(thread)) {
                        Cancelled::Removed => WaitEvent::Removed,
                        Cancelled::NotWaiting => WaitEvent::NotWaiting,
                    };
                    flight.push(Msg::ToThread {
                        thread,
                        event: answer,
                    });
                }
                Msg::ToThread { thread, event: e } => event = Some((thread, e)),
            },
        }
        if let Some((t, e)) = event {
            let Thread::Waiting(mut w, _) = state[t] else {
                return Err(format!("thread {t} got {e:?} while {:?}", state[t]));
            };
            state[t] = match w.on(e) {
                WaitStep::Sleep => Thread::Waiting(w, false),
                WaitStep::CheckValue => Thread::Waiting(w, true),
                WaitStep::SendCancel => {
                    flight.push(Msg::Cancel { thread: t });
                    Thread::Waiting(w, false)
                }
                // Woken, refused or timed out: lll_lock tries again.
                WaitStep::Return(_) => Thread::Retrying,
            };
        }
    }
    if let Some(t) = state.iter().position(|s| *s != Thread::Done) {
        return Err(format!(
            "thread {t} never finished ({:?}, word {word}, {} queued, {} in flight)",
            state[t],
            table.waiting(),
            flight.len()
        ));
    }
    if table.waiting() != 0 || word != 0 {
        return Err(format!(
            "left behind: word {word}, {} queued",
            table.waiting()
        ));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn a_lock_over_the_master_never_loses_a_wake(
        threads in 2usize..5,
        choices in prop::collection::vec(any::<u16>(), 0..400),
    ) {
        prop_assert_eq!(run_lock(threads, 3, false, &choices), Ok(()));
    }

    #[test]
    fn waits_that_time_out_or_take_signals_leave_nothing_behind(
        threads in 2usize..5,
        choices in prop::collection::vec(any::<u16>(), 0..400),
    ) {
        prop_assert_eq!(run_lock(threads, 3, true, &choices), Ok(()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    /// Whatever bytes arrive, decoding never panics, and what decodes re-encodes to the
    /// same bytes (no two encodings of one message).
    #[test]
    fn futex_messages_decode_only_their_own_encoding(
        kind in 0u8..9,
        body in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut bytes = vec![FUTEX_MSG_MAGIC, kind];
        bytes.extend_from_slice(&body);
        if let Ok(m) = FutexMsg::decode(&bytes) {
            let mut buf = [0u8; FUTEX_MSG_MAX];
            let n = m.encode(&mut buf).unwrap();
            prop_assert_eq!(&buf[..n], &bytes[..]);
        }
    }
}
