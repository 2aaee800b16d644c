/* SPDX-License-Identifier: MIT */
/*
 * The scheduler slice a thread asks for (Linux 6.12+, EEVDF: sched_setattr()'s sched_runtime
 * for a SCHED_OTHER or SCHED_BATCH thread). The supervisor's own threads, which run for tens
 * of microseconds at a time and whose latency decides when job threads get work (the master,
 * a worker's main thread, the fork server, a worker's spawner), ask for a short one: woken on
 * a CPU where a job thread spins, they then run at once instead of queueing for up to the rest
 * of its slice (about 1.4 ms on 2 CPUs) while a CPU may sit idle. Their share of the CPU does
 * not change (that is their weight, their nice value, which stays as it was). Job threads,
 * and the children and commands they start, take the default back: a thread and a forked
 * child inherit the slice. See docs/decisions.md, "A short slice for the supervisor's
 * threads".
 */
#pragma once

#include <stdint.h>

#define SCHED_SLICE_SUPERVISOR_NS 100000u /* the kernel's floor: 0.1 ms */

/*
 * The calling thread's slice: ns, or 0 for the kernel's default. Policy and nice stay as they
 * are; a thread under another policy (real-time, SCHED_IDLE) is left alone. Returns 0, or
 * -errno (a kernel before 3.14 has no sched_setattr(): -ENOSYS; one before 6.12 ignores the
 * slice).
 */
int sched_slice_set(uint64_t ns);
