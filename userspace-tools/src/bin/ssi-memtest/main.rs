//! ssi-memtest: tests and measures ssi regions (cluster-wide shared memory) from
//! userspace, through libssi.
//!
//! Every run prints one result line on stdout, `tag key=value ...`. Exit status: 0 when
//! the run passed, 1 when its check failed (a mismatch, a litmus violation, a wrong
//! count, a timeout), 2 on errors (bad arguments, a region that cannot be opened or
//! mapped: the reason is on stderr), 77 after a `SIGBUS` (reported on stderr as
//! `SIGBUS addr_page=P ...`).

use std::ops::Range;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod bench;
mod common;
mod litmus;
mod patterns;
mod pingpong;
mod sigbus;
mod touch;

use common::{Outcome, Result};

/// Exit status of a failed check.
const EXIT_FAILED: u8 = 1;
/// Exit status of an error.
const EXIT_ERROR: u8 = 2;

/// Test and measure ssi regions: fill and verify patterns, ping-pong a counter and run a
/// message-passing litmus test between nodes, touch pages, time page faults.
///
/// Prints one `tag key=value ...` line per run. Exits 0 if the run passed, 1 if its check
/// failed (mismatch, violation, timeout), 2 on errors, 77 after a SIGBUS (lost page,
/// removed region; reported on stderr as `SIGBUS addr_page=P ...`).
#[derive(Parser)]
#[command(name = "ssi-memtest", version, about, long_about)]
struct Cli {
    /// The ssi control device.
    #[arg(long, global = true, default_value = libssi::DEFAULT_DEVICE)]
    device: String,

    #[command(subcommand)]
    command: Command,
}

/// A part of a region: whole 64-bit words.
#[derive(Args, Clone, Copy)]
struct SpanArgs {
    /// First byte (a multiple of 8; K, M, G suffixes).
    #[arg(long, default_value = "0", value_parser = size_arg)]
    offset: u64,
    /// Bytes (a multiple of 8; K, M, G suffixes); default: up to the end.
    #[arg(long, value_parser = size_arg)]
    len: Option<u64>,
}

impl From<SpanArgs> for patterns::Span {
    fn from(a: SpanArgs) -> Self {
        Self {
            offset: a.offset,
            len: a.len,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Create a region homed on this node:
    /// `created name=.. size=.. pages=.. mode=.. home=.. generation=..`.
    Create {
        /// 1 to 40 characters of A-Z a-z 0-9 . _ -, not starting with a dot.
        name: String,
        /// Bytes, a multiple of 4096 (K, M, G suffixes: 64M).
        #[arg(value_parser = size_arg)]
        size: u64,
        /// Permission bits, octal.
        #[arg(long, default_value = "0600", value_parser = mode_arg)]
        mode: u32,
    },
    /// Remove a region from the cluster: `removed name=..`.
    Remove {
        /// The region.
        name: String,
    },
    /// Write the pattern of SEED (word i = splitmix64(SEED ^ i), i counted from the
    /// region's start): `filled bytes=N checksum=HEX ...`.
    Fill {
        /// The region (opened read-write).
        name: String,
        /// The pattern's seed.
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        span: SpanArgs,
    },
    /// Check every word against the pattern of SEED:
    /// `verified bytes=N checksum=HEX mismatches=0 ...`, or (exit 1)
    /// `mismatch bytes=N checksum=HEX mismatches=C first_offset=O expected=HEX found=HEX ...`.
    Verify {
        /// The region (opened read-only).
        name: String,
        /// The pattern's seed.
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        span: SpanArgs,
    },
    /// The checksum of the contents (FNV-1a over 64-bit words, as `fill` prints):
    /// `checksum bytes=N checksum=HEX ...`.
    Checksum {
        /// The region (opened read-only).
        name: String,
        #[command(flatten)]
        span: SpanArgs,
    },
    /// Take turns with the other side incrementing word 0 of page 0 (word 1 is the turn;
    /// side 0 starts; use a fresh region):
    /// `pingpong rounds=N counter=2N elapsed_ms=T me=M errors=0 us_per_round=U`.
    Pingpong {
        /// The region (opened read-write).
        name: String,
        /// This side: 0 or 1.
        #[arg(long, value_parser = clap::value_parser!(u64).range(0..=1))]
        me: u64,
        /// Increments this side makes.
        #[arg(long)]
        rounds: u64,
        /// Give up (exit 1, printing the state) after this many seconds.
        #[arg(long = "timeout-s", default_value_t = 600)]
        timeout_s: u64,
    },
    /// Message passing across nodes (data in page 1, flag in page 2, ack in page 3; a
    /// fresh region of at least 4 pages):
    /// `litmus role=R iterations=N violations=V elapsed_ms=T`.
    Litmus {
        /// The region (opened read-write).
        name: String,
        /// This side.
        #[arg(long, value_enum)]
        role: litmus::Role,
        /// Messages.
        #[arg(long)]
        iterations: u64,
        /// Give up (exit 1, printing the state) after this many seconds.
        #[arg(long = "timeout-s", default_value_t = 600)]
        timeout_s: u64,
    },
    /// Access the first word of each page of a range, once, N times or until killed
    /// (1 ms apart); prints `ready` on stderr first, `touched pages=N passes=P` at the end.
    Touch {
        /// The region (read-write with --write, else read-only).
        name: String,
        /// Pages: A..B (B excluded), A..=B or A.
        #[arg(long, value_parser = touch::pages_arg)]
        pages: Range<usize>,
        /// Write the word back with its value instead of reading it.
        #[arg(long)]
        write: bool,
        /// Repeat until killed (or SIGBUS: exit 77).
        #[arg(long = "loop", conflicts_with = "passes")]
        forever: bool,
        /// Passes over the range.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        passes: u64,
    },
    /// Time the first access to each page (CLOCK_MONOTONIC around one load or store):
    /// `fault_bench mode=M pages=N min_us=.. median_us=.. mean_us=.. max_us=..`.
    FaultBench {
        /// The region (read-write for --mode write, else read-only).
        name: String,
        /// The access: read (a load) or write (a store of the page index).
        #[arg(long, value_enum)]
        mode: bench::Access,
        /// Pages from the first (default: all).
        #[arg(long)]
        pages: Option<usize>,
    },
}

fn size_arg(s: &str) -> std::result::Result<u64, String> {
    libssi::parse_size(s).map_err(|e| e.to_string())
}

fn mode_arg(s: &str) -> std::result::Result<u32, String> {
    libssi::parse_mode(s).map_err(|e| e.to_string())
}

impl Command {
    /// The region the command works on.
    fn region(&self) -> &str {
        match self {
            Command::Create { name, .. }
            | Command::Remove { name }
            | Command::Fill { name, .. }
            | Command::Verify { name, .. }
            | Command::Checksum { name, .. }
            | Command::Pingpong { name, .. }
            | Command::Litmus { name, .. }
            | Command::Touch { name, .. }
            | Command::FaultBench { name, .. } => name,
        }
    }
}

fn run(cli: Cli) -> Result<Outcome> {
    let dev = cli.device.as_str();
    // Arguments first: their errors say more than a missing device's.
    libssi::validate_name(cli.command.region()).map_err(|e| e.to_string())?;
    if let Command::Create { size, mode, .. } = cli.command {
        libssi::validate_size(size)
            .and_then(|()| libssi::validate_mode(mode))
            .map_err(|e| e.to_string())?;
    }
    match cli.command {
        Command::Create { name, size, mode } => patterns::create(dev, &name, size, mode),
        Command::Remove { name } => patterns::remove(dev, &name),
        Command::Fill { name, seed, span } => patterns::fill(dev, &name, seed, span.into()),
        Command::Verify { name, seed, span } => patterns::verify(dev, &name, seed, span.into()),
        Command::Checksum { name, span } => patterns::checksum(dev, &name, span.into()),
        Command::Pingpong {
            name,
            me,
            rounds,
            timeout_s,
        } => pingpong::command(dev, &name, me, rounds, timeout_s),
        Command::Litmus {
            name,
            role,
            iterations,
            timeout_s,
        } => litmus::command(dev, &name, role, iterations, timeout_s),
        Command::Touch {
            name,
            pages,
            write,
            forever,
            passes,
        } => touch::command(
            dev,
            &name,
            &touch::TouchArgs {
                pages,
                write,
                passes: (!forever).then_some(passes),
            },
        ),
        Command::FaultBench { name, mode, pages } => bench::command(dev, &name, mode, pages),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(outcome) => {
            println!("{}", outcome.line);
            if outcome.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILED)
            }
        }
        Err(e) => {
            eprintln!("ssi-memtest: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ssi-memtest").chain(args.iter().copied()))
    }

    #[test]
    fn arguments_parse() {
        match parse(&["create", "r", "64M"]).unwrap().command {
            Command::Create { size, mode, .. } => assert_eq!((size, mode), (64 << 20, 0o600)),
            _ => panic!(),
        }
        match parse(&["fill", "r", "--seed", "7", "--offset", "4K", "--len", "8K"])
            .unwrap()
            .command
        {
            Command::Fill { seed, span, .. } => {
                assert_eq!((seed, span.offset, span.len), (7, 4096, Some(8192)))
            }
            _ => panic!(),
        }
        assert!(parse(&["fill", "r"]).is_err(), "--seed is required");
        match parse(&["pingpong", "r", "--me", "1", "--rounds", "10"])
            .unwrap()
            .command
        {
            Command::Pingpong {
                me,
                rounds,
                timeout_s,
                ..
            } => {
                assert_eq!((me, rounds, timeout_s), (1, 10, 600))
            }
            _ => panic!(),
        }
        assert!(parse(&["pingpong", "r", "--me", "2", "--rounds", "1"]).is_err());
        match parse(&[
            "litmus",
            "r",
            "--role",
            "reader",
            "--iterations",
            "5",
            "--timeout-s",
            "9",
        ])
        .unwrap()
        .command
        {
            Command::Litmus {
                role,
                iterations,
                timeout_s,
                ..
            } => {
                assert_eq!((role, iterations, timeout_s), (litmus::Role::Reader, 5, 9))
            }
            _ => panic!(),
        }
        assert!(parse(&["litmus", "r", "--role", "both", "--iterations", "5"]).is_err());
        match parse(&["touch", "r", "--pages", "0..=3", "--write", "--loop"])
            .unwrap()
            .command
        {
            Command::Touch {
                pages,
                write,
                forever,
                passes,
                ..
            } => {
                assert_eq!((pages, write, forever, passes), (0..4, true, true, 1))
            }
            _ => panic!(),
        }
        assert!(parse(&["touch", "r", "--pages", "0..2", "--loop", "--passes", "3"]).is_err());
        assert!(parse(&["touch", "r", "--pages", "0..2", "--passes", "0"]).is_err());
        match parse(&["fault-bench", "r", "--mode", "write", "--pages", "16"])
            .unwrap()
            .command
        {
            Command::FaultBench { mode, pages, .. } => {
                assert_eq!((mode, pages), (bench::Access::Write, Some(16)))
            }
            _ => panic!(),
        }
        assert!(parse(&["--device", "/dev/x", "checksum", "r"]).is_ok());
    }
}
