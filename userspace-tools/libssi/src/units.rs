//! Sizes and permission bits as people write them: `64M`, `0600`.

use std::io;

use crate::error::invalid;

/// Parses a byte count: digits, optionally followed by `K`, `M` or `G` (powers of 1024,
/// either case, optionally followed by `B` or `iB`), e.g. `4096`, `64K`, `1G`, `16MiB`.
pub fn parse_size(text: &str) -> io::Result<u64> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits);
    let bad = || {
        invalid(format!(
            "{text:?}: not a size (bytes, or a number with K, M or G)"
        ))
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let shift = match suffix.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| invalid(format!("{text:?}: too large")))
}

/// Formats a byte count with the largest of `G`, `M`, `K` that divides it exactly.
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// Parses permission bits in octal (`600`, `0640`, `0o644`), at most `0777`.
pub fn parse_mode(text: &str) -> io::Result<u32> {
    let t = text.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    let bad = || {
        invalid(format!(
            "{text:?}: not permission bits in octal (0 to 0777)"
        ))
    };
    if digits.is_empty() {
        return Err(bad());
    }
    let mode = u32::from_str_radix(digits, 8).map_err(|_| bad())?;
    if mode > 0o777 {
        return Err(bad());
    }
    Ok(mode)
}

/// Formats permission bits as four octal digits, e.g. `0600`.
pub fn format_mode(mode: u32) -> String {
    format!("{mode:04o}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::errno;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64K").unwrap(), 64 << 10);
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("0").unwrap(), 0);
        for bad in ["", "M", "1T", "-1", "1.5M", "0x1000", "12 34"] {
            let e = parse_size(bad).unwrap_err();
            assert_eq!(errno(&e), Some(libc::EINVAL), "{bad}");
        }
        assert!(parse_size("99999999999999999G").is_err());
    }

    #[test]
    fn sizes_format_exactly() {
        assert_eq!(format_size(64 << 20), "64M");
        assert_eq!(format_size(4 << 30), "4G");
        assert_eq!(format_size(12 << 10), "12K");
        assert_eq!(format_size(1500), "1500");
        assert_eq!(format_size(0), "0");
        assert_eq!(format_size((1 << 20) + 4096), "1028K");
    }

    #[test]
    fn modes_are_octal_and_bounded() {
        assert_eq!(parse_mode("0600").unwrap(), 0o600);
        assert_eq!(parse_mode("644").unwrap(), 0o644);
        assert_eq!(parse_mode("0o640").unwrap(), 0o640);
        assert_eq!(parse_mode("0").unwrap(), 0);
        for bad in ["", "0o", "888", "1777", "rw", "-600"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
        assert_eq!(format_mode(0o600), "0600");
        assert_eq!(format_mode(0o7), "0007");
    }
}
