/* SPDX-License-Identifier: MIT */
/*
 * A test plugin (tests/integration/test-worker.c) that does what its `do` argument says, with
 * the public job API only, as any plugin would:
 *
 *   do=done         return 0                     do=fail       return `status` (default 1)
 *   do=segv|abort|fpe|ill|bus|stack              the real fault, from the job thread
 *   do=exit         exit(`status`)               do=hang       sleep forever
 *   do=result       set `text` as the result (twice: the last one wins), return 0
 *   do=long-result  a result of 400 bytes (cut to 255) with control characters
 *   do=progress     report 0.25, 0.5, 1.0 (and many calls in between), return 0
 *   do=cancel-wait  progress 0 (to say it runs), wait until bulkhead_job_cancelled(),
 *                   result "cancelled", return 3
 *   do=input        result = the "input" argument, return 0 (7 if there is none)
 *   do=log          log one line per level, return 0
 *   do=segv-once    the first run (no file `mark` yet) creates `mark` and faults (SIGSEGV);
 *                   later runs do what do=cancel-wait does: a retry that runs until cancelled
 *
 * The faults are compiled without sanitizer instrumentation so that sanitizer builds still
 * die by the real signal.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/job.h"

BULKHEAD_JOB_PLUGIN;

#define NO_SANITIZE __attribute__((noinline, no_sanitize("address", "undefined")))

int outcome(struct bulkhead_job *job);
int other(struct bulkhead_job *job);

static NO_SANITIZE void fault_segv(void)
{
	volatile uintptr_t addr = 16;

	*(volatile int *)addr = 1;
}

static NO_SANITIZE void fault_fpe(void)
{
	volatile int a = 1, b = 0, c;

	c = a / b;
	(void)c;
}

static NO_SANITIZE void fault_bus(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	volatile char *p;
	int fd = memfd_create("plugin-bus", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, (off_t)page) < 0)
		return;
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED || ftruncate(fd, 0) < 0)
		return;
	p[0] = 1;
}

static volatile int stop_recursing;

static NO_SANITIZE __attribute__((noclone)) unsigned long recurse(volatile char *up,
								  unsigned long depth)
{
	volatile char frame[256];

	frame[0] = (char)(up ? up[0] + 1 : 0);
	frame[sizeof(frame) - 1] = frame[0];
	if (stop_recursing)
		return depth;
	return recurse(frame, depth + 1) + (unsigned long)frame[sizeof(frame) - 1];
}

static int status_arg(struct bulkhead_job *job, int def)
{
	const char *s = bulkhead_job_arg(job, "status");

	return s ? atoi(s) : def;
}

static void pause_ms(long ms)
{
	nanosleep(&(struct timespec){ .tv_nsec = ms * 1000000L }, NULL);
}

int outcome(struct bulkhead_job *job)
{
	const char *what = bulkhead_job_arg(job, "do");

	if (!what || strcmp(what, "done") == 0)
		return 0;
	if (strcmp(what, "fail") == 0)
		return status_arg(job, 1);
	if (strcmp(what, "segv-once") == 0) {
		const char *mark = bulkhead_job_arg(job, "mark");
		int fd = mark ? open(mark, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;

		if (fd >= 0) {
			close(fd);
			fault_segv();
		}
		what = "cancel-wait";
	}
	if (strcmp(what, "segv") == 0)
		fault_segv();
	else if (strcmp(what, "abort") == 0)
		abort();
	else if (strcmp(what, "fpe") == 0)
		fault_fpe();
	else if (strcmp(what, "ill") == 0)
		__builtin_trap();
	else if (strcmp(what, "bus") == 0)
		fault_bus();
	else if (strcmp(what, "stack") == 0)
		(void)recurse(NULL, 0);
	else if (strcmp(what, "exit") == 0)
		exit(status_arg(job, 5));
	else if (strcmp(what, "hang") == 0)
		for (;;)
			pause_ms(1000); /* deaf to cancellation: only a kill ends it */
	else if (strcmp(what, "result") == 0) {
		const char *text = bulkhead_job_arg(job, "text");

		bulkhead_job_result(job, "first");
		bulkhead_job_result(job, "%s #%s", text ? text : "", bulkhead_job_id(job));
		return 0;
	} else if (strcmp(what, "long-result") == 0) {
		char big[401];

		memset(big, 'x', 400);
		big[400] = '\0';
		big[0] = '\t';
		big[1] = '\n';
		big[2] = 0x7f;
		bulkhead_job_result(job, "%s", big);
		return 0;
	} else if (strcmp(what, "progress") == 0) {
		bulkhead_job_progress(job, 0.25);
		for (int i = 0; i < 100000; i++)
			bulkhead_job_progress(job, 0.3 + i * 1e-6); /* rate-limited away */
		pause_ms(120);
		bulkhead_job_progress(job, 0.5);
		bulkhead_job_progress(job, 2.0); /* clamped to 1.0, and sent at once */
		bulkhead_job_progress(job, 1.0); /* the same again: nothing */
		return 0;
	} else if (strcmp(what, "cancel-wait") == 0) {
		bulkhead_job_progress(job, 0); /* "I am running" for the test */
		while (!bulkhead_job_cancelled(job))
			pause_ms(1);
		bulkhead_job_result(job, "cancelled");
		return 3;
	} else if (strcmp(what, "input") == 0) {
		const char *in = bulkhead_job_arg(job, "input");

		if (!in)
			return 7;
		bulkhead_job_result(job, "%s", in);
		return 0;
	} else if (strcmp(what, "log") == 0) {
		bulkhead_job_log(job, BULKHEAD_LOG_ERR, "plugin says %s", "error");
		bulkhead_job_log(job, BULKHEAD_LOG_INFO, "plugin says %s", "info");
		bulkhead_job_log(job, BULKHEAD_LOG_DEBUG, "plugin says %s", "debug");
		bulkhead_job_log(job, 99, "plugin says %s", "clamped");
		return 0;
	}
	return 99; /* unknown `do`, or a fault that did not happen */
}

/* A second job function in the same object. */
int other(struct bulkhead_job *job)
{
	return 42;
}
