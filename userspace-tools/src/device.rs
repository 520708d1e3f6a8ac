//! Access to `/dev/ssi`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use ssi_shared::ioctl::{
    SsiKv, SsiMigrate, SsiMigrateExit, SsiMigrateJob, SsiNodeAddr, SsiNodeList, SsiPageExpose,
    SsiPageRead, SsiPing, SsiProcList, SsiServiceCall, SsiStatus, SSI_ABI_VERSION, SSI_IOC_KV_GET,
    SSI_IOC_KV_PUT, SSI_IOC_MIGRATE, SSI_IOC_MIGRATE_ACCEPT, SSI_IOC_MIGRATE_DRAIN,
    SSI_IOC_MIGRATE_EXITED, SSI_IOC_MIGRATE_PS, SSI_IOC_MIGRATE_RESTORE, SSI_IOC_NODES,
    SSI_IOC_NODE_ADD, SSI_IOC_NODE_REMOVE, SSI_IOC_PAGE_EXPOSE, SSI_IOC_PAGE_READ,
    SSI_IOC_PAGE_UNEXPOSE, SSI_IOC_PING, SSI_IOC_SERVICE_CALL, SSI_IOC_STATUS, SSI_PAGE_SIZE,
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

    /// Opens the control device and checks that the kernel speaks this ABI version.
    pub fn open_checked(path: &str) -> Result<Self, String> {
        let dev = Self::open(path)?;
        dev.status()?;
        Ok(dev)
    }

    /// Issues an ioctl whose argument is a pointer to `T` and returns the raw error, for
    /// callers that explain errnos themselves.
    ///
    /// # Safety
    ///
    /// `request` must encode `size_of::<T>()`, and any user pointer inside the `T` must
    /// point to memory the kernel may read or write for the size the ABI gives it.
    unsafe fn ioctl_raw<T>(&self, request: u32, arg: *mut T) -> io::Result<()> {
        // SAFETY: `request` encodes size_of::<T>() and the kernel reads or writes at most
        // that many bytes at `arg`, which points to a live, aligned `T`; the caller
        // vouches for pointers inside it.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), request as _, arg) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Issues an ioctl whose argument is a pointer to `T`; explains errors with `what`.
    fn ioctl_ptr<T>(&self, request: u32, arg: *mut T, what: &str) -> Result<(), String> {
        // SAFETY: the node ioctls take plain structs without user pointers, and `request`
        // is the one defined for `T`.
        unsafe { self.ioctl_raw(request, arg) }.map_err(|e| {
            let hint = match e.raw_os_error() {
                Some(libc::EEXIST) => " (already configured)",
                Some(libc::ENOENT) => " (no such node configured)",
                Some(libc::EINVAL) => " (invalid node id or address; see dmesg)",
                other => common_hint(other),
            };
            format!("{what}: {e}{hint}")
        })
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

    /// One `SSI_IOC_PING`: returns the request with `rtt_ns` filled in. Does not check
    /// the ABI version (use [`Device::open_checked`]).
    pub fn ping(&self, mut req: SsiPing) -> io::Result<SsiPing> {
        // SAFETY: SsiPing holds no user pointers; SSI_IOC_PING is _IOWR(SsiPing).
        unsafe { self.ioctl_raw(SSI_IOC_PING, &mut req) }?;
        Ok(req)
    }

    /// `SSI_IOC_SERVICE_CALL`: returns the request with the answer.
    pub fn service_call(&self, mut req: Box<SsiServiceCall>) -> io::Result<Box<SsiServiceCall>> {
        // SAFETY: SsiServiceCall holds no user pointers; SSI_IOC_SERVICE_CALL is
        // _IOWR(SsiServiceCall).
        unsafe { self.ioctl_raw(SSI_IOC_SERVICE_CALL, &mut *req) }?;
        Ok(req)
    }

    /// `SSI_IOC_KV_PUT`: returns the request with the version of the write.
    pub fn kv_put(&self, mut kv: SsiKv) -> io::Result<SsiKv> {
        // SAFETY: SsiKv holds no user pointers; SSI_IOC_KV_PUT is _IOWR(SsiKv).
        unsafe { self.ioctl_raw(SSI_IOC_KV_PUT, &mut kv) }?;
        Ok(kv)
    }

    /// `SSI_IOC_KV_GET`: returns the request with the value and its version.
    pub fn kv_get(&self, mut kv: SsiKv) -> io::Result<SsiKv> {
        // SAFETY: SsiKv holds no user pointers; SSI_IOC_KV_GET is _IOWR(SsiKv).
        unsafe { self.ioctl_raw(SSI_IOC_KV_GET, &mut kv) }?;
        Ok(kv)
    }

    /// `SSI_IOC_PAGE_EXPOSE` of a copy of `page`: returns the handle.
    pub fn page_expose(&self, page: &[u8; SSI_PAGE_SIZE]) -> io::Result<u64> {
        let mut req = SsiPageExpose {
            data_ptr: page.as_ptr() as u64,
            handle: 0,
        };
        // SAFETY: `data_ptr` points to SSI_PAGE_SIZE readable bytes that outlive the
        // call; the kernel only reads them.
        unsafe { self.ioctl_raw(SSI_IOC_PAGE_EXPOSE, &mut req) }?;
        Ok(req.handle)
    }

    /// `SSI_IOC_PAGE_UNEXPOSE`.
    pub fn page_unexpose(&self, handle: u64) -> io::Result<()> {
        let mut handle = handle;
        // SAFETY: the argument is a plain u64; SSI_IOC_PAGE_UNEXPOSE is _IOW(u64).
        unsafe { self.ioctl_raw(SSI_IOC_PAGE_UNEXPOSE, &mut handle) }
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
        // SAFETY: `data_ptr` points to SSI_PAGE_SIZE writable bytes, exclusively
        // borrowed for the duration of the call.
        unsafe { self.ioctl_raw(SSI_IOC_PAGE_READ, &mut req) }?;
        Ok(req)
    }
}

impl Device {
    /// `SSI_IOC_MIGRATE`: the request comes back with the result or the kernel's
    /// explanation in `message`.
    pub fn migrate(&self, req: &mut SsiMigrate) -> io::Result<()> {
        // SAFETY: SsiMigrate holds no user pointers; SSI_IOC_MIGRATE is _IOWR(SsiMigrate).
        unsafe { self.ioctl_raw(SSI_IOC_MIGRATE, req) }
    }

    /// `SSI_IOC_MIGRATE_PS` for `node`.
    pub fn procs(&self, node: u32) -> io::Result<Box<SsiProcList>> {
        let mut list = Box::new(SsiProcList {
            node,
            ..Default::default()
        });
        // SAFETY: SsiProcList holds no user pointers; the request is _IOWR(SsiProcList).
        unsafe { self.ioctl_raw(SSI_IOC_MIGRATE_PS, &mut *list) }?;
        Ok(list)
    }

    /// `SSI_IOC_MIGRATE_ACCEPT`.
    pub fn accept(&self, job: &mut SsiMigrateJob) -> io::Result<()> {
        // SAFETY: SsiMigrateJob holds no user pointers; the request is _IOWR of it.
        unsafe { self.ioctl_raw(SSI_IOC_MIGRATE_ACCEPT, job) }
    }

    /// `SSI_IOC_MIGRATE_RESTORE`: on success the caller is the migrated process and this
    /// does not return to the caller's code.
    pub fn restore(&self, job: u64) -> io::Result<()> {
        let mut job = job;
        // SAFETY: the argument is a plain u64; the request is _IOW(u64).
        unsafe { self.ioctl_raw(SSI_IOC_MIGRATE_RESTORE, &mut job) }
    }

    /// `SSI_IOC_MIGRATE_DRAIN`: returns the pages read.
    pub fn drain(&self, job: u64) -> io::Result<u64> {
        let mut job = job;
        // SAFETY: the argument is a plain u64; the request is _IOW(u64).
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                SSI_IOC_MIGRATE_DRAIN as _,
                &mut job as *mut u64,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc as u64)
    }

    /// `SSI_IOC_MIGRATE_EXITED`.
    pub fn exited(&self, job: u64, status: i32) -> io::Result<()> {
        let mut req = SsiMigrateExit {
            job,
            status,
            reserved: 0,
        };
        // SAFETY: plain integers; the request is _IOW(SsiMigrateExit).
        unsafe { self.ioctl_raw(SSI_IOC_MIGRATE_EXITED, &mut req) }
    }
}

/// The explanation of errnos that mean the same for every ioctl (with a leading space),
/// or "".
pub fn common_hint(errno: Option<i32>) -> &'static str {
    match errno {
        Some(libc::EPERM) => " (needs CAP_SYS_ADMIN: run as root)",
        Some(libc::ENOTTY) => " (kernel module too old for this ssictl?)",
        _ => "",
    }
}
