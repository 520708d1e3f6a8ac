// SPDX-License-Identifier: GPL-2.0
/*
 * The heartbeat of ssi_core: a self-rearming delayed work that calls the Rust
 * ssi_core_tick() every period. The kernel crate's workqueue has no cancel, and a
 * pending work must not outlive the module: cancel_delayed_work_sync() here stops it
 * for good (it also waits for a running tick and defeats its re-arming).
 */
#include <linux/workqueue.h>

#include "shim.h"

static struct delayed_work ssi_tick_work;
static unsigned long ssi_tick_jiffies;

static void ssi_tick_fn(struct work_struct *work)
{
	ssi_core_tick();
	queue_delayed_work(system_dfl_wq, &ssi_tick_work, ssi_tick_jiffies);
}

void ssi_core_ticker_start(unsigned int period_ms)
{
	ssi_tick_jiffies = msecs_to_jiffies(period_ms);
	INIT_DELAYED_WORK(&ssi_tick_work, ssi_tick_fn);
	queue_delayed_work(system_dfl_wq, &ssi_tick_work, ssi_tick_jiffies);
}

void ssi_core_ticker_stop(void)
{
	cancel_delayed_work_sync(&ssi_tick_work);
}
