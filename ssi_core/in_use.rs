// SPDX-License-Identifier: GPL-2.0

//! Counted uses of registered ops tables (transports, services).
//!
//! Core calls a registered table without holding the registry lock (calls may sleep,
//! and the registered module calls back into core). A [`Use`], taken under the
//! registry lock, keeps the table valid; unregistering removes the entry under the
//! lock and then [`Counted::wait_unused`] until no use is left.

use core::ops::Deref;
use core::sync::atomic::{AtomicUsize, Ordering};

use kernel::{
    new_condvar, new_spinlock,
    prelude::*,
    sync::{Arc, CondVar, CondVarTimeoutResult, SpinLock},
    time::msecs_to_jiffies,
};

/// How long `wait_unused` waits before it warns that it still waits.
const WARN_AFTER_MS: u32 = 5000;

/// A registered item and the number of uses in flight.
#[pin_data]
pub(crate) struct Counted<T> {
    item: T,
    users: AtomicUsize,
    /// Held by the waiter from its check of `users` until it sleeps on `unused`, and by
    /// the last use to end around its wake-up, so that the wake-up cannot be lost. A
    /// spinlock, as a use may end wherever its holder runs.
    #[pin]
    waiting: SpinLock<()>,
    /// Signalled when the number of uses drops to zero.
    #[pin]
    unused: CondVar,
}

impl<T> Counted<T> {
    /// A registry entry for `item`.
    pub(crate) fn new(item: T) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                item,
                users: AtomicUsize::new(0),
                waiting <- new_spinlock!(()),
                unused <- new_condvar!("Counted::unused"),
            }? Error),
            GFP_KERNEL,
        )
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
    ///
    /// Not killable: the item may be freed only once nobody uses it, and its owner is
    /// unregistering it. A pending signal turns the wait uninterruptible rather than
    /// into a busy loop.
    pub(crate) fn wait_unused(&self, what: &str, id: u32) {
        let mut guard = self.waiting.lock();
        let mut interruptible = true;
        while self.users.load(Ordering::Acquire) != 0 {
            if !interruptible {
                self.unused.wait(&mut guard);
                continue;
            }
            match self
                .unused
                .wait_interruptible_timeout(&mut guard, msecs_to_jiffies(WARN_AFTER_MS))
            {
                CondVarTimeoutResult::Timeout => {
                    pr_warn!("{} {}: still in use after 5 s, waiting\n", what, id);
                    interruptible = false;
                }
                CondVarTimeoutResult::Signal { .. } => interruptible = false,
                CondVarTimeoutResult::Woken { .. } => {}
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
        if self.0.users.fetch_sub(1, Ordering::Release) == 1 {
            let _guard = self.0.waiting.lock();
            self.0.unused.notify_all();
        }
    }
}
