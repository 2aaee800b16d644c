/* SPDX-License-Identifier: MIT */
/*
 * The worker's spawner (children/spawner.c), through bulkheadd, with real faults:
 *
 *   - the spawner SIGKILLed while commands run: every job still runs (through the job
 *     threads' runners; once those are SIGKILLed too, with trampolines the job threads
 *     posix_spawn), none is lost, the worker stays;
 *   - a job thread's runner (the trampoline the spawner forked for its first command) runs
 *     its next commands, each with its own directory and nice; SIGKILLed between two, it is
 *     reaped and the next command gets a new one; a trampoline SIGKILLed before its first
 *     report is reaped too, and its job runs again;
 *   - the worker SIGKILLed while commands run: its spawner, its trampolines and their
 *     commands (and what those started) are all gone;
 *   - a command forked through the spawner holds no fd but 0, 1 and 2, and has the
 *     worker's RLIMIT_AS and RLIMIT_CORE;
 *   - a pool without exec: groups has no spawner; a reload that adds or removes its exec:
 *     group replaces its worker by one with or without.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctlutil.h"
#include "daemonutil.h"
#include "testutil.h"

#define JOBS_MS 60000 /* generous for ASan */
#define GONE_MS 10000

/* The worker's spawner: its one child named bulkhead-spawn. */
static pid_t find_spawner(pid_t worker)
{
	pid_t p = tu_find_spawner(worker, GONE_MS);

	ck_assert_msg(p > 0, "worker %d has no spawner, or several", (int)worker);
	return p;
}

static pid_t the_worker(struct daemon *d)
{
	pid_t w[4];
	int n = tu_find_workers(d->pid, w, 4);

	ck_assert_msg(n == 1, "%d workers; %s", n, dmn_describe(d));
	return w[0];
}

/* bulkheadd started on conf and ready, c connected to it. */
static void start_on(struct daemon *d, struct conn *c, const char *conf)
{
	dmn_write_config(d, conf);
	dmn_start(d, NULL);
	dmn_wait_ready(d);
	conn_open(d, c);
}

/* Closes c and stops the daemon: no worker of it may be left, and no zombie. */
static void finish(struct daemon *d, struct conn *c)
{
	conn_close(c);
	dmn_stop(d);
	dmn_assert_aftermath();
	dmn_free(d);
}

/* Waits for group: every job of it must have ended as expected; total of them if >= 0. */
static void wait_group(struct daemon *d, struct conn *c, const char *group, int total)
{
	char req[256];
	json_object *o;

	snprintf(req, sizeof(req), "{\"command\":\"wait\",\"group\":\"%s\"}", group);
	o = call_within(d, c, req, JOBS_MS);
	ck_assert_msg(jbool(o, "all_expected"), "%s: not all done: %s", group, jtext(o));
	if (total >= 0)
		ck_assert_int_eq(jint(o, "total"), total);
	json_object_put(o);
}

/* Submits count more jobs of group, waits for the group: every one must be done. */
static void submit_and_wait(struct daemon *d, struct conn *c, const char *group, int count,
			    int total)
{
	char req[256];
	json_object *o;

	snprintf(req, sizeof(req), "{\"command\":\"submit\",\"group\":\"%s\",\"count\":%d}",
		 group, count);
	o = call(d, c, req);
	assert_ok(o);
	json_object_put(o);
	wait_group(d, c, group, total);
}

/* pid is gone (or a zombie, reaped here: orphans come to us, the subreaper). */
static void wait_gone(struct daemon *d, pid_t pid, const char *what)
{
	for (int64_t deadline = tu_now_ms() + GONE_MS;;) {
		char state = 0;

		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (tu_proc_stat(pid, NULL, 0, &state, NULL) < 0)
			return;
		ck_assert_msg(tu_ms_left(deadline) > 0, "%s (pid %d) still there (%c); %s", what,
			      (int)pid, state, dmn_describe(d));
		dmn_pump(d, 20);
	}
}

/* Files in dir named PREFIX*SUFFIX; each must hold exactly `text`. */
static int count_output_files(const char *dir, const char *prefix, const char *suffix,
			      const char *text)
{
	DIR *dh = opendir(dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(dh);
	while ((e = readdir(dh))) {
		size_t len = strlen(e->d_name);
		char path[600], *got;

		if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || len < strlen(suffix) ||
		    strcmp(e->d_name + len - strlen(suffix), suffix) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		got = tu_read_file(path);
		ck_assert_msg(got && strcmp(got, text) == 0, "%s: %s", path, got ? got : "unread");
		free(got);
		n++;
	}
	closedir(dh);
	return n;
}

/* SIGKILLs the worker's idle runners (bulkhead-exec children); returns how many. */
static int kill_runners(pid_t worker, pid_t *runners, int max)
{
	int n = tu_find_children(worker, "bulkhead-exec", runners, max);

	for (int i = 0; i < n; i++)
		ck_assert_int_eq(kill(runners[i], SIGKILL), 0);
	return n;
}

START_TEST(test_spawner_killed_commands_still_run)
{
	struct daemon d;
	struct conn c;
	pid_t worker, spawner, runners[4];
	char conf[1024];
	json_object *o;
	int n;

	dmn_init(&d);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 2\n"
		 "[job true]\nrun = exec:/bin/true\ncount = 4\n"
		 "[job files]\nrun = exec:/bin/sh -c 'echo out; echo err >&2'\noutput = %s\n"
		 "count = 1\n",
		 d.dir);
	start_on(&d, &c, conf);
	wait_group(&d, &c, "true", -1);
	wait_group(&d, &c, "files", -1);
	worker = the_worker(&d);
	spawner = find_spawner(worker);

	/* Killed while jobs are queued and running (where exactly is the scheduler's say)... */
	o = call(&d, &c, "{\"command\":\"submit\",\"group\":\"true\",\"count\":200}");
	assert_ok(o);
	json_object_put(o);
	ck_assert_int_eq(kill(spawner, SIGKILL), 0);
	wait_group(&d, &c, "true", 204);
	/* ...and jobs surely after it, once the runners (idle now) are gone too. */
	n = kill_runners(worker, runners, 4);
	ck_assert_msg(n >= 1, "no runner under worker %d", (int)worker);
	submit_and_wait(&d, &c, "true", 20, 224);
	dmn_expect_stderr(&d, "is gone: commands are started with exec from now on", CALL_MS);
	/* Output files opened for a spawned trampoline as for a forked one: 2 jobs, 4 files. */
	submit_and_wait(&d, &c, "files", 1, 2);
	ck_assert_int_eq(count_output_files(d.dir, "files.", ".out", "out\n"), 2);
	ck_assert_int_eq(count_output_files(d.dir, "files.", ".err", "err\n"), 2);
	/* The same worker, which reaped its spawner. */
	ck_assert_int_eq(the_worker(&d), worker);
	ck_assert_int_lt(tu_find_children(worker, "bulkhead-spawn", &spawner, 1), 1);

	finish(&d, &c);
}
END_TEST

/* What each output file PREFIX*.out in dir says: the command's parent, directory, nice. */
struct ran {
	pid_t parent;
	char dir[512];
	int nice;
};

static int read_ran(const char *dir, const char *prefix, struct ran *r, int max)
{
	DIR *dh = opendir(dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(dh);
	while ((e = readdir(dh)) && n < max) {
		size_t len = strlen(e->d_name);
		char path[600], *got;
		int parent;

		if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || len < 4 ||
		    strcmp(e->d_name + len - 4, ".out") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		got = tu_read_file(path);
		ck_assert_msg(got && sscanf(got, "%d %511s %d", &parent, r[n].dir, &r[n].nice) == 3,
			      "%s: %s", path, got ? got : "unread");
		r[n++].parent = (pid_t)parent;
		free(got);
	}
	closedir(dh);
	return n;
}

/*
 * One job thread: its first command's trampoline stays, its runner, and runs the next
 * ones, each with its group's directory and nice and none of the last one's; a signal it
 * would forward, come between two commands, goes to neither. SIGKILLed between two
 * commands, it is reaped, and the spawner forks the next command a new one.
 */
START_TEST(test_runner_runs_the_next_commands)
{
	static const char cmd[] = "exec:/bin/sh -c 'echo $PPID; pwd; cut -d\" \" -f19 /proc/$$/stat'";
	struct daemon d;
	struct conn c;
	struct ran a[4], b[4];
	char conf[2048], sub[600];
	pid_t worker, runner, now;
	int na, nb;

	dmn_init(&d);
	snprintf(sub, sizeof(sub), "%s/sub", d.dir);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 1\n"
		 "[job a]\nrun = %s\noutput = %s\nworking_directory = %s\nnice = 5\ncount = 2\n"
		 "[job b]\nrun = %s\noutput = %s\nmax_attempts = 1\ncount = 1\n",
		 cmd, d.dir, sub, cmd, d.dir);
	start_on(&d, &c, conf);
	wait_group(&d, &c, "a", -1);
	wait_group(&d, &c, "b", -1);
	submit_and_wait(&d, &c, "b", 1, 2); /* surely after a's */
	worker = the_worker(&d);
	ck_assert_int_eq(tu_find_children(worker, "bulkhead-exec", &runner, 1), 1);
	na = read_ran(d.dir, "a.", a, 4);
	nb = read_ran(d.dir, "b.", b, 4);
	ck_assert_int_eq(na, 2);
	ck_assert_int_eq(nb, 2);
	for (int i = 0; i < na; i++) {
		ck_assert_int_eq(a[i].parent, runner);
		ck_assert_str_eq(a[i].dir, sub);
		ck_assert_int_eq(a[i].nice, 5);
	}
	for (int i = 0; i < nb; i++) {
		ck_assert_int_eq(b[i].parent, runner);
		ck_assert_str_ne(b[i].dir, sub);
		ck_assert_int_eq(b[i].nice, 0);
	}

	/*
	 * A signal it forwards, come while it is idle (as a CANCEL's can, just after ENDED):
	 * dropped, not passed to the next command, which runs to its end.
	 */
	ck_assert_int_eq(kill(runner, SIGTERM), 0);
	ck_assert_int_eq(kill(runner, SIGUSR1), 0);
	submit_and_wait(&d, &c, "b", 1, 3);
	ck_assert_int_eq(tu_find_children(worker, "bulkhead-exec", &now, 1), 1);
	ck_assert_int_eq(now, runner);

	/* Killed while idle: the next command finds it gone, reaps it, gets a new one. */
	ck_assert_int_eq(kill(runner, SIGKILL), 0);
	submit_and_wait(&d, &c, "b", 1, 4);
	wait_gone(&d, runner, "the killed runner");
	ck_assert_int_eq(tu_find_children(worker, "bulkhead-exec", &now, 1), 1);
	ck_assert_int_ne(now, runner);
	nb = read_ran(d.dir, "b.", b, 4);
	ck_assert_int_eq(nb, 4);
	for (int i = 0; i < nb; i++)
		ck_assert_msg(b[i].parent == runner || b[i].parent == now,
			      "a command's parent %d: neither runner %d nor %d", (int)b[i].parent,
			      (int)runner, (int)now);
	ck_assert_int_eq(the_worker(&d), worker);
	ck_assert_int_eq(find_spawner(worker) > 0, 1);
	finish(&d, &c);
}
END_TEST

/*
 * A runner killed while its thread waits for work is reaped then (the worker watches its
 * pidfd), not left a zombie of the worker until the thread's next command; the other
 * thread's runner stays, and the next commands get a new one.
 */
START_TEST(test_idle_runner_killed_is_reaped)
{
	struct daemon d;
	struct conn c;
	pid_t worker, runners[4], now[4];
	int n, m;

	dmn_init(&d);
	start_on(&d, &c,
		 "[pool main]\nworkers = 1\nthreads = 2\n"
		 "[job t]\nrun = exec:/bin/true\ncount = 8\n");
	wait_group(&d, &c, "t", 8);
	worker = the_worker(&d);
	n = tu_find_children(worker, "bulkhead-exec", runners, 4);
	ck_assert_msg(n >= 1 && n <= 2, "%d runners; %s", n, dmn_describe(&d));
	ck_assert_int_eq(kill(runners[0], SIGKILL), 0);
	wait_gone(&d, runners[0], "a runner killed while idle");
	m = tu_find_children(worker, "bulkhead-exec", now, 4);
	ck_assert_int_eq(m, n - 1);
	if (n == 2)
		ck_assert_int_eq(now[0], runners[1]);

	submit_and_wait(&d, &c, "t", 8, 16);
	m = tu_find_children(worker, "bulkhead-exec", now, 4);
	ck_assert_msg(m >= 1 && m <= 2, "%d runners after; %s", m, dmn_describe(&d));
	for (int i = 0; i < m; i++)
		ck_assert_int_ne(now[i], runners[0]);
	ck_assert_int_eq(the_worker(&d), worker);
	finish(&d, &c);
}
END_TEST

/*
 * A thread that never waits for work (jobs queued behind its own) looks at its runner before
 * its next job: a runner killed while the thread runs other jobs is reaped then, not when
 * the queue drains. The plugin's jobs block on files (w on go1, v on go2, u on go3), so the
 * queue stays full meanwhile. The worker's main thread hears of the death before it sends
 * w's result (it handles the watch before it flushes results), so once w is done the
 * thread's look after v cannot miss it; the look after w may come first.
 */
START_TEST(test_busy_thread_reaps_its_dead_runner)
{
	static const char *const jobs[] = { "w", "v", "u" };
	const char *dir = getenv("BULKHEAD_TEST_PLUGINS");
	struct daemon d;
	struct conn c;
	char conf[4096], path[600];
	size_t len;
	pid_t worker, runner;

	ck_assert_msg(dir && *dir, "BULKHEAD_TEST_PLUGINS is not set");
	dmn_init(&d);
	len = (size_t)snprintf(conf, sizeof(conf),
			       "[pool main]\nworkers = 1\nthreads = 1\n"
			       "[job c]\nrun = exec:/bin/true\n");
	for (int i = 0; i < 3; i++)
		len += (size_t)snprintf(conf + len, sizeof(conf) - len,
					"[job %s]\nrun = plugin:%s/crashy.so:until_file_job\n"
					"args = file=%s/none wait=%s/go%d\n",
					jobs[i], dir, d.dir, d.dir, i + 1);
	start_on(&d, &c, conf);
	wait_group(&d, &c, "c", 1);
	worker = the_worker(&d);
	ck_assert_int_eq(tu_find_children(worker, "bulkhead-exec", &runner, 1), 1);
	ck_assert_int_eq(kill(runner, SIGKILL), 0);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/go%d", d.dir, i + 1);
		ck_assert_int_eq(tu_write_file(path, "go"), 0);
		wait_group(&d, &c, jobs[i], 1);
	}
	/* u now holds the thread until go3: the runner must be gone before that */
	wait_gone(&d, runner, "a runner killed while its thread ran other jobs");
	snprintf(path, sizeof(path), "%s/go3", d.dir);
	ck_assert_int_eq(tu_write_file(path, "go"), 0);
	wait_group(&d, &c, "u", 1);
	ck_assert_int_eq(the_worker(&d), worker);
	finish(&d, &c);
}
END_TEST

/* waitpid(pid, __WALL) within GONE_MS, pumping the daemon meanwhile: the status. */
static int wait_traced(struct daemon *d, pid_t pid)
{
	int st = 0;

	for (int64_t deadline = tu_now_ms() + GONE_MS;;) {
		pid_t got = waitpid(pid, &st, __WALL | WNOHANG);

		ck_assert_int_ge(got, 0);
		if (got == pid)
			return st;
		ck_assert_msg(tu_ms_left(deadline) > 0, "no event from traced %d; %s", (int)pid,
			      dmn_describe(d));
		dmn_pump(d, 5);
	}
}

/*
 * A trampoline killed before its first report (held at birth with ptrace, then SIGKILLed):
 * the attempt fails, the job runs again and ends done, and the dead trampoline, whose pid
 * its job thread never read from it, is reaped all the same (the spawner also sent it on the
 * runner socket), not left a zombie until the worker exits.
 */
START_TEST(test_trampoline_killed_before_its_first_report)
{
	struct daemon d;
	struct conn c;
	pid_t worker, spawner, runner, tramp = 0;
	unsigned long msg = 0;
	int st;

	dmn_init(&d);
	start_on(&d, &c, "[pool main]\nworkers = 1\nthreads = 1\n"
			 "[job t]\nrun = exec:/bin/true\nmax_attempts = 3\ncount = 1\n");
	wait_group(&d, &c, "t", -1);
	worker = the_worker(&d);
	spawner = find_spawner(worker);
	ck_assert_int_eq(tu_find_children(worker, "bulkhead-exec", &runner, 1), 1);
	if (ptrace(PTRACE_SEIZE, spawner, NULL,
		   (void *)(long)(PTRACE_O_TRACEFORK | PTRACE_O_TRACECLONE)) < 0) {
		ck_assert_int_eq(errno, EPERM);
		fprintf(stderr, "SKIP trampoline killed early: ptrace not permitted here\n");
		conn_close(&c);
		dmn_stop(&d);
		dmn_free(&d);
		return;
	}
	/* The runner gone, the next command needs a new trampoline from the spawner. */
	ck_assert_int_eq(kill(runner, SIGKILL), 0);
	json_object_put(call(&d, &c, "{\"command\":\"submit\",\"group\":\"t\",\"count\":1}"));
	st = wait_traced(&d, spawner);
	ck_assert_msg(st >> 8 == (SIGTRAP | (PTRACE_EVENT_FORK << 8)) ||
			      st >> 8 == (SIGTRAP | (PTRACE_EVENT_CLONE << 8)),
		      "the spawner stopped with %#x, not at a fork", st);
	ck_assert_int_eq(ptrace(PTRACE_GETEVENTMSG, spawner, NULL, &msg), 0);
	tramp = (pid_t)msg;
	/* Born stopped (seized with its parent): killed before it runs a line. */
	st = wait_traced(&d, tramp);
	ck_assert_int_eq(kill(tramp, SIGKILL), 0);
	for (;;) { /* its death, then the tracer lets it go to its parent, the worker */
		st = wait_traced(&d, tramp);
		if (WIFSIGNALED(st) || WIFEXITED(st))
			break;
	}
	ck_assert_int_eq(ptrace(PTRACE_DETACH, spawner, NULL, NULL), 0);

	wait_group(&d, &c, "t", 2);
	wait_gone(&d, tramp, "the trampoline killed before its first report");
	ck_assert_int_eq(the_worker(&d), worker);
	finish(&d, &c);
}
END_TEST

START_TEST(test_worker_sigkill_leaves_nothing)
{
	struct daemon d;
	char conf[2048], path[512];
	pid_t worker, spawner, tramps[4];
	int64_t deadline;
	int n;

	dmn_init(&d);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 2\n"
		 "[job forever]\nrun = exec:/usr/bin/env BHTEST_MARK=%s /bin/sh -c "
		 "'test -e %s/up.{id} && exit 0; sleep 3333 & setsid sleep 3333 & "
		 "touch %s/up.{id}; wait'\ntimeout = infinity\ncount = 2\n",
		 d.dir, d.dir, d.dir);
	dmn_write_config(&d, conf);
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	deadline = tu_now_ms() + JOBS_MS;
	for (int id = 1; id <= 2; id++) {
		snprintf(path, sizeof(path), "%s/up.%d", d.dir, id);
		while (access(path, F_OK) < 0) {
			ck_assert_msg(tu_ms_left(deadline) > 0, "the commands did not start; %s",
				      dmn_describe(&d));
			dmn_pump(&d, 20); /* waiting for a file to appear */
		}
	}
	worker = the_worker(&d);
	spawner = find_spawner(worker);
	/* Both trampolines are the worker's children (forked by the spawner). */
	n = tu_find_children(worker, "bulkhead-exec", tramps, 4);
	ck_assert_msg(n == 2, "%d trampolines under worker %d", n, (int)worker);

	ck_assert_int_eq(kill(worker, SIGKILL), 0);
	/* What was the worker's comes to us (subreaper): each must end. */
	wait_gone(&d, spawner, "the dead worker's spawner");
	for (int i = 0; i < n; i++)
		wait_gone(&d, tramps[i], "a trampoline of the dead worker");
	/* And the commands, and what they started (a run again ends at once: up.ID is there). */
	deadline = tu_now_ms() + GONE_MS;
	for (;;) {
		pid_t left;
		int k = tu_find_marked(d.dir, &left, 1);

		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (k == 0)
			break;
		ck_assert_msg(tu_ms_left(deadline) > 0, "process %d of the dead worker's jobs left",
			      (int)left);
		dmn_pump(&d, 20);
	}
	dmn_stop(&d);
	/* The new worker may be killed as it starts, its spawner an orphan: reaped here. */
	dmn_assert_nothing_left(d.dir, GONE_MS, "the stop");
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

START_TEST(test_command_holds_no_other_fd)
{
	struct daemon d;
	struct conn c;
	char conf[1024], path[600], *text;

	dmn_init(&d);
	/* $$ is the shell, which forks ls (a command follows): the shell's fds as it got them. */
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 2\n"
		 "[job fds]\nrun = exec:/bin/sh -c 'ls /proc/$$/fd; exit 0'\noutput = %s\n"
		 "count = 1\n",
		 d.dir);
	start_on(&d, &c, conf);
	wait_group(&d, &c, "fds", -1);
	(void)find_spawner(the_worker(&d)); /* it went through the spawner */
	snprintf(path, sizeof(path), "%s/fds.1.out", d.dir);
	text = tu_read_file(path);
	ck_assert_msg(text, "no %s", path);
	ck_assert_str_eq(text, "0\n1\n2\n");
	free(text);
	finish(&d, &c);
}
END_TEST

/* The soft limit named `what` in /proc/PID/limits, as text ("unlimited" or a number). */
static void proc_limit(pid_t pid, const char *what, char *buf, size_t size)
{
	char path[64], *text, *line;

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	text = tu_read_file(path);
	ck_assert_ptr_nonnull(text);
	line = strstr(text, what);
	ck_assert_msg(line, "no %s in %s", what, path);
	ck_assert_int_eq(sscanf(line + strlen(what), " %63s", buf), 1);
	ck_assert_uint_lt(strlen(buf), size);
	free(text);
}

/* Commands get the worker's RLIMIT_AS (memory_max without a cgroup) and RLIMIT_CORE. */
START_TEST(test_command_has_the_worker_limits)
{
	struct daemon d;
	struct conn c;
	char conf[1024], path[600], as[64], core[64], want[160], *text;
	pid_t worker;

	dmn_init(&d);
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 2\nmemory_max = 256M\n"
		 "[job limits]\nrun = exec:/bin/sh -c 'ulimit -v; ulimit -c'\noutput = %s\n"
		 "count = 1\n",
		 d.dir);
	start_on(&d, &c, conf);
	wait_group(&d, &c, "limits", -1);
	worker = the_worker(&d);
	(void)find_spawner(worker);
	proc_limit(worker, "Max address space", as, sizeof(as));
	proc_limit(worker, "Max core file size", core, sizeof(core));
	ck_assert_msg(strcmp(as, "unlimited") != 0, "the worker has no RLIMIT_AS");
	snprintf(want, sizeof(want), "%llu\n%s\n", strtoull(as, NULL, 10) / 1024, core);
	snprintf(path, sizeof(path), "%s/limits.1.out", d.dir);
	text = tu_read_file(path);
	ck_assert_msg(text, "no %s", path);
	ck_assert_str_eq(text, want);
	free(text);
	finish(&d, &c);
}
END_TEST

START_TEST(test_no_spawner_without_exec_groups)
{
	struct daemon d;
	pid_t none;

	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 1\nthreads = 1\n"
			     "[job sleep]\nrun = builtin:sleep\nargs = ms=1\ncount = 1\n");
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	ck_assert_int_eq(tu_find_children(the_worker(&d), "bulkhead-spawn", &none, 1), 0);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/*
 * A reload that gives a pool its first exec: group replaces its (idle) worker by one with a
 * spawner, and its commands run; one that takes the group away again, by one without.
 */
START_TEST(test_reload_adds_and_removes_the_spawner)
{
	static const char plain[] = "[pool main]\nworkers = 1\nthreads = 1\n"
				    "[job sleep]\nrun = builtin:sleep\nargs = ms=1\ncount = 1\n";
	struct daemon d;
	struct conn c;
	pid_t w0, w1 = 0, none;
	size_t from;

	dmn_init(&d);
	dmn_write_config(&d, plain);
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	w0 = the_worker(&d);
	ck_assert_int_eq(tu_find_children(w0, "bulkhead-spawn", &none, 1), 0);

	dmn_write_config(&d, "[pool main]\nworkers = 1\nthreads = 1\n"
			     "[job sleep]\nrun = builtin:sleep\nargs = ms=1\ncount = 1\n"
			     "[job true]\nrun = exec:/bin/true\ncount = 3\n");
	from = d.n_notices;
	dmn_signal(&d, SIGHUP);
	dmn_expect_notice(&d, dmn_expect_notice(&d, from, "RELOADING=1", CALL_MS) + 1, "READY=1",
			  CALL_MS);
	for (int64_t deadline = tu_now_ms() + JOBS_MS;;) {
		pid_t w[4];

		if (tu_find_workers(d.pid, w, 4) == 1 && w[0] != w0 &&
		    tu_find_children(w[0], "bulkhead-spawn", &none, 1) == 1) {
			w1 = w[0];
			break;
		}
		ck_assert_msg(tu_ms_left(deadline) > 0, "no worker with a spawner; %s",
			      dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	conn_open(&d, &c);
	wait_group(&d, &c, "true", -1);
	conn_close(&c);

	dmn_write_config(&d, plain);
	from = d.n_notices;
	dmn_signal(&d, SIGHUP);
	dmn_expect_notice(&d, dmn_expect_notice(&d, from, "RELOADING=1", CALL_MS) + 1, "READY=1",
			  CALL_MS);
	for (int64_t deadline = tu_now_ms() + JOBS_MS;;) {
		pid_t w[4];

		if (tu_find_workers(d.pid, w, 4) == 1 && w[0] != w1 &&
		    tu_find_children(w[0], "bulkhead-spawn", &none, 1) == 0)
			break;
		ck_assert_msg(tu_ms_left(deadline) > 0, "the worker with a spawner stays; %s",
			      dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("spawner");
	TCase *tc = tcase_create("spawner");

	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_spawner_killed_commands_still_run);
	tcase_add_test(tc, test_runner_runs_the_next_commands);
	tcase_add_test(tc, test_idle_runner_killed_is_reaped);
	tcase_add_test(tc, test_busy_thread_reaps_its_dead_runner);
	tcase_add_test(tc, test_trampoline_killed_before_its_first_report);
	tcase_add_test(tc, test_worker_sigkill_leaves_nothing);
	tcase_add_test(tc, test_command_holds_no_other_fd);
	tcase_add_test(tc, test_command_has_the_worker_limits);
	tcase_add_test(tc, test_no_spawner_without_exec_groups);
	tcase_add_test(tc, test_reload_adds_and_removes_the_spawner);
	suite_add_tcase(s, tc);
	return dmn_run(s, "spawner");
}
