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
 * where they came from. Every line starts as an input: nothing is driven until the
 * bus protocol decides which side talks.
 */
#include <linux/device.h>
#include <linux/err.h>
#include <linux/gpio/consumer.h>
#include <linux/gpio/driver.h>
#include <linux/gpio/machine.h>
#include <linux/platform_device.h>
#include <linux/slab.h>

#include "shim.h"

/* The platform driver's name: a device of that name binds without a device tree. */
#define SSI_GPIO_DEV_NAME "ssi_gpio_bus"

int ssi_gpio_lines_get(struct device *dev, struct ssi_gpio_lines *l)
{
	struct gpio_descs *data;

	data = devm_gpiod_get_array(dev, "data", GPIOD_IN);
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
int ssi_gpio_lines_sample(const struct ssi_gpio_lines *l)
{
	DECLARE_BITMAP(values, SSI_GPIO_DATA_LINES);
	int ret, ready, valid;

	if (!l->data)
		return -ENODEV;
	ret = gpiod_get_array_value_cansleep(l->data->ndescs, l->data->desc, l->data->info,
					     values);
	if (ret)
		return ret;
	ready = gpiod_get_value_cansleep(l->ready);
	valid = gpiod_get_value_cansleep(l->valid);
	if (ready < 0)
		return ready;
	if (valid < 0)
		return valid;
	return (int)(values[0] & 0xff) | ready << 8 | valid << 9;
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
		e->flags = GPIO_ACTIVE_HIGH;
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
