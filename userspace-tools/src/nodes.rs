//! `ssictl node add|remove` and `ssictl nodes`.

use std::net::{Ipv4Addr, SocketAddrV4};

use serde_json::json;
use ssi_shared::ioctl::{node_state_label, SsiNodeAddr, SsiNodeList, SSI_DEFAULT_PORT};

use crate::device::Device;

/// Parses `ADDR` or `ADDR:PORT` (IPv4).
pub fn parse_addr(s: &str) -> Result<SocketAddrV4, String> {
    if let Ok(sa) = s.parse::<SocketAddrV4>() {
        if sa.port() == 0 {
            return Err(format!("{s}: port 0 is not allowed"));
        }
        return Ok(sa);
    }
    s.parse::<Ipv4Addr>()
        .map(|ip| SocketAddrV4::new(ip, SSI_DEFAULT_PORT))
        .map_err(|_| format!("{s}: not an IPv4 address or ADDR:PORT"))
}

/// `ssictl node add ID ADDR[:PORT]`.
pub fn add(device: &str, id: u32, addr: &str) -> Result<(), String> {
    let sa = parse_addr(addr)?;
    let req = SsiNodeAddr {
        node_id: id,
        ipv4: sa.ip().octets(),
        port: sa.port(),
        ..Default::default()
    };
    Device::open(device)?.node_add(req)
}

/// `ssictl node remove ID`.
pub fn remove(device: &str, id: u32) -> Result<(), String> {
    Device::open(device)?.node_remove(id)
}

fn entries(list: &SsiNodeList) -> &[ssi_shared::ioctl::SsiNodeInfo] {
    &list.nodes[..(list.count as usize).min(list.nodes.len())]
}

/// The list as JSON.
pub fn to_json(list: &SsiNodeList) -> serde_json::Value {
    json!({
        "self": list.self_id,
        "leader": list.leader,
        "nodes": entries(list).iter().map(|n| json!({
            "id": n.node_id,
            "state": node_state_label(n.state),
            "address": if n.ipv4 == [0; 4] { serde_json::Value::Null } else {
                json!(SocketAddrV4::new(Ipv4Addr::from(n.ipv4), n.port).to_string())
            },
            "leader": n.node_id == list.leader,
            "incarnation": n.incarnation,
        })).collect::<Vec<_>>(),
    })
}

/// The list as text.
pub fn to_text(list: &SsiNodeList) -> String {
    let mut out = format!(
        "{:<4} {:<21} {:<11} {}\n",
        "id", "address", "state", "leader"
    );
    for n in entries(list) {
        let addr = if n.ipv4 == [0; 4] {
            "-".to_string()
        } else {
            SocketAddrV4::new(Ipv4Addr::from(n.ipv4), n.port).to_string()
        };
        let leader = if n.node_id == list.leader { "*" } else { "" };
        out += &format!(
            "{:<4} {:<21} {:<11} {}\n",
            n.node_id,
            addr,
            node_state_label(n.state),
            leader
        );
    }
    out
}

/// `ssictl nodes`.
pub fn list(device: &str, as_json: bool) -> Result<(), String> {
    let list = Device::open(device)?.nodes()?;
    if as_json {
        println!("{}", to_json(&list));
    } else {
        print!("{}", to_text(&list));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssi_shared::ioctl::{SsiNodeInfo, SSI_NODE_CONFIGURED, SSI_NODE_SELF};

    #[test]
    fn addresses_parse_with_default_port() {
        assert_eq!(
            parse_addr("10.0.0.2"),
            Ok(SocketAddrV4::new(
                Ipv4Addr::new(10, 0, 0, 2),
                SSI_DEFAULT_PORT
            ))
        );
        assert_eq!(parse_addr("10.0.0.2:9000").map(|a| a.port()), Ok(9000));
        assert!(parse_addr("10.0.0.2:0").is_err());
        assert!(parse_addr("node2").is_err());
        assert!(parse_addr("10.0.0.256").is_err());
    }

    #[test]
    fn listing_marks_self_and_leader() {
        let mut l = SsiNodeList {
            count: 2,
            self_id: 1,
            leader: 1,
            ..Default::default()
        };
        l.nodes[0] = SsiNodeInfo {
            node_id: 1,
            state: SSI_NODE_SELF,
            ..Default::default()
        };
        l.nodes[1] = SsiNodeInfo {
            node_id: 0,
            state: SSI_NODE_CONFIGURED,
            ipv4: [10, 99, 0, 10],
            port: 7471,
            ..Default::default()
        };
        let v = to_json(&l);
        assert_eq!(v["nodes"][0]["state"], "self");
        assert_eq!(v["nodes"][0]["leader"], true);
        assert_eq!(v["nodes"][1]["address"], "10.99.0.10:7471");
        assert_eq!(v["nodes"][1]["state"], "configured");
        let t = to_text(&l);
        assert!(t.contains("0    10.99.0.10:7471       configured"), "{t}");
        l.count = 500;
        assert_eq!(entries(&l).len(), 64);
    }
}
