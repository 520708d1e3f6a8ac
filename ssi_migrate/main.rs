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

use core_client::{Describe, MigrateRegistration, SliceWriter};

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

struct SsiMigrate {
    _registration: MigrateRegistration<MigrateEngine>,
}

impl kernel::Module for SsiMigrate {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let node = core_client::node_id();
        let engine = Arc::new(MigrateEngine { node }, GFP_KERNEL)?;
        let registration = MigrateRegistration::new(module, engine)?;
        pr_info!("migration engine up on node {}\n", node);
        Ok(Self {
            _registration: registration,
        })
    }
}
