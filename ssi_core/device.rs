// SPDX-License-Identifier: GPL-2.0

//! `/dev/ssi`: the control device that `ssictl` talks to with ioctls.

use kernel::{
    fs::File,
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    prelude::*,
    transmute::AsBytes,
    uaccess::{UserPtr, UserSlice},
};

use crate::registry;
use crate::shared::ioctl::{SsiStatus, SSI_IOC_STATUS};

// SAFETY: `SsiStatus` and `SsiTransportInfo` are `#[repr(C)]`, made only of `u32`s and
// `u8` arrays, with no padding (their sizes are asserted in rust/src/ioctl.rs), so every
// byte is initialised.
unsafe impl AsBytes for SsiStatus {}

/// An open `/dev/ssi`. Holds no state yet: every request is answered from core's
/// global state.
pub(crate) struct SsiDevice;

#[vtable]
impl MiscDevice for SsiDevice {
    type Ptr = ();

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Self::Ptr> {
        Ok(())
    }

    fn ioctl(_dev: (), _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            SSI_IOC_STATUS => {
                let st = registry::status(crate::node_id());
                let mut w =
                    UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<SsiStatus>())
                        .writer();
                w.write(&st)?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }
}
