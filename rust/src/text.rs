// SPDX-License-Identifier: GPL-2.0

//! Formatting text into a caller's byte buffer, without allocating: state descriptions
//! for `/proc/ssi` and `SSI_IOC_STATUS`, padded fields of listings.

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
}
