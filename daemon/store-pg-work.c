/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL store's operations (store-pg.h): the working set of one node. Jobs added
 * here go to the table (pg_queue_add(), at the next flush) and are kept until that is
 * committed; jobs run here are the ones this node claimed, queued in its pools' local
 * queues; what the ledger decides of them is written, fenced on their lease, at the next
 * flush, and a job that ended or went back to the shared queue leaves the working set then.
 * Groups, submit keys, node names, job logs and the ledger's counters are the memory
 * store's (this node's view: views of every node read the table).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "daemon/store-memory.h"
#include "daemon/store-pg-int.h"

/* ---- local queues ---- */

void pgs_pq_push(struct job_queue *q, struct job *j, bool front)
{
	mem_queue_put(q, j, front);
	PJOB(j)->queued = true;
}

struct job *pgs_pq_pop(struct job_queue *q)
{
	struct job *j = mem_queue_pop(q);

	if (j)
		PJOB(j)->queued = false;
	return j;
}

static unsigned pool_of(const struct pgs *s, const struct job *j)
{
	return s->m->group(s->mem, j->group)->pool;
}

bool pgs_unqueue(struct pgs *s, struct job *j)
{
	unsigned p;

	if (!PJOB(j)->queued)
		return false;
	p = pool_of(s, j);
	if (!mem_queue_remove(&s->ready[p], j) && !mem_queue_remove(&s->alone[p], j))
		return false;
	PJOB(j)->queued = false;
	return true;
}

/* ---- the working set ---- */

static struct ledger_stats *stats(struct pgs *s)
{
	return s->m->stats(s->mem);
}

void pgs_count_state(struct pgs *s, struct job *j, enum job_state to)
{
	stats(s)->by_state[j->state]--;
	j->state = (uint8_t)to;
	stats(s)->by_state[to]++;
}

static struct pjob *new_job(struct pgs *s, uint64_t id)
{
	struct pjob *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (idmap_add(&s->jobs, id, (uint64_t)(uintptr_t)p) < 0) {
		free(p);
		return NULL;
	}
	p->j.id = id;
	s->n_jobs++;
	return p;
}

/* Out of the working set, and freed. */
void pgs_drop_job(struct pgs *s, struct pjob *p)
{
	if (p->queued)
		pgs_unqueue(s, &p->j);
	stats(s)->by_state[p->j.state]--;
	idmap_del(&s->jobs, p->j.id);
	s->n_jobs--;
	if (p->j.extra) {
		free(p->j.extra->result);
		free(p->j.extra);
	}
	free(p);
}

int pgs_mark(struct pgs *s, struct job *j)
{
	struct pjob *p = PJOB(j);

	if (p->marked || p->epoch == 0)
		return 0; /* not claimed here: nothing to write */
	if (s->n_marked == s->cap_marked) {
		size_t cap = s->cap_marked ? 2 * s->cap_marked : 256;
		struct pjob **ms = realloc(s->marked, cap * sizeof(*ms));

		if (!ms)
			return -ENOMEM;
		s->marked = ms;
		s->cap_marked = cap;
	}
	s->marked[s->n_marked++] = p;
	p->marked = true;
	return 0;
}

int pgs_pool_index(const struct pgs *s, const char *name)
{
	for (unsigned i = 0; i < s->n_pools; i++)
		if (strcmp(s->pools[i], name) == 0)
			return (int)i;
	return -1;
}

int pgs_map_group(struct pgs *s, unsigned index, int64_t id)
{
	if (index >= s->cap_gids) {
		unsigned cap = index + 64;
		int64_t *g = realloc(s->gids, cap * sizeof(*g));

		if (!g)
			return -ENOMEM;
		memset(g + s->cap_gids, 0, (cap - s->cap_gids) * sizeof(*g));
		s->gids = g;
		s->cap_gids = cap;
	}
	s->gids[index] = id;
	return idmap_add(&s->gidx, (uint64_t)id, (uint64_t)index + 1) == -ENOMEM ? -ENOMEM : 0;
}

void pgs_claimed_one(struct pgs *s, const struct pg_job *pj, bool orphan)
{
	struct idmap_entry *e = idmap_find(&s->jobs, (uint64_t)pj->id);
	struct idmap_entry *g = idmap_find(&s->gidx, (uint64_t)pj->grp);
	struct pjob *p = e ? (struct pjob *)(uintptr_t)e->value : NULL;
	const struct group_config *gc;

	if (!g)
		return; /* pgs_park() saw to it */
	if (p && p->epoch != 0)
		return; /* held already (a claim answered twice cannot be) */
	if (!p) {
		p = new_job(s, (uint64_t)pj->id);
		if (!p) {
			log_error("out of memory for claimed job %" PRId64 ": it runs when its "
				  "lease expires", pj->id);
			return;
		}
		stats(s)->by_state[JOB_QUEUED]++;
	} else {
		/* Added here, and claimed back before its add's answer was read. */
		for (size_t i = 0; i < s->n_adds; i++)
			if (s->adds[i] == p)
				s->adds[i] = s->adds[--s->n_adds];
	}
	gc = s->m->group(s->mem, (unsigned)(g->value - 1));
	p->j.group = (uint32_t)(g->value - 1);
	p->j.instance = (uint32_t)pj->instance;
	p->j.cause = (uint8_t)pj->cause;
	p->j.cause_detail = pj->cause_detail;
	p->j.alone = (uint8_t)pj->alone;
	p->j.attempts = (uint8_t)pj->attempts;
	p->j.reruns = (uint16_t)pj->reruns;
	p->j.runs = (uint16_t)pj->runs;
	p->j.flags = (uint8_t)(pj->flags & ~JOB_DIRTY) | (pj->input ? JOB_HAS_INPUT : 0);
	p->j.host_deaths = (uint8_t)pj->host_deaths;
	p->j.node = pj->node ? s->m->node_index(s->mem, pj->node) : 0;
	p->j.accepted_at = pj->accepted_at;
	p->j.started_ms = pj->started_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)pj->started_ms;
	p->j.ended_ms = 0;
	p->epoch = pj->lease_epoch;
	if (pj->input && !(p->j.flags & JOB_HAS_INPUT))
		p->j.flags |= JOB_HAS_INPUT;
	if (pj->input && !p->j.extra) {
		size_t len = strlen(pj->input);

		p->j.extra = malloc(sizeof(*p->j.extra) + len + 1);
		if (p->j.extra) {
			*p->j.extra = (struct job_extra){ .progress = -1 };
			memcpy(p->j.extra->input, pj->input, len + 1);
		}
	}
	if (orphan) {
		struct job **os = realloc(s->orphans, (s->n_orphans + 1) * sizeof(*os));

		pgs_count_state(s, &p->j, JOB_RUNNING);
		if (os) {
			s->orphans = os;
			os[s->n_orphans++] = &p->j;
		}
		return;
	}
	pgs_count_state(s, &p->j, JOB_QUEUED);
	pgs_pq_push(p->j.alone ? &s->alone[gc->pool] : &s->ready[gc->pool], &p->j, false);
}

/* ---- the queue's events ---- */

static void on_joined(void *userdata, const struct pg_node_info *info)
{
	(void)userdata;
	(void)info;
}

static void on_down(void *userdata, const char *why)
{
	struct pgs *s = userdata;

	log_warning("PostgreSQL store: %s; jobs running here go on within their lease, and "
		    "nothing accepted is lost",
		    why);
	(void)s;
}

static void on_superseded(void *userdata, const char *why)
{
	struct pgs *s = userdata;

	snprintf(s->error, sizeof(s->error), "PostgreSQL store: %s", why);
	if (s->ev->superseded)
		s->ev->superseded(s->ev_data, why);
}

static void claimed(struct pgs *s, const struct pg_job *jobs, size_t n, bool orphans)
{
	bool woke[256] = { false };

	pgs_park(s, jobs, n, orphans);
	for (size_t i = 0; i < n; i++)
		pgs_claimed_one(s, &jobs[i], orphans);
	if (orphans) {
		if (s->n_orphans > 0)
			s->ev->orphans(s->ev_data);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		int p = pgs_pool_index(s, jobs[i].pool ? jobs[i].pool : "");

		if (p >= 0 && (p >= 256 || !woke[p])) {
			if (p < 256)
				woke[p] = true;
			s->ev->ready(s->ev_data, (unsigned)p);
		}
	}
}

static void on_claimed(void *userdata, const struct pg_job *jobs, size_t n)
{
	claimed(userdata, jobs, n, false);
}

static void on_orphans(void *userdata, const struct pg_job *jobs, size_t n)
{
	claimed(userdata, jobs, n, true);
}

static void on_lost(void *userdata, const int64_t *ids, size_t n)
{
	struct pgs *s = userdata;
	size_t running = 0, mine = 0;

	for (size_t i = 0; i < n; i++) {
		struct idmap_entry *e = idmap_find(&s->jobs, (uint64_t)ids[i]);
		struct pjob *p = e ? (struct pjob *)(uintptr_t)e->value : NULL;

		if (!p || p->lost)
			continue;
		p->lost = true;
		mine++;
		if (p->j.state == JOB_RUNNING) {
			running++;
			s->ev->lost(s->ev_data, &p->j); /* the master kills it */
			continue;
		}
		if (!p->marked)
			pgs_drop_job(s, p); /* queued here, not started: it just goes */
	}
	if (mine > 0)
		log_warning("PostgreSQL store: %zu job%s held here given up (%zu running): their "
			    "leases were not renewed in time, or another node took them; nothing of "
			    "them is written from here",
			    mine, mine == 1 ? "" : "s", running);
}

static void on_damaged(void *userdata, int64_t id)
{
	log_error("PostgreSQL store: job %" PRId64 " has a value out of its range (a damaged "
		  "row): not run here",
		  id);
}

static void on_flushed(void *userdata, uint64_t serial, int r, const char *why)
{
	struct pgs *s = userdata;

	if (r < 0) {
		snprintf(s->error, sizeof(s->error), "PostgreSQL store: %s", why ? why : "");
		s->ev->flushed(s->ev_data, serial, r, s->error);
		return;
	}
	s->commits++;
	/* Added here and committed: in the table now, not this node's to keep. */
	for (size_t i = 0; i < s->n_adds;) {
		struct pjob *p = s->adds[i];

		if (p->add_serial == 0 || p->add_serial > serial) {
			i++;
			continue;
		}
		s->adds[i] = s->adds[--s->n_adds];
		pgs_drop_job(s, p);
	}
	s->ev->flushed(s->ev_data, serial, 0, NULL);
}

const struct pg_queue_ops store_pg_queue_ops = {
	.joined = on_joined,
	.down = on_down,
	.superseded = on_superseded,
	.claimed = on_claimed,
	.orphans = on_orphans,
	.lost = on_lost,
	.damaged = on_damaged,
	.flushed = on_flushed,
};
