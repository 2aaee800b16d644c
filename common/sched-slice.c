/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sched-slice.h"

/* The kernel's struct sched_attr (uapi linux/sched/types.h, which clashes with <sched.h>). */
struct slice_attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime;
	uint64_t sched_deadline;
	uint64_t sched_period;
};

int sched_slice_set(uint64_t ns)
{
	struct slice_attr a = { .size = sizeof(a), .sched_runtime = ns };
	int policy = sched_getscheduler(0);
	int nice;

	if (policy < 0)
		return -errno;
	if (policy & SCHED_RESET_ON_FORK)
		a.sched_flags = 1; /* SCHED_FLAG_RESET_ON_FORK: kept */
	policy &= ~SCHED_RESET_ON_FORK;
	if (policy != SCHED_OTHER && policy != SCHED_BATCH)
		return 0;
	errno = 0;
	nice = getpriority(PRIO_PROCESS, 0); /* this thread's: nice is per thread on Linux */
	if (nice == -1 && errno != 0)
		return -errno;
	a.sched_policy = (uint32_t)policy;
	a.sched_nice = nice;
	return syscall(SYS_sched_setattr, 0, &a, 0) < 0 ? -errno : 0;
}
