// SPDX-License-Identifier: GPL-2.0

//! Which memory a distributed process maps after its threads spread becomes shared.
//!
//! Once a process runs threads on several nodes, a mapping one thread makes must be seen
//! by all of them at the same address, or a pointer into it that another thread reads
//! from shared memory faults (or, worse, lands in something else mapped there). So the
//! process's home places every new private anonymous mapping, keeps it in a
//! private-memory region (the directory protocol of the regions, as for the memory the
//! process had when it became distributed), and every address space of the process maps
//! it there before `mmap` returns; `munmap` of such memory is undone everywhere too.
//!
//! A private file mapping is made alike too ([`file_mapping`]): one that is not written
//! (program text, read-only data: what `dlopen` maps) by path, each address space
//! mapping the same file at the same address, and a writable one (a library's
//! `.data`) as a private-memory region that the caller fills with the file's contents
//! before `mmap` returns.
//!
//! This file decides, from an `mmap` call's arguments, whether the call makes such
//! memory and where it may go ([`shared_mapping`], [`file_mapping`]); the kernel side
//! (`ssi_migrate/address_space.rs`) carries it out. Executable anonymous memory,
//! writable executable file mappings, huge-page and grows-down mappings, and shared
//! mappings stay the kernel's (local to the node that makes them): region files live on
//! a `noexec` mount and cannot grow down, and a shared file mapping would need every
//! node's page cache to be one.

/// `mmap` flags (the same on x86_64 and 32-bit ARM).
pub const MAP_SHARED: u32 = 0x01;
pub const MAP_PRIVATE: u32 = 0x02;
pub const MAP_TYPE: u32 = 0x0f;
pub const MAP_FIXED: u32 = 0x10;
pub const MAP_ANONYMOUS: u32 = 0x20;
pub const MAP_GROWSDOWN: u32 = 0x0100;
pub const MAP_HUGETLB: u32 = 0x4_0000;
pub const MAP_FIXED_NOREPLACE: u32 = 0x10_0000;
/// `mmap` protections.
pub const PROT_READ: u32 = 0x1;
pub const PROT_WRITE: u32 = 0x2;
pub const PROT_EXEC: u32 = 0x4;

/// Most pages of one shared mapping (a region's limit, `super::region::MAX_PAGES`).
pub const MAX_PAGES: u32 = 1 << 20;

const PAGE: u64 = 4096;

/// Where a shared mapping goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Where the home finds room (`addr` is a hint, 0 for none).
    Anywhere,
    /// Exactly at the address, replacing what is there (`MAP_FIXED`).
    Fixed,
    /// Exactly at the address, which must be free (`MAP_FIXED_NOREPLACE`).
    FixedNoReplace,
}

impl Placement {
    /// The wire value.
    pub fn raw(self) -> u32 {
        match self {
            Placement::Anywhere => 0,
            Placement::Fixed => 1,
            Placement::FixedNoReplace => 2,
        }
    }

    /// How a mapping that the home placed goes into the other address spaces of the
    /// process (and the caller's, when it is not the home): at the same address,
    /// replacing what is there only when the caller asked for that (`MAP_FIXED`); else
    /// that address must be free there too.
    pub fn elsewhere(self) -> Self {
        match self {
            Placement::Fixed => Placement::Fixed,
            _ => Placement::FixedNoReplace,
        }
    }

    /// From the wire value.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => Placement::Anywhere,
            1 => Placement::Fixed,
            2 => Placement::FixedNoReplace,
            _ => return None,
        })
    }
}

/// A shared mapping to make: `pages` pages at `addr` (a hint with
/// [`Placement::Anywhere`]) with protection `prot` in the calling address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedMapping {
    pub addr: u64,
    pub pages: u32,
    pub prot: u32,
    pub placement: Placement,
}

impl SharedMapping {
    /// Its length in bytes.
    pub fn bytes(&self) -> u64 {
        u64::from(self.pages) * PAGE
    }
}

/// Why an `mmap` call that would make shared memory is refused: the errno `mmap`
/// returns (positive).
pub type Refusal = i32;

/// `EINVAL`, `ENOMEM`, `EOVERFLOW` (the values `mmap` returns; the same on every
/// architecture).
const EINVAL: i32 = 22;
const ENOMEM: i32 = 12;
const EOVERFLOW: i32 = 75;

/// The shared mapping an `mmap(addr, len, prot, flags, ...)` call of a distributed
/// process makes: `None` when the call is the kernel's alone (see the file's header),
/// else the mapping or the errno the call fails with (checked as the kernel checks
/// them, for the cases the kernel's `mmap` would not reach: a size a region cannot
/// have).
pub fn shared_mapping(
    addr: u64,
    len: u64,
    prot: u32,
    flags: u32,
) -> Option<Result<SharedMapping, Refusal>> {
    if flags & MAP_ANONYMOUS == 0
        || flags & MAP_TYPE != MAP_PRIVATE
        || flags & (MAP_GROWSDOWN | MAP_HUGETLB) != 0
        || prot & !(PROT_READ | PROT_WRITE) != 0
    {
        return None;
    }
    Some(check(addr, len, prot, placement(flags)))
}

/// How a private file mapping is made alike in every address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Not writable: every address space maps the same file (opened by its path on each
    /// node) at the same address, with the same offset and protection.
    ByPath,
    /// Writable (not executable): a private-memory region that the caller fills with
    /// the file's contents, as a private mapping's first write would copy them.
    Copied,
}

/// A private file mapping to make alike: `map` as for anonymous memory, from page
/// `pgoff` of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileMapping {
    pub map: SharedMapping,
    pub pgoff: u64,
    pub kind: FileKind,
}

impl FileMapping {
    /// What becomes of it when its file cannot be opened by path elsewhere (deleted, a
    /// `memfd`, a path too long to send): its contents are copied unless it is
    /// executable (a region cannot be), which stays the caller's (`None`).
    pub fn without_path(self) -> Option<Self> {
        if self.map.prot & PROT_EXEC != 0 {
            return None;
        }
        Some(Self {
            kind: FileKind::Copied,
            ..self
        })
    }
}

/// The alike mapping an `mmap(addr, len, prot, flags, fd, pgoff)` call of a distributed
/// process with a file makes: `None` when the call is the kernel's alone (see the
/// file's header), else the mapping or the errno the call fails with.
pub fn file_mapping(
    addr: u64,
    len: u64,
    prot: u32,
    flags: u32,
    pgoff: u64,
) -> Option<Result<FileMapping, Refusal>> {
    if flags & MAP_ANONYMOUS != 0
        || flags & MAP_TYPE != MAP_PRIVATE
        || flags & (MAP_GROWSDOWN | MAP_HUGETLB) != 0
        || prot & !(PROT_READ | PROT_WRITE | PROT_EXEC) != 0
        || prot & (PROT_WRITE | PROT_EXEC) == PROT_WRITE | PROT_EXEC
    {
        return None;
    }
    let kind = if prot & PROT_WRITE != 0 {
        FileKind::Copied
    } else {
        FileKind::ByPath
    };
    Some(check(addr, len, prot, placement(flags)).and_then(|map| {
        // The kernel's own check: the mapping's last page has a file offset.
        pgoff
            .checked_add(u64::from(map.pages))
            .filter(|&end| end <= u64::MAX >> 12)
            .ok_or(EOVERFLOW)?;
        Ok(FileMapping { map, pgoff, kind })
    }))
}

fn placement(flags: u32) -> Placement {
    if flags & MAP_FIXED_NOREPLACE != 0 {
        Placement::FixedNoReplace
    } else if flags & MAP_FIXED != 0 {
        Placement::Fixed
    } else {
        Placement::Anywhere
    }
}

fn check(addr: u64, len: u64, prot: u32, placement: Placement) -> Result<SharedMapping, Refusal> {
    if len == 0 || (placement != Placement::Anywhere && addr & (PAGE - 1) != 0) {
        return Err(EINVAL);
    }
    // Shifts, not u64 division (a panicking builtin on 32-bit ARM).
    let pages = len.checked_add(PAGE - 1).ok_or(ENOMEM)? >> 12;
    let pages = u32::try_from(pages)
        .ok()
        .filter(|&p| p <= MAX_PAGES)
        .ok_or(ENOMEM)?;
    let addr = if placement == Placement::Anywhere {
        addr & !(PAGE - 1)
    } else {
        addr
    };
    Ok(SharedMapping {
        addr,
        pages,
        prot,
        placement,
    })
}

/// The page-aligned range `munmap(addr, len)` removes, or the errno it fails with
/// (`addr` unaligned, `len` 0 or past the end of the address space `limit`).
pub fn unmap_range(addr: u64, len: u64, limit: u64) -> Result<(u64, u64), Refusal> {
    if addr & (PAGE - 1) != 0 || len == 0 {
        return Err(EINVAL);
    }
    let len = len.checked_add(PAGE - 1).ok_or(EINVAL)? & !(PAGE - 1);
    let end = addr.checked_add(len).ok_or(EINVAL)?;
    if end > limit {
        return Err(EINVAL);
    }
    Ok((addr, len))
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_address_space))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;
    const RW: u32 = PROT_READ | PROT_WRITE;

    #[test]
    fn private_anonymous_memory_is_shared() {
        assert_eq!(
            shared_mapping(0, 10_000, RW, ANON),
            Some(Ok(SharedMapping {
                addr: 0,
                pages: 3,
                prot: RW,
                placement: Placement::Anywhere
            }))
        );
        // glibc's reservations for thread stacks and malloc arenas: PROT_NONE first.
        let r = shared_mapping(0, 128 << 20, 0, ANON | 0x4000)
            .unwrap()
            .unwrap();
        assert_eq!((r.pages, r.prot), (32768, 0));
        assert_eq!(r.bytes(), 128 << 20);
        // A hint is only a hint.
        let r = shared_mapping(0x7000_1234, 4096, RW, ANON)
            .unwrap()
            .unwrap();
        assert_eq!((r.addr, r.placement), (0x7000_1000, Placement::Anywhere));
        let r = shared_mapping(0x7000_0000, 4096, RW, ANON | MAP_FIXED)
            .unwrap()
            .unwrap();
        assert_eq!(r.placement, Placement::Fixed);
        let r = shared_mapping(0x7000_0000, 4096, RW, ANON | MAP_FIXED_NOREPLACE)
            .unwrap()
            .unwrap();
        assert_eq!(r.placement, Placement::FixedNoReplace);
    }

    #[test]
    fn other_memory_stays_the_kernels() {
        for (prot, flags) in [
            (RW, MAP_PRIVATE),                // a file (file_mapping's)
            (RW, MAP_SHARED | MAP_ANONYMOUS), // shared anonymous
            (RW | PROT_EXEC, ANON),           // JIT code
            (RW, ANON | MAP_GROWSDOWN),       // grows down
            (RW, ANON | MAP_HUGETLB),         // huge pages
            (RW | 0x0100_0000, ANON),         // PROT_GROWSDOWN
            (RW, 0x03 | MAP_ANONYMOUS),       // MAP_SHARED_VALIDATE
        ] {
            assert_eq!(shared_mapping(0, 4096, prot, flags), None);
        }
    }

    #[test]
    fn private_file_mappings_are_alike_by_path_or_copied() {
        const RX: u32 = PROT_READ | PROT_EXEC;
        let at = |prot, flags| file_mapping(0x7f00_0000_0000, 8192, prot, flags, 2);
        // What the dynamic loader maps: the whole library read-only, its text, its data.
        for (prot, kind) in [
            (PROT_READ, FileKind::ByPath),
            (RX, FileKind::ByPath),
            (0, FileKind::ByPath),
            (RW, FileKind::Copied),
            (PROT_WRITE, FileKind::Copied),
        ] {
            let m = at(prot, MAP_PRIVATE | MAP_FIXED).unwrap().unwrap();
            assert_eq!((m.kind, m.pgoff, m.map.pages), (kind, 2, 2));
            assert_eq!((m.map.prot, m.map.placement), (prot, Placement::Fixed));
        }
        let m = file_mapping(0x1234, 1, PROT_READ, MAP_PRIVATE, 0)
            .unwrap()
            .unwrap();
        assert_eq!((m.map.addr, m.map.placement), (0x1000, Placement::Anywhere));
        // Without a path elsewhere: copied, unless it is code.
        let ro = at(PROT_READ, MAP_PRIVATE).unwrap().unwrap();
        assert_eq!(ro.without_path().map(|m| m.kind), Some(FileKind::Copied));
        assert_eq!(at(RX, MAP_PRIVATE).unwrap().unwrap().without_path(), None);
        // The caller's own: shared files, writable code, anonymous memory, huge pages.
        for (prot, flags) in [
            (PROT_READ, MAP_SHARED),
            (PROT_READ, 0x03),
            (RW | PROT_EXEC, MAP_PRIVATE),
            (RW, MAP_PRIVATE | MAP_ANONYMOUS),
            (PROT_READ, MAP_PRIVATE | MAP_HUGETLB),
            (PROT_READ, MAP_PRIVATE | MAP_GROWSDOWN),
            (PROT_READ | 0x0100_0000, MAP_PRIVATE),
        ] {
            assert_eq!(at(prot, flags), None);
        }
        assert_eq!(
            file_mapping(0, 4096, PROT_READ, MAP_PRIVATE, u64::MAX >> 12),
            Some(Err(EOVERFLOW))
        );
        assert_eq!(
            file_mapping(0x1001, 4096, PROT_READ, MAP_PRIVATE | MAP_FIXED, 0),
            Some(Err(EINVAL))
        );
    }

    #[test]
    fn bad_sizes_and_addresses_are_refused() {
        assert_eq!(MAX_PAGES, super::super::region::MAX_PAGES);
        assert_eq!(shared_mapping(0, 0, RW, ANON), Some(Err(EINVAL)));
        assert_eq!(
            shared_mapping(0x1001, 4096, RW, ANON | MAP_FIXED),
            Some(Err(EINVAL))
        );
        assert_eq!(shared_mapping(0, u64::MAX, RW, ANON), Some(Err(ENOMEM)));
        assert_eq!(
            shared_mapping(0, (u64::from(MAX_PAGES) + 1) * 4096, RW, ANON),
            Some(Err(ENOMEM))
        );
        assert!(matches!(
            shared_mapping(0, u64::from(MAX_PAGES) * 4096, RW, ANON),
            Some(Ok(_))
        ));
    }

    #[test]
    fn unmap_ranges_are_checked_and_rounded() {
        assert_eq!(unmap_range(0x1000, 1, 1 << 47), Ok((0x1000, 0x1000)));
        assert_eq!(unmap_range(0x1000, 0x2000, 1 << 47), Ok((0x1000, 0x2000)));
        assert_eq!(unmap_range(0x1001, 1, 1 << 47), Err(EINVAL));
        assert_eq!(unmap_range(0x1000, 0, 1 << 47), Err(EINVAL));
        assert_eq!(unmap_range(0x1000, u64::MAX, 1 << 47), Err(EINVAL));
        assert_eq!(unmap_range((1 << 47) - 4096, 8192, 1 << 47), Err(EINVAL));
        for p in [
            Placement::Anywhere,
            Placement::Fixed,
            Placement::FixedNoReplace,
        ] {
            assert_eq!(Placement::from_raw(p.raw()), Some(p));
        }
        // Where the home put it, elsewhere: replacing only what the caller said it may.
        assert_eq!(Placement::Fixed.elsewhere(), Placement::Fixed);
        assert_eq!(Placement::Anywhere.elsewhere(), Placement::FixedNoReplace);
        assert_eq!(
            Placement::FixedNoReplace.elsewhere(),
            Placement::FixedNoReplace
        );
        assert_eq!(Placement::from_raw(3), None);
    }
}
