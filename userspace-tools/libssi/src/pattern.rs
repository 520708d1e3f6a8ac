//! A cheap deterministic test pattern and a checksum, both over 64-bit words.
//!
//! Word `i` of a region (the word at byte offset `8 * i`) holds [`pattern_word`]`(seed,
//! i)` = [`splitmix64`]`(seed ^ i)`: every word differs from its neighbours and from the
//! same word under another seed, and any part of a region can be filled or checked
//! without the rest. [`Checksum`] is an FNV-1a-style hash over whole words, in order.

use std::fmt;
use std::ops::Range;

/// The splitmix64 finalizer of `x + 0x9e3779b97f4a7c15` (Steele, Lea, Flood: "Fast
/// splittable pseudorandom number generators", 2014).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The pattern's value of word `index` (counted from the start of the region) for `seed`.
pub fn pattern_word(seed: u64, index: u64) -> u64 {
    splitmix64(seed ^ index)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// An order-sensitive 64-bit checksum of a sequence of words: starting from the FNV
/// offset basis, each word is XORed in and the state multiplied by the FNV prime (FNV-1a
/// with 64-bit words as its units). Changing any single word changes the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checksum(u64);

impl Checksum {
    /// The checksum of no words.
    pub fn new() -> Self {
        Self(FNV_OFFSET)
    }

    /// Adds the next word.
    pub fn update(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(FNV_PRIME);
    }

    /// The checksum of the words added so far.
    pub fn value(&self) -> u64 {
        self.0
    }

    /// The checksum of `words`.
    pub fn of(words: impl IntoIterator<Item = u64>) -> u64 {
        let mut c = Self::new();
        words.into_iter().for_each(|w| c.update(w));
        c.value()
    }
}

impl Default for Checksum {
    fn default() -> Self {
        Self::new()
    }
}

/// The checksum of the pattern of `seed` over the words of `words` (indexes from the
/// start of the region): what [`Checksum`] gives for a range that matches the pattern.
pub fn pattern_checksum(seed: u64, words: Range<u64>) -> u64 {
    Checksum::of(words.map(|i| pattern_word(seed, i)))
}

/// Where a range differs from the pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Byte offset (from the start of the region) of the first differing word.
    pub offset: usize,
    /// What that word should hold.
    pub expected: u64,
    /// What it holds.
    pub found: u64,
    /// How many words of the range differ.
    pub count: usize,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} word{} differ{} from the pattern; the first at offset {:#x}: expected {:#018x}, found {:#018x}",
            self.count,
            if self.count == 1 { "" } else { "s" },
            if self.count == 1 { "s" } else { "" },
            self.offset,
            self.expected,
            self.found
        )
    }
}

impl std::error::Error for Mismatch {}

/// Compares `found` (the words of a region starting at word index `first`) with the
/// pattern of `seed`.
pub fn compare(
    seed: u64,
    first: u64,
    found: impl IntoIterator<Item = u64>,
) -> Result<(), Mismatch> {
    let mut mismatch: Option<Mismatch> = None;
    for (i, w) in (first..).zip(found) {
        let expected = pattern_word(seed, i);
        if w != expected {
            match &mut mismatch {
                Some(m) => m.count += 1,
                None => {
                    mismatch = Some(Mismatch {
                        offset: usize::try_from(i * 8).unwrap_or(usize::MAX),
                        expected,
                        found: w,
                        count: 1,
                    })
                }
            }
        }
    }
    mismatch.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference() {
        // The reference generator (state += gamma; return mix(state)) seeded with s
        // first returns splitmix64(s), then splitmix64(s + gamma): seeded with 1234567,
        // its first output is 6457827717110365317.
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(0x9e37_79b9_7f4a_7c15), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(splitmix64(1_234_567), 0x599e_d017_fb08_fc85);
    }

    #[test]
    fn pattern_differs_between_words_and_seeds() {
        let a: Vec<u64> = (0..512).map(|i| pattern_word(7, i)).collect();
        let mut sorted = a.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), a.len());
        for i in 0..512 {
            assert_ne!(pattern_word(7, i), pattern_word(8, i));
        }
        assert_eq!(pattern_word(3, 10), splitmix64(3 ^ 10));
    }

    #[test]
    fn checksum_is_order_sensitive_and_streams() {
        assert_eq!(Checksum::of([]), 0xcbf2_9ce4_8422_2325);
        assert_ne!(Checksum::of([1, 2]), Checksum::of([2, 1]));
        assert_ne!(Checksum::of([0]), Checksum::of([]));
        let mut c = Checksum::default();
        c.update(1);
        c.update(2);
        assert_eq!(c.value(), Checksum::of([1, 2]));
        assert_eq!(
            pattern_checksum(5, 4..8),
            Checksum::of((4..8).map(|i| pattern_word(5, i)))
        );
        // A part of a range checksums differently from the whole.
        assert_ne!(pattern_checksum(5, 0..8), pattern_checksum(5, 4..8));
    }

    #[test]
    fn comparing_finds_the_first_mismatch_and_counts_all() {
        let mut words: Vec<u64> = (100..164).map(|i| pattern_word(9, i)).collect();
        assert_eq!(compare(9, 100, words.iter().copied()), Ok(()));
        words[3] ^= 1;
        words[40] = 0;
        let m = compare(9, 100, words.iter().copied()).unwrap_err();
        assert_eq!(
            m,
            Mismatch {
                offset: 103 * 8,
                expected: pattern_word(9, 103),
                found: pattern_word(9, 103) ^ 1,
                count: 2,
            }
        );
        let text = m.to_string();
        assert!(
            text.starts_with("2 words differ from the pattern; the first at offset 0x338"),
            "{text}"
        );
        // Another seed differs everywhere.
        assert_eq!(
            compare(10, 100, words.iter().copied()).unwrap_err().count,
            64
        );
    }
}
