/* SPDX-License-Identifier: GPL-2.0 */
/* The C side of ssi_gpio_bus (lines_shim.c), as called from Rust (lines.rs). */
#ifndef SSI_GPIO_BUS_SHIM_H
#define SSI_GPIO_BUS_SHIM_H

#include <linux/types.h>

#define SSI_GPIO_DATA_LINES 8
/* data0..data7, ready, valid */
#define SSI_GPIO_LINES 10

struct device;
struct gpio_desc;
struct gpio_descs;
struct ssi_gpio_fallback;

/* The bus's lines, device-managed by the bound platform device. */
struct ssi_gpio_lines {
	struct gpio_descs *data;
	struct gpio_desc *ready;
	struct gpio_desc *valid;
};

int ssi_gpio_lines_get(struct device *dev, struct ssi_gpio_lines *l);
int ssi_gpio_lines_describe(const struct ssi_gpio_lines *l, char *buf, size_t len);
int ssi_gpio_lines_sample(const struct ssi_gpio_lines *l);
struct ssi_gpio_fallback *ssi_gpio_fallback_new(int chip, unsigned int first);
void ssi_gpio_fallback_free(struct ssi_gpio_fallback *f);

#endif
