// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers around the ops tables that the other ssi modules register with core
//! (transports, the migration engine, services): what core calls them through.
//!
//! The tables arrive as raw pointers through the C ABI (`ffi.rs`); every dereference of
//! one, and every call through one, is here. The registry and the services table hold
//! these wrappers, below everything that uses them.

use core::ffi::c_void;
use core::ptr::NonNull;

use kernel::page::Page;
use kernel::prelude::*;

use crate::shared::ioctl::SSI_NAME_LEN;
use crate::shared::migrate_abi::SsiMigrateOps;
use crate::shared::service::{SsiServiceOps, SSI_SERVICE_DEFERRED};
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
// SAFETY: As above: shared references only read the immutable table.
unsafe impl Sync for TransportOpsRef {}

/// Turns a C return value into a `Result`.
fn from_c(ret: i32) -> Result {
    if ret < 0 {
        Err(Error::from_errno(ret))
    } else {
        Ok(())
    }
}

impl TransportOpsRef {
    /// Wraps a table handed in by a module.
    ///
    /// # Safety
    ///
    /// `ops` points to an [`SsiTransportOps`] that stays valid and unchanged until `ssi_transport_unregister()`
    /// for it has returned; the wrapper must not be used after that.
    pub(crate) unsafe fn new(ops: NonNull<SsiTransportOps>) -> Self {
        Self(ops)
    }

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

    /// The transport's `SSI_TRANSPORT_F_*` bits.
    pub(crate) fn flags(&self) -> u32 {
        self.ops().flags
    }

    pub(crate) fn name(&self) -> [u8; SSI_NAME_LEN] {
        self.ops().name
    }

    /// Asks the transport for a one-line description of its state.
    pub(crate) fn describe(&self, buf: &mut [u8]) -> Result<usize> {
        call_describe(self.ops().describe, self.ops().ctx, buf)
    }

    /// True if this is the table at `ptr`.
    pub(crate) fn is(&self, ptr: *const SsiTransportOps) -> bool {
        core::ptr::eq(self.0.as_ptr(), ptr)
    }

    // The callbacks below: the transport promised (`SsiTransportOps`) that they and
    // `ctx` stay valid while it is registered, and core only calls them through a
    // `registry::TransportUse`, which unregistering waits for.

    /// Keep `node` at `ipv4` (network order) and `port` connected.
    pub(crate) fn connect(&self, node: u32, ipv4: [u8; 4], port: u16) -> Result {
        let Some(f) = self.ops().connect else {
            return Err(crate::errno::eopnotsupp());
        };
        // SAFETY: See above; no pointer arguments.
        from_c(unsafe { f(self.ops().ctx, node, u32::from_ne_bytes(ipv4), port) })
    }

    /// Forget `node`.
    pub(crate) fn disconnect(&self, node: u32) {
        if let Some(f) = self.ops().disconnect {
            // SAFETY: See above; no pointer arguments.
            unsafe { f(self.ops().ctx, node) }
        }
    }

    /// Drop and re-establish the link to `node`.
    pub(crate) fn reset(&self, node: u32) {
        if let Some(f) = self.ops().reset {
            // SAFETY: See above; no pointer arguments.
            unsafe { f(self.ops().ctx, node) }
        }
    }

    /// Send one frame to `node`.
    pub(crate) fn send(&self, node: u32, frame: &[u8]) -> Result {
        let Some(f) = self.ops().send else {
            return Err(crate::errno::eopnotsupp());
        };
        // SAFETY: See above; `frame` is valid for reads of its length during the call.
        from_c(unsafe { f(self.ops().ctx, node, frame.as_ptr(), frame.len()) })
    }

    /// Let `node` read `page`; returns (address, key, cookie).
    pub(crate) fn expose_page(&self, node: u32, page: &Page) -> Result<(u64, u32, u64)> {
        let Some(f) = self.ops().expose_page else {
            return Err(crate::errno::eopnotsupp());
        };
        let (mut addr, mut rkey, mut cookie) = (0u64, 0u32, 0u64);
        // SAFETY: See above; `page` is a live page we hold a reference to during the
        // call (the transport takes its own), the out pointers are valid locals.
        from_c(unsafe {
            f(
                self.ops().ctx,
                node,
                page.as_ptr().cast(),
                &mut addr,
                &mut rkey,
                &mut cookie,
            )
        })?;
        Ok((addr, rkey, cookie))
    }

    /// Revoke an exposure.
    pub(crate) fn unexpose_page(&self, node: u32, cookie: u64) {
        if let Some(f) = self.ops().unexpose_page {
            // SAFETY: See above; no pointer arguments.
            unsafe { f(self.ops().ctx, node, cookie) }
        }
    }

    /// One-sided read of `len` bytes at `addr`/`rkey` on `node` into `page`.
    pub(crate) fn read_page(
        &self,
        node: u32,
        addr: u64,
        rkey: u32,
        page: &Page,
        len: u32,
        timeout_ms: u32,
    ) -> Result {
        let Some(f) = self.ops().read_page else {
            return Err(crate::errno::eopnotsupp());
        };
        // SAFETY: See above; `page` is a live page we hold during the call (the
        // transport takes its own reference while the read is outstanding).
        from_c(unsafe {
            f(
                self.ops().ctx,
                node,
                addr,
                rkey,
                page.as_ptr().cast(),
                len,
                timeout_ms,
            )
        })
    }
}

/// The migration engine's ops table, valid while it is registered.
pub(crate) struct MigrateOpsRef(NonNull<SsiMigrateOps>);

// SAFETY: As for `TransportOpsRef`.
unsafe impl Send for MigrateOpsRef {}

impl MigrateOpsRef {
    /// Wraps a table handed in by a module.
    ///
    /// # Safety
    ///
    /// `ops` points to an [`SsiMigrateOps`] that stays valid and unchanged until `ssi_migrate_unregister()`
    /// for it has returned; the wrapper must not be used after that.
    pub(crate) unsafe fn new(ops: NonNull<SsiMigrateOps>) -> Self {
        Self(ops)
    }

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

    /// Hands a migration ioctl of `file` to the engine.
    pub(crate) fn ioctl(&self, file: *const c_void, cmd: u32, arg: usize) -> isize {
        let Some(f) = self.ops().ioctl else {
            return crate::errno::eopnotsupp().to_errno() as isize;
        };
        // SAFETY: See `ops`; `file` is only an identity to the engine, `arg` is the
        // user's ioctl argument, which the engine validates.
        unsafe { f(self.ops().ctx, file, cmd, arg) }
    }

    /// Tells the engine that `file` is being released.
    pub(crate) fn release(&self, file: *const c_void) {
        if let Some(f) = self.ops().release {
            // SAFETY: See `ops`; `file` is only compared by the engine.
            unsafe { f(self.ops().ctx, file) }
        }
    }

    /// Tells the engine that the calling task's `mprotect` opened `[start, end)` of
    /// private-memory region memory.
    pub(crate) fn opened(&self, start: usize, end: usize) {
        if let Some(f) = self.ops().opened {
            // SAFETY: See `ops`; the range is only compared and passed on by the engine.
            unsafe { f(self.ops().ctx, start, end) }
        }
    }

    /// The engine's `/proc/ssi/ps` text, written into `buf`.
    pub(crate) fn show_ps(&self, buf: &mut [u8]) -> Result<usize> {
        call_describe(self.ops().show_ps, self.ops().ctx, buf)
    }
}

// SAFETY: As for `ServiceOpsRef`: immutable while registered, callable from any
// process context.
unsafe impl Sync for MigrateOpsRef {}

/// A service's ops table, valid while it is registered.
pub(crate) struct ServiceOpsRef(NonNull<SsiServiceOps>);

// SAFETY: The table is immutable while registered and only read; the service promises
// its handler may be called from any process context.
unsafe impl Send for ServiceOpsRef {}
// SAFETY: As above.
unsafe impl Sync for ServiceOpsRef {}

impl ServiceOpsRef {
    /// Wraps a table handed in by a module.
    ///
    /// # Safety
    ///
    /// `ops` points to an [`SsiServiceOps`] that stays valid and unchanged until `ssi_service_unregister()`
    /// for it has returned; the wrapper must not be used after that.
    pub(crate) unsafe fn new(ops: NonNull<SsiServiceOps>) -> Self {
        Self(ops)
    }

    fn ops(&self) -> &SsiServiceOps {
        // SAFETY: `ssi_service_register`'s caller guarantees validity until it
        // unregisters; `ServiceOpsRef` lives in the registry only until then, and calls
        // go through a counted use that unregistering waits for.
        unsafe { self.0.as_ref() }
    }

    pub(crate) fn version(&self) -> u32 {
        self.ops().version
    }

    pub(crate) fn service(&self) -> u16 {
        self.ops().service
    }

    pub(crate) fn flags(&self) -> u16 {
        self.ops().flags
    }

    pub(crate) fn has_handler(&self) -> bool {
        self.ops().handle.is_some()
    }

    pub(crate) fn name(&self) -> [u8; SSI_NAME_LEN] {
        self.ops().name
    }

    /// Runs the handler on a request from `node`; returns the answer's length in `resp`,
    /// or `None` when the handler answers later with `ssi_service_reply(token, ..)`.
    pub(crate) fn handle(
        &self,
        node: u32,
        token: u64,
        req: &[u8],
        resp: &mut [u8],
    ) -> Result<Option<usize>> {
        let Some(f) = self.ops().handle else {
            return Err(crate::errno::eopnotsupp());
        };
        // SAFETY: See `ops`; `req` and `resp` are valid for their lengths during the call.
        let n = unsafe {
            f(
                self.ops().ctx,
                node,
                token,
                req.as_ptr(),
                req.len(),
                resp.as_mut_ptr(),
                resp.len(),
            )
        };
        if n == SSI_SERVICE_DEFERRED {
            return Ok(None);
        }
        if n < 0 {
            // Handlers return -errno; anything out of range becomes EIO.
            return Err(i32::try_from(n)
                .ok()
                .filter(|e| *e >= -4095)
                .map_or(EIO, Error::from_errno));
        }
        Ok(Some((n as usize).min(resp.len())))
    }
}
