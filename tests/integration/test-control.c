/* SPDX-License-Identifier: MIT */
/*
 * The control socket end to end (docs/control-protocol.md, DESIGN §6 and §9 "Control"): a
 * real bulkheadd ($BULKHEAD_DAEMON) with real workers in a private temp dir, spoken to with
 * raw AF_UNIX stream sockets, no client library. Each test checks a part of the contract
 * (reply shapes, filters, every kind of bad input, the limits: line size, replies left
 * unread, clients at once; SO_PEERCRED, SCM_RIGHTS, reload, log-level; a client refused while
 * replies wait, a half-closed client; DESIGN §11's bounds: idle and trickle deadlines, slots
 * per uid and for root, long replies streamed with the master's memory flat, a second daemon
 * on the same socket) and then the aftermath: SIGTERM gives exit 0, no worker left, no
 * zombie, the daemon's fd count (and, where it is the point, its RssAnon) back to what it
 * was.
 *
 * Nothing sleeps to synchronise. Every wait is a poll() on a real event with a deadline: a
 * reply line, EOF on a connection, a notify datagram (READY=1), a line on the daemon's
 * stderr, its exit (pidfd), a state in /proc. Every wait also takes in the daemon's stderr and
 * notify datagrams, so the daemon never blocks on a full pipe while a test talks to it. The
 * places where time is the point and not a wait (the slow and trickling clients' pacing, the
 * CPU-time window, the windows in which a client must not be closed) say so.
 *
 * The harness (struct daemon, dmn_*) is daemonutil.c, shared with test-daemon.c: each test
 * makes a temp dir, binds an AF_UNIX datagram socket there as NOTIFY_SOCKET, starts bulkheadd
 * with RUNTIME_DIRECTORY in that dir and waits for READY=1 (which promises a bound control
 * socket). Each test process is a child subreaper, so "no worker left" means no live
 * bulkhead-worker below this test. On a failed assertion Check's fork ends with _exit(); the
 * daemon and its workers die with it (PR_SET_PDEATHSIG), and dmn_run() removes every temp
 * dir.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/control-proto.h"
#include "ctlutil.h"
#include "daemonutil.h"
#include "testutil.h"

#define WORKERS_MAX DMN_WORKERS_MAX /* workers a test looks at */
/*
 * A status while another client misbehaves must be answered while it still misbehaves: the
 * tests prove it by order (the reply comes before the misbehaving client sends its last byte,
 * reads, or is closed), with CALL_MS as the deadline. How long it took is reported, not
 * asserted: issue 11's "within 1 s" is a latency, and a loaded CI machine under ASan can stall
 * any process for a second (DESIGN's rule for tests: events and deadlines, no timings).
 */
static int64_t slowest_status_ms;
#define JOBS_MS 30000 /* a small config's jobs all ended */

/* The daemon's limits, from docs/control-protocol.md. */
#define REQUEST_MAX (64 * 1024)
#define CLIENTS_MAX 256

#define NOBODY 65534


/* ---- the daemon (daemonutil.c), as these tests use it ---- */

/* Writes the config, starts bulkheadd, waits for READY=1 and notes its workers. */
static void start_env(struct daemon *d, const char *conf, const char *const *env)
{
	dmn_init(d);
	dmn_write_config(d, conf);
	dmn_start(d, env);
	dmn_wait_ready(d);
	ck_assert_int_gt(d->n_workers, 0);
}

static void start(struct daemon *d, const char *conf)
{
	start_env(d, conf, NULL);
}

/* SIGTERM, STOPPING=1, exit 0; then no worker of it anywhere, no zombie; frees d. */
static void stop_and_free(struct daemon *d)
{
	if (slowest_status_ms)
		fprintf(stderr, "%s: slowest status %lldms\n", tcase_name(),
			(long long)slowest_status_ms);
	slowest_status_ms = 0;
	dmn_stop(d);
	ck_assert_int_eq(tu_count_workers_of(d->pid), 0);
	dmn_assert_aftermath();
	dmn_free(d);
}

/* The daemon's workers are still the very processes it had at READY=1. */
static void assert_same_workers(struct daemon *d)
{
	pid_t now[WORKERS_MAX];
	int n = tu_find_workers(d->pid, now, WORKERS_MAX);

	ck_assert_msg(n == d->n_workers && memcmp(now, d->workers, (size_t)n * sizeof(pid_t)) == 0,
		      "workers changed (%d now, %d at READY=1); %s", n, d->n_workers,
		      dmn_describe(d));
}

/* Waits (a /proc state, with a deadline) for the daemon's fd count to come down to `base`. */
static void expect_fds(struct daemon *d, int base)
{
	int64_t deadline = tu_now_ms() + CALL_MS;
	int n;

	for (;;) {
		n = dmn_count_fds(d->pid);
		if (n == base)
			break;
		ck_assert_msg(tu_ms_left(deadline) > 0,
			      "the daemon has %d fds, %d before: leaked; %s", n, base,
			      dmn_describe(d));
		dmn_pump(d, 10); /* re-read /proc between events */
	}
	/* And it stays there (not a dip between two transient fds). */
	ck_assert_int_eq(dmn_settled_fds(d), base);
}

/* CPU ticks (user + system) the process has used, from /proc/PID/stat. */
static long cpu_ticks(pid_t pid)
{
	char path[64], *text, *p;
	unsigned long utime = 0, stime = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	text = tu_read_file(path);
	ck_assert_ptr_nonnull(text);
	p = strrchr(text, ')');
	ck_assert_ptr_nonnull(p);
	/* After "pid (comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime (fields 3..15). */
	ck_assert_int_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
				&utime, &stime),
			 2);
	free(text);
	return (long)(utime + stime);
}

/*
 * CPU ticks the daemon uses in the next window_ms. A window to measure in, not a
 * synchronisation: the daemon's output is taken in meanwhile.
 */
static long ticks_in(struct daemon *d, int window_ms)
{
	int64_t end = tu_now_ms() + window_ms;
	long ticks = cpu_ticks(d->pid);

	while (tu_ms_left(end) > 0)
		dmn_pump(d, tu_ms_left(end));
	return cpu_ticks(d->pid) - ticks;
}

/* Raises this process's soft RLIMIT_NOFILE to at least n (as far as the hard limit allows). */
static void raise_nofile(rlim_t n)
{
	struct rlimit rl;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur >= n)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= n ? n : rl.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	ck_assert_msg(rl.rlim_cur >= n, "RLIMIT_NOFILE: %llu, %llu needed",
		      (unsigned long long)rl.rlim_cur, (unsigned long long)n);
}

/* A status on c: ok, within CALL_MS. Returns how long it took (and keeps the slowest). */
static int64_t prompt_status(struct daemon *d, struct conn *c)
{
	int64_t t0 = tu_now_ms(), took;
	json_object *o = call_within(d, c, "{\"command\":\"status\"}", CALL_MS);

	took = tu_now_ms() - t0;
	slowest_status_ms = took > slowest_status_ms ? took : slowest_status_ms;
	assert_ok(o);
	ck_assert_int_eq(jint(o, "pid"), d->pid);
	json_object_put(o);
	return took;
}

/* A status on a new connection, as an operator would ask: within CALL_MS. How long it took. */
static int64_t fresh_status(struct daemon *d)
{
	int64_t t0 = tu_now_ms(), took;
	struct conn c;

	conn_open(d, &c);
	prompt_status(d, &c);
	took = tu_now_ms() - t0;
	conn_close(&c);
	return took;
}

/* Whether the daemon has closed c (a hangup, seen without reading what waits in it). */
static bool conn_hung_up(struct conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLRDHUP };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP));
}

/* The daemon's anonymous resident memory (/proc/PID/status RssAnon), in KiB. */
static long rss_kb(struct daemon *d)
{
	long kb = dmn_status_kb(d->pid, "RssAnon");

	ck_assert_msg(kb >= 0, "RssAnon of %d: %s", (int)d->pid, strerror((int)-kb));
	return kb;
}

/*
 * The test/debug switch of control.c's deadlines (docs/control-protocol.md): the real ones
 * (idle 30 s, request 5 s, write 10 s) would make these tests slow.
 */
#define DEADLINES_ENV "BULKHEAD_CONTROL_DEADLINES="
#define RSS_SLACK_KB (64L * 1024) /* RssAnon growth allowed (issue 11 saw +1.3 GB) */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_SLACK_ASAN_KB (160L * 1024) /* ASan's shadow and its (shrunk) quarantine */
#else
#define RSS_SLACK_ASAN_KB 0L
#endif

static void assert_rss_flat(struct daemon *d, long base_kb, const char *when)
{
	long now = rss_kb(d);

	fprintf(stderr, "%s: RssAnon %ld kB -> %ld kB %s\n", tcase_name(), base_kb, now, when);
	ck_assert_msg(now - base_kb < RSS_SLACK_KB + RSS_SLACK_ASAN_KB,
		      "RssAnon grew from %ld kB to %ld kB %s; %s", base_kb, now, when,
		      dmn_describe(d));
}

/*
 * A reply line is exactly what json-c prints for the object it holds (JSON_C_TO_STRING_PLAIN),
 * as when the daemon built every reply whole: a streamed reply must not differ by a byte.
 */
static void assert_plain_json(const char *line)
{
	json_object *o = parse_reply(line);
	const char *again = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	size_t at = 0;

	while (line[at] && line[at] == again[at])
		at++;
	ck_assert_msg(!line[at] && !again[at],
		      "the reply differs from json-c's text at byte %zu: ...%.80s... against "
		      "...%.80s...",
		      at, line + (at > 40 ? at - 40 : 0), again + (at > 40 ? at - 40 : 0));
	json_object_put(o);
}

/* Checks status.jobs: every count there, none negative, adding up to total; returns it. */
static json_object *checked_counts(json_object *status)
{
	static const char *const counts[] = { "queued",	 "running",   "done",	   "failed",
					      "crashed", "timed_out", "cancelled", "lost" };
	json_object *jobs = jget(status, "jobs", json_type_object);
	int64_t sum = 0;

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		int64_t n = jint(jobs, counts[i]);

		ck_assert_msg(n >= 0, "%s < 0: %s", counts[i], jtext(jobs));
		sum += n;
	}
	ck_assert_msg(sum == jint(jobs, "total"), "the counts do not add up: %s", jtext(jobs));
	ck_assert_msg(jint(jobs, "lost") == 0, "jobs lost: %s", jtext(jobs));
	ck_assert_int_eq(json_object_object_length(jobs), 9);
	return jobs;
}

/* Asks for status on c until jobs.<state> is n (every reply's counts checked). */
static json_object *wait_jobs(struct daemon *d, struct conn *c, const char *state, int64_t n)
{
	int64_t deadline = tu_now_ms() + JOBS_MS;

	for (;;) {
		json_object *o = call(d, c, "{\"command\":\"status\"}");
		json_object *jobs;

		assert_ok(o);
		jobs = checked_counts(o);
		if (jint(jobs, state) == n)
			return o;
		ck_assert_msg(tu_ms_left(deadline) > 0, "never %lld %s: %s; %s", (long long)n,
			      state, jtext(jobs), dmn_describe(d));
		json_object_put(o);
		dmn_pump(d, 20); /* between two looks at a state, taking in the daemon's output */
	}
}

static bool is_one_of(pid_t pid, const pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

/* xorshift64*: the same "random" bytes every run. */
static uint64_t prng(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 2685821657736338717ULL;
}

#define SMALL_CONF "[pool main]\nworkers = 2\nthreads = 2\n"

/* ---- 1. status ---- */

START_TEST(test_status_reply)
{
	static const char *const pool_keys[] = { "name",	   "state",   "workers_up",
						 "workers_wanted", "threads", "restarts",
						 "worker_faults",  "workers" };
	struct daemon d;
	struct conn c;
	json_object *o, *jobs, *workers, *pools, *id;
	pid_t seen[WORKERS_MAX];
	int n_seen = 0;

	start(&d, "[pool main]\nworkers = 2\nthreads = 2\n"
		  "[pool side]\nworkers = 1\nthreads = 3\n"
		  "[job quick]\nrun = builtin:noop\ncount = 20\n");
	ck_assert_int_eq(d.n_workers, 3);
	conn_open(&d, &c);
	json_object_put(wait_jobs(&d, &c, "done", 20));

	o = call(&d, &c, "{\"command\":\"status\",\"id\":\"abc\"}");
	assert_ok(o);
	ck_assert_str_eq(jstr(o, "id"), "abc");
	ck_assert_str_eq(jstr(o, "version"), BULKHEAD_VERSION);
	ck_assert_int_eq(jint(o, "protocol"), CONTROL_PROTOCOL_VERSION);
	ck_assert_int_eq(jint(o, "pid"), d.pid);
	{
		char host[256] = "";

		ck_assert_int_eq(gethostname(host, sizeof(host) - 1), 0);
		ck_assert_str_eq(jstr(o, "node"), host); /* no [supervisor] node: the host's */
	}
	ck_assert_msg(jdouble(o, "uptime_seconds") >= 0 && jdouble(o, "uptime_seconds") < 3600,
		      "%s", jtext(o));
	ck_assert(jbool(o, "ready"));
	ck_assert(!jbool(o, "stopping"));

	jobs = checked_counts(o);
	ck_assert_int_eq(jint(jobs, "total"), 20);
	ck_assert_int_eq(jint(jobs, "done"), 20);

	workers = jget(o, "workers", json_type_object);
	ck_assert_int_ge(jint(workers, "started"), 3);
	ck_assert_int_eq(jint(workers, "restarts"), 0);
	ck_assert_int_eq(jint(workers, "worker_faults"), 0);
	ck_assert_int_eq(json_object_object_length(jget(workers, "deaths", json_type_object)), 0);

	pools = jget(o, "pools", json_type_array);
	ck_assert_int_eq(json_object_array_length(pools), 2);
	for (size_t i = 0; i < 2; i++) {
		json_object *p = json_object_array_get_idx(pools, i), *ws;
		int64_t wanted = i == 0 ? 2 : 1;

		ck_assert(json_object_is_type(p, json_type_object));
		for (size_t k = 0; k < sizeof(pool_keys) / sizeof(pool_keys[0]); k++)
			ck_assert_msg(json_object_object_get_ex(p, pool_keys[k], NULL),
				      "pool without %s: %s", pool_keys[k], jtext(p));
		ck_assert_str_eq(jstr(p, "name"), i == 0 ? "main" : "side");
		ck_assert_str_eq(jstr(p, "state"), "up");
		ck_assert_int_eq(jint(p, "workers_up"), wanted);
		ck_assert_int_eq(jint(p, "workers_wanted"), wanted);
		ck_assert_int_eq(jint(p, "threads"), i == 0 ? 2 : 3);
		ck_assert_int_eq(jint(p, "restarts"), 0);
		ck_assert_int_eq(jint(p, "worker_faults"), 0);
		ws = jget(p, "workers", json_type_array);
		ck_assert_int_eq(json_object_array_length(ws), wanted);
		for (size_t k = 0; k < (size_t)wanted; k++) {
			json_object *w = json_object_array_get_idx(ws, k);
			pid_t pid = (pid_t)jint(w, "pid");

			ck_assert_int_eq(jint(w, "slot"), (int64_t)k);
			ck_assert_msg(
				is_one_of(pid, d.workers, d.n_workers) &&
					!is_one_of(pid, seen, n_seen),
				"worker pid %d is not one of the daemon's (or seen twice): %s",
				(int)pid, jtext(o));
			seen[n_seen++] = pid;
			ck_assert_str_eq(jstr(w, "state"), "ready");
			ck_assert(jdouble(w, "uptime_seconds") >= 0);
			ck_assert_int_eq(jint(w, "jobs_running"), 0);
			ck_assert_str_eq(jstr(w, "last_death"), "");
		}
	}
	json_object_put(o);

	/* Any JSON value is echoed as the id, on errors too. */
	o = call(&d, &c, "{\"id\":{\"a\":[1,2,{\"b\":null}]},\"command\":\"status\"}");
	id = json_tokener_parse("{\"a\":[1,2,{\"b\":null}]}");
	ck_assert_msg(json_object_equal(jget(o, "id", json_type_object), id), "%s", jtext(o));
	json_object_put(id);
	json_object_put(o);
	o = call(&d, &c, "{\"command\":\"frobnicate\",\"id\":-7}");
	assert_error(o, "unknown command");
	ck_assert_int_eq(jint(o, "id"), -7);
	json_object_put(o);
	o = call(&d, &c, "{\"command\":\"status\"}");
	ck_assert_msg(!json_object_object_get_ex(o, "id", NULL), "an id from nowhere: %s",
		      jtext(o));
	json_object_put(o);

	/* Three requests in one write: three replies, in order. */
	{
		static const char three[] = "{\"command\":\"status\",\"id\":1}\n"
					    "{\"command\":\"jobs\",\"id\":2,\"limit\":1}\n"
					    "{\"command\":\"nope\",\"id\":3}\n";

		conn_send_ok(&d, &c, three, sizeof(three) - 1);
		for (int i = 1; i <= 3; i++) {
			char *line = conn_line(&d, &c, CALL_MS);

			ck_assert_msg(line, "reply %d of 3 missing; %s", i, dmn_describe(&d));
			o = parse_reply(line);
			free(line);
			ck_assert_msg(jint(o, "id") == i, "reply %d out of order: %s", i, jtext(o));
			if (i == 1)
				checked_counts(o);
			if (i == 2)
				ck_assert_int_eq(
					json_object_array_length(jget(o, "jobs", json_type_array)),
					1);
			if (i == 3)
				assert_error(o, "unknown command 'nope'");
			else
				assert_ok(o);
			json_object_put(o);
		}
	}
	conn_close(&c);
	stop_and_free(&d);
}
END_TEST

/* ---- 2. jobs ---- */

START_TEST(test_jobs_filters)
{
	static const struct {
		const char *req, *error;
	} bad[] = {
		{ "{\"command\":\"jobs\",\"state\":\"bogus\"}", "unknown state 'bogus'" },
		{ "{\"command\":\"jobs\",\"state\":5}", "must be a string" },
		{ "{\"command\":\"jobs\",\"group\":\"nosuch\"}", "no job group 'nosuch'" },
		{ "{\"command\":\"jobs\",\"group\":[\"segv\"]}", "must be a string" },
		{ "{\"command\":\"jobs\",\"limit\":0}", "limit must be" },
		{ "{\"command\":\"jobs\",\"limit\":-1}", "limit must be" },
		{ "{\"command\":\"jobs\",\"limit\":100001}", "limit must be" },
		{ "{\"command\":\"jobs\",\"limit\":\"1\"}", "limit must be" },
		{ "{\"command\":\"jobs\",\"limit\":1.5}", "limit must be" },
	};
	struct daemon d;
	struct conn c;
	json_object *o, *a, *j, *deaths;

	start(&d, "[pool main]\nworkers = 1\nthreads = 1\n"
		  "[pool quick]\nworkers = 1\nthreads = 2\n"
		  "[job segv]\nrun = builtin:segv\nexpect = crashed\nmax_attempts = 2\n"
		  "[job quick]\npool = quick\nrun = builtin:noop\ncount = 5\n");
	conn_open(&d, &c);
	json_object_put(wait_jobs(&d, &c, "done", 5));
	o = wait_jobs(&d, &c, "crashed", 1);
	/* Its first crash killed its worker; its retry ran alone, contained: no death. */
	deaths = jget(jget(o, "workers", json_type_object), "deaths", json_type_object);
	ck_assert_msg(jint(deaths, "SIGSEGV") == 1 &&
			      jint(jget(o, "workers", json_type_object), "contained_crashes") == 1,
		      "%s", jtext(o));
	json_object_put(o);

	/* Exactly segv#1, crashed twice by SIGSEGV. */
	o = call(&d, &c, "{\"command\":\"jobs\",\"state\":\"crashed\"}");
	assert_ok(o);
	ck_assert_int_eq(jint(o, "total_matching"), 1);
	a = jget(o, "jobs", json_type_array);
	ck_assert_int_eq(json_object_array_length(a), 1);
	j = json_object_array_get_idx(a, 0);
	ck_assert_int_eq(jint(j, "id"), 1);
	ck_assert_str_eq(jstr(j, "name"), "segv#1");
	ck_assert_str_eq(jstr(j, "group"), "segv");
	ck_assert_str_eq(jstr(j, "pool"), "main");
	ck_assert_str_eq(jstr(j, "state"), "crashed");
	ck_assert_int_eq(jint(j, "attempts"), 2);
	ck_assert_int_eq(jint(j, "runs"), 2);
	ck_assert_str_eq(jstr(j, "cause"), "SIGSEGV");
	ck_assert_str_eq(jstr(j, "worker"), "");
	json_object_put(o);

	/* The same job by its group. */
	o = call(&d, &c, "{\"command\":\"jobs\",\"group\":\"segv\"}");
	assert_ok(o);
	ck_assert_int_eq(jint(o, "total_matching"), 1);
	ck_assert_str_eq(
		jstr(json_object_array_get_idx(jget(o, "jobs", json_type_array), 0), "name"),
		"segv#1");
	json_object_put(o);

	/* limit cuts the list, not the count. */
	o = call(&d, &c, "{\"command\":\"jobs\",\"limit\":1}");
	assert_ok(o);
	ck_assert_int_eq(jint(o, "total_matching"), 6);
	a = jget(o, "jobs", json_type_array);
	ck_assert_int_eq(json_object_array_length(a), 1);
	ck_assert_int_eq(jint(json_object_array_get_idx(a, 0), "id"), 1);
	json_object_put(o);

	/* Both filters and a limit; id order. */
	o = call(&d, &c,
		 "{\"command\":\"jobs\",\"state\":\"done\",\"group\":\"quick\",\"limit\":2}");
	assert_ok(o);
	ck_assert_int_eq(jint(o, "total_matching"), 5);
	a = jget(o, "jobs", json_type_array);
	ck_assert_int_eq(json_object_array_length(a), 2);
	ck_assert_int_eq(jint(json_object_array_get_idx(a, 0), "id"), 2);
	ck_assert_str_eq(jstr(json_object_array_get_idx(a, 0), "name"), "quick#1");
	ck_assert_int_eq(jint(json_object_array_get_idx(a, 1), "id"), 3);
	json_object_put(o);

	/* No filter: all of them, in id order; the largest limit is fine. */
	o = call(&d, &c, "{\"command\":\"jobs\",\"limit\":100000}");
	assert_ok(o);
	a = jget(o, "jobs", json_type_array);
	ck_assert_int_eq(jint(o, "total_matching"), 6);
	ck_assert_int_eq(json_object_array_length(a), 6);
	for (size_t i = 0; i < 6; i++)
		ck_assert_int_eq(jint(json_object_array_get_idx(a, i), "id"), (int64_t)i + 1);
	json_object_put(o);

	/* A filter nothing matches. */
	o = call(&d, &c, "{\"command\":\"jobs\",\"state\":\"queued\"}");
	assert_ok(o);
	ck_assert_int_eq(jint(o, "total_matching"), 0);
	ck_assert_int_eq(json_object_array_length(jget(o, "jobs", json_type_array)), 0);
	json_object_put(o);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		call_error(&d, &c, bad[i].req, bad[i].error);
	prompt_status(&d, &c);
	conn_close(&c);
	stop_and_free(&d);
}
END_TEST

/*
 * One client pipelines far more requests than one read takes (several times
 * CONTROL_REQUEST_MAX, with replies beyond CONTROL_OUTPUT_MAX), reading its replies as they
 * come: every request is answered, in order. The daemon reads clients edge-triggered, so
 * input it left in the socket when its buffer was full must be read without a new edge.
 */
START_TEST(test_pipelined_beyond_one_read)
{
	enum { REQUESTS = 12000 };
	static const char req[] = "{\"command\":\"nosuch\"}\n";
	size_t len = REQUESTS * (sizeof(req) - 1), sent = 0;
	char *all = malloc(len);
	int64_t deadline;
	struct daemon d;
	struct conn c;
	int replies = 0;

	ck_assert_ptr_nonnull(all);
	for (int i = 0; i < REQUESTS; i++)
		memcpy(all + (size_t)i * (sizeof(req) - 1), req, sizeof(req) - 1);
	start(&d, SMALL_CONF);
	conn_open(&d, &c);
	deadline = tu_now_ms() + 60000;
	while (replies < REQUESTS) {
		struct pollfd pfd = { .fd = c.fd, .events = POLLIN | (sent < len ? POLLOUT : 0) };
		char *line;

		ck_assert_msg(tu_ms_left(deadline) > 0, "%d of %d replies, %zu of %zu bytes sent; %s",
			      replies, REQUESTS, sent, len, dmn_describe(&d));
		dmn_poll(&d, &pfd, 1, tu_ms_left(deadline));
		if (pfd.revents & POLLOUT) {
			ssize_t n = send(c.fd, all + sent, len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);

			ck_assert_msg(n > 0 || errno == EAGAIN, "send: %s", strerror(errno));
			sent += n > 0 ? (size_t)n : 0;
		}
		conn_fill(&c);
		while ((line = conn_take_line(&c))) {
			json_object *o = parse_reply(line);

			assert_error(o, "unknown command");
			json_object_put(o);
			free(line);
			replies++;
		}
		ck_assert_msg(!c.eof, "closed after %d replies; %s", replies, dmn_describe(&d));
	}
	free(all);
	conn_close(&c);
	stop_and_free(&d);
}
END_TEST

/* ---- 3. bad input ---- */

START_TEST(test_bad_requests_keep_connection)
{
	static const struct {
		const char *req, *error;
	} bad[] = {
		{ "{\"command\":\"sta", "not a JSON object on one line" },
		{ "", "not a JSON object on one line" },
		{ "   ", "not a JSON object on one line" },
		{ "{\"command\":\"status\"} x", "not a JSON object on one line" },
		{ "{\"command\":\"status\"}{\"command\":\"status\"}", "not a JSON object" },
		{ "[\"status\"]", "a request is a JSON object" },
		{ "[{\"command\":\"status\"}]", "a request is a JSON object" },
		{ "42", "JSON object" }, /* json-c cannot end a number at the end of the input */
		{ "\"status\"", "a request is a JSON object" },
		{ "null", "JSON object" },
		{ "{}", "needs \"command\"" },
		{ "{\"id\":1}", "needs \"command\"" },
		{ "{\"command\":42}", "needs \"command\": a string" },
		{ "{\"command\":null}", "needs \"command\": a string" },
		{ "{\"command\":[\"status\"]}", "needs \"command\": a string" },
		{ "{\"command\":\"frobnicate\"}", "unknown command 'frobnicate'" },
		{ "{\"command\":\"STATUS\"}", "unknown command" },
		{ "{\"command\":\"\"}", "unknown command" },
		/* Commands without what they need. */
		{ "{\"command\":\"inject\"}", "inject needs" },
		{ "{\"command\":\"inject\",\"id\":3}", "inject needs" },
		{ "{\"command\":\"inject\",\"target\":\"main\",\"fault\":\"boom\"}",
		  "unknown fault 'boom'" },
		{ "{\"command\":\"inject\",\"target\":\"nope\",\"fault\":\"segv\"}",
		  "no pool or worker 'nope'" },
		{ "{\"command\":\"submit\"}", "submit needs" },
		{ "{\"command\":\"submit\",\"group\":\"nosuch\"}", "nosuch" },
		{ "{\"command\":\"wait\"}", "\"ids\" must be an array" },
		{ "{\"command\":\"wait\",\"ids\":[]}", "between 1 and" },
		{ "{\"command\":\"wait\",\"ids\":[999999]}", "no job with id 999999" },
		{ "{\"command\":\"cancel\",\"ids\":\"1\"}", "\"ids\" must be an array" },
		{ "{\"command\":\"restart\"}", "restart needs \"target\"" },
		{ "{\"command\":\"restart\",\"target\":\"nosuch\"}", "no pool or worker" },
		{ "{\"command\":\"log-level\"}", "log-level needs" },
	};
	struct daemon d;
	struct conn c;
	uint64_t seed = 0x5eed0fb01c4eadULL;
	char *buf, *nested;
	size_t len = 0, lines = 0;

	start(&d, SMALL_CONF);
	conn_open(&d, &c);

	/* 200 lines of random bytes (any of the 256), each ending in '\n'; a '\n' among them
	 * makes one more (maybe empty) line: every line gets its own error reply, in order. */
	buf = malloc(200 * 201);
	ck_assert_ptr_nonnull(buf);
	for (int i = 0; i < 200; i++) {
		size_t n = prng(&seed) % 200;

		for (size_t k = 0; k < n; k++)
			buf[len++] = (char)(prng(&seed) >> 56);
		buf[len++] = '\n';
	}
	for (size_t i = 0; i < len; i++)
		lines += buf[i] == '\n';
	ck_assert_uint_gt(lines, 200);
	conn_send_ok(&d, &c, buf, len);
	free(buf);
	for (size_t i = 0; i < lines; i++) {
		char *line = conn_line(&d, &c, CALL_MS);
		json_object *o;

		ck_assert_msg(line, "reply %zu of %zu to random lines missing (%s); %s", i + 1,
			      lines, c.eof ? "closed" : "timed out", dmn_describe(&d));
		o = parse_reply(line);
		free(line);
		ck_assert_msg(!jbool(o, "ok") && *jstr(o, "error"), "%s", jtext(o));
		json_object_put(o);
	}
	prompt_status(&d, &c);

	/* Each kind of malformed request: an error, the connection stays, the next works. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		call_error(&d, &c, bad[i].req, bad[i].error);
		prompt_status(&d, &c);
	}

	/* Nested past json-c's depth limit. */
	nested = malloc(20001);
	ck_assert_ptr_nonnull(nested);
	memset(nested, '[', 10000);
	memset(nested + 10000, ']', 10000);
	nested[20000] = '\0';
	call_error(&d, &c, nested, "");
	free(nested);
	prompt_status(&d, &c);

	/* A request split over many writes is one request. */
	{
		static const char req[] = "{\"command\":\"status\",\"id\":\"split\"}\n";
		json_object *o;
		char *line;

		for (size_t i = 0; i < sizeof(req) - 1; i += 5)
			conn_send_ok(&d, &c, req + i,
				     sizeof(req) - 1 - i < 5 ? sizeof(req) - 1 - i : 5);
		line = conn_line(&d, &c, CALL_MS);
		ck_assert_ptr_nonnull(line);
		o = parse_reply(line);
		free(line);
		assert_ok(o);
		ck_assert_str_eq(jstr(o, "id"), "split");
		json_object_put(o);
	}
	ck_assert_msg(!c.eof, "the daemon closed the connection; %s", dmn_describe(&d));
	conn_close(&c);
	assert_same_workers(&d);
	stop_and_free(&d);
}
END_TEST

START_TEST(test_request_size_limit)
{
	static const char head[] = "{\"command\":\"status\",\"id\":\"";
	struct daemon d;
	struct conn c;
	json_object *o;
	char *buf, *line;
	size_t len;

	start(&d, SMALL_CONF);
	conn_open(&d, &c);

	/* A line of exactly 64 KiB (without its '\n') is still a request. */
	len = REQUEST_MAX;
	buf = malloc(len + 1);
	ck_assert_ptr_nonnull(buf);
	memcpy(buf, head, sizeof(head) - 1);
	memset(buf + sizeof(head) - 1, 'p', len - (sizeof(head) - 1) - 2);
	memcpy(buf + len - 2, "\"}", 2);
	buf[len] = '\n';
	conn_send_ok(&d, &c, buf, len + 1);
	free(buf);
	line = conn_line(&d, &c, CALL_MS);
	ck_assert_msg(line, "no reply to a 64 KiB request; %s", dmn_describe(&d));
	o = parse_reply(line);
	free(line);
	assert_ok(o);
	ck_assert_uint_eq(strlen(jstr(o, "id")), REQUEST_MAX - (sizeof(head) - 1) - 2);
	json_object_put(o);
	prompt_status(&d, &c);

	/* 100 000 bytes and no '\n': "request too long", then the daemon closes. The bytes it
	 * did not read make our read end in ECONNRESET rather than a plain EOF; both are fine. */
	len = 100000;
	buf = malloc(len);
	ck_assert_ptr_nonnull(buf);
	memset(buf, 'x', len);
	{
		int r = conn_send(&d, &c, buf, len, CALL_MS);

		ck_assert_msg(r == 0 || r == -EPIPE || r == -ECONNRESET, "send: %s", strerror(-r));
	}
	free(buf);
	line = conn_line(&d, &c, CALL_MS);
	ck_assert_msg(line, "no reply to an oversized request (%s); %s",
		      c.eof ? "closed" : "timed out", dmn_describe(&d));
	o = parse_reply(line);
	free(line);
	assert_error(o, "request too long");
	ck_assert_int_eq(json_object_object_length(o), 2);
	json_object_put(o);
	ck_assert_msg(conn_wait_eof(&d, &c, CALL_MS), "not closed after \"request too long\"; %s",
		      dmn_describe(&d));
	ck_assert_msg(c.error == 0 || c.error == ECONNRESET, "read: %s", strerror(c.error));
	ck_assert_msg(c.len == 0, "more after \"request too long\": %.*s", (int)c.len, c.in);
	conn_close(&c);

	/* The daemon is fine: a new connection works. */
	conn_open(&d, &c);
	prompt_status(&d, &c);
	conn_close(&c);
	assert_same_workers(&d);
	stop_and_free(&d);
}
END_TEST

/* ---- 4. slow client ---- */

START_TEST(test_slow_client)
{
	static const char req[] = "{\"command\":\"status\",\"id\":\"slow-client-abcdefgh\"}\n";
	/* No request deadline to trip however slowly the statuses between the bytes go. */
	const char *env[] = { DEADLINES_ENV "request=10min", NULL };
	const size_t len = sizeof(req) - 1;
	struct daemon d;
	struct conn slow, fast;
	int64_t worst = 0, t0;
	json_object *o;
	char *line;

	start_env(&d, SMALL_CONF, env);
	conn_open(&d, &slow);
	conn_open(&d, &fast);
	t0 = tu_now_ms();
	for (size_t i = 0; i < len; i++) {
		int64_t next = tu_now_ms() + 50, took;

		conn_send_ok(&d, &slow, req + i, 1);
		/* The other client is served meanwhile: before the slow request's last byte. */
		took = prompt_status(&d, &fast);
		worst = took > worst ? took : worst;
		if (i == len - 1)
			break;
		/* The pacing clock: ~50 ms between bytes. While it runs the slow client must get
		 * nothing (no reply to half a request, no close). */
		while (tu_ms_left(next) > 0) {
			struct pollfd p = { .fd = slow.fd, .events = POLLIN };

			dmn_poll(&d, &p, 1, tu_ms_left(next));
			ck_assert_msg(!p.revents,
				      "the slow client got something after %zu bytes; %s", i + 1,
				      dmn_describe(&d));
		}
	}
	ck_assert_msg(tu_now_ms() - t0 >= 2000, "the slow request took only %lldms",
		      (long long)(tu_now_ms() - t0));
	line = conn_line(&d, &slow, CALL_MS);
	ck_assert_msg(line, "the slow client never got its reply; %s", dmn_describe(&d));
	o = parse_reply(line);
	free(line);
	assert_ok(o);
	ck_assert_str_eq(jstr(o, "id"), "slow-client-abcdefgh");
	json_object_put(o);
	fprintf(stderr, "test_slow_client: slowest status %lldms\n", (long long)worst);
	conn_close(&slow);
	conn_close(&fast);
	stop_and_free(&d);
}
END_TEST

/* ---- 5. a client that never reads ---- */

START_TEST(test_client_never_reads)
{
	enum { BATCH = 256, WRITE_MS = 2000 };
	static const char one[] = "{\"command\":\"status\"}\n";
	const char *env[] = { DEADLINES_ENV "write=2s", NULL };
	struct daemon d;
	struct conn hog, fast;
	char *batch;
	size_t sent = 0;
	int base, r = 0;
	long rss0;
	int64_t deadline, stalled = 0;
	int served_stalled = 0;

	start_env(&d, "[pool main]\nworkers = 3\nthreads = 2\n", env);
	/* Warm up (anything the daemon allocates lazily on its first client), then count. */
	conn_open(&d, &fast);
	prompt_status(&d, &fast);
	conn_close(&fast);
	base = dmn_settled_fds(&d);
	rss0 = rss_kb(&d);

	conn_open(&d, &hog);
	batch = malloc(BATCH * (sizeof(one) - 1));
	ck_assert_ptr_nonnull(batch);
	for (int i = 0; i < BATCH; i++)
		memcpy(batch + i * (sizeof(one) - 1), one, sizeof(one) - 1);
	/*
	 * Pipeline status requests and never read. Once about 64 KiB of replies wait, the daemon
	 * reads no more requests (so our sends stall), and the write deadline then drops the
	 * client, which we see as EPIPE. Other clients are served throughout.
	 */
	deadline = tu_now_ms() + 30000;
	while (r == 0 || r == -ETIMEDOUT) {
		ck_assert_msg(
			tu_ms_left(deadline) > 0,
			"the daemon neither read nor dropped the client after %zu requests; %s",
			sent, dmn_describe(&d));
		r = conn_send(&d, &hog, batch, BATCH * (sizeof(one) - 1), 200);
		if (r == 0)
			sent += BATCH;
		if (r == -ETIMEDOUT && !stalled)
			stalled = tu_now_ms();
		fresh_status(&d);
		/* Answered while the daemon holds replies the hog does not read. */
		served_stalled += stalled && !conn_hung_up(&hog);
	}
	free(batch);
	ck_assert_msg(r == -EPIPE || r == -ECONNRESET, "send: %s", strerror(-r));
	ck_assert_msg(stalled && tu_now_ms() - stalled >= WRITE_MS - 250,
		      "dropped %lldms after the daemon stopped reading",
		      (long long)(stalled ? tu_now_ms() - stalled : -1));
	ck_assert_msg(served_stalled > 0, "no status answered while the hog was held; %s",
		      dmn_describe(&d));
	/* Far fewer than the 4 MiB of replies that used to pile up (each is ~600 bytes). */
	ck_assert_msg(sent <= 20000, "%zu requests taken in", sent);
	dmn_expect_stderr(&d, "does not read its replies: closed", CALL_MS);
	fresh_status(&d);
	conn_close(&hog);
	expect_fds(&d, base);
	assert_rss_flat(&d, rss0, "after a client that never read");
	assert_same_workers(&d);
	stop_and_free(&d);
}
END_TEST

/*
 * A client refused ("request too long") while replies to it are still queued, with more of
 * its bytes unread in the socket: the daemon must wait for it to read (or for the deadline)
 * without spinning on the readable socket it no longer reads. Then the client gets every
 * reply, the refusal, and the close.
 */
START_TEST(test_refused_client_does_not_spin)
{
	enum { REQUESTS = 2000, GARBAGE = 100000 };
	static const char one[] = "{\"command\":\"status\"}\n";
	struct daemon d;
	struct conn c, fast;
	char *buf;
	size_t len = REQUESTS * (sizeof(one) - 1) + GARBAGE;
	long ticks;
	int r, n_ok = 0;
	char *line;

	start(&d, SMALL_CONF);
	conn_open(&d, &c);
	conn_open(&d, &fast);
	buf = malloc(len);
	ck_assert_ptr_nonnull(buf);
	for (int i = 0; i < REQUESTS; i++)
		memcpy(buf + (size_t)i * (sizeof(one) - 1), one, sizeof(one) - 1);
	memset(buf + REQUESTS * (sizeof(one) - 1), 'x', GARBAGE);
	r = conn_send(&d, &c, buf, len, CALL_MS);
	ck_assert_msg(r == 0, "send: %s", strerror(-r));
	free(buf);
	/* The daemon has read what it will (it stops while ~64 KiB of replies wait unread)
	 * once it answers a later client. */
	prompt_status(&d, &fast);
	prompt_status(&d, &fast);

	/* Spinning would use ~100 ticks a second; idle is ~0. */
	ticks = ticks_in(&d, 1000);
	ck_assert_msg(ticks < 20, "the daemon used %ld ticks in 1 s holding a refused client",
		      ticks);
	prompt_status(&d, &fast);

	/* Now read: every reply in order, then the refusal, then the close. */
	for (;;) {
		json_object *o;

		line = conn_line(&d, &c, CALL_MS);
		ck_assert_msg(line, "after %d replies: %s; %s", n_ok,
			      c.eof ? "closed" : "timed out", dmn_describe(&d));
		o = parse_reply(line);
		free(line);
		if (!jbool(o, "ok")) {
			assert_error(o, "request too long");
			json_object_put(o);
			break;
		}
		n_ok++;
		json_object_put(o);
	}
	ck_assert_int_eq(n_ok, REQUESTS);
	ck_assert_msg(conn_wait_eof(&d, &c, CALL_MS), "not closed; %s", dmn_describe(&d));
	conn_close(&c);
	conn_close(&fast);
	assert_same_workers(&d);
	stop_and_free(&d);
}
END_TEST

/*
 * A client that sends its requests and shuts down its writing side (as `socat` or `nc -U` do)
 * still gets every reply, then the close; a pending `wait` included. A waiting client that
 * goes away entirely is dropped at once.
 */
START_TEST(test_half_closed_client_gets_replies)
{
	static const char two[] = "{\"command\":\"status\",\"id\":1}\n"
				  "{\"command\":\"jobs\",\"id\":2}\n";
	static const char waiting[] = "{\"command\":\"wait\",\"group\":\"nap\",\"id\":1}\n"
				      "{\"command\":\"status\",\"id\":2}\n";
	static const char wait_long[] = "{\"command\":\"wait\",\"group\":\"long\"}\n";
	struct daemon d;
	struct conn c, other;
	json_object *o;
	char *line;
	int base;
	long ticks;

	/* drain_timeout: the 20 s job must not hold up the SIGTERM at the end. */
	start(&d, "[supervisor]\ndrain_timeout = 100ms\n" SMALL_CONF
		  "[job nap]\nrun = builtin:sleep\nargs = ms=400\ncount = 2\n"
		  "[job long]\nrun = builtin:sleep\nargs = ms=20000\n");
	for (int round = 0; round < 20; round++) {
		conn_open(&d, &c);
		conn_send_ok(&d, &c, two, sizeof(two) - 1);
		ck_assert_int_eq(shutdown(c.fd, SHUT_WR), 0);
		for (int i = 1; i <= 2; i++) {
			line = conn_line(&d, &c, CALL_MS);
			ck_assert_msg(line, "round %d: reply %d missing (%s); %s", round, i,
				      c.eof ? "closed" : "timed out", dmn_describe(&d));
			o = parse_reply(line);
			free(line);
			assert_ok(o);
			ck_assert_int_eq(jint(o, "id"), i);
			json_object_put(o);
		}
		ck_assert_msg(conn_wait_eof(&d, &c, CALL_MS), "round %d: not closed; %s", round,
			      dmn_describe(&d));
		conn_close(&c);
	}

	/* A wait, a status behind it, then the half-close: both replies in order, then EOF. */
	conn_open(&d, &c);
	conn_send_ok(&d, &c, waiting, sizeof(waiting) - 1);
	ck_assert_int_eq(shutdown(c.fd, SHUT_WR), 0);
	line = conn_line(&d, &c, JOBS_MS);
	ck_assert_msg(line, "no wait reply (%s); %s", c.eof ? "closed" : "timed out",
		      dmn_describe(&d));
	o = parse_reply(line);
	free(line);
	assert_ok(o);
	ck_assert_int_eq(jint(o, "id"), 1);
	ck_assert(jbool(o, "all_expected"));
	ck_assert_int_eq(json_object_array_length(jget(o, "jobs", json_type_array)), 2);
	json_object_put(o);
	line = conn_line(&d, &c, CALL_MS);
	ck_assert_msg(line, "no status after the wait; %s", dmn_describe(&d));
	o = parse_reply(line);
	free(line);
	assert_ok(o);
	ck_assert_int_eq(jint(o, "id"), 2);
	json_object_put(o);
	ck_assert_msg(conn_wait_eof(&d, &c, CALL_MS), "not closed after the wait; %s",
		      dmn_describe(&d));
	conn_close(&c);

	/* Waiting on a job of 20 s and half-closed: held without spinning; then gone entirely:
	 * dropped at once, no fd kept. */
	base = dmn_settled_fds(&d);
	conn_open(&d, &other);
	conn_open(&d, &c);
	conn_send_ok(&d, &c, wait_long, sizeof(wait_long) - 1);
	ck_assert_int_eq(shutdown(c.fd, SHUT_WR), 0);
	prompt_status(&d, &other);
	ticks = ticks_in(&d, 500);
	ck_assert_msg(ticks < 10, "%ld ticks in 0.5 s holding a half-closed waiting client", ticks);
	ck_assert_msg(!conn_line(&d, &c, 0) && !c.eof, "the wait ended early; %s",
		      dmn_describe(&d));
	conn_close(&c);
	prompt_status(&d, &other);
	conn_close(&other);
	expect_fds(&d, base);
	stop_and_free(&d);
}
END_TEST

/* ---- 6. many clients ---- */

START_TEST(test_many_clients)
{
	enum { CLIENTS = 1000 };
	static const char req[] = "{\"command\":\"status\"}\n";
	static struct conn cs[CLIENTS];
	static struct pollfd pfd[CLIENTS];
	static size_t idx[CLIENTS];
	static bool done[CLIENTS], refused_ones[CLIENTS];
	struct daemon d;
	struct conn c;
	int base, accepted = 0, refused = 0;
	int64_t deadline;

	raise_nofile(CLIENTS + 100);
	start(&d, SMALL_CONF);
	conn_open(&d, &c);
	prompt_status(&d, &c);
	conn_close(&c);
	base = dmn_settled_fds(&d);

	/* All connect (blocking: the backlog is shorter; the daemon accepts as they come). */
	for (int i = 0; i < CLIENTS; i++)
		conn_open(&d, &cs[i]);
	/* Each asks for a status. The refused may already be closed: EPIPE is fine there. */
	for (int i = 0; i < CLIENTS; i++)
		(void)!send(cs[i].fd, req, sizeof(req) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	/* Every one gets a line: a status, or "too many clients" followed by the close. */
	deadline = tu_now_ms() + 20000;
	for (int left = CLIENTS; left > 0;) {
		size_t n = 0;

		for (int i = 0; i < CLIENTS; i++)
			if (!done[i]) {
				pfd[n] = (struct pollfd){ .fd = cs[i].fd, .events = POLLIN };
				idx[n++] = (size_t)i;
			}
		ck_assert_msg(tu_ms_left(deadline) > 0,
			      "%d clients without a reply (%d accepted, %d refused); %s", left,
			      accepted, refused, dmn_describe(&d));
		dmn_poll(&d, pfd, n, tu_ms_left(deadline));
		for (size_t k = 0; k < n; k++) {
			struct conn *cl = &cs[idx[k]];
			json_object *o;
			char *line;

			if (!pfd[k].revents)
				continue;
			conn_fill(cl);
			line = conn_take_line(cl);
			if (!line) {
				ck_assert_msg(!cl->eof, "client %zu closed without a reply; %s",
					      idx[k], dmn_describe(&d));
				continue;
			}
			o = parse_reply(line);
			free(line);
			if (jbool(o, "ok")) {
				accepted++;
			} else {
				assert_error(o, "too many clients");
				refused_ones[idx[k]] = true;
				refused++;
			}
			json_object_put(o);
			done[idx[k]] = true;
			left--;
		}
	}
	ck_assert_msg(accepted == CLIENTS_MAX && refused == CLIENTS - CLIENTS_MAX,
		      "%d accepted, %d refused", accepted, refused);
	/* The refused ones are closed; the accepted ones are not (a look, no wait). */
	for (int i = 0; i < CLIENTS; i++) {
		if (refused_ones[i]) {
			ck_assert_msg(conn_wait_eof(&d, &cs[i], CALL_MS),
				      "refused client %d not closed; %s", i, dmn_describe(&d));
		} else {
			conn_fill(&cs[i]);
			ck_assert_msg(!cs[i].eof && cs[i].len == 0,
				      "accepted client %d: closed or more data; %s", i,
				      dmn_describe(&d));
		}
	}
	for (int i = 0; i < CLIENTS; i++)
		conn_close(&cs[i]);

	/* Then: answered at once, no fd left behind, the same workers. */
	conn_open(&d, &c);
	prompt_status(&d, &c);
	conn_close(&c);
	expect_fds(&d, base);
	assert_same_workers(&d);
	stop_and_free(&d);
}
END_TEST

/* Count of `what` in text. */
static int count_in(const char *text, const char *what)
{
	int n = 0;

	for (const char *p = text; p && (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/*
 * The daemon out of descriptors (its soft RLIMIT_NOFILE lowered from outside): accept fails
 * with EMFILE. It says so once, does not spin, serves the clients it has, and takes the
 * waiting connections once descriptors are free again.
 */
START_TEST(test_out_of_descriptors)
{
	enum { SPARE = 4, CLIENTS = 60 };
	static struct conn cs[CLIENTS];
	struct rlimit old, low;
	struct daemon d;
	struct conn keep;
	long ticks;
	int base;

	start(&d, SMALL_CONF);
	fresh_status(&d);
	base = dmn_settled_fds(&d);
	conn_open(&d, &keep);
	prompt_status(&d, &keep);

	ck_assert_int_eq(prlimit(d.pid, RLIMIT_NOFILE, NULL, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)base + 1 + SPARE;
	ck_assert_int_eq(prlimit(d.pid, RLIMIT_NOFILE, &low, NULL), 0);
	/* They all get in the listen backlog (128); the daemon can take SPARE of them. */
	for (int i = 0; i < CLIENTS; i++)
		conn_open(&d, &cs[i]);
	dmn_expect_stderr(&d, "cannot accept", CALL_MS);
	ticks = ticks_in(&d, 1000); /* a retry every 100 ms is cheap; a spin is not */
	ck_assert_msg(ticks < 20, "%ld ticks in 1 s out of descriptors", ticks);
	prompt_status(&d, &keep);
	ck_assert_msg(count_in(d.err, "cannot accept") == 1, "said more than once; %s",
		      dmn_describe(&d));

	/* Descriptors back: every waiting connection is taken and answered. */
	ck_assert_int_eq(prlimit(d.pid, RLIMIT_NOFILE, &old, NULL), 0);
	for (int i = 0; i < CLIENTS; i++)
		prompt_status(&d, &cs[i]);
	dmn_expect_stderr(&d, "accepting connections again", CALL_MS);
	for (int i = 0; i < CLIENTS; i++)
		conn_close(&cs[i]);
	conn_close(&keep);
	expect_fds(&d, base);
	assert_same_workers(&d);
	stop_and_free(&d);
}
END_TEST

/* ---- 7. who may talk ---- */

START_TEST(test_unauthorized_uid)
{
	const struct group *gr = getgrnam("bulkhead");
	struct as_user nobody = { .uid = NOBODY, .gid = NOBODY, .until_eof = true };
	struct daemon d;
	struct stat st;
	char *out, expect[128];
	struct conn c;

	if (geteuid() != 0) {
		fprintf(stderr, "test_unauthorized_uid: skipped: needs root to run clients as "
				"nobody\n");
		return;
	}
	start(&d, SMALL_CONF);
	/* The socket as the daemon made it: root's, group bulkhead 0660 (0600 with no group). */
	ck_assert_int_eq(stat(d.sock_path, &st), 0);
	ck_assert_msg(S_ISSOCK(st.st_mode), "%s is not a socket", d.sock_path);
	ck_assert_int_eq(st.st_uid, 0);
	if (gr) {
		ck_assert_msg((st.st_mode & 07777) == 0660, "mode %o", st.st_mode & 07777);
		ck_assert_int_eq(st.st_gid, gr->gr_gid);
	} else {
		ck_assert_msg((st.st_mode & 07777) == 0600, "mode %o", st.st_mode & 07777);
	}

	open_path_for_others(&d);

	/* The socket's own mode keeps nobody out. */
	out = run_as(&d, &nobody);
	ck_assert_msg(strcmp(out, "connect: EACCES\n") == 0, "nobody, socket %o: %s",
		      st.st_mode & 07777, out);
	free(out);

	/* A member of the group is let in, whether the group is supplementary or primary. */
	if (gr) {
		struct as_user member = {
			.uid = NOBODY, .gid = NOBODY, .groups = &gr->gr_gid, .n_groups = 1
		};
		struct as_user primary = { .uid = NOBODY, .gid = gr->gr_gid };

		out = run_as(&d, &member);
		ck_assert_msg(strncmp(out, "connect: OK\n{\"ok\":true,", 23) == 0,
			      "nobody in group bulkhead: %s", out);
		free(out);
		out = run_as(&d, &primary);
		ck_assert_msg(strncmp(out, "connect: OK\n{\"ok\":true,", 23) == 0,
			      "nobody with gid bulkhead: %s", out);
		free(out);
	} else {
		fprintf(stderr, "test_unauthorized_uid: no group 'bulkhead' on this machine: the "
				"group member checks are skipped\n");
	}

	/* With the socket opened to all, the daemon itself refuses nobody, and says so. */
	ck_assert_int_eq(chmod(d.sock_path, 0666), 0);
	out = run_as(&d, &nobody);
	ck_assert_msg(strcmp(out, "connect: OK\n{\"ok\":false,\"error\":\"permission denied\"}\n"
				  "EOF\n") == 0,
		      "nobody, socket 0666: %s", out);
	free(out);
	snprintf(expect, sizeof(expect), "uid %d", NOBODY);
	dmn_expect_stderr(&d, "permission denied", CALL_MS);
	ck_assert_msg(
		strstr(strstr(d.err, expect) ? strstr(d.err, expect) : "", "permission denied"),
		"no log line with \"%s\" and \"permission denied\"; %s", expect, dmn_describe(&d));

	/* Root still is served. */
	conn_open(&d, &c);
	prompt_status(&d, &c);
	conn_close(&c);
	assert_same_workers(&d);
	stop_and_free(&d);
}
END_TEST

/* ---- 8. SCM_RIGHTS ---- */

START_TEST(test_fd_passing_refused)
{
	static const char req[] = "{\"command\":\"status\"}\n";
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { (void *)req, sizeof(req) - 1 };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = &control,
			     .msg_controllen = sizeof(control) };
	struct cmsghdr *cm;
	struct daemon d;
	struct conn c;
	json_object *o;
	char *line, byte;
	int base, p[2];

	start(&d, SMALL_CONF);
	conn_open(&d, &c);
	prompt_status(&d, &c);
	conn_close(&c);
	base = dmn_settled_fds(&d);

	/* Pass the write end of a pipe: its read end sees EOF once the daemon closed its copy. */
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	memset(&control, 0, sizeof(control));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &p[1], sizeof(int));
	conn_open(&d, &c);
	ck_assert_int_eq(sendmsg(c.fd, &mh, MSG_NOSIGNAL), (ssize_t)(sizeof(req) - 1));
	close(p[1]);

	line = conn_line(&d, &c, CALL_MS);
	ck_assert_msg(line, "no reply to a request with an fd; %s", dmn_describe(&d));
	o = parse_reply(line);
	free(line);
	assert_error(o, "file descriptors are not accepted");
	json_object_put(o);
	ck_assert_msg(conn_wait_eof(&d, &c, CALL_MS), "not closed; %s", dmn_describe(&d));
	ck_assert_msg(c.len == 0, "more after the refusal: %.*s", (int)c.len, c.in);
	conn_close(&c);
	{
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };

		ck_assert_msg(poll(&pfd, 1, CALL_MS) == 1 && read(p[0], &byte, 1) == 0,
			      "the daemon kept the passed fd");
	}
	close(p[0]);
	dmn_expect_stderr(&d, "passed file descriptors", CALL_MS);

	conn_open(&d, &c);
	prompt_status(&d, &c);
	conn_close(&c);
	expect_fds(&d, base);
	stop_and_free(&d);
}
END_TEST

/* ---- 9. reload ---- */

START_TEST(test_reload)
{
	struct daemon d;
	struct conn c;
	json_object *o;
	size_t from;

	start(&d, "[pool main]\nworkers = 2\nthreads = 1\n");
	conn_open(&d, &c);

	/* The same pool and a new job group: ok, the jobs appear, the workers stay. */
	dmn_write_config(&d, "[pool main]\nworkers = 2\nthreads = 1\n"
			     "[job hello]\nrun = builtin:noop\ncount = 3\n");
	from = d.n_notices;
	o = call(&d, &c, "{\"command\":\"reload\",\"id\":\"r1\"}");
	assert_ok(o);
	ck_assert_str_eq(jstr(o, "id"), "r1");
	json_object_put(o);
	dmn_expect_notice(&d, dmn_expect_notice(&d, from, "RELOADING=1", CALL_MS) + 1, "READY=1",
			  CALL_MS);
	dmn_expect_stderr(&d, "job group hello: added by the reload: 3 jobs", CALL_MS);
	o = wait_jobs(&d, &c, "done", 3);
	ck_assert_int_eq(jint(jget(o, "jobs", json_type_object), "total"), 3);
	json_object_put(o);
	assert_same_workers(&d);

	/* A broken file: refused, the error names the file and line; nothing changes. */
	dmn_write_config(&d, "[pool main]\nworkers = 5\nthreads = lots\n"
			     "[job hello]\nrun = builtin:noop\ncount = 3\n");
	o = call(&d, &c, "{\"command\":\"reload\"}");
	assert_error(o, "test.conf:3:");
	ck_assert_msg(strstr(jstr(o, "error"), "threads"), "%s", jtext(o));
	json_object_put(o);
	o = call(&d, &c, "{\"command\":\"status\"}");
	assert_ok(o);
	ck_assert(!jbool(o, "stopping"));
	ck_assert_int_eq(jint(json_object_array_get_idx(jget(o, "pools", json_type_array), 0),
			      "workers_wanted"),
			 2);
	json_object_put(o);
	assert_same_workers(&d);

	/* A missing file: refused too. */
	ck_assert_int_eq(unlink(d.conf_path), 0);
	call_error(&d, &c, "{\"command\":\"reload\"}", "test.conf");
	prompt_status(&d, &c);
	dmn_write_config(&d, "[pool main]\nworkers = 2\nthreads = 1\n"
			     "[job hello]\nrun = builtin:noop\ncount = 3\n");
	conn_close(&c);
	assert_same_workers(&d);
	stop_and_free(&d);
}
END_TEST

/* ---- 10. log-level ---- */

START_TEST(test_log_level)
{
	static const char *const levels[] = { "debug", "info", "notice", "warning", "err" };
	struct daemon d;
	struct conn c;
	json_object *o;

	start(&d, SMALL_CONF);
	conn_open(&d, &c);
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		char req[128];

		snprintf(req, sizeof(req), "{\"command\":\"log-level\",\"level\":\"%s\"}",
			 levels[i]);
		o = call(&d, &c, req);
		assert_ok(o);
		ck_assert_str_eq(jstr(o, "level"), levels[i]);
		json_object_put(o);
	}
	o = call(&d, &c, "{\"command\":\"log-level\",\"level\":\"debug\"}");
	assert_ok(o);
	json_object_put(o);
	dmn_expect_stderr(&d, "log level set to debug", CALL_MS);

	call_error(&d, &c, "{\"command\":\"log-level\",\"level\":\"loud\"}", "loud");
	call_error(&d, &c, "{\"command\":\"log-level\",\"level\":\"DEBUG\"}", "unknown log level");
	call_error(&d, &c, "{\"command\":\"log-level\",\"level\":3}", "log-level needs");
	call_error(&d, &c, "{\"command\":\"log-level\"}", "log-level needs");
	o = call(&d, &c, "{\"command\":\"log-level\",\"level\":\"info\"}");
	assert_ok(o);
	json_object_put(o);
	prompt_status(&d, &c);
	conn_close(&c);
	stop_and_free(&d);
}
END_TEST

/* ---- exec: jobs with inputs: the jobs view, and a cancel of running jobs ---- */

/* The `jobs` reply's entry for job id (ids are listed in order, from 1). */
static json_object *job_entry(json_object *reply, int64_t id)
{
	json_object *jobs = jget(reply, "jobs", json_type_array);

	for (size_t i = 0; i < json_object_array_length(jobs); i++)
		if (jint(json_object_array_get_idx(jobs, i), "id") == id)
			return json_object_array_get_idx(jobs, i);
	ck_abort_msg("no job %lld in %.600s", (long long)id, jtext(reply));
	return NULL;
}

START_TEST(test_exec_inputs_and_cancel_running)
{
	static const char *const names[] = { "a", "b", "c" };
	struct daemon d;
	struct conn c;
	json_object *o;
	char path[512];

	dmn_init(&d);
	snprintf(path, sizeof(path), "%s/in", d.dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/in/%s", d.dir, names[i]);
		ck_assert_int_eq(tu_write_file(path, "x\n"), 0);
	}
	dmn_write_config(&d, "[pool main]\nworkers = 1\nthreads = 2\n"
			     "[job files]\nrun = exec:/bin/sh -c 'exec sleep 300' sh {input}\n"
			     "inputs = in/*\n");
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	conn_open(&d, &c);
	json_object_put(wait_jobs(&d, &c, "running", 2));

	/* Every job shows its input; the two on threads their worker. */
	o = call(&d, &c, "{\"command\":\"jobs\"}");
	assert_ok(o);
	for (int i = 0; i < 3; i++) {
		json_object *j = job_entry(o, i + 1);

		snprintf(path, sizeof(path), "%s/in/%s", d.dir, names[i]);
		ck_assert_str_eq(jstr(j, "input"), path);
		ck_assert_str_eq(jstr(j, "state"), i < 2 ? "running" : "queued");
		ck_assert_str_eq(jstr(j, "worker"), "main/0");
		ck_assert(!json_object_object_get_ex(j, "result", NULL));
	}
	json_object_put(o);

	/* A running job told to stop: its command gets SIGTERM, and the job ends cancelled. */
	o = call(&d, &c, "{\"command\":\"cancel\",\"ids\":[1]}");
	assert_ok(o);
	ck_assert_int_eq(json_object_array_length(jget(o, "cancelling", json_type_array)), 1);
	ck_assert_int_eq(json_object_array_length(jget(o, "cancelled", json_type_array)), 0);
	json_object_put(o);
	json_object_put(wait_jobs(&d, &c, "cancelled", 1));
	o = call(&d, &c, "{\"command\":\"jobs\",\"state\":\"cancelled\"}");
	assert_ok(o);
	ck_assert_str_eq(jstr(job_entry(o, 1), "cause"), "cancelled by request");
	ck_assert_int_eq(jint(job_entry(o, 1), "attempts"), 0);
	json_object_put(o);
	/* The third takes its thread; then both go the same way. */
	json_object_put(wait_jobs(&d, &c, "running", 2));
	o = call(&d, &c, "{\"command\":\"cancel\",\"ids\":[2,3]}");
	assert_ok(o);
	ck_assert_int_eq(json_object_array_length(jget(o, "cancelling", json_type_array)), 2);
	json_object_put(o);
	json_object_put(wait_jobs(&d, &c, "cancelled", 3));
	/* Ended jobs are not cancelled again. */
	o = call(&d, &c, "{\"command\":\"cancel\",\"ids\":[1]}");
	assert_ok(o);
	ck_assert_int_eq(json_object_array_length(jget(o, "not_cancelled", json_type_array)), 1);
	json_object_put(o);
	/* It was always the same worker: the commands went, not the worker. */
	assert_same_workers(&d);
	conn_close(&c);
	stop_and_free(&d);
}
END_TEST

/* ---- plugin: results, a cancel it notices, a reload whose plugin does not load ---- */

START_TEST(test_plugin_results_cancel_and_bad_reload)
{
	const char *dir = getenv("BULKHEAD_TEST_PLUGINS");
	char conf[2048], bad[4096];
	struct daemon d;
	struct conn c;
	json_object *o, *j;

	ck_assert_ptr_nonnull(dir);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 2\n"
		 "[job res]\nrun = plugin:%s/outcomes.so:outcome\nargs = do=result text=hello\n"
		 "count = 2\n"
		 "[job wait]\nrun = plugin:%s/outcomes.so:outcome\nargs = do=cancel-wait\n",
		 dir, dir);
	start(&d, conf);
	conn_open(&d, &c);
	json_object_put(wait_jobs(&d, &c, "done", 2));
	json_object_put(wait_jobs(&d, &c, "running", 1));

	/* The last result of each job; none for the one still running. */
	o = call(&d, &c, "{\"command\":\"jobs\"}");
	assert_ok(o);
	ck_assert_str_eq(jstr(job_entry(o, 1), "result"), "hello #1");
	ck_assert_str_eq(jstr(job_entry(o, 2), "result"), "hello #2");
	j = job_entry(o, 3);
	ck_assert_str_eq(jstr(j, "state"), "running");
	ck_assert(!json_object_object_get_ex(j, "result", NULL));
	ck_assert(!json_object_object_get_ex(j, "input", NULL));
	json_object_put(o);

	/* The job sees bulkhead_job_cancelled(), returns 3: cancelled, with its result. */
	o = call(&d, &c, "{\"command\":\"cancel\",\"ids\":[3]}");
	assert_ok(o);
	ck_assert_int_eq(json_object_array_length(jget(o, "cancelling", json_type_array)), 1);
	json_object_put(o);
	json_object_put(wait_jobs(&d, &c, "cancelled", 1));
	o = call(&d, &c, "{\"command\":\"jobs\",\"group\":\"wait\"}");
	assert_ok(o);
	j = job_entry(o, 3);
	ck_assert_str_eq(jstr(j, "state"), "cancelled");
	ck_assert_str_eq(jstr(j, "result"), "cancelled");
	ck_assert_str_eq(jstr(j, "cause"), "cancelled by request");
	json_object_put(o);

	/* A reload that adds a plugin whose constructor crashes: refused, nothing changes. */
	snprintf(bad, sizeof(bad), "%s[job boom]\nrun = plugin:%s/ctor-crash.so:outcome\n", conf,
		 dir);
	dmn_write_config(&d, bad);
	o = call_within(&d, &c, "{\"command\":\"reload\"}", 30000);
	assert_error(o, "test.conf:");
	ck_assert_msg(strstr(jstr(o, "error"), "ctor-crash.so") &&
			      strstr(jstr(o, "error"), "SIGSEGV"),
		      "%s", jtext(o));
	json_object_put(o);
	o = call(&d, &c, "{\"command\":\"jobs\",\"group\":\"boom\"}");
	assert_error(o, "boom");
	json_object_put(o);
	prompt_status(&d, &c);
	assert_same_workers(&d);
	dmn_write_config(&d, conf);
	conn_close(&c);
	stop_and_free(&d);
}
END_TEST

/* ---- submitted work stays bounded (issue 11, DESIGN §11 "Ad hoc work") ---- */

/* RssAnon of pid in KiB (the heap; libraries' pages are not the daemon's growth). */
static long rss_anon_kb(pid_t pid)
{
	char path[64], *text, *p;
	long kb = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	text = tu_read_file(path);
	ck_assert_ptr_nonnull(text);
	p = strstr(text, "\nRssAnon:");
	if (p)
		kb = strtol(p + 10, NULL, 10);
	free(text);
	ck_assert_int_ge(kb, 0);
	return kb;
}

/* n submissions of cheap jobs, each of its own definition (amount = from, from + 1, ...). */
static void submit_distinct(struct daemon *d, struct conn *c, int from, int n)
{
	char req[160];

	for (int i = from; i < from + n; i++) {
		json_object *o;

		snprintf(req, sizeof(req),
			 "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:balance\","
			 "\"args\":{\"iterations\":\"1\",\"amount\":\"%d\"}}",
			 1 + i);
		o = call(d, c, req);
		assert_ok(o);
		json_object_put(o);
	}
}

/*
 * 3000 submissions, each a group of its own, with a worker crashing after every 500: every
 * new worker gets only the specs of the jobs it is given, so none is killed for "cannot send
 * job specs" and the pool stays up with both workers. Then, once the daemon is past its
 * high-water mark (keep_ended = 0: whole chunks of ended jobs go, and their groups with
 * them), 12 288 more leave the master's heap and the workers' memory where they were:
 * before, each submission cost 0.4 KB in the master and 1.15 KB in every worker, for good.
 */
START_TEST(test_submissions_stay_bounded)
{
	struct daemon d;
	struct conn c;
	json_object *o;
	pid_t w0[WORKERS_MAX], w1[WORKERS_MAX];
	long master0, master1, rss0[WORKERS_MAX];
	int n0, n1, total = 0;
	char asan[1024];
	const char *env[] = { asan, NULL };

	/* ASan keeps freed memory in a quarantine (256 MB by default): none here. */
	snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s:quarantine_size_mb=0",
		 getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "");
	start_env(&d, "[supervisor]\nkeep_ended = 0\n"
		      "[pool main]\nworkers = 2\nthreads = 1\nmin_uptime = 0\n"
		      "max_worker_faults = 3/60s\n", env);
	conn_open(&d, &c);
	for (int round = 0; round < 6; round++) {
		submit_distinct(&d, &c, total, 500);
		total += 500;
		o = call(&d, &c, "{\"command\":\"inject\",\"target\":\"main\",\"fault\":\"segv\"}");
		assert_ok(o);
		json_object_put(o);
	}
	json_object_put(wait_jobs(&d, &c, "done", total));
	o = call(&d, &c, "{\"command\":\"status\"}");
	{
		json_object *pool = json_object_array_get_idx(jget(o, "pools", json_type_array), 0);

		ck_assert_str_eq(jstr(pool, "state"), "up");
		ck_assert_int_eq(jint(pool, "worker_faults"), 0);
	}
	json_object_put(o);
	ck_assert_msg(!d.err || !strstr(d.err, "cannot send"), "%s", dmn_describe(&d));

	/* Past the high-water mark: three chunks of jobs (and their groups) came and went. */
	submit_distinct(&d, &c, total, 3 * 4096);
	total += 3 * 4096;
	json_object_put(wait_jobs(&d, &c, "done", total));
	n0 = tu_find_workers(d.pid, w0, WORKERS_MAX);
	ck_assert_int_eq(n0, 2);
	master0 = rss_anon_kb(d.pid);
	for (int i = 0; i < n0; i++)
		rss0[i] = tu_rss_kb(w0[i]);

	submit_distinct(&d, &c, total, 3 * 4096);
	total += 3 * 4096;
	json_object_put(wait_jobs(&d, &c, "done", total));
	master1 = rss_anon_kb(d.pid);
	fprintf(stderr, "submitted: master RssAnon %ld -> %ld KiB\n", master0, master1);
	ck_assert_msg(master1 < master0 + 1024, "master RssAnon %ld KiB, was %ld", master1,
		      master0);
	n1 = tu_find_workers(d.pid, w1, WORKERS_MAX);
	ck_assert_int_eq(n1, n0);
	for (int i = 0; i < n1; i++) {
		ck_assert_int_eq(w1[i], w0[i]); /* no crash in this part: the same workers */
		ck_assert_msg(tu_rss_kb(w1[i]) < rss0[i] + 1024, "worker %d: %ld KiB, was %ld",
			      (int)w1[i], tu_rss_kb(w1[i]), rss0[i]);
	}
	conn_close(&c);
	stop_and_free(&d);
}
END_TEST

/* The same submission again and again is one group (no group per submission). */
START_TEST(test_same_submission_same_group)
{
	struct daemon d;
	struct conn c;
	json_object *o;
	const char *first;
	char name[64];

	start(&d, "[pool main]\nworkers = 1\nthreads = 1\n");
	conn_open(&d, &c);
	o = call(&d, &c, "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:noop\"}");
	assert_ok(o);
	first = json_object_get_string(json_object_array_get_idx(jget(o, "jobs", json_type_array), 0));
	snprintf(name, sizeof(name), "%.*s", (int)strcspn(first, "#"), first);
	json_object_put(o);
	for (int i = 0; i < 20; i++) {
		o = call(&d, &c,
			 "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:noop\"}");
		assert_ok(o);
		first = json_object_get_string(
			json_object_array_get_idx(jget(o, "jobs", json_type_array), 0));
		ck_assert_msg(strncmp(first, name, strlen(name)) == 0 && first[strlen(name)] == '#',
			      "%s is not in group %s", first, name);
		json_object_put(o);
	}
	/* Another argument is another group. */
	o = call(&d, &c, "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:spin\","
			 "\"args\":{\"us\":\"5\"}}");
	assert_ok(o);
	first = json_object_get_string(json_object_array_get_idx(jget(o, "jobs", json_type_array), 0));
	ck_assert_msg(strncmp(first, "spin@", 5) == 0, "%s", first);
	json_object_put(o);
	json_object_put(wait_jobs(&d, &c, "done", 22));
	conn_close(&c);
	stop_and_free(&d);
}
END_TEST

/*
 * What each kind of configured group takes from submit: more of an `inputs =` group needs
 * the files (one job each), a spool group takes files only from its directory, builtins take
 * no input, and a command's group takes arguments for its {arg:KEY} (a variant group).
 */
START_TEST(test_submit_by_group_kind)
{
	struct daemon d;
	struct conn c;
	json_object *o;
	char conf[2048], file[400], req[1200];

	dmn_init(&d);
	snprintf(file, sizeof(file), "%s/in.txt", d.dir);
	ck_assert_int_eq(tu_write_file(file, "x\n"), 0);
	snprintf(req, sizeof(req), "%s/spool", d.dir);
	ck_assert_int_eq(mkdir(req, 0755), 0);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 1\n"
		 "[job files]\nrun = exec:/bin/test -s {input}\ninputs = %s\n"
		 "[job drop]\nrun = exec:/bin/true\nspool = %s/spool\n"
		 "[job word]\nrun = exec:/bin/test {arg:word} = hi\nargs = word=no\n"
		 "expect = failed\nmax_attempts = 1\n"
		 "[job nap]\nrun = builtin:noop\ncount = 1\n",
		 file, d.dir);
	dmn_write_config(&d, conf);
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	conn_open(&d, &c);
	json_object_put(wait_jobs(&d, &c, "done", 2)); /* files#1, nap#1; word#1 failed */

	call_error(&d, &c, "{\"command\":\"submit\",\"group\":\"files\"}",
		   "runs one job per input file");
	call_error(&d, &c, "{\"command\":\"submit\",\"group\":\"drop\"}", "spool directory");
	call_error(&d, &c, "{\"command\":\"submit\",\"group\":\"nap\",\"inputs\":[\"/etc/hosts\"]}",
		   "takes no input file");
	call_error(&d, &c, "{\"command\":\"submit\",\"group\":\"files\",\"inputs\":[\"in.txt\"]}",
		   "absolute path");
	call_error(&d, &c, "{\"command\":\"submit\",\"group\":\"files\",\"inputs\":[]}",
		   "between 1 and");
	call_error(&d, &c, "{\"command\":\"submit\",\"group\":\"files\",\"count\":2,"
			   "\"inputs\":[\"/etc/hosts\"]}",
		   "not both");
	/* A command that cannot run is refused when it is submitted (test-control-submit.c has
	 * the rest). */
	call_error(&d, &c,
		   "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"exec:/nonexistent/x\"}",
		   "COMMAND /nonexistent/x: No such file or directory");
	call_error(&d, &c, "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"other:x\"}",
		   "expected exec:COMMAND ARGS... or plugin:PATH:SYMBOL");

	/* More of the inputs group: one job per file, numbered on, each done. */
	snprintf(req, sizeof(req),
		 "{\"command\":\"submit\",\"group\":\"files\",\"inputs\":[\"%s\",\"%s\"]}", file,
		 file);
	o = call(&d, &c, req);
	assert_ok(o);
	ck_assert_str_eq(json_object_get_string(
				 json_object_array_get_idx(jget(o, "jobs", json_type_array), 1)),
			 "files#3");
	json_object_put(o);
	/* An argument for a command: a variant group, whose command sees it. */
	o = call(&d, &c, "{\"command\":\"submit\",\"group\":\"word\",\"args\":{\"word\":\"hi\"}}");
	assert_ok(o);
	ck_assert_str_eq(json_object_get_string(
				 json_object_array_get_idx(jget(o, "jobs", json_type_array), 0)),
			 "word@1#1");
	json_object_put(o);
	json_object_put(wait_jobs(&d, &c, "done", 5));
	o = call(&d, &c, "{\"command\":\"status\"}");
	ck_assert_int_eq(jint(jget(o, "jobs", json_type_object), "failed"), 1); /* word#1 */
	json_object_put(o);
	conn_close(&c);
	stop_and_free(&d);
}
END_TEST

/* ---- 11. bounds: deadlines, slots, memory, the socket itself (DESIGN §11) ---- */

/*
 * An idle client (connected, never a byte), one idle after its reply, and one that trickles
 * a request a byte at a time are each closed by their deadline; the first two without a line
 * (one nobody asked for could be taken for the reply to a request crossing it), the
 * trickler with an error reply to its half request. A client whose `wait` is pending is not
 * idle, however long it waits. `status` answers promptly throughout.
 */
START_TEST(test_idle_and_trickle_deadlines)
{
	enum { IDLE_MS = 1500, REQUEST_MS = 1000, TRICKLE_MS = 300, JOB_MS = 6000 };
	const char *env[] = { DEADLINES_ENV "idle=1500ms request=1s write=5s", NULL };
	static const char req[] = "{\"command\":\"status\",\"id\":\"trickle\"}\n";
	struct daemon d;
	struct conn idle, served, trickle, waiter;
	int64_t opened, first_byte, cut_at, worst = 0, t;
	char *line, text[200];
	json_object *o;
	long rss0;
	size_t sent;
	int base;

	start_env(&d, "[supervisor]\ndrain_timeout = 100ms\n" SMALL_CONF, env);
	fresh_status(&d);
	base = dmn_settled_fds(&d);
	rss0 = rss_kb(&d);

	/* 1. Idle from the start, and idle after a reply: both closed, no line, no sooner. */
	conn_open(&d, &idle);
	opened = tu_now_ms();
	conn_open(&d, &served);
	json_object_put(call(&d, &served, "{\"command\":\"status\"}"));
	conn_fill(&idle);
	conn_fill(&served);
	if (tu_now_ms() < opened + IDLE_MS - 300) /* else too late to tell on a slow machine */
		ck_assert_msg(!idle.eof && !served.eof, "closed before the idle deadline; %s",
			      dmn_describe(&d));
	ck_assert_msg(conn_wait_eof(&d, &idle, IDLE_MS + CALL_MS),
		      "an idle client was not closed in %dms; %s", IDLE_MS + CALL_MS,
		      dmn_describe(&d));
	t = tu_now_ms();
	ck_assert_msg(conn_wait_eof(&d, &served, IDLE_MS + CALL_MS),
		      "a client idle after its reply was not closed; %s", dmn_describe(&d));
	ck_assert_msg(t - opened >= IDLE_MS - 50, "closed after %lldms, before the idle deadline",
		      (long long)(t - opened));
	ck_assert_msg(idle.len == 0 && served.len == 0 && idle.error == 0 && served.error == 0,
		      "an idle client got something: %.*s%.*s (%s)", (int)idle.len, idle.in,
		      (int)served.len, served.in, strerror(idle.error ? idle.error : served.error));
	conn_close(&idle);
	conn_close(&served);
	dmn_expect_stderr(&d, "idle for 1.5s: closed", CALL_MS);
	worst = fresh_status(&d);

	/* 2. One byte every 300 ms: cut a request deadline after its first byte, with a line. */
	conn_open(&d, &trickle);
	first_byte = tu_now_ms();
	for (sent = 0; sent < sizeof(req) - 1 && !trickle.eof; sent++) {
		/* The pacing clock: time is the point here, not a synchronisation. */
		int64_t next = tu_now_ms() + TRICKLE_MS, took;

		if (conn_send(&d, &trickle, req + sent, 1, CALL_MS) != 0)
			break; /* closed already */
		took = fresh_status(&d);
		worst = took > worst ? took : worst;
		while (tu_ms_left(next) > 0 && !trickle.eof) {
			struct pollfd p = { .fd = trickle.fd, .events = POLLIN };

			dmn_poll(&d, &p, 1, tu_ms_left(next));
			if (p.revents)
				conn_fill(&trickle);
		}
	}
	ck_assert_msg(conn_wait_eof(&d, &trickle, CALL_MS), "the trickler was never cut; %s",
		      dmn_describe(&d));
	cut_at = tu_now_ms();
	ck_assert_msg(sent < sizeof(req) - 1, "the trickler's whole request got in; %s",
		      dmn_describe(&d));
	ck_assert_msg(cut_at - first_byte >= REQUEST_MS - 50, "cut after %lldms",
		      (long long)(cut_at - first_byte));
	line = conn_take_line(&trickle);
	ck_assert_msg(line, "the trickler was cut without a line; %s", dmn_describe(&d));
	o = parse_reply(line);
	free(line);
	assert_error(o, "request not complete within 1s");
	json_object_put(o);
	conn_close(&trickle);
	dmn_expect_stderr(&d, "request not complete within 1s: closed", CALL_MS);

	/* 3. A pending wait is not idle: twice the idle deadline and more, then its reply. */
	conn_open(&d, &waiter);
	snprintf(text, sizeof(text),
		 "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:sleep\","
		 "\"args\":{\"ms\":\"%d\"}}",
		 JOB_MS);
	o = call(&d, &waiter, text);
	assert_ok(o);
	snprintf(text, sizeof(text), "{\"command\":\"wait\",\"ids\":[%lld],\"id\":\"w\"}",
		 (long long)json_object_get_int64(
			 json_object_array_get_idx(jget(o, "ids", json_type_array), 0)));
	json_object_put(o);
	conn_send_ok(&d, &waiter, text, strlen(text));
	conn_send_ok(&d, &waiter, "\n", 1);
	t = tu_now_ms() + 2 * IDLE_MS + 500; /* a window to watch; the job takes 6 s */
	while (tu_ms_left(t) > 0) {
		struct pollfd p = { .fd = waiter.fd, .events = POLLIN };

		dmn_poll(&d, &p, 1, tu_ms_left(t));
		ck_assert_msg(!p.revents, "the waiting client got something or was closed; %s",
			      dmn_describe(&d));
	}
	t = fresh_status(&d);
	worst = t > worst ? t : worst;
	line = conn_line(&d, &waiter, JOBS_MS);
	ck_assert_msg(line, "no reply to the wait; %s", dmn_describe(&d));
	o = parse_reply(line);
	free(line);
	assert_ok(o);
	ck_assert_str_eq(jstr(o, "id"), "w");
	ck_assert(jbool(o, "all_expected"));
	json_object_put(o);
	/* Then it is idle like any other. */
	ck_assert_msg(conn_wait_eof(&d, &waiter, IDLE_MS + CALL_MS),
		      "idle after its wait, never closed; %s", dmn_describe(&d));
	conn_close(&waiter);

	fprintf(stderr, "test_idle_and_trickle_deadlines: slowest status %lldms\n",
		(long long)worst);
	expect_fds(&d, base);
	assert_rss_flat(&d, rss0, "after idle and trickling clients");
	assert_same_workers(&d);
	stop_and_free(&d);
}
END_TEST

/*
 * A client process that holds connections as another uid: it connects n times, one after
 * another, asks each for a status, keeps those answered and closes those refused ("too many
 * clients"), reports "ACCEPTED REFUSED" on a pipe, and holds on until released.
 */
struct holder {
	pid_t pid;
	int report; /* read end */
	int release; /* write end: closed to release */
	int accepted, refused;
};

static _Noreturn void holder_main(const char *sock, uid_t uid, gid_t gid, int n, int report,
				  int release)
{
	static const char req[] = "{\"command\":\"status\"}\n";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int accepted = 0, refused = 0, lo, hi;
	char buf[8192];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Nothing of the test's but our two pipe ends: another holder's release must reach it. */
	lo = report < release ? report : release;
	hi = report < release ? release : report;
	if (lo > 3)
		close_range(3, (unsigned)lo - 1, 0);
	if (hi > lo + 1)
		close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
	close_range((unsigned)hi + 1, ~0U, 0);
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0) {
		dprintf(report, "credentials: %s\n", strerrorname_np(errno));
		_exit(1);
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	for (int i = 0; i < n; i++) {
		int64_t deadline = tu_now_ms() + CALL_MS;
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		size_t len = 0;

		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			dprintf(report, "connect %d: %s\n", i, strerrorname_np(errno));
			_exit(1);
		}
		(void)!send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
		while (!memchr(buf, '\n', len) && len < sizeof(buf) - 1) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			ssize_t r;

			if (poll(&p, 1, tu_ms_left(deadline)) <= 0) {
				dprintf(report, "connection %d: no reply\n", i);
				_exit(1);
			}
			r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
			if (r <= 0)
				break;
			len += (size_t)r;
		}
		buf[len] = '\0';
		if (strncmp(buf, "{\"ok\":true,", 11) == 0) {
			accepted++;
		} else if (strstr(buf, "too many clients")) {
			refused++;
			close(fd);
		} else {
			dprintf(report, "connection %d: %s\n", i, buf);
			_exit(1);
		}
		memset(buf, 0, len);
	}
	dprintf(report, "%d %d\n", accepted, refused);
	(void)!read(release, buf, 1); /* EOF: released */
	_exit(0);
}

static void holder_start(struct daemon *d, struct holder *h, uid_t uid, gid_t gid, int n)
{
	int rep[2], rel[2];
	int64_t deadline = tu_now_ms() + 6 * CALL_MS;
	char text[256] = "";
	size_t len = 0;

	memset(h, 0, sizeof(*h));
	ck_assert_int_eq(pipe2(rep, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(rel, O_CLOEXEC), 0);
	h->pid = fork();
	ck_assert_int_ge(h->pid, 0);
	if (h->pid == 0) {
		close(rep[0]);
		close(rel[1]);
		holder_main(d->sock_path, uid, gid, n, rep[1], rel[0]);
	}
	close(rep[1]);
	close(rel[0]);
	h->report = rep[0];
	h->release = rel[1];
	/* Its report, taking in the daemon's output meanwhile. */
	while (!memchr(text, '\n', len)) {
		struct pollfd p = { .fd = h->report, .events = POLLIN };
		ssize_t r;

		ck_assert_msg(tu_ms_left(deadline) > 0, "uid %u: no report; %s", (unsigned)uid,
			      dmn_describe(d));
		dmn_poll(d, &p, 1, tu_ms_left(deadline));
		if (!p.revents)
			continue;
		r = read(h->report, text + len, sizeof(text) - 1 - len);
		ck_assert_msg(r > 0, "uid %u: ended without a report: %s", (unsigned)uid, text);
		len += (size_t)r;
		text[len] = '\0';
	}
	ck_assert_msg(sscanf(text, "%d %d", &h->accepted, &h->refused) == 2, "uid %u: %s",
		      (unsigned)uid, text);
	ck_assert_int_eq(h->accepted + h->refused, n);
}

static void holder_release(struct holder *h)
{
	int st;

	close(h->release);
	ck_assert_int_eq(tu_wait_exit(h->pid, CALL_MS, &st), 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "holder: %s", tu_describe_status(st));
	close(h->report);
}

/*
 * Three uids of the control group each try to hold 300 idle connections: one uid gets at most
 * its share (half of the 256 slots), all of them together leave the last 8 slots to root, and
 * root's status answers within 1 s throughout, over a connection of its own.
 */
START_TEST(test_slots_per_uid_and_for_root)
{
	enum { UID_MAX = CLIENTS_MAX / 2, ROOT_RESERVED = 8, TRIES = 300 };
	const char *env[] = { DEADLINES_ENV "idle=10min", NULL };
	const struct group *gr = getgrgid(NOBODY);
	struct conn root[ROOT_RESERVED];
	struct holder a, b, c;
	struct daemon d;
	char conf[256];
	int64_t worst = 0, took;
	long rss0;
	int base;

	if (geteuid() != 0 || !gr) {
		fprintf(stderr,
			"test_slots_per_uid_and_for_root: skipped: needs root and a group "
			"with gid %d\n",
			NOBODY);
		return;
	}
	snprintf(conf, sizeof(conf), "[supervisor]\ncontrol_group = %s\n" SMALL_CONF, gr->gr_name);
	start_env(&d, conf, env);
	open_path_for_others(&d);
	fresh_status(&d);
	base = dmn_settled_fds(&d);
	rss0 = rss_kb(&d);

	holder_start(&d, &a, NOBODY, NOBODY, TRIES);
	fprintf(stderr, "uid %d: %d accepted, %d refused\n", NOBODY, a.accepted, a.refused);
	ck_assert_msg(a.accepted > 0 && a.accepted <= UID_MAX, "uid %d holds %d connections",
		      NOBODY, a.accepted);
	took = fresh_status(&d);
	worst = took > worst ? took : worst;

	holder_start(&d, &b, NOBODY - 1, NOBODY, TRIES);
	holder_start(&d, &c, NOBODY - 2, NOBODY, TRIES);
	fprintf(stderr, "uids %d, %d: %d and %d accepted\n", NOBODY - 1, NOBODY - 2, b.accepted,
		c.accepted);
	ck_assert_msg(b.accepted <= UID_MAX && c.accepted <= UID_MAX, "%d, %d", b.accepted,
		      c.accepted);
	ck_assert_msg(a.accepted + b.accepted + c.accepted <= CLIENTS_MAX - ROOT_RESERVED,
		      "others hold %d connections: root's are taken",
		      a.accepted + b.accepted + c.accepted);
	/* Root gets the reserved slots, each answered promptly. */
	for (int i = 0; i < ROOT_RESERVED; i++) {
		int64_t t0 = tu_now_ms();

		conn_open(&d, &root[i]);
		prompt_status(&d, &root[i]);
		took = tu_now_ms() - t0;
		worst = took > worst ? took : worst;
	}
	for (int i = 0; i < ROOT_RESERVED; i++)
		conn_close(&root[i]);
	took = fresh_status(&d);
	worst = took > worst ? took : worst;
	fprintf(stderr, "test_slots_per_uid_and_for_root: slowest status %lldms\n",
		(long long)worst);
	dmn_expect_stderr(&d, "too many clients", CALL_MS);

	holder_release(&a);
	holder_release(&b);
	holder_release(&c);
	expect_fds(&d, base);
	assert_rss_flat(&d, rss0, "after 900 connections of three uids");
	assert_same_workers(&d);
	stop_and_free(&d);
}
END_TEST

/*
 * Long replies are streamed as the client reads: a submit of 100 000 jobs (ids and names), a
 * wait for all of them, the full `jobs` list, each the very text json-c would print; then 100
 * clients ask for the full list and never read: the master's memory stays flat, another
 * client's status answers within 1 s, and the write deadline closes them.
 */
START_TEST(test_long_replies_streamed)
{
	enum { JOBS = 100000, HOGS = 100, WRITE_MS = 3000 };
	static const char jobs_req[] = "{\"command\":\"jobs\",\"limit\":100000}\n";
	char asan[512];
	const char *env[] = { DEADLINES_ENV "idle=10min write=3s", asan, NULL };
	static struct conn hogs[HOGS];
	static struct pollfd pfd[HOGS];
	struct daemon d;
	struct conn c;
	json_object *o, *a;
	int64_t worst = 0, t0, deadline;
	char *line, name[32];
	long rss0;
	int base;

	/* ASan holds freed memory in a quarantine (256 MB by default): keep it small here. */
	snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s:quarantine_size_mb=16",
		 getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "");
	start_env(&d, "[pool main]\nworkers = 2\nthreads = 2\n", env);
	conn_open(&d, &c);

	/* A submit of 100 000: the ids and the names, streamed. */
	line = call_line(&d, &c,
			 "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:noop\","
			 "\"count\":100000,\"id\":\"big\"}",
			 CALL_MS);
	assert_plain_json(line);
	o = parse_reply(line);
	free(line);
	assert_ok(o);
	ck_assert_str_eq(jstr(o, "id"), "big");
	a = jget(o, "ids", json_type_array);
	ck_assert_int_eq(json_object_array_length(a), JOBS);
	for (size_t i = 0; i < JOBS; i++)
		ck_assert_int_eq(json_object_get_int64(json_object_array_get_idx(a, i)),
				 (int64_t)i + 1);
	a = jget(o, "jobs", json_type_array);
	ck_assert_int_eq(json_object_array_length(a), JOBS);
	for (size_t i = 0; i < JOBS; i += 9973) {
		snprintf(name, sizeof(name), "noop@1#%zu", i + 1);
		ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(a, i)), name);
	}
	json_object_put(o);

	/* A wait for all of them: truncated, nothing unexpected listed. */
	line = call_line(&d, &c, "{\"command\":\"wait\",\"group\":\"noop@1\"}", 4 * JOBS_MS);
	assert_plain_json(line);
	o = parse_reply(line);
	free(line);
	ck_assert_msg(jbool(o, "all_expected") && jbool(o, "truncated") &&
			      jint(o, "total") == JOBS &&
			      json_object_array_length(jget(o, "jobs", json_type_array)) == 0,
		      "%.300s", jtext(o));
	json_object_put(o);
	/* And a wait with a short list. */
	line = call_line(&d, &c, "{\"command\":\"wait\",\"ids\":[7,3,99999],\"id\":[1]}", CALL_MS);
	assert_plain_json(line);
	o = parse_reply(line);
	free(line);
	a = jget(o, "jobs", json_type_array);
	ck_assert_int_eq(json_object_array_length(a), 3);
	ck_assert_int_eq(jint(json_object_array_get_idx(a, 2), "id"), 99999);
	ck_assert_str_eq(jstr(json_object_array_get_idx(a, 2), "name"), "noop@1#99999");
	json_object_put(o);
	conn_close(&c);

	fresh_status(&d);
	base = dmn_settled_fds(&d);
	rss0 = rss_kb(&d);

	/* One client reads the whole list: every job, in id order, json-c's text. */
	conn_open(&d, &c);
	t0 = tu_now_ms();
	line = call_line(&d, &c, "{\"command\":\"jobs\",\"limit\":100000}", 3 * CALL_MS);
	fprintf(stderr, "test_long_replies_streamed: %zu bytes of jobs in %lldms\n", strlen(line),
		(long long)(tu_now_ms() - t0));
	assert_plain_json(line);
	o = parse_reply(line);
	free(line);
	ck_assert_int_eq(jint(o, "total_matching"), JOBS);
	a = jget(o, "jobs", json_type_array);
	ck_assert_int_eq(json_object_array_length(a), JOBS);
	for (size_t i = 0; i < JOBS; i++) {
		json_object *j = json_object_array_get_idx(a, i);

		ck_assert_int_eq(jint(j, "id"), (int64_t)i + 1);
		ck_assert_str_eq(jstr(j, "state"), "done");
	}
	json_object_put(o);
	conn_close(&c);
	assert_rss_flat(&d, rss0, "after one full jobs list");

	/* 100 clients ask for it and never read; a status right behind them answers promptly. */
	for (int i = 0; i < HOGS; i++) {
		conn_open(&d, &hogs[i]);
		conn_send_ok(&d, &hogs[i], jobs_req, sizeof(jobs_req) - 1);
	}
	worst = fresh_status(&d);
	/* Answered before the write deadline freed the daemon of any of them. */
	for (int i = 0; i < HOGS; i++)
		ck_assert_msg(!conn_hung_up(&hogs[i]),
			      "client %d was closed before a status was answered; %s", i,
			      dmn_describe(&d));
	/* Each has its reply coming (data waiting for it), without a byte read. */
	deadline = tu_now_ms() + 3 * CALL_MS;
	for (int i = 0; i < HOGS; i++) {
		for (;;) {
			pfd[0] = (struct pollfd){ .fd = hogs[i].fd, .events = POLLIN };
			dmn_poll(&d, pfd, 1, tu_ms_left(deadline));
			if (pfd[0].revents)
				break;
			ck_assert_msg(tu_ms_left(deadline) > 0, "no reply for client %d; %s", i,
				      dmn_describe(&d));
		}
	}
	for (int i = 0; i < 5; i++) {
		int64_t took = fresh_status(&d);

		worst = took > worst ? took : worst;
	}
	fprintf(stderr,
		"test_long_replies_streamed: slowest status with %d clients not reading: "
		"%lldms\n",
		HOGS, (long long)worst);
	assert_rss_flat(&d, rss0, "with 100 full jobs lists unread");

	/* The write deadline closes every one of them (a hangup, seen without reading). */
	deadline = tu_now_ms() + WRITE_MS + 3 * CALL_MS;
	for (int i = 0; i < HOGS; i++) {
		for (;;) {
			pfd[0] = (struct pollfd){ .fd = hogs[i].fd, .events = POLLRDHUP };
			dmn_poll(&d, pfd, 1, tu_ms_left(deadline));
			if (pfd[0].revents & (POLLHUP | POLLRDHUP))
				break;
			ck_assert_msg(tu_ms_left(deadline) > 0,
				      "client %d not reading was never closed; %s", i,
				      dmn_describe(&d));
		}
		conn_close(&hogs[i]);
	}
	dmn_expect_stderr(&d, "does not read its replies: closed", CALL_MS);
	fresh_status(&d);
	expect_fds(&d, base);
	assert_rss_flat(&d, rss0, "after the clients that did not read were closed");
	assert_same_workers(&d);
	stop_and_free(&d);
}
END_TEST

/*
 * A second bulkheadd with another runtime directory (so another instance lock) but the same
 * control_socket exits 1 and leaves the first's socket alone; a stale socket (its daemon
 * gone) is replaced; a file that is not a socket is refused, untouched.
 */
START_TEST(test_second_daemon_same_socket)
{
	struct daemon d1, d2;
	char conf[512], sock[sizeof(d1.sock_path)], expect[600];
	struct stat before, after;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	dmn_init(&d1);
	ck_assert_int_lt(snprintf(sock, sizeof(sock), "%s/shared.sock", d1.dir), (int)sizeof(sock));
	snprintf(conf, sizeof(conf), "[supervisor]\ncontrol_socket = %s\n" SMALL_CONF, sock);
	memcpy(d1.sock_path, sock, sizeof(sock));
	dmn_write_config(&d1, conf);
	dmn_start(&d1, NULL);
	dmn_wait_ready(&d1);
	fresh_status(&d1);
	ck_assert_int_eq(stat(sock, &before), 0);

	/* The second: its own runtime dir and notify socket, the same control_socket. */
	dmn_init(&d2);
	dmn_write_config(&d2, conf);
	dmn_start(&d2, NULL);
	dmn_expect_exit(&d2, 1, CALL_MS);
	snprintf(expect, sizeof(expect), "another daemon answers on %s; not starting", sock);
	ck_assert_msg(d2.err && strstr(d2.err, expect), "%s", dmn_describe(&d2));
	ck_assert_msg(d2.n_notices == 0, "the refused daemon notified: %s", dmn_describe(&d2));
	dmn_free(&d2);

	/* The first still answers there, on the very same socket. */
	fresh_status(&d1);
	ck_assert_int_eq(stat(sock, &after), 0);
	ck_assert_msg(before.st_ino == after.st_ino, "the socket was replaced");
	assert_same_workers(&d1);
	dmn_stop(&d1);
	dmn_assert_aftermath();

	/* A stale socket (bound, its owner gone) is replaced. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	dmn_init(&d2);
	memcpy(d2.sock_path, sock, sizeof(sock));
	dmn_write_config(&d2, conf);
	dmn_start(&d2, NULL);
	dmn_wait_ready(&d2);
	fresh_status(&d2);
	dmn_stop(&d2);
	dmn_assert_aftermath();
	dmn_free(&d2);

	/* Something that is not a socket is nobody's to remove. */
	ck_assert_int_eq(tu_write_file(sock, "mine\n"), 0);
	dmn_init(&d2);
	dmn_write_config(&d2, conf);
	dmn_start(&d2, NULL);
	dmn_expect_exit(&d2, 1, CALL_MS);
	snprintf(expect, sizeof(expect), "%s exists and is not a socket", sock);
	ck_assert_msg(d2.err && strstr(d2.err, expect), "%s", dmn_describe(&d2));
	dmn_free(&d2);
	{
		char *text = tu_read_file(sock);

		ck_assert_msg(text && strcmp(text, "mine\n") == 0, "the file was touched");
		free(text);
	}
	dmn_assert_aftermath();
	dmn_free(&d1);
}
END_TEST

static Suite *control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *tc;

	tc = tcase_create("requests");
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_status_reply);
	tcase_add_test(tc, test_jobs_filters);
	tcase_add_test(tc, test_reload);
	tcase_add_test(tc, test_log_level);
	tcase_add_test(tc, test_exec_inputs_and_cancel_running);
	tcase_add_test(tc, test_plugin_results_cancel_and_bad_reload);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad-input");
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_bad_requests_keep_connection);
	tcase_add_test(tc, test_request_size_limit);
	tcase_add_test(tc, test_pipelined_beyond_one_read);
	tcase_add_test(tc, test_fd_passing_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("clients");
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_slow_client);
	tcase_add_test(tc, test_client_never_reads);
	tcase_add_test(tc, test_many_clients);
	tcase_add_test(tc, test_out_of_descriptors);
	tcase_add_test(tc, test_refused_client_does_not_spin);
	tcase_add_test(tc, test_half_closed_client_gets_replies);
	suite_add_tcase(s, tc);

	tc = tcase_create("submitted");
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_submissions_stay_bounded);
	tcase_add_test(tc, test_same_submission_same_group);
	tcase_add_test(tc, test_submit_by_group_kind);
	suite_add_tcase(s, tc);

	tc = tcase_create("bounds");
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_idle_and_trickle_deadlines);
	tcase_add_test(tc, test_slots_per_uid_and_for_root);
	tcase_add_test(tc, test_long_replies_streamed);
	tcase_add_test(tc, test_second_daemon_same_socket);
	suite_add_tcase(s, tc);

	tc = tcase_create("auth");
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_unauthorized_uid);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dmn_run(control_suite(), "test-control");
}
