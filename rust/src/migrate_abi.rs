// SPDX-License-Identifier: GPL-2.0

//! The registration ABI between `ssi_core` and `ssi_migrate`.
//!
//! `ssi_migrate` registers one [`SsiMigrateOps`] table through the exported C symbol
//! `ssi_migrate_register()`; core reports it in `/proc/ssi` and `SSI_IOC_STATUS`,
//! hands it the migration ioctls of `/dev/ssi` (numbers `SSI_IOC_MIGRATE_FIRST_NR` to
//! `_LAST_NR`) and the release of each open file, shows its `/proc/ssi/ps` text, and
//! tells it when a task opened private-memory region memory with `mprotect`.

use core::ffi::c_void;

/// Version of [`SsiMigrateOps`]; another version is refused.
pub const SSI_MIGRATE_OPS_VERSION: u32 = 3;

/// The ops table `ssi_migrate` registers with core (C ABI). Valid until
/// `ssi_migrate_unregister()` returns.
#[repr(C)]
pub struct SsiMigrateOps {
    /// Must be [`SSI_MIGRATE_OPS_VERSION`].
    pub version: u32,
    /// Reserved, zero.
    pub flags: u32,
    /// The registering module's `struct module *`.
    pub owner: *mut c_void,
    /// Passed back unchanged to every callback.
    pub ctx: *mut c_void,
    /// Like `SsiTransportOps::describe`: one line of state into `buf`.
    pub describe: Option<unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize) -> isize>,
    /// A migration ioctl on the open file `file` of `/dev/ssi` (an opaque identity:
    /// jobs are bound to the daemon's file). Process context; may sleep. Returns what
    /// the ioctl returns.
    pub ioctl: Option<
        unsafe extern "C" fn(ctx: *mut c_void, file: *const c_void, cmd: u32, arg: usize) -> isize,
    >,
    /// The open file `file` of `/dev/ssi` is being released.
    pub release: Option<unsafe extern "C" fn(ctx: *mut c_void, file: *const c_void)>,
    /// Writes the text of `/proc/ssi/ps` (at most `len` bytes) and returns its length.
    pub show_ps: Option<unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize) -> isize>,
    /// The calling task's `mprotect` made `[start, end)` of private-memory region memory
    /// readable or writable. Called in that task's context on its way back to user
    /// mode, after the system call; may sleep.
    pub opened: Option<unsafe extern "C" fn(ctx: *mut c_void, start: usize, end: usize)>,
}
