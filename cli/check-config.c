/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead check-config FILE`: loads FILE exactly as the daemon would and either prints the
 * effective config (every key, defaults included) or the errors. The errors already name
 * FILE:LINE, so they are printed as they are, with no prefix: editors and scripts can jump
 * to them. Like the daemon, it loads every plugin of the config in a throwaway worker
 * (`bulkhead-worker --probe`, config/probe.c): a plugin that does not load is a config error.
 * Loading, probing and the errors are config_load_checked()'s, the daemon's and run's too;
 * exit 78 (EX_CONFIG) comes from there.
 */
#include <stdio.h>
#include <string.h>

#include "cli/check-config.h"
#include "config/config.h"
#include "daemon/spawn-worker.h"

#define CHECK_CONFIG_EXIT_OK 0
#define CHECK_CONFIG_EXIT_FAILURE 1
#define CHECK_CONFIG_EXIT_USAGE 2

static void usage(FILE *f)
{
	fputs("Usage: bulkhead check-config FILE\n"
	      "\n"
	      "Validate the config FILE and print the effective config, every key with its\n"
	      "value or default. Plugins are loaded in a throwaway worker to check them.\n"
	      "Exit status: 0 valid, 78 config errors (printed on stderr as FILE:LINE:\n"
	      "message), 2 usage error, 74 the config could not be written to stdout,\n"
	      "1 other errors (the probe could not run).\n"
	      "\n"
	      "  -h, --help    show this help\n",
	      f);
}

int cmd_check_config(int argc, char **argv)
{
	const char *path = NULL;
	struct config *c = NULL;
	bool options = true;
	int r;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (options && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
			usage(stdout);
			return fflush(stdout) == 0 ? CHECK_CONFIG_EXIT_OK
						   : CHECK_CONFIG_EXIT_FAILURE;
		}
		if (options && strcmp(a, "--") == 0) {
			options = false;
			continue;
		}
		if (options && a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "bulkhead check-config: unknown option '%s'\n", a);
			usage(stderr);
			return CHECK_CONFIG_EXIT_USAGE;
		}
		if (path) {
			fprintf(stderr, "bulkhead check-config: unexpected argument '%s'\n", a);
			usage(stderr);
			return CHECK_CONFIG_EXIT_USAGE;
		}
		path = a;
	}
	if (!path) {
		fputs("bulkhead check-config: no config file given\n", stderr);
		usage(stderr);
		return CHECK_CONFIG_EXIT_USAGE;
	}

	r = config_load_checked(path, NULL, spawn_worker_path(), CONFIG_CHECK_OOM_FAILS, &c);
	if (r != 0)
		return r;
	config_print(c, stdout);
	config_free(c);
	return CHECK_CONFIG_EXIT_OK; /* main() checks that stdout was written */
}
