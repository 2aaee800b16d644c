/* SPDX-License-Identifier: MIT */
/*
 * The shared queue's node (pg-queue.h): what is buffered (adds and writes) and its flushes.
 * One flush is in flight at a time; the next one waits for it. A flush lost with the
 * connection, or failed on the server, is kept and sent again whole (pg-jobs.h: adds and
 * writes are idempotent).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/pg-queue-int.h"

static void start_sending(struct pg_queue *q);

void pgq_batch_init(struct batch *b)
{
	*b = (struct batch){ 0 };
	b->adds_tail = &b->adds;
	b->groups_tail = &b->groups;
}

static bool batch_empty(const struct batch *b)
{
	return !b->adds && !b->groups && b->n_writes == 0;
}

void pgq_batch_clear(struct batch *b)
{
	while (b->groups) {
		struct group_req *g = b->groups;

		b->groups = g->next;
		for (int i = 0; i < PG_GROUP_N_PARAMS; i++)
			free(g->values[i]);
		free(g);
	}
	while (b->adds) {
		struct add_req *a = b->adds;

		b->adds = a->next;
		for (size_t i = 0; a->inputs && i < a->n; i++)
			free(a->inputs[i]);
		free(a->inputs);
		free(a->pool);
		free(a);
	}
	for (size_t i = 0; i < b->n_writes; i++)
		free((char *)b->writes[i].result);
	free(b->writes);
	pgq_batch_init(b);
}

/* ---- flushes ---- */

static void sending_done(struct pg_queue *q)
{
	uint64_t serial = q->sending.serial;

	if (q->sending_left > 0 || q->sending_lost || q->sending_failed)
		return;
	pgq_batch_clear(&q->sending);
	q->committed = serial;
	q->ops->flushed(q->userdata, serial, 0, NULL);
	if (q->next.serial)
		start_sending(q);
}

/* One statement of `sending` answered: lost with the connection, failed, or done. */
static bool answered(struct pg_queue *q, const PGresult *res, const char *error)
{
	q->sending_left--;
	if (!res) {
		q->sending_lost = true;
		return false;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		if (!q->sending_failed)
			q->ops->flushed(q->userdata, q->sending.serial, -EIO, error);
		q->sending_failed = true;
		return false;
	}
	return true;
}

static void on_add(void *userdata, const PGresult *res, const char *error)
{
	struct pg_queue *q = userdata;

	answered(q, res, error);
	sending_done(q);
}

static void on_write(void *userdata, const PGresult *res, const char *error)
{
	struct pg_queue *q = userdata;
	struct batch *b = &q->sending;
	int64_t *lost;
	size_t n_lost = 0, k = 0;
	int rows;

	if (!answered(q, res, error)) {
		sending_done(q);
		return;
	}
	/* Both ascending: the answer's ids and the batch's (sorted when it was sent). */
	rows = PQntuples(res);
	lost = malloc((b->n_writes + 1) * sizeof(*lost));
	for (size_t i = 0; i < b->n_writes; i++) {
		const struct pg_job *j = &b->writes[i];
		const struct idmap_entry *l = idmap_find(&q->held, (uint64_t)j->id);
		int64_t got = 0;

		while (k < (size_t)rows && (got = strtoll(PQgetvalue(res, (int)k, 0), NULL, 10)) < j->id)
			k++;
		if (!l || l->value != (uint64_t)j->lease_epoch)
			continue; /* held no more, or again at a newer epoch: not this write's */
		if (k < (size_t)rows && got == j->id) {
			if (j->state != 1)
				idmap_del(&q->held, (uint64_t)j->id);
		} else if (lost) {
			lost[n_lost++] = j->id;
		}
	}
	if (lost)
		pgq_say_lost(q, lost, n_lost);
	free(lost);
	sending_done(q);
}

/* qsort() of indexes into sort_writes: by id, then by the order they came. */
static const struct pg_job *sort_writes;

static int by_id_then_order(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int64_t ix = sort_writes[x].id, iy = sort_writes[y].id;

	if (ix != iy)
		return (ix > iy) - (ix < iy);
	return (x > y) - (x < y);
}

/*
 * Sends `sending`, whole (again after a loss). Several writes of one job in a batch: the
 * last one counts (they are sorted by id, stably by the order they came, and only the last
 * of each id is kept).
 */
void pgq_send_sending(struct pg_queue *q)
{
	struct batch *b = &q->sending;
	bool again = q->sending_lost || q->sending_failed;

	q->sending_lost = q->sending_failed = false;
	q->sending_left = 0;
	for (struct group_req *g = b->groups; g; g = g->next) {
		if (pg_conn_exec_prepared(q->c, "bh_group_insert", pg_group_insert_sql,
					  PG_GROUP_N_PARAMS, (const char *const *)g->values, on_add,
					  q) < 0) {
			q->sending_lost = true;
			continue;
		}
		q->sending_left++;
	}
	for (struct add_req *a = b->adds; a; a = a->next) {
		if (pg_jobs_add(q->c, a->pool, a->grp, a->first_id, a->first_instance, a->n,
				(const char *const *)a->inputs, a->accepted_at, again, on_add, q) < 0) {
			q->sending_lost = true;
			continue;
		}
		q->sending_left++;
	}
	if (b->n_writes > 0) {
		if (pg_jobs_write(q->c, q->node, b->writes, b->n_writes, on_write, q) < 0)
			q->sending_lost = true;
		else
			q->sending_left++;
	}
	sending_done(q);
}

/*
 * `next` becomes `sending`, its writes sorted by id with only the last write of each id kept
 * (one statement updates a row once; the last one says what the job became), and is sent.
 */
static void start_sending(struct pg_queue *q)
{
	struct batch *b = &q->sending;
	size_t *order, k = 0;

	*b = q->next;
	if (!b->adds)
		b->adds_tail = &b->adds;
	if (!b->groups)
		b->groups_tail = &b->groups;
	pgq_batch_init(&q->next);
	order = malloc((b->n_writes + 1) * sizeof(*order));
	if (order && b->n_writes > 1) {
		struct pg_job *sorted = malloc(b->n_writes * sizeof(*sorted));

		for (size_t i = 0; i < b->n_writes; i++)
			order[i] = i;
		sort_writes = b->writes;
		qsort(order, b->n_writes, sizeof(*order), by_id_then_order);
		for (size_t i = 0; sorted && i < b->n_writes; i++) {
			const struct pg_job *j = &b->writes[order[i]];

			if (i + 1 < b->n_writes && b->writes[order[i + 1]].id == j->id) {
				free((char *)j->result);
				continue;
			}
			sorted[k++] = *j;
		}
		if (sorted) {
			free(b->writes);
			b->writes = sorted;
			b->n_writes = k;
			b->cap_writes = b->n_writes;
		}
	}
	free(order);
	if (pg_conn_is_up(q->c))
		pgq_send_sending(q);
	else
		q->sending_lost = true;
}

uint64_t pg_queue_flush(struct pg_queue *q)
{
	if (batch_empty(&q->next))
		return q->next.serial ? q->next.serial : q->serial;
	if (!q->next.serial)
		q->next.serial = ++q->serial;
	if (q->sending.serial)
		return q->next.serial; /* sent when the one in flight is in */
	start_sending(q);
	return q->sending.serial;
}

uint64_t pg_queue_next_serial(const struct pg_queue *q)
{
	return q->next.serial ? q->next.serial : q->serial + 1;
}

uint64_t pg_queue_committed(const struct pg_queue *q)
{
	return q->committed;
}

int pg_queue_add(struct pg_queue *q, const char *pool, int64_t grp, int64_t first_id,
		 int32_t first_instance, size_t n, const char *const *inputs, int64_t accepted_at)
{
	struct add_req *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	*a = (struct add_req){ .pool = strdup(pool), .grp = grp, .first_id = first_id,
			       .first_instance = first_instance, .n = n,
			       .accepted_at = accepted_at };
	if (inputs) {
		a->inputs = calloc(n ? n : 1, sizeof(*a->inputs));
		for (size_t i = 0; a->inputs && i < n; i++)
			if (inputs[i] && !(a->inputs[i] = strdup(inputs[i]))) {
				for (size_t k = 0; k < i; k++)
					free(a->inputs[k]);
				free(a->inputs);
				a->inputs = NULL;
				break;
			}
	}
	if (!a->pool || (inputs && !a->inputs)) {
		free(a->pool);
		free(a);
		return -ENOMEM;
	}
	*q->next.adds_tail = a;
	q->next.adds_tail = &a->next;
	return 0;
}

int pg_queue_add_group(struct pg_queue *q, int64_t id, const struct group_config *g,
		       const char *pool_name, bool adhoc, int64_t def_hash)
{
	struct group_req *req = calloc(1, sizeof(*req));
	struct pg_group_values v;

	if (!req)
		return -ENOMEM;
	if (pg_group_values(&v, id, g, pool_name, adhoc, def_hash) < 0) {
		free(req);
		return -ENOMEM;
	}
	for (int i = 0; i < PG_GROUP_N_PARAMS; i++)
		if (!(req->values[i] = strdup(v.v[i]))) {
			while (i > 0)
				free(req->values[--i]);
			free(req);
			pg_group_values_done(&v);
			return -ENOMEM;
		}
	pg_group_values_done(&v);
	*q->next.groups_tail = req;
	q->next.groups_tail = &req->next;
	return 0;
}

int pg_queue_write(struct pg_queue *q, const struct pg_job *j)
{
	const struct idmap_entry *l = idmap_find(&q->held, (uint64_t)j->id);
	struct batch *b = &q->next;
	struct pg_job *w;

	if (!l || l->value != (uint64_t)j->lease_epoch || q->superseded)
		return -ESTALE;
	if (b->n_writes == b->cap_writes) {
		size_t cap = b->cap_writes ? 2 * b->cap_writes : 64;
		struct pg_job *ws = realloc(b->writes, cap * sizeof(*ws));

		if (!ws)
			return -ENOMEM;
		b->writes = ws;
		b->cap_writes = cap;
	}
	w = &b->writes[b->n_writes];
	*w = *j;
	w->pool = w->input = w->node = NULL;
	if (j->result && !(w->result = strdup(j->result)))
		return -ENOMEM;
	b->n_writes++;
	return 0;
}
