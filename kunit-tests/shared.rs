// SPDX-License-Identifier: GPL-2.0

//! The `rust/src` files under test, included exactly as the modules include them.

// Only the tests use the shared code here, and it is `pub` for the host crate.
#![allow(dead_code, unreachable_pub)]

#[path = "../rust/src/address_space.rs"]
pub(crate) mod address_space;
#[path = "../rust/src/arith.rs"]
pub(crate) mod arith;
#[path = "../rust/src/directory.rs"]
pub(crate) mod directory;
#[path = "../rust/src/errno.rs"]
pub(crate) mod errno;
#[path = "../rust/src/futex.rs"]
pub(crate) mod futex;
#[path = "../rust/src/futex2.rs"]
pub(crate) mod futex2;
#[path = "../rust/src/gpio_bus.rs"]
pub(crate) mod gpio_bus;
#[path = "../rust/src/gpio_link.rs"]
pub(crate) mod gpio_link;
#[path = "../rust/src/ioctl.rs"]
pub(crate) mod ioctl;
#[path = "../rust/src/kv.rs"]
pub(crate) mod kv;
#[path = "../rust/src/membership.rs"]
pub(crate) mod membership;
#[path = "../rust/src/migrate_abi.rs"]
pub(crate) mod migrate_abi;
#[path = "../rust/src/migrate_target.rs"]
pub(crate) mod migrate_target;
#[path = "../rust/src/migrate_wire.rs"]
pub(crate) mod migrate_wire;
#[path = "../rust/src/node.rs"]
pub(crate) mod node;
#[path = "../rust/src/rdma_conn.rs"]
pub(crate) mod rdma_conn;
#[path = "../rust/src/region.rs"]
pub(crate) mod region;
#[path = "../rust/src/rpc.rs"]
pub(crate) mod rpc;
#[path = "../rust/src/service.rs"]
pub(crate) mod service;
#[path = "../rust/src/space_gate.rs"]
pub(crate) mod space_gate;
#[path = "../rust/src/text.rs"]
pub(crate) mod text;
#[path = "../rust/src/threads.rs"]
pub(crate) mod threads;
#[path = "../rust/src/transport.rs"]
pub(crate) mod transport;
#[path = "../rust/src/wire.rs"]
pub(crate) mod wire;
