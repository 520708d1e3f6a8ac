// SPDX-License-Identifier: GPL-2.0

//! ssi_rdma: the ssi transport over kernel RDMA verbs (soft-RoCE `rdma_rxe` in tests,
//! RoCE/InfiniBand NICs in production).
//!
//! It registers with `ssi_core` as transport `rdma`. `ib_shim.c` tracks the node's RDMA
//! devices with an `ib_client`; `conn.c` keeps one RDMA CM connection per peer (SEND/RECV
//! ring for frames, one-sided RDMA READ of exposed pages), and asks `policy.rs` (the
//! rules of `rust/src/rdma_conn.rs`) what to do at each decision. This file is the
//! glue: it implements core's transport ops on top of `conn.c` and forwards links and
//! frames from `conn.c` to core.

use core::ffi::c_int;
use core::fmt::{self, Write};

use kernel::{bindings, error::to_result, prelude::*, sync::Arc};

#[path = "../rust/kmod/core_client.rs"]
#[allow(dead_code)]
mod core_client;
#[path = "../rust/kmod/errno.rs"]
#[allow(dead_code)]
mod errno;
mod policy;
mod shared;

use core_client::{Describe, Exposure, RawPage, SliceWriter, Transport, TransportRegistration};
use shared::rdma_conn::Local;
use shared::text::U64;
use shared::transport::TransportKind;
use shared::wire::MAX_FRAME;

module! {
    type: SsiRdma,
    name: "ssi_rdma",
    authors: ["ssi developers"],
    description: "ssi single-system-image cluster: RDMA transport",
    license: "GPL",
    params: {
        port: u32 {
            default: 7471,
            description: "RDMA CM port to listen on and connect to by default (1..65535)",
        },
    },
}

/// Counters of `conn.c` (`struct ssi_rdma_stats`).
#[repr(C)]
#[derive(Default)]
struct RdmaStats {
    rx_frames: u64,
    tx_frames: u64,
    rx_errors: u64,
    rejected: u64,
    connect_attempts: u64,
    reads: u64,
    exposed: u64,
    links_up: u64,
}

// Kernel structs pass by pointer only; the lint objects to zero-sized members that
// bindgen gives some of them (see docs/ARCHITECTURE.md, "Unsafe code").
#[allow(improper_ctypes)]
extern "C" {
    fn ssi_rdma_ib_client_register() -> c_int;
    fn ssi_rdma_ib_client_unregister();
    fn ssi_rdma_ib_describe(buf: *mut u8, len: usize) -> isize;

    fn ssi_rdma_conn_start(local: *const Local, port: u16) -> c_int;
    fn ssi_rdma_conn_listen() -> c_int;
    fn ssi_rdma_conn_stop();
    fn ssi_rdma_conn_connect(node: u32, ipv4: u32, port: u16) -> c_int;
    fn ssi_rdma_conn_disconnect(node: u32, forget: bool);
    fn ssi_rdma_conn_send(node: u32, frame: *const u8, len: usize) -> c_int;
    fn ssi_rdma_conn_read(
        node: u32,
        addr: u64,
        rkey: u32,
        page: *mut bindings::page,
        len: u32,
        timeout_ms: u32,
    ) -> c_int;
    fn ssi_rdma_conn_expose(
        node: u32,
        page: *mut bindings::page,
        addr: *mut u64,
        rkey: *mut u32,
        cookie: *mut u64,
    ) -> c_int;
    fn ssi_rdma_conn_unexpose(node: u32, cookie: u64);
    fn ssi_rdma_conn_stats(out: *mut RdmaStats);
}

// `conn.c` sizes its receive buffers for the largest frame of the wire protocol.
const _: () = assert!(MAX_FRAME == 4184);

/// A link of `conn.c` went up or down: tell core.
#[no_mangle]
extern "C" fn ssi_rdma_upcall_link(node: u32, up: bool) {
    core_client::link_event(node, up);
}

/// `conn.c` received a frame from `node`: hand it to core.
///
/// # Safety
///
/// `frame` is valid for reads of `len` bytes for the duration of the call.
#[no_mangle]
unsafe extern "C" fn ssi_rdma_upcall_deliver(node: u32, frame: *const u8, len: u32) {
    if frame.is_null() {
        return;
    }
    // SAFETY: Guaranteed by the caller (`conn.c` passes its receive buffer).
    let frame = unsafe { core::slice::from_raw_parts(frame, len as usize) };
    core_client::deliver(node, frame);
}

/// The connection engine of `conn.c`: started before registering with core (which
/// calls `connect` while registering), stopped after unregistering.
struct Connections(());

impl Connections {
    fn start(port: u16) -> Result<Self> {
        let local = Local::new(
            core_client::node_id(),
            shared::ioctl::SSI_ABI_VERSION,
            core_client::incarnation(),
        );
        // SAFETY: `local` is valid for reads during the call (`conn.c` copies it);
        // undone by `drop`.
        to_result(unsafe { ssi_rdma_conn_start(&local, port) })?;
        Ok(Self(()))
    }

    fn listen(&self) -> Result {
        // SAFETY: The engine is started (`self` exists).
        to_result(unsafe { ssi_rdma_conn_listen() })
    }

    fn stats(&self) -> RdmaStats {
        let mut st = RdmaStats::default();
        // SAFETY: `st` is a valid, writable `struct ssi_rdma_stats`.
        unsafe { ssi_rdma_conn_stats(&mut st) };
        st
    }
}

impl Drop for Connections {
    fn drop(&mut self) {
        // SAFETY: Started in `start`. Tears every connection down and waits for it.
        unsafe { ssi_rdma_conn_stop() };
    }
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
    // Dropped in this order: connections first (they live on the devices).
    conns: Connections,
    ib: IbClient,
}

impl Describe for RdmaTransport {
    fn describe(&self, out: &mut SliceWriter<'_>) -> fmt::Result {
        let mut devs = [0u8; 48];
        let n = self.ib.describe(&mut devs);
        let devs = core::str::from_utf8(&devs[..n]).unwrap_or("?");
        let st = self.conns.stats();
        write!(
            out,
            "node {} devices: {} links: {} rejected: {} rx_errors: {}",
            core_client::node_id(),
            devs,
            U64(st.links_up),
            U64(st.rejected),
            U64(st.rx_errors)
        )
    }
}

impl Transport for RdmaTransport {
    const KIND: TransportKind = TransportKind::Rdma;
    const NAME: &'static str = "rdma";

    fn connect(&self, node: u32, ipv4: u32, port: u16) -> Result {
        // SAFETY: No pointer arguments; the engine is started while `self` exists.
        to_result(unsafe { ssi_rdma_conn_connect(node, ipv4, port) })
    }

    fn disconnect(&self, node: u32) {
        // SAFETY: As above.
        unsafe { ssi_rdma_conn_disconnect(node, true) }
    }

    fn reset(&self, node: u32) {
        // SAFETY: As above.
        unsafe { ssi_rdma_conn_disconnect(node, false) }
    }

    fn send(&self, node: u32, frame: &[u8]) -> Result {
        // SAFETY: `frame` is valid for reads of its length; `conn.c` copies it.
        to_result(unsafe { ssi_rdma_conn_send(node, frame.as_ptr(), frame.len()) })
    }

    fn expose_page(&self, node: u32, page: RawPage) -> Result<Exposure> {
        let mut e = Exposure {
            addr: 0,
            rkey: 0,
            cookie: 0,
        };
        // SAFETY: Core holds a reference to `page` during the call (`conn.c` takes its
        // own for the exposure); the out pointers are valid locals.
        to_result(unsafe {
            ssi_rdma_conn_expose(node, page.0, &mut e.addr, &mut e.rkey, &mut e.cookie)
        })?;
        Ok(e)
    }

    fn unexpose_page(&self, node: u32, cookie: u64) {
        // SAFETY: No pointer arguments.
        unsafe { ssi_rdma_conn_unexpose(node, cookie) }
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
        // SAFETY: Core holds a reference to `page` during the call; `conn.c` takes its
        // own while the READ is outstanding (even past a timeout).
        to_result(unsafe { ssi_rdma_conn_read(node, addr, rkey, page.0, len, timeout_ms) })
    }
}

struct SsiRdma {
    _registration: TransportRegistration<RdmaTransport>,
}

fn checked_port() -> Result<u16> {
    let raw = *module_parameters::port.value();
    match u16::try_from(raw) {
        Ok(p) if p != 0 => Ok(p),
        _ => {
            pr_err!("port={} is invalid: must be 1..65535\n", raw);
            Err(EINVAL)
        }
    }
}

impl kernel::Module for SsiRdma {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let port = checked_port()?;
        let ib = IbClient::register()?;
        let conns = Connections::start(port)?;
        let transport = Arc::new(RdmaTransport { conns, ib }, GFP_KERNEL)?;
        let registration = TransportRegistration::new(module, transport)?;
        // Accept peers only once core knows us: their frames need somewhere to go.
        registration.ctx().conns.listen()?;
        pr_info!(
            "RDMA transport up on node {}, port {}\n",
            core_client::node_id(),
            port
        );
        Ok(Self {
            _registration: registration,
        })
    }
}
