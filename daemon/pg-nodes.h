/* SPDX-License-Identifier: MIT */
/*
 * The nodes that share a PostgreSQL store (issue 14): a row each in bulkhead.nodes, its
 * name (`[supervisor] node`), when it started, its last heartbeat, its epoch and its slot.
 *
 * Joining takes the next epoch for the name, so a second bulkheadd started under a name
 * already in use supersedes the first: the first one's next heartbeat (fenced on its epoch,
 * part of its renewal: pg_jobs_renew())
 * finds no row and says so, and it must stop using the store.
 *
 * A name's slot (0 .. PG_NODE_SLOTS - 1, the lowest free one at its first join, kept for
 * good) is where its ids come from: the jobs and groups a node adds have ids
 * slot × 2^40 + 1, + 2, ... (PG_NODE_ID_BASE()), so nodes give ids at once, without asking
 * the server and without colliding, and one node's ids are 1, 2, 3... as on one host. Ids
 * stay below 2^53: exact as JSON numbers.
 */
#pragma once

#include <stdint.h>

#include "daemon/pg-conn.h"

#define PG_NODE_SLOTS 8192
#define PG_NODE_ID_BITS 40
/* The id before a slot's first one. */
#define PG_NODE_ID_BASE(slot) ((int64_t)(slot) << PG_NODE_ID_BITS)

/* What a join answers. */
struct pg_node_info {
	int64_t epoch;
	int slot;
	int64_t last_job, last_group; /* join: the highest ids of the slot in use (base: none) */
};

/* A join's answer: info, or NULL and why (the server's error). The heartbeat is part of
 * the renewal (pg_jobs_renew()). */
typedef void (*pg_node_fn)(void *userdata, const struct pg_node_info *info, const char *error);

/* Joins (or joins again) as name: started and heartbeat now, the next epoch, its slot. */
int pg_node_join(struct pg_conn *c, const char *name, pg_node_fn done, void *userdata);


/* The join's statement ($1: the name) and its one row read into *info (-ENOENT: no row). */
extern const char pg_node_join_sql[];
int pg_node_info_parse(const PGresult *res, struct pg_node_info *info);
