/* SPDX-License-Identifier: MIT */
/*
 * The metrics over HTTP ([supervisor] metrics_listen): GET /metrics answers the Prometheus
 * text (metrics.c); any other path is 404, any other method 405.
 *
 * libmicrohttpd (Debian's libmicrohttpd12) runs inside the master's loop, not on a thread of
 * its own: MHD_USE_EPOLL without an internal thread gives one epoll fd, watched by sd-event;
 * when it is readable, or MHD's own timeout comes, MHD_run() does what is ready without
 * blocking. So a request is answered between two passes of the loop, from the master's own
 * state, with no lock. A scraper that stalls costs a connection slot until MHD's timeout;
 * at most METRICS_HTTP_CLIENTS are open at once (more are refused by MHD).
 */
#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "common/log.h"
#include "config/config.h"
#include "daemon/metrics-http.h"
#include "daemon/metrics.h"

#define METRICS_HTTP_CLIENTS 32
#define METRICS_HTTP_TIMEOUT_S 10 /* an idle or stalled connection is closed after this */

struct metrics_http {
	struct master *m;
	struct MHD_Daemon *d;
	sd_event_source *io;
	sd_event_source *timer;
	char where[128];
};

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **state)
{
	struct metrics_http *h = cls;
	struct MHD_Response *resp;
	unsigned status = MHD_HTTP_OK;
	enum MHD_Result r;
	size_t len = 0;
	char *text = NULL;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		static const char msg[] = "only GET\n";

		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
						       MHD_RESPMEM_PERSISTENT);
	} else if (strcmp(url, "/metrics") != 0) {
		static const char msg[] = "not found: the metrics are at /metrics\n";

		status = MHD_HTTP_NOT_FOUND;
		resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
						       MHD_RESPMEM_PERSISTENT);
	} else {
		text = metrics_render(h->m, &len);
		if (!text)
			return MHD_NO; /* out of memory: MHD closes the connection */
		resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
		if (!resp)
			free(text);
		else
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
						METRICS_CONTENT_TYPE);
	}
	if (!resp)
		return MHD_NO;
	if (status != MHD_HTTP_OK)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					"text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static void rearm(struct metrics_http *h);

static void run(struct metrics_http *h)
{
	if (MHD_run(h->d) != MHD_YES)
		log_warning("metrics: %s: libmicrohttpd could not run", h->where);
	rearm(h);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	run(userdata);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	run(userdata);
	return 0;
}

/* MHD's next timeout (a connection's deadline) as our timer; none: off. */
static void rearm(struct metrics_http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;
	uint64_t now;

	if (MHD_get_timeout(h->d, &ms) != MHD_YES) {
		sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
		return;
	}
	sd_event_now(sd_event_source_get_event(h->timer), CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(h->timer, now + (uint64_t)ms * 1000);
	sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT);
}

static void log_from_mhd(void *cls, const char *fmt, va_list ap)
{
	char msg[256];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_warning("metrics: %s", msg);
}

int metrics_http_start(struct master *m, sd_event *e, const char *listen, struct metrics_http **ret)
{
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	struct metrics_http *h;
	unsigned len;
	int r;

	*ret = NULL;
	if (!listen || !*listen)
		return 0;
	if (config_parse_listen(listen, &ss, &len) < 0)
		return -EINVAL; /* the config loader checked it */
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->m = m;
	h->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
					(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				0, NULL, NULL, answer, h, MHD_OPTION_EXTERNAL_LOGGER, log_from_mhd,
				NULL, MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_CONNECTION_LIMIT,
				(unsigned)METRICS_HTTP_CLIENTS, MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned)METRICS_HTTP_TIMEOUT_S, MHD_OPTION_END);
	if (!h->d) {
		r = errno ? -errno : -EADDRNOTAVAIL;
		free(h);
		return r;
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	r = info ? sd_event_add_io(e, &h->io, info->epoll_fd, EPOLLIN, on_io, h) : -EIO;
	if (r >= 0)
		r = sd_event_add_time(e, &h->timer, CLOCK_MONOTONIC, 0, 0, on_timer, h);
	if (r < 0) {
		metrics_http_free(h);
		return r;
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	if (ss.ss_family == AF_INET6) {
		char a[64];

		snprintf(a, sizeof(a), "%s", listen + 1);
		*strrchr(a, ']') = '\0';
		snprintf(h->where, sizeof(h->where), "http://[%s]:%u/metrics", a,
			 info ? (unsigned)info->port : 0);
	} else {
		snprintf(h->where, sizeof(h->where), "http://%.*s:%u/metrics",
			 (int)(strrchr(listen, ':') - listen), listen,
			 info ? (unsigned)info->port : 0);
	}
	log_info("metrics at %s", h->where);
	rearm(h);
	*ret = h;
	return 0;
}

void metrics_http_free(struct metrics_http *h)
{
	if (!h)
		return;
	sd_event_source_disable_unref(h->io);
	sd_event_source_disable_unref(h->timer);
	if (h->d)
		MHD_stop_daemon(h->d);
	free(h);
}
