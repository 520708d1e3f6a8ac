//! Regions: named, cluster-wide shared memory.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

use ssi_shared::ioctl::{
    region_state_label, SsiRegion, SsiRegionInfo, SsiRegionList, SSI_IOC_REGION_CREATE,
    SSI_IOC_REGION_OPEN, SSI_REGION_NAME_LEN, SSI_REGION_STATE_ACTIVE, SSI_REGION_STATE_DEAD,
    SSI_REGION_STATE_REMOTE, SSI_REGION_WRITE,
};
use ssi_shared::region::{validate_name as shared_validate_name, MAX_PAGES};

use crate::device::Device;
use crate::error::{invalid, Error, Op};
use crate::mapping::Mapping;
use crate::units::format_size;
use crate::PAGE_SIZE;

/// Longest region name, in bytes.
pub const MAX_NAME_LEN: usize = SSI_REGION_NAME_LEN;
/// Largest region, in bytes (4 GiB).
pub const MAX_REGION_SIZE: u64 = MAX_PAGES as u64 * PAGE_SIZE as u64;

/// Checks a region name: 1 to [`MAX_NAME_LEN`] characters of `[A-Za-z0-9._-]`, not
/// starting with a dot.
pub fn validate_name(name: &str) -> io::Result<()> {
    shared_validate_name(name.as_bytes()).map_err(|_| {
        invalid(format!(
            "invalid region name {name:?}: 1 to {MAX_NAME_LEN} characters of A-Z a-z 0-9 . _ -, \
             not starting with a dot"
        ))
    })
}

/// Checks the size of a new region: a non-zero multiple of the page size, at most
/// [`MAX_REGION_SIZE`].
pub fn validate_size(size: u64) -> io::Result<()> {
    if size == 0 || !size.is_multiple_of(PAGE_SIZE as u64) || size > MAX_REGION_SIZE {
        return Err(invalid(format!(
            "invalid region size {size}: a non-zero multiple of {PAGE_SIZE}, at most {}",
            format_size(MAX_REGION_SIZE)
        )));
    }
    Ok(())
}

/// Checks the permission bits of a new region: at most `0777`.
pub fn validate_mode(mode: u32) -> io::Result<()> {
    if mode & !0o777 != 0 {
        return Err(invalid(format!(
            "invalid region mode {mode:o}: permission bits, at most 0777"
        )));
    }
    Ok(())
}

/// The ioctl argument naming region `name` (checked), other fields zero.
pub(crate) fn request(name: &str) -> io::Result<SsiRegion> {
    validate_name(name)?;
    let mut req = SsiRegion {
        name_len: name.len() as u32,
        ..Default::default()
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    Ok(req)
}

/// The name in a region record from the kernel: `name_len` bytes (clamped), cut at a NUL.
pub(crate) fn name_of(r: &SsiRegion) -> String {
    let bytes = &r.name[..(r.name_len as usize).min(r.name.len())];
    let bytes = bytes.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(bytes).into_owned()
}

/// An open region: a file descriptor to map it with, and what the kernel said about it.
/// Closing it (dropping) does not remove the region, nor unmap its [`Mapping`]s.
#[derive(Debug)]
pub struct Region {
    fd: OwnedFd,
    name: String,
    size: u64,
    mode: u32,
    home: u32,
    uid: u32,
    gid: u32,
    generation: u64,
    writable: bool,
}

impl Region {
    /// Creates region `name` of `size` bytes (a non-zero multiple of 4096, at most 4 GiB)
    /// with permission bits `mode` (at most `0o777`), homed on this node, and opens it
    /// read-write. Fails with `EEXIST` if a region of that name exists.
    pub fn create(dev: &Device, name: &str, size: u64, mode: u32) -> io::Result<Self> {
        let mut req = request(name)?;
        validate_size(size)?;
        validate_mode(mode)?;
        req.size = size;
        req.mode = mode;
        let what = format!("region create {name}");
        // SAFETY: SSI_IOC_REGION_CREATE is _IOWR(SsiRegion), a plain struct.
        let fd = unsafe { dev.ioctl(SSI_IOC_REGION_CREATE, &mut req) }
            .map_err(|errno| Error::os(Op::Create, &what, errno))?;
        Ok(Self::from_reply(owned_fd(fd), name, &req, true))
    }

    /// Opens region `name`, for reading and, if `writable`, writing (the region's
    /// permission bits are checked like a file's: `EACCES`; `ENOENT` if there is none).
    pub fn open(dev: &Device, name: &str, writable: bool) -> io::Result<Self> {
        let mut req = request(name)?;
        req.flags = if writable { SSI_REGION_WRITE } else { 0 };
        let what = format!(
            "region open {name} ({})",
            if writable { "read-write" } else { "read-only" }
        );
        // SAFETY: SSI_IOC_REGION_OPEN is _IOWR(SsiRegion), a plain struct.
        let fd = unsafe { dev.ioctl(SSI_IOC_REGION_OPEN, &mut req) }
            .map_err(|errno| Error::os(Op::Open, &what, errno))?;
        Ok(Self::from_reply(owned_fd(fd), name, &req, writable))
    }

    fn from_reply(fd: OwnedFd, name: &str, r: &SsiRegion, writable: bool) -> Self {
        Self {
            fd,
            name: name.to_string(),
            size: r.size,
            mode: r.mode,
            home: r.home,
            uid: r.uid,
            gid: r.gid,
            generation: r.generation,
            writable,
        }
    }

    /// Maps the whole region, `MAP_SHARED`, readable, and writable if the region was
    /// opened writable.
    pub fn map(&self) -> io::Result<Mapping> {
        Mapping::new(self.fd.as_fd(), &self.name, self.size, self.writable)
    }

    /// Maps the whole region read-only, even if it was opened writable.
    pub fn map_read_only(&self) -> io::Result<Mapping> {
        Mapping::new(self.fd.as_fd(), &self.name, self.size, false)
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Size in pages.
    pub fn pages(&self) -> u64 {
        self.size / PAGE_SIZE as u64
    }

    /// Permission bits.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// The home node: it created the region and keeps its page directory.
    pub fn home(&self) -> u32 {
        self.home
    }

    /// The owner's uid.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The group.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// Changes each time a region of this name is created.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether it was opened for writing.
    pub fn writable(&self) -> bool {
        self.writable
    }
}

impl AsFd for Region {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Takes ownership of the descriptor a region ioctl returned.
fn owned_fd(fd: i32) -> OwnedFd {
    // SAFETY: a successful SSI_IOC_REGION_CREATE or _OPEN returns a new descriptor that
    // nothing else in this process owns or will close.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A region's state on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionState {
    /// Recorded in the cluster, not used on this node yet.
    Remote,
    /// In use on this node.
    Active,
    /// Removed, or its home went down: accesses get `SIGBUS`.
    Dead,
    /// A state this crate does not know.
    Unknown(u32),
}

impl RegionState {
    /// The state of an `SSI_REGION_STATE_*` number.
    pub fn from_raw(raw: u32) -> Self {
        match raw {
            SSI_REGION_STATE_REMOTE => Self::Remote,
            SSI_REGION_STATE_ACTIVE => Self::Active,
            SSI_REGION_STATE_DEAD => Self::Dead,
            other => Self::Unknown(other),
        }
    }

    /// `remote`, `active`, `dead` or `unknown`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Remote => region_state_label(SSI_REGION_STATE_REMOTE),
            Self::Active => region_state_label(SSI_REGION_STATE_ACTIVE),
            Self::Dead => region_state_label(SSI_REGION_STATE_DEAD),
            Self::Unknown(raw) => region_state_label(*raw),
        }
    }
}

impl fmt::Display for RegionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One region of the cluster, with this node's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    /// Name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Home node.
    pub home: u32,
    /// Changes each time a region of this name is created.
    pub generation: u64,
    /// State on this node.
    pub state: RegionState,
    /// Pages this node holds a copy of.
    pub resident: u64,
    /// Pages this node owns (it holds the authoritative contents).
    pub owned: u64,
    /// Read faults served on this node.
    pub read_faults: u64,
    /// Write faults on this node (including upgrades of read-only copies).
    pub write_faults: u64,
    /// Pages this node fetched from another node.
    pub fetched: u64,
    /// Copies this node dropped or write-protected at the directory's request.
    pub invalidations: u64,
    /// Home only: pages whose only copy was lost with a node.
    pub lost: u64,
    /// Faults answered with `SIGBUS` on this node.
    pub sigbus: u64,
    /// Mappings of it on this node.
    pub mappings: u32,
}

impl From<&SsiRegionInfo> for RegionInfo {
    fn from(i: &SsiRegionInfo) -> Self {
        let r = &i.region;
        Self {
            name: name_of(r),
            size: r.size,
            mode: r.mode,
            uid: r.uid,
            gid: r.gid,
            home: r.home,
            generation: r.generation,
            state: RegionState::from_raw(i.state),
            resident: i.resident,
            owned: i.owned,
            read_faults: i.read_faults,
            write_faults: i.write_faults,
            fetched: i.fetched,
            invalidations: i.invalidations,
            lost: i.lost,
            sigbus: i.sigbus,
            mappings: i.mappings,
        }
    }
}

/// The answer of [`Device::region_list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionList {
    /// The regions.
    pub regions: Vec<RegionInfo>,
    /// How many more regions the cluster has that did not fit in the answer.
    pub more: u32,
}

impl From<&SsiRegionList> for RegionList {
    fn from(l: &SsiRegionList) -> Self {
        let n = (l.count as usize).min(l.regions.len());
        Self {
            regions: l.regions[..n].iter().map(RegionInfo::from).collect(),
            more: l.more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::errno;

    #[test]
    fn names_are_checked_before_asking_the_kernel() {
        for good in ["a", "shm-1.data", "A_b", &"x".repeat(MAX_NAME_LEN)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "a/b",
            "é",
            "a b",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            let e = validate_name(bad).unwrap_err();
            assert_eq!(errno(&e), Some(libc::EINVAL));
            assert!(e.to_string().starts_with("invalid region name"), "{e}");
        }
    }

    #[test]
    fn sizes_and_modes_are_checked() {
        assert!(validate_size(4096).is_ok());
        assert!(validate_size(MAX_REGION_SIZE).is_ok());
        for bad in [0, 1, 4095, 4097, MAX_REGION_SIZE + 4096] {
            let e = validate_size(bad).unwrap_err();
            assert!(
                e.to_string().contains("multiple of 4096, at most 4G"),
                "{e}"
            );
        }
        assert!(validate_mode(0o777).is_ok());
        assert!(validate_mode(0).is_ok());
        assert!(validate_mode(0o1777).is_err());
    }

    #[test]
    fn requests_carry_the_name() {
        let r = request("shm").unwrap();
        assert_eq!(r.name_len, 3);
        assert_eq!(&r.name[..4], b"shm\0");
        assert_eq!((r.flags, r.size, r.mode), (0, 0, 0));
        assert_eq!(name_of(&r), "shm");
        let long = "y".repeat(MAX_NAME_LEN);
        assert_eq!(name_of(&request(&long).unwrap()), long);
        assert!(request("../x").is_err());
    }

    #[test]
    fn names_from_the_kernel_are_clamped() {
        let mut r = request("abc").unwrap();
        r.name_len = 1000;
        assert_eq!(name_of(&r), "abc");
        r.name_len = 2;
        assert_eq!(name_of(&r), "ab");
        r.name[0] = 0xff;
        assert_eq!(name_of(&r), "\u{fffd}b");
    }

    #[test]
    fn listings_convert() {
        let mut l = SsiRegionList {
            count: 2,
            more: 3,
            ..Default::default()
        };
        l.regions[0] = SsiRegionInfo {
            region: SsiRegion {
                size: 1 << 20,
                mode: 0o640,
                home: 2,
                uid: 1000,
                gid: 100,
                generation: 9,
                ..request("first").unwrap()
            },
            resident: 1,
            owned: 2,
            read_faults: 3,
            write_faults: 4,
            fetched: 5,
            invalidations: 6,
            lost: 7,
            sigbus: 8,
            mappings: 9,
            state: SSI_REGION_STATE_ACTIVE,
        };
        l.regions[1].state = 42;
        let list = RegionList::from(&l);
        assert_eq!(list.more, 3);
        assert_eq!(list.regions.len(), 2);
        assert_eq!(
            list.regions[0],
            RegionInfo {
                name: "first".into(),
                size: 1 << 20,
                mode: 0o640,
                uid: 1000,
                gid: 100,
                home: 2,
                generation: 9,
                state: RegionState::Active,
                resident: 1,
                owned: 2,
                read_faults: 3,
                write_faults: 4,
                fetched: 5,
                invalidations: 6,
                lost: 7,
                sigbus: 8,
                mappings: 9,
            }
        );
        assert_eq!(list.regions[1].state, RegionState::Unknown(42));
        assert_eq!(list.regions[1].state.label(), "unknown");
        assert_eq!(
            RegionState::from_raw(SSI_REGION_STATE_DEAD).to_string(),
            "dead"
        );
        assert_eq!(RegionState::Remote.label(), "remote");
        // A bogus count is clamped.
        l.count = 1000;
        assert_eq!(RegionList::from(&l).regions.len(), l.regions.len());
    }
}
