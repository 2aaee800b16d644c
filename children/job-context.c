/* SPDX-License-Identifier: MIT */
/*
 * The job context: the state a job thread shares with the rest of the worker, with no
 * knowledge of how jobs are queued (pool.c), what kinds there are (job-spec.c) or how a
 * crash is reported (crash.c). That is what lets every other file of children/ sit on top
 * of this one without a cycle.
 *
 * Owned here: the master socket's number (the main thread owns the fd itself), the log
 * fields, the worker's stop flag, and the thread-local current job. A job's own state
 * (struct bulkhead_job) lives in its job thread (pool.c); this file only points at it while
 * it runs.
 *
 * Frames from job threads (RESULT, PROGRESS, EXEC) go straight to the master socket with a
 * blocking send(): a SOCK_SEQPACKET message is atomic, so they never interleave with the
 * main thread's DONE frames; the pool sends a job's RESULT before its result enters the
 * outbox, so before its DONE entry.
 *
 * Cancellation: job->cancelled is a 32-bit word that job_context_cancel() sets and wakes as a
 * futex, so a job waiting in job_context_wait_cancel() (the `sleep` builtin) returns at once,
 * and a busy loop (`spin`, `hang`) sees it with one relaxed load. The stop flag is separate:
 * plugins see it through bulkhead_job_cancelled(), the builtins' waits do not (a drain lets
 * them run to their end).
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/units.h"
#include "job-context.h"

static int master_fd = -1;
static atomic_bool stopping;
static char log_pool[80] = "POOL=", log_worker[32] = "WORKER=";

/* Initial-exec (the executable's own TLS): reading it allocates nothing, in a handler too. */
static __thread struct bulkhead_job *current_job __attribute__((tls_model("initial-exec")));

void job_context_set_socket(int fd)
{
	master_fd = fd;
}

int job_context_socket(void)
{
	return master_fd;
}

int job_context_send(const void *buf, size_t len)
{
	if (master_fd < 0)
		return 0;
	while (send(master_fd, buf, len, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -errno; /* the master is gone: the main thread finds out too */
	return 0;
}

void job_context_set_log(const char *pool, unsigned index)
{
	snprintf(log_pool, sizeof(log_pool), "POOL=%s", pool);
	snprintf(log_worker, sizeof(log_worker), "WORKER=%s/%u", pool, index);
}

const char *job_context_log_pool(void)
{
	return log_pool;
}

const char *job_context_log_worker(void)
{
	return log_worker;
}

void job_context_enter(struct bulkhead_job *job)
{
	current_job = job;
	atomic_signal_fence(memory_order_seq_cst);
}

void job_context_leave(void)
{
	atomic_signal_fence(memory_order_seq_cst);
	current_job = NULL;
}

struct bulkhead_job *job_context_current(void)
{
	return current_job;
}

void job_context_stop(void)
{
	atomic_store(&stopping, true);
}

bool job_context_stopping(void)
{
	return atomic_load_explicit(&stopping, memory_order_relaxed);
}

void job_context_cancel(struct bulkhead_job *job)
{
	atomic_store(&job->cancelled, 1);
	(void)syscall(SYS_futex, &job->cancelled, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

bool job_context_wait_cancel(struct bulkhead_job *job, uint64_t deadline)
{
	while (!job_context_cancel_requested(job)) {
		struct timespec ts;
		usec_t now = now_usec();

		if (now >= deadline)
			return false;
		ts.tv_sec = (time_t)(deadline / USEC_PER_SEC);
		ts.tv_nsec = (long)(deadline % USEC_PER_SEC) * 1000L;
		/* Absolute, on CLOCK_MONOTONIC; returns at once if the flag is no longer 0. */
		(void)syscall(SYS_futex, &job->cancelled, FUTEX_WAIT_BITSET_PRIVATE, 0,
			      deadline == USEC_INFINITY ? NULL : &ts, NULL, FUTEX_BITSET_MATCH_ANY);
	}
	return true;
}
