// SPDX-License-Identifier: GPL-2.0

//! ssi_gpio_bus: a "software RDMA" ssi transport bit-banged over GPIO lines between two
//! Raspberry Pi Zero boards (8 data lines plus `ready` and `valid`).
//!
//! Today it registers with `ssi_core` as transport `gpio-bus`, binds the cable's ten
//! lines (as inputs) and reports them; the line protocol comes with the GPIO transport
//! issue. The lines come from a platform device (`bus.rs`): the node of
//! `pizero/ssi-gpio-bus-overlay.dts` on a Pi, or, without a device tree, one this
//! module creates from its `gpio_chip` and `gpio_line` parameters (`lines_shim.c`).

use core::fmt::{self, Write};

use kernel::{driver, platform, prelude::*, sync::Arc};

mod bus;
#[path = "../rust/kmod/core_client.rs"]
#[allow(dead_code)]
mod core_client;
#[path = "../rust/kmod/errno.rs"]
#[allow(dead_code)]
mod errno;
mod lines;
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
        gpio_chip: i32 {
            default: -1,
            description: "Without a device tree: the cable is on /dev/gpiochipN (N), ten \
                lines from gpio_line (data0-7, ready, valid). -1: lines from the overlay",
        },
        gpio_line: u32 {
            default: 0,
            description: "With gpio_chip: the chip's line offset of data0",
        },
    },
}

/// The GPIO bus transport.
struct GpioBusTransport {
    peer: u32,
}

impl Describe for GpioBusTransport {
    fn describe(&self, out: &mut SliceWriter<'_>) -> fmt::Result {
        // Short: the ABI's state field has 96 bytes.
        write!(
            out,
            "node {} <-> node {}: ",
            core_client::node_id(),
            self.peer
        )?;
        lines::with_bound(|text| match text {
            "" => out.write_str("lines not bound"),
            t => out.write_str(t),
        })
    }
}

impl Transport for GpioBusTransport {
    const KIND: TransportKind = TransportKind::GpioBus;
    const NAME: &'static str = "gpio-bus";
}

#[pin_data]
struct SsiGpioBus {
    /// The bus device driver (binds the lines). Dropped first: unbinding it releases
    /// the lines before anything else goes.
    #[pin]
    driver: driver::Registration<platform::Adapter<bus::BusDriver>>,
    /// The bus device made from `gpio_chip`, when there is no device tree.
    fallback: Option<lines::Fallback>,
    registration: TransportRegistration<GpioBusTransport>,
}

impl kernel::InPlaceModule for SsiGpioBus {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        lines::init_bound();
        let peer = *module_parameters::peer_node.value();
        let chip = *module_parameters::gpio_chip.value();
        let first = *module_parameters::gpio_line.value();
        try_pin_init!(Self {
            driver <- driver::Registration::new(c"ssi_gpio_bus", module),
            fallback: fallback(chip, first)?,
            registration: register(module, peer)?,
        })
    }
}

/// The bus device for `gpio_chip`, if set.
fn fallback(chip: i32, first: u32) -> Result<Option<lines::Fallback>> {
    match chip {
        -1 => Ok(None),
        c if c < 0 => {
            pr_err!("gpio_chip={} is invalid (-1, or N of /dev/gpiochipN)\n", c);
            Err(EINVAL)
        }
        c => lines::Fallback::new(c, first).map(Some),
    }
}

fn register(
    module: &'static ThisModule,
    peer: u32,
) -> Result<TransportRegistration<GpioBusTransport>> {
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
    lines::with_bound(|text| {
        pr_info!(
            "GPIO bus transport up: node {} <-> node {}, {}\n",
            me,
            peer,
            if text.is_empty() {
                "no bus device bound yet"
            } else {
                text
            }
        )
    });
    Ok(registration)
}
