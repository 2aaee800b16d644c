/* SPDX-License-Identifier: MIT */
/* What the PostgreSQL tests share (pg-testdb.h). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon/store-pg.h"
#include "tests/pg/pg-testdb.h"

void pg_test_db(char *buf, size_t size)
{
	static unsigned n;
	char sql[128], *err = NULL;
	PGconn *c;
	PGresult *res;

	ck_assert_msg(getenv("PGHOST"), "run under tests/pg/with-postgres");
	ck_assert_msg(store_pg_connect("", &c, &err) == 0, "%s", err ? err : "?");
	snprintf(sql, sizeof(sql), "CREATE DATABASE t%d_%u", (int)getpid(), n);
	res = PQexec(c, sql);
	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
	PQclear(res);
	PQfinish(c);
	snprintf(buf, size, "dbname=t%d_%u", (int)getpid(), n++);
}

PGconn *pg_test_connect(const char *conninfo)
{
	char *err = NULL;
	PGconn *c;
	int r = store_pg_connect(conninfo, &c, &err);

	ck_assert_msg(r == 0, "%s", err ? err : "?");
	return c;
}

long pg_test_long(PGconn *c, const char *query)
{
	PGresult *res = PQexec(c, query);
	long v;

	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1, "%s: %s",
		      query, PQerrorMessage(c));
	v = atol(PQgetvalue(res, 0, 0));
	PQclear(res);
	return v;
}

void pg_test_ok(PGconn *c, const char *stmt)
{
	PGresult *res = PQexec(c, stmt);

	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s: %s", stmt,
		      PQerrorMessage(c));
	PQclear(res);
}
