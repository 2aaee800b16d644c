/* SPDX-License-Identifier: MIT */
/*
 * bulkhead-worker: one binary, several kinds of process (OpenBSD's procs[] table). The first
 * argument picks the kind; without one of theirs it is a worker, started by the master only
 * (fd 3 its socket: worker.c). Each main is the top of its own stack of children/ files
 * (job-context.h draws the layers); the zygote turns into a worker through worker_main(),
 * and standalone runs share the worker's exit codes (worker.h).
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "exec-trampoline.h"
#include "probe.h"
#include "standalone.h"
#include "worker.h"
#include "zygote.h"

static const struct proc {
	const char *option; /* argv[1] that picks it */
	bool with_value; /* also "OPTION=VALUE" */
	int (*main)(int argc, char **argv); /* returns the exit code (or never returns) */
} procs[] = {
	{ ZYGOTE_OPTION, false, zygote_main }, /* the master's fork server */
	{ EXEC_TRAMPOLINE_OPTION, false, exec_trampoline_main }, /* an exec: command's parent */
	{ PROBE_OPTION, false, probe_main }, /* loads plugins, says which do not */
	{ STANDALONE_OPTION, true, standalone_main }, /* the experiment's unsupervised baselines */
};

static bool picks(const struct proc *p, const char *arg)
{
	size_t n = strlen(p->option);

	return strncmp(arg, p->option, n) == 0 &&
	       (arg[n] == '\0' || (p->with_value && arg[n] == '='));
}

int main(int argc, char **argv)
{
	for (size_t i = 0; argc > 1 && i < sizeof(procs) / sizeof(procs[0]); i++)
		if (picks(&procs[i], argv[1]))
			return procs[i].main(argc, argv);
	/* The worker itself: --pool NAME --index N --threads T --master-pid PID ... */
	return worker_main(argc, argv);
}
