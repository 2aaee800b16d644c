/* SPDX-License-Identifier: MIT */
/*
 * What the master offers at run time (master.h): adding jobs (submit, reload), cancel,
 * restart, inject, and read-only views for the control socket and the status line.
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

int master_add_group(struct master *m, const struct group_config *gc, unsigned *ret_index)
{
	struct pool *p;
	unsigned g;
	int r;

	if (gc->pool >= m->n_pools || m->pools[gc->pool]->state != POOL_UP || m->stopping)
		return -ESHUTDOWN;
	r = ledger_add_group(m->ledger, gc, &g);
	if (r < 0)
		return r;
	p = m->pools[gc->pool];
	master_dispatch_soon(p);
	master_check_done(m);
	if (ret_index)
		*ret_index = g;
	return 0;
}

const struct submit_key *master_find_key(const struct master *m, const char *key)
{
	return ledger_find_key(m->ledger, key);
}

int master_add_key(struct master *m, const char *key, uint64_t first, uint32_t count,
		   uint32_t request)
{
	return ledger_add_key(m->ledger, key, first, count, request);
}

int master_add_variant(struct master *m, const struct group_config *gc, const char *base,
		       unsigned count, char *const *inputs, size_t n_inputs, uint64_t *ret_first)
{
	int r;

	if (!master_pool_accepts(m, gc->pool))
		return -ESHUTDOWN;
	r = ledger_add_variant(m->ledger, gc, base, count, inputs, n_inputs, NULL, ret_first);
	if (r < 0)
		return r;
	master_dispatch_soon(m->pools[gc->pool]);
	master_check_done(m);
	return 0;
}

int master_add_jobs(struct master *m, unsigned group, unsigned count, uint64_t *ret_first)
{
	unsigned pool = ledger_group(m->ledger, group)->pool;
	int r;

	if (m->pools[pool]->state != POOL_UP || m->stopping)
		return -ESHUTDOWN;
	r = ledger_add_jobs(m->ledger, group, count, ret_first);
	if (r < 0)
		return r;
	master_dispatch_soon(m->pools[pool]);
	master_check_done(m);
	return 0;
}

int master_add_input_jobs(struct master *m, unsigned group, char *const *inputs, size_t n,
			  uint64_t *ret_first)
{
	unsigned pool = ledger_group(m->ledger, group)->pool;
	int r;

	if (m->pools[pool]->state != POOL_UP || m->stopping)
		return -ESHUTDOWN;
	r = ledger_add_input_jobs(m->ledger, group, inputs, n, ret_first);
	if (r < 0)
		return r;
	master_dispatch_soon(m->pools[pool]);
	master_check_done(m);
	return 0;
}

int master_restart(struct master *m, unsigned pool, int slot)
{
	struct pool *p;
	unsigned n = 0;

	if (pool >= m->n_pools || m->stopping)
		return -ESHUTDOWN;
	p = m->pools[pool];
	if (p->state != POOL_UP)
		return -ESHUTDOWN;
	if (slot >= 0 && ((unsigned)slot >= p->cfg.workers || (unsigned)slot >= p->n_slots))
		return -ENOENT;
	for (unsigned k = 0; k < p->n_slots; k++) {
		struct worker *w = p->workers[k];

		if ((slot < 0 || (unsigned)slot == k) && w->next != NEXT_RETIRE && w->pid > 0) {
			w->next = NEXT_REPLACE;
			n++;
		}
	}
	if (slot < 0) {
		/* No slot takes over a process from before the restart. */
		if (p->spare && p->spare->next != NEXT_RETIRE)
			p->spare->next = NEXT_REPLACE;
		for (unsigned k = 0; k < MASTER_SOLO_MAX; k++)
			if (p->solo[k] && p->solo[k]->next != NEXT_RETIRE)
				p->solo[k]->next = NEXT_REPLACE;
		spare_ensure(p);
	}
	log_notice("restart of %s%s%.0d requested: %u worker%s to replace, one at a time",
		   p->cfg.name, slot >= 0 ? "/" : "", slot >= 0 ? slot : 0, n, n == 1 ? "" : "s");
	pool_roll_next(p);
	return (int)n;
}

int master_inject(struct master *m, unsigned pool, int slot, const char *fault,
		  char *ret_worker, size_t size, pid_t *ret_pid)
{
	static const struct {
		const char *name;
		int kind; /* enum bh_inject_kind, 0: SIGKILL from here */
	} faults[] = { { "segv", BH_INJECT_SEGV }, { "abort", BH_INJECT_ABORT },
		       { "hang", BH_INJECT_HANG }, { "leak", BH_INJECT_LEAK }, { "kill", 0 } };
	struct pool *p;
	struct worker *w = NULL, *ready[64];
	unsigned n_ready = 0, r32 = 0;
	int kind = -1;
	const char *name = NULL;
	uint8_t buf[16];

	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		if (strcmp(faults[i].name, fault) == 0) {
			kind = faults[i].kind;
			name = faults[i].name;
		}
	if (kind < 0)
		return -EINVAL;
	if (pool >= m->n_pools || m->stopping || m->pools[pool]->state != POOL_UP)
		return -ESHUTDOWN;
	p = m->pools[pool];
	if (kind == BH_INJECT_LEAK && p->cfg.memory_max == UINT64_MAX)
		return -EDOM; /* it would eat the machine's memory */
	if (slot >= 0) {
		if ((unsigned)slot >= p->n_slots || p->workers[slot]->next == NEXT_RETIRE)
			return -ENOENT;
		w = p->workers[slot];
		if (w->state != W_READY || w->end == END_INJECT)
			return -EBUSY;
	} else {
		/* A ready worker of the pool, chosen at random. */
		for (unsigned k = 0; k < p->n_slots && n_ready < 64; k++)
			if (p->workers[k]->state == W_READY && p->workers[k]->end != END_INJECT &&
			    p->workers[k]->next != NEXT_RETIRE)
				ready[n_ready++] = p->workers[k];
		if (n_ready == 0)
			return -EBUSY;
		(void)!getrandom(&r32, sizeof(r32), GRND_NONBLOCK);
		w = ready[r32 % n_ready];
	}
	snprintf(ret_worker, size, "%s/%u", p->cfg.name, w->index);
	*ret_pid = w->pid;
	w->injected = name;
	slot_set_end(w, END_INJECT);
	log_notice("worker %s/%u[%d]: injecting %s", p->cfg.name, w->index, (int)w->pid, name);
	if (kind == 0 || slot_send(w, buf, bh_encode_inject(buf, sizeof(buf), kind)) < 0) {
		slot_kill(w, END_INJECT, NULL);
		return 0;
	}
	if (kind == BH_INJECT_HANG) {
		/* Its main thread stops answering: no new jobs, and after kill_grace, SIGKILL. */
		slot_set_state(w, W_DRAINING);
	}
	return 0;
}

bool master_pool_accepts(const struct master *m, unsigned pool)
{
	return pool < m->n_pools && m->pools[pool]->state == POOL_UP && !m->stopping;
}

/* The worker job j is on, or NULL. */
static struct worker *worker_of(const struct master *m, const struct job *j)
{
	struct flight *f = flights_find(&m->flights, j->id);

	return f ? f->owner : NULL;
}

int master_cancel_job(struct master *m, uint64_t id)
{
	struct job *j = ledger_job(m->ledger, id);
	struct worker *w;
	uint8_t buf[32];
	char name[64];
	int r;

	if (!j)
		return ledger_job_forgotten(m->ledger, id) ? -ESTALE : -ENOENT;
	w = worker_of(m, j);
	r = ledger_cancel_queued_job(m->ledger, j, CAUSE_CANCELLED);
	if (r >= 0) {
		master_check_done(m);
		return 0;
	}
	if (j->state != JOB_RUNNING || !w || w->pid <= 0 || w->state == W_KILLED)
		return r;
	if (j->flags & JOB_CANCEL_REQUESTED)
		return 1;
	ledger_request_cancel(m->ledger, j);
	/* Not sent (socket full): the job runs on, and still ends cancelled unless done. */
	if (slot_send(w, buf, bh_encode_cancel(buf, sizeof(buf), j->id)) < 0)
		log_debug("job %s: cannot send CANCEL",
			  ledger_job_name(m->ledger, j, name, sizeof(name)));
	log_info("job %s: cancel requested", ledger_job_name(m->ledger, j, name, sizeof(name)));
	return 1;
}
