/* SPDX-License-Identifier: MIT */
/*
 * The ledger's pass-throughs to its store (see ledger.h, ledger.c for the rules): making and
 * freeing a ledger, adding jobs and groups (stamped with the time they were accepted), views,
 * queues, extras, retention, and the durable store's flush, errors and job logs. Nothing here
 * decides a job's fate.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "daemon/ledger-int.h"
#include "daemon/ledger.h"
#include "daemon/store.h"

static int64_t realtime_now(void *userdata)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void ledger_set_clock(struct ledger *l, int64_t (*now)(void *userdata), void *userdata)
{
	l->now = now ? now : realtime_now;
	l->now_data = userdata;
}

/* Jobs after `before` were accepted now (every add below goes through here). */
static int stamped(struct ledger *l, uint64_t before, int r)
{
	uint64_t n = l->ops->n_jobs(l->st);
	int64_t now;

	if (r < 0 || n == before)
		return r;
	now = l->now(l->now_data);
	for (uint64_t id = before + 1; id <= n; id++) {
		struct job *j = l->ops->job(l->st, id);

		j->accepted_at = now; /* a new job: the store writes it whole, no mark needed */
	}
	return r;
}

int ledger_new_with_store(struct store *st, struct ledger **ret)
{
	struct ledger *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->st = st;
	l->ops = st->ops;
	l->now = realtime_now;
	*ret = l;
	return 0;
}

int ledger_new(unsigned n_pools, struct ledger **ret)
{
	struct store *st;
	int r = store_memory_new(n_pools, &st);

	if (r < 0)
		return r;
	r = ledger_new_with_store(st, ret);
	if (r < 0)
		st->ops->free(st);
	return r;
}

int ledger_new_from_config(const struct config *c, struct ledger **ret)
{
	struct ledger *l;
	int r = ledger_new(c->n_pools, &l);

	for (unsigned g = 0; r >= 0 && g < c->n_groups; g++)
		r = ledger_add_group(l, &c->groups[g], NULL);
	if (r < 0) {
		ledger_free(l);
		return r;
	}
	*ret = l;
	return 0;
}

void ledger_free(struct ledger *l)
{
	if (!l)
		return;
	l->ops->free(l->st);
	free(l->held);
	free(l);
}


int ledger_set_pools(struct ledger *l, unsigned n_pools, const char *const *names)
{
	return l->ops->set_pools(l->st, n_pools, names);
}

int ledger_add_group(struct ledger *l, const struct group_config *g, unsigned *ret_index)
{
	uint64_t before = l->ops->n_jobs(l->st);

	return stamped(l, before, l->ops->add_group(l->st, g, ret_index));
}

int ledger_add_variant(struct ledger *l, const struct group_config *g, const char *base,
		       unsigned count, char *const *inputs, size_t n_inputs, unsigned *ret_group,
		       uint64_t *ret_first)
{
	uint64_t before = l->ops->n_jobs(l->st);

	return stamped(l, before,
		       l->ops->add_variant(l->st, g, base, count, inputs, n_inputs, ret_group,
					   ret_first));
}

int ledger_add_jobs(struct ledger *l, unsigned group, unsigned count, uint64_t *ret_first)
{
	uint64_t before = l->ops->n_jobs(l->st);

	return stamped(l, before, l->ops->add_jobs(l->st, group, count, ret_first));
}

int ledger_add_input_jobs(struct ledger *l, unsigned group, char *const *inputs, size_t n,
			  uint64_t *ret_first)
{
	uint64_t before = l->ops->n_jobs(l->st);

	return stamped(l, before, l->ops->add_input_jobs(l->st, group, inputs, n, ret_first));
}

void ledger_update_group(struct ledger *l, unsigned group, const struct group_config *g)
{
	l->ops->update_group(l->st, group, g);
}

unsigned ledger_n_groups(const struct ledger *l)
{
	return l->ops->n_groups(l->st);
}

unsigned ledger_n_live_groups(const struct ledger *l)
{
	return l->ops->n_live_groups(l->st);
}

bool ledger_group_exists(const struct ledger *l, unsigned group)
{
	return l->ops->group_exists(l->st, group);
}

const struct group_config *ledger_group(const struct ledger *l, unsigned group)
{
	return l->ops->group(l->st, group);
}

int ledger_find_group(const struct ledger *l, const char *name)
{
	return l->ops->find_group(l->st, name);
}

int ledger_rename_group(struct ledger *l, unsigned group, const char *name)
{
	return l->ops->rename_group(l->st, group, name);
}

const struct submit_key *ledger_find_key(const struct ledger *l, const char *key)
{
	return l->ops->find_key(l->st, key);
}

int ledger_add_key(struct ledger *l, const char *key, uint64_t first, uint32_t count,
		   uint32_t request)
{
	return l->ops->add_key(l->st, key, first, count, request);
}

uint32_t ledger_group_spec_id(const struct ledger *l, unsigned group)
{
	return l->ops->group_spec_id(l->st, group);
}

const struct group_counts *ledger_group_counts(const struct ledger *l, unsigned group)
{
	return l->ops->group_counts(l->st, group);
}

const struct ledger_stats *ledger_stats(const struct ledger *l)
{
	return l->ops->stats(l->st);
}

uint64_t ledger_n_jobs(const struct ledger *l)
{
	return l->ops->n_jobs(l->st);
}

struct job *ledger_job(struct ledger *l, uint64_t id)
{
	return l->ops->job(l->st, id);
}

bool ledger_job_forgotten(const struct ledger *l, uint64_t id)
{
	return l->ops->job_forgotten(l->st, id);
}

const char *ledger_job_input(const struct ledger *l, const struct job *j)
{
	return l->ops->job_input(l->st, j);
}

int ledger_move_job_input(struct ledger *l, struct job *j, const char *input)
{
	return l->ops->move_job_input(l->st, j, input);
}

const char *ledger_job_result(const struct ledger *l, const struct job *j)
{
	return l->ops->job_result(l->st, j);
}

int ledger_set_result(struct ledger *l, struct job *j, const char *text, size_t len)
{
	return l->ops->set_result(l->st, j, text, len);
}

int ledger_job_progress(const struct ledger *l, const struct job *j)
{
	return l->ops->job_progress(l->st, j);
}

int ledger_set_progress(struct ledger *l, struct job *j, unsigned permille)
{
	return l->ops->set_progress(l->st, j, (int)(permille > 1000 ? 1000 : permille));
}

uint64_t ledger_queued(const struct ledger *l, unsigned pool, bool alone)
{
	return l->ops->queued(l->st, pool, alone);
}

struct job *ledger_pop(struct ledger *l, unsigned pool, bool alone)
{
	return l->ops->pop(l->st, pool, alone);
}

void ledger_unpop(struct ledger *l, struct job *j)
{
	l->ops->unpop(l->st, j);
}

void ledger_set_keep_ended(struct ledger *l, uint64_t keep)
{
	l->ops->set_keep_ended(l->st, keep);
}

void ledger_pin(struct ledger *l, bool on)
{
	l->ops->pin(l->st, on);
}

uint64_t ledger_collect(struct ledger *l)
{
	return l->ops->collect(l->st);
}

uint64_t ledger_forgotten(const struct ledger *l)
{
	return l->ops->forgotten(l->st);
}

/* ---- the durable store ---- */

int ledger_flush(struct ledger *l)
{
	return l->ops->flush(l->st);
}

int ledger_flush_partial(struct ledger *l)
{
	return l->ops->flush_partial ? l->ops->flush_partial(l->st) : l->ops->flush(l->st);
}

const char *ledger_store_error(const struct ledger *l)
{
	return l->ops->last_error(l->st);
}

int ledger_set_node(struct ledger *l, const char *name)
{
	uint16_t i = l->ops->node_index(l->st, name);

	if (i == 0)
		return -ENOMEM;
	l->node = i;
	return 0;
}

const char *ledger_job_node(const struct ledger *l, const struct job *j)
{
	return l->ops->node_name(l->st, j->node);
}

uint64_t ledger_store_commits(const struct ledger *l)
{
	return l->ops->commits(l->st);
}

int ledger_add_log(struct ledger *l, const struct job *j, int level, const char *text,
		   size_t len, struct log_line *ret)
{
	*ret = (struct log_line){ j->id, l->now(l->now_data), level, text, len };
	return l->ops->add_log(l->st, ret);
}

int ledger_read_logs(struct ledger *l, const struct log_query *q,
		     int (*cb)(void *userdata, const struct log_line *line), void *userdata)
{
	return l->ops->read_logs(l->st, q, cb, userdata);
}

bool ledger_store_dirty(const struct ledger *l)
{
	return l->ops->dirty(l->st);
}
