//! Access to `/dev/ssi`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use ssi_shared::ioctl::{
    SsiNodeAddr, SsiNodeList, SsiStatus, SSI_ABI_VERSION, SSI_IOC_NODES, SSI_IOC_NODE_ADD,
    SSI_IOC_NODE_REMOVE, SSI_IOC_STATUS,
};

/// Where `ssi_core` creates its control device.
pub const DEFAULT_DEVICE: &str = "/dev/ssi";

/// An open control device.
pub struct Device {
    file: File,
    path: String,
}

impl Device {
    /// Opens the control device, explaining the usual failures.
    pub fn open(path: &str) -> Result<Self, String> {
        match File::open(path) {
            Ok(file) => Ok(Self {
                file,
                path: path.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(format!(
                "{path} does not exist: is the ssi_core module loaded? ({e})"
            )),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                Err(format!("{path}: permission denied (run as root) ({e})"))
            }
            Err(e) => Err(format!("cannot open {path}: {e}")),
        }
    }

    /// Reads the node status (`SSI_IOC_STATUS`) and checks the ABI version.
    pub fn status(&self) -> Result<SsiStatus, String> {
        let mut st = SsiStatus::default();
        // SAFETY: SSI_IOC_STATUS writes exactly size_of::<SsiStatus>() bytes (encoded in
        // the request number) into the pointed-to, properly aligned struct.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                SSI_IOC_STATUS as _,
                &mut st as *mut SsiStatus,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(format!(
                "{}: SSI_IOC_STATUS failed: {e} (kernel module built from another ABI version?)",
                self.path
            ));
        }
        if st.abi_version != SSI_ABI_VERSION {
            return Err(format!(
                "{}: kernel speaks ABI v{}, this ssictl speaks v{}: rebuild one of them",
                self.path, st.abi_version, SSI_ABI_VERSION
            ));
        }
        Ok(st)
    }

    /// Issues an ioctl whose argument is a pointer to `T`; explains errors with `what`.
    fn ioctl_ptr<T>(&self, request: u32, arg: *mut T, what: &str) -> Result<(), String> {
        // SAFETY: `request` encodes size_of::<T>() and the kernel reads or writes at most
        // that many bytes at `arg`, which points to a live, aligned `T`.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), request as _, arg) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            let hint = match e.raw_os_error() {
                Some(libc::EPERM) => " (needs CAP_SYS_ADMIN: run as root)",
                Some(libc::EEXIST) => " (already configured)",
                Some(libc::ENOENT) => " (no such node configured)",
                Some(libc::EINVAL) => " (invalid node id or address; see dmesg)",
                Some(libc::ENOTTY) => " (kernel module too old for this ssictl?)",
                _ => "",
            };
            return Err(format!("{what}: {e}{hint}"));
        }
        Ok(())
    }

    /// Adds a peer node.
    pub fn node_add(&self, mut addr: SsiNodeAddr) -> Result<(), String> {
        self.status()?;
        self.ioctl_ptr(
            SSI_IOC_NODE_ADD,
            &mut addr,
            &format!("node add {}", addr.node_id),
        )
    }

    /// Removes a peer node.
    pub fn node_remove(&self, id: u32) -> Result<(), String> {
        self.status()?;
        let mut id = id;
        self.ioctl_ptr(SSI_IOC_NODE_REMOVE, &mut id, &format!("node remove {id}"))
    }

    /// Lists the nodes.
    pub fn nodes(&self) -> Result<SsiNodeList, String> {
        self.status()?;
        let mut list = Box::<SsiNodeList>::default();
        self.ioctl_ptr(SSI_IOC_NODES, &mut *list, "nodes")?;
        Ok(*list)
    }
}
