// SPDX-License-Identifier: GPL-2.0

//! The private memory of a distributed process, kept in SSI regions.
//!
//! When a thread of a process moves to another node, both nodes must see one address
//! space. The process's home turns each private mapping a thread may write into a
//! region homed there (named `.p<home>-<generation>`, see `rust/src/region.rs`): the
//! region adopts the mapping's current pages (the home owns them, exclusively), and a
//! region mapping replaces the private one at the same address. Threads on other nodes
//! map the same regions, so the regions' directory and coherence protocol keep the
//! memory coherent; nothing here is a second protocol. The home removes a region when
//! its last mapping there goes (the process exited or unmapped it) and tells every
//! node, which drops its state. These regions have no bookkeeping key: the nodes learn
//! their size from the process's snapshot.
//!
//! The migration engine calls these functions through the C ABI (`ffi.rs`), in the
//! context of the process whose address space they change.

use core::ffi::{c_int, c_long, c_void};

use kernel::{bindings, prelude::*, sync::Arc};

use crate::coherence::{new_buf, page_from};
use crate::regions::{self, Copy, Region};

#[allow(improper_ctypes)]
extern "C" {
    fn ssi_region_vm_mmap(
        file: *mut bindings::file,
        addr: usize,
        len: usize,
        prot: u32,
        pgoff: u64,
        how: u32,
    ) -> c_long;
    fn ssi_region_vma_region(vma: *mut c_void) -> *mut c_void;
    fn ssi_region_read_forced(addr: usize, buf: *mut u8) -> c_int;
}

/// A private-memory region of `pages` pages homed here; returns its generation.
pub(crate) fn create(pages: u32) -> Result<u64> {
    Ok(regions::create_private(pages)?.generation())
}

/// The private-memory region `generation` homed here, not killed.
fn homed_here(generation: u64) -> Result<Arc<Region>> {
    let r = regions::by_generation(generation).ok_or(ENOENT)?;
    if !r.is_private() || r.record.home != crate::nodes::self_and_leader().0 {
        return Err(EINVAL);
    }
    Ok(r)
}

/// Copies `pages` pages of the calling process's memory at `addr` into region
/// `generation` (homed here, not mapped yet) from its page `first` on: each page that
/// is not all zero becomes the home's exclusive copy; the others stay untouched (zero).
/// A page that cannot be read stays untouched too. `forced`: the mapping is not readable
/// (`PROT_NONE`, a reservation that held data), so its pages are read as a debugger
/// reads them. Returns the number of pages adopted.
pub(crate) fn adopt(
    generation: u64,
    first: u32,
    addr: usize,
    pages: u32,
    forced: bool,
) -> Result<u32> {
    let region = homed_here(generation)?;
    if first
        .checked_add(pages)
        .is_none_or(|end| end > region.record.pages)
    {
        return Err(EINVAL);
    }
    let me = crate::nodes::self_and_leader().0;
    let mut buf = new_buf()?;
    let mut adopted = 0;
    for i in 0..pages {
        let at = addr.checked_add(i as usize * 4096).ok_or(EINVAL)?;
        let read = if forced {
            // SAFETY: `buf` has 4096 bytes.
            let rc = unsafe { ssi_region_read_forced(at, buf.as_mut_ptr()) };
            rc == 0
        } else {
            crate::caller::user_slice(at, 4096)
                .reader()
                .read_slice(&mut buf[..])
                .is_ok()
        };
        if !read {
            continue;
        }
        if buf.iter().all(|&b| b == 0) {
            continue;
        }
        let page = page_from(Some(&buf))?;
        let mut h = region.holdings.lock();
        if h.dead || h.mappings != 0 {
            return Err(EBUSY);
        }
        let dir = h.directory.as_mut().ok_or(EINVAL)?;
        dir.adopt((first + i) as usize, me).map_err(|_| EBUSY)?;
        h.store(
            first + i,
            Copy {
                page,
                writable: true,
                owner: true,
                revoked: None,
                alone: true,
                watched: false,
            },
        );
        adopted += 1;
    }
    Ok(adopted)
}

/// Maps `len` bytes of private-memory region `generation` (`pages` pages, homed on
/// `home`) from page `pgoff` into the calling process (`MAP_SHARED`), with protection
/// `prot`, at `addr` as `how` says (`Placement::raw`); returns where.
#[allow(clippy::too_many_arguments)]
pub(crate) fn map(
    home: u16,
    generation: u64,
    pages: u32,
    addr: usize,
    len: usize,
    pgoff: u64,
    prot: u32,
    how: u32,
) -> Result<usize> {
    let region = if home == crate::nodes::self_and_leader().0 {
        homed_here(generation)?
    } else {
        regions::open_private(home, generation, pages)?
    };
    let file = crate::region_vm::region_file(region, true)?;
    // SAFETY: `file` is a live region file; the mapping takes its own references (the
    // region's, and the backing file as `vm_file`), so ours is dropped afterwards.
    let rc = unsafe { ssi_region_vm_mmap(file.as_ptr(), addr, len, prot, pgoff, how) };
    drop(file);
    if rc < 0 {
        // An errno: above -4096.
        return Err(Error::from_errno(rc as i32));
    }
    // An address of the calling process: not negative.
    Ok(rc as usize)
}

/// Removes private-memory region `generation` (homed here) cluster-wide.
pub(crate) fn remove(generation: u64) -> Result {
    regions::remove_private(&homed_here(generation)?);
    Ok(())
}

/// The generation and size in pages of the private-memory region that `vma` maps, or 0
/// and 0.
///
/// # Safety
///
/// `vma` is a VMA of the calling process, whose mmap lock the caller holds.
pub(crate) unsafe fn of_vma(vma: *mut c_void) -> (u64, u32) {
    // SAFETY: By the function's requirements the VMA is alive; the shim only compares
    // its `vm_ops` and reads `vm_private_data`.
    let region = unsafe { ssi_region_vma_region(vma) };
    if region.is_null() {
        return (0, 0);
    }
    // SAFETY: A region VMA holds a reference on its region for its whole life.
    let r = unsafe { &*region.cast::<Region>() };
    if r.is_private() {
        (r.generation(), r.record.pages)
    } else {
        (0, 0)
    }
}
