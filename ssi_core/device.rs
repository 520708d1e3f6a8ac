// SPDX-License-Identifier: GPL-2.0

//! `/dev/ssi`: the control device that `ssictl` talks to with ioctls.
//!
//! Registered by the C shim `chardev.c` (so that open files pin the module); the
//! ioctls are answered here.

use core::ffi::{c_int, c_long, c_uint, c_ulong, c_void};

use kernel::{
    error::to_result,
    prelude::*,
    transmute::{AsBytes, FromBytes},
};

use crate::caller::{may_administer, user_slice};
use crate::shared::ioctl::{
    SsiKv, SsiNodeAddr, SsiNodeList, SsiPageExpose, SsiPageRead, SsiPing, SsiRegion, SsiRegionList,
    SsiServiceCall, SsiStatus, SSI_IOC_KV_GET, SSI_IOC_KV_PUT, SSI_IOC_MAGIC,
    SSI_IOC_MIGRATE_FIRST_NR, SSI_IOC_MIGRATE_LAST_NR, SSI_IOC_NODES, SSI_IOC_NODE_ADD,
    SSI_IOC_NODE_REMOVE, SSI_IOC_PAGE_EXPOSE, SSI_IOC_PAGE_READ, SSI_IOC_PAGE_UNEXPOSE,
    SSI_IOC_PING, SSI_IOC_REGIONS, SSI_IOC_REGION_CREATE, SSI_IOC_REGION_OPEN,
    SSI_IOC_REGION_REMOVE, SSI_IOC_SERVICE_CALL, SSI_IOC_STATUS, SSI_PAGE_SIZE,
};
use crate::shared::wire::{Message, MAX_PING};
use crate::{
    calls, clock, dispatch, kvstore, nodes, pages, region_vm, regions, registry, services,
};

extern "C" {
    fn ssi_core_chardev_register() -> c_int;
    fn ssi_core_chardev_unregister();
}

kernel_plain_data!(
    SsiStatus,
    SsiNodeList,
    SsiNodeAddr,
    SsiPing,
    SsiKv,
    SsiPageExpose,
    SsiPageRead,
    SsiServiceCall,
    SsiRegion,
    SsiRegionList,
);

/// Owns the `/dev/ssi` registration; deregisters when dropped.
pub(crate) struct ControlDevice(());

impl ControlDevice {
    /// Creates `/dev/ssi` (mode 0666: see `chardev.c`).
    pub(crate) fn register() -> Result<Self> {
        // SAFETY: No preconditions; only one `ControlDevice` exists (owned by the module).
        to_result(unsafe { ssi_core_chardev_register() })?;
        Ok(Self(()))
    }
}

impl Drop for ControlDevice {
    fn drop(&mut self) {
        // SAFETY: Registered in `register`. No ioctl can be running or start after
        // this: open files hold a reference on the module, so module exit (the only
        // place this runs) happens only once all of them are closed.
        unsafe { ssi_core_chardev_unregister() };
    }
}

/// Who may issue a command.
#[derive(PartialEq, Eq)]
enum Access {
    /// Any user who can open `/dev/ssi` (mode 0666); the handler applies finer rules
    /// (region permissions) itself.
    Anyone,
    /// Only a cluster administrator (`CAP_SYS_ADMIN`).
    Admin,
}

/// One ioctl of `/dev/ssi`: its number, who may issue it and its handler, which gets
/// the argument and returns the ioctl's value.
struct Command {
    cmd: u32,
    access: Access,
    handle: fn(arg: usize) -> Result<isize>,
}

impl Command {
    const fn anyone(cmd: u32, handle: fn(usize) -> Result<isize>) -> Self {
        Self {
            cmd,
            access: Access::Anyone,
            handle,
        }
    }

    const fn admin(cmd: u32, handle: fn(usize) -> Result<isize>) -> Self {
        Self {
            cmd,
            access: Access::Admin,
            handle,
        }
    }
}

/// Every ioctl core answers itself (the migration ones go to the engine).
const COMMANDS: &[Command] = &[
    Command::anyone(SSI_IOC_STATUS, status),
    Command::admin(SSI_IOC_NODE_ADD, node_add),
    Command::admin(SSI_IOC_NODE_REMOVE, node_remove),
    Command::anyone(SSI_IOC_NODES, node_list),
    Command::admin(SSI_IOC_PING, ping),
    Command::admin(SSI_IOC_KV_PUT, kv_put),
    Command::anyone(SSI_IOC_KV_GET, kv_get),
    Command::admin(SSI_IOC_PAGE_EXPOSE, page_expose),
    Command::admin(SSI_IOC_PAGE_UNEXPOSE, page_unexpose),
    Command::admin(SSI_IOC_PAGE_READ, page_read),
    Command::admin(SSI_IOC_SERVICE_CALL, service_call),
    Command::anyone(SSI_IOC_REGION_CREATE, region_create),
    Command::anyone(SSI_IOC_REGION_OPEN, region_open),
    Command::anyone(SSI_IOC_REGION_REMOVE, region_remove),
    Command::anyone(SSI_IOC_REGIONS, region_list),
];

fn ioctl(cmd: u32, arg: usize) -> Result<isize> {
    let command = COMMANDS.iter().find(|c| c.cmd == cmd).ok_or(ENOTTY)?;
    if command.access == Access::Admin && !may_administer() {
        return Err(EPERM);
    }
    (command.handle)(arg)
}

/// Reads the `T` at `arg`, lets `answer` fill in its answer fields, and writes it back.
fn exchange<T: AsBytes + FromBytes>(
    arg: usize,
    answer: impl FnOnce(&mut T) -> Result,
) -> Result<isize> {
    let (mut reader, mut writer) = user_slice(arg, size_of::<T>()).reader_writer();
    let mut req: T = reader.read()?;
    answer(&mut req)?;
    writer.write(&req)?;
    Ok(0)
}

/// Builds a large answer on the heap (the kernel stack is 8 KiB on ARM) and writes it
/// to `arg`.
fn write_zeroed<T: AsBytes + Zeroable>(arg: usize, fill: impl FnOnce(&mut T)) -> Result<isize> {
    let mut out = KBox::init(pin_init::zeroed::<T>(), GFP_KERNEL)?;
    fill(&mut out);
    user_slice(arg, size_of::<T>()).writer().write(&*out)?;
    Ok(0)
}

/// `SSI_IOC_STATUS`: this node, the ABI and the registered transports.
fn status(arg: usize) -> Result<isize> {
    write_zeroed(arg, |st: &mut SsiStatus| {
        registry::status(crate::node_id(), st)
    })
}

/// `SSI_IOC_NODE_ADD`: configures a peer; every transport starts reaching it.
fn node_add(arg: usize) -> Result<isize> {
    let req: SsiNodeAddr = user_slice(arg, size_of::<SsiNodeAddr>()).reader().read()?;
    let (id, ip, port) = nodes::add(&req)?;
    dispatch::node_added(id, ip, port);
    Ok(0)
}

/// `SSI_IOC_NODE_REMOVE`: forgets a peer.
fn node_remove(arg: usize) -> Result<isize> {
    let id: u32 = user_slice(arg, size_of::<u32>()).reader().read()?;
    nodes::remove(id)?;
    dispatch::node_removed(id);
    Ok(0)
}

/// `SSI_IOC_NODES`: this node and its peers.
fn node_list(arg: usize) -> Result<isize> {
    write_zeroed(arg, |list: &mut SsiNodeList| {
        nodes::list(list, kvstore::version())
    })
}

/// `SSI_IOC_PING`: one round trip to a node.
fn ping(arg: usize) -> Result<isize> {
    exchange(arg, |req: &mut SsiPing| {
        req.rtt_ns = ping_once(req)?;
        Ok(())
    })
}

/// `SSI_IOC_KV_PUT`: a write to the bookkeeping store, through the leader.
fn kv_put(arg: usize) -> Result<isize> {
    exchange(arg, |req: &mut SsiKv| {
        let (key, value) = kv_fields(req)?;
        req.version = kvstore::put(key, value)?;
        Ok(())
    })
}

/// `SSI_IOC_KV_GET`: a read of this node's copy of the store.
fn kv_get(arg: usize) -> Result<isize> {
    exchange(arg, |req: &mut SsiKv| {
        let (key, _) = kv_fields(req)?;
        let mut value = [0u8; 192];
        let key_copy = req.key;
        let (n, version) = kvstore::get(&key_copy[..key.len()], &mut value)?;
        req.value = value;
        // At most 192.
        req.value_len = n as u32;
        req.version = version;
        Ok(())
    })
}

/// `SSI_IOC_PAGE_EXPOSE`: lets peers read a page of the caller's data.
fn page_expose(arg: usize) -> Result<isize> {
    exchange(arg, |req: &mut SsiPageExpose| {
        let mut data = KBox::new([0u8; SSI_PAGE_SIZE], GFP_KERNEL)?;
        user_slice(req.data_ptr as usize, SSI_PAGE_SIZE)
            .reader()
            .read_slice(&mut data[..])?;
        req.handle = pages::expose(&data)?;
        Ok(())
    })
}

/// `SSI_IOC_PAGE_UNEXPOSE`: revokes an exposed page.
fn page_unexpose(arg: usize) -> Result<isize> {
    let handle: u64 = user_slice(arg, size_of::<u64>()).reader().read()?;
    pages::unexpose(handle)?;
    Ok(0)
}

/// `SSI_IOC_PAGE_READ`: reads a page a peer exposed, `repeat` times, with timings.
fn page_read(arg: usize) -> Result<isize> {
    exchange(arg, |req: &mut SsiPageRead| {
        if req.repeat == 0 || req.repeat > 100_000 {
            return Err(EINVAL);
        }
        let mut data = KBox::new([0u8; SSI_PAGE_SIZE], GFP_KERNEL)?;
        let stats = pages::read_remote(req.node_id, req.handle, req.repeat, &mut data)?;
        user_slice(req.data_ptr as usize, SSI_PAGE_SIZE)
            .writer()
            .write_slice(&data[..])?;
        req.min_ns = stats.min_ns;
        req.median_ns = stats.median_ns;
        req.max_ns = stats.max_ns;
        Ok(())
    })
}

/// `SSI_IOC_SERVICE_CALL`: calls a registered service on a node.
fn service_call(arg: usize) -> Result<isize> {
    let (mut reader, mut writer) = user_slice(arg, size_of::<SsiServiceCall>()).reader_writer();
    // Over 8 KiB: on the heap.
    let mut req = KBox::<SsiServiceCall>::new(reader.read()?, GFP_KERNEL)?;
    if req.flags != 0 || req.reserved != 0 || req.req_len as usize > req.req.len() {
        return Err(EINVAL);
    }
    let timeout = if req.timeout_ms == 0 {
        1000
    } else {
        req.timeout_ms
    };
    let request = req.req;
    let mut resp = [0u8; crate::shared::ioctl::SSI_SERVICE_CALL_MAX];
    let n = services::call(
        req.node_id,
        req.service,
        &request[..req.req_len as usize],
        &mut resp,
        timeout,
        true,
    )?;
    req.resp = resp;
    // At most SSI_SERVICE_CALL_MAX.
    req.resp_len = n as u32;
    writer.write(&*req)?;
    Ok(0)
}

/// Answers a region create or open with a new descriptor of the region, installed only
/// once the answer is out, so a failed copy leaks none.
fn region_fd(arg: usize, open: fn(&mut SsiRegion) -> Result<regions::Opened>) -> Result<isize> {
    let (mut reader, mut writer) = user_slice(arg, size_of::<SsiRegion>()).reader_writer();
    let mut req: SsiRegion = reader.read()?;
    let opened = open(&mut req)?;
    let fd = region_vm::RegionFd::new(opened.region, opened.writable)?;
    writer.write(&req)?;
    Ok(fd.install() as isize)
}

/// `SSI_IOC_REGION_CREATE`: a new region homed here; returns a read-write descriptor.
fn region_create(arg: usize) -> Result<isize> {
    region_fd(arg, regions::create)
}

/// `SSI_IOC_REGION_OPEN`: an existing region; returns a descriptor.
fn region_open(arg: usize) -> Result<isize> {
    region_fd(arg, regions::open)
}

/// `SSI_IOC_REGION_REMOVE`: removes a region (its owner or an administrator).
fn region_remove(arg: usize) -> Result<isize> {
    let req: SsiRegion = user_slice(arg, size_of::<SsiRegion>()).reader().read()?;
    regions::remove(&req)?;
    Ok(0)
}

/// `SSI_IOC_REGIONS`: the regions known here.
fn region_list(arg: usize) -> Result<isize> {
    write_zeroed(arg, |list: &mut SsiRegionList| regions::list(list))
}

/// One ping: returns the round trip in nanoseconds.
fn ping_once(req: &SsiPing) -> Result<u64> {
    if req.reserved != 0 || req.payload_len as usize > MAX_PING || req.timeout_ms > 60_000 {
        return Err(EINVAL);
    }
    let timeout = if req.timeout_ms == 0 {
        1000
    } else {
        req.timeout_ms
    };
    let mut payload = KVec::with_capacity(req.payload_len as usize, GFP_KERNEL)?;
    for i in 0..req.payload_len {
        // The low byte of the index: a pattern the answer must echo.
        payload.push(i as u8, GFP_KERNEL)?;
    }
    let t0 = clock::now_ns();
    let answer = calls::call(req.node_id, &Message::Ping { data: &payload }, timeout)?;
    let rtt = clock::now_ns().saturating_sub(t0);
    match crate::shared::wire::decode(&answer) {
        Ok((_, Message::Ping { data })) if data == &payload[..] => Ok(rtt),
        _ => Err(crate::errno::eproto()),
    }
}

/// The key and value of an `SsiKv`, bounds-checked.
fn kv_fields(req: &SsiKv) -> Result<(&[u8], &[u8])> {
    let (k, v) = (req.key_len as usize, req.value_len as usize);
    if k == 0 || k > req.key.len() || v > req.value.len() {
        return Err(EINVAL);
    }
    Ok((&req.key[..k], &req.value[..v]))
}

/// ioctl handler of `/dev/ssi`, called by `chardev.c`. The migration ioctls go to the
/// migration engine, with the open file as the identity of the caller's descriptor.
#[no_mangle]
extern "C" fn ssi_core_ioctl(file: *const c_void, cmd: c_uint, arg: c_ulong) -> c_long {
    let nr = cmd & 0xff;
    if (cmd >> 8) & 0xff == SSI_IOC_MAGIC
        && (SSI_IOC_MIGRATE_FIRST_NR..=SSI_IOC_MIGRATE_LAST_NR).contains(&nr)
    {
        return match registry::migrate_use() {
            // `unsigned long` and `usize` (and `long` and `isize`) have the same size on
            // every Linux target.
            Some(engine) => engine.ioctl(file, cmd, arg as usize) as c_long,
            None => {
                pr_info!("migration ioctl without ssi_migrate loaded\n");
                c_long::from(crate::errno::eopnotsupp().to_errno())
            }
        };
    }
    // `unsigned long` and `usize` have the same size on every Linux target.
    match ioctl(cmd, arg as usize) {
        Ok(v) => v as c_long,
        Err(e) => c_long::from(e.to_errno()),
    }
}

/// Release handler of `/dev/ssi`, called by `chardev.c`.
#[no_mangle]
extern "C" fn ssi_core_file_release(file: *const c_void) {
    if let Some(engine) = registry::migrate_use() {
        engine.release(file);
    }
}
