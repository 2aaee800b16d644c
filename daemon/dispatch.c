/* SPDX-License-Identifier: MIT */
/*
 * The dispatcher: how many jobs a worker may hold (its window, from the pool's measured run
 * time), topping it up with ASSIGN frames (INPUT frames first, held back when the socket is
 * full), suspects on a reserved worker with nothing else, and the job specs each worker
 * knows (SPEC right before the first ASSIGN that needs it, FORGET for submitted groups).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/idmap.h"
#include "common/log.h"
#include "common/protocol.h"
#include "config/probe.h"
#include "daemon/master-int.h"
#include "daemon/notify.h"
#include "daemon/policy.h"
#include "daemon/spawn-worker.h"

static void assign(struct worker *w, bool alone, unsigned max);

/*
 * How many jobs a worker may hold (running + queued in it). Enough queued work to keep its
 * threads busy for about QUEUE_TARGET while the master refills it, and no more: a worker
 * that dies sends its unstarted jobs back (cheap, they are not re-run), but jobs parked in
 * one worker cannot go to an idle one. Until the pool has seen a result the job time is
 * unknown (they may be long), so it starts at 2 per thread. The target is twice the time a
 * worker may hold results back (BH_RESULT_HOLD_USEC): the refill it triggers arrives while
 * the other half is still being worked off.
 */
#define QUEUE_TARGET (2 * BH_RESULT_HOLD_USEC)
#define WINDOW_PER_THREAD_MIN 2u

unsigned dispatch_window_for(uint64_t run_est, unsigned threads)
{
	uint64_t per_thread = WINDOW_PER_THREAD_MIN;

	if (run_est > 0)
		per_thread = (QUEUE_TARGET * 16 + run_est - 1) / run_est;
	if (per_thread < WINDOW_PER_THREAD_MIN)
		per_thread = WINDOW_PER_THREAD_MIN;
	if (per_thread * threads > BH_ASSIGN_MAX)
		return BH_ASSIGN_MAX;
	return (unsigned)per_thread * threads;
}

uint64_t dispatch_learn_est(uint64_t run_est, uint64_t sum_usec, uint32_t n)
{
	uint64_t mean = sum_usec * 16 / n;

	if (mean == 0)
		mean = 1; /* below 1/16 us: as fast as it gets */
	if (run_est == 0)
		return mean;
	if (mean > run_est) /* adapt to slower jobs at once: do not hoard */
		return mean;
	return run_est - (run_est - mean) / 4;
}

bool dispatch_top_up(unsigned held, unsigned window)
{
	/*
	 * Once a quarter of the window is free, not after every result: one ASSIGN frame then
	 * carries many jobs (with a window of a few jobs, after every one).
	 */
	return held + (window + 3) / 4 <= window;
}

/* Folds a DONE frame's mean run time (sum over n jobs) into the pool's estimate. */
void dispatch_learn(struct pool *p, uint64_t sum_usec, uint32_t n)
{
	p->run_est = dispatch_learn_est(p->run_est, sum_usec, n);
}

/*
 * ---- specs on workers ----
 *
 * A worker learns a group's spec (SPEC) right before the first ASSIGN that names it, so it
 * holds only the specs of jobs it was given. For a submitted group (JOB_ADHOC) the master
 * counts that worker's jobs of it in flight (w->specs: spec id -> count | SPEC_ADHOC). A spec
 * whose count dropped to 0 stays defined, idle, so that the next submit of the same kind
 * (one job per request is common) costs no SPEC and FORGET frames, each a wake-up of the
 * worker; beyond SPEC_IDLE_MAX idle specs the worker is told to FORGET one that was not just
 * used. A config's groups stay defined. Spec ids are never reused (ledger_group_spec_id), so
 * a FORGET that could not be sent yet (socket full: w->forgets_pending, retried) never
 * confuses a later group.
 */
#define SPEC_ADHOC (1ull << 63)
#define SPEC_IDLE_MAX 32u

/*
 * Makes sure w knows job j's spec before j is assigned to it: 0, -EAGAIN (the socket is
 * full: assign j later), or another -errno (j cannot go to w).
 */
static int spec_ensure(struct worker *w, const struct job *j)
{
	struct ledger *l = w->m->ledger;
	uint32_t id = ledger_group_spec_id(l, j->group);
	const struct group_config *gc;
	uint8_t buf[BH_FRAME_MAX];
	size_t len;
	int r;

	if (idmap_find(&w->specs, id))
		return 0;
	gc = ledger_group(l, j->group);
	len = bh_encode_spec(buf, sizeof(buf),
			     &(struct bh_spec){ .id = id,
						.run = gc->run,
						.args = gc->args,
						.name = gc->name,
						.output = gc->output,
						.environment = gc->environment,
						.working_directory = gc->working_directory,
						.success_exit_status = gc->success_exit_status,
						.has_nice = gc->nice != EXEC_NICE_INHERIT,
						.nice = gc->nice });
	if (len == 0) { /* a spec the config checks should have refused */
		slot_kill(w, END_BROKEN, "a job spec does not fit in a frame");
		return -EINVAL;
	}
	/* EAGAIN: later; EPIPE and the like: it is dying, its exit is on its way. */
	r = slot_send(w, buf, len);
	if (r == 0)
		r = idmap_add(&w->specs, id, j->flags & JOB_ADHOC ? SPEC_ADHOC : 0);
	if (r == 0 && (j->flags & JOB_ADHOC))
		w->idle_specs++; /* until spec_hold() counts j */
	return r;
}

/* A job of a submitted group was assigned to w / came back from it. */
static void spec_hold(struct worker *w, const struct job *j)
{
	struct idmap_entry *e;

	if (!(j->flags & JOB_ADHOC))
		return;
	e = idmap_find(&w->specs, ledger_group_spec_id(w->m->ledger, j->group));
	if (!e)
		return;
	if (e->value == SPEC_ADHOC)
		w->idle_specs--;
	e->value++;
}

static bool send_forget(struct worker *w, uint32_t id)
{
	uint8_t buf[32];

	if (slot_send(w, buf, bh_encode_forget(buf, sizeof(buf), id)) < 0) {
		w->forgets_pending = true;
		return false;
	}
	idmap_del(&w->specs, id);
	w->idle_specs--;
	return true;
}

/* FORGETs idle specs other than keep while there are more than SPEC_IDLE_MAX. */
static void forget_idle(struct worker *w, uint32_t keep)
{
	w->forgets_pending = false;
	if (w->end == END_STOP || w->state == W_KILLED)
		return;
again:
	if (w->idle_specs <= SPEC_IDLE_MAX)
		return;
	for (uint32_t i = 0; i < w->specs.cap; i++) {
		const struct idmap_entry *e = &w->specs.e[i];

		if (e->id == 0 || e->id == keep || e->value != SPEC_ADHOC)
			continue;
		if (!send_forget(w, e->id))
			return; /* full: pending again */
		goto again; /* the table changed under us */
	}
}

void dispatch_spec_release(struct worker *w, const struct job *j)
{
	uint32_t id;
	struct idmap_entry *e;

	if (!(j->flags & JOB_ADHOC))
		return;
	id = ledger_group_spec_id(w->m->ledger, j->group);
	e = idmap_find(&w->specs, id);
	if (e && e->value > SPEC_ADHOC && --e->value == SPEC_ADHOC) {
		w->idle_specs++;
		if (w->idle_specs > SPEC_IDLE_MAX)
			forget_idle(w, id);
	}
}

/* Sends the FORGETs that found the socket full. */
void dispatch_flush_forgets(struct worker *w)
{
	if (w->forgets_pending)
		forget_idle(w, 0);
}

static bool pool_has_reserved(const struct pool *p)
{
	for (unsigned i = 0; i < p->n_slots; i++)
		if (p->workers[i]->mode == MODE_RESERVED)
			return true;
	return false;
}

static void dispatch_block(struct worker *w)
{
	w->blocked = true;
	sd_event_source_set_io_events(w->io, EPOLLIN | EPOLLOUT);
}

/* Sends the job's INPUT frame (the job has one). */
static int send_input(struct worker *w, const struct job *j)
{
	const char *input = ledger_job_input(w->m->ledger, j);
	size_t len;

	if (!input)
		return -EINVAL;
	len = bh_encode_input(w->m->ibuf, sizeof(w->m->ibuf), j->id, input);
	if (len == 0)
		return -EINVAL;
	return slot_send(w, w->m->ibuf, len);
}

/* Keeps an ASSIGN frame (whose INPUT frames went out) to send once the socket has room. */
static int hold_frame(struct worker *w, const void *buf, size_t len)
{
	w->held = malloc(len);
	if (!w->held)
		return -ENOMEM;
	memcpy(w->held, buf, len);
	w->held_len = len;
	dispatch_block(w);
	return 0;
}

static void assign(struct worker *w, bool alone, unsigned max)
{
	struct master *m = w->m;
	struct job *jobs[BH_ASSIGN_MAX];
	uint8_t contained[BH_ASSIGN_MAX];
	struct bh_batch b;
	unsigned n = 0, inputs = 0;
	int input_err = 0;
	size_t len;
	usec_t now;
	int r;

	if (max > BH_ASSIGN_MAX)
		max = BH_ASSIGN_MAX;
	/* Tracking them cannot fail once the frame is out: room first, else no jobs now. */
	if (inflight_reserve(w, max) < 0)
		return;
	bh_batch_init(&b, m->buf, sizeof(m->buf), BH_FRAME_ASSIGN);
	while (n < max) {
		struct job *j = ledger_pop(m->ledger, w->pool->index, alone);
		uint32_t flags = 0;

		if (!j)
			break;
		input_err = spec_ensure(w, j);
		if (input_err < 0) {
			ledger_unpop(m->ledger, j);
			break;
		}
		if (__builtin_expect(j->flags & JOB_HAS_INPUT, 0)) {
			input_err = send_input(w, j);
			if (input_err < 0) {
				ledger_unpop(m->ledger, j);
				break;
			}
			flags = BH_ASSIGN_INPUT;
			inputs++;
		}
		/* A job that runs alone runs contained: its crash costs a fork, not the worker. */
		if (alone && ledger_group(m->ledger, j->group)->kind != JOB_KIND_EXEC)
			flags |= BH_ASSIGN_CONTAIN;
		bh_batch_add_assign(&b, j->id, ledger_group_spec_id(m->ledger, j->group), flags);
		contained[n] = flags & BH_ASSIGN_CONTAIN ? SLOT_CONTAINED : 0;
		jobs[n++] = j;
	}
	len = bh_batch_finish(&b);
	if (input_err == -EAGAIN)
		dispatch_block(w); /* what went out is assigned below; the rest waits for room */
	if (n == 0)
		return;
	r = slot_send(w, m->buf, len);
	if (r < 0 && (inputs == 0 || r != -EAGAIN || hold_frame(w, m->buf, len) < 0)) {
		while (n > 0)
			ledger_unpop(m->ledger, jobs[--n]);
		if (r == -EAGAIN)
			dispatch_block(w);
		return;
	}
	now = now_usec();
	for (unsigned i = 0; i < n; i++) {
		/* The table's slot of a job a few ahead, loaded while this one is tracked. */
		if (i + 8 < n)
			flights_prefetch(&m->flights, jobs[i + 8]->id);
		ledger_assign(m->ledger, jobs[i]);
		inflight_assign(w, jobs[i], now, r < 0, contained[i]);
		spec_hold(w, jobs[i]);
	}
	if (r < 0)
		w->n_held = n;
	if (alone)
		w->mode = MODE_SOLO;
}

void dispatch_fill(struct worker *w)
{
	struct ledger *l = w->m->ledger;
	unsigned pool = w->pool->index, win;

	/* crash_frame: it is dying; the results it flushes before it dies ask for no refill */
	if (w->state != W_READY || w->blocked || w->mode == MODE_SOLO || w->end == END_INJECT ||
	    w->crash_frame || w->m->stopping)
		return;
	if (w->spare) {
		/* The spare and the solo worker (spare.c): the solo worker runs alone jobs, one at
		 * a time; both are replaced once idle if outdated. */
		if (inflight_count(w) > 0 || w->end != END_NONE)
			return;
		if (w->next == NEXT_REPLACE || slot_outdated(w))
			spare_ensure(w->pool);
		else if (w->solo && w->next == NEXT_RESTART && ledger_queued(l, pool, true) > 0)
			assign(w, true, 1);
		return;
	}
	if (!spare_runs_alone(w->pool) && ledger_queued(l, pool, true) > 0) {
		if (inflight_count(w) == 0) {
			w->mode = MODE_SHARED;
			assign(w, true, 1);
			return;
		}
		if (w->mode != MODE_RESERVED && !pool_has_reserved(w->pool))
			w->mode = MODE_RESERVED;
		if (w->mode == MODE_RESERVED)
			return;
	} else {
		w->mode = MODE_SHARED;
	}
	win = dispatch_window_for(w->pool->run_est, w->q.threads);
	if (dispatch_top_up(inflight_count(w), win) && ledger_queued(l, pool, false) > 0)
		assign(w, false, win - inflight_count(w));
}

void dispatch_pool(struct pool *p)
{
	for (unsigned i = 0; i < p->n_slots; i++)
		dispatch_fill(p->workers[i]);
	for (unsigned k = 0; k < MASTER_SOLO_MAX; k++)
		if (p->solo[k])
			dispatch_fill(p->solo[k]);
}
