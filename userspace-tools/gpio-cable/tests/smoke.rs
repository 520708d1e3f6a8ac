//! Runs the built `ssi-gpio-cable` binary: it must listen on both sockets, answer the
//! control socket, serve a (minimal, hand-rolled) vhost-user frontend on each side
//! with split virtqueues in a shared memfd, and exit on SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use vhost::vhost_user::message::VhostUserConfigFlags;
use vhost::vhost_user::{Frontend, VhostUserFrontend, VhostUserProtocolFeatures};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use vmm_sys_util::eventfd::EventFd;

const TIMEOUT: Duration = Duration::from_secs(10);

struct Proc {
    child: Child,
    dir: PathBuf,
}

impl Proc {
    fn start(name: &str) -> Proc {
        let dir =
            std::env::temp_dir().join(format!("ssi-gpio-cable-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ssi-gpio-cable"))
            .arg("--socket-a")
            .arg(dir.join("a.sock"))
            .arg("--socket-b")
            .arg(dir.join("b.sock"))
            .arg("--control")
            .arg(dir.join("ctl.sock"))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let p = Proc { child, dir };
        for s in ["a.sock", "b.sock", "ctl.sock"] {
            wait_for(&format!("{s} to exist"), || p.path(s).exists());
        }
        p
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("stderr.log")).unwrap_or_default()
    }

    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st, self.log());
            }
            assert!(start.elapsed() < TIMEOUT, "no exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct Control(BufReader<UnixStream>);

impl Control {
    fn connect(path: &Path) -> Control {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        Control(BufReader::new(s))
    }

    fn cmd(&mut self, c: &str) -> String {
        writeln!(self.0.get_mut(), "{c}").unwrap();
        let mut line = String::new();
        self.0.read_line(&mut line).unwrap();
        assert!(line.ends_with('\n'), "reply {line:?}");
        line.trim_end().to_string()
    }

    fn stat(&mut self, key: &str) -> String {
        let s = self.cmd("stats");
        s.split(' ')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {s}"))
            .to_string()
    }
}

#[test]
fn starts_answers_control_and_exits_on_sigterm() {
    let p = Proc::start("basic");
    let mut c = Control::connect(&p.path("ctl.sock"));
    let stats = c.cmd("stats");
    assert!(
        stats.starts_with("transitions=0 transitions_line=0,0,0,0,0,0,0,0,0,0 requests_a=0 "),
        "{stats}"
    );
    assert!(stats.ends_with(" connected=0,0"), "{stats}");
    assert!(c
        .cmd("bogus 1")
        .starts_with("error: unknown command 'bogus'"));
    assert_eq!(c.cmd("hold 12 1"), "error: line 12 out of range (0..9)");
    assert_eq!(c.cmd("hold 0 0"), "ok");
    assert!(c.cmd("levels").starts_with("levels=0b0011111110 "));
    assert_eq!(c.stat("transitions"), "1");
    assert_eq!(c.cmd("reset"), "ok");
    assert_eq!(c.stat("transitions"), "0");

    // A bare connection counts as a connected guest; closing it frees the side.
    let s = UnixStream::connect(p.path("a.sock")).unwrap();
    wait_for("connected=1,0", || c.stat("connected") == "1,0");
    drop(s);
    wait_for("connected=0,0", || c.stat("connected") == "0,0");
    let s = UnixStream::connect(p.path("a.sock")).unwrap();
    wait_for("reconnect", || c.stat("connected") == "1,0");
    drop(s);

    let dir = p.dir.clone();
    let (status, log) = p.terminate();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("side a: connected"), "{log}");
    assert!(log.contains("side a: disconnected"), "{log}");
    assert!(log.contains("SIGTERM: shutting down"), "{log}");
    assert!(!dir.join("a.sock").exists());
    assert!(!dir.join("ctl.sock").exists());
}

// ---- a minimal vhost-user frontend -------------------------------------------

const MEM_SIZE: usize = 1 << 20;
const QSIZE: u16 = 32;
const VRING_DESC_F_NEXT: u16 = 1;
const VRING_DESC_F_WRITE: u16 = 2;

struct Mem {
    fd: RawFd,
    base: *mut u8,
}

impl Mem {
    fn new() -> Mem {
        // SAFETY: plain syscalls; the mapping is checked and owned by this struct.
        unsafe {
            let fd = libc::memfd_create(c"gpio-cable-test".as_ptr(), 0);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, MEM_SIZE as libc::off_t), 0);
            let base = libc::mmap(
                std::ptr::null_mut(),
                MEM_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            assert_ne!(base, libc::MAP_FAILED);
            Mem {
                fd,
                base: base.cast(),
            }
        }
    }

    fn va(&self, gpa: u64) -> u64 {
        self.base as u64 + gpa
    }

    fn write(&self, gpa: u64, bytes: &[u8]) {
        assert!(gpa as usize + bytes.len() <= MEM_SIZE);
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: in bounds of our mapping (checked above); volatile because the
            // backend process shares it.
            unsafe { self.base.add(gpa as usize + i).write_volatile(*b) };
        }
    }

    fn read(&self, gpa: u64, len: usize) -> Vec<u8> {
        assert!(gpa as usize + len <= MEM_SIZE);
        // SAFETY: as in `write`.
        (0..len)
            .map(|i| unsafe { self.base.add(gpa as usize + i).read_volatile() })
            .collect()
    }

    fn r16(&self, gpa: u64) -> u16 {
        let b = self.read(gpa, 2);
        u16::from_le_bytes([b[0], b[1]])
    }

    fn r32(&self, gpa: u64) -> u32 {
        let b = self.read(gpa, 4);
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: unmapping and closing what `new` created.
        unsafe {
            libc::munmap(self.base.cast(), MEM_SIZE);
            libc::close(self.fd);
        }
    }
}

/// One split virtqueue laid out at `base` in guest memory.
struct Queue {
    base: u64,
    avail_idx: u16,
    used_seen: u16,
    kick: EventFd,
    _call: EventFd,
}

impl Queue {
    fn desc(&self) -> u64 {
        self.base
    }
    fn avail(&self) -> u64 {
        self.base + 0x1000
    }
    fn used(&self) -> u64 {
        self.base + 0x2000
    }
}

struct Guest {
    fe: Frontend,
    mem: Mem,
    q: [Queue; 2],
    features: u64,
    config: Vec<u8>,
}

const REQ_BUF: u64 = 0x40000;
const IRQ_BUF: u64 = 0x50000;

fn start_vring(fe: &mut Frontend, mem: &Mem, q: &Queue, i: usize, base: u16) {
    fe.set_vring_num(i, QSIZE).unwrap();
    fe.set_vring_addr(
        i,
        &VringConfigData {
            queue_max_size: QSIZE,
            queue_size: QSIZE,
            flags: 0,
            desc_table_addr: mem.va(q.desc()),
            used_ring_addr: mem.va(q.used()),
            avail_ring_addr: mem.va(q.avail()),
            log_addr: None,
        },
    )
    .unwrap();
    fe.set_vring_base(i, base).unwrap();
    fe.set_vring_call(i, &q._call).unwrap();
    fe.set_vring_kick(i, &q.kick).unwrap();
    fe.set_vring_enable(i, true).unwrap();
}

impl Guest {
    /// Stops the eventq as QEMU does when the VM is paused, runs `during`, and
    /// starts it again on the same ring (resume).
    fn pause_eventq(&mut self, during: impl FnOnce(&mut Self)) {
        self.fe.set_vring_enable(1, false).unwrap();
        let base = self.fe.get_vring_base(1).unwrap();
        during(self);
        start_vring(&mut self.fe, &self.mem, &self.q[1], 1, base as u16);
    }

    fn connect(path: &Path) -> Guest {
        let mem = Mem::new();
        let mut fe = Frontend::connect(path, 2).unwrap();
        fe.set_owner().unwrap();
        let features = fe.get_features().unwrap();
        let pf = fe.get_protocol_features().unwrap();
        assert!(pf.contains(VhostUserProtocolFeatures::CONFIG), "{pf:?}");
        assert!(pf.contains(VhostUserProtocolFeatures::MQ), "{pf:?}");
        fe.set_protocol_features(VhostUserProtocolFeatures::CONFIG | VhostUserProtocolFeatures::MQ)
            .unwrap();
        assert_eq!(fe.get_queue_num().unwrap(), 2);
        let (_, config) = fe
            .get_config(0, 8, VhostUserConfigFlags::empty(), &[0u8; 8])
            .unwrap();
        fe.set_features(features).unwrap();
        fe.set_mem_table(&[VhostUserMemoryRegionInfo {
            guest_phys_addr: 0,
            memory_size: MEM_SIZE as u64,
            userspace_addr: mem.va(0),
            mmap_offset: 0,
            mmap_handle: mem.fd,
        }])
        .unwrap();
        let q = [0u64, 0x10000].map(|base| Queue {
            base,
            avail_idx: 0,
            used_seen: 0,
            kick: EventFd::new(0).unwrap(),
            _call: EventFd::new(0).unwrap(),
        });
        for (i, q) in q.iter().enumerate() {
            start_vring(&mut fe, &mem, q, i, 0);
        }
        Guest {
            fe,
            mem,
            q,
            features,
            config: config.to_vec(),
        }
    }

    fn set_desc(&self, qi: usize, idx: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = Vec::with_capacity(16);
        d.extend_from_slice(&addr.to_le_bytes());
        d.extend_from_slice(&len.to_le_bytes());
        d.extend_from_slice(&flags.to_le_bytes());
        d.extend_from_slice(&next.to_le_bytes());
        self.mem.write(self.q[qi].desc() + 16 * u64::from(idx), &d);
    }

    fn make_available(&mut self, qi: usize, head: u16) {
        let q = &mut self.q[qi];
        let slot = q.avail() + 4 + 2 * u64::from(q.avail_idx % QSIZE);
        self.mem.write(slot, &head.to_le_bytes());
        fence(Ordering::SeqCst);
        q.avail_idx = q.avail_idx.wrapping_add(1);
        self.mem.write(q.avail() + 2, &q.avail_idx.to_le_bytes());
        fence(Ordering::SeqCst);
        q.kick.write(1).unwrap();
    }

    /// The next used element of queue `qi` (id, len), if one arrives in `wait`.
    fn next_used(&mut self, qi: usize, wait: Duration) -> Option<(u32, u32)> {
        let start = Instant::now();
        let q = &self.q[qi];
        while self.mem.r16(q.used() + 2) == q.used_seen {
            if start.elapsed() > wait {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        fence(Ordering::SeqCst);
        let elem = q.used() + 4 + 8 * u64::from(q.used_seen % QSIZE);
        let r = (self.mem.r32(elem), self.mem.r32(elem + 4));
        self.q[qi].used_seen = self.q[qi].used_seen.wrapping_add(1);
        Some(r)
    }

    /// Sends a requestq request with `readable` request bytes and a `resp_len`
    /// response buffer; returns the response bytes the device reported.
    fn request_raw(&mut self, req: &[u8], resp_len: u32) -> Vec<u8> {
        self.mem.write(REQ_BUF, req);
        self.mem
            .write(REQ_BUF + 0x100, &vec![0xee; resp_len as usize]);
        self.set_desc(0, 0, REQ_BUF, req.len() as u32, VRING_DESC_F_NEXT, 1);
        self.set_desc(0, 1, REQ_BUF + 0x100, resp_len, VRING_DESC_F_WRITE, 0);
        self.make_available(0, 0);
        let (id, len) = self.next_used(0, TIMEOUT).expect("request not completed");
        assert_eq!(id, 0);
        self.mem.read(REQ_BUF + 0x100, len as usize)
    }

    fn request(&mut self, kind: u16, gpio: u16, value: u32) -> (u8, u8) {
        let mut r = Vec::new();
        r.extend_from_slice(&kind.to_le_bytes());
        r.extend_from_slice(&gpio.to_le_bytes());
        r.extend_from_slice(&value.to_le_bytes());
        let resp = self.request_raw(&r, 2);
        assert_eq!(resp.len(), 2, "response {resp:?}");
        (resp[0], resp[1])
    }

    /// Queues the eventq buffer of `line` (descriptors 2*line, 2*line+1).
    fn queue_irq(&mut self, line: u16) {
        let buf = IRQ_BUF + 0x10 * u64::from(line);
        self.mem.write(buf, &line.to_le_bytes());
        self.mem.write(buf + 8, &[0xee]);
        self.set_desc(1, 2 * line, buf, 2, VRING_DESC_F_NEXT, 2 * line + 1);
        self.set_desc(1, 2 * line + 1, buf + 8, 1, VRING_DESC_F_WRITE, 0);
        self.make_available(1, 2 * line);
    }

    /// The next completed eventq buffer: (line, status).
    fn irq(&mut self, wait: Duration) -> Option<(u16, u8)> {
        let (id, len) = self.next_used(1, wait)?;
        assert_eq!(id % 2, 0);
        assert_eq!(len, 1);
        let line = (id / 2) as u16;
        Some((
            line,
            self.mem.read(IRQ_BUF + 0x10 * u64::from(line) + 8, 1)[0],
        ))
    }
}

const GET_NAMES: u16 = 1;
const GET_DIRECTION: u16 = 2;
const SET_DIRECTION: u16 = 3;
const GET_VALUE: u16 = 4;
const SET_VALUE: u16 = 5;
const IRQ_TYPE: u16 = 6;
const OK: (u8, u8) = (0, 0);
const SHORT: Duration = Duration::from_millis(200);

#[test]
fn two_frontends_share_the_cable() {
    let p = Proc::start("frontends");
    let mut c = Control::connect(&p.path("ctl.sock"));
    let mut a = Guest::connect(&p.path("a.sock"));
    let mut b = Guest::connect(&p.path("b.sock"));
    wait_for("both connected", || c.stat("connected") == "1,1");

    // Features and config space.
    for g in [&a, &b] {
        assert_ne!(g.features & 1, 0, "VIRTIO_GPIO_F_IRQ");
        assert_ne!(g.features & (1 << 32), 0, "VIRTIO_F_VERSION_1");
        assert_ne!(g.features & (1 << 29), 0, "VIRTIO_RING_F_EVENT_IDX");
    }
    let names = b"data0\0data1\0data2\0data3\0data4\0data5\0data6\0data7\0ready\0valid\0";
    assert_eq!(a.config[0..2], [10, 0]);
    assert_eq!(
        u32::from_le_bytes(a.config[4..8].try_into().unwrap()) as usize,
        names.len()
    );

    // GET_NAMES: status then the names block, exactly 1 + gpio_names_size bytes.
    let mut req = GET_NAMES.to_le_bytes().to_vec();
    req.extend_from_slice(&[0; 6]);
    let resp = a.request_raw(&req, 1 + names.len() as u32);
    assert_eq!(resp[0], 0);
    assert_eq!(&resp[1..], names);
    b.request_raw(&req, 1 + names.len() as u32);

    // B: falling-edge interrupt on line 3, buffer queued and held.
    assert_eq!(b.request(IRQ_TYPE, 3, 0x02), OK);
    b.queue_irq(3);
    assert_eq!(b.irq(SHORT), None);

    // A: direction_output(3, 0) = SET_VALUE then SET_DIRECTION out.
    assert_eq!(a.request(GET_DIRECTION, 3, 0), (0, 0));
    assert_eq!(a.request(SET_VALUE, 3, 0), OK);
    assert_eq!(a.request(SET_DIRECTION, 3, 1), OK);
    assert_eq!(a.request(GET_DIRECTION, 3, 0), (0, 1));
    assert_eq!(b.irq(TIMEOUT), Some((3, 1)), "VALID irq on B line 3");
    assert_eq!(b.request(GET_VALUE, 3, 0), (0, 0));
    assert_eq!(b.request(GET_VALUE, 4, 0), (0, 1));
    assert_eq!(a.request(GET_VALUE, 3, 0), (0, 0), "A reads back its line");
    assert_eq!(c.stat("irqs_b"), "1");
    assert_eq!(c.stat("transitions"), "1");
    assert!(c
        .cmd("levels")
        .starts_with("levels=0b0011110111 drive_a=------0--- "));

    // Edge while B has no buffer: latched, delivered when B requeues.
    assert_eq!(a.request(SET_VALUE, 3, 1), OK);
    assert_eq!(a.request(SET_VALUE, 3, 0), OK);
    b.queue_irq(3);
    assert_eq!(b.irq(TIMEOUT), Some((3, 1)), "latched edge");
    b.queue_irq(3);
    assert_eq!(b.irq(SHORT), None);

    // Fault injection seen by B only.
    assert_eq!(c.cmd("flip 3 1 b"), "ok");
    assert_eq!(a.request(GET_VALUE, 3, 0), (0, 0));
    assert_eq!(b.request(GET_VALUE, 3, 0), (0, 1));
    assert_eq!(b.request(GET_VALUE, 3, 0), (0, 0));
    assert_eq!(c.stat("flips"), "1");

    // IRQ_TYPE none returns the held buffer INVALID.
    assert_eq!(b.request(IRQ_TYPE, 3, 0), OK);
    assert_eq!(b.irq(TIMEOUT), Some((3, 0)), "INVALID on disable");

    // Malformed requests: ERR, never a crash.
    assert_eq!(b.request(SET_DIRECTION, 99, 1).0, 1);
    assert_eq!(b.request(SET_VALUE, 1, 7).0, 1);
    assert_eq!(b.request(0x77, 1, 0).0, 1);
    assert_eq!(b.request_raw(&[5, 0, 1], 2), vec![1, 0]);

    // A hold fires B's rising-edge interrupt on line 8 ("ready", pulled down).
    assert_eq!(b.request(IRQ_TYPE, 8, 0x01), OK);
    b.queue_irq(8);
    assert_eq!(c.cmd("hold 8 1"), "ok");
    assert_eq!(c.cmd("release 8"), "ok");
    assert_eq!(b.irq(TIMEOUT), Some((8, 1)));

    // VM pause: B's eventq stopped with a buffer held; the edge latches and is
    // delivered once the queue runs again on the same ring.
    b.queue_irq(8);
    assert_eq!(b.irq(SHORT), None);
    b.pause_eventq(|b| {
        assert_eq!(c.cmd("hold 8 1"), "ok");
        assert_eq!(c.cmd("release 8"), "ok");
        assert_eq!(b.irq(SHORT), None, "nothing delivered while stopped");
        assert_eq!(c.stat("irqs_b"), "3");
    });
    assert_eq!(b.irq(TIMEOUT), Some((8, 1)), "latched edge after resume");
    assert_eq!(c.stat("irqs_b"), "4");

    // A goes away: its line 3 is released, B sees the rising edge it asked for.
    b.queue_irq(8);
    assert_eq!(b.request(IRQ_TYPE, 3, 0x03), OK);
    b.queue_irq(3);
    drop(a);
    assert_eq!(b.irq(TIMEOUT), Some((3, 1)), "edge from A's release");
    wait_for("A disconnected", || c.stat("connected") == "0,1");
    assert!(c
        .cmd("levels")
        .starts_with("levels=0b0011111111 drive_a=----------"));

    // A restarted guest can connect again.
    let a2 = Guest::connect(&p.path("a.sock"));
    wait_for("A reconnected", || c.stat("connected") == "1,1");
    drop(a2);
    drop(b);
    wait_for("both gone", || c.stat("connected") == "0,0");

    let (status, log) = p.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("side a: driver ready"), "{log}");
    assert!(log.contains("side b: device started"), "{log}");
}
