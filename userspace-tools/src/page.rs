//! `ssictl page expose|unexpose|read`: pages other nodes read with one-sided reads.

use std::fs::File;
use std::io::{self, Read};
use std::process::ExitCode;

use serde_json::json;
use sha2::{Digest, Sha256};
use ssi_shared::ioctl::SSI_PAGE_SIZE;

use crate::device::{self, common_hint};
use crate::stats::{ns_to_us, Summary};

/// A page of data.
pub type Page = [u8; SSI_PAGE_SIZE];

/// Most reads one `SSI_IOC_PAGE_READ` may repeat.
pub const MAX_REPEAT: u32 = 100_000;

/// The test pattern of `seed`: byte `i` is `(seed*31 + i*7 + i/256) & 0xff` (wrapping
/// 32-bit arithmetic, so any seed works), a deterministic function of the seed and the
/// offset that differs between neighbouring bytes, pages and seeds.
pub fn pattern(seed: u32) -> Box<Page> {
    let mut page = Box::new([0u8; SSI_PAGE_SIZE]);
    let base = seed.wrapping_mul(31);
    for (i, b) in page.iter_mut().enumerate() {
        let i = i as u32;
        *b = base.wrapping_add(i * 7).wrapping_add(i / 256) as u8;
    }
    page
}

/// The SHA-256 of `data` in lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The first offset where `a` and `b` differ.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}

/// Reads exactly one page from `path`: a regular file must be exactly that long; other
/// files (devices, pipes) give their first page.
pub fn read_page_file(path: &str) -> Result<Box<Page>, String> {
    let mut f = File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let meta = f.metadata().map_err(|e| format!("{path}: {e}"))?;
    if meta.is_file() && meta.len() != SSI_PAGE_SIZE as u64 {
        return Err(format!(
            "{path}: {} bytes, a page is exactly {SSI_PAGE_SIZE}",
            meta.len()
        ));
    }
    let mut page = Box::new([0u8; SSI_PAGE_SIZE]);
    f.read_exact(&mut page[..]).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            format!("{path}: shorter than a page ({SSI_PAGE_SIZE} bytes)")
        } else {
            format!("{path}: {e}")
        }
    })?;
    Ok(page)
}

/// Checks the repeat count of `page read`.
pub fn check_repeat(repeat: u32) -> Result<(), String> {
    if repeat == 0 || repeat > MAX_REPEAT {
        return Err(format!(
            "page read: repeat {repeat} out of range (1..={MAX_REPEAT})"
        ));
    }
    Ok(())
}

fn explain(what: &str, e: &io::Error, hints: &[(i32, String)]) -> String {
    let errno = e.raw_os_error();
    let hint = hints.iter().find(|(n, _)| Some(*n) == errno).map_or_else(
        || common_hint(errno).to_string(),
        |(_, h)| format!(" ({h})"),
    );
    format!("{what}: {e}{hint}")
}

fn no_transport() -> String {
    "no transport can expose or read pages: is ssi_rdma loaded?".into()
}

/// Where the page to expose comes from.
pub enum Source {
    /// [`pattern`] of a seed.
    Pattern(u32),
    /// A file.
    File(String),
}

/// `ssictl page expose`.
pub fn expose(device: &str, source: &Source, as_json: bool) -> Result<ExitCode, String> {
    let page = match source {
        Source::Pattern(seed) => pattern(*seed),
        Source::File(path) => read_page_file(path)?,
    };
    let dev = device::open(device)?;
    let handle = dev.page_expose(&page).map_err(|e| {
        explain(
            "page expose",
            &e,
            &[
                (libc::EOPNOTSUPP, no_transport()),
                (libc::ENOSPC, "too many exposed pages: unexpose some".into()),
                (
                    libc::ENOMEM,
                    "out of memory or too many exposed pages".into(),
                ),
            ],
        )
    })?;
    if as_json {
        println!(
            "{}",
            json!({"handle": handle, "sha256": sha256_hex(&page[..])})
        );
    } else {
        println!("{handle}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `ssictl page unexpose HANDLE`.
pub fn unexpose(device: &str, handle: u64) -> Result<ExitCode, String> {
    let dev = device::open(device)?;
    dev.page_unexpose(handle).map_err(|e| {
        explain(
            &format!("page unexpose {handle}"),
            &e,
            &[(
                libc::ENOENT,
                format!("no page is exposed with handle {handle}"),
            )],
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// What `ssictl page read` was asked to do.
pub struct ReadArgs {
    /// The node that exposed the page.
    pub node: u32,
    /// Its handle.
    pub handle: u64,
    /// Number of reads.
    pub repeat: u32,
    /// Where to write the page.
    pub out: Option<String>,
    /// The pattern seed the page should match.
    pub expect_pattern: Option<u32>,
}

/// Explains a failed `SSI_IOC_PAGE_READ`.
pub fn explain_read(args: &ReadArgs, e: &io::Error) -> String {
    let (node, handle) = (args.node, args.handle);
    let unreachable = format!("node {node} is unreachable");
    explain(
        &format!("page read node {node} handle {handle}"),
        e,
        &[
            (
                libc::ENOENT,
                format!("node {node} is not configured, or exposes no page with handle {handle}"),
            ),
            (
                libc::EINVAL,
                format!("invalid node id (this node itself?), handle or repeat (1..={MAX_REPEAT})"),
            ),
            (
                libc::ETIMEDOUT,
                format!("{unreachable}: the read timed out"),
            ),
            (libc::EHOSTUNREACH, unreachable.clone()),
            (libc::EHOSTDOWN, unreachable.clone()),
            (
                libc::ENOTCONN,
                format!("no link to node {node} (not connected yet?)"),
            ),
            (
                libc::ECONNRESET,
                format!("the link to node {node} was reset"),
            ),
            (libc::EOPNOTSUPP, no_transport()),
            (
                libc::EREMOTEIO,
                format!("node {node} refused the read (page withdrawn?)"),
            ),
            (
                libc::EACCES,
                format!("node {node} refused the read (page withdrawn?)"),
            ),
        ],
    )
}

/// `ssictl page read NODE HANDLE`.
pub fn read(device: &str, args: &ReadArgs, as_json: bool) -> Result<ExitCode, String> {
    check_repeat(args.repeat)?;
    let dev = device::open(device)?;
    let mut page = Box::new([0u8; SSI_PAGE_SIZE]);
    let r = dev
        .page_read(args.node, args.handle, args.repeat, &mut page)
        .map_err(|e| explain_read(args, &e))?;
    if let Some(out) = &args.out {
        std::fs::write(out, &page[..]).map_err(|e| format!("{out}: {e}"))?;
    }
    let hash = sha256_hex(&page[..]);
    let lat = Summary {
        min: ns_to_us(r.min_ns),
        median: ns_to_us(r.median_ns),
        max: ns_to_us(r.max_ns),
    };
    let diff = args
        .expect_pattern
        .map(|seed| (seed, first_difference(&page[..], &pattern(seed)[..])));
    if as_json {
        println!(
            "{}",
            json!({
                "node": args.node,
                "handle": args.handle,
                "sha256": hash,
                "repeat": args.repeat,
                "min_us": lat.min,
                "median_us": lat.median,
                "max_us": lat.max,
                "matches": diff.map(|(_, d)| d.is_none()),
                "first_difference": diff.and_then(|(_, d)| d),
            })
        );
    } else {
        println!(
            "node {} handle {}: sha256 {hash}\n{} read{} of {SSI_PAGE_SIZE} bytes: min/median/max = {} us",
            args.node,
            args.handle,
            args.repeat,
            if args.repeat == 1 { "" } else { "s" },
            lat.text()
        );
    }
    match diff {
        Some((seed, Some(off))) => {
            let expected = pattern(seed)[off];
            eprintln!(
                "ssictl: page differs from pattern {seed} at offset {off}: got 0x{:02x}, expected 0x{expected:02x}",
                page[off]
            );
            Ok(ExitCode::FAILURE)
        }
        Some((seed, None)) => {
            if !as_json {
                println!("matches pattern {seed}");
            }
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_follows_its_formula() {
        let p = pattern(0);
        assert_eq!(&p[..4], &[0, 7, 14, 21]);
        // i = 256: 256*7 + 1 = 1793 = 0x701.
        assert_eq!(p[256], 0x01);
        let p = pattern(5);
        assert_eq!(p[0], 155);
        assert_eq!(p[1], 162);
        // i = 4095: 5*31 + 4095*7 + 15 = 28835 = 0x70a3.
        assert_eq!(p[4095], 0xa3);
        // Wrapping: seed u32::MAX * 31 = -31 mod 2^32.
        assert_eq!(pattern(u32::MAX)[0], (256 - 31) as u8);
        assert_ne!(pattern(1)[..], pattern(2)[..]);
        assert_eq!(pattern(9)[..], pattern(9)[..]);
    }

    #[test]
    fn sha256_of_known_inputs() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_hex(&[0u8; SSI_PAGE_SIZE]).len(), 64);
    }

    #[test]
    fn differences_are_located() {
        let a = pattern(3);
        let mut b = pattern(3);
        assert_eq!(first_difference(&a[..], &b[..]), None);
        b[1234] ^= 1;
        b[2000] ^= 1;
        assert_eq!(first_difference(&a[..], &b[..]), Some(1234));
        assert_eq!(first_difference(b"ab", b"abc"), Some(2));
        assert_eq!(first_difference(&pattern(3)[..], &pattern(4)[..]), Some(0));
    }

    #[test]
    fn repeat_is_checked() {
        assert!(check_repeat(1).is_ok());
        assert!(check_repeat(MAX_REPEAT).is_ok());
        assert!(check_repeat(0).is_err());
        assert!(check_repeat(MAX_REPEAT + 1).is_err());
    }

    #[test]
    fn page_files_must_be_one_page() {
        let dir = std::env::temp_dir().join(format!("ssictl-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, &pattern(1)[..]).unwrap();
        let p = read_page_file(good.to_str().unwrap()).unwrap();
        assert_eq!(p[..], pattern(1)[..]);
        let short = dir.join("short");
        std::fs::write(&short, [1u8; 100]).unwrap();
        let e = read_page_file(short.to_str().unwrap()).unwrap_err();
        assert!(e.contains("100 bytes, a page is exactly 4096"), "{e}");
        let long = dir.join("long");
        std::fs::write(&long, [1u8; SSI_PAGE_SIZE + 1]).unwrap();
        assert!(read_page_file(long.to_str().unwrap()).is_err());
        assert!(read_page_file(dir.join("missing").to_str().unwrap()).is_err());
        // A device gives its first page.
        assert_eq!(
            read_page_file("/dev/zero").unwrap()[..],
            [0u8; SSI_PAGE_SIZE]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn read_errors_are_explained() {
        let a = ReadArgs {
            node: 2,
            handle: 9,
            repeat: 1,
            out: None,
            expect_pattern: None,
        };
        let m = explain_read(&a, &io::Error::from_raw_os_error(libc::ENOENT));
        assert!(m.starts_with("page read node 2 handle 9: "), "{m}");
        assert!(m.contains("exposes no page with handle 9"), "{m}");
        let m = explain_read(&a, &io::Error::from_raw_os_error(libc::EPERM));
        assert!(m.contains("CAP_SYS_ADMIN"), "{m}");
    }
}
