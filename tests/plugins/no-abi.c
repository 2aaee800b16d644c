/* SPDX-License-Identifier: MIT */
/* A test plugin that forgot BULKHEAD_JOB_PLUGIN: not a bulkhead plugin. */
#include "bulkhead/job.h"

int outcome(struct bulkhead_job *job);

int outcome(struct bulkhead_job *job)
{
	return 0;
}
