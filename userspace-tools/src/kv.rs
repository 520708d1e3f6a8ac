//! `ssictl kv put|get`: the cluster's replicated bookkeeping store.

use std::io::{self, Write};
use std::process::ExitCode;

use serde_json::json;
use ssi_shared::ioctl::SsiKv;
use ssi_shared::wire::{MAX_KEY, MAX_VALUE};

use crate::device::{self, common_hint};

/// Builds the ioctl argument, refusing keys and values the store would refuse.
pub fn request(key: &str, value: &[u8]) -> Result<SsiKv, String> {
    if key.is_empty() {
        return Err("kv: the key must not be empty".into());
    }
    if key.len() > MAX_KEY {
        return Err(format!(
            "kv: key of {} bytes is too long (at most {MAX_KEY})",
            key.len()
        ));
    }
    if value.len() > MAX_VALUE {
        return Err(format!(
            "kv: value of {} bytes is too long (at most {MAX_VALUE})",
            value.len()
        ));
    }
    let mut kv = SsiKv {
        key_len: key.len() as u32,
        value_len: value.len() as u32,
        ..Default::default()
    };
    kv.key[..key.len()].copy_from_slice(key.as_bytes());
    kv.value[..value.len()].copy_from_slice(value);
    Ok(kv)
}

/// The value the kernel returned (its length clamped to the buffer).
pub fn value_of(kv: &SsiKv) -> &[u8] {
    &kv.value[..(kv.value_len as usize).min(MAX_VALUE)]
}

/// Explains a failed `SSI_IOC_KV_PUT`/`SSI_IOC_KV_GET` of `key`.
pub fn explain(op: &str, key: &str, e: &io::Error) -> String {
    let hint = match e.raw_os_error() {
        Some(libc::EAGAIN)
        | Some(libc::EHOSTUNREACH)
        | Some(libc::ETIMEDOUT)
        | Some(libc::EHOSTDOWN)
        | Some(libc::ENOTCONN)
        | Some(libc::ECONNRESET) => " (no leader reachable)".to_string(),
        Some(libc::EINVAL) => {
            format!(" (key must be 1..={MAX_KEY} bytes, value at most {MAX_VALUE} bytes)")
        }
        Some(libc::ENOSPC) => " (the store is full)".to_string(),
        other => common_hint(other).to_string(),
    };
    format!("kv {op} {key}: {e}{hint}")
}

/// `ssictl kv put KEY VALUE` (an empty value deletes the key).
pub fn put(device: &str, key: &str, value: &str, as_json: bool) -> Result<ExitCode, String> {
    let req = request(key, value.as_bytes())?;
    let dev = device::open(device)?;
    let done = dev.kv_put(req).map_err(|e| explain("put", key, &e))?;
    if as_json {
        println!(
            "{}",
            json!({"key": key, "value": value, "version": done.version})
        );
    } else {
        println!("{}", done.version);
    }
    Ok(ExitCode::SUCCESS)
}

/// `ssictl kv get KEY`.
pub fn get(device: &str, key: &str, as_json: bool) -> Result<ExitCode, String> {
    let req = request(key, b"")?;
    let dev = device::open(device)?;
    let got = match dev.kv_get(req) {
        Ok(got) => got,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            if as_json {
                println!("{}", json!({"key": key, "value": null, "version": null}));
            }
            eprintln!("{key}: not set");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(explain("get", key, &e)),
    };
    let value = value_of(&got);
    if as_json {
        println!(
            "{}",
            json!({"key": key, "value": String::from_utf8_lossy(value), "version": got.version})
        );
    } else {
        let mut out = io::stdout().lock();
        out.write_all(value)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| format!("stdout: {e}"))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_checked() {
        let kv = request("cluster/name", b"demo").unwrap();
        assert_eq!(kv.key_len, 12);
        assert_eq!(&kv.key[..12], b"cluster/name");
        assert_eq!(value_of(&kv), b"demo");
        assert!(request("", b"x").unwrap_err().contains("empty"));
        assert!(request(&"k".repeat(MAX_KEY), &[b'v'; MAX_VALUE]).is_ok());
        let e = request(&"k".repeat(MAX_KEY + 1), b"").unwrap_err();
        assert!(
            e.contains("key of 49 bytes is too long (at most 48)"),
            "{e}"
        );
        let e = request("k", &[b'v'; MAX_VALUE + 1]).unwrap_err();
        assert!(
            e.contains("value of 193 bytes is too long (at most 192)"),
            "{e}"
        );
        // A multi-byte character counts in bytes.
        assert!(request(&"é".repeat(25), b"").is_err());
        // Deleting is a put of an empty value.
        assert_eq!(request("k", b"").unwrap().value_len, 0);
    }

    #[test]
    fn a_bogus_length_from_the_kernel_is_clamped() {
        let mut kv = request("k", b"v").unwrap();
        kv.value_len = 1000;
        assert_eq!(value_of(&kv).len(), MAX_VALUE);
    }

    #[test]
    fn errors_are_explained() {
        for errno in [libc::EAGAIN, libc::EHOSTUNREACH, libc::ETIMEDOUT] {
            let m = explain("put", "k", &io::Error::from_raw_os_error(errno));
            assert!(m.starts_with("kv put k: "), "{m}");
            assert!(m.ends_with("(no leader reachable)"), "{m}");
        }
        let m = explain("put", "k", &io::Error::from_raw_os_error(libc::EPERM));
        assert!(m.contains("CAP_SYS_ADMIN"), "{m}");
    }
}
