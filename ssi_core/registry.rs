// SPDX-License-Identifier: GPL-2.0

//! What the other ssi modules register with core: transports and the migration engine.
//!
//! One global mutex protects the registry. Every use of a registered ops table happens
//! with it held, so once `unregister` has returned, core never touches that table again
//! and its module may go away.

use kernel::{
    prelude::*,
    sync::{global_lock, Arc, SetOnce},
};

use crate::errno;
use crate::in_use::{Counted, Use};
use crate::ops::{MigrateOpsRef, TransportOpsRef};
use crate::shared::ioctl::{
    fill_str, name_str, SsiStatus, SSI_ABI_VERSION, SSI_MAX_TRANSPORTS, SSI_STATE_LEN,
};
use crate::shared::migrate_abi::SSI_MIGRATE_OPS_VERSION;
use crate::shared::transport::{RegisterError, SsiTransportOps, TransportKind, TransportTable};

/// A counted use of a registered transport: its ops stay valid while this exists
/// (see `in_use.rs`).
pub(crate) type TransportUse = Use<TransportOpsRef>;

/// What the messaging layer does when transports come and go: the registry is below
/// it and does not call it by name.
pub(crate) struct TransportHooks {
    /// A transport registered (called with a use of it, no lock held).
    pub(crate) added: fn(&TransportUse),
    /// A transport unregistered and no call into it is left: its links are down.
    pub(crate) removed: fn(u32),
}

static HOOKS: SetOnce<TransportHooks> = SetOnce::new();

/// Sets the hooks; once, at module init, before any transport can register.
pub(crate) fn set_hooks(hooks: TransportHooks) {
    if !HOOKS.populate(hooks) {
        pr_warn!("registry: second transport hooks ignored\n");
    }
}

/// Everything registered with core.
pub(crate) struct Registry {
    transports: TransportTable<Arc<Counted<TransportOpsRef>>, SSI_MAX_TRANSPORTS>,
    migrate: Option<Arc<Counted<MigrateOpsRef>>>,
}

impl Registry {
    const fn new() -> Self {
        Self {
            transports: TransportTable::new(),
            migrate: None,
        }
    }
}

global_lock! {
    // SAFETY: `init` runs first in the module initialiser, before `/dev/ssi`, `/proc/ssi`
    // or the exported symbols can be reached.
    unsafe(uninit) static REGISTRY: Mutex<Registry> = Registry::new();
}

/// Initialises the registry lock. Called once, first thing in module init.
pub(crate) fn init() {
    // SAFETY: Called exactly once, from the module initialiser, before any other use.
    unsafe { REGISTRY.init() };
}

fn register_errno(e: RegisterError) -> Error {
    match e {
        RegisterError::UnsupportedVersion => errno::eprotonosupport(),
        RegisterError::UnknownKind | RegisterError::BadName => EINVAL,
        RegisterError::Duplicate => EEXIST,
        RegisterError::Full => ENOSPC,
    }
}

/// Registers a transport; returns its id. Then asks it to connect the configured peers.
pub(crate) fn register_transport(ops: TransportOpsRef) -> Result<u32> {
    let (version, kind, name) = (ops.version(), ops.kind(), ops.name());
    let shown = name_str(&name).unwrap_or("<invalid>");
    let entry = Counted::new(ops)?;
    let mut reg = REGISTRY.lock();
    match reg.transports.register(version, kind, &name, entry) {
        Ok(id) => {
            let t = reg
                .transports
                .iter()
                .find(|e| e.id == id)
                .map(|e| Counted::start_use(&e.payload));
            drop(reg);
            pr_info!(
                "transport '{}' registered (id {}, ops v{})\n",
                shown,
                id,
                version
            );
            if let (Some(t), Some(hooks)) = (t, HOOKS.as_ref()) {
                (hooks.added)(&t);
            }
            Ok(id)
        }
        Err(e) => {
            pr_err!(
                "transport '{}' refused: {:?} (ops v{}, kind {}; core expects ops v{})\n",
                shown,
                e,
                version,
                kind,
                crate::shared::transport::SSI_TRANSPORT_OPS_VERSION
            );
            Err(register_errno(e))
        }
    }
}

/// Unregisters a transport by id. Unknown ids are reported and ignored. Waits until no
/// call into it (nor upcall from it) is in flight, then takes its links down.
pub(crate) fn unregister_transport(id: u32) {
    let removed = REGISTRY.lock().transports.unregister(id);
    let Some(e) = removed else {
        pr_warn!("unregister of unknown transport id {}\n", id);
        return;
    };
    // Upcalls in flight hold a use: once none is left, no link of this transport can
    // come back, and its links go down.
    e.payload.wait_unused("transport id", id);
    if let Some(hooks) = HOOKS.as_ref() {
        (hooks.removed)(id);
    }
    pr_info!(
        "transport '{}' unregistered (id {})\n",
        name_str(&e.name).unwrap_or("?"),
        id
    );
}

/// A use of transport `id`, if it is registered.
pub(crate) fn transport(id: u32) -> Option<TransportUse> {
    let reg = REGISTRY.lock();
    let found = reg
        .transports
        .iter()
        .find(|e| e.id == id)
        .map(|e| Counted::start_use(&e.payload));
    found
}

/// Uses of every registered transport (for telling them all about a node).
pub(crate) fn all_transports() -> KVec<TransportUse> {
    let reg = REGISTRY.lock();
    let mut v = KVec::new();
    for e in reg.transports.iter() {
        // A failed allocation only means fewer transports are told; they learn about
        // nodes again when they re-register.
        let _ = v.push(Counted::start_use(&e.payload), GFP_KERNEL);
    }
    v
}

/// The id of the registered transport whose ops table is at `ops`, with a use that
/// keeps it registered while the caller acts on its upcall.
pub(crate) fn transport_by_ops(ops: *const SsiTransportOps) -> Option<(u32, TransportUse)> {
    let reg = REGISTRY.lock();
    let found = reg
        .transports
        .iter()
        .find(|e| e.payload.item().is(ops))
        .map(|e| (e.id, Counted::start_use(&e.payload)));
    found
}

/// Registers the migration engine (at most one).
pub(crate) fn register_migrate(ops: MigrateOpsRef) -> Result {
    if ops.version() != SSI_MIGRATE_OPS_VERSION {
        pr_err!(
            "migrate ops v{} refused: core expects v{}\n",
            ops.version(),
            SSI_MIGRATE_OPS_VERSION
        );
        return Err(errno::eprotonosupport());
    }
    let entry = Counted::new(ops)?;
    let mut reg = REGISTRY.lock();
    if reg.migrate.is_some() {
        pr_err!("a migration engine is registered already\n");
        return Err(EBUSY);
    }
    reg.migrate = Some(entry);
    pr_info!("migration engine registered\n");
    Ok(())
}

/// Unregisters the migration engine and waits until none of its ioctls or other calls
/// runs.
pub(crate) fn unregister_migrate() {
    let Some(m) = REGISTRY.lock().migrate.take() else {
        pr_warn!("unregister of a migration engine that was not registered\n");
        return;
    };
    m.wait_unused("migration engine", 0);
    pr_info!("migration engine unregistered\n");
}

/// A counted use of the migration engine, if one is registered: its ops stay valid
/// while this exists.
pub(crate) fn migrate_use() -> Option<Use<MigrateOpsRef>> {
    let reg = REGISTRY.lock();
    let found = reg.migrate.as_ref().map(Counted::start_use);
    found
}

/// Fills `st` (zeroed by the caller) with the node's status as `SSI_IOC_STATUS` reports
/// it, with each registered module's description of its state.
pub(crate) fn status(node_id: u32, st: &mut SsiStatus) {
    let reg = REGISTRY.lock();
    st.abi_version = SSI_ABI_VERSION;
    st.node_id = node_id;
    st.migrate_registered = u32::from(reg.migrate.is_some());
    st.transport_count = 0;
    let mut buf = [0u8; SSI_STATE_LEN];
    match &reg.migrate {
        Some(m) => fill_str(
            &mut st.migrate_state,
            describe_into(&mut buf, |b| m.item().describe(b)),
        ),
        None => fill_str(&mut st.migrate_state, ""),
    }
    for (slot, e) in st.transports.iter_mut().zip(reg.transports.iter()) {
        slot.id = e.id;
        slot.kind = e.kind as u32;
        slot.ops_version = e.ops_version;
        slot.flags = e.payload.item().flags();
        slot.name = e.name;
        fill_str(
            &mut slot.state,
            describe_into(&mut buf, |b| e.payload.item().describe(b)),
        );
        st.transport_count += 1;
    }
}

/// Number of registered transports.
pub(crate) fn transport_count() -> usize {
    REGISTRY.lock().transports.len()
}

/// Calls `f` for each registered transport with its id, kind, name and the one-line
/// description the transport gives of itself (written into `buf`).
pub(crate) fn for_each_transport(
    buf: &mut [u8],
    mut f: impl FnMut(u32, TransportKind, u32, &str, &str),
) {
    let reg = REGISTRY.lock();
    for e in reg.transports.iter() {
        let desc = describe_into(buf, |b| e.payload.item().describe(b));
        let flags = e.payload.item().flags();
        f(e.id, e.kind, flags, name_str(&e.name).unwrap_or("?"), desc);
    }
}

/// The migration engine's description, if one is registered.
pub(crate) fn with_migrate(buf: &mut [u8], f: impl FnOnce(Option<&str>)) {
    let reg = REGISTRY.lock();
    match &reg.migrate {
        Some(m) => f(Some(describe_into(buf, |b| m.item().describe(b)))),
        None => f(None),
    }
}

fn describe_into<'a>(
    buf: &'a mut [u8],
    describe: impl FnOnce(&mut [u8]) -> Result<usize>,
) -> &'a str {
    match describe(buf) {
        Ok(n) => core::str::from_utf8(&buf[..n.min(buf.len())]).unwrap_or("<not UTF-8>"),
        Err(_) => "<describe failed>",
    }
}
