/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C side of ssi_core's Rust/C boundary: functions the C shims export to Rust,
 * and Rust functions (#[no_mangle] extern "C") they call.
 */
#ifndef SSI_CORE_SHIM_H
#define SSI_CORE_SHIM_H

#include <linux/types.h>

struct seq_file;
struct ssi_transport_ops;
struct ssi_migrate_ops;
struct ssi_service_ops;

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

/* ffi.rs: the API exported to the other ssi modules (see exports.c) */
int ssi_transport_register(const struct ssi_transport_ops *ops);
void ssi_transport_unregister(int id);
int ssi_migrate_register(const struct ssi_migrate_ops *ops);
void ssi_migrate_unregister(void);
u32 ssi_core_node_id(void);
u32 ssi_core_incarnation(void);
void ssi_core_deliver(const struct ssi_transport_ops *ops, u32 node, const u8 *frame,
		      size_t len);
void ssi_core_link_event(const struct ssi_transport_ops *ops, u32 node, bool up);
int ssi_service_register(const struct ssi_service_ops *ops);
void ssi_service_unregister(u16 service);
void ssi_service_reply(u64 token, u16 service, const u8 *data, size_t len, int err);
bool ssi_core_node_up(u32 node);
struct ssi_service_buf;
int ssi_service_call_batch(u32 node, u16 service, const struct ssi_service_buf *reqs,
			   struct ssi_service_buf *resps, size_t n, u32 timeout_ms, u32 flags);
ssize_t ssi_service_call(u32 node, u16 service, const u8 *req, size_t len, u8 *resp,
			 size_t cap, u32 timeout_ms, u32 flags);

/* region_shim.c, called from region_vm.rs */
struct file;
struct page;
struct vm_fault;
int ssi_region_backing_new(struct file **out);
void ssi_region_backing_put(struct file *backing);
int ssi_region_file_new(void *region, bool writable, struct file **out);
int ssi_region_fd_reserve(void);
void ssi_region_fd_install(int fd, struct file *file);
void ssi_region_fd_abandon(int fd, struct file *file);
void ssi_region_zap(struct file *backing, u32 page);
void ssi_region_zap_all(struct file *backing);
unsigned int ssi_region_insert(struct vm_fault *vmf, struct page *page, bool writable);
void ssi_current_ids(u32 *uid, u32 *gid);
bool ssi_current_in_group(u32 gid);
bool ssi_current_dying(void);

/* region_vm.rs: called by region_shim.c */
void ssi_region_put(void *region);
void ssi_region_mapping_get(void *region);
void ssi_region_mapping_put(void *region);
int ssi_region_check_range(void *region, unsigned long pgoff, unsigned long pages);
struct file *ssi_region_map(void *region);
unsigned int ssi_region_fault(void *region, struct vm_fault *vmf, unsigned long pgoff,
			      bool write);
unsigned int ssi_region_mkwrite(void *region, struct vm_fault *vmf, unsigned long pgoff);

/* procfs.rs */
int ssi_core_proc_show_regions(struct seq_file *m, void *v);
int ssi_core_proc_show_ps(struct seq_file *m, void *v);

#endif
