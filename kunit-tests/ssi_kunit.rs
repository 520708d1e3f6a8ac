// SPDX-License-Identifier: GPL-2.0

//! KUnit suites of ssi, built into a UML kernel by `scripts/kunit.sh`.
//!
//! Compiles the shared `rust/src` files exactly as the modules do (`#[path]` includes
//! under a `shared` module), with the kernel's rustc, flags and `core`. Their
//! `#[kunit_tests]` suites are gated on `CONFIG_KUNIT` and register themselves.
//! `scripts/kunit.sh` copies this directory and `rust/src` side by side into the
//! throwaway kernel tree, so the relative paths below hold there as in the repository.

use kernel::prelude::*;

mod shared;

/// Checks that the kernel's own ioctl encoding agrees with the shared one: the kernel
/// answers the number that userspace computes.
#[kunit_tests(ssi_kernel_abi)]
mod tests {
    use super::shared::ioctl::{SsiStatus, SSI_IOC_MAGIC, SSI_IOC_STATUS};

    #[test]
    fn shared_ioctl_number_matches_kernel_ior() {
        assert_eq!(
            SSI_IOC_STATUS,
            kernel::ioctl::_IOR::<SsiStatus>(SSI_IOC_MAGIC, 1)
        );
    }
}
