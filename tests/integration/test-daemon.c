/* SPDX-License-Identifier: MIT */
/*
 * bulkheadd end to end: the real daemon ($BULKHEAD_DAEMON), the real workers, real signals.
 * Each test makes a private temp dir, binds an AF_UNIX datagram socket there as the service
 * manager's NOTIFY_SOCKET (no systemd involved), starts bulkheadd with RUNTIME_DIRECTORY in
 * that dir, and waits on a deadline for real events: a notify datagram, a line on stderr, a
 * process exit (pidfd), a state in /proc. Nothing sleeps to synchronise. The harness
 * (struct daemon, dmn_*) is daemonutil.c, shared with the control tests.
 *
 * Every datagram is recorded with its receive time (tu_now_ms()), so a test can look at the
 * order and spacing of READY=1, STATUS=, WATCHDOG=1, STOPPING=1, RELOADING=1.
 *
 * Each test process makes itself a child subreaper: a worker orphaned by its master is
 * re-parented to the test, not to PID 1, so "no worker left" means no live bulkhead-worker
 * below this test process (other builds' tests on the same machine do not count), and an
 * orphan that died unreaped shows up as a zombie child of the test.
 *
 * Clean-up on failure: Check's forked mode ends a failing test with _exit(), so nothing runs
 * after a failed assertion. The daemon was spawned with PR_SET_PDEATHSIG (tu_spawn) and its
 * workers set it too, so they die with the test process; every temp dir lives under one
 * directory that dmn_run() removes after the whole run.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/sched-slice.h"
#include "daemonutil.h"
#include "testutil.h"

#define WORKERS_MAX DMN_WORKERS_MAX /* workers a test looks at */
#define START_MS DMN_START_MS /* spawn -> READY=1, generous for ASan */
#define EXIT_MS DMN_EXIT_MS /* SIGTERM -> exit when nothing is running */
#define ORPHAN_MS 1000 /* master SIGKILLed -> its workers gone */
#define STATUS_GAP_MIN_MS 900 /* STATUS= rate limit (1 s) with slack */

/* ---- small helpers ---- */

/* The value of "STATUS=" in a datagram, up to the end of its line (static buffer). */
static const char *status_of(const char *text)
{
	static char buf[DMN_DGRAM_MAX];
	const char *v;

	if (!dmn_find_line(text, "STATUS=", &v))
		return NULL;
	snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(v, "\n"), v);
	return buf;
}

/* N from "... N <word>..." in a STATUS line ("jobs: 12 done" -> 12 for "done"), or -1. */
static long status_count(const char *status, const char *word)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), " %s", word);
	p = status ? strstr(status, pat) : NULL;
	if (!p)
		return -1;
	while (p > status && p[-1] >= '0' && p[-1] <= '9')
		p--;
	return p[0] >= '0' && p[0] <= '9' ? atol(p) : -1;
}

/* Waits until one of the workers' job threads has burned CPU: a busy job really runs. */
static void wait_job_running(struct daemon *d, const pid_t *workers, int n)
{
	int64_t deadline = tu_now_ms() + START_MS;

	for (;;) {
		for (int i = 0; i < n; i++)
			if (tu_job_thread_ticks(workers[i]) > 0)
				return;
		ck_assert_msg(tu_ms_left(deadline) > 0 && !d->exited, "no job running; %s",
			      dmn_describe(d));
		dmn_pump(d, 5); /* re-check /proc: waiting for a state, with a deadline */
	}
}

/* READY=1, and the daemon's workers at that moment (sorted). */
static int wait_ready(struct daemon *d, pid_t *workers, int max)
{
	dmn_expect_notice(d, 0, "READY=1", START_MS);
	return tu_find_workers(d->pid, workers, max);
}

/*
 * The master, the fork server and each worker's main thread ask for a short scheduler slice;
 * job threads have the default (common/sched-slice.h).
 */
START_TEST(test_supervisor_slices)
{
	pid_t workers[WORKERS_MAX], tids[8], zygote;
	struct daemon d;
	long def;
	int n, t;

	if (!tu_slices_supported(&def)) {
		fprintf(stderr, "test_supervisor_slices: skipped: this kernel does not give a "
				"thread the slice it asks for (it needs Linux 6.12)\n");
		return;
	}
	dmn_init(&d);
	dmn_write_config(&d, "[pool a]\nworkers = 2\nthreads = 2\n");
	dmn_start(&d, NULL);
	n = wait_ready(&d, workers, WORKERS_MAX);
	ck_assert_int_ge(n, 2);
	ck_assert_int_eq(tu_thread_slice(d.pid), (long)SCHED_SLICE_SUPERVISOR_NS);
	ck_assert_int_eq(tu_find_children(d.pid, "bulkhead-zygote", &zygote, 1), 1);
	ck_assert_int_eq(tu_thread_slice(zygote), (long)SCHED_SLICE_SUPERVISOR_NS);
	for (int i = 0; i < n; i++) {
		t = tu_threads(workers[i], tids, 8);
		ck_assert_msg(t == 3, "worker %d has %d threads", (int)workers[i], t);
		ck_assert_int_eq(tu_thread_slice(tids[0]), (long)SCHED_SLICE_SUPERVISOR_NS);
		for (int k = 1; k < t; k++)
			ck_assert_int_eq(tu_thread_slice(tids[k]), def);
	}
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* ---- READY ---- */

START_TEST(test_ready_after_every_hello)
{
	struct daemon d;
	pid_t workers[WORKERS_MAX];
	size_t ready;
	int n;

	dmn_init(&d);
	dmn_write_config(&d, "[pool a]\nworkers = 2\nthreads = 2\n"
			     "[pool b]\nworkers = 1\nthreads = 1\n");
	dmn_start(&d, NULL);
	ready = dmn_expect_notice(&d, 0, "READY=1", START_MS);
	/* At that moment every worker of both pools is up, and the status says so. */
	n = tu_find_workers(d.pid, workers, WORKERS_MAX);
	ck_assert_msg(n == 3, "%d workers at READY=1; %s", n, dmn_describe(&d));
	ck_assert_ptr_nonnull(status_of(d.notices[ready].text));
	ck_assert_msg(strstr(status_of(d.notices[ready].text), "3/3 workers"), "READY status: %s",
		      d.notices[ready].text);
	ck_assert_ptr_nonnull(strstr(status_of(d.notices[ready].text), "2/2 pools up"));
	/* Logged too, and only once. */
	dmn_expect_stderr(&d, "ready: 2 pools up", 5000);
	ck_assert_int_eq(dmn_count_notices(&d, 0, "READY=1"), 1);
	for (size_t i = 0; i < ready; i++)
		ck_assert_msg(!strstr(d.notices[i].text, "3/3 workers"),
			      "a status said 3/3 workers before READY=1: %s", d.notices[i].text);
	dmn_stop(&d);
	ck_assert_int_eq(dmn_count_notices(&d, 0, "READY=1"), 1);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

START_TEST(test_no_ready_without_hello)
{
	const char *env[] = { "BULKHEAD_WORKER=/bin/false", NULL };
	struct daemon d;
	long status;

	dmn_init(&d);
	/* Workers die before HELLO over and over; the pool must not fail within the window. */
	dmn_write_config(&d, "[pool main]\nworkers = 1\nthreads = 1\nbackoff = 10ms..100ms\n"
			     "max_worker_faults = 1000/60s\n");
	dmn_start(&d, env);
	ck_assert_msg(dmn_wait_notice(&d, 0, "READY=1", 1500) < 0, "READY=1 with no HELLO; %s",
		      dmn_describe(&d));
	ck_assert_msg(!d.exited, "%s", dmn_describe(&d));
	/* Status lines may come, and none of them claims a worker up. */
	status = dmn_find_notice(&d, 0, "STATUS=");
	ck_assert_msg(status >= 0, "no STATUS= at all; %s", dmn_describe(&d));
	for (size_t i = 0; i < d.n_notices; i++)
		if (status_of(d.notices[i].text))
			ck_assert_msg(strstr(status_of(d.notices[i].text), "0/1 workers"),
				      "status: %s", d.notices[i].text);
	dmn_stop(&d);
	ck_assert_int_eq(dmn_count_notices(&d, 0, "READY=1"), 0);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* Without NOTIFY_SOCKET everything works the same (DESIGN §5). */
START_TEST(test_works_without_notify_socket)
{
	struct daemon d;
	pid_t workers[WORKERS_MAX];
	int n;

	dmn_init(&d);
	d.no_notify = true;
	dmn_write_config(&d, "[pool main]\nworkers = 2\nthreads = 1\n");
	dmn_start(&d, NULL);
	dmn_expect_stderr(&d, "ready: 1 pool up", START_MS);
	n = tu_find_workers(d.pid, workers, WORKERS_MAX);
	ck_assert_int_eq(n, 2);
	dmn_signal(&d, SIGTERM);
	dmn_expect_exit(&d, 0, EXIT_MS);
	ck_assert_uint_eq(d.n_notices, 0);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* ---- STATUS ---- */

START_TEST(test_status_rate_limited_and_final)
{
	struct daemon d;
	pid_t before[WORKERS_MAX], after[WORKERS_MAX];
	long last = -1, prev = -1, done_seen = -1;
	int n, status_only = 0;
	int64_t deadline;

	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 2\nthreads = 2\n"
			     "[job quick]\nrun = builtin:sleep\nargs = ms=40\ncount = 150\n");
	dmn_start(&d, NULL);
	n = wait_ready(&d, before, WORKERS_MAX);
	ck_assert_int_eq(n, 2);
	/* Wait for the status that reports every job done. */
	deadline = tu_now_ms() + 60000;
	for (size_t i = 0;; i++) {
		while (i >= d.n_notices) {
			ck_assert_msg(tu_ms_left(deadline) > 0 && !d.exited,
				      "no status with 150 done; %s", dmn_describe(&d));
			dmn_pump(&d, tu_ms_left(deadline));
		}
		if (status_count(status_of(d.notices[i].text), "done") == 150) {
			done_seen = (long)i;
			break;
		}
	}
	/* Nothing changes any more: a window in which a stray later status would show. */
	dmn_watch(&d, 1500);
	ck_assert_msg(!d.exited, "%s", dmn_describe(&d));

	/* Rate limit: each STATUS-only datagram comes >= 1 s after the previous status. */
	for (size_t i = 0; i < d.n_notices; i++) {
		const char *text = d.notices[i].text;
		long done = status_count(status_of(text), "done");

		if (!status_of(text))
			continue;
		if (prev >= 0 && strncmp(text, "STATUS=", 7) == 0) {
			int64_t gap = d.notices[i].at - d.notices[prev].at;

			ck_assert_msg(gap >= STATUS_GAP_MIN_MS, "two statuses %lldms apart; %s",
				      (long long)gap, dmn_describe(&d));
		}
		status_only += strncmp(text, "STATUS=", 7) == 0;
		ck_assert_msg(done >= 0, "status without a done count: %s", text);
		if (last >= 0)
			ck_assert_msg(done >= status_count(status_of(d.notices[last].text), "done"),
				      "done went down: %s", text);
		prev = last = (long)i;
	}
	ck_assert_int_ge(status_only, 2); /* the first one, and at least one while jobs ran */
	ck_assert_int_ge(last, done_seen);
	{
		const char *s = status_of(d.notices[last].text);

		ck_assert_msg(status_count(s, "done") == 150 && status_count(s, "running") == 0 &&
				      status_count(s, "queued") == 0 &&
				      status_count(s, "failed") == 0 && strstr(s, "2/2 workers"),
			      "last status: %s", s);
	}
	/* The jobs ended; the pool's workers stay up, the same processes. */
	ck_assert_int_eq(tu_find_workers(d.pid, after, WORKERS_MAX), 2);
	ck_assert_int_eq(memcmp(before, after, 2 * sizeof(pid_t)), 0);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* ---- WATCHDOG ---- */

START_TEST(test_watchdog_cadence)
{
	const char *env[] = { "WATCHDOG_USEC=400000", NULL };
	struct daemon d;
	size_t first, n = 0;
	int64_t prev, max_gap = 0;

	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 1\nthreads = 1\n");
	dmn_start(&d, env);
	first = dmn_expect_notice(&d, 0, "WATCHDOG=1", START_MS);
	dmn_watch(&d, 1200);
	ck_assert_msg(!d.exited, "%s", dmn_describe(&d));
	prev = d.notices[first].at;
	for (size_t i = first; i < d.n_notices; i++) {
		if (!dmn_notice_has(d.notices[i].text, "WATCHDOG=1"))
			continue;
		n++;
		if (d.notices[i].at - prev > max_gap)
			max_gap = d.notices[i].at - prev;
		prev = d.notices[i].at;
	}
	/* Every 200 ms: about 7 in 1.2 s. At least 4, never a gap over 400 ms, no flood. */
	ck_assert_msg(n >= 4 && n <= 15, "%zu WATCHDOG=1 in 1.2s; %s", n, dmn_describe(&d));
	ck_assert_msg(max_gap <= 400, "WATCHDOG=1 gap of %lldms; %s", (long long)max_gap,
		      dmn_describe(&d));
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

START_TEST(test_no_watchdog_without_watchdog_usec)
{
	struct daemon d;
	pid_t workers[WORKERS_MAX];

	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 1\nthreads = 1\n");
	dmn_start(&d, NULL);
	wait_ready(&d, workers, WORKERS_MAX);
	dmn_watch(&d, 1000);
	ck_assert_msg(!d.exited, "%s", dmn_describe(&d));
	ck_assert_msg(dmn_count_notices(&d, 0, "WATCHDOG=1") == 0, "%s", dmn_describe(&d));
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* ---- stopping ---- */

START_TEST(test_sigterm_drains)
{
	struct daemon d;
	pid_t workers[WORKERS_MAX];
	size_t from, stopping, extend;
	int64_t signalled, took;
	long first_stop_sign = -1;

	dmn_init(&d);
	/* 2 threads, 6 jobs of 1.5 s: 2 running, the rest in flight or queued. */
	dmn_write_config(&d, "[supervisor]\ndrain_timeout = 5s\n"
			     "[pool main]\nworkers = 1\nthreads = 2\n"
			     "[job busy]\nrun = builtin:hang\nargs = ms=1500\ncount = 6\n");
	dmn_start(&d, NULL);
	ck_assert_int_eq(wait_ready(&d, workers, WORKERS_MAX), 1);
	wait_job_running(&d, workers, 1);

	dmn_pump(&d, 0);
	from = d.n_notices;
	signalled = tu_now_ms();
	dmn_signal(&d, SIGTERM);
	stopping = dmn_expect_notice(&d, from, "STOPPING=1", EXIT_MS);
	extend = dmn_expect_notice(&d, from, "EXTEND_TIMEOUT_USEC=", EXIT_MS);
	/* STOPPING=1 is the first sign of stopping (a status already on its way may precede). */
	for (size_t i = from; i < d.n_notices && first_stop_sign < 0; i++) {
		const char *s = status_of(d.notices[i].text);

		if (dmn_notice_has(d.notices[i].text, "STOPPING=1") ||
		    dmn_notice_has(d.notices[i].text, "EXTEND_TIMEOUT_USEC=") ||
		    (s && strncmp(s, "stopping", 8) == 0))
			first_stop_sign = (long)i;
	}
	ck_assert_msg(first_stop_sign == (long)stopping, "STOPPING=1 not first; %s",
		      dmn_describe(&d));
	ck_assert_msg(extend > stopping, "EXTEND_TIMEOUT_USEC before STOPPING=1; %s",
		      dmn_describe(&d));
	/* drain_timeout + 5 s */
	ck_assert_msg(dmn_notice_has(d.notices[extend].text, "EXTEND_TIMEOUT_USEC=10000000"), "%s",
		      dmn_describe(&d));
	/* The worker drains its running jobs, it is not killed. */
	ck_assert_msg(tu_process_alive(workers[0]), "worker gone at STOPPING=1; %s",
		      dmn_describe(&d));

	dmn_expect_exit(&d, 0, 5000 + 5000);
	took = d.exited_at - signalled;
	/* Within drain_timeout (with slack), and not at once: the running jobs were let finish. */
	ck_assert_msg(took <= 5000 + 2000, "exit %lldms after SIGTERM; %s", (long long)took,
		      dmn_describe(&d));
	ck_assert_msg(took >= 700, "exit %lldms after SIGTERM: running jobs not drained; %s",
		      (long long)took, dmn_describe(&d));
	ck_assert_ptr_nonnull(strstr(d.err, "stopping"));
	/* No unexpected death (culprit or suspect lines say "killed by"). */
	ck_assert_msg(!strstr(d.err, "killed by"), "a worker died; %s", dmn_describe(&d));
	/* Every status after the signal says it is stopping. */
	for (size_t i = from; i < d.n_notices; i++) {
		const char *s = status_of(d.notices[i].text);

		if (s && i > stopping)
			ck_assert_msg(strncmp(s, "stopping: ", 10) == 0, "status: %s", s);
	}
	ck_assert_int_eq(dmn_count_notices(&d, from, "READY=1"), 0);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

START_TEST(test_second_sigterm_kills_now)
{
	struct daemon d;
	pid_t workers[WORKERS_MAX];
	size_t from, stopping, extend;
	int64_t second;

	dmn_init(&d);
	dmn_write_config(&d, "[supervisor]\ndrain_timeout = 30s\n"
			     "[pool main]\nworkers = 1\nthreads = 1\n"
			     "[job forever]\nrun = builtin:hang\ntimeout = infinity\ncount = 2\n");
	dmn_start(&d, NULL);
	ck_assert_int_eq(wait_ready(&d, workers, WORKERS_MAX), 1);
	wait_job_running(&d, workers, 1);

	dmn_pump(&d, 0);
	from = d.n_notices;
	dmn_signal(&d, SIGTERM);
	stopping = dmn_expect_notice(&d, from, "STOPPING=1", EXIT_MS);
	extend = dmn_expect_notice(&d, stopping, "EXTEND_TIMEOUT_USEC=", EXIT_MS);
	/* drain_timeout + 5 s */
	ck_assert_msg(dmn_notice_has(d.notices[extend].text, "EXTEND_TIMEOUT_USEC=35000000"), "%s",
		      dmn_describe(&d));
	/* Draining a job that never ends: still there. */
	ck_assert_msg(!d.exited && tu_process_alive(workers[0]), "%s", dmn_describe(&d));

	second = tu_now_ms();
	dmn_signal(&d, SIGTERM);
	dmn_expect_exit(&d, 0, 10000);
	ck_assert_msg(d.exited_at - second < 10000, "%s", dmn_describe(&d));
	ck_assert_ptr_nonnull(strstr(d.err, "again"));
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* ---- faults of the master ---- */

/*
 * The fork server fails (sig: SIGKILL, it dies; SIGSTOP, it stalls and never answers), then a
 * worker dies: its replacement is exec'd all the same, the log says why (expect), and the
 * fork server is reaped, not left behind. A stalled one costs the master one bounded wait
 * (ZYGOTE_FORK_TIMEOUT_MS) before it is killed. After its backoff (1 s) a new fork server is
 * started at the next worker start, and workers are forked again.
 */
static void fork_server_fails(int sig, const char *expect)
{
	struct daemon d;
	pid_t workers[WORKERS_MAX], now[WORKERS_MAX], zygote, again;
	int64_t deadline;
	char state;
	int n;

	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 2\nthreads = 1\nmin_uptime = 0\n"
				"max_worker_faults = 1000/60s\n");
	dmn_start(&d, NULL);
	n = wait_ready(&d, workers, WORKERS_MAX);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(tu_find_children(d.pid, "bulkhead-zygote", &zygote, 1), 1);
	ck_assert_int_eq(kill(zygote, sig), 0);
	ck_assert_int_eq(kill(workers[0], SIGKILL), 0);
	dmn_expect_stderr(&d, expect, START_MS);

	deadline = tu_now_ms() + START_MS;
	for (;;) {
		n = tu_find_workers(d.pid, now, WORKERS_MAX);
		if (n == 2 && now[0] != workers[0] && now[1] != workers[0])
			break;
		ck_assert_msg(tu_ms_left(deadline) > 0, "no replacement; %s", dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	ck_assert_int_lt(tu_proc_stat(zygote, NULL, 0, &state, NULL), 0);

	/*
	 * Worker deaths go on; once the backoff has passed, one of them starts a new one. One
	 * kill per 100 ms at most: dmn_pump() returns at each log line, and a kill on every
	 * return used up max_worker_faults (1000 a minute) within the backoff on a slow
	 * (sanitized) build, and the pool failed instead.
	 */
	deadline = tu_now_ms() + START_MS;
	while (!d.err || !strstr(d.err, "is up again: workers are forked")) {
		pid_t victim;

		ck_assert_msg(tu_ms_left(deadline) > 0, "no new fork server; %s", dmn_describe(&d));
		n = tu_find_workers(d.pid, now, WORKERS_MAX);
		if (n == 2) {
			victim = now[0];
			ck_assert_int_eq(kill(victim, SIGKILL), 0);
			while (tu_process_alive(victim) && tu_ms_left(deadline) > 0)
				dmn_pump(&d, 20);
		}
		dmn_watch(&d, 100);
	}
	/*
	 * It is there, or soon. The loop above must not kill it as a worker: a fork server has a
	 * worker's name from its exec to its prctl(PR_SET_NAME), and tu_find_workers() leaves it
	 * out by its argv (killed, no new one would start before another worker start).
	 */
	deadline = tu_now_ms() + START_MS;
	while (tu_find_children(d.pid, "bulkhead-zygote", &again, 1) != 1) {
		ck_assert_msg(tu_ms_left(deadline) > 0, "no fork server; %s", dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	ck_assert_int_ne(again, zygote);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}

START_TEST(test_fork_server_killed_falls_back_to_exec)
{
	fork_server_fails(SIGKILL, "workers are exec'd until it is started again");
}
END_TEST

START_TEST(test_fork_server_stalled_falls_back_to_exec)
{
	fork_server_fails(SIGSTOP, "timed out): workers are exec'd until it is started again");
}
END_TEST

START_TEST(test_master_sigkill_leaves_no_worker)
{
	struct daemon d;
	pid_t workers[WORKERS_MAX];
	int64_t deadline;
	int n;

	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 2\nthreads = 2\n"
			     "[pool other]\nworkers = 1\nthreads = 1\n"
			     "[job forever]\nrun = builtin:hang\ntimeout = infinity\ncount = 1\n");
	dmn_start(&d, NULL);
	n = wait_ready(&d, workers, WORKERS_MAX);
	ck_assert_int_eq(n, 3);
	wait_job_running(&d, workers, n); /* a job in flight when the master dies */
	/* The fork server (worker_start = fork-server, the default) must go too. */
	ck_assert_int_eq(tu_find_children(d.pid, "bulkhead-zygote", workers + n, 1), 1);
	n++;

	dmn_signal(&d, SIGKILL);
	ck_assert_msg(dmn_wait_exit(&d, 5000), "%s", dmn_describe(&d));
	ck_assert(WIFSIGNALED(d.status) && WTERMSIG(d.status) == SIGKILL);

	/*
	 * As the master died its workers were re-parented to us (subreaper): each must be gone
	 * within ORPHAN_MS.
	 */
	deadline = d.exited_at + ORPHAN_MS;
	for (int i = 0; i < n; i++) {
		int st = 0, r = tu_wait_exit(workers[i], tu_ms_left(deadline), &st);

		if (r == -ETIMEDOUT) {
			for (int k = i; k < n; k++)
				tu_kill_wait(workers[k]);
			ck_abort_msg("worker %d still alive %dms after its master's SIGKILL",
				     (int)workers[i], ORPHAN_MS);
		}
		ck_assert_msg(r == 0, "worker %d: %s", (int)workers[i], strerror(-r));
		/* Its parent-death SIGKILL, or its own exit on seeing the socket's EOF first. */
		ck_assert_msg(WIFEXITED(st) || WTERMSIG(st) == SIGKILL, "worker %d %s",
			      (int)workers[i], tu_describe_status(st));
	}
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* ---- processes a job started: none outlives the master ---- */

/*
 * Commands whose children leave their process group (setsid, a double fork into a session of
 * its own) die with the master too, when it is SIGKILLed: the workers die by their PDEATHSIG,
 * and each command's trampoline, told by its own, ends everything the command started.
 */
START_TEST(test_master_sigkill_leaves_no_command)
{
	struct daemon d;
	pid_t workers[WORKERS_MAX];
	char conf[2048], path[512];
	int64_t deadline;

	dmn_init(&d);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 2\n"
		 "[job forever]\nrun = exec:/usr/bin/env BHTEST_MARK=%s /bin/sh -c "
		 "'sleep 3333 & setsid sleep 3333 & "
		 "x=$(setsid sh -c \"sleep 3333 >/dev/null 2>&1 & echo\"); "
		 "touch %s/up.{id}; wait'\ntimeout = infinity\ncount = 2\n",
		 d.dir, d.dir);
	dmn_write_config(&d, conf);
	dmn_start(&d, NULL);
	ck_assert_int_eq(wait_ready(&d, workers, WORKERS_MAX), 1);
	deadline = tu_now_ms() + START_MS;
	for (int id = 1; id <= 2; id++) {
		snprintf(path, sizeof(path), "%s/up.%d", d.dir, id);
		while (access(path, F_OK) < 0) {
			ck_assert_msg(tu_ms_left(deadline) > 0, "the commands did not start; %s",
				      dmn_describe(&d));
			dmn_pump(&d, 20); /* waiting for a file to appear */
		}
	}
	dmn_signal(&d, SIGKILL);
	ck_assert_msg(dmn_wait_exit(&d, 5000), "%s", dmn_describe(&d));
	/* Orphans come to us (subreaper): the worker, the fork server and each command. */
	dmn_assert_nothing_left(d.dir, ORPHAN_MS * 5, "the master's SIGKILL");
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/*
 * The fork server is started with LD_BIND_NOW=bulkhead (common/zygote-proto.h: it binds every
 * symbol once, for every worker it forks) and takes it out of its environment, so a command
 * a forked worker starts does not have it. A user's own LD_BIND_NOW stands, for both.
 */
static void fork_server_bind_now(const char *const *env, const char *want_server,
				 const char *want_command)
{
	struct daemon d;
	pid_t workers[WORKERS_MAX], zygote, cmd;
	char conf[1024], *v;
	int64_t deadline;

	dmn_init(&d);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 1\n"
		 "[job forever]\nrun = exec:/usr/bin/env BHTEST_MARK=%s /bin/sleep 3333\n"
		 "timeout = infinity\n",
		 d.dir);
	dmn_write_config(&d, conf);
	dmn_start(&d, env);
	ck_assert_int_eq(wait_ready(&d, workers, WORKERS_MAX), 1);
	ck_assert_int_eq(tu_find_children(d.pid, "bulkhead-zygote", &zygote, 1), 1);
	v = tu_env_of(zygote, "LD_BIND_NOW");
	ck_assert_msg(v && strcmp(v, want_server) == 0, "the fork server has LD_BIND_NOW=%s",
		      v ? v : "(none)");
	free(v);
	deadline = tu_now_ms() + START_MS;
	while (tu_find_marked(d.dir, &cmd, 1) != 1) {
		ck_assert_msg(tu_ms_left(deadline) > 0, "the command did not start; %s",
			      dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	v = tu_env_of(cmd, "LD_BIND_NOW");
	if (want_command)
		ck_assert_msg(v && strcmp(v, want_command) == 0, "the command has LD_BIND_NOW=%s",
			      v ? v : "(none)");
	else
		ck_assert_msg(!v, "the command has LD_BIND_NOW=%s", v);
	free(v);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}

START_TEST(test_fork_server_binds_now)
{
	const char *const users[] = { "LD_BIND_NOW=1", NULL };

	fork_server_bind_now(NULL, "bulkhead", NULL);
	fork_server_bind_now(users, "1", "1");
}
END_TEST

START_TEST(test_second_instance_refused)
{
	const char *env1[] = { "WATCHDOG_USEC=400000", NULL };
	char runtime_var[300], expect[128], *lock;
	const char *env2[] = { runtime_var, NULL };
	struct daemon d, d2;
	pid_t before[WORKERS_MAX], after[WORKERS_MAX];
	size_t mark;
	int n;

	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 2\nthreads = 1\n");
	dmn_start(&d, env1);
	n = wait_ready(&d, before, WORKERS_MAX);
	ck_assert_int_eq(n, 2);

	/* The second: its own notify socket and config, the first's runtime dir. */
	dmn_init(&d2);
	dmn_write_config(&d2, "[pool main]\nworkers = 2\nthreads = 1\n");
	snprintf(runtime_var, sizeof(runtime_var), "RUNTIME_DIRECTORY=%s", d.run_dir);
	dmn_start(&d2, env2);
	dmn_expect_exit(&d2, 1, EXIT_MS);
	snprintf(expect, sizeof(expect), "another bulkheadd (pid %d) is running", (int)d.pid);
	ck_assert_msg(strstr(d2.err, expect), "%s", dmn_describe(&d2));
	ck_assert_msg(d2.n_notices == 0, "the refused instance notified: %s", dmn_describe(&d2));
	dmn_free(&d2);

	/* The first is untouched: same workers, still its lock, its loop still turns. */
	mark = d.n_notices;
	dmn_expect_notice(&d, mark, "WATCHDOG=1", 5000);
	ck_assert_msg(!d.exited, "%s", dmn_describe(&d));
	ck_assert_int_eq(tu_find_workers(d.pid, after, WORKERS_MAX), 2);
	ck_assert_int_eq(memcmp(before, after, 2 * sizeof(pid_t)), 0);
	{
		char path[512];

		snprintf(path, sizeof(path), "%s/bulkheadd.lock", d.run_dir);
		lock = tu_read_file(path);
		ck_assert_ptr_nonnull(lock);
		ck_assert_int_eq(atoi(lock), d.pid);
		free(lock);
	}
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

START_TEST(test_sigpipe_storm_survives)
{
	const char *env[] = { "WATCHDOG_USEC=400000", NULL };
	struct daemon d;
	pid_t before[WORKERS_MAX], after[WORKERS_MAX];
	size_t mark;
	int n, fds;

	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 2\nthreads = 1\n");
	dmn_start(&d, env);
	n = wait_ready(&d, before, WORKERS_MAX);
	ck_assert_int_eq(n, 2);
	fds = dmn_settled_fds(&d);
	for (int i = 0; i < 200; i++)
		dmn_signal(&d, SIGPIPE);
	/* Two pings after the storm: the loop turned after every signal was delivered. */
	mark = d.n_notices;
	dmn_expect_notice(&d, dmn_expect_notice(&d, mark, "WATCHDOG=1", 5000) + 1, "WATCHDOG=1",
			  5000);
	ck_assert_msg(!d.exited, "%s", dmn_describe(&d));
	ck_assert_int_eq(tu_find_workers(d.pid, after, WORKERS_MAX), 2);
	ck_assert_int_eq(memcmp(before, after, 2 * sizeof(pid_t)), 0);
	ck_assert_int_eq(dmn_settled_fds(&d), fds); /* no fd leaked */
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* ---- SIGHUP: reload ---- */

/*
 * These two depend on the reload work in daemon/master.c (SIGHUP handling): a bulkheadd
 * without it dies of SIGHUP's default action, and they fail with "killed by SIGHUP". They
 * assert DESIGN §5 and §9: SIGHUP reloads the config, RELOADING=1 with MONOTONIC_USEC= in
 * one datagram, then READY=1; a storm is coalesced; the workers of an unchanged config stay
 * the same processes; no fd leaks; SIGTERM afterwards exits 0.
 */

/*
 * Waits for every RELOADING=1 from `from` on to be followed by READY=1, then for the loop to
 * go quiet (two WATCHDOG=1 pings with no new RELOADING=1). Returns the reloads seen.
 */
static size_t wait_reloads_settled(struct daemon *d, size_t from)
{
	int64_t deadline = tu_now_ms() + 30000;

	dmn_expect_notice(d, from, "RELOADING=1", 10000);
	for (;;) {
		size_t rel = dmn_count_notices(d, from, "RELOADING=1");
		size_t rdy = dmn_count_notices(d, from, "READY=1");
		long last_rel = -1, pings = 0;

		for (size_t i = from; i < d->n_notices; i++)
			if (dmn_notice_has(d->notices[i].text, "RELOADING=1"))
				last_rel = (long)i;
		for (size_t i = (size_t)last_rel + 1; i < d->n_notices; i++)
			pings += dmn_notice_has(d->notices[i].text, "WATCHDOG=1");
		ck_assert_msg(!d->exited, "daemon died on SIGHUP (no reload yet?); %s",
			      dmn_describe(d));
		ck_assert_msg(rdy <= rel, "%zu READY=1 for %zu RELOADING=1; %s", rdy, rel,
			      dmn_describe(d));
		if (rel > 0 && rdy == rel && pings >= 2)
			return rel;
		ck_assert_msg(tu_ms_left(deadline) > 0, "reloads never settled; %s",
			      dmn_describe(d));
		dmn_pump(d, tu_ms_left(deadline));
	}
}

START_TEST(test_sighup_reload_notifies)
{
	const char *env[] = { "WATCHDOG_USEC=400000", NULL };
	struct daemon d;
	pid_t before[WORKERS_MAX], after[WORKERS_MAX];
	size_t from, reloading, ready;
	unsigned long long mono;
	struct timespec ts;
	const char *v;
	int64_t t0, now;

	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 2\nthreads = 1\n");
	dmn_start(&d, env);
	ck_assert_int_eq(wait_ready(&d, before, WORKERS_MAX), 2);

	dmn_pump(&d, 0);
	from = d.n_notices;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	dmn_signal(&d, SIGHUP);
	reloading = dmn_expect_notice(&d, from, "RELOADING=1", 10000);
	/* MONOTONIC_USEC= in the same datagram, on CLOCK_MONOTONIC, taken after the signal. */
	ck_assert_msg(dmn_find_line(d.notices[reloading].text, "MONOTONIC_USEC=", &v),
		      "RELOADING=1 without MONOTONIC_USEC=; %s", dmn_describe(&d));
	mono = strtoull(v, NULL, 10);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	ck_assert_msg((int64_t)mono >= t0 && (int64_t)mono <= now,
		      "MONOTONIC_USEC=%llu not in [%lld, %lld]", mono, (long long)t0,
		      (long long)now);
	ready = dmn_expect_notice(&d, reloading + 1, "READY=1", 10000);
	ck_assert_uint_gt(ready, reloading);
	ck_assert_int_eq(wait_reloads_settled(&d, from), 1);
	ck_assert_int_eq(tu_find_workers(d.pid, after, WORKERS_MAX), 2);
	ck_assert_int_eq(memcmp(before, after, 2 * sizeof(pid_t)), 0);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

START_TEST(test_sighup_storm_coalesced)
{
	const char *env[] = { "WATCHDOG_USEC=400000", NULL };
	struct daemon d;
	pid_t before[WORKERS_MAX], after[WORKERS_MAX];
	size_t from, reloads;
	int fds;

	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 2\nthreads = 1\n"
			     "[pool b]\nworkers = 1\nthreads = 1\n");
	dmn_start(&d, env);
	ck_assert_int_eq(wait_ready(&d, before, WORKERS_MAX), 3);
	fds = dmn_settled_fds(&d);

	dmn_pump(&d, 0);
	from = d.n_notices;
	for (int i = 0; i < 200; i++)
		dmn_signal(&d, SIGPIPE);
	for (int i = 0; i < 50; i++)
		dmn_signal(&d, SIGHUP);
	reloads = wait_reloads_settled(&d, from);
	ck_assert_msg(reloads >= 1 && reloads < 50, "%zu reloads for 50 SIGHUPs; %s", reloads,
		      dmn_describe(&d));
	ck_assert_int_eq(tu_find_workers(d.pid, after, WORKERS_MAX), 3);
	ck_assert_int_eq(memcmp(before, after, 3 * sizeof(pid_t)), 0);
	ck_assert_int_eq(dmn_settled_fds(&d), fds); /* no fd leaked */
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* ---- command line and config ---- */

/* Runs bulkheadd with argv[1..] in d's dir, collecting stdout and stderr; returns the status. */
/* One live worker of the daemon, as its argv says: --pool P --index I --threads T. */
struct slot {
	pid_t pid;
	char pool[40];
	unsigned index, threads;
};

static int read_slots(pid_t daemon, struct slot *slots, int max)
{
	pid_t pids[WORKERS_MAX];
	int n = tu_find_workers(daemon, pids, WORKERS_MAX), k = 0;

	for (int i = 0; i < n && k < max; i++) {
		char path[64], cmd[1024];
		ssize_t len;
		int fd;

		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pids[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, cmd, sizeof(cmd) - 1);
		close(fd);
		if (len <= 0)
			continue;
		cmd[len] = '\0';
		slots[k] = (struct slot){ .pid = pids[i] };
		for (char *a = cmd; a < cmd + len; a += strlen(a) + 1) {
			char *v = a + strlen(a) + 1;

			if (v >= cmd + len)
				break;
			if (strcmp(a, "--pool") == 0)
				snprintf(slots[k].pool, sizeof(slots[k].pool), "%s", v);
			else if (strcmp(a, "--index") == 0)
				slots[k].index = (unsigned)atoi(v);
			else if (strcmp(a, "--threads") == 0)
				slots[k].threads = (unsigned)atoi(v);
		}
		if (slots[k].pool[0])
			k++;
	}
	return k;
}

static const struct slot *slot_of(const struct slot *s, int n, const char *pool, unsigned index)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s[i].pool, pool) == 0 && s[i].index == index)
			return &s[i];
	return NULL;
}

static int count_pool(const struct slot *s, int n, const char *pool)
{
	int c = 0;

	for (int i = 0; i < n; i++)
		c += strcmp(s[i].pool, pool) == 0;
	return c;
}

START_TEST(test_broken_reload_keeps_old_config)
{
	struct daemon d;
	pid_t before[WORKERS_MAX], after[WORKERS_MAX];
	size_t from;

	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 2\nthreads = 1\n");
	dmn_start(&d, NULL);
	ck_assert_int_eq(wait_ready(&d, before, WORKERS_MAX), 2);
	/* Half of the new file is fine, then an error: nothing of it may be applied. */
	dmn_write_config(&d, "[pool main]\nworkers = 3\nthreads = 2\n[pool extra]\nworkers = 1\n"
			     "[job j]\npool = extra\nrun = builtin:noop\ncount = 5\n"
			     "[pool bad]\nthreads = lots\n");
	dmn_pump(&d, 0);
	from = d.n_notices;
	dmn_signal(&d, SIGHUP);
	dmn_expect_notice(&d, dmn_expect_notice(&d, from, "RELOADING=1", 10000) + 1, "READY=1",
			  10000);
	dmn_expect_stderr(&d, "test.conf:11: [pool bad] threads = lots", 10000);
	dmn_expect_stderr(&d, "reload failed", 10000);
	/* Let the loop turn a few times: still the same two workers, nothing new started. */
	dmn_watch(&d, 300);
	ck_assert_int_eq(tu_find_workers(d.pid, after, WORKERS_MAX), 2);
	ck_assert_int_eq(memcmp(before, after, 2 * sizeof(pid_t)), 0);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* True once a notification from index `from` on contains text (anywhere in it). */
static bool notice_contains(const struct daemon *d, size_t from, const char *text)
{
	for (size_t i = from; i < d->n_notices; i++)
		if (strstr(d->notices[i].text, text))
			return true;
	return false;
}

/*
 * A reload replaces a worker whose job outlasts drain_timeout: the master ends it (SIGTERM,
 * then SIGKILL). That is nobody's fault: the job runs again as a bystander (not a suspect
 * run alone, never blamed), and the worker restarts at once.
 */
START_TEST(test_reload_stop_escalation_blames_nobody)
{
	struct daemon d;
	pid_t workers[WORKERS_MAX];
	int64_t deadline;
	size_t from;
	int n;

	dmn_init(&d);
	dmn_write_config(&d, "[supervisor]\ndrain_timeout = 100ms\n"
			     "[pool main]\nworkers = 1\nthreads = 1\n"
			     "[job long]\nrun = builtin:hang\nargs = ms=1500\nmax_attempts = 1\n");
	dmn_start(&d, NULL);
	n = wait_ready(&d, workers, WORKERS_MAX);
	ck_assert_int_eq(n, 1);
	wait_job_running(&d, workers, n);
	dmn_write_config(&d, "[supervisor]\ndrain_timeout = 100ms\n"
			     "[pool main]\nworkers = 1\nthreads = 2\n"
			     "[job long]\nrun = builtin:hang\nargs = ms=1500\nmax_attempts = 1\n");
	from = d.n_notices;
	dmn_signal(&d, SIGHUP);
	dmn_expect_notice(&d, from, "RELOADING=1", 10000);
	dmn_expect_stderr(&d, "after it was asked to stop; 1 job re-queued", START_MS);
	/* It runs again on the new worker and ends done: never blamed, never quarantined. */
	deadline = tu_now_ms() + 20000;
	while (!notice_contains(&d, from, "jobs: 1 done")) {
		ck_assert_msg(tu_ms_left(deadline) > 0, "the job never ended; %s", dmn_describe(&d));
		dmn_pump(&d, 50); /* waiting for the next STATUS= */
	}
	ck_assert_msg(!strstr(d.err, "no crash report") && !strstr(d.err, "quarantined"), "%s",
		      dmn_describe(&d));
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

START_TEST(test_reload_resizes_adds_and_removes_pools)
{
	struct daemon d;
	struct slot s[WORKERS_MAX];
	pid_t keep0, keep1, gone0;
	int n = 0;
	int64_t deadline;
	size_t from;

	dmn_init(&d);
	dmn_write_config(&d, "[pool keep]\nworkers = 2\nthreads = 1\n"
			     "[pool grow]\nworkers = 1\nthreads = 1\n"
			     "[pool gone]\nworkers = 1\nthreads = 1\n");
	dmn_start(&d, NULL);
	wait_ready(&d, NULL, 0);
	n = read_slots(d.pid, s, WORKERS_MAX);
	ck_assert_int_eq(n, 4);
	keep0 = slot_of(s, n, "keep", 0)->pid;
	keep1 = slot_of(s, n, "keep", 1)->pid;
	gone0 = slot_of(s, n, "gone", 0)->pid;

	dmn_write_config(&d, "[pool keep]\nworkers = 2\nthreads = 1\n"
			     "[pool grow]\nworkers = 2\nthreads = 3\n"
			     "[pool fresh]\nworkers = 1\nthreads = 1\n"
			     "[job hello]\npool = fresh\nrun = builtin:noop\ncount = 7\n");
	dmn_pump(&d, 0);
	from = d.n_notices;
	dmn_signal(&d, SIGHUP);
	dmn_expect_notice(&d, dmn_expect_notice(&d, from, "RELOADING=1", 10000) + 1, "READY=1",
			  10000);
	/* Wait for the real end state: grow rolled to 2 x 3 threads, fresh up, gone gone. */
	deadline = tu_now_ms() + 20000;
	for (;;) {
		n = read_slots(d.pid, s, WORKERS_MAX);
		if (count_pool(s, n, "grow") == 2 && slot_of(s, n, "grow", 0) &&
		    slot_of(s, n, "grow", 0)->threads == 3 && slot_of(s, n, "grow", 1) &&
		    slot_of(s, n, "grow", 1)->threads == 3 && count_pool(s, n, "fresh") == 1 &&
		    count_pool(s, n, "gone") == 0 && !tu_process_alive(gone0))
			break;
		ck_assert_msg(tu_ms_left(deadline) > 0, "workers never settled; %s",
			      dmn_describe(&d));
		dmn_pump(&d, 20); /* re-read /proc between datagrams: waiting for a state */
	}
	/* The unchanged pool was not touched. */
	ck_assert_int_eq(count_pool(s, n, "keep"), 2);
	ck_assert_int_eq(slot_of(s, n, "keep", 0)->pid, keep0);
	ck_assert_int_eq(slot_of(s, n, "keep", 1)->pid, keep1);
	/* The new job group ran on the new pool. */
	deadline = tu_now_ms() + 20000;
	dmn_expect_stderr(&d, "job group hello: added by the reload: 7 jobs", 10000);
	dmn_expect_stderr(&d, "pool gone: removed by the reload", 10000);
	dmn_expect_stderr(&d, "pool fresh: added by the reload", 10000);
	for (;;) {
		const char *st;

		dmn_pump(&d, 200);
		st = d.n_notices ? status_of(d.notices[d.n_notices - 1].text) : NULL;
		if (st && status_count(st, "done") == 7)
			break;
		ck_assert_msg(tu_ms_left(deadline) > 0, "jobs of the new group never done; %s",
			      dmn_describe(&d));
	}
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

static int run_cli(struct daemon *d, const char *const *args, char **ret_out, char **ret_err)
{
	const char *argv[16] = { dmn_path() };
	char notify_var[200], runtime_var[300], state_var[300];
	const char *env[] = { notify_var, runtime_var, state_var, NULL };
	int out_fd, err_fd, st;
	size_t n = 1;
	pid_t pid;

	for (size_t i = 0; args[i]; i++) {
		ck_assert_uint_lt(n, 15);
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	snprintf(notify_var, sizeof(notify_var), "NOTIFY_SOCKET=%s", d->notify_path);
	snprintf(runtime_var, sizeof(runtime_var), "RUNTIME_DIRECTORY=%s", d->run_dir);
	snprintf(state_var, sizeof(state_var), "STATE_DIRECTORY=%s", d->state_dir);
	ck_assert_int_eq(tu_spawn(argv, env, -1, &out_fd, &err_fd, &pid), 0);
	/* Small outputs: reading one pipe to the end, then the other, cannot block the child. */
	*ret_out = tu_read_all(out_fd, EXIT_MS);
	*ret_err = tu_read_all(err_fd, EXIT_MS);
	close(out_fd);
	close(err_fd);
	if (tu_wait_exit(pid, EXIT_MS, &st) < 0) {
		tu_kill_wait(pid);
		ck_abort_msg("bulkheadd %s did not exit", args[0]);
	}
	ck_assert_ptr_nonnull(*ret_out);
	ck_assert_ptr_nonnull(*ret_err);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Nothing was started: no runtime dir (the lock comes after the config), no datagram. */
static void assert_nothing_started(struct daemon *d)
{
	struct stat st;

	ck_assert_msg(stat(d->run_dir, &st) < 0 && errno == ENOENT, "%s was created", d->run_dir);
	dmn_pump(d, 0);
	ck_assert_msg(d->n_notices == 0, "%s", dmn_describe(d));
	ck_assert_int_eq(dmn_count_our_workers(), 0);
	ck_assert_int_eq(tu_count_zombie_children(), 0);
}

START_TEST(test_config_error_exits_78)
{
	struct daemon d;
	char *out, *err, where[300];
	int rc;

	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 2\nthreads = abc\n"
			     "[job j]\nrun = builtin:noop\n");
	{
		const char *args[] = { "-c", d.conf_path, NULL };

		rc = run_cli(&d, args, &out, &err);
	}
	snprintf(where, sizeof(where), "%s:3:", d.conf_path);
	ck_assert_msg(rc == 78, "exit %d; stderr:\n%s", rc, err);
	ck_assert_msg(strstr(err, where) && strstr(err, "threads"), "stderr:\n%s", err);
	assert_nothing_started(&d);
	free(out);
	free(err);

	/* A missing file is a config error too. */
	{
		char missing[300];
		const char *args[] = { "-c", missing, NULL };

		snprintf(missing, sizeof(missing), "%s/nonexistent.conf", d.dir);
		rc = run_cli(&d, args, &out, &err);
		ck_assert_msg(rc == 78, "exit %d; stderr:\n%s", rc, err);
		ck_assert_ptr_nonnull(strstr(err, "nonexistent.conf"));
		free(out);
		free(err);
	}
	assert_nothing_started(&d);

	/* A plugin that does not load, or whose constructor crashes: found by the probe. */
	{
		static const char *const plugins[][2] = {
			{ "abi-old.so:outcome", "ABI" },
			{ "outcomes.so:no_such_symbol", "undefined symbol" },
			{ "ctor-crash.so:outcome", "SIGSEGV" },
		};
		const char *dir = getenv("BULKHEAD_TEST_PLUGINS");
		const char *args[] = { "-c", d.conf_path, NULL };
		char conf[1024];

		ck_assert_ptr_nonnull(dir);
		for (size_t i = 0; i < sizeof(plugins) / sizeof(plugins[0]); i++) {
			snprintf(conf, sizeof(conf),
				 "[pool main]\nworkers = 1\n[job p]\nrun = plugin:%s/%s\n", dir,
				 plugins[i][0]);
			dmn_write_config(&d, conf);
			rc = run_cli(&d, args, &out, &err);
			snprintf(where, sizeof(where), "%s:4:", d.conf_path); /* run = */
			ck_assert_msg(rc == 78, "%s: exit %d; stderr:\n%s", plugins[i][0], rc, err);
			ck_assert_msg(strstr(err, where) && strstr(err, plugins[i][1]) &&
					      strstr(err, dir),
				      "%s: stderr:\n%s", plugins[i][0], err);
			free(out);
			free(err);
			assert_nothing_started(&d);
		}
	}
	dmn_free(&d);
}
END_TEST

START_TEST(test_check_prints_effective_config)
{
	struct daemon d;
	char *out, *err;
	int rc;

	dmn_init(&d);
	dmn_write_config(&d, "[supervisor]\ndrain_timeout = 5s\n"
			     "[pool main]\nworkers = 3\n"
			     "[job j]\nrun = builtin:noop\ncount = 2\n");
	{
		const char *args[] = { "-c", d.conf_path, "--check", NULL };

		rc = run_cli(&d, args, &out, &err);
	}
	ck_assert_msg(rc == 0, "exit %d; stderr:\n%s", rc, err);
	ck_assert_msg(strstr(out, "[pool main]") && strstr(out, "[job j]"), "stdout:\n%s", out);
	ck_assert_msg(strstr(out, "threads = 4"), "defaults not printed:\n%s", out);
	assert_nothing_started(&d);
	free(out);
	free(err);
	dmn_free(&d);
}
END_TEST

START_TEST(test_usage_errors_exit_2)
{
	static const char *const bad[][4] = {
		{ "--bogus", NULL },
		{ "-x", NULL },
		{ "-c", NULL },
		{ "-c", "/dev/null", "extra", NULL },
	};
	struct daemon d;

	dmn_init(&d);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *out, *err;
		int rc = run_cli(&d, bad[i], &out, &err);

		ck_assert_msg(rc == 2, "bulkheadd %s: exit %d; stderr:\n%s", bad[i][0], rc, err);
		ck_assert_msg(strstr(err, "Usage:"), "bulkheadd %s: stderr:\n%s", bad[i][0], err);
		free(out);
		free(err);
	}
	assert_nothing_started(&d);
	dmn_free(&d);
}
END_TEST

static Suite *daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc;

	tc = tcase_create("ready");
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_ready_after_every_hello);
	tcase_add_test(tc, test_supervisor_slices);
	tcase_add_test(tc, test_no_ready_without_hello);
	tcase_add_test(tc, test_works_without_notify_socket);
	suite_add_tcase(s, tc);

	tc = tcase_create("status");
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_status_rate_limited_and_final);
	suite_add_tcase(s, tc);

	tc = tcase_create("watchdog");
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_watchdog_cadence);
	tcase_add_test(tc, test_no_watchdog_without_watchdog_usec);
	suite_add_tcase(s, tc);

	tc = tcase_create("stop");
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_sigterm_drains);
	tcase_add_test(tc, test_second_sigterm_kills_now);
	suite_add_tcase(s, tc);

	tc = tcase_create("master-faults");
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_master_sigkill_leaves_no_worker);
	tcase_add_test(tc, test_master_sigkill_leaves_no_command);
	tcase_add_test(tc, test_fork_server_binds_now);
	tcase_add_test(tc, test_fork_server_killed_falls_back_to_exec);
	tcase_add_test(tc, test_fork_server_stalled_falls_back_to_exec);
	tcase_add_test(tc, test_second_instance_refused);
	tcase_add_test(tc, test_sigpipe_storm_survives);
	suite_add_tcase(s, tc);

	/* Needs the SIGHUP reload of daemon/master.c (see above the tests). */
	tc = tcase_create("reload");
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_sighup_reload_notifies);
	tcase_add_test(tc, test_broken_reload_keeps_old_config);
	tcase_add_test(tc, test_reload_resizes_adds_and_removes_pools);
	tcase_add_test(tc, test_reload_stop_escalation_blames_nobody);
	tcase_add_test(tc, test_sighup_storm_coalesced);
	suite_add_tcase(s, tc);

	tc = tcase_create("cli");
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_config_error_exits_78);
	tcase_add_test(tc, test_check_prints_effective_config);
	tcase_add_test(tc, test_usage_errors_exit_2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dmn_run(daemon_suite(), "test-daemon");
}
