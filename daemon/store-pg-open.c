/* SPDX-License-Identifier: MIT */
/*
 * Opening the PostgreSQL store (store-pg.h): connect, create or migrate the schema, join as
 * the node (blocking: before the loop runs, as the SQLite store opens its file), take the
 * config's groups, then hand over to the shared queue on the loop. And the groups of jobs
 * claimed here that this node did not know (another node's submits): read from their rows.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/pg-groups.h"
#include "daemon/store-memory.h"
#include "daemon/store-pg-int.h"

/* pg_advisory_xact_lock() key of the config groups' adoption: "BHKG". */
#define GROUPS_LOCK 0x42484b47

static int failf(PGconn *c, char **ret_error, int r, const char *fmt, ...)
{
	char where[256], *what = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&what, fmt, ap) < 0)
		what = NULL;
	va_end(ap);
	free(*ret_error);
	if (asprintf(ret_error, "%s: %s: %s", store_pg_where(c, where, sizeof(where)),
		     what ? what : "", PQerrorMessage(c)) < 0)
		*ret_error = NULL;
	free(what);
	return r;
}

static PGresult *run(PGconn *c, const char *sql, int n, const char *const *values,
		     ExecStatusType want)
{
	PGresult *res = PQexecParams(c, sql, n, NULL, values, NULL, NULL, 0);

	if (PQresultStatus(res) != want) {
		PQclear(res);
		return NULL;
	}
	return res;
}

/* {"a","b\"c"}: an array literal of n strings. */
static char *text_array(char *const *v, size_t n)
{
	size_t cap = 3;
	char *s, *p;

	for (size_t i = 0; i < n; i++)
		cap += 3 + 2 * strlen(v[i]);
	s = p = malloc(cap);
	if (!s)
		return NULL;
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		*p++ = '"';
		for (const char *q = v[i]; *q; q++) {
			if (*q == '"' || *q == '\\')
				*p++ = '\\';
			*p++ = *q;
		}
		*p++ = '"';
	}
	*p++ = '}';
	*p = '\0';
	return s;
}

/* Jobs first_instance .. + n - 1 of group row id, queued, with ids from the slot. */
static int insert_jobs(struct pgs *s, PGconn *c, int64_t grp, const char *pool,
		       uint32_t first_instance, unsigned n, char *const *inputs,
		       char **ret_error)
{
	char a[24], b[24], d[24], e[24], f[24], *arr = NULL;
	const char *values[7];
	PGresult *res;

	if (n == 0)
		return 0;
	if (inputs && !(arr = text_array(inputs, n)))
		return -ENOMEM;
	snprintf(a, sizeof(a), "%" PRId64, s->next_id + 1);
	snprintf(b, sizeof(b), "%" PRId64, grp);
	snprintf(d, sizeof(d), "%" PRIu32, first_instance);
	snprintf(e, sizeof(e), "%" PRId64, (int64_t)0);
	snprintf(f, sizeof(f), "%u", n);
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(e, sizeof(e), "%" PRId64,
			 (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	}
	values[0] = a, values[1] = b, values[2] = pool, values[3] = d, values[4] = arr;
	values[5] = e, values[6] = f;
	res = run(c,
		  "INSERT INTO bulkhead.jobs (id, grp, pool_name, instance, state, cause,"
		  " cause_detail, alone, attempts, reruns, runs, flags, host_deaths, input, result,"
		  " accepted_at, started_ms, ended_ms) SELECT $1::bigint + k - 1, $2::bigint, $3,"
		  " $4::integer + k - 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, ($5::text[])[k], NULL,"
		  " $6::bigint, 0, 0 FROM generate_series(1, $7::bigint) AS k",
		  7, values, PGRES_COMMAND_OK);
	free(arr);
	if (!res)
		return failf(c, ret_error, -EIO, "add the jobs of a config group");
	PQclear(res);
	s->next_id += n;
	return 0;
}

/* The same definition as far as what its jobs run goes (durable.c's rule, by row). */
static bool same_definition(const struct pg_group_row *row, const struct group_config *cg,
			    const char *pool)
{
	return strcmp(row->pool_name, pool) == 0 && row->cfg.kind == cg->kind &&
	       strcmp(row->cfg.run, cg->run) == 0 && strcmp(row->cfg.args, cg->args) == 0 &&
	       strcmp(row->cfg.inputs, cg->inputs ? cg->inputs : "") == 0 &&
	       strcmp(row->cfg.spool, cg->spool ? cg->spool : "") == 0 &&
	       (cg->n_inputs == 0 || row->cfg.count == cg->count) &&
	       config_group_exec_equal(&row->cfg, cg);
}

static bool name_taken(const PGresult *res, const char *name)
{
	for (int i = 0; i < PQntuples(res); i++)
		if (strcmp(PQgetvalue(res, i, 1), name) == 0)
			return true;
	return false;
}

/* One config group: adopted (its row), or added (a row and its jobs). */
static int adopt_one(struct pgs *s, PGconn *c, const PGresult *rows, const struct group_config *cg,
		     char **ret_error)
{
	const char *pool = s->pools[cg->pool];
	struct pg_group_row row;
	struct group_config local = *cg;
	struct group_counts counts = { 0 };
	struct pg_group_values gv;
	unsigned index = s->m->n_groups(s->mem);
	int64_t id = 0, had = 0, max_instance = 0;
	PGresult *res;
	int r;

	for (int i = 0; i < PQntuples(rows); i++) {
		bool same;

		if (strcmp(PQgetvalue(rows, i, 1), cg->name) != 0)
			continue;
		r = pg_group_parse(rows, i, &row);
		if (r == -ENOMEM)
			return failf(c, ret_error, -ENOMEM, "read job group %s", cg->name);
		if (r < 0 || row.adhoc) {
			pg_group_row_done(&row);
			continue;
		}
		same = same_definition(&row, cg, pool);
		pg_group_row_done(&row);
		if (same) {
			id = row.id;
			had = row.cfg.count;
			max_instance = strtoll(PQgetvalue(rows, i, 16), NULL, 10);
			break;
		}
		/* Another definition: its jobs stay, under NAME~K. */
		for (unsigned k = 1; k < 100000; k++) {
			char other[CONFIG_NAME_MAX + 1], ids[24];
			const char *v[2] = { other, ids };

			snprintf(other, sizeof(other), "%.*s~%u", CONFIG_NAME_MAX - 7, cg->name, k);
			if (name_taken(rows, other))
				continue;
			snprintf(ids, sizeof(ids), "%" PRId64, row.id);
			res = run(c, "UPDATE bulkhead.groups SET name = $1 WHERE id = $2", 2, v,
				  PGRES_COMMAND_OK);
			if (!res)
				return failf(c, ret_error, -EIO, "rename job group %s", cg->name);
			PQclear(res);
			log_notice("PostgreSQL store: job group %s: its definition changed: a new "
				   "definition, %u new jobs; the earlier one's jobs are kept as %s",
				   cg->name, cg->count, other);
			break;
		}
		break;
	}
	local.count = id && (unsigned)had > cg->count ? (unsigned)had : cg->count;
	if (!id) {
		id = ++s->next_id;
		if (pg_group_values(&gv, id, cg, pool, false, 0) < 0)
			return failf(c, ret_error, -ENOMEM, "add job group %s", cg->name);
		res = run(c, pg_group_insert_sql, PG_GROUP_N_PARAMS, gv.v, PGRES_TUPLES_OK);
		pg_group_values_done(&gv);
		if (!res)
			return failf(c, ret_error, -EIO, "add job group %s", cg->name);
		PQclear(res);
		r = insert_jobs(s, c, id, pool, 1, cg->count,
				cg->n_inputs ? cg->input_paths : NULL, ret_error);
		if (r < 0)
			return r;
		max_instance = cg->count;
	} else if (cg->count > (unsigned)had && cg->n_inputs == 0) {
		char cnt[24], ids[24];
		const char *v[2] = { cnt, ids };

		r = insert_jobs(s, c, id, pool, (uint32_t)max_instance + 1,
				cg->count - (unsigned)had, NULL, ret_error);
		if (r < 0)
			return r;
		max_instance += cg->count - (unsigned)had;
		snprintf(cnt, sizeof(cnt), "%u", cg->count);
		snprintf(ids, sizeof(ids), "%" PRId64, id);
		res = run(c, "UPDATE bulkhead.groups SET count = $1 WHERE id = $2", 2, v,
			  PGRES_COMMAND_OK);
		if (!res)
			return failf(c, ret_error, -EIO, "count of job group %s", cg->name);
		PQclear(res);
		log_notice("PostgreSQL store: job group %s: count %" PRId64 " -> %u: %" PRId64
			   " more jobs",
			   cg->name, had, cg->count, (int64_t)cg->count - had);
	}
	counts.total = (uint64_t)max_instance;
	r = mem_restore_group(s->mem, index, &local, false, 0, &counts);
	return r < 0 ? r : pgs_map_group(s, index, id);
}

int pgs_adopt_config(struct pgs *s, PGconn *c, const struct config *cfg, char **ret_error)
{
	char lock[96];
	PGresult *res, *rows = NULL;
	int r = 0;

	snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%d)", GROUPS_LOCK);
	res = run(c, "BEGIN", 0, NULL, PGRES_COMMAND_OK);
	if (!res)
		return failf(c, ret_error, -EIO, "begin");
	PQclear(res);
	res = run(c, lock, 0, NULL, PGRES_TUPLES_OK);
	if (res)
		rows = run(c,
			   "SELECT " PG_GROUP_COLUMNS ", (SELECT coalesce(max(instance), 0) FROM"
			   " bulkhead.jobs j WHERE j.grp = g.id) FROM bulkhead.groups g",
			   0, NULL, PGRES_TUPLES_OK);
	PQclear(res);
	if (!rows)
		r = failf(c, ret_error, -EIO, "read the job groups");
	for (unsigned i = 0; r >= 0 && i < cfg->n_groups; i++)
		r = adopt_one(s, c, rows, &cfg->groups[i], ret_error);
	PQclear(rows);
	if (r >= 0) {
		/* Idle nodes: there may be new jobs. */
		for (unsigned i = 0; r >= 0 && i < s->n_pools; i++) {
			const char *v[] = { s->pools[i] };

			res = run(c, "SELECT pg_notify('" PG_JOBS_CHANNEL "', $1)", 1, v,
				  PGRES_TUPLES_OK);
			if (!res)
				r = failf(c, ret_error, -EIO, "notify");
			PQclear(res);
		}
	}
	if (r >= 0 && !(res = run(c, "COMMIT", 0, NULL, PGRES_COMMAND_OK)))
		r = failf(c, ret_error, -EIO, "commit the config's job groups");
	else if (r >= 0)
		PQclear(res);
	if (r < 0)
		PQclear(PQexec(c, "ROLLBACK"));
	return r;
}

/* ---- groups of claimed jobs ---- */

static bool was_asked(const struct parked *p, int64_t grp)
{
	for (size_t i = 0; i < p->n_asked; i++)
		if (p->asked[i] == grp)
			return true;
	return false;
}

static void on_groups(void *userdata, const PGresult *res, const char *error)
{
	struct pgs *s = userdata;
	struct parked p = s->parked;
	bool orphans = false;

	s->parked = (struct parked){ 0 };
	p.fetching = false;
	for (int i = 0; res && PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++) {
		struct pg_group_row row;
		struct group_counts zero = { 0 };
		unsigned index = s->m->n_groups(s->mem);
		int pool;

		if (pg_group_parse(res, i, &row) < 0 ||
		    idmap_find(&s->gidx, (uint64_t)row.id) ||
		    (pool = pgs_pool_index(s, row.pool_name)) < 0) {
			log_error("PostgreSQL store: job group row %s is damaged or of a pool not "
				  "here: its jobs are not run here",
				  PQgetvalue(res, i, 0));
			pg_group_row_done(&row);
			continue;
		}
		row.cfg.pool = (unsigned)pool;
		row.cfg.count = 0;
		/* Another node's: def_hash 0, so a submit here makes its own variant. */
		if (mem_restore_group(s->mem, index, &row.cfg, row.adhoc, 0, &zero) < 0 ||
		    pgs_map_group(s, index, row.id) < 0)
			log_error("PostgreSQL store: out of memory for job group %s", row.cfg.name);
		pg_group_row_done(&row);
	}
	if (!res)
		log_warning("PostgreSQL store: cannot read job groups: %s", error ? error : "");
	for (size_t i = 0; i < p.n; i++) {
		bool orphan = p.jobs[i].flags & (1 << 16);

		p.jobs[i].flags &= ~(1 << 16);
		if (idmap_find(&s->gidx, (uint64_t)p.jobs[i].grp)) {
			pgs_claimed_one(s, &p.jobs[i], orphan);
			orphans |= orphan;
			if (!orphan) {
				int pool = pgs_pool_index(s, p.jobs[i].pool ? p.jobs[i].pool : "");

				if (pool >= 0)
					s->ev->ready(s->ev_data, (unsigned)pool);
			}
		} else if (!res || !was_asked(&p, p.jobs[i].grp)) {
			pgs_park(s, &p.jobs[i], 1, orphan); /* asked (again) below */
		} else {
			log_error("PostgreSQL store: job %" PRId64 " is of job group %" PRId64
				  ", which has no row: not run here",
				  p.jobs[i].id, p.jobs[i].grp);
		}
		free((char *)p.jobs[i].pool);
		free((char *)p.jobs[i].input);
		free((char *)p.jobs[i].node);
	}
	free(p.jobs);
	free(p.asked);
	if (s->parked.n > 0)
		pgs_park(s, NULL, 0, false);
	if (orphans && s->n_orphans > 0)
		s->ev->orphans(s->ev_data);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

void pgs_park(struct pgs *s, const struct pg_job *jobs, size_t n, bool orphan)
{
	int64_t *ids = NULL;
	size_t n_ids = 0;

	for (size_t i = 0; i < n; i++) {
		struct pg_job *j;

		if (idmap_find(&s->gidx, (uint64_t)jobs[i].grp))
			continue;
		if (s->parked.n == s->parked.cap) {
			size_t cap = s->parked.cap ? 2 * s->parked.cap : 16;
			struct pg_job *js = realloc(s->parked.jobs, cap * sizeof(*js));

			if (!js)
				break;
			s->parked.jobs = js;
			s->parked.cap = cap;
		}
		j = &s->parked.jobs[s->parked.n++];
		*j = jobs[i];
		j->pool = dup_or_null(jobs[i].pool);
		j->input = dup_or_null(jobs[i].input);
		j->node = dup_or_null(jobs[i].node);
		j->result = NULL;
		if (orphan)
			j->flags |= 1 << 16;
	}
	if (s->parked.fetching || s->parked.n == 0)
		return;
	ids = malloc(s->parked.n * sizeof(*ids));
	if (!ids)
		return;
	for (size_t i = 0; i < s->parked.n; i++)
		ids[n_ids++] = s->parked.jobs[i].grp;
	if (pg_groups_fetch(pg_queue_conn(s->q), ids, n_ids, on_groups, s) >= 0) {
		s->parked.fetching = true;
		s->parked.asked = ids;
		s->parked.n_asked = n_ids;
		return;
	}
	free(ids);
}

int store_pg_open(sd_event *e, const struct store_pg_config *cfg, const struct config *c,
		  const struct store_pg_events *ev, void *userdata, struct store **ret,
		  char **ret_error)
{
	struct pgs *s = calloc(1, sizeof(*s));
	const char **pools = calloc(c->n_pools + 1, sizeof(*pools));
	struct pg_queue_config qc = { .conninfo = cfg->conninfo, .node = cfg->node,
				      .lease_ms = cfg->lease_ms };
	struct pg_node_info info;
	PGconn *conn = NULL;
	int r;

	*ret_error = NULL;
	if (!s || !pools || !(s->node = strdup(cfg->node))) {
		free(s);
		free(pools);
		return -ENOMEM;
	}
	s->base.ops = &store_pg_ops;
	s->e = e;
	s->ev = ev;
	s->ev_data = userdata;
	s->lease_ms = cfg->lease_ms > 0 ? cfg->lease_ms : PG_QUEUE_LEASE_MS;
	for (unsigned i = 0; i < c->n_pools; i++)
		pools[i] = c->pools[i].name;
	r = store_memory_new(c->n_pools, &s->mem);
	if (r >= 0) {
		s->m = s->mem->ops;
		r = store_pg_ops.set_pools(&s->base, c->n_pools, pools);
	}
	free(pools);
	if (r >= 0)
		r = store_pg_connect(cfg->conninfo, &conn, ret_error);
	if (r >= 0) {
		r = store_pg_schema(conn, ret_error);
		if (r >= 0)
			r = store_pg_join(conn, cfg->node, &info, ret_error);
	}
	if (r >= 0) {
		s->next_id = info.last_job > info.last_group ? info.last_job : info.last_group;
		if (s->next_id < PG_NODE_ID_BASE(info.slot))
			s->next_id = PG_NODE_ID_BASE(info.slot);
		r = pgs_adopt_config(s, conn, c, ret_error);
	}
	if (conn)
		PQfinish(conn);
	if (r >= 0) {
		qc.joined = &info;
		r = pg_queue_new(e, &qc, &store_pg_queue_ops, s, &s->q, ret_error);
	}
	if (r < 0) {
		store_pg_ops.free(&s->base);
		return r;
	}
	log_info("PostgreSQL store: node %s (slot %d, epoch %" PRId64 ")", cfg->node, info.slot,
		 info.epoch);
	*ret = &s->base;
	return 0;
}

int store_pg_want(struct store *st, unsigned pool, bool alone, size_t n)
{
	struct pgs *s = PGS(st);

	if (pool >= s->n_pools)
		return -EINVAL;
	return pg_queue_want(s->q, s->pools[pool], alone, n);
}

uint64_t store_pg_next_serial(const struct store *st)
{
	return pg_queue_next_serial(CPGS(st)->q);
}

uint64_t store_pg_committed(const struct store *st)
{
	return pg_queue_committed(CPGS(st)->q);
}
