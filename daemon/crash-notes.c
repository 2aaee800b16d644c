/* SPDX-License-Identifier: MIT */
/* Crash notes (crash-notes.h): a ring of the last crashes' summaries and frames. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/crash-notes.h"
#include "daemon/ledger.h"

char *crash_summary(const struct bh_crash *c, const struct bh_crash_info *info, char *buf,
		    size_t size)
{
	const char *nl = memchr(info->text, '\n', info->len);
	int frame0 = (int)(nl ? nl - info->text : 0);
	char sig[16], at[32] = "";

	if (c->signo == SIGSEGV || c->signo == SIGBUS)
		snprintf(at, sizeof(at), " at 0x%llx", (unsigned long long)c->addr);
	signal_name(c->signo, sig, sizeof(sig));
	snprintf(buf, size, "%s%s in %.*s", sig, at, frame0, info->text);
	return buf;
}

static void note_clear(struct crash_note *e)
{
	free(e->summary);
	free(e->frames);
	*e = (struct crash_note){ 0 };
}

int crash_notes_set(struct crash_notes *n, uint64_t job_id, const char *summary,
		    const char *frames, size_t frames_len)
{
	struct crash_note *e;
	char *s, *f;

	if (job_id == 0)
		return 0;
	s = strdup(summary);
	f = strndup(frames, frames_len);
	if (!s || !f) {
		free(s);
		free(f);
		return -ENOMEM;
	}
	crash_notes_forget(n, job_id);
	e = &n->ring[n->next];
	n->next = (n->next + 1) % CRASH_NOTES_MAX;
	note_clear(e);
	*e = (struct crash_note){ .job_id = job_id, .summary = s, .frames = f };
	return 0;
}

const struct crash_note *crash_notes_get(const struct crash_notes *n, uint64_t job_id)
{
	for (unsigned i = 0; job_id && i < CRASH_NOTES_MAX; i++)
		if (n->ring[i].job_id == job_id)
			return &n->ring[i];
	return NULL;
}

void crash_notes_forget(struct crash_notes *n, uint64_t job_id)
{
	for (unsigned i = 0; job_id && i < CRASH_NOTES_MAX; i++)
		if (n->ring[i].job_id == job_id)
			note_clear(&n->ring[i]);
}

void crash_notes_free(struct crash_notes *n)
{
	for (unsigned i = 0; i < CRASH_NOTES_MAX; i++)
		note_clear(&n->ring[i]);
}
