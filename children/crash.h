/* SPDX-License-Identifier: MIT */
/*
 * Crash attribution (see crash.c): fatal signals and exit() in the worker are reported to the
 * master as one CRASH frame naming the job that caused them. Sits on the job context
 * (job-context.h: the current job, the socket) and nothing else of children/.
 */
#pragma once

#include <stdbool.h>

#define CRASH_ALTSTACK_SIZE (64u * 1024u)

/*
 * Installs the handlers for SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT and the exit hook,
 * reporting on the job context's master socket (job_context_set_socket() first). Call once,
 * on the main thread, before any job thread starts; it also sets up the main thread's
 * alternate stack. Returns 0 or -errno.
 */
int crash_install(void);

/* Gives the calling thread its own alternate signal stack. Returns 0 or -errno. */
int crash_thread_init(void);

/* Removes and frees the calling thread's alternate stack. */
void crash_thread_fini(void);

/*
 * on: RLIMIT_CORE unlimited (or up to its hard limit), the process dumpable, so that a fatal
 * signal leaves a core; off: RLIMIT_CORE 0. Returns 0 or -errno (-EPERM: the hard limit is 0).
 */
int crash_core_dumps(bool on);

/* Marks the calling thread as out of memory: its next SIGABRT is reported as OOM. */
void crash_set_oom(void);
