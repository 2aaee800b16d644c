/* SPDX-License-Identifier: MIT */
/*
 * A pool's warm spare ([pool] spare = yes, daemon/spare.c), against a real bulkheadd:
 *   - a worker killed from outside: its slot's next process is the spare (the pid the status
 *     showed as the pool's spare), a new spare comes up behind it;
 *   - a job that crashes on every attempt (3 attempts) takes a shared worker down once: its
 *     retries run contained on the pool's solo workers (or, without a spare, on the shared
 *     worker reserved for them), so the pool's restarts (of its slots) stay at 1;
 *   - reload (spare off, then on again), restart (the spare replaced too), a failed pool,
 *     stop: no process, zombie or fd left (dmn_assert_aftermath).
 * Nothing here times anything: every wait is for a state the status reply shows.
 */
#include <check.h>
#include <errno.h>
#include <json-c/json.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "ctlutil.h"
#include "daemonutil.h"
#include "testutil.h"

#define WAIT_MS 30000
#define WORKERS_MAX 16

/* The first pool of a status reply (o owns it). */
static json_object *pool_of(json_object *o)
{
	return json_object_array_get_idx(jget(o, "pools", json_type_array), 0);
}

/*
 * The pid of the pool's spare (key "spare") or solo worker ("solo") if it is ready, 0 if it
 * has one not ready, -1 if none.
 */
static pid_t extra_ready_pid(json_object *pool, const char *key)
{
	json_object *s;

	if (!json_object_object_get_ex(pool, key, &s))
		return -1;
	if (json_object_is_type(s, json_type_array)) { /* "solo": every one ready, the last pid */
		pid_t pid = -1;

		for (size_t k = 0; k < json_object_array_length(s); k++) {
			json_object *e = json_object_array_get_idx(s, k);

			if (strcmp(jstr(e, "state"), "ready") != 0)
				return 0;
			pid = (pid_t)jint(e, "pid");
		}
		return pid;
	}
	return strcmp(jstr(s, "state"), "ready") == 0 ? (pid_t)jint(s, "pid") : 0;
}

/* The pid of slot k if it is ready, else 0. */
static pid_t slot_ready_pid(json_object *pool, unsigned k)
{
	json_object *w = json_object_array_get_idx(jget(pool, "workers", json_type_array), k);

	return strcmp(jstr(w, "state"), "ready") == 0 ? (pid_t)jint(w, "pid") : 0;
}

/*
 * Waits until every slot of the pool and its spare are ready (with `spare`) or the pool has
 * no spare (without); fills slots[] and *ret_spare. Returns the last status (the caller's).
 */
static json_object *wait_settled(struct daemon *d, struct conn *c, bool spare, pid_t *slots,
				 unsigned n, pid_t *ret_spare)
{
	for (int64_t deadline = tu_now_ms() + WAIT_MS;;) {
		json_object *o = call(d, c, "{\"command\":\"status\"}"), *p = pool_of(o);
		pid_t s = extra_ready_pid(p, "spare"), solo = extra_ready_pid(p, "solo");
		bool ok = spare ? s > 0 && solo > 0 : s < 0 && solo < 0;

		for (unsigned k = 0; k < n; k++) {
			slots[k] = slot_ready_pid(p, k);
			ok = ok && slots[k] > 0;
		}
		if (ok) {
			*ret_spare = s;
			return o;
		}
		json_object_put(o);
		ck_assert_msg(tu_ms_left(deadline) > 0, "pool not settled (spare %s); %s",
			      spare ? "wanted" : "not wanted", dmn_describe(d));
		dmn_pump(d, 20);
	}
}

START_TEST(test_killed_worker_replaced_by_spare)
{
	struct daemon d;
	struct conn c;
	pid_t slots[2], again[2], spare, spare2, found[WORKERS_MAX];
	json_object *o;

	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 2\nthreads = 1\nmin_uptime = 0\n"
			     "spare = yes\n");
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	conn_open(&d, &c);
	o = wait_settled(&d, &c, true, slots, 2, &spare);
	/* The spare and the solo worker do not count as workers of the pool; they are processes
	 * of the master. */
	ck_assert_int_eq(jint(pool_of(o), "workers_up"), 2);
	ck_assert_int_eq(jint(pool_of(o), "workers_wanted"), 2);
	json_object_put(o);
	/* 2 slots, the spare, MASTER_SOLO_MAX (2) solo workers. */
	ck_assert_int_eq(tu_find_workers(d.pid, found, WORKERS_MAX), 5);
	ck_assert_int_ne(spare, slots[0]);
	ck_assert_int_ne(spare, slots[1]);

	ck_assert_int_eq(kill(slots[0], SIGKILL), 0);
	o = NULL;
	for (int64_t deadline = tu_now_ms() + WAIT_MS;;) {
		json_object_put(o);
		o = wait_settled(&d, &c, true, again, 2, &spare2);
		if (again[0] != slots[0] && spare2 != spare)
			break;
		ck_assert_msg(tu_ms_left(deadline) > 0, "no replacement; %s", dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	ck_assert_int_eq(again[0], spare); /* the spare took the slot over */
	ck_assert_int_eq(again[1], slots[1]);
	ck_assert_int_ne(spare2, slots[0]);
	ck_assert_int_eq(jint(pool_of(o), "restarts"), 1);
	json_object_put(o);
	{
		/* `bulkhead status` shows the new spare under its pool's workers, and the solos */
		const char *args[] = { "status", "--socket", d.sock_path, NULL };
		struct cli_result r = dmn_cli(&d, NULL, args, NULL);
		char pid[32];

		ck_assert_msg(r.rc == 0, "status: exit %d: %s", r.rc, r.err);
		ck_assert_msg(strstr(r.out, "    spare") && strstr(r.out, "    solo "),
			      "no spare or solo row:\n%s", r.out);
		snprintf(pid, sizeof(pid), " %d ", (int)spare2);
		ck_assert_msg(strstr(strstr(r.out, "    spare"), pid),
			      "the spare's row lacks its pid %d:\n%s", (int)spare2, r.out);
		dmn_cli_free(&r);
	}
	ck_assert_int_eq(tu_find_workers(d.pid, found, WORKERS_MAX), 5);
	conn_close(&c);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* Threads of process pid (/proc/PID/status), or -1. */
static int threads_of(pid_t pid)
{
	char path[64], line[128];
	int n = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* The number under workers.deaths.SIGNAL of a status reply, 0 if none. */
static int64_t deaths_by(json_object *status, const char *sig)
{
	json_object *d = jget(jget(status, "workers", json_type_object), "deaths",
			      json_type_object), *n;

	return json_object_object_get_ex(d, sig, &n) ? json_object_get_int64(n) : 0;
}

/*
 * A job that crashes on every attempt (max_attempts = 3) takes its shared worker down once:
 * its retries run alone and contained (children/contain.c), in a throwaway child of a solo
 * worker (with a spare) or of the shared worker reserved for it (without). So one worker
 * death in all, one restart of the pool's slots, and the job blamed three times all the same,
 * with where it crashed; the other jobs are not blamed and none is lost.
 */
static void poison(bool spare)
{
	char conf[512];
	struct daemon d;
	struct conn c;
	json_object *o, *j;

	dmn_init(&d);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 2\nspare = %s\n"
		 "[job poison]\nrun = builtin:segv\nmax_attempts = 3\nexpect = crashed\n"
		 "[job ok]\nrun = builtin:sleep\nargs = ms=20\ncount = 40\n",
		 spare ? "yes" : "no");
	dmn_write_config(&d, conf);
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	conn_open(&d, &c);
	o = call_within(&d, &c, "{\"command\":\"wait\",\"group\":\"poison\"}", WAIT_MS);
	json_object_put(o);
	o = call(&d, &c, "{\"command\":\"jobs\",\"group\":\"poison\"}");
	j = json_object_array_get_idx(jget(o, "jobs", json_type_array), 0);
	ck_assert_str_eq(jstr(j, "state"), "crashed");
	ck_assert_str_eq(jstr(j, "cause"), "SIGSEGV");
	ck_assert_int_eq(jint(j, "attempts"), 3);
	ck_assert_msg(strncmp(jstr(j, "crash"), "SIGSEGV at ", 11) == 0, "crash: %s",
		      jstr(j, "crash"));
	json_object_put(o);
	o = call_within(&d, &c, "{\"command\":\"wait\",\"group\":\"ok\"}", WAIT_MS);
	ck_assert(jbool(o, "all_expected")); /* none lost, none blamed */
	json_object_put(o);
	o = call(&d, &c, "{\"command\":\"status\"}");
	if (spare) {
		/* A solo worker runs one job at a time: one job thread (and its main thread),
		 * where the pool's workers have two. */
		json_object *solo = jget(pool_of(o), "solo", json_type_array);

		for (size_t k = 0; k < json_object_array_length(solo); k++) {
			pid_t pid = (pid_t)jint(json_object_array_get_idx(solo, k), "pid");

			ck_assert_msg(pid <= 0 || threads_of(pid) == 2,
				      "solo worker %d has %d threads", (int)pid, threads_of(pid));
		}
	}
	ck_assert_msg(jint(pool_of(o), "restarts") == 1 && deaths_by(o, "SIGSEGV") == 1,
		      "restarts of the pool's slots: %lld, deaths by SIGSEGV: %lld, want 1 and 1; "
		      "%s",
		      (long long)jint(pool_of(o), "restarts"), (long long)deaths_by(o, "SIGSEGV"),
		      dmn_describe(&d));
	json_object_put(o);
	conn_close(&c);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}

START_TEST(test_poison_job_kills_a_shared_worker_once)
{
	poison(true);
}
END_TEST

START_TEST(test_poison_job_without_spare)
{
	poison(false);
}
END_TEST

#define SOLO_N 2 /* solo workers per pool (MASTER_SOLO_MAX) */

/* The pids of the pool's solo workers, every one ready (fails after WAIT_MS otherwise). */
static void solo_pids(struct daemon *d, struct conn *c, pid_t *pids)
{
	for (int64_t deadline = tu_now_ms() + WAIT_MS;;) {
		json_object *o = call(d, c, "{\"command\":\"status\"}"), *a, *e;
		bool ready = json_object_object_get_ex(pool_of(o), "solo", &a) &&
			     json_object_array_length(a) == SOLO_N;

		for (size_t k = 0; ready && k < SOLO_N; k++) {
			e = json_object_array_get_idx(a, k);
			ready = strcmp(jstr(e, "state"), "ready") == 0;
			pids[k] = (pid_t)jint(e, "pid");
		}
		json_object_put(o);
		if (ready)
			return;
		ck_assert_msg(tu_ms_left(deadline) > 0, "solo workers not ready; %s",
			      dmn_describe(d));
		dmn_pump(d, 20);
	}
}

/*
 * A retry that runs contained, cancelled (a plugin that faults once, then waits to be
 * cancelled, on a solo worker): its throwaway process is killed, the job ends cancelled with
 * the one attempt of its crash, and the solo workers are the same processes, with no child
 * left; the pool's one death is the first attempt's.
 */
START_TEST(test_cancel_contained_retry)
{
	const char *dir = getenv("BULKHEAD_TEST_PLUGINS");
	char conf[1024], req[128];
	struct daemon d;
	struct conn c;
	pid_t slots[1], spare, solo[SOLO_N], again[SOLO_N];
	json_object *o, *j;
	int64_t id;

	ck_assert_msg(dir && *dir, "BULKHEAD_TEST_PLUGINS is not set");
	dmn_init(&d);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 2\nspare = yes\n"
		 "[job once]\nrun = plugin:%s/outcomes.so:outcome\n"
		 "args = do=segv-once mark=%s/mark\nmax_attempts = 3\n",
		 dir, d.dir);
	dmn_write_config(&d, conf);
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	conn_open(&d, &c);
	/* Its retry runs (attempt 1 blamed) on a solo worker. */
	for (int64_t deadline = tu_now_ms() + WAIT_MS;;) {
		o = call(&d, &c, "{\"command\":\"jobs\",\"group\":\"once\"}");
		j = json_object_array_get_idx(jget(o, "jobs", json_type_array), 0);
		if (strcmp(jstr(j, "state"), "running") == 0 && jint(j, "attempts") == 1 &&
		    strncmp(jstr(j, "worker"), "main/6553", 9) == 0)
			break;
		json_object_put(o);
		ck_assert_msg(tu_ms_left(deadline) > 0, "the retry does not run; %s",
			      dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	id = jint(j, "id");
	json_object_put(o);
	json_object_put(wait_settled(&d, &c, true, slots, 1, &spare));
	solo_pids(&d, &c, solo);
	/* One of them runs it, in a child of its own. */
	ck_assert_int_eq(tu_children_any(solo[0], NULL, 0) + tu_children_any(solo[1], NULL, 0), 1);
	snprintf(req, sizeof(req), "{\"command\":\"cancel\",\"ids\":[%lld]}", (long long)id);
	json_object_put(call(&d, &c, req));
	snprintf(req, sizeof(req), "{\"command\":\"wait\",\"ids\":[%lld]}", (long long)id);
	json_object_put(call_within(&d, &c, req, WAIT_MS));

	o = call(&d, &c, "{\"command\":\"jobs\",\"group\":\"once\"}");
	j = json_object_array_get_idx(jget(o, "jobs", json_type_array), 0);
	ck_assert_str_eq(jstr(j, "state"), "cancelled");
	ck_assert_int_eq(jint(j, "attempts"), 1);
	json_object_put(o);
	o = call(&d, &c, "{\"command\":\"status\"}");
	ck_assert_msg(deaths_by(o, "SIGSEGV") == 1 &&
			      jint(jget(o, "workers", json_type_object), "contained_crashes") == 0,
		      "%s", jtext(o));
	json_object_put(o);
	solo_pids(&d, &c, again);
	for (unsigned k = 0; k < SOLO_N; k++) {
		ck_assert_int_eq(again[k], solo[k]);
		ck_assert_int_eq(tu_children_any(solo[k], NULL, 0), 0);
	}
	conn_close(&c);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* A daemon with a spare and a job that hangs on every attempt; extra: more [pool] keys. */
static void start_stuck(struct daemon *d, struct conn *c, const char *extra)
{
	char conf[512];

	dmn_init(d);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 2\nspare = yes\n%s"
		 "[job stuck]\nrun = builtin:hang\ntimeout = 300ms\nmax_attempts = 3\n"
		 "expect = timed_out\n",
		 extra);
	dmn_write_config(d, conf);
	dmn_start(d, NULL);
	dmn_wait_ready(d);
	conn_open(d, c);
}

/*
 * The stuck job's end: timed_out after three attempts, blamed `timeout`, and the pool's slot
 * restarted once (for its first attempt, on a shared worker). Returns the status reply.
 */
static json_object *expect_stuck_timed_out(struct daemon *d, struct conn *c)
{
	json_object *o, *j;

	o = call_within(d, c, "{\"command\":\"wait\",\"group\":\"stuck\"}", WAIT_MS);
	ck_assert(jbool(o, "all_expected"));
	json_object_put(o);
	o = call(d, c, "{\"command\":\"jobs\",\"group\":\"stuck\"}");
	j = json_object_array_get_idx(jget(o, "jobs", json_type_array), 0);
	ck_assert_str_eq(jstr(j, "state"), "timed_out");
	ck_assert_str_eq(jstr(j, "cause"), "timeout");
	ck_assert_int_eq(jint(j, "attempts"), 3);
	json_object_put(o);
	o = call(d, c, "{\"command\":\"status\"}");
	ck_assert_msg(jint(pool_of(o), "restarts") == 1, "%s", jtext(o));
	return o;
}

/*
 * A job that hangs on every attempt (timeout 300ms, max_attempts = 3): its first attempt's
 * timeout kills its shared worker; its retries run contained on the solo workers, and their
 * timeouts kill only the throwaway processes. The job ends timed_out after three attempts,
 * blamed `timeout`, no crash is counted, the pool's slot restarted once, and the solo workers
 * are the same processes, with no child left.
 */
START_TEST(test_contained_retry_times_out)
{
	struct daemon d;
	struct conn c;
	pid_t solo[SOLO_N], again[SOLO_N];
	json_object *o;

	start_stuck(&d, &c, "");
	solo_pids(&d, &c, solo);
	o = expect_stuck_timed_out(&d, &c);
	ck_assert_msg(jint(jget(o, "workers", json_type_object), "contained_crashes") == 0, "%s",
		      jtext(o));
	json_object_put(o);
	solo_pids(&d, &c, again);
	for (unsigned k = 0; k < SOLO_N; k++) {
		ck_assert_int_eq(again[k], solo[k]);
		ck_assert_int_eq(tu_children_any(solo[k], NULL, 0), 0);
	}
	dmn_expect_stderr(&d, "killing its contained process", WAIT_MS);
	conn_close(&c);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/*
 * The solo worker of a contained run that timed out dies (SIGKILLed from outside, held
 * stopped so that the CANCEL sent for the timeout is not taken) before the run's DONE: the
 * job is blamed `timeout` as if the DONE had come, and it stays alone, so its last attempt
 * runs contained too and its timeout kills no pool worker: the pool's slot restarted once,
 * for the first attempt.
 */
START_TEST(test_contained_timeout_worker_killed)
{
	struct daemon d;
	struct conn c;
	pid_t solo[SOLO_N], runner = 0;

	start_stuck(&d, &c, "kill_grace = 30s\n");
	/* Its first retry, contained: the solo worker with a child runs it. */
	for (int64_t deadline = tu_now_ms() + WAIT_MS; runner == 0;) {
		solo_pids(&d, &c, solo);
		for (unsigned k = 0; k < SOLO_N; k++)
			if (tu_children_any(solo[k], NULL, 0) == 1)
				runner = solo[k];
		ck_assert_msg(runner > 0 || tu_ms_left(deadline) > 0, "no contained retry; %s",
			      dmn_describe(&d));
		if (runner == 0)
			dmn_pump(&d, 20);
	}
	ck_assert_int_eq(kill(runner, SIGSTOP), 0);
	dmn_expect_stderr(&d, "killing its contained process", WAIT_MS);
	ck_assert_int_eq(kill(runner, SIGKILL), 0);
	json_object_put(expect_stuck_timed_out(&d, &c));
	conn_close(&c);
	dmn_stop(&d);
	/* The killed worker's child died with it (PR_SET_PDEATHSIG): an orphan, ours to reap. */
	dmn_assert_nothing_left(d.dir, WAIT_MS, "the solo worker's SIGKILL");
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/*
 * Reload turns the spare (and the solo workers) off, they are gone, and on again; restart
 * replaces them with the rest.
 */
START_TEST(test_spare_reload_and_restart)
{
	struct daemon d;
	struct conn c;
	pid_t slots[1], spare, spare2, found[WORKERS_MAX];
	json_object *o;

	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 1\nthreads = 1\nspare = yes\n");
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	conn_open(&d, &c);
	json_object_put(wait_settled(&d, &c, true, slots, 1, &spare));

	dmn_write_config(&d, "[pool main]\nworkers = 1\nthreads = 1\nspare = no\n");
	assert_ok(o = call(&d, &c, "{\"command\":\"reload\"}"));
	json_object_put(o);
	json_object_put(wait_settled(&d, &c, false, slots, 1, &spare2));
	for (int64_t deadline = tu_now_ms() + WAIT_MS; tu_process_alive(spare);) {
		ck_assert_msg(tu_ms_left(deadline) > 0, "the old spare is still there; %s",
			      dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	ck_assert_int_eq(tu_find_workers(d.pid, found, WORKERS_MAX), 1);

	dmn_write_config(&d, "[pool main]\nworkers = 1\nthreads = 1\nspare = yes\n");
	assert_ok(o = call(&d, &c, "{\"command\":\"reload\"}"));
	json_object_put(o);
	json_object_put(wait_settled(&d, &c, true, slots, 1, &spare));

	/* restart: the slot and the spare both get new processes (none is reused). */
	{
		pid_t old_slot = slots[0], old_spare = spare;

		assert_ok(o = call(&d, &c, "{\"command\":\"restart\",\"target\":\"main\"}"));
		json_object_put(o);
		for (int64_t deadline = tu_now_ms() + WAIT_MS;;) {
			json_object_put(wait_settled(&d, &c, true, slots, 1, &spare));
			if (slots[0] != old_slot && spare != old_spare && slots[0] != old_spare)
				break;
			ck_assert_msg(tu_ms_left(deadline) > 0, "not replaced; %s",
				      dmn_describe(&d));
			dmn_pump(&d, 20);
		}
	}
	conn_close(&c);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* A pool that fails (its workers never say HELLO) retires its spare and solo workers too. */
START_TEST(test_failed_pool_retires_spare)
{
	const char *env[] = { "BULKHEAD_WORKER=/bin/false", NULL };
	struct daemon d;
	struct conn c;
	json_object *o, *p, *x;

	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 1\nthreads = 1\nspare = yes\n"
			     "backoff = 10ms..20ms\nmax_worker_faults = 3/60s\n");
	dmn_start(&d, env);
	dmn_wait_ready(&d); /* a failed pool counts as settled */
	conn_open(&d, &c);
	for (int64_t deadline = tu_now_ms() + WAIT_MS;;) {
		bool gone;

		o = call(&d, &c, "{\"command\":\"status\"}");
		p = pool_of(o);
		gone = strcmp(jstr(p, "state"), "failed") == 0 &&
		       !json_object_object_get_ex(p, "spare", &x) &&
		       !json_object_object_get_ex(p, "solo", &x);
		json_object_put(o);
		if (gone)
			break;
		ck_assert_msg(tu_ms_left(deadline) > 0, "spare not retired; %s", dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	conn_close(&c);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* PTRACE_SEIZEs every thread of pid into tids[]; how many, or -errno of the first that fails. */
static int trace_threads(pid_t pid, pid_t *tids, int max)
{
	int n = tu_threads(pid, tids, max);

	ck_assert_int_ge(n, 0);
	for (int i = 0; i < n; i++)
		if (ptrace(PTRACE_SEIZE, tids[i], NULL, NULL) < 0)
			return -errno;
	return n;
}

/*
 * Lets the traced threads run until one stops in the default action of a SIGSEGV its crash
 * handler raised (si_code SI_TKILL, after the CRASH frames): that thread is held there and
 * returned. A fault from the kernel goes on to the handler; other signals pass through.
 */
static pid_t hold_at_crash_end(struct daemon *d, const pid_t *tids, int n)
{
	for (int64_t deadline = tu_now_ms() + WAIT_MS;;) {
		for (int i = 0; i < n; i++) {
			siginfo_t si;
			int st, sig;

			if (waitpid(tids[i], &st, __WALL | WNOHANG) != tids[i] || !WIFSTOPPED(st))
				continue;
			sig = WSTOPSIG(st);
			if (st >> 16 == PTRACE_EVENT_STOP) {
				ck_assert_int_eq(ptrace(PTRACE_CONT, tids[i], NULL, NULL), 0);
				continue;
			}
			ck_assert_int_eq(ptrace(PTRACE_GETSIGINFO, tids[i], NULL, &si), 0);
			if (sig == SIGSEGV && si.si_code == SI_TKILL)
				return tids[i];
			ck_assert_int_eq(ptrace(PTRACE_CONT, tids[i], NULL, (void *)(long)sig), 0);
		}
		ck_assert_msg(tu_ms_left(deadline) > 0, "no crash to hold; %s", dmn_describe(d));
		dmn_pump(d, 5);
	}
}

/*
 * A slot whose process sent CRASH has the spare at once, before that process is gone
 * (spare_step_in()): this test traces the slot's worker and holds the crashing thread in
 * the default action of the signal its crash handler re-raised, so the crashed process
 * stays. Meanwhile the slot runs the spare's process and a bystander's replacement job.
 * Let go, it dies, and its death is judged as ever: culprit blamed, bystander re-run.
 */
START_TEST(test_spare_steps_in_at_crash)
{
	struct daemon d;
	struct conn c;
	pid_t slots[1], spare, now[1], spare2, tids[16], held;
	json_object *o, *j;
	char req[128];
	int n, st;

	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 1\nthreads = 2\nmin_uptime = 0\n"
			     "spare = yes\n");
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	conn_open(&d, &c);
	json_object_put(wait_settled(&d, &c, true, slots, 1, &spare));
	n = trace_threads(slots[0], tids, 16);
	if (n < 0) {
		ck_assert_int_eq(n, -EPERM);
		fprintf(stderr, "SKIP spare steps in: ptrace not permitted here\n");
		conn_close(&c);
		dmn_stop(&d);
		dmn_free(&d);
		return;
	}
	/* A bystander on the other thread (it sleeps through the crash), then the crash. */
	o = call(&d, &c, "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:sleep\","
			 "\"args\":{\"ms\":\"60000\"}}");
	assert_ok(o);
	json_object_put(o);
	o = call(&d, &c, "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:segv\"}");
	assert_ok(o);
	snprintf(req, sizeof(req), "{\"command\":\"wait\",\"ids\":[%lld]}",
		 (long long)json_object_get_int64(
			 json_object_array_get_idx(jget(o, "ids", json_type_array), 0)));
	json_object_put(o);
	held = hold_at_crash_end(&d, tids, n);

	/* The crashed process is still there (held), and the slot already has the spare's. */
	for (int64_t deadline = tu_now_ms() + WAIT_MS;;) {
		o = call(&d, &c, "{\"command\":\"status\"}");
		now[0] = slot_ready_pid(pool_of(o), 0);
		json_object_put(o);
		if (now[0] == spare)
			break;
		ck_assert_msg(tu_ms_left(deadline) > 0, "slot 0 is %d, not the spare %d; %s",
			      (int)now[0], (int)spare, dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	ck_assert(tu_process_alive(slots[0]));
	/* Its report out, it yields its CPU: every thread SCHED_IDLE (children/crash.c). */
	for (int i = 0; i < n; i++)
		ck_assert_msg(sched_getscheduler(tids[i]) == SCHED_IDLE,
			      "thread %d of the crashed worker has policy %d", (int)tids[i],
			      sched_getscheduler(tids[i]));

	/* Let it go: the signal's default action ends it; then it is the master's to reap. */
	ck_assert_int_eq(ptrace(PTRACE_CONT, held, NULL, (void *)(long)SIGSEGV), 0);
	/* Its other threads first: the leader's end is reported only once they are reaped. */
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < n; i++)
			while ((tids[i] == slots[0]) == (k == 1) &&
			       waitpid(tids[i], &st, __WALL) == tids[i] && !WIFEXITED(st) &&
			       !WIFSIGNALED(st))
				(void)ptrace(PTRACE_CONT, tids[i], NULL, NULL);
	o = call_within(&d, &c, req, WAIT_MS);
	j = json_object_array_get_idx(jget(o, "jobs", json_type_array), 0);
	ck_assert_str_eq(jstr(j, "state"), "crashed");
	json_object_put(o);
	o = wait_settled(&d, &c, true, now, 1, &spare2);
	ck_assert_int_eq(now[0], spare);
	ck_assert_int_ne(spare2, spare);
	/* One restart of the slot (the step-in), one process of it up, the bystander running
	 * again (re-queued with no attempt: it is not done, it was not blamed). */
	ck_assert_int_eq(jint(pool_of(o), "restarts"), 1);
	ck_assert_int_eq(jint(pool_of(o), "workers_up"), 1);
	json_object_put(o);
	o = call(&d, &c, "{\"command\":\"jobs\",\"state\":\"running\"}");
	j = json_object_array_get_idx(jget(o, "jobs", json_type_array), 0);
	ck_assert_msg(j && jint(j, "attempts") == 0, "the bystander is not running again: %s",
		      json_object_to_json_string(o));
	json_object_put(o);
	conn_close(&c);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

static Suite *spare_suite(void)
{
	Suite *s = suite_create("spare");
	TCase *tc = tcase_create("spare");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_add_test(tc, test_killed_worker_replaced_by_spare);
	tcase_add_test(tc, test_poison_job_kills_a_shared_worker_once);
	tcase_add_test(tc, test_poison_job_without_spare);
	tcase_add_test(tc, test_cancel_contained_retry);
	tcase_add_test(tc, test_contained_retry_times_out);
	tcase_add_test(tc, test_contained_timeout_worker_killed);
	tcase_add_test(tc, test_spare_reload_and_restart);
	tcase_add_test(tc, test_failed_pool_retires_spare);
	tcase_add_test(tc, test_spare_steps_in_at_crash);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dmn_run(spare_suite(), "spare");
}
