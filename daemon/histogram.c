/* SPDX-License-Identifier: MIT */
/* Fixed-bucket histograms of durations (histogram.h). */
#include "daemon/histogram.h"

const double histogram_le[HISTOGRAM_BUCKETS] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
						 0.25,	0.5,	1,     2.5,  5,	    10,	  60 };

void histogram_observe(struct histogram *h, double seconds)
{
	unsigned i = 0;

	while (i < HISTOGRAM_BUCKETS && seconds > histogram_le[i])
		i++;
	h->counts[i]++;
	h->n++;
	h->sum += seconds;
}
