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

/// `EOPNOTSUPP`: the transport cannot do this.
pub(crate) fn eopnotsupp() -> Error {
    from_positive(bindings::EOPNOTSUPP)
}

/// `ENOTCONN`: no link to that node.
pub(crate) fn enotconn() -> Error {
    from_positive(bindings::ENOTCONN)
}

/// `EHOSTDOWN`: the node is configured but not up.
pub(crate) fn ehostdown() -> Error {
    from_positive(bindings::EHOSTDOWN)
}

/// `EHOSTUNREACH`: no transport reaches the node.
pub(crate) fn ehostunreach() -> Error {
    from_positive(bindings::EHOSTUNREACH)
}

/// `ENOBUFS`: a queue is full.
pub(crate) fn enobufs() -> Error {
    from_positive(bindings::ENOBUFS)
}

/// `EPROTO`: the peer answered something that makes no sense.
pub(crate) fn eproto() -> Error {
    from_positive(bindings::EPROTO)
}

/// Rebuilds an error from a positive errno a peer sent; `EIO` for nonsense.
pub(crate) fn from_peer(code: u32) -> Error {
    if code == 0 || code > 4095 {
        return kernel::error::code::EIO;
    }
    from_positive(code)
}

/// `EIDRM`: the region was removed (or died with its home).
pub(crate) fn eidrm() -> Error {
    from_positive(bindings::EIDRM)
}

/// `ECONNREFUSED`: nobody takes it on that node (no migration daemon).
pub(crate) fn econnrefused() -> Error {
    from_positive(bindings::ECONNREFUSED)
}

/// `ECONNRESET`: the other side went away mid-way.
pub(crate) fn econnreset() -> Error {
    from_positive(bindings::ECONNRESET)
}

/// `ECANCELED`: the operation was called off.
pub(crate) fn ecanceled() -> Error {
    from_positive(bindings::ECANCELED)
}

/// `EALREADY`: already in progress or done.
pub(crate) fn ealready() -> Error {
    from_positive(bindings::EALREADY)
}

/// `ESHUTDOWN`: the module is going away.
pub(crate) fn eshutdown() -> Error {
    from_positive(bindings::ESHUTDOWN)
}

/// `ESTALE`: the file a node opened by name is not the one another node named.
pub(crate) fn estale() -> Error {
    from_positive(bindings::ESTALE)
}
