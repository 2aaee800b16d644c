/* SPDX-License-Identifier: MIT */
/*
 * The job store: where jobs and their groups live, as one table of operations. The ledger
 * (ledger.h) is its only user: it owns the blame rules and decides every transition; a store
 * only keeps what it is told, answers views, and hands out queued jobs. Today's store is in
 * memory (store-memory.c); a durable one (SQLite) and a shared one (PostgreSQL) implement the
 * same table.
 *
 * Shaped for batched, transactional backends: the ledger brackets what belongs together
 * (every transition of one worker's death, one loop pass's ends) with begin() and commit();
 * a store may write then. A job that a view returns is the store's, valid until it is
 * forgotten (collect) or the store freed. Transitions are whole: requeue() and end() change
 * the state and every count with it, never half.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/job-state.h"
#include "config/config.h"

struct job;
struct job_queue;
struct group_counts;
struct ledger_stats;
struct store;
struct submit_key;

/* One line a job logged (bulkhead_job_log(), an exec's output), as `bulkhead logs` shows it. */
struct log_line {
	uint64_t job;
	int64_t at;      /* wall clock, µs since the epoch */
	int level;       /* syslog: 3 err .. 7 debug */
	const char *text; /* valid during the callback only */
	size_t len;
};

/*
 * Which lines a read wants: jobs first..last that match() (NULL: all), the last `tail` of
 * them (0: all), in the order they came.
 */
struct log_query {
	uint64_t first, last;
	bool (*match)(void *userdata, uint64_t job);
	void *userdata;
	size_t tail;
};

struct store_ops {
	const char *name; /* "memory", "sqlite" */
	void (*free)(struct store *st);

	/* ---- accept ---- */
	/* The pools, by index (names: what a durable store keeps a group's pool by). */
	int (*set_pools)(struct store *st, unsigned n_pools, const char *const *names);
	int (*add_group)(struct store *st, const struct group_config *g, unsigned *ret_index);
	int (*add_variant)(struct store *st, const struct group_config *g, const char *base,
			   unsigned count, char *const *inputs, size_t n_inputs, unsigned *ret_group,
			   uint64_t *ret_first);
	int (*add_jobs)(struct store *st, unsigned group, unsigned count, uint64_t *ret_first);
	int (*add_input_jobs)(struct store *st, unsigned group, char *const *inputs, size_t n,
			      uint64_t *ret_first);
	void (*update_group)(struct store *st, unsigned group, const struct group_config *g);
	/* A config group whose definition changed keeps its jobs under another name. */
	int (*rename_group)(struct store *st, unsigned group, const char *name);
	/*
	 * `submit --key`: the submission a key made (NULL: none kept), and a new one. A key goes
	 * with the first of its jobs (retention).
	 */
	const struct submit_key *(*find_key)(const struct store *st, const char *key);
	int (*add_key)(struct store *st, const char *key, uint64_t first, uint32_t count,
		       uint32_t request);

	/* ---- claim: queued jobs of a pool, in order ---- */
	uint64_t (*queued)(const struct store *st, unsigned pool, bool alone);
	struct job *(*pop)(struct store *st, unsigned pool, bool alone);
	void (*unpop)(struct store *st, struct job *j);
	/* Takes a queued job out of its queue (false: it is not in one). */
	bool (*unqueue)(struct store *st, struct job *j);

	/* ---- transitions (the ledger decides them) ---- */
	/* A job moves to state s (not a final one, and not QUEUED: see requeue). */
	void (*set_state)(struct store *st, struct job *j, enum job_state s);
	/* Back to its pool's queue (`alone` or the normal one, at the back). */
	void (*requeue)(struct store *st, struct job *j, bool alone);
	/* To a final state, with its cause. */
	void (*end)(struct store *st, struct job *j, enum job_state s, int cause, int detail);
	/* Its counters (attempts, reruns, runs, cause) or flags changed. */
	void (*touch)(struct store *st, struct job *j);
	/* The ledger's counters (ledger_stats: runs, re-runs, culprits; by_state is the store's). */
	struct ledger_stats *(*stats)(struct store *st);
	/* What belongs together: never written half (begin/commit nest). */
	void (*begin)(struct store *st);
	int (*commit)(struct store *st);
	/*
	 * Makes everything changed since the last flush durable, in one transaction (the master:
	 * once per loop pass). 0, or a negative errno with nothing of it written and all of it
	 * kept for the next flush; -EBUSY inside begin/commit.
	 */
	int (*flush)(struct store *st);
	/*
	 * flush(), except that a job whose one change since it was last written is its start
	 * (state RUNNING, its run counted) may be left for the next flush(): the file then
	 * holds it, and every count, as if it had not started (the master died before it ran).
	 * Optional (NULL: flush()).
	 */
	int (*flush_partial)(struct store *st);
	/*
	 * The jobs a durable store found RUNNING when it was opened (their master died under
	 * them): the array (malloc'd, the caller frees it) and its length, once; then none.
	 */
	size_t (*take_orphans)(struct store *st, struct job ***ret);
	/* What the last failed flush() met, naming the file ("" if none). */
	const char *(*last_error)(const struct store *st);
	/* Transactions committed since it was opened (0 for a store that writes nothing). */
	uint64_t (*commits)(const struct store *st);
	/* Whether a flush() would write anything. */
	bool (*dirty)(const struct store *st);

	/*
	 * Node names, kept once each: a job's `node` is an index (0: none). node_index() gives
	 * name's, adding it (0 if there is no room: 65535 names).
	 */
	uint16_t (*node_index)(struct store *st, const char *name);
	const char *(*node_name)(const struct store *st, uint16_t index);

	/* ---- per-job extras ---- */
	const char *(*job_input)(const struct store *st, const struct job *j);
	int (*move_job_input)(struct store *st, struct job *j, const char *input);
	const char *(*job_result)(const struct store *st, const struct job *j);
	int (*set_result)(struct store *st, struct job *j, const char *text, size_t len);
	int (*job_progress)(const struct store *st, const struct job *j);
	int (*set_progress)(struct store *st, struct job *j, int permille); /* -1: none */
	/*
	 * Job logs: a line kept with its job (the memory store keeps the last STORE_LOGS_BYTES
	 * of all jobs' lines; a durable one keeps them with their jobs, forgotten with them),
	 * and the lines a query wants, each given to cb (which returns < 0 to stop).
	 */
	int (*add_log)(struct store *st, const struct log_line *line);
	int (*read_logs)(struct store *st, const struct log_query *q,
			 int (*cb)(void *userdata, const struct log_line *line), void *userdata);

	/* ---- views ---- */
	uint64_t (*n_jobs)(const struct store *st);
	struct job *(*job)(struct store *st, uint64_t id);
	bool (*job_forgotten)(const struct store *st, uint64_t id);
	unsigned (*n_groups)(const struct store *st);
	unsigned (*n_live_groups)(const struct store *st);
	bool (*group_exists)(const struct store *st, unsigned group);
	const struct group_config *(*group)(const struct store *st, unsigned group);
	int (*find_group)(const struct store *st, const char *name);
	uint32_t (*group_spec_id)(const struct store *st, unsigned group);
	const struct group_counts *(*group_counts)(const struct store *st, unsigned group);

	/* ---- forget (retention) ---- */
	void (*set_keep_ended)(struct store *st, uint64_t keep);
	void (*pin)(struct store *st, bool on);
	uint64_t (*collect)(struct store *st);
	uint64_t (*forgotten)(const struct store *st);
};

/* Every store starts with this. */
struct store {
	const struct store_ops *ops;
};

#define STORE_LOGS_BYTES (4u << 20) /* the memory store's log lines, all jobs together */

/* The in-memory store (store-memory.c): jobs in chunks, queues threaded through them. */
int store_memory_new(unsigned n_pools, struct store **ret);
