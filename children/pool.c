/* SPDX-License-Identifier: MIT */
/*
 * The job threads of one worker: the only place in bulkhead where threads exist.
 *
 * One mutex (pool->lock) guards everything shared: the FIFO queue of jobs (a ring), the
 * outbox of results, and the stop flag. The main thread appends jobs (pool_submit) and swaps
 * the outbox out (pool_take_results); job threads take the head of the queue and push
 * results. A job thread does both in one critical section (push the result of the job it
 * finished, then take the next job), so one lock round trip per job, and so a job's result
 * never becomes visible before its thread has taken the next queued job: jobs start
 * strictly in queue order and each thread runs one at a time, which is what lets the master
 * infer that the first `threads` unfinished jobs in assignment order are the running ones.
 *
 * The one exception to the lock: pool_submit() writes the new jobs into the ring's free slots
 * past the tail without the lock, and only then adds them to q_n under it. That is safe
 * because only the main thread ever writes ring slots, moves the tail or reallocates the
 * ring (pool_submit, pool_cancel, pool_stop, all main-thread calls, never concurrent), the
 * free slots were reserved under the lock before (q_n + n <= q_cap, and job threads only
 * shrink q_n), job threads read only slots in [q_head, q_head + q_n), and the lock's
 * release/acquire orders the writes before any thread sees the larger q_n. A frame of
 * 1024 jobs is 24 kB to copy: under the lock, it put both job threads to sleep on it.
 * The lock is adaptive (spins a little before it sleeps in the kernel): a job thread holds
 * it for a few dozen ns per job, and with 1 us jobs two threads meet on it often; a plain
 * mutex sent the loser to sleep (a futex wait, a wake-up and two context switches) tens of
 * thousands of times per million jobs (bench/README.md, issue 17).
 *
 * Wake-ups: job threads wait on a condvar when the queue is empty; the main thread learns
 * about results from an eventfd that a job thread writes at most once per take (`woken`),
 * and that the last exiting thread writes after pool_stop(). Results are let pile up: a
 * job thread wakes the main thread only once WAKE_BATCH results wait, or the oldest has
 * waited WAKE_AGE, or fewer jobs than threads are left in the queue (a thread is about to
 * go idle: the master must hear now to refill it, and an emptying queue must never strand
 * results). The master keeps about 4 ms of work queued in a worker (daemon/dispatch.c,
 * dispatch_window_for()), so holding results for WAKE_AGE (2 ms) never starves the
 * threads. With 1 us jobs that is one wake-up (an eventfd write, a context switch, a frame
 * to the master) per WAKE_BATCH jobs instead of every few, with 100 us jobs one per twenty
 * or so; jobs longer than the window's target (2 per thread are queued) still report each
 * result at once. Why 1024: a quarter of the largest window (one ASSIGN frame, 4095), so
 * each DONE frame lets the master top the worker up at once; at 1 us that is one wake-up of
 * the main thread and the master per 0.5 ms, and 5-9 % more jobs/s than 256 in all three
 * shapes (bench/README.md, issue 17). From 10 us on (up to 4 threads a worker), WAKE_AGE
 * comes first, so what a crash loses there is unchanged. Why 2 ms: with as many job
 * threads as cores, every wake-up of the main thread and the master is CPU taken from a job
 * (at 1 ms, 100 us jobs ran 2-4 % slower than a bare pool); but results held when a job
 * crashes the worker are lost and their jobs run again (at 4 ms, a 1 % crash rate cost 10 %
 * more throughput than at 1 or 2 ms).
 * A result held back must not wait for the next job to end (that may be a long one, and the
 * master would count the finished job as running, up to its timeout): the thread that holds
 * one back arms a timerfd for WAKE_AGE, which the main thread polls too. Re-arming it costs
 * one syscall per batch, not per job. The master adds WAKE_AGE (BH_RESULT_HOLD_USEC) to its
 * deadlines, so a job that ended in time is never blamed because its result waited.
 *
 * Memory: nothing is allocated by job threads after start-up. The outbox always has room
 * for every result that can arrive before the next swap (invariant: out_cap >= out_n + q_n +
 * threads), so a push never allocates; pool_submit() and pool_take_results() grow the buffers
 * on the main thread. A job thread's struct bulkhead_job lives in its struct pool_thread and
 * is the thread's current job in the job context (job_context_enter()) while it runs, for
 * crash attribution (crash.c) and for the `tls` builtin. A job's input (INPUT frame) travels
 * with its queue entry and is freed by the job thread when the job ends (only jobs that have
 * one pay a free()). `busy` and the job's id, set under the lock, let pool_cancel() and
 * pool_stop() find a running job; cancelling one is an atomic flag the job polls (and a futex
 * that wakes job_context_wait_cancel()), plus what its kind does (job_spec_interrupt(): a
 * SIGTERM to an exec: job's process group, exec.c, which guards the pid against reuse). The
 * pool knows jobs only through job-spec.h: it runs them and never looks at their kind. A
 * queued job that is cancelled never starts: pool_cancel() takes it
 * out of the queue (the others keep their order, so the master's inference holds) and
 * reports it at once with BH_OUTCOME_CANCELLED, waking the main thread to send it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/protocol.h"
#include "common/sched-slice.h"
#include "common/units.h"
#include "contain.h"
#include "crash.h"
#include "exec-start.h"
#include "job-context.h"
#include "job-spec.h"
#include "pool.h"

#define QUEUE_INITIAL 1024u
#define WAKE_BATCH 1024u
#define WAKE_AGE BH_RESULT_HOLD_USEC /* the master allows for it in its deadlines */
#define THREAD_NAME_MAX 15 /* kernel comm limit, without the NUL */

/* Cache-line aligned: each job thread writes its own entry for every job. */
struct pool_thread {
	struct pool *pool;
	pthread_t tid;
	unsigned index;
	bool busy; /* running job (under pool->lock) */
	unsigned runner_gen; /* the pool's runner_gen when it last looked at its runner */
	struct bulkhead_job job;
} __attribute__((aligned(64)));

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t work; /* queue non-empty or stopping */
	pthread_cond_t ready; /* a thread finished starting */

	/* Ring of queued jobs: q[(q_head + i) & (q_cap - 1)], q_cap a power of two. */
	struct pool_job *q;
	size_t q_cap, q_head, q_n;

	/* Results: job threads push to out; the main thread owns spare between swaps. */
	struct pool_result *out, *spare;
	size_t out_n, out_cap, spare_cap;
	atomic_size_t held; /* out_n, for a crash handler that must not take the lock */
	usec_t out_since; /* when the oldest result in out was pushed */
	bool woken;       /* a job thread wrote the eventfd since the last take */

	unsigned n_threads, n_started, n_ready, n_running, n_idle;
	unsigned runner_gen; /* a runner died: the idle threads look at theirs (pool_check_runners) */
	int start_error;
	bool stopping;
	bool warm_malloc;
	int efd;
	int tfd; /* WAKE_AGE after the first result held back */
	char name[64];
	unsigned index;
	struct pool_thread *threads;
};

static void wake_main(struct pool *p)
{
	uint64_t one = 1;

	/* Only fails if the counter would overflow, and then the main thread is awake. */
	(void)!write(p->efd, &one, sizeof(one));
}

static void arm_wake_timer(struct pool *p)
{
	struct itimerspec its = { .it_value.tv_nsec = WAKE_AGE * 1000L };

	(void)timerfd_settime(p->tfd, 0, &its, NULL);
}

static void thread_set_name(struct pool_thread *t)
{
	char suffix[THREAD_NAME_MAX + 1], name[THREAD_NAME_MAX + 1];
	size_t len, room;

	/* The suffix always fits (index <= 65535, thread < 256): "/65535:255" is 10 bytes. */
	len = (size_t)snprintf(suffix, sizeof(suffix), "/%u:%u", t->pool->index, t->index);
	if (len > THREAD_NAME_MAX)
		len = THREAD_NAME_MAX;
	room = strnlen(t->pool->name, THREAD_NAME_MAX - len);
	memcpy(name, t->pool->name, room);
	memcpy(name + room, suffix, len);
	name[room + len] = '\0';
	pthread_setname_np(pthread_self(), name);
}

static int run_job(struct pool_thread *t, bool contain)
{
	int status;

	job_context_enter(&t->job);
	status = contain ? contain_run(&t->job) : job_spec_run(&t->job);
	job_context_leave();
	return status;
}

static int thread_start(struct pool_thread *t)
{
	int r;

	atomic_init(&t->job.contain_fd, -1);
	(void)sched_slice_set(0); /* the main thread's short slice is not for jobs */
	r = crash_thread_init();
	if (r < 0)
		return r;
	thread_set_name(t);
	if (t->pool->warm_malloc) {
		/* Makes glibc give this thread its arena now, before RLIMIT_AS is set. */
		void *volatile m = malloc(64);

		if (!m)
			return -ENOMEM;
		free(m);
	}
	return 0;
}

/*
 * Pushes a job's result into the outbox (it always has room) and decides how the main thread
 * hears of it: *wake (write the eventfd once the lock is released) or *arm (the timer).
 * Under p->lock.
 */
static void push_result(struct pool *p, const struct pool_result *r, usec_t now, bool *wake,
			bool *arm)
{
	if (p->out_n == 0)
		p->out_since = now;
	p->out[p->out_n++] = *r;
	atomic_store_explicit(&p->held, p->out_n, memory_order_relaxed);
	if (!p->woken &&
	    (p->out_n >= WAKE_BATCH || p->q_n < p->n_threads || now - p->out_since >= WAKE_AGE))
		*wake = p->woken = true;
	else if (!p->woken && p->out_n == 1)
		*arm = true;
}

static void *thread_main(void *arg)
{
	struct pool_thread *t = arg;
	struct pool *p = t->pool;
	bool wake = false, arm = false, last;
	int r;

	r = thread_start(t);

	pthread_mutex_lock(&p->lock);
	if (r < 0 && p->start_error == 0)
		p->start_error = r;
	p->n_ready++;
	pthread_cond_signal(&p->ready);
	for (;;) {
		struct pool_result res;
		struct pool_job e;
		usec_t t0, t1;
		int status;

		if (p->stopping || p->start_error < 0)
			break;
		if (t->runner_gen != p->runner_gen) {
			/* A runner died (its pidfd fired): if ours, reaped, not left a zombie. */
			t->runner_gen = p->runner_gen;
			pthread_mutex_unlock(&p->lock);
			exec_runner_check();
			pthread_mutex_lock(&p->lock);
			continue;
		}
		if (p->q_n == 0) {
			if (wake) {
				pthread_mutex_unlock(&p->lock);
				wake_main(p);
				wake = false;
				pthread_mutex_lock(&p->lock);
				continue;
			}
			p->n_idle++;
			pthread_cond_wait(&p->work, &p->lock);
			p->n_idle--;
			continue;
		}
		e = p->q[p->q_head];
		p->q_head = (p->q_head + 1) & (p->q_cap - 1);
		p->q_n--;
		t->job.id = e.job_id;
		t->job.spec = e.spec;
		t->job.input = e.input;
		atomic_store_explicit(&t->job.cancelled, 0, memory_order_relaxed);
		t->busy = true;
		pthread_mutex_unlock(&p->lock);

		if (wake) {
			wake_main(p);
			wake = false;
		} else if (arm) {
			arm_wake_timer(p);
		}
		arm = false;
		/*
		 * A job of this worker crashed (its report is going out): the process is done for,
		 * and what it still holds, this job too, runs again elsewhere as a bystander. No
		 * job starts in it, whatever its memory now holds; the signal ends us here.
		 */
		if (crash_reported())
			crash_hold_thread();
		t0 = now_usec();
		status = run_job(t, e.contain);
		t1 = now_usec();
		if (e.input) {
			t->job.input = NULL;
			free(e.input);
		}

		res = (struct pool_result){
			.job_id = e.job_id,
			.status = status,
			.run_usec = t1 - t0 > UINT32_MAX ? UINT32_MAX : (uint32_t)(t1 - t0),
			.outcome = t->job.outcome,
		};
		pthread_mutex_lock(&p->lock);
		t->busy = false;
		push_result(p, &res, t1, &wake, &arm);
	}
	last = --p->n_running == 0;
	pthread_mutex_unlock(&p->lock);

	if (wake || last)
		wake_main(p);
	contain_thread_fini(&t->job);
	exec_thread_fini();
	crash_thread_fini();
	return NULL;
}

/* Grows the queue ring to hold at least `need` jobs, keeping their order. Under p->lock. */
static int queue_reserve(struct pool *p, size_t need)
{
	struct pool_job *q;
	size_t cap = p->q_cap;

	if (need <= cap)
		return 0;
	while (cap < need)
		cap *= 2;
	q = malloc(cap * sizeof(*q));
	if (!q)
		return -ENOMEM;
	for (size_t i = 0; i < p->q_n; i++)
		q[i] = p->q[(p->q_head + i) & (p->q_cap - 1)];
	free(p->q);
	p->q = q;
	p->q_cap = cap;
	p->q_head = 0;
	return 0;
}

static int results_reserve(struct pool_result **buf, size_t *cap, size_t need)
{
	struct pool_result *b;
	size_t c = *cap ? *cap : QUEUE_INITIAL;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	b = realloc(*buf, c * sizeof(*b));
	if (!b)
		return -ENOMEM;
	*buf = b;
	*cap = c;
	return 0;
}

int pool_submit(struct pool *p, const struct pool_job *jobs, size_t n)
{
	size_t tail, mask;
	int r;

	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	if (p->q_n + p->out_n + n > POOL_JOBS_MAX) {
		pthread_mutex_unlock(&p->lock);
		return -E2BIG;
	}
	r = queue_reserve(p, p->q_n + n);
	if (r == 0)
		r = results_reserve(&p->out, &p->out_cap, p->out_n + p->q_n + n + p->n_threads);
	tail = p->q_head + p->q_n;
	mask = p->q_cap - 1;
	pthread_mutex_unlock(&p->lock);
	if (r < 0)
		return r;

	/*
	 * The slots past the tail are free and no job thread reads them until q_n says so:
	 * fill them unlocked (a frame's worth of jobs, tens of kB, would otherwise hold the
	 * job threads off the lock, and put them to sleep on it), then publish under the lock.
	 */
	for (size_t i = 0; i < n; i++)
		p->q[(tail + i) & mask] = jobs[i];

	pthread_mutex_lock(&p->lock);
	p->q_n += n;
	if (p->n_idle > 0) {
		if (n >= p->n_idle)
			pthread_cond_broadcast(&p->work);
		else
			for (size_t i = 0; i < n; i++)
				pthread_cond_signal(&p->work);
	}
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void pool_check_runners(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->runner_gen++;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
}

const atomic_size_t *pool_results_held(struct pool *p)
{
	return &p->held;
}

size_t pool_take_results(struct pool *p, const struct pool_result **ret)
{
	struct pool_result *b;
	size_t n, c;

	pthread_mutex_lock(&p->lock);
	n = p->out_n;
	if (n == 0 || results_reserve(&p->spare, &p->spare_cap, p->q_n + p->n_threads) < 0) {
		/*
		 * Nothing to take, or no memory for a fresh outbox: then the results stay
		 * where they are (the outbox is large enough) and the caller tries again later.
		 */
		pthread_mutex_unlock(&p->lock);
		*ret = NULL;
		return 0;
	}
	b = p->out;
	c = p->out_cap;
	p->out = p->spare;
	p->out_cap = p->spare_cap;
	p->out_n = 0;
	atomic_store_explicit(&p->held, 0, memory_order_relaxed);
	p->woken = false;
	p->spare = b;
	p->spare_cap = c;
	pthread_mutex_unlock(&p->lock);
	*ret = b;
	return n;
}

int pool_eventfd(struct pool *p)
{
	return p->efd;
}

int pool_timerfd(struct pool *p)
{
	return p->tfd;
}

void pool_eventfd_clear(struct pool *p)
{
	uint64_t v;

	(void)!read(p->efd, &v, sizeof(v));
	(void)!read(p->tfd, &v, sizeof(v));
}

/* Frees the inputs of the queued jobs and empties the queue. Under p->lock. */
static void queue_drop(struct pool *p)
{
	for (size_t i = 0; i < p->q_n; i++)
		free(p->q[(p->q_head + i) & (p->q_cap - 1)].input);
	p->q_n = 0;
}

void pool_stop(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	queue_drop(p);
	job_context_stop();
	for (unsigned i = 0; i < p->n_started; i++)
		if (p->threads[i].busy)
			job_spec_interrupt(&p->threads[i].job);
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
}

/* Takes the i-th queued job out of the queue, keeping the others' order. Under p->lock. */
static struct pool_job queue_take(struct pool *p, size_t i)
{
	size_t mask = p->q_cap - 1;
	struct pool_job e = p->q[(p->q_head + i) & mask];

	for (; i + 1 < p->q_n; i++)
		p->q[(p->q_head + i) & mask] = p->q[(p->q_head + i + 1) & mask];
	p->q_n--;
	return e;
}

bool pool_cancel(struct pool *p, uint64_t job_id)
{
	bool found = false, wake = false, arm = false;
	struct pool_result res;

	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->q_n && !found; i++) {
		struct pool_job e;

		if (p->q[(p->q_head + i) & (p->q_cap - 1)].job_id != job_id)
			continue;
		/* Queued: it never starts, and says so now, not when its turn would come. */
		e = queue_take(p, i);
		free(e.input);
		res = (struct pool_result){ .job_id = job_id, .outcome = BH_OUTCOME_CANCELLED };
		push_result(p, &res, now_usec(), &wake, &arm);
		p->woken = wake = true;
		found = true;
	}
	for (unsigned i = 0; i < p->n_started && !found; i++) {
		struct pool_thread *t = &p->threads[i];

		if (t->busy && t->job.id == job_id) {
			job_context_cancel(&t->job);
			contain_interrupt(&t->job);
			job_spec_interrupt(&t->job);
			found = true;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (wake)
		wake_main(p);
	return found;
}

bool pool_spec_in_use(struct pool *p, const struct job_spec *spec)
{
	bool used = false;

	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->q_n && !used; i++)
		used = p->q[(p->q_head + i) & (p->q_cap - 1)].spec == spec;
	for (unsigned i = 0; i < p->n_started && !used; i++)
		used = p->threads[i].busy && p->threads[i].job.spec == spec;
	pthread_mutex_unlock(&p->lock);
	return used;
}

bool pool_stopped(struct pool *p)
{
	bool r;

	pthread_mutex_lock(&p->lock);
	r = p->stopping && p->n_running == 0;
	pthread_mutex_unlock(&p->lock);
	return r;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->n_started; i++)
		pthread_join(p->threads[i].tid, NULL);
	if (p->q)
		queue_drop(p);
	free(p->threads);
	free(p->q);
	free(p->out);
	free(p->spare);
	if (p->efd >= 0)
		close(p->efd);
	if (p->tfd >= 0)
		close(p->tfd);
	pthread_cond_destroy(&p->ready);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static int pool_alloc(const struct pool_options *o, struct pool **ret)
{
	pthread_mutexattr_t ma;
	struct pool *p;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&p->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->ready, NULL);
	p->efd = p->tfd = -1;
	p->n_threads = o->threads;
	p->index = o->index;
	p->warm_malloc = o->warm_malloc;
	snprintf(p->name, sizeof(p->name), "%s", o->name);
	*ret = p;

	p->threads = aligned_alloc(_Alignof(struct pool_thread), o->threads * sizeof(*p->threads));
	if (p->threads)
		memset(p->threads, 0, o->threads * sizeof(*p->threads));
	p->q_cap = QUEUE_INITIAL;
	p->q = malloc(p->q_cap * sizeof(*p->q));
	if (!p->threads || !p->q ||
	    results_reserve(&p->out, &p->out_cap, QUEUE_INITIAL + o->threads) < 0 ||
	    results_reserve(&p->spare, &p->spare_cap, QUEUE_INITIAL + o->threads) < 0)
		return -ENOMEM;
	p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->efd < 0)
		return -errno;
	p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (p->tfd < 0)
		return -errno;
	return 0;
}

int pool_new(const struct pool_options *o, struct pool **ret)
{
	pthread_attr_t attr;
	struct pool *p = NULL;
	int r;

	if (o->threads < 1 || o->threads > POOL_THREADS_MAX)
		return -EINVAL;
	r = pool_alloc(o, &p);
	if (r < 0) {
		pool_free(p);
		return r;
	}

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, POOL_THREAD_STACK);
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < o->threads; i++) {
		struct pool_thread *t = &p->threads[i];

		t->pool = p;
		t->index = i;
		r = -pthread_create(&t->tid, &attr, thread_main, t);
		if (r < 0) {
			p->start_error = r;
			break;
		}
		p->n_started++;
		p->n_running++;
	}
	while (p->n_ready < p->n_started)
		pthread_cond_wait(&p->ready, &p->lock);
	r = p->start_error;
	if (r < 0) {
		p->stopping = true;
		pthread_cond_broadcast(&p->work);
	}
	pthread_mutex_unlock(&p->lock);
	pthread_attr_destroy(&attr);

	if (r < 0) {
		pool_free(p);
		return r;
	}
	*ret = p;
	return 0;
}
