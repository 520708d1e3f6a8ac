// SPDX-License-Identifier: GPL-2.0

//! The `/dev/ssi` ioctl ABI, shared by `ssi_core` and `ssictl`.
//!
//! All structures are `#[repr(C)]`, made of fixed-width integers and byte arrays, with
//! explicit padding fields and sizes checked at compile time, so that a 64-bit kernel and
//! a 32-bit ARM kernel agree with every userspace build.

/// A `#[repr(C)]` struct made only of integers, byte arrays and other `PlainData`
/// structs, without implicit padding: every byte is a field and every bit pattern is a
/// valid value. The kernel modules give these types the kernel crate's `AsBytes`,
/// `FromBytes` and `Zeroable` (`rust/kmod/plain_data.rs`), to copy them to and from user
/// memory.
///
/// # Safety
///
/// Implement it only for such structs, through [`plain_data!`], which checks the size.
pub unsafe trait PlainData {}

/// Implements [`PlainData`] for each `Type = size`, and fails the build unless the type is
/// `size` bytes: the size is added up by hand from the field list, so a field that brings
/// implicit padding (or is forgotten in the sum) is caught.
macro_rules! plain_data {
    ($($t:ty = $size:expr),* $(,)?) => {
        $(
            const _: () = assert!(core::mem::size_of::<$t>() == $size);
            // SAFETY: Every `Type = size` listed here is a `#[repr(C)]` struct of integers,
            // byte arrays and `PlainData` structs (the invariant of this file), and the
            // size check above rules out implicit padding.
            unsafe impl PlainData for $t {}
        )*
    };
}

/// Version of this ABI. Bumped on any incompatible change; `ssictl` refuses to talk to a
/// kernel with another version.
pub const SSI_ABI_VERSION: u32 = 5;

/// The ioctl "type" byte of ssi (free in Documentation/userspace-api/ioctl/ioctl-number.rst).
pub const SSI_IOC_MAGIC: u32 = 0xD5;

/// Length of a transport name, including the terminating NUL.
pub const SSI_NAME_LEN: usize = 16;

/// Most transports that can be registered at once.
pub const SSI_MAX_TRANSPORTS: usize = 8;

/// Length of a state description (one line, NUL-padded).
pub const SSI_STATE_LEN: usize = 96;

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// `_IOC()` of `include/uapi/asm-generic/ioctl.h`, which x86 and ARM both use.
pub const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
    assert!(size < (1 << IOC_SIZEBITS));
    (dir << IOC_DIRSHIFT)
        | (ty << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
}

/// `_IOR()`: the kernel writes a `T` to userspace.
pub const fn ior<T>(nr: u32) -> u32 {
    ioc(IOC_READ, SSI_IOC_MAGIC, nr, core::mem::size_of::<T>())
}

/// `_IOW()`: userspace passes a `T` to the kernel.
pub const fn iow<T>(nr: u32) -> u32 {
    ioc(IOC_WRITE, SSI_IOC_MAGIC, nr, core::mem::size_of::<T>())
}

/// `_IOWR()`: userspace passes a `T` and the kernel writes it back, updated.
pub const fn iowr<T>(nr: u32) -> u32 {
    ioc(
        IOC_READ | IOC_WRITE,
        SSI_IOC_MAGIC,
        nr,
        core::mem::size_of::<T>(),
    )
}

/// Reads the node's status: `SSI_IOC_STATUS` fills an [`SsiStatus`].
pub const SSI_IOC_STATUS: u32 = ior::<SsiStatus>(1);
/// Adds a peer node (`CAP_SYS_ADMIN`): takes an [`SsiNodeAddr`].
pub const SSI_IOC_NODE_ADD: u32 = iow::<SsiNodeAddr>(2);
/// Removes a peer node (`CAP_SYS_ADMIN`): takes its id as a `u32`.
pub const SSI_IOC_NODE_REMOVE: u32 = iow::<u32>(3);
/// Lists the nodes: fills an [`SsiNodeList`].
pub const SSI_IOC_NODES: u32 = ior::<SsiNodeList>(4);

/// Measures the round trip of a message to a node: takes and returns an [`SsiPing`].
pub const SSI_IOC_PING: u32 = iowr::<SsiPing>(5);
/// Writes a key of the cluster's bookkeeping store through the leader
/// (`CAP_SYS_ADMIN`): takes an [`SsiKv`], returns the version of the write.
pub const SSI_IOC_KV_PUT: u32 = iowr::<SsiKv>(6);
/// Reads a key from this node's replica of the bookkeeping store: takes an [`SsiKv`]
/// with the key, returns its value and version (`ENOENT` if unset).
pub const SSI_IOC_KV_GET: u32 = iowr::<SsiKv>(7);
/// Exposes a page for one-sided reads by peers (`CAP_SYS_ADMIN`): takes an
/// [`SsiPageExpose`] with the page's contents, returns its handle.
pub const SSI_IOC_PAGE_EXPOSE: u32 = iowr::<SsiPageExpose>(8);
/// Withdraws an exposed page (`CAP_SYS_ADMIN`): takes its handle as a `u64`.
pub const SSI_IOC_PAGE_UNEXPOSE: u32 = iow::<u64>(9);
/// Reads a page another node exposed (`CAP_SYS_ADMIN`): takes and returns an
/// [`SsiPageRead`].
pub const SSI_IOC_PAGE_READ: u32 = iowr::<SsiPageRead>(10);
/// Calls a service on a node (`CAP_SYS_ADMIN`; for diagnostics and tests): takes and
/// returns an [`SsiServiceCall`].
pub const SSI_IOC_SERVICE_CALL: u32 = iowr::<SsiServiceCall>(11);
/// Creates a region (fails with `EEXIST` if the name is taken) with this node as its
/// home, and opens it read-write: takes an [`SsiRegion`] (name, size, mode), fills in
/// the rest and returns a new file descriptor (close-on-exec) to `mmap` it with.
pub const SSI_IOC_REGION_CREATE: u32 = iowr::<SsiRegion>(12);
/// Opens an existing region (permission bits checked like a file's; `ENOENT` if there
/// is none): takes an [`SsiRegion`] with the name and `flags` (`SSI_REGION_WRITE` to be
/// able to map it writable), fills in the rest and returns a new file descriptor.
pub const SSI_IOC_REGION_OPEN: u32 = iowr::<SsiRegion>(13);
/// Removes a region (its owner or `CAP_SYS_ADMIN`): takes an [`SsiRegion`] with the
/// name. Every node drops the region's pages; mappings of it fault with `SIGBUS` from
/// then on.
pub const SSI_IOC_REGION_REMOVE: u32 = iow::<SsiRegion>(14);
/// Lists the regions of the cluster with this node's counters: fills an
/// [`SsiRegionList`].
pub const SSI_IOC_REGIONS: u32 = ior::<SsiRegionList>(15);

/// Default port of the ssi transports that use IP addressing.
pub const SSI_DEFAULT_PORT: u16 = 7471;
/// Most entries of an [`SsiNodeList`] (this node and every possible peer).
pub const SSI_NODE_LIST_LEN: usize = 64;

/// A peer and where to reach it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SsiNodeAddr {
    /// The peer's node id.
    pub node_id: u32,
    /// IPv4 address, network order.
    pub ipv4: [u8; 4],
    /// Port (host order); 0 means [`SSI_DEFAULT_PORT`].
    pub port: u16,
    /// Reserved, zero.
    pub flags: u16,
    /// Reserved, zero.
    pub reserved: u32,
}

/// Node states in [`SsiNodeInfo::state`].
pub const SSI_NODE_SELF: u32 = 0;
/// Configured, never heard from.
pub const SSI_NODE_CONFIGURED: u32 = 1;
/// Up.
pub const SSI_NODE_UP: u32 = 2;
/// Down.
pub const SSI_NODE_DOWN: u32 = 3;

/// One node of an [`SsiNodeList`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SsiNodeInfo {
    /// Node id.
    pub node_id: u32,
    /// `SSI_NODE_*`.
    pub state: u32,
    /// IPv4 address, network order (zero for this node).
    pub ipv4: [u8; 4],
    /// Port.
    pub port: u16,
    /// Reserved, zero.
    pub flags: u16,
    /// Its incarnation from its last hello (0 before any).
    pub incarnation: u32,
    /// The leader this node last reported (for this node: the leader it sees).
    pub leader_seen: u32,
    /// Last measured round trip of a probe, in nanoseconds (0: none yet).
    pub rtt_ns: u64,
    /// Frames sent to it.
    pub sent: u64,
    /// Valid frames received from it.
    pub received: u64,
    /// Frames from it that were dropped as malformed (undecodable, spoofed, unexpected).
    pub malformed: u64,
    /// Requests to it that timed out.
    pub timeouts: u64,
    /// Frames to it the transport refused (no link, queue full).
    pub send_errors: u64,
    /// The bookkeeping version it last reported.
    pub kv_version: u64,
}

/// Reply of `SSI_IOC_NODES`: this node first, then the configured peers.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SsiNodeList {
    /// Valid entries in `nodes`.
    pub count: u32,
    /// This node's id.
    pub self_id: u32,
    /// The leader this node sees.
    pub leader: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// The nodes.
    pub nodes: [SsiNodeInfo; SSI_NODE_LIST_LEN],
}

impl Default for SsiNodeList {
    fn default() -> Self {
        Self {
            count: 0,
            self_id: 0,
            leader: 0,
            reserved: 0,
            nodes: [SsiNodeInfo::default(); SSI_NODE_LIST_LEN],
        }
    }
}

plain_data! {
    SsiNodeAddr = 16,
    SsiNodeInfo = 80,
    SsiNodeList = 16 + 80 * SSI_NODE_LIST_LEN,
}

/// Argument of `SSI_IOC_PING`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SsiPing {
    /// Node to ping.
    pub node_id: u32,
    /// Payload bytes to carry both ways (at most `super::wire::MAX_PING`).
    pub payload_len: u32,
    /// Give up after this many milliseconds (0: 1000; at most 60000).
    pub timeout_ms: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// Out: the round trip in nanoseconds.
    pub rtt_ns: u64,
}

/// Argument of `SSI_IOC_KV_PUT` and `SSI_IOC_KV_GET`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SsiKv {
    /// Bytes of `key` used (1..=48).
    pub key_len: u32,
    /// Bytes of `value` used (0..=192; 0 deletes on put).
    pub value_len: u32,
    /// Out: the version of the write (put) or of the entry (get).
    pub version: u64,
    /// The key.
    pub key: [u8; 48],
    /// The value.
    pub value: [u8; 192],
}

impl Default for SsiKv {
    fn default() -> Self {
        Self {
            key_len: 0,
            value_len: 0,
            version: 0,
            key: [0; 48],
            value: [0; 192],
        }
    }
}

/// Size of the pages `SSI_IOC_PAGE_*` move.
pub const SSI_PAGE_SIZE: usize = 4096;

/// Argument of `SSI_IOC_PAGE_EXPOSE`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SsiPageExpose {
    /// User address of the [`SSI_PAGE_SIZE`] bytes to expose (copied into a kernel page).
    pub data_ptr: u64,
    /// Out: the handle peers read it by.
    pub handle: u64,
}

/// Argument of `SSI_IOC_PAGE_READ`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SsiPageRead {
    /// The node that exposed the page.
    pub node_id: u32,
    /// Read it this many times (1..=100000) and report the latencies.
    pub repeat: u32,
    /// The handle it was exposed with.
    pub handle: u64,
    /// User address of [`SSI_PAGE_SIZE`] bytes that receive the page.
    pub data_ptr: u64,
    /// Out: fastest one-sided read, in nanoseconds.
    pub min_ns: u64,
    /// Out: median read.
    pub median_ns: u64,
    /// Out: slowest read.
    pub max_ns: u64,
}

/// Bytes of request and answer an [`SsiServiceCall`] carries.
pub const SSI_SERVICE_CALL_MAX: usize = 256;

/// Argument of `SSI_IOC_SERVICE_CALL`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SsiServiceCall {
    /// The node to call.
    pub node_id: u32,
    /// The service id.
    pub service: u16,
    /// Reserved, zero.
    pub flags: u16,
    /// Bytes of `req` used.
    pub req_len: u32,
    /// Out: bytes of `resp` used.
    pub resp_len: u32,
    /// Give up after this many milliseconds (0: 1000; at most 60000).
    pub timeout_ms: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// The request.
    pub req: [u8; SSI_SERVICE_CALL_MAX],
    /// Out: the answer.
    pub resp: [u8; SSI_SERVICE_CALL_MAX],
}

impl Default for SsiServiceCall {
    fn default() -> Self {
        Self {
            node_id: 0,
            service: 0,
            flags: 0,
            req_len: 0,
            resp_len: 0,
            timeout_ms: 0,
            reserved: 0,
            req: [0; SSI_SERVICE_CALL_MAX],
            resp: [0; SSI_SERVICE_CALL_MAX],
        }
    }
}

plain_data! {
    SsiServiceCall = 24 + 2 * SSI_SERVICE_CALL_MAX,
    SsiPing = 24,
    SsiKv = 256,
    SsiPageExpose = 16,
    SsiPageRead = 48,
}

/// Longest region name (`[A-Za-z0-9._-]`, not starting with a dot).
pub const SSI_REGION_NAME_LEN: usize = 40;
/// `SsiRegion::flags` for `SSI_IOC_REGION_OPEN`: open for writing too.
pub const SSI_REGION_WRITE: u32 = 1 << 0;
/// Most regions an [`SsiRegionList`] reports.
pub const SSI_REGION_LIST_LEN: usize = 64;

/// Argument of `SSI_IOC_REGION_CREATE`, `_OPEN` and `_REMOVE`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SsiRegion {
    /// The name, NUL-padded (no NUL inside the first `name_len` bytes).
    pub name: [u8; SSI_REGION_NAME_LEN],
    /// Bytes of `name` used.
    pub name_len: u32,
    /// `SSI_REGION_*` flags (open only; zero for create and remove).
    pub flags: u32,
    /// Create: bytes (a non-zero multiple of 4096). Open: out.
    pub size: u64,
    /// Create: permission bits (at most 0o777). Open: out.
    pub mode: u32,
    /// Out: the home node (keeps the page directory).
    pub home: u32,
    /// Out: owner.
    pub uid: u32,
    /// Out: group.
    pub gid: u32,
    /// Out: changes each time a region of this name is created.
    pub generation: u64,
}

impl Default for SsiRegion {
    fn default() -> Self {
        Self {
            name: [0; SSI_REGION_NAME_LEN],
            name_len: 0,
            flags: 0,
            size: 0,
            mode: 0,
            home: 0,
            uid: 0,
            gid: 0,
            generation: 0,
        }
    }
}

/// One region, as `SSI_IOC_REGIONS` reports it (counters are this node's).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SsiRegionInfo {
    /// Name, size, mode, home, owner and generation, as in [`SsiRegion`].
    pub region: SsiRegion,
    /// Pages this node holds a copy of.
    pub resident: u64,
    /// Pages this node owns (it holds the authoritative contents).
    pub owned: u64,
    /// Read faults served (locally or remotely).
    pub read_faults: u64,
    /// Write faults (including upgrades of a read-only copy).
    pub write_faults: u64,
    /// Pages fetched from another node.
    pub fetched: u64,
    /// Copies this node dropped or write-protected at the directory's request.
    pub invalidations: u64,
    /// Home only: pages whose only copy was lost with a node.
    pub lost: u64,
    /// Faults answered with `SIGBUS` (lost page, region gone, home down).
    pub sigbus: u64,
    /// Mappings of it on this node.
    pub mappings: u32,
    /// `SSI_REGION_STATE_*`.
    pub state: u32,
}

/// `SsiRegionInfo::state`: recorded in the cluster, not used on this node yet.
pub const SSI_REGION_STATE_REMOTE: u32 = 0;
/// `SsiRegionInfo::state`: in use on this node.
pub const SSI_REGION_STATE_ACTIVE: u32 = 1;
/// `SsiRegionInfo::state`: removed, or its home went down: faults get `SIGBUS`.
pub const SSI_REGION_STATE_DEAD: u32 = 2;

/// Result of `SSI_IOC_REGIONS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SsiRegionList {
    /// Entries of `regions` used.
    pub count: u32,
    /// Regions that did not fit.
    pub more: u32,
    /// The regions.
    pub regions: [SsiRegionInfo; SSI_REGION_LIST_LEN],
}

impl Default for SsiRegionList {
    fn default() -> Self {
        Self {
            count: 0,
            more: 0,
            regions: [SsiRegionInfo::default(); SSI_REGION_LIST_LEN],
        }
    }
}

plain_data! {
    SsiRegion = 80,
    SsiRegionInfo = 80 + 72,
    SsiRegionList = 8 + (80 + 72) * SSI_REGION_LIST_LEN,
}

/// First ioctl number that core hands to the migration engine (`ssi_migrate`).
pub const SSI_IOC_MIGRATE_FIRST_NR: u32 = 16;
/// Last ioctl number that core hands to the migration engine.
pub const SSI_IOC_MIGRATE_LAST_NR: u32 = 31;

/// Moves a process to another node ([`SsiMigrate`]). The caller must be allowed to
/// ptrace the process. On failure `message` says why (the errno alone is often not
/// enough: "pinned to node 0 by /dev/gpiomem").
pub const SSI_IOC_MIGRATE: u32 = iowr::<SsiMigrate>(16);
/// The node's migration daemon waits for an incoming process ([`SsiMigrateJob`]);
/// `CAP_SYS_ADMIN`. The job is bound to the daemon's open file.
pub const SSI_IOC_MIGRATE_ACCEPT: u32 = iowr::<SsiMigrateJob>(17);
/// A child of the daemon becomes the incoming process of job `*arg` (a `u64`): its
/// address space and registers are replaced, so on success it does not return to the
/// caller's code. Same open file as the `ACCEPT` that got the job.
pub const SSI_IOC_MIGRATE_RESTORE: u32 = iow::<u64>(18);
/// The daemon reports how a restored process ended ([`SsiMigrateExit`]).
pub const SSI_IOC_MIGRATE_EXITED: u32 = iow::<SsiMigrateExit>(19);
/// Lists the processes the migration engine of a node knows ([`SsiProcList`]).
pub const SSI_IOC_MIGRATE_PS: u32 = iowr::<SsiProcList>(20);
/// The daemon pulls in every page of job `*arg` (a `u64`), a process that came back to
/// its home node, so that it depends on no other node any more; then the nodes it
/// passed through are released. Runs in the caller (a helper the daemon forks) until
/// done; same open file as the `ACCEPT` of the job.
pub const SSI_IOC_MIGRATE_DRAIN: u32 = iow::<u64>(21);

/// Length of [`SsiMigrate::message`].
pub const SSI_MESSAGE_LEN: usize = 128;
/// Length of a command name (`TASK_COMM_LEN`).
pub const SSI_COMM_LEN: usize = 16;
/// Most supplementary groups a migrated process keeps.
pub const SSI_MAX_GROUPS: usize = 32;
/// Most special mappings (`[vdso]`, `[vvar]`, ...) a job lists.
pub const SSI_MAX_SPECIAL: usize = 4;
/// Length of [`SsiMigrateJob::cwd`].
pub const SSI_CWD_LEN: usize = 256;
/// Most processes an [`SsiProcList`] reports.
pub const SSI_PROC_LIST_LEN: usize = 64;

/// Argument of `SSI_IOC_MIGRATE`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SsiMigrate {
    /// The process, as seen from the caller's PID namespace.
    pub pid: u32,
    /// Destination node.
    pub node: u32,
    /// `SSI_MIGRATE_THREAD` or zero.
    pub flags: u32,
    /// Zero.
    pub reserved: u32,
    /// Out: the id of this hop on this node.
    pub migration: u64,
    /// Out: nanoseconds from stopping the process here to the destination's
    /// confirmation that it is about to run it.
    pub freeze_ns: u64,
    /// Out: bytes of the register and memory-layout snapshot that were sent.
    pub snapshot_bytes: u64,
    /// Out: why it failed (NUL-terminated), or empty.
    pub message: [u8; SSI_MESSAGE_LEN],
}

/// `SsiMigrate::flags`: move only the thread `pid` names, even when it is the main
/// thread of its process (any other thread of a multi-threaded process moves alone
/// anyway).
pub const SSI_MIGRATE_THREAD: u32 = 1;

impl Default for SsiMigrate {
    fn default() -> Self {
        Self {
            pid: 0,
            node: 0,
            flags: 0,
            reserved: 0,
            migration: 0,
            freeze_ns: 0,
            snapshot_bytes: 0,
            message: [0; SSI_MESSAGE_LEN],
        }
    }
}

/// A special mapping (`[vdso]`, `[vvar]`, ...) that the restoring child must move to
/// `start` with `mremap` before `SSI_IOC_MIGRATE_RESTORE`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SsiSpecialMapping {
    /// Where the process had it.
    pub start: u64,
    /// End (exclusive).
    pub end: u64,
    /// Its name, NUL-padded.
    pub name: [u8; 16],
}

/// Argument of `SSI_IOC_MIGRATE_ACCEPT`: what the daemon needs to prepare the child
/// that becomes the process.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SsiMigrateJob {
    /// In: give up after this many milliseconds (`ETIMEDOUT`); 0 waits until a job
    /// comes or a signal.
    pub timeout_ms: u32,
    /// Zero.
    pub reserved: u32,
    /// Out: the job, for `RESTORE` and `EXITED`.
    pub job: u64,
    /// Out: the node and PID the process started on (its home).
    pub home_node: u32,
    /// Out: see `home_node`.
    pub home_pid: u32,
    /// Out: the node it comes from.
    pub source_node: u32,
    /// Out: credentials: real, effective, saved and filesystem user and group ids.
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    /// Out: the file mode creation mask.
    pub umask: u32,
    /// Out: supplementary groups used.
    pub ngroups: u32,
    /// Zero.
    pub reserved3: u32,
    /// Out: supplementary groups.
    pub groups: [u32; SSI_MAX_GROUPS],
    /// Out: command name.
    pub comm: [u8; SSI_COMM_LEN],
    /// Out: special mappings used.
    pub nspecial: u32,
    /// Zero.
    pub reserved2: u32,
    /// Out: the special mappings to move into place.
    pub special: [SsiSpecialMapping; SSI_MAX_SPECIAL],
    /// Out: the working directory (NUL-terminated; "/" when it did not fit).
    pub cwd: [u8; SSI_CWD_LEN],
}

impl Default for SsiMigrateJob {
    fn default() -> Self {
        Self {
            timeout_ms: 0,
            reserved: 0,
            job: 0,
            home_node: 0,
            home_pid: 0,
            source_node: 0,
            uid: 0,
            euid: 0,
            suid: 0,
            fsuid: 0,
            gid: 0,
            egid: 0,
            sgid: 0,
            fsgid: 0,
            umask: 0,
            ngroups: 0,
            reserved3: 0,
            groups: [0; SSI_MAX_GROUPS],
            comm: [0; SSI_COMM_LEN],
            nspecial: 0,
            reserved2: 0,
            special: [SsiSpecialMapping::default(); SSI_MAX_SPECIAL],
            cwd: [0; SSI_CWD_LEN],
        }
    }
}

/// Argument of `SSI_IOC_MIGRATE_EXITED`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SsiMigrateExit {
    /// The job.
    pub job: u64,
    /// The wait status as `waitpid` gave it.
    pub status: i32,
    /// Zero.
    pub reserved: u32,
}

/// `SsiProcInfo::role`: the process started here and runs elsewhere; this is its
/// stand-in (same PID, parent, terminal), which forwards signals and exits with it.
pub const SSI_PROC_HOME: u32 = 1;
/// `SsiProcInfo::role`: the process passed through here; this stand-in serves the
/// pages it left behind.
pub const SSI_PROC_RELAY: u32 = 2;
/// `SsiProcInfo::role`: the process runs here, away from its home.
pub const SSI_PROC_RUNNING: u32 = 3;
/// `SsiProcInfo::role`: being moved away from this node right now.
pub const SSI_PROC_LEAVING: u32 = 4;
/// `SsiProcInfo::role`: maps device memory, so it cannot leave this node (`pages` is 0).
pub const SSI_PROC_PINNED: u32 = 5;

/// One process in an [`SsiProcList`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SsiProcInfo {
    /// Cluster-wide id: the home node and the PID there.
    pub home_node: u32,
    pub home_pid: u32,
    /// The node it runs on now (as far as this node knows).
    pub node: u32,
    /// The local PID of this entry (stand-in or running process).
    pub pid: u32,
    /// `SSI_PROC_*`.
    pub role: u32,
    /// Migrations so far.
    pub hops: u32,
    /// Pages fetched from other nodes (running) or served to them (stand-ins).
    pub pages: u64,
    /// Command name.
    pub comm: [u8; SSI_COMM_LEN],
}

/// Argument of `SSI_IOC_MIGRATE_PS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SsiProcList {
    /// In: the node to ask.
    pub node: u32,
    /// Out: entries used.
    pub count: u32,
    /// Out: the processes.
    pub procs: [SsiProcInfo; SSI_PROC_LIST_LEN],
}

impl Default for SsiProcList {
    fn default() -> Self {
        Self {
            node: 0,
            count: 0,
            procs: [SsiProcInfo::default(); SSI_PROC_LIST_LEN],
        }
    }
}

plain_data! {
    SsiMigrate = 40 + SSI_MESSAGE_LEN,
    SsiSpecialMapping = 32,
    SsiMigrateJob = 16 + 4 * 14 + 4 * SSI_MAX_GROUPS + SSI_COMM_LEN + 8 + 32 * SSI_MAX_SPECIAL + SSI_CWD_LEN,
    SsiMigrateExit = 16,
    SsiProcInfo = 32 + SSI_COMM_LEN,
    SsiProcList = 8 + 48 * SSI_PROC_LIST_LEN,
}

/// Label of an `SSI_PROC_*` role.
pub fn proc_role_label(role: u32) -> &'static str {
    match role {
        SSI_PROC_HOME => "home",
        SSI_PROC_RELAY => "relay",
        SSI_PROC_RUNNING => "running",
        SSI_PROC_LEAVING => "leaving",
        SSI_PROC_PINNED => "pinned",
        _ => "unknown",
    }
}

/// Label of an `SSI_REGION_STATE_*`.
pub fn region_state_label(state: u32) -> &'static str {
    match state {
        SSI_REGION_STATE_REMOTE => "remote",
        SSI_REGION_STATE_ACTIVE => "active",
        SSI_REGION_STATE_DEAD => "dead",
        _ => "unknown",
    }
}

/// Label of an `SSI_NODE_*` state.
pub fn node_state_label(state: u32) -> &'static str {
    match state {
        SSI_NODE_SELF => "self",
        SSI_NODE_CONFIGURED => "configured",
        SSI_NODE_UP => "up",
        SSI_NODE_DOWN => "down",
        _ => "unknown",
    }
}

/// One registered transport, as reported by `SSI_IOC_STATUS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SsiTransportInfo {
    /// Registry id (unique for the life of `ssi_core`).
    pub id: u32,
    /// `super::transport::TransportKind` as a number.
    pub kind: u32,
    /// Version of the ops table the transport registered with.
    pub ops_version: u32,
    /// The transport's `super::transport::SSI_TRANSPORT_F_*` bits.
    pub flags: u32,
    /// NUL-padded name, e.g. `rdma`.
    pub name: [u8; SSI_NAME_LEN],
    /// NUL-padded one-line state the transport gives of itself (devices, links).
    pub state: [u8; SSI_STATE_LEN],
}

impl Default for SsiTransportInfo {
    fn default() -> Self {
        Self {
            id: 0,
            kind: 0,
            ops_version: 0,
            flags: 0,
            name: [0; SSI_NAME_LEN],
            state: [0; SSI_STATE_LEN],
        }
    }
}

/// Reply of `SSI_IOC_STATUS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SsiStatus {
    /// [`SSI_ABI_VERSION`] of the running `ssi_core`.
    pub abi_version: u32,
    /// This node's id.
    pub node_id: u32,
    /// Number of valid entries in `transports`.
    pub transport_count: u32,
    /// Non-zero when `ssi_migrate` is registered with core.
    pub migrate_registered: u32,
    /// NUL-padded one-line state of the migration engine, if registered.
    pub migrate_state: [u8; SSI_STATE_LEN],
    /// Registered transports, `transport_count` of them first.
    pub transports: [SsiTransportInfo; SSI_MAX_TRANSPORTS],
}

impl Default for SsiStatus {
    fn default() -> Self {
        Self {
            abi_version: 0,
            node_id: 0,
            transport_count: 0,
            migrate_registered: 0,
            migrate_state: [0; SSI_STATE_LEN],
            transports: [SsiTransportInfo::default(); SSI_MAX_TRANSPORTS],
        }
    }
}

plain_data! {
    SsiTransportInfo = 32 + SSI_STATE_LEN,
    SsiStatus = 16 + SSI_STATE_LEN + (32 + SSI_STATE_LEN) * SSI_MAX_TRANSPORTS,
}

/// Returns the text of a NUL-padded name or state, or `None` if it is not NUL-terminated
/// UTF-8.
pub fn name_str(name: &[u8]) -> Option<&str> {
    let len = name.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&name[..len]).ok()
}

/// Copies `text` into a NUL-padded field, truncated (on a character boundary) so that at
/// least one NUL remains.
pub fn fill_str(field: &mut [u8], text: &str) {
    let mut n = text.len().min(field.len().saturating_sub(1));
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    field[..n].copy_from_slice(&text.as_bytes()[..n]);
    field[n..].iter_mut().for_each(|b| *b = 0);
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_ioctl_abi))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    #[test]
    fn status_number_matches_linux_ior_encoding() {
        // _IOR(0xD5, 1, struct ssi_status) with sizeof == 1136 == 0x470:
        // dir 2 << 30 | size 0x470 << 16 | type 0xD5 << 8 | nr 1.
        assert_eq!(SSI_IOC_STATUS, 0x8470_D501);
        assert_eq!(iow::<u32>(2), 0x4004_D502);
        assert_eq!(SSI_IOC_NODE_ADD, 0x4010_D502);
        assert_eq!(SSI_IOC_NODE_REMOVE, 0x4004_D503);
        // sizeof(struct ssi_node_list) == 5136 == 0x1410.
        assert_eq!(SSI_IOC_NODES, 0x9410_D504);
        // _IOWR: dir 3.
        assert_eq!(SSI_IOC_PING, 0xC018_D505);
        assert_eq!(SSI_IOC_KV_PUT, 0xC100_D506);
        assert_eq!(SSI_IOC_KV_GET, 0xC100_D507);
        assert_eq!(SSI_IOC_PAGE_EXPOSE, 0xC010_D508);
        assert_eq!(SSI_IOC_PAGE_UNEXPOSE, 0x4008_D509);
        assert_eq!(SSI_IOC_PAGE_READ, 0xC030_D50A);
        // sizeof(struct ssi_service_call) == 536 == 0x218.
        assert_eq!(SSI_IOC_SERVICE_CALL, 0xC218_D50B);
        // sizeof(struct ssi_region) == 80 == 0x50.
        assert_eq!(SSI_IOC_REGION_CREATE, 0xC050_D50C);
        assert_eq!(SSI_IOC_REGION_OPEN, 0xC050_D50D);
        assert_eq!(SSI_IOC_REGION_REMOVE, 0x4050_D50E);
        // sizeof(struct ssi_region_list) == 9736 == 0x2608.
        assert_eq!(SSI_IOC_REGIONS, 0xA608_D50F);
        // sizeof(struct ssi_migrate) == 168 == 0xA8.
        assert_eq!(SSI_IOC_MIGRATE, 0xC0A8_D510);
        assert_eq!(SSI_IOC_MIGRATE_RESTORE, 0x4008_D512);
        for cmd in [
            SSI_IOC_MIGRATE,
            SSI_IOC_MIGRATE_ACCEPT,
            SSI_IOC_MIGRATE_RESTORE,
            SSI_IOC_MIGRATE_EXITED,
            SSI_IOC_MIGRATE_PS,
            SSI_IOC_MIGRATE_DRAIN,
        ] {
            let nr = cmd & 0xff;
            assert!((SSI_IOC_MIGRATE_FIRST_NR..=SSI_IOC_MIGRATE_LAST_NR).contains(&nr));
        }
    }

    #[test]
    fn name_str_needs_terminator_and_utf8() {
        let mut n = [0u8; SSI_NAME_LEN];
        n[..4].copy_from_slice(b"rdma");
        assert_eq!(name_str(&n), Some("rdma"));
        assert_eq!(name_str(&[b'x'; SSI_NAME_LEN]), None);
        let mut bad = [0u8; SSI_NAME_LEN];
        bad[0] = 0xff;
        assert_eq!(name_str(&bad), None);
    }

    #[test]
    fn fill_str_truncates_and_keeps_a_terminator() {
        let mut f = [0xffu8; 6];
        fill_str(&mut f, "rxe0");
        assert_eq!(&f, b"rxe0\0\0");
        fill_str(&mut f, "toolongtext");
        assert_eq!(&f, b"toolo\0");
        // "é" is two bytes: never cut in the middle of it.
        fill_str(&mut f, "abcdé");
        assert_eq!(name_str(&f), Some("abcd"));
    }
}
