// SPDX-License-Identifier: GPL-2.0
/*
 * Exports ssi_core's C-ABI entry points (defined in Rust, ffi.rs) to the other ssi
 * modules. Kbuild cannot link one Rust module crate against another, so the modules
 * talk through these symbols and the #[repr(C)] ops tables of rust/src.
 */
#include <linux/export.h>

#include "shim.h"

EXPORT_SYMBOL_GPL(ssi_transport_register);
EXPORT_SYMBOL_GPL(ssi_transport_unregister);
EXPORT_SYMBOL_GPL(ssi_migrate_register);
EXPORT_SYMBOL_GPL(ssi_migrate_unregister);
EXPORT_SYMBOL_GPL(ssi_core_node_id);
EXPORT_SYMBOL_GPL(ssi_core_incarnation);
EXPORT_SYMBOL_GPL(ssi_core_deliver);
EXPORT_SYMBOL_GPL(ssi_core_link_event);
EXPORT_SYMBOL_GPL(ssi_service_register);
EXPORT_SYMBOL_GPL(ssi_service_unregister);
EXPORT_SYMBOL_GPL(ssi_service_call);
EXPORT_SYMBOL_GPL(ssi_service_reply);
EXPORT_SYMBOL_GPL(ssi_service_call_batch);
EXPORT_SYMBOL_GPL(ssi_core_node_up);
