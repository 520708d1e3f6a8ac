//! `ssi-gpio-cable`: a vhost-user virtio-gpio backend (virtio device id 41) serving
//! two QEMU guests at once, with line i of guest A wired to line i of guest B, like
//! a ribbon cable between two Raspberry Pi boards.
//!
//! Each guest runs
//! `-chardev socket,path=SOCK,id=g -device vhost-user-gpio-pci,chardev=g` with shared
//! memory (`-object memory-backend-memfd,id=mem,size=..,share=on -machine
//! memory-backend=mem`); this program listens on both sockets (`--socket-a`,
//! `--socket-b`). Either guest may connect first; when one disconnects its lines
//! are released and its interrupts cleared, the other keeps running, and the socket
//! accepts a restarted guest. SIGTERM or SIGINT exits cleanly.
//!
//! Modules:
//! - [`cable`]: the electrical and interrupt model (documented there), pure;
//! - [`protocol`]: the virtio-gpio wire format and request semantics, pure;
//! - [`control`]: the control socket's text commands (fault injection, counters);
//! - [`device`]: the vhost-user glue (rust-vmm `vhost-user-backend`).
//!
//! The device offers VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX and
//! VIRTIO_GPIO_F_IRQ, and the vhost-user protocol features CONFIG (QEMU reads the
//! config space with GET_CONFIG) and MQ (it reports two queues: requestq, eventq).

mod cable;
mod control;
mod device;
mod protocol;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use vhost::vhost_user::Listener;
use vhost_user_backend::VhostUserDaemon;
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};

use cable::Side;
use device::{Shared, SideBackend};

static LOG_LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Info as u8);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum LogLevel {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

fn log_enabled(level: LogLevel) -> bool {
    level as u8 <= LOG_LEVEL.load(Ordering::Relaxed)
}

#[macro_export]
macro_rules! log_at {
    ($lvl:expr, $tag:literal, $($arg:tt)*) => {
        if $crate::log_enabled($lvl) {
            eprintln!(concat!("ssi-gpio-cable: ", $tag, "{}"), format_args!($($arg)*));
        }
    };
}
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log_at!($crate::LogLevel::Error, "error: ", $($arg)*) };
}
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log_at!($crate::LogLevel::Warn, "warning: ", $($arg)*) };
}
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log_at!($crate::LogLevel::Info, "", $($arg)*) };
}
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log_at!($crate::LogLevel::Debug, "debug: ", $($arg)*) };
}

/// The default line names: an 8-bit data bus and two handshake lines.
const DEFAULT_NAMES: [&str; 10] = [
    "data0", "data1", "data2", "data3", "data4", "data5", "data6", "data7", "ready", "valid",
];

/// Longest control command line accepted.
const MAX_CONTROL_LINE: u64 = 4096;

#[derive(Parser, Debug)]
#[command(
    name = "ssi-gpio-cable",
    about = "vhost-user virtio-gpio backend wiring two QEMU guests' GPIO lines together"
)]
struct Args {
    /// vhost-user socket for guest A (we listen; QEMU connects)
    #[arg(long)]
    socket_a: PathBuf,
    /// vhost-user socket for guest B
    #[arg(long)]
    socket_b: PathBuf,
    /// Number of lines (default: 10, or the number of --names)
    #[arg(long)]
    lines: Option<usize>,
    /// Comma-separated line names, line 0 first (default data0..data7,ready,valid)
    #[arg(long, value_delimiter = ',')]
    names: Option<Vec<String>>,
    /// Control socket (text commands: stats, reset, flip, hold, release, levels)
    #[arg(long)]
    control: Option<PathBuf>,
    /// Log verbosity on stderr
    #[arg(long, value_enum, default_value = "info")]
    log_level: LogLevel,
}

fn line_names(lines: Option<usize>, names: Option<Vec<String>>) -> Result<Vec<String>, String> {
    let names = match (lines, names) {
        (Some(n), Some(names)) if n != names.len() => {
            return Err(format!("--lines {n} but {} --names", names.len()))
        }
        (_, Some(names)) => names,
        (n, None) => {
            let n = n.unwrap_or(DEFAULT_NAMES.len());
            (0..n)
                .map(|i| match DEFAULT_NAMES.get(i) {
                    Some(s) => s.to_string(),
                    None => format!("line{i}"),
                })
                .collect()
        }
    };
    if names.is_empty() || names.len() > protocol::MAX_LINES {
        return Err(format!(
            "need 1..={} lines, got {}",
            protocol::MAX_LINES,
            names.len()
        ));
    }
    if let Some(bad) = names.iter().find(|n| n.contains('\0')) {
        return Err(format!("line name {bad:?} contains NUL"));
    }
    Ok(names)
}

/// Serves one side forever: accept, run until the guest goes, reset, repeat.
fn serve_side(shared: Arc<Shared>, side: Side, mut listener: Listener, path: PathBuf) {
    loop {
        let backend = Arc::new(SideBackend::new(side, shared.clone()));
        let mut daemon = match VhostUserDaemon::new(
            format!("gpio-cable-{side}"),
            backend,
            GuestMemoryAtomic::new(GuestMemoryMmap::new()),
        ) {
            Ok(d) => d,
            Err(e) => {
                error!("side {side}: cannot create daemon: {e}");
                thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        info!("side {side}: listening on {}", path.display());
        if let Err(e) = daemon.start(&mut listener) {
            error!("side {side}: accept failed: {e}");
            thread::sleep(Duration::from_secs(1));
            continue;
        }
        info!("side {side}: connected");
        shared.set_connected(side, true);
        let result = daemon.wait();
        // Dropping the daemon stops its worker threads before we reset the side.
        drop(daemon);
        shared.disconnect(side);
        match result {
            Ok(()) => info!("side {side}: disconnected, lines released"),
            Err(e) => info!("side {side}: disconnected ({e}), lines released"),
        }
    }
}

fn serve_control_client(shared: &Shared, stream: UnixStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut buf = Vec::new();
        let n = (&mut reader)
            .take(MAX_CONTROL_LINE + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf.last() != Some(&b'\n') && n as u64 > MAX_CONTROL_LINE {
            writeln!(writer, "error: line longer than {MAX_CONTROL_LINE} bytes")?;
            return Ok(());
        }
        let text = String::from_utf8_lossy(&buf);
        let reply = shared.run(|cable| control::handle_line(cable, &text));
        writeln!(writer, "{reply}")?;
    }
}

fn serve_control(shared: Arc<Shared>, listener: UnixListener) {
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                let shared = shared.clone();
                let spawned = thread::Builder::new()
                    .name("control".into())
                    .spawn(move || {
                        if let Err(e) = serve_control_client(&shared, stream) {
                            debug!("control client: {e}");
                        }
                    });
                if let Err(e) = spawned {
                    warn!("control: cannot spawn client thread: {e}");
                }
            }
            Err(e) => {
                warn!("control: accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn bind_control(path: &Path) -> std::io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path)
}

/// Blocks SIGINT and SIGTERM in this thread (and all threads spawned after), so
/// that [`wait_for_signal`] receives them.
fn block_signals() -> std::io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use;
    // pthread_sigmask only reads the set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        Ok(set)
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> i32 {
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is a valid, initialised signal set; `sig` is a valid out pointer.
        let rc = unsafe { libc::sigwait(set, &mut sig) };
        if rc == 0 {
            return sig;
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    LOG_LEVEL.store(args.log_level as u8, Ordering::Relaxed);
    let names = line_names(args.lines, args.names)?;
    if args.socket_a == args.socket_b {
        return Err("--socket-a and --socket-b must differ".into());
    }
    let set = block_signals().map_err(|e| format!("cannot block signals: {e}"))?;

    let shared = Arc::new(Shared::new(&names));
    let mut paths = Vec::new();
    for (side, path) in [(Side::A, &args.socket_a), (Side::B, &args.socket_b)] {
        let listener = Listener::new(path, true)
            .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        paths.push(path.clone());
        let shared = shared.clone();
        let path = path.clone();
        thread::Builder::new()
            .name(format!("side-{side}"))
            .spawn(move || serve_side(shared, side, listener, path))
            .map_err(|e| format!("cannot spawn side thread: {e}"))?;
    }
    if let Some(path) = &args.control {
        let listener =
            bind_control(path).map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        paths.push(path.clone());
        let shared = shared.clone();
        thread::Builder::new()
            .name("control".into())
            .spawn(move || serve_control(shared, listener))
            .map_err(|e| format!("cannot spawn control thread: {e}"))?;
        info!("control socket {}", path.display());
    }
    info!(
        "virtio-gpio (device id {}), {} lines: {}",
        protocol::VIRTIO_ID_GPIO,
        names.len(),
        names.join(",")
    );

    let sig = wait_for_signal(&set);
    info!(
        "{}: shutting down",
        if sig == libc::SIGINT {
            "SIGINT"
        } else {
            "SIGTERM"
        }
    );
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        error!("{e}");
        std::process::exit(1);
    }
    // The side threads may be blocked in accept(); leave without joining them.
    std::process::exit(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_custom_names() {
        let n = line_names(None, None).unwrap();
        assert_eq!(n.len(), 10);
        assert_eq!(
            (n[0].as_str(), n[8].as_str(), n[9].as_str()),
            ("data0", "ready", "valid")
        );
        assert_eq!(line_names(Some(12), None).unwrap()[11], "line11");
        assert_eq!(
            line_names(Some(3), None).unwrap(),
            ["data0", "data1", "data2"]
        );
        let custom = line_names(None, Some(vec!["x".into(), "y".into()])).unwrap();
        assert_eq!(custom, ["x", "y"]);
        assert!(line_names(Some(3), Some(vec!["x".into()])).is_err());
        assert!(line_names(Some(0), None).is_err());
        assert!(line_names(Some(65), None).is_err());
    }
}
