// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/ssi: a thin shim, since the kernel crate has no procfs abstraction. Each file
 * is a single_open seq_file whose show callback is implemented in Rust (procfs.rs).
 * proc_remove() waits for running show callbacks, so removal in module exit is safe.
 */
#include <linux/proc_fs.h>
#include <linux/seq_file.h>

#include "shim.h"

static struct proc_dir_entry *ssi_proc_dir;

int ssi_core_proc_create(void)
{
	ssi_proc_dir = proc_mkdir("ssi", NULL);
	if (!ssi_proc_dir)
		return -ENOMEM;
	if (!proc_create_single("status", 0444, ssi_proc_dir, ssi_core_proc_show_status) ||
	    !proc_create_single("transports", 0444, ssi_proc_dir,
				ssi_core_proc_show_transports) ||
	    !proc_create_single("nodes", 0444, ssi_proc_dir, ssi_core_proc_show_nodes) ||
	    !proc_create_single("kv", 0444, ssi_proc_dir, ssi_core_proc_show_kv) ||
	    !proc_create_single("regions", 0444, ssi_proc_dir, ssi_core_proc_show_regions) ||
	    !proc_create_single("ps", 0444, ssi_proc_dir, ssi_core_proc_show_ps) ||
	    !proc_create_single("messages", 0444, ssi_proc_dir, ssi_core_proc_show_messages)) {
		proc_remove(ssi_proc_dir);
		ssi_proc_dir = NULL;
		return -ENOMEM;
	}
	return 0;
}

void ssi_core_proc_remove(void)
{
	proc_remove(ssi_proc_dir);
	ssi_proc_dir = NULL;
}
