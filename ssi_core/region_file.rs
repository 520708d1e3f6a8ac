// SPDX-License-Identifier: GPL-2.0

//! The kernel objects under SSI regions, wrapped for the region table and the
//! coherence protocol: the backing file whose mapping every VMA of a region shares (so a
//! page can be zapped everywhere at once), and the caller's credentials and fatal
//! signals. The C side is `region_shim.c`; the entry points it calls are in
//! `region_vm.rs`, above the region table.

use core::ffi::c_int;
use core::ptr::NonNull;

use kernel::{bindings, fs::File, prelude::*, sync::aref::ARef};

// Kernel structs pass by pointer only; the lint objects to zero-sized members that
// bindgen gives some of them (see docs/ARCHITECTURE.md, "Unsafe code").
#[allow(improper_ctypes)]
extern "C" {
    fn ssi_region_backing_new(out: *mut *mut bindings::file) -> c_int;
    fn ssi_region_zap(backing: *mut bindings::file, page: u32);
    fn ssi_region_zap_all(backing: *mut bindings::file);
    fn ssi_current_ids(uid: *mut u32, gid: *mut u32);
    fn ssi_current_in_group(gid: u32) -> bool;
    fn ssi_current_dying() -> bool;
    fn ssi_current_tgid() -> i32;
    fn ssi_current_kill_process();
}

/// Takes over the reference to a file that a shim function created.
///
/// # Safety
///
/// `file` is null or a `struct file *` whose reference the caller owns.
pub(crate) unsafe fn owned_file(file: *mut bindings::file) -> Option<ARef<File>> {
    let file = NonNull::new(file.cast::<File>())?;
    // SAFETY: The reference is the caller's and passes to the `ARef`; `File` is a
    // transparent wrapper of `struct file`.
    Some(unsafe { ARef::from_raw(file) })
}

/// The anonymous inode (and its file) whose `address_space` every VMA of a region on
/// this node maps, so that zapping a page reaches every process here.
pub(crate) struct Backing(ARef<File>);

impl Backing {
    /// The file, for the VMAs that map it (`vm_file`).
    pub(crate) fn file(&self) -> &File {
        &self.0
    }

    /// A new anonymous inode and file.
    pub(crate) fn new() -> Result<Self> {
        let mut f = core::ptr::null_mut();
        // SAFETY: `f` is a valid place for the result.
        kernel::error::to_result(unsafe { ssi_region_backing_new(&mut f) })?;
        // SAFETY: On success the shim created the file and handed us its reference.
        unsafe { owned_file(f) }.map(Self).ok_or(ENOMEM)
    }

    /// Zaps the PTEs of `page` in every VMA of the region on this node (and flushes
    /// the TLBs) before returning.
    pub(crate) fn zap(&self, page: u32) {
        // SAFETY: `self.0` is a live file (we hold a reference).
        unsafe { ssi_region_zap(self.0.as_ptr(), page) };
    }

    /// Zaps every page.
    pub(crate) fn zap_all(&self) {
        // SAFETY: As in `zap`.
        unsafe { ssi_region_zap_all(self.0.as_ptr()) };
    }
}

/// The caller's filesystem uid and gid (in the initial user namespace: ids are
/// cluster-wide).
pub(crate) fn current_ids() -> (u32, u32) {
    let (mut uid, mut gid) = (0, 0);
    // SAFETY: Both pointers are valid for writes; the function reads the current
    // task's credentials.
    unsafe { ssi_current_ids(&mut uid, &mut gid) };
    (uid, gid)
}

/// True if the caller is in group `gid` (primary or supplementary).
pub(crate) fn current_in_group(gid: u32) -> bool {
    // SAFETY: Reads the current task's credentials.
    unsafe { ssi_current_in_group(gid) }
}

/// True if the caller has a fatal signal pending (it is being killed).
pub(crate) fn current_dying() -> bool {
    // SAFETY: Reads the current task's pending signals.
    unsafe { ssi_current_dying() }
}

/// The calling process's id (for logs).
pub(crate) fn current_tgid() -> i32 {
    // SAFETY: No preconditions.
    unsafe { ssi_current_tgid() }
}

/// Ends the calling process with `SIGKILL` (every thread).
pub(crate) fn kill_current_process() {
    // SAFETY: No preconditions: signals current's thread group.
    unsafe { ssi_current_kill_process() }
}
