// SPDX-License-Identifier: GPL-2.0

//! The C-ABI entry points that `ssi_core` exports to the other ssi modules (exported by
//! `exports.c`), and safe wrappers around the ops tables those modules hand in.
//!
//! All raw-pointer handling of core lives here.

use core::ffi::{c_int, c_void};
use core::ptr::NonNull;

use kernel::prelude::*;

use crate::registry;
use crate::shared::ioctl::SSI_NAME_LEN;
use crate::shared::migrate_abi::SsiMigrateOps;
use crate::shared::transport::SsiTransportOps;

/// Calls a `describe` callback of an ops table.
fn call_describe(
    describe: Option<unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> isize>,
    ctx: *mut c_void,
    buf: &mut [u8],
) -> Result<usize> {
    let Some(describe) = describe else {
        return Ok(0);
    };
    // SAFETY: The registering module promised (see `SsiTransportOps`/`SsiMigrateOps`)
    // that `describe` and `ctx` stay valid until it unregisters, and callers hold the
    // registry lock, which unregistering takes. `buf` is valid for `buf.len()` bytes.
    let n = unsafe { describe(ctx, buf.as_mut_ptr(), buf.len()) };
    if n < 0 {
        return Err(EIO);
    }
    Ok((n as usize).min(buf.len()))
}

/// A transport's ops table, valid while it is registered.
pub(crate) struct TransportOpsRef(NonNull<SsiTransportOps>);

// SAFETY: The ops table is immutable while registered and only read; reading it from any
// thread is fine (the transport guarantees its callbacks may be called from any process
// context).
unsafe impl Send for TransportOpsRef {}

impl TransportOpsRef {
    fn ops(&self) -> &SsiTransportOps {
        // SAFETY: `ssi_transport_register`'s caller guarantees the table stays valid and
        // unchanged until it unregisters; `TransportOpsRef` lives in the registry only
        // until then.
        unsafe { self.0.as_ref() }
    }

    pub(crate) fn version(&self) -> u32 {
        self.ops().version
    }

    pub(crate) fn kind(&self) -> u32 {
        self.ops().kind
    }

    pub(crate) fn name(&self) -> [u8; SSI_NAME_LEN] {
        self.ops().name
    }

    /// Asks the transport for a one-line description of its state.
    pub(crate) fn describe(&self, buf: &mut [u8]) -> Result<usize> {
        call_describe(self.ops().describe, self.ops().ctx, buf)
    }
}

/// The migration engine's ops table, valid while it is registered.
pub(crate) struct MigrateOpsRef(NonNull<SsiMigrateOps>);

// SAFETY: As for `TransportOpsRef`.
unsafe impl Send for MigrateOpsRef {}

impl MigrateOpsRef {
    fn ops(&self) -> &SsiMigrateOps {
        // SAFETY: `ssi_migrate_register`'s caller guarantees validity until it unregisters.
        unsafe { self.0.as_ref() }
    }

    pub(crate) fn version(&self) -> u32 {
        self.ops().version
    }

    pub(crate) fn describe(&self, buf: &mut [u8]) -> Result<usize> {
        call_describe(self.ops().describe, self.ops().ctx, buf)
    }
}

fn to_c(r: Result) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Registers a transport. Returns its id (> 0) or a negative errno.
///
/// # Safety
///
/// `ops` is null or points to an [`SsiTransportOps`] that stays valid and unchanged until
/// `ssi_transport_unregister()` with the returned id has returned.
#[no_mangle]
unsafe extern "C" fn ssi_transport_register(ops: *const SsiTransportOps) -> c_int {
    let Some(ops) = NonNull::new(ops.cast_mut()) else {
        pr_err!("ssi_transport_register: null ops\n");
        return EINVAL.to_errno();
    };
    match registry::register_transport(TransportOpsRef(ops)) {
        // Ids are at most MAX_TRANSPORT_ID == i32::MAX, so this always converts.
        Ok(id) => c_int::try_from(id).unwrap_or_else(|_| EINVAL.to_errno()),
        Err(e) => e.to_errno(),
    }
}

/// Unregisters the transport with this id. After it returns core no longer uses the
/// transport's ops table.
#[no_mangle]
extern "C" fn ssi_transport_unregister(id: c_int) {
    match u32::try_from(id) {
        Ok(id) => registry::unregister_transport(id),
        Err(_) => pr_warn!("ssi_transport_unregister: invalid id {}\n", id),
    }
}

/// Registers the migration engine. Returns 0 or a negative errno.
///
/// # Safety
///
/// `ops` is null or points to an [`SsiMigrateOps`] that stays valid and unchanged until
/// `ssi_migrate_unregister()` has returned.
#[no_mangle]
unsafe extern "C" fn ssi_migrate_register(ops: *const SsiMigrateOps) -> c_int {
    let Some(ops) = NonNull::new(ops.cast_mut()) else {
        pr_err!("ssi_migrate_register: null ops\n");
        return EINVAL.to_errno();
    };
    to_c(registry::register_migrate(MigrateOpsRef(ops)))
}

/// Unregisters the migration engine.
#[no_mangle]
extern "C" fn ssi_migrate_unregister() {
    registry::unregister_migrate();
}

/// This node's id (the `node_id` parameter of `ssi_core`).
#[no_mangle]
extern "C" fn ssi_core_node_id() -> u32 {
    crate::node_id()
}
