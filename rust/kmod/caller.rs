// SPDX-License-Identifier: GPL-2.0

//! The process that called into a module (an ioctl of `/dev/ssi`): its user memory and
//! its privileges.
//!
//! `ssi_core` answers most ioctls and hands the migration ones to `ssi_migrate`; both
//! need the same two things, written once here.

use kernel::{
    bindings,
    uaccess::{UserPtr, UserSlice},
};

/// The `len` bytes of the caller's memory at `arg`, an ioctl argument.
pub(crate) fn user_slice(arg: usize, len: usize) -> UserSlice {
    UserSlice::new(UserPtr::from_addr(arg), len)
}

/// True if the caller may change the cluster (`CAP_SYS_ADMIN`): add or remove nodes,
/// migrate other users' processes, serve arrivals.
pub(crate) fn may_administer() -> bool {
    // SAFETY: `capable` only reads the current task's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}
