/* SPDX-License-Identifier: MIT */
/*
 * The plugin probe, the master's side. Loading a plugin runs its code (its constructors), so
 * neither the master nor the CLI ever dlopen()s one: they spawn `bulkhead-worker --probe RUN`
 * (children/probe.c), which loads it exactly as a worker would and prints what went wrong,
 * and read its stdout. One process per distinct RUN, so that a constructor that crashes the
 * probe is blamed on the right plugin: the probe dies by the signal, this file waits for it
 * and says so ("constructor crashed the probe: SIGSEGV"); the caller lives on.
 *
 * The probe starts with an empty signal mask and default dispositions (the master blocks
 * signals for sd-event, and posix_spawn() would pass that on), stdin and stderr on
 * /dev/null, stdout on a pipe read here with a deadline (CONFIG_PROBE_TIMEOUT_MS; a pidfd
 * tells when it exited, so a plugin that leaves a process behind holding the pipe does not
 * hold us up), and is SIGKILLed and reaped if it is late. This blocks the caller: it runs at
 * start-up, on reload and in `bulkhead run` / `check-config`, before any worker exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int spawn_probe(const char *worker, const char *run, int out, pid_t *ret_pid)
{
	char *const argv[] = { (char *)worker, (char *)"--probe", (char *)run, NULL };
	extern char **environ;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int r;

	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	r = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (r == 0)
		r = posix_spawnattr_setsigmask(&at, &none);
	if (r == 0)
		r = posix_spawnattr_setsigdefault(&at, &all);
	if (r == 0)
		r = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (r == 0)
		r = posix_spawn_file_actions_adddup2(&fa, out, 1);
	if (r == 0)
		r = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (r == 0)
		r = posix_spawn(ret_pid, worker, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return -r;
}

/* Reads the probe's stdout until it exits or the deadline. True if it exited in time. */
static bool read_output(int fd, pid_t pid, int timeout_ms, char *buf, size_t size, size_t *ret_len)
{
	int64_t deadline = now_ms() + timeout_ms;
	int pidfd = pidfd_open(pid, 0);
	bool exited = false, open = true;
	size_t len = 0;

	while (open && !exited) {
		struct pollfd pfd[2] = { { .fd = fd, .events = POLLIN },
					 { .fd = pidfd, .events = POLLIN } };
		int64_t left = deadline - now_ms();
		int n;

		if (left <= 0)
			break;
		n = poll(pfd, pidfd >= 0 ? 2 : 1, (int)left);
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0)
			continue;
		if (pidfd >= 0 && pfd[1].revents)
			exited = true;
		/* The pipe is non-blocking: read what is there, stop at EOF. */
		for (;;) {
			char junk[512];
			char *to = len + 1 < size ? buf + len : junk;
			size_t room = len + 1 < size ? size - 1 - len : sizeof(junk);
			ssize_t r = read(fd, to, room);

			if (r > 0) {
				if (to != junk)
					len += (size_t)r;
				continue;
			}
			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0)
				open = false;
			break;
		}
	}
	if (pidfd < 0 && !open)
		exited = true; /* no pidfd: EOF is the best sign of exit we have */
	if (pidfd >= 0) {
		if (!exited) {
			struct pollfd p = { .fd = pidfd, .events = POLLIN };
			int64_t left = deadline - now_ms();

			/* Stdout closed early: wait for the exit itself, still on the deadline. */
			exited = left > 0 && poll(&p, 1, (int)left) > 0;
		}
		close(pidfd);
	}
	buf[len] = '\0';
	*ret_len = len;
	return exited;
}

static const char *signal_name(int sig, char *buf, size_t size)
{
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev)
		snprintf(buf, size, "SIG%s", abbrev);
	else
		snprintf(buf, size, "signal %d", sig);
	return buf;
}

/* The probe's lines without their "RUN: " prefix, joined with "; ". */
static char *reasons(const char *run, char *out)
{
	size_t prefix = strlen(run), res_len = 0;
	char *line, *save = NULL, *res = NULL;
	bool first = true;
	FILE *f = open_memstream(&res, &res_len);

	if (!f)
		return NULL;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, run, prefix) == 0 && strncmp(line + prefix, ": ", 2) == 0)
			line += prefix + 2;
		fprintf(f, "%s%s", first ? "" : "; ", line);
		first = false;
	}
	if (fclose(f) != 0) {
		free(res);
		return NULL;
	}
	return res;
}

int config_probe_start(const char *worker, const char *run, pid_t *ret_pid, int *ret_fd)
{
	int p[2], r;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	r = spawn_probe(worker, run, p[1], ret_pid);
	close(p[1]);
	if (r < 0) {
		close(p[0]);
		return r;
	}
	(void)fcntl(p[0], F_SETFL, O_NONBLOCK);
	*ret_fd = p[0];
	return 0;
}

int config_probe_verdict(const char *run, bool exited, int status, int timeout_ms, char *out,
			 char **ret_reason)
{
	char sig[32];
	int r;

	*ret_reason = NULL;
	if (!exited) {
		r = asprintf(ret_reason, "the plugin probe did not finish within %d ms",
			     timeout_ms);
	} else if (WIFSIGNALED(status)) {
		r = asprintf(ret_reason, "constructor crashed the probe: %s",
			     signal_name(WTERMSIG(status), sig, sizeof(sig)));
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		return 0;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 1 && *out) {
		*ret_reason = reasons(run, out);
		r = *ret_reason ? 0 : -1;
	} else {
		return -EIO; /* not a probe's exit: the worker binary is not what we think */
	}
	if (r < 0) {
		*ret_reason = NULL;
		return -ENOMEM;
	}
	return -EINVAL;
}

int config_probe_run(const char *worker, const char *run, int timeout_ms, char **ret_reason)
{
	char out[CONFIG_PROBE_OUTPUT_MAX];
	int fd, status = 0, r;
	size_t len;
	bool exited;
	pid_t pid;

	*ret_reason = NULL;
	r = config_probe_start(worker, run, &pid, &fd);
	if (r < 0)
		return r;
	exited = read_output(fd, pid, timeout_ms, out, sizeof(out), &len);
	close(fd);
	if (!exited)
		(void)kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return config_probe_verdict(run, exited, status, timeout_ms, out, ret_reason);
}

int config_probe_plugins(const struct config *c, const char *worker, int budget_ms,
			 char **ret_errors)
{
	char *errors = NULL, *reason;
	size_t errors_len = 0;
	struct timespec t0;
	int ret = 0;
	FILE *f;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (ret_errors)
		*ret_errors = NULL;
	f = open_memstream(&errors, &errors_len);
	if (!f)
		return -ENOMEM;
	for (unsigned i = 0; i < c->n_groups; i++) {
		const struct group_config *g = &c->groups[i];
		bool seen = false;
		int r, timeout;

		if (g->kind != JOB_KIND_PLUGIN)
			continue;
		/* One probe per distinct run; its verdict goes to every group using it. */
		for (unsigned j = 0; j < i && !seen; j++)
			seen = c->groups[j].kind == JOB_KIND_PLUGIN &&
			       strcmp(c->groups[j].run, g->run) == 0;
		if (seen)
			continue;
		timeout = CONFIG_PROBE_TIMEOUT_MS;
		if (budget_ms > 0) {
			struct timespec t;
			long spent;

			clock_gettime(CLOCK_MONOTONIC, &t);
			spent = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
			if (budget_ms - spent < timeout)
				timeout = budget_ms - spent > 1 ? (int)(budget_ms - spent) : 1;
		}
		r = config_probe_run(worker, g->run, timeout, &reason);
		if (r == -EINVAL) {
			for (unsigned j = i; j < c->n_groups; j++) {
				const struct group_config *h = &c->groups[j];

				if (h->kind == JOB_KIND_PLUGIN && strcmp(h->run, g->run) == 0)
					fprintf(f, "%s:%u: [job %s] run = %s: %s\n", c->path,
						h->run_line ? h->run_line : h->line, h->name,
						h->run, reason);
			}
			free(reason);
			if (ret == 0)
				ret = -EINVAL;
		} else if (r < 0) {
			fprintf(f, "%s: cannot run the plugin probe %s: %s\n", c->path, worker,
				r == -EIO ? "it did not behave like bulkhead-worker --probe"
					  : strerror(-r));
			ret = r;
			break;
		}
	}
	if (fclose(f) != 0) {
		free(errors);
		return -ENOMEM;
	}
	if (ret < 0 && ret_errors)
		*ret_errors = errors;
	else
		free(errors);
	return ret;
}
