/* SPDX-License-Identifier: MIT */
/*
 * What the master tells the service manager (sd_notify, DESIGN §5). Every call is a no-op
 * without NOTIFY_SOCKET, so the daemon behaves the same outside systemd. STATUS= updates
 * are rate limited here: callers mark the status dirty as often as they like.
 *
 * No call ever blocks (DESIGN §11): a message the receiver has no room for is held and sent
 * from a timer on the event loop once it has, in order; of STATUS= only the newest is sent.
 * A receiver that never reads again costs a few held messages, never the loop.
 */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "common/units.h"

#define NOTIFY_STATUS_INTERVAL (1 * USEC_PER_SEC) /* at most one STATUS= per interval */

struct notifier;

/* status_fn writes the current one-line status into buf. */
typedef void (*notify_status_fn)(void *userdata, char *buf, size_t size);

int notifier_new(sd_event *e, notify_status_fn status_fn, void *userdata, struct notifier **ret);
void notifier_free(struct notifier *n);

/*
 * Starts WATCHDOG=1 pings at half of WATCHDOG_USEC, from a timer on the event loop: they stop
 * when the loop stops turning. Returns 0 (also when no watchdog is wanted) or -errno.
 */
int notifier_start_watchdog(struct notifier *n);

void notify_ready(struct notifier *n);
void notify_reloading(struct notifier *n);
void notify_stopping(struct notifier *n);
/* EXTEND_TIMEOUT_USEC: the service manager should wait this much longer for us. */
void notify_extend_timeout(struct notifier *n, usec_t usec);
/* The status changed; a STATUS= line goes out within NOTIFY_STATUS_INTERVAL. */
void notify_status_dirty(struct notifier *n);
/* Sends the STATUS= line now (before exiting), whatever the rate limit. */
void notify_status_flush(struct notifier *n);
