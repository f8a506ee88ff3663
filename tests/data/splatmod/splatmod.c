// SPDX-License-Identifier: GPL-2.0
/*
 * splatmod: provokes one real kernel splat on load, for recording console logs that the
 * harness's splat detector is tested against (see tests/data/capture_logs.py).
 * Never load it on a machine you care about.
 */
#include <linux/delay.h>
#include <linux/kfence.h>
#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/task_stack.h>
#include <linux/slab.h>

static char *action = "warn";
module_param(action, charp, 0444);
static int secs = 8;
module_param(secs, int, 0444);
static int depth = 1000000;
module_param(depth, int, 0444);
static unsigned long null_addr;
module_param(null_addr, ulong, 0444);

static void spin(void)
{
	unsigned long end = jiffies + secs * HZ;

	while (time_before(jiffies, end))
		mdelay(10);
}

static noinline int recurse(int n)
{
	volatile char buf[512];

	buf[0] = (char)n;
	if (n >= depth)
		return buf[0];
	return recurse(n + 1) + buf[0];
}

static int kfence_uaf(void)
{
	int i;

	for (i = 0; i < 20000; i++) {
		char *p = kmalloc(32, GFP_KERNEL);

		if (!p)
			return -ENOMEM;
		if (is_kfence_address(p)) {
			kfree(p);
			pr_info("splatmod: kfence object after %d tries: %d\n", i, READ_ONCE(p[3]));
			return 0;
		}
		kfree(p);
		usleep_range(100, 200);
	}
	pr_info("splatmod: no kfence object (set kfence sample_interval to 1 first)\n");
	return 0;
}

static int __init splat_init(void)
{
	pr_info("splatmod: action=%s\n", action);
	if (!strcmp(action, "warn")) {
		WARN(1, "splatmod: deliberate warning\n");
	} else if (!strcmp(action, "bug")) {
		BUG();
	} else if (!strcmp(action, "null")) {
		*(volatile int *)null_addr = 1;
	} else if (!strcmp(action, "spin")) {
		preempt_disable();
		spin();
		preempt_enable();
	} else if (!strcmp(action, "rcu")) {
		rcu_read_lock();
		preempt_disable();
		spin();
		preempt_enable();
		rcu_read_unlock();
	} else if (!strcmp(action, "kfence")) {
		return kfence_uaf();
	} else if (!strcmp(action, "stack")) {
		return recurse(0);
	} else if (!strcmp(action, "stackend")) {
		*end_of_stack(current) = 0;
		schedule();
	}
	return -ECANCELED;
}

module_init(splat_init);
MODULE_DESCRIPTION("Provoke real kernel splats for harness tests");
MODULE_LICENSE("GPL");
