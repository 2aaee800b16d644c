/* SPDX-License-Identifier: MIT */
/*
 * The control server's commands (see control-internal.h): the dispatch table, which is
 * CONTROL_COMMANDS of common/control-proto.h with the handler control_cmd_<id> of each
 * request, the helpers every handler uses to read a request and build a reply, and the
 * commands with short replies: status, reload, log-level, cancel, restart and inject (jobs
 * and wait are in control-stream.c, submit in control-submit.c).
 *
 * A handler reads the request leniently where the protocol allows (missing members take
 * their defaults) and strictly everywhere else: a member of the wrong type or out of range is
 * an error reply, never a crash or a guess.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/protocol.h"
#include "common/units.h"
#include "daemon/control-internal.h"
#include "daemon/events.h"
#include "daemon/metrics.h"

json_object *control_error_reply(const char *fmt, ...)
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

json_object *control_ok_reply(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(true));
	return o;
}

void control_add_int(json_object *o, const char *key, int64_t v)
{
	json_object_object_add(o, key, json_object_new_int64(v));
}

/* Optional string member; -EINVAL if present and not a string. */
int control_get_string(json_object *req, const char *key, const char **ret)
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

/* Integer member in [min, max], default def if absent. -EINVAL otherwise. */
int control_get_int(json_object *req, const char *key, int64_t min, int64_t max, int64_t def,
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

static json_object *jobs_counts(struct master *m)
{
	const struct ledger_stats *s = master_totals(m);
	uint64_t on_threads = master_jobs_on_threads(m), total = master_n_jobs(m), ended = 0;
	json_object *o = json_object_new_object();
	static const enum job_state finals[] = { JOB_DONE, JOB_FAILED, JOB_CRASHED, JOB_TIMED_OUT,
						 JOB_CANCELLED };

	control_add_int(o, "total", (int64_t)total);
	control_add_int(o, "queued",
			(int64_t)(s->by_state[JOB_QUEUED] + s->by_state[JOB_RUNNING] - on_threads));
	control_add_int(o, "running", (int64_t)on_threads);
	for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
		control_add_int(o, job_state_to_string(finals[i]), (int64_t)s->by_state[finals[i]]);
		ended += s->by_state[finals[i]];
	}
	control_add_int(
		o, "lost",
		(int64_t)(total - ended - s->by_state[JOB_QUEUED] - s->by_state[JOB_RUNNING]));
	return o;
}

/*
 * The job groups, those with unfinished jobs first, at most STATUS_GROUPS_MAX: per-group
 * progress for `top`. Their `running` counts jobs assigned to a worker (on a thread or
 * waiting for one).
 */
#define STATUS_GROUPS_MAX 256
static json_object *groups_array(struct master *m)
{
	static const enum job_state states[] = { JOB_QUEUED,	 JOB_RUNNING, JOB_DONE,
						 JOB_FAILED,	 JOB_CRASHED, JOB_TIMED_OUT,
						 JOB_CANCELLED };
	json_object *a = json_object_new_array();
	struct master_group g;

	for (int pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < master_n_groups(m); i++) {
			const struct group_counts *gc;
			json_object *o;
			bool open;

			if (json_object_array_length(a) >= STATUS_GROUPS_MAX)
				return a;
			if (!master_group(m, i, &g))
				continue;
			gc = g.counts;
			open = gc->by_state[JOB_QUEUED] + gc->by_state[JOB_RUNNING] > 0;
			if (open != (pass == 0))
				continue;
			o = json_object_new_object();
			json_object_object_add(o, "name", json_object_new_string(g.cfg->name));
			json_object_object_add(o, "pool", json_object_new_string(master_pool_name(
								  m, g.cfg->pool)));
			control_add_int(o, "total", (int64_t)gc->total);
			for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++)
				control_add_int(o, job_state_to_string(states[k]),
						(int64_t)gc->by_state[states[k]]);
			json_object_array_add(a, o);
		}
	return a;
}

/* The recent events (events.h), newest first: at (seconds since the epoch), level, text. */
static json_object *events_array(void)
{
	json_object *a = json_object_new_array();
	const struct event *e;

	for (size_t i = 0; (e = events_newest(i)); i++) {
		json_object *o = json_object_new_object();
		const char *level = e->level <= LOG_ERR	      ? "err" :
				    e->level == LOG_WARNING ? "warning" :
							      "notice";

		json_object_object_add(o, "at", json_object_new_double((double)e->at / 1e6));
		json_object_object_add(o, "level", json_object_new_string(level));
		json_object_object_add(o, "text", json_object_new_string(e->text));
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *workers_totals(const struct master_stats *ms)
{
	json_object *o = json_object_new_object(), *deaths = json_object_new_object();
	char sig[16];

	control_add_int(o, "started", (int64_t)ms->workers_started);
	control_add_int(o, "restarts", (int64_t)ms->restarts);
	control_add_int(o, "worker_faults", (int64_t)ms->worker_faults);
	control_add_int(o, "injected", (int64_t)ms->injected);
	control_add_int(o, "contained_crashes", (int64_t)ms->contained_crashes);
	for (int i = 1; i < 65; i++)
		if (ms->deaths_by_signal[i])
			control_add_int(deaths, signal_name(i, sig, sizeof(sig)),
					(int64_t)ms->deaths_by_signal[i]);
	if (ms->deaths_by_exit)
		control_add_int(deaths, "exit", (int64_t)ms->deaths_by_exit);
	if (ms->deaths_by_memory)
		control_add_int(deaths, "memory", (int64_t)ms->deaths_by_memory);
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
		control_add_int(p, "workers_up", pi.workers_up);
		control_add_int(p, "workers_wanted", pi.workers_wanted);
		control_add_int(p, "threads", pi.threads);
		control_add_int(p, "restarts", (int64_t)pi.restarts);
		control_add_int(p, "worker_faults", (int64_t)pi.worker_faults);
		if (pi.spare_state) {
			json_object *sp = json_object_new_object();

			control_add_int(sp, "pid", pi.spare_pid);
			json_object_object_add(sp, "state", json_object_new_string(pi.spare_state));
			json_object_object_add(p, "spare", sp);
		}
		if (pi.n_solo > 0) {
			json_object *sa = json_object_new_array();

			for (unsigned k = 0; k < pi.n_solo; k++) {
				json_object *sp = json_object_new_object();

				control_add_int(sp, "pid", pi.solo_pid[k]);
				json_object_object_add(sp, "state",
						       json_object_new_string(pi.solo_state[k]));
				json_object_array_add(sa, sp);
			}
			json_object_object_add(p, "solo", sa);
		}
		for (unsigned k = 0; k < pi.n_slots; k++) {
			struct master_worker_info wi;
			json_object *w = json_object_new_object();

			master_worker_info(m, i, k, &wi);
			control_add_int(w, "slot", wi.slot);
			control_add_int(w, "pid", wi.pid);
			json_object_object_add(w, "state", json_object_new_string(wi.state));
			json_object_object_add(w, "uptime_seconds",
					       json_object_new_double((double)wi.uptime / 1e6));
			control_add_int(w, "jobs_running", wi.jobs_running);
			json_object_object_add(w, "last_death",
					       json_object_new_string(wi.last_death));
			json_object_array_add(ws, w);
		}
		json_object_object_add(p, "workers", ws);
		json_object_array_add(a, p);
	}
	return a;
}

/* {"kind":"sqlite","path":...,"commits":N,"failing":""} or {"kind":"memory"}. */
static json_object *store_object(struct master *m)
{
	json_object *o = json_object_new_object();
	const char *path = master_store_path(m), *failing = master_store_failing(m);

	json_object_object_add(o, "kind",
			       json_object_new_string(master_shared_store(m) ? "postgresql"
						      : path		    ? "sqlite"
									    : "memory"));
	if (!path)
		return o;
	if (!master_shared_store(m))
		json_object_object_add(o, "path", json_object_new_string(path));
	control_add_int(o, "commits", (int64_t)master_store_commits(m));
	json_object_object_add(o, "failing", json_object_new_string(failing ? failing : ""));
	return o;
}

/* {"ok":true,"text":"..."}: the Prometheus text (daemon/metrics.c), whole. */
static json_object *control_cmd_metrics(struct control *c, json_object *req)
{
	size_t len;
	char *text = metrics_render(c->m, &len);
	json_object *o;

	if (!text)
		return control_error_reply("out of memory");
	o = control_ok_reply();
	json_object_object_add(o, "text", json_object_new_string_len(text, (int)len));
	free(text);
	return o;
}

static json_object *control_cmd_status(struct control *c, json_object *req)
{
	struct master *m = c->m;
	const struct master_stats *ms = master_stats(m);
	json_object *o = control_ok_reply();

	json_object_object_add(o, "version", json_object_new_string(BULKHEAD_VERSION));
	control_add_int(o, "protocol", CONTROL_PROTOCOL_VERSION);
	control_add_int(o, "pid", getpid());
	json_object_object_add(o, "node", json_object_new_string(master_node(m)));
	json_object_object_add(o, "uptime_seconds",
			       json_object_new_double((double)(now_usec() - ms->started_at) / 1e6));
	json_object_object_add(o, "ready", json_object_new_boolean(master_is_ready(m)));
	json_object_object_add(o, "stopping", json_object_new_boolean(master_is_stopping(m)));
	json_object_object_add(o, "jobs", jobs_counts(m));
	json_object_object_add(o, "workers", workers_totals(ms));
	json_object_object_add(o, "pools", pools_array(m));
	json_object_object_add(o, "store", store_object(m));
	/* after "store": the bash completion reads pools up to it, then group names */
	json_object_object_add(o, "groups", groups_array(m));
	json_object_object_add(o, "events", events_array());
	if (master_shared_store(m))
		return control_shared_status(c, o); /* the counts and nodes from the table */
	return o;
}

/* "a\nb\n" as ["a","b"]. */
static json_object *lines_array(const char *text)
{
	json_object *a = json_object_new_array();

	for (const char *l = text; *l;) {
		size_t n = strcspn(l, "\n");

		json_object_array_add(a, json_object_new_string_len(l, (int)n));
		l += n + (l[n] == '\n');
	}
	return a;
}

static json_object *control_cmd_reload(struct control *c, json_object *req)
{
	char *errors = NULL;
	int r = master_reload(c->m, &errors);
	json_object *o;

	if (r >= 0) {
		const char *changes, *warnings;

		master_reload_report(c->m, &changes, &warnings);
		o = control_ok_reply();
		json_object_object_add(o, "changes", lines_array(changes));
		json_object_object_add(o, "warnings", lines_array(warnings));
		return o;
	}
	o = control_error_reply("reload failed, the running config stays:\n%s",
				errors ? errors : strerror(-r));
	free(errors);
	return o;
}

static json_object *control_cmd_log_level(struct control *c, json_object *req)
{
	const char *level = NULL;
	json_object *o;
	int l;

	if (control_get_string(req, "level", &level) < 0 || !level)
		return control_error_reply("log-level needs \"level\": " LOG_LEVEL_NAMES("|"));
	l = log_level_from_name(level);
	if (l < 0)
		return control_error_reply("unknown log level '%s' (" LOG_LEVEL_NAMES("|") ")",
					   level);
	log_set_max_level(l);
	log_notice("control: log level set to %s", level);
	o = control_ok_reply();
	json_object_object_add(o, "level", json_object_new_string(level));
	return o;
}

/* Job ids from the request's "ids" array into a malloc'd array. */
json_object *control_read_ids(struct master *m, json_object *req, uint64_t **ret, size_t *ret_n)
{
	json_object *ids;
	size_t n;

	if (!json_object_object_get_ex(req, "ids", &ids) ||
	    !json_object_is_type(ids, json_type_array))
		return control_error_reply("\"ids\" must be an array of job ids");
	n = json_object_array_length(ids);
	if (n == 0 || n > CONTROL_JOBS_LIMIT_MAX)
		return control_error_reply("between 1 and %d ids", CONTROL_JOBS_LIMIT_MAX);
	*ret = calloc(n, sizeof(uint64_t));
	if (!*ret)
		return control_error_reply("out of memory");
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(ids, i);
		int64_t id = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;

		struct master_job j;
		int r = master_job(m, (uint64_t)(id > 0 ? id : 0), &j);

		if (r < 0) {
			bool gone = r == -ESTALE;

			free(*ret);
			*ret = NULL;
			if (gone)
				return control_error_reply(
					"job %s ended and was forgotten (keep_ended)",
					json_object_to_json_string(v));
			return control_error_reply("no job with id %s",
						   json_object_to_json_string(v));
		}
		(*ret)[i] = (uint64_t)id;
	}
	*ret_n = n;
	return NULL;
}

static json_object *control_cmd_cancel(struct control *c, json_object *req)
{
	json_object *o, *done, *not_done, *asked;
	uint64_t *ids = NULL;
	size_t n = 0;

	if (master_shared_store(c->m))
		return control_shared_cancel(c, req);
	o = control_read_ids(c->m, req, &ids, &n);
	if (o)
		return o;
	o = control_ok_reply();
	done = json_object_new_array();
	not_done = json_object_new_array();
	asked = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		int r = master_cancel_job(c->m, ids[i]);
		struct master_job j;

		if (r == 0) {
			json_object_array_add(done, json_object_new_int64((int64_t)ids[i]));
		} else if (r > 0) {
			json_object_array_add(asked, json_object_new_int64((int64_t)ids[i]));
		} else {
			json_object *e = json_object_new_object();

			control_add_int(e, "id", (int64_t)ids[i]);
			json_object_object_add(
				e, "state",
				json_object_new_string(master_job(c->m, ids[i], &j) < 0
							       ? "forgotten"
							       : job_state_to_string(j.state)));
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

static json_object *control_cmd_restart(struct control *c, json_object *req)
{
	const char *target = NULL;
	unsigned pool;
	int slot, r;
	json_object *o;

	if (control_get_string(req, "target", &target) < 0 || !target)
		return control_error_reply("restart needs \"target\": POOL or POOL/INDEX");
	if (parse_target(c->m, target, &pool, &slot) < 0)
		return control_error_reply("no pool or worker '%s' that is up", target);
	r = master_restart(c->m, pool, slot);
	if (r == -ENOENT)
		return control_error_reply("pool %s has no worker slot %d",
					   master_pool_name(c->m, pool), slot);
	if (r < 0)
		return control_error_reply("cannot restart %s: %s", target, strerror(-r));
	o = control_ok_reply();
	control_add_int(o, "replacing", r);
	return o;
}

static json_object *control_cmd_inject(struct control *c, json_object *req)
{
	const char *target = NULL, *fault = NULL;
	char worker[64];
	unsigned pool;
	pid_t pid = 0;
	int slot, r;
	json_object *o;

	if (control_get_string(req, "target", &target) < 0 || !target ||
	    control_get_string(req, "fault", &fault) < 0 || !fault)
		return control_error_reply(
			"inject needs \"target\" (POOL or POOL/INDEX) and \"fault\" "
			"(" CONTROL_FAULT_NAMES("|") ")");
	if (parse_target(c->m, target, &pool, &slot) < 0)
		return control_error_reply("no pool or worker '%s' that is up", target);
	r = master_inject(c->m, pool, slot, fault, worker, sizeof(worker), &pid);
	switch (r) {
	case 0:
		break;
	case -EINVAL:
		return control_error_reply("unknown fault '%s' (" CONTROL_FAULT_NAMES("|") ")",
					   fault);
	case -EDOM:
		return control_error_reply(
			"inject leak needs memory_max on pool %s (it would eat the "
			"machine's memory)",
			master_pool_name(c->m, pool));
	case -ENOENT:
		return control_error_reply("pool %s has no worker slot %d",
					   master_pool_name(c->m, pool), slot);
	case -EBUSY:
		return control_error_reply("no ready worker at %s right now", target);
	default:
		return control_error_reply("cannot inject into %s: %s", target, strerror(-r));
	}
	o = control_ok_reply();
	json_object_object_add(o, "worker", json_object_new_string(worker));
	control_add_int(o, "pid", pid);
	json_object_object_add(o, "fault", json_object_new_string(fault));
	return o;
}

/* A command's handler: its reply, or NULL when the reply comes later (a stream, a wait). */
typedef json_object *command_fn(struct control *c, json_object *req);

/* The requests of common/control-proto.h, each with its handler control_cmd_<id>. */
#define COMMAND_ENTRY(id, name, kind, ...) CONTROL_IF_##kind({ name, control_cmd_##id },)
static const struct {
	const char *name;
	command_fn *fn;
} commands[] = { CONTROL_COMMANDS(COMMAND_ENTRY) };
#undef COMMAND_ENTRY

json_object *control_dispatch(struct control *c, json_object *req)
{
	const char *name = control_request_command(req);

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return commands[i].fn(c, req);
	return control_error_reply("unknown command '%.64s'", name);
}
