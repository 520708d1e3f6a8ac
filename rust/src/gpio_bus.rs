// SPDX-License-Identifier: GPL-2.0

//! The GPIO cable's bus protocol: two endpoints, 8 data lines and two strobes.
//!
//! Pure state machine, driven by the transport: it reports the line levels it samples
//! (on every strobe interrupt and when a deadline passes) and drives what
//! [`Endpoint::poll`] answers. Only comparisons, additions and shifts on `u64`: safe on
//! 32-bit ARM.
//!
//! # Electrical model
//! - Data lines D0..D7 are open drain with pull-ups: a side either pulls a line low or
//!   releases it, and a line reads high only if neither side pulls it (wired AND).
//!   Both sides may drive at once without harm; a side that reads back something else
//!   than it drove knows that someone else pulls. ([`Drive::data`]: a 0 bit pulls the
//!   line low, a 1 bit releases it.)
//! - Each strobe has one owner, push-pull: `valid` is driven only by side [`Side::A`]
//!   (the lower node id), `ready` only by side [`Side::B`]. A side reads the other's.
//! - When the strobe goes high, the transport writes the data lines first; when it goes
//!   low, the strobe first. So data are stable whenever a strobe is seen high.
//!
//! # Arbitration (who drives the data lines)
//! Idle: both strobes low, data released. A side that wants to send pulls its own id
//! line (D0 for A, D1 for B) and raises its strobe. The other side, idle, sees the
//! strobe high with that id line low and *grants* by raising its strobe without
//! pulling anything. If both start at once, each sees the other's strobe high with both
//! id lines low: a collision. The side that did not send the last DATA frame wins (A
//! if unknown; ACKs do not count, so a side streaming frames cannot starve the side
//! acknowledging them); the loser lowers its strobe, releases its id line, and grants. The winner
//! proceeds only on "peer strobe high and peer id line released", a state the loser
//! shows only once it grants. Then both lower their strobes and the data phase starts.
//!
//! # Data phase: a four-phase handshake per byte
//! The sender puts the byte on D0..D7 and raises its strobe; the receiver reads it and
//! raises its strobe; the sender lowers its strobe (after the last byte it also releases
//! the data lines); the receiver lowers its strobe. Every step is a level, never an
//! edge count, so a late, lost, duplicated or reordered interrupt only delays a step:
//! the next sample shows the same levels. 8 data transitions at most plus 4 strobe
//! transitions per byte.
//!
//! # Frames, acknowledgement and retransmission
//! A frame is `kind, seq, len (u16 LE), epoch (u32 LE), payload, CRC-32 (LE)` over
//! everything before the CRC. DATA frames carry the core's messages; an ACK frame
//! (no payload) names the sequence number and epoch of the DATA frame it acknowledges.
//! One DATA frame is outstanding per direction (stop and wait); it is sent again when
//! no ACK came within the ACK timeout or when its transmission broke off, up to
//! `max_tries` times, then reported as failed. The receiver acknowledges every intact
//! DATA frame and delivers it unless it repeats the last one (same epoch and seq: a
//! retransmission whose ACK was lost). A frame whose CRC, kind or length is wrong is
//! dropped (the sender retransmits): corrupted data are never delivered. The epoch is
//! random per endpoint instance: a peer that restarted starts a new sequence.
//!
//! # Timeouts and a vanished peer
//! Every wait for the peer has a deadline (`byte_timeout_us`). When it passes, the side
//! releases everything and waits until the peer's strobe is low again (the peer times
//! out too), then is idle: a frame cut off mid-way is dropped by the receiver and sent
//! again by the sender. A peer that vanished leaves its strobe as it was: if high, this
//! side never leaves recovery, and its DATA frame fails after `max_tries` ACK timeouts,
//! which the transport reports as a dead link.

/// Which end of the cable this endpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The lower node id: drives `valid`, pulls D0 to start.
    A,
    /// The higher node id: drives `ready`, pulls D1 to start.
    B,
}

impl Side {
    /// The side of node `me` on a cable to node `peer`.
    pub fn of(me: u16, peer: u16) -> Self {
        if me < peer {
            Self::A
        } else {
            Self::B
        }
    }

    /// The data line this side pulls low to start (as a mask).
    pub const fn id_line(self) -> u8 {
        match self {
            Self::A => 0x01,
            Self::B => 0x02,
        }
    }

    /// The other end.
    pub const fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }
}

/// All data lines released.
pub const RELEASED: u8 = 0xff;

/// What one side drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drive {
    /// Open drain: a 0 bit pulls that data line low, a 1 bit releases it.
    pub data: u8,
    /// This side's strobe.
    pub strobe: bool,
}

impl Drive {
    /// Nothing pulled, strobe low.
    pub const IDLE: Self = Self {
        data: RELEASED,
        strobe: false,
    };
}

/// What one side reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Levels {
    /// The data lines (the AND of both sides' drives).
    pub data: u8,
    /// The other side's strobe.
    pub peer_strobe: bool,
}

/// Bytes before the payload: kind, seq, length, epoch.
pub const HEADER_LEN: usize = 8;
/// Bytes after it: the CRC.
pub const CRC_LEN: usize = 4;
/// The bytes on the wire for a payload of `len` bytes.
pub const fn frame_len(len: usize) -> usize {
    HEADER_LEN + len + CRC_LEN
}

const KIND_DATA: u8 = 0xd5;
const KIND_ACK: u8 = 0xac;
const ACK_FRAME_LEN: usize = frame_len(0);

/// Timeouts and retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// The longest wait for one step of the peer (µs).
    pub byte_timeout_us: u64,
    /// The longest wait for the ACK of a transmitted DATA frame (µs).
    pub ack_timeout_us: u64,
    /// Transmissions of one DATA frame before it is reported failed.
    pub max_tries: u32,
}

impl Timing {
    /// For kernels on real boards or virtual machines: steps take microseconds to
    /// milliseconds (interrupt latency), so the limits are generous.
    pub const DEFAULT: Self = Self {
        byte_timeout_us: 200_000,
        ack_timeout_us: 500_000,
        max_tries: 8,
    };
}

/// What a call of [`Endpoint::poll`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A DATA frame arrived intact: its payload is [`Endpoint::received`] until the
    /// next call of `poll`.
    Delivered {
        /// Payload bytes.
        len: usize,
    },
    /// The submitted DATA frame was acknowledged: another can be submitted.
    Sent,
    /// The submitted DATA frame was not acknowledged after `max_tries` transmissions.
    Failed,
}

/// Why a frame could not be submitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// A DATA frame is still outstanding.
    Busy,
    /// The payload does not fit the endpoint's buffer.
    TooLong,
}

/// Counters, for `/proc` and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// DATA frames acknowledged.
    pub sent: u64,
    /// DATA frames delivered.
    pub delivered: u64,
    /// Payload bytes delivered.
    pub delivered_bytes: u64,
    /// DATA transmissions after the first.
    pub retransmits: u64,
    /// DATA frames given up.
    pub failed: u64,
    /// Frames dropped for a bad CRC.
    pub crc_errors: u64,
    /// Frames dropped for a bad kind or length, or unexpected line states.
    pub framing_errors: u64,
    /// Waits for the peer that timed out.
    pub timeouts: u64,
    /// Repeated DATA frames acknowledged again but not delivered.
    pub duplicates: u64,
    /// Simultaneous starts.
    pub collisions: u64,
    /// Bytes whose read-back differed from what this side drove.
    pub readback_errors: u64,
    /// Bytes moved over the lines, either way.
    pub bytes_on_wire: u64,
}

/// The answer of [`Endpoint::poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Poll {
    /// What to drive now.
    pub drive: Drive,
    /// Something to report.
    pub event: Option<Event>,
    /// The state changed: sample the lines and call `poll` again.
    pub again: bool,
    /// Call `poll` at this time at the latest, even without an interrupt (µs).
    pub deadline_us: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Strobe high and id line pulled: waiting for a grant (or a collision's end).
    Starting,
    /// Lost a collision: strobe low, data released, waiting for the winner's start.
    Yielded,
    /// Receiver: strobe high (the grant); waiting for the sender's strobe low.
    Granted,
    /// Receiver: strobe low; waiting for the sender's strobe high with byte `at`.
    RecvWait {
        at: usize,
    },
    /// Receiver: strobe high (byte `at` read); waiting for the sender's strobe low.
    RecvAck {
        at: usize,
    },
    /// Sender: granted, strobe low; waiting for the receiver's strobe low.
    Connect,
    /// Sender: byte `at` driven, strobe high; waiting for the receiver's strobe high.
    SendWait {
        at: usize,
    },
    /// Sender: strobe low; waiting for the receiver's strobe low.
    SendDone {
        at: usize,
    },
    /// Everything released; waiting for the peer's strobe low.
    Recover,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sending {
    Data,
    Ack,
}

/// One end of the cable, with frame buffers of `N` bytes (at least
/// `frame_len(largest payload)`).
pub struct Endpoint<const N: usize> {
    side: Side,
    epoch: u32,
    timing: Timing,
    phase: Phase,
    drive: Drive,
    /// Deadline of the current wait for the peer.
    step_deadline: Option<u64>,
    /// Who sent the last complete frame (collision priority), `None` if unknown.
    last_sender: Option<Side>,
    /// What the current transmission carries.
    sending: Sending,

    tx: [u8; N],
    tx_len: usize,
    /// A DATA frame is outstanding (submitted, not yet acknowledged or failed).
    tx_busy: bool,
    /// ... and must be (re)transmitted.
    tx_due: bool,
    tx_seq: u8,
    /// Transmissions of the DATA frame that got the bus, plus waits for the bus that
    /// lasted an ACK timeout.
    tries: u32,
    ack_deadline: Option<u64>,
    /// The end of the current wait for the bus (the frame is due, not yet granted).
    attempt_deadline: Option<u64>,

    ack: [u8; ACK_FRAME_LEN],
    /// An ACK to send: (seq, epoch) of the DATA frame.
    ack_due: Option<(u8, u32)>,

    rx: [u8; N],
    rx_len: usize,
    /// The peer's epoch and last delivered seq.
    peer_last: Option<(u32, u8)>,

    counters: Counters,
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`).
pub fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = !0u32;
    for &b in bytes {
        c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Writes the header of a frame and, after `payload_len` payload bytes already in
/// place, its CRC. Returns the frame's length.
fn seal(buf: &mut [u8], kind: u8, seq: u8, epoch: u32, payload_len: usize) -> usize {
    buf[0] = kind;
    buf[1] = seq;
    buf[2..4].copy_from_slice(&(payload_len as u16).to_le_bytes());
    buf[4..8].copy_from_slice(&epoch.to_le_bytes());
    let end = HEADER_LEN + payload_len;
    let crc = crc32(&buf[..end]);
    buf[end..end + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
    end + CRC_LEN
}

impl<const N: usize> Endpoint<N> {
    /// The largest payload.
    pub const MAX_PAYLOAD: usize = N - HEADER_LEN - CRC_LEN;

    /// An idle endpoint. `epoch` must differ between instances (a random number).
    pub const fn new(side: Side, epoch: u32, timing: Timing) -> Self {
        Self {
            side,
            epoch,
            timing,
            phase: Phase::Idle,
            drive: Drive::IDLE,
            step_deadline: None,
            last_sender: None,
            sending: Sending::Data,
            tx: [0; N],
            tx_len: 0,
            tx_busy: false,
            tx_due: false,
            tx_seq: 0,
            tries: 0,
            ack_deadline: None,
            attempt_deadline: None,
            ack: [0; ACK_FRAME_LEN],
            ack_due: None,
            rx: [0; N],
            rx_len: 0,
            peer_last: None,
            counters: Counters {
                sent: 0,
                delivered: 0,
                delivered_bytes: 0,
                retransmits: 0,
                failed: 0,
                crc_errors: 0,
                framing_errors: 0,
                timeouts: 0,
                duplicates: 0,
                collisions: 0,
                readback_errors: 0,
                bytes_on_wire: 0,
            },
        }
    }

    /// Builds an idle endpoint in place, for buffers too large for a kernel stack.
    ///
    /// # Safety
    ///
    /// `slot` must be valid for writes of a `Self` and suitably aligned. Afterwards it
    /// holds an initialised endpoint (as [`Endpoint::new`] would return).
    pub unsafe fn init_at(slot: *mut Self, side: Side, epoch: u32, timing: Timing) {
        // SAFETY: Every field is written once through `slot`, valid for writes by the
        // caller's guarantee; the arrays are plain bytes, for which zero is valid.
        unsafe {
            core::ptr::addr_of_mut!((*slot).tx).write_bytes(0, 1);
            core::ptr::addr_of_mut!((*slot).rx).write_bytes(0, 1);
            core::ptr::addr_of_mut!((*slot).ack).write_bytes(0, 1);
            core::ptr::addr_of_mut!((*slot).side).write(side);
            core::ptr::addr_of_mut!((*slot).epoch).write(epoch);
            core::ptr::addr_of_mut!((*slot).timing).write(timing);
            core::ptr::addr_of_mut!((*slot).phase).write(Phase::Idle);
            core::ptr::addr_of_mut!((*slot).drive).write(Drive::IDLE);
            core::ptr::addr_of_mut!((*slot).step_deadline).write(None);
            core::ptr::addr_of_mut!((*slot).last_sender).write(None);
            core::ptr::addr_of_mut!((*slot).sending).write(Sending::Data);
            core::ptr::addr_of_mut!((*slot).tx_len).write(0);
            core::ptr::addr_of_mut!((*slot).tx_busy).write(false);
            core::ptr::addr_of_mut!((*slot).tx_due).write(false);
            core::ptr::addr_of_mut!((*slot).tx_seq).write(0);
            core::ptr::addr_of_mut!((*slot).tries).write(0);
            core::ptr::addr_of_mut!((*slot).ack_deadline).write(None);
            core::ptr::addr_of_mut!((*slot).attempt_deadline).write(None);
            core::ptr::addr_of_mut!((*slot).ack_due).write(None);
            core::ptr::addr_of_mut!((*slot).rx_len).write(0);
            core::ptr::addr_of_mut!((*slot).peer_last).write(None);
            core::ptr::addr_of_mut!((*slot).counters).write(Counters::default());
        }
    }

    /// Whether the next [`Endpoint::poll`] may look at the data lines. It does not
    /// while it waits for the peer's strobe in a data phase (as sender, or as receiver
    /// that has read its byte), nor in the last grant step; a sender waiting for the
    /// receiver's strobe only counts read-back errors. A transport whose line reads are
    /// slow (a virtio GPIO request each) reads only the peer's strobe then and passes
    /// anything as `data` (what it drives, to keep the read-back count meaningful).
    pub fn reads_data(&self) -> bool {
        match self.phase {
            Phase::SendWait { .. } | Phase::RecvAck { .. } | Phase::Granted | Phase::Connect => {
                false
            }
            Phase::SendDone { at } => at + 1 == self.frame().len(),
            Phase::Idle
            | Phase::Starting
            | Phase::Yielded
            | Phase::RecvWait { .. }
            | Phase::Recover => true,
        }
    }

    /// This end.
    pub fn side(&self) -> Side {
        self.side
    }

    /// What this side drives now.
    pub fn drive(&self) -> Drive {
        self.drive
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// True if a DATA frame is outstanding.
    pub fn busy(&self) -> bool {
        self.tx_busy
    }

    /// True if the bus is idle on this side and nothing is due: the transport may stop
    /// polling until an interrupt or [`Endpoint::submit`].
    pub fn quiescent(&self) -> bool {
        self.phase == Phase::Idle && !self.tx_busy && self.ack_due.is_none()
    }

    /// The payload of the frame reported by the last [`Event::Delivered`].
    pub fn received(&self) -> &[u8] {
        &self.rx[HEADER_LEN..HEADER_LEN + self.rx_len]
    }

    /// Queues `payload` as the next DATA frame; poll to send it.
    pub fn submit(&mut self, payload: &[u8]) -> Result<(), SubmitError> {
        if self.tx_busy || self.transmitting_data() {
            return Err(SubmitError::Busy);
        }
        if payload.len() > Self::MAX_PAYLOAD {
            return Err(SubmitError::TooLong);
        }
        self.tx[HEADER_LEN..HEADER_LEN + payload.len()].copy_from_slice(payload);
        self.tx_seq = self.tx_seq.wrapping_add(1);
        self.tx_len = seal(
            &mut self.tx,
            KIND_DATA,
            self.tx_seq,
            self.epoch,
            payload.len(),
        );
        self.tx_busy = true;
        self.tx_due = true;
        self.tries = 0;
        self.ack_deadline = None;
        self.attempt_deadline = None;
        Ok(())
    }

    /// Gives up the outstanding DATA frame (the transport tears the link down).
    pub fn cancel(&mut self) {
        if self.transmitting_data()
            || (self.phase == Phase::Starting && self.sending == Sending::Data)
        {
            // Break the transmission off: the receiver drops the partial frame.
            self.recover(0);
        }
        self.tx_busy = false;
        self.tx_due = false;
        self.ack_deadline = None;
        self.attempt_deadline = None;
    }

    fn answer(&self, event: Option<Event>, again: bool) -> Poll {
        let deadline_us = [self.step_deadline, self.ack_deadline, self.attempt_deadline]
            .into_iter()
            .flatten()
            .min();
        Poll {
            drive: self.drive,
            event,
            again,
            deadline_us,
        }
    }

    fn enter(&mut self, phase: Phase, drive: Drive, now_us: u64) {
        if let Phase::RecvAck { .. } = phase {
            // A byte came in: the bus works, the peer is sending. Waiting for the bus
            // meanwhile is not a failed try.
            self.attempt_deadline = None;
        }
        self.phase = phase;
        self.drive = drive;
        self.step_deadline = match phase {
            Phase::Idle | Phase::Recover => None,
            _ => Some(now_us.saturating_add(self.timing.byte_timeout_us)),
        };
    }

    /// Breaks off whatever the bus was doing: everything released until the peer's
    /// strobe is low. A transmission cut off is due again.
    fn recover(&mut self, now_us: u64) {
        self.last_sender = None;
        self.enter(Phase::Recover, Drive::IDLE, now_us);
    }

    /// The lines show something the protocol does not allow here.
    fn framing_error(&mut self, now_us: u64) {
        self.counters.framing_errors += 1;
        self.recover(now_us);
    }

    /// The peer's strobe is high while this side is idle or yielded: a start to grant,
    /// or a frame this side does not know of.
    fn peer_strobe_unasked(&mut self, l: Levels, now_us: u64) {
        if self.peer_starts(l) {
            self.grant(now_us);
        } else {
            self.framing_error(now_us);
        }
    }

    fn frame(&self) -> &[u8] {
        match self.sending {
            Sending::Data => &self.tx[..self.tx_len],
            Sending::Ack => &self.ack[..],
        }
    }

    fn byte(&self, at: usize) -> u8 {
        self.frame()[at]
    }

    fn peer_starts(&self, l: Levels) -> bool {
        l.peer_strobe && l.data & self.side.other().id_line() == 0
    }

    fn wants_to_send(&self) -> bool {
        self.ack_due.is_some() || self.tx_due
    }

    /// Chooses the next transmission and pulls the id line.
    fn start(&mut self, now_us: u64) {
        if let Some((seq, epoch)) = self.ack_due {
            seal(&mut self.ack, KIND_ACK, seq, epoch, 0);
            self.sending = Sending::Ack;
        } else {
            // A try counts once the bus is granted (or after a whole ACK timeout
            // without it): a lost arbitration is free.
            self.sending = Sending::Data;
        }
        let drive = Drive {
            data: RELEASED & !self.side.id_line(),
            strobe: true,
        };
        self.enter(Phase::Starting, drive, now_us);
    }

    /// True while the DATA frame is on the lines (granted, not yet complete).
    fn transmitting_data(&self) -> bool {
        self.sending == Sending::Data
            && matches!(
                self.phase,
                Phase::Connect | Phase::SendWait { .. } | Phase::SendDone { .. }
            )
    }

    /// Counts a wait for the bus that lasted an ACK timeout as a try, and gives the
    /// DATA frame up after `max_tries`.
    fn check_tries(&mut self, now_us: u64) -> Option<Event> {
        if !self.tx_busy || !self.tx_due || self.transmitting_data() {
            return None;
        }
        match self.attempt_deadline {
            None => {
                self.attempt_deadline = Some(now_us.saturating_add(self.timing.ack_timeout_us));
            }
            Some(t) if now_us >= t => {
                self.tries += 1;
                self.attempt_deadline = Some(now_us.saturating_add(self.timing.ack_timeout_us));
            }
            Some(_) => {}
        }
        if self.tries < self.timing.max_tries {
            return None;
        }
        self.cancel();
        self.counters.failed += 1;
        if self.phase == Phase::Starting && self.sending == Sending::Data {
            self.recover(now_us);
        }
        Some(Event::Failed)
    }

    fn grant(&mut self, now_us: u64) {
        self.enter(
            Phase::Granted,
            Drive {
                data: RELEASED,
                strobe: true,
            },
            now_us,
        );
    }

    /// The transmission in progress went out completely.
    fn transmitted(&mut self, now_us: u64) {
        // Only DATA frames count for the collision priority: an ACK is the receiver's
        // duty, and counting it would let a side that streams frames win every
        // collision against the side that acknowledges them.
        if self.sending == Sending::Data {
            self.last_sender = Some(self.side);
        }
        match self.sending {
            Sending::Ack => self.ack_due = None,
            Sending::Data => {
                self.tx_due = false;
                self.attempt_deadline = None;
                self.ack_deadline = Some(now_us.saturating_add(self.timing.ack_timeout_us));
            }
        }
        self.enter(Phase::Idle, Drive::IDLE, now_us);
    }

    /// The frame in `rx` (all `at + 1` bytes of it) is complete.
    fn received_frame(&mut self, len: usize) -> Option<Event> {
        // The kind passed the header check: both sides agree on who sent DATA last.
        if self.rx[0] == KIND_DATA {
            self.last_sender = Some(self.side.other());
        }
        let body = HEADER_LEN + self.rx_len;
        let crc = u32::from_le_bytes([
            self.rx[body],
            self.rx[body + 1],
            self.rx[body + 2],
            self.rx[body + 3],
        ]);
        if body + CRC_LEN != len || crc32(&self.rx[..body]) != crc {
            self.counters.crc_errors += 1;
            return None;
        }
        let seq = self.rx[1];
        let epoch = u32::from_le_bytes([self.rx[4], self.rx[5], self.rx[6], self.rx[7]]);
        match self.rx[0] {
            KIND_ACK => {
                // Also when a retransmission is due (the ACK came late): this side is
                // receiving, so no transmission of the frame is in progress.
                if self.tx_busy && seq == self.tx_seq && epoch == self.epoch {
                    self.tx_busy = false;
                    self.tx_due = false;
                    self.ack_deadline = None;
                    self.counters.sent += 1;
                    return Some(Event::Sent);
                }
                None
            }
            _ => {
                // KIND_DATA (the header check let nothing else through).
                self.ack_due = Some((seq, epoch));
                if self.peer_last == Some((epoch, seq)) {
                    self.counters.duplicates += 1;
                    return None;
                }
                self.peer_last = Some((epoch, seq));
                self.counters.delivered += 1;
                self.counters.delivered_bytes += self.rx_len as u64;
                Some(Event::Delivered { len: self.rx_len })
            }
        }
    }

    /// Checks a complete header; sets the payload length.
    fn header_ok(&mut self) -> bool {
        let len = usize::from(u16::from_le_bytes([self.rx[2], self.rx[3]]));
        let ok = match self.rx[0] {
            KIND_DATA => len <= Self::MAX_PAYLOAD,
            KIND_ACK => len == 0,
            _ => false,
        };
        self.rx_len = len;
        ok
    }

    /// Advances the state machine with the lines as sampled at `now_us`.
    pub fn poll(&mut self, now_us: u64, l: Levels) -> Poll {
        if let Some(t) = self.ack_deadline {
            if now_us >= t {
                // No ACK: send it again (counted as a retransmission when it starts).
                self.ack_deadline = None;
                if self.tx_busy {
                    self.tx_due = true;
                }
            }
        }
        if let Some(event) = self.check_tries(now_us) {
            return self.answer(Some(event), true);
        }
        if let Some(t) = self.step_deadline {
            if now_us >= t {
                self.counters.timeouts += 1;
                if self.transmitting_data() {
                    self.tx_due = self.tx_busy;
                }
                self.recover(now_us);
                return self.answer(None, true);
            }
        }
        let side = self.side;
        match self.phase {
            Phase::Idle => {
                if l.peer_strobe {
                    self.peer_strobe_unasked(l, now_us);
                    return self.answer(None, true);
                }
                if self.wants_to_send() {
                    self.start(now_us);
                    return self.answer(None, true);
                }
            }
            Phase::Starting => {
                if l.peer_strobe {
                    let mine = l.data & side.id_line() == 0;
                    let theirs = l.data & side.other().id_line() == 0;
                    if !mine {
                        // Our own pull does not show: a stuck or flipped line.
                        self.framing_error(now_us);
                        return self.answer(None, true);
                    }
                    if !theirs {
                        // Granted.
                        if self.sending == Sending::Data {
                            if self.tries > 0 {
                                self.counters.retransmits += 1;
                            }
                            self.tries += 1;
                            self.attempt_deadline = None;
                        }
                        self.enter(Phase::Connect, Drive::IDLE, now_us);
                        return self.answer(None, true);
                    }
                    // Both started.
                    let winner = match self.last_sender {
                        Some(last) => last.other(),
                        None => Side::A,
                    };
                    if winner != side {
                        self.counters.collisions += 1;
                        self.enter(Phase::Yielded, Drive::IDLE, now_us);
                        return self.answer(None, true);
                    }
                    // Winner: wait for the loser's grant.
                }
            }
            Phase::Yielded => {
                if l.peer_strobe {
                    self.peer_strobe_unasked(l, now_us);
                    return self.answer(None, true);
                }
            }
            Phase::Granted => {
                if !l.peer_strobe {
                    self.enter(Phase::RecvWait { at: 0 }, Drive::IDLE, now_us);
                    return self.answer(None, true);
                }
            }
            Phase::RecvWait { at } => {
                if l.peer_strobe {
                    if at >= N {
                        self.framing_error(now_us);
                        return self.answer(None, true);
                    }
                    self.rx[at] = l.data;
                    self.counters.bytes_on_wire += 1;
                    if at + 1 == HEADER_LEN && !self.header_ok() {
                        self.framing_error(now_us);
                        return self.answer(None, true);
                    }
                    self.enter(
                        Phase::RecvAck { at },
                        Drive {
                            data: RELEASED,
                            strobe: true,
                        },
                        now_us,
                    );
                    return self.answer(None, true);
                }
            }
            Phase::RecvAck { at } => {
                if !l.peer_strobe {
                    if at + 1 >= HEADER_LEN && at + 1 == frame_len(self.rx_len) {
                        self.enter(Phase::Idle, Drive::IDLE, now_us);
                        let event = self.received_frame(at + 1);
                        return self.answer(event, true);
                    }
                    self.enter(Phase::RecvWait { at: at + 1 }, Drive::IDLE, now_us);
                    return self.answer(None, true);
                }
            }
            Phase::Connect => {
                if !l.peer_strobe {
                    let drive = Drive {
                        data: self.byte(0),
                        strobe: true,
                    };
                    self.enter(Phase::SendWait { at: 0 }, drive, now_us);
                    return self.answer(None, true);
                }
            }
            Phase::SendWait { at } => {
                if l.peer_strobe {
                    let byte = self.byte(at);
                    if l.data != byte {
                        self.counters.readback_errors += 1;
                    }
                    self.counters.bytes_on_wire += 1;
                    let last = at + 1 == self.frame().len();
                    let drive = Drive {
                        data: if last { RELEASED } else { byte },
                        strobe: false,
                    };
                    self.enter(Phase::SendDone { at }, drive, now_us);
                    return self.answer(None, true);
                }
            }
            Phase::SendDone { at } => {
                let last = at + 1 == self.frame().len();
                if !l.peer_strobe {
                    if last {
                        self.transmitted(now_us);
                    } else {
                        let drive = Drive {
                            data: self.byte(at + 1),
                            strobe: true,
                        };
                        self.enter(Phase::SendWait { at: at + 1 }, drive, now_us);
                    }
                    return self.answer(None, true);
                }
                if last && self.peer_starts(l) {
                    // The receiver lowered its strobe and started a frame of its own
                    // before this side sampled the low level.
                    self.transmitted(now_us);
                    return self.answer(None, true);
                }
            }
            Phase::Recover => {
                if !l.peer_strobe {
                    self.enter(Phase::Idle, Drive::IDLE, now_us);
                    return self.answer(None, true);
                }
                if self.peer_starts(l) {
                    // The peer recovered and started again before this side saw its
                    // strobe low. (If this is a data byte of a frame the peer still
                    // sends, the frame that follows fails its header or CRC check.)
                    self.grant(now_us);
                    return self.answer(None, true);
                }
            }
        }
        self.answer(None, false)
    }
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_gpio_bus_protocol))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    /// Frames of up to 48 payload bytes: small enough for a kernel stack.
    const N: usize = frame_len(48);
    const T: Timing = Timing {
        byte_timeout_us: 2_000,
        ack_timeout_us: 5_000,
        max_tries: 6,
    };

    /// Two endpoints on a simulated cable with a deterministic scheduler.
    struct Cable {
        ends: [Endpoint<N>; 2],
        now: u64,
        rng: u32,
        /// Data lines held low (a stuck line).
        stuck_low: u8,
        /// Flip these data bits in the next sample of this side.
        flip: Option<(usize, u8)>,
        /// A side that stopped (its drive frozen).
        dead: Option<usize>,
        wakeups: [u64; 2],
    }

    impl Cable {
        fn new(seed: u32) -> Self {
            Self {
                ends: [
                    Endpoint::new(Side::A, 0x1111_0000 ^ seed, T),
                    Endpoint::new(Side::B, 0x2222_0000 ^ seed, T),
                ],
                now: 0,
                rng: seed | 1,
                stuck_low: 0,
                flip: None,
                dead: None,
                wakeups: [0; 2],
            }
        }

        fn rand(&mut self) -> u32 {
            // xorshift32
            let mut x = self.rng;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            self.rng = x;
            x
        }

        fn levels(&mut self, i: usize) -> Levels {
            if !self.ends[i].reads_data() {
                // Not looked at: garbage must not matter.
                return Levels {
                    data: self.rand() as u8,
                    peer_strobe: self.ends[1 - i].drive().strobe,
                };
            }
            let mut data = self.ends[0].drive().data & self.ends[1].drive().data & !self.stuck_low;
            if let Some((side, bits)) = self.flip {
                if side == i {
                    data ^= bits;
                    self.flip = None;
                }
            }
            Levels {
                data,
                peer_strobe: self.ends[1 - i].drive().strobe,
            }
        }

        /// Runs side `i` until it has nothing more to do now; returns its events
        /// through `on_event`.
        fn run_side(&mut self, i: usize, on_event: &mut dyn FnMut(usize, Event, &[u8])) {
            if self.dead == Some(i) {
                return;
            }
            for _ in 0..8 {
                let l = self.levels(i);
                let p = self.ends[i].poll(self.now, l);
                if let Some(e) = p.event {
                    on_event(i, e, self.ends[i].received());
                }
                self.wakeups[i] = p.deadline_us.unwrap_or(u64::MAX);
                if !p.again {
                    break;
                }
            }
        }

        /// One scheduling step: time moves on by 1..=20 µs and one side (at random,
        /// sometimes none: a late interrupt) runs.
        fn step(&mut self, on_event: &mut dyn FnMut(usize, Event, &[u8])) {
            self.now += u64::from(self.rand() % 20 + 1);
            match self.rand() % 5 {
                0 | 1 => self.run_side(0, on_event),
                2 | 3 => self.run_side(1, on_event),
                _ => {}
            }
        }
    }

    fn payload(seed: u8, n: usize, out: &mut [u8; 48]) -> usize {
        let len = (usize::from(seed) * 7 + n * 13) % 49;
        for (k, b) in out.iter_mut().enumerate().take(len) {
            *b = seed
                .wrapping_mul(31)
                .wrapping_add((k as u8) ^ (n as u8).wrapping_mul(3));
        }
        len
    }

    /// Both sides send `frames` DATA frames to each other; checks order and contents
    /// of every delivery. Returns (delivered to A, delivered to B, failed).
    fn exchange(c: &mut Cable, frames: usize, steps: usize) -> (usize, usize, usize) {
        let mut next = [0usize; 2];
        let mut got = [0usize; 2];
        let mut failed = 0usize;
        let mut bad = 0usize;
        for _ in 0..steps {
            for (i, n) in next.iter_mut().enumerate() {
                if c.dead != Some(i) && !c.ends[i].busy() && *n < frames {
                    let mut buf = [0u8; 48];
                    let len = payload(i as u8, *n, &mut buf);
                    assert_eq!(c.ends[i].submit(&buf[..len]), Ok(()));
                    *n += 1;
                }
            }
            let mut on_event = |i: usize, e: Event, data: &[u8]| match e {
                Event::Delivered { len } => {
                    let mut want = [0u8; 48];
                    let wlen = payload((1 - i) as u8, got[i], &mut want);
                    if len != wlen || data != &want[..wlen] {
                        bad += 1;
                    }
                    got[i] += 1;
                }
                Event::Failed => failed += 1,
                Event::Sent => {}
            };
            c.step(&mut on_event);
            if got == [frames, frames] && !c.ends[0].busy() && !c.ends[1].busy() {
                break;
            }
        }
        assert_eq!(bad, 0);
        (got[0], got[1], failed)
    }

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn frames_cross_both_ways_exactly_once() {
        for seed in 1..6u32 {
            let mut c = Cable::new(seed);
            assert_eq!(exchange(&mut c, 12, 400_000), (12, 12, 0));
            let a = c.ends[0].counters();
            let b = c.ends[1].counters();
            assert_eq!((a.sent, b.sent, a.delivered, b.delivered), (12, 12, 12, 12));
            assert_eq!(a.crc_errors + b.crc_errors, 0);
            // Idle again: nothing driven.
            assert_eq!(
                (c.ends[0].drive(), c.ends[1].drive()),
                (Drive::IDLE, Drive::IDLE)
            );
        }
    }

    #[test]
    fn simultaneous_starts_are_arbitrated() {
        let mut c = Cable::new(7);
        assert_eq!(c.ends[0].submit(b"from a"), Ok(()));
        assert_eq!(c.ends[1].submit(b"from b"), Ok(()));
        // Both sample the idle bus and start before seeing each other.
        let idle = Levels {
            data: RELEASED,
            peer_strobe: false,
        };
        assert!(c.ends[0].poll(0, idle).drive.strobe);
        assert!(c.ends[1].poll(0, idle).drive.strobe);
        let mut seen = [0; 2];
        let mut sent = 0;
        let mut on_event = |i: usize, e: Event, data: &[u8]| match e {
            Event::Delivered { .. } => {
                if data
                    == if i == 0 {
                        &b"from b"[..]
                    } else {
                        &b"from a"[..]
                    }
                {
                    seen[i] += 1;
                }
            }
            Event::Sent => sent += 1,
            Event::Failed => {}
        };
        for _ in 0..200_000 {
            c.step(&mut on_event);
        }
        assert_eq!((seen, sent), ([1, 1], 2));
        assert!(c.ends[0].counters().collisions + c.ends[1].counters().collisions >= 1);
    }

    #[test]
    fn flipped_bits_are_retransmitted_never_delivered() {
        let mut c = Cable::new(11);
        let mut next = [0usize; 2];
        let mut got = [0usize; 2];
        let mut bad = 0;
        for step in 0..600_000u32 {
            if step % 997 == 0 {
                let side = (c.rand() % 2) as usize;
                let bit = 1u8 << (c.rand() % 8);
                c.flip = Some((side, bit));
            }
            for (i, n) in next.iter_mut().enumerate() {
                if !c.ends[i].busy() && *n < 10 {
                    let mut buf = [0u8; 48];
                    let len = payload(i as u8, *n, &mut buf);
                    assert_eq!(c.ends[i].submit(&buf[..len]), Ok(()));
                    *n += 1;
                }
            }
            let mut on_event = |i: usize, e: Event, data: &[u8]| {
                if let Event::Delivered { len } = e {
                    let mut want = [0u8; 48];
                    let wlen = payload((1 - i) as u8, got[i], &mut want);
                    if len != wlen || data != &want[..wlen] {
                        bad += 1;
                    }
                    got[i] += 1;
                }
            };
            c.step(&mut on_event);
        }
        assert_eq!(bad, 0);
        assert_eq!(got, [10, 10]);
        let a = c.ends[0].counters();
        let b = c.ends[1].counters();
        assert!(a.retransmits + b.retransmits > 0);
        assert!(a.crc_errors + b.crc_errors + a.framing_errors + b.framing_errors > 0);
    }

    /// Steps the cable until `done` holds (at most `limit` steps); true if it did.
    fn run_until(c: &mut Cable, limit: usize, mut done: impl FnMut(&Cable) -> bool) -> bool {
        for _ in 0..limit {
            if done(c) {
                return true;
            }
            c.step(&mut |_, _, _| {});
        }
        done(c)
    }

    /// A flip that corrupts an ACK is counted by the ACK's receiver at once, but the
    /// DATA frame is sent again only when its ACK timeout has passed: for up to
    /// `ack_timeout_us` after the receiver of the DATA frame has it, a CRC error stands
    /// with no retransmission yet. (This is why a test that reads the counters right
    /// after its data arrived must wait for the retransmission.)
    #[test]
    fn a_corrupted_ack_is_counted_at_once_and_retransmitted_after_the_ack_timeout() {
        let mut c = Cable::new(13);
        assert_eq!(c.ends[0].submit(b"request"), Ok(()));
        // B has the frame; A reads the first CRC byte of B's ACK.
        assert!(run_until(&mut c, 100_000, |c| {
            c.ends[1].counters().delivered == 1
                && c.ends[0].phase == Phase::RecvWait { at: HEADER_LEN }
        }));
        c.flip = Some((0, 0x08));
        assert!(run_until(&mut c, 100_000, |c| c.ends[0].phase == Phase::Idle));
        let a = c.ends[0].counters();
        assert_eq!((a.crc_errors, a.retransmits, a.sent), (1, 0, 0));
        assert!(c.ends[0].busy());
        let dropped_at = c.now;
        // Before the ACK timeout nothing is sent again.
        assert!(run_until(&mut c, 1_000_000, |c| c.now
            >= dropped_at + T.ack_timeout_us / 2));
        assert_eq!(c.ends[0].counters().retransmits, 0);
        // After it, the frame goes again; B acknowledges the duplicate, delivers nothing.
        assert!(run_until(&mut c, 1_000_000, |c| !c.ends[0].busy()));
        let (a, b) = (c.ends[0].counters(), c.ends[1].counters());
        assert_eq!((a.retransmits, a.sent, a.failed), (1, 1, 0));
        assert_eq!((b.delivered, b.duplicates), (1, 1));
    }

    /// During arbitration only the id lines (D0, D1) are looked at: a flipped D3 there
    /// is harmless (no error, nothing sent again); a flipped own id line is a framing
    /// error, after which the frame still arrives once, intact.
    #[test]
    fn a_flip_during_arbitration_is_harmless_or_a_framing_error() {
        for (bit, framing) in [(0x08u8, 0u64), (Side::A.id_line(), 1)] {
            let mut c = Cable::new(17);
            assert_eq!(c.ends[0].submit(b"x"), Ok(()));
            let arbitrating =
                |c: &Cable| c.ends[0].phase == Phase::Starting && c.ends[1].drive().strobe;
            assert!(run_until(&mut c, 100_000, arbitrating));
            c.flip = Some((0, bit));
            assert!(run_until(&mut c, 1_000_000, |c| !c.ends[0].busy()));
            let (a, b) = (c.ends[0].counters(), c.ends[1].counters());
            assert_eq!((a.framing_errors, a.sent, a.failed), (framing, 1, 0));
            if framing == 0 {
                assert_eq!((a.retransmits, a.crc_errors, a.timeouts), (0, 0, 0));
            }
            assert_eq!((b.delivered, b.crc_errors), (1, 0));
        }
    }

    #[test]
    fn a_stuck_line_fails_frames_without_corrupting_them() {
        let mut c = Cable::new(5);
        c.stuck_low = 0x80;
        let mut buf = [0xffu8; 48];
        buf[0] = 0x80;
        assert_eq!(c.ends[0].submit(&buf[..40]), Ok(()));
        let mut failed = 0;
        let mut delivered = 0;
        for _ in 0..400_000 {
            let mut on_event = |_: usize, e: Event, _: &[u8]| match e {
                Event::Failed => failed += 1,
                Event::Delivered { .. } => delivered += 1,
                Event::Sent => {}
            };
            c.step(&mut on_event);
        }
        assert_eq!((failed, delivered), (1, 0));
        assert!(!c.ends[0].busy());
        let a = c.ends[0].counters();
        assert!(a.retransmits + a.timeouts > 0);
        assert_eq!(c.ends[1].counters().delivered, 0);
    }

    #[test]
    fn a_vanished_peer_fails_the_frame_and_releases_the_lines() {
        let mut c = Cable::new(3);
        assert_eq!(c.ends[0].submit(&[0x5a; 48]), Ok(()));
        let mut on_event = |_: usize, _: Event, _: &[u8]| {};
        // Run until the frame is mid-way, then B stops with its strobe wherever it is.
        let mut steps = 0;
        while c.ends[1].counters().bytes_on_wire < 20 {
            c.step(&mut on_event);
            steps += 1;
            assert!(steps < 100_000);
        }
        c.dead = Some(1);
        let mut failed = 0;
        for _ in 0..400_000 {
            let mut on_event = |_: usize, e: Event, _: &[u8]| {
                if e == Event::Failed {
                    failed += 1;
                }
            };
            c.step(&mut on_event);
        }
        assert_eq!(failed, 1);
        assert_eq!(c.ends[0].drive().data, RELEASED);
        assert!(c.ends[0].counters().timeouts > 0);
    }

    #[test]
    fn a_restarted_peer_starts_a_new_sequence() {
        let mut c = Cable::new(9);
        assert_eq!(exchange(&mut c, 3, 200_000), (3, 3, 0));
        // B restarts: new epoch, seq from 1 again; A delivers its frames.
        c.ends[1] = Endpoint::new(Side::B, 0x7777_0000, T);
        assert_eq!(c.ends[1].submit(b"again"), Ok(()));
        let mut seen = 0;
        for _ in 0..200_000 {
            let mut on_event = |i: usize, e: Event, data: &[u8]| {
                if i == 0 && e == (Event::Delivered { len: 5 }) && data == b"again" {
                    seen += 1;
                }
            };
            c.step(&mut on_event);
        }
        assert_eq!(seen, 1);
    }

    #[test]
    fn an_endpoint_built_in_place_talks_like_a_new_one() {
        let mut c = Cable::new(4);
        let mut slot = core::mem::MaybeUninit::<Endpoint<N>>::uninit();
        // SAFETY: `slot` is a valid, aligned place for an endpoint.
        unsafe { Endpoint::init_at(slot.as_mut_ptr(), Side::B, 0x5555_0000, T) };
        // SAFETY: `init_at` initialised it.
        c.ends[1] = unsafe { slot.assume_init() };
        assert_eq!(c.ends[1].drive(), Drive::IDLE);
        assert!(c.ends[1].quiescent());
        assert_eq!(c.ends[1].counters(), Counters::default());
        assert_eq!(exchange(&mut c, 3, 200_000), (3, 3, 0));
    }

    #[test]
    fn a_frame_cancelled_mid_transmission_is_broken_off_and_a_new_one_goes_intact() {
        let mut c = Cable::new(11);
        let mut big = [0u8; 48];
        for (k, b) in big.iter_mut().enumerate() {
            *b = k as u8;
        }
        assert_eq!(c.ends[1].submit(&big), Ok(()));
        // Run until B is half-way through its frame.
        let mut guard = 0;
        while c.ends[1].counters().bytes_on_wire < 20 && guard < 100_000 {
            c.step(&mut |_, _, _| {});
            guard += 1;
        }
        assert!(c.ends[1].counters().bytes_on_wire >= 20);
        c.ends[1].cancel();
        assert!(!c.ends[1].busy());
        assert_eq!(c.ends[1].submit(b"short"), Ok(()));
        let mut got = 0;
        for _ in 0..200_000 {
            c.step(&mut |i, e, data| {
                if i == 0 {
                    if let Event::Delivered { .. } = e {
                        assert_eq!(data, b"short");
                        got += 1;
                    }
                }
            });
        }
        assert_eq!(got, 1);
    }

    #[test]
    fn two_busy_sides_take_turns() {
        let mut c = Cable::new(21);
        let mut got = [0usize; 2];
        for _ in 0..400_000 {
            for i in 0..2 {
                if !c.ends[i].busy() {
                    assert_eq!(c.ends[i].submit(&[i as u8; 40]), Ok(()));
                }
            }
            c.step(&mut |i, e, _| {
                if let Event::Delivered { .. } = e {
                    got[i] += 1;
                }
            });
            if got[0] + got[1] >= 40 {
                break;
            }
        }
        assert!(got[0] + got[1] >= 40);
        // Neither side starves: each got at least a third of the frames.
        assert!(got[0] * 3 >= got[0] + got[1] && got[1] * 3 >= got[0] + got[1]);
    }

    #[test]
    fn submit_refuses_while_busy_and_oversized() {
        let mut e: Endpoint<N> = Endpoint::new(Side::A, 1, T);
        assert_eq!(e.submit(&[0; 49]), Err(SubmitError::TooLong));
        assert_eq!(e.submit(&[0; 48]), Ok(()));
        assert_eq!(e.submit(&[0; 1]), Err(SubmitError::Busy));
        e.cancel();
        assert_eq!(e.submit(&[0; 1]), Ok(()));
    }
}
