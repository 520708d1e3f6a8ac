// SPDX-License-Identifier: GPL-2.0

//! Services: how another module (e.g. `ssi_migrate`) receives its own messages.
//!
//! A module registers a `#[repr(C)]` ops table for a service id with core's exported
//! `ssi_service_register()`. Core routes `wire::Message::Service` requests with that id
//! to the table's `handle` callback and sends back what it answers; the module sends
//! requests to other nodes with `ssi_service_call()`, which waits for the answer with a
//! timeout. Core treats the bytes as opaque.

use core::ffi::c_void;

use super::ioctl::SSI_NAME_LEN;

/// Version of [`SsiServiceOps`].
pub const SSI_SERVICE_OPS_VERSION: u32 = 2;

/// What `handle` returns when it answers later, with `ssi_service_reply()` and the
/// `token` it was given (`-EIOCBQUEUED`). The caller waits as for any answer, up to its
/// timeout; a handler that defers must eventually reply (or the caller times out).
pub const SSI_SERVICE_DEFERRED: isize = -529;

/// One buffer of `ssi_service_call_batch()`: a request (`len` bytes at `ptr`), or an
/// answer buffer (`len` bytes of room; on return, the answer's length or a negative
/// errno in `result`).
#[repr(C)]
pub struct SsiServiceBuf {
    pub ptr: *mut u8,
    pub len: usize,
    pub result: isize,
}

/// Most requests of one `ssi_service_call_batch()`.
pub const SSI_MAX_BATCH: usize = 32;

/// `ssi_service_call()` flag: signals do not end the wait (only its timeout does), for
/// calls made while handling a page fault.
pub const SSI_CALL_UNINTERRUPTIBLE: u32 = 1;

/// Most services registered at once.
pub const SSI_MAX_SERVICES: usize = 16;

/// Service ids given out so far (a registry of numbers, like ioctl magics).
pub mod ids {
    /// `ssi_migrate`: the migration engine (today: `probe`, its description).
    pub const MIGRATE: u16 = 1;
}

/// The ops table of a service (C ABI). Valid and unchanged until
/// `ssi_service_unregister()` with its id has returned.
#[repr(C)]
pub struct SsiServiceOps {
    /// Must be [`SSI_SERVICE_OPS_VERSION`].
    pub version: u32,
    /// The service id: non-zero, unique on the node.
    pub service: u16,
    /// Reserved, zero.
    pub flags: u16,
    /// NUL-terminated name, for listings and logs.
    pub name: [u8; SSI_NAME_LEN],
    /// The registering module's `struct module *`.
    pub owner: *mut c_void,
    /// Passed back to `handle`.
    pub ctx: *mut c_void,
    /// Handles a request of `len` bytes from `node`: writes the answer (at most `cap`
    /// bytes) to `resp` and returns its length, or returns a negative errno, which goes
    /// back to the caller, or [`SSI_SERVICE_DEFERRED`] to answer later with
    /// `ssi_service_reply(token, ...)`. Runs in the transport's receive context (process
    /// context): it may take mutexes but must not wait for other nodes.
    pub handle: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            node: u32,
            token: u64,
            req: *const u8,
            len: usize,
            resp: *mut u8,
            cap: usize,
        ) -> isize,
    >,
}

/// Why a service registration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceError {
    /// Another [`SSI_SERVICE_OPS_VERSION`].
    UnsupportedVersion,
    /// Id 0, reserved flags, or no handler.
    Invalid,
    /// That id is registered already.
    Duplicate,
    /// All [`SSI_MAX_SERVICES`] slots are taken.
    Full,
}

/// The registry's bookkeeping: which payload serves which id.
pub struct ServiceTable<T, const N: usize> {
    slots: [Option<(u16, T)>; N],
}

impl<T, const N: usize> ServiceTable<T, N> {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            slots: [const { None }; N],
        }
    }

    /// Registers `payload` for `service`.
    pub fn register(
        &mut self,
        version: u32,
        service: u16,
        flags: u16,
        has_handler: bool,
        payload: T,
    ) -> Result<(), ServiceError> {
        if version != SSI_SERVICE_OPS_VERSION {
            return Err(ServiceError::UnsupportedVersion);
        }
        if service == 0 || flags != 0 || !has_handler {
            return Err(ServiceError::Invalid);
        }
        if self.get(service).is_some() {
            return Err(ServiceError::Duplicate);
        }
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.is_none())
            .ok_or(ServiceError::Full)?;
        *slot = Some((service, payload));
        Ok(())
    }

    /// Removes `service`; returns its payload.
    pub fn unregister(&mut self, service: u16) -> Option<T> {
        let slot = self
            .slots
            .iter_mut()
            .find(|s| matches!(s, Some((id, _)) if *id == service))?;
        slot.take().map(|(_, p)| p)
    }

    /// The payload serving `service`.
    pub fn get(&self, service: u16) -> Option<&T> {
        self.slots
            .iter()
            .flatten()
            .find(|(id, _)| *id == service)
            .map(|(_, p)| p)
    }

    /// Registered (id, payload) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &T)> {
        self.slots.iter().flatten().map(|(id, p)| (*id, p))
    }
}

impl<T, const N: usize> Default for ServiceTable<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_service))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    #[test]
    fn registers_looks_up_and_unregisters() {
        let mut t = ServiceTable::<u32, 2>::new();
        assert_eq!(t.register(SSI_SERVICE_OPS_VERSION, 1, 0, true, 10), Ok(()));
        assert_eq!(t.register(SSI_SERVICE_OPS_VERSION, 7, 0, true, 70), Ok(()));
        assert_eq!(t.get(7), Some(&70));
        assert_eq!(t.get(2), None);
        assert_eq!(
            t.register(SSI_SERVICE_OPS_VERSION, 3, 0, true, 30),
            Err(ServiceError::Full)
        );
        assert_eq!(t.unregister(1), Some(10));
        assert_eq!(t.unregister(1), None);
        assert_eq!(t.register(SSI_SERVICE_OPS_VERSION, 3, 0, true, 30), Ok(()));
        assert_eq!(t.iter().count(), 2);
    }

    #[test]
    fn refuses_bad_registrations() {
        let mut t = ServiceTable::<u32, 4>::new();
        assert_eq!(
            t.register(SSI_SERVICE_OPS_VERSION + 1, 1, 0, true, 0),
            Err(ServiceError::UnsupportedVersion)
        );
        assert_eq!(
            t.register(SSI_SERVICE_OPS_VERSION, 0, 0, true, 0),
            Err(ServiceError::Invalid)
        );
        assert_eq!(
            t.register(SSI_SERVICE_OPS_VERSION, 1, 1, true, 0),
            Err(ServiceError::Invalid)
        );
        assert_eq!(
            t.register(SSI_SERVICE_OPS_VERSION, 1, 0, false, 0),
            Err(ServiceError::Invalid)
        );
        assert_eq!(t.register(SSI_SERVICE_OPS_VERSION, 1, 0, true, 0), Ok(()));
        assert_eq!(
            t.register(SSI_SERVICE_OPS_VERSION, 1, 0, true, 0),
            Err(ServiceError::Duplicate)
        );
    }
}
