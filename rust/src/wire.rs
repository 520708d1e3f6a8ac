// SPDX-License-Identifier: GPL-2.0

//! The ssi wire protocol: what nodes send each other over any transport.
//!
//! A frame is a fixed 24-byte header followed by `payload_len` bytes of a typed
//! payload. Every multi-byte field is little-endian. [`decode`] validates everything
//! (magic, version, type, lengths, reserved bits, each payload field) and returns an
//! error for any malformed input, never panicking: frames come from the network and
//! may be hostile.
//!
//! ```text
//!  0      magic     u32  "SSI1" (0x3149_5353 read little-endian)
//!  4      version   u8   WIRE_VERSION
//!  5      msg_type  u8   MsgType
//!  6      flags     u16  FLAG_* (unknown bits rejected)
//!  8      src       u16  sending node
//! 10      dst       u16  receiving node
//! 12      seq       u32  sender's sequence number; a response echoes its request's
//! 16      len       u32  payload length
//! 20      reserved  u32  zero
//! 24      payload
//! ```

/// `b"SSI1"` as a little-endian `u32`.
pub const WIRE_MAGIC: u32 = u32::from_le_bytes(*b"SSI1");
/// Version of this protocol. A peer with another version is refused at hello.
pub const WIRE_VERSION: u8 = 2;
/// Size of the header.
pub const HEADER_LEN: usize = 24;
/// Largest payload (a page of data plus its descriptor).
pub const MAX_PAYLOAD: usize = 4096 + 64;
/// Largest frame.
pub const MAX_FRAME: usize = HEADER_LEN + MAX_PAYLOAD;
/// Longest key of the bookkeeping service.
pub const MAX_KEY: usize = 48;
/// Longest value of the bookkeeping service.
pub const MAX_VALUE: usize = 192;
/// Longest opaque ping payload.
pub const MAX_PING: usize = 1024;

/// Most bytes a [`Message::Service`] carries (the payload minus service id and length).
pub const MAX_SERVICE_DATA: usize = MAX_PAYLOAD - 4;

/// The frame is a response to the request with the same `seq`.
pub const FLAG_RESPONSE: u16 = 1 << 0;
const KNOWN_FLAGS: u16 = FLAG_RESPONSE;

/// Why a frame was rejected (or could not be encoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than a header, or than the header says.
    Truncated,
    /// Longer than the header says.
    TrailingBytes,
    /// Not an ssi frame.
    BadMagic,
    /// Another protocol version.
    BadVersion,
    /// Unknown message type.
    UnknownType,
    /// Unknown flag bits or non-zero reserved field.
    BadFlags,
    /// Payload longer than [`MAX_PAYLOAD`] or than its message allows.
    TooLong,
    /// Payload length does not match the message's layout.
    BadLength,
    /// A field holds a value its message does not allow.
    BadField,
    /// The output buffer is too small (encoding only).
    BufferTooSmall,
}

/// Message types.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgType {
    /// First message on a new connection, both ways.
    Hello = 1,
    /// Liveness and leader view, periodically.
    Heartbeat = 2,
    /// RTT measurement request; the response echoes the payload.
    Ping = 3,
    /// Where to RDMA-READ an exposed page: request carries the handle.
    PageQuery = 4,
    /// Answer to [`MsgType::PageQuery`].
    PageInfo = 5,
    /// Bookkeeping write, sent to the leader.
    KvPut = 6,
    /// Bookkeeping update, leader to followers (and the answer to a put).
    KvUpdate = 7,
    /// A follower missed updates and asks the leader to resend from a version.
    KvSync = 8,
    /// Generic failure answer to a request: an errno.
    Error = 9,
    /// A message of a service another module registered with core (opaque to core).
    Service = 10,
    /// A bookkeeping write that fails if the key exists (to the leader).
    KvCreate = 11,
    /// A fault on a region page, to the region's home (directory).
    PageFault = 12,
    /// The directory's plan for a fault.
    PagePlan = 13,
    /// The faulting node carried out (or gave up) a plan.
    PageDone = 14,
    /// Asks a page's owner for its contents.
    PageFetch = 15,
    /// Page contents (or an empty acknowledgement).
    PageData = 16,
    /// Asks a node to drop its copy of a page.
    PageInvalidate = 17,
    /// A private-memory region is gone (from its home, to every node).
    RegionGone = 18,
    /// A faulting node no longer needs the copy it revoked with a `PageFetch`.
    PageRelease = 19,
    /// A node wrote a page it took whole by reading it.
    PageWritten = 20,
}

impl MsgType {
    /// Decodes a type byte.
    pub fn from_raw(raw: u8) -> Option<Self> {
        Some(match raw {
            1 => Self::Hello,
            2 => Self::Heartbeat,
            3 => Self::Ping,
            4 => Self::PageQuery,
            5 => Self::PageInfo,
            6 => Self::KvPut,
            7 => Self::KvUpdate,
            8 => Self::KvSync,
            9 => Self::Error,
            10 => Self::Service,
            11 => Self::KvCreate,
            12 => Self::PageFault,
            13 => Self::PagePlan,
            14 => Self::PageDone,
            15 => Self::PageFetch,
            16 => Self::PageData,
            17 => Self::PageInvalidate,
            18 => Self::RegionGone,
            19 => Self::PageRelease,
            20 => Self::PageWritten,
            _ => return None,
        })
    }

    /// Highest type byte in use: a table indexed by type bytes has `MAX_RAW + 1` slots.
    pub const MAX_RAW: usize = 20;

    /// The type's name, as listings print it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Hello => "hello",
            Self::Heartbeat => "heartbeat",
            Self::Ping => "ping",
            Self::PageQuery => "page-query",
            Self::PageInfo => "page-info",
            Self::KvPut => "kv-put",
            Self::KvUpdate => "kv-update",
            Self::KvSync => "kv-sync",
            Self::Error => "error",
            Self::Service => "service",
            Self::KvCreate => "kv-create",
            Self::PageFault => "page-fault",
            Self::PagePlan => "page-plan",
            Self::PageDone => "page-done",
            Self::PageFetch => "page-fetch",
            Self::PageData => "page-data",
            Self::PageInvalidate => "page-invalidate",
            Self::RegionGone => "region-gone",
            Self::PageRelease => "page-release",
            Self::PageWritten => "page-written",
        }
    }
}

/// A decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The message type.
    pub msg_type: MsgType,
    /// `FLAG_*` bits.
    pub flags: u16,
    /// Sending node.
    pub src: u16,
    /// Receiving node.
    pub dst: u16,
    /// Sequence number (a response echoes its request's).
    pub seq: u32,
}

impl Header {
    /// True for responses.
    pub fn is_response(&self) -> bool {
        self.flags & FLAG_RESPONSE != 0
    }
}

/// A typed message. Variable-length fields borrow from the decoded frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// Connection handshake.
    Hello {
        /// `/dev/ssi` ABI version of the sender (`super::ioctl::SSI_ABI_VERSION`).
        abi_version: u32,
        /// Changes each time the sender's `ssi_core` is loaded: tells a restart from
        /// a reconnect.
        incarnation: u32,
    },
    /// Liveness.
    Heartbeat {
        /// Sender's incarnation.
        incarnation: u32,
        /// The leader the sender currently sees.
        leader: u16,
        /// Highest bookkeeping version the sender has applied.
        kv_version: u64,
    },
    /// Round-trip probe; the response carries the same bytes.
    Ping {
        /// Opaque bytes, at most [`MAX_PING`].
        data: &'a [u8],
    },
    /// Asks where exposed page `handle` can be read.
    PageQuery {
        /// The page handle the exposing node published.
        handle: u64,
    },
    /// Where to read a page: remote address and key for a one-sided RDMA READ.
    PageInfo {
        /// The handle asked for.
        handle: u64,
        /// Remote (DMA/IO virtual) address.
        addr: u64,
        /// Remote key.
        rkey: u32,
        /// Bytes readable at `addr`.
        len: u32,
    },
    /// A bookkeeping write (to the leader). An empty value deletes the key.
    KvPut {
        /// Key, 1..=[`MAX_KEY`] bytes.
        key: &'a [u8],
        /// Value, 0..=[`MAX_VALUE`] bytes.
        value: &'a [u8],
    },
    /// A bookkeeping update. A follower applies it only if its own version is
    /// `prev_version`, which chains updates (live ones, and the sparse ones of a resync)
    /// so that a gap is always detected.
    KvUpdate {
        /// The version the receiver must be at.
        prev_version: u64,
        /// The version this update creates (the leader's counter), > `prev_version`.
        version: u64,
        /// Key, 1..=[`MAX_KEY`] bytes.
        key: &'a [u8],
        /// Value, 0..=[`MAX_VALUE`] bytes; empty means deleted.
        value: &'a [u8],
    },
    /// Resend every update after `from_version`.
    KvSync {
        /// Highest version the follower has.
        from_version: u64,
    },
    /// A request failed.
    Error {
        /// Positive errno.
        errno: u32,
    },
    /// Request or answer of a registered service.
    Service {
        /// The service id (non-zero).
        service: u16,
        /// Service-defined bytes, at most [`MAX_SERVICE_DATA`].
        data: &'a [u8],
    },
    /// Like `KvPut`, but the leader refuses it (`EEXIST`) if the key exists.
    KvCreate {
        /// Key, 1..=[`MAX_KEY`] bytes.
        key: &'a [u8],
        /// Value, 1..=[`MAX_VALUE`] bytes.
        value: &'a [u8],
    },
    /// Node `src` faults on `page` of region `region` (its generation).
    PageFault {
        /// The region's generation (cluster-wide unique).
        region: u64,
        /// Page index.
        page: u32,
        /// A write fault.
        write: bool,
    },
    /// The directory's answer to a `PageFault`: what the faulting node does.
    PagePlan {
        /// This node must write-protect its copy ([`NO_NODE`]: none).
        downgrade: u16,
        /// Where the contents come from.
        source: PlanSource,
        /// The node holding the current contents now.
        owner: u16,
        /// Bitmap of nodes whose copies must be dropped.
        invalidate: u64,
        /// Map it writable.
        writable: bool,
        /// The faulting node becomes the only holder (see `super::directory::Plan`).
        alone: bool,
        /// The contents when `source` is `Inline` ([`PAGE_DATA_LEN`] bytes), else empty.
        data: &'a [u8],
    },
    /// The faulting node carried out the plan (`ok`) or gave it up: the page is free
    /// for the next fault. Not answered.
    PageDone {
        /// The region's generation.
        region: u64,
        /// Page index.
        page: u32,
        /// True if the plan was carried out.
        ok: bool,
        /// Not carried out: the nodes whose read-only copies it dropped before it failed.
        dropped: u64,
    },
    /// Asks the owner of a page for its contents; answered with `PageData`.
    PageFetch {
        /// The region's generation.
        region: u64,
        /// Page index.
        page: u32,
        /// The owner write-protects its copy before answering.
        downgrade: bool,
        /// Nonzero: the owner also revokes its copy (zaps every mapping of it and keeps
        /// it unusable until its directory grants it again or a `PageRelease` with this
        /// tag from the same node frees it).
        revoke: u32,
    },
    /// Contents of a page ([`PAGE_DATA_LEN`] bytes), or empty to acknowledge.
    PageData {
        /// The bytes.
        data: &'a [u8],
    },
    /// Asks a node to drop its copy of a page; answered with an empty `PageData`.
    PageInvalidate {
        /// The region's generation.
        region: u64,
        /// Page index.
        page: u32,
    },
    /// The plan that revoked a copy with `PageFetch { revoke: tag }` completed: the
    /// owner frees that copy if it is still the one revoked by the sender with this tag.
    /// Not answered.
    PageRelease {
        /// The region's generation.
        region: u64,
        /// Page index.
        page: u32,
        /// The `revoke` tag of the fetch.
        tag: u32,
    },
    /// To the region's home: the sender, which took the page whole by reading it
    /// (`PagePlan::alone`), upgraded its copy to write it. Not answered.
    PageWritten {
        /// The region's generation.
        region: u64,
        /// Page index.
        page: u32,
    },
    /// From a private-memory region's home: the region is gone (the process unmapped it
    /// or ended), every node drops its state. Not answered. Private-memory regions have
    /// no bookkeeping key, so this notice is how their removal reaches the other nodes.
    RegionGone {
        /// The region's generation.
        region: u64,
    },
}

/// Bytes of the page contents `PagePlan` and `PageData` carry.
pub const PAGE_DATA_LEN: usize = 4096;
/// "No node" in node fields.
pub const NO_NODE: u16 = u16::MAX;

/// Where a faulting node gets a page's contents from (see `super::directory::Source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanSource {
    /// Zero-fill.
    Zero,
    /// Its own copy.
    Local,
    /// Fetch from this node.
    Node(u16),
    /// The contents are in the plan.
    Inline,
}

impl Message<'_> {
    /// The type of this message.
    pub fn msg_type(&self) -> MsgType {
        match self {
            Self::Hello { .. } => MsgType::Hello,
            Self::Heartbeat { .. } => MsgType::Heartbeat,
            Self::Ping { .. } => MsgType::Ping,
            Self::PageQuery { .. } => MsgType::PageQuery,
            Self::PageInfo { .. } => MsgType::PageInfo,
            Self::KvPut { .. } => MsgType::KvPut,
            Self::KvUpdate { .. } => MsgType::KvUpdate,
            Self::KvSync { .. } => MsgType::KvSync,
            Self::Error { .. } => MsgType::Error,
            Self::Service { .. } => MsgType::Service,
            Self::KvCreate { .. } => MsgType::KvCreate,
            Self::PageFault { .. } => MsgType::PageFault,
            Self::PagePlan { .. } => MsgType::PagePlan,
            Self::PageDone { .. } => MsgType::PageDone,
            Self::PageFetch { .. } => MsgType::PageFetch,
            Self::PageData { .. } => MsgType::PageData,
            Self::PageInvalidate { .. } => MsgType::PageInvalidate,
            Self::PageRelease { .. } => MsgType::PageRelease,
            Self::PageWritten { .. } => MsgType::PageWritten,
            Self::RegionGone { .. } => MsgType::RegionGone,
        }
    }
}

/// Writes little-endian fields into a buffer, failing instead of overflowing (also
/// used by the other encodings in this crate).
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }
    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.pos
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) -> Result<(), WireError> {
        let end = self
            .pos
            .checked_add(b.len())
            .ok_or(WireError::BufferTooSmall)?;
        self.buf
            .get_mut(self.pos..end)
            .ok_or(WireError::BufferTooSmall)?
            .copy_from_slice(b);
        self.pos = end;
        Ok(())
    }
    pub(crate) fn u8(&mut self, v: u8) -> Result<(), WireError> {
        self.bytes(&[v])
    }
    pub(crate) fn u16(&mut self, v: u16) -> Result<(), WireError> {
        self.bytes(&v.to_le_bytes())
    }
    pub(crate) fn u32(&mut self, v: u32) -> Result<(), WireError> {
        self.bytes(&v.to_le_bytes())
    }
    pub(crate) fn u64(&mut self, v: u64) -> Result<(), WireError> {
        self.bytes(&v.to_le_bytes())
    }
    /// A length-prefixed (u16) byte string of at most `max` bytes.
    pub(crate) fn blob(&mut self, b: &[u8], max: usize) -> Result<(), WireError> {
        if b.len() > max {
            return Err(WireError::TooLong);
        }
        // max <= MAX_PAYLOAD < u16::MAX.
        self.u16(b.len() as u16)?;
        self.bytes(b)
    }
}

/// Reads little-endian fields from a payload; every read is bounds-checked (also used
/// by the other encodings in this crate).
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.pos..];
        self.pos = self.buf.len();
        rest
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::BadLength)?;
        let b = self.buf.get(self.pos..end).ok_or(WireError::BadLength)?;
        self.pos = end;
        Ok(b)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }
    pub(crate) fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(crate) fn blob(&mut self, max: usize) -> Result<&'a [u8], WireError> {
        let n = usize::from(self.u16()?);
        if n > max {
            return Err(WireError::TooLong);
        }
        self.bytes(n)
    }
    pub(crate) fn finish(&self) -> Result<(), WireError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(WireError::BadLength)
        }
    }
}

fn check_key_value(key: &[u8], value: &[u8]) -> Result<(), WireError> {
    if key.is_empty() {
        return Err(WireError::BadField);
    }
    if key.len() > MAX_KEY || value.len() > MAX_VALUE {
        return Err(WireError::TooLong);
    }
    Ok(())
}

fn encode_payload(msg: &Message<'_>, w: &mut Writer<'_>) -> Result<(), WireError> {
    match *msg {
        Message::Hello {
            abi_version,
            incarnation,
        } => {
            w.u32(abi_version)?;
            w.u32(incarnation)
        }
        Message::Heartbeat {
            incarnation,
            leader,
            kv_version,
        } => {
            w.u32(incarnation)?;
            w.u16(leader)?;
            w.u16(0)?;
            w.u64(kv_version)
        }
        Message::Ping { data } => w.blob(data, MAX_PING),
        Message::PageQuery { handle } => w.u64(handle),
        Message::PageInfo {
            handle,
            addr,
            rkey,
            len,
        } => {
            w.u64(handle)?;
            w.u64(addr)?;
            w.u32(rkey)?;
            w.u32(len)
        }
        Message::KvPut { key, value } => {
            check_key_value(key, value)?;
            w.blob(key, MAX_KEY)?;
            w.blob(value, MAX_VALUE)
        }
        Message::KvUpdate {
            prev_version,
            version,
            key,
            value,
        } => {
            check_key_value(key, value)?;
            if version <= prev_version {
                return Err(WireError::BadField);
            }
            w.u64(prev_version)?;
            w.u64(version)?;
            w.blob(key, MAX_KEY)?;
            w.blob(value, MAX_VALUE)
        }
        Message::KvSync { from_version } => w.u64(from_version),
        Message::Error { errno } => {
            if errno == 0 || errno > 4095 {
                return Err(WireError::BadField);
            }
            w.u32(errno)
        }
        Message::Service { service, data } => {
            if service == 0 {
                return Err(WireError::BadField);
            }
            w.u16(service)?;
            w.blob(data, MAX_SERVICE_DATA)
        }
        Message::KvCreate { key, value } => {
            check_key_value(key, value)?;
            if value.is_empty() {
                return Err(WireError::BadField);
            }
            w.blob(key, MAX_KEY)?;
            w.blob(value, MAX_VALUE)
        }
        Message::PageFault {
            region,
            page,
            write,
        } => {
            w.u64(region)?;
            w.u32(page)?;
            w.u32(u32::from(write))
        }
        Message::PagePlan {
            downgrade,
            source,
            owner,
            invalidate,
            writable,
            alone,
            data,
        } => {
            let (kind, node) = match source {
                PlanSource::Zero => (0, NO_NODE),
                PlanSource::Local => (1, NO_NODE),
                PlanSource::Node(n) => (2, n),
                PlanSource::Inline => (3, NO_NODE),
            };
            if (kind == 3) != (data.len() == PAGE_DATA_LEN) || (kind == 2 && node == NO_NODE) {
                return Err(WireError::BadField);
            }
            w.u16(downgrade)?;
            w.u8(kind)?;
            w.u8(u8::from(writable) | u8::from(alone) << 1)?;
            w.u16(node)?;
            w.u16(owner)?;
            w.u64(invalidate)?;
            w.blob(data, PAGE_DATA_LEN)
        }
        Message::PageDone {
            region,
            page,
            ok,
            dropped,
        } => {
            w.u64(region)?;
            w.u32(page)?;
            w.u32(u32::from(ok))?;
            w.u64(dropped)
        }
        Message::PageFetch {
            region,
            page,
            downgrade,
            revoke,
        } => {
            w.u64(region)?;
            w.u32(page)?;
            w.u32(u32::from(downgrade))?;
            w.u32(revoke)
        }
        Message::PageData { data } => {
            if !data.is_empty() && data.len() != PAGE_DATA_LEN {
                return Err(WireError::BadField);
            }
            w.blob(data, PAGE_DATA_LEN)
        }
        Message::PageInvalidate { region, page } => {
            w.u64(region)?;
            w.u32(page)
        }
        Message::PageRelease { region, page, tag } => {
            w.u64(region)?;
            w.u32(page)?;
            w.u32(tag)
        }
        Message::PageWritten { region, page } => {
            w.u64(region)?;
            w.u32(page)
        }
        Message::RegionGone { region } => w.u64(region),
    }
}

/// A 0/1 field.
fn flag(v: u32) -> Result<bool, WireError> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(WireError::BadField),
    }
}

fn decode_payload(t: MsgType, payload: &[u8]) -> Result<Message<'_>, WireError> {
    let mut r = Reader::new(payload);
    let msg = match t {
        MsgType::Hello => Message::Hello {
            abi_version: r.u32()?,
            incarnation: r.u32()?,
        },
        MsgType::Heartbeat => {
            let incarnation = r.u32()?;
            let leader = r.u16()?;
            if r.u16()? != 0 {
                return Err(WireError::BadField);
            }
            Message::Heartbeat {
                incarnation,
                leader,
                kv_version: r.u64()?,
            }
        }
        MsgType::Ping => Message::Ping {
            data: r.blob(MAX_PING)?,
        },
        MsgType::PageQuery => Message::PageQuery { handle: r.u64()? },
        MsgType::PageInfo => Message::PageInfo {
            handle: r.u64()?,
            addr: r.u64()?,
            rkey: r.u32()?,
            len: r.u32()?,
        },
        MsgType::KvPut => {
            let (key, value) = (r.blob(MAX_KEY)?, r.blob(MAX_VALUE)?);
            check_key_value(key, value)?;
            Message::KvPut { key, value }
        }
        MsgType::KvUpdate => {
            let (prev_version, version) = (r.u64()?, r.u64()?);
            if version <= prev_version {
                return Err(WireError::BadField);
            }
            let (key, value) = (r.blob(MAX_KEY)?, r.blob(MAX_VALUE)?);
            check_key_value(key, value)?;
            Message::KvUpdate {
                prev_version,
                version,
                key,
                value,
            }
        }
        MsgType::KvSync => Message::KvSync {
            from_version: r.u64()?,
        },
        MsgType::Error => {
            let errno = r.u32()?;
            if errno == 0 || errno > 4095 {
                return Err(WireError::BadField);
            }
            Message::Error { errno }
        }
        MsgType::Service => {
            let service = r.u16()?;
            if service == 0 {
                return Err(WireError::BadField);
            }
            Message::Service {
                service,
                data: r.blob(MAX_SERVICE_DATA)?,
            }
        }
        MsgType::KvCreate => {
            let (key, value) = (r.blob(MAX_KEY)?, r.blob(MAX_VALUE)?);
            check_key_value(key, value)?;
            if value.is_empty() {
                return Err(WireError::BadField);
            }
            Message::KvCreate { key, value }
        }
        MsgType::PageFault => Message::PageFault {
            region: r.u64()?,
            page: r.u32()?,
            write: flag(r.u32()?)?,
        },
        MsgType::PagePlan => {
            let downgrade = r.u16()?;
            let kind = r.array::<1>()?[0];
            let access = r.array::<1>()?[0];
            if access > 3 {
                return Err(WireError::BadField);
            }
            let (writable, alone) = (access & 1 != 0, access & 2 != 0);
            let node = r.u16()?;
            let owner = r.u16()?;
            let invalidate = r.u64()?;
            let data = r.blob(PAGE_DATA_LEN)?;
            let source = match kind {
                0 => PlanSource::Zero,
                1 => PlanSource::Local,
                2 => PlanSource::Node(node),
                3 => PlanSource::Inline,
                _ => return Err(WireError::BadField),
            };
            if (kind == 3) != (data.len() == PAGE_DATA_LEN)
                || (kind != 2 && node != NO_NODE)
                || (kind == 2 && node == NO_NODE)
            {
                return Err(WireError::BadField);
            }
            Message::PagePlan {
                downgrade,
                source,
                owner,
                invalidate,
                writable,
                alone,
                data,
            }
        }
        MsgType::PageDone => Message::PageDone {
            region: r.u64()?,
            page: r.u32()?,
            ok: flag(r.u32()?)?,
            dropped: r.u64()?,
        },
        MsgType::PageFetch => Message::PageFetch {
            region: r.u64()?,
            page: r.u32()?,
            downgrade: flag(r.u32()?)?,
            revoke: r.u32()?,
        },
        MsgType::PageData => {
            let data = r.blob(PAGE_DATA_LEN)?;
            if !data.is_empty() && data.len() != PAGE_DATA_LEN {
                return Err(WireError::BadField);
            }
            Message::PageData { data }
        }
        MsgType::PageInvalidate => Message::PageInvalidate {
            region: r.u64()?,
            page: r.u32()?,
        },
        MsgType::PageRelease => Message::PageRelease {
            region: r.u64()?,
            page: r.u32()?,
            tag: r.u32()?,
        },
        MsgType::PageWritten => Message::PageWritten {
            region: r.u64()?,
            page: r.u32()?,
        },
        MsgType::RegionGone => Message::RegionGone { region: r.u64()? },
    };
    r.finish()?;
    Ok(msg)
}

/// Encodes a frame into `buf`; returns its length.
pub fn encode(
    msg: &Message<'_>,
    flags: u16,
    src: u16,
    dst: u16,
    seq: u32,
    buf: &mut [u8],
) -> Result<usize, WireError> {
    if flags & !KNOWN_FLAGS != 0 {
        return Err(WireError::BadFlags);
    }
    if buf.len() < HEADER_LEN {
        return Err(WireError::BufferTooSmall);
    }
    let (head, body) = buf.split_at_mut(HEADER_LEN);
    let mut w = Writer::new(body);
    encode_payload(msg, &mut w)?;
    let len = w.pos;
    if len > MAX_PAYLOAD {
        return Err(WireError::TooLong);
    }
    let mut h = Writer::new(head);
    h.u32(WIRE_MAGIC)?;
    h.u8(WIRE_VERSION)?;
    h.u8(msg.msg_type() as u8)?;
    h.u16(flags)?;
    h.u16(src)?;
    h.u16(dst)?;
    h.u32(seq)?;
    // len <= MAX_PAYLOAD, which fits in u32.
    h.u32(len as u32)?;
    h.u32(0)?;
    Ok(HEADER_LEN + len)
}

/// The message type of `frame` from its header alone (no validation of the rest), for
/// a transport that treats some types specially; `None` if it is not an ssi frame.
pub fn frame_type(frame: &[u8]) -> Option<MsgType> {
    let mut r = Reader::new(frame);
    if r.u32().ok()? != WIRE_MAGIC {
        return None;
    }
    let [_version, raw_type] = r.array::<2>().ok()?;
    MsgType::from_raw(raw_type)
}

/// Decodes and validates one complete frame.
pub fn decode(frame: &[u8]) -> Result<(Header, Message<'_>), WireError> {
    let mut r = Reader::new(frame);
    let magic = r.u32().map_err(|_| WireError::Truncated)?;
    if magic != WIRE_MAGIC {
        return Err(WireError::BadMagic);
    }
    let head = r.bytes(HEADER_LEN - 4).map_err(|_| WireError::Truncated)?;
    let mut h = Reader::new(head);
    let version = h.array::<1>()?[0];
    let raw_type = h.array::<1>()?[0];
    let flags = h.u16()?;
    let src = h.u16()?;
    let dst = h.u16()?;
    let seq = h.u32()?;
    let len = h.u32()?;
    let reserved = h.u32()?;
    if version != WIRE_VERSION {
        return Err(WireError::BadVersion);
    }
    let msg_type = MsgType::from_raw(raw_type).ok_or(WireError::UnknownType)?;
    if flags & !KNOWN_FLAGS != 0 || reserved != 0 {
        return Err(WireError::BadFlags);
    }
    let len = usize::try_from(len).map_err(|_| WireError::TooLong)?;
    if len > MAX_PAYLOAD {
        return Err(WireError::TooLong);
    }
    let payload = &frame[HEADER_LEN..];
    if payload.len() < len {
        return Err(WireError::Truncated);
    }
    if payload.len() > len {
        return Err(WireError::TrailingBytes);
    }
    let msg = decode_payload(msg_type, payload)?;
    Ok((
        Header {
            msg_type,
            flags,
            src,
            dst,
            seq,
        },
        msg,
    ))
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_wire))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    fn round_trip(msg: Message<'_>) -> bool {
        let mut buf = [0u8; MAX_FRAME];
        let n = match encode(&msg, FLAG_RESPONSE, 3, 7, 0xdead_beef, &mut buf) {
            Ok(n) => n,
            Err(_) => return false,
        };
        match decode(&buf[..n]) {
            Ok((h, m)) => {
                h == Header {
                    msg_type: msg.msg_type(),
                    flags: FLAG_RESPONSE,
                    src: 3,
                    dst: 7,
                    seq: 0xdead_beef,
                } && m == msg
            }
            Err(_) => false,
        }
    }

    #[test]
    fn every_type_has_its_own_label_and_fits_the_table() {
        let mut seen = [""; MsgType::MAX_RAW];
        let mut n = 0;
        for raw in 0..=255u8 {
            let Some(t) = MsgType::from_raw(raw) else {
                continue;
            };
            assert_eq!(t as u8, raw);
            assert!(usize::from(raw) <= MsgType::MAX_RAW && n < MsgType::MAX_RAW);
            assert!(!t.label().is_empty() && !seen[..n].contains(&t.label()));
            seen[n] = t.label();
            n += 1;
        }
        assert_eq!(n, MsgType::MAX_RAW);
    }

    #[test]
    fn every_message_type_round_trips() {
        assert!(round_trip(Message::Hello {
            abi_version: 1,
            incarnation: 42
        }));
        assert!(round_trip(Message::Heartbeat {
            incarnation: 9,
            leader: 0,
            kv_version: u64::MAX
        }));
        assert!(round_trip(Message::Ping {
            data: b"0123456789"
        }));
        assert!(round_trip(Message::Ping { data: &[] }));
        assert!(round_trip(Message::PageQuery { handle: 77 }));
        assert!(round_trip(Message::PageInfo {
            handle: 1,
            addr: 0xffff_8880_0000_0000,
            rkey: 5,
            len: 4096
        }));
        assert!(round_trip(Message::KvPut {
            key: b"region/a",
            value: b"home=1"
        }));
        assert!(round_trip(Message::KvPut {
            key: b"k",
            value: &[]
        }));
        assert!(round_trip(Message::KvUpdate {
            prev_version: 2,
            version: 3,
            key: b"k",
            value: b"v"
        }));
        assert!(!round_trip(Message::KvUpdate {
            prev_version: 3,
            version: 3,
            key: b"k",
            value: b"v"
        }));
        assert!(round_trip(Message::KvSync { from_version: 12 }));
        assert!(round_trip(Message::Error { errno: 110 }));
        assert!(round_trip(Message::Service {
            service: 1,
            data: b"probe",
        }));
        assert!(round_trip(Message::Service {
            service: 65535,
            data: &[0xa5; MAX_SERVICE_DATA],
        }));
        assert!(round_trip(Message::KvCreate {
            key: b"region/a",
            value: b"v"
        }));
        assert!(!round_trip(Message::KvCreate {
            key: b"region/a",
            value: &[]
        }));
        assert!(round_trip(Message::PageFault {
            region: u64::MAX,
            page: 7,
            write: true
        }));
        // Static: kernel stacks (KUnit) are small.
        static PAGE: [u8; PAGE_DATA_LEN] = [0x5a; PAGE_DATA_LEN];
        let page = &PAGE;
        assert!(round_trip(Message::PagePlan {
            downgrade: NO_NODE,
            source: PlanSource::Inline,
            owner: 1,
            invalidate: 0b110,
            writable: true,
            alone: true,
            data: page,
        }));
        assert!(round_trip(Message::PagePlan {
            downgrade: 2,
            source: PlanSource::Node(2),
            owner: 2,
            invalidate: 0,
            writable: false,
            alone: false,
            data: &[],
        }));
        // Inline without data, data without Inline, a node source of "no node".
        for (source, data) in [
            (PlanSource::Inline, &[][..]),
            (PlanSource::Zero, &page[..]),
            (PlanSource::Node(NO_NODE), &[][..]),
        ] {
            assert!(!round_trip(Message::PagePlan {
                downgrade: NO_NODE,
                source,
                owner: 1,
                invalidate: 0,
                writable: false,
                alone: false,
                data,
            }));
        }
        assert!(round_trip(Message::PageDone {
            region: 1,
            page: 2,
            ok: false,
            dropped: 0b101
        }));
        assert!(round_trip(Message::PageFetch {
            region: 1,
            page: 2,
            downgrade: true,
            revoke: 7
        }));
        assert!(round_trip(Message::PageWritten { region: 3, page: 4 }));
        assert!(round_trip(Message::PageRelease {
            region: 3,
            page: 4,
            tag: 7
        }));
        assert!(round_trip(Message::PageData { data: page }));
        assert!(round_trip(Message::PageData { data: &[] }));
        assert!(!round_trip(Message::PageData { data: &page[..100] }));
        assert!(round_trip(Message::PageInvalidate { region: 3, page: 4 }));
        assert!(round_trip(Message::RegionGone { region: 5 }));
    }

    #[test]
    fn flag_fields_are_zero_or_one() {
        let mut buf = [0u8; 64];
        let n = encode(
            &Message::PageFault {
                region: 1,
                page: 2,
                write: true,
            },
            0,
            1,
            2,
            3,
            &mut buf,
        )
        .unwrap();
        buf[HEADER_LEN + 12] = 2;
        assert_eq!(decode(&buf[..n]).err(), Some(WireError::BadField));
    }

    #[test]
    fn header_layout_is_fixed() {
        let mut buf = [0u8; 64];
        let n = encode(
            &Message::KvSync {
                from_version: 0x0102_0304_0506_0708,
            },
            0,
            1,
            2,
            3,
            &mut buf,
        );
        assert_eq!(n, Ok(HEADER_LEN + 8));
        assert_eq!(&buf[0..4], b"SSI1");
        assert_eq!(buf[4], WIRE_VERSION);
        assert_eq!(buf[5], MsgType::KvSync as u8);
        assert_eq!(&buf[8..10], &[1, 0]);
        assert_eq!(&buf[10..12], &[2, 0]);
        assert_eq!(&buf[12..16], &[3, 0, 0, 0]);
        assert_eq!(&buf[16..20], &[8, 0, 0, 0]);
        assert_eq!(&buf[24..32], &[8, 7, 6, 5, 4, 3, 2, 1]);
    }

    #[test]
    fn malformed_frames_are_rejected() {
        let mut buf = [0u8; 128];
        let n = encode(
            &Message::Hello {
                abi_version: 1,
                incarnation: 2,
            },
            0,
            0,
            1,
            5,
            &mut buf,
        )
        .unwrap_or(0);
        assert_eq!(n, HEADER_LEN + 8);
        assert_eq!(decode(&buf[..3]).err(), Some(WireError::Truncated));
        assert_eq!(
            decode(&buf[..HEADER_LEN - 1]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(decode(&buf[..n - 1]).err(), Some(WireError::Truncated));
        assert_eq!(decode(&buf[..n + 1]).err(), Some(WireError::TrailingBytes));
        let mut bad = buf;
        bad[0] ^= 1;
        assert_eq!(decode(&bad[..n]).err(), Some(WireError::BadMagic));
        let mut bad = buf;
        bad[4] = WIRE_VERSION + 1;
        assert_eq!(decode(&bad[..n]).err(), Some(WireError::BadVersion));
        let mut bad = buf;
        bad[5] = 200;
        assert_eq!(decode(&bad[..n]).err(), Some(WireError::UnknownType));
        let mut bad = buf;
        bad[7] = 0x80;
        assert_eq!(decode(&bad[..n]).err(), Some(WireError::BadFlags));
        let mut bad = buf;
        bad[20] = 1;
        assert_eq!(decode(&bad[..n]).err(), Some(WireError::BadFlags));
        let mut bad = buf;
        bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&bad[..n]).err(), Some(WireError::TooLong));
        // A header that claims a Hello with a 4-byte payload.
        let mut bad = buf;
        bad[16..20].copy_from_slice(&4u32.to_le_bytes());
        assert_eq!(
            decode(&bad[..HEADER_LEN + 4]).err(),
            Some(WireError::BadLength)
        );
    }

    #[test]
    fn bad_fields_are_rejected() {
        let mut buf = [0u8; 512];
        assert_eq!(
            encode(
                &Message::KvPut {
                    key: b"",
                    value: b"v"
                },
                0,
                0,
                0,
                0,
                &mut buf
            )
            .err(),
            Some(WireError::BadField)
        );
        let long = [b'k'; MAX_KEY + 1];
        assert_eq!(
            encode(
                &Message::KvPut {
                    key: &long,
                    value: b""
                },
                0,
                0,
                0,
                0,
                &mut buf
            )
            .err(),
            Some(WireError::TooLong)
        );
        assert_eq!(
            encode(
                &Message::Service {
                    service: 0,
                    data: b""
                },
                0,
                0,
                0,
                0,
                &mut buf
            )
            .err(),
            Some(WireError::BadField)
        );
        assert_eq!(
            encode(&Message::Error { errno: 0 }, 0, 0, 0, 0, &mut buf).err(),
            Some(WireError::BadField)
        );
        assert_eq!(
            encode(&Message::Error { errno: 1 }, 0x10, 0, 0, 0, &mut buf).err(),
            Some(WireError::BadFlags)
        );
        assert_eq!(
            encode(
                &Message::KvSync { from_version: 0 },
                0,
                0,
                0,
                0,
                &mut buf[..HEADER_LEN + 7]
            )
            .err(),
            Some(WireError::BufferTooSmall)
        );
        // A KvPut whose key length prefix overruns the payload.
        let n = encode(
            &Message::KvPut {
                key: b"ab",
                value: b"",
            },
            0,
            0,
            0,
            0,
            &mut buf,
        )
        .unwrap_or(0);
        let mut bad = buf;
        bad[HEADER_LEN] = 40;
        assert_eq!(decode(&bad[..n]).err(), Some(WireError::BadLength));
        // A heartbeat with non-zero padding.
        let n = encode(
            &Message::Heartbeat {
                incarnation: 1,
                leader: 2,
                kv_version: 3,
            },
            0,
            0,
            0,
            0,
            &mut buf,
        )
        .unwrap_or(0);
        let mut bad = buf;
        bad[HEADER_LEN + 6] = 1;
        assert_eq!(decode(&bad[..n]).err(), Some(WireError::BadField));
    }

    #[test]
    fn frame_type_reads_the_header_only() {
        let mut buf = [0u8; MAX_FRAME];
        let hb = Message::Heartbeat {
            incarnation: 1,
            leader: 2,
            kv_version: 3,
        };
        let n = encode(&hb, 0, 1, 2, 9, &mut buf).unwrap_or(0);
        assert_eq!(frame_type(&buf[..n]), Some(MsgType::Heartbeat));
        // The header is enough; the payload is not looked at.
        assert_eq!(frame_type(&buf[..6]), Some(MsgType::Heartbeat));
        let n = encode(&Message::Ping { data: b"x" }, 0, 1, 2, 9, &mut buf).unwrap_or(0);
        assert_eq!(frame_type(&buf[..n]), Some(MsgType::Ping));
        assert_eq!(frame_type(&buf[..5]), None);
        let mut bad = buf;
        bad[0] ^= 1;
        assert_eq!(frame_type(&bad[..n]), None);
        bad = buf;
        bad[5] = 0xee;
        assert_eq!(frame_type(&bad[..n]), None);
    }
}
