/* SPDX-License-Identifier: MIT */
/*
 * The builtin jobs (builtin.c): the job kind builtin:NAME (builtin_kind, job-kind.h), bound to
 * the list in common/builtins.h, and the faults a worker raises on itself for `bulkhead
 * inject`.
 */
#pragma once

#include "common/protocol.h"

/*
 * Raises an injected fault in the calling (main) thread, outside any job, so the crash
 * handler reports it with no job: SIGSEGV, SIGABRT, OOM (SIGABRT reported as OOM), or a hang.
 */
void builtin_inject(enum bh_inject_kind kind) __attribute__((noreturn));
