// SPDX-License-Identifier: GPL-2.0
/*
 * Files that every address space of a distributed process maps alike: the plumbing
 * address_space.rs needs and the kernel crate has no abstraction for.
 *
 * A private file mapping that a thread of a distributed process makes after its threads
 * spread (the dynamic loader's text and read-only data, for dlopen(), and the
 * libgcc_s that pthread_exit() loads) must be at the same address in every address
 * space of the process. A mapping that is not written is made on each node from the
 * same file, opened by path: the node that maps names it (its path from the process's
 * root, its size and modification time), every other opens that path as a task of the
 * process would (from the process's root, with its credentials) and checks that it
 * found the same size and time. A writable one becomes a private-memory region that the
 * caller fills with the file's contents. See docs/ARCHITECTURE.md, "Memory mapped after
 * the threads spread".
 */
#include <linux/cred.h>
#include <linux/err.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/namei.h>
#include <linux/path.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "shim.h"

static u64 ssi_file_mtime_ns(struct inode *inode)
{
	struct timespec64 mt = inode_get_mtime(inode);

	return (u64)timespec64_to_ns(&mt);
}

/* Whether @file is a regular file (whose contents a read gives). */
bool ssi_mig_file_regular(struct file *file)
{
	return S_ISREG(file_inode(file)->i_mode);
}

/*
 * The name other nodes open @file by: its path from current's root into @buf (@len
 * bytes, NUL included), its size and modification time. The path's length, -ENOENT for
 * a file that has none another node could open (not a regular file, deleted, not
 * reachable from the root), -ENAMETOOLONG.
 */
long ssi_mig_file_name(struct file *file, char *buf, u32 len, u64 *size, u64 *mtime_ns)
{
	struct inode *inode = file_inode(file);
	struct path root;
	char *p;
	size_t n;

	if (!S_ISREG(inode->i_mode) || d_unlinked(file->f_path.dentry))
		return -ENOENT;
	/* Outside current's root (d_path() would name it from elsewhere): no name. */
	get_fs_root(current->fs, &root);
	p = path_is_under(&file->f_path, &root) ? d_path(&file->f_path, buf, len) :
						    ERR_PTR(-ENOENT);
	path_put(&root);
	if (IS_ERR(p))
		return PTR_ERR(p) == -ENAMETOOLONG ? -ENAMETOOLONG : -ENOENT;
	n = strlen(p);
	memmove(buf, p, n + 1);
	*size = i_size_read(inode);
	*mtime_ns = ssi_file_mtime_ns(inode);
	return n;
}

/* A task (referenced) whose address space is @mm, or NULL. */
static struct task_struct *ssi_task_of_mm(struct mm_struct *mm)
{
	struct task_struct *g, *t, *found = NULL;

	rcu_read_lock();
	for_each_process_thread(g, t) {
		if (READ_ONCE(t->mm) == mm && !(t->flags & PF_KTHREAD)) {
			found = get_task_struct(t);
			goto out;
		}
	}
out:
	rcu_read_unlock();
	return found;
}

/*
 * Opens @path (NUL-terminated) for a private mapping in address space @mm as a task of
 * it would: from that task's root, with its credentials. -ESTALE if the file is not the
 * one the mapping's node named (another size or modification time), -ESRCH if no task
 * uses @mm any more.
 */
struct file *ssi_mig_open_alike(struct mm_struct *mm, const char *path, u64 size, u64 mtime_ns)
{
	struct task_struct *t = ssi_task_of_mm(mm);
	const struct cred *cred, *old;
	struct path root, found;
	struct file *f;
	int err;

	if (!t)
		return ERR_PTR(-ESRCH);
	task_lock(t);
	if (!t->fs) {
		task_unlock(t);
		put_task_struct(t);
		return ERR_PTR(-ESRCH);
	}
	get_fs_root(t->fs, &root);
	task_unlock(t);
	cred = get_task_cred(t);
	put_task_struct(t);

	/*
	 * Looked up first and opened only if it is a regular file: opening a FIFO would
	 * wait for a writer, and opening a device may do something.
	 */
	old = override_creds(cred);
	err = vfs_path_lookup(root.dentry, root.mnt, path, LOOKUP_FOLLOW, &found);
	if (!err) {
		if (!d_is_reg(found.dentry))
			f = ERR_PTR(-ESTALE);
		else
			f = dentry_open(&found, O_RDONLY | O_LARGEFILE | O_CLOEXEC, cred);
		path_put(&found);
	} else {
		f = ERR_PTR(err);
	}
	revert_creds(old);
	put_cred(cred);
	path_put(&root);
	if (IS_ERR(f))
		return f;
	if (i_size_read(file_inode(f)) != size || ssi_file_mtime_ns(file_inode(f)) != mtime_ns) {
		fput(f);
		return ERR_PTR(-ESTALE);
	}
	return f;
}

/*
 * Maps @len bytes of @file from page @pgoff privately at @addr of current's address
 * space (the caller's, or the one a work item uses) with @prot: @placement 0 anywhere
 * (@addr a hint), 1 replacing what is there (MAP_FIXED), 2 only where nothing is
 * (MAP_FIXED_NOREPLACE). The address, or a negative errno.
 */
long ssi_mig_map_file(struct file *file, unsigned long addr, unsigned long len, u32 prot,
		      u32 placement, u64 pgoff)
{
	unsigned long flags = MAP_PRIVATE;

	if (placement == 1)
		flags |= MAP_FIXED;
	else if (placement == 2)
		flags |= MAP_FIXED_NOREPLACE;
	if (pgoff > (ULONG_MAX >> PAGE_SHIFT))
		return -EOVERFLOW;
	return (long)vm_mmap(file, addr, len, prot, flags, pgoff << PAGE_SHIFT);
}

/*
 * Copies @len bytes of @file from page @pgoff to @addr of current's address space,
 * which must be writable there; what lies past the end of the file is left as it is
 * (zero, in a new region). 0, or a negative errno.
 */
int ssi_mig_fill_from_file(struct file *file, unsigned long addr, unsigned long len, u64 pgoff)
{
	void *buf;
	loff_t pos;
	unsigned long done;
	int ret = 0;

	if (pgoff > (LLONG_MAX >> PAGE_SHIFT))
		return -EOVERFLOW;
	buf = (void *)__get_free_page(GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	pos = (loff_t)pgoff << PAGE_SHIFT;
	/* A short read is not the end (network file systems may give one): only 0 is. */
	for (done = 0; done < len;) {
		ssize_t n = kernel_read(file, buf, min_t(unsigned long, PAGE_SIZE, len - done), &pos);

		if (n <= 0) {
			ret = n;
			break;
		}
		if (copy_to_user((void __user *)(addr + done), buf, n)) {
			ret = -EFAULT;
			break;
		}
		done += n;
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
	}
	free_page((unsigned long)buf);
	return ret;
}
