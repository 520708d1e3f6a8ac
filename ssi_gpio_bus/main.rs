// SPDX-License-Identifier: GPL-2.0

//! ssi_gpio_bus: a "software RDMA" ssi transport bit-banged over GPIO lines between two
//! Raspberry Pi Zero boards (8 data lines plus `ready` and `valid`).
//!
//! It registers with `ssi_core` as transport `gpio-bus` and moves the same ssi frames as
//! `ssi_rdma` over a parallel cable: the bus protocol of `rust/src/gpio_bus.rs` (open
//! drain data lines, arbitration, a four-phase handshake per byte, CRC-checked frames
//! with acknowledgement and retransmission) driven by a bus thread (`link.rs`), and the
//! link messages of `rust/src/gpio_link.rs`. Page reads are emulated: the peer's bus
//! thread answers a READ with the exposed page's bytes, so core's page fetch works
//! unchanged (the ops table says so with `SSI_TRANSPORT_F_EMULATED_READS`).
//!
//! The lines come from a platform device (`bus.rs`): the node of
//! `pizero/ssi-gpio-bus-overlay.dts` on a Pi, or, without a device tree, one this
//! module creates from its `gpio_chip` and `gpio_line` parameters (`lines_shim.c`): a
//! virtio GPIO controller wired to another guest in the tests.

use core::{
    fmt::{self, Write},
    sync::atomic::{AtomicU32, Ordering},
};

use kernel::{driver, platform, prelude::*, sync::Arc};

mod bus;
#[path = "../rust/kmod/clock.rs"]
#[allow(dead_code)] // Each module reads the clock in the units it needs.
mod clock;
#[path = "../rust/kmod/core_client.rs"]
#[allow(dead_code)]
mod core_client;
#[path = "../rust/kmod/errno.rs"]
#[allow(dead_code)]
mod errno;
mod lines;
mod link;
#[path = "../rust/kmod/random.rs"]
mod random;
mod shared;

use core_client::{Describe, Exposure, RawPage, SliceWriter, Transport, TransportRegistration};
use shared::node::NodeId;
use shared::transport::{TransportKind, SSI_TRANSPORT_F_EMULATED_READS};

/// The `peer_node` parameter, once checked.
static PEER: AtomicU32 = AtomicU32::new(u32::MAX);

/// The node at the other end of the cable.
pub(crate) fn peer() -> u32 {
    PEER.load(Ordering::Relaxed)
}

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
        write!(out, "node {} <-> {}: ", core_client::node_id(), self.peer)?;
        match link::current() {
            Some(l) => l.describe(out),
            None => out.write_str("lines not bound"),
        }
    }
}

impl Transport for GpioBusTransport {
    const KIND: TransportKind = TransportKind::GpioBus;
    const NAME: &'static str = "gpio-bus";
    const FLAGS: u32 = SSI_TRANSPORT_F_EMULATED_READS;

    fn connect(&self, node: u32, _ipv4: u32, _port: u16) -> Result {
        link::set_wanted(node, self.peer, true)
    }

    fn disconnect(&self, node: u32) {
        // Other nodes were never linked over the cable: nothing to forget.
        let _ = link::set_wanted(node, self.peer, false);
    }

    fn reset(&self, node: u32) {
        if let Some(l) = link::current() {
            l.reset(node);
        }
    }

    fn send(&self, node: u32, frame: &[u8]) -> Result {
        link::current()
            .ok_or_else(errno::enotconn)?
            .send(node, frame)
    }

    fn expose_page(&self, node: u32, page: RawPage) -> Result<Exposure> {
        link::current()
            .ok_or_else(errno::enotconn)?
            .expose(node, page)
    }

    fn unexpose_page(&self, _node: u32, cookie: u64) {
        if let Some(l) = link::current() {
            l.unexpose(cookie);
        }
    }

    fn read_page(
        &self,
        node: u32,
        addr: u64,
        rkey: u32,
        page: RawPage,
        len: u32,
        timeout_ms: u32,
    ) -> Result {
        link::current()
            .ok_or_else(errno::enotconn)?
            .read_page(node, addr, rkey, page, len, timeout_ms)
    }
}

#[pin_data]
struct SsiGpioBus {
    /// The node at the other end (checked and published before the driver binds).
    peer: u32,
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
        link::init_current();
        let peer_node = *module_parameters::peer_node.value();
        let chip = *module_parameters::gpio_chip.value();
        let first = *module_parameters::gpio_line.value();
        try_pin_init!(Self {
            peer: checked_peer(peer_node)?,
            driver <- driver::Registration::new(c"ssi_gpio_bus", module),
            fallback: fallback(chip, first)?,
            registration: register(module, peer_node)?,
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

/// Checks `peer_node` and publishes it for the bus driver's probe.
fn checked_peer(peer: u32) -> Result<u32> {
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
    PEER.store(peer, Ordering::Relaxed);
    Ok(peer)
}

fn register(
    module: &'static ThisModule,
    peer: u32,
) -> Result<TransportRegistration<GpioBusTransport>> {
    let me = core_client::node_id();
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
