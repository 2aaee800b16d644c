/* SPDX-License-Identifier: MIT */
/* Job groups in the shared store (pg-groups.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/pg-groups.h"

const char pg_group_insert_sql[] =
	"INSERT INTO bulkhead.groups (" PG_GROUP_COLUMNS ", total, queued, running, done,"
	" failed, crashed, timed_out, cancelled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
	" $10, $11, $12, $13, $14, $15, $16, 0, 0, 0, 0, 0, 0, 0, 0) ON CONFLICT (id) DO NOTHING"
	" RETURNING id";

static int64_t cell_int(const PGresult *res, int i, int col)
{
	return PQgetisnull(res, i, col) ? 0 : strtoll(PQgetvalue(res, i, col), NULL, 10);
}

int pg_group_parse(const PGresult *res, int i, struct pg_group_row *g)
{
	int64_t count, timeout, attempts, expect, kind;
	const char *name;
	char err[256];
	int r;

	if (PQnfields(res) < 16 || i < 0 || i >= PQntuples(res))
		return -EINVAL;
	*g = (struct pg_group_row){ .id = cell_int(res, i, 0) };
	name = PQgetvalue(res, i, 1);
	kind = cell_int(res, i, 4);
	count = cell_int(res, i, 9);
	timeout = cell_int(res, i, 10);
	attempts = cell_int(res, i, 11);
	expect = cell_int(res, i, 12);
	if (g->id < 1 || !*name || strlen(name) > CONFIG_NAME_MAX || kind < JOB_KIND_BUILTIN ||
	    kind > JOB_KIND_EXEC || count < 0 || count > UINT32_MAX || timeout < -1 ||
	    attempts < 1 || attempts > 255 || expect < 0 || expect >= _JOB_STATE_MAX)
		return -EBADMSG;
	snprintf(g->cfg.name, sizeof(g->cfg.name), "%s", name);
	g->pool_name = PQgetvalue(res, i, 2);
	g->cfg.run = PQgetvalue(res, i, 3);
	g->cfg.kind = (enum job_kind)kind;
	g->cfg.args = PQgetvalue(res, i, 5);
	g->cfg.inputs = PQgetvalue(res, i, 6);
	g->cfg.spool = PQgetvalue(res, i, 7);
	g->cfg.output = PQgetvalue(res, i, 8);
	g->cfg.count = (unsigned)count;
	g->cfg.timeout = timeout < 0 ? USEC_INFINITY : (usec_t)timeout;
	g->cfg.max_attempts = (unsigned)attempts;
	g->cfg.expect = (enum job_state)expect;
	g->adhoc = strcmp(PQgetvalue(res, i, 13), "t") == 0;
	g->def_hash = cell_int(res, i, 14);
	r = config_group_exec_parse(PQgetvalue(res, i, 15), &g->cfg, err, sizeof(err));
	return r == -EINVAL ? -EBADMSG : r;
}

void pg_group_row_done(struct pg_group_row *g)
{
	free(g->cfg.environment);
	free(g->cfg.working_directory);
	g->cfg.environment = g->cfg.working_directory = NULL;
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

int pg_group_values(struct pg_group_values *b, int64_t id, const struct group_config *g,
		    const char *pool_name, bool adhoc, int64_t def_hash)
{
	b->exec = config_group_exec_format(g);
	if (!b->exec)
		return -ENOMEM;
	snprintf(b->num[0], sizeof(b->num[0]), "%" PRId64, id);
	snprintf(b->num[1], sizeof(b->num[1]), "%d", (int)g->kind);
	snprintf(b->num[2], sizeof(b->num[2]), "%u", g->count);
	snprintf(b->num[3], sizeof(b->num[3]), "%" PRId64,
		 g->timeout == USEC_INFINITY ? (int64_t)-1 : (int64_t)g->timeout);
	snprintf(b->num[4], sizeof(b->num[4]), "%u", g->max_attempts);
	snprintf(b->num[5], sizeof(b->num[5]), "%d", (int)g->expect);
	snprintf(b->num[6], sizeof(b->num[6]), "%" PRId64, def_hash);
	b->v[0] = b->num[0];
	b->v[1] = g->name;
	b->v[2] = pool_name;
	b->v[3] = or_empty(g->run);
	b->v[4] = b->num[1];
	b->v[5] = or_empty(g->args);
	b->v[6] = or_empty(g->inputs);
	b->v[7] = or_empty(g->spool);
	b->v[8] = or_empty(g->output);
	b->v[9] = b->num[2];
	b->v[10] = b->num[3];
	b->v[11] = b->num[4];
	b->v[12] = b->num[5];
	b->v[13] = adhoc ? "t" : "f";
	b->v[14] = b->num[6];
	b->v[15] = b->exec;
	return 0;
}

void pg_group_values_done(struct pg_group_values *b)
{
	free(b->exec);
	b->exec = NULL;
}

int pg_groups_fetch(struct pg_conn *c, const int64_t *ids, size_t n, pg_result_fn cb,
		    void *userdata)
{
	size_t cap = 4 + n * 21, len = 0;
	char *lit = malloc(cap);
	const char *values[1];
	int r;

	if (!lit)
		return -ENOMEM;
	lit[len++] = '{';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(lit + len, cap - len, "%s%" PRId64, i ? "," : "", ids[i]);
	snprintf(lit + len, cap - len, "}");
	values[0] = lit;
	r = pg_conn_exec_prepared(c, "bh_groups_fetch",
				  "SELECT " PG_GROUP_COLUMNS
				  " FROM bulkhead.groups WHERE id = ANY($1::bigint[])",
				  1, values, cb, userdata);
	free(lit);
	return r;
}
