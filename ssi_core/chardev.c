// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/ssi registration. The kernel crate's MiscDevice abstraction builds its
 * file_operations with .owner == NULL (Rust-for-Linux issue #1182), so an open file
 * would not pin the module and an ioctl after `rmmod ssi_core` would run freed code.
 * This shim registers the misc device with .owner = THIS_MODULE; the ioctls are
 * handled in Rust (device.rs, ssi_core_ioctl).
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>

#include "shim.h"

static long ssi_core_unlocked_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	return ssi_core_ioctl(file, cmd, arg);
}

static int ssi_core_release(struct inode *inode, struct file *file)
{
	ssi_core_file_release(file);
	return 0;
}

static const struct file_operations ssi_core_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = ssi_core_unlocked_ioctl,
	.release = ssi_core_release,
	/* The ABI has the same layout for 32-bit callers. */
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice ssi_core_miscdev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "ssi",
	.fops = &ssi_core_fops,
	/*
	 * Anyone may open it: region ioctls check permissions like files, read-only
	 * queries are harmless, and every other ioctl requires CAP_SYS_ADMIN.
	 */
	.mode = 0666,
};

int ssi_core_chardev_register(void)
{
	return misc_register(&ssi_core_miscdev);
}

void ssi_core_chardev_unregister(void)
{
	misc_deregister(&ssi_core_miscdev);
}
