// SPDX-License-Identifier: GPL-2.0

//! The cable's GPIO lines: safe wrappers over `lines_shim.c` (the kernel crate has no gpiod
//! consumer abstraction), and the record of which lines are bound.

use core::{
    ffi::{c_int, c_void},
    ptr::NonNull,
};

use kernel::{
    device::{self, Core},
    error::from_err_ptr,
    prelude::*,
    sync::global_lock,
};

/// A `struct device` (only handled by pointer).
#[repr(C)]
struct RawDevice {
    _opaque: [u8; 0],
}

/// `struct ssi_gpio_lines` of `shim.h`.
#[repr(C)]
struct RawLines {
    data: *mut c_void,
    ready: *mut c_void,
    valid: *mut c_void,
}

extern "C" {
    fn ssi_gpio_lines_get(dev: *mut RawDevice, l: *mut RawLines) -> c_int;
    fn ssi_gpio_lines_describe(l: *const RawLines, buf: *mut u8, len: usize) -> c_int;
    fn ssi_gpio_lines_sample(l: *const RawLines) -> c_int;
    fn ssi_gpio_fallback_new(chip: c_int, first: u32) -> *mut c_void;
    fn ssi_gpio_fallback_free(f: *mut c_void);
    fn ssi_gpio_lines_setup(l: *const RawLines, side_a: bool) -> c_int;
    fn ssi_gpio_lines_release(l: *const RawLines, side_a: bool) -> c_int;
    fn ssi_gpio_drive_data(l: *const RawLines, now: u8, want: u8) -> c_int;
    fn ssi_gpio_drive_strobe(l: *const RawLines, side_a: bool, high: bool) -> c_int;
    fn ssi_gpio_read_data(l: *const RawLines) -> c_int;
    fn ssi_gpio_read_peer_strobe(l: *const RawLines, side_a: bool) -> c_int;
    fn ssi_gpio_irq_request(
        l: *const RawLines,
        side_a: bool,
        wake: unsafe extern "C" fn(*mut c_void),
        ctx: *mut c_void,
    ) -> *mut c_void;
    fn ssi_gpio_irq_free(i: *mut c_void);
}

/// The ten lines of a bound bus device (data0..7, ready, valid). `side_a` arguments:
/// this node drives `valid` and reads `ready` (the lower node id), else the reverse.
///
/// # Invariants
///
/// `raw` holds descriptors that `ssi_gpio_lines_get` took, device-managed by the bound
/// device: a `Lines` lives in that device's driver data, which is dropped before the
/// device's managed resources are released.
pub(crate) struct Lines {
    raw: RawLines,
}

// SAFETY: GPIO descriptors may be used from any thread (the `_cansleep` accessors are
// used, from process context).
unsafe impl Send for Lines {}
// SAFETY: As above; the C side only reads through the shared descriptors.
unsafe impl Sync for Lines {}

impl Lines {
    /// Takes the lines named "data", "ready" and "valid" of `dev`.
    pub(crate) fn get(dev: &device::Device<Core<'_>>) -> Result<Self> {
        let mut raw = RawLines {
            data: core::ptr::null_mut(),
            ready: core::ptr::null_mut(),
            valid: core::ptr::null_mut(),
        };
        // `device::Device` is a `#[repr(transparent)]` wrapper around `struct device`
        // (the kernel crate keeps `as_raw` to itself).
        let raw_dev = core::ptr::from_ref(dev).cast::<RawDevice>().cast_mut();
        // SAFETY: `raw_dev` is the bound device (probe context); `raw` is valid for writes.
        kernel::error::to_result(unsafe { ssi_gpio_lines_get(raw_dev, &mut raw) })?;
        Ok(Self { raw })
    }

    /// Writes "data chip:off,... ready chip:off valid chip:off" to `out`; returns the
    /// number of bytes written.
    pub(crate) fn describe(&self, out: &mut [u8]) -> usize {
        // SAFETY: By the type invariant the descriptors are valid; `out` is valid for
        // `out.len()` bytes and the C side writes at most that many (scnprintf).
        let n = unsafe { ssi_gpio_lines_describe(&self.raw, out.as_mut_ptr(), out.len()) };
        usize::try_from(n).unwrap_or(0).min(out.len())
    }

    /// Reads the lines: bits 0-7 data, bit 8 ready, bit 9 valid.
    pub(crate) fn sample(&self) -> Result<u16> {
        // SAFETY: By the type invariant the descriptors are valid.
        let v = unsafe { ssi_gpio_lines_sample(&self.raw) };
        if v < 0 {
            return Err(Error::from_errno(v));
        }
        Ok(v as u16)
    }

    /// Makes this side's strobe an output, low.
    pub(crate) fn setup(&self, side_a: bool) -> Result {
        // SAFETY: By the type invariant the descriptors are valid.
        kernel::error::to_result(unsafe { ssi_gpio_lines_setup(&self.raw, side_a) })
    }

    /// Releases the data lines and makes this side's strobe an input again.
    pub(crate) fn release(&self, side_a: bool) -> Result {
        // SAFETY: By the type invariant the descriptors are valid.
        kernel::error::to_result(unsafe { ssi_gpio_lines_release(&self.raw, side_a) })
    }

    /// Changes the data lines whose bits differ between `now` and `want` (a 1 releases
    /// the line, a 0 pulls it low).
    pub(crate) fn drive_data(&self, now: u8, want: u8) -> Result {
        if now == want {
            return Ok(());
        }
        // SAFETY: By the type invariant the descriptors are valid.
        kernel::error::to_result(unsafe { ssi_gpio_drive_data(&self.raw, now, want) })
    }

    /// Drives this side's strobe.
    pub(crate) fn drive_strobe(&self, side_a: bool, high: bool) -> Result {
        // SAFETY: By the type invariant the descriptors are valid.
        kernel::error::to_result(unsafe { ssi_gpio_drive_strobe(&self.raw, side_a, high) })
    }

    /// Reads the peer's strobe.
    pub(crate) fn peer_strobe(&self, side_a: bool) -> Result<bool> {
        // SAFETY: By the type invariant the descriptors are valid.
        let v = unsafe { ssi_gpio_read_peer_strobe(&self.raw, side_a) };
        kernel::error::to_result(v)?;
        Ok(v != 0)
    }

    /// Reads the data lines (bit i: data line i).
    pub(crate) fn read_data(&self) -> Result<u8> {
        // SAFETY: By the type invariant the descriptors are valid.
        let v = unsafe { ssi_gpio_read_data(&self.raw) };
        kernel::error::to_result(v)?;
        Ok(v as u8)
    }

    /// Requests the peer's strobe interrupt (both edges, threaded): `wake(ctx)` runs
    /// on every edge until [`irq_free`].
    ///
    /// # Safety
    ///
    /// `ctx` must stay valid for `wake` until `irq_free` of the returned cookie.
    pub(crate) unsafe fn request_irq(
        &self,
        side_a: bool,
        wake: unsafe extern "C" fn(*mut c_void),
        ctx: *mut c_void,
    ) -> Result<*mut c_void> {
        // SAFETY: The descriptors are valid (type invariant); `ctx` by the caller.
        from_err_ptr(unsafe { ssi_gpio_irq_request(&self.raw, side_a, wake, ctx) })
    }
}

/// Frees an interrupt of [`Lines::request_irq`]; waits for a running handler.
///
/// # Safety
///
/// `irq` must come from `request_irq` and not be freed yet.
pub(crate) unsafe fn irq_free(irq: *mut c_void) {
    // SAFETY: Guaranteed by the caller.
    unsafe { ssi_gpio_irq_free(irq) }
}

/// Without a device tree: the "ssi_gpio_bus" platform device and the lookup table that
/// give it ten consecutive lines of `/dev/gpiochip<chip>` from offset `first` (the
/// `gpio_chip` and `gpio_line` parameters).
///
/// # Invariants
///
/// `0` came from `ssi_gpio_fallback_new` and is freed only by `drop`.
pub(crate) struct Fallback(NonNull<c_void>);

// SAFETY: The device and table may be released from any thread.
unsafe impl Send for Fallback {}
// SAFETY: No method reads through the pointer.
unsafe impl Sync for Fallback {}

impl Fallback {
    /// Registers the device; the driver (already registered) binds to it at once.
    pub(crate) fn new(chip: i32, first: u32) -> Result<Self> {
        // SAFETY: No preconditions; returns a valid pointer or an `ERR_PTR`.
        let p = from_err_ptr(unsafe { ssi_gpio_fallback_new(chip, first) })?;
        NonNull::new(p).map(Self).ok_or(ENOMEM)
    }
}

impl Drop for Fallback {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the pointer is live and freed only here.
        unsafe { ssi_gpio_fallback_free(self.0.as_ptr()) };
    }
}

/// Room for the description of the ten lines.
pub(crate) const DESCRIPTION_LEN: usize = 320;

/// What is bound now, for the transport's description.
pub(crate) struct Bound {
    text: [u8; DESCRIPTION_LEN],
    len: usize,
}

impl Bound {
    /// The description ("" while no bus device is bound).
    pub(crate) fn text(&self) -> &str {
        core::str::from_utf8(&self.text[..self.len]).unwrap_or("?")
    }
}

global_lock! {
    // SAFETY: `init_bound` runs first in the module initialiser, before the driver is
    // registered or the transport is visible.
    unsafe(uninit) static BOUND: Mutex<Bound> = Bound {
        text: [0; DESCRIPTION_LEN],
        len: 0,
    };
}

/// Initialises the record of bound lines. Call once, first thing at module load.
pub(crate) fn init_bound() {
    // SAFETY: Called once from the module initialiser, before any other use.
    unsafe { BOUND.init() };
}

/// Records `lines` as the bound ones (`None`: unbound).
pub(crate) fn set_bound(lines: Option<&Lines>) {
    let mut b = BOUND.lock();
    let len = match lines {
        Some(l) => l.describe(&mut b.text),
        None => 0,
    };
    b.len = len;
}

/// Calls `f` with the description of the bound lines ("" if none).
pub(crate) fn with_bound<R>(f: impl FnOnce(&str) -> R) -> R {
    f(BOUND.lock().text())
}
