/* SPDX-License-Identifier: MIT */
/*
 * Job states, shared by the config (expect=), the master's ledger and the reports.
 * queued -> running -> done | failed | crashed | timed_out | cancelled.
 * The numbering is part of the report order; append only.
 */
#pragma once

#include <stdbool.h>

enum job_state {
	JOB_QUEUED,
	JOB_RUNNING,
	JOB_DONE,
	JOB_FAILED,
	JOB_CRASHED,
	JOB_TIMED_OUT,
	JOB_CANCELLED,
	_JOB_STATE_MAX,
};

/* "queued", "running", "done", ... ; NULL for an invalid state. */
const char *job_state_to_string(enum job_state s);

/* Inverse of job_state_to_string; -EINVAL if unknown. */
int job_state_from_string(const char *s);

static inline bool job_state_is_final(enum job_state s)
{
	return s >= JOB_DONE && s < _JOB_STATE_MAX;
}
