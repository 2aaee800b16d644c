/* SPDX-License-Identifier: MIT */
/* The `bulkhead` command's subcommands and their shared exit codes. */
#pragma once

#include <stdio.h>

#include "common/control-proto.h"

enum {
	EXIT_ALL_EXPECTED = 0, /* every group reached its expect */
	EXIT_NOT_EXPECTED = 1, /* some job did not (or a fatal error) */
	EXIT_USAGE = 2,
	EXIT_DATA = 65, /* EX_DATAERR: a --state file damaged, newer, or of another run */
	EXIT_IO = 74, /* EX_IOERR: stdout, an output file or the --state file failed */
	EXIT_CONFIG = 78, /* EX_CONFIG */
};

int cmd_run(int argc, char **argv);
/*
 * Whether an output file named on the command line (--report-json, --json, --svg) can be
 * written, checked before a run rather than after it: 0, or -errno (logged with the option's
 * name). An existing file is left as it is; one created for the check is removed.
 */
int cli_check_output_path(const char *option, const char *path);
/*
 * `bulkhead experiment` (experiment.c): 0 done, 1 a run failed or was interrupted, 2 usage,
 * EXIT_IO --json or --svg could not be written.
 */
int cmd_experiment(int argc, char **argv);

/*
 * The commands that talk to bulkheadd over the control socket (cmd-*.c). Exit codes:
 * 0 ok, EXIT_CONTROL_FAILED when the daemon answered ok:false, could not be reached or
 * speaks another control protocol, EXIT_USAGE for bad arguments (nothing was sent). argv[0]
 * is the command's name.
 */
enum {
	EXIT_CONTROL_FAILED = 1,
	EXIT_TIMEOUT = 124, /* wait --timeout passed before the jobs ended (as timeout(1)) */
};

/* int cmd_<id>(int argc, char **argv) for each CONTROL_COMMANDS entry (common/control-proto.h). */
#define CLI_COMMAND_DECL(id, name, kind, usage, synopsis, help, output) \
	int cmd_##id(int argc, char **argv);
CONTROL_COMMANDS(CLI_COMMAND_DECL)
#undef CLI_COMMAND_DECL
