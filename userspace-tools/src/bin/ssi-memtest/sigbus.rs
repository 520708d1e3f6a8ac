//! A `SIGBUS` handler that says which page of the mapping faulted, then exits 77.
//!
//! An access to a page whose contents were lost with a node, or to a removed region,
//! raises `SIGBUS`. The handler writes `SIGBUS addr_page=P addr=0x... code=C` to stderr
//! (P: the page's index in the region, -1 if the address is outside it) with only
//! async-signal-safe calls (formatting by hand into a stack buffer, `write`, `_exit`).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use libssi::{Mapping, PAGE_SIZE};

/// Exit status after a `SIGBUS`.
pub const EXIT_SIGBUS: i32 = 77;

static BASE: AtomicUsize = AtomicUsize::new(0);
static LEN: AtomicUsize = AtomicUsize::new(0);

/// Installs the handler for faults in `mapping` (the only one this program reports on).
pub fn install(mapping: &Mapping) -> io::Result<()> {
    install_range(mapping.as_ptr() as usize, mapping.len())
}

/// Installs the handler, page numbers counted from `base` for `len` bytes. Only
/// async-signal-safe calls: a test calls it in a forked child.
fn install_range(base: usize, len: usize) -> io::Result<()> {
    BASE.store(base, Ordering::SeqCst);
    LEN.store(len, Ordering::SeqCst);
    // SAFETY: an all-zero sigaction is a valid value (empty mask, no flags) that is then
    // filled in; `handler` has the signature SA_SIGINFO requires and only makes
    // async-signal-safe calls.
    let rc = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as *const () as libc::sighandler_t;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

extern "C" fn handler(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t with SA_SIGINFO; for SIGBUS si_addr
    // holds the faulting address.
    let (addr, code) = unsafe { ((*info).si_addr() as usize, (*info).si_code) };
    let mut msg = SigBuf::new();
    describe(
        &mut msg,
        addr,
        BASE.load(Ordering::Relaxed),
        LEN.load(Ordering::Relaxed),
        code,
    );
    // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer is on this stack.
    unsafe {
        libc::write(libc::STDERR_FILENO, msg.buf.as_ptr().cast(), msg.len);
        libc::_exit(EXIT_SIGBUS);
    }
}

/// The report line for a fault at `addr` in the mapping `base..base + len`.
fn describe(msg: &mut SigBuf, addr: usize, base: usize, len: usize, code: i32) {
    msg.push(b"SIGBUS addr_page=");
    if addr >= base && addr - base < len {
        msg.push_dec(((addr - base) / PAGE_SIZE) as u64);
    } else {
        msg.push(b"-1");
    }
    msg.push(b" addr=0x");
    msg.push_hex(addr as u64);
    msg.push(b" code=");
    if code < 0 {
        msg.push(b"-");
    }
    msg.push_dec(u64::from(code.unsigned_abs()));
    msg.push(b"\n");
}

/// A fixed buffer that formats without allocating or panicking (it truncates).
struct SigBuf {
    buf: [u8; 128],
    len: usize,
}

impl SigBuf {
    fn new() -> Self {
        Self {
            buf: [0; 128],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
    }

    fn push_dec(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }

    fn push_hex(&mut self, n: u64) {
        let mut digits = [0u8; 16];
        let mut i = digits.len();
        let mut n = n;
        loop {
            i -= 1;
            digits[i] = b"0123456789abcdef"[(n & 0xf) as usize];
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }

    #[cfg(test)]
    fn text(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_page_in_the_region() {
        let mut m = SigBuf::new();
        describe(&mut m, 0x7000_3008, 0x7000_0000, 16 * PAGE_SIZE, 2);
        assert_eq!(m.text(), "SIGBUS addr_page=3 addr=0x70003008 code=2\n");
        let mut m = SigBuf::new();
        describe(&mut m, 0x10, 0x7000_0000, PAGE_SIZE, -6);
        assert_eq!(m.text(), "SIGBUS addr_page=-1 addr=0x10 code=-6\n");
        let mut m = SigBuf::new();
        describe(&mut m, 0x7000_1000, 0x7000_0000, PAGE_SIZE, 0);
        assert!(m.text().starts_with("SIGBUS addr_page=-1 "));
    }

    /// A real SIGBUS: a mapping of a memfd that was truncated under it, accessed in a
    /// forked child whose stderr is a pipe.
    #[test]
    fn a_real_sigbus_is_reported_and_exits_77() {
        use std::io::Read;
        use std::os::fd::FromRawFd;
        // SAFETY: plain syscalls on descriptors and memory owned by this test; the child
        // only makes async-signal-safe calls (dup2, sigaction, a load, _exit) before it
        // exits, as a child of a multithreaded process must.
        unsafe {
            let fd = libc::memfd_create(c"sigbus-test".as_ptr(), libc::MFD_CLOEXEC);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, 2 * PAGE_SIZE as libc::off_t), 0);
            let p = libc::mmap(
                std::ptr::null_mut(),
                2 * PAGE_SIZE,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            // Page 1 is now beyond the end of the file: touching it raises SIGBUS.
            assert_eq!(libc::ftruncate(fd, PAGE_SIZE as libc::off_t), 0);
            let mut pipe = [0; 2];
            assert_eq!(libc::pipe(pipe.as_mut_ptr()), 0);
            let pid = libc::fork();
            assert!(pid >= 0);
            if pid == 0 {
                libc::dup2(pipe[1], libc::STDERR_FILENO);
                if install_range(p as usize, 2 * PAGE_SIZE).is_err() {
                    libc::_exit(3);
                }
                std::ptr::read_volatile(p.cast::<u8>().add(PAGE_SIZE + 16));
                libc::_exit(0);
            }
            libc::close(pipe[1]);
            let mut status = 0;
            assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
            let mut out = String::new();
            std::fs::File::from_raw_fd(pipe[0])
                .read_to_string(&mut out)
                .unwrap();
            libc::munmap(p, 2 * PAGE_SIZE);
            libc::close(fd);
            assert!(libc::WIFEXITED(status), "status {status:#x}");
            assert_eq!(libc::WEXITSTATUS(status), EXIT_SIGBUS, "{out}");
            let want = format!(
                "SIGBUS addr_page=1 addr=0x{:x} code={}\n",
                p as usize + PAGE_SIZE + 16,
                libc::BUS_ADRERR
            );
            assert_eq!(out, want);
        }
    }

    #[test]
    fn numbers_format_and_the_buffer_truncates() {
        let mut m = SigBuf::new();
        m.push_dec(0);
        m.push(b" ");
        m.push_dec(u64::MAX);
        m.push(b" ");
        m.push_hex(0);
        m.push(b" ");
        m.push_hex(u64::MAX);
        assert_eq!(m.text(), "0 18446744073709551615 0 ffffffffffffffff");
        for _ in 0..100 {
            m.push(b"xyz");
        }
        assert_eq!(m.len, 128);
    }
}
