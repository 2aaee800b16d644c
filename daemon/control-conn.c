/* SPDX-License-Identifier: MIT */
/*
 * One control client's connection (see control-internal.h): its input and output buffers,
 * allocated when bytes come and freed when used up; the requests read from the input one
 * line at a time and handed to control_dispatch while nothing holds them back (a reply in
 * progress, a pending wait, a full output); the replies written as the socket takes them;
 * the one deadline that applies (idle, request or write) on the client's timer; its events
 * (EPOLLIN only while we read, a long reply at a priority below all else).
 *
 * A function that returns false has freed the client: its caller must not touch it again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/units.h"
#include "daemon/control-internal.h"

#define CONTROL_STREAM_PRIORITY (SD_EVENT_PRIORITY_NORMAL + 10) /* below all else on the loop */
#define CONTROL_TIMER_ACCURACY (50 * USEC_PER_MSEC)
#define BUFFER_MIN 1024 /* first allocation of an input or output buffer */
#define HELD_INLINE_MAX 64 /* ids of a released submit reply written at once, not streamed */

void control_conn_free(struct client *cl)
{
	struct client **pp;

	for (pp = &cl->c->clients; *pp && *pp != cl; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = cl->next;
	cl->c->n_clients--;
	if (cl->following)
		cl->c->n_following--;
	sd_event_source_disable_unref(cl->io);
	sd_event_source_disable_unref(cl->timer);
	close(cl->fd);
	free(cl->in);
	free(cl->out);
	while (cl->held) {
		struct held *h = cl->held;

		cl->held = h->next;
		if (h->durable_at)
			cl->c->n_held--;
		control_stream_free(h->stream);
		json_object_put(h->echo);
		free(h->text);
		free(h);
	}
	control_stream_free(cl->stream);
	control_wait_free(cl);
	free(cl);
}

bool control_conn_held_for_store(const struct client *cl)
{
	return cl->held != NULL;
}

/* Queues a reply behind the held ones: a stream (which c->serving->stream was) or a line. */
static bool hold(struct client *cl, struct stream *s, json_object *line, uint64_t durable_at)
{
	struct held *h = calloc(1, sizeof(*h));
	const char *text;

	if (h && line) {
		text = json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN);
		if (asprintf(&h->text, "%s\n", text) < 0)
			h->text = NULL;
	}
	json_object_put(line);
	if (!h || (line && !h->text)) {
		free(h);
		control_stream_free(s);
		log_warning("control: out of memory for client pid %d: closed", (int)cl->pid);
		control_conn_free(cl);
		return false;
	}
	h->stream = s;
	h->durable_at = durable_at;
	if (durable_at)
		cl->c->n_held++;
	if (cl->held_tail)
		cl->held_tail->next = h;
	else
		cl->held = h;
	cl->held_tail = h;
	cl->n_held++;
	return true;
}

/*
 * Moves the held replies whose jobs are on disk, in order, to the output (a line) or to be
 * written (a stream: one at a time, the next once it is done). False if the client had to go.
 */
static bool release_held(struct client *cl)
{
	uint64_t flushed = master_flushes(cl->c->m);

	while (cl->held && !cl->stream && !cl->held->query && cl->held->durable_at <= flushed) {
		struct held *h = cl->held;
		bool ok = true;

		cl->held = h->next;
		if (!cl->held)
			cl->held_tail = NULL;
		cl->n_held--;
		if (h->durable_at)
			cl->c->n_held--;
		if (h->stream)
			cl->stream = h->stream;
		else
			ok = control_conn_append(cl, h->text, strlen(h->text));
		free(h->text);
		free(h);
		if (!ok)
			return false;
		/* A short reply (a few ids) is written now, with the others released together:
		 * one send for them all instead of a turn each. */
		while (cl->stream && cl->stream->kind == STREAM_SUBMIT &&
		       cl->stream->end - cl->stream->first <= HELD_INLINE_MAX &&
		       cl->out_len < CONTROL_OUTPUT_MAX)
			if (!control_stream_fill(cl))
				return false;
	}
	return true;
}

bool control_conn_hold(struct client *cl, struct stream *s)
{
	return hold(cl, s, NULL, s->durable_at);
}

void control_on_flushed(void *userdata)
{
	struct control *c = userdata;

	if (c->n_held > 0)
		sd_event_source_set_enabled(c->release, SD_EVENT_ONESHOT);
}

int control_on_release(sd_event_source *s, void *userdata)
{
	struct control *c = userdata;
	struct client *next;

	for (struct client *cl = c->clients; cl && c->n_held > 0; cl = next) {
		next = cl->next;
		if (cl->held && !cl->stream && !cl->held->query &&
		    cl->held->durable_at <= master_flushes(c->m))
			control_conn_pump(cl, false); /* a stream is written on its own turns */
	}
	return 0;
}

/* Room for `need` bytes in *buf (of *size), doubling from BUFFER_MIN up to `max` (0: none). */
static int buf_reserve(char **buf, size_t *size, size_t need, size_t max)
{
	size_t n = *size ? *size : BUFFER_MIN;
	char *p;

	if (need <= *size)
		return 0;
	while (n < need)
		n *= 2;
	if (max && n > max && need <= max)
		n = max;
	p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*size = n;
	return 0;
}

static void buf_drop(char **buf, size_t *size)
{
	free(*buf);
	*buf = NULL;
	*size = 0;
}

/* Queues text for the client. False if the client had to go (out of memory). */
bool control_conn_append(struct client *cl, const char *text, size_t len)
{
	if (buf_reserve(&cl->out, &cl->out_size, cl->out_len + len, 0) < 0) {
		log_warning("control: out of memory for client pid %d: closed", (int)cl->pid);
		control_conn_free(cl);
		return false;
	}
	memcpy(cl->out + cl->out_len, text, len);
	cl->out_len += len;
	return true;
}

/*
 * Queues one reply line (takes the reference to o). False if the client had to go. The
 * output may pass CONTROL_OUTPUT_MAX by this one reply: no later request is read from the
 * input until the client has read it below that again.
 */
bool control_conn_reply(struct client *cl, json_object *o)
{
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	bool ok = control_conn_append(cl, text, strlen(text)) && control_conn_append(cl, "\n", 1);

	json_object_put(o);
	return ok;
}

/*
 * The write a reply must wait for: with a durable store that holds changes not written yet,
 * the next one (a client is told only what a crash cannot take back: a submit's jobs, a job
 * that ended); else none. An error tells nothing of the jobs, and while the store cannot be
 * written the daemon still answers (its status says why; new submits are refused).
 */
static uint64_t reply_durable_at(struct control *c, json_object *reply)
{
	json_object *ok;

	if (!master_durable(c->m) || !master_store_dirty(c->m) || master_store_failing(c->m) ||
	    (reply && json_object_object_get_ex(reply, "ok", &ok) && !json_object_get_boolean(ok)))
		return 0;
	master_flush_needed(c->m);
	return master_flush_next(c->m);
}

/*
 * One complete line. Its reply goes out at once, or, if the store has yet to write what it
 * tells (or replies before it wait), behind the held ones. Returns false if the client had
 * to go.
 */
static bool handle_line(struct client *cl, const char *line, size_t len)
{
	struct control *c = cl->c;
	json_object *req, *reply, *id = NULL;
	const char *error = NULL;
	struct stream *s;
	uint64_t at;

	if (control_parse_request(line, len, &req, &error) < 0) {
		reply = control_error_reply("%s", error);
		return cl->held ? hold(cl, NULL, reply, 0) : control_conn_reply(cl, reply);
	}
	json_object_object_get_ex(req, "id", &id);
	c->serving = cl;
	/* NULL: a stream set up on cl, or a wait (which keeps the id for its reply). */
	reply = control_dispatch(c, req);
	c->serving = NULL;
	if (!reply && id && cl->stream)
		cl->stream->echo = json_object_get(id);
	if (reply && id)
		json_object_object_add(reply, "id", json_object_get(id));
	json_object_put(req);
	if (!reply && !cl->stream && c->query_pending) {
		uint64_t q = c->query_pending;

		json_object *early = c->query_early;

		c->query_pending = 0;
		c->query_early = NULL;
		if (!hold(cl, NULL, NULL, 0)) {
			json_object_put(early);
			return false;
		}
		cl->held_tail->query = q;
		cl->held_tail->echo = id ? json_object_get(id) : NULL;
		if (early && !control_held_fill(cl->held_tail, early)) {
			log_warning("control: out of memory for client pid %d: closed", (int)cl->pid);
			control_conn_free(cl);
			return false;
		}
		return true;
	}
	if (!reply && !cl->stream)
		return true; /* a pending wait: its reply comes later, held likewise */
	/* A submit's reply tells only of its jobs: it set the write it waits for (a partial
	 * one will do: master_flush_needed_for_submit()). */
	if (c->reply_not_held || (!reply && cl->stream->kind == STREAM_SUBMIT))
		at = 0;
	else
		at = reply_durable_at(c, reply);
	c->reply_not_held = false;
	if (!reply) {
		s = cl->stream;
		if (s->durable_at > at)
			at = s->durable_at; /* a submit's: the write after its jobs were added */
		if (!at && !cl->held)
			return true; /* written as the client reads it */
		cl->stream = NULL;
		return hold(cl, s, NULL, at);
	}
	if (at || cl->held)
		return hold(cl, NULL, reply, at);
	return control_conn_reply(cl, reply);
}

/*
 * No request is taken from the input: a reply is in progress or owed, the output is full, or
 * too many replies wait for the store.
 */
static bool client_held(const struct client *cl)
{
	return cl->stream || cl->wait || cl->refusal || cl->out_len >= CONTROL_OUTPUT_MAX ||
	       cl->n_held >= CONTROL_HELD_MAX || cl->following;
}

/* We read from it: not closing or at EOF, and the input has room. */
static bool client_reading(const struct client *cl)
{
	return !cl->closing && !cl->eof && !cl->refusal && cl->in_len <= CONTROL_REQUEST_MAX;
}

/* Every complete line in the input, in order, while nothing holds them back. */
static bool process_lines(struct client *cl)
{
	char *nl;

	while (!client_held(cl) && cl->in_len > 0 && (nl = memchr(cl->in, '\n', cl->in_len))) {
		size_t len = (size_t)(nl - cl->in);

		if (!handle_line(cl, cl->in, len))
			return false;
		memmove(cl->in, nl + 1, cl->in_len - len - 1);
		cl->in_len -= len + 1;
		cl->request_since = 0; /* the next request's deadline starts with it */
	}
	if (cl->in_len == 0)
		buf_drop(&cl->in, &cl->in_size);
	return true;
}

/* recvmsg that closes any passed fds. Returns bytes, 0 at EOF, -errno, or -EBADMSG for fds. */
static ssize_t client_recv(struct client *cl, char *buf, size_t size)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 16)];
	} control;
	struct iovec iov = { buf, size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
			     .msg_controllen = sizeof(control) };
	bool had_fds = false;
	ssize_t n;

	n = recvmsg(cl->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int *fds = (int *)CMSG_DATA(cm);
			size_t nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (size_t i = 0; i < nfds; i++)
				close(fds[i]);
			had_fds = true;
		}
	}
	if (had_fds || (mh.msg_flags & MSG_CTRUNC))
		return -EBADMSG;
	return n;
}

/* Says `why` and closes, once no reply is in progress; nothing more is read. */
void control_conn_refuse(struct client *cl, const char *why)
{
	cl->refusal = why;
	cl->in_len = 0;
	buf_drop(&cl->in, &cl->in_size);
}

/* Takes in what the client sent, up to a request line beyond what waits. False if it went. */
static bool client_read(struct client *cl)
{
	static char scratch[CONTROL_REQUEST_MAX + 1]; /* so a byte costs a byte, not a buffer */

	while (client_reading(cl)) {
		size_t want = CONTROL_REQUEST_MAX + 1 - cl->in_len;
		ssize_t n = client_recv(cl, scratch, want);

		cl->drained = n == -EAGAIN || (n >= 0 && (size_t)n < want);
		if (n == -EAGAIN || n == -EINTR)
			break;
		if (n == -EBADMSG) {
			log_warning("control: client pid %d uid %u passed file descriptors: refused",
				    (int)cl->pid, (unsigned)cl->uid);
			control_conn_refuse(cl, "file descriptors are not accepted");
			break;
		}
		if (n == 0) {
			/* A half-close (shutdown(SHUT_WR)) still gets the replies it asked for. */
			cl->eof = true;
			break;
		}
		if (n < 0 || buf_reserve(&cl->in, &cl->in_size, cl->in_len + (size_t)n,
					 CONTROL_REQUEST_MAX + 1) < 0) {
			control_conn_free(cl);
			return false;
		}
		memcpy(cl->in + cl->in_len, scratch, (size_t)n);
		cl->in_len += (size_t)n;
		/* Less than asked for: it had no more just now. Another recv would only say
		 * EAGAIN (one syscall a request, measured); if more comes, that is a new edge
		 * and this runs again. */
		if ((size_t)n < want)
			break;
	}
	return true;
}

/* Writes what the socket takes. False if the client is gone (freed). */
static bool client_write(struct client *cl)
{
	size_t done = 0;

	while (done < cl->out_len) {
		ssize_t n = send(cl->fd, cl->out + done, cl->out_len - done,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			control_conn_free(cl);
			return false;
		}
		done += (size_t)n;
	}
	if (done > 0) {
		memmove(cl->out, cl->out + done, cl->out_len - done);
		cl->out_len -= done;
		cl->write_since = 0; /* it reads: the write deadline starts over */
	}
	if (cl->out_len == 0 && !cl->stream)
		buf_drop(&cl->out, &cl->out_size);
	return true;
}

/*
 * Produces what the output has room for: a slice of the reply in progress if this is its
 * turn, a refusal, then the requests waiting in the input, in order. False if the client had
 * to go.
 */
static bool client_produce(struct client *cl, bool turn)
{
	for (;;) {
		if (!release_held(cl))
			return false;
		if (cl->stream) {
			if (!turn)
				return true; /* on a turn of its own, at CONTROL_STREAM_PRIORITY */
			if (!control_stream_fill(cl))
				return false;
			if (cl->stream)
				return true; /* the rest on a later turn, once there is room */
			turn = false; /* one slice a turn, also across replies */
		}
		if (cl->refusal) {
			json_object *o = control_error_reply("%s", cl->refusal);

			control_wait_free(cl); /* a pending wait goes with the client */
			cl->refusal = NULL;
			cl->closing = true;
			return control_conn_reply(cl, o);
		}
		if (cl->closing)
			return true;
		if (!process_lines(cl))
			return false;
		if (cl->stream || (cl->held && !cl->stream && !cl->held->query &&
				   cl->held->durable_at <= master_flushes(cl->c->m)))
			continue;
		/* Nothing holds the input back and it has no '\n': a line longer than allowed. */
		if (!client_held(cl) && !cl->held && cl->in_len > CONTROL_REQUEST_MAX) {
			control_conn_refuse(cl, "request too long");
			continue;
		}
		return true;
	}
}

/*
 * Arms the deadline that applies: `write` while replies are owed (from the last time the
 * client took some: the socket's buffer may hold what it has not read, so an empty output
 * with a reply in progress counts too), `request` while the client owes the rest of a line
 * (from when it started), `idle` while nothing is owed either way and no wait is pending. A
 * pending wait alone has none, nor a submit reply held for the store: the client is waiting on
 * us.
 */
static void client_rearm(struct client *cl)
{
	struct control *c = cl->c;
	usec_t now = now_usec(), when = USEC_INFINITY;
	bool held = control_conn_held_for_store(cl);
	bool owed = cl->out_len > 0 || cl->stream;
	bool owing = cl->in_len > 0 && !client_held(cl) && !held && !cl->closing;
	bool idle = !owed && cl->in_len == 0 && !cl->wait && !held && !cl->following &&
		    !cl->closing && !cl->eof;

	cl->write_since = owed ? (cl->write_since ? cl->write_since : now) : 0;
	cl->request_since = owing ? (cl->request_since ? cl->request_since : now) : 0;
	cl->idle_since = idle ? (cl->idle_since ? cl->idle_since : now) : 0;
	if (cl->write_since && cl->write_since + c->write_timeout < when)
		when = cl->write_since + c->write_timeout;
	if (cl->request_since && cl->request_since + c->request_timeout < when)
		when = cl->request_since + c->request_timeout;
	if (cl->idle_since && cl->idle_since + c->idle_timeout < when)
		when = cl->idle_since + c->idle_timeout;
	/*
	 * An armed timer that fires no later than needed stays as it is: it finds nothing due
	 * and arms again (on_client_deadline). Moving it on every request of a busy client
	 * would reprogram the loop's timerfd as often.
	 */
	if (cl->timer_at && cl->timer_at <= when)
		return;
	if (when == USEC_INFINITY)
		return;
	cl->timer_at = when;
	sd_event_source_set_time(cl->timer, when);
	sd_event_source_set_enabled(cl->timer, SD_EVENT_ONESHOT);
}

static int on_client_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct client *cl = userdata;
	struct control *c = cl->c;
	usec_t now = now_usec();
	char took[32], line[128];

	cl->timer_at = 0; /* it fired: a one-shot, off now */
	if (cl->write_since && now >= cl->write_since + c->write_timeout) {
		log_info("control: client pid %d uid %u does not read its replies: closed (nothing "
			 "read in %s)",
			 (int)cl->pid, (unsigned)cl->uid,
			 format_duration(took, sizeof(took), c->write_timeout));
	} else if (cl->request_since && now >= cl->request_since + c->request_timeout) {
		format_duration(took, sizeof(took), c->request_timeout);
		log_info("control: client pid %d uid %u: request not complete within %s: closed",
			 (int)cl->pid, (unsigned)cl->uid, took);
		/* Nothing else is owed to it, so this line is the reply to its half request. */
		snprintf(line, sizeof(line),
			 "{\"ok\":false,\"error\":\"request not complete within %s\"}\n", took);
		(void)!send(cl->fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);
	} else if (cl->idle_since && now >= cl->idle_since + c->idle_timeout) {
		/* No line: one that nobody asked for could be taken as the reply to a request
		 * crossing it on the way. A close between requests is the protocol's "connect
		 * again". */
		log_info("control: client pid %d uid %u: idle for %s: closed", (int)cl->pid,
			 (unsigned)cl->uid, format_duration(took, sizeof(took), c->idle_timeout));
	} else {
		client_rearm(cl); /* woken early */
		return 0;
	}
	control_conn_free(cl);
	return 0;
}

/* Closes a client that is done with, else sets its events and its deadline. */
static void client_settle(struct client *cl)
{
	bool held = control_conn_held_for_store(cl);
	bool owed = cl->out_len > 0 || cl->stream;
	uint32_t events;

	if (!owed && (cl->closing || (cl->eof && !cl->wait && !held))) {
		control_conn_free(cl);
		return;
	}
	/*
	 * EPOLLOUT while replies wait to be written; EPOLLIN only while we read. Edge-triggered:
	 * with level-triggered sources, every wake-up of the loop (one per source it runs)
	 * listed again every client with input not yet handled, and 64 clients made that the
	 * master's biggest cost. So input is read until the socket has no more, or EPOLLIN is
	 * off; a change of the events (epoll_ctl) reports what is there already, and input
	 * left unread with EPOLLIN still on re-arms it. A stream stays level-triggered: it is
	 * written a slice per turn while the socket has room. A long reply is written below
	 * everything else on the loop (workers, accepts, other clients' requests): 100 of them
	 * do not delay a `status`.
	 */
	events = (owed ? EPOLLOUT : 0) | (client_reading(cl) ? EPOLLIN : 0) |
		 (cl->stream ? 0 : EPOLLET);
	if (events != cl->io_events || ((events & EPOLLET) && (events & EPOLLIN) && !cl->drained)) {
		cl->io_events = events;
		cl->drained = true; /* the epoll_ctl reports what is left */
		sd_event_source_set_io_events(cl->io, events);
	}
	if (cl->background != (cl->stream != NULL)) {
		cl->background = cl->stream != NULL;
		sd_event_source_set_priority(cl->io, cl->background ? CONTROL_STREAM_PRIORITY
								    : SD_EVENT_PRIORITY_NORMAL);
	}
	client_rearm(cl);
}

/*
 * Writes, produces what the output then has room for (a slice of a long reply only on its
 * own turn), writes that, and settles.
 */
void control_conn_pump(struct client *cl, bool turn)
{
	do {
		if (!client_write(cl) || !client_produce(cl, turn) || !client_write(cl))
			return;
		turn = false;
		/*
		 * Production stopped at a full output and the socket then took all of it: the
		 * complete requests left would wait for an event that does not come (the client
		 * sent them all and read every reply). Each round answers one at least.
		 */
	} while (!client_held(cl) && !cl->closing && cl->in_len > 0 &&
		 memchr(cl->in, '\n', cl->in_len));
	client_settle(cl);
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct client *cl = userdata;
	bool turn = cl->background; /* dispatched at stream priority: the stream's turn */

	if (client_reading(cl) && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		if (!client_read(cl))
			return 0;
	} else if (revents & (EPOLLHUP | EPOLLERR)) {
		/* We do not read, and nobody is left to read our replies. */
		control_conn_free(cl);
		return 0;
	}
	control_conn_pump(cl, turn);
	return 0;
}

int control_conn_new(struct control *c, int cfd, const struct ucred *cr, struct client **ret)
{
	sd_event *e = master_event(c->m);
	struct client *cl = calloc(1, sizeof(*cl));
	int r;

	if (!cl)
		return -ENOMEM;
	cl->c = c;
	cl->fd = cfd;
	cl->uid = cr->uid;
	cl->pid = cr->pid;
	cl->io_events = EPOLLIN | EPOLLET; /* see client_settle() */
	cl->drained = true;
	r = sd_event_add_io(e, &cl->io, cfd, cl->io_events, on_client_io, cl);
	if (r >= 0)
		r = sd_event_add_time(e, &cl->timer, CLOCK_MONOTONIC, USEC_INFINITY,
				      CONTROL_TIMER_ACCURACY, on_client_deadline, cl);
	if (r < 0) {
		sd_event_source_disable_unref(cl->io);
		free(cl);
		return r;
	}
	cl->next = c->clients;
	c->clients = cl;
	c->n_clients++;
	*ret = cl;
	return 0;
}
