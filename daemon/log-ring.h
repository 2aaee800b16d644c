/* SPDX-License-Identifier: MIT */
/*
 * Job log lines in memory, oldest first, at most `max` bytes of them (the oldest go first):
 * the memory store's logs, and the SQLite store's lines not written yet.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "daemon/store.h"

struct log_entry {
	struct log_entry *next;
	uint64_t job;
	int64_t at;
	uint8_t level;
	uint16_t len;
	char text[];
};

struct log_ring {
	struct log_entry *head, *tail;
	size_t bytes, max;
	uint64_t dropped; /* lines that went for room */
};

/* Appends a copy of line (dropping the oldest past max). 0 or -ENOMEM. */
int log_ring_add(struct log_ring *r, const struct log_line *line);
/* The lines q wants, oldest first, to cb (which returns < 0 to stop: returned). */
int log_ring_read(const struct log_ring *r, const struct log_query *q,
		  int (*cb)(void *userdata, const struct log_line *line), void *userdata);
/* Drops the lines of jobs below first_kept. */
void log_ring_forget(struct log_ring *r, uint64_t first_kept);
void log_ring_clear(struct log_ring *r);
