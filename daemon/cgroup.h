/* SPDX-License-Identifier: MIT */
/*
 * Workers in cgroups of their own, where the master was given a cgroup v2 subtree
 * (bulkhead.service's Delegate=yes; docs/decisions.md "Cgroups"): memory.max per worker (the
 * real memory limit), pids.max ([pool] tasks_max), the OOM kills read from memory.events,
 * and cgroup.kill to end a worker with everything its jobs started.
 *
 * Layout under the master's own cgroup C:
 *   C/supervisor          the master (and the fork server): C itself holds no process, so
 *                         controllers can be enabled for its children;
 *   C/w.POOL.SLOT         one per worker slot, reused by each worker of that slot.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct cgroup_tree;

/*
 * Sets the tree up if the master's cgroup is delegated to it (the trusted.delegate or
 * user.delegate attribute that systemd puts on a Delegate=yes unit's cgroup). NULL when
 * cgroups are not used (not delegated, or it cannot be set up): the fallback is said in the
 * log when limits_wanted (a pool sets memory_max or tasks_max), and a failure always.
 */
struct cgroup_tree *cgroup_tree_open(bool limits_wanted);
bool cgroup_tree_memory(const struct cgroup_tree *t); /* memory.max can be set (NULL: no) */
/* Ends every slot's processes (cgroup.kill), removes the slot cgroups. */
void cgroup_tree_free(struct cgroup_tree *t);

/*
 * The slot's cgroup (made on first use), with memory.max and pids.max set (UINT64_MAX /
 * 0: none). Returns an O_DIRECTORY fd on it (the caller's), or -errno.
 */
int cgroup_slot_prepare(struct cgroup_tree *t, const char *pool, unsigned slot, uint64_t memory_max,
			unsigned tasks_max);
/* Moves pid into the slot's cgroup. 0 or -errno. */
int cgroup_slot_attach(int fd, pid_t pid);
/* memory.events' oom_kill: how many processes the OOM killer ended in it so far. */
uint64_t cgroup_slot_oom_kills(int fd);
/* cgroup.kill: SIGKILL to every process in it. 0 or -errno. */
int cgroup_slot_kill(int fd);
