// SPDX-License-Identifier: GPL-2.0

//! Formatting text into a caller's byte buffer, without allocating: state descriptions
//! for `/proc/ssi` and `SSI_IOC_STATUS`, padded fields of listings; and 64-bit numbers
//! that format safely on 32-bit kernels ([`U64`], [`I64`]).

use core::fmt;

/// Writes text into a byte buffer, silently truncating at its end (on a character
/// boundary, so the result stays UTF-8).
pub struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceWriter<'a> {
    /// An empty writer over `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        // Only whole `str`s, cut on character boundaries, are ever copied in.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// A `u64` that formats (`{}`, with width and fill) using 32-bit arithmetic only.
///
/// On 32-bit ARM, core's own `Display` for `u64` divides by 10^4 with a 64-bit
/// division, which the kernel implements as a BUG (`__aeabi_uldivmod`). Kernel code
/// prints every `u64`/`i64` through this (or `{:x}`, which only shifts);
/// `make pizero` refuses modules that still import core's 64-bit `Display`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct U64(pub u64);

/// An `i64` that formats like [`U64`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct I64(pub i64);

/// The decimal digits of `v`, most significant first, in `buf`; returns where they start.
fn decimal(mut v: u64, buf: &mut [u8; 20]) -> usize {
    let mut at = buf.len();
    loop {
        let (q, digit) = super::arith::div_small(v, 10);
        at -= 1;
        buf[at] = b'0' + digit as u8;
        v = q;
        if v == 0 {
            return at;
        }
    }
}

impl fmt::Display for U64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 20];
        let at = decimal(self.0, &mut buf);
        // Only ASCII digits were written.
        f.pad_integral(true, "", core::str::from_utf8(&buf[at..]).unwrap_or("?"))
    }
}

impl fmt::Display for I64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 20];
        let at = decimal(self.0.unsigned_abs(), &mut buf);
        f.pad_integral(
            self.0 >= 0,
            "",
            core::str::from_utf8(&buf[at..]).unwrap_or("?"),
        )
    }
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_text))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn writes_and_truncates_on_char_boundaries() {
        let mut buf = [0u8; 8];
        let mut w = SliceWriter::new(&mut buf);
        assert!(w.is_empty());
        let name = "ab";
        assert!(write!(w, "{}:{}", name, 7).is_ok());
        assert_eq!(w.as_str(), "ab:7");
        // "é" is two bytes: only 4 bytes are left, so "xyz" fits and "é" does not.
        assert!(w.write_str("xyzé").is_ok());
        assert_eq!(w.as_str(), "ab:7xyz");
        assert_eq!(w.len(), 7);
        assert!(w.write_str("more").is_ok());
        assert_eq!(w.as_str(), "ab:7xyzm");
    }

    fn show(args: fmt::Arguments<'_>) -> ([u8; 48], usize) {
        let mut buf = [0u8; 48];
        let mut w = SliceWriter::new(&mut buf);
        let _ = w.write_fmt(args);
        let n = w.len();
        (buf, n)
    }

    #[test]
    fn sixty_four_bit_numbers_format_like_core() {
        let (b, n) = show(format_args!("{}", U64(0)));
        assert_eq!(&b[..n], b"0");
        let (b, n) = show(format_args!("{}", U64(u64::MAX)));
        assert_eq!(&b[..n], b"18446744073709551615");
        let (b, n) = show(format_args!("{}", U64(4_294_967_296)));
        assert_eq!(&b[..n], b"4294967296");
        let (b, n) = show(format_args!("[{:>8}]", U64(65_536)));
        assert_eq!(&b[..n], b"[   65536]");
        let (b, n) = show(format_args!("[{:<6}]", U64(10_000)));
        assert_eq!(&b[..n], b"[10000 ]");
        let (b, n) = show(format_args!("{}", I64(i64::MIN)));
        assert_eq!(&b[..n], b"-9223372036854775808");
        let (b, n) = show(format_args!("{:>5}", I64(-42)));
        assert_eq!(&b[..n], b"  -42");
    }
}
