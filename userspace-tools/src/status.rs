//! `ssictl status`.

use serde_json::json;
use ssi_shared::ioctl::{name_str, SsiStatus};
use ssi_shared::transport::{flags_note, TransportKind, SSI_TRANSPORT_F_EMULATED_READS};

use crate::device::{self, common_hint};

/// Prints the status of the local node.
pub fn run(device: &str, as_json: bool) -> Result<(), String> {
    let st = device::open(device)?
        .status()
        .map_err(|e| format!("status: {e}{}", common_hint(e.raw_os_error())))?;
    if as_json {
        println!("{}", to_json(&st));
    } else {
        print!("{}", to_text(&st));
    }
    Ok(())
}

fn kind_label(raw: u32) -> String {
    TransportKind::from_raw(raw).map_or_else(|| format!("kind-{raw}"), |k| k.label().to_string())
}

fn text(field: &[u8]) -> &str {
    name_str(field).unwrap_or("<invalid>")
}

fn transports(st: &SsiStatus) -> &[ssi_shared::ioctl::SsiTransportInfo] {
    let n = (st.transport_count as usize).min(st.transports.len());
    &st.transports[..n]
}

/// The status as JSON.
pub fn to_json(st: &SsiStatus) -> serde_json::Value {
    json!({
        "node_id": st.node_id,
        "abi_version": st.abi_version,
        "migrate": {
            "registered": st.migrate_registered != 0,
            "state": text(&st.migrate_state),
        },
        "transports": transports(st).iter().map(|t| json!({
            "id": t.id,
            "name": text(&t.name),
            "kind": kind_label(t.kind),
            "ops_version": t.ops_version,
            "reads_emulated": t.flags & SSI_TRANSPORT_F_EMULATED_READS != 0,
            "state": text(&t.state),
        })).collect::<Vec<_>>(),
    })
}

/// The status as text.
pub fn to_text(st: &SsiStatus) -> String {
    let mut out = format!(
        "node:        {}\nabi version: {}\n",
        st.node_id, st.abi_version
    );
    if st.migrate_registered != 0 {
        out += &format!("migrate:     registered ({})\n", text(&st.migrate_state));
    } else {
        out += "migrate:     not registered\n";
    }
    out += &format!("transports:  {}\n", st.transport_count);
    for t in transports(st) {
        out += &format!(
            "  {:<3} {:<10} {:<9} v{}  {}{}\n",
            t.id,
            text(&t.name),
            kind_label(t.kind),
            t.ops_version,
            text(&t.state),
            flags_note(t.flags)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssi_shared::ioctl::{fill_str, SSI_ABI_VERSION};

    fn sample() -> SsiStatus {
        let mut st = SsiStatus {
            abi_version: SSI_ABI_VERSION,
            node_id: 3,
            ..Default::default()
        };
        st.transport_count = 1;
        st.transports[0].id = 1;
        st.transports[0].kind = TransportKind::Rdma as u32;
        st.transports[0].ops_version = 1;
        fill_str(&mut st.transports[0].name, "rdma");
        fill_str(&mut st.transports[0].state, "node 3 devices: rxe0:1:ACTIVE");
        st.migrate_registered = 1;
        fill_str(&mut st.migrate_state, "ready");
        st
    }

    #[test]
    fn json_has_every_field() {
        let v = to_json(&sample());
        assert_eq!(v["node_id"], 3);
        assert_eq!(v["abi_version"], SSI_ABI_VERSION);
        assert_eq!(v["migrate"]["registered"], true);
        assert_eq!(v["transports"][0]["name"], "rdma");
        assert_eq!(v["transports"][0]["kind"], "rdma");
        assert_eq!(v["transports"][0]["state"], "node 3 devices: rxe0:1:ACTIVE");
        assert_eq!(v["transports"][0]["reads_emulated"], false);
        assert_eq!(v["transports"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn text_lists_transports() {
        let t = to_text(&sample());
        assert!(t.contains("node:        3\n"), "{t}");
        assert!(
            t.contains("rdma       rdma      v1  node 3 devices: rxe0:1:ACTIVE\n"),
            "{t}"
        );
    }

    #[test]
    fn emulated_reads_are_shown() {
        let mut st = sample();
        st.transports[0].kind = TransportKind::GpioBus as u32;
        st.transports[0].flags = SSI_TRANSPORT_F_EMULATED_READS;
        fill_str(&mut st.transports[0].name, "gpio-bus");
        fill_str(&mut st.transports[0].state, "node 3 <-> 4: up");
        let t = to_text(&st);
        assert!(t.contains("v1  node 3 <-> 4: up (reads emulated)\n"), "{t}");
        assert_eq!(to_json(&st)["transports"][0]["reads_emulated"], true);
    }

    #[test]
    fn a_bogus_count_from_the_kernel_is_clamped() {
        let mut st = sample();
        st.transport_count = 1000;
        assert_eq!(transports(&st).len(), st.transports.len());
    }
}
