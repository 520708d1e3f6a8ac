//! `ssictl service call`: ask a service another module registered on a node.

use std::process::ExitCode;

use serde_json::json;
use ssi_shared::ioctl::{SsiServiceCall, SSI_SERVICE_CALL_MAX};

use crate::device::{self, common_hint};

/// Builds the ioctl argument.
pub fn request(
    node: u32,
    service: u16,
    data: &[u8],
    timeout_ms: u32,
) -> Result<Box<SsiServiceCall>, String> {
    if service == 0 {
        return Err("service call: service ids start at 1".into());
    }
    if data.len() > SSI_SERVICE_CALL_MAX {
        return Err(format!(
            "service call: request of {} bytes is too long (at most {SSI_SERVICE_CALL_MAX})",
            data.len()
        ));
    }
    let mut req = Box::new(SsiServiceCall {
        node_id: node,
        service,
        req_len: data.len() as u32,
        timeout_ms,
        ..Default::default()
    });
    req.req[..data.len()].copy_from_slice(data);
    Ok(req)
}

/// `ssictl service call NODE SERVICE DATA`: prints the answer.
pub fn call(
    device: &str,
    node: u32,
    service: u16,
    data: &str,
    timeout_ms: u32,
    as_json: bool,
) -> Result<ExitCode, String> {
    let req = request(node, service, data.as_bytes(), timeout_ms)?;
    let dev = device::open(device)?;
    let done = dev.service_call(req).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) => format!(" (node {node} has no service {service})"),
            Some(libc::ENOENT) => format!(" (node {node} is not configured)"),
            Some(libc::EHOSTDOWN) => format!(" (node {node} is down)"),
            other => common_hint(other).to_string(),
        };
        format!("service call {service} on node {node}: {e}{hint}")
    })?;
    let answer = &done.resp[..(done.resp_len as usize).min(SSI_SERVICE_CALL_MAX)];
    let text = String::from_utf8_lossy(answer);
    if as_json {
        println!(
            "{}",
            json!({"node": node, "service": service, "answer": text})
        );
    } else {
        println!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_bounds_requests() {
        let r = request(2, 1, b"probe", 500).unwrap();
        assert_eq!(
            (r.node_id, r.service, r.req_len, r.timeout_ms),
            (2, 1, 5, 500)
        );
        assert_eq!(&r.req[..5], b"probe");
        assert!(request(2, 0, b"", 0).is_err());
        assert!(request(2, 1, &[0; SSI_SERVICE_CALL_MAX + 1], 0).is_err());
    }
}
