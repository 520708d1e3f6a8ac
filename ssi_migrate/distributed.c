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
 * anyway and are left alone. An execve() on a node other than the process's home is
 * refused the same way: the new program would replace the process there only.
 *
 * On a node a thread moved to, its ids are those it has at home: getpid(), getppid()
 * and gettid() of the moved thread are redirected to answer them, and kill() or tgkill()
 * of its process's pid there to send the signal to the home (home_signals.rs), which
 * delivers it as if it were sent there. Only calls of tasks of distributed processes
 * are redirected; a hook costs everybody else one atomic read.
 *
 * A timed futex wait interrupted when its process became distributed restarts through
 * futex_wait_restart(), not do_futex(), and the robust-list cleanup of an exiting thread
 * wakes with futex_wake() directly: both are redirected too.
 *
 * The futex2 system calls (futex_wake, futex_wait, futex_requeue) bypass do_futex(), so
 * they are redirected too, each carried out as the futex(2) call it amounts to;
 * futex_waitv is refused with ENOSYS (its users fall back to futex(2)).
 *
 * Its address space stays one: an mmap() of a distributed process goes to
 * address_space.rs (shared memory, or a private file mapping, that the home places and
 * every address space of the process maps), and so does a munmap() of such memory;
 * brk() cannot move the break (glibc's malloc then maps its memory instead) and mremap()
 * fails with ENOMEM (glibc's realloc then copies). See docs/ARCHITECTURE.md,
 * "Distributed threads".
 *
 * A process is distributed on a node while the node runs one of its threads (the home
 * once a thread moved away; a destination while it runs one); it is known here by its
 * mm, held with mmgrab() so that the pointer cannot name another process later. Each
 * entry pins the module (its threads may sleep in it); a work item forgets the entries
 * whose address space is gone, tells futex.rs (their waiters go), and drops the
 * reference; module exit cancels it, which it can only reach once no entry is left.
 */
#include <linux/file.h>
#include <linux/ftrace.h>
#include <linux/hugetlb.h>
#include <linux/kthread.h>
#include <linux/mman.h>
#include <linux/pid.h>
#include <linux/restart_block.h>
#include <linux/sched/signal.h>
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
	/*
	 * On a node that runs a moved thread (not its home): the process's pid and its
	 * parent's at home, the thread's id at home and its task here (by pid); 0 at home.
	 */
	u32 home_tgid, home_ppid, home_tid;
	pid_t moved_task;
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
 * Whether entry i is an address space of distributed process id (with home_only, the
 * home's own). Called with ssi_dist_lock held.
 */
static bool ssi_dist_is(int i, u64 id, bool home_only)
{
	return ssi_dist[i].mm && ssi_dist[i].id == id && !(home_only && ssi_dist[i].home_tgid);
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
	ssi_dist[free].home_tgid = 0;
	ssi_dist[free].home_ppid = 0;
	ssi_dist[free].home_tid = 0;
	ssi_dist[free].moved_task = 0;
	/* Published last: the handler sees a complete entry. */
	smp_store_release(&ssi_dist[free].mm, mm);
	atomic_inc(&ssi_dist_count);
	queue_delayed_work(system_dfl_wq, &ssi_dist_reaper, HZ);
out:
	spin_unlock(&ssi_dist_lock);
	return ret;
}

/*
 * On the node a thread moved to, current being that thread: the ids the thread has at
 * its home (getpid(), getppid() and gettid() answer them here, and a tgkill() or kill()
 * of that pid goes to the home).
 */
void ssi_mig_dist_set_home_ids(u32 tgid, u32 ppid, u32 tid)
{
	int i;

	spin_lock(&ssi_dist_lock);
	i = ssi_dist_find(current->mm);
	if (i >= 0) {
		WRITE_ONCE(ssi_dist[i].home_ppid, ppid);
		WRITE_ONCE(ssi_dist[i].home_tid, tid);
		WRITE_ONCE(ssi_dist[i].moved_task, current->pid);
		/* Last: a nonzero home pid says the entry is complete. */
		smp_store_release(&ssi_dist[i].home_tgid, tgid);
	}
	spin_unlock(&ssi_dist_lock);
}

/*
 * At the home of distributed process id (tgid there): sends sig to its thread tid, or to
 * the whole process when tid is 0, for a thread of it on another node (kill(2) and
 * tgkill(2) there). The signal is the kernel's (SI_KERNEL): the sender is a thread of
 * the process itself, on another node.
 */
int ssi_mig_dist_kill(u64 id, u32 tgid, u32 tid, int sig)
{
	struct mm_struct *mm = NULL;
	struct task_struct *t;
	int i, ret = 0;

	if (sig < 0 || sig > _NSIG || !tgid)
		return -EINVAL;
	spin_lock(&ssi_dist_lock);
	for (i = 0; i < SSI_MAX_DISTRIBUTED; i++) {
		if (ssi_dist_is(i, id, true)) {
			mm = ssi_dist[i].mm;
			break;
		}
	}
	spin_unlock(&ssi_dist_lock);
	if (!mm)
		return -ESRCH;
	rcu_read_lock();
	t = pid_task(find_vpid(tid ? tid : tgid), PIDTYPE_PID);
	if (t && (t->mm != mm || task_tgid_vnr(t) != tgid))
		t = NULL;
	if (t)
		get_task_struct(t);
	rcu_read_unlock();
	if (!t)
		return -ESRCH;
	if (sig)
		ret = tid ? send_sig_info(sig, SEND_SIG_PRIV, t) :
			    kill_pid(task_tgid(t), sig, 1);
	put_task_struct(t);
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
 * The home node of distributed process id as this node knows it (1), or 0 if no address
 * space of it is here.
 */
int ssi_mig_dist_home(u64 id, u32 *home)
{
	int i, ret = 0;

	spin_lock(&ssi_dist_lock);
	for (i = 0; i < SSI_MAX_DISTRIBUTED; i++) {
		if (ssi_dist_is(i, id, false)) {
			*home = ssi_dist[i].home;
			ret = 1;
			break;
		}
	}
	spin_unlock(&ssi_dist_lock);
	return ret;
}

/*
 * The address spaces of distributed process id here that still have users (at home only
 * the home's own with home_only), each with a user reference for ssi_mig_mm_put(); at
 * most max. Returns how many.
 */
int ssi_mig_dist_mms(u64 id, bool home_only, struct mm_struct **out, u32 max)
{
	int i, n = 0;

	spin_lock(&ssi_dist_lock);
	for (i = 0; i < SSI_MAX_DISTRIBUTED && n < max; i++) {
		if (ssi_dist_is(i, id, home_only) && mmget_not_zero(ssi_dist[i].mm))
			out[n++] = ssi_dist[i].mm;
	}
	spin_unlock(&ssi_dist_lock);
	return n;
}

/* Work items change another process's address space as its own (kthread_use_mm()). */
void ssi_mig_mm_use(struct mm_struct *mm)
{
	kthread_use_mm(mm);
}

void ssi_mig_mm_unuse(struct mm_struct *mm)
{
	kthread_unuse_mm(mm);
}

void ssi_mig_mm_put(struct mm_struct *mm)
{
	mmput(mm);
}

/* Current's address space, as an opaque token (0 for none). */
u64 ssi_mig_mm_token(void)
{
	return (u64)(unsigned long)current->mm;
}

/*
 * Whether every address space of a distributed process maps @vma alike: a private-memory
 * region mapping, a moved thread's migrated memory (what its layout took along), or a
 * private mapping of a named regular file that is not both writable and executable (one
 * the process had when it became distributed, or one made alike since). Private
 * mappings of devices, of deleted files (memfd) and writable code stay the node's own
 * (address_space.rs leaves them local), and another node's munmap must not take them.
 */
static bool ssi_vma_alike(struct vm_area_struct *vma)
{
	struct file *file = vma->vm_file;
	u32 pages;

	if (file && !(vma->vm_flags & VM_MAYSHARE)) {
		if (ssi_mig_is_pages_file(file))
			return true;
		return S_ISREG(file_inode(file)->i_mode) && !d_unlinked(file->f_path.dentry) &&
		       (vma->vm_flags & (VM_WRITE | VM_EXEC)) != (VM_WRITE | VM_EXEC);
	}
	return ssi_migrate_region_of(vma, &pages) != 0;
}

/* The first mapping of current that meets [addr, end) and is alike everywhere, clipped. */
static bool ssi_first_alike_in(unsigned long addr, unsigned long end, unsigned long *from,
			       unsigned long *to)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	bool found = false;
	VMA_ITERATOR(vmi, mm, addr);

	mmap_read_lock(mm);
	for_each_vma_range(vmi, vma, end) {
		if (ssi_vma_alike(vma)) {
			*from = max(vma->vm_start, addr);
			*to = min(vma->vm_end, end);
			found = true;
			break;
		}
	}
	mmap_read_unlock(mm);
	return found;
}

/* The private-memory region current maps at addr, or 0. */
u64 ssi_mig_region_at(unsigned long addr)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	u64 region = 0;
	u32 pages;

	if (!mm)
		return 0;
	mmap_read_lock(mm);
	vma = vma_lookup(mm, addr);
	if (vma)
		region = ssi_migrate_region_of(vma, &pages);
	mmap_read_unlock(mm);
	return region;
}

/*
 * The first private-memory region mapping of current in [addr, addr + len) that is not
 * readable and writable, clipped to the range: where it is, which region, that region's
 * size and the page of it mapped at p->start. false if there is none.
 */
bool ssi_mig_closed_region_in(unsigned long addr, unsigned long len,
			      struct ssi_region_piece *p)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	unsigned long end = addr + len;
	bool found = false;
	VMA_ITERATOR(vmi, mm, addr);

	if (!mm || end < addr)
		return false;
	mmap_read_lock(mm);
	for_each_vma_range(vmi, vma, end) {
		u32 pages;
		u64 region = ssi_migrate_region_of(vma, &pages);

		if (!region || (vma->vm_flags & (VM_READ | VM_WRITE)) == (VM_READ | VM_WRITE))
			continue;
		p->start = max(vma->vm_start, addr);
		p->end = min(vma->vm_end, end);
		p->region = region;
		p->region_pages = pages;
		p->pgoff = vma->vm_pgoff + ((p->start - vma->vm_start) >> PAGE_SHIFT);
		found = true;
		break;
	}
	mmap_read_unlock(mm);
	return found;
}

/*
 * Unmaps the mappings of current in [addr, addr + len) that are alike everywhere, and
 * only those (another node's unmap must not take what only this address space maps
 * there).
 */
int ssi_mig_unmap_alike(unsigned long addr, unsigned long len)
{
	unsigned long from, to;
	int ret = 0, n;

	if (!current->mm || addr + len < addr)
		return -EINVAL;
	/* Each round unmaps one mapping; the bound is for safety only. */
	for (n = 0; n < 65536 && !ret; n++) {
		if (!ssi_first_alike_in(addr, addr + len, &from, &to))
			break;
		ret = vm_munmap(from, to - from);
	}
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
 * The start of every call into the cluster that a redirected call of the current
 * process makes (futexes, mappings): pins the module while the call may sleep (the
 * process's entry pins it while the entry exists, but the entry may go meanwhile) and
 * names the process. False, with nothing pinned, if the module is going or the process is
 * no longer distributed: then its memory is its own again and no other node waits on its
 * words, and the caller answers as the kernel would (a futex wake wakes nobody, a wait
 * is a spurious wake-up, a mapping is this node's). ssi_dist_leave() ends the call.
 */
static bool ssi_dist_enter(u64 *id, u32 *home)
{
	if (!try_module_get(THIS_MODULE))
		return false;
	if (ssi_mig_dist_current(id, home))
		return true;
	module_put(THIS_MODULE);
	return false;
}

static void ssi_dist_leave(void)
{
	module_put(THIS_MODULE);
}

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
	long ret;

	if (!ssi_dist_enter(&id, &home))
		return (op & FUTEX_CMD_MASK) == FUTEX_WAKE ? 0 : -EAGAIN;
	ret = ssi_migrate_futex(id, home, (unsigned long)uaddr, (u32)op, val,
				timeout ? ktime_to_ns(*timeout) : -1, (unsigned long)uaddr2, val2,
				val3);
	ssi_dist_leave();
	return ret;
}

/*
 * FLAGS_SHARED of the kernel's own futex flags (kernel/futex/futex.h, private to the
 * kernel; the same since Linux 6.7), as handle_futex_death() passes it. The flags of the
 * kernel's own futex calls are read in rust/src/futex2.rs.
 */
#define SSI_KFUTEX_SHARED 0x0010

/*
 * Same signature as futex_wait_restart(). A timed futex wait that was under way when its
 * process became distributed was interrupted (its thread parked while the memory became
 * regions) and restarts from its restart block, straight into the kernel's futex_wait(),
 * where no other node's wake reaches it: it would sleep until its timeout. Here it
 * becomes the cluster wait instead, with the same word, value, bitset and absolute
 * timeout. The restart block is left as it is: a later restart_syscall() comes back here,
 * or runs the kernel's own function once the process is no longer distributed.
 */
static long ssi_futex_wait_restart(struct restart_block *restart)
{
	u64 id;
	u32 home;
	long ret;

	if (!ssi_dist_enter(&id, &home))
		return -EAGAIN;
	ret = ssi_migrate_futex_restart(id, home, (unsigned long)restart->futex.uaddr,
					restart->futex.flags, restart->futex.val,
					ktime_to_ns(restart->futex.time), restart->futex.bitset);
	ssi_dist_leave();
	return ret;
}

/*
 * Same signature as futex_wake(). A distributed process's futex calls never reach it
 * (do_futex() and the futex2 calls are redirected before), but the kernel's own callers
 * do: the robust-list cleanup of an exiting thread (handle_futex_death() marks a robust
 * mutex the thread held as its owner's death and wakes one waiter) and io_uring's futex
 * wake. Here that wake is a cluster one, so that a waiter on another node sees
 * EOWNERDEAD at once, not at its next look at the word.
 */
static int ssi_futex_wake(u32 __user *uaddr, unsigned int flags, void __user *pop, int nr_wake,
			  u32 bitset)
{
	u64 id;
	u32 home;
	long ret;

	/* A FUTEX_ROBUST_UNLOCK comes through do_futex(), which refuses it. */
	if (pop)
		return -ENOSYS;
	if (!ssi_dist_enter(&id, &home))
		return 0;
	ret = ssi_migrate_futex_kernel_wake(id, home, (unsigned long)uaddr, flags, nr_wake,
					    bitset);
	ssi_dist_leave();
	return (int)ret;
}

#ifdef CONFIG_X86_64
/*
 * Same signature as handle_futex_death(), for a moved thread only: the exit of a thread
 * that holds a robust mutex marks the mutex's word with FUTEX_OWNER_DIED and wakes a
 * waiter, but only if the word names the exiting thread's id, and the moved thread's
 * mutexes name its id at home (glibc keeps that id; gettid() answers it), not its pid
 * here: the kernel would skip them and their waiters would never get EOWNERDEAD. This is
 * the kernel's function with the id at home, and the wake a cluster one (the word is
 * region memory; its faults fetch it).
 */
static int ssi_handle_futex_death(u32 __user *uaddr, struct task_struct *curr, unsigned int mod,
				  bool pending_op)
{
	bool pi = mod & FUTEX_ROBUST_MOD_PI;
	unsigned long addr = (unsigned long)uaddr;
	u32 uval, mval, nval;
	pid_t owner, me;
	int i = ssi_dist_find(current->mm);

	if (addr % sizeof(u32))
		return -1;
	me = i >= 0 ? READ_ONCE(ssi_dist[i].home_tid) : task_pid_vnr(curr);
	for (;;) {
		if (get_user(uval, uaddr))
			return -1;
		owner = uval & FUTEX_TID_MASK;
		if (owner != me) {
			/* A waker or waiter that died mid-operation: pass the wake on. */
			if (pending_op && !pi && (!owner || !(uval & FUTEX_WAITERS)))
				ssi_futex_wake(uaddr, SSI_KFUTEX_SHARED, NULL, 1, FUTEX_BITSET_MATCH_ANY);
			return 0;
		}
		mval = (uval & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
		if (ssi_mig_futex_cmpxchg(addr, uval, mval, &nval))
			return -1;
		if (nval == uval)
			break;
		cond_resched();
	}
	if (!pi && (uval & FUTEX_WAITERS))
		ssi_futex_wake(uaddr, SSI_KFUTEX_SHARED, NULL, 1, FUTEX_BITSET_MATCH_ANY);
	return 0;
}
#endif

/* Same signature as kernel_clone(): a fork of a distributed process is refused. */
static pid_t ssi_refuse_fork(struct kernel_clone_args *args)
{
	pr_info_ratelimited("ssi_migrate: pid %d: fork refused (EBUSY): its memory is shared with its threads on other nodes\n",
			    task_tgid_vnr(current));
	return -EBUSY;
}

#ifdef CONFIG_X86_64
/*
 * A moved thread's ids are those it has at home (the system calls below, on the node
 * it moved to): its process's pid, its parent's and its own thread id, and a signal to
 * its process goes to the home, which delivers it (to a thread away, through its
 * stand-in). Threads it starts there keep their own ids. Same signatures as the system
 * calls.
 */
static long ssi_sys_getpid(const struct pt_regs *regs)
{
	int i = ssi_dist_find(current->mm);

	return i >= 0 ? READ_ONCE(ssi_dist[i].home_tgid) : task_tgid_vnr(current);
}

static long ssi_sys_getppid(const struct pt_regs *regs)
{
	int i = ssi_dist_find(current->mm);

	return i >= 0 ? READ_ONCE(ssi_dist[i].home_ppid) : -ESRCH;
}

static long ssi_sys_gettid(const struct pt_regs *regs)
{
	int i = ssi_dist_find(current->mm);

	return i >= 0 ? READ_ONCE(ssi_dist[i].home_tid) : task_pid_vnr(current);
}

/* kill(home pid, sig) and tgkill(home pid, tid, sig). */
static long ssi_sys_signal_home(int tid, int sig)
{
	u64 id;
	u32 home;
	int i = ssi_dist_find(current->mm);

	long ret;

	if (i < 0 || !ssi_mig_dist_current(&id, &home))
		return -ESRCH;
	if (sig < 0 || sig > _NSIG || tid < 0)
		return -EINVAL;
	/* To itself: here (raise(), abort()). */
	if (tid && tid == READ_ONCE(ssi_dist[i].home_tid) &&
	    current->pid == READ_ONCE(ssi_dist[i].moved_task))
		return sig ? send_sig_info(sig, SEND_SIG_PRIV, current) : 0;
	/* As for futexes: the call sleeps in this module. */
	if (!try_module_get(THIS_MODULE))
		return -EAGAIN;
	ret = ssi_migrate_signal_home(id, home, READ_ONCE(ssi_dist[i].home_tgid), tid, sig);
	module_put(THIS_MODULE);
	return ret;
}

static long ssi_sys_tgkill(const struct pt_regs *regs)
{
	if ((int)regs->si <= 0)
		return -EINVAL;
	return ssi_sys_signal_home((int)regs->si, (int)regs->dx);
}

static long ssi_sys_kill(const struct pt_regs *regs)
{
	return ssi_sys_signal_home(0, (int)regs->si);
}

/* Whether current maps something alike everywhere in [addr, addr + len). */
static bool ssi_has_alike_in(unsigned long addr, unsigned long len)
{
	unsigned long from, to;

	if (!current->mm || !len || addr + len < addr)
		return false;
	return ssi_first_alike_in(addr, addr + len, &from, &to);
}

/*
 * Same signature as ksys_mmap_pgoff(), whose file handling it repeats (but for the audit
 * record, __audit_mmap_fd() not being exported): address_space.rs makes private
 * anonymous memory shared memory and private file mappings alike in every address space
 * of the process; the others, which stay this node's, are mapped as the kernel would.
 */
static unsigned long ssi_mmap_pgoff(unsigned long addr, unsigned long len, unsigned long prot,
				    unsigned long flags, unsigned long fd, unsigned long pgoff)
{
	struct file *file = NULL;
	bool huge = false;
	u64 id;
	u32 home;
	long ret = SSI_SPACE_LOCAL;

	if (!(flags & MAP_ANONYMOUS)) {
		file = fget(fd);
		if (!file)
			return -EBADF;
		/* Huge pages stay the kernel's, as with MAP_HUGETLB (not redirected). */
		huge = is_file_hugepages(file);
		if (huge)
			len = ALIGN(len, huge_page_size(hstate_file(file)));
		else if (pgoff > (ULONG_MAX >> PAGE_SHIFT))
			ret = -EOVERFLOW;
	}
	if (ret == SSI_SPACE_LOCAL && !huge && ssi_dist_enter(&id, &home)) {
		ret = file ? ssi_migrate_space_mmap_file(id, home, file, addr, len, prot, flags,
							 pgoff) :
			     ssi_migrate_space_mmap(id, home, addr, len, prot, flags);
		ssi_dist_leave();
	}
	if (ret == SSI_SPACE_LOCAL)
		ret = vm_mmap(file, addr, len, prot, flags, file ? pgoff << PAGE_SHIFT : 0);
	if (file)
		fput(file);
	return (unsigned long)ret;
}

/*
 * munmap(): shared memory goes from every address space of the process
 * (address_space.rs), once it is gone from the caller's.
 */
static long ssi_sys_munmap(const struct pt_regs *regs)
{
	unsigned long addr = untagged_addr(regs->di), len = regs->si;
	bool shared = ssi_has_alike_in(addr, len);
	u64 id;
	u32 home;
	long ret;

	ret = vm_munmap(addr, len);
	if (ret || !shared || !ssi_dist_enter(&id, &home))
		return ret;
	ret = ssi_migrate_space_munmap(id, home, addr, len);
	ssi_dist_leave();
	return ret;
}

/*
 * brk(): the break cannot move (the heap is shared memory of a fixed size), which brk()
 * says by answering the current one; glibc's malloc maps its memory instead.
 */
static long ssi_sys_brk(const struct pt_regs *regs)
{
	return READ_ONCE(current->mm->brk);
}

/*
 * execve() by a task of a distributed process on a node other than its home: refused.
 * The new program would replace the process only here, while its threads elsewhere go
 * on with the old one; at home, execve() works (the other threads end everywhere).
 */
static long ssi_sys_execve_refused(const struct pt_regs *regs)
{
	pr_info_ratelimited("ssi_migrate: pid %d: execve refused (EBUSY): its process runs threads on other nodes; exec from its home\n",
			    task_tgid_vnr(current));
	return -EBUSY;
}

/*
 * The futex2 system calls (futex_wake, futex_wait, futex_requeue, futex_waitv) do not go
 * through do_futex(): cluster_futex.rs carries each out as the futex(2) call it amounts
 * to (rust/src/futex2.rs), from its six arguments; futex_waitv is refused (ENOSYS).
 */
static long ssi_futex2(u32 call, const struct pt_regs *regs)
{
	const u64 args[6] = { regs->di, regs->si, regs->dx, regs->r10, regs->r8, regs->r9 };
	u64 id;
	u32 home;
	long ret;

	if (!ssi_dist_enter(&id, &home))
		return call == SSI_FUTEX2_WAIT || call == SSI_FUTEX2_WAITV ? -EAGAIN : 0;
	ret = ssi_migrate_futex2(id, home, call, args);
	ssi_dist_leave();
	if (call == SSI_FUTEX2_WAITV && ret == -ENOSYS)
		pr_info_ratelimited("ssi_migrate: pid %d: futex_waitv refused (ENOSYS): not supported in a distributed process\n",
				    task_tgid_vnr(current));
	return ret;
}

static long ssi_sys_futex_wake(const struct pt_regs *regs)
{
	return ssi_futex2(SSI_FUTEX2_WAKE, regs);
}

static long ssi_sys_futex_wait(const struct pt_regs *regs)
{
	return ssi_futex2(SSI_FUTEX2_WAIT, regs);
}

static long ssi_sys_futex_requeue(const struct pt_regs *regs)
{
	return ssi_futex2(SSI_FUTEX2_REQUEUE, regs);
}

static long ssi_sys_futex_waitv(const struct pt_regs *regs)
{
	return ssi_futex2(SSI_FUTEX2_WAITV, regs);
}

/* mremap(): refused (a shared mapping cannot move or grow by itself); realloc copies. */
static long ssi_sys_mremap(const struct pt_regs *regs)
{
	return -ENOMEM;
}
#endif

/* One redirected kernel function. */
struct ssi_hook {
	/*
	 * Its name, and the one its address has in kallsyms if that differs (a system call
	 * without arguments is an alias of its __do_sys_ function, which ftrace knows).
	 */
	const char *function, *alias;
	/* Not needed for threads to move (without it, they do with less). */
	bool optional;
	/* Whether the call of distributed process entry i goes to target. */
	bool (*redirects)(struct ftrace_regs *fregs, int i);
	void *target;
	struct ftrace_ops ops;
	bool installed;
};

/* Every futex call of a distributed process. */
static notrace bool ssi_redirect_always(struct ftrace_regs *fregs, int i)
{
	return true;
}

/* A clone without CLONE_VM: a fork. */
static notrace bool ssi_redirect_fork(struct ftrace_regs *fregs, int i)
{
	struct kernel_clone_args *args =
		(struct kernel_clone_args *)ftrace_regs_get_argument(fregs, 0);

	return args && !(args->flags & CLONE_VM);
}

#ifdef CONFIG_X86_64
/* On a node the process's thread moved to (not its home). */
static notrace bool ssi_redirect_moved(struct ftrace_regs *fregs, int i)
{
	return smp_load_acquire(&ssi_dist[i].home_tgid) != 0;
}

/* The moved thread itself (not a thread it started there). */
static notrace bool ssi_redirect_moved_task(struct ftrace_regs *fregs, int i)
{
	return ssi_redirect_moved(fregs, i) && current->pid == READ_ONCE(ssi_dist[i].moved_task);
}

/* A mapping that is not of huge pages by MAP_HUGETLB (the kernel's alone). */
static notrace bool ssi_redirect_mmap(struct ftrace_regs *fregs, int i)
{
	unsigned long flags = ftrace_regs_get_argument(fregs, 3);

	return !(flags & MAP_HUGETLB);
}

/* A signal to the process's pid at home (the system call's first argument). */
static notrace bool ssi_redirect_to_home_pid(struct ftrace_regs *fregs, int i)
{
	const struct pt_regs *regs = (const struct pt_regs *)ftrace_regs_get_argument(fregs, 0);

	return ssi_redirect_moved(fregs, i) && regs &&
	       (int)regs->di == (int)READ_ONCE(ssi_dist[i].home_tgid);
}
#endif

/* The ftrace handler of every hook: sends a distributed process's call to the target. */
static void notrace ssi_hook_ftrace(unsigned long ip, unsigned long parent_ip,
				    struct ftrace_ops *ops, struct ftrace_regs *fregs)
{
	struct ssi_hook *h = container_of(ops, struct ssi_hook, ops);
	struct mm_struct *mm;
	int bit, i;

	if (likely(!atomic_read(&ssi_dist_count)))
		return;
	bit = ftrace_test_recursion_trylock(ip, parent_ip);
	if (WARN_ON_ONCE(bit < 0))
		return;
	mm = current->mm;
	i = mm ? ssi_dist_find(mm) : -1;
	if (i >= 0 && h->redirects(fregs, i))
		ftrace_regs_set_instruction_pointer(fregs, (unsigned long)h->target);
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

#define SSI_HOOK(fn, also, opt, when, to)                                                \
	{ .function = fn, .alias = also, .optional = opt, .redirects = when, .target = to, \
	  .ops = { .func = ssi_hook_ftrace, .flags = SSI_FTRACE_FLAGS } }

static struct ssi_hook ssi_hooks[] = {
	SSI_HOOK("do_futex", NULL, false, ssi_redirect_always, ssi_do_futex),
	SSI_HOOK("futex_wait_restart", NULL, true, ssi_redirect_always, ssi_futex_wait_restart),
	SSI_HOOK("futex_wake", NULL, true, ssi_redirect_always, ssi_futex_wake),
	SSI_HOOK("kernel_clone", NULL, false, ssi_redirect_fork, ssi_refuse_fork),
#ifdef CONFIG_X86_64
	SSI_HOOK("__x64_sys_getpid", "__do_sys_getpid", true, ssi_redirect_moved, ssi_sys_getpid),
	SSI_HOOK("handle_futex_death", NULL, true, ssi_redirect_moved_task, ssi_handle_futex_death),
	SSI_HOOK("__x64_sys_getppid", "__do_sys_getppid", true, ssi_redirect_moved,
		 ssi_sys_getppid),
	SSI_HOOK("__x64_sys_gettid", "__do_sys_gettid", true, ssi_redirect_moved_task,
		 ssi_sys_gettid),
	SSI_HOOK("__x64_sys_tgkill", NULL, true, ssi_redirect_to_home_pid, ssi_sys_tgkill),
	SSI_HOOK("__x64_sys_kill", NULL, true, ssi_redirect_to_home_pid, ssi_sys_kill),
	SSI_HOOK("ksys_mmap_pgoff", NULL, false, ssi_redirect_mmap, ssi_mmap_pgoff),
	SSI_HOOK("__x64_sys_munmap", NULL, false, ssi_redirect_always, ssi_sys_munmap),
	SSI_HOOK("__x64_sys_brk", NULL, false, ssi_redirect_always, ssi_sys_brk),
	SSI_HOOK("__x64_sys_mremap", NULL, false, ssi_redirect_always, ssi_sys_mremap),
	SSI_HOOK("__x64_sys_futex_wake", NULL, false, ssi_redirect_always, ssi_sys_futex_wake),
	SSI_HOOK("__x64_sys_futex_wait", NULL, false, ssi_redirect_always, ssi_sys_futex_wait),
	SSI_HOOK("__x64_sys_futex_requeue", NULL, false, ssi_redirect_always,
		 ssi_sys_futex_requeue),
	SSI_HOOK("__x64_sys_futex_waitv", NULL, false, ssi_redirect_always, ssi_sys_futex_waitv),
	SSI_HOOK("__x64_sys_execve", NULL, false, ssi_redirect_moved, ssi_sys_execve_refused),
	SSI_HOOK("__x64_sys_execveat", NULL, false, ssi_redirect_moved, ssi_sys_execve_refused),
#endif
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

	if (ret == -EINVAL && h->alias)
		ret = ftrace_set_filter(&h->ops, (unsigned char *)h->alias, strlen(h->alias), 0);
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

/*
 * Module init: the redirects of distributed processes' calls (see above); those threads
 * need are all or none.
 */
int ssi_mig_hooks_install(void)
{
	int i, ret;

	for (i = 0; i < ARRAY_SIZE(ssi_hooks); i++) {
		ret = ssi_hook_install(&ssi_hooks[i]);
		if (ret && ssi_hooks[i].optional) {
			pr_warn("ssi_migrate: moved threads' %s answers this node's ids\n",
				ssi_hooks[i].function);
			continue;
		}
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
