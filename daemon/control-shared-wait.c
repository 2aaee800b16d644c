/* SPDX-License-Identifier: MIT */
/*
 * `wait` on a shared store (`store = postgresql:`): the jobs may run on any node, so whether
 * they have ended is read from the table. A pending wait looks again every WAIT_POLL (one
 * statement each, cheap: a count over the jobs waited for) until none is unfinished, then
 * reads the reply's jobs (those not as their group expects first, at most WAIT_LIST). Its
 * reply is a held query reply (control_query_new()), so later replies keep their order.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "daemon/control-internal.h"
#include "daemon/store-pg.h"

#define WAIT_POLL (200 * USEC_PER_MSEC)
#define WAIT_LIST 1000 /* jobs listed in a reply, as the memory store's wait */
#define WAIT_LIST_SQL "1000"

struct swait {
	struct swait *next; /* in c->shared_waits */
	struct control *c;
	uint64_t query;
	char *ids;    /* {1,2,3}: by ids, or NULL: */
	char *group;  /* by group: its jobs accepted before... */
	char before[24]; /* ...this (µs since the epoch) */
	uint64_t n_ids;
	bool in_flight;
	sd_event_source *timer;
};

static void swait_free(struct swait *w)
{
	for (struct swait **p = &w->c->shared_waits; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			break;
		}
	sd_event_source_disable_unref(w->timer);
	free(w->ids);
	free(w->group);
	free(w);
}

#define WHERE                                                                              \
	" FROM bulkhead.jobs j JOIN bulkhead.groups g ON g.id = j.grp WHERE ($1::bigint[] IS " \
	"NULL OR j.id = ANY($1::bigint[])) AND ($2::text IS NULL OR (g.name = $2 AND "        \
	"j.accepted_at <= $3::bigint))"

/* Unfinished, all, and whether the group exists (by group). */
#define COUNT                                                                               \
	"SELECT count(*) FILTER (WHERE j.state < 2), count(*), (SELECT count(*) FROM"        \
	" bulkhead.groups WHERE name = $2)" WHERE

static void look(struct swait *w);

static void done(struct swait *w, json_object *reply)
{
	control_query_done(w->c, w->query, reply);
	swait_free(w);
}

static void on_list(void *userdata, const PGresult *res, const char *error)
{
	struct swait *w = userdata;
	json_object *o, *jobs;
	int64_t total = 0, unexpected = 0;
	int n;

	if (!res) {
		done(w, control_error_reply("the shared store cannot be read: %s", error));
		return;
	}
	n = PQntuples(res);
	if (n > 0) {
		total = strtoll(PQgetvalue(res, 0, 7), NULL, 10);
		unexpected = strtoll(PQgetvalue(res, 0, 8), NULL, 10);
	}
	o = control_ok_reply();
	jobs = json_object_new_array();
	json_object_object_add(o, "all_expected", json_object_new_boolean(unexpected == 0));
	for (int i = 0; i < n; i++) {
		json_object *j = json_object_new_object();
		struct job tmp = { .cause = (uint8_t)strtol(PQgetvalue(res, i, 4), NULL, 10),
				   .cause_detail = (int32_t)strtol(PQgetvalue(res, i, 5), NULL, 10) };
		int state = (int)strtol(PQgetvalue(res, i, 3), NULL, 10);
		char name[CONFIG_NAME_MAX + 16], cause[64];

		if (total > WAIT_LIST && state == (int)strtol(PQgetvalue(res, i, 6), NULL, 10))
			break; /* past those not as expected: a long list names only those */
		control_add_int(j, "id", strtoll(PQgetvalue(res, i, 0), NULL, 10));
		snprintf(name, sizeof(name), "%s#%s", PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
		json_object_object_add(j, "name", json_object_new_string(name));
		json_object_object_add(j, "state",
				       json_object_new_string(state >= 0 && state < _JOB_STATE_MAX
								      ? job_state_to_string(state)
								      : "?"));
		json_object_object_add(j, "cause", json_object_new_string(
							   ledger_cause_string(&tmp, cause, sizeof(cause))));
		json_object_object_add(
			j, "expected",
			json_object_new_boolean(state == (int)strtol(PQgetvalue(res, i, 6), NULL, 10)));
		json_object_array_add(jobs, j);
	}
	json_object_object_add(o, "jobs", jobs);
	control_add_int(o, "total", total);
	json_object_object_add(o, "truncated", json_object_new_boolean(total > WAIT_LIST));
	done(w, o);
}

static int exec(struct swait *w, const char *sql, pg_result_fn cb)
{
	const char *values[3] = { w->ids, w->group, w->group ? w->before : NULL };

	return pg_conn_exec_params(store_pg_conn(master_shared_store(w->c->m)), sql, 3, values, cb,
				   w);
}

static void on_count(void *userdata, const PGresult *res, const char *error)
{
	struct swait *w = userdata;
	int64_t unfinished, total;

	w->in_flight = false;
	if (!res) { /* the connection is away: look again later */
		sd_event_source_set_time_relative(w->timer, WAIT_POLL);
		sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
		return;
	}
	unfinished = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	total = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	if (w->group && strcmp(PQgetvalue(res, 0, 2), "0") == 0) {
		done(w, control_error_reply("no job group '%s'", w->group));
		return;
	}
	if (w->ids && (uint64_t)total < w->n_ids) {
		done(w, control_error_reply("%" PRIu64 " of the ids are no jobs of this store",
					    w->n_ids - (uint64_t)total));
		return;
	}
	if (unfinished > 0) {
		sd_event_source_set_time_relative(w->timer, WAIT_POLL);
		sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
		return;
	}
	if (exec(w,
		 "SELECT j.id, g.name, j.instance, j.state, j.cause, j.cause_detail, g.expect,"
		 " count(*) OVER (), count(*) FILTER (WHERE j.state <> g.expect) OVER ()" WHERE
		 " ORDER BY (j.state = g.expect), j.id LIMIT " WAIT_LIST_SQL,
		 on_list) < 0)
		done(w, control_error_reply("the shared store cannot be read now"));
}

static void look(struct swait *w)
{
	if (w->in_flight)
		return;
	if (!control_query_waiting(w->c, w->query)) {
		swait_free(w); /* its client went */
		return;
	}
	if (exec(w, COUNT, on_count) < 0) {
		sd_event_source_set_time_relative(w->timer, WAIT_POLL);
		sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
		return;
	}
	w->in_flight = true;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	look(userdata);
	return 0;
}

json_object *control_shared_wait(struct control *c, json_object *req)
{
	struct swait *w = calloc(1, sizeof(*w));
	const char *group = NULL;
	struct timespec ts;
	size_t n;

	if (!w)
		return control_error_reply("out of memory");
	w->c = c;
	if (control_get_string(req, "group", &group) < 0) {
		free(w);
		return control_error_reply("group must be a string");
	}
	if (group) {
		clock_gettime(CLOCK_REALTIME, &ts);
		w->group = strdup(group);
		snprintf(w->before, sizeof(w->before), "%" PRId64,
			 (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	} else {
		json_object *err = control_shared_ids(req, &w->ids, &n);

		if (err) {
			free(w);
			return err;
		}
		w->n_ids = n;
	}
	if ((group && !w->group) || (!group && !w->ids) ||
	    sd_event_add_time_relative(master_event(c->m), &w->timer, CLOCK_MONOTONIC, WAIT_POLL,
				       0, on_timer, w) < 0) {
		swait_free(w);
		return control_error_reply("out of memory");
	}
	sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
	w->next = c->shared_waits;
	c->shared_waits = w;
	w->query = control_query_new(c);
	if (exec(w, COUNT, on_count) < 0) {
		c->query_pending = 0;
		swait_free(w);
		return control_error_reply("the shared store cannot be read now");
	}
	w->in_flight = true;
	return NULL;
}

void control_shared_waits_free(struct control *c)
{
	while (c->shared_waits)
		swait_free(c->shared_waits);
}
