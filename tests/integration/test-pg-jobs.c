/* SPDX-License-Identifier: MIT */
/*
 * The shared queue's statements (daemon/pg-jobs.c) against a real server
 * (tests/pg/with-postgres), with several connections on one loop as the nodes: claims that
 * never overlap, writes fenced on the lease (a stale epoch or another owner writes nothing),
 * expired leases taken over with their jobs' counters untouched, renewals that show what a
 * node lost, wake-ups by NOTIFY, and values that survive the array literals.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/job-state.h"
#include "daemon/pg-jobs.h"
#include "daemon/pg-queue.h"
#include "daemon/store-pg.h"
#include "tests/pg/pg-testdb.h"

#define DEADLINE_MS 30000
#define MAX_ROWS 4096

static char conninfo[128];
static sd_event *loop;

struct node {
	const char *name;
	struct pg_conn *c;
	int ups;
	int notes;
	char note[64];
};

/* What one statement answered. */
struct answer {
	bool done, ok;
	char error[256];
	int n;
	int64_t id[MAX_ROWS], epoch[MAX_ROWS];
	struct pg_job job[MAX_ROWS]; /* rows of a claim or a take: strings copied below */
	char *text[MAX_ROWS][2];     /* each row's input and result */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void run_until(const bool *done, const char *what)
{
	int64_t deadline = now_ms() + DEADLINE_MS;

	while (!*done) {
		ck_assert_msg(now_ms() < deadline, "no %s within %d ms", what, DEADLINE_MS);
		ck_assert_int_ge(sd_event_run(loop, 100 * 1000), 0);
	}
}

/* Runs the loop until *count is above 0. */
static void wait_for(const int *count, const char *what)
{
	int64_t deadline = now_ms() + DEADLINE_MS;

	while (*count == 0) {
		ck_assert_msg(now_ms() < deadline, "no %s within %d ms", what, DEADLINE_MS);
		ck_assert_int_ge(sd_event_run(loop, 100 * 1000), 0);
	}
}

static void on_up(void *userdata)
{
	((struct node *)userdata)->ups++;
}

static void on_down(void *userdata, const char *why)
{
	(void)userdata;
	(void)why;
}

static void on_notified(void *userdata, const char *channel, const char *payload)
{
	struct node *n = userdata;

	if (strcmp(channel, PG_JOBS_CHANNEL) != 0)
		return;
	n->notes++;
	snprintf(n->note, sizeof(n->note), "%s", payload);
}

static const struct pg_conn_ops ops = { .up = on_up, .down = on_down, .notified = on_notified };

static void node_start(struct node *n, const char *name)
{
	char *err = NULL;

	*n = (struct node){ .name = name };
	ck_assert_int_eq(pg_conn_new(loop, conninfo, &ops, n, &n->c, &err), 0);
	wait_for(&n->ups, "a connection");
}

static void on_answer(void *userdata, const PGresult *res, const char *error)
{
	struct answer *a = userdata;

	a->done = true;
	a->ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!a->ok) {
		snprintf(a->error, sizeof(a->error), "%s", error ? error : "?");
		return;
	}
	a->n = PQntuples(res);
	ck_assert_int_le(a->n, MAX_ROWS);
	for (int i = 0; i < a->n; i++) {
		a->id[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		if (PQnfields(res) == 2)
			a->epoch[i] = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		if (PQnfields(res) < 20)
			continue;
		ck_assert_int_eq(pg_job_parse(res, i, &a->job[i]), 0);
		a->text[i][0] = a->job[i].input ? strdup(a->job[i].input) : NULL;
		a->text[i][1] = a->job[i].result ? strdup(a->job[i].result) : NULL;
		a->job[i].input = a->text[i][0];
		a->job[i].result = a->text[i][1];
		a->job[i].pool = a->job[i].node = NULL;
	}
}

static struct answer *answer_new(void)
{
	struct answer *a = calloc(1, sizeof(*a));

	ck_assert_ptr_nonnull(a);
	return a;
}

static void answer_free(struct answer *a)
{
	for (int i = 0; i < a->n; i++) {
		free(a->text[i][0]);
		free(a->text[i][1]);
	}
	free(a);
}

/* Waits for a's statement, which must have worked. */
static struct answer *wait_ok(struct answer *a, const char *what)
{
	run_until(&a->done, what);
	ck_assert_msg(a->ok, "%s: %s", what, a->error);
	return a;
}

static PGconn *db;

static long q(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long q(const char *fmt, ...)
{
	char sql[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return pg_test_long(db, sql);
}

static struct answer *add(struct node *n, const char *pool, int64_t grp, size_t count,
			  const char *const *inputs)
{
	struct answer *a = answer_new();

	int64_t next_id = q("SELECT coalesce(max(id), 0) + 1 FROM bulkhead.jobs");

	ck_assert_int_eq(pg_jobs_add(n->c, pool, grp, next_id, 1, count, inputs, 1000, false, on_answer, a), 0);
	return wait_ok(a, "add");
}

static struct answer *claim(struct node *n, const char *pool, size_t count, int64_t lease_ms)
{
	struct answer *a = answer_new();

	ck_assert_int_eq(pg_jobs_claim(n->c, pool, false, n->name, count, lease_ms, on_answer, a),
			 0);
	return wait_ok(a, "claim");
}

static struct answer *write_jobs(struct node *n, const struct pg_job *jobs, size_t count)
{
	struct answer *a = answer_new();

	ck_assert_int_eq(pg_jobs_write(n->c, n->name, jobs, count, on_answer, a), 0);
	return wait_ok(a, "write");
}

static struct answer *take(struct node *n, bool mine_too, int64_t lease_ms)
{
	struct answer *a = answer_new();

	ck_assert_int_eq(pg_jobs_take_expired(n->c, n->name, mine_too, MAX_ROWS, lease_ms,
					      on_answer, a),
			 0);
	return wait_ok(a, "take");
}

/*
 * Renews, as node epoch `epoch`, the leases of the jobs `held` answered (NULL: none). The
 * heartbeat's row (id 0) is taken out of the answer: beat says whether it was there.
 */
static struct answer *renew_as(struct node *n, int64_t epoch, const struct answer *held,
			       bool *beat)
{
	struct answer *a = answer_new();
	int64_t ids[MAX_ROWS];
	size_t k = 0;
	int kept = 0;

	for (int i = 0; held && i < held->n; i++)
		ids[k++] = held->job[i].id;
	ck_assert_int_eq(pg_jobs_renew(n->c, n->name, epoch, ids, k, 60000, on_answer, a), 0);
	wait_ok(a, "renew");
	*beat = false;
	for (int i = 0; i < a->n; i++) {
		if (a->id[i] == 0) {
			*beat = true;
			ck_assert_int_eq(a->epoch[i], epoch);
			continue;
		}
		a->id[kept] = a->id[i];
		a->epoch[kept++] = a->epoch[i];
	}
	a->n = kept;
	return a;
}

/* The same as node epoch 1, which must still be the node's. */
static struct answer *renew(struct node *n, const struct answer *held)
{
	bool beat;
	struct answer *a = renew_as(n, 1, held, &beat);

	ck_assert_msg(beat, "node %s: no heartbeat row", n->name);
	return a;
}



static void setup(void)
{
	char *err = NULL;

	pg_test_db(conninfo, sizeof(conninfo));
	db = pg_test_connect(conninfo);
	ck_assert_int_eq(store_pg_schema(db, &err), 0);
	/* The nodes the tests use, joined at epoch 1 (a renewal carries the heartbeat). */
	pg_test_ok(db, "INSERT INTO bulkhead.nodes VALUES ('a', now(), now(), 1, 0), "
		       "('b', now(), now(), 1, 1)");
	ck_assert_int_ge(sd_event_new(&loop), 0);
}

static void teardown(void)
{
	PQfinish(db);
	loop = sd_event_unref(loop);
}


/*
 * Three nodes claim from one queue at once, each with several claims in flight: every job is
 * claimed exactly once, by the node the table names as its owner, at epoch 1.
 */
START_TEST(test_claims_never_overlap)
{
	enum { JOBS = 3000, NODES = 3, BATCH = 64 };
	static const char *names[NODES] = { "a", "b", "c" };
	struct node nodes[NODES];
	static int owner[JOBS + 1];
	int claimed = 0;

	for (int i = 0; i < NODES; i++)
		node_start(&nodes[i], names[i]);
	answer_free(add(&nodes[0], "p", 1, JOBS, NULL));
	memset(owner, 0, sizeof(owner));
	while (claimed < JOBS) {
		struct answer *a[NODES][2];
		int got = 0;

		for (int i = 0; i < NODES; i++)
			for (int k = 0; k < 2; k++) {
				a[i][k] = answer_new();
				ck_assert_int_eq(pg_jobs_claim(nodes[i].c, "p", false, names[i],
							       BATCH, 60000, on_answer, a[i][k]),
						 0);
			}
		for (int i = 0; i < NODES; i++)
			for (int k = 0; k < 2; k++) {
				wait_ok(a[i][k], "claim");
				for (int r = 0; r < a[i][k]->n; r++) {
					const struct pg_job *j = &a[i][k]->job[r];

					ck_assert_int_ge(j->id, 1);
					ck_assert_int_le(j->id, JOBS);
					ck_assert_msg(owner[j->id] == 0, "job %" PRId64 " claimed twice",
						      j->id);
					owner[j->id] = i + 1;
					ck_assert_int_eq(j->state, JOB_RUNNING);
					ck_assert_int_eq(j->lease_epoch, 1);
				}
				got += a[i][k]->n;
				answer_free(a[i][k]);
			}
		ck_assert_msg(got > 0, "claims found nothing with %d jobs unclaimed", JOBS - claimed);
		claimed += got;
	}
	ck_assert_int_eq(claimed, JOBS);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE state = 0"), 0);
	for (int i = 0; i < NODES; i++) {
		int held = 0;

		for (int id = 1; id <= JOBS; id++)
			held += owner[id] == i + 1;
		ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE lease_owner = '%s'",
				   names[i]),
				 held);
		pg_conn_free(nodes[i].c);
	}
}
END_TEST

/* A claimed job, ended: what the write says, and its lease given up. */
static struct pg_job ended(const struct pg_job *claimed, int state)
{
	struct pg_job j = *claimed;

	j.state = state;
	j.runs++;
	j.started_ms = 5;
	j.ended_ms = 9;
	return j;
}

/*
 * Writes are fenced: the owner at the lease's epoch writes; the same with a stale epoch, or
 * another node, writes nothing and changes nothing; a job that ended cannot be written again.
 */
START_TEST(test_writes_are_fenced)
{
	struct node a, b;
	struct answer *c, *w;
	struct pg_job jobs[4];

	node_start(&a, "a");
	node_start(&b, "b");
	answer_free(add(&a, "p", 1, 4, NULL));
	c = claim(&a, "p", 4, 60000);
	ck_assert_int_eq(c->n, 4);
	for (int i = 0; i < 4; i++)
		jobs[i] = ended(&c->job[i], JOB_DONE);

	/* Another node, at the right epoch: nothing. */
	w = write_jobs(&b, jobs, 4);
	ck_assert_int_eq(w->n, 0);
	answer_free(w);
	/* The owner at a stale epoch (and one ahead): nothing. */
	jobs[0].lease_epoch = 0;
	jobs[1].lease_epoch = 2;
	w = write_jobs(&a, jobs, 2);
	ck_assert_int_eq(w->n, 0);
	answer_free(w);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE state = 1 AND runs = 0"), 4);

	/* The owner at its epoch: written, one statement for a mix of fenced and not. */
	w = write_jobs(&a, jobs, 4);
	ck_assert_int_eq(w->n, 2);
	ck_assert_int_eq(w->id[0], c->job[2].id);
	ck_assert_int_eq(w->id[1], c->job[3].id);
	answer_free(w);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE state = %d AND runs = 1 AND "
			   "node = 'a' AND lease_owner IS NULL AND lease_expires IS NULL",
			   JOB_DONE),
			 2);
	/* The same write again (its answer lost with a connection) is answered as written;
	 * another end for the jobs that ended writes nothing. */
	w = write_jobs(&a, jobs + 2, 2);
	ck_assert_int_eq(w->n, 2);
	answer_free(w);
	jobs[2].state = JOB_FAILED;
	jobs[3].runs++;
	w = write_jobs(&a, jobs + 2, 2);
	ck_assert_int_eq(w->n, 0);
	answer_free(w);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE state = %d AND runs = 1",
			   JOB_DONE),
			 2);
	answer_free(c);
	pg_conn_free(a.c);
	pg_conn_free(b.c);
}
END_TEST

/*
 * A node cut off: its leases expire and another node takes its jobs (a new epoch, counters
 * untouched: what a host's death does to them is the taker's ledger's). The cut-off node's
 * renewal shows it lost them, and its writes after the heal match nothing. The taker puts
 * them back in the queue as bystanders; the first node, woken by the NOTIFY, claims them
 * again at the next epoch.
 */
START_TEST(test_expired_leases_are_taken_over)
{
	struct node a, b;
	struct answer *c, *t, *w, *r, *l;
	struct pg_job jobs[8];

	node_start(&a, "a");
	node_start(&b, "b");
	answer_free(add(&b, "p", 1, 8, NULL));
	l = answer_new();
	ck_assert_int_eq(pg_conn_exec(a.c, "LISTEN " PG_JOBS_CHANNEL, on_answer, l), 0);
	run_until(&l->done, "LISTEN");
	answer_free(l);
	/* A lease already over when it is taken: a's host is as good as dead. */
	c = claim(&a, "p", 8, -1000);
	ck_assert_int_eq(c->n, 8);
	/* b's renewal of a's jobs renews nothing: they are not b's. */
	r = renew(&b, c);
	ck_assert_int_eq(r->n, 0);
	answer_free(r);

	t = take(&b, false, 60000);
	ck_assert_int_eq(t->n, 8);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(t->job[i].state, JOB_RUNNING);
		ck_assert_int_eq(t->job[i].lease_epoch, 2);
		ck_assert_int_eq(t->job[i].attempts, 0);
		ck_assert_int_eq(t->job[i].host_deaths, 0);
	}
	/* Taken once: nothing is left to take. */
	w = take(&a, false, 60000);
	ck_assert_int_eq(w->n, 0);
	answer_free(w);

	/* a heals: its renewal renews nothing (b holds them), its writes match 0. */
	r = renew(&a, c);
	ck_assert_int_eq(r->n, 0);
	answer_free(r);
	for (int i = 0; i < 8; i++)
		jobs[i] = ended(&c->job[i], JOB_DONE);
	w = write_jobs(&a, jobs, 8);
	ck_assert_int_eq(w->n, 0);
	answer_free(w);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE state = 1 AND "
			   "lease_owner = 'b' AND lease_epoch = 2"),
			 8);

	/* b's ledger re-queues them as bystanders of a host death. */
	a.notes = 0;
	for (int i = 0; i < 8; i++) {
		jobs[i] = t->job[i];
		jobs[i].state = JOB_QUEUED;
		jobs[i].host_deaths = 1;
	}
	w = write_jobs(&b, jobs, 8);
	ck_assert_int_eq(w->n, 8);
	answer_free(w);
	wait_for(&a.notes, "NOTIFY");
	ck_assert_str_eq(a.note, "p");
	answer_free(c);
	c = claim(&a, "p", 8, 60000);
	ck_assert_int_eq(c->n, 8);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(c->job[i].lease_epoch, 3);
		ck_assert_int_eq(c->job[i].host_deaths, 1);
		ck_assert_int_eq(c->job[i].attempts, 0);
	}
	r = renew(&a, c);
	ck_assert_int_eq(r->n, 8);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(r->epoch[i], 3);
	answer_free(r);
	answer_free(t);
	answer_free(c);
	pg_conn_free(a.c);
	pg_conn_free(b.c);
}
END_TEST

/*
 * A node that starts again under its name takes what its dead incarnation held, leases
 * unexpired or not, and only that; the jobs of other nodes stay theirs.
 */
START_TEST(test_restart_takes_its_own)
{
	struct node a, b, a2;
	struct answer *c, *t;

	node_start(&a, "a");
	node_start(&b, "b");
	answer_free(add(&a, "p", 1, 6, NULL));
	answer_free(claim(&a, "p", 3, 60000));
	answer_free(claim(&b, "p", 3, 60000));
	pg_conn_free(a.c); /* a dies */
	pg_test_ok(db, "UPDATE bulkhead.nodes SET epoch = 2 WHERE name = 'a'"); /* a2 joins */
	node_start(&a2, "a");
	t = take(&a2, false, 60000);
	ck_assert_int_eq(t->n, 0); /* nothing expired */
	answer_free(t);
	t = take(&a2, true, 60000);
	ck_assert_int_eq(t->n, 3);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(t->job[i].lease_epoch, 2);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE lease_owner = 'b' AND "
			   "lease_epoch = 1"),
			 3);
	c = claim(&a2, "p", 10, 60000);
	ck_assert_int_eq(c->n, 0);
	answer_free(c);
	/* The old life's renewal, at epoch 1: no heartbeat row, nothing renewed. */
	{
		bool beat = true;
		struct answer *held = answer_new(), *r;

		held->n = 3;
		for (int i = 0; i < 3; i++)
			held->job[i].id = t->job[i].id;
		r = renew_as(&a2, 1, held, &beat);
		ck_assert(!beat);
		ck_assert_int_eq(r->n, 0);
		answer_free(r);
		r = renew_as(&a2, 2, held, &beat);
		ck_assert(beat);
		ck_assert_int_eq(r->n, 3);
		answer_free(r);
		held->n = 0;
		answer_free(held);
	}
	answer_free(t);
	pg_conn_free(b.c);
	pg_conn_free(a2.c);
}
END_TEST

/* Inputs and results with what array literals must escape come back as they went. */
START_TEST(test_values_survive)
{
	static const char *const inputs[] = { "plain", "a,b", "{braces}", "quote\"d",
					      "back\\slash", "", NULL, "ünïcode 𝄞", "NULL",
					      "  spaced  " };
	enum { N = sizeof(inputs) / sizeof(inputs[0]) };
	struct node a;
	struct answer *c, *w;
	struct pg_job jobs[N];

	node_start(&a, "a");
	answer_free(add(&a, "p", 7, N, inputs));
	c = claim(&a, "p", N, 60000);
	ck_assert_int_eq(c->n, N);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(c->job[i].instance, i + 1);
		ck_assert_int_eq(c->job[i].grp, 7);
		if (!inputs[i])
			ck_assert_ptr_null(c->job[i].input);
		else
			ck_assert_str_eq(c->job[i].input, inputs[i]);
		jobs[i] = ended(&c->job[i], JOB_FAILED);
		jobs[i].result = inputs[N - 1 - i];
		jobs[i].cause_detail = -7;
		jobs[i].attempts = 255;
	}
	w = write_jobs(&a, jobs, N);
	ck_assert_int_eq(w->n, N);
	answer_free(w);
	for (int i = 0; i < N; i++) {
		char sql[256];
		PGresult *res;

		snprintf(sql, sizeof(sql),
			 "SELECT result, cause_detail, attempts FROM bulkhead.jobs WHERE id = %" PRId64,
			 c->job[i].id);
		res = PQexec(db, sql);
		ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
		if (!jobs[i].result)
			ck_assert(PQgetisnull(res, 0, 0));
		else
			ck_assert_str_eq(PQgetvalue(res, 0, 0), jobs[i].result);
		ck_assert_str_eq(PQgetvalue(res, 0, 1), "-7");
		ck_assert_str_eq(PQgetvalue(res, 0, 2), "255");
		PQclear(res);
	}
	answer_free(c);
	pg_conn_free(a.c);
}
END_TEST

/* An add sent again (its answer lost with the connection) adds nothing twice; the first
 * send of ids already there is an error, not a silent skip. */
START_TEST(test_add_again)
{
	struct node a;
	struct answer *x;

	node_start(&a, "a");
	x = answer_new();
	ck_assert_int_eq(pg_jobs_add(a.c, "p", 1, 10, 1, 5, NULL, 1000, false, on_answer, x), 0);
	wait_ok(x, "add");
	ck_assert_int_eq(x->id[0], 5); /* the count added */
	answer_free(x);
	x = answer_new();
	ck_assert_int_eq(pg_jobs_add(a.c, "p", 1, 12, 3, 5, NULL, 1000, true, on_answer, x), 0);
	wait_ok(x, "add again");
	ck_assert_int_eq(x->id[0], 2); /* 15 and 16: 12 to 14 were there */
	answer_free(x);
	x = answer_new();
	ck_assert_int_eq(pg_jobs_add(a.c, "p", 1, 10, 1, 1, NULL, 1000, false, on_answer, x), 0);
	run_until(&x->done, "a duplicate add");
	ck_assert_msg(!x->ok && strstr(x->error, "duplicate key"), "%s", x->error);
	answer_free(x);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs"), 7);
	ck_assert_int_eq(q("SELECT max(instance) FROM bulkhead.jobs"), 7);
	pg_conn_free(a.c);
}
END_TEST

/* What a queue (pg-queue.h) in this process told. */
struct told {
	int joined, claimed, damaged, orphans;
	int64_t damaged_id;
};

static void t_joined(void *u, const struct pg_node_info *info)
{
	((struct told *)u)->joined++;
}

static void t_claimed(void *u, const struct pg_job *jobs, size_t n)
{
	((struct told *)u)->claimed += (int)n;
}

static void t_damaged(void *u, int64_t id)
{
	((struct told *)u)->damaged++;
	((struct told *)u)->damaged_id = id;
}

static void t_down(void *u, const char *why)
{
}

static void t_orphans(void *u, const struct pg_job *jobs, size_t n)
{
	((struct told *)u)->orphans += (int)n;
}

static void t_lost(void *u, const int64_t *ids, size_t n)
{
}

static void t_flushed(void *u, uint64_t serial, int r, const char *why)
{
}

static const struct pg_queue_ops queue_ops = {
	.joined = t_joined, .down = t_down, .superseded = t_down, .claimed = t_claimed,
	.orphans = t_orphans, .lost = t_lost, .flushed = t_flushed, .damaged = t_damaged,
};

/* A claimed row with a value out of its range is said, by id, and not handed out. */
START_TEST(test_damaged_row_said)
{
	struct pg_queue_config cfg = { .conninfo = conninfo, .node = "c" };
	struct told told = { 0 };
	struct pg_queue *pq;
	char *err = NULL;

	pg_test_ok(db, "INSERT INTO bulkhead.jobs (id, grp, pool_name, instance, state, cause, "
		       "cause_detail, alone, attempts, reruns, runs, flags, host_deaths, "
		       "accepted_at, started_ms, ended_ms) VALUES "
		       "(1, 1, 'p', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), "
		       "(2, 1, 'p', 2, 0, 0, 0, 0, 300, 0, 0, 0, 0, 0, 0, 0)");
	ck_assert_int_eq(pg_queue_new(loop, &cfg, &queue_ops, &told, &pq, &err), 0);
	ck_assert_int_eq(pg_queue_want(pq, "p", false, 10), 0);
	wait_for(&told.damaged, "the damaged row said");
	wait_for(&told.claimed, "the good row claimed");
	ck_assert_int_eq(told.claimed, 1);
	ck_assert_int_eq(told.damaged_id, 2);
	ck_assert(pg_queue_holds(pq, 1));
	ck_assert(!pg_queue_holds(pq, 2));
	pg_queue_free(pq);
}
END_TEST

/*
 * A node that starts again takes everything its last life held, more than one take's batch,
 * at once: not only the first batch, the rest waiting for leases that would not expire soon.
 */
START_TEST(test_restart_takes_all_its_own)
{
	struct pg_queue_config cfg = { .conninfo = conninfo, .node = "a" };
	struct told told = { 0 };
	struct pg_queue *pq;
	char *err = NULL;

	pg_test_ok(db, "INSERT INTO bulkhead.jobs (id, grp, pool_name, instance, state, cause, "
		       "cause_detail, alone, attempts, reruns, runs, flags, host_deaths, "
		       "accepted_at, started_ms, ended_ms, lease_owner, lease_epoch, lease_expires) "
		       "SELECT i, 1, 'p', i, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 'a', 1, "
		       "now() + interval '1 hour' FROM generate_series(1, 600) AS i");
	ck_assert_int_eq(pg_queue_new(loop, &cfg, &queue_ops, &told, &pq, &err), 0);
	{
		int64_t deadline = now_ms() + DEADLINE_MS;

		while (told.orphans < 600) {
			ck_assert_msg(now_ms() < deadline, "%d of its last life's 600 jobs taken",
				      told.orphans);
			ck_assert_int_ge(sd_event_run(loop, 100 * 1000), 0);
		}
	}
	ck_assert_int_eq(told.orphans, 600);
	ck_assert_int_eq(pg_queue_n_held(pq), 600);
	pg_queue_free(pq);
}
END_TEST

static Suite *pg_jobs_suite(void)
{
	Suite *s = suite_create("pg-jobs");
	TCase *tc = tcase_create("queue");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_claims_never_overlap);
	tcase_add_test(tc, test_writes_are_fenced);
	tcase_add_test(tc, test_expired_leases_are_taken_over);
	tcase_add_test(tc, test_restart_takes_its_own);
	tcase_add_test(tc, test_values_survive);
	tcase_add_test(tc, test_add_again);
	tcase_add_test(tc, test_damaged_row_said);
	tcase_add_test(tc, test_restart_takes_all_its_own);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(pg_jobs_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
