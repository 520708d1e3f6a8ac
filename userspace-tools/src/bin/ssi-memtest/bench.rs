//! `fault-bench`: the latency of the first access to each page (the harness decides
//! beforehand which node owns the pages, so what is measured is the fault it arranged).

use std::hint::black_box;
use std::sync::atomic::{compiler_fence, Ordering::SeqCst};
use std::time::Instant;

use libssi::Mapping;

use crate::common::{device, open_mapped, Outcome, Result};

/// Which access to time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Access {
    /// A load of the page's first word (the region is opened read-only).
    Read,
    /// A store of the page's index into its first word.
    Write,
}

impl Access {
    fn label(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// Fastest, median, mean and slowest, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Fastest.
    pub min: f64,
    /// Median (the mean of the two middle samples for an even count).
    pub median: f64,
    /// Mean.
    pub mean: f64,
    /// Slowest.
    pub max: f64,
}

impl Stats {
    /// Summarizes latencies in nanoseconds, or `None` if there are none.
    pub fn of(ns: &[u64]) -> Option<Self> {
        let mut s = ns.to_vec();
        s.sort_unstable();
        let n = s.len();
        let us = |v: f64| v / 1000.0;
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => s[n / 2] as f64,
            _ => (s[n / 2 - 1] as f64 + s[n / 2] as f64) / 2.0,
        };
        Some(Self {
            min: us(s[0] as f64),
            median: us(median),
            mean: us(s.iter().map(|&v| v as f64).sum::<f64>() / n as f64),
            max: us(s[n - 1] as f64),
        })
    }
}

/// Times one access to the first word of each of the first `pages` pages.
fn measure(map: &Mapping, access: Access, pages: usize) -> Vec<u64> {
    let words = map.try_words();
    (0..pages)
        .map(|p| {
            let i = Mapping::page_word(p);
            // Instant is CLOCK_MONOTONIC; the fences keep the access between the reads.
            let t0 = Instant::now();
            compiler_fence(SeqCst);
            match (access, words) {
                (Access::Write, Some(w)) => w[i].store(p as u64, SeqCst),
                _ => {
                    black_box(map.load_word(i));
                }
            }
            compiler_fence(SeqCst);
            t0.elapsed().as_nanos() as u64
        })
        .collect()
}

/// `fault-bench NAME --mode read|write [--pages N]`.
pub fn command(devpath: &str, name: &str, access: Access, pages: Option<usize>) -> Result<Outcome> {
    let dev = device(devpath)?;
    let (_region, map) = open_mapped(&dev, name, access == Access::Write)?;
    let n = pages.unwrap_or(map.pages());
    if n == 0 || n > map.pages() {
        return Err(format!(
            "fault-bench --pages {n}: the region has {} pages",
            map.pages()
        ));
    }
    let s = Stats::of(&measure(&map, access, n)).ok_or("no samples")?;
    Ok(Outcome::pass(format!(
        "fault_bench mode={} pages={n} min_us={:.2} median_us={:.2} mean_us={:.2} max_us={:.2}",
        access.label(),
        s.min,
        s.median,
        s.mean,
        s.max
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_odd_even_and_empty_sets() {
        assert_eq!(Stats::of(&[]), None);
        assert_eq!(
            Stats::of(&[3000, 1000, 2000]),
            Some(Stats {
                min: 1.0,
                median: 2.0,
                mean: 2.0,
                max: 3.0
            })
        );
        let s = Stats::of(&[1000, 4000, 2000, 9000]).unwrap();
        assert_eq!((s.min, s.median, s.mean, s.max), (1.0, 3.0, 4.0, 9.0));
    }
}
