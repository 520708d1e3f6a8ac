//! The control device, `/dev/ssi`: every request of the ioctl ABI (`rust/src/ioctl.rs`),
//! for `ssictl`, `ssi-memtest` and programs that use regions.
//!
//! The cluster requests (nodes, ping, services, bookkeeping, pages, migration) return
//! the kernel's errno as an `io::Error` and leave explaining it to the caller, who knows
//! what the user asked for; the region requests explain their errnos themselves
//! ([`Error`]).

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use ssi_shared::ioctl::{
    SsiKv, SsiMigrate, SsiMigrateExit, SsiMigrateJob, SsiNodeAddr, SsiNodeList, SsiPageExpose,
    SsiPageRead, SsiPing, SsiProcList, SsiRegionList, SsiServiceCall, SsiStatus, SSI_ABI_VERSION,
    SSI_IOC_KV_GET, SSI_IOC_KV_PUT, SSI_IOC_MIGRATE, SSI_IOC_MIGRATE_ACCEPT, SSI_IOC_MIGRATE_DRAIN,
    SSI_IOC_MIGRATE_EXITED, SSI_IOC_MIGRATE_PS, SSI_IOC_MIGRATE_RESTORE, SSI_IOC_NODES,
    SSI_IOC_NODE_ADD, SSI_IOC_NODE_REMOVE, SSI_IOC_PAGE_EXPOSE, SSI_IOC_PAGE_READ,
    SSI_IOC_PAGE_UNEXPOSE, SSI_IOC_PING, SSI_IOC_REGIONS, SSI_IOC_REGION_REMOVE,
    SSI_IOC_SERVICE_CALL, SSI_IOC_STATUS, SSI_PAGE_SIZE,
};

use crate::error::{Error, Op};
use crate::region::{self, RegionInfo, RegionList};

/// Where `ssi_core` creates its control device.
pub const DEFAULT_DEVICE: &str = "/dev/ssi";

/// The control device of this node, open for reading and writing (region requests need
/// both), with its ABI version checked.
#[derive(Debug)]
pub struct Device {
    fd: OwnedFd,
    path: String,
    node_id: u32,
}

impl Device {
    /// Opens [`DEFAULT_DEVICE`].
    pub fn open() -> io::Result<Self> {
        Self::open_path(DEFAULT_DEVICE)
    }

    /// Opens the control device at `path` (`O_RDWR | O_CLOEXEC`; read-only if this user
    /// may only read it, enough for the requests that only look) and checks that the
    /// kernel speaks this crate's ABI version.
    pub fn open_path(path: &str) -> io::Result<Self> {
        // std opens every file close-on-exec.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .or_else(|e| match e.raw_os_error() {
                Some(libc::EACCES) | Some(libc::EPERM) => OpenOptions::new().read(true).open(path),
                _ => Err(e),
            })
            .map_err(|e| match e.raw_os_error() {
                Some(errno) => {
                    Error::os(Op::OpenDevice, &format!("cannot open {path}"), errno).into()
                }
                None => e,
            })?;
        let mut dev = Self {
            fd: file.into(),
            path: path.to_string(),
            node_id: 0,
        };
        let mut st = Box::<SsiStatus>::default();
        // SAFETY: SSI_IOC_STATUS is _IOR(SsiStatus), a plain struct without pointers.
        unsafe { dev.ioctl(SSI_IOC_STATUS, &mut *st) }
            .map_err(|errno| Error::os(Op::Status, &format!("{path}: SSI_IOC_STATUS"), errno))?;
        if st.abi_version != SSI_ABI_VERSION {
            return Err(Error::new(
                libc::EPROTO,
                format!(
                    "{path}: the kernel speaks ABI v{}, libssi v{SSI_ABI_VERSION}: rebuild one of them",
                    st.abi_version
                ),
            )
            .into());
        }
        dev.node_id = st.node_id;
        Ok(dev)
    }

    /// The path it was opened at.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// This node's id.
    pub fn node_id(&self) -> u32 {
        self.node_id
    }

    /// Removes region `name` from the whole cluster (its owner or root). Existing
    /// mappings of it fault with `SIGBUS` from then on.
    pub fn remove_region(&self, name: &str) -> io::Result<()> {
        let mut req = region::request(name)?;
        // SAFETY: SSI_IOC_REGION_REMOVE is _IOW(SsiRegion), a plain struct.
        unsafe { self.ioctl(SSI_IOC_REGION_REMOVE, &mut req) }
            .map_err(|errno| Error::os(Op::Remove, &format!("region remove {name}"), errno))?;
        Ok(())
    }

    /// The regions of the cluster with this node's counters (at most
    /// [`SSI_REGION_LIST_LEN`](ssi_shared::ioctl::SSI_REGION_LIST_LEN); see
    /// [`Device::region_list`] for how many did not fit).
    pub fn regions(&self) -> io::Result<Vec<RegionInfo>> {
        Ok(self.region_list()?.regions)
    }

    /// The regions of the cluster with this node's counters, and how many did not fit.
    pub fn region_list(&self) -> io::Result<RegionList> {
        let mut list = Box::<SsiRegionList>::default();
        // SAFETY: SSI_IOC_REGIONS is _IOR(SsiRegionList), a plain struct.
        unsafe { self.ioctl(SSI_IOC_REGIONS, &mut *list) }
            .map_err(|errno| Error::os(Op::List, "regions", errno))?;
        Ok(RegionList::from(&*list))
    }

    /// Issues `request` with a pointer to `arg`; returns the ioctl's non-negative result
    /// or the errno.
    ///
    /// # Safety
    ///
    /// `request` must be the ioctl defined for a `T` (it encodes `size_of::<T>()`, the
    /// most the kernel reads or writes at `arg`), and `T` must hold no user pointers.
    pub(crate) unsafe fn ioctl<T>(&self, request: u32, arg: &mut T) -> Result<i32, i32> {
        // SAFETY: `arg` is a live, aligned, exclusively borrowed `T` and the caller
        // guarantees that the kernel accesses at most `size_of::<T>()` bytes of it and
        // nothing else; the descriptor is open for the duration of the call.
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), request as libc::Ioctl, arg as *mut T) };
        if rc < 0 {
            Err(io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO))
        } else {
            Ok(rc)
        }
    }
}

/// The cluster requests: each returns the kernel's errno as an `io::Error`.
impl Device {
    /// Issues a request whose argument is a plain struct (no user pointers).
    fn request<T>(&self, request: u32, arg: &mut T) -> io::Result<i32> {
        // SAFETY: Every caller passes the request defined for `T` (the ioctl ABI pairs
        // each with its struct), and the structs it is used with hold no user pointers.
        unsafe { self.ioctl(request, arg) }.map_err(io::Error::from_raw_os_error)
    }

    /// `SSI_IOC_STATUS`: this node, its ABI and its transports.
    pub fn status(&self) -> io::Result<Box<SsiStatus>> {
        let mut st = Box::<SsiStatus>::default();
        self.request(SSI_IOC_STATUS, &mut *st)?;
        Ok(st)
    }

    /// `SSI_IOC_NODE_ADD`: configures a peer.
    pub fn node_add(&self, mut addr: SsiNodeAddr) -> io::Result<()> {
        self.request(SSI_IOC_NODE_ADD, &mut addr).map(drop)
    }

    /// `SSI_IOC_NODE_REMOVE`: forgets a peer.
    pub fn node_remove(&self, id: u32) -> io::Result<()> {
        let mut id = id;
        self.request(SSI_IOC_NODE_REMOVE, &mut id).map(drop)
    }

    /// `SSI_IOC_NODES`: this node and its peers.
    pub fn nodes(&self) -> io::Result<Box<SsiNodeList>> {
        let mut list = Box::<SsiNodeList>::default();
        self.request(SSI_IOC_NODES, &mut *list)?;
        Ok(list)
    }

    /// `SSI_IOC_PING`: returns the request with `rtt_ns` filled in.
    pub fn ping(&self, mut req: SsiPing) -> io::Result<SsiPing> {
        self.request(SSI_IOC_PING, &mut req)?;
        Ok(req)
    }

    /// `SSI_IOC_SERVICE_CALL`: returns the request with the answer.
    pub fn service_call(&self, mut req: Box<SsiServiceCall>) -> io::Result<Box<SsiServiceCall>> {
        self.request(SSI_IOC_SERVICE_CALL, &mut *req)?;
        Ok(req)
    }

    /// `SSI_IOC_KV_PUT`: returns the request with the version of the write.
    pub fn kv_put(&self, mut kv: SsiKv) -> io::Result<SsiKv> {
        self.request(SSI_IOC_KV_PUT, &mut kv)?;
        Ok(kv)
    }

    /// `SSI_IOC_KV_GET`: returns the request with the value and its version.
    pub fn kv_get(&self, mut kv: SsiKv) -> io::Result<SsiKv> {
        self.request(SSI_IOC_KV_GET, &mut kv)?;
        Ok(kv)
    }

    /// `SSI_IOC_PAGE_EXPOSE` of a copy of `page`: returns the handle.
    pub fn page_expose(&self, page: &[u8; SSI_PAGE_SIZE]) -> io::Result<u64> {
        let mut req = SsiPageExpose {
            data_ptr: page.as_ptr() as u64,
            handle: 0,
        };
        // SAFETY: SSI_IOC_PAGE_EXPOSE is _IOWR(SsiPageExpose); `data_ptr` points to
        // SSI_PAGE_SIZE readable bytes that outlive the call, which the kernel only reads.
        unsafe { self.ioctl(SSI_IOC_PAGE_EXPOSE, &mut req) }
            .map_err(io::Error::from_raw_os_error)?;
        Ok(req.handle)
    }

    /// `SSI_IOC_PAGE_UNEXPOSE`.
    pub fn page_unexpose(&self, handle: u64) -> io::Result<()> {
        let mut handle = handle;
        self.request(SSI_IOC_PAGE_UNEXPOSE, &mut handle).map(drop)
    }

    /// `SSI_IOC_PAGE_READ` into `page`: returns the request with the latencies.
    pub fn page_read(
        &self,
        node_id: u32,
        handle: u64,
        repeat: u32,
        page: &mut [u8; SSI_PAGE_SIZE],
    ) -> io::Result<SsiPageRead> {
        let mut req = SsiPageRead {
            node_id,
            repeat,
            handle,
            data_ptr: page.as_mut_ptr() as u64,
            ..Default::default()
        };
        // SAFETY: SSI_IOC_PAGE_READ is _IOWR(SsiPageRead); `data_ptr` points to
        // SSI_PAGE_SIZE writable bytes, exclusively borrowed for the duration of the call.
        unsafe { self.ioctl(SSI_IOC_PAGE_READ, &mut req) }.map_err(io::Error::from_raw_os_error)?;
        Ok(req)
    }

    /// `SSI_IOC_MIGRATE`: the request comes back with the result or the kernel's
    /// explanation in `message`.
    pub fn migrate(&self, req: &mut SsiMigrate) -> io::Result<()> {
        self.request(SSI_IOC_MIGRATE, req).map(drop)
    }

    /// `SSI_IOC_MIGRATE_PS` for `node`.
    pub fn procs(&self, node: u32) -> io::Result<Box<SsiProcList>> {
        let mut list = Box::new(SsiProcList {
            node,
            ..Default::default()
        });
        self.request(SSI_IOC_MIGRATE_PS, &mut *list)?;
        Ok(list)
    }

    /// `SSI_IOC_MIGRATE_ACCEPT`: waits for a process to arrive here.
    pub fn accept(&self, job: &mut SsiMigrateJob) -> io::Result<()> {
        self.request(SSI_IOC_MIGRATE_ACCEPT, job).map(drop)
    }

    /// `SSI_IOC_MIGRATE_RESTORE`: on success the caller is the migrated process and this
    /// does not return to the caller's code.
    pub fn restore(&self, job: u64) -> io::Result<()> {
        let mut job = job;
        self.request(SSI_IOC_MIGRATE_RESTORE, &mut job).map(drop)
    }

    /// `SSI_IOC_MIGRATE_DRAIN`: returns the pages read.
    pub fn drain(&self, job: u64) -> io::Result<u64> {
        let mut job = job;
        let pages = self.request(SSI_IOC_MIGRATE_DRAIN, &mut job)?;
        // Non-negative: errors came back as Err.
        Ok(pages as u64)
    }

    /// `SSI_IOC_MIGRATE_EXITED`: the process of `job` exited with `status`.
    pub fn exited(&self, job: u64, status: i32) -> io::Result<()> {
        let mut req = SsiMigrateExit {
            job,
            status,
            reserved: 0,
        };
        self.request(SSI_IOC_MIGRATE_EXITED, &mut req).map(drop)
    }
}

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
