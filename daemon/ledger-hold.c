/* SPDX-License-Identifier: MIT */
/*
 * retry_delay (ledger.h "held jobs"): a job re-queued after an attempt it is blamed for waits
 * out of its queue until its delay has passed. It is QUEUED all along (counts, views and a
 * durable store say so; a master that restarts meanwhile runs it at once), but not in the
 * store's queue, so no dispatch takes it; the master arms one timer for the earliest due
 * one (the hold hook) and puts the due ones back with ledger_hold_release(). A store whose
 * re-queued jobs are not in a local queue (PostgreSQL: the shared queue) holds nothing.
 *
 * The delay doubles with each attempt: LO after the first, 2 LO after the second..., at most
 * HI. Few jobs wait at once (each one's retries are spaced): an array, scanned.
 */
#include <errno.h>
#include <stdlib.h>

#include "daemon/ledger-int.h"

/* retry_delay after the job's attempts-th attempt: LO * 2^(attempts-1), at most HI. */
static usec_t delay_of(const struct group_config *g, unsigned attempts)
{
	usec_t d = g->retry_delay_min;

	for (unsigned i = 1; i < attempts && d < g->retry_delay_max; i++)
		d = d > g->retry_delay_max / 2 ? g->retry_delay_max : d * 2;
	return d < g->retry_delay_max ? d : g->retry_delay_max;
}

bool ledger_hold(struct ledger *l, struct job *j)
{
	usec_t d = delay_of(ledger_group(l, j->group), j->attempts);
	int64_t due;

	if (d == 0 || j->state != JOB_QUEUED)
		return false;
	if (l->n_held == l->cap_held) {
		size_t cap = l->cap_held ? 2 * l->cap_held : 16;
		struct ledger_held *h = realloc(l->held, cap * sizeof(*h));

		if (!h)
			return false; /* out of memory: it runs again without waiting */
		l->held = h;
		l->cap_held = cap;
	}
	if (!l->ops->unqueue(l->st, j))
		return false;
	due = l->now(l->now_data) + (int64_t)d;
	l->held[l->n_held++] = (struct ledger_held){ .job = j, .due = due };
	if (l->hold_hook)
		l->hold_hook(l->hold_data, due);
	return true;
}

void ledger_set_hold_hook(struct ledger *l, void (*fn)(void *userdata, int64_t due),
			  void *userdata)
{
	l->hold_hook = fn;
	l->hold_data = userdata;
}

int64_t ledger_hold_next(const struct ledger *l)
{
	int64_t next = 0;

	for (size_t i = 0; i < l->n_held; i++)
		if (next == 0 || l->held[i].due < next)
			next = l->held[i].due;
	return next;
}

size_t ledger_n_held(const struct ledger *l)
{
	return l->n_held;
}

/* Back in its queue, at the back (still QUEUED: no count changes). */
static void put_back(struct ledger *l, size_t i)
{
	struct job *j = l->held[i].job;

	l->held[i] = l->held[--l->n_held];
	l->ops->requeue(l->st, j, j->alone);
}

size_t ledger_hold_release(struct ledger *l, int64_t now, int pool)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n_held;) {
		const struct job *j = l->held[i].job;

		if ((pool < 0 && l->held[i].due <= now) ||
		    (pool >= 0 && ledger_group(l, j->group)->pool == (unsigned)pool)) {
			put_back(l, i);
			n++;
		} else {
			i++;
		}
	}
	return n;
}

bool ledger_hold_take(struct ledger *l, struct job *j)
{
	for (size_t i = 0; i < l->n_held; i++)
		if (l->held[i].job == j) {
			l->held[i] = l->held[--l->n_held];
			return true;
		}
	return false;
}
