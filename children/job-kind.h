/* SPDX-License-Identifier: MIT */
/*
 * The interface of a job kind: what `run = KIND:...` means in a worker. One file per kind
 * implements it (builtin.c, plugin.c, exec.c) and exports its descriptor below; job-spec.c
 * holds the table of kinds and is the only caller. A kind knows the job context
 * (job-context.h) and nothing of the pool or the other kinds.
 *
 * Building a spec (job-spec.c): check(), if the kind has one, sees the args as sent, before
 * they are split into key/value pairs; init() sees the spec with its pairs. Either may refuse:
 * it returns a negative errno and fills a struct job_kind_error, and the spec's jobs then all
 * end with that status (the master validated the config, this is a second line). A kind
 * that refuses holds nothing (free() is not called). run() is called on a job thread for each
 * job; interrupt() from any thread while a job of the kind runs; free() once, on the main
 * thread.
 */
#pragma once

#include <stddef.h>

#include "job-context.h"

#define JOB_KIND_ERROR_MAX 1024

/* Why a spec cannot run: its jobs' status, and what the log line says ("WHAT: DETAIL"). */
struct job_kind_error {
	int status; /* JOB_STATUS_NOT_FOUND or JOB_STATUS_BAD_ARGS */
	const char *what;
	const char *detail; /* maybe into buf */
	char buf[JOB_KIND_ERROR_MAX];
};

struct job_kind {
	const char *prefix; /* of run, "builtin:"; what follows it is the kind's */

	/* Optional. run and args as the master sent them. 0 or -errno with *e filled. */
	int (*check)(struct job_spec *s, const char *run, const char *args,
		     struct job_kind_error *e);

	/* Binds s to what run names (s->fn, s->data...). 0 or -errno with *e filled. */
	int (*init)(struct job_spec *s, const char *run, struct job_kind_error *e);

	/* Runs one job of the kind; returns its status (and may set job->outcome). */
	int (*run)(struct bulkhead_job *job);

	/* Optional. The running job is to stop: its kind's own means (signal a command). */
	void (*interrupt)(struct bulkhead_job *job);

	/* Optional. Releases what init() bound to s. */
	void (*free)(struct job_spec *s);
};

extern const struct job_kind builtin_kind; /* builtin.c: builtin:NAME */
extern const struct job_kind plugin_kind; /* plugin.c: plugin:PATH:SYMBOL */
extern const struct job_kind exec_kind; /* exec.c: exec:COMMAND ARGS... */
