/* SPDX-License-Identifier: MIT */
/*
 * sd_notify for the master (see notify.h), sent without ever blocking (DESIGN §11).
 *
 * libsystemd's sd_notify() does a blocking sendmsg(): when the service manager stops reading
 * (its datagram queue is full), the master would sleep in the kernel for good, and with it
 * reaping, restarts, the control socket and SIGTERM. So the notifier has a datagram socket
 * of its own (SOCK_NONBLOCK, connected to $NOTIFY_SOCKET, a path or an abstract "@name") and
 * sends with MSG_DONTWAIT. What cannot go out now is kept:
 *   - STATUS= is a flag, not a text: "a newer status is owed". The line is made when it is
 *     really sent, so only the newest one ever goes out, and a stale one is never sent.
 *   - READY=1, RELOADING=1, STOPPING=1, WATCHDOG=1 and EXTEND_TIMEOUT_USEC= wait in a small
 *     queue, in order, and go out first. Messages the manager would read as one are folded
 *     as they are queued (see queue_push()), so the queue cannot grow past a handful.
 * A retry timer on the event loop (NOTIFY_RETRY_MIN doubling to NOTIFY_RETRY_MAX) sends them
 * once the receiver reads again; new messages try at once, behind what is queued. Whatever
 * is still held when the notifier is freed (the master is exiting) gets at most
 * NOTIFY_EXIT_WAIT_MS more, then is dropped.
 *
 * Two more timers: one for STATUS= (armed when the status becomes dirty and none is pending,
 * so a storm of changes is one line per second) and one for WATCHDOG=1. No thread: all are
 * event-loop timers, so a wedged loop stops the pings and systemd's watchdog fires, which is
 * the point.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/notify.h"

#define NOTIFY_QUEUE_MAX 8 /* held state messages; folding keeps it at 6 at most */
#define NOTIFY_STATUS_MAX 512 /* one STATUS= text */
#define NOTIFY_DGRAM_MAX 640 /* one datagram */
#define NOTIFY_RETRY_MIN (100 * USEC_PER_MSEC)
#define NOTIFY_RETRY_MAX (1 * USEC_PER_SEC)
#define NOTIFY_EXIT_WAIT_MS 500 /* for held messages, when the notifier is freed */

enum notify_kind {
	NOTIFY_READY,
	NOTIFY_RELOADING,
	NOTIFY_STOPPING,
	NOTIFY_WATCHDOG,
	NOTIFY_EXTEND,
};

struct notify_msg {
	enum notify_kind kind;
	usec_t usec; /* RELOADING: MONOTONIC_USEC; EXTEND: the extension */
};

struct notifier {
	sd_event *event;
	notify_status_fn status_fn;
	void *userdata;
	sd_event_source *status_timer;
	sd_event_source *watchdog_timer;
	sd_event_source *retry_timer;
	usec_t watchdog_interval;
	usec_t last_status;
	usec_t retry_delay; /* the next retry's delay */
	char last_text[NOTIFY_STATUS_MAX]; /* the STATUS= text last sent */
	char newest_text[NOTIFY_STATUS_MAX]; /* the status last made, for notifier_free() */
	struct notify_msg queue[NOTIFY_QUEUE_MAX]; /* held, oldest first */
	unsigned n_queued;
	bool status_owed; /* a STATUS= line is held: the newest is sent once the queue is out */
	bool stalled; /* the receiver's queue was full; logged once per stall */
	bool enabled; /* NOTIFY_SOCKET is set and usable */
	bool connected;
	bool freeing; /* the master is gone: status_fn must not be called */
	int fd;
	struct sockaddr_un addr;
	socklen_t addr_len;
};

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata);
static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* $NOTIFY_SOCKET as a socket address: "/path" or "@abstract". -EINVAL for anything else. */
static int parse_address(const char *e, struct sockaddr_un *sa, socklen_t *ret_len)
{
	size_t len = strlen(e);

	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if ((e[0] != '/' && e[0] != '@') || len < 2 || len >= sizeof(sa->sun_path))
		return -EINVAL;
	memcpy(sa->sun_path, e, len);
	if (e[0] == '@') {
		sa->sun_path[0] = '\0';
		*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	} else {
		*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	}
	return 0;
}

int notifier_new(sd_event *e, notify_status_fn status_fn, void *userdata, struct notifier **ret)
{
	struct notifier *n = calloc(1, sizeof(*n));
	const char *addr = getenv("NOTIFY_SOCKET");

	if (!n)
		return -ENOMEM;
	n->event = sd_event_ref(e);
	n->status_fn = status_fn;
	n->userdata = userdata;
	n->fd = -1;
	n->retry_delay = NOTIFY_RETRY_MIN;
	if (addr && !*addr)
		addr = NULL; /* as unset */
	if (addr && parse_address(addr, &n->addr, &n->addr_len) < 0)
		log_warning("NOTIFY_SOCKET=%s: not a socket path or @abstract name: "
			    "no notifications",
			    addr);
	else if (addr) {
		n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (n->fd < 0) {
			int r = -errno;

			notifier_free(n);
			return r;
		}
		n->enabled = true;
	}
	*ret = n;
	return 0;
}

/*
 * One datagram, never waiting. 0 when it went out, or was dropped because the receiver is
 * gone (sd_notify() would have failed too); -EAGAIN when the receiver's queue is full.
 */
static int send_text(struct notifier *n, const char *text)
{
	for (int tries = 0; tries < 3; tries++) {
		if (!n->connected) {
			if (connect(n->fd, (struct sockaddr *)&n->addr, n->addr_len) < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN)
					return -EAGAIN;
				log_debug("NOTIFY_SOCKET: %s: dropped: %s", text, strerror(errno));
				return 0;
			}
			n->connected = true;
		}
		if (send(n->fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return -EAGAIN;
		if (errno == ECONNREFUSED || errno == ENOTCONN || errno == ECONNRESET) {
			/* The receiver went away (or was bound anew): connect again, once. */
			n->connected = false;
			continue;
		}
		log_debug("NOTIFY_SOCKET: %s: dropped: %s", text, strerror(errno));
		return 0;
	}
	return 0;
}

/* The status of now; while the notifier is freed (its master gone), the last one made. */
static void status_text(struct notifier *n, char *buf, size_t size)
{
	if (!n->freeing)
		n->status_fn(n->userdata, n->newest_text, sizeof(n->newest_text));
	snprintf(buf, size, "%s", n->newest_text);
}

/* The datagram for a held message, made now (READY=1 carries the status of now). */
static void format_msg(struct notifier *n, const struct notify_msg *m, char *buf, size_t size,
		       char *status)
{
	switch (m->kind) {
	case NOTIFY_READY:
		status_text(n, status, NOTIFY_STATUS_MAX);
		snprintf(buf, size, "READY=1\nSTATUS=%s", status);
		break;
	case NOTIFY_RELOADING:
		snprintf(buf, size, "RELOADING=1\nMONOTONIC_USEC=%llu",
			 (unsigned long long)m->usec);
		break;
	case NOTIFY_STOPPING:
		snprintf(buf, size, "STOPPING=1");
		break;
	case NOTIFY_WATCHDOG:
		snprintf(buf, size, "WATCHDOG=1");
		break;
	case NOTIFY_EXTEND:
		snprintf(buf, size, "EXTEND_TIMEOUT_USEC=%llu", (unsigned long long)m->usec);
		break;
	}
}

/* Sends the owed STATUS= line, made now. 0, or -EAGAIN (still owed). */
static int send_owed_status(struct notifier *n)
{
	char status[NOTIFY_STATUS_MAX], text[NOTIFY_DGRAM_MAX];
	int r;

	status_text(n, status, sizeof(status));
	if (strcmp(status, n->last_text) == 0) {
		n->status_owed = false; /* changed and changed back: nothing new to say */
		return 0;
	}
	snprintf(text, sizeof(text), "STATUS=%s", status);
	r = send_text(n, text);
	if (r < 0)
		return r;
	n->status_owed = false;
	n->last_status = now_usec();
	memcpy(n->last_text, status, sizeof(status));
	return 0;
}

static void arm_retry(struct notifier *n)
{
	int enabled = SD_EVENT_OFF;
	usec_t when = now_usec() + n->retry_delay;

	if (n->retry_timer)
		sd_event_source_get_enabled(n->retry_timer, &enabled);
	if (enabled != SD_EVENT_OFF)
		return; /* one is on its way */
	if (!n->retry_timer) {
		if (sd_event_add_time(n->event, &n->retry_timer, CLOCK_MONOTONIC, when,
				      10 * USEC_PER_MSEC, on_retry_timer, n) < 0)
			log_warning("NOTIFY_SOCKET: cannot arm the retry timer: "
				    "held notifications wait for the next one");
	} else {
		sd_event_source_set_time(n->retry_timer, when);
		sd_event_source_set_enabled(n->retry_timer, SD_EVENT_ONESHOT);
	}
	n->retry_delay =
		n->retry_delay * 2 > NOTIFY_RETRY_MAX ? NOTIFY_RETRY_MAX : n->retry_delay * 2;
}

/* (Re)arms the STATUS= timer for the end of the rate-limit interval. */
static void arm_status_timer(struct notifier *n)
{
	usec_t when = n->last_status + NOTIFY_STATUS_INTERVAL;

	if (!n->status_timer) {
		sd_event_add_time(n->event, &n->status_timer, CLOCK_MONOTONIC, when,
				  10 * USEC_PER_MSEC, on_status_timer, n);
		return;
	}
	sd_event_source_set_time(n->status_timer, when);
	sd_event_source_set_enabled(n->status_timer, SD_EVENT_ONESHOT);
}

static void queue_remove(struct notifier *n, unsigned i)
{
	memmove(&n->queue[i], &n->queue[i + 1], (n->n_queued - i - 1) * sizeof(n->queue[0]));
	n->n_queued--;
}

static int queue_find(const struct notifier *n, enum notify_kind kind, unsigned from)
{
	for (unsigned i = from; i < n->n_queued; i++)
		if (n->queue[i].kind == kind)
			return (int)i;
	return -1;
}

/*
 * Sends what is held, oldest first, until the receiver's queue is full. `status_now`: an
 * owed STATUS= may go out whatever the rate limit. Returns true when nothing is held any more.
 */
static bool flush(struct notifier *n, bool status_now)
{
	char text[NOTIFY_DGRAM_MAX], status[NOTIFY_STATUS_MAX];

	while (n->n_queued > 0) {
		format_msg(n, &n->queue[0], text, sizeof(text), status);
		if (send_text(n, text) < 0)
			goto held;
		if (n->queue[0].kind == NOTIFY_READY) {
			/* It carried the status: a pending update would repeat it. */
			memcpy(n->last_text, status, sizeof(status));
			n->last_status = now_usec();
			n->status_owed = false;
		}
		queue_remove(n, 0);
	}
	if (n->status_owed) {
		if (!status_now && now_usec() < n->last_status + NOTIFY_STATUS_INTERVAL)
			arm_status_timer(n); /* the rate limit still holds; the timer sends it */
		else if (send_owed_status(n) < 0)
			goto held;
	}
	if (n->stalled)
		log_notice("NOTIFY_SOCKET: the service manager reads again: "
			   "held notifications sent");
	n->stalled = false;
	n->retry_delay = NOTIFY_RETRY_MIN;
	if (n->retry_timer)
		sd_event_source_set_enabled(n->retry_timer, SD_EVENT_OFF);
	return true;
held:
	if (!n->stalled)
		log_warning("NOTIFY_SOCKET: the service manager does not read its notifications: "
			    "holding them and retrying (STATUS= only the newest)");
	n->stalled = true;
	arm_retry(n);
	return false;
}

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	flush(userdata, false);
	return 0;
}

/*
 * Holds a state message behind those already held, folding what the manager would read as
 * one: a second WATCHDOG=1 or STOPPING=1 adds nothing; a newer EXTEND_TIMEOUT_USEC= replaces
 * the held one; READY=1 right after READY=1 is one; RELOADING=1 right after RELOADING=1 is
 * the newer one; and a whole reload the manager has not heard of yet (RELOADING=1 ...
 * READY=1) folds into the new one. So at most READY, RELOADING, READY, STOPPING, WATCHDOG,
 * EXTEND are ever held.
 */
static void queue_push(struct notifier *n, enum notify_kind kind, usec_t usec)
{
	struct notify_msg *last = n->n_queued ? &n->queue[n->n_queued - 1] : NULL;
	int i;

	switch (kind) {
	case NOTIFY_WATCHDOG:
	case NOTIFY_STOPPING:
		if (queue_find(n, kind, 0) >= 0)
			return;
		break;
	case NOTIFY_EXTEND:
		i = queue_find(n, kind, 0);
		if (i >= 0) {
			n->queue[i].usec = usec;
			return;
		}
		break;
	case NOTIFY_READY:
		if (last && last->kind == NOTIFY_READY)
			return; /* its status is made when it is sent */
		break;
	case NOTIFY_RELOADING:
		if (last && last->kind == NOTIFY_RELOADING) {
			last->usec = usec;
			return;
		}
		i = queue_find(n, NOTIFY_RELOADING, 0);
		if (i >= 0) {
			int ready = queue_find(n, NOTIFY_READY, (unsigned)i + 1);

			if (ready >= 0) {
				queue_remove(n, (unsigned)ready);
				queue_remove(n, (unsigned)i);
			}
		}
		break;
	}
	if (n->n_queued == NOTIFY_QUEUE_MAX) {
		/* Cannot happen with the folding above; a stale ping is the one to lose. */
		i = queue_find(n, NOTIFY_WATCHDOG, 0);
		if (i < 0) {
			log_warning("NOTIFY_SOCKET: too many held notifications: one dropped");
			return;
		}
		queue_remove(n, (unsigned)i);
	}
	n->queue[n->n_queued++] = (struct notify_msg){ .kind = kind, .usec = usec };
}

static void send_msg(struct notifier *n, enum notify_kind kind, usec_t usec)
{
	if (!n || !n->enabled)
		return;
	queue_push(n, kind, usec);
	flush(n, false);
}

/* Gives what is still held NOTIFY_EXIT_WAIT_MS to go out: the loop has stopped by now. */
static void flush_before_exit(struct notifier *n)
{
	usec_t deadline = now_usec() + NOTIFY_EXIT_WAIT_MS * USEC_PER_MSEC;

	while (!flush(n, true) && n->connected) {
		struct pollfd p = { .fd = n->fd, .events = POLLOUT };
		usec_t now = now_usec();

		if (now >= deadline)
			break;
		/* A connected datagram socket polls writable once the receiver has room. */
		if (poll(&p, 1, (int)((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC)) < 0 &&
		    errno != EINTR)
			break;
	}
	if (n->n_queued || n->status_owed)
		log_warning("NOTIFY_SOCKET: exiting with %u notification%s%s not delivered",
			    n->n_queued, n->n_queued == 1 ? "" : "s",
			    n->status_owed ? " and the last STATUS=" : "");
}

void notifier_free(struct notifier *n)
{
	if (!n)
		return;
	n->freeing = true;
	if (n->enabled && (n->n_queued || n->status_owed))
		flush_before_exit(n);
	sd_event_source_disable_unref(n->status_timer);
	sd_event_source_disable_unref(n->watchdog_timer);
	sd_event_source_disable_unref(n->retry_timer);
	sd_event_unref(n->event);
	if (n->fd >= 0)
		close(n->fd);
	free(n);
}

/* A STATUS= line is due (rate limit passed, or `now`): send the newest, or owe it. */
static void send_status(struct notifier *n, bool now)
{
	n->status_owed = true;
	flush(n, now);
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	send_status(userdata, false);
	return 0;
}

void notify_status_dirty(struct notifier *n)
{
	char status[NOTIFY_STATUS_MAX];
	int enabled = SD_EVENT_OFF;

	if (!n || !n->enabled)
		return;
	if (n->status_timer)
		sd_event_source_get_enabled(n->status_timer, &enabled);
	if (enabled != SD_EVENT_OFF || n->status_owed)
		return; /* one is already on its way */
	/* Nothing visible changed (say, right after READY=1): no timer, no wake-up. */
	status_text(n, status, sizeof(status));
	if (strcmp(status, n->last_text) == 0)
		return;
	arm_status_timer(n);
}

void notify_status_flush(struct notifier *n)
{
	if (!n || !n->enabled)
		return;
	if (n->status_timer)
		sd_event_source_set_enabled(n->status_timer, SD_EVENT_OFF);
	send_status(n, true);
}

static int on_watchdog(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct notifier *n = userdata;

	send_msg(n, NOTIFY_WATCHDOG, 0);
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
	send_msg(n, NOTIFY_WATCHDOG, 0);
	return sd_event_add_time(n->event, &n->watchdog_timer, CLOCK_MONOTONIC,
				 now_usec() + n->watchdog_interval, n->watchdog_interval / 20,
				 on_watchdog, n);
}

void notify_ready(struct notifier *n)
{
	if (!n || !n->enabled)
		return;
	/* This line carries the status: a pending update would repeat it a second later. */
	if (n->status_timer)
		sd_event_source_set_enabled(n->status_timer, SD_EVENT_OFF);
	send_msg(n, NOTIFY_READY, 0);
}

void notify_reloading(struct notifier *n)
{
	send_msg(n, NOTIFY_RELOADING, now_usec());
}

void notify_stopping(struct notifier *n)
{
	send_msg(n, NOTIFY_STOPPING, 0);
}

void notify_extend_timeout(struct notifier *n, usec_t usec)
{
	send_msg(n, NOTIFY_EXTEND, usec);
}
