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
/* Runs stmt, which must work. */
void pg_test_ok(PGconn *c, const char *stmt);
