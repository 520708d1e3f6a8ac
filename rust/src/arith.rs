// SPDX-License-Identifier: GPL-2.0

//! 64-bit arithmetic that 32-bit kernels can do.
//!
//! On 32-bit ARM, `u64 / u64` and `u64 % u64` compile to calls of `__aeabi_uldivmod`,
//! which the kernel does not provide (modpost refuses the module). Dividing by a small
//! constant needs no such call when done limb by limb in 32-bit arithmetic.

/// `v / d` and `v % d` for a divisor below 2^16, with 32-bit operations only.
///
/// # Panics
///
/// Never for `d > 0`; `d == 0` gives `(u64::MAX, 0)` rather than a division by zero.
pub const fn div_small(v: u64, d: u16) -> (u64, u16) {
    if d == 0 {
        return (u64::MAX, 0);
    }
    let d = d as u32;
    let mut q = 0u64;
    let mut rem = 0u32;
    let mut shift = 64;
    // Four 16-bit limbs, most significant first: rem < d < 2^16, so each step's
    // dividend (rem << 16 | limb) fits in a u32.
    while shift > 0 {
        shift -= 16;
        let cur = (rem << 16) | ((v >> shift) & 0xffff) as u32;
        q |= ((cur / d) as u64) << shift;
        rem = cur % d;
    }
    (q, rem as u16)
}

/// Nanoseconds to whole milliseconds.
pub const fn ns_to_ms(ns: u64) -> u64 {
    div_small(div_small(ns, 1000).0, 1000).0
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_arith))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    #[test]
    fn divides_like_the_64_bit_operators() {
        assert_eq!(div_small(0, 7), (0, 0));
        assert_eq!(
            div_small(u64::MAX, 10),
            (u64::MAX / 10, (u64::MAX % 10) as u16)
        );
        assert_eq!(div_small(u64::MAX, 65535), (u64::MAX / 65535, 0));
        assert_eq!(
            div_small(0x1234_5678_9abc_def0, 1000),
            (
                0x1234_5678_9abc_def0 / 1000,
                (0x1234_5678_9abc_def0u64 % 1000) as u16
            )
        );
        assert_eq!(div_small(5, 0), (u64::MAX, 0));
        assert_eq!(ns_to_ms(1_999_999), 1);
        assert_eq!(ns_to_ms(u64::MAX), u64::MAX / 1_000_000);
    }
}
