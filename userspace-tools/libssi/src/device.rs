//! The control device, `/dev/ssi`.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use ssi_shared::ioctl::{
    SsiRegionList, SsiStatus, SSI_ABI_VERSION, SSI_IOC_REGIONS, SSI_IOC_REGION_REMOVE,
    SSI_IOC_STATUS,
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

    /// Opens the control device at `path` (`O_RDWR | O_CLOEXEC`) and checks that the
    /// kernel speaks this crate's ABI version.
    pub fn open_path(path: &str) -> io::Result<Self> {
        // std opens every file close-on-exec.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
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

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
