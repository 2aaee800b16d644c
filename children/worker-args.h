/* SPDX-License-Identifier: MIT */
/*
 * The worker's command line (see worker.c):
 *
 *   bulkhead-worker --pool NAME --index N --threads T --master-pid PID [--memory-max BYTES]
 *                   [--uid UID --gid GID] [--core-dumps] [--spawner]
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct worker_options {
	const char *pool;
	unsigned index;
	unsigned threads;
	pid_t master_pid;
	uint64_t memory_max; /* 0: no limit */
	uid_t uid; /* (uid_t)-1: keep the master's */
	gid_t gid;
	bool core_dumps; /* --core-dumps: a crash leaves a core (crash_core_dumps()) */
	bool spawner; /* --spawner: fork the spawner of exec: trampolines (spawner.c) */
};

void worker_usage(FILE *f);
/* Fills o from argv; logs what is wrong and returns -EINVAL. */
int worker_parse_args(int argc, char **argv, struct worker_options *o);
