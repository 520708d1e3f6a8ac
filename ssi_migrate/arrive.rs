// SPDX-License-Identifier: GPL-2.0

//! The destination side of a hop: offers, the node's migration daemon
//! (`SSI_IOC_MIGRATE_ACCEPT`/`_RESTORE`/`_EXITED`), migrated memory that faults in from
//! the source, and the forwarded standard streams.
//!
//! The daemon (`ssictl daemon`, a root process) waits in `ACCEPT` for an offer; the
//! kernel pulls the snapshot in and hands the daemon what it needs to prepare a child:
//! credentials, command name, working directory and where the special mappings
//! (`[vdso]`, `[vvar]`) must be. The child moves those with `mremap`, takes the
//! credentials and calls `RESTORE`, which commits the hop with the source, replaces the
//! child's address space, descriptors 0-2 and registers, and returns into the process.
//! The daemon reaps the child and reports its wait status with `EXITED`, which goes to
//! the process's home.

use core::sync::atomic::{AtomicU64, Ordering};

use kernel::{
    alloc::KVVec,
    new_mutex,
    prelude::*,
    sync::{Arc, CondVarTimeoutResult, Mutex},
    time::msecs_to_jiffies,
    transmute::FromBytes,
    uaccess::{UserPtr, UserSlice},
};

use crate::ffi::{self, PagesFile, Task, Why};
use crate::link::{self, Wait};
use crate::shared::arith::ns_to_ms;
use crate::shared::ioctl::{
    SsiMigrateExit, SsiMigrateJob, SsiProcInfo, SsiSpecialMapping, SSI_MAX_SPECIAL,
    SSI_PROC_RUNNING,
};
use crate::shared::migrate_wire::{
    page_from_source, vmas_valid, HomeRef, MigMsg, MmInfo, Redirect, SnapshotLayout, VmaInfo,
    MAX_DATA, PAGE_DATA, PAGE_HEAD, PAGE_ZERO, VMA_SPECIAL,
};
use crate::{engine, errno};

/// How long a page fault may wait for the source.
const FAULT_TIMEOUT_MS: u32 = 5000;
/// How long a fault keeps trying while the source's node is down (a flapping link).
const FAULT_RETRY_MS: u32 = 6000;

/// Errors after which the source may answer again soon.
fn is_transient(e: Error) -> bool {
    [errno::ehostdown(), errno::enotconn(), ETIMEDOUT, EBUSY]
        .iter()
        .any(|t| t.to_errno() == e.to_errno())
}
/// Pages one fault asks the source for: the faulting one and those after it in the same
/// mapping that were not fetched yet (read-ahead), all requests in flight at once.
const FETCH_BATCH: usize = 16;
/// Read-ahead pages kept until they are faulted on (oldest dropped first).
const CACHE_PAGES: usize = 128;
/// Most offers waiting for a daemon at once (a flood of offers is refused, not queued).
const MAX_OFFERED: usize = 32;
/// Highest user address (x86_64 and 32-bit ARM both fit).
const USER_LIMIT: u64 = 1 << 47;
/// `SIGKILL`.
const SIGKILL: u32 = 9;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Offered, no daemon has it yet.
    Offered,
    /// A daemon took it (snapshot fetched), its child will restore it.
    Claimed,
    /// The child is turning into the process.
    Restoring,
    /// The process runs here.
    Running,
    /// It moved on; this node's copy is a relay stand-in.
    Moved,
    /// Over (exited or failed).
    Ended,
}

pub(crate) struct Inner {
    pub(crate) state: State,
    /// The daemon's open file (identity).
    daemon: usize,
    snapshot: KVVec<u8>,
    layout: Option<SnapshotLayout>,
    /// The process's VMAs on the source (for faults).
    vmas: KVVec<VmaInfo>,
    /// First bit of each VMA in `fetched`.
    first_bit: KVVec<usize>,
    /// One bit per page of the VMAs: fetched already (so read-ahead skips it).
    fetched: KVVec<u64>,
    /// One bit per page: faulted in here (its contents may differ from the source's).
    faulted: KVVec<u64>,
    /// Read-ahead pages not faulted on yet: (source address, contents).
    cache: KVec<(u64, KVec<u8>)>,
    task: Option<Task>,
    pid: u32,
    comm: [u8; 16],
    /// The next standard-input read's id (`Input`).
    input_id: u64,
    /// Seen as it exited (its standard streams closed): whether the process ended as a
    /// whole or only its thread did (the same wait status either way).
    group_exit: Option<bool>,
    /// A moved thread: the distributed process it belongs to (else 0).
    pub(crate) process: u64,
    /// Where its pages come from: the node it came from and the hop there, or, for a
    /// moved thread, its home stand-in (the node it came from may not keep its task).
    page_source: (u32, u64),
    /// A moved thread: its process's pid at home and its parent's there.
    home_pids: (u32, u32),
}

/// A process arriving at (or running on) this node.
#[pin_data]
pub(crate) struct Arrival {
    pub(crate) job: u64,
    pub(crate) source: u32,
    pub(crate) source_hop: u64,
    pub(crate) home: HomeRef,
    pub(crate) hops: u32,
    snapshot_len: usize,
    #[pin]
    pub(crate) inner: Mutex<Inner>,
    pub(crate) fetched: AtomicU64,
    /// Home again and every page pulled in (`SSI_IOC_MIGRATE_DRAIN`).
    pub(crate) drained: core::sync::atomic::AtomicBool,
}

/// Arrivals and the daemons waiting for them.
pub(crate) struct Table {
    pub(crate) arrivals: KVec<Arc<Arrival>>,
    pub(crate) daemons: KVec<usize>,
    pub(crate) closing: bool,
}

impl Table {
    pub(crate) const fn new() -> Self {
        Self {
            arrivals: KVec::new(),
            daemons: KVec::new(),
            closing: false,
        }
    }
}

impl Arrival {
    /// A moved thread's process's pid at its home, and its parent's there.
    pub(crate) fn home_pids(&self) -> (u32, u32) {
        self.inner.lock().home_pids
    }

    /// The process left this node again: its task here is now a relay stand-in.
    pub(crate) fn moved_away(&self) {
        let mut g = self.inner.lock();
        if g.state == State::Running {
            g.state = State::Moved;
        }
    }

    fn fail(&self, err: Error, text: &[u8]) {
        {
            let mut g = self.inner.lock();
            g.state = State::Ended;
            g.snapshot = KVVec::new();
        }
        let msg = MigMsg::Failed {
            hop: self.source_hop,
            errno: err.to_errno().unsigned_abs(),
            text: &text[..text.len().min(128)],
        };
        let _ = link::tell(self.source, &msg, 2000);
        engine().drop_arrival(self.job);
    }
}

fn find(job: u64) -> Option<Arc<Arrival>> {
    engine()
        .arrivals
        .lock()
        .arrivals
        .iter()
        .find(|a| a.job == job)
        .cloned()
}

/// The arrival record of a process running here, if `task` is one.
pub(crate) fn running_as(task: &Task) -> Option<Arc<Arrival>> {
    let t = engine().arrivals.lock();
    let found = t.arrivals.iter().find(|a| {
        let g = a.inner.lock();
        g.state == State::Running && g.task.as_ref().is_some_and(|x| x.as_ptr() == task.as_ptr())
    });
    found.cloned()
}

/// `Offer` from `node`: records the arrival for a daemon; answers its job id.
pub(crate) fn on_offer(
    node: u32,
    hop: u64,
    home: HomeRef,
    hops: u32,
    snapshot_len: u32,
    resp: &mut [u8],
) -> Result<usize> {
    let e = engine();
    if snapshot_len as usize > 1 << 20 || resp.len() < 8 {
        return Err(EINVAL);
    }
    let job = e.new_id();
    let a = Arc::pin_init(
        try_pin_init!(Arrival {
            job,
            source: node,
            source_hop: hop,
            home,
            hops,
            snapshot_len: snapshot_len as usize,
            inner <- new_mutex!(Inner {
                state: State::Offered,
                daemon: 0,
                snapshot: KVVec::new(),
                layout: None,
                vmas: KVVec::new(),
                first_bit: KVVec::new(),
                fetched: KVVec::new(),
                faulted: KVVec::new(),
                cache: KVec::new(),
                task: None,
                pid: 0,
                comm: [0; 16],
                input_id: 1,
                group_exit: None,
                process: 0,
                page_source: (node, hop),
                home_pids: (0, 0),
            }),
            fetched: AtomicU64::new(0),
            drained: core::sync::atomic::AtomicBool::new(false),
        }),
        GFP_KERNEL,
    )?;
    let mut t = e.arrivals.lock();
    if t.daemons.is_empty() || t.closing {
        return Err(errno::econnrefused());
    }
    let waiting = t
        .arrivals
        .iter()
        .filter(|a| a.inner.lock().state == State::Offered)
        .count();
    if waiting >= MAX_OFFERED {
        return Err(EBUSY);
    }
    t.arrivals.push(a, GFP_KERNEL)?;
    drop(t);
    e.offered.notify_all();
    resp[..8].copy_from_slice(&job.to_le_bytes());
    Ok(8)
}

/// `SSI_IOC_MIGRATE_ACCEPT`: waits for an offer, pulls its snapshot in, fills `job`.
pub(crate) fn accept(file: usize, job: &mut SsiMigrateJob) -> Result {
    let e = engine();
    let deadline = (job.timeout_ms != 0)
        .then(|| crate::clock::now_ns() + u64::from(job.timeout_ms) * 1_000_000);
    let a = {
        let mut t = e.arrivals.lock();
        if !t.daemons.contains(&file) {
            t.daemons.push(file, GFP_KERNEL)?;
        }
        loop {
            if t.closing {
                return Err(errno::eshutdown());
            }
            let found = t
                .arrivals
                .iter()
                .find(|a| a.inner.lock().state == State::Offered)
                .cloned();
            if let Some(a) = found {
                let mut g = a.inner.lock();
                g.state = State::Claimed;
                g.daemon = file;
                drop(g);
                break a;
            }
            let wait_ms = match deadline {
                Some(d) => {
                    let now = crate::clock::now_ns();
                    if now >= d {
                        return Err(ETIMEDOUT);
                    }
                    ns_to_ms(d - now).clamp(1, 1000) as u32
                }
                None => 1000,
            };
            if let CondVarTimeoutResult::Signal { .. } = e
                .offered
                .wait_interruptible_timeout(&mut t, msecs_to_jiffies(wait_ms))
            {
                return Err(ERESTARTSYS);
            }
        }
    };
    match fetch_snapshot(&a, job) {
        Ok(()) => Ok(()),
        Err(err) => {
            a.fail(err, b"fetching the snapshot failed");
            Err(err)
        }
    }
}

/// Pulls in the `len` bytes of the snapshot of hop `hop` of `node`.
pub(crate) fn pull_snapshot(node: u32, hop: u64, len: usize, wait: Wait) -> Result<KVVec<u8>> {
    let mut snap = KVVec::from_elem(0u8, len, GFP_KERNEL)?;
    let mut off = 0;
    while off < snap.len() {
        let want = (snap.len() - off).min(MAX_DATA);
        // Below 1 MiB: fits.
        let msg = MigMsg::Chunk {
            hop,
            offset: off as u32,
        };
        let n = link::call(node, &msg, &mut snap[off..off + want], 5000, wait)?;
        if n != want {
            return Err(errno::eproto());
        }
        off += n;
    }
    Ok(snap)
}

fn fetch_snapshot(a: &Arrival, job: &mut SsiMigrateJob) -> Result {
    let snap = pull_snapshot(a.source, a.source_hop, a.snapshot_len, Wait::Interruptible)?;
    let layout = SnapshotLayout::parse(&snap).map_err(|_| errno::eproto())?;
    let mm = MmInfo::from_bytes_copy(&snap[layout.mm..layout.vmas]).ok_or(errno::eproto())?;
    let mut vmas = KVVec::with_capacity(layout.nr_vmas, GFP_KERNEL)?;
    for i in 0..layout.nr_vmas {
        let at = layout.vmas + i * core::mem::size_of::<VmaInfo>();
        let v = VmaInfo::from_bytes_copy(&snap[at..at + core::mem::size_of::<VmaInfo>()])
            .ok_or(errno::eproto())?;
        vmas.push(v, GFP_KERNEL)?;
    }
    if !vmas_valid(&vmas, USER_LIMIT) {
        return Err(errno::eproto());
    }
    let mut j =
        SsiMigrateJob::from_bytes_copy(&snap[layout.job..layout.mm]).ok_or(errno::eproto())?;
    j.timeout_ms = 0;
    j.reserved = 0;
    j.job = a.job;
    j.home_node = a.home.node;
    j.home_pid = a.home.pid;
    j.source_node = a.source;
    j.nspecial = 0;
    j.special = [SsiSpecialMapping::default(); SSI_MAX_SPECIAL];
    for v in vmas.iter().filter(|v| v.flags & VMA_SPECIAL != 0) {
        let k = j.nspecial as usize;
        if k == SSI_MAX_SPECIAL {
            return Err(E2BIG);
        }
        j.special[k].start = v.start;
        j.special[k].end = v.end;
        j.special[k].name[..15].copy_from_slice(&v.name[..15]);
        j.nspecial += 1;
    }
    // NUL-terminated fields.
    j.comm[15] = 0;
    j.cwd[255] = 0;
    let mut first_bit = KVVec::with_capacity(vmas.len(), GFP_KERNEL)?;
    let mut bits = 0usize;
    for v in vmas.iter() {
        first_bit.push(bits, GFP_KERNEL)?;
        // Below 2^47 / 4096 pages in all.
        bits += ((v.end - v.start) >> 12) as usize;
    }
    let fetched = KVVec::from_elem(0u64, bits.div_ceil(64), GFP_KERNEL)?;
    let faulted = KVVec::from_elem(0u64, bits.div_ceil(64), GFP_KERNEL)?;
    let mut g = a.inner.lock();
    if mm.process != 0 {
        g.page_source = (a.home.node, a.home.hop);
        g.home_pids = (mm.home_tgid, mm.home_ppid);
    }
    g.comm = j.comm;
    g.snapshot = snap;
    g.layout = Some(layout);
    g.vmas = vmas;
    g.first_bit = first_bit;
    g.fetched = fetched;
    g.faulted = faulted;
    *job = j;
    Ok(())
}

/// `SSI_IOC_MIGRATE_RESTORE`: the calling child becomes the process of `job`.
pub(crate) fn restore(file: usize, job: u64) -> Result<isize> {
    let a = find(job).ok_or(ENOENT)?;
    {
        let mut g = a.inner.lock();
        if g.daemon != file {
            return Err(EPERM);
        }
        if g.state != State::Claimed {
            return Err(EINVAL);
        }
        g.state = State::Restoring;
    }
    // The process runs in one place at most: the source answers only while the hop is
    // still on, and then never resumes it.
    if let Err(err) = link::tell(a.source, &MigMsg::Commit { hop: a.source_hop }, 5000) {
        a.fail(err, b"the source gave the process up");
        return Err(errno::ecanceled());
    }
    let mut why = Why::new();
    match become_process(&a, &mut why) {
        Ok(()) => {}
        Err(err) => {
            let text = why.text();
            pr_err!(
                "job {:x}: restore failed ({:?}): {}\n",
                job,
                err,
                core::str::from_utf8(text).unwrap_or("?")
            );
            a.fail(err, text);
            // The child's own memory and descriptors may be gone: it cannot go back.
            let _ = Task::current().signal(SIGKILL);
            return Err(err);
        }
    }
    let me = Task::current();
    let pid = me.pid();
    {
        let mut g = a.inner.lock();
        g.state = State::Running;
        g.task = Some(me);
        g.pid = pid;
        g.snapshot = KVVec::new();
    }
    let here = engine().node;
    let _ = link::tell(
        a.source,
        &MigMsg::Started {
            hop: a.source_hop,
            pid,
            job,
        },
        5000,
    );
    let moved = MigMsg::Moved {
        home_hop: a.home.hop,
        node: here,
        job,
        from_node: a.source,
        from_hop: a.source_hop,
    };
    if let Err(e) = link::tell(a.home.node, &moved, 5000) {
        pr_warn!(
            "job {:x}: home node {} not told of the move: {:?}\n",
            job,
            a.home.node,
            e
        );
    }
    pr_info!(
        "pid {} of node {} runs here as pid {} (from node {}, hop {})\n",
        a.home.pid,
        a.home.node,
        pid,
        a.source,
        a.hops
    );
    Ok(0)
}

fn become_process(a: &Arc<Arrival>, why: &mut Why) -> Result {
    let (snap, layout) = {
        let mut g = a.inner.lock();
        (core::mem::take(&mut g.snapshot), g.layout.ok_or(EINVAL)?)
    };
    let mm = MmInfo::from_bytes_copy(&snap[layout.mm..layout.vmas]).ok_or(EINVAL)?;
    if mm.process != 0 && !engine().threads_may_move {
        why.set(format_args!(
            "this node cannot redirect futexes (no function tracer): threads cannot come here"
        ));
        return Err(errno::eopnotsupp());
    }
    let vmas: &[u8] = &snap[layout.vmas..layout.state];
    let mut list = KVVec::with_capacity(layout.nr_vmas, GFP_KERNEL)?;
    for c in vmas.chunks_exact(core::mem::size_of::<VmaInfo>()) {
        list.push(VmaInfo::from_bytes_copy(c).ok_or(EINVAL)?, GFP_KERNEL)?;
    }
    let ctx = Arc::into_raw(a.clone()).cast_mut().cast();
    // SAFETY: `ctx` is a reference that `ssi_migrate_ctx_put` releases.
    let pages = unsafe { PagesFile::new(ctx) }?;
    let mut ends = [core::ptr::null_mut(); 3];
    for (fd, end) in ends.iter_mut().enumerate() {
        let b = KBox::new(
            StdioEnd {
                arrival: a.clone(),
                // 0, 1 or 2.
                fd: fd as u8,
            },
            GFP_KERNEL,
        )?;
        *end = KBox::into_raw(b).cast::<core::ffi::c_void>();
    }
    // SAFETY: Each end is a `KBox<StdioEnd>` that `ssi_migrate_stdio_put` frees.
    unsafe { ffi::stdio_install(ends[0], ends[1], ends[2]) }?;
    pages.restore(&mm, &list, &snap[layout.state..], a.home.node, why)?;
    if mm.process != 0 {
        // A thread of a distributed process: its futex calls are cluster ones.
        ffi::dist_add(mm.process, a.home.node)
            .inspect_err(|_| why.set(format_args!("cannot record the process as distributed")))?;
        // Its ids at home: what getpid(), gettid() and getppid() answer here.
        ffi::dist_set_home_ids(mm.home_tgid, mm.home_ppid, a.home.pid);
        a.inner.lock().process = mm.process;
    }
    Ok(())
}

/// `SSI_IOC_MIGRATE_DRAIN`: pulls every page of a process that came back to its home
/// node (by reading each one through its address space, which faults it in: read-ahead
/// and redirects apply), so that it no longer needs another node. The relays stay
/// until the process exits: children it forks after coming home fault their own copies
/// of untouched pages in from the same source. Returns the pages read; stops early
/// (`ERESTARTSYS`) on a signal, or when the process ends or moves.
pub(crate) fn drain(file: usize, job: u64) -> Result<usize> {
    let a = find(job).ok_or(ENOENT)?;
    let (task, ranges) = {
        let g = a.inner.lock();
        if g.daemon != file {
            return Err(EPERM);
        }
        if g.state != State::Running || a.home.node != engine().node {
            return Err(EINVAL);
        }
        let task = Task::by_pid(g.pid).ok_or(ESRCH)?;
        let mut ranges = KVec::with_capacity(g.vmas.len(), GFP_KERNEL)?;
        for v in g.vmas.iter().filter(|v| v.flags & VMA_SPECIAL == 0) {
            ranges.push((v.start, v.end), GFP_KERNEL)?;
        }
        (task, ranges)
    };
    let mut page = KBox::new([0u8; 4096], GFP_KERNEL)?;
    let mut pages = 0;
    for (start, end) in ranges.iter() {
        let mut addr = *start;
        while addr < *end {
            if ffi::signal_pending() {
                return Err(ERESTARTSYS);
            }
            if a.inner.lock().state != State::Running {
                return Err(ESRCH);
            }
            // A page the process unmapped or moved since it came is simply not there.
            let _ = task.read_page(addr, &mut page);
            pages += 1;
            addr += 4096;
        }
    }
    a.drained.store(true, Ordering::Relaxed);
    pr_info!(
        "pid {} of node {} is home again: all {} pages local\n",
        a.home.pid,
        a.home.node,
        pages
    );
    Ok(pages)
}

/// `SSI_IOC_MIGRATE_EXITED`: the daemon's child of `job` ended with `status`.
pub(crate) fn exited(file: usize, req: &SsiMigrateExit) -> Result {
    let a = find(req.job).ok_or(ENOENT)?;
    let (state, group) = {
        let mut g = a.inner.lock();
        if g.daemon != file {
            return Err(EPERM);
        }
        let s = g.state;
        g.state = State::Ended;
        g.task = None;
        // Not seen (it closed its streams itself): only a moved thread ends with 0.
        (s, g.group_exit.unwrap_or(req.status != 0))
    };
    engine().drop_arrival(req.job);
    if state == State::Running {
        let msg = MigMsg::Exited {
            home_hop: a.home.hop,
            status: req.status,
            group,
        };
        if let Err(e) = link::tell(a.home.node, &msg, 5000) {
            pr_warn!(
                "exit of job {:x} not delivered to node {}: {:?}\n",
                req.job,
                a.home.node,
                e
            );
            return Err(e);
        }
    }
    Ok(())
}

/// The daemon's file is closed: offers it had claimed fail.
pub(crate) fn daemon_gone(file: usize) {
    let e = engine();
    let claimed: KVec<Arc<Arrival>> = {
        let mut t = e.arrivals.lock();
        t.daemons.retain(|d| *d != file);
        let mut v = KVec::new();
        for a in t.arrivals.iter() {
            let mut g = a.inner.lock();
            if g.daemon != file {
                continue;
            }
            if g.state == State::Claimed {
                let _ = v.push(a.clone(), GFP_KERNEL);
            }
            // The file's address may be reused by another open file: it must not
            // inherit this daemon's jobs.
            g.daemon = 0;
        }
        v
    };
    for a in claimed.iter() {
        a.fail(errno::econnreset(), b"the migration daemon exited");
    }
}

/// `MoveThread` from `node`: the local pid of job `job`, a moved thread running here
/// whose home is `node` (only its home may move it on).
pub(crate) fn moved_thread_pid(node: u32, job: u64) -> Result<u32> {
    let a = find(job).ok_or(ESRCH)?;
    if node != a.home.node {
        return Err(EPERM);
    }
    let g = a.inner.lock();
    if g.state != State::Running || g.process == 0 {
        return Err(ESRCH);
    }
    Ok(g.pid)
}

/// `Signal` from the home: deliver it to the process.
pub(crate) fn on_signal(node: u32, job: u64, signo: u32) -> Result<usize> {
    let a = find(job).ok_or(ESRCH)?;
    if node != a.home.node || signo == 0 || signo > 64 {
        return Err(EPERM);
    }
    let g = a.inner.lock();
    match (&g.task, g.state) {
        (Some(t), State::Running) => t.signal(signo).map(|_| 0),
        _ => Err(ESRCH),
    }
}

/// The entries of this node's process list.
pub(crate) fn list(out: &mut KVec<SsiProcInfo>) -> Result {
    let here = engine().node;
    for a in engine().arrivals.lock().arrivals.iter() {
        let g = a.inner.lock();
        if g.state != State::Running {
            continue;
        }
        out.push(
            SsiProcInfo {
                home_node: a.home.node,
                home_pid: a.home.pid,
                node: here,
                pid: g.pid,
                role: SSI_PROC_RUNNING,
                hops: a.hops,
                pages: a.fetched.load(Ordering::Relaxed),
                comm: g.comm,
            },
            GFP_KERNEL,
        )?;
    }
    Ok(())
}

/// Contents of the page at source address `addr` (see `ssi_mig_fault`).
///
/// # Safety
///
/// `ctx` is the pages file's `Arc<Arrival>` reference; `dst` is a writable page.
#[no_mangle]
unsafe extern "C" fn ssi_migrate_fetch(
    ctx: *mut core::ffi::c_void,
    addr: u64,
    anchor: u64,
    dst: *mut core::ffi::c_void,
) -> core::ffi::c_int {
    // SAFETY: Guaranteed by the caller: the file holds the reference during the fault.
    let a = unsafe { &*ctx.cast::<Arrival>() };
    // SAFETY: Guaranteed by the caller: a page of our own.
    let dst = unsafe { &mut *dst.cast::<[u8; 4096]>() };
    match fetch(a, addr, anchor, dst) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

impl Inner {
    /// The bit of the page at source address `addr` in `fetched`.
    fn bit(&self, addr: u64) -> Option<usize> {
        let i = self
            .vmas
            .partition_point(|v| v.start <= addr)
            .checked_sub(1)?;
        let v = &self.vmas[i];
        // Within the VMA: the page index fits.
        (addr < v.end).then(|| self.first_bit[i] + ((addr - v.start) >> 12) as usize)
    }

    fn is_fetched(&self, addr: u64) -> bool {
        self.bit(addr)
            .is_some_and(|b| self.fetched[b / 64] & (1 << (b % 64)) != 0)
    }

    fn mark_fetched(&mut self, addr: u64) {
        if let Some(b) = self.bit(addr) {
            self.fetched[b / 64] |= 1 << (b % 64);
        }
    }

    fn mark_faulted(&mut self, addr: u64) {
        if let Some(b) = self.bit(addr) {
            self.faulted[b / 64] |= 1 << (b % 64);
        }
    }
}

impl Arrival {
    /// Where the page at source address `src` (of a mapping anchored at `anchor`) is
    /// still exactly what the process left behind: never faulted in here, so the node
    /// it came from has it (asked there, not here).
    pub(crate) fn redirect(&self, src: u64, anchor: u64) -> Option<Redirect> {
        let g = self.inner.lock();
        if !page_from_source(&g.vmas, src, anchor) {
            return None;
        }
        let b = g.bit(src)?;
        (g.faulted[b / 64] & (1 << (b % 64)) == 0).then_some(Redirect {
            node: self.source,
            hop: self.source_hop,
            addr: src,
        })
    }
}

fn fetch(a: &Arrival, addr: u64, anchor: u64, dst: &mut [u8; 4096]) -> Result {
    // Which pages to ask for: this one, unless read-ahead brought it already, and the
    // following ones of its source VMA not fetched yet.
    let mut addrs: KVec<u64> = KVec::with_capacity(FETCH_BATCH, GFP_KERNEL)?;
    let (source, source_hop) = {
        let mut g = a.inner.lock();
        if !page_from_source(&g.vmas, addr, anchor) {
            dst.fill(0);
            return Ok(());
        }
        g.mark_faulted(addr);
        if let Some(i) = g.cache.iter().position(|(x, _)| *x == addr) {
            let (_, page) = g.cache.remove(i).map_err(|_| EINVAL)?;
            drop(g);
            dst.copy_from_slice(&page[..]);
            return Ok(());
        }
        let end = crate::shared::migrate_wire::vma_of(&g.vmas, addr).map_or(addr, |v| v.end);
        addrs.push(addr, GFP_KERNEL)?;
        let mut next = addr + 4096;
        while addrs.len() < FETCH_BATCH && next < end {
            if !g.is_fetched(next) {
                addrs.push(next, GFP_KERNEL)?;
            }
            next += 4096;
        }
        for x in addrs.iter() {
            g.mark_fetched(*x);
        }
        g.page_source
    };
    let mut msgs = KVec::with_capacity(addrs.len(), GFP_KERNEL)?;
    // On the heap: this runs inside page faults, maybe nested ones (a redirect followed
    // here reads another process's memory), where the kernel stack is short.
    let mut bufs: KVec<KVec<u8>> = KVec::with_capacity(addrs.len(), GFP_KERNEL)?;
    for x in addrs.iter() {
        msgs.push(
            MigMsg::Page {
                hop: source_hop,
                addr: *x,
            },
            GFP_KERNEL,
        )?;
        bufs.push(
            KVec::from_elem(0u8, PAGE_HEAD + 4096, GFP_KERNEL)?,
            GFP_KERNEL,
        )?;
    }
    let mut resps: KVec<&mut [u8]> = KVec::with_capacity(bufs.len(), GFP_KERNEL)?;
    for b in bufs.iter_mut() {
        resps.push(&mut b[..], GFP_KERNEL)?;
    }
    // A link that flaps under load (the failure detector reset it) comes back within a
    // second or two; only a source that stays away makes the fault fail.
    let deadline = crate::clock::now_ns() + u64::from(FAULT_RETRY_MS) * 1_000_000;
    let results = loop {
        let r = link::call_batch(
            source,
            &msgs,
            &mut resps,
            FAULT_TIMEOUT_MS,
            Wait::Uninterruptible,
        );
        let transient = match &r {
            Err(e) => is_transient(*e),
            Ok(res) => res
                .first()
                .is_some_and(|x| matches!(x, Err(e) if is_transient(*e))),
        };
        if !transient || crate::clock::now_ns() >= deadline {
            break r.inspect_err(|e| {
                pr_warn!("page {:#x} from node {}: {:?}: SIGBUS\n", addr, source, e)
            })?;
        }
        kernel::time::delay::fsleep(kernel::time::Delta::from_millis(100));
    };
    drop(resps);
    for (i, (x, r)) in addrs.iter().zip(results.iter()).enumerate() {
        let page = &mut bufs[i];
        let mut len = match *r {
            Ok(n) => n,
            Err(e) if i == 0 => {
                pr_warn!("page {:#x} from node {}: {:?}: SIGBUS\n", addr, source, e);
                return Err(e);
            }
            Err(_) => continue,
        };
        // Untouched where we asked: its contents are further back, maybe on this very
        // node (a process that came home reads what it left here in place).
        if let Some(redirect) = Redirect::decode(&page[..len]) {
            match follow(redirect, &mut page[..]) {
                Ok(n) => len = n,
                Err(e) if i == 0 => {
                    pr_warn!(
                        "page {:#x} via node {}: {:?}: SIGBUS\n",
                        addr,
                        redirect.node,
                        e
                    );
                    return Err(e);
                }
                Err(_) => continue,
            }
        }
        let contents = match page[0] {
            PAGE_ZERO => None,
            PAGE_DATA if len == PAGE_HEAD + 4096 => Some(&page[PAGE_HEAD..]),
            _ if i == 0 => return Err(errno::eproto()),
            _ => continue,
        };
        a.fetched.fetch_add(1, Ordering::Relaxed);
        if i == 0 {
            match contents {
                Some(c) => dst.copy_from_slice(c),
                None => dst.fill(0),
            }
            continue;
        }
        let mut copy = KVec::from_elem(0u8, 4096, GFP_KERNEL)?;
        if let Some(c) = contents {
            copy.copy_from_slice(c);
        }
        let mut g = a.inner.lock();
        if g.cache.len() == CACHE_PAGES {
            let _ = g.cache.remove(0);
        }
        g.cache.push((*x, copy), GFP_KERNEL)?;
    }
    Ok(())
}

/// Gets a page from where a redirect points (at most a few hops back); the answer goes
/// to `page` like a direct one. Returns its length.
fn follow(mut r: Redirect, page: &mut [u8]) -> Result<usize> {
    for _ in 0..8 {
        let len = if r.node == engine().node {
            crate::leave::read_left_page(r.hop, r.addr, page)?
        } else {
            let msg = MigMsg::Page {
                hop: r.hop,
                addr: r.addr,
            };
            link::call(
                r.node,
                &msg,
                &mut page[..],
                FAULT_TIMEOUT_MS,
                Wait::Uninterruptible,
            )?
        };
        match Redirect::decode(&page[..len]) {
            Some(next) => r = next,
            None => return Ok(len),
        }
    }
    Err(errno::eproto())
}

/// Releases the pages file's reference.
///
/// # Safety
///
/// `ctx` is an `Arc<Arrival>` reference from `Arc::into_raw`.
#[no_mangle]
pub(crate) unsafe extern "C" fn ssi_migrate_ctx_put(ctx: *mut core::ffi::c_void) {
    // SAFETY: Guaranteed by the caller.
    drop(unsafe { Arc::from_raw(ctx.cast::<Arrival>()) });
}

/// One of the process's forwarded standard streams.
struct StdioEnd {
    arrival: Arc<Arrival>,
    fd: u8,
}

/// # Safety
///
/// `ctx` is a `KBox<StdioEnd>` from `KBox::into_raw`.
#[no_mangle]
unsafe extern "C" fn ssi_migrate_stdio_put(ctx: *mut core::ffi::c_void) {
    // SAFETY: Guaranteed by the caller.
    drop(unsafe { KBox::from_raw(ctx.cast::<StdioEnd>()) });
}

/// A standard stream is closed as the process exits: records whether it ends as a whole
/// (`group`) or only its one thread ended.
///
/// # Safety
///
/// `ctx` is a live `StdioEnd` (the file holds it).
#[no_mangle]
unsafe extern "C" fn ssi_migrate_stdio_exiting(ctx: *mut core::ffi::c_void, group: bool) {
    // SAFETY: Guaranteed by the caller.
    let end = unsafe { &*ctx.cast::<StdioEnd>() };
    let mut g = end.arrival.inner.lock();
    // Only the process's own exit says anything (a child it spawned shares the streams),
    // whichever of its threads closes them last: the moved task, or one that it started
    // here (the moved task is its process's main thread here).
    let ours = g
        .task
        .as_ref()
        .is_some_and(|t| t.as_ptr() == Task::current().leader().as_ptr());
    if ours && g.group_exit.is_none() {
        g.group_exit = Some(group);
    }
}

/// `write()` on descriptor 1 or 2: the home stand-in writes it.
///
/// # Safety
///
/// `ctx` is a live `StdioEnd` (the file holds it); `buf` is a user pointer.
#[no_mangle]
unsafe extern "C" fn ssi_migrate_stdio_write(
    ctx: *mut core::ffi::c_void,
    buf: *const u8,
    len: usize,
) -> isize {
    // SAFETY: Guaranteed by the caller.
    let end = unsafe { &*ctx.cast::<StdioEnd>() };
    match write(end, buf as usize, len) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

fn write(end: &StdioEnd, buf: usize, len: usize) -> Result<usize> {
    let a = &end.arrival;
    let mut chunk = KVec::from_elem(0u8, MAX_DATA, GFP_KERNEL)?;
    let mut done = 0;
    while done < len {
        let n = (len - done).min(MAX_DATA);
        UserSlice::new(UserPtr::from_addr(buf + done), n)
            .reader()
            .read_slice(&mut chunk[..n])?;
        let msg = MigMsg::Output {
            home_hop: a.home.hop,
            fd: end.fd,
            data: &chunk[..n],
        };
        let mut resp = [0u8; 8];
        match link::call(a.home.node, &msg, &mut resp, 60_000, Wait::Interruptible) {
            Ok(4) => {
                let wrote = u32::from_le_bytes([resp[0], resp[1], resp[2], resp[3]]) as usize;
                done += wrote.min(n);
                if wrote < n {
                    break;
                }
            }
            Ok(_) => return Err(errno::eproto()),
            Err(e) if done > 0 => {
                let _ = e;
                break;
            }
            Err(e) if e.to_errno() == ERESTARTSYS.to_errno() => return Err(e),
            Err(e) if e.to_errno() == EPIPE.to_errno() => return Err(e),
            Err(_) => return Err(EIO),
        }
    }
    Ok(done)
}

/// `read()` on descriptor 0: the home stand-in reads its standard input.
///
/// # Safety
///
/// `ctx` is a live `StdioEnd` (the file holds it); `buf` is a user pointer.
#[no_mangle]
unsafe extern "C" fn ssi_migrate_stdio_read(
    ctx: *mut core::ffi::c_void,
    buf: *mut u8,
    len: usize,
) -> isize {
    // SAFETY: Guaranteed by the caller.
    let end = unsafe { &*ctx.cast::<StdioEnd>() };
    match read(end, buf as usize, len) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

fn read(end: &StdioEnd, buf: usize, len: usize) -> Result<usize> {
    let a = &end.arrival;
    if len == 0 {
        return Ok(0);
    }
    let mut data = KVec::from_elem(0u8, MAX_DATA, GFP_KERNEL)?;
    loop {
        // The id stays until a read succeeds: a read interrupted here and tried again
        // picks up what the home read for the first attempt.
        let id = a.inner.lock().input_id;
        let msg = MigMsg::Input {
            home_hop: a.home.hop,
            id,
            // At most MAX_DATA.
            max: len.min(MAX_DATA) as u32,
        };
        match link::call(a.home.node, &msg, &mut data, 30_000, Wait::Interruptible) {
            Ok(n) => {
                a.inner.lock().input_id = id + 1;
                let n = n.min(len);
                UserSlice::new(UserPtr::from_addr(buf), n)
                    .writer()
                    .write_slice(&data[..n])?;
                return Ok(n);
            }
            Err(e) if e.to_errno() == ETIMEDOUT.to_errno() => continue,
            Err(e) if e.to_errno() == ERESTARTSYS.to_errno() => return Err(e),
            Err(_) => return Err(EIO),
        }
    }
}
