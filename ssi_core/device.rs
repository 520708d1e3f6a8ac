// SPDX-License-Identifier: GPL-2.0

//! `/dev/ssi`: the control device that `ssictl` talks to with ioctls.
//!
//! Registered by the C shim `chardev.c` (so that open files pin the module); the
//! ioctls are answered here.

use core::ffi::{c_int, c_long, c_uint, c_ulong, c_void};

use kernel::{error::to_result, prelude::*};

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

fn ioctl(cmd: u32, arg: usize) -> Result<isize> {
    match cmd {
        SSI_IOC_STATUS => {
            // 1.1 KiB: built on the heap, not the kernel stack (8 KiB on ARM).
            let mut st = KBox::init(pin_init::zeroed::<SsiStatus>(), GFP_KERNEL)?;
            registry::status(crate::node_id(), &mut st);
            user_slice(arg, size_of::<SsiStatus>())
                .writer()
                .write(&*st)?;
        }
        SSI_IOC_NODE_ADD => {
            if !may_administer() {
                return Err(EPERM);
            }
            let req: SsiNodeAddr = user_slice(arg, size_of::<SsiNodeAddr>()).reader().read()?;
            let (id, ip, port) = nodes::add(&req)?;
            dispatch::node_added(id, ip, port);
        }
        SSI_IOC_NODE_REMOVE => {
            if !may_administer() {
                return Err(EPERM);
            }
            let id: u32 = user_slice(arg, size_of::<u32>()).reader().read()?;
            nodes::remove(id)?;
            dispatch::node_removed(id);
        }
        SSI_IOC_NODES => {
            // 1.5 KiB: built on the heap, not the kernel stack.
            let mut list = KBox::init(pin_init::zeroed::<SsiNodeList>(), GFP_KERNEL)?;
            nodes::list(&mut list, kvstore::version());
            user_slice(arg, size_of::<SsiNodeList>())
                .writer()
                .write(&*list)?;
        }
        SSI_IOC_PING => {
            if !may_administer() {
                return Err(EPERM);
            }
            let slice = user_slice(arg, size_of::<SsiPing>());
            let (mut reader, mut writer) = slice.reader_writer();
            let mut req: SsiPing = reader.read()?;
            req.rtt_ns = ping(&req)?;
            writer.write(&req)?;
        }
        SSI_IOC_KV_PUT => {
            if !may_administer() {
                return Err(EPERM);
            }
            let slice = user_slice(arg, size_of::<SsiKv>());
            let (mut reader, mut writer) = slice.reader_writer();
            let mut req: SsiKv = reader.read()?;
            let (key, value) = kv_fields(&req)?;
            req.version = kvstore::put(key, value)?;
            writer.write(&req)?;
        }
        SSI_IOC_KV_GET => {
            let slice = user_slice(arg, size_of::<SsiKv>());
            let (mut reader, mut writer) = slice.reader_writer();
            let mut req: SsiKv = reader.read()?;
            let (key, _) = kv_fields(&req)?;
            let mut value = [0u8; 192];
            let key_copy = req.key;
            let (n, version) = kvstore::get(&key_copy[..key.len()], &mut value)?;
            req.value = value;
            // At most 192.
            req.value_len = n as u32;
            req.version = version;
            writer.write(&req)?;
        }
        SSI_IOC_PAGE_EXPOSE => {
            if !may_administer() {
                return Err(EPERM);
            }
            let slice = user_slice(arg, size_of::<SsiPageExpose>());
            let (mut reader, mut writer) = slice.reader_writer();
            let mut req: SsiPageExpose = reader.read()?;
            let mut data = KBox::new([0u8; SSI_PAGE_SIZE], GFP_KERNEL)?;
            user_slice(req.data_ptr as usize, SSI_PAGE_SIZE)
                .reader()
                .read_slice(&mut data[..])?;
            req.handle = pages::expose(&data)?;
            writer.write(&req)?;
        }
        SSI_IOC_PAGE_UNEXPOSE => {
            if !may_administer() {
                return Err(EPERM);
            }
            let handle: u64 = user_slice(arg, size_of::<u64>()).reader().read()?;
            pages::unexpose(handle)?;
        }
        SSI_IOC_PAGE_READ => {
            if !may_administer() {
                return Err(EPERM);
            }
            let slice = user_slice(arg, size_of::<SsiPageRead>());
            let (mut reader, mut writer) = slice.reader_writer();
            let mut req: SsiPageRead = reader.read()?;
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
            writer.write(&req)?;
        }
        SSI_IOC_SERVICE_CALL => {
            if !may_administer() {
                return Err(EPERM);
            }
            let slice = user_slice(arg, size_of::<SsiServiceCall>());
            let (mut reader, mut writer) = slice.reader_writer();
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
        }
        SSI_IOC_REGION_CREATE | SSI_IOC_REGION_OPEN => {
            let slice = user_slice(arg, size_of::<SsiRegion>());
            let (mut reader, mut writer) = slice.reader_writer();
            let mut req: SsiRegion = reader.read()?;
            let opened = if cmd == SSI_IOC_REGION_CREATE {
                regions::create(&mut req)?
            } else {
                regions::open(&mut req)?
            };
            let fd = region_vm::RegionFd::new(opened.region, opened.writable)?;
            // Installed only once the answer is out: a failed copy leaks no descriptor.
            writer.write(&req)?;
            return Ok(fd.install() as isize);
        }
        SSI_IOC_REGION_REMOVE => {
            let req: SsiRegion = user_slice(arg, size_of::<SsiRegion>()).reader().read()?;
            regions::remove(&req)?;
        }
        SSI_IOC_REGIONS => {
            // 9.5 KiB: built on the heap.
            let mut list = KBox::init(pin_init::zeroed::<SsiRegionList>(), GFP_KERNEL)?;
            regions::list(&mut list);
            user_slice(arg, size_of::<SsiRegionList>())
                .writer()
                .write(&*list)?;
        }
        _ => return Err(ENOTTY),
    }
    Ok(0)
}

/// ioctl handler of `/dev/ssi`, called by `chardev.c`.
/// One ping: returns the round trip in nanoseconds.
fn ping(req: &SsiPing) -> Result<u64> {
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
