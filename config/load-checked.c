/* SPDX-License-Identifier: MIT */
/*
 * config_load_checked(): how every program starts from a config, in one place. `bulkhead
 * run`, `bulkhead check-config`, `bulkheadd` and `bulkhead experiment` load the config,
 * probe its plugins in a throwaway worker (probe.c) and, on any error, print every error
 * line and exit 78 (EX_CONFIG) before anything is spawned.
 *
 * The one format: the errors go to stderr as config_load() and config_probe_plugins() wrote
 * them, one per line, each starting with the file's name as given ("demo.conf:12: [pool
 * main] threads = abc: ..."), with no program prefix, so editors and scripts can jump to
 * them; a line that says why there is no better message (out of memory) has the same form.
 *
 * Unlike the rest of config/, this prints: it is the programs' start-up, not the library's
 * parsing, and a reload (daemon/reload.c) does not use it (it logs, and keeps the running
 * config).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "config/config.h"
#include "config/parser.h"
#include "config/probe.h"

/* Prints errors, one or more lines, on stderr; false if there are none. */
static bool print_errors(const char *errors)
{
	size_t n = errors ? strlen(errors) : 0;

	if (n == 0)
		return false;
	fputs(errors, stderr);
	if (errors[n - 1] != '\n')
		fputc('\n', stderr);
	return true;
}

int config_load_checked(const char *path, const char *text, const char *worker, unsigned flags,
			struct config **ret)
{
	struct config *c = NULL;
	char *errors = NULL;
	int r;

	*ret = NULL;
	if (text)
		r = config_load_mem(text, strlen(text), path, &c, &errors);
	else
		r = config_load(path, &c, &errors);
	if (r < 0) {
		if (!print_errors(errors))
			fprintf(stderr, "%s: %s\n", path, strerror(-r));
		free(errors);
		return r == -ENOMEM && (flags & CONFIG_CHECK_OOM_FAILS) ? EXIT_FAILURE : EX_CONFIG;
	}
	if (worker) {
		/* Plugins are loaded by a throwaway worker first: a bad one is a config error. */
		r = config_probe_plugins(c, worker, 0, &errors);
		if (r < 0) {
			if (!print_errors(errors))
				fprintf(stderr, "%s: cannot probe the plugins with %s: %s\n", path,
					worker, strerror(-r));
			free(errors);
			config_free(c);
			return r == -EINVAL ? EX_CONFIG : EXIT_FAILURE;
		}
	}
	*ret = c;
	return 0;
}
