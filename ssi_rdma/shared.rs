// SPDX-License-Identifier: GPL-2.0

//! The parts of `rust/src` that this module compiles in (see `rust/src/lib.rs`).

// Each module uses only part of the shared code, which is `pub` for the host crate.
#![allow(dead_code, unreachable_pub)]

#[path = "../rust/src/arith.rs"]
pub(crate) mod arith;
#[path = "../rust/src/ioctl.rs"]
pub(crate) mod ioctl;
#[path = "../rust/src/migrate_abi.rs"]
pub(crate) mod migrate_abi;
#[path = "../rust/src/node.rs"]
pub(crate) mod node;
#[path = "../rust/src/rdma_conn.rs"]
pub(crate) mod rdma_conn;
#[path = "../rust/src/service.rs"]
pub(crate) mod service;
#[path = "../rust/src/text.rs"]
pub(crate) mod text;
#[path = "../rust/src/transport.rs"]
pub(crate) mod transport;
#[path = "../rust/src/wire.rs"]
pub(crate) mod wire;
