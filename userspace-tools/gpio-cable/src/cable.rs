//! The cable itself: a pure, transport-free model of N wires shared by two sides.
//!
//! Nothing here knows about vhost-user or guest memory. A side's held event-queue
//! buffer is an opaque token `T`; every operation that may complete such buffers
//! returns them as [`Completion`]s, and the caller (the vhost-user glue in
//! `device.rs`) writes the status byte into guest memory and signals the guest.
//!
//! # Electrical model
//!
//! Per line and per side there is a direction (none, input, output) and an output
//! latch value. The **level** of a line is:
//!
//! 1. the held value, if the line is held by the control socket (`hold LINE 0|1`);
//! 2. else 0 if either side drives it as output 0 (low wins: wired-AND, like
//!    open-drain outputs);
//! 3. else 1 if a side drives it as output 1;
//! 4. else its pull: every line has a pull-up (an undriven line reads high) except
//!    the strobes `ready` and `valid`, which have pull-downs (an undriven strobe is
//!    idle, low), as the Raspberry Pi overlay configures the real cable.
//!
//! One side driving 1 while the other drives 0 is *contention*: the level is 0 and
//! the `contention` counter counts each time a line enters that state.
//! `GET_VALUE` returns the line's level whatever the reader's direction (a driving
//! side reads the line back, like a real pin's input buffer). Linux gpiolib emulates
//! open-drain on a controller without `set_config` by switching the line to input
//! for "1" and to output 0 for "0": with the pull-up and wired-AND this works.
//!
//! # Interrupts
//!
//! Per side and line there is an IRQ type (none, edge rising, edge falling, edge
//! both, level high, level low) and at most one held event buffer. When a line's
//! level changes, every side whose type matches the edge gets the interrupt: its
//! held buffer completes now with status VALID, or, when it has none, an
//! edge-detect latch is set and the buffer the guest queues next completes at once
//! (several edges while latched collapse into one delivery). A level type fires
//! whenever a buffer is queued, the type is set, or the level changes, provided the
//! level matches; level types do not latch. A side's own writes trigger its own
//! interrupts like anybody else's (a real pin sees its own output). Setting a line's
//! IRQ type clears its latch; setting it to none returns the held buffer with status
//! INVALID, and so does queueing a buffer on a line whose type is none.
//!
//! A side may be *frozen* (its event queue stopped by the VMM): then its buffers are
//! kept and edges only latch; [`Cable::thaw`] delivers what became due.
//!
//! # Fault injection
//!
//! `flip` makes the next COUNT `GET_VALUE` reads of a line (by one side, or by
//! either) return the inverted level without changing the level. `hold` forces a
//! level until `release`; level changes caused by hold and release fire interrupts
//! like any other change.

use std::fmt::Write as _;
use std::time::Instant;

/// One end of the cable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::A, Side::B];

    pub fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Side::A => "a",
            Side::B => "b",
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A side's direction for one line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    #[default]
    None,
    Input,
    Output,
}

/// A side's interrupt trigger for one line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IrqType {
    #[default]
    None,
    EdgeRising,
    EdgeFalling,
    EdgeBoth,
    LevelHigh,
    LevelLow,
}

impl IrqType {
    fn is_edge(self) -> bool {
        matches!(
            self,
            IrqType::EdgeRising | IrqType::EdgeFalling | IrqType::EdgeBoth
        )
    }

    /// Whether a change to `new_level` is an edge this type triggers on.
    fn edge_matches(self, new_level: bool) -> bool {
        match self {
            IrqType::EdgeRising => new_level,
            IrqType::EdgeFalling => !new_level,
            IrqType::EdgeBoth => true,
            _ => false,
        }
    }

    fn level_matches(self, level: bool) -> bool {
        match self {
            IrqType::LevelHigh => level,
            IrqType::LevelLow => !level,
            _ => false,
        }
    }
}

/// The status a held event buffer completes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqStatus {
    /// The interrupt is disabled (type none): the guest requeues or forgets it.
    Invalid,
    /// An interrupt fired on the line.
    Valid,
}

/// A held event buffer to hand back to a side's guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion<T> {
    pub side: Side,
    pub line: usize,
    pub token: T,
    pub status: IrqStatus,
}

impl<T> Completion<T> {
    /// A buffer handed back without an interrupt (INVALID).
    fn returned(side: Side, line: usize, token: T) -> Self {
        Completion {
            side,
            line,
            token,
            status: IrqStatus::Invalid,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CableError {
    NoSuchLine(usize),
}

impl std::fmt::Display for CableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CableError::NoSuchLine(l) => write!(f, "no line {l}"),
        }
    }
}

pub type Result<T> = std::result::Result<T, CableError>;

#[derive(Debug)]
struct SideLine<T> {
    dir: Direction,
    out: bool,
    irq: IrqType,
    held: Option<T>,
    pending: bool,
}

impl<T> Default for SideLine<T> {
    fn default() -> Self {
        SideLine {
            dir: Direction::None,
            out: false,
            irq: IrqType::None,
            held: None,
            pending: false,
        }
    }
}

impl<T> SideLine<T> {
    fn drives(&self) -> Option<bool> {
        (self.dir == Direction::Output).then_some(self.out)
    }
}

#[derive(Debug)]
struct SideState<T> {
    lines: Vec<SideLine<T>>,
    frozen: bool,
    connected: bool,
    requests: u64,
    irqs: u64,
}

impl<T> SideState<T> {
    fn new(n: usize) -> Self {
        SideState {
            lines: (0..n).map(|_| SideLine::default()).collect(),
            frozen: false,
            connected: false,
            requests: 0,
            irqs: 0,
        }
    }
}

/// The cable: line levels, both sides' configuration, fault injection, counters.
#[derive(Debug)]
pub struct Cable<T> {
    /// Per line: pulled up (else down) when nobody drives it.
    pull_up: Vec<bool>,
    sides: [SideState<T>; 2],
    level: Vec<bool>,
    hold: Vec<Option<bool>>,
    contended: Vec<bool>,
    flips_any: Vec<u32>,
    flips_side: [Vec<u32>; 2],
    transitions: u64,
    transitions_line: Vec<u64>,
    flips: u64,
    contention: u64,
    since: Instant,
}

impl<T> Cable<T> {
    /// A cable of `lines` wires, all undriven (so high), no interrupts configured.
    /// A cable of `lines` lines, all with pull-ups.
    #[cfg(test)]
    pub fn new(lines: usize) -> Self {
        Self::with_pulls(vec![true; lines])
    }

    /// A cable whose line `i` has a pull-up if `pull_up[i]`, else a pull-down.
    pub fn with_pulls(pull_up: Vec<bool>) -> Self {
        let lines = pull_up.len();
        Cable {
            sides: [SideState::new(lines), SideState::new(lines)],
            level: pull_up.clone(),
            pull_up,
            hold: vec![None; lines],
            contended: vec![false; lines],
            flips_any: vec![0; lines],
            flips_side: [vec![0; lines], vec![0; lines]],
            transitions: 0,
            transitions_line: vec![0; lines],
            flips: 0,
            contention: 0,
            since: Instant::now(),
        }
    }

    pub fn lines(&self) -> usize {
        self.level.len()
    }

    fn check(&self, line: usize) -> Result<()> {
        if line < self.lines() {
            Ok(())
        } else {
            Err(CableError::NoSuchLine(line))
        }
    }

    fn sl(&mut self, side: Side, line: usize) -> &mut SideLine<T> {
        &mut self.sides[side.index()].lines[line]
    }

    /// The current level of `line` (no flip applied).
    #[cfg(test)]
    pub fn level(&self, line: usize) -> Result<bool> {
        self.check(line)?;
        Ok(self.level[line])
    }

    pub fn direction(&self, side: Side, line: usize) -> Result<Direction> {
        self.check(line)?;
        Ok(self.sides[side.index()].lines[line].dir)
    }

    #[cfg(test)]
    pub fn irq_type(&self, side: Side, line: usize) -> Result<IrqType> {
        self.check(line)?;
        Ok(self.sides[side.index()].lines[line].irq)
    }

    /// Whether `side` has an edge latched on `line` awaiting a buffer.
    #[cfg(test)]
    pub fn pending(&self, side: Side, line: usize) -> Result<bool> {
        self.check(line)?;
        Ok(self.sides[side.index()].lines[line].pending)
    }

    /// Number of event buffers `side` currently holds.
    pub fn held_count(&self, side: Side) -> usize {
        self.sides[side.index()]
            .lines
            .iter()
            .filter(|l| l.held.is_some())
            .count()
    }

    pub fn set_direction(
        &mut self,
        side: Side,
        line: usize,
        dir: Direction,
    ) -> Result<Vec<Completion<T>>> {
        self.check(line)?;
        self.sl(side, line).dir = dir;
        Ok(self.updated(line))
    }

    /// Sets the output latch; it drives the line only while the direction is output.
    pub fn set_value(
        &mut self,
        side: Side,
        line: usize,
        value: bool,
    ) -> Result<Vec<Completion<T>>> {
        self.check(line)?;
        self.sl(side, line).out = value;
        Ok(self.updated(line))
    }

    /// A read of `line` by `side`: the level, inverted if a flip is armed for it
    /// (a side-specific flip is consumed before an any-side one).
    pub fn get_value(&mut self, side: Side, line: usize) -> Result<bool> {
        self.check(line)?;
        let level = self.level[line];
        let own = &mut self.flips_side[side.index()][line];
        let slot = if *own > 0 {
            own
        } else {
            &mut self.flips_any[line]
        };
        if *slot > 0 {
            *slot -= 1;
            self.flips += 1;
            Ok(!level)
        } else {
            Ok(level)
        }
    }

    pub fn set_irq_type(
        &mut self,
        side: Side,
        line: usize,
        irq: IrqType,
    ) -> Result<Vec<Completion<T>>> {
        self.check(line)?;
        let mut out = Vec::new();
        let frozen = self.sides[side.index()].frozen;
        let level = self.level[line];
        let sl = self.sl(side, line);
        sl.irq = irq;
        sl.pending = false;
        if irq == IrqType::None {
            if let Some(token) = sl.held.take() {
                out.push(Completion::returned(side, line, token));
            }
        } else if !frozen && irq.level_matches(level) {
            self.deliver(side, line, &mut out);
        }
        Ok(out)
    }

    /// The guest of `side` queued an event buffer for `line`.
    pub fn queue_irq_buffer(
        &mut self,
        side: Side,
        line: usize,
        token: T,
    ) -> Result<Vec<Completion<T>>> {
        self.check(line)?;
        let mut out = Vec::new();
        let frozen = self.sides[side.index()].frozen;
        let level = self.level[line];
        let sl = self.sl(side, line);
        if sl.irq == IrqType::None {
            out.push(Completion::returned(side, line, token));
            return Ok(out);
        }
        if let Some(old) = sl.held.replace(token) {
            // The driver never has two buffers out for one line; return the old one.
            out.push(Completion::returned(side, line, old));
        }
        if frozen {
            return Ok(out);
        }
        let irq = sl.irq;
        if irq.is_edge() && sl.pending {
            sl.pending = false;
            self.deliver(side, line, &mut out);
        } else if irq.level_matches(level) {
            self.deliver(side, line, &mut out);
        }
        Ok(out)
    }

    /// Forgets `side`'s held buffers without completing them (its rings are gone).
    pub fn drop_buffers(&mut self, side: Side) -> Vec<T> {
        self.sides[side.index()]
            .lines
            .iter_mut()
            .filter_map(|l| l.held.take())
            .collect()
    }

    /// `side` disconnected or its driver restarted: release all its lines (direction
    /// none), clear its IRQ configuration and latches, forget its buffers. Returns the
    /// forgotten buffers and the other side's completions caused by level changes.
    pub fn reset_side(&mut self, side: Side) -> (Vec<T>, Vec<Completion<T>>) {
        let dropped = self.drop_buffers(side);
        let s = &mut self.sides[side.index()];
        s.frozen = false;
        for l in s.lines.iter_mut() {
            *l = SideLine::default();
        }
        let mut out = Vec::new();
        for line in 0..self.lines() {
            self.update(line, &mut out);
        }
        (dropped, out)
    }

    /// Stops delivering to `side` (its event queue is stopped); edges latch.
    pub fn freeze(&mut self, side: Side) {
        self.sides[side.index()].frozen = true;
    }

    /// Resumes delivery to `side`: latched edges and matching levels fire now.
    pub fn thaw(&mut self, side: Side) -> Vec<Completion<T>> {
        self.sides[side.index()].frozen = false;
        let mut out = Vec::new();
        for line in 0..self.lines() {
            let level = self.level[line];
            let sl = self.sl(side, line);
            if sl.held.is_none() {
                continue;
            }
            if sl.irq.is_edge() && sl.pending {
                sl.pending = false;
                self.deliver(side, line, &mut out);
            } else if sl.irq.level_matches(level) {
                self.deliver(side, line, &mut out);
            }
        }
        out
    }

    /// Forces the level of `line` until [`Cable::release`].
    pub fn hold(&mut self, line: usize, value: bool) -> Result<Vec<Completion<T>>> {
        self.check(line)?;
        self.hold[line] = Some(value);
        Ok(self.updated(line))
    }

    pub fn release(&mut self, line: usize) -> Result<Vec<Completion<T>>> {
        self.check(line)?;
        self.hold[line] = None;
        Ok(self.updated(line))
    }

    /// Arms `count` inverted reads of `line`, by `side` or (None) by either side.
    /// Replaces any count armed earlier for the same line and target.
    pub fn flip(&mut self, line: usize, count: u32, side: Option<Side>) -> Result<()> {
        self.check(line)?;
        match side {
            Some(s) => self.flips_side[s.index()][line] = count,
            None => self.flips_any[line] = count,
        }
        Ok(())
    }

    pub fn count_request(&mut self, side: Side) {
        self.sides[side.index()].requests += 1;
    }

    pub fn set_connected(&mut self, side: Side, connected: bool) {
        self.sides[side.index()].connected = connected;
    }

    /// Zeroes the counters and restarts the uptime clock.
    pub fn reset_counters(&mut self) {
        self.transitions = 0;
        self.transitions_line.iter_mut().for_each(|c| *c = 0);
        for s in self.sides.iter_mut() {
            s.requests = 0;
            s.irqs = 0;
        }
        self.flips = 0;
        self.contention = 0;
        self.since = Instant::now();
    }

    /// The `stats` reply: space-separated `key=value` pairs.
    pub fn stats_line(&self) -> String {
        let per_line: Vec<String> = self
            .transitions_line
            .iter()
            .map(|c| c.to_string())
            .collect();
        let [a, b] = &self.sides;
        format!(
            "transitions={} transitions_line={} requests_a={} requests_b={} irqs_a={} irqs_b={} \
             flips={} contention={} uptime_us={} connected={},{}",
            self.transitions,
            per_line.join(","),
            a.requests,
            b.requests,
            a.irqs,
            b.irqs,
            self.flips,
            self.contention,
            self.since.elapsed().as_micros(),
            u8::from(a.connected),
            u8::from(b.connected),
        )
    }

    /// The `levels` reply, line 0 rightmost in every field: `levels=0b...` then what
    /// each side does with each line (`0`/`1` drives that value, `i` input, `-` not
    /// configured) and the holds (`0`/`1` held, `-` not held).
    pub fn levels_line(&self) -> String {
        let mut s = String::from("levels=0b");
        for line in (0..self.lines()).rev() {
            s.push(if self.level[line] { '1' } else { '0' });
        }
        for side in Side::BOTH {
            let _ = write!(s, " drive_{side}=");
            for line in (0..self.lines()).rev() {
                let sl = &self.sides[side.index()].lines[line];
                s.push(match (sl.dir, sl.out) {
                    (Direction::Output, true) => '1',
                    (Direction::Output, false) => '0',
                    (Direction::Input, _) => 'i',
                    (Direction::None, _) => '-',
                });
            }
        }
        s.push_str(" hold=");
        for line in (0..self.lines()).rev() {
            s.push(match self.hold[line] {
                Some(true) => '1',
                Some(false) => '0',
                None => '-',
            });
        }
        s
    }

    /// [`Cable::update`] of one line, returning the buffers it completes.
    fn updated(&mut self, line: usize) -> Vec<Completion<T>> {
        let mut out = Vec::new();
        self.update(line, &mut out);
        out
    }

    /// Recomputes `line` after a change of drivers or hold; fires interrupts.
    fn update(&mut self, line: usize, out: &mut Vec<Completion<T>>) {
        let a = self.sides[0].lines[line].drives();
        let b = self.sides[1].lines[line].drives();
        let conflict = matches!((a, b), (Some(x), Some(y)) if x != y);
        if conflict && !self.contended[line] {
            self.contention += 1;
        }
        self.contended[line] = conflict;
        let driven = if a == Some(false) || b == Some(false) {
            false
        } else if a == Some(true) || b == Some(true) {
            true
        } else {
            self.pull_up[line]
        };
        let new = self.hold[line].unwrap_or(driven);
        if new == self.level[line] {
            return;
        }
        self.level[line] = new;
        self.transitions += 1;
        self.transitions_line[line] += 1;
        for side in Side::BOTH {
            let frozen = self.sides[side.index()].frozen;
            let sl = self.sl(side, line);
            if sl.irq.edge_matches(new) {
                if frozen || sl.held.is_none() {
                    sl.pending = true;
                } else {
                    self.deliver(side, line, out);
                }
            } else if sl.irq.level_matches(new) && !frozen {
                self.deliver(side, line, out);
            }
        }
    }

    /// Completes `side`'s held buffer for `line` with VALID, if it has one.
    fn deliver(&mut self, side: Side, line: usize, out: &mut Vec<Completion<T>>) {
        let s = &mut self.sides[side.index()];
        if let Some(token) = s.lines[line].held.take() {
            s.irqs += 1;
            out.push(Completion {
                side,
                line,
                token,
                status: IrqStatus::Valid,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Side::{A, B};

    fn valid(c: &[Completion<u32>]) -> Vec<(Side, usize, u32)> {
        c.iter()
            .filter(|c| c.status == IrqStatus::Valid)
            .map(|c| (c.side, c.line, c.token))
            .collect()
    }

    fn field(stats: &str, key: &str) -> String {
        stats
            .split(' ')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {stats}"))
            .to_string()
    }

    #[test]
    fn undriven_lines_are_high() {
        let c: Cable<u32> = Cable::new(4);
        for l in 0..4 {
            assert!(c.level(l).unwrap());
        }
        assert_eq!(c.level(4), Err(CableError::NoSuchLine(4)));
    }

    #[test]
    fn pull_downs_read_low_until_driven_high() {
        let mut c: Cable<u32> = Cable::with_pulls(vec![true, false]);
        assert!(c.level(0).unwrap());
        assert!(!c.level(1).unwrap());
        c.set_value(A, 1, true).unwrap();
        c.set_direction(A, 1, Direction::Output).unwrap();
        assert!(c.get_value(B, 1).unwrap());
        c.set_direction(A, 1, Direction::Input).unwrap();
        assert!(!c.get_value(B, 1).unwrap());
        assert_eq!(field(&c.stats_line(), "transitions"), "2");
    }

    #[test]
    fn one_side_driving() {
        let mut c: Cable<u32> = Cable::new(2);
        c.set_value(A, 0, false).unwrap();
        // Latch alone does not drive.
        assert!(c.level(0).unwrap());
        c.set_direction(A, 0, Direction::Output).unwrap();
        assert!(!c.level(0).unwrap());
        assert!(!c.get_value(B, 0).unwrap());
        // The driver reads back the line.
        assert!(!c.get_value(A, 0).unwrap());
        c.set_value(A, 0, true).unwrap();
        assert!(c.level(0).unwrap());
        c.set_direction(A, 0, Direction::Input).unwrap();
        assert!(c.level(0).unwrap());
        assert!(c.level(1).unwrap());
        assert_eq!(field(&c.stats_line(), "transitions"), "2");
        assert_eq!(field(&c.stats_line(), "transitions_line"), "2,0");
    }

    #[test]
    fn both_sides_driving_low_wins_and_contention_counted() {
        let mut c: Cable<u32> = Cable::new(1);
        c.set_value(A, 0, true).unwrap();
        c.set_direction(A, 0, Direction::Output).unwrap();
        c.set_value(B, 0, true).unwrap();
        c.set_direction(B, 0, Direction::Output).unwrap();
        assert!(c.level(0).unwrap());
        assert_eq!(field(&c.stats_line(), "contention"), "0");
        c.set_value(B, 0, false).unwrap();
        assert!(!c.level(0).unwrap());
        assert_eq!(field(&c.stats_line(), "contention"), "1");
        // Staying in conflict does not count again.
        c.set_value(B, 0, false).unwrap();
        assert_eq!(field(&c.stats_line(), "contention"), "1");
        // Both low: no conflict; then conflict again.
        c.set_value(A, 0, false).unwrap();
        assert_eq!(field(&c.stats_line(), "contention"), "1");
        c.set_value(A, 0, true).unwrap();
        assert_eq!(field(&c.stats_line(), "contention"), "2");
        assert!(!c.level(0).unwrap());
        // B releases: A's 1 and the pull-up.
        c.set_direction(B, 0, Direction::None).unwrap();
        assert!(c.level(0).unwrap());
    }

    #[test]
    fn open_drain_emulation_is_wired_and() {
        let mut c: Cable<u32> = Cable::new(1);
        // Each side: "1" = input (released), "0" = output 0.
        c.set_direction(A, 0, Direction::Input).unwrap();
        c.set_direction(B, 0, Direction::Input).unwrap();
        assert!(c.level(0).unwrap());
        c.set_value(A, 0, false).unwrap();
        c.set_direction(A, 0, Direction::Output).unwrap();
        assert!(!c.level(0).unwrap());
        c.set_direction(B, 0, Direction::Input).unwrap();
        assert!(!c.get_value(B, 0).unwrap());
        c.set_direction(A, 0, Direction::Input).unwrap();
        assert!(c.get_value(B, 0).unwrap());
        assert_eq!(field(&c.stats_line(), "contention"), "0");
    }

    #[test]
    fn edges_latch_and_collapse_while_no_buffer() {
        let mut c: Cable<u32> = Cable::new(2);
        c.set_irq_type(B, 1, IrqType::EdgeBoth).unwrap();
        c.set_direction(A, 1, Direction::Output).unwrap(); // 1 -> 0
        c.set_value(A, 1, true).unwrap(); // 0 -> 1
        c.set_value(A, 1, false).unwrap(); // 1 -> 0
        assert!(c.pending(B, 1).unwrap());
        let out = c.queue_irq_buffer(B, 1, 7).unwrap();
        assert_eq!(valid(&out), vec![(B, 1, 7)]);
        assert!(!c.pending(B, 1).unwrap());
        // Nothing more latched: the next buffer is held.
        let out = c.queue_irq_buffer(B, 1, 8).unwrap();
        assert!(out.is_empty());
        assert_eq!(c.held_count(B), 1);
        // Next edge completes it at once.
        let out = c.set_value(A, 1, true).unwrap();
        assert_eq!(valid(&out), vec![(B, 1, 8)]);
        assert_eq!(field(&c.stats_line(), "irqs_b"), "2");
        assert_eq!(field(&c.stats_line(), "irqs_a"), "0");
    }

    #[test]
    fn rising_only() {
        let mut c: Cable<u32> = Cable::new(1);
        c.set_irq_type(B, 0, IrqType::EdgeRising).unwrap();
        c.queue_irq_buffer(B, 0, 1).unwrap();
        let out = c.set_direction(A, 0, Direction::Output).unwrap(); // falling
        assert!(out.is_empty());
        assert!(!c.pending(B, 0).unwrap());
        let out = c.set_value(A, 0, true).unwrap(); // rising
        assert_eq!(valid(&out), vec![(B, 0, 1)]);
    }

    #[test]
    fn falling_only_latches_only_falling() {
        let mut c: Cable<u32> = Cable::new(1);
        c.set_irq_type(A, 0, IrqType::EdgeFalling).unwrap();
        c.hold(0, true).unwrap(); // no change
        c.hold(0, false).unwrap(); // falling
        c.release(0).unwrap(); // rising
        assert!(c.pending(A, 0).unwrap());
        let out = c.queue_irq_buffer(A, 0, 3).unwrap();
        assert_eq!(valid(&out), vec![(A, 0, 3)]);
    }

    #[test]
    fn own_writes_trigger_own_irqs() {
        let mut c: Cable<u32> = Cable::new(1);
        c.set_irq_type(A, 0, IrqType::EdgeFalling).unwrap();
        c.set_irq_type(B, 0, IrqType::EdgeFalling).unwrap();
        c.queue_irq_buffer(A, 0, 10).unwrap();
        c.queue_irq_buffer(B, 0, 20).unwrap();
        let out = c.set_direction(A, 0, Direction::Output).unwrap();
        let mut got = valid(&out);
        got.sort_by_key(|x| x.2);
        assert_eq!(got, vec![(A, 0, 10), (B, 0, 20)]);
    }

    #[test]
    fn level_irqs_fire_on_queue_while_matching() {
        let mut c: Cable<u32> = Cable::new(1);
        c.set_irq_type(B, 0, IrqType::LevelLow).unwrap();
        assert!(c.queue_irq_buffer(B, 0, 1).unwrap().is_empty());
        let out = c.set_direction(A, 0, Direction::Output).unwrap();
        assert_eq!(valid(&out), vec![(B, 0, 1)]);
        // Still low: every requeue fires.
        assert_eq!(
            valid(&c.queue_irq_buffer(B, 0, 2).unwrap()),
            vec![(B, 0, 2)]
        );
        assert_eq!(
            valid(&c.queue_irq_buffer(B, 0, 3).unwrap()),
            vec![(B, 0, 3)]
        );
        // Level types do not latch: high, then low-high without buffer, then queue.
        c.set_value(A, 0, true).unwrap();
        assert!(c.queue_irq_buffer(B, 0, 4).unwrap().is_empty());
        assert!(!c.pending(B, 0).unwrap());
        // Setting the type while the level matches fires the held buffer.
        let out = c.set_irq_type(B, 0, IrqType::LevelHigh).unwrap();
        assert_eq!(valid(&out), vec![(B, 0, 4)]);
        assert_eq!(field(&c.stats_line(), "irqs_b"), "4");
    }

    #[test]
    fn irq_type_none_returns_buffer_invalid() {
        let mut c: Cable<u32> = Cable::new(2);
        c.set_irq_type(A, 1, IrqType::EdgeBoth).unwrap();
        c.queue_irq_buffer(A, 1, 5).unwrap();
        let out = c.set_irq_type(A, 1, IrqType::None).unwrap();
        assert_eq!(
            out,
            vec![Completion {
                side: A,
                line: 1,
                token: 5,
                status: IrqStatus::Invalid
            }]
        );
        // A buffer queued while disabled comes straight back INVALID.
        let out = c.queue_irq_buffer(A, 1, 6).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, IrqStatus::Invalid);
        assert_eq!(c.held_count(A), 0);
        // Edges while disabled are not latched.
        c.set_direction(B, 1, Direction::Output).unwrap();
        assert!(!c.pending(A, 1).unwrap());
        assert_eq!(field(&c.stats_line(), "irqs_a"), "0");
    }

    #[test]
    fn setting_irq_type_clears_latch() {
        let mut c: Cable<u32> = Cable::new(1);
        c.set_irq_type(A, 0, IrqType::EdgeBoth).unwrap();
        c.hold(0, false).unwrap();
        assert!(c.pending(A, 0).unwrap());
        c.set_irq_type(A, 0, IrqType::EdgeRising).unwrap();
        assert!(!c.pending(A, 0).unwrap());
        assert!(c.queue_irq_buffer(A, 0, 1).unwrap().is_empty());
    }

    #[test]
    fn flip_consumed_only_by_reads_of_that_line_and_side() {
        let mut c: Cable<u32> = Cable::new(3);
        c.flip(1, 2, Some(B)).unwrap();
        assert!(c.get_value(A, 1).unwrap()); // A unaffected
        assert!(c.get_value(B, 0).unwrap()); // other line unaffected
        assert!(!c.get_value(B, 1).unwrap());
        assert!(c.level(1).unwrap()); // level unchanged
        assert!(!c.get_value(B, 1).unwrap());
        assert!(c.get_value(B, 1).unwrap()); // used up
        assert_eq!(field(&c.stats_line(), "flips"), "2");
        assert_eq!(field(&c.stats_line(), "transitions"), "0");
        // Any-side flip: consumed by whichever reads first.
        c.flip(2, 1, None).unwrap();
        assert!(!c.get_value(A, 2).unwrap());
        assert!(c.get_value(B, 2).unwrap());
        assert_eq!(field(&c.stats_line(), "flips"), "3");
        assert_eq!(c.flip(3, 1, None), Err(CableError::NoSuchLine(3)));
    }

    #[test]
    fn hold_and_release_fire_irqs() {
        let mut c: Cable<u32> = Cable::new(2);
        c.set_irq_type(A, 0, IrqType::EdgeBoth).unwrap();
        c.queue_irq_buffer(A, 0, 1).unwrap();
        let out = c.hold(0, false).unwrap();
        assert_eq!(valid(&out), vec![(A, 0, 1)]);
        // Drivers are ignored while held.
        c.set_value(B, 0, true).unwrap();
        c.set_direction(B, 0, Direction::Output).unwrap();
        assert!(!c.level(0).unwrap());
        assert!(c.levels_line().contains("hold=-0"));
        c.queue_irq_buffer(A, 0, 2).unwrap();
        let out = c.release(0).unwrap();
        assert_eq!(valid(&out), vec![(A, 0, 2)]);
        assert!(c.level(0).unwrap());
        // Hold to the current level: no transition, no irq.
        c.queue_irq_buffer(A, 0, 3).unwrap();
        assert!(c.hold(0, true).unwrap().is_empty());
        assert_eq!(field(&c.stats_line(), "transitions"), "2");
    }

    #[test]
    fn counters_and_reset() {
        let mut c: Cable<u32> = Cable::new(2);
        c.count_request(A);
        c.count_request(A);
        c.count_request(B);
        c.set_connected(A, true);
        c.set_direction(B, 1, Direction::Output).unwrap();
        let s = c.stats_line();
        assert_eq!(field(&s, "requests_a"), "2");
        assert_eq!(field(&s, "requests_b"), "1");
        assert_eq!(field(&s, "transitions"), "1");
        assert_eq!(field(&s, "transitions_line"), "0,1");
        assert_eq!(field(&s, "connected"), "1,0");
        c.reset_counters();
        let s = c.stats_line();
        for k in ["requests_a", "requests_b", "transitions", "irqs_a", "flips"] {
            assert_eq!(field(&s, k), "0", "{k}");
        }
        assert_eq!(field(&s, "transitions_line"), "0,0");
        assert!(field(&s, "uptime_us").parse::<u64>().unwrap() < 10_000_000);
        // Reset does not touch the state.
        assert_eq!(field(&s, "connected"), "1,0");
        assert!(!c.level(1).unwrap());
    }

    #[test]
    fn reset_side_releases_lines_and_forgets_buffers() {
        let mut c: Cable<u32> = Cable::new(2);
        c.set_direction(A, 0, Direction::Output).unwrap();
        c.set_irq_type(A, 1, IrqType::EdgeBoth).unwrap();
        c.queue_irq_buffer(A, 1, 9).unwrap();
        c.set_irq_type(B, 0, IrqType::EdgeRising).unwrap();
        c.queue_irq_buffer(B, 0, 4).unwrap();
        let (dropped, out) = c.reset_side(A);
        assert_eq!(dropped, vec![9]);
        assert_eq!(valid(&out), vec![(B, 0, 4)]);
        assert!(c.level(0).unwrap());
        assert_eq!(c.direction(A, 0).unwrap(), Direction::None);
        assert_eq!(c.irq_type(A, 1).unwrap(), IrqType::None);
    }

    #[test]
    fn frozen_side_latches_and_thaw_delivers() {
        let mut c: Cable<u32> = Cable::new(1);
        c.set_irq_type(B, 0, IrqType::EdgeFalling).unwrap();
        c.queue_irq_buffer(B, 0, 1).unwrap();
        c.freeze(B);
        assert!(c.set_direction(A, 0, Direction::Output).unwrap().is_empty());
        assert_eq!(c.held_count(B), 1);
        assert_eq!(valid(&c.thaw(B)), vec![(B, 0, 1)]);
        assert_eq!(c.held_count(B), 0);
    }

    #[test]
    fn levels_line_format() {
        let mut c: Cable<u32> = Cable::new(4);
        c.set_direction(A, 0, Direction::Output).unwrap();
        c.set_direction(B, 2, Direction::Input).unwrap();
        c.set_value(B, 3, true).unwrap();
        c.set_direction(B, 3, Direction::Output).unwrap();
        c.hold(1, false).unwrap();
        assert_eq!(
            c.levels_line(),
            "levels=0b1100 drive_a=---0 drive_b=1i-- hold=--0-"
        );
    }
}
