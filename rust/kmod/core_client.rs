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
use core::sync::atomic::{AtomicPtr, Ordering};

use kernel::{prelude::*, sync::Arc};

use crate::shared::migrate_abi::{SsiMigrateOps, SSI_MIGRATE_OPS_VERSION};
use crate::shared::service::{SsiServiceBuf, SsiServiceOps, SSI_SERVICE_OPS_VERSION};
pub(crate) use crate::shared::text::SliceWriter;
use crate::shared::transport::{
    make_name, SsiTransportOps, TransportKind, SSI_TRANSPORT_OPS_VERSION,
};

#[path = "core_abi.rs"]
#[macro_use]
mod core_abi;

ssi_core_abi!(declare_core_abi);

/// The ops table of this module's transport while it is registered (a module registers
/// at most one transport): how core recognises our upcalls.
static REGISTERED_OPS: AtomicPtr<SsiTransportOps> = AtomicPtr::new(core::ptr::null_mut());

/// Hands core a frame received from `node`. Core copies what it keeps.
pub(crate) fn deliver(node: u32, frame: &[u8]) {
    let ops = REGISTERED_OPS.load(Ordering::Acquire);
    if ops.is_null() {
        return;
    }
    // SAFETY: `frame` is valid for reads of `frame.len()` bytes during the call; core
    // ignores an ops pointer that is not (or no longer) registered.
    unsafe { ssi_core_deliver(ops, node, frame.as_ptr(), frame.len()) };
}

/// Tells core that the link to `node` went up or down.
pub(crate) fn link_event(node: u32, up: bool) {
    let ops = REGISTERED_OPS.load(Ordering::Acquire);
    if ops.is_null() {
        return;
    }
    // SAFETY: No pointer arguments besides `ops`, which core only compares with the
    // registered tables.
    unsafe { ssi_core_link_event(ops, node, up) };
}

/// A `struct page *` that core hands a transport for the duration of one call (core
/// holds a reference to the page across the call).
#[derive(Clone, Copy)]
pub(crate) struct RawPage(pub(crate) *mut kernel::bindings::page);

/// Where a peer can read an exposed page, and the cookie to revoke it.
pub(crate) struct Exposure {
    /// Remote address for the peer's one-sided reads.
    pub(crate) addr: u64,
    /// Remote key.
    pub(crate) rkey: u32,
    /// Identifies the exposure for [`Transport::unexpose_page`].
    pub(crate) cookie: u64,
}

/// This node's id, as configured in `ssi_core`.
pub(crate) fn node_id() -> u32 {
    // SAFETY: No preconditions: reads a module parameter of core, which is loaded
    // (this module depends on its symbols).
    unsafe { ssi_core_node_id() }
}

/// This load of `ssi_core`: changes each time it is loaded (never 0).
pub(crate) fn incarnation() -> u32 {
    // SAFETY: No preconditions: reads a value core sets before it exports anything.
    unsafe { ssi_core_incarnation() }
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
    /// `SSI_TRANSPORT_F_*` bits.
    const FLAGS: u32 = 0;

    /// Keep node `node` at `ipv4:port` connected (see `SsiTransportOps::connect`).
    fn connect(&self, _node: u32, _ipv4: u32, _port: u16) -> Result {
        Err(crate::errno::eopnotsupp())
    }
    /// Forget node `node`.
    fn disconnect(&self, _node: u32) {}
    /// Drop the current link to `node` and reconnect.
    fn reset(&self, _node: u32) {}
    /// Send one frame.
    fn send(&self, _node: u32, _frame: &[u8]) -> Result {
        Err(crate::errno::eopnotsupp())
    }
    /// Let `node` read `page` one-sidedly.
    fn expose_page(&self, _node: u32, _page: RawPage) -> Result<Exposure> {
        Err(crate::errno::eopnotsupp())
    }
    /// Revoke an exposure.
    fn unexpose_page(&self, _node: u32, _cookie: u64) {}
    /// Read `len` bytes at `addr`/`rkey` on `node` into `page`.
    fn read_page(
        &self,
        _node: u32,
        _addr: u64,
        _rkey: u32,
        _page: RawPage,
        _len: u32,
        _timeout_ms: u32,
    ) -> Result {
        Err(crate::errno::eopnotsupp())
    }
}

/// Recovers the transport from the `ctx` core passes back.
///
/// # Safety
///
/// `ctx` must be the context of a live registration of a `T` (core only calls while
/// the transport is registered, and the registration holds the `Arc<T>` until after it
/// has unregistered).
unsafe fn transport_ctx<'a, T: Transport>(ctx: *mut c_void) -> &'a T {
    // SAFETY: Guaranteed by the caller.
    unsafe { &*ctx.cast::<T>() }
}

fn to_c(r: Result) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Core's `connect` call, to [`Transport::connect`].
///
/// # Safety
///
/// `ctx` is the context of a live registration of a `T` (core calls a transport only
/// while it is registered, through a counted use that unregistering waits for).
unsafe extern "C" fn connect_trampoline<T: Transport>(
    ctx: *mut c_void,
    node: u32,
    ipv4: u32,
    port: u16,
) -> i32 {
    // SAFETY: Core calls with the registration's context.
    to_c(unsafe { transport_ctx::<T>(ctx) }.connect(node, ipv4, port))
}

/// Core's `disconnect` call, to [`Transport::disconnect`].
///
/// # Safety
///
/// `ctx` is the context of a live registration of a `T` (core calls a transport only
/// while it is registered, through a counted use that unregistering waits for).
unsafe extern "C" fn disconnect_trampoline<T: Transport>(ctx: *mut c_void, node: u32) {
    // SAFETY: Core calls with the registration's context.
    unsafe { transport_ctx::<T>(ctx) }.disconnect(node)
}

/// Core's `reset` call, to [`Transport::reset`].
///
/// # Safety
///
/// `ctx` is the context of a live registration of a `T` (core calls a transport only
/// while it is registered, through a counted use that unregistering waits for).
unsafe extern "C" fn reset_trampoline<T: Transport>(ctx: *mut c_void, node: u32) {
    // SAFETY: Core calls with the registration's context.
    unsafe { transport_ctx::<T>(ctx) }.reset(node)
}

/// Core's `send` call, to [`Transport::send`].
///
/// # Safety
///
/// `ctx` is the context of a live registration of a `T` (core calls a transport only
/// while it is registered, through a counted use that unregistering waits for), and
/// `frame`, when not null, is valid for reads of `len` bytes during the call.
unsafe extern "C" fn send_trampoline<T: Transport>(
    ctx: *mut c_void,
    node: u32,
    frame: *const u8,
    len: usize,
) -> i32 {
    if frame.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: Core passes a frame valid for reads of `len` bytes during the call.
    let frame = unsafe { core::slice::from_raw_parts(frame, len) };
    // SAFETY: Core calls with the registration's context.
    to_c(unsafe { transport_ctx::<T>(ctx) }.send(node, frame))
}

/// Core's `expose_page` call, to [`Transport::expose_page`].
///
/// # Safety
///
/// `ctx` is the context of a live registration of a `T` (core calls a transport only
/// while it is registered, through a counted use that unregistering waits for); `page`
/// is null or a `struct page *` core holds a reference to across the call, and `addr`,
/// `rkey` and `cookie` are null or valid for writes.
unsafe extern "C" fn expose_trampoline<T: Transport>(
    ctx: *mut c_void,
    node: u32,
    page: *mut c_void,
    addr: *mut u64,
    rkey: *mut u32,
    cookie: *mut u64,
) -> i32 {
    if page.is_null() || addr.is_null() || rkey.is_null() || cookie.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: Core calls with the registration's context.
    match unsafe { transport_ctx::<T>(ctx) }.expose_page(node, RawPage(page.cast())) {
        Ok(e) => {
            // SAFETY: Core passes pointers to writable locals, checked non-null above.
            unsafe {
                *addr = e.addr;
                *rkey = e.rkey;
                *cookie = e.cookie;
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// Core's `unexpose_page` call, to [`Transport::unexpose_page`].
///
/// # Safety
///
/// `ctx` is the context of a live registration of a `T` (core calls a transport only
/// while it is registered, through a counted use that unregistering waits for).
unsafe extern "C" fn unexpose_trampoline<T: Transport>(ctx: *mut c_void, node: u32, cookie: u64) {
    // SAFETY: Core calls with the registration's context.
    unsafe { transport_ctx::<T>(ctx) }.unexpose_page(node, cookie)
}

/// Core's `read_page` call, to [`Transport::read_page`].
///
/// # Safety
///
/// `ctx` is the context of a live registration of a `T` (core calls a transport only
/// while it is registered, through a counted use that unregistering waits for), and
/// `page` is null or a `struct page *` core holds a reference to across the call.
unsafe extern "C" fn read_trampoline<T: Transport>(
    ctx: *mut c_void,
    node: u32,
    addr: u64,
    rkey: u32,
    page: *mut c_void,
    len: u32,
    timeout_ms: u32,
) -> i32 {
    if page.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: Core calls with the registration's context.
    to_c(unsafe { transport_ctx::<T>(ctx) }.read_page(
        node,
        addr,
        rkey,
        RawPage(page.cast()),
        len,
        timeout_ms,
    ))
}

/// Calls `T::describe` for core.
///
/// # Safety
///
/// `ctx` is the `Arc<T>` of a live registration, and `buf` is valid for writes of `len`
/// bytes, used by nobody else during the call.
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
                flags: T::FLAGS,
                name: make_name(T::NAME),
                owner: module.as_ptr().cast(),
                ctx: Arc::as_ptr(&ctx).cast_mut().cast(),
                describe: Some(describe_trampoline::<T>),
                connect: Some(connect_trampoline::<T>),
                disconnect: Some(disconnect_trampoline::<T>),
                reset: Some(reset_trampoline::<T>),
                send: Some(send_trampoline::<T>),
                expose_page: Some(expose_trampoline::<T>),
                unexpose_page: Some(unexpose_trampoline::<T>),
                read_page: Some(read_trampoline::<T>),
            },
            GFP_KERNEL,
        )?;
        // Published first: core may call `connect` during registration, and the links
        // that come up report through `deliver`/`link_event`.
        REGISTERED_OPS.store(core::ptr::from_ref(&*ops).cast_mut(), Ordering::Release);
        // SAFETY: `ops` is a valid table that stays at this heap address, unchanged,
        // until `drop` has unregistered it; `ctx` outlives it likewise.
        let id = unsafe { ssi_transport_register(&*ops) };
        if id < 0 {
            REGISTERED_OPS.store(core::ptr::null_mut(), Ordering::Release);
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
        REGISTERED_OPS.store(core::ptr::null_mut(), Ordering::Release);
    }
}

/// The migration engine's side of core's `/dev/ssi` and `/proc/ssi/ps`.
pub(crate) trait Engine: Describe {
    /// A migration ioctl of the open file identified by `file`.
    fn ioctl(&self, file: usize, cmd: u32, arg: usize) -> Result<isize>;
    /// The open file identified by `file` is released.
    fn release(&self, file: usize);
    /// The text of `/proc/ssi/ps`.
    fn show_ps(&self, out: &mut SliceWriter<'_>) -> fmt::Result;
    /// The calling task's `mprotect` opened `[start, end)` of private-memory region
    /// memory (on its way back to user mode).
    fn opened(&self, start: usize, end: usize);
}

/// Core's `ioctl` call, to [`Engine::ioctl`].
///
/// # Safety
///
/// `ctx` is the `Arc<T>` of a live engine registration (core calls through a counted use
/// that unregistering waits for). `file` only identifies the open file.
unsafe extern "C" fn ioctl_trampoline<T: Engine>(
    ctx: *mut c_void,
    file: *const c_void,
    cmd: u32,
    arg: usize,
) -> isize {
    // SAFETY: `ctx` is the registration's `Arc<T>`, alive while registered; core calls
    // through a counted use that unregistering waits for.
    let this = unsafe { &*ctx.cast::<T>() };
    match this.ioctl(file as usize, cmd, arg) {
        Ok(v) => v,
        Err(e) => e.to_errno() as isize,
    }
}

/// Core's `release` call, to [`Engine::release`].
///
/// # Safety
///
/// As for [`ioctl_trampoline`].
unsafe extern "C" fn release_trampoline<T: Engine>(ctx: *mut c_void, file: *const c_void) {
    // SAFETY: As in `ioctl_trampoline`.
    let this = unsafe { &*ctx.cast::<T>() };
    this.release(file as usize);
}

/// Core's `show_ps` call, to [`Engine::show_ps`].
///
/// # Safety
///
/// As for [`ioctl_trampoline`], and `buf`, when not null, is valid for writes of `len`
/// bytes, used by nobody else during the call.
unsafe extern "C" fn ps_trampoline<T: Engine>(ctx: *mut c_void, buf: *mut u8, len: usize) -> isize {
    if buf.is_null() {
        return EINVAL.to_errno() as isize;
    }
    // SAFETY: As in `ioctl_trampoline`.
    let this = unsafe { &*ctx.cast::<T>() };
    // SAFETY: Core passes a buffer valid for `len` bytes, unaliased during the call.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    let mut w = SliceWriter::new(buf);
    // Truncated text is still shown.
    let _ = this.show_ps(&mut w);
    w.len() as isize
}

/// Core's `opened` call, to [`Engine::opened`].
///
/// # Safety
///
/// As for [`ioctl_trampoline`].
unsafe extern "C" fn opened_trampoline<T: Engine>(ctx: *mut c_void, start: usize, end: usize) {
    // SAFETY: As in `ioctl_trampoline`.
    let this = unsafe { &*ctx.cast::<T>() };
    this.opened(start, end);
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

impl<T: Engine> MigrateRegistration<T> {
    /// Registers `ctx` as the node's migration engine.
    pub(crate) fn new(module: &'static ThisModule, ctx: Arc<T>) -> Result<Self> {
        let ops = KBox::new(
            SsiMigrateOps {
                version: SSI_MIGRATE_OPS_VERSION,
                flags: 0,
                owner: module.as_ptr().cast(),
                ctx: Arc::as_ptr(&ctx).cast_mut().cast(),
                describe: Some(describe_trampoline::<T>),
                ioctl: Some(ioctl_trampoline::<T>),
                release: Some(release_trampoline::<T>),
                show_ps: Some(ps_trampoline::<T>),
                opened: Some(opened_trampoline::<T>),
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

/// A service a module offers to other nodes (see `rust/src/service.rs`).
pub(crate) trait Service: Send + Sync {
    /// Its id (`shared::service::ids`).
    const ID: u16;
    /// Its name (1 to 15 characters of `[a-z0-9_-]`).
    const NAME: &'static str;
    /// Answers a request from `node` into `resp`; returns the answer's length, or `None`
    /// when it answers later with [`service_reply`] and `token`. Runs in the transport's
    /// receive context: must not wait for other nodes.
    fn handle(&self, node: u32, token: u64, req: &[u8], resp: &mut [u8]) -> Result<Option<usize>>;
}

/// Core's call of a service, to [`Service::handle`].
///
/// # Safety
///
/// `ctx` is the `Arc<T>` of a live service registration; `req`, when not null, is valid
/// for reads of `len` bytes and `resp` for writes of `cap` bytes, unaliased, during the
/// call.
unsafe extern "C" fn service_trampoline<T: Service>(
    ctx: *mut c_void,
    node: u32,
    token: u64,
    req: *const u8,
    len: usize,
    resp: *mut u8,
    cap: usize,
) -> isize {
    if req.is_null() || resp.is_null() {
        return EINVAL.to_errno() as isize;
    }
    // SAFETY: `ctx` is the registration's `Arc<T>`, alive while registered, and core
    // only calls while registered.
    let this = unsafe { &*ctx.cast::<T>() };
    // SAFETY: Core passes a request valid for `len` bytes and an answer buffer valid
    // for `cap` bytes, unaliased, for the duration of the call.
    let (req, resp) = unsafe {
        (
            core::slice::from_raw_parts(req, len),
            core::slice::from_raw_parts_mut(resp, cap),
        )
    };
    match this.handle(node, token, req, resp) {
        // At most `cap`, which is a slice length.
        Ok(Some(n)) => n.min(cap) as isize,
        Ok(None) => crate::shared::service::SSI_SERVICE_DEFERRED,
        Err(e) => e.to_errno() as isize,
    }
}

/// A registered service; unregisters when dropped.
pub(crate) struct ServiceRegistration<T: Service> {
    // Read by core through the pointer handed to it; freed only after `drop`.
    _ops: KBox<SsiServiceOps>,
    _ctx: Arc<T>,
}

// SAFETY: As for `TransportRegistration`.
unsafe impl<T: Service> Send for ServiceRegistration<T> {}
// SAFETY: As for `TransportRegistration`.
unsafe impl<T: Service> Sync for ServiceRegistration<T> {}

impl<T: Service> ServiceRegistration<T> {
    /// Registers `ctx` as service `T::ID` of module `module`.
    pub(crate) fn new(module: &'static ThisModule, ctx: Arc<T>) -> Result<Self> {
        let ops = KBox::new(
            SsiServiceOps {
                version: SSI_SERVICE_OPS_VERSION,
                service: T::ID,
                flags: 0,
                name: make_name(T::NAME),
                owner: module.as_ptr().cast(),
                ctx: Arc::as_ptr(&ctx).cast_mut().cast(),
                handle: Some(service_trampoline::<T>),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `ops` stays at this heap address, unchanged, until `drop` has
        // unregistered it; `ctx` outlives it likewise.
        let ret = unsafe { ssi_service_register(&*ops) };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        Ok(Self {
            _ops: ops,
            _ctx: ctx,
        })
    }
}

impl<T: Service> Drop for ServiceRegistration<T> {
    fn drop(&mut self) {
        // SAFETY: Registered in `new`; after this returns core no longer calls `handle`.
        unsafe { ssi_service_unregister(T::ID) };
    }
}

/// Sends the answer to a request whose handler returned `None` (deferred): `data`, or
/// the error.
pub(crate) fn service_reply(token: u64, service: u16, answer: Result<&[u8]>) {
    let (data, err) = match answer {
        Ok(d) => (d, 0),
        Err(e) => (&[][..], e.to_errno()),
    };
    // SAFETY: `data` is valid for reads of its length during the call.
    unsafe { ssi_service_reply(token, service, data.as_ptr(), data.len(), err) };
}

/// Calls `service` on `node` once per request, all sent before any answer is awaited
/// (pipelined); answer `i` goes to `resps[i]`, its length or error to the result.
pub(crate) fn call_service_batch(
    node: u32,
    service: u16,
    reqs: &[&[u8]],
    resps: &mut [&mut [u8]],
    timeout_ms: u32,
    flags: u32,
) -> Result<KVec<Result<usize>>> {
    use crate::shared::service::{SsiServiceBuf, SSI_MAX_BATCH};
    if reqs.len() != resps.len() || reqs.is_empty() || reqs.len() > SSI_MAX_BATCH {
        return Err(EINVAL);
    }
    let mut q = KVec::with_capacity(reqs.len(), GFP_KERNEL)?;
    let mut a = KVec::with_capacity(reqs.len(), GFP_KERNEL)?;
    for (r, s) in reqs.iter().zip(resps.iter_mut()) {
        q.push(
            SsiServiceBuf {
                ptr: r.as_ptr().cast_mut(),
                len: r.len(),
                result: 0,
            },
            GFP_KERNEL,
        )?;
        a.push(
            SsiServiceBuf {
                ptr: s.as_mut_ptr(),
                len: s.len(),
                result: 0,
            },
            GFP_KERNEL,
        )?;
    }
    // SAFETY: The buffers are the caller's slices, valid and unaliased during the call;
    // core only reads the requests.
    let ret = unsafe {
        ssi_service_call_batch(
            node,
            service,
            q.as_ptr(),
            a.as_mut_ptr(),
            q.len(),
            timeout_ms,
            flags,
        )
    };
    if ret < 0 {
        return Err(Error::from_errno(ret));
    }
    let mut out = KVec::with_capacity(a.len(), GFP_KERNEL)?;
    for b in a.iter() {
        out.push(
            if b.result < 0 {
                // A negative errno from core.
                Err(Error::from_errno(b.result as i32))
            } else {
                Ok(b.result as usize)
            },
            GFP_KERNEL,
        )?;
    }
    Ok(out)
}

/// Whether `node` is this node or a peer that core's membership sees up.
pub(crate) fn node_up(node: u32) -> bool {
    // SAFETY: No pointer arguments.
    unsafe { ssi_core_node_up(node) }
}

/// The private memory of a distributed process, kept in regions by `ssi_core`
/// (`ssi_core/process_memory.rs`). Each call works on the calling process.
#[allow(dead_code)] // Only ssi_migrate moves threads.
pub(crate) mod private_memory {
    use core::ffi::c_void;
    use kernel::prelude::*;

    /// A region of `pages` pages homed here; returns its generation.
    pub(crate) fn create(pages: u32) -> Result<u64> {
        let mut generation = 0u64;
        // SAFETY: `generation` is a valid place for the answer.
        kernel::error::to_result(unsafe {
            super::ssi_region_private_create(pages, &mut generation)
        })?;
        Ok(generation)
    }

    /// Copies `pages` pages of the caller's memory at `addr` into region `generation`
    /// from its page `first` on; returns the pages adopted (those not all zero).
    /// `forced`: the memory is not readable (`PROT_NONE`), read it as a debugger would.
    pub(crate) fn adopt(
        generation: u64,
        first: u32,
        addr: usize,
        pages: u32,
        forced: bool,
    ) -> Result<u32> {
        // SAFETY: No pointer arguments; the core reads user memory with uaccess, or
        // with `access_process_vm` when forced.
        let n = unsafe { super::ssi_region_private_adopt(generation, first, addr, pages, forced) };
        kernel::error::to_result(n.min(0))?;
        Ok(n as u32)
    }

    /// Maps `len` bytes of region `generation` (`pages` pages, homed on `home`) from page
    /// `pgoff` into the calling process, at `addr` as `how` says (a `Placement::raw` of
    /// `rust/src/address_space.rs`); returns where.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn map(
        home: u32,
        generation: u64,
        pages: u32,
        addr: usize,
        len: usize,
        pgoff: u64,
        prot: u32,
        how: u32,
    ) -> Result<usize> {
        // SAFETY: No pointer arguments.
        let at = unsafe {
            super::ssi_region_private_map(home, generation, pages, addr, len, pgoff, prot, how)
        };
        if at < 0 {
            // An errno: above -4096.
            return Err(Error::from_errno(at as i32));
        }
        // Not negative.
        Ok(at as usize)
    }

    /// Removes region `generation` (homed here) cluster-wide.
    pub(crate) fn remove(generation: u64) -> Result {
        // SAFETY: No pointer arguments.
        kernel::error::to_result(unsafe { super::ssi_region_private_remove(generation) })
    }

    /// The generation and size in pages of the private-memory region that `vma` maps,
    /// or 0 and 0.
    ///
    /// # Safety
    ///
    /// `vma` is a VMA of the calling process, whose mmap lock the caller holds.
    pub(crate) unsafe fn of_vma(vma: *mut c_void) -> (u64, u32) {
        let mut pages = 0u32;
        // SAFETY: Guaranteed by the caller; `pages` is a valid place for the answer.
        let generation = unsafe { super::ssi_region_private_of_vma(vma, &mut pages) };
        (generation, pages)
    }
}

/// Calls `service` on `node` and waits at most `timeout_ms` for the answer, which goes
/// to `resp`; returns its length. Sleeps: never call it from a service handler.
pub(crate) fn call_service(
    node: u32,
    service: u16,
    req: &[u8],
    resp: &mut [u8],
    timeout_ms: u32,
    flags: u32,
) -> Result<usize> {
    // SAFETY: Both slices are valid for their lengths during the call.
    let n = unsafe {
        ssi_service_call(
            node,
            service,
            req.as_ptr(),
            req.len(),
            resp.as_mut_ptr(),
            resp.len(),
            timeout_ms,
            flags,
        )
    };
    if n < 0 {
        // A negative errno from core.
        return Err(Error::from_errno(n as i32));
    }
    Ok(n as usize)
}
