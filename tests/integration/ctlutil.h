/* SPDX-License-Identifier: MIT */
/*
 * Control-socket clients for the integration tests (test-control.c, test-durable.c): a raw
 * AF_UNIX stream connection with its own input buffer, one request and its reply line at a
 * time, and the JSON checks on replies. Every wait is a poll() through dmn_poll() (so the
 * daemon's output is taken in meanwhile) with a deadline; these are Check helpers that fail
 * the test instead of returning errors.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemonutil.h"

#define CALL_MS 10000 /* an ordinary reply, generous for ASan */

/* One client connection with its own input buffer (replies may come several at a time). */
struct conn {
	int fd;
	char *in;
	size_t len, size;
	bool eof; /* EOF or a read error seen: nothing more will come */
	int error; /* that read error (ECONNRESET: closed with our bytes unread), else 0 */
};

int conn_try_open(const char *path, struct conn *c);

void conn_open(struct daemon *d, struct conn *c);

void conn_close(struct conn *c);

/* Reads what is there (non-blocking). */
void conn_fill(struct conn *c);

/* The next complete line already received (malloc'd, without '\n'), or NULL. */
char *conn_take_line(struct conn *c);

/* The next reply line within timeout_ms; NULL on timeout or at EOF (c->eof tells which). */
char *conn_line(struct daemon *d, struct conn *c, int timeout_ms);

/* Waits for the daemon to close c (lines received meanwhile are kept). True if it did. */
bool conn_wait_eof(struct daemon *d, struct conn *c, int timeout_ms);

/* Sends all of data, waiting for room up to timeout_ms. 0, -ETIMEDOUT or -errno (EPIPE). */
int conn_send(struct daemon *d, struct conn *c, const void *data, size_t len, int timeout_ms);

void conn_send_ok(struct daemon *d, struct conn *c, const void *data, size_t len);

const char *jtext(json_object *o);

json_object *parse_reply(const char *line);

/* o's member `key`, which must be there with type t (an int passes for a double). */
json_object *jget(json_object *o, const char *key, json_type t);

int64_t jint(json_object *o, const char *key);

double jdouble(json_object *o, const char *key);

bool jbool(json_object *o, const char *key);

const char *jstr(json_object *o, const char *key);

void assert_ok(json_object *o);

/* {"ok":false,"error":"...`what`..."} */
void assert_error(json_object *o, const char *what);

/* Sends one request (a '\n' is added) and returns its reply line, which must come in timeout_ms. */
char *call_line(struct daemon *d, struct conn *c, const char *req, int timeout_ms);

/* call_line(), parsed. */
json_object *call_within(struct daemon *d, struct conn *c, const char *req, int timeout_ms);

json_object *call(struct daemon *d, struct conn *c, const char *req);

/* A request that must get an error reply with `what` in it. */
void call_error(struct daemon *d, struct conn *c, const char *req, const char *what);

/* ---- clients of another uid (root only) ---- */

struct as_user {
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t n_groups;
	bool until_eof; /* read on until the daemon closes */
};

/*
 * In a forked child with the given credentials: connect to the socket, send a status, and
 * report on a pipe: "connect: OK" or "connect: ERRNONAME", then the reply line, then (with
 * until_eof) "EOF" once the daemon closed. Returns that text (malloc'd).
 */
char *run_as(struct daemon *d, const struct as_user *u);

/* Opens the path down to the socket's directory (ours: the test's temp dirs) to all. */
void open_path_for_others(struct daemon *d);
