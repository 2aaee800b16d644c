/* SPDX-License-Identifier: MIT */
/*
 * The worker's job threads (see pool.c): one FIFO queue in, one outbox of results out, an
 * eventfd that tells the main thread when results are waiting or the pool has stopped.
 * Above the job specs (job-spec.h), below the worker process (worker.c).
 */
#pragma once

#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "job-context.h"

#define POOL_THREADS_MAX 256
#define POOL_JOBS_MAX (1u << 20) /* jobs queued + results not yet taken by the main thread */
#define POOL_THREAD_STACK (4u << 20)

struct pool;

struct pool_job {
	uint64_t job_id;
	const struct job_spec *spec;
	char *input; /* malloc'd, owned by the pool once submitted; NULL if none */
	bool contain; /* run it in a throwaway child (BH_ASSIGN_CONTAIN, contain.c) */
};

struct pool_result {
	uint64_t job_id;
	int32_t status;
	uint32_t run_usec; /* how long run_job took, saturated */
	uint32_t outcome; /* enum bh_outcome */
};

struct pool_options {
	const char *name; /* pool name, for thread names */
	unsigned index; /* worker index, for thread names */
	unsigned threads; /* 1..POOL_THREADS_MAX */
	bool warm_malloc; /* each thread mallocs once before it reports ready */
};

/*
 * Starts the job threads and returns once every one of them is up: named, on its
 * alternate signal stack, (warm_malloc) holding its malloc arena, and waiting for work.
 * Returns 0 or -errno.
 */
int pool_new(const struct pool_options *o, struct pool **ret);

/* Readable when results are waiting or the last thread has stopped. Owned by the pool. */
int pool_eventfd(struct pool *p);

/* Readable when a result has been held back for a while (see pool.c). Owned by the pool. */
int pool_timerfd(struct pool *p);

/* Clears the eventfd and the timerfd (call when either polled readable). */
void pool_eventfd_clear(struct pool *p);

/*
 * Appends n jobs to the end of the queue; threads start them strictly in queue order.
 * Main thread only (like pool_cancel, pool_stop and pool_free: pool.c relies on it).
 * Returns 0, -E2BIG if that would exceed POOL_JOBS_MAX, -ENOMEM.
 */
int pool_submit(struct pool *p, const struct pool_job *jobs, size_t n);

/*
 * Takes every result finished since the last call, in finishing order. The array stays
 * valid (and owned by the pool) until the next call. Returns the count (maybe 0).
 */
size_t pool_take_results(struct pool *p, const struct pool_result **ret);
/* How many results wait in the outbox, read without the lock (for crash.c's handler). */
const atomic_size_t *pool_results_held(struct pool *p);

/*
 * Threads take no more jobs (queued ones are dropped) and exit after their current job.
 * Running jobs see bulkhead_job_cancelled() true, and their kinds are told
 * (job_spec_interrupt(): running exec: commands get SIGTERM).
 */
void pool_stop(struct pool *p);

/*
 * A CANCEL for job_id: if it is queued, it is taken out of the queue and never starts (its
 * result, BH_OUTCOME_CANCELLED with status 0, is pushed at once and the eventfd written); if
 * it is running, it is cancelled now (job_context_cancel(), and job_spec_interrupt(): its
 * exec: command, if any, gets SIGTERM). Returns true if the job was found, false if it is
 * not in the pool (finished, or never assigned). Main thread.
 */
bool pool_cancel(struct pool *p, uint64_t job_id);

/* True if a queued or running job uses spec. */
bool pool_spec_in_use(struct pool *p, const struct job_spec *spec);

/* True once pool_stop() was called and every thread has exited. */
bool pool_stopped(struct pool *p);

/*
 * A job thread's runner may have died (exec-start.c's watch fired): each job thread looks at
 * its own before it takes its next job or waits for work (at once if it waits now), and
 * reaps it if it is dead.
 */
void pool_check_runners(struct pool *p);

/* Joins the threads (they must have stopped) and frees everything. NULL-safe. */
void pool_free(struct pool *p);
