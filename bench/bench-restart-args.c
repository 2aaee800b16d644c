/* SPDX-License-Identifier: MIT */
/*
 * bench-restart's command-line values: numbers, pool sizes, ways to start workers, and the
 * worker binary of this build tree.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench-restart.h"

bool arg_uint(const char *s, unsigned min, unsigned max, unsigned *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return false;
	*ret = (unsigned)v;
	return true;
}

bool arg_sizes(char *s, unsigned *sizes, unsigned *n)
{
	char *save = NULL;

	*n = 0;
	for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (*n == POOL_SIZES_MAX || !arg_uint(t, 1, POOL_WORKERS_MAX, &sizes[*n]))
			return false;
		(*n)++;
	}
	return *n > 0;
}

bool arg_starts(char *s, enum worker_start *starts, unsigned *n)
{
	char *save = NULL;

	*n = 0;
	for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		enum worker_start w;

		if (strcmp(t, "fork-server") == 0)
			w = WORKER_START_FORK_SERVER;
		else if (strcmp(t, "exec") == 0)
			w = WORKER_START_EXEC;
		else
			return false;
		for (unsigned i = 0; i < *n; i++)
			if (starts[i] == w)
				return false;
		starts[(*n)++] = w;
	}
	return *n > 0;
}

/* bulkhead-worker at the top of the build tree: this program is in its bench/ folder. */
const char *default_worker(void)
{
	static char path[PATH_MAX + 32];
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return NULL;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	snprintf(path, sizeof(path), "%s/../bulkhead-worker", self);
	return path;
}
