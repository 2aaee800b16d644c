/* SPDX-License-Identifier: MIT */
/*
 * Long replies and pending waits of the control server (see control-internal.h).
 *
 * `jobs` (up to 100000 jobs), `submit`'s ids and names and `wait` are never built whole: a
 * stream writes the JSON text of that one object piece by piece, a head, one list item at a
 * time from a cursor over the job ids, then the tail with the echoed "id", byte for byte what
 * json-c prints for the whole object. It is written a slice at a time while the client's
 * output has room, at a priority below everything else on the loop, so a slow reader slows
 * only itself.
 *
 * A `wait` holds a master pin and keeps a cursor over the jobs it waits for (their ids, or a
 * group and the last id at the request); the master's on_job_end hook re-checks pending waits once
 * per loop pass, and a finished wait's reply is a stream too.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/control-internal.h"

#define CONTROL_STREAM_SLICE (16u * 1024u) /* of a long reply per turn: streams take turns */

void control_stream_free(struct stream *s)
{
	if (!s)
		return;
	json_object_put(s->echo);
	free(s);
}

/* µs as seconds with 3 decimals, printed as such (never as 1.2e9). */
static void add_seconds(json_object *o, const char *key, int64_t us)
{
	char text[32];

	snprintf(text, sizeof(text), "%" PRId64 ".%03" PRId64, us / 1000000, us / 1000 % 1000);
	json_object_object_add(o, key, json_object_new_double_s((double)us / 1e6, text));
}

/* A wall-clock time (µs since the epoch) as seconds since the epoch; 0: not there. */
static void add_time(json_object *o, const char *key, int64_t us)
{
	if (us > 0)
		add_seconds(o, key, us);
}

/* "frames": the lines of a crash note's frames (each ended by '\n'). */
static json_object *frames_array(const char *frames)
{
	json_object *a = json_object_new_array();

	for (const char *p = frames, *nl; *p && (nl = strchr(p, '\n')); p = nl + 1)
		json_object_array_add(a, json_object_new_string_len(p, (int)(nl - p)));
	return a;
}

static json_object *job_object(struct master *m, const struct master_job *j)
{
	enum job_state shown = master_job_shown_state(j);
	json_object *o = json_object_new_object();
	char name[CONFIG_NAME_MAX + 16], cause[64], worker[CONFIG_NAME_MAX + 16] = "";
	struct master_group g;

	master_group(m, j->group, &g); /* a job's group exists while the job does */
	control_add_int(o, "id", (int64_t)j->id);
	json_object_object_add(o, "name",
			       json_object_new_string(master_job_name(m, j, name, sizeof(name))));
	json_object_object_add(o, "group", json_object_new_string(g.cfg->name));
	json_object_object_add(o, "pool", json_object_new_string(master_pool_name(m, g.cfg->pool)));
	json_object_object_add(o, "state", json_object_new_string(job_state_to_string(shown)));
	control_add_int(o, "attempts", j->attempts);
	control_add_int(o, "runs", j->runs);
	json_object_object_add(o, "cause",
			       json_object_new_string(master_job_cause(j, cause, sizeof(cause))));
	if (j->worker_pool)
		snprintf(worker, sizeof(worker), "%s/%u", j->worker_pool, j->worker_slot);
	json_object_object_add(o, "worker", json_object_new_string(worker));
	/* What only some jobs have is there only when they have it. */
	if (j->input)
		json_object_object_add(o, "input", json_object_new_string(j->input));
	if (j->result)
		json_object_object_add(o, "result", json_object_new_string(j->result));
	if (j->crash) {
		json_object_object_add(o, "crash", json_object_new_string(j->crash));
		json_object_object_add(o, "frames", frames_array(j->crash_frames));
	}
	control_add_int(o, "reruns", j->reruns);
	control_add_int(o, "host_deaths", j->host_deaths);
	add_time(o, "accepted_at", j->accepted_at);
	add_time(o, "started_at", j->started_at);
	add_time(o, "ended_at", j->ended_at);
	if (j->started_at && j->ended_at >= j->started_at)
		add_seconds(o, "run_seconds", j->ended_at - j->started_at);
	if (j->node)
		json_object_object_add(o, "node", json_object_new_string(j->node));
	if (shown == JOB_RUNNING && j->progress >= 0) {
		char text[16];

		snprintf(text, sizeof(text), "%d.%03d", j->progress / 1000, j->progress % 1000);
		json_object_object_add(o, "progress",
				       json_object_new_double_s((double)j->progress / 1000, text));
	}
	return o;
}

/* Job `id` as a view, if it matches the stream's filters (a forgotten one never does). */
static bool job_matches(const struct master *m, uint64_t id, const struct stream *s,
			struct master_job *ret)
{
	int64_t last;

	if (master_job(m, id, ret) < 0 ||
	    (s->want_states && !(s->want_states & (1u << master_job_shown_state(ret)))) ||
	    (s->want_group >= 0 && ret->group != (unsigned)s->want_group))
		return false;
	last = ret->ended_at > ret->started_at ? ret->ended_at : ret->started_at;
	if (ret->accepted_at > last)
		last = ret->accepted_at;
	return !s->since || last >= s->since;
}

/* The stream's next id to look at (in its order), or false after the last. */
static bool jobs_next_id(struct stream *s, uint64_t *ret)
{
	if (!s->reverse) {
		if (s->next >= s->end)
			return false;
		*ret = s->next++;
		return true;
	}
	if (s->next < s->first)
		return false;
	*ret = s->next--;
	return true;
}

/* A stream of `kind` for the client being served; NULL when out of memory. */
struct stream *control_stream_new(struct control *c, enum stream_kind kind)
{
	struct stream *s = calloc(1, sizeof(*s));

	assert(!c->serving || (!c->serving->stream && !c->serving->wait));
	if (!s)
		return NULL;
	s->kind = kind;
	if (c->serving)
		c->serving->stream = s;
	return s;
}

/*
 * Streamed (struct stream): when its turn comes, "total_matching" is counted, then the list is
 * written as the client reads it: in id order up to the last id there was at the request,
 * each job as it is then and only if it still matches, at most min(limit, total_matching).
 * Returns NULL when the stream is set up, or an error reply.
 */
/* "state": one name, names separated by ',', or an array of names, into a bit per state. */
json_object *control_read_states(json_object *req, uint32_t *ret)
{
	json_object *v;
	char buf[256], *save = NULL;

	*ret = 0;
	if (!json_object_object_get_ex(req, "state", &v))
		return NULL;
	if (json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *e = json_object_array_get_idx(v, i);
			int st = json_object_is_type(e, json_type_string)
					 ? job_state_from_string(json_object_get_string(e))
					 : -1;

			if (st < 0)
				return control_error_reply("state %zu: expected a state name", i + 1);
			*ret |= 1u << st;
		}
		return NULL;
	}
	if (!json_object_is_type(v, json_type_string) ||
	    snprintf(buf, sizeof(buf), "%s", json_object_get_string(v)) >= (int)sizeof(buf))
		return control_error_reply("state must be a string or an array of strings");
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int st = job_state_from_string(t);

		if (st < 0)
			return control_error_reply("unknown state '%s'", t);
		*ret |= 1u << st;
	}
	if (!*ret)
		return control_error_reply("state names no state");
	return NULL;
}

json_object *control_read_jobs_range(json_object *req, int64_t *job, int64_t *since,
				     bool *reverse, int64_t *limit)
{
	json_object *v;

	*reverse = false;
	*limit = CONTROL_JOBS_LIMIT_DEFAULT;
	if (control_get_int(req, "job", 1, INT64_MAX, 0, job) < 0)
		return control_error_reply("job must be a job id");
	if (control_get_int(req, "since", 0, INT64_MAX, 0, since) < 0)
		return control_error_reply("since must be microseconds since the epoch");
	if (json_object_object_get_ex(req, "reverse", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return control_error_reply("reverse must be true or false");
		*reverse = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(req, "limit", &v)) {
		if (!json_object_is_type(v, json_type_int))
			return control_error_reply("limit must be an integer");
		*limit = json_object_get_int64(v);
		if (*limit < 1 || *limit > CONTROL_JOBS_LIMIT_MAX)
			return control_error_reply("limit must be 1..%d", CONTROL_JOBS_LIMIT_MAX);
	}
	return NULL;
}

json_object *control_cmd_jobs(struct control *c, json_object *req)
{
	const char *group = NULL;
	int64_t limit = CONTROL_JOBS_LIMIT_DEFAULT, job = 0, since = 0;
	int want_group = -1;
	uint32_t want_states;
	bool reverse = false;
	struct stream *s;
	json_object *v;

	if (control_get_string(req, "group", &group) < 0)
		return control_error_reply("group must be a string");
	if (master_shared_store(c->m))
		return control_shared_jobs(c, req);
	v = control_read_states(req, &want_states);
	if (v)
		return v;
	if (group && (want_group = master_find_group(c->m, group)) < 0)
		return control_error_reply("no job group '%s'", group);
	v = control_read_jobs_range(req, &job, &since, &reverse, &limit);
	if (v)
		return v;
	s = control_stream_new(c, STREAM_JOBS);
	if (!s)
		return control_error_reply("out of memory");
	s->first = job ? (uint64_t)job : 1;
	s->end = master_n_jobs(c->m) + 1;
	if (job && (uint64_t)job < s->end)
		s->end = (uint64_t)job + 1;
	s->max = (uint64_t)limit;
	s->want_states = want_states;
	s->want_group = want_group;
	s->since = since;
	s->reverse = reverse;
	s->next = reverse ? s->end - 1 : s->first;
	return NULL;
}

/* The head of a jobs reply, with the count of the jobs that match now; the limit cut to it. */
static void jobs_head(struct master *m, struct stream *s)
{
	struct master_job j;
	uint64_t matching = 0;

	for (uint64_t id = s->first; id < s->end; id++)
		matching += job_matches(m, id, s, &j);
	if (matching < s->max)
		s->max = matching;
	snprintf(s->head, sizeof(s->head), "{\"ok\":true,\"total_matching\":%llu,\"jobs\":[",
		 (unsigned long long)matching);
}

static bool state_met(const struct master *m, unsigned group, enum job_state state)
{
	const struct group_config *g = master_group_config(m, group);

	return g && state == g->expect;
}

/*
 * The next member of w at or after *pos (which moves past it): its id, state and group (what
 * the progress scan needs, without a full view); false after the last. Forgotten ones had
 * ended before the wait began; listed ids are pinned, so never forgotten.
 */
static bool wait_next_state(const struct master *m, const struct wait *w, uint64_t *pos,
			    uint64_t *ret_id, enum job_state *ret_state, unsigned *ret_group)
{
	if (w->group < 0) {
		while (*pos < w->n_ids) {
			*ret_id = w->ids[(*pos)++];
			if (master_job_state(m, *ret_id, ret_state, ret_group) == 0)
				return true;
		}
		return false;
	}
	while (*pos < w->end) {
		*ret_id = (*pos)++;
		if (master_job_state(m, *ret_id, ret_state, ret_group) == 0 &&
		    *ret_group == (unsigned)w->group)
			return true;
	}
	return false;
}

/*
 * The next member of w to list, as a full view: every one, or (truncated) only those that did
 * not end as their group expects, found from state and group alone (a full view of each of a
 * million jobs would be most of the wait's cost). *ret_met: it did.
 */
static bool wait_next(const struct master *m, const struct wait *w, uint64_t *pos,
		      struct master_job *ret, bool *ret_met)
{
	enum job_state state;
	unsigned group;
	uint64_t id;

	while (wait_next_state(m, w, pos, &id, &state, &group)) {
		*ret_met = state_met(m, group, state);
		if (w->ended > CONTROL_WAIT_LIST_MAX && *ret_met)
			continue; /* truncated: the unexpected ones only */
		if (master_job(m, id, ret) == 0)
			return true;
	}
	return false;
}

/*
 * Moves w's cursor over the members that have ended; true once all have. Ended jobs never
 * start again, so a wait for n jobs costs O(n) in all, not O(n) per job that ends.
 */
static bool wait_finished(const struct master *m, struct wait *w)
{
	for (;;) {
		uint64_t pos = w->pos;
		enum job_state state;
		unsigned group;
		uint64_t id;

		if (!wait_next_state(m, w, &pos, &id, &state, &group))
			return true;
		if (!job_state_is_final(state))
			return false;
		w->pos = pos;
		w->ended++;
		w->all_expected &= state_met(m, group, state);
	}
}

void control_wait_free(struct client *cl)
{
	struct wait *w = cl->wait;

	if (!w)
		return;
	if (!w->done)
		cl->c->n_waiting--;
	master_pin_free(w->pin); /* retention may catch up */
	free(w->ids);
	json_object_put(w->echo);
	free(w);
	cl->wait = NULL;
}

/*
 * Starts the reply of cl's finished wait, streamed: up to CONTROL_WAIT_LIST_MAX jobs it lists every
 * one; beyond, only those that did not end as their group expects (at most CONTROL_WAIT_LIST_MAX of
 * them), with "total" and "truncated": a wait for a group of a million jobs must not make the
 * master build a million JSON objects. The jobs stay pinned until the reply is out. False if
 * the client had to go.
 */
static bool wait_reply(struct client *cl)
{
	struct wait *w = cl->wait;
	struct stream *s = calloc(1, sizeof(*s));

	if (!s) {
		log_warning("control: out of memory for client pid %d: closed", (int)cl->pid);
		control_conn_free(cl);
		return false;
	}
	s->kind = STREAM_WAIT;
	s->next = w->group < 0 ? 0 : 1;
	s->echo = w->echo;
	w->echo = NULL;
	snprintf(s->head, sizeof(s->head), "{\"ok\":true,\"all_expected\":%s,\"jobs\":[",
		 w->all_expected ? "true" : "false");
	snprintf(s->extra, sizeof(s->extra), ",\"total\":%llu,\"truncated\":%s",
		 (unsigned long long)w->ended, w->ended > CONTROL_WAIT_LIST_MAX ? "true" : "false");
	if (master_durable(cl->c->m)) {
		/* The ends it reports are on disk before it says so. */
		s->durable_at = master_flush_next(cl->c->m);
		master_flush_needed(cl->c->m);
		return control_conn_hold(cl, s);
	}
	cl->stream = s;
	return true;
}

/* Answers every wait whose jobs have all ended; those clients go on with their requests. */
int control_on_wait_check(sd_event_source *s, void *userdata)
{
	struct control *c = userdata;
	struct client *cl = c->clients, *next;

	for (; cl; cl = next) {
		next = cl->next;
		if (!cl->wait || cl->wait->done || !wait_finished(c->m, cl->wait))
			continue;
		cl->wait->done = true;
		c->n_waiting--;
		if (wait_reply(cl))
			control_conn_pump(cl, false);
	}
	return 0;
}

/* Called for every job that ends: cheap unless some client is waiting. */
void control_on_job_end(void *userdata, uint64_t id)
{
	struct control *c = userdata;

	if (c->n_waiting > 0)
		sd_event_source_set_enabled(c->wait_check, SD_EVENT_ONESHOT);
}

/*
 * Sets the client being served up to wait; returns NULL (control_on_wait_check answers later) or an
 * error reply.
 */
json_object *control_cmd_wait(struct control *c, json_object *req)
{
	struct client *cl = c->serving;
	const char *group = NULL;
	struct wait *w;
	json_object *err, *echo;

	if (master_shared_store(c->m))
		return control_shared_wait(c, req);
	if (control_get_string(req, "group", &group) < 0)
		return control_error_reply("group must be a string");
	w = calloc(1, sizeof(*w));
	if (!w)
		return control_error_reply("out of memory");
	w->all_expected = true;
	w->group = -1;
	if (group) {
		int g = master_find_group(c->m, group);

		if (g < 0) {
			free(w);
			return control_error_reply("no job group '%s'", group);
		}
		/* The group's jobs now: those with ids below the next one. */
		w->group = g;
		w->pos = 1;
		w->end = master_n_jobs(c->m) + 1;
	} else {
		err = control_read_ids(c->m, req, &w->ids, &w->n_ids);
		if (err) {
			free(w);
			return err;
		}
	}
	/* The jobs waited for stay known until the reply is out. */
	if (master_pin_new(c->m, &w->pin) < 0) {
		free(w->ids);
		free(w);
		return control_error_reply("out of memory");
	}
	if (json_object_object_get_ex(req, "id", &echo))
		w->echo = json_object_get(echo);
	cl->wait = w;
	c->n_waiting++;
	sd_event_source_set_enabled(c->wait_check, SD_EVENT_ONESHOT);
	return NULL;
}

static json_object *wait_entry(const struct master *m, const struct master_job *j, bool met)
{
	json_object *e = json_object_new_object();
	char name[CONFIG_NAME_MAX + 16], cause[64];

	control_add_int(e, "id", (int64_t)j->id);
	json_object_object_add(e, "name",
			       json_object_new_string(master_job_name(m, j, name, sizeof(name))));
	json_object_object_add(e, "state", json_object_new_string(job_state_to_string(j->state)));
	json_object_object_add(e, "cause",
			       json_object_new_string(master_job_cause(j, cause, sizeof(cause))));
	json_object_object_add(e, "expected", json_object_new_boolean(met));
	return e;
}

/* The next item of the stream's current list, or NULL after its last. */
static json_object *stream_item(struct client *cl, struct stream *s)
{
	struct master *m = cl->c->m;
	char name[CONFIG_NAME_MAX + 16];
	struct master_job j;
	uint64_t id;
	bool met;

	switch (s->kind) {
	case STREAM_JOBS:
		while (s->listed < s->max && jobs_next_id(s, &id)) {
			if (job_matches(m, id, s, &j))
				return job_object(m, &j);
		}
		return NULL;
	case STREAM_SUBMIT:
		if (s->next >= s->end)
			return NULL;
		if (s->part == 1)
			return json_object_new_int64((int64_t)s->next++);
		snprintf(name, sizeof(name), "%s#%u", s->name,
			 s->instance + (uint32_t)(s->next++ - s->first));
		return json_object_new_string(name);
	case STREAM_WAIT:
		if (s->listed < CONTROL_WAIT_LIST_MAX && wait_next(m, cl->wait, &s->next, &j, &met))
			return wait_entry(m, &j, met);
		return NULL;
	}
	return NULL;
}

/* v in decimal at p; returns the end (no NUL). */
static char *put_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

/*
 * Writes the stream's next pieces into the output: a slice of CONTROL_STREAM_SLICE (so that
 * many long replies and everyone else's requests take turns on the loop), no further than
 * CONTROL_OUTPUT_MAX, or to the end of the reply; then the stream (and a finished wait) are
 * freed. False if the client had to go.
 */
bool control_stream_fill(struct client *cl)
{
	struct stream *s = cl->stream;
	size_t stop = cl->out_len + CONTROL_STREAM_SLICE;
	const char *text;

	while (cl->out_len < CONTROL_OUTPUT_MAX && cl->out_len < stop) {
		json_object *item;
		bool ok;

		if (s->part == 0) {
			if (s->kind == STREAM_JOBS)
				jobs_head(cl->c->m, s);
			if (!control_conn_append(cl, s->head, strlen(s->head)))
				return false;
			s->part = 1;
			continue;
		}
		if (s->part == 3)
			break;
		if (s->kind == STREAM_SUBMIT && s->next < s->end && s->plain_name) {
			/* A submit's ids and names, written as they are: a JSON object (and its
			 * text buffer) per item was most of the cost of a long submit reply, and
			 * then snprintf most of what was left. */
			char buf[CONFIG_NAME_MAX + 48], *p = buf;

			if (s->listed)
				*p++ = ',';
			if (s->part == 1) {
				p = put_u64(p, s->next);
			} else {
				*p++ = '"';
				p = mempcpy(p, s->name, s->name_len);
				*p++ = '#';
				p = put_u64(p, s->instance + (uint32_t)(s->next - s->first));
				*p++ = '"';
			}
			s->next++;
			s->listed++;
			if (!control_conn_append(cl, buf, (size_t)(p - buf)))
				return false;
			continue;
		}
		item = stream_item(cl, s);
		if (item) {
			text = json_object_to_json_string_ext(item, JSON_C_TO_STRING_PLAIN);
			ok = (s->listed++ == 0 || control_conn_append(cl, ",", 1)) &&
			     control_conn_append(cl, text, strlen(text));
			json_object_put(item);
			if (!ok)
				return false;
		} else if (s->kind == STREAM_SUBMIT && s->part == 1) {
			if (!control_conn_append(cl, "],\"jobs\":[", 10))
				return false;
			s->part = 2;
			s->next = s->first;
			s->listed = 0;
		} else {
			s->part = 3;
		}
	}
	if (s->part != 3)
		return true; /* the rest on a later turn */
	text = s->echo ? json_object_to_json_string_ext(s->echo, JSON_C_TO_STRING_PLAIN) : NULL;
	if (!control_conn_append(cl, "]", 1) ||
	    !control_conn_append(cl, s->extra, strlen(s->extra)) ||
	    (text && (!control_conn_append(cl, ",\"id\":", 6) ||
		      !control_conn_append(cl, text, strlen(text)))) ||
	    !control_conn_append(cl, "}\n", 2))
		return false;
	control_stream_free(s);
	cl->stream = NULL;
	if (cl->wait && cl->wait->done)
		control_wait_free(cl);
	return true;
}
