// SPDX-License-Identifier: GPL-2.0

//! The requests of other nodes' migration engines (and of this node's own, see
//! `link.rs`): each `rust/src/migrate_wire.rs` message goes to the side of a migration
//! it is for, the leaving process (`leave.rs`) or the arriving one (`arrive.rs`). The
//! top of the engine: it calls both sides, and they reach it only through `link.rs`.

use core::fmt::Write;

use kernel::{prelude::*, transmute::AsBytes};

use crate::core_client::SliceWriter;
use crate::link::Reply;
use crate::shared::migrate_wire::{HomeRef, MigMsg};
use crate::{arrive, engine, leave, shared};

/// Handles a message from the engine of `node` (or of this node); `None` when it is
/// answered later through `reply`.
pub(crate) fn handle(
    node: u32,
    reply: Reply,
    req: &[u8],
    resp: &mut [u8],
) -> Result<Option<usize>> {
    let e = engine();
    if req == b"probe" {
        let mut w = SliceWriter::new(resp);
        write!(
            w,
            "engine on node {}, ABI v{}",
            e.node,
            shared::ioctl::SSI_ABI_VERSION
        )
        .map_err(|_| EMSGSIZE)?;
        return Ok(Some(w.len()));
    }
    if crate::cluster_futex::is_futex_message(req) {
        return crate::cluster_futex::handle(node, req, resp).map(Some);
    }
    let msg = MigMsg::decode(req).map_err(|_| EINVAL)?;
    let answer = match msg {
        MigMsg::Offer {
            hop,
            home_node,
            home_pid,
            home_hop,
            hops,
            snapshot_len,
        } => {
            let home = HomeRef {
                node: home_node,
                pid: home_pid,
                hop: home_hop,
            };
            match leave::on_return(node, hop, home, snapshot_len, resp) {
                Some(answer) => answer?,
                None => arrive::on_offer(node, hop, home, hops, snapshot_len, resp)?,
            }
        }
        MigMsg::Chunk { hop, offset } => leave::on_chunk(node, hop, offset, resp)?,
        MigMsg::Commit { hop } => leave::on_commit(node, hop)?,
        MigMsg::Started { hop, job, .. } => leave::on_started(node, hop, job)?,
        MigMsg::Failed { hop, errno, text } => leave::on_failed(node, hop, errno, text)?,
        MigMsg::Page { hop, addr } => return leave::on_page(node, hop, addr, reply),
        MigMsg::Output { home_hop, fd, data } => {
            return leave::on_output(node, home_hop, fd, data, reply)
        }
        MigMsg::Input { home_hop, id, max } => {
            return leave::on_input(node, home_hop, id, max, reply)
        }
        MigMsg::Exited {
            home_hop,
            status,
            group,
        } => leave::on_exited(node, home_hop, status, group)?,
        MigMsg::Signal { job, signo } => arrive::on_signal(node, job, signo)?,
        MigMsg::Moved {
            home_hop,
            node: to,
            job,
            from_node,
            from_hop,
        } => leave::on_moved(to, home_hop, job, from_node, from_hop)?,
        MigMsg::Finished { hop } => leave::on_finished(node, hop)?,
        MigMsg::Kill {
            process,
            tgid,
            tid,
            signo,
        } => crate::home_signals::on_kill(node, process, tgid, tid, signo)?,
        MigMsg::SpaceChange(c) => return crate::address_space::on_change(node, reply, c),
        MigMsg::SpaceApply(a) => return crate::address_space::on_apply(node, reply, a),
        MigMsg::SpaceMapFile { change, file } => {
            return crate::address_space::on_map_file(node, reply, change, file)
        }
        MigMsg::SpaceApplyFile { apply, file } => {
            return crate::address_space::on_apply_file(node, reply, apply, file)
        }
        MigMsg::SpaceGate {
            process,
            hop,
            begin,
        } => return crate::address_space::on_gate(node, reply, process, hop, begin),
        MigMsg::MoveThread { job, node: dest } => {
            let pid = arrive::moved_thread_pid(node, job)?;
            leave::move_for_home(pid, dest, reply)?;
            return Ok(None);
        }
        MigMsg::Ps => {
            let procs = e.procs()?;
            let mut n = 0;
            for p in procs.iter() {
                let b = p.as_bytes();
                if n + b.len() > resp.len() {
                    break;
                }
                resp[n..n + b.len()].copy_from_slice(b);
                n += b.len();
            }
            n
        }
    };
    Ok(Some(answer))
}
