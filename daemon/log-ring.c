/* SPDX-License-Identifier: MIT */
/* Job log lines in memory: see log-ring.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log-ring.h"

static size_t entry_size(const struct log_entry *e)
{
	return sizeof(*e) + e->len + 1;
}

static void drop_head(struct log_ring *r)
{
	struct log_entry *e = r->head;

	r->head = e->next;
	if (!r->head)
		r->tail = NULL;
	r->bytes -= entry_size(e);
	free(e);
}

int log_ring_add(struct log_ring *r, const struct log_line *line)
{
	size_t len = line->len > UINT16_MAX ? UINT16_MAX : line->len;
	struct log_entry *e = malloc(sizeof(*e) + len + 1);

	if (!e)
		return -ENOMEM;
	*e = (struct log_entry){ .job = line->job, .at = line->at, .level = (uint8_t)line->level,
				 .len = (uint16_t)len };
	memcpy(e->text, line->text, len);
	e->text[len] = '\0';
	if (r->tail)
		r->tail->next = e;
	else
		r->head = e;
	r->tail = e;
	r->bytes += entry_size(e);
	while (r->max && r->bytes > r->max && r->head != e) {
		drop_head(r);
		r->dropped++;
	}
	return 0;
}

static bool wanted(const struct log_query *q, uint64_t job)
{
	return job >= q->first && job <= q->last && (!q->match || q->match(q->userdata, job));
}

int log_ring_read(const struct log_ring *r, const struct log_query *q,
		  int (*cb)(void *userdata, const struct log_line *line), void *userdata)
{
	size_t n = 0, skip = 0;
	int ret;

	if (q->tail) {
		for (const struct log_entry *e = r->head; e; e = e->next)
			n += wanted(q, e->job);
		skip = n > q->tail ? n - q->tail : 0;
	}
	for (const struct log_entry *e = r->head; e; e = e->next) {
		struct log_line l = { e->job, e->at, e->level, e->text, e->len };

		if (!wanted(q, e->job))
			continue;
		if (skip > 0) {
			skip--;
			continue;
		}
		ret = cb(userdata, &l);
		if (ret < 0)
			return ret;
	}
	return 0;
}

void log_ring_forget(struct log_ring *r, uint64_t first_kept)
{
	struct log_entry **pp = &r->head, *last = NULL;

	while (*pp) {
		struct log_entry *e = *pp;

		if (e->job < first_kept) {
			*pp = e->next;
			r->bytes -= entry_size(e);
			free(e);
			continue;
		}
		last = e;
		pp = &e->next;
	}
	r->tail = last;
}

void log_ring_clear(struct log_ring *r)
{
	while (r->head)
		drop_head(r);
	r->dropped = 0;
}
