/* SPDX-License-Identifier: MIT */
/*
 * A PostgreSQL connection on the loop (pg-conn.h). Three states: connecting (PQconnectPoll
 * says which way to wait on the socket, and the socket may change between attempts at
 * several addresses), up (one statement in flight at a time: PQsendQuery, PQflush while it
 * has more to send, PQconsumeInput and PQgetResult as results come), and down (a timer for
 * the next attempt). A loss fails every queued statement and is said once until the
 * connection is up again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "daemon/pg-conn.h"

#define BACKOFF_MIN_USEC (100 * 1000ull)
#define BACKOFF_MAX_USEC (5 * 1000 * 1000ull)

enum pg_state { PG_CONNECTING, PG_UP, PG_DOWN };

#define PARAMS_MAX 64
#define PREPARED_MAX 32

struct stmt {
	struct stmt *next;
	pg_result_fn cb;
	void *userdata;
	const char *name; /* prepared under this name (NULL: not prepared) */
	int n_params; /* -1: sql may hold several statements (PQsendQuery) */
	const char *params[PARAMS_MAX]; /* into text, after sql */
	char text[]; /* sql, then each parameter's value */
};

struct pg_conn {
	sd_event *e;
	char *conninfo;
	const struct pg_conn_ops *ops;
	void *userdata;
	PGconn *pq;
	int fd; /* the socket io watches, -1: none */
	sd_event_source *io, *timer;
	enum pg_state state;
	bool busy;       /* the head statement was sent; its results are coming */
	bool said_down;  /* down() was called since the last up() */
	PGresult *last;  /* the head statement's last result so far */
	struct stmt *head, *tail;
	uint64_t backoff;
	const char *prepared[PREPARED_MAX]; /* names prepared on this connection */
	int n_prepared;
	bool preparing; /* what is in flight is the head statement's PQsendPrepare */
};

static void connect_start(struct pg_conn *c);

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* Watches the connection's socket for events (it may be a new one). */
static void watch(struct pg_conn *c, uint32_t events)
{
	int fd = c->pq ? PQsocket(c->pq) : -1;

	if (fd != c->fd) {
		c->io = sd_event_source_disable_unref(c->io);
		c->fd = -1;
		if (fd < 0 || sd_event_add_io(c->e, &c->io, fd, events, on_io, c) < 0)
			return;
		c->fd = fd;
		return;
	}
	if (c->io)
		sd_event_source_set_io_events(c->io, events);
}

static void first_line(char *s)
{
	s[strcspn(s, "\n")] = '\0';
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	connect_start(userdata);
	return 0;
}

/* The connection is gone (or never came): everything queued fails, the next try is timed. */
static void lost(struct pg_conn *c, const char *what)
{
	char why[512];
	uint64_t now;

	snprintf(why, sizeof(why), "%s", what && *what ? what : "connection lost");
	first_line(why);
	c->state = PG_DOWN;
	c->busy = false;
	c->preparing = false;
	c->n_prepared = 0; /* a new connection has none */
	PQclear(c->last);
	c->last = NULL;
	c->io = sd_event_source_disable_unref(c->io);
	c->fd = -1;
	PQfinish(c->pq);
	c->pq = NULL;
	while (c->head) {
		struct stmt *st = c->head;

		c->head = st->next;
		if (!c->head)
			c->tail = NULL;
		st->cb(st->userdata, NULL, why);
		free(st);
	}
	if (!c->said_down) {
		c->said_down = true;
		c->ops->down(c->userdata, why);
	}
	sd_event_now(c->e, CLOCK_MONOTONIC, &now);
	if (!c->timer)
		sd_event_add_time(c->e, &c->timer, CLOCK_MONOTONIC, now + c->backoff, 0, on_retry,
				  c);
	else {
		sd_event_source_set_time(c->timer, now + c->backoff);
		sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
	}
	c->backoff = c->backoff * 2 > BACKOFF_MAX_USEC ? BACKOFF_MAX_USEC : c->backoff * 2;
}

static bool is_prepared(const struct pg_conn *c, const char *name)
{
	for (int i = 0; i < c->n_prepared; i++)
		if (strcmp(c->prepared[i], name) == 0)
			return true;
	return false;
}

/* Sends the head statement if it can (first its PQsendPrepare, if it is not prepared yet). */
static void send_next(struct pg_conn *c)
{
	struct stmt *st = c->head;
	int r, ok;

	if (c->state != PG_UP || c->busy || !st)
		return;
	if (st->name && !is_prepared(c, st->name) && c->n_prepared == PREPARED_MAX) {
		ok = PQsendQueryParams(c->pq, st->text, st->n_params, NULL, st->params, NULL, NULL,
				       0); /* no room to keep another name: unnamed */
	} else if (st->name && !is_prepared(c, st->name)) {
		ok = PQsendPrepare(c->pq, st->name, st->text, st->n_params, NULL);
		c->preparing = true;
	} else if (st->name) {
		ok = PQsendQueryPrepared(c->pq, st->name, st->n_params, st->params, NULL, NULL, 0);
	} else if (st->n_params < 0) {
		ok = PQsendQuery(c->pq, st->text);
	} else {
		ok = PQsendQueryParams(c->pq, st->text, st->n_params, NULL, st->params, NULL, NULL,
				       0);
	}
	if (!ok) {
		lost(c, PQerrorMessage(c->pq));
		return;
	}
	c->busy = true;
	r = PQflush(c->pq);
	if (r < 0)
		lost(c, PQerrorMessage(c->pq));
	else
		watch(c, EPOLLIN | (r == 1 ? EPOLLOUT : 0));
}

static void up(struct pg_conn *c)
{
	c->state = PG_UP;
	c->backoff = BACKOFF_MIN_USEC;
	c->said_down = false;
	if (PQsetnonblocking(c->pq, 1) != 0) {
		lost(c, PQerrorMessage(c->pq));
		return;
	}
	watch(c, EPOLLIN);
	c->ops->up(c->userdata);
	send_next(c);
}

static void connect_start(struct pg_conn *c)
{
	c->state = PG_CONNECTING;
	c->pq = PQconnectStart(c->conninfo);
	if (!c->pq) {
		lost(c, "out of memory");
		return;
	}
	if (PQstatus(c->pq) == CONNECTION_BAD) {
		lost(c, PQerrorMessage(c->pq));
		return;
	}
	/* Until PQconnectPoll says otherwise, the socket is waited on for writing. */
	watch(c, EPOLLOUT);
}

/* The head statement's results, as far as they have come. */
static void take_results(struct pg_conn *c)
{
	while (c->busy && !PQisBusy(c->pq)) {
		PGresult *res = PQgetResult(c->pq);
		struct stmt *st;

		if (res) {
			PQclear(c->last);
			c->last = res;
			continue;
		}
		st = c->head;
		if (c->preparing) {
			/* Prepared: now the statement itself (a failure is the statement's). */
			c->preparing = false;
			if (PQresultStatus(c->last) == PGRES_COMMAND_OK) {
				c->prepared[c->n_prepared++] = st->name;
				PQclear(c->last);
				c->last = NULL;
				c->busy = false;
				send_next(c);
				continue;
			}
		}
		c->head = st->next;
		if (!c->head)
			c->tail = NULL;
		c->busy = false;
		res = c->last;
		c->last = NULL;
		st->cb(st->userdata, res, res ? PQresultErrorMessage(res) : "no result");
		PQclear(res);
		free(st);
		if (c->state != PG_UP)
			return;
		send_next(c);
	}
}

/* NOTIFYs that came with the input: each to notified(). */
static void notifications(struct pg_conn *c)
{
	PGnotify *n;

	while (c->state == PG_UP && (n = PQnotifies(c->pq))) {
		if (c->ops->notified)
			c->ops->notified(c->userdata, n->relname, n->extra);
		PQfreemem(n);
	}
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct pg_conn *c = userdata;

	if (c->state == PG_CONNECTING) {
		switch (PQconnectPoll(c->pq)) {
		case PGRES_POLLING_READING:
			watch(c, EPOLLIN);
			break;
		case PGRES_POLLING_WRITING:
			watch(c, EPOLLOUT);
			break;
		case PGRES_POLLING_OK:
			up(c);
			break;
		default:
			lost(c, PQerrorMessage(c->pq));
			break;
		}
		return 0;
	}
	if (c->state != PG_UP)
		return 0;
	if (revents & EPOLLOUT) {
		int r = PQflush(c->pq);

		if (r < 0) {
			lost(c, PQerrorMessage(c->pq));
			return 0;
		}
		if (r == 0)
			watch(c, EPOLLIN);
	}
	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		if (!PQconsumeInput(c->pq) || PQstatus(c->pq) == CONNECTION_BAD) {
			lost(c, PQerrorMessage(c->pq));
			return 0;
		}
		take_results(c);
		notifications(c);
	}
	return 0;
}

int pg_conn_new(sd_event *e, const char *conninfo, const struct pg_conn_ops *ops,
		void *userdata, struct pg_conn **ret, char **ret_error)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	struct pg_conn *c;

	*ret_error = NULL;
	if (!opts) {
		if (err && asprintf(ret_error, "connection string '%s': %s", conninfo, err) >= 0)
			first_line(*ret_error);
		PQfreemem(err);
		return err ? -EINVAL : -ENOMEM;
	}
	PQconninfoFree(opts);
	c = calloc(1, sizeof(*c));
	if (!c || !(c->conninfo = strdup(conninfo))) {
		free(c);
		return -ENOMEM;
	}
	c->e = sd_event_ref(e);
	c->ops = ops;
	c->userdata = userdata;
	c->fd = -1;
	c->backoff = BACKOFF_MIN_USEC;
	connect_start(c);
	*ret = c;
	return 0;
}

void pg_conn_free(struct pg_conn *c)
{
	if (!c)
		return;
	while (c->head) {
		struct stmt *st = c->head;

		c->head = st->next;
		free(st);
	}
	PQclear(c->last);
	sd_event_source_disable_unref(c->io);
	sd_event_source_disable_unref(c->timer);
	PQfinish(c->pq);
	sd_event_unref(c->e);
	free(c->conninfo);
	free(c);
}

bool pg_conn_is_up(const struct pg_conn *c)
{
	return c->state == PG_UP;
}

/* Queues sql with n parameters (n < 0: none, several statements allowed), prepared under
 * name (NULL: not prepared). */
static int queue(struct pg_conn *c, const char *name, const char *sql, int n,
		 const char *const *values, pg_result_fn cb, void *userdata)
{
	size_t len = strlen(sql) + 1;
	struct stmt *st;
	char *p;

	if (n > PARAMS_MAX)
		return -E2BIG;
	if (c->state != PG_UP)
		return -ENOTCONN;
	for (int i = 0; i < n; i++)
		len += values[i] ? strlen(values[i]) + 1 : 0;
	st = malloc(sizeof(*st) + len);
	if (!st)
		return -ENOMEM;
	*st = (struct stmt){ .cb = cb, .userdata = userdata, .name = name, .n_params = n };
	p = stpcpy(st->text, sql) + 1;
	for (int i = 0; i < n; i++) {
		if (!values[i])
			continue;
		st->params[i] = p;
		p = stpcpy(p, values[i]) + 1;
	}
	if (c->tail)
		c->tail->next = st;
	else
		c->head = st;
	c->tail = st;
	send_next(c);
	return 0;
}

int pg_conn_exec(struct pg_conn *c, const char *sql, pg_result_fn cb, void *userdata)
{
	return queue(c, NULL, sql, -1, NULL, cb, userdata);
}

int pg_conn_exec_params(struct pg_conn *c, const char *sql, int n, const char *const *values,
			pg_result_fn cb, void *userdata)
{
	return queue(c, NULL, sql, n < 0 ? 0 : n, values, cb, userdata);
}

int pg_conn_exec_prepared(struct pg_conn *c, const char *name, const char *sql, int n,
			  const char *const *values, pg_result_fn cb, void *userdata)
{
	return queue(c, name, sql, n < 0 ? 0 : n, values, cb, userdata);
}
