// SPDX-License-Identifier: GPL-2.0

//! Errnos that `kernel::error::code` does not name yet.

use kernel::{bindings, error::Error};

fn from_positive(code: u32) -> Error {
    // errno values are small positive numbers; the conversion cannot truncate.
    Error::from_errno(-(code as i32))
}

/// `EPROTONOSUPPORT`: the peer speaks a protocol/ABI version we do not.
pub(crate) fn eprotonosupport() -> Error {
    from_positive(bindings::EPROTONOSUPPORT)
}
