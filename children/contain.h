/* SPDX-License-Identifier: MIT */
/*
 * Contained runs (contain.c): a job the master assigned with BH_ASSIGN_CONTAIN runs in a
 * throwaway child of its job thread, so that its crash ends that child, not the worker.
 * Between the job kinds and the pool: it runs a job with job_spec_run() in the child.
 */
#pragma once

#include "job-context.h"

/*
 * Runs the job (the caller's current job, job_context_enter() done) in a child process and
 * returns its status, with job->outcome set: the child's own end (RETURNED, or what its kind
 * said), else BH_OUTCOME_DIED_SIGNAL / BH_OUTCOME_DIED_EXIT when the child died first. The
 * child's frames (RESULT, LOG, PROGRESS, CRASH marked BH_CRASH_CONTAINED, CRASH_INFO) reach
 * the master through the calling thread before this returns. If no child can be made, the
 * job runs here, in the worker, as if it had not been contained.
 */
int contain_run(struct bulkhead_job *job);

/*
 * The job was cancelled (job_context_cancel() first): if it runs contained, its child is
 * killed (by its job thread, which owns it). Any thread, while the job runs.
 */
void contain_interrupt(struct bulkhead_job *job);

/* Releases what contained runs of the calling job thread kept (at its end). */
void contain_thread_fini(struct bulkhead_job *job);
