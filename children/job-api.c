/* SPDX-License-Identifier: MIT */
/*
 * Job specs and the job API (include/bulkhead/job.h) as implemented in the worker.
 *
 * A spec is built once, when the master's SPEC frame arrives (main thread), and is read-only
 * afterwards: job threads share it without locking. Its args string is split once into
 * key/value pairs that point into spec->strings, so bulkhead_job_arg() is a short scan and
 * allocates nothing. A spec that cannot run (unknown builtin, a plugin that does not load,
 * an exec: command that does not split, bad args) still exists, so that every job naming it
 * gets a status (127 or 2) rather than a protocol error: the master validated the config
 * (and probed its plugins), this is a second line.
 *
 * Kinds: builtin:NAME resolves to a function of builtins.c. plugin:PATH:SYMBOL is loaded
 * (plugin.c) here, on the main thread, once per spec, and closed when the worker exits. The
 * API functions below are exported from bulkhead-worker (children/meson.build) for plugins
 * to call. exec:COMMAND is exec.c.
 *
 * The common argument crash=P (common/builtins.h) is parsed once per spec; job_run() hands
 * the job to builtins_crash() before the builtin's own work only when P > 0.
 *
 * Frames from job threads (RESULT, PROGRESS, EXEC) go straight to the master socket with a
 * blocking send(): a SOCK_SEQPACKET message is atomic, so they never interleave with the
 * main thread's DONE frames, and a job's RESULT is sent before its result enters the pool's
 * outbox, so before its DONE entry. PROGRESS is rate-limited per job (at most one frame per
 * JOB_PROGRESS_INTERVAL_USEC, except the one that reaches 1.0), so a job may call it in a
 * tight loop: a call that sends nothing costs a clock read.
 *
 * Named locks live in locks.c; a job holds them across its own calls only.
 *
 * Cancellation: job->cancelled is a 32-bit word that job_cancel() sets and wakes as a futex,
 * so a job waiting in job_wait_cancel() (the `sleep` builtin) returns at once, and a busy
 * loop (`spin`, `hang`) sees it with one relaxed load.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "builtins-impl.h"
#include "common/log.h"
#include "common/units.h"
#include "exec.h"
#include "job-api.h"
#include "locks.h"
#include "plugin.h"

#define BUILTIN_PREFIX "builtin:"
#define EXEC_PREFIX "exec:"

static int api_fd = -1;
static atomic_bool api_stopping;
static char log_pool[80] = "POOL=", log_worker[32] = "WORKER=";

void job_api_set_socket(int fd)
{
	api_fd = fd;
}

void job_api_set_log_context(const char *pool, unsigned index)
{
	snprintf(log_pool, sizeof(log_pool), "POOL=%s", pool);
	snprintf(log_worker, sizeof(log_worker), "WORKER=%s/%u", pool, index);
}

void job_api_stop(void)
{
	atomic_store(&api_stopping, true);
}

int job_api_send(const void *buf, size_t len)
{
	if (api_fd < 0)
		return 0;
	while (send(api_fd, buf, len, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -errno; /* the master is gone: the main thread finds out too */
	return 0;
}

static void spec_fail(struct job_spec *s, int status, const char *what, const char *detail)
{
	s->fn = NULL;
	s->fail_status = status;
	log_error("spec %" PRIu32 ": %s%s%s; its jobs fail with status %d", s->id, what,
		  detail ? ": " : "", detail ? detail : "", status);
}

/* Splits s->strings (already holding "args") into key/value pairs in place. */
static int spec_split_args(struct job_spec *s, char *args)
{
	char *p = args;

	for (;;) {
		char *key, *eq;

		p += strspn(p, " \t\r\n");
		if (*p == '\0')
			return 0;
		key = p;
		p += strcspn(p, " \t\r\n");
		if (*p != '\0')
			*p++ = '\0';
		eq = strchr(key, '=');
		if (!eq || eq == key || s->n_args >= JOB_SPEC_ARGS_MAX)
			return -EINVAL;
		*eq = '\0';
		s->args[s->n_args++] = (struct job_arg){ .key = key, .value = eq + 1 };
	}
}

/* crash=P (checked already): parsed once here, so a job without it pays one comparison. */
static void spec_parse_crash(struct job_spec *s)
{
	double p = 0;

	for (unsigned i = 0; i < s->n_args; i++)
		if (strcmp(s->args[i].key, BH_CRASH_ARG) == 0 &&
		    parse_probability(s->args[i].value, &p) < 0)
			p = 0;
	s->crash = p;
}

static void spec_build(struct job_spec *s, char *run_str, char *checked, char *args_str)
{
	char err[1024];
	int b;

	if (strncmp(run_str, PLUGIN_PREFIX, strlen(PLUGIN_PREFIX)) == 0 ||
	    strncmp(run_str, EXEC_PREFIX, strlen(EXEC_PREFIX)) == 0) {
		if (spec_split_args(s, args_str) < 0) {
			s->n_args = 0;
			spec_fail(s, JOB_STATUS_BAD_ARGS, "bad args", checked);
			return;
		}
		if (run_str[0] == 'p') {
			bulkhead_job_fn fn;

			if (plugin_load(run_str, &s->dl, &fn, err, sizeof(err)) < 0)
				spec_fail(s, JOB_STATUS_NOT_FOUND, run_str, err);
			else
				s->fn = fn;
			return;
		}
		if (exec_cmd_new(run_str + strlen(EXEC_PREFIX), &s->exec, err, sizeof(err)) < 0) {
			spec_fail(s, JOB_STATUS_NOT_FOUND, "bad command", err);
			return;
		}
		s->fn = exec_job_run;
		return;
	}
	if (strncmp(run_str, BUILTIN_PREFIX, strlen(BUILTIN_PREFIX)) != 0) {
		spec_fail(s, JOB_STATUS_NOT_FOUND, "unsupported job kind", run_str);
		return;
	}
	b = bh_builtin_lookup(run_str + strlen(BUILTIN_PREFIX));
	if (b < 0) {
		spec_fail(s, JOB_STATUS_NOT_FOUND, "unknown builtin", run_str);
		return;
	}
	if (bh_builtin_check_args((enum bh_builtin)b, checked, err, sizeof(err)) < 0) {
		spec_fail(s, JOB_STATUS_BAD_ARGS, "bad args", err);
		return;
	}
	if (spec_split_args(s, args_str) < 0) {
		s->n_args = 0;
		spec_fail(s, JOB_STATUS_BAD_ARGS, "bad args", checked);
		return;
	}
	spec_parse_crash(s);
	s->fn = builtins_get((enum bh_builtin)b);
	if (!s->fn)
		spec_fail(s, JOB_STATUS_NOT_FOUND, "builtin not implemented", run_str);
}

/* Copies n bytes of src to *p as a string and advances *p past its NUL. */
static char *put_string(char **p, const char *src, size_t n)
{
	char *d = *p;

	if (n)
		memcpy(d, src, n);
	d[n] = '\0';
	*p = d + n + 1;
	return d;
}

static int spec_new(uint32_t id, const char *run, size_t run_len, const char *args, size_t args_len,
		    const char *name, size_t name_len, const char *output, size_t output_len,
		    struct job_spec **ret)
{
	struct job_spec *s;
	char *p, *run_str, *args_str, *checked;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* One block: run\0args\0args-copy\0name\0output\0 (the copy is what gets split). */
	s->strings = malloc(run_len + 2 * args_len + name_len + output_len + 5);
	if (!s->strings) {
		free(s);
		return -ENOMEM;
	}
	s->id = id;
	p = s->strings;
	run_str = put_string(&p, run, run_len);
	checked = put_string(&p, args, args_len);
	args_str = put_string(&p, args, args_len);
	s->name = put_string(&p, name, name_len);
	s->output = put_string(&p, output, output_len);
	*ret = s;
	spec_build(s, run_str, checked, args_str);
	return 0;
}

int job_spec_new(uint32_t id, const char *run, size_t run_len, const char *args, size_t args_len,
		 struct job_spec **ret)
{
	return spec_new(id, run, run_len, args, args_len, "", 0, "", 0, ret);
}

int job_spec_new_full(const struct bh_frame *f, struct job_spec **ret)
{
	return spec_new(f->spec.id, f->spec.run, f->spec.run_len, f->spec.args, f->spec.args_len,
			f->spec.name, f->spec.name_len, f->spec.output, f->spec.output_len, ret);
}

void job_spec_free(struct job_spec *s)
{
	if (!s)
		return;
	exec_cmd_free(s->exec);
	if (s->dl)
		dlclose(s->dl);
	free(s->strings);
	free(s);
}

static void send_result(struct bulkhead_job *job)
{
	uint8_t buf[sizeof(struct bh_frame_header) + 16 + BH_RESULT_MAX];
	size_t n = bh_encode_result(buf, sizeof(buf), job->id, job->result, job->result_len);

	if (n > 0)
		(void)job_api_send(buf, n);
}

int job_run(struct bulkhead_job *job)
{
	const struct job_spec *s = job->spec;
	int status;

	job->id_str[0] = '\0';
	job->outcome = BH_OUTCOME_RETURNED;
	job->has_result = false;
	job->progress_sent = UINT32_MAX;
	if (s->crash > 0 && s->fn)
		builtins_crash(job, s->crash);
	status = s->fn ? s->fn(job) : s->fail_status;
	if (job->has_result)
		send_result(job);
	return status;
}

const char *bulkhead_job_id(struct bulkhead_job *job)
{
	if (job->id_str[0] == '\0')
		snprintf(job->id_str, sizeof(job->id_str), "%" PRIu64, job->id);
	return job->id_str;
}

const char *bulkhead_job_arg(struct bulkhead_job *job, const char *key)
{
	const struct job_spec *s = job->spec;
	const char *found = NULL;

	/* The job's own input comes first: an "input" in args is the group's default. */
	if (job->input && strcmp(key, "input") == 0)
		return job->input;
	/* The last occurrence wins, as in a config file. */
	for (unsigned i = 0; i < s->n_args; i++)
		if (strcmp(s->args[i].key, key) == 0)
			found = s->args[i].value;
	return found;
}

int bulkhead_lock(struct bulkhead_job *job, const char *name)
{
	pthread_mutex_t *m;
	int r;

	r = locks_get(name, &m);
	if (r < 0)
		return r;
	return -pthread_mutex_lock(m);
}

int bulkhead_unlock(struct bulkhead_job *job, const char *name)
{
	pthread_mutex_t *m;
	int r;

	r = locks_get(name, &m);
	if (r < 0)
		return r;
	return -pthread_mutex_unlock(m);
}

void bulkhead_job_result(struct bulkhead_job *job, const char *fmt, ...)
{
	char buf[BH_RESULT_MAX + 1];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > BH_RESULT_MAX) {
		n = BH_RESULT_MAX;
		/* Cut at a character boundary: drop a UTF-8 sequence the cut split. */
		for (int i = n; i > 0 && i > n - 4; i--) {
			unsigned char c = (unsigned char)buf[i - 1];

			if ((c & 0xc0) == 0xc0) { /* a lead byte: its sequence was cut */
				n = i - 1;
				break;
			}
			if ((c & 0x80) == 0) /* ASCII: nothing cut */
				break;
		}
	}
	for (int i = 0; i < n; i++) {
		unsigned char c = (unsigned char)buf[i];

		job->result[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	job->result_len = (uint16_t)n;
	job->has_result = true;
}

int bulkhead_job_cancelled(struct bulkhead_job *job)
{
	return atomic_load_explicit(&job->cancelled, memory_order_relaxed) ||
	       atomic_load_explicit(&api_stopping, memory_order_relaxed);
}

void job_cancel(struct bulkhead_job *job)
{
	atomic_store(&job->cancelled, 1);
	(void)syscall(SYS_futex, &job->cancelled, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

bool job_wait_cancel(struct bulkhead_job *job, uint64_t deadline)
{
	while (!job_cancel_requested(job)) {
		struct timespec ts;
		usec_t now = now_usec();

		if (now >= deadline)
			return false;
		ts.tv_sec = (time_t)(deadline / USEC_PER_SEC);
		ts.tv_nsec = (long)(deadline % USEC_PER_SEC) * 1000L;
		/* Absolute, on CLOCK_MONOTONIC; returns at once if the flag is no longer 0. */
		(void)syscall(SYS_futex, &job->cancelled, FUTEX_WAIT_BITSET_PRIVATE, 0,
			      deadline == USEC_INFINITY ? NULL : &ts, NULL, FUTEX_BITSET_MATCH_ANY);
	}
	return true;
}

void bulkhead_job_progress(struct bulkhead_job *job, double fraction)
{
	uint8_t buf[sizeof(struct bh_frame_header) + 16];
	uint32_t permille;
	usec_t now;
	size_t n;

	if (!(fraction > 0)) /* NaN too */
		fraction = 0;
	if (fraction > 1)
		fraction = 1;
	permille = (uint32_t)(fraction * BH_PROGRESS_MAX + 0.5);
	if (permille == job->progress_sent)
		return;
	now = now_usec();
	if (permille < BH_PROGRESS_MAX && job->progress_sent != UINT32_MAX &&
	    now - job->progress_at < JOB_PROGRESS_INTERVAL_USEC)
		return;
	job->progress_sent = permille;
	job->progress_at = now;
	n = bh_encode_progress(buf, sizeof(buf), job->id, permille);
	if (n > 0)
		(void)job_api_send(buf, n);
}

void bulkhead_job_log(struct bulkhead_job *job, int level, const char *fmt, ...)
{
	char job_field[32], msg[1600];
	const char *fields[] = { job_field, log_pool, log_worker, NULL };
	va_list ap;

	if (level < BULKHEAD_LOG_ERR)
		level = BULKHEAD_LOG_ERR;
	if (level > BULKHEAD_LOG_DEBUG)
		level = BULKHEAD_LOG_DEBUG;
	if (level > log_get_max_level())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(job_field, sizeof(job_field), "JOB=%s", bulkhead_job_id(job));
	log_fields(level, fields, "job %s: %s", bulkhead_job_id(job), msg);
}
