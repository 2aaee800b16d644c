/* SPDX-License-Identifier: MIT */
/*
 * Restart policy arithmetic, free of processes and clocks so it can be tested alone:
 * per-slot exponential backoff with jitter, and the per-pool worker-fault window.
 *
 * Backoff (one per worker slot): after a worker fault, a worker that lived at least
 * min_uptime restarts at once and its backoff starts over at `min`; one that did not restarts
 * after the current backoff, and the backoff then doubles, capped at `max`. The delay actually
 * used carries jitter: a value in [current/2, current] (never below min), so that slots that
 * fault together do not restart in lockstep.
 *
 * Fault window (one per pool): remembers the times of the last max_faults + 1 faults; the pool
 * fails when more than max_faults fall within any `window`.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/units.h"

struct backoff {
	usec_t min;
	usec_t max;
	usec_t current; /* the next non-immediate delay before jitter */
};

void backoff_init(struct backoff *b, usec_t min, usec_t max);

/*
 * A worker fault happened after `uptime`. Returns the delay before the restart (0 = at once)
 * and updates the state. `rnd` is any 32-bit random value (the jitter source).
 */
usec_t backoff_next(struct backoff *b, usec_t uptime, usec_t min_uptime, uint32_t rnd);

/* A worker stopped for a reason that is not a worker fault (a culprit job): start over. */
void backoff_reset(struct backoff *b);

#define FAULT_WINDOW_MAX 1025 /* max_worker_faults is at most 1024 */

struct fault_window {
	unsigned max_faults; /* more than this many in `window`: failed */
	usec_t window;
	unsigned n;     /* valid entries in times[] */
	unsigned head;  /* next slot to write */
	usec_t *times;  /* ring of max_faults + 1 timestamps */
};

/* Returns 0 or -ENOMEM. max_faults in 1..1024. */
int fault_window_init(struct fault_window *w, unsigned max_faults, usec_t window);
void fault_window_done(struct fault_window *w);

/* Records a fault at `now` (non-decreasing). Returns true if the limit is now exceeded. */
bool fault_window_add(struct fault_window *w, usec_t now);

/* Faults recorded within `window` before `now`. */
unsigned fault_window_count(const struct fault_window *w, usec_t now);
