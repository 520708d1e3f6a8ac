// SPDX-License-Identifier: GPL-2.0

//! Services registered by other modules: core routes `Message::Service` requests to
//! them by id (`rust/src/service.rs`) and carries their calls to other nodes.
//!
//! As with transports, a handler is called through a counted use taken under the
//! registry lock and released after the call (`in_use.rs`); unregistering waits for
//! in-flight calls.

use kernel::{
    prelude::*,
    sync::{global_lock, Arc},
};

use crate::in_use::{Counted, Use};
use crate::ops::ServiceOpsRef;
use crate::shared::ioctl::name_str;
use crate::shared::service::{ServiceError, ServiceTable, SSI_MAX_SERVICES};
use crate::shared::wire::{self, Header, Message, MAX_SERVICE_DATA};
use crate::{calls, errno, transmit};

global_lock! {
    // SAFETY: `init` runs in module init before the exported symbols can be reached.
    unsafe(uninit) static SERVICES: Mutex<ServiceTable<Arc<Counted<ServiceOpsRef>>, SSI_MAX_SERVICES>> =
        ServiceTable::new();
}

/// Initialises the registry. Called once from module init.
pub(crate) fn init() {
    // SAFETY: Called exactly once, from the module initialiser, before any other use.
    unsafe { SERVICES.init() };
}

/// Registers a service.
pub(crate) fn register(ops: ServiceOpsRef) -> Result {
    let (version, id, flags, has_handler) =
        (ops.version(), ops.service(), ops.flags(), ops.has_handler());
    let name = ops.name();
    let shown = name_str(&name).unwrap_or("<invalid>");
    let entry = Counted::new(ops)?;
    match SERVICES
        .lock()
        .register(version, id, flags, has_handler, entry)
    {
        Ok(()) => {
            pr_info!("service {} '{}' registered\n", id, shown);
            Ok(())
        }
        Err(e) => {
            pr_err!("service {} '{}' refused: {:?}\n", id, shown, e);
            Err(match e {
                ServiceError::UnsupportedVersion => errno::eprotonosupport(),
                ServiceError::Invalid => EINVAL,
                ServiceError::Duplicate => EEXIST,
                ServiceError::Full => ENOSPC,
            })
        }
    }
}

/// Unregisters a service and waits until none of its handlers runs.
pub(crate) fn unregister(id: u16) {
    let Some(s) = SERVICES.lock().unregister(id) else {
        pr_warn!("unregister of unknown service {}\n", id);
        return;
    };
    s.wait_unused("service", u32::from(id));
    pr_info!("service {} unregistered\n", id);
}

fn use_of(id: u16) -> Option<Use<ServiceOpsRef>> {
    let table = SERVICES.lock();
    let found = table.get(id).map(Counted::start_use);
    found
}

/// A `Service` request from `node`: run the handler, send back its answer (unless the
/// handler deferred it: then it answers with [`reply`]).
pub(crate) fn on_request(h: &Header, service: u16, data: &[u8]) {
    let node = u32::from(h.src);
    let token = (u64::from(node) << 32) | u64::from(h.seq);
    let answer = match use_of(service) {
        None => Err(errno::eopnotsupp()),
        Some(s) => match KVec::from_elem(0u8, MAX_SERVICE_DATA, GFP_KERNEL) {
            Err(e) => Err(Error::from(e)),
            Ok(mut resp) => match s.handle(node, token, data, &mut resp) {
                Ok(None) => return,
                Ok(Some(n)) => {
                    resp.truncate(n);
                    Ok(resp)
                }
                Err(e) => Err(e),
            },
        },
    };
    let msg = match &answer {
        Ok(data) => Ok(Message::Service { service, data }),
        Err(e) => Err(*e),
    };
    transmit::answer(h, msg);
}

/// Sends the deferred answer for `token` (from [`on_request`]): `data`, or the errno
/// `err` when it is negative.
pub(crate) fn reply(token: u64, service: u16, data: &[u8], err: i32) {
    // The token is (node << 32) | sequence number, both from a request header.
    let (node, seq) = ((token >> 32) as u32, token as u32);
    let msg = if err < 0 {
        Err(Error::from_errno(err))
    } else if data.len() > MAX_SERVICE_DATA {
        Err(EMSGSIZE)
    } else {
        Ok(Message::Service { service, data })
    };
    transmit::answer_to(node, seq, msg);
}

/// Calls `service` on `node` with `req`; copies the answer into `resp` and returns its
/// length.
pub(crate) fn call(
    node: u32,
    service: u16,
    req: &[u8],
    resp: &mut [u8],
    timeout_ms: u32,
    interruptible: bool,
) -> Result<usize> {
    if service == 0 || req.len() > MAX_SERVICE_DATA || timeout_ms == 0 || timeout_ms > 60_000 {
        return Err(EINVAL);
    }
    let msg = Message::Service { service, data: req };
    let answer = if interruptible {
        calls::call(node, &msg, timeout_ms)?
    } else {
        calls::call_uninterruptible(node, &msg, timeout_ms)?
    };
    copy_answer(&answer, service, resp)
}

/// Copies the data of the `Service` answer frame `frame` to `resp`; returns its length.
fn copy_answer(frame: &[u8], service: u16, resp: &mut [u8]) -> Result<usize> {
    match wire::decode(frame) {
        Ok((_, Message::Service { service: s, data })) if s == service => {
            if data.len() > resp.len() {
                return Err(EMSGSIZE);
            }
            resp[..data.len()].copy_from_slice(data);
            Ok(data.len())
        }
        _ => Err(errno::eproto()),
    }
}

/// Calls `service` on `node` once per request of `reqs`, all sent before any answer is
/// awaited; answer `i` goes to `resps[i]` and its length (or error) to `results[i]`.
pub(crate) fn call_batch(
    node: u32,
    service: u16,
    reqs: &[&[u8]],
    resps: &mut [&mut [u8]],
    results: &mut [Result<usize>],
    timeout_ms: u32,
    interruptible: bool,
) -> Result {
    if service == 0
        || reqs.len() != resps.len()
        || reqs.len() != results.len()
        || reqs.iter().any(|r| r.len() > MAX_SERVICE_DATA)
        || timeout_ms == 0
        || timeout_ms > 60_000
    {
        return Err(EINVAL);
    }
    let mut msgs = KVec::with_capacity(reqs.len(), GFP_KERNEL)?;
    for r in reqs {
        msgs.push(Message::Service { service, data: r }, GFP_KERNEL)?;
    }
    let answers = calls::call_many(node, &msgs, timeout_ms, interruptible)?;
    for ((answer, resp), result) in answers
        .into_iter()
        .zip(resps.iter_mut())
        .zip(results.iter_mut())
    {
        *result = answer.and_then(|frame| copy_answer(&frame, service, resp));
    }
    Ok(())
}

/// Calls `f(id, name)` for each registered service.
pub(crate) fn for_each(mut f: impl FnMut(u16, &str)) {
    let table = SERVICES.lock();
    for (id, s) in table.iter() {
        let name = s.item().name();
        f(id, name_str(&name).unwrap_or("?"));
    }
}
