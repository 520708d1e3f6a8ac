// SPDX-License-Identifier: GPL-2.0

//! Pages this node exposes for one-sided reads by peers, and reading pages peers
//! exposed.
//!
//! A page is exposed once (a handle) and registered with a peer's link lazily, when
//! that peer asks for it (`PageQuery`); the answer (`PageInfo`) carries the remote
//! address and key of the registration. The reader then reads the page with a one-sided
//! read on its own link, without involving this node's CPU. Registrations die with
//! their link (the transport frees them) and are revoked when the page is withdrawn.
//!
//! The page contents are only written before the page is exposed and only read after
//! a read completed, so the raw page accessors never race with the device.

use kernel::{page::Page, prelude::*, sync::global_lock};

use crate::shared::ioctl::SSI_PAGE_SIZE;
use crate::shared::wire::{self, Message};
use crate::{calls, clock, errno, registry};

/// Pages exposed at most at once.
const MAX_EXPOSED: usize = 64;
/// How long a peer may take to answer a query, and a read to complete.
const QUERY_TIMEOUT_MS: u32 = 2000;
const READ_TIMEOUT_MS: u32 = 2000;

/// A registration of an exposed page with one peer's link.
struct Grant {
    node: u32,
    transport: u32,
    addr: u64,
    rkey: u32,
    cookie: u64,
}

struct Exposed {
    handle: u64,
    page: Page,
    grants: KVec<Grant>,
}

struct Exposures {
    pages: KVec<Exposed>,
    next_handle: u64,
}

global_lock! {
    // SAFETY: `init` runs in module init before any frame or ioctl can arrive.
    unsafe(uninit) static EXPOSED: Mutex<Exposures> = Exposures {
        pages: KVec::new(),
        next_handle: 1,
    };
}

/// Initialises the table. Called once from module init.
pub(crate) fn init() {
    // SAFETY: Called exactly once, from the module initialiser, before any other use.
    unsafe { EXPOSED.init() };
    // Handles differ across loads, so a stale handle from before a reload is unknown.
    EXPOSED.lock().next_handle = u64::from(crate::random::random_u32()) << 16 | 1;
}

/// Exposes a copy of `data`; returns its handle.
pub(crate) fn expose(data: &[u8; SSI_PAGE_SIZE]) -> Result<u64> {
    let page = Page::alloc_page(GFP_KERNEL)?;
    // SAFETY: The page is ours alone (just allocated, not yet visible to any device);
    // `data` is valid for `SSI_PAGE_SIZE` bytes, which is the page size.
    unsafe { page.write_raw(data.as_ptr(), 0, SSI_PAGE_SIZE)? };
    let mut t = EXPOSED.lock();
    if t.pages.len() >= MAX_EXPOSED {
        return Err(ENOSPC);
    }
    let handle = t.next_handle;
    t.next_handle += 1;
    t.pages.push(
        Exposed {
            handle,
            page,
            grants: KVec::new(),
        },
        GFP_KERNEL,
    )?;
    Ok(handle)
}

/// Withdraws an exposed page: every peer's registration is revoked.
pub(crate) fn unexpose(handle: u64) -> Result {
    let e = {
        let mut t = EXPOSED.lock();
        let i = t
            .pages
            .iter()
            .position(|e| e.handle == handle)
            .ok_or(ENOENT)?;
        t.pages.remove(i).map_err(|_| ENOENT)?
    };
    for g in e.grants.iter() {
        if let Some(tr) = registry::transport(g.transport) {
            tr.unexpose_page(g.node, g.cookie);
        }
    }
    // The transports hold their own page references until their revocations complete.
    Ok(())
}

/// A peer asks where to read `handle`: registers the page with its link (once).
pub(crate) fn answer_query(transport: u32, node: u32, handle: u64) -> Result<Message<'static>> {
    let mut t = EXPOSED.lock();
    let e = t
        .pages
        .iter_mut()
        .find(|e| e.handle == handle)
        .ok_or(ENOENT)?;
    if let Some(g) = e.grants.iter().find(|g| g.node == node) {
        return Ok(page_info(handle, g));
    }
    let tr = registry::transport(transport).ok_or_else(errno::enotconn)?;
    // Does not wait (the registration is ordered before our answer on the link).
    let (addr, rkey, cookie) = tr.expose_page(node, &e.page)?;
    let g = Grant {
        node,
        transport,
        addr,
        rkey,
        cookie,
    };
    let info = page_info(handle, &g);
    if let Err(err) = e.grants.push(g, GFP_KERNEL) {
        tr.unexpose_page(node, cookie);
        return Err(err.into());
    }
    Ok(info)
}

fn page_info(handle: u64, g: &Grant) -> Message<'static> {
    Message::PageInfo {
        handle,
        addr: g.addr,
        rkey: g.rkey,
        len: SSI_PAGE_SIZE as u32,
    }
}

/// The link to `node` is gone: so are its registrations (the transport freed them).
pub(crate) fn forget_node(node: u32) {
    let mut t = EXPOSED.lock();
    for e in t.pages.iter_mut() {
        e.grants.retain(|g| g.node != node);
    }
}

/// Latencies of [`read_remote`], in nanoseconds.
pub(crate) struct ReadStats {
    pub(crate) min_ns: u64,
    pub(crate) median_ns: u64,
    pub(crate) max_ns: u64,
}

/// Reads page `handle` that `node` exposed into `out`, `repeat` times with one-sided
/// reads, and reports their latencies.
pub(crate) fn read_remote(
    node: u32,
    handle: u64,
    repeat: u32,
    out: &mut [u8; SSI_PAGE_SIZE],
) -> Result<ReadStats> {
    // Over a transport that emulates reads (a GPIO cable) a page takes seconds.
    let tid = crate::nodes::route(node).ok_or_else(errno::enotconn)?;
    let query_ms = calls::link_timeout(node, QUERY_TIMEOUT_MS);
    let read_ms = calls::link_timeout(node, READ_TIMEOUT_MS);
    let answer = calls::call(node, &Message::PageQuery { handle }, query_ms)?;
    let (addr, rkey) = match wire::decode(&answer) {
        Ok((
            _,
            Message::PageInfo {
                handle: h,
                addr,
                rkey,
                len,
            },
        )) if h == handle && len as usize == SSI_PAGE_SIZE => (addr, rkey),
        _ => return Err(errno::eproto()),
    };
    let page = Page::alloc_page(GFP_KERNEL)?;
    let mut samples = KVec::with_capacity(repeat as usize, GFP_KERNEL)?;
    for _ in 0..repeat {
        // One use per read: unregistering the transport waits for one read at most.
        let tr = registry::transport(tid).ok_or_else(errno::enotconn)?;
        let t0 = clock::now_ns();
        tr.read_page(node, addr, rkey, &page, SSI_PAGE_SIZE as u32, read_ms)?;
        samples.push(clock::now_ns().saturating_sub(t0), GFP_KERNEL)?;
    }
    // SAFETY: The last read completed (the transport waited for it and unmapped the
    // page), nothing else writes the page; `out` is valid for `SSI_PAGE_SIZE` bytes.
    unsafe { page.read_raw(out.as_mut_ptr(), 0, SSI_PAGE_SIZE)? };
    samples.sort_unstable();
    let n = samples.len();
    Ok(ReadStats {
        min_ns: samples.first().copied().unwrap_or(0),
        median_ns: samples.get(n / 2).copied().unwrap_or(0),
        max_ns: samples.last().copied().unwrap_or(0),
    })
}

/// Frees every exposed page (module exit, after the transports are gone).
pub(crate) fn clear() {
    let mut t = EXPOSED.lock();
    t.pages.clear();
}
