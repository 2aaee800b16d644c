/* SPDX-License-Identifier: MIT */
/*
 * bulkhead-worker: runs jobs for the master on a pool of threads. Started by the master
 * only (fd 3 is its socket); everything lives in worker.c and the files next to it.
 */
#include "worker.h"

int main(int argc, char **argv)
{
	return worker_main(argc, argv);
}
