// SPDX-License-Identifier: GPL-2.0

//! The client side of `ssi_core`'s C ABI, compiled into every module that registers with
//! core (`ssi_rdma`, `ssi_gpio_bus`, `ssi_migrate`) by `#[path]` inclusion.
//!
//! Kernel-only code (it uses the `kernel` crate), so it lives in `rust/kmod/`, outside the
//! host crate. It expects the including module to have `crate::shared::{ioctl,
//! transport, migrate_abi, text}` (the `rust/src` files). Registrations are RAII: dropping one
//! unregisters, and only then frees the ops table and the context.

use core::ffi::{c_int, c_void};
use core::fmt;

use kernel::{prelude::*, sync::Arc};

use crate::shared::migrate_abi::{SsiMigrateOps, SSI_MIGRATE_OPS_VERSION};
pub(crate) use crate::shared::text::SliceWriter;
use crate::shared::transport::{
    make_name, SsiTransportOps, TransportKind, SSI_TRANSPORT_OPS_VERSION,
};

extern "C" {
    fn ssi_transport_register(ops: *const SsiTransportOps) -> c_int;
    fn ssi_transport_unregister(id: c_int);
    fn ssi_migrate_register(ops: *const SsiMigrateOps) -> c_int;
    fn ssi_migrate_unregister();
    fn ssi_core_node_id() -> u32;
}

/// This node's id, as configured in `ssi_core`.
pub(crate) fn node_id() -> u32 {
    // SAFETY: No preconditions: reads a module parameter of core, which is loaded
    // (this module depends on its symbols).
    unsafe { ssi_core_node_id() }
}

/// Something core can describe in `/proc/ssi`: a transport or the migration engine.
pub(crate) trait Describe: Send + Sync {
    /// Writes one line (no newline) describing the current state.
    fn describe(&self, out: &mut SliceWriter<'_>) -> fmt::Result;
}

/// A transport implementation.
pub(crate) trait Transport: Describe {
    /// What it is.
    const KIND: TransportKind;
    /// Its unique name (1 to 15 characters of `[a-z0-9_-]`).
    const NAME: &'static str;
}

/// Calls `T::describe` for core. `ctx` is the `Arc<T>` of the registration.
unsafe extern "C" fn describe_trampoline<T: Describe>(
    ctx: *mut c_void,
    buf: *mut u8,
    len: usize,
) -> isize {
    // SAFETY: `ctx` is `Arc::as_ptr` of the `Arc<T>` that the registration holds until
    // after it has unregistered, and core only calls while registered.
    let this = unsafe { &*ctx.cast::<T>() };
    // SAFETY: Core passes a buffer valid for writes of `len` bytes, used by nobody else
    // during the call.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    let mut w = SliceWriter::new(buf);
    match this.describe(&mut w) {
        // A slice is never longer than isize::MAX bytes.
        Ok(()) => w.len() as isize,
        Err(_) => EIO.to_errno() as isize,
    }
}

/// A transport registered with core; unregisters when dropped.
pub(crate) struct TransportRegistration<T: Transport> {
    // Read by core through the pointer handed to it; freed only after `drop` unregistered.
    _ops: KBox<SsiTransportOps>,
    id: c_int,
    ctx: Arc<T>,
}

// SAFETY: The ops table is written once before registration and only read afterwards
// (by core); `T` is `Send + Sync`.
unsafe impl<T: Transport> Send for TransportRegistration<T> {}
// SAFETY: As above: no interior mutability is reachable through `&Self`.
unsafe impl<T: Transport> Sync for TransportRegistration<T> {}

impl<T: Transport> TransportRegistration<T> {
    /// Registers `ctx` as transport `T::NAME` of the module `module`.
    pub(crate) fn new(module: &'static ThisModule, ctx: Arc<T>) -> Result<Self> {
        let ops = KBox::new(
            SsiTransportOps {
                version: SSI_TRANSPORT_OPS_VERSION,
                kind: T::KIND as u32,
                name: make_name(T::NAME),
                owner: module.as_ptr().cast(),
                ctx: Arc::as_ptr(&ctx).cast_mut().cast(),
                describe: Some(describe_trampoline::<T>),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `ops` is a valid table that stays at this heap address, unchanged,
        // until `drop` has unregistered it; `ctx` outlives it likewise.
        let id = unsafe { ssi_transport_register(&*ops) };
        if id < 0 {
            return Err(Error::from_errno(id));
        }
        Ok(Self { _ops: ops, id, ctx })
    }

    /// The transport's context.
    pub(crate) fn ctx(&self) -> &Arc<T> {
        &self.ctx
    }
}

impl<T: Transport> Drop for TransportRegistration<T> {
    fn drop(&mut self) {
        // SAFETY: `id` came from a successful registration that has not been undone.
        // After this returns core no longer uses `_ops` or `ctx`, which the field drops
        // free next.
        unsafe { ssi_transport_unregister(self.id) };
    }
}

/// The migration engine registered with core; unregisters when dropped.
pub(crate) struct MigrateRegistration<T: Describe> {
    // As in `TransportRegistration`.
    _ops: KBox<SsiMigrateOps>,
    ctx: Arc<T>,
}

// SAFETY: As for `TransportRegistration`.
unsafe impl<T: Describe> Send for MigrateRegistration<T> {}
// SAFETY: As for `TransportRegistration`.
unsafe impl<T: Describe> Sync for MigrateRegistration<T> {}

impl<T: Describe> MigrateRegistration<T> {
    /// Registers `ctx` as the node's migration engine.
    pub(crate) fn new(module: &'static ThisModule, ctx: Arc<T>) -> Result<Self> {
        let ops = KBox::new(
            SsiMigrateOps {
                version: SSI_MIGRATE_OPS_VERSION,
                flags: 0,
                owner: module.as_ptr().cast(),
                ctx: Arc::as_ptr(&ctx).cast_mut().cast(),
                describe: Some(describe_trampoline::<T>),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: As in `TransportRegistration::new`.
        let ret = unsafe { ssi_migrate_register(&*ops) };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        Ok(Self { _ops: ops, ctx })
    }

    /// The engine's context.
    pub(crate) fn ctx(&self) -> &Arc<T> {
        &self.ctx
    }
}

impl<T: Describe> Drop for MigrateRegistration<T> {
    fn drop(&mut self) {
        // SAFETY: Registered successfully in `new` and not yet unregistered.
        unsafe { ssi_migrate_unregister() };
    }
}
