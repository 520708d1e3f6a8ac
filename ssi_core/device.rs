// SPDX-License-Identifier: GPL-2.0

//! `/dev/ssi`: the control device that `ssictl` talks to with ioctls.
//!
//! Registered by the C shim `chardev.c` (so that open files pin the module); the
//! ioctls are answered here.

use core::ffi::{c_int, c_long, c_uint, c_ulong};

use kernel::{
    bindings,
    error::to_result,
    prelude::*,
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice},
};

use crate::shared::ioctl::{
    SsiNodeAddr, SsiNodeList, SsiStatus, SSI_IOC_NODES, SSI_IOC_NODE_ADD, SSI_IOC_NODE_REMOVE,
    SSI_IOC_STATUS,
};
use crate::{nodes, registry};

extern "C" {
    fn ssi_core_chardev_register() -> c_int;
    fn ssi_core_chardev_unregister();
}

// SAFETY: `SsiStatus` and `SsiTransportInfo` are `#[repr(C)]`, made only of `u32`s and
// `u8` arrays, with no padding (their sizes are asserted in rust/src/ioctl.rs), so every
// byte is initialised.
unsafe impl AsBytes for SsiStatus {}
// SAFETY: As above: `#[repr(C)]`, only `u32`s and `u8`/`SsiNodeInfo` arrays, no padding
// (sizes asserted in rust/src/ioctl.rs).
unsafe impl AsBytes for SsiNodeList {}
// SAFETY: `#[repr(C)]` of integers and a byte array with no padding: every bit pattern is
// a valid value.
unsafe impl FromBytes for SsiNodeAddr {}

// SAFETY: All-zero bytes are a valid `SsiStatus` and `SsiNodeList`: they are made only of
// integers and byte arrays.
unsafe impl Zeroable for SsiStatus {}
// SAFETY: As above.
unsafe impl Zeroable for SsiNodeList {}

/// True if the caller may change the cluster configuration.
fn may_administer() -> bool {
    // SAFETY: `capable` only reads the current task's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}
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

fn user(arg: usize, len: usize) -> UserSlice {
    UserSlice::new(UserPtr::from_addr(arg), len)
}

fn ioctl(cmd: u32, arg: usize) -> Result<isize> {
    match cmd {
        SSI_IOC_STATUS => {
            // 1.1 KiB: built on the heap, not the kernel stack (8 KiB on ARM).
            let mut st = KBox::init(pin_init::zeroed::<SsiStatus>(), GFP_KERNEL)?;
            registry::status(crate::node_id(), &mut st);
            user(arg, size_of::<SsiStatus>()).writer().write(&*st)?;
        }
        SSI_IOC_NODE_ADD => {
            if !may_administer() {
                return Err(EPERM);
            }
            let req: SsiNodeAddr = user(arg, size_of::<SsiNodeAddr>()).reader().read()?;
            nodes::add(&req)?;
        }
        SSI_IOC_NODE_REMOVE => {
            if !may_administer() {
                return Err(EPERM);
            }
            let id: u32 = user(arg, size_of::<u32>()).reader().read()?;
            nodes::remove(id)?;
        }
        SSI_IOC_NODES => {
            // 1.5 KiB: built on the heap, not the kernel stack.
            let mut list = KBox::init(pin_init::zeroed::<SsiNodeList>(), GFP_KERNEL)?;
            nodes::list(&mut list);
            user(arg, size_of::<SsiNodeList>()).writer().write(&*list)?;
        }
        _ => return Err(ENOTTY),
    }
    Ok(0)
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
