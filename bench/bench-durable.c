/* SPDX-License-Identifier: MIT */
/*
 * The durable-submit benchmark's two halves (driven by bench/run, "durable"):
 *
 *   bench-durable raw-server SOCKET DBFILE
 *       The baseline: what group commit on raw SQLite costs with nothing else around it. One
 *       thread, a poll() loop over an AF_UNIX stream socket. Each request line is one job: a
 *       row inserted; each pass commits every row of the requests it read together with the
 *       end (state done) of the jobs it acknowledged the pass before, in one transaction
 *       (WAL, synchronous=FULL, as bulkheadd's store), and only then writes the replies. A
 *       line {"command":"sync"} is answered after the next commit, so a client knows every
 *       end before it is on disk. On SIGTERM it prints {"requests":N,"commits":N}.
 *
 *   bench-durable clients SOCKET CLIENTS INFLIGHT TOTAL REQUEST [FINAL]
 *       CLIENTS connections (a thread each), each with up to INFLIGHT requests sent ahead of
 *       their replies, TOTAL requests in all; then FINAL (a request whose reply says the work
 *       is done: "sync" for the raw server, a wait for bulkheadd) on one connection. Prints
 *       {"seconds":S,"acked":N,"errors":N,"p50_us":U,"p99_us":U,"final_seconds":S}: S from
 *       the first request to FINAL's reply; the latencies are request -> its reply line.
 *
 * The same client code runs against both servers: the ratio is the cost of everything
 * bulkheadd does besides SQLite (JSON, the ledger, dispatch, the workers) at the same load.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CLIENTS_MAX 1024
#define LINE_MAX_ 65536

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "bench-durable: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ---- the raw server ---- */

struct rclient {
	int fd;
	char in[LINE_MAX_];
	size_t in_len;
	char *out;
	size_t out_len, out_cap;
	unsigned pending_syncs; /* answered after the next commit */
};

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	stop = 1;
}

static void sq(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "bench-durable: %s: %s\n", sql, err ? err : "?");
		exit(1);
	}
}

static void out_append(struct rclient *c, const char *text, size_t len)
{
	if (c->out_len + len > c->out_cap) {
		c->out_cap = (c->out_len + len) * 2;
		c->out = realloc(c->out, c->out_cap);
		if (!c->out)
			die("realloc");
	}
	memcpy(c->out + c->out_len, text, len);
	c->out_len += len;
}

static int raw_server(const char *path, const char *dbfile)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct rclient *cl[CLIENTS_MAX] = { 0 };
	struct pollfd pfd[CLIENTS_MAX + 1];
	sqlite3_stmt *ins, *end;
	int64_t next_id = 1, ended_to = 1, acked_to = 1;
	uint64_t requests = 0, commits = 0;
	sqlite3 *db;
	int lfd;

	signal(SIGTERM, on_term);
	signal(SIGPIPE, SIG_IGN);
	if (sqlite3_open(dbfile, &db) != SQLITE_OK)
		die("sqlite3_open");
	sq(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA locking_mode=EXCLUSIVE;"
	       "CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, state INTEGER NOT NULL,"
	       " request TEXT)");
	if (sqlite3_prepare_v2(db, "INSERT INTO jobs (id, state, request) VALUES (?, 0, ?)", -1,
			       &ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE jobs SET state = 2 WHERE id = ?", -1, &end, NULL) !=
		    SQLITE_OK)
		die("prepare");
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 512) < 0)
		die("listen");
	printf("ready\n");
	fflush(stdout);
	while (!stop) {
		int n = 0, ready;
		bool began = false;

		pfd[n++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (int i = 0; i < CLIENTS_MAX; i++)
			if (cl[i])
				pfd[n++] = (struct pollfd){ .fd = cl[i]->fd,
							    .events = POLLIN |
								      (cl[i]->out_len ? POLLOUT : 0) };
		ready = poll(pfd, (nfds_t)n, 1000);
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready < 0)
			die("poll");
		if (pfd[0].revents & POLLIN) {
			int fd;

			while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
				for (int i = 0; i < CLIENTS_MAX; i++) {
					if (cl[i])
						continue;
					cl[i] = calloc(1, sizeof(*cl[i]));
					cl[i]->fd = fd;
					fd = -1;
					break;
				}
				if (fd >= 0)
					close(fd);
			}
		}
		/* Read every client; each complete line is a job, inserted in this pass's
		 * transaction; the jobs acknowledged last pass end in it too. */
		for (int i = 0; i < CLIENTS_MAX; i++) {
			struct rclient *c = cl[i];
			ssize_t r;

			if (!c)
				continue;
			r = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				close(c->fd);
				free(c->out);
				free(c);
				cl[i] = NULL;
				continue;
			}
			if (r > 0)
				c->in_len += (size_t)r;
			for (;;) {
				char *nl = memchr(c->in, '\n', c->in_len), reply[96];
				size_t len;

				if (!nl)
					break;
				len = (size_t)(nl - c->in);
				if (!began) {
					sq(db, "BEGIN IMMEDIATE");
					began = true;
				}
				if (len >= 7 && memmem(c->in, len, "\"sync\"", 6)) {
					c->pending_syncs++;
				} else {
					sqlite3_bind_int64(ins, 1, next_id);
					sqlite3_bind_text(ins, 2, c->in, (int)len, SQLITE_STATIC);
					if (sqlite3_step(ins) != SQLITE_DONE)
						die("insert");
					sqlite3_reset(ins);
					snprintf(reply, sizeof(reply),
						 "{\"ok\":true,\"ids\":[%" PRId64
						 "],\"jobs\":[\"raw#%" PRId64 "\"]}\n",
						 next_id, next_id);
					out_append(c, reply, strlen(reply));
					next_id++;
					requests++;
				}
				memmove(c->in, nl + 1, c->in_len - len - 1);
				c->in_len -= len + 1;
			}
		}
		if (!began && ended_to < acked_to) {
			sq(db, "BEGIN IMMEDIATE");
			began = true;
		}
		if (began) {
			for (; ended_to < acked_to; ended_to++) {
				sqlite3_bind_int64(end, 1, ended_to);
				if (sqlite3_step(end) != SQLITE_DONE)
					die("update");
				sqlite3_reset(end);
			}
			sq(db, "COMMIT");
			commits++;
			acked_to = next_id;
			for (int i = 0; i < CLIENTS_MAX; i++)
				for (; cl[i] && cl[i]->pending_syncs; cl[i]->pending_syncs--)
					out_append(cl[i], "{\"ok\":true}\n", 12);
		}
		/* Replies, once their rows are on disk. */
		for (int i = 0; i < CLIENTS_MAX; i++) {
			struct rclient *c = cl[i];
			ssize_t w;

			if (!c || !c->out_len)
				continue;
			w = send(c->fd, c->out, c->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w > 0) {
				memmove(c->out, c->out + w, c->out_len - (size_t)w);
				c->out_len -= (size_t)w;
			}
		}
	}
	printf("{\"requests\":%" PRIu64 ",\"commits\":%" PRIu64 "}\n", requests, commits);
	sqlite3_finalize(ins);
	sqlite3_finalize(end);
	sqlite3_close(db);
	return 0;
}

/* ---- the clients ---- */

struct worker {
	pthread_t t;
	const char *path, *request;
	unsigned inflight;
	uint64_t total;
	int64_t *lat; /* ns, per request */
	uint64_t acked, errors;
};

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	return fd;
}

static void send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("send");
		p += w;
		len -= (size_t)w;
	}
}

static void *client_main(void *arg)
{
	struct worker *w = arg;
	int fd = connect_to(w->path);
	size_t rlen = strlen(w->request), have = 0;
	int64_t *sent = calloc(w->total ? w->total : 1, sizeof(*sent));
	uint64_t n_sent = 0, n_got = 0;
	char *buf = malloc(LINE_MAX_ * 4), *line;

	if (!sent || !buf)
		die("malloc");
	while (n_got < w->total) {
		while (n_sent < w->total && n_sent - n_got < w->inflight) {
			sent[n_sent++] = now_ns();
			send_all(fd, w->request, rlen);
		}
		{
			ssize_t r = recv(fd, buf + have, LINE_MAX_ * 4 - have, 0);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				die("recv (the server closed the connection)");
			have += (size_t)r;
		}
		while ((line = memchr(buf, '\n', have))) {
			size_t len = (size_t)(line - buf) + 1;
			int64_t t = now_ns();

			if (n_got < w->total)
				w->lat[n_got] = t - sent[n_got];
			if (memmem(buf, len, "\"ok\":true", 9))
				w->acked++;
			else
				w->errors++;
			n_got++;
			memmove(buf, buf + len, have - len);
			have -= len;
		}
	}
	close(fd);
	free(sent);
	free(buf);
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int clients(int argc, char **argv)
{
	const char *path = argv[2], *request_text = argv[6], *final = argc > 7 ? argv[7] : NULL;
	unsigned n = (unsigned)atoi(argv[3]), inflight = (unsigned)atoi(argv[4]);
	uint64_t total = strtoull(argv[5], NULL, 10), acked = 0, errors = 0, k = 0;
	struct worker *w = calloc(n ? n : 1, sizeof(*w));
	int64_t *all = calloc(total ? total : 1, sizeof(*all)), t0, t1, t2;
	char *request = malloc(strlen(request_text) + 2);

	if (!n || n > CLIENTS_MAX || !inflight || !total || !w || !all || !request) {
		fprintf(stderr, "bench-durable clients: bad arguments\n");
		return 2;
	}
	sprintf(request, "%s\n", request_text);
	t0 = now_ns();
	for (unsigned i = 0; i < n; i++) {
		w[i] = (struct worker){ .path = path,
					.request = request,
					.inflight = inflight,
					.total = total / n + (i < total % n) };
		w[i].lat = calloc(w[i].total ? w[i].total : 1, sizeof(int64_t));
		if (!w[i].lat || pthread_create(&w[i].t, NULL, client_main, &w[i]) != 0)
			die("pthread_create");
	}
	for (unsigned i = 0; i < n; i++) {
		pthread_join(w[i].t, NULL);
		memcpy(all + k, w[i].lat, w[i].total * sizeof(int64_t));
		k += w[i].total;
		acked += w[i].acked;
		errors += w[i].errors;
		free(w[i].lat);
	}
	t1 = now_ns();
	if (final) {
		int fd = connect_to(path);
		char buf[65536];
		size_t have = 0;

		send_all(fd, final, strlen(final));
		send_all(fd, "\n", 1);
		while (!memchr(buf, '\n', have)) {
			ssize_t r = recv(fd, buf + have, sizeof(buf) - have, 0);

			if (r <= 0)
				die("recv (final)");
			have += (size_t)r;
			if (have == sizeof(buf))
				have = 0; /* a long reply: only its end matters */
		}
		close(fd);
	}
	t2 = now_ns();
	qsort(all, k, sizeof(*all), cmp_i64);
	printf("{\"seconds\":%.6f,\"acked\":%" PRIu64 ",\"errors\":%" PRIu64
	       ",\"p50_us\":%.1f,\"p99_us\":%.1f,\"final_seconds\":%.6f}\n",
	       (double)(t2 - t0) / 1e9, acked, errors, (double)all[k / 2] / 1e3,
	       (double)all[k * 99 / 100] / 1e3, (double)(t2 - t1) / 1e9);
	free(w);
	free(all);
	free(request);
	return errors ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "raw-server") == 0)
		return raw_server(argv[2], argv[3]);
	if ((argc == 7 || argc == 8) && strcmp(argv[1], "clients") == 0)
		return clients(argc, argv);
	fprintf(stderr, "usage: bench-durable raw-server SOCKET DBFILE\n"
			"       bench-durable clients SOCKET CLIENTS INFLIGHT TOTAL REQUEST [FINAL]\n");
	return 2;
}
