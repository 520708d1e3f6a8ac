// SPDX-License-Identifier: GPL-2.0

//! The link over the cable: a bus thread drives the lines through the protocol state
//! machine ([`gpio_bus::Endpoint`]) and moves [`LinkMessage`]s: the link's hello, the
//! core's frames and the emulated one-sided page reads.
//!
//! The thread is the only one that touches the lines and the endpoint. It runs when the
//! peer's strobe changes (a threaded interrupt wakes it), when something is queued, and
//! at the endpoint's deadlines. Everything the rest of the module shares with it is in
//! [`State`], under one mutex that is never held while the lines are driven.
//!
//! Link up: each side sends a hello with a random session number; a side that hears a
//! hello of a new session from the configured peer reports the link up (and reports it
//! down first if it was up: the peer restarted) and answers with its own. Link down: a
//! frame not acknowledged after all retries while up, `reset` from core, or unbind.

use core::{
    ffi::{c_int, c_void},
    sync::atomic::{AtomicBool, Ordering},
};

use kernel::{
    bindings, new_condvar, new_mutex,
    prelude::*,
    sync::{global_lock, Arc, CondVar, CondVarTimeoutResult, Mutex},
    time::msecs_to_jiffies,
};

use crate::clock::now_us;
use crate::core_client::{self, RawPage};
use crate::errno;
use crate::lines::{self, Lines};
use crate::random::random_u32;
use crate::shared::arith::div_small;
use crate::shared::gpio_bus::{self, Counters, Drive, Endpoint, Event, Levels, Side, Timing};
use crate::shared::gpio_link::{LinkMessage, MAX_LEN, MAX_READ, READ_CHUNK};
use crate::shared::wire::{self, MsgType};

/// Frame buffers: the largest link message.
const FRAME_LEN: usize = gpio_bus::frame_len(MAX_LEN);
type BusEndpoint = Endpoint<FRAME_LEN>;

/// Core frames queued for the bus at most (then `send` answers `-ENOBUFS`).
const MAX_QUEUED_MESSAGES: usize = 64;
/// Hello again after this long without a link.
const HELLO_EVERY_US: u64 = 1_000_000;
/// The bus timing: generous, because a step of the peer is a few GPIO accesses and an
/// interrupt, which on a virtual machine of a busy host (every access a virtio request)
/// can take a large fraction of a second; a real loss is still noticed within seconds.
const TIMING: Timing = Timing {
    byte_timeout_us: 1_000_000,
    ack_timeout_us: 2_000_000,
    max_tries: 8,
};
/// After the peer acknowledged a frame, this side waits this long (µs) before it
/// submits the next one, so that a frame the peer has queued gets the bus first (its
/// start takes a few GPIO accesses).
const YIELD_AFTER_SENT_US: u64 = 30_000;
/// The thread looks around at least this often.
const IDLE_WAKE_MS: u32 = 100;
/// Bus steps between two looks at the queues and the stop flag.
const STEPS_PER_ROUND: u32 = 256;

/// What the bus thread is sending.
#[derive(Clone, Copy, PartialEq, Eq)]
enum InFlight {
    Hello,
    Message,
    Read,
}

/// A page exposed to the peer.
struct Exposed {
    cookie: u64,
    rkey: u32,
    /// Holds a page reference (taken in `expose`, dropped when removed).
    page: *mut bindings::page,
}

/// A `read_page` waiting for its data.
struct Reader {
    id: u32,
    /// The caller's page: valid while the reader is in the table (the caller waits
    /// in `read_page` and removes it before returning).
    page: *mut bindings::page,
    len: u32,
    got: u32,
    status: Option<i32>,
}

/// What the link shares between the bus thread and the transport's callers.
struct State {
    /// The peer's strobe moved, something was queued, or the thread must stop.
    kicked: bool,
    /// Core asked for a link to the peer (`connect`), until `disconnect`.
    wanted: bool,
    /// Core asked to drop the link (`reset`).
    reset: bool,
    up: bool,
    /// This side's session (new after every link down).
    session: u32,
    /// The peer's session, once heard.
    peer_session: Option<u32>,
    /// A hello to send (`true`: as a reply).
    hello_due: Option<bool>,
    next_hello_us: u64,
    /// Encoded MESSAGE link messages, oldest first.
    messages: KVec<KVec<u8>>,
    /// Encoded READ and READ_DATA link messages, oldest first.
    reads: KVec<KVec<u8>>,
    exposed: KVec<Exposed>,
    readers: KVec<Reader>,
    next_cookie: u64,
    next_read: u32,
    /// The endpoint's counters, copied by the thread.
    counters: Counters,
    /// Link messages from the peer that did not decode.
    bad_messages: u64,
    /// The lines failed (controller error): the first errno seen.
    line_error: i32,
}

/// The link of one bound cable.
#[pin_data]
pub(crate) struct Link {
    me: u32,
    peer: u32,
    side: Side,
    lines: Lines,
    #[pin]
    state: Mutex<State>,
    /// Signalled on every change of `state` that someone may wait for.
    #[pin]
    changed: CondVar,
}

// SAFETY: The raw page pointers in `State` are only used under its mutex, and the
// pages they name are kept alive as documented at each field.
unsafe impl Send for State {}

// Kernel structs pass by pointer only; the lint objects to zero-sized members that
// bindgen gives some of them (see docs/ARCHITECTURE.md, "Unsafe code").
#[allow(improper_ctypes)]
extern "C" {
    fn ssi_gpio_thread_start(
        f: unsafe extern "C" fn(*mut c_void) -> c_int,
        ctx: *mut c_void,
    ) -> *mut c_void;
    fn ssi_gpio_thread_stop(t: *mut c_void);
    fn ssi_gpio_thread_should_stop() -> bool;
    fn ssi_gpio_page_write(page: *mut bindings::page, off: usize, src: *const u8, len: usize);
    fn ssi_gpio_page_read(page: *mut bindings::page, off: usize, dst: *mut u8, len: usize);
    fn ssi_gpio_page_get(page: *mut bindings::page);
    fn ssi_gpio_page_put(page: *mut bindings::page);
}

/// Encodes `m` into a new buffer.
fn encode(m: &LinkMessage<'_>) -> Result<KVec<u8>> {
    let mut buf = KVec::from_elem(0u8, MAX_LEN, GFP_KERNEL)?;
    let n = m.encode(&mut buf).ok_or(EINVAL)?;
    buf.truncate(n);
    Ok(buf)
}

/// Whether `frame` (a core wire frame) is a heartbeat.
fn is_heartbeat(frame: &[u8]) -> bool {
    wire::frame_type(frame) == Some(MsgType::Heartbeat)
}

/// What the thread reports to core after dropping the state lock.
#[derive(Default)]
struct Report {
    down: bool,
    up: bool,
}

impl State {
    /// Drops the link: queued traffic and exposures go, readers fail, hello again.
    fn go_down(&mut self, report: &mut Report, now: u64) {
        if self.up {
            report.down = true;
        }
        self.up = false;
        self.peer_session = None;
        self.session = random_u32();
        self.messages.clear();
        self.reads.clear();
        for r in self.readers.iter_mut() {
            r.status.get_or_insert(errno::enotconn().to_errno());
        }
        for e in self.exposed.drain_all() {
            // SAFETY: `expose` took this reference.
            unsafe { ssi_gpio_page_put(e.page) };
        }
        self.hello_due = None;
        self.next_hello_us = now;
    }

    /// A hello from the peer.
    fn heard_hello(&mut self, session: u32, reply: bool, report: &mut Report, now: u64) {
        if !self.wanted {
            return;
        }
        if self.peer_session != Some(session) {
            if self.up {
                // The peer restarted its side: what was in flight is gone.
                self.go_down(report, now);
            }
            self.peer_session = Some(session);
            self.up = true;
            report.up = true;
            if !reply {
                self.hello_due = Some(true);
            }
        } else if !reply {
            // Our answer was lost.
            self.hello_due = Some(true);
        }
    }

    /// The next link message to send, by priority: hello, core frames, reads.
    fn next_outgoing(&mut self, me: u32, peer: u32, now: u64) -> Option<(KVec<u8>, InFlight)> {
        if self.wanted && !self.up && self.hello_due.is_none() && now >= self.next_hello_us {
            self.hello_due = Some(false);
        }
        if let Some(reply) = self.hello_due.take() {
            self.next_hello_us = now.saturating_add(HELLO_EVERY_US);
            let m = LinkMessage::Hello {
                node: me,
                to: peer,
                session: self.session,
                reply,
            };
            return encode(&m).ok().map(|b| (b, InFlight::Hello));
        }
        // Core frames first: heartbeats are merged (at most one waits), so they cannot
        // starve the page chunks, while a page crawling over the cable must not keep
        // the heartbeats back for longer than one chunk.
        if !self.messages.is_empty() {
            return self.messages.remove(0).ok().map(|b| (b, InFlight::Message));
        }
        self.reads.remove(0).ok().map(|b| (b, InFlight::Read))
    }
}

impl Link {
    fn new(me: u32, peer: u32, lines: Lines) -> impl PinInit<Self, Error> {
        // Node ids are below SSI_MAX_NODES (checked at module load).
        let side = Side::of(me as u16, peer as u16);
        try_pin_init!(Self {
            me,
            peer,
            side,
            lines,
            state <- new_mutex!(State {
                kicked: false,
                wanted: WANTED.load(Ordering::Relaxed),
                reset: false,
                up: false,
                session: random_u32(),
                peer_session: None,
                hello_due: None,
                next_hello_us: 0,
                messages: KVec::new(),
                reads: KVec::new(),
                exposed: KVec::new(),
                readers: KVec::new(),
                next_cookie: 1,
                next_read: 1,
                counters: Counters::default(),
                bad_messages: 0,
                line_error: 0,
            }),
            changed <- new_condvar!(),
        })
    }

    /// Wakes the bus thread.
    fn kick(&self) {
        self.state.lock().kicked = true;
        self.changed.notify_all();
    }

    /// Core wants (or no longer wants) the peer linked: a link that is no longer
    /// wanted is dropped.
    fn set_wanted(&self, wanted: bool) {
        let mut s = self.state.lock();
        s.wanted = wanted;
        if !wanted {
            s.reset = true;
        }
        drop(s);
        self.kick();
    }

    /// Core wants the link to `node` dropped and made again.
    pub(crate) fn reset(&self, node: u32) {
        if node == self.peer {
            self.state.lock().reset = true;
            self.kick();
        }
    }

    /// Queues a core frame for the peer.
    pub(crate) fn send(&self, node: u32, frame: &[u8]) -> Result {
        if node != self.peer {
            return Err(errno::enotconn());
        }
        let buf = encode(&LinkMessage::Message(frame))?;
        let mut s = self.state.lock();
        if !s.up {
            return Err(errno::enotconn());
        }
        if is_heartbeat(frame) {
            // Only the newest heartbeat matters: one waiting for the bus is replaced.
            if let Some(queued) = s.messages.iter_mut().find(|b| is_heartbeat(&b[1..])) {
                *queued = buf;
                return Ok(());
            }
        }
        if s.messages.len() >= MAX_QUEUED_MESSAGES {
            return Err(errno::enobufs());
        }
        s.messages.push(buf, GFP_KERNEL)?;
        s.kicked = true;
        drop(s);
        self.changed.notify_all();
        Ok(())
    }

    /// Lets the peer read `page` until `unexpose`.
    pub(crate) fn expose(&self, node: u32, page: RawPage) -> Result<core_client::Exposure> {
        if node != self.peer {
            return Err(errno::enotconn());
        }
        let mut s = self.state.lock();
        if !s.up {
            return Err(errno::enotconn());
        }
        s.exposed.reserve(1, GFP_KERNEL)?;
        let cookie = s.next_cookie;
        s.next_cookie += 1;
        let rkey = random_u32();
        // SAFETY: Core holds a reference to `page` during this call; this one is ours
        // until the exposure is removed.
        unsafe { ssi_gpio_page_get(page.0) };
        s.exposed.push(
            Exposed {
                cookie,
                rkey,
                page: page.0,
            },
            GFP_KERNEL,
        )?;
        Ok(core_client::Exposure {
            addr: cookie,
            rkey,
            cookie,
        })
    }

    /// Revokes an exposure (unknown cookies are ignored).
    pub(crate) fn unexpose(&self, cookie: u64) {
        let mut s = self.state.lock();
        if let Some(i) = s.exposed.iter().position(|e| e.cookie == cookie) {
            if let Ok(e) = s.exposed.remove(i) {
                // SAFETY: `expose` took this reference.
                unsafe { ssi_gpio_page_put(e.page) };
            }
        }
    }

    /// Reads `len` bytes of the peer's exposure `addr`/`rkey` into `page`: a READ over
    /// the bus, answered by the peer's bus thread with the page's bytes.
    pub(crate) fn read_page(
        &self,
        node: u32,
        addr: u64,
        rkey: u32,
        page: RawPage,
        len: u32,
        timeout_ms: u32,
    ) -> Result {
        if node != self.peer {
            return Err(errno::enotconn());
        }
        if len == 0 || len > MAX_READ {
            return Err(EINVAL);
        }
        let mut s = self.state.lock();
        if !s.up {
            return Err(errno::enotconn());
        }
        let id = s.next_read;
        s.next_read = s.next_read.wrapping_add(1);
        let request = encode(&LinkMessage::Read {
            id,
            addr,
            rkey,
            len,
        })?;
        s.readers.reserve(1, GFP_KERNEL)?;
        s.reads.push(request, GFP_KERNEL)?;
        s.readers.push(
            Reader {
                id,
                page: page.0,
                len,
                got: 0,
                status: None,
            },
            GFP_KERNEL,
        )?;
        s.kicked = true;
        self.changed.notify_all();
        let mut left = msecs_to_jiffies(timeout_ms);
        let result = loop {
            let i = s.readers.iter().position(|r| r.id == id);
            match i.and_then(|i| s.readers[i].status) {
                Some(0) => break Ok(()),
                Some(st) => break Err(Error::from_errno(st)),
                None => {}
            }
            if left == 0 {
                break Err(ETIMEDOUT);
            }
            match self.changed.wait_interruptible_timeout(&mut s, left) {
                CondVarTimeoutResult::Timeout => left = 0,
                CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
                CondVarTimeoutResult::Signal { .. } => break Err(EINTR),
            }
        };
        // The reader leaves the table before the caller's page may go.
        if let Some(i) = s.readers.iter().position(|r| r.id == id) {
            let _ = s.readers.remove(i);
        }
        result
    }

    /// One line for `/proc/ssi/transports` (at most 96 bytes with the prefix).
    pub(crate) fn describe(&self, out: &mut impl core::fmt::Write) -> core::fmt::Result {
        let s = self.state.lock();
        let c = &s.counters;
        use crate::shared::text::U64;
        write!(
            out,
            "{} fr {}/{} retx {} crc {} tmo {} B {}",
            if s.up {
                "up"
            } else if s.wanted {
                "linking"
            } else {
                "idle"
            },
            U64(c.sent),
            U64(c.delivered),
            U64(c.retransmits),
            U64(c.crc_errors + c.framing_errors),
            U64(c.timeouts),
            U64(c.bytes_on_wire),
        )?;
        if s.bad_messages != 0 {
            write!(out, " bad {}", U64(s.bad_messages))?;
        }
        if s.line_error != 0 {
            write!(out, " line error {}", s.line_error)?;
        }
        Ok(())
    }
}

/// The bus thread's own state.
struct Bus {
    ep: KBox<BusEndpoint>,
    /// What the lines are driven to now.
    applied: Drive,
    in_flight: Option<InFlight>,
    /// The endpoint's deadline from its last answer (µs).
    deadline_us: Option<u64>,
    /// No new frame is submitted before this time (µs): see [`YIELD_AFTER_SENT_US`].
    hold_until_us: u64,
}

impl Link {
    /// Drives the lines to `want`: data before a rising strobe, after a falling one.
    fn apply(&self, bus: &mut Bus, want: Drive) -> Result {
        let now = bus.applied;
        if want.strobe && !now.strobe {
            self.lines.drive_data(now.data, want.data)?;
            self.lines.drive_strobe(self.side == Side::A, true)?;
        } else if !want.strobe && now.strobe {
            self.lines.drive_strobe(self.side == Side::A, false)?;
            self.lines.drive_data(now.data, want.data)?;
        } else {
            self.lines.drive_data(now.data, want.data)?;
        }
        bus.applied = want;
        Ok(())
    }

    /// Samples the lines, reading the data lines only when the endpoint needs them.
    fn sample(&self, bus: &Bus) -> Result<Levels> {
        let strobe = self.lines.peer_strobe(self.side == Side::A)?;
        let data = if !bus.ep.reads_data() {
            bus.ep.drive().data
        } else if strobe {
            self.lines.read_data()?
        } else {
            gpio_bus::RELEASED
        };
        Ok(Levels {
            data,
            peer_strobe: strobe,
        })
    }

    /// Handles a delivered link message (state lock not held).
    fn delivered(&self, bus: &Bus, report: &mut Report) {
        let now = now_us();
        match LinkMessage::decode(bus.ep.received()) {
            Some(LinkMessage::Hello {
                node,
                to,
                session,
                reply,
            }) if node == self.peer && to == self.me => {
                self.state.lock().heard_hello(session, reply, report, now);
            }
            Some(LinkMessage::Message(frame)) => {
                if self.state.lock().up {
                    core_client::deliver(self.peer, frame);
                }
            }
            Some(LinkMessage::Read {
                id,
                addr,
                rkey,
                len,
            }) => self.serve_read(id, addr, rkey, len),
            Some(LinkMessage::ReadData {
                id,
                status,
                offset,
                data,
            }) => {
                let mut s = self.state.lock();
                if let Some(r) = s.readers.iter_mut().find(|r| r.id == id) {
                    if r.status.is_some() {
                        // Already failed or complete.
                    } else if status != 0 {
                        r.status = Some(status);
                    } else if offset != r.got || offset as usize + data.len() > r.len as usize {
                        r.status = Some(errno::eproto().to_errno());
                    } else {
                        // SAFETY: The reader is in the table, so its caller still waits
                        // in `read_page` with the page referenced; the range is inside
                        // the page (`len` <= MAX_READ, checked above).
                        unsafe {
                            ssi_gpio_page_write(r.page, offset as usize, data.as_ptr(), data.len())
                        };
                        r.got += data.len() as u32;
                        if r.got >= r.len {
                            r.status = Some(0);
                        }
                    }
                }
                drop(s);
                self.changed.notify_all();
            }
            _ => self.state.lock().bad_messages += 1,
        }
    }

    /// Answers the peer's READ from this side's exposures.
    fn serve_read(&self, id: u32, addr: u64, rkey: u32, len: u32) {
        let page = {
            let s = self.state.lock();
            s.exposed
                .iter()
                .find(|e| e.cookie == addr && e.rkey == rkey)
                .map(|e| {
                    // SAFETY: The exposure holds a reference; this one lasts the copy.
                    unsafe { ssi_gpio_page_get(e.page) };
                    e.page
                })
        };
        let mut chunks = KVec::<KVec<u8>>::new();
        let status = match page {
            None => ENOENT.to_errno(),
            Some(_) if len == 0 || len > MAX_READ => EINVAL.to_errno(),
            Some(p) => {
                let mut r = Ok(());
                let mut off = 0usize;
                let mut data = [0u8; READ_CHUNK];
                while off < len as usize && r.is_ok() {
                    let n = READ_CHUNK.min(len as usize - off);
                    // SAFETY: We hold a reference to the page; `off + n` <= MAX_READ.
                    unsafe { ssi_gpio_page_read(p, off, data.as_mut_ptr(), n) };
                    r = encode(&LinkMessage::ReadData {
                        id,
                        status: 0,
                        offset: off as u32,
                        data: &data[..n],
                    })
                    .and_then(|b| chunks.push(b, GFP_KERNEL).map_err(Into::into));
                    off += n;
                }
                if r.is_err() {
                    chunks.clear();
                }
                r.map_or(ENOMEM.to_errno(), |_| 0)
            }
        };
        if let Some(p) = page {
            // SAFETY: Taken above.
            unsafe { ssi_gpio_page_put(p) };
        }
        if status != 0 {
            if let Ok(b) = encode(&LinkMessage::ReadData {
                id,
                status,
                offset: 0,
                data: &[],
            }) {
                let _ = chunks.push(b, GFP_KERNEL);
            }
        }
        let mut s = self.state.lock();
        for c in chunks.drain_all() {
            let _ = s.reads.push(c, GFP_KERNEL);
        }
    }

    /// The bus thread.
    fn run(&self) {
        let Ok(mut slot) = KBox::<BusEndpoint>::new_uninit(GFP_KERNEL) else {
            pr_err!("no memory for the bus endpoint\n");
            self.wait_for_stop();
            return;
        };
        // SAFETY: `slot` is a fresh, aligned allocation for an endpoint.
        unsafe { BusEndpoint::init_at(slot.as_mut_ptr(), self.side, random_u32(), TIMING) };
        // SAFETY: `init_at` initialised it.
        let ep = unsafe { slot.assume_init() };
        let mut bus = Bus {
            ep,
            applied: Drive::IDLE,
            in_flight: None,
            deadline_us: None,
            hold_until_us: 0,
        };
        // SAFETY: No preconditions.
        while !unsafe { ssi_gpio_thread_should_stop() } {
            let busy = self.round(&mut bus);
            let mut s = self.state.lock();
            if !busy && !s.kicked {
                let deadline = match (bus.deadline_us, bus.hold_until_us) {
                    (d, h) if h > now_us() => Some(d.map_or(h, |d| d.min(h))),
                    (d, _) => d,
                };
                let wait = match deadline {
                    Some(t) => {
                        let ms = div_small(t.saturating_sub(now_us()), 1000).0;
                        (ms as u32).clamp(1, IDLE_WAKE_MS)
                    }
                    None => IDLE_WAKE_MS,
                };
                let _ = self
                    .changed
                    .wait_interruptible_timeout(&mut s, msecs_to_jiffies(wait));
            }
            s.kicked = false;
        }
        // Leave the bus released.
        let _ = self.apply(&mut bus, Drive::IDLE);
        let mut report = Report::default();
        self.state.lock().go_down(&mut report, now_us());
        self.changed.notify_all();
    }

    fn wait_for_stop(&self) {
        // SAFETY: No preconditions.
        while !unsafe { ssi_gpio_thread_should_stop() } {
            let mut s = self.state.lock();
            let _ = self
                .changed
                .wait_interruptible_timeout(&mut s, msecs_to_jiffies(IDLE_WAKE_MS));
        }
    }

    /// One round: take the next message, step the bus while it moves. Returns true if
    /// it should run again at once.
    fn round(&self, bus: &mut Bus) -> bool {
        let now = now_us();
        let mut report = Report::default();
        {
            let mut s = self.state.lock();
            if s.reset {
                s.reset = false;
                bus.ep.cancel();
                bus.in_flight = None;
                s.go_down(&mut report, now);
            }
            if !bus.ep.busy() && now >= bus.hold_until_us {
                if let Some((payload, kind)) = s.next_outgoing(self.me, self.peer, now) {
                    if bus.ep.submit(&payload).is_ok() {
                        bus.in_flight = Some(kind);
                    }
                }
            }
        }
        let mut again = false;
        for _ in 0..STEPS_PER_ROUND {
            let levels = match self.sample(bus) {
                Ok(l) => l,
                Err(e) => {
                    self.line_failed(e);
                    break;
                }
            };
            let p = bus.ep.poll(now_us(), levels);
            let toggled = p.drive.strobe != bus.applied.strobe;
            if let Err(e) = self.apply(bus, p.drive) {
                self.line_failed(e);
                break;
            }
            match p.event {
                Some(Event::Delivered { .. }) => self.delivered(bus, &mut report),
                Some(Event::Sent) => {
                    bus.in_flight = None;
                    // The peer has just acknowledged: give it a moment to start a
                    // frame of its own before this side streams on (else a side
                    // with page chunks queued keeps the bus and the other's
                    // heartbeats wait for the whole page).
                    bus.hold_until_us = now_us().saturating_add(YIELD_AFTER_SENT_US);
                }
                Some(Event::Failed) => {
                    let kind = bus.in_flight.take();
                    let mut s = self.state.lock();
                    if kind != Some(InFlight::Hello) && s.up {
                        pr_warn!(
                            "node {}: no answer on the cable after {} tries: link down\n",
                            self.peer,
                            TIMING.max_tries
                        );
                        s.go_down(&mut report, now_us());
                    }
                }
                None => {}
            }
            bus.deadline_us = p.deadline_us;
            // After this side moved its strobe the next step is the peer's: its
            // strobe's interrupt wakes the thread (or the deadline does), so sampling
            // at once would only cost a slow read.
            again = p.again && !toggled;
            if !again {
                break;
            }
        }
        {
            let mut s = self.state.lock();
            s.counters = bus.ep.counters();
            // More to send once the endpoint is free.
            if !bus.ep.busy()
                && (!s.messages.is_empty() || !s.reads.is_empty() || s.hello_due.is_some())
            {
                again = true;
            }
        }
        if report.down {
            core_client::link_event(self.peer, false);
        }
        if report.up {
            core_client::link_event(self.peer, true);
        }
        if report.down || report.up {
            self.changed.notify_all();
        }
        again
    }

    fn line_failed(&self, e: Error) {
        let mut s = self.state.lock();
        if s.line_error == 0 {
            pr_err!("the cable's lines fail: {:?}\n", e);
            s.line_error = e.to_errno();
        }
    }
}

/// Core asked for a link to the peer: kept across unbinding and binding the cable.
static WANTED: AtomicBool = AtomicBool::new(false);

/// Core wants (or no longer wants) `node` linked: only the peer at the other end of
/// the cable can be. Remembered for a cable bound later.
pub(crate) fn set_wanted(node: u32, peer: u32, wanted: bool) -> Result {
    if node != peer {
        return Err(errno::eopnotsupp());
    }
    WANTED.store(wanted, Ordering::Relaxed);
    if let Some(l) = current() {
        l.set_wanted(wanted);
    }
    Ok(())
}

/// The running link of the bound cable: its thread and interrupt.
///
/// # Invariants
///
/// `thread` is a started kthread running [`thread_main`] with a reference to `link`
/// (taken by `start`, dropped by the thread); `irq` is a requested interrupt whose
/// context is `link`. Both are stopped in `drop`, the interrupt first.
pub(crate) struct Running {
    link: Arc<Link>,
    thread: *mut c_void,
    irq: *mut c_void,
}

// SAFETY: The raw pointers are only used in `drop`, from any thread.
unsafe impl Send for Running {}
// SAFETY: As above: `&Running` gives no access to them.
unsafe impl Sync for Running {}

/// The bus thread's entry point (`kthread_run`, through the C shim).
///
/// # Safety
///
/// `ctx` is `Arc::into_raw` of a `Link`, a reference handed over to this thread.
unsafe extern "C" fn thread_main(ctx: *mut c_void) -> c_int {
    // SAFETY: `start` passed `Arc::into_raw` of the link; this thread owns that
    // reference now.
    let link = unsafe { Arc::from_raw(ctx.cast::<Link>()) };
    link.run();
    0
}

/// Called by the peer's strobe interrupt (threaded, in the C shim): wakes the bus thread.
///
/// # Safety
///
/// `ctx` is the link of a `Running`, which frees the interrupt before it drops its
/// reference, so the link outlives every call.
unsafe extern "C" fn irq_wake(ctx: *mut c_void) {
    // SAFETY: `ctx` is the link of a `Running`, which frees the interrupt before it
    // drops its reference.
    let link = unsafe { &*ctx.cast::<Link>() };
    link.kick();
}

impl Running {
    /// Sets the lines up and starts the bus thread and the interrupt.
    pub(crate) fn start(me: u32, peer: u32, lines: Lines) -> Result<Self> {
        let link = Arc::pin_init(Link::new(me, peer, lines), GFP_KERNEL)?;
        let side_a = link.side == Side::A;
        link.lines.setup(side_a)?;
        let ctx = Arc::into_raw(link.clone()).cast_mut().cast::<c_void>();
        // SAFETY: `thread_main` takes over the reference `ctx` holds.
        let thread = unsafe { ssi_gpio_thread_start(thread_main, ctx) };
        if let Err(e) = kernel::error::from_err_ptr(thread) {
            // SAFETY: The thread never ran: the reference is still ours.
            drop(unsafe { Arc::from_raw(ctx.cast::<Link>()) });
            let _ = link.lines.release(side_a);
            return Err(e);
        }
        // SAFETY: The link outlives the interrupt: `drop` frees it first.
        let irq = match unsafe {
            link.lines
                .request_irq(side_a, irq_wake, Arc::as_ptr(&link).cast_mut().cast())
        } {
            Ok(irq) => irq,
            Err(e) => {
                // SAFETY: Started above and not stopped yet.
                unsafe { ssi_gpio_thread_stop(thread) };
                let _ = link.lines.release(side_a);
                return Err(e);
            }
        };
        set_current(Some(link.clone()));
        Ok(Self { link, thread, irq })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        set_current(None);
        // SAFETY: By the type invariant; after this no wake-up uses the link.
        unsafe { lines::irq_free(self.irq) };
        // SAFETY: By the type invariant; waits until the thread has returned.
        unsafe { ssi_gpio_thread_stop(self.thread) };
        let _ = self.link.lines.release(self.link.side == Side::A);
        core_client::link_event(self.link.peer, false);
    }
}

global_lock! {
    // SAFETY: `init_current` runs first in the module initialiser.
    unsafe(uninit) static CURRENT: Mutex<Option<Arc<Link>>> = None;
}

/// Initialises the record of the running link. Call once, first thing at module load.
pub(crate) fn init_current() {
    // SAFETY: Called once from the module initialiser, before any other use.
    unsafe { CURRENT.init() };
}

fn set_current(link: Option<Arc<Link>>) {
    *CURRENT.lock() = link;
}

/// The link of the bound cable, if any.
pub(crate) fn current() -> Option<Arc<Link>> {
    CURRENT.lock().clone()
}
