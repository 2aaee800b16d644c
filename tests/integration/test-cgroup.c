/* SPDX-License-Identifier: MIT */
/*
 * Per-worker cgroups (issue 15), against a real bulkheadd started in a cgroup v2 subtree the
 * test makes and marks delegated (trusted.delegate=1, what systemd sets for Delegate=yes):
 *   - the master moves itself into C/supervisor, each worker runs in C/w.POOL.SLOT;
 *   - a process a job's command started that escaped everything else: its own session
 *     (setsid), and its command's trampoline (children/exec-trampoline.c, which sweeps such
 *     descendants) SIGKILLed under it, so that it is nobody's child but ours (a subreaper):
 *     it is still there, and it is ended with its worker (cgroup.kill) when the worker is
 *     killed; the slot's next worker goes into the same cgroup; a stop removes the slot
 *     cgroups;
 *   - where the subtree has the memory controller: a leak job is OOM-killed by memory.max,
 *     blamed `memory`, and the worker's other job runs again and ends done. Where it has not
 *     (this machine: the memory controller is cgroup v1) that part is skipped, and the log
 *     says memory_max is an RLIMIT_AS limit instead.
 *   - [pool] spare = yes: the spare in C/w.POOL.65535, moved into the slot's cgroup when it
 *     takes the slot over;
 * Without a cgroup2 mount, or where the test cannot make a cgroup, it skips with the reason.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ctlutil.h"
#include "daemonutil.h"
#include "testutil.h"

#define JOBS_MS 30000

static char mnt[256]; /* where cgroup2 is mounted */
static char cg[512]; /* the test's cgroup: MNT/bulkhead-test-PID */

/* The cgroup2 mount point, or false. */
static bool find_cgroup2(void)
{
	char line[1024];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");

		found = sep && strncmp(sep + 3, "cgroup2 ", 8) == 0 &&
			sscanf(line, "%*s %*s %*s %*s %255s", mnt) == 1;
	}
	fclose(f);
	return found;
}

/* Makes the test's delegated cgroup, or says why not and returns false. */
static bool make_cgroup(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "%s: skipped: needs root to make a cgroup\n", tcase_name());
		return false;
	}
	if (!find_cgroup2()) {
		fprintf(stderr, "%s: skipped: no cgroup2 file system mounted\n", tcase_name());
		return false;
	}
	snprintf(cg, sizeof(cg), "%s/bulkhead-test-%d", mnt, (int)getpid());
	if (mkdir(cg, 0755) < 0 || setxattr(cg, "trusted.delegate", "1", 1, 0) < 0) {
		fprintf(stderr, "%s: skipped: cannot make a delegated cgroup %s: %s\n",
			tcase_name(), cg, strerror(errno));
		rmdir(cg);
		return false;
	}
	return true;
}

/* Removes the test's cgroup (what the daemon left: its supervisor leaf), empty by now. */
static void remove_cgroup(void)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/supervisor", cg);
	rmdir(path);
	ck_assert_msg(rmdir(cg) == 0, "cgroup %s not removed: %s (a slot cgroup left?)", cg,
		      strerror(errno));
}

/* pid's cgroup v2 path ("0::PATH"), relative to the mount (static buffer), or "". */
static const char *cgroup_of(pid_t pid)
{
	static char buf[512];
	char path[64], line[512];
	FILE *f;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return buf;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(buf, sizeof(buf), "%s", line + 3);
		}
	fclose(f);
	return buf;
}

/* The wrapper that puts the daemon into the test's cgroup before it starts (it execs). */
static const char *const *in_cgroup_wrap(void)
{
	static const char *wrap[6];

	wrap[0] = "/bin/sh";
	wrap[1] = "-c";
	wrap[2] = "echo $$ > \"$0/cgroup.procs\" && exec \"$@\"";
	wrap[3] = cg;
	wrap[4] = NULL;
	return wrap;
}

static bool controller_available(const char *name)
{
	char path[600], *text;
	bool yes;

	snprintf(path, sizeof(path), "%s/cgroup.controllers", cg);
	text = tu_read_file(path);
	yes = text && strstr(text, name);
	free(text);
	return yes;
}

/* Waits until pid is gone or a zombie (then reaps it if it is ours). */
static void wait_gone(struct daemon *d, pid_t pid, const char *what)
{
	for (int64_t deadline = tu_now_ms() + JOBS_MS;;) {
		char state = 0;

		if (tu_proc_stat(pid, NULL, 0, &state, NULL) < 0 || state == 'Z')
			break;
		ck_assert_msg(tu_ms_left(deadline) > 0, "%s (pid %d) still there; %s", what,
			      (int)pid, dmn_describe(d));
		dmn_pump(d, 20);
	}
	(void)waitpid(pid, NULL, WNOHANG);
}

START_TEST(test_workers_in_their_cgroups)
{
	char conf[1024], path[600], want[600], *text;
	struct daemon d;
	struct conn c;
	pid_t w0, cmd, esc, w1, tramp = 0;
	char state;
	json_object *o;

	if (!make_cgroup())
		return;
	dmn_init(&d);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 2\nmemory_max = 256M\ntasks_max = 64\n"
		 "[job esc]\nrun = exec:/bin/sh -c 'setsid sleep 300 & echo $$ $! > %s/esc.tmp && "
		 "mv %s/esc.tmp %s/esc; exec sleep 300'\n",
		 d.dir, d.dir, d.dir);
	dmn_write_config(&d, conf);
	d.wrap = in_cgroup_wrap();
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	dmn_expect_stderr(&d, "workers in cgroups of their own under", CALL_MS);
	if (!controller_available("memory"))
		dmn_expect_stderr(&d, "memory.max: no, RLIMIT_AS instead", CALL_MS);

	/* The master in C/supervisor, its worker in C/w.main.0. */
	snprintf(want, sizeof(want), "%s/supervisor", cg + strlen(mnt));
	ck_assert_str_eq(cgroup_of(d.pid), want);
	ck_assert_int_eq(d.n_workers, 1);
	w0 = d.workers[0];
	snprintf(want, sizeof(want), "%s/w.main.0", cg + strlen(mnt));
	ck_assert_str_eq(cgroup_of(w0), want);

	/* The job's escaped sleep: in the worker's cgroup. */
	snprintf(path, sizeof(path), "%s/esc", d.dir);
	for (int64_t deadline = tu_now_ms() + JOBS_MS; !(text = tu_read_file(path));) {
		ck_assert_msg(tu_ms_left(deadline) > 0, "the job never wrote %s; %s", path,
			      dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	ck_assert_int_eq(sscanf(text, "%d %d", &cmd, &esc), 2);
	free(text);
	ck_assert_str_eq(cgroup_of(esc), want);
	/* Its command's trampoline SIGKILLed: the command follows it, the escaped one stays. */
	ck_assert_int_eq(tu_proc_stat(cmd, NULL, 0, &state, &tramp), 0);
	ck_assert_int_eq(kill(tramp, SIGKILL), 0);
	wait_gone(&d, cmd, "the command whose trampoline was killed");
	ck_assert_msg(tu_proc_stat(esc, NULL, 0, &state, NULL) == 0 && state != 'Z',
		      "the escaped process died with its trampoline: nothing left to test");

	/* The worker killed: the escaped process goes with it; the next worker, same cgroup. */
	conn_open(&d, &c);
	o = call(&d, &c, "{\"command\":\"inject\",\"target\":\"main\",\"fault\":\"kill\"}");
	assert_ok(o);
	json_object_put(o);
	wait_gone(&d, esc, "the command that escaped its session");
	for (int64_t deadline = tu_now_ms() + JOBS_MS;;) {
		pid_t w[4];
		int n = tu_find_workers(d.pid, w, 4);

		w1 = n == 1 && w[0] != w0 ? w[0] : 0;
		if (w1 && strcmp(cgroup_of(w1), want) == 0)
			break;
		ck_assert_msg(tu_ms_left(deadline) > 0, "no new worker in %s; %s", want,
			      dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	conn_close(&c);
	dmn_stop(&d);
	dmn_assert_nothing_left(d.dir, CALL_MS, "the stop");
	dmn_assert_aftermath();
	/* The slot's cgroup went with the daemon. */
	snprintf(path, sizeof(path), "%s/w.main.0", cg);
	ck_assert_msg(access(path, F_OK) < 0, "%s is still there", path);
	dmn_free(&d);
	remove_cgroup();
}
END_TEST

/* A leak job under memory.max: OOM-killed, blamed `memory`; the other job re-run, done. */
START_TEST(test_oom_blamed_memory)
{
	struct daemon d;
	struct conn c;
	json_object *o;

	if (!make_cgroup())
		return;
	if (!controller_available("memory")) {
		fprintf(stderr,
			"%s: skipped: the cgroup v2 subtree has no memory controller here (it is "
			"cgroup v1's): memory_max is an RLIMIT_AS limit, tested elsewhere\n",
			tcase_name());
		remove_cgroup();
		return;
	}
	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 1\nthreads = 2\nmemory_max = 64M\n"
			     "[job leak]\nrun = builtin:leak\nmax_attempts = 1\nexpect = crashed\n"
			     "[job ok]\nrun = builtin:sleep\nargs = ms=300\n");
	d.wrap = in_cgroup_wrap();
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	conn_open(&d, &c);
	o = call_within(&d, &c, "{\"command\":\"wait\",\"group\":\"leak\"}", JOBS_MS);
	ck_assert_str_eq(
		jstr(json_object_array_get_idx(jget(o, "jobs", json_type_array), 0), "state"),
		"crashed");
	ck_assert_str_eq(
		jstr(json_object_array_get_idx(jget(o, "jobs", json_type_array), 0), "cause"),
		"memory");
	json_object_put(o);
	o = call_within(&d, &c, "{\"command\":\"wait\",\"group\":\"ok\"}", JOBS_MS);
	ck_assert(jbool(o, "all_expected"));
	json_object_put(o);
	conn_close(&c);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
	remove_cgroup();
}
END_TEST

/* The spare's status entry: its pid once it is ready, else 0. */
static pid_t spare_pid(struct daemon *d, struct conn *c, pid_t *ret_slot0)
{
	json_object *o = call(d, c, "{\"command\":\"status\"}"), *p, *s, *w;
	pid_t pid = 0;

	p = json_object_array_get_idx(jget(o, "pools", json_type_array), 0);
	w = json_object_array_get_idx(jget(p, "workers", json_type_array), 0);
	*ret_slot0 = strcmp(jstr(w, "state"), "ready") == 0 ? (pid_t)jint(w, "pid") : 0;
	if (json_object_object_get_ex(p, "spare", &s) && strcmp(jstr(s, "state"), "ready") == 0)
		pid = (pid_t)jint(s, "pid");
	json_object_put(o);
	return pid;
}

/*
 * [pool] spare = yes: the spare runs in C/w.main.65535; when the slot's worker is killed, the
 * spare becomes the slot's worker and is moved into C/w.main.0; the next spare is in the
 * spare's cgroup again; a stop removes both cgroups.
 */
START_TEST(test_spare_moves_into_the_slot_cgroup)
{
	char want0[600], wants[600], path[600];
	struct daemon d;
	struct conn c;
	pid_t w0 = 0, spare = 0, w1 = 0, spare2 = 0;

	if (!make_cgroup())
		return;
	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 1\nthreads = 2\ntasks_max = 64\n"
			     "min_uptime = 0\nspare = yes\n");
	d.wrap = in_cgroup_wrap();
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	conn_open(&d, &c);
	snprintf(want0, sizeof(want0), "%s/w.main.0", cg + strlen(mnt));
	snprintf(wants, sizeof(wants), "%s/w.main.65535", cg + strlen(mnt));
	for (int64_t deadline = tu_now_ms() + JOBS_MS; !(spare = spare_pid(&d, &c, &w0)) || !w0;) {
		ck_assert_msg(tu_ms_left(deadline) > 0, "no spare; %s", dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	ck_assert_str_eq(cgroup_of(w0), want0);
	ck_assert_str_eq(cgroup_of(spare), wants);

	ck_assert_int_eq(kill(w0, SIGKILL), 0);
	for (int64_t deadline = tu_now_ms() + JOBS_MS;;) {
		spare2 = spare_pid(&d, &c, &w1);
		if (spare2 && spare2 != spare && w1 && w1 != w0)
			break;
		ck_assert_msg(tu_ms_left(deadline) > 0, "no takeover; %s", dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	ck_assert_int_eq(w1, spare);
	ck_assert_str_eq(cgroup_of(w1), want0);
	ck_assert_str_eq(cgroup_of(spare2), wants);
	conn_close(&c);
	dmn_stop(&d);
	dmn_assert_aftermath();
	snprintf(path, sizeof(path), "%s/w.main.65535", cg);
	ck_assert_msg(access(path, F_OK) < 0, "%s is still there", path);
	dmn_free(&d);
	remove_cgroup();
}
END_TEST

/* pid's spawner (children/spawner.c: its child named bulkhead-spawn). */
static pid_t spawner_of(pid_t pid)
{
	pid_t sp = tu_find_spawner(pid, JOBS_MS);

	ck_assert_msg(sp > 0, "worker %d has no spawner, or several", (int)pid);
	return sp;
}

/*
 * A pool with exec: groups: each worker's spawner is in the worker's cgroup, the spare's
 * moves with it into the slot's at the takeover, and so does a command started there.
 */
START_TEST(test_spawner_follows_its_worker)
{
	char conf[1024], want0[600], wants[600], path[700], req[128], *text;
	struct daemon d;
	struct conn c;
	pid_t w0 = 0, spare = 0, w1 = 0, spare2 = 0;
	json_object *o;
	long id;

	if (!make_cgroup())
		return;
	dmn_init(&d);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 2\ntasks_max = 64\nmin_uptime = 0\n"
		 "spare = yes\n"
		 "[job where]\nrun = exec:/bin/cat /proc/self/cgroup\noutput = %s\ncount = 1\n",
		 d.dir);
	dmn_write_config(&d, conf);
	d.wrap = in_cgroup_wrap();
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	conn_open(&d, &c);
	snprintf(want0, sizeof(want0), "%s/w.main.0", cg + strlen(mnt));
	snprintf(wants, sizeof(wants), "%s/w.main.65535", cg + strlen(mnt));
	for (int64_t deadline = tu_now_ms() + JOBS_MS; !(spare = spare_pid(&d, &c, &w0)) || !w0;) {
		ck_assert_msg(tu_ms_left(deadline) > 0, "no spare; %s", dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	ck_assert_str_eq(cgroup_of(spawner_of(w0)), want0);
	ck_assert_str_eq(cgroup_of(spawner_of(spare)), wants);

	ck_assert_int_eq(kill(w0, SIGKILL), 0);
	for (int64_t deadline = tu_now_ms() + JOBS_MS;;) {
		spare2 = spare_pid(&d, &c, &w1);
		if (spare2 && spare2 != spare && w1 && w1 != w0)
			break;
		ck_assert_msg(tu_ms_left(deadline) > 0, "no takeover; %s", dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	ck_assert_int_eq(w1, spare);
	ck_assert_str_eq(cgroup_of(spawner_of(w1)), want0);
	ck_assert_str_eq(cgroup_of(spawner_of(spare2)), wants);

	/* A command on the slot now: forked by the spawner that moved, in the slot's cgroup. */
	o = call(&d, &c, "{\"command\":\"submit\",\"group\":\"where\",\"count\":1}");
	assert_ok(o);
	id = (long)json_object_get_int64(
		json_object_array_get_idx(jget(o, "ids", json_type_array), 0));
	json_object_put(o);
	snprintf(req, sizeof(req), "{\"command\":\"wait\",\"ids\":[%ld]}", id);
	o = call_within(&d, &c, req, JOBS_MS);
	ck_assert_msg(jbool(o, "all_expected"), "%s", jtext(o));
	json_object_put(o);
	snprintf(path, sizeof(path), "%s/where.%ld.out", d.dir, id);
	text = tu_read_file(path);
	ck_assert_msg(text, "no %s", path);
	snprintf(path, sizeof(path), "\n0::%s\n", want0); /* after v1's lines, if any */
	ck_assert_msg(strstr(text, path) || strncmp(text, path + 1, strlen(path + 1)) == 0,
		      "the command ran in %s, not %s", text, want0);
	free(text);

	conn_close(&c);
	dmn_stop(&d);
	dmn_assert_nothing_left(d.dir, CALL_MS, "the stop"); /* the killed worker's spawner */
	dmn_assert_aftermath();
	dmn_free(&d);
	remove_cgroup();
}
END_TEST

static Suite *cgroup_suite(void)
{
	Suite *s = suite_create("cgroup");
	TCase *tc = tcase_create("cgroup");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_add_test(tc, test_workers_in_their_cgroups);
	tcase_add_test(tc, test_oom_blamed_memory);
	tcase_add_test(tc, test_spare_moves_into_the_slot_cgroup);
	tcase_add_test(tc, test_spawner_follows_its_worker);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dmn_run(cgroup_suite(), "cgroup");
}
