/* SPDX-License-Identifier: MIT */
/* The builtin jobs' implementations (children/builtins.c), bound to common/builtins.h. */
#pragma once

#include "bulkhead/job.h"
#include "common/builtins.h"

/* The function implementing builtin b (never NULL for b < _BH_BUILTIN_MAX). */
bulkhead_job_fn builtins_get(enum bh_builtin b);

#include "common/protocol.h"

/* Raises an injected fault in the calling thread (SIGSEGV, SIGABRT, OOM, or a hang). */
void builtins_inject(enum bh_inject_kind kind) __attribute__((noreturn));
