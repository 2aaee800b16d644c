/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL store (DESIGN §13, issue 14): several bulkheadd nodes share one database.
 * Here: the connection and the schema. The schema has the SQLite store's tables and columns
 * (store-sqlite-open.c), in PostgreSQL's types, plus what sharing needs: the nodes (with the
 * slot their ids come from), each job's pool (claims are by pool) and its lease (owner node,
 * epoch, expiry). The queue on it is pg-jobs.h (statements) and pg-queue.h (one node's side).
 * It is not yet a `store =` value: `postgresql:` is refused until the master's store
 * operations are built on the queue (docs/decisions.md).
 */
#pragma once

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "common/job-state.h"
#include "config/config.h"
#include "daemon/pg-conn.h"
#include "daemon/pg-nodes.h"

struct job;
struct store;

/* The schema this build writes; a database with a higher version is refused. */
#define STORE_PG_VERSION 2

/*
 * Connects with a libpq connection string (CONNINFO of `postgresql:CONNINFO`; "" takes
 * everything from PGHOST, PGPORT, PGUSER, PGDATABASE...). Returns 0 and *ret, or a negative
 * errno and *ret_error (malloc'd, one line naming the server and the reason):
 *   -EINVAL        the connection string does not parse
 *   -ECONNREFUSED  no server there, or it refused us (authentication, no such database)
 *   -ENOMEM
 */
int store_pg_connect(const char *conninfo, PGconn **ret, char **ret_error);

/*
 * Makes the schema current, in one transaction under an advisory lock (nodes that start
 * together do it once): creates it in an empty database, migrates an older one, refuses a
 * newer one. Returns the version found before (0: none) or a negative errno and *ret_error:
 *   -EPROTO  written by a newer bulkhead (schema version N; this one knows up to M)
 *   -EBADMSG the database has bulkhead's tables in a state no version had
 *   -EIO     the server failed the statements (its message)
 */
int store_pg_schema(PGconn *c, char **ret_error);

/*
 * Joins as node `name` (pg-nodes.h), waiting for the answer: what a master does before its
 * loop runs, because the groups and jobs of its config need ids from its slot. Two new
 * names joining at once may collide on a slot: it tries again (up to 8 times). 0 and *info,
 * or -EIO and *ret_error (the server's words), -ENOSPC (every slot is taken).
 */
int store_pg_join(PGconn *c, const char *name, struct pg_node_info *info, char **ret_error);

/* "HOST:PORT/DB" of c (a socket directory for HOST), for messages. */
const char *store_pg_where(PGconn *c, char *buf, size_t size);

/* ---- the master's store on PostgreSQL (store-pg-open.c, store-pg-work.c, store-pg-ops.c) ---- */

/* What the store tells its master, from the loop. */
struct store_pg_events {
	/* Jobs of pool were claimed for this node: queued here (pop()). */
	void (*ready)(void *userdata, unsigned pool);
	/* Jobs of a dead node (or of this node's last life) are leased to this one, RUNNING:
	 * take_orphans() has them, for ledger_recover(). */
	void (*orphans)(void *userdata);
	/* Job j, running here, was taken by another node: kill it; nothing of it is written. */
	void (*lost)(void *userdata, struct job *j);
	/* Flush `serial` is committed (r = 0), or failed on the server (why). */
	void (*flushed)(void *userdata, uint64_t serial, int r, const char *why);
	/* Another bulkheadd joined under this node's name: this one must stop. */
	void (*superseded)(void *userdata, const char *why);
};

struct store_pg_config {
	const char *conninfo;
	const char *node;
	int64_t lease_ms; /* 0: PG_QUEUE_LEASE_MS */
};

/*
 * Connects (blocking, as opening a file is), creates or migrates the schema, joins as the
 * node, adds the config's groups that no node added yet (a group runs once per definition
 * across the nodes) and starts the shared queue on e. 0, or a negative errno and
 * *ret_error (malloc'd: the place and the reason).
 */
int store_pg_open(sd_event *e, const struct store_pg_config *cfg, const struct config *c,
		  const struct store_pg_events *ev, void *userdata, struct store **ret,
		  char **ret_error);
/* How many jobs of pool (alone: to run alone) this node would take now. */
int store_pg_want(struct store *st, unsigned pool, bool alone, size_t n);
/* The serial of the flush that will send what is buffered now; the last one committed. */
uint64_t store_pg_next_serial(const struct store *st);
uint64_t store_pg_committed(const struct store *st);

/* ---- views (store-pg-views.c): every node's jobs, read from the table ---- */

struct store_pg_node {
	const char *name;
	int64_t heartbeat_age_ms; /* since its last heartbeat (its renewal) */
	int64_t epoch;
	int slot;
	int64_t held; /* jobs leased to it */
	bool alive;   /* a heartbeat within the lease */
};

/* What status shows of the shared store; error set (the rest 0) if it could not be read. */
struct store_pg_status {
	const char *error;
	const struct store_pg_node *nodes;
	size_t n_nodes;
	int64_t lease_ms;
	uint64_t by_state[_JOB_STATE_MAX]; /* RUNNING: leased to a node (running or about to) */
};

typedef void (*store_pg_status_fn)(void *userdata, const struct store_pg_status *s);
int store_pg_status(struct store *st, store_pg_status_fn cb, void *userdata);

/* `jobs`: filters as the memory store's view has them. */
struct store_pg_jobs_query {
	uint32_t states; /* a bit per state (0: any) */
	const char *group; /* NULL: any */
	uint64_t job;    /* that job only (0: any) */
	int64_t since;   /* accepted, started or ended at or after (µs since the epoch; 0: any) */
	uint64_t limit;
	bool reverse;    /* newest first */
};

/* The columns of a jobs answer, in order, and its filter ($1 states, $2 group, $3 job,
 * $4 since). The last column: how many match (before the limit). */
#define STORE_PG_JOB_VIEW                                                                  \
	"j.id, g.name, j.instance, j.pool_name, j.state, j.attempts, j.runs, j.cause,"        \
	" j.cause_detail, j.input, j.result, j.reruns, j.host_deaths, j.accepted_at,"         \
	" j.started_ms, j.ended_ms, j.node, j.lease_owner, count(*) OVER ()"
#define STORE_PG_JOB_FILTER                                                                \
	"(cardinality($1::smallint[]) = 0 OR j.state = ANY($1::smallint[])) AND"               \
	" ($2::text IS NULL OR g.name = $2) AND ($3::bigint = 0 OR j.id = $3) AND"            \
	" ($4::bigint = 0 OR j.accepted_at >= $4 OR (j.started_ms > 0 AND j.accepted_at +"     \
	" (j.started_ms - 1) * 1000 >= $4) OR (j.ended_ms > 0 AND j.accepted_at +"             \
	" (j.ended_ms - 1) * 1000 >= $4))"

/* The rows (NULL and why if the statement failed), valid during the call. */
typedef void (*store_pg_rows_fn)(void *userdata, const PGresult *res, const char *error);
int store_pg_jobs(struct store *st, const struct store_pg_jobs_query *q, store_pg_rows_fn cb,
		  void *userdata);
/* The store's connection (its statements run in order with the queue's). */
struct pg_conn *store_pg_conn(struct store *st);
