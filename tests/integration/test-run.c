/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead run` end to end: the real master, the real workers, the real faults. Each test
 * writes a config into a private temp dir, runs the real binary with --report-json, and checks
 * the report, the exit code and the aftermath (no worker left, no zombie).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

	/* The crasher comes first, so it is dispatched together with victims on one worker. */
	snprintf(conf, sizeof(conf),
		 "[supervisor]\nworker_start = %s\n"
		 "[pool main]\nworkers = 2\nthreads = 4\nbackoff = 10ms..100ms\n"
		 "[job crash]\nrun = builtin:%s\nargs = %s\nmax_attempts = 2\nexpect = crashed\n"
		 "[job victim]\nrun = builtin:spin\nargs = us=3000\ncount = 200\n",
		 worker_start, crashers[i].builtin, crashers[i].args);
	run_config(&r, conf, NULL);
	ck_assert_msg(r.status == 0, "exit %d, stderr:\n%s", r.status, tail(r.err));
	assert_accounted(&r);
	q = quarantined(&r, "crash#1");
	ck_assert_ptr_nonnull(q);
	ck_assert_str_eq(json_object_get_string(get(q, "cause")), crashers[i].cause);
	ck_assert_str_eq(json_object_get_string(get(q, "state")), "crashed");
	ck_assert_int_eq(geti(q, "attempts"), 2);
	ck_assert_int_eq(geti(group(&r, "victim"), "done"), 200);
	/* Two deaths by the real signal, and the jobs that shared the worker were re-run. */
	{
		char key[64];

		snprintf(key, sizeof(key), "workers.deaths.%s", crashers[i].death);
		ck_assert_int_eq(geti(r.report, key), 2);
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
	ck_assert_int_eq(json_object_array_length(get(r.report, "quarantined")), 0);
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

static Suite *run_suite(void)
{
	Suite *s = suite_create("run");
	TCase *tc;

	tc = tcase_create("crashes");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_crash_builtin, 0, sizeof(crashers) / sizeof(crashers[0]));
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
	tcase_add_test(tc, test_interrupted_run_ends_every_job);
	tcase_add_test(tc, test_worker_dies_before_hello);
	tcase_add_test(tc, test_exec_failure);
	suite_add_tcase(s, tc);

	tc = tcase_create("lessons");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_balance_8_threads_always_zero);
	tcase_add_test(tc, test_tls_never_leaks);
	tcase_add_test(tc, test_failed_jobs_and_exit_code);
	suite_add_tcase(s, tc);

	tc = tcase_create("cli");
	tcase_add_test(tc, test_run_config_errors_exit_78_before_spawning);
	tcase_add_test(tc, test_run_usage_errors_exit_2);
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
