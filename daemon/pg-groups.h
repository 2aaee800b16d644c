/* SPDX-License-Identifier: MIT */
/*
 * Job groups in the shared store (issue 14): a row of bulkhead.groups each, by id (from the
 * slot of the node that made it, pg-nodes.h). A node runs jobs of groups other nodes made
 * (a submit on one node, run on another), so what a job runs is read from its group's row:
 * its pool by name (pool indexes are each node's own), run, args, limits. The counts columns
 * are not kept (zero): views count the jobs.
 */
#pragma once

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "daemon/pg-conn.h"

/* The columns pg_group_parse() reads, in its order. */
#define PG_GROUP_COLUMNS                                                                  \
	"id, name, pool_name, run, kind, args, inputs, spool, output, count, timeout_us, " \
	"max_attempts, expect, adhoc, def_hash, exec"

/*
 * A group's row; cfg's strings and pool_name point into the result (cfg.pool is not set),
 * but its environment and working_directory, which pg_group_row_done() frees.
 */
struct pg_group_row {
	int64_t id;
	struct group_config cfg;
	const char *pool_name;
	bool adhoc;
	int64_t def_hash;
};

/*
 * Row i of an answer with PG_GROUP_COLUMNS into *g: -EBADMSG for a value out of range, or
 * -ENOMEM. Once it returned 0, pg_group_row_done() (NULL-safe strings: also after an error).
 */
int pg_group_parse(const PGresult *res, int i, struct pg_group_row *g);
void pg_group_row_done(struct pg_group_row *g);

/*
 * The statement that adds a group's row (nothing if its id is there: sent again after a lost
 * connection), and its PG_GROUP_N_PARAMS values for group g, made by pg_group_values() into
 * buf (strings of g stay referenced: keep g until the statement is sent).
 */
#define PG_GROUP_N_PARAMS 16
extern const char pg_group_insert_sql[];
struct pg_group_values {
	char num[7][24];
	char *exec; /* config_group_exec_format()'s: pg_group_values_done() frees it */
	const char *v[PG_GROUP_N_PARAMS];
};
/* -ENOMEM, or 0: pg_group_values_done() once the values were sent (or copied). */
int pg_group_values(struct pg_group_values *buf, int64_t id, const struct group_config *g,
		    const char *pool_name, bool adhoc, int64_t def_hash);
void pg_group_values_done(struct pg_group_values *buf);

/* The rows of groups ids[0 .. n - 1] (PG_GROUP_COLUMNS), in one statement. */
int pg_groups_fetch(struct pg_conn *c, const int64_t *ids, size_t n, pg_result_fn cb,
		    void *userdata);
