//! What the subcommands share: opening and mapping a region, byte ranges, deadlines,
//! result lines.

use std::ops::Range;
use std::time::{Duration, Instant};

use libssi::{Device, Mapping, Region, PAGE_SIZE};

use crate::sigbus;

/// What a subcommand reports: its result line, and whether the check it made passed.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `tag key=value ...`, printed on stdout.
    pub line: String,
    /// False makes the program exit 1.
    pub passed: bool,
}

impl Outcome {
    /// A passed check.
    pub fn pass(line: String) -> Self {
        Self { line, passed: true }
    }

    /// A result that passed if `passed`.
    pub fn check(line: String, passed: bool) -> Self {
        Self { line, passed }
    }
}

/// Errors are messages (printed on stderr; exit 2).
pub type Result<T> = std::result::Result<T, String>;

/// Opens the control device.
pub fn device(path: &str) -> Result<Device> {
    Device::open_path(path).map_err(|e| e.to_string())
}

/// Opens region `name` (writable or not) and maps it, with the `SIGBUS` reporter
/// installed for that mapping.
pub fn open_mapped(dev: &Device, name: &str, writable: bool) -> Result<(Region, Mapping)> {
    let region = Region::open(dev, name, writable).map_err(|e| e.to_string())?;
    let map = region.map().map_err(|e| e.to_string())?;
    sigbus::install(&map).map_err(|e| format!("sigaction(SIGBUS): {e}"))?;
    Ok((region, map))
}

/// The byte range `offset..offset + len` of a region of `size` bytes (`len` defaults to
/// the rest), checked: within the region, both ends on 8-byte boundaries.
pub fn byte_range(size: usize, offset: u64, len: Option<u64>) -> Result<Range<usize>> {
    let size = size as u64;
    let len = len.unwrap_or(size.saturating_sub(offset));
    let end = offset
        .checked_add(len)
        .filter(|&e| e <= size)
        .ok_or_else(|| {
            format!("offset {offset} + length {len} is beyond the region's {size} bytes")
        })?;
    if !offset.is_multiple_of(8) || !len.is_multiple_of(8) {
        return Err(format!(
            "offset {offset} and length {len} must be multiples of 8 (whole words)"
        ));
    }
    // Both ends fit in usize: they are at most `size`.
    Ok(offset as usize..end as usize)
}

/// Checks that a region of `pages` pages has at least `need` of them for `what`.
pub fn need_pages(pages: usize, need: usize, what: &str) -> Result<()> {
    if pages < need {
        return Err(format!(
            "{what} needs a region of at least {need} pages ({} bytes), this one has {pages}",
            need * PAGE_SIZE
        ));
    }
    Ok(())
}

/// A 64-bit checksum as result lines print it: 16 lowercase hex digits.
pub fn hex(v: u64) -> String {
    format!("{v:016x}")
}

/// When a wait gives up.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    start: Instant,
    limit: Duration,
}

impl Deadline {
    /// Gives up `limit` from now.
    pub fn after(limit: Duration) -> Self {
        Self {
            start: Instant::now(),
            limit,
        }
    }

    /// Whether the limit has passed.
    pub fn expired(&self) -> bool {
        self.start.elapsed() >= self.limit
    }

    /// Whole milliseconds since the start.
    pub fn elapsed_ms(&self) -> u128 {
        self.start.elapsed().as_millis()
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// Polls until `cond` holds (true) or the deadline passes (false): a few tries back to
/// back, then 50 us sleeps between tries. The other side's update arrives by a page
/// transfer (milliseconds across nodes), and a sleeping poller leaves the CPU to the
/// kernel work that carries it (on a one-CPU node, or a host running several guests).
pub fn wait_until(deadline: &Deadline, mut cond: impl FnMut() -> bool) -> bool {
    let mut tries = 0u32;
    loop {
        if cond() {
            return true;
        }
        if deadline.expired() {
            return false;
        }
        tries += 1;
        if tries < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_fixed_width() {
        assert_eq!(hex(0xab), "00000000000000ab");
        assert_eq!(hex(u64::MAX), "ffffffffffffffff");
    }

    #[test]
    fn waits_end_with_the_condition_or_the_deadline() {
        let d = Deadline::after(Duration::from_secs(60));
        let mut n = 0;
        assert!(wait_until(&d, || {
            n += 1;
            n == 3
        }));
        let d = Deadline::after(Duration::from_millis(1));
        assert!(!wait_until(&d, || false));
        assert!(d.expired());
    }

    #[test]
    fn byte_ranges_are_checked() {
        assert_eq!(byte_range(8192, 0, None), Ok(0..8192));
        assert_eq!(byte_range(8192, 4096, None), Ok(4096..8192));
        assert_eq!(byte_range(8192, 8, Some(16)), Ok(8..24));
        assert_eq!(byte_range(8192, 8192, None), Ok(8192..8192));
        assert!(byte_range(8192, 8200, None).unwrap_err().contains("beyond"));
        assert!(byte_range(8192, 4096, Some(4104))
            .unwrap_err()
            .contains("beyond"));
        assert!(byte_range(8192, u64::MAX, Some(8)).is_err());
        assert!(byte_range(8192, 4, None)
            .unwrap_err()
            .contains("multiples of 8"));
        assert!(byte_range(8192, 0, Some(12))
            .unwrap_err()
            .contains("multiples of 8"));
    }

    #[test]
    fn pages_are_counted() {
        assert!(need_pages(4, 4, "litmus").is_ok());
        let e = need_pages(3, 4, "litmus").unwrap_err();
        assert_eq!(
            e,
            "litmus needs a region of at least 4 pages (16384 bytes), this one has 3"
        );
    }
}
