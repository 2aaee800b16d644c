/* SPDX-License-Identifier: MIT */
/*
 * Named locks: a fixed table name -> pthread_mutex_t shared by all job threads of one worker
 * (jobs reach it through bulkhead_lock()/bulkhead_unlock() in job-api.c).
 *
 * Invariants: entries [0, n_locks) are fully initialised and never change or go away (no
 * lock is ever destroyed: a job may crash or hang while holding one, and the worker dies
 * with it). Entries are appended under create_lock and published with a release store of
 * n_locks, so the hot path (a name that exists) is a lock-free scan with an acquire load;
 * only the first use of a name takes the global mutex. The table is a static array: no
 * allocation, so a job that exhausted the address space can still take its locks.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "locks.h"

struct named_lock {
	char name[LOCK_NAME_MAX + 1];
	pthread_mutex_t mutex;
};

static struct named_lock table[LOCKS_MAX];
static atomic_uint n_locks;
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

static struct named_lock *find(const char *name, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

int locks_get(const char *name, pthread_mutex_t **ret)
{
	struct named_lock *l;
	size_t len;
	unsigned n;

	if (!name)
		return -EINVAL;
	len = strnlen(name, LOCK_NAME_MAX + 1);
	if (len == 0 || len > LOCK_NAME_MAX)
		return -EINVAL;

	l = find(name, atomic_load_explicit(&n_locks, memory_order_acquire));
	if (l) {
		*ret = &l->mutex;
		return 0;
	}

	pthread_mutex_lock(&create_lock);
	n = atomic_load_explicit(&n_locks, memory_order_relaxed);
	l = find(name, n);
	if (!l && n < LOCKS_MAX) {
		l = &table[n];
		memcpy(l->name, name, len + 1);
		pthread_mutex_init(&l->mutex, NULL);
		atomic_store_explicit(&n_locks, n + 1, memory_order_release);
	}
	pthread_mutex_unlock(&create_lock);
	if (!l)
		return -ENOMEM;
	*ret = &l->mutex;
	return 0;
}
