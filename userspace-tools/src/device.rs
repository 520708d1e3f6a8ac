//! Opening `/dev/ssi` for ssictl's commands, and what the errnos every command can get
//! mean. The requests themselves are `libssi::Device`'s, shared with `ssi-memtest` and
//! other programs.

use std::io;

pub use libssi::{Device, DEFAULT_DEVICE};

/// Opens the control device and checks that the kernel speaks this ABI version; the
/// error explains the usual causes (module not loaded, no access, another ABI).
pub fn open(path: &str) -> Result<Device, String> {
    Device::open_path(path).map_err(|e| e.to_string())
}

/// The explanation of errnos that mean the same for every ioctl (with a leading space),
/// or "".
pub fn common_hint(errno: Option<i32>) -> &'static str {
    match errno {
        Some(libc::EPERM) => " (needs CAP_SYS_ADMIN: run as root)",
        Some(libc::ENOTTY) => " (kernel module too old for this ssictl?)",
        _ => "",
    }
}

/// `what: error (hint)` for a failed node request (node add, remove, list).
pub fn node_error(what: &str, e: &io::Error) -> String {
    let hint = match e.raw_os_error() {
        Some(libc::EEXIST) => " (already configured)",
        Some(libc::ENOENT) => " (no such node configured)",
        Some(libc::EINVAL) => " (invalid node id or address; see dmesg)",
        other => common_hint(other),
    };
    format!("{what}: {e}{hint}")
}
