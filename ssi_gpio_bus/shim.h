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

/* Driving the bus (process context: the controller may sleep). side_a: this node's
 * strobe is valid, the peer's ready; otherwise the reverse. */
struct page;
struct task_struct;
struct ssi_gpio_irq;
int ssi_gpio_lines_setup(const struct ssi_gpio_lines *l, bool side_a);
int ssi_gpio_lines_release(const struct ssi_gpio_lines *l, bool side_a);
/* Sets the data lines whose bit differs between @now and @want (open drain: 1 releases). */
int ssi_gpio_drive_data(const struct ssi_gpio_lines *l, u8 now, u8 want);
int ssi_gpio_drive_strobe(const struct ssi_gpio_lines *l, bool side_a, bool high);
/* The data lines as a byte (bit i: data line i), or -errno. */
int ssi_gpio_read_data(const struct ssi_gpio_lines *l);
/* The peer's strobe: 0, 1 or -errno. */
int ssi_gpio_read_peer_strobe(const struct ssi_gpio_lines *l, bool side_a);
/* Calls @wake(@ctx) from a thread on every edge of the peer's strobe. */
struct ssi_gpio_irq *ssi_gpio_irq_request(const struct ssi_gpio_lines *l, bool side_a,
					  void (*wake)(void *ctx), void *ctx);
void ssi_gpio_irq_free(struct ssi_gpio_irq *i);
struct task_struct *ssi_gpio_thread_start(int (*fn)(void *), void *ctx);
void ssi_gpio_thread_stop(struct task_struct *t);
bool ssi_gpio_thread_should_stop(void);
void ssi_gpio_page_write(struct page *page, size_t off, const void *src, size_t len);
void ssi_gpio_page_read(struct page *page, size_t off, void *dst, size_t len);
void ssi_gpio_page_get(struct page *page);
void ssi_gpio_page_put(struct page *page);

#endif
