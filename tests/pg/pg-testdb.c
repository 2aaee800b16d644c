/* SPDX-License-Identifier: MIT */
/* What the PostgreSQL tests share (pg-testdb.h). */
#include <check.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdarg.h>
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

/* ---- a link that can be cut: a Unix socket proxy to the server ---- */

/*
 * Forwards every connection made to DIR/.s.PGSQL.PORT to the server's socket, both ways, in
 * one process with poll(). SIGSTOP it and the link is cut the way a network cut is: nothing
 * arrives, nothing is refused; SIGCONT heals it.
 */
int pg_test_listen_unix(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 16) < 0) {
		if (l >= 0)
			close(l);
		return -1;
	}
	return l;
}

void pg_test_proxy(const char *listen_path, const char *server_path)
{
	int l = pg_test_listen_unix(listen_path);

	if (l < 0)
		_exit(2);
	pg_test_proxy_fd(l, server_path);
}

void pg_test_proxy_fd(int l, const char *server_path)
{
	enum { MAX = 16 };
	struct pollfd p[1 + 2 * MAX];
	int pair[1 + 2 * MAX], n = 1;

	p[0] = (struct pollfd){ .fd = l, .events = POLLIN };
	for (;;) {
		if (poll(p, (nfds_t)n, -1) < 0)
			continue;
		if ((p[0].revents & POLLIN) && n + 2 <= 1 + 2 * MAX) {
			int c = accept(l, NULL, NULL), s = socket(AF_UNIX, SOCK_STREAM, 0);
			struct sockaddr_un b = { .sun_family = AF_UNIX };

			snprintf(b.sun_path, sizeof(b.sun_path), "%s", server_path);
			if (c >= 0 && s >= 0 && connect(s, (struct sockaddr *)&b, sizeof(b)) == 0) {
				p[n] = (struct pollfd){ .fd = c, .events = POLLIN };
				p[n + 1] = (struct pollfd){ .fd = s, .events = POLLIN };
				pair[n] = n + 1;
				pair[n + 1] = n;
				n += 2;
			} else {
				close(c);
				close(s);
			}
		}
		for (int i = 1; i < n; i++) {
			char buf[65536];
			ssize_t got;

			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)) || p[i].fd < 0)
				continue;
			got = read(p[i].fd, buf, sizeof(buf));
			if (got <= 0) { /* one side closed: close both */
				close(p[i].fd);
				close(p[pair[i]].fd);
				p[i].fd = p[pair[i]].fd = -1;
				continue;
			}
			for (ssize_t off = 0; off < got;) {
				ssize_t w = write(p[pair[i]].fd, buf + off, (size_t)(got - off));

				if (w <= 0)
					break;
				off += w;
			}
		}
	}
}

void pg_test_audit(PGconn *db)
{
	/* Every move into a final state, with who wrote it at which epoch. */
	pg_test_ok(db, "CREATE TABLE finals (id bigint, state smallint, epoch bigint, writer text)");
	pg_test_ok(db, "CREATE TABLE rewrites (id bigint, old smallint, new smallint, "
		       "old_writer text, new_writer text)");
	pg_test_ok(db,
		   "CREATE FUNCTION audit() RETURNS trigger AS $$ BEGIN "
		   "IF NEW.state >= 2 AND OLD.state < 2 THEN INSERT INTO finals VALUES "
		   "(NEW.id, NEW.state, NEW.lease_epoch, OLD.lease_owner); END IF; "
		   "IF OLD.state >= 2 AND (NEW.state <> OLD.state OR NEW.result IS DISTINCT FROM "
		   "OLD.result) THEN INSERT INTO rewrites VALUES (OLD.id, OLD.state, NEW.state, "
		   "OLD.result, NEW.result); END IF; RETURN NEW; END $$ LANGUAGE plpgsql");
	/* Every take of a leased job by another node, and when (the server's clock). */
	pg_test_ok(db, "CREATE TABLE takes (id bigint, from_node text, to_node text, at bigint)");
	pg_test_ok(db,
		   "CREATE FUNCTION take_audit() RETURNS trigger AS $$ BEGIN "
		   "IF OLD.state = 1 AND NEW.lease_owner IS DISTINCT FROM OLD.lease_owner AND "
		   "NEW.lease_owner IS NOT NULL THEN INSERT INTO takes VALUES (NEW.id, "
		   "OLD.lease_owner, NEW.lease_owner, (extract(epoch FROM clock_timestamp()) * "
		   "1000000)::bigint); END IF; RETURN NEW; END $$ LANGUAGE plpgsql");
	pg_test_ok(db, "CREATE TRIGGER take_audit BEFORE UPDATE ON bulkhead.jobs FOR EACH ROW "
		       "EXECUTE FUNCTION take_audit()");
	pg_test_ok(db, "CREATE TRIGGER audit BEFORE UPDATE ON bulkhead.jobs FOR EACH ROW "
		       "EXECUTE FUNCTION audit()");
}

long pg_test_longf(PGconn *c, const char *fmt, ...)
{
	char sql[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return pg_test_long(c, sql);
}

void pg_test_show_unfinished(PGconn *c)
{
	PGresult *res = PQexec(c, "SELECT id, state, lease_owner, lease_epoch, host_deaths, "
				  "lease_expires < now() FROM bulkhead.jobs WHERE state < 2 "
				  "ORDER BY id LIMIT 20");

	for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++)
		fprintf(stderr, "unfinished: id %s state %s owner %s epoch %s host_deaths %s "
				"expired %s\n",
			PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
			PQgetvalue(res, i, 3), PQgetvalue(res, i, 4), PQgetvalue(res, i, 5));
	PQclear(res);
}
