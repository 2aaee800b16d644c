/* SPDX-License-Identifier: MIT */
/*
 * Metrics in the Prometheus text exposition format (version 0.0.4): `bulkhead metrics` gets
 * them over the control socket, and `[supervisor] metrics_listen` serves them over HTTP at
 * /metrics (metrics-http.c). docs/metrics.md lists every series.
 */
#pragma once

#include <stddef.h>

struct master;

/* The whole text, malloc'd (its length in *ret_len), or NULL when out of memory. */
char *metrics_render(struct master *m, size_t *ret_len);

/* The content type of that text. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
