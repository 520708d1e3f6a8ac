// SPDX-License-Identifier: GPL-2.0

//! The kernel crate's byte-level traits for the plain structs of `rust/src`.
//!
//! The structs that cross `/dev/ssi` or the wire are defined in the host crate, which
//! has no `kernel` crate, so they carry the host-side promise `PlainData` instead
//! (`rust/src/ioctl.rs`: `#[repr(C)]`, no padding, every bit pattern valid). Each module
//! turns that promise into `AsBytes`, `FromBytes` and `Zeroable` for the types it copies,
//! with one [`kernel_plain_data!`] list instead of an `unsafe impl` per trait and type.

/// Implements `AsBytes`, `FromBytes` and `Zeroable` for each listed type, which must be
/// `PlainData` (checked at compile time).
macro_rules! kernel_plain_data {
    ($($t:ty),* $(,)?) => {
        $(
            const _: () = {
                const fn is_plain_data<T: crate::shared::ioctl::PlainData>() {}
                is_plain_data::<$t>()
            };
            // SAFETY: `PlainData` (checked above) is a `#[repr(C)]` struct without padding,
            // so every byte of a value is initialised.
            unsafe impl kernel::transmute::AsBytes for $t {}
            // SAFETY: `PlainData`: every bit pattern is a valid value.
            unsafe impl kernel::transmute::FromBytes for $t {}
            // SAFETY: `PlainData`: every bit pattern is valid, all zeros included.
            unsafe impl pin_init::Zeroable for $t {}
        )*
    };
}
