// SPDX-License-Identifier: GPL-2.0

//! `/dev/ssi`: the control device that `ssictl` talks to with ioctls.
//!
//! Registered by the C shim `chardev.c` (so that open files pin the module); the
//! ioctls are answered here.

use core::ffi::{c_int, c_long, c_uint, c_ulong};

use kernel::{
    error::to_result,
    prelude::*,
    transmute::AsBytes,
    uaccess::{UserPtr, UserSlice},
};

use crate::registry;
use crate::shared::ioctl::{SsiStatus, SSI_IOC_STATUS};

extern "C" {
    fn ssi_core_chardev_register() -> c_int;
    fn ssi_core_chardev_unregister();
}

// SAFETY: `SsiStatus` and `SsiTransportInfo` are `#[repr(C)]`, made only of `u32`s and
// `u8` arrays, with no padding (their sizes are asserted in rust/src/ioctl.rs), so every
// byte is initialised.
unsafe impl AsBytes for SsiStatus {}

/// Owns the `/dev/ssi` registration; deregisters when dropped.
pub(crate) struct ControlDevice(());

impl ControlDevice {
    /// Creates `/dev/ssi` (mode 0600).
    pub(crate) fn register() -> Result<Self> {
        // SAFETY: No preconditions; only one `ControlDevice` exists (owned by the module).
        to_result(unsafe { ssi_core_chardev_register() })?;
        Ok(Self(()))
    }
}

impl Drop for ControlDevice {
    fn drop(&mut self) {
        // SAFETY: Registered in `register`. No ioctl can be running or start after
        // this: open files hold a reference on the module, so module exit (the only
        // place this runs) happens only once all of them are closed.
        unsafe { ssi_core_chardev_unregister() };
    }
}

fn ioctl(cmd: u32, arg: usize) -> Result<isize> {
    match cmd {
        SSI_IOC_STATUS => {
            let st = registry::status(crate::node_id());
            let mut w =
                UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<SsiStatus>()).writer();
            w.write(&st)?;
            Ok(0)
        }
        _ => Err(ENOTTY),
    }
}

/// ioctl handler of `/dev/ssi`, called by `chardev.c`.
#[no_mangle]
extern "C" fn ssi_core_ioctl(cmd: c_uint, arg: c_ulong) -> c_long {
    // `unsigned long` and `usize` have the same size on every Linux target.
    match ioctl(cmd, arg as usize) {
        Ok(v) => v as c_long,
        Err(e) => c_long::from(e.to_errno()),
    }
}
