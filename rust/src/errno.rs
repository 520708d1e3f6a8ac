// SPDX-License-Identifier: GPL-2.0

//! Linux's errno numbers that the pure logic answers with, positive, written once. They
//! are the same on every architecture ssi runs on (x86_64 and 32-bit ARM use
//! asm-generic's numbers).

/// Operation not permitted.
pub const EPERM: i32 = 1;
/// No such process.
pub const ESRCH: i32 = 3;
/// Try again (`EWOULDBLOCK`).
pub const EAGAIN: i32 = 11;
/// Out of memory.
pub const ENOMEM: i32 = 12;
/// Bad address.
pub const EFAULT: i32 = 14;
/// Device or resource busy.
pub const EBUSY: i32 = 16;
/// File exists.
pub const EEXIST: i32 = 17;
/// Invalid argument.
pub const EINVAL: i32 = 22;
/// Function not implemented.
pub const ENOSYS: i32 = 38;
/// Protocol error.
pub const EPROTO: i32 = 71;
/// Operation already in progress.
pub const EALREADY: i32 = 114;
