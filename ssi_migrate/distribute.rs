// SPDX-License-Identifier: GPL-2.0

//! Making a process distributed: before one of its threads runs on another node, the
//! process's home keeps its private memory in regions.
//!
//! A thread that moves leaves its siblings running here, and every node must see one
//! address space. The regions of `ssi_core` already keep memory coherent page by page
//! (single writer, many readers, the directory at the region's home), so the process's
//! private writable mappings, and its private anonymous ones that may become writable
//! (`PROT_NONE` reservations of malloc arenas and thread stacks, which
//! `address_space.rs` opens everywhere when a thread opens them), become private-memory
//! regions homed here (`ssi_core/process_memory.rs`): each region adopts the mapping's
//! pages and replaces it at the same address, with the same protection. The destination
//! maps the same regions. Read-only file mappings (program text, libraries) stay as
//! they are and are copied lazily as before.
//!
//! The replacement must not race with the process's own accesses, so the moving thread
//! (in its task_work) first parks every sibling that still runs here: a task_work of
//! each sibling waits at a [`Rendezvous`] until the mappings are replaced (a sibling in
//! a blocking system call is interrupted and restarts it afterwards). Thread stand-ins
//! (siblings that run elsewhere) never return to user mode and are not waited for.
//! Anonymous memory mapped after this is shared memory from the start
//! (`address_space.rs`).

use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, Ordering};

use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{Arc, CondVar, Mutex},
    time::{delay::fsleep, msecs_to_jiffies, Delta},
};

use crate::core_client::private_memory;
use crate::ffi::{self, Task, Why};
use crate::leave::Phase;
use crate::shared::address_space::{Placement, MAX_PAGES};
use crate::shared::migrate_wire::VmaInfo;
use crate::{engine, errno};

/// Most threads of one process that can be parked.
pub(crate) const MAX_THREADS: usize = 4096;
/// Most private mappings of one process moved into regions at once.
const MAX_RANGES: usize = 1024;
/// How long the siblings may take to park.
const PARK_TIMEOUT_MS: u64 = 10_000;

/// One distribution at a time on this node: two threads of one process moving at
/// once would each wait for the other to park.
static DISTRIBUTING: AtomicBool = AtomicBool::new(false);

/// Where the siblings wait while their address space changes.
#[pin_data]
struct Rendezvous {
    #[pin]
    state: Mutex<Waiting>,
    #[pin]
    changed: CondVar,
}

struct Waiting {
    /// Siblings waiting.
    parked: usize,
    /// The mappings are replaced (or the attempt was given up): go on.
    released: bool,
}

impl Rendezvous {
    fn release(&self) {
        self.state.lock().released = true;
        self.changed.notify_all();
    }
}

/// A distributed process whose siblings (those that run here) are still parked: the
/// moving thread takes its snapshot meanwhile, so that nothing the snapshot records
/// changes under it. Dropping it lets the siblings go (on every path).
pub(crate) struct Parked {
    rv: Arc<Rendezvous>,
    /// The process's id (it names its futexes cluster-wide).
    pub(crate) process: u64,
}

impl Drop for Parked {
    fn drop(&mut self) {
        self.rv.release();
        DISTRIBUTING.store(false, Ordering::Release);
    }
}

/// In the moving thread's task_work: parks the siblings that run here, records the
/// process as distributed (its futex calls go to `cluster_futex.rs`, its forks are
/// refused), and moves every private mapping not in a region yet that a thread may write
/// into one homed here. The siblings stay parked until the returned [`Parked`] is dropped.
pub(crate) fn distribute(why: &mut Why) -> Result<Parked> {
    if DISTRIBUTING
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        why.set(format_args!(
            "another thread is moving from this node; try again"
        ));
        return Err(EAGAIN);
    }
    let rv = match Arc::pin_init(
        try_pin_init!(Rendezvous {
            state <- new_mutex!(Waiting {
                parked: 0,
                released: false,
            }),
            changed <- new_condvar!(),
        }),
        GFP_KERNEL,
    ) {
        Ok(rv) => rv,
        Err(e) => {
            DISTRIBUTING.store(false, Ordering::Release);
            return Err(e);
        }
    };
    let mut parked = Parked { rv, process: 0 };
    park_siblings(&parked.rv, why)?;
    // A sibling on its way out may still store its clear-tid word.
    ffi::wait_exiting_siblings().inspect_err(|_| {
        why.set(format_args!(
            "a sibling thread did not finish exiting within 2 s"
        ))
    })?;
    let home = engine().node;
    // Recorded before the first mapping changes: from then on the process has shared
    // memory, which a fork must not copy as shared.
    parked.process = match ffi::dist_current() {
        Some((id, _)) => id,
        None => {
            let id = engine().new_id();
            ffi::dist_add(id, home).inspect_err(|e| {
                why.set(format_args!(
                    "cannot record the process as distributed ({:?})",
                    e
                ))
            })?;
            id
        }
    };
    let ranges = ffi::private_ranges(MAX_RANGES, why)?;
    // Mappings that touch share one region (a malloc arena and the rest of its
    // reservation, a thread's stack and its guard page, `.data` and `.bss`): fewer
    // regions to keep, and one removal when they go.
    let mut first = 0;
    while first < ranges.len() {
        let base = ranges[first].start;
        let mut end = first + 1;
        while end < ranges.len()
            && ranges[end].start == ranges[end - 1].end
            && (ranges[end].end - base) >> 12 <= u64::from(MAX_PAGES)
        {
            end += 1;
        }
        share(home, &ranges[first..end], why)?;
        first = end;
    }
    Ok(parked)
}

/// Moves `group`, private mappings that touch (at most `MAX_PAGES` in all), into one
/// private-memory region homed here: the region adopts their pages and each is mapped
/// from it where it was, with its protection.
fn share(home: u32, group: &[ffi::PrivateRange], why: &mut Why) -> Result {
    let (Some(head), Some(tail)) = (group.first(), group.last()) else {
        return Ok(());
    };
    let base = head.start;
    let pages = u32::try_from((tail.end - base) >> 12).map_err(|_| E2BIG)?;
    let generation = private_memory::create(pages).inspect_err(|e| {
        why.set(format_args!(
            "no region for the memory at {:#x} ({:?})",
            base, e
        ))
    })?;
    for r in group.iter().filter(|r| !r.empty()) {
        // Within the region: the group is at most `MAX_PAGES` long.
        let offset = ((r.start - base) >> 12) as u32;
        let len = ((r.end - r.start) >> 12) as u32;
        if let Err(e) =
            private_memory::adopt(generation, offset, r.start as usize, len, r.unreadable())
        {
            let _ = private_memory::remove(generation);
            why.set(format_args!(
                "copying the memory at {:#x} failed ({:?})",
                r.start, e
            ));
            return Err(e);
        }
    }
    for r in group.iter() {
        if let Err(e) = private_memory::map(
            home,
            generation,
            pages,
            r.start as usize,
            (r.end - r.start) as usize,
            (r.start - base) >> 12,
            r.prot,
            Placement::Fixed.raw(),
        ) {
            // The private mapping may be gone already: the process cannot go on.
            let _ = private_memory::remove(generation);
            pr_err!(
                "pid {}: its memory at {:#x} could not be shared ({:?}); killing it\n",
                ffi::Task::current().pid(),
                r.start,
                e
            );
            let _ = Task::current().signal(9);
            why.set(format_args!("mapping the memory at {:#x} failed", r.start));
            return Err(e);
        }
    }
    Ok(())
}

/// Parks every sibling that runs here (and those they create meanwhile). A sibling
/// that stands in for a thread elsewhere never returns to user mode and is left alone;
/// one whose own hop is under way is parked too, but not waited for: it is in the
/// kernel until its hop is decided, and parks if the hop fails and it goes back.
fn park_siblings(rv: &Arc<Rendezvous>, why: &mut Why) -> Result {
    let mut queued: KVec<Task> = KVec::new();
    let mut waited = 0;
    loop {
        let mut added = 0;
        for t in ffi::siblings(&Task::current(), MAX_THREADS)? {
            if queued.iter().any(|q| q.as_ptr() == t.as_ptr()) {
                continue;
            }
            let role = role_of(&t);
            if role == Role::StandIn {
                continue;
            }
            ffi::hold_module()?;
            let ctx = Arc::into_raw(rv.clone()).cast_mut().cast::<c_void>();
            // SAFETY: `ctx` is a reference that `ssi_migrate_park` takes over.
            match unsafe { t.queue_park(ctx) } {
                Ok(()) => {
                    queued.push(t, GFP_KERNEL)?;
                    added += 1;
                    if role == Role::Running {
                        waited += 1;
                    }
                }
                Err(_) => {
                    // Exiting: it will not touch the memory again.
                    // SAFETY: Not queued: the reference is still ours.
                    drop(unsafe { Arc::from_raw(ctx.cast::<Rendezvous>()) });
                    ffi::module_put();
                }
            }
        }
        if added == 0 {
            return Ok(());
        }
        wait_parked(rv, waited, why)?;
    }
}

/// What a sibling is doing, for [`park_siblings`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// It runs here (in user mode, or in a system call it returns from).
    Running,
    /// In its own hop's task_work, until the hop is decided.
    Leaving,
    /// It stands in for a thread that runs elsewhere.
    StandIn,
}

fn role_of(t: &Task) -> Role {
    let leaving = engine().leaving.lock();
    match leaving.iter().find(|l| l.task.as_ptr() == t.as_ptr()) {
        None => Role::Running,
        Some(l) => match l.inner.lock().phase {
            Phase::Committed | Phase::Started => Role::StandIn,
            _ => Role::Leaving,
        },
    }
}

/// Waits until `want` siblings are parked.
fn wait_parked(rv: &Rendezvous, want: usize, why: &mut Why) -> Result {
    let deadline = crate::clock::now_ns() + PARK_TIMEOUT_MS * 1_000_000;
    let mut g = rv.state.lock();
    while g.parked < want {
        if ffi::fatal_signal_pending() {
            why.set(format_args!("the process is being killed"));
            return Err(EINTR);
        }
        if crate::clock::now_ns() >= deadline {
            why.set(format_args!(
                "{} of {} sibling threads did not stop within 10 s",
                want - g.parked,
                want
            ));
            return Err(ETIMEDOUT);
        }
        if ffi::signal_pending() {
            drop(g);
            fsleep(Delta::from_millis(1));
            g = rv.state.lock();
            continue;
        }
        let _ = rv
            .changed
            .wait_interruptible_timeout(&mut g, msecs_to_jiffies(10));
    }
    Ok(())
}

/// A sibling's task_work: waits until the moving thread has replaced the mappings.
///
/// # Safety
///
/// `ctx` is a reference to a `Rendezvous` from `park_siblings` (passed to us), and the
/// module reference taken for it is ours to drop.
#[no_mangle]
unsafe extern "C" fn ssi_migrate_park(ctx: *mut c_void) {
    // SAFETY: Guaranteed by the caller: we own this reference now.
    let rv = unsafe { Arc::from_raw(ctx.cast::<Rendezvous>()) };
    {
        let mut g = rv.state.lock();
        g.parked += 1;
        rv.changed.notify_all();
        // Bounded by the moving thread, which releases on every path; a fatal signal
        // (the process is ending) leaves at once.
        while !g.released && !ffi::fatal_signal_pending() {
            if ffi::signal_pending() {
                drop(g);
                fsleep(Delta::from_millis(1));
                g = rv.state.lock();
                continue;
            }
            let _ = rv
                .changed
                .wait_interruptible_timeout(&mut g, msecs_to_jiffies(10));
        }
    }
    drop(rv);
    ffi::module_put();
}

/// For the snapshot's walk of the VMAs: the private-memory region `vma` maps, or 0; its
/// size in pages goes to `pages`.
///
/// # Safety
///
/// `vma` is a VMA of the calling process, whose mmap lock the caller holds; `pages` is
/// valid for writing.
#[no_mangle]
unsafe extern "C" fn ssi_migrate_region_of(vma: *mut c_void, pages: *mut u32) -> u64 {
    // SAFETY: Guaranteed by the caller.
    let (generation, n) = unsafe { private_memory::of_vma(vma) };
    // SAFETY: Guaranteed by the caller.
    unsafe { *pages = n };
    generation
}

/// For the restore: maps the private-memory region of `v` (homed on `home`) where the
/// process has it.
///
/// # Safety
///
/// `v` points to a valid `VmaInfo`.
#[no_mangle]
unsafe extern "C" fn ssi_migrate_map_region(home: u32, v: *const VmaInfo, prot: u32) -> i32 {
    // SAFETY: Guaranteed by the caller.
    let v = unsafe { &*v };
    let Some(len) = v.end.checked_sub(v.start) else {
        return EINVAL.to_errno();
    };
    match private_memory::map(
        home,
        v.region,
        v.region_pages,
        v.start as usize,
        len as usize,
        v.pgoff,
        prot,
        Placement::Fixed.raw(),
    ) {
        Ok(_) => 0,
        Err(e) => {
            if e == errno::ehostdown() {
                pr_warn!("the home of region {:x} is down\n", v.region);
            }
            e.to_errno()
        }
    }
}
