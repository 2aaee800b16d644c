/* SPDX-License-Identifier: MIT */
/* `bulkhead-worker --probe RUN...` (see probe.c). */
#pragma once

#define PROBE_OPTION "--probe"

/* Exit codes of the probe (a death by signal is a plugin's constructor crashing it). */
enum {
	PROBE_EXIT_OK = 0, /* every plugin loads */
	PROBE_EXIT_PROBLEMS = 1, /* one line on stdout per plugin that does not */
	PROBE_EXIT_USAGE = 2,
};

/* argv[1] is PROBE_OPTION. Returns the exit code. */
int probe_main(int argc, char **argv);
