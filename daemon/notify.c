/* SPDX-License-Identifier: MIT */
/*
 * sd_notify for the master (see notify.h). One timer for STATUS= (armed when the status
 * becomes dirty and none is pending, so a storm of changes is one line per second) and one
 * for WATCHDOG=1. No thread: both are event-loop timers, so a wedged loop stops the pings
 * and systemd's watchdog fires, which is the point.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "daemon/notify.h"

struct notifier {
	sd_event *event;
	notify_status_fn status_fn;
	void *userdata;
	sd_event_source *status_timer;
	sd_event_source *watchdog_timer;
	usec_t watchdog_interval;
	usec_t last_status;
	char last_text[512]; /* the STATUS= text last sent */
	bool enabled; /* NOTIFY_SOCKET is set */
};

int notifier_new(sd_event *e, notify_status_fn status_fn, void *userdata, struct notifier **ret)
{
	struct notifier *n = calloc(1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	n->event = sd_event_ref(e);
	n->status_fn = status_fn;
	n->userdata = userdata;
	n->enabled = getenv("NOTIFY_SOCKET") != NULL;
	*ret = n;
	return 0;
}

void notifier_free(struct notifier *n)
{
	if (!n)
		return;
	sd_event_source_disable_unref(n->status_timer);
	sd_event_source_disable_unref(n->watchdog_timer);
	sd_event_unref(n->event);
	free(n);
}

static void send_status(struct notifier *n)
{
	char status[512];

	n->status_fn(n->userdata, status, sizeof(status));
	n->last_status = now_usec();
	if (strcmp(status, n->last_text) == 0)
		return; /* changed and changed back: nothing new to say */
	sd_notifyf(0, "STATUS=%s", status);
	memcpy(n->last_text, status, sizeof(status));
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	send_status(userdata);
	return 0;
}

void notify_status_dirty(struct notifier *n)
{
	usec_t when;
	int enabled = SD_EVENT_OFF;

	if (!n || !n->enabled)
		return;
	if (n->status_timer)
		sd_event_source_get_enabled(n->status_timer, &enabled);
	if (enabled != SD_EVENT_OFF)
		return; /* one is already on its way */
	{
		char status[sizeof(n->last_text)];

		/* Nothing visible changed (say, right after READY=1): no timer, no wake-up. */
		n->status_fn(n->userdata, status, sizeof(status));
		if (strcmp(status, n->last_text) == 0)
			return;
	}
	when = n->last_status + NOTIFY_STATUS_INTERVAL;
	if (!n->status_timer) {
		sd_event_add_time(n->event, &n->status_timer, CLOCK_MONOTONIC, when,
				  10 * USEC_PER_MSEC, on_status_timer, n);
		return;
	}
	sd_event_source_set_time(n->status_timer, when);
	sd_event_source_set_enabled(n->status_timer, SD_EVENT_ONESHOT);
}

void notify_status_flush(struct notifier *n)
{
	if (!n || !n->enabled)
		return;
	if (n->status_timer)
		sd_event_source_set_enabled(n->status_timer, SD_EVENT_OFF);
	send_status(n);
}

static int on_watchdog(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct notifier *n = userdata;

	sd_notify(0, "WATCHDOG=1");
	sd_event_source_set_time(s, usec + n->watchdog_interval);
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

int notifier_start_watchdog(struct notifier *n)
{
	uint64_t usec = 0;
	int r;

	/* > 0 only if WATCHDOG_USEC is set (and WATCHDOG_PID, if set, is ours). */
	r = sd_watchdog_enabled(0, &usec);
	if (r <= 0 || usec == 0)
		return r < 0 ? r : 0;
	n->watchdog_interval = usec / 2;
	sd_notify(0, "WATCHDOG=1");
	return sd_event_add_time(n->event, &n->watchdog_timer, CLOCK_MONOTONIC,
				 now_usec() + n->watchdog_interval, n->watchdog_interval / 20,
				 on_watchdog, n);
}

void notify_ready(struct notifier *n)
{
	char status[512];

	if (!n || !n->enabled)
		return;
	n->status_fn(n->userdata, status, sizeof(status));
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
	memcpy(n->last_text, status, sizeof(status));
	n->last_status = now_usec();
	/* This line carries the status: a pending update would repeat it a second later. */
	if (n->status_timer)
		sd_event_source_set_enabled(n->status_timer, SD_EVENT_OFF);
}

void notify_reloading(struct notifier *n)
{
	if (!n || !n->enabled)
		return;
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)now_usec());
}

void notify_stopping(struct notifier *n)
{
	if (!n || !n->enabled)
		return;
	sd_notify(0, "STOPPING=1");
}

void notify_extend_timeout(struct notifier *n, usec_t usec)
{
	if (!n || !n->enabled)
		return;
	sd_notifyf(0, "EXTEND_TIMEOUT_USEC=%llu", (unsigned long long)usec);
}
