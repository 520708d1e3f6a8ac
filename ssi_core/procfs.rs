// SPDX-License-Identifier: GPL-2.0

//! `/proc/ssi`: `status`, `transports` and `nodes`. The procfs calls are in the C shim
//! `procfs.c`; the contents are produced here.

use core::ffi::{c_int, c_void};

use kernel::{bindings, error::to_result, prelude::*, seq_file::SeqFile, seq_print};

use crate::registry;
use crate::shared::ioctl::{SSI_ABI_VERSION, SSI_STATE_LEN};
use crate::shared::text::{SliceWriter, U64};
use crate::shared::transport::flags_note;

extern "C" {
    fn ssi_core_proc_create() -> c_int;
    fn ssi_core_proc_remove();
}

/// Owns the `/proc/ssi` directory; removes it when dropped.
pub(crate) struct ProcDir(());

impl ProcDir {
    /// Creates `/proc/ssi` and its files.
    pub(crate) fn create() -> Result<Self> {
        // SAFETY: No preconditions; only one `ProcDir` exists (owned by the module).
        to_result(unsafe { ssi_core_proc_create() })?;
        Ok(Self(()))
    }
}

impl Drop for ProcDir {
    fn drop(&mut self) {
        // SAFETY: The directory was created by `create`; `proc_remove` waits for running
        // show callbacks before returning.
        unsafe { ssi_core_proc_remove() };
    }
}

fn show_status(m: &SeqFile) {
    seq_print!(m, "node_id: {}\n", crate::node_id());
    seq_print!(m, "abi_version: {}\n", SSI_ABI_VERSION);
    let (down_after_ms, longest_stall_ms) = crate::nodes::detector();
    seq_print!(
        m,
        "down_after_ms: {}\nlongest_stall_ms: {}\n",
        U64(down_after_ms),
        U64(longest_stall_ms)
    );
    seq_print!(m, "transports: {}\n", registry::transport_count());
    seq_print!(m, "services:");
    crate::services::for_each(|id, name| seq_print!(m, " {}:{}", id, name));
    seq_print!(m, "\n");
    let mut buf = [0u8; SSI_STATE_LEN];
    registry::with_migrate(&mut buf, |m_desc| match m_desc {
        Some(d) => seq_print!(m, "migrate: registered ({})\n", d),
        None => seq_print!(m, "migrate: not registered\n"),
    });
}

fn show_transports(m: &SeqFile) {
    seq_print!(m, "{:<4} {:<16} {:<9} {}\n", "id", "name", "kind", "state");
    let mut buf = [0u8; SSI_STATE_LEN];
    registry::for_each_transport(&mut buf, |id, kind, flags, name, desc| {
        seq_print!(
            m,
            "{:<4} {:<16} {:<9} {}{}\n",
            id,
            name,
            kind.label(),
            desc,
            flags_note(flags)
        );
    });
}

fn show_nodes(m: &SeqFile) {
    use core::fmt::Write;
    seq_print!(
        m,
        "{:<4} {:<21} {:<10} {:<6} {:>9} {:>8} {:>8} {:>9} {:>8} {:>8} {:>10}\n",
        "id",
        "address",
        "state",
        "leader",
        "rtt_us",
        "sent",
        "received",
        "malformed",
        "timeouts",
        "send_err",
        "max_gap_ms"
    );
    let leader = crate::nodes::for_each(|row| {
        let mut buf = [0u8; 32];
        let mut addr = SliceWriter::new(&mut buf);
        let _ = match row.addr {
            Some((ip, port)) => write!(addr, "{}.{}.{}.{}:{}", ip[0], ip[1], ip[2], ip[3], port),
            None => addr.write_str("-"),
        };
        let c = &row.counters;
        // Microseconds with u32 arithmetic (no u64 division on 32-bit ARM); RTTs
        // above 4 s show as 4294967.
        let rtt_us = u32::try_from(row.rtt_ns).unwrap_or(u32::MAX) / 1000;
        seq_print!(
            m,
            "{:<4} {:<21} {:<10} {:<6} {:>9} {:>8} {:>8} {:>9} {:>8} {:>8} {:>10}\n",
            row.id,
            addr.as_str(),
            row.state,
            row.leader_seen,
            rtt_us,
            c.sent,
            c.received,
            c.malformed,
            c.timeouts,
            c.send_errors,
            U64(row.longest_gap_ms)
        );
    });
    seq_print!(m, "leader: {}\n", leader);
}

fn show_kv(m: &SeqFile) {
    seq_print!(m, "version: {}\n", crate::kvstore::version());
    crate::kvstore::for_each(|key, value, version| {
        let key = core::str::from_utf8(key).unwrap_or("<binary>");
        let value = core::str::from_utf8(value).unwrap_or("<binary>");
        seq_print!(m, "{} {}={}\n", version, key, value);
    });
}

/// `/proc/ssi/regions`: one line per region of the cluster, with this node's counters.
fn show_regions(m: &SeqFile) {
    seq_print!(
        m,
        "{:<24} {:>10} {:>5} {:>4} {:>6} {:<6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>4}\n",
        "name",
        "pages",
        "mode",
        "home",
        "uid",
        "state",
        "resident",
        "owned",
        "rfaults",
        "wfaults",
        "fetched",
        "invals",
        "lost",
        "sigbus",
        "maps"
    );
    let _ = crate::regions::for_each_info(|i| {
        let r = &i.region;
        let name = core::str::from_utf8(&r.name[..r.name_len as usize]).unwrap_or("?");
        seq_print!(
            m,
            "{:<24} {:>10} {:>5o} {:>4} {:>6} {:<6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>4}\n",
            name,
            // At most MAX_PAGES (2^20).
            (r.size >> 12) as u32,
            r.mode,
            r.home,
            r.uid,
            crate::shared::ioctl::region_state_label(i.state),
            i.resident as u32,
            i.owned as u32,
            i.read_faults as u32,
            i.write_faults as u32,
            i.fetched as u32,
            i.invalidations as u32,
            i.lost as u32,
            i.sigbus as u32,
            i.mappings
        );
    });
}

/// Show callback of `/proc/ssi/regions`.
#[no_mangle]
extern "C" fn ssi_core_proc_show_regions(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: As in `ssi_core_proc_show_status`.
    show_regions(unsafe { SeqFile::from_raw(m) });
    0
}

/// `/proc/ssi/messages`: the messages this node sent and received, by type, then the
/// service messages by service.
fn show_messages(m: &SeqFile) {
    seq_print!(m, "{:<24} {:>10} {:>10}\n", "type", "sent", "received");
    crate::traffic::for_each_type(|t, sent, received| {
        seq_print!(m, "{:<24} {:>10} {:>10}\n", t.label(), sent, received);
    });
    // By name while the service is registered, else by id ("service:0": ids too high to
    // count apart).
    crate::traffic::for_each_service(|id, sent, received| {
        let mut named = false;
        crate::services::for_each(|registered, name| {
            if registered == id && id != 0 {
                named = true;
                seq_print!(m, "service:{:<16} {:>10} {:>10}\n", name, sent, received);
            }
        });
        if !named {
            seq_print!(m, "service:{:<16} {:>10} {:>10}\n", id, sent, received);
        }
    });
}

/// Show callback of `/proc/ssi/messages`.
#[no_mangle]
extern "C" fn ssi_core_proc_show_messages(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: As in `ssi_core_proc_show_status`.
    show_messages(unsafe { SeqFile::from_raw(m) });
    0
}

/// Show callback of `/proc/ssi/ps`: the migration engine's text.
#[no_mangle]
extern "C" fn ssi_core_proc_show_ps(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: As in `ssi_core_proc_show_status`.
    let m = unsafe { SeqFile::from_raw(m) };
    let Some(engine) = registry::migrate_use() else {
        seq_print!(m, "ssi_migrate is not loaded\n");
        return 0;
    };
    let Ok(mut buf) = KVec::from_elem(0u8, 16384, GFP_KERNEL) else {
        return ENOMEM.to_errno();
    };
    match engine.show_ps(&mut buf) {
        Ok(n) => seq_print!(
            m,
            "{}",
            core::str::from_utf8(&buf[..n]).unwrap_or("<not UTF-8>\n")
        ),
        Err(e) => return e.to_errno(),
    }
    0
}

#[no_mangle]
extern "C" fn ssi_core_proc_show_status(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: seq_file calls show callbacks with a valid `seq_file` that no other thread
    // uses during the call.
    show_status(unsafe { SeqFile::from_raw(m) });
    0
}

/// Show callback of `/proc/ssi/nodes`.
#[no_mangle]
extern "C" fn ssi_core_proc_show_nodes(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: As in `ssi_core_proc_show_status`.
    show_nodes(unsafe { SeqFile::from_raw(m) });
    0
}

/// Show callback of `/proc/ssi/transports`.
#[no_mangle]
extern "C" fn ssi_core_proc_show_transports(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: As in `ssi_core_proc_show_status`.
    show_transports(unsafe { SeqFile::from_raw(m) });
    0
}

/// Show callback of `/proc/ssi/kv`.
#[no_mangle]
extern "C" fn ssi_core_proc_show_kv(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: The seq_file core passes a valid `seq_file` for the duration of the call.
    show_kv(unsafe { SeqFile::from_raw(m) });
    0
}
