/* SPDX-License-Identifier: MIT */
/*
 * Job specs: built once, when the master's SPEC frame arrives (main thread), read-only
 * afterwards (job threads share them without locking), and the table of job kinds that
 * gives each spec its meaning.
 *
 * A spec's strings are one allocation (run, args, a copy of args, name, output); the copy is
 * split once into key/value pairs that point into it, so bulkhead_job_arg() allocates
 * nothing. The kind is picked by the prefix of run in kinds[] below; adding a kind is a
 * file implementing job-kind.h and a line here, and nothing else in children/ knows the
 * kinds. A spec that cannot run (no such kind, an unknown builtin, a plugin that does not
 * load, an exec: command that does not split, bad args) still exists, so that every job
 * naming it gets a status (127 or 2) rather than a protocol error: the master validated the
 * config (and probed its plugins), this is a second line.
 *
 * The order of the checks decides which reason a spec gets when several apply: the kind's
 * check() (a builtin's name and args), then splitting the args, then the kind's init().
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "job-kind.h"
#include "job-spec.h"

static const struct job_kind *const kinds[] = {
	&builtin_kind,
	&plugin_kind,
	&exec_kind,
};

static void spec_fail(struct job_spec *s, int status, const char *what, const char *detail)
{
	s->kind = NULL;
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

static const struct job_kind *kind_find(const char *run)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strncmp(run, kinds[i]->prefix, strlen(kinds[i]->prefix)) == 0)
			return kinds[i];
	return NULL;
}

static void spec_build(struct job_spec *s, char *run_str, char *checked, char *args_str)
{
	const struct job_kind *kind = kind_find(run_str);
	struct job_kind_error e = { 0 };

	if (!kind) {
		spec_fail(s, JOB_STATUS_NOT_FOUND, "unsupported job kind", run_str);
		return;
	}
	if (kind->check && kind->check(s, run_str, checked, &e) < 0) {
		spec_fail(s, e.status, e.what, e.detail);
		return;
	}
	if (spec_split_args(s, args_str) < 0) {
		s->n_args = 0;
		spec_fail(s, JOB_STATUS_BAD_ARGS, "bad args", checked);
		return;
	}
	if (kind->init(s, run_str, &e) < 0) {
		spec_fail(s, e.status, e.what, e.detail);
		return;
	}
	s->kind = kind;
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

/* What a SPEC frame says besides run and args (job_spec_new(): nothing). */
struct spec_more {
	const char *name, *output, *environment, *working_directory;
	size_t name_len, output_len, environment_len, working_directory_len;
	const uint8_t *success_exit_status; /* NULL: { 0 } */
	int nice;
};

static int spec_new(uint32_t id, const char *run, size_t run_len, const char *args, size_t args_len,
		    const struct spec_more *m, struct job_spec **ret)
{
	struct job_spec *s;
	char *p, *run_str, *args_str, *checked;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	/*
	 * One block: run\0args\0args-copy\0name\0output\0environment\0directory\0 (the copy
	 * is what gets split).
	 */
	s->strings = malloc(run_len + 2 * args_len + m->name_len + m->output_len +
			    m->environment_len + m->working_directory_len + 7);
	if (!s->strings) {
		free(s);
		return -ENOMEM;
	}
	s->id = id;
	p = s->strings;
	run_str = put_string(&p, run, run_len);
	checked = put_string(&p, args, args_len);
	args_str = put_string(&p, args, args_len);
	s->name = put_string(&p, m->name, m->name_len);
	s->output = put_string(&p, m->output, m->output_len);
	s->environment = put_string(&p, m->environment, m->environment_len);
	s->working_directory = put_string(&p, m->working_directory, m->working_directory_len);
	s->success_exit_status[0] = 1;
	if (m->success_exit_status)
		memcpy(s->success_exit_status, m->success_exit_status, BH_EXIT_SET_BYTES);
	s->nice = m->nice;
	*ret = s;
	spec_build(s, run_str, checked, args_str);
	return 0;
}

int job_spec_new(uint32_t id, const char *run, size_t run_len, const char *args, size_t args_len,
		 struct job_spec **ret)
{
	const struct spec_more m = { .name = "",
				     .output = "",
				     .environment = "",
				     .working_directory = "",
				     .nice = BH_NICE_INHERIT };

	return spec_new(id, run, run_len, args, args_len, &m, ret);
}

int job_spec_new_full(const struct bh_frame *f, struct job_spec **ret)
{
	const struct spec_more m = { .name = f->spec.name,
				     .name_len = f->spec.name_len,
				     .output = f->spec.output,
				     .output_len = f->spec.output_len,
				     .environment = f->spec.environment,
				     .environment_len = f->spec.environment_len,
				     .working_directory = f->spec.working_directory,
				     .working_directory_len = f->spec.working_directory_len,
				     .success_exit_status = f->spec.success_exit_status,
				     .nice = f->spec.nice };

	return spec_new(f->spec.id, f->spec.run, f->spec.run_len, f->spec.args, f->spec.args_len,
			&m, ret);
}

void job_spec_free(struct job_spec *s)
{
	if (!s)
		return;
	if (s->kind && s->kind->free)
		s->kind->free(s);
	free(s->strings);
	free(s);
}

static void send_result(struct bulkhead_job *job)
{
	uint8_t buf[sizeof(struct bh_frame_header) + 16 + BH_RESULT_MAX];
	size_t n = bh_encode_result(buf, sizeof(buf), job->id, job->result, job->result_len);

	if (n > 0)
		(void)job_context_send(buf, n);
}

int job_spec_run(struct bulkhead_job *job)
{
	const struct job_spec *s = job->spec;
	int status;

	job->id_str[0] = '\0';
	job->trace_floor = __builtin_return_address(0);
	job->outcome = BH_OUTCOME_RETURNED;
	job->has_result = false;
	job->progress_sent = UINT32_MAX;
	job->log_lines = 0;
	status = s->kind ? s->kind->run(job) : s->fail_status;
	if (job->has_result)
		send_result(job);
	return status;
}

void job_spec_interrupt(struct bulkhead_job *job)
{
	const struct job_kind *kind = job->spec ? job->spec->kind : NULL;

	if (kind && kind->interrupt)
		kind->interrupt(job);
}
