/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead run` end to end: the real master, the real workers, the real faults. Each test
 * writes a config into a private temp dir, runs the real binary with --report-json, and checks
 * the report, the exit code and the aftermath (no worker left, no zombie).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemonutil.h"
#include "testutil.h"

#define RUN_TIMEOUT_MS 120000

struct run {
	int status; /* exit code, or 128 + signal */
	json_object *report;
	char *err;
	char *dir;
};

/* The end of a long stderr, for assertion messages (Check caps their size). */
static const char *tail(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (!s)
		return "";
	return n > 2000 ? s + n - 2000 : s;
}

static void run_free(struct run *r)
{
	json_object_put(r->report);
	free(r->err);
	if (r->dir)
		tu_rm_rf(r->dir);
	free(r->dir);
}

/* Nothing of that run is left: no worker of its master, no zombie of ours. */
static void assert_aftermath(pid_t master)
{
	ck_assert_int_eq(tu_count_workers_of(master), 0);
	ck_assert_int_eq(tu_count_zombie_children(), 0);
}

/* Starts `bulkhead run` on `conf` with extra environment; returns its pid. */
static pid_t start_run(struct run *r, const char *conf, const char *const *env, int *ret_err_fd)
{
	char path[512], report[512];
	pid_t pid;

	if (!r->dir) /* else made by the test, with files the config names */
		ck_assert_int_eq(tu_mkdtemp(&r->dir), 0);
	snprintf(path, sizeof(path), "%s/test.conf", r->dir);
	snprintf(report, sizeof(report), "%s/report.json", r->dir);
	ck_assert_int_eq(tu_write_file(path, conf), 0);
	{
		const char *argv[] = { getenv("BULKHEAD_BIN"), "run", path, "--report-json", report,
				       "--quiet", NULL };
		ck_assert_int_eq(tu_spawn(argv, env, -1, NULL, ret_err_fd, &pid), 0);
	}
	return pid;
}

static void finish_run(struct run *r, pid_t pid, int err_fd)
{
	char report[512];
	int st;

	r->err = tu_read_all(err_fd, RUN_TIMEOUT_MS);
	close(err_fd);
	ck_assert_int_eq(tu_wait_exit(pid, RUN_TIMEOUT_MS, &st), 0);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	snprintf(report, sizeof(report), "%s/report.json", r->dir);
	r->report = json_object_from_file(report);
	if (!r->report)
		ck_abort_msg("no report (exit %d); stderr:\n%s", r->status, tail(r->err));
	assert_aftermath(pid);
}

static void run_config(struct run *r, const char *conf, const char *const *env)
{
	int err_fd;
	pid_t pid = start_run(r, conf, env, &err_fd);

	finish_run(r, pid, err_fd);
}

static json_object *get(json_object *o, const char *path)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
		json_object *next = NULL;

		if (!json_object_object_get_ex(o, k, &next))
			return NULL;
		o = next;
	}
	return o;
}

static int64_t geti(json_object *o, const char *path)
{
	json_object *v = get(o, path);

	ck_assert_msg(v != NULL, "report has no %s", path);
	return json_object_get_int64(v);
}

static json_object *group(struct run *r, const char *name)
{
	json_object *groups = get(r->report, "groups");

	for (size_t i = 0; i < json_object_array_length(groups); i++) {
		json_object *g = json_object_array_get_idx(groups, i);

		if (strcmp(json_object_get_string(get(g, "name")), name) == 0)
			return g;
	}
	ck_abort_msg("no group %s in report", name);
	return NULL;
}

static json_object *quarantined(struct run *r, const char *job)
{
	json_object *q = get(r->report, "quarantined");

	for (size_t i = 0; i < json_object_array_length(q); i++) {
		json_object *e = json_object_array_get_idx(q, i);

		if (strcmp(json_object_get_string(get(e, "job")), job) == 0)
			return e;
	}
	return NULL;
}

/* Sum of final states equals the total, and nothing is lost. */
static void assert_accounted(struct run *r)
{
	int64_t total = geti(r->report, "jobs.total");
	int64_t sum = geti(r->report, "jobs.done") + geti(r->report, "jobs.failed") +
		      geti(r->report, "jobs.crashed") + geti(r->report, "jobs.timed_out") +
		      geti(r->report, "jobs.cancelled");

	ck_assert_int_eq(sum, total);
	ck_assert_int_eq(geti(r->report, "jobs.lost"), 0);
}

/* ---- one run per crash builtin ---- */

static const struct {
	const char *builtin;
	const char *args;
	const char *cause;
	const char *death; /* key in workers.deaths */
} crashers[] = {
	{ "segv", "", "SIGSEGV", "SIGSEGV" },
	{ "abort", "", "SIGABRT", "SIGABRT" },
	{ "fpe", "", "SIGFPE", "SIGFPE" },
	{ "ill", "", "SIGILL", "SIGILL" },
	{ "bus", "", "SIGBUS", "SIGBUS" },
	{ "stack-overflow", "", "SIGSEGV", "SIGSEGV" },
	{ "exit", "code=3", "exit(3)", "exit" },
};

/*
 * One crash builtin, its workers forked by the fork server or exec'd (worker_start): the
 * same real signal, blame and accounting either way.
 */
static void crash_builtin_case(int i, const char *worker_start)
{
	char conf[2048];
	struct run r = { 0 };
	json_object *q;

	/*
	 * The crasher comes first, so it is dispatched together with victims on one worker.
	 * The victims outlast the crash handler's wait for the results held back (at most 50 ms,
	 * children/crash.c), so some are still running when their worker dies, whatever the
	 * scheduler does meanwhile: those are the bystanders.
	 */
	snprintf(conf, sizeof(conf),
		 "[supervisor]\nworker_start = %s\n"
		 "[pool main]\nworkers = 2\nthreads = 4\nbackoff = 10ms..100ms\n"
		 "[job crash]\nrun = builtin:%s\nargs = %s\nmax_attempts = 2\nexpect = crashed\n"
		 "[job victim]\nrun = builtin:sleep\nargs = ms=100\ncount = 40\n",
		 worker_start, crashers[i].builtin, crashers[i].args);
	run_config(&r, conf, NULL);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	assert_accounted(&r);
	q = quarantined(&r, "crash#1");
	ck_assert_ptr_nonnull(q);
	ck_assert_str_eq(json_object_get_string(get(q, "cause")), crashers[i].cause);
	ck_assert_str_eq(json_object_get_string(get(q, "state")), "crashed");
	ck_assert_int_eq(geti(q, "attempts"), 2);
	ck_assert_int_eq(geti(group(&r, "victim"), "done"), 40);
	/*
	 * One death by the real signal (its first attempt, on a shared worker), and the jobs
	 * that shared the worker were re-run; its retry ran alone and contained: a crash that
	 * killed no worker (children/contain.c).
	 */
	{
		char key[64];

		snprintf(key, sizeof(key), "workers.deaths.%s", crashers[i].death);
		ck_assert_int_eq(geti(r.report, key), 1);
		ck_assert_int_eq(geti(r.report, "workers.contained_crashes"), 1);
	}
	ck_assert_int_ge(geti(r.report, "reruns.bystander"), 1);
	ck_assert_int_eq(geti(r.report, "reruns.suspect"), 0);
	ck_assert_int_eq(geti(r.report, "workers.worker_faults"), 0);
	run_free(&r);
}

START_TEST(test_crash_builtin)
{
	crash_builtin_case(_i, "fork-server");
}
END_TEST

START_TEST(test_crash_builtin_exec)
{
	crash_builtin_case(_i, "exec");
}
END_TEST

/*
 * The text report's workers line counts the contained crashes: a job crashing on both its
 * attempts killed its worker once, and its retry crashed contained.
 */
START_TEST(test_report_counts_contained_crashes)
{
	char conf[256], path[512], *out, *err, line[256];
	struct run r = { 0 };
	int out_fd, err_fd, st;
	pid_t pid;

	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 1\n"
		 "[job segv]\nrun = builtin:segv\nmax_attempts = 2\nexpect = crashed\n");
	snprintf(path, sizeof(path), "%s/test.conf", r.dir);
	ck_assert_int_eq(tu_write_file(path, conf), 0);
	{
		const char *argv[] = { getenv("BULKHEAD_BIN"), "run", path, NULL };

		ck_assert_int_eq(tu_spawn(argv, NULL, -1, &out_fd, &err_fd, &pid), 0);
	}
	out = tu_read_all(out_fd, RUN_TIMEOUT_MS);
	err = tu_read_all(err_fd, RUN_TIMEOUT_MS);
	close(out_fd);
	close(err_fd);
	ck_assert_int_eq(tu_wait_exit(pid, RUN_TIMEOUT_MS, &st), 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d; stderr:\n%s", st,
		      tail(err));
	ck_assert_msg(out && strstr(out, "workers: "), "no workers line:\n%s", out);
	snprintf(line, sizeof(line), "%.*s", (int)strcspn(strstr(out, "workers: "), "\n"),
		 strstr(out, "workers: "));
	ck_assert_msg(strstr(line, " 1 contained crashes; deaths: SIGSEGV 1"), "%s", line);
	assert_aftermath(pid);
	free(out);
	free(err);
	run_free(&r);
}
END_TEST

START_TEST(test_leak_against_memory_max)
{
	struct run r = { 0 };
	json_object *q;

	if (BULKHEAD_SANITIZED) {
		fprintf(stderr, "SKIP leak: RLIMIT_AS cannot be applied under AddressSanitizer\n");
		return;
	}
	run_config(&r,
		   "[pool main]\nworkers = 1\nthreads = 2\n"
		   "[pool small]\nworkers = 1\nthreads = 1\nmemory_max = 64M\n"
		   "[job leak]\npool = small\nrun = builtin:leak\nargs = step=1M\n"
		   "max_attempts = 2\nexpect = crashed\n"
		   "[job fine]\nrun = builtin:noop\ncount = 100\n",
		   NULL);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	q = quarantined(&r, "leak#1");
	ck_assert_ptr_nonnull(q);
	ck_assert_str_eq(json_object_get_string(get(q, "cause")), "memory");
	assert_accounted(&r);
	run_free(&r);
}
END_TEST

/* ---- hangs ---- */

START_TEST(test_hang_and_deadlock_time_out)
{
	struct run r = { 0 };

	run_config(&r,
		   "[pool main]\nworkers = 2\nthreads = 2\nkill_grace = 200ms\n"
		   "[job hang]\nrun = builtin:hang\ntimeout = 300ms\nmax_attempts = 2\n"
		   "expect = timed_out\n"
		   "[job deadlock]\nrun = builtin:deadlock\ncount = 2\ntimeout = 300ms\n"
		   "max_attempts = 2\nexpect = timed_out\n"
		   "[job work]\nrun = builtin:sleep\nargs = ms=5\ncount = 50\n",
		   NULL);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	assert_accounted(&r);
	ck_assert_str_eq(json_object_get_string(get(quarantined(&r, "hang#1"), "cause")),
			 "timeout");
	ck_assert_str_eq(json_object_get_string(get(quarantined(&r, "deadlock#1"), "cause")),
			 "timeout");
	ck_assert_str_eq(json_object_get_string(get(quarantined(&r, "deadlock#2"), "state")),
			 "timed_out");
	ck_assert_int_eq(geti(group(&r, "work"), "done"), 50);
	ck_assert_int_ge(geti(r.report, "workers.deaths.SIGKILL"), 2);
	run_free(&r);
}
END_TEST

START_TEST(test_job_at_90_percent_of_timeout_survives)
{
	struct run r = { 0 };

	run_config(&r,
		   "[pool main]\nworkers = 1\nthreads = 2\n"
		   "[job almost]\nrun = builtin:hang\nargs = ms=900\ntimeout = 1s\n"
		   "max_attempts = 1\ncount = 4\n",
		   NULL);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	ck_assert_int_eq(geti(group(&r, "almost"), "done"), 4);
	/* Not one kill, not one re-run: they were never touched. */
	ck_assert_int_eq(json_object_object_length(get(r.report, "workers.deaths")), 0);
	ck_assert_int_eq(geti(r.report, "workers.restarts"), 0);
	ck_assert_int_eq(geti(r.report, "attempts"), 4);
	run_free(&r);
}
END_TEST

/* ---- a worker killed from outside ---- */

/* Waits (deadline 30 s) until the master's one worker runs a busy job; returns its pid. */
static pid_t wait_busy_worker(pid_t master)
{
	int64_t deadline = tu_now_ms() + 30000;
	pid_t workers[4];
	int n = 0;

	while (tu_now_ms() < deadline) {
		n = tu_find_workers(master, workers, 4);
		if (n == 1 && tu_job_thread_ticks(workers[0]) > 0)
			return workers[0];
		poll(NULL, 0, 5); /* re-check /proc: waiting for a state, with a deadline */
	}
	ck_abort_msg("no busy worker within 30 s (%d workers)", n);
	return 0;
}

START_TEST(test_worker_killed_from_outside)
{
	struct run r = { 0 };
	pid_t pid;
	int err_fd;

	pid = start_run(&r,
			"[pool main]\nworkers = 1\nthreads = 2\n"
			"[job busy]\nrun = builtin:hang\nargs = ms=1500\ntimeout = 30s\ncount = 4\n",
			NULL, &err_fd);
	/* The real event: a job thread of the worker burning CPU. Then the real fault. */
	ck_assert_int_eq(kill(wait_busy_worker(pid), SIGKILL), 0);
	finish_run(&r, pid, err_fd);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	assert_accounted(&r);
	ck_assert_int_eq(geti(group(&r, "busy"), "done"), 4);
	ck_assert_int_eq(geti(r.report, "workers.deaths.SIGKILL"), 1);
	/* Both running jobs were suspects, re-run alone, then done; nothing blamed. */
	ck_assert_int_eq(geti(r.report, "reruns.suspect"), 2);
	/*
	 * Runs are starts: the two running jobs twice, the two the worker held unstarted once
	 * (being handed to the worker that died was no run).
	 */
	ck_assert_int_eq(geti(r.report, "attempts"), 6);
	ck_assert_int_eq(json_object_array_length(get(r.report, "quarantined")), 0);
	run_free(&r);
}
END_TEST

/*
 * Reads fd (the run's stderr) until `what` appears, for up to timeout_ms. What was read, or NULL
 * if it did not appear (EOF or the deadline).
 */
static char *read_stderr_until(int fd, const char *what, int timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;
	size_t len = 0, cap = 4096;
	char *buf = calloc(1, cap);

	ck_assert_ptr_nonnull(buf);
	while (!strstr(buf, what)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (tu_ms_left(deadline) == 0 || poll(&p, 1, tu_ms_left(deadline)) <= 0)
			break;
		if (len + 1024 > cap) {
			buf = realloc(buf, cap *= 2);
			ck_assert_ptr_nonnull(buf);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
	}
	if (strstr(buf, what))
		return buf;
	fprintf(stderr, "stderr so far:\n%s\n", buf);
	free(buf);
	return NULL;
}

/*
 * A worker a tracer holds when it dies (strace, gdb; LSan's leak check at exit under ASan) is
 * not the master's to reap until the tracer lets it go, and its pidfd turns readable before
 * that, with no second wake-up to count on. The master must try again, not wait for good: it
 * did, and the run hung with its jobs "timed out" on a zombie.
 */
START_TEST(test_traced_worker_death)
{
	struct run r = { 0 };
	char *seen;
	pid_t pid, wp;
	int err_fd, st;

	pid = start_run(&r,
			"[pool main]\nworkers = 1\nthreads = 2\n"
			"[job busy]\nrun = builtin:hang\nargs = ms=1500\ntimeout = 30s\ncount = 4\n",
			NULL, &err_fd);
	wp = wait_busy_worker(pid);
	if (ptrace(PTRACE_SEIZE, wp, NULL, NULL) < 0) {
		ck_assert_int_eq(errno, EPERM);
		fprintf(stderr, "SKIP traced worker: ptrace not permitted here (%s)\n",
			strerror(errno));
		finish_run(&r, pid, err_fd);
		run_free(&r);
		return;
	}
	/* The real fault, while this test is its tracer: it ends, and only we may wait for it. */
	ck_assert_int_eq(kill(wp, SIGKILL), 0);
	seen = read_stderr_until(err_fd, "has ended, but a tracer", 30000);
	/* Let it go: the tracer's wait hands it back to its parent, the master. */
	ck_assert_int_eq(waitpid(wp, &st, __WALL), wp);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	/* The old master hung here for good, its worker a zombie it no longer watched. */
	finish_run(&r, pid, err_fd);
	ck_assert_msg(seen, "the master did not say a tracer holds its worker; stderr:\n%s",
		      tail(r.err));
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	assert_accounted(&r);
	ck_assert_int_eq(geti(group(&r, "busy"), "done"), 4);
	ck_assert_int_eq(geti(r.report, "workers.deaths.SIGKILL"), 1);
	free(seen);
	run_free(&r);
}
END_TEST

START_TEST(test_interrupted_run_ends_every_job)
{
	struct run r = { 0 };
	pid_t pid;
	int err_fd;

	pid = start_run(&r,
			"[pool main]\nworkers = 1\nthreads = 2\n"
			"[job busy]\nrun = builtin:hang\nargs = ms=1000\ncount = 20\n",
			NULL, &err_fd);
	wait_busy_worker(pid);
	ck_assert_int_eq(kill(pid, SIGINT), 0);
	finish_run(&r, pid, err_fd);
	ck_assert_int_eq(r.status, 1);
	ck_assert(json_object_get_boolean(get(r.report, "interrupted")));
	assert_accounted(&r);
	/* The two running jobs finished; everything else ended cancelled, none lost. */
	ck_assert_int_eq(geti(r.report, "jobs.done"), 2);
	ck_assert_int_eq(geti(r.report, "jobs.cancelled"), 18);
	ck_assert_str_eq(json_object_get_string(get(r.report, "interrupted_by")), "SIGINT");
	/* jobs/s counts the jobs that ran to an end, not the 18 cancelled ones */
	ck_assert_double_eq_tol(json_object_get_double(get(r.report, "jobs_per_second")),
				2 / json_object_get_double(get(r.report, "wall_seconds")), 1e-6);
	run_free(&r);
}
END_TEST

/* The column of `name` in the header line: where its text ends (right-aligned numbers). */
static size_t column_end(const char *header, const char *name)
{
	const char *at = strstr(header, name);

	ck_assert_msg(at, "no column %s in: %s", name, header);
	return (size_t)(at - header) + strlen(name);
}

/*
 * The table at the end of a run, as people see it: columns aligned whatever the group names'
 * lengths, and an interrupted run says so, with what was cancelled.
 */
START_TEST(test_summary_table_aligned_and_interrupted)
{
	static const char long_name[] = "group-name-longer-than-sixteen";
	char conf[512], path[512], *out, *err, *line, *save = NULL;
	const char *header = NULL;
	struct run r = { 0 };
	int out_fd, err_fd, st, rows = 0;
	size_t total_end = 0;
	pid_t pid;

	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 2\n"
		 "[job %s]\nrun = builtin:hang\nargs = ms=1000\ncount = 20\n"
		 "[job b]\nrun = builtin:noop\ncount = 1\n",
		 long_name);
	snprintf(path, sizeof(path), "%s/test.conf", r.dir);
	ck_assert_int_eq(tu_write_file(path, conf), 0);
	{
		const char *argv[] = { getenv("BULKHEAD_BIN"), "run", path, NULL };

		ck_assert_int_eq(tu_spawn(argv, NULL, -1, &out_fd, &err_fd, &pid), 0);
	}
	wait_busy_worker(pid);
	ck_assert_int_eq(kill(pid, SIGINT), 0);
	out = tu_read_all(out_fd, RUN_TIMEOUT_MS);
	err = tu_read_all(err_fd, RUN_TIMEOUT_MS);
	close(out_fd);
	close(err_fd);
	ck_assert_int_eq(tu_wait_exit(pid, RUN_TIMEOUT_MS, &st), 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d; stderr:\n%s", st,
		      tail(err));
	ck_assert_msg(strstr(out, "interrupted by SIGINT after "), "no interrupted line:\n%s", out);
	ck_assert_msg(strstr(out, "jobs cancelled (with --state FILE a run can be resumed)"),
		      "the interrupted line does not say what was cancelled:\n%s", out);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "GROUP ", 6) == 0) {
			header = line;
			total_end = column_end(header, "TOTAL");
			continue;
		}
		if (!header || (strncmp(line, long_name, strlen(long_name)) != 0 &&
				strncmp(line, "b ", 2) != 0))
			continue;
		/* the TOTAL cell (20 or 1) ends where its heading ends */
		ck_assert_msg(strlen(line) > total_end && line[total_end] == ' ' &&
				      line[total_end - 1] >= '0' && line[total_end - 1] <= '9',
			      "TOTAL not aligned under its heading:\n%s\n%s", header, line);
		rows++;
	}
	ck_assert_int_eq(rows, 2);
	assert_aftermath(pid);
	free(out);
	free(err);
	run_free(&r);
}
END_TEST

/* ---- worker faults ---- */

/* The "restarting in X" delays of the master's log, in microseconds. */
static int restart_delays(const char *err, double *delays, int max)
{
	int n = 0;

	for (const char *p = err; p && n < max && (p = strstr(p, "restarting in ")); p++) {
		char unit[8] = "";
		double v;

		if (sscanf(p + 14, "%lf%7[a-z]", &v, unit) != 2)
			continue;
		if (strcmp(unit, "us") == 0)
			delays[n++] = v;
		else if (strcmp(unit, "ms") == 0)
			delays[n++] = v * 1e3;
		else if (strcmp(unit, "s") == 0)
			delays[n++] = v * 1e6;
	}
	return n;
}

START_TEST(test_worker_dies_before_hello)
{
	const char *env[] = { "BULKHEAD_WORKER=/bin/false", NULL };
	struct run r = { 0 };
	double d[16];
	int n;

	run_config(&r,
		   "[pool main]\nworkers = 1\nthreads = 2\nbackoff = 10ms..1s\n"
		   "min_uptime = 1s\nmax_worker_faults = 4/60s\n"
		   "[job work]\nrun = builtin:noop\ncount = 5\n",
		   env);
	ck_assert_msg(r.status == 1, "exit %d, stderr:\n%s", r.status, tail(r.err));
	ck_assert_int_eq(geti(r.report, "jobs.cancelled"), 5);
	ck_assert_int_eq(geti(r.report, "pools_failed"), 1);
	ck_assert_int_eq(geti(r.report, "workers.worker_faults"), 5);
	ck_assert_int_eq(geti(r.report, "workers.deaths.exit"), 5);
	assert_accounted(&r);
	/* The backoff grows: each delay at least the one before (jitter in [cur/2, cur]). */
	n = restart_delays(r.err, d, 16);
	ck_assert_int_eq(n, 4);
	for (int i = 1; i < n; i++)
		ck_assert_msg(d[i] >= d[i - 1], "delay %d (%.0fus) < delay %d (%.0fus)", i, d[i],
			      i - 1, d[i - 1]);
	ck_assert_msg(d[3] >= 40000, "4th delay %.0fus: backoff did not grow", d[3]);
	ck_assert_ptr_nonnull(strstr(r.err, "pool main failed"));
	run_free(&r);
}
END_TEST

/*
 * A worker still starting when the run ends is stopped by the master (SIGKILL: it cannot
 * take a STOP before HELLO). That is the master's doing, not a worker death: only the segv
 * is counted. (Workers here take half a second to start, so the crashed one's replacement
 * is still starting when the last job ends.)
 */
START_TEST(test_stopping_a_starting_worker_is_no_death)
{
	char script[512], real[640], worker[640];
	const char *env[] = { worker, real, NULL };
	struct run r = { 0 };

	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	snprintf(script, sizeof(script), "%s/slow-worker", r.dir);
	ck_assert_int_eq(tu_write_file(script, "#!/usr/bin/perl\n"
					       "select(undef, undef, undef, 0.5);\n"
					       "exec { $ENV{REAL_WORKER} } $0, @ARGV or exit 127;\n"),
			 0);
	ck_assert_int_eq(chmod(script, 0755), 0);
	snprintf(worker, sizeof(worker), "BULKHEAD_WORKER=%s", script);
	snprintf(real, sizeof(real), "REAL_WORKER=%s", getenv("BULKHEAD_WORKER"));
	run_config(&r,
		   "[supervisor]\nworker_start = exec\n"
		   "[pool main]\nworkers = 2\nthreads = 1\n"
		   "[job segv]\nrun = builtin:segv\nmax_attempts = 1\nexpect = crashed\n"
		   "[job work]\nrun = builtin:noop\ncount = 3\n",
		   env);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	assert_accounted(&r);
	ck_assert_int_eq(geti(r.report, "workers.deaths.SIGSEGV"), 1);
	ck_assert_msg(json_object_object_length(get(r.report, "workers.deaths")) == 1,
		      "deaths: %s", json_object_to_json_string(get(r.report, "workers.deaths")));
	ck_assert_int_eq(geti(r.report, "workers.worker_faults"), 0);
	run_free(&r);
}
END_TEST

START_TEST(test_exec_failure)
{
	const char *env[] = { "BULKHEAD_WORKER=/nonexistent/bulkhead-worker", NULL };
	struct run r = { 0 };
	int64_t t0 = tu_now_ms();

	run_config(&r,
		   "[pool main]\nworkers = 2\nbackoff = 20ms..1s\nmax_worker_faults = 3/60s\n"
		   "[job work]\nrun = builtin:noop\ncount = 3\n",
		   env);
	ck_assert_int_eq(r.status, 1);
	ck_assert_ptr_nonnull(strstr(r.err, "/nonexistent/bulkhead-worker: No such file"));
	ck_assert_int_eq(geti(r.report, "jobs.cancelled"), 3);
	ck_assert_int_eq(geti(r.report, "workers.started"), 0);
	ck_assert_int_eq(geti(r.report, "workers.worker_faults"), 4);
	/* No fast loop: at least the first backoffs (>= 10ms + 10ms) passed between tries. */
	ck_assert_int_ge(tu_now_ms() - t0, 20);
	run_free(&r);
}
END_TEST

/* ---- the lessons ---- */

START_TEST(test_balance_8_threads_always_zero)
{
	struct run r = { 0 };

	run_config(&r,
		   "[pool main]\nworkers = 1\nthreads = 8\n"
		   "[job bal]\nrun = builtin:balance\nargs = iterations=20000 amount=7 lock=yes\n"
		   "count = 200\nmax_attempts = 1\n",
		   NULL);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	ck_assert_int_eq(geti(group(&r, "bal"), "done"), 200);
	ck_assert_int_eq(geti(group(&r, "bal"), "failed"), 0);
	run_free(&r);
}
END_TEST

START_TEST(test_tls_never_leaks)
{
	struct run r = { 0 };

	run_config(&r,
		   "[pool main]\nworkers = 2\nthreads = 8\n"
		   "[job tls]\nrun = builtin:tls\nargs = rounds=3000\ncount = 200\n"
		   "max_attempts = 1\n",
		   NULL);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	ck_assert_int_eq(geti(group(&r, "tls"), "done"), 200);
	run_free(&r);
}
END_TEST

START_TEST(test_failed_jobs_and_exit_code)
{
	struct run r = { 0 };

	run_config(&r,
		   "[job bad]\nrun = builtin:fail\nmax_attempts = 3\ncount = 2\n"
		   "[job good]\nrun = builtin:noop\ncount = 10\n",
		   NULL);
	ck_assert_int_eq(r.status, 1); /* `bad` expected done, ended failed */
	ck_assert_int_eq(geti(group(&r, "bad"), "failed"), 2);
	ck_assert_int_eq(geti(r.report, "attempts"), 2 * 3 + 10);
	assert_accounted(&r);
	/* The report lists them: job, cause, attempts; no input (they have none). */
	{
		json_object *f = get(r.report, "failed");

		ck_assert_int_eq(json_object_array_length(f), 2);
		for (size_t i = 0; i < 2; i++) {
			json_object *e = json_object_array_get_idx(f, i);
			char want[16];

			snprintf(want, sizeof(want), "bad#%zu", i + 1);
			ck_assert_str_eq(json_object_get_string(get(e, "job")), want);
			ck_assert_str_eq(json_object_get_string(get(e, "cause")), "status 1");
			ck_assert_int_eq(geti(e, "attempts"), 3);
			ck_assert_ptr_null(get(e, "input"));
		}
	}
	run_free(&r);
}
END_TEST

/* ---- exec: jobs ---- */

/* A file under the run's directory, written (mode 0755 if exec). */
static void put_file(struct run *r, const char *name, const char *content, bool exec)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", r->dir, name);
	ck_assert_int_eq(tu_write_file(path, content), 0);
	if (exec)
		ck_assert_int_eq(chmod(path, 0755), 0);
}

static char *file_of(struct run *r, const char *name)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", r->dir, name);
	return tu_read_file(path);
}

static json_object *failed_entry(struct run *r, const char *job)
{
	json_object *q = get(r->report, "failed");

	for (size_t i = 0; q && i < json_object_array_length(q); i++) {
		json_object *e = json_object_array_get_idx(q, i);

		if (strcmp(json_object_get_string(get(e, "job")), job) == 0)
			return e;
	}
	return NULL;
}

static const char *cause_of(json_object *e, const char *job)
{
	ck_assert_msg(e != NULL, "%s not listed in the report", job);
	return json_object_get_string(get(e, "cause"));
}

/*
 * Every end of an exec: job on one worker: exit 0, exit 7, killed by a signal (blamed with it,
 * the worker lives on), a timeout that kills the command's process group (a grandchild too),
 * a command that cannot start, and stdout/stderr to per-job files. One worker process all
 * along: no worker died for any of it.
 */
START_TEST(test_exec_outcomes)
{
	struct run r = { 0 };
	char conf[4096], *text, path[1024];
	long grandchild;

	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	snprintf(path, sizeof(path), "%s/out", r.dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	put_file(&r, "noexec.sh", "echo no interpreter line\n", true);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 4\nkill_grace = 30s\n"
		 "[job ok]\nrun = exec:/bin/sh -c 'exit 0'\ncount = 3\n"
		 "[job fails]\nrun = exec:/bin/sh -c 'exit 7'\nmax_attempts = 2\nexpect = failed\n"
		 "[job killed]\nrun = exec:/bin/sh -c 'kill -SEGV $$'\nmax_attempts = 2\n"
		 "expect = crashed\n"
		 "[job slow]\nrun = exec:/bin/sh -c 'sleep 300 & echo $! > {arg:dir}/grandchild; "
		 "wait'\nargs = dir=%s\ntimeout = 500ms\nmax_attempts = 1\nexpect = timed_out\n"
		 "[job noexec]\nrun = exec:%s/noexec.sh\nmax_attempts = 2\nexpect = failed\n"
		 "[job out]\nrun = exec:/bin/sh -c 'echo out-{id}; echo err-{id} >&2'\n"
		 "output = %s/out\n",
		 r.dir, r.dir, r.dir);
	run_config(&r, conf, NULL);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	assert_accounted(&r);
	ck_assert_int_eq(geti(group(&r, "ok"), "done"), 3);
	ck_assert_str_eq(cause_of(failed_entry(&r, "fails#1"), "fails#1"), "status 7");
	ck_assert_int_eq(geti(failed_entry(&r, "fails#1"), "attempts"), 2);
	ck_assert_str_eq(cause_of(quarantined(&r, "killed#1"), "killed#1"), "SIGSEGV");
	ck_assert_int_eq(geti(quarantined(&r, "killed#1"), "attempts"), 2);
	ck_assert_str_eq(cause_of(quarantined(&r, "slow#1"), "slow#1"), "timeout");
	ck_assert_str_eq(json_object_get_string(get(quarantined(&r, "slow#1"), "state")),
			 "timed_out");
	ck_assert_str_eq(cause_of(failed_entry(&r, "noexec#1"), "noexec#1"),
			 "spawn failed: Exec format error");
	ck_assert_int_eq(geti(group(&r, "out"), "done"), 1);
	/* The worker was never the one to go: one start, no restart, no death. */
	ck_assert_int_eq(geti(r.report, "workers.started"), 1);
	ck_assert_int_eq(geti(r.report, "workers.restarts"), 0);
	ck_assert_int_eq(json_object_object_length(get(r.report, "workers.deaths")), 0);
	/* The timeout took the whole process group: the backgrounded sleep is gone too. */
	text = file_of(&r, "grandchild");
	ck_assert_msg(text && (grandchild = strtol(text, NULL, 10)) > 1, "no grandchild pid");
	ck_assert_msg(!tu_process_alive((pid_t)grandchild), "grandchild %ld survived", grandchild);
	free(text);
	/* Job ids: ok 1-3, fails 4, killed 5, slow 6, noexec 7, out 8. */
	text = file_of(&r, "out/out.8.out");
	ck_assert_msg(text && strcmp(text, "out-8\n") == 0, "stdout file: %s", text);
	free(text);
	text = file_of(&r, "out/out.8.err");
	ck_assert_msg(text && strcmp(text, "err-8\n") == 0, "stderr file: %s", text);
	free(text);
	run_free(&r);
}
END_TEST

/*
 * The exec settings through the real binaries: a real grep's exit 1 counted done with
 * success_exit_status = 1 (its exit 2 still fails, and exit 1 fails without it); the group's
 * environment seen by the command (quoted words, a later NAME winning, replacing the worker's
 * own, the rest of the worker's kept); the working directory; the nice value the command reads
 * of itself in /proc/self/stat; a working directory gone when the job starts fails the attempt
 * with the reason logged. One thread: the jobs run in the config's order.
 */
START_TEST(test_exec_settings)
{
	const char *const env[] = { "BHTEST_OVER=worker", "BHTEST_KEPT=kept", NULL };
	struct run r = { 0 };
	char conf[4096], *text, path[1024];

	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	snprintf(path, sizeof(path), "%s/wd", r.dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/gone", r.dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	put_file(&r, "words", "alpha\nbeta\n", false);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 1\n"
		 "[job grep1]\nrun = exec:grep -q gamma %s/words\nsuccess_exit_status = 1\n"
		 "max_attempts = 1\n"
		 "[job grep1-fails]\nrun = exec:grep -q gamma %s/words\nmax_attempts = 1\n"
		 "expect = failed\n"
		 "[job grep2]\nrun = exec:grep -q gamma %s/missing\nsuccess_exit_status = 1 3\n"
		 "max_attempts = 1\nexpect = failed\n"
		 "[job env]\nrun = exec:/bin/sh -c 'printf \"%%s|%%s|%%s|%%s\" \"$A\" \"$B\" "
		 "\"$BHTEST_OVER\" \"$BHTEST_KEPT\" > %s/env'\n"
		 "environment = A=0 \"B=two  words\"\n  BHTEST_OVER=group A=1\n"
		 "[job wd]\nrun = exec:/bin/sh -c 'pwd > %s/pwd'\nworking_directory = %s/wd\n"
		 "[job nice]\nrun = exec:/bin/sh -c 'cut -d \" \" -f 19 /proc/self/stat > %s/nice'\n"
		 "nice = 7\n"
		 "[job rm]\nrun = exec:rmdir %s/gone\n"
		 "[job gone]\nrun = exec:/bin/true\nworking_directory = %s/gone\nmax_attempts = 1\n"
		 "expect = failed\n",
		 r.dir, r.dir, r.dir, r.dir, r.dir, r.dir, r.dir, r.dir, r.dir);
	run_config(&r, conf, env);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	assert_accounted(&r);
	ck_assert_int_eq(geti(group(&r, "grep1"), "done"), 1);
	ck_assert_str_eq(cause_of(failed_entry(&r, "grep1-fails#1"), "grep1-fails#1"), "status 1");
	ck_assert_str_eq(cause_of(failed_entry(&r, "grep2#1"), "grep2#1"), "status 2");
	text = file_of(&r, "env");
	ck_assert_msg(text && strcmp(text, "1|two  words|group|kept") == 0, "env: %s", text);
	free(text);
	text = file_of(&r, "pwd");
	snprintf(path, sizeof(path), "%s/wd\n", r.dir);
	ck_assert_msg(text && strcmp(text, path) == 0, "pwd: %s", text);
	free(text);
	text = file_of(&r, "nice");
	ck_assert_msg(text && strcmp(text, "7\n") == 0, "nice: %s", text);
	free(text);
	ck_assert_int_eq(geti(group(&r, "rm"), "done"), 1);
	ck_assert_str_eq(cause_of(failed_entry(&r, "gone#1"), "gone#1"),
			 "spawn failed: No such file or directory");
	run_free(&r);
}
END_TEST

/*
 * retry_delay = 300ms..1s: a failing command's attempts (each appends its start, in ns) come
 * no sooner than 300 ms, then 600 ms, after the one before. Only "not before": a loaded
 * machine may take longer.
 */
START_TEST(test_retry_delay)
{
	struct run r = { 0 };
	char conf[2048], *text, *p;
	long long t[3];

	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	snprintf(conf, sizeof(conf),
		 "[job flaky]\nrun = exec:/bin/sh -c 'date +%%s%%N >> %s/times; exit 3'\n"
		 "retry_delay = 300ms..1s\nmax_attempts = 3\nexpect = failed\n"
		 "[job fine]\nrun = exec:/bin/true\ncount = 4\n",
		 r.dir);
	run_config(&r, conf, NULL);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	assert_accounted(&r);
	ck_assert_int_eq(geti(failed_entry(&r, "flaky#1"), "attempts"), 3);
	ck_assert_int_eq(geti(group(&r, "fine"), "done"), 4);
	text = file_of(&r, "times");
	ck_assert_ptr_nonnull(text);
	p = text;
	for (int i = 0; i < 3; i++) {
		char *end;

		t[i] = strtoll(p, &end, 10);
		ck_assert_msg(end != p && t[i] > 0, "times:\n%s", text);
		p = end;
	}
	ck_assert_msg(t[1] - t[0] >= 300000000LL, "second attempt %lld ns after the first",
		      t[1] - t[0]);
	ck_assert_msg(t[2] - t[1] >= 600000000LL, "third attempt %lld ns after the second",
		      t[2] - t[1]);
	free(text);
	run_free(&r);
}
END_TEST

/* Waits (a file's content, with a deadline of 30 s) for name under the run's dir; its pid. */
static pid_t wait_pid_file(struct run *r, const char *name)
{
	int64_t deadline = tu_now_ms() + 30000;

	for (;;) {
		char *text = file_of(r, name);
		long pid = text ? strtol(text, NULL, 10) : 0;

		free(text);
		if (pid > 1)
			return (pid_t)pid;
		ck_assert_msg(tu_ms_left(deadline) > 0, "no %s within 30 s", name);
		poll(NULL, 0, 5); /* re-read the file: waiting for a state, with a deadline */
	}
}

/*
 * A worker killed from outside while its exec: job runs a command with a grandchild: the
 * master kills the command's process group, so nothing of it is left; the job runs again.
 */
START_TEST(test_exec_worker_death_kills_commands)
{
	struct run r = { 0 };
	char conf[2048];
	pid_t pid, workers[4], grandchild;
	int64_t deadline;
	int err_fd;

	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 1\n"
		 "[job long]\nrun = exec:/bin/sh -c 'test -e {arg:dir}/once && exit 0; "
		 "touch {arg:dir}/once; sleep 300 & echo $! > {arg:dir}/gc; wait'\n"
		 "args = dir=%s\n",
		 r.dir);
	pid = start_run(&r, conf, NULL, &err_fd);
	grandchild = wait_pid_file(&r, "gc");
	ck_assert_int_eq(tu_find_workers(pid, workers, 4), 1);
	ck_assert_int_eq(kill(workers[0], SIGKILL), 0);
	deadline = tu_now_ms() + 30000;
	while (tu_process_alive(grandchild)) {
		ck_assert_msg(tu_ms_left(deadline) > 0, "grandchild %d outlived its worker",
			      (int)grandchild);
		poll(NULL, 0, 5); /* re-check /proc: waiting for a state, with a deadline */
	}
	finish_run(&r, pid, err_fd);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	ck_assert_int_eq(geti(group(&r, "long"), "done"), 1);
	ck_assert_int_eq(geti(r.report, "workers.deaths.SIGKILL"), 1);
	ck_assert_int_eq(geti(r.report, "reruns.suspect"), 1);
	run_free(&r);
}
END_TEST

/* ---- exec: nothing a job started outlives the master ---- */

/*
 * finish_run() for a test that is a subreaper: waits for the run's exit, then for nothing of
 * it to be left (dmn_assert_nothing_left(), which cleans up if something is), then reads the
 * report.
 */
static void finish_run_reaping(struct run *r, pid_t pid, int err_fd)
{
	char report[512];
	int st;

	r->err = tu_read_all(err_fd, RUN_TIMEOUT_MS);
	close(err_fd);
	ck_assert_int_eq(tu_wait_exit(pid, RUN_TIMEOUT_MS, &st), 0);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	dmn_assert_nothing_left(r->dir, 5000, "the run's end");
	snprintf(report, sizeof(report), "%s/report.json", r->dir);
	r->report = json_object_from_file(report);
	if (!r->report)
		ck_abort_msg("no report (exit %d); stderr:\n%s", r->status, tail(r->err));
}

/*
 * A config whose `forever` jobs (count of them) each start a shell marked with the run's
 * dir, which starts a sleep in its group, a setsid'd one, and one double-forked into a
 * session of its own, writes up.ID, and waits. Extra config text follows.
 */
static void escaping_conf(struct run *r, char *conf, size_t size, int count, const char *extra)
{
	snprintf(conf, size,
		 "[pool main]\nworkers = 1\nthreads = 2\n"
		 "[job forever]\nrun = exec:/usr/bin/env BHTEST_MARK=%s /bin/sh -c "
		 "'sleep 300 & setsid sleep 300 & "
		 "x=$(setsid sh -c \"sleep 300 >/dev/null 2>&1 & echo\"); "
		 "echo $$ > %s/up.{id}; wait'\ncount = %d\n%s",
		 r->dir, r->dir, count, extra);
}

/*
 * Makes this test process a subreaper (orphans come here, not to PID 1: "nothing left" is
 * "no child left"), starts `bulkhead run` with `count` escaping commands (no timeout) and
 * waits until the first two run. Returns the run's pid.
 */
static pid_t start_escaping_run(struct run *r, int count, int *ret_err_fd)
{
	char conf[2048];
	pid_t pid;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	ck_assert_int_eq(tu_mkdtemp(&r->dir), 0);
	escaping_conf(r, conf, sizeof(conf), count, "timeout = infinity\n");
	pid = start_run(r, conf, NULL, ret_err_fd);
	wait_pid_file(r, "up.1");
	wait_pid_file(r, "up.2");
	return pid;
}

/* SIGKILL of `bulkhead run` while commands run that fork out of their group: nothing is left. */
START_TEST(test_exec_run_sigkill_leaves_nothing)
{
	struct run r = { 0 };
	int err_fd;
	pid_t pid = start_escaping_run(&r, 2, &err_fd);

	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(tu_wait_exit(pid, RUN_TIMEOUT_MS, NULL), 0);
	close(err_fd);
	dmn_assert_nothing_left(r.dir, 5000, "the run's SIGKILL");
	run_free(&r);
}
END_TEST

/*
 * SIGHUP (a closed terminal or ssh session) stops a run in order, as SIGINT does: queued
 * jobs end cancelled, running commands are told to stop and end cancelled, the report is
 * written, exit 1; and nothing the commands started is left.
 */
START_TEST(test_exec_run_sighup_stops_in_order)
{
	struct run r = { 0 };
	int err_fd;
	pid_t pid = start_escaping_run(&r, 5, &err_fd);

	ck_assert_int_eq(kill(pid, SIGHUP), 0);
	finish_run_reaping(&r, pid, err_fd);
	ck_assert_msg(r.status == 1, "exit %d, stderr:\n%s", r.status, tail(r.err));
	ck_assert(json_object_get_boolean(get(r.report, "interrupted")));
	assert_accounted(&r);
	ck_assert_int_eq(geti(r.report, "jobs.cancelled"), 5);
	run_free(&r);
}
END_TEST

/* A timeout kills the command's group, and what left the group goes with it. */
START_TEST(test_exec_timeout_leaves_nothing)
{
	struct run r = { 0 };
	char conf[2048];
	pid_t pid;
	int err_fd;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	escaping_conf(&r, conf, sizeof(conf), 2,
		      "timeout = 300ms\nmax_attempts = 1\nexpect = timed_out\n");
	pid = start_run(&r, conf, NULL, &err_fd);
	finish_run_reaping(&r, pid, err_fd);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	assert_accounted(&r);
	ck_assert_int_eq(geti(group(&r, "forever"), "timed_out"), 2);
	ck_assert_int_eq(json_object_object_length(get(r.report, "workers.deaths")), 0);
	run_free(&r);
}
END_TEST

#define N_INPUTS 1000
#define POISON(i) ((i) % 100 == 37) /* 10 of 1000 */

/* Writes in/f0000.. in/f0999 under the run's directory, 10 of them poison. */
static void make_inputs(struct run *r)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/in", r->dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	for (int i = 0; i < N_INPUTS; i++) {
		char name[32];

		snprintf(name, sizeof(name), "in/f%04d", i);
		put_file(r, name, POISON(i) ? "poison\n" : "fine\n", false);
	}
}

/* 990 done, and the 10 poison inputs quarantined and listed by path with their cause. */
static void assert_poison_report(struct run *r, const char *group_name, const char *cause,
				 int n_failed)
{
	json_object *q = get(r->report, "quarantined");
	bool seen[N_INPUTS] = { false };

	ck_assert_int_eq(geti(r->report, "jobs.total"), N_INPUTS + n_failed);
	ck_assert_int_eq(geti(group(r, group_name), "done"), N_INPUTS - 10);
	ck_assert_int_eq(geti(group(r, group_name), "crashed"), 10);
	ck_assert_int_eq(json_object_array_length(q), 10);
	for (size_t i = 0; i < 10; i++) {
		json_object *e = json_object_array_get_idx(q, i);
		const char *input = json_object_get_string(get(e, "input"));
		char prefix[1024];
		int k;

		snprintf(prefix, sizeof(prefix), "%s/in/f", r->dir);
		ck_assert_msg(input && strncmp(input, prefix, strlen(prefix)) == 0, "input %s",
			      input ? input : "(none)");
		k = atoi(input + strlen(prefix));
		ck_assert_msg(POISON(k) && !seen[k], "%s quarantined", input);
		seen[k] = true;
		ck_assert_str_eq(json_object_get_string(get(e, "cause")), cause);
	}
	ck_assert_int_eq(json_object_array_length(get(r->report, "failed")), n_failed);
	assert_accounted(r);
}

START_TEST(test_inputs_with_poison_exec)
{
	struct run r = { 0 };

	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	make_inputs(&r);
	run_config(&r,
		   "[pool main]\nworkers = 2\nthreads = 4\n"
		   "[job files]\nrun = exec:/bin/sh -c 'if grep -q poison \"$1\"; then kill -SEGV "
		   "$$; fi' sh {input}\ninputs = in/*\nmax_attempts = 2\n",
		   NULL);
	ck_assert_msg(r.status == 1, "exit %d, stderr:\n%s", r.status, tail(r.err));
	assert_poison_report(&r, "files", "SIGSEGV", 0);
	ck_assert_int_eq(json_object_object_length(get(r.report, "workers.deaths")), 0);
	run_free(&r);
}
END_TEST

/* ---- plugin: jobs ---- */

/*
 * Interrupted while exec: and plugin jobs run that notice the stop (their command gets
 * SIGTERM; the plugin sees bulkhead_job_cancelled() and returns 3): they end cancelled, not
 * blamed, not re-queued, not lost.
 */
START_TEST(test_interrupted_run_stops_commands_and_plugins)
{
	const char *dir = getenv("BULKHEAD_TEST_PLUGINS");
	struct run r = { 0 };
	char conf[2048];
	pid_t pid;
	int err_fd;

	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 2\n"
		 "[job cmd]\nrun = exec:/bin/sh -c 'echo $$ > {arg:dir}/cmd; exec sleep 300'\n"
		 "args = dir=%s\n"
		 "[job plug]\nrun = plugin:%s/outcomes.so:outcome\nargs = do=cancel-wait\n"
		 "[job later]\nrun = builtin:noop\ncount = 5\n",
		 r.dir, dir);
	pid = start_run(&r, conf, NULL, &err_fd);
	wait_pid_file(&r, "cmd");
	ck_assert_int_eq(kill(pid, SIGINT), 0);
	finish_run(&r, pid, err_fd);
	ck_assert_int_eq(r.status, 1);
	assert_accounted(&r);
	ck_assert_int_eq(geti(group(&r, "cmd"), "cancelled"), 1);
	ck_assert_int_eq(geti(group(&r, "plug"), "cancelled"), 1);
	ck_assert_int_eq(json_object_array_length(get(r.report, "quarantined")), 0);
	ck_assert_int_eq(json_object_array_length(get(r.report, "failed")), 0);
	run_free(&r);
}
END_TEST

static int run_args(const char *const *args, char **ret_err);

/* "plugin:$BULKHEAD_TEST_PLUGINS/NAME.so:SYMBOL" */
static const char *plugin_run(char *buf, size_t size, const char *name, const char *symbol)
{
	const char *dir = getenv("BULKHEAD_TEST_PLUGINS");

	ck_assert_msg(dir && *dir, "BULKHEAD_TEST_PLUGINS is not set");
	snprintf(buf, size, "plugin:%s/%s.so:%s", dir, name, symbol);
	return buf;
}

static const struct {
	const char *name; /* group, and `do` */
	const char *args;
	const char *cause;
	const char *death; /* key in workers.deaths */
} plugin_crashes[] = {
	{ "segv", "", "SIGSEGV", "SIGSEGV" },	 { "abort", "", "SIGABRT", "SIGABRT" },
	{ "fpe", "", "SIGFPE", "SIGFPE" },	 { "ill", "", "SIGILL", "SIGILL" },
	{ "bus", "", "SIGBUS", "SIGBUS" },	 { "stack", "", "SIGSEGV", "SIGSEGV" },
	{ "exit", " status=5", "exit(5)", "exit" },
};

/*
 * A plugin's jobs of every outcome in one run, next to innocent jobs: done, failed (listed
 * with its result), each crash blamed on its job with the real signal and quarantined after
 * max_attempts, a hang ended by its timeout; the innocent ones all done.
 */
START_TEST(test_plugin_outcomes)
{
	char run[1024], conf[8192], key[64];
	size_t len = 0;
	struct run r = { 0 };
	json_object *e;

	plugin_run(run, sizeof(run), "outcomes", "outcome");
	len += (size_t)snprintf(conf + len, sizeof(conf) - len,
				"[pool main]\nworkers = 2\nthreads = 3\nbackoff = 10ms..100ms\n"
				"kill_grace = 200ms\n"
				"[job done]\nrun = %s\nargs = do=done\ncount = 20\n"
				"[job fail]\nrun = %s\nargs = do=fail status=4\nmax_attempts = 2\n"
				"expect = failed\n"
				"[job result]\nrun = %s\nargs = do=result text=hello\ncount = 3\n"
				"[job hang]\nrun = %s\nargs = do=hang\ntimeout = 300ms\n"
				"max_attempts = 2\nexpect = timed_out\n",
				run, run, run, run);
	for (size_t i = 0; i < sizeof(plugin_crashes) / sizeof(plugin_crashes[0]); i++)
		len += (size_t)snprintf(conf + len, sizeof(conf) - len,
					"[job %s]\nrun = %s\nargs = do=%s%s\nmax_attempts = 2\n"
					"expect = crashed\n",
					plugin_crashes[i].name, run, plugin_crashes[i].name,
					plugin_crashes[i].args);
	snprintf(conf + len, sizeof(conf) - len,
		 "[job victim]\nrun = builtin:spin\nargs = us=2000\ncount = 200\n");
	run_config(&r, conf, NULL);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	assert_accounted(&r);
	ck_assert_int_eq(geti(group(&r, "done"), "done"), 20);
	ck_assert_int_eq(geti(group(&r, "result"), "done"), 3);
	ck_assert_int_eq(geti(group(&r, "victim"), "done"), 200);
	e = failed_entry(&r, "fail#1");
	ck_assert_str_eq(cause_of(e, "fail#1"), "status 4");
	ck_assert_int_eq(geti(e, "attempts"), 2);
	ck_assert_str_eq(cause_of(quarantined(&r, "hang#1"), "hang#1"), "timeout");
	for (size_t i = 0; i < sizeof(plugin_crashes) / sizeof(plugin_crashes[0]); i++) {
		char job[64];

		snprintf(job, sizeof(job), "%s#1", plugin_crashes[i].name);
		e = quarantined(&r, job);
		ck_assert_str_eq(cause_of(e, job), plugin_crashes[i].cause);
		ck_assert_str_eq(json_object_get_string(get(e, "state")), "crashed");
		ck_assert_int_eq(geti(e, "attempts"), 2);
	}
	/*
	 * Two crashes per crasher, each a worker's death by its real signal or a contained crash
	 * (no death): every retry runs alone, so contained, and so does a first attempt that ran
	 * alone (a job hit as a bystander twice runs alone); so at most one death per crasher's
	 * kind (stack and segv share SIGSEGV), at least one contained crash per crasher. At most
	 * one kill for the hang: its retry runs contained, and that timeout kills only the child
	 * (its first attempt too, if it ran alone after being hit twice as a bystander).
	 */
	{
		const size_t n = sizeof(plugin_crashes) / sizeof(plugin_crashes[0]);
		int64_t crashes = geti(r.report, "workers.contained_crashes");

		for (size_t i = 0; i < n; i++) {
			int64_t deaths, same = 0;
			bool first = true;

			for (size_t k = 0; k < n; k++) {
				bool eq = strcmp(plugin_crashes[k].death, plugin_crashes[i].death) == 0;

				same += eq;
				first = first && !(eq && k < i);
			}
			if (!first)
				continue; /* its kind counted already */
			snprintf(key, sizeof(key), "workers.deaths.%s", plugin_crashes[i].death);
			deaths = json_object_object_get_ex(get(r.report, "workers.deaths"),
							   plugin_crashes[i].death, NULL)
					 ? geti(r.report, key)
					 : 0;
			ck_assert_msg(deaths <= same, "%s: %lld deaths", key, (long long)deaths);
			crashes += deaths;
		}
		ck_assert_int_ge(geti(r.report, "workers.contained_crashes"), (int64_t)n);
		ck_assert_int_eq(crashes, 2 * (int64_t)n);
	}
	ck_assert_int_le(json_object_object_get_ex(get(r.report, "workers.deaths"), "SIGKILL", NULL)
				 ? geti(r.report, "workers.deaths.SIGKILL")
				 : 0,
			 1);
	ck_assert_int_eq(geti(r.report, "workers.worker_faults"), 0);
	run_free(&r);
}
END_TEST

/*
 * Crash diagnostics: a real NULL dereference in an exported function of a real plugin. The
 * quarantined entry keeps its cause "SIGSEGV" and gains where it happened: "crash" names the
 * fault address and crashy.so:parse_record, "frames" the stack from there (its caller
 * crash_job next).
 */
START_TEST(test_plugin_crash_diagnostics)
{
	char run[1024], conf[2048];
	struct run r = { 0 };
	json_object *e, *frames;
	const char *crash;
	bool caller = false;

	plugin_run(run, sizeof(run), "crashy", "crash_job");
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 2\nbackoff = 10ms..100ms\n"
		 "[job parse]\nrun = %s\nmax_attempts = 2\nexpect = crashed\n"
		 "[job fine]\nrun = builtin:noop\ncount = 20\n",
		 run);
	run_config(&r, conf, NULL);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	assert_accounted(&r);
	e = quarantined(&r, "parse#1");
	ck_assert_str_eq(cause_of(e, "parse#1"), "SIGSEGV");
	ck_assert_int_eq(geti(e, "attempts"), 2);
	crash = json_object_get_string(get(e, "crash"));
	ck_assert_msg(crash && strncmp(crash, "SIGSEGV at 0x0 in crashy.so:parse_record+0x",
				       strlen("SIGSEGV at 0x0 in crashy.so:parse_record+0x")) == 0,
		      "crash: %s", crash ? crash : "(none)");
	frames = get(e, "frames");
	ck_assert(json_object_is_type(frames, json_type_array));
	ck_assert_uint_ge(json_object_array_length(frames), 2);
	ck_assert_uint_le(json_object_array_length(frames), 16);
	ck_assert_msg(strncmp(json_object_get_string(json_object_array_get_idx(frames, 0)),
			      "crashy.so:parse_record+0x", 25) == 0,
		      "frame 0: %s", json_object_get_string(json_object_array_get_idx(frames, 0)));
	for (size_t i = 1; i < json_object_array_length(frames); i++)
		caller |= strncmp(json_object_get_string(json_object_array_get_idx(frames, i)),
				  "crashy.so:crash_job+0x", 22) == 0;
	ck_assert_msg(caller, "no crashy.so:crash_job in %s", json_object_get_string(frames));
	/* Jobs that did not crash have no crash. */
	ck_assert_int_eq(geti(group(&r, "fine"), "done"), 20);
	run_free(&r);
}
END_TEST

/* Waits (RUN_TIMEOUT_MS) for path to exist. */
static void wait_file(const char *path)
{
	for (int64_t deadline = tu_now_ms() + RUN_TIMEOUT_MS; access(path, F_OK) < 0;) {
		ck_assert_msg(tu_ms_left(deadline) > 0, "%s never came", path);
		(void)poll(NULL, 0, 2); /* a file has no event to wait on */
	}
}

/* Whether thread tid of pid is in system call nr (/proc/PID/task/TID/syscall). */
static bool in_syscall(pid_t pid, pid_t tid, long nr)
{
	char path[96], *text;
	bool yes;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
	text = tu_read_file(path);
	yes = text && strtol(text, NULL, 10) == nr;
	free(text);
	return yes;
}

/* The pid in an after.* file of dir that is `pid`, or 0 if none names it. */
static int after_file_of(const char *dir, int pid, int *seen)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int found = 0;

	ck_assert_ptr_nonnull(d);
	*seen = 0;
	while ((e = readdir(d))) {
		char path[600], *text;
		int worker = 0;

		if (strncmp(e->d_name, "after.", 6) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		text = tu_read_file(path);
		if (text && sscanf(text, "%d", &worker) == 1) {
			(*seen)++;
			if (worker == pid)
				found = worker;
		}
		free(text);
	}
	closedir(d);
	return found;
}

/* Lets a traced thread go: interrupted if it runs, then detached. */
static void untrace(pid_t tid)
{
	int st;

	if (ptrace(PTRACE_DETACH, tid, NULL, NULL) == 0)
		return;
	ck_assert_int_eq(ptrace(PTRACE_INTERRUPT, tid, NULL, NULL), 0);
	ck_assert_int_eq(waitpid(tid, &st, __WALL), tid);
	ck_assert_int_eq(ptrace(PTRACE_DETACH, tid, NULL,
				(void *)(long)(WIFSTOPPED(st) && st >> 16 == 0 ? WSTOPSIG(st) : 0)),
			 0);
}

/*
 * A worker whose job crashed starts no more jobs, though its other thread is free (the
 * bystander rule: what that worker held runs again, in the next one). The crashing thread is
 * held with ptrace inside its handler, at the send of its CRASH frame (the crash claimed);
 * then the other thread's job returns, and the next job in that worker's queue, which writes
 * its worker's pid, must not run there: that thread parks in pause() instead.
 */
START_TEST(test_crashed_worker_starts_nothing)
{
	char crash[1024], wait[1024], after[1024], conf[4096], path[600], *text;
	pid_t tids[16], run, held = 0, crasher = 0, other = 0;
	struct run r = { 0 };
	int crashed = 0, seen = 0, n, err_fd;

	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	plugin_run(crash, sizeof(crash), "crashy", "pid_then_crash");
	plugin_run(wait, sizeof(wait), "crashy", "until_file_job");
	plugin_run(after, sizeof(after), "crashy", "pid_job");
	/* ids in this order, and a worker's queue is FIFO: nothing of `after` runs before */
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 2\nbackoff = 10ms..100ms\n"
		 "[job crash]\nrun = %s\nargs = file=%s/crashpid go=%s/go\nmax_attempts = 1\n"
		 "expect = crashed\n"
		 "[job wait]\nrun = %s\nargs = file=%s/crashpid wait=%s/held\n"
		 "[job after]\nrun = %s\nargs = dir=%s\ncount = 4\n",
		 crash, r.dir, r.dir, wait, r.dir, r.dir, after, r.dir);
	run = start_run(&r, conf, NULL, &err_fd);
	snprintf(path, sizeof(path), "%s/crashpid", r.dir);
	wait_file(path);
	text = tu_read_file(path);
	ck_assert_msg(text && sscanf(text, "%d", &crashed) == 1 && crashed > 0, "no pid in %s",
		      path);
	free(text);
	n = tu_threads(crashed, tids, 16);
	ck_assert_int_gt(n, 0);
	for (int i = 0; i < n; i++) {
		if (ptrace(PTRACE_SEIZE, tids[i], NULL, (void *)(long)PTRACE_O_TRACESYSGOOD) == 0)
			continue;
		ck_assert_int_eq(errno, EPERM);
		fprintf(stderr, "SKIP crashed worker starts nothing: ptrace not permitted here\n");
		for (int k = 0; k < i; k++)
			untrace(tids[k]);
		snprintf(path, sizeof(path), "%s/go", r.dir);
		ck_assert_int_eq(tu_write_file(path, ""), 0);
		snprintf(path, sizeof(path), "%s/held", r.dir);
		ck_assert_int_eq(tu_write_file(path, ""), 0);
		finish_run(&r, run, err_fd);
		run_free(&r);
		return;
	}
	snprintf(path, sizeof(path), "%s/go", r.dir);
	ck_assert_int_eq(tu_write_file(path, ""), 0);
	/* The fault, handed on to the handler; then its system calls, until the CRASH send. */
	for (int64_t deadline = tu_now_ms() + RUN_TIMEOUT_MS; !held;) {
		for (int i = 0; i < n && !held; i++) {
			int st;

			if (waitpid(tids[i], &st, __WALL | WNOHANG) != tids[i] || !WIFSTOPPED(st))
				continue;
			if (st >> 16 == PTRACE_EVENT_STOP) {
				ck_assert_int_eq(ptrace(PTRACE_CONT, tids[i], NULL, NULL), 0);
			} else if (WSTOPSIG(st) == (SIGTRAP | 0x80)) {
				/* the first stop of a call is its entry: hold it at sendto's */
				if (in_syscall(crashed, tids[i], __NR_sendto))
					held = tids[i];
				else
					ck_assert_int_eq(ptrace(PTRACE_SYSCALL, tids[i], NULL, NULL), 0);
			} else if (WSTOPSIG(st) == SIGSEGV && !crasher) {
				crasher = tids[i];
				ck_assert_int_eq(ptrace(PTRACE_SYSCALL, tids[i], NULL,
							(void *)(long)SIGSEGV), 0);
			} else {
				ck_assert_int_eq(ptrace(PTRACE_CONT, tids[i], NULL,
							(void *)(long)WSTOPSIG(st)), 0);
			}
		}
		ck_assert_msg(tu_ms_left(deadline) > 0, "the crash never reached its CRASH send");
	}
	/* The crash is claimed: the other job thread's job returns; then it must start nothing. */
	snprintf(path, sizeof(path), "%s/held", r.dir);
	ck_assert_int_eq(tu_write_file(path, ""), 0);
	for (int i = 0; i < n; i++) {
		char comm[64];

		snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)crashed, (int)tids[i]);
		text = tu_read_file(path);
		if (text && sscanf(text, "%63s", comm) == 1 && strncmp(comm, "main/", 5) == 0 &&
		    tids[i] != held)
			other = tids[i];
		free(text);
	}
	ck_assert_int_gt(other, 0);
	for (int64_t deadline = tu_now_ms() + RUN_TIMEOUT_MS; !in_syscall(crashed, other, __NR_pause);) {
		ck_assert_msg(!after_file_of(r.dir, crashed, &seen),
			      "a job started in the crashed worker %d", crashed);
		ck_assert_msg(tu_ms_left(deadline) > 0, "the other job thread never parked");
		(void)poll(NULL, 0, 2);
	}
	for (int i = 0; i < n; i++)
		if (tids[i] != held)
			untrace(tids[i]);
	ck_assert_int_eq(ptrace(PTRACE_DETACH, held, NULL, NULL), 0);
	finish_run(&r, run, err_fd);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	assert_accounted(&r);
	ck_assert_str_eq(cause_of(quarantined(&r, "crash#1"), "crash#1"), "SIGSEGV");
	ck_assert_int_eq(geti(group(&r, "wait"), "done"), 1);
	ck_assert_int_eq(geti(group(&r, "after"), "done"), 4);
	ck_assert_int_eq(after_file_of(r.dir, crashed, &seen), 0);
	ck_assert_int_eq(seen, 4);
	run_free(&r);
}
END_TEST

/* The pool of a live worker, from its command line ("--pool NAME"), into buf; NULL if none. */
static const char *worker_pool(pid_t pid, char *buf, size_t size)
{
	char path[64], cmd[1024];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	cmd[n] = 0;
	for (char *p = cmd; p < cmd + n; p += strlen(p) + 1)
		if (strcmp(p, "--pool") == 0 && p + strlen(p) + 1 < cmd + n) {
			snprintf(buf, size, "%s", p + strlen(p) + 1);
			return buf;
		}
	return NULL;
}

/* "Max core file size" of pid, soft and hard, as /proc/PID/limits writes them (< 32 bytes). */
static bool core_limits(pid_t pid, char soft[32], char hard[32])
{
	char path[64], line[256];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (strncmp(line, "Max core file size", 18) == 0)
			found = sscanf(line + 18, "%31s %31s", soft, hard) == 2;
	fclose(f);
	return found;
}

/*
 * core_dumps: RLIMIT_CORE of live workers, read from /proc/PID/limits while each pool's job
 * runs. The run starts with the largest soft limit this test may set, so that `no` must bring
 * it down to 0 (soft and hard) and `yes` up to unlimited (or the hard limit).
 */
START_TEST(test_core_dumps_limit)
{
	struct rlimit rl;
	char conf[2048], want[32], pool[64], soft[32], hard[32];
	struct run r = { 0 };
	bool seen_on = false, seen_off = false;
	int64_t deadline;
	pid_t pid, workers[8];
	int err_fd;

	ck_assert_int_eq(getrlimit(RLIMIT_CORE, &rl), 0);
	if (rl.rlim_max == 0) {
		printf("core_dumps: skipped, the hard RLIMIT_CORE is 0 here\n");
		return;
	}
	rl.rlim_cur = rl.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_CORE, &rl), 0);
	if (rl.rlim_max == RLIM_INFINITY)
		snprintf(want, sizeof(want), "unlimited");
	else
		snprintf(want, sizeof(want), "%llu", (unsigned long long)rl.rlim_max);
	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	snprintf(conf, sizeof(conf),
		 "[pool off]\nworkers = 1\nthreads = 1\n"
		 "[pool on]\nworkers = 1\nthreads = 1\ncore_dumps = yes\n"
		 "[job off]\npool = off\nrun = exec:/bin/sh -c 'echo $$ > %s/off; exec sleep 300'\n"
		 "[job on]\npool = on\nrun = exec:/bin/sh -c 'echo $$ > %s/on; exec sleep 300'\n",
		 r.dir, r.dir);
	pid = start_run(&r, conf, NULL, &err_fd);
	/* Both jobs run: their workers are up, their limits set long since (before HELLO). */
	wait_pid_file(&r, "off");
	wait_pid_file(&r, "on");
	deadline = tu_now_ms() + 30000;
	while (!seen_on || !seen_off) {
		int n = tu_find_workers(pid, workers, 8);

		for (int i = 0; i < n; i++) {
			if (!worker_pool(workers[i], pool, sizeof(pool)) ||
			    !core_limits(workers[i], soft, hard))
				continue;
			if (strcmp(pool, "off") == 0) {
				ck_assert_msg(strcmp(soft, "0") == 0 && strcmp(hard, "0") == 0,
					      "pool off: RLIMIT_CORE %s %s", soft, hard);
				seen_off = true;
			} else if (strcmp(pool, "on") == 0) {
				ck_assert_msg(strcmp(soft, want) == 0,
					      "pool on: RLIMIT_CORE %s, not %s", soft, want);
				seen_on = true;
			}
		}
		ck_assert_msg(tu_ms_left(deadline) > 0, "workers of off/on not found");
		if (!seen_on || !seen_off)
			poll(NULL, 0, 5); /* a worker between /proc reads: look again, deadline */
	}
	ck_assert_int_eq(kill(pid, SIGINT), 0);
	finish_run(&r, pid, err_fd);
	ck_assert_int_eq(r.status, 1);
	run_free(&r);
}
END_TEST

/* A name the kernel gives a core with core_pattern "core" (core_uses_pid: "core.PID"). */
static bool has_core(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool found = false;

	ck_assert_ptr_nonnull(d);
	while (!found && (e = readdir(d)))
		found = strcmp(e->d_name, "core") == 0 || strncmp(e->d_name, "core.", 5) == 0;
	closedir(d);
	return found;
}

/*
 * core_dumps = yes: a plugin's real crash leaves a core where core_pattern says, here the
 * worker's working directory (the run's); the crash is still blamed and reported as always.
 * Only where core_pattern is a plain relative file name (not a pipe such as systemd-coredump,
 * not a path elsewhere) and not under a sanitizer (its shadow memory).
 */
START_TEST(test_core_dumps_write_core)
{
	char pattern[256] = "", run[1024], conf[2048], cwd[4096];
	struct rlimit rl;
	struct run r = { 0 };
	FILE *f = fopen("/proc/sys/kernel/core_pattern", "re");

	if (f) {
		if (!fgets(pattern, sizeof(pattern), f))
			pattern[0] = 0;
		fclose(f);
	}
	pattern[strcspn(pattern, "\n")] = 0;
	if (strcmp(pattern, "core") != 0 && strcmp(pattern, "core.%p") != 0) {
		printf("core_dumps: skipped, core_pattern is \"%s\" (not a plain \"core\")\n",
		       pattern);
		return;
	}
	if (BULKHEAD_SANITIZED || getrlimit(RLIMIT_CORE, &rl) < 0 || rl.rlim_max == 0) {
		printf("core_dumps: skipped (a sanitizer build, or the hard RLIMIT_CORE is 0)\n");
		return;
	}
	plugin_run(run, sizeof(run), "crashy", "crash_job");
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 1\ncore_dumps = yes\n"
		 "[job parse]\nrun = %s\nmax_attempts = 1\nexpect = crashed\n",
		 run);
	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(r.dir), 0);
	run_config(&r, conf, NULL);
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	ck_assert_str_eq(cause_of(quarantined(&r, "parse#1"), "parse#1"), "SIGSEGV");
	ck_assert_msg(has_core(r.dir), "no core in %s (core_pattern \"%s\")", r.dir, pattern);
	run_free(&r);
}
END_TEST

/* `bulkhead run` on a config with one bad plugin: exit 78, the place and the reason. */
static void expect_plugin_error(const char *run, const char *const *wants)
{
	char *dir, path[512], conf[2048], *err;
	const char *args[] = { path, NULL };

	ck_assert_int_eq(tu_mkdtemp(&dir), 0);
	snprintf(path, sizeof(path), "%s/plugin.conf", dir);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\n[job fine]\nrun = builtin:noop\n[job p]\nrun = %s\n",
		 run);
	ck_assert_int_eq(tu_write_file(path, conf), 0);
	ck_assert_msg(run_args(args, &err) == 78, "%s: not 78; stderr:\n%s", run, tail(err));
	ck_assert_msg(strstr(err, "plugin.conf:6:"), "%s: no place in: %s", run, err); /* run = */
	for (size_t i = 0; wants[i]; i++)
		ck_assert_msg(strstr(err, wants[i]), "%s: no \"%s\" in: %s", run, wants[i], err);
	free(err);
	ck_assert_int_eq(tu_count_zombie_children(), 0);
	tu_rm_rf(dir);
	free(dir);
}

/*
 * A missing file, a missing symbol, a plugin built for another ABI or without one, and one
 * whose constructor crashes: each a config error found by the probe (exit 78, nothing run),
 * with the path and the loader's own words; the crash is the probe's, never the master's.
 */
START_TEST(test_plugin_config_errors)
{
	char run[1024], so[1024];
	const char *dir = getenv("BULKHEAD_TEST_PLUGINS");

	{
		const char *wants[] = { "/nonexistent/x.so", "cannot open shared object file",
					NULL };

		expect_plugin_error("plugin:/nonexistent/x.so:outcome", wants);
	}
	snprintf(so, sizeof(so), "%s/outcomes.so", dir);
	{
		const char *wants[] = { so, "no_such_symbol", "undefined symbol", NULL };

		expect_plugin_error(plugin_run(run, sizeof(run), "outcomes", "no_such_symbol"),
				    wants);
	}
	snprintf(so, sizeof(so), "%s/abi-old.so", dir);
	{
		const char *wants[] = { so, "ABI", NULL };

		expect_plugin_error(plugin_run(run, sizeof(run), "abi-old", "outcome"), wants);
	}
	snprintf(so, sizeof(so), "%s/no-abi.so", dir);
	{
		const char *wants[] = { so, "bulkhead_job_abi", NULL };

		expect_plugin_error(plugin_run(run, sizeof(run), "no-abi", "outcome"), wants);
	}
	snprintf(so, sizeof(so), "%s/ctor-crash.so", dir);
	{
		const char *wants[] = { so, "constructor", "SIGSEGV", NULL };

		expect_plugin_error(plugin_run(run, sizeof(run), "ctor-crash", "outcome"), wants);
	}
}
END_TEST

/*
 * The fragile example plugin over 1005 files: 10 crash it (abort() in the worker, blamed on
 * their jobs), 5 make it fail with a result; 990 done. The report lists both kinds by path.
 */
START_TEST(test_inputs_with_poison_plugin)
{
	const char *dir = getenv("BULKHEAD_TEST_PLUGINS");
	char conf[2048], so[1024];
	struct run r = { 0 };
	json_object *f;

	snprintf(so, sizeof(so), "%s/../examples/fragile.so", dir ? dir : ".");
	ck_assert_msg(access(so, R_OK) == 0, "no %s", so);
	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	make_inputs(&r);
	for (int i = 0; i < N_INPUTS; i++) /* poison: a crash (the same with sanitizers) */
		if (POISON(i)) {
			char name[32];

			snprintf(name, sizeof(name), "in/f%04d", i);
			put_file(&r, name, "abort\n", false);
		}
	for (int i = 0; i < 5; i++) {
		char name[32];

		snprintf(name, sizeof(name), "in/g%d", i);
		put_file(&r, name, "fail\n", false);
	}
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 2\nthreads = 4\nbackoff = 10ms..100ms\n"
		 "[job files]\nrun = plugin:%s:fragile\ninputs = in/*\nmax_attempts = 2\n",
		 so);
	run_config(&r, conf, NULL);
	ck_assert_msg(r.status == 1, "exit %d, stderr:\n%s", r.status, tail(r.err));
	assert_poison_report(&r, "files", "SIGABRT", 5);
	/*
	 * 20 crashes: each poison input's first attempt killed a worker, unless it ran alone
	 * already (a bystander hit often enough), and every retry ran alone and contained.
	 */
	ck_assert_int_eq(geti(r.report, "workers.deaths.SIGABRT") +
				 geti(r.report, "workers.contained_crashes"),
			 20);
	ck_assert_int_ge(geti(r.report, "workers.contained_crashes"), 10);
	f = get(r.report, "failed");
	for (size_t i = 0; i < 5; i++) {
		json_object *e = json_object_array_get_idx(f, i);
		char want[1024];

		snprintf(want, sizeof(want), "%s/in/g%zu", r.dir, i);
		ck_assert_str_eq(json_object_get_string(get(e, "input")), want);
		ck_assert_str_eq(json_object_get_string(get(e, "result")), "failed on purpose");
		ck_assert_str_eq(json_object_get_string(get(e, "cause")), "status 1");
	}
	run_free(&r);
}
END_TEST

/* ---- the big one: >= 5000 jobs, every crash builtin, two pools ---- */

START_TEST(test_big_mixed_run)
{
	static const char *const crash_builtins[] = { "segv", "abort", "fpe", "ill",
						      "bus",  "stack-overflow", "exit" };
	char *conf = malloc(16384);
	size_t len = 0;
	struct run r = { 0 };

	len += (size_t)snprintf(conf + len, 16384 - len,
				"[pool main]\nworkers = 3\nthreads = 4\nbackoff = 10ms..200ms\n"
				"kill_grace = 200ms\n"
				"[pool solo]\nworkers = 2\nthreads = 2\nbackoff = 10ms..200ms\n"
				"kill_grace = 200ms\n%s"
				"[job spin]\nrun = builtin:spin\nargs = us=100\ncount = 2000\n"
				"[job noop]\npool = solo\nrun = builtin:noop\ncount = 2000\n"
				"[job bal]\nrun = builtin:balance\nargs = iterations=2000\n"
				"count = 300\n"
				"[job tls]\npool = solo\nrun = builtin:tls\nargs = rounds=200\n"
				"count = 300\n"
				"[job sleep]\nrun = builtin:sleep\nargs = ms=2\ncount = 400\n"
				"[job hang]\nrun = builtin:hang\ntimeout = 300ms\n"
				"max_attempts = 2\nexpect = timed_out\n",
				BULKHEAD_SANITIZED ? "" : "memory_max = 64M\n");
	for (size_t i = 0; i < sizeof(crash_builtins) / sizeof(crash_builtins[0]); i++)
		for (int p = 0; p < 2; p++)
			len += (size_t)snprintf(conf + len, 16384 - len,
						"[job %s-%s]\npool = %s\nrun = builtin:%s\n"
						"count = 3\nmax_attempts = 2\nexpect = crashed\n",
						crash_builtins[i], p ? "solo" : "main",
						p ? "solo" : "main", crash_builtins[i]);
	if (!BULKHEAD_SANITIZED)
		len += (size_t)snprintf(conf + len, 16384 - len,
					"[job leak]\npool = solo\nrun = builtin:leak\n"
					"args = step=4M\nmax_attempts = 2\nexpect = crashed\n");
	run_config(&r, conf, NULL);
	free(conf);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	ck_assert_int_ge(geti(r.report, "jobs.total"), 5000);
	assert_accounted(&r);
	/* Every crash group quarantined with the right cause; everything else done. */
	{
		json_object *q = get(r.report, "quarantined");
		int n = 0;

		for (size_t i = 0; i < json_object_array_length(q); i++) {
			json_object *e = json_object_array_get_idx(q, i);
			const char *job = json_object_get_string(get(e, "job"));
			const char *cause = json_object_get_string(get(e, "cause"));

			if (strncmp(job, "segv-", 5) == 0 || strncmp(job, "stack-overflow-", 15) == 0)
				ck_assert_str_eq(cause, "SIGSEGV");
			else if (strncmp(job, "abort-", 6) == 0)
				ck_assert_str_eq(cause, "SIGABRT");
			else if (strncmp(job, "fpe-", 4) == 0)
				ck_assert_str_eq(cause, "SIGFPE");
			else if (strncmp(job, "ill-", 4) == 0)
				ck_assert_str_eq(cause, "SIGILL");
			else if (strncmp(job, "bus-", 4) == 0)
				ck_assert_str_eq(cause, "SIGBUS");
			else if (strncmp(job, "exit-", 5) == 0)
				ck_assert_str_eq(cause, "exit(1)");
			else if (strncmp(job, "hang", 4) == 0)
				ck_assert_str_eq(cause, "timeout");
			else if (strncmp(job, "leak", 4) == 0)
				ck_assert_str_eq(cause, "memory");
			else
				ck_abort_msg("unexpected quarantined job %s (%s)", job, cause);
			n++;
		}
		ck_assert_int_eq(n, 7 * 2 * 3 + 1 + (BULKHEAD_SANITIZED ? 0 : 1));
	}
	{
		json_object *groups = get(r.report, "groups");

		for (size_t i = 0; i < json_object_array_length(groups); i++)
			ck_assert_msg(json_object_get_boolean(get(json_object_array_get_idx(groups,
											      i),
							      "ok")),
				      "group %s not as expected",
				      json_object_get_string(
					      get(json_object_array_get_idx(groups, i), "name")));
	}
	fprintf(stderr, "big run: %lld jobs in %.2fs\n", (long long)geti(r.report, "jobs.total"),
		json_object_get_double(get(r.report, "wall_seconds")));
	run_free(&r);
}
END_TEST

/* ---- bad input to `bulkhead run` ---- */

/* Runs `bulkhead run ARGS...` and returns its exit code; stderr into *ret_err. */
static int run_args(const char *const *args, char **ret_err)
{
	const char *argv[8] = { getenv("BULKHEAD_BIN"), "run" };
	int err_fd, st;
	pid_t pid;

	for (int i = 0; args[i] && i < 5; i++)
		argv[2 + i] = args[i];
	ck_assert_int_eq(tu_spawn(argv, NULL, -1, NULL, &err_fd, &pid), 0);
	*ret_err = tu_read_all(err_fd, RUN_TIMEOUT_MS);
	close(err_fd);
	ck_assert_int_eq(tu_wait_exit(pid, RUN_TIMEOUT_MS, &st), 0);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

START_TEST(test_run_config_errors_exit_78_before_spawning)
{
	char *dir, path[512], *err;

	ck_assert_int_eq(tu_mkdtemp(&dir), 0);
	snprintf(path, sizeof(path), "%s/bad.conf", dir);
	ck_assert_int_eq(tu_write_file(path, "[pool main]\nworkers = 2\nthreads = abc\n"
					     "[job x]\nrun = builtin:noop\n"),
			 0);
	{
		const char *args[] = { path, NULL };

		ck_assert_int_eq(run_args(args, &err), 78);
		ck_assert_msg(strstr(err, "bad.conf:3:") && strstr(err, "threads"), "%s", err);
		free(err);
	}
	/* A config with pools but nothing to run is an error for a one-shot run. */
	ck_assert_int_eq(tu_write_file(path, "[pool main]\nworkers = 1\n"), 0);
	{
		const char *args[] = { path, NULL };

		ck_assert_int_eq(run_args(args, &err), 78);
		ck_assert_ptr_nonnull(strstr(err, "nothing to run"));
		free(err);
	}
	{
		const char *args[] = { "/nonexistent/bulkhead.conf", NULL };

		ck_assert_int_eq(run_args(args, &err), 78);
		ck_assert_ptr_nonnull(strstr(err, "/nonexistent/bulkhead.conf"));
		free(err);
	}
	ck_assert_int_eq(tu_count_zombie_children(), 0);
	tu_rm_rf(dir);
	free(dir);
}
END_TEST

START_TEST(test_run_usage_errors_exit_2)
{
	const char *none[] = { NULL };
	const char *extra[] = { "a.conf", "b.conf", NULL };
	const char *unknown[] = { "--frobnicate", "a.conf", NULL };
	const char *missing[] = { "a.conf", "--report-json", NULL };
	char *err;

	ck_assert_int_eq(run_args(none, &err), 2);
	ck_assert_ptr_nonnull(strstr(err, "missing CONFIG"));
	free(err);
	ck_assert_int_eq(run_args(extra, &err), 2);
	free(err);
	ck_assert_int_eq(run_args(unknown, &err), 2);
	ck_assert_ptr_nonnull(strstr(err, "--frobnicate"));
	free(err);
	ck_assert_int_eq(run_args(missing, &err), 2);
	free(err);
}
END_TEST

/* ---- the master's own kills and resource errors are not worker faults ---- */

/* A process that burns one CPU until it is killed (real load for a loaded-machine test). */
static pid_t start_busy_loop(void)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		volatile unsigned long n = 0;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			n++;
	}
	return pid;
}

/*
 * Jobs that end at about 95 % of their timeout while both cores are busy: the master often
 * sees a result only after the deadline it set (the loop and the worker run late), when it
 * has already decided the job timed out. A result that comes before the kill ends the job,
 * and its worker goes on; one that comes with the kill leaves an idle worker that the master
 * killed itself: never a worker fault. With a fault limit of 3 the pool never fails, no job
 * is cancelled, and every job ends done or timed_out.
 */
START_TEST(test_timeout_kills_are_not_worker_faults)
{
	struct run r = { 0 };
	pid_t busy[2] = { start_busy_loop(), start_busy_loop() };

	run_config(&r,
		   "[pool main]\nworkers = 4\nthreads = 1\nmax_worker_faults = 3/60s\n"
		   "[job edge]\nrun = builtin:sleep\nargs = ms=95\ntimeout = 100ms\n"
		   "max_attempts = 3\ncount = 200\nexpect = done\n",
		   NULL);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(tu_kill_wait(busy[i]), 0);
	assert_accounted(&r);
	ck_assert_msg(geti(r.report, "workers.worker_faults") == 0, "worker faults; stderr:\n%s",
		      tail(r.err));
	ck_assert_msg(geti(r.report, "jobs.cancelled") == 0, "cancelled; stderr:\n%s",
		      tail(r.err));
	ck_assert_int_eq(geti(r.report, "jobs.done") + geti(r.report, "jobs.timed_out"), 200);
	ck_assert_ptr_null(strstr(r.err, "pool main failed"));
	run_free(&r);
}
END_TEST

/*
 * The master runs out of fds (RLIMIT_NOFILE 48, 40 workers of 2 fds each): the workers it
 * cannot start are retried on a timer and never counted as worker faults; the pool stays up
 * and every job is done by the workers that did start.
 */
START_TEST(test_master_fd_shortage_is_not_a_worker_fault)
{
	struct run r = { 0 };
	char path[512], report[512];
	int err_fd;
	pid_t pid;

	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	snprintf(path, sizeof(path), "%s/test.conf", r.dir);
	snprintf(report, sizeof(report), "%s/report.json", r.dir);
	ck_assert_int_eq(tu_write_file(path,
				       "[pool main]\nworkers = 40\nthreads = 1\n"
				       "max_worker_faults = 3/60s\n"
				       "[job many]\nrun = builtin:spin\nargs = us=100\n"
				       "count = 2000\n"),
			 0);
	{
		/* The limit is set by the shell that then becomes the master (same pid). */
		const char *argv[] = { "/bin/sh", "-c", "ulimit -n 48 && exec \"$0\" \"$@\"",
				       getenv("BULKHEAD_BIN"), "run", path, "--report-json",
				       report, "--quiet", NULL };
		ck_assert_int_eq(tu_spawn(argv, NULL, -1, NULL, &err_fd, &pid), 0);
	}
	finish_run(&r, pid, err_fd);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	assert_accounted(&r);
	ck_assert_int_eq(geti(group(&r, "many"), "done"), 2000);
	ck_assert_int_eq(geti(r.report, "workers.worker_faults"), 0);
	ck_assert_ptr_nonnull(strstr(r.err, "the master's own resources"));
	ck_assert_ptr_nonnull(strstr(r.err, "Too many open files"));
	run_free(&r);
}
END_TEST

/* ---- a recorded run (--state) ---- */

/*
 * `bulkhead run DIR/test.conf --state DIR/state.db --report-json DIR/report.json --quiet`,
 * plus `extra` if not NULL; returns its pid.
 */
static pid_t start_state_run(struct run *r, const char *extra, int *ret_err_fd)
{
	char conf[512], state[512], report[512];
	pid_t pid;

	snprintf(conf, sizeof(conf), "%s/test.conf", r->dir);
	snprintf(state, sizeof(state), "%s/state.db", r->dir);
	snprintf(report, sizeof(report), "%s/report.json", r->dir);
	unlink(report);
	{
		const char *argv[] = { getenv("BULKHEAD_BIN"), "run", conf, "--state", state,
				       "--report-json", report, "--quiet", extra, NULL };

		ck_assert_int_eq(tu_spawn(argv, NULL, -1, NULL, ret_err_fd, &pid), 0);
	}
	return pid;
}

/* 200 exec jobs on 2 workers x 2 threads; each appends its id to DIR/log, then sleeps. */
static void state_conf(struct run *r)
{
	char conf[1024];

	ck_assert_int_eq(tu_mkdtemp(&r->dir), 0);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 2\nthreads = 2\n"
		 "[job w]\nrun = exec:/bin/sh -c 'echo {id} >> %s/log; sleep 0.05'\ncount = 200\n",
		 r->dir);
	put_file(r, "test.conf", conf, false);
}

/* Drops one run's report and stderr, keeping its dir for the next run on the same files. */
static void run_forget_report(struct run *r)
{
	json_object_put(r->report);
	free(r->err);
	r->report = NULL;
	r->err = NULL;
}

/* Lines in DIR/log (runs of jobs so far). */
static int log_lines(struct run *r, int *per_id, int n_ids)
{
	char *text = file_of(r, "log");
	int lines = 0;

	for (char *p = text; p && *p; p++) {
		long id = strtol(p, &p, 10);

		if (id >= 1 && id < n_ids && per_id)
			per_id[id]++;
		lines++;
		if (!*p)
			break;
	}
	free(text);
	return lines;
}

/* Waits (deadline 60 s) until n jobs have started. */
static void wait_log_lines(struct run *r, int n)
{
	int64_t deadline = tu_now_ms() + 60000;

	while (log_lines(r, NULL, 0) < n) {
		ck_assert_msg(tu_ms_left(deadline) > 0, "fewer than %d jobs ran within 60 s", n);
		poll(NULL, 0, 5); /* re-read the file: waiting for a state, with a deadline */
	}
}

/* SIGKILLs a recorded run (no handler, no last write): it dies, and none of its commands
 * outlives it. */
static void kill_run(struct run *r, pid_t pid, int err_fd)
{
	int st;

	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	free(tu_read_all(err_fd, RUN_TIMEOUT_MS));
	close(err_fd);
	ck_assert_int_eq(tu_wait_exit(pid, RUN_TIMEOUT_MS, &st), 0);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	dmn_assert_nothing_left(r->dir, 10000, "the killed run's commands");
}

/* The resumed run reports the whole run, and every job ran; returns how many ran twice. */
static int assert_whole_run(struct run *r)
{
	int per_id[201] = { 0 }, twice = 0;

	ck_assert_msg(r->status == 0, "exit %d, stderr:\n%s", r->status, tail(r->err));
	assert_accounted(r);
	ck_assert_int_eq(geti(r->report, "jobs.total"), 200);
	ck_assert_int_eq(geti(r->report, "jobs.done"), 200);
	log_lines(r, per_id, 201);
	for (int id = 1; id <= 200; id++) {
		ck_assert_msg(per_id[id] >= 1, "job %d never ran", id);
		ck_assert_msg(per_id[id] <= 2, "job %d ran %d times", id, per_id[id]);
		twice += per_id[id] == 2;
	}
	return twice;
}

/*
 * A recorded run killed outright (SIGKILL: no handler, no last write) and run again with the
 * same file: the report is the whole run's, every job ended once, and only jobs in flight at
 * the kill ran twice (4 threads; at most as many more whose end the kill cut off between two
 * writes). Nothing of the killed run is left.
 */
START_TEST(test_state_resumes_after_sigkill)
{
	struct run r = { 0 };
	int err_fd, twice;
	pid_t pid;

	state_conf(&r);
	pid = start_state_run(&r, NULL, &err_fd);
	wait_log_lines(&r, 60);
	kill_run(&r, pid, err_fd);
	ck_assert_int_lt(log_lines(&r, NULL, 0), 200);

	pid = start_state_run(&r, NULL, &err_fd);
	finish_run_reaping(&r, pid, err_fd);
	twice = assert_whole_run(&r);
	ck_assert_msg(twice <= 8, "%d jobs ran twice", twice);
	run_free(&r);
}
END_TEST

/*
 * A recorded run of a spool, SIGKILLed and run again with the same file: every file's job
 * ran, with its file there (the command checks), each file moved once, the report is the
 * whole run's. Its spool moved elsewhere is another run.
 */
START_TEST(test_state_spool_resumes_after_sigkill)
{
	enum { FILES = 40 };
	struct run r = { 0 };
	char conf[1024], path[600], sub[600];
	int err_fd, per_id[FILES + 1] = { 0 };
	pid_t pid;

	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	snprintf(path, sizeof(path), "%s/spool", r.dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	for (int i = 0; i < FILES; i++) {
		snprintf(path, sizeof(path), "%s/spool/f-%02d", r.dir, i);
		ck_assert_int_eq(tu_write_file(path, "x"), 0);
	}
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 2\nthreads = 2\n"
		 "[job s]\nrun = exec:/bin/sh -c 'test -f \"$0\" && echo {id} >> %s/log && "
		 "sleep 0.05' {input}\nspool = %s/spool\n",
		 r.dir, r.dir);
	put_file(&r, "test.conf", conf, false);
	pid = start_state_run(&r, NULL, &err_fd);
	wait_log_lines(&r, 10);
	kill_run(&r, pid, err_fd);

	pid = start_state_run(&r, NULL, &err_fd);
	finish_run_reaping(&r, pid, err_fd);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	assert_accounted(&r);
	ck_assert_int_eq(geti(r.report, "jobs.total"), FILES);
	ck_assert_int_eq(geti(r.report, "jobs.done"), FILES);
	log_lines(&r, per_id, FILES + 1);
	for (int id = 1; id <= FILES; id++)
		ck_assert_msg(per_id[id] >= 1 && per_id[id] <= 2, "job %d ran %d times", id,
			      per_id[id]);
	snprintf(path, sizeof(path), "%s/spool", r.dir);
	snprintf(sub, sizeof(sub), "%s/spool/done", r.dir);
	ck_assert_int_eq(tu_count_files(sub), FILES);
	ck_assert_int_eq(tu_count_files(path), 0);
	run_forget_report(&r);

	/* The same groups with another spool: not this run. */
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 2\nthreads = 2\n"
		 "[job s]\nrun = exec:/bin/sh -c 'test -f \"$0\" && echo {id} >> %s/log && "
		 "sleep 0.05' {input}\nspool = %s\n",
		 r.dir, r.dir);
	put_file(&r, "test.conf", conf, false);
	{
		char cpath[600], spath[600], *err = NULL;
		const char *args[] = { cpath, "--state", spath, NULL };

		snprintf(cpath, sizeof(cpath), "%s/test.conf", r.dir);
		snprintf(spath, sizeof(spath), "%s/state.db", r.dir);
		ck_assert_int_eq(run_args(args, &err), 65);
		ck_assert_msg(strstr(err, "[job s] differs in spool"), "%s", err);
		free(err);
	}
	run_free(&r);
}
END_TEST

/* Ctrl-C cancels what is queued; the next run with the file runs it, and only it. */
START_TEST(test_state_resumes_after_sigint)
{
	struct run r = { 0 };
	int err_fd, twice;
	pid_t pid;

	state_conf(&r);
	pid = start_state_run(&r, NULL, &err_fd);
	wait_log_lines(&r, 40);
	ck_assert_int_eq(kill(pid, SIGINT), 0);
	finish_run_reaping(&r, pid, err_fd);
	ck_assert_int_eq(r.status, 1);
	ck_assert(json_object_get_boolean(get(r.report, "interrupted")));
	ck_assert_int_gt(geti(r.report, "jobs.cancelled"), 0);
	run_forget_report(&r);

	pid = start_state_run(&r, NULL, &err_fd);
	finish_run_reaping(&r, pid, err_fd);
	twice = assert_whole_run(&r);
	/* What the stop ended while it ran (killed at the drain's end) ran again. */
	ck_assert_msg(twice <= 4, "%d jobs ran twice", twice);
	run_free(&r);
}
END_TEST

/* Failed jobs stay failed in a resumed run; --retry-failed runs them again from attempt 1. */
START_TEST(test_state_retry_failed)
{
	struct run r = { 0 };
	char conf[1024], ok[600];
	int err_fd;
	pid_t pid;

	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 2\n"
		 "[job picky]\nrun = exec:/bin/sh -c 'test -e %s/ok'\ncount = 3\nmax_attempts = 2\n"
		 "[job fine]\nrun = builtin:noop\ncount = 5\n",
		 r.dir);
	put_file(&r, "test.conf", conf, false);
	pid = start_state_run(&r, NULL, &err_fd);
	finish_run_reaping(&r, pid, err_fd);
	ck_assert_int_eq(r.status, 1);
	ck_assert_int_eq(geti(group(&r, "picky"), "failed"), 3);
	run_forget_report(&r);

	snprintf(ok, sizeof(ok), "%s/ok", r.dir);
	ck_assert_int_eq(tu_write_file(ok, ""), 0);
	/* Resumed: nothing did not end, so nothing runs; the failures stand. */
	pid = start_state_run(&r, NULL, &err_fd);
	finish_run_reaping(&r, pid, err_fd);
	ck_assert_int_eq(r.status, 1);
	ck_assert_int_eq(geti(group(&r, "picky"), "failed"), 3);
	ck_assert_int_eq(geti(group(&r, "fine"), "done"), 5);
	run_forget_report(&r);

	pid = start_state_run(&r, "--retry-failed", &err_fd);
	finish_run_reaping(&r, pid, err_fd);
	ck_assert_msg(r.status == 0, "exit %d: %s", r.status, tail(r.err));
	ck_assert_int_eq(geti(group(&r, "picky"), "done"), 3);
	ck_assert_int_eq(geti(group(&r, "fine"), "done"), 5);
	run_free(&r);
}
END_TEST

/*
 * The disk under the state file fills up while the run goes on (an 8 MiB tmpfs in this test's
 * own mount namespace, nearly filled): the run says so, does not stop, loses nothing, and once
 * there is room again writes all of it. The file then holds the whole run.
 */
START_TEST(test_state_full_disk)
{
	struct run r = { 0 };
	char conf[512], filler[600], *seen;
	struct statvfs vfs;
	int err_fd, fd;
	pid_t pid;

	ck_assert_int_eq(tu_mkdtemp(&r.dir), 0);
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", r.dir, "tmpfs", 0, "size=8m") < 0) {
		fprintf(stderr, "SKIP state full disk: cannot mount a small tmpfs here (%s)\n",
			strerror(errno));
		run_free(&r);
		return;
	}
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 2\n"
		 "[job w]\nrun = builtin:sleep\nargs = ms=2\ncount = 3000\n");
	put_file(&r, "test.conf", conf, false);
	/* Leave 400 KiB: room for the store and its jobs, not for long (a write per pass). */
	snprintf(filler, sizeof(filler), "%s/filler", r.dir);
	fd = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(statvfs(r.dir, &vfs), 0);
	ck_assert_int_eq(posix_fallocate(fd, 0, (off_t)(vfs.f_bavail * vfs.f_frsize - 400 * 1024)),
			 0);
	close(fd);

	pid = start_state_run(&r, NULL, &err_fd);
	seen = read_stderr_until(err_fd, "the run goes on", 60000);
	ck_assert_msg(seen, "the run did not say its state file could not be written");
	ck_assert_msg(strstr(seen, "state.db: the disk is full"), "%s", seen);
	ck_assert_int_eq(unlink(filler), 0);
	finish_run_reaping(&r, pid, err_fd);
	ck_assert_msg(r.status == 0, "exit %d:\n%s%s", r.status, tail(seen), tail(r.err));
	assert_accounted(&r);
	ck_assert_int_eq(geti(r.report, "jobs.done"), 3000);
	run_forget_report(&r);
	free(seen);
	/* The file holds it all: resumed, nothing runs and the whole run is reported. */
	pid = start_state_run(&r, NULL, &err_fd);
	finish_run_reaping(&r, pid, err_fd);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(geti(r.report, "jobs.done"), 3000);
	ck_assert_int_eq(geti(r.report, "attempts"), 3000);
	umount2(r.dir, MNT_DETACH);
	run_free(&r);
}
END_TEST

/* A state file that cannot be used is refused before anything runs, naming it and why. */
START_TEST(test_state_refused)
{
	char *dir, conf[512], state[512], other[512], spool[512], *err;

	ck_assert_int_eq(tu_mkdtemp(&dir), 0);
	snprintf(conf, sizeof(conf), "%s/a.conf", dir);
	snprintf(other, sizeof(other), "%s/b.conf", dir);
	snprintf(state, sizeof(state), "%s/state.db", dir);
	ck_assert_int_eq(tu_write_file(conf, "[job x]\nrun = builtin:noop\ncount = 3\n"), 0);
	ck_assert_int_eq(tu_write_file(other, "[job x]\nrun = builtin:noop\ncount = 4\n"), 0);
	{
		const char *args[] = { conf, "--retry-failed", NULL };

		ck_assert_int_eq(run_args(args, &err), 2);
		ck_assert_msg(strstr(err, "--retry-failed needs --state"), "%s", err);
		free(err);
	}
	ck_assert_int_eq(tu_write_file(state, "not a database, not at all, not even close\n"), 0);
	{
		const char *args[] = { conf, "--state", state, NULL };

		ck_assert_int_eq(run_args(args, &err), 65);
		ck_assert_msg(strstr(err, state) && strstr(err, "damaged"), "%s", err);
		free(err);
	}
	unlink(state);
	{
		const char *args[] = { conf, "--state", state, "--quiet", NULL };

		ck_assert_int_eq(run_args(args, &err), 0);
		free(err);
	}
	{
		/* The same file with another config: not this run. */
		const char *args[] = { other, "--state", state, NULL };

		ck_assert_int_eq(run_args(args, &err), 65);
		ck_assert_msg(strstr(err, state) && strstr(err, "records another run") &&
				      strstr(err, "[job x] differs in count"),
			      "%s", err);
		free(err);
	}
	{
		/* Same count, other files: not this run either. */
		char in[512], a[600], b[600], text[1024], st2[512];
		const char *args[] = { other, "--state", st2, "--quiet", NULL };

		snprintf(in, sizeof(in), "%s/in", dir);
		snprintf(a, sizeof(a), "%s/a.txt", in);
		snprintf(b, sizeof(b), "%s/b.txt", in);
		snprintf(st2, sizeof(st2), "%s/inputs.db", dir);
		ck_assert_int_eq(mkdir(in, 0700), 0);
		ck_assert_int_eq(tu_write_file(a, "a"), 0);
		snprintf(text, sizeof(text), "[job f]\nrun = builtin:noop\ninputs = %s/*.txt\n", in);
		ck_assert_int_eq(tu_write_file(other, text), 0);
		ck_assert_int_eq(run_args(args, &err), 0);
		free(err);
		ck_assert_int_eq(rename(a, b), 0);
		ck_assert_int_eq(run_args(args, &err), 65);
		ck_assert_msg(strstr(err, "[job f] differs in the files its inputs match"), "%s", err);
		free(err);
	}
	snprintf(spool, sizeof(spool), "%s/spool", dir);
	ck_assert_int_eq(mkdir(spool, 0700), 0);
	snprintf(other, sizeof(other), "%s/c.conf", dir);
	{
		char text[1024];
		const char *args[] = { other, "--state", state, NULL };

		snprintf(text, sizeof(text), "[job s]\nrun = builtin:noop\nspool = %s\n", spool);
		ck_assert_int_eq(tu_write_file(other, text), 0);
		ck_assert_int_eq(run_args(args, &err), 65);
		ck_assert_msg(strstr(err, "records another run"), "%s", err);
		free(err);
	}
	tu_rm_rf(dir);
	free(dir);
}
END_TEST

static Suite *run_suite(void)
{
	Suite *s = suite_create("run");
	TCase *tc;

	tc = tcase_create("crashes");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_crash_builtin, 0, sizeof(crashers) / sizeof(crashers[0]));
	tcase_add_test(tc, test_report_counts_contained_crashes);
	tcase_add_loop_test(tc, test_crash_builtin_exec, 0, sizeof(crashers) / sizeof(crashers[0]));
	tcase_add_test(tc, test_leak_against_memory_max);
	suite_add_tcase(s, tc);

	tc = tcase_create("hangs");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_hang_and_deadlock_time_out);
	tcase_add_test(tc, test_job_at_90_percent_of_timeout_survives);
	suite_add_tcase(s, tc);

	tc = tcase_create("deaths");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_worker_killed_from_outside);
	tcase_add_test(tc, test_traced_worker_death);
	tcase_add_test(tc, test_interrupted_run_ends_every_job);
	tcase_add_test(tc, test_summary_table_aligned_and_interrupted);
	tcase_add_test(tc, test_worker_dies_before_hello);
	tcase_add_test(tc, test_exec_failure);
	tcase_add_test(tc, test_stopping_a_starting_worker_is_no_death);
	suite_add_tcase(s, tc);

	tc = tcase_create("state");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_state_resumes_after_sigkill);
	tcase_add_test(tc, test_state_spool_resumes_after_sigkill);
	tcase_add_test(tc, test_state_resumes_after_sigint);
	tcase_add_test(tc, test_state_retry_failed);
	tcase_add_test(tc, test_state_refused);
	tcase_add_test(tc, test_state_full_disk);
	suite_add_tcase(s, tc);

	tc = tcase_create("lessons");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_balance_8_threads_always_zero);
	tcase_add_test(tc, test_tls_never_leaks);
	tcase_add_test(tc, test_failed_jobs_and_exit_code);
	suite_add_tcase(s, tc);

	tc = tcase_create("exec");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_exec_outcomes);
	tcase_add_test(tc, test_exec_settings);
	tcase_add_test(tc, test_retry_delay);
	tcase_add_test(tc, test_exec_worker_death_kills_commands);
	tcase_add_test(tc, test_inputs_with_poison_exec);
	tcase_add_test(tc, test_exec_run_sigkill_leaves_nothing);
	tcase_add_test(tc, test_exec_run_sighup_stops_in_order);
	tcase_add_test(tc, test_exec_timeout_leaves_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_create("plugin");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_plugin_outcomes);
	tcase_add_test(tc, test_plugin_crash_diagnostics);
	tcase_add_test(tc, test_crashed_worker_starts_nothing);
	tcase_add_test(tc, test_core_dumps_limit);
	tcase_add_test(tc, test_core_dumps_write_core);
	tcase_add_test(tc, test_plugin_config_errors);
	tcase_add_test(tc, test_inputs_with_poison_plugin);
	tcase_add_test(tc, test_interrupted_run_stops_commands_and_plugins);
	suite_add_tcase(s, tc);

	tc = tcase_create("cli");
	tcase_add_test(tc, test_run_config_errors_exit_78_before_spawning);
	tcase_add_test(tc, test_run_usage_errors_exit_2);
	suite_add_tcase(s, tc);

	tc = tcase_create("master-own");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_timeout_kills_are_not_worker_faults);
	tcase_add_test(tc, test_master_fd_shortage_is_not_a_worker_fault);
	suite_add_tcase(s, tc);

	tc = tcase_create("big");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_big_mixed_run);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(run_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
