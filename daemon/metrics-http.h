/* SPDX-License-Identifier: MIT */
/* The metrics over HTTP at /metrics ([supervisor] metrics_listen): see metrics-http.c. */
#pragma once

#include <systemd/sd-event.h>

struct master;
struct metrics_http;

/*
 * Listens on `listen` ("ADDRESS:PORT"; NULL or "": nothing, *ret NULL) and serves the metrics
 * from loop e; logs "metrics at http://...". 0, or -errno (the address in use, not ours...).
 */
int metrics_http_start(struct master *m, sd_event *e, const char *listen,
		       struct metrics_http **ret);
void metrics_http_free(struct metrics_http *h);
