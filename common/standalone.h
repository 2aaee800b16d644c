/* SPDX-License-Identifier: MIT */
/*
 * What `bulkhead experiment` (cli/experiment.c) and a standalone run of the worker binary
 * (`bulkhead-worker --standalone MODE`, children/standalone.c) share: the mode names and the
 * layout of the counters the standalone run keeps in a shared memory file (a memfd) that the
 * experiment passes it with --result-fd.
 *
 * The counters must survive the standalone process dying of a crash, and cost no system call
 * per job: they live in the shared mapping itself, one slot per job thread (fork-per-job uses
 * slot 0 only), each slot on its own cache line so threads never share one, written with
 * relaxed atomic stores by the one thread that owns the slot. The experiment reads them once
 * the process has ended (by exit or by signal); the file is zero-filled at creation.
 */
#pragma once

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define BH_STANDALONE_THREADS "threads"
#define BH_STANDALONE_FORK_PER_JOB "fork-per-job"

#define BH_STANDALONE_ATTEMPTS 3 /* fork-per-job: attempts per job before it is quarantined */

struct bh_standalone_slot {
	_Atomic uint64_t done; /* jobs that returned 0 */
	_Atomic uint64_t failed; /* jobs that returned non-zero (after their attempts) */
	_Atomic uint64_t quarantined; /* fork-per-job: jobs killed by a signal every attempt */
	_Atomic uint64_t retries; /* fork-per-job: attempts after a job's first */
} __attribute__((aligned(64)));

/* Bytes of the shared file for `threads` job threads (at least one slot). */
static inline size_t bh_standalone_size(unsigned threads)
{
	return (threads ? threads : 1) * sizeof(struct bh_standalone_slot);
}
