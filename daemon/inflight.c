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
	return w->n_running + w->n_pending;
}

static void inflight_start(struct worker *w, struct job *j, usec_t now)
{
	usec_t timeout = ledger_group(w->m->ledger, j->group)->timeout;
	uint16_t slot = w->free_slots[--w->n_free];

	w->slots[slot] = j;
	w->slot_flags[slot] = 0;
	j->wslot = slot;
	j->started_at = now ? now : 1;
	w->n_running++;
	ledger_started(w->m->ledger, j);
	/* A result may be held back BH_RESULT_HOLD_USEC: a deadline allows for that. */
	if (timeout != USEC_INFINITY && now + timeout + BH_RESULT_HOLD_USEC < w->deadline_at) {
		w->deadline_at = now + timeout + BH_RESULT_HOLD_USEC;
		master_arm_timer(w->m, &w->deadline, w->deadline_at, inflight_on_deadline, w);
	}
}

/* held: the ASSIGN is not sent yet, so none of its jobs can have started. */
void inflight_assign(struct worker *w, struct job *j, usec_t now, bool held)
{
	j->worker = w;
	j->started_at = 0;
	j->wnext = NULL;
	if (!held && w->n_running < w->threads) {
		inflight_start(w, j, now);
		return;
	}
	if (w->pend_tail)
		w->pend_tail->wnext = j;
	else
		w->pend_head = j;
	w->pend_tail = j;
	w->n_pending++;
}

void inflight_untrack(struct worker *w, struct job *j)
{
	if (j->started_at) {
		if (w->slot_flags[j->wslot] & HELD_TIMED_OUT)
			w->n_timed_out--;
		w->slots[j->wslot] = NULL;
		w->free_slots[w->n_free++] = j->wslot;
		w->n_running--;
	} else {
		struct job **pp = &w->pend_head, *prev = NULL;

		while (*pp && *pp != j) {
			prev = *pp;
			pp = &(*pp)->wnext;
		}
		if (*pp) {
			*pp = j->wnext;
			if (w->pend_tail == j)
				w->pend_tail = prev;
			w->n_pending--;
		}
	}
	j->worker = NULL;
	j->wnext = NULL;
}

void inflight_promote(struct worker *w, usec_t now)
{
	while (w->pend_head && w->n_running < w->threads && w->n_pending > w->n_held) {
		struct job *j = w->pend_head;

		w->pend_head = j->wnext;
		if (!w->pend_head)
			w->pend_tail = NULL;
		w->n_pending--;
		j->wnext = NULL;
		inflight_start(w, j, now);
	}
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

static int inflight_on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct worker *w = userdata;
	struct master *m = w->m;
	usec_t now = now_usec(), next = USEC_INFINITY;
	unsigned newly = 0;
	char l[64], name[64], d[FORMAT_DURATION_MAX];
	struct lfields f;

	if (w->end == END_INJECT)
		return 0; /* its death is on its way; no job is to blame for it */

	for (unsigned i = 0; i < w->threads; i++) {
		struct job *j = w->slots[i];
		struct exec_run *x;
		usec_t timeout, at;

		if (!j || (w->slot_flags[i] & HELD_TIMED_OUT))
			continue;
		timeout = ledger_group(m->ledger, j->group)->timeout;
		if (timeout == USEC_INFINITY)
			continue;
		at = j->started_at + timeout + BH_RESULT_HOLD_USEC;
		/* A killed command whose DONE does not come within kill_grace: as below. */
		if (w->slot_flags[i] & SLOT_EXEC_KILLED)
			at += w->pool->cfg.kill_grace;
		if (at > now) {
			if (at < next)
				next = at;
			continue;
		}
		x = w->n_execs && !(w->slot_flags[i] & SLOT_EXEC_KILLED) ? inflight_exec_find(w, j)
									 : NULL;
		if (x) {
			/* An exec: job: its command's process group goes, the worker stays. */
			kill(-x->pid, SIGKILL);
			w->slot_flags[i] |= SLOT_EXEC_KILLED;
			at += w->pool->cfg.kill_grace;
			if (at < next)
				next = at;
			log_fields(LOG_WARNING, master_lfields(&f, w->pool, w, j, 0, "timeout"),
				   "job %s timed out after %s on worker %s: killing its command "
				   "(process group %d)",
				   ledger_job_name(m->ledger, j, name, sizeof(name)),
				   format_duration(d, sizeof(d), timeout),
				   slot_label(w, l, sizeof(l)), (int)x->pid);
			continue;
		}
		w->slot_flags[i] |= HELD_TIMED_OUT;
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
	size_t n = 0;

	for (unsigned i = 0; i < w->threads; i++) {
		if (!w->slots[i])
			continue;
		jobs[n] = w->slots[i];
		flags[n++] = HELD_STARTED | w->slot_flags[i];
		w->slots[i] = NULL;
	}
	for (struct job *j = w->pend_head; j; j = j->wnext) {
		jobs[n] = j;
		flags[n++] = 0;
	}
	w->pend_head = w->pend_tail = NULL;
	w->n_running = w->n_pending = w->n_timed_out = w->n_held = 0;
	w->n_free = 0;
	for (unsigned i = w->threads; i > 0; i--)
		w->free_slots[w->n_free++] = (uint16_t)(i - 1);
	for (size_t i = 0; i < n; i++) {
		jobs[i]->worker = NULL;
		jobs[i]->wnext = NULL;
	}
	return n;
}
