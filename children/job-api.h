/* SPDX-License-Identifier: MIT */
/*
 * The worker's side of the job API (include/bulkhead/job.h): job specs as the master defines
 * them with SPEC frames, and the struct bulkhead_job that a job function receives.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bulkhead/job.h"

#define JOB_SPEC_ARGS_MAX 64 /* key=value pairs per spec */

/* Status of every job of a spec that cannot run. */
#define JOB_STATUS_NOT_FOUND 127 /* unknown builtin or unsupported kind (plugin:, exec:) */
#define JOB_STATUS_BAD_ARGS 2 /* args malformed or rejected by the builtin's argspec */

struct job_arg {
	const char *key;
	const char *value;
};

/* Immutable once built; lives until the worker exits (specs are never redefined). */
struct job_spec {
	uint32_t id;
	bulkhead_job_fn fn; /* NULL: the spec cannot run, every job returns fail_status */
	int fail_status;
	char *strings; /* owns the keys and values below */
	struct job_arg args[JOB_SPEC_ARGS_MAX];
	unsigned n_args;
	double crash; /* the common argument crash=P, parsed once; 0 when absent */
};

/* One run of a job. Lives in its job thread; valid while the job runs. */
struct bulkhead_job {
	uint64_t id;
	const struct job_spec *spec;
	char id_str[24]; /* "" until bulkhead_job_id() formats it */
};

/*
 * Builds the spec `id` from a SPEC frame's run and args (not NUL-terminated). "builtin:NAME"
 * is resolved and args ("k=v k=v") are split and checked once, here; a spec that cannot run
 * is still built (fn NULL, fail_status set) and the reason is logged. Returns 0 or -ENOMEM.
 */
int job_spec_new(uint32_t id, const char *run, size_t run_len, const char *args, size_t args_len,
		 struct job_spec **ret);
void job_spec_free(struct job_spec *s);

/*
 * Runs one job on the calling thread and returns its status (0 = done). A spec with crash=P
 * raises SIGSEGV first for the job ids that bh_crash_hit() picks (builtins_crash()).
 */
int job_run(struct bulkhead_job *job);
