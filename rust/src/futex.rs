// SPDX-License-Identifier: GPL-2.0

//! Cluster-wide futexes: what a futex operation asks for, and the wait queues its master
//! node keeps.
//!
//! The threads of a distributed process run on several nodes but share one address
//! space, so a `futex()` on one node must be able to wake a waiter on another. As in the
//! design paper, each futex has a master node that holds its wait queue, and every wait
//! and wake of the futex is decided there, one at a time. A futex's master is the home
//! of its process (the node that also keeps the process's page directory).
//!
//! This file is the pure part, run three ways like the other state machines (host tests
//! with a property-test model in `rust/tests/futex_model.rs`, KUnit, the modules):
//!
//! - [`decode`] turns the `op` argument of `futex(2)` into a [`Command`], refusing what a
//!   distributed process cannot do with the errno and text a user sees (PI futexes) and
//!   what the kernel itself refuses (bad flag combinations, `FUTEX_FD`);
//! - [`WakeOp`] is `FUTEX_WAKE_OP`'s encoded operation: the update it makes to the second
//!   word and the comparison that decides the second wake;
//! - [`FutexTable`] is a master's wait queues over caller-provided storage (the kernel
//!   allocates it per process; the tests use a `Vec`);
//! - [`RemoteWait`] is the waiting thread's side of one wait.
//!
//! A wait is queued first and its word checked after, in the kernel's order: the master
//! queues the waiter and answers at once; the waiting thread then reads the word on its
//! own node (the page directory makes that read see the latest store, wherever it was
//! made) and, if it no longer holds the expected value, cancels (`EAGAIN`). A thread
//! stores to the word before it asks for a wake, so either the wake finds the waiter
//! queued or the waiter's read sees the store: no wake is lost, and the master never
//! reads user memory (its handlers never wait for another node). Waiters are woken in
//! the order they queued (the kernel's order among waiters of one priority).
//!
//! When a wake dequeues a waiter the master sends it a `Woken` message, which may
//! overtake the answer to the wait. A waiter that times out, takes a signal or saw the
//! word change asks the master to [`FutexTable::cancel`] its wait, but only once the
//! wait is known to be queued (a cancel that overtook its own wait would find nothing and
//! leave the wait queued for ever); the master's answer decides the race with a wake on
//! the way (a waiter already woken returns 0, as the kernel's does). A wait ends only
//! when nothing of it is still on the way. The waiters of a node that goes down are
//! dropped ([`FutexTable::node_lost`]); a process that ends drops all of its own
//! ([`FutexTable::space_ended`]). `FUTEX_CMP_REQUEUE`'s comparison is made by whoever
//! asks the master, under the table's lock, and passed in.

use super::errno::{EAGAIN, EINVAL, ENOMEM, ENOSYS};
use super::wire::{Reader, WireError, Writer};

/// `FUTEX_WAIT`.
pub const FUTEX_WAIT: u32 = 0;
/// `FUTEX_WAKE`.
pub const FUTEX_WAKE: u32 = 1;
/// `FUTEX_FD` (removed from Linux in 2.6.26).
pub const FUTEX_FD: u32 = 2;
/// `FUTEX_REQUEUE`.
pub const FUTEX_REQUEUE: u32 = 3;
/// `FUTEX_CMP_REQUEUE`.
pub const FUTEX_CMP_REQUEUE: u32 = 4;
/// `FUTEX_WAKE_OP`.
pub const FUTEX_WAKE_OP: u32 = 5;
/// `FUTEX_LOCK_PI`.
pub const FUTEX_LOCK_PI: u32 = 6;
/// `FUTEX_UNLOCK_PI`.
pub const FUTEX_UNLOCK_PI: u32 = 7;
/// `FUTEX_TRYLOCK_PI`.
pub const FUTEX_TRYLOCK_PI: u32 = 8;
/// `FUTEX_WAIT_BITSET`.
pub const FUTEX_WAIT_BITSET: u32 = 9;
/// `FUTEX_WAKE_BITSET`.
pub const FUTEX_WAKE_BITSET: u32 = 10;
/// `FUTEX_WAIT_REQUEUE_PI`.
pub const FUTEX_WAIT_REQUEUE_PI: u32 = 11;
/// `FUTEX_CMP_REQUEUE_PI`.
pub const FUTEX_CMP_REQUEUE_PI: u32 = 12;
/// `FUTEX_LOCK_PI2`.
pub const FUTEX_LOCK_PI2: u32 = 13;
/// `FUTEX_PRIVATE_FLAG`: the futex is private to the process.
pub const FUTEX_PRIVATE_FLAG: u32 = 128;
/// `FUTEX_CLOCK_REALTIME`: an absolute timeout is on the realtime clock.
pub const FUTEX_CLOCK_REALTIME: u32 = 256;
/// `FUTEX_ROBUST_UNLOCK`: a wake that first unlocks the word and clears the robust
/// list's pending entry (`uaddr2`).
pub const FUTEX_ROBUST_UNLOCK: u32 = 512;
/// `FUTEX_ROBUST_LIST32`: the robust list entry is a 32-bit one.
pub const FUTEX_ROBUST_LIST32: u32 = 1024;
/// The flag bits; the rest of `op` is the command.
pub const FUTEX_FLAGS: u32 =
    FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME | FUTEX_ROBUST_UNLOCK | FUTEX_ROBUST_LIST32;
/// The bitset that matches every waiter.
pub const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

/// A `futex(2)` operation that is refused, with the errno the caller gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A priority-inheritance operation: PI futexes are not distributed.
    PriorityInheritance,
    /// A command Linux does not have (or no longer has: `FUTEX_FD`).
    UnknownCommand,
    /// `FUTEX_CLOCK_REALTIME` or `FUTEX_ROBUST_UNLOCK` on a command that does not take it.
    FlagNotForCommand,
    /// A wait or wake with an empty bitset.
    EmptyBitset,
    /// A `FUTEX_WAKE_OP` whose operation or comparison is not one Linux defines.
    UnknownWakeOp,
    /// A negative count of waiters to wake or requeue.
    NegativeCount,
    /// futex2 flags Linux refuses (a size other than 32 bits, unknown bits, a reserved
    /// field set, `futex_requeue` flags or entries that differ).
    Futex2Flags,
    /// `FUTEX2_NUMA` or `FUTEX2_MPOL`: one master per futex, whatever the node.
    Futex2Numa,
    /// A futex2 value or mask wider than the 32-bit word.
    TooWide,
    /// A futex word not aligned to its size.
    Misaligned,
    /// A futex2 timeout on a clock other than `CLOCK_REALTIME` and `CLOCK_MONOTONIC`.
    Futex2Clock,
    /// A timeout that is not a valid time.
    BadTimeout,
    /// `futex_waitv`: waiting on several words at once is not distributed.
    Waitv,
}

impl Refusal {
    /// The errno `futex()` returns (positive).
    pub fn errno(self) -> i32 {
        match self {
            Refusal::PriorityInheritance
            | Refusal::UnknownCommand
            | Refusal::FlagNotForCommand
            | Refusal::UnknownWakeOp
            | Refusal::Waitv => ENOSYS,
            Refusal::EmptyBitset
            | Refusal::NegativeCount
            | Refusal::Futex2Flags
            | Refusal::Futex2Numa
            | Refusal::TooWide
            | Refusal::Misaligned
            | Refusal::Futex2Clock
            | Refusal::BadTimeout => EINVAL,
        }
    }

    /// Why, for the kernel log (one line, lower case).
    pub fn text(self) -> &'static str {
        match self {
            Refusal::PriorityInheritance => {
                "priority-inheritance futexes are not supported in a distributed process"
            }
            Refusal::UnknownCommand => "unknown futex command",
            Refusal::FlagNotForCommand => "futex flag not valid with this command",
            Refusal::EmptyBitset => "futex bitset is 0",
            Refusal::UnknownWakeOp => "unknown FUTEX_WAKE_OP operation or comparison",
            Refusal::NegativeCount => "negative futex wake or requeue count",
            Refusal::Futex2Flags => "futex2 flags not valid (32-bit words only)",
            Refusal::Futex2Numa => {
                "FUTEX2_NUMA and FUTEX2_MPOL are not supported in a distributed process"
            }
            Refusal::TooWide => "futex value or mask wider than its 32-bit word",
            Refusal::Misaligned => "futex word not aligned",
            Refusal::Futex2Clock => "futex timeout clock is not CLOCK_REALTIME or CLOCK_MONOTONIC",
            Refusal::BadTimeout => "futex timeout is not a valid time",
            Refusal::Waitv => "futex_waitv is not supported in a distributed process",
        }
    }
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.text())
    }
}

/// What a `futex(2)` call asks for (its arguments named as in the man page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `FUTEX_WAIT` / `FUTEX_WAIT_BITSET`: sleep while `*uaddr == val`, until woken by a
    /// wake whose bitset shares a bit with `bitset`. `absolute` timeouts are
    /// `FUTEX_WAIT_BITSET`'s (`FUTEX_WAIT`'s is relative).
    Wait {
        /// The value the word must hold.
        val: u32,
        /// Which wakes may end the wait.
        bitset: u32,
        /// The timeout is an absolute time (else relative).
        absolute: bool,
    },
    /// `FUTEX_WAKE` / `FUTEX_WAKE_BITSET`: wake at most `nr` waiters (at least one).
    Wake {
        /// How many.
        nr: i32,
        /// Which waiters.
        bitset: u32,
        /// `FUTEX_ROBUST_UNLOCK`: first store 0 to the word (release) and clear the
        /// robust list's pending entry at `uaddr2` (a 32-bit entry when `list32`).
        robust_unlock: Option<RobustUnlock>,
    },
    /// `FUTEX_REQUEUE` / `FUTEX_CMP_REQUEUE`: wake at most `nr_wake` waiters of `uaddr`
    /// and move at most `nr_requeue` of the rest to `uaddr2`; with `cmp`, only if
    /// `*uaddr == cmp` (else `EAGAIN`).
    Requeue {
        /// How many to wake.
        nr_wake: i32,
        /// How many to move.
        nr_requeue: i32,
        /// `FUTEX_CMP_REQUEUE`'s expected value.
        cmp: Option<u32>,
    },
    /// `FUTEX_WAKE_OP`: update `*uaddr2` by `op`, wake at most `nr_wake` waiters of
    /// `uaddr` and, if `op`'s comparison of the old `*uaddr2` holds, at most `nr_wake2`
    /// of `uaddr2`.
    WakeOp {
        /// How many waiters of `uaddr`.
        nr_wake: i32,
        /// How many waiters of `uaddr2`.
        nr_wake2: i32,
        /// The update and comparison.
        op: WakeOp,
    },
}

/// `FUTEX_ROBUST_UNLOCK`'s details.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RobustUnlock {
    /// The pending entry is a 32-bit pointer (`FUTEX_ROBUST_LIST32`).
    pub list32: bool,
}

/// A decoded `futex(2)` call: its command and whether the futex is private.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// What it asks for.
    pub command: Command,
    /// `FUTEX_PRIVATE_FLAG`: the futex word is in this process's private memory.
    pub private: bool,
    /// `FUTEX_CLOCK_REALTIME`: an absolute timeout is on the realtime clock.
    pub realtime: bool,
}

/// The bitset of a wait or wake: `val3` for the `_BITSET` command, every bit for the
/// plain one; never empty.
fn bitset_of(cmd: u32, bitset_cmd: u32, val3: u32) -> Result<u32, Refusal> {
    match (cmd == bitset_cmd).then_some(val3) {
        Some(0) => Err(Refusal::EmptyBitset),
        Some(bitset) => Ok(bitset),
        None => Ok(FUTEX_BITSET_MATCH_ANY),
    }
}

/// Decodes `futex(uaddr, op, val, timeout/val2, uaddr2, val3)`: `val2` is the timeout
/// argument read as a count (`FUTEX_REQUEUE`, `FUTEX_CMP_REQUEUE`, `FUTEX_WAKE_OP`).
/// The checks are the kernel's, in its order (`do_futex`), with PI refused.
pub fn decode(op: u32, val: u32, val2: u32, val3: u32) -> Result<Call, Refusal> {
    let cmd = op & !FUTEX_FLAGS;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    let robust = op & FUTEX_ROBUST_UNLOCK != 0;
    if realtime
        && !matches!(
            cmd,
            FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI2
        )
    {
        return Err(Refusal::FlagNotForCommand);
    }
    if robust && !matches!(cmd, FUTEX_WAKE | FUTEX_WAKE_BITSET | FUTEX_UNLOCK_PI) {
        return Err(Refusal::FlagNotForCommand);
    }
    let robust_unlock = robust.then_some(RobustUnlock {
        list32: op & FUTEX_ROBUST_LIST32 != 0,
    });
    let command = match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => Command::Wait {
            val,
            bitset: bitset_of(cmd, FUTEX_WAIT_BITSET, val3)?,
            absolute: cmd == FUTEX_WAIT_BITSET,
        },
        FUTEX_WAKE | FUTEX_WAKE_BITSET => Command::Wake {
            nr: val as i32,
            bitset: bitset_of(cmd, FUTEX_WAKE_BITSET, val3)?,
            robust_unlock,
        },
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let (nr_wake, nr_requeue) = (val as i32, val2 as i32);
            if nr_wake < 0 || nr_requeue < 0 {
                return Err(Refusal::NegativeCount);
            }
            Command::Requeue {
                nr_wake,
                nr_requeue,
                cmp: (cmd == FUTEX_CMP_REQUEUE).then_some(val3),
            }
        }
        FUTEX_WAKE_OP => Command::WakeOp {
            nr_wake: val as i32,
            nr_wake2: val2 as i32,
            op: WakeOp::decode(val3)?,
        },
        FUTEX_LOCK_PI
        | FUTEX_LOCK_PI2
        | FUTEX_UNLOCK_PI
        | FUTEX_TRYLOCK_PI
        | FUTEX_WAIT_REQUEUE_PI
        | FUTEX_CMP_REQUEUE_PI => return Err(Refusal::PriorityInheritance),
        _ => return Err(Refusal::UnknownCommand),
    };
    Ok(Call {
        command,
        private: op & FUTEX_PRIVATE_FLAG != 0,
        realtime,
    })
}

/// How `FUTEX_WAKE_OP` updates its second word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// `FUTEX_OP_SET`: `new = arg`.
    Set,
    /// `FUTEX_OP_ADD`: `new = old + arg` (wrapping).
    Add,
    /// `FUTEX_OP_OR`: `new = old | arg`.
    Or,
    /// `FUTEX_OP_ANDN`: `new = old & !arg`.
    AndNot,
    /// `FUTEX_OP_XOR`: `new = old ^ arg`.
    Xor,
}

/// How `FUTEX_WAKE_OP` compares the old value of its second word with its argument (as
/// signed 32-bit integers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// `FUTEX_OP_CMP_EQ`.
    Eq,
    /// `FUTEX_OP_CMP_NE`.
    Ne,
    /// `FUTEX_OP_CMP_LT`.
    Lt,
    /// `FUTEX_OP_CMP_LE`.
    Le,
    /// `FUTEX_OP_CMP_GT`.
    Gt,
    /// `FUTEX_OP_CMP_GE`.
    Ge,
}

/// `FUTEX_WAKE_OP`'s encoded operation (`val3`): `op` in bits 28-30 with the "shift"
/// flag in bit 31, `cmp` in 24-27, `oparg` in 12-23, `cmparg` in 0-11 (both signed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WakeOp {
    /// The update.
    pub update: Update,
    /// Its argument (already shifted for `FUTEX_OP_OPARG_SHIFT`).
    pub arg: u32,
    /// The comparison.
    pub comparison: Comparison,
    /// What the old value is compared with.
    pub cmp_arg: i32,
}

/// Sign-extends the low `bits` bits of `v`.
fn sign_extend(v: u32, bits: u32) -> i32 {
    let shift = 32 - bits;
    ((v << shift) as i32) >> shift
}

impl WakeOp {
    /// `FUTEX_OP_OPARG_SHIFT` (in the 4-bit op field): the argument is `1 << oparg`.
    pub const OPARG_SHIFT: u32 = 8;

    /// Decodes `val3`. An out-of-range shift is taken modulo 32, as the kernel does.
    pub fn decode(encoded: u32) -> Result<Self, Refusal> {
        let op = (encoded >> 28) & 0xf;
        let cmp = (encoded >> 24) & 0xf;
        let oparg = sign_extend((encoded >> 12) & 0xfff, 12);
        let cmp_arg = sign_extend(encoded & 0xfff, 12);
        let update = match op & 7 {
            0 => Update::Set,
            1 => Update::Add,
            2 => Update::Or,
            3 => Update::AndNot,
            4 => Update::Xor,
            _ => return Err(Refusal::UnknownWakeOp),
        };
        let comparison = match cmp {
            0 => Comparison::Eq,
            1 => Comparison::Ne,
            2 => Comparison::Lt,
            3 => Comparison::Le,
            4 => Comparison::Gt,
            5 => Comparison::Ge,
            _ => return Err(Refusal::UnknownWakeOp),
        };
        let arg = if op & Self::OPARG_SHIFT != 0 {
            1u32 << (oparg & 31)
        } else {
            oparg as u32
        };
        Ok(Self {
            update,
            arg,
            comparison,
            cmp_arg,
        })
    }

    /// The new value of the word that held `old`.
    pub fn apply(&self, old: u32) -> u32 {
        match self.update {
            Update::Set => self.arg,
            Update::Add => old.wrapping_add(self.arg),
            Update::Or => old | self.arg,
            Update::AndNot => old & !self.arg,
            Update::Xor => old ^ self.arg,
        }
    }

    /// Whether the second wake happens, given the word's `old` value.
    pub fn holds(&self, old: u32) -> bool {
        let old = old as i32;
        match self.comparison {
            Comparison::Eq => old == self.cmp_arg,
            Comparison::Ne => old != self.cmp_arg,
            Comparison::Lt => old < self.cmp_arg,
            Comparison::Le => old <= self.cmp_arg,
            Comparison::Gt => old > self.cmp_arg,
            Comparison::Ge => old >= self.cmp_arg,
        }
    }
}

/// Which futex: the address space it lives in and its address there. For a private
/// futex the space is the distributed process; for a shared one, the shared object
/// (an SSI region) and the address its offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The address space (or shared object).
    pub space: u64,
    /// The word's address (or offset).
    pub addr: u64,
}

/// One waiting thread: its node and a token that node chose, unique among its waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Waiter {
    /// The node it sleeps on.
    pub node: u16,
    /// Names the wait on that node.
    pub token: u64,
}

/// Why the master did not carry out a wait or a requeue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueError {
    /// The word no longer holds the expected value (`EAGAIN`).
    ValueChanged,
    /// The bitset is 0 (`EINVAL`).
    EmptyBitset,
    /// A negative count of waiters to wake or requeue (`EINVAL`).
    NegativeCount,
    /// This waiter is already queued (a protocol error of its node: `EINVAL`).
    AlreadyWaiting,
    /// No room for another waiter (`ENOMEM`).
    Full,
}

impl QueueError {
    /// The errno the calling thread gets (positive).
    pub fn errno(self) -> i32 {
        match self {
            QueueError::ValueChanged => EAGAIN,
            QueueError::EmptyBitset | QueueError::NegativeCount | QueueError::AlreadyWaiting => {
                EINVAL
            }
            QueueError::Full => ENOMEM,
        }
    }
}

/// The answer to a [`FutexTable::cancel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancelled {
    /// It was still waiting and is not any more: it returns its timeout or signal.
    Removed,
    /// It is not waiting (a wake took it first, or it never was): it returns 0.
    NotWaiting,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    key: Key,
    waiter: Waiter,
    bitset: u32,
    /// Queue order: lower first.
    seq: u64,
}

/// Storage of a [`FutexTable`]: one opaque slot per waiter it can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WaiterSlot(Option<Entry>);

/// The wait queues of the futexes a master node keeps, over caller-provided storage: at
/// most `slots.len()` waiters at a time.
pub struct FutexTable<S> {
    slots: S,
    next_seq: u64,
}

/// The number a wake's `nr` stands for: at least one (the kernel's `futex_wake` and
/// `futex_wake_op` wake one waiter when asked for 0 or fewer).
fn at_least_one(nr: i32) -> usize {
    nr.max(1) as usize
}

impl<S: core::ops::DerefMut<Target = [WaiterSlot]>> FutexTable<S> {
    /// An empty table.
    pub fn new(mut slots: S) -> Self {
        slots.iter_mut().for_each(|s| *s = WaiterSlot(None));
        Self { slots, next_seq: 0 }
    }

    /// How many waiters are queued.
    pub fn waiting(&self) -> usize {
        self.slots.iter().filter(|s| s.0.is_some()).count()
    }

    /// How many waiters `key` has.
    pub fn waiters_of(&self, key: Key) -> usize {
        self.slots
            .iter()
            .filter(|s| s.0.is_some_and(|e| e.key == key))
            .count()
    }

    /// The futex `waiter` waits on, if it does.
    pub fn waits_on(&self, waiter: Waiter) -> Option<Key> {
        self.slots
            .iter()
            .find_map(|s| s.0.filter(|e| e.waiter == waiter).map(|e| e.key))
    }

    fn seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    /// Queues `waiter` on `key` for a wake matching `bitset` (its thread checks the word
    /// next: see the file's header).
    pub fn wait(&mut self, key: Key, waiter: Waiter, bitset: u32) -> Result<(), QueueError> {
        if bitset == 0 {
            return Err(QueueError::EmptyBitset);
        }
        if self.waits_on(waiter).is_some() {
            return Err(QueueError::AlreadyWaiting);
        }
        let seq = self.seq();
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.0.is_none())
            .ok_or(QueueError::Full)?;
        *slot = WaiterSlot(Some(Entry {
            key,
            waiter,
            bitset,
            seq,
        }));
        Ok(())
    }

    /// The slot of the first queued waiter of `key` whose bitset meets `bitset`.
    fn first(&self, key: Key, bitset: u32) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.0.map(|e| (i, e)))
            .filter(|(_, e)| e.key == key && e.bitset & bitset != 0)
            .min_by_key(|(_, e)| e.seq)
            .map(|(i, _)| i)
    }

    /// Dequeues at most `nr` waiters of `key` matching `bitset`, first queued first, and
    /// hands each to `woken`. Returns how many.
    fn take(&mut self, key: Key, nr: usize, bitset: u32, woken: &mut impl FnMut(Waiter)) -> usize {
        let mut n = 0;
        while n < nr {
            let Some(i) = self.first(key, bitset) else {
                break;
            };
            if let Some(e) = self.slots[i].0.take() {
                woken(e.waiter);
                n += 1;
            }
        }
        n
    }

    /// `FUTEX_WAKE`: wakes at most `nr` (at least one) waiters of `key` whose bitset
    /// meets `bitset`, handing each to `woken`. Returns how many.
    pub fn wake(&mut self, key: Key, nr: i32, bitset: u32, mut woken: impl FnMut(Waiter)) -> usize {
        if bitset == 0 {
            return 0;
        }
        self.take(key, at_least_one(nr), bitset, &mut woken)
    }

    /// `FUTEX_REQUEUE` (`cmp_matches` `None`) and `FUTEX_CMP_REQUEUE` (the comparison of
    /// the word with the expected value, read under the table's lock): wakes at most
    /// `nr_wake` waiters of `from` and moves at most `nr_requeue` of the rest to the end
    /// of `to`'s queue, in their order. Returns woken plus moved, as the kernel does.
    pub fn requeue(
        &mut self,
        from: Key,
        to: Key,
        nr_wake: i32,
        nr_requeue: i32,
        cmp_matches: Option<bool>,
        mut woken: impl FnMut(Waiter),
    ) -> Result<usize, QueueError> {
        if nr_wake < 0 || nr_requeue < 0 {
            return Err(QueueError::NegativeCount);
        }
        if cmp_matches == Some(false) {
            return Err(QueueError::ValueChanged);
        }
        let n = self.take(from, nr_wake as usize, FUTEX_BITSET_MATCH_ANY, &mut woken);
        let waiting = self.waiters_of(from);
        let moved = waiting.min(nr_requeue as usize);
        if from != to {
            // Each move takes the first waiter still on `from` to the end of `to`.
            for _ in 0..moved {
                let seq = self.seq();
                if let Some(e) = self
                    .first(from, FUTEX_BITSET_MATCH_ANY)
                    .and_then(|i| self.slots[i].0.as_mut())
                {
                    e.key = to;
                    e.seq = seq;
                }
            }
        }
        // Onto the same futex, each waiter counts once and keeps its place (the kernel
        // relabels it in place).
        Ok(n + moved)
    }

    /// `FUTEX_WAKE_OP`, once the master has updated the second word: wakes at most
    /// `nr_wake` (at least one) waiters of `key`, then, when `op_holds`, at most
    /// `nr_wake2` (at least one) of `key2`. Returns how many in all.
    pub fn wake_op(
        &mut self,
        key: Key,
        key2: Key,
        nr_wake: i32,
        nr_wake2: i32,
        op_holds: bool,
        mut woken: impl FnMut(Waiter),
    ) -> usize {
        let mut n = self.take(
            key,
            at_least_one(nr_wake),
            FUTEX_BITSET_MATCH_ANY,
            &mut woken,
        );
        if op_holds {
            n += self.take(
                key2,
                at_least_one(nr_wake2),
                FUTEX_BITSET_MATCH_ANY,
                &mut woken,
            );
        }
        n
    }

    /// A waiter gives up (timeout, signal, its thread is killed).
    pub fn cancel(&mut self, waiter: Waiter) -> Cancelled {
        // A waiter is queued at most once (`wait` refuses a second).
        match self.drop_where(|e| e.waiter == waiter, |_| {}) {
            0 => Cancelled::NotWaiting,
            _ => Cancelled::Removed,
        }
    }

    /// Drops every waiter that matches `lost`, handing each to `dropped`.
    fn drop_where(
        &mut self,
        lost: impl Fn(&Entry) -> bool,
        mut dropped: impl FnMut(Waiter),
    ) -> usize {
        let mut n = 0;
        for s in self.slots.iter_mut() {
            if let Some(e) = s.0.filter(|e| lost(e)) {
                s.0 = None;
                dropped(e.waiter);
                n += 1;
            }
        }
        n
    }

    /// Node `node` went down: its waiters are gone. Returns how many there were.
    pub fn node_lost(&mut self, node: u16) -> usize {
        self.drop_where(|e| e.waiter.node == node, |_| {})
    }

    /// The process (or shared object) `space` ended: drops its waiters, handing each to
    /// `dropped` (their threads are being killed; they are told so that none sleeps on).
    pub fn space_ended(&mut self, space: u64, dropped: impl FnMut(Waiter)) -> usize {
        self.drop_where(|e| e.key.space == space, dropped)
    }
}

/// What happens to a remote wait, as its thread sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitEvent {
    /// The master's answer to the wait: it is queued.
    Queued,
    /// The master's answer to the wait: refused with this errno.
    Refused(i32),
    /// The thread read the word after the wait was queued: it does or does not hold the
    /// expected value.
    Value {
        /// It still holds the expected value.
        matches: bool,
    },
    /// The master's `Woken` message (it may overtake `Queued`).
    Woken,
    /// The timeout expired or a signal (or kill) is pending.
    GiveUp,
    /// The master's answer to the cancel: the wait was still queued and is not any more.
    Removed,
    /// The master's answer to the cancel: not waiting (its `Woken` is on the way).
    NotWaiting,
}

/// What the waiting thread does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStep {
    /// Sleep until the next event.
    Sleep,
    /// Read the futex word now and report it (`WaitEvent::Value`).
    CheckValue,
    /// Ask the master to cancel the wait, then sleep.
    SendCancel,
    /// The wait is over: return from `futex()`.
    Return(WaitResult),
}

/// How a remote wait ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitResult {
    /// Woken: `futex()` returns 0.
    Woken,
    /// Refused (by the master, or `EAGAIN` for a changed word): `futex()` returns this
    /// errno.
    Refused(i32),
    /// Gave up (the caller knows whether by timeout, `ETIMEDOUT`, or by signal).
    GaveUp,
}

/// The waiting side of a remote `FUTEX_WAIT`: turns the events of one wait, in whatever
/// order they arrive, into what the thread does. Starts when the wait is sent; ends
/// only when nothing of it is still on the way (so no answer can reach a later wait).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemoteWait {
    queued: bool,
    check_asked: bool,
    checked: bool,
    changed: bool,
    woken: bool,
    give_up: bool,
    cancel_sent: bool,
    cancel_answered: bool,
}

impl RemoteWait {
    /// A wait just sent to the master.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the master has been asked to cancel it.
    pub fn cancelling(&self) -> bool {
        self.cancel_sent
    }

    /// The next step after `event`.
    pub fn on(&mut self, event: WaitEvent) -> WaitStep {
        match event {
            WaitEvent::Refused(errno) => return WaitStep::Return(WaitResult::Refused(errno)),
            WaitEvent::Removed => {
                return WaitStep::Return(if self.changed {
                    WaitResult::Refused(EAGAIN)
                } else {
                    WaitResult::GaveUp
                })
            }
            WaitEvent::Queued => self.queued = true,
            WaitEvent::Value { matches } => {
                self.checked = true;
                self.changed = !matches;
            }
            WaitEvent::Woken => self.woken = true,
            WaitEvent::GiveUp => self.give_up = true,
            WaitEvent::NotWaiting => self.cancel_answered = true,
        }
        if self.woken && self.queued && self.cancel_sent == self.cancel_answered {
            return WaitStep::Return(WaitResult::Woken);
        }
        if self.queued && !self.woken && !self.check_asked {
            self.check_asked = true;
            return WaitStep::CheckValue;
        }
        if self.checked && (self.changed || self.give_up) && !self.woken && !self.cancel_sent {
            self.cancel_sent = true;
            return WaitStep::SendCancel;
        }
        WaitStep::Sleep
    }
}

/// What a thread's node and a futex's master say to each other (inside the migration
/// engines' service messages). The waiter's node is the sender, which the transport
/// names; the master checks it runs a thread of the process before it believes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FutexMsg {
    /// Thread's node → master: queue `token` on `key` (answer: [`FutexMsg::Answer`],
    /// 0 when queued, else the errno).
    Wait {
        /// The futex.
        key: Key,
        /// Names the wait on the sender.
        token: u64,
        /// Which wakes end it.
        bitset: u32,
    },
    /// Master → thread's node: the wait `token` was dequeued by a wake (or because its
    /// process ended: the thread is being killed).
    Woken {
        /// The wait.
        token: u64,
    },
    /// Thread's node → master: cancel the wait `token` (answer: 1 removed, 0 not
    /// waiting).
    Cancel {
        /// The futex it waits on.
        key: Key,
        /// The wait.
        token: u64,
    },
    /// → master: `FUTEX_WAKE` (answer: how many were woken).
    Wake {
        /// The futex.
        key: Key,
        /// At most this many (at least one).
        nr: i32,
        /// Which waiters.
        bitset: u32,
    },
    /// → master: `FUTEX_REQUEUE`/`FUTEX_CMP_REQUEUE` within one process, the comparison
    /// made by the sender (answer: woken plus moved, or the errno).
    Requeue {
        /// From this futex.
        from: Key,
        /// To this address in the same space.
        to_addr: u64,
        /// How many to wake.
        nr_wake: i32,
        /// How many to move.
        nr_requeue: i32,
        /// `FUTEX_CMP_REQUEUE`'s comparison, `None` for `FUTEX_REQUEUE`.
        cmp_matches: Option<bool>,
    },
    /// → master: the wakes of a `FUTEX_WAKE_OP` whose update the sender made (answer:
    /// how many were woken).
    WakeOp {
        /// The first futex.
        key: Key,
        /// The second futex's address in the same space.
        addr2: u64,
        /// How many waiters of the first.
        nr_wake: i32,
        /// How many waiters of the second, when `holds`.
        nr_wake2: i32,
        /// The operation's comparison held.
        holds: bool,
    },
    /// The answer to a request: a count, or a negative errno.
    Answer {
        /// The value.
        value: i32,
    },
}

/// First byte of every futex message.
pub const FUTEX_MSG_MAGIC: u8 = 0xF7;

impl FutexMsg {
    fn kind(&self) -> u8 {
        match self {
            FutexMsg::Wait { .. } => 1,
            FutexMsg::Woken { .. } => 2,
            FutexMsg::Cancel { .. } => 3,
            FutexMsg::Wake { .. } => 4,
            FutexMsg::Requeue { .. } => 5,
            FutexMsg::WakeOp { .. } => 6,
            FutexMsg::Answer { .. } => 7,
        }
    }

    /// Encodes into `buf`; returns the length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let mut o = Writer::new(buf);
        o.u8(FUTEX_MSG_MAGIC)?;
        o.u8(self.kind())?;
        let key = |o: &mut Writer<'_>, k: Key| -> Result<(), WireError> {
            o.u64(k.space)?;
            o.u64(k.addr)
        };
        match *self {
            FutexMsg::Wait {
                key: k,
                token,
                bitset,
            } => {
                key(&mut o, k)?;
                o.u64(token)?;
                o.u32(bitset)?;
            }
            FutexMsg::Woken { token } => o.u64(token)?,
            FutexMsg::Cancel { key: k, token } => {
                key(&mut o, k)?;
                o.u64(token)?;
            }
            FutexMsg::Wake { key: k, nr, bitset } => {
                key(&mut o, k)?;
                o.u32(nr as u32)?;
                o.u32(bitset)?;
            }
            FutexMsg::Requeue {
                from,
                to_addr,
                nr_wake,
                nr_requeue,
                cmp_matches,
            } => {
                key(&mut o, from)?;
                o.u64(to_addr)?;
                o.u32(nr_wake as u32)?;
                o.u32(nr_requeue as u32)?;
                o.u8(match cmp_matches {
                    None => 0,
                    Some(false) => 1,
                    Some(true) => 2,
                })?;
            }
            FutexMsg::WakeOp {
                key: k,
                addr2,
                nr_wake,
                nr_wake2,
                holds,
            } => {
                key(&mut o, k)?;
                o.u64(addr2)?;
                o.u32(nr_wake as u32)?;
                o.u32(nr_wake2 as u32)?;
                o.u8(u8::from(holds))?;
            }
            FutexMsg::Answer { value } => o.u32(value as u32)?,
        }
        Ok(o.len())
    }

    /// Decodes a whole message: unknown kinds, bad flag bytes, short or trailing bytes
    /// are errors; never panics.
    pub fn decode(buf: &[u8]) -> Result<Self, WireError> {
        let mut i = Reader::new(buf);
        if i.array::<1>()?[0] != FUTEX_MSG_MAGIC {
            return Err(WireError::BadMagic);
        }
        let kind = i.array::<1>()?[0];
        let key = |i: &mut Reader<'_>| -> Result<Key, WireError> {
            Ok(Key {
                space: i.u64()?,
                addr: i.u64()?,
            })
        };
        let flag = |i: &mut Reader<'_>, max: u8| -> Result<u8, WireError> {
            let v = i.array::<1>()?[0];
            if v > max {
                return Err(WireError::BadFlags);
            }
            Ok(v)
        };
        let msg = match kind {
            1 => FutexMsg::Wait {
                key: key(&mut i)?,
                token: i.u64()?,
                bitset: i.u32()?,
            },
            2 => FutexMsg::Woken { token: i.u64()? },
            3 => FutexMsg::Cancel {
                key: key(&mut i)?,
                token: i.u64()?,
            },
            4 => FutexMsg::Wake {
                key: key(&mut i)?,
                nr: i.u32()? as i32,
                bitset: i.u32()?,
            },
            5 => FutexMsg::Requeue {
                from: key(&mut i)?,
                to_addr: i.u64()?,
                nr_wake: i.u32()? as i32,
                nr_requeue: i.u32()? as i32,
                cmp_matches: match flag(&mut i, 2)? {
                    0 => None,
                    v => Some(v == 2),
                },
            },
            6 => FutexMsg::WakeOp {
                key: key(&mut i)?,
                addr2: i.u64()?,
                nr_wake: i.u32()? as i32,
                nr_wake2: i.u32()? as i32,
                holds: flag(&mut i, 1)? == 1,
            },
            7 => FutexMsg::Answer {
                value: i.u32()? as i32,
            },
            _ => return Err(WireError::UnknownType),
        };
        i.finish()?;
        Ok(msg)
    }
}

/// The longest [`FutexMsg`].
pub const FUTEX_MSG_MAX: usize = 2 + 16 + 8 + 4 + 4 + 1;

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_futex))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    const ANY: u32 = FUTEX_BITSET_MATCH_ANY;
    const A: Key = Key {
        space: 7,
        addr: 0x1000,
    };
    const B: Key = Key {
        space: 7,
        addr: 0x1004,
    };

    fn w(node: u16, token: u64) -> Waiter {
        Waiter { node, token }
    }

    /// Up to 8 woken waiters, in the order they were handed over.
    struct Woken {
        list: [Option<Waiter>; 8],
        n: usize,
    }

    impl Woken {
        fn new() -> Self {
            Self {
                list: [None; 8],
                n: 0,
            }
        }
        fn push(&mut self, x: Waiter) {
            self.list[self.n] = Some(x);
            self.n += 1;
        }
        fn tokens(&self) -> [u64; 8] {
            let mut t = [0; 8];
            for (i, x) in self.list.iter().enumerate() {
                t[i] = x.map_or(0, |x| x.token);
            }
            t
        }
    }

    #[test]
    fn decode_reads_the_commands_glibc_uses() {
        let c = decode(FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 5, 0, 0).unwrap();
        assert_eq!(
            c.command,
            Command::Wait {
                val: 5,
                bitset: ANY,
                absolute: false
            }
        );
        assert!(c.private);
        let c = decode(FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, 1, 0, 0b100).unwrap();
        assert_eq!(
            c.command,
            Command::Wait {
                val: 1,
                bitset: 0b100,
                absolute: true
            }
        );
        assert!(c.realtime && !c.private);
        let c = decode(FUTEX_WAKE, u32::MAX >> 1, 0, 0).unwrap();
        assert_eq!(
            c.command,
            Command::Wake {
                nr: i32::MAX,
                bitset: ANY,
                robust_unlock: None
            }
        );
        let c = decode(
            FUTEX_WAKE_BITSET | FUTEX_ROBUST_UNLOCK | FUTEX_ROBUST_LIST32,
            1,
            0,
            2,
        );
        assert_eq!(
            c.unwrap().command,
            Command::Wake {
                nr: 1,
                bitset: 2,
                robust_unlock: Some(RobustUnlock { list32: true })
            }
        );
        let c = decode(
            FUTEX_CMP_REQUEUE | FUTEX_PRIVATE_FLAG,
            1,
            i32::MAX as u32,
            9,
        )
        .unwrap();
        assert_eq!(
            c.command,
            Command::Requeue {
                nr_wake: 1,
                nr_requeue: i32::MAX,
                cmp: Some(9)
            }
        );
        let c = decode(FUTEX_REQUEUE, 0, 3, 9).unwrap();
        assert_eq!(
            c.command,
            Command::Requeue {
                nr_wake: 0,
                nr_requeue: 3,
                cmp: None
            }
        );
    }

    #[test]
    fn decode_refuses_like_the_kernel_and_refuses_pi() {
        for pi in [
            FUTEX_LOCK_PI,
            FUTEX_LOCK_PI2,
            FUTEX_UNLOCK_PI,
            FUTEX_TRYLOCK_PI,
            FUTEX_WAIT_REQUEUE_PI,
            FUTEX_CMP_REQUEUE_PI,
        ] {
            let r = decode(pi | FUTEX_PRIVATE_FLAG, 0, 0, 0);
            assert_eq!(r, Err(Refusal::PriorityInheritance));
            assert_eq!(r.unwrap_err().errno(), ENOSYS);
        }
        assert_eq!(decode(FUTEX_FD, 0, 0, 0), Err(Refusal::UnknownCommand));
        assert_eq!(decode(14, 0, 0, 0), Err(Refusal::UnknownCommand));
        assert_eq!(
            decode(FUTEX_WAIT | FUTEX_CLOCK_REALTIME, 0, 0, 0),
            Err(Refusal::FlagNotForCommand)
        );
        assert_eq!(
            decode(FUTEX_WAIT | FUTEX_ROBUST_UNLOCK, 0, 0, 0),
            Err(Refusal::FlagNotForCommand)
        );
        let r = decode(FUTEX_WAIT_BITSET, 0, 0, 0);
        assert_eq!(r, Err(Refusal::EmptyBitset));
        assert_eq!(r.unwrap_err().errno(), EINVAL);
        assert_eq!(
            decode(FUTEX_WAKE_BITSET, 1, 0, 0),
            Err(Refusal::EmptyBitset)
        );
        assert_eq!(
            decode(FUTEX_CMP_REQUEUE, u32::MAX, 1, 0),
            Err(Refusal::NegativeCount)
        );
        assert_eq!(
            decode(FUTEX_REQUEUE, 1, u32::MAX, 0),
            Err(Refusal::NegativeCount)
        );
        assert_eq!(
            decode(FUTEX_WAKE_OP, 1, 1, 5 << 28),
            Err(Refusal::UnknownWakeOp)
        );
        assert_eq!(
            decode(FUTEX_WAKE_OP, 1, 1, 6 << 24),
            Err(Refusal::UnknownWakeOp)
        );
    }

    #[test]
    fn wake_op_encodings() {
        // glibc's FUTEX_OP_CLEAR_WAKE_IF_GT_ONE: set 0, wake the second if old > 1.
        let op = WakeOp::decode((4 << 24) | 1).unwrap();
        assert_eq!(
            (op.update, op.arg, op.comparison),
            (Update::Set, 0, Comparison::Gt)
        );
        assert_eq!(op.apply(2), 0);
        assert!(op.holds(2));
        assert!(!op.holds(1));
        // oparg -1 (sign-extended 12 bits): add -1; compare with -1 (signed).
        let op = WakeOp::decode((1 << 28) | (0xfff << 12) | 0xfff).unwrap();
        assert_eq!(op.apply(5), 4);
        assert_eq!(op.apply(0), u32::MAX);
        assert!(op.holds(u32::MAX));
        assert!(!op.holds(0));
        // OR with the shift flag: 1 << oparg, an out-of-range shift taken modulo 32.
        let op = WakeOp::decode(((8 | 2) << 28) | (33 << 12) | (2 << 24)).unwrap();
        assert_eq!(op.arg, 2);
        assert_eq!(op.apply(1), 3);
        assert_eq!(op.comparison, Comparison::Lt);
        assert!(op.holds(u32::MAX)); // -1 < 0
        let op = WakeOp::decode((3 << 28) | (6 << 12) | (5 << 24) | 7).unwrap();
        assert_eq!(op.apply(0xf), 0x9);
        assert!(op.holds(7) && !op.holds(6));
        let op = WakeOp::decode((4 << 28) | (0xf << 12) | (3 << 24)).unwrap();
        assert_eq!(op.apply(0xff), 0xf0);
        assert!(op.holds(0) && !op.holds(1));
    }

    #[test]
    fn waiters_wake_in_queue_order_by_bitset() {
        let mut store = [WaiterSlot::default(); 8];
        let mut t = FutexTable::new(&mut store[..]);
        t.wait(A, w(1, 1), 0b01).unwrap();
        t.wait(A, w(2, 2), 0b10).unwrap();
        t.wait(A, w(0, 3), ANY).unwrap();
        t.wait(B, w(1, 4), ANY).unwrap();
        assert_eq!((t.waiting(), t.waiters_of(A), t.waiters_of(B)), (4, 3, 1));
        let mut got = Woken::new();
        assert_eq!(t.wake(A, 5, 0b10, |x| got.push(x)), 2);
        assert_eq!(got.tokens()[..3], [2, 3, 0]);
        let mut got = Woken::new();
        // Asked for 0: one is woken, as by the kernel.
        assert_eq!(t.wake(A, 0, ANY, |x| got.push(x)), 1);
        assert_eq!(got.list[0], Some(w(1, 1)));
        assert_eq!(t.wake(A, 1, ANY, |_| {}), 0);
        assert_eq!(t.waits_on(w(1, 4)), Some(B));
        assert_eq!(t.waiting(), 1);
    }

    #[test]
    fn a_bad_wait_is_not_queued() {
        let mut store = [WaiterSlot::default(); 2];
        let mut t = FutexTable::new(&mut store[..]);
        let r = t.wait(A, w(1, 1), 0);
        assert_eq!(r, Err(QueueError::EmptyBitset));
        assert_eq!(r.unwrap_err().errno(), EINVAL);
        assert_eq!(t.waiting(), 0);
        t.wait(A, w(1, 1), ANY).unwrap();
        assert_eq!(t.wait(B, w(1, 1), ANY), Err(QueueError::AlreadyWaiting));
        t.wait(A, w(1, 2), ANY).unwrap();
        let r = t.wait(A, w(1, 3), ANY);
        assert_eq!(r, Err(QueueError::Full));
        assert_eq!(r.unwrap_err().errno(), ENOMEM);
        assert_eq!(t.waiting(), 2);
    }

    #[test]
    fn requeue_wakes_then_moves_to_the_end_of_the_other_queue() {
        let mut store = [WaiterSlot::default(); 8];
        let mut t = FutexTable::new(&mut store[..]);
        t.wait(B, w(0, 10), ANY).unwrap();
        for tok in 1..=4 {
            t.wait(A, w(1, tok), 0b1).unwrap();
        }
        assert_eq!(
            t.requeue(A, B, 1, 2, Some(false), |_| {}),
            Err(QueueError::ValueChanged)
        );
        assert_eq!(
            t.requeue(A, B, -1, 2, None, |_| {}),
            Err(QueueError::NegativeCount)
        );
        let mut got = Woken::new();
        assert_eq!(t.requeue(A, B, 1, 2, Some(true), |x| got.push(x)), Ok(3));
        assert_eq!(got.tokens()[..2], [1, 0]);
        assert_eq!((t.waiters_of(A), t.waiters_of(B)), (1, 3));
        // B's queue: 10 (waited there), then 2 and 3 in their order.
        let mut got = Woken::new();
        assert_eq!(t.wake(B, 3, ANY, |x| got.push(x)), 3);
        assert_eq!(got.tokens()[..3], [10, 2, 3]);
        // nr_wake 0 wakes none (unlike FUTEX_WAKE).
        assert_eq!(t.requeue(A, B, 0, 0, None, |_| {}), Ok(0));
        assert_eq!(t.waits_on(w(1, 4)), Some(A));
    }

    #[test]
    fn requeue_onto_the_same_futex_counts_each_waiter_once_in_place() {
        let mut store = [WaiterSlot::default(); 4];
        let mut t = FutexTable::new(&mut store[..]);
        for tok in 1..=3 {
            t.wait(A, w(1, tok), ANY).unwrap();
        }
        assert_eq!(t.requeue(A, A, 0, 2, None, |_| {}), Ok(2));
        assert_eq!(t.requeue(A, A, 0, 9, None, |_| {}), Ok(3));
        let mut got = Woken::new();
        assert_eq!(t.wake(A, 3, ANY, |x| got.push(x)), 3);
        assert_eq!(got.tokens()[..3], [1, 2, 3]);
    }

    #[test]
    fn wake_op_wakes_the_second_queue_only_when_the_comparison_holds() {
        let mut store = [WaiterSlot::default(); 8];
        let mut t = FutexTable::new(&mut store[..]);
        for tok in 1..=2 {
            t.wait(A, w(1, tok), ANY).unwrap();
            t.wait(B, w(2, 10 + tok), ANY).unwrap();
        }
        assert_eq!(t.wake_op(A, B, 1, 1, false, |_| {}), 1);
        assert_eq!((t.waiters_of(A), t.waiters_of(B)), (1, 2));
        let mut got = Woken::new();
        assert_eq!(t.wake_op(A, B, 1, 5, true, |x| got.push(x)), 3);
        assert_eq!(got.tokens()[..3], [2, 11, 12]);
        assert_eq!(t.waiting(), 0);
    }

    #[test]
    fn cancel_decides_the_race_with_a_wake() {
        let mut store = [WaiterSlot::default(); 4];
        let mut t = FutexTable::new(&mut store[..]);
        t.wait(A, w(1, 1), ANY).unwrap();
        t.wait(A, w(1, 2), ANY).unwrap();
        assert_eq!(t.cancel(w(1, 1)), Cancelled::Removed);
        assert_eq!(t.wake(A, 1, ANY, |_| {}), 1);
        // The wake took waiter 2 before its cancel arrived: it returns 0.
        assert_eq!(t.cancel(w(1, 2)), Cancelled::NotWaiting);
        assert_eq!(t.waiting(), 0);
    }

    #[test]
    fn a_remote_wait_ends_once_whatever_the_order_of_its_messages() {
        const SAME: WaitEvent = WaitEvent::Value { matches: true };
        const CHANGED: WaitEvent = WaitEvent::Value { matches: false };
        // Queued, checked, then woken.
        let mut r = RemoteWait::new();
        assert_eq!(r.on(WaitEvent::Queued), WaitStep::CheckValue);
        assert_eq!(r.on(SAME), WaitStep::Sleep);
        assert_eq!(r.on(WaitEvent::Woken), WaitStep::Return(WaitResult::Woken));
        // Woken overtakes Queued: no check needed.
        let mut r = RemoteWait::new();
        assert_eq!(r.on(WaitEvent::Woken), WaitStep::Sleep);
        assert_eq!(r.on(WaitEvent::Queued), WaitStep::Return(WaitResult::Woken));
        // Refused by the master.
        let mut r = RemoteWait::new();
        assert_eq!(
            r.on(WaitEvent::Refused(EINVAL)),
            WaitStep::Return(WaitResult::Refused(EINVAL))
        );
        // The word changed: cancel, EAGAIN.
        let mut r = RemoteWait::new();
        r.on(WaitEvent::Queued);
        assert_eq!(r.on(CHANGED), WaitStep::SendCancel);
        assert!(r.cancelling());
        assert_eq!(
            r.on(WaitEvent::Removed),
            WaitStep::Return(WaitResult::Refused(EAGAIN))
        );
        // ... unless a wake took it first: 0 once the cancel's answer is in.
        let mut r = RemoteWait::new();
        r.on(WaitEvent::Queued);
        r.on(CHANGED);
        assert_eq!(r.on(WaitEvent::Woken), WaitStep::Sleep);
        assert_eq!(
            r.on(WaitEvent::NotWaiting),
            WaitStep::Return(WaitResult::Woken)
        );
        // A timeout before the wait is known queued waits for that and the check.
        let mut r = RemoteWait::new();
        assert_eq!(r.on(WaitEvent::GiveUp), WaitStep::Sleep);
        assert!(!r.cancelling());
        assert_eq!(r.on(WaitEvent::Queued), WaitStep::CheckValue);
        assert_eq!(r.on(SAME), WaitStep::SendCancel);
        assert_eq!(
            r.on(WaitEvent::Removed),
            WaitStep::Return(WaitResult::GaveUp)
        );
        // The cancel lost the race with a wake: 0, after both answers.
        let mut r = RemoteWait::new();
        r.on(WaitEvent::Queued);
        r.on(SAME);
        assert_eq!(r.on(WaitEvent::GiveUp), WaitStep::SendCancel);
        assert_eq!(r.on(WaitEvent::GiveUp), WaitStep::Sleep);
        assert_eq!(r.on(WaitEvent::NotWaiting), WaitStep::Sleep);
        assert_eq!(r.on(WaitEvent::Woken), WaitStep::Return(WaitResult::Woken));
    }

    #[test]
    fn futex_messages_round_trip_and_refuse_garbage() {
        let msgs = [
            FutexMsg::Wait {
                key: A,
                token: 9,
                bitset: 0b10,
            },
            FutexMsg::Woken { token: u64::MAX },
            FutexMsg::Cancel { key: B, token: 1 },
            FutexMsg::Wake {
                key: A,
                nr: i32::MAX,
                bitset: ANY,
            },
            FutexMsg::Requeue {
                from: A,
                to_addr: 0x2000,
                nr_wake: 1,
                nr_requeue: i32::MAX,
                cmp_matches: Some(false),
            },
            FutexMsg::WakeOp {
                key: A,
                addr2: 0x1004,
                nr_wake: 1,
                nr_wake2: 1,
                holds: true,
            },
            FutexMsg::Answer { value: -EAGAIN },
        ];
        let mut buf = [0u8; FUTEX_MSG_MAX];
        for m in msgs {
            let n = m.encode(&mut buf).unwrap();
            assert_eq!(FutexMsg::decode(&buf[..n]), Ok(m));
            // Every truncation and one trailing byte are refused.
            for cut in 0..n {
                assert!(FutexMsg::decode(&buf[..cut]).is_err());
            }
            if n < buf.len() {
                assert_eq!(FutexMsg::decode(&buf[..n + 1]), Err(WireError::BadLength));
            }
        }
        let n = msgs[4].encode(&mut buf).unwrap();
        buf[n - 1] = 3;
        assert_eq!(FutexMsg::decode(&buf[..n]), Err(WireError::BadFlags));
        assert_eq!(
            FutexMsg::decode(&[FUTEX_MSG_MAGIC, 8]),
            Err(WireError::UnknownType)
        );
        assert_eq!(FutexMsg::decode(&[0, 1]), Err(WireError::BadMagic));
        assert!(msgs[4].encode(&mut buf[..10]).is_err());
    }

    #[test]
    fn a_lost_node_or_ended_process_takes_its_waiters() {
        let mut store = [WaiterSlot::default(); 8];
        let mut t = FutexTable::new(&mut store[..]);
        let other = Key {
            space: 8,
            addr: 0x1000,
        };
        t.wait(A, w(1, 1), ANY).unwrap();
        t.wait(A, w(2, 2), ANY).unwrap();
        t.wait(B, w(1, 3), ANY).unwrap();
        t.wait(other, w(2, 4), ANY).unwrap();
        assert_eq!(t.node_lost(1), 2);
        assert_eq!(t.waiting(), 2);
        let mut got = Woken::new();
        assert_eq!(t.space_ended(7, |x| got.push(x)), 1);
        assert_eq!(got.list[0], Some(w(2, 2)));
        assert_eq!(t.waits_on(w(2, 4)), Some(other));
        assert_eq!(t.waiting(), 1);
    }
}
