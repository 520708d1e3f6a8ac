// SPDX-License-Identifier: GPL-2.0

//! One address space for a distributed process, also for memory it maps after its
//! threads spread.
//!
//! A process whose threads run on several nodes has one address space per node that
//! runs some of them (the home's, and one per moved thread elsewhere), which must look
//! alike wherever the program can tell: a pointer one thread gets from `malloc` must
//! work in every other. `distributed.c` sends a distributed process's anonymous `mmap`
//! calls here, and its `munmap` calls of shared memory once they are done locally.
//!
//! A private anonymous mapping (`rust/src/address_space.rs` says which) becomes a
//! private-memory region homed at the process's home, as the memory the process had
//! when it became distributed: the home creates it and maps it, choosing the address
//! in its own address space (the one every thread's layout started from), then has
//! every other address space of the process map it there (`SpaceApply`, to every node
//! that is up; each maps it into each address space of the process it holds, from a
//! work item that uses that address space), and only then does the caller map it and
//! `mmap` return. A caller elsewhere asks the home (`SpaceChange`); the home works from
//! a work item that uses its address space. A mapping that cannot go everywhere (an
//! address space that has something of its own there) is undone everywhere and `mmap`
//! fails with `ENOMEM`. `munmap` of shared memory goes from every address space the
//! same way (only the region mappings of the range, elsewhere).
//!
//! A private file mapping is made alike too (`rust/src/address_space.rs` says how): one
//! that is not writable by path, the home opening the file the caller named (its path,
//! size and modification time: [`FileName`]) and mapping it, then every other node
//! (`SpaceMapFile`, `SpaceApplyFile`), then the caller with its own file; a writable one
//! as a private-memory region that the caller fills with the file's contents.
//!
//! Mirrors (the mapping in the address spaces of other threads) are readable and
//! writable whatever the caller asked for. An `mprotect` that makes shared memory
//! readable or writable (glibc maps thread stacks and malloc arenas `PROT_NONE` and
//! opens them with `mprotect`, in the thread that uses them) opens it in every other
//! address space too, before the caller is back in user mode ([`opened`], told by
//! `ssi_core` from the region mapping's `mprotect` callback): the reservations a
//! process had when it became distributed are shared memory mapped `PROT_NONE`
//! everywhere, and what one thread opens there its siblings elsewhere can reach. An
//! `mprotect` that takes access away stays the caller's.
//!
//! A thread that moves takes the layout with it, and its destination holds no address
//! space of the process until it has built one: the home keeps changes and hops apart
//! (`rust/src/space_gate.rs`). A change waits while a hop of its process is in flight
//! (from before the moving thread takes the layout until the destination holds the new
//! address space: [`hop_begin`] and [`hop_end`], called by `leave.rs` on the node the
//! thread leaves), and a hop waits for the changes under way.

use core::ffi::c_long;

use kernel::{
    bindings,
    fs::File,
    prelude::*,
    sync::aref::ARef,
    time::{delay::fsleep, msecs_to_jiffies, Delta},
};

use crate::core_client::{self, private_memory};
use crate::ffi::{self, FileName, Space};
use crate::link::{self, Reply, Wait};
use crate::shared::address_space::{
    file_mapping, shared_mapping, unmap_range, FileKind, FileMapping, Placement, SharedMapping,
    MAX_PAGES, PROT_EXEC, PROT_READ, PROT_WRITE,
};
use crate::shared::migrate_wire::{
    MappedFile, MigMsg, SpaceAnswer, SpaceApply, SpaceChange, MAX_PATH, SPACE_MAP, SPACE_OPEN,
    SPACE_UNMAP,
};
use crate::shared::space_gate::{Admit, SpaceGates};
use crate::{clock, engine, errno};

/// `SSI_SPACE_LOCAL` of `shim.h`: the mapping stays this node's.
const LOCAL: c_long = 1;
/// How long the home may take for a change (it waits for every node in turn).
const CHANGE_TIMEOUT_MS: u32 = 20_000;
/// How long one node may take to apply a change.
const APPLY_TIMEOUT_MS: u32 = 5000;
/// Node ids are below this.
const MAX_NODES: u32 = 64;
/// Highest user address (x86_64 and 32-bit ARM both fit).
const USER_LIMIT: u64 = 1 << 47;

const RW: u32 = PROT_READ | PROT_WRITE;
/// How long a change waits for the hops of its process before it goes on anyway
/// (logged: the hop's destination may then lack it).
const CHANGE_GATE_MS: u64 = 60_000;
/// How long a hop waits for the changes under way before it fails (try again).
const HOP_GATE_MS: u64 = 10_000;
/// A hop in flight longer than this is forgotten (its source never said it ended):
/// longer than any hop may take (`leave.rs`: 10 s to freeze, 30 s to be taken, 60 s
/// to run once committed).
const HOP_MAX_MS: u64 = 120_000;

/// Waits (at most `max_ms`) on the home's gates until `step` gives an answer; `None`
/// when the time is up. Signals do not end the wait (a sibling being parked has one
/// pending, and its change must finish first), a fatal one does (`EINTR`).
fn wait_gates<T>(
    max_ms: u64,
    mut step: impl FnMut(&mut SpaceGates) -> Option<T>,
) -> Result<Option<T>> {
    let e = engine();
    let start = clock::now_ms();
    let mut g = e.space_gates.lock();
    loop {
        let now = clock::now_ms();
        g.expire(now, HOP_MAX_MS, core_client::node_up);
        if let Some(answer) = step(&mut g) {
            return Ok(Some(answer));
        }
        if now - start > max_ms {
            return Ok(None);
        }
        if ffi::fatal_signal_pending() {
            return Err(EINTR);
        }
        if ffi::signal_pending() {
            drop(g);
            fsleep(Delta::from_millis(2));
            g = e.space_gates.lock();
            continue;
        }
        let _ = e
            .gates_changed
            .wait_interruptible_timeout(&mut g, msecs_to_jiffies(10));
    }
}

/// A change of a distributed process's address space under way at its home: admitted
/// by the gate (no hop of the process in flight), ended when dropped.
struct ChangeGate {
    process: u64,
    tracked: bool,
}

impl ChangeGate {
    /// Waits until a change of `process` may go on (bounded: then it goes on anyway).
    fn begin(process: u64) -> Result<Self> {
        let admitted = wait_gates(CHANGE_GATE_MS, |g| match g.begin_change(process) {
            Admit::Yes => Some(true),
            Admit::Full => Some(false),
            Admit::Wait => None,
        })?;
        let tracked = match admitted {
            Some(tracked) => tracked,
            None => {
                pr_warn!(
                    "process {:x}: a change of its memory map waited {} s for a thread's move; it goes on\n",
                    process,
                    (CHANGE_GATE_MS / 1000) as u32
                );
                false
            }
        };
        Ok(Self { process, tracked })
    }
}

impl Drop for ChangeGate {
    fn drop(&mut self) {
        if self.tracked {
            let e = engine();
            e.space_gates.lock().end_change(self.process);
            e.gates_changed.notify_all();
        }
    }
}

/// Home: hop `hop` of `node` moves a thread of `process` away; it may take the layout
/// once no change of the address space is under way, and changes wait until
/// [`hop_end_here`]. `EAGAIN` if the changes did not end in time.
fn hop_begin_here(process: u64, node: u32, hop: u64) -> Result {
    let e = engine();
    if e.space_gates.lock().want_hop(process) == Admit::Full {
        return Err(EAGAIN);
    }
    let begun = wait_gates(HOP_GATE_MS, |g| {
        (g.begin_hop(process, node, hop, clock::now_ms()) == Admit::Yes).then_some(())
    });
    if !matches!(begun, Ok(Some(()))) {
        e.space_gates.lock().give_up_hop(process);
        e.gates_changed.notify_all();
        return Err(match begun {
            Err(err) => err,
            _ => EAGAIN,
        });
    }
    Ok(())
}

/// Home: the hop is over (see [`hop_begin_here`]).
fn hop_end_here(process: u64, node: u32, hop: u64) {
    let e = engine();
    e.space_gates.lock().end_hop(process, node, hop);
    e.gates_changed.notify_all();
}

/// On the node a thread of `process` (homed on `home`) leaves by hop `hop`, before it
/// takes the layout: waits until the home lets it (no change of the address space
/// under way; changes wait from now until [`hop_end`]).
pub(crate) fn hop_begin(process: u64, home: u32, hop: u64) -> Result {
    let me = engine().node;
    if home == me {
        return hop_begin_here(process, me, hop);
    }
    let msg = MigMsg::SpaceGate {
        process,
        hop,
        begin: true,
    };
    let mut resp = [0u8; 8];
    link::call(
        home,
        &msg,
        &mut resp,
        HOP_GATE_MS as u32 + 5000,
        Wait::Uninterruptible,
    )
    .map(|_| ())
    .inspect_err(|_| {
        // The home may have let it begin all the same (its answer lost or late): the
        // hop fails here, so it is over there too (ending an unknown hop is harmless).
        hop_end(process, home, hop);
    })
}

/// The hop that [`hop_begin`] let begin is over: the destination holds the thread's
/// address space, or the hop failed. A lost message only delays the process's changes
/// (the home forgets hops of lost nodes and, after `HOP_MAX_MS`, any).
pub(crate) fn hop_end(process: u64, home: u32, hop: u64) {
    let me = engine().node;
    if home == me {
        hop_end_here(process, me, hop);
        return;
    }
    let msg = MigMsg::SpaceGate {
        process,
        hop,
        begin: false,
    };
    if let Err(e) = link::tell(home, &msg, 5000) {
        pr_warn!(
            "process {:x}: its home (node {}) not told that hop {:x} is over ({:?})\n",
            process,
            home,
            hop,
            e
        );
    }
}

/// `SpaceGate` from `node`: a hop of a thread of the distributed process homed here
/// begins there (believed only from a node that runs a thread of it) or is over.
pub(crate) fn on_gate(
    node: u32,
    reply: Reply,
    process: u64,
    hop: u64,
    begin: bool,
) -> Result<Option<usize>> {
    if node == engine().node {
        return Err(EPERM);
    }
    if !begin {
        // Only that node's own hop ends (by then the thread may run elsewhere).
        hop_end_here(process, node, hop);
        return Ok(Some(0));
    }
    // Only a node that runs a thread of the process moves one.
    if !crate::leave::speaks_for(node, process) {
        return Err(EPERM);
    }
    // Waits for the changes under way: not in the transport's context.
    ffi::spawn_held(move || {
        let r = hop_begin_here(process, node, hop);
        reply.send(r.map(|()| &[][..]));
    })?;
    Ok(None)
}

fn to_c(r: Result<usize>) -> c_long {
    match r {
        // A user address: below `c_long::MAX`.
        Ok(at) => at as c_long,
        Err(e) => c_long::from(e.to_errno()),
    }
}

/// `mmap(addr, len, prot, flags)` of anonymous memory by a task of distributed process
/// `process` homed on `home`: the address of a shared mapping, a negative errno, or
/// [`LOCAL`] for memory that stays this node's (the caller maps it as the kernel would).
#[no_mangle]
extern "C" fn ssi_migrate_space_mmap(
    process: u64,
    home: u32,
    addr: usize,
    len: usize,
    prot: usize,
    flags: usize,
) -> c_long {
    // Flags and protections are C ints.
    let m = match shared_mapping(addr as u64, len as u64, prot as u32, flags as u32) {
        None => return LOCAL,
        Some(Err(e)) => return -c_long::from(e),
        Some(Ok(m)) => m,
    };
    to_c(map_shared(process, home, &m).map(|(at, _)| at))
}

/// A shared mapping made by a task of `process` (homed on `home`) in its own address
/// space and every other: where it went, and its region.
fn map_shared(process: u64, home: u32, m: &SharedMapping) -> Result<(usize, u64)> {
    if home == engine().node {
        map_at_home(process, m)
    } else {
        map_from_afar(process, home, m)
    }
}

/// A shared mapping made at home, in the caller's context (the home's address space).
fn map_at_home(process: u64, m: &SharedMapping) -> Result<(usize, u64)> {
    let _gate = ChangeGate::begin(process)?;
    let me = engine().node;
    let len = m.bytes() as usize;
    let generation = private_memory::create(m.pages)?;
    let at = private_memory::map(
        me,
        generation,
        m.pages,
        m.addr as usize,
        len,
        0,
        m.prot,
        m.placement.raw(),
    )
    .inspect_err(|_| {
        let _ = private_memory::remove(generation);
    })?;
    let mirror = Mirror {
        process,
        generation,
        pages: m.pages,
        addr: at as u64,
        len: len as u64,
        placement: m.placement,
    };
    if let Err(e) = mirror.everywhere(None) {
        // Gone from here too (the region goes with its last mapping here).
        let _ = ffi::unmap_alike(at as u64, len as u64);
        return Err(e);
    }
    Ok((at, generation))
}

/// A shared mapping made by a thread on another node than its process's home.
fn map_from_afar(process: u64, home: u32, m: &SharedMapping) -> Result<(usize, u64)> {
    let a = ask_home(
        process,
        home,
        SPACE_MAP,
        m.placement.raw(),
        m.addr,
        m.bytes(),
    )?;
    if a.pages != m.pages || a.addr & 4095 != 0 {
        return Err(errno::eproto());
    }
    // Where the home put it; only there (the caller's own things stay).
    let placement = m.placement.elsewhere();
    match private_memory::map(
        home,
        a.generation,
        a.pages,
        a.addr as usize,
        m.bytes() as usize,
        0,
        m.prot,
        placement.raw(),
    ) {
        Ok(at) => Ok((at, a.generation)),
        Err(e) => Err(undo_from_afar(
            process,
            home,
            a.addr,
            m.bytes(),
            m.placement,
            e,
        )),
    }
}

/// The caller could not map what the home placed at `addr` (and had every other address
/// space map): it goes everywhere else. What the caller's `mmap` fails with: something
/// of the caller's own is where the home found room (`EEXIST`), which is no room as far
/// as the caller can tell.
fn undo_from_afar(
    process: u64,
    home: u32,
    addr: u64,
    len: u64,
    placement: Placement,
    e: Error,
) -> Error {
    let _ = unmap_from_afar(process, home, addr, len);
    if e == EEXIST && placement == Placement::Anywhere {
        ENOMEM
    } else {
        e
    }
}

/// `mmap(addr, len, prot, flags, file, pgoff)` of a file by a task of distributed
/// process `process` homed on `home`: the address of a mapping made alike in every
/// address space of the process, a negative errno, or [`LOCAL`] for a mapping that stays
/// this node's.
#[no_mangle]
extern "C" fn ssi_migrate_space_mmap_file(
    process: u64,
    home: u32,
    file: *mut bindings::file,
    addr: usize,
    len: usize,
    prot: usize,
    flags: usize,
    pgoff: usize,
) -> c_long {
    // Flags and protections are C ints.
    let m = match file_mapping(
        addr as u64,
        len as u64,
        prot as u32,
        flags as u32,
        pgoff as u64,
    ) {
        None => return LOCAL,
        Some(Err(e)) => return -c_long::from(e),
        Some(Ok(m)) => m,
    };
    // SAFETY: `ssi_mmap_pgoff()` holds a reference to the file (`fget`) for the call.
    let file = unsafe { File::from_raw_file(file) };
    // A device's or a pipe's contents are not a file's to copy or to name.
    if !ffi::file_is_regular(file) {
        return LOCAL;
    }
    let r = match m.kind {
        FileKind::Copied => map_copied(process, home, file, &m),
        FileKind::ByPath => match FileName::of(file, MAX_PATH) {
            Ok(name) => map_by_path(process, home, file, &m, &name),
            Err(_) => match m.without_path() {
                Some(copied) => map_copied(process, home, file, &copied),
                None => return LOCAL,
            },
        },
    };
    to_c(r)
}

/// A private file mapping made as a private-memory region that the caller fills with
/// the file's contents (mapped readable and writable for that, then as asked).
fn map_copied(process: u64, home: u32, file: &File, m: &FileMapping) -> Result<usize> {
    let rw = SharedMapping { prot: RW, ..m.map };
    let (at, generation) = map_shared(process, home, &rw)?;
    let len = m.map.bytes();
    let filled = ffi::fill_from_file(file, at as u64, len, m.pgoff).and_then(|()| {
        if m.map.prot == RW {
            return Ok(());
        }
        private_memory::map(
            home,
            generation,
            m.map.pages,
            at,
            len as usize,
            0,
            m.map.prot,
            Placement::Fixed.raw(),
        )
        .map(|_| ())
    });
    if let Err(e) = filled {
        let _ = ffi::unmap_alike(at as u64, len);
        let _ = unmap_elsewhere(process, home, at as u64, len);
        return Err(e);
    }
    Ok(at)
}

/// A private file mapping that is not written, made in every address space of the
/// process from the same file, opened by `name` on each node.
fn map_by_path(
    process: u64,
    home: u32,
    file: &File,
    m: &FileMapping,
    name: &FileName,
) -> Result<usize> {
    let len = m.map.bytes();
    let mirror = |addr| FileMirror {
        process,
        addr,
        len,
        placement: m.map.placement,
        prot: m.map.prot,
        pgoff: m.pgoff,
        name,
    };
    if home == engine().node {
        let _gate = ChangeGate::begin(process)?;
        let at = ffi::map_file(
            file,
            m.map.addr,
            len,
            m.map.prot,
            m.map.placement.raw(),
            m.pgoff,
        )?;
        if let Err(e) = mirror(at).everywhere(None) {
            let _ = ffi::unmap_alike(at, len);
            return Err(e);
        }
        return Ok(at as usize);
    }
    let change = SpaceChange {
        process,
        op: SPACE_MAP,
        placement: m.map.placement.raw(),
        addr: m.map.addr,
        len,
        except: ffi::current_space_token(),
    };
    let a = ask_home_answer(
        home,
        &MigMsg::SpaceMapFile {
            change,
            file: mirror(0).file(),
        },
    )?;
    if a.addr & 4095 != 0 {
        return Err(errno::eproto());
    }
    // Where the home put it; only there (the caller's own things stay).
    let placement = m.map.placement.elsewhere();
    match ffi::map_file(file, a.addr, len, m.map.prot, placement.raw(), m.pgoff) {
        Ok(at) => Ok(at as usize),
        Err(e) => Err(undo_from_afar(
            process,
            home,
            a.addr,
            len,
            m.map.placement,
            e,
        )),
    }
}

/// `munmap(addr, len)` of shared memory by a task of distributed process `process`
/// homed on `home`, done in the caller's address space already: it goes from every
/// other. Returns 0 or a negative errno.
#[no_mangle]
extern "C" fn ssi_migrate_space_munmap(process: u64, home: u32, addr: usize, len: usize) -> c_long {
    let (addr, len) = match unmap_range(addr as u64, len as u64, USER_LIMIT) {
        Ok(r) => r,
        Err(e) => return -c_long::from(e),
    };
    to_c(unmap_elsewhere(process, home, addr, len).map(|()| 0))
}

/// What a task of `process` (homed on `home`) unmapped at `[addr, addr + len)` goes from
/// every other address space of the process.
fn unmap_elsewhere(process: u64, home: u32, addr: u64, len: u64) -> Result {
    if home == engine().node {
        ChangeGate::begin(process).and_then(|_gate| unmap_everywhere(process, addr, len, None))
    } else {
        unmap_from_afar(process, home, addr, len)
    }
}

fn unmap_from_afar(process: u64, home: u32, addr: u64, len: u64) -> Result {
    ask_home(process, home, SPACE_UNMAP, 0, addr, len).map(|_| ())
}

/// Asks the home of `process` for change `op` of its address space (`SpaceChange`, the
/// caller's own address space left out); its answer. Not interruptible: the home goes on
/// with the change whatever the caller does, and it is bounded.
fn ask_home(
    process: u64,
    home: u32,
    op: u32,
    placement: u32,
    addr: u64,
    len: u64,
) -> Result<SpaceAnswer> {
    let msg = MigMsg::SpaceChange(SpaceChange {
        process,
        op,
        placement,
        addr,
        len,
        except: ffi::current_space_token(),
    });
    ask_home_answer(home, &msg)
}

/// Sends a change to the home (see [`ask_home`]); its answer, decoded if it maps.
fn ask_home_answer(home: u32, msg: &MigMsg<'_>) -> Result<SpaceAnswer> {
    let mut resp = [0u8; SpaceAnswer::LEN];
    let n = link::call(
        home,
        msg,
        &mut resp,
        CHANGE_TIMEOUT_MS,
        Wait::Uninterruptible,
    )?;
    match msg {
        MigMsg::SpaceChange(c) if c.op != SPACE_MAP => Ok(SpaceAnswer::default()),
        _ => SpaceAnswer::decode(&resp[..n]).map_err(|_| errno::eproto()),
    }
}

/// The calling task's `mprotect` made `[start, end)` of shared memory readable or
/// writable (told by `ssi_core` on its way back to user mode): the same memory opens in
/// every other address space of its process. A failure is logged: the system call has
/// returned already, and the memory stays closed where it failed.
pub(crate) fn opened(start: usize, end: usize) {
    let Some((process, home)) = ffi::dist_current() else {
        return;
    };
    let (addr, len) = (start as u64, end.saturating_sub(start) as u64);
    if len == 0 {
        return;
    }
    let r = if home == engine().node {
        ChangeGate::begin(process)
            .and_then(|_gate| apply_everywhere(process, SPACE_OPEN, addr, len, None))
    } else {
        ask_home(process, home, SPACE_OPEN, 0, addr, len).map(|_| ())
    };
    if let Err(e) = r {
        pr_warn!(
            "pid {}: memory at {:#x} opened by mprotect could not be opened on every node ({:?})\n",
            ffi::Task::current().pid(),
            addr,
            e
        );
    }
}

/// Makes the shared memory of `[addr, addr + len)` readable and writable in the
/// calling (or used) address space: each region mapping of the range that is not is
/// mapped again over itself, with the same region pages (no contents change).
fn open_regions(home: u32, addr: u64, len: u64) -> Result {
    // Each round opens one mapping; the bound is for safety only.
    for _ in 0..65536 {
        let Some(p) = ffi::closed_region_in(addr, len) else {
            return Ok(());
        };
        private_memory::map(
            home,
            p.region,
            p.region_pages,
            p.start as usize,
            (p.end - p.start) as usize,
            p.pgoff,
            RW,
            Placement::Fixed.raw(),
        )?;
    }
    Err(E2BIG)
}

/// A shared mapping to make in the other address spaces of its process.
struct Mirror {
    process: u64,
    generation: u64,
    pages: u32,
    addr: u64,
    len: u64,
    placement: Placement,
}

impl Mirror {
    /// Maps it on every other node that is up (but not into `except`, a node and the
    /// token of the caller's address space there); undone everywhere if a node fails.
    fn everywhere(&self, except: Option<(u32, u64)>) -> Result {
        let msg = |except| {
            MigMsg::SpaceApply(SpaceApply {
                process: self.process,
                op: SPACE_MAP,
                placement: self.placement.raw(),
                addr: self.addr,
                len: self.len,
                generation: self.generation,
                pages: self.pages,
                except,
            })
        };
        map_everywhere(self.process, self.addr, self.len, &"memory", msg, except)
    }
}

/// Sends `msg` (see [`fan_out`]) that maps `what` at `[addr, addr + len)` in the other
/// address spaces of `process`; if a node fails, says so in the kernel log and undoes the
/// mapping everywhere. Something of a node's own at that address (`EEXIST`) is no room,
/// as far as the caller can tell.
fn map_everywhere<'a>(
    process: u64,
    addr: u64,
    len: u64,
    what: &dyn kernel::fmt::Display,
    msg: impl Fn(u64) -> MigMsg<'a>,
    except: Option<(u32, u64)>,
) -> Result {
    let Err((node, e)) = fan_out(msg, except) else {
        return Ok(());
    };
    pr_warn!(
        "process {:x}: {} at {:#x} could not be mapped on node {} ({:?}); the mapping fails\n",
        process,
        what,
        addr,
        node,
        e
    );
    let _ = unmap_everywhere(process, addr, len, except);
    Err(if e == EEXIST { ENOMEM } else { e })
}

/// A private file mapping to make alike in the other address spaces of its process, by
/// path.
struct FileMirror<'a> {
    process: u64,
    addr: u64,
    len: u64,
    placement: Placement,
    prot: u32,
    pgoff: u64,
    name: &'a FileName,
}

impl<'a> FileMirror<'a> {
    /// What each node opens and maps.
    fn file(&self) -> MappedFile<'a> {
        MappedFile {
            path: self.name.path(),
            size: self.name.size,
            mtime_ns: self.name.mtime_ns,
            pgoff: self.pgoff,
            prot: self.prot,
        }
    }

    /// Maps it on every other node that is up (see [`Mirror::everywhere`]); undone
    /// everywhere if a node fails.
    fn everywhere(&self, except: Option<(u32, u64)>) -> Result {
        let msg = |except| MigMsg::SpaceApplyFile {
            apply: SpaceApply {
                process: self.process,
                op: SPACE_MAP,
                placement: self.placement.raw(),
                addr: self.addr,
                len: self.len,
                generation: 0,
                // At most MAX_PAGES (checked by the caller's side).
                pages: (self.len >> 12) as u32,
                except,
            },
            file: self.file(),
        };
        let path = kernel::str::BStr::from_bytes(self.name.path());
        map_everywhere(self.process, self.addr, self.len, &path, msg, except)
    }
}

/// Opens the file `name` for address space `space` (see [`FileName::open_for`]); says
/// why in the kernel log if it cannot.
fn open_named(name: &FileName, space: &Space, process: u64) -> Result<ARef<File>> {
    name.open_for(space).inspect_err(|e| {
        let path = kernel::str::BStr::from_bytes(name.path());
        if *e == errno::estale() {
            pr_warn!(
                "process {:x}: {} here is not the file its thread mapped (another size or modification time)\n",
                process,
                path
            );
        } else if *e == ENOENT {
            pr_warn!(
                "process {:x}: {}, which its thread mapped, does not exist here\n",
                process,
                path
            );
        } else {
            pr_warn!(
                "process {:x}: {}, which its thread mapped, cannot be opened here (error {})\n",
                process,
                path,
                e.to_errno()
            );
        }
    })
}

/// The region memory of `[addr, addr + len)` goes ([`SPACE_UNMAP`]) or opens
/// ([`SPACE_OPEN`]) on every other node that is up (but not in `except`, see
/// [`Mirror::everywhere`]).
fn apply_everywhere(
    process: u64,
    op: u32,
    addr: u64,
    len: u64,
    except: Option<(u32, u64)>,
) -> Result {
    let msg = |except| {
        MigMsg::SpaceApply(SpaceApply {
            process,
            op,
            placement: 0,
            addr,
            len,
            generation: 0,
            pages: 0,
            except,
        })
    };
    fan_out(msg, except).map_err(|(_, e)| e)
}

/// The region memory of `[addr, addr + len)` goes from every other node that is up
/// (but from `except`).
fn unmap_everywhere(process: u64, addr: u64, len: u64, except: Option<(u32, u64)>) -> Result {
    apply_everywhere(process, SPACE_UNMAP, addr, len, except)
}

/// Sends `msg(except token)` to every other node that is up and waits for each; the
/// first node that failed and why. A node that went down meanwhile does not count (its
/// address spaces of the process are gone with it).
fn fan_out<'a>(
    msg: impl Fn(u64) -> MigMsg<'a>,
    except: Option<(u32, u64)>,
) -> core::result::Result<(), (u32, Error)> {
    let me = engine().node;
    let mut failed = None;
    for node in (0..MAX_NODES).filter(|&n| n != me && core_client::node_up(n)) {
        let token = match except {
            Some((n, token)) if n == node => token,
            _ => 0,
        };
        if let Err(e) = link::tell(node, &msg(token), APPLY_TIMEOUT_MS) {
            if core_client::node_up(node) && failed.is_none() {
                failed = Some((node, e));
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

/// `SpaceChange` from `node`, which runs a thread of the distributed process homed here:
/// changes the home's address space and every other, from a work item; answered then.
/// `None`: answered later.
pub(crate) fn on_change(node: u32, reply: Reply, c: SpaceChange) -> Result<Option<usize>> {
    // Only a node that runs a thread of the process speaks for it.
    if node == engine().node || !crate::leave::speaks_for(node, c.process) {
        return Err(EPERM);
    }
    let placement = Placement::from_raw(c.placement).ok_or(EINVAL)?;
    if c.op == SPACE_MAP {
        let pages = c.len >> 12;
        if c.len == 0 || c.len & 4095 != 0 || pages > u64::from(MAX_PAGES) || c.addr & 4095 != 0 {
            return Err(EINVAL);
        }
    } else {
        // An unmap's range, or an opened one (which `mprotect` took as valid).
        unmap_range(c.addr, c.len, USER_LIMIT).map_err(|_| EINVAL)?;
    }
    ffi::spawn_held(move || answer(reply, change_at_home(node, &c, placement)))?;
    Ok(None)
}

/// Sends the home's answer to a change.
fn answer(reply: Reply, r: Result<SpaceAnswer>) {
    let mut buf = [0u8; SpaceAnswer::LEN];
    match r.and_then(|a| a.encode(&mut buf).map_err(|_| EINVAL)) {
        Ok(n) => reply.send(Ok(&buf[..n])),
        Err(e) => reply.send(Err(e)),
    }
}

/// The checks of a file mapping from another node: a page-aligned range a region could
/// hold, never writable (a file mapped by path is not written).
fn check_file_mapping(addr: u64, len: u64, prot: u32) -> Result {
    if len == 0
        || len & 4095 != 0
        || len >> 12 > u64::from(MAX_PAGES)
        || addr & 4095 != 0
        || prot & !(PROT_READ | PROT_EXEC) != 0
    {
        return Err(EINVAL);
    }
    Ok(())
}

/// `SpaceMapFile` from `node`, which runs a thread of the distributed process homed
/// here: maps the file in the home's address space and every other, from a work item;
/// answered then.
pub(crate) fn on_map_file(
    node: u32,
    reply: Reply,
    c: SpaceChange,
    f: MappedFile<'_>,
) -> Result<Option<usize>> {
    if node == engine().node || !crate::leave::speaks_for(node, c.process) {
        return Err(EPERM);
    }
    let placement = Placement::from_raw(c.placement).ok_or(EINVAL)?;
    check_file_mapping(c.addr, c.len, f.prot)?;
    let name = FileName::received(f.path, f.size, f.mtime_ns)?;
    let (prot, pgoff) = (f.prot, f.pgoff);
    ffi::spawn_held(move || {
        let r = map_file_at_home(node, &c, placement, &name, prot, pgoff);
        answer(reply, r)
    })?;
    Ok(None)
}

/// A work item at the home: the file mapping a thread on `node` asked for.
fn map_file_at_home(
    node: u32,
    c: &SpaceChange,
    placement: Placement,
    name: &FileName,
    prot: u32,
    pgoff: u64,
) -> Result<SpaceAnswer> {
    let _gate = ChangeGate::begin(c.process)?;
    let spaces = Space::of_process(c.process, true)?;
    let home_space = spaces.first().ok_or(ESRCH)?;
    let file = open_named(name, home_space, c.process)?;
    let at =
        home_space.with(|| ffi::map_file(&file, c.addr, c.len, prot, placement.raw(), pgoff))?;
    let mirror = FileMirror {
        process: c.process,
        addr: at,
        len: c.len,
        placement,
        prot,
        pgoff,
        name,
    };
    if let Err(e) = mirror.everywhere(Some((node, c.except))) {
        let _ = home_space.with(|| ffi::unmap_alike(at, c.len));
        return Err(e);
    }
    Ok(SpaceAnswer {
        addr: at,
        generation: 0,
        // At most MAX_PAGES (`check_file_mapping`).
        pages: (c.len >> 12) as u32,
    })
}

/// `SpaceApplyFile` from `node`: believed only from the home of the process, as
/// `SpaceApply`.
pub(crate) fn on_apply_file(
    node: u32,
    reply: Reply,
    a: SpaceApply,
    f: MappedFile<'_>,
) -> Result<Option<usize>> {
    match ffi::dist_home(a.process) {
        None => return Ok(Some(0)),
        Some(home) if home != node || node == engine().node => return Err(EPERM),
        Some(_) => {}
    }
    let placement = Placement::from_raw(a.placement).ok_or(EINVAL)?;
    check_file_mapping(a.addr, a.len, f.prot)?;
    let name = FileName::received(f.path, f.size, f.mtime_ns)?;
    let (prot, pgoff) = (f.prot, f.pgoff);
    ffi::spawn_held(move || {
        let r = apply_file_here(&a, placement, &name, prot, pgoff);
        reply.send(r.map(|()| &[][..]));
    })?;
    Ok(None)
}

/// A work item on a node that holds address spaces of the process: maps the file in
/// each but the caller's, where the home put it (opened once, as a task of the process
/// would).
fn apply_file_here(
    a: &SpaceApply,
    placement: Placement,
    name: &FileName,
    prot: u32,
    pgoff: u64,
) -> Result {
    let how = placement.elsewhere();
    let mut file = None;
    let mut first_error = Ok(());
    for space in Space::of_process(a.process, false)?.iter() {
        if space.token() == a.except {
            continue;
        }
        let file = match &file {
            Some(f) => f,
            None => file.insert(open_named(name, space, a.process)?),
        };
        let r = space.with(|| ffi::map_file(file, a.addr, a.len, prot, how.raw(), pgoff));
        if first_error.is_ok() {
            first_error = r.map(|_| ());
        }
    }
    first_error
}

/// A work item at the home: the change a thread on `node` asked for.
fn change_at_home(node: u32, c: &SpaceChange, placement: Placement) -> Result<SpaceAnswer> {
    let _gate = ChangeGate::begin(c.process)?;
    let me = engine().node;
    let spaces = Space::of_process(c.process, true)?;
    let home_space = spaces.first().ok_or(ESRCH)?;
    let except = Some((node, c.except));
    if c.op == SPACE_UNMAP {
        home_space.with(|| ffi::unmap_alike(c.addr, c.len))?;
        unmap_everywhere(c.process, c.addr, c.len, except)?;
        return Ok(SpaceAnswer::default());
    }
    if c.op == SPACE_OPEN {
        home_space.with(|| open_regions(me, c.addr, c.len))?;
        apply_everywhere(c.process, SPACE_OPEN, c.addr, c.len, except)?;
        return Ok(SpaceAnswer::default());
    }
    // At most MAX_PAGES, checked by `on_change`.
    let pages = (c.len >> 12) as u32;
    let generation = private_memory::create(pages)?;
    let at = home_space
        .with(|| {
            private_memory::map(
                me,
                generation,
                pages,
                c.addr as usize,
                c.len as usize,
                0,
                RW,
                placement.raw(),
            )
        })
        .inspect_err(|_| {
            let _ = private_memory::remove(generation);
        })? as u64;
    let mirror = Mirror {
        process: c.process,
        generation,
        pages,
        addr: at,
        len: c.len,
        placement,
    };
    if let Err(e) = mirror.everywhere(except) {
        let _ = home_space.with(|| ffi::unmap_alike(at, c.len));
        return Err(e);
    }
    Ok(SpaceAnswer {
        addr: at,
        generation,
        pages,
    })
}

/// `SpaceApply` from `node`: believed only from the home of the process (as the
/// address spaces of it here know it); a node without any has nothing to do.
pub(crate) fn on_apply(node: u32, reply: Reply, a: SpaceApply) -> Result<Option<usize>> {
    match ffi::dist_home(a.process) {
        None => return Ok(Some(0)),
        Some(home) if home != node || node == engine().node => return Err(EPERM),
        Some(_) => {}
    }
    let placement = Placement::from_raw(a.placement).ok_or(EINVAL)?;
    if a.op == SPACE_MAP && (u64::from(a.pages) < a.len >> 12 || a.len & 4095 != 0 || a.len == 0) {
        return Err(EINVAL);
    }
    ffi::spawn_held(move || {
        let r = apply_here(node, &a, placement);
        reply.send(r.map(|()| &[][..]));
    })?;
    Ok(None)
}

/// A work item on a node that holds address spaces of the process: applies the home's
/// change to each but the caller's.
fn apply_here(home: u32, a: &SpaceApply, placement: Placement) -> Result {
    let mut first_error = Ok(());
    for space in Space::of_process(a.process, false)?.iter() {
        if space.token() == a.except {
            continue;
        }
        let r = space.with(|| {
            if a.op == SPACE_UNMAP {
                return ffi::unmap_alike(a.addr, a.len);
            }
            if a.op == SPACE_OPEN {
                return open_regions(home, a.addr, a.len);
            }
            let how = placement.elsewhere();
            match private_memory::map(
                home,
                a.generation,
                a.pages,
                a.addr as usize,
                a.len as usize,
                0,
                RW,
                how.raw(),
            ) {
                // A thread that arrived meanwhile brought it in its layout.
                Err(e) if e == EEXIST && ffi::region_at(a.addr) == a.generation => Ok(()),
                r => r.map(|_| ()),
            }
        });
        if first_error.is_ok() {
            first_error = r;
        }
    }
    first_error
}
