/* SPDX-License-Identifier: MIT */
/*
 * bulkhead-worker: runs jobs for the master on a pool of threads. Started by the master
 * only (fd 3 is its socket); everything lives in worker.c and the files next to it.
 * `--zygote` makes it the master's fork server instead (zygote.c); `--probe RUN...` loads
 * plugins and reports problems (probe.c).
 */
#include <string.h>

#include "exec.h"
#include "probe.h"
#include "worker.h"
#include "zygote.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--zygote") == 0)
		return zygote_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], EXEC_TRAMPOLINE_OPTION) == 0)
		return exec_trampoline_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], PROBE_OPTION) == 0)
		return probe_main(argc, argv);
	return worker_main(argc, argv);
}
