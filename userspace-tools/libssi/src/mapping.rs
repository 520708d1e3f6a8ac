//! A mapping of a region, and safe access to memory other nodes modify concurrently.

use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use crate::error::{invalid, Error, Op};
use crate::pattern::{compare, pattern_word, Checksum, Mismatch};
use crate::PAGE_SIZE;

/// 64-bit words in a page.
pub const WORDS_PER_PAGE: usize = PAGE_SIZE / 8;

/// A `MAP_SHARED` mapping of a whole region, unmapped on drop.
///
/// The memory may change at any time (other threads, processes and nodes write it), so it
/// is only ever handed out as atomics: [`Mapping::words`] and [`Mapping::bytes`]. The
/// kernels keep a page coherent across nodes (one writer or many readers; aligned words
/// are sequentially consistent), so `SeqCst` accesses of words order across nodes as
/// they do across threads.
///
/// Accessing a page whose contents were lost with a node, or any page of a region that
/// was removed, raises `SIGBUS`, which kills the process unless it handles the signal.
/// The compiler may also read a word it was given a reference to earlier than the code
/// says, so a process that touches a region that may die should expect `SIGBUS` anywhere
/// it holds references into the mapping.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
}

// SAFETY: the mapping is plain memory shared between threads only through atomics
// (`&[AtomicU64]`, `&[AtomicU8]`), which are Sync; unmapping needs `&mut`/ownership.
unsafe impl Send for Mapping {}
// SAFETY: as above: `&Mapping` only gives atomic access to the memory.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `size` bytes of `fd` (region `name`) from offset 0.
    pub(crate) fn new(
        fd: BorrowedFd<'_>,
        name: &str,
        size: u64,
        writable: bool,
    ) -> io::Result<Self> {
        let len = usize::try_from(size).map_err(|_| {
            io::Error::from(Error::new(
                libc::ENOMEM,
                format!("region {name}: {size} bytes do not fit this address space"),
            ))
        })?;
        if len == 0 || !len.is_multiple_of(PAGE_SIZE) {
            return Err(invalid(format!(
                "region {name}: cannot map {size} bytes (not a non-zero multiple of {PAGE_SIZE})"
            )));
        }
        let prot = libc::PROT_READ | if writable { libc::PROT_WRITE } else { 0 };
        // SAFETY: a new mapping at an address the kernel chooses, so no existing memory is
        // affected; the descriptor is open for the duration of the call (the mapping keeps
        // its own reference to the file).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            let errno = io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            let what = format!(
                "region {name}: mmap of {len} bytes {}",
                if writable { "read-write" } else { "read-only" }
            );
            return Err(Error::os(Op::Map, &what, errno).into());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| invalid("mmap returned NULL"))?;
        Ok(Self { ptr, len, writable })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: regions are at least a page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Length in pages.
    pub fn pages(&self) -> usize {
        self.len / PAGE_SIZE
    }

    /// Whether it is mapped writable.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The address of the first byte (to recognize fault addresses, say).
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// Every word, as atomics, shared memory that may change at any time.
    ///
    /// # Panics
    ///
    /// If the mapping is read-only: atomic operations other than small relaxed loads are
    /// undefined on read-only memory (see `std::sync::atomic`), so read-only mappings are
    /// read with [`Mapping::load_word`] and the pattern helpers instead.
    pub fn words(&self) -> &[AtomicU64] {
        self.try_words()
            .expect("Mapping::words of a read-only mapping: use Mapping::load_word")
    }

    /// [`Mapping::words`], or `None` if the mapping is read-only.
    pub fn try_words(&self) -> Option<&[AtomicU64]> {
        self.writable.then(|| self.raw_words())
    }

    /// Every byte, as atomics.
    ///
    /// It takes `&mut self` so that no word of the same memory is accessed at the same
    /// time through [`Mapping::words`]: Rust's memory model leaves differently-sized
    /// atomic accesses that race undefined.
    ///
    /// # Panics
    ///
    /// If the mapping is read-only.
    pub fn bytes(&mut self) -> &[AtomicU8] {
        assert!(self.writable, "Mapping::bytes of a read-only mapping");
        // SAFETY: `len` bytes at `ptr` stay mapped, readable and writable while `self` is
        // borrowed; AtomicU8 has the size and alignment of u8; the memory is only accessed
        // through atomics in this process, and `&mut self` keeps the word view unused
        // while this one lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<AtomicU8>(), self.len) }
    }

    /// Loads word `index` with `Relaxed` ordering; works on read-only mappings too.
    ///
    /// # Panics
    ///
    /// If `index` is out of the mapping.
    pub fn load_word(&self, index: usize) -> u64 {
        self.raw_words()[index].load(Ordering::Relaxed)
    }

    /// The word index of the first word of page `page`.
    pub fn page_word(page: usize) -> usize {
        page * WORDS_PER_PAGE
    }

    /// Checks that the byte range `range` lies in the mapping with both ends on a word
    /// (8-byte) boundary, as the pattern and checksum helpers need.
    pub fn check_range(&self, range: &Range<usize>) -> io::Result<()> {
        if range.start > range.end
            || range.end > self.len
            || !range.start.is_multiple_of(8)
            || !range.end.is_multiple_of(8)
        {
            return Err(invalid(format!(
                "byte range {}..{} is not within the {} bytes of the region, on 8-byte boundaries",
                range.start, range.end, self.len
            )));
        }
        Ok(())
    }

    /// Writes the pattern of `seed` (see [`crate::pattern`]) over the byte range `range`
    /// with relaxed stores and returns its checksum.
    ///
    /// # Panics
    ///
    /// If the mapping is read-only, or the range fails [`Mapping::check_range`].
    pub fn fill_pattern(&self, seed: u64, range: Range<usize>) -> u64 {
        let words = &self.words()[self.word_range(&range)];
        let first = (range.start / 8) as u64;
        let mut sum = Checksum::new();
        for (i, w) in (first..).zip(words) {
            let v = pattern_word(seed, i);
            w.store(v, Ordering::Relaxed);
            sum.update(v);
        }
        sum.value()
    }

    /// Compares the byte range `range` with the pattern of `seed`, word by word, with
    /// relaxed loads.
    ///
    /// # Panics
    ///
    /// If the range fails [`Mapping::check_range`].
    pub fn verify_pattern(&self, seed: u64, range: Range<usize>) -> Result<(), Mismatch> {
        let words = &self.raw_words()[self.word_range(&range)];
        compare(
            seed,
            (range.start / 8) as u64,
            words.iter().map(|w| w.load(Ordering::Relaxed)),
        )
    }

    /// The [`Checksum`] of the words of the byte range `range`, read with relaxed loads.
    ///
    /// # Panics
    ///
    /// If the range fails [`Mapping::check_range`].
    pub fn checksum(&self, range: Range<usize>) -> u64 {
        let words = &self.raw_words()[self.word_range(&range)];
        Checksum::of(words.iter().map(|w| w.load(Ordering::Relaxed)))
    }

    fn word_range(&self, range: &Range<usize>) -> Range<usize> {
        if let Err(e) = self.check_range(range) {
            panic!("{e}");
        }
        range.start / 8..range.end / 8
    }

    /// The words, also for read-only mappings: only relaxed loads may be done through
    /// this view unless the mapping is writable.
    fn raw_words(&self) -> &[AtomicU64] {
        // SAFETY: `len` bytes at `ptr` stay mapped while `self` lives (they are unmapped
        // only by `drop`); mmap returns page-aligned memory and `len` is a multiple of the
        // page size, so the slice is aligned for AtomicU64 (size and alignment 8 on every
        // target with 64-bit atomics) and has `len / 8` whole elements; this process only
        // accesses the memory through atomics, and other processes' and nodes' writes
        // reach it through the kernel, like a device's; callers only load through it
        // unless the mapping is writable (relaxed word loads are allowed on read-only
        // memory).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<AtomicU64>(), self.len / 8) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping made in `new`, and no reference into
        // it outlives `self` (they all borrow it).
        let rc = unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        debug_assert_eq!(rc, 0, "munmap: {}", io::Error::last_os_error());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::pattern_checksum;
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};

    /// A memfd of `len` bytes: regions need the kernel module, but a memfd maps the same
    /// way.
    fn memfd(len: usize) -> OwnedFd {
        // SAFETY: a valid NUL-terminated name; the new descriptor is owned here.
        let fd = unsafe { libc::memfd_create(c"libssi-test".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "memfd_create: {}", io::Error::last_os_error());
        // SAFETY: memfd_create returned a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: plain syscall on an owned descriptor.
        assert_eq!(
            unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) },
            0
        );
        fd
    }

    #[test]
    fn fill_verify_and_checksum_through_a_real_mapping() {
        let fd = memfd(4 * PAGE_SIZE);
        let m = Mapping::new(fd.as_fd(), "t", 4 * PAGE_SIZE as u64, true).unwrap();
        assert_eq!((m.len(), m.pages(), m.writable()), (4 * PAGE_SIZE, 4, true));
        assert_eq!(m.as_ptr() as usize % PAGE_SIZE, 0);
        // Fresh: zero.
        assert_eq!(m.load_word(0), 0);
        let all = 0..m.len();
        let sum = m.fill_pattern(5, all.clone());
        assert_eq!(sum, pattern_checksum(5, 0..(m.len() / 8) as u64));
        assert_eq!(m.checksum(all.clone()), sum);
        assert_eq!(m.verify_pattern(5, all.clone()), Ok(()));
        assert_eq!(
            m.verify_pattern(6, all.clone()).unwrap_err().count,
            m.len() / 8
        );
        // One word changed through another mapping of the same file is seen here.
        let other = Mapping::new(fd.as_fd(), "t", 4 * PAGE_SIZE as u64, true).unwrap();
        let idx = Mapping::page_word(2) + 3;
        other.words()[idx].store(1, Ordering::SeqCst);
        let e = m.verify_pattern(5, all.clone()).unwrap_err();
        assert_eq!((e.offset, e.found, e.count), (idx * 8, 1, 1));
        assert_eq!(e.expected, pattern_word(5, idx as u64));
        // Sub-ranges use the words' indexes in the region.
        let part = PAGE_SIZE..2 * PAGE_SIZE;
        assert_eq!(m.verify_pattern(5, part.clone()), Ok(()));
        assert_eq!(
            m.fill_pattern(8, part.clone()),
            pattern_checksum(8, 512..1024)
        );
        assert_eq!(m.verify_pattern(8, part), Ok(()));
        assert_eq!(m.verify_pattern(5, 0..PAGE_SIZE), Ok(()));
        // Bytes view: little-endian words.
        let mut m = m;
        m.bytes()[0].store(0xab, Ordering::SeqCst);
        assert_eq!(m.load_word(0) & 0xff, 0xab);
    }

    #[test]
    fn read_only_mappings_load_but_hand_out_no_atomics() {
        let fd = memfd(PAGE_SIZE);
        let w = Mapping::new(fd.as_fd(), "t", PAGE_SIZE as u64, true).unwrap();
        w.fill_pattern(1, 0..PAGE_SIZE);
        let r = Mapping::new(fd.as_fd(), "t", PAGE_SIZE as u64, false).unwrap();
        assert!(!r.writable());
        assert!(r.try_words().is_none());
        assert_eq!(r.load_word(7), pattern_word(1, 7));
        assert_eq!(r.verify_pattern(1, 0..PAGE_SIZE), Ok(()));
        assert_eq!(r.checksum(8..16), Checksum::of([pattern_word(1, 1)]));
    }

    #[test]
    #[should_panic(expected = "read-only")]
    fn words_of_a_read_only_mapping_panic() {
        let fd = memfd(PAGE_SIZE);
        let r = Mapping::new(fd.as_fd(), "t", PAGE_SIZE as u64, false).unwrap();
        let _ = r.words();
    }

    #[test]
    fn ranges_are_checked() {
        let fd = memfd(PAGE_SIZE);
        let m = Mapping::new(fd.as_fd(), "t", PAGE_SIZE as u64, true).unwrap();
        assert!(m.check_range(&(0..PAGE_SIZE)).is_ok());
        assert!(m.check_range(&(8..8)).is_ok());
        let backwards = Range { start: 16, end: 8 };
        for bad in [0..PAGE_SIZE + 8, 4..16, 0..12, backwards] {
            let e = m.check_range(&bad).unwrap_err();
            assert!(e.to_string().contains("8-byte boundaries"), "{e}");
        }
        assert_eq!(m.checksum(8..8), Checksum::new().value());
    }

    #[test]
    fn bad_sizes_and_descriptors_are_refused() {
        let fd = memfd(PAGE_SIZE);
        let e = Mapping::new(fd.as_fd(), "t", 0, true).unwrap_err();
        assert_eq!(crate::errno(&e), Some(libc::EINVAL));
        let e = Mapping::new(fd.as_fd(), "t", 100, true).unwrap_err();
        assert!(e.to_string().contains("cannot map 100 bytes"), "{e}");
        // A directory cannot be mapped: the errno is explained.
        let dir = std::fs::File::open("/").unwrap();
        let e = Mapping::new(dir.as_fd(), "d", PAGE_SIZE as u64, false).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("region d: mmap of 4096 bytes read-only: "),
            "{e}"
        );
    }

    #[test]
    fn mappings_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Mapping>();
    }
}
