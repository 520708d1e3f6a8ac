// SPDX-License-Identifier: GPL-2.0

//! The source side of a hop: `SSI_IOC_MIGRATE`, the snapshot taken in the process's own
//! context, and the stand-in that the process becomes here.
//!
//! The process is frozen in a task_work (it runs on the process's way back to user
//! mode), which snapshots it and then stays there as the stand-in: the same task, PID,
//! parent, descriptors and terminal, asleep in the kernel. Until the destination runs
//! the process, the hop can fail or be cancelled, and the stand-in then simply returns:
//! the process continues here as if nothing happened. Once it runs elsewhere, the
//! stand-in serves its memory (page requests), and, at the process's home, writes its
//! output, reads its input, forwards the signals it receives and finally exits with the
//! process's status, so that the parent's `wait()` sees it. A stand-in on a node the
//! process only passed through (a relay) serves pages until the process has exited.

use core::sync::atomic::{AtomicU64, Ordering};

use kernel::{
    alloc::KVVec,
    new_condvar, new_mutex,
    prelude::*,
    sync::{Arc, CondVar, CondVarTimeoutResult, Mutex},
    time::{delay::fsleep, msecs_to_jiffies, Delta},
    transmute::{AsBytes, FromBytes},
};

use crate::arrive::Arrival;
use crate::ffi::{self, Task, Why};
use crate::link::{self, Reply, Wait};
use crate::shared::ioctl::SSI_MIGRATE_THREAD;
use crate::shared::ioctl::{
    SsiMigrate, SsiMigrateJob, SsiProcInfo, SSI_MAX_GROUPS, SSI_PROC_HOME, SSI_PROC_LEAVING,
    SSI_PROC_RELAY, SSI_PROC_RUNNING,
};
use crate::shared::migrate_target::{self, Hop};
use crate::shared::migrate_wire::{
    HomeRef, MigMsg, MmInfo, MoveAnswer, SnapshotLayout, VmaInfo, MAX_DATA, MAX_STATE, MAX_VMAS,
    PAGE_DATA, PAGE_HEAD, PAGE_ZERO, REDIRECT_LEN, VMA_REGION, VMA_SPECIAL, VMA_WRITE,
};
use crate::{engine, errno};

/// How long the process may take to reach a point where it can be frozen.
const FREEZE_TIMEOUT_MS: u32 = 10_000;
/// How long the destination may take from the offer to running the process.
const ARRIVE_TIMEOUT_MS: u32 = 30_000;
/// `SIGKILL`.
const SIGKILL: i32 = 9;

/// How far a hop has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The task_work is queued.
    Capturing,
    /// Snapshot taken; about to be offered.
    Captured,
    /// The destination has the offer.
    Offered,
    /// The destination is replacing its child with the process: no way back.
    Committed,
    /// The process runs on the destination; this is its stand-in.
    Started,
    /// It failed (before running elsewhere): the process continues here.
    Failed,
    /// Given up by the ioctl (timeout or signal): the process continues here.
    Cancelled,
}

/// Work for the stand-in, which does it in its own context.
enum Request {
    Page {
        addr: u64,
        reply: Reply,
    },
    Output {
        fd: u8,
        data: KVec<u8>,
        reply: Reply,
    },
}

pub(crate) struct Inner {
    pub(crate) phase: Phase,
    errno: i32,
    why: [u8; ffi::WHY_LEN],
    snapshot: KVVec<u8>,
    snapshot_len: usize,
    frozen_ns: u64,
    started_ns: u64,
    /// Where the process runs now and its job there.
    pub(crate) node: u32,
    job: u64,
    /// Home: relay stand-ins to release when the process exits.
    relays: KVec<(u32, u64)>,
    requests: KVec<Request>,
    input: Option<(u64, u32, Reply)>,
    exit_status: Option<i32>,
    /// With `exit_status`: the whole process ended, not just the thread that moved.
    exit_group: bool,
    /// A thread's hop: the distributed process it belongs to.
    process: u64,
    /// The process's home holds its address-space changes back for this hop
    /// (`address_space::hop_begin`) until [`ungate`].
    gated: bool,
    finished: bool,
    /// A moved thread's home: the node running it offers it back (its hop there).
    returning: Option<Return>,
}

/// A moved thread coming back to its home stand-in: the hop of the node it leaves.
#[derive(Clone, Copy)]
struct Return {
    node: u32,
    hop: u64,
    snapshot_len: usize,
}

/// How a stand-in's service ends.
enum Outcome {
    /// The process (or the moved thread) ended with this wait status; `group`: the
    /// whole process ended (for a thread's stand-in).
    Exit { status: i32, group: bool },
    /// The moved thread is back: the stand-in returns to user mode as the thread.
    Resume,
}

/// A process leaving (or gone from) this node.
#[pin_data]
pub(crate) struct Leaving {
    pub(crate) hop: u64,
    pub(crate) dest: u32,
    pub(crate) task: Task,
    pub(crate) pid: u32,
    pub(crate) home: HomeRef,
    pub(crate) is_home: bool,
    pub(crate) hops: u32,
    pub(crate) comm: [u8; 16],
    /// One thread of a multi-threaded process moves; its siblings stay (its stand-in
    /// ends with the thread, or ends the process when the thread ends it).
    pub(crate) thread: bool,
    /// That thread is its process's main thread: its stand-in also forwards the
    /// signals sent to the whole process (a process whose threads all moved away
    /// still gets them).
    main_thread: bool,
    /// When the process had arrived here from elsewhere.
    arrival: Option<Arc<Arrival>>,
    #[pin]
    pub(crate) inner: Mutex<Inner>,
    #[pin]
    changed: CondVar,
    pub(crate) served: AtomicU64,
}

impl Leaving {
    fn set_phase(&self, phase: Phase) {
        self.inner.lock().phase = phase;
        self.changed.notify_all();
    }

    fn fail(&self, e: Error, text: &[u8]) {
        let mut g = self.inner.lock();
        if matches!(g.phase, Phase::Started | Phase::Failed | Phase::Cancelled) {
            return;
        }
        g.phase = Phase::Failed;
        g.errno = e.to_errno();
        let n = text.len().min(ffi::WHY_LEN - 1);
        g.why = [0; ffi::WHY_LEN];
        g.why[..n].copy_from_slice(&text[..n]);
        drop(g);
        self.changed.notify_all();
    }

    fn queue(&self, r: Request) -> Result {
        let mut g = self.inner.lock();
        // Committed: the destination faults in the stack while it writes the registers.
        if !matches!(g.phase, Phase::Started | Phase::Committed) {
            return Err(ESRCH);
        }
        g.requests.push(r, GFP_KERNEL)?;
        drop(g);
        self.changed.notify_all();
        Ok(())
    }
}

fn set_message(req: &mut SsiMigrate, text: &[u8]) {
    let n = text.len().min(req.message.len() - 1);
    req.message = [0; 128];
    req.message[..n].copy_from_slice(&text[..n]);
}

fn fail_with(req: &mut SsiMigrate, e: Error, args: core::fmt::Arguments<'_>) -> Error {
    let mut buf = [0u8; 128];
    let mut w = crate::shared::text::SliceWriter::new(&mut buf);
    let _ = core::fmt::write(&mut w, args);
    let n = w.len();
    set_message(req, &buf[..n]);
    e
}

/// `SSI_IOC_MIGRATE`: moves process `req.pid` to node `req.node`. On failure
/// `req.message` says why.
pub(crate) fn migrate(req: &mut SsiMigrate) -> Result {
    let e = engine();
    let here = e.node;
    let (pid, dest) = (req.pid, req.node);
    let dest: u32 = dest;
    let runs_on = dest;
    if req.flags & !SSI_MIGRATE_THREAD != 0 || req.reserved != 0 {
        return Err(fail_with(
            req,
            EINVAL,
            format_args!("unknown flags {:#x}", req.flags & !SSI_MIGRATE_THREAD),
        ));
    }
    if req.node != here && !crate::core_client::node_up(req.node) {
        return Err(fail_with(
            req,
            errno::ehostdown(),
            format_args!("node {} is not up (unknown or down)", dest),
        ));
    }
    let Some(task) = Task::by_pid(req.pid) else {
        return Err(fail_with(req, ESRCH, format_args!("no process {}", pid)));
    };
    if let Some(away) = thread_away(&task) {
        return move_away_thread(req, &away);
    }
    if req.node == here {
        return Err(fail_with(
            req,
            EINVAL,
            format_args!("pid {} is on node {} already", pid, here),
        ));
    }
    // A thread that moved here moves on (or back home) as a thread.
    let arrival = crate::arrive::running_as(&task);
    let moved_thread = arrival
        .as_ref()
        .is_some_and(|a| a.inner.lock().process != 0);
    let facts = task.target_facts();
    let main_thread = facts.group_leader;
    let thread = match migrate_target::check(&facts, req.flags != 0) {
        Ok(hop) => hop == Hop::Thread || moved_thread,
        Err(refusal) => {
            let err = Error::from_errno(refusal.errno());
            return Err(fail_with(req, err, format_args!("{}", refusal)));
        }
    };
    if thread && !e.threads_may_move {
        return Err(fail_with(
            req,
            errno::eopnotsupp(),
            format_args!(
                "threads cannot move: this kernel cannot redirect futexes (no function tracer)"
            ),
        ));
    }
    if thread && !moved_thread {
        if let Some(a) = crate::arrive::running_as(&task.leader()) {
            return Err(fail_with(
                req,
                EBUSY,
                format_args!(
                    "thread {} belongs to pid {} of node {}, which runs here: its threads \
                     cannot move on yet",
                    pid, a.home.pid, a.home.node
                ),
            ));
        }
    }
    for l in e.leaving.lock().iter() {
        if l.task.as_ptr() == task.as_ptr() {
            let g = l.inner.lock();
            if !matches!(g.phase, Phase::Failed | Phase::Cancelled) {
                return Err(fail_with(
                    req,
                    errno::ealready(),
                    format_args!(
                        "pid {} is leaving or stands in for a process on node {}",
                        pid, g.node
                    ),
                ));
            }
        }
    }
    let hop = e.new_id();
    let (home, is_home, hops) = match &arrival {
        Some(a) => (a.home, false, a.hops + 1),
        None => (
            HomeRef {
                node: here,
                pid: task.pid(),
                hop,
            },
            true,
            1,
        ),
    };
    let comm = task.comm();
    let l = Arc::pin_init(
        try_pin_init!(Leaving {
            hop,
            dest,
            task,
            pid,
            home,
            is_home,
            hops,
            comm,
            thread,
            main_thread,
            arrival,
            inner <- new_mutex!(Inner {
                phase: Phase::Capturing,
                errno: 0,
                why: [0; ffi::WHY_LEN],
                snapshot: KVVec::new(),
                snapshot_len: 0,
                frozen_ns: 0,
                started_ns: 0,
                node: runs_on,
                job: 0,
                relays: KVec::new(),
                requests: KVec::new(),
                input: None,
                exit_status: None,
                exit_group: false,
                process: 0,
                gated: false,
                finished: false,
                returning: None,
            }),
            changed <- new_condvar!(),
            served: AtomicU64::new(0),
        }),
        GFP_KERNEL,
    )?;
    e.leaving.lock().push(l.clone(), GFP_KERNEL)?;
    let result = drive(&l, req);
    if result.is_err() && req.message[0] == 0 {
        let g = l.inner.lock();
        if g.phase == Phase::Failed {
            set_message(
                req,
                &g.why[..g.why.iter().position(|&b| b == 0).unwrap_or(ffi::WHY_LEN)],
            );
        }
    }
    result
}

/// The stand-in of a thread of `task`'s process that runs on another node, if `task` is
/// one: the thread is named by its id here, its home, wherever it runs.
fn thread_away(task: &Task) -> Option<Arc<Leaving>> {
    engine()
        .leaving
        .lock()
        .iter()
        .find(|l| {
            l.is_home
                && l.thread
                && l.task.as_ptr() == task.as_ptr()
                && l.inner.lock().phase == Phase::Started
        })
        .cloned()
}

/// `SSI_IOC_MIGRATE` of a thread that runs elsewhere: the node running it moves it
/// on, or back here (`MoveThread`), with the caller's permission checked here, on the
/// thread's own task.
fn move_away_thread(req: &mut SsiMigrate, l: &Leaving) -> Result {
    let (node, job) = {
        let g = l.inner.lock();
        (g.node, g.job)
    };
    let (pid, dest) = (req.pid, req.node);
    if dest == node {
        return Err(fail_with(
            req,
            EINVAL,
            format_args!("thread {} runs on node {} already", pid, node),
        ));
    }
    if let Err(refusal) = migrate_target::check(&l.task.target_facts(), true) {
        let err = Error::from_errno(refusal.errno());
        return Err(fail_with(req, err, format_args!("{}", refusal)));
    }
    let mut resp = [0u8; 256];
    let msg = MigMsg::MoveThread { job, node: dest };
    // The hop there waits for the thread to stop and for its destination.
    let timeout = FREEZE_TIMEOUT_MS + ARRIVE_TIMEOUT_MS + 10_000;
    let n = link::call(node, &msg, &mut resp, timeout, Wait::Interruptible).map_err(|e| {
        fail_with(
            req,
            e,
            format_args!("node {} running thread {} did not answer", node, pid),
        )
    })?;
    let answer = MoveAnswer::decode(&resp[..n]).map_err(|_| errno::eproto())?;
    if answer.errno != 0 {
        set_message(req, answer.text);
        return Err(Error::from_errno(-(answer.errno.clamp(1, 4095) as i32)));
    }
    req.migration = answer.migration;
    req.freeze_ns = answer.freeze_ns;
    req.snapshot_bytes = answer.snapshot_bytes;
    Ok(())
}

/// `MoveThread` from the home of the moved thread `pid` (running here): moves it to
/// `dest` like `SSI_IOC_MIGRATE` would, from a work item (the hop takes seconds); the
/// answer goes to `reply`.
pub(crate) fn move_for_home(pid: u32, dest: u32, reply: Reply) -> Result {
    ffi::spawn_held(move || {
        let mut req = SsiMigrate {
            pid,
            node: dest,
            flags: 0,
            reserved: 0,
            migration: 0,
            freeze_ns: 0,
            snapshot_bytes: 0,
            message: [0; 128],
        };
        let result = migrate(&mut req);
        let text = &req.message[..req.message.iter().position(|&b| b == 0).unwrap_or(0)];
        let answer = MoveAnswer {
            errno: result.err().map_or(0, |e| e.to_errno().unsigned_abs()),
            migration: req.migration,
            freeze_ns: req.freeze_ns,
            snapshot_bytes: req.snapshot_bytes,
            text,
        };
        let mut buf = [0u8; 256];
        match answer.encode(&mut buf) {
            Ok(n) => reply.send(Ok(&buf[..n])),
            Err(_) => reply.send(Err(EINVAL)),
        }
    })
}

/// Takes a hop from the queued freeze to the process running on the destination.
fn drive(l: &Arc<Leaving>, req: &mut SsiMigrate) -> Result {
    let e = engine();
    if let Err(err) = ffi::hold_module() {
        e.forget(l);
        return Err(err);
    }
    let ctx = Arc::into_raw(l.clone()).cast_mut().cast();
    // SAFETY: `ctx` is a reference to `l` that `ssi_migrate_task_work` takes over.
    if let Err(err) = unsafe { l.task.queue_work(ctx) } {
        // SAFETY: Not queued: the reference is still ours.
        drop(unsafe { Arc::from_raw(ctx.cast::<Leaving>()) });
        ffi::module_put();
        e.forget(l);
        let pid = req.pid;
        return Err(fail_with(req, err, format_args!("pid {} is exiting", pid)));
    }

    // 1. The process freezes itself and takes the snapshot.
    let phase = wait_while(l, Phase::Capturing, FREEZE_TIMEOUT_MS);
    if phase == Phase::Capturing {
        l.set_phase(Phase::Cancelled);
        return Err(fail_with(
            req,
            ETIMEDOUT,
            format_args!(
                "pid {} did not stop within 10 s (stopped or traced?)",
                l.pid
            ),
        ));
    }
    if phase != Phase::Captured {
        return Err(Error::from_errno(l.inner.lock().errno));
    }

    // 2. Offer it.
    let snapshot_len = l.inner.lock().snapshot.len();
    let offer = MigMsg::Offer {
        hop: l.hop,
        home_node: l.home.node,
        home_pid: l.home.pid,
        home_hop: l.home.hop,
        hops: l.hops,
        // At most a few hundred KiB (MAX_VMAS, MAX_STATE).
        snapshot_len: snapshot_len as u32,
    };
    let mut resp = [0u8; 16];
    if let Err(err) = link::call(l.dest, &offer, &mut resp, 5000, Wait::Uninterruptible) {
        l.fail(err, b"");
        return Err(if err.to_errno() == errno::econnrefused().to_errno() {
            fail_with(
                req,
                err,
                format_args!("node {} runs no migration daemon (ssictl daemon)", l.dest),
            )
        } else {
            fail_with(
                req,
                err,
                format_args!("node {} refused the process", l.dest),
            )
        });
    }
    {
        let mut g = l.inner.lock();
        if g.phase == Phase::Captured {
            g.phase = Phase::Offered;
        }
    }

    // 3. Wait until it runs there (or fails).
    let mut phase = wait_while(l, Phase::Offered, ARRIVE_TIMEOUT_MS);
    if phase == Phase::Offered {
        let mut g = l.inner.lock();
        if g.phase == Phase::Offered {
            g.phase = Phase::Cancelled;
            drop(g);
            l.changed.notify_all();
            return Err(fail_with(
                req,
                ETIMEDOUT,
                format_args!("node {} did not take the process within 30 s", l.dest),
            ));
        }
        phase = g.phase;
    }
    if phase == Phase::Committed {
        phase = wait_while(l, Phase::Committed, ARRIVE_TIMEOUT_MS);
    }
    let g = l.inner.lock();
    match phase {
        Phase::Started => {
            req.migration = l.hop;
            req.freeze_ns = g.started_ns.saturating_sub(g.frozen_ns);
            req.snapshot_bytes = g.snapshot_len as u64;
            Ok(())
        }
        Phase::Committed => Err(fail_with(
            req,
            ETIMEDOUT,
            format_args!("node {} is still restoring the process", l.dest),
        )),
        _ => Err(Error::from_errno(g.errno.min(-1))),
    }
}

/// Waits (at most `timeout_ms`, signals ignored: the hop must settle) while the phase
/// is `phase`; returns the phase then.
fn wait_while(l: &Leaving, phase: Phase, timeout_ms: u32) -> Phase {
    let deadline = crate::clock::now_ns() + u64::from(timeout_ms) * 1_000_000;
    let mut g = l.inner.lock();
    while g.phase == phase {
        let now = crate::clock::now_ns();
        if now >= deadline {
            break;
        }
        if ffi::signal_pending() {
            // A signal for the caller (ssictl) must not make this spin.
            drop(g);
            fsleep(Delta::from_millis(5));
            g = l.inner.lock();
            continue;
        }
        let _ = l
            .changed
            .wait_interruptible_timeout(&mut g, msecs_to_jiffies(100));
    }
    g.phase
}

/// The task_work: runs in the migrating process's own context.
///
/// # Safety
///
/// `ctx` is a reference to a `Leaving` from `drive` (passed to us).
#[no_mangle]
unsafe extern "C" fn ssi_migrate_task_work(ctx: *mut core::ffi::c_void) {
    // SAFETY: Guaranteed by the caller: we own this reference now.
    let l = unsafe { Arc::from_raw(ctx.cast::<Leaving>()) };
    if l.inner.lock().phase == Phase::Cancelled {
        engine().forget(&l);
        drop(l);
        ffi::module_put();
        return;
    }
    match snapshot(&l) {
        Ok(()) => stand_in(l),
        Err(err) => {
            let _ = err;
            ungate(&l);
            engine().forget(&l);
            drop(l);
            ffi::module_put();
        }
    }
}

/// Ends the hold the hop has on its process's address-space changes, if it has one.
fn ungate(l: &Leaving) {
    let process = {
        let mut g = l.inner.lock();
        if !core::mem::take(&mut g.gated) {
            return;
        }
        g.process
    };
    crate::address_space::hop_end(process, l.home.node, l.hop);
}

/// Takes the snapshot (in the process's context) and publishes it.
fn snapshot(l: &Leaving) -> Result {
    let frozen = crate::clock::now_ns();
    let mut why = Why::new();
    let mut process = 0;
    let mut parked = None;
    let moved_thread = l.arrival.as_ref().map_or(0, |a| a.inner.lock().process);
    // The destination builds the thread's address space from the layout taken here:
    // the home holds the process's address-space changes back until it has (a thread
    // going home needs none: its address space is the home's).
    let gate = |process: u64| -> Result {
        if l.dest == l.home.node {
            return Ok(());
        }
        crate::address_space::hop_begin(process, l.home.node, l.hop).inspect_err(|e| {
            l.fail(*e, b"the process's memory map kept changing; try again");
        })?;
        l.inner.lock().gated = true;
        Ok(())
    };
    if moved_thread != 0 {
        // A thread that moved here moves on or home: its process is distributed
        // already, and this node runs nothing else of it that could need parking.
        process = moved_thread;
        l.inner.lock().process = process;
        gate(process)?;
    } else if l.thread {
        // The refusals first, before anything changes: a snapshot that is thrown away.
        if let Err(err) = take_snapshot(l, 0, &mut why) {
            l.fail(err, why.text());
            return Err(err);
        }
        // Its siblings keep running here: the memory they share must be in regions.
        // They stay parked until the snapshot is taken.
        match crate::distribute::distribute(&mut why) {
            Ok(p) => {
                process = p.process;
                parked = Some(p);
            }
            Err(err) => {
                l.fail(err, why.text());
                return Err(err);
            }
        }
        l.inner.lock().process = process;
        // Its siblings here are parked: only changes asked from other nodes can be
        // under way.
        gate(process)?;
    }
    let result = take_snapshot(l, process, &mut why);
    drop(parked);
    match result {
        Ok(snap) => {
            let mut g = l.inner.lock();
            if g.phase != Phase::Capturing {
                return Err(errno::ecanceled());
            }
            g.snapshot_len = snap.len();
            g.snapshot = snap;
            g.frozen_ns = frozen;
            g.phase = Phase::Captured;
            drop(g);
            l.changed.notify_all();
            Ok(())
        }
        Err(err) => {
            let text = why.text();
            l.fail(
                err,
                if text.is_empty() {
                    b"taking the snapshot failed"
                } else {
                    text
                },
            );
            Err(err)
        }
    }
}

/// Takes the snapshot of the calling task (registers, layout, identity): the bytes the
/// destination fetches. `why` says why it failed.
fn take_snapshot(l: &Leaving, process: u64, why: &mut Why) -> Result<KVVec<u8>> {
    let mut state = KVVec::from_elem(0u8, MAX_STATE, GFP_KERNEL)?;
    let empty = VmaInfo {
        start: 0,
        end: 0,
        pgoff: 0,
        flags: 0,
        name: [0; 32],
        region: 0,
        region_pages: 0,
        reserved: 0,
    };
    let mut vmas = KVVec::from_elem(empty, MAX_VMAS, GFP_KERNEL)?;
    let mut mm = MmInfo {
        start_code: 0,
        end_code: 0,
        start_data: 0,
        end_data: 0,
        start_brk: 0,
        brk: 0,
        start_stack: 0,
        arg_start: 0,
        arg_end: 0,
        env_start: 0,
        env_end: 0,
        auxv_words: 0,
        auxv: [0; 64],
        process: 0,
        home_tgid: 0,
        home_ppid: 0,
    };
    let (state_len, nr) =
        ffi::capture(&mut state, &mut mm, &mut vmas, engine().node, l.thread, why)?;
    if process != 0 && !l.is_home {
        // Memory this thread mapped here is in no region: its siblings do not see it,
        // and it would be lost with the thread's task here.
        let local = vmas[..nr]
            .iter()
            .find(|v| v.flags & VMA_WRITE != 0 && v.flags & (VMA_REGION | VMA_SPECIAL) == 0);
        if let Some(v) = local {
            why.set(format_args!(
                "the thread mapped {:#x}-{:#x} on this node, which its process does not share: \
                 it cannot move",
                v.start, v.end
            ));
            return Err(EBUSY);
        }
    }
    mm.process = process;
    if let Some(a) = &l.arrival {
        // Its ids at home, not this node's (the capture filled in those).
        (mm.home_tgid, mm.home_ppid) = a.home_pids();
    }
    let id = ffi::identity();
    let mut job = SsiMigrateJob::default();
    job.home_node = l.home.node;
    job.home_pid = l.home.pid;
    job.source_node = engine().node;
    [
        job.uid, job.euid, job.suid, job.fsuid, job.gid, job.egid, job.sgid, job.fsgid,
    ] = id.ids;
    job.umask = id.umask;
    job.ngroups = id.ngroups.min(SSI_MAX_GROUPS as u32);
    job.groups = id.groups;
    job.comm = id.comm;
    job.cwd = id.cwd;
    let layout = SnapshotLayout::new(nr, state_len).map_err(|_| E2BIG)?;
    let mut snap = KVVec::with_capacity(layout.total, GFP_KERNEL)?;
    snap.extend_from_slice(&layout.head(), GFP_KERNEL)?;
    snap.extend_from_slice(job.as_bytes(), GFP_KERNEL)?;
    snap.extend_from_slice(mm.as_bytes(), GFP_KERNEL)?;
    for v in &vmas[..nr] {
        snap.extend_from_slice(v.as_bytes(), GFP_KERNEL)?;
    }
    snap.extend_from_slice(&state[..state_len], GFP_KERNEL)?;
    Ok(snap)
}

/// The stand-in: waits until the process runs elsewhere (or returns if the hop failed),
/// then serves it until it exits.
fn stand_in(l: Arc<Leaving>) {
    // Until the hop is decided, signals stay pending (they are forwarded afterwards, or
    // delivered here if the process stays).
    let mut committed_since = 0;
    let mut page = match KBox::new([0u8; PAGE_HEAD + 4096], GFP_KERNEL) {
        Ok(p) => p,
        Err(_) => {
            l.fail(ENOMEM, b"out of memory");
            engine().forget(&l);
            drop(l);
            ffi::module_put();
            return;
        }
    };
    loop {
        let g = l.inner.lock();
        match g.phase {
            Phase::Started => break,
            Phase::Failed | Phase::Cancelled => {
                drop(g);
                ungate(&l);
                engine().forget(&l);
                drop(l);
                ffi::module_put();
                return;
            }
            Phase::Committed => {
                let mut g = g;
                if !g.requests.is_empty() {
                    if let Ok(Request::Page { addr, reply }) = g.requests.remove(0) {
                        drop(g);
                        serve_page(&l, addr, &mut page, reply);
                    }
                    continue;
                }
                drop(g);
                // Past the point of no return: if the destination dies now (or never
                // says it runs the process), the process is lost.
                let now = crate::clock::now_ns();
                if committed_since == 0 {
                    committed_since = now;
                }
                if !crate::core_client::node_up(l.dest) || now - committed_since > 60_000_000_000 {
                    pr_err!(
                        "pid {}: node {} died while taking it over; the process is lost\n",
                        l.pid,
                        l.dest
                    );
                    let _ = ffi::fd_write(2, b"ssi: the destination node died during migration\n");
                    l.fail(
                        errno::ehostdown(),
                        b"the destination died while taking the process over",
                    );
                    ungate(&l);
                    engine().forget(&l);
                    drop(page);
                    if l.thread {
                        // Its siblings cannot go on without it.
                        drop(l);
                        ffi::thread_exit(SIGKILL, true);
                    }
                    drop(l);
                    // Pinned by the descriptor until do_exit() has left this module.
                    if ffi::install_standin_fd().is_ok() {
                        ffi::module_put();
                    }
                    ffi::exit(SIGKILL);
                }
                fsleep(Delta::from_millis(5));
            }
            _ => {
                drop(g);
                fsleep(Delta::from_millis(2));
            }
        }
    }
    // The destination holds the thread's address space: changes reach it from now on.
    ungate(&l);
    // The descriptor pins the module until do_exit() has closed it; the task_work's
    // reference is not needed any more. A thread's stand-in cannot have one (the table
    // is its process's): it keeps the reference until it is gone (`thread_exit`).
    if let Some(a) = &l.arrival {
        a.moved_away();
    }
    if l.thread && !l.is_home {
        // A moved thread's task on a node it passes through: the thread runs on (its
        // pages come from its home, not from here), and this task ends without a trace
        // in the memory its process shares.
        pr_info!(
            "thread {} of node {} now runs on node {}\n",
            l.home.pid,
            l.home.node,
            l.dest
        );
        engine().forget(&l);
        drop(l);
        drop(page);
        ffi::forget_thread_exit_effects();
        // As below: the descriptor pins the module until do_exit() has closed it.
        let _ = ffi::install_standin_fd();
        ffi::module_put();
        ffi::exit(0);
    }
    let pinned = !l.thread && ffi::install_standin_fd().is_ok();
    if pinned {
        ffi::module_put();
    }
    pr_info!(
        "{} {} now runs on node {}; {} stand-in here\n",
        if l.thread { "thread" } else { "pid" },
        l.pid,
        l.dest,
        if l.is_home { "home" } else { "relay" }
    );
    drop(page);
    let (status, group) = match serve(&l) {
        Outcome::Exit { status, group } => (status, group),
        Outcome::Resume => {
            // Back in user mode as the thread, at home: nothing of the hop is left.
            pr_info!("thread {} is home again\n", l.pid);
            engine().forget(&l);
            drop(l);
            ffi::module_put();
            return;
        }
    };
    if l.is_home {
        release_relays(l.hop);
    }
    engine().forget(&l);
    if l.thread {
        drop(l);
        ffi::thread_exit(status, group);
    }
    drop(l);
    if !pinned {
        ffi::module_put();
    }
    ffi::exit(status)
}

/// Serves the process (or thread) until it ends, or until the moved thread comes back.
fn serve(l: &Leaving) -> Outcome {
    let lost = Outcome::Exit {
        status: SIGKILL,
        group: true,
    };
    let mut page = match KBox::new([0u8; PAGE_HEAD + 4096], GFP_KERNEL) {
        Ok(p) => p,
        Err(_) => return lost,
    };
    let mut last_check = crate::clock::now_ns();
    loop {
        let mut g = l.inner.lock();
        if let Some(status) = g.exit_status {
            return Outcome::Exit {
                status,
                group: g.exit_group,
            };
        }
        if g.finished {
            return Outcome::Exit {
                status: 0,
                group: false,
            };
        }
        if let Some(r) = g.returning.take() {
            drop(g);
            match come_home(l, r) {
                Ok(()) => return Outcome::Resume,
                Err(true) => return lost,
                // It stays where it runs.
                Err(false) => continue,
            }
        }
        if !g.requests.is_empty() {
            let r = g.requests.remove(0);
            drop(g);
            match r {
                Ok(Request::Page { addr, reply }) => serve_page(l, addr, &mut page, reply),
                Ok(Request::Output { fd, data, reply }) => {
                    let mut done = 0;
                    let mut err = None;
                    while done < data.len() {
                        match ffi::fd_write(i32::from(fd), &data[done..]) {
                            Ok(0) => break,
                            Ok(n) => done += n,
                            Err(e) => {
                                err = Some(e);
                                break;
                            }
                        }
                    }
                    match err {
                        Some(e) if done == 0 => reply.send(Err(e)),
                        // At most MAX_DATA.
                        _ => reply.send(Ok(&(done as u32).to_le_bytes())),
                    }
                }
                Err(_) => {}
            }
            continue;
        }
        let node = g.node;
        let input_pending = g.input.is_some();
        drop(g);

        if input_pending {
            match ffi::fd_readable(0) {
                Ok(false) => {}
                readable => {
                    let taken = l.inner.lock().input.take();
                    if let Some((_, max, reply)) = taken {
                        let buf = &mut page[..];
                        let want = (max as usize).min(MAX_DATA);
                        match readable.and_then(|_| ffi::fd_read(0, &mut buf[..want])) {
                            Ok(n) => reply.send(Ok(&buf[..n])),
                            Err(e) => reply.send(Err(e)),
                        }
                    }
                    continue;
                }
            }
        }

        if ffi::fatal_signal_pending() {
            // A signal whose default action kills (SIGTERM, ...) became a group exit
            // here at once: the process gets that signal, the stand-in dies of it.
            let signo = ffi::fatal_signo();
            if l.is_home {
                let job = l.inner.lock().job;
                let _ = link::tell(node, &MigMsg::Signal { job, signo }, 2000);
            }
            return Outcome::Exit {
                status: signo as i32,
                group: true,
            };
        }
        ffi::clear_notify();
        // A thread's stand-in takes only the signals sent to that thread: the process's
        // own go to whichever thread the kernel picks, as without ssi, or to the main
        // thread's stand-in, which forwards them to the main thread.
        let dequeue = if l.thread && !l.main_thread {
            ffi::dequeue_thread_signal
        } else {
            ffi::dequeue_signal
        };
        while let Some(sig) = dequeue() {
            if l.is_home {
                let job = l.inner.lock().job;
                if let Err(e) = link::tell(node, &MigMsg::Signal { job, signo: sig }, 2000) {
                    pr_warn!(
                        "pid {}: signal {} not forwarded to node {}: {:?}\n",
                        l.pid,
                        sig,
                        node,
                        e
                    );
                }
            }
        }

        let now = crate::clock::now_ns();
        if now - last_check > 200_000_000 {
            last_check = now;
            if !crate::core_client::node_up(node) {
                if l.is_home && l.thread {
                    pr_err!(
                        "thread {}: node {} that ran it went down; killing its process\n",
                        l.pid,
                        node
                    );
                    let _ = ffi::fd_write(
                        2,
                        b"ssi: a node running a thread of this process went down; it is killed\n",
                    );
                    return lost;
                }
                if l.is_home {
                    pr_err!(
                        "pid {}: node {} that ran it went down; the process is lost\n",
                        l.pid,
                        node
                    );
                    let _ = ffi::fd_write(
                        2,
                        b"ssi: the node running this process went down; it is lost\n",
                    );
                    return lost;
                }
                return Outcome::Exit {
                    status: 0,
                    group: false,
                };
            }
        }

        let mut g = l.inner.lock();
        if g.requests.is_empty() && g.exit_status.is_none() && !g.finished && g.returning.is_none()
        {
            let wait: u32 = if g.input.is_some() { 5 } else { 100 };
            if ffi::signal_pending() {
                drop(g);
                fsleep(Delta::from_millis(i64::from(wait)));
            } else {
                let r = l
                    .changed
                    .wait_interruptible_timeout(&mut g, msecs_to_jiffies(wait as u32));
                let _: CondVarTimeoutResult = r;
            }
        }
    }
}

/// The moved thread comes home (`r`: offered by the node running it): its snapshot is
/// fetched and checked, the hop committed there, and this stand-in (the thread's own
/// task, with its id) gets the thread's registers back. `Err(false)`: the thread runs
/// on where it was; `Err(true)`: it is lost (committed, but not resumed here).
fn come_home(l: &Leaving, r: Return) -> core::result::Result<(), bool> {
    let mut why = Why::new();
    let pulled = crate::arrive::pull_snapshot(r.node, r.hop, r.snapshot_len, Wait::Uninterruptible)
        .and_then(|snap| {
            let layout = SnapshotLayout::parse(&snap).map_err(|_| errno::eproto())?;
            let mm = MmInfo::from_bytes_copy(&snap[layout.mm..layout.vmas]).ok_or(EINVAL)?;
            if mm.process != l.inner.lock().process {
                why.set(format_args!("the snapshot is of another process"));
                return Err(EINVAL);
            }
            ffi::check_state(&snap[layout.state..], &mut why)?;
            Ok((snap, layout.state))
        });
    let (snap, state) = match pulled {
        Ok(s) => s,
        Err(e) => {
            let text: &[u8] = if why.text().is_empty() {
                b"its home could not take the snapshot"
            } else {
                why.text()
            };
            let msg = MigMsg::Failed {
                hop: r.hop,
                errno: e.to_errno().unsigned_abs(),
                text,
            };
            let _ = link::tell(r.node, &msg, 2000);
            return Err(false);
        }
    };
    // From here on the node it leaves never resumes it.
    if let Err(e) = link::tell(r.node, &MigMsg::Commit { hop: r.hop }, 5000) {
        pr_warn!(
            "thread {}: node {} gave the way home up: {:?}\n",
            l.pid,
            r.node,
            e
        );
        return Err(false);
    }
    if let Err(e) = ffi::thread_resume(&snap[state..], &mut why) {
        pr_err!(
            "thread {}: resuming at home failed ({:?}): {}; its process is killed\n",
            l.pid,
            e,
            core::str::from_utf8(why.text()).unwrap_or("?")
        );
        return Err(true);
    }
    let started = MigMsg::Started {
        hop: r.hop,
        pid: l.pid,
        job: l.hop,
    };
    if let Err(e) = link::tell(r.node, &started, 5000) {
        pr_warn!(
            "thread {}: node {} not told it is home: {:?}\n",
            l.pid,
            r.node,
            e
        );
    }
    Ok(())
}

/// `Offer` from `node` of a moved thread back to its home (here): its stand-in takes
/// it, without a daemon or a new task, so that the thread keeps its id. `None`: not
/// such an offer (a process coming home is the daemon's, as on any node).
pub(crate) fn on_return(
    node: u32,
    hop: u64,
    home: HomeRef,
    snapshot_len: u32,
    resp: &mut [u8],
) -> Option<Result<usize>> {
    if home.node != engine().node {
        return None;
    }
    let l = find_home(home.hop).filter(|l| l.thread)?;
    if snapshot_len as usize > 1 << 20 || resp.len() < 8 {
        return Some(Err(EINVAL));
    }
    let mut g = l.inner.lock();
    // Only the node running the thread may bring it back.
    if g.phase != Phase::Started || g.node != node {
        return Some(Err(EPERM));
    }
    if g.returning.is_some() || g.exit_status.is_some() {
        return Some(Err(EBUSY));
    }
    g.returning = Some(Return {
        node,
        hop,
        // At most 1 MiB.
        snapshot_len: snapshot_len as usize,
    });
    drop(g);
    l.changed.notify_all();
    resp[..8].copy_from_slice(&l.hop.to_le_bytes());
    Some(Ok(8))
}

fn serve_page(l: &Leaving, addr: u64, page: &mut [u8; PAGE_HEAD + 4096], reply: Reply) {
    match answer_page(l, addr, page) {
        Ok(n) => reply.send(Ok(&page[..n])),
        Err(e) => reply.send(Err(e)),
    }
}

/// The answer to a request for the page at `addr` of the process that left: its
/// contents, "zero", or, on a relay, where to ask when the process never touched the
/// page here. Runs in the stand-in's context (`current` is the process).
fn answer_page(l: &Leaving, addr: u64, page: &mut [u8]) -> Result<usize> {
    l.served.fetch_add(1, Ordering::Relaxed);
    if let Some(a) = &l.arrival {
        if let Some((src, anchor)) = l.task.source_addr(addr) {
            if let Some(r) = a.redirect(src, anchor) {
                page.get_mut(..REDIRECT_LEN)
                    .ok_or(EINVAL)?
                    .copy_from_slice(&r.encode());
                return Ok(REDIRECT_LEN);
            }
        }
    }
    // Read in place: this can run deep in a page fault (a redirect followed locally),
    // where a page-sized buffer on the stack would overflow it.
    let data: &mut [u8; 4096] = page
        .get_mut(PAGE_HEAD..PAGE_HEAD + 4096)
        .and_then(|d| d.try_into().ok())
        .ok_or(EINVAL)?;
    let n = l.task.read_page(addr, data).unwrap_or(0);
    if n < data.len() || data.iter().all(|&b| b == 0) {
        // Unmapped here, or zero: the destination zero-fills.
        page[..PAGE_HEAD].copy_from_slice(&[PAGE_ZERO, 0, 0, 0]);
        return Ok(PAGE_HEAD);
    }
    page[..PAGE_HEAD].copy_from_slice(&[PAGE_DATA, 0, 0, 0]);
    Ok(PAGE_HEAD + 4096)
}

/// A page of the process that left this node by hop `hop`, read here directly (for a
/// process that came back and faults on what it left behind).
pub(crate) fn read_left_page(hop: u64, addr: u64, page: &mut [u8]) -> Result<usize> {
    let l = find(hop).ok_or(ESRCH)?;
    answer_page(&l, addr, page)
}

fn find(hop: u64) -> Option<Arc<Leaving>> {
    engine()
        .leaving
        .lock()
        .iter()
        .find(|l| l.hop == hop)
        .cloned()
}

fn find_home(home_hop: u64) -> Option<Arc<Leaving>> {
    engine()
        .leaving
        .lock()
        .iter()
        .find(|l| l.is_home && l.hop == home_hop)
        .cloned()
}

/// `Chunk`: bytes of the snapshot for the destination.
pub(crate) fn on_chunk(node: u32, hop: u64, offset: u32, resp: &mut [u8]) -> Result<usize> {
    let l = find(hop).ok_or(ESRCH)?;
    if node != l.dest {
        return Err(EPERM);
    }
    let g = l.inner.lock();
    if !matches!(g.phase, Phase::Offered | Phase::Captured) {
        return Err(ESRCH);
    }
    let start = (offset as usize).min(g.snapshot.len());
    let n = (g.snapshot.len() - start).min(MAX_DATA).min(resp.len());
    resp[..n].copy_from_slice(&g.snapshot[start..start + n]);
    Ok(n)
}

/// `Commit`: the destination is about to replace its child with the process.
pub(crate) fn on_commit(node: u32, hop: u64) -> Result<usize> {
    let l = find(hop).ok_or(ESRCH)?;
    if node != l.dest {
        return Err(EPERM);
    }
    let mut g = l.inner.lock();
    match g.phase {
        Phase::Offered | Phase::Captured => {
            g.phase = Phase::Committed;
            Ok(0)
        }
        _ => Err(errno::ecanceled()),
    }
}

/// `Started`: the process runs on the destination.
pub(crate) fn on_started(node: u32, hop: u64, job: u64) -> Result<usize> {
    let l = find(hop).ok_or(ESRCH)?;
    if node != l.dest {
        return Err(EPERM);
    }
    let mut g = l.inner.lock();
    if g.phase != Phase::Committed {
        return Err(errno::eproto());
    }
    g.phase = Phase::Started;
    g.started_ns = crate::clock::now_ns();
    g.node = node;
    g.job = job;
    // The snapshot is not needed any more.
    g.snapshot = KVVec::new();
    drop(g);
    // It runs there from now on, not here.
    if let Some(a) = &l.arrival {
        a.moved_away();
    }
    l.changed.notify_all();
    Ok(0)
}

/// `Failed`: the destination could not take the process; it continues here.
pub(crate) fn on_failed(node: u32, hop: u64, errno: u32, text: &[u8]) -> Result<usize> {
    let l = find(hop).ok_or(ESRCH)?;
    if node != l.dest {
        return Err(EPERM);
    }
    let err = Error::from_errno(-(errno.clamp(1, 4095) as i32));
    let mut msg = [0u8; 128];
    let mut w = crate::shared::text::SliceWriter::new(&mut msg);
    let _ = core::fmt::write(
        &mut w,
        format_args!(
            "node {}: {}",
            node,
            core::str::from_utf8(text).unwrap_or("failed")
        ),
    );
    let n = w.len();
    l.fail(err, &msg[..n]);
    Ok(0)
}

/// `Page`: a page of the process for the node it went to, or for a node a relay sent
/// here (answered by the stand-in). The nodes of a cluster trust each other with the
/// memory of the processes they run for each other.
pub(crate) fn on_page(_node: u32, hop: u64, addr: u64, reply: Reply) -> Result<Option<usize>> {
    let l = find(hop).ok_or(ESRCH)?;
    l.queue(Request::Page { addr, reply })?;
    Ok(None)
}

/// `Output`: the process wrote to its standard output or error.
pub(crate) fn on_output(
    node: u32,
    home_hop: u64,
    fd: u8,
    data: &[u8],
    reply: Reply,
) -> Result<Option<usize>> {
    let l = find_home(home_hop).ok_or(ESRCH)?;
    if node != l.inner.lock().node {
        return Err(EPERM);
    }
    let mut copy = KVec::with_capacity(data.len(), GFP_KERNEL)?;
    copy.extend_from_slice(data, GFP_KERNEL)?;
    l.queue(Request::Output {
        fd,
        data: copy,
        reply,
    })?;
    Ok(None)
}

/// `Input`: the process reads its standard input.
pub(crate) fn on_input(
    node: u32,
    home_hop: u64,
    id: u64,
    max: u32,
    reply: Reply,
) -> Result<Option<usize>> {
    let l = find_home(home_hop).ok_or(ESRCH)?;
    let mut g = l.inner.lock();
    if node != g.node || g.phase != Phase::Started {
        return Err(EPERM);
    }
    if let Some((old_id, _, old)) = g.input.take() {
        if old_id != id {
            old.send(Err(EAGAIN));
        }
    }
    g.input = Some((id, max, reply));
    drop(g);
    l.changed.notify_all();
    Ok(None)
}

/// Whether `node` may speak for distributed process `space` homed here (queue, wake,
/// cancel on its futexes): this node, or one that runs a thread of it.
pub(crate) fn speaks_for(node: u32, space: u64) -> bool {
    node == engine().node
        || engine().leaving.lock().iter().any(|l| {
            if !l.thread {
                return false;
            }
            let g = l.inner.lock();
            g.process == space && g.node == node
        })
}

/// `Exited`: the process (or moved thread) ended; the home stand-in ends with the same
/// status (`group`: the whole process ended).
pub(crate) fn on_exited(node: u32, home_hop: u64, status: i32, group: bool) -> Result<usize> {
    let l = find_home(home_hop).ok_or(ESRCH)?;
    let mut g = l.inner.lock();
    if node != g.node {
        return Err(EPERM);
    }
    g.exit_status = Some(status);
    g.exit_group = group;
    if l.thread {
        pr_info!(
            "thread {} ended on node {} with status {:#x}{}\n",
            l.pid,
            node,
            status,
            if group { ", ending its process" } else { "" }
        );
    }
    drop(g);
    l.changed.notify_all();
    Ok(0)
}

/// `Moved`: the process now runs on `node`.
pub(crate) fn on_moved(
    node: u32,
    home_hop: u64,
    job: u64,
    from_node: u32,
    from_hop: u64,
) -> Result<usize> {
    let l = find_home(home_hop).ok_or(ESRCH)?;
    let mut g = l.inner.lock();
    if g.phase != Phase::Started && !(g.phase == Phase::Committed && node == l.dest) {
        return Err(ESRCH);
    }
    // A moved thread's task ends on every node it leaves (its pages come from here).
    if from_hop != l.hop && !l.thread {
        g.relays.push((from_node, from_hop), GFP_KERNEL)?;
    }
    g.node = node;
    g.job = job;
    Ok(0)
}

/// Releases the relays of the process whose home hop is `home_hop` (it needs them no
/// more: it exited, or it came home and pulled every page in).
pub(crate) fn release_relays(home_hop: u64) {
    let Some(l) = find_home(home_hop) else {
        return;
    };
    let relays = core::mem::take(&mut l.inner.lock().relays);
    for (node, hop) in relays.iter() {
        let _ = link::tell(*node, &MigMsg::Finished { hop: *hop }, 2000);
    }
}

/// `Finished`: the process has exited; a relay stand-in may go.
pub(crate) fn on_finished(node: u32, hop: u64) -> Result<usize> {
    let l = find(hop).ok_or(ESRCH)?;
    if l.is_home || node != l.home.node {
        return Err(EPERM);
    }
    l.inner.lock().finished = true;
    l.changed.notify_all();
    Ok(0)
}

/// The entries of this node's process list.
pub(crate) fn list(out: &mut KVec<SsiProcInfo>) -> Result {
    for l in engine().leaving.lock().iter() {
        let g = l.inner.lock();
        let role = match g.phase {
            Phase::Started if l.is_home => SSI_PROC_HOME,
            Phase::Started => SSI_PROC_RELAY,
            Phase::Failed | Phase::Cancelled => continue,
            _ => SSI_PROC_LEAVING,
        };
        let mut p = SsiProcInfo {
            home_node: l.home.node,
            home_pid: l.home.pid,
            node: g.node,
            pid: l.pid,
            role,
            hops: l.hops,
            pages: l.served.load(Ordering::Relaxed),
            comm: [0; 16],
        };
        p.comm = l.comm;
        out.push(p, GFP_KERNEL)?;
    }
    list_home_threads(out)
}

/// The threads of distributed processes homed here that run here: with the entries of
/// the ones away, every thread of such a process is listed where it runs.
fn list_home_threads(out: &mut KVec<SsiProcInfo>) -> Result {
    let e = engine();
    // One thread away per process: its siblings are the process's other threads.
    let mut away: KVec<Task> = KVec::new();
    let mut leaders: KVec<usize> = KVec::new();
    for l in e.leaving.lock().iter() {
        if !(l.is_home && l.thread && l.inner.lock().phase == Phase::Started) {
            continue;
        }
        let leader = l.task.leader().as_ptr() as usize;
        if !leaders.contains(&leader) {
            leaders.push(leader, GFP_KERNEL)?;
            away.push(l.task.clone(), GFP_KERNEL)?;
        }
    }
    let here = e.node;
    for t in away.iter() {
        for s in crate::ffi::siblings(t, crate::distribute::MAX_THREADS)?.iter() {
            // A stand-in (its thread is away, listed above) or a thread leaving.
            if e.leaving
                .lock()
                .iter()
                .any(|l| l.task.as_ptr() == s.as_ptr())
            {
                continue;
            }
            let pid = s.pid();
            out.push(
                SsiProcInfo {
                    home_node: here,
                    home_pid: pid,
                    node: here,
                    pid,
                    role: SSI_PROC_RUNNING,
                    hops: 0,
                    pages: 0,
                    comm: s.comm(),
                },
                GFP_KERNEL,
            )?;
        }
    }
    Ok(())
}
