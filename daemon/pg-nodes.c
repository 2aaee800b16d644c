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

static void on_result(void *userdata, const PGresult *res, const char *error)
{
	struct call *k = userdata;

	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
		k->done(k->userdata, 0, error && *error ? error : "failed");
	else if (PQntuples(res) != 1)
		k->done(k->userdata, 0,
			"superseded: another node joined under this name since (its epoch is newer)");
	else
		k->done(k->userdata, strtoll(PQgetvalue(res, 0, 0), NULL, 10), NULL);
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

int pg_node_join(struct pg_conn *c, const char *name, pg_node_fn done, void *userdata)
{
	const char *values[] = { name };

	return send_call(c,
			 "INSERT INTO bulkhead.nodes (name, started_at, heartbeat_at, epoch) "
			 "VALUES ($1, now(), now(), 1) ON CONFLICT (name) DO UPDATE SET "
			 "started_at = now(), heartbeat_at = now(), "
			 "epoch = bulkhead.nodes.epoch + 1 RETURNING epoch",
			 1, values, done, userdata);
}

int pg_node_beat(struct pg_conn *c, const char *name, int64_t epoch, pg_node_fn done,
		 void *userdata)
{
	char e[24];
	const char *values[] = { name, e };

	snprintf(e, sizeof(e), "%" PRId64, epoch);
	return send_call(c,
			 "UPDATE bulkhead.nodes SET heartbeat_at = now() WHERE name = $1 AND "
			 "epoch = $2 RETURNING epoch",
			 2, values, done, userdata);
}
