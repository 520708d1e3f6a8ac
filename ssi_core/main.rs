// SPDX-License-Identifier: GPL-2.0

//! ssi_core: the heart of the ssi single-system-image cluster.
//!
//! Owns the node's identity, the registry of transports and of the migration engine
//! (C-ABI ops tables, see `ffi.rs`), the node table and membership, cluster messaging
//! (requests with timeouts, heartbeats), the replicated bookkeeping store, exposed
//! pages, SSI regions (cluster-wide shared memory kept coherent page by page), the
//! control device `/dev/ssi` and `/proc/ssi`.

use kernel::prelude::*;

// Macros first: they are visible only to the modules declared after them.
#[path = "../rust/kmod/core_abi.rs"]
#[macro_use]
mod core_abi;
#[path = "../rust/kmod/plain_data.rs"]
#[macro_use]
mod plain_data;

#[path = "../rust/kmod/caller.rs"]
mod caller;
mod calls;
#[path = "../rust/kmod/clock.rs"]
#[allow(dead_code)] // Each module reads the clock in the units it needs.
mod clock;
mod coherence;
mod device;
mod dispatch;
#[path = "../rust/kmod/errno.rs"]
#[allow(dead_code)]
mod errno;
mod ffi;
mod in_use;
mod kvstore;
mod nodes;
mod ops;
mod pages;
mod process_memory;
mod procfs;
#[path = "../rust/kmod/random.rs"]
mod random;
mod region_file;
mod region_vm;
mod regions;
mod registry;
mod services;
mod shared;
mod ticker;
mod traffic;
mod transmit;

use device::ControlDevice;
use procfs::ProcDir;
use shared::membership::{MAX_DOWN_AFTER_MS, MIN_DOWN_AFTER_MS};
use shared::node::NodeId;
use shared::text::U64;

module! {
    type: SsiCore,
    name: "ssi_core",
    authors: ["ssi developers"],
    description: "ssi single-system-image cluster: core",
    license: "GPL",
    params: {
        node_id: u32 {
            default: 0,
            description: "This node's id in the cluster (0..63)",
        },
        down_after_ms: u32 {
            default: 1000,
            description: "Silence (ms) after which a peer is declared down (500..60000; raise it where virtual machines stall)",
        },
    },
}

/// This node's id, as given by the `node_id` parameter (checked at load time).
pub(crate) fn node_id() -> u32 {
    *module_parameters::node_id.value()
}

/// Checks the `node_id` parameter.
fn checked_node_id() -> Result<NodeId> {
    NodeId::new(i64::from(node_id())).map_err(|e| {
        pr_err!(
            "node_id={} is invalid ({:?}): must be below {}\n",
            node_id(),
            e,
            shared::node::SSI_MAX_NODES
        );
        EINVAL
    })
}

/// Checks the `down_after_ms` parameter.
fn checked_down_after_ms() -> Result<u64> {
    let ms = u64::from(*module_parameters::down_after_ms.value());
    if !(MIN_DOWN_AFTER_MS..=MAX_DOWN_AFTER_MS).contains(&ms) {
        pr_err!(
            "down_after_ms={} is invalid: must be {}..{}\n",
            U64(ms),
            U64(MIN_DOWN_AFTER_MS),
            U64(MAX_DOWN_AFTER_MS)
        );
        return Err(EINVAL);
    }
    Ok(ms)
}

/// The cluster state behind messaging: started first, torn down last.
struct ClusterState {
    // Dropped in declaration order: the heartbeat stops before the tables go.
    _heartbeat: dispatch::Heartbeat,
    _tables: Tables,
}

impl ClusterState {
    fn start() -> Result<Self> {
        calls::init();
        services::init();
        kvstore::init()?;
        pages::init();
        regions::init();
        // The layers below call up only through these, set before anything can arrive.
        kvstore::listen(regions::on_kv_change);
        registry::set_hooks(registry::TransportHooks {
            added: dispatch::transport_added,
            removed: dispatch::transport_removed,
        });
        Ok(Self {
            _tables: Tables,
            _heartbeat: dispatch::start(),
        })
    }
}

/// Frees what the global tables hold (statics are never dropped). Transports are gone
/// by then: they use core's symbols, so core cannot unload while one is loaded.
struct Tables;

impl Drop for Tables {
    fn drop(&mut self) {
        regions::clear();
        pages::clear();
        kvstore::clear();
    }
}

#[pin_data]
struct SsiCore {
    // Dropped in declaration order: `/dev/ssi` goes first, then `/proc/ssi`, then the
    // cluster state.
    _device: ControlDevice,
    _proc: ProcDir,
    _cluster: ClusterState,
    node: NodeId,
}

impl kernel::InPlaceModule for SsiCore {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // Fields are initialised in this order and dropped in reverse on failure: the
        // registry exists before `/proc/ssi`, which exists before `/dev/ssi`.
        try_pin_init!(Self {
            node: checked_node_id()?,
            _cluster: {
                registry::init();
                nodes::init(checked_node_id()?, checked_down_after_ms()?);
                ClusterState::start()?
            },
            _proc: ProcDir::create()?,
            _device: ControlDevice::register()?,
        })
        .pin_chain(|this| {
            pr_info!(
                "node {} up (ABI v{})\n",
                this.node.get(),
                shared::ioctl::SSI_ABI_VERSION
            );
            Ok(())
        })
    }
}
