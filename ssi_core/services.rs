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

use crate::ffi::ServiceOpsRef;
use crate::in_use::{Counted, Use};
use crate::shared::ioctl::name_str;
use crate::shared::service::{ServiceError, ServiceTable, SSI_MAX_SERVICES};
use crate::shared::wire::{self, Header, Message, MAX_SERVICE_DATA};
use crate::{calls, errno, messaging};

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

/// A `Service` request from `node`: run the handler, send back its answer.
pub(crate) fn on_request(h: &Header, service: u16, data: &[u8]) {
    let node = u32::from(h.src);
    let answer = match use_of(service) {
        None => Err(errno::eopnotsupp()),
        Some(s) => match KVec::from_elem(0u8, MAX_SERVICE_DATA, GFP_KERNEL) {
            Err(e) => Err(Error::from(e)),
            Ok(mut resp) => s.handle(node, data, &mut resp).map(|n| {
                resp.truncate(n);
                resp
            }),
        },
    };
    let msg = match &answer {
        Ok(data) => Ok(Message::Service { service, data }),
        Err(e) => Err(*e),
    };
    messaging::answer(h, msg);
}

/// Calls `service` on `node` with `req`; copies the answer into `resp` and returns its
/// length.
pub(crate) fn call(
    node: u32,
    service: u16,
    req: &[u8],
    resp: &mut [u8],
    timeout_ms: u32,
) -> Result<usize> {
    if service == 0 || req.len() > MAX_SERVICE_DATA || timeout_ms == 0 || timeout_ms > 60_000 {
        return Err(EINVAL);
    }
    let answer = calls::call(node, &Message::Service { service, data: req }, timeout_ms)?;
    match wire::decode(&answer) {
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

/// Calls `f(id, name)` for each registered service.
pub(crate) fn for_each(mut f: impl FnMut(u16, &str)) {
    let table = SERVICES.lock();
    for (id, s) in table.iter() {
        let name = s.item().name();
        f(id, name_str(&name).unwrap_or("?"));
    }
}
