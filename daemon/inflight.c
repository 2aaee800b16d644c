/* SPDX-License-Identifier: MIT */
/*
 * Which jobs each worker holds: the running ones in `slots` (with their start time), the
 * assigned but not started ones in a FIFO (workers start jobs strictly in order, so with T
 * threads the first T unfinished jobs are the running ones), the commands of exec: jobs, and
 * the job deadlines (timeouts) that follow from the start times.
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

static int inflight_on_deadline(sd_event_source *s, uint64_t usec, void *userdata);

unsigned inflight_count(const struct worker *w)
{
	return w->q.n_running + w->q.n_waiting;
}

/* A job a thread of w has started (f is running): its run counts, its deadline runs. */
static void inflight_started(struct worker *w, struct flight *f)
{
	struct job *j = f->job;
	usec_t timeout = ledger_group(w->m->ledger, j->group)->timeout, at;

	ledger_started(w->m->ledger, j);
	/* A result may be held back BH_RESULT_HOLD_USEC: a deadline allows for that. */
	at = f->started_at + timeout + BH_RESULT_HOLD_USEC;
	if (timeout != USEC_INFINITY && at < w->deadline_at) {
		w->deadline_at = at;
		master_arm_timer(w->m, &w->deadline, w->deadline_at, inflight_on_deadline, w);
	}
}

void inflight_trim(struct master *m)
{
	for (unsigned i = 0; i < m->n_pools; i++)
		for (unsigned k = 0; k < m->pools[i]->n_slots; k++)
			if (m->pools[i]->workers[k])
				flight_queue_trim(&m->pools[i]->workers[k]->q);
	flights_trim(&m->flights);
}

int inflight_reserve(struct worker *w, size_t n)
{
	return flights_reserve(&w->m->flights, &w->q, n);
}

/* held: the ASSIGN is not sent yet, so none of its jobs can have started. */
void inflight_assign(struct worker *w, struct job *j, usec_t now, bool held, uint8_t flags)
{
	struct flight *f = flights_assign(&w->m->flights, &w->q, j, j->id, w, now, !held);

	f->flags |= flags;
	if (f->slot >= 0)
		inflight_started(w, f);
}

struct flight *inflight_find(struct worker *w, uint64_t job_id)
{
	struct flight *f = flights_find_in(&w->m->flights, &w->q, job_id);

	return f && f->owner == w ? f : NULL;
}

void inflight_untrack(struct worker *w, struct flight *f)
{
	if (f->flags & HELD_TIMED_OUT)
		w->n_timed_out--;
	flights_done(&w->m->flights, &w->q, f);
}

void inflight_promote(struct worker *w, usec_t now)
{
	struct flight *f;

	while ((f = flights_promote(&w->m->flights, &w->q, now, w->n_held)))
		inflight_started(w, f);
}

/* The exec record of job j on w, or NULL. */
struct exec_run *inflight_exec_find(struct worker *w, const struct job *j)
{
	for (unsigned i = 0; i < w->n_execs; i++)
		if (w->execs[i].job == j)
			return &w->execs[i];
	return NULL;
}

void inflight_exec_forget(struct worker *w, struct exec_run *x)
{
	*x = w->execs[--w->n_execs];
}

/* Kills the process group of every command the worker's jobs started (it died or is dying). */
void inflight_kill_commands(struct worker *w)
{
	for (unsigned i = 0; i < w->n_execs; i++)
		kill(-w->execs[i].pid, SIGKILL);
	w->n_execs = 0;
}

/*
 * A contained run (children/contain.c) past its timeout: a CANCEL makes its job thread
 * SIGKILL the process, and its DONE (DIED_SIGNAL) is blamed `timeout` (frames.c). False if it
 * could not be sent: then the worker goes, as for any job.
 */
static bool kill_contained(struct worker *w, const struct job *j)
{
	uint8_t buf[32];

	return slot_send(w, buf, bh_encode_cancel(buf, sizeof(buf), j->id)) >= 0;
}

static int inflight_on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct worker *w = userdata;
	struct master *m = w->m;
	usec_t now = now_usec(), next = USEC_INFINITY;
	unsigned newly = 0;
	char l[64], name[64], d[FORMAT_DURATION_MAX], what[64];
	struct lfields f;

	if (w->end == END_INJECT)
		return 0; /* its death is on its way; no job is to blame for it */

	for (unsigned i = 0; i < w->q.threads; i++) {
		struct flight *fl = flights_running(&m->flights, &w->q, i);
		struct exec_run *x;
		usec_t timeout, at;
		struct job *j;

		if (!fl || (fl->flags & HELD_TIMED_OUT))
			continue;
		j = fl->job;
		timeout = ledger_group(m->ledger, j->group)->timeout;
		if (timeout == USEC_INFINITY)
			continue;
		at = fl->started_at + timeout + BH_RESULT_HOLD_USEC;
		/* A killed command whose DONE does not come within kill_grace: as below. */
		if (fl->flags & SLOT_TIMEOUT_KILLED)
			at += w->pool->cfg.kill_grace;
		if (at > now) {
			if (at < next)
				next = at;
			continue;
		}
		/* An exec: job's command's process group, or a contained run's process, goes;
		 * the worker stays. */
		what[0] = '\0';
		x = w->n_execs && !(fl->flags & SLOT_TIMEOUT_KILLED) ? inflight_exec_find(w, j) : NULL;
		if (x) {
			kill(-x->pid, SIGKILL);
			snprintf(what, sizeof(what), "its command (process group %d)", (int)x->pid);
		} else if ((fl->flags & (SLOT_CONTAINED | SLOT_TIMEOUT_KILLED)) == SLOT_CONTAINED &&
			   kill_contained(w, j)) {
			snprintf(what, sizeof(what), "its contained process");
		}
		if (what[0]) {
			fl->flags |= SLOT_TIMEOUT_KILLED;
			at += w->pool->cfg.kill_grace;
			if (at < next)
				next = at;
			log_fields(LOG_WARNING, master_lfields(&f, w->pool, w, j, 0, "timeout"),
				   "job %s timed out after %s on worker %s: killing %s",
				   ledger_job_name(m->ledger, j, name, sizeof(name)),
				   format_duration(d, sizeof(d), timeout),
				   slot_label(w, l, sizeof(l)), what);
			continue;
		}
		fl->flags |= HELD_TIMED_OUT;
		w->n_timed_out++;
		newly++;
		log_fields(LOG_WARNING, master_lfields(&f, w->pool, w, j, 0, "timeout"),
			   "job %s timed out after %s on worker %s",
			   ledger_job_name(m->ledger, j, name, sizeof(name)),
			   format_duration(d, sizeof(d), timeout), slot_label(w, l, sizeof(l)));
	}
	w->deadline_at = next;
	if (next != USEC_INFINITY)
		master_arm_timer(m, &w->deadline, next, inflight_on_deadline, w);
	if (newly && (w->state == W_READY || w->state == W_STOPPING ||
		      w->state == W_TERMINATING)) {
		slot_set_end(w, END_TIMEOUT);
		slot_set_state(w, W_DRAINING);
		if (inflight_count(w) == w->n_timed_out) {
			slot_kill(w, END_TIMEOUT, NULL);
		} else {
			log_info(
				"worker %s takes no new jobs; killing it in %s unless its %u other "
				"job%s finish first",
				slot_label(w, l, sizeof(l)),
				format_duration(d, sizeof(d), w->pool->cfg.kill_grace),
				inflight_count(w) - w->n_timed_out,
				inflight_count(w) - w->n_timed_out == 1 ? "" : "s");
		}
	}
	return 0;
}

/* The jobs a worker held, in slot order then FIFO order, with their flags. */
size_t inflight_collect(struct worker *w, struct job **jobs, uint8_t *flags)
{
	size_t n = flights_collect(&w->m->flights, &w->q, jobs, flags, HELD_STARTED);

	w->n_timed_out = w->n_held = 0;
	return n;
}
