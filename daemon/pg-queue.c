/* SPDX-License-Identifier: MIT */
/*
 * One node's side of the shared queue (pg-queue.h). One connection; its statements run in
 * the order they were sent, which is what makes the bookkeeping here simple: a renewal's
 * answer covers every claim answered before it and none answered after it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/pg-queue.h"

#define USEC_PER_MSEC 1000ull

/* ---- the leases held: id -> epoch, open addressing (0 is no id) ---- */

struct lease {
	int64_t id;
	int64_t epoch;
	uint64_t asked; /* the last renewal that asked for it */
	uint64_t seen;  /* the last renewal that renewed it */
};

struct leases {
	struct lease *e;
	size_t cap; /* 0 or a power of two */
	size_t n;
};

static size_t slot_of(const struct leases *m, int64_t id)
{
	uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 17) & (m->cap - 1);
}

static struct lease *lease_find(const struct leases *m, int64_t id)
{
	if (m->cap == 0)
		return NULL;
	for (size_t i = slot_of(m, id);; i = (i + 1) & (m->cap - 1)) {
		if (m->e[i].id == id)
			return &m->e[i];
		if (m->e[i].id == 0)
			return NULL;
	}
}

static int lease_put(struct leases *m, int64_t id, int64_t epoch)
{
	struct lease *l = lease_find(m, id);

	if (l) {
		l->epoch = epoch;
		return 0;
	}
	if ((m->n + 1) * 4 > m->cap * 3) {
		struct leases bigger = { .cap = m->cap ? 2 * m->cap : 64 };

		bigger.e = calloc(bigger.cap, sizeof(*bigger.e));
		if (!bigger.e)
			return -ENOMEM;
		for (size_t i = 0; i < m->cap; i++)
			if (m->e[i].id) {
				size_t k = slot_of(&bigger, m->e[i].id);

				while (bigger.e[k].id)
					k = (k + 1) & (bigger.cap - 1);
				bigger.e[k] = m->e[i];
			}
		bigger.n = m->n;
		free(m->e);
		*m = bigger;
	}
	for (size_t i = slot_of(m, id);; i = (i + 1) & (m->cap - 1))
		if (m->e[i].id == 0) {
			m->e[i] = (struct lease){ .id = id, .epoch = epoch };
			m->n++;
			return 0;
		}
}

/* Removes id (backward-shift: no tombstones). */
static void lease_del(struct leases *m, int64_t id)
{
	struct lease *l = lease_find(m, id);
	size_t i, j;

	if (!l)
		return;
	i = (size_t)(l - m->e);
	m->e[i].id = 0;
	m->n--;
	for (j = (i + 1) & (m->cap - 1); m->e[j].id; j = (j + 1) & (m->cap - 1)) {
		size_t home = slot_of(m, m->e[j].id);

		/* Entry j may move to the hole at i if its home is not in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			m->e[i] = m->e[j];
			m->e[j].id = 0;
			i = j;
		}
	}
}

/* ---- what is buffered for a flush ---- */

struct add_req {
	struct add_req *next;
	char *pool;
	int64_t grp, first_id, accepted_at;
	int32_t first_instance;
	size_t n;
	char **inputs; /* NULL: none */
};

struct batch {
	uint64_t serial; /* 0: not asked for yet */
	struct add_req *adds, **adds_tail;
	struct pg_job *writes;
	size_t n_writes, cap_writes;
};

static void batch_init(struct batch *b)
{
	*b = (struct batch){ 0 };
	b->adds_tail = &b->adds;
}

static bool batch_empty(const struct batch *b)
{
	return !b->adds && b->n_writes == 0;
}

static void batch_clear(struct batch *b)
{
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
	batch_init(b);
}

/* ---- the node ---- */

struct want {
	struct pg_queue *q;
	char *pool;
	bool alone;
	size_t n;
	bool empty;     /* its last claim found fewer than it asked for */
	bool in_flight; /* a claim is out */
	size_t asked;   /* by it */
};

struct pg_queue {
	sd_event *e;
	struct pg_conn *c;
	char *node;
	int64_t lease_ms;
	const struct pg_queue_ops *ops;
	void *userdata;
	struct pg_node_info info;
	bool joined, join_in_flight, superseded;
	struct leases held;
	uint64_t renewals;        /* renewals sent: a lease's `asked` and `seen` */
	uint64_t renewed_at;      /* CLOCK_MONOTONIC µs: when the last answered renewal was sent */
	uint64_t renew_sent_at;   /* of the one in flight */
	bool renew_in_flight, take_in_flight;
	struct want **wants;
	size_t n_wants;
	struct batch next, sending;
	size_t sending_left;      /* statements of `sending` not answered yet */
	bool sending_lost;        /* one failed with the connection: send it again when up */
	bool sending_failed;      /* one failed on the server: send it again at the next tick */
	uint64_t serial, committed;
	sd_event_source *tick;
};

static uint64_t now_usec(const struct pg_queue *q)
{
	uint64_t t;

	sd_event_now(q->e, CLOCK_MONOTONIC, &t);
	return t;
}

static void try_claims(struct pg_queue *q);
static void send_sending(struct pg_queue *q);
static void start_sending(struct pg_queue *q);

/* Parses a claim's or a take's rows; the rows that do not parse are skipped (counted). */
static size_t parse_rows(const PGresult *res, struct pg_job **ret)
{
	int n = PQntuples(res);
	struct pg_job *jobs = calloc(n > 0 ? (size_t)n : 1, sizeof(*jobs));
	size_t k = 0;

	*ret = jobs;
	if (!jobs)
		return 0;
	for (int i = 0; i < n; i++)
		if (pg_job_parse(res, i, &jobs[k]) == 0)
			k++;
	return k;
}

/* Rows that came leased to this node: held from now on, at their epoch. */
static size_t take_rows(struct pg_queue *q, const PGresult *res, struct pg_job **ret)
{
	size_t n = parse_rows(res, ret);

	for (size_t i = 0; i < n; i++)
		lease_put(&q->held, (*ret)[i].id, (*ret)[i].lease_epoch);
	return n;
}

static void say_lost(struct pg_queue *q, int64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		lease_del(&q->held, ids[i]);
	if (n > 0)
		q->ops->lost(q->userdata, ids, n);
}

/* Everything held is lost (superseded, or not renewed for a whole lease). */
static void lose_all(struct pg_queue *q)
{
	int64_t *ids = malloc((q->held.n + 1) * sizeof(*ids));
	size_t n = 0;

	if (!ids)
		return;
	for (size_t i = 0; i < q->held.cap; i++)
		if (q->held.e[i].id)
			ids[n++] = q->held.e[i].id;
	say_lost(q, ids, n);
	free(ids);
}

/* ---- takes: expired leases, and at a join this node's own ---- */

static void on_take(void *userdata, const PGresult *res, const char *error)
{
	struct pg_queue *q = userdata;
	struct pg_job *jobs = NULL;
	size_t n;

	q->take_in_flight = false;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || q->superseded)
		return;
	n = take_rows(q, res, &jobs);
	if (n > 0)
		q->ops->orphans(q->userdata, jobs, n);
	free(jobs);
}

static void take(struct pg_queue *q, bool mine_too)
{
	if (q->take_in_flight)
		return;
	if (pg_jobs_take_expired(q->c, q->node, mine_too, PG_QUEUE_CLAIM_MAX, q->lease_ms, on_take,
				 q) == 0)
		q->take_in_flight = true;
}

/* ---- joining, heartbeats, renewals ---- */

static void on_joined(void *userdata, const struct pg_node_info *info, const char *error)
{
	struct pg_queue *q = userdata;

	q->join_in_flight = false;
	if (!info)
		return; /* tried again at the next tick */
	q->info = *info;
	q->joined = true;
	q->renewed_at = now_usec(q);
	/* What it held in its last life, before any claim of this one (statements run in
	 * order): a claim sent first would be taken back as an orphan. */
	take(q, true);
	q->ops->joined(q->userdata, info);
	try_claims(q);
}

static void join(struct pg_queue *q)
{
	if (q->joined || q->join_in_flight || !pg_conn_is_up(q->c))
		return;
	if (pg_node_join(q->c, q->node, on_joined, q) == 0)
		q->join_in_flight = true;
}

static void on_beat(void *userdata, const struct pg_node_info *info, const char *error)
{
	struct pg_queue *q = userdata;

	if (info || !error || !strstr(error, "superseded") || q->superseded)
		return;
	q->superseded = true;
	lose_all(q);
	q->ops->superseded(q->userdata, error);
}

/*
 * A renewal's answer: of the leases it asked for (those held when it was sent; a claim
 * answered since was made after it), one missing or at another epoch was taken.
 */
static void on_renew(void *userdata, const PGresult *res, const char *error)
{
	struct pg_queue *q = userdata;
	uint64_t mark = q->renewals;
	int64_t *lost;
	size_t n = 0;

	q->renew_in_flight = false;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || q->superseded)
		return;
	for (int i = 0; i < PQntuples(res); i++) {
		struct lease *l = lease_find(&q->held, strtoll(PQgetvalue(res, i, 0), NULL, 10));

		if (l && l->asked == mark && l->epoch == strtoll(PQgetvalue(res, i, 1), NULL, 10))
			l->seen = mark;
	}
	q->renewed_at = q->renew_sent_at;
	lost = malloc((q->held.n + 1) * sizeof(*lost));
	if (!lost)
		return;
	for (size_t i = 0; i < q->held.cap; i++)
		if (q->held.e[i].id && q->held.e[i].asked == mark && q->held.e[i].seen != mark)
			lost[n++] = q->held.e[i].id;
	say_lost(q, lost, n);
	free(lost);
}

static void renew(struct pg_queue *q)
{
	int64_t *ids;
	size_t n = 0;

	if (q->renew_in_flight || !(ids = malloc((q->held.n + 1) * sizeof(*ids))))
		return;
	q->renewals++;
	for (size_t i = 0; i < q->held.cap; i++)
		if (q->held.e[i].id) {
			q->held.e[i].asked = q->renewals;
			ids[n++] = q->held.e[i].id;
		}
	q->renew_sent_at = now_usec(q);
	if (pg_jobs_renew(q->c, q->node, ids, n, q->lease_ms, on_renew, q) == 0)
		q->renew_in_flight = true;
	free(ids);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct pg_queue *q = userdata;

	sd_event_source_set_time(s, usec + (uint64_t)q->lease_ms * USEC_PER_MSEC / 3);
	if (q->superseded)
		return 0;
	/* Not renewed for a whole lease: another node may have its jobs by now. */
	if (q->joined && q->held.n > 0 &&
	    now_usec(q) > q->renewed_at + (uint64_t)q->lease_ms * USEC_PER_MSEC)
		lose_all(q);
	if (!pg_conn_is_up(q->c))
		return 0;
	if (!q->joined) {
		join(q);
		return 0;
	}
	pg_node_beat(q->c, q->node, q->info.epoch, on_beat, q);
	renew(q);
	take(q, false);
	if (q->sending_failed)
		send_sending(q);
	for (size_t i = 0; i < q->n_wants; i++)
		q->wants[i]->empty = false; /* the poll: a NOTIFY may have been missed */
	try_claims(q);
	return 0;
}

/* ---- claims ---- */

static void on_claim(void *userdata, const PGresult *res, const char *error)
{
	struct want *w = userdata;
	struct pg_queue *q = w->q;
	struct pg_job *jobs = NULL;
	size_t n;

	w->in_flight = false;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || q->superseded)
		return;
	n = take_rows(q, res, &jobs);
	w->n = w->n > n ? w->n - n : 0;
	if (n < w->asked)
		w->empty = true;
	if (n > 0)
		q->ops->claimed(q->userdata, jobs, n);
	free(jobs);
	try_claims(q);
}

static void try_claims(struct pg_queue *q)
{
	if (!q->joined || q->superseded || !pg_conn_is_up(q->c))
		return;
	for (size_t i = 0; i < q->n_wants; i++) {
		struct want *w = q->wants[i];

		if (w->n == 0 || w->empty || w->in_flight)
			continue;
		w->asked = w->n < PG_QUEUE_CLAIM_MAX ? w->n : PG_QUEUE_CLAIM_MAX;
		if (pg_jobs_claim(q->c, w->pool, w->alone, q->node, w->asked, q->lease_ms, on_claim,
				  w) == 0)
			w->in_flight = true;
	}
}

int pg_queue_want(struct pg_queue *q, const char *pool, bool alone, size_t n)
{
	struct want *w = NULL;

	for (size_t i = 0; i < q->n_wants; i++)
		if (q->wants[i]->alone == alone && strcmp(q->wants[i]->pool, pool) == 0)
			w = q->wants[i];
	if (!w) {
		struct want **ws = realloc(q->wants, (q->n_wants + 1) * sizeof(*ws));

		if (!ws)
			return -ENOMEM;
		q->wants = ws;
		w = calloc(1, sizeof(*w));
		if (!w || !(w->pool = strdup(pool))) {
			free(w);
			return -ENOMEM;
		}
		w->q = q;
		w->alone = alone;
		ws[q->n_wants++] = w;
	}
	w->n = n;
	try_claims(q);
	return 0;
}

/* ---- the connection ---- */

static void on_listen(void *userdata, const PGresult *res, const char *error)
{
}

static void on_up(void *userdata)
{
	struct pg_queue *q = userdata;

	pg_conn_exec(q->c, "LISTEN " PG_JOBS_CHANNEL, on_listen, q);
	if (!q->joined) {
		join(q);
		return;
	}
	if (q->sending_lost)
		send_sending(q);
	for (size_t i = 0; i < q->n_wants; i++)
		q->wants[i]->empty = false;
	try_claims(q);
}

static void on_down(void *userdata, const char *why)
{
	struct pg_queue *q = userdata;

	q->ops->down(q->userdata, why);
}

static void on_notified(void *userdata, const char *channel, const char *payload)
{
	struct pg_queue *q = userdata;

	if (strcmp(channel, PG_JOBS_CHANNEL) != 0)
		return;
	for (size_t i = 0; i < q->n_wants; i++)
		if (strcmp(q->wants[i]->pool, payload) == 0)
			q->wants[i]->empty = false;
	try_claims(q);
}

static const struct pg_conn_ops conn_ops = {
	.up = on_up,
	.down = on_down,
	.notified = on_notified,
};

/* ---- flushes ---- */

static void sending_done(struct pg_queue *q)
{
	uint64_t serial = q->sending.serial;

	if (q->sending_left > 0 || q->sending_lost || q->sending_failed)
		return;
	batch_clear(&q->sending);
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
		int64_t got = 0;

		while (k < (size_t)rows && (got = strtoll(PQgetvalue(res, (int)k, 0), NULL, 10)) < j->id)
			k++;
		struct lease *l = lease_find(&q->held, j->id);

		if (!l || l->epoch != j->lease_epoch)
			continue; /* held no more, or again at a newer epoch: not this write's */
		if (k < (size_t)rows && got == j->id) {
			if (j->state != 1)
				lease_del(&q->held, j->id);
		} else if (lost) {
			lost[n_lost++] = j->id;
		}
	}
	if (lost)
		say_lost(q, lost, n_lost);
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
static void send_sending(struct pg_queue *q)
{
	struct batch *b = &q->sending;

	q->sending_lost = q->sending_failed = false;
	q->sending_left = 0;
	for (struct add_req *a = b->adds; a; a = a->next) {
		if (pg_jobs_add(q->c, a->pool, a->grp, a->first_id, a->first_instance, a->n,
				(const char *const *)a->inputs, a->accepted_at, on_add, q) < 0) {
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
	batch_init(&q->next);
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
		send_sending(q);
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

int pg_queue_write(struct pg_queue *q, const struct pg_job *j)
{
	const struct lease *l = lease_find(&q->held, j->id);
	struct batch *b = &q->next;
	struct pg_job *w;

	if (!l || l->epoch != j->lease_epoch || q->superseded)
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

bool pg_queue_holds(const struct pg_queue *q, int64_t id)
{
	return lease_find(&q->held, id) != NULL;
}

size_t pg_queue_n_held(const struct pg_queue *q)
{
	return q->held.n;
}

bool pg_queue_is_joined(const struct pg_queue *q)
{
	return q->joined && !q->superseded;
}

int pg_queue_slot(const struct pg_queue *q)
{
	return q->joined ? q->info.slot : -1;
}

int pg_queue_new(sd_event *e, const struct pg_queue_config *cfg, const struct pg_queue_ops *ops,
		 void *userdata, struct pg_queue **ret, char **ret_error)
{
	struct pg_queue *q = calloc(1, sizeof(*q));
	uint64_t now;
	int r;

	*ret_error = NULL;
	if (!q)
		return -ENOMEM;
	q->e = sd_event_ref(e);
	q->ops = ops;
	q->userdata = userdata;
	q->lease_ms = cfg->lease_ms > 0 ? cfg->lease_ms : PG_QUEUE_LEASE_MS;
	q->node = strdup(cfg->node);
	batch_init(&q->next);
	batch_init(&q->sending);
	sd_event_now(e, CLOCK_MONOTONIC, &now);
	r = q->node ? 0 : -ENOMEM;
	if (r >= 0)
		r = sd_event_add_time(e, &q->tick, CLOCK_MONOTONIC,
				      now + (uint64_t)q->lease_ms * USEC_PER_MSEC / 3, 0, on_tick, q);
	if (r >= 0)
		r = sd_event_source_set_enabled(q->tick, SD_EVENT_ON);
	if (r >= 0)
		r = pg_conn_new(e, cfg->conninfo, &conn_ops, q, &q->c, ret_error);
	if (r < 0) {
		pg_queue_free(q);
		return r;
	}
	*ret = q;
	return 0;
}

void pg_queue_free(struct pg_queue *q)
{
	if (!q)
		return;
	pg_conn_free(q->c);
	sd_event_source_disable_unref(q->tick);
	batch_clear(&q->next);
	batch_clear(&q->sending);
	for (size_t i = 0; i < q->n_wants; i++) {
		free(q->wants[i]->pool);
		free(q->wants[i]);
	}
	free(q->wants);
	free(q->held.e);
	free(q->node);
	sd_event_unref(q->e);
	free(q);
}
