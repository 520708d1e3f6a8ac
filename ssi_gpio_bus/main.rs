// SPDX-License-Identifier: GPL-2.0

//! ssi_gpio_bus: a "software RDMA" ssi transport bit-banged over GPIO lines between two
//! Raspberry Pi Zero boards (8 data lines plus `ready` and `valid`).
//!
//! Today it registers with `ssi_core` as transport `gpio-bus` and reports its line
//! configuration; the line protocol comes with the GPIO transport issue.

use core::fmt::{self, Write};

use kernel::{prelude::*, sync::Arc};

#[path = "../rust/kmod/core_client.rs"]
#[allow(dead_code)]
mod core_client;
#[path = "../rust/kmod/errno.rs"]
#[allow(dead_code)]
mod errno;
mod shared;

use core_client::{Describe, SliceWriter, Transport, TransportRegistration};
use shared::node::NodeId;
use shared::transport::TransportKind;

module! {
    type: SsiGpioBus,
    name: "ssi_gpio_bus",
    authors: ["ssi developers"],
    description: "ssi single-system-image cluster: GPIO bit-bang transport",
    license: "GPL",
    params: {
        peer_node: u32 {
            default: 1,
            description: "Node id of the board at the other end of the cable",
        },
    },
}

/// Data lines of the parallel bus (one byte per transfer), plus `ready` and `valid`.
const DATA_LINES: u32 = 8;

/// The GPIO bus transport.
struct GpioBusTransport {
    peer: u32,
}

impl Describe for GpioBusTransport {
    fn describe(&self, out: &mut SliceWriter<'_>) -> fmt::Result {
        write!(
            out,
            "node {} <-> node {}, {} data lines + ready + valid, lines not bound",
            core_client::node_id(),
            self.peer,
            DATA_LINES
        )
    }
}

impl Transport for GpioBusTransport {
    const KIND: TransportKind = TransportKind::GpioBus;
    const NAME: &'static str = "gpio-bus";
}

struct SsiGpioBus {
    _registration: TransportRegistration<GpioBusTransport>,
}

impl kernel::Module for SsiGpioBus {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let peer = *module_parameters::peer_node.value();
        let me = core_client::node_id();
        if peer == me || NodeId::new(i64::from(peer)).is_err() {
            pr_err!(
                "peer_node={} is invalid (this node is {}; ids are below {})\n",
                peer,
                me,
                shared::node::SSI_MAX_NODES
            );
            return Err(EINVAL);
        }
        let transport = Arc::new(GpioBusTransport { peer }, GFP_KERNEL)?;
        let registration = TransportRegistration::new(module, transport)?;
        pr_info!("GPIO bus transport up: node {} <-> node {}\n", me, peer);
        Ok(Self {
            _registration: registration,
        })
    }
}
