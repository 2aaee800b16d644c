/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL store's connection and schema (daemon/store-pg.c) against a real server:
 * tests/pg/with-postgres starts one of its own (PGHOST etc. in the environment) and stops it
 * afterwards. Each test works in a database of its own.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/pg-groups.h"
#include "daemon/store-pg.h"
#include "tests/pg/pg-testdb.h"

static char conninfo[128];

/* A fresh database for this test: its connection string in conninfo. */
static void setup(void)
{
	pg_test_db(conninfo, sizeof(conninfo));
}

static PGconn *connect_ok(void)
{
	return pg_test_connect(conninfo);
}

#define sql_long pg_test_long
#define sql_ok pg_test_ok

/* An empty database gets the schema; a second time finds it and changes nothing. */
START_TEST(test_creates_once)
{
	PGconn *c = connect_ok();
	char *err = NULL;

	ck_assert_int_eq(store_pg_schema(c, &err), 0);
	ck_assert_int_eq(sql_long(c, "SELECT version FROM bulkhead.schema_version"),
			 STORE_PG_VERSION);
	ck_assert_int_eq(sql_long(c, "SELECT count(*) FROM information_schema.tables WHERE "
				     "table_schema = 'bulkhead'"),
			 8);
	/* The SQLite store's job columns are all there, with the lease. */
	ck_assert_int_eq(sql_long(c, "SELECT count(*) FROM information_schema.columns WHERE "
				     "table_schema = 'bulkhead' AND table_name = 'jobs' AND "
				     "column_name IN ('id', 'grp', 'instance', 'state', 'cause', "
				     "'cause_detail', 'alone', 'attempts', 'reruns', 'runs', 'flags', "
				     "'host_deaths', 'input', 'result', 'accepted_at', 'started_ms', "
				     "'ended_ms', 'node', 'lease_owner', 'lease_epoch', "
				     "'lease_expires')"),
			 21);
	sql_ok(c, "INSERT INTO bulkhead.meta VALUES ('n_jobs', 7)");
	ck_assert_int_eq(store_pg_schema(c, &err), STORE_PG_VERSION);
	ck_assert_int_eq(sql_long(c, "SELECT value FROM bulkhead.meta WHERE key = 'n_jobs'"), 7);
	ck_assert_int_eq(sql_long(c, "SELECT count(*) FROM bulkhead.schema_version"), 1);
	PQfinish(c);
}
END_TEST

/*
 * A version 1 database (before the exec settings: groups without the exec column) is
 * migrated in place: its groups get the defaults (""); a new one is made at the latest.
 */
START_TEST(test_migrates_v1)
{
	PGconn *c = connect_ok();
	char *err = NULL;

	ck_assert_int_eq(store_pg_schema(c, &err), 0);
	ck_assert_int_eq(sql_long(c, "SELECT count(*) FROM information_schema.columns WHERE "
				     "table_schema = 'bulkhead' AND table_name = 'groups' AND "
				     "column_name = 'exec'"),
			 1);
	/* Back to what version 1 made, with a group in it. */
	sql_ok(c, "ALTER TABLE bulkhead.groups DROP COLUMN exec");
	sql_ok(c, "UPDATE bulkhead.schema_version SET version = 1");
	sql_ok(c, "INSERT INTO bulkhead.groups VALUES (1, 'old', 'main', 'exec:/bin/true', 2, '',"
		  " '', '', '', 1, 1000000, 3, 2, false, 0, 1, 1, 0, 0, 0, 0, 0, 0)");
	ck_assert_int_eq(store_pg_schema(c, &err), 1);
	ck_assert_int_eq(sql_long(c, "SELECT version FROM bulkhead.schema_version"), 2);
	ck_assert_int_eq(sql_long(c, "SELECT count(*) FROM bulkhead.groups WHERE name = 'old' AND "
				     "exec = ''"),
			 1);
	PQfinish(c);
}
END_TEST

/*
 * A group's row keeps its exec settings and retry_delay: written by pg_group_values() with
 * the insert, read back by pg_group_parse() as they were; the defaults are "".
 */
START_TEST(test_group_row_exec_settings)
{
	PGconn *c = connect_ok();
	struct group_config g = { .name = "cmd",
				  .run = "exec:/bin/true",
				  .kind = JOB_KIND_EXEC,
				  .args = "",
				  .count = 1,
				  .timeout = 1000000,
				  .max_attempts = 3,
				  .expect = JOB_DONE };
	struct group_config d = g;
	struct pg_group_values v;
	struct pg_group_row row;
	char *err = NULL;
	PGresult *res;

	ck_assert_int_eq(store_pg_schema(c, &err), 0);
	config_group_exec_defaults(&g);
	config_group_exec_defaults(&d);
	g.environment = "A=1 \"B=two words\"";
	g.working_directory = "/tmp";
	g.success_exit_status[0] |= 1u << 1;
	g.nice = -3;
	g.retry_delay_min = 1000;
	g.retry_delay_max = 4000;
	ck_assert_int_eq(pg_group_values(&v, 7, &g, "main", false, 0), 0);
	res = PQexecParams(c, pg_group_insert_sql, PG_GROUP_N_PARAMS, NULL, v.v, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
	PQclear(res);
	pg_group_values_done(&v);
	snprintf(d.name, sizeof(d.name), "plain");
	ck_assert_int_eq(pg_group_values(&v, 8, &d, "main", false, 0), 0);
	res = PQexecParams(c, pg_group_insert_sql, PG_GROUP_N_PARAMS, NULL, v.v, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
	PQclear(res);
	pg_group_values_done(&v);
	ck_assert_int_eq(sql_long(c, "SELECT count(*) FROM bulkhead.groups WHERE id = 8 AND "
				     "exec = ''"),
			 1);

	res = PQexec(c, "SELECT " PG_GROUP_COLUMNS " FROM bulkhead.groups ORDER BY id");
	ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	ck_assert_int_eq(pg_group_parse(res, 0, &row), 0);
	ck_assert(config_group_exec_equal(&row.cfg, &g));
	ck_assert_str_eq(row.cfg.environment, "A=1 \"B=two words\"");
	pg_group_row_done(&row);
	ck_assert_int_eq(pg_group_parse(res, 1, &row), 0);
	ck_assert(config_group_exec_equal(&row.cfg, &d));
	pg_group_row_done(&row);
	PQclear(res);
	/* A damaged one is refused. */
	sql_ok(c, "UPDATE bulkhead.groups SET exec = 'nice = 99' WHERE id = 8");
	res = PQexec(c, "SELECT " PG_GROUP_COLUMNS " FROM bulkhead.groups WHERE id = 8");
	ck_assert_int_eq(pg_group_parse(res, 0, &row), -EBADMSG);
	pg_group_row_done(&row);
	PQclear(res);
	PQfinish(c);
}
END_TEST

/* Nodes that start together: each makes sure of the schema; it is made once. */
START_TEST(test_nodes_start_together)
{
	enum { NODES = 6 };
	pid_t pids[NODES];

	for (int i = 0; i < NODES; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			char *err = NULL;
			PGconn *c;
			int r = store_pg_connect(conninfo, &c, &err);

			if (r == 0)
				r = store_pg_schema(c, &err);
			if (r < 0)
				fprintf(stderr, "node %d: %s\n", i, err ? err : "?");
			_exit(r < 0 ? 1 : 0);
		}
	}
	for (int i = 0; i < NODES; i++) {
		int status;

		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "node %d failed", i);
	}
	{
		PGconn *c = connect_ok();

		ck_assert_int_eq(sql_long(c, "SELECT count(*) FROM bulkhead.schema_version"), 1);
		PQfinish(c);
	}
}
END_TEST

/* A newer schema, or a damaged one, is refused with the server named; nothing is changed. */
START_TEST(test_refuses_newer_and_damaged)
{
	PGconn *c = connect_ok();
	char *err = NULL, want[128];

	ck_assert_int_eq(store_pg_schema(c, &err), 0);
	sql_ok(c, "UPDATE bulkhead.schema_version SET version = 9");
	ck_assert_int_eq(store_pg_schema(c, &err), -EPROTO);
	snprintf(want, sizeof(want), "newer bulkhead (schema version 9; this one knows up to %d)",
		 STORE_PG_VERSION);
	ck_assert_msg(strstr(err, want) && strstr(err, "postgresql ") && strstr(err, conninfo + 7),
		      "%s", err);
	free(err);
	ck_assert_int_eq(sql_long(c, "SELECT version FROM bulkhead.schema_version"), 9);

	sql_ok(c, "DELETE FROM bulkhead.schema_version");
	ck_assert_int_eq(store_pg_schema(c, &err), -EBADMSG);
	ck_assert_msg(strstr(err, "damaged") && strstr(err, "0 rows"), "%s", err);
	free(err);
	sql_ok(c, "DROP TABLE bulkhead.schema_version");
	ck_assert_int_eq(store_pg_schema(c, &err), -EBADMSG);
	ck_assert_msg(strstr(err, "no table schema_version"), "%s", err);
	free(err);
	/* The connection is still usable after a refusal (its transaction rolled back). */
	ck_assert_int_eq(sql_long(c, "SELECT 1"), 1);
	PQfinish(c);
}
END_TEST

/* Connection strings that cannot work: each a clear error, no connection. */
START_TEST(test_bad_connections)
{
	char *err = NULL;
	PGconn *c = (PGconn *)1;

	ck_assert_int_eq(store_pg_connect("nonsense without equals", &c, &err), -EINVAL);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(err, "connection string: ") && strstr(err, "nonsense"), "%s", err);
	free(err);
	/* The string itself is not repeated: it may hold a password. */
	ck_assert_int_eq(store_pg_connect("password=s3cret nonsense", &c, &err), -EINVAL);
	ck_assert_msg(!strstr(err, "s3cret"), "%s", err);
	free(err);
	ck_assert_int_eq(store_pg_connect("host=/nonexistent/dir", &c, &err), -ECONNREFUSED);
	ck_assert_msg(strstr(err, "postgresql /nonexistent/dir:") && strstr(err, "cannot connect"),
		      "%s", err);
	free(err);
	ck_assert_int_eq(store_pg_connect("dbname=no_such_db", &c, &err), -ECONNREFUSED);
	ck_assert_msg(strstr(err, "no_such_db"), "%s", err);
	free(err);
}
END_TEST

/* The blocking join a master makes at its start: epochs per name, slots kept, last ids. */
START_TEST(test_join_waiting)
{
	PGconn *c = connect_ok();
	struct pg_node_info a, b, a2;
	char *err = NULL;

	ck_assert_int_eq(store_pg_schema(c, &err), 0);
	ck_assert_int_eq(store_pg_join(c, "a", &a, &err), 0);
	ck_assert_int_eq(store_pg_join(c, "b", &b, &err), 0);
	sql_ok(c, "INSERT INTO bulkhead.jobs (id, grp, pool_name, instance, state, cause, "
		  "cause_detail, alone, attempts, reruns, runs, flags, host_deaths, accepted_at, "
		  "started_ms, ended_ms) VALUES (1099511627779, 1, 'p', 1, 0, 0, 0, 0, 0, 0, 0, 0, "
		  "0, 0, 0, 0)");
	ck_assert_int_eq(store_pg_join(c, "a", &a2, &err), 0);
	ck_assert_int_eq(a.slot, 0);
	ck_assert_int_eq(a.epoch, 1);
	ck_assert_int_eq(a.last_job, 0);
	ck_assert_int_eq(b.slot, 1);
	ck_assert_int_eq(a2.slot, 0);
	ck_assert_int_eq(a2.epoch, 2);
	ck_assert_int_eq(store_pg_join(c, "b", &b, &err), 0);
	ck_assert_int_eq(b.last_job, PG_NODE_ID_BASE(1) + 3);
	ck_assert_int_eq(b.last_group, PG_NODE_ID_BASE(1));
	/* No schema: the server's words, not a crash. */
	sql_ok(c, "DROP SCHEMA bulkhead CASCADE");
	ck_assert_int_eq(store_pg_join(c, "a", &a, &err), -EIO);
	ck_assert_msg(strstr(err, "join as node a") && strstr(err, "bulkhead.nodes"), "%s", err);
	free(err);
	PQfinish(c);
}
END_TEST

static Suite *store_pg_suite(void)
{
	Suite *s = suite_create("store-pg");
	TCase *tc = tcase_create("schema");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_creates_once);
	tcase_add_test(tc, test_migrates_v1);
	tcase_add_test(tc, test_group_row_exec_settings);
	tcase_add_test(tc, test_nodes_start_together);
	tcase_add_test(tc, test_refuses_newer_and_damaged);
	tcase_add_test(tc, test_bad_connections);
	tcase_add_test(tc, test_join_waiting);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(store_pg_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
