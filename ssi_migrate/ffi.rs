// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers around `task_shim.c` (see `shim.h` for what each function does).

use core::ffi::{c_char, c_int, c_long, c_void};
use core::ptr::NonNull;

use kernel::{bindings, fs::File, prelude::*, sync::aref::ARef};

use crate::shared::ioctl::SSI_COMM_LEN;
use crate::shared::migrate_target::TargetFacts;
use crate::shared::migrate_wire::{MmInfo, VmaInfo};

/// A `struct file` (only handled by pointer).
#[repr(C)]
pub(crate) struct RawFile {
    _opaque: [u8; 0],
}

/// Length of a failure text from the shim (`SSI_WHY_LEN`).
pub(crate) const WHY_LEN: usize = 128;

/// `struct ssi_pinned`: a process that maps device memory.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Pinned {
    pub(crate) pid: u32,
    pub(crate) comm: [u8; SSI_COMM_LEN],
    /// The mapping, e.g. "/dev/gpiomem at 0xb6f00000".
    pub(crate) why: [u8; WHY_LEN],
}

// Kernel structs pass by pointer only; the lint objects to zero-sized members that
// bindgen gives some of them (see docs/ARCHITECTURE.md, "Unsafe code").
#[allow(improper_ctypes)]
extern "C" {
    fn ssi_mig_module_put();
    fn ssi_mig_task_pid(t: *mut bindings::task_struct) -> c_int;
    fn ssi_mig_task_comm(t: *mut bindings::task_struct, buf: *mut c_char);
    fn ssi_mig_target_facts(t: *mut bindings::task_struct, facts: *mut TargetFacts);
    fn ssi_mig_queue_work(t: *mut bindings::task_struct, ctx: *mut c_void) -> c_int;
    fn ssi_mig_capture(
        state: *mut c_void,
        cap: usize,
        mm: *mut MmInfo,
        vmas: *mut VmaInfo,
        max_vmas: u32,
        nr_vmas: *mut u32,
        node: u32,
        thread: bool,
        why: *mut c_char,
    ) -> isize;
    fn ssi_mig_hold_module() -> c_int;
    fn ssi_mig_install_standin_fd() -> c_int;
    fn ssi_mig_scan_pinned(out: *mut Pinned, max: u32) -> c_int;
    fn ssi_mig_fd_readable(fd: c_int) -> c_int;
    fn ssi_mig_identity(
        ids: *mut u32,
        umask: *mut u32,
        groups: *mut u32,
        max_groups: u32,
        ngroups: *mut u32,
        comm: *mut c_char,
        cwd: *mut c_char,
        cwd_len: usize,
    );
    fn ssi_mig_restore(
        pages: *mut RawFile,
        mm: *const MmInfo,
        vmas: *const VmaInfo,
        nr_vmas: u32,
        state: *const c_void,
        len: usize,
        home: u32,
        why: *mut c_char,
    ) -> c_int;
    fn ssi_mig_private_ranges(out: *mut PrivateRange, max: u32, why: *mut c_char) -> c_int;
    fn ssi_mig_task_leader(t: *mut bindings::task_struct) -> *mut bindings::task_struct;
    fn ssi_mig_siblings(
        of: *mut bindings::task_struct,
        out: *mut *mut bindings::task_struct,
        max: u32,
    ) -> c_int;
    fn ssi_mig_queue_park(t: *mut bindings::task_struct, ctx: *mut c_void) -> c_int;
    fn ssi_mig_thread_exit(status: c_int, group: bool) -> !;
    fn ssi_mig_reaper_stop();
    fn ssi_mig_dist_add(id: u64, home: u32) -> c_int;
    fn ssi_mig_dist_current(id: *mut u64, home: *mut u32) -> c_int;
    fn ssi_mig_hooks_install() -> c_int;
    fn ssi_mig_hooks_remove();
    fn ssi_mig_futex_read(uaddr: usize, val: *mut u32) -> c_int;
    fn ssi_mig_futex_cmpxchg(uaddr: usize, oldval: u32, newval: u32, old: *mut u32) -> c_int;
    fn ssi_mig_ns_until(deadline: i64, realtime: bool) -> i64;
    fn ssi_mig_pages_file(ctx: *mut c_void) -> *mut RawFile;
    fn ssi_mig_source_addr(
        t: *mut bindings::task_struct,
        addr: u64,
        src: *mut u64,
        anchor: *mut u64,
    ) -> c_int;
    fn ssi_mig_stdio_install(i: *mut c_void, o: *mut c_void, e: *mut c_void) -> c_int;
    fn ssi_mig_fput(file: *mut RawFile);
    fn ssi_mig_fatal_pending() -> c_int;
    fn ssi_mig_fatal_signo() -> c_int;
    fn ssi_mig_signal_pending() -> c_int;
    fn ssi_mig_dequeue_signal() -> c_int;
    fn ssi_mig_dequeue_thread_signal() -> c_int;
    fn ssi_mig_wait_exiting_siblings() -> c_int;
    fn ssi_mig_dist_stop();
    fn ssi_mig_clear_notify();
    fn ssi_mig_fd_write(fd: c_int, buf: *const c_void, len: usize) -> isize;
    fn ssi_mig_fd_read(fd: c_int, buf: *mut c_void, len: usize) -> isize;
    fn ssi_mig_read_memory(t: *mut bindings::task_struct, addr: u64, buf: *mut c_void) -> isize;
    fn ssi_mig_signal_task(t: *mut bindings::task_struct, sig: c_int) -> c_int;
    fn ssi_mig_exit(status: c_int) -> !;
    fn ssi_mig_thread_resume(state: *const c_void, len: usize, why: *mut c_char) -> c_int;
    fn ssi_mig_check_state(state: *const c_void, len: usize, why: *mut c_char) -> c_int;
    fn ssi_mig_forget_thread_exit_effects();
    fn ssi_mig_dist_set_home_ids(tgid: u32, ppid: u32, tid: u32);
    fn ssi_mig_dist_kill(id: u64, tgid: u32, tid: u32, sig: c_int) -> c_int;
    fn ssi_mig_dist_home(id: u64, home: *mut u32) -> c_int;
    fn ssi_mig_dist_mms(
        id: u64,
        home_only: bool,
        out: *mut *mut bindings::mm_struct,
        max: u32,
    ) -> c_int;
    fn ssi_mig_mm_use(mm: *mut bindings::mm_struct);
    fn ssi_mig_mm_unuse(mm: *mut bindings::mm_struct);
    fn ssi_mig_mm_put(mm: *mut bindings::mm_struct);
    fn ssi_mig_mm_token() -> u64;
    fn ssi_mig_unmap_alike(addr: usize, len: usize) -> c_int;
    fn ssi_mig_file_regular(file: *mut bindings::file) -> bool;
    fn ssi_mig_file_name(
        file: *mut bindings::file,
        buf: *mut c_char,
        len: u32,
        size: *mut u64,
        mtime_ns: *mut u64,
    ) -> c_long;
    fn ssi_mig_open_alike(
        mm: *mut bindings::mm_struct,
        path: *const c_char,
        size: u64,
        mtime_ns: u64,
    ) -> *mut bindings::file;
    fn ssi_mig_map_file(
        file: *mut bindings::file,
        addr: usize,
        len: usize,
        prot: u32,
        placement: u32,
        pgoff: u64,
    ) -> c_long;
    fn ssi_mig_fill_from_file(
        file: *mut bindings::file,
        addr: usize,
        len: usize,
        pgoff: u64,
    ) -> c_int;
    fn ssi_mig_region_at(addr: usize) -> u64;
    fn ssi_mig_closed_region_in(addr: usize, len: usize, p: *mut RegionPiece) -> bool;
}

fn result(ret: isize) -> Result<usize> {
    if ret < 0 {
        // A negative errno from the shim.
        Err(Error::from_errno(ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// A failure text written by the shim.
pub(crate) struct Why(pub(crate) [u8; WHY_LEN]);

impl Why {
    pub(crate) fn new() -> Self {
        Self([0; WHY_LEN])
    }

    fn ptr(&mut self) -> *mut c_char {
        self.0.as_mut_ptr().cast()
    }

    /// Replaces the text (cut to fit, NUL-terminated).
    pub(crate) fn set(&mut self, args: core::fmt::Arguments<'_>) {
        let mut w = crate::shared::text::SliceWriter::new(&mut self.0[..WHY_LEN - 1]);
        let _ = core::fmt::write(&mut w, args);
        let n = w.len();
        self.0[n..].fill(0);
    }

    /// The text (up to its NUL).
    pub(crate) fn text(&self) -> &[u8] {
        let n = self.0.iter().position(|&b| b == 0).unwrap_or(WHY_LEN);
        &self.0[..n]
    }
}

/// A counted reference to a task, with what the migration engine does to one.
#[derive(Clone)]
pub(crate) struct Task(ARef<kernel::task::Task>);

impl Task {
    /// The task with this PID in the caller's PID namespace.
    pub(crate) fn by_pid(pid: u32) -> Option<Self> {
        crate::task::task_by_vpid(pid).map(Self)
    }

    /// The calling task.
    pub(crate) fn current() -> Self {
        Self(crate::task::current_task())
    }

    /// The main thread of its process.
    pub(crate) fn leader(&self) -> Self {
        // SAFETY: We hold a reference; the shim returns a counted reference.
        let t = unsafe { ssi_mig_task_leader(self.as_ptr()) };
        match NonNull::new(t.cast::<kernel::task::Task>()) {
            // SAFETY: A counted reference, which the `ARef` takes over.
            Some(t) => Self(unsafe { ARef::from_raw(t) }),
            None => Self(self.0.clone()),
        }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::task_struct {
        self.0.as_ptr()
    }

    /// Its PID in the caller's namespace.
    pub(crate) fn pid(&self) -> u32 {
        // SAFETY: We hold a reference.
        let pid = unsafe { ssi_mig_task_pid(self.as_ptr()) };
        pid.max(0) as u32
    }

    pub(crate) fn comm(&self) -> [u8; SSI_COMM_LEN] {
        let mut buf = [0u8; SSI_COMM_LEN];
        // SAFETY: We hold a reference; `buf` has TASK_COMM_LEN bytes.
        unsafe { ssi_mig_task_comm(self.as_ptr(), buf.as_mut_ptr().cast()) };
        buf
    }

    /// What decides whether the caller may migrate it (`migrate_target::check`).
    pub(crate) fn target_facts(&self) -> TargetFacts {
        let mut facts = TargetFacts::default();
        // SAFETY: We hold a reference; `facts` is a valid place of the C layout
        // (`struct ssi_target_facts`, both sides assert its size and offsets).
        unsafe { ssi_mig_target_facts(self.as_ptr(), &mut facts) };
        facts
    }

    /// Runs `ssi_migrate_task_work(ctx)` in the task's context (see the shim).
    ///
    /// # Safety
    ///
    /// `ctx` must be what `ssi_migrate_task_work` expects, and stay valid until it runs.
    pub(crate) unsafe fn queue_work(&self, ctx: *mut c_void) -> Result {
        // SAFETY: We hold a reference; `ctx` is guaranteed by the caller.
        kernel::error::to_result(unsafe { ssi_mig_queue_work(self.as_ptr(), ctx) })
    }

    /// One page of its memory at `addr`; returns the bytes read (fewer when unmapped).
    pub(crate) fn read_page(&self, addr: u64, buf: &mut [u8; 4096]) -> Result<usize> {
        // SAFETY: We hold a reference; `buf` has a page.
        result(unsafe { ssi_mig_read_memory(self.as_ptr(), addr, buf.as_mut_ptr().cast()) })
    }

    /// For an address of this process in memory that migrated here: its address on the
    /// node the process came from, and its mapping's anchor (see `task_shim.c`).
    pub(crate) fn source_addr(&self, addr: u64) -> Option<(u64, u64)> {
        let (mut src, mut anchor) = (0u64, 0u64);
        // SAFETY: We hold a reference; the out pointers are valid locals.
        let hit = unsafe { ssi_mig_source_addr(self.as_ptr(), addr, &mut src, &mut anchor) };
        (hit == 1).then_some((src, anchor))
    }

    pub(crate) fn signal(&self, sig: u32) -> Result {
        let sig = c_int::try_from(sig).map_err(|_| EINVAL)?;
        // SAFETY: We hold a reference.
        kernel::error::to_result(unsafe { ssi_mig_signal_task(self.as_ptr(), sig) })
    }
}

/// Pins this module while a task_work is queued; [`module_put`] drops it.
pub(crate) fn hold_module() -> Result {
    // SAFETY: No preconditions.
    kernel::error::to_result(unsafe { ssi_mig_hold_module() })
}

/// Drops [`hold_module`]'s reference; the last thing a task_work does.
pub(crate) fn module_put() {
    // SAFETY: Paired with a successful `hold_module`.
    unsafe { ssi_mig_module_put() }
}

/// Runs `work` from the system workqueue (work that waits for other nodes, which the
/// receive context must not), holding a module reference until it has run.
pub(crate) fn spawn_held(work: impl FnOnce() + Send + 'static) -> Result {
    // SAFETY: `system_dfl_wq` is a C global, always available (the kernel crate does not
    // name it yet; `system_wq` is deprecated).
    let queue = unsafe { kernel::workqueue::Queue::from_raw(bindings::system_dfl_wq) };
    spawn_held_on(queue, work)
}

/// [`spawn_held`] for work a thread is waiting for (a futex wake-up): on the high
/// priority workers, which a node busy computing runs at once rather than after the
/// time slices of its runnable threads.
pub(crate) fn spawn_held_urgent(work: impl FnOnce() + Send + 'static) -> Result {
    spawn_held_on(kernel::workqueue::system_highpri(), work)
}

fn spawn_held_on(queue: &kernel::workqueue::Queue, work: impl FnOnce() + Send + 'static) -> Result {
    hold_module()?;
    let spawned = queue.try_spawn(GFP_KERNEL, move || {
        work();
        module_put();
    });
    if spawned.is_err() {
        module_put();
        return Err(ENOMEM);
    }
    Ok(())
}

/// Snapshot of current (in its own context): arch state into `state`, returns its
/// length; mm facts and VMAs.
pub(crate) fn capture(
    state: &mut [u8],
    mm: &mut MmInfo,
    vmas: &mut [VmaInfo],
    node: u32,
    thread: bool,
    why: &mut Why,
) -> Result<(usize, usize)> {
    let mut nr = 0u32;
    // SAFETY: All buffers are valid for their lengths; the shim writes at most that.
    let n = result(unsafe {
        ssi_mig_capture(
            state.as_mut_ptr().cast(),
            state.len(),
            mm,
            vmas.as_mut_ptr(),
            vmas.len().try_into().unwrap_or(u32::MAX),
            &mut nr,
            node,
            thread,
            why.ptr(),
        )
    })?;
    Ok((n, nr as usize))
}

/// Credentials and the rest of the identity of current (see `SsiMigrateJob`).
pub(crate) struct Identity {
    pub(crate) ids: [u32; 8],
    pub(crate) umask: u32,
    pub(crate) groups: [u32; 32],
    pub(crate) ngroups: u32,
    pub(crate) comm: [u8; SSI_COMM_LEN],
    pub(crate) cwd: [u8; 256],
}

pub(crate) fn identity() -> Identity {
    let mut id = Identity {
        ids: [0; 8],
        umask: 0,
        groups: [0; 32],
        ngroups: 0,
        comm: [0; SSI_COMM_LEN],
        cwd: [0; 256],
    };
    // SAFETY: All pointers are to fields of the right sizes.
    unsafe {
        ssi_mig_identity(
            id.ids.as_mut_ptr(),
            &mut id.umask,
            id.groups.as_mut_ptr(),
            32,
            &mut id.ngroups,
            id.comm.as_mut_ptr().cast(),
            id.cwd.as_mut_ptr().cast(),
            256,
        )
    };
    id
}

/// The file that migrated memory maps; owns one reference of `ctx`.
pub(crate) struct PagesFile(NonNull<RawFile>);

impl PagesFile {
    /// # Safety
    ///
    /// `ctx` is a reference that `ssi_migrate_ctx_put` releases; it passes to the file
    /// (released with it), also on failure.
    pub(crate) unsafe fn new(ctx: *mut c_void) -> Result<Self> {
        // SAFETY: Guaranteed by the caller.
        let f = unsafe { ssi_mig_pages_file(ctx) };
        // Null when the file could not be made (the shim then released `ctx`).
        Ok(Self(NonNull::new(f).ok_or(ENOMEM)?))
    }

    /// Replaces current's address space and registers (see `ssi_mig_restore`); the
    /// process's private-memory regions are homed on `home`.
    pub(crate) fn restore(
        &self,
        mm: &MmInfo,
        vmas: &[VmaInfo],
        state: &[u8],
        home: u32,
        why: &mut Why,
    ) -> Result {
        // SAFETY: The file is ours; the buffers are valid for their lengths.
        kernel::error::to_result(unsafe {
            ssi_mig_restore(
                self.0.as_ptr(),
                mm,
                vmas.as_ptr(),
                vmas.len().try_into().map_err(|_| EINVAL)?,
                state.as_ptr().cast(),
                state.len(),
                home,
                why.ptr(),
            )
        })
    }
}

impl Drop for PagesFile {
    fn drop(&mut self) {
        // SAFETY: We own the file reference; VMAs hold their own.
        unsafe { ssi_mig_fput(self.0.as_ptr()) };
    }
}

/// Replaces current's descriptors 0-2 with forwarded streams.
///
/// # Safety
///
/// Each context is a reference that `ssi_migrate_stdio_put` releases; they pass to the
/// files (or are released on failure).
pub(crate) unsafe fn stdio_install(i: *mut c_void, o: *mut c_void, e: *mut c_void) -> Result {
    // SAFETY: Guaranteed by the caller.
    kernel::error::to_result(unsafe { ssi_mig_stdio_install(i, o, e) })
}

pub(crate) fn install_standin_fd() -> Result {
    // SAFETY: No preconditions: installs a descriptor in current's table.
    kernel::error::to_result(unsafe { ssi_mig_install_standin_fd() }.min(0))
}

/// The processes of this node that map device memory (at most `max`, in pid order).
pub(crate) fn scan_pinned(max: usize) -> Result<KVec<Pinned>> {
    let blank = Pinned {
        pid: 0,
        comm: [0; SSI_COMM_LEN],
        why: [0; WHY_LEN],
    };
    let mut v = KVec::new();
    v.resize(max, blank, GFP_KERNEL)?;
    let cap = u32::try_from(v.len()).map_err(|_| EINVAL)?;
    // SAFETY: `v` holds `cap` initialised entries the shim may overwrite; it writes at
    // most `cap`.
    let n = unsafe { ssi_mig_scan_pinned(v.as_mut_ptr(), cap) };
    v.truncate(usize::try_from(n).unwrap_or(0));
    Ok(v)
}

pub(crate) fn fatal_signal_pending() -> bool {
    // SAFETY: No preconditions.
    unsafe { ssi_mig_fatal_pending() != 0 }
}

/// The signal a pending group exit of current comes from (`SIGKILL` if none).
pub(crate) fn fatal_signo() -> u32 {
    // SAFETY: No preconditions.
    let s = unsafe { ssi_mig_fatal_signo() };
    if (1..=64).contains(&s) {
        s as u32
    } else {
        9
    }
}

pub(crate) fn signal_pending() -> bool {
    // SAFETY: No preconditions.
    unsafe { ssi_mig_signal_pending() != 0 }
}

/// Dequeues one signal of current; `None` when none is pending.
pub(crate) fn dequeue_signal() -> Option<u32> {
    // SAFETY: No preconditions.
    let sig = unsafe { ssi_mig_dequeue_signal() };
    (sig > 0).then_some(sig as u32)
}

/// A signal sent to the calling thread alone, never `SIGKILL`/`SIGSTOP` (see the shim).
pub(crate) fn dequeue_thread_signal() -> Option<u32> {
    // SAFETY: No pointer arguments; works on current under its siglock.
    let sig = unsafe { ssi_mig_dequeue_thread_signal() };
    (sig > 0).then_some(sig as u32)
}

/// Waits (at most 2 s) until no sibling of the caller is between starting to exit and
/// releasing its memory.
pub(crate) fn wait_exiting_siblings() -> Result {
    // SAFETY: No pointer arguments; works on current's thread group under RCU.
    kernel::error::to_result(unsafe { ssi_mig_wait_exiting_siblings() })
}

/// Waits for the reaper of distributed processes (module exit).
pub(crate) fn dist_stop() {
    // SAFETY: Called from module exit, once no distributed process is left.
    unsafe { ssi_mig_dist_stop() }
}

pub(crate) fn clear_notify() {
    // SAFETY: No preconditions.
    unsafe { ssi_mig_clear_notify() }
}

/// Writes to current's descriptor `fd`.
pub(crate) fn fd_write(fd: i32, data: &[u8]) -> Result<usize> {
    // SAFETY: `data` is valid for its length.
    result(unsafe { ssi_mig_fd_write(fd, data.as_ptr().cast(), data.len()) })
}

/// Reads from current's descriptor `fd`.
pub(crate) fn fd_read(fd: i32, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: `buf` is valid for its length.
    result(unsafe { ssi_mig_fd_read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

/// Whether reading current's descriptor `fd` would not block.
pub(crate) fn fd_readable(fd: i32) -> Result<bool> {
    // SAFETY: No pointer arguments.
    result(unsafe { ssi_mig_fd_readable(fd) } as isize).map(|r| r != 0)
}

/// `struct ssi_private_range`: a private mapping of the calling process that a thread
/// may write (now, or after an `mprotect`) and that is not in a region yet.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct PrivateRange {
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// `PROT_READ`/`PROT_WRITE`.
    pub(crate) prot: u32,
    /// `SSI_RANGE_*` of `shim.h`.
    flags: u32,
}

impl PrivateRange {
    /// No page of it was ever faulted in: there is nothing to copy.
    pub(crate) fn empty(&self) -> bool {
        self.flags & 1 != 0
    }

    /// Not readable (`PROT_NONE`): its pages are read as a debugger reads them.
    pub(crate) fn unreadable(&self) -> bool {
        self.flags & 2 != 0
    }
}

/// The caller's private writable mappings that are not in regions yet (see
/// `ssi_mig_private_ranges`).
pub(crate) fn private_ranges(max: usize, why: &mut Why) -> Result<KVec<PrivateRange>> {
    let mut out = KVec::from_elem(PrivateRange::default(), max, GFP_KERNEL)?;
    // SAFETY: `out` has `max` elements of the C layout; `why` has `WHY_LEN` bytes.
    let n = unsafe { ssi_mig_private_ranges(out.as_mut_ptr(), max.try_into()?, why.ptr()) };
    kernel::error::to_result(n.min(0))?;
    out.truncate(n as usize);
    Ok(out)
}

/// The sibling threads of `of` that are not exiting (at most `max`).
pub(crate) fn siblings(of: &Task, max: usize) -> Result<KVec<Task>> {
    // Both allocated first: once the shim took references, nothing may fail.
    let mut raw = KVec::from_elem(core::ptr::null_mut(), max, GFP_KERNEL)?;
    let mut out = KVec::with_capacity(max, GFP_KERNEL)?;
    // SAFETY: `of` is a live task (we hold a reference); `raw` has `max` places; the shim
    // fills `n` of them with counted references.
    let n = unsafe { ssi_mig_siblings(of.as_ptr(), raw.as_mut_ptr(), max.try_into()?) };
    kernel::error::to_result(n.min(0))?;
    for &t in &raw[..n as usize] {
        let Some(t) = NonNull::new(t.cast::<kernel::task::Task>()) else {
            continue;
        };
        // SAFETY: The shim took a reference for us, which the `ARef` takes over; `Task`
        // is a transparent wrapper of `struct task_struct`.
        let task = Task(unsafe { ARef::from_raw(t) });
        // Within the capacity reserved above: cannot fail.
        let _ = out.push(task, GFP_KERNEL);
    }
    Ok(out)
}

impl Task {
    /// Runs `ssi_migrate_park(ctx)` in the task's context (see the shim).
    ///
    /// # Safety
    ///
    /// `ctx` must be what `ssi_migrate_park` expects, and stay valid until it runs.
    pub(crate) unsafe fn queue_park(&self, ctx: *mut c_void) -> Result {
        // SAFETY: We hold a reference; `ctx` is guaranteed by the caller.
        kernel::error::to_result(unsafe { ssi_mig_queue_park(self.as_ptr(), ctx) })
    }
}

/// Ends the calling thread stand-in (its module reference goes to the shim's reaper):
/// only the thread, or with `group` the whole process with wait status `status`.
pub(crate) fn thread_exit(status: i32, group: bool) -> ! {
    // SAFETY: Called by a thread stand-in in its own context, holding no locks, with
    // the module reference of its task_work.
    unsafe { ssi_mig_thread_exit(status, group) }
}

/// Records the calling process as distributed process `id` homed on `home` (its futex
/// calls go to `cluster_futex.rs` from now on; the record pins the module until the
/// process is gone).
pub(crate) fn dist_add(id: u64, home: u32) -> Result {
    // SAFETY: No pointer arguments; works on current.
    kernel::error::to_result(unsafe { ssi_mig_dist_add(id, home) })
}

/// The distributed process the caller belongs to: its id and home.
pub(crate) fn dist_current() -> Option<(u64, u32)> {
    let (mut id, mut home) = (0u64, 0u32);
    // SAFETY: The out pointers are valid locals.
    (unsafe { ssi_mig_dist_current(&mut id, &mut home) } == 1).then_some((id, home))
}

/// Redirects the futex calls of distributed processes here and refuses their forks
/// (module init).
pub(crate) fn hooks_install() -> Result {
    // SAFETY: Called once, from module init.
    kernel::error::to_result(unsafe { ssi_mig_hooks_install() })
}

/// Undoes [`hooks_install`] (module exit; harmless if it failed).
pub(crate) fn hooks_remove() {
    // SAFETY: Called once, from module exit.
    unsafe { ssi_mig_hooks_remove() }
}

/// The caller's futex word at `uaddr`.
pub(crate) fn futex_read(uaddr: usize) -> Result<u32> {
    let mut v = 0u32;
    // SAFETY: `v` is a valid local; the shim reads user memory with uaccess.
    kernel::error::to_result(unsafe { ssi_mig_futex_read(uaddr, &mut v) })?;
    Ok(v)
}

/// Compare-and-exchange of the caller's futex word at `uaddr`; returns what was there.
pub(crate) fn futex_cmpxchg(uaddr: usize, old: u32, new: u32) -> Result<u32> {
    let mut was = 0u32;
    // SAFETY: `was` is a valid local; the shim writes user memory with uaccess.
    kernel::error::to_result(unsafe { ssi_mig_futex_cmpxchg(uaddr, old, new, &mut was) })?;
    Ok(was)
}

/// Nanoseconds from now to the absolute time `deadline` (on the realtime clock or the
/// monotonic one); negative once past.
pub(crate) fn ns_until(deadline: i64, realtime: bool) -> i64 {
    // SAFETY: No pointer arguments.
    unsafe { ssi_mig_ns_until(deadline, realtime) }
}

/// Stops the reaper of thread stand-ins and drops the fault pages still held (module
/// exit: no reference is left).
pub(crate) fn reaper_stop() {
    // SAFETY: No preconditions.
    unsafe { ssi_mig_reaper_stop() }
}

/// Ends current with wait status `status` (its parent sees it).
pub(crate) fn exit(status: i32) -> ! {
    // SAFETY: Called by the stand-in in its own context, holding no locks.
    unsafe { ssi_mig_exit(status) }
}

/// Whether the register state `state` of a snapshot can be resumed on this node.
pub(crate) fn check_state(state: &[u8], why: &mut Why) -> Result {
    // SAFETY: The buffers are valid for their lengths; the shim only reads `state`.
    kernel::error::to_result(unsafe {
        ssi_mig_check_state(state.as_ptr().cast(), state.len(), why.ptr())
    })
}

/// A moved thread's stand-in (current, in its task_work) becomes the thread again:
/// back in user mode it continues with the registers of `state`.
pub(crate) fn thread_resume(state: &[u8], why: &mut Why) -> Result {
    // SAFETY: The buffers are valid for their lengths; works on current.
    kernel::error::to_result(unsafe {
        ssi_mig_thread_resume(state.as_ptr().cast(), state.len(), why.ptr())
    })
}

/// Current (a moved thread's task on a node it left) ends without touching the memory
/// its process shares (no clear-tid wake, no robust-futex cleanup).
pub(crate) fn forget_thread_exit_effects() {
    // SAFETY: No arguments; works on current.
    unsafe { ssi_mig_forget_thread_exit_effects() }
}

/// Records, for the calling moved thread's distributed process here, its ids at home:
/// the process's pid `tgid`, its parent's `ppid` and the thread's own `tid` (for the
/// calling task; threads it starts here keep their own).
pub(crate) fn dist_set_home_ids(tgid: u32, ppid: u32, tid: u32) {
    // SAFETY: No pointer arguments; works on current.
    unsafe { ssi_mig_dist_set_home_ids(tgid, ppid, tid) }
}

/// Sends `signo` to thread `tid` of process `tgid` (or to the process when `tid` is 0),
/// which must be distributed process `id` homed here (`ESRCH` otherwise).
pub(crate) fn dist_kill(id: u64, tgid: u32, tid: u32, signo: u32) -> Result {
    let sig = c_int::try_from(signo).map_err(|_| EINVAL)?;
    // SAFETY: No pointer arguments.
    kernel::error::to_result(unsafe { ssi_mig_dist_kill(id, tgid, tid, sig) })
}

/// The home of distributed process `id` as this node knows it, if an address space of
/// it is here.
pub(crate) fn dist_home(id: u64) -> Option<u32> {
    let mut home = 0u32;
    // SAFETY: The out pointer is a valid local.
    (unsafe { ssi_mig_dist_home(id, &mut home) } == 1).then_some(home)
}

/// Most address spaces of one distributed process on a node.
const MAX_SPACES: usize = 64;

/// An address space of a distributed process, with a user reference.
///
/// # Invariants
///
/// `mm` is a live `mm_struct` on which this holds a user reference (`mmget`).
pub(crate) struct Space {
    mm: NonNull<bindings::mm_struct>,
}

// SAFETY: The reference may be dropped from any thread (`mmput` may sleep, and a
// `Space` is only dropped in process context).
unsafe impl Send for Space {}

impl Space {
    /// The address spaces of distributed process `id` here (only the home's own with
    /// `home_only`).
    pub(crate) fn of_process(id: u64, home_only: bool) -> Result<KVec<Space>> {
        let mut raw = [core::ptr::null_mut::<bindings::mm_struct>(); MAX_SPACES];
        // SAFETY: `raw` has room for `MAX_SPACES` pointers.
        let n = unsafe { ssi_mig_dist_mms(id, home_only, raw.as_mut_ptr(), MAX_SPACES as u32) };
        let mut out = KVec::new();
        for &mm in raw.iter().take(n.max(0) as usize) {
            // INVARIANT: The shim took a user reference on each pointer it returned.
            let space = Space {
                mm: NonNull::new(mm).ok_or(EINVAL)?,
            };
            out.push(space, GFP_KERNEL)?;
        }
        Ok(out)
    }

    /// Its token, as [`current_space_token`] gives it to the task that uses it.
    pub(crate) fn token(&self) -> u64 {
        self.mm.as_ptr() as u64
    }

    /// Runs `f` with this address space as the calling work item's own, as if one of
    /// its tasks ran it (`kthread_use_mm`). Only from a work item.
    pub(crate) fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        // SAFETY: By the type invariant the mm is live; the callers are work items, kernel
        // threads without an mm of their own.
        unsafe { ssi_mig_mm_use(self.mm.as_ptr()) };
        let r = f();
        // SAFETY: Used just above, by this thread.
        unsafe { ssi_mig_mm_unuse(self.mm.as_ptr()) };
        r
    }
}

impl Drop for Space {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this holds a user reference, given up here.
        unsafe { ssi_mig_mm_put(self.mm.as_ptr()) }
    }
}

/// The calling task's address space, as an opaque token (compared with
/// [`Space::token`] on this node only).
pub(crate) fn current_space_token() -> u64 {
    // SAFETY: No arguments; reads current's mm pointer.
    unsafe { ssi_mig_mm_token() }
}

/// The private-memory region the calling (or used) address space maps at `addr`, or 0.
pub(crate) fn region_at(addr: u64) -> u64 {
    let Ok(addr) = usize::try_from(addr) else {
        return 0;
    };
    // SAFETY: No pointer arguments; works on current's mm.
    unsafe { ssi_mig_region_at(addr) }
}

/// `struct ssi_region_piece`: part of a private-memory region mapping.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct RegionPiece {
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// The region's generation.
    pub(crate) region: u64,
    /// The region's page mapped at `start`.
    pub(crate) pgoff: u64,
    /// The region's size.
    pub(crate) region_pages: u32,
    reserved: u32,
}

/// The first private-memory region mapping of the calling (or used) address space in
/// `[addr, addr + len)` that is not readable and writable, clipped to the range.
pub(crate) fn closed_region_in(addr: u64, len: u64) -> Option<RegionPiece> {
    let (Ok(addr), Ok(len)) = (usize::try_from(addr), usize::try_from(len)) else {
        return None;
    };
    let mut p = RegionPiece::default();
    // SAFETY: `p` is a valid local of the C layout; works on current's mm.
    unsafe { ssi_mig_closed_region_in(addr, len, &mut p) }.then_some(p)
}

/// Unmaps the mappings of the calling (or used) address space in `[addr, addr + len)`
/// that every address space of a distributed process has alike (private-memory region
/// mappings, private file mappings), and nothing else.
pub(crate) fn unmap_alike(addr: u64, len: u64) -> Result {
    let (addr, len) = user_range(addr, len)?;
    // SAFETY: No pointer arguments; works on current's mm.
    kernel::error::to_result(unsafe { ssi_mig_unmap_alike(addr, len) })
}

fn user_range(addr: u64, len: u64) -> Result<(usize, usize)> {
    match (usize::try_from(addr), usize::try_from(len)) {
        (Ok(addr), Ok(len)) => Ok((addr, len)),
        _ => Err(EINVAL),
    }
}

/// The name by which other nodes open a file (`ssi_mig_file_name`).
pub(crate) struct FileName {
    /// The path from the process's root, NUL-terminated.
    path: KVec<u8>,
    pub(crate) size: u64,
    pub(crate) mtime_ns: u64,
}

impl FileName {
    /// The name of `file` from the calling task's root, at most `max` bytes long:
    /// `ENOENT` when it has none another node could open (not a regular file, deleted,
    /// outside the root), `ENAMETOOLONG`.
    pub(crate) fn of(file: &File, max: usize) -> Result<Self> {
        let mut path = KVec::from_elem(0u8, max + 1, GFP_KERNEL)?;
        let (mut size, mut mtime_ns) = (0, 0);
        // SAFETY: `file` is a live file; `path` has `max + 1` bytes; the outputs are
        // locals. At most a page: `max` fits `u32`.
        let n = unsafe {
            ssi_mig_file_name(
                file.as_ptr(),
                path.as_mut_ptr().cast(),
                (max + 1) as u32,
                &mut size,
                &mut mtime_ns,
            )
        };
        let n = result(n as isize)?;
        path.truncate(n + 1);
        Ok(Self {
            path,
            size,
            mtime_ns,
        })
    }

    /// A name received from another node (`path` without its NUL).
    pub(crate) fn received(path: &[u8], size: u64, mtime_ns: u64) -> Result<Self> {
        let mut p = KVec::with_capacity(path.len() + 1, GFP_KERNEL)?;
        p.extend_from_slice(path, GFP_KERNEL)?;
        p.push(0, GFP_KERNEL)?;
        Ok(Self {
            path: p,
            size,
            mtime_ns,
        })
    }

    /// The path, without its NUL.
    pub(crate) fn path(&self) -> &[u8] {
        &self.path[..self.path.len() - 1]
    }

    /// Opens it for a mapping in `space` as a task of it would (from its root, with its
    /// credentials): `ESTALE` if the file found is not the one named (another size or
    /// modification time).
    pub(crate) fn open_for(&self, space: &Space) -> Result<ARef<File>> {
        // SAFETY: The space's mm is live (type invariant); the path is NUL-terminated.
        let f = unsafe {
            ssi_mig_open_alike(
                space.mm.as_ptr(),
                self.path.as_ptr().cast(),
                self.size,
                self.mtime_ns,
            )
        };
        // An error pointer, or a file whose reference is ours.
        let f = kernel::error::from_err_ptr(f)?;
        let f = NonNull::new(f.cast::<File>()).ok_or(ENOENT)?;
        // SAFETY: The reference passes to the `ARef`; `File` wraps `struct file`.
        Ok(unsafe { ARef::from_raw(f) })
    }
}

/// Whether `file` is a regular file.
pub(crate) fn file_is_regular(file: &File) -> bool {
    // SAFETY: `file` is a live file.
    unsafe { ssi_mig_file_regular(file.as_ptr()) }
}

/// Maps `len` bytes of `file` from page `pgoff` privately at `addr` of the calling (or
/// used) address space with `prot`, placed as `placement` (`Placement::raw`) says;
/// where it went.
pub(crate) fn map_file(
    file: &File,
    addr: u64,
    len: u64,
    prot: u32,
    placement: u32,
    pgoff: u64,
) -> Result<u64> {
    let (addr, len) = user_range(addr, len)?;
    // SAFETY: `file` is a live file; works on current's mm.
    let at = unsafe { ssi_mig_map_file(file.as_ptr(), addr, len, prot, placement, pgoff) };
    result(at as isize).map(|at| at as u64)
}

/// Copies `len` bytes of `file` from page `pgoff` to the calling task's memory at
/// `addr` (writable there).
pub(crate) fn fill_from_file(file: &File, addr: u64, len: u64, pgoff: u64) -> Result {
    let (addr, len) = user_range(addr, len)?;
    // SAFETY: `file` is a live file; the copy checks the user range.
    kernel::error::to_result(unsafe { ssi_mig_fill_from_file(file.as_ptr(), addr, len, pgoff) })
}
