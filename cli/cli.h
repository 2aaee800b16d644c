/* SPDX-License-Identifier: MIT */
/* The `bulkhead` command's subcommands and their shared exit codes. */
#pragma once

#include <stdio.h>

#include "daemon/master.h"

enum {
	EXIT_ALL_EXPECTED = 0, /* every group reached its expect */
	EXIT_NOT_EXPECTED = 1, /* some job did not (or a fatal error) */
	EXIT_USAGE = 2,
	EXIT_IO = 74, /* EX_IOERR: stdout or an output file could not be written */
	EXIT_CONFIG = 78, /* EX_CONFIG */
};

int cmd_run(int argc, char **argv);
/*
 * `bulkhead experiment` (experiment.c): 0 done, 1 a run failed or was interrupted, 2 usage,
 * EXIT_IO --json or --svg could not be written.
 */
int cmd_experiment(int argc, char **argv);

/* Live progress on stderr: a redrawn line on a terminal, periodic plain lines otherwise. */
struct progress;
int progress_start(struct master *m, struct progress **ret);
void progress_stop(struct progress *p);

/* The final per-group table and totals, human-readable. */
void report_table(FILE *f, struct master *m);
/* The JSON report of DESIGN §7. Returns 0 or -errno. */
int report_json_write(const char *path, struct master *m);

/*
 * The commands that talk to bulkheadd over the control socket (commands.c). Exit codes:
 * 0 ok, EXIT_CONTROL_FAILED when the daemon answered ok:false or could not be reached,
 * EXIT_USAGE for bad arguments (nothing was sent). argv[0] is the command's name.
 */
enum {
	EXIT_CONTROL_FAILED = 1,
};

int cmd_status(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
int cmd_reload(int argc, char **argv);
int cmd_log_level(int argc, char **argv);
int cmd_top(int argc, char **argv);
/* submit, wait, cancel, restart, inject: reserved, sent as bare {"command": NAME}. */
int cmd_submit(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_restart(int argc, char **argv);
int cmd_inject(int argc, char **argv);
