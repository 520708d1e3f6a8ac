//! `ssictl ping NODE`: round trips of ping messages, like ping(8).

use std::io;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use serde_json::json;
use ssi_shared::ioctl::SsiPing;
use ssi_shared::wire::MAX_PING;

use crate::device::{self, common_hint};
use crate::stats::{fmt_us, ns_to_us, Summary};

/// Longest timeout the kernel accepts for one ping.
pub const MAX_TIMEOUT_MS: u32 = 60_000;

/// What `ssictl ping` was asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PingArgs {
    /// Node to ping.
    pub node: u32,
    /// Number of pings.
    pub count: u32,
    /// Payload bytes carried both ways.
    pub size: u32,
    /// Pause between pings.
    pub interval_ms: u64,
    /// Timeout of each ping.
    pub timeout_ms: u32,
}

impl PingArgs {
    /// Refuses what the kernel would refuse, with a clearer message.
    pub fn validate(&self) -> Result<(), String> {
        if self.count == 0 {
            return Err("ping: the count must be at least 1".into());
        }
        if self.size as usize > MAX_PING {
            return Err(format!(
                "ping: payload of {} bytes is too large (at most {MAX_PING})",
                self.size
            ));
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return Err(format!(
                "ping: timeout of {} ms out of range (1..={MAX_TIMEOUT_MS})",
                self.timeout_ms
            ));
        }
        Ok(())
    }
}

/// How one failed ping is handled.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// The ping was lost: counted, reported, and the next one is sent.
    Lost(String),
    /// The request itself is wrong: stop.
    Fatal(String),
}

/// Classifies and explains a failed `SSI_IOC_PING`.
pub fn classify(args: &PingArgs, e: &io::Error) -> Failure {
    let node = args.node;
    let errno = e.raw_os_error();
    let lost = match errno {
        Some(libc::ETIMEDOUT) => Some(format!("no reply within {} ms", args.timeout_ms)),
        Some(libc::EHOSTUNREACH) | Some(libc::EHOSTDOWN) => {
            Some(format!("node {node} is unreachable (down?)"))
        }
        Some(libc::ENOTCONN) => Some(format!("no link to node {node} (not connected yet?)")),
        Some(libc::ECONNRESET) | Some(libc::ECONNABORTED) | Some(libc::ECONNREFUSED) => {
            Some(format!("the link to node {node} was reset"))
        }
        Some(libc::ENETUNREACH) | Some(libc::ENETDOWN) => Some("network unreachable".into()),
        Some(libc::ENOBUFS) | Some(libc::EAGAIN) | Some(libc::EBUSY) => {
            Some("send queue full, try again".into())
        }
        Some(libc::EIO) => Some("transport error".into()),
        _ => None,
    };
    if let Some(why) = lost {
        return Failure::Lost(format!("{why} ({e})"));
    }
    let hint = match errno {
        Some(libc::ENOENT) => format!(" (node {node} is not configured: ssictl node add {node} ADDR)"),
        Some(libc::EINVAL) => format!(
            " (node {node} is this node or not a valid id, or the payload (at most {MAX_PING} bytes) or timeout (at most {MAX_TIMEOUT_MS} ms) was refused)"
        ),
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => {
            format!(" (no transport can reach node {node}: is ssi_rdma loaded?)")
        }
        other => common_hint(other).to_string(),
    };
    Failure::Fatal(format!("ping node {node}: {e}{hint}"))
}

/// The outcome of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Pings sent.
    pub count: u32,
    /// Round trips of the answered ones, in microseconds, in order.
    pub rtts_us: Vec<f64>,
}

impl Report {
    /// Pings without an answer.
    pub fn lost(&self) -> u32 {
        self.count - self.rtts_us.len() as u32
    }

    /// The report as JSON.
    pub fn to_json(&self, args: &PingArgs) -> serde_json::Value {
        let s = Summary::of(&self.rtts_us);
        json!({
            "node": args.node,
            "count": self.count,
            "received": self.rtts_us.len(),
            "lost": self.lost(),
            "payload_bytes": args.size,
            "min_us": s.map(|s| s.min),
            "median_us": s.map(|s| s.median),
            "max_us": s.map(|s| s.max),
            "rtts_us": self.rtts_us,
        })
    }

    /// The closing lines of the text output.
    pub fn summary_text(&self, args: &PingArgs) -> String {
        let mut out = format!(
            "\n--- node {} ping statistics ---\n{} sent, {} received, {} lost ({}% loss)\n",
            args.node,
            self.count,
            self.rtts_us.len(),
            self.lost(),
            u64::from(self.lost()) * 100 / u64::from(self.count.max(1))
        );
        if let Some(s) = Summary::of(&self.rtts_us) {
            out += &format!("rtt min/median/max = {} us\n", s.text());
        }
        out
    }
}

/// `ssictl ping NODE`.
pub fn run(device: &str, args: &PingArgs, as_json: bool) -> Result<ExitCode, String> {
    args.validate()?;
    let dev = device::open(device)?;
    if !as_json {
        println!(
            "PING node {}: {} payload bytes, timeout {} ms",
            args.node, args.size, args.timeout_ms
        );
    }
    let mut report = Report {
        count: 0,
        rtts_us: Vec::new(),
    };
    for seq in 1..=args.count {
        if seq > 1 && args.interval_ms > 0 {
            thread::sleep(Duration::from_millis(args.interval_ms));
        }
        report.count += 1;
        let req = SsiPing {
            node_id: args.node,
            payload_len: args.size,
            timeout_ms: args.timeout_ms,
            ..Default::default()
        };
        match dev.ping(req) {
            Ok(r) => {
                let us = ns_to_us(r.rtt_ns);
                report.rtts_us.push(us);
                if !as_json {
                    println!(
                        "reply from node {}: seq={seq} time={} us",
                        args.node,
                        fmt_us(us)
                    );
                }
            }
            Err(e) => match classify(args, &e) {
                Failure::Lost(why) => eprintln!("ssictl: ping node {} seq={seq}: {why}", args.node),
                Failure::Fatal(msg) => return Err(msg),
            },
        }
    }
    if as_json {
        println!("{}", report.to_json(args));
    } else {
        print!("{}", report.summary_text(args));
    }
    Ok(if report.lost() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> PingArgs {
        PingArgs {
            node: 7,
            count: 5,
            size: 56,
            interval_ms: 0,
            timeout_ms: 1000,
        }
    }

    #[test]
    fn arguments_are_checked() {
        assert_eq!(args().validate(), Ok(()));
        let max = PingArgs {
            size: MAX_PING as u32,
            timeout_ms: MAX_TIMEOUT_MS,
            count: 1,
            ..args()
        };
        assert_eq!(max.validate(), Ok(()));
        assert!(PingArgs { count: 0, ..args() }.validate().is_err());
        let big = PingArgs {
            size: MAX_PING as u32 + 1,
            ..args()
        };
        assert!(big.validate().unwrap_err().contains("at most 1024"));
        assert!(PingArgs {
            timeout_ms: 0,
            ..args()
        }
        .validate()
        .is_err());
        let long = PingArgs {
            timeout_ms: MAX_TIMEOUT_MS + 1,
            ..args()
        };
        assert!(long.validate().is_err());
    }

    #[test]
    fn transient_errors_are_losses_and_request_errors_are_fatal() {
        let a = args();
        for errno in [
            libc::ETIMEDOUT,
            libc::EHOSTUNREACH,
            libc::ENOTCONN,
            libc::EHOSTDOWN,
            libc::ECONNRESET,
        ] {
            let f = classify(&a, &io::Error::from_raw_os_error(errno));
            assert!(matches!(f, Failure::Lost(_)), "{errno}: {f:?}");
        }
        match classify(&a, &io::Error::from_raw_os_error(libc::ETIMEDOUT)) {
            Failure::Lost(m) => assert!(m.contains("no reply within 1000 ms"), "{m}"),
            f => panic!("{f:?}"),
        }
        match classify(&a, &io::Error::from_raw_os_error(libc::ENOENT)) {
            Failure::Fatal(m) => {
                assert!(
                    m.contains("node 7 is not configured: ssictl node add 7"),
                    "{m}"
                )
            }
            f => panic!("{f:?}"),
        }
        match classify(&a, &io::Error::from_raw_os_error(libc::EINVAL)) {
            Failure::Fatal(m) => assert!(m.contains("this node or not a valid id"), "{m}"),
            f => panic!("{f:?}"),
        }
        match classify(&a, &io::Error::from_raw_os_error(libc::EPERM)) {
            Failure::Fatal(m) => assert!(m.contains("CAP_SYS_ADMIN"), "{m}"),
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn report_json_and_text() {
        let a = args();
        let r = Report {
            count: 5,
            rtts_us: vec![30.0, 10.0, 20.0, 40.0],
        };
        let v = r.to_json(&a);
        assert_eq!(
            v,
            json!({"node": 7, "count": 5, "received": 4, "lost": 1, "payload_bytes": 56,
                   "min_us": 10.0, "median_us": 25.0, "max_us": 40.0,
                   "rtts_us": [30.0, 10.0, 20.0, 40.0]})
        );
        let t = r.summary_text(&a);
        assert!(t.contains("5 sent, 4 received, 1 lost (20% loss)"), "{t}");
        assert!(t.contains("rtt min/median/max = 10.0/25.0/40.0 us"), "{t}");
        let none = Report {
            count: 2,
            rtts_us: vec![],
        };
        let v = none.to_json(&a);
        assert_eq!(v["min_us"], serde_json::Value::Null);
        assert_eq!(v["lost"], 2);
        assert!(!none.summary_text(&a).contains("rtt"));
    }
}
