// SPDX-License-Identifier: GPL-2.0

//! SSI regions on this node: the table of regions in use here, creating, opening,
//! removing and listing them (the `/dev/ssi` region ioctls), and what each region
//! holds here (its page copies and, on its home node, its page directory).
//!
//! A region's name and [`RegionRecord`] live in the bookkeeping store under
//! `region/<name>`; the node that creates it is its home and keeps its page directory
//! (`rust/src/directory.rs`) for its whole life. Regions persist, like files in
//! `/dev/shm`, until they are removed: unmapping or closing does not drop data.
//! Removal deletes the record; every node sees the deletion in the store and kills its
//! local state (mappings zapped, pages freed, later faults get `SIGBUS`). A region whose
//! home goes down is killed the same way on every other node.
//!
//! Coherence (faults, fetches, invalidations) is in `coherence.rs`; the mm side (region
//! fds, VMAs, PTEs) in `region_vm.rs` and `region_shim.c`.

use core::sync::atomic::{AtomicU32, Ordering};

use kernel::{
    new_mutex,
    page::Page,
    prelude::*,
    sync::{global_lock, Arc, Mutex},
    time::Delta,
};

use crate::shared::directory::{Directory, Slot};
use crate::shared::ioctl::{
    SsiRegion, SsiRegionInfo, SsiRegionList, SSI_REGION_LIST_LEN, SSI_REGION_NAME_LEN,
    SSI_REGION_STATE_ACTIVE, SSI_REGION_STATE_DEAD, SSI_REGION_STATE_REMOTE, SSI_REGION_WRITE,
};
use crate::shared::membership::PeerState;
use crate::shared::region::{self, RegionError, RegionRecord, RECORD_LEN};
use crate::shared::wire::{Message, MAX_KEY};
use crate::{kvstore, nodes, region_file, transmit};

/// Attempts at sending a `RegionGone` to one node, `GONE_SEND_PAUSE_MS` apart: a node
/// left without it keeps the region for good, and a process that ends may remove
/// hundreds of regions at once, which fill the send queue for a while (receivers are
/// slow to drain it under emulation).
const GONE_SEND_TRIES: u32 = 1000;
const GONE_SEND_PAUSE_MS: i64 = 5;

/// A page this node holds a copy of.
pub(crate) struct Copy {
    /// The contents (mapped into the region's VMAs by pfn).
    pub(crate) page: Page,
    /// Mapped writable: this node is the page's only holder.
    pub(crate) writable: bool,
    /// This node holds the authoritative contents (as far as it knows).
    pub(crate) owner: bool,
    /// Given up to a plan in flight (see `coherence.rs`): unmapped, and mapped again
    /// only once the directory grants it; kept meanwhile because it may be the only
    /// current copy if that plan is aborted.
    pub(crate) revoked: Option<Revocation>,
    /// The only copy anywhere (the directory's exclusive owner): a write upgrades it
    /// here, with no request (see `directory.rs` on migratory pages).
    pub(crate) alone: bool,
    /// A migratory page this node took by reading it: its home wants to hear of the
    /// first write (`PageWritten`).
    pub(crate) watched: bool,
}

/// Who revoked a copy: node `by`'s plan, with `tag` (0: the home's own copy, revoked
/// while it answered `by`'s request).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Revocation {
    pub(crate) by: u16,
    pub(crate) tag: u32,
}

impl Copy {
    /// Usable for this access without asking the directory.
    pub(crate) fn serves(&self, write: bool) -> bool {
        self.revoked.is_none() && (!write || self.writable)
    }

    /// Read-only, but the only copy: a write upgrades it here.
    pub(crate) fn upgrades_alone(&self) -> bool {
        self.revoked.is_none() && self.alone && !self.writable
    }
}

/// What a region holds on this node, under its lock.
pub(crate) struct Holdings {
    /// Killed (removed, or its home went down): faults get `SIGBUS`.
    pub(crate) dead: bool,
    /// Copies, by page index.
    copies: KVVec<Option<Copy>>,
    /// Pages with a copy here.
    pub(crate) resident: u64,
    /// Pages owned here.
    pub(crate) owned: u64,
    /// The page directory (home node only).
    pub(crate) directory: Option<Directory<KVVec<Slot>>>,
    /// The anonymous inode that every VMA of the region here maps, while there is one
    /// (it pins the module: a region without mappings must not).
    backing: Option<region_file::Backing>,
    /// VMAs mapping the region here.
    pub(crate) mappings: u32,
}

impl Holdings {
    /// Zaps the PTEs of `page` in every VMA of the region here (TLBs flushed on return).
    pub(crate) fn zap(&self, page: u32) {
        if let Some(b) = &self.backing {
            b.zap(page);
        }
    }

    /// Zaps every page.
    fn zap_all(&self) {
        if let Some(b) = &self.backing {
            b.zap_all();
        }
    }

    /// A new VMA maps the region: returns the file it must use as `vm_file`.
    pub(crate) fn map(&mut self) -> Result<&region_file::Backing> {
        if self.backing.is_none() {
            self.backing = Some(region_file::Backing::new()?);
        }
        self.mappings += 1;
        self.backing.as_ref().ok_or(ENOMEM)
    }

    /// A VMA was duplicated or split (the region is mapped already).
    pub(crate) fn map_again(&mut self) {
        self.mappings += 1;
    }

    /// A VMA went away; with the last one, returns the backing file to release (after
    /// the lock is dropped).
    pub(crate) fn unmap(&mut self) -> Option<region_file::Backing> {
        self.mappings = self.mappings.saturating_sub(1);
        if self.mappings == 0 {
            self.backing.take()
        } else {
            None
        }
    }

    /// The copy of `page`, if this node holds one.
    pub(crate) fn copy(&self, page: u32) -> Option<&Copy> {
        self.copies.get(page as usize).and_then(|c| c.as_ref())
    }

    /// The copy of `page`, mutable.
    pub(crate) fn copy_mut(&mut self, page: u32) -> Option<&mut Copy> {
        self.copies.get_mut(page as usize).and_then(|c| c.as_mut())
    }

    /// Stores a copy of `page` (the caller zapped the PTEs of any copy it replaces).
    pub(crate) fn store(&mut self, page: u32, copy: Copy) {
        let owner = copy.owner;
        self.take(page);
        if let Some(slot) = self.copies.get_mut(page as usize) {
            *slot = Some(copy);
            self.resident += 1;
            if owner {
                self.owned += 1;
            }
        }
    }

    /// Removes the copy of `page` (the caller zaps its PTEs before dropping it).
    pub(crate) fn take(&mut self, page: u32) -> Option<Copy> {
        let c = self.copies.get_mut(page as usize)?.take()?;
        self.resident -= 1;
        if c.owner {
            self.owned -= 1;
        }
        Some(c)
    }

    /// Frees the copy of `page` if it is still the one `by` revoked (its PTEs went when
    /// it was revoked; zapped again all the same).
    pub(crate) fn free_revoked(&mut self, page: u32, by: Revocation) {
        if self.copy(page).is_some_and(|c| c.revoked == Some(by)) {
            self.zap(page);
            drop(self.take(page));
        }
    }

    /// Marks the copy of `page` as owned (or not) here.
    pub(crate) fn set_owner(&mut self, page: u32, owner: bool) {
        if let Some(c) = self.copies.get_mut(page as usize).and_then(|c| c.as_mut()) {
            if c.owner != owner {
                c.owner = owner;
                if owner {
                    self.owned += 1;
                } else {
                    self.owned -= 1;
                }
            }
        }
    }

    fn clear(&mut self) {
        self.copies.iter_mut().for_each(|c| *c = None);
        self.resident = 0;
        self.owned = 0;
        self.directory = None;
    }
}

/// This node's counters of a region (32-bit: 64-bit atomics are library calls on ARMv6,
/// which the kernel does not have).
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) read_faults: AtomicU32,
    pub(crate) write_faults: AtomicU32,
    pub(crate) fetched: AtomicU32,
    pub(crate) invalidations: AtomicU32,
    pub(crate) lost: AtomicU32,
    pub(crate) sigbus: AtomicU32,
    /// The last node whose going down lost pages of the region, plus one (0: none).
    pub(crate) lost_with: AtomicU32,
}

/// Adds one to a counter.
pub(crate) fn bump(c: &AtomicU32) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A region in use on this node.
#[pin_data]
pub(crate) struct Region {
    /// What the bookkeeping store says about it.
    pub(crate) record: RegionRecord,
    name: [u8; SSI_REGION_NAME_LEN],
    name_len: usize,
    #[pin]
    pub(crate) holdings: Mutex<Holdings>,
    /// Held by a fault of this node for the whole exchange with other nodes (see
    /// `coherence.rs`); never taken by message handlers.
    #[pin]
    pub(crate) faulting: Mutex<()>,
    pub(crate) stats: Stats,
}

impl Region {
    fn new(name: &[u8], record: RegionRecord, home: bool) -> Result<Arc<Self>> {
        let pages = record.pages as usize;
        // Charged to the creating or opening task's memory cgroup.
        let mut copies = KVVec::with_capacity(pages, GFP_KERNEL_ACCOUNT)?;
        for _ in 0..pages {
            copies.push(None, GFP_KERNEL_ACCOUNT)?;
        }
        let directory = if home {
            let mut slots = KVVec::with_capacity(pages, GFP_KERNEL_ACCOUNT)?;
            slots.resize(pages, None, GFP_KERNEL_ACCOUNT)?;
            Some(Directory::new(slots))
        } else {
            None
        };
        let mut n = [0u8; SSI_REGION_NAME_LEN];
        n[..name.len()].copy_from_slice(name);
        // Computed outside the initialiser, where `name` means the field.
        let name_len = name.len();
        Arc::pin_init(
            try_pin_init!(Self {
                record,
                name: n,
                name_len,
                holdings <- new_mutex!(Holdings {
                    dead: false,
                    copies,
                    resident: 0,
                    owned: 0,
                    directory,
                    backing: None,
                    mappings: 0,
                }),
                faulting <- new_mutex!(()),
                stats: Stats::default(),
            }),
            GFP_KERNEL,
        )
    }

    /// The region's name.
    pub(crate) fn name(&self) -> &[u8] {
        &self.name[..self.name_len]
    }

    /// The name, for logs.
    pub(crate) fn name_str(&self) -> &str {
        core::str::from_utf8(self.name()).unwrap_or("?")
    }

    /// Whether it holds private memory of a distributed process (`process_memory.rs`).
    pub(crate) fn is_private(&self) -> bool {
        region::is_private_name(self.name())
    }

    /// The cluster-wide id of this incarnation of the region.
    pub(crate) fn generation(&self) -> u64 {
        self.record.generation
    }

    /// Kills the region here: later faults get `SIGBUS`, every mapping of it is
    /// zapped and its pages are freed.
    pub(crate) fn kill(&self, why: &str) {
        let mut h = self.holdings.lock();
        if h.dead {
            return;
        }
        h.dead = true;
        // Zap before the pages go.
        h.zap_all();
        h.clear();
        // A process's own memory goes with it, often hundreds of regions at once:
        // that is no news, its loss is.
        if self.is_private() && why == GONE {
            pr_debug!("region {}: {}\n", self.name_str(), why);
        } else {
            pr_info!("region {}: {}\n", self.name_str(), why);
        }
    }

    fn info(&self) -> SsiRegionInfo {
        let h = self.holdings.lock();
        let load = |c: &AtomicU32| u64::from(c.load(Ordering::Relaxed));
        SsiRegionInfo {
            region: to_abi(self.name(), &self.record),
            resident: h.resident,
            owned: h.owned,
            read_faults: load(&self.stats.read_faults),
            write_faults: load(&self.stats.write_faults),
            fetched: load(&self.stats.fetched),
            invalidations: load(&self.stats.invalidations),
            lost: load(&self.stats.lost),
            sigbus: load(&self.stats.sigbus),
            mappings: h.mappings,
            state: if h.dead {
                SSI_REGION_STATE_DEAD
            } else {
                SSI_REGION_STATE_ACTIVE
            },
        }
    }
}

/// Most regions in use on one node at once (a distributed process uses one per
/// private writable mapping, and one per anonymous mapping it makes afterwards).
const MAX_REGIONS: usize = 1024;

global_lock! {
    // SAFETY: `init` runs in module init before any frame or ioctl can arrive.
    unsafe(uninit) static REGIONS: Mutex<KVec<Arc<Region>>> = KVec::new();
}

/// Initialises the table. Called once from module init.
pub(crate) fn init() {
    // SAFETY: Called exactly once, from the module initialiser, before any other use.
    unsafe { REGIONS.init() };
}

/// The region in use here with this generation.
pub(crate) fn by_generation(generation: u64) -> Option<Arc<Region>> {
    REGIONS
        .lock()
        .iter()
        .find(|r| r.generation() == generation)
        .cloned()
}

/// Every region in use here (a snapshot).
pub(crate) fn all() -> KVec<Arc<Region>> {
    let mut v = KVec::new();
    for r in REGIONS.lock().iter() {
        if v.push(r.clone(), GFP_KERNEL).is_err() {
            break;
        }
    }
    v
}

fn region_errno(e: RegionError) -> Error {
    match e {
        RegionError::BadName | RegionError::BadSize | RegionError::BadMode => EINVAL,
        RegionError::BadRecord => EIO,
    }
}

/// The name of an ioctl argument, checked.
fn name_of(req: &SsiRegion) -> Result<&[u8]> {
    let n = req.name_len as usize;
    if n > req.name.len() {
        return Err(EINVAL);
    }
    let name = &req.name[..n];
    region::validate_name(name).map_err(region_errno)?;
    Ok(name)
}

fn to_abi(name: &[u8], r: &RegionRecord) -> SsiRegion {
    let mut out = SsiRegion::default();
    out.name[..name.len()].copy_from_slice(name);
    // At most SSI_REGION_NAME_LEN.
    out.name_len = name.len() as u32;
    out.size = u64::from(r.pages) * 4096;
    out.mode = u32::from(r.mode);
    out.home = u32::from(r.home);
    out.uid = r.uid;
    out.gid = r.gid;
    out.generation = r.generation;
    out
}

/// The bookkeeping key of region `name` (and its length).
fn key_of(name: &[u8]) -> Result<([u8; MAX_KEY], usize)> {
    let mut key = [0u8; MAX_KEY];
    let n = region::key(name, &mut key).map_err(region_errno)?;
    Ok((key, n))
}

/// The region name in a bookkeeping key, if it is a well-formed region key (any admin
/// can write any key: listings and hooks do not trust them). Private-memory regions
/// have no key, so a key naming one is not about one.
fn name_in_key(key: &[u8]) -> Option<&[u8]> {
    key.strip_prefix(region::KEY_PREFIX)
        .filter(|name| region::validate_name(name).is_ok())
}

/// Looks up the record of region `name` in the bookkeeping store.
fn lookup(name: &[u8]) -> Result<RegionRecord> {
    let (key, n) = key_of(name)?;
    let mut value = [0u8; RECORD_LEN];
    let (len, _) = kvstore::get(&key[..n], &mut value)?;
    RegionRecord::decode(&value[..len]).map_err(region_errno)
}

/// Adds `region` to the table. A region of the same name already there is a stale one
/// (the store has a newer generation) and is replaced and killed, unless `exclusive`
/// (a creation), which fails with `EEXIST` instead.
fn insert(region: Arc<Region>, exclusive: bool) -> Result<Arc<Region>> {
    let stale = {
        let mut t = REGIONS.lock();
        if let Some(r) = t.iter().find(|r| r.generation() == region.generation()) {
            return Ok(r.clone());
        }
        let same_name = t.iter().position(|r| r.name() == region.name());
        if exclusive && same_name.is_some() {
            return Err(EEXIST);
        }
        let stale = same_name.map(|i| t.remove(i));
        if t.len() >= MAX_REGIONS {
            return Err(ENOSPC);
        }
        t.push(region.clone(), GFP_KERNEL)?;
        stale
    };
    if let Some(Ok(s)) = stale {
        s.kill("replaced by a new region of the same name");
    }
    Ok(region)
}

/// A region the caller may now map, and whether writably: what its new file refers to.
pub(crate) struct Opened {
    pub(crate) region: Arc<Region>,
    pub(crate) writable: bool,
}

/// `SSI_IOC_REGION_CREATE`: creates a region homed here, to open read-write.
pub(crate) fn create(req: &mut SsiRegion) -> Result<Opened> {
    let name = name_of(req)?;
    // Shifts, not u64 division (a panicking builtin on 32-bit ARM).
    if req.flags != 0 || req.size == 0 || req.size & 4095 != 0 {
        return Err(EINVAL);
    }
    let pages = u32::try_from(req.size >> 12).map_err(|_| EINVAL)?;
    let mode = u16::try_from(req.mode).map_err(|_| EINVAL)?;
    let (uid, gid) = region_file::current_ids();
    let generation =
        (u64::from(crate::random::random_u32()) << 32 | u64::from(crate::random::random_u32())) | 1;
    let (self_id, _) = nodes::self_and_leader();
    let record =
        RegionRecord::new(pages, mode, self_id, uid, gid, generation).map_err(region_errno)?;
    if lookup(name).is_ok() {
        return Err(EEXIST);
    }
    // The directory exists before the name does: a node that opens the region as soon
    // as the record appears finds its home ready.
    let region = insert(Region::new(name, record, true)?, true)?;
    let (key, n) = key_of(name)?;
    if let Err(e) = kvstore::create(&key[..n], &record.encode()) {
        // Interrupted or timed out, the leader may still have recorded it: ours if the
        // store now has our generation.
        if lookup(name).map(|r| r.generation) != Ok(generation) {
            forget(&region);
            return Err(e);
        }
    }
    pr_info!(
        "region {} created here: {} pages, mode {:o}, uid {}\n",
        region.name_str(),
        pages,
        mode,
        uid
    );
    *req = to_abi(name, &record);
    Ok(Opened {
        region,
        writable: true,
    })
}

/// `SSI_IOC_REGION_OPEN`: opens an existing region, as the caller may.
pub(crate) fn open(req: &mut SsiRegion) -> Result<Opened> {
    let name = name_of(req)?;
    if req.flags & !SSI_REGION_WRITE != 0 {
        return Err(EINVAL);
    }
    let write = req.flags & SSI_REGION_WRITE != 0;
    let record = lookup(name)?;
    let (uid, gid) = region_file::current_ids();
    let in_group = region_file::current_in_group(record.gid);
    let groups = [record.gid];
    let groups = if in_group { &groups[..] } else { &[][..] };
    if !record.may_open(uid, gid, groups, write, crate::caller::may_administer()) {
        return Err(EACCES);
    }
    let (self_id, _) = nodes::self_and_leader();
    let region = match by_generation(record.generation) {
        Some(r) if r.holdings.lock().dead => {
            // Its home went down: the directory (and pages only it knew) are gone.
            return Err(crate::errno::eidrm());
        }
        Some(r) => r,
        None if record.home == self_id => {
            // Created by an earlier load of ssi_core here: its directory is gone.
            pr_warn!(
                "region {}: its directory was lost when this node's ssi_core was reloaded\n",
                core::str::from_utf8(name).unwrap_or("?")
            );
            return Err(crate::errno::eidrm());
        }
        None => {
            if !nodes::is_up(u32::from(record.home)) {
                return Err(crate::errno::ehostdown());
            }
            insert(Region::new(name, record, false)?, false)?
        }
    };
    *req = to_abi(name, &record);
    Ok(Opened {
        region,
        writable: write,
    })
}

/// A region to hold private memory of a distributed process homed here (`pages`
/// pages, owned by the calling task's ids, mode 0: no one opens it through the region
/// ioctls). The kernel maps it for the process with [`map_private`] and removes it when
/// the home's last mapping goes.
///
/// It has no bookkeeping key: the nodes that map it learn its size from the process's
/// snapshot, and its removal from the home's `RegionGone` ([`remove_private`]). Deleted
/// keys keep their slot in the store, so a key per mapping would fill the store after a
/// few dozen distributed processes.
pub(crate) fn create_private(pages: u32) -> Result<Arc<Region>> {
    let (uid, gid) = region_file::current_ids();
    let generation =
        (u64::from(crate::random::random_u32()) << 32 | u64::from(crate::random::random_u32())) | 1;
    let (self_id, _) = nodes::self_and_leader();
    let record =
        RegionRecord::new(pages, 0, self_id, uid, gid, generation).map_err(region_errno)?;
    let mut name = [0u8; region::PRIVATE_NAME_LEN];
    let len = region::private_name(self_id, generation, &mut name);
    insert(Region::new(&name[..len], record, true)?, true)
}

/// The private-memory region `generation` of `pages` pages homed on `home`, for the
/// kernel to map into a process that runs threads of its owner (no permission check:
/// the caller decided; the size comes from the process's snapshot).
pub(crate) fn open_private(home: u16, generation: u64, pages: u32) -> Result<Arc<Region>> {
    if let Some(r) = by_generation(generation) {
        return if r.holdings.lock().dead {
            Err(crate::errno::eidrm())
        } else if r.record.pages != pages || r.record.home != home {
            Err(EINVAL)
        } else {
            Ok(r)
        };
    }
    let (self_id, _) = nodes::self_and_leader();
    if home == self_id {
        return Err(crate::errno::eidrm());
    }
    if !nodes::is_up(u32::from(home)) {
        return Err(crate::errno::ehostdown());
    }
    let (uid, gid) = region_file::current_ids();
    let record = RegionRecord::new(pages, 0, home, uid, gid, generation).map_err(region_errno)?;
    let mut name = [0u8; region::PRIVATE_NAME_LEN];
    let len = region::private_name(home, generation, &mut name);
    insert(Region::new(&name[..len], record, false)?, false)
}

/// Removes private-memory region `region` (homed here) cluster-wide: its home's last
/// mapping went. The other nodes are told with a `RegionGone` each (a full send queue
/// is retried; a node that is down or unlinked dropped its state already).
pub(crate) fn remove_private(region: &Arc<Region>) {
    forget(region);
    let msg = Message::RegionGone {
        region: region.generation(),
    };
    for (node, state) in nodes::linked_peers().iter() {
        if *state != PeerState::Up {
            continue;
        }
        if transmit::send_retrying(
            *node,
            &msg,
            GONE_SEND_TRIES,
            Delta::from_millis(GONE_SEND_PAUSE_MS),
        )
        .is_err()
        {
            pr_warn!(
                "region {}: node {} was not told that it is gone\n",
                region.name_str(),
                node
            );
        }
    }
}

/// A `RegionGone` from `node`: believed only from the region's home, for a
/// private-memory region.
pub(crate) fn on_private_gone(node: u16, generation: u64) {
    match by_generation(generation) {
        Some(r) if r.is_private() && r.record.home == node => forget(&r),
        Some(_) => pr_warn!(
            "node {}: RegionGone for region {:x}, which is not its private memory: ignored\n",
            node,
            generation
        ),
        None => {}
    }
}

/// `SSI_IOC_REGION_REMOVE`: removes region `name` cluster-wide (owner or admin).
pub(crate) fn remove(req: &SsiRegion) -> Result {
    let name = name_of(req)?;
    let record = lookup(name)?;
    let (uid, _) = region_file::current_ids();
    if uid != record.uid && !crate::caller::may_administer() {
        return Err(EPERM);
    }
    let (key, n) = key_of(name)?;
    // Every node (this one included) kills its state when the deletion reaches it.
    kvstore::put(&key[..n], &[])?;
    Ok(())
}

/// Why a removed region dies.
const GONE: &str = "removed";

/// Drops `region` from the table and kills it.
fn forget(region: &Arc<Region>) {
    let found = {
        let mut t = REGIONS.lock();
        t.iter()
            .position(|r| Arc::ptr_eq(r, region))
            .map(|i| t.remove(i))
    };
    if let Some(Ok(r)) = found {
        r.kill(GONE);
    }
}

/// A bookkeeping key changed (on every node, in version order): a removed or
/// re-created region kills its local state.
pub(crate) fn on_kv_change(key: &[u8], value: &[u8]) {
    let Some(name) = name_in_key(key) else {
        return;
    };
    let generation = RegionRecord::decode(value).ok().map(|r| r.generation);
    let stale = REGIONS
        .lock()
        .iter()
        .find(|r| r.name() == name && Some(r.generation()) != generation)
        .cloned();
    if let Some(r) = stale {
        forget(&r);
    }
}

/// The node `id` went down: regions homed there die here.
pub(crate) fn home_lost(id: u16) {
    for r in all().iter() {
        if r.record.home == id {
            r.kill("its home node went down: region lost");
        }
    }
}

/// Frees every region (module exit: no fd or mapping is left, they pin the module).
pub(crate) fn clear() {
    let regions = core::mem::take(&mut *REGIONS.lock());
    for r in regions.iter() {
        r.kill("ssi_core unloading");
    }
}

/// `SSI_IOC_REGIONS`: the cluster's regions with this node's counters.
pub(crate) fn list(out: &mut SsiRegionList) {
    let mut count = 0usize;
    let mut more = 0u32;
    kvstore::for_each(|key, value, _| {
        let (Some(name), Ok(record)) = (name_in_key(key), RegionRecord::decode(value)) else {
            return;
        };
        if count >= SSI_REGION_LIST_LEN {
            more += 1;
            return;
        }
        out.regions[count] = SsiRegionInfo {
            region: to_abi(name, &record),
            state: SSI_REGION_STATE_REMOTE,
            ..SsiRegionInfo::default()
        };
        count += 1;
    });
    // Counters of the regions in use here (outside the store's lock).
    for info in out.regions[..count].iter_mut() {
        if let Some(r) = by_generation(info.region.generation) {
            *info = r.info();
        }
    }
    // Private-memory regions are not in the store: those in use here.
    for r in all().iter().filter(|r| r.is_private()) {
        if count >= SSI_REGION_LIST_LEN {
            more += 1;
            continue;
        }
        out.regions[count] = r.info();
        count += 1;
    }
    // At most SSI_REGION_LIST_LEN.
    out.count = count as u32;
    out.more = more;
}

/// Calls `f` with the info of every region the store records (for `/proc/ssi/regions`).
pub(crate) fn for_each_info(mut f: impl FnMut(&SsiRegionInfo)) -> Result {
    let mut all = KBox::init(pin_init::zeroed::<SsiRegionList>(), GFP_KERNEL)?;
    list(&mut all);
    for info in all.regions[..all.count as usize].iter() {
        f(info);
    }
    Ok(())
}
