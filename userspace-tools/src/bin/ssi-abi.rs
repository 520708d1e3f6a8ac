//! ssi-abi: prints the `/dev/ssi` ioctl ABI of `rust/src/ioctl.rs` as JSON, for tests
//! that issue raw ioctls (malformed requests `ssictl` would refuse to send).
//!
//! The numbers and sizes come from the same definitions the kernel modules are built
//! from, so a test never carries a copied number that a change of the ABI would leave
//! behind: it reads them here and checks its own packing against `sizes`.
//!
//!     ssi-abi   ->  {"abi_version": 4, "ioctls": {"SSI_IOC_STATUS": 2221987073, ...},
//!                    "sizes": {"SsiRegion": 80, ...}}

use std::mem::size_of;

use serde_json::{json, Map, Value};
use ssi_shared::ioctl::*;

fn main() {
    let ioctls: Map<String, Value> = [
        ("SSI_IOC_STATUS", SSI_IOC_STATUS),
        ("SSI_IOC_NODE_ADD", SSI_IOC_NODE_ADD),
        ("SSI_IOC_NODE_REMOVE", SSI_IOC_NODE_REMOVE),
        ("SSI_IOC_NODES", SSI_IOC_NODES),
        ("SSI_IOC_PING", SSI_IOC_PING),
        ("SSI_IOC_KV_PUT", SSI_IOC_KV_PUT),
        ("SSI_IOC_KV_GET", SSI_IOC_KV_GET),
        ("SSI_IOC_PAGE_EXPOSE", SSI_IOC_PAGE_EXPOSE),
        ("SSI_IOC_PAGE_UNEXPOSE", SSI_IOC_PAGE_UNEXPOSE),
        ("SSI_IOC_PAGE_READ", SSI_IOC_PAGE_READ),
        ("SSI_IOC_SERVICE_CALL", SSI_IOC_SERVICE_CALL),
        ("SSI_IOC_REGION_CREATE", SSI_IOC_REGION_CREATE),
        ("SSI_IOC_REGION_OPEN", SSI_IOC_REGION_OPEN),
        ("SSI_IOC_REGION_REMOVE", SSI_IOC_REGION_REMOVE),
        ("SSI_IOC_REGIONS", SSI_IOC_REGIONS),
        ("SSI_IOC_MIGRATE", SSI_IOC_MIGRATE),
        ("SSI_IOC_MIGRATE_ACCEPT", SSI_IOC_MIGRATE_ACCEPT),
        ("SSI_IOC_MIGRATE_RESTORE", SSI_IOC_MIGRATE_RESTORE),
        ("SSI_IOC_MIGRATE_EXITED", SSI_IOC_MIGRATE_EXITED),
        ("SSI_IOC_MIGRATE_PS", SSI_IOC_MIGRATE_PS),
        ("SSI_IOC_MIGRATE_DRAIN", SSI_IOC_MIGRATE_DRAIN),
    ]
    .into_iter()
    .map(|(name, nr)| (name.to_owned(), json!(nr)))
    .collect();
    let sizes: Map<String, Value> = [
        ("SsiStatus", size_of::<SsiStatus>()),
        ("SsiNodeAddr", size_of::<SsiNodeAddr>()),
        ("SsiNodeList", size_of::<SsiNodeList>()),
        ("SsiPing", size_of::<SsiPing>()),
        ("SsiKv", size_of::<SsiKv>()),
        ("SsiPageExpose", size_of::<SsiPageExpose>()),
        ("SsiPageRead", size_of::<SsiPageRead>()),
        ("SsiServiceCall", size_of::<SsiServiceCall>()),
        ("SsiRegion", size_of::<SsiRegion>()),
        ("SsiRegionList", size_of::<SsiRegionList>()),
        ("SsiMigrate", size_of::<SsiMigrate>()),
        ("SsiMigrateJob", size_of::<SsiMigrateJob>()),
        ("SsiMigrateExit", size_of::<SsiMigrateExit>()),
        ("SsiProcList", size_of::<SsiProcList>()),
    ]
    .into_iter()
    .map(|(name, size)| (name.to_owned(), json!(size)))
    .collect();
    let abi = json!({
        "abi_version": SSI_ABI_VERSION,
        "magic": SSI_IOC_MAGIC,
        "ioctls": ioctls,
        "sizes": sizes,
    });
    println!("{abi}");
}
