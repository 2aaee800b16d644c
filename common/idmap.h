/* SPDX-License-Identifier: MIT */
/*
 * A map from 64-bit ids (0 is not an id) to 64-bit values: open addressing with linear
 * probing and backward-shift deletion (no tombstones), grown at 3/4 full, shrunk at 1/8.
 * It never holds more than IDMAP_MAX entries: a peer cannot make it grow without bound.
 *
 * Used where ids come from far apart and must not size an array: the job specs a worker
 * holds (children/worker.c), the specs the master has sent each worker (daemon/dispatch.c),
 * the ledger's index of submitted variants, and the leases a node of the shared queue holds
 * (daemon/pg-queue.c: job ids with a slot in their high bits). Not thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define IDMAP_MAX (1u << 24)

struct idmap_entry {
	uint64_t id; /* 0: empty */
	uint64_t value;
};

struct idmap {
	struct idmap_entry *e;
	uint32_t cap; /* 0 or a power of two */
	uint32_t n;
};

#define IDMAP_INIT ((struct idmap){ 0 })

/* The entry for id, or NULL. Its address is valid until the next add or del. */
struct idmap_entry *idmap_find(const struct idmap *m, uint64_t id);
/* Adds id (not present) with value. 0, -EINVAL (id 0 or present), -E2BIG, -ENOMEM. */
int idmap_add(struct idmap *m, uint64_t id, uint64_t value);
/* Removes id; returns 0, or -ENOENT if absent. */
int idmap_del(struct idmap *m, uint64_t id);
/* Removes every entry and frees the storage. */
void idmap_clear(struct idmap *m);
