/* SPDX-License-Identifier: MIT */
/*
 * The exec: trampoline (comm "bulkhead-exec"), started for a job thread (exec.c) in a process
 * group of its own, the worker's child, single-threaded: forked by the worker's spawner, or
 * `bulkhead-worker --exec-command WORKER_PID -- COMMAND ARGS...` spawned by the job thread. It forks the command and stays its parent, so
 * that nothing a command starts outlives its job, its worker or the master, however they die
 * (DESIGN §11), also what double-forks or calls setsid():
 *
 *   - it is a child subreaper (PR_SET_CHILD_SUBREAPER): every orphaned descendant of the
 *     command becomes its child instead of init's;
 *   - its PR_SET_PDEATHSIG is a signal it handles (SIGHUP): when the thread that started it
 *     is gone (the job thread, or the worker's main thread for one the spawner forked: the
 *     worker died; the worker dies with the master) it is told, and ends everything;
 *   - once the command has exited (or on that signal) it SIGKILLs the command's process
 *     group while the command's unreaped pid still holds the group id, then sweeps its
 *     descendants (stops them top-down, kills them bottom-up, walking
 *     /proc/PID/task/TID/children; see sweep()) and reaps them, until it has no child left;
 *     only then it reports the command's wait status, and exits, or (a runner, below) waits
 *     for its job thread's next command. Processes it cannot signal (another uid) are left
 *     when nothing else is.
 *
 * The command is forked into a process group of its own, whose id is the command's pid: the
 * master kills that group (SIGKILL) on a timeout or when the worker died, which never hits
 * the trampoline, so the trampoline is always there to sweep what escaped the group. The
 * command gets PR_SET_PDEATHSIG SIGKILL (the trampoline gone: so is it), an empty signal
 * mask and every signal at its default; the signals the trampoline forwards (CANCEL and STOP
 * of the job send SIGTERM) go to that group. It is started with vfork() and exec'd like
 * posix_spawnp() would (exec_path()), and the trampoline's own fds are CLOEXEC, so the
 * command inherits none.
 *
 * A trampoline is either exec'd (`--exec-command`, exec_trampoline_main()) or forked by the
 * worker's spawner (spawner.c), which calls exec_trampoline_run() directly with the same
 * fds, mask and signal defaults; its first report then comes after FORKED with its pid, and
 * it stays after its command as the job thread's runner: spawner.c's next function gives it
 * the thread's next command (fds 1-3 and environ replaced), and before starting that one it
 * drops the forwarded signals still pending (a CANCEL that came as the last one ended). The
 * group's directory and nice are taken by the command's side of the vfork, so the runner
 * keeps its own.
 *
 * Reports to the job thread on fd 3 (exec-trampoline.h): STARTED with the command's pid once
 * it was exec'd, or FAILED (CHDIR_FAILED, NICE_FAILED) with the errno it could not be started
 * with; then ENDED with the command's wait status, once everything it started is gone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sched-slice.h"
#include "exec-trampoline.h"

#define EXEC_SWEEP_DEPTH 64 /* levels below the trampoline one sweep() goes down */

/* Forwarded by the trampoline to the command's process group. */
static const int forwarded[] = { SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2 };

void exec_trampoline_signals(sigset_t *s)
{
	sigemptyset(s);
	sigaddset(s, SIGCHLD);
	sigaddset(s, EXEC_TRAMPOLINE_DEATHSIG);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(s, forwarded[i]);
}

/*
 * execvp() without its fallback of running a file with no #! line through /bin/sh: what
 * posix_spawnp() does, so a script without an interpreter line stays "Exec format error".
 * Returns the errno to report.
 */
static int exec_path(char **argv)
{
	const char *path = getenv("PATH"), *p;
	char buf[PATH_MAX];
	int err = ENOENT;

	if (strchr(argv[0], '/')) {
		execv(argv[0], argv);
		return errno;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path;; p++) {
		const char *end = strchrnul(p, ':');
		size_t len = (size_t)(end - p);

		if (len + 1 + strlen(argv[0]) < sizeof(buf)) {
			snprintf(buf, sizeof(buf), "%.*s%s%s", (int)len, p, len ? "/" : "",
				 argv[0]);
			execv(buf, argv);
			if (errno != ENOENT && errno != ENOTDIR)
				err = errno; /* EACCES, ENOEXEC...: remembered, as execvp does */
		}
		if (*end == '\0')
			return err;
		p = end;
	}
}

/* Forked by the spawner: our pid, for FORKED in front of the first report; else 0. */
static pid_t forked_pid;

/*
 * One report to the job thread (a write of 8 or 16 bytes to a pipe is atomic). The first of
 * a trampoline the spawner forked goes with FORKED in front, in the same write: the job
 * thread wakes once for both.
 */
static void report(int32_t kind, int32_t value)
{
	struct exec_report rep[2] = { { .kind = EXEC_REPORT_FORKED, .value = forked_pid },
				      { .kind = kind, .value = value } };
	bool forked = forked_pid > 0;

	forked_pid = 0;
	(void)!write(EXEC_TRAMPOLINE_FD, forked ? rep : rep + 1, (forked ? 2 : 1) * sizeof(*rep));
}

/* The parent of pid from /proc/PID/stat, or -1. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	int ppid, fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold anything */
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -1;
	return (pid_t)ppid;
}

/* Appends the pids in one /proc/PID/task/TID/children file to *v. */
static void read_children(const char *path, pid_t **v, size_t *n, size_t *cap)
{
	char buf[512];
	long cur = -1;
	ssize_t k;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	while ((k = read(fd, buf, sizeof(buf))) > 0 || (k < 0 && errno == EINTR)) {
		for (ssize_t i = 0; i < k; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				cur = (cur < 0 ? 0 : cur * 10) + (buf[i] - '0');
				if (cur > INT_MAX)
					cur = INT_MAX;
				continue;
			}
			if (cur > 0 && *n == *cap) {
				pid_t *m = realloc(*v, (*cap ? *cap * 2 : 16) * sizeof(**v));

				if (!m)
					break;
				*v = m;
				*cap = *cap ? *cap * 2 : 16;
			}
			if (cur > 0 && *n < *cap)
				(*v)[(*n)++] = (pid_t)cur;
			cur = -1;
		}
	}
	close(fd);
}

/* The children of pid, of every one of its threads (malloc'd, maybe NULL), and how many. */
static size_t children_of(pid_t pid, pid_t **ret)
{
	char path[96];
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	*ret = NULL;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/children", (int)pid, de->d_name);
		read_children(path, ret, &n, &cap);
	}
	closedir(d);
	return n;
}

static bool pidfd_alive(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 0; /* readable once it has exited */
}

/*
 * Stops every child of `parent` and, below each, its descendants, then kills them: top-down
 * SIGSTOP (a stopped process forks no more, so its list of children holds still), bottom-up
 * SIGKILL. Deeper than EXEC_SWEEP_DEPTH is left for the next round: those processes are
 * reparented to us as their ancestors die. Each process is signalled through a pidfd, and one
 * that is not our own child only after checking that its parent is the process whose list
 * named it and that this one is still alive then (parent_fd), so a pid reused meanwhile is
 * never signalled. Returns how many of our own children were signalled (parent_fd < 0).
 */
static unsigned sweep(pid_t parent, int parent_fd, unsigned depth)
{
	unsigned signalled = 0;
	pid_t *kids;
	size_t n = children_of(parent, &kids);

	for (size_t i = 0; i < n; i++) {
		int fd = (int)pidfd_open(kids[i], 0);

		if (fd < 0)
			continue;
		if (parent_fd >= 0 && (parent_of(kids[i]) != parent || !pidfd_alive(parent_fd))) {
			close(fd);
			continue;
		}
		(void)pidfd_send_signal(fd, SIGSTOP, NULL, 0);
		if (depth < EXEC_SWEEP_DEPTH)
			sweep(kids[i], fd, depth + 1);
		if (pidfd_send_signal(fd, SIGKILL, NULL, 0) == 0 && parent_fd < 0)
			signalled++;
		close(fd);
	}
	free(kids);
	return signalled;
}

/*
 * The end of a job: the command's group is killed while its unreaped leader still holds the
 * group id (it cannot be another group), and the command itself (in case it left its group);
 * it is reaped; then, if any child is left, every descendant, round after round, reaping
 * them, until none is left, or only some we cannot signal. Returns the command's status.
 */
static int end_everything(pid_t cmd)
{
	int status = W_EXITCODE(0, SIGKILL), st;
	pid_t pid;

	(void)kill(-cmd, SIGKILL);
	(void)kill(cmd, SIGKILL); /* our child, unreaped: no one else */
	while ((pid = waitpid(cmd, &st, 0)) < 0 && errno == EINTR)
		;
	if (pid == cmd)
		status = st;
	for (;;) {
		siginfo_t si;
		unsigned signalled;

		/* No child at all: nothing to sweep (the common case, without a /proc walk). */
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD)
			return status;
		signalled = sweep(getpid(), -1, 0);
		pid = waitpid(-1, &st, signalled ? 0 : WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return status; /* ECHILD: nothing left; 0: nothing we can end */
		while (waitpid(-1, &st, WNOHANG) > 0)
			;
	}
}

/*
 * Reaps children (orphans reparented to us) that exited, except the command. Returns true
 * once the command has exited (it stays unreaped, so its pid and group id stay taken).
 */
static bool reap_orphans(pid_t cmd)
{
	for (;;) {
		siginfo_t si = { 0 };

		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
			return errno != EINTR;
		if (si.si_pid == 0)
			return false;
		if (si.si_pid == cmd)
			return true;
		(void)waitpid(si.si_pid, NULL, WNOHANG);
	}
}

/* What the command's side of the vfork writes to the trampoline when it cannot exec. */
struct child_error {
	int32_t kind; /* EXEC_REPORT_FAILED, _CHDIR_FAILED or _NICE_FAILED */
	int32_t err;
};

static _Noreturn void child_failed(int errfd, int32_t kind, int err)
{
	struct child_error e = { .kind = kind, .err = err > 0 ? err : EPERM };

	(void)!write(errfd, &e, sizeof(e));
	_exit(127);
}

/*
 * The command's side of the vfork: its group, its death signal, the group's directory and
 * nice (taken here, so that the trampoline, which runs the next command too, keeps its own),
 * a clean mask, exec.
 */
static _Noreturn void command_child(const struct exec_trampoline_args *a, int errfd,
				    pid_t trampoline)
{
	sigset_t none;

	(void)setpgid(0, 0);
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != trampoline)
		_exit(127);
	if (a->chdir && chdir(a->chdir) < 0)
		child_failed(errfd, EXEC_REPORT_CHDIR_FAILED, errno);
	if (a->has_nice) {
		errno = 0;
		if (setpriority(PRIO_PROCESS, 0, a->nice) < 0)
			child_failed(errfd, EXEC_REPORT_NICE_FAILED, errno);
	}
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	child_failed(errfd, EXEC_REPORT_FAILED, exec_path(a->argv));
}

/*
 * The options between PPID and "--" into a. Returns false on a malformed command line.
 */
static bool parse_args(int argc, char **argv, struct exec_trampoline_args *a)
{
	int i = 3;

	*a = (struct exec_trampoline_args){ .worker = (pid_t)atoi(argv[2]) };
	while (i + 1 < argc && strcmp(argv[i], "--") != 0) {
		if (strcmp(argv[i], EXEC_TRAMPOLINE_CHDIR) == 0) {
			a->chdir = argv[i + 1];
		} else if (strcmp(argv[i], EXEC_TRAMPOLINE_NICE) == 0) {
			a->has_nice = true;
			a->nice = atoi(argv[i + 1]);
		} else {
			return false;
		}
		i += 2;
	}
	if (i + 1 >= argc || strcmp(argv[i], "--") != 0)
		return false;
	a->argv = argv + i + 1;
	return true;
}

int exec_trampoline_main(int argc, char **argv)
{
	struct exec_trampoline_args a;

	/* argv: bulkhead-worker --exec-command PPID [OPTION VALUE]... -- COMMAND ARGS... */
	if (argc < 5 || !parse_args(argc, argv, &a))
		_exit(127);
	exec_trampoline_run(&a, NULL, NULL);
}

/* Forwarded signals still pending from the last command (a CANCEL that came as it ended). */
static void drop_stale_signals(void)
{
	const struct timespec now = { 0 };
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&set, forwarded[i]);
	while (sigtimedwait(&set, NULL, &now) > 0)
		;
}

/*
 * Starts a->argv: vfork, exec, report STARTED with its pid and return it; or report why it
 * could not be started and return 0.
 */
static pid_t start_command(const struct exec_trampoline_args *a)
{
	struct child_error ce = { 0 };
	pid_t self = getpid(), cmd;
	int ep[2];
	ssize_t n;

	if (pipe2(ep, O_CLOEXEC) < 0) {
		report(EXEC_REPORT_FAILED, errno);
		return 0;
	}
	/*
	 * vfork: we are single-threaded and the child only sets its group, death signal,
	 * directory, nice and mask, then execs or writes why not and _exits
	 * (command_child()); no copy of our page tables, about 75 us less a command here
	 * (bench/README.md, issue 17).
	 */
	cmd = vfork();
	if (cmd < 0) {
		report(EXEC_REPORT_FAILED, errno);
		close(ep[0]);
		close(ep[1]);
		return 0;
	}
	if (cmd == 0) {
		close(ep[0]);
		command_child(a, ep[1], self);
	}
	close(ep[1]);
	(void)setpgid(cmd, cmd); /* (fails once the command has exec'd: it did it itself) */
	/* EOF: the command was exec'd; a child_error: what kept it from being exec'd. */
	while ((n = read(ep[0], &ce, sizeof(ce))) < 0 && errno == EINTR)
		;
	close(ep[0]);
	if (n == (ssize_t)sizeof(ce) && ce.kind > 0) {
		while (waitpid(cmd, NULL, 0) < 0 && errno == EINTR)
			;
		report(ce.kind, ce.err);
		return 0;
	}
	report(EXEC_REPORT_STARTED, cmd);
	return cmd;
}

/*
 * One command: started, then waited for until it exits or our parent is gone; everything
 * it left ended, ENDED reported. Returns true if our parent is gone (the death signal
 * came): then there is no next command.
 */
static bool run_command(const struct exec_trampoline_args *a, const sigset_t *set)
{
	bool over = false, gone = false;
	pid_t cmd = start_command(a);

	if (cmd <= 0)
		return false;
	/* Until the command exits or our parent (the job thread) is gone. */
	while (!over) {
		int sig = sigwaitinfo(set, NULL);

		if (sig == SIGCHLD) {
			over = reap_orphans(cmd);
		} else if (sig == EXEC_TRAMPOLINE_DEATHSIG) {
			over = true;
			gone = true;
		} else if (sig > 0) {
			(void)kill(-cmd, sig); /* CANCEL, STOP: for the command's group */
		}
	}
	report(EXEC_REPORT_ENDED, end_everything(cmd));
	return gone;
}

void exec_trampoline_run(struct exec_trampoline_args *a, exec_trampoline_next_fn next, void *ctx)
{
	sigset_t set;

	if (a->forked)
		forked_pid = getpid();
	(void)fcntl(EXEC_TRAMPOLINE_FD, F_SETFD, FD_CLOEXEC);
	/* Blocked since the spawn already; again, in case someone else started us. */
	exec_trampoline_signals(&set);
	(void)sigprocmask(SIG_BLOCK, &set, NULL);
	(void)prctl(PR_SET_NAME, "bulkhead-exec");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		report(EXEC_REPORT_FAILED, errno);
		_exit(127);
	}
	(void)prctl(PR_SET_PDEATHSIG, EXEC_TRAMPOLINE_DEATHSIG);
	if (getppid() != a->worker)
		_exit(127); /* the worker is already gone */
	(void)sched_slice_set(0); /* the spawner's short slice is not for commands */
	while (!run_command(a, &set) && next && next(ctx, a)) {
		(void)fcntl(EXEC_TRAMPOLINE_FD, F_SETFD, FD_CLOEXEC);
		drop_stale_signals();
	}
	_exit(0);
}
