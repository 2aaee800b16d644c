/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL store's connection and schema (store-pg.h). Everything of bulkhead's lives
 * in a schema of its own, `bulkhead`, so a database shared with an application keeps its own
 * names; its version is the one row of bulkhead.schema_version. Creating and migrating run
 * in one transaction that first takes an advisory lock, so nodes that start together do it
 * once and see each other's result.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store-pg.h"

/* pg_advisory_xact_lock() key of the schema's creation and migrations: "BHKD". */
#define SCHEMA_LOCK 0x42484b44

/*
 * Version 1: the SQLite store's tables (schema 2 there), and for sharing: the nodes (each with
 * its slot: the ids its jobs and groups are given from, pg-nodes.h), a job's
 * pool (claims are by pool: jobs_queued) and its lease (owner, epoch, expiry: jobs_leased is
 * what a live node scans for expired ones, jobs_owned what a node renews).
 */
static const char schema_v1[] =
	"CREATE SCHEMA IF NOT EXISTS bulkhead;"
	"CREATE TABLE bulkhead.schema_version (version integer NOT NULL);"
	"INSERT INTO bulkhead.schema_version VALUES (1);"
	"CREATE TABLE bulkhead.meta (key text PRIMARY KEY, value bigint NOT NULL);"
	"CREATE TABLE bulkhead.nodes (name text PRIMARY KEY, started_at timestamptz NOT NULL,"
	" heartbeat_at timestamptz NOT NULL, epoch bigint NOT NULL,"
	" slot integer NOT NULL UNIQUE CHECK (slot >= 0 AND slot < 8192));"
	"CREATE TABLE bulkhead.groups (id bigint PRIMARY KEY, name text NOT NULL,"
	" pool_name text NOT NULL, run text NOT NULL, kind smallint NOT NULL, args text NOT NULL,"
	" inputs text NOT NULL, spool text NOT NULL, output text NOT NULL, count bigint NOT NULL,"
	" timeout_us bigint NOT NULL, max_attempts integer NOT NULL, expect smallint NOT NULL,"
	" adhoc boolean NOT NULL, def_hash bigint NOT NULL, total bigint NOT NULL,"
	" queued bigint NOT NULL, running bigint NOT NULL, done bigint NOT NULL,"
	" failed bigint NOT NULL, crashed bigint NOT NULL, timed_out bigint NOT NULL,"
	" cancelled bigint NOT NULL);"
	"CREATE TABLE bulkhead.group_inputs (grp bigint NOT NULL REFERENCES bulkhead.groups"
	" ON DELETE CASCADE, i integer NOT NULL, path text NOT NULL, PRIMARY KEY (grp, i));"
	"CREATE TABLE bulkhead.jobs (id bigint PRIMARY KEY, grp bigint NOT NULL,"
	" pool_name text NOT NULL, instance integer NOT NULL, state smallint NOT NULL,"
	" cause smallint NOT NULL, cause_detail integer NOT NULL, alone smallint NOT NULL,"
	" attempts smallint NOT NULL, reruns integer NOT NULL, runs integer NOT NULL,"
	" flags smallint NOT NULL, host_deaths smallint NOT NULL, input text, result text,"
	" accepted_at bigint NOT NULL, started_ms bigint NOT NULL, ended_ms bigint NOT NULL,"
	" node text, lease_owner text, lease_epoch bigint NOT NULL DEFAULT 0,"
	" lease_expires timestamptz);"
	"CREATE INDEX jobs_queued ON bulkhead.jobs (pool_name, alone, id) WHERE state = 0;"
	"CREATE INDEX jobs_leased ON bulkhead.jobs (lease_expires) WHERE state = 1;"
	"CREATE INDEX jobs_owned ON bulkhead.jobs (lease_owner) WHERE state = 1;"
	"CREATE TABLE bulkhead.submit_keys (key text PRIMARY KEY, first bigint NOT NULL,"
	" count integer NOT NULL, request bigint NOT NULL);"
	"CREATE TABLE bulkhead.job_logs (seq bigserial PRIMARY KEY, job bigint NOT NULL,"
	" at bigint NOT NULL, level smallint NOT NULL, line text NOT NULL);"
	"CREATE INDEX job_logs_by_job ON bulkhead.job_logs (job);";

/*
 * Migrations from version N to N + 1, index N; a new database is made at version 1 and
 * migrated like any other.
 * 2: a group's exec settings and retry_delay (issue 16) in one text column, as
 *    config_group_exec_format() writes them ("" for the defaults: every group before).
 */
static const char *const migrations[STORE_PG_VERSION + 1] = {
	[1] = "ALTER TABLE bulkhead.groups ADD COLUMN exec text NOT NULL DEFAULT '';",
};

const char *store_pg_where(PGconn *c, char *buf, size_t size)
{
	const char *host = PQhost(c), *port = PQport(c), *db = PQdb(c);

	snprintf(buf, size, "postgresql %s:%s/%s", host && *host ? host : "localhost",
		 port && *port ? port : "5432", db ? db : "?");
	return buf;
}

/* *ret_error = "WHERE: WHAT" (the server's message: its first line). Returns r. */
static int fail(PGconn *c, char **ret_error, int r, const char *fmt, ...)
{
	char where[300], what[512], *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	what[strcspn(what, "\n")] = '\0';
	if (asprintf(&msg, "%s: %s", c ? store_pg_where(c, where, sizeof(where)) : "postgresql",
		     what) < 0)
		msg = NULL;
	*ret_error = msg;
	return r;
}

int store_pg_connect(const char *conninfo, PGconn **ret, char **ret_error)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	PGconn *c;

	*ret = NULL;
	*ret_error = NULL;
	if (!opts) {
		/* Not the string itself: it may hold a password. libpq's words name the part. */
		int r = fail(NULL, ret_error, err ? -EINVAL : -ENOMEM, "connection string: %s",
			     err ? err : "out of memory");

		PQfreemem(err);
		return r;
	}
	PQconninfoFree(opts);
	c = PQconnectdb(conninfo);
	if (!c)
		return fail(NULL, ret_error, -ENOMEM, "out of memory");
	if (PQstatus(c) != CONNECTION_OK) {
		int r = fail(c, ret_error, -ECONNREFUSED, "cannot connect: %s", PQerrorMessage(c));

		PQfinish(c);
		return r;
	}
	*ret = c;
	return 0;
}

/* Runs sql (several statements, no rows wanted). 0, or -EIO and *ret_error. */
static int exec(PGconn *c, const char *sql, const char *doing, char **ret_error)
{
	PGresult *res = PQexec(c, sql);
	int r = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		r = fail(c, ret_error, -EIO, "%s: %s", doing, PQerrorMessage(c));
	PQclear(res);
	return r;
}

/* The version in the database: 0 for none, or a negative errno and *ret_error. */
static int read_version(PGconn *c, char **ret_error)
{
	PGresult *res = PQexec(c, "SELECT to_regclass('bulkhead.schema_version') IS NOT NULL,"
				  " EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'bulkhead')");
	bool table, schema;
	int v;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		PQclear(res);
		return fail(c, ret_error, -EIO, "read the schema version: %s", PQerrorMessage(c));
	}
	table = PQgetvalue(res, 0, 0)[0] == 't';
	schema = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	if (!table && !schema)
		return 0;
	if (!table)
		return fail(c, ret_error, -EBADMSG,
			    "damaged: schema bulkhead has no table schema_version");
	res = PQexec(c, "SELECT version FROM bulkhead.schema_version");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		return fail(c, ret_error, -EIO, "read the schema version: %s", PQerrorMessage(c));
	}
	if (PQntuples(res) != 1 || (v = atoi(PQgetvalue(res, 0, 0))) < 1) {
		int n = PQntuples(res);

		PQclear(res);
		return fail(c, ret_error, -EBADMSG,
			    "damaged: bulkhead.schema_version has %d rows, not one version", n);
	}
	PQclear(res);
	return v;
}

int store_pg_schema(PGconn *c, char **ret_error)
{
	char sql[128];
	int r, found = 0;

	*ret_error = NULL;
	r = exec(c, "BEGIN", "begin", ret_error);
	if (r < 0)
		return r;
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%d)", SCHEMA_LOCK);
	r = exec(c, sql, "lock the schema", ret_error);
	if (r >= 0)
		r = found = read_version(c, ret_error);
	if (r >= 0 && found > STORE_PG_VERSION)
		r = fail(c, ret_error, -EPROTO,
			 "written by a newer bulkhead (schema version %d; this one knows up to %d)",
			 found, STORE_PG_VERSION);
	if (r >= 0 && found == 0)
		r = exec(c, schema_v1, "create the schema", ret_error);
	for (int v = found ? found : 1; r >= 0 && v < STORE_PG_VERSION; v++) {
		snprintf(sql, sizeof(sql), "UPDATE bulkhead.schema_version SET version = %d",
			 v + 1);
		r = exec(c, migrations[v], "migrate the schema", ret_error);
		if (r >= 0)
			r = exec(c, sql, "migrate the schema", ret_error);
	}
	if (r >= 0)
		r = exec(c, "COMMIT", "commit", ret_error);
	if (r < 0) {
		PQclear(PQexec(c, "ROLLBACK"));
		return r;
	}
	return found;
}

int store_pg_join(PGconn *c, const char *name, struct pg_node_info *info, char **ret_error)
{
	const char *values[] = { name };

	*ret_error = NULL;
	for (int tries = 0;; tries++) {
		PGresult *res = PQexecParams(c, pg_node_join_sql, 1, NULL, values, NULL, NULL, 0);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		bool collided = state && strcmp(state, "23505") == 0, full = state &&
			strcmp(state, "23502") == 0; /* unique_violation; not_null: no slot */
		int r = pg_node_info_parse(res, info);

		if (r == 0) {
			PQclear(res);
			return 0;
		}
		if (full || !collided || tries == 8) {
			r = fail(c, ret_error, full ? -ENOSPC : -EIO, "join as node %s: %s", name,
				 full ? "every one of the 8192 node slots is taken"
				      : PQerrorMessage(c));
			PQclear(res);
			return r;
		}
		PQclear(res);
	}
}
