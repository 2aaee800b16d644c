/* SPDX-License-Identifier: MIT */
/*
 * The job context (see job-context.c): what a job thread knows about the job it runs and
 * where it reports. The bottom of children/: it includes nothing of children/, and every
 * other file there may include it.
 *
 *   job-context  job specs and jobs (data), the thread's current job, the master socket
 *       ^        and its send helper, the log fields, the stop and cancel flags
 *   crash, job-api, locks
 *       ^
 *   builtin, plugin, exec (one file per job kind, job-kind.h), registered in job-spec
 *       ^
 *   contain (a job run in a throwaway child of its thread)
 *       ^
 *   pool
 *       ^
 *   worker, zygote, probe, exec-trampoline, standalone (process mains, main.c's table)
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

/* Status of every job of a spec that cannot run. */
#define JOB_STATUS_NOT_FOUND 127 /* unknown builtin, plugin that does not load, bad command */
#define JOB_STATUS_BAD_ARGS 2 /* args malformed, or not what the builtin takes */
#define JOB_STATUS_CANCELLED 125 /* a builtin that stopped because its job was cancelled */

struct job_kind;

struct job_arg {
	const char *key;
	const char *value;
};

/*
 * A job spec: what the master defines with a SPEC frame (job-spec.c builds it). Immutable
 * once built, shared by the job threads without locking; freed by the main thread once no
 * job of it is queued or running (FORGET) or when the worker exits.
 */
struct job_spec {
	uint32_t id;
	const struct job_kind *kind; /* how its jobs run; NULL: they cannot, see fail_status */
	int fail_status; /* the status of every job when kind is NULL */
	char *strings; /* owns the keys and values below, and name and output */
	const char *name; /* the group's name ("" if the master sent none) */
	const char *output; /* exec: directory for the jobs' stdout/stderr, "" = the log */
	const char *environment; /* exec: "" or NAME=VALUE words (common/exec-settings.h) */
	const char *working_directory; /* exec: "" or the directory the command starts in */
	uint8_t success_exit_status[BH_EXIT_SET_BYTES]; /* exec: exit codes counted done */
	int nice; /* exec: -20..19, or BH_NICE_INHERIT */
	struct job_arg args[JOB_SPEC_ARGS_MAX];
	unsigned n_args;
	bulkhead_job_fn fn; /* builtin, plugin: the job function */
	void *data; /* the kind's own: plugin the dlopen() handle, exec the split command */
	double crash; /* builtin: the common argument crash=P, parsed once; 0 when absent */
};

/*
 * One run of a job. Lives in its job thread (reused job after job); valid while the job
 * runs. The pool sets id, spec, input and cancelled; job_spec_run() resets the rest.
 */
struct bulkhead_job {
	uint64_t id;
	const struct job_spec *spec;
	const char *input; /* the job's input (INPUT frame), NULL if none */
	atomic_uint cancelled; /* 1: a CANCEL named this job (job_context_cancel()); a futex */
	pid_t exec_pid; /* exec: the running command's trampoline (exec.c), 0 if none */
	atomic_int contain_fd;  /* contain.c: the thread's eventfd to stop a contained run, or -1 */
	const void *trace_floor; /* job_spec_run()'s return address: the frames from there on
				    are the worker's own, and a crash trace stops there */
	atomic_bool contained;  /* contain.c: the job runs in a child of its thread now */
	bool setting_failed; /* exec: the trampoline could not take a setting (logged) */
	enum bh_outcome outcome; /* how the job ended: set by exec jobs, else RETURNED */
	bool has_result;
	uint16_t result_len;
	uint32_t progress_sent; /* permille last sent in a PROGRESS frame, UINT32_MAX: none */
	uint32_t log_lines;     /* LOG frames sent for this run (BH_LOG_LINES_MAX at most) */
	uint64_t progress_at; /* when (CLOCK_MONOTONIC usec) */
	char result[BH_RESULT_MAX];
	char id_str[24]; /* "" until bulkhead_job_id() formats it */
};

/*
 * Where job threads send their frames (RESULT, PROGRESS, EXEC) and the crash handler its
 * CRASH frame: the master socket. -1 (the default, and standalone runs): nothing is sent.
 * Set once by the main thread, before any job runs and before crash_install().
 */
void job_context_set_socket(int fd);

/* The master socket, or -1. Async-signal-safe. */
int job_context_socket(void);

/* Sends one frame on the master socket (blocking; a job thread's). 0 or -errno. */
int job_context_send(const void *buf, size_t len);

/* Logging context for bulkhead_job_log(): the "POOL=..." and "WORKER=..." fields. */
void job_context_set_log(const char *pool, unsigned index);
const char *job_context_log_pool(void);
const char *job_context_log_worker(void);

/*
 * The calling thread's current job: set while it runs a job (job_context_enter() ...
 * job_context_leave()), so that a crash is blamed on exactly that job. job_context_current()
 * is async-signal-safe (initial-exec TLS, no allocation); NULL outside a job.
 */
void job_context_enter(struct bulkhead_job *job);
void job_context_leave(void);
struct bulkhead_job *job_context_current(void);

/* From now on bulkhead_job_cancelled() is true for every job (the worker got STOP). */
void job_context_stop(void);
bool job_context_stopping(void);

/*
 * Cancels a running job (a CANCEL frame named it): bulkhead_job_cancelled() turns true and
 * job_context_wait_cancel() returns. Any thread.
 */
void job_context_cancel(struct bulkhead_job *job);

/*
 * Waits until `deadline` (now_usec(), USEC_INFINITY: none) or until the job is cancelled
 * with job_context_cancel(), whichever comes first, without polling. Returns true if it was
 * cancelled. A STOP of the worker does not end the wait: draining jobs run to their end.
 */
bool job_context_wait_cancel(struct bulkhead_job *job, uint64_t deadline);

/* True once job_context_cancel() was called for the job (a relaxed load: cheap in a loop). */
static inline bool job_context_cancel_requested(struct bulkhead_job *job)
{
	return atomic_load_explicit(&job->cancelled, memory_order_relaxed) != 0;
}
