/* SPDX-License-Identifier: MIT */
/*
 * Restart policy arithmetic (see policy.h): per-slot backoff with jitter and the per-pool
 * worker-fault window. Pure functions of their arguments: no clocks, no randomness of our own
 * (the caller passes a random word in), no logging. The only allocation is the fault window's
 * ring, made once when the pool is set up.
 *
 * Invariants kept here:
 *   - backoff: min <= current <= max at all times; doubling saturates instead of overflowing
 *     (max may be USEC_INFINITY). A delay is in [max(current / 2, min), current].
 *   - backoff with min == 0: a current of 0 cannot double, so it steps to 1 us and doubles
 *     from there (still capped at max); min == max == 0 means "always restart at once".
 *   - fault window: times[] holds the last n (<= max_faults + 1) fault times in order, the
 *     oldest at head once the ring is full. A fault at t is "within the window" at `now` when
 *     now - t < window. Times are expected non-decreasing; one from the future counts as
 *     within rather than wrapping around.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "daemon/policy.h"

static usec_t usec_min(usec_t a, usec_t b)
{
	return a < b ? a : b;
}

static usec_t usec_max(usec_t a, usec_t b)
{
	return a > b ? a : b;
}

void backoff_init(struct backoff *b, usec_t min, usec_t max)
{
	assert(b);
	/* The config guarantees min <= max; if not, treat the range as the single value min. */
	*b = (struct backoff){ .min = min, .max = usec_max(min, max), .current = min };
}

void backoff_reset(struct backoff *b)
{
	assert(b);
	b->current = b->min;
}

/* floor(span * rnd / UINT32_MAX) without a 128-bit product: 0 for rnd 0, span for UINT32_MAX. */
static usec_t scale(usec_t span, uint32_t rnd)
{
	const usec_t m = UINT32_MAX;
	usec_t q = span / m, r = span % m;

	/* q * rnd <= q * m <= span, and r * rnd < m * m < 2^64: neither can overflow. */
	return q * rnd + r * rnd / m;
}

static usec_t jitter(const struct backoff *b, uint32_t rnd)
{
	usec_t hi = b->current;
	usec_t lo = usec_min(usec_max(hi / 2, b->min), hi);

	return lo + scale(hi - lo, rnd);
}

static usec_t doubled(const struct backoff *b)
{
	usec_t c = b->current;

	if (c == 0)
		return usec_min(1, b->max);
	if (c > b->max / 2)
		return b->max;
	return usec_min(c * 2, b->max);
}

usec_t backoff_next(struct backoff *b, usec_t uptime, usec_t min_uptime, uint32_t rnd)
{
	usec_t delay;

	assert(b);
	if (uptime >= min_uptime) {
		b->current = b->min;
		return 0;
	}
	delay = jitter(b, rnd);
	b->current = doubled(b);
	return delay;
}

int fault_window_init(struct fault_window *w, unsigned max_faults, usec_t window)
{
	assert(w);
	*w = (struct fault_window){ 0 };
	if (max_faults < 1 || max_faults >= FAULT_WINDOW_MAX || window == 0)
		return -EINVAL;
	w->times = calloc((size_t)max_faults + 1, sizeof(*w->times));
	if (!w->times)
		return -ENOMEM;
	w->max_faults = max_faults;
	w->window = window;
	return 0;
}

void fault_window_done(struct fault_window *w)
{
	if (!w)
		return;
	free(w->times);
	*w = (struct fault_window){ 0 };
}

static unsigned ring_size(const struct fault_window *w)
{
	return w->max_faults + 1;
}

static bool within(const struct fault_window *w, usec_t t, usec_t now)
{
	return t > now || now - t < w->window;
}

bool fault_window_add(struct fault_window *w, usec_t now)
{
	assert(w && w->times);
	w->times[w->head] = now;
	w->head = (w->head + 1) % ring_size(w);
	if (w->n < ring_size(w))
		w->n++;
	/* Full ring: the oldest of the last max_faults + 1 faults is the next slot to write. */
	return w->n == ring_size(w) && within(w, w->times[w->head], now);
}

unsigned fault_window_count(const struct fault_window *w, usec_t now)
{
	unsigned count = 0;

	assert(w);
	for (unsigned i = 0; i < w->n; i++)
		if (within(w, w->times[i], now))
			count++;
	return count;
}
