/* SPDX-License-Identifier: MIT */
/*
 * Crash notes: where the last crashes happened (CRASH_INFO frames), kept by the master for the
 * views (`jobs ID`, the run report) of the jobs they were blamed on. A bounded ring: the last
 * CRASH_NOTES_MAX crashes; older ones, and all of them after a restart, live on in the jobs'
 * log lines only. Pure: no loop, no store.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/protocol.h"

#define CRASH_NOTES_MAX 256u
#define CRASH_SUMMARY_MAX (32u + BH_CRASH_LINE_MAX) /* "SIGSEGV at 0x... in " + a frame */

struct crash_note {
	uint64_t job_id; /* 0: an empty entry */
	char *summary;   /* "SIGSEGV at 0x0 in libfoo.so:parse+0x1a7" */
	char *frames;    /* the frames, each ended by '\n', the faulting one first */
};

struct crash_notes {
	struct crash_note ring[CRASH_NOTES_MAX];
	unsigned next; /* the entry the next note replaces */
};

/*
 * "SIGSEGV at 0x0 in OBJ:SYM+0xOFF": the signal of c, the fault address for SIGSEGV and
 * SIGBUS (the others' si_addr is the instruction, in the frame already), frame 0 of info;
 * for SIGABRT the first frame outside the C library (abort()'s caller), if there is one.
 * Returns buf.
 */
char *crash_summary(const struct bh_crash *c, const struct bh_crash_info *info, char *buf,
		    size_t size);

/* Keeps the note of job_id (replacing its earlier one). 0 or -ENOMEM. */
int crash_notes_set(struct crash_notes *n, uint64_t job_id, const char *summary,
		    const char *frames, size_t frames_len);
/* The note of job_id, or NULL. */
const struct crash_note *crash_notes_get(const struct crash_notes *n, uint64_t job_id);
/* Drops the note of job_id, if any: it crashes again (a note is of its last crash only). */
void crash_notes_forget(struct crash_notes *n, uint64_t job_id);
void crash_notes_free(struct crash_notes *n);
