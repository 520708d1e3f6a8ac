// SPDX-License-Identifier: GPL-2.0
/*
 * Exports ssi_core's C-ABI entry points (defined in Rust, ffi.rs) to the other ssi
 * modules. Kbuild cannot link one Rust module crate against another, so the modules
 * talk through these symbols and the #[repr(C)] ops tables of rust/src. The list and
 * the prototypes come from rust/kmod/core_abi.rs, through the generated core_abi.h.
 */
#include <linux/export.h>

#include "core_abi.h"

#define SSI_CORE_EXPORT(name) EXPORT_SYMBOL_GPL(name);
SSI_CORE_ABI(SSI_CORE_EXPORT)
