// SPDX-License-Identifier: GPL-2.0

//! The monotonic clock as the integers that `rust/src`'s state machines take.
//!
//! The pure logic (membership, calls, the GPIO bus, migration deadlines) counts time as
//! integers since boot so that the host tests can drive it. This is the one place the
//! modules read those integers from the kernel's monotonic clock, with the 32-bit-safe
//! conversions of `kernel::time::Delta` and `arith`; kernel-only code that only measures
//! an interval can use `kernel::time::Instant` directly.

use kernel::time::Delta;

use crate::shared::arith::div_small;

/// Time since boot on the monotonic clock.
///
/// `kernel::time::Instant<Monotonic>` reads the same clock but does not give its value
/// out, which integers since boot need.
pub(crate) fn since_boot() -> Delta {
    // SAFETY: No preconditions; the monotonic clock is never negative.
    Delta::from_nanos(unsafe { kernel::bindings::ktime_get() })
}

/// Nanoseconds since boot.
pub(crate) fn now_ns() -> u64 {
    // Never negative (see `since_boot`).
    since_boot().as_nanos() as u64
}

/// Microseconds since boot (rounded down).
pub(crate) fn now_us() -> u64 {
    div_small(now_ns(), 1000).0
}

/// Milliseconds since boot (rounded down).
pub(crate) fn now_ms() -> u64 {
    // Never negative (see `since_boot`).
    since_boot().as_millis() as u64
}
