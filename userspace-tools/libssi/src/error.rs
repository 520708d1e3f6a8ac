//! Errors: an errno and a message that says what failed and, for the usual errnos, why.
//!
//! Every fallible function of this crate returns an [`io::Result`]. Its error's
//! [`io::Error::kind`] is the kind of the errno, its text explains the failure, and
//! [`errno`] recovers the errno itself.

use std::fmt;
use std::io;

/// What was being done when an errno came back; selects the explanation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Opening the control device.
    OpenDevice,
    /// `SSI_IOC_STATUS` (the ABI check).
    Status,
    /// `SSI_IOC_REGION_CREATE`.
    Create,
    /// `SSI_IOC_REGION_OPEN`.
    Open,
    /// `SSI_IOC_REGION_REMOVE`.
    Remove,
    /// `SSI_IOC_REGIONS`.
    List,
    /// `mmap` of a region.
    Map,
}

/// The error inside the [`io::Error`]s this crate returns: an errno and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    errno: i32,
    message: String,
}

impl Error {
    /// An error with `errno` and a complete message.
    pub(crate) fn new(errno: i32, message: impl Into<String>) -> Self {
        Self {
            errno,
            message: message.into(),
        }
    }

    /// `what` failed with `errno`: the message is `what: <strerror> (<explanation>)`.
    pub(crate) fn os(op: Op, what: &str, errno: i32) -> Self {
        let os = io::Error::from_raw_os_error(errno);
        let message = match explain(op, errno) {
            Some(hint) => format!("{what}: {os} ({hint})"),
            None => format!("{what}: {os}"),
        };
        Self { errno, message }
    }

    /// The errno (`libc::E*`).
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        io::Error::new(io::Error::from_raw_os_error(e.errno).kind(), e)
    }
}

/// The errno of an error returned by this crate (or of any OS error).
pub fn errno(e: &io::Error) -> Option<i32> {
    e.raw_os_error().or_else(|| {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<Error>())
            .map(Error::errno)
    })
}

/// A `libc::EINVAL` error for an argument refused before asking the kernel.
pub(crate) fn invalid(message: impl Into<String>) -> io::Error {
    Error::new(libc::EINVAL, message).into()
}

/// Why `op` may have failed with `errno`, when the errno alone does not say.
fn explain(op: Op, errno: i32) -> Option<&'static str> {
    use Op::*;
    Some(match (op, errno) {
        (OpenDevice, libc::ENOENT) | (OpenDevice, libc::ENXIO) | (OpenDevice, libc::ENODEV) => {
            "is the ssi_core module loaded?"
        }
        (OpenDevice, libc::EACCES) | (OpenDevice, libc::EPERM) => {
            "the device must be readable and writable by this user: run as root or ask for access"
        }
        (Status, _) => "is ssi_core built from another version of the ABI?",
        (Create, libc::EEXIST) => "a region of that name already exists",
        (Create, libc::EINVAL) => {
            "invalid name, size or mode: the size must be a non-zero multiple of 4096 \
             (at most 4G) and the mode at most 0777"
        }
        (Create, libc::ENOSPC) => "no room for another region",
        (Open, libc::ENOENT) | (Remove, libc::ENOENT) => "no region of that name",
        (Open, libc::EACCES) => "the region's permission bits do not allow this user",
        (Open, libc::EINVAL) | (Remove, libc::EINVAL) => "invalid region name or flags",
        (Remove, libc::EPERM) | (Remove, libc::EACCES) => {
            "only the region's owner or root may remove it"
        }
        (Map, libc::EACCES) => "the region was opened read-only: open it writable to map it so",
        (Map, libc::EINVAL) => {
            "regions are mapped MAP_SHARED, at a page-aligned offset within their size"
        }
        (Map, libc::ENODEV) => "this file cannot be mapped (is it a region?)",
        (Map, libc::ENOMEM) => "no room in the address space, or out of memory",
        (_, libc::EHOSTDOWN) => "the region's home node, or the cluster's leader, is down",
        (_, libc::ETIMEDOUT) | (_, libc::EHOSTUNREACH) | (_, libc::ENOTCONN) => {
            "the node that keeps the region (its home, or the cluster's leader) is unreachable"
        }
        (_, libc::EAGAIN) => "the cluster is busy or has no leader yet: try again",
        (_, libc::ENOTTY) => "ssi_core does not know this request: is it older than this tool?",
        (_, libc::EBADF) => "the control device must be open for reading and writing",
        (_, libc::EPERM) => "not permitted: run as root",
        (_, libc::EIDRM) => {
            "the region's page directory is gone (ssi_core was reloaded on its home node): \
             remove and re-create it"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_errno_through_io_error() {
        let e: io::Error = Error::os(Op::Create, "region create a", libc::EEXIST).into();
        assert_eq!(errno(&e), Some(libc::EEXIST));
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        let text = e.to_string();
        assert!(text.starts_with("region create a: File exists"), "{text}");
        assert!(
            text.ends_with("(a region of that name already exists)"),
            "{text}"
        );
        // Plain OS errors keep theirs too.
        assert_eq!(
            errno(&io::Error::from_raw_os_error(libc::EIO)),
            Some(libc::EIO)
        );
        assert_eq!(errno(&io::Error::other("x")), None);
    }

    #[test]
    fn the_usual_errnos_are_explained() {
        let msg = |op, errno| Error::os(op, "x", errno).to_string();
        assert!(msg(Op::Open, libc::ENOENT).contains("no region of that name"));
        assert!(msg(Op::Remove, libc::ENOENT).contains("no region of that name"));
        assert!(msg(Op::Open, libc::EACCES).contains("permission bits"));
        assert!(msg(Op::Map, libc::EACCES).contains("read-only"));
        assert!(msg(Op::Open, libc::EHOSTDOWN).contains("home node"));
        assert!(msg(Op::Create, libc::EINVAL).contains("multiple of 4096"));
        assert!(msg(Op::Map, libc::EINVAL).contains("MAP_SHARED"));
        assert!(msg(Op::OpenDevice, libc::ENOENT).contains("ssi_core module loaded"));
        assert!(msg(Op::Remove, libc::EPERM).contains("owner or root"));
        assert!(msg(Op::Open, libc::EIDRM).contains("re-create"));
        // An errno without an explanation is just the OS's text.
        assert_eq!(
            msg(Op::List, libc::EIO),
            "x: Input/output error (os error 5)"
        );
        let e = invalid("bad");
        assert_eq!(errno(&e), Some(libc::EINVAL));
        assert_eq!(e.to_string(), "bad");
    }
}
