/* SPDX-License-Identifier: MIT */
/* The nodes sharing a PostgreSQL store (pg-nodes.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon/pg-nodes.h"

struct call {
	pg_node_fn done;
	void *userdata;
};

static int64_t cell(const PGresult *res, int col)
{
	return PQnfields(res) > col ? strtoll(PQgetvalue(res, 0, col), NULL, 10) : 0;
}

static void on_result(void *userdata, const PGresult *res, const char *error)
{
	struct call *k = userdata;

	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		k->done(k->userdata, NULL, error && *error ? error : "failed");
	} else {
		struct pg_node_info info;

		if (pg_node_info_parse(res, &info) < 0)
			k->done(k->userdata, NULL, "the join answered no row");
		else
			k->done(k->userdata, &info, NULL);
	}
	free(k);
}

static int send_call(struct pg_conn *c, const char *sql, int n, const char *const *values,
		     pg_node_fn done, void *userdata)
{
	struct call *k = malloc(sizeof(*k));
	int r;

	if (!k)
		return -ENOMEM;
	*k = (struct call){ .done = done, .userdata = userdata };
	r = pg_conn_exec_params(c, sql, n, values, on_result, k);
	if (r < 0)
		free(k);
	return r;
}

/* The highest id of a table in the slot's range (the base if none). */
#define LAST_IN_SLOT(table)                                                                 \
	"(SELECT coalesce(max(id), n.slot::bigint << 40) FROM bulkhead." table               \
	" WHERE id > n.slot::bigint << 40 AND id <= (n.slot::bigint + 1) << 40)"

/*
 * A new name takes the lowest free slot; two names joining at once may pick the same one,
 * and the second fails on the slot's uniqueness (its join is tried again).
 */
const char pg_node_join_sql[] =
	"WITH n AS (INSERT INTO bulkhead.nodes (name, started_at, heartbeat_at, epoch, slot)"
	" VALUES ($1, now(), now(), 1, (SELECT min(s) FROM generate_series(0, 8191) AS s WHERE"
	" s NOT IN (SELECT slot FROM bulkhead.nodes))) ON CONFLICT (name) DO UPDATE SET"
	" started_at = now(), heartbeat_at = now(), epoch = bulkhead.nodes.epoch + 1"
	" RETURNING epoch, slot)"
	" SELECT n.epoch, n.slot, " LAST_IN_SLOT("jobs") ", " LAST_IN_SLOT("groups") " FROM n";

int pg_node_info_parse(const PGresult *res, struct pg_node_info *info)
{
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		return -ENOENT;
	*info = (struct pg_node_info){ .epoch = cell(res, 0), .slot = (int)cell(res, 1),
				       .last_job = cell(res, 2), .last_group = cell(res, 3) };
	return 0;
}

int pg_node_join(struct pg_conn *c, const char *name, pg_node_fn done, void *userdata)
{
	const char *values[] = { name };

	return send_call(c, pg_node_join_sql, 1, values, done, userdata);
}
