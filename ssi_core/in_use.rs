// SPDX-License-Identifier: GPL-2.0

//! Counted uses of registered ops tables (transports, services).
//!
//! Core calls a registered table without holding the registry lock (calls may sleep,
//! and the registered module calls back into core). A [`Use`], taken under the
//! registry lock, keeps the table valid; unregistering removes the entry under the
//! lock and then [`Counted::wait_unused`] until no use is left.

use core::ops::Deref;
use core::sync::atomic::{AtomicUsize, Ordering};

use kernel::{prelude::*, sync::Arc, time::Delta};

/// A registered item and the number of uses in flight.
pub(crate) struct Counted<T> {
    item: T,
    users: AtomicUsize,
}

impl<T> Counted<T> {
    /// A registry entry for `item`.
    pub(crate) fn new(item: T) -> Result<Arc<Self>> {
        Ok(Arc::new(
            Self {
                item,
                users: AtomicUsize::new(0),
            },
            GFP_KERNEL,
        )?)
    }

    /// The item, for calls made under the registry lock.
    pub(crate) fn item(&self) -> &T {
        &self.item
    }

    /// Starts a use (call with the registry lock held, the entry still listed).
    pub(crate) fn start_use(this: &Arc<Self>) -> Use<T> {
        this.users.fetch_add(1, Ordering::Acquire);
        Use(this.clone())
    }

    /// Sleeps until no use is left (the entry is no longer listed, so none starts).
    /// `what` names the entry in the warning printed if that takes over 5 s.
    pub(crate) fn wait_unused(&self, what: &str, id: u32) {
        let mut waited_ms = 0u32;
        while self.users.load(Ordering::Acquire) != 0 {
            kernel::time::delay::fsleep(Delta::from_millis(1));
            waited_ms += 1;
            if waited_ms == 5000 {
                pr_warn!("{} {}: still in use after 5 s, waiting\n", what, id);
            }
        }
    }
}

/// A use of a registered item: it stays registered while this exists.
pub(crate) struct Use<T>(Arc<Counted<T>>);

impl<T> Deref for Use<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0.item
    }
}

impl<T> Drop for Use<T> {
    fn drop(&mut self) {
        self.0.users.fetch_sub(1, Ordering::Release);
    }
}
