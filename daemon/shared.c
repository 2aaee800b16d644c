/* SPDX-License-Identifier: MIT */
/*
 * The master on a shared store (`store = postgresql:`, DESIGN §13): opening it, and what it
 * tells the master from the loop. Jobs claimed for this node are dispatched as any queued
 * job; jobs of a dead node are the host-death rule's (ledger_recover()), as at a restart on
 * one host; a job whose lease another node took is killed with its worker and nothing of it
 * is written (self-fencing); a flush is committed later than it is sent, so replies that wait
 * for it wait for the commit. Every pass, each pool says how many jobs it would take.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/master-int.h"
#include "daemon/store-pg.h"

void shared_release_queued(struct master *m)
{
	for (unsigned i = 0; i < m->n_pools; i++) {
		struct job *j;

		while ((j = ledger_pop(m->ledger, i, false)) || (j = ledger_pop(m->ledger, i, true)))
			ledger_release(m->ledger, j);
	}
}

static void on_ready(void *userdata, unsigned pool)
{
	struct master *m = userdata;

	if (m->stopping) {
		shared_release_queued(m); /* claimed as it stopped: for the other nodes */
		master_check_done(m);
		return;
	}
	if (pool < m->n_pools)
		master_dispatch_soon(m->pools[pool]);
}

static void on_orphans(void *userdata)
{
	struct master *m = userdata;
	uint64_t n = ledger_recover(m->ledger);

	if (n > 0)
		log_notice("PostgreSQL store: %" PRIu64 " jobs of a node that died (or of this "
			   "one's last life) were taken over: they run again (no attempt counted)",
			   n);
	master_check_done(m);
}

static void on_lost(void *userdata, struct job *j)
{
	struct master *m = userdata;
	struct flight *f = flights_find(&m->flights, j->id);
	struct worker *w = f ? f->owner : NULL;

	if (!w || w->pid <= 0 || w->state == W_KILLED)
		return;
	log_warning("PostgreSQL store: job %" PRIu64 " was taken by another node (its lease "
		    "expired): its worker %s/%u is killed, and nothing of the job is written",
		    j->id, w->pool->cfg.name, w->index);
	w->injected = "lease lost";
	w->fenced = true;
	slot_set_end(w, END_INJECT);
	slot_kill(w, END_INJECT, NULL);
}

static void on_flushed(void *userdata, uint64_t serial, int r, const char *why)
{
	struct master *m = userdata;

	if (r < 0) {
		if (!m->flush_failing)
			log_error("%s; it is sent again", why);
		m->flush_failing = true;
		return;
	}
	if (m->flush_failing)
		log_notice("PostgreSQL store: written again");
	m->flush_failing = false;
	if (serial > m->flushes) {
		m->flushes = serial;
		MASTER_EMIT(m, on_flushed);
	}
	master_check_done(m); /* a stop waits for its last write */
}

static void on_superseded(void *userdata, const char *why)
{
	struct master *m = userdata;

	log_error("PostgreSQL store: %s: this bulkheadd stops (two nodes may not share a name)",
		  why);
	m->stats.interrupted = true;
	master_begin_stop(m, CAUSE_STOPPED);
	master_check_done(m);
}

static const struct store_pg_events events = {
	.ready = on_ready,
	.orphans = on_orphans,
	.lost = on_lost,
	.flushed = on_flushed,
	.superseded = on_superseded,
};

int shared_open(struct master *m, const struct config *c, struct store **ret)
{
	struct store_pg_config cfg = { .conninfo = m->opts.pg_conninfo, .node = m->node,
				       .lease_ms = m->opts.lease_ms };
	char *err = NULL;
	int r = store_pg_open(m->event, &cfg, c, &events, m, ret, &err);

	if (r < 0)
		log_error("%s", err ? err : strerror(-r));
	free(err);
	if (r == -EINVAL)
		r = -ENXIO; /* a connection string libpq cannot read: a config error (exit 78) */
	m->opts.pg_conninfo = NULL; /* it pointed into the config, which a reload replaces */
	if (r >= 0)
		m->shared = *ret;
	return r;
}

/*
 * Each pool's room, for the shared queue's claims: what its ready workers would take now
 * (their windows, less what they hold), less what is queued here already; the alone queue:
 * one per idle worker.
 */
void shared_want(struct master *m)
{
	if (!m->shared)
		return;
	for (unsigned i = 0; i < m->n_pools; i++) {
		struct pool *p = m->pools[i];
		uint64_t room = 0, idle = 0, queued, queued_alone;

		if (p->state == POOL_UP && !m->stopping) {
			for (unsigned k = 0; k < p->n_slots; k++) {
				struct worker *w = p->workers[k];
				unsigned held, win;

				if (w->state != W_READY || w->end != END_NONE)
					continue;
				held = inflight_count(w);
				win = dispatch_window_for(p->run_est, w->q.threads);
				room += held < win ? win - held : 0;
				idle += held == 0;
			}
		}
		queued = ledger_queued(m->ledger, i, false);
		queued_alone = ledger_queued(m->ledger, i, true);
		store_pg_want(m->shared, i, false, room > queued ? (size_t)(room - queued) : 0);
		store_pg_want(m->shared, i, true,
			      idle > queued_alone ? (size_t)(idle - queued_alone) : 0);
	}
}

uint64_t shared_next_flush(const struct master *m)
{
	return store_pg_next_serial(m->shared);
}

bool shared_flush_pending(const struct master *m)
{
	return ledger_store_dirty(m->ledger) ||
	       store_pg_committed(m->shared) + 1 < store_pg_next_serial(m->shared);
}
