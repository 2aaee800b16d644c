/* SPDX-License-Identifier: MIT */
/*
 * The shared queue's statements (pg-jobs.h). Batches go as PostgreSQL array literals, one
 * per column, unnested on the server: one statement and one round trip for any number of
 * jobs, and values need no quoting in the SQL (only inside the literal, done here).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/job-state.h"
#include "daemon/pg-jobs.h"

/* ---- array literals: {1,2,3}, {"a\"b",NULL} ---- */

struct lit {
	char *s;
	size_t len, cap;
	bool failed;
};

static void lit_put(struct lit *l, const char *p, size_t n)
{
	if (l->failed)
		return;
	if (l->len + n + 2 > l->cap) {
		size_t cap = l->cap ? l->cap : 256;
		char *s;

		while (l->len + n + 2 > cap)
			cap *= 2;
		s = realloc(l->s, cap);
		if (!s) {
			l->failed = true;
			return;
		}
		l->s = s;
		l->cap = cap;
	}
	memcpy(l->s + l->len, p, n);
	l->len += n;
	l->s[l->len] = '\0';
}

static void lit_sep(struct lit *l)
{
	lit_put(l, l->len ? "," : "{", 1);
}

static void lit_int(struct lit *l, int64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%" PRId64, v);

	lit_sep(l);
	lit_put(l, b, (size_t)n);
}

/* A text element: NULL as NULL, anything else quoted, `"` and `\` escaped. */
static void lit_text(struct lit *l, const char *t)
{
	lit_sep(l);
	if (!t) {
		lit_put(l, "NULL", 4);
		return;
	}
	lit_put(l, "\"", 1);
	for (const char *p = t; *p;) {
		size_t run = strcspn(p, "\"\\");

		lit_put(l, p, run);
		p += run;
		if (*p) {
			lit_put(l, "\\", 1);
			lit_put(l, p, 1);
			p++;
		}
	}
	lit_put(l, "\"", 1);
}

/* The literal, closed ("{}" if empty); NULL if memory ran out. */
static const char *lit_end(struct lit *l)
{
	lit_put(l, l->len ? "}" : "{}", l->len ? 1 : 2);
	return l->failed ? NULL : l->s;
}

static void num(char *b, size_t size, int64_t v)
{
	snprintf(b, size, "%" PRId64, v);
}

/* ---- reading rows ---- */

static int64_t cell_int(const PGresult *res, int i, int col)
{
	return PQgetisnull(res, i, col) ? 0 : strtoll(PQgetvalue(res, i, col), NULL, 10);
}

static const char *cell_text(const PGresult *res, int i, int col)
{
	return PQgetisnull(res, i, col) ? NULL : PQgetvalue(res, i, col);
}

int pg_job_parse(const PGresult *res, int i, struct pg_job *j)
{
	if (PQnfields(res) < 20 || i < 0 || i >= PQntuples(res))
		return -EINVAL;
	*j = (struct pg_job){
		.id = cell_int(res, i, 0),
		.grp = cell_int(res, i, 1),
		.pool = cell_text(res, i, 2),
		.instance = (int32_t)cell_int(res, i, 3),
		.state = (int)cell_int(res, i, 4),
		.cause = (int)cell_int(res, i, 5),
		.cause_detail = (int32_t)cell_int(res, i, 6),
		.alone = (int)cell_int(res, i, 7),
		.attempts = (int)cell_int(res, i, 8),
		.reruns = (int)cell_int(res, i, 9),
		.runs = (int)cell_int(res, i, 10),
		.flags = (int)cell_int(res, i, 11),
		.host_deaths = (int)cell_int(res, i, 12),
		.input = cell_text(res, i, 13),
		.result = cell_text(res, i, 14),
		.accepted_at = cell_int(res, i, 15),
		.started_ms = cell_int(res, i, 16),
		.ended_ms = cell_int(res, i, 17),
		.node = cell_text(res, i, 18),
		.lease_epoch = cell_int(res, i, 19),
	};
	if (j->id < 1 || j->grp < 0 || j->state < 0 || j->state >= _JOB_STATE_MAX ||
	    j->attempts < 0 || j->attempts > 255 || j->host_deaths < 0 || j->host_deaths > 255 ||
	    j->reruns < 0 || j->reruns > 65535 || j->runs < 0 || j->runs > 65535 ||
	    j->flags < 0 || j->flags > 255 || j->alone < 0 || j->alone > 255)
		return -EBADMSG;
	return 0;
}

/* ---- the statements ---- */

#define ADD_INSERT                                                                         \
	"WITH ins AS (INSERT INTO bulkhead.jobs (id, grp, pool_name, instance, state, cause,"  \
	" cause_detail, alone, attempts, reruns, runs, flags, host_deaths, input, result,"    \
	" accepted_at, started_ms, ended_ms) SELECT $6::bigint + t.k - 1, $2::bigint, $1::text," \
	" $3::integer + t.k - 1, 0, 0, 0, 0, 0, 0, 0, 0, 0,"
#define ADD_INPUTS \
	" t.input, NULL, $5::bigint, 0, 0 FROM unnest($4::text[]) WITH ORDINALITY AS t(input, k)"
/* Without inputs: a series instead of an array of NULLs. */
#define ADD_COUNT " NULL, NULL, $5::bigint, 0, 0 FROM generate_series(1, $4::bigint) AS t(k)"
/* Sent again (its answer was lost): what is there already stays. Not on the first send:
 * ON CONFLICT makes every row a speculative insertion, a third slower (bench-pg submit). */
#define ADD_AGAIN " ON CONFLICT (id) DO NOTHING"
#define ADD_END                                                                            \
	" RETURNING id) SELECT count(*) FROM ins, (SELECT pg_notify('" PG_JOBS_CHANNEL "', $1))" \
	" AS n"

static const char *const add_names[2][2] = {
	{ "bulkhead_add_inputs", "bulkhead_add_inputs_again" },
	{ "bulkhead_add_count", "bulkhead_add_count_again" },
};
static const char *const add_sql[2][2] = {
	{ ADD_INSERT ADD_INPUTS ADD_END, ADD_INSERT ADD_INPUTS ADD_AGAIN ADD_END },
	{ ADD_INSERT ADD_COUNT ADD_END, ADD_INSERT ADD_COUNT ADD_AGAIN ADD_END },
};

int pg_jobs_add(struct pg_conn *c, const char *pool, int64_t grp, int64_t first_id,
		int32_t first_instance, size_t n, const char *const *inputs, int64_t accepted_at,
		bool again, pg_result_fn cb, void *userdata)
{
	char g[24], first[24], count[24], at[24], id[24];
	struct lit arr = { 0 };
	const char *values[6] = { pool, g, first, NULL, at, id };
	int r;

	num(g, sizeof(g), grp);
	num(first, sizeof(first), first_instance);
	num(at, sizeof(at), accepted_at);
	num(id, sizeof(id), first_id);
	if (!inputs) {
		num(count, sizeof(count), (int64_t)n);
		values[3] = count;
		return pg_conn_exec_prepared(c, add_names[1][again], add_sql[1][again], 6, values,
					     cb, userdata);
	}
	for (size_t k = 0; k < n; k++)
		lit_text(&arr, inputs[k]);
	values[3] = lit_end(&arr);
	r = values[3] ? pg_conn_exec_prepared(c, add_names[0][again], add_sql[0][again], 6,
					      values, cb, userdata)
		      : -ENOMEM;
	free(arr.s);
	return r;
}

#define LEASE_SET                                                                 \
	"lease_owner = $1, lease_epoch = j.lease_epoch + 1, "                     \
	"lease_expires = now() + $3::float8 * interval '1 millisecond'"

static const char claim_sql[] =
	"UPDATE bulkhead.jobs AS j SET state = 1, " LEASE_SET
	" FROM (SELECT id AS claim_id FROM bulkhead.jobs WHERE pool_name = $4 AND alone = $5"
	" AND state = 0 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) AS c"
	" WHERE j.id = c.claim_id RETURNING " PG_JOB_COLUMNS;

int pg_jobs_claim(struct pg_conn *c, const char *pool, bool alone, const char *node,
		  size_t n, int64_t lease_ms, pg_result_fn cb, void *userdata)
{
	char limit[24], lease[24];
	const char *values[] = { node, limit, lease, pool, alone ? "1" : "0" };

	num(limit, sizeof(limit), (int64_t)n);
	num(lease, sizeof(lease), lease_ms);
	return pg_conn_exec_prepared(c, "bulkhead_claim", claim_sql, 5, values, cb, userdata);
}

static const char take_sql[] =
	"UPDATE bulkhead.jobs AS j SET " LEASE_SET
	" FROM (SELECT id AS take_id FROM bulkhead.jobs WHERE state = 1 AND"
	" (lease_expires < now() OR ($4::boolean AND lease_owner = $1))"
	" ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) AS t"
	" WHERE j.id = t.take_id RETURNING " PG_JOB_COLUMNS;

int pg_jobs_take_expired(struct pg_conn *c, const char *node, bool mine_too, size_t n,
			 int64_t lease_ms, pg_result_fn cb, void *userdata)
{
	char limit[24], lease[24];
	const char *values[] = { node, limit, lease, mine_too ? "true" : "false" };

	num(limit, sizeof(limit), (int64_t)n);
	num(lease, sizeof(lease), lease_ms);
	return pg_conn_exec_prepared(c, "bulkhead_take", take_sql, 4, values, cb, userdata);
}

/* One statement, one commit a renewal period: the heartbeat and the leases together. */
static const char renew_sql[] =
	"WITH b AS (UPDATE bulkhead.nodes SET heartbeat_at = now() WHERE name = $1 AND"
	" epoch = $4::bigint RETURNING epoch),"
	" r AS (UPDATE bulkhead.jobs SET lease_expires = now() + $2::float8 *"
	" interval '1 millisecond' WHERE id = ANY($3::bigint[]) AND lease_owner = $1 AND"
	" state = 1 AND EXISTS (SELECT 1 FROM b) RETURNING id, lease_epoch)"
	" SELECT id, lease_epoch FROM r UNION ALL SELECT 0, epoch FROM b";

int pg_jobs_renew(struct pg_conn *c, const char *node, int64_t node_epoch, const int64_t *ids,
		  size_t n, int64_t lease_ms, pg_result_fn cb, void *userdata)
{
	char lease[24], epoch[24];
	struct lit arr = { 0 };
	const char *values[] = { node, lease, NULL, epoch };
	int r;

	num(lease, sizeof(lease), lease_ms);
	num(epoch, sizeof(epoch), node_epoch);
	for (size_t i = 0; i < n; i++)
		lit_int(&arr, ids[i]);
	values[2] = lit_end(&arr);
	r = values[2] ? pg_conn_exec_prepared(c, "bulkhead_renew", renew_sql, 4, values, cb,
					      userdata)
		      : -ENOMEM;
	free(arr.s);
	return r;
}

/*
 * One row per job: the values unnested side by side. `node` is the writer's name when the
 * job started again since the table last had it (runs grew): the node that ran it last.
 * A job back in a queue, or ended, has no lease; one back in a queue wakes the nodes of its
 * pool. A write sent again because the connection was lost before its answer may find
 * itself done: the job at the same epoch, unleased, in the state it writes, after as many
 * runs. That is written again (the same values) and answered as written.
 */
static const char write_sql[] =
	"WITH v AS (SELECT * FROM unnest($2::bigint[], $3::bigint[], $4::smallint[],"
	" $5::smallint[], $6::integer[], $7::smallint[], $8::smallint[], $9::integer[],"
	" $10::integer[], $11::smallint[], $12::smallint[], $13::bigint[], $14::bigint[],"
	" $15::text[]) AS v(id, epoch, state, cause, cause_detail, alone, attempts, reruns, runs,"
	" flags, host_deaths, started_ms, ended_ms, result)),"
	" w AS (UPDATE bulkhead.jobs AS j SET state = v.state, cause = v.cause,"
	" cause_detail = v.cause_detail, alone = v.alone, attempts = v.attempts,"
	" reruns = v.reruns, flags = v.flags, host_deaths = v.host_deaths,"
	" started_ms = v.started_ms, ended_ms = v.ended_ms, result = v.result,"
	" node = CASE WHEN v.runs > j.runs THEN $1 ELSE j.node END, runs = v.runs,"
	" lease_owner = CASE WHEN v.state = 1 THEN j.lease_owner END,"
	" lease_expires = CASE WHEN v.state = 1 THEN j.lease_expires END"
	" FROM v WHERE j.id = v.id AND j.lease_epoch = v.epoch AND ((j.lease_owner = $1"
	" AND j.state = 1) OR (j.lease_owner IS NULL AND v.state <> 1 AND j.state = v.state"
	" AND j.runs = v.runs)) RETURNING j.id, j.state, j.pool_name)"
	" SELECT w.id FROM w, (SELECT count(pg_notify('" PG_JOBS_CHANNEL "', q.p)) FROM"
	" (SELECT DISTINCT pool_name FROM w WHERE state = 0) AS q(p)) AS n ORDER BY w.id";

enum { W_ID, W_EPOCH, W_STATE, W_CAUSE, W_DETAIL, W_ALONE, W_ATTEMPTS, W_RERUNS, W_RUNS,
       W_FLAGS, W_HOST_DEATHS, W_STARTED, W_ENDED, W_RESULT, W_N };

int pg_jobs_write(struct pg_conn *c, const char *node, const struct pg_job *jobs, size_t n,
		  pg_result_fn cb, void *userdata)
{
	struct lit cols[W_N] = { 0 };
	const char *values[1 + W_N] = { node };
	int r = 0;

	for (size_t k = 0; k < n; k++) {
		const struct pg_job *j = &jobs[k];

		lit_int(&cols[W_ID], j->id);
		lit_int(&cols[W_EPOCH], j->lease_epoch);
		lit_int(&cols[W_STATE], j->state);
		lit_int(&cols[W_CAUSE], j->cause);
		lit_int(&cols[W_DETAIL], j->cause_detail);
		lit_int(&cols[W_ALONE], j->alone);
		lit_int(&cols[W_ATTEMPTS], j->attempts);
		lit_int(&cols[W_RERUNS], j->reruns);
		lit_int(&cols[W_RUNS], j->runs);
		lit_int(&cols[W_FLAGS], j->flags);
		lit_int(&cols[W_HOST_DEATHS], j->host_deaths);
		lit_int(&cols[W_STARTED], j->started_ms);
		lit_int(&cols[W_ENDED], j->ended_ms);
		lit_text(&cols[W_RESULT], j->result);
	}
	for (int k = 0; k < W_N; k++) {
		values[1 + k] = lit_end(&cols[k]);
		if (!values[1 + k])
			r = -ENOMEM;
	}
	if (r == 0)
		r = pg_conn_exec_prepared(c, "bulkhead_write", write_sql, 1 + W_N, values, cb,
					  userdata);
	for (int k = 0; k < W_N; k++)
		free(cols[k].s);
	return r;
}
