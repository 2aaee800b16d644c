/* SPDX-License-Identifier: MIT */
/*
 * A PostgreSQL connection on the master's loop (issue 14): libpq's non-blocking calls driven
 * by sd-event, so the master never waits on the network (DESIGN §11). It connects, runs
 * statements one after the other (each a string of one or more statements, like PQexec),
 * hands each result to its callback, and when the connection is lost it says so once, fails
 * what was queued, and connects again with a backoff (100 ms, doubling, at most 5 s) until it
 * is back. What to do with a statement that failed for a lost connection is the caller's:
 * the store keeps its batch and sends it again when the connection is up.
 *
 * Not covered: a host name is resolved by libpq in PQconnectStart, which may block; give
 * a socket directory or `hostaddr=`.
 */
#pragma once

#include <libpq-fe.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

struct pg_conn;

struct pg_conn_ops {
	/* Connected: at first, and after each loss. */
	void (*up)(void *userdata);
	/* Lost, or a connection attempt failed: why (the server's or libpq's words), once
	 * per loss; attempts go on. */
	void (*down)(void *userdata, const char *why);
	/* A NOTIFY on a channel this connection LISTENs to (NULL: not wanted). Channels are
	 * not listened to again by themselves after a loss: up() is where to LISTEN. */
	void (*notified)(void *userdata, const char *channel, const char *payload);
};

/*
 * A statement's end: res is its last result (PQresultStatus() says whether it worked; the
 * connection's error message is in error), or NULL with error set if the connection was
 * lost first. res is freed after the callback returns.
 */
typedef void (*pg_result_fn)(void *userdata, const PGresult *res, const char *error);

/*
 * Starts connecting with conninfo (a libpq connection string). 0 and *ret, or -EINVAL (it
 * does not parse; *ret_error says why, malloc'd), -ENOMEM.
 */
int pg_conn_new(sd_event *e, const char *conninfo, const struct pg_conn_ops *ops,
		void *userdata, struct pg_conn **ret, char **ret_error);
/* Closes it; queued statements get no callback. */
void pg_conn_free(struct pg_conn *c);

bool pg_conn_is_up(const struct pg_conn *c);

/*
 * Queues sql (copied) to run when the ones before it have. 0, or -ENOTCONN while the
 * connection is down (nothing queued), -ENOMEM.
 */
int pg_conn_exec(struct pg_conn *c, const char *sql, pg_result_fn cb, void *userdata);

/*
 * One statement with parameters $1..$n as text (copied; NULL is SQL NULL), so values need
 * no quoting. Same returns as pg_conn_exec(); -E2BIG beyond 64 parameters.
 */
int pg_conn_exec_params(struct pg_conn *c, const char *sql, int n, const char *const *values,
			pg_result_fn cb, void *userdata);

/*
 * The same as a prepared statement: name (a string that outlives the connection, one per
 * sql) is prepared on the connection the first time it is used there (again after a loss),
 * so the server parses and plans sql once per connection, not at every call. A failed
 * prepare is the statement's failure. At most 32 names per connection; past them a
 * statement goes unnamed (parsed at each use).
 */
int pg_conn_exec_prepared(struct pg_conn *c, const char *name, const char *sql, int n,
			  const char *const *values, pg_result_fn cb, void *userdata);
