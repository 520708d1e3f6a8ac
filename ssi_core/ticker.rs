// SPDX-License-Identifier: GPL-2.0

//! The Rust side of `ticker.c`, the cancellable periodic work that drives the failure
//! detector, heartbeats and request timeouts (it calls `ssi_core_tick` in `ffi.rs`).

extern "C" {
    fn ssi_core_ticker_start(period_ms: core::ffi::c_uint);
    fn ssi_core_ticker_stop();
}

/// Starts `ticker.c`'s periodic call of `ssi_core_tick`.
pub(crate) fn ticker_start(period_ms: u32) {
    // SAFETY: Called once from module init; stopped by `ticker_stop` before exit.
    unsafe { ssi_core_ticker_start(period_ms) }
}

/// Stops the ticker and waits for a running tick.
pub(crate) fn ticker_stop() {
    // SAFETY: The ticker was started (`dispatch::Heartbeat` exists only then).
    unsafe { ssi_core_ticker_stop() }
}
