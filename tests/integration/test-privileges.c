/* SPDX-License-Identifier: MIT */
/*
 * Jobs without root (issue 15): a pool's `user` and `group`, against a real bulkheadd.
 *
 *   - each worker runs as its pool's uid and gid, no supplementary group, no capability in
 *     any set (the bounding set included), NO_NEW_PRIVS; read from /proc/PID/status of the
 *     real processes;
 *   - a job sees the same ids (an exec job checks `id`), and its real attempts to SIGKILL the
 *     master and another pool's worker fail with EPERM: both are still there afterwards, the
 *     same processes, and the job ends failed;
 *   - a uid that runs a pool's jobs is refused on the control socket even with
 *     control_group as its group, while another uid of that group is served (primary or
 *     supplementary: SO_PEERGROUPS);
 *   - a reload that changes a pool's user replaces its workers with ones of the new uid;
 *   - a user that does not exist is a config error (78) that names the line;
 *   - the master as bulkhead.service runs it: its own uid (not root) with only CAP_SETUID,
 *     CAP_SETGID, CAP_KILL and CAP_SETPCAP as ambient capabilities, and a /proc that shows
 *     it only its own processes (hidepid=invisible, as ProtectProc=invisible): workers still
 *     start as the pool's user with nothing left, an exec command that times out is killed
 *     alone (the master reads its /proc entry as the worker), clients' groups are seen, the
 *     stop is clean.
 *
 * The uids are plain numbers with no account (61001...), so the test changes nothing on the
 * host. It needs root (to start workers as other uids); without root it skips with a message.
 */
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <json-c/json.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmdutil.h"
#include "ctlutil.h"
#include "daemonutil.h"
#include "testutil.h"

#define UID_A 61001
#define UID_B 61002
#define GID_B 61003
#define UID_C 61004
#define UID_OTHER 61009
#define UID_MASTER 61010
#define JOBS_MS 30000

static bool need_root(const char *test)
{
	if (geteuid() == 0)
		return true;
	fprintf(stderr, "%s: skipped: needs root to start workers as other users\n", test);
	return false;
}

/* Root and the group `users` (its gid in *ret): else false, with why the test is skipped. */
static bool need_root_and_users(gid_t *ret)
{
	const struct group *users = getgrnam("users");

	if (!need_root(tcase_name()))
		return false;
	if (!users) {
		fprintf(stderr, "%s: skipped: no group 'users' on this machine\n", tcase_name());
		return false;
	}
	*ret = users->gr_gid;
	return true;
}

/* A daemon on conf, up (READY=1). */
static void start(struct daemon *d, const char *conf)
{
	dmn_init(d);
	dmn_write_config(d, conf);
	dmn_start(d, NULL);
	dmn_wait_ready(d);
}

/* A line "Key:\tv1\tv2..." of /proc/PID/status, its values (static buffer), or NULL. */
static const char *status_field(pid_t pid, const char *key)
{
	static char value[256];
	char path[64], line[512];
	size_t klen = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) != 0 || line[klen] != ':')
			continue;
		fclose(f);
		snprintf(value, sizeof(value), "%s", line + klen + 1);
		value[strcspn(value, "\n")] = '\0';
		for (char *p = value; *p; p++)
			if (*p == '\t')
				*p = ' ';
		return value + strspn(value, " ");
	}
	fclose(f);
	return NULL;
}

/* The daemon's worker (at READY=1) whose real uid is uid; fails the test if none. */
static pid_t worker_of_uid(struct daemon *d, unsigned uid)
{
	char want[64];

	snprintf(want, sizeof(want), "%u %u %u %u", uid, uid, uid, uid);
	for (int i = 0; i < d->n_workers; i++) {
		const char *u = status_field(d->workers[i], "Uid");

		if (u && strcmp(u, want) == 0)
			return d->workers[i];
	}
	ck_abort_msg("no worker with uid %u; %s", uid, dmn_describe(d));
	return 0;
}

/* Worker pid runs as uid:gid with no group, no capability, NO_NEW_PRIVS. */
static void assert_dropped(pid_t pid, unsigned uid, unsigned gid)
{
	static const char *const caps[] = { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb" };
	char want[64];
	const char *v;

	snprintf(want, sizeof(want), "%u %u %u %u", uid, uid, uid, uid);
	v = status_field(pid, "Uid");
	ck_assert_msg(v && strcmp(v, want) == 0, "worker %d: Uid %s, not %s", (int)pid, v, want);
	snprintf(want, sizeof(want), "%u %u %u %u", gid, gid, gid, gid);
	v = status_field(pid, "Gid");
	ck_assert_msg(v && strcmp(v, want) == 0, "worker %d: Gid %s, not %s", (int)pid, v, want);
	v = status_field(pid, "Groups");
	ck_assert_msg(v && *v == '\0', "worker %d: supplementary groups %s", (int)pid, v);
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		v = status_field(pid, caps[i]);
		ck_assert_msg(v && strspn(v, "0") == strlen(v), "worker %d: %s %s", (int)pid,
			      caps[i], v);
	}
	v = status_field(pid, "NoNewPrivs");
	ck_assert_msg(v && strcmp(v, "1") == 0, "worker %d: NoNewPrivs %s", (int)pid, v);
}

/* Submits one job of the config's group `group` with args {key: value}; returns its id. */
static int64_t submit_with(struct daemon *d, struct conn *c, const char *group, const char *key,
			   const char *value)
{
	char req[256];
	json_object *o;
	int64_t id;

	snprintf(req, sizeof(req),
		 "{\"command\":\"submit\",\"group\":\"%s\",\"args\":{\"%s\":\"%s\"}}", group, key,
		 value);
	o = call(d, c, req);
	assert_ok(o);
	id = json_object_get_int64(json_object_array_get_idx(jget(o, "ids", json_type_array), 0));
	json_object_put(o);
	return id;
}

/* Waits for job id to end; returns its state (static buffer). */
static const char *ended_state(struct daemon *d, struct conn *c, int64_t id)
{
	static char state[32];
	char req[128];
	json_object *o, *jobs;

	snprintf(req, sizeof(req), "{\"command\":\"wait\",\"ids\":[%lld]}", (long long)id);
	o = call_within(d, c, req, JOBS_MS);
	assert_ok(o);
	jobs = jget(o, "jobs", json_type_array);
	ck_assert_int_eq(json_object_array_length(jobs), 1);
	snprintf(state, sizeof(state), "%s", jstr(json_object_array_get_idx(jobs, 0), "state"));
	json_object_put(o);
	return state;
}

START_TEST(test_workers_and_jobs_run_as_pool_user)
{
	/* who: what a job sees; kill: a real SIGKILL at {arg:pid} (first at PID 1, as
	 * configured; then at what the test submits). */
	static const char conf[] =
		"[pool a]\nuser = 61001\nworkers = 1\nthreads = 2\n"
		"[pool b]\nuser = 61002\ngroup = 61003\nworkers = 1\nthreads = 1\n"
		"[job who]\npool = a\nrun = exec:/bin/sh -c "
		"'test \"$(id -u):$(id -g):$(id -G)\" = 61001:61001:61001 && "
		"grep -Eq \"^CapEff:\\s0+$\" /proc/self/status && "
		"grep -Eq \"^NoNewPrivs:\\s1$\" /proc/self/status'\n"
		"[job kill]\npool = a\nrun = exec:/bin/kill -KILL {arg:pid}\nargs = pid=1\n"
		"expect = failed\n";
	struct daemon d;
	struct conn c;
	pid_t a, b;
	char pid[16];
	int64_t id;

	if (!need_root(tcase_name()))
		return;
	start(&d, conf);
	a = worker_of_uid(&d, UID_A);
	b = worker_of_uid(&d, UID_B);
	assert_dropped(a, UID_A, UID_A);
	assert_dropped(b, UID_B, GID_B);
	conn_open(&d, &c);

	/* What a job sees (job 1): the pool's ids, no supplementary group, no capability. */
	ck_assert_str_eq(ended_state(&d, &c, 1), "done");

	/* A real SIGKILL at PID 1 (job 2), the master, pool b's worker: EPERM, job failed. */
	ck_assert_str_eq(ended_state(&d, &c, 2), "failed");
	snprintf(pid, sizeof(pid), "%d", (int)d.pid);
	id = submit_with(&d, &c, "kill", "pid", pid);
	ck_assert_str_eq(ended_state(&d, &c, id), "failed");
	snprintf(pid, sizeof(pid), "%d", (int)b);
	id = submit_with(&d, &c, "kill", "pid", pid);
	ck_assert_str_eq(ended_state(&d, &c, id), "failed");
	dmn_expect_stderr(&d, "Operation not permitted", CALL_MS);

	/* Both are still there, the very same processes. */
	ck_assert_msg(!d.exited && kill(d.pid, 0) == 0, "the master is gone; %s", dmn_describe(&d));
	ck_assert_int_eq(worker_of_uid(&d, UID_B), b);
	assert_dropped(b, UID_B, GID_B);
	json_object_put(call(&d, &c, "{\"command\":\"status\"}"));
	ck_assert_msg(!strstr(d.err ? d.err : "", "worker fault"), "a worker died; %s",
		      dmn_describe(&d));
	conn_close(&c);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* A uid with control_group (gid) as a supplementary group only: served (SO_PEERGROUPS). */
static void assert_supplementary_member_served(struct daemon *d, gid_t gid)
{
	char *out = run_as(
		d, &(struct as_user){
			   .uid = UID_OTHER, .gid = UID_OTHER, .groups = &gid, .n_groups = 1 });

	ck_assert_msg(strncmp(out, "connect: OK\n{\"ok\":true,", 23) == 0, "supplementary: %s",
		      out);
	free(out);
}

START_TEST(test_job_uid_refused_on_control)
{
	struct daemon d;
	char conf[256], *out;
	gid_t gid;

	if (!need_root_and_users(&gid))
		return;
	snprintf(conf, sizeof(conf),
		 "[supervisor]\ncontrol_group = users\n[pool a]\nuser = 61001\ngroup = users\n"
		 "workers = 1\nthreads = 1\n");
	start(&d, conf);
	open_path_for_others(&d);

	/* The jobs' uid, although its group is control_group: refused, and said why. */
	out = run_as(&d, &(struct as_user){ .uid = UID_A, .gid = gid, .until_eof = true });
	ck_assert_msg(strcmp(out, "connect: OK\n{\"ok\":false,\"error\":\"permission denied\"}\n"
				  "EOF\n") == 0,
		      "the jobs' uid: %s", out);
	free(out);
	dmn_expect_stderr(&d, "uid 61001", CALL_MS);
	dmn_expect_stderr(&d, "runs a pool's jobs: permission denied", CALL_MS);

	/* Another uid of the group is served, primary or supplementary. */
	out = run_as(&d, &(struct as_user){ .uid = UID_OTHER, .gid = gid });
	ck_assert_msg(strncmp(out, "connect: OK\n{\"ok\":true,", 23) == 0, "primary: %s", out);
	free(out);
	assert_supplementary_member_served(&d, gid);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

START_TEST(test_reload_changes_user)
{
	struct daemon d;
	pid_t a;
	size_t from;

	if (!need_root(tcase_name()))
		return;
	start(&d, "[pool a]\nuser = 61001\nworkers = 1\nthreads = 1\n");
	a = worker_of_uid(&d, UID_A);
	dmn_write_config(&d, "[pool a]\nuser = 61004\nworkers = 1\nthreads = 1\n");
	from = d.n_notices;
	dmn_signal(&d, SIGHUP);
	dmn_expect_notice(&d, dmn_expect_notice(&d, from, "RELOADING=1", CALL_MS) + 1, "READY=1",
			  CALL_MS);
	/* The old worker goes, and one new worker of uid 61004 takes its place. */
	for (int64_t deadline = tu_now_ms() + JOBS_MS;;) {
		pid_t w[8];
		int n = tu_find_workers(d.pid, w, 8);
		const char *u = n == 1 ? status_field(w[0], "Uid") : NULL;

		if (n == 1 && w[0] != a && u && strcmp(u, "61004 61004 61004 61004") == 0) {
			assert_dropped(w[0], UID_C, UID_C);
			break;
		}
		ck_assert_msg(tu_ms_left(deadline) > 0,
			      "not one worker of uid 61004 in place of %d; %s", (int)a,
			      dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/*
 * A change of ids clears a process's parent-death signal: a worker that dropped to its pool's
 * user must still die with its master. It is stopped (SIGSTOP) first, so that it cannot see
 * its socket close and leave by itself: only a parent-death SIGKILL ends it.
 */
START_TEST(test_dropped_worker_dies_with_master)
{
	struct daemon d;
	int st = 0, r;
	char state = 0;
	pid_t a, ppid;

	if (!need_root(tcase_name()))
		return;
	start(&d, "[pool a]\nuser = 61001\nworkers = 1\nthreads = 1\n");
	a = worker_of_uid(&d, UID_A);
	ck_assert_int_eq(kill(a, SIGSTOP), 0);
	for (int64_t deadline = tu_now_ms() + CALL_MS;;) {
		ck_assert_int_eq(tu_proc_stat(a, NULL, 0, &state, &ppid), 0);
		if (state == 'T')
			break;
		ck_assert_msg(tu_ms_left(deadline) > 0, "worker %d never stopped (state %c)",
			      (int)a, state);
		dmn_pump(&d, 10);
	}
	dmn_signal(&d, SIGKILL);
	ck_assert_msg(dmn_wait_exit(&d, CALL_MS), "%s", dmn_describe(&d));
	/* Re-parented to us (a subreaper): it must be gone, by SIGKILL. */
	r = tu_wait_exit(a, CALL_MS, &st);
	if (r == -ETIMEDOUT)
		tu_kill_wait(a);
	ck_assert_msg(r == 0, "worker %d (uid 61001) outlived its master: %s", (int)a,
		      strerror(-r));
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "worker %d %s", (int)a,
		      tu_describe_status(st));
	dmn_assert_nothing_left(d.dir, CALL_MS, "the master's SIGKILL"); /* the fork server */
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

START_TEST(test_unknown_user_is_a_config_error)
{
	struct daemon d;

	dmn_init(&d);
	dmn_write_config(&d, "[pool a]\nworkers = 1\nuser = no-such-user-here\n");
	dmn_start(&d, NULL);
	dmn_expect_exit(&d, 78, DMN_EXIT_MS);
	ck_assert_msg(d.err && strstr(d.err, "test.conf:3: [pool a] user = no-such-user-here: no "
					     "such user on this host"),
		      "%s", dmn_describe(&d));
	ck_assert_int_eq(dmn_count_our_workers(), 0);
	dmn_free(&d);
}
END_TEST

/*
 * The wrapper that starts bulkheadd as the unit would: a private mount namespace with /proc
 * mounted hidepid=invisible, then setpriv to uid UID_MASTER, gid `gid`, no groups, and the
 * unit's four capabilities as ambient ones (its bounding set too). Fills argv and script;
 * returns false (with a message) where this machine cannot do it.
 */
static bool unit_like_wrapper(gid_t gid, const char *argv[10], char *script, size_t size)
{
	static const char caps[] = "+setuid,+setgid,+kill,+setpcap";
	static char unshare_path[256];
	char *unshare = cmd_find_in_path("unshare"), *setpriv = cmd_find_in_path("setpriv");
	const char *probe[16];
	struct cmd c = { 0 };
	bool ok;
	int n = 0;

	if (!unshare || !setpriv) {
		fprintf(stderr, "%s: skipped: needs unshare and setpriv (util-linux)\n",
			tcase_name());
		free(unshare);
		free(setpriv);
		return false;
	}
	snprintf(unshare_path, sizeof(unshare_path), "%s", unshare);
	free(unshare);
	free(setpriv);
	snprintf(script, size,
		 "mount -t proc -o hidepid=invisible proc /proc && exec setpriv --pdeathsig keep "
		 "--reuid=%u "
		 "--regid=%u --clear-groups --inh-caps=-all,%s --ambient-caps=-all,%s "
		 "--bounding-set=-all,%s -- \"$@\"",
		 UID_MASTER, (unsigned)gid, caps, caps, caps);
	argv[n++] = unshare_path;
	argv[n++] = "--mount";
	argv[n++] = "--propagation";
	argv[n++] = "private";
	argv[n++] = "--";
	argv[n++] = "/bin/sh";
	argv[n++] = "-c";
	argv[n++] = script;
	argv[n++] = "sh";
	argv[n] = NULL;
	/* The same with a command that tells what it got: its uid, and that /proc hides init. */
	memcpy(probe, argv, sizeof(const char *) * (size_t)n);
	probe[n] = "/bin/sh";
	probe[n + 1] = "-c";
	probe[n + 2] = "id -u && ! test -e /proc/1/status";
	probe[n + 3] = NULL;
	ok = cmd_run(probe, NULL, &c) == 0 && cmd_exited_0(&c) && atoi(c.out) == UID_MASTER;
	if (!ok)
		fprintf(stderr,
			"%s: skipped: cannot start a process here as the unit would (a private "
			"mount namespace, /proc with hidepid=invisible, ambient capabilities): "
			"%s %s%s\n",
			tcase_name(), tu_describe_status(c.status), c.out ? c.out : "",
			c.err ? c.err : "");
	cmd_free(&c);
	return ok;
}

START_TEST(test_master_off_root_as_the_unit_runs_it)
{
	static const char conf[] =
		"[supervisor]\ncontrol_group = users\n"
		"[pool a]\nuser = 61001\nworkers = 1\nthreads = 2\n"
		"[job kill]\npool = a\nrun = exec:/bin/kill -KILL {arg:pid}\nargs = pid=1\n"
		"expect = failed\n"
		"[job slow]\npool = a\nrun = exec:/bin/sleep 300\ntimeout = 500ms\n"
		"expect = timed_out\n";
	const char *wrap[10];
	char script[512], pid[16], want[64], *out;
	struct daemon d;
	struct conn c;
	struct stat st;
	const char *v;
	gid_t gid;
	pid_t a;
	int64_t id;

	if (!need_root_and_users(&gid))
		return;
	if (!unit_like_wrapper(gid, wrap, script, sizeof(script)))
		return;
	dmn_init(&d);
	dmn_write_config(&d, conf);
	/* What systemd would prepare: the directories the master's, the notify socket open. */
	ck_assert_int_eq(mkdir(d.run_dir, 0755), 0);
	ck_assert_int_eq(chown(d.run_dir, UID_MASTER, gid), 0);
	ck_assert_int_eq(chown(d.state_dir, UID_MASTER, gid), 0);
	ck_assert_int_eq(chmod(d.notify_path, 0666), 0);
	ck_assert_int_eq(chmod(d.conf_path, 0644), 0);
	open_path_for_others(&d);
	d.wrap = wrap;
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);

	/* The master: its own uid, the four capabilities and nothing else. */
	snprintf(want, sizeof(want), "%u %u %u %u", UID_MASTER, UID_MASTER, UID_MASTER, UID_MASTER);
	v = status_field(d.pid, "Uid");
	ck_assert_msg(v && strcmp(v, want) == 0, "master Uid %s", v);
	v = status_field(d.pid, "CapEff");
	ck_assert_msg(v && strcmp(v, "00000000000001e0") == 0, "master CapEff %s", v);
	/* Its worker: dropped all the same, the bounding set included (CAP_SETPCAP). */
	a = worker_of_uid(&d, UID_A);
	assert_dropped(a, UID_A, UID_A);
	/* The socket: the master's, with its group, 0660. */
	ck_assert_int_eq(stat(d.sock_path, &st), 0);
	ck_assert_msg(st.st_uid == UID_MASTER && st.st_gid == gid && (st.st_mode & 07777) == 0660,
		      "socket %u:%u %o", (unsigned)st.st_uid, (unsigned)st.st_gid,
		      st.st_mode & 07777);

	conn_open(&d, &c);
	/* kill -KILL 1: EPERM. The sleep's timeout: its command killed, the worker kept. */
	ck_assert_str_eq(ended_state(&d, &c, 1), "failed");
	ck_assert_str_eq(ended_state(&d, &c, 2), "timed_out");
	dmn_expect_stderr(&d, "killing its command", CALL_MS);
	snprintf(pid, sizeof(pid), "%d", (int)d.pid);
	id = submit_with(&d, &c, "kill", "pid", pid);
	ck_assert_str_eq(ended_state(&d, &c, id), "failed");
	ck_assert_int_eq(worker_of_uid(&d, UID_A), a);
	ck_assert_msg(!strstr(d.err ? d.err : "", "worker fault"), "a worker died; %s",
		      dmn_describe(&d));
	conn_close(&c);

	/* Clients: a member of control_group by a supplementary group is served; the jobs' uid
	 * is not. */
	assert_supplementary_member_served(&d, gid);
	out = run_as(&d, &(struct as_user){ .uid = UID_A, .gid = gid, .until_eof = true });
	ck_assert_msg(strstr(out, "permission denied"), "the jobs' uid: %s", out);
	free(out);

	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* Without user, bulkheadd's pools run as `bulkhead` if it exists, else as the daemon. */
START_TEST(test_default_user)
{
	const struct passwd *pw = getpwnam("bulkhead");
	unsigned uid = pw ? pw->pw_uid : (unsigned)geteuid();
	unsigned gid = pw ? pw->pw_gid : (unsigned)getegid();
	struct daemon d;

	if (!need_root(tcase_name()))
		return;
	start(&d, "[pool a]\nworkers = 1\nthreads = 1\n");
	if (pw)
		assert_dropped(worker_of_uid(&d, uid), uid, gid);
	else
		dmn_expect_stderr(&d, "no user 'bulkhead' on this host", CALL_MS);
	ck_assert_int_eq(worker_of_uid(&d, uid) > 0, 1);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

static Suite *privileges_suite(void)
{
	Suite *s = suite_create("privileges");
	TCase *tc = tcase_create("privileges");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_add_test(tc, test_workers_and_jobs_run_as_pool_user);
	tcase_add_test(tc, test_job_uid_refused_on_control);
	tcase_add_test(tc, test_reload_changes_user);
	tcase_add_test(tc, test_dropped_worker_dies_with_master);
	tcase_add_test(tc, test_unknown_user_is_a_config_error);
	tcase_add_test(tc, test_default_user);
	tcase_add_test(tc, test_master_off_root_as_the_unit_runs_it);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dmn_run(privileges_suite(), "privileges");
}
