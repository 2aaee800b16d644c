/* SPDX-License-Identifier: MIT */
/*
 * A test plugin for crash diagnostics (tests/integration/test-run.c): its job, crash_job,
 * calls the exported parse_record(), which dereferences NULL. The crash report must name
 * crashy.so:parse_record. Compiled without sanitizer instrumentation, so that sanitizer builds
 * die by the real signal too.
 *
 * For what a crashed worker's other threads do (test-run's test_crashed_worker_starts_
 * nothing): pid_then_crash writes its worker's pid to the file its argument `file` names,
 * waits for the file `go` to exist, then crashes as crash_job does; until_file_job, in that
 * worker (`file` names it, or is not written yet), returns once the file `wait` exists (each
 * wait at most 10 s), in another worker at once; pid_job writes its worker's pid to
 * DIR/after.ID (its argument `dir`).
 */
#include <stddef.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

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

int pid_then_crash(struct bulkhead_job *job);
int until_file_job(struct bulkhead_job *job);
int pid_job(struct bulkhead_job *job);

/* Waits (up to 10 s) until path exists. */
static void wait_for_file(const char *path)
{
	for (int i = 0; path && i < 100000 && access(path, F_OK) < 0; i++)
		nanosleep(&(struct timespec){ .tv_nsec = 100000 }, NULL);
}

/* The pid the file at path names, or 0. */
static int pid_in(const char *path)
{
	FILE *f = path ? fopen(path, "r") : NULL;
	int pid = 0;

	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return pid;
}

/*
 * Writes this process's pid to path whole, or not at all: through PATH.tmp and a rename, so
 * whoever sees the file (a test polling for it) reads the pid. Returns 0 or -1.
 */
static int write_pid(const char *path)
{
	char tmp[4096];
	FILE *f;
	int r;

	if (!path || snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -1;
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	r = fprintf(f, "%d\n", (int)getpid()) < 0;
	r |= fclose(f) != 0;
	return r || rename(tmp, path) < 0 ? -1 : 0;
}

int pid_then_crash(struct bulkhead_job *job)
{
	(void)write_pid(bulkhead_job_arg(job, "file"));
	wait_for_file(bulkhead_job_arg(job, "go"));
	return crash_job(job);
}

int until_file_job(struct bulkhead_job *job)
{
	int pid = pid_in(bulkhead_job_arg(job, "file"));

	if (pid > 0 && pid != (int)getpid())
		return 0; /* run again elsewhere, after the crash */
	wait_for_file(bulkhead_job_arg(job, "wait"));
	return 0;
}

/* Writes its worker's pid to DIR/after.ID, DIR its argument `dir`. */
int pid_job(struct bulkhead_job *job)
{
	const char *dir = bulkhead_job_arg(job, "dir");
	char path[4096];

	if (!dir)
		return 2;
	snprintf(path, sizeof(path), "%s/after.%s", dir, bulkhead_job_id(job));
	return write_pid(path) == 0 ? 0 : 1;
}
