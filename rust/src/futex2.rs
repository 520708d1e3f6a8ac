// SPDX-License-Identifier: GPL-2.0

//! The futex2 system calls of a distributed process, as the `futex(2)` calls they amount
//! to.
//!
//! Linux has, besides `futex(2)`, four newer system calls on futex words: `futex_wake`,
//! `futex_wait`, `futex_requeue` and `futex_waitv`. They do not go through `do_futex()`,
//! so without their own redirect a distributed process's call would queue or wake on the
//! kernel's futexes of one node only: a thread on one node waiting with `futex_wait`
//! would never see the `futex_wake` of a thread on another. `ssi_migrate` redirects them
//! as it does `do_futex()`, and this file turns each call into the cluster futex call it
//! means, with the kernel's checks in its order (`kernel/futex/syscalls.c`):
//!
//! - `futex_wake(uaddr, mask, nr, flags)` is `FUTEX_WAKE_BITSET` with `mask`, except that
//!   `nr == 0` wakes nobody (the kernel's `FLAGS_STRICT`; `futex(2)` wakes one);
//! - `futex_wait(uaddr, val, mask, flags, timeout, clockid)` is `FUTEX_WAIT_BITSET`, its
//!   absolute timeout on `clockid` (`CLOCK_REALTIME` or `CLOCK_MONOTONIC`);
//! - `futex_requeue(waiters, flags, nr_wake, nr_requeue)` is `FUTEX_CMP_REQUEUE` from
//!   `waiters[0]` (compared with its `val`) to `waiters[1]`;
//! - `futex_waitv` (waiting on several words at once) is refused with `ENOSYS`, which
//!   its users take as "not on this kernel" and fall back to `futex(2)`: a master keeps
//!   one queue per word, and a waiter in several queues on several masters is not
//!   built.
//!
//! Only 32-bit words exist (as in the kernel); `FUTEX2_NUMA` and `FUTEX2_MPOL` (a word
//! followed by a NUMA node) are refused with `EINVAL` in a distributed process, whose
//! futexes have one master whatever the node.

use super::futex::{
    Refusal, FUTEX_CLOCK_REALTIME, FUTEX_CMP_REQUEUE, FUTEX_PRIVATE_FLAG, FUTEX_WAIT_BITSET,
    FUTEX_WAKE_BITSET,
};

/// `FUTEX2_SIZE_U32`: a 32-bit word (the only size Linux implements).
pub const FUTEX2_SIZE_U32: u32 = 0x02;
/// `FUTEX2_SIZE_U64`.
pub const FUTEX2_SIZE_U64: u32 = 0x03;
/// `FUTEX2_SIZE_MASK`.
pub const FUTEX2_SIZE_MASK: u32 = 0x03;
/// `FUTEX2_NUMA`: the word is followed by a NUMA node id.
pub const FUTEX2_NUMA: u32 = 0x04;
/// `FUTEX2_MPOL`: the node follows the memory policy.
pub const FUTEX2_MPOL: u32 = 0x08;
/// `FUTEX2_PRIVATE`: the word is private to the process.
pub const FUTEX2_PRIVATE: u32 = FUTEX_PRIVATE_FLAG;
/// Every futex2 flag Linux knows.
pub const FUTEX2_VALID_MASK: u32 = FUTEX2_SIZE_MASK | FUTEX2_NUMA | FUTEX2_MPOL | FUTEX2_PRIVATE;
/// `CLOCK_REALTIME`.
pub const CLOCK_REALTIME: i32 = 0;
/// `CLOCK_MONOTONIC`.
pub const CLOCK_MONOTONIC: i32 = 1;
/// Bytes of one `struct futex_waitv` (`val`, `uaddr`, `flags`, `__reserved`).
pub const WAITV_SIZE: usize = 24;

const NSEC_PER_SEC: i64 = 1_000_000_000;

/// Which futex2 system call (`SSI_FUTEX2_*` of `ssi_migrate/shim.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Futex2Call {
    /// `futex_wake`.
    Wake,
    /// `futex_wait`.
    Wait,
    /// `futex_requeue`.
    Requeue,
    /// `futex_waitv`.
    Waitv,
}

impl Futex2Call {
    /// From the number `distributed.c` passes.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => Futex2Call::Wake,
            1 => Futex2Call::Wait,
            2 => Futex2Call::Requeue,
            3 => Futex2Call::Waitv,
            _ => return None,
        })
    }
}

/// The `futex(2)` call a futex2 call amounts to: `futex(uaddr, op, val, val2, uaddr2,
/// val3)`, `val2` being the count that `futex(2)` passes in its timeout argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsFutex {
    pub uaddr: u64,
    pub op: u32,
    pub val: u32,
    pub val2: u32,
    pub uaddr2: u64,
    pub val3: u32,
}

/// One `struct futex_waitv`, as read from user memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitvEntry {
    /// The value the word must hold.
    pub val: u64,
    /// The word's address.
    pub uaddr: u64,
    /// Its futex2 flags.
    pub flags: u32,
    /// Must be 0.
    pub reserved: u32,
}

impl WaitvEntry {
    /// From its bytes (little-endian, as on every architecture ssi runs on).
    pub fn from_bytes(b: &[u8; WAITV_SIZE]) -> Self {
        let u64_at = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(w)
        };
        let u32_at = |i: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&b[i..i + 4]);
            u32::from_le_bytes(w)
        };
        WaitvEntry {
            val: u64_at(0),
            uaddr: u64_at(8),
            flags: u32_at(16),
            reserved: u32_at(20),
        }
    }
}

/// Checks futex2 `flags` as the kernel does for a 64-bit caller (`futex2_to_flags`,
/// `futex_flags_valid`); returns the `futex(2)` private flag they amount to.
pub fn private_flag(flags: u32) -> Result<u32, Refusal> {
    if flags & !FUTEX2_VALID_MASK != 0 || flags & FUTEX2_SIZE_MASK != FUTEX2_SIZE_U32 {
        return Err(Refusal::Futex2Flags);
    }
    if flags & (FUTEX2_NUMA | FUTEX2_MPOL) != 0 {
        return Err(Refusal::Futex2Numa);
    }
    Ok(flags & FUTEX2_PRIVATE)
}

/// A value or mask that must fit the 32-bit word.
fn word(v: u64) -> Result<u32, Refusal> {
    u32::try_from(v).map_err(|_| Refusal::TooWide)
}

/// A futex word must be aligned to its size.
fn aligned(uaddr: u64) -> Result<u64, Refusal> {
    if uaddr.is_multiple_of(4) {
        Ok(uaddr)
    } else {
        Err(Refusal::Misaligned)
    }
}

/// `futex_wake(uaddr, mask, nr, flags)`; `None` when it wakes nobody (`nr == 0`).
pub fn wake(uaddr: u64, mask: u64, nr: i32, flags: u32) -> Result<Option<AsFutex>, Refusal> {
    let private = private_flag(flags)?;
    let mask = word(mask)?;
    if mask == 0 {
        return Err(Refusal::EmptyBitset);
    }
    let uaddr = aligned(uaddr)?;
    if nr == 0 {
        return Ok(None);
    }
    Ok(Some(bitset_wake(uaddr, private, nr, mask)))
}

/// `futex_wait(uaddr, val, mask, flags, timeout, clockid)`, before its timeout is read
/// (`timed`: it has one; the kernel reads it after these checks).
pub fn wait(
    uaddr: u64,
    val: u64,
    mask: u64,
    flags: u32,
    timed: bool,
    clockid: i32,
) -> Result<AsFutex, Refusal> {
    let private = private_flag(flags)?;
    let val = word(val)?;
    let mask = word(mask)?;
    let clock = match (timed, clockid) {
        (false, _) | (true, CLOCK_MONOTONIC) => 0,
        (true, CLOCK_REALTIME) => FUTEX_CLOCK_REALTIME,
        (true, _) => return Err(Refusal::Futex2Clock),
    };
    Ok(bitset_wait(uaddr, private | clock, val, mask))
}

/// `FUTEX_WAKE_BITSET` of `nr` waiters on `uaddr` whose bitsets meet `mask`; `flags`:
/// `FUTEX_PRIVATE_FLAG` or 0.
fn bitset_wake(uaddr: u64, flags: u32, nr: i32, mask: u32) -> AsFutex {
    AsFutex {
        uaddr,
        op: FUTEX_WAKE_BITSET | flags,
        val: nr as u32,
        val2: 0,
        uaddr2: 0,
        val3: mask,
    }
}

/// `FUTEX_WAIT_BITSET` on `uaddr` while it holds `val`, woken by wakes that meet
/// `mask`; `flags`: `FUTEX_PRIVATE_FLAG` and `FUTEX_CLOCK_REALTIME`, or 0.
fn bitset_wait(uaddr: u64, flags: u32, val: u32, mask: u32) -> AsFutex {
    AsFutex {
        uaddr,
        op: FUTEX_WAIT_BITSET | flags,
        val,
        val2: 0,
        uaddr2: 0,
        val3: mask,
    }
}

/// A `futex_wait` timeout `{ tv_sec, tv_nsec }` as the absolute time in nanoseconds the
/// cluster's wait takes (`timespec64_valid`, then capped at `KTIME_MAX` as
/// `timespec64_to_ktime` does).
pub fn deadline_ns(tv_sec: i64, tv_nsec: i64) -> Result<i64, Refusal> {
    if tv_sec < 0 || !(0..NSEC_PER_SEC).contains(&tv_nsec) {
        return Err(Refusal::BadTimeout);
    }
    // Compared, not multiplied with overflow checks: on 32-bit ARM those call a helper
    // the kernel does not have.
    const KTIME_SEC_MAX: i64 = i64::MAX / NSEC_PER_SEC;
    if tv_sec >= KTIME_SEC_MAX {
        return Ok(i64::MAX);
    }
    Ok(tv_sec * NSEC_PER_SEC + tv_nsec)
}

/// `futex_requeue`'s own arguments, checked before its entries are read.
pub fn requeue_args(flags: u32, waiters: u64) -> Result<(), Refusal> {
    if flags != 0 || waiters == 0 {
        return Err(Refusal::Futex2Flags);
    }
    Ok(())
}

/// One entry of `futex_requeue` (checked as soon as it is read, as the kernel does).
pub fn entry(e: &WaitvEntry) -> Result<u32, Refusal> {
    if e.flags & !FUTEX2_VALID_MASK != 0 || e.reserved != 0 {
        return Err(Refusal::Futex2Flags);
    }
    let private = private_flag(e.flags)?;
    word(e.val)?;
    Ok(private)
}

/// `futex_requeue(waiters, 0, nr_wake, nr_requeue)` with both entries read and checked.
pub fn requeue(
    from: &WaitvEntry,
    to: &WaitvEntry,
    nr_wake: i32,
    nr_requeue: i32,
) -> Result<AsFutex, Refusal> {
    let private = entry(from)?;
    entry(to)?;
    if from.flags != to.flags {
        return Err(Refusal::Futex2Flags);
    }
    Ok(AsFutex {
        uaddr: from.uaddr,
        op: FUTEX_CMP_REQUEUE | private,
        val: nr_wake as u32,
        val2: nr_requeue as u32,
        uaddr2: to.uaddr,
        val3: word(from.val)?,
    })
}

/// `FLAGS_SHARED` of the kernel's own futex flags (`kernel/futex/futex.h`, private to the
/// kernel and the same since Linux 6.7). Those flags, not a system call's, come with the
/// futex calls the kernel makes itself: a timed wait's restart block
/// (`futex_wait_restart()`) and the wake of a robust mutex whose owner died
/// (`handle_futex_death()`).
pub const KFLAGS_SHARED: u32 = 0x0010;
/// `FLAGS_CLOCKRT`: the absolute timeout is on `CLOCK_REALTIME`.
pub const KFLAGS_CLOCKRT: u32 = 0x0020;
/// `FLAGS_HAS_TIMEOUT`: the restart block's time is a timeout.
pub const KFLAGS_HAS_TIMEOUT: u32 = 0x0040;
/// `FLAGS_STRICT`: a wake of 0 waiters wakes nobody (`futex(2)` would wake one).
pub const KFLAGS_STRICT: u32 = 0x0100;

fn kflags_private(kflags: u32) -> u32 {
    if kflags & KFLAGS_SHARED != 0 {
        0
    } else {
        FUTEX_PRIVATE_FLAG
    }
}

/// The `futex(2)` call a restarted wait amounts to (its restart block's word, flags,
/// value, absolute time and bitset), and its absolute timeout in nanoseconds (`-1`:
/// none).
pub fn restart_wait(
    uaddr: u64,
    kflags: u32,
    val: u32,
    time_ns: i64,
    bitset: u32,
) -> (AsFutex, i64) {
    let mut flags = kflags_private(kflags);
    if kflags & KFLAGS_CLOCKRT != 0 {
        flags |= FUTEX_CLOCK_REALTIME;
    }
    let deadline = if kflags & KFLAGS_HAS_TIMEOUT != 0 {
        time_ns
    } else {
        -1
    };
    (bitset_wait(uaddr, flags, val, bitset), deadline)
}

/// The `futex(2)` call a wake the kernel makes itself (`futex_wake(uaddr, flags, nr_wake,
/// bitset)`) amounts to; `None` if it wakes nobody.
pub fn kernel_wake(uaddr: u64, kflags: u32, nr_wake: i32, bitset: u32) -> Option<AsFutex> {
    if kflags & KFLAGS_STRICT != 0 && nr_wake == 0 {
        return None;
    }
    Some(bitset_wake(uaddr, kflags_private(kflags), nr_wake, bitset))
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_futex2))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::super::errno::{EINVAL, ENOSYS};
    use super::super::futex::{decode, Command};
    use super::*;

    const PRIV32: u32 = FUTEX2_SIZE_U32 | FUTEX2_PRIVATE;

    #[test]
    fn wake_is_a_bitset_wake_and_zero_wakes_nobody() {
        let c = wake(0x1000, 0b110, 3, PRIV32).unwrap().unwrap();
        assert_eq!(c.op, FUTEX_WAKE_BITSET | FUTEX_PRIVATE_FLAG);
        let call = decode(c.op, c.val, c.val2, c.val3).unwrap();
        assert!(call.private);
        assert_eq!(
            call.command,
            Command::Wake {
                nr: 3,
                bitset: 0b110,
                robust_unlock: None
            }
        );
        // Shared (no FUTEX2_PRIVATE).
        let c = wake(0x1000, 1, 1, FUTEX2_SIZE_U32).unwrap().unwrap();
        assert_eq!(c.op, FUTEX_WAKE_BITSET);
        assert_eq!(wake(0x1000, 1, 0, PRIV32), Ok(None));
        // A negative count wakes one, as the kernel's loop does.
        let c = wake(0x1000, 1, -1, PRIV32).unwrap().unwrap();
        let call = decode(c.op, c.val, c.val2, c.val3).unwrap();
        assert!(matches!(call.command, Command::Wake { nr: -1, .. }));
    }

    #[test]
    fn flags_are_checked_like_the_kernel() {
        for bad in [
            FUTEX2_SIZE_U64 | FUTEX2_PRIVATE,
            FUTEX2_PRIVATE,
            0x01,
            PRIV32 | 0x100,
            PRIV32 | 0x10,
        ] {
            assert_eq!(wake(0x1000, 1, 1, bad), Err(Refusal::Futex2Flags));
            assert_eq!(Refusal::Futex2Flags.errno(), EINVAL);
        }
        assert_eq!(
            wake(0x1000, 1, 1, PRIV32 | FUTEX2_NUMA),
            Err(Refusal::Futex2Numa)
        );
        assert_eq!(
            wake(0x1000, 1, 1, PRIV32 | FUTEX2_MPOL),
            Err(Refusal::Futex2Numa)
        );
        assert_eq!(Refusal::Futex2Numa.errno(), EINVAL);
        assert_eq!(wake(0x1000, 1 << 32, 1, PRIV32), Err(Refusal::TooWide));
        assert_eq!(wake(0x1000, 0, 1, PRIV32), Err(Refusal::EmptyBitset));
        assert_eq!(wake(0x1002, 1, 1, PRIV32), Err(Refusal::Misaligned));
        // The flags are checked first.
        assert_eq!(wake(0x1002, 0, 1, 0x100), Err(Refusal::Futex2Flags));
    }

    #[test]
    fn wait_is_an_absolute_bitset_wait_on_its_clock() {
        let c = wait(0x2000, 7, u64::from(u32::MAX), PRIV32, false, 99).unwrap();
        let call = decode(c.op, c.val, c.val2, c.val3).unwrap();
        assert_eq!(
            call.command,
            Command::Wait {
                val: 7,
                bitset: u32::MAX,
                absolute: true
            }
        );
        assert!(!call.realtime);
        let c = wait(0x2000, 7, 1, PRIV32, true, CLOCK_REALTIME).unwrap();
        assert!(decode(c.op, c.val, c.val2, c.val3).unwrap().realtime);
        let c = wait(0x2000, 7, 1, PRIV32, true, CLOCK_MONOTONIC).unwrap();
        assert!(!decode(c.op, c.val, c.val2, c.val3).unwrap().realtime);
        assert_eq!(
            wait(0x2000, 7, 1, PRIV32, true, 2),
            Err(Refusal::Futex2Clock)
        );
        assert_eq!(
            wait(0x2000, 1 << 32, 1, PRIV32, false, 0),
            Err(Refusal::TooWide)
        );
        // A mask of 0 is refused by the decoding, as by the kernel's wait.
        let c = wait(0x2000, 7, 0, PRIV32, false, 0).unwrap();
        assert_eq!(
            decode(c.op, c.val, c.val2, c.val3),
            Err(Refusal::EmptyBitset)
        );
    }

    #[test]
    fn timeouts_are_valid_timespecs() {
        assert_eq!(deadline_ns(2, 5), Ok(2_000_000_005));
        assert_eq!(deadline_ns(0, 0), Ok(0));
        assert_eq!(deadline_ns(-1, 0), Err(Refusal::BadTimeout));
        assert_eq!(deadline_ns(0, NSEC_PER_SEC), Err(Refusal::BadTimeout));
        assert_eq!(deadline_ns(0, -1), Err(Refusal::BadTimeout));
        assert_eq!(deadline_ns(i64::MAX, 0), Ok(i64::MAX));
        assert_eq!(Refusal::BadTimeout.errno(), EINVAL);
    }

    #[test]
    fn requeue_is_a_compared_requeue_between_its_entries() {
        let from = WaitvEntry {
            val: 5,
            uaddr: 0x3000,
            flags: PRIV32,
            reserved: 0,
        };
        let to = WaitvEntry {
            uaddr: 0x4000,
            ..from
        };
        let c = requeue(&from, &to, 1, 2).unwrap();
        assert_eq!((c.uaddr, c.uaddr2), (0x3000, 0x4000));
        let call = decode(c.op, c.val, c.val2, c.val3).unwrap();
        assert!(call.private);
        assert_eq!(
            call.command,
            Command::Requeue {
                nr_wake: 1,
                nr_requeue: 2,
                cmp: Some(5)
            }
        );
        // Negative counts: refused by the decoding, as by the kernel.
        let c = requeue(&from, &to, -1, 0).unwrap();
        assert_eq!(
            decode(c.op, c.val, c.val2, c.val3),
            Err(Refusal::NegativeCount)
        );
        let shared = WaitvEntry {
            flags: FUTEX2_SIZE_U32,
            ..to
        };
        assert_eq!(requeue(&from, &shared, 1, 1), Err(Refusal::Futex2Flags));
        let reserved = WaitvEntry { reserved: 1, ..to };
        assert_eq!(requeue(&from, &reserved, 1, 1), Err(Refusal::Futex2Flags));
        let wide = WaitvEntry {
            val: 1 << 32,
            ..from
        };
        assert_eq!(requeue(&wide, &to, 1, 1), Err(Refusal::TooWide));
        assert_eq!(requeue_args(1, 0x5000), Err(Refusal::Futex2Flags));
        assert_eq!(requeue_args(0, 0), Err(Refusal::Futex2Flags));
        assert_eq!(requeue_args(0, 0x5000), Ok(()));
    }

    #[test]
    fn waitv_entries_read_little_endian() {
        let mut b = [0u8; WAITV_SIZE];
        b[0] = 9;
        b[8..16].copy_from_slice(&0x7fff_0000_1000u64.to_le_bytes());
        b[16] = PRIV32 as u8;
        b[20] = 1;
        assert_eq!(
            WaitvEntry::from_bytes(&b),
            WaitvEntry {
                val: 9,
                uaddr: 0x7fff_0000_1000,
                flags: PRIV32,
                reserved: 1
            }
        );
    }

    #[test]
    fn calls_and_the_waitv_refusal() {
        assert_eq!(Futex2Call::from_raw(0), Some(Futex2Call::Wake));
        assert_eq!(Futex2Call::from_raw(3), Some(Futex2Call::Waitv));
        assert_eq!(Futex2Call::from_raw(4), None);
        assert_eq!(Refusal::Waitv.errno(), ENOSYS);
    }

    #[test]
    fn kernel_restarts_and_wakes_are_bitset_calls() {
        let (c, deadline) = restart_wait(0x2000, KFLAGS_HAS_TIMEOUT, 7, 123, 0b1);
        assert_eq!(c.op, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG);
        assert_eq!((c.uaddr, c.val, c.val3, deadline), (0x2000, 7, 0b1, 123));
        let call = decode(c.op, c.val, c.val2, c.val3).unwrap();
        assert!(call.private);
        let (c, deadline) = restart_wait(0x2000, KFLAGS_SHARED | KFLAGS_CLOCKRT, 7, 123, 0b1);
        assert_eq!(c.op, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME);
        assert_eq!(deadline, -1);
        assert!(decode(c.op, c.val, c.val2, c.val3).is_ok());

        assert_eq!(kernel_wake(0x2000, KFLAGS_STRICT, 0, 1), None);
        let c = kernel_wake(0x2000, KFLAGS_SHARED, 1, 1).unwrap();
        assert_eq!(c.op, FUTEX_WAKE_BITSET);
        let call = decode(c.op, c.val, c.val2, c.val3).unwrap();
        assert!(!call.private);
        assert!(matches!(call.command, Command::Wake { nr: 1, .. }));
        // Without FLAGS_STRICT a wake of 0 is futex(2)'s: it wakes one.
        let c = kernel_wake(0x2000, 0, 0, 1).unwrap();
        assert_eq!(c.op, FUTEX_WAKE_BITSET | FUTEX_PRIVATE_FLAG);
    }
}
