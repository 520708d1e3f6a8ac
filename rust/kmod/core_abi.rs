// SPDX-License-Identifier: GPL-2.0

//! The one list of the C-ABI functions `ssi_core` exports to the other ssi modules.
//!
//! Kbuild cannot link one Rust module crate against another, so the modules call each
//! other through exported C symbols, and each such function used to be written out three
//! times by hand: defined in `ssi_core/ffi.rs`, declared in `rust/kmod/core_client.rs`
//! for the calling modules, and declared again in C for `EXPORT_SYMBOL_GPL`. Nothing
//! checked that the three agreed. Now [`ssi_core_abi!`] is the only place a signature is
//! written, and every use is derived from it:
//!
//! - the calling modules' `extern "C"` block ([`declare_core_abi!`], in `core_client.rs`);
//! - a compile-time check in `ssi_core` that each definition has the listed type
//!   ([`check_core_abi!`], in `ffi.rs`): a definition that differs fails the build;
//! - `ssi_core/core_abi.h`, the C prototypes and the `SSI_CORE_ABI(X)` list that
//!   `exports.c` exports, which Kbuild generates from this file with `core_abi_h.awk`.
//!
//! The generator reads the lines between the `BEGIN`/`END` markers below, so each entry
//! stays on one line, in the form `fn name(arg: Type, ...) -> Ret;`, using only the types
//! it knows: `u8`..`u64`, `usize`, `isize`, `bool`, `c_int`, `c_void`, pointers
//! (`*const T`, `*mut T`) and the `#[repr(C)]` structs of `rust/src`, whose C name is the
//! snake-case form of the Rust one (`SsiServiceOps` is `struct ssi_service_ops`). Those
//! names must be in scope where the list is expanded.

/// Expands `$then! { fn name(args) -> ret; ... }` with every exported function.
macro_rules! ssi_core_abi {
    ($then:ident) => {
        $then! {
            // BEGIN ssi_core ABI
            fn ssi_transport_register(ops: *const SsiTransportOps) -> c_int;
            fn ssi_transport_unregister(id: c_int);
            fn ssi_migrate_register(ops: *const SsiMigrateOps) -> c_int;
            fn ssi_migrate_unregister();
            fn ssi_core_node_id() -> u32;
            fn ssi_core_incarnation() -> u32;
            fn ssi_core_deliver(ops: *const SsiTransportOps, node: u32, frame: *const u8, len: usize);
            fn ssi_core_link_event(ops: *const SsiTransportOps, node: u32, up: bool);
            fn ssi_core_node_up(node: u32) -> bool;
            fn ssi_service_register(ops: *const SsiServiceOps) -> c_int;
            fn ssi_service_unregister(service: u16);
            fn ssi_service_call(node: u32, service: u16, req: *const u8, len: usize, resp: *mut u8, cap: usize, timeout_ms: u32, flags: u32) -> isize;
            fn ssi_service_call_batch(node: u32, service: u16, reqs: *const SsiServiceBuf, resps: *mut SsiServiceBuf, n: usize, timeout_ms: u32, flags: u32) -> c_int;
            fn ssi_service_reply(token: u64, service: u16, data: *const u8, len: usize, err: c_int);
            fn ssi_region_private_create(pages: u32, generation: *mut u64) -> c_int;
            fn ssi_region_private_adopt(generation: u64, first: u32, addr: usize, pages: u32, forced: bool) -> c_int;
            fn ssi_region_private_map(home: u32, generation: u64, pages: u32, addr: usize, len: usize, pgoff: u64, prot: u32, how: u32) -> isize;
            fn ssi_region_private_remove(generation: u64) -> c_int;
            fn ssi_region_private_of_vma(vma: *mut c_void, pages: *mut u32) -> u64;
            // END ssi_core ABI
        }
    };
}

/// The `extern "C"` declarations of the listed functions, for the calling modules.
#[allow(unused_macros)] // ssi_core defines the functions instead.
macro_rules! declare_core_abi {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;)*) => {
        extern "C" {
            $(fn $name($($arg: $ty),*) $(-> $ret)?;)*
        }
    };
}

/// Fails the build unless each listed function is defined in scope with exactly the
/// listed parameter and return types (a safe definition is accepted where the list is
/// used: it coerces to the `unsafe` pointer type).
#[allow(unused_macros)] // Used by ssi_core only.
macro_rules! check_core_abi {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;)*) => {
        const _: () = {
            $(let _: unsafe extern "C" fn($($ty),*) $(-> $ret)? = $name;)*
        };
    };
}
