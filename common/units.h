/* SPDX-License-Identifier: MIT */
/*
 * Units used everywhere in bulkhead: time in microseconds (usec_t), sizes in bytes, and
 * rates ("N per DURATION"). Parsing is strict: the whole string must be consumed, the value
 * must fit, and the caller gets -EINVAL / -ERANGE to turn into a message that names the place.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t usec_t;

#define USEC_INFINITY ((usec_t)UINT64_MAX)
#define USEC_PER_MSEC ((usec_t)1000ULL)
#define USEC_PER_SEC ((usec_t)1000000ULL)
#define USEC_PER_MINUTE (60ULL * USEC_PER_SEC)
#define USEC_PER_HOUR (60ULL * USEC_PER_MINUTE)

/* A rate limit: at most `count` events in any window of `window` microseconds. */
struct rate {
	unsigned count;
	usec_t window;
};

/* CLOCK_MONOTONIC now, in microseconds. */
usec_t now_usec(void);

/*
 * "250ms", "1.5s", "10us", "2min", "1h", "0", "infinity". A unit is required except for 0.
 * Fractions are allowed ("1.5s"); the result is rounded down to whole microseconds.
 * Returns 0, -EINVAL (syntax) or -ERANGE (overflow).
 */
int parse_duration(const char *s, usec_t *ret);

/* "10ms..5s": lo <= hi, both durations. A single duration means lo == hi. */
int parse_duration_range(const char *s, usec_t *ret_lo, usec_t *ret_hi);

/* "512M", "1G", "4096", "1.5G", "infinity" (= UINT64_MAX). K M G T, base 1024. */
int parse_size(const char *s, uint64_t *ret);

/* "10/60s": count/duration. count >= 1, duration > 0. */
int parse_rate(const char *s, struct rate *ret);

/* Decimal unsigned integer in [min, max], whole string. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* "yes/no/true/false/on/off/1/0" -> 1 or 0; -EINVAL otherwise. */
int parse_bool(const char *s);

/* "0.25": a probability in [0, 1]. */
int parse_probability(const char *s, double *ret);

/*
 * Formatting, shortest exact form that parse_* reads back: "1.5s", "250ms", "infinity".
 * Returns buf. FORMAT_*_MAX is enough for any value.
 */
#define FORMAT_DURATION_MAX 32
#define FORMAT_SIZE_MAX 32
char *format_duration(char *buf, size_t size, usec_t u);
char *format_size(char *buf, size_t size, uint64_t bytes);
