// SPDX-License-Identifier: GPL-2.0

//! The transport registration ABI between `ssi_core` and the transport modules, and the
//! registry's bookkeeping.
//!
//! Kernel modules cannot link against each other's Rust crates, so a transport module
//! (`ssi_rdma`, `ssi_gpio_bus`) hands `ssi_core` a `#[repr(C)]` ops table through the
//! exported C symbol `ssi_transport_register()`. Both sides compile this file, so they
//! agree on the layout; the `version` field catches modules built from another version.

use core::ffi::c_void;

use super::ioctl::SSI_NAME_LEN;

/// Version of [`SsiTransportOps`]. A transport built for another version is refused.
pub const SSI_TRANSPORT_OPS_VERSION: u32 = 3;

/// [`SsiTransportOps::flags`]: `read_page` is not a one-sided hardware read but a
/// request that the peer's transport answers with the page's bytes (the GPIO bus). Core
/// reports it in `SsiTransportInfo::flags` and `/proc/ssi/transports`.
pub const SSI_TRANSPORT_F_EMULATED_READS: u32 = 1;

/// What `/proc/ssi/transports` and `ssictl status` append to a transport's state for
/// its `flags`.
pub fn flags_note(flags: u32) -> &'static str {
    if flags & SSI_TRANSPORT_F_EMULATED_READS != 0 {
        " (reads emulated)"
    } else {
        ""
    }
}

/// What a transport carries messages over.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// Kernel RDMA verbs (`ssi_rdma`).
    Rdma = 1,
    /// GPIO lines bit-banged between two boards (`ssi_gpio_bus`).
    GpioBus = 2,
}

impl TransportKind {
    /// Decodes the `kind` field of an ops table or of `SsiTransportInfo`.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Self::Rdma),
            2 => Some(Self::GpioBus),
            _ => None,
        }
    }

    /// Short lowercase label for listings.
    pub fn label(self) -> &'static str {
        match self {
            Self::Rdma => "rdma",
            Self::GpioBus => "gpio-bus",
        }
    }
}

/// The ops table a transport registers with `ssi_core` (C ABI).
///
/// The table must stay valid and unchanged until the transport calls
/// `ssi_transport_unregister()`; after that call returns, core never touches it again.
#[repr(C)]
pub struct SsiTransportOps {
    /// Must be [`SSI_TRANSPORT_OPS_VERSION`].
    pub version: u32,
    /// A [`TransportKind`] as a number.
    pub kind: u32,
    /// `SSI_TRANSPORT_F_*` bits.
    pub flags: u32,
    /// NUL-terminated name: 1 to 15 characters of `[a-z0-9_-]`, unique among transports.
    pub name: [u8; SSI_NAME_LEN],
    /// The transport's `struct module *` (its `THIS_MODULE`).
    pub owner: *mut c_void,
    /// Passed back unchanged to every callback.
    pub ctx: *mut c_void,
    /// Writes a one-line, NUL-free description of the transport's state (its devices and
    /// links) into `buf`, at most `len` bytes, and returns the length written or a
    /// negative errno. Called in process context with core's registry lock held: it must
    /// not register or unregister anything with core, nor block for long.
    pub describe: Option<unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize) -> isize>,
    /// Keeps a link to node `node` at `ipv4:port` (network-order address, host-order
    /// port): the transport connects (or accepts the peer's connection) and reconnects
    /// after failures until `disconnect`. Must not block: the work happens
    /// asynchronously and the transport reports links through `ssi_core_link_event()`.
    /// `-EOPNOTSUPP` if the transport does not reach nodes by IP address.
    pub connect:
        Option<unsafe extern "C" fn(ctx: *mut c_void, node: u32, ipv4: u32, port: u16) -> i32>,
    /// Forgets node `node`: drops its link and stops reconnecting. Must not block.
    pub disconnect: Option<unsafe extern "C" fn(ctx: *mut c_void, node: u32)>,
    /// Drops the current link to `node` (it stopped answering) and reconnects if it is
    /// still wanted. Must not block.
    pub reset: Option<unsafe extern "C" fn(ctx: *mut c_void, node: u32)>,
    /// Sends one frame of `len` bytes (at most `super::wire::MAX_FRAME`) to `node`. The
    /// transport copies it before returning. Process context; does not wait for the
    /// peer. `-ENOTCONN` without a link, `-ENOBUFS` when the send queue is full.
    pub send: Option<
        unsafe extern "C" fn(ctx: *mut c_void, node: u32, frame: *const u8, len: usize) -> i32,
    >,
    /// Lets `node` read the `struct page` `page` with one-sided reads until
    /// `unexpose_page`. On success writes the remote address, key and a cookie for
    /// `unexpose_page`. May sleep (it waits for the registration to complete).
    pub expose_page: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            node: u32,
            page: *mut c_void,
            addr: *mut u64,
            rkey: *mut u32,
            cookie: *mut u64,
        ) -> i32,
    >,
    /// Revokes an exposure. Unknown cookies (e.g. of a link that went away, which
    /// revokes its exposures itself) are ignored. May sleep.
    pub unexpose_page: Option<unsafe extern "C" fn(ctx: *mut c_void, node: u32, cookie: u64)>,
    /// Reads `len` bytes (at most a page) at `addr`/`rkey` on `node` into the start of the
    /// `struct page` `page` with a one-sided read; waits at most `timeout_ms`. May sleep.
    pub read_page: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            node: u32,
            addr: u64,
            rkey: u32,
            page: *mut c_void,
            len: u32,
            timeout_ms: u32,
        ) -> i32,
    >,
}

/// Largest transport id: ids are returned through the C ABI as a positive `int`.
pub const MAX_TRANSPORT_ID: u32 = i32::MAX as u32;

/// Why a registration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// The ops table has another [`SSI_TRANSPORT_OPS_VERSION`].
    UnsupportedVersion,
    /// `kind` is not a [`TransportKind`].
    UnknownKind,
    /// The name is empty, too long, not NUL-terminated or has other characters.
    BadName,
    /// A transport with this name is registered already.
    Duplicate,
    /// All [`super::ioctl::SSI_MAX_TRANSPORTS`] slots are taken.
    Full,
}

/// Checks a transport name: NUL-terminated within the array, 1 to 15 characters of
/// `[a-z0-9_-]`, zeros after the terminator. Returns its length.
pub fn validate_name(name: &[u8; SSI_NAME_LEN]) -> Result<usize, RegisterError> {
    let len = name
        .iter()
        .position(|&b| b == 0)
        .ok_or(RegisterError::BadName)?;
    let ok_char = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-';
    if len == 0 || !name[..len].iter().all(ok_char) || name[len..].iter().any(|&b| b != 0) {
        return Err(RegisterError::BadName);
    }
    Ok(len)
}

/// Builds a NUL-padded name from a string at compile time (for ops tables).
pub const fn make_name(s: &str) -> [u8; SSI_NAME_LEN] {
    let bytes = s.as_bytes();
    assert!(bytes.len() < SSI_NAME_LEN);
    let mut out = [0u8; SSI_NAME_LEN];
    let mut i = 0;
    while i < bytes.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// A registered transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransportEntry<T> {
    /// Registry id, never reused while the table lives.
    pub id: u32,
    /// What the transport is.
    pub kind: TransportKind,
    /// The ops version it registered with.
    pub ops_version: u32,
    /// Its validated name.
    pub name: [u8; SSI_NAME_LEN],
    /// What the owner of the table keeps with it (core: the ops pointer).
    pub payload: T,
}

/// The registry's bookkeeping: at most `N` transports, unique names, fresh ids.
pub struct TransportTable<T, const N: usize> {
    slots: [Option<TransportEntry<T>>; N],
    next_id: u32,
}

impl<T, const N: usize> TransportTable<T, N> {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            slots: [const { None }; N],
            next_id: 1,
        }
    }

    /// Registers a transport after validating what it claims. Returns its id.
    pub fn register(
        &mut self,
        ops_version: u32,
        kind: u32,
        name: &[u8; SSI_NAME_LEN],
        payload: T,
    ) -> Result<u32, RegisterError> {
        if ops_version != SSI_TRANSPORT_OPS_VERSION {
            return Err(RegisterError::UnsupportedVersion);
        }
        let kind = TransportKind::from_raw(kind).ok_or(RegisterError::UnknownKind)?;
        validate_name(name)?;
        if self.iter().any(|e| e.name == *name) {
            return Err(RegisterError::Duplicate);
        }
        if self.slots.iter().all(|s| s.is_some()) {
            return Err(RegisterError::Full);
        }
        // Ids stay in 1..=MAX_TRANSPORT_ID (they cross the C ABI as a positive `int`)
        // and are never those of a live entry. At most N - 1 are live, so this ends.
        let mut id = self.next_id;
        while id == 0 || id > MAX_TRANSPORT_ID || self.iter().any(|e| e.id == id) {
            id = if id >= MAX_TRANSPORT_ID { 1 } else { id + 1 };
        }
        self.next_id = if id >= MAX_TRANSPORT_ID { 1 } else { id + 1 };
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.is_none())
            .ok_or(RegisterError::Full)?;
        *slot = Some(TransportEntry {
            id,
            kind,
            ops_version,
            name: *name,
            payload,
        });
        Ok(id)
    }

    /// Removes the transport with this id and returns it.
    pub fn unregister(&mut self, id: u32) -> Option<TransportEntry<T>> {
        self.slots
            .iter_mut()
            .find(|s| matches!(s, Some(e) if e.id == id))?
            .take()
    }

    /// The registered transports, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &TransportEntry<T>> {
        self.slots.iter().flatten()
    }

    /// Number of registered transports.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when no transport is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T, const N: usize> Default for TransportTable<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_transport_table))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    const V: u32 = SSI_TRANSPORT_OPS_VERSION;
    const RDMA: u32 = TransportKind::Rdma as u32;

    #[test]
    fn registers_and_lists() {
        let mut t: TransportTable<u8, 4> = TransportTable::new();
        assert!(t.is_empty());
        let a = t.register(V, RDMA, &make_name("rdma"), 7);
        let b = t.register(V, TransportKind::GpioBus as u32, &make_name("gpio-bus"), 8);
        assert_eq!(a, Ok(1));
        assert_eq!(b, Ok(2));
        assert_eq!(t.len(), 2);
        let first = t.iter().next().map(|e| (e.id, e.kind, e.payload));
        assert_eq!(first, Some((1, TransportKind::Rdma, 7)));
    }

    #[test]
    fn refuses_bad_registrations() {
        let mut t: TransportTable<(), 2> = TransportTable::new();
        assert_eq!(
            t.register(V + 1, RDMA, &make_name("x"), ()),
            Err(RegisterError::UnsupportedVersion)
        );
        assert_eq!(
            t.register(V, 99, &make_name("x"), ()),
            Err(RegisterError::UnknownKind)
        );
        assert_eq!(
            t.register(V, RDMA, &make_name(""), ()),
            Err(RegisterError::BadName)
        );
        assert_eq!(
            t.register(V, RDMA, &make_name("Caps"), ()),
            Err(RegisterError::BadName)
        );
        assert_eq!(
            t.register(V, RDMA, &[b'a'; SSI_NAME_LEN], ()),
            Err(RegisterError::BadName)
        );
        let mut trailing = make_name("ok");
        trailing[5] = b'z';
        assert_eq!(
            t.register(V, RDMA, &trailing, ()),
            Err(RegisterError::BadName)
        );
        assert_eq!(t.register(V, RDMA, &make_name("a"), ()), Ok(1));
        assert_eq!(
            t.register(V, RDMA, &make_name("a"), ()),
            Err(RegisterError::Duplicate)
        );
        assert_eq!(t.register(V, RDMA, &make_name("b"), ()), Ok(2));
        assert_eq!(
            t.register(V, RDMA, &make_name("c"), ()),
            Err(RegisterError::Full)
        );
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn unregister_frees_the_slot_and_never_reuses_ids() {
        let mut t: TransportTable<(), 1> = TransportTable::new();
        assert_eq!(t.register(V, RDMA, &make_name("a"), ()), Ok(1));
        assert_eq!(t.unregister(5).map(|e| e.id), None);
        assert_eq!(t.unregister(1).map(|e| e.id), Some(1));
        assert_eq!(t.unregister(1).map(|e| e.id), None);
        assert!(t.is_empty());
        assert_eq!(t.register(V, RDMA, &make_name("a"), ()), Ok(2));
    }

    #[test]
    fn ids_wrap_within_the_c_int_range_and_skip_live_ones() {
        let mut t: TransportTable<(), 2> = TransportTable::new();
        t.next_id = MAX_TRANSPORT_ID;
        assert_eq!(
            t.register(V, RDMA, &make_name("a"), ()),
            Ok(MAX_TRANSPORT_ID)
        );
        assert_eq!(t.register(V, RDMA, &make_name("b"), ()), Ok(1));
        assert_eq!(
            t.unregister(MAX_TRANSPORT_ID).map(|e| e.id),
            Some(MAX_TRANSPORT_ID)
        );
        t.next_id = 1;
        // 1 is live: the next id is 2.
        assert_eq!(t.register(V, RDMA, &make_name("c"), ()), Ok(2));
    }
}
