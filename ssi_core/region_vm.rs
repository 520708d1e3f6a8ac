// SPDX-License-Identifier: GPL-2.0

//! The entry points of `region_shim.c` into SSI regions: region file descriptors and
//! VMAs hold counted references to a [`Region`] (an `Arc` turned into a raw pointer),
//! and the VMA's `fault`/`pfn_mkwrite` land in `coherence::fault`. With
//! `region_file.rs` (the files and the caller's credentials, below the region table),
//! all of the unsafe code of SSI regions is here.

use core::ffi::{c_int, c_uint, c_ulong, c_void};

use kernel::{
    bindings,
    fs::{file::FileDescriptorReservation, File},
    page::Page,
    prelude::*,
    sync::{aref::ARef, Arc},
};

use crate::coherence::{self, Outcome};
use crate::region_file::owned_file;
use crate::regions::Region;

// Kernel structs pass by pointer only; the lint objects to zero-sized members that
// bindgen gives some of them (see docs/ARCHITECTURE.md, "Unsafe code").
#[allow(improper_ctypes)]
extern "C" {
    fn ssi_region_file_new(
        region: *mut c_void,
        writable: bool,
        out: *mut *mut bindings::file,
    ) -> c_int;
    fn ssi_region_insert(
        vmf: *mut bindings::vm_fault,
        page: *mut bindings::page,
        writable: bool,
    ) -> c_uint;
    fn ssi_core_hold() -> c_int;
    fn ssi_core_put();
}

/// A reserved file descriptor and the region file it will refer to: installed with
/// [`RegionFd::install`] (after the ioctl's answer is copied out), or both released on
/// drop.
pub(crate) struct RegionFd {
    reservation: FileDescriptorReservation,
    file: ARef<File>,
}

impl RegionFd {
    /// A new region file (holding a reference to `region`) and a reserved descriptor.
    pub(crate) fn new(region: Arc<Region>, writable: bool) -> Result<Self> {
        let reservation = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
        let file = region_file(region, writable)?;
        Ok(Self { reservation, file })
    }

    /// Makes the descriptor visible to the process; returns it.
    pub(crate) fn install(self) -> i32 {
        let fd = self.reservation.reserved_fd();
        self.reservation.fd_install(self.file);
        // Descriptors are below the `int` limit of the file table.
        fd as i32
    }
}

/// A new region file holding a reference to `region` (given up when it is closed), for
/// a descriptor or for the kernel to map (`process_memory.rs`).
pub(crate) fn region_file(region: Arc<Region>, writable: bool) -> Result<ARef<File>> {
    let raw = Arc::into_raw(region).cast_mut().cast::<c_void>();
    let mut file = core::ptr::null_mut();
    // SAFETY: `raw` is an owned reference; on success the file owns it (released in
    // `ssi_region_put` when the file is closed). `file` is a valid place.
    let rc = unsafe { ssi_region_file_new(raw, writable, &mut file) };
    // SAFETY: On success the shim created the file and handed us its reference.
    match unsafe { owned_file(file) } {
        Some(file) if rc == 0 => Ok(file),
        _ => {
            // SAFETY: The file was not created: the reference is still ours.
            drop(unsafe { Arc::from_raw(raw.cast::<Region>()) });
            Err(if rc < 0 {
                Error::from_errno(rc)
            } else {
                ENOMEM
            })
        }
    }
}

/// Borrows the region behind a pointer the shim passes.
///
/// # Safety
///
/// `region` came from `Arc::into_raw` in [`new_fd`] or [`ssi_region_mapping_get`] and
/// that reference is still held (by the file or VMA the shim got it from).
unsafe fn borrow<'a>(region: *mut c_void) -> &'a Region {
    // SAFETY: By the function's safety requirements the `Region` is alive for as long
    // as the caller's file or VMA, which outlives the callback.
    unsafe { &*region.cast::<Region>() }
}

/// A region file was closed.
#[no_mangle]
extern "C" fn ssi_region_put(region: *mut c_void) {
    // SAFETY: The file owned this reference (see `new_fd`); it is given up here.
    drop(unsafe { Arc::from_raw(region.cast::<Region>()) });
}

/// Takes a reference for a new VMA.
///
/// # Safety
///
/// As for [`borrow`].
unsafe fn take_reference(region: *mut c_void) {
    // SAFETY: The caller's file or VMA holds a reference, so the count is positive and
    // the `Arc` is valid; `ManuallyDrop` leaves that reference as it is.
    let held = core::mem::ManuallyDrop::new(unsafe { Arc::from_raw(region.cast::<Region>()) });
    // The VMA's own reference, given up in `ssi_region_mapping_put`.
    let _ = Arc::into_raw(Arc::clone(&held));
}

/// `mmap` of a region file: the new VMA takes a reference; returns the file it must
/// use as `vm_file` (null if it cannot be created).
#[no_mangle]
extern "C" fn ssi_region_map(region: *mut c_void) -> *mut bindings::file {
    // SAFETY: Called from the region file's mmap, which holds the file's reference.
    let r = unsafe { borrow(region) };
    let mut h = r.holdings.lock();
    match h.map() {
        Ok(b) => {
            let file = b.file().as_ptr();
            // SAFETY: As above.
            unsafe { take_reference(region) };
            file
        }
        Err(_) => core::ptr::null_mut(),
    }
}

/// A VMA of the region was duplicated (fork) or split: the copy takes a reference.
#[no_mangle]
extern "C" fn ssi_region_mapping_get(region: *mut c_void) {
    // SAFETY: The VMA being copied holds a reference.
    unsafe { borrow(region) }.holdings.lock().map_again();
    // SAFETY: As above.
    unsafe { take_reference(region) };
}

/// Whether the region a VMA maps is a distributed process's private memory.
#[no_mangle]
extern "C" fn ssi_region_is_private(region: *mut c_void) -> bool {
    // SAFETY: The VMA the shim got `region` from holds a reference.
    unsafe { borrow(region) }.is_private()
}

/// The calling task's `mprotect` opened `[start, end)` of private-memory region memory
/// (from a task_work, on its way back to user mode): the migration engine opens it in
/// the process's other address spaces.
#[no_mangle]
extern "C" fn ssi_region_opened(start: usize, end: usize) {
    if let Some(engine) = crate::registry::migrate_use() {
        engine.opened(start, end);
    }
}

/// A VMA of the region went away.
#[no_mangle]
extern "C" fn ssi_region_mapping_put(region: *mut c_void) {
    // SAFETY: The VMA's reference (taken in `ssi_region_map` or
    // `ssi_region_mapping_get`) is given up here.
    let r = unsafe { Arc::from_raw(region.cast::<Region>()) };
    let last = r.holdings.lock().unmap();
    // Released outside the lock (the VMA holds its own reference on the file).
    let gone = last.is_some();
    drop(last);
    // A distributed process's memory lives as long as its home maps it: the process
    // exited or unmapped it, so every node drops it (threads elsewhere were ended by
    // the process's exit, or touch memory the process unmapped).
    if gone && r.is_private() && r.record.home == crate::nodes::self_and_leader().0 {
        remove_later(r);
    }
}

/// Removes private-memory region `r` from a work item: a VMA's close runs with the mm
/// locked, maybe in the messaging context (a last `mmput`) or with a signal pending (a
/// killed process), where the other nodes must not be waited for.
fn remove_later(r: Arc<Region>) {
    // SAFETY: No preconditions.
    if unsafe { ssi_core_hold() } != 0 {
        return;
    }
    // SAFETY: `system_dfl_wq` is a C global, always available (the kernel crate does not
    // name it yet; `system_wq` is deprecated).
    let queue = unsafe { kernel::workqueue::Queue::from_raw(bindings::system_dfl_wq) };
    let spawned = queue.try_spawn(GFP_KERNEL, move || {
        crate::regions::remove_private(&r);
        drop(r);
        // SAFETY: The reference taken above, dropped as the work's last act.
        unsafe { ssi_core_put() };
    });
    if spawned.is_err() {
        pr_warn!("region removal: out of memory\n");
        // SAFETY: The reference taken above; nothing will run.
        unsafe { ssi_core_put() };
    }
}

/// May `pages` pages from `pgoff` be mapped?
#[no_mangle]
extern "C" fn ssi_region_check_range(region: *mut c_void, pgoff: c_ulong, pages: c_ulong) -> c_int {
    // SAFETY: Called from the region file's mmap, which holds the file's reference.
    let r = unsafe { borrow(region) };
    let end = (pgoff as u64).checked_add(pages as u64);
    match end {
        Some(end) if pages > 0 && end <= u64::from(r.record.pages) => 0,
        _ => EINVAL.to_errno(),
    }
}

fn vm_fault_code(outcome: Outcome) -> c_uint {
    match outcome {
        Outcome::Mapped(code) => code,
        Outcome::SigBus => bindings::vm_fault_reason_VM_FAULT_SIGBUS as c_uint,
    }
}

/// A fault on page `pgoff`, mapped into the faulting VMA of `vmf`.
///
/// # Safety
///
/// `region` as for [`borrow`]; `vmf` is the fault being handled.
unsafe fn handle(
    region: *mut c_void,
    vmf: *mut bindings::vm_fault,
    pgoff: c_ulong,
    write: bool,
    replace: bool,
) -> c_uint {
    // SAFETY: By the function's safety requirements.
    let r = unsafe { borrow(region) };
    // `usize` is 32 bits on some architectures: `.ok()` keeps the check on all of them.
    let Some(page) = u32::try_from(pgoff).ok() else {
        return bindings::vm_fault_reason_VM_FAULT_SIGBUS as c_uint;
    };
    let mut insert = |p: &Page, writable: bool| {
        // SAFETY: `vmf` is the fault being handled (valid during this call), and the
        // page stays allocated while it is mapped: it is only freed after its PTEs are
        // zapped, under the region lock that the caller of this closure holds.
        unsafe { ssi_region_insert(vmf, p.as_ptr().cast(), writable) }
    };
    vm_fault_code(coherence::fault(r, page, write, replace, &mut insert))
}

/// The VMA's `fault`: maps page `pgoff` of the region.
#[no_mangle]
extern "C" fn ssi_region_fault(
    region: *mut c_void,
    vmf: *mut bindings::vm_fault,
    pgoff: c_ulong,
    write: bool,
) -> c_uint {
    // SAFETY: Called from the VMA's fault handler: the VMA holds a reference, and `vmf`
    // is the fault being handled.
    unsafe { handle(region, vmf, pgoff, write, false) }
}

/// The VMA's `pfn_mkwrite`: a write to a read-only copy. The writable PTE is installed
/// here (replacing the read-only one), so the shim returns `VM_FAULT_NOPAGE` and the
/// kernel does not upgrade the old PTE itself.
#[no_mangle]
extern "C" fn ssi_region_mkwrite(
    region: *mut c_void,
    vmf: *mut bindings::vm_fault,
    pgoff: c_ulong,
) -> c_uint {
    // SAFETY: As in `ssi_region_fault`.
    unsafe { handle(region, vmf, pgoff, true, true) }
}
