// SPDX-License-Identifier: GPL-2.0

//! ssi_rdma: the ssi transport over kernel RDMA verbs (soft-RoCE `rdma_rxe` in tests,
//! RoCE/InfiniBand NICs in production).
//!
//! Today it tracks the node's RDMA devices with an `ib_client` (C shim `ib_shim.c`) and
//! registers with `ssi_core` as transport `rdma`, describing those devices and their
//! port states.

use core::ffi::c_int;
use core::fmt::{self, Write};

use kernel::{error::to_result, prelude::*, sync::Arc};

#[path = "../rust/kmod/core_client.rs"]
#[allow(dead_code)]
mod core_client;
mod shared;

use core_client::{Describe, SliceWriter, Transport, TransportRegistration};
use shared::transport::TransportKind;

module! {
    type: SsiRdma,
    name: "ssi_rdma",
    authors: ["ssi developers"],
    description: "ssi single-system-image cluster: RDMA transport",
    license: "GPL",
}

extern "C" {
    fn ssi_rdma_ib_client_register() -> c_int;
    fn ssi_rdma_ib_client_unregister();
    fn ssi_rdma_ib_describe(buf: *mut u8, len: usize) -> isize;
}

/// The node's RDMA devices, as seen by the `ib_client` of `ib_shim.c`.
struct IbClient(());

impl IbClient {
    fn register() -> Result<Self> {
        // SAFETY: No preconditions; registered once, unregistered in `drop`.
        to_result(unsafe { ssi_rdma_ib_client_register() })?;
        Ok(Self(()))
    }

    /// Writes `dev:port:STATE` for every port of every device into `buf`.
    fn describe(&self, buf: &mut [u8]) -> usize {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = unsafe { ssi_rdma_ib_describe(buf.as_mut_ptr(), buf.len()) };
        usize::try_from(n).unwrap_or(0).min(buf.len())
    }
}

impl Drop for IbClient {
    fn drop(&mut self) {
        // SAFETY: Registered in `register`; removes every device entry before returning.
        unsafe { ssi_rdma_ib_client_unregister() };
    }
}

/// The RDMA transport.
struct RdmaTransport {
    ib: IbClient,
}

impl Describe for RdmaTransport {
    fn describe(&self, out: &mut SliceWriter<'_>) -> fmt::Result {
        let mut devs = [0u8; 96];
        let n = self.ib.describe(&mut devs);
        let devs = core::str::from_utf8(&devs[..n]).unwrap_or("?");
        write!(out, "node {} devices: {}", core_client::node_id(), devs)
    }
}

impl Transport for RdmaTransport {
    const KIND: TransportKind = TransportKind::Rdma;
    const NAME: &'static str = "rdma";
}

struct SsiRdma {
    _registration: TransportRegistration<RdmaTransport>,
}

impl kernel::Module for SsiRdma {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let transport = Arc::new(
            RdmaTransport {
                ib: IbClient::register()?,
            },
            GFP_KERNEL,
        )?;
        let registration = TransportRegistration::new(module, transport)?;
        pr_info!("RDMA transport up on node {}\n", core_client::node_id());
        Ok(Self {
            _registration: registration,
        })
    }
}
