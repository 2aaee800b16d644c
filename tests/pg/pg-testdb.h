/* SPDX-License-Identifier: MIT */
/*
 * What the PostgreSQL tests share (they run under tests/pg/with-postgres, which puts PGHOST
 * and the rest in the environment): a database of a test's own, and statements that must work.
 */
#pragma once

#include <libpq-fe.h>
#include <stddef.h>

/* Creates a fresh database and puts its connection string ("dbname=...") in buf. */
void pg_test_db(char *buf, size_t size);
/* A connection to conninfo, or the test fails with the reason. */
PGconn *pg_test_connect(const char *conninfo);
/* The one value query answers, as a number; the test fails if it does not answer one. */
long pg_test_long(PGconn *c, const char *query);
/* pg_test_long() of a printf-formatted query. */
long pg_test_longf(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The first unfinished jobs on stderr (what a test that timed out left). */
void pg_test_show_unfinished(PGconn *c);
/* Runs stmt, which must work. */
void pg_test_ok(PGconn *c, const char *stmt);

/*
 * A link that can be cut (never returns: run it in a child): forwards every connection made
 * to listen_path to the server's socket server_path, both ways. SIGSTOP it and the link is
 * cut the way a network cut is (nothing arrives, nothing is refused); SIGCONT heals it.
 */
void pg_test_proxy(const char *listen_path, const char *server_path) __attribute__((noreturn));
/* A Unix socket listening at path (-1 if it cannot be made). */
int pg_test_listen_unix(const char *path);
/* The same proxy from a listening socket (bound before the fork: nobody connects first). */
void pg_test_proxy_fd(int listen_fd, const char *server_path) __attribute__((noreturn));

/*
 * Audit tables on db's bulkhead.jobs (its schema made): `finals` (id, state, epoch, writer),
 * every move of a job into a final state; `rewrites`, every change of a job that had ended;
 * `takes` (id, from_node, to_node, at µs), every take of a leased job by another node.
 */
void pg_test_audit(PGconn *db);
