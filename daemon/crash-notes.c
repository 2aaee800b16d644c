/* SPDX-License-Identifier: MIT */
/* Crash notes (crash-notes.h): a ring of the last crashes' summaries and frames. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/crash-notes.h"
#include "daemon/ledger.h"

/* The C library's own frames: where abort() and raise() are, never the interesting place. */
static bool in_libc(const char *frame, size_t len)
{
	return len > 8 && (strncmp(frame, "libc.so.", 8) == 0 || strncmp(frame, "libc-", 5) == 0);
}

char *crash_summary(const struct bh_crash *c, const struct bh_crash_info *info, char *buf,
		    size_t size)
{
	const char *p = info->text, *end = info->text + info->len, *nl;
	char sig[16], at[32] = "";

	if (c->signo == SIGSEGV || c->signo == SIGBUS)
		snprintf(at, sizeof(at), " at 0x%llx", (unsigned long long)c->addr);
	signal_name(c->signo, sig, sizeof(sig));
	/* A SIGABRT is raised inside the C library: name its caller (abort()'s), if any. */
	nl = memchr(p, '\n', (size_t)(end - p));
	while (c->signo == SIGABRT && nl && in_libc(p, (size_t)(nl - p)) && nl + 1 < end) {
		p = nl + 1;
		nl = memchr(p, '\n', (size_t)(end - p));
	}
	if (!nl || in_libc(p, (size_t)(nl - p)))
		p = info->text, nl = memchr(p, '\n', info->len);
	snprintf(buf, size, "%s%s in %.*s", sig, at, (int)(nl ? nl - p : 0), p);
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
