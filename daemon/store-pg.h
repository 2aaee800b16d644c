/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL store (DESIGN §13, issue 14): several bulkheadd nodes share one database.
 * Here: the connection and the schema. The schema has the SQLite store's tables and columns
 * (store-sqlite-open.c), in PostgreSQL's types, plus what sharing needs: the nodes (with the
 * slot their ids come from), each job's pool (claims are by pool) and its lease (owner node,
 * epoch, expiry). The queue on it is pg-jobs.h (statements) and pg-queue.h (one node's side).
 * It is not yet a `store =` value: `postgresql:` is refused until the master's store
 * operations are built on the queue (docs/decisions.md).
 */
#pragma once

#include <libpq-fe.h>

#include "daemon/pg-nodes.h"

/* The schema this build writes; a database with a higher version is refused. */
#define STORE_PG_VERSION 1

/*
 * Connects with a libpq connection string (CONNINFO of `postgresql:CONNINFO`; "" takes
 * everything from PGHOST, PGPORT, PGUSER, PGDATABASE...). Returns 0 and *ret, or a negative
 * errno and *ret_error (malloc'd, one line naming the server and the reason):
 *   -EINVAL        the connection string does not parse
 *   -ECONNREFUSED  no server there, or it refused us (authentication, no such database)
 *   -ENOMEM
 */
int store_pg_connect(const char *conninfo, PGconn **ret, char **ret_error);

/*
 * Makes the schema current, in one transaction under an advisory lock (nodes that start
 * together do it once): creates it in an empty database, migrates an older one, refuses a
 * newer one. Returns the version found before (0: none) or a negative errno and *ret_error:
 *   -EPROTO  written by a newer bulkhead (schema version N; this one knows up to M)
 *   -EBADMSG the database has bulkhead's tables in a state no version had
 *   -EIO     the server failed the statements (its message)
 */
int store_pg_schema(PGconn *c, char **ret_error);

/*
 * Joins as node `name` (pg-nodes.h), waiting for the answer: what a master does before its
 * loop runs, because the groups and jobs of its config need ids from its slot. Two new
 * names joining at once may collide on a slot: it tries again (up to 8 times). 0 and *info,
 * or -EIO and *ret_error (the server's words), -ENOSPC (every slot is taken).
 */
int store_pg_join(PGconn *c, const char *name, struct pg_node_info *info, char **ret_error);

/* "HOST:PORT/DB" of c (a socket directory for HOST), for messages. */
const char *store_pg_where(PGconn *c, char *buf, size_t size);
