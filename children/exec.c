/* SPDX-License-Identifier: MIT */
/*
 * exec: jobs. `run = exec:COMMAND ARGS...` is split into words once per spec
 * (common/cmdline.c); each job expands the placeholders of every word ({input}, {id},
 * {name}, {arg:KEY}) and starts the command from its own job thread with posix_spawnp():
 *
 *   - in a process group of its own (POSIX_SPAWN_SETPGROUP), whose id is the command's pid,
 *     so that the command and everything it starts can be signalled at once: the worker on
 *     CANCEL and STOP (SIGTERM), the master on a timeout or when the worker died (SIGKILL);
 *   - with an empty signal mask and every signal at its default (SETSIGMASK, SETSIGDEF): a
 *     job thread's mask, the worker's ignored SIGPIPE and its crash handlers stay here;
 *   - stdin /dev/null; stdout and stderr to DIR/<group>.<job>.out and .err with `output =
 *     DIR`, else to a pipe that this thread reads and logs line by line through the job's
 *     log, the first EXEC_OUTPUT_LOG_MAX bytes only, then one line saying how much was
 *     dropped;
 *   - with the worker's environment plus BULKHEAD_JOB_ID (and BULKHEAD_JOB_INPUT when the
 *     job has an input). Every fd of the worker is CLOEXEC, so the command inherits none.
 *
 * The command dies with its worker: posix_spawn() starts this same binary as a trampoline
 * (`bulkhead-worker --exec-command WORKER_PID -- COMMAND ARGS...`, exec_trampoline_main()),
 * which sets PR_SET_PDEATHSIG (SIGKILL when the job thread, and so the worker, is gone),
 * checks its parent is still there, and execvp()s the command. An exec failure is written
 * as an errno to a CLOEXEC pipe on fd 3 (read here: EOF means the command runs), so a
 * missing command is still SPAWN_FAILED. This costs one more exec per command (about half a
 * millisecond) and closes a hole: without it a SIGKILLed master (workers die by their own
 * PDEATHSIG) or a worker dying before the master read its EXEC frame left commands running.
 * What a command starts in the background is its process group's, killed when the command
 * ends (wait_command) or by the master.
 *
 * Right after the spawn the job thread sends EXEC (job, pid) to the master, then waits:
 * with a pidfd, so that output is read until the command exits and not until the last
 * grandchild that inherited the pipe closes it. The command's end becomes the job's:
 * exit code 0 done, another code failed (outcome RETURNED), killed by a signal (outcome
 * SIGNALED, the worker is fine), or not started at all (SPAWN_FAILED, status = errno).
 *
 * Signalling a command's group from another thread (exec_signal()) must never hit a reused
 * pid: the job thread waits with WNOWAIT (the command stays a zombie, its pid and group id
 * taken), clears job->exec_pid under exec_lock, and only then reaps it. exec_signal() reads
 * the pid under the same lock. A CANCEL that comes between the spawn and the moment the pid
 * is published is not lost: the job thread checks bulkhead_job_cancelled() under the lock
 * when it publishes the pid, and the canceller sets the flag before it takes the lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cmdline.h"
#include "common/log.h"
#include "common/protocol.h"
#include "exec.h"
#include "job-api.h"

#define LINE_MAX_LOGGED 1024 /* a longer output line is logged in pieces */

extern char **environ;

struct exec_cmd {
	char **argv; /* one block (cmdline_split) */
	size_t argc;
};

static pthread_mutex_t exec_lock = PTHREAD_MUTEX_INITIALIZER;

int exec_cmd_new(const char *cmdline, struct exec_cmd **ret, char *err, size_t errsize)
{
	struct exec_cmd *c;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	r = cmdline_split(cmdline, &c->argv, &c->argc, err, errsize);
	for (size_t i = 0; r == 0 && i < c->argc; i++) {
		char *w;

		r = cmdline_expand(c->argv[i], NULL, NULL, &w, err, errsize);
		if (r == 0)
			free(w);
	}
	if (r < 0) {
		exec_cmd_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

void exec_cmd_free(struct exec_cmd *c)
{
	if (!c)
		return;
	free(c->argv);
	free(c);
}

static const char *lookup(void *ud, const char *name)
{
	struct bulkhead_job *job = ud;

	if (strcmp(name, "input") == 0)
		return job->input;
	if (strcmp(name, "id") == 0)
		return bulkhead_job_id(job);
	if (strcmp(name, "name") == 0)
		return job->spec->name;
	if (strncmp(name, "arg:", 4) == 0)
		return bulkhead_job_arg(job, name + 4);
	return NULL;
}

static void free_words(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* The command's argv with the placeholders substituted (NULL-terminated, each malloc'd). */
static int build_argv(struct bulkhead_job *job, char ***ret)
{
	const struct exec_cmd *c = job->spec->exec;
	char err[256], **v;
	int r;

	v = calloc(c->argc + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < c->argc; i++) {
		r = cmdline_expand(c->argv[i], lookup, job, &v[i], err, sizeof(err));
		if (r < 0) {
			bulkhead_job_log(job, BULKHEAD_LOG_ERR, "cannot build the command: %s",
					 r == -ENOMEM ? strerror(ENOMEM) : err);
			free_words(v);
			return r;
		}
	}
	*ret = v;
	return 0;
}

static bool env_is_ours(const char *e)
{
	return strncmp(e, "BULKHEAD_JOB_ID=", 16) == 0 ||
	       strncmp(e, "BULKHEAD_JOB_INPUT=", 19) == 0;
}

/* environ without BULKHEAD_JOB_*, plus ours. *ret_strings holds what was added. */
static int build_envp(struct bulkhead_job *job, char ***ret, char **ret_strings)
{
	size_t n = 0, k = 0;
	char **e, *s;

	for (char **p = environ; p && *p; p++)
		n++;
	e = malloc((n + 3) * sizeof(*e));
	if (!e)
		return -ENOMEM;
	if (asprintf(&s, "BULKHEAD_JOB_ID=%s%cBULKHEAD_JOB_INPUT=%s", bulkhead_job_id(job), 0,
		     job->input ? job->input : "") < 0) {
		free(e);
		return -ENOMEM;
	}
	for (char **p = environ; p && *p; p++)
		if (!env_is_ours(*p))
			e[k++] = *p;
	e[k++] = s;
	if (job->input)
		e[k++] = s + strlen(s) + 1;
	e[k] = NULL;
	*ret = e;
	*ret_strings = s;
	return 0;
}

/* Sends the EXEC frame and publishes the pid for exec_signal(). */
static void exec_started(struct bulkhead_job *job, pid_t pid)
{
	uint8_t buf[sizeof(struct bh_frame_header) + 16];
	size_t n = bh_encode_exec(buf, sizeof(buf), job->id, pid);
	bool cancelled;

	if (n > 0)
		(void)job_api_send(buf, n);
	pthread_mutex_lock(&exec_lock);
	job->exec_pid = pid;
	cancelled = bulkhead_job_cancelled(job);
	if (cancelled)
		(void)kill(-pid, SIGTERM);
	pthread_mutex_unlock(&exec_lock);
}

void exec_signal(struct bulkhead_job *job, int sig)
{
	pthread_mutex_lock(&exec_lock);
	if (job->exec_pid > 0)
		(void)kill(-job->exec_pid, sig);
	pthread_mutex_unlock(&exec_lock);
}

/* Captured output: logged line by line, the first EXEC_OUTPUT_LOG_MAX bytes. */
struct output {
	struct bulkhead_job *job;
	char line[LINE_MAX_LOGGED + 1];
	size_t len;
	size_t logged; /* bytes of output logged so far */
	uint64_t dropped; /* bytes beyond EXEC_OUTPUT_LOG_MAX */
};

static void output_flush(struct output *o)
{
	if (o->len == 0)
		return;
	o->line[o->len] = '\0';
	bulkhead_job_log(o->job, BULKHEAD_LOG_INFO, "%s", o->line);
	o->len = 0;
}

static void output_feed(struct output *o, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (o->logged >= EXEC_OUTPUT_LOG_MAX) {
			o->dropped += n - i;
			return;
		}
		o->logged++;
		if (c == '\n') {
			output_flush(o);
			continue;
		}
		o->line[o->len++] = c < 0x20 && c != '\t' ? '?' : (char)c;
		if (o->len == LINE_MAX_LOGGED)
			output_flush(o);
	}
}

/* Reads what is there (fd non-blocking). Returns false at EOF or on an error. */
static bool output_read(struct output *o, int fd)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n > 0) {
			output_feed(o, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && errno == EAGAIN;
	}
}

/*
 * Reads the command's output until the command has exited (pidfd readable), then what is
 * left in the pipe, without waiting for other holders of its write end. Without a pidfd,
 * reads until EOF.
 */
static void pump_output(struct bulkhead_job *job, int fd, pid_t pid)
{
	struct output *o;
	int pidfd = pidfd_open(pid, 0);
	bool open = true;

	o = calloc(1, sizeof(*o));
	if (!o) {
		if (pidfd >= 0)
			close(pidfd);
		return; /* the output goes unread: the command gets EPIPE or blocks; rare */
	}
	o->job = job;
	while (open) {
		struct pollfd pfd[2] = { { .fd = fd, .events = POLLIN },
					 { .fd = pidfd, .events = POLLIN } };

		if (poll(pfd, pidfd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents)
			open = output_read(o, fd);
		if (pidfd >= 0 && pfd[1].revents) {
			if (open)
				(void)output_read(o, fd);
			break;
		}
	}
	output_flush(o);
	if (o->dropped > 0)
		bulkhead_job_log(job, BULKHEAD_LOG_WARNING,
				 "%" PRIu64 " more bytes of output not logged (the first %u were)",
				 o->dropped, EXEC_OUTPUT_LOG_MAX);
	free(o);
	if (pidfd >= 0)
		close(pidfd);
}

/* Waits for the command, clears the published pid, then reaps it. Returns the wait status. */
static int wait_command(struct bulkhead_job *job, pid_t pid)
{
	siginfo_t si;
	int status = 0;

	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	/*
	 * What the command left running in its process group (`sh -c "x &"`) goes with it: the
	 * job is over. The unreaped command still holds the group's id, so this cannot reach
	 * another process group.
	 */
	(void)kill(-pid, SIGKILL);
	pthread_mutex_lock(&exec_lock);
	job->exec_pid = 0;
	pthread_mutex_unlock(&exec_lock);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno == EINTR)
			continue;
		/* Reaped by someone else (a plugin's waitpid(-1)): its end is unknown. */
		bulkhead_job_log(job, BULKHEAD_LOG_ERR, "the command's exit status was lost: %s",
				 strerror(errno));
		return W_EXITCODE(1, 0);
	}
	return status;
}

static int add_output_files(struct bulkhead_job *job, posix_spawn_file_actions_t *fa)
{
	const char *name = job->spec->name[0] ? job->spec->name : "job";
	char *path;
	int r = 0;

	for (int fd = 1; fd <= 2 && r == 0; fd++) {
		if (asprintf(&path, "%s/%s.%s.%s", job->spec->output, name, bulkhead_job_id(job),
			     fd == 1 ? "out" : "err") < 0)
			return -ENOMEM;
		/* The path is copied by glibc; opened in the child, errors fail the spawn. */
		r = -posix_spawn_file_actions_addopen(fa, fd, path, O_WRONLY | O_CREAT | O_TRUNC,
						      0644);
		free(path);
	}
	return r;
}

static int spawn_command(struct bulkhead_job *job, char **argv, char **envp, int *ret_pipe,
			 pid_t *ret_pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int p[2] = { -1, -1 }, e[2] = { -1, -1 }, r, err = 0;
	char **targv, ppid[24];
	size_t n = 0;
	ssize_t k;

	while (argv[n])
		n++;
	targv = calloc(n + 5, sizeof(*targv));
	if (!targv)
		return -ENOMEM;
	snprintf(ppid, sizeof(ppid), "%d", (int)getpid());
	targv[0] = (char *)"bulkhead-worker";
	targv[1] = (char *)EXEC_TRAMPOLINE_OPTION;
	targv[2] = ppid;
	targv[3] = (char *)"--";
	memcpy(targv + 4, argv, (n + 1) * sizeof(*argv));
	if (pipe2(e, O_CLOEXEC) < 0) {
		free(targv);
		return -errno;
	}
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	r = -posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
						   POSIX_SPAWN_SETSIGDEF);
	if (r == 0)
		r = -posix_spawnattr_setpgroup(&at, 0);
	if (r == 0)
		r = -posix_spawnattr_setsigmask(&at, &none);
	if (r == 0)
		r = -posix_spawnattr_setsigdefault(&at, &all);
	if (r == 0)
		r = -posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (r == 0 && job->spec->output[0]) {
		r = add_output_files(job, &fa);
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
		r = -posix_spawn(ret_pid, "/proc/self/exe", &fa, &at, targv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	free(targv);
	close(e[1]);
	if (p[1] >= 0)
		close(p[1]);
	/* EOF: the command was exec'd; an int: the errno it could not be exec'd with. */
	while (r == 0 && (k = read(e[0], &err, sizeof(err))) < 0 && errno == EINTR)
		;
	close(e[0]);
	if (r == 0 && k == (ssize_t)sizeof(err) && err > 0) {
		while (waitpid(*ret_pid, NULL, 0) < 0 && errno == EINTR)
			;
		r = -err;
	}
	if (r < 0) {
		if (p[0] >= 0)
			close(p[0]);
		return r;
	}
	if (p[0] >= 0)
		(void)fcntl(p[0], F_SETFL, O_NONBLOCK);
	*ret_pipe = p[0];
	return 0;
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

int exec_trampoline_main(int argc, char **argv)
{
	int err;

	/* argv: bulkhead-worker --exec-command PPID -- COMMAND ARGS... */
	if (argc < 5 || strcmp(argv[3], "--") != 0)
		_exit(127);
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != (pid_t)atoi(argv[2]))
		_exit(127); /* the worker is already gone */
	(void)fcntl(EXEC_TRAMPOLINE_FD, F_SETFD, FD_CLOEXEC);
	err = exec_path(argv + 4);
	(void)!write(EXEC_TRAMPOLINE_FD, &err, sizeof(err));
	_exit(127);
}

int exec_job_run(struct bulkhead_job *job)
{
	char **argv = NULL, **envp = NULL, *env_strings = NULL;
	int out = -1, status, r;
	pid_t pid;

	if (bulkhead_job_cancelled(job)) {
		/* Cancelled (or the worker stopping) before it started: as if SIGTERM ended it. */
		job->outcome = BH_OUTCOME_SIGNALED;
		return SIGTERM;
	}
	r = build_argv(job, &argv);
	if (r == 0)
		r = build_envp(job, &envp, &env_strings);
	if (r == 0) {
		r = spawn_command(job, argv, envp, &out, &pid);
		if (r < 0)
			bulkhead_job_log(job, BULKHEAD_LOG_ERR, "cannot start %s: %s", argv[0],
					 strerror(-r));
	}
	free(envp);
	free(env_strings);
	free_words(argv);
	if (r < 0) {
		job->outcome = BH_OUTCOME_SPAWN_FAILED;
		return -r;
	}

	exec_started(job, pid);
	if (out >= 0) {
		pump_output(job, out, pid);
		close(out);
	}
	status = wait_command(job, pid);
	if (WIFSIGNALED(status)) {
		job->outcome = BH_OUTCOME_SIGNALED;
		return WTERMSIG(status);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
