/* SPDX-License-Identifier: MIT */
/* What bench-pg.c and bench-pg-db.c share. */
#pragma once

#include <libpq-fe.h>
#include <stdint.h>

/* The run's database (make_db()): "dbname=bpg_PID". */
extern char conninfo[128];

int64_t now_ns(void);
/* Says what failed (the connection's error, or errno's) and exits 1. */
void die(const char *what, PGconn *c) __attribute__((noreturn));
PGconn *connect_db(const char *info);
/* Runs sql, which must work. */
void exec_ok(PGconn *c, const char *sql);
/* The one value sql answers. */
long long value(PGconn *c, const char *sql);
/* A fresh database with the schema, named in conninfo; dropped by drop_db(). */
void make_db(void);
void drop_db(void);
/* Jobs 1..n, queued in pool p. */
void add_jobs(PGconn *c, long n);
/* CPU seconds of the server's processes, and of this process's children so far. */
double server_cpu(void);
double children_cpu(void);
