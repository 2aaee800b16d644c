/* SPDX-License-Identifier: MIT */
/*
 * A pool's warm spare ([pool] spare = yes; docs/decisions.md "A warm spare per pool"): one
 * more worker process, started like the others and past HELLO, that takes over a slot the
 * moment that slot would be started (a restart at once, or when its backoff ends): the slot
 * gets the spare's process (its fds, pidfd and event sources move to the slot's struct, the
 * process moves into the slot's cgroup), so a restart costs no spawn, and a new spare is
 * started behind it. The jobs that must run alone (suspects of a crash, a culprit's retries)
 * go to the pool's solo workers (MASTER_SOLO_MAX of them, --index SOLO_INDEX counting down),
 * one job each at a time, so that a job that crashes on every attempt takes a shared worker
 * down once, not max_attempts times, and the spare stays ready for the next takeover (a
 * spare that ran them was busy or starting at most takeovers when crashes came every half
 * millisecond). The retries run contained (children/contain.c): their crashes kill a
 * throwaway child of the solo worker, not the solo worker. None of them takes shared jobs or
 * counts in workers_up.
 *
 * The spare does not wait for a crashed slot's death: at the slot's CRASH frame it steps in
 * (spare_step_in()), and the dying process lives on, out of the slot, in pool->dying.
 *
 * They are struct workers outside pool->workers[] (w->spare; w->solo too for a solo worker):
 * the slot state machine, death.c's verdicts and the stop paths treat them like slots.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/idmap.h"
#include "common/log.h"
#include "daemon/cgroup.h"
#include "daemon/master-int.h"

static bool source_on(sd_event_source *s)
{
	int on = SD_EVENT_OFF;

	if (s && sd_event_source_get_enabled(s, &on) < 0)
		return false;
	return on != SD_EVENT_OFF;
}

/* A (re)start is due: on the slot's timer, or "at once" on the loop's next turn. */
static bool timer_armed(const struct worker *w)
{
	return source_on(w->timer) || source_on(w->soon);
}

/* One of the pool's extra processes (*ws: its spare or its solo worker) as the config says. */
static void ensure_one(struct pool *p, struct worker **ws, unsigned index, bool solo)
{
	struct master *m = p->m;
	struct worker *s = *ws;
	bool want = p->cfg.spare && p->state == POOL_UP && !m->stopping;

	if (!want) {
		if (!s)
			return;
		s->next = NEXT_RETIRE;
		if (s->pid > 0)
			slot_stop(s, m->config->supervisor.drain_timeout);
		else
			spare_retired(p, s);
		return;
	}
	if (!s) {
		s = slot_new(p, index);
		if (!s) {
			log_error("pool %s: out of memory for its %s worker", p->cfg.name,
				  solo ? "solo" : "spare");
			return;
		}
		s->spare = true;
		s->solo = solo;
		*ws = s;
	}
	if (s->next == NEXT_RETIRE)
		s->next = NEXT_RESTART; /* wanted again while the old one winds down */
	if (s->pid <= 0) {
		if (!timer_armed(s))
			slot_schedule_restart(s, 0);
		return;
	}
	/* Replaced once idle: after a reload changed what it was started with, a restart. */
	if (s->state == W_READY && inflight_count(s) == 0 &&
	    (s->next == NEXT_REPLACE || slot_outdated(s)))
		slot_stop(s, m->config->supervisor.drain_timeout);
}

void spare_ensure(struct pool *p)
{
	ensure_one(p, &p->spare, SPARE_INDEX, false);
	for (unsigned k = 0; k < MASTER_SOLO_MAX; k++)
		ensure_one(p, &p->solo[k], SOLO_INDEX - k, true);
}

void spare_retired(struct pool *p, struct worker *s)
{
	if (!s || s->pid > 0)
		return;
	if (p->spare == s) {
		p->spare = NULL;
		slot_free(s);
		return;
	}
	for (unsigned k = 0; k < MASTER_SOLO_MAX; k++)
		if (p->solo[k] == s) {
			p->solo[k] = NULL;
			slot_free(s);
			return;
		}
}

bool spare_runs_alone(const struct pool *p)
{
	if (p->state != POOL_UP)
		return false;
	/* Not while they are in a backoff after a fault: then a shared worker runs them. */
	for (unsigned k = 0; k < MASTER_SOLO_MAX; k++) {
		const struct worker *s = p->solo[k];

		if (s && s->next != NEXT_RETIRE && !s->spare_hold)
			return true;
	}
	return false;
}

void spare_ready(struct worker *s)
{
	s->spare_hold = false;
	if (!s->solo && s->m->opts.on_worker_ready)
		s->m->opts.on_worker_ready(s->m->opts.userdata, s->pool->index, MASTER_SLOT_SPARE,
					   s->pid, now_usec());
	dispatch_fill(s); /* the solo worker: an alone job may be waiting for it */
}

/* Moves the spare's process into w, the slot's struct (EMPTY), and empties the spare's. */
static void transplant(struct worker *w, struct worker *s)
{
	struct idmap specs = w->specs;

	w->pid = s->pid;
	w->fd = s->fd;
	w->io = s->io;
	w->child = s->child;
	(void)sd_event_source_set_userdata(w->io, w);
	(void)sd_event_source_set_userdata(w->child, w);
	w->reap_delay = 0;
	w->spawned_at = s->spawned_at;
	w->ready_at = s->ready_at;
	w->memory_max = s->memory_max;
	w->tasks_max = s->tasks_max;
	w->core_dumps = s->core_dumps;
	w->spawner = s->spawner;
	w->uid = s->uid;
	w->gid = s->gid;
	/* Specs go with the process (the spare runs no job, so it knows none; w's were cleared
	 * at its death). */
	w->specs = s->specs;
	s->specs = specs;
	w->idle_specs = s->idle_specs;
	w->forgets_pending = s->forgets_pending;
	s->idle_specs = 0;
	s->forgets_pending = false;
	slot_process_reset(w);
	s->pid = 0;
	s->fd = -1;
	s->io = s->child = NULL;
	s->ready_at = 0;
	slot_set_state(s, W_EMPTY);
}

/* The pool's spare, if it can take a slot over now. */
static struct worker *usable_spare(struct pool *p)
{
	struct worker *s = p->spare;

	if (!s || s->state != W_READY || s->next != NEXT_RESTART || s->blocked ||
	    s->end != END_NONE || s->mode != MODE_SHARED || inflight_count(s) > 0 ||
	    slot_outdated(s))
		return NULL;
	return s;
}

/* s's process becomes w's (w EMPTY, or READY with its process just taken out by step-in). */
static void take_over(struct worker *w, struct worker *s, bool counted_up)
{
	struct pool *p = w->pool;
	struct master *m = w->m;
	pid_t pid = s->pid;
	char l[64];
	int r;

	slot_cgroup_prepare(w);
	transplant(w, s);
	w->died_oom = false;
	if (w->cg_fd >= 0) {
		/*
		 * Into the slot's cgroup: its limits apply from now on. What the spare allocated
		 * before stays charged to the spare's cgroup (cgroup v2 does not move charges).
		 */
		w->oom_base = cgroup_slot_oom_kills(w->cg_fd);
		r = cgroup_slot_attach(w->cg_fd, pid);
		if (r < 0)
			log_warning("worker %s: not moved into its cgroup: %s",
				    slot_label(w, l, sizeof(l)), strerror(-r));
		slot_cgroup_attach_spawner(w); /* and its spawner */
	}
	if (w->state != W_READY)
		slot_set_state(w, W_READY);
	if (!counted_up)
		m->stats.workers_up++;
	if (w->spawns++ > 0) {
		struct lfields f;

		m->stats.restarts++;
		p->restarts++;
		log_fields(LOG_INFO, master_lfields(&f, p, w, NULL, 0, NULL),
			   "worker %s restarted (the spare took over)",
			   slot_label(w, l, sizeof(l)));
	} else {
		log_debug("worker %s started (the spare took over)", slot_label(w, l, sizeof(l)));
	}
	if (m->opts.on_worker_ready)
		m->opts.on_worker_ready(m->opts.userdata, p->index, w->index, pid, now_usec());
	slot_schedule_restart(s, 0); /* the next spare */
	dispatch_fill(w);
	pool_roll_next(p);
	master_check_ready(m);
}

bool spare_take_over(struct worker *w)
{
	struct worker *s = usable_spare(w->pool);

	if (!s)
		return false;
	take_over(w, s, false);
	return true;
}

/*
 * The slot's process sent CRASH: it is going, but its death is seen only once its handler
 * has sent what it can (CRASH_INFO, the results it held) and the kernel has torn it down,
 * often a millisecond and more on a loaded machine, in which the slot runs nothing. So its
 * process moves out now, into a struct of its own (d: pool->dying, READY, its jobs, fds and
 * event sources with it; no cgroup fd, so that its death does not kill the slot's cgroup,
 * where the spare is going), and the spare takes the slot over at once (a solo worker, which
 * no spare replaces, starts its next process at once instead). d's frames and death
 * are handled as before (the blame rules see the same evidence); at its death it is freed
 * (spare_dead). Only for a plain shared slot with nothing unusual in flight: no command of
 * an exec: job (its cgroup is its last sweep), no timed-out job, no held ASSIGN, not blocked.
 */
bool spare_step_in(struct worker *w)
{
	struct pool *p = w->pool;
	struct master *m = w->m;
	struct worker *s, *d;

	if ((w->spare && !w->solo) || w->dying || w->state != W_READY ||
	    w->mode != (w->solo ? MODE_SOLO : MODE_SHARED) || w->end != END_NONE ||
	    w->next != NEXT_RESTART || w->blocked || w->held || w->n_execs > 0 ||
	    w->n_timed_out > 0 || !w->crash_frame || m->stopping || p->state != POOL_UP)
		return false;
	s = w->solo ? NULL : usable_spare(p);
	if (!w->solo && (!s || s->q.threads != w->q.threads))
		return false;
	d = malloc(sizeof(*d));
	if (!d)
		return false;
	*d = *w;
	d->dying = true;
	d->next = NEXT_RETIRE;
	d->cg_fd = -1;
	d->timer = d->soon = d->deadline = d->reap = NULL;
	d->deadline_at = USEC_INFINITY;
	d->execs = NULL;
	d->n_execs = d->cap_execs = 0;
	(void)sd_event_source_set_userdata(d->io, d);
	(void)sd_event_source_set_userdata(d->child, d);
	flights_set_owner(&m->flights, &d->q, d);
	d->dying_next = p->dying;
	p->dying = d;
	/* w keeps the slot (cgroup, timers, backoff); the spare's empty queue and specs come. */
	w->q = s ? s->q : (struct flight_queue){ 0 }; /* a new process's start sizes it */
	if (s)
		s->q = (struct flight_queue){ 0 };
	w->specs = IDMAP_INIT;
	w->io = w->child = NULL;
	w->pid = 0;
	w->fd = -1;
	if (s) {
		take_over(w, s, true);
	} else {
		/* A solo worker: its next process starts while this one dies. */
		slot_set_state(w, W_EMPTY);
		slot_schedule_restart(w, 0);
	}
	return true;
}

void spare_dead(struct worker *d)
{
	struct worker **pp = &d->pool->dying;

	while (*pp && *pp != d)
		pp = &(*pp)->dying_next;
	if (*pp)
		*pp = d->dying_next;
	slot_free(d);
}
