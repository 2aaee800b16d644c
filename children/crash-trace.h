/* SPDX-License-Identifier: MIT */
/*
 * Crash diagnostics (see crash-trace.c): where a fatal signal hit, sent as one CRASH_INFO
 * frame from the crash handler after its CRASH frame. Sits on the job context's socket and
 * nothing else of children/.
 */
#pragma once

#include <stdint.h>

/*
 * Loads what the handler's backtrace() needs (libgcc_s) now, outside any handler. Call at
 * every thread's start (crash_thread_init() does); cheap after the first call.
 */
void crash_trace_prepare(void);

/*
 * From the crash handler only: the stack of the faulting thread, frame 0 the faulting
 * instruction (from ucontext where the architecture is known), sent as CRASH_INFO for job_id
 * with the fault address addr. Async-signal-safe as far as glibc allows (crash-trace.c);
 * sends nothing if it finds nothing. floor (or NULL): the return address where the worker's
 * own frames begin (the job's job_spec_run() caller); the trace stops before it: those frames
 * tell nothing about the job, and looking their symbols up in the C library was a fifth of
 * what a contained crash cost (bench/README.md, issue 17).
 */
void crash_trace_send(uint64_t job_id, uint64_t addr, const void *ucontext, const void *floor);
