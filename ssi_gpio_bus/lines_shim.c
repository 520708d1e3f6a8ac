// SPDX-License-Identifier: GPL-2.0
/*
 * The GPIO consumer side of ssi_gpio_bus, for which the kernel crate has no
 * abstraction: taking the cable's lines by consumer name, and describing them.
 *
 * The bus device is a platform device that lists its lines under the consumer names
 * "data" (8 lines, data0 first), "ready" and "valid":
 * - on a Raspberry Pi, the node of pizero/ssi-gpio-bus-overlay.dts
 *   (compatible = "ssi,gpio-bus", data-gpios/ready-gpios/valid-gpios);
 * - elsewhere (no device tree), ssi_gpio_bus creates one named "ssi_gpio_bus" with a
 *   gpiod lookup table built from its module parameters: ten consecutive lines of
 *   /dev/gpiochip<gpio_chip> from offset <gpio_line>, data0..data7 then ready then
 *   valid (a gpio-sim chip in the tests, or any GPIO controller).
 * Either way the probe takes the lines the same way, so the transport does not know
 * where they came from. The data lines are taken open drain (a 1 releases the line, a 0
 * pulls it low; gpiolib emulates that by switching to input on controllers that cannot
 * do it) and start released; both strobes start as inputs until ssi_gpio_lines_setup()
 * makes this side's own strobe an output (low).
 *
 * Below the lines: the bus thread (a kthread: gpio-virtio and other sleeping GPIO
 * controllers can only be driven from process context), the threaded interrupt on the
 * peer's strobe that wakes it, and page copies for the emulated one-sided reads.
 */
#include <linux/device.h>
#include <linux/err.h>
#include <linux/gpio/consumer.h>
#include <linux/gpio/driver.h>
#include <linux/gpio/machine.h>
#include <linux/highmem.h>
#include <linux/interrupt.h>
#include <linux/kthread.h>
#include <linux/math64.h>
#include <linux/platform_device.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>

#include "shim.h"

/* The platform driver's name: a device of that name binds without a device tree. */
#define SSI_GPIO_DEV_NAME "ssi_gpio_bus"

int ssi_gpio_lines_get(struct device *dev, struct ssi_gpio_lines *l)
{
	struct gpio_descs *data;

	data = devm_gpiod_get_array(dev, "data", GPIOD_OUT_HIGH_OPEN_DRAIN);
	if (IS_ERR(data))
		return dev_err_probe(dev, PTR_ERR(data), "no \"data\" GPIO lines\n");
	if (data->ndescs != SSI_GPIO_DATA_LINES)
		return dev_err_probe(dev, -EINVAL, "%u \"data\" lines, the bus needs %d\n",
				     data->ndescs, SSI_GPIO_DATA_LINES);
	l->ready = devm_gpiod_get(dev, "ready", GPIOD_IN);
	if (IS_ERR(l->ready))
		return dev_err_probe(dev, PTR_ERR(l->ready), "no \"ready\" GPIO line\n");
	l->valid = devm_gpiod_get(dev, "valid", GPIOD_IN);
	if (IS_ERR(l->valid))
		return dev_err_probe(dev, PTR_ERR(l->valid), "no \"valid\" GPIO line\n");
	l->data = data;
	return 0;
}

/* The offset of @d on its chip, as "chip:offset" if that is not @first's chip. */
static int ssi_gpio_line_name(struct gpio_desc *d, struct gpio_desc *first, char *buf, size_t len)
{
	struct gpio_device *gdev = gpiod_to_gpio_device(d);
	int off = desc_to_gpio(d) - gpio_device_get_base(gdev);

	if (gpiod_to_gpio_device(first) == gdev)
		return scnprintf(buf, len, "%d", off);
	return scnprintf(buf, len, "%s:%d", gpio_device_get_label(gdev), off);
}

/*
 * "pinctrl-bcm2835 data 12,13,16,17,22,23,24,25 ready 26 valid 27": the chip of data0,
 * then the offsets (a line on another chip is written chip:offset).
 */
int ssi_gpio_lines_describe(const struct ssi_gpio_lines *l, char *buf, size_t len)
{
	struct gpio_desc *first;
	size_t n = 0;
	unsigned int i;

	if (!l->data)
		return scnprintf(buf, len, "lines not bound");
	first = l->data->desc[0];
	n += scnprintf(buf + n, len - n, "%s data ",
		       gpio_device_get_label(gpiod_to_gpio_device(first)));
	for (i = 0; i < l->data->ndescs; i++) {
		if (i)
			n += scnprintf(buf + n, len - n, ",");
		n += ssi_gpio_line_name(l->data->desc[i], first, buf + n, len - n);
	}
	n += scnprintf(buf + n, len - n, " ready ");
	n += ssi_gpio_line_name(l->ready, first, buf + n, len - n);
	n += scnprintf(buf + n, len - n, " valid ");
	n += ssi_gpio_line_name(l->valid, first, buf + n, len - n);
	return n;
}

/* Reads the ten lines: bits 0-7 data, bit 8 ready, bit 9 valid (negative: errno). */
int ssi_gpio_read_data(const struct ssi_gpio_lines *l)
{
	DECLARE_BITMAP(values, SSI_GPIO_DATA_LINES);
	int ret;

	ret = gpiod_get_array_value_cansleep(l->data->ndescs, l->data->desc, l->data->info,
					     values);
	if (ret)
		return ret;
	return (int)(values[0] & 0xff);
}

int ssi_gpio_lines_sample(const struct ssi_gpio_lines *l)
{
	int data, ready, valid;

	if (!l->data)
		return -ENODEV;
	data = ssi_gpio_read_data(l);
	if (data < 0)
		return data;
	ready = gpiod_get_value_cansleep(l->ready);
	valid = gpiod_get_value_cansleep(l->valid);
	if (ready < 0)
		return ready;
	if (valid < 0)
		return valid;
	return data | ready << 8 | valid << 9;
}

/* The device and lookup table of the gpio_chip/gpio_line parameters. */
struct ssi_gpio_fallback {
	struct platform_device *pdev;
	struct gpiod_lookup_table *table;
	char chip[64];
};

static int ssi_gpio_chip_named(struct gpio_chip *gc, const void *name)
{
	return !strcmp(dev_name(gpio_device_to_device(gc->gpiodev)), name);
}

struct ssi_gpio_fallback *ssi_gpio_fallback_new(int chip, unsigned int first)
{
	struct ssi_gpio_fallback *f;
	struct gpio_device *gdev;
	struct gpio_chip *gc;
	char name[32];
	int i, ret;

	snprintf(name, sizeof(name), "gpiochip%d", chip);
	gdev = gpio_device_find(name, ssi_gpio_chip_named);
	if (!gdev) {
		pr_err("ssi_gpio_bus: gpio_chip=%d: there is no %s\n", chip, name);
		return ERR_PTR(-ENODEV);
	}
	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f) {
		ret = -ENOMEM;
		goto put;
	}
	f->table = kzalloc(struct_size(f->table, table, SSI_GPIO_LINES + 1), GFP_KERNEL);
	if (!f->table) {
		ret = -ENOMEM;
		goto free;
	}
	gc = gpio_device_get_chip(gdev);
	if (!gc || first + SSI_GPIO_LINES > gc->ngpio) {
		pr_err("ssi_gpio_bus: %s has %u lines, lines %u..%u do not fit\n", name,
		       gc ? gc->ngpio : 0, first, first + SSI_GPIO_LINES - 1);
		ret = -EINVAL;
		goto free;
	}
	/* The lookup table names the chip by its label. */
	strscpy(f->chip, gpio_device_get_label(gdev), sizeof(f->chip));
	f->table->dev_id = SSI_GPIO_DEV_NAME;
	for (i = 0; i < SSI_GPIO_LINES; i++) {
		struct gpiod_lookup *e = &f->table->table[i];

		e->key = f->chip;
		e->chip_hwnum = first + i;
		if (i < SSI_GPIO_DATA_LINES) {
			e->con_id = "data";
			e->idx = i;
		} else {
			e->con_id = i == SSI_GPIO_DATA_LINES ? "ready" : "valid";
			e->idx = 0;
		}
		/* The data lines are open drain (the bus protocol's wired AND). */
		e->flags = i < SSI_GPIO_DATA_LINES ? GPIO_OPEN_DRAIN : GPIO_ACTIVE_HIGH;
	}
	gpiod_add_lookup_table(f->table);
	f->pdev = platform_device_register_simple(SSI_GPIO_DEV_NAME, PLATFORM_DEVID_NONE, NULL, 0);
	if (IS_ERR(f->pdev)) {
		ret = PTR_ERR(f->pdev);
		gpiod_remove_lookup_table(f->table);
		goto free;
	}
	gpio_device_put(gdev);
	return f;
free:
	kfree(f->table);
	kfree(f);
put:
	gpio_device_put(gdev);
	return ERR_PTR(ret);
}

void ssi_gpio_fallback_free(struct ssi_gpio_fallback *f)
{
	platform_device_unregister(f->pdev);
	gpiod_remove_lookup_table(f->table);
	kfree(f->table);
	kfree(f);
}

/* Bus operation: the side decides which strobe is this node's (A drives valid). */
static struct gpio_desc *ssi_gpio_own(const struct ssi_gpio_lines *l, bool side_a)
{
	return side_a ? l->valid : l->ready;
}

static struct gpio_desc *ssi_gpio_peer(const struct ssi_gpio_lines *l, bool side_a)
{
	return side_a ? l->ready : l->valid;
}

int ssi_gpio_lines_setup(const struct ssi_gpio_lines *l, bool side_a)
{
	return gpiod_direction_output(ssi_gpio_own(l, side_a), 0);
}

int ssi_gpio_lines_release(const struct ssi_gpio_lines *l, bool side_a)
{
	DECLARE_BITMAP(ones, SSI_GPIO_DATA_LINES);

	bitmap_fill(ones, SSI_GPIO_DATA_LINES);
	gpiod_set_array_value_cansleep(l->data->ndescs, l->data->desc, l->data->info, ones);
	return gpiod_direction_input(ssi_gpio_own(l, side_a));
}

int ssi_gpio_drive_data(const struct ssi_gpio_lines *l, u8 now, u8 want)
{
	unsigned int i;
	int ret;

	for (i = 0; i < SSI_GPIO_DATA_LINES; i++) {
		if (((now ^ want) >> i) & 1) {
			ret = gpiod_set_value_cansleep(l->data->desc[i], (want >> i) & 1);
			if (ret)
				return ret;
		}
	}
	return 0;
}

int ssi_gpio_drive_strobe(const struct ssi_gpio_lines *l, bool side_a, bool high)
{
	return gpiod_set_value_cansleep(ssi_gpio_own(l, side_a), high);
}

int ssi_gpio_read_peer_strobe(const struct ssi_gpio_lines *l, bool side_a)
{
	return gpiod_get_value_cansleep(ssi_gpio_peer(l, side_a));
}

/* The peer's strobe interrupt: both edges, handled in a thread (sleeping controllers). */
struct ssi_gpio_irq {
	int irq;
	void (*wake)(void *ctx);
	void *ctx;
};

static irqreturn_t ssi_gpio_irq_thread(int irq, void *data)
{
	struct ssi_gpio_irq *i = data;

	i->wake(i->ctx);
	return IRQ_HANDLED;
}

struct ssi_gpio_irq *ssi_gpio_irq_request(const struct ssi_gpio_lines *l, bool side_a,
					  void (*wake)(void *ctx), void *ctx)
{
	struct ssi_gpio_irq *i;
	int ret;

	i = kzalloc(sizeof(*i), GFP_KERNEL);
	if (!i)
		return ERR_PTR(-ENOMEM);
	i->wake = wake;
	i->ctx = ctx;
	i->irq = gpiod_to_irq(ssi_gpio_peer(l, side_a));
	if (i->irq < 0) {
		ret = i->irq;
		pr_err("ssi_gpio_bus: the peer's strobe has no interrupt (%d)\n", ret);
		goto free;
	}
	ret = request_threaded_irq(i->irq, NULL, ssi_gpio_irq_thread,
				   IRQF_TRIGGER_RISING | IRQF_TRIGGER_FALLING | IRQF_ONESHOT,
				   "ssi_gpio_bus", i);
	if (ret) {
		pr_err("ssi_gpio_bus: cannot request interrupt %d (%d)\n", i->irq, ret);
		goto free;
	}
	return i;
free:
	kfree(i);
	return ERR_PTR(ret);
}

void ssi_gpio_irq_free(struct ssi_gpio_irq *i)
{
	free_irq(i->irq, i);
	kfree(i);
}

struct task_struct *ssi_gpio_thread_start(int (*fn)(void *), void *ctx)
{
	return kthread_run(fn, ctx, "ssi-gpio-bus");
}

void ssi_gpio_thread_stop(struct task_struct *t)
{
	kthread_stop(t);
}

bool ssi_gpio_thread_should_stop(void)
{
	return kthread_should_stop();
}

void ssi_gpio_page_write(struct page *page, size_t off, const void *src, size_t len)
{
	memcpy_to_page(page, off, src, len);
}

void ssi_gpio_page_read(struct page *page, size_t off, void *dst, size_t len)
{
	memcpy_from_page(dst, page, off, len);
}

void ssi_gpio_page_get(struct page *page)
{
	get_page(page);
}

void ssi_gpio_page_put(struct page *page)
{
	put_page(page);
}
