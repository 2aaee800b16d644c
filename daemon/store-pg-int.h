/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL store's insides (store-pg.h), shared by store-pg-work.c (the operations on
 * the working set, its queues and its writes) and store-pg-open.c (opening: the config's
 * groups, and the groups of claimed jobs this node did not know).
 *
 * A node keeps in memory only the jobs it works on (the working set), by their ids: those it
 * added until their add is committed, and those it claimed or took over until what became of
 * them is sent. Every other job is in the table only; views read it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/idmap.h"
#include "daemon/ledger.h"
#include "daemon/pg-queue.h"
#include "daemon/store-pg.h"
#include "daemon/store.h"

/* A job of the working set: a struct job * the master holds is the start of one. */
struct pjob {
	struct job j;
	int64_t epoch;       /* the lease it is held at (0: added here, not claimed) */
	uint64_t add_serial; /* added here: the flush that adds it (0: not flushed yet) */
	bool marked;         /* in marked[]: to be written at the next flush */
	bool queued;         /* in a pool's local queue */
	bool lost;           /* its lease was taken: nothing of it is written */
};

#define PJOB(j) ((struct pjob *)(j))

/* Claimed jobs of a group this node does not know yet: copied, until its row is read. */
struct parked {
	struct pg_job *jobs; /* strings malloc'd */
	size_t n, cap;
	bool fetching;
	int64_t *asked; /* the group ids the read in flight asked for */
	size_t n_asked;
};

struct pgs {
	struct store base;
	struct store *mem; /* groups, submit keys, node names, logs, counters */
	const struct store_ops *m;
	sd_event *e;
	struct pg_queue *q;
	const struct store_pg_events *ev;
	void *ev_data;
	char *node;
	int64_t lease_ms;
	int64_t next_id; /* the last id given (jobs and groups): the slot's */
	struct idmap jobs; /* id -> struct pjob * */
	uint64_t n_jobs;   /* in the working set */
	struct job_queue *ready, *alone; /* per pool index */
	char **pools;
	unsigned n_pools;
	int64_t *gids; /* per group index: its row's id (0: none) */
	unsigned cap_gids;
	struct idmap gidx; /* row id -> group index + 1 */
	struct pjob **marked;
	size_t n_marked, cap_marked;
	struct pjob **adds; /* added here, not committed yet */
	size_t n_adds, cap_adds;
	struct job **orphans;
	size_t n_orphans;
	struct parked parked;
	int depth;
	bool dirty; /* an add or a group row is buffered */
	uint64_t commits;
	char error[512];
};

#define PGS(st) ((struct pgs *)(st))
#define CPGS(st) ((const struct pgs *)(st))

/* store-pg-work.c */
extern const struct store_ops store_pg_ops;
extern const struct pg_queue_ops store_pg_queue_ops;
void pgs_pq_push(struct job_queue *q, struct job *j, bool front);
struct job *pgs_pq_pop(struct job_queue *q);
/* Out of its local queue (false: it was in none). */
bool pgs_unqueue(struct pgs *s, struct job *j);
/* Moves j to state `to`, counted. */
void pgs_count_state(struct pgs *s, struct job *j, enum job_state to);
/* Out of the working set, and freed. */
void pgs_drop_job(struct pgs *s, struct pjob *p);
/* To be written at the next flush (a job claimed here; others have nothing to write). */
int pgs_mark(struct pgs *s, struct job *j);
/* The pool index of a pool name (-1: not one of this node's). */
int pgs_pool_index(const struct pgs *s, const char *name);
/* Group index -> row id, kept both ways. */
int pgs_map_group(struct pgs *s, unsigned index, int64_t id);

/* store-pg-open.c */
/* The config's groups, run once per definition across the nodes (blocking, at open). */
int pgs_adopt_config(struct pgs *s, PGconn *c, const struct config *cfg, char **ret_error);
/* Claimed jobs of groups not known here: parked, their rows asked for. */
void pgs_park(struct pgs *s, const struct pg_job *jobs, size_t n, bool orphan);
/* A claimed job into the working set (its group known), queued to run here. */
void pgs_claimed_one(struct pgs *s, const struct pg_job *pj, bool orphan);
