//! `create`, `remove`, `fill`, `verify`, `checksum`: regions and their contents.

use libssi::pattern::pattern_checksum;
use libssi::{format_mode, Region};

use crate::common::{byte_range, device, hex, open_mapped, Outcome, Result};

/// Which bytes of a region to work on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// First byte (a multiple of 8).
    pub offset: u64,
    /// Bytes (a multiple of 8); `None`: up to the end.
    pub len: Option<u64>,
}

/// `create NAME SIZE [--mode M]`.
pub fn create(devpath: &str, name: &str, size: u64, mode: u32) -> Result<Outcome> {
    let dev = device(devpath)?;
    let r = Region::create(&dev, name, size, mode).map_err(|e| e.to_string())?;
    Ok(Outcome::pass(format!(
        "created name={} size={} pages={} mode={} home={} generation={}",
        r.name(),
        r.size(),
        r.pages(),
        format_mode(r.mode()),
        r.home(),
        r.generation()
    )))
}

/// `remove NAME`.
pub fn remove(devpath: &str, name: &str) -> Result<Outcome> {
    device(devpath)?
        .remove_region(name)
        .map_err(|e| e.to_string())?;
    Ok(Outcome::pass(format!("removed name={name}")))
}

/// `fill NAME --seed S`: writes the pattern.
pub fn fill(devpath: &str, name: &str, seed: u64, span: Span) -> Result<Outcome> {
    let dev = device(devpath)?;
    let (_region, map) = open_mapped(&dev, name, true)?;
    let range = byte_range(map.len(), span.offset, span.len)?;
    let sum = map.fill_pattern(seed, range.clone());
    Ok(Outcome::pass(format!(
        "filled bytes={} checksum={} offset={} seed={seed}",
        range.len(),
        hex(sum),
        range.start
    )))
}

/// `verify NAME --seed S`: checks every word against the pattern.
pub fn verify(devpath: &str, name: &str, seed: u64, span: Span) -> Result<Outcome> {
    let dev = device(devpath)?;
    let (_region, map) = open_mapped(&dev, name, false)?;
    let range = byte_range(map.len(), span.offset, span.len)?;
    let words = (range.start / 8) as u64..(range.end / 8) as u64;
    Ok(match map.verify_pattern(seed, range.clone()) {
        // Every word matched, so the contents' checksum is the pattern's.
        Ok(()) => Outcome::pass(format!(
            "verified bytes={} checksum={} mismatches=0 offset={} seed={seed}",
            range.len(),
            hex(pattern_checksum(seed, words)),
            range.start
        )),
        Err(m) => Outcome::check(
            format!(
                "mismatch bytes={} checksum={} mismatches={} first_offset={} expected={} found={} offset={} seed={seed}",
                range.len(),
                hex(map.checksum(range.clone())),
                m.count,
                m.offset,
                hex(m.expected),
                hex(m.found),
                range.start
            ),
            false,
        ),
    })
}

/// `checksum NAME`: the checksum of the contents, whatever they are.
pub fn checksum(devpath: &str, name: &str, span: Span) -> Result<Outcome> {
    let dev = device(devpath)?;
    let (_region, map) = open_mapped(&dev, name, false)?;
    let range = byte_range(map.len(), span.offset, span.len)?;
    Ok(Outcome::pass(format!(
        "checksum bytes={} checksum={} offset={}",
        range.len(),
        hex(map.checksum(range.clone())),
        range.start
    )))
}
