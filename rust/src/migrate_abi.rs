// SPDX-License-Identifier: GPL-2.0

//! The registration ABI between `ssi_core` and `ssi_migrate`.
//!
//! `ssi_migrate` registers one [`SsiMigrateOps`] table through the exported C symbol
//! `ssi_migrate_register()`; core then reports it in `/proc/ssi` and `SSI_IOC_STATUS`
//! and, in later versions, forwards migration requests to it.

use core::ffi::c_void;

/// Version of [`SsiMigrateOps`]; another version is refused.
pub const SSI_MIGRATE_OPS_VERSION: u32 = 1;

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
}
