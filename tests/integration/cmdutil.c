/* SPDX-License-Identifier: MIT */
/* See cmdutil.h. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmdutil.h"
#include "testutil.h"

void cmd_free(struct cmd *c)
{
	free(c->out);
	free(c->err);
}

const char *cmd_env_or_null(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

const char *cmd_env_required(const char *name)
{
	const char *v = cmd_env_or_null(name);

	ck_assert_msg(v, "%s is not set (run this test with meson test)", name);
	return v;
}

/* NAME searched in $PATH; a malloc'd path, or NULL. */
char *cmd_find_in_path(const char *name)
{
	const char *path = getenv("PATH");
	char *copy, *save = NULL, *found = NULL;

	copy = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
	if (!copy)
		return NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		char *p;

		if (asprintf(&p, "%s/%s", *dir ? dir : ".", name) < 0)
			break;
		if (access(p, X_OK) == 0)
			found = p;
		else
			free(p);
	}
	free(copy);
	return found;
}

void cmd_append(char **buf, size_t *len, const char *data, size_t n)
{
	char *b;

	if (*len + n > CMD_OUTPUT_MAX)
		n = CMD_OUTPUT_MAX - *len;
	b = realloc(*buf, *len + n + 1);
	if (!b)
		return;
	memcpy(b + *len, data, n);
	*len += n;
	b[*len] = '\0';
	*buf = b;
}

/*
 * Runs argv (argv[0] a path) with the extra environment, collecting stdout and stderr
 * through pipes read together (so neither can fill up and stall the child) until both
 * close, then reaps it; all within CMD_TIMEOUT_MS. Returns 0 or -errno (-ETIMEDOUT).
 */
int cmd_run(const char *const argv[], const char *const env[], struct cmd *ret)
{
	int64_t deadline = tu_now_ms() + CMD_TIMEOUT_MS;
	struct pollfd pfd[2];
	size_t len[2] = { 0, 0 };
	char *buf[2];
	pid_t pid;
	int r;

	buf[0] = calloc(1, 1);
	buf[1] = calloc(1, 1);
	if (!buf[0] || !buf[1]) {
		free(buf[0]);
		free(buf[1]);
		return -ENOMEM;
	}
	r = tu_spawn(argv, env, -1, &pfd[0].fd, &pfd[1].fd, &pid);
	if (r < 0) {
		free(buf[0]);
		free(buf[1]);
		return r;
	}
	pfd[0].events = pfd[1].events = POLLIN;
	while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
		char chunk[4096];

		r = poll(pfd, 2, tu_ms_left(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			r = r == 0 ? -ETIMEDOUT : -errno;
			break;
		}
		for (int i = 0; i < 2; i++) {
			ssize_t n;

			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			n = read(pfd[i].fd, chunk, sizeof(chunk));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				continue;
			}
			cmd_append(&buf[i], &len[i], chunk, (size_t)n);
		}
		r = 0;
	}
	for (int i = 0; i < 2; i++)
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
	if (r == 0)
		r = tu_wait_exit(pid, tu_ms_left(deadline), &ret->status);
	if (r < 0) {
		tu_kill_wait(pid);
		free(buf[0]);
		free(buf[1]);
		return r;
	}
	ret->out = buf[0];
	ret->err = buf[1];
	return 0;
}

bool cmd_exited_0(const struct cmd *c)
{
	return WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0;
}

