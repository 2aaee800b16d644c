/* SPDX-License-Identifier: MIT */
/*
 * The job kind exec: (exec_kind). `run = exec:COMMAND ARGS...` is split into words once per
 * spec (common/cmdline.c); each job expands the placeholders of every word ({input}, {id},
 * {name}, {arg:KEY}) and starts the command from its own job thread, through a trampoline
 * that stays its parent:
 *
 *   job thread --request--> spawner --clone(CLONE_PARENT)--> trampoline --vfork+exec-->
 *       command --> what it starts
 *   job thread --next request--> the same trampoline (its runner) --vfork+exec--> command
 *
 * The trampoline is this same binary's code (exec-trampoline.c), in a process group of its
 * own, the worker's child; it is there so that nothing a command starts outlives its job, its
 * worker or the master, however they die. The worker's spawner (spawner.c, in pools with
 * exec: groups) forks it without an exec; without a spawner the job thread posix_spawns
 * `bulkhead-worker --exec-command WORKER_PID -- COMMAND ARGS...` (exec-start.c). The one the
 * spawner forks stays after its command as the job thread's runner and runs the thread's
 * next commands (one at a time, as the thread runs them; docs/decisions.md "A runner per job
 * thread"). This file is the job thread's side.
 *
 * The command's stdin is /dev/null, and its stdout and stderr go to DIR/<group>.<job>.out
 * and .err with `output = DIR`, else to a pipe that this thread reads and logs line by line
 * through the job's log, the first EXEC_OUTPUT_LOG_MAX bytes only, then one line saying how
 * much was dropped. Its environment is the worker's, then the group's `environment =` (a
 * NAME it sets replaces the worker's), then BULKHEAD_JOB_ID (and BULKHEAD_JOB_INPUT when the
 * job has an input). The group's working_directory and nice are taken by the command's side
 * of the trampoline's vfork before its exec (a failure is the attempt's, SPAWN_FAILED, logged
 * with its reason). An exit code in the group's success_exit_status is done (status 0),
 * logged. Every fd of the worker is CLOEXEC, fds above 3 are closed in the trampoline (a
 * plugin's may not be CLOEXEC), so the command inherits none.
 *
 * The trampoline talks to the job thread over a pipe on its fd 3 (struct exec_report, one write
 * each): STARTED with the command's pid once it was exec'd, or FAILED with the errno it could
 * not be started with (SPAWN_FAILED, so a missing command is still that); then ENDED with the
 * command's wait status, once everything the command started is gone. The job thread reads
 * output until the report pipe says the end (ENDED, or an EOF: the trampoline died), not until
 * the last holder of the output pipe closes it, and reaps the trampoline only if it exits (a
 * spawned one) or died (a runner). It sends EXEC (job, command pid) to the master once the
 * command has run EXEC_TELL_AFTER_MS: the master needs the pid only to kill the group on a
 * timeout or when the worker died, and most commands that end sooner cost it no frame and no
 * /proc check (a worker that dies first ends them through their trampoline; a timeout shorter
 * than that kills the worker, as when an EXEC never comes: the master's deadlines allow 2 ms
 * more anyway, BH_RESULT_HOLD_USEC). 2000 x /bin/true: CPU 2.06 -> 1.99 s, wall 1.10 -> 1.05 s.
 * The command's end becomes the job's: exit code 0 done, another code failed (outcome
 * RETURNED), killed by a signal (outcome SIGNALED, the worker is fine), or not started at all
 * (SPAWN_FAILED, status = errno). A trampoline that died without saying ENDED (killed from
 * outside) counts as the command killed by that signal.
 *
 * Signalling a command from another thread (exec_signal(), the kind's interrupt: SIGTERM on
 * CANCEL and STOP) goes to the trampoline, which forwards it to the command's group: the
 * trampoline is the worker's child, reaped only by this thread, so its pid cannot be reused
 * before this thread reaps it. The job thread reads ENDED (or the EOF of a dead trampoline, a
 * zombie then, its pid taken), clears job->exec_pid under exec_lock, and only then reaps it, if
 * it must. exec_signal() reads the pid under the same lock; a signal that reaches a runner
 * after ENDED is dropped before its next command starts. A CANCEL that comes between the spawn
 * and the moment the pid is published is not lost: the job thread checks
 * bulkhead_job_cancelled() under the lock when it publishes the pid, and the canceller sets the
 * flag before it takes the lock. The trampoline has the signals it handles blocked from its
 * first instruction (the spawner, or the spawn, sets its mask), so none is lost or kills it
 * before it is ready.
 *
 * Cost (bench/README.md, "Issue 17: commands through a spawner" and "a runner per job thread"):
 * a vfork and an exec per command, the command's; one small process per job thread that has run
 * a command (its runner) and one spawner per worker. Before the runners (the figures below),
 * also a fork and an exit of the trampoline per command. 2000 x /bin/true, 2 at a time (2
 * workers x 1 thread) on this 2-core machine: 1.99 s of CPU and 1.05 s (2.02 s and 1.07 s
 * before the EXEC frame waited), against 3.62 s and 1.93 s when every trampoline was an exec of
 * bulkhead-worker, and 2.01 s and 1.07 s for `xargs -P2` (medians of 7, alternated). Without a
 * spawner a command costs the exec of bulkhead-worker more, about 0.6 ms of CPU here. With the
 * runners, the same run takes 1.52 s of CPU and 0.80 s, against 1.75 s and 0.92 s before them
 * and 1.79 s and 0.95 s for `xargs -P2` (medians of 7, alternated, a later day).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cmdline.h"
#include "common/exec-settings.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/units.h"
#include "exec-start.h"
#include "exec-trampoline.h"
#include "job-kind.h"

#define EXEC_PREFIX "exec:"
#define EXEC_OUTPUT_LOG_MAX (16u * 1024u) /* bytes of a job's captured output that are logged */
#define EXEC_TELL_AFTER_MS 1 /* the master hears of a command that runs this long (EXEC) */
#define LINE_MAX_LOGGED 1024 /* a longer output line is logged in pieces */

extern char **environ;

struct exec_cmd {
	char **argv; /* one block (cmdline_split) */
	size_t argc;
	char **env; /* the group's environment =, one block (exec_env_split); NULL if none */
	size_t n_env;
};

static pthread_mutex_t exec_lock = PTHREAD_MUTEX_INITIALIZER;

static void cmd_free(struct exec_cmd *c)
{
	if (!c)
		return;
	free(c->argv);
	free(c->env);
	free(c);
}

/*
 * Splits "COMMAND ARGS..." (common/cmdline.h) and checks the placeholders of every word.
 * Returns 0, -EINVAL with the reason in err, or -ENOMEM.
 */
static int cmd_new(const char *cmdline, const char *env, struct exec_cmd **ret, char *err,
		   size_t errsize)
{
	struct exec_cmd *c;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	r = cmdline_split(cmdline, &c->argv, &c->argc, err, errsize);
	if (r == 0)
		r = exec_env_split(env, &c->env, &c->n_env, err, errsize);
	for (size_t i = 0; r == 0 && i < c->argc; i++) {
		char *w;

		r = cmdline_expand(c->argv[i], NULL, NULL, &w, err, errsize);
		if (r == 0)
			free(w);
	}
	if (r < 0) {
		cmd_free(c);
		return r;
	}
	*ret = c;
	return 0;
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
	const struct exec_cmd *c = job->spec->data;
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

/* True if assignment a sets the same NAME as b (both NAME=VALUE). */
static bool same_name(const char *a, const char *b)
{
	size_t n = strcspn(a, "=");

	return strncmp(a, b, n) == 0 && b[n] == '=';
}

/* True if group assignment i is overridden: by a later one, or by ours. */
static bool env_overridden(const struct exec_cmd *c, size_t i)
{
	if (env_is_ours(c->env[i]))
		return true;
	for (size_t j = i + 1; j < c->n_env; j++)
		if (same_name(c->env[i], c->env[j]))
			return true;
	return false;
}

/* True if the group's environment = sets e's NAME. */
static bool env_in_group(const struct exec_cmd *c, const char *e)
{
	for (size_t i = 0; i < c->n_env; i++)
		if (same_name(c->env[i], e))
			return true;
	return false;
}

/*
 * environ without BULKHEAD_JOB_* and the NAMEs the group sets, then the group's assignments
 * (the last of each NAME), then ours. *ret_strings holds what was added.
 */
static int build_envp(struct bulkhead_job *job, char ***ret, char **ret_strings)
{
	const struct exec_cmd *c = job->spec->data;
	size_t n = c->n_env, k = 0;
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
		if (!env_is_ours(*p) && !env_in_group(c, *p))
			e[k++] = *p;
	for (size_t i = 0; i < c->n_env; i++)
		if (!env_overridden(c, i))
			e[k++] = c->env[i];
	e[k++] = s;
	if (job->input)
		e[k++] = s + strlen(s) + 1;
	e[k] = NULL;
	*ret = e;
	*ret_strings = s;
	return 0;
}

/*
 * Sends the EXEC frame (the command's pid: its process group) and publishes the
 * trampoline's pid for exec_signal().
 */
static void exec_started(struct bulkhead_job *job, pid_t trampoline)
{
	bool cancelled;

	pthread_mutex_lock(&exec_lock);
	job->exec_pid = trampoline;
	cancelled = bulkhead_job_cancelled(job);
	if (cancelled)
		(void)kill(trampoline, SIGTERM);
	pthread_mutex_unlock(&exec_lock);
}

/* The master hears of a command once it has run EXEC_TELL_AFTER_MS (see the top). */
struct exec_tell {
	struct bulkhead_job *job;
	pid_t command;
	usec_t at; /* now_usec() */
	bool told;
};

/* A poll() timeout until the EXEC frame is due (-1 once it went), sending it when due. */
static int exec_tell_timeout(struct exec_tell *t)
{
	uint8_t buf[sizeof(struct bh_frame_header) + 16];
	usec_t now;
	size_t n;

	if (t->told)
		return -1;
	now = now_usec();
	if (now < t->at)
		return (int)((t->at - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC); /* rounded up */
	n = bh_encode_exec(buf, sizeof(buf), t->job->id, t->command);
	if (n > 0)
		(void)job_context_send(buf, n);
	t->told = true;
	return -1;
}

static void exec_signal(struct bulkhead_job *job, int sig)
{
	pthread_mutex_lock(&exec_lock);
	if (job->exec_pid > 0)
		(void)kill(job->exec_pid, sig); /* the trampoline forwards it to the group */
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
 * Reads the command's output until the trampoline reports its end (endfd, the report pipe,
 * readable: ENDED, or the trampoline's death), then what is left in the pipe, without
 * waiting for other holders of its write end.
 */
static void pump_output(struct bulkhead_job *job, int fd, int endfd, struct exec_tell *tell)
{
	struct output *o;
	bool open = true;

	o = calloc(1, sizeof(*o));
	if (!o)
		return; /* the output goes unread: the command gets EPIPE or blocks; rare */
	o->job = job;
	while (open) {
		struct pollfd pfd[2] = { { .fd = fd, .events = POLLIN },
					 { .fd = endfd, .events = POLLIN } };

		if (poll(pfd, 2, exec_tell_timeout(tell)) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents)
			open = output_read(o, fd);
		if (pfd[1].revents) {
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
}

/*
 * Reads what the trampoline reported at the end (x->report: ENDED, or EOF if it died),
 * clears the published pid, then reaps the trampoline if it is gone or goes (a runner that
 * said ENDED stays for the next command). Returns the command's wait status.
 */
static int wait_trampoline(struct bulkhead_job *job, const struct exec_run_fds *x)
{
	struct exec_report rep = { 0 };
	int status = 0;
	bool ended;
	ssize_t n;

	while ((n = read(x->report, &rep, sizeof(rep))) < 0 && errno == EINTR)
		;
	ended = n == (ssize_t)sizeof(rep) && rep.kind == EXEC_REPORT_ENDED;
	/* Before the reap: while published, the pid is ours (a zombie at worst). */
	pthread_mutex_lock(&exec_lock);
	job->exec_pid = 0;
	pthread_mutex_unlock(&exec_lock);
	if (ended && x->runner)
		return rep.value;
	if (x->runner) {
		status = exec_runner_drop(); /* it died: the next command makes a new one */
	} else {
		while (waitpid(x->trampoline, &status, 0) < 0) {
			if (errno == EINTR)
				continue;
			/* Reaped by someone else (a plugin's waitpid(-1)). */
			status = W_EXITCODE(1, 0);
			break;
		}
	}
	if (ended)
		return rep.value;
	/* Killed from outside (it never is by us): the command went with it (PDEATHSIG). */
	if (WIFSIGNALED(status))
		return status;
	bulkhead_job_log(job, BULKHEAD_LOG_ERR, "the command's exit status was lost");
	return W_EXITCODE(1, 0);
}

/*
 * The job function of exec: specs: runs the command and waits for it. Sets job->outcome:
 * RETURNED (status = exit code), SIGNALED (status = signal) or SPAWN_FAILED (status = errno).
 */
static int kind_run(struct bulkhead_job *job)
{
	char **argv = NULL, **envp = NULL, *env_strings = NULL;
	struct exec_run_fds x = { .report = -1, .output = -1 };
	struct exec_tell tell;
	int status, r;

	if (bulkhead_job_cancelled(job)) {
		/* The worker is stopping (or a cancel came as it started): as if SIGTERM did. */
		job->outcome = BH_OUTCOME_SIGNALED;
		return SIGTERM;
	}
	r = build_argv(job, &argv);
	if (r == 0)
		r = build_envp(job, &envp, &env_strings);
	if (r == 0) {
		job->setting_failed = false;
		r = exec_start(job, argv, envp, &x);
		if (r < 0 && !job->setting_failed)
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

	exec_started(job, x.trampoline);
	tell = (struct exec_tell){ .job = job, .command = x.command,
				   .at = now_usec() + EXEC_TELL_AFTER_MS * USEC_PER_MSEC };
	if (x.output >= 0) {
		pump_output(job, x.output, x.report, &tell);
		close(x.output);
	}
	/* Until the trampoline reports the end: the EXEC frame if due. */
	while (!tell.told) {
		struct pollfd pfd = { .fd = x.report, .events = POLLIN };
		int k = poll(&pfd, 1, exec_tell_timeout(&tell));

		if (k > 0 || (k < 0 && errno != EINTR))
			break;
	}
	status = wait_trampoline(job, &x);
	close(x.report);
	if (WIFSIGNALED(status)) {
		job->outcome = BH_OUTCOME_SIGNALED;
		return WTERMSIG(status);
	}
	if (!WIFEXITED(status))
		return 1;
	if (WEXITSTATUS(status) != 0 &&
	    exit_set_has(job->spec->success_exit_status, (unsigned)WEXITSTATUS(status))) {
		bulkhead_job_log(job, BULKHEAD_LOG_INFO,
				 "the command exited %d: done (success_exit_status)",
				 WEXITSTATUS(status));
		return 0;
	}
	return WEXITSTATUS(status);
}

/* --- the job kind: exec:COMMAND ARGS... --- */

static int kind_init(struct job_spec *s, const char *run, struct job_kind_error *e)
{
	struct exec_cmd *c;

	if (cmd_new(run + strlen(EXEC_PREFIX), s->environment, &c, e->buf, sizeof(e->buf)) < 0) {
		e->status = JOB_STATUS_NOT_FOUND;
		e->what = "bad command";
		e->detail = e->buf;
		return -EINVAL;
	}
	s->data = c;
	return 0;
}

/* CANCEL or STOP while the command runs: SIGTERM to it, through its trampoline. */
static void kind_interrupt(struct bulkhead_job *job)
{
	exec_signal(job, SIGTERM);
}

static void kind_free(struct job_spec *s)
{
	cmd_free(s->data);
}

const struct job_kind exec_kind = {
	.prefix = EXEC_PREFIX,
	.init = kind_init,
	.run = kind_run,
	.interrupt = kind_interrupt,
	.free = kind_free,
};
