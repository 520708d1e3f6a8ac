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
//! A write takes the page from its owner in one round trip, not two: the owner's
//! contents and the end of its copy come in one `PageFetch` that *revokes* the copy
//! (`Plan::steps`, `OwnerStep::Take`), and the home gives its own copy up while it
//! answers (`Plan::home_revokes`). A revoked copy is unmapped and no longer serves a
//! fault by itself, but it is kept: if the plan is aborted it is still the current
//! contents, and the owner's next fault gets it back from the directory (a `Local`
//! plan). Once the plan completed, the faulting node frees it with a `PageRelease`
//! naming the fetch's tag (the home frees its own when the `PageDone` comes).
//!
//! A read of a migratory page (`directory.rs`), or the first read of an untouched one,
//! takes it whole: the copy is mapped read-only but is the only one (`Copy::alone`), so
//! the first write upgrades it here at once (for a migratory page, telling the home with
//! a `PageWritten` that needs no answer).
//!
//! The home's handlers never wait for other nodes (they run in the transports'
//! receive context), and the owner's contents are never dropped before the faulting
//! node holds them (a fetch only downgrades or revokes; the invalidation comes after),
//! so a lost answer cannot lose data. Two faults on one page are serialised by the
//! directory (`Busy`: the second retries), which with invalidation-before-write makes
//! aligned word accesses sequentially consistent across nodes.
//!
//! Faults of one region on one node are serialised (`Region::faulting`), so a node has
//! at most one plan of a region in flight and a `PageDone` always refers to it. A plan
//! is aborted (`PageDone` not ok) only before the owner's copy is dropped; the owner's
//! step comes last and commits it.
//!
//! Failures: a fault whose page was lost with a node (`Lost`), or whose region is gone
//! (removed, or its home went down), gets `SIGBUS`. Transient trouble (a busy page,
//! a request that timed out on a slow or congested link) is retried for up to
//! [`FAULT_BUDGET_MS`]: a loaded cluster is slow, not broken, and SIGBUS is for real
//! losses. A task being killed stops retrying at once.

use core::sync::atomic::{AtomicU32, Ordering};

use kernel::{page::Page, prelude::*, time::delay::fsleep, time::Delta};

use crate::regions::{self, bump, Copy, Holdings, Region, Revocation};
use crate::shared::directory::{Access, DirError, OwnerStep, PageState, Plan, Source};
use crate::shared::wire::{self, Header, Message, PlanSource, NO_NODE, PAGE_DATA_LEN};
use crate::{calls, clock, errno, nodes, region_file, transmit};

/// How long one fault may keep retrying transient failures before it gets `SIGBUS`
/// (the nodes it needs are up all along, or it would have ended sooner).
pub(crate) const FAULT_BUDGET_MS: u64 = 60_000;
/// Timeout of each request a fault sends.
const REQUEST_TIMEOUT_MS: u32 = 1000;
/// Pause before retrying a busy page: long enough that the node that just took the page
/// can use it before it is asked for again (a hold window; see ARCHITECTURE.md).
const BUSY_PAUSE_US: i64 = 1000;
/// Attempts at sending a `PageDone` or `PageRelease` (a full send queue drains in
/// microseconds).
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
                if c.serves(write) {
                    return map(&h, page, c, replace, insert);
                }
                if write && c.upgrades_alone() {
                    return upgrade_alone(region, h, page, replace, insert);
                }
            }
        }
        // One fault at a time per region on this node: a thread that faulted on the
        // same page meanwhile finds it here when its turn comes.
        let result = {
            let _serialised = region.faulting.lock();
            let h = region.holdings.lock();
            match h.copy(page) {
                Some(c) if c.serves(write) => Ok(map(&h, page, c, replace, insert)),
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
                fsleep(busy_pause());
            }
            Err(e) => return sigbus(region, page, e),
        }
    }
}

/// A write to the only copy of a page that a read took whole: writable here at once.
/// The home hears of it (`PageWritten`, not waited for) when it watches the page, a
/// migratory one: the write is what keeps it migratory.
fn upgrade_alone(
    region: &Region,
    mut h: kernel::sync::MutexGuard<'_, Holdings>,
    page: u32,
    replace: bool,
    insert: Insert<'_>,
) -> Outcome {
    let mut watched = false;
    if let Some(c) = h.copy_mut(page) {
        c.writable = true;
        watched = core::mem::replace(&mut c.watched, false);
    }
    h.set_owner(page, true);
    let me = self_id();
    let home_here = region.record.home == me;
    if home_here && watched {
        if let Some(dir) = h.directory.as_mut() {
            dir.written(page as usize, me);
        }
    }
    let outcome = match h.copy(page) {
        Some(c) => map(&h, page, c, replace, insert),
        None => return Outcome::SigBus,
    };
    drop(h);
    if watched && !home_here {
        let msg = Message::PageWritten {
            region: region.generation(),
            page,
        };
        // Lost, it only makes the directory share the page at the next read.
        let _ = transmit::send(u32::from(region.record.home), &msg, 0, 0);
    }
    outcome
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
                done(region, page, me, false, 0);
                return Err(e);
            }
        }
    };
    // The page is busy at the directory until `done`.
    let mut dropped = 0;
    let result = execute(region, page, me, fp, replace, insert, &mut dropped);
    done(region, page, me, result.is_ok(), dropped);
    let (outcome, taken) = result?;
    if let Some((owner, tag)) = taken {
        release(region, page, owner, tag);
    }
    Ok(outcome)
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
            alone,
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
            bump(&region.stats.fetched);
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
            alone,
        },
        owner,
        inline,
    })
}

/// Carries out steps 1-3 of a plan (`Plan::steps`); returns the outcome and, when the
/// owner's copy was revoked, the owner and tag to release it with. `dropped` collects
/// the nodes whose read-only copies are gone (the directory learns them if the plan is
/// aborted).
///
/// Failure before the owner's step aborts the plan (the directory's state stays true:
/// the owner still has the contents). The owner's step comes last; from then on the plan
/// is committed: we hold the only usable current contents. A revoked owner keeps its
/// copy until released, so nothing is lost if we cannot install ours; an owner that
/// drops its copy (`Invalidate`) is asked until it acknowledges or is down.
fn execute(
    region: &Region,
    page: u32,
    me: u16,
    fp: FaultPlan,
    replace: bool,
    insert: Insert<'_>,
    dropped: &mut u64,
) -> Result<(Outcome, Option<(u16, u32)>)> {
    let plan = &fp.plan;
    let steps = plan.steps(me, fp.owner, fp.inline.is_some());
    if let Some(d) = plan.downgrade {
        if plan.source != Source::Node(d) && d != me {
            // Plans only downgrade the node they read from.
            return Err(errno::eproto());
        }
    }
    // 1. The contents (None: our own copy, or the owner's, read in its step).
    let mut fresh = match (plan.source, fp.inline) {
        (_, Some(p)) => Some(p),
        (Source::Zero, None) => Some(page_from(None)?),
        (Source::Local, None) => {
            let have = region.holdings.lock().copy(page).is_some();
            if have {
                None
            } else if fp.owner != NO_NODE && fp.owner != me {
                // The directory counts a copy we no longer hold: read the owner's.
                Some(fetch(region, page, fp.owner, 0)?)
            } else {
                return Err(EIO);
            }
        }
        (Source::Node(_), None) => match steps.fetch {
            Some(n) => Some(fetch(region, page, n, 0)?),
            None => None,
        },
    };
    // 2. Invalidations of read-only copies (abortable).
    let mut set = steps.invalidate;
    while set != 0 {
        let n = set.trailing_zeros() as u16;
        set &= set - 1;
        invalidate(region, page, n, false)?;
        *dropped |= 1u64 << n;
    }
    // The owner's step (the commit).
    let taken = match steps.owner {
        OwnerStep::Keep => None,
        OwnerStep::Take(owner) => {
            let tag = next_tag();
            fresh = Some(fetch(region, page, owner, tag)?);
            Some((owner, tag))
        }
        OwnerStep::Invalidate(owner) => {
            invalidate(region, page, owner, true)?;
            None
        }
    };
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
                    owner: zero_or_write || plan.alone,
                    revoked: None,
                    alone: plan.alone,
                    watched: migratory_read(plan),
                },
            );
        }
        None => {
            // Our own copy, revoked by an earlier plan that was aborted perhaps: the
            // directory grants it again.
            let c = h.copy_mut(page).ok_or(EIO)?;
            c.writable = plan.map_writable;
            c.revoked = None;
            c.alone = plan.alone;
            c.watched = migratory_read(plan);
            if plan.map_writable || plan.alone {
                h.set_owner(page, true);
            }
        }
    }
    let c = h.copy(page).ok_or(EIO)?;
    Ok((map(&h, page, c, replace, insert), taken))
}

/// A read that took a page whole from another holder (a migratory page): the home
/// watches for its first write. A first read of an untouched page is taken whole too,
/// but nobody watches it.
fn migratory_read(plan: &Plan) -> bool {
    plan.alone && !plan.map_writable && plan.source != Source::Zero
}

/// A tag for the next revoking fetch of this node (odd: never 0).
fn next_tag() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(2, Ordering::Relaxed) | 1
}

/// Reads `page` from `node`, which write-protects its copy first: a read leaves it
/// read-only there, a write invalidates it next, and either way no store there is
/// missed by the copy read. A nonzero `revoke` tag revokes its copy as well.
fn fetch(region: &Region, page: u32, node: u16, revoke: u32) -> Result<Page> {
    let answer = calls::call_uninterruptible(
        u32::from(node),
        &Message::PageFetch {
            region: region.generation(),
            page,
            downgrade: true,
            revoke,
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
            Err(_) => fsleep(busy_pause()),
        }
    }
}

/// After step 4: the owner whose copy we revoked with `tag` may free it.
fn release(region: &Region, page: u32, owner: u16, tag: u32) {
    let msg = Message::PageRelease {
        region: region.generation(),
        page,
        tag,
    };
    // Lost, it leaves the owner an unusable copy, replaced by its next fault on the page
    // or freed with the region.
    let _ = transmit::send_retrying(u32::from(owner), &msg, DONE_SEND_TRIES, busy_pause());
}

/// Step 4: the page is free again at the directory (which learns the read-only copies
/// an aborted plan dropped).
fn done(region: &Region, page: u32, me: u16, ok: bool, dropped: u64) {
    if region.record.home == me {
        finish_here(region, page, me, ok, dropped);
        return;
    }
    let msg = Message::PageDone {
        region: region.generation(),
        page,
        ok,
        dropped,
    };
    // A dead link makes the home drop our request (`node_lost`).
    let home = u32::from(region.record.home);
    if transmit::send_retrying(home, &msg, DONE_SEND_TRIES, busy_pause()).is_err() {
        pr_warn!(
            "region {}: could not tell the home that page {} is done\n",
            region.name_str(),
            page
        );
    }
}

/// The pause before a busy page, or a full send queue, is tried again.
fn busy_pause() -> Delta {
    Delta::from_micros(BUSY_PAUSE_US)
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
    if node == me {
        return Ok((plan, owner, None));
    }
    let served = if plan.source == Source::Node(me) {
        let served = new_buf().and_then(|mut out| {
            serve(region, &mut h, page, true, &mut out)?;
            Ok(out)
        });
        match served {
            Ok(out) => {
                if plan.downgrade == Some(me) {
                    plan.downgrade = None;
                }
                Some(out)
            }
            Err(e) => {
                if let Some(dir) = h.directory.as_mut() {
                    let _ = dir.abort(page as usize, node, 0);
                }
                return Err(e);
            }
        }
    } else {
        None
    };
    if plan.home_revokes(node, me) {
        revoke(region, &mut h, page, Revocation { by: node, tag: 0 });
    }
    Ok((plan, owner, served))
}

/// Home: the plan for `node`'s fault on `page` was carried out (or not). A copy of
/// ours that the plan revoked goes (completed), or is ours again (aborted).
fn finish_here(region: &Region, page: u32, node: u16, ok: bool, dropped: u64) {
    let mut h = region.holdings.lock();
    let Some(dir) = h.directory.as_mut() else {
        return;
    };
    let finished = if ok {
        dir.complete(page as usize, node).map(|_| ())
    } else {
        dir.abort(page as usize, node, dropped)
    };
    if finished.is_err() {
        return;
    }
    let ours = Revocation { by: node, tag: 0 };
    if ok {
        h.free_revoked(page, ours);
    } else if let Some(c) = h.copy_mut(page).filter(|c| c.revoked == Some(ours)) {
        c.revoked = None;
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
        bump(&region.stats.invalidations);
    }
    if downgrade {
        if let Some(c) = h.copy_mut(page) {
            c.writable = false;
            c.alone = false;
        }
    }
    read_page(&h.copy(page).ok_or(ENOENT)?.page, out)
}

/// Revokes our copy of `page` for a plan in flight: every PTE goes and the copy stops
/// serving faults here until the directory grants it again (see the module's header).
fn revoke(region: &Region, h: &mut Holdings, page: u32, by: Revocation) {
    if h.copy(page).is_none() {
        return;
    }
    h.zap(page);
    if let Some(c) = h.copy_mut(page) {
        c.writable = false;
        c.alone = false;
        c.revoked = Some(by);
    }
    bump(&region.stats.invalidations);
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
            alone: plan.alone,
            data,
        }),
    );
}

/// A `PageDone` from `node`.
pub(crate) fn on_done(node: u32, generation: u64, page: u32, ok: bool, dropped: u64) {
    if let Ok(r) = region_for(generation, page) {
        if r.record.home == self_id() {
            // Ids are below 64.
            finish_here(&r, page, node as u16, ok, dropped);
        }
    }
}

/// A `PageFetch`: answer with our copy, write-protected first if asked, and revoked for
/// the sender's plan if `revoke` is a tag.
pub(crate) fn on_fetch(h: &Header, generation: u64, page: u32, downgrade: bool, revoke: u32) {
    let result = (|| -> Result<PageBuf> {
        let r = region_for(generation, page)?;
        let mut buf = new_buf()?;
        let mut hold = r.holdings.lock();
        if hold.dead {
            return Err(errno::eidrm());
        }
        if revoke != 0 {
            // Every PTE goes before the contents are read.
            self::revoke(
                &r,
                &mut hold,
                page,
                Revocation {
                    by: h.src,
                    tag: revoke,
                },
            );
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

/// A `PageRelease` from `node`: the plan that revoked our copy with `tag` completed, so
/// the copy is stale; freed only if it is still the one that plan revoked.
pub(crate) fn on_release(node: u16, generation: u64, page: u32, tag: u32) {
    let Ok(r) = region_for(generation, page) else {
        return;
    };
    if tag != 0 {
        r.holdings
            .lock()
            .free_revoked(page, Revocation { by: node, tag });
    }
}

/// A `PageWritten` from `node`: it wrote the page it took whole by reading.
pub(crate) fn on_written(node: u16, generation: u64, page: u32) {
    let Ok(r) = region_for(generation, page) else {
        return;
    };
    if r.record.home != self_id() {
        return;
    }
    let mut h = r.holdings.lock();
    if let Some(dir) = h.directory.as_mut() {
        // Only the page's exclusive owner counts.
        dir.written(page as usize, node);
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
