// SPDX-License-Identifier: GPL-2.0
/*
 * Distributed processes on this node: which processes are distributed here, the
 * redirect of their futex calls to ssi_migrate's own futexes (cluster_futex.rs), and the
 * refusal of their forks.
 *
 * Nothing of the kernel's futex code is exported, and it cannot work across nodes: a
 * waiter on one node must be woken by a store and a wake on another. So the futex calls
 * of a distributed process go to ssi_migrate instead, with ftrace's exported interface
 * (the one live patching uses): a handler on do_futex(), where every futex(2) operation
 * and the kernel's own clear-tid wake of an exiting thread (mm_release()) converge,
 * sends a call from a distributed process's task to ssi_do_futex(), which has the same
 * signature; every other process runs the kernel's do_futex() untouched. See
 * docs/ARCHITECTURE.md, "Distributed threads", for why this and not something else.
 *
 * A fork (a clone without CLONE_VM) of a distributed process would share the process's
 * private-memory regions with the child instead of copying them, so kernel_clone() is
 * redirected the same way for those calls, to a function that refuses with EBUSY and
 * says why in the kernel log. Threads, vfork() and posix_spawn() share the address space
 * anyway and are left alone.
 *
 * A process is distributed on a node while the node runs one of its threads (the home
 * once a thread moved away; a destination while it runs one); it is known here by its
 * mm, held with mmgrab() so that the pointer cannot name another process later. Each
 * entry pins the module (its threads may sleep in it); a work item forgets the entries
 * whose address space is gone, tells futex.rs (their waiters go), and drops the
 * reference; module exit cancels it, which it can only reach once no entry is left.
 */
#include <linux/ftrace.h>
#include <linux/sched/task.h>
#include <linux/futex.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <asm/futex.h>

#include "shim.h"

#define SSI_MAX_DISTRIBUTED 64

struct ssi_distributed {
	struct mm_struct *mm;
	u64 id;
	u32 home;
};

static struct ssi_distributed ssi_dist[SSI_MAX_DISTRIBUTED];
static DEFINE_SPINLOCK(ssi_dist_lock);
/* Entries in use: the handler's whole cost for everybody else while there are none. */
static atomic_t ssi_dist_count = ATOMIC_INIT(0);

static void ssi_dist_reap(struct work_struct *work);
static DECLARE_DELAYED_WORK(ssi_dist_reaper, ssi_dist_reap);

/* The entry of mm, if any (no lock: the handler only compares pointers). */
static notrace int ssi_dist_find(struct mm_struct *mm)
{
	int i;

	for (i = 0; i < SSI_MAX_DISTRIBUTED; i++)
		if (READ_ONCE(ssi_dist[i].mm) == mm)
			return i;
	return -1;
}

/*
 * Records current's process as distributed process id of home (again: a no-op with the
 * same id). -EEXIST if it is known with another id, -ENOSPC when the table is full.
 */
int ssi_mig_dist_add(u64 id, u32 home)
{
	struct mm_struct *mm = current->mm;
	int i, free = -1, ret = 0;

	if (!mm)
		return -ESRCH;
	spin_lock(&ssi_dist_lock);
	for (i = 0; i < SSI_MAX_DISTRIBUTED; i++) {
		if (ssi_dist[i].mm == mm) {
			ret = ssi_dist[i].id == id && ssi_dist[i].home == home ? 0 : -EEXIST;
			goto out;
		}
		if (!ssi_dist[i].mm && free < 0)
			free = i;
	}
	if (free < 0) {
		ret = -ENOSPC;
		goto out;
	}
	mmgrab(mm);
	__module_get(THIS_MODULE);
	ssi_dist[free].id = id;
	ssi_dist[free].home = home;
	/* Published last: the handler sees a complete entry. */
	smp_store_release(&ssi_dist[free].mm, mm);
	atomic_inc(&ssi_dist_count);
	queue_delayed_work(system_dfl_wq, &ssi_dist_reaper, HZ);
out:
	spin_unlock(&ssi_dist_lock);
	return ret;
}

/* Current's distributed process (1), or 0 if it is not one. */
int ssi_mig_dist_current(u64 *id, u32 *home)
{
	int i, ret = 0;

	if (!current->mm)
		return 0;
	spin_lock(&ssi_dist_lock);
	i = ssi_dist_find(current->mm);
	if (i >= 0) {
		*id = ssi_dist[i].id;
		*home = ssi_dist[i].home;
		ret = 1;
	}
	spin_unlock(&ssi_dist_lock);
	return ret;
}

/*
 * Forgets the processes whose address space is gone (no task uses it any more), or
 * every one with all; tells futex.rs of each, then drops its mm and module references.
 */
static void ssi_dist_prune(bool all)
{
	struct mm_struct *drop[SSI_MAX_DISTRIBUTED];
	u64 ended[SSI_MAX_DISTRIBUTED];
	int i, n = 0;

	spin_lock(&ssi_dist_lock);
	for (i = 0; i < SSI_MAX_DISTRIBUTED; i++) {
		struct mm_struct *mm = ssi_dist[i].mm;

		if (!mm || (!all && atomic_read(&mm->mm_users)))
			continue;
		ended[n] = ssi_dist[i].id;
		drop[n++] = mm;
		WRITE_ONCE(ssi_dist[i].mm, NULL);
		atomic_dec(&ssi_dist_count);
	}
	spin_unlock(&ssi_dist_lock);
	for (i = 0; i < n; i++) {
		ssi_migrate_space_ended(ended[i]);
		mmdrop(drop[i]);
		module_put(THIS_MODULE);
	}
}

static void ssi_dist_reap(struct work_struct *work)
{
	ssi_dist_prune(false);
	if (atomic_read(&ssi_dist_count))
		queue_delayed_work(system_dfl_wq, &ssi_dist_reaper, HZ);
}

/* How many processes are distributed here (those that ended included until pruned). */
int ssi_mig_dist_count(void)
{
	return atomic_read(&ssi_dist_count);
}

/* ---- the redirect ------------------------------------------------------------------- */

/* Redirecting needs ftrace to be able to change where the traced call goes. */
#if defined(CONFIG_DYNAMIC_FTRACE_WITH_REGS) || defined(CONFIG_DYNAMIC_FTRACE_WITH_ARGS)

/*
 * Same signature as do_futex() (kernel/futex/syscalls.c): the handler makes the traced
 * call continue here, with its arguments (the seventh on the stack) in place. The
 * timeout, if any, is absolute: on CLOCK_REALTIME with FUTEX_CLOCK_REALTIME, else on
 * CLOCK_MONOTONIC (the system call converted it).
 */
static long ssi_do_futex(u32 __user *uaddr, int op, u32 val, ktime_t *timeout,
			 u32 __user *uaddr2, u32 val2, u32 val3)
{
	u64 id;
	u32 home;
	s64 deadline = -1;
	long ret;

	/*
	 * The entry pins the module while it exists; this reference keeps it while the
	 * call sleeps here, in case the entry goes meanwhile.
	 */
	if (!try_module_get(THIS_MODULE))
		return -EAGAIN;
	/* It may have ended meanwhile: then nobody else can wait on its words. */
	if (!ssi_mig_dist_current(&id, &home)) {
		ret = (op & FUTEX_CMD_MASK) == FUTEX_WAKE ? 0 : -EAGAIN;
	} else {
		if (timeout)
			deadline = ktime_to_ns(*timeout);
		ret = ssi_migrate_futex(id, home, (unsigned long)uaddr, (u32)op, val, deadline,
					(unsigned long)uaddr2, val2, val3);
	}
	module_put(THIS_MODULE);
	return ret;
}

static void notrace ssi_futex_ftrace(unsigned long ip, unsigned long parent_ip,
				     struct ftrace_ops *ops, struct ftrace_regs *fregs)
{
	struct mm_struct *mm;
	int bit;

	if (likely(!atomic_read(&ssi_dist_count)))
		return;
	bit = ftrace_test_recursion_trylock(ip, parent_ip);
	if (WARN_ON_ONCE(bit < 0))
		return;
	mm = current->mm;
	if (mm && ssi_dist_find(mm) >= 0)
		ftrace_regs_set_instruction_pointer(fregs, (unsigned long)ssi_do_futex);
	ftrace_test_recursion_unlock(bit);
}

/* Same signature as kernel_clone(): a fork of a distributed process is refused. */
static pid_t ssi_refuse_fork(struct kernel_clone_args *args)
{
	pr_info_ratelimited("ssi_migrate: pid %d: fork refused (EBUSY): its memory is shared with its threads on other nodes\n",
			    task_tgid_vnr(current));
	return -EBUSY;
}

static void notrace ssi_clone_ftrace(unsigned long ip, unsigned long parent_ip,
				     struct ftrace_ops *ops, struct ftrace_regs *fregs)
{
	struct kernel_clone_args *args;
	struct mm_struct *mm;
	int bit;

	if (likely(!atomic_read(&ssi_dist_count)))
		return;
	bit = ftrace_test_recursion_trylock(ip, parent_ip);
	if (WARN_ON_ONCE(bit < 0))
		return;
	args = (struct kernel_clone_args *)ftrace_regs_get_argument(fregs, 0);
	mm = current->mm;
	if (mm && args && !(args->flags & CLONE_VM) && ssi_dist_find(mm) >= 0)
		ftrace_regs_set_instruction_pointer(fregs, (unsigned long)ssi_refuse_fork);
	ftrace_test_recursion_unlock(bit);
}

#define SSI_FTRACE_FLAGS                                                   \
	(FTRACE_OPS_FL_DYNAMIC | FTRACE_OPS_FL_IPMODIFY | FTRACE_OPS_FL_PERMANENT | \
	 SSI_FTRACE_SAVE_REGS)
#ifdef CONFIG_HAVE_DYNAMIC_FTRACE_WITH_ARGS
#define SSI_FTRACE_SAVE_REGS 0
#else
#define SSI_FTRACE_SAVE_REGS FTRACE_OPS_FL_SAVE_REGS
#endif

/* One redirected kernel function. */
struct ssi_hook {
	const char *function;
	struct ftrace_ops ops;
	bool installed;
};

static struct ssi_hook ssi_hooks[] = {
	{ .function = "do_futex", .ops = { .func = ssi_futex_ftrace, .flags = SSI_FTRACE_FLAGS } },
	{ .function = "kernel_clone",
	  .ops = { .func = ssi_clone_ftrace, .flags = SSI_FTRACE_FLAGS } },
};

static void ssi_hook_remove(struct ssi_hook *h)
{
	if (!h->installed)
		return;
	unregister_ftrace_function(&h->ops);
	ftrace_free_filter(&h->ops);
	h->installed = false;
}

static int ssi_hook_install(struct ssi_hook *h)
{
	int ret = ftrace_set_filter(&h->ops, (unsigned char *)h->function, strlen(h->function), 0);

	if (ret) {
		pr_err("ssi_migrate: cannot trace %s (%d)\n", h->function, ret);
		return ret;
	}
	ret = register_ftrace_function(&h->ops);
	if (ret) {
		pr_err("ssi_migrate: cannot redirect %s (%d): is it live-patched?\n", h->function,
		       ret);
		ftrace_free_filter(&h->ops);
		return ret;
	}
	h->installed = true;
	return 0;
}

/* Module exit (no distributed process is left: each pins the module). */
void ssi_mig_hooks_remove(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(ssi_hooks); i++)
		ssi_hook_remove(&ssi_hooks[i]);
}

/* Module init: the redirects of distributed processes' calls (see above), all or none. */
int ssi_mig_hooks_install(void)
{
	int i, ret;

	for (i = 0; i < ARRAY_SIZE(ssi_hooks); i++) {
		ret = ssi_hook_install(&ssi_hooks[i]);
		if (ret) {
			ssi_mig_hooks_remove();
			return ret;
		}
	}
	return 0;
}

#else /* no ftrace redirect */

int ssi_mig_hooks_install(void)
{
	pr_warn("ssi_migrate: this kernel's ftrace cannot redirect calls (CONFIG_FUNCTION_TRACER with DYNAMIC_FTRACE_WITH_ARGS or _WITH_REGS)\n");
	return -EOPNOTSUPP;
}

void ssi_mig_hooks_remove(void)
{
}

#endif

/*
 * Module exit: the reaper may have dropped the last entry's module reference and still
 * be returning; wait for it (no entry is left, so it cannot run again).
 */
void ssi_mig_dist_stop(void)
{
	cancel_delayed_work_sync(&ssi_dist_reaper);
}

/* ---- what futex.rs needs of the caller's memory and clocks --------------------------- */

/* Reads the futex word at uaddr of current (faults it in as needed). */
int ssi_mig_futex_read(unsigned long uaddr, u32 *val)
{
	if (uaddr & 3)
		return -EINVAL;
	return get_user(*val, (u32 __user *)uaddr) ? -EFAULT : 0;
}

/*
 * Compare-and-exchange of the futex word at uaddr of current; *old gets what was there
 * (the exchange happened iff it equals oldval). Page faults are allowed: the word is
 * faulted in (from another node, for a distributed process) and the access retried.
 */
int ssi_mig_futex_cmpxchg(unsigned long uaddr, u32 oldval, u32 newval, u32 *old)
{
	if (uaddr & 3)
		return -EINVAL;
	if (!access_ok((u32 __user *)uaddr, sizeof(u32)))
		return -EFAULT;
	return futex_atomic_cmpxchg_inatomic(old, (u32 __user *)uaddr, oldval, newval);
}

/* Nanoseconds from now to the absolute time deadline (negative: past). */
s64 ssi_mig_ns_until(s64 deadline, bool realtime)
{
	return deadline - (realtime ? ktime_get_real_ns() : ktime_get_ns());
}
