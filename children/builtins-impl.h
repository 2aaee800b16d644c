/* SPDX-License-Identifier: MIT */
/* The builtin jobs' implementations (children/builtins.c), bound to common/builtins.h. */
#pragma once

#include "bulkhead/job.h"
#include "common/builtins.h"

/* The function implementing builtin b (never NULL for b < _BH_BUILTIN_MAX). */
bulkhead_job_fn builtins_get(enum bh_builtin b);

/*
 * The common argument crash=P: raises a real SIGSEGV in the calling job thread if
 * bh_crash_hit(job id, p), else returns at once.
 */
void builtins_crash(struct bulkhead_job *job, double p);

#include "common/protocol.h"

/* Raises an injected fault in the calling thread (SIGSEGV, SIGABRT, OOM, or a hang). */
void builtins_inject(enum bh_inject_kind kind) __attribute__((noreturn));
