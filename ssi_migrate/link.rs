// SPDX-License-Identifier: GPL-2.0

//! Talking to the migration engines of other nodes (and of this node: a process that
//! comes home talks to its own node the same way).
//!
//! A request is a `rust/src/migrate_wire.rs` message carried by core's service calls. A
//! handler answers at once or later (`Reply`); a request to this node runs the handler
//! directly and waits for a later answer on a local waiter.

use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{Arc, CondVar, CondVarTimeoutResult, Mutex, SetOnce},
    time::msecs_to_jiffies,
};

use crate::core_client;
use crate::shared::arith::ns_to_ms;
use crate::shared::migrate_wire::MigMsg;
use crate::shared::service::{ids, SSI_CALL_UNINTERRUPTIBLE};
use crate::shared::wire::MAX_SERVICE_DATA;

/// How this node's engine answers a request: `requests::handle`, which is above this
/// file (it calls both sides of a migration, which call here), so it is handed in once
/// at module init rather than called by name.
pub(crate) type LocalHandler =
    fn(node: u32, reply: Reply, req: &[u8], resp: &mut [u8]) -> Result<Option<usize>>;

static LOCAL_HANDLER: SetOnce<LocalHandler> = SetOnce::new();

/// Sets the handler of requests to this node's own engine; once, at module init.
pub(crate) fn serve_locally(handler: LocalHandler) {
    if !LOCAL_HANDLER.populate(handler) {
        pr_warn!("a second local handler was ignored\n");
    }
}

/// A local request's answer.
#[pin_data]
pub(crate) struct LocalCall {
    #[pin]
    answer: Mutex<Option<Result<KVec<u8>>>>,
    #[pin]
    answered: CondVar,
}

/// Where a deferred answer goes.
pub(crate) enum Reply {
    /// A remote caller: core's token.
    Remote(u64),
    /// A caller on this node.
    Local(Arc<LocalCall>),
}

impl Reply {
    /// Answers the request.
    pub(crate) fn send(self, answer: Result<&[u8]>) {
        match self {
            Reply::Remote(token) => core_client::service_reply(token, ids::MIGRATE, answer),
            Reply::Local(call) => {
                let copy = answer.and_then(|d| {
                    let mut v = KVec::with_capacity(d.len(), GFP_KERNEL)?;
                    v.extend_from_slice(d, GFP_KERNEL)?;
                    Ok(v)
                });
                *call.answer.lock() = Some(copy);
                call.answered.notify_all();
            }
        }
    }
}

/// How a call waits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// A signal ends the wait (`ERESTARTSYS`).
    Interruptible,
    /// Only the timeout ends it (page faults).
    Uninterruptible,
}

/// Sends `msg` to the engine of `node` and waits at most `timeout_ms`; the answer goes
/// to `resp`. Returns its length.
pub(crate) fn call(
    node: u32,
    msg: &MigMsg<'_>,
    resp: &mut [u8],
    timeout_ms: u32,
    wait: Wait,
) -> Result<usize> {
    let mut req = KVec::from_elem(0u8, MAX_SERVICE_DATA, GFP_KERNEL)?;
    let n = msg.encode(&mut req).map_err(|_| EMSGSIZE)?;
    call_encoded(node, &req[..n], resp, timeout_ms, wait)
}

/// [`call`] with a request already encoded (a migration or a futex message).
pub(crate) fn call_encoded(
    node: u32,
    req: &[u8],
    resp: &mut [u8],
    timeout_ms: u32,
    wait: Wait,
) -> Result<usize> {
    let n = req.len();
    if node != core_client::node_id() {
        let flags = if wait == Wait::Uninterruptible {
            SSI_CALL_UNINTERRUPTIBLE
        } else {
            0
        };
        return core_client::call_service(node, ids::MIGRATE, &req[..n], resp, timeout_ms, flags);
    }
    let call = Arc::pin_init(
        pin_init!(LocalCall {
            answer <- new_mutex!(None),
            answered <- new_condvar!(),
        }),
        GFP_KERNEL,
    )?;
    let handle = LOCAL_HANDLER.copy().ok_or(ENODEV)?;
    if let Some(len) = handle(node, Reply::Local(call.clone()), &req[..n], resp)? {
        return Ok(len);
    }
    let deadline = crate::clock::now_ns() + u64::from(timeout_ms) * 1_000_000;
    let mut answer = call.answer.lock();
    loop {
        if let Some(a) = answer.take() {
            let data = a?;
            let len = data.len().min(resp.len());
            resp[..len].copy_from_slice(&data[..len]);
            return Ok(len);
        }
        let now = crate::clock::now_ns();
        if now >= deadline {
            return Err(ETIMEDOUT);
        }
        // The remaining milliseconds: below 2^32 as timeout_ms is.
        let left = msecs_to_jiffies(ns_to_ms(deadline - now).max(1) as u32);
        let r = call.answered.wait_interruptible_timeout(&mut answer, left);
        if wait == Wait::Interruptible && matches!(r, CondVarTimeoutResult::Signal { .. }) {
            return Err(ERESTARTSYS);
        }
    }
}

/// Sends all `msgs` to the engine of (another) `node` before waiting for any answer;
/// answer `i` goes to `resps[i]`. Returns each answer's length or error.
pub(crate) fn call_batch(
    node: u32,
    msgs: &[MigMsg<'_>],
    resps: &mut [&mut [u8]],
    timeout_ms: u32,
    wait: Wait,
) -> Result<KVec<Result<usize>>> {
    let mut reqs: KVec<KVec<u8>> = KVec::with_capacity(msgs.len(), GFP_KERNEL)?;
    for m in msgs {
        let mut r = KVec::from_elem(0u8, 64, GFP_KERNEL)?;
        let n = m.encode(&mut r).map_err(|_| EMSGSIZE)?;
        r.truncate(n);
        reqs.push(r, GFP_KERNEL)?;
    }
    let mut slices: KVec<&[u8]> = KVec::with_capacity(reqs.len(), GFP_KERNEL)?;
    for r in reqs.iter() {
        slices.push(&r[..], GFP_KERNEL)?;
    }
    let flags = if wait == Wait::Uninterruptible {
        SSI_CALL_UNINTERRUPTIBLE
    } else {
        0
    };
    core_client::call_service_batch(node, ids::MIGRATE, &slices, resps, timeout_ms, flags)
}

/// Like [`call`] for a message whose answer does not matter beyond success.
pub(crate) fn tell(node: u32, msg: &MigMsg<'_>, timeout_ms: u32) -> Result {
    let mut resp = [0u8; 16];
    call(node, msg, &mut resp, timeout_ms, Wait::Uninterruptible).map(|_| ())
}
