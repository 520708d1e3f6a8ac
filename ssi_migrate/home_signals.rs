// SPDX-License-Identifier: GPL-2.0

//! Signals a moved thread sends to its own process: they go to the process's home.
//!
//! On the node a thread moved to, its process's pid is the one it has at home
//! (`getpid()` answers it there, see `distributed.c`), so `kill(getpid(), sig)`,
//! `pthread_kill()` and `raise()` name that pid. A signal to the thread itself is
//! delivered there at once; any other goes to the home in a `Kill` message, and the
//! home delivers it as if sent there: to the process (the kernel picks a thread), or to
//! one thread, which, when it is away too, its stand-in forwards to where it runs.

use core::ffi::{c_int, c_long};

use kernel::prelude::*;

use crate::ffi;
use crate::link::{self, Wait};
use crate::shared::migrate_wire::MigMsg;

/// How long the home may take to answer.
const CALL_TIMEOUT_MS: u32 = 5000;

/// `kill()`/`tgkill()` by a moved thread here of its process `tgid` (its pid at home),
/// distributed process `process` homed on `home`: `tid` 0 for the whole process.
/// Returns 0 or a negative errno, as the system call does.
#[no_mangle]
extern "C" fn ssi_migrate_signal_home(
    process: u64,
    home: u32,
    tgid: u32,
    tid: u32,
    sig: c_int,
) -> c_long {
    let Ok(signo) = u32::try_from(sig) else {
        return c_long::from(EINVAL.to_errno());
    };
    let msg = MigMsg::Kill {
        process,
        tgid,
        tid,
        signo,
    };
    let mut resp = [0u8; 8];
    match link::call(home, &msg, &mut resp, CALL_TIMEOUT_MS, Wait::Interruptible) {
        Ok(_) => 0,
        Err(e) => c_long::from(e.to_errno()),
    }
}

/// `Kill` from `node`: a thread of distributed process `process` (homed here) that runs
/// on `node` signals its process or one of its threads.
pub(crate) fn on_kill(node: u32, process: u64, tgid: u32, tid: u32, signo: u32) -> Result<usize> {
    // Only a node that runs a thread of the process speaks for it.
    if !crate::leave::speaks_for(node, process) || node == crate::engine().node {
        return Err(EPERM);
    }
    ffi::dist_kill(process, tgid, tid, signo)?;
    Ok(0)
}
