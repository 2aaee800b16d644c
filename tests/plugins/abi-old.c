/* SPDX-License-Identifier: MIT */
/* A test plugin built for another job ABI: the worker must refuse it before calling it. */
#include "bulkhead/job.h"

__attribute__((visibility("default"))) extern const unsigned bulkhead_job_abi;
const unsigned bulkhead_job_abi = BULKHEAD_JOB_ABI + 1;

int outcome(struct bulkhead_job *job);

int outcome(struct bulkhead_job *job)
{
	return 0;
}
