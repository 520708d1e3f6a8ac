// SPDX-License-Identifier: GPL-2.0

//! SSI regions: cluster-wide named shared memory, and how a region is recorded in the
//! bookkeeping store (`super::kv`).
//!
//! A region is recorded under the key `region/<name>` with a fixed 24-byte value
//! ([`RegionRecord`]): size in pages, permission bits, owner uid and gid, home node and a
//! generation that changes each time a region of that name is created (so a stale
//! mapping of a removed-and-recreated region is told apart). Opening a region checks
//! permissions like a file: owner bits for the owner, group bits for a member of the
//! group, other bits otherwise; `CAP_SYS_ADMIN` bypasses them.

use super::wire::MAX_KEY;

/// Prefix of the bookkeeping keys of regions.
pub const KEY_PREFIX: &[u8] = b"region/";
/// Longest region name (the key fits in [`MAX_KEY`]).
pub const MAX_NAME: usize = super::ioctl::SSI_REGION_NAME_LEN;
const _: () = assert!(KEY_PREFIX.len() + MAX_NAME <= MAX_KEY);
/// Largest region, in pages (4 GiB of 4 KiB pages).
pub const MAX_PAGES: u32 = 1 << 20;
/// Bytes of an encoded [`RegionRecord`].
pub const RECORD_LEN: usize = 24;

/// Why a region request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionError {
    /// Empty, too long, or characters other than `[A-Za-z0-9._-]` (or a leading dot).
    BadName,
    /// Zero pages or more than [`MAX_PAGES`].
    BadSize,
    /// Mode bits outside `0o777`.
    BadMode,
    /// A record that does not decode.
    BadRecord,
}

/// What the bookkeeping store says about a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionRecord {
    /// Size in pages.
    pub pages: u32,
    /// Permission bits (`0o777` at most).
    pub mode: u16,
    /// The node that created it: its home and page directory.
    pub home: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Changes with each creation under the same name.
    pub generation: u64,
}

/// Checks a region name.
pub fn validate_name(name: &[u8]) -> Result<(), RegionError> {
    let ok_char = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-');
    if name.is_empty() || name.len() > MAX_NAME || name[0] == b'.' || !name.iter().all(ok_char) {
        return Err(RegionError::BadName);
    }
    Ok(())
}

/// Names of the regions that hold a distributed process's private memory start with
/// this (a leading dot, which no user's region name may have): `.p<home>-<generation>`,
/// the generation in 16 hex digits. Such regions are created, mapped and removed by the
/// kernel for the process, never through the region ioctls.
pub const PRIVATE_PREFIX: &[u8] = b".p";

/// Longest private region name: the prefix, a `u16` in decimal, a dash, 16 hex digits.
pub const PRIVATE_NAME_LEN: usize = PRIVATE_PREFIX.len() + 5 + 1 + 16;
const _: () = assert!(PRIVATE_NAME_LEN <= MAX_NAME);

/// Writes the name of the private-memory region of generation `generation` homed on
/// `home` into `out`; returns its length.
pub fn private_name(home: u16, generation: u64, out: &mut [u8; PRIVATE_NAME_LEN]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut n = PRIVATE_PREFIX.len();
    out[..n].copy_from_slice(PRIVATE_PREFIX);
    let mut digits = [0u8; 5];
    let mut d = 0;
    let mut v = home;
    loop {
        digits[d] = b'0' + (v % 10) as u8;
        d += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for i in (0..d).rev() {
        out[n] = digits[i];
        n += 1;
    }
    out[n] = b'-';
    n += 1;
    for i in (0..16).rev() {
        // Shifts only (no u64 division: 32-bit ARM).
        out[n] = HEX[((generation >> (4 * i)) & 0xf) as usize];
        n += 1;
    }
    n
}

/// Whether `name` is the name of a private-memory region (see [`PRIVATE_PREFIX`]).
pub fn is_private_name(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(PRIVATE_PREFIX) else {
        return false;
    };
    let Some(dash) = rest.iter().position(|&c| c == b'-') else {
        return false;
    };
    let (home, generation) = (&rest[..dash], &rest[dash + 1..]);
    (1..=5).contains(&home.len())
        && home.iter().all(u8::is_ascii_digit)
        && generation.len() == 16
        && generation
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// Writes the bookkeeping key of user region `name` into `out`; returns its length.
/// Private-memory regions have no key (their nodes learn of them from the process).
pub fn key(name: &[u8], out: &mut [u8; MAX_KEY]) -> Result<usize, RegionError> {
    validate_name(name)?;
    let n = KEY_PREFIX.len() + name.len();
    out[..KEY_PREFIX.len()].copy_from_slice(KEY_PREFIX);
    out[KEY_PREFIX.len()..n].copy_from_slice(name);
    Ok(n)
}

impl RegionRecord {
    /// A checked record.
    pub fn new(
        pages: u32,
        mode: u16,
        home: u16,
        uid: u32,
        gid: u32,
        generation: u64,
    ) -> Result<Self, RegionError> {
        if pages == 0 || pages > MAX_PAGES {
            return Err(RegionError::BadSize);
        }
        if mode & !0o777 != 0 {
            return Err(RegionError::BadMode);
        }
        Ok(Self {
            pages,
            mode,
            home,
            uid,
            gid,
            generation,
        })
    }

    /// The little-endian encoding stored as the key's value.
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[0..4].copy_from_slice(&self.pages.to_le_bytes());
        b[4..6].copy_from_slice(&self.mode.to_le_bytes());
        b[6..8].copy_from_slice(&self.home.to_le_bytes());
        b[8..12].copy_from_slice(&self.uid.to_le_bytes());
        b[12..16].copy_from_slice(&self.gid.to_le_bytes());
        b[16..24].copy_from_slice(&self.generation.to_le_bytes());
        b
    }

    /// Decodes and checks a stored value.
    pub fn decode(b: &[u8]) -> Result<Self, RegionError> {
        let b: &[u8; RECORD_LEN] = b.try_into().map_err(|_| RegionError::BadRecord)?;
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let mut g = [0u8; 8];
        g.copy_from_slice(&b[16..24]);
        Self::new(
            u32_at(0),
            u16_at(4),
            u16_at(6),
            u32_at(8),
            u32_at(12),
            u64::from_le_bytes(g),
        )
        .map_err(|_| RegionError::BadRecord)
    }

    /// May a caller with `uid`, primary group `gid` and supplementary `groups` open it
    /// for reading (and writing if `write`)? `admin` (`CAP_SYS_ADMIN`) always may.
    pub fn may_open(&self, uid: u32, gid: u32, groups: &[u32], write: bool, admin: bool) -> bool {
        if admin {
            return true;
        }
        let bits = if uid == self.uid {
            self.mode >> 6
        } else if gid == self.gid || groups.contains(&self.gid) {
            self.mode >> 3
        } else {
            self.mode
        } & 0o7;
        let want = if write { 0o6 } else { 0o4 };
        bits & want == want
    }
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_region))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_keyed() {
        let mut k = [0u8; MAX_KEY];
        assert_eq!(key(b"shm-1.data", &mut k), Ok(17));
        assert_eq!(&k[..17], b"region/shm-1.data");
        assert_eq!(validate_name(b""), Err(RegionError::BadName));
        assert_eq!(validate_name(b".hidden"), Err(RegionError::BadName));
        assert_eq!(validate_name(b"a/b"), Err(RegionError::BadName));
        assert_eq!(validate_name(&[b'x'; MAX_NAME]), Ok(()));
        assert_eq!(
            validate_name(&[b'x'; MAX_NAME + 1]),
            Err(RegionError::BadName)
        );
    }

    #[test]
    fn private_names_are_recognised_and_have_no_key() {
        let mut n = [0u8; PRIVATE_NAME_LEN];
        let len = private_name(12, 0x00ab_cdef_0123_4567, &mut n);
        assert_eq!(&n[..len], b".p12-00abcdef01234567");
        assert!(is_private_name(&n[..len]));
        let len = private_name(u16::MAX, u64::MAX, &mut n);
        assert_eq!(len, PRIVATE_NAME_LEN);
        assert!(is_private_name(&n[..len]));
        assert_eq!(private_name(0, 1, &mut n), 20);
        assert_eq!(&n[..20], b".p0-0000000000000001");
        // Users cannot name a region like that, and the store holds none.
        assert_eq!(validate_name(&n[..20]), Err(RegionError::BadName));
        let mut k = [0u8; MAX_KEY];
        assert_eq!(key(&n[..20], &mut k), Err(RegionError::BadName));
        for bad in [
            &b".p-0000000000000001"[..],
            b".p0-000000000000001",
            b".p0-000000000000000g",
            b".px-0000000000000001",
            b".p123456-0000000000000001",
            b".q0-0000000000000001",
        ] {
            assert!(!is_private_name(bad));
            assert_eq!(key(bad, &mut k), Err(RegionError::BadName));
        }
    }

    #[test]
    fn records_round_trip_and_are_checked() {
        let r = RegionRecord::new(16384, 0o640, 2, 1000, 100, 7).unwrap();
        assert_eq!(RegionRecord::decode(&r.encode()), Ok(r));
        assert_eq!(
            RegionRecord::new(0, 0o600, 0, 0, 0, 0),
            Err(RegionError::BadSize)
        );
        assert_eq!(
            RegionRecord::new(1, 0o1777, 0, 0, 0, 0),
            Err(RegionError::BadMode)
        );
        assert_eq!(RegionRecord::decode(&[0; 23]), Err(RegionError::BadRecord));
        assert_eq!(RegionRecord::decode(&[0; 24]), Err(RegionError::BadRecord));
    }

    #[test]
    fn permissions_work_like_files() {
        let r = RegionRecord::new(1, 0o640, 0, 1000, 100, 1).unwrap();
        assert!(r.may_open(1000, 5, &[], true, false));
        assert!(r.may_open(2000, 100, &[], false, false));
        assert!(!r.may_open(2000, 100, &[], true, false));
        assert!(r.may_open(2000, 5, &[7, 100], false, false));
        assert!(!r.may_open(2000, 5, &[], false, false));
        assert!(r.may_open(2000, 5, &[], true, true));
        let private = RegionRecord::new(1, 0o600, 0, 1000, 100, 1).unwrap();
        assert!(!private.may_open(1001, 100, &[], false, false));
    }
}
