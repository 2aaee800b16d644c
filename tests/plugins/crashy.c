/* SPDX-License-Identifier: MIT */
/*
 * A test plugin for crash diagnostics (tests/integration/test-run.c): its job, crash_job,
 * calls the exported parse_record(), which dereferences NULL. The crash report must name
 * crashy.so:parse_record. Compiled without sanitizer instrumentation, so that sanitizer builds
 * die by the real signal too.
 */
#include <stddef.h>

#include "bulkhead/job.h"

BULKHEAD_JOB_PLUGIN;

#define NO_SANITIZE __attribute__((noinline, no_sanitize("address", "undefined")))

int crash_job(struct bulkhead_job *job);
int parse_record(const int *record);

NO_SANITIZE int parse_record(const int *record)
{
	return *(const volatile int *)record + 1;
}

int crash_job(struct bulkhead_job *job)
{
	const int *volatile record = NULL;

	(void)job;
	return parse_record(record) == 1 ? 0 : 1;
}
