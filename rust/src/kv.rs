// SPDX-License-Identifier: GPL-2.0

//! The replicated key-value bookkeeping service (leader-follower).
//!
//! Writes go to the leader, which gives each a version (its counter plus one), applies
//! it and sends followers a `KvUpdate { prev_version, version, key, value }`. A follower
//! applies an update only if it is at `prev_version`; an older one is a duplicate, a
//! newer one reveals a gap, and the follower asks the leader to resend everything after
//! its own version (`KvSync`). The leader answers with its current entries newer than
//! that, oldest first, each chained to the one before: the follower catches up even
//! though intermediate versions were overwritten. A deletion is a write of an empty
//! value and stays as a tombstone, so resyncs carry it too.
//!
//! The store does not allocate: the caller provides the slots (in the kernel a `KVec`,
//! on the host a `Vec`), which bounds its size.

use super::wire::{MAX_KEY, MAX_VALUE};

/// One stored key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvEntry {
    key: [u8; MAX_KEY],
    key_len: u8,
    value: [u8; MAX_VALUE],
    value_len: u8,
    version: u64,
}

impl KvEntry {
    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.key[..usize::from(self.key_len)]
    }

    /// The value; empty for a deleted key (tombstone).
    pub fn value(&self) -> &[u8] {
        &self.value[..usize::from(self.value_len)]
    }

    /// The version of the write that set it.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// True for a deleted key.
    pub fn is_tombstone(&self) -> bool {
        self.value_len == 0
    }
}

/// A slot of the store.
pub type KvSlot = Option<KvEntry>;

/// Why an operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvError {
    /// Empty or longer than `MAX_KEY`.
    BadKey,
    /// Longer than `MAX_VALUE`.
    BadValue,
    /// No free slot for a new key.
    Full,
    /// An update skipped versions: resync from `have`.
    Gap {
        /// The follower's version.
        have: u64,
    },
}

/// What applying an update did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Applied; the store is now at the update's version.
    Applied,
    /// Already had it (or newer): ignored.
    Duplicate,
}

/// A write the leader made, to send to followers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvWrite {
    /// The version followers must be at.
    pub prev_version: u64,
    /// The new version.
    pub version: u64,
}

/// The store over caller-provided slots.
pub struct KvStore<S> {
    slots: S,
    version: u64,
}

impl<S: core::ops::DerefMut<Target = [KvSlot]>> KvStore<S> {
    /// An empty store at version 0. `slots` should all be `None`.
    pub fn new(slots: S) -> Self {
        Self { slots, version: 0 }
    }

    /// The version of the last write applied.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Live (non-deleted) entries, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &KvEntry> {
        self.slots.iter().flatten().filter(|e| !e.is_tombstone())
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.slots
            .iter()
            .flatten()
            .find(|e| e.key() == key)
            .filter(|e| !e.is_tombstone())
            .map(|e| e.value())
    }

    fn set(&mut self, key: &[u8], value: &[u8], version: u64) -> Result<(), KvError> {
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(KvError::BadKey);
        }
        if value.len() > MAX_VALUE {
            return Err(KvError::BadValue);
        }
        let idx = match self
            .slots
            .iter()
            .position(|s| matches!(s, Some(e) if e.key() == key))
        {
            Some(i) => i,
            None => self
                .slots
                .iter()
                .position(|s| s.is_none())
                .ok_or(KvError::Full)?,
        };
        let mut e = KvEntry {
            key: [0; MAX_KEY],
            key_len: 0,
            value: [0; MAX_VALUE],
            value_len: 0,
            version,
        };
        e.key[..key.len()].copy_from_slice(key);
        e.value[..value.len()].copy_from_slice(value);
        // Both lengths are bounded by MAX_KEY/MAX_VALUE, which fit in u8.
        e.key_len = key.len() as u8;
        e.value_len = value.len() as u8;
        self.slots[idx] = Some(e);
        self.version = version;
        Ok(())
    }

    /// Leader: applies a write (an empty value deletes) and returns what to send.
    pub fn put_as_leader(&mut self, key: &[u8], value: &[u8]) -> Result<KvWrite, KvError> {
        let prev_version = self.version;
        self.set(key, value, prev_version + 1)?;
        Ok(KvWrite {
            prev_version,
            version: prev_version + 1,
        })
    }

    /// Follower: applies an update from the leader.
    pub fn apply(
        &mut self,
        prev_version: u64,
        version: u64,
        key: &[u8],
        value: &[u8],
    ) -> Result<Applied, KvError> {
        if version <= self.version {
            return Ok(Applied::Duplicate);
        }
        if prev_version != self.version {
            return Err(KvError::Gap { have: self.version });
        }
        self.set(key, value, version)?;
        Ok(Applied::Applied)
    }

    /// Leader: the entry (tombstones included) with the smallest version above `after`:
    /// a resync sends `next_after(from)`, then `next_after` of that one's version, ...
    pub fn next_after(&self, after: u64) -> Option<&KvEntry> {
        self.slots
            .iter()
            .flatten()
            .filter(|e| e.version > after)
            .min_by_key(|e| e.version)
    }

    /// Adopts a newer leader's state wholesale (used when this node becomes leader and
    /// a follower had newer data): clears everything.
    pub fn reset(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
        self.version = 0;
    }
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_kv))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    #[test]
    fn leader_writes_and_follower_applies_in_order() {
        let mut ls = [None; 4];
        let mut fs = [None; 4];
        let mut leader = KvStore::new(&mut ls[..]);
        let mut follower = KvStore::new(&mut fs[..]);
        let w1 = leader.put_as_leader(b"a", b"1");
        assert_eq!(
            w1,
            Ok(KvWrite {
                prev_version: 0,
                version: 1
            })
        );
        let w2 = leader.put_as_leader(b"a", b"2");
        assert_eq!(
            w2,
            Ok(KvWrite {
                prev_version: 1,
                version: 2
            })
        );
        // Update 2 before 1: a gap.
        assert_eq!(
            follower.apply(1, 2, b"a", b"2"),
            Err(KvError::Gap { have: 0 })
        );
        assert_eq!(follower.apply(0, 1, b"a", b"1"), Ok(Applied::Applied));
        assert_eq!(follower.apply(0, 1, b"a", b"1"), Ok(Applied::Duplicate));
        assert_eq!(follower.apply(1, 2, b"a", b"2"), Ok(Applied::Applied));
        assert_eq!(follower.get(b"a"), Some(&b"2"[..]));
        assert_eq!(follower.version(), 2);
    }

    #[test]
    fn resync_chains_over_overwritten_versions_and_carries_deletes() {
        let mut ls = [None; 4];
        let mut fs = [None; 4];
        let mut leader = KvStore::new(&mut ls[..]);
        let mut follower = KvStore::new(&mut fs[..]);
        assert!(leader.put_as_leader(b"x", b"1").is_ok());
        assert!(leader.put_as_leader(b"y", b"1").is_ok());
        assert!(follower.apply(0, 1, b"x", b"1").is_ok());
        assert!(follower.apply(1, 2, b"y", b"1").is_ok());
        assert!(leader.put_as_leader(b"x", b"2").is_ok()); // v3, lost
        assert!(leader.put_as_leader(b"x", b"3").is_ok()); // v4, lost
        assert!(leader.put_as_leader(b"y", b"").is_ok()); // v5: delete y, lost
                                                          // Resync from the follower's version 2: entries v4 (x) and v5 (y tombstone).
        let mut prev = follower.version();
        let mut sent = 0;
        while let Some(e) = leader.next_after(prev) {
            let (v, k, val) = (e.version(), e.key(), e.value());
            assert_eq!(follower.apply(prev, v, k, val), Ok(Applied::Applied));
            prev = v;
            sent += 1;
        }
        assert_eq!(sent, 2);
        assert_eq!(follower.version(), 5);
        assert_eq!(follower.get(b"x"), Some(&b"3"[..]));
        assert_eq!(follower.get(b"y"), None);
        assert_eq!(follower.iter().count(), 1);
    }

    #[test]
    fn bounds_are_enforced() {
        let mut s = [None; 1];
        let mut kv = KvStore::new(&mut s[..]);
        assert_eq!(kv.put_as_leader(b"", b"v"), Err(KvError::BadKey));
        assert_eq!(
            kv.put_as_leader(&[b'k'; MAX_KEY + 1], b"v"),
            Err(KvError::BadKey)
        );
        assert_eq!(
            kv.put_as_leader(b"k", &[0; MAX_VALUE + 1]),
            Err(KvError::BadValue)
        );
        assert!(kv.put_as_leader(b"k", b"v").is_ok());
        assert_eq!(kv.put_as_leader(b"other", b"v"), Err(KvError::Full));
        assert_eq!(kv.version(), 1);
        kv.reset();
        assert_eq!(kv.version(), 0);
        assert_eq!(kv.get(b"k"), None);
    }
}
