//! `ssictl migrate`, `ssictl ps` and `ssictl daemon` (the node's migration daemon).

use std::collections::HashMap;
use std::ffi::CString;
use std::io;

use serde_json::json;
use ssi_shared::ioctl::{
    name_str, proc_role_label, SsiMigrate, SsiMigrateJob, SsiProcInfo, SSI_MIGRATE_THREAD,
    SSI_NODE_SELF, SSI_NODE_UP,
};

use crate::device::{self, common_hint};

/// `ssictl migrate [--thread] PID NODE`. A multi-threaded process's PID moves every
/// thread of it (one at a time, its main thread last); a thread id, or a PID with
/// `--thread`, moves that thread alone.
pub fn migrate(
    device: &str,
    pid: u32,
    node: u32,
    thread: bool,
    as_json: bool,
) -> Result<(), String> {
    let dev = device::open(device)?;
    let threads = if thread { Vec::new() } else { threads_of(pid) };
    if threads.len() > 1 {
        return migrate_threads(&dev, pid, node, &threads, as_json);
    }
    let req = migrate_one(&dev, pid, node, thread)?;
    let freeze_ms = req.freeze_ns as f64 / 1e6;
    if as_json {
        println!(
            "{}",
            json!({
                "pid": pid,
                "node": node,
                "migration": format!("{:x}", req.migration),
                "freeze_ms": freeze_ms,
                "snapshot_bytes": req.snapshot_bytes,
            })
        );
    } else {
        println!(
            "pid {pid} now runs on node {node} (frozen {freeze_ms:.1} ms, snapshot {} bytes, hop {:x})",
            req.snapshot_bytes, req.migration
        );
    }
    Ok(())
}

/// One `SSI_IOC_MIGRATE`; the error says why, as the kernel put it.
fn migrate_one(
    dev: &device::Device,
    pid: u32,
    node: u32,
    thread: bool,
) -> Result<SsiMigrate, String> {
    let mut req = SsiMigrate {
        pid,
        node,
        flags: if thread { SSI_MIGRATE_THREAD } else { 0 },
        ..Default::default()
    };
    let r = dev.migrate(&mut req);
    let message = name_str(&req.message).unwrap_or("").to_string();
    if let Err(e) = r {
        let why = if message.is_empty() {
            match e.raw_os_error() {
                Some(libc::EOPNOTSUPP) => " (is ssi_migrate loaded?)".to_string(),
                other => common_hint(other).to_string(),
            }
        } else {
            format!(": {message}")
        };
        return Err(format!("migrate {pid} to node {node}: {e}{why}"));
    }
    Ok(req)
}

/// The thread ids of process `pid` (from /proc), its main thread last; empty if `pid`
/// is not a process's id here (a thread id, or unknown: the kernel says which).
fn threads_of(pid: u32) -> Vec<u32> {
    // /proc also shows a thread id's directory, with its whole process's tasks in it.
    let tgid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Tgid:"))
                .and_then(|v| v.trim().parse::<u32>().ok())
        });
    if tgid != Some(pid) {
        return Vec::new();
    }
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut tids: Vec<u32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&t| t != pid)
        .collect();
    tids.sort_unstable();
    tids.push(pid);
    tids
}

/// Moves every thread of process `pid` to `node`, one at a time (a thread already there
/// counts as moved). Stops at the first that cannot move: the ones moved stay there
/// (each can be moved back), and the error names both.
fn migrate_threads(
    dev: &device::Device,
    pid: u32,
    node: u32,
    tids: &[u32],
    as_json: bool,
) -> Result<(), String> {
    let mut moved = Vec::new();
    let mut frozen_ms = 0.0;
    for &tid in tids {
        match migrate_one(dev, tid, node, true) {
            Ok(req) => frozen_ms += req.freeze_ns as f64 / 1e6,
            Err(e) if e.ends_with(&format!("runs on node {node} already")) => {}
            Err(e) => {
                let done = if moved.is_empty() {
                    "no thread moved".to_string()
                } else {
                    format!("threads {moved:?} run on node {node} now")
                };
                return Err(format!(
                    "pid {pid}: thread {tid} did not move ({done}): {e}"
                ));
            }
        }
        moved.push(tid);
    }
    if as_json {
        println!(
            "{}",
            json!({ "pid": pid, "node": node, "threads": moved, "freeze_ms": frozen_ms })
        );
    } else {
        println!(
            "pid {pid} now runs on node {node}: its {} threads (frozen {frozen_ms:.1} ms in all)",
            moved.len()
        );
    }
    Ok(())
}

fn proc_json(p: &SsiProcInfo) -> serde_json::Value {
    json!({
        "id": format!("{}:{}", p.home_node, p.home_pid),
        "home_node": p.home_node,
        "home_pid": p.home_pid,
        "node": p.node,
        "pid": p.pid,
        "role": proc_role_label(p.role),
        "hops": p.hops,
        "pages": p.pages,
        "command": name_str(&p.comm).unwrap_or("?"),
    })
}

/// `ssictl ps`: every process the migration engines of the up nodes know.
pub fn ps(device: &str, as_json: bool) -> Result<(), String> {
    let dev = device::open(device)?;
    let nodes = dev.nodes().map_err(|e| device::node_error("nodes", &e))?;
    let mut rows: Vec<(u32, SsiProcInfo)> = Vec::new();
    let mut unreachable = Vec::new();
    for n in &nodes.nodes[..(nodes.count as usize).min(nodes.nodes.len())] {
        if n.state != SSI_NODE_SELF && n.state != SSI_NODE_UP {
            continue;
        }
        match dev.procs(n.node_id) {
            Ok(list) => {
                for p in &list.procs[..(list.count as usize).min(list.procs.len())] {
                    rows.push((n.node_id, *p));
                }
            }
            Err(e) => unreachable.push(format!("node {}: {e}", n.node_id)),
        }
    }
    rows.sort_by_key(|(at, p)| (p.home_node, p.home_pid, *at));
    if as_json {
        let v: Vec<_> = rows
            .iter()
            .map(|(at, p)| {
                let mut j = proc_json(p);
                j["listed_by"] = json!(at);
                j
            })
            .collect();
        println!("{}", json!({ "processes": v, "errors": unreachable }));
    } else {
        println!(
            "{:<12} {:>4} {:>7} {:<8} {:>4} {:>8}  COMMAND",
            "ID", "NODE", "PID", "ROLE", "HOPS", "PAGES"
        );
        for (at, p) in &rows {
            println!(
                "{:<12} {:>4} {:>7} {:<8} {:>4} {:>8}  {}",
                format!("{}:{}", p.home_node, p.home_pid),
                at,
                p.pid,
                proc_role_label(p.role),
                p.hops,
                p.pages,
                name_str(&p.comm).unwrap_or("?")
            );
        }
        for e in &unreachable {
            eprintln!("ssictl ps: {e}");
        }
    }
    Ok(())
}

/// One special mapping of this process from /proc/self/maps.
struct OwnMapping {
    start: u64,
    end: u64,
    name: String,
}

fn own_mappings() -> io::Result<Vec<OwnMapping>> {
    let text = std::fs::read_to_string("/proc/self/maps")?;
    let mut v = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let range = f.next().unwrap_or("");
        let name = f.nth(4).unwrap_or("").to_string();
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        v.push(OwnMapping { start, end, name });
    }
    Ok(v)
}

/// In the forked child: moves `[vdso]`/`[vvar]` where the process had them (their code
/// is the same kernel's, their addresses are baked into the process's memory).
fn move_special_mappings(job: &SsiMigrateJob) -> Result<(), String> {
    let own = own_mappings().map_err(|e| format!("/proc/self/maps: {e}"))?;
    let wanted = &job.special[..(job.nspecial as usize).min(job.special.len())];
    let mut moves = Vec::new();
    let mut total = 0u64;
    for w in wanted {
        let name = name_str(&w.name).unwrap_or("");
        let m = own
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| format!("this node has no {name} mapping"))?;
        if m.end - m.start != w.end - w.start {
            return Err(format!("{name} sizes differ: kernels differ"));
        }
        // The target must not hit what this child still needs until RESTORE.
        for o in own
            .iter()
            .filter(|o| !o.name.starts_with('[') || o.name == "[stack]" || o.name == "[heap]")
        {
            if o.start < w.end && w.start < o.end {
                return Err(format!(
                    "{name} target {:#x} overlaps the daemon's {} (retry)",
                    w.start, o.name
                ));
            }
        }
        moves.push((m.start, m.end - m.start, w.start));
        total += m.end - m.start;
    }
    // Two steps through a scratch area, so that no move lands on a mapping still to be
    // moved.
    // SAFETY: an anonymous PROT_NONE reservation at an address the kernel picks.
    let scratch = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            total.max(4096) as usize,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if scratch == libc::MAP_FAILED {
        return Err(format!("scratch mapping: {}", io::Error::last_os_error()));
    }
    let mut at = scratch as u64;
    let mut parked = Vec::new();
    for (from, len, to) in &moves {
        // SAFETY: moves this process's own special mapping onto its scratch reservation.
        let r = unsafe {
            libc::mremap(
                *from as *mut libc::c_void,
                *len as usize,
                *len as usize,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                at as *mut libc::c_void,
            )
        };
        if r == libc::MAP_FAILED {
            return Err(format!("mremap to scratch: {}", io::Error::last_os_error()));
        }
        parked.push((at, *len, *to));
        at += len;
    }
    for (from, len, to) in parked {
        // SAFETY: as above, to the address the process expects (checked free of what the
        // child uses; the rest of its memory goes at RESTORE anyway).
        let r = unsafe {
            libc::mremap(
                from as *mut libc::c_void,
                len as usize,
                len as usize,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                to as *mut libc::c_void,
            )
        };
        if r == libc::MAP_FAILED {
            return Err(format!("mremap to {to:#x}: {}", io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// In the forked child: become the process of `job` (returns only on failure).
fn become_process(dev: &device::Device, job: &SsiMigrateJob) -> String {
    // SAFETY: plain system calls on this single-threaded child.
    unsafe {
        libc::setsid();
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
    }
    let cwd = name_str(&job.cwd).unwrap_or("/");
    let cwd = CString::new(cwd).unwrap_or_else(|_| CString::new("/").unwrap_or_default());
    let comm = CString::new(name_str(&job.comm).unwrap_or("migrated")).unwrap_or_default();
    let groups: Vec<libc::gid_t> =
        job.groups[..(job.ngroups as usize).min(job.groups.len())].to_vec();
    // SAFETY: plain system calls with valid pointers.
    unsafe {
        if libc::chdir(cwd.as_ptr()) != 0 {
            libc::chdir(c"/".as_ptr());
        }
        libc::umask(job.umask as libc::mode_t);
        libc::prctl(libc::PR_SET_NAME, comm.as_ptr() as libc::c_ulong, 0, 0, 0);
        if libc::setgroups(groups.len(), groups.as_ptr()) != 0
            || libc::setresgid(job.gid, job.egid, job.sgid) != 0
        {
            return format!("setting groups: {}", io::Error::last_os_error());
        }
        libc::setfsgid(job.fsgid);
        if libc::setresuid(job.uid, job.euid, job.suid) != 0 {
            return format!("setting user ids: {}", io::Error::last_os_error());
        }
        libc::setfsuid(job.fsuid);
        // setuid() cleared it; the owner may migrate the process again.
        libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
    }
    if let Err(e) = move_special_mappings(job) {
        return e;
    }
    match dev.restore(job.job) {
        // Not reached: on success this is the migrated process now.
        Ok(()) => "restore returned".to_string(),
        Err(e) => format!("restore: {e}"),
    }
}

extern "C" fn on_sigchld(_: libc::c_int) {}

/// `ssictl daemon`: takes processes migrating to this node. Runs until killed.
pub fn daemon(device: &str, once: bool) -> Result<(), String> {
    let dev = device::open(device)?;
    let here = dev.node_id();
    // SIGCHLD interrupts ACCEPT (no SA_RESTART), so exits are reported at once.
    // SAFETY: installs a handler that does nothing.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigchld as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = libc::SA_NOCLDSTOP;
        libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut());
    }
    let mut children: HashMap<i32, u64> = HashMap::new();
    let mut done = false;
    eprintln!("ssictl daemon: waiting for processes");
    loop {
        loop {
            let mut status = 0;
            // SAFETY: reaps any exited child without blocking.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if let Some(job) = children.remove(&pid) {
                if libc::WIFSIGNALED(status) {
                    eprintln!(
                        "ssictl daemon: pid {pid} (job {job:x}) killed by signal {}",
                        libc::WTERMSIG(status)
                    );
                } else {
                    eprintln!(
                        "ssictl daemon: pid {pid} (job {job:x}) exited with {}",
                        libc::WEXITSTATUS(status)
                    );
                }
                // ENOENT: the hop failed and the kernel forgot the job already; ESRCH: the home
                // stand-in is gone (killed there).
                if let Err(e) = dev.exited(job, status).or_else(|e| {
                    if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH)) {
                        Ok(())
                    } else {
                        Err(e)
                    }
                }) {
                    eprintln!("ssictl daemon: exit of pid {pid} (job {job:x}) not reported: {e}");
                }
                done = once;
            }
        }
        if done && children.is_empty() {
            return Ok(());
        }
        let mut job = SsiMigrateJob {
            timeout_ms: 1000,
            ..Default::default()
        };
        if let Err(e) = dev.accept(&mut job) {
            match e.raw_os_error() {
                Some(libc::ETIMEDOUT) | Some(libc::EINTR) => continue,
                Some(libc::EOPNOTSUPP) | Some(libc::ESHUTDOWN) => {
                    // ssi_migrate is not loaded (yet, or any more).
                    std::thread::sleep(std::time::Duration::from_millis(500));
                    continue;
                }
                _ => {
                    eprintln!("ssictl daemon: accept: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    continue;
                }
            }
        }
        // SAFETY: this process is single-threaded; the child only makes system calls
        // and formats a message before it exits or becomes the migrated process.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let why = become_process(&dev, &job);
            eprintln!("ssictl daemon: job {:x}: {why}", job.job);
            // SAFETY: leaves the child without running the parent's exit handlers.
            unsafe { libc::_exit(127) };
        }
        if pid < 0 {
            eprintln!("ssictl daemon: fork: {}", io::Error::last_os_error());
            continue;
        }
        eprintln!(
            "ssictl daemon: pid {} of node {} ({}) arrives from node {} as pid {pid}",
            job.home_pid,
            job.home_node,
            name_str(&job.comm).unwrap_or("?"),
            job.source_node
        );
        children.insert(pid, job.job);
        if job.home_node == here {
            // Home again: a helper pulls every page in, so that the process needs no
            // other node (it runs meanwhile; its own faults go first).
            // SAFETY: as for the fork above.
            let helper = unsafe { libc::fork() };
            if helper == 0 {
                let mut tries = 0;
                let code = loop {
                    match dev.drain(job.job) {
                        Ok(pages) => {
                            eprintln!(
                                "ssictl daemon: job {:x} is home again: {pages} pages pulled in",
                                job.job
                            );
                            break 0;
                        }
                        // Not running yet (its restore is under way).
                        Err(e) if e.raw_os_error() == Some(libc::EINVAL) && tries < 100 => {
                            tries += 1;
                            std::thread::sleep(std::time::Duration::from_millis(100));
                        }
                        Err(e) => {
                            eprintln!(
                                "ssictl daemon: job {:x}: pulling its pages in: {e}",
                                job.job
                            );
                            break 1;
                        }
                    }
                };
                // SAFETY: leaves the helper without running the parent's exit handlers.
                unsafe { libc::_exit(code) };
            }
        }
    }
}

#[cfg(test)]
mod thread_tests {
    use super::threads_of;

    #[test]
    fn a_process_lists_its_threads_main_last_and_a_thread_id_lists_none() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tx.send(unsafe { libc::gettid() } as u32).unwrap();
            stop_rx.recv().unwrap();
        });
        let tid = rx.recv().unwrap();
        let pid = std::process::id();
        let tids = threads_of(pid);
        assert_eq!(tids.last(), Some(&pid));
        assert!(tids.contains(&tid));
        assert!(threads_of(tid).is_empty());
        stop_tx.send(()).unwrap();
        t.join().unwrap();
    }
}
