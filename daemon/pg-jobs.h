/* SPDX-License-Identifier: MIT */
/*
 * The shared queue's statements (DESIGN §13, issue 14): how nodes that share a PostgreSQL
 * store add jobs, claim them with a lease, renew their leases, write what became of them
 * fenced on the lease, and take over the jobs of a node whose leases expired. Each is one
 * statement sent on a pg_conn (the loop never waits), whatever the number of jobs: values go
 * as array parameters, unnested on the server. Each is prepared once per connection.
 *
 * A lease is a job's owner node (lease_owner), its epoch (lease_epoch, one more at every
 * claim) and its expiry. In the table a claimed job is RUNNING (state 1) from its claim on,
 * so a job is in exactly one of: queued (claimable), leased to one node, or ended. Every
 * write of a claimed job is fenced: WHERE id = .. AND lease_epoch = .. AND lease_owner = me
 * AND state = running; a node that lost a job (its lease expired and another node took it)
 * writes nothing of it, and learns so from the write's answer or its next renewal.
 */
#pragma once

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/pg-conn.h"

/* LISTEN/NOTIFY channel: the payload is a pool whose queue got jobs. */
#define PG_JOBS_CHANNEL "bulkhead_jobs"

/* A job as the shared store has it. Strings point into the result they came from. */
struct pg_job {
	int64_t id, grp, lease_epoch;
	int64_t accepted_at, started_ms, ended_ms;
	int32_t instance, cause_detail;
	int state, cause, alone, attempts, reruns, runs, flags, host_deaths;
	const char *pool, *input, *result, *node; /* NULL: none */
};

/*
 * Row i of a claim's or a take's answer (the columns of PG_JOB_COLUMNS, in order) into *j.
 * -EBADMSG if a value is out of its range (the row is named in *j->id if it parsed).
 */
int pg_job_parse(const PGresult *res, int i, struct pg_job *j);

/*
 * Adds n queued jobs of group grp in pool: ids first_id.. (the node's, pg-nodes.h),
 * instances first_instance.., accepted at accepted_at (µs since the epoch), each with
 * inputs[k] (NULL: none), and wakes idle nodes (a NOTIFY on PG_JOBS_CHANNEL, sent when the
 * statement commits). again: it is sent again after a lost connection (it may have been
 * committed): it adds nothing twice. Answers one row: how many it added now.
 */
int pg_jobs_add(struct pg_conn *c, const char *pool, int64_t grp, int64_t first_id,
		int32_t first_instance, size_t n, const char *const *inputs, int64_t accepted_at,
		bool again, pg_result_fn cb, void *userdata);

/*
 * Claims up to n queued jobs of pool (alone: those queued to run alone), oldest first,
 * skipping those another node is claiming: each gets node as its owner, its next epoch and
 * an expiry lease_ms from now, and is RUNNING. Answers the jobs claimed (PG_JOB_COLUMNS).
 */
int pg_jobs_claim(struct pg_conn *c, const char *pool, bool alone, const char *node,
		  size_t n, int64_t lease_ms, pg_result_fn cb, void *userdata);

/*
 * Takes up to n leased jobs whose lease expired (mine_too: and every job leased to node,
 * as a node does when it starts: what it held before was its dead incarnation's) as
 * pg_jobs_claim() does, still RUNNING: the caller's ledger treats them as the orphans of a
 * dead host (ledger_recover()) and writes its verdicts fenced on the new epoch.
 */
int pg_jobs_take_expired(struct pg_conn *c, const char *node, bool mine_too, size_t n,
			 int64_t lease_ms, pg_result_fn cb, void *userdata);

/*
 * The node's heartbeat, fenced on its epoch (pg-nodes.h), and in the same statement the
 * renewal of the leases of jobs ids[0 .. n - 1] that it holds, to lease_ms from now (only
 * those: a lease the node has forgotten expires, and its job is taken over). Answers the
 * jobs renewed (id, lease_epoch): one the node holds that is missing, or is there at another
 * epoch, was taken from it; and a row (0, node_epoch) if the node is still itself. Without
 * that row another bulkheadd joined under its name since: nothing was renewed.
 */
int pg_jobs_renew(struct pg_conn *c, const char *node, int64_t node_epoch, const int64_t *ids,
		  size_t n, int64_t lease_ms, pg_result_fn cb, void *userdata);

/*
 * Writes what became of jobs node holds, each fenced on its lease (j->lease_epoch): state,
 * cause, counters, history, result. A job written as anything but RUNNING gives its lease
 * up (queued again: claimable by any node, which a NOTIFY tells; ended: final). Answers the
 * ids written: a job missing from them was not this node's any more, and nothing of it was
 * written. All of them or none (one statement). The same write sent again (its answer was
 * lost with the connection) is answered as written, for the jobs it had written.
 */
int pg_jobs_write(struct pg_conn *c, const char *node, const struct pg_job *jobs, size_t n,
		  pg_result_fn cb, void *userdata);

/* The columns pg_job_parse() reads, in its order. */
#define PG_JOB_COLUMNS                                                                       \
	"id, grp, pool_name, instance, state, cause, cause_detail, alone, attempts, reruns, "   \
	"runs, flags, host_deaths, input, result, accepted_at, started_ms, ended_ms, node, "    \
	"lease_epoch"
