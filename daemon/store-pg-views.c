/* SPDX-License-Identifier: MIT */
/*
 * What the PostgreSQL store shows (store-pg.h): every node's jobs are in the table, so
 * `status` and `jobs` read it, one statement each, on the queue's connection (in order with
 * its writes: a view asked after a reply was sent sees what that reply told).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store-pg-int.h"

struct status_call {
	struct pgs *s;
	store_pg_status_fn cb;
	void *userdata;
};

static void on_status(void *userdata, const PGresult *res, const char *error)
{
	struct status_call *call = userdata;
	struct store_pg_status st = { 0 };
	struct store_pg_node *nodes = NULL;
	int rows = res && PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : -1;

	if (rows < 0) {
		st.error = error ? error : "no answer";
		call->cb(call->userdata, &st);
		free(call);
		return;
	}
	nodes = calloc((size_t)rows + 1, sizeof(*nodes));
	for (int i = 0; i < rows; i++) {
		const char *kind = PQgetvalue(res, i, 0);
		int64_t a = strtoll(PQgetvalue(res, i, 2), NULL, 10);

		if (kind[0] == 's') {
			long state = strtol(PQgetvalue(res, i, 1), NULL, 10);

			if (state >= 0 && state < _JOB_STATE_MAX)
				st.by_state[state] += (uint64_t)a;
			continue;
		}
		if (!nodes)
			continue;
		nodes[st.n_nodes] = (struct store_pg_node){
			.name = PQgetvalue(res, i, 1),
			.heartbeat_age_ms = a,
			.epoch = strtoll(PQgetvalue(res, i, 3), NULL, 10),
			.slot = (int)strtol(PQgetvalue(res, i, 4), NULL, 10),
			.held = strtoll(PQgetvalue(res, i, 5), NULL, 10),
			.alive = a < call->s->lease_ms,
		};
		st.n_nodes++;
	}
	st.nodes = nodes;
	st.lease_ms = call->s->lease_ms;
	call->cb(call->userdata, &st);
	free(nodes);
	free(call);
}

int store_pg_status(struct store *st, store_pg_status_fn cb, void *userdata)
{
	struct pgs *s = PGS(st);
	struct status_call *call = calloc(1, sizeof(*call));
	int r;

	if (!call)
		return -ENOMEM;
	*call = (struct status_call){ .s = s, .cb = cb, .userdata = userdata };
	/* The nodes (the jobs each holds), and every job by state. */
	r = pg_conn_exec(pg_queue_conn(s->q),
			 "SELECT 'n', n.name, (extract(epoch FROM now() - n.heartbeat_at) * 1000)"
			 "::bigint, n.epoch, n.slot, (SELECT count(*) FROM bulkhead.jobs j WHERE"
			 " j.state = 1 AND j.lease_owner = n.name) FROM bulkhead.nodes n"
			 " UNION ALL SELECT 's', state::text, count(*), 0, 0, 0 FROM bulkhead.jobs"
			 " GROUP BY state ORDER BY 1, 2",
			 on_status, call);
	if (r < 0)
		free(call);
	return r;
}

struct jobs_call {
	store_pg_rows_fn cb;
	void *userdata;
};

static void on_rows(void *userdata, const PGresult *res, const char *error)
{
	struct jobs_call *call = userdata;

	call->cb(call->userdata, res && PQresultStatus(res) == PGRES_TUPLES_OK ? res : NULL,
		 error ? error : "no answer");
	free(call);
}

int store_pg_jobs(struct store *st, const struct store_pg_jobs_query *q, store_pg_rows_fn cb,
		  void *userdata)
{
	struct pgs *s = PGS(st);
	struct jobs_call *call = calloc(1, sizeof(*call));
	char states[64] = "", job[24], since[24], limit[24];
	const char *values[6] = { states, q->group, job, since, limit, NULL };
	size_t len = 0;
	int r;

	if (!call)
		return -ENOMEM;
	*call = (struct jobs_call){ .cb = cb, .userdata = userdata };
	len += (size_t)snprintf(states, sizeof(states), "{");
	for (int i = 0; i < _JOB_STATE_MAX; i++)
		if (q->states & (1u << i))
			len += (size_t)snprintf(states + len, sizeof(states) - len, "%s%d",
						len > 1 ? "," : "", i);
	snprintf(states + len, sizeof(states) - len, "}");
	snprintf(job, sizeof(job), "%" PRIu64, q->job);
	snprintf(since, sizeof(since), "%" PRId64, q->since);
	snprintf(limit, sizeof(limit), "%" PRIu64, q->limit);
	/* The matching count in every row (a window over the filtered set, before the limit). */
	r = pg_conn_exec_params(
		pg_queue_conn(s->q),
		q->reverse
			? "SELECT " STORE_PG_JOB_VIEW " FROM bulkhead.jobs j JOIN bulkhead.groups g"
			  " ON g.id = j.grp WHERE " STORE_PG_JOB_FILTER " ORDER BY j.id DESC LIMIT $5"
			: "SELECT " STORE_PG_JOB_VIEW " FROM bulkhead.jobs j JOIN bulkhead.groups g"
			  " ON g.id = j.grp WHERE " STORE_PG_JOB_FILTER " ORDER BY j.id LIMIT $5",
		5, values, on_rows, call);
	if (r < 0)
		free(call);
	return r;
}

struct pg_conn *store_pg_conn(struct store *st)
{
	return pg_queue_conn(PGS(st)->q);
}
