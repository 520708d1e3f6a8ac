// SPDX-License-Identifier: GPL-2.0

//! The parts of `rust/src` that `ssi_core` compiles in (see `rust/src/lib.rs`).

// Each module uses only part of the shared code, which is `pub` for the host crate.
#![allow(dead_code, unreachable_pub)]

#[path = "../rust/src/arith.rs"]
pub(crate) mod arith;
#[path = "../rust/src/directory.rs"]
pub(crate) mod directory;
#[path = "../rust/src/ioctl.rs"]
pub(crate) mod ioctl;
#[path = "../rust/src/kv.rs"]
pub(crate) mod kv;
#[path = "../rust/src/membership.rs"]
pub(crate) mod membership;
#[path = "../rust/src/migrate_abi.rs"]
pub(crate) mod migrate_abi;
#[path = "../rust/src/node.rs"]
pub(crate) mod node;
#[path = "../rust/src/region.rs"]
pub(crate) mod region;
#[path = "../rust/src/rpc.rs"]
pub(crate) mod rpc;
#[path = "../rust/src/service.rs"]
pub(crate) mod service;
#[path = "../rust/src/text.rs"]
pub(crate) mod text;
#[path = "../rust/src/transport.rs"]
pub(crate) mod transport;
#[path = "../rust/src/wire.rs"]
pub(crate) mod wire;

/// `seq_print!`/`pr_*!` format through the kernel's own `Display`.
impl kernel::fmt::Display for text::U64 {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}
