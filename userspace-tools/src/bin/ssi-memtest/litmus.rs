//! `litmus`: message passing across nodes.
//!
//! The data word is the first of page 1, the flag the first of page 2, the
//! acknowledgement the first of page 3: three pages, so each step moves pages between
//! the nodes. For i in 1..=N the writer stores data = i, then flag = i, and waits for
//! ack = i; the reader waits for flag >= i, reads data, and counts a violation unless
//! data equals the flag it saw (a smaller value is a stale read: the kernels let the flag
//! be seen before the data), then stores ack = i.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use libssi::Mapping;

use crate::common::{device, need_pages, open_mapped, wait_until, Deadline, Outcome, Result};

/// Which side of the litmus test to play.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Writes data then flag, waits for the acknowledgement.
    Writer,
    /// Waits for the flag, checks the data, acknowledges.
    Reader,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Reader => "reader",
        }
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// Iterations completed.
    pub done: u64,
    /// Reads of data that differed from the flag seen just before.
    pub violations: u64,
    /// Whether the deadline passed first.
    pub timed_out: bool,
    /// Data, flag and ack as last read.
    pub state: [u64; 3],
}

const DATA: usize = 1;
const FLAG: usize = 2;
const ACK: usize = 3;

/// Plays `role` for `iterations` over `words` (the region from its start).
pub fn play(words: &[AtomicU64], role: Role, iterations: u64, deadline: &Deadline) -> Report {
    let word = |page| &words[Mapping::page_word(page)];
    let (data, flag, ack) = (word(DATA), word(FLAG), word(ACK));
    let mut r = Report {
        done: 0,
        violations: 0,
        timed_out: false,
        state: [0; 3],
    };
    for i in 1..=iterations {
        let ok = match role {
            Role::Writer => {
                data.store(i, SeqCst);
                flag.store(i, SeqCst);
                wait_until(deadline, || ack.load(SeqCst) >= i)
            }
            Role::Reader => {
                let mut seen = 0;
                let ok = wait_until(deadline, || {
                    seen = flag.load(SeqCst);
                    seen >= i
                });
                if ok {
                    if data.load(SeqCst) != seen {
                        r.violations += 1;
                    }
                    ack.store(i, SeqCst);
                }
                ok
            }
        };
        if !ok {
            r.timed_out = true;
            break;
        }
        r.done = i;
    }
    r.state = [data.load(SeqCst), flag.load(SeqCst), ack.load(SeqCst)];
    r
}

/// `litmus NAME --role writer|reader --iterations N [--timeout-s S]`.
pub fn command(
    devpath: &str,
    name: &str,
    role: Role,
    iterations: u64,
    timeout_s: u64,
) -> Result<Outcome> {
    let dev = device(devpath)?;
    let (_region, map) = open_mapped(&dev, name, true)?;
    need_pages(map.pages(), ACK + 1, "litmus")?;
    let deadline = Deadline::after(Duration::from_secs(timeout_s));
    let r = play(map.words(), role, iterations, &deadline);
    Ok(outcome(role, iterations, &r, deadline.elapsed_ms()))
}

fn outcome(role: Role, iterations: u64, r: &Report, elapsed_ms: u128) -> Outcome {
    let mut line = format!(
        "litmus role={} iterations={iterations} violations={} elapsed_ms={elapsed_ms}",
        role.label(),
        r.violations
    );
    if r.timed_out {
        let [data, flag, ack] = r.state;
        line += &format!(
            " timeout=1 done={} data={data} flag={flag} ack={ack}",
            r.done
        );
    }
    Outcome::check(line, !r.timed_out && r.violations == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn region() -> Vec<AtomicU64> {
        (0..4 * 512).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn two_threads_see_no_violation() {
        let words = region();
        let deadline = Deadline::after(Duration::from_secs(60));
        let (w, r) = thread::scope(|s| {
            let w = s.spawn(|| play(&words, Role::Writer, 300, &deadline));
            let r = s.spawn(|| play(&words, Role::Reader, 300, &deadline));
            (w.join().unwrap(), r.join().unwrap())
        });
        for rep in [w, r] {
            assert_eq!((rep.done, rep.violations, rep.timed_out), (300, 0, false));
            assert_eq!(rep.state[1], 300);
        }
        assert_eq!(words[512].load(SeqCst), 300);
        assert_eq!(words[3 * 512].load(SeqCst), 300);
        let o = outcome(Role::Reader, 300, &r, 12);
        assert_eq!(
            o,
            Outcome::pass("litmus role=reader iterations=300 violations=0 elapsed_ms=12".into())
        );
    }

    #[test]
    fn stale_data_is_a_violation() {
        let words = region();
        // A flag without its data.
        words[2 * 512].store(1, SeqCst);
        let deadline = Deadline::after(Duration::from_secs(5));
        let r = play(&words, Role::Reader, 1, &deadline);
        assert_eq!((r.done, r.violations), (1, 1));
        assert_eq!(words[3 * 512].load(SeqCst), 1);
        assert!(!outcome(Role::Reader, 1, &r, 0).passed);
    }

    #[test]
    fn a_lone_writer_times_out_with_the_state() {
        let words = region();
        let deadline = Deadline::after(Duration::from_millis(20));
        let r = play(&words, Role::Writer, 5, &deadline);
        assert_eq!((r.done, r.timed_out, r.state), (0, true, [1, 1, 0]));
        let o = outcome(Role::Writer, 5, &r, 20);
        assert!(!o.passed);
        assert!(
            o.line.ends_with("timeout=1 done=0 data=1 flag=1 ack=0"),
            "{}",
            o.line
        );
    }
}
