/* SPDX-License-Identifier: MIT */
/* The `bulkhead` command's subcommands and their shared exit codes. */
#pragma once

#include <stdio.h>

#include "daemon/master.h"

enum {
	EXIT_ALL_EXPECTED = 0, /* every group reached its expect */
	EXIT_NOT_EXPECTED = 1, /* some job did not (or a fatal error) */
	EXIT_USAGE = 2,
	EXIT_CONFIG = 78, /* EX_CONFIG */
};

int cmd_run(int argc, char **argv);

/* Live progress on stderr: a redrawn line on a terminal, periodic plain lines otherwise. */
struct progress;
int progress_start(struct master *m, struct progress **ret);
void progress_stop(struct progress *p);

/* The final per-group table and totals, human-readable. */
void report_table(FILE *f, struct master *m);
/* The JSON report of DESIGN §7. Returns 0 or -errno. */
int report_json_write(const char *path, struct master *m);
