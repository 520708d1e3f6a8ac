// SPDX-License-Identifier: GPL-2.0

//! Which process may be migrated, and by whom: the rules `ssictl migrate PID NODE`
//! answers with, and the message the user reads when it refuses.
//!
//! The permission rule is ptrace's (`ptrace_may_access(PTRACE_MODE_ATTACH_REALCREDS)`,
//! which modules cannot call): moving a process reads and rewrites all of its memory,
//! so whoever may attach a debugger to it may move it. The C shim of `ssi_migrate` only
//! reads the facts below from the task (under the locks they need); the decision and
//! its wording are made here, where the host tests can check every case.

use core::fmt;

/// What `ssi_migrate` reads about the process to migrate, as seen by the caller
/// (`struct ssi_target_facts`, filled by `ssi_mig_target_facts` in `task_shim.c`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TargetFacts {
    /// Its PID in the caller's namespace (for messages).
    pub pid: u32,
    /// It is a kernel thread.
    pub kernel_thread: bool,
    /// It is init (of the whole system or of the caller's PID namespace).
    pub init: bool,
    /// It is the caller itself.
    pub is_caller: bool,
    /// It is exiting or has no memory left.
    pub exiting: bool,
    /// The caller's real uid and gid equal all of its uids and gids.
    pub caller_has_its_ids: bool,
    /// It is dumpable by its owner (not setuid, not marked undumpable).
    pub dumpable: bool,
    /// The caller has `CAP_SYS_PTRACE` over its user namespace.
    pub caller_may_ptrace: bool,
    /// It is its process's main thread (its thread id is the process id).
    pub group_leader: bool,
    /// Its number of threads.
    pub threads: u32,
}

// The C mirror asserts the same size and offset.
const _: () = assert!(core::mem::size_of::<TargetFacts>() == 16);
const _: () = assert!(core::mem::offset_of!(TargetFacts, threads) == 12);

/// Why a process may not be migrated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Kernel threads have no user memory to move.
    KernelThread { pid: u32 },
    /// Init holds its node's process tree.
    Init { pid: u32 },
    /// The migration ioctl waits for the process it moves.
    Itself,
    /// Nothing left to move.
    Exiting { pid: u32 },
    /// The caller could not ptrace it.
    NotPermitted { pid: u32 },
    /// The main thread of a multi-threaded process, without asking for that thread
    /// alone: moving every thread of a process at once is not supported yet.
    Threads { pid: u32, threads: u32 },
}

/// What moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hop {
    /// The whole (single-threaded) process.
    Process,
    /// One thread of a multi-threaded process; its siblings stay where they are.
    Thread,
}

use super::errno::{EBUSY, EINVAL, EPERM, ESRCH};

impl Refusal {
    /// The negative errno the ioctl returns.
    pub fn errno(&self) -> i32 {
        -match self {
            Refusal::KernelThread { .. } | Refusal::Itself => EINVAL,
            Refusal::Init { .. } | Refusal::NotPermitted { .. } => EPERM,
            Refusal::Exiting { .. } => ESRCH,
            Refusal::Threads { .. } => EBUSY,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Refusal::KernelThread { pid } => write!(f, "pid {} is a kernel thread", pid),
            Refusal::Init { pid } => write!(f, "pid {} is init: it cannot leave its node", pid),
            Refusal::Itself => f.write_str("a process cannot migrate itself with this call"),
            Refusal::Exiting { pid } => write!(f, "pid {} is exiting", pid),
            Refusal::NotPermitted { pid } => write!(
                f,
                "not allowed to trace pid {} (needs its uid or CAP_SYS_PTRACE)",
                pid
            ),
            Refusal::Threads { pid, threads } => write!(
                f,
                "pid {} has {} threads: move one thread at a time (its thread id, or \
                 --thread for the main one)",
                pid, threads
            ),
        }
    }
}

/// Whether the caller may migrate the task described by `t`, and what moves: a
/// single-threaded process moves whole; one thread of a multi-threaded one moves alone
/// when it is not the main thread or `thread_only` asks for it. The first rule that
/// refuses is reported.
pub fn check(t: &TargetFacts, thread_only: bool) -> Result<Hop, Refusal> {
    let pid = t.pid;
    if t.kernel_thread {
        return Err(Refusal::KernelThread { pid });
    }
    if t.init {
        return Err(Refusal::Init { pid });
    }
    if t.is_caller {
        return Err(Refusal::Itself);
    }
    if t.exiting {
        return Err(Refusal::Exiting { pid });
    }
    let may_trace = t.caller_may_ptrace || (t.caller_has_its_ids && t.dumpable);
    if !may_trace {
        return Err(Refusal::NotPermitted { pid });
    }
    if t.threads <= 1 {
        return Ok(Hop::Process);
    }
    if t.group_leader && !thread_only {
        return Err(Refusal::Threads {
            pid,
            threads: t.threads,
        });
    }
    Ok(Hop::Thread)
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_migrate_target))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::super::text::SliceWriter;
    use super::*;
    use core::fmt::Write;

    /// A process its owner may move.
    fn movable() -> TargetFacts {
        TargetFacts {
            pid: 42,
            caller_has_its_ids: true,
            dumpable: true,
            group_leader: true,
            threads: 1,
            ..TargetFacts::default()
        }
    }

    fn message(r: Refusal, buf: &mut [u8; 128]) -> usize {
        let mut w = SliceWriter::new(buf);
        assert!(write!(w, "{}", r).is_ok());
        w.len()
    }

    #[test]
    fn an_owned_dumpable_single_threaded_process_may_move() {
        assert_eq!(check(&movable(), false), Ok(Hop::Process));
        assert_eq!(check(&movable(), true), Ok(Hop::Process));
    }

    #[test]
    fn threads_of_a_multi_threaded_process_move_one_at_a_time() {
        let worker = TargetFacts {
            group_leader: false,
            threads: 4,
            ..movable()
        };
        assert_eq!(check(&worker, false), Ok(Hop::Thread));
        let main = TargetFacts {
            threads: 4,
            ..movable()
        };
        assert_eq!(
            check(&main, false),
            Err(Refusal::Threads {
                pid: 42,
                threads: 4
            })
        );
        assert_eq!(check(&main, true), Ok(Hop::Thread));
        // Permission comes first.
        let others = TargetFacts {
            caller_has_its_ids: false,
            ..worker
        };
        assert_eq!(
            check(&others, false),
            Err(Refusal::NotPermitted { pid: 42 })
        );
    }

    #[test]
    fn ptrace_rights_decide_permission() {
        let other_user = TargetFacts {
            caller_has_its_ids: false,
            ..movable()
        };
        assert_eq!(
            check(&other_user, false),
            Err(Refusal::NotPermitted { pid: 42 })
        );
        let setuid = TargetFacts {
            dumpable: false,
            ..movable()
        };
        assert_eq!(
            check(&setuid, false),
            Err(Refusal::NotPermitted { pid: 42 })
        );
        let with_cap = TargetFacts {
            caller_may_ptrace: true,
            ..other_user
        };
        assert_eq!(check(&with_cap, false), Ok(Hop::Process));
        let setuid_with_cap = TargetFacts {
            caller_may_ptrace: true,
            ..setuid
        };
        assert_eq!(check(&setuid_with_cap, false), Ok(Hop::Process));
    }

    #[test]
    fn what_cannot_move_is_refused_even_with_ptrace_rights() {
        let root = TargetFacts {
            caller_may_ptrace: true,
            ..movable()
        };
        let cases = [
            (
                TargetFacts {
                    kernel_thread: true,
                    ..root
                },
                Refusal::KernelThread { pid: 42 },
            ),
            (
                TargetFacts { init: true, ..root },
                Refusal::Init { pid: 42 },
            ),
            (
                TargetFacts {
                    is_caller: true,
                    ..root
                },
                Refusal::Itself,
            ),
            (
                TargetFacts {
                    exiting: true,
                    ..root
                },
                Refusal::Exiting { pid: 42 },
            ),
            (
                TargetFacts { threads: 3, ..root },
                Refusal::Threads {
                    pid: 42,
                    threads: 3,
                },
            ),
        ];
        for (facts, refusal) in cases {
            assert_eq!(check(&facts, false), Err(refusal));
        }
    }

    #[test]
    fn a_kernel_thread_is_reported_before_anything_else() {
        let everything = TargetFacts {
            kernel_thread: true,
            init: true,
            is_caller: true,
            exiting: true,
            threads: 0,
            ..TargetFacts::default()
        };
        assert_eq!(
            check(&everything, true),
            Err(Refusal::KernelThread { pid: 0 })
        );
    }

    #[test]
    fn refusals_carry_their_errno_and_say_why() {
        let mut buf = [0u8; 128];
        let n = message(Refusal::Threads { pid: 7, threads: 2 }, &mut buf);
        assert_eq!(
            &buf[..n],
            &b"pid 7 has 2 threads: move one thread at a time (its thread id, or --thread \
               for the main one)"[..]
        );
        let n = message(Refusal::NotPermitted { pid: 9 }, &mut buf);
        assert_eq!(
            &buf[..n],
            b"not allowed to trace pid 9 (needs its uid or CAP_SYS_PTRACE)"
        );
        assert_eq!(Refusal::Threads { pid: 7, threads: 2 }.errno(), -EBUSY);
        assert_eq!(Refusal::NotPermitted { pid: 9 }.errno(), -EPERM);
        assert_eq!(Refusal::Init { pid: 1 }.errno(), -EPERM);
        assert_eq!(Refusal::Exiting { pid: 9 }.errno(), -ESRCH);
        assert_eq!(Refusal::Itself.errno(), -EINVAL);
        assert_eq!(Refusal::KernelThread { pid: 2 }.errno(), -EINVAL);
    }
}
