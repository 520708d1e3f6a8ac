//! The vhost-user glue: one [`SideBackend`] per guest, both sharing one [`Shared`]
//! (a mutex around the cable and what is needed to complete each side's event
//! buffers from any thread).
//!
//! Lock order: the `World` mutex, then a vring's lock. The vhost-user request thread
//! calls into us (memory update, vring stop) holding no vring lock, and the worker
//! thread never holds a vring lock while taking the `World` mutex.

use std::io::{self, Write as _};
use std::sync::{Arc, Mutex, MutexGuard};

use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackend, VringRwLock, VringT};
use virtio_bindings::bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;
use virtio_queue::QueueT;
use vm_memory::{Bytes, GuestAddress, GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{
    new_event_consumer_and_notifier, EventConsumer, EventFlag, EventNotifier,
};

use crate::cable::{Cable, Completion, IrqStatus, Side};
use crate::protocol::{self, Request, IRQ_REQUEST_LEN, REQUEST_LEN};
use crate::{debug, info, warn};

type Mem = GuestMemoryAtomic<GuestMemoryMmap>;

const REQUEST_QUEUE: u16 = 0;
const EVENT_QUEUE: u16 = 1;
const NUM_QUEUES: usize = 2;
const MAX_QUEUE_SIZE: usize = 1024;

/// A guest event buffer the cable holds: where its status byte goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldBuf {
    head: u16,
    status: GuestAddress,
}

/// Identifies a started eventq: if it differs when the queue runs again, the guest
/// reset the device and the buffers we held belong to rings that no longer exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RingId {
    desc: u64,
    avail: u64,
    used: u64,
    next_avail: u16,
}

fn ring_id(vring: &VringRwLock) -> RingId {
    let st = vring.get_ref();
    let q = st.get_queue();
    RingId {
        desc: q.desc_table(),
        avail: q.avail_ring(),
        used: q.used_ring(),
        next_avail: q.next_avail(),
    }
}

#[derive(Default)]
struct SideIo {
    mem: Option<Mem>,
    eventq: Option<VringRwLock>,
    /// Set while the VMM has stopped the eventq (GET_VRING_BASE).
    stopped: Option<RingId>,
}

pub struct World {
    pub cable: Cable<HeldBuf>,
    io: [SideIo; 2],
}

impl World {
    /// Completes event buffers and signals the guests that got some.
    fn deliver(&mut self, completions: Vec<Completion<HeldBuf>>) {
        let mut notify = [false; 2];
        for c in completions {
            let io = &self.io[c.side.index()];
            let (Some(vring), Some(mem)) = (&io.eventq, &io.mem) else {
                continue;
            };
            let status = match c.status {
                IrqStatus::Valid => protocol::IRQ_STATUS_VALID,
                IrqStatus::Invalid => protocol::IRQ_STATUS_INVALID,
            };
            let len = match mem.memory().write_obj(status, c.token.status) {
                Ok(()) => 1,
                Err(e) => {
                    warn!("side {}: cannot write irq status: {e}", c.side);
                    0
                }
            };
            match vring.add_used(c.token.head, len) {
                Ok(()) => notify[c.side.index()] = true,
                Err(e) => warn!("side {}: cannot complete eventq buffer: {e}", c.side),
            }
        }
        for side in Side::BOTH {
            if notify[side.index()] {
                if let Some(vring) = &self.io[side.index()].eventq {
                    signal(vring, side);
                }
            }
        }
    }

    /// Resumes a stopped eventq once the VMM has started it again. Same ring: the
    /// held buffers are still the guest's outstanding ones. Other ring: the guest
    /// reset the device; forget them.
    fn reconcile(&mut self) {
        for side in Side::BOTH {
            let io = &mut self.io[side.index()];
            let (Some(old), Some(vring)) = (io.stopped, &io.eventq) else {
                continue;
            };
            let running = {
                let st = vring.get_ref();
                st.get_queue().ready() && st.is_enabled()
            };
            if !running {
                continue;
            }
            let same = ring_id(vring) == old;
            io.stopped = None;
            if same {
                info!("side {side}: event queue resumed");
            } else {
                let dropped = self.cable.drop_buffers(side);
                info!(
                    "side {side}: event queue restarted, forgot {} stale buffers",
                    dropped.len()
                );
            }
            let due = self.cable.thaw(side);
            self.deliver(due);
        }
    }
}

/// Takes every available descriptor chain off `vring`.
fn pop_chains<'a>(
    vring: &VringRwLock,
    mem: &'a GuestMemoryMmap,
) -> Vec<virtio_queue::DescriptorChain<&'a GuestMemoryMmap>> {
    let mut st = vring.get_mut();
    let q = st.get_queue_mut();
    std::iter::from_fn(|| q.pop_descriptor_chain(mem)).collect()
}

fn signal(vring: &VringRwLock, side: Side) {
    if vring.needs_notification().unwrap_or(true) {
        if let Err(e) = vring.signal_used_queue() {
            warn!("side {side}: cannot signal guest: {e}");
        }
    }
}

/// The state both sides (and the control socket) share.
pub struct Shared {
    world: Mutex<World>,
    names: Vec<u8>,
    config: [u8; 8],
}

impl Shared {
    pub fn new(names: &[String]) -> Self {
        let block = protocol::names_block(names);
        let ngpio = u16::try_from(names.len()).unwrap_or(u16::MAX);
        let size = u32::try_from(block.len()).unwrap_or(u32::MAX);
        Shared {
            world: Mutex::new(World {
                // The strobes idle low (pull-downs), the data lines high.
                cable: Cable::with_pulls(
                    names.iter().map(|n| n != "ready" && n != "valid").collect(),
                ),
                io: [SideIo::default(), SideIo::default()],
            }),
            config: protocol::config_space(ngpio, size),
            names: block,
        }
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        // A panic elsewhere must not take the cable down with it.
        let mut w = self.world.lock().unwrap_or_else(|p| p.into_inner());
        w.reconcile();
        w
    }

    /// Runs `f` on the cable and delivers the event buffers it completes.
    pub fn run<R>(
        &self,
        f: impl FnOnce(&mut Cable<HeldBuf>) -> (R, Vec<Completion<HeldBuf>>),
    ) -> R {
        let mut w = self.lock();
        let (r, completions) = f(&mut w.cable);
        w.deliver(completions);
        r
    }

    pub fn set_connected(&self, side: Side, connected: bool) {
        self.lock().cable.set_connected(side, connected);
    }

    /// The guest of `side` went away: release its lines, forget its rings.
    pub fn disconnect(&self, side: Side) {
        let mut w = self.lock();
        w.io[side.index()] = SideIo::default();
        w.cable.set_connected(side, false);
        let (_dropped, completions) = w.cable.reset_side(side);
        w.deliver(completions);
    }
}

/// The vhost-user backend of one side.
pub struct SideBackend {
    side: Side,
    shared: Arc<Shared>,
    event_idx: Mutex<bool>,
}

impl SideBackend {
    pub fn new(side: Side, shared: Arc<Shared>) -> Self {
        SideBackend {
            side,
            shared,
            event_idx: Mutex::new(false),
        }
    }

    fn event_idx(&self) -> bool {
        *self.event_idx.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves everything available on the requestq.
    fn process_requests(&self, vring: &VringRwLock) -> io::Result<()> {
        let side = self.side;
        let mut w = self.shared.lock();
        let Some(mem) = w.io[side.index()].mem.clone() else {
            return Ok(());
        };
        let guard = mem.memory();
        let chains = pop_chains(vring, &guard);
        if chains.is_empty() {
            return Ok(());
        }
        let mut completions = Vec::new();
        for chain in chains {
            let head = chain.head_index();
            let req = chain
                .clone()
                .reader(&*guard)
                .ok()
                .and_then(|mut r| r.read_obj::<[u8; REQUEST_LEN]>().ok())
                .map(Request::decode);
            let mut used = 0;
            match chain.clone().writer(&*guard) {
                Ok(mut writer) => {
                    let served = protocol::serve_request(
                        &mut w.cable,
                        side,
                        req,
                        writer.available_bytes(),
                        &self.shared.names,
                    );
                    if served.probed {
                        info!("side {side}: driver ready (GET_NAMES), lines released");
                    }
                    debug!("side {side}: {req:?} -> {:?}", served.response);
                    let n = served.response.len().min(writer.available_bytes());
                    if writer.write_all(&served.response[..n]).is_ok() {
                        used = u32::try_from(writer.bytes_written()).unwrap_or(0);
                    }
                    completions.extend(served.completions);
                }
                Err(e) => {
                    w.cable.count_request(side);
                    warn!("side {side}: malformed request chain: {e}");
                }
            }
            if let Err(e) = vring.add_used(head, used) {
                warn!("side {side}: cannot complete request: {e}");
            }
        }
        w.deliver(completions);
        signal(vring, side);
        Ok(())
    }

    /// Takes everything available on the eventq into the cable.
    fn process_events(&self, vring: &VringRwLock) -> io::Result<()> {
        let side = self.side;
        let mut w = self.shared.lock();
        let Some(mem) = w.io[side.index()].mem.clone() else {
            return Ok(());
        };
        let guard = mem.memory();
        let chains = pop_chains(vring, &guard);
        let mut completions = Vec::new();
        let mut rejected = false;
        for chain in chains {
            let head = chain.head_index();
            let gpio = chain
                .clone()
                .reader(&*guard)
                .ok()
                .and_then(|mut r| r.read_obj::<[u8; IRQ_REQUEST_LEN]>().ok())
                .map(|b| usize::from(u16::from_le_bytes(b)));
            let status = chain
                .clone()
                .writable()
                .next()
                .filter(|d| d.len() >= 1)
                .map(|d| d.addr());
            match (gpio, status) {
                (Some(line), Some(status)) if line < w.cable.lines() => {
                    match w
                        .cable
                        .queue_irq_buffer(side, line, HeldBuf { head, status })
                    {
                        Ok(c) => completions.extend(c),
                        Err(e) => warn!("side {side}: eventq: {e}"),
                    }
                }
                _ => {
                    // Nothing sensible to report: hand it back empty.
                    warn!("side {side}: malformed eventq buffer (gpio {gpio:?})");
                    if let Err(e) = vring.add_used(head, 0) {
                        warn!("side {side}: cannot return eventq buffer: {e}");
                    }
                    rejected = true;
                }
            }
        }
        w.deliver(completions);
        if rejected {
            signal(vring, side);
        }
        Ok(())
    }

    fn drain(
        &self,
        vring: &VringRwLock,
        process: impl Fn(&Self, &VringRwLock) -> io::Result<()>,
    ) -> io::Result<()> {
        let err = |e| io::Error::other(format!("virtqueue: {e:?}"));
        if self.event_idx() {
            loop {
                vring.disable_notification().map_err(err)?;
                process(self, vring)?;
                if !vring.enable_notification().map_err(err)? {
                    break;
                }
            }
        } else {
            process(self, vring)?;
        }
        Ok(())
    }
}

impl VhostUserBackend for SideBackend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        NUM_QUEUES
    }

    fn max_queue_size(&self) -> usize {
        MAX_QUEUE_SIZE
    }

    fn features(&self) -> u64 {
        (1 << VIRTIO_F_VERSION_1)
            | (1 << VIRTIO_RING_F_EVENT_IDX)
            | (1 << protocol::VIRTIO_GPIO_F_IRQ)
            | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
    }

    fn acked_features(&self, features: u64) {
        info!(
            "side {}: device started (features {features:#x}, irq {})",
            self.side,
            if features & (1 << protocol::VIRTIO_GPIO_F_IRQ) != 0 {
                "yes"
            } else {
                "no"
            }
        );
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::MQ | VhostUserProtocolFeatures::CONFIG
    }

    fn set_event_idx(&self, enabled: bool) {
        *self.event_idx.lock().unwrap_or_else(|p| p.into_inner()) = enabled;
    }

    fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
        protocol::config_read(&self.shared.config, offset, size)
    }

    fn update_memory(&self, mem: Mem) -> io::Result<()> {
        self.shared.lock().io[self.side.index()].mem = Some(mem);
        Ok(())
    }

    /// The worker thread's exit event: without one, dropping the daemon after a
    /// disconnect would wait for the worker forever.
    fn exit_event(&self, _thread_index: usize) -> Option<(EventConsumer, EventNotifier)> {
        match new_event_consumer_and_notifier(EventFlag::NONBLOCK) {
            Ok(pair) => Some(pair),
            Err(e) => {
                warn!("side {}: cannot create exit event: {e}", self.side);
                None
            }
        }
    }

    fn stop_vring(&self, queue_index: u32) -> io::Result<()> {
        if queue_index != u32::from(EVENT_QUEUE) {
            return Ok(());
        }
        let side = self.side;
        let mut w = self.shared.lock();
        let Some(vring) = w.io[side.index()].eventq.clone() else {
            return Ok(());
        };
        w.io[side.index()].stopped = Some(ring_id(&vring));
        w.cable.freeze(side);
        info!(
            "side {side}: device stopped ({} irq buffers held)",
            w.cable.held_count(side)
        );
        Ok(())
    }

    fn handle_event(
        &self,
        device_event: u16,
        evset: EventSet,
        vrings: &[VringRwLock],
        _thread_id: usize,
    ) -> io::Result<()> {
        if evset != EventSet::IN {
            return Err(io::Error::other(format!("unexpected event set {evset:?}")));
        }
        let [requestq, eventq] = vrings else {
            return Err(io::Error::other("expected two vrings"));
        };
        {
            let mut w = self.shared.lock();
            let io = &mut w.io[self.side.index()];
            if io.eventq.is_none() {
                io.eventq = Some(eventq.clone());
            }
        }
        match device_event {
            REQUEST_QUEUE => self.drain(requestq, Self::process_requests),
            EVENT_QUEUE => self.drain(eventq, Self::process_events),
            other => Err(io::Error::other(format!("unexpected device event {other}"))),
        }
    }
}
