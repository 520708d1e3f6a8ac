// SPDX-License-Identifier: GPL-2.0

//! Counted task references, `ARef<kernel::task::Task>`, for the ways the modules find a
//! task that the kernel crate does not offer yet: by PID, and the caller as an owned
//! reference that can outlive the call.

use core::ffi::c_int;
use core::ptr::NonNull;

use kernel::{bindings, current, sync::aref::ARef, task::Task};

/// The task with this PID in the caller's PID namespace.
pub(crate) fn task_by_vpid(pid: u32) -> Option<ARef<Task>> {
    let nr = c_int::try_from(pid).ok()?;
    // SAFETY: No preconditions; returns a counted `struct pid` or null.
    let found = NonNull::new(unsafe { bindings::find_get_pid(nr) })?;
    // SAFETY: `found` is a valid `struct pid` we hold a reference to.
    let task = unsafe { bindings::get_pid_task(found.as_ptr(), bindings::pid_type_PIDTYPE_PID) };
    // SAFETY: Drops the reference `find_get_pid` took.
    unsafe { bindings::put_pid(found.as_ptr()) };
    let task = NonNull::new(task.cast::<Task>())?;
    // SAFETY: `get_pid_task` returned a counted reference, which the `ARef` takes over;
    // `Task` is a transparent wrapper of `struct task_struct`.
    Some(unsafe { ARef::from_raw(task) })
}

/// The calling task, counted.
pub(crate) fn current_task() -> ARef<Task> {
    let me: &Task = current!();
    ARef::from(me)
}
