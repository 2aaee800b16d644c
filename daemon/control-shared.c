/* SPDX-License-Identifier: MIT */
/*
 * Views of a shared store (`store = postgresql:`): every node's jobs are in the table, so
 * `status` takes its job counts and the nodes from it, and `jobs` lists its rows. Each reply
 * is held until its query returns (control_query_new()), behind the client's earlier ones.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "daemon/control-internal.h"
#include "daemon/ledger.h"
#include "daemon/store-pg.h"

/* ---- replies a store query makes (control-internal.h) ---- */

uint64_t control_query_new(struct control *c)
{
	c->query_pending = ++c->queries;
	return c->queries;
}

/* The reply of held query h (taking the reference): its text. False when out of memory. */
bool control_held_fill(struct held *h, json_object *reply)
{
	const char *text;

	if (h->echo)
		json_object_object_add(reply, "id", h->echo);
	h->echo = NULL;
	text = json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN);
	if (asprintf(&h->text, "%s\n", text) < 0)
		h->text = NULL;
	json_object_put(reply);
	h->query = 0;
	return h->text != NULL;
}

void control_query_done(struct control *c, uint64_t query, json_object *reply)
{
	for (struct client *cl = c->clients; cl; cl = cl->next) {
		for (struct held *h = cl->held; h; h = h->next) {
			if (h->query != query)
				continue;
			if (!control_held_fill(h, reply)) {
				log_warning("control: out of memory for client pid %d: closed",
					    (int)cl->pid);
				control_conn_free(cl);
				return;
			}
			control_conn_pump(cl, false);
			return;
		}
	}
	if (query == c->query_pending && !c->query_early) {
		c->query_early = reply; /* answered before its handler returned */
		return;
	}
	json_object_put(reply); /* its client went */
}

void control_query_stream(struct control *c, uint64_t query, struct stream *s)
{
	for (struct client *cl = c->clients; cl; cl = cl->next) {
		for (struct held *h = cl->held; h; h = h->next) {
			if (h->query != query)
				continue;
			h->query = 0;
			h->stream = s;
			s->echo = h->echo;
			h->echo = NULL;
			h->durable_at = s->durable_at;
			if (h->durable_at)
				c->n_held++;
			control_conn_pump(cl, false);
			return;
		}
	}
	control_stream_free(s); /* its client went */
}

bool control_query_waiting(const struct control *c, uint64_t query)
{
	for (const struct client *cl = c->clients; cl; cl = cl->next)
		for (const struct held *h = cl->held; h; h = h->next)
			if (h->query == query)
				return true;
	return query == c->query_pending;
}

/* ---- the views ---- */

struct call {
	struct control *c;
	uint64_t query;
	json_object *reply; /* status: what the node knows by itself */
	char *group;        /* jobs: the group asked for, not found in the table */
	bool dead;          /* jobs: its query could not be sent: on_group() frees it */
};

static void on_status(void *userdata, const struct store_pg_status *st)
{
	struct call *call = userdata;
	json_object *o = call->reply, *jobs = json_object_new_object(),
		    *nodes = json_object_new_array(), *store;
	uint64_t total = 0;
	static const enum job_state finals[] = { JOB_DONE, JOB_FAILED, JOB_CRASHED, JOB_TIMED_OUT,
						 JOB_CANCELLED };

	if (json_object_object_get_ex(o, "store", &store)) {
		json_object_object_add(store, "failing",
				       json_object_new_string(st->error ? st->error : ""));
		control_add_int(store, "lease_ms", st->lease_ms);
	}
	if (!st->error) {
		for (int i = 0; i < _JOB_STATE_MAX; i++)
			total += st->by_state[i];
		control_add_int(jobs, "total", (int64_t)total);
		control_add_int(jobs, "queued", (int64_t)st->by_state[JOB_QUEUED]);
		/* Leased to a node: on a thread there, or about to be. */
		control_add_int(jobs, "running", (int64_t)st->by_state[JOB_RUNNING]);
		for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++)
			control_add_int(jobs, job_state_to_string(finals[i]),
					(int64_t)st->by_state[finals[i]]);
		control_add_int(jobs, "lost", 0); /* a row is in exactly one state */
		json_object_object_add(o, "jobs", jobs);
	} else {
		json_object_put(jobs);
	}
	for (size_t i = 0; i < st->n_nodes; i++) {
		const struct store_pg_node *n = &st->nodes[i];
		json_object *no = json_object_new_object();

		json_object_object_add(no, "name", json_object_new_string(n->name));
		json_object_object_add(no, "alive", json_object_new_boolean(n->alive));
		json_object_object_add(no, "heartbeat_age_seconds",
				       json_object_new_double((double)n->heartbeat_age_ms / 1e3));
		control_add_int(no, "epoch", n->epoch);
		control_add_int(no, "jobs_leased", n->held);
		json_object_array_add(nodes, no);
	}
	json_object_object_add(o, "nodes", nodes);
	control_query_done(call->c, call->query, o);
	free(call);
}

json_object *control_shared_status(struct control *c, json_object *o)
{
	struct call *call = calloc(1, sizeof(*call));

	if (!call) {
		json_object_put(o);
		return control_error_reply("out of memory");
	}
	*call = (struct call){ .c = c, .reply = o, .query = control_query_new(c) };
	if (store_pg_status(master_shared_store(c->m), on_status, call) < 0) {
		c->query_pending = 0;
		free(call);
		return o; /* this node's own view, as it is */
	}
	return NULL;
}

/* A µs time as seconds with 3 decimals (as the memory store's view prints it). */
static void add_time(json_object *o, const char *key, int64_t us)
{
	char text[32];

	if (us <= 0)
		return;
	snprintf(text, sizeof(text), "%" PRId64 ".%03" PRId64, us / 1000000, us / 1000 % 1000);
	json_object_object_add(o, key, json_object_new_double_s((double)us / 1e6, text));
}

static int64_t cell(const PGresult *res, int i, int col)
{
	return strtoll(PQgetvalue(res, i, col), NULL, 10);
}

static json_object *row_object(const PGresult *res, int i)
{
	json_object *o = json_object_new_object();
	struct job tmp = { .cause = (uint8_t)cell(res, i, 7),
			   .cause_detail = (int32_t)cell(res, i, 8) };
	int64_t accepted = cell(res, i, 13), started = cell(res, i, 14), ended = cell(res, i, 15);
	int state = (int)cell(res, i, 4);
	char name[CONFIG_NAME_MAX + 16], cause[64];

	started = started ? accepted + (started - 1) * 1000 : 0;
	ended = ended ? accepted + (ended - 1) * 1000 : 0;
	control_add_int(o, "id", cell(res, i, 0));
	snprintf(name, sizeof(name), "%s#%" PRId64, PQgetvalue(res, i, 1), cell(res, i, 2));
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "group", json_object_new_string(PQgetvalue(res, i, 1)));
	json_object_object_add(o, "pool", json_object_new_string(PQgetvalue(res, i, 3)));
	json_object_object_add(o, "state",
			       json_object_new_string(state >= 0 && state < _JOB_STATE_MAX
							      ? job_state_to_string(state)
							      : "?"));
	control_add_int(o, "attempts", cell(res, i, 5));
	control_add_int(o, "runs", cell(res, i, 6));
	json_object_object_add(o, "cause",
			       json_object_new_string(ledger_cause_string(&tmp, cause, sizeof(cause))));
	json_object_object_add(o, "worker", json_object_new_string(""));
	if (!PQgetisnull(res, i, 9))
		json_object_object_add(o, "input", json_object_new_string(PQgetvalue(res, i, 9)));
	if (!PQgetisnull(res, i, 10))
		json_object_object_add(o, "result", json_object_new_string(PQgetvalue(res, i, 10)));
	control_add_int(o, "reruns", cell(res, i, 11));
	control_add_int(o, "host_deaths", cell(res, i, 12));
	add_time(o, "accepted_at", accepted);
	add_time(o, "started_at", started);
	add_time(o, "ended_at", ended);
	if (started && ended >= started)
		add_time(o, "run_seconds", ended - started);
	if (!PQgetisnull(res, i, 16))
		json_object_object_add(o, "node", json_object_new_string(PQgetvalue(res, i, 16)));
	if (state == JOB_RUNNING && !PQgetisnull(res, i, 17))
		json_object_object_add(o, "lease_owner",
				       json_object_new_string(PQgetvalue(res, i, 17)));
	return o;
}

static void on_jobs(void *userdata, const PGresult *res, const char *error)
{
	struct call *call = userdata;
	json_object *o, *a;

	if (!res) {
		control_query_done(call->c, call->query,
				   control_error_reply("the shared store cannot be read: %s", error));
		free(call->group);
		free(call);
		return;
	}
	if (call->group && PQntuples(res) == 0) { /* as on one host: an unknown group is said */
		control_query_done(call->c, call->query,
				   control_error_reply("no job group '%s'", call->group));
		free(call->group);
		free(call);
		return;
	}
	o = control_ok_reply();
	a = json_object_new_array();
	control_add_int(o, "total_matching", PQntuples(res) ? cell(res, 0, 18) : 0);
	for (int i = 0; i < PQntuples(res); i++)
		json_object_array_add(a, row_object(res, i));
	json_object_object_add(o, "jobs", a);
	control_query_done(call->c, call->query, o);
	free(call->group);
	free(call);
}

/* A jobs request's group exists in the table (its rows may all be filtered out). */
static void on_group(void *userdata, const PGresult *res, const char *error)
{
	struct call *call = userdata;

	if (call->dead) {
		free(call->group);
		free(call);
		return;
	}
	if (res && PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 0), "0") != 0) {
		free(call->group);
		call->group = NULL;
	}
}

json_object *control_shared_jobs(struct control *c, json_object *req)
{
	struct store_pg_jobs_query q = { .limit = CONTROL_JOBS_LIMIT_DEFAULT };
	int64_t limit, job, since;
	struct call *call;
	json_object *v;

	if (control_get_string(req, "group", &q.group) < 0)
		return control_error_reply("group must be a string");
	v = control_read_states(req, &q.states);
	if (v)
		return v;
	v = control_read_jobs_range(req, &job, &since, &q.reverse, &limit);
	if (v)
		return v;
	q.job = (uint64_t)job;
	q.since = since;
	q.limit = (uint64_t)limit;
	call = calloc(1, sizeof(*call));
	if (!call)
		return control_error_reply("out of memory");
	call->c = c;
	call->query = control_query_new(c);
	/* Whether the group exists, answered before the jobs (statements run in order). */
	if (q.group &&
	    (!(call->group = strdup(q.group)) ||
	     pg_conn_exec_params(store_pg_conn(master_shared_store(c->m)),
				 "SELECT count(*) FROM bulkhead.groups WHERE name = $1", 1, &q.group,
				 on_group, call) < 0)) {
		c->query_pending = 0;
		free(call->group);
		free(call);
		return control_error_reply("the shared store cannot be read now");
	}
	if (store_pg_jobs(master_shared_store(c->m), &q, on_jobs, call) < 0) {
		c->query_pending = 0;
		if (q.group)
			call->dead = true; /* its group check is out */
		else
			free(call);
		return control_error_reply("the shared store cannot be read now");
	}
	return NULL;
}

/* ---- ids, and cancel ---- */

json_object *control_shared_ids(json_object *req, char **ret, size_t *ret_n)
{
	json_object *ids;
	size_t n, len = 1;
	char *lit;

	if (!json_object_object_get_ex(req, "ids", &ids) ||
	    !json_object_is_type(ids, json_type_array))
		return control_error_reply("\"ids\" must be an array of job ids");
	n = json_object_array_length(ids);
	if (n == 0 || n > CONTROL_JOBS_LIMIT_MAX)
		return control_error_reply("between 1 and %d ids", CONTROL_JOBS_LIMIT_MAX);
	lit = malloc(n * 21 + 3);
	if (!lit)
		return control_error_reply("out of memory");
	lit[0] = '{';
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(ids, i);

		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1) {
			free(lit);
			return control_error_reply("\"ids\" must be an array of job ids");
		}
		len += (size_t)sprintf(lit + len, "%s%" PRId64, i ? "," : "",
				       json_object_get_int64(v));
	}
	strcpy(lit + len, "}");
	*ret = lit;
	*ret_n = n;
	return NULL;
}

static void on_cancel(void *userdata, const PGresult *res, const char *error)
{
	struct call *call = userdata;
	json_object *o = call->reply, *done, *asked, *not_done;

	if (!res) {
		json_object_put(o);
		control_query_done(call->c, call->query,
				   control_error_reply("the shared store cannot be read: %s", error));
		free(call);
		return;
	}
	json_object_object_get_ex(o, "cancelled", &done);
	json_object_object_get_ex(o, "cancelling", &asked);
	json_object_object_get_ex(o, "not_cancelled", &not_done);
	for (int i = 0; i < PQntuples(res); i++) {
		int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		json_object *e;
		int state;

		if (strcmp(PQgetvalue(res, i, 1), "t") == 0) {
			json_object_array_add(done, json_object_new_int64(id));
			continue;
		}
		e = json_object_new_object();
		control_add_int(e, "id", id);
		state = PQgetisnull(res, i, 2) ? -1 : (int)strtol(PQgetvalue(res, i, 2), NULL, 10);
		json_object_object_add(e, "state",
				       json_object_new_string(state >= 0 && state < _JOB_STATE_MAX
								      ? job_state_to_string(state)
								      : "unknown"));
		/* Leased to another node: cancel it there (its workers are that node's). */
		if (!PQgetisnull(res, i, 3))
			json_object_object_add(e, "node",
					       json_object_new_string(PQgetvalue(res, i, 3)));
		json_object_array_add(not_done, e);
	}
	control_query_done(call->c, call->query, o);
	free(call);
}

/*
 * cancel on a shared store: a job this node holds as on one host (master_cancel_job());
 * any other still queued in the table ends cancelled there, in one statement; one running
 * on another node is named with that node.
 */
json_object *control_shared_cancel(struct control *c, json_object *req)
{
	json_object *o, *done, *asked, *not_done, *err, *ids;
	char *lit = NULL, sql[768], now[24], *others, *p;
	const char *values[2];
	struct call *call;
	size_t n, n_others = 0;
	struct timespec ts;

	err = control_shared_ids(req, &lit, &n);
	if (err)
		return err;
	json_object_object_get_ex(req, "ids", &ids);
	o = control_ok_reply();
	done = json_object_new_array();
	asked = json_object_new_array();
	not_done = json_object_new_array();
	json_object_object_add(o, "cancelled", done);
	json_object_object_add(o, "cancelling", asked);
	json_object_object_add(o, "not_cancelled", not_done);
	others = p = lit; /* rewritten in place: the ids this node does not hold */
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		uint64_t id = (uint64_t)json_object_get_int64(json_object_array_get_idx(ids, i));
		struct master_job j;
		int r;

		if (master_job(c->m, id, &j) < 0) {
			p += sprintf(p, "%s%" PRIu64, n_others++ ? "," : "", id);
			continue;
		}
		r = master_cancel_job(c->m, id);
		if (r == 0) {
			json_object_array_add(done, json_object_new_int64((int64_t)id));
		} else if (r > 0) {
			json_object_array_add(asked, json_object_new_int64((int64_t)id));
		} else {
			json_object *e = json_object_new_object();

			control_add_int(e, "id", (int64_t)id);
			json_object_object_add(e, "state",
					       json_object_new_string(job_state_to_string(j.state)));
			json_object_array_add(not_done, e);
		}
	}
	strcpy(p, "}");
	if (n_others == 0) {
		free(lit);
		return o;
	}
	call = calloc(1, sizeof(*call));
	if (!call) {
		free(lit);
		json_object_put(o);
		return control_error_reply("out of memory");
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(now, sizeof(now), "%" PRId64, (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	snprintf(sql, sizeof(sql),
		 "WITH c AS (UPDATE bulkhead.jobs SET state = %d, cause = %d, cause_detail = 0,"
		 " ended_ms = GREATEST(1, ($2::bigint - accepted_at) / 1000 + 1) WHERE id ="
		 " ANY($1::bigint[]) AND state = %d RETURNING id) SELECT x.id, c.id IS NOT NULL,"
		 " j.state, j.lease_owner FROM unnest($1::bigint[]) AS x(id) LEFT JOIN c ON"
		 " c.id = x.id LEFT JOIN bulkhead.jobs j ON j.id = x.id",
		 JOB_CANCELLED, CAUSE_CANCELLED, JOB_QUEUED);
	values[0] = others;
	values[1] = now;
	*call = (struct call){ .c = c, .reply = o, .query = control_query_new(c) };
	if (pg_conn_exec_params(store_pg_conn(master_shared_store(c->m)), sql, 2, values,
				on_cancel, call) < 0) {
		c->query_pending = 0;
		free(call);
		free(lit);
		json_object_put(o);
		return control_error_reply("the shared store cannot be written now");
	}
	free(lit);
	return NULL;
}
