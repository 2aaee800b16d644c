/* SPDX-License-Identifier: MIT */
/*
 * The shared queue's node (pg-queue.h), its insides: shared by pg-queue.c (joining, leases,
 * claims, the connection) and pg-queue-flush.c (what is buffered, and its flushes).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/idmap.h"
#include "daemon/pg-groups.h"
#include "daemon/pg-queue.h"

/* A start's take of its last life's jobs: all of them (a node holds far fewer). */
#define PG_QUEUE_TAKE_ALL ((size_t)1 << 30)

/* What is buffered for a flush. */
struct add_req {
	struct add_req *next;
	char *pool;
	int64_t grp, first_id, accepted_at;
	int32_t first_instance;
	size_t n;
	char **inputs; /* NULL: none */
};

/* A group's row (pg-groups.h), sent before the adds of its batch. */
struct group_req {
	struct group_req *next;
	char *values[PG_GROUP_N_PARAMS];
};

struct batch {
	uint64_t serial; /* 0: not asked for yet */
	struct group_req *groups, **groups_tail;
	struct add_req *adds, **adds_tail;
	struct pg_job *writes;
	size_t n_writes, cap_writes;
};

struct want {
	struct pg_queue *q;
	char *pool;
	bool alone;
	size_t n;
	bool empty;     /* its last claim found fewer than it asked for */
	bool in_flight; /* a claim is out */
	size_t asked;   /* by it */
};

struct pg_queue {
	sd_event *e;
	struct pg_conn *c;
	char *node;
	int64_t lease_ms;
	const struct pg_queue_ops *ops;
	void *userdata;
	struct pg_node_info info;
	bool joined, join_in_flight, superseded;
	bool started; /* joined, and its last life's jobs asked for: claims may go */
	struct idmap held;        /* job id -> the epoch it is held at */
	int64_t *renewing;        /* the renewal in flight: the ids it asked for, */
	int64_t *renewing_epochs; /* at these epochs */
	size_t n_renewing;
	uint64_t renewed_at;      /* CLOCK_MONOTONIC µs: when the last answered renewal was sent */
	sd_event_source *fence;   /* at renewed_at + 3/4 lease: what is held is lost */
	uint64_t renew_sent_at;   /* of the one in flight */
	bool renew_in_flight, take_in_flight;
	struct want **wants;
	size_t n_wants;
	struct batch next, sending;
	size_t sending_left;      /* statements of `sending` not answered yet */
	bool sending_lost;        /* one failed with the connection: send it again when up */
	bool sending_failed;      /* one failed on the server: send it again at the next tick */
	uint64_t serial, committed;
	sd_event_source *tick;
};

/* pg-queue.c */
/* Jobs this node held that it holds no more: forgotten, and said (lost()). */
void pgq_say_lost(struct pg_queue *q, int64_t *ids, size_t n);

/* pg-queue-flush.c */
void pgq_batch_init(struct batch *b);
void pgq_batch_clear(struct batch *b);
/* Sends `sending`, whole (again after a loss or a failure). */
void pgq_send_sending(struct pg_queue *q);
