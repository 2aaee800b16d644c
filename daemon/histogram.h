/* SPDX-License-Identifier: MIT */
/*
 * A histogram of durations in seconds with fixed buckets (the metrics' run-time and commit
 * histograms, metrics.c): kept by the master as things happen, read when metrics are asked.
 */
#pragma once

#include <stdint.h>

#define HISTOGRAM_BUCKETS 14

/* Upper bounds of the buckets, in seconds (+Inf excluded). */
extern const double histogram_le[HISTOGRAM_BUCKETS];

struct histogram {
	uint64_t counts[HISTOGRAM_BUCKETS + 1]; /* per bucket (not cumulative); the last is +Inf */
	uint64_t n;
	double sum;
};

void histogram_observe(struct histogram *h, double seconds);
