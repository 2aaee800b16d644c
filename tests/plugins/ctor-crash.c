/* SPDX-License-Identifier: MIT */
/*
 * A test plugin whose constructor raises SIGSEGV: loading it kills the process that loads
 * it. The probe must die of it and the one who ran the probe must report it, not die.
 */
#include <signal.h>

#include "bulkhead/job.h"

BULKHEAD_JOB_PLUGIN;

int outcome(struct bulkhead_job *job);

__attribute__((constructor)) static void crash_on_load(void)
{
	raise(SIGSEGV);
}

int outcome(struct bulkhead_job *job)
{
	return 0;
}
