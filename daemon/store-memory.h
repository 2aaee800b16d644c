/* SPDX-License-Identifier: MIT */
/*
 * The in-memory job store's insides (see store.h), shared by store-memory.c (jobs, queues,
 * states, extras, retention, the table of operations) and store-memory-groups.c (groups,
 * submitted variants and their freeing).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/idmap.h"
#include "daemon/ledger.h"
#include "daemon/store.h"
#include "daemon/log-ring.h"
#include "daemon/submit-keys.h"

#define JOB_CHUNK 4096 /* jobs live in fixed chunks: a job's address never changes */

struct pool_queues {
	struct job_queue ready;
	struct job_queue alone;
};

/* What the jobs forgotten so far count for (mem_collect()): a durable store keeps this and
 * counts the rest from the jobs it holds. */
struct mem_gone {
	uint64_t runs;
	uint64_t by_state[_JOB_STATE_MAX];
};

struct mem_group {
	struct group_config cfg; /* own copy: every string and input_paths are owned */
	struct group_counts counts;
	struct group_counts gone; /* of counts, its jobs forgotten */
	uint64_t kept;    /* its jobs not forgotten yet: a submitted group goes with the last */
	uint32_t spec_id; /* the id workers know its spec by: never reused */
	uint32_t def_hash; /* submitted: hash of its definition (the variants index) */
	bool adhoc;       /* submitted at run time (a variant), not from the config */
	bool freed;       /* a submitted group whose jobs were all forgotten: slot reusable */
};

struct mem {
	struct store base;
	struct job **chunks; /* NULL: a chunk whose ended jobs were forgotten */
	uint32_t *chunk_ended; /* per chunk: jobs in a final state */
	size_t n_chunks;
	size_t first_kept;   /* chunks below it are forgotten */
	uint64_t n_jobs;
	uint64_t ended_kept; /* jobs in a final state in kept chunks */
	uint64_t keep_ended; /* collect() keeps at least this many ended jobs */
	uint64_t forgotten;
	unsigned pins;
	struct pool_queues *queues; /* one per pool index */
	unsigned n_pools;
	struct mem_group *groups;
	unsigned n_groups;          /* slots, freed ones included */
	unsigned *free_groups;      /* freed slots, reused by the next group */
	unsigned n_free_groups;
	uint32_t spec_serial;       /* the last spec id given */
	uint64_t variants_made;     /* names submitted groups: BASE@N */
	struct idmap variants;      /* def_hash -> group index + 1 (submitted groups) */
	unsigned last_variant;      /* the variant found or made last: index + 1 (0: none) */
	struct submit_keys keys;    /* submit --key */
	struct log_ring logs;       /* the last STORE_LOGS_BYTES of job log lines */
	struct ledger_stats stats;
	struct mem_gone gone; /* of stats, the jobs forgotten */
	char **nodes; /* node names, index - 1 (job.node) */
	uint16_t n_nodes;
};

#define MEM(st) ((struct mem *)(st))
#define CMEM(st) ((const struct mem *)(st))

void mem_group_config_done(struct group_config *g);
uint16_t mem_node_index(struct store *st, const char *name);
const char *mem_node_name(const struct store *st, uint16_t index);
void mem_group_release(struct mem *l, unsigned index);
struct job *mem_job_slot(const struct mem *l, uint64_t id);
/* Unmaps a chunk of jobs (NULL: nothing). */
void mem_chunk_free(struct job *c);
int mem_grow_jobs(struct mem *l, uint64_t n);
int mem_add_jobs(struct store *st, unsigned group, unsigned count, uint64_t *ret_first);
int mem_add_input_jobs(struct store *st, unsigned group, char *const *inputs, size_t n,
			  uint64_t *ret_first);
int mem_add_group(struct store *st, const struct group_config *g, unsigned *ret_index);
int mem_add_variant(struct store *st, const struct group_config *g, const char *base,
		       unsigned count, char *const *inputs, size_t n_inputs, unsigned *ret_group,
		       uint64_t *ret_first);
/*
 * The submitted group of g's definition (add_variant), made with no jobs if there is none
 * (*ret_made): its index. mem_group_release() gives a made one back.
 */
int mem_variant_group(struct store *st, const struct group_config *g, const char *base,
		      unsigned *ret_index, bool *ret_made);
unsigned mem_n_groups(const struct store *st);
const struct group_config *mem_group(const struct store *st, unsigned group);
int mem_find_group(const struct store *st, const char *name);
bool mem_group_exists(const struct store *st, unsigned group);
uint32_t mem_group_spec_id(const struct store *st, unsigned group);
unsigned mem_n_live_groups(const struct store *st);
void mem_update_group(struct store *st, unsigned group, const struct group_config *g);
int mem_rename_group(struct store *st, unsigned group, const char *name);
int mem_group_config_copy(struct group_config *dst, const struct group_config *src);
/* Job queues (threaded through job.next): j in at the back (front: at the front), the
 * first out, j out from where it is (false: it was not in q). */
void mem_queue_put(struct job_queue *q, struct job *j, bool front);
struct job *mem_queue_pop(struct job_queue *q);
bool mem_queue_remove(struct job_queue *q, struct job *j);

/* ---- store-memory-restore.c: rebuilt from a durable store (on an empty store only) ---- */
/* Group `index` as it was, with its counts (which include its forgotten jobs). */
int mem_restore_group(struct store *st, unsigned index, const struct group_config *g,
		      bool adhoc, uint32_t def_hash, const struct group_counts *counts);
/* Group `index`'s counts it was restored with are those of its forgotten jobs (mem_group.gone). */
void mem_restore_group_gone(struct store *st, unsigned index);
/* Ids 1..n were forgotten (whole chunks); what they counted for in all. */
int mem_restore_forgotten(struct store *st, uint64_t n, const struct mem_gone *gone);
/*
 * The job after the last one (ids ascending, no gap), in saved->state, counted in its group's
 * counts and the store's (by state, runs) on top of what they were restored with.
 */
int mem_restore_job(struct store *st, const struct job *saved, const char *input,
		    const char *result);
void mem_restore_stats(struct store *st, const struct ledger_stats *s, uint64_t variants_made);
uint64_t mem_variants_made(const struct store *st);
const struct mem_group *mem_group_of(const struct store *st, unsigned group);
/* The lowest id not forgotten. */
uint64_t mem_first_kept_id(const struct store *st);
