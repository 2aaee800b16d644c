/* SPDX-License-Identifier: MIT */
/*
 * One node's side of the shared queue (DESIGN §13, issue 14), on the master's loop: it joins
 * under its name, claims jobs of its pools as its workers have room (woken by NOTIFY, with a
 * poll every renewal period in case one was missed), keeps the leases of the jobs it holds,
 * takes over the jobs of nodes whose leases expired, and writes what its master decided,
 * each write fenced on its job's lease. What is decided (the blame rules) is not here: the
 * master's ledger decides, as on one host; this is the transport.
 *
 * Every renewal period (lease / 3): a heartbeat fenced on the node's epoch (superseded: it
 * stops) and, in the same statement, a renewal of every lease it holds (one it holds that is
 * missing from the answer was taken from it: lost()); a look for expired leases
 * (orphans()), and a poll of the pools that want jobs. A node that has not renewed for 3/4 of a lease (PostgreSQL unreachable)
 * counts everything it holds as lost, before another node may take it (self-fencing).
 *
 * Writes and adds are buffered and sent by pg_queue_flush(), in the order they came, each
 * batch one statement; flushed() says when all of a flush is committed. A flush that fails
 * with the connection is kept and sent again, whole, when it is back: adds and writes are
 * idempotent (pg-jobs.h), so nothing accepted is lost and nothing is written twice.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "daemon/pg-jobs.h"
#include "daemon/pg-nodes.h"

#define PG_QUEUE_LEASE_MS 5000 /* default lease: DESIGN §13 measured 4.3-4.5 s re-queues */
#define PG_QUEUE_CLAIM_MAX 256 /* jobs per claim statement */

struct pg_queue;
struct group_config;

struct pg_queue_ops {
	/* Joined and started (once: a loss of the connection keeps the node's epoch). */
	void (*joined)(void *userdata, const struct pg_node_info *info);
	/* The connection is lost (said once per loss; it reconnects by itself). */
	void (*down)(void *userdata, const char *why);
	/* Another bulkheadd joined under this name: this one must stop using the store. */
	void (*superseded)(void *userdata, const char *why);
	/* Jobs claimed for this node (leased to it, RUNNING in the table): to run here. */
	void (*claimed)(void *userdata, const struct pg_job *jobs, size_t n);
	/* Jobs whose node died (expired leases) or this node's own from before its restart,
	 * now leased to it: the ledger's host-death rule decides what becomes of them. */
	void (*orphans)(void *userdata, const struct pg_job *jobs, size_t n);
	/* Jobs this node held that it holds no more (another node took them): kill them, and
	 * drop what they would write. */
	void (*lost)(void *userdata, const int64_t *ids, size_t n);
	/* A claimed or taken row with a value out of its range (a damaged table): job id is
	 * not run here, and is met again when its lease expires (NULL: not wanted). */
	void (*damaged)(void *userdata, int64_t id);
	/* Flush `serial` is committed (r = 0), or failed for another reason than the
	 * connection (r < 0, why; it is kept and sent again at the next flush). */
	void (*flushed)(void *userdata, uint64_t serial, int r, const char *why);
};

struct pg_queue_config {
	const char *conninfo;
	const char *node;
	int64_t lease_ms; /* 0: PG_QUEUE_LEASE_MS */
	/* Joined already (store_pg_join(): a master needs its slot before its loop runs), or
	 * NULL: it joins once connected. */
	const struct pg_node_info *joined;
};

/* Starts connecting. 0, or -EINVAL (the connection string: *ret_error says why), -ENOMEM. */
int pg_queue_new(sd_event *e, const struct pg_queue_config *cfg, const struct pg_queue_ops *ops,
		 void *userdata, struct pg_queue **ret, char **ret_error);
/* Stops: nothing more is sent; what is buffered is dropped (its leases expire). */
void pg_queue_free(struct pg_queue *q);

bool pg_queue_is_joined(const struct pg_queue *q);
/* This node's slot (-1 before its first join). */
int pg_queue_slot(const struct pg_queue *q);

/*
 * How many jobs of pool (alone: of its alone queue) this node would take now. Claims go out
 * while it is above 0 and the pool's queue had jobs at the last look; each claimed job
 * counts against it until it is set again.
 */
int pg_queue_want(struct pg_queue *q, const char *pool, bool alone, size_t n);

/* Buffers an add (pg_jobs_add()) for the next flush; the strings are copied. */
int pg_queue_add(struct pg_queue *q, const char *pool, int64_t grp, int64_t first_id,
		 int32_t first_instance, size_t n, const char *const *inputs,
		 int64_t accepted_at);
/* Buffers a group's row (pg-groups.h), sent before the adds of the same flush. */
int pg_queue_add_group(struct pg_queue *q, int64_t id, const struct group_config *g,
		       const char *pool_name, bool adhoc, int64_t def_hash);
/* The connection, for statements of the node's own (they run in order with the queue's). */
struct pg_conn *pg_queue_conn(struct pg_queue *q);
/* This node's name and epoch. */
const char *pg_queue_node(const struct pg_queue *q);

/*
 * Buffers a write of job j (pg_jobs_write()) at j->lease_epoch, the epoch it was claimed or
 * taken at. -ESTALE if this node does not hold it at that epoch (lost, or held again since
 * under a newer claim: nothing of the older one is written).
 */
int pg_queue_write(struct pg_queue *q, const struct pg_job *j);
/* Whether the node holds job id (claimed or taken, not yet written as ended or queued). */
bool pg_queue_holds(const struct pg_queue *q, int64_t id);
size_t pg_queue_n_held(const struct pg_queue *q);

/*
 * Sends what is buffered (after the flush in flight, if any). Returns the flush's serial
 * (flushed() tells its end), or the last serial if nothing was buffered.
 */
uint64_t pg_queue_flush(struct pg_queue *q);
/* The serial of the flush that will send what is buffered now. */
uint64_t pg_queue_next_serial(const struct pg_queue *q);
/* What was committed: the serial of the last flush whose every statement is in. */
uint64_t pg_queue_committed(const struct pg_queue *q);
