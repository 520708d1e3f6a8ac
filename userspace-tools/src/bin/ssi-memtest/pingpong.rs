//! `pingpong`: two sides take turns incrementing a counter, so that the page holding it
//! moves between two nodes on every turn.
//!
//! Word 0 of page 0 is the counter, word 1 the turn (0 or 1). Side `me` waits until the
//! turn is `me`, increments the counter (a plain load and store: only one side writes at
//! a time) and hands the turn over. Side 0 starts (a fresh region is zero). Before its
//! k-th increment (from 0) side `me` must find the counter at `2k + me`; anything else is
//! counted as an error. Each side increments `rounds` times; side 0 then waits for side
//! 1's last increment, so that both end reading `2 * rounds`.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use crate::common::{device, need_pages, open_mapped, wait_until, Deadline, Outcome, Result};

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// Increments this side made.
    pub done: u64,
    /// The counter as last read.
    pub counter: u64,
    /// The turn as last read.
    pub turn: u64,
    /// Increments that found the counter at another value than expected.
    pub errors: u64,
    /// Whether the deadline passed first.
    pub timed_out: bool,
}

/// Plays side `me` (0 or 1) for `rounds` increments over `words` (page 0 of the region).
pub fn play(words: &[AtomicU64], me: u64, rounds: u64, deadline: &Deadline) -> Report {
    let (counter, turn) = (&words[0], &words[1]);
    let mut r = Report {
        done: 0,
        counter: 0,
        turn: 0,
        errors: 0,
        timed_out: false,
    };
    let stop = |mut r: Report, timed_out| {
        r.counter = counter.load(SeqCst);
        r.turn = turn.load(SeqCst);
        r.timed_out = timed_out;
        r
    };
    for k in 0..rounds {
        if !wait_until(deadline, || turn.load(SeqCst) == me) {
            return stop(r, true);
        }
        let c = counter.load(SeqCst);
        if c != 2 * k + me {
            r.errors += 1;
        }
        counter.store(c.wrapping_add(1), SeqCst);
        turn.store(1 - me, SeqCst);
        r.done += 1;
    }
    if me == 0 && !wait_until(deadline, || counter.load(SeqCst) >= 2 * rounds) {
        return stop(r, true);
    }
    stop(r, false)
}

/// `pingpong NAME --me 0|1 --rounds N [--timeout-s S]`.
pub fn command(devpath: &str, name: &str, me: u64, rounds: u64, timeout_s: u64) -> Result<Outcome> {
    let dev = device(devpath)?;
    let (_region, map) = open_mapped(&dev, name, true)?;
    need_pages(map.pages(), 1, "pingpong")?;
    let deadline = Deadline::after(Duration::from_secs(timeout_s));
    let r = play(map.words(), me, rounds, &deadline);
    Ok(outcome(me, rounds, &r, &deadline))
}

fn outcome(me: u64, rounds: u64, r: &Report, deadline: &Deadline) -> Outcome {
    let elapsed = deadline.elapsed();
    let per_round_us = if rounds == 0 {
        0.0
    } else {
        elapsed.as_secs_f64() * 1e6 / rounds as f64
    };
    let mut line = format!(
        "pingpong rounds={rounds} counter={} elapsed_ms={} me={me} errors={} us_per_round={per_round_us:.1}",
        r.counter,
        elapsed.as_millis(),
        r.errors
    );
    if r.timed_out {
        line += &format!(" timeout=1 done={} turn={}", r.done, r.turn);
    }
    let passed = !r.timed_out && r.errors == 0 && r.counter == 2 * rounds;
    Outcome::check(line, passed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn page() -> Vec<AtomicU64> {
        (0..512).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn two_threads_play_to_twice_the_rounds() {
        let words = page();
        let deadline = Deadline::after(Duration::from_secs(60));
        let (a, b) = thread::scope(|s| {
            let a = s.spawn(|| play(&words, 0, 500, &deadline));
            let b = s.spawn(|| play(&words, 1, 500, &deadline));
            (a.join().unwrap(), b.join().unwrap())
        });
        for (r, me) in [(a, 0), (b, 1)] {
            assert_eq!(
                (r.done, r.counter, r.errors, r.timed_out),
                (500, 1000, 0, false),
                "side {me}"
            );
            let o = outcome(me, 500, &r, &deadline);
            assert!(o.passed);
            assert!(
                o.line
                    .starts_with("pingpong rounds=500 counter=1000 elapsed_ms="),
                "{}",
                o.line
            );
            assert!(
                o.line.contains(&format!(" me={me} errors=0 ")),
                "{}",
                o.line
            );
        }
    }

    #[test]
    fn a_lone_side_times_out_with_its_state() {
        let words = page();
        let deadline = Deadline::after(Duration::from_millis(20));
        let r = play(&words, 0, 3, &deadline);
        assert_eq!((r.done, r.counter, r.turn, r.timed_out), (1, 1, 1, true));
        let o = outcome(0, 3, &r, &deadline);
        assert!(!o.passed);
        assert!(o.line.ends_with(" timeout=1 done=1 turn=1"), "{}", o.line);
    }

    #[test]
    fn a_used_region_shows_errors() {
        let words = page();
        words[0].store(7, SeqCst);
        words[1].store(1, SeqCst);
        let deadline = Deadline::after(Duration::from_secs(5));
        let r = play(&words, 1, 1, &deadline);
        assert_eq!((r.errors, r.counter, r.timed_out), (1, 8, false));
        assert!(!outcome(1, 1, &r, &deadline).passed);
    }
}
