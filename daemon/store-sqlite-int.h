/* SPDX-License-Identifier: MIT */
/*
 * The SQLite store's insides, shared by store-sqlite.c (the operations, marks, flush) and
 * store-sqlite-open.c (opening, the schema, loading).
 */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/ledger.h"
#include "daemon/log-ring.h"
#include "daemon/store.h"

/* What of a group's row is to be written: its counts of forgotten jobs only (retention forgot
 * some), or all of it. */
enum { GROUP_CLEAN, GROUP_COUNTS, GROUP_WHOLE };

/* Room for the counters (enum meta_key below; checked there). */
#define META_N_MAX 32

struct sq {
	struct store base;
	struct store *mem;
	const struct store_ops *m;
	sqlite3 *db;
	char *path;
	sqlite3_stmt *put_job, *put_fresh, *put_state, *put_counts, *put_group, *del_group,
		*put_input, *del_inputs, *put_meta, *del_forgotten, *del_states, *del_runs,
		*cut_runs, *put_key, *del_keys,
		*put_log, *del_logs, *get_logs, *begin, *commit;
	struct log_ring pending_logs; /* lines not in the file yet */
	char **pools; /* names, by index: a group's pool is kept by name */
	unsigned n_pools;
	unsigned n_gone; /* of them, the last ones, loaded for groups of pools the config dropped */
	char **new_keys; /* submit keys not in the file yet */
	size_t n_new_keys;
	uint64_t *dirty; /* ids of changed jobs written before (JOB_DIRTY set on them) */
	size_t n_dirty, cap_dirty;
	uint64_t new_from; /* jobs from this id on are written whole at the next flush */
	uint64_t in_file_to; /* jobs up to this id have a row (unless forgotten) */
	uint64_t kept_from; /* the file holds no job below this id */
	bool *in_file; /* per group index: the file has a row for it */
	uint8_t *group_dirty; /* per group index: GROUP_COUNTS or GROUP_WHOLE, to be written */
	/* A partial flush: per group index, its starts it leaves unwritten (written as queued),
	 * and in all. */
	uint32_t *group_lazy;
	uint64_t n_lazy;
	/* Of them, new jobs written as queued (their ids after dirty[n_dirty - 1], in dirty[]'s
	 * room: they join it at the commit). */
	size_t n_lazy_new;
	unsigned cap_groups;
	bool meta_dirty;
	bool meta_known; /* meta_written is what the file holds, every key of it */
	bool meta_wrote; /* this transaction wrote meta_next */
	uint64_t meta_written[META_N_MAX], meta_next[META_N_MAX];
	int depth; /* begin() without its commit() */
	uint64_t commits; /* flushes that wrote something */
	struct job **orphans;
	size_t n_orphans;
	char error[512];
};

#define SQ(st) ((struct sq *)(st))
#define CSQ(st) ((const struct sq *)(st))

extern const struct store_ops store_sqlite_ops;

/* Group indexes in a file beyond this are damage (a store has a few thousand at most). */
#define STORE_GROUPS_MAX (1 << 24)

/*
 * A job's row is in two (schema v4): what is written once, when it is accepted (jobs), and
 * what changes at each transition (job_states), written only once it has moved: a job
 * without one is queued, never started, with the flags and input it was accepted with.
 * Jobs accepted together without inputs of their own (a submit's, a pass's of one group)
 * are one row of job_runs instead of a row each in jobs: n jobs from id, instances from
 * instance on.
 * counters packs the job's small counters and its flags (sq_counters()); input is its input
 * now (a spool's file moves after its job's end), NULL if it has none of its own.
 */
#define JOB_COLUMNS "id, grp, instance, flags, accepted_at, input"
#define JOB_RUN_COLUMNS "id, n, grp, instance, flags, accepted_at"
#define JOB_STATE_COLUMNS \
	"id, state, cause, cause_detail, counters, started_ms, ended_ms, node, result, input"
#define GROUP_COLUMNS                                                                   \
	"id, name, pool, run, kind, args, inputs, spool, output, count, timeout_us, "   \
	"max_attempts, expect, adhoc, def_hash, forgotten_total, forgotten_queued, "    \
	"forgotten_running, forgotten_done, forgotten_failed, forgotten_crashed, "      \
	"forgotten_timed_out, forgotten_cancelled, pool_name, exec"

/* job_states.counters: attempts (bits 0-7), reruns (8-23), runs (24-39), host_deaths (40-47),
 * alone (48), flags (49-53; the store's own left out). */
#define SQ_COUNTERS_BITS 54
static inline int64_t sq_counters(const struct job *j)
{
	return (int64_t)j->attempts | (int64_t)j->reruns << 8 | (int64_t)j->runs << 24 |
	       (int64_t)j->host_deaths << 40 | (int64_t)(j->alone != 0) << 48 |
	       (int64_t)(j->flags & ~JOB_STORE_FLAGS) << 49;
}

/* store-sqlite-open.c: a statement kept for the store's life; 0 or the failure. */
int sq_prepare(struct sq *s, sqlite3_stmt **q, const char *sql);
/* store-sqlite-load.c: everything in the file into the memory store, checked. */
int sq_load(struct sq *s);

/*
 * meta keys (store-sqlite-open.c), in the order of enum meta_key (schema v5): the counters a
 * job's row cannot give back, and what the jobs forgotten counted for (runs, and by state:
 * all of them ended). The counts by state and the runs of the jobs the file holds are counted
 * from their rows at the load, so a commit that only adds jobs and moves them writes none of
 * these (bench/README.md, "Issue 13, fifth session").
 */
enum meta_key {
	META_FORGOTTEN,
	META_VARIANTS_MADE,
	META_RERUNS_BYSTANDER,
	META_RERUNS_SUSPECT,
	META_CULPRITS,
	META_HOST_DEATHS,
	META_FORGOTTEN_RUNS,
	META_FORGOTTEN_BY_STATE, /* then one per job state */
	META_N = META_FORGOTTEN_BY_STATE + _JOB_STATE_MAX,
};
_Static_assert(META_N <= META_N_MAX, "struct sq has room for the counters");
extern const char *const sq_meta_keys[META_N];

/* The negative errno for an SQLite result code. */
int sq_errno_of(int rc);
/* Records "PATH: what" as the store's error; returns err. */
int sq_fail(struct sq *s, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same for a failed SQLite call while `doing`. */
int sq_fail_db(struct sq *s, int rc, const char *doing);
int sq_exec(struct sq *s, const char *sql, const char *doing);
int sq_grow_groups(struct sq *s, unsigned n);
/* store-sqlite-write.c: the flush and the log lines (store.h's operations of those names). */
bool sq_dirty(const struct store *st);
int sq_flush(struct store *st);
int sq_flush_partial(struct store *st);
int sq_add_log(struct store *st, const struct log_line *line);
int sq_read_logs(struct store *st, const struct log_query *q,
		 int (*cb)(void *userdata, const struct log_line *line), void *userdata);
/* The pool names (copies), by index. */
int sq_set_pool_names(struct sq *s, unsigned n, const char *const *names);
void sq_free(struct store *st);
