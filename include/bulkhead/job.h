/* SPDX-License-Identifier: MIT */
/*
 * bulkhead job API: what a job's code sees. Builtin jobs use exactly this API; plugins
 * (`run = plugin:PATH:SYMBOL`) will too. A job function is
 *
 *     int SYMBOL(struct bulkhead_job *job);   // 0 = done, non-zero = failed
 *
 * It runs on one of the worker's job threads. It may crash: the crash is blamed on this job
 * alone, and the other jobs of the worker are re-run elsewhere.
 */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

#define BULKHEAD_JOB_ABI 1

struct bulkhead_job;

typedef int (*bulkhead_job_fn)(struct bulkhead_job *job);

/* The job's id as a decimal string, unique within one master run. */
const char *bulkhead_job_id(struct bulkhead_job *job);

/* The value of argument KEY from the job's `args`, or NULL if absent. */
const char *bulkhead_job_arg(struct bulkhead_job *job, const char *key);

/*
 * Named locks, shared by all job threads of one worker process (not across workers).
 * Returns 0 or a negative errno (-EINVAL for a bad name, -ENOMEM when the table is full).
 */
int bulkhead_lock(struct bulkhead_job *job, const char *name);
int bulkhead_unlock(struct bulkhead_job *job, const char *name);

#ifdef __cplusplus
}
#endif
