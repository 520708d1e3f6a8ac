// SPDX-License-Identifier: GPL-2.0
/*
 * ssi_rdma's C shim over the RDMA core: an ib_client that tracks the RDMA devices of
 * this node (device add/remove, including soft-RoCE rxe devices created at run time),
 * and a description of them and their port states for /proc/ssi and `ssictl status`.
 * The verbs API is made of macros and static inlines, so it is used from C; Rust calls
 * the few functions below (declared in main.rs).
 */
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <rdma/ib_cache.h>
#include <rdma/ib_verbs.h>

/* Called from main.rs. */
int ssi_rdma_ib_client_register(void);
void ssi_rdma_ib_client_unregister(void);
ssize_t ssi_rdma_ib_describe(char *buf, size_t len);

struct ssi_ib_dev {
	struct list_head node;
	struct ib_device *ibdev;
	/*
	 * A copy of the device name, kept up to date by the rename callback: the
	 * kobject name itself is freed on rename without RCU, so it must not be read
	 * outside the IB core's locks.
	 */
	char name[IB_DEVICE_NAME_MAX];
};

static LIST_HEAD(ssi_ib_devs);
static DEFINE_MUTEX(ssi_ib_lock);
static struct ib_client ssi_ib_client;

static int ssi_ib_add(struct ib_device *ibdev)
{
	struct ssi_ib_dev *d = kzalloc(sizeof(*d), GFP_KERNEL);

	if (!d)
		return -ENOMEM;
	d->ibdev = ibdev;
	strscpy(d->name, dev_name(&ibdev->dev), sizeof(d->name));
	mutex_lock(&ssi_ib_lock);
	list_add_tail(&d->node, &ssi_ib_devs);
	mutex_unlock(&ssi_ib_lock);
	ib_set_client_data(ibdev, &ssi_ib_client, d);
	pr_info("ssi_rdma: RDMA device %s added\n", d->name);
	return 0;
}

/* Called by the IB core with the device name already changed. */
static void ssi_ib_rename(struct ib_device *ibdev, void *client_data)
{
	struct ssi_ib_dev *d = client_data;

	mutex_lock(&ssi_ib_lock);
	strscpy(d->name, dev_name(&ibdev->dev), sizeof(d->name));
	mutex_unlock(&ssi_ib_lock);
}

static void ssi_ib_remove(struct ib_device *ibdev, void *client_data)
{
	struct ssi_ib_dev *d = client_data;

	mutex_lock(&ssi_ib_lock);
	list_del(&d->node);
	mutex_unlock(&ssi_ib_lock);
	pr_info("ssi_rdma: RDMA device %s removed\n", d->name);
	kfree(d);
}

static struct ib_client ssi_ib_client = {
	.name = "ssi_rdma",
	.add = ssi_ib_add,
	.remove = ssi_ib_remove,
	.rename = ssi_ib_rename,
};

int ssi_rdma_ib_client_register(void)
{
	return ib_register_client(&ssi_ib_client);
}

void ssi_rdma_ib_client_unregister(void)
{
	/* Calls ssi_ib_remove() for every device still present. */
	ib_unregister_client(&ssi_ib_client);
}

/*
 * Writes "rxe0:1:ACTIVE mlx5_0:1:DOWN" (device:port:state for each port) into buf,
 * at most len bytes, and returns the length written; "none" when there is no device.
 * Uses the IB core's cached port state: no driver call, no rtnl, no sleeping besides
 * our own mutex (this runs under ssi_core's registry mutex).
 */
ssize_t ssi_rdma_ib_describe(char *buf, size_t len)
{
	struct ssi_ib_dev *d;
	size_t n = 0;
	u32 port;

	mutex_lock(&ssi_ib_lock);
	list_for_each_entry(d, &ssi_ib_devs, node) {
		rdma_for_each_port(d->ibdev, port) {
			enum ib_port_state ps;
			const char *state = "?";

			if (!ib_get_cached_port_state(d->ibdev, port, &ps))
				state = ib_port_state_to_str(ps);
			n += scnprintf(buf + n, len - n, "%s%s:%u:%s", n ? " " : "",
				       d->name, port, state);
		}
	}
	mutex_unlock(&ssi_ib_lock);
	if (!n)
		n = scnprintf(buf, len, "none");
	return n;
}
