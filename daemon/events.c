/* SPDX-License-Identifier: MIT */
/* The daemon's recent events (see events.h): a fixed ring, no allocation. */
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "common/log.h"
#include "daemon/events.h"

static struct event ring[EVENTS_MAX];
static size_t next; /* where the next event goes */
static size_t count;

void events_record(int level, const char *text)
{
	struct event *e = &ring[next];
	struct timespec ts;
	size_t n = strlen(text);

	clock_gettime(CLOCK_REALTIME, &ts);
	e->at = (usec_t)ts.tv_sec * USEC_PER_SEC + (usec_t)ts.tv_nsec / 1000;
	e->level = level;
	if (n < sizeof(e->text)) {
		memcpy(e->text, text, n + 1);
	} else {
		memcpy(e->text, text, sizeof(e->text) - 4);
		memcpy(e->text + sizeof(e->text) - 4, "...", 4);
	}
	next = (next + 1) % EVENTS_MAX;
	if (count < EVENTS_MAX)
		count++;
}

void events_start(void)
{
	log_set_tap(LOG_NOTICE, events_record);
}

void events_stop(void)
{
	log_set_tap(LOG_NOTICE, NULL);
	next = count = 0;
}

size_t events_count(void)
{
	return count;
}

const struct event *events_newest(size_t i)
{
	if (i >= count)
		return NULL;
	return &ring[(next + EVENTS_MAX - 1 - i) % EVENTS_MAX];
}
