/* SPDX-License-Identifier: MIT */
/* bench-pg's database helpers (bench-pg.h): a database of a run's own, and CPU figures. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/store-pg.h"

#include "bench/bench-pg.h"

char conninfo[128];

int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void die(const char *what, PGconn *c)
{
	fprintf(stderr, "bench-pg: %s: %s\n", what, c ? PQerrorMessage(c) : strerror(errno));
	exit(1);
}

PGconn *connect_db(const char *info)
{
	PGconn *c = PQconnectdb(info);

	if (PQstatus(c) != CONNECTION_OK)
		die("connect", c);
	return c;
}

void exec_ok(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		die(sql, c);
	PQclear(res);
}

long long value(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	long long v;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		die(sql, c);
	v = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return v;
}

/* A fresh database with the schema; conninfo names it. */
void make_db(void)
{
	PGconn *c = connect_db("");
	char sql[128], *err = NULL;

	snprintf(sql, sizeof(sql), "CREATE DATABASE bpg_%d", (int)getpid());
	exec_ok(c, sql);
	PQfinish(c);
	snprintf(conninfo, sizeof(conninfo), "dbname=bpg_%d", (int)getpid());
	c = connect_db(conninfo);
	if (store_pg_schema(c, &err) < 0) {
		fprintf(stderr, "bench-pg: %s\n", err);
		exit(1);
	}
	PQfinish(c);
}

void drop_db(void)
{
	PGconn *c = connect_db("");
	char sql[128];

	snprintf(sql, sizeof(sql), "DROP DATABASE bpg_%d", (int)getpid());
	exec_ok(c, sql);
	PQfinish(c);
}

void add_jobs(PGconn *c, long n)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
		 "INSERT INTO bulkhead.jobs (id, grp, pool_name, instance, state, cause, "
		 "cause_detail, alone, attempts, reruns, runs, flags, host_deaths, accepted_at, "
		 "started_ms, ended_ms) SELECT i, 1, 'p', i, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 "
		 "FROM generate_series(1, %ld) AS i",
		 n);
	exec_ok(c, sql);
	exec_ok(c, "VACUUM ANALYZE bulkhead.jobs");
}

/* CPU seconds of the server's processes (every process of the postgres user). */
double server_cpu(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	double total = 0;
	long hz = sysconf(_SC_CLK_TCK);

	while (d && (e = readdir(d))) {
		char path[300], buf[1024], *p;
		struct stat st;
		unsigned long ut, stt;
		FILE *f;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s", e->d_name);
		if (stat(path, &st) < 0 || st.st_uid == getuid())
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		p = fgets(buf, sizeof(buf), f);
		fclose(f);
		if (!p || strncmp(buf, "postgres", 8) != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		p = fgets(buf, sizeof(buf), f);
		fclose(f);
		p = p ? strrchr(buf, ')') : NULL;
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
				&stt) == 2)
			total += (double)(ut + stt) / (double)hz;
	}
	if (d)
		closedir(d);
	return total;
}

double children_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_CHILDREN, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}
