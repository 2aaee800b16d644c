/* SPDX-License-Identifier: MIT */
/*
 * Starting an exec: job's trampoline, from its job thread (exec.c has the rest of the kind).
 * Two ways, with the same guarantees (exec-trampoline.c's header):
 *
 *   - through the worker's spawner (spawner.c): the request goes with the fds (stdout and
 *     stderr: the output pipe's write end or the output files, opened here; the report
 *     pipe's write end), the spawner forks the trampoline as the worker's child, which says
 *     FORKED with its pid with its first report; no exec of bulkhead-worker, about 0.5 ms
 *     less per command; that trampoline stays as this thread's runner, and the thread's
 *     next commands go to it directly (no fork of a trampoline, about 0.1 ms less again);
 *   - with posix_spawn of `/proc/self/exe --exec-command WORKER_PID -- COMMAND ARGS...`
 *     when the worker has no spawner (it could not start one, or it was killed: an EOF on the
 *     report pipe with no report; then it is said once, and this job starts that way).
 *
 * Either way the trampoline starts in a process group of its own, with /dev/null, the
 * output and the report pipe on 0-3 and no other fd, every signal at its default and those
 * it handles (and SIGPIPE) blocked, the command's environment; its next report is STARTED
 * with the command's pid, or why nothing was started.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/exec-settings.h"
#include "exec-start.h"
#include "exec-trampoline.h"
#include "job-spec.h"
#include "spawner.h"

/*
 * This job thread's runner: the trampoline the spawner forked for its first command, which
 * stays to run the next ones (spawner_send_runner()), the worker's child like any
 * trampoline. 0 and -1: none.
 */
static __thread pid_t runner_pid;
static __thread int runner_sock = -1;
static __thread int runner_pidfd = -1; /* in runner_watch; -1: not watched */

/*
 * The runners' deaths, watched: each runner's pidfd is in this epoll set (EPOLLONESHOT),
 * which the worker's main thread polls. A runner killed from outside while its thread waits
 * for work would otherwise stay a zombie until the thread's next command; when one fires,
 * the main thread has the idle job threads look at theirs (pool_check_runners()), and the
 * one whose runner is dead reaps it. -1: the worker has no spawner, so no runners.
 */
static int runner_watch = -1;

int exec_runner_watch_start(void)
{
	runner_watch = epoll_create1(EPOLL_CLOEXEC);
	return runner_watch < 0 ? -errno : 0;
}

int exec_runner_watch_fd(void)
{
	return runner_watch;
}

void exec_runner_watch_clear(void)
{
	struct epoll_event ev[16];

	/* Fired ones are off (one-shot) until their thread drops them: nothing fires twice. */
	while (epoll_wait(runner_watch, ev, 16, 0) == 16)
		;
}

/* Watches the runner this thread was just given (its pid is ours until we reap it). */
static void runner_watch_add(void)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT };

	if (runner_watch < 0)
		return;
	runner_pidfd = pidfd_open(runner_pid, 0);
	if (runner_pidfd >= 0 && epoll_ctl(runner_watch, EPOLL_CTL_ADD, runner_pidfd, &ev) < 0) {
		close(runner_pidfd);
		runner_pidfd = -1;
	}
}

int exec_runner_drop(void)
{
	pid_t pid = runner_pid;
	int status = 0;

	close(runner_sock); /* its EOF: a live one exits; first, so the wait cannot hang */
	runner_sock = -1;
	runner_pid = 0;
	if (runner_pidfd >= 0)
		close(runner_pidfd); /* out of the watch with it */
	runner_pidfd = -1;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno == EINTR)
			continue;
		return W_EXITCODE(1, 0); /* reaped by someone else (a plugin's waitpid(-1)) */
	}
	return status;
}

void exec_runner_check(void)
{
	siginfo_t si = { 0 };

	if (runner_pid <= 0 || runner_pidfd < 0)
		return;
	if (waitid(P_PIDFD, (id_t)runner_pidfd, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	    si.si_pid != 0)
		(void)exec_runner_drop();
}

void exec_thread_fini(void)
{
	if (runner_pid > 0)
		(void)exec_runner_drop();
}

/* DIR/<name>.<job>.out or .err (malloc'd), or NULL. */
static char *output_path(struct bulkhead_job *job, int fd)
{
	const char *name = job->spec->name[0] ? job->spec->name : "job";
	char *path;

	if (asprintf(&path, "%s/%s.%s.%s", job->spec->output, name, bulkhead_job_id(job),
		     fd == 1 ? "out" : "err") < 0)
		return NULL;
	return path;
}

/* The output files opened here (out[0] stdout, out[1] stderr; what was opened is left in out). */
static int open_output_files(struct bulkhead_job *job, int out[2])
{
	for (int fd = 1; fd <= 2; fd++) {
		char *path = output_path(job, fd);

		if (!path)
			return -ENOMEM;
		out[fd - 1] = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		free(path);
		if (out[fd - 1] < 0)
			return -errno;
	}
	return 0;
}

/*
 * A setting of the group the trampoline could not take: logged with its reason, as the
 * attempt's failure (SPAWN_FAILED). Returns -err; job->setting_failed keeps kind_run() from
 * logging it again as "cannot start".
 */
static int setting_failed(struct bulkhead_job *job, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int setting_failed(struct bulkhead_job *job, int err, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	bulkhead_job_log(job, BULKHEAD_LOG_ERR, "%s: %s; the command was not started", what,
			 strerror(err));
	job->setting_failed = true;
	return -err;
}

static ssize_t read_report(int fd, struct exec_report *rep)
{
	ssize_t k;

	while ((k = read(fd, rep, sizeof(*rep))) < 0 && errno == EINTR)
		;
	return k;
}

/*
 * The trampoline pid was started (or forked, or sent a request if it is our runner) with
 * report pipe e and output pipe p (-1 with output = DIR): waits for its STARTED. Returns 0
 * with *ret filled, or -errno with e, p closed and the trampoline reaped, but a runner that
 * said why it started nothing: it waits for the next command.
 */
static int await_started(struct bulkhead_job *job, pid_t pid, bool runner, int e, int p,
			 struct exec_run_fds *ret)
{
	const struct job_spec *spec = job->spec;
	struct exec_report rep = { 0 };
	ssize_t k = read_report(e, &rep);
	int status = 0, r = 0;

	if (k == (ssize_t)sizeof(rep) && rep.kind == EXEC_REPORT_STARTED) {
		if (p >= 0)
			(void)fcntl(p, F_SETFL, O_NONBLOCK);
		*ret = (struct exec_run_fds){ .trampoline = pid, .command = rep.value,
					      .report = e, .output = p, .runner = runner };
		return 0;
	}
	if (!runner) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	} else if (k != (ssize_t)sizeof(rep)) {
		status = exec_runner_drop(); /* it died */
	}
	if (k == (ssize_t)sizeof(rep) && rep.kind == EXEC_REPORT_FAILED && rep.value > 0)
		r = -rep.value;
	else if (k == (ssize_t)sizeof(rep) && rep.kind == EXEC_REPORT_CHDIR_FAILED && rep.value > 0)
		r = setting_failed(job, rep.value, "cannot change to the working directory %s",
				   spec->working_directory);
	else if (k == (ssize_t)sizeof(rep) && rep.kind == EXEC_REPORT_NICE_FAILED && rep.value > 0)
		r = setting_failed(job, rep.value, "cannot set nice %d", spec->nice);
	else /* it died before it could say (the worker is going, or a kill from outside) */
		r = WIFSIGNALED(status) ? -EINTR : -ECHILD;
	if (p >= 0)
		close(p);
	close(e);
	return r;
}

static void close_pair(int fd[2])
{
	for (int i = 0; i < 2; i++)
		if (fd[i] >= 0)
			close(fd[i]);
}

/*
 * Through this thread's runner, or the spawner, which forks one. Returns what
 * await_started() returns, or -ENOTCONN (nothing started, nothing left open) when there is
 * neither.
 */
static int start_forked(struct bulkhead_job *job, char **argv, char **envp,
			struct exec_run_fds *ret)
{
	const struct job_spec *spec = job->spec;
	struct exec_report rep = { 0 };
	int p[2] = { -1, -1 }, e[2] = { -1, -1 }, out[2] = { -1, -1 }, sv[2] = { -1, -1 }, r;
	struct spawner_job j = {
		.argv = argv, .envp = envp,
		.chdir = spec->working_directory[0] ? spec->working_directory : NULL,
		.has_nice = spec->nice != BH_NICE_INHERIT, .nice = spec->nice,
	};
	bool via_runner = runner_pid > 0;
	int32_t dead = 0;
	ssize_t k = 0;

	if (!via_runner && spawner_pid() == 0)
		return -ENOTCONN; /* none: nothing to open for it */
	if (pipe2(e, O_CLOEXEC) < 0)
		return -errno;
	if (spec->output[0]) {
		r = open_output_files(job, out);
	} else {
		r = pipe2(p, O_CLOEXEC) < 0 ? -errno : 0;
		out[0] = p[1];
		p[1] = -1;
	}
	j.out = out[0];
	j.err = out[1] >= 0 ? out[1] : out[0];
	j.report = e[1];
	if (r == 0 && via_runner && (r = spawner_send_runner(runner_sock, &j)) == -EPIPE) {
		/* It is gone (killed from outside): reaped, and a new one from the spawner. */
		(void)exec_runner_drop();
		via_runner = false;
		r = spawner_pid() == 0 ? -ENOTCONN : 0;
	}
	if (r == 0 && !via_runner) {
		r = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ? -errno : 0;
		j.runner = sv[1];
		if (r == 0)
			r = spawner_send(&j);
		if (sv[1] >= 0)
			close(sv[1]);
	}
	close_pair(out);
	close(e[1]);
	if (r == 0 && via_runner)
		return await_started(job, runner_pid, true, e[0], p[0], ret);
	if (r == 0)
		k = read_report(e[0], &rep);
	if (r == 0 && k == (ssize_t)sizeof(rep) && rep.kind == EXEC_REPORT_FORKED &&
	    rep.value > 0) {
		runner_pid = (pid_t)rep.value;
		runner_sock = sv[0];
		runner_watch_add();
		return await_started(job, runner_pid, true, e[0], p[0], ret);
	}
	/* A trampoline forked but gone before its first report: its pid, from the spawner. */
	if (r == 0 && k != (ssize_t)sizeof(rep) &&
	    recv(sv[0], &dead, sizeof(dead), MSG_DONTWAIT) != (ssize_t)sizeof(dead))
		dead = 0;
	close(e[0]);
	if (p[0] >= 0)
		close(p[0]);
	if (sv[0] >= 0)
		close(sv[0]);
	if (r < 0)
		return r;
	if (k == (ssize_t)sizeof(rep) && rep.kind == EXEC_REPORT_FAILED && rep.value > 0)
		return -rep.value; /* the spawner's fork failed: as posix_spawn's would */
	if (dead > 0) {
		/*
		 * Killed from outside before it said anything (as in await_started()): reaped,
		 * and not started again behind the job's back (its command may have run).
		 */
		int status = 0;

		while (waitpid((pid_t)dead, &status, 0) < 0 && errno == EINTR)
			;
		return WIFSIGNALED(status) ? -EINTR : -ECHILD;
	}
	/* Nothing said and no trampoline: the spawner died with our request (spawn it). */
	return spawner_lost() ? -ENOTCONN : -ECHILD;
}

/* With posix_spawn of --exec-command. Returns what await_started() returns. */
static int start_spawned(struct bulkhead_job *job, char **argv, char **envp,
			 struct exec_run_fds *ret)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t mask, all;
	int p[2] = { -1, -1 }, e[2] = { -1, -1 }, out[2] = { -1, -1 }, r;
	const struct job_spec *spec = job->spec;
	char **targv, ppid[24], nice[16];
	size_t n = 0, t = 3;
	pid_t pid = 0;

	while (argv[n])
		n++;
	targv = calloc(n + 9, sizeof(*targv));
	if (!targv)
		return -ENOMEM;
	snprintf(ppid, sizeof(ppid), "%d", (int)getpid());
	targv[0] = (char *)"bulkhead-worker";
	targv[1] = (char *)EXEC_TRAMPOLINE_OPTION;
	targv[2] = ppid;
	if (spec->working_directory[0]) {
		targv[t++] = (char *)EXEC_TRAMPOLINE_CHDIR;
		targv[t++] = (char *)spec->working_directory;
	}
	if (spec->nice != BH_NICE_INHERIT) {
		snprintf(nice, sizeof(nice), "%d", spec->nice);
		targv[t++] = (char *)EXEC_TRAMPOLINE_NICE;
		targv[t++] = nice;
	}
	targv[t++] = (char *)"--";
	memcpy(targv + t, argv, (n + 1) * sizeof(*argv));
	if (pipe2(e, O_CLOEXEC) < 0) {
		free(targv);
		return -errno;
	}
	/* Its handled signals blocked from birth (and SIGPIPE: a write to us is EPIPE). */
	exec_trampoline_signals(&mask);
	sigaddset(&mask, SIGPIPE);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	r = -posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
						   POSIX_SPAWN_SETSIGDEF);
	if (r == 0)
		r = -posix_spawnattr_setpgroup(&at, 0);
	if (r == 0)
		r = -posix_spawnattr_setsigmask(&at, &mask);
	if (r == 0)
		r = -posix_spawnattr_setsigdefault(&at, &all);
	if (r == 0)
		r = -posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (r == 0 && job->spec->output[0]) {
		r = open_output_files(job, out);
		for (int fd = 1; fd <= 2 && r == 0; fd++)
			r = -posix_spawn_file_actions_adddup2(&fa, out[fd - 1], fd);
	} else if (r == 0) {
		if (pipe2(p, O_CLOEXEC) < 0)
			r = -errno;
		if (r == 0)
			r = -posix_spawn_file_actions_adddup2(&fa, p[1], 1);
		if (r == 0)
			r = -posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	}
	if (r == 0)
		r = -posix_spawn_file_actions_adddup2(&fa, e[1], EXEC_TRAMPOLINE_FD);
	/* Our fds are CLOEXEC; a plugin's in the same worker may not be. */
	if (r == 0)
		r = -posix_spawn_file_actions_addclosefrom_np(&fa, EXEC_TRAMPOLINE_FD + 1);
	if (r == 0)
		r = -posix_spawn(&pid, "/proc/self/exe", &fa, &at, targv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	free(targv);
	close(e[1]);
	close_pair(out);
	if (p[1] >= 0)
		close(p[1]);
	if (r < 0) {
		if (p[0] >= 0)
			close(p[0]);
		close(e[0]);
		return r;
	}
	return await_started(job, pid, false, e[0], p[0], ret);
}

int exec_start(struct bulkhead_job *job, char **argv, char **envp, struct exec_run_fds *ret)
{
	int r = start_forked(job, argv, envp, ret);

	return r == -ENOTCONN ? start_spawned(job, argv, envp, ret) : r;
}
