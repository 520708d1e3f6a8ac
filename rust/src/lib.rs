// SPDX-License-Identifier: GPL-2.0

//! Code shared by the ssi kernel modules and the userspace tools.
//!
//! Every file here is `no_std`, uses only `core`, and refers to its siblings only through
//! `super::`. The kernel modules do not link this crate: each module includes the files it
//! needs with `#[path]` under a module of its own (see `ssi_core/shared.rs`), so the same
//! source is compiled by the kernel's rustc with the kernel's flags, and here by cargo for
//! host tests. The unit tests inside each file run both on the host (`cargo test`) and as
//! KUnit suites in UML (`kunit-tests/`): they use only `assert!` and `assert_eq!`, which
//! `#[kunit_tests]` turns into KUnit assertions.

#![no_std]

pub mod address_space;
pub mod arith;
pub mod directory;
pub mod errno;
pub mod futex;
pub mod futex2;
pub mod gpio_bus;
pub mod gpio_link;
pub mod ioctl;
pub mod kv;
pub mod membership;
pub mod migrate_abi;
pub mod migrate_target;
pub mod migrate_wire;
pub mod node;
pub mod rdma_conn;
pub mod region;
pub mod rpc;
pub mod service;
pub mod space_gate;
pub mod text;
pub mod threads;
pub mod transport;
pub mod wire;
