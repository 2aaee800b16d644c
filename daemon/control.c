/* SPDX-License-Identifier: MIT */
/*
 * The control socket (see control.h and docs/control-protocol.md).
 *
 * Every client is bounded whatever it asks (DESIGN §11):
 * - memory: its input buffer holds at most one request line (CONTROL_REQUEST_MAX) plus what
 *   is pipelined behind a reply in progress, its output buffer about CONTROL_OUTPUT_MAX; both
 *   are allocated when bytes come and freed when they are used up, so an idle client holds
 *   none. A reply that can be long (`jobs`, `submit`'s ids and names, `wait`) is never built
 *   whole: a stream writes the JSON text of that one object piece by piece from a cursor (the
 *   next job id), a slice at a time while the output has room, at a priority below everything
 *   else on the loop. While a reply is in progress or the output is full, later requests wait
 *   (replies stay in order).
 * - time: one timer per client runs the deadline that applies: idle (connected, nothing
 *   asked, nothing owed), request (its first byte to its '\n': a trickler is cut) and write
 *   (we owe replies and it reads none). A client with a pending `wait` has no idle deadline.
 * - slots: CONTROL_CLIENTS_MAX in all, of which CONTROL_ROOT_RESERVED only root (or our own
 *   uid) may take, and CONTROL_UID_MAX for any other one uid: nobody locks the operator out.
 * Reads and writes are non-blocking; a client past a limit is answered (when that is possible)
 * and closed. Every request is parsed with json-c, checked for its shape, and answered with
 * one line; nothing a client sends can make the master block, allocate without bound, or exit.
 *
 * Owner of everything here: the control object; it is freed before the master.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/builtins.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/units.h"
#include "config/config.h"
#include "daemon/control.h"
#include "daemon/ledger.h"

#define CONTROL_CLIENTS_MAX 256 /* connections at once */
#define CONTROL_ROOT_RESERVED 8 /* of those, the last ones: root and our own uid only */
#define CONTROL_UID_MAX (CONTROL_CLIENTS_MAX / 2) /* connections of any other one uid */
#define CONTROL_OUTPUT_MAX (64u * 1024u) /* replies produced ahead of the client's reading */
#define CONTROL_STREAM_SLICE (16u * 1024u) /* of a long reply per turn: streams take turns */
#define CONTROL_STREAM_PRIORITY (SD_EVENT_PRIORITY_NORMAL + 10) /* below all else on the loop */
#define CONTROL_IDLE_TIMEOUT (30 * USEC_PER_SEC) /* connected, nothing asked, nothing owed */
#define CONTROL_REQUEST_TIMEOUT (5 * USEC_PER_SEC) /* a request's first byte to its '\n' */
#define CONTROL_WRITE_TIMEOUT (10 * USEC_PER_SEC) /* replies owed, and not a byte read */
#define CONTROL_TIMER_ACCURACY (50 * USEC_PER_MSEC)
#define CONTROL_DEADLINES_ENV "BULKHEAD_CONTROL_DEADLINES" /* test/debug: "idle=1s write=2s" */
#define REFUSED_LOG_EVERY (10 * USEC_PER_SEC) /* "too many clients" is logged this often */
#define BUFFER_MIN 1024 /* first allocation of an input or output buffer */
#define ACCEPT_RETRY (100 * USEC_PER_MSEC) /* after EMFILE/ENFILE */

/*
 * A pending `wait`: the jobs of the request's ids, or of a group with ids below `end` (its
 * jobs at the time of the request, kept as a range, never as a list). Ended jobs never start
 * again and the ledger is pinned while a wait exists, so one cursor (`pos`) finds when all
 * have ended in O(n) in all.
 */
struct wait {
	uint64_t *ids; /* by ids: as the request listed them */
	size_t n_ids;
	int group; /* by group: its index; -1: by ids */
	uint64_t end;
	uint64_t pos; /* members before it have ended: an index into ids, or a job id */
	uint64_t ended; /* how many (once all have: the total) */
	bool all_expected; /* of those */
	bool done; /* all ended: its reply is being streamed */
	json_object *echo; /* the request's "id", if any */
};

enum stream_kind { STREAM_JOBS, STREAM_SUBMIT, STREAM_WAIT };

/*
 * One reply written as the client reads it: `head` (up to the first list's '['), the items of
 * one list (two for submit: ids, then names), then ']', `extra` members, the echoed "id" and
 * '}'. The text is what json-c would print for the whole object (JSON_C_TO_STRING_PLAIN), so
 * clients cannot tell.
 */
struct stream {
	enum stream_kind kind;
	unsigned part; /* 0: head, 1: first list, 2: second list, 3: the end */
	uint64_t first, next, end; /* jobs, submit: ids [first, end), `next` the cursor */
	uint64_t listed, max; /* items in the current list; jobs: at most `max` */
	int want_state, want_group; /* jobs: the filters, -1 for none */
	uint32_t instance; /* submit: the instance number of id `first` */
	char name[CONFIG_NAME_MAX + 1]; /* submit: the group's name */
	char head[96];
	char extra[96];
	json_object *echo; /* the request's "id", if any */
};

struct client {
	struct control *c;
	struct client *next;
	int fd;
	sd_event_source *io;
	sd_event_source *timer;
	uid_t uid;
	pid_t pid;
	char *in; /* allocated when bytes come, freed once they are used */
	size_t in_len, in_size;
	char *out; /* replies not written yet; likewise */
	size_t out_len, out_size;
	struct stream *stream; /* a reply in progress */
	struct wait *wait; /* a pending wait (and, once done, the source of its reply) */
	const char *refusal; /* to be said, and the client closed, once no reply is in progress */
	usec_t idle_since, request_since, write_since; /* 0: that deadline does not run */
	bool closing; /* close once the output is flushed */
	bool eof; /* it sent all it will: close once nothing more is owed to it */
	bool background; /* its io source is at CONTROL_STREAM_PRIORITY */
};

struct control {
	struct master *m;
	char *path;
	int fd;
	gid_t gid;
	bool have_gid;
	uid_t euid;
	sd_event_source *listen;
	sd_event_source *retry;
	struct client *clients;
	unsigned n_clients;
	struct client *serving; /* the client whose request is being handled */
	sd_event_source *wait_check; /* deferred: re-check pending waits once per loop pass */
	unsigned n_waiting;          /* clients with a pending wait */
	usec_t idle_timeout, request_timeout, write_timeout;
	usec_t refused_logged_at;
	unsigned refused; /* connections refused since then */
	bool accept_failing; /* out of descriptors: accepts retried on a timer */
};

static bool process_lines(struct client *cl);
static void wait_free(struct client *cl);

static void stream_free(struct stream *s)
{
	if (!s)
		return;
	json_object_put(s->echo);
	free(s);
}

static void client_free(struct client *cl)
{
	struct client **pp;

	for (pp = &cl->c->clients; *pp && *pp != cl; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = cl->next;
	cl->c->n_clients--;
	sd_event_source_disable_unref(cl->io);
	sd_event_source_disable_unref(cl->timer);
	close(cl->fd);
	free(cl->in);
	free(cl->out);
	stream_free(cl->stream);
	wait_free(cl);
	free(cl);
}

/* Room for `need` bytes in *buf (of *size), doubling from BUFFER_MIN up to `max` (0: none). */
static int buf_reserve(char **buf, size_t *size, size_t need, size_t max)
{
	size_t n = *size ? *size : BUFFER_MIN;
	char *p;

	if (need <= *size)
		return 0;
	while (n < need)
		n *= 2;
	if (max && n > max && need <= max)
		n = max;
	p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*size = n;
	return 0;
}

static void buf_drop(char **buf, size_t *size)
{
	free(*buf);
	*buf = NULL;
	*size = 0;
}

/* Queues text for the client. False if the client had to go (out of memory). */
static bool client_append(struct client *cl, const char *text, size_t len)
{
	if (buf_reserve(&cl->out, &cl->out_size, cl->out_len + len, 0) < 0) {
		log_warning("control: out of memory for client pid %d: closed", (int)cl->pid);
		client_free(cl);
		return false;
	}
	memcpy(cl->out + cl->out_len, text, len);
	cl->out_len += len;
	return true;
}

/*
 * Queues one reply line (takes the reference to o). False if the client had to go. The
 * output may pass CONTROL_OUTPUT_MAX by this one reply: no later request is read from the
 * input until the client has read it below that again.
 */
static bool client_reply(struct client *cl, json_object *o)
{
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	bool ok = client_append(cl, text, strlen(text)) && client_append(cl, "\n", 1);

	json_object_put(o);
	return ok;
}

static json_object *error_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_object *error_reply(const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "ok", json_object_new_boolean(false));
	json_object_object_add(o, "error", json_object_new_string(text));
	return o;
}

static json_object *ok_reply(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(true));
	return o;
}

static void add_int(json_object *o, const char *key, int64_t v)
{
	json_object_object_add(o, key, json_object_new_int64(v));
}

/* ---- commands ---- */

static json_object *jobs_counts(struct master *m)
{
	struct ledger *l = master_ledger(m);
	const struct ledger_stats *s = ledger_stats(l);
	uint64_t on_threads = master_jobs_on_threads(m), total = ledger_n_jobs(l), ended = 0;
	json_object *o = json_object_new_object();
	static const enum job_state finals[] = { JOB_DONE, JOB_FAILED, JOB_CRASHED, JOB_TIMED_OUT,
						 JOB_CANCELLED };

	add_int(o, "total", (int64_t)total);
	add_int(o, "queued",
		(int64_t)(s->by_state[JOB_QUEUED] + s->by_state[JOB_RUNNING] - on_threads));
	add_int(o, "running", (int64_t)on_threads);
	for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
		add_int(o, job_state_to_string(finals[i]), (int64_t)s->by_state[finals[i]]);
		ended += s->by_state[finals[i]];
	}
	add_int(o, "lost", (int64_t)(total - ended - s->by_state[JOB_QUEUED] -
				     s->by_state[JOB_RUNNING]));
	return o;
}

static json_object *workers_totals(const struct master_stats *ms)
{
	json_object *o = json_object_new_object(), *deaths = json_object_new_object();
	char sig[16];

	add_int(o, "started", (int64_t)ms->workers_started);
	add_int(o, "restarts", (int64_t)ms->restarts);
	add_int(o, "worker_faults", (int64_t)ms->worker_faults);
	add_int(o, "injected", (int64_t)ms->injected);
	for (int i = 1; i < 65; i++)
		if (ms->deaths_by_signal[i])
			add_int(deaths, signal_name(i, sig, sizeof(sig)),
				(int64_t)ms->deaths_by_signal[i]);
	if (ms->deaths_by_exit)
		add_int(deaths, "exit", (int64_t)ms->deaths_by_exit);
	json_object_object_add(o, "deaths", deaths);
	return o;
}

static json_object *pools_array(struct master *m)
{
	json_object *a = json_object_new_array();

	for (unsigned i = 0; i < master_n_pools(m); i++) {
		struct master_pool_info pi;
		json_object *p = json_object_new_object(), *ws = json_object_new_array();

		master_pool_info(m, i, &pi);
		json_object_object_add(p, "name", json_object_new_string(pi.name));
		json_object_object_add(p, "state", json_object_new_string(pi.state));
		add_int(p, "workers_up", pi.workers_up);
		add_int(p, "workers_wanted", pi.workers_wanted);
		add_int(p, "threads", pi.threads);
		add_int(p, "restarts", (int64_t)pi.restarts);
		add_int(p, "worker_faults", (int64_t)pi.worker_faults);
		for (unsigned k = 0; k < pi.n_slots; k++) {
			struct master_worker_info wi;
			json_object *w = json_object_new_object();

			master_worker_info(m, i, k, &wi);
			add_int(w, "slot", wi.slot);
			add_int(w, "pid", wi.pid);
			json_object_object_add(w, "state", json_object_new_string(wi.state));
			json_object_object_add(w, "uptime_seconds",
					       json_object_new_double((double)wi.uptime / 1e6));
			add_int(w, "jobs_running", wi.jobs_running);
			json_object_object_add(w, "last_death",
					       json_object_new_string(wi.last_death));
			json_object_array_add(ws, w);
		}
		json_object_object_add(p, "workers", ws);
		json_object_array_add(a, p);
	}
	return a;
}

static json_object *cmd_status(struct control *c, json_object *req)
{
	struct master *m = c->m;
	const struct master_stats *ms = master_stats(m);
	json_object *o = ok_reply();

	json_object_object_add(o, "version", json_object_new_string(BULKHEAD_VERSION));
	add_int(o, "protocol", CONTROL_PROTOCOL_VERSION);
	add_int(o, "pid", getpid());
	json_object_object_add(o, "uptime_seconds",
			       json_object_new_double((double)(now_usec() - ms->started_at) / 1e6));
	json_object_object_add(o, "ready", json_object_new_boolean(master_is_ready(m)));
	json_object_object_add(o, "stopping", json_object_new_boolean(master_is_stopping(m)));
	json_object_object_add(o, "jobs", jobs_counts(m));
	json_object_object_add(o, "workers", workers_totals(ms));
	json_object_object_add(o, "pools", pools_array(m));
	return o;
}

/* Optional string member; -EINVAL if present and not a string. */
static int get_string(json_object *req, const char *key, const char **ret)
{
	json_object *v;

	*ret = NULL;
	if (!json_object_object_get_ex(req, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	*ret = json_object_get_string(v);
	return 0;
}

/*
 * The state shown to clients: "running" means on a thread, as in `status`; a job assigned to a
 * worker but not started yet is still "queued" there.
 */
static enum job_state visible_state(const struct job *j)
{
	if (j->state == JOB_RUNNING && j->started_at == 0)
		return JOB_QUEUED;
	return (enum job_state)j->state;
}

static json_object *job_object(struct master *m, struct job *j)
{
	struct ledger *l = master_ledger(m);
	const struct group_config *g = ledger_group(l, j->group);
	json_object *o = json_object_new_object();
	char name[64], cause[64], worker[64] = "";

	master_job_worker(m, j, worker, sizeof(worker));
	add_int(o, "id", (int64_t)j->id);
	json_object_object_add(o, "name", json_object_new_string(ledger_job_name(l, j, name,
										   sizeof(name))));
	json_object_object_add(o, "group", json_object_new_string(g->name));
	json_object_object_add(o, "pool", json_object_new_string(master_pool_name(m, g->pool)));
	json_object_object_add(o, "state",
			       json_object_new_string(job_state_to_string(visible_state(j))));
	add_int(o, "attempts", j->attempts);
	add_int(o, "runs", j->runs);
	json_object_object_add(o, "cause",
			       json_object_new_string(ledger_cause_string(j, cause, sizeof(cause))));
	json_object_object_add(o, "worker", json_object_new_string(worker));
	/* What only some jobs have is there only when they have it. */
	if (__builtin_expect(j->flags & JOB_HAS_INPUT || j->extra, 0)) {
		const char *input = ledger_job_input(l, j), *result = ledger_job_result(l, j);
		int progress = visible_state(j) == JOB_RUNNING ? ledger_job_progress(l, j) : -1;

		if (input)
			json_object_object_add(o, "input", json_object_new_string(input));
		if (result)
			json_object_object_add(o, "result", json_object_new_string(result));
		if (progress >= 0) {
			char text[16];

			snprintf(text, sizeof(text), "%d.%03d", progress / 1000, progress % 1000);
			json_object_object_add(o, "progress",
					       json_object_new_double_s((double)progress / 1000,
									text));
		}
	}
	return o;
}

static bool job_matches(const struct job *j, int want_state, int want_group)
{
	return (want_state < 0 || visible_state(j) == (enum job_state)want_state) &&
	       (want_group < 0 || j->group == (unsigned)want_group);
}

/* A stream of `kind` for the client being served; NULL when out of memory. */
static struct stream *stream_new(struct control *c, enum stream_kind kind)
{
	struct stream *s = calloc(1, sizeof(*s));

	assert(c->serving && !c->serving->stream && !c->serving->wait);
	if (!s)
		return NULL;
	s->kind = kind;
	c->serving->stream = s;
	return s;
}

/*
 * Streamed (struct stream): when its turn comes, "total_matching" is counted, then the list is
 * written as the client reads it: in id order up to the last id there was at the request,
 * each job as it is then and only if it still matches, at most min(limit, total_matching).
 * Returns NULL when the stream is set up, or an error reply.
 */
static json_object *cmd_jobs(struct control *c, json_object *req)
{
	struct ledger *l = master_ledger(c->m);
	const char *state = NULL, *group = NULL;
	int64_t limit = CONTROL_JOBS_LIMIT_DEFAULT;
	int want_state = -1, want_group = -1;
	struct stream *s;
	json_object *v;

	if (get_string(req, "state", &state) < 0 || get_string(req, "group", &group) < 0)
		return error_reply("state and group must be strings");
	if (state && (want_state = job_state_from_string(state)) < 0)
		return error_reply("unknown state '%s'", state);
	if (group && (want_group = ledger_find_group(l, group)) < 0)
		return error_reply("no job group '%s'", group);
	if (json_object_object_get_ex(req, "limit", &v)) {
		if (!json_object_is_type(v, json_type_int))
			return error_reply("limit must be an integer");
		limit = json_object_get_int64(v);
		if (limit < 1 || limit > CONTROL_JOBS_LIMIT_MAX)
			return error_reply("limit must be 1..%d", CONTROL_JOBS_LIMIT_MAX);
	}
	s = stream_new(c, STREAM_JOBS);
	if (!s)
		return error_reply("out of memory");
	s->first = s->next = 1;
	s->end = ledger_n_jobs(l) + 1;
	s->max = (uint64_t)limit;
	s->want_state = want_state;
	s->want_group = want_group;
	return NULL;
}

/* The head of a jobs reply, with the count of the jobs that match now; the limit cut to it. */
static void jobs_head(struct ledger *l, struct stream *s)
{
	uint64_t matching = 0;

	for (uint64_t id = 1; id < s->end; id++) {
		struct job *j = ledger_job(l, id);

		if (j && job_matches(j, s->want_state, s->want_group)) /* NULL: forgotten */
			matching++;
	}
	if (matching < s->max)
		s->max = matching;
	snprintf(s->head, sizeof(s->head), "{\"ok\":true,\"total_matching\":%llu,\"jobs\":[",
		 (unsigned long long)matching);
}

static json_object *cmd_reload(struct control *c, json_object *req)
{
	char *errors = NULL;
	int r = master_reload(c->m, &errors);
	json_object *o;

	if (r >= 0)
		return ok_reply();
	o = error_reply("reload failed, the running config stays:\n%s",
			errors ? errors : strerror(-r));
	free(errors);
	return o;
}

static json_object *cmd_log_level(struct control *c, json_object *req)
{
	const char *level = NULL;
	json_object *o;
	int l;

	if (get_string(req, "level", &level) < 0 || !level)
		return error_reply("log-level needs \"level\": " LOG_LEVEL_NAMES("|"));
	l = log_level_from_name(level);
	if (l < 0)
		return error_reply("unknown log level '%s' (" LOG_LEVEL_NAMES("|") ")", level);
	log_set_max_level(l);
	log_notice("control: log level set to %s", level);
	o = ok_reply();
	json_object_object_add(o, "level", json_object_new_string(level));
	return o;
}

/* ---- submit, cancel, wait ---- */

/* Integer member in [min, max], default def if absent. -EINVAL otherwise. */
static int get_int(json_object *req, const char *key, int64_t min, int64_t max, int64_t def,
		   int64_t *ret)
{
	json_object *v;

	*ret = def;
	if (!json_object_object_get_ex(req, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return -EINVAL;
	*ret = json_object_get_int64(v);
	return *ret >= min && *ret <= max ? 0 : -EINVAL;
}

/*
 * base args ("k=v k=v") with the request's "args" object laid over them, into buf. Values
 * are strings or numbers without whitespace. Returns 0 or -EINVAL with a reason.
 */
static int merge_args(const char *base, json_object *req, char *buf, size_t size,
		      const char **ret_error)
{
	json_object *args;
	size_t len = 0;
	char *copy, *save = NULL;

	buf[0] = '\0';
	if (!json_object_object_get_ex(req, "args", &args)) {
		snprintf(buf, size, "%s", base);
		return 0;
	}
	if (!json_object_is_type(args, json_type_object)) {
		*ret_error = "args must be an object of key: value";
		return -EINVAL;
	}
	copy = strdup(base);
	if (!copy)
		return -ENOMEM;
	/* Base pairs the request does not override. */
	for (char *kv = strtok_r(copy, " \t", &save); kv; kv = strtok_r(NULL, " \t", &save)) {
		size_t klen = strcspn(kv, "=");
		char key[128];

		snprintf(key, sizeof(key), "%.*s", (int)klen, kv);
		if (!json_object_object_get_ex(args, key, NULL))
			len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%s",
						len ? " " : "", kv);
	}
	free(copy);
	json_object_object_foreach(args, key, val)
	{
		const char *v;

		if (!json_object_is_type(val, json_type_string) &&
		    !json_object_is_type(val, json_type_int) &&
		    !json_object_is_type(val, json_type_double)) {
			*ret_error = "an argument value must be a string or a number";
			return -EINVAL;
		}
		v = json_object_get_string(val);
		if (!*key || strpbrk(key, " \t\n\r=") || strpbrk(v, " \t\n\r")) {
			*ret_error = "argument keys and values may not contain spaces or '='";
			return -EINVAL;
		}
		len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%s=%s",
					len ? " " : "", key, v);
	}
	if (len >= size) {
		*ret_error = "args too long";
		return -EINVAL;
	}
	return 0;
}

/*
 * {"ok":true,"ids":[...],"jobs":[...]} for jobs first .. first + count - 1, streamed (up to
 * 100000 ids and names). One submit adds one group's instances in a row, so the names are
 * the group's name and consecutive instance numbers, known now: the stream needs neither the
 * jobs nor the group later, when they may have been forgotten. Returns NULL (streamed) or an
 * error reply.
 */
static json_object *submitted_reply(struct control *c, uint64_t first, unsigned count)
{
	struct ledger *l = master_ledger(c->m);
	const struct job *j = ledger_job(l, first);
	struct stream *s;

	assert(j && ledger_job(l, first + count - 1));
	s = stream_new(c, STREAM_SUBMIT);
	if (!s)
		return error_reply("out of memory (the jobs were submitted)");
	s->first = s->next = first;
	s->end = first + count;
	s->instance = j->instance;
	snprintf(s->name, sizeof(s->name), "%s", ledger_group(l, j->group)->name);
	snprintf(s->head, sizeof(s->head), "{\"ok\":true,\"ids\":[");
	return NULL;
}

/*
 * The request's "inputs" (an array of absolute paths, 1..CONTROL_SUBMIT_MAX) into a malloc'd
 * array of pointers into req; none: *ret_n = 0. Returns an error reply, or NULL.
 */
static json_object *read_inputs(json_object *req, const char ***ret, size_t *ret_n)
{
	json_object *a;
	size_t n;

	*ret = NULL;
	*ret_n = 0;
	if (!json_object_object_get_ex(req, "inputs", &a))
		return NULL;
	if (!json_object_is_type(a, json_type_array))
		return error_reply("\"inputs\" must be an array of paths");
	n = json_object_array_length(a);
	if (n == 0 || n > CONTROL_SUBMIT_MAX)
		return error_reply("between 1 and %d inputs", CONTROL_SUBMIT_MAX);
	*ret = calloc(n, sizeof(char *));
	if (!*ret)
		return error_reply("out of memory");
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(a, i);
		const char *p = json_object_is_type(v, json_type_string) ? json_object_get_string(v)
									 : NULL;

		if (!p || p[0] != '/' || strlen(p) > BH_INPUT_MAX) {
			free(*ret);
			*ret = NULL;
			return error_reply("input %zu: expected an absolute path of at most %u bytes",
					   i + 1, BH_INPUT_MAX);
		}
		(*ret)[i] = p;
	}
	*ret_n = n;
	return NULL;
}

/*
 * What a configured group takes from submit (gc, group `name`), or an error reply: a spool
 * group takes its files only from its directory; an `inputs =` group needs inputs; builtin
 * jobs have no use for one.
 */
static json_object *check_group_submit(const struct group_config *gc, size_t n_inputs)
{
	if (gc->spool && *gc->spool)
		return error_reply("group %s takes its jobs from its spool directory %s: put the "
				   "files there", gc->name, gc->spool);
	if (gc->inputs && *gc->inputs && n_inputs == 0)
		return error_reply("group %s runs one job per input file (inputs = %s): give the "
				   "files to submit (--input FILE)", gc->name, gc->inputs);
	if (n_inputs > 0 && gc->kind == JOB_KIND_BUILTIN)
		return error_reply("group %s runs %s, which takes no input file", gc->name, gc->run);
	return NULL;
}

static json_object *cmd_submit(struct control *c, json_object *req)
{
	struct master *m = c->m;
	struct ledger *l = master_ledger(m);
	const char *group = NULL, *pool = NULL, *run = NULL, *error = NULL, **inputs = NULL;
	struct group_config gc = { 0 };
	char args[2048], err[256];
	json_object *o;
	uint64_t first;
	size_t n_inputs;
	int64_t count;
	int r, b;

	if (get_string(req, "group", &group) < 0 || get_string(req, "pool", &pool) < 0 ||
	    get_string(req, "run", &run) < 0)
		return error_reply("group, pool and run must be strings");
	if (get_int(req, "count", 1, CONTROL_SUBMIT_MAX, 1, &count) < 0)
		return error_reply("count must be an integer 1..%d", CONTROL_SUBMIT_MAX);
	if (group && (pool || run))
		return error_reply("submit either a configured group, or a pool and a run");
	o = read_inputs(req, &inputs, &n_inputs);
	if (o)
		return o;
	if (n_inputs > 0 && json_object_object_get_ex(req, "count", NULL)) {
		o = error_reply("give a count or inputs, not both (one job per input)");
		goto out;
	}
	if (group) {
		int gi = ledger_find_group(l, group);

		if (gi < 0) {
			o = error_reply("no job group '%s'", group);
			goto out;
		}
		gc = *ledger_group(l, (unsigned)gi);
		if (!master_pool_accepts(m, gc.pool)) {
			o = error_reply("pool %s takes no jobs now", master_pool_name(m, gc.pool));
			goto out;
		}
		o = check_group_submit(&gc, n_inputs);
		if (o)
			goto out;
		if (!json_object_object_get_ex(req, "args", NULL)) {
			/* More jobs of the group itself, numbered on. */
			if (n_inputs > 0)
				r = master_add_input_jobs(m, (unsigned)gi, (char *const *)inputs,
							  n_inputs, &first);
			else
				r = master_add_jobs(m, (unsigned)gi, (unsigned)count, &first);
			o = r < 0 ? error_reply("cannot submit: %s", strerror(-r))
				  : submitted_reply(c, first, (unsigned)(n_inputs ? n_inputs : (size_t)count));
			goto out;
		}
	} else {
		int pi = -1;

		if (!pool || !run) {
			o = error_reply("submit needs \"group\", or \"pool\" and \"run\"");
			goto out;
		}
		for (unsigned i = 0; i < master_n_pools(m); i++)
			if (strcmp(master_pool_name(m, i), pool) == 0 && master_pool_accepts(m, i))
				pi = (int)i;
		if (pi < 0) {
			o = error_reply("no pool '%s' that takes jobs", pool);
			goto out;
		}
		/* Only builtins: a client may not name a command or a library to run. */
		if (strncmp(run, "builtin:", 8) != 0 || bh_builtin_lookup(run + 8) < 0) {
			o = error_reply("run must be builtin:NAME with a known builtin");
			goto out;
		}
		if (n_inputs > 0) {
			o = error_reply("%s takes no input file", run);
			goto out;
		}
		gc.pool = (unsigned)pi;
		gc.run = (char *)run;
		gc.kind = JOB_KIND_BUILTIN;
		gc.args = (char *)"";
		gc.output = (char *)"";
		gc.timeout = 60 * USEC_PER_SEC;
		gc.max_attempts = 3;
		gc.expect = JOB_DONE;
	}
	r = merge_args(gc.args, req, args, sizeof(args), &error);
	if (r < 0) {
		o = error_reply("%s", error ? error : strerror(-r));
		goto out;
	}
	/* Builtins check their arguments; commands and plugins read theirs ({arg:KEY}). */
	if (gc.kind == JOB_KIND_BUILTIN && (b = bh_builtin_lookup(gc.run + 8)) >= 0 &&
	    bh_builtin_check_args((enum bh_builtin)b, args, err, sizeof(err)) < 0) {
		o = error_reply("args: %s", err);
		goto out;
	}
	/* A variant of a group (or an ad hoc run) is a group of its own: NAME@N. */
	gc.args = args;
	r = master_add_variant(m, &gc, group ? gc.name : gc.run + 8, (unsigned)count,
			       (char *const *)inputs, n_inputs, &first);
	o = r < 0 ? error_reply("cannot submit: %s", strerror(-r))
		  : submitted_reply(c, first, (unsigned)(n_inputs ? n_inputs : (size_t)count));
out:
	free(inputs);
	return o;
}

/* Job ids from the request's "ids" array into a malloc'd array. */
static json_object *read_ids(struct ledger *l, json_object *req, uint64_t **ret, size_t *ret_n)
{
	json_object *ids;
	size_t n;

	if (!json_object_object_get_ex(req, "ids", &ids) ||
	    !json_object_is_type(ids, json_type_array))
		return error_reply("\"ids\" must be an array of job ids");
	n = json_object_array_length(ids);
	if (n == 0 || n > CONTROL_JOBS_LIMIT_MAX)
		return error_reply("between 1 and %d ids", CONTROL_JOBS_LIMIT_MAX);
	*ret = calloc(n, sizeof(uint64_t));
	if (!*ret)
		return error_reply("out of memory");
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(ids, i);
		int64_t id = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;

		if (!ledger_job(l, (uint64_t)(id > 0 ? id : 0))) {
			bool gone = ledger_job_forgotten(l, (uint64_t)(id > 0 ? id : 0));

			free(*ret);
			*ret = NULL;
			if (gone)
				return error_reply("job %s ended and was forgotten (keep_ended)",
						   json_object_to_json_string(v));
			return error_reply("no job with id %s", json_object_to_json_string(v));
		}
		(*ret)[i] = (uint64_t)id;
	}
	*ret_n = n;
	return NULL;
}

static json_object *cmd_cancel(struct control *c, json_object *req)
{
	struct ledger *l = master_ledger(c->m);
	json_object *o, *done, *not_done, *asked;
	uint64_t *ids = NULL;
	size_t n = 0;

	o = read_ids(l, req, &ids, &n);
	if (o)
		return o;
	o = ok_reply();
	done = json_object_new_array();
	not_done = json_object_new_array();
	asked = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		struct job *j = ledger_job(l, ids[i]);
		int r = master_cancel_job(c->m, j);

		if (r == 0) {
			json_object_array_add(done, json_object_new_int64((int64_t)ids[i]));
		} else if (r > 0) {
			json_object_array_add(asked, json_object_new_int64((int64_t)ids[i]));
		} else {
			json_object *e = json_object_new_object();

			add_int(e, "id", (int64_t)ids[i]);
			json_object_object_add(e, "state", json_object_new_string(
								   job_state_to_string(j->state)));
			json_object_array_add(not_done, e);
		}
	}
	free(ids);
	json_object_object_add(o, "cancelled", done);
	/* Running: told to stop; they end cancelled, or done if they finish anyway. */
	json_object_object_add(o, "cancelling", asked);
	json_object_object_add(o, "not_cancelled", not_done);
	return o;
}

/* ---- wait ---- */

/* The next member of w at or after *pos (which moves past it), or NULL after the last. */
static struct job *wait_next(struct ledger *l, const struct wait *w, uint64_t *pos)
{
	if (w->group < 0) {
		while (*pos < w->n_ids) {
			struct job *j = ledger_job(l, w->ids[(*pos)++]);

			if (j) /* always: the ledger is pinned */
				return j;
		}
		return NULL;
	}
	while (*pos < w->end) {
		struct job *j = ledger_job(l, (*pos)++);

		if (j && j->group == (unsigned)w->group) /* forgotten ones had ended before */
			return j;
	}
	return NULL;
}

static bool job_met(struct ledger *l, const struct job *j)
{
	return j->state == ledger_group(l, j->group)->expect;
}

/*
 * Moves w's cursor over the members that have ended; true once all have. Ended jobs never
 * start again, so a wait for n jobs costs O(n) in all, not O(n) per job that ends.
 */
static bool wait_finished(struct ledger *l, struct wait *w)
{
	for (;;) {
		uint64_t pos = w->pos;
		struct job *j = wait_next(l, w, &pos);

		if (!j)
			return true;
		if (!job_state_is_final(j->state))
			return false;
		w->pos = pos;
		w->ended++;
		w->all_expected &= job_met(l, j);
	}
}

static void wait_free(struct client *cl)
{
	struct wait *w = cl->wait;

	if (!w)
		return;
	if (!w->done)
		cl->c->n_waiting--;
	ledger_pin(master_ledger(cl->c->m), false);
	master_collect_soon(cl->c->m);
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
		client_free(cl);
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
	cl->stream = s;
	return true;
}

static void client_pump(struct client *cl, bool turn);

/* Answers every wait whose jobs have all ended; those clients go on with their requests. */
static int on_wait_check(sd_event_source *s, void *userdata)
{
	struct control *c = userdata;
	struct client *cl = c->clients, *next;

	for (; cl; cl = next) {
		next = cl->next;
		if (!cl->wait || cl->wait->done || !wait_finished(master_ledger(c->m), cl->wait))
			continue;
		cl->wait->done = true;
		c->n_waiting--;
		if (wait_reply(cl))
			client_pump(cl, false);
	}
	return 0;
}

/* Called for every job that ends: cheap unless some client is waiting. */
static void on_job_end(void *userdata, struct job *j)
{
	struct control *c = userdata;

	if (c->n_waiting > 0)
		sd_event_source_set_enabled(c->wait_check, SD_EVENT_ONESHOT);
}

/*
 * Sets the client being served up to wait; returns NULL (on_wait_check answers later) or an
 * error reply.
 */
static json_object *cmd_wait(struct control *c, json_object *req)
{
	struct client *cl = c->serving;
	struct ledger *l = master_ledger(c->m);
	const char *group = NULL;
	struct wait *w;
	json_object *err, *echo;

	if (get_string(req, "group", &group) < 0)
		return error_reply("group must be a string");
	w = calloc(1, sizeof(*w));
	if (!w)
		return error_reply("out of memory");
	w->all_expected = true;
	w->group = -1;
	if (group) {
		int g = ledger_find_group(l, group);

		if (g < 0) {
			free(w);
			return error_reply("no job group '%s'", group);
		}
		/* The group's jobs now: those with ids below the next one. */
		w->group = g;
		w->pos = 1;
		w->end = ledger_n_jobs(l) + 1;
	} else {
		err = read_ids(l, req, &w->ids, &w->n_ids);
		if (err) {
			free(w);
			return err;
		}
	}
	if (json_object_object_get_ex(req, "id", &echo))
		w->echo = json_object_get(echo);
	cl->wait = w;
	ledger_pin(l, true); /* the jobs waited for stay known until the reply is out */
	c->n_waiting++;
	sd_event_source_set_enabled(c->wait_check, SD_EVENT_ONESHOT);
	return NULL;
}

/* ---- streamed replies ---- */

static json_object *wait_entry(struct ledger *l, struct job *j, bool met)
{
	json_object *e = json_object_new_object();
	char name[64], cause[64];

	add_int(e, "id", (int64_t)j->id);
	json_object_object_add(e, "name",
			       json_object_new_string(ledger_job_name(l, j, name, sizeof(name))));
	json_object_object_add(e, "state", json_object_new_string(job_state_to_string(j->state)));
	json_object_object_add(
		e, "cause", json_object_new_string(ledger_cause_string(j, cause, sizeof(cause))));
	json_object_object_add(e, "expected", json_object_new_boolean(met));
	return e;
}

/* The next item of the stream's current list, or NULL after its last. */
static json_object *stream_item(struct client *cl, struct stream *s)
{
	struct master *m = cl->c->m;
	struct ledger *l = master_ledger(m);
	char name[CONFIG_NAME_MAX + 16];
	struct job *j;

	switch (s->kind) {
	case STREAM_JOBS:
		while (s->listed < s->max && s->next < s->end) {
			j = ledger_job(l, s->next++);
			if (j && job_matches(j, s->want_state, s->want_group))
				return job_object(m, j);
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
		while (s->listed < CONTROL_WAIT_LIST_MAX && (j = wait_next(l, cl->wait, &s->next))) {
			bool met = job_met(l, j);

			if (cl->wait->ended > CONTROL_WAIT_LIST_MAX && met)
				continue; /* truncated: the unexpected ones only */
			return wait_entry(l, j, met);
		}
		return NULL;
	}
	return NULL;
}

/*
 * Writes the stream's next pieces into the output: a slice of CONTROL_STREAM_SLICE (so that
 * many long replies and everyone else's requests take turns on the loop), no further than
 * CONTROL_OUTPUT_MAX, or to the end of the reply; then the stream (and a finished wait) are
 * freed. False if the client had to go.
 */
static bool stream_fill(struct client *cl)
{
	struct stream *s = cl->stream;
	size_t stop = cl->out_len + CONTROL_STREAM_SLICE;
	const char *text;

	while (cl->out_len < CONTROL_OUTPUT_MAX && cl->out_len < stop) {
		json_object *item;
		bool ok;

		if (s->part == 0) {
			if (s->kind == STREAM_JOBS)
				jobs_head(master_ledger(cl->c->m), s);
			if (!client_append(cl, s->head, strlen(s->head)))
				return false;
			s->part = 1;
			continue;
		}
		if (s->part == 3)
			break;
		item = stream_item(cl, s);
		if (item) {
			text = json_object_to_json_string_ext(item, JSON_C_TO_STRING_PLAIN);
			ok = (s->listed++ == 0 || client_append(cl, ",", 1)) &&
			     client_append(cl, text, strlen(text));
			json_object_put(item);
			if (!ok)
				return false;
		} else if (s->kind == STREAM_SUBMIT && s->part == 1) {
			if (!client_append(cl, "],\"jobs\":[", 10))
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
	if (!client_append(cl, "]", 1) || !client_append(cl, s->extra, strlen(s->extra)) ||
	    (text &&
	     (!client_append(cl, ",\"id\":", 6) || !client_append(cl, text, strlen(text)))) ||
	    !client_append(cl, "}\n", 2))
		return false;
	stream_free(s);
	cl->stream = NULL;
	if (cl->wait && cl->wait->done)
		wait_free(cl);
	return true;
}

/* "POOL" or "POOL/INDEX" -> pool index and slot (-1: all). */
static int parse_target(struct master *m, const char *target, unsigned *ret_pool, int *ret_slot)
{
	const char *slash = strchr(target, '/');
	size_t len = slash ? (size_t)(slash - target) : strlen(target);
	uint64_t slot;

	*ret_slot = -1;
	if (slash && parse_uint(slash + 1, 0, 65535, &slot) < 0)
		return -EINVAL;
	if (slash)
		*ret_slot = (int)slot;
	for (unsigned i = 0; i < master_n_pools(m); i++) {
		const char *name = master_pool_name(m, i);

		if (strlen(name) == len && strncmp(name, target, len) == 0 &&
		    master_pool_accepts(m, i)) {
			*ret_pool = i;
			return 0;
		}
	}
	return -ENOENT;
}

static json_object *cmd_restart(struct control *c, json_object *req)
{
	const char *target = NULL;
	unsigned pool;
	int slot, r;
	json_object *o;

	if (get_string(req, "target", &target) < 0 || !target)
		return error_reply("restart needs \"target\": POOL or POOL/INDEX");
	if (parse_target(c->m, target, &pool, &slot) < 0)
		return error_reply("no pool or worker '%s' that is up", target);
	r = master_restart(c->m, pool, slot);
	if (r == -ENOENT)
		return error_reply("pool %s has no worker slot %d", master_pool_name(c->m, pool),
				   slot);
	if (r < 0)
		return error_reply("cannot restart %s: %s", target, strerror(-r));
	o = ok_reply();
	add_int(o, "replacing", r);
	return o;
}

static json_object *cmd_inject(struct control *c, json_object *req)
{
	const char *target = NULL, *fault = NULL;
	char worker[64];
	unsigned pool;
	pid_t pid = 0;
	int slot, r;
	json_object *o;

	if (get_string(req, "target", &target) < 0 || !target || get_string(req, "fault", &fault) < 0 ||
	    !fault)
		return error_reply("inject needs \"target\" (POOL or POOL/INDEX) and \"fault\" "
				   "(" CONTROL_FAULT_NAMES("|") ")");
	if (parse_target(c->m, target, &pool, &slot) < 0)
		return error_reply("no pool or worker '%s' that is up", target);
	r = master_inject(c->m, pool, slot, fault, worker, sizeof(worker), &pid);
	switch (r) {
	case 0:
		break;
	case -EINVAL:
		return error_reply("unknown fault '%s' (" CONTROL_FAULT_NAMES("|") ")", fault);
	case -EDOM:
		return error_reply("inject leak needs memory_max on pool %s (it would eat the "
				   "machine's memory)",
				   master_pool_name(c->m, pool));
	case -ENOENT:
		return error_reply("pool %s has no worker slot %d", master_pool_name(c->m, pool),
				   slot);
	case -EBUSY:
		return error_reply("no ready worker at %s right now", target);
	default:
		return error_reply("cannot inject into %s: %s", target, strerror(-r));
	}
	o = ok_reply();
	json_object_object_add(o, "worker", json_object_new_string(worker));
	add_int(o, "pid", pid);
	json_object_object_add(o, "fault", json_object_new_string(fault));
	return o;
}

/* A command's handler: its reply, or NULL when the reply comes later (a stream, a wait). */
typedef json_object *command_fn(struct control *c, json_object *req);

/* The requests of common/control-proto.h, each with its handler cmd_<id>. */
#define COMMAND_ENTRY(id, name, kind, ...) CONTROL_IF_##kind({ name, cmd_##id },)
static const struct {
	const char *name;
	command_fn *fn;
} commands[] = { CONTROL_COMMANDS(COMMAND_ENTRY) };
#undef COMMAND_ENTRY

/* req passed control_parse_request(): an object with a string command. */
static json_object *dispatch(struct control *c, json_object *req)
{
	const char *name = control_request_command(req);

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return commands[i].fn(c, req);
	return error_reply("unknown command '%.64s'", name);
}

/* One complete line. Returns false if the client had to go. */
static bool handle_line(struct client *cl, const char *line, size_t len)
{
	struct control *c = cl->c;
	json_object *req, *reply, *id = NULL;
	const char *error = NULL;

	if (control_parse_request(line, len, &req, &error) < 0)
		return client_reply(cl, error_reply("%s", error));
	json_object_object_get_ex(req, "id", &id);
	c->serving = cl;
	reply = dispatch(c, req); /* NULL: a stream set up on cl, or a wait (it keeps the id) */
	c->serving = NULL;
	if (!reply && id && cl->stream)
		cl->stream->echo = json_object_get(id);
	if (reply && id)
		json_object_object_add(reply, "id", json_object_get(id));
	json_object_put(req);
	return !reply || client_reply(cl, reply);
}

/* ---- I/O ---- */

/* No request is taken from the input: a reply is in progress or owed, or the output is full. */
static bool client_held(const struct client *cl)
{
	return cl->stream || cl->wait || cl->refusal || cl->out_len >= CONTROL_OUTPUT_MAX;
}

/* We read from it: not closing or at EOF, and the input has room. */
static bool client_reading(const struct client *cl)
{
	return !cl->closing && !cl->eof && !cl->refusal && cl->in_len <= CONTROL_REQUEST_MAX;
}

/* Every complete line in the input, in order, while nothing holds them back. */
static bool process_lines(struct client *cl)
{
	char *nl;

	while (!client_held(cl) && cl->in_len > 0 && (nl = memchr(cl->in, '\n', cl->in_len))) {
		size_t len = (size_t)(nl - cl->in);

		if (!handle_line(cl, cl->in, len))
			return false;
		memmove(cl->in, nl + 1, cl->in_len - len - 1);
		cl->in_len -= len + 1;
		cl->request_since = 0; /* the next request's deadline starts with it */
	}
	if (cl->in_len == 0)
		buf_drop(&cl->in, &cl->in_size);
	return true;
}

/* recvmsg that closes any passed fds. Returns bytes, 0 at EOF, -errno, or -EBADMSG for fds. */
static ssize_t client_recv(struct client *cl, char *buf, size_t size)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 16)];
	} control;
	struct iovec iov = { buf, size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
			     .msg_controllen = sizeof(control) };
	bool had_fds = false;
	ssize_t n;

	n = recvmsg(cl->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int *fds = (int *)CMSG_DATA(cm);
			size_t nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (size_t i = 0; i < nfds; i++)
				close(fds[i]);
			had_fds = true;
		}
	}
	if (had_fds || (mh.msg_flags & MSG_CTRUNC))
		return -EBADMSG;
	return n;
}

/* Says `why` and closes, once no reply is in progress; nothing more is read. */
static void client_refuse(struct client *cl, const char *why)
{
	cl->refusal = why;
	cl->in_len = 0;
	buf_drop(&cl->in, &cl->in_size);
}

/* Takes in what the client sent, up to a request line beyond what waits. False if it went. */
static bool client_read(struct client *cl)
{
	static char scratch[CONTROL_REQUEST_MAX + 1]; /* so a byte costs a byte, not a buffer */

	while (client_reading(cl)) {
		ssize_t n = client_recv(cl, scratch, CONTROL_REQUEST_MAX + 1 - cl->in_len);

		if (n == -EAGAIN || n == -EINTR)
			break;
		if (n == -EBADMSG) {
			log_warning("control: client pid %d uid %u passed file descriptors: refused",
				    (int)cl->pid, (unsigned)cl->uid);
			client_refuse(cl, "file descriptors are not accepted");
			break;
		}
		if (n == 0) {
			/* A half-close (shutdown(SHUT_WR)) still gets the replies it asked for. */
			cl->eof = true;
			break;
		}
		if (n < 0 || buf_reserve(&cl->in, &cl->in_size, cl->in_len + (size_t)n,
					 CONTROL_REQUEST_MAX + 1) < 0) {
			client_free(cl);
			return false;
		}
		memcpy(cl->in + cl->in_len, scratch, (size_t)n);
		cl->in_len += (size_t)n;
	}
	return true;
}

/* Writes what the socket takes. False if the client is gone (freed). */
static bool client_write(struct client *cl)
{
	size_t done = 0;

	while (done < cl->out_len) {
		ssize_t n = send(cl->fd, cl->out + done, cl->out_len - done,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			client_free(cl);
			return false;
		}
		done += (size_t)n;
	}
	if (done > 0) {
		memmove(cl->out, cl->out + done, cl->out_len - done);
		cl->out_len -= done;
		cl->write_since = 0; /* it reads: the write deadline starts over */
	}
	if (cl->out_len == 0 && !cl->stream)
		buf_drop(&cl->out, &cl->out_size);
	return true;
}

/*
 * Produces what the output has room for: a slice of the reply in progress if this is its
 * turn, a refusal, then the requests waiting in the input, in order. False if the client had
 * to go.
 */
static bool client_produce(struct client *cl, bool turn)
{
	for (;;) {
		if (cl->stream) {
			if (!turn)
				return true; /* on a turn of its own, at CONTROL_STREAM_PRIORITY */
			if (!stream_fill(cl))
				return false;
			if (cl->stream)
				return true; /* the rest on a later turn, once there is room */
			turn = false; /* one slice a turn, also across replies */
		}
		if (cl->refusal) {
			json_object *o = error_reply("%s", cl->refusal);

			wait_free(cl); /* a pending wait goes with the client */
			cl->refusal = NULL;
			cl->closing = true;
			return client_reply(cl, o);
		}
		if (cl->closing)
			return true;
		if (!process_lines(cl))
			return false;
		if (cl->stream)
			continue;
		/* Nothing holds the input back and it has no '\n': a line longer than allowed. */
		if (!client_held(cl) && cl->in_len > CONTROL_REQUEST_MAX) {
			client_refuse(cl, "request too long");
			continue;
		}
		return true;
	}
}

/*
 * Arms the deadline that applies: `write` while replies are owed (from the last time the
 * client took some: the socket's buffer may hold what it has not read, so an empty output
 * with a reply in progress counts too), `request` while the client owes the rest of a line
 * (from when it started), `idle` while nothing is owed either way and no wait is pending. A
 * pending wait alone has none: the client is waiting on us.
 */
static void client_rearm(struct client *cl)
{
	struct control *c = cl->c;
	usec_t now = now_usec(), when = USEC_INFINITY;
	bool owed = cl->out_len > 0 || cl->stream;
	bool owing = cl->in_len > 0 && !client_held(cl) && !cl->closing;
	bool idle = !owed && cl->in_len == 0 && !cl->wait && !cl->closing && !cl->eof;

	cl->write_since = owed ? (cl->write_since ? cl->write_since : now) : 0;
	cl->request_since = owing ? (cl->request_since ? cl->request_since : now) : 0;
	cl->idle_since = idle ? (cl->idle_since ? cl->idle_since : now) : 0;
	if (cl->write_since && cl->write_since + c->write_timeout < when)
		when = cl->write_since + c->write_timeout;
	if (cl->request_since && cl->request_since + c->request_timeout < when)
		when = cl->request_since + c->request_timeout;
	if (cl->idle_since && cl->idle_since + c->idle_timeout < when)
		when = cl->idle_since + c->idle_timeout;
	if (when == USEC_INFINITY) {
		sd_event_source_set_enabled(cl->timer, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(cl->timer, when);
	sd_event_source_set_enabled(cl->timer, SD_EVENT_ONESHOT);
}

static int on_client_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct client *cl = userdata;
	struct control *c = cl->c;
	usec_t now = now_usec();
	char took[32], line[128];

	if (cl->write_since && now >= cl->write_since + c->write_timeout) {
		log_info("control: client pid %d uid %u does not read its replies: closed (nothing "
			 "read in %s)",
			 (int)cl->pid, (unsigned)cl->uid,
			 format_duration(took, sizeof(took), c->write_timeout));
	} else if (cl->request_since && now >= cl->request_since + c->request_timeout) {
		format_duration(took, sizeof(took), c->request_timeout);
		log_info("control: client pid %d uid %u: request not complete within %s: closed",
			 (int)cl->pid, (unsigned)cl->uid, took);
		/* Nothing else is owed to it, so this line is the reply to its half request. */
		snprintf(line, sizeof(line),
			 "{\"ok\":false,\"error\":\"request not complete within %s\"}\n", took);
		(void)!send(cl->fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);
	} else if (cl->idle_since && now >= cl->idle_since + c->idle_timeout) {
		/* No line: one that nobody asked for could be taken as the reply to a request
		 * crossing it on the way. A close between requests is the protocol's "connect
		 * again". */
		log_info("control: client pid %d uid %u: idle for %s: closed", (int)cl->pid,
			 (unsigned)cl->uid, format_duration(took, sizeof(took), c->idle_timeout));
	} else {
		client_rearm(cl); /* woken early */
		return 0;
	}
	client_free(cl);
	return 0;
}

/* Closes a client that is done with, else sets its events and its deadline. */
static void client_settle(struct client *cl)
{
	bool owed = cl->out_len > 0 || cl->stream;

	if (!owed && (cl->closing || (cl->eof && !cl->wait))) {
		client_free(cl);
		return;
	}
	/*
	 * EPOLLOUT while replies wait to be written; EPOLLIN only while we read: level-triggered
	 * input we do not read would spin the loop. A long reply is written below everything
	 * else on the loop (workers, accepts, other clients' requests): 100 of them do not delay
	 * a `status`.
	 */
	sd_event_source_set_io_events(cl->io,
				      (owed ? EPOLLOUT : 0) | (client_reading(cl) ? EPOLLIN : 0));
	if (cl->background != (cl->stream != NULL)) {
		cl->background = cl->stream != NULL;
		sd_event_source_set_priority(cl->io, cl->background ? CONTROL_STREAM_PRIORITY
								    : SD_EVENT_PRIORITY_NORMAL);
	}
	client_rearm(cl);
}

/*
 * Writes, produces what the output then has room for (a slice of a long reply only on its
 * own turn), writes that, and settles.
 */
static void client_pump(struct client *cl, bool turn)
{
	if (!client_write(cl) || !client_produce(cl, turn) || !client_write(cl))
		return;
	client_settle(cl);
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct client *cl = userdata;
	bool turn = cl->background; /* dispatched at stream priority: the stream's turn */

	if (client_reading(cl) && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		if (!client_read(cl))
			return 0;
	} else if (revents & (EPOLLHUP | EPOLLERR)) {
		/* We do not read, and nobody is left to read our replies. */
		client_free(cl);
		return 0;
	}
	client_pump(cl, turn);
	return 0;
}

/* Root, our own uid, or a member of control_group (primary or supplementary). */
static bool peer_allowed(struct control *c, const struct ucred *cr)
{
	char path[64], *buf = NULL, *line;
	size_t size = 0;
	bool ok = false;
	FILE *f;

	if (cr->uid == 0 || cr->uid == geteuid())
		return true;
	if (!c->have_gid)
		return false;
	if (cr->gid == c->gid)
		return true;
	/* The peer process's supplementary groups, as the kernel has them. */
	snprintf(path, sizeof(path), "/proc/%d/status", (int)cr->pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!ok && getline(&buf, &size, f) > 0) {
		char *save = NULL;

		if (strncmp(buf, "Groups:", 7) != 0)
			continue;
		for (line = strtok_r(buf + 7, " \t\n", &save); line;
		     line = strtok_r(NULL, " \t\n", &save))
			ok |= (gid_t)strtoul(line, NULL, 10) == c->gid;
	}
	free(buf);
	fclose(f);
	return ok;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static int on_accept_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct control *c = userdata;

	sd_event_source_set_enabled(c->listen, SD_EVENT_ON);
	return 0;
}

/* Root and our own uid: the operator, who may take the reserved slots. */
static bool privileged(const struct control *c, uid_t uid)
{
	return uid == 0 || uid == c->euid;
}

/*
 * Whether a client of `uid` may have a slot: NULL, or why not (in buf). Every slot is taken;
 * the last CONTROL_ROOT_RESERVED are the operator's; any other uid has at most
 * CONTROL_UID_MAX. So no one uid, root's excepted, can lock the operator out.
 */
static const char *slot_refusal(struct control *c, uid_t uid, char *buf, size_t size)
{
	unsigned mine = 0;

	if (c->n_clients >= CONTROL_CLIENTS_MAX)
		return "too many clients";
	if (privileged(c, uid))
		return NULL;
	if (c->n_clients >= CONTROL_CLIENTS_MAX - CONTROL_ROOT_RESERVED) {
		snprintf(buf, size, "too many clients (the last %d slots are kept for root)",
			 CONTROL_ROOT_RESERVED);
		return buf;
	}
	for (struct client *cl = c->clients; cl; cl = cl->next)
		mine += cl->uid == uid;
	if (mine < CONTROL_UID_MAX)
		return NULL;
	snprintf(buf, size, "too many clients of uid %u (at most %d at once)", (unsigned)uid,
		 CONTROL_UID_MAX);
	return buf;
}

/* Answers a connection we do not take, and closes it. Logged at most every 10 s. */
static void refuse_connection(struct control *c, int cfd, const struct ucred *cr, const char *why)
{
	char line[160];
	usec_t now = now_usec();

	snprintf(line, sizeof(line), "{\"ok\":false,\"error\":\"%s\"}\n", why);
	(void)!send(cfd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);
	close(cfd);
	c->refused++;
	if (c->refused_logged_at && now < c->refused_logged_at + REFUSED_LOG_EVERY)
		return;
	log_warning("control: %u connection%s refused, the last from uid %u (pid %d): %s",
		    c->refused, c->refused == 1 ? "" : "s", (unsigned)cr->uid, (int)cr->pid, why);
	c->refused = 0;
	c->refused_logged_at = now;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct control *c = userdata;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	struct client *cl;
	const char *why;
	char buf[128];
	int cfd, r;

	cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (cfd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* Out of descriptors: accept again on a timer; say it once. */
			if (!c->accept_failing)
				log_warning_errno(-errno, "control: cannot accept (retrying every "
							  "100ms)");
			c->accept_failing = true;
			sd_event_source_set_enabled(c->listen, SD_EVENT_OFF);
			if (!c->retry)
				sd_event_add_time(sd_event_source_get_event(s), &c->retry,
						  CLOCK_MONOTONIC, now_usec() + ACCEPT_RETRY,
						  USEC_PER_MSEC, on_accept_retry, c);
			else {
				sd_event_source_set_time(c->retry, now_usec() + ACCEPT_RETRY);
				sd_event_source_set_enabled(c->retry, SD_EVENT_ONESHOT);
			}
		}
		return 0;
	}
	if (c->accept_failing) {
		log_notice("control: accepting connections again");
		c->accept_failing = false;
	}
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		close(cfd);
		return 0;
	}
	why = slot_refusal(c, cr.uid, buf, sizeof(buf));
	if (why) {
		refuse_connection(c, cfd, &cr, why);
		return 0;
	}
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(cfd);
		return 0;
	}
	cl->c = c;
	cl->fd = cfd;
	cl->uid = cr.uid;
	cl->pid = cr.pid;
	r = sd_event_add_io(sd_event_source_get_event(s), &cl->io, cfd, EPOLLIN, on_client_io, cl);
	if (r >= 0)
		r = sd_event_add_time(sd_event_source_get_event(s), &cl->timer, CLOCK_MONOTONIC,
				      USEC_INFINITY, CONTROL_TIMER_ACCURACY, on_client_deadline,
				      cl);
	if (r < 0) {
		sd_event_source_disable_unref(cl->io);
		free(cl);
		close(cfd);
		return 0;
	}
	cl->next = c->clients;
	c->clients = cl;
	c->n_clients++;
	if (!peer_allowed(c, &cr)) {
		log_warning("control: uid %u (pid %d) is not root nor in group %s: permission "
			    "denied",
			    (unsigned)cr.uid, (int)cr.pid,
			    master_config(c->m)->supervisor.control_group);
		client_refuse(cl, "permission denied");
	}
	client_pump(cl, false); /* arms the idle deadline, or says the refusal */
	return 0;
}

/*
 * Whether a server answers on path: 1 (a connect worked, or the backlog is full: someone
 * listens), 0 (nothing there, or a stale socket: connection refused), -ENOTSOCK (something
 * that is not a socket), or -errno.
 */
int control_probe(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN ||
	    errno == EINPROGRESS)
		r = 1;
	else if (errno == ECONNREFUSED || errno == ENOENT)
		r = 0;
	else
		r = -errno;
	close(fd);
	return r;
}

/*
 * Takes the socket's directory's flock (released when the returned fd is closed), so two
 * daemons starting at once cannot both find the path stale and take it in turn. -1 (and no
 * lock) if the directory cannot be opened; -EADDRINUSE if another holds it right now.
 */
static int lock_socket_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		slash[slash == dir] = '\0'; /* "/x.sock" -> "/" */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return -EADDRINUSE;
	}
	return fd;
}

/* Environment: CONTROL_DEADLINES_ENV="idle=DUR request=DUR write=DUR", any of them. */
static void read_deadlines(struct control *c)
{
	const char *e = getenv(CONTROL_DEADLINES_ENV);
	char *copy, *save = NULL;

	c->idle_timeout = CONTROL_IDLE_TIMEOUT;
	c->request_timeout = CONTROL_REQUEST_TIMEOUT;
	c->write_timeout = CONTROL_WRITE_TIMEOUT;
	if (!e || !*e || !(copy = strdup(e)))
		return;
	for (char *kv = strtok_r(copy, " ,", &save); kv; kv = strtok_r(NULL, " ,", &save)) {
		char *eq = strchr(kv, '=');
		usec_t *which = NULL, v;

		if (eq) {
			*eq = '\0';
			which = strcmp(kv, "idle") == 0	     ? &c->idle_timeout
				: strcmp(kv, "request") == 0 ? &c->request_timeout
				: strcmp(kv, "write") == 0   ? &c->write_timeout
							     : NULL;
		}
		if (!which || parse_duration(eq + 1, &v) < 0 || v == 0 || v == USEC_INFINITY) {
			log_warning(
				"control: %s: ignored '%s' (idle=, request=, write= a duration)",
				CONTROL_DEADLINES_ENV, kv);
			continue;
		}
		*which = v;
	}
	free(copy);
}

int control_new(struct master *m, const char *path, const char *group, struct control **ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct control *c;
	struct group *gr;
	int r, lock;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->m = m;
	c->fd = -1;
	c->euid = geteuid();
	read_deadlines(c);
	c->path = strdup(path);
	if (!c->path) {
		control_free(c);
		return -ENOMEM;
	}
	gr = getgrnam(group);
	if (gr) {
		c->gid = gr->gr_gid;
		c->have_gid = true;
	} else {
		log_warning("control: group '%s' does not exist: only root may use %s", group,
			    path);
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		r = -errno;
		control_free(c);
		return r;
	}
	memcpy(sa.sun_path, path, strlen(path));
	/*
	 * Our instance lock is per runtime directory, and another daemon may use the same
	 * control_socket from another one: a socket that answers is never taken over; one that
	 * refuses connections is stale (its daemon died) and replaced.
	 */
	lock = lock_socket_dir(path);
	r = lock == -EADDRINUSE ? lock : control_probe(path);
	if (r == 0 && unlink(path) < 0 && errno != ENOENT)
		r = -errno;
	else if (r > 0)
		r = -EADDRINUSE;
	if (r == 0 &&
	    (bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(c->fd, 128) < 0))
		r = -errno;
	if (lock >= 0)
		close(lock);
	if (r < 0) {
		close(c->fd);
		c->fd = -1; /* not ours: control_free must not unlink it */
		control_free(c);
		return r;
	}
	if (chmod(path, c->have_gid ? 0660 : 0600) < 0 ||
	    (c->have_gid && chown(path, 0, c->gid) < 0 && geteuid() == 0)) {
		r = -errno;
		control_free(c);
		return r;
	}
	r = sd_event_add_io(master_event(m), &c->listen, c->fd, EPOLLIN, on_accept, c);
	if (r >= 0)
		r = sd_event_add_defer(master_event(m), &c->wait_check, on_wait_check, c);
	if (r >= 0)
		r = sd_event_source_set_enabled(c->wait_check, SD_EVENT_OFF);
	if (r < 0) {
		control_free(c);
		return r;
	}
	r = ledger_add_end_hook(master_ledger(m), on_job_end, c);
	if (r < 0) {
		control_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

void control_free(struct control *c)
{
	if (!c)
		return;
	while (c->clients)
		client_free(c->clients);
	sd_event_source_disable_unref(c->listen);
	sd_event_source_disable_unref(c->retry);
	sd_event_source_disable_unref(c->wait_check);
	if (c->m)
		ledger_remove_end_hook(master_ledger(c->m), on_job_end, c);
	if (c->fd >= 0) {
		close(c->fd);
		unlink(c->path);
	}
	free(c->path);
	free(c);
}
