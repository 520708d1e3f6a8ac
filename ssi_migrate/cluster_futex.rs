// SPDX-License-Identifier: GPL-2.0

//! Futexes of distributed processes, cluster-wide: the master's wait queues at each
//! process's home, and the waiting side on every node that runs one of its threads.
//!
//! `distributed.c` sends each futex call of a distributed process here
//! ([`ssi_migrate_futex`]), including the kernel's own clear-tid wake of an exiting
//! thread (what `pthread_join` waits for). The protocol is `rust/src/futex.rs`: the
//! master (the process's home) keeps the queues in a [`FutexTable`] and never reads user
//! memory; a waiter is queued first and reads its word after, on its own node
//! ([`RemoteWait`] orders the answers, which may come in any order); a thread stores
//! before it asks for a wake. A caller at the home talks to the table directly; other
//! nodes send [`FutexMsg`]s inside the migration service. The master tells a woken
//! waiter on another node with a `Woken` message sent from a work item, as its handlers
//! run in the transports' receive context and must not wait for another node.
//!
//! Only a node that runs a thread of the process (or the home) may queue, wake or
//! cancel on its futexes; only the home may wake a waiter. `FUTEX_CMP_REQUEUE` compares
//! the word on the caller's node before asking the master (not atomically with the
//! requeue, which glibc's condition variables no longer use); `FUTEX_WAKE_OP` updates
//! the second word on the caller's node with compare-and-exchange, then asks the master
//! to wake. PI futexes and `FUTEX_ROBUST_UNLOCK` answer `ENOSYS`.

use core::ffi::c_long;

use kernel::{
    alloc::KVVec,
    new_condvar, new_mutex,
    prelude::*,
    sync::{Arc, CondVar, Mutex},
    time::{delay::fsleep, msecs_to_jiffies, Delta},
    uaccess::{UserPtr, UserSlice},
};

use crate::ffi;
use crate::link::{self, Wait};
use crate::shared::arith::ns_to_ms;
use crate::shared::errno::{EFAULT, EPROTO};
use crate::shared::futex::{
    self as f, Cancelled, Command, FutexMsg, FutexTable, Key, RemoteWait, WaitEvent, WaitResult,
    WaitStep, Waiter, WaiterSlot, WakeOp, FUTEX_MSG_MAGIC, FUTEX_MSG_MAX,
};
use crate::shared::futex2::{self as f2, AsFutex};
use crate::{engine, errno};

/// Most threads waiting at once on the futexes this node is master of.
const MAX_WAITERS: usize = 1024;
/// How long a request to the master may take.
const CALL_TIMEOUT_MS: u32 = 10_000;
/// How often a long wait looks at its word (see `wait_on`).
const RECHECK_MS: u64 = 5_000;
/// How long a waiter whose cancel lost the race with a wake waits for that wake's
/// message before it returns anyway (a spurious wake-up, which callers allow).
const WOKEN_GRACE_MS: u64 = 10_000;

/// The futex state of this node's engine.
#[pin_data]
pub(crate) struct Futexes {
    /// The queues of the futexes of the processes homed here.
    #[pin]
    table: Mutex<FutexTable<KVVec<WaiterSlot>>>,
    /// The waits of this node's threads.
    #[pin]
    waits: Mutex<KVec<Arc<LocalWait>>>,
}

impl Futexes {
    pub(crate) fn new() -> Result<impl PinInit<Self, Error>> {
        let slots = KVVec::from_elem(WaiterSlot::default(), MAX_WAITERS, GFP_KERNEL)?;
        Ok(try_pin_init!(Self {
            table <- new_mutex!(FutexTable::new(slots)),
            waits <- new_mutex!(KVec::new()),
        }))
    }
}

/// One thread's wait, as its node sees it.
#[pin_data]
struct LocalWait {
    token: u64,
    /// The master (the process's home): the only node that may wake it.
    home: u32,
    /// The master's `Woken` came.
    #[pin]
    woken: Mutex<bool>,
    #[pin]
    changed: CondVar,
}

fn futexes() -> &'static Futexes {
    &engine().futexes
}

/// A futex call of a distributed process (`id`, homed on `home`), from `distributed.c`
/// in the caller's context: `do_futex()`'s arguments, the timeout as an absolute time in
/// nanoseconds (`-1`: none). Returns what `futex()` returns.
#[no_mangle]
extern "C" fn ssi_migrate_futex(
    id: u64,
    home: u32,
    uaddr: usize,
    op: u32,
    val: u32,
    deadline: i64,
    uaddr2: usize,
    val2: u32,
    val3: u32,
) -> c_long {
    let call = AsFutex {
        uaddr: uaddr as u64,
        op,
        val,
        val2,
        uaddr2: uaddr2 as u64,
        val3,
    };
    futex(id, home, &call, deadline)
}

/// A timed futex wait of a distributed process that restarts (`futex_wait_restart()`,
/// redirected by `distributed.c`): its restart block's word, kernel flags, value,
/// absolute time and bitset, carried out as the cluster wait it amounts to
/// (`rust/src/futex2.rs`). Returns what `futex()` returns.
#[no_mangle]
extern "C" fn ssi_migrate_futex_restart(
    id: u64,
    home: u32,
    uaddr: usize,
    kflags: u32,
    val: u32,
    time_ns: i64,
    bitset: u32,
) -> c_long {
    let (call, deadline) = f2::restart_wait(uaddr as u64, kflags, val, time_ns, bitset);
    futex(id, home, &call, deadline)
}

/// A futex wake the kernel makes itself for a distributed process (`futex_wake()` with
/// the kernel's flags, redirected by `distributed.c`: the robust-list cleanup of an
/// exiting thread), carried out as a cluster wake. Returns how many it woke.
#[no_mangle]
extern "C" fn ssi_migrate_futex_kernel_wake(
    id: u64,
    home: u32,
    uaddr: usize,
    kflags: u32,
    nr_wake: i32,
    bitset: u32,
) -> c_long {
    match f2::kernel_wake(uaddr as u64, kflags, nr_wake, bitset) {
        Some(call) => futex(id, home, &call, -1),
        None => 0,
    }
}

/// A futex2 system call of a distributed process (`futex_wake`, `futex_wait`,
/// `futex_requeue` or `futex_waitv`, by `call`: `SSI_FUTEX2_*`), from `distributed.c`
/// in the caller's context with the system call's six arguments: carried out as the
/// `futex(2)` call it amounts to (`rust/src/futex2.rs`), with the kernel's checks in
/// its order. Returns what the system call returns.
#[no_mangle]
extern "C" fn ssi_migrate_futex2(id: u64, home: u32, call: u32, args: *const u64) -> c_long {
    // SAFETY: `distributed.c` passes an array of the system call's six arguments.
    let a = unsafe { core::slice::from_raw_parts(args, 6) };
    let refused = |r: f::Refusal| -c_long::from(r.errno());
    match f2::Futex2Call::from_raw(call) {
        Some(f2::Futex2Call::Wake) => match f2::wake(a[0], a[1], a[2] as i32, a[3] as u32) {
            Ok(Some(c)) => futex(id, home, &c, -1),
            Ok(None) => 0,
            Err(r) => refused(r),
        },
        Some(f2::Futex2Call::Wait) => {
            let (timeout, clockid) = (a[4], a[5] as i32);
            let c = match f2::wait(a[0], a[1], a[2], a[3] as u32, timeout != 0, clockid) {
                Ok(c) => c,
                Err(r) => return refused(r),
            };
            let deadline = if timeout == 0 {
                -1
            } else {
                let ts = match read_user::<[i64; 2]>(timeout) {
                    Ok(ts) => ts,
                    Err(e) => return c_long::from(e.to_errno()),
                };
                match f2::deadline_ns(ts[0], ts[1]) {
                    Ok(ns) => ns,
                    Err(r) => return refused(r),
                }
            };
            futex(id, home, &c, deadline)
        }
        Some(f2::Futex2Call::Requeue) => {
            let (waiters, nr_wake, nr_requeue) = (a[0], a[2] as i32, a[3] as i32);
            if let Err(r) = f2::requeue_args(a[1] as u32, waiters) {
                return refused(r);
            }
            // Each entry is checked as soon as it is read, as the kernel does.
            let mut entries = [f2::WaitvEntry::from_bytes(&[0; f2::WAITV_SIZE]); 2];
            for (i, e) in entries.iter_mut().enumerate() {
                let at = waiters + (i * f2::WAITV_SIZE) as u64;
                *e = match read_user::<[u8; f2::WAITV_SIZE]>(at) {
                    Ok(b) => f2::WaitvEntry::from_bytes(&b),
                    Err(err) => return c_long::from(err.to_errno()),
                };
                if let Err(r) = f2::entry(e) {
                    return refused(r);
                }
            }
            match f2::requeue(&entries[0], &entries[1], nr_wake, nr_requeue) {
                Ok(c) => futex(id, home, &c, -1),
                Err(r) => refused(r),
            }
        }
        Some(f2::Futex2Call::Waitv) => refused(f::Refusal::Waitv),
        None => -c_long::from(crate::shared::errno::ENOSYS),
    }
}

/// A plain value of type `T` from the caller's memory at `addr`.
fn read_user<T: kernel::transmute::FromBytes>(addr: u64) -> Result<T> {
    UserSlice::new(UserPtr::from_addr(addr as usize), core::mem::size_of::<T>())
        .reader()
        .read::<T>()
}

/// A `futex(2)` call of a distributed process, its timeout as an absolute time in
/// nanoseconds (`-1`: none).
fn futex(id: u64, home: u32, c: &AsFutex, deadline: i64) -> c_long {
    let (uaddr, uaddr2) = (c.uaddr as usize, c.uaddr2 as usize);
    let call = match f::decode(c.op, c.val, c.val2, c.val3) {
        Ok(c) => c,
        Err(refusal) => return -c_long::from(refusal.errno()),
    };
    let key = Key {
        space: id,
        addr: uaddr as u64,
    };
    let result = match call.command {
        Command::Wait { val, bitset, .. } => {
            let deadline = (deadline >= 0).then_some((deadline, call.realtime));
            return wait(home, key, uaddr, val, bitset, deadline);
        }
        Command::Wake {
            robust_unlock: Some(_),
            ..
        } => Err(Error::from_errno(-crate::shared::errno::ENOSYS)),
        Command::Wake { nr, bitset, .. } => ask(home, &FutexMsg::Wake { key, nr, bitset }),
        Command::Requeue {
            nr_wake,
            nr_requeue,
            cmp,
        } => {
            let cmp_matches = match cmp {
                Some(expected) => match ffi::futex_read(uaddr) {
                    Ok(v) => Some(v == expected),
                    Err(e) => return c_long::from(e.to_errno()),
                },
                None => None,
            };
            ask(
                home,
                &FutexMsg::Requeue {
                    from: key,
                    to_addr: uaddr2 as u64,
                    nr_wake,
                    nr_requeue,
                    cmp_matches,
                },
            )
        }
        Command::WakeOp {
            nr_wake,
            nr_wake2,
            op,
        } => match update(uaddr2, op) {
            Ok(old) => ask(
                home,
                &FutexMsg::WakeOp {
                    key,
                    addr2: uaddr2 as u64,
                    nr_wake,
                    nr_wake2,
                    holds: op.holds(old),
                },
            ),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(v) => c_long::from(v),
        Err(e) => c_long::from(e.to_errno()),
    }
}

/// `FUTEX_WAKE_OP`'s update of the second word; returns its old value.
fn update(uaddr: usize, op: WakeOp) -> Result<u32> {
    loop {
        let old = ffi::futex_read(uaddr)?;
        if ffi::futex_cmpxchg(uaddr, old, op.apply(old))? == old {
            return Ok(old);
        }
    }
}

/// Asks the master on `home` (maybe this node); returns its answer (a count, or a
/// negative errno).
fn ask(home: u32, msg: &FutexMsg) -> Result<i32> {
    let me = engine().node;
    if home == me {
        return master(me, msg);
    }
    let mut req = [0u8; FUTEX_MSG_MAX];
    let n = msg.encode(&mut req).map_err(|_| EINVAL)?;
    let mut resp = [0u8; FUTEX_MSG_MAX];
    let len = link::call_encoded(
        home,
        &req[..n],
        &mut resp,
        CALL_TIMEOUT_MS,
        Wait::Uninterruptible,
    )?;
    match FutexMsg::decode(&resp[..len]) {
        Ok(FutexMsg::Answer { value }) => Ok(value),
        _ => Err(errno::eproto()),
    }
}

/// A futex message from `node` (or this node's own): answers it into `resp`.
pub(crate) fn handle(node: u32, req: &[u8], resp: &mut [u8]) -> Result<usize> {
    let msg = FutexMsg::decode(req).map_err(|_| EINVAL)?;
    let value = match msg {
        FutexMsg::Woken { token } => {
            woken_here(node, token);
            0
        }
        msg => master(node, &msg)?,
    };
    FutexMsg::Answer { value }
        .encode(resp)
        .map_err(|_| EMSGSIZE)
}

/// Whether `req` is a futex message.
pub(crate) fn is_futex_message(req: &[u8]) -> bool {
    req.first() == Some(&FUTEX_MSG_MAGIC)
}

/// The master's side of a request from `node`: the answer's value.
fn master(node: u32, msg: &FutexMsg) -> Result<i32> {
    let space = match *msg {
        FutexMsg::Wait { key, .. }
        | FutexMsg::Cancel { key, .. }
        | FutexMsg::Wake { key, .. }
        | FutexMsg::WakeOp { key, .. } => key.space,
        FutexMsg::Requeue { from, .. } => from.space,
        FutexMsg::Woken { .. } | FutexMsg::Answer { .. } => return Err(EINVAL),
    };
    if !crate::leave::speaks_for(node, space) {
        return Err(EPERM);
    }
    let waiter_node = u16::try_from(node).map_err(|_| EINVAL)?;
    let mut woken: KVec<Waiter> = KVec::new();
    let mut oom = false;
    let mut collect = |w: Waiter| {
        if woken.push(w, GFP_KERNEL).is_err() {
            oom = true;
        }
    };
    let value = {
        let mut t = futexes().table.lock();
        match *msg {
            FutexMsg::Wait { key, token, bitset } => match t.wait(
                key,
                Waiter {
                    node: waiter_node,
                    token,
                },
                bitset,
            ) {
                Ok(()) => 0,
                Err(e) => -e.errno(),
            },
            FutexMsg::Cancel { token, .. } => match t.cancel(Waiter {
                node: waiter_node,
                token,
            }) {
                Cancelled::Removed => 1,
                Cancelled::NotWaiting => 0,
            },
            FutexMsg::Wake { key, nr, bitset } => t.wake(key, nr, bitset, &mut collect) as i32,
            FutexMsg::Requeue {
                from,
                to_addr,
                nr_wake,
                nr_requeue,
                cmp_matches,
            } => {
                let to = Key {
                    space: from.space,
                    addr: to_addr,
                };
                match t.requeue(from, to, nr_wake, nr_requeue, cmp_matches, &mut collect) {
                    Ok(n) => n as i32,
                    Err(e) => -e.errno(),
                }
            }
            FutexMsg::WakeOp {
                key,
                addr2,
                nr_wake,
                nr_wake2,
                holds,
            } => {
                let key2 = Key {
                    space: key.space,
                    addr: addr2,
                };
                t.wake_op(key, key2, nr_wake, nr_wake2, holds, &mut collect) as i32
            }
            FutexMsg::Woken { .. } | FutexMsg::Answer { .. } => return Err(EINVAL),
        }
    };
    if oom {
        pr_err!("futex wake: out of memory; a woken thread may sleep on\n");
    }
    deliver(&woken);
    Ok(value)
}

/// The distributed process `id` is gone from this node (`distributed.c`): the waits on
/// its futexes that this node is master of go; their threads are being killed, and are
/// told, so that none sleeps on.
#[no_mangle]
extern "C" fn ssi_migrate_space_ended(id: u64) {
    let mut dropped: KVec<Waiter> = KVec::new();
    futexes().table.lock().space_ended(id, |w| {
        let _ = dropped.push(w, GFP_KERNEL);
    });
    deliver(&dropped);
}

/// Tells each waiter the master took off its queue: on this node directly, elsewhere
/// with a `Woken` message.
fn deliver(woken: &[Waiter]) {
    let me = engine().node;
    for w in woken {
        if u32::from(w.node) == me {
            woken_here(me, w.token);
        } else {
            send_woken(u32::from(w.node), w.token);
        }
    }
}

/// The master (`from`) woke wait `token` of this node.
fn woken_here(from: u32, token: u64) {
    let w = futexes()
        .waits
        .lock()
        .iter()
        .find(|w| w.token == token)
        .cloned();
    match w {
        // Only the wait's master may end it.
        Some(w) if w.home == from => {
            *w.woken.lock() = true;
            w.changed.notify_all();
        }
        Some(_) => pr_warn!(
            "node {} tried to wake a futex wait it is not master of\n",
            from
        ),
        // It gave up meanwhile (its cancel lost the race): nothing waits for this.
        None => {}
    }
}

/// Tells `node` that its wait `token` was woken, from a work item (see the top).
fn send_woken(node: u32, token: u64) {
    let spawned = ffi::spawn_held_urgent(move || {
        let mut req = [0u8; FUTEX_MSG_MAX];
        if let Ok(n) = (FutexMsg::Woken { token }).encode(&mut req) {
            let mut resp = [0u8; FUTEX_MSG_MAX];
            if let Err(e) = link::call_encoded(
                node,
                &req[..n],
                &mut resp,
                CALL_TIMEOUT_MS,
                Wait::Uninterruptible,
            ) {
                pr_warn!("futex wake for node {} not delivered: {:?}\n", node, e);
            }
        }
    });
    // Else the module is going away: nobody waits any more.
    if matches!(spawned, Err(e) if e == ENOMEM) {
        pr_err!("futex wake for node {}: out of memory\n", node);
    }
}

/// `FUTEX_WAIT`/`FUTEX_WAIT_BITSET` of the calling thread: `deadline` is an absolute
/// time in nanoseconds and whether it is on the realtime clock.
fn wait(
    home: u32,
    key: Key,
    uaddr: usize,
    val: u32,
    bitset: u32,
    deadline: Option<(i64, bool)>,
) -> c_long {
    let token = engine().new_id();
    let lw = match Arc::pin_init(
        try_pin_init!(LocalWait {
            token,
            home,
            woken <- new_mutex!(false),
            changed <- new_condvar!(),
        }),
        GFP_KERNEL,
    ) {
        Ok(w) => w,
        Err(e) => return c_long::from(e.to_errno()),
    };
    if let Err(e) = futexes().waits.lock().push(lw.clone(), GFP_KERNEL) {
        return c_long::from(Error::from(e).to_errno());
    }
    let result = wait_on(&lw, home, key, uaddr, val, bitset, deadline);
    futexes().waits.lock().retain(|w| !Arc::ptr_eq(w, &lw));
    result
}

fn wait_on(
    lw: &LocalWait,
    home: u32,
    key: Key,
    uaddr: usize,
    val: u32,
    bitset: u32,
    deadline: Option<(i64, bool)>,
) -> c_long {
    let token = lw.token;
    let mut m = RemoteWait::new();
    let first = match ask(home, &FutexMsg::Wait { key, token, bitset }) {
        Ok(0) => WaitEvent::Queued,
        Ok(v) if v < 0 => WaitEvent::Refused(-v),
        Ok(_) => WaitEvent::Refused(EPROTO),
        Err(e) => {
            // The master may have queued it all the same: a wait left there would take
            // a later wake meant for somebody else.
            let _ = ask(home, &FutexMsg::Cancel { key, token });
            return c_long::from(e.to_errno());
        }
    };
    let mut step = m.on(first);
    let mut fault = false;
    let mut gave_up: Option<Error> = None;
    let mut woken_seen = false;
    let mut grace_until = 0u64;
    // A wake whose message was lost must not leave the thread asleep for ever: futex()
    // may return early (callers check their word again), so a long wait looks at its
    // word from time to time and gives up when it changed.
    let mut next_look = crate::clock::now_ns() + RECHECK_MS * 1_000_000;
    let mut spurious = false;
    loop {
        match step {
            WaitStep::Return(WaitResult::Woken) => return 0,
            WaitStep::Return(WaitResult::Refused(e)) => {
                return -c_long::from(if fault { EFAULT } else { e });
            }
            WaitStep::Return(WaitResult::GaveUp) if spurious => return 0,
            WaitStep::Return(WaitResult::GaveUp) => {
                return c_long::from(gave_up.unwrap_or(EINTR).to_errno());
            }
            WaitStep::CheckValue => {
                let matches = match ffi::futex_read(uaddr) {
                    Ok(v) => v == val,
                    Err(_) => {
                        fault = true;
                        false
                    }
                };
                step = m.on(WaitEvent::Value { matches });
            }
            WaitStep::SendCancel => {
                step = match ask(home, &FutexMsg::Cancel { key, token }) {
                    Ok(1) => m.on(WaitEvent::Removed),
                    Ok(_) => {
                        grace_until = crate::clock::now_ns() + WOKEN_GRACE_MS * 1_000_000;
                        m.on(WaitEvent::NotWaiting)
                    }
                    // The master is gone: so is the wait.
                    Err(_) => m.on(WaitEvent::Removed),
                };
            }
            WaitStep::Sleep => {
                let mut g = lw.woken.lock();
                if *g && !woken_seen {
                    woken_seen = true;
                    drop(g);
                    step = m.on(WaitEvent::Woken);
                    continue;
                }
                if m.cancelling() {
                    // Only the wake that won the race is awaited (bounded, signals
                    // ignored: the answer decides what futex() returns).
                    if grace_until != 0 && crate::clock::now_ns() > grace_until {
                        drop(g);
                        step = WaitStep::Return(WaitResult::Woken);
                        continue;
                    }
                    if ffi::signal_pending() {
                        drop(g);
                        fsleep(Delta::from_millis(1));
                    } else {
                        let _ = lw
                            .changed
                            .wait_interruptible_timeout(&mut g, msecs_to_jiffies(10));
                    }
                    continue;
                }
                if gave_up.is_none() {
                    let now = crate::clock::now_ns();
                    if now >= next_look {
                        next_look = now + RECHECK_MS * 1_000_000;
                        if ffi::futex_read(uaddr).map_or(true, |v| v != val) {
                            spurious = true;
                            gave_up = Some(EAGAIN);
                            drop(g);
                            step = m.on(WaitEvent::GiveUp);
                            continue;
                        }
                    }
                    // A timed wait is not restarted with its whole timeout again.
                    let interrupted = if deadline.is_some() {
                        EINTR
                    } else {
                        ERESTARTSYS
                    };
                    let why = if ffi::signal_pending() {
                        Some(interrupted)
                    } else {
                        match deadline {
                            Some((at, realtime)) if ffi::ns_until(at, realtime) <= 0 => {
                                Some(ETIMEDOUT)
                            }
                            _ => None,
                        }
                    };
                    if let Some(e) = why {
                        gave_up = Some(e);
                        drop(g);
                        step = m.on(WaitEvent::GiveUp);
                        continue;
                    }
                }
                let jiffies = match deadline {
                    Some((at, realtime)) => {
                        // Shifts and 32-bit limbs only (no 64-bit division on ARM).
                        let left = ffi::ns_until(at, realtime).max(0) as u64;
                        msecs_to_jiffies((ns_to_ms(left) + 1).min(1000) as u32)
                    }
                    None => msecs_to_jiffies(1000),
                };
                let _ = lw.changed.wait_interruptible_timeout(&mut g, jiffies);
            }
        }
    }
}
