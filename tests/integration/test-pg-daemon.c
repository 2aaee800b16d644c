/* SPDX-License-Identifier: MIT */
/*
 * Three bulkheadd nodes sharing one PostgreSQL (`store = postgresql:`, DESIGN §13, issue 14),
 * each a daemon of its own with its workers, against a real server (tests/pg/with-postgres),
 * with the real faults: a whole node SIGKILLed (its master and every worker at once), a
 * node's link to the server cut (a proxy stopped) past its lease and healed, and the server
 * restarted under them.
 *
 * The config is the same on every node: thousands of short jobs and one poison job (a real
 * SIGSEGV every run, max_attempts 2). A trigger on the table records every move of a job
 * into a final state, with its epoch, and every change of a job that had ended. What is
 * checked: every job ended exactly once, at the epoch of its last claim, none lost, none
 * changed after; host deaths counted no attempt; the poison job was quarantined once, with
 * its two attempts, wherever it crashed; `status` shows the nodes, `jobs` who ran each job;
 * and after the stops no worker is left and no child is a zombie.
 */
#include <check.h>
#include <dirent.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sched.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmdutil.h"
#include "ctlutil.h"
#include "daemon/store-pg.h"
#include "daemonutil.h"
#include "tests/pg/pg-testdb.h"
#include "testutil.h"

#define NODES 3
#define JOBS 3000         /* the config group's short jobs */
#define LONG 12 /* and its jobs longer than a lease (4 s): a node cut off holds some */
#define ALL (JOBS + LONG + 2) /* and the poison job, and one of inputs */
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
#define END_MS 180000     /* every job ended: generous for ASan on a loaded machine */
#define LEASE "1500ms"

static char conninfo[128];
static PGconn *db;
static char files[256]; /* a directory with one file: group `files` takes it as an input */

struct net;
static struct net *net_current; /* torn down by teardown() if its test fails */
static void net_down(struct net *n);

#define q(...) pg_test_longf(db, __VA_ARGS__)

/*
 * Waits until query answers at least want, taking in every node's output meanwhile (each
 * pump waits on the nodes' events for up to 20 ms: the wait is on the table's rows).
 */
static void wait_for(struct daemon *ds, int n, long want, const char *what, const char *query)
{
	int64_t deadline = tu_now_ms() + END_MS;

	while (pg_test_long(db, query) < want) {
		if (tu_now_ms() >= deadline) {
			pg_test_show_unfinished(db);
			for (int i = 0; i < n; i++)
				fprintf(stderr, "node %d: %s\n", i, dmn_describe(&ds[i]));
		}
		ck_assert_msg(tu_now_ms() < deadline, "no %s within %d ms (%ld of %ld)", what,
			      END_MS, pg_test_long(db, query), want);
		for (int i = 0; i < n; i++)
			if (!ds[i].exited)
				dmn_pump(&ds[i], 20 / n + 1);
	}
}

/* The network namespace the next node starts in (NULL: the test's own). */
static const char *node_netns;

/* dmn_start() in network namespace ns (the daemon and its workers live there). */
static void start_in_netns(struct daemon *d, const char *ns)
{
	char path[128];
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), fd;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(self >= 0 && fd >= 0, "%s: %m", path);
	ck_assert_int_eq(setns(fd, CLONE_NEWNET), 0);
	dmn_start(d, NULL);
	ck_assert_int_eq(setns(self, CLONE_NEWNET), 0);
	close(fd);
	close(self);
}

/* Node i of the test, on the test's database (host: the server's socket dir, or a proxy's:
 * a directory, or an address to reach over TCP). */
static void start_node(struct daemon *d, int i, const char *host)
{
	char conf[1536];

	dmn_init(d);
	snprintf(conf, sizeof(conf),
		 "[supervisor]\n"
		 "store = postgresql:%s host=%s port=%s user=%s application_name=n%d "
		 "connect_timeout=5\n"
		 "node = n%d\n"
		 "lease = " LEASE "\n"
		 "drain_timeout = 200ms\n"
		 "[pool main]\n"
		 "workers = 2\n"
		 "threads = 4\n"
		 "[job work]\n"
		 "run = builtin:sleep\n"
		 "args = ms=5\n"
		 "count = %d\n"
		 "[pool slow]\n"
		 "workers = 1\n"
		 "threads = 2\n"
		 "[job long]\n"
		 "pool = slow\n"
		 "run = builtin:sleep\n"
		 "args = ms=4000\n"
		 "count = %d\n"
		 "[job poison]\n"
		 "run = builtin:segv\n"
		 "count = 1\n"
		 "max_attempts = 2\n"
		 "expect = crashed\n"
		 "[job files]\n"
		 "run = exec:/bin/true\n"
		 "inputs = %s/*\n",
		 conninfo, host ? host : getenv("PGHOST"), node_netns ? "5432" : getenv("PGPORT"), getenv("PGUSER"), i, i,
		 JOBS, LONG, files);
	dmn_write_config(d, conf);
	if (node_netns)
		start_in_netns(d, node_netns);
	else
		dmn_start(d, NULL);
	dmn_wait_ready(d);
}

static void start_nodes(struct daemon *ds, const char *host_of_n1)
{
	for (int i = 0; i < NODES; i++)
		start_node(&ds[i], i, i == 1 ? host_of_n1 : NULL);
}

/* The processes below pid (its workers, its fork server), depth first, into pids. */
static int descendants(pid_t pid, pid_t *pids, int n, int max)
{
	DIR *dir = opendir("/proc");
	struct dirent *e;

	ck_assert_ptr_nonnull(dir);
	while (n < max && (e = readdir(dir))) {
		pid_t child = (pid_t)atoi(e->d_name), ppid;
		char comm[64], state;

		if (child <= 0 || tu_proc_stat(child, comm, sizeof(comm), &state, &ppid) < 0 ||
		    ppid != pid)
			continue;
		pids[n++] = child;
		n = descendants(child, pids, n, max);
	}
	closedir(dir);
	return n;
}

/* The whole node at once, as a host that dies: its master stopped first (it starts nothing
 * more), then every process of it SIGKILLed. */
static void kill_node(struct daemon *d)
{
	pid_t pids[256];
	int n;

	ck_assert_int_eq(kill(d->pid, SIGSTOP), 0);
	n = descendants(d->pid, pids, 0, 256);
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	dmn_signal(d, SIGKILL);
	ck_assert(dmn_wait_exit(d, DMN_EXIT_MS));
}

/* What happened, for the log. */
static void summary(const char *test, struct daemon *ds)
{
	fprintf(stderr, "%s: %ld takes, %ld jobs with a host death, %ld bystander re-runs; n1 "
			"fenced itself: %s\n",
		test, q("SELECT count(*) FROM takes"),
		q("SELECT count(*) FROM bulkhead.jobs WHERE host_deaths >= 1"),
		q("SELECT coalesce(sum(reruns), 0) FROM bulkhead.jobs"),
		ds[1].err && strstr(ds[1].err, "given up") ? "yes" : "no");
}

static void stop_nodes(struct daemon *ds)
{
	for (int i = 0; i < NODES; i++) {
		if (!ds[i].exited)
			dmn_stop(&ds[i]);
	}
	dmn_assert_nothing_left("bulkhead-worker", DMN_EXIT_MS, "the nodes' stops");
	dmn_assert_aftermath();
	for (int i = 0; i < NODES; i++)
		dmn_free(&ds[i]);
}

/*
 * Every job ended once at its last epoch and never changed after; no attempt for a job that
 * never crashed; the poison job quarantined (CRASHED, 2 attempts) once.
 */
static void check_every_job_ended_once(void)
{
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs"), ALL);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.groups"), 4); /* once, not per node */
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs j JOIN bulkhead.groups g ON "
			   "g.id = j.grp WHERE g.name <> 'poison' AND j.state = 2"),
			 JOBS + LONG + 1);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs j JOIN bulkhead.groups g ON "
			   "g.id = j.grp WHERE g.name = 'poison' AND j.state = 4 AND "
			   "j.attempts = 2"),
			 1);
	ck_assert_int_eq(q("SELECT count(*) FROM finals"), ALL);
	ck_assert_int_eq(q("SELECT count(DISTINCT id) FROM finals"), ALL);
	ck_assert_int_eq(q("SELECT count(*) FROM rewrites"), 0);
	ck_assert_int_eq(q("SELECT count(*) FROM finals f JOIN bulkhead.jobs j USING (id) WHERE "
			   "f.epoch <> j.lease_epoch"),
			 0);
	/* Host deaths and bystander re-runs counted no attempt. */
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs j JOIN bulkhead.groups g ON "
			   "g.id = j.grp WHERE g.name <> 'poison' AND j.attempts <> 0"),
			 0);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE lease_owner IS NOT NULL"), 0);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE node IS NULL"), 0);
}

/* `status` on node d: the three nodes, and job counts that add up to every job. */
static void check_status(struct daemon *d, const char *dead)
{
	struct conn c;
	json_object *o, *nodes, *jobs, *store;
	int alive = 0;

	conn_open(d, &c);
	o = call_within(d, &c, "{\"command\":\"status\"}", 30000);
	assert_ok(o);
	nodes = jget(o, "nodes", json_type_array);
	ck_assert_int_eq((int)json_object_array_length(nodes), NODES);
	for (size_t i = 0; i < json_object_array_length(nodes); i++) {
		json_object *n = json_object_array_get_idx(nodes, i);

		if (dead && strcmp(jstr(n, "name"), dead) == 0)
			ck_assert_msg(!jbool(n, "alive"), "%s: %s", dead, jtext(o));
		else
			alive += jbool(n, "alive");
	}
	ck_assert_int_eq(alive, dead ? NODES - 1 : NODES);
	jobs = jget(o, "jobs", json_type_object);
	ck_assert_int_eq(jint(jobs, "total"), ALL);
	ck_assert_int_eq(jint(jobs, "done") + jint(jobs, "crashed"), ALL);
	store = jget(o, "store", json_type_object);
	ck_assert_str_eq(jstr(store, "kind"), "postgresql");
	ck_assert_int_eq(jint(jget(o, "workers", json_type_object), "injected"), 0);
	json_object_put(o);
	/* bulkhead status, as an operator reads it: the nodes' table. */
	{
		const char *argv[] = { cmd_env_required("BULKHEAD_BIN"), "--socket", d->sock_path,
				       "status", NULL };
		struct cmd out;

		ck_assert_int_eq(cmd_run(argv, NULL, &out), 0);
		ck_assert_msg(cmd_exited_0(&out) && out.out && strstr(out.out, "NODE") &&
				      strstr(out.out, "HEARTBEAT") && strstr(out.out, "n1 "),
			      "%s%s", out.out ? out.out : "", out.err ? out.err : "");
		cmd_free(&out);
	}
	/* jobs: who ran each. */
	o = call_within(d, &c, "{\"command\":\"jobs\",\"group\":\"poison\"}", 30000);
	assert_ok(o);
	jobs = jget(o, "jobs", json_type_array);
	ck_assert_int_eq((int)json_object_array_length(jobs), 1);
	ck_assert_str_eq(jstr(json_object_array_get_idx(jobs, 0), "state"), "crashed");
	ck_assert_int_eq(jint(json_object_array_get_idx(jobs, 0), "attempts"), 2);
	ck_assert_ptr_nonnull(jstr(json_object_array_get_idx(jobs, 0), "node"));
	json_object_put(o);
	conn_close(&c);
}

/* Waits until node d runs a job of pool `slow` (its status: a worker's jobs_running). */
static void wait_running_slow(struct daemon *d)
{
	int64_t deadline = tu_now_ms() + END_MS;
	struct conn c;

	conn_open(d, &c);
	for (;;) {
		json_object *o = call_within(d, &c, "{\"command\":\"status\"}", 30000), *pools;
		int64_t running = 0;

		assert_ok(o);
		pools = jget(o, "pools", json_type_array);
		for (size_t i = 0; i < json_object_array_length(pools); i++) {
			json_object *p = json_object_array_get_idx(pools, i), *ws;

			if (strcmp(jstr(p, "name"), "slow") != 0)
				continue;
			ws = jget(p, "workers", json_type_array);
			for (size_t k = 0; k < json_object_array_length(ws); k++)
				running += jint(json_object_array_get_idx(ws, k), "jobs_running");
		}
		json_object_put(o);
		if (running > 0)
			break;
		ck_assert_msg(tu_now_ms() < deadline, "n1 ran no long job within %d ms", END_MS);
		dmn_pump(d, 20); /* the next look after the node's next events, or 20 ms */
	}
	conn_close(&c);
}

static void setup(void)
{
	char *err = NULL;

	dmn_setup();
	pg_test_db(conninfo, sizeof(conninfo));
	db = pg_test_connect(conninfo);
	ck_assert_int_eq(store_pg_schema(db, &err), 0);
	pg_test_audit(db);
	snprintf(files, sizeof(files), "%s/bulkhead-files.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(files));
	{
		char path[300];

		snprintf(path, sizeof(path), "%s/in1", files);
		ck_assert_int_eq(tu_write_file(path, "x"), 0);
	}
}

static void teardown(void)
{
	if (net_current)
		net_down(net_current);
	PQfinish(db);
}

/*
 * A whole node SIGKILLed while it runs jobs: the others take what it held once its leases
 * expire (host_deaths 1, no attempt), and every job ends once.
 */
START_TEST(test_node_killed)
{
	struct daemon ds[NODES] = { 0 };

	start_nodes(ds, NULL);
	wait_for(ds, NODES, 100, "jobs done", "SELECT count(*) FROM finals");
	wait_for(ds, NODES, 1, "a lease of n1",
		 "SELECT count(*) FROM bulkhead.jobs WHERE lease_owner = 'n1' AND state = 1");
	kill_node(&ds[1]);
	wait_for(ds, NODES, ALL, "every job ended", "SELECT count(*) FROM finals");
	check_every_job_ended_once();
	ck_assert_int_ge(q("SELECT count(*) FROM takes WHERE from_node = 'n1'"), 1);
	ck_assert_int_ge(q("SELECT count(*) FROM bulkhead.jobs WHERE host_deaths >= 1"), 1);
	check_status(&ds[0], "n1");
	summary("node killed", ds);
	stop_nodes(ds);
}
END_TEST

/*
 * A long job on two hosts that die, one after the other: each death is a host death
 * (no attempt), and after the second the job runs alone, on the last node; it ends once.
 */
START_TEST(test_two_host_deaths)
{
	struct daemon ds[NODES] = { 0 };
	char sql[512];
	long id;
	int second;

	start_nodes(ds, NULL);
	wait_for(ds, NODES, 1, "a long job on n1",
		 "SELECT count(*) FROM bulkhead.jobs j JOIN bulkhead.groups g ON g.id = j.grp "
		 "WHERE g.name = 'long' AND j.lease_owner = 'n1' AND j.state = 1");
	id = q("SELECT min(j.id) FROM bulkhead.jobs j JOIN bulkhead.groups g ON g.id = j.grp "
	       "WHERE g.name = 'long' AND j.lease_owner = 'n1' AND j.state = 1");
	kill_node(&ds[1]);
	/* Taken over by n0 or n2 (host_deaths 1), and running there: that node dies too. */
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM bulkhead.jobs WHERE id = %ld AND host_deaths = 1 AND "
		 "state = 1 AND lease_owner IN ('n0', 'n2')",
		 id);
	wait_for(ds, NODES, 1, "the long job on a second node", sql);
	snprintf(sql, sizeof(sql), "SELECT (lease_owner = 'n2')::int FROM bulkhead.jobs WHERE id = %ld",
		 id);
	second = pg_test_long(db, sql) ? 2 : 0;
	kill_node(&ds[second]);
	wait_for(ds, NODES, ALL, "every job ended", "SELECT count(*) FROM finals");
	check_every_job_ended_once();
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM bulkhead.jobs WHERE id = %ld AND host_deaths = 2 AND "
		 "attempts = 0 AND alone = 1 AND state = 2 AND node = 'n%d'",
		 id, 2 - second);
	ck_assert_msg(pg_test_long(db, sql) == 1, "job %ld: not ended done, alone, on n%d after "
		      "two host deaths", id, 2 - second);
	stop_nodes(ds);
}
END_TEST

/*
 * A whole node SIGKILLed and started again at once, within its lease: it takes back what
 * its last life held (host_deaths 1, no attempt), before the others could; every job ends
 * once, and the config's groups are not added again.
 */
START_TEST(test_node_killed_and_restarted)
{
	struct daemon ds[NODES] = { 0 };
	long held;

	start_nodes(ds, NULL);
	wait_for(ds, NODES, 100, "jobs done", "SELECT count(*) FROM finals");
	wait_for(ds, NODES, 1, "a lease of n1",
		 "SELECT count(*) FROM bulkhead.jobs WHERE lease_owner = 'n1' AND state = 1");
	kill_node(&ds[1]);
	held = q("SELECT count(*) FROM bulkhead.jobs WHERE lease_owner = 'n1' AND state = 1");
	dmn_free(&ds[1]);
	ds[1] = (struct daemon){ 0 };
	start_node(&ds[1], 1, NULL);
	wait_for(ds, NODES, ALL, "every job ended", "SELECT count(*) FROM finals");
	check_every_job_ended_once();
	ck_assert_int_ge(q("SELECT count(*) FROM bulkhead.jobs WHERE host_deaths >= 1"),
			 held > 0 ? 1 : 0);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.nodes"), NODES);
	check_status(&ds[1], NULL);
	summary("node restarted", ds);
	stop_nodes(ds);
}
END_TEST

/*
 * n1's link to the server cut (its proxy stopped) past its lease, then healed: the others
 * take its jobs over; n1 gives up what it held (self-fencing: its workers with those jobs are
 * killed, nothing of them is written) and goes on.
 */
START_TEST(test_link_cut_and_healed)
{
	struct daemon ds[NODES] = { 0 };
	char *dir = NULL, link[256], server[256];
	pid_t proxy;
	int status, listen_fd;

	ck_assert_int_eq(tu_mkdtemp(&dir), 0);
	snprintf(link, sizeof(link), "%s/.s.PGSQL.%s", dir, getenv("PGPORT"));
	snprintf(server, sizeof(server), "%s/.s.PGSQL.%s", getenv("PGHOST"), getenv("PGPORT"));
	listen_fd = pg_test_listen_unix(link); /* before the nodes start: none is refused */
	ck_assert_int_ge(listen_fd, 0);
	proxy = fork();
	ck_assert_int_ge(proxy, 0);
	if (proxy == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* gone with the test, even a failed one */
		pg_test_proxy_fd(listen_fd, server);
	}
	close(listen_fd);
	start_nodes(ds, dir);
	/* Cut while n1 runs a long job (its pool runs nothing else): n1 has its claim. */
	wait_running_slow(&ds[1]);
	ck_assert_int_eq(kill(proxy, SIGSTOP), 0);
	wait_for(ds, NODES, 1, "n1's jobs taken over",
		 "SELECT (count(*) = 0)::int FROM bulkhead.jobs WHERE lease_owner = 'n1'");
	/* It gave up what it held (its long jobs, queued or running) before the others took it:
	 * the worker running one was killed, which is no injected fault. */
	dmn_expect_stderr(&ds[1], "held here given up", END_MS);
	dmn_expect_stderr(&ds[1], "a job's lease was lost", END_MS);
	ck_assert_int_eq(kill(proxy, SIGCONT), 0);
	wait_for(ds, NODES, ALL, "every job ended", "SELECT count(*) FROM finals");
	check_every_job_ended_once();
	ck_assert_int_ge(q("SELECT count(*) FROM takes WHERE from_node = 'n1'"), 1);
	ck_assert(!ds[1].exited); /* it went on */
	check_status(&ds[1], NULL);
	summary("link cut", ds);
	ck_assert_int_eq(kill(proxy, SIGKILL), 0);
	ck_assert_int_eq(waitpid(proxy, &status, 0), proxy);
	stop_nodes(ds);
	tu_rm_rf(dir);
	free(dir);
}
END_TEST

/* The server stopped and started again under the three nodes: nothing is lost or doubled. */
START_TEST(test_server_restart)
{
	struct daemon ds[NODES] = { 0 };
	char cmd[512];

	start_nodes(ds, NULL);
	wait_for(ds, NODES, 300, "jobs done", "SELECT count(*) FROM finals");
	PQfinish(db);
	snprintf(cmd, sizeof(cmd), "%s stop && %s start", getenv("BULKHEAD_PG_CTL"),
		 getenv("BULKHEAD_PG_CTL"));
	/* The server's new postmaster is not this test's: it goes to init, not to us. */
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	db = pg_test_connect(conninfo);
	wait_for(ds, NODES, ALL, "every job ended", "SELECT count(*) FROM finals");
	check_every_job_ended_once();
	for (int i = 0; i < NODES; i++)
		ck_assert(!ds[i].exited);
	check_status(&ds[2], NULL);
	summary("server restart", ds);
	stop_nodes(ds);
}
END_TEST

#define CANCELS 200

/*
 * CANCELS jobs that sleep a minute, submitted on n0 to pool slow (two threads a node), and
 * cancelled from n2: those still queued in the table end cancelled at once, n2's own are
 * cancelled as on one host, and those another node runs are named with that node, where
 * they are cancelled next. All of them end cancelled.
 */
static void cancel_anywhere(struct daemon *ds, struct conn *cs[NODES])
{
	json_object *o, *ids, *others;
	char *req;
	size_t len = 0, cap = 32 + 21 * CANCELS;
	int64_t cancelled;

	o = call_within(&ds[0], cs[0],
			"{\"command\":\"submit\",\"pool\":\"slow\",\"run\":\"builtin:sleep\","
			"\"args\":{\"ms\":\"60000\"},\"count\":" STRINGIFY(CANCELS) "}",
			30000);
	assert_ok(o);
	ids = jget(o, "ids", json_type_array);
	req = malloc(cap);
	ck_assert_ptr_nonnull(req);
	len += (size_t)snprintf(req, cap, "{\"command\":\"cancel\",\"ids\":[");
	for (size_t i = 0; i < json_object_array_length(ids); i++)
		len += (size_t)snprintf(req + len, cap - len, "%s%" PRId64, i ? "," : "",
					json_object_get_int64(json_object_array_get_idx(ids, i)));
	snprintf(req + len, cap - len, "]}");
	json_object_put(o);
	o = call_within(&ds[2], cs[2], req, 30000);
	assert_ok(o);
	cancelled = (int64_t)json_object_array_length(jget(o, "cancelled", json_type_array));
	others = jget(o, "not_cancelled", json_type_array);
	ck_assert_int_eq(cancelled +
				 (int64_t)json_object_array_length(jget(o, "cancelling", json_type_array)) +
				 (int64_t)json_object_array_length(others),
			 CANCELS);
	ck_assert_int_ge(cancelled, 1); /* the queue's tail: 6 threads take a few at most */
	for (size_t i = 0; i < json_object_array_length(others); i++) {
		json_object *e = json_object_array_get_idx(others, i), *r;
		char one[96];
		int n;

		ck_assert_str_eq(jstr(e, "state"), "running");
		n = jstr(e, "node")[1] - '0';
		ck_assert_msg(n >= 0 && n < NODES && n != 2, "%s", jtext(o));
		snprintf(one, sizeof(one), "{\"command\":\"cancel\",\"ids\":[%" PRId64 "]}",
			 jint(e, "id"));
		r = call_within(&ds[n], cs[n], one, 30000);
		assert_ok(r);
		ck_assert_int_eq((int)json_object_array_length(jget(r, "cancelled", json_type_array)) +
					 (int)json_object_array_length(
						 jget(r, "cancelling", json_type_array)),
				 1);
		json_object_put(r);
	}
	json_object_put(o);
	free(req);
	wait_for(ds, NODES, CANCELS, "the jobs cancelled",
		 "SELECT count(*) FROM bulkhead.jobs WHERE state = 6");
}

/*
 * Any node accepts submits, any node waits for them: a submit on n0 (a new group, and more
 * jobs of the config's `work`), waited for on n2 by ids and on n1 by group; every job still
 * ends once, and `jobs` on n1 lists the submitted ones with the node that ran each.
 */
START_TEST(test_submit_and_wait_anywhere)
{
	struct daemon ds[NODES] = { 0 };
	struct conn c0, c1, c2;
	json_object *o, *ids, *jobs;
	int64_t first, last, first2;
	char req[256];

	start_nodes(ds, NULL);
	conn_open(&ds[0], &c0);
	conn_open(&ds[1], &c1);
	conn_open(&ds[2], &c2);
	o = call_within(&ds[0], &c0,
			"{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:sleep\","
			"\"args\":{\"ms\":\"2\"},\"count\":600}",
			30000);
	assert_ok(o);
	ids = jget(o, "ids", json_type_array);
	ck_assert_int_eq((int)json_object_array_length(ids), 600);
	first = json_object_get_int64(json_object_array_get_idx(ids, 0));
	last = json_object_get_int64(json_object_array_get_idx(ids, 599));
	/* Accepted means committed: every id is in the table when the reply comes. */
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE id BETWEEN %" PRId64
			   " AND %" PRId64,
			   first, last),
			 600);
	json_object_put(o);
	o = call_within(&ds[0], &c0, "{\"command\":\"submit\",\"group\":\"work\",\"count\":50}",
			30000);
	assert_ok(o);
	first2 = json_object_get_int64(json_object_array_get_idx(jget(o, "ids", json_type_array), 0));
	json_object_put(o);
	/* Waited for on other nodes: by ids on n2, the whole group on n1. */
	snprintf(req, sizeof(req), "{\"command\":\"wait\",\"ids\":[%" PRId64 ",%" PRId64
		 ",%" PRId64 "]}", first, last, first2);
	o = call_within(&ds[2], &c2, req, END_MS);
	assert_ok(o);
	ck_assert_msg(jbool(o, "all_expected"), "%s", jtext(o));
	ck_assert_int_eq(jint(o, "total"), 3);
	ck_assert_int_eq((int)json_object_array_length(jget(o, "jobs", json_type_array)), 3);
	ck_assert_str_eq(jstr(json_object_array_get_idx(jget(o, "jobs", json_type_array), 0),
			      "state"),
			 "done");
	json_object_put(o);
	o = call_within(&ds[1], &c1, "{\"command\":\"wait\",\"group\":\"poison\"}", END_MS);
	assert_ok(o);
	ck_assert(jbool(o, "all_expected")); /* it crashed, as its group expects */
	ck_assert_int_eq(jint(o, "total"), 1);
	json_object_put(o);
	o = call_within(&ds[1], &c1, "{\"command\":\"wait\",\"ids\":[99999999]}", 30000);
	assert_error(o, "no jobs of this store");
	json_object_put(o);
	o = call_within(&ds[1], &c1, "{\"command\":\"wait\",\"group\":\"nope\"}", 30000);
	assert_error(o, "no job group 'nope'");
	json_object_put(o);
	o = call_within(&ds[2], &c2, "{\"command\":\"jobs\",\"group\":\"nope\"}", 30000);
	assert_error(o, "no job group 'nope'");
	json_object_put(o);
	o = call_within(&ds[2], &c2, "{\"command\":\"jobs\",\"group\":\"poison\",\"state\":\"done\"}",
			30000);
	assert_ok(o); /* a group whose jobs are all filtered out: none, no error */
	ck_assert_int_eq(jint(o, "total_matching"), 0);
	json_object_put(o);
	cancel_anywhere(ds, (struct conn *[]){ &c0, &c1, &c2 });
	wait_for(ds, NODES, ALL + 650 + CANCELS, "every job ended", "SELECT count(*) FROM finals");
	/* "job": that job only, from another node than the one that accepted it. */
	snprintf(req, sizeof(req), "{\"command\":\"jobs\",\"job\":%" PRId64 "}", last);
	o = call_within(&ds[1], &c1, req, 30000);
	assert_ok(o);
	jobs = jget(o, "jobs", json_type_array);
	ck_assert_int_eq(jint(o, "total_matching"), 1);
	ck_assert_int_eq((int)json_object_array_length(jobs), 1);
	ck_assert_int_eq(jint(json_object_array_get_idx(jobs, 0), "id"), last);
	ck_assert_ptr_nonnull(jstr(json_object_array_get_idx(jobs, 0), "node"));
	json_object_put(o);
	fprintf(stderr, "submit anywhere: n0's 600 jobs ran on %ld nodes\n",
		q("SELECT count(DISTINCT node) FROM bulkhead.jobs WHERE id BETWEEN %" PRId64
		  " AND %" PRId64, first, last));
	ck_assert_int_eq(q("SELECT count(*) FROM finals"), ALL + 650 + CANCELS);
	ck_assert_int_eq(q("SELECT count(DISTINCT id) FROM finals"), ALL + 650 + CANCELS);
	ck_assert_int_eq(q("SELECT count(*) FROM rewrites"), 0);
	/* The table's text is UTF-8: an input that is not is refused whole, nothing added. */
	o = call_within(&ds[0], &c0,
			"{\"command\":\"submit\",\"group\":\"files\","
			"\"inputs\":[\"/tmp/ok\",\"/tmp/not-\xff-utf8\"]}",
			30000);
	assert_error(o, "cannot submit: Invalid or incomplete multibyte");
	json_object_put(o);
	ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.jobs WHERE input = '/tmp/ok'"), 0);
	/* A reload that adds a group would add it once per node: refused, saying why. */
	{
		char *conf = tu_read_file(ds[0].conf_path), *more = NULL;

		ck_assert_ptr_nonnull(conf);
		ck_assert_int_ge(asprintf(&more, "%s[job extra]\nrun = builtin:noop\ncount = 5\n",
					  conf), 0);
		dmn_write_config(&ds[0], more);
		o = call_within(&ds[0], &c0, "{\"command\":\"reload\"}", 30000);
		assert_error(o, "[job extra] is new: with store = postgresql:");
		json_object_put(o);
		ck_assert_int_eq(q("SELECT count(*) FROM bulkhead.groups WHERE name = 'extra'"), 0);
		free(conf);
		free(more);
	}
	conn_close(&c0);
	conn_close(&c1);
	conn_close(&c2);
	stop_nodes(ds);
}
END_TEST

/* ---- network namespaces joined by a bridge: a real link to cut ---- */

struct net {
	char br[16], ns[NODES][16], veth[NODES][16];
	char ip[16]; /* the bridge's: 10.231.N.1, N from the test's pid (runs do not meet) */
	bool up;
};

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int status;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	status = system(cmd);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void net_down(struct net *n)
{
	net_current = NULL;
	for (int i = 0; i < NODES; i++)
		sh("ip netns del %s 2>/dev/null", n->ns[i]);
	sh("ip link del %s 2>/dev/null", n->br);
}

/* What a run of this test killed by a failed assertion left: bridges and namespaces named
 * after a test process that is gone. */
static void net_remove_stale(void)
{
	sh("for b in $(ip -o link show type bridge | sed -n 's/^[0-9]*: bhb\\([0-9]*\\):.*/\\1/p'); do "
	   "kill -0 $b 2>/dev/null && continue; ip link del bhb$b; "
	   "for i in 0 1 2; do ip netns del bhn${b}_$i 2>/dev/null; done; done");
}


/*
 * A bridge (10.231.N.1/24, in the test's namespace) and a namespace per node, each joined to
 * it by a veth pair (node i: 10.231.N.1x). False, and why, where this machine cannot.
 */
static bool net_up(struct net *n, char *why, size_t size)
{
	int tag = (int)getpid();

	snprintf(n->br, sizeof(n->br), "bhb%d", tag);
	snprintf(n->ip, sizeof(n->ip), "10.231.%d.1", tag % 250);
	for (int i = 0; i < NODES; i++) {
		snprintf(n->ns[i], sizeof(n->ns[i]), "bhn%d_%d", tag, i);
		snprintf(n->veth[i], sizeof(n->veth[i]), "bhv%d_%d", tag, i);
	}
	if (sh("command -v ip >/dev/null") != 0) {
		snprintf(why, size, "no ip command (iproute2)");
		return false;
	}
	net_remove_stale();
	net_current = n;
	if (sh("ip link add %s type bridge && ip addr add %s/24 dev %s && ip link set %s up",
	       n->br, n->ip, n->br, n->br) != 0) {
		snprintf(why, size, "cannot make a bridge here (ip link add ... type bridge)");
		net_down(n);
		return false;
	}
	for (int i = 0; i < NODES; i++) {
		if (sh("ip netns add %s && ip link add %s type veth peer name eth0 netns %s && "
		       "ip link set %s master %s up && ip -n %s addr add %.*s1%d/24 dev eth0 && "
		       "ip -n %s link set eth0 up && ip -n %s link set lo up",
		       n->ns[i], n->veth[i], n->ns[i], n->veth[i], n->br, n->ns[i],
		       (int)strlen(n->ip) - 1, n->ip, i, n->ns[i], n->ns[i]) != 0) {
			snprintf(why, size, "cannot make network namespaces here (ip netns add)");
			net_down(n);
			return false;
		}
	}
	n->up = true;
	return true;
}

/*
 * The three nodes in namespaces of their own, talking TCP through the bridge to the server
 * (a TCP front of its socket on the bridge's address); n1's link taken down (its veth) past
 * its lease and brought up again: a network cut the kernel makes, not a stopped process.
 */
START_TEST(test_netns_link_down_and_up)
{
	struct daemon ds[NODES] = { 0 };
	struct net net = { 0 };
	char why[256], server[256];
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(5432) };
	pid_t proxy;
	int status, listen_fd;

	if (!net_up(&net, why, sizeof(why))) {
		fprintf(stderr, "netns link test skipped: %s\n", why);
		return;
	}
	snprintf(server, sizeof(server), "%s/.s.PGSQL.%s", getenv("PGHOST"), getenv("PGPORT"));
	/* Listening before any node starts: bound here, served by the child. */
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(listen_fd, 0);
	ck_assert_int_eq(inet_pton(AF_INET, net.ip, &addr.sin_addr), 1);
	ck_assert_int_eq(bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(listen(listen_fd, 16), 0);
	proxy = fork();
	ck_assert_int_ge(proxy, 0);
	if (proxy == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* gone with the test, even a failed one */
		pg_test_proxy_fd(listen_fd, server);
	}
	close(listen_fd);
	for (int i = 0; i < NODES; i++) {
		node_netns = net.ns[i];
		start_node(&ds[i], i, net.ip);
	}
	node_netns = NULL;
	wait_running_slow(&ds[1]);
	ck_assert_int_eq(sh("ip link set %s down", net.veth[1]), 0);
	wait_for(ds, NODES, 1, "n1's jobs taken over",
		 "SELECT (count(*) = 0)::int FROM bulkhead.jobs WHERE lease_owner = 'n1'");
	dmn_expect_stderr(&ds[1], "held here given up", END_MS);
	dmn_expect_stderr(&ds[1], "a job's lease was lost", END_MS);
	ck_assert_int_eq(sh("ip link set %s up", net.veth[1]), 0);
	wait_for(ds, NODES, ALL, "every job ended", "SELECT count(*) FROM finals");
	check_every_job_ended_once();
	ck_assert_int_ge(q("SELECT count(*) FROM takes WHERE from_node = 'n1'"), 1);
	ck_assert(!ds[1].exited);
	/* n1 renews again once its TCP connection gets through (retransmissions back off). */
	wait_for(ds, NODES, 1, "n1's heartbeat again",
		 "SELECT count(*) FROM bulkhead.nodes WHERE name = 'n1' AND heartbeat_at > "
		 "now() - interval '1 second'");
	check_status(&ds[0], NULL);
	summary("netns link down", ds);
	ck_assert_int_eq(kill(proxy, SIGKILL), 0);
	ck_assert_int_eq(waitpid(proxy, &status, 0), proxy);
	stop_nodes(ds);
	net_down(&net);
}
END_TEST

/*
 * Stores a node cannot use: a connection string libpq cannot read is a config error (78), a
 * server it cannot reach an I/O one (74); each says why, names no password, starts nothing.
 */
START_TEST(test_bad_store_settings)
{
	static const struct {
		const char *store;
		int code;
		const char *says;
	} cases[] = {
		{ "postgresql:password=s3cret nonsense", 78, "connection string: " },
		{ "postgresql:host=/nonexistent/dir password=s3cret", 74, "cannot connect" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct daemon d = { 0 };
		char conf[256];

		dmn_init(&d);
		snprintf(conf, sizeof(conf), "[supervisor]\nstore = %s\n[job a]\nrun = builtin:noop\n",
			 cases[i].store);
		dmn_write_config(&d, conf);
		dmn_start(&d, NULL);
		dmn_expect_exit(&d, cases[i].code, DMN_EXIT_MS);
		ck_assert_msg(d.err && strstr(d.err, cases[i].says) && !strstr(d.err, "s3cret"),
			      "%s: %s", cases[i].store, d.err ? d.err : "");
		dmn_free(&d);
	}
	dmn_assert_aftermath();
}
END_TEST

static Suite *pg_daemon_suite(void)
{
	Suite *s = suite_create("pg-daemon");
	TCase *tc = tcase_create("nodes");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_node_killed);
	tcase_add_test(tc, test_node_killed_and_restarted);
	tcase_add_test(tc, test_two_host_deaths);
	tcase_add_test(tc, test_link_cut_and_healed);
	tcase_add_test(tc, test_server_restart);
	tcase_add_test(tc, test_netns_link_down_and_up);
	tcase_add_test(tc, test_submit_and_wait_anywhere);
	tcase_add_test(tc, test_bad_store_settings);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dmn_run(pg_daemon_suite(), "pg-daemon");
}
