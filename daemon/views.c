/* SPDX-License-Identifier: MIT */
/*
 * Read-only views of the master (master.h): a job, a group, the totals, pools and workers,
 * and the status line. What a view hands out is copied, or a pointer into the master that
 * stays valid until the loop runs again; nobody outside the master holds its jobs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/master-int.h"

int master_job(const struct master *m, uint64_t id, struct master_job *ret)
{
	struct ledger *l = m->ledger;
	struct job *j = ledger_job(l, id);
	struct flight *f;

	if (!j)
		return ledger_job_forgotten(l, id) ? -ESTALE : -ENOENT;
	f = j->state == JOB_RUNNING ? flights_find(&m->flights, id) : NULL;
	*ret = (struct master_job){
		.id = id,
		.group = j->group,
		.instance = j->instance,
		.state = (enum job_state)j->state,
		.on_thread = f && f->slot >= 0,
		.attempts = j->attempts,
		.runs = j->runs,
		.reruns = j->reruns,
		.cause = (enum job_cause)j->cause,
		.cause_detail = j->cause_detail,
		.progress = ledger_job_progress(l, j),
		.input = ledger_job_input(l, j),
		.result = ledger_job_result(l, j),
		.host_deaths = j->host_deaths,
		.accepted_at = j->accepted_at,
		.started_at = job_time(j, j->started_ms),
		.ended_at = job_time(j, j->ended_ms),
		.node = ledger_job_node(m->ledger, j),
	};
	if (j->cause == CAUSE_SIGNAL || j->cause == CAUSE_MEMORY) {
		const struct crash_note *c = crash_notes_get(&m->crash_notes, id);

		if (c) {
			ret->crash = c->summary;
			ret->crash_frames = c->frames;
		}
	}
	if (f) {
		const struct worker *w = f->owner;

		ret->worker_pool = w->pool->cfg.name;
		ret->worker_slot = w->index;
	}
	return 0;
}

int master_job_state(const struct master *m, uint64_t id, enum job_state *ret_state,
		     unsigned *ret_group)
{
	const struct job *j = ledger_job(m->ledger, id);

	if (!j)
		return ledger_job_forgotten(m->ledger, id) ? -ESTALE : -ENOENT;
	*ret_state = (enum job_state)j->state;
	*ret_group = j->group;
	return 0;
}

enum job_state master_job_shown_state(const struct master_job *j)
{
	return j->state == JOB_RUNNING && !j->on_thread ? JOB_QUEUED : j->state;
}

char *master_job_name(const struct master *m, const struct master_job *j, char *buf, size_t size)
{
	snprintf(buf, size, "%s#%u", ledger_group(m->ledger, j->group)->name, j->instance);
	return buf;
}

char *master_job_cause(const struct master_job *j, char *buf, size_t size)
{
	struct job tmp = { .cause = (uint8_t)j->cause, .cause_detail = j->cause_detail };

	return ledger_cause_string(&tmp, buf, size);
}

uint64_t master_n_jobs(const struct master *m)
{
	return ledger_n_jobs(m->ledger);
}

const struct ledger_stats *master_totals(const struct master *m)
{
	return ledger_stats(m->ledger);
}

unsigned master_n_groups(const struct master *m)
{
	return ledger_n_groups(m->ledger);
}

const struct group_config *master_group_config(const struct master *m, unsigned group)
{
	return ledger_group_exists(m->ledger, group) ? ledger_group(m->ledger, group) : NULL;
}

bool master_group(const struct master *m, unsigned group, struct master_group *ret)
{
	if (!ledger_group_exists(m->ledger, group))
		return false;
	*ret = (struct master_group){
		.cfg = ledger_group(m->ledger, group),
		.counts = ledger_group_counts(m->ledger, group),
		.ok = ledger_group_ok(m->ledger, group),
	};
	return true;
}

int master_find_group(const struct master *m, const char *name)
{
	return ledger_find_group(m->ledger, name);
}

int master_move_job_input(struct master *m, uint64_t id, const char *input)
{
	struct job *j = ledger_job(m->ledger, id);

	return j ? ledger_move_job_input(m->ledger, j, input) : -ENOENT;
}

struct master_pin {
	struct master *m;
};

int master_pin_new(struct master *m, struct master_pin **ret)
{
	struct master_pin *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->m = m;
	ledger_pin(m->ledger, true);
	*ret = p;
	return 0;
}

void master_pin_free(struct master_pin *p)
{
	if (!p)
		return;
	ledger_pin(p->m->ledger, false);
	master_collect_soon(p->m); /* what was held back may go now */
	free(p);
}

void master_status_line(const struct master *m, char *buf, size_t size)
{
	const struct ledger_stats *s = ledger_stats(m->ledger);
	unsigned pools_up = 0, pools = 0, workers = 0, wanted = 0;
	uint64_t deaths = m->stats.deaths_by_exit, running = 0, waiting = 0;

	for (unsigned i = 0; i < m->n_pools; i++) {
		struct pool *p = m->pools[i];

		if (p->state == POOL_REMOVED)
			continue;
		pools++;
		pools_up += p->state == POOL_UP;
		wanted += p->state == POOL_UP ? p->cfg.workers : 0;
		for (unsigned k = 0; k < p->n_slots; k++) {
			struct worker *w = p->workers[k];

			workers += w->pid > 0 && w->ready_at && w->next != NEXT_RETIRE;
			running += w->q.n_running;
			waiting += w->q.n_waiting;
		}
	}
	for (int i = 0; i < 65; i++)
		deaths += m->stats.deaths_by_signal[i];
	/* "running" is on a thread now; jobs assigned to a worker but not started are queued. */
	snprintf(buf, size,
		 "%s%u/%u pools up, %u/%u workers; jobs: %llu done, %llu running, %llu queued, "
		 "%llu failed, %llu crashed, %llu timed out; %llu worker deaths",
		 m->stopping ? "stopping: " : "", pools_up, pools, workers, wanted,
		 (unsigned long long)s->by_state[JOB_DONE], (unsigned long long)running,
		 (unsigned long long)(s->by_state[JOB_QUEUED] + waiting),
		 (unsigned long long)s->by_state[JOB_FAILED],
		 (unsigned long long)s->by_state[JOB_CRASHED],
		 (unsigned long long)s->by_state[JOB_TIMED_OUT], (unsigned long long)deaths);
}

static const char *const worker_state_names[] = {
	[W_EMPTY] = "empty",	   [W_STARTING] = "starting", [W_READY] = "ready",
	[W_DRAINING] = "draining", [W_STOPPING] = "stopping", [W_TERMINATING] = "stopping",
	[W_KILLED] = "killed",
};

static const char *const pool_state_names[] = {
	[POOL_UP] = "up",
	[POOL_FAILED] = "failed",
	[POOL_REMOVED] = "removed",
};

unsigned master_n_pools(const struct master *m)
{
	return m->n_pools;
}

bool master_is_ready(const struct master *m)
{
	return m->ready_sent;
}

bool master_is_stopping(const struct master *m)
{
	return m->stopping;
}

void master_pool_info(const struct master *m, unsigned pool, struct master_pool_info *ret)
{
	const struct pool *p = m->pools[pool];

	*ret = (struct master_pool_info){
		.name = p->cfg.name,
		.state = pool_state_names[p->state],
		.workers_wanted = p->state == POOL_UP ? p->cfg.workers : 0,
		.threads = p->cfg.threads,
		.restarts = p->restarts,
		.worker_faults = p->worker_faults,
		.n_slots = p->n_slots,
	};
	for (unsigned k = 0; k < p->n_slots; k++)
		ret->workers_up += p->workers[k]->pid > 0 && p->workers[k]->ready_at;
	if (p->spare) {
		ret->spare_pid = p->spare->pid > 0 ? p->spare->pid : 0;
		ret->spare_state = worker_state_names[p->spare->state];
	}
	for (unsigned k = 0; k < MASTER_SOLO_MAX; k++) {
		const struct worker *s = p->solo[k];

		if (!s)
			continue;
		ret->solo_pid[ret->n_solo] = s->pid > 0 ? s->pid : 0;
		ret->solo_state[ret->n_solo++] = worker_state_names[s->state];
	}
}

void master_worker_info(const struct master *m, unsigned pool, unsigned slot,
			struct master_worker_info *ret)
{
	const struct worker *w = m->pools[pool]->workers[slot];

	*ret = (struct master_worker_info){
		.slot = w->index,
		.pid = w->pid > 0 ? w->pid : 0,
		.state = worker_state_names[w->state],
		.uptime = w->pid > 0 ? now_usec() - w->spawned_at : 0,
		.jobs_running = w->q.n_running,
		.last_death = w->last_death,
	};
}

uint64_t master_jobs_on_threads(const struct master *m)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < m->n_pools; i++)
		for (unsigned k = 0; k < m->pools[i]->n_slots; k++)
			n += m->pools[i]->workers[k]->q.n_running;
	return n;
}

unsigned master_failed_pools(const struct master *m)
{
	unsigned n = 0;

	for (unsigned i = 0; i < m->n_pools; i++)
		n += m->pools[i]->state == POOL_FAILED;
	return n;
}
