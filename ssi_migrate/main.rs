// SPDX-License-Identifier: GPL-2.0

//! ssi_migrate: process migration for ssi. Snapshots a task's registers, rebuilds its
//! address space on the destination node and faults its pages in from the origin.
//!
//! Today it registers with `ssi_core` as the node's migration engine and keeps the
//! count of migrations; the migrate ioctl comes with the migration issue.

use core::fmt::{self, Write};

use kernel::{prelude::*, sync::Arc};

#[path = "../rust/kmod/core_client.rs"]
#[allow(dead_code)]
mod core_client;
#[path = "../rust/kmod/errno.rs"]
#[allow(dead_code)]
mod errno;
mod shared;

use core_client::{Describe, MigrateRegistration, Service, ServiceRegistration, SliceWriter};

module! {
    type: SsiMigrate,
    name: "ssi_migrate",
    authors: ["ssi developers"],
    description: "ssi single-system-image cluster: process migration",
    license: "GPL",
}

/// The migration engine.
struct MigrateEngine {
    node: u32,
}

impl Describe for MigrateEngine {
    fn describe(&self, out: &mut SliceWriter<'_>) -> fmt::Result {
        write!(out, "engine on node {}", self.node)
    }
}

/// The engine's service: other nodes ask it what it is before they migrate to it.
impl Service for MigrateEngine {
    const ID: u16 = shared::service::ids::MIGRATE;
    const NAME: &'static str = "migrate";

    fn handle(&self, _node: u32, req: &[u8], resp: &mut [u8]) -> Result<usize> {
        match req {
            b"probe" => {
                let mut w = SliceWriter::new(resp);
                self.describe(&mut w).map_err(|_| EMSGSIZE)?;
                write!(w, ", ABI v{}", shared::ioctl::SSI_ABI_VERSION).map_err(|_| EMSGSIZE)?;
                Ok(w.len())
            }
            _ => Err(EINVAL),
        }
    }
}

struct SsiMigrate {
    // Dropped in declaration order: the service goes before the engine registration.
    _service: ServiceRegistration<MigrateEngine>,
    _registration: MigrateRegistration<MigrateEngine>,
}

impl kernel::Module for SsiMigrate {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let node = core_client::node_id();
        let engine = Arc::new(MigrateEngine { node }, GFP_KERNEL)?;
        let registration = MigrateRegistration::new(module, engine.clone())?;
        let service = ServiceRegistration::new(module, engine)?;
        pr_info!("migration engine up on node {}\n", node);
        Ok(Self {
            _service: service,
            _registration: registration,
        })
    }
}
