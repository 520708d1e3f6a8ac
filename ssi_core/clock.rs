// SPDX-License-Identifier: GPL-2.0

//! Monotonic time for timeouts, the failure detector and round trips. Division goes
//! through `Delta::as_millis`, which is safe on 32-bit ARM.

use kernel::time::Delta;

/// Nanoseconds since boot.
pub(crate) fn now_ns() -> u64 {
    crate::ffi::ktime_ns()
}

/// Milliseconds since boot.
pub(crate) fn now_ms() -> u64 {
    // ktime is non-negative and below i64::MAX.
    Delta::from_nanos(now_ns() as i64).as_millis() as u64
}
