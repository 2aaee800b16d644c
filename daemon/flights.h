/* SPDX-License-Identifier: MIT */
/*
 * In-flight jobs: which jobs each worker holds, and where, for the master alone (the job
 * store knows a job is running, never on which worker or thread). Pure bookkeeping with no
 * clocks, processes or I/O, unit-tested on its own (tests/unit/test-flights.c).
 *
 * A worker starts the jobs it is given strictly in order, so with T threads the first T
 * unfinished ones are running. Each held job has one record (struct flight) in the master's
 * table, found by job id; a worker's queue (struct flight_queue) has its running records in
 * thread slots and the others in a FIFO, in the order they were assigned. A record that
 * leaves the FIFO from the middle (a job cancelled before it started) leaves a hole there
 * that the next promotion skips.
 *
 * Invariants: a job id is in the table at most once; every record is in exactly one queue,
 * either in one slot (slot >= 0, started_at > 0) or once in that queue's FIFO (slot < 0);
 * q->n_running and q->n_waiting count them. Memory is reserved before jobs are assigned
 * (flights_reserve), so assigning never fails once the ASSIGN frame has gone out.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct job;

struct flight {
	struct job *job;     /* NULL: a free record */
	uint64_t id;         /* the job's id: its key in the table */
	uint64_t started_at; /* usec; 0 while waiting in the FIFO */
	union {
		uint32_t pos;       /* while waiting: its place in the FIFO (a sequence number) */
		uint32_t next_free; /* free records: the next one, index + 1 */
	};
	uint32_t hslot;      /* its place in the table's index (kept when entries move) */
	int16_t slot;        /* its thread slot while running, -1 while waiting */
	uint8_t flags;       /* the caller's, per record (timed out, command killed...) */
	void *owner;         /* the worker's queue owner (the caller's struct) */
};

/* A hash slot: a job id (0: empty) and its record's index. */
struct flight_key {
	uint64_t id;
	uint32_t rec;
};

/* One per master: every record, and job id -> record. */
struct flight_table {
	struct flight *rec;
	uint32_t n_rec, cap_rec;
	uint32_t free_head; /* index + 1, 0: none */
	uint32_t n_used;
	struct flight_key *index; /* job id -> record: id and record side by side, one miss */
	uint32_t cap, n; /* hash slots (a power of two), entries */
};

/* One per worker process. */
struct flight_queue {
	uint32_t *slots; /* per thread slot: record index + 1, 0 free */
	unsigned threads;
	unsigned n_running;
	uint32_t *ring; /* the FIFO: record index + 1, 0 for a hole */
	uint32_t ring_cap; /* a power of two */
	uint32_t head, tail; /* sequence numbers: [head, tail) are in the ring */
	unsigned n_waiting; /* records in the FIFO (holes not counted) */
};

#define FLIGHT_TABLE_INIT ((struct flight_table){ 0 })

void flight_table_free(struct flight_table *t);

/* A queue for `threads` thread slots (emptied and resized). 0 or -ENOMEM. */
int flight_queue_init(struct flight_queue *q, unsigned threads);
void flight_queue_free(struct flight_queue *q);

/*
 * Gives back what a burst grew, once nothing is in flight: the table when no record is used,
 * a queue's FIFO when it is empty. Never between flights_reserve() and the assignments it
 * made room for (the master calls them from its retention pass, between events).
 */
void flights_trim(struct flight_table *t);
void flight_queue_trim(struct flight_queue *q);

/* Room for n more jobs in t and in q: after it, that many flights_assign() cannot fail. */
int flights_reserve(struct flight_table *t, struct flight_queue *q, size_t n);

/*
 * Job j with this id (not in flight yet) goes to q's worker: started in a free thread slot at `now` if
 * may_start and one is free, else to the end of the FIFO. Needs flights_reserve() first.
 * Returns its record (valid until the next assign, reserve or done on t).
 */
struct flight *flights_assign(struct flight_table *t, struct flight_queue *q, struct job *j,
			      uint64_t id, void *owner, uint64_t now, bool may_start);

/*
 * A hint for a batch (DONE, ASSIGN): loads the hash slot of job_id, a few entries ahead of
 * the one being handled, so that its lookup does not wait for memory (the table outgrows the
 * caches when many workers hold many jobs). Changes nothing.
 */
void flights_prefetch(const struct flight_table *t, uint64_t job_id);

/* The record of the job with this id, or NULL. */
struct flight *flights_find(const struct flight_table *t, uint64_t job_id);
/*
 * The same, looked for first among q's running jobs when it has few threads (a result names
 * one of them): no table lookup, so no cache miss, for a DONE.
 */
struct flight *flights_find_in(const struct flight_table *t, const struct flight_queue *q,
			       uint64_t job_id);

/* The job ended (or came back): its record leaves q and t. */
void flights_done(struct flight_table *t, struct flight_queue *q, struct flight *f);

/*
 * Starts the head of q's FIFO in a free slot at `now` if there is one and more than `keep`
 * jobs wait (the last `keep` may not start yet: their ASSIGN has not gone out). Returns the
 * started record or NULL.
 */
struct flight *flights_promote(struct flight_table *t, struct flight_queue *q, uint64_t now,
			       unsigned keep);

/* The record running in thread slot i of q, or NULL. */
struct flight *flights_running(const struct flight_table *t, const struct flight_queue *q,
			       unsigned i);

/* Every record in q now belongs to owner (its queue moved to another worker struct). */
void flights_set_owner(struct flight_table *t, const struct flight_queue *q, void *owner);

/*
 * Empties q (its worker is gone): its jobs in slot order, then FIFO order, into jobs[] with
 * their record flags in flags[] (started ones get `started` or'ed in). Returns how many;
 * jobs[] and flags[] must hold threads + waiting entries.
 */
size_t flights_collect(struct flight_table *t, struct flight_queue *q, struct job **jobs,
		       uint8_t *flags, uint8_t started);
