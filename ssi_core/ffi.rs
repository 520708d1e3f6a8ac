// SPDX-License-Identifier: GPL-2.0

//! The C-ABI entry points of `ssi_core`: the functions it exports to the other ssi
//! modules (listed in `rust/kmod/core_abi.rs`, exported by `exports.c`) and the tick of
//! `ticker.c`. They check and convert the raw arguments and hand over to the layer that
//! does the work; the ops tables handed in are wrapped by `ops.rs`.

use core::ffi::{c_int, c_void};
use core::ptr::NonNull;

use kernel::prelude::*;

use crate::ops::{MigrateOpsRef, ServiceOpsRef, TransportOpsRef};
use crate::registry;
use crate::shared::migrate_abi::SsiMigrateOps;
use crate::shared::service::{
    SsiServiceBuf, SsiServiceOps, SSI_CALL_UNINTERRUPTIBLE, SSI_MAX_BATCH,
};
use crate::shared::transport::SsiTransportOps;

// Every entry point below has the signature the one list in `rust/kmod/core_abi.rs`
// gives it, which the other modules' declarations and `core_abi.h` are made from.
ssi_core_abi!(check_core_abi);

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
    match registry::register_transport(
        // SAFETY: The caller keeps the table valid until it unregisters.
        unsafe { TransportOpsRef::new(ops) },
    ) {
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
    // SAFETY: The caller keeps the table valid until it unregisters.
    to_c(registry::register_migrate(unsafe {
        MigrateOpsRef::new(ops)
    }))
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

/// This load's incarnation (see `transmit::incarnation`).
#[no_mangle]
extern "C" fn ssi_core_incarnation() -> u32 {
    crate::transmit::incarnation()
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
        crate::dispatch::deliver(tid, node, frame);
    }
}

/// A transport's link to `node` went up or down.
#[no_mangle]
extern "C" fn ssi_core_link_event(ops: *const SsiTransportOps, node: u32, up: bool) {
    if let Some((tid, _use)) = registry::transport_by_ops(ops) {
        crate::dispatch::link_event(tid, node, up);
    }
}

/// Called by `ticker.c` every `membership::HEARTBEAT_INTERVAL_MS`, in process context.
#[no_mangle]
extern "C" fn ssi_core_tick() {
    crate::dispatch::tick();
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
    // SAFETY: The caller keeps the table valid until it unregisters.
    to_c(crate::services::register(unsafe {
        ServiceOpsRef::new(ops)
    }))
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

/// Creates a private-memory region of `pages` pages homed here (`process_memory.rs`);
/// its generation is written to `generation`.
#[no_mangle]
extern "C" fn ssi_region_private_create(pages: u32, generation: *mut u64) -> c_int {
    if generation.is_null() {
        return EINVAL.to_errno();
    }
    match crate::process_memory::create(pages) {
        Ok(g) => {
            // SAFETY: Checked non-null; the caller passes a place for the answer.
            unsafe { *generation = g };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// Copies the caller's memory at `addr` into a private-memory region homed here;
/// returns the pages adopted or an errno.
#[no_mangle]
extern "C" fn ssi_region_private_adopt(
    generation: u64,
    first: u32,
    addr: usize,
    pages: u32,
    forced: bool,
) -> c_int {
    match crate::process_memory::adopt(generation, first, addr, pages, forced) {
        // At most the region's size, 2^20 pages.
        Ok(n) => n as c_int,
        Err(e) => e.to_errno(),
    }
}

/// Maps a private-memory region into the calling process (at `addr` as `how` says, a
/// `Placement::raw` of `rust/src/address_space.rs`); returns the address or a negative
/// errno.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
extern "C" fn ssi_region_private_map(
    home: u32,
    generation: u64,
    pages: u32,
    addr: usize,
    len: usize,
    pgoff: u64,
    prot: u32,
    how: u32,
) -> isize {
    let Ok(home) = u16::try_from(home) else {
        return EINVAL.to_errno() as isize;
    };
    match crate::process_memory::map(home, generation, pages, addr, len, pgoff, prot, how) {
        // A user address: below isize::MAX.
        Ok(at) => at as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// Removes a private-memory region homed here cluster-wide.
#[no_mangle]
extern "C" fn ssi_region_private_remove(generation: u64) -> c_int {
    match crate::process_memory::remove(generation) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// The generation of the private-memory region a VMA maps, or 0; its size in pages
/// goes to `pages`.
///
/// # Safety
///
/// `vma` is a VMA of the calling process, whose mmap lock the caller holds; `pages` is
/// valid for writing.
#[no_mangle]
unsafe extern "C" fn ssi_region_private_of_vma(vma: *mut c_void, pages: *mut u32) -> u64 {
    // SAFETY: As this function's own requirements.
    let (generation, n) = unsafe { crate::process_memory::of_vma(vma) };
    // SAFETY: As this function's own requirements.
    unsafe { *pages = n };
    generation
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
