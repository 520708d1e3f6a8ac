/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C side of ssi_core's Rust/C boundary: functions the C shims export to Rust,
 * and Rust functions (#[no_mangle] extern "C") they call.
 */
#ifndef SSI_CORE_SHIM_H
#define SSI_CORE_SHIM_H

#include <linux/types.h>

struct seq_file;

/* chardev.c, called from device.rs */
int ssi_core_chardev_register(void);
void ssi_core_chardev_unregister(void);

/* device.rs: ioctl and release handlers of /dev/ssi */
struct file;
long ssi_core_ioctl(struct file *file, unsigned int cmd, unsigned long arg);
void ssi_core_file_release(struct file *file);

/* procfs.c, called from procfs.rs */
int ssi_core_proc_create(void);
void ssi_core_proc_remove(void);

/* procfs.rs: show callbacks of /proc/ssi files */
int ssi_core_proc_show_status(struct seq_file *m, void *v);
int ssi_core_proc_show_transports(struct seq_file *m, void *v);
int ssi_core_proc_show_nodes(struct seq_file *m, void *v);

/* procfs.rs */
int ssi_core_proc_show_kv(struct seq_file *m, void *v);

/* ticker.c, called from messaging.rs; it calls ssi_core_tick() (ffi.rs) */
void ssi_core_ticker_start(unsigned int period_ms);
void ssi_core_ticker_stop(void);
void ssi_core_tick(void);

/* The API exported to the other ssi modules is in the generated core_abi.h. */

/* region_shim.c, called from region_vm.rs */
struct file;
struct page;
struct vm_fault;
int ssi_region_backing_new(struct file **out);
int ssi_region_file_new(void *region, bool writable, struct file **out);
void ssi_region_zap(struct file *backing, u32 page);
long ssi_region_vm_mmap(struct file *file, unsigned long addr, unsigned long len, u32 prot,
			u64 pgoff, u32 how);
void *ssi_region_vma_region(struct vm_area_struct *vma);
int ssi_region_read_forced(unsigned long addr, void *buf);
int ssi_current_tgid(void);
void ssi_current_kill_process(void);
int ssi_core_hold(void);
void ssi_core_put(void);
void ssi_region_zap_all(struct file *backing);
unsigned int ssi_region_insert(struct vm_fault *vmf, struct page *page, bool writable);
void ssi_current_ids(u32 *uid, u32 *gid);
bool ssi_current_in_group(u32 gid);
bool ssi_current_dying(void);

/* region_vm.rs: called by region_shim.c */
void ssi_region_put(void *region);
void ssi_region_mapping_get(void *region);
void ssi_region_mapping_put(void *region);
bool ssi_region_is_private(void *region);
void ssi_region_opened(unsigned long start, unsigned long end);
int ssi_region_check_range(void *region, unsigned long pgoff, unsigned long pages);
struct file *ssi_region_map(void *region);
unsigned int ssi_region_fault(void *region, struct vm_fault *vmf, unsigned long pgoff,
			      bool write);
unsigned int ssi_region_mkwrite(void *region, struct vm_fault *vmf, unsigned long pgoff);

/* procfs.rs */
int ssi_core_proc_show_regions(struct seq_file *m, void *v);
int ssi_core_proc_show_ps(struct seq_file *m, void *v);
int ssi_core_proc_show_messages(struct seq_file *m, void *v);

#endif
