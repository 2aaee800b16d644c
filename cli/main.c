/* SPDX-License-Identifier: MIT */
/* `bulkhead`: dispatches to the subcommands. Exit codes: see cli.h and bulkhead(1). */
#include <stdio.h>
#include <string.h>

#include "cli/check-config.h"
#include "cli/cli.h"
#include "common/log.h"

static void usage(FILE *f)
{
	fputs("Usage: bulkhead COMMAND [ARGS]\n"
	      "\n"
	      "Commands:\n"
	      "  run CONFIG [--report-json FILE] [--quiet]\n"
	      "                         run every job of CONFIG under supervision, then exit\n"
	      "  check-config FILE      validate FILE and print the effective config\n"
	      "\n"
	      "Exit codes: 0 every job group reached its expect, 1 some job did not,\n"
	      "            2 usage error, 78 config error.\n",
	      f);
}

int main(int argc, char **argv)
{
	log_set_program("bulkhead");
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "check-config") == 0)
		return cmd_check_config(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("bulkhead %s\n", BULKHEAD_VERSION);
		return 0;
	}
	fprintf(stderr, "bulkhead: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
