// SPDX-License-Identifier: GPL-2.0

//! What `ssi_migrate` instances say to each other (inside core's `Service` messages), and
//! the snapshot a migrating process is sent as.
//!
//! A hop of a process from node S to node D: S freezes it and keeps the snapshot; it
//! `Offer`s it to D, whose daemon `Chunk`s the snapshot in and forks a child that asks S
//! to `Commit` (S answers only while the hop is not cancelled: the process runs in one
//! place at most), rebuilds itself as the process and says `Started`. From then on D's
//! page faults are `Page` requests to S (whose frozen process, the stand-in, serves its
//! memory), and the process's standard streams, exit status and signals go to and come
//! from its home (the node it started on): `Output`, `Input`, `Exited`, `Signal`. `Moved`
//! tells the home where the process went; `Finished` releases relay stand-ins when the
//! process has exited. A moved thread's home asks the node running it to move it on or
//! back (`MoveThread`): the user names a thread by its id at home wherever it runs.
//! Decoding validates everything and never panics.

use super::ioctl::{PlainData, SsiMigrateJob};

/// First byte of every message (service data that is not `probe`).
pub const MAGIC: u8 = 0xA5;
/// Version of this protocol and the snapshot layout.
pub const VERSION: u8 = 4;
/// Largest data in one `Output`/`Input` exchange or snapshot chunk.
pub const MAX_DATA: usize = 3968;
/// Largest message text in `Failed`.
pub const MAX_TEXT: usize = 128;
/// Most VMAs a snapshot may carry.
pub const MAX_VMAS: usize = 2048;
/// Largest arch state (registers, signal actions, FPU/XSAVE image).
pub const MAX_STATE: usize = 64 * 1024;
/// Page-answer kinds (first byte of the answer to `Page`).
pub const PAGE_ZERO: u8 = 0;
/// The answer carries 4096 bytes after the 4-byte head.
pub const PAGE_DATA: u8 = 1;
/// The page was never touched where it was asked for: its contents are those of the
/// node that process came from; the answer carries where to ask ([`Redirect`]).
pub const PAGE_REDIRECT: u8 = 2;
/// Bytes before the page data in a page answer.
pub const PAGE_HEAD: usize = 4;

/// Where a `PAGE_REDIRECT` answer sends the asker: `Page { hop, addr }` to `node`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub node: u32,
    pub hop: u64,
    pub addr: u64,
}

/// Length of a `PAGE_REDIRECT` answer.
pub const REDIRECT_LEN: usize = PAGE_HEAD + 20;

impl Redirect {
    /// The whole answer.
    pub fn encode(&self) -> [u8; REDIRECT_LEN] {
        let mut b = [0u8; REDIRECT_LEN];
        b[0] = PAGE_REDIRECT;
        b[4..8].copy_from_slice(&self.node.to_le_bytes());
        b[8..16].copy_from_slice(&self.hop.to_le_bytes());
        b[16..24].copy_from_slice(&self.addr.to_le_bytes());
        b
    }

    /// Decodes a page answer that is a redirect.
    pub fn decode(answer: &[u8]) -> Option<Self> {
        if answer.len() != REDIRECT_LEN || answer[0] != PAGE_REDIRECT {
            return None;
        }
        let mut i = In { buf: &answer[4..] };
        Some(Self {
            node: i.u32().ok()?,
            hop: i.u64().ok()?,
            addr: i.u64().ok()?,
        })
    }
}

/// Where a process's home stand-in is: the node it started on, its pid there and the
/// hop that left the home (every message to the home names that hop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HomeRef {
    /// The home node.
    pub node: u32,
    /// The stand-in's pid on the home node.
    pub pid: u32,
    /// The first hop of the process, from its home.
    pub hop: u64,
}

/// A message between migration engines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigMsg<'a> {
    /// S → D: take process `hop` (snapshot of `snapshot_len` bytes). Answer: the job id.
    Offer {
        hop: u64,
        home_node: u32,
        home_pid: u32,
        home_hop: u64,
        hops: u32,
        snapshot_len: u32,
    },
    /// D → S: bytes of the snapshot of `hop` from `offset`.
    Chunk { hop: u64, offset: u32 },
    /// D → S: about to replace the daemon's child with the process; S answers only if
    /// the hop is still on (then it is final).
    Commit { hop: u64 },
    /// D → S: the process runs on D as `pid`, job `job`.
    Started { hop: u64, pid: u32, job: u64 },
    /// D → S: the hop failed (before the process ran on D): S resumes it.
    Failed {
        hop: u64,
        errno: u32,
        text: &'a [u8],
    },
    /// D → S: contents of the page at `addr` of `hop`'s process.
    Page { hop: u64, addr: u64 },
    /// Running node → home: write `data` to descriptor `fd` (1 or 2) of the stand-in.
    Output {
        home_hop: u64,
        fd: u8,
        data: &'a [u8],
    },
    /// Running node → home: read at most `max` bytes of the stand-in's standard input.
    /// `id` tells a retry from a new read.
    Input { home_hop: u64, id: u64, max: u32 },
    /// Running node → home: the process ended with wait status `status`; `group`: it
    /// ended as a whole (`exit_group`, a fatal signal), not just its one thread (what
    /// the home of a moved thread needs to know: the thread or the whole process ends).
    Exited {
        home_hop: u64,
        status: i32,
        group: bool,
    },
    /// Home → running node: deliver `signo` to job `job`.
    Signal { job: u64, signo: u32 },
    /// New running node → home: the process now runs on `node` as job `job`; it came
    /// from hop `from_hop` of `from_node` (a relay, unless that is the home itself).
    Moved {
        home_hop: u64,
        node: u32,
        job: u64,
        from_node: u32,
        from_hop: u64,
    },
    /// Home → relay: the process has exited, the relay stand-in of `hop` may go.
    Finished { hop: u64 },
    /// The engine's process list (answer: [`super::ioctl::SsiProcInfo`] entries).
    Ps,
    /// Home → the node running job `job`, a moved thread: move it to `node` (its home
    /// included). Answer: [`MoveAnswer`].
    MoveThread { job: u64, node: u32 },
    /// A node running a thread of distributed process `process` → its home: send
    /// `signo` to thread `tid` of process `tgid` there (`tgkill`), or to the whole
    /// process when `tid` is 0 (`kill`). Answer: empty.
    Kill {
        process: u64,
        tgid: u32,
        tid: u32,
        signo: u32,
    },
    /// A node running a thread of a distributed process → its home: that thread
    /// changes the process's address space. Answer: [`SpaceAnswer`].
    SpaceChange(SpaceChange),
    /// Home → each node: change every address space of a distributed process there.
    /// Answer: empty.
    SpaceApply(SpaceApply),
    /// The node a thread of distributed process `process` leaves → the process's home,
    /// around the hop `hop` of that node (see `super::space_gate`): `begin`, the thread
    /// is about to take the layout (answered once no change of the address space is
    /// under way; changes wait from then on), or not, the destination holds the new
    /// address space or the hop failed. Answer: empty.
    SpaceGate { process: u64, hop: u64, begin: bool },
    /// A node running a thread of a distributed process → its home: that thread maps
    /// `file` (read-only or executable, privately) at `change.addr` (`change.op` is
    /// [`SPACE_MAP`]); every address space of the process maps it there by path.
    /// Answer: [`SpaceAnswer`] (its region fields 0).
    SpaceMapFile {
        change: SpaceChange,
        file: MappedFile<'a>,
    },
    /// Home → each node: map `file` at `apply.addr` in every address space of the
    /// process there but `apply.except` (`apply.op` is [`SPACE_MAP`]). Answer: empty.
    SpaceApplyFile {
        apply: SpaceApply,
        file: MappedFile<'a>,
    },
}

/// A file that every address space of a distributed process maps alike, privately and
/// without writing it: each node opens `path` (as the process would, from its root)
/// and maps it from page `pgoff` with protection `prot`; `size` and `mtime_ns` (its
/// modification time) tell whether a node opened the same file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappedFile<'a> {
    pub path: &'a [u8],
    pub size: u64,
    pub mtime_ns: u64,
    pub pgoff: u64,
    pub prot: u32,
}

/// The longest path of a [`MappedFile`] (a library's path is far shorter; a longer
/// one is not mapped alike).
pub const MAX_PATH: usize = 1024;

impl MappedFile<'_> {
    fn encode(&self, o: &mut Out<'_>) -> Result<(), MigWireError> {
        o.u64(self.size)?;
        o.u64(self.mtime_ns)?;
        o.u64(self.pgoff)?;
        o.u32(self.prot)?;
        o.blob(self.path, MAX_PATH)
    }
}

impl<'a> MappedFile<'a> {
    fn decode(i: &mut In<'a>) -> Result<Self, MigWireError> {
        let size = i.u64()?;
        let mtime_ns = i.u64()?;
        let pgoff = i.u64()?;
        let prot = i.u32()?;
        let path = i.blob(MAX_PATH)?;
        // An absolute path without NULs (each node opens it as a C string).
        if path.first() != Some(&b'/') || path.contains(&0) {
            return Err(MigWireError::Malformed);
        }
        Ok(Self {
            path,
            size,
            mtime_ns,
            pgoff,
            prot,
        })
    }
}

/// A change of a distributed process's address space asked of its home: [`SPACE_MAP`],
/// a shared mapping of `len` bytes at `addr` placed as `placement` says (see
/// `super::address_space::Placement`), [`SPACE_UNMAP`], `[addr, addr + len)` goes, or
/// [`SPACE_OPEN`], the shared memory of `[addr, addr + len)` becomes readable and
/// writable (the caller's `mprotect` opened it).
/// The home changes its own address space and has every other one changed; the
/// caller's (`except`, an opaque token of the caller's node) changes itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpaceChange {
    pub process: u64,
    pub op: u32,
    pub placement: u32,
    pub addr: u64,
    pub len: u64,
    pub except: u64,
}

/// The home's change of every address space of distributed process `process` on a node
/// but `except` (the caller's, on the caller's node; 0 elsewhere): map `len` bytes of
/// private-memory region `generation` of `pages` pages at `addr` ([`SPACE_MAP`],
/// replacing what is there with `placement` `Fixed`, else only where nothing is), or
/// unmap the region memory in `[addr, addr + len)` ([`SPACE_UNMAP`]), or make it
/// readable and writable ([`SPACE_OPEN`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpaceApply {
    pub process: u64,
    pub op: u32,
    pub placement: u32,
    pub addr: u64,
    pub len: u64,
    pub generation: u64,
    pub pages: u32,
    pub except: u64,
}

impl SpaceChange {
    fn encode(&self, o: &mut Out<'_>) -> Result<(), MigWireError> {
        o.u64(self.process)?;
        o.u32(self.op)?;
        o.u32(self.placement)?;
        o.u64(self.addr)?;
        o.u64(self.len)?;
        o.u64(self.except)
    }

    fn decode(i: &mut In<'_>) -> Result<Self, MigWireError> {
        Ok(Self {
            process: i.u64()?,
            op: space_op(i.u32()?)?,
            placement: i.u32()?,
            addr: i.u64()?,
            len: i.u64()?,
            except: i.u64()?,
        })
    }
}

impl SpaceApply {
    fn encode(&self, o: &mut Out<'_>) -> Result<(), MigWireError> {
        o.u64(self.process)?;
        o.u32(self.op)?;
        o.u32(self.placement)?;
        o.u64(self.addr)?;
        o.u64(self.len)?;
        o.u64(self.generation)?;
        o.u32(self.pages)?;
        o.u64(self.except)
    }

    fn decode(i: &mut In<'_>) -> Result<Self, MigWireError> {
        Ok(Self {
            process: i.u64()?,
            op: space_op(i.u32()?)?,
            placement: i.u32()?,
            addr: i.u64()?,
            len: i.u64()?,
            generation: i.u64()?,
            pages: i.u32()?,
            except: i.u64()?,
        })
    }
}

/// `SpaceChange`/`SpaceApply` operations.
pub const SPACE_MAP: u32 = 1;
pub const SPACE_UNMAP: u32 = 2;
pub const SPACE_OPEN: u32 = 3;

/// The answer to `SpaceChange`: where the mapping went and the region that holds it
/// (0s for an unmap).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpaceAnswer {
    pub addr: u64,
    pub generation: u64,
    pub pages: u32,
}

impl SpaceAnswer {
    /// Its encoded length.
    pub const LEN: usize = 20;

    /// Encodes into `buf`; returns the length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, MigWireError> {
        let mut o = Out { buf, len: 0 };
        o.u64(self.addr)?;
        o.u64(self.generation)?;
        o.u32(self.pages)?;
        Ok(o.len)
    }

    /// Decodes a whole answer.
    pub fn decode(buf: &[u8]) -> Result<Self, MigWireError> {
        let mut i = In { buf };
        let a = Self {
            addr: i.u64()?,
            generation: i.u64()?,
            pages: i.u32()?,
        };
        if !i.buf.is_empty() {
            return Err(MigWireError::Malformed);
        }
        Ok(a)
    }
}

/// The answer to `MoveThread`: the hop's errno (0: it moved), its figures (as
/// `SSI_IOC_MIGRATE` reports them) and the refusal's text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MoveAnswer<'a> {
    pub errno: u32,
    pub migration: u64,
    pub freeze_ns: u64,
    pub snapshot_bytes: u64,
    pub text: &'a [u8],
}

impl<'a> MoveAnswer<'a> {
    /// Encodes into `buf` (text cut at [`MAX_TEXT`]); returns the length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, MigWireError> {
        let mut o = Out { buf, len: 0 };
        o.u32(self.errno)?;
        o.u64(self.migration)?;
        o.u64(self.freeze_ns)?;
        o.u64(self.snapshot_bytes)?;
        let n = self.text.len().min(MAX_TEXT);
        o.blob(&self.text[..n], MAX_TEXT)?;
        Ok(o.len)
    }

    /// Decodes a whole answer.
    pub fn decode(buf: &'a [u8]) -> Result<Self, MigWireError> {
        let mut i = In { buf };
        let errno = i.u32()?;
        let migration = i.u64()?;
        let freeze_ns = i.u64()?;
        let snapshot_bytes = i.u64()?;
        let text = i.blob(MAX_TEXT)?;
        if !i.buf.is_empty() {
            return Err(MigWireError::Malformed);
        }
        Ok(Self {
            errno,
            migration,
            freeze_ns,
            snapshot_bytes,
            text,
        })
    }
}

/// A known `SpaceChange`/`SpaceApply` operation.
fn space_op(op: u32) -> Result<u32, MigWireError> {
    if op == SPACE_MAP || op == SPACE_UNMAP || op == SPACE_OPEN {
        Ok(op)
    } else {
        Err(MigWireError::Malformed)
    }
}

/// A file's change only maps.
fn mapping_op(op: u32) -> Result<(), MigWireError> {
    if op == SPACE_MAP {
        Ok(())
    } else {
        Err(MigWireError::Malformed)
    }
}

/// Why a message or snapshot does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigWireError {
    /// Too short, too long or a field out of range.
    Malformed,
    /// Another magic, version or type.
    Unknown,
    /// The output buffer is too small.
    NoSpace,
}

struct Out<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Out<'_> {
    fn put(&mut self, b: &[u8]) -> Result<(), MigWireError> {
        let end = self.len.checked_add(b.len()).ok_or(MigWireError::NoSpace)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(MigWireError::NoSpace)?
            .copy_from_slice(b);
        self.len = end;
        Ok(())
    }
    fn u32(&mut self, v: u32) -> Result<(), MigWireError> {
        self.put(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) -> Result<(), MigWireError> {
        self.put(&v.to_le_bytes())
    }
    fn blob(&mut self, b: &[u8], max: usize) -> Result<(), MigWireError> {
        if b.len() > max {
            return Err(MigWireError::Malformed);
        }
        // At most MAX_DATA.
        self.u32(b.len() as u32)?;
        self.put(b)
    }
}

struct In<'a> {
    buf: &'a [u8],
}

impl<'a> In<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MigWireError> {
        if self.buf.len() < n {
            return Err(MigWireError::Malformed);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, MigWireError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, MigWireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn blob(&mut self, max: usize) -> Result<&'a [u8], MigWireError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(MigWireError::Malformed);
        }
        self.take(n)
    }
}

impl<'a> MigMsg<'a> {
    fn kind(&self) -> u8 {
        match self {
            MigMsg::Offer { .. } => 1,
            MigMsg::Chunk { .. } => 2,
            MigMsg::Commit { .. } => 3,
            MigMsg::Started { .. } => 4,
            MigMsg::Failed { .. } => 5,
            MigMsg::Page { .. } => 6,
            MigMsg::Output { .. } => 7,
            MigMsg::Input { .. } => 8,
            MigMsg::Exited { .. } => 9,
            MigMsg::Signal { .. } => 10,
            MigMsg::Moved { .. } => 11,
            MigMsg::Finished { .. } => 12,
            MigMsg::Ps => 13,
            MigMsg::MoveThread { .. } => 14,
            MigMsg::Kill { .. } => 15,
            MigMsg::SpaceChange(_) => 16,
            MigMsg::SpaceApply(_) => 17,
            MigMsg::SpaceGate { .. } => 18,
            MigMsg::SpaceMapFile { .. } => 19,
            MigMsg::SpaceApplyFile { .. } => 20,
        }
    }

    /// Encodes into `buf`; returns the length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, MigWireError> {
        let mut o = Out { buf, len: 0 };
        o.put(&[MAGIC, VERSION, self.kind(), 0])?;
        match *self {
            MigMsg::Offer {
                hop,
                home_node,
                home_pid,
                home_hop,
                hops,
                snapshot_len,
            } => {
                o.u64(hop)?;
                o.u32(home_node)?;
                o.u32(home_pid)?;
                o.u64(home_hop)?;
                o.u32(hops)?;
                o.u32(snapshot_len)?;
            }
            MigMsg::Chunk { hop, offset } => {
                o.u64(hop)?;
                o.u32(offset)?;
            }
            MigMsg::Commit { hop } | MigMsg::Finished { hop } => o.u64(hop)?,
            MigMsg::Started { hop, pid, job } => {
                o.u64(hop)?;
                o.u32(pid)?;
                o.u64(job)?;
            }
            MigMsg::Failed { hop, errno, text } => {
                o.u64(hop)?;
                o.u32(errno)?;
                o.blob(text, MAX_TEXT)?;
            }
            MigMsg::Page { hop, addr } => {
                o.u64(hop)?;
                o.u64(addr)?;
            }
            MigMsg::Output { home_hop, fd, data } => {
                o.u64(home_hop)?;
                o.u32(u32::from(fd))?;
                o.blob(data, MAX_DATA)?;
            }
            MigMsg::Input { home_hop, id, max } => {
                o.u64(home_hop)?;
                o.u64(id)?;
                o.u32(max)?;
            }
            MigMsg::Exited {
                home_hop,
                status,
                group,
            } => {
                o.u64(home_hop)?;
                o.put(&status.to_le_bytes())?;
                o.u32(u32::from(group))?;
            }
            MigMsg::Signal { job, signo } => {
                o.u64(job)?;
                o.u32(signo)?;
            }
            MigMsg::Moved {
                home_hop,
                node,
                job,
                from_node,
                from_hop,
            } => {
                o.u64(home_hop)?;
                o.u32(node)?;
                o.u64(job)?;
                o.u32(from_node)?;
                o.u64(from_hop)?;
            }
            MigMsg::Ps => {}
            MigMsg::MoveThread { job, node } => {
                o.u64(job)?;
                o.u32(node)?;
            }
            MigMsg::Kill {
                process,
                tgid,
                tid,
                signo,
            } => {
                o.u64(process)?;
                o.u32(tgid)?;
                o.u32(tid)?;
                o.u32(signo)?;
            }
            MigMsg::SpaceChange(c) => c.encode(&mut o)?,
            MigMsg::SpaceApply(a) => a.encode(&mut o)?,
            MigMsg::SpaceMapFile { change, file } => {
                change.encode(&mut o)?;
                file.encode(&mut o)?;
            }
            MigMsg::SpaceApplyFile { apply, file } => {
                apply.encode(&mut o)?;
                file.encode(&mut o)?;
            }
            MigMsg::SpaceGate {
                process,
                hop,
                begin,
            } => {
                o.u64(process)?;
                o.u64(hop)?;
                o.u32(u32::from(begin))?;
            }
        }
        Ok(o.len)
    }

    /// Decodes a whole message (trailing bytes are an error).
    pub fn decode(buf: &'a [u8]) -> Result<Self, MigWireError> {
        let mut i = In { buf };
        let head = i.take(4)?;
        if head[0] != MAGIC || head[1] != VERSION || head[3] != 0 {
            return Err(MigWireError::Unknown);
        }
        let msg = match head[2] {
            1 => MigMsg::Offer {
                hop: i.u64()?,
                home_node: i.u32()?,
                home_pid: i.u32()?,
                home_hop: i.u64()?,
                hops: i.u32()?,
                snapshot_len: i.u32()?,
            },
            2 => MigMsg::Chunk {
                hop: i.u64()?,
                offset: i.u32()?,
            },
            3 => MigMsg::Commit { hop: i.u64()? },
            4 => MigMsg::Started {
                hop: i.u64()?,
                pid: i.u32()?,
                job: i.u64()?,
            },
            5 => MigMsg::Failed {
                hop: i.u64()?,
                errno: i.u32()?,
                text: i.blob(MAX_TEXT)?,
            },
            6 => MigMsg::Page {
                hop: i.u64()?,
                addr: i.u64()?,
            },
            7 => {
                let home_hop = i.u64()?;
                let fd = i.u32()?;
                if fd != 1 && fd != 2 {
                    return Err(MigWireError::Malformed);
                }
                MigMsg::Output {
                    home_hop,
                    fd: fd as u8,
                    data: i.blob(MAX_DATA)?,
                }
            }
            8 => MigMsg::Input {
                home_hop: i.u64()?,
                id: i.u64()?,
                max: i.u32()?,
            },
            9 => {
                let home_hop = i.u64()?;
                let s = i.take(4)?;
                let status = i32::from_le_bytes([s[0], s[1], s[2], s[3]]);
                let group = match i.u32()? {
                    0 => false,
                    1 => true,
                    _ => return Err(MigWireError::Malformed),
                };
                MigMsg::Exited {
                    home_hop,
                    status,
                    group,
                }
            }
            10 => MigMsg::Signal {
                job: i.u64()?,
                signo: i.u32()?,
            },
            11 => MigMsg::Moved {
                home_hop: i.u64()?,
                node: i.u32()?,
                job: i.u64()?,
                from_node: i.u32()?,
                from_hop: i.u64()?,
            },
            12 => MigMsg::Finished { hop: i.u64()? },
            13 => MigMsg::Ps,
            14 => MigMsg::MoveThread {
                job: i.u64()?,
                node: i.u32()?,
            },
            15 => MigMsg::Kill {
                process: i.u64()?,
                tgid: i.u32()?,
                tid: i.u32()?,
                signo: i.u32()?,
            },
            16 => MigMsg::SpaceChange(SpaceChange::decode(&mut i)?),
            17 => MigMsg::SpaceApply(SpaceApply::decode(&mut i)?),
            18 => MigMsg::SpaceGate {
                process: i.u64()?,
                hop: i.u64()?,
                begin: match i.u32()? {
                    0 => false,
                    1 => true,
                    _ => return Err(MigWireError::Malformed),
                },
            },
            19 => {
                let change = SpaceChange::decode(&mut i)?;
                mapping_op(change.op)?;
                MigMsg::SpaceMapFile {
                    change,
                    file: MappedFile::decode(&mut i)?,
                }
            }
            20 => {
                let apply = SpaceApply::decode(&mut i)?;
                mapping_op(apply.op)?;
                MigMsg::SpaceApplyFile {
                    apply,
                    file: MappedFile::decode(&mut i)?,
                }
            }
            _ => return Err(MigWireError::Unknown),
        };
        if !i.buf.is_empty() {
            return Err(MigWireError::Malformed);
        }
        Ok(msg)
    }
}

/// Memory-layout facts of a process (mirror of `struct ssi_mm_info` in
/// `ssi_migrate/shim.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmInfo {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    pub auxv_words: u64,
    pub auxv: [u64; 64],
    /// The distributed process a moved thread belongs to (its id at its home, which
    /// names its futexes), or 0 for a whole process.
    pub process: u64,
    /// The process's pid at its home, and its parent's there (what `getpid()` and
    /// `getppid()` of a moved thread answer on every node).
    pub home_tgid: u32,
    pub home_ppid: u32,
}

/// One VMA (mirror of `struct ssi_vma_info`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmaInfo {
    pub start: u64,
    pub end: u64,
    pub pgoff: u64,
    pub flags: u64,
    pub name: [u8; 32],
    /// With `VMA_REGION`: the generation of the private-memory region it maps (homed
    /// on the process's home; `pgoff` is the page of the region at `start`).
    pub region: u64,
    /// With `VMA_REGION`: the region's size in pages (it has no bookkeeping record).
    pub region_pages: u32,
    pub reserved: u32,
}

/// `VmaInfo::flags`: see `ssi_migrate/shim.h`.
pub const VMA_READ: u64 = 0x1;
pub const VMA_WRITE: u64 = 0x2;
pub const VMA_EXEC: u64 = 0x4;
pub const VMA_GROWSDOWN: u64 = 0x8;
pub const VMA_SPECIAL: u64 = 0x10;
pub const VMA_FILE: u64 = 0x20;
pub const VMA_REGION: u64 = 0x40;
/// Every `VmaInfo::flags` bit.
pub const VMA_FLAGS: u64 = 0x7f;

const _: () = assert!(core::mem::size_of::<MmInfo>() == 96 + 8 * 64 + 16);
const _: () = assert!(core::mem::size_of::<VmaInfo>() == 80);
// SAFETY: `#[repr(C)]` structs of `u64`s and a byte array, whose sizes (checked above)
// leave no room for implicit padding.
unsafe impl PlainData for MmInfo {}
// SAFETY: As above.
unsafe impl PlainData for VmaInfo {}

/// Head of a snapshot: `[SnapshotHead][SsiMigrateJob][MmInfo][VmaInfo; nr_vmas][state]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotHead {
    pub magic: u32,
    pub version: u32,
    pub nr_vmas: u32,
    pub state_len: u32,
}

/// `SnapshotHead::magic`.
pub const SNAPSHOT_MAGIC: u32 = 0x5353_4d31;

/// Where the parts of a snapshot are (byte offsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotLayout {
    pub job: usize,
    pub mm: usize,
    pub vmas: usize,
    pub nr_vmas: usize,
    pub state: usize,
    pub state_len: usize,
    pub total: usize,
}

const HEAD_LEN: usize = core::mem::size_of::<SnapshotHead>();
const JOB_LEN: usize = core::mem::size_of::<SsiMigrateJob>();
const MM_LEN: usize = core::mem::size_of::<MmInfo>();
const VMA_LEN: usize = core::mem::size_of::<VmaInfo>();

impl SnapshotLayout {
    /// The layout for `nr_vmas` VMAs and `state_len` bytes of arch state.
    pub fn new(nr_vmas: usize, state_len: usize) -> Result<Self, MigWireError> {
        if nr_vmas > MAX_VMAS || state_len > MAX_STATE {
            return Err(MigWireError::Malformed);
        }
        let job = HEAD_LEN;
        let mm = job + JOB_LEN;
        let vmas = mm + MM_LEN;
        let state = vmas + nr_vmas * VMA_LEN;
        Ok(Self {
            job,
            mm,
            vmas,
            nr_vmas,
            state,
            state_len,
            total: state + state_len,
        })
    }

    /// The head for this layout, as bytes.
    pub fn head(&self) -> [u8; HEAD_LEN] {
        let mut h = [0u8; HEAD_LEN];
        h[0..4].copy_from_slice(&SNAPSHOT_MAGIC.to_le_bytes());
        h[4..8].copy_from_slice(&u32::from(VERSION).to_le_bytes());
        // Both bounded by MAX_VMAS and MAX_STATE.
        h[8..12].copy_from_slice(&(self.nr_vmas as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(self.state_len as u32).to_le_bytes());
        h
    }

    /// Checks a received snapshot and returns its layout.
    pub fn parse(snapshot: &[u8]) -> Result<Self, MigWireError> {
        let mut i = In { buf: snapshot };
        let (magic, version, nr, state) = (i.u32()?, i.u32()?, i.u32()?, i.u32()?);
        if magic != SNAPSHOT_MAGIC || version != u32::from(VERSION) {
            return Err(MigWireError::Unknown);
        }
        let l = Self::new(nr as usize, state as usize)?;
        if l.total != snapshot.len() {
            return Err(MigWireError::Malformed);
        }
        Ok(l)
    }
}

/// Whether the VMAs (sorted, from a snapshot) are well-formed: page-aligned, non-empty,
/// ascending and non-overlapping, below `limit`.
pub fn vmas_valid(vmas: &[VmaInfo], limit: u64) -> bool {
    let mut prev_end = 0u64;
    vmas.iter().all(|v| {
        let ok = v.start < v.end
            && v.end <= limit
            && (v.start | v.end) & 0xfff == 0
            && v.start >= prev_end
            && v.flags & !VMA_FLAGS == 0
            && (v.flags & VMA_REGION != 0) == (v.region != 0)
            && (v.region == 0 || region_fits(v));
        prev_end = v.end;
        ok
    })
}

/// Whether region mapping `v` lies within its region.
fn region_fits(v: &VmaInfo) -> bool {
    let pages = (v.end - v.start) >> 12;
    v.pgoff
        .checked_add(pages)
        .is_some_and(|last| last <= u64::from(v.region_pages))
}

/// The VMA containing `addr`, if any.
pub fn vma_of(vmas: &[VmaInfo], addr: u64) -> Option<&VmaInfo> {
    // Sorted and disjoint: binary search by start.
    let i = vmas.partition_point(|v| v.start <= addr);
    let v = vmas.get(i.checked_sub(1)?)?;
    (addr < v.end).then_some(v)
}

/// Whether a destination fault at source address `addr` of a mapping anchored at
/// `anchor` (another source address of that mapping) takes its contents from the source:
/// both lie in the same source VMA. Otherwise the page starts zeroed (memory the process
/// added after it arrived, by `mremap` or stack growth).
pub fn page_from_source(vmas: &[VmaInfo], addr: u64, anchor: u64) -> bool {
    match (vma_of(vmas, addr), vma_of(vmas, anchor)) {
        (Some(a), Some(b)) => a.start == b.start && a.flags & VMA_SPECIAL == 0,
        _ => false,
    }
}

#[cfg_attr(ssi_kunit, kernel::prelude::kunit_tests(ssi_migrate_wire))]
#[cfg(any(test, ssi_kunit))]
mod tests {
    use super::*;

    fn vma(start: u64, end: u64, flags: u64) -> VmaInfo {
        VmaInfo {
            start,
            end,
            pgoff: 0,
            flags,
            name: [0; 32],
            region: 0,
            region_pages: 0,
            reserved: 0,
        }
    }

    #[test]
    fn messages_round_trip() {
        let text = b"no daemon";
        let data = [7u8; 100];
        let msgs = [
            MigMsg::Offer {
                hop: 1,
                home_node: 2,
                home_pid: 3,
                home_hop: 4,
                hops: 5,
                snapshot_len: 6,
            },
            MigMsg::Chunk {
                hop: 9,
                offset: 4096,
            },
            MigMsg::Commit { hop: u64::MAX },
            MigMsg::Started {
                hop: 1,
                pid: 77,
                job: 8,
            },
            MigMsg::Failed {
                hop: 1,
                errno: 111,
                text,
            },
            MigMsg::Page {
                hop: 3,
                addr: 0x7fff_0000_1000,
            },
            MigMsg::Output {
                home_hop: 5,
                fd: 2,
                data: &data,
            },
            MigMsg::Input {
                home_hop: 5,
                id: 6,
                max: 4000,
            },
            MigMsg::Exited {
                home_hop: 5,
                status: -1,
                group: true,
            },
            MigMsg::Signal { job: 4, signo: 15 },
            MigMsg::Moved {
                home_hop: 1,
                node: 2,
                job: 3,
                from_node: 4,
                from_hop: 5,
            },
            MigMsg::Finished { hop: 12 },
            MigMsg::Ps,
            MigMsg::MoveThread { job: 9, node: 2 },
            MigMsg::Kill {
                process: 7,
                tgid: 100,
                tid: 101,
                signo: 10,
            },
            MigMsg::SpaceChange(SpaceChange {
                process: 7,
                op: SPACE_MAP,
                placement: 1,
                addr: 0x7000_0000,
                len: 8192,
                except: 0xffff_8880_0000_1000,
            }),
            MigMsg::SpaceApply(SpaceApply {
                process: 7,
                op: SPACE_UNMAP,
                placement: 2,
                addr: 0x7000_0000,
                len: 8192,
                generation: 0xabc,
                pages: 2,
                except: 0,
            }),
            MigMsg::SpaceGate {
                process: 7,
                hop: 0x1234_5678_9abc,
                begin: true,
            },
            MigMsg::SpaceGate {
                process: 7,
                hop: 1,
                begin: false,
            },
            MigMsg::SpaceChange(SpaceChange {
                process: 7,
                op: SPACE_OPEN,
                placement: 0,
                addr: 0x7000_0000,
                len: 4096,
                except: 3,
            }),
            MigMsg::SpaceMapFile {
                change: SpaceChange {
                    process: 7,
                    op: SPACE_MAP,
                    placement: 0,
                    addr: 0,
                    len: 0x2_1000,
                    except: 3,
                },
                file: MappedFile {
                    path: b"/lib/x86_64-linux-gnu/libgcc_s.so.1",
                    size: 0x2_0e28,
                    mtime_ns: 1_700_000_000_123_456_789,
                    pgoff: 3,
                    prot: 5,
                },
            },
            MigMsg::SpaceApplyFile {
                apply: SpaceApply {
                    process: 7,
                    op: SPACE_MAP,
                    placement: 1,
                    addr: 0x7f00_0000_0000,
                    len: 0x3000,
                    generation: 0,
                    pages: 3,
                    except: 0,
                },
                file: MappedFile {
                    path: b"/x",
                    size: 1,
                    mtime_ns: 0,
                    pgoff: 0,
                    prot: 1,
                },
            },
        ];
        let mut buf = [0u8; 512];
        for m in msgs {
            let n = m.encode(&mut buf).unwrap();
            assert_eq!(MigMsg::decode(&buf[..n]), Ok(m));
            // Every truncation is refused, never a panic.
            for cut in 0..n {
                assert!(MigMsg::decode(&buf[..cut]).is_err());
            }
            // Trailing garbage too.
            buf[n] = 0;
            assert_eq!(MigMsg::decode(&buf[..n + 1]), Err(MigWireError::Malformed));
        }
    }

    #[test]
    fn mapped_files_are_absolute_short_paths_that_only_map() {
        let file = |path| MappedFile {
            path,
            size: 1,
            mtime_ns: 2,
            pgoff: 0,
            prot: 1,
        };
        let change = |op| SpaceChange {
            process: 1,
            op,
            placement: 0,
            addr: 0,
            len: 4096,
            except: 0,
        };
        let mut buf = [0u8; 2048];
        let long = [b'/'; MAX_PATH + 1];
        for (op, path) in [
            (SPACE_MAP, &b"lib/relative.so"[..]),
            (SPACE_MAP, &b""[..]),
            (SPACE_MAP, &b"/a\0b"[..]),
            (SPACE_UNMAP, &b"/lib/libc.so.6"[..]),
        ] {
            let n = MigMsg::SpaceMapFile {
                change: change(op),
                file: file(path),
            }
            .encode(&mut buf)
            .unwrap();
            assert_eq!(MigMsg::decode(&buf[..n]), Err(MigWireError::Malformed));
        }
        // Too long to send at all.
        let m = MigMsg::SpaceMapFile {
            change: change(SPACE_MAP),
            file: file(&long),
        };
        assert_eq!(m.encode(&mut buf), Err(MigWireError::Malformed));
    }

    #[test]
    fn space_changes_name_a_known_operation_and_answer_in_full() {
        let mut buf = [0u8; 64];
        let n = MigMsg::SpaceChange(SpaceChange {
            process: 1,
            op: SPACE_UNMAP,
            placement: 0,
            addr: 0x1000,
            len: 0x1000,
            except: 0,
        })
        .encode(&mut buf)
        .unwrap();
        // The operation follows the header and the process.
        buf[12] = 4;
        assert_eq!(MigMsg::decode(&buf[..n]), Err(MigWireError::Malformed));
        let a = SpaceAnswer {
            addr: 0x7f00_0000_0000,
            generation: u64::MAX,
            pages: 32768,
        };
        assert_eq!(a.encode(&mut buf), Ok(SpaceAnswer::LEN));
        assert_eq!(SpaceAnswer::decode(&buf[..SpaceAnswer::LEN]), Ok(a));
        assert!(SpaceAnswer::decode(&buf[..SpaceAnswer::LEN - 1]).is_err());
        assert!(SpaceAnswer::decode(&buf[..SpaceAnswer::LEN + 1]).is_err());
    }

    #[test]
    fn bad_fields_are_refused() {
        let mut buf = [0u8; 64];
        let n = MigMsg::Output {
            home_hop: 1,
            fd: 1,
            data: b"x",
        }
        .encode(&mut buf)
        .unwrap();
        // fd 0 is not an output.
        buf[12] = 0;
        assert_eq!(MigMsg::decode(&buf[..n]), Err(MigWireError::Malformed));
        buf[0] = 0;
        assert_eq!(MigMsg::decode(&buf[..n]), Err(MigWireError::Unknown));
        // Static: the KUnit stack is small.
        static BIG: [u8; MAX_DATA + 1] = [0; MAX_DATA + 1];
        let mut out = [0u8; 64];
        assert_eq!(
            MigMsg::Output {
                home_hop: 1,
                fd: 1,
                data: &BIG
            }
            .encode(&mut out),
            Err(MigWireError::Malformed)
        );
        assert_eq!(MigMsg::Ps.encode(&mut [0u8; 3]), Err(MigWireError::NoSpace));
    }

    #[test]
    fn move_answers_round_trip_and_cut_long_texts() {
        let mut buf = [0u8; 256];
        let a = MoveAnswer {
            errno: 16,
            migration: 3,
            freeze_ns: 4,
            snapshot_bytes: 5,
            text: b"pid 7 is exiting",
        };
        let n = a.encode(&mut buf).unwrap();
        assert_eq!(MoveAnswer::decode(&buf[..n]), Ok(a));
        for cut in 0..n {
            assert!(MoveAnswer::decode(&buf[..cut]).is_err());
        }
        let long = [b'x'; 300];
        let n = MoveAnswer {
            text: &long,
            ..MoveAnswer::default()
        }
        .encode(&mut buf)
        .unwrap();
        assert_eq!(MoveAnswer::decode(&buf[..n]).unwrap().text.len(), MAX_TEXT);
    }

    #[test]
    fn redirects_round_trip() {
        let r = Redirect {
            node: 3,
            hop: 0x1234_5678_9abc,
            addr: 0x7fff_f000,
        };
        let b = r.encode();
        assert_eq!(Redirect::decode(&b), Some(r));
        assert_eq!(Redirect::decode(&b[..REDIRECT_LEN - 1]), None);
        let mut other = b;
        other[0] = PAGE_DATA;
        assert_eq!(Redirect::decode(&other), None);
    }

    #[test]
    fn snapshot_layout_checks_lengths() {
        let l = SnapshotLayout::new(3, 100).unwrap();
        let mut snap = [0u8; 2048];
        snap[..16].copy_from_slice(&l.head());
        assert_eq!(SnapshotLayout::parse(&snap[..l.total]), Ok(l));
        assert!(SnapshotLayout::parse(&snap[..l.total - 1]).is_err());
        assert!(SnapshotLayout::parse(&snap[..8]).is_err());
        assert!(SnapshotLayout::new(MAX_VMAS + 1, 0).is_err());
        assert!(SnapshotLayout::new(0, MAX_STATE + 1).is_err());
        snap[0] ^= 1;
        assert_eq!(
            SnapshotLayout::parse(&snap[..l.total]),
            Err(MigWireError::Unknown)
        );
    }

    #[test]
    fn vma_lookup_and_anchors() {
        let v = [
            vma(0x1000, 0x3000, VMA_READ),
            vma(0x3000, 0x5000, VMA_READ | VMA_WRITE),
            vma(0x9000, 0xa000, VMA_SPECIAL),
        ];
        assert!(vmas_valid(&v, 1 << 47));
        assert_eq!(vma_of(&v, 0x0fff), None);
        assert_eq!(vma_of(&v, 0x1000).map(|x| x.start), Some(0x1000));
        assert_eq!(vma_of(&v, 0x2fff).map(|x| x.start), Some(0x1000));
        assert_eq!(vma_of(&v, 0x3000).map(|x| x.start), Some(0x3000));
        assert_eq!(vma_of(&v, 0x5000), None);
        assert!(page_from_source(&v, 0x2000, 0x1000));
        // Grown by mremap past its source VMA: zero, not the neighbour's contents.
        assert!(!page_from_source(&v, 0x3000, 0x1000));
        assert!(!page_from_source(&v, 0x6000, 0x1000));
        // Special mappings never come from the source.
        assert!(!page_from_source(&v, 0x9000, 0x9000));
        let overlapping = [vma(0x1000, 0x3000, 0), vma(0x2000, 0x4000, 0)];
        assert!(!vmas_valid(&overlapping, 1 << 47));
        assert!(!vmas_valid(&[vma(0x1000, 0x1800, 0)], 1 << 47));
        // A region mapping names its region, and only a region mapping does.
        assert!(!vmas_valid(&[vma(0x1000, 0x2000, VMA_REGION)], 1 << 47));
        let region = VmaInfo {
            region: 0xabc,
            region_pages: 2,
            pgoff: 1,
            ..vma(0x1000, 0x2000, VMA_READ | VMA_WRITE | VMA_REGION)
        };
        assert!(vmas_valid(&[region], 1 << 47));
        // It lies within its region.
        let past = VmaInfo { pgoff: 2, ..region };
        assert!(!vmas_valid(&[past], 1 << 47));
        let wrapping = VmaInfo {
            pgoff: u64::MAX,
            ..region
        };
        assert!(!vmas_valid(&[wrapping], 1 << 47));
        let stray = VmaInfo {
            flags: VMA_READ,
            ..region
        };
        assert!(!vmas_valid(&[stray], 1 << 47));
        assert!(!vmas_valid(&[vma(0x1000, 0x2000, 0x80)], 1 << 47));
    }
}
