// SPDX-License-Identifier: GPL-2.0

//! Random numbers from the kernel's generator (the kernel crate has no wrapper yet):
//! session numbers, incarnations, keys.

/// A random `u32`.
pub(crate) fn random_u32() -> u32 {
    // SAFETY: No preconditions; may be called from any context.
    unsafe { kernel::bindings::get_random_u32() }
}
