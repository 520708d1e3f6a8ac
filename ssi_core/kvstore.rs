// SPDX-License-Identifier: GPL-2.0

//! The cluster's replicated bookkeeping store (leader-follower), over the pure
//! `KvStore` of `rust/src/kv.rs`.
//!
//! Writes go through the leader (the lowest live node id), which versions them and
//! pushes `KvUpdate`s to every up peer; followers apply updates in version order and,
//! when they see a gap (or a heartbeat of the leader announces a version they lack),
//! ask for a resync with `KvSync`. A follower that is ahead of a new leader (it got
//! writes the new leader missed) drops its copy and resyncs from zero: the leader's
//! copy is the truth. Reads are local.
//!
//! Later parts (the region directory, lock masters, the process table) use [`put`] and
//! [`get`].

use kernel::{
    prelude::*,
    sync::{global_lock, SetOnce},
};

use crate::shared::kv::{KvError, KvSlot, KvStore};
use crate::shared::wire::{self, Header, Message};
use crate::{calls, errno, nodes, transmit};

/// Keys the store holds at most.
pub(crate) const KV_SLOTS: usize = 256;
/// How long a write through the leader may take.
const PUT_TIMEOUT_MS: u32 = 2000;

global_lock! {
    // SAFETY: `init` runs in module init before any frame or ioctl can arrive.
    unsafe(uninit) static STORE: Mutex<Option<KvStore<KVec<KvSlot>>>> = None;
}

/// Told of every change applied here (on every node, in version order): a key and its
/// new value (empty when removed).
pub(crate) type ChangeListener = fn(key: &[u8], value: &[u8]);

/// The part of core above the store that acts on changes (SSI regions), set once at
/// module init: the store does not call up into it by name.
static ON_CHANGE: SetOnce<ChangeListener> = SetOnce::new();

/// Sets the listener of changes; once, at module init, before any write can arrive.
pub(crate) fn listen(listener: ChangeListener) {
    if !ON_CHANGE.populate(listener) {
        pr_warn!("kvstore: a second change listener was ignored\n");
    }
}

fn changed(key: &[u8], value: &[u8]) {
    if let Some(listener) = ON_CHANGE.as_ref() {
        listener(key, value);
    }
}

/// Allocates the store. Called once from module init.
pub(crate) fn init() -> Result {
    // SAFETY: Called exactly once, from the module initialiser, before any other use.
    unsafe { STORE.init() };
    let mut slots = KVec::with_capacity(KV_SLOTS, GFP_KERNEL)?;
    for _ in 0..KV_SLOTS {
        slots.push(None, GFP_KERNEL)?;
    }
    *STORE.lock() = Some(KvStore::new(slots));
    Ok(())
}

fn kv_errno(e: KvError) -> Error {
    match e {
        KvError::BadKey | KvError::BadValue => EINVAL,
        KvError::Full => ENOSPC,
        KvError::Gap { .. } => EAGAIN,
    }
}

/// The version of the last write applied here.
pub(crate) fn version() -> u64 {
    STORE.lock().as_ref().map_or(0, |s| s.version())
}

/// Calls `f(key, value, version)` for each live entry.
pub(crate) fn for_each(mut f: impl FnMut(&[u8], &[u8], u64)) {
    if let Some(s) = STORE.lock().as_ref() {
        for e in s.iter() {
            f(e.key(), e.value(), e.version());
        }
    }
}

/// Reads `key` from this node's copy: copies the value into `out`, returns its length
/// and version.
pub(crate) fn get(key: &[u8], out: &mut [u8]) -> Result<(usize, u64)> {
    let guard = STORE.lock();
    let s = guard.as_ref().ok_or(ENOENT)?;
    let e = s.iter().find(|e| e.key() == key).ok_or(ENOENT)?;
    let n = e.value().len().min(out.len());
    out[..n].copy_from_slice(&e.value()[..n]);
    Ok((n, e.version()))
}

/// Writes `key` (an empty value deletes it) through the leader; returns the version.
pub(crate) fn put(key: &[u8], value: &[u8]) -> Result<u64> {
    write(key, value, false)
}

/// Writes `key` through the leader unless it exists (`EEXIST`); returns the version.
pub(crate) fn create(key: &[u8], value: &[u8]) -> Result<u64> {
    if value.is_empty() {
        return Err(EINVAL);
    }
    write(key, value, true)
}

fn write(key: &[u8], value: &[u8], create: bool) -> Result<u64> {
    let (self_id, leader) = nodes::self_and_leader();
    if self_id == leader {
        return put_as_leader(key, value, create);
    }
    let msg = if create {
        Message::KvCreate { key, value }
    } else {
        Message::KvPut { key, value }
    };
    let leader = u32::from(leader);
    let answer = calls::call(leader, &msg, calls::link_timeout(leader, PUT_TIMEOUT_MS))?;
    match wire::decode(&answer) {
        Ok((
            _,
            Message::KvUpdate {
                prev_version,
                version,
                key,
                value,
            },
        )) => {
            // Read-your-writes: apply it here now rather than wait for the push.
            let applied = STORE
                .lock()
                .as_mut()
                .map(|s| s.apply(prev_version, version, key, value));
            if let Some(Ok(crate::shared::kv::Applied::Applied)) = applied {
                changed(key, value);
            }
            Ok(version)
        }
        _ => Err(errno::eproto()),
    }
}

/// Leader: applies a write (unless `create` and the key exists) and pushes it to every
/// up peer.
fn put_as_leader(key: &[u8], value: &[u8], create: bool) -> Result<u64> {
    let w = {
        let mut guard = STORE.lock();
        let s = guard.as_mut().ok_or(ENOMEM)?;
        if create && s.get(key).is_some() {
            return Err(EEXIST);
        }
        s.put_as_leader(key, value).map_err(kv_errno)?
    };
    changed(key, value);
    let update = Message::KvUpdate {
        prev_version: w.prev_version,
        version: w.version,
        key,
        value,
    };
    for (id, state) in nodes::linked_peers().iter() {
        if *state == crate::shared::membership::PeerState::Up {
            // A follower that misses it sees the gap and resyncs.
            let _ = transmit::send(*id, &update, 0, 0);
        }
    }
    Ok(w.version)
}

/// A `KvPut` (or, if `create`, `KvCreate`) request from `h.src`.
pub(crate) fn on_put(h: &Header, key: &[u8], value: &[u8], create: bool) {
    let (self_id, leader) = nodes::self_and_leader();
    let answer = if self_id != leader {
        Err(EAGAIN)
    } else {
        put_as_leader(key, value, create)
    };
    transmit::answer(
        h,
        answer.map(|version| Message::KvUpdate {
            prev_version: version - 1,
            version,
            key,
            value,
        }),
    );
}

/// A pushed `KvUpdate` from `from`: applied if it comes from the leader.
pub(crate) fn on_update(from: u32, prev_version: u64, version: u64, key: &[u8], value: &[u8]) {
    let (_, leader) = nodes::self_and_leader();
    if from != u32::from(leader) {
        return;
    }
    let gap = {
        let mut guard = STORE.lock();
        let Some(s) = guard.as_mut() else {
            return;
        };
        match s.apply(prev_version, version, key, value) {
            Err(KvError::Gap { have }) => Some(Err(have)),
            Ok(crate::shared::kv::Applied::Applied) => Some(Ok(())),
            _ => None,
        }
    };
    let gap = match gap {
        Some(Ok(())) => {
            changed(key, value);
            None
        }
        Some(Err(have)) => Some(have),
        None => None,
    };
    if let Some(have) = gap {
        let _ = transmit::send(from, &Message::KvSync { from_version: have }, 0, 0);
    }
}

/// A follower asks for every update after `from_version`: send them, oldest first,
/// chained.
pub(crate) fn on_sync(to: u32, from_version: u64) {
    let (self_id, leader) = nodes::self_and_leader();
    if self_id != leader {
        return;
    }
    let mut after = from_version;
    loop {
        // One entry at a time: the lock is not held while sending.
        let next = {
            let guard = STORE.lock();
            guard.as_ref().and_then(|s| s.next_after(after)).copied()
        };
        let Some(e) = next else {
            break;
        };
        let msg = Message::KvUpdate {
            prev_version: after,
            version: e.version(),
            key: e.key(),
            value: e.value(),
        };
        if transmit::send(to, &msg, 0, 0).is_err() {
            break;
        }
        after = e.version();
    }
}

/// A heartbeat from `from` says it is at `their_version`: if it is the leader and we
/// differ, resync.
pub(crate) fn on_heartbeat(from: u32, their_version: u64) {
    let (self_id, leader) = nodes::self_and_leader();
    if from != u32::from(leader) || self_id == leader {
        return;
    }
    let ours = {
        let mut guard = STORE.lock();
        let Some(s) = guard.as_mut() else {
            return;
        };
        if s.version() > their_version {
            // Ahead of the leader: our extra writes are not the cluster's.
            pr_info!(
                "bookkeeping: at v{}, ahead of leader {} (v{}): resyncing from scratch\n",
                s.version(),
                from,
                their_version
            );
            s.reset();
        }
        s.version()
    };
    if ours < their_version {
        let _ = transmit::send(from, &Message::KvSync { from_version: ours }, 0, 0);
    }
}

/// Frees the store (module exit).
pub(crate) fn clear() {
    *STORE.lock() = None;
}
