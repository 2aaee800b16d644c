/* SPDX-License-Identifier: MIT */
/*
 * Nodes sharing one PostgreSQL (daemon/pg-queue.c), each a process of its own, against a real
 * server (tests/pg/with-postgres), with the real faults: a node SIGKILLed whole, a node
 * stopped (SIGSTOP: cut off, it cannot renew) past its lease and then let go on, and the
 * server itself stopped and started under them.
 *
 * Node n2 joins as a master does, waiting, before its queue is made; the others let the
 * queue join. Each node runs what it claims for a few milliseconds and writes it DONE (a few poison
 * jobs crash every time: an attempt each, quarantined at the third), and puts back what it
 * takes over from a dead node as a bystander (host_deaths + 1, no attempt), which is what
 * the master's ledger does (ledger_recover(), blame()). A trigger on the table records every
 * move of a job into a final state, with the writer and the epoch, and every change of a job
 * that had ended: every job must move there exactly once, at the epoch of its last claim,
 * and never change after (no stale write), attempts untouched.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/job-state.h"
#include "daemon/pg-queue.h"
#include "daemon/store-pg.h"
#include "tests/pg/pg-testdb.h"

#define DEADLINE_MS 90000
#define NODES 3
#define CAPACITY 16
#define RUN_MS 3 /* how long a job runs, by default */
/* Jobs whose instance is 7 modulo this crash on every run: quarantined at MAX_ATTEMPTS. */
#define POISON_EVERY 500
#define MAX_ATTEMPTS 3

static char conninfo[128];
static char dir[64];
static PGconn *db;

/* ---- a node: a child process with its own loop ---- */

struct running {
	struct pg_job job;
	sd_event_source *timer;
	struct node *n;
};

struct node {
	sd_event *e;
	struct pg_queue *q;
	const char *name;
	int64_t add; /* jobs to add once joined (0: none) */
	uint64_t run_ms;
	struct running run[CAPACITY];
	size_t n_running;
	uint64_t claimed, orphans, lost, done, flushes;
	uint64_t lost_at; /* CLOCK_REALTIME µs of the first loss (0: none) */
	bool wrote;
	sd_event_source *post;
};

static void node_want(struct node *n)
{
	pg_queue_want(n->q, "p", false, CAPACITY - n->n_running);
}

static void node_write(struct node *n, const struct pg_job *j)
{
	if (pg_queue_write(n->q, j) == 0)
		n->wrote = true;
}

static void remove_running(struct node *n, size_t i)
{
	sd_event_source_disable_unref(n->run[i].timer);
	n->run[i] = n->run[--n->n_running]; /* its timer still points at the old slot: repoint() */
}

static int on_done(sd_event_source *s, uint64_t usec, void *userdata);

/* Timers point at their slot: after a removal moved a slot, its timer is re-armed there. */
static void repoint(struct node *n)
{
	for (size_t i = 0; i < n->n_running; i++)
		sd_event_source_set_userdata(n->run[i].timer, &n->run[i]);
}

static int on_done(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct running *r = userdata;
	struct node *n = r->n;
	struct pg_job j = r->job;
	char result[64];

	/* Who wrote the end, at which epoch: a stale write would say an older one. */
	snprintf(result, sizeof(result), "%s@%" PRId64, n->name, j.lease_epoch);
	j.state = JOB_DONE;
	j.runs++;
	if (j.instance % POISON_EVERY == 7) { /* it crashes: blamed, and quarantined at the last */
		j.attempts++;
		j.state = j.attempts >= MAX_ATTEMPTS ? JOB_CRASHED : JOB_QUEUED;
	}
	j.started_ms = 1;
	j.ended_ms = 1 + n->run_ms;
	j.result = result;
	node_write(n, &j);
	n->done++;
	remove_running(n, (size_t)(r - n->run));
	repoint(n);
	node_want(n);
	return 0;
}

static void on_joined(void *userdata, const struct pg_node_info *info)
{
	struct node *n = userdata;

	if (n->add > 0) {
		pg_queue_add(n->q, "p", 1, info->last_job + 1, 1, (size_t)n->add, NULL, 1);
		n->wrote = true;
		n->add = 0;
	}
	node_want(n);
}

static void on_down(void *userdata, const char *why)
{
}

static void on_superseded(void *userdata, const char *why)
{
	fprintf(stderr, "%s: %s\n", ((struct node *)userdata)->name, why);
}

static void on_claimed(void *userdata, const struct pg_job *jobs, size_t count)
{
	struct node *n = userdata;
	uint64_t now;

	sd_event_now(n->e, CLOCK_MONOTONIC, &now);
	for (size_t i = 0; i < count; i++) {
		struct running *r;

		if (n->n_running == CAPACITY) /* more than asked: never, but not run if so */
			break;
		r = &n->run[n->n_running++];
		*r = (struct running){ .job = jobs[i], .n = n };
		r->job.pool = r->job.input = r->job.result = r->job.node = NULL;
		sd_event_add_time(n->e, &r->timer, CLOCK_MONOTONIC, now + n->run_ms * 1000ull, 0,
				  on_done, r);
		n->claimed++;
	}
}

/* A dead node's jobs: back to the queue as bystanders of a host death. */
static void on_orphans(void *userdata, const struct pg_job *jobs, size_t count)
{
	struct node *n = userdata;

	for (size_t i = 0; i < count; i++) {
		struct pg_job j = jobs[i];

		j.pool = j.input = j.result = j.node = NULL;
		j.state = JOB_QUEUED;
		j.host_deaths++;
		node_write(n, &j);
		n->orphans++;
	}
}

static void on_lost(void *userdata, const int64_t *ids, size_t count)
{
	struct node *n = userdata;

	for (size_t k = 0; k < count; k++)
		for (size_t i = 0; i < n->n_running; i++)
			if (n->run[i].job.id == ids[k]) {
				remove_running(n, i);
				repoint(n);
				break;
			}
	if (!n->lost_at && count > 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		n->lost_at = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	}
	n->lost += count;
	node_want(n);
}

static void on_flushed(void *userdata, uint64_t serial, int r, const char *why)
{
	struct node *n = userdata;

	if (r < 0)
		fprintf(stderr, "%s: flush %" PRIu64 ": %s\n", n->name, serial, why);
	else
		n->flushes++;
}

static const struct pg_queue_ops node_ops = {
	.joined = on_joined,
	.down = on_down,
	.superseded = on_superseded,
	.claimed = on_claimed,
	.orphans = on_orphans,
	.lost = on_lost,
	.flushed = on_flushed,
};

/* Once per loop pass: what was written goes out. */
static int on_post(sd_event_source *s, void *userdata)
{
	struct node *n = userdata;

	if (n->wrote) {
		n->wrote = false;
		pg_queue_flush(n->q);
	}
	return 0;
}

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

/* The child: runs node `name` until SIGTERM, then writes what it counted to DIR/NAME. */
static const char *node_host; /* a node's PGHOST, if not the server's: the proxy */

static void node_main(const char *name, int64_t add, int64_t lease_ms, uint64_t run_ms)
{
	struct node n = { .name = name, .add = add, .run_ms = run_ms };
	char *err = NULL, path[128], info[256];
	struct pg_queue_config cfg = { .conninfo = info, .node = name, .lease_ms = lease_ms };
	struct pg_node_info joined;
	sigset_t ss;
	FILE *f;

	snprintf(info, sizeof(info), "%s application_name=%s%s%s", conninfo, name,
		 node_host ? " host=" : "", node_host ? node_host : "");
	/* n2 joins before its queue is made, as a master does (store_pg_join()). */
	if (strcmp(name, "n2") == 0) {
		PGconn *c = pg_test_connect(info);

		if (store_pg_join(c, name, &joined, &err) < 0)
			_exit(3);
		PQfinish(c);
		cfg.joined = &joined;
	}
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	if (sd_event_new(&n.e) < 0 || pg_queue_new(n.e, &cfg, &node_ops, &n, &n.q, &err) < 0 ||
	    sd_event_add_post(n.e, &n.post, on_post, &n) < 0 ||
	    sd_event_add_signal(n.e, NULL, SIGTERM, on_term, NULL) < 0)
		_exit(2);
	sd_event_loop(n.e);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", n.claimed,
			n.orphans, n.lost, n.done, n.lost_at);
		fclose(f);
	}
	pg_queue_free(n.q);
	_exit(0);
}

/* ---- the parent ---- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define q(...) pg_test_longf(db, __VA_ARGS__)

/* What a test that timed out left unfinished, on stderr. */

/* Waits (polling the table, within the deadline) until query answers at least want. */
static void wait_for(long want, const char *what, const char *query)
{
	int64_t deadline = now_ms() + DEADLINE_MS;

	while (pg_test_long(db, query) < want) {
		struct timespec ts = { .tv_nsec = 20 * 1000 * 1000 };

		if (now_ms() >= deadline)
			pg_test_show_unfinished(db);
		ck_assert_msg(now_ms() < deadline, "no %s within %d ms (%ld of %ld)", what,
			      DEADLINE_MS, pg_test_long(db, query), want);
		nanosleep(&ts, NULL); /* polling a table: the wait is on its rows, not on time */
	}
}

static pid_t start_node(const char *name, int64_t add, int64_t lease_ms, uint64_t run_ms)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		node_main(name, add, lease_ms, run_ms);
	return pid;
}

/* Ends a node with SIGTERM and reads what it counted: claimed, orphans, lost, done, and when
 * it first lost jobs (CLOCK_REALTIME µs, 0: never). */
static void stop_node(pid_t pid, const char *name, uint64_t counts[5])
{
	char path[128];
	int status;
	FILE *f;

	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "node %s: status %#x", name,
		      status);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
				&counts[0], &counts[1], &counts[2], &counts[3], &counts[4]),
			 5);
	fclose(f);
}

static void setup(void)
{
	char *err = NULL;

	pg_test_db(conninfo, sizeof(conninfo));
	db = pg_test_connect(conninfo);
	ck_assert_int_eq(store_pg_schema(db, &err), 0);
	snprintf(dir, sizeof(dir), "/tmp/bulkhead-pgq.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	pg_test_audit(db);
}

static void teardown(void)
{
	char cmd[128];

	PQfinish(db);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/*
 * Every job of `jobs` ended once at its last epoch: DONE, or for a poison job CRASHED after
 * exactly MAX_ATTEMPTS attempts (host deaths count none), wherever it crashed.
 */
static void check_every_job_ended_once(long jobs)
{
	long poison = jobs / POISON_EVERY + (jobs % POISON_EVERY >= 7);

	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs"), jobs);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE state = %d", JOB_DONE),
			 jobs - poison);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE state = %d AND attempts = %d "
			   "AND instance %% %d = 7",
			   JOB_CRASHED, MAX_ATTEMPTS, POISON_EVERY),
			 poison);
	ck_assert_int_eq(q("SELECT count(*) FROM finals"), jobs);
	ck_assert_int_eq(q("SELECT count(DISTINCT id) FROM finals"), jobs);
	ck_assert_int_eq(q("SELECT count(*) FROM rewrites"), 0);
	/* Written at the epoch of the job's last claim: no stale write got through. */
	ck_assert_int_eq(q("SELECT count(*) FROM finals f JOIN bulkhead.jobs j USING (id) WHERE "
			   "f.epoch <> j.lease_epoch"),
			 0);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE result IS NULL OR "
			   "split_part(result, '@', 2) <> lease_epoch::text"),
			 0);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE attempts <> 0 AND "
			   "instance %% %d <> 7",
			   POISON_EVERY),
			 0);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE lease_owner IS NOT NULL"), 0);
}

/*
 * Three nodes on 3000 jobs that one of them added; one is SIGKILLed mid-way. The other two
 * take over what it held once its leases expire (host_deaths 1, no attempt), and every job
 * ends once.
 */
START_TEST(test_node_killed)
{
	enum { JOBS = 3000 };
	static const char *names[NODES] = { "n0", "n1", "n2" };
	pid_t pids[NODES];
	uint64_t counts[5];
	int status;

	for (int i = 0; i < NODES; i++)
		pids[i] = start_node(names[i], i == 0 ? JOBS : 0, 1500, RUN_MS);
	wait_for(JOBS, "jobs added", "SELECT count(*) FROM bulkhead.jobs");
	/* n1 is running jobs when it dies. */
	wait_for(1, "a lease of n1",
		 "SELECT count(*) FROM bulkhead.jobs WHERE lease_owner = 'n1' AND state = 1");
	ck_assert_int_eq(kill(pids[1], SIGKILL), 0);
	ck_assert_int_eq(waitpid(pids[1], &status, 0), pids[1]);
	wait_for(JOBS, "every job done", "SELECT count(*) FROM finals");
	stop_node(pids[0], names[0], counts);
	ck_assert_msg(counts[2] == 0, "n0 lost %" PRIu64 " jobs, and no one took any of its", counts[2]);
	stop_node(pids[2], names[2], counts);
	ck_assert_msg(counts[2] == 0, "n2 lost %" PRIu64 " jobs, and no one took any of its", counts[2]);
	ck_assert_int_ge(counts[0], 1); /* n2, joined before its queue was made, claimed too */
	check_every_job_ended_once(JOBS);
	ck_assert_int_ge(q("SELECT count(*) FROM bulkhead.jobs WHERE host_deaths = 1"), 1);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE host_deaths > 1"), 0);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE node IS NULL"), 0);
}
END_TEST

/*
 * A node cut off (stopped) past its lease: the others take its jobs; let go on, it finds it
 * lost them (self-fencing), and whatever it writes of them matches nothing.
 */
START_TEST(test_node_cut_off_and_healed)
{
	enum { JOBS = 2000 };
	static const char *names[NODES] = { "n0", "n1", "n2" };
	pid_t pids[NODES];
	uint64_t counts[NODES][5];

	/* Jobs of 50 ms: n1 holds some nearly all the time. */
	for (int i = 0; i < NODES; i++)
		pids[i] = start_node(names[i], i == 0 ? JOBS : 0, 1500, 50);
	wait_for(1, "a lease of n1",
		 "SELECT count(*) FROM bulkhead.jobs WHERE lease_owner = 'n1' AND state = 1");
	/* Stopped while it holds jobs (what it sent before the stop has been answered). */
	for (int tries = 0;; tries++) {
		ck_assert_int_eq(kill(pids[1], SIGSTOP), 0);
		/* What it sent before the stop is done: its backend waits for more. */
		wait_for(1, "n1's statements done",
			 "SELECT (count(*) = 0)::int FROM pg_stat_activity WHERE "
			 "application_name = 'n1' AND state <> 'idle'");
		if (q("SELECT count(*) FROM bulkhead.jobs WHERE lease_owner = 'n1'") > 0)
			break;
		ck_assert_msg(tries < 20, "n1 held no job when stopped, 20 times");
		ck_assert_int_eq(kill(pids[1], SIGCONT), 0);
		wait_for(1, "a lease of n1",
			 "SELECT count(*) FROM bulkhead.jobs WHERE lease_owner = 'n1' AND state = 1");
	}
	/* Its jobs are taken over: none of the jobs leased to it is left. */
	wait_for(1, "n1's jobs taken over",
		 "SELECT (count(*) = 0)::int FROM bulkhead.jobs WHERE lease_owner = 'n1'");
	ck_assert_int_eq(kill(pids[1], SIGCONT), 0);
	wait_for(JOBS, "every job done", "SELECT count(*) FROM finals");
	for (int i = 0; i < NODES; i++)
		stop_node(pids[i], names[i], counts[i]);
	check_every_job_ended_once(JOBS);
	ck_assert_int_ge(counts[1][2], 1); /* n1 lost what it held */
	ck_assert_int_ge(counts[0][1] + counts[2][1], 1); /* the others took it over */
}
END_TEST

/*
 * A node whose link to the server is cut (its proxy stopped) past its lease, then healed:
 * the others take its jobs over; the writes it sent or buffered meanwhile, stale by the time
 * they arrive, match nothing, and it finds it lost what it held.
 */
START_TEST(test_link_cut_and_healed)
{
	enum { JOBS = 2000 };
	static const char *names[NODES] = { "n0", "n1", "n2" };
	char link[128], server[128], sql[256];
	pid_t pids[NODES], proxy;
	uint64_t counts[NODES][5];
	int status;

	snprintf(link, sizeof(link), "%s/.s.PGSQL.%s", dir, getenv("PGPORT"));
	snprintf(server, sizeof(server), "%s/.s.PGSQL.%s", getenv("PGHOST"), getenv("PGPORT"));
	proxy = fork();
	ck_assert_int_ge(proxy, 0);
	if (proxy == 0)
		pg_test_proxy(link, server);
	for (int i = 0; i < NODES; i++) {
		node_host = i == 1 ? dir : NULL;
		pids[i] = start_node(names[i], i == 0 ? JOBS : 0, 1500, 50);
	}
	node_host = NULL;
	wait_for(1, "a lease of n1",
		 "SELECT count(*) FROM bulkhead.jobs WHERE lease_owner = 'n1' AND state = 1");
	ck_assert_int_eq(kill(proxy, SIGSTOP), 0);
	/* Cut while it held jobs (n1's statements in flight wait in the proxy). */
	ck_assert_int_ge(q("SELECT count(*) FROM bulkhead.jobs WHERE lease_owner = 'n1'"), 1);
	snprintf(sql, sizeof(sql),
		 "SELECT (count(*) = 0)::int FROM bulkhead.jobs WHERE lease_owner = 'n1'");
	wait_for(1, "n1's jobs taken over", sql);
	ck_assert_int_eq(kill(proxy, SIGCONT), 0);
	wait_for(JOBS, "every job done", "SELECT count(*) FROM finals");
	for (int i = 0; i < NODES; i++)
		stop_node(pids[i], names[i], counts[i]);
	ck_assert_int_eq(kill(proxy, SIGKILL), 0);
	ck_assert_int_eq(waitpid(proxy, &status, 0), proxy);
	check_every_job_ended_once(JOBS);
	ck_assert_int_ge(counts[1][2], 1); /* n1 lost what it held */
	ck_assert_int_ge(counts[0][1] + counts[2][1], 1);
	/* It gave them up (self-fencing, 3/4 of a lease without a renewal) before another
	 * node took the first of them: never two nodes running one job on purpose. */
	fprintf(stderr, "link cut: n1 lost %" PRIu64 " jobs, first at %" PRIu64 " µs; first take "
			"of its jobs at %ld µs\n",
		counts[1][2], counts[1][4], q("SELECT min(at) FROM takes WHERE from_node = 'n1'"));
	ck_assert_int_gt(counts[1][4], 0);
	ck_assert_msg((long)counts[1][4] < q("SELECT min(at) FROM takes WHERE from_node = 'n1'"),
		      "n1 gave its jobs up at %" PRIu64 " µs, after the first take (%ld)",
		      counts[1][4], q("SELECT min(at) FROM takes WHERE from_node = 'n1'"));
}
END_TEST

/*
 * A second bulkheadd under a name in use (a copied config): the first one's next renewal
 * finds it superseded, and it gives up what it held; the new one takes its name's jobs at
 * its start, and every job still ends once.
 */
START_TEST(test_name_taken_over)
{
	enum { JOBS = 2000 };
	static const char *names[NODES] = { "n0", "n1", "n2" };
	pid_t pids[NODES], again;
	uint64_t counts[NODES][5], counts_again[5];

	for (int i = 0; i < NODES; i++)
		pids[i] = start_node(names[i], i == 0 ? JOBS : 0, 1500, 50);
	wait_for(1, "a lease of n1",
		 "SELECT count(*) FROM bulkhead.jobs WHERE lease_owner = 'n1' AND state = 1");
	again = start_node("n1", 0, 1500, 50);
	wait_for(JOBS, "every job done", "SELECT count(*) FROM finals");
	for (int i = 0; i < NODES; i++)
		stop_node(pids[i], names[i], counts[i]);
	stop_node(again, "n1", counts_again);
	check_every_job_ended_once(JOBS);
	ck_assert_int_eq(q("SELECT epoch FROM bulkhead.nodes WHERE name = 'n1'"), 2);
	ck_assert_int_ge(counts[1][2], 1); /* the first n1 gave up what it held */
	ck_assert_int_ge(counts_again[1], 1); /* the second took its name's jobs over */
}
END_TEST

/* The server stops and starts under the nodes: they reconnect, resend, and finish. */
START_TEST(test_server_restarts)
{
	enum { JOBS = 2000 };
	static const char *names[NODES] = { "n0", "n1", "n2" };
	pid_t pids[NODES];
	uint64_t counts[5];
	char cmd[512];

	for (int i = 0; i < NODES; i++)
		pids[i] = start_node(names[i], i == 0 ? JOBS : 0, 3000, RUN_MS);
	wait_for(JOBS / 4, "a quarter done", "SELECT count(*) FROM finals");
	PQfinish(db);
	snprintf(cmd, sizeof(cmd), "%s stop >/dev/null && %s start >/dev/null",
		 getenv("BULKHEAD_PG_CTL"), getenv("BULKHEAD_PG_CTL"));
	ck_assert_int_eq(system(cmd), 0);
	db = pg_test_connect(conninfo);
	wait_for(JOBS, "every job done", "SELECT count(*) FROM finals");
	for (int i = 0; i < NODES; i++)
		stop_node(pids[i], names[i], counts);
	check_every_job_ended_once(JOBS);
}
END_TEST

static Suite *pg_queue_suite(void)
{
	Suite *s = suite_create("pg-queue");
	TCase *tc = tcase_create("nodes");

	tcase_set_timeout(tc, 180);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_node_killed);
	tcase_add_test(tc, test_node_cut_off_and_healed);
	tcase_add_test(tc, test_link_cut_and_healed);
	tcase_add_test(tc, test_name_taken_over);
	tcase_add_test(tc, test_server_restarts);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(pg_queue_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
