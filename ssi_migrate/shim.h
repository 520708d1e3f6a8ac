/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C side of ssi_migrate's Rust/C boundary. task_shim.c does what has no kernel
 * crate abstraction: task lookup and permission checks, task_work, register and FPU
 * snapshots (regsets), the VMA walk, the address-space rebuild (vm_munmap/vm_mmap), the
 * signal frame that rt_sigreturn restores, the fault handler of migrated memory and the
 * forwarded standard streams. The layouts below are mirrored in rust/src/migrate_wire.rs
 * (sizes checked on both sides).
 */
#ifndef SSI_MIGRATE_SHIM_H
#define SSI_MIGRATE_SHIM_H

#include <linux/types.h>

struct task_struct;
struct file;
struct vm_area_struct;

/* Memory-layout facts of a process (struct mm_struct fields and the saved auxv). */
#define SSI_AUXV_WORDS 64
struct ssi_mm_info {
	u64 start_code, end_code, start_data, end_data;
	u64 start_brk, brk, start_stack;
	u64 arg_start, arg_end, env_start, env_end;
	u64 auxv_words;
	u64 auxv[SSI_AUXV_WORDS];
	u64 process;
	u32 home_tgid, home_ppid;
};

/* One VMA. */
#define SSI_VMA_READ 0x1
#define SSI_VMA_WRITE 0x2
#define SSI_VMA_EXEC 0x4
#define SSI_VMA_GROWSDOWN 0x8
/* A special mapping ([vdso], [vvar], ...): moved into place, not copied. */
#define SSI_VMA_SPECIAL 0x10
/* Backed by a file on the source (contents still come from the source). */
#define SSI_VMA_FILE 0x20
/* A private-memory region of a distributed process (region = its generation). */
#define SSI_VMA_REGION 0x40
#define SSI_VMA_NAME_LEN 32
struct ssi_vma_info {
	u64 start, end, pgoff, flags;
	char name[SSI_VMA_NAME_LEN];
	u64 region;
	u32 region_pages, reserved;
};

/* What decides whether the caller may migrate a task (rust/src/migrate_target.rs). */
struct ssi_target_facts {
	u32 pid;
	bool kernel_thread, init, is_caller, exiting;
	bool caller_has_its_ids, dumpable, caller_may_ptrace, group_leader;
	u32 threads;
};

/* Why something failed, for the caller's message. */
#define SSI_WHY_LEN 128

/* A process that maps device memory, and the mapping ("/dev/gpiomem at 0x..."). */
struct ssi_pinned {
	u32 pid;
	char comm[16];
	char why[SSI_WHY_LEN];
};

/* task_shim.c: called from Rust */
void ssi_mig_module_put(void);
int ssi_mig_task_pid(struct task_struct *t);
void ssi_mig_task_comm(struct task_struct *t, char *buf);
void ssi_mig_target_facts(struct task_struct *t, struct ssi_target_facts *f);
int ssi_mig_queue_work(struct task_struct *t, void *ctx);
ssize_t ssi_mig_capture(void *state, size_t cap, struct ssi_mm_info *mm,
			struct ssi_vma_info *vmas, u32 max_vmas, u32 *nr_vmas, u32 node,
			bool thread, char *why);
int ssi_mig_hold_module(void);
int ssi_mig_install_standin_fd(void);
int ssi_mig_scan_pinned(struct ssi_pinned *out, u32 max);
int ssi_mig_fd_readable(int fd);
void ssi_mig_identity(u32 *ids, u32 *umask, u32 *groups, u32 max_groups, u32 *ngroups,
		      char *comm, char *cwd, size_t cwd_len);
int ssi_mig_restore(struct file *pages, const struct ssi_mm_info *mm,
		    const struct ssi_vma_info *vmas, u32 nr_vmas, const void *state,
		    size_t len, u32 home, char *why);

/* A private writable mapping that a distributed process keeps in a region. */
/* What ssi_private_range.flags says of a range's pages. */
#define SSI_RANGE_EMPTY 1      /* never faulted in: nothing to copy */
#define SSI_RANGE_UNREADABLE 2 /* PROT_NONE or write-only: copied with forced reads */
/* The most pages a range may have: a region's limit (rust/src/region.rs MAX_PAGES). */
#define SSI_RANGE_MAX_PAGES (1UL << 20)

/* A piece of a private-memory region mapping (ssi_mig_closed_region_in). */
struct ssi_region_piece {
	u64 start, end, region, pgoff;
	u32 region_pages;
	u32 reserved;
};
bool ssi_mig_closed_region_in(unsigned long addr, unsigned long len,
			      struct ssi_region_piece *p);

struct ssi_private_range {
	u64 start, end;
	u32 prot;
	u32 flags;
};
int ssi_mig_private_ranges(struct ssi_private_range *out, u32 max, char *why);
struct task_struct *ssi_mig_task_leader(struct task_struct *t);
int ssi_mig_siblings(struct task_struct *of, struct task_struct **out, u32 max);
int ssi_mig_queue_park(struct task_struct *t, void *ctx);
void ssi_mig_put_task(struct task_struct *t);
int ssi_mig_wait_exiting_siblings(void);
int ssi_mig_dequeue_thread_signal(void);
void __noreturn ssi_mig_thread_exit(int status, bool group);
void ssi_mig_reaper_stop(void);

/* distributed.c */
int ssi_mig_dist_add(u64 id, u32 home);
int ssi_mig_dist_current(u64 *id, u32 *home);
void ssi_mig_dist_set_home_ids(u32 tgid, u32 ppid, u32 tid);
int ssi_mig_dist_kill(u64 id, u32 tgid, u32 tid, int sig);
int ssi_mig_dist_count(void);
int ssi_mig_dist_home(u64 id, u32 *home);
int ssi_mig_dist_mms(u64 id, bool home_only, struct mm_struct **out, u32 max);
void ssi_mig_mm_use(struct mm_struct *mm);
void ssi_mig_mm_unuse(struct mm_struct *mm);
void ssi_mig_mm_put(struct mm_struct *mm);
u64 ssi_mig_mm_token(void);
int ssi_mig_unmap_alike(unsigned long addr, unsigned long len);
bool ssi_mig_file_regular(struct file *file);
long ssi_mig_file_name(struct file *file, char *buf, u32 len, u64 *size, u64 *mtime_ns);
struct file *ssi_mig_open_alike(struct mm_struct *mm, const char *path, u64 size, u64 mtime_ns);
long ssi_mig_map_file(struct file *file, unsigned long addr, unsigned long len, u32 prot,
		      u32 placement, u64 pgoff);
int ssi_mig_fill_from_file(struct file *file, unsigned long addr, unsigned long len, u64 pgoff);
u64 ssi_mig_region_at(unsigned long addr);
void ssi_mig_dist_stop(void);
int ssi_mig_hooks_install(void);
void ssi_mig_hooks_remove(void);
int ssi_mig_futex_read(unsigned long uaddr, u32 *val);
int ssi_mig_futex_cmpxchg(unsigned long uaddr, u32 oldval, u32 newval, u32 *old);
s64 ssi_mig_ns_until(s64 deadline, bool realtime);
struct file *ssi_mig_pages_file(void *ctx); /* owns @ctx, also when it fails */
bool ssi_mig_is_pages_file(struct file *file);
int ssi_mig_source_addr(struct task_struct *t, u64 addr, u64 *src, u64 *anchor);
int ssi_mig_stdio_install(void *in_ctx, void *out_ctx, void *err_ctx);
void ssi_mig_fput(struct file *file);
int ssi_mig_fatal_pending(void);
int ssi_mig_signal_pending(void);
int ssi_mig_fatal_signo(void);
int ssi_mig_dequeue_signal(void);
void ssi_mig_clear_notify(void);
ssize_t ssi_mig_fd_write(int fd, const void *buf, size_t len);
ssize_t ssi_mig_fd_read(int fd, void *buf, size_t len);
ssize_t ssi_mig_read_memory(struct task_struct *t, u64 addr, void *buf);
int ssi_mig_signal_task(struct task_struct *t, int sig);
void __noreturn ssi_mig_exit(int status);
int ssi_mig_thread_resume(const void *state, size_t len, char *why);
int ssi_mig_check_state(const void *state, size_t len, char *why);
void ssi_mig_forget_thread_exit_effects(void);

/* Rust (main.rs and friends): called by task_shim.c */
void ssi_migrate_task_work(void *ctx);
void ssi_migrate_park(void *ctx);
u64 ssi_migrate_region_of(struct vm_area_struct *vma, u32 *pages);
int ssi_migrate_map_region(u32 home, const struct ssi_vma_info *v, u32 prot);
void ssi_migrate_stdio_exiting(void *ctx, bool group);
long ssi_migrate_futex(u64 id, u32 home, unsigned long uaddr, u32 op, u32 val, s64 deadline,
		       unsigned long uaddr2, u32 val2, u32 val3);
/*
 * The futex calls the kernel makes itself, with its own flags (FLAGS_* of
 * kernel/futex/futex.h): a restarted timed wait and the wake of a robust mutex's waiter.
 */
long ssi_migrate_futex_restart(u64 id, u32 home, unsigned long uaddr, u32 kflags, u32 val,
			       s64 time_ns, u32 bitset);
long ssi_migrate_futex_kernel_wake(u64 id, u32 home, unsigned long uaddr, u32 kflags,
				   int nr_wake, u32 bitset);
/* Which futex2 system call ssi_migrate_futex2() carries out (rust/src/futex2.rs). */
#define SSI_FUTEX2_WAKE 0
#define SSI_FUTEX2_WAIT 1
#define SSI_FUTEX2_REQUEUE 2
#define SSI_FUTEX2_WAITV 3
long ssi_migrate_futex2(u64 id, u32 home, u32 call, const u64 *args);
void ssi_migrate_space_ended(u64 id);
long ssi_migrate_signal_home(u64 id, u32 home, u32 tgid, u32 tid, int sig);
/* ssi_migrate_space_mmap()'s answer for a mapping that stays this node's (not an address). */
#define SSI_SPACE_LOCAL 1
long ssi_migrate_space_mmap(u64 id, u32 home, unsigned long addr, unsigned long len,
			    unsigned long prot, unsigned long flags);
long ssi_migrate_space_mmap_file(u64 id, u32 home, struct file *file, unsigned long addr,
				 unsigned long len, unsigned long prot, unsigned long flags,
				 unsigned long pgoff);
long ssi_migrate_space_munmap(u64 id, u32 home, unsigned long addr, unsigned long len);
int ssi_migrate_fetch(void *ctx, u64 addr, u64 anchor, void *dst);
void ssi_migrate_ctx_put(void *ctx);
void ssi_migrate_stdio_put(void *ctx);
ssize_t ssi_migrate_stdio_read(void *ctx, char __user *buf, size_t len);
ssize_t ssi_migrate_stdio_write(void *ctx, const char __user *buf, size_t len);

#endif
