// SPDX-License-Identifier: GPL-2.0

//! The parts of `rust/src` that this module compiles in (see `rust/src/lib.rs`).

// Each module uses only part of the shared code, which is `pub` for the host crate.
#![allow(dead_code, unreachable_pub)]

#[path = "../rust/src/address_space.rs"]
pub(crate) mod address_space;
#[path = "../rust/src/arith.rs"]
pub(crate) mod arith;
#[path = "../rust/src/errno.rs"]
pub(crate) mod errno;
#[path = "../rust/src/futex.rs"]
pub(crate) mod futex;
#[path = "../rust/src/futex2.rs"]
pub(crate) mod futex2;
#[path = "../rust/src/ioctl.rs"]
pub(crate) mod ioctl;
#[path = "../rust/src/migrate_abi.rs"]
pub(crate) mod migrate_abi;
#[path = "../rust/src/migrate_target.rs"]
pub(crate) mod migrate_target;
#[path = "../rust/src/migrate_wire.rs"]
pub(crate) mod migrate_wire;
#[path = "../rust/src/service.rs"]
pub(crate) mod service;
#[path = "../rust/src/space_gate.rs"]
pub(crate) mod space_gate;
#[path = "../rust/src/text.rs"]
pub(crate) mod text;
#[path = "../rust/src/transport.rs"]
pub(crate) mod transport;
#[path = "../rust/src/wire.rs"]
pub(crate) mod wire;
