// SPDX-License-Identifier: GPL-2.0

//! Page coherence of SSI regions: single writer / many readers, page by page.
//!
//! A fault that this node's copies cannot serve asks the region's home for a plan
//! ([`Directory::request`]); the home marks the page busy and answers with the plan.
//! The faulting node carries it out itself, in process context:
//!
//! 1. contents: zero-fill, its own copy, the plan itself (the home had them), or a
//!    `PageFetch` from the owner (which write-protects its copy first);
//! 2. invalidations: a `PageInvalidate` to every node in the plan's set, the owner
//!    last; each drops its copy (PTEs zapped on every process of that node) before
//!    answering. A node that is down has no copy left;
//! 3. installs the page and maps it (read-only or writable);
//! 4. tells the home (`PageDone`), which records the new state and frees the page for
//!    the next fault.
//!
//! The home's handlers never wait for other nodes (they run in the transports'
//! receive context), and the owner's contents are never dropped before the faulting
//! node holds them (a fetch only downgrades; the invalidation comes after), so a lost
//! answer cannot lose data. Two faults on one page are serialised by the directory
//! (`Busy`: the second retries), which with invalidation-before-write makes aligned
//! word accesses sequentially consistent across nodes.
//!
//! Faults of one region on one node are serialised (`Region::faulting`), so a node has
//! at most one plan of a region in flight and a `PageDone` always refers to it. A plan
//! is aborted (`PageDone` not ok) only before the owner's copy is touched; invalidating
//! the owner comes last and commits it.
//!
//! Failures: a fault whose page was lost with a node (`Lost`), or whose region is gone
//! (removed, or its home went down), gets `SIGBUS`. Transient trouble (a busy page,
//! a request that timed out on a slow or congested link) is retried for up to
//! [`FAULT_BUDGET_MS`]: a loaded cluster is slow, not broken, and SIGBUS is for real
//! losses. A task being killed stops retrying at once.

use core::sync::atomic::{AtomicU32, Ordering};

use kernel::{page::Page, prelude::*, time::delay::fsleep, time::Delta};

use crate::regions::{self, bump, Copy, Holdings, Region};
use crate::shared::directory::{Access, DirError, PageState, Plan, Source};
use crate::shared::wire::{self, Header, Message, PlanSource, NO_NODE, PAGE_DATA_LEN};
use crate::{calls, clock, errno, nodes, region_file, transmit};

/// How long one fault may keep retrying transient failures before it gets `SIGBUS`
/// (the nodes it needs are up all along, or it would have ended sooner).
pub(crate) const FAULT_BUDGET_MS: u64 = 60_000;
/// Timeout of each request a fault sends.
const REQUEST_TIMEOUT_MS: u32 = 1000;
/// Pause before retrying a busy page.
const BUSY_PAUSE_US: i64 = 200;
/// Attempts at sending a `PageDone` (a full send queue drains in microseconds).
const DONE_SEND_TRIES: u32 = 1000;

/// How a fault ended.
pub(crate) enum Outcome {
    /// The page is mapped; the insertion's result.
    Mapped(u32),
    /// `SIGBUS`.
    SigBus,
}

/// Maps a page into the faulting VMA (read-only or writable); called with the region's
/// lock held, so that no invalidation can free the page meanwhile.
pub(crate) type Insert<'a> = &'a mut dyn FnMut(&Page, bool) -> u32;

/// A page's contents in flight.
pub(crate) type PageBuf = KBox<[u8; PAGE_DATA_LEN]>;

pub(crate) fn new_buf() -> Result<PageBuf> {
    // Initialised in place: a 4 KiB temporary must not go through the stack.
    Ok(KBox::init(
        pin_init::zeroed::<[u8; PAGE_DATA_LEN]>(),
        GFP_KERNEL,
    )?)
}

pub(crate) fn page_from(data: Option<&[u8; PAGE_DATA_LEN]>) -> Result<Page> {
    // Charged to the faulting task's memory cgroup.
    let page = Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?;
    if let Some(d) = data {
        // SAFETY: `d` is valid for reading `PAGE_DATA_LEN` bytes, which is the page size,
        // and does not overlap the freshly allocated page.
        unsafe { page.write_raw(d.as_ptr(), 0, PAGE_DATA_LEN)? };
    }
    Ok(page)
}

fn read_page(page: &Page, out: &mut [u8; PAGE_DATA_LEN]) -> Result {
    // SAFETY: `out` is valid for writing `PAGE_DATA_LEN` bytes (the page size) and is not
    // the page's memory. Writers of the page are excluded: it is mapped read-only
    // everywhere, or the caller write-protected it, or it is a private copy.
    unsafe { page.read_raw(out.as_mut_ptr(), 0, PAGE_DATA_LEN) }
}

fn self_id() -> u16 {
    nodes::self_and_leader().0
}

fn dir_errno(e: DirError) -> Error {
    match e {
        DirError::Invalid => EINVAL,
        DirError::Busy => EAGAIN,
        DirError::Lost => EIO,
        DirError::NotInFlight => errno::eproto(),
    }
}

/// Errors after which a fault tries again (within its budget).
fn retryable(e: Error) -> bool {
    e == EAGAIN || e == ETIMEDOUT || e == errno::ehostdown() || e == errno::enotconn()
}

/// A fault on `page` of `region` (`write`: a write access). `insert` maps the page.
/// `replace` (a write to a read-only PTE, `pfn_mkwrite`): the PTE is zapped before the
/// writable one goes in, under the region's lock, so the kernel never upgrades a PTE
/// whose copy may have been write-protected and re-mapped meanwhile.
pub(crate) fn fault(
    region: &Region,
    page: u32,
    write: bool,
    replace: bool,
    insert: Insert<'_>,
) -> Outcome {
    bump(if write {
        &region.stats.write_faults
    } else {
        &region.stats.read_faults
    });
    if page >= region.record.pages {
        return sigbus(region, page, EINVAL);
    }
    let start = clock::now_ms();
    loop {
        {
            let h = region.holdings.lock();
            if h.dead {
                return sigbus(region, page, errno::eidrm());
            }
            if let Some(c) = h.copy(page) {
                if !write || c.writable {
                    return map(&h, page, c, replace, insert);
                }
            }
        }
        // One fault at a time per region on this node: a thread that faulted on the
        // same page meanwhile finds it here when its turn comes.
        let result = {
            let _serialised = region.faulting.lock();
            let h = region.holdings.lock();
            match h.copy(page) {
                Some(c) if !write || c.writable => Ok(map(&h, page, c, replace, insert)),
                _ => {
                    drop(h);
                    acquire(region, page, write, replace, insert)
                }
            }
        };
        match result {
            Ok(outcome) => return outcome,
            // Being killed: no point in waiting (the fatal signal wins over SIGBUS).
            Err(e) if retryable(e) && region_file::current_dying() => return Outcome::SigBus,
            Err(e) if retryable(e) && clock::now_ms() - start < FAULT_BUDGET_MS => {
                fsleep(Delta::from_micros(BUSY_PAUSE_US));
            }
            Err(e) => return sigbus(region, page, e),
        }
    }
}

fn map(h: &Holdings, page: u32, c: &Copy, replace: bool, insert: Insert<'_>) -> Outcome {
    if replace {
        h.zap(page);
    }
    Outcome::Mapped(insert(&c.page, c.writable))
}

fn sigbus(region: &Region, page: u32, e: Error) -> Outcome {
    static LOGGED: AtomicU32 = AtomicU32::new(0);
    bump(&region.stats.sigbus);
    // A distributed process's own memory lost with a node: the process is lost (its
    // thread there is gone too), and ends as its threads' stand-ins would end it.
    let lost_with = region.stats.lost_with.load(Ordering::Relaxed);
    if region.is_private() && e == EIO && lost_with > 0 {
        pr_err!(
            "pid {}: its memory (page {} of {}) was lost with node {}; killing it\n",
            region_file::current_tgid(),
            page,
            region.name_str(),
            lost_with - 1
        );
        region_file::kill_current_process();
        return Outcome::SigBus;
    }
    if LOGGED.fetch_add(1, Ordering::Relaxed) < 20 {
        pr_warn!(
            "region {}: fault on page {} failed ({:?}): SIGBUS\n",
            region.name_str(),
            page,
            e
        );
    }
    Outcome::SigBus
}

/// A plan as the faulting node carries it out.
struct FaultPlan {
    plan: Plan,
    /// The node holding the current contents when the plan was made (`NO_NODE`: none).
    owner: u16,
    /// The contents, when the home sent them with the plan.
    inline: Option<Page>,
}

/// Asks the directory, carries out the plan, maps the page, reports to the directory.
/// Called with the region's `faulting` lock held.
fn acquire(
    region: &Region,
    page: u32,
    write: bool,
    replace: bool,
    insert: Insert<'_>,
) -> Result<Outcome> {
    let me = self_id();
    let fp = if region.record.home == me {
        let (plan, owner, _) = plan_here(region, page, me, write)?;
        FaultPlan {
            plan,
            owner,
            inline: None,
        }
    } else {
        match ask_home(region, page, write) {
            Ok(fp) => fp,
            Err(e) => {
                // The home may have made a plan whose answer we lost or could not use:
                // free the page (ignored if it made none; this node has no other fault
                // on the region in flight).
                done(region, page, me, false);
                return Err(e);
            }
        }
    };
    // The page is busy at the directory until `done`.
    let result = execute(region, page, me, fp, replace, insert);
    done(region, page, me, result.is_ok());
    result
}

/// The home's answer to our fault.
fn ask_home(region: &Region, page: u32, write: bool) -> Result<FaultPlan> {
    let answer = calls::call_uninterruptible(
        u32::from(region.record.home),
        &Message::PageFault {
            region: region.generation(),
            page,
            write,
        },
        REQUEST_TIMEOUT_MS,
    )?;
    let Ok((
        _,
        Message::PagePlan {
            downgrade,
            source,
            owner,
            invalidate,
            writable,
            data,
        },
    )) = wire::decode(&answer)
    else {
        return Err(errno::eproto());
    };
    let mut inline = None;
    let source = match source {
        PlanSource::Zero => Source::Zero,
        PlanSource::Local => Source::Local,
        PlanSource::Node(n) => Source::Node(n),
        PlanSource::Inline => {
            inline = Some(page_from(Some(page_data(data)?))?);
            // Fetched from the home, which keeps its (read-only) copy.
            Source::Node(region.record.home)
        }
    };
    Ok(FaultPlan {
        plan: Plan {
            downgrade: (downgrade != NO_NODE).then_some(downgrade),
            source,
            invalidate,
            map_writable: writable,
        },
        owner,
        inline,
    })
}

/// Carries out steps 1-3 of a plan.
///
/// Failure before the owner's copy is touched aborts the plan (the directory's state
/// stays true: the owner still has the contents). Invalidating the owner comes last;
/// from then on the plan is committed: we hold the only current contents, so the
/// owner's invalidation is retried until it is acknowledged or the owner is down.
fn execute(
    region: &Region,
    page: u32,
    me: u16,
    fp: FaultPlan,
    replace: bool,
    insert: Insert<'_>,
) -> Result<Outcome> {
    let plan = &fp.plan;
    // 1. The contents (None: our own copy).
    let fresh = match (plan.source, fp.inline) {
        (_, Some(p)) => Some(p),
        (Source::Zero, None) => Some(page_from(None)?),
        (Source::Local, None) => {
            let have = region.holdings.lock().copy(page).is_some();
            if have {
                None
            } else if fp.owner != NO_NODE && fp.owner != me {
                // The directory counts a copy we no longer hold: read the owner's.
                Some(fetch(region, page, fp.owner)?)
            } else {
                return Err(EIO);
            }
        }
        (Source::Node(n), None) => Some(fetch(region, page, n)?),
    };
    if let Some(d) = plan.downgrade {
        if plan.source != Source::Node(d) && d != me {
            // Plans only downgrade the node they read from.
            return Err(errno::eproto());
        }
    }
    // 2. Invalidations: read-only copies first (abortable), the owner's last.
    let owner_bit = if fp.owner < 64 { 1u64 << fp.owner } else { 0 };
    let mut set = plan.invalidate & !(1u64 << me) & !owner_bit;
    while set != 0 {
        let n = set.trailing_zeros() as u16;
        set &= set - 1;
        invalidate(region, page, n, false)?;
    }
    if plan.invalidate & owner_bit != 0 && fp.owner != me {
        invalidate(region, page, fp.owner, true)?;
    }
    // 3. Install and map.
    let mut h = region.holdings.lock();
    if h.dead {
        return Err(errno::eidrm());
    }
    let zero_or_write = plan.source == Source::Zero || plan.map_writable;
    match fresh {
        Some(p) => {
            if h.copy(page).is_some() {
                h.zap(page);
            }
            h.store(
                page,
                Copy {
                    page: p,
                    writable: plan.map_writable,
                    owner: zero_or_write,
                },
            );
        }
        None => {
            let c = h.copy_mut(page).ok_or(EIO)?;
            c.writable = plan.map_writable;
            if plan.map_writable {
                h.set_owner(page, true);
            }
        }
    }
    let c = h.copy(page).ok_or(EIO)?;
    Ok(map(&h, page, c, replace, insert))
}

/// Reads `page` from `node`, which write-protects its copy first: a read leaves it
/// read-only there, a write invalidates it next, and either way no store there is
/// missed by the copy read.
fn fetch(region: &Region, page: u32, node: u16) -> Result<Page> {
    let answer = calls::call_uninterruptible(
        u32::from(node),
        &Message::PageFetch {
            region: region.generation(),
            page,
            downgrade: true,
        },
        REQUEST_TIMEOUT_MS,
    )?;
    match wire::decode(&answer) {
        Ok((_, Message::PageData { data })) => {
            let p = page_from(Some(page_data(data)?))?;
            bump(&region.stats.fetched);
            Ok(p)
        }
        _ => Err(errno::eproto()),
    }
}

/// Page contents in an answer (`EPROTO` if it is not a whole page).
fn page_data(data: &[u8]) -> Result<&[u8; PAGE_DATA_LEN]> {
    data.try_into().map_err(|_| errno::eproto())
}

/// Has `node` drop its copy of `page`. A node that is down has none left; a live one
/// is asked until it answers, or (unless `committed`) the fault's budget runs out or
/// the faulting task is killed.
fn invalidate(region: &Region, page: u32, node: u16, committed: bool) -> Result {
    let start = clock::now_ms();
    let msg = Message::PageInvalidate {
        region: region.generation(),
        page,
    };
    loop {
        if !nodes::is_up(u32::from(node)) {
            return Ok(());
        }
        match calls::call_uninterruptible(u32::from(node), &msg, REQUEST_TIMEOUT_MS) {
            Ok(_) => return Ok(()),
            Err(e) if e == ENOENT || e == errno::eidrm() => return Ok(()),
            Err(e)
                if !committed
                    && (region_file::current_dying()
                        || clock::now_ms() - start >= FAULT_BUDGET_MS) =>
            {
                return Err(e)
            }
            Err(_) => fsleep(Delta::from_micros(BUSY_PAUSE_US)),
        }
    }
}

/// Step 4: the page is free again at the directory.
fn done(region: &Region, page: u32, me: u16, ok: bool) {
    if region.record.home == me {
        finish_here(region, page, me, ok);
        return;
    }
    let msg = Message::PageDone {
        region: region.generation(),
        page,
        ok,
    };
    // A full send queue clears quickly; a dead link makes the home drop our request
    // (`node_lost`).
    for _ in 0..DONE_SEND_TRIES {
        if transmit::send(u32::from(region.record.home), &msg, 0, 0).is_ok()
            || !nodes::is_up(u32::from(region.record.home))
        {
            return;
        }
        fsleep(Delta::from_micros(BUSY_PAUSE_US));
    }
    pr_warn!(
        "region {}: could not tell the home that page {} is done\n",
        region.name_str(),
        page
    );
}

/// Home: the directory's plan for `node`'s fault, and the owner at the time. For a
/// remote faulter whose contents come from this node, also the contents, to send with
/// the plan (our copy is write-protected first, which is the plan's downgrade of us if
/// it has one).
fn plan_here(
    region: &Region,
    page: u32,
    node: u16,
    write: bool,
) -> Result<(Plan, u16, Option<PageBuf>)> {
    let me = self_id();
    let mut h = region.holdings.lock();
    let access = if write { Access::Write } else { Access::Read };
    let dir = h.directory.as_mut().ok_or(ENOENT)?;
    let owner = match dir.state(page as usize).map_err(dir_errno)? {
        PageState::Shared { owner, .. } | PageState::Exclusive { owner } => owner,
        _ => NO_NODE,
    };
    let mut plan = dir
        .request(page as usize, node, access)
        .map_err(dir_errno)?;
    if plan.source != Source::Node(me) || node == me {
        return Ok((plan, owner, None));
    }
    let served = new_buf().and_then(|mut out| {
        serve(region, &mut h, page, true, &mut out)?;
        Ok(out)
    });
    match served {
        Ok(out) => {
            if plan.downgrade == Some(me) {
                plan.downgrade = None;
            }
            Ok((plan, owner, Some(out)))
        }
        Err(e) => {
            if let Some(dir) = h.directory.as_mut() {
                let _ = dir.abort(page as usize, node);
            }
            Err(e)
        }
    }
}

/// Home: the plan for `node`'s fault on `page` was carried out (or not).
fn finish_here(region: &Region, page: u32, node: u16, ok: bool) {
    let mut h = region.holdings.lock();
    if let Some(dir) = h.directory.as_mut() {
        let _ = if ok {
            dir.complete(page as usize, node).map(|_| ())
        } else {
            dir.abort(page as usize, node)
        };
    }
}

/// Copies our copy of `page` into `out`, write-protecting it first if `downgrade` (a
/// writable copy must be: a store after the copy would be lost).
fn serve(
    region: &Region,
    h: &mut Holdings,
    page: u32,
    downgrade: bool,
    out: &mut [u8; PAGE_DATA_LEN],
) -> Result {
    let writable = h.copy(page).ok_or(ENOENT)?.writable;
    if downgrade && writable {
        // Every PTE goes; later reads here map it read-only again.
        h.zap(page);
        if let Some(c) = h.copy_mut(page) {
            c.writable = false;
        }
        bump(&region.stats.invalidations);
    }
    read_page(&h.copy(page).ok_or(ENOENT)?.page, out)
}

/// Drops our copy of `page` (its PTEs first).
fn drop_copy(region: &Region, page: u32) {
    let mut h = region.holdings.lock();
    if let Some(c) = h.take(page) {
        h.zap(page);
        drop(c);
        bump(&region.stats.invalidations);
    }
}

/// The region with this generation, checked for a sane page index.
fn region_for(generation: u64, page: u32) -> Result<kernel::sync::Arc<Region>> {
    let r = regions::by_generation(generation).ok_or(ENOENT)?;
    if page >= r.record.pages {
        return Err(EINVAL);
    }
    Ok(r)
}

/// A `PageFault` from `h.src`: answer with the directory's plan.
pub(crate) fn on_fault(h: &Header, generation: u64, page: u32, write: bool) {
    let planned = region_for(generation, page).and_then(|r| {
        if r.record.home != self_id() {
            return Err(ENOENT);
        }
        plan_here(&r, page, h.src, write)
    });
    let (plan, owner, inline) = match planned {
        Ok(v) => v,
        Err(e) => {
            transmit::answer(h, Err(e));
            return;
        }
    };
    let (source, data): (PlanSource, &[u8]) = match (&inline, plan.source) {
        (Some(buf), _) => (PlanSource::Inline, &buf[..]),
        (None, Source::Zero) => (PlanSource::Zero, &[]),
        (None, Source::Local) => (PlanSource::Local, &[]),
        (None, Source::Node(n)) => (PlanSource::Node(n), &[]),
    };
    transmit::answer(
        h,
        Ok(Message::PagePlan {
            downgrade: plan.downgrade.unwrap_or(NO_NODE),
            source,
            owner,
            invalidate: plan.invalidate,
            writable: plan.map_writable,
            data,
        }),
    );
}

/// A `PageDone` from `node`.
pub(crate) fn on_done(node: u32, generation: u64, page: u32, ok: bool) {
    if let Ok(r) = region_for(generation, page) {
        if r.record.home == self_id() {
            // Ids are below 64.
            finish_here(&r, page, node as u16, ok);
        }
    }
}

/// A `PageFetch`: answer with our copy, write-protected first if asked.
pub(crate) fn on_fetch(h: &Header, generation: u64, page: u32, downgrade: bool) {
    let result = (|| -> Result<PageBuf> {
        let r = region_for(generation, page)?;
        let mut buf = new_buf()?;
        let mut hold = r.holdings.lock();
        if hold.dead {
            return Err(errno::eidrm());
        }
        serve(&r, &mut hold, page, downgrade, &mut buf)?;
        Ok(buf)
    })();
    match result {
        Ok(buf) => transmit::answer(h, Ok(Message::PageData { data: &buf[..] })),
        Err(e) => transmit::answer(h, Err(e)),
    }
}

/// A `PageInvalidate`: drop our copy, then acknowledge.
pub(crate) fn on_invalidate(h: &Header, generation: u64, page: u32) {
    match region_for(generation, page) {
        Ok(r) => {
            drop_copy(&r, page);
            transmit::answer(h, Ok(Message::PageData { data: &[] }));
        }
        Err(e) => transmit::answer(h, Err(e)),
    }
}

/// Node `id` went down (or restarted): the directories homed here forget its copies
/// and count the pages only it held as lost; regions homed there die here.
pub(crate) fn node_lost(id: u16) {
    for r in regions::all().iter() {
        if r.record.home == id {
            continue;
        }
        let mut h = r.holdings.lock();
        if let Some(dir) = h.directory.as_mut() {
            let lost = dir.node_lost(id);
            if lost > 0 {
                r.stats.lost.fetch_add(lost as u32, Ordering::Relaxed);
                r.stats
                    .lost_with
                    .store(u32::from(id) + 1, Ordering::Relaxed);
                pr_warn!(
                    "region {}: {} pages lost with node {} (faults on them get SIGBUS)\n",
                    r.name_str(),
                    lost,
                    id
                );
            }
        }
    }
    regions::home_lost(id);
}
