/* SPDX-License-Identifier: MIT */
/*
 * The control socket (see control.h and docs/control-protocol.md): the listening socket, who
 * may connect and how many, control_new and control_free. The files it is made of and what
 * they share are in control-internal.h.
 *
 * Every client is bounded whatever it asks (DESIGN §11):
 * - memory: its input buffer holds at most one request line (CONTROL_REQUEST_MAX) plus what
 *   is pipelined behind a reply in progress, its output buffer about CONTROL_OUTPUT_MAX; both
 *   are allocated when bytes come and freed when they are used up, so an idle client holds
 *   none (control-conn.c). A reply that can be long (`jobs`, `submit`'s ids and names,
 *   `wait`) is never built whole: a stream writes the JSON text of that one object piece by
 *   piece from a cursor (the next job id), a slice at a time while the output has room, at a
 *   priority below everything else on the loop (control-stream.c). While a reply is in
 *   progress or the output is full, later requests wait (replies stay in order).
 * - time: one timer per client runs the deadline that applies: idle (connected, nothing
 *   asked, nothing owed), request (its first byte to its '\n': a trickler is cut) and write
 *   (we owe replies and it reads none). A client with a pending `wait` has no idle deadline.
 * - slots: CONTROL_CLIENTS_MAX in all, of which CONTROL_ROOT_RESERVED only root (or our own
 *   uid) may take, and CONTROL_UID_MAX for any other one uid: nobody locks the operator out.
 * Reads and writes are non-blocking; a client past a limit is answered (when that is possible)
 * and closed. Every request is parsed with json-c, checked for its shape, and answered with
 * one line; nothing a client sends can make the master block, allocate without bound, or exit.
 *
 * Owner of everything here: the control object; it is freed before the master.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/units.h"
#include "daemon/control-internal.h"
#include "daemon/events.h"

#define CONTROL_CLIENTS_MAX 256 /* connections at once */
#define CONTROL_ROOT_RESERVED 8 /* of those, the last ones: root and our own uid only */
#define CONTROL_UID_MAX (CONTROL_CLIENTS_MAX / 2) /* connections of any other one uid */
#define CONTROL_IDLE_TIMEOUT (30 * USEC_PER_SEC) /* connected, nothing asked, nothing owed */
#define CONTROL_REQUEST_TIMEOUT (5 * USEC_PER_SEC) /* a request's first byte to its '\n' */
#define CONTROL_WRITE_TIMEOUT (10 * USEC_PER_SEC) /* replies owed, and not a byte read */
#define CONTROL_DEADLINES_ENV "BULKHEAD_CONTROL_DEADLINES" /* test/debug: "idle=1s write=2s" */
#define REFUSED_LOG_EVERY (10 * USEC_PER_SEC) /* "too many clients" is logged this often */
#define ACCEPT_RETRY (100 * USEC_PER_MSEC) /* after EMFILE/ENFILE */

/*
 * Root, our own uid, or a member of control_group (primary or supplementary: SO_PEERGROUPS,
 * the groups the kernel had for the peer when it connected, which needs no /proc access to
 * a process of another user).
 */
static bool peer_allowed(struct control *c, int fd, const struct ucred *cr)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (cr->uid == 0 || cr->uid == geteuid())
		return true;
	if (!c->have_gid)
		return false;
	if (cr->gid == c->gid)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false; /* ERANGE: more than 256 groups; not worth a retry */
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == c->gid)
			return true;
	return false;
}

static int on_accept_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct control *c = userdata;

	sd_event_source_set_enabled(c->listen, SD_EVENT_ON);
	return 0;
}

/* Root and our own uid: the operator, who may take the reserved slots. */
static bool privileged(const struct control *c, uid_t uid)
{
	return uid == 0 || uid == c->euid;
}

/*
 * Whether a client of `uid` may have a slot: NULL, or why not (in buf). Every slot is taken;
 * the last CONTROL_ROOT_RESERVED are the operator's; any other uid has at most
 * CONTROL_UID_MAX. So no one uid, root's excepted, can lock the operator out.
 */
static const char *slot_refusal(struct control *c, uid_t uid, char *buf, size_t size)
{
	unsigned mine = 0;

	if (c->n_clients >= CONTROL_CLIENTS_MAX)
		return "too many clients";
	if (privileged(c, uid))
		return NULL;
	if (c->n_clients >= CONTROL_CLIENTS_MAX - CONTROL_ROOT_RESERVED) {
		snprintf(buf, size, "too many clients (the last %d slots are kept for root)",
			 CONTROL_ROOT_RESERVED);
		return buf;
	}
	for (struct client *cl = c->clients; cl; cl = cl->next)
		mine += cl->uid == uid;
	if (mine < CONTROL_UID_MAX)
		return NULL;
	snprintf(buf, size, "too many clients of uid %u (at most %d at once)", (unsigned)uid,
		 CONTROL_UID_MAX);
	return buf;
}

/* Answers a connection we do not take, and closes it. Logged at most every 10 s. */
static void refuse_connection(struct control *c, int cfd, const struct ucred *cr, const char *why)
{
	char line[160];
	usec_t now = now_usec();

	snprintf(line, sizeof(line), "{\"ok\":false,\"error\":\"%s\"}\n", why);
	(void)!send(cfd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);
	close(cfd);
	c->refused++;
	if (c->refused_logged_at && now < c->refused_logged_at + REFUSED_LOG_EVERY)
		return;
	log_warning("control: %u connection%s refused, the last from uid %u (pid %d): %s",
		    c->refused, c->refused == 1 ? "" : "s", (unsigned)cr->uid, (int)cr->pid, why);
	c->refused = 0;
	c->refused_logged_at = now;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct control *c = userdata;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	struct client *cl;
	const char *why;
	char buf[128];
	int cfd;

	cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (cfd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* Out of descriptors: accept again on a timer; say it once. */
			if (!c->accept_failing)
				log_warning_errno(-errno, "control: cannot accept (retrying every "
							  "100ms)");
			c->accept_failing = true;
			sd_event_source_set_enabled(c->listen, SD_EVENT_OFF);
			if (!c->retry)
				sd_event_add_time(sd_event_source_get_event(s), &c->retry,
						  CLOCK_MONOTONIC, now_usec() + ACCEPT_RETRY,
						  USEC_PER_MSEC, on_accept_retry, c);
			else {
				sd_event_source_set_time(c->retry, now_usec() + ACCEPT_RETRY);
				sd_event_source_set_enabled(c->retry, SD_EVENT_ONESHOT);
			}
		}
		return 0;
	}
	if (c->accept_failing) {
		log_notice("control: accepting connections again");
		c->accept_failing = false;
	}
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		close(cfd);
		return 0;
	}
	why = slot_refusal(c, cr.uid, buf, sizeof(buf));
	if (why) {
		refuse_connection(c, cfd, &cr, why);
		return 0;
	}
	if (control_conn_new(c, cfd, &cr, &cl) < 0) {
		close(cfd);
		return 0;
	}
	if (master_uid_runs_jobs(c->m, cr.uid)) {
		/* A job (or anything of its uid) must not command the master, whatever its
		 * groups: the pool's user may well be in control_group. */
		log_warning("control: uid %u (pid %d) runs a pool's jobs: permission denied",
			    (unsigned)cr.uid, (int)cr.pid);
		control_conn_refuse(cl, "permission denied");
	} else if (!peer_allowed(c, cfd, &cr)) {
		log_warning("control: uid %u (pid %d) is not root nor in group %s: permission "
			    "denied",
			    (unsigned)cr.uid, (int)cr.pid,
			    master_config(c->m)->supervisor.control_group);
		control_conn_refuse(cl, "permission denied");
	}
	control_conn_pump(cl, false); /* arms the idle deadline, or says the refusal */
	return 0;
}

/*
 * Whether a server answers on path: 1 (a connect worked, or the backlog is full: someone
 * listens), 0 (nothing there, or a stale socket: connection refused), -ENOTSOCK (something
 * that is not a socket), or -errno.
 */
int control_probe(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN ||
	    errno == EINPROGRESS)
		r = 1;
	else if (errno == ECONNREFUSED || errno == ENOENT)
		r = 0;
	else
		r = -errno;
	close(fd);
	return r;
}

/*
 * Takes the socket's directory's flock (released when the returned fd is closed), so two
 * daemons starting at once cannot both find the path stale and take it in turn. -1 (and no
 * lock) if the directory cannot be opened; -EADDRINUSE if another holds it right now.
 */
static int lock_socket_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		slash[slash == dir] = '\0'; /* "/x.sock" -> "/" */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return -EADDRINUSE;
	}
	return fd;
}

/* Environment: CONTROL_DEADLINES_ENV="idle=DUR request=DUR write=DUR", any of them. */
static void read_deadlines(struct control *c)
{
	const char *e = getenv(CONTROL_DEADLINES_ENV);
	char *copy, *save = NULL;

	c->idle_timeout = CONTROL_IDLE_TIMEOUT;
	c->request_timeout = CONTROL_REQUEST_TIMEOUT;
	c->write_timeout = CONTROL_WRITE_TIMEOUT;
	if (!e || !*e || !(copy = strdup(e)))
		return;
	for (char *kv = strtok_r(copy, " ,", &save); kv; kv = strtok_r(NULL, " ,", &save)) {
		char *eq = strchr(kv, '=');
		usec_t *which = NULL, v;

		if (eq) {
			*eq = '\0';
			which = strcmp(kv, "idle") == 0	     ? &c->idle_timeout
				: strcmp(kv, "request") == 0 ? &c->request_timeout
				: strcmp(kv, "write") == 0   ? &c->write_timeout
							     : NULL;
		}
		if (!which || parse_duration(eq + 1, &v) < 0 || v == 0 || v == USEC_INFINITY) {
			log_warning(
				"control: %s: ignored '%s' (idle=, request=, write= a duration)",
				CONTROL_DEADLINES_ENV, kv);
			continue;
		}
		*which = v;
	}
	free(copy);
}

static const struct master_hooks control_hooks = {
	.on_job_end = control_on_job_end, /* pending waits */
	.on_flushed = control_on_flushed, /* submit replies held for the store */
	.on_job_log = control_on_job_log, /* logs --follow */
};

int control_new(struct master *m, const char *path, const char *group, struct control **ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct control *c;
	struct group *gr;
	int r, lock;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->m = m;
	c->fd = -1;
	c->euid = geteuid();
	events_start(); /* the recent events of the status reply */
	read_deadlines(c);
	c->path = strdup(path);
	if (!c->path) {
		control_free(c);
		return -ENOMEM;
	}
	gr = getgrnam(group);
	if (gr) {
		c->gid = gr->gr_gid;
		c->have_gid = true;
	} else {
		log_warning("control: group '%s' does not exist: only root may use %s", group,
			    path);
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		r = -errno;
		control_free(c);
		return r;
	}
	memcpy(sa.sun_path, path, strlen(path));
	/*
	 * Our instance lock is per runtime directory, and another daemon may use the same
	 * control_socket from another one: a socket that answers is never taken over; one that
	 * refuses connections is stale (its daemon died) and replaced.
	 */
	lock = lock_socket_dir(path);
	r = lock == -EADDRINUSE ? lock : control_probe(path);
	if (r == 0 && unlink(path) < 0 && errno != ENOENT)
		r = -errno;
	else if (r > 0)
		r = -EADDRINUSE;
	if (r == 0 &&
	    (bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(c->fd, 128) < 0))
		r = -errno;
	if (lock >= 0)
		close(lock);
	if (r < 0) {
		close(c->fd);
		c->fd = -1; /* not ours: control_free must not unlink it */
		control_free(c);
		return r;
	}
	if (chmod(path, c->have_gid ? 0660 : 0600) < 0 ||
	    (c->have_gid && chown(path, 0, c->gid) < 0 && geteuid() == 0)) {
		r = -errno;
		control_free(c);
		return r;
	}
	r = sd_event_add_io(master_event(m), &c->listen, c->fd, EPOLLIN, on_accept, c);
	if (r >= 0)
		r = sd_event_add_defer(master_event(m), &c->wait_check, control_on_wait_check, c);
	if (r >= 0)
		r = sd_event_source_set_enabled(c->wait_check, SD_EVENT_OFF);
	if (r >= 0)
		r = sd_event_add_defer(master_event(m), &c->release, control_on_release, c);
	if (r >= 0)
		r = sd_event_source_set_enabled(c->release, SD_EVENT_OFF);
	if (r < 0) {
		control_free(c);
		return r;
	}
	r = master_subscribe(m, &control_hooks, c);
	if (r < 0) {
		control_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

void control_free(struct control *c)
{
	if (!c)
		return;
	events_stop();
	while (c->clients)
		control_conn_free(c->clients);
	control_shared_waits_free(c);
	control_submit_probes_free(c);
	sd_event_source_disable_unref(c->listen);
	sd_event_source_disable_unref(c->retry);
	sd_event_source_disable_unref(c->wait_check);
	sd_event_source_disable_unref(c->release);
	if (c->m)
		master_unsubscribe(c->m, &control_hooks, c);
	if (c->fd >= 0) {
		close(c->fd);
		unlink(c->path);
	}
	free(c->path);
	free(c);
}
