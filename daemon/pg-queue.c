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

#include "daemon/pg-queue-int.h"

static uint64_t loop_now(const struct pg_queue *q)
{
	uint64_t t;

	sd_event_now(q->e, CLOCK_MONOTONIC, &t);
	return t;
}

static void try_claims(struct pg_queue *q);
static void arm_fence(struct pg_queue *q);
static void take(struct pg_queue *q, bool mine_too);

/*
 * Parses a claim's or a take's rows. A row that does not parse (a value out of its range: a
 * damaged table) is said (damaged()) and skipped: not held, so its lease expires and the
 * next take meets it again; it never runs here.
 */
static size_t parse_rows(struct pg_queue *q, const PGresult *res, struct pg_job **ret)
{
	int n = PQntuples(res);
	struct pg_job *jobs = calloc(n > 0 ? (size_t)n : 1, sizeof(*jobs));
	size_t k = 0;

	*ret = jobs;
	if (!jobs)
		return 0;
	for (int i = 0; i < n; i++) {
		if (pg_job_parse(res, i, &jobs[k]) == 0)
			k++;
		else if (q->ops->damaged)
			q->ops->damaged(q->userdata, strtoll(PQgetvalue(res, i, 0), NULL, 10));
	}
	return k;
}

/* Holds job id at epoch (a newer epoch if it is held already). */
static void hold(struct pg_queue *q, int64_t id, int64_t epoch)
{
	struct idmap_entry *e = idmap_find(&q->held, (uint64_t)id);

	if (e)
		e->value = (uint64_t)epoch;
	else
		idmap_add(&q->held, (uint64_t)id, (uint64_t)epoch); /* -ENOMEM: not held, expires */
}

/* Rows that came leased to this node: held from now on, at their epoch. */
static size_t take_rows(struct pg_queue *q, const PGresult *res, struct pg_job **ret)
{
	size_t n = parse_rows(q, res, ret);

	for (size_t i = 0; i < n; i++)
		hold(q, (*ret)[i].id, (*ret)[i].lease_epoch);
	return n;
}

void pgq_say_lost(struct pg_queue *q, int64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		idmap_del(&q->held, (uint64_t)ids[i]);
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
			ids[n++] = (int64_t)q->held.e[i].id;
	pgq_say_lost(q, ids, n);
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
	/* A full batch: there may be more (a dead node held more than one batch). */
	if (PQntuples(res) == PG_QUEUE_CLAIM_MAX)
		take(q, false);
}

static void take(struct pg_queue *q, bool mine_too)
{
	if (q->take_in_flight)
		return;
	/*
	 * Its own last life's jobs all at once: taken again, they are this node's at a new
	 * epoch, and a second batch of "mine" would take the first one back. Expired leases go
	 * a batch at a time (on_take() asks again after a full one).
	 */
	if (pg_jobs_take_expired(q->c, q->node, mine_too,
				 mine_too ? PG_QUEUE_TAKE_ALL : PG_QUEUE_CLAIM_MAX, q->lease_ms, on_take,
				 q) == 0)
		q->take_in_flight = true;
}

/* ---- joining, heartbeats, renewals ---- */

/*
 * Joined: what it held in its last life is taken first, before any claim of this one
 * (statements run in order): a claim sent first would be taken back as an orphan.
 */
static void start(struct pg_queue *q)
{
	q->started = true;
	q->renewed_at = loop_now(q);
	arm_fence(q);
	take(q, true);
	q->ops->joined(q->userdata, &q->info);
	try_claims(q);
}

static void on_joined(void *userdata, const struct pg_node_info *info, const char *error)
{
	struct pg_queue *q = userdata;

	q->join_in_flight = false;
	if (!info)
		return; /* tried again at the next tick */
	q->info = *info;
	q->joined = true;
	start(q);
}

static void join(struct pg_queue *q)
{
	if (q->joined || q->join_in_flight || !pg_conn_is_up(q->c))
		return;
	if (pg_node_join(q->c, q->node, on_joined, q) == 0)
		q->join_in_flight = true;
}

/* Another bulkheadd joined under this name: everything held is lost, and it stops. */
static void superseded(struct pg_queue *q)
{
	if (q->superseded)
		return;
	q->superseded = true;
	lose_all(q);
	q->ops->superseded(q->userdata,
			   "superseded: another node joined under this name since (its epoch is "
			   "newer)");
}

/*
 * A renewal's answer: of the leases it asked for, one still held at the epoch it asked for
 * but not renewed at that epoch was taken. (A claim answered since the renewal was sent was
 * made after it: not asked for, not judged.)
 */
static void on_renew(void *userdata, const PGresult *res, const char *error)
{
	struct pg_queue *q = userdata;
	struct idmap got = IDMAP_INIT;
	int64_t *lost = NULL;
	size_t n = 0;

	q->renew_in_flight = false;
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && !q->superseded) {
		bool beat = false;

		for (int i = 0; i < PQntuples(res); i++) {
			uint64_t id = strtoull(PQgetvalue(res, i, 0), NULL, 10);

			if (id == 0) /* the heartbeat's row: still this node */
				beat = true;
			else
				idmap_add(&got, id, strtoull(PQgetvalue(res, i, 1), NULL, 10));
		}
		if (!beat) {
			superseded(q);
			idmap_clear(&got);
		} else {
			q->renewed_at = q->renew_sent_at;
			arm_fence(q);
			lost = malloc((q->n_renewing + 1) * sizeof(*lost));
		}
	}
	for (size_t i = 0; lost && i < q->n_renewing; i++) {
		uint64_t id = (uint64_t)q->renewing[i], epoch = (uint64_t)q->renewing_epochs[i];
		const struct idmap_entry *h = idmap_find(&q->held, id), *g = idmap_find(&got, id);

		if (h && h->value == epoch && !(g && g->value == epoch))
			lost[n++] = q->renewing[i];
	}
	if (lost)
		pgq_say_lost(q, lost, n);
	free(lost);
	idmap_clear(&got);
	free(q->renewing);
	free(q->renewing_epochs);
	q->renewing = q->renewing_epochs = NULL;
	q->n_renewing = 0;
}

static void renew(struct pg_queue *q)
{
	size_t n = 0;

	if (q->renew_in_flight)
		return;
	q->renewing = malloc((q->held.n + 1) * sizeof(*q->renewing));
	q->renewing_epochs = malloc((q->held.n + 1) * sizeof(*q->renewing_epochs));
	if (!q->renewing || !q->renewing_epochs) {
		free(q->renewing);
		free(q->renewing_epochs);
		q->renewing = q->renewing_epochs = NULL;
		return;
	}
	for (size_t i = 0; i < q->held.cap; i++)
		if (q->held.e[i].id) {
			q->renewing[n] = (int64_t)q->held.e[i].id;
			q->renewing_epochs[n++] = (int64_t)q->held.e[i].value;
		}
	q->n_renewing = n;
	q->renew_sent_at = loop_now(q);
	if (pg_jobs_renew(q->c, q->node, q->info.epoch, q->renewing, n, q->lease_ms, on_renew,
			  q) == 0)
		q->renew_in_flight = true;
}

/*
 * Self-fencing: not renewed for 3/4 of a lease (the server cannot be reached, or answers too
 * late), the node gives up what it holds before its leases can expire, so that it has
 * stopped its jobs before another node may take them. A renewal is sent no later than the
 * lease's moment it counts from, so the leases in the table end later than this deadline;
 * renewals come every third of a lease, so a node that can reach the server never gets here.
 */
static int on_fence(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct pg_queue *q = userdata;

	if (q->held.n > 0)
		lose_all(q);
	return 0;
}

static void arm_fence(struct pg_queue *q)
{
	uint64_t at = q->renewed_at + (uint64_t)q->lease_ms * USEC_PER_MSEC * 3 / 4;

	if (!q->fence) {
		if (sd_event_add_time(q->e, &q->fence, CLOCK_MONOTONIC, at, 0, on_fence, q) < 0)
			q->fence = NULL; /* without it, a lease lost is found at the next renewal */
		return;
	}
	sd_event_source_set_time(q->fence, at);
	sd_event_source_set_enabled(q->fence, SD_EVENT_ONESHOT);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct pg_queue *q = userdata;

	sd_event_source_set_time(s, usec + (uint64_t)q->lease_ms * USEC_PER_MSEC / 3);
	if (q->superseded)
		return 0;
	if (!pg_conn_is_up(q->c))
		return 0;
	if (!q->joined) {
		join(q);
		return 0;
	}
	if (!q->started)
		return 0;
	renew(q); /* and the heartbeat */
	take(q, false);
	if (q->sending_failed)
		pgq_send_sending(q);
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
	if (!q->started || q->superseded || !pg_conn_is_up(q->c))
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
	if (!q->started) /* joined before it was made (pg_queue_config.joined) */
		start(q);
	if (q->sending_lost)
		pgq_send_sending(q);
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

bool pg_queue_holds(const struct pg_queue *q, int64_t id)
{
	return idmap_find(&q->held, (uint64_t)id) != NULL;
}

size_t pg_queue_n_held(const struct pg_queue *q)
{
	return q->held.n;
}

struct pg_conn *pg_queue_conn(struct pg_queue *q)
{
	return q->c;
}

const char *pg_queue_node(const struct pg_queue *q)
{
	return q->node;
}

bool pg_queue_is_joined(const struct pg_queue *q)
{
	return q->started && !q->superseded;
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
	if (cfg->joined) {
		q->info = *cfg->joined;
		q->joined = true;
	}
	pgq_batch_init(&q->next);
	pgq_batch_init(&q->sending);
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
	sd_event_source_disable_unref(q->fence);
	pgq_batch_clear(&q->next);
	pgq_batch_clear(&q->sending);
	for (size_t i = 0; i < q->n_wants; i++) {
		free(q->wants[i]->pool);
		free(q->wants[i]);
	}
	free(q->wants);
	idmap_clear(&q->held);
	free(q->renewing);
	free(q->renewing_epochs);
	free(q->node);
	sd_event_unref(q->e);
	free(q);
}
