/* SPDX-License-Identifier: MIT */
/* Names of job states (see job-state.h). */
#include <errno.h>
#include <string.h>

#include "job-state.h"

static const char *const names[_JOB_STATE_MAX] = {
	[JOB_QUEUED] = "queued",   [JOB_RUNNING] = "running",     [JOB_DONE] = "done",
	[JOB_FAILED] = "failed",   [JOB_CRASHED] = "crashed",     [JOB_TIMED_OUT] = "timed_out",
	[JOB_CANCELLED] = "cancelled",
};

const char *job_state_to_string(enum job_state s)
{
	if ((unsigned)s >= _JOB_STATE_MAX)
		return NULL;
	return names[s];
}

int job_state_from_string(const char *s)
{
	for (int i = 0; i < _JOB_STATE_MAX; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -EINVAL;
}
