/* SPDX-License-Identifier: MIT */
/*
 *   bulkhead-worker --probe RUN [RUN...]
 *
 * Loads each plugin (RUN = plugin:PATH:SYMBOL) exactly as a worker would (plugin.c: dlopen,
 * ABI check, dlsym) and prints one line per problem on stdout, "RUN: reason", then exits 0
 * if every plugin loaded, 1 if any did not, 2 on a bad command line. Nothing runs but the
 * plugins' constructors, which is the point: the master (config/probe.c) runs this in a
 * throwaway process before it starts any worker, so that a plugin that does not load, or
 * whose constructor crashes (the probe then dies by that signal), is a config error instead
 * of a worker that fails every job or dies at every start.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "plugin.h"
#include "probe.h"

int probe_main(int argc, char **argv)
{
	int ret = PROBE_EXIT_OK;

	log_set_program("bulkhead-worker --probe");
	if (argc < 3 || strcmp(argv[2], "--help") == 0) {
		fprintf(argc < 3 ? stderr : stdout,
			"usage: bulkhead-worker --probe plugin:PATH:SYMBOL...\n"
			"Loads each plugin as a worker would; prints one line per problem.\n");
		return argc < 3 ? PROBE_EXIT_USAGE : PROBE_EXIT_OK;
	}
	for (int i = 2; i < argc; i++) {
		bulkhead_job_fn fn;
		char err[1024];
		void *dl;

		if (plugin_load(argv[i], &dl, &fn, err, sizeof(err)) < 0) {
			printf("%s: %s\n", argv[i], err);
			ret = PROBE_EXIT_PROBLEMS;
		}
		/* Not closed: a plugin's destructors have no business running here either. */
		fflush(stdout);
	}
	/* _exit: returning would run the plugins' destructors, and a crash there is not the
	 * constructor crash the caller would report. */
	fflush(stdout);
	_exit(ret);
}
