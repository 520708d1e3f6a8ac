// SPDX-License-Identifier: GPL-2.0

//! The C-ABI entry points that `ssi_core` exports to the other ssi modules (exported by
//! `exports.c`), and safe wrappers around the ops tables those modules hand in.
//!
//! All raw-pointer handling of core lives here.

use core::ffi::{c_int, c_void};
use core::ptr::NonNull;

use kernel::page::Page;
use kernel::prelude::*;

use crate::registry;
use crate::shared::ioctl::SSI_NAME_LEN;
use crate::shared::migrate_abi::SsiMigrateOps;
use crate::shared::service::{
    SsiServiceBuf, SsiServiceOps, SSI_CALL_UNINTERRUPTIBLE, SSI_MAX_BATCH, SSI_SERVICE_DEFERRED,
};
use crate::shared::transport::SsiTransportOps;

// Every entry point below has the signature the one list in `rust/kmod/core_abi.rs`
// gives it, which the other modules' declarations and `core_abi.h` are made from.
ssi_core_abi!(check_core_abi);

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

    /// The engine's `/proc/ssi/ps` text, written into `buf`.
    pub(crate) fn show_ps(&self, buf: &mut [u8]) -> Result<usize> {
        call_describe(self.ops().show_ps, self.ops().ctx, buf)
    }
}

// SAFETY: As for `ServiceOpsRef`: immutable while registered, callable from any
// process context.
unsafe impl Sync for MigrateOpsRef {}

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

/// This load's incarnation (see `messaging::incarnation`).
#[no_mangle]
extern "C" fn ssi_core_incarnation() -> u32 {
    crate::messaging::incarnation()
}

/// A transport received `len` bytes from `node`.
///
/// # Safety
///
/// `frame` is valid for reads of `len` bytes during the call. `ops` may be anything: it
/// is only compared with the registered tables.
#[no_mangle]
unsafe extern "C" fn ssi_core_deliver(
    ops: *const SsiTransportOps,
    node: u32,
    frame: *const u8,
    len: usize,
) {
    if frame.is_null() {
        return;
    }
    // SAFETY: Guaranteed by the caller.
    let frame = unsafe { core::slice::from_raw_parts(frame, len) };
    if let Some((tid, _use)) = registry::transport_by_ops(ops) {
        crate::messaging::deliver(tid, node, frame);
    }
}

/// A transport's link to `node` went up or down.
#[no_mangle]
extern "C" fn ssi_core_link_event(ops: *const SsiTransportOps, node: u32, up: bool) {
    if let Some((tid, _use)) = registry::transport_by_ops(ops) {
        crate::messaging::link_event(tid, node, up);
    }
}

/// Called by `ticker.c` every `membership::HEARTBEAT_INTERVAL_MS`, in process context.
#[no_mangle]
extern "C" fn ssi_core_tick() {
    crate::messaging::tick();
}

extern "C" {
    fn ssi_core_ticker_start(period_ms: core::ffi::c_uint);
    fn ssi_core_ticker_stop();
}

/// Starts `ticker.c`'s periodic call of `ssi_core_tick`.
pub(crate) fn ticker_start(period_ms: u32) {
    // SAFETY: Called once from module init; stopped by `ticker_stop` before exit.
    unsafe { ssi_core_ticker_start(period_ms) }
}

/// Stops the ticker and waits for a running tick.
pub(crate) fn ticker_stop() {
    // SAFETY: The ticker was started (`messaging::Heartbeat` exists only then).
    unsafe { ssi_core_ticker_stop() }
}

/// A service's ops table, valid while it is registered.
pub(crate) struct ServiceOpsRef(NonNull<SsiServiceOps>);

// SAFETY: The table is immutable while registered and only read; the service promises
// its handler may be called from any process context.
unsafe impl Send for ServiceOpsRef {}
// SAFETY: As above.
unsafe impl Sync for ServiceOpsRef {}

impl ServiceOpsRef {
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

/// Registers a service. Returns 0 or a negative errno.
///
/// # Safety
///
/// `ops` is null or points to an [`SsiServiceOps`] that stays valid and unchanged until
/// `ssi_service_unregister()` with its id has returned.
#[no_mangle]
unsafe extern "C" fn ssi_service_register(ops: *const SsiServiceOps) -> c_int {
    let Some(ops) = NonNull::new(ops.cast_mut()) else {
        return EINVAL.to_errno();
    };
    to_c(crate::services::register(ServiceOpsRef(ops)))
}

/// Like `ssi_service_call()` for `n` requests (at most `SSI_MAX_BATCH`), all sent before
/// any answer is awaited: request `i` is `reqs[i]`, its answer goes to `resps[i]` (the
/// length or a negative errno in `resps[i].result`). Returns 0, or a negative errno when
/// nothing was sent.
///
/// # Safety
///
/// `reqs` and `resps` point to `n` buffers each; every request buffer is valid for reads
/// and every answer buffer for writes of its length, none overlapping.
#[no_mangle]
unsafe extern "C" fn ssi_service_call_batch(
    node: u32,
    service: u16,
    reqs: *const SsiServiceBuf,
    resps: *mut SsiServiceBuf,
    n: usize,
    timeout_ms: u32,
    flags: u32,
) -> c_int {
    if reqs.is_null()
        || resps.is_null()
        || n == 0
        || n > SSI_MAX_BATCH
        || flags & !SSI_CALL_UNINTERRUPTIBLE != 0
    {
        return EINVAL.to_errno();
    }
    // SAFETY: Guaranteed by the caller.
    let (reqs, resps) = unsafe {
        (
            core::slice::from_raw_parts(reqs, n),
            core::slice::from_raw_parts_mut(resps, n),
        )
    };
    let mut req_slices: KVec<&[u8]> = KVec::new();
    let mut resp_slices: KVec<&mut [u8]> = KVec::new();
    let mut results: KVec<Result<usize>> = KVec::new();
    for i in 0..n {
        if reqs[i].ptr.is_null() || resps[i].ptr.is_null() {
            return EINVAL.to_errno();
        }
        // SAFETY: Guaranteed by the caller: valid, non-overlapping buffers.
        let (q, a) = unsafe {
            (
                core::slice::from_raw_parts(reqs[i].ptr, reqs[i].len),
                core::slice::from_raw_parts_mut(resps[i].ptr, resps[i].len),
            )
        };
        if req_slices.push(q, GFP_KERNEL).is_err()
            || resp_slices.push(a, GFP_KERNEL).is_err()
            || results.push(Err(EIO), GFP_KERNEL).is_err()
        {
            return ENOMEM.to_errno();
        }
    }
    let interruptible = flags & SSI_CALL_UNINTERRUPTIBLE == 0;
    if let Err(e) = crate::services::call_batch(
        node,
        service,
        &req_slices,
        &mut resp_slices,
        &mut results,
        timeout_ms,
        interruptible,
    ) {
        return e.to_errno();
    }
    for (r, out) in results.iter().zip(resps.iter_mut()) {
        out.result = match r {
            // At most MAX_SERVICE_DATA.
            Ok(len) => *len as isize,
            Err(e) => e.to_errno() as isize,
        };
    }
    0
}

/// Answers a request that a service handler deferred (it returned
/// `SSI_SERVICE_DEFERRED`): `len` bytes at `data` when `err` is 0, else the negative
/// errno `err`. A token is answered at most once; a stale one only sends an answer that
/// the caller has stopped waiting for, which it drops.
///
/// # Safety
///
/// `data` is valid for reads of `len` bytes (may be null when `len` is 0).
#[no_mangle]
unsafe extern "C" fn ssi_service_reply(
    token: u64,
    service: u16,
    data: *const u8,
    len: usize,
    err: c_int,
) {
    let data = if len == 0 || data.is_null() {
        &[][..]
    } else {
        // SAFETY: Guaranteed by the caller.
        unsafe { core::slice::from_raw_parts(data, len) }
    };
    crate::services::reply(token, service, data, err);
}

/// Whether `node` is this node or a configured peer that membership sees up.
#[no_mangle]
extern "C" fn ssi_core_node_up(node: u32) -> bool {
    node == crate::node_id() || crate::nodes::is_up(node)
}

/// Unregisters a service; after it returns its handler is never called again.
#[no_mangle]
extern "C" fn ssi_service_unregister(service: u16) {
    crate::services::unregister(service);
}

/// Calls `service` on `node` with `len` bytes at `req` and waits at most `timeout_ms`;
/// the answer goes to `resp` (at most `cap` bytes). Returns its length or a negative
/// errno. Sleeps: process context only, never from a service handler.
///
/// # Safety
///
/// `req` is valid for reads of `len` bytes and `resp` for writes of `cap` bytes (either
/// may be null when its length is 0).
#[no_mangle]
unsafe extern "C" fn ssi_service_call(
    node: u32,
    service: u16,
    req: *const u8,
    len: usize,
    resp: *mut u8,
    cap: usize,
    timeout_ms: u32,
    flags: u32,
) -> isize {
    if (req.is_null() && len != 0)
        || (resp.is_null() && cap != 0)
        || flags & !SSI_CALL_UNINTERRUPTIBLE != 0
    {
        return EINVAL.to_errno() as isize;
    }
    let req = if len == 0 {
        &[][..]
    } else {
        // SAFETY: Guaranteed by the caller.
        unsafe { core::slice::from_raw_parts(req, len) }
    };
    let resp = if cap == 0 {
        &mut [][..]
    } else {
        // SAFETY: Guaranteed by the caller.
        unsafe { core::slice::from_raw_parts_mut(resp, cap) }
    };
    let interruptible = flags & SSI_CALL_UNINTERRUPTIBLE == 0;
    match crate::services::call(node, service, req, resp, timeout_ms, interruptible) {
        // At most MAX_SERVICE_DATA.
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}
