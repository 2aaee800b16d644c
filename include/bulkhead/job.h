/* SPDX-License-Identifier: MIT */
/*
 * bulkhead job API: what a job's code sees. Builtin jobs and plugins
 * (`run = plugin:PATH:SYMBOL`) use exactly this API. A plugin is a shared object that
 * says which ABI it was built for, once, and exports job functions:
 *
 *     #include <bulkhead/job.h>
 *
 *     BULKHEAD_JOB_PLUGIN;
 *
 *     int my_job(struct bulkhead_job *job)   // 0 = done, non-zero = failed
 *     {
 *             const char *path = bulkhead_job_arg(job, "input");
 *             ...
 *             bulkhead_job_result(job, "%zu lines", n);
 *             return 0;
 *     }
 *
 * Build it with `cc -shared -fPIC $(pkg-config --cflags bulkhead-job) -o my.so my.c`. The
 * API functions are provided by the worker that loads the plugin: do not link anything.
 *
 * A job function runs on one of a worker's job threads, next to other jobs of the same
 * worker. It may crash: the crash is blamed on this job alone, the other jobs of the worker
 * are re-run elsewhere, and a job that keeps crashing is quarantined. Every function here
 * must be called from the job's own thread, with the job it was given, while it runs.
 * See bulkhead-job(3).
 */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The ABI version. The worker reads the plugin's `bulkhead_job_abi` (defined by
 * BULKHEAD_JOB_PLUGIN) before it calls anything, and refuses a plugin built for another one.
 * Version 2 is the first one plugins can use.
 */
#define BULKHEAD_JOB_ABI 2

#define BULKHEAD_JOB_PLUGIN                                                                        \
	__attribute__((visibility("default"))) extern const unsigned bulkhead_job_abi;             \
	const unsigned bulkhead_job_abi = BULKHEAD_JOB_ABI

struct bulkhead_job;

typedef int (*bulkhead_job_fn)(struct bulkhead_job *job);

/* The job's id as a decimal string, unique within one master run. */
const char *bulkhead_job_id(struct bulkhead_job *job);

/*
 * The value of argument KEY, or NULL if absent. Arguments come from the job group's `args`;
 * a job made from a file (`inputs = GLOB`, `spool = DIR`) has its path as "input".
 */
const char *bulkhead_job_arg(struct bulkhead_job *job, const char *key);

/*
 * Sets the job's result: a short line (at most 255 bytes, longer is cut) shown by
 * `bulkhead jobs` and in reports. The last call wins. Control characters are replaced.
 */
void bulkhead_job_result(struct bulkhead_job *job, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Non-zero once the job should stop early: an operator cancelled it or the run is stopping.
 * A job that notices should clean up and return (its return value still decides its state).
 */
int bulkhead_job_cancelled(struct bulkhead_job *job);

/* How far the job is, 0.0 .. 1.0 (clamped). Cheap: call it as often as you like. */
void bulkhead_job_progress(struct bulkhead_job *job, double fraction);

/*
 * Named locks, shared by all job threads of one worker process (not across workers).
 * Returns 0 or a negative errno (-EINVAL for a bad name, -ENOMEM when the table is full).
 */
int bulkhead_lock(struct bulkhead_job *job, const char *name);
int bulkhead_unlock(struct bulkhead_job *job, const char *name);

/* Log priorities, as syslog's. */
enum bulkhead_log_level {
	BULKHEAD_LOG_ERR = 3,
	BULKHEAD_LOG_WARNING = 4,
	BULKHEAD_LOG_NOTICE = 5,
	BULKHEAD_LOG_INFO = 6,
	BULKHEAD_LOG_DEBUG = 7,
};

/* Logs one line through the worker's log (journald fields JOB=, POOL=, WORKER=). */
void bulkhead_job_log(struct bulkhead_job *job, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
