/* SPDX-License-Identifier: MIT */
/*
 * What `bulkhead run` shows of a running master (progress.c, report.c): through the
 * supervisor's public front (daemon/master.h), its views and stats, nothing else.
 */
#pragma once

#include <stdio.h>

#include "daemon/master.h"

/* Live progress on stderr: a redrawn line on a terminal, periodic plain lines otherwise. */
struct progress;
int progress_start(struct master *m, struct progress **ret);
void progress_stop(struct progress *p);

/* The final per-group table and totals, human-readable. */
void report_table(FILE *f, struct master *m);
/* The JSON report of DESIGN §7. Returns 0 or -errno. */
int report_json_write(const char *path, struct master *m);
