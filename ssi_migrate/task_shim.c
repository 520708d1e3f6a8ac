// SPDX-License-Identifier: GPL-2.0
/*
 * Process state for migration, where the kernel crate has no abstraction: looking up
 * and checking the task, running code in its own context (task_work), snapshotting
 * registers, FPU state, signal state and the VMA layout on the source node, and on the
 * destination rebuilding the address space of a fresh process (a child of the node's
 * migration daemon) and handing it the registers.
 *
 * Registers travel as the ptrace/core-dump regsets (NT_PRSTATUS and NT_X86_XSTATE or
 * NT_PRFPREG) read with regset_get() in the task's own context. On the destination
 * they are restored the way CRIU's restorer does it: the ioctl writes an rt_sigframe
 * (general registers, the XSAVE image, the signal mask and the alternate stack) below
 * the process's stack pointer and returns to a one-page trampoline that sets the TLS
 * bases, the rseq area, the robust-futex list and the clear-tid address with their
 * system calls and then calls rt_sigreturn, so the kernel's own signal-return code
 * restores every register, FPU/AVX state included, and resumes at the same instruction.
 * The trampoline page stays mapped (one read+exec anonymous page).
 *
 * Memory: every VMA of the process becomes a MAP_PRIVATE mapping of a per-arrival file
 * whose fault handler (ssi_mig_fault) asks Rust for the page's contents on the source
 * node (the file offset of a page is its address on the source, which survives mremap
 * and splits). A write copies the page into an ordinary anonymous page (private
 * copy-on-write), which then belongs to this node.
 *
 * The x86_64 parts are under CONFIG_X86_64; elsewhere migration answers EOPNOTSUPP.
 */
#include <linux/anon_inodes.h>
#include <linux/cred.h>
#include <linux/delay.h>
#include <linux/elf.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/hugetlb.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/sched/exec_state.h>
#include <linux/futex.h>
#include <uapi/linux/futex.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/pagemap.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/regset.h>
#include <linux/rseq.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/sched/task_stack.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/task_work.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

#ifdef CONFIG_X86_64
#include <asm/prctl.h>
#include <asm/processor.h>
#include <asm/ptrace.h>
#include <asm/fpu/types.h>
#include <asm/sigframe.h>
#include <asm/sigcontext.h>
#include <asm/ucontext.h>
#endif
#include <asm/syscall.h>

#include "shim.h"

static_assert(sizeof(struct ssi_mm_info) == 96 + 8 * SSI_AUXV_WORDS + 16);
static_assert(sizeof(struct ssi_vma_info) == 80);
static_assert(sizeof(struct ssi_target_facts) == 16);
static_assert(offsetof(struct ssi_target_facts, threads) == 12);

/* ---- tasks ------------------------------------------------------------------------- */

/* The task's PID in the caller's namespace (0 if it has none there). */
int ssi_mig_task_pid(struct task_struct *t)
{
	return task_pid_vnr(t);
}

void ssi_mig_task_comm(struct task_struct *t, char *buf)
{
	strscpy(buf, t->comm, TASK_COMM_LEN);
}

/*
 * What rust/src/migrate_target.rs needs to decide whether the caller may migrate t
 * (ptrace's rule, as ptrace_may_access() is not exported), each read under the lock
 * it needs. For a kernel thread only that is read: the rules refuse it first.
 */
void ssi_mig_target_facts(struct task_struct *t, struct ssi_target_facts *f)
{
	const struct cred *caller = current_cred(), *tcred;

	memset(f, 0, sizeof(*f));
	f->pid = task_pid_vnr(t);
	f->kernel_thread = t->flags & PF_KTHREAD;
	/* Refused before anything else: nothing more to read (nor to trust) there. */
	if (f->kernel_thread)
		return;
	f->init = is_global_init(t) || t == task_active_pid_ns(current)->child_reaper;
	f->is_caller = t == current;

	task_lock(t);
	f->exiting = !t->mm || (t->flags & PF_EXITING);
	task_unlock(t);

	rcu_read_lock();
	/* task_exec_state_rcu() is not exported; this is what it reads. */
	f->dumpable = READ_ONCE(rcu_dereference(t->exec_state)->dumpable) ==
		      TASK_DUMPABLE_OWNER;
	tcred = __task_cred(t);
	f->caller_has_its_ids =
		uid_eq(caller->uid, tcred->euid) && uid_eq(caller->uid, tcred->suid) &&
		uid_eq(caller->uid, tcred->uid) && gid_eq(caller->gid, tcred->egid) &&
		gid_eq(caller->gid, tcred->sgid) && gid_eq(caller->gid, tcred->gid);
	f->caller_may_ptrace = ns_capable(tcred->user_ns, CAP_SYS_PTRACE);
	rcu_read_unlock();

	f->group_leader = thread_group_leader(t);
	f->threads = get_nr_threads(t);
}

struct ssi_mig_work {
	struct callback_head cb;
	void (*fn)(void *ctx);
	void *ctx;
};

static void ssi_mig_work_fn(struct callback_head *cb)
{
	struct ssi_mig_work *w = container_of(cb, struct ssi_mig_work, cb);
	void (*fn)(void *ctx) = w->fn;
	void *ctx = w->ctx;

	kfree(w);
	fn(ctx);
}

/*
 * Runs fn(ctx) in t's own context on its way back to user mode (TWA_SIGNAL interrupts
 * a blocking system call; the call is restarted afterwards, or on the destination). The
 * caller holds a module reference for the pending work (ssi_mig_hold_module) that the
 * work drops.
 */
static int ssi_mig_queue(struct task_struct *t, void (*fn)(void *ctx), void *ctx)
{
	struct ssi_mig_work *w = kmalloc(sizeof(*w), GFP_KERNEL);
	int ret;

	if (!w)
		return -ENOMEM;
	w->fn = fn;
	w->ctx = ctx;
	init_task_work(&w->cb, ssi_mig_work_fn);
	ret = task_work_add(t, &w->cb, TWA_SIGNAL);
	if (ret)
		kfree(w);
	return ret;
}

/* The hop of t: ssi_migrate_task_work(ctx) (leave.rs). */
int ssi_mig_queue_work(struct task_struct *t, void *ctx)
{
	return ssi_mig_queue(t, ssi_migrate_task_work, ctx);
}

/* Pins this module while a task_work of it is queued. */
int ssi_mig_hold_module(void)
{
	return try_module_get(THIS_MODULE) ? 0 : -ENODEV;
}

/*
 * Drops ssi_mig_hold_module()'s reference. Called as the last thing a task_work does
 * before returning to task_work_run(): the few instructions of its epilogue are the same
 * window as module_put_and_kthread_exit() accepts.
 */
void ssi_mig_module_put(void)
{
	module_put(THIS_MODULE);
}

static const struct file_operations ssi_mig_standin_fops = {
	/* Held by the stand-in's descriptor table: exit_files() drops it after do_exit(). */
	.owner = THIS_MODULE,
};

/*
 * Gives the stand-in (current) a descriptor of an "[ssi-stand-in]" file, which pins the
 * module until the stand-in's files are closed in do_exit(): the module reference is
 * dropped by core code after the stand-in has left this module for good.
 */
int ssi_mig_install_standin_fd(void)
{
	struct file *file;
	int fd = get_unused_fd_flags(O_CLOEXEC);

	if (fd < 0)
		return fd;
	file = anon_inode_getfile("[ssi-stand-in]", &ssi_mig_standin_fops, NULL, O_RDONLY);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		return PTR_ERR(file);
	}
	fd_install(fd, file);
	return fd;
}

/* ---- the source: snapshot in the task's own context --------------------------------- */

static void ssi_vma_name(struct vm_area_struct *vma, struct mm_struct *mm, char *name)
{
	if (vma->vm_ops && vma->vm_ops->name) {
		strscpy(name, vma->vm_ops->name(vma), SSI_VMA_NAME_LEN);
	} else if (vma->vm_file) {
		snprintf(name, SSI_VMA_NAME_LEN, "%pD", vma->vm_file);
	} else if (vma->vm_start <= mm->brk && vma->vm_end >= mm->start_brk) {
		strscpy(name, "[heap]", SSI_VMA_NAME_LEN);
	} else if (vma->vm_start <= mm->start_stack && vma->vm_end >= mm->start_stack) {
		strscpy(name, "[stack]", SSI_VMA_NAME_LEN);
	} else {
		name[0] = 0;
	}
}

/*
 * Device memory (/dev/mem, /dev/gpiomem, a device's registers, an ssi region) ties a
 * process to its node. [vvar] is VM_PFNMAP too, but every kernel has its own: it is
 * moved, not copied.
 */
static bool ssi_vma_pins(struct vm_area_struct *vma)
{
	u32 pages;

	return (vma->vm_flags & (VM_IO | VM_PFNMAP | VM_MIXEDMAP)) &&
	       !(vma->vm_ops && vma->vm_ops->name) && !ssi_migrate_region_of(vma, &pages);
}

/* The first mapping of @task that pins it to this node, described in @p. */
static bool ssi_task_pinned(struct task_struct *task, struct ssi_pinned *p)
{
	struct mm_struct *mm = get_task_mm(task);
	struct vm_area_struct *vma;
	bool found = false;
	int tries = 0;

	if (!mm)
		return false;	/* a kernel thread, or exiting */
	/*
	 * Never wait long for the lock: this also serves remote `ssictl ps` from the
	 * messaging context, which must not stall behind a writer queued on a slow fault.
	 */
	while (!mmap_read_trylock(mm)) {
		if (++tries > 20) {
			/* The last reference may go here: never tear an mm down in this context. */
			mmput_async(mm);
			return false;
		}
		usleep_range(500, 1000);
	}
	{
		VMA_ITERATOR(vmi, mm, 0);

		for_each_vma(vmi, vma) {
			char name[SSI_VMA_NAME_LEN];

			if (!ssi_vma_pins(vma))
				continue;
			ssi_vma_name(vma, mm, name);
			snprintf(p->why, SSI_WHY_LEN, "%s at %#lx",
				 name[0] ? name : "a device mapping", vma->vm_start);
			found = true;
			break;
		}
	}
	mmap_read_unlock(mm);
	mmput_async(mm);
	if (found)
		get_task_comm(p->comm, task);
	return found;
}

/*
 * The processes of this node (in the caller's pid namespace) that map device memory,
 * at most @max of them, in pid order. Returns how many were written to @out.
 */
int ssi_mig_scan_pinned(struct ssi_pinned *out, u32 max)
{
	struct pid_namespace *ns = task_active_pid_ns(current);
	unsigned int nr = 1;
	u32 n = 0;

	while (n < max) {
		struct task_struct *task = NULL;
		struct pid *pid;
		unsigned int this_nr = 0;

		rcu_read_lock();
		pid = find_ge_pid(nr, ns);
		if (pid) {
			this_nr = pid_nr_ns(pid, ns);
			task = pid_task(pid, PIDTYPE_TGID);
			if (task)
				get_task_struct(task);
		}
		rcu_read_unlock();
		if (!pid)
			break;
		nr = this_nr + 1;
		if (!task)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		out[n].pid = this_nr;
		if (ssi_task_pinned(task, &out[n]))
			n++;
		put_task_struct(task);
		if (fatal_signal_pending(current))
			break;
		cond_resched();
	}
	return n;
}

/* The VMAs and mm fields of current; fails for mappings that cannot move. */
static int ssi_capture_mm(struct ssi_mm_info *mi, struct ssi_vma_info *vmas, u32 max,
			  u32 *nr, u32 node, char *why)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	u32 n = 0;
	int ret = 0;
	VMA_ITERATOR(vmi, mm, 0);

	mi->home_tgid = task_tgid_vnr(current);
	rcu_read_lock();
	mi->home_ppid = task_tgid_vnr(rcu_dereference(current->real_parent));
	rcu_read_unlock();
	mmap_read_lock(mm);
	for_each_vma(vmi, vma) {
		struct ssi_vma_info *v = &vmas[n];
		char name[SSI_VMA_NAME_LEN];
		u64 region;
		u32 region_pages;

		ssi_vma_name(vma, mm, name);
		region = ssi_migrate_region_of(vma, &region_pages);
		if (ssi_vma_pins(vma)) {
			snprintf(why, SSI_WHY_LEN, "pinned to node %u by %s (device memory at %#lx)",
				 node, name[0] ? name : "a device mapping", vma->vm_start);
			ret = -EBUSY;
			break;
		}
		/*
		 * A shared mapping can only move as a copy: fine for a file the process cannot
		 * write through it (read-only caches such as gconv-modules.cache), not else.
		 */
		if (!region && (vma->vm_flags & VM_MAYSHARE) &&
		    (!vma->vm_file || (vma->vm_flags & VM_MAYWRITE))) {
			snprintf(why, SSI_WHY_LEN, "shared mapping of %s at %#lx cannot migrate",
				 name[0] ? name : "anonymous memory", vma->vm_start);
			ret = -EBUSY;
			break;
		}
		if (is_vm_hugetlb_page(vma)) {
			snprintf(why, SSI_WHY_LEN, "huge-page mapping at %#lx cannot migrate",
				 vma->vm_start);
			ret = -EBUSY;
			break;
		}
		if (n == max) {
			snprintf(why, SSI_WHY_LEN, "more than %u mappings", max);
			ret = -E2BIG;
			break;
		}
		v->start = vma->vm_start;
		v->end = vma->vm_end;
		v->pgoff = vma->vm_pgoff;
		v->flags = 0;
		if (vma->vm_flags & VM_READ)
			v->flags |= SSI_VMA_READ;
		if (vma->vm_flags & VM_WRITE)
			v->flags |= SSI_VMA_WRITE;
		if (vma->vm_flags & VM_EXEC)
			v->flags |= SSI_VMA_EXEC;
		if (vma->vm_flags & VM_GROWSDOWN)
			v->flags |= SSI_VMA_GROWSDOWN;
		v->region = region;
		v->region_pages = region_pages;
		v->reserved = 0;
		if (region)
			v->flags |= SSI_VMA_REGION;
		else if (vma->vm_ops && vma->vm_ops->name)
			v->flags |= SSI_VMA_SPECIAL;
		else if (vma->vm_file)
			v->flags |= SSI_VMA_FILE;
		memcpy(v->name, name, SSI_VMA_NAME_LEN);
		n++;
	}
	mi->start_code = mm->start_code;
	mi->end_code = mm->end_code;
	mi->start_data = mm->start_data;
	mi->end_data = mm->end_data;
	mi->start_brk = mm->start_brk;
	mi->brk = mm->brk;
	mi->start_stack = mm->start_stack;
	spin_lock(&mm->arg_lock);
	mi->arg_start = mm->arg_start;
	mi->arg_end = mm->arg_end;
	mi->env_start = mm->env_start;
	mi->env_end = mm->env_end;
	spin_unlock(&mm->arg_lock);
	mi->auxv_words = min_t(u64, ARRAY_SIZE(mm->saved_auxv), SSI_AUXV_WORDS);
	memset(mi->auxv, 0, sizeof(mi->auxv));
	memcpy(mi->auxv, mm->saved_auxv, mi->auxv_words * sizeof(unsigned long));
	mmap_read_unlock(mm);
	*nr = n;
	return ret;
}

/* Descriptors other than 0, 1 and 2 do not move: refuse rather than lose them. */
static int ssi_check_files(char *why)
{
	unsigned int fd, max;
	struct fdtable *fdt;

	rcu_read_lock();
	fdt = files_fdtable(current->files);
	max = fdt->max_fds;
	rcu_read_unlock();
	for (fd = 3; fd < max; fd++) {
		struct file *f = fget_raw(fd);

		if (!f)
			continue;
		snprintf(why, SSI_WHY_LEN, "open file descriptor %u (%pD) cannot migrate", fd, f);
		fput(f);
		return -EBUSY;
	}
	return 0;
}

#ifdef CONFIG_X86_64

#define SSI_STATE_MAGIC 0x53534958 /* "XISS" */
#define SSI_FP_XSAVE 1
#define SSI_FP_FXSAVE 2

struct ssi_sigaction_info {
	u64 handler, flags, restorer, mask;
};

/* The arch part of a snapshot; only this file interprets it. */
struct ssi_task_state {
	u32 magic, fp_kind, fp_size, reserved;
	struct user_regs_struct regs;
	u64 blocked;
	u64 sas_sp, sas_size;
	u32 sas_flags, rseq_len;
	u64 rseq_ptr;
	u32 rseq_sig, reserved2;
	u64 robust_list, clear_child_tid;
	struct ssi_sigaction_info act[_NSIG];
	u8 fp[];
};

static const struct user_regset *ssi_find_regset(struct task_struct *t, unsigned int note)
{
	const struct user_regset_view *view = task_user_regset_view(t);
	unsigned int i;

	for (i = 0; i < view->n; i++)
		if (view->regsets[i].core_note_type == note)
			return &view->regsets[i];
	return NULL;
}

/* Which FP regset this CPU has, and its size. */
static const struct user_regset *ssi_fp_regset(u32 *kind, u32 *size)
{
	const struct user_regset *rs;

	if (boot_cpu_has(X86_FEATURE_XSAVE)) {
		rs = ssi_find_regset(current, NT_X86_XSTATE);
		*kind = SSI_FP_XSAVE;
	} else {
		rs = ssi_find_regset(current, NT_PRFPREG);
		*kind = SSI_FP_FXSAVE;
	}
	if (rs)
		*size = rs->n * rs->size;
	return rs;
}

static ssize_t ssi_capture_task(struct ssi_task_state *st, size_t cap, char *why)
{
	const struct user_regset *gen = ssi_find_regset(current, NT_PRSTATUS), *fp;
	struct user_regs_struct *r = &st->regs;
	u32 kind = 0, size = 0;
	int i, ret;

	fp = ssi_fp_regset(&kind, &size);
	if (!gen || !fp || sizeof(*st) + size + 4 > cap) {
		snprintf(why, SSI_WHY_LEN, "register state does not fit (%u bytes of FPU state)", size);
		return -E2BIG;
	}
	memset(st, 0, sizeof(*st));
	st->magic = SSI_STATE_MAGIC;
	st->fp_kind = kind;
	st->fp_size = size;
	ret = regset_get(current, gen, sizeof(*r), r);
	if (ret < 0)
		goto fail;
	ret = regset_get(current, fp, size, st->fp);
	if (ret < 0)
		goto fail;

	/*
	 * This runs from get_signal(), before the restart of an interrupted system call is
	 * set up: do it here, as arch_do_signal_or_restart() would without a handler. A
	 * restart block (nanosleep and friends) cannot move: the call returns EINTR.
	 */
	if ((long)r->orig_ax >= 0) {
		switch ((long)r->ax) {
		case -ERESTARTNOHAND:
		case -ERESTARTSYS:
		case -ERESTARTNOINTR:
			r->ax = r->orig_ax;
			r->ip -= 2;
			break;
		case -ERESTART_RESTARTBLOCK:
			r->ax = -EINTR;
			break;
		}
	}
	r->orig_ax = -1;

	spin_lock_irq(&current->sighand->siglock);
	st->blocked = current->blocked.sig[0];
	for (i = 0; i < _NSIG; i++) {
		const struct k_sigaction *k = &current->sighand->action[i];

		st->act[i].handler = (unsigned long)k->sa.sa_handler;
		st->act[i].flags = k->sa.sa_flags;
		st->act[i].restorer = (unsigned long)k->sa.sa_restorer;
		st->act[i].mask = k->sa.sa_mask.sig[0];
	}
	spin_unlock_irq(&current->sighand->siglock);
	st->sas_sp = current->sas_ss_sp;
	st->sas_size = current->sas_ss_size;
	st->sas_flags = current->sas_ss_sp ? current->sas_ss_flags : SS_DISABLE;
#ifdef CONFIG_RSEQ
	st->rseq_ptr = (unsigned long)current->rseq.usrptr;
	st->rseq_len = current->rseq.len;
	st->rseq_sig = current->rseq.sig;
#endif
#ifdef CONFIG_FUTEX
	st->robust_list = (unsigned long)current->futex.robust_list;
#endif
	st->clear_child_tid = (unsigned long)current->clear_child_tid;
	return sizeof(*st) + size;
fail:
	snprintf(why, SSI_WHY_LEN, "reading the registers failed (%d)", ret);
	return ret;
}

static u8 *ssi_emit32(u8 *p, u32 v)
{
	memcpy(p, &v, 4);
	return p + 4;
}

static u8 *ssi_emit64(u8 *p, u64 v)
{
	memcpy(p, &v, 8);
	return p + 8;
}

/* mov $nr,%eax; [mov $a0,%edi | movabs $a0,%rdi]; movabs $a1,%rsi; ...; syscall */
static u8 *ssi_emit_syscall(u8 *p, u32 nr, u64 a0, u64 a1, bool a1_used, u32 a2, u32 a3,
			    bool a3_used)
{
	*p++ = 0xb8; /* mov $nr,%eax */
	p = ssi_emit32(p, nr);
	*p++ = 0x48; /* movabs $a0,%rdi */
	*p++ = 0xbf;
	p = ssi_emit64(p, a0);
	if (a1_used) {
		*p++ = 0x48; /* movabs $a1,%rsi */
		*p++ = 0xbe;
		p = ssi_emit64(p, a1);
	}
	if (a3_used) {
		*p++ = 0xba; /* mov $a2,%edx */
		p = ssi_emit32(p, a2);
		*p++ = 0x41; /* mov $a3,%r10d */
		*p++ = 0xba;
		p = ssi_emit32(p, a3);
	}
	*p++ = 0x0f; /* syscall */
	*p++ = 0x05;
	return p;
}

/*
 * Maps the trampoline and points current's user registers at it, with the stack
 * pointer where rt_sigreturn expects the frame.
 */
static int ssi_enter_trampoline(const struct ssi_task_state *st, unsigned long frame, char *why)
{
	struct pt_regs *regs = task_pt_regs(current);
	u8 code[160], *p = code;
	unsigned long addr;
	int n;

	p = ssi_emit_syscall(p, __NR_arch_prctl, ARCH_SET_FS, st->regs.fs_base, true, 0, 0, false);
	p = ssi_emit_syscall(p, __NR_arch_prctl, ARCH_SET_GS, st->regs.gs_base, true, 0, 0, false);
	if (st->rseq_ptr)
		p = ssi_emit_syscall(p, __NR_rseq, st->rseq_ptr, st->rseq_len, true, 0,
				     st->rseq_sig, true);
	p = ssi_emit_syscall(p, __NR_set_robust_list, st->robust_list,
			     sizeof(struct robust_list_head), true, 0, 0, false);
	p = ssi_emit_syscall(p, __NR_set_tid_address, st->clear_child_tid, 0, false, 0, 0, false);
	*p++ = 0xb8; /* mov $__NR_rt_sigreturn,%eax */
	p = ssi_emit32(p, __NR_rt_sigreturn);
	*p++ = 0x0f; /* syscall */
	*p++ = 0x05;
	*p++ = 0x0f; /* ud2: never reached */
	*p++ = 0x0b;

	addr = vm_mmap(NULL, 0, PAGE_SIZE, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, 0);
	if (IS_ERR_VALUE(addr)) {
		snprintf(why, SSI_WHY_LEN, "mapping the restorer page failed (%ld)", (long)addr);
		return (int)addr;
	}
	/* Written like a debugger writes a breakpoint: into the private copy. */
	n = access_process_vm(current, addr, code, p - code, FOLL_FORCE | FOLL_WRITE);
	if (n != p - code) {
		snprintf(why, SSI_WHY_LEN, "writing the restorer page failed (%d)", n);
		return -EFAULT;
	}
	regs->ip = addr;
	regs->sp = frame + sizeof(long);
	regs->cs = __USER_CS;
	regs->ss = __USER_DS;
	regs->flags = X86_EFLAGS_IF | X86_EFLAGS_FIXED;
	return 0;
}

/* Writes the rt_sigframe that rt_sigreturn turns into the process's registers. */
static int ssi_write_frame(const struct ssi_task_state *st, unsigned long *framep, char *why)
{
	const struct user_regs_struct *r = &st->regs;
	struct rt_sigframe *f;
	struct sigcontext *sc;
	unsigned long sp, fpaddr, frame;
	u32 magic2 = FP_XSTATE_MAGIC2;
	struct _fpx_sw_bytes sw = {};
	int ret = 0;

	/* Below the red zone of the interrupted code. */
	sp = r->sp - 128;
	fpaddr = round_down(sp - st->fp_size - FP_XSTATE_MAGIC2_SIZE, 64);
	frame = round_down(fpaddr - sizeof(struct rt_sigframe), 16) - 8;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	f->uc.uc_flags = UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
	if (st->fp_kind == SSI_FP_XSAVE)
		f->uc.uc_flags |= UC_FP_XSTATE;
	f->uc.uc_stack.ss_sp = (void __user *)st->sas_sp;
	f->uc.uc_stack.ss_flags = st->sas_flags;
	f->uc.uc_stack.ss_size = st->sas_size;
	sc = &f->uc.uc_mcontext;
	sc->r8 = r->r8;
	sc->r9 = r->r9;
	sc->r10 = r->r10;
	sc->r11 = r->r11;
	sc->r12 = r->r12;
	sc->r13 = r->r13;
	sc->r14 = r->r14;
	sc->r15 = r->r15;
	sc->di = r->di;
	sc->si = r->si;
	sc->bp = r->bp;
	sc->bx = r->bx;
	sc->dx = r->dx;
	sc->ax = r->ax;
	sc->cx = r->cx;
	sc->sp = r->sp;
	sc->ip = r->ip;
	sc->flags = r->flags;
	sc->cs = __USER_CS;
	sc->ss = __USER_DS;
	sc->fpstate = fpaddr;
	f->uc.uc_sigmask.sig[0] = st->blocked;

	/*
	 * The ptrace XSAVE layout keeps XCR0 in the software-reserved bytes; a signal frame
	 * keeps struct _fpx_sw_bytes there (magic, sizes, features), which rt_sigreturn
	 * checks before it restores more than the legacy FXSAVE part.
	 */
	if (st->fp_kind == SSI_FP_XSAVE) {
		u64 xcr0;

		memcpy(&xcr0, st->fp + offsetof(struct fxregs_state, sw_reserved), sizeof(xcr0));
		sw.magic1 = FP_XSTATE_MAGIC1;
		sw.extended_size = st->fp_size + FP_XSTATE_MAGIC2_SIZE;
		sw.xfeatures = xcr0;
		sw.xstate_size = st->fp_size;
	}

	/* The stack pages fault in from the source here, like any other. */
	if (copy_to_user((void __user *)frame, f, sizeof(*f)) ||
	    copy_to_user((void __user *)fpaddr, st->fp, st->fp_size) ||
	    (st->fp_kind == SSI_FP_XSAVE &&
	     (copy_to_user((void __user *)(fpaddr + offsetof(struct fxregs_state, sw_reserved)),
			   &sw, sizeof(sw)) ||
	      copy_to_user((void __user *)(fpaddr + st->fp_size), &magic2, sizeof(magic2))))) {
		snprintf(why, SSI_WHY_LEN, "writing the signal frame at %#lx failed", frame);
		ret = -EFAULT;
	}
	kfree(f);
	*framep = frame;
	return ret;
}

static int ssi_check_state(const struct ssi_task_state *st, size_t len, char *why)
{
	u32 kind = 0, size = 0;

	if (len < sizeof(*st) || st->magic != SSI_STATE_MAGIC) {
		snprintf(why, SSI_WHY_LEN, "the register snapshot is not for x86_64");
		return -EINVAL;
	}
	if (!ssi_fp_regset(&kind, &size) || kind != st->fp_kind || size != st->fp_size ||
	    len != sizeof(*st) + size) {
		snprintf(why, SSI_WHY_LEN,
			 "FPU state formats differ (source %u/%u bytes, here %u/%u): CPUs differ",
			 st->fp_kind, st->fp_size, kind, size);
		return -EINVAL;
	}
	if (st->regs.sp < 4096 || st->regs.ip >= TASK_SIZE_MAX) {
		snprintf(why, SSI_WHY_LEN, "implausible registers in the snapshot");
		return -EINVAL;
	}
	return 0;
}

static void ssi_restore_sigactions(const struct ssi_task_state *st)
{
	int i;

	spin_lock_irq(&current->sighand->siglock);
	for (i = 0; i < _NSIG; i++) {
		struct k_sigaction *k = &current->sighand->action[i];

		if (i + 1 == SIGKILL || i + 1 == SIGSTOP)
			continue;
		k->sa.sa_handler = (__sighandler_t)(unsigned long)st->act[i].handler;
		k->sa.sa_flags = st->act[i].flags;
		k->sa.sa_restorer = (__sigrestore_t)(unsigned long)st->act[i].restorer;
		k->sa.sa_mask.sig[0] = st->act[i].mask;
	}
	spin_unlock_irq(&current->sighand->siglock);
}

#else /* !CONFIG_X86_64 */

struct ssi_task_state {
	u32 magic;
};

static ssize_t ssi_capture_task(struct ssi_task_state *st, size_t cap, char *why)
{
	snprintf(why, SSI_WHY_LEN, "migration is implemented for x86_64 only");
	return -EOPNOTSUPP;
}

static int ssi_check_state(const struct ssi_task_state *st, size_t len, char *why)
{
	snprintf(why, SSI_WHY_LEN, "migration is implemented for x86_64 only");
	return -EOPNOTSUPP;
}

#endif

/*
 * In the migrating task's own context: fails if it cannot move, else fills the arch
 * state, the mm facts and the VMA list and returns the state's length.
 */
ssize_t ssi_mig_capture(void *state, size_t cap, struct ssi_mm_info *mm,
			struct ssi_vma_info *vmas, u32 max_vmas, u32 *nr_vmas, u32 node,
			bool thread, char *why)
{
	int ret;

	if (current->flags & PF_EXITING) {
		snprintf(why, SSI_WHY_LEN, "the process exited");
		return -ESRCH;
	}
	if (!thread && get_nr_threads(current) != 1) {
		snprintf(why, SSI_WHY_LEN, "the process started a thread: it cannot migrate");
		return -EBUSY;
	}
	/* Pinned mappings first: they say most about why a process cannot move. */
	ret = ssi_capture_mm(mm, vmas, max_vmas, nr_vmas, node, why);
	if (ret)
		return ret;
	ret = ssi_check_files(why);
	if (ret)
		return ret;
	return ssi_capture_task(state, cap, why);
}

/* Credentials (init user namespace), umask, groups, command and working directory. */
void ssi_mig_identity(u32 *ids, u32 *umask, u32 *groups, u32 max_groups, u32 *ngroups,
		      char *comm, char *cwd, size_t cwd_len)
{
	const struct cred *c = current_cred();
	struct path pwd;
	char *buf, *p;
	u32 i, n;

	ids[0] = from_kuid_munged(&init_user_ns, c->uid);
	ids[1] = from_kuid_munged(&init_user_ns, c->euid);
	ids[2] = from_kuid_munged(&init_user_ns, c->suid);
	ids[3] = from_kuid_munged(&init_user_ns, c->fsuid);
	ids[4] = from_kgid_munged(&init_user_ns, c->gid);
	ids[5] = from_kgid_munged(&init_user_ns, c->egid);
	ids[6] = from_kgid_munged(&init_user_ns, c->sgid);
	ids[7] = from_kgid_munged(&init_user_ns, c->fsgid);
	n = min_t(u32, c->group_info->ngroups, max_groups);
	for (i = 0; i < n; i++)
		groups[i] = from_kgid_munged(&init_user_ns, c->group_info->gid[i]);
	*ngroups = n;
	*umask = current->fs->umask;
	strscpy(comm, current->comm, TASK_COMM_LEN);

	strscpy(cwd, "/", cwd_len);
	buf = kmalloc(PATH_MAX, GFP_KERNEL);
	if (!buf)
		return;
	get_fs_pwd(current->fs, &pwd);
	p = d_path(&pwd, buf, PATH_MAX);
	path_put(&pwd);
	if (!IS_ERR(p) && strlen(p) < cwd_len)
		strscpy(cwd, p, cwd_len);
	kfree(buf);
}

/* ---- the stand-in: signals and standard streams, in the stand-in's context ------------ */

int ssi_mig_fatal_pending(void)
{
	return fatal_signal_pending(current);
}

/* The signal of current's pending group exit (what killed it), or SIGKILL. */
int ssi_mig_fatal_signo(void)
{
	int code = READ_ONCE(current->signal->group_exit_code) & 0x7f;

	return code ? code : SIGKILL;
}

int ssi_mig_signal_pending(void)
{
	return signal_pending(current);
}

/* Dequeues one pending signal of the stand-in, blocked or not; 0 when none is left. */
int ssi_mig_dequeue_signal(void)
{
	kernel_siginfo_t info;
	enum pid_type type;
	sigset_t none;
	int sig;

	sigemptyset(&none);
	spin_lock_irq(&current->sighand->siglock);
	sig = dequeue_signal(&none, &info, &type);
	spin_unlock_irq(&current->sighand->siglock);
	return sig;
}

/*
 * For a thread's stand-in: a signal sent to that thread (tgkill, pthread_kill), never a
 * process-directed one (the kernel delivers those to whichever thread of the process
 * does not block them) nor SIGKILL/SIGSTOP (the kernel acts on those itself).
 */
int ssi_mig_dequeue_thread_signal(void)
{
	kernel_siginfo_t info;
	enum pid_type type;
	sigset_t blocked;
	int sig = 0;

	spin_lock_irq(&current->sighand->siglock);
	/* Only what is pending for this thread alone is unblocked here. */
	blocked = current->pending.signal;
	signotset(&blocked);
	sigaddset(&blocked, SIGKILL);
	sigaddset(&blocked, SIGSTOP);
	if (!sigisemptyset(&current->pending.signal))
		sig = dequeue_signal(&blocked, &info, &type);
	spin_unlock_irq(&current->sighand->siglock);
	return sig;
}

void ssi_mig_clear_notify(void)
{
	clear_notify_signal();
}

/* Writes to the stand-in's descriptor fd, as the process would have. */
ssize_t ssi_mig_fd_write(int fd, const void *buf, size_t len)
{
	struct file *f = fget(fd);
	loff_t pos;
	ssize_t n;

	if (!f)
		return -EBADF;
	pos = f->f_pos;
	n = kernel_write(f, buf, len, (f->f_mode & FMODE_STREAM) ? NULL : &pos);
	if (n > 0 && !(f->f_mode & FMODE_STREAM))
		f->f_pos = pos;
	fput(f);
	return n;
}

ssize_t ssi_mig_fd_read(int fd, void *buf, size_t len)
{
	struct file *f = fget(fd);
	loff_t pos;
	ssize_t n;

	if (!f)
		return -EBADF;
	pos = f->f_pos;
	n = kernel_read(f, buf, len, (f->f_mode & FMODE_STREAM) ? NULL : &pos);
	if (n > 0 && !(f->f_mode & FMODE_STREAM))
		f->f_pos = pos;
	fput(f);
	return n;
}

/* 1 when a read of fd would not block (data, end of file or an error), 0 otherwise. */
int ssi_mig_fd_readable(int fd)
{
	struct file *f = fget(fd);
	__poll_t mask;

	if (!f)
		return -EBADF;
	mask = vfs_poll(f, NULL);
	fput(f);
	return !!(mask & (EPOLLIN | EPOLLRDNORM | EPOLLHUP | EPOLLERR));
}

/* One page of t's memory (like ptrace's PEEK), for the node that now runs it. */
ssize_t ssi_mig_read_memory(struct task_struct *t, u64 addr, void *buf)
{
	return access_process_vm(t, addr, buf, PAGE_SIZE, FOLL_FORCE);
}

int ssi_mig_signal_task(struct task_struct *t, int sig)
{
	return send_sig(sig, t, 0);
}

void __noreturn ssi_mig_exit(int status)
{
	do_exit(status);
}

/* ---- distributed processes: one thread moves, its siblings stay ------------------------ */

/*
 * The private mappings of current's process that are not in regions yet and that a
 * thread may write, now or after an mprotect(): what it must keep in regions before one
 * of its threads runs on another node. These are the writable ones, and the anonymous
 * ones that are not (PROT_NONE reservations of malloc arenas and thread stacks, opened
 * later with mprotect(), which then opens them in every address space). A writable and
 * executable one (JIT code) is refused: region mappings cannot be executable (their
 * file lives on an anonymous inode, which is mounted noexec). A main-thread stack
 * (VM_GROWSDOWN) is taken down to the stack limit, as far as the mappings below allow
 * with a guard gap, because a region mapping cannot grow. Returns the count.
 */
int ssi_mig_private_ranges(struct ssi_private_range *out, u32 max, char *why)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	unsigned long prev_end = 0;
	int n = 0;
	VMA_ITERATOR(vmi, mm, 0);

	if (!mm)
		return -ESRCH;
	mmap_read_lock(mm);
	for_each_vma(vmi, vma) {
		unsigned long start = vma->vm_start, end = vma->vm_end;
		vm_flags_t f = vma->vm_flags;
		u32 pages;
		/* Anonymous, not executable, and may become writable: kept in a region too. */
		bool reservation = !vma->vm_file && !(f & (VM_WRITE | VM_EXEC)) &&
				   (f & VM_MAYWRITE);
		bool skip = (f & VM_MAYSHARE) || (!(f & VM_WRITE) && !reservation) ||
			    (vma->vm_ops && vma->vm_ops->name) || is_vm_hugetlb_page(vma) ||
			    (f & (VM_IO | VM_PFNMAP | VM_MIXEDMAP)) ||
			    ssi_migrate_region_of(vma, &pages);

		if (skip) {
			prev_end = end;
			continue;
		}
		if (f & VM_EXEC) {
			snprintf(why, SSI_WHY_LEN,
				 "writable executable memory at %#lx cannot be shared between nodes",
				 start);
			n = -EBUSY;
			break;
		}
		if (n == max) {
			snprintf(why, SSI_WHY_LEN, "more than %u private mappings", max);
			n = -E2BIG;
			break;
		}
		if (f & VM_GROWSDOWN) {
			unsigned long limit = min_t(unsigned long, rlimit(RLIMIT_STACK), SZ_64M);
			unsigned long low = end > limit ? (end - limit) & PAGE_MASK : 0;

			low = max(low, PAGE_ALIGN(prev_end + SZ_1M));
			if (low < start)
				start = low;
		}
		if (((end - start) >> PAGE_SHIFT) > SSI_RANGE_MAX_PAGES) {
			snprintf(why, SSI_WHY_LEN,
				 "the mapping of %lu MiB at %#lx is larger than shared memory can be (%lu MiB)",
				 (end - start) >> 20, start,
				 (unsigned long)SSI_RANGE_MAX_PAGES >> (20 - PAGE_SHIFT));
			n = -E2BIG;
			break;
		}
		out[n].start = start;
		out[n].end = end;
		out[n].prot = ((f & VM_READ) ? PROT_READ : 0) | ((f & VM_WRITE) ? PROT_WRITE : 0);
		/* Without an anon_vma no page of it was ever faulted in. */
		out[n].flags = (!vma->vm_file && !vma->anon_vma) ? SSI_RANGE_EMPTY :
			       !(f & VM_READ)		      ? SSI_RANGE_UNREADABLE :
								0;
		n++;
		prev_end = end;
	}
	mmap_read_unlock(mm);
	return n;
}

/*
 * Counted references to current's sibling threads that are not exiting (at most max;
 * -E2BIG if there are more). The caller drops them with ssi_mig_put_task().
 */
int ssi_mig_siblings(struct task_struct *of, struct task_struct **out, u32 max)
{
	struct task_struct *t;
	int n = 0;

	rcu_read_lock();
	for_each_thread(of, t) {
		if (t == of || (t->flags & PF_EXITING))
			continue;
		if (n == max) {
			n = -E2BIG;
			break;
		}
		get_task_struct(t);
		out[n++] = t;
	}
	rcu_read_unlock();
	if (n < 0) {
		/* Drop what was taken: the caller gets nothing. */
		while (max)
			put_task_struct(out[--max]);
	}
	return n;
}

/* A counted reference to the main thread of t's process. */
struct task_struct *ssi_mig_task_leader(struct task_struct *t)
{
	struct task_struct *leader;

	rcu_read_lock();
	leader = READ_ONCE(t->group_leader);
	get_task_struct(leader);
	rcu_read_unlock();
	return leader;
}

/*
 * Waits (at most 2 s) until no sibling of current is between PF_EXITING and the release
 * of its mm: such a thread may still store to the process's memory (its clear-tid word)
 * and must not do it while that memory is being replaced. 0, or -ETIMEDOUT.
 */
int ssi_mig_wait_exiting_siblings(void)
{
	int tries;

	for (tries = 0; tries < 2000; tries++) {
		struct task_struct *t;
		bool busy = false;

		rcu_read_lock();
		for_each_thread(current, t)
			if (t != current && (t->flags & PF_EXITING) && READ_ONCE(t->mm))
				busy = true;
		rcu_read_unlock();
		if (!busy)
			return 0;
		usleep_range(500, 1000);
	}
	return -ETIMEDOUT;
}

void ssi_mig_put_task(struct task_struct *t)
{
	put_task_struct(t);
}

/* Parks t while its process's memory changes: ssi_migrate_park(ctx) (distribute.rs). */
int ssi_mig_queue_park(struct task_struct *t, void *ctx)
{
	return ssi_mig_queue(t, ssi_migrate_park, ctx);
}

/*
 * Thread stand-ins end with do_exit() while their process lives on, so no descriptor
 * can pin the module for them (the table is the process's): each one leaves its module
 * reference here, and this work drops it once the task has left do_exit() for good
 * (exit_state set). Module exit cancels the work; it can only run with no reference
 * left, so the list is empty then.
 */
struct ssi_mig_dead_thread {
	struct list_head node;
	struct task_struct *task;
};
static LIST_HEAD(ssi_mig_dead_threads);
static DEFINE_SPINLOCK(ssi_mig_dead_lock);
static void ssi_mig_reap(struct work_struct *work);
static DECLARE_DELAYED_WORK(ssi_mig_reaper, ssi_mig_reap);

static void ssi_mig_reap(struct work_struct *work)
{
	struct ssi_mig_dead_thread *d, *tmp;
	LIST_HEAD(done);
	bool more;

	spin_lock(&ssi_mig_dead_lock);
	list_for_each_entry_safe(d, tmp, &ssi_mig_dead_threads, node)
		if (READ_ONCE(d->task->exit_state))
			list_move(&d->node, &done);
	more = !list_empty(&ssi_mig_dead_threads);
	spin_unlock(&ssi_mig_dead_lock);
	if (more)
		queue_delayed_work(system_dfl_wq, &ssi_mig_reaper, HZ / 10);
	list_for_each_entry_safe(d, tmp, &done, node) {
		put_task_struct(d->task);
		kfree(d);
		module_put(THIS_MODULE);
	}
}

static void ssi_mig_held_pages_flush(void);

void ssi_mig_reaper_stop(void)
{
	cancel_delayed_work_sync(&ssi_mig_reaper);
	ssi_mig_held_pages_flush();
}

/*
 * Ends the calling thread stand-in, which holds a module reference (given to the
 * reaper). group: the whole process ends with wait status `status`, as exit_group()
 * would (do_group_exit() is not exported): a SIGKILL to ourselves makes the kernel
 * kill every thread, and the status is then set to the process's own before this
 * thread leaves (the parent cannot reap it before every thread, this one included,
 * has exited). Else only this thread ends.
 */
void __noreturn ssi_mig_thread_exit(int status, bool group)
{
	struct ssi_mig_dead_thread *d = kmalloc(sizeof(*d), GFP_KERNEL | __GFP_NOFAIL);

	get_task_struct(current);
	d->task = current;
	spin_lock(&ssi_mig_dead_lock);
	list_add_tail(&d->node, &ssi_mig_dead_threads);
	spin_unlock(&ssi_mig_dead_lock);
	queue_delayed_work(system_dfl_wq, &ssi_mig_reaper, HZ / 10);
	if (group) {
		bool already;

		spin_lock_irq(&current->sighand->siglock);
		already = (current->signal->flags & SIGNAL_GROUP_EXIT) ||
			  current->signal->group_exec_task || fatal_signal_pending(current);
		spin_unlock_irq(&current->sighand->siglock);
		if (!already) {
			send_sig(SIGKILL, current, 1);
			spin_lock_irq(&current->sighand->siglock);
			if (current->signal->group_exit_code == SIGKILL)
				current->signal->group_exit_code = status;
			spin_unlock_irq(&current->sighand->siglock);
		}
		do_exit(status);
	}
	do_exit(0);
}

void ssi_mig_fput(struct file *file)
{
	fput(file);
}

/* ---- the destination: migrated memory and standard streams ---------------------------- */

struct ssi_pages_file {
	void *ctx;
	/* Set by ssi_mig_restore() around the vm_mmap() of each VMA. */
	bool exec_next;
	bool growsdown_next;
};

/*
 * Fresh fault pages found locked by somebody else (see ssi_mig_fault), read back by the
 * tests; inject_locked_fresh_pages sends the next N faults through that path.
 */
static atomic_t ssi_mig_locked_fresh_pages = ATOMIC_INIT(0);
module_param_named(locked_fresh_pages, ssi_mig_locked_fresh_pages.counter, int, 0444);
MODULE_PARM_DESC(locked_fresh_pages, "fresh fault pages found locked and left to their holder (read only)");
static atomic_t ssi_mig_inject_locked = ATOMIC_INIT(0);
module_param_named(inject_locked_fresh_pages, ssi_mig_inject_locked.counter, int, 0600);
MODULE_PARM_DESC(inject_locked_fresh_pages, "testing: treat the next N fresh fault pages as found locked");

/*
 * A fault page stays referenced here until the fault that maps it has unlocked it.
 *
 * The page a fault returns is in no page cache: its one reference passes to the page
 * table the moment finish_fault() maps it, before the fault unlocks it. A concurrent
 * write fault of another context on the same address (the process's thread while its
 * daemon drains its pages in, or two threads) can copy it, unmap it and drop that
 * reference in between: the page was freed while still locked (a "Bad page state"),
 * and the first fault's unlock then cleared the lock bit of a free page or of
 * somebody else's. A page-cache page is kept alive by its cache; these are kept alive
 * by a second reference, which a worker drops once it could take the page's lock
 * (the fault has unlocked it by then).
 */
struct ssi_mig_held_page {
	struct llist_node node;
	struct page *page;
};

static LLIST_HEAD(ssi_mig_held_pages);

static void ssi_mig_release_held(struct work_struct *work)
{
	struct llist_node *list = llist_del_all(&ssi_mig_held_pages);
	struct ssi_mig_held_page *h, *tmp;

	llist_for_each_entry_safe(h, tmp, list, node) {
		lock_page(h->page);
		unlock_page(h->page);
		put_page(h->page);
		kfree(h);
	}
}

static DECLARE_WORK(ssi_mig_release_work, ssi_mig_release_held);

/*
 * At unload: no fault page stays referenced (every mapping is gone by then). Each page
 * is added before the work is queued, so the last run of the work takes them all.
 */
static void ssi_mig_held_pages_flush(void)
{
	flush_work(&ssi_mig_release_work);
}

static vm_fault_t ssi_mig_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct ssi_pages_file *pf = vma->vm_file->private_data;
	u64 addr = (u64)vmf->pgoff << PAGE_SHIFT;
	struct ssi_mig_held_page *held;
	u64 anchor;
	struct page *page;
	bool locked, injected;
	int ret;

	/*
	 * The page's address on the source is its file offset. The anchor is another
	 * source address of this VMA: a page only comes from the source when both lie in
	 * the same source VMA, so memory added by mremap or stack growth starts zeroed.
	 */
	if (vma->vm_flags & VM_GROWSDOWN)
		anchor = ((u64)(vma->vm_pgoff + vma_pages(vma)) << PAGE_SHIFT) - 1;
	else
		anchor = (u64)vma->vm_pgoff << PAGE_SHIFT;
	held = kmalloc(sizeof(*held), GFP_KERNEL);
	if (!held)
		return VM_FAULT_OOM;
	/* Lowmem, so that page_address() is valid on 32-bit too. */
	page = alloc_page(GFP_USER);
	if (!page) {
		kfree(held);
		return VM_FAULT_OOM;
	}
	/*
	 * Locked at once and handed to __do_fault locked (VM_FAULT_LOCKED): nobody can
	 * take the lock while the fetch waits for the network, and __do_fault never
	 * sleeps on a lock whose holder it cannot know. A fresh page that is locked
	 * already is somebody else's too: it is neither unlocked nor freed here (that
	 * could free a page still in use), only reported and left behind; the fault is
	 * taken again with another page. An injected case is our own lock on our own
	 * page: released and freed.
	 */
	locked = trylock_page(page);
	injected = locked && atomic_add_unless(&ssi_mig_inject_locked, -1, 0);
	if (!locked || injected) {
		atomic_inc(&ssi_mig_locked_fresh_pages);
		if (injected) {
			pr_info_ratelimited("ssi_migrate: fresh page for 0x%llx treated as locked (injected): faulting again\n",
					    addr);
			unlock_page(page);
			put_page(page);
		} else {
			pr_warn_ratelimited("ssi_migrate: fresh page %lx for 0x%llx was already locked: left to its holder, faulting again\n",
					    page_to_pfn(page), addr);
			dump_page(page, "ssi_migrate: fresh fault page found locked");
		}
		kfree(held);
		return VM_FAULT_NOPAGE;
	}
	ret = ssi_migrate_fetch(pf->ctx, addr, anchor, page_address(page));
	if (ret) {
		unlock_page(page);
		__free_page(page);
		kfree(held);
		return ret == -ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
	}
	get_page(page);
	held->page = page;
	llist_add(&held->node, &ssi_mig_held_pages);
	queue_work(system_dfl_wq, &ssi_mig_release_work);
	vmf->page = page;
	return VM_FAULT_LOCKED;
}

static const struct vm_operations_struct ssi_mig_vm_ops = {
	.fault = ssi_mig_fault,
};

static int ssi_mig_pages_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct ssi_pages_file *pf = file->private_data;

	if (vma->vm_flags & VM_MAYSHARE)
		return -EINVAL;
	/*
	 * Anonymous-inode files are on a noexec mount, so vm_mmap() refuses PROT_EXEC and
	 * clears VM_MAYEXEC. These mappings hold the process's own code from its source
	 * node, so executable ones get VM_EXEC here, and all may become executable later
	 * (mprotect), as the memory they replace could.
	 */
	if (pf->exec_next)
		vm_flags_set(vma, VM_EXEC);
	/* do_mmap() refuses MAP_GROWSDOWN for files; the stack must still grow. */
	if (pf->growsdown_next)
		vm_flags_set(vma, VM_GROWSDOWN);
	vm_flags_set(vma, VM_MAYEXEC);
	vma->vm_ops = &ssi_mig_vm_ops;
	return 0;
}

static int ssi_mig_pages_release(struct inode *inode, struct file *file)
{
	struct ssi_pages_file *pf = file->private_data;

	ssi_migrate_ctx_put(pf->ctx);
	kfree(pf);
	return 0;
}

static const struct file_operations ssi_mig_pages_fops = {
	/* Every VMA holds the file, so mapped migrated memory pins the module. */
	.owner = THIS_MODULE,
	.mmap = ssi_mig_pages_mmap,
	.release = ssi_mig_pages_release,
};

/* Whether @file is one that migrated memory maps. */
bool ssi_mig_is_pages_file(struct file *file)
{
	return file->f_op == &ssi_mig_pages_fops;
}

/*
 * The file that migrated memory maps; it takes over the reference @ctx stands for. NULL
 * on failure, when that reference is released here.
 */
struct file *ssi_mig_pages_file(void *ctx)
{
	struct ssi_pages_file *pf = kzalloc(sizeof(*pf), GFP_KERNEL);
	struct file *file;

	if (!pf)
		goto fail;
	pf->ctx = ctx;
	file = anon_inode_getfile("[ssi-migrated]", &ssi_mig_pages_fops, pf, O_RDWR);
	if (IS_ERR(file)) {
		kfree(pf);
		goto fail;
	}
	return file;
fail:
	ssi_migrate_ctx_put(ctx);
	return NULL;
}

static ssize_t ssi_mig_stdio_read(struct file *file, char __user *buf, size_t len,
				  loff_t *ppos)
{
	return ssi_migrate_stdio_read(file->private_data, buf, len);
}

static ssize_t ssi_mig_stdio_write(struct file *file, const char __user *buf, size_t len,
				   loff_t *ppos)
{
	return ssi_migrate_stdio_write(file->private_data, buf, len);
}

/*
 * Closed while the process exits (its last thread's files go): tell whether it ends as
 * a whole (exit_group or a fatal signal) or only its thread did (a moved thread's
 * exit), which its wait status cannot say. The kernel marks the exit of a process's
 * last thread as a group exit either way, so the exit's own cause is looked at: a
 * signal in the exit code, or the system call it is in.
 */
static int ssi_mig_stdio_flush(struct file *file, fl_owner_t id)
{
	struct pt_regs *regs = task_pt_regs(current);
	bool group;
	int nr;

	/*
	 * Only the end of the last of its threads here says how the process ended: a thread
	 * with a file table of its own (no CLONE_FILES, or unshare()) closes its copy of
	 * the streams before that (do_exit() counts a thread out of signal->live before it
	 * drops its files).
	 */
	if (!(current->flags & PF_EXITING) || atomic_read(&current->signal->live))
		return 0;
	/*
	 * The whole process ends unless that last thread ended by itself (exit(), what
	 * pthread_exit() makes): exit_group(), a fatal signal, or a sibling's exit_group()
	 * that killed it (a thread the moved one started here may have made that call and
	 * ended first). SIGNAL_GROUP_EXIT cannot tell: the kernel sets it when the last
	 * thread ends, however it ends. Not told apart: a sibling's exit_group() while the
	 * last thread was already in exit() (both end with the same status).
	 */
	nr = syscall_get_nr(current, regs);
#ifdef __X32_SYSCALL_BIT
	nr &= ~__X32_SYSCALL_BIT;
#endif
	group = (current->signal->group_exit_code & 0x7f) || nr != __NR_exit;
	ssi_migrate_stdio_exiting(file->private_data, group);
	return 0;
}

static int ssi_mig_stdio_release(struct inode *inode, struct file *file)
{
	ssi_migrate_stdio_put(file->private_data);
	return 0;
}

static const struct file_operations ssi_mig_stdin_fops = {
	.owner = THIS_MODULE,
	.read = ssi_mig_stdio_read,
	.flush = ssi_mig_stdio_flush,
	.release = ssi_mig_stdio_release,
	.llseek = noop_llseek,
};

static const struct file_operations ssi_mig_stdout_fops = {
	.owner = THIS_MODULE,
	.write = ssi_mig_stdio_write,
	.flush = ssi_mig_stdio_flush,
	.release = ssi_mig_stdio_release,
	.llseek = noop_llseek,
};

/*
 * If addr lies in one of t's migrated mappings, its address on the node the process
 * came from (*src) and the anchor of that mapping (see ssi_mig_fault); 1 then, 0 if
 * addr is in other memory (made or changed here).
 */
int ssi_mig_source_addr(struct task_struct *t, u64 addr, u64 *src, u64 *anchor)
{
	struct mm_struct *mm = get_task_mm(t);
	struct vm_area_struct *vma;
	int ret = 0;

	if (!mm)
		return 0;
	mmap_read_lock(mm);
	vma = find_vma(mm, addr);
	if (vma && vma->vm_start <= addr && vma->vm_file &&
	    vma->vm_file->f_op == &ssi_mig_pages_fops) {
		*src = (((addr - vma->vm_start) >> PAGE_SHIFT) + vma->vm_pgoff) << PAGE_SHIFT;
		if (vma->vm_flags & VM_GROWSDOWN)
			*anchor = ((u64)(vma->vm_pgoff + vma_pages(vma)) << PAGE_SHIFT) - 1;
		else
			*anchor = (u64)vma->vm_pgoff << PAGE_SHIFT;
		ret = 1;
	}
	mmap_read_unlock(mm);
	mmput(mm);
	return ret;
}

/*
 * Replaces current's descriptors 0, 1 and 2 with the forwarded streams (the contexts'
 * references pass to the files, or are dropped on failure).
 */
int ssi_mig_stdio_install(void *in_ctx, void *out_ctx, void *err_ctx)
{
	static const char *const names[3] = { "[ssi-stdin]", "[ssi-stdout]", "[ssi-stderr]" };
	void *ctxs[3] = { in_ctx, out_ctx, err_ctx };
	struct file *files[3] = { NULL, NULL, NULL };
	int i, ret = 0;

	for (i = 0; i < 3; i++) {
		files[i] = anon_inode_getfile(names[i],
					      i ? &ssi_mig_stdout_fops : &ssi_mig_stdin_fops,
					      ctxs[i], i ? O_WRONLY : O_RDONLY);
		if (IS_ERR(files[i])) {
			ret = PTR_ERR(files[i]);
			files[i] = NULL;
			break;
		}
		ctxs[i] = NULL;
		stream_open(file_inode(files[i]), files[i]);
	}
	for (i = 0; i < 3 && !ret; i++) {
		int fd;

		close_fd(i);
		fd = get_unused_fd_flags(0);
		if (fd != i) {
			if (fd >= 0)
				put_unused_fd(fd);
			ret = -EBUSY;
			break;
		}
		fd_install(fd, files[i]);
		files[i] = NULL;
	}
	for (i = 0; i < 3; i++) {
		if (files[i])
			fput(files[i]);
		if (ctxs[i])
			ssi_migrate_stdio_put(ctxs[i]);
	}
	return ret;
}

/*
 * Closes current's descriptors from `first` on: the process had none (it could not
 * migrate otherwise), the daemon's child has its device. The running ioctl holds its
 * own reference to the device file.
 */
static void __maybe_unused ssi_close_from(unsigned int first)
{
	unsigned int fd, max;

	rcu_read_lock();
	max = files_fdtable(current->files)->max_fds;
	rcu_read_unlock();
	for (fd = first; fd < max; fd++)
		close_fd(fd);
}

#ifdef CONFIG_X86_64

/* Whether current's special mapping vma is where the snapshot has it. */
static bool ssi_special_in_place(struct vm_area_struct *vma, const struct ssi_vma_info *v,
				 u32 n)
{
	const char *name = vma->vm_ops->name(vma);
	u32 i;

	for (i = 0; i < n; i++)
		if ((v[i].flags & SSI_VMA_SPECIAL) && v[i].start == vma->vm_start &&
		    v[i].end == vma->vm_end && !strncmp(v[i].name, name, SSI_VMA_NAME_LEN))
			return true;
	return false;
}

/*
 * In the daemon's child (current): replaces its address space with the snapshot's
 * layout (contents fault in through `pages`), its signal actions with the process's,
 * and its user registers with a return into the restorer trampoline.
 */
int ssi_mig_restore(struct file *pages, const struct ssi_mm_info *mi,
		    const struct ssi_vma_info *vmas, u32 nr, const void *state, size_t len,
		    u32 home, char *why)
{
	const struct ssi_task_state *st = state;
	struct ssi_pages_file *pf = pages->private_data;
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	unsigned long *ranges, frame;
	u32 i, nranges = 0, specials = 0, want_specials = 0;
	int ret;

	ret = ssi_check_state(st, len, why);
	if (ret)
		return ret;
	if (get_nr_threads(current) != 1) {
		snprintf(why, SSI_WHY_LEN, "the restoring process has threads");
		return -EINVAL;
	}
	for (i = 0; i < nr; i++) {
		if (vmas[i].start >= vmas[i].end || vmas[i].end > TASK_SIZE ||
		    (vmas[i].start | vmas[i].end) & ~PAGE_MASK ||
		    (i && vmas[i].start < vmas[i - 1].end)) {
			snprintf(why, SSI_WHY_LEN, "bad mapping %u in the snapshot", i);
			return -EINVAL;
		}
		if (vmas[i].flags & SSI_VMA_SPECIAL)
			want_specials++;
	}

	/* Everything but the special mappings, which the daemon moved into place. */
	ranges = kvmalloc_array(2 * (mm->map_count + 1), sizeof(*ranges), GFP_KERNEL);
	if (!ranges)
		return -ENOMEM;
	mmap_read_lock(mm);
	{
		VMA_ITERATOR(vmi, mm, 0);

		for_each_vma(vmi, vma) {
			if (vma->vm_ops && vma->vm_ops->name) {
				if (!ssi_special_in_place(vma, vmas, nr)) {
					snprintf(why, SSI_WHY_LEN,
						 "%s at %#lx is not where the process had it",
						 vma->vm_ops->name(vma), vma->vm_start);
					ret = -EINVAL;
					break;
				}
				specials++;
				continue;
			}
			if (nranges == 2 * mm->map_count)
				break;
			ranges[nranges++] = vma->vm_start;
			ranges[nranges++] = vma->vm_end - vma->vm_start;
		}
	}
	mmap_read_unlock(mm);
	if (!ret && specials != want_specials) {
		snprintf(why, SSI_WHY_LEN, "%u of %u special mappings are in place", specials,
			 want_specials);
		ret = -EINVAL;
	}
	if (ret) {
		kvfree(ranges);
		return ret;
	}
	/* Point of no return: the caller's own memory goes. */
	for (i = 0; i < nranges; i += 2)
		vm_munmap(ranges[i], ranges[i + 1]);
	kvfree(ranges);

	for (i = 0; i < nr; i++) {
		const struct ssi_vma_info *v = &vmas[i];
		unsigned long prot = 0, flags = MAP_PRIVATE | MAP_FIXED_NOREPLACE, got;

		if (v->flags & SSI_VMA_SPECIAL)
			continue;
		if (v->flags & SSI_VMA_READ)
			prot |= PROT_READ;
		if (v->flags & SSI_VMA_WRITE)
			prot |= PROT_WRITE;
		if (v->flags & SSI_VMA_REGION) {
			/* Memory shared with the process's other nodes: the region's own mapping. */
			ret = ssi_migrate_map_region(home, v, prot);
			if (ret) {
				snprintf(why, SSI_WHY_LEN, "mapping %#llx-%#llx (%s) of region %llx failed (%d)",
					 v->start, v->end, v->name, v->region, ret);
				return ret;
			}
			continue;
		}
		pf->exec_next = v->flags & SSI_VMA_EXEC;
		pf->growsdown_next = v->flags & SSI_VMA_GROWSDOWN;
		got = vm_mmap(pages, v->start, v->end - v->start, prot, flags, v->start);
		pf->exec_next = false;
		pf->growsdown_next = false;
		if (got != v->start) {
			snprintf(why, SSI_WHY_LEN, "mapping %#llx-%#llx (%s) failed (%ld)", v->start,
				 v->end, v->name, IS_ERR_VALUE(got) ? (long)got : -EEXIST);
			return IS_ERR_VALUE(got) ? (int)got : -EEXIST;
		}
	}

	mmap_write_lock(mm);
	mm->start_code = mi->start_code;
	mm->end_code = mi->end_code;
	mm->start_data = mi->start_data;
	mm->end_data = mi->end_data;
	mm->start_brk = mi->start_brk;
	mm->brk = mi->brk;
	mm->start_stack = mi->start_stack;
	spin_lock(&mm->arg_lock);
	mm->arg_start = mi->arg_start;
	mm->arg_end = mi->arg_end;
	mm->env_start = mi->env_start;
	mm->env_end = mi->env_end;
	spin_unlock(&mm->arg_lock);
	memcpy(mm->saved_auxv, mi->auxv,
	       min_t(size_t, sizeof(mm->saved_auxv), mi->auxv_words * sizeof(unsigned long)));
	mmap_write_unlock(mm);

	ssi_restore_sigactions(st);
#ifdef CONFIG_RSEQ
	/* The daemon child's rseq area is gone; the trampoline registers the process's. */
	rseq_execve(current);
#endif
	ret = ssi_write_frame(st, &frame, why);
	if (!ret)
		ret = ssi_enter_trampoline(st, frame, why);
	if (!ret)
		ssi_close_from(3);
	return ret;
}

/*
 * A moved thread comes home: current is its stand-in (the thread's own task, in its
 * task_work), in the process's address space. Its user registers become the
 * snapshot's through the same signal frame and trampoline a restore uses; the
 * interrupted system call of the stand-in is not restarted over them.
 */
int ssi_mig_thread_resume(const void *state, size_t len, char *why)
{
	const struct ssi_task_state *st = state;
	unsigned long frame;
	int ret;

	ret = ssi_check_state(st, len, why);
	if (ret)
		return ret;
	ret = ssi_write_frame(st, &frame, why);
	if (ret)
		return ret;
	ret = ssi_enter_trampoline(st, frame, why);
	if (ret)
		return ret;
	task_pt_regs(current)->orig_ax = -1;
	return 0;
}

#else

int ssi_mig_restore(struct file *pages, const struct ssi_mm_info *mi,
		    const struct ssi_vma_info *vmas, u32 nr, const void *state, size_t len,
		    u32 home, char *why)
{
	return ssi_check_state(state, len, why);
}

int ssi_mig_thread_resume(const void *state, size_t len, char *why)
{
	return ssi_check_state(state, len, why);
}

#endif

/* Whether a snapshot's register state can be resumed on this node. */
int ssi_mig_check_state(const void *state, size_t len, char *why)
{
	return ssi_check_state(state, len, why);
}

/*
 * A moved thread left this node while its process lives on: current (its task here)
 * ends without the thread's exit effects on the shared memory, which belong to the
 * thread that runs on: no clear-tid wake (pthread_join would see it end), no robust
 * futex marked as its owner died.
 */
void ssi_mig_forget_thread_exit_effects(void)
{
	current->clear_child_tid = NULL;
#ifdef CONFIG_FUTEX
	current->futex.robust_list = NULL;
#ifdef CONFIG_COMPAT
	current->futex.compat_robust_list = NULL;
#endif
#endif
}
