// SPDX-License-Identifier: GPL-2.0

//! ssi_migrate: process migration for ssi. `ssictl migrate PID NODE` snapshots a task's
//! registers and memory layout, a fresh process on the destination takes them over, and
//! its memory faults in page by page from the node it came from; the process keeps its
//! PID, parent, terminal and exit status at home through a stand-in.
//!
//! - `leave.rs`: the source side (the migrate ioctl, the snapshot, the stand-in);
//! - `arrive.rs`: the destination side (the daemon's ioctls, faults, standard streams);
//! - `link.rs`: requests to other nodes' engines (core's services) and to this node;
//! - `ffi.rs` + `task_shim.c`: task, register, memory and file operations in C.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{Arc, CondVar, Mutex},
    transmute::FromBytes,
};

mod address_space;
mod arrive;
#[path = "../rust/kmod/caller.rs"]
mod caller;
#[path = "../rust/kmod/clock.rs"]
#[allow(dead_code)] // Each module reads the clock in the units it needs.
mod clock;
mod cluster_futex;
#[path = "../rust/kmod/core_client.rs"]
#[allow(dead_code)]
mod core_client;
mod distribute;
#[path = "../rust/kmod/errno.rs"]
#[allow(dead_code)]
mod errno;
mod ffi;
mod home_signals;
mod leave;
mod link;
#[path = "../rust/kmod/plain_data.rs"]
#[macro_use]
mod plain_data;
mod requests;
mod shared;
#[path = "../rust/kmod/task.rs"]
mod task;

use caller::{may_administer, user_slice};
use core_client::{Describe, MigrateRegistration, Service, ServiceRegistration, SliceWriter};
use link::Reply;
use shared::ioctl::{
    name_str, proc_role_label, SsiMigrate, SsiMigrateExit, SsiMigrateJob, SsiProcInfo, SsiProcList,
    SSI_IOC_MIGRATE, SSI_IOC_MIGRATE_ACCEPT, SSI_IOC_MIGRATE_DRAIN, SSI_IOC_MIGRATE_EXITED,
    SSI_IOC_MIGRATE_PS, SSI_IOC_MIGRATE_RESTORE, SSI_PROC_LIST_LEN, SSI_PROC_PINNED,
};
use shared::migrate_wire::MigMsg;
use shared::space_gate::SpaceGates;
use shared::text::U64;

module! {
    type: SsiMigrateModule,
    name: "ssi_migrate",
    authors: ["ssi developers"],
    description: "ssi single-system-image cluster: process migration",
    license: "GPL",
}

/// The migration engine of this node.
#[pin_data]
pub(crate) struct Engine {
    pub(crate) node: u32,
    /// Processes leaving or gone from here (with their stand-ins).
    #[pin]
    pub(crate) leaving: Mutex<KVec<Arc<leave::Leaving>>>,
    /// Processes arriving or running here, and the daemons.
    #[pin]
    pub(crate) arrivals: Mutex<arrive::Table>,
    /// Signalled when an offer comes or the module goes.
    #[pin]
    pub(crate) offered: CondVar,
    /// Futexes of distributed processes (their wait queues, here if homed here).
    #[pin]
    pub(crate) futexes: cluster_futex::Futexes,
    /// Home: changes of distributed processes' address spaces and hops of their
    /// threads, kept apart (`address_space.rs`).
    #[pin]
    pub(crate) space_gates: Mutex<SpaceGates>,
    /// Signalled when a change or hop ends.
    #[pin]
    pub(crate) gates_changed: CondVar,
    /// The futex calls of distributed processes come here: threads may move.
    pub(crate) threads_may_move: bool,
    next_id: AtomicU64,
    hops_out: AtomicU64,
}

/// The engine, for the C callbacks (faults, task_work, streams), which get no context
/// of it. Set before anything can call back, cleared after the last can.
static ENGINE: AtomicPtr<Engine> = AtomicPtr::new(core::ptr::null_mut());

/// The engine. Only called from paths that run while the module is registered.
pub(crate) fn engine() -> &'static Engine {
    let p = ENGINE.load(Ordering::Acquire);
    // SAFETY: `ENGINE` points into the module's `Arc<Engine>` from init until exit; the
    // callers (ioctls, service handlers, faults and streams of files and tasks that pin
    // the module) cannot run outside that window.
    unsafe { &*p }
}

impl Engine {
    /// A new id for a hop or a job: unique on this node, also across reloads.
    pub(crate) fn new_id(&self) -> u64 {
        (crate::clock::now_ns() << 8) ^ self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Forgets a finished hop.
    pub(crate) fn forget(&self, l: &leave::Leaving) {
        self.leaving.lock().retain(|x| !core::ptr::eq(&**x, l));
    }

    /// Forgets a finished arrival.
    pub(crate) fn drop_arrival(&self, job: u64) {
        let mut t = self.arrivals.lock();
        t.arrivals
            .retain(|a| a.job != job || a.inner.lock().state == arrive::State::Moved);
    }

    /// The processes this node knows of: migrations through it, then the processes
    /// pinned to it by device memory.
    fn procs(&self) -> Result<KVec<SsiProcInfo>> {
        let mut v = self.migrations()?;
        for p in ffi::scan_pinned(SSI_PROC_LIST_LEN)?.iter() {
            v.push(pinned_info(self.node, p), GFP_KERNEL)?;
        }
        Ok(v)
    }

    fn migrations(&self) -> Result<KVec<SsiProcInfo>> {
        let mut v = KVec::new();
        leave::list(&mut v)?;
        arrive::list(&mut v)?;
        Ok(v)
    }
}

impl Describe for Engine {
    fn describe(&self, out: &mut SliceWriter<'_>) -> fmt::Result {
        let away = self.leaving.lock().len();
        let here = self.arrivals.lock();
        write!(
            out,
            "engine on node {}, {} out, {} in, {} daemon(s)",
            self.node,
            away,
            here.arrivals.len(),
            here.daemons.len()
        )
    }
}

/// The engine's service: how the engines of other nodes reach this one.
impl Service for Engine {
    const ID: u16 = shared::service::ids::MIGRATE;
    const NAME: &'static str = "migrate";

    fn handle(&self, node: u32, token: u64, req: &[u8], resp: &mut [u8]) -> Result<Option<usize>> {
        requests::handle(node, Reply::Remote(token), req, resp)
    }
}

kernel_plain_data!(
    SsiMigrate,
    SsiMigrateJob,
    SsiMigrateExit,
    SsiProcInfo,
    SsiProcList,
    shared::migrate_wire::MmInfo,
    shared::migrate_wire::VmaInfo,
);

impl core_client::Engine for Engine {
    fn ioctl(&self, file: usize, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            SSI_IOC_MIGRATE => {
                let slice = user_slice(arg, size_of::<SsiMigrate>());
                let (mut reader, mut writer) = slice.reader_writer();
                let mut req: SsiMigrate = reader.read()?;
                req.message = [0; 128];
                let r = leave::migrate(&mut req);
                if r.is_ok() {
                    self.hops_out.fetch_add(1, Ordering::Relaxed);
                }
                writer.write(&req)?;
                r.map(|_| 0)
            }
            SSI_IOC_MIGRATE_ACCEPT => {
                if !may_administer() {
                    return Err(EPERM);
                }
                let slice = user_slice(arg, size_of::<SsiMigrateJob>());
                let (mut reader, mut writer) = slice.reader_writer();
                let mut job: SsiMigrateJob = reader.read()?;
                arrive::accept(file, &mut job)?;
                writer.write(&job)?;
                Ok(0)
            }
            SSI_IOC_MIGRATE_RESTORE => {
                let job: u64 = user_slice(arg, 8).reader().read()?;
                arrive::restore(file, job)
            }
            SSI_IOC_MIGRATE_DRAIN => {
                if !may_administer() {
                    return Err(EPERM);
                }
                let job: u64 = user_slice(arg, 8).reader().read()?;
                arrive::drain(file, job).map(|pages| pages as isize)
            }
            SSI_IOC_MIGRATE_EXITED => {
                if !may_administer() {
                    return Err(EPERM);
                }
                let req: SsiMigrateExit = user_slice(arg, size_of::<SsiMigrateExit>())
                    .reader()
                    .read()?;
                if req.reserved != 0 {
                    return Err(EINVAL);
                }
                arrive::exited(file, &req)?;
                Ok(0)
            }
            SSI_IOC_MIGRATE_PS => {
                let slice = user_slice(arg, size_of::<SsiProcList>());
                let (mut reader, mut writer) = slice.reader_writer();
                // Built in place: 3 KiB must stay off the stack (8 KiB on 32-bit ARM).
                // Only `node`, the first field, is input.
                let node: u32 = reader.read()?;
                let mut list = KBox::init(pin_init::zeroed::<SsiProcList>(), GFP_KERNEL)?;
                list.node = node;
                if list.node == self.node {
                    for (i, p) in self.procs()?.iter().take(SSI_PROC_LIST_LEN).enumerate() {
                        list.procs[i] = *p;
                        list.count += 1;
                    }
                } else {
                    let mut resp =
                        KVec::from_elem(0u8, shared::wire::MAX_SERVICE_DATA, GFP_KERNEL)?;
                    let n = link::call(
                        list.node,
                        &MigMsg::Ps,
                        &mut resp,
                        2000,
                        link::Wait::Interruptible,
                    )?;
                    for (i, c) in resp[..n]
                        .chunks_exact(size_of::<SsiProcInfo>())
                        .take(SSI_PROC_LIST_LEN)
                        .enumerate()
                    {
                        list.procs[i] = SsiProcInfo::from_bytes_copy(c).ok_or(EINVAL)?;
                        list.count += 1;
                    }
                }
                writer.write(&*list)?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }

    fn release(&self, file: usize) {
        arrive::daemon_gone(file);
    }

    fn opened(&self, start: usize, end: usize) {
        address_space::opened(start, end);
    }

    fn show_ps(&self, out: &mut SliceWriter<'_>) -> fmt::Result {
        writeln!(
            out,
            "{:<12} {:>4} {:>7} {:<8} {:>4} {:>8} command",
            "id", "node", "pid", "role", "hops", "pages"
        )?;
        let Ok(procs) = self.migrations() else {
            return Ok(());
        };
        for p in procs.iter() {
            ps_row(out, p)?;
            writeln!(out)?;
        }
        let Ok(pinned) = ffi::scan_pinned(SSI_PROC_LIST_LEN) else {
            return Ok(());
        };
        for p in pinned.iter() {
            ps_row(out, &pinned_info(self.node, p))?;
            writeln!(out, " (pinned by {})", name_str(&p.why).unwrap_or("?"))?;
        }
        Ok(())
    }
}

/// A process of `node` pinned there by device memory, as a process-list entry.
fn pinned_info(node: u32, p: &ffi::Pinned) -> SsiProcInfo {
    SsiProcInfo {
        home_node: node,
        home_pid: p.pid,
        node,
        pid: p.pid,
        role: SSI_PROC_PINNED,
        hops: 0,
        pages: 0,
        comm: p.comm,
    }
}

/// One `/proc/ssi/ps` row, without its line end.
fn ps_row(out: &mut SliceWriter<'_>, p: &SsiProcInfo) -> fmt::Result {
    write!(
        out,
        "{:<12} {:>4} {:>7} {:<8} {:>4} {:>8} {}",
        Id(p.home_node, p.home_pid),
        p.node,
        p.pid,
        proc_role_label(p.role),
        p.hops,
        U64(p.pages),
        name_str(&p.comm).unwrap_or("?")
    )
}

/// A cluster-wide process id, `node:pid`.
struct Id(u32, u32);

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 24];
        let mut w = SliceWriter::new(&mut buf);
        write!(w, "{}:{}", self.0, self.1)?;
        let n = w.len();
        f.pad(core::str::from_utf8(&buf[..n]).unwrap_or("?"))
    }
}

/// The redirect of distributed processes' futex calls and the refusal of their forks
/// (`distributed.c`), undone on drop.
struct DistributedHooks;

impl DistributedHooks {
    fn new() -> Result<Self> {
        ffi::hooks_install()?;
        Ok(Self)
    }
}

impl Drop for DistributedHooks {
    fn drop(&mut self) {
        ffi::hooks_remove();
    }
}

struct SsiMigrateModule {
    // Dropped in declaration order: the service goes, then the engine registration
    // (which waits for running ioctls), then the futex redirect (whose calls and
    // clean-up use the engine), then the engine.
    _service: ServiceRegistration<Engine>,
    _registration: MigrateRegistration<Engine>,
    _hooks: Option<DistributedHooks>,
    engine: Arc<Engine>,
}

impl kernel::Module for SsiMigrateModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let node = core_client::node_id();
        // Without it a moved thread's futexes could not work: threads then stay.
        let hooks = match DistributedHooks::new() {
            Ok(h) => Some(h),
            Err(e) => {
                pr_warn!(
                    "futexes cannot be redirected ({:?}): threads will not move\n",
                    e
                );
                None
            }
        };
        let threads_may_move = hooks.is_some();
        let engine = Arc::pin_init(
            try_pin_init!(Engine {
                node,
                leaving <- new_mutex!(KVec::new()),
                arrivals <- new_mutex!(arrive::Table::new()),
                offered <- new_condvar!(),
                futexes <- cluster_futex::Futexes::new()?,
                space_gates <- new_mutex!(SpaceGates::new()),
                gates_changed <- new_condvar!(),
                threads_may_move,
                next_id: AtomicU64::new(1),
                hops_out: AtomicU64::new(0),
            }),
            GFP_KERNEL,
        )?;
        ENGINE.store(Arc::as_ptr(&engine).cast_mut(), Ordering::Release);
        // Calls to this node's own engine go straight to the handler.
        link::serve_locally(requests::handle);
        let registration = MigrateRegistration::new(module, engine.clone())?;
        let service = ServiceRegistration::new(module, engine.clone())?;
        pr_info!("migration engine up on node {}\n", node);
        Ok(Self {
            _service: service,
            _registration: registration,
            _hooks: hooks,
            engine,
        })
    }
}

impl Drop for SsiMigrateModule {
    fn drop(&mut self) {
        // Daemons waiting in ACCEPT return, so that unregistering (which waits for
        // running ioctls) does not wait for them.
        self.engine.arrivals.lock().closing = true;
        self.engine.offered.notify_all();
        // Thread stand-ins and distributed processes held module references until they
        // were gone: none is left, but their reapers may still be returning.
        ffi::reaper_stop();
        ffi::dist_stop();
    }
}
