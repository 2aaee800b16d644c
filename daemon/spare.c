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
 * down once, not max_attempts times, and the spare stays ready for the next takeover while
 * the retries kill solo workers (a spare that ran them was busy or starting at most
 * takeovers when crashes came every half millisecond). None of them takes shared jobs or
 * counts in workers_up.
 *
 * They are struct workers outside pool->workers[] (w->spare; w->solo too for a solo worker):
 * the slot state machine, death.c's verdicts and the stop paths treat them like slots.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/idmap.h"
#include "common/log.h"
#include "daemon/cgroup.h"
#include "daemon/master-int.h"

static bool timer_armed(const struct worker *w)
{
	int on = SD_EVENT_OFF;

	if (w->timer && sd_event_source_get_enabled(w->timer, &on) < 0)
		return false;
	return on != SD_EVENT_OFF;
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

bool spare_take_over(struct worker *w)
{
	struct pool *p = w->pool;
	struct worker *s = p->spare;
	struct master *m = w->m;
	char l[64];
	pid_t pid;
	int r;

	if (!s || s->state != W_READY || s->next != NEXT_RESTART || s->blocked ||
	    s->end != END_NONE || s->mode != MODE_SHARED || inflight_count(s) > 0 ||
	    slot_outdated(s))
		return false;
	pid = s->pid;
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
	slot_set_state(w, W_READY);
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
	return true;
}
