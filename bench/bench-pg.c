/* SPDX-License-Identifier: MIT */
/*
 * bench-pg: the shared queue (daemon/pg-queue.c, issue 14) against a raw libpq program doing
 * the same work, on a PostgreSQL that bench/bench_pg.py starts (tests/pg/with-postgres:
 * PGHOST etc. in the environment). Each run makes a database of its own, prints one JSON
 * object, and drops the database.
 *
 *   bench-pg claim-end raw|queue CONSUMERS JOBS  claim (100 a statement) + fenced end, each
 *                                                consumer a process: jobs/s, CPU per job
 *   bench-pg submit raw|queue JOBS BATCH         adds of BATCH jobs, one after the other
 *   bench-pg latency raw|queue SAMPLES           one job added at a time (with its NOTIFY)
 *                                                to its claim by an idle consumer: p50, p99
 *   bench-pg requeue JOBS                        a node holding JOBS is SIGKILLed: to the
 *                                                moment another node has taken them all
 *
 * raw is what a careful hand-written program does: blocking libpq, prepared statements, the
 * claim as one UPDATE ... FOR UPDATE SKIP LOCKED ... RETURNING, the ends as one fenced
 * UPDATE from arrays.
 * queue is bulkhead's: pg_queue on an sd-event loop, the statements of daemon/pg-jobs.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/job-state.h"
#include "daemon/pg-queue.h"
#include "daemon/store-pg.h"

#include "bench/bench-pg.h"

#define BATCH 100

/* ---- raw consumers ---- */

/* Prepares sql as name on c: a careful program parses each statement once, as pg_conn does. */
static void prepare(PGconn *c, const char *name, const char *sql, int n)
{
	PGresult *res = PQprepare(c, name, sql, n, NULL);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		die(name, c);
	PQclear(res);
}

static const char raw_claim[] =
	"UPDATE bulkhead.jobs AS j SET state = 1, lease_owner = $1, lease_epoch = j.lease_epoch + 1,"
	" lease_expires = now() + interval '5 seconds' FROM (SELECT id AS cid FROM bulkhead.jobs"
	" WHERE pool_name = 'p' AND alone = 0 AND state = 0 ORDER BY id LIMIT 100"
	" FOR UPDATE SKIP LOCKED) AS c WHERE j.id = c.cid RETURNING j.id, j.lease_epoch";
/* The same, with each job's input (the latency run's submit time). */
static const char raw_claim_input[] =
	"UPDATE bulkhead.jobs AS j SET state = 1, lease_owner = $1, lease_epoch = j.lease_epoch + 1,"
	" lease_expires = now() + interval '5 seconds' FROM (SELECT id AS cid FROM bulkhead.jobs"
	" WHERE pool_name = 'p' AND alone = 0 AND state = 0 ORDER BY id LIMIT 100"
	" FOR UPDATE SKIP LOCKED) AS c WHERE j.id = c.cid RETURNING j.id, j.lease_epoch, j.input";
static const char raw_end[] =
	"UPDATE bulkhead.jobs AS j SET state = 2, runs = j.runs + 1, lease_owner = NULL,"
	" lease_expires = NULL FROM unnest($2::bigint[], $3::bigint[]) AS v(id, epoch)"
	" WHERE j.id = v.id AND j.lease_epoch = v.epoch AND j.lease_owner = $1 AND j.state = 1";

/* Claims and ends until a claim finds nothing; returns the end of its last end (ns). */
static int64_t raw_consume(const char *name)
{
	PGconn *c = connect_db(conninfo);
	int64_t last = 0;
	char *ids = malloc(BATCH * 24 + 3), *epochs = malloc(BATCH * 24 + 3);

	prepare(c, "claim", raw_claim, 1);
	prepare(c, "end", raw_end, 3);

	for (;;) {
		const char *p1[] = { name };
		PGresult *res = PQexecPrepared(c, "claim", 1, p1, NULL, NULL, 0);
		int n = PQntuples(res);
		size_t a = 0, b = 0;

		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			die("claim", c);
		if (n == 0) {
			PQclear(res);
			break;
		}
		ids[a++] = '{';
		epochs[b++] = '{';
		for (int i = 0; i < n; i++) {
			a += (size_t)sprintf(ids + a, "%s%s", i ? "," : "", PQgetvalue(res, i, 0));
			b += (size_t)sprintf(epochs + b, "%s%s", i ? "," : "", PQgetvalue(res, i, 1));
		}
		strcpy(ids + a, "}");
		strcpy(epochs + b, "}");
		PQclear(res);
		{
			const char *p3[] = { name, ids, epochs };

			res = PQexecPrepared(c, "end", 3, p3, NULL, NULL, 0);
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
				die("end", c);
			PQclear(res);
		}
		last = now_ns();
	}
	free(ids);
	free(epochs);
	PQfinish(c);
	return last;
}

/* ---- queue consumers: pg_queue on a loop ---- */

struct qnode {
	sd_event *e;
	struct pg_queue *q;
	bool wrote;
	long done, want;
	int64_t last;          /* ns of the last flush committed */
	int64_t *lat;          /* latency: submit -> claimed, ns */
	long n_lat, max_lat;
	long orphans, orphans_want;
	int64_t orphans_at;    /* the flush that re-queued the last of them committed */
	bool hold; /* claims and keeps what it claims (a node about to die) */
};

static void qn_joined(void *u, const struct pg_node_info *info)
{
	struct qnode *n = u;

	if (n->want > 0)
		pg_queue_want(n->q, "p", false, (size_t)n->want);
}

static void qn_down(void *u, const char *why)
{
}

static void qn_superseded(void *u, const char *why)
{
}

static void qn_claimed(void *u, const struct pg_job *jobs, size_t count)
{
	struct qnode *n = u;
	int64_t now = now_ns();

	n->done += (long)count;
	if (n->hold)
		return;
	for (size_t i = 0; i < count; i++) {
		struct pg_job j = jobs[i];

		if (n->lat && n->n_lat < n->max_lat && j.input)
			n->lat[n->n_lat++] = now - strtoll(j.input, NULL, 10);
		j.pool = j.input = j.result = j.node = NULL;
		j.state = JOB_DONE;
		j.runs++;
		if (pg_queue_write(n->q, &j) == 0)
			n->wrote = true;
	}
	pg_queue_want(n->q, "p", false, (size_t)n->want);
}

static void qn_orphans(void *u, const struct pg_job *jobs, size_t count)
{
	struct qnode *n = u;

	for (size_t i = 0; i < count; i++) {
		struct pg_job j = jobs[i];

		j.pool = j.input = j.result = j.node = NULL;
		j.state = JOB_QUEUED;
		j.host_deaths++;
		if (pg_queue_write(n->q, &j) == 0)
			n->wrote = true;
	}
	n->orphans += (long)count;
}

static void qn_lost(void *u, const int64_t *ids, size_t count)
{
}

static void qn_flushed(void *u, uint64_t serial, int r, const char *why)
{
	struct qnode *n = u;

	if (r != 0)
		return;
	n->last = now_ns();
	if (n->orphans_want && n->orphans >= n->orphans_want && !n->orphans_at)
		n->orphans_at = n->last;
}

static const struct pg_queue_ops qn_ops = {
	.joined = qn_joined, .down = qn_down, .superseded = qn_superseded,
	.claimed = qn_claimed, .orphans = qn_orphans, .lost = qn_lost, .flushed = qn_flushed,
};

static int qn_post(sd_event_source *s, void *u)
{
	struct qnode *n = u;

	if (n->wrote) {
		n->wrote = false;
		pg_queue_flush(n->q);
	}
	return 0;
}

static int qn_term(sd_event_source *s, const struct signalfd_siginfo *si, void *u)
{
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void qn_start(struct qnode *n, const char *name, long want)
{
	struct pg_queue_config cfg = { .conninfo = conninfo, .node = name };
	char *err = NULL;
	sigset_t ss;

	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	n->want = want;
	if (sd_event_new(&n->e) < 0 || pg_queue_new(n->e, &cfg, &qn_ops, n, &n->q, &err) < 0 ||
	    sd_event_add_post(n->e, NULL, qn_post, n) < 0 ||
	    sd_event_add_signal(n->e, NULL, SIGTERM, qn_term, NULL) < 0)
		die("pg_queue", NULL);
}

static void qn_stop(struct qnode *n)
{
	pg_queue_free(n->q);
	sd_event_unref(n->e);
}

/* ---- claim-end ---- */

/* Each consumer writes the ns of its last end to the pipe when it is done or told to stop. */
static int cmd_claim_end(bool raw, int consumers, long jobs)
{
	int fds[2], go[2];
	pid_t pids[64];
	int64_t start, end = 0;
	double cpu0, srv0, cpu, srv;
	PGconn *c;

	make_db();
	c = connect_db(conninfo);
	add_jobs(c, jobs);
	if (pipe(fds) < 0 || pipe(go) < 0)
		die("pipe", NULL);
	cpu0 = children_cpu();
	srv0 = server_cpu();
	for (int i = 0; i < consumers; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			char name[16], b;
			int64_t last;

			snprintf(name, sizeof(name), "c%d", i);
			close(go[1]);
			if (raw) {
				if (read(go[0], &b, 1) < 0)
					_exit(1);
				last = raw_consume(name);
			} else {
				struct qnode n = { 0 };

				qn_start(&n, name, BATCH);
				if (read(go[0], &b, 1) < 0)
					_exit(1);
				sd_event_loop(n.e);
				last = n.last;
				qn_stop(&n);
			}
			if (write(fds[1], &last, sizeof(last)) != sizeof(last))
				_exit(1);
			_exit(0);
		}
	}
	close(go[0]);
	start = now_ns();
	close(go[1]); /* every consumer reads EOF: go */
	/* Done when every job has ended (queue consumers do not stop by themselves). */
	while (value(c, "SELECT count(*) FROM bulkhead.jobs WHERE state = 2") < jobs) {
		struct timespec ts = { .tv_nsec = 2 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	for (int i = 0; i < consumers; i++) {
		int64_t last = 0;

		if (!raw)
			kill(pids[i], SIGTERM);
		if (read(fds[0], &last, sizeof(last)) == sizeof(last) && last > end)
			end = last;
	}
	for (int i = 0; i < consumers; i++)
		waitpid(pids[i], NULL, 0);
	cpu = children_cpu() - cpu0;
	srv = server_cpu() - srv0;
	PQfinish(c);
	drop_db();
	printf("{\"jobs\":%ld,\"seconds\":%.6f,\"jobs_per_s\":%.1f,\"client_cpu_s\":%.4f,"
	       "\"server_cpu_s\":%.4f}\n",
	       jobs, (end - start) / 1e9, jobs / ((end - start) / 1e9), cpu, srv);
	return 0;
}

/* ---- submit ---- */

static int cmd_submit(bool raw, long jobs, long batch)
{
	int64_t start, end;
	PGconn *c;

	make_db();
	c = connect_db(conninfo);
	start = now_ns();
	if (raw) {
		prepare(c, "add",
			"WITH ins AS (INSERT INTO bulkhead.jobs (id, grp, pool_name, instance, state, "
			"cause, cause_detail, alone, attempts, reruns, runs, flags, host_deaths, "
			"accepted_at, started_ms, ended_ms) SELECT i, 1, 'p', i, 0, 0, 0, 0, 0, 0, 0, "
			"0, 0, 0, 0, 0 FROM generate_series($1::bigint, $2::bigint) AS i RETURNING id) "
			"SELECT count(*) FROM ins, (SELECT pg_notify('bulkhead_jobs', 'p')) AS n",
			2);
		start = now_ns();
		for (long first = 1; first <= jobs; first += batch) {
			char a[24], b[24];
			const char *p2[] = { a, b };
			PGresult *res;

			snprintf(a, sizeof(a), "%ld", first);
			snprintf(b, sizeof(b), "%ld", first + batch - 1);
			res = PQexecPrepared(c, "add", 2, p2, NULL, NULL, 0);
			if (PQresultStatus(res) != PGRES_TUPLES_OK)
				die("add", c);
			PQclear(res);
		}
		end = now_ns();
	} else {
		struct qnode n = { 0 };
		long first = 1;

		qn_start(&n, "s", 0);
		while (!pg_queue_is_joined(n.q))
			sd_event_run(n.e, UINT64_MAX);
		start = now_ns();
		while (first <= jobs) {
			uint64_t serial;

			pg_queue_add(n.q, "p", 1, first, (int32_t)first, (size_t)batch, NULL, 0);
			first += batch;
			serial = pg_queue_flush(n.q);
			while (pg_queue_committed(n.q) < serial)
				sd_event_run(n.e, UINT64_MAX);
		}
		end = now_ns();
		qn_stop(&n);
	}
	if (value(c, "SELECT count(*) FROM bulkhead.jobs") != jobs)
		die("submit: not every job is there", c);
	PQfinish(c);
	drop_db();
	printf("{\"jobs\":%ld,\"batch\":%ld,\"seconds\":%.6f,\"jobs_per_s\":%.1f}\n", jobs, batch,
	       (end - start) / 1e9, jobs / ((end - start) / 1e9));
	return 0;
}

/* ---- latency ---- */

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* A raw consumer: LISTEN, and on each NOTIFY claim (and end) what is there. */
static void raw_listen(long samples, int out)
{
	PGconn *c = connect_db(conninfo);
	int64_t *lat = calloc((size_t)samples, sizeof(*lat));
	long n = 0;

	prepare(c, "claim_input", raw_claim_input, 1);
	prepare(c, "end", raw_end, 3);
	exec_ok(c, "LISTEN bulkhead_jobs");
	if (write(out, "r", 1) != 1)
		_exit(1);
	while (n < samples) {
		fd_set rd;
		PGnotify *note;
		bool woke = false;

		FD_ZERO(&rd);
		FD_SET(PQsocket(c), &rd);
		if (select(PQsocket(c) + 1, &rd, NULL, NULL, NULL) < 0)
			continue;
		PQconsumeInput(c);
		while ((note = PQnotifies(c))) {
			woke = true;
			PQfreemem(note);
		}
		if (!woke)
			continue;
		/* The same work as the queue: claim with a lease, then the fenced end. */
		for (;;) {
			const char *p1[] = { "l" };
			PGresult *res = PQexecPrepared(c, "claim_input", 1, p1, NULL, NULL, 0);
			int64_t now = now_ns();
			int rows = PQntuples(res);
			char ids[4096], epochs[4096];
			size_t a = 0, b = 0;

			if (PQresultStatus(res) != PGRES_TUPLES_OK)
				die("claim", c);
			ids[a++] = '{';
			epochs[b++] = '{';
			for (int i = 0; i < rows && i < 100; i++) {
				if (n < samples)
					lat[n++] = now - strtoll(PQgetvalue(res, i, 2), NULL, 10);
				a += (size_t)snprintf(ids + a, sizeof(ids) - a, "%s%s", i ? "," : "",
						      PQgetvalue(res, i, 0));
				b += (size_t)snprintf(epochs + b, sizeof(epochs) - b, "%s%s",
						      i ? "," : "", PQgetvalue(res, i, 1));
			}
			snprintf(ids + a, sizeof(ids) - a, "}");
			snprintf(epochs + b, sizeof(epochs) - b, "}");
			PQclear(res);
			if (rows == 0)
				break;
			{
				const char *p3[] = { "l", ids, epochs };

				res = PQexecPrepared(c, "end", 3, p3, NULL, NULL, 0);
				if (PQresultStatus(res) != PGRES_COMMAND_OK)
					die("end", c);
				PQclear(res);
			}
		}
	}
	if (write(out, lat, (size_t)samples * sizeof(*lat)) < 0)
		_exit(1);
	_exit(0);
}

static void queue_listen(long samples, int out)
{
	struct qnode n = { .max_lat = samples };

	n.lat = calloc((size_t)samples, sizeof(*n.lat));
	qn_start(&n, "l", 1000);
	while (!pg_queue_is_joined(n.q))
		sd_event_run(n.e, UINT64_MAX);
	/* Its LISTEN and first claim are answered once a claim has come back empty. */
	for (int i = 0; i < 50; i++)
		sd_event_run(n.e, 10 * 1000);
	if (write(out, "r", 1) != 1)
		_exit(1);
	while (n.n_lat < samples)
		sd_event_run(n.e, UINT64_MAX);
	if (write(out, n.lat, (size_t)samples * sizeof(*n.lat)) < 0)
		_exit(1);
	qn_stop(&n);
	_exit(0);
}

static int cmd_latency(bool raw, long samples)
{
	int fds[2];
	pid_t pid;
	char r;
	int64_t *lat = calloc((size_t)samples, sizeof(*lat));
	size_t got = 0;
	PGconn *c;

	make_db();
	if (pipe(fds) < 0)
		die("pipe", NULL);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		if (raw)
			raw_listen(samples, fds[1]);
		queue_listen(samples, fds[1]);
	}
	close(fds[1]);
	if (read(fds[0], &r, 1) != 1)
		die("consumer", NULL);
	c = connect_db(conninfo);
	for (long i = 1; i <= samples; i++) {
		char sql[640];
		struct timespec ts = { .tv_nsec = 2 * 1000 * 1000 }; /* pacing, not a wait */

		snprintf(sql, sizeof(sql),
			 "WITH ins AS (INSERT INTO bulkhead.jobs (id, grp, pool_name, instance, state, "
			 "cause, cause_detail, alone, attempts, reruns, runs, flags, host_deaths, "
			 "input, accepted_at, started_ms, ended_ms) VALUES (%ld, 1, 'p', 1, 0, 0, 0, "
			 "0, 0, 0, 0, 0, 0, '%" PRId64 "', 0, 0, 0) RETURNING id) SELECT id FROM ins, "
			 "(SELECT pg_notify('bulkhead_jobs', 'p')) AS n",
			 i, now_ns());
		exec_ok(c, sql);
		nanosleep(&ts, NULL);
	}
	while (got < (size_t)samples * sizeof(*lat)) {
		ssize_t n = read(fds[0], (char *)lat + got, (size_t)samples * sizeof(*lat) - got);

		if (n <= 0)
			die("consumer's latencies", NULL);
		got += (size_t)n;
	}
	waitpid(pid, NULL, 0);
	PQfinish(c);
	drop_db();
	qsort(lat, (size_t)samples, sizeof(*lat), cmp64);
	printf("{\"samples\":%ld,\"p50_us\":%.1f,\"p99_us\":%.1f}\n", samples,
	       lat[samples / 2] / 1e3, lat[(samples * 99) / 100] / 1e3);
	free(lat);
	return 0;
}

/* ---- requeue after a node's death ---- */

static int cmd_requeue(long jobs)
{
	int fds[2];
	pid_t victim;
	int64_t killed;
	PGconn *c;
	struct qnode n = { .orphans_want = jobs };

	make_db();
	c = connect_db(conninfo);
	add_jobs(c, jobs);
	if (pipe(fds) < 0)
		die("pipe", NULL);
	victim = fork();
	if (victim == 0) { /* claims everything, renews, and sits on it */
		struct qnode v = { .hold = true };

		qn_start(&v, "victim", jobs);
		for (;;)
			sd_event_run(v.e, UINT64_MAX);
	}
	{
		char sql[128];

		snprintf(sql, sizeof(sql), "SELECT count(*) FROM bulkhead.jobs WHERE lease_owner = "
					   "'victim'");
		while (value(c, sql) < jobs) {
			struct timespec ts = { .tv_nsec = 1000 * 1000 };

			nanosleep(&ts, NULL);
		}
	}
	qn_start(&n, "survivor", 0);
	while (!pg_queue_is_joined(n.q))
		sd_event_run(n.e, UINT64_MAX);
	kill(victim, SIGKILL);
	killed = now_ns();
	waitpid(victim, NULL, 0);
	while (!n.orphans_at)
		sd_event_run(n.e, UINT64_MAX);
	qn_stop(&n);
	PQfinish(c);
	drop_db();
	printf("{\"jobs\":%ld,\"lease_ms\":%d,\"renew_ms\":%d,\"seconds\":%.3f}\n", jobs,
	       PG_QUEUE_LEASE_MS, PG_QUEUE_LEASE_MS / 3, (n.orphans_at - killed) / 1e9);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "claim-end") == 0)
		return cmd_claim_end(strcmp(argv[2], "raw") == 0, atoi(argv[3]), atol(argv[4]));
	if (argc == 5 && strcmp(argv[1], "submit") == 0)
		return cmd_submit(strcmp(argv[2], "raw") == 0, atol(argv[3]), atol(argv[4]));
	if (argc == 4 && strcmp(argv[1], "latency") == 0)
		return cmd_latency(strcmp(argv[2], "raw") == 0, atol(argv[3]));
	if (argc == 3 && strcmp(argv[1], "requeue") == 0)
		return cmd_requeue(atol(argv[2]));
	fprintf(stderr, "usage: bench-pg claim-end|submit|latency|requeue ... (see the source)\n");
	return 2;
}
