/* SPDX-License-Identifier: MIT */
/*
 * daemon/pg-conn.c against a real server (tests/pg/with-postgres): statements in order on
 * the loop, and a server that goes away and comes back (BULKHEAD_PG_CTL stop / start): the
 * loss is said once, what was queued fails, and the connection is up again by itself.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/pg-conn.h"
#include "daemon/pg-jobs.h"
#include "daemon/pg-nodes.h"
#include "daemon/store-pg.h"

#define DEADLINE_MS 30000

struct seen {
	int ups, downs;
	char why[512];
	int results, failures;
	char values[16][32];
};

static void on_up(void *userdata)
{
	((struct seen *)userdata)->ups++;
}

static void on_down(void *userdata, const char *why)
{
	struct seen *s = userdata;

	s->downs++;
	snprintf(s->why, sizeof(s->why), "%s", why);
}

static const struct pg_conn_ops ops = { .up = on_up, .down = on_down };

static void on_result(void *userdata, const PGresult *res, const char *error)
{
	struct seen *s = userdata;

	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		s->failures++;
		return;
	}
	if (s->results < 16)
		snprintf(s->values[s->results], sizeof(s->values[0]), "%s",
			 PQgetvalue(res, 0, 0));
	s->results++;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the loop until *what >= want, within the deadline. */
static void run_until(sd_event *e, const int *what, int want, const char *waiting_for)
{
	int64_t deadline = now_ms() + DEADLINE_MS;

	while (*what < want) {
		ck_assert_msg(now_ms() < deadline, "no %s within %d ms", waiting_for, DEADLINE_MS);
		ck_assert_int_ge(sd_event_run(e, 100 * 1000), 0);
	}
}

static void server(const char *how)
{
	char cmd[512];

	ck_assert_ptr_nonnull(getenv("BULKHEAD_PG_CTL"));
	snprintf(cmd, sizeof(cmd), "%s %s >/dev/null", getenv("BULKHEAD_PG_CTL"), how);
	ck_assert_int_eq(system(cmd), 0);
}

/* A loop and a connection to the test's server (PGHOST...), up. */
static struct pg_conn *open_up(struct seen *s, sd_event **e)
{
	struct pg_conn *c;
	char *err = NULL;

	ck_assert_int_ge(sd_event_new(e), 0);
	ck_assert_int_eq(pg_conn_new(*e, "", &ops, s, &c, &err), 0);
	ck_assert(!pg_conn_is_up(c));
	ck_assert_int_eq(pg_conn_exec(c, "SELECT 1", on_result, s), -ENOTCONN);
	run_until(*e, &s->ups, 1, "connection");
	ck_assert(pg_conn_is_up(c));
	return c;
}

START_TEST(test_statements_in_order)
{
	struct seen s = { 0 };
	sd_event *e;
	struct pg_conn *c = open_up(&s, &e);

	ck_assert_int_eq(pg_conn_exec(c, "SELECT 41 + 1", on_result, &s), 0);
	ck_assert_int_eq(pg_conn_exec(c, "SELECT 'two'", on_result, &s), 0);
	/* Several statements in one: the last one's result. */
	ck_assert_int_eq(pg_conn_exec(c, "CREATE TEMP TABLE t (v int); INSERT INTO t VALUES (3);"
					 "SELECT v FROM t",
				      on_result, &s),
			 0);
	ck_assert_int_eq(pg_conn_exec(c, "SELECT nonsense FROM nowhere", on_result, &s), 0);
	ck_assert_int_eq(pg_conn_exec(c, "SELECT 4", on_result, &s), 0);
	run_until(e, &s.results, 4, "results");
	ck_assert_int_eq(s.failures, 1);
	ck_assert_str_eq(s.values[0], "42");
	ck_assert_str_eq(s.values[1], "two");
	ck_assert_str_eq(s.values[2], "3");
	ck_assert_str_eq(s.values[3], "4");
	ck_assert_int_eq(s.downs, 0);
	pg_conn_free(c);
	sd_event_unref(e);
}
END_TEST

/* Parameters go as values: no quoting, NULL is NULL. */
START_TEST(test_parameters)
{
	struct seen s = { 0 };
	sd_event *e;
	struct pg_conn *c = open_up(&s, &e);
	const char *v[] = { "it's \"quoted\"; DROP TABLE x", NULL };

	ck_assert_int_eq(pg_conn_exec_params(c, "SELECT $1::text || coalesce($2, '!')", 2, v,
					     on_result, &s),
			 0);
	run_until(e, &s.results, 1, "a result");
	ck_assert_str_eq(s.values[0], "it's \"quoted\"; DROP TABLE x!");
	pg_conn_free(c);
	sd_event_unref(e);
}
END_TEST

struct joined {
	int answers;
	int64_t epoch, last_job;
	int slot;
	char error[256];
};

static void pq_ok(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);

	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
	PQclear(res);
}

/* A renewal's answer: its heartbeat row's epoch (0: none, superseded). */
static void on_beat(void *userdata, const PGresult *res, const char *error)
{
	struct joined *j = userdata;

	j->answers++;
	j->epoch = 0;
	for (int i = 0; res && PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++)
		if (strcmp(PQgetvalue(res, i, 0), "0") == 0)
			j->epoch = strtoll(PQgetvalue(res, i, 1), NULL, 10);
}

static void on_node(void *userdata, const struct pg_node_info *info, const char *error)
{
	struct joined *j = userdata;

	j->answers++;
	j->epoch = info ? info->epoch : 0;
	j->slot = info ? info->slot : -1;
	j->last_job = info ? info->last_job : -1;
	snprintf(j->error, sizeof(j->error), "%s", error ? error : "");
}

/*
 * Two bulkheadd under one node name: the second join takes the next epoch, and the first
 * one's heartbeat finds itself superseded; the current one's heartbeat goes through.
 */
START_TEST(test_node_names_are_fenced)
{
	struct seen s = { 0 };
	sd_event *e;
	struct pg_conn *c = open_up(&s, &e);
	struct joined a = { 0 }, a2 = { 0 }, b = { 0 }, beat = { 0 };
	char *err = NULL;
	PGconn *pq;

	ck_assert_int_eq(store_pg_connect("", &pq, &err), 0);
	ck_assert_int_ge(store_pg_schema(pq, &err), 0);
	PQfinish(pq);
	ck_assert_int_eq(pg_node_join(c, "alpha", on_node, &a), 0);
	ck_assert_int_eq(pg_node_join(c, "beta", on_node, &b), 0);
	ck_assert_int_eq(pg_node_join(c, "alpha", on_node, &a2), 0);
	run_until(e, &a2.answers, 1, "joins");
	ck_assert_int_eq(a.epoch, 1);
	ck_assert_int_eq(b.epoch, 1);
	ck_assert_int_eq(a2.epoch, 2);
	/* Slots: the lowest free at a name's first join, kept under the name. */
	ck_assert_int_eq(a.slot, 0);
	ck_assert_int_eq(b.slot, 1);
	ck_assert_int_eq(a2.slot, 0);
	ck_assert_int_eq(b.last_job, PG_NODE_ID_BASE(1));
	/* The heartbeat (with the renewal, pg_jobs_renew()): the old epoch's finds no row. */
	ck_assert_int_eq(pg_jobs_renew(c, "alpha", 1, NULL, 0, 5000, on_beat, &beat), 0);
	run_until(e, &beat.answers, 1, "a heartbeat");
	ck_assert_int_eq(beat.epoch, 0);
	ck_assert_int_eq(pg_jobs_renew(c, "alpha", 2, NULL, 0, 5000, on_beat, &beat), 0);
	run_until(e, &beat.answers, 2, "a heartbeat");
	ck_assert_int_eq(beat.epoch, 2);
	/* A name joining again learns the last id its slot gave (beta's jobs are not its). */
	ck_assert_int_eq(store_pg_connect("", &pq, &err), 0);
	pq_ok(pq, "INSERT INTO bulkhead.jobs (id, grp, pool_name, instance, state, cause, "
		  "cause_detail, alone, attempts, reruns, runs, flags, host_deaths, accepted_at, "
		  "started_ms, ended_ms) SELECT i, 1, 'p', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 "
		  "FROM unnest(ARRAY[5, 7, 1099511627777]::bigint[]) AS i");
	PQfinish(pq);
	a2 = (struct joined){ 0 };
	ck_assert_int_eq(pg_node_join(c, "alpha", on_node, &a2), 0);
	run_until(e, &a2.answers, 1, "a join");
	ck_assert_int_eq(a2.slot, 0);
	ck_assert_int_eq(a2.epoch, 3);
	ck_assert_int_eq(a2.last_job, 7);
	pg_conn_free(c);
	sd_event_unref(e);
}
END_TEST

START_TEST(test_server_goes_and_comes_back)
{
	struct seen s = { 0 };
	sd_event *e;
	struct pg_conn *c = open_up(&s, &e);

	/* A statement in flight when the server stops: it fails, the loss is said once. */
	ck_assert_int_eq(pg_conn_exec(c, "SELECT pg_sleep(2)", on_result, &s), 0);
	server("stop");
	run_until(e, &s.downs, 1, "loss");
	ck_assert_int_eq(s.failures, 1);
	ck_assert(!pg_conn_is_up(c));
	ck_assert_int_eq(pg_conn_exec(c, "SELECT 1", on_result, &s), -ENOTCONN);
	/* Attempts go on while it is away (a few backoffs), without saying it again. */
	{
		int64_t until = now_ms() + 700;

		while (now_ms() < until)
			ck_assert_int_ge(sd_event_run(e, 100 * 1000), 0);
	}
	ck_assert_int_eq(s.downs, 1);
	server("start");
	run_until(e, &s.ups, 2, "connection again");
	ck_assert_int_eq(pg_conn_exec(c, "SELECT 5", on_result, &s), 0);
	run_until(e, &s.results, 1, "a result after the restart");
	ck_assert_str_eq(s.values[0], "5");
	pg_conn_free(c);
	sd_event_unref(e);
}
END_TEST

/* The prepared statements of this connection on the server (pg_prepared_statements). */
static const char count_prepared[] = "SELECT count(*)::text FROM pg_prepared_statements";

/*
 * Prepared statements: prepared at their first use on a connection, used again after; a
 * server restart loses them and they are prepared again by themselves; a statement that
 * cannot be prepared fails alone, and the next one runs.
 */
START_TEST(test_prepared_statements)
{
	struct seen s = { 0 };
	sd_event *e;
	struct pg_conn *c = open_up(&s, &e);
	const char *one[] = { "20" }, *two[] = { "22" };

	ck_assert_int_eq(pg_conn_exec_prepared(c, "t_add", "SELECT ($1::int + 1)::text", 1, one,
					       on_result, &s),
			 0);
	ck_assert_int_eq(pg_conn_exec_prepared(c, "t_add", "SELECT ($1::int + 1)::text", 1, two,
					       on_result, &s),
			 0);
	ck_assert_int_eq(pg_conn_exec(c, count_prepared, on_result, &s), 0);
	run_until(e, &s.results, 3, "three results");
	ck_assert_str_eq(s.values[0], "21");
	ck_assert_str_eq(s.values[1], "23");
	ck_assert_str_eq(s.values[2], "1"); /* prepared once, used twice */
	/* Not SQL: the prepare fails, the statement fails, the next one runs. */
	ck_assert_int_eq(pg_conn_exec_prepared(c, "t_bad", "SELEKT 1", 0, NULL, on_result, &s), 0);
	ck_assert_int_eq(pg_conn_exec_prepared(c, "t_add", "SELECT ($1::int + 1)::text", 1, one,
					       on_result, &s),
			 0);
	run_until(e, &s.results, 4, "a result after a failed prepare");
	ck_assert_int_eq(s.failures, 1);
	ck_assert_str_eq(s.values[3], "21");
	/* A restart: the server forgot them; the connection prepares them again. */
	server("stop");
	run_until(e, &s.downs, 1, "loss");
	server("start");
	run_until(e, &s.ups, 2, "connection again");
	ck_assert_int_eq(pg_conn_exec_prepared(c, "t_add", "SELECT ($1::int + 1)::text", 1, two,
					       on_result, &s),
			 0);
	ck_assert_int_eq(pg_conn_exec(c, count_prepared, on_result, &s), 0);
	run_until(e, &s.results, 6, "results after the restart");
	ck_assert_str_eq(s.values[4], "23");
	ck_assert_str_eq(s.values[5], "1");
	pg_conn_free(c);
	sd_event_unref(e);
}
END_TEST

START_TEST(test_bad_connection_string)
{
	struct seen s = { 0 };
	struct pg_conn *c = NULL;
	sd_event *e;
	char *err = NULL;

	ck_assert_int_ge(sd_event_new(&e), 0);
	ck_assert_int_eq(pg_conn_new(e, "no equals here", &ops, &s, &c, &err), -EINVAL);
	ck_assert_ptr_null(c);
	ck_assert_msg(err && strstr(err, "connection string 'no equals here'"), "%s", err);
	free(err);
	/* No server there: down, said once, and tried again. */
	ck_assert_int_eq(pg_conn_new(e, "host=/nonexistent", &ops, &s, &c, &err), 0);
	run_until(e, &s.downs, 1, "failure");
	ck_assert_msg(strstr(s.why, "/nonexistent"), "%s", s.why);
	pg_conn_free(c);
	sd_event_unref(e);
}
END_TEST

static Suite *pg_conn_suite(void)
{
	Suite *s = suite_create("pg-conn");
	TCase *tc = tcase_create("loop");

	tcase_add_test(tc, test_statements_in_order);
	tcase_add_test(tc, test_bad_connection_string);
	tcase_add_test(tc, test_parameters);
	tcase_add_test(tc, test_node_names_are_fenced);
	tcase_add_test(tc, test_server_goes_and_comes_back);
	tcase_add_test(tc, test_prepared_statements);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(pg_conn_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
