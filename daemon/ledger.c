/* SPDX-License-Identifier: MIT */
/*
 * The ledger (see ledger.h): the blame rules of DESIGN §3 in one place, above the job store
 * (store.h) that keeps the jobs. Every transition is decided here, from the job's counters and
 * its group's limits, and handed to the store whole: requeue() or end(), never a state set
 * half-way. The end hooks run here, once per job that reached a final state.
 *
 * What is not a rule (adding jobs, views, queues, extras, retention, the durable store's
 * flush and logs) passes straight through to the store: ledger-store.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/protocol.h"
#include "daemon/ledger-int.h"
#include "daemon/ledger.h"
#include "daemon/store.h"

/* j's time now, as a history field (1 + ms after it was accepted, saturated). */
static uint32_t since_accepted(struct ledger *l, const struct job *j)
{
	int64_t ms = (l->now(l->now_data) - j->accepted_at) / 1000;

	if (ms < 0)
		ms = 0; /* the clock went back: never before it was accepted */
	return ms >= (int64_t)JOB_MS_MAX - 1 ? JOB_MS_MAX : (uint32_t)ms + 1;
}

/* ---- the rules ---- */

uint64_t ledger_unfinished(const struct ledger *l)
{
	const struct ledger_stats *s = ledger_stats(l);

	return s->by_state[JOB_QUEUED] + s->by_state[JOB_RUNNING];
}

bool ledger_group_ok(const struct ledger *l, unsigned group)
{
	const struct group_counts *c = ledger_group_counts(l, group);

	return c->by_state[ledger_group(l, group)->expect] == c->total;
}

void ledger_assign(struct ledger *l, struct job *j)
{
	l->ops->set_state(l->st, j, JOB_RUNNING);
}

void ledger_started(struct ledger *l, struct job *j)
{
	l->ops->set_progress(l->st, j, -1);
	j->started_ms = since_accepted(l, j);
	j->node = l->node;
	j->runs++;
	l->ops->stats(l->st)->runs++;
	l->ops->touch(l->st, j);
}

void ledger_start(struct ledger *l, struct job *j)
{
	ledger_assign(l, j);
	ledger_started(l, j);
}

static void end_job(struct ledger *l, struct job *j, enum job_state s, enum job_cause cause,
		    int detail);

static void requeue(struct ledger *l, struct job *j, bool alone)
{
	if (j->flags & JOB_CANCEL_REQUESTED) {
		end_job(l, j, JOB_CANCELLED, CAUSE_CANCELLED, 0);
		return;
	}
	l->ops->requeue(l->st, j, alone);
}

/* Re-queued after an attempt the job is blamed for: it waits its retry_delay, if any. */
static void requeue_attempt(struct ledger *l, struct job *j, bool alone)
{
	requeue(l, j, alone);
	(void)ledger_hold(l, j);
}

static void end_job(struct ledger *l, struct job *j, enum job_state s, enum job_cause cause,
		    int detail)
{
	j->ended_ms = since_accepted(l, j);
	l->ops->end(l->st, j, s, cause, detail);
	for (unsigned i = 0; i < l->n_end_hooks; i++)
		l->end_hooks[i].fn(l->end_hooks[i].userdata, j);
}

int ledger_add_end_hook(struct ledger *l, ledger_end_hook_fn fn, void *userdata)
{
	if (l->n_end_hooks >= END_HOOKS_MAX)
		return -ENOSPC;
	l->end_hooks[l->n_end_hooks++] = (struct end_hook){ fn, userdata };
	return 0;
}

void ledger_remove_end_hook(struct ledger *l, ledger_end_hook_fn fn, void *userdata)
{
	for (unsigned i = 0; i < l->n_end_hooks; i++) {
		if (l->end_hooks[i].fn != fn || l->end_hooks[i].userdata != userdata)
			continue;
		memmove(&l->end_hooks[i], &l->end_hooks[i + 1],
			(l->n_end_hooks - i - 1) * sizeof(l->end_hooks[0]));
		l->n_end_hooks--;
		return;
	}
}

int ledger_cancel_queued_job(struct ledger *l, struct job *j, enum job_cause cause)
{
	if (j->state != JOB_QUEUED || (!ledger_hold_take(l, j) && !l->ops->unqueue(l->st, j)))
		return -EBUSY; /* not queued, or popped: on its way to a worker */
	end_job(l, j, JOB_CANCELLED, cause, 0);
	return 0;
}

void ledger_finish(struct ledger *l, struct job *j, int status)
{
	if (j->state != JOB_RUNNING)
		return;
	if (status == 0) {
		end_job(l, j, JOB_DONE, CAUSE_NONE, 0);
		return;
	}
	if (j->flags & JOB_CANCEL_REQUESTED) {
		end_job(l, j, JOB_CANCELLED, CAUSE_CANCELLED, 0);
		return;
	}
	j->attempts++;
	j->cause = CAUSE_STATUS;
	j->cause_detail = status;
	if (j->attempts >= ledger_group(l, j->group)->max_attempts)
		end_job(l, j, JOB_FAILED, CAUSE_STATUS, status);
	else
		requeue_attempt(l, j, false);
}

void ledger_spawn_failed(struct ledger *l, struct job *j, int err)
{
	if (j->state != JOB_RUNNING)
		return;
	if (j->flags & JOB_CANCEL_REQUESTED) {
		end_job(l, j, JOB_CANCELLED, CAUSE_CANCELLED, 0);
		return;
	}
	j->attempts++;
	j->cause = CAUSE_SPAWN;
	j->cause_detail = err;
	if (j->attempts >= ledger_group(l, j->group)->max_attempts)
		end_job(l, j, JOB_FAILED, CAUSE_SPAWN, err);
	else
		requeue_attempt(l, j, false);
}

static void blame(struct ledger *l, struct job *j, enum job_cause cause, int detail, bool alone)
{
	if (j->state != JOB_RUNNING)
		return;
	j->attempts++;
	j->cause = (uint8_t)cause;
	j->cause_detail = detail;
	l->ops->stats(l->st)->culprits++;
	if (j->attempts >= ledger_group(l, j->group)->max_attempts)
		end_job(l, j, cause == CAUSE_TIMEOUT ? JOB_TIMED_OUT : JOB_CRASHED, cause, detail);
	else
		requeue_attempt(l, j, alone);
}

void ledger_blame(struct ledger *l, struct job *j, enum job_cause cause, int detail)
{
	blame(l, j, cause, detail, true); /* it took its worker down once: never again others */
}

void ledger_blame_command(struct ledger *l, struct job *j, enum job_cause cause, int detail)
{
	blame(l, j, cause, detail, false);
}

void ledger_request_cancel(struct ledger *l, struct job *j)
{
	if (!job_state_is_final(j->state)) {
		j->flags |= JOB_CANCEL_REQUESTED;
		l->ops->touch(l->st, j);
	}
}

/* Re-runs that are not the job's fault are capped so that every run ends. */
static bool rerun_allowed(struct ledger *l, struct job *j, int signo)
{
	if (j->reruns < JOB_RERUN_MAX)
		return true;
	end_job(l, j, JOB_CRASHED, CAUSE_RERUNS, signo);
	return false;
}

void ledger_bystander(struct ledger *l, struct job *j, bool started)
{
	if (j->state != JOB_RUNNING)
		return;
	/*
	 * A job that had not started lost nothing: re-queued without counting. Only started
	 * ones count towards the cap; both go to the back, behind the jobs that may crash next.
	 * A long job in a pool where others crash often could be hit again and again and reach
	 * the cap through no fault of its own: after BYSTANDER_ALONE_AFTER hits it runs alone,
	 * where no other job can take it down.
	 */
	if (started) {
		if (!rerun_allowed(l, j, 0))
			return;
		j->reruns++;
		l->ops->stats(l->st)->reruns_bystander++;
	}
	requeue(l, j, started && j->reruns >= BYSTANDER_ALONE_AFTER);
}

void ledger_suspect(struct ledger *l, struct job *j, int signo)
{
	if (j->state != JOB_RUNNING || !rerun_allowed(l, j, signo))
		return;
	j->reruns++;
	l->ops->stats(l->st)->reruns_suspect++;
	requeue(l, j, true);
}

void ledger_cancel(struct ledger *l, struct job *j, enum job_cause cause)
{
	if (job_state_is_final(j->state))
		return;
	end_job(l, j, JOB_CANCELLED, cause, 0);
}

uint64_t ledger_cancel_queued(struct ledger *l, unsigned pool, enum job_cause cause)
{
	uint64_t n = 0;
	struct job *j;

	l->ops->begin(l->st);
	(void)ledger_hold_release(l, 0, (int)pool);
	while ((j = l->ops->pop(l->st, pool, false)) || (j = l->ops->pop(l->st, pool, true))) {
		ledger_cancel(l, j, cause);
		n++;
	}
	l->ops->commit(l->st);
	return n;
}

uint64_t ledger_recover(struct ledger *l)
{
	struct job **orphans;
	size_t n = l->ops->take_orphans(l->st, &orphans);

	l->ops->begin(l->st);
	for (size_t i = 0; i < n; i++) {
		struct job *j = orphans[i];
		bool was_alone = j->host_deaths >= 2;

		if (j->state != JOB_RUNNING)
			continue;
		l->ops->stats(l->st)->host_deaths++;
		if (j->host_deaths < UINT8_MAX)
			j->host_deaths++;
		if (j->flags & JOB_CANCEL_REQUESTED)
			end_job(l, j, JOB_CANCELLED, CAUSE_CANCELLED, 0);
		else if (was_alone)
			blame(l, j, CAUSE_HOST_DEATH, 0, true);
		else
			requeue(l, j, j->host_deaths >= 2);
	}
	l->ops->commit(l->st);
	free(orphans);
	return n;
}

void ledger_release(struct ledger *l, struct job *j)
{
	l->ops->requeue(l->st, j, j->alone);
}

uint64_t ledger_resume(struct ledger *l, bool retry_failed)
{
	uint64_t n = 0;

	l->ops->begin(l->st);
	for (uint64_t id = 1; id <= l->ops->n_jobs(l->st); id++) {
		struct job *j = l->ops->job(l->st, id);
		bool failed;

		if (!j || !job_state_is_final(j->state))
			continue;
		failed = j->state == JOB_FAILED || j->state == JOB_CRASHED ||
			 j->state == JOB_TIMED_OUT;
		if (!(j->state == JOB_CANCELLED && j->cause == CAUSE_STOPPED) &&
		    !(retry_failed && failed))
			continue;
		if (failed) {
			j->attempts = 0;
			j->reruns = 0;
		}
		j->cause = CAUSE_NONE;
		j->cause_detail = 0;
		j->flags &= (uint8_t)~JOB_CANCEL_REQUESTED;
		j->ended_ms = 0; /* it has not ended any more */
		l->ops->requeue(l->st, j, false);
		n++;
	}
	l->ops->commit(l->st);
	return n;
}

static enum job_cause cause_of_crash(const struct death *d, int *ret_detail)
{
	switch (d->crash_kind) {
	case BH_CRASH_EXIT:
		*ret_detail = d->signaled ? 0 : d->status;
		return CAUSE_EXIT;
	case BH_CRASH_OOM:
		*ret_detail = d->crash_signo;
		return CAUSE_MEMORY;
	default:
		*ret_detail = d->crash_signo;
		return CAUSE_SIGNAL;
	}
}

static struct job *crash_culprit(const struct death *d, struct job **jobs, size_t n)
{
	if (!d->crash_frame || d->crash_job == 0)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (jobs[i]->id == d->crash_job)
			return jobs[i];
	return NULL; /* names a job this worker did not hold: no evidence */
}

static enum death_verdict worker_died(struct ledger *l, const struct death *d, struct job **jobs,
				      const uint8_t *flags, size_t n)
{
	struct job *culprit = crash_culprit(d, jobs, n);
	bool timed_out = false;
	int detail;

	if (n == 0)
		return DEATH_IDLE;
	for (size_t i = 0; i < n; i++)
		timed_out |= flags[i] & HELD_TIMED_OUT;

	if (culprit || timed_out) {
		for (size_t i = 0; i < n; i++) {
			if (jobs[i] == culprit) {
				enum job_cause c = cause_of_crash(d, &detail);
				ledger_blame(l, jobs[i], c, detail);
			} else if (flags[i] & HELD_TIMED_OUT) {
				ledger_blame(l, jobs[i], CAUSE_TIMEOUT, 0);
			} else {
				ledger_bystander(l, jobs[i], flags[i] & HELD_STARTED);
			}
		}
		return DEATH_CULPRIT;
	}

	/* No evidence. A job that ran alone is the only one that can have done it. */
	if (d->solo && n == 1 && (flags[0] & HELD_STARTED)) {
		if (d->oom)
			ledger_blame(l, jobs[0], CAUSE_MEMORY, d->status);
		else if (d->signaled)
			ledger_blame(l, jobs[0], CAUSE_SIGNAL, d->status);
		else
			ledger_blame(l, jobs[0], CAUSE_EXIT, d->status);
		return DEATH_CULPRIT;
	}
	for (size_t i = 0; i < n; i++) {
		if (flags[i] & HELD_STARTED)
			ledger_suspect(l, jobs[i], d->signaled ? d->status : 0);
		else
			ledger_bystander(l, jobs[i], false);
	}
	return DEATH_SUSPECTS;
}

enum death_verdict ledger_worker_died(struct ledger *l, const struct death *d, struct job **jobs,
				      const uint8_t *flags, size_t n)
{
	enum death_verdict v;

	/* One death, one batch: every job it held changes together, or none does. */
	l->ops->begin(l->st);
	v = worker_died(l, d, jobs, flags, n);
	l->ops->commit(l->st);
	return v;
}

char *ledger_job_name(const struct ledger *l, const struct job *j, char *buf, size_t size)
{
	snprintf(buf, size, "%s#%u", ledger_group(l, j->group)->name, j->instance);
	return buf;
}

const char *signal_name(int signo, char *buf, size_t size)
{
	const char *abbrev = sigabbrev_np(signo);

	if (abbrev)
		snprintf(buf, size, "SIG%s", abbrev);
	else
		snprintf(buf, size, "SIG%d", signo);
	return buf;
}

char *ledger_cause_string(const struct job *j, char *buf, size_t size)
{
	char sig[16];

	switch ((enum job_cause)j->cause) {
	case CAUSE_NONE:
		snprintf(buf, size, "%s", "");
		break;
	case CAUSE_STATUS:
		snprintf(buf, size, "status %d", j->cause_detail);
		break;
	case CAUSE_SIGNAL:
		snprintf(buf, size, "%s", signal_name(j->cause_detail, sig, sizeof(sig)));
		break;
	case CAUSE_EXIT:
		snprintf(buf, size, "exit(%d)", j->cause_detail);
		break;
	case CAUSE_MEMORY:
		snprintf(buf, size, "%s", "memory");
		break;
	case CAUSE_TIMEOUT:
		snprintf(buf, size, "%s", "timeout");
		break;
	case CAUSE_RERUNS:
		snprintf(buf, size, "%s", "too many re-runs");
		break;
	case CAUSE_POOL_FAILED:
		snprintf(buf, size, "%s", "pool failed");
		break;
	case CAUSE_STOPPED:
		snprintf(buf, size, "%s", "stopped");
		break;
	case CAUSE_POOL_REMOVED:
		snprintf(buf, size, "%s", "pool removed");
		break;
	case CAUSE_CANCELLED:
		snprintf(buf, size, "%s", "cancelled by request");
		break;
	case CAUSE_SPAWN:
		snprintf(buf, size, "spawn failed: %s", strerror(j->cause_detail));
		break;
	case CAUSE_HOST_DEATH:
		snprintf(buf, size, "%s", "master died");
		break;
	}
	return buf;
}
