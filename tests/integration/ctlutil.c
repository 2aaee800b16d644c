/* SPDX-License-Identifier: MIT */
/* Control-socket clients for the integration tests: see ctlutil.h. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctlutil.h"
#include "testutil.h"

/* ---- client connections ---- */

int conn_try_open(const char *path, struct conn *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = CALL_MS / 1000 }; /* a deadline for a blocking connect */

	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(c->fd);
		c->fd = -1;
		return r;
	}
	return 0;
}

void conn_open(struct daemon *d, struct conn *c)
{
	int r = conn_try_open(d->sock_path, c);

	ck_assert_msg(r == 0, "connect %s: %s; %s", d->sock_path, strerror(-r), dmn_describe(d));
}

void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Reads what is there (non-blocking). */
void conn_fill(struct conn *c)
{
	while (!c->eof) {
		ssize_t n;

		if (c->size - c->len < 65536) {
			c->size = c->size ? c->size * 2 : 131072;
			c->in = realloc(c->in, c->size);
			ck_assert_ptr_nonnull(c->in);
		}
		n = recv(c->fd, c->in + c->len, c->size - c->len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			c->eof = true;
			c->error = n < 0 ? errno : 0;
			return;
		}
		c->len += (size_t)n;
	}
}

/* The next complete line already received (malloc'd, without '\n'), or NULL. */
char *conn_take_line(struct conn *c)
{
	char *nl = c->len ? memchr(c->in, '\n', c->len) : NULL, *line;
	size_t len;

	if (!nl)
		return NULL;
	len = (size_t)(nl - c->in);
	line = strndup(c->in, len);
	ck_assert_ptr_nonnull(line);
	memmove(c->in, nl + 1, c->len - len - 1);
	c->len -= len + 1;
	return line;
}

/* The next reply line within timeout_ms; NULL on timeout or at EOF (c->eof tells which). */
char *conn_line(struct daemon *d, struct conn *c, int timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		char *line = conn_take_line(c);
		int left = tu_ms_left(deadline);

		if (line || c->eof)
			return line;
		dmn_poll(d, &p, 1, left);
		if (p.revents)
			conn_fill(c);
		else if (left == 0)
			return NULL;
	}
}

/* Waits for the daemon to close c (lines received meanwhile are kept). True if it did. */
bool conn_wait_eof(struct daemon *d, struct conn *c, int timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;

	while (!c->eof && tu_ms_left(deadline) > 0) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };

		dmn_poll(d, &p, 1, tu_ms_left(deadline));
		if (p.revents)
			conn_fill(c);
	}
	return c->eof;
}

/* Sends all of data, waiting for room up to timeout_ms. 0, -ETIMEDOUT or -errno (EPIPE). */
int conn_send(struct daemon *d, struct conn *c, const void *data, size_t len, int timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;
	const char *p = data;

	while (len > 0) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
		ssize_t n = send(c->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if (tu_ms_left(deadline) == 0)
			return -ETIMEDOUT;
		dmn_poll(d, &pfd, 1, tu_ms_left(deadline));
	}
	return 0;
}

void conn_send_ok(struct daemon *d, struct conn *c, const void *data, size_t len)
{
	int r = conn_send(d, c, data, len, CALL_MS);

	ck_assert_msg(r == 0, "sending %zu bytes: %s; %s", len, strerror(-r), dmn_describe(d));
}

/* ---- JSON ---- */

const char *jtext(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
}

json_object *parse_reply(const char *line)
{
	json_object *o = json_tokener_parse(line);

	ck_assert_msg(o && json_object_is_type(o, json_type_object),
		      "a reply that is not a JSON object: %.300s", line);
	return o;
}

/* o's member `key`, which must be there with type t (an int passes for a double). */
json_object *jget(json_object *o, const char *key, json_type t)
{
	json_object *v;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no \"%s\" in %.600s", key, jtext(o));
	ck_assert_msg(json_object_is_type(v, t) ||
			      (t == json_type_double && json_object_is_type(v, json_type_int)),
		      "\"%s\" is not a %s in %.600s", key, json_type_to_name(t), jtext(o));
	return v;
}

int64_t jint(json_object *o, const char *key)
{
	return json_object_get_int64(jget(o, key, json_type_int));
}

double jdouble(json_object *o, const char *key)
{
	return json_object_get_double(jget(o, key, json_type_double));
}

bool jbool(json_object *o, const char *key)
{
	return json_object_get_boolean(jget(o, key, json_type_boolean));
}

const char *jstr(json_object *o, const char *key)
{
	return json_object_get_string(jget(o, key, json_type_string));
}

void assert_ok(json_object *o)
{
	ck_assert_msg(jbool(o, "ok"), "not ok: %.600s", jtext(o));
}

/* {"ok":false,"error":"...`what`..."} */
void assert_error(json_object *o, const char *what)
{
	ck_assert_msg(!jbool(o, "ok"), "ok, expected an error with \"%s\": %.600s", what, jtext(o));
	ck_assert_msg(strstr(jstr(o, "error"), what), "expected an error with \"%s\": %.600s", what,
		      jtext(o));
}

/* Sends one request (a '\n' is added) and returns its reply line, which must come in timeout_ms. */
char *call_line(struct daemon *d, struct conn *c, const char *req, int timeout_ms)
{
	size_t len = strlen(req);
	char *line, *buf = malloc(len + 1);

	ck_assert_ptr_nonnull(buf);
	memcpy(buf, req, len);
	buf[len] = '\n';
	conn_send_ok(d, c, buf, len + 1);
	free(buf);
	line = conn_line(d, c, timeout_ms);
	ck_assert_msg(line, "no reply to %.200s within %dms (%s); %s", req, timeout_ms,
		      c->eof ? "connection closed" : "timed out", dmn_describe(d));
	return line;
}

/* call_line(), parsed. */
json_object *call_within(struct daemon *d, struct conn *c, const char *req, int timeout_ms)
{
	char *line = call_line(d, c, req, timeout_ms);
	json_object *o = parse_reply(line);

	free(line);
	return o;
}

json_object *call(struct daemon *d, struct conn *c, const char *req)
{
	return call_within(d, c, req, CALL_MS);
}

/* A request that must get an error reply with `what` in it. */
void call_error(struct daemon *d, struct conn *c, const char *req, const char *what)
{
	json_object *o = call(d, c, req);

	ck_assert_msg(!jbool(o, "ok") && strstr(jstr(o, "error"), what),
		      "request %.100s: expected an error with \"%s\": %.600s", req, what, jtext(o));
	json_object_put(o);
}

/* ---- clients of another uid ---- */

/*
 * In a forked child with the given credentials: connect to the socket, send a status, and
 * report on a pipe: "connect: OK" or "connect: ERRNONAME", then the reply line, then (with
 * until_eof) "EOF" once the daemon closed. Returns that text (malloc'd).
 */
char *run_as(struct daemon *d, const struct as_user *u)
{
	int p[2], st;
	char *out;
	pid_t pid;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		static const char req[] = "{\"command\":\"status\"}\n";
		int64_t deadline = tu_now_ms() + CALL_MS;
		char buf[8192];
		size_t len = 0;
		bool line = false;
		int fd;

		close(p[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setgroups(u->n_groups, u->groups) < 0 ||
		    setresgid(u->gid, u->gid, u->gid) < 0 ||
		    setresuid(u->uid, u->uid, u->uid) < 0) {
			dprintf(p[1], "credentials: %s\n", strerrorname_np(errno));
			_exit(1);
		}
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->sock_path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			dprintf(p[1], "connect: %s\n", strerrorname_np(errno));
			_exit(0);
		}
		dprintf(p[1], "connect: OK\n");
		(void)!send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
		while (tu_ms_left(deadline) > 0) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			ssize_t n;

			if (poll(&pfd, 1, tu_ms_left(deadline)) <= 0)
				continue;
			n = recv(fd, buf + len, sizeof(buf) - len - 1, MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				dprintf(p[1], "%.*sEOF\n", (int)len, buf);
				_exit(0);
			}
			len += (size_t)n;
			if (!line && memchr(buf, '\n', len)) {
				line = true;
				if (!u->until_eof)
					break;
			}
			if (len == sizeof(buf) - 1)
				break;
		}
		dprintf(p[1], "%.*s%s", (int)len, buf, line ? "" : "\nno reply\n");
		_exit(0);
	}
	close(p[1]);
	out = tu_read_all(p[0], CALL_MS + 5000);
	close(p[0]);
	ck_assert_int_eq(tu_wait_exit(pid, CALL_MS, &st), 0);
	ck_assert_ptr_nonnull(out);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client as uid %u: %s: %s",
		      (unsigned)u->uid, tu_describe_status(st), out);
	dmn_pump(d, 0);
	return out;
}

/* Every directory from / down to `dir` lets others through (for the clients run as nobody). */
static void assert_path_searchable(const char *dir)
{
	char path[512];

	snprintf(path, sizeof(path), "%s", dir);
	for (char *s = path + 1;; s++) {
		struct stat st;
		char save = *s;

		if (*s != '/' && *s != '\0')
			continue;
		*s = '\0';
		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert_msg(st.st_mode & S_IXOTH,
			      "%s is not searchable by others, so no uid but ours can reach the "
			      "socket: run the test with a TMPDIR that is",
			      path);
		*s = save;
		if (!save)
			break;
	}
}

/* Opens the path down to the socket's directory (ours: the test's temp dirs) to all. */
void open_path_for_others(struct daemon *d)
{
	char *parent = strdup(d->dir);

	ck_assert_ptr_nonnull(parent);
	*strrchr(parent, '/') = '\0';
	ck_assert_int_eq(chmod(parent, 0755), 0);
	ck_assert_int_eq(chmod(d->dir, 0755), 0);
	ck_assert_int_eq(chmod(d->run_dir, 0755), 0);
	free(parent);
	assert_path_searchable(d->run_dir);
}
