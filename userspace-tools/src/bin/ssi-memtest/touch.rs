//! `touch`: one access per page over a range of pages, once, N times or forever, so that
//! a test can make a node fetch or own pages, or keep it faulting on them.

use std::hint::black_box;
use std::ops::Range;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use libssi::Mapping;

use crate::common::{device, need_pages, open_mapped, Outcome, Result};

/// Parses a page range: `A..B` (B excluded), `A..=B` (B included) or `A` (one page).
pub fn pages_arg(s: &str) -> std::result::Result<Range<usize>, String> {
    let num = |t: &str| {
        t.trim()
            .parse::<usize>()
            .map_err(|_| format!("{s:?}: not a page range (A..B, A..=B or A)"))
    };
    let range = if let Some((a, b)) = s.split_once("..=") {
        num(a)?..num(b)?.checked_add(1).ok_or("page number too large")?
    } else if let Some((a, b)) = s.split_once("..") {
        num(a)?..num(b)?
    } else {
        let a = num(s)?;
        a..a + 1
    };
    if range.is_empty() {
        return Err(format!("{s:?}: no pages in this range"));
    }
    Ok(range)
}

/// What `touch` was asked to do.
pub struct TouchArgs {
    /// The pages.
    pub pages: Range<usize>,
    /// Write (keeping the value) instead of read.
    pub write: bool,
    /// Passes over the range; `None`: until killed.
    pub passes: Option<u64>,
}

/// One pass: reads the first word of each page, or writes it back with the value it
/// holds (an atomic compare-and-swap, so a concurrent writer's value is kept).
fn pass(map: &Mapping, pages: Range<usize>, write: bool) {
    let mut acc = 0u64;
    for p in pages {
        let i = Mapping::page_word(p);
        if write {
            let w = &map.words()[i];
            // Never fails: the closure always gives a value.
            let _ = w.fetch_update(SeqCst, SeqCst, Some);
        } else {
            acc ^= map.load_word(i);
        }
    }
    black_box(acc);
}

/// `touch NAME --pages FROM..TO [--write] [--loop | --passes N]`.
pub fn command(devpath: &str, name: &str, args: &TouchArgs) -> Result<Outcome> {
    let dev = device(devpath)?;
    let (_region, map) = open_mapped(&dev, name, args.write)?;
    need_pages(map.pages(), args.pages.end, "touch --pages")?;
    eprintln!("ready");
    let mut done = 0u64;
    loop {
        pass(&map, args.pages.clone(), args.write);
        done += 1;
        if args.passes.is_some_and(|n| done >= n) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(Outcome::pass(format!(
        "touched pages={} passes={done}",
        args.pages.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ranges_parse() {
        assert_eq!(pages_arg("0..4"), Ok(0..4));
        assert_eq!(pages_arg("2..=5"), Ok(2..6));
        assert_eq!(pages_arg("7"), Ok(7..8));
        assert_eq!(pages_arg(" 1 .. 3 "), Ok(1..3));
        for bad in ["", "a..b", "4..4", "5..2", "..3", "1..", "-1..2", "1...3"] {
            assert!(pages_arg(bad).is_err(), "{bad}");
        }
    }
}
