/* SPDX-License-Identifier: MIT */
/*
 * A test plugin that loads fine but whose destructor raises SIGSEGV. The probe must accept
 * it: a probe never unloads what it loaded, and never runs destructors on its way out.
 */
#include <signal.h>

#include "bulkhead/job.h"

BULKHEAD_JOB_PLUGIN;

int outcome(struct bulkhead_job *job);

__attribute__((destructor)) static void crash_on_unload(void)
{
	raise(SIGSEGV);
}

int outcome(struct bulkhead_job *job)
{
	return 0;
}
