/* SPDX-License-Identifier: MIT */
/*
 * In-flight jobs (see flights.h). The table is a slab of records with a free list, and an
 * open-addressing hash (linear probing, backward-shift deletion) from job id to record. A
 * queue's FIFO is a ring indexed by sequence numbers, so a waiting record's place never
 * moves while it waits; growing the ring re-lays entries by their sequence number.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/flights.h"

#define HASH_MIN 64u
#define RING_MIN 16u

/*
 * Fibonacci hashing: the top bits of id * 2^64/phi. Consecutive ids (a worker holds runs of
 * them) land far apart and evenly; the middle bits of the product, taken before, fell into
 * long runs for some table sizes, and every insert probed along them.
 */
static uint32_t hash_slot(uint64_t id, uint32_t cap)
{
	return (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> (64 - __builtin_ctz(cap)));
}

static void hash_put(struct flight_key *index, uint32_t cap, uint64_t id, uint32_t v,
		     struct flight *rec)
{
	uint32_t i = hash_slot(id, cap);

	while (index[i].id)
		i = (i + 1) & (cap - 1);
	index[i] = (struct flight_key){ .id = id, .rec = v };
	rec[v].hslot = i;
}

static int hash_grow(struct flight_table *t, uint32_t cap)
{
	struct flight_key *index = calloc(cap, sizeof(*index));

	if (!index)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->cap; i++)
		if (t->index[i].id)
			hash_put(index, cap, t->index[i].id, t->index[i].rec, t->rec);
	free(t->index);
	t->index = index;
	t->cap = cap;
	return 0;
}

static uint32_t *hash_find(const struct flight_table *t, uint64_t id, uint32_t *ret_i)
{
	if (t->n == 0)
		return NULL;
	for (uint32_t i = hash_slot(id, t->cap);; i = (i + 1) & (t->cap - 1)) {
		if (t->index[i].id == id) {
			*ret_i = i;
			return &t->index[i].rec;
		}
		if (!t->index[i].id)
			return NULL;
	}
}

static void hash_del(struct flight_table *t, uint32_t i)
{
	uint32_t j = i, m = t->cap - 1;

	for (;;) {
		uint32_t home;

		j = (j + 1) & m;
		if (!t->index[j].id)
			break;
		home = hash_slot(t->index[j].id, t->cap);
		/* Entry j may fill the hole at i unless its home lies in (i, j]. */
		if (((j - home) & m) >= ((j - i) & m)) {
			t->index[i] = t->index[j];
			t->rec[t->index[i].rec].hslot = i;
			i = j;
		}
	}
	t->index[i].id = 0;
	t->n--;
}

void flight_table_free(struct flight_table *t)
{
	free(t->rec);
	free(t->index);
	*t = FLIGHT_TABLE_INIT;
}

#define TRIM_ABOVE 1024u /* records or FIFO entries: below it, keeping it costs nothing */

void flights_trim(struct flight_table *t)
{
	if (t->n_used != 0 || t->cap_rec + t->cap <= TRIM_ABOVE)
		return;
	free(t->rec);
	free(t->index);
	*t = FLIGHT_TABLE_INIT;
}

void flight_queue_trim(struct flight_queue *q)
{
	if (q->n_waiting != 0 || q->ring_cap <= TRIM_ABOVE)
		return;
	free(q->ring);
	q->ring = NULL;
	q->ring_cap = 0;
	q->head = q->tail = 0;
}

int flight_queue_init(struct flight_queue *q, unsigned threads)
{
	uint32_t *slots = calloc(threads ? threads : 1, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	free(q->slots);
	free(q->ring);
	*q = (struct flight_queue){ .slots = slots, .threads = threads };
	return 0;
}

void flight_queue_free(struct flight_queue *q)
{
	free(q->slots);
	free(q->ring);
	*q = (struct flight_queue){ 0 };
}

static int ring_grow(struct flight_queue *q, uint32_t need)
{
	uint32_t cap = q->ring_cap ? q->ring_cap : RING_MIN, *ring;

	while (cap < need)
		cap *= 2;
	if (cap == q->ring_cap)
		return 0;
	ring = calloc(cap, sizeof(*ring));
	if (!ring)
		return -ENOMEM;
	for (uint32_t s = q->head; s != q->tail; s++)
		ring[s & (cap - 1)] = q->ring[s & (q->ring_cap - 1)];
	free(q->ring);
	q->ring = ring;
	q->ring_cap = cap;
	return 0;
}

int flights_reserve(struct flight_table *t, struct flight_queue *q, size_t n)
{
	size_t need = t->n_used + n, free_recs = t->n_rec - t->n_used;
	int r;

	if (need > UINT32_MAX / 4)
		return -E2BIG;
	/* Records: the free list first, then new ones at the end of the slab. */
	if (n > free_recs && t->n_rec + (n - free_recs) > t->cap_rec) {
		uint32_t cap = t->cap_rec ? t->cap_rec : 64;
		struct flight *rec;

		while (cap < t->n_rec + (n - free_recs))
			cap *= 2;
		rec = realloc(t->rec, cap * sizeof(*rec));
		if (!rec)
			return -ENOMEM;
		t->rec = rec;
		t->cap_rec = cap;
	}
	/* The hash at most half full. */
	if (need * 2 > t->cap) {
		uint32_t cap = t->cap ? t->cap : HASH_MIN;

		while ((size_t)cap < need * 2)
			cap *= 2;
		r = hash_grow(t, cap);
		if (r < 0)
			return r;
	}
	/* The FIFO: every job may have to wait (holes included). */
	return ring_grow(q, q->tail - q->head + (uint32_t)n);
}

static uint32_t rec_new(struct flight_table *t)
{
	uint32_t i;

	if (t->free_head) {
		i = t->free_head - 1;
		t->free_head = t->rec[i].next_free;
	} else {
		i = t->n_rec++;
	}
	t->n_used++;
	return i;
}

static void rec_free(struct flight_table *t, uint32_t i)
{
	t->rec[i] = (struct flight){ .next_free = t->free_head };
	t->free_head = i + 1;
	t->n_used--;
}

static void start(struct flight_queue *q, struct flight *f, uint32_t index, uint64_t now)
{
	unsigned s = 0;

	while (q->slots[s])
		s++;
	q->slots[s] = index + 1;
	f->slot = (int16_t)s;
	f->started_at = now ? now : 1;
	q->n_running++;
}

struct flight *flights_assign(struct flight_table *t, struct flight_queue *q, struct job *j,
			      uint64_t id, void *owner, uint64_t now, bool may_start)
{
	uint32_t i = rec_new(t);
	struct flight *f = &t->rec[i];

	*f = (struct flight){ .job = j, .id = id, .slot = -1, .owner = owner };
	hash_put(t->index, t->cap, id, i, t->rec);
	t->n++;
	if (may_start && q->n_running < q->threads && q->n_waiting == 0) {
		start(q, f, i, now);
	} else {
		f->pos = q->tail++;
		q->ring[f->pos & (q->ring_cap - 1)] = i + 1;
		q->n_waiting++;
	}
	return f;
}

void flights_prefetch(const struct flight_table *t, uint64_t job_id)
{
	if (t->cap > 0 && job_id > 0)
		__builtin_prefetch(&t->index[hash_slot(job_id, t->cap)]);
}

/* Up to this many threads, a scan of the running records beats the table's cache miss. */
#define FIND_IN_SCAN_MAX 16u

struct flight *flights_find_in(const struct flight_table *t, const struct flight_queue *q,
			       uint64_t job_id)
{
	for (unsigned s = 0; q->threads <= FIND_IN_SCAN_MAX && s < q->threads; s++)
		if (q->slots[s] && t->rec[q->slots[s] - 1].id == job_id)
			return &t->rec[q->slots[s] - 1];
	return flights_find(t, job_id);
}

struct flight *flights_find(const struct flight_table *t, uint64_t job_id)
{
	uint32_t h, *v = job_id ? hash_find(t, job_id, &h) : NULL;

	return v ? &t->rec[*v] : NULL;
}

void flights_done(struct flight_table *t, struct flight_queue *q, struct flight *f)
{
	uint32_t i = (uint32_t)(f - t->rec);

	if (f->slot >= 0) {
		q->slots[f->slot] = 0;
		q->n_running--;
	} else {
		q->ring[f->pos & (q->ring_cap - 1)] = 0; /* a hole, skipped later */
		q->n_waiting--;
		while (q->head != q->tail && !q->ring[q->head & (q->ring_cap - 1)])
			q->head++;
	}
	hash_del(t, f->hslot); /* where it is, without looking for it */
	rec_free(t, i);
}

struct flight *flights_promote(struct flight_table *t, struct flight_queue *q, uint64_t now,
			       unsigned keep)
{
	uint32_t i;

	if (q->n_running >= q->threads || q->n_waiting <= keep)
		return NULL;
	while (!q->ring[q->head & (q->ring_cap - 1)])
		q->head++; /* holes */
	i = q->ring[q->head & (q->ring_cap - 1)] - 1;
	q->ring[q->head++ & (q->ring_cap - 1)] = 0;
	q->n_waiting--;
	while (q->head != q->tail && !q->ring[q->head & (q->ring_cap - 1)])
		q->head++;
	start(q, &t->rec[i], i, now);
	return &t->rec[i];
}

struct flight *flights_running(const struct flight_table *t, const struct flight_queue *q,
			       unsigned i)
{
	return i < q->threads && q->slots[i] ? &t->rec[q->slots[i] - 1] : NULL;
}

size_t flights_collect(struct flight_table *t, struct flight_queue *q, struct job **jobs,
		       uint8_t *flags, uint8_t started)
{
	size_t n = 0;

	for (unsigned s = 0; s < q->threads; s++) {
		struct flight *f = flights_running(t, q, s);

		if (!f)
			continue;
		jobs[n] = f->job;
		flags[n++] = started | f->flags;
		flights_done(t, q, f);
	}
	while (q->n_waiting > 0) {
		struct flight *f;

		while (!q->ring[q->head & (q->ring_cap - 1)])
			q->head++;
		f = &t->rec[q->ring[q->head & (q->ring_cap - 1)] - 1];
		jobs[n] = f->job;
		flags[n++] = f->flags;
		flights_done(t, q, f);
	}
	q->head = q->tail = 0;
	return n;
}

void flights_set_owner(struct flight_table *t, const struct flight_queue *q, void *owner)
{
	for (unsigned s = 0; s < q->threads; s++)
		if (q->slots[s])
			t->rec[q->slots[s] - 1].owner = owner;
	for (uint32_t p = q->head; p != q->tail; p++) {
		uint32_t r = q->ring[p & (q->ring_cap - 1)];

		if (r)
			t->rec[r - 1].owner = owner;
	}
}
