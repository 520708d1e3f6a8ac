// SPDX-License-Identifier: GPL-2.0
/*
 * The memory-management side of SSI regions, for which the kernel crate has no
 * abstraction: region file descriptors, the per-region address_space, the VMA's
 * vm_operations_struct (fault, pfn_mkwrite, open, close) and PTE insertion/zapping.
 * The coherence logic is in Rust (region_vm.rs, coherence.rs); this file only
 * translates.
 *
 * Mapping model: a region's VMAs are VM_PFNMAP|VM_SHARED. Pages are kernel pages that
 * ssi_core owns (one per region page a node holds a copy of); a fault inserts the
 * page's pfn read-only or writable. Because the VMA has pfn_mkwrite, its default
 * protection is read-only (write-notify), so a write to a read-only copy traps into
 * pfn_mkwrite. Every VMA of a region on this node has the region's own anonymous
 * inode as vm_file, so unmap_mapping_range() on that inode's mapping zaps the page in
 * every process of the node (invalidation and downgrade).
 */
#include <linux/anon_inodes.h>
#include <linux/cred.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/task_work.h>

#include "shim.h"

static_assert(PAGE_SIZE == 4096, "ssi regions use 4 KiB pages");

static const struct file_operations ssi_region_backing_fops = {
	/*
	 * A VMA's vm_file pins the module (and so the vm_ops it points to). A region
	 * holds its backing file only while it is mapped, so an unmapped region does not.
	 */
	.owner = THIS_MODULE,
};

static vm_fault_t ssi_region_vm_fault(struct vm_fault *vmf)
{
	return ssi_region_fault(vmf->vma->vm_private_data, vmf, vmf->pgoff,
				!!(vmf->flags & FAULT_FLAG_WRITE));
}

/*
 * A write to a read-only copy. The Rust side replaces the PTE with a writable one under
 * the region lock and answers VM_FAULT_NOPAGE (or SIGBUS): the core's own upgrade
 * (finish_mkwrite_fault) would only check that the PTE is unchanged, which a
 * write-protect-and-remap of the same page in between would not show.
 */
static vm_fault_t ssi_region_vm_pfn_mkwrite(struct vm_fault *vmf)
{
	return ssi_region_mkwrite(vmf->vma->vm_private_data, vmf, vmf->pgoff);
}

/* A VMA was duplicated (fork) or split: the copy holds its own reference. */
static void ssi_region_vm_open(struct vm_area_struct *vma)
{
	ssi_region_mapping_get(vma->vm_private_data);
}

static void ssi_region_vm_close(struct vm_area_struct *vma)
{
	ssi_region_mapping_put(vma->vm_private_data);
}

/* An mprotect() that opened private-memory region memory, told on the way back. */
struct ssi_region_opened_work {
	struct callback_head cb;
	unsigned long start, end;
};

static void ssi_region_opened_fn(struct callback_head *cb)
{
	struct ssi_region_opened_work *w = container_of(cb, struct ssi_region_opened_work, cb);

	/* Not when the task is exiting (its address space is gone). */
	if (current->mm && !(current->flags & PF_EXITING))
		ssi_region_opened(w->start, w->end);
	kfree(w);
	module_put(THIS_MODULE);
}

/*
 * mprotect() of a region mapping, before the kernel changes it (the mmap lock is held
 * for writing). When it makes private-memory region memory (a distributed process's)
 * readable or writable, the other address spaces of the process must open it too
 * (ssi_migrate), which takes round trips and other address spaces' locks: that is done
 * from a task_work, once the system call is over and before the task is back in user
 * mode, so the program never runs on with memory its siblings elsewhere cannot reach.
 */
static int ssi_region_vm_mprotect(struct vm_area_struct *vma, unsigned long start,
				  unsigned long end, unsigned long newflags)
{
	struct ssi_region_opened_work *w;

	if (!((newflags & ~vma->vm_flags) & (VM_READ | VM_WRITE)) ||
	    !ssi_region_is_private(vma->vm_private_data))
		return 0;
	w = kmalloc(sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	if (!try_module_get(THIS_MODULE)) {
		kfree(w);
		return 0;
	}
	w->start = start;
	w->end = end;
	init_task_work(&w->cb, ssi_region_opened_fn);
	if (task_work_add(current, &w->cb, TWA_RESUME)) {
		/* Exiting: nothing to open for. */
		kfree(w);
		module_put(THIS_MODULE);
	}
	return 0;
}

static const struct vm_operations_struct ssi_region_vm_ops = {
	.fault = ssi_region_vm_fault,
	.pfn_mkwrite = ssi_region_vm_pfn_mkwrite,
	.open = ssi_region_vm_open,
	.close = ssi_region_vm_close,
	.mprotect = ssi_region_vm_mprotect,
};

static int ssi_region_file_mmap(struct file *file, struct vm_area_struct *vma)
{
	void *region = file->private_data;
	unsigned long pages = vma_pages(vma);
	struct file *backing;
	int ret;

	/* MAP_PRIVATE would be copy-on-write, which a pfn mapping cannot do. */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	ret = ssi_region_check_range(region, vma->vm_pgoff, pages);
	if (ret)
		return ret;
	/* Counts the mapping and takes a region reference for the VMA. */
	backing = ssi_region_map(region);
	if (!backing)
		return -ENOMEM;
	vma_set_file(vma, backing);
	vm_flags_set(vma, VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &ssi_region_vm_ops;
	vma->vm_private_data = region;
	return 0;
}

static int ssi_region_file_release(struct inode *inode, struct file *file)
{
	ssi_region_put(file->private_data);
	return 0;
}

static const struct file_operations ssi_region_fops = {
	.owner = THIS_MODULE,
	.mmap = ssi_region_file_mmap,
	.release = ssi_region_file_release,
	.llseek = noop_llseek,
};

int ssi_region_backing_new(struct file **out)
{
	struct file *f = anon_inode_create_getfile("[ssi-region]", &ssi_region_backing_fops,
						   NULL, O_RDWR, NULL);

	if (IS_ERR(f))
		return PTR_ERR(f);
	*out = f;
	return 0;
}

int ssi_region_file_new(void *region, bool writable, struct file **out)
{
	struct file *f = anon_inode_getfile("[ssi-region]", &ssi_region_fops, region,
					    writable ? O_RDWR : O_RDONLY);

	if (IS_ERR(f))
		return PTR_ERR(f);
	*out = f;
	return 0;
}

void ssi_region_zap(struct file *backing, u32 page)
{
	unmap_mapping_range(backing->f_mapping, (loff_t)page << PAGE_SHIFT, PAGE_SIZE, 1);
}

void ssi_region_zap_all(struct file *backing)
{
	unmap_mapping_range(backing->f_mapping, 0, 0, 1);
}

vm_fault_t ssi_region_insert(struct vm_fault *vmf, struct page *page, bool writable)
{
	struct vm_area_struct *vma = vmf->vma;
	pgprot_t prot = writable ? vm_get_page_prot(vma->vm_flags) : vma->vm_page_prot;

	/* The kernel wrote the contents through its own mapping of the page. */
	flush_dcache_page(page);
	return vmf_insert_pfn_prot(vma, vmf->address & PAGE_MASK, page_to_pfn(page), prot);
}

/*
 * Maps a region file into the calling process (the private memory of a distributed
 * process, process_memory.rs), placed as rust/src/address_space.rs's Placement how
 * says: where there is room, addr a hint (0), at addr, replacing what was there (1), or
 * at addr if nothing is there (2, else -EEXIST). Returns the address or a negative
 * errno. The VMA takes its own references; the caller keeps (and drops) the file's.
 */
long ssi_region_vm_mmap(struct file *file, unsigned long addr, unsigned long len, u32 prot,
			u64 pgoff, u32 how)
{
	static const unsigned long placement[] = { 0, MAP_FIXED, MAP_FIXED_NOREPLACE };
	unsigned long got;

	if (!len || (addr | len) & ~PAGE_MASK || pgoff > (ULONG_MAX >> PAGE_SHIFT) ||
	    how >= ARRAY_SIZE(placement))
		return -EINVAL;
	got = vm_mmap(file, addr, len, prot, MAP_SHARED | placement[how], pgoff << PAGE_SHIFT);
	if (IS_ERR_VALUE(got))
		return (long)got;
	return !how || got == addr ? (long)got : -EFAULT;
}

/*
 * One page of current's memory at addr, read as a debugger reads it (FOLL_FORCE: also
 * where the mapping is PROT_NONE), into buf (4096 bytes). 0, or -EFAULT.
 */
int ssi_region_read_forced(unsigned long addr, void *buf)
{
	return access_process_vm(current, addr, buf, PAGE_SIZE, FOLL_FORCE) == PAGE_SIZE ?
		       0 :
		       -EFAULT;
}

/* The region a VMA of the calling process maps, or NULL (mmap lock held by the caller). */
void *ssi_region_vma_region(struct vm_area_struct *vma)
{
	return vma->vm_ops == &ssi_region_vm_ops ? vma->vm_private_data : NULL;
}

/* A module reference for work that outlives the VMA it comes from (0, or -ENODEV). */
int ssi_core_hold(void)
{
	return try_module_get(THIS_MODULE) ? 0 : -ENODEV;
}

/* Drops ssi_core_hold()'s reference, the last thing such work does. */
void ssi_core_put(void)
{
	module_put(THIS_MODULE);
}

void ssi_current_ids(u32 *uid, u32 *gid)
{
	*uid = from_kuid_munged(&init_user_ns, current_fsuid());
	*gid = from_kgid_munged(&init_user_ns, current_fsgid());
}

bool ssi_current_in_group(u32 gid)
{
	kgid_t kgid = make_kgid(&init_user_ns, gid);

	return gid_valid(kgid) && in_group_p(kgid);
}

int ssi_current_tgid(void)
{
	return task_tgid_vnr(current);
}

/* SIGKILL to current's process: the kernel kills every thread with it. */
void ssi_current_kill_process(void)
{
	send_sig(SIGKILL, current, 1);
}

bool ssi_current_dying(void)
{
	return fatal_signal_pending(current);
}
