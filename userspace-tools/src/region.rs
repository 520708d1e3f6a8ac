//! `ssictl region create|list|rm`: cluster-wide shared memory regions (through libssi).

use std::io;

use libssi::{
    format_mode, format_size, parse_mode, parse_size, validate_mode, validate_name, validate_size,
    Device, Region, RegionInfo,
};
use serde_json::json;

/// clap value parser of a region size: bytes, or a number with K, M or G.
pub fn size_arg(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

/// clap value parser of permission bits in octal.
pub fn mode_arg(s: &str) -> Result<u32, String> {
    parse_mode(s).map_err(|e| e.to_string())
}

fn open(device: &str) -> Result<Device, String> {
    Device::open_path(device).map_err(|e| e.to_string())
}

fn text(e: io::Error) -> String {
    e.to_string()
}

/// `ssictl region create NAME SIZE [--mode MODE]`.
pub fn create(device: &str, name: &str, size: u64, mode: u32, as_json: bool) -> Result<(), String> {
    // Arguments first: their errors say more than a missing device's.
    validate_name(name)
        .and_then(|()| validate_size(size))
        .and_then(|()| validate_mode(mode))
        .map_err(text)?;
    let dev = open(device)?;
    let r = Region::create(&dev, name, size, mode).map_err(text)?;
    if as_json {
        println!(
            "{}",
            json!({
                "name": r.name(),
                "size": r.size(),
                "mode": format_mode(r.mode()),
                "uid": r.uid(),
                "gid": r.gid(),
                "home": r.home(),
                "generation": r.generation(),
            })
        );
    } else {
        print!(
            "name:       {}\nsize:       {} ({})\nmode:       {}\nhome:       {}\ngeneration: {}\n",
            r.name(),
            r.size(),
            format_size(r.size()),
            format_mode(r.mode()),
            r.home(),
            r.generation()
        );
    }
    // Dropping the region closes its descriptor; the region stays until removed.
    Ok(())
}

/// `ssictl region rm NAME`.
pub fn remove(device: &str, name: &str) -> Result<(), String> {
    validate_name(name).map_err(text)?;
    open(device)?.remove_region(name).map_err(text)
}

/// One region as JSON.
pub fn to_json(r: &RegionInfo) -> serde_json::Value {
    json!({
        "name": r.name,
        "size": r.size,
        "mode": format_mode(r.mode),
        "uid": r.uid,
        "gid": r.gid,
        "home": r.home,
        "generation": r.generation,
        "state": r.state.label(),
        "resident": r.resident,
        "owned": r.owned,
        "read_faults": r.read_faults,
        "write_faults": r.write_faults,
        "fetched": r.fetched,
        "invalidations": r.invalidations,
        "lost": r.lost,
        "sigbus": r.sigbus,
        "mappings": r.mappings,
    })
}

/// The regions as a table.
pub fn to_text(regions: &[RegionInfo]) -> String {
    const HEADER: [&str; 15] = [
        "NAME", "SIZE", "MODE", "UID", "HOME", "STATE", "RESIDENT", "OWNED", "RFAULTS", "WFAULTS",
        "FETCHED", "INVAL", "LOST", "SIGBUS", "MAPS",
    ];
    let rows: Vec<[String; 15]> = regions
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                format_size(r.size),
                format_mode(r.mode),
                r.uid.to_string(),
                r.home.to_string(),
                r.state.label().to_string(),
                r.resident.to_string(),
                r.owned.to_string(),
                r.read_faults.to_string(),
                r.write_faults.to_string(),
                r.fetched.to_string(),
                r.invalidations.to_string(),
                r.lost.to_string(),
                r.sigbus.to_string(),
                r.mappings.to_string(),
            ]
        })
        .collect();
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[&str]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            match i {
                0 => out += &format!("{cell:<w$}"),
                // The state is text: left-aligned; numbers right-aligned.
                5 => out += &format!(" {cell:<w$}"),
                _ => out += &format!(" {cell:>w$}"),
            }
        }
        out.truncate(out.trim_end().len());
        out + "\n"
    };
    let mut out = line(&HEADER);
    for row in &rows {
        out += &line(&row.each_ref().map(String::as_str));
    }
    out
}

/// `ssictl region list`.
pub fn list(device: &str, as_json: bool) -> Result<(), String> {
    let list = open(device)?.region_list().map_err(text)?;
    if as_json {
        println!(
            "{}",
            serde_json::Value::Array(list.regions.iter().map(to_json).collect())
        );
    } else {
        print!("{}", to_text(&list.regions));
    }
    if list.more > 0 {
        eprintln!(
            "ssictl: {} more region{} did not fit in the kernel's answer",
            list.more,
            if list.more == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use libssi::RegionState;

    fn sample() -> Vec<RegionInfo> {
        let a = RegionInfo {
            name: "shm-data".into(),
            size: 64 << 20,
            mode: 0o640,
            uid: 1000,
            gid: 100,
            home: 2,
            generation: 5,
            state: RegionState::Active,
            resident: 10,
            owned: 4,
            read_faults: 12,
            write_faults: 7,
            fetched: 6,
            invalidations: 3,
            lost: 0,
            sigbus: 1,
            mappings: 2,
        };
        let b = RegionInfo {
            name: "b".into(),
            size: 4096,
            mode: 0o600,
            uid: 0,
            state: RegionState::Remote,
            resident: 0,
            ..a.clone()
        };
        vec![a, b]
    }

    #[test]
    fn json_has_the_documented_fields() {
        let v = to_json(&sample()[0]);
        for (k, want) in [
            ("name", json!("shm-data")),
            ("size", json!(64 << 20)),
            ("mode", json!("0640")),
            ("uid", json!(1000)),
            ("home", json!(2)),
            ("state", json!("active")),
            ("resident", json!(10)),
            ("owned", json!(4)),
            ("read_faults", json!(12)),
            ("write_faults", json!(7)),
            ("fetched", json!(6)),
            ("invalidations", json!(3)),
            ("lost", json!(0)),
            ("sigbus", json!(1)),
            ("mappings", json!(2)),
            ("generation", json!(5)),
            ("gid", json!(100)),
        ] {
            assert_eq!(v[k], want, "{k}");
        }
    }

    #[test]
    fn text_is_a_table() {
        let t = to_text(&sample());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            [
                "NAME", "SIZE", "MODE", "UID", "HOME", "STATE", "RESIDENT", "OWNED", "RFAULTS",
                "WFAULTS", "FETCHED", "INVAL", "LOST", "SIGBUS", "MAPS"
            ]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [
                "shm-data", "64M", "0640", "1000", "2", "active", "10", "4", "12", "7", "6", "3",
                "0", "1", "2"
            ]
        );
        assert!(
            lines[2].starts_with("b          4K 0600    0    2 remote"),
            "{t}"
        );
        // Columns line up.
        assert_eq!(lines[0].find("STATE"), lines[1].find("active"));
        assert_eq!(to_text(&[]).lines().count(), 1);
    }

    #[test]
    fn sizes_and_modes_parse() {
        assert_eq!(size_arg("64M"), Ok(64 << 20));
        assert!(size_arg("64X").is_err());
        assert_eq!(mode_arg("0640"), Ok(0o640));
        assert!(mode_arg("999").is_err());
    }
}
