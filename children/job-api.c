/* SPDX-License-Identifier: MIT */
/*
 * Job specs and the job API (include/bulkhead/job.h) as implemented in the worker.
 *
 * A spec is built once, when the master's SPEC frame arrives (main thread), and is read-only
 * afterwards: job threads share it without locking. Its args string is split once into
 * key/value pairs that point into spec->strings, so bulkhead_job_arg() is a short scan and
 * allocates nothing. A spec that cannot run (unknown builtin, plugin:/exec: not supported
 * here yet, bad args) still exists, so that every job naming it gets a status (127 or 2)
 * rather than a protocol error: the master validated the config, this is a second line.
 *
 * The common argument crash=P (common/builtins.h) is parsed once per spec; job_run() hands
 * the job to builtins_crash() before the builtin's own work only when P > 0.
 *
 * Named locks live in locks.c; a job holds them across its own calls only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtins-impl.h"
#include "common/log.h"
#include "common/units.h"
#include "job-api.h"
#include "locks.h"

#define BUILTIN_PREFIX "builtin:"

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

int job_spec_new(uint32_t id, const char *run, size_t run_len, const char *args, size_t args_len,
		 struct job_spec **ret)
{
	struct job_spec *s;
	char *run_str, *args_str, *checked;
	char err[256];
	int b;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* One block: run\0args\0args-copy\0 (the copy is what gets split). */
	s->strings = malloc(run_len + 1 + 2 * (args_len + 1));
	if (!s->strings) {
		free(s);
		return -ENOMEM;
	}
	s->id = id;
	run_str = s->strings;
	memcpy(run_str, run, run_len);
	run_str[run_len] = '\0';
	checked = run_str + run_len + 1;
	memcpy(checked, args, args_len);
	checked[args_len] = '\0';
	args_str = checked + args_len + 1;
	memcpy(args_str, checked, args_len + 1);
	*ret = s;

	if (strncmp(run_str, BUILTIN_PREFIX, strlen(BUILTIN_PREFIX)) != 0) {
		spec_fail(s, JOB_STATUS_NOT_FOUND, "unsupported job kind", run_str);
		return 0;
	}
	b = bh_builtin_lookup(run_str + strlen(BUILTIN_PREFIX));
	if (b < 0) {
		spec_fail(s, JOB_STATUS_NOT_FOUND, "unknown builtin", run_str);
		return 0;
	}
	if (bh_builtin_check_args((enum bh_builtin)b, checked, err, sizeof(err)) < 0) {
		spec_fail(s, JOB_STATUS_BAD_ARGS, "bad args", err);
		return 0;
	}
	if (spec_split_args(s, args_str) < 0) {
		s->n_args = 0;
		spec_fail(s, JOB_STATUS_BAD_ARGS, "bad args", checked);
		return 0;
	}
	spec_parse_crash(s);
	s->fn = builtins_get((enum bh_builtin)b);
	if (!s->fn)
		spec_fail(s, JOB_STATUS_NOT_FOUND, "builtin not implemented", run_str);
	return 0;
}

void job_spec_free(struct job_spec *s)
{
	if (!s)
		return;
	free(s->strings);
	free(s);
}

int job_run(struct bulkhead_job *job)
{
	const struct job_spec *s = job->spec;

	if (s->crash > 0 && s->fn)
		builtins_crash(job, s->crash);
	return s->fn ? s->fn(job) : s->fail_status;
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
