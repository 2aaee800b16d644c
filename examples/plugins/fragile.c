/* SPDX-License-Identifier: MIT */
/*
 * fragile: a deliberately fragile plugin, for tests and demos of blame and quarantine.
 *
 *     [job poison]
 *     run = plugin:fragile.so:fragile
 *     inputs = poison/[a-z]*
 *
 * It reads its input file (argument "input") and does what the file says, so a directory
 * of small files is a set of jobs with chosen outcomes. A file whose content starts with
 *
 *     segv    writes through a NULL pointer (SIGSEGV)
 *     abort   calls abort() (SIGABRT)
 *     fpe     divides by zero (SIGFPE)
 *     hang    loops forever, ignoring cancellation (the job's timeout ends it)
 *     fail    returns 1 (failed, result "failed on purpose")
 *     exit    calls exit(3) from the job thread (takes its worker down)
 *
 * makes the job do that; any other content is summed: result "N bytes, sum X", return 0.
 * An input that cannot be read fails the job with the reason as its result. The crashes
 * are real faults, raised on the job's thread: the worker's handlers blame this job, and the
 * other jobs of the worker are re-run elsewhere.
 */
#include <bulkhead/job.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

BULKHEAD_JOB_PLUGIN;

int fragile(struct bulkhead_job *job);

static void crash_segv(void)
{
	volatile int *volatile p = NULL;

	*p = 1;
}

static void crash_fpe(void)
{
	volatile int zero = 0, x = 1;

	x /= zero;
	raise(SIGFPE); /* where integer division by zero does not trap */
}

static void hang(void)
{
	volatile unsigned long n = 0;

	for (;;)
		n++;
}

int fragile(struct bulkhead_job *job)
{
	const char *path = bulkhead_job_arg(job, "input");
	unsigned char buf[65536], head[8] = { 0 };
	unsigned long long bytes = 0, sum = 0;
	size_t n, have = 0;
	FILE *f;

	if (!path) {
		bulkhead_job_result(job, "no input (use inputs = GLOB or spool = DIR)");
		return 1;
	}
	f = fopen(path, "rbe");
	if (!f) {
		bulkhead_job_result(job, "cannot open: %s", strerror(errno));
		bulkhead_job_log(job, BULKHEAD_LOG_ERR, "%s: cannot open: %s", path,
				 strerror(errno));
		return 1;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (have < sizeof(head) - 1) {
			size_t take = n < sizeof(head) - 1 - have ? n : sizeof(head) - 1 - have;

			memcpy(head + have, buf, take);
			have += take;
		}
		for (size_t i = 0; i < n; i++)
			sum += buf[i];
		bytes += n;
	}
	if (ferror(f)) {
		bulkhead_job_result(job, "cannot read: %s", strerror(errno));
		fclose(f);
		return 1;
	}
	fclose(f);

	if (strncmp((char *)head, "segv", 4) == 0)
		crash_segv();
	if (strncmp((char *)head, "abort", 5) == 0)
		abort();
	if (strncmp((char *)head, "fpe", 3) == 0)
		crash_fpe();
	if (strncmp((char *)head, "hang", 4) == 0)
		hang();
	if (strncmp((char *)head, "fail", 4) == 0) {
		bulkhead_job_result(job, "failed on purpose");
		return 1;
	}
	if (strncmp((char *)head, "exit", 4) == 0)
		exit(3);

	bulkhead_job_progress(job, 1.0);
	bulkhead_job_result(job, "%llu bytes, sum %llu", bytes, sum);
	return 0;
}
