//! `ssictl node add|remove` and `ssictl nodes`.

use std::net::{Ipv4Addr, SocketAddrV4};

use serde_json::json;
use ssi_shared::ioctl::{
    node_state_label, SsiNodeAddr, SsiNodeInfo, SsiNodeList, SSI_DEFAULT_PORT, SSI_NODE_CONFIGURED,
};

use crate::device::{self, node_error};
use crate::stats::{fmt_us, ns_to_us};

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
    device::open(device)?
        .node_add(req)
        .map_err(|e| node_error(&format!("node add {id}"), &e))
}

/// `ssictl node remove ID`.
pub fn remove(device: &str, id: u32) -> Result<(), String> {
    device::open(device)?
        .node_remove(id)
        .map_err(|e| node_error(&format!("node remove {id}"), &e))
}

fn entries(list: &SsiNodeList) -> &[SsiNodeInfo] {
    &list.nodes[..(list.count as usize).min(list.nodes.len())]
}

fn address(n: &SsiNodeInfo) -> Option<SocketAddrV4> {
    (n.ipv4 != [0; 4]).then(|| SocketAddrV4::new(Ipv4Addr::from(n.ipv4), n.port))
}

/// The leader a node reports, unless it never reported anything (still configured).
fn leader_seen(n: &SsiNodeInfo) -> Option<u32> {
    (n.state != SSI_NODE_CONFIGURED).then_some(n.leader_seen)
}

/// The last measured round trip in microseconds, if any.
fn rtt_us(n: &SsiNodeInfo) -> Option<f64> {
    (n.rtt_ns != 0).then(|| ns_to_us(n.rtt_ns))
}

/// The list as JSON.
pub fn to_json(list: &SsiNodeList) -> serde_json::Value {
    json!({
        "self": list.self_id,
        "leader": list.leader,
        "nodes": entries(list).iter().map(|n| json!({
            "id": n.node_id,
            "state": node_state_label(n.state),
            "address": address(n).map(|a| a.to_string()),
            "leader": n.node_id == list.leader,
            "incarnation": n.incarnation,
            "leader_seen": leader_seen(n),
            "rtt_us": rtt_us(n),
            "counters": {
                "sent": n.sent,
                "received": n.received,
                "malformed": n.malformed,
                "timeouts": n.timeouts,
                "send_errors": n.send_errors,
            },
            "kv_version": n.kv_version,
        })).collect::<Vec<_>>(),
    })
}

/// The list as text; `*` after an id marks the leader this node sees.
pub fn to_text(list: &SsiNodeList) -> String {
    let row = |cols: [&str; 9]| {
        format!(
            "{:<4} {:<21} {:<11} {:<6} {:>9} {:>10} {:>10} {:>9} {:>8}\n",
            cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8]
        )
    };
    let mut out = row([
        "ID",
        "ADDRESS",
        "STATE",
        "LEADER",
        "RTT(us)",
        "SENT",
        "RECV",
        "MALFORMED",
        "TIMEOUTS",
    ]);
    for n in entries(list) {
        let id = format!(
            "{}{}",
            n.node_id,
            if n.node_id == list.leader { "*" } else { "" }
        );
        let addr = address(n).map_or_else(|| "-".to_string(), |a| a.to_string());
        let leader = leader_seen(n).map_or_else(|| "-".to_string(), |l| l.to_string());
        let rtt = rtt_us(n).map_or_else(|| "-".to_string(), fmt_us);
        out += &row([
            &id,
            &addr,
            node_state_label(n.state),
            &leader,
            &rtt,
            &n.sent.to_string(),
            &n.received.to_string(),
            &n.malformed.to_string(),
            &n.timeouts.to_string(),
        ]);
    }
    out += &format!("self: {}  leader: {}\n", list.self_id, list.leader);
    out
}

/// `ssictl nodes`.
pub fn list(device: &str, as_json: bool) -> Result<(), String> {
    let list = device::open(device)?
        .nodes()
        .map_err(|e| node_error("nodes", &e))?;
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
    use ssi_shared::ioctl::{SSI_NODE_SELF, SSI_NODE_UP};

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
            leader_seen: 1,
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
        assert!(
            t.contains("\n0    10.99.0.10:7471       configured  -      "),
            "{t}"
        );
        assert!(
            t.contains("\n1*   -                     self        1      "),
            "{t}"
        );
        l.count = 500;
        assert_eq!(entries(&l).len(), 64);
    }

    #[test]
    fn listing_has_leader_seen_rtt_and_counters() {
        let mut l = SsiNodeList {
            count: 3,
            self_id: 0,
            leader: 0,
            ..Default::default()
        };
        l.nodes[0] = SsiNodeInfo {
            node_id: 0,
            state: SSI_NODE_SELF,
            leader_seen: 0,
            kv_version: 7,
            ..Default::default()
        };
        l.nodes[1] = SsiNodeInfo {
            node_id: 1,
            state: SSI_NODE_UP,
            ipv4: [10, 99, 0, 11],
            port: 7471,
            incarnation: 99,
            leader_seen: 0,
            rtt_ns: 123_456,
            sent: 10,
            received: 9,
            malformed: 2,
            timeouts: 1,
            send_errors: 3,
            kv_version: 7,
            ..Default::default()
        };
        l.nodes[2] = SsiNodeInfo {
            node_id: 2,
            state: SSI_NODE_CONFIGURED,
            ipv4: [10, 99, 0, 12],
            port: 7471,
            leader_seen: 0,
            ..Default::default()
        };
        let v = to_json(&l);
        // The keys of ABI v1 are unchanged.
        assert_eq!(v["self"], 0);
        assert_eq!(v["leader"], 0);
        assert_eq!(v["nodes"][1]["id"], 1);
        assert_eq!(v["nodes"][1]["state"], "up");
        assert_eq!(v["nodes"][1]["address"], "10.99.0.11:7471");
        assert_eq!(v["nodes"][1]["leader"], false);
        assert_eq!(v["nodes"][1]["incarnation"], 99);
        // The new ones.
        assert_eq!(v["nodes"][0]["leader_seen"], 0);
        assert_eq!(v["nodes"][0]["rtt_us"], serde_json::Value::Null);
        assert_eq!(v["nodes"][1]["leader_seen"], 0);
        assert_eq!(v["nodes"][1]["rtt_us"], 123.456);
        assert_eq!(
            v["nodes"][1]["counters"],
            json!({"sent": 10, "received": 9, "malformed": 2, "timeouts": 1, "send_errors": 3})
        );
        assert_eq!(v["nodes"][1]["kv_version"], 7);
        assert_eq!(v["nodes"][2]["leader_seen"], serde_json::Value::Null);
        assert_eq!(v["nodes"][2]["counters"]["sent"], 0);
        let t = to_text(&l);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("ID   ADDRESS               STATE       LEADER   RTT(us)"),
            "{t}"
        );
        assert!(lines[0].ends_with("MALFORMED TIMEOUTS"), "{t}");
        let up: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            up,
            [
                "1",
                "10.99.0.11:7471",
                "up",
                "0",
                "123.5",
                "10",
                "9",
                "2",
                "1"
            ],
            "{t}"
        );
        assert!(lines[1].starts_with("0*  "), "{t}");
        let cfg: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(cfg[3..5], ["-", "-"], "{t}");
        assert_eq!(lines[4], "self: 0  leader: 0");
    }
}
