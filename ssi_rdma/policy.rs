// SPDX-License-Identifier: GPL-2.0

//! The decisions of `conn.c`, asked from C: thin `extern "C"` wrappers over the rules
//! of `rust/src/rdma_conn.rs` (declared in `conn.h`, section "Policy").
//!
//! `conn.c` keeps the RDMA CM and verbs calls, the locks, the work items and the memory;
//! the state these functions read and change lives in its structures (`struct
//! ssi_conn_fsm`, `struct ssi_peer_fsm`, `struct ssi_local`, the Rust types of the same
//! layout) under its locks. They neither sleep nor allocate: `conn.c` calls them under
//! spinlocks.

use core::fmt::{self, Write};

use kernel::{ffi::c_char, str::CStr, str::CStrExt};

use crate::shared::node::SSI_MAX_NODES;
use crate::shared::rdma_conn::{Action, Conn, Local, Peer, PeerFacts, RejectReason, CM_PRIV_LEN};
use crate::shared::text::SliceWriter;

// `conn.h` sizes the private data with `SSI_CM_PRIV_LEN`.
const _: () = assert!(CM_PRIV_LEN == 16);

/// What `conn.c` is told to do (`struct ssi_action` in `conn.h`).
#[repr(C)]
struct CAction {
    /// `enum ssi_action_kind`.
    kind: u32,
    /// For `SSI_ACT_CONNECT`: the delay.
    delay_ms: u32,
}

// `enum ssi_action_kind` in `conn.h`.
const SSI_ACT_NOTHING: u32 = 0;
const SSI_ACT_CONNECT: u32 = 1;
const SSI_ACT_ANNOUNCE_UP: u32 = 2;
const SSI_ACT_ANNOUNCE_DOWN: u32 = 3;
const SSI_ACT_REPLACED_CLOSED: u32 = 4;
const SSI_ACT_QUEUE_TEARDOWN: u32 = 5;

impl From<Action> for CAction {
    fn from(a: Action) -> Self {
        let (kind, delay_ms) = match a {
            Action::Nothing => (SSI_ACT_NOTHING, 0),
            Action::Connect { after_ms } => (SSI_ACT_CONNECT, after_ms),
            Action::AnnounceUp => (SSI_ACT_ANNOUNCE_UP, 0),
            Action::AnnounceDown => (SSI_ACT_ANNOUNCE_DOWN, 0),
            Action::ReplacedClosed => (SSI_ACT_REPLACED_CLOSED, 0),
            Action::QueueTeardown => (SSI_ACT_QUEUE_TEARDOWN, 0),
        };
        Self { kind, delay_ms }
    }
}

/// The bytes at `data`, or none if it is null.
///
/// # Safety
///
/// `data` is null or valid for reads of `len` bytes for `'a`.
unsafe fn bytes<'a>(data: *const u8, len: u32) -> &'a [u8] {
    if data.is_null() {
        return &[];
    }
    // SAFETY: Guaranteed by the caller; `u32` fits `usize` on every kernel target.
    unsafe { core::slice::from_raw_parts(data, len as usize) }
}

/// Writes `text` into the C buffer `buf` of `len` bytes, truncated, NUL-terminated.
///
/// # Safety
///
/// `buf` is valid for writes of `len` bytes.
unsafe fn write_c(buf: *mut u8, len: usize, text: &dyn fmt::Display) {
    if buf.is_null() || len == 0 {
        return;
    }
    // SAFETY: Guaranteed by the caller.
    let out = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    let mut w = SliceWriter::new(&mut out[..len - 1]);
    // Truncation is the only failure of `SliceWriter`, and is fine for a log line.
    let _ = write!(w, "{}", text);
    let end = w.len();
    out[end] = 0;
}

/// The C string at `s`, or `"?"`.
///
/// # Safety
///
/// `s` is null or a NUL-terminated string valid for `'a`.
unsafe fn c_text<'a>(s: *const c_char) -> &'a str {
    if s.is_null() {
        return "?";
    }
    // SAFETY: Guaranteed by the caller.
    unsafe { CStr::from_char_ptr(s) }.to_str().unwrap_or("?")
}

/// The size of `conn.c`'s peer table: node ids are below it.
#[no_mangle]
extern "C" fn ssi_rdma_max_nodes() -> u32 {
    SSI_MAX_NODES
}

/// Writes the CM private data this node sends with reject reason `reason` (0 in
/// requests and accepts) into `out`.
///
/// # Safety
///
/// `local` is valid for reads; `out` is valid for writes of `SSI_CM_PRIV_LEN` bytes.
#[no_mangle]
unsafe extern "C" fn ssi_rdma_cm_priv(local: *const Local, reason: u8, out: *mut u8) {
    // SAFETY: Guaranteed by the caller.
    let (local, out) = unsafe { (&*local, &mut *out.cast::<[u8; CM_PRIV_LEN]>()) };
    *out = local.private_data(reason);
}

/// Checks a connection request's private data (`data`, `len` bytes; null is
/// malformed). Returns `SSI_REJ_NONE` and sets `*node` to the node it claims, which is
/// below `ssi_rdma_max_nodes()`; or the reject reason, with the log line for a request
/// from `from` (the address as `%pISc` prints it) in `msg`.
///
/// # Safety
///
/// `local` and `node` are valid; `data` is null or valid for reads of `len` bytes;
/// `from` is a NUL-terminated string; `msg` is valid for writes of `msg_len` bytes.
#[no_mangle]
unsafe extern "C" fn ssi_rdma_check_request(
    local: *const Local,
    data: *const u8,
    len: u32,
    from: *const c_char,
    node: *mut u32,
    msg: *mut u8,
    msg_len: usize,
) -> u8 {
    // SAFETY: Guaranteed by the caller.
    let (local, data) = unsafe { (&*local, bytes(data, len)) };
    match local.check_request(data) {
        Ok(n) => {
            // SAFETY: `node` is valid for writes (guaranteed by the caller).
            unsafe { *node = n };
            RejectReason::None.code()
        }
        Err(refusal) => {
            // SAFETY: `from` and `msg` are guaranteed by the caller.
            unsafe { write_c(msg, msg_len, &refusal.message(c_text(from))) };
            refusal.reason().code()
        }
    }
}

/// Checks a connection request that passed `ssi_rdma_check_request` against the peer
/// it claims to be (`peer`, `facts`): its source (`src_ip` if `src_ipv4`) must be the
/// configured address `configured_ip`. Returns `SSI_REJ_NONE`, or the reject reason
/// with the log line in `msg` (as `ssi_rdma_check_request`).
///
/// # Safety
///
/// `peer` is valid for reads and not changed during the call (the caller holds its
/// lock); `from` is a NUL-terminated string; `msg` is valid for writes of `msg_len`
/// bytes.
#[no_mangle]
unsafe extern "C" fn ssi_rdma_check_peer(
    peer: *const Peer,
    facts: PeerFacts,
    src_ipv4: bool,
    src_ip: u32,
    configured_ip: u32,
    from: *const c_char,
    msg: *mut u8,
    msg_len: usize,
) -> u8 {
    // SAFETY: Guaranteed by the caller.
    let peer = unsafe { &*peer };
    let source = src_ipv4.then_some(src_ip);
    match peer.check_request(&facts, source, configured_ip) {
        Ok(()) => RejectReason::None.code(),
        Err(refusal) => {
            // SAFETY: `from` and `msg` are guaranteed by the caller.
            unsafe { write_c(msg, msg_len, &refusal.message(c_text(from))) };
            refusal.reason().code()
        }
    }
}

/// Reads the private data (`data`, `len` bytes, null for none) of a reject from node
/// `peer`: if it is ssi's, writes the log line into `msg` and returns true.
///
/// # Safety
///
/// `local` is valid; `data` is null or valid for reads of `len` bytes; `msg` is valid
/// for writes of `msg_len` bytes.
#[no_mangle]
unsafe extern "C" fn ssi_rdma_rejection(
    local: *const Local,
    peer: u32,
    data: *const u8,
    len: u32,
    msg: *mut u8,
    msg_len: usize,
) -> bool {
    // SAFETY: Guaranteed by the caller.
    let (local, data) = unsafe { (&*local, bytes(data, len)) };
    match local.rejection(peer, data) {
        Some(r) => {
            // SAFETY: `msg` is guaranteed by the caller.
            unsafe { write_c(msg, msg_len, &r) };
            true
        }
        None => false,
    }
}

/// A new connection's state: connecting.
#[no_mangle]
extern "C" fn ssi_rdma_conn_new() -> Conn {
    Conn::new()
}

/// Whether work requests may be posted to the connection's send queue (it is up).
///
/// # Safety
///
/// `conn` is valid for reads and not changed during the call (its lock is held).
#[no_mangle]
unsafe extern "C" fn ssi_rdma_conn_may_send(conn: *const Conn) -> bool {
    // SAFETY: Guaranteed by the caller.
    unsafe { &*conn }.may_send()
}

/// Whether the connection's teardown has started.
///
/// # Safety
///
/// As `ssi_rdma_conn_may_send`.
#[no_mangle]
unsafe extern "C" fn ssi_rdma_conn_closing(conn: *const Conn) -> bool {
    // SAFETY: Guaranteed by the caller.
    unsafe { &*conn }.closing()
}

/// Whether the connection was reported up.
///
/// # Safety
///
/// As `ssi_rdma_conn_may_send`.
#[no_mangle]
unsafe extern "C" fn ssi_rdma_conn_announced(conn: *const Conn) -> bool {
    // SAFETY: Guaranteed by the caller.
    unsafe { &*conn }.announced()
}

/// The connection is established (CM event or first frame): `SSI_ACT_ANNOUNCE_UP`
/// once, else nothing.
///
/// # Safety
///
/// `conn` is valid and nothing else accesses it during the call (its lock is held).
#[no_mangle]
unsafe extern "C" fn ssi_rdma_conn_established(conn: *mut Conn) -> CAction {
    // SAFETY: Guaranteed by the caller.
    unsafe { &mut *conn }.established().into()
}

/// Something failed on the connection: `SSI_ACT_QUEUE_TEARDOWN` the first time, else
/// nothing.
///
/// # Safety
///
/// As `ssi_rdma_conn_established`.
#[no_mangle]
unsafe extern "C" fn ssi_rdma_conn_fail(conn: *mut Conn) -> CAction {
    // SAFETY: Guaranteed by the caller.
    unsafe { &mut *conn }.fail().into()
}

/// The connection's teardown starts: nothing is posted from now on.
///
/// # Safety
///
/// As `ssi_rdma_conn_established`.
#[no_mangle]
unsafe extern "C" fn ssi_rdma_conn_close(conn: *mut Conn) {
    // SAFETY: Guaranteed by the caller.
    unsafe { &mut *conn }.close()
}

/// The connection's teardown freed it; `reported_up`: it last reported the link up.
/// `SSI_ACT_ANNOUNCE_DOWN`, `SSI_ACT_REPLACED_CLOSED` or nothing.
///
/// # Safety
///
/// As `ssi_rdma_conn_may_send`.
#[no_mangle]
unsafe extern "C" fn ssi_rdma_conn_closed(conn: *const Conn, reported_up: bool) -> CAction {
    // SAFETY: Guaranteed by the caller.
    unsafe { &*conn }.closed(reported_up).into()
}

/// A peer core wants no link to.
#[no_mangle]
extern "C" fn ssi_rdma_peer_new() -> Peer {
    Peer::new()
}

/// Core wants a link to the peer: `SSI_ACT_CONNECT` at once on the active side.
///
/// # Safety
///
/// `local` is valid; `peer` is valid and nothing else accesses it during the call
/// (the caller holds its lock).
#[no_mangle]
unsafe extern "C" fn ssi_rdma_peer_connect(
    peer: *mut Peer,
    local: *const Local,
    facts: PeerFacts,
) -> CAction {
    // SAFETY: Guaranteed by the caller.
    let (peer, local) = unsafe { (&mut *peer, &*local) };
    peer.connect(local, &facts).into()
}

/// Whether a scheduled connection attempt to the peer may start now.
///
/// # Safety
///
/// `local` is valid; `peer` is valid and not changed during the call (the caller holds
/// its lock).
#[no_mangle]
unsafe extern "C" fn ssi_rdma_peer_may_connect(
    peer: *const Peer,
    local: *const Local,
    facts: PeerFacts,
) -> bool {
    // SAFETY: Guaranteed by the caller.
    let (peer, local) = unsafe { (&*peer, &*local) };
    peer.may_connect(local, &facts)
}

/// A connection attempt to the peer could not start: `SSI_ACT_CONNECT` later, or
/// nothing.
///
/// # Safety
///
/// As `ssi_rdma_peer_may_connect`.
#[no_mangle]
unsafe extern "C" fn ssi_rdma_peer_attempt_failed(
    peer: *const Peer,
    local: *const Local,
    facts: PeerFacts,
) -> CAction {
    // SAFETY: Guaranteed by the caller.
    let (peer, local) = unsafe { (&*peer, &*local) };
    peer.attempt_failed(local, &facts).into()
}

/// A connection to the peer was torn down (`active`: this node made it; `came_up`: it
/// was reported up): `SSI_ACT_CONNECT` later, or nothing.
///
/// # Safety
///
/// As `ssi_rdma_peer_connect`.
#[no_mangle]
unsafe extern "C" fn ssi_rdma_peer_closed(
    peer: *mut Peer,
    local: *const Local,
    facts: PeerFacts,
    active: bool,
    came_up: bool,
) -> CAction {
    // SAFETY: Guaranteed by the caller.
    let (peer, local) = unsafe { (&mut *peer, &*local) };
    peer.closed(local, &facts, active, came_up).into()
}

/// Core no longer wants a link to the peer, or the engine stops.
///
/// # Safety
///
/// `peer` is valid and nothing else accesses it during the call (the caller holds its
/// lock).
#[no_mangle]
unsafe extern "C" fn ssi_rdma_peer_forget(peer: *mut Peer) {
    // SAFETY: Guaranteed by the caller.
    unsafe { &mut *peer }.forget()
}
