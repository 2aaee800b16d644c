/* SPDX-License-Identifier: MIT */
/*
 * The client end of the control socket: one connection, requests out as single lines, reply
 * lines in through a buffer that the connection owns. Nothing sleeps: every wait is a poll()
 * bounded by the caller's deadline. The socket is CLOEXEC from birth and non-blocking once
 * connected (connect itself blocks, bounded by SO_SNDTIMEO, because a non-blocking AF_UNIX
 * connect cannot be polled for completion when the listener's backlog is full).
 *
 * Invariants: buf[0..len) holds bytes received and not yet returned; none of buf[0..scanned)
 * is '\n'. A reply line is at most CONTROL_CLIENT_REPLY_MAX bytes, so buf never grows past that
 * plus one read chunk.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/control-client.h"

#define READ_CHUNK (64u << 10)

_Static_assert(CONTROL_CLIENT_TIMEOUT_MS == 15000, "control_client_strerror() says 15 s");

struct control_client {
	int fd;
	char *buf;
	size_t len, cap, scanned;
};

int64_t control_client_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ms_left(int64_t deadline)
{
	int64_t left = deadline - control_client_now_ms();

	return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

int control_client_socket_path(const char *option, char **ret)
{
	const char *v;
	char *p;

	if (option)
		p = strdup(option);
	else if ((v = env_nonempty("BULKHEAD_SOCKET")))
		p = strdup(v);
	else if ((v = env_nonempty("RUNTIME_DIRECTORY"))) {
		/* systemd may pass several, separated by ':': the first is ours */
		if (asprintf(&p, "%.*s/control.sock", (int)strcspn(v, ":"), v) < 0)
			p = NULL;
	} else
		p = strdup(CONTROL_CLIENT_SOCKET_DEFAULT);
	if (!p)
		return -ENOMEM;
	*ret = p;
	return 0;
}

int control_client_connect(const char *path, int64_t deadline, struct control_client **ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct control_client *c;
	struct timeval tv;
	int left, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		r = -errno;
		free(c);
		return r;
	}
	for (;;) {
		left = ms_left(deadline);
		if (left == 0) {
			r = -ETIMEDOUT;
			goto fail;
		}
		tv = (struct timeval){ .tv_sec = left / 1000, .tv_usec = left % 1000 * 1000 };
		if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
			r = -errno;
			goto fail;
		}
		if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (errno == EINTR)
			continue;
		/* the backlog stayed full until SO_SNDTIMEO ran out */
		r = errno == EAGAIN || errno == EINPROGRESS ? -ETIMEDOUT : -errno;
		goto fail;
	}
	tv = (struct timeval){};
	if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0) {
		r = -errno;
		goto fail;
	}
	*ret = c;
	return 0;
fail:
	control_client_free(c);
	return r;
}

void control_client_free(struct control_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c);
}

int control_client_fd(const struct control_client *c)
{
	return c->fd;
}

/* Waits until fd is ready for `events` or deadline passes. 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	for (;;) {
		int r = poll(&pfd, 1, ms_left(deadline));

		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

int control_client_send(struct control_client *c, const char *request, int64_t deadline)
{
	size_t len = strlen(request), done = 0;
	char *line;
	int r = 0;

	if (memchr(request, '\n', len))
		return -EINVAL;
	/* one buffer, so that the line leaves in one send() whenever it fits */
	line = malloc(len + 1);
	if (!line)
		return -ENOMEM;
	memcpy(line, request, len);
	line[len++] = '\n';
	while (done < len) {
		ssize_t n = send(c->fd, line + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n >= 0) {
			done += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			r = -errno;
			break;
		}
		r = wait_fd(c->fd, POLLOUT, deadline);
		if (r < 0)
			break;
	}
	free(line);
	return r;
}

/* Makes room for READ_CHUNK more bytes. */
static int grow(struct control_client *c)
{
	size_t want = c->len + READ_CHUNK, cap = c->cap ? c->cap : READ_CHUNK;
	char *b;

	if (want <= c->cap)
		return 0;
	while (cap < want)
		cap *= 2;
	b = realloc(c->buf, cap);
	if (!b)
		return -ENOMEM;
	c->buf = b;
	c->cap = cap;
	return 0;
}

/* The first complete line in buf, if any: 1 and *ret, or 0. */
static int take_line(struct control_client *c, char **ret)
{
	char *nl = memchr(c->buf + c->scanned, '\n', c->len - c->scanned);
	size_t n;
	char *line;

	if (!nl) {
		c->scanned = c->len;
		return c->len > CONTROL_CLIENT_REPLY_MAX ? -EMSGSIZE : 0;
	}
	n = (size_t)(nl - c->buf);
	if (n > CONTROL_CLIENT_REPLY_MAX)
		return -EMSGSIZE;
	line = malloc(n + 1);
	if (!line)
		return -ENOMEM;
	memcpy(line, c->buf, n);
	line[n] = '\0';
	c->len -= n + 1;
	memmove(c->buf, nl + 1, c->len);
	c->scanned = 0;
	*ret = line;
	return 1;
}

int control_client_try_receive(struct control_client *c, char **ret)
{
	int r;

	for (;;) {
		ssize_t n;

		r = c->len ? take_line(c, ret) : 0;
		if (r != 0)
			return r;
		r = grow(c);
		if (r < 0)
			return r;
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN ? 0 : -errno;
	}
}

int control_client_receive(struct control_client *c, int64_t deadline, char **ret)
{
	for (;;) {
		int r = control_client_try_receive(c, ret);

		if (r != 0)
			return r;
		r = wait_fd(c->fd, POLLIN, deadline);
		if (r < 0)
			return r;
	}
}

int control_client_call(struct control_client *c, const char *request, int64_t deadline, char **ret)
{
	int r = control_client_send(c, request, deadline), q;

	if (r == -EPIPE || r == -ECONNRESET) {
		/* Refused before our request got in ("permission denied", "too many clients"):
		 * the daemon's one line may be waiting for us all the same. */
		q = control_client_receive(c, deadline, ret);
		return q == 1 ? q : r;
	}
	return r < 0 ? r : control_client_receive(c, deadline, ret);
}

const char *control_client_strerror(int err)
{
	switch (err) {
	case -ETIMEDOUT:
		return "no answer within 15 s";
	case -ECONNRESET:
	case -EPIPE:
		return "the daemon closed the connection";
	case -EMSGSIZE:
		return "reply larger than 16 MiB";
	default:
		return strerror(-err);
	}
}
