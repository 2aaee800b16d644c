/* SPDX-License-Identifier: MIT */
/*
 * Crash attribution (see crash.c): fatal signals and exit() in the worker are reported to the
 * master as one CRASH frame naming the job that caused them. Sits on the job context
 * (job-context.h: the current job, the socket) and nothing else of children/.
 */
#pragma once

#include <stdatomic.h>

#include <stdbool.h>

#define CRASH_ALTSTACK_SIZE (64u * 1024u)

/*
 * Installs the handlers for SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT and the exit hook,
 * reporting on the job context's master socket (job_context_set_socket() first). Call once,
 * on the main thread, before any job thread starts; it also sets up the main thread's
 * alternate stack. Returns 0 or -errno.
 */
int crash_install(void);

/*
 * True once a thread of this process has begun reporting a crash (its CRASH frame is going
 * out, or out): the process is about to die, and what it does from then on is not to be
 * trusted. pool.c asks before each job.
 */
bool crash_reported(void);

/* Parks the calling thread for good: it ends with the process (the crash's signal). */
_Noreturn void crash_hold_thread(void);

/* Gives the calling thread its own alternate signal stack. Returns 0 or -errno. */
int crash_thread_init(void);

/* Removes and frees the calling thread's alternate stack. */
void crash_thread_fini(void);

/*
 * on: RLIMIT_CORE unlimited (or up to its hard limit), the process dumpable, so that a fatal
 * signal leaves a core; off: RLIMIT_CORE 0. Returns 0 or -errno (-EPERM: the hard limit is 0).
 */
int crash_core_dumps(bool on);

/*
 * Results held back when a job crashes its worker (pool.c holds finished jobs' results up to
 * 2 ms to batch them): the crashing job thread's handler, once the CRASH frames are out,
 * wakes the main thread on wake_fd (the pool's eventfd) and waits for it to send what is
 * held, so those jobs end done instead of running again. The main thread calls
 * crash_flush_pass_begin() when its poll returns and crash_flush_pass_done() with that
 * number once every result it took is sent. wake_fd < 0: no flush. When `held` (the
 * outbox's count) is 0 and the main thread's last pass sent all it took, nothing is held and
 * the handler does not wait (a solo worker's one job, jobs that report at once).
 */
void crash_flush_setup(int wake_fd, const atomic_size_t *held);
unsigned crash_flush_pass_begin(void);
void crash_flush_pass_done(unsigned pass);

/*
 * This process is a contained run's child (contain.c): nothing held to flush, and one thread.
 * Its crash handler sets that thread to SCHED_IDLE as soon as the CRASH frame is out, instead
 * of listing /proc/self/task for a worker's others (a thread the job itself made there is not
 * demoted: it dies with the process a moment later).
 */
void crash_contained_child(void);

/* Marks the calling thread as out of memory: its next SIGABRT is reported as OOM. */
void crash_set_oom(void);
