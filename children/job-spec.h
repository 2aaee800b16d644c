/* SPDX-License-Identifier: MIT */
/*
 * Job specs (see job-spec.c): built from the master's SPEC frames, each bound to its job kind
 * (job-kind.h) through the table of kinds; and running one job of a spec.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/protocol.h"
#include "job-context.h"

/*
 * Builds the spec `id` from a SPEC frame's strings (not NUL-terminated; name and output may
 * be NULL/0). The kind is picked by the prefix of run ("builtin:", "plugin:", "exec:"), which
 * resolves and checks it once: a builtin's args against its arguments, a plugin dlopen()ed, a
 * command split. A spec that cannot run is still built (kind NULL, fail_status set) and the
 * reason is logged. Returns 0 or -ENOMEM. Main thread (plugins: not thread-safe).
 */
int job_spec_new(uint32_t id, const char *run, size_t run_len, const char *args, size_t args_len,
		 struct job_spec **ret);
int job_spec_new_full(const struct bh_frame *spec_frame, struct job_spec **ret);

/* Frees s and what its kind holds (a plugin is dlclose()d). NULL-safe. */
void job_spec_free(struct job_spec *s);

/*
 * Runs one job on the calling thread and returns its status (0 = done); job->outcome says
 * how to read it. Sends the job's RESULT frame (if it set one) before it returns.
 */
int job_spec_run(struct bulkhead_job *job);

/*
 * Tells a running job's kind that the job is to stop (a CANCEL for it, or the worker's STOP),
 * on top of its cancel flag: an exec: command gets SIGTERM. Any thread.
 */
void job_spec_interrupt(struct bulkhead_job *job);
