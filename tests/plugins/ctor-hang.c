/* SPDX-License-Identifier: MIT */
/* A test plugin whose constructor never returns: the probe must give up on it, on time. */
#include <unistd.h>

#include "bulkhead/job.h"

BULKHEAD_JOB_PLUGIN;

int outcome(struct bulkhead_job *job);

__attribute__((constructor)) static void hang_on_load(void)
{
	for (;;)
		pause();
}

int outcome(struct bulkhead_job *job)
{
	return 0;
}
