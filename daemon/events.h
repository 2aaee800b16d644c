/* SPDX-License-Identifier: MIT */
/*
 * The daemon's recent events, for `bulkhead top`'s pane and the status reply: the last
 * EVENTS_MAX log lines at notice or more severe (worker deaths, blames and quarantines,
 * timeouts, reloads, pool failures, refused clients), whatever log_level says, taken from a
 * log tap (common/log.h). One ring per process: bulkheadd has one control socket.
 */
#pragma once

#include <stddef.h>

#include "common/units.h"

#define EVENTS_MAX 64
#define EVENT_TEXT_MAX 240 /* longer lines are cut, with "..." */

struct event {
	usec_t at; /* wall clock, µs since the epoch */
	int level; /* syslog level */
	char text[EVENT_TEXT_MAX];
};

/* Starts (or stops) keeping events: installs (or removes) the log tap. */
void events_start(void);
void events_stop(void);
/* Events kept, at most EVENTS_MAX. */
size_t events_count(void);
/* The i-th newest (0: the newest), or NULL. */
const struct event *events_newest(size_t i);
/* Records one event (what the tap does; tests call it directly). */
void events_record(int level, const char *text);
