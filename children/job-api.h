/* SPDX-License-Identifier: MIT */
/*
 * The worker's side of the job API (include/bulkhead/job.h): job specs as the master defines
 * them with SPEC frames, and the struct bulkhead_job that a job function receives.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bulkhead/job.h"
#include "common/protocol.h"

#define JOB_SPEC_ARGS_MAX 64 /* key=value pairs per spec */
#define JOB_PROGRESS_INTERVAL_USEC 100000u /* PROGRESS frames of one job: at most this often */

/* Status of every job of a spec that cannot run. */
#define JOB_STATUS_NOT_FOUND 127 /* unknown builtin, plugin that does not load, bad command */
#define JOB_STATUS_BAD_ARGS 2 /* args malformed or rejected by the builtin's argspec */
#define JOB_STATUS_CANCELLED 125 /* a builtin that stopped because its job was cancelled */

struct job_arg {
	const char *key;
	const char *value;
};

struct exec_cmd;

/* Immutable once built; lives until the worker exits (specs are never redefined). */
struct job_spec {
	uint32_t id;
	bulkhead_job_fn fn; /* NULL: the spec cannot run, every job returns fail_status */
	int fail_status;
	char *strings; /* owns the keys and values below, and name and output */
	const char *name; /* the group's name ("" if the master sent none) */
	const char *output; /* exec: directory for the jobs' stdout/stderr, "" = the log */
	struct job_arg args[JOB_SPEC_ARGS_MAX];
	unsigned n_args;
	double crash; /* the common argument crash=P, parsed once; 0 when absent */
	void *dl; /* plugin: the dlopen() handle */
	struct exec_cmd *exec; /* exec: the split command line (exec.c) */
};

/*
 * One run of a job. Lives in its job thread (reused job after job); valid while the job
 * runs. The pool sets id, spec, input and cancelled; job_run() resets the rest.
 */
struct bulkhead_job {
	uint64_t id;
	const struct job_spec *spec;
	const char *input; /* the job's input (INPUT frame), NULL if none */
	atomic_uint cancelled; /* 1: a CANCEL frame named this job (job_cancel()); a futex */
	pid_t exec_pid; /* exec: the running command's trampoline (exec.c), 0 if none */
	enum bh_outcome outcome; /* how the job ended: set by exec jobs, else RETURNED */
	bool has_result;
	uint16_t result_len;
	uint32_t progress_sent; /* permille last sent in a PROGRESS frame, UINT32_MAX: none */
	uint64_t progress_at; /* when (CLOCK_MONOTONIC usec) */
	char result[BH_RESULT_MAX];
	char id_str[24]; /* "" until bulkhead_job_id() formats it */
};

/*
 * Where job threads send their frames (RESULT, PROGRESS, EXEC): the master socket. -1 (the
 * default, and standalone runs): nothing is sent. Set once, before any job runs.
 */
void job_api_set_socket(int fd);

/* Logging context for bulkhead_job_log(): "POOL=..." and "WORKER=..." fields. */
void job_api_set_log_context(const char *pool, unsigned index);

/*
 * Builds the spec `id` from a SPEC frame's strings (not NUL-terminated; name and output may
 * be NULL/0). "builtin:NAME" is resolved and args ("k=v k=v") are split and checked once;
 * "plugin:PATH:SYMBOL" is dlopen()ed and checked; "exec:COMMAND ARGS" is split. A spec that
 * cannot run is still built (fn NULL, fail_status set) and the reason is logged.
 * Returns 0 or -ENOMEM.
 */
int job_spec_new(uint32_t id, const char *run, size_t run_len, const char *args, size_t args_len,
		 struct job_spec **ret);
int job_spec_new_full(const struct bh_frame *spec_frame, struct job_spec **ret);
void job_spec_free(struct job_spec *s);

/*
 * Runs one job on the calling thread and returns its status (0 = done); job->outcome says
 * how to read it. A spec with crash=P raises SIGSEGV first for the job ids that
 * bh_crash_hit() picks (builtins_crash()). Sends the job's RESULT frame (if it set one)
 * before it returns.
 */
int job_run(struct bulkhead_job *job);

/* Sends one frame on the job API socket (blocking; a job thread's). 0 or -errno. */
int job_api_send(const void *buf, size_t len);

/* From now on bulkhead_job_cancelled() is true for every job (the worker got STOP). */
void job_api_stop(void);

/*
 * Cancels the running job (a CANCEL frame named it): bulkhead_job_cancelled() turns true and
 * job_wait_cancel() returns. Any thread.
 */
void job_cancel(struct bulkhead_job *job);

/*
 * Waits until `deadline` (now_usec(), USEC_INFINITY: none) or until the job is cancelled
 * with job_cancel(), whichever comes first, without polling. Returns true if it was
 * cancelled. A STOP of the worker does not end the wait: draining jobs run to their end.
 */
bool job_wait_cancel(struct bulkhead_job *job, uint64_t deadline);

/* True once job_cancel() was called for the job (a relaxed load: cheap in a loop). */
static inline bool job_cancel_requested(struct bulkhead_job *job)
{
	return atomic_load_explicit(&job->cancelled, memory_order_relaxed) != 0;
}
