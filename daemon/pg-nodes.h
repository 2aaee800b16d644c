/* SPDX-License-Identifier: MIT */
/*
 * The nodes that share a PostgreSQL store (issue 14): a row each in bulkhead.nodes, its
 * name (`[supervisor] node`), when it started, its last heartbeat and its epoch. Joining
 * takes the next epoch for the name, so a second bulkheadd started under a name already in
 * use supersedes the first: the first one's next heartbeat (fenced on its epoch) finds no
 * row and says so, and it must stop using the store. The heartbeat timer and what `status`
 * shows of the nodes are the store's (to come).
 */
#pragma once

#include <stdint.h>

#include "daemon/pg-conn.h"

/* A join's or a heartbeat's answer: the node's epoch, or 0 and why (superseded, or the
 * server's error). */
typedef void (*pg_node_fn)(void *userdata, int64_t epoch, const char *error);

/* Joins (or joins again) as name: started and heartbeat now, the next epoch. */
int pg_node_join(struct pg_conn *c, const char *name, pg_node_fn done, void *userdata);

/* A heartbeat of name at epoch; superseded (epoch 0) if another joined under the name since. */
int pg_node_beat(struct pg_conn *c, const char *name, int64_t epoch, pg_node_fn done,
		 void *userdata);
