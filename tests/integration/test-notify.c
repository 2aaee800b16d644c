/* SPDX-License-Identifier: MIT */
/*
 * The master never blocks on the service manager (DESIGN §5, §11; issue 11 points 1 and 5):
 *   - a NOTIFY_SOCKET receiver that stops reading after READY=1 (its datagram queue full):
 *     the real bulkheadd goes on answering `status` within a second, replaces a killed
 *     worker, and stops on SIGTERM within its drain timeout; once the receiver reads again,
 *     STOPPING=1 arrives, after READY=1, in order;
 *   - a config path replaced by a FIFO (or a device) before SIGHUP: the reload is refused at
 *     once, the running config is kept, and the daemon still answers and stops;
 *   - the notifier itself (daemon/notify.c, linked in): held messages go out in order once
 *     the receiver drains, folded as documented, and a receiver that never reads costs a
 *     bounded moment when the notifier is freed.
 *
 * The receiver's queue is filled on purpose: after READY=1 the test stops reading
 * (struct daemon's notify_paused) and sends filler datagrams to its own socket until the
 * kernel says EAGAIN, so from then on every datagram of the daemon meets a full queue (the
 * state a stalled service manager leaves). With the old blocking sd_notify() the master
 * sleeps in the kernel at its next WATCHDOG=1 and the first `status` times out.
 *
 * Every wait is a poll() on a real event with a deadline (a reply line, a datagram, stderr,
 * the daemon's exit through its pidfd); nothing sleeps to synchronise. The harness is
 * daemonutil.c: each test is a child subreaper, so "no worker left" means none below it.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "common/units.h"
#include "daemon/notify.h"
#include "daemonutil.h"
#include "testutil.h"

#define PROMPT_MS 1000 /* a status reply while the service manager does not read */
#define CALL_MS 10000 /* an ordinary reply, generous for ASan */
#define REPLACE_MS 15000 /* a killed worker replaced */
#define KILL_ROUNDS 4 /* workers killed while the receiver does not read */
#define STALL_WINDOW_MS 1500 /* pings and a status line meet the full queue meanwhile */
#define DRAIN_S 20 /* the daemon's drain_timeout in the stall test */
#define FILLER "X_TEST_FILLER=1"
#define FILLERS_MAX 100000 /* far more than any datagram queue holds */
#define FLOCK "/usr/bin/flock"

/* ---- the receiver's queue ---- */

/*
 * Sends FILLER datagrams to the socket at sa until its queue is full (EAGAIN). Returns how
 * many went in.
 */
static size_t fill_queue(const struct sockaddr_un *sa, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	size_t n = 0;

	ck_assert_int_ge(fd, 0);
	for (;;) {
		ssize_t r = sendto(fd, FILLER, strlen(FILLER), MSG_DONTWAIT | MSG_NOSIGNAL,
				   (const struct sockaddr *)sa, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ck_assert_msg(errno == EAGAIN, "filling the queue: %s", strerror(errno));
			break;
		}
		ck_assert_uint_lt(++n, FILLERS_MAX);
	}
	close(fd);
	ck_assert_uint_gt(n, 0);
	return n;
}

static size_t fill_daemon_queue(struct daemon *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->notify_path);
	return fill_queue(&sa, sizeof(sa));
}

/* ---- the control socket ---- */

static json_object *jget(json_object *o, const char *key, json_type t)
{
	json_object *v;

	ck_assert_msg(o && json_object_object_get_ex(o, key, &v), "no \"%s\" in %.600s", key,
		      o ? json_object_to_json_string(o) : "(null)");
	ck_assert_msg(json_object_is_type(v, t), "\"%s\" is not a %s in %.600s", key,
		      json_type_to_name(t), json_object_to_json_string(o));
	return v;
}

static int64_t jint(json_object *o, const char *key)
{
	return json_object_get_int64(jget(o, key, json_type_int));
}

/*
 * One request on a new connection; the reply must come within timeout_ms (the daemon's
 * stderr is taken in meanwhile). Returns the parsed reply, which must be ok.
 */
static json_object *call_within(struct daemon *d, const char *req, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t deadline = tu_now_ms() + timeout_ms;
	char buf[1 << 16];
	size_t len = 0;
	json_object *o, *ok;
	int fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->sock_path);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect %s: %s; %s",
		      d->sock_path, strerror(errno), dmn_describe(d));
	snprintf(buf, sizeof(buf), "%s\n", req);
	ck_assert_int_eq(send(fd, buf, strlen(buf), MSG_NOSIGNAL), (ssize_t)strlen(buf));
	while (!memchr(buf, '\n', len)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		ck_assert_msg(tu_ms_left(deadline) > 0, "no reply to %s within %dms; %s", req,
			      timeout_ms, dmn_describe(d));
		dmn_poll(d, &p, 1, tu_ms_left(deadline));
		if (!p.revents)
			continue;
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		ck_assert_msg(n > 0, "connection closed before the reply to %s; %s", req,
			      dmn_describe(d));
		len += (size_t)n;
		ck_assert_uint_lt(len, sizeof(buf) - 1);
	}
	close(fd);
	buf[len] = '\0';
	o = json_tokener_parse(buf);
	ck_assert_msg(o && json_object_object_get_ex(o, "ok", &ok) && json_object_get_boolean(ok),
		      "reply to %s: %.600s", req, buf);
	return o;
}

static json_object *prompt_status(struct daemon *d)
{
	return call_within(d, "{\"command\":\"status\"}", PROMPT_MS);
}

/* The entry of pool `name` in a status reply. */
static json_object *status_pool(json_object *status, const char *name)
{
	json_object *pools = jget(status, "pools", json_type_array);

	for (size_t i = 0; i < json_object_array_length(pools); i++) {
		json_object *p = json_object_array_get_idx(pools, i);

		if (strcmp(json_object_get_string(jget(p, "name", json_type_string)), name) == 0)
			return p;
	}
	ck_abort_msg("no pool %s in %.600s", name, json_object_to_json_string(status));
	return NULL;
}

/* Every worker of pool `name` is up, and none of them is `gone`; each status is prompt. */
static void wait_pool_up_without(struct daemon *d, const char *name, pid_t gone)
{
	int64_t deadline = tu_now_ms() + REPLACE_MS;

	for (;;) {
		json_object *st = prompt_status(d), *p = status_pool(st, name), *ws;
		bool done = jint(p, "workers_up") == jint(p, "workers_wanted");

		ws = jget(p, "workers", json_type_array);
		for (size_t i = 0; i < json_object_array_length(ws); i++) {
			pid_t pid = (pid_t)jint(json_object_array_get_idx(ws, i), "pid");

			done = done && pid > 0 && pid != gone;
		}
		json_object_put(st);
		if (done)
			return;
		ck_assert_msg(tu_ms_left(deadline) > 0, "pool %s never up again without %d; %s",
			      name, (int)gone, dmn_describe(d));
		dmn_pump(d, 20); /* between two looks at a state, taking in the daemon's output */
	}
}

/* Waits until status says `n` jobs are running. */
static void wait_running(struct daemon *d, int64_t n)
{
	int64_t deadline = tu_now_ms() + DMN_START_MS;

	for (;;) {
		json_object *st = call_within(d, "{\"command\":\"status\"}", CALL_MS);
		int64_t running = jint(jget(st, "jobs", json_type_object), "running");

		json_object_put(st);
		if (running == n)
			return;
		ck_assert_msg(tu_ms_left(deadline) > 0, "never %lld running; %s", (long long)n,
			      dmn_describe(d));
		dmn_pump(d, 20);
	}
}

/* The workers of d do not see the service manager's variables: only the master talks to it. */
static void assert_workers_env_clean(struct daemon *d)
{
	pid_t pids[DMN_WORKERS_MAX];
	int n = tu_find_workers(d->pid, pids, DMN_WORKERS_MAX);

	ck_assert_int_gt(n, 0);
	for (int i = 0; i < n; i++) {
		char path[64], buf[1 << 16];
		ssize_t len;
		int fd;

		snprintf(path, sizeof(path), "/proc/%d/environ", (int)pids[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* gone meanwhile */
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		for (ssize_t k = 0; k < len; k += (ssize_t)strlen(buf + k) + 1)
			ck_assert_msg(strncmp(buf + k, "NOTIFY_SOCKET=", 14) != 0 &&
					      strncmp(buf + k, "WATCHDOG_", 9) != 0,
				      "worker %d has %s", (int)pids[i], buf + k);
	}
}

/* ---- a receiver that stops reading ---- */

START_TEST(test_receiver_stops_reading)
{
	const char *env[] = { "WATCHDOG_USEC=200000", NULL }; /* WATCHDOG=1 every 100 ms */
	int rcvbuf = 4096, lock_fd;
	char conf[1024], lock[300];
	size_t ready, stopping, fillers, between = 0;
	int64_t signalled;
	struct daemon d;
	json_object *st;

	if (access(FLOCK, X_OK) != 0) {
		fprintf(stderr, "test_receiver_stops_reading: no %s, skipped\n", FLOCK);
		return;
	}
	dmn_init(&d);
	ck_assert_int_eq(setsockopt(d.notify_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)),
			 0);
	/*
	 * The job in pool "hold" runs until the test lets go of the lock: it keeps the drain. A
	 * stop sends SIGTERM to a job's command at once (its worker's STOP), so the command
	 * ignores it: else the stop ended in a few ms, and a loaded machine answered the status
	 * below after the daemon had exited (this test failed that way, also before issue 15).
	 */
	snprintf(lock, sizeof(lock), "%s/hold.lock", d.dir);
	lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(lock_fd, 0);
	ck_assert_int_eq(flock(lock_fd, LOCK_EX), 0);
	snprintf(conf, sizeof(conf),
		 "[supervisor]\ndrain_timeout = %ds\n"
		 "[pool main]\nworkers = 2\nthreads = 1\n"
		 "[pool hold]\nworkers = 1\nthreads = 1\n"
		 "[job hold]\npool = hold\nrun = exec:/bin/sh -c 'trap \"\" TERM; exec " FLOCK
		 " %s /bin/true'\n"
		 "timeout = infinity\n",
		 DRAIN_S, lock);
	dmn_write_config(&d, conf);
	dmn_start(&d, env);
	ready = dmn_expect_notice(&d, 0, "READY=1", DMN_START_MS);

	/* The service manager stops reading; its queue is full from now on. */
	d.notify_paused = true;
	fillers = fill_daemon_queue(&d);
	wait_running(&d, 1);
	assert_workers_env_clean(&d);
	/*
	 * A window of WATCHDOG=1 pings and a STATUS= (the job started) meeting the full queue,
	 * with `status` asked again and again: each answer prompt.
	 */
	for (int64_t end = tu_now_ms() + STALL_WINDOW_MS; tu_ms_left(end) > 0;) {
		json_object_put(prompt_status(&d));
		dmn_pump(&d, 50);
	}
	/* The daemon did meet the full queue (else this test tests nothing). */
	dmn_expect_stderr(&d, "does not read its notifications", CALL_MS);

	/* Status changes galore: workers killed and replaced, each status prompt. */
	for (int round = 0; round < KILL_ROUNDS; round++) {
		json_object *o = call_within(
			&d, "{\"command\":\"inject\",\"target\":\"main\",\"fault\":\"kill\"}",
			PROMPT_MS);
		pid_t killed = (pid_t)jint(o, "pid");

		json_object_put(o);
		ck_assert_int_gt(killed, 0);
		wait_pool_up_without(&d, "main", killed);
		ck_assert(!tu_process_alive(killed));
	}

	/* SIGTERM: it drains (the hold job runs on) and still answers at once. */
	signalled = tu_now_ms();
	dmn_signal(&d, SIGTERM);
	dmn_expect_stderr(&d, "Terminated: stopping", CALL_MS);
	st = prompt_status(&d);
	ck_assert(json_object_get_boolean(jget(st, "stopping", json_type_boolean)));
	json_object_put(st);
	ck_assert_msg(!d.exited, "%s", dmn_describe(&d));

	/* The manager reads again: what was held arrives, in order. */
	d.notify_paused = false;
	stopping = dmn_expect_notice(&d, ready + 1, "STOPPING=1", CALL_MS);
	for (size_t i = ready + 1; i < stopping; i++)
		between += strcmp(d.notices[i].text, FILLER) == 0;
	ck_assert_msg(between == fillers, "%zu fillers before STOPPING=1, %zu sent; %s", between,
		      fillers, dmn_describe(&d));
	ck_assert_uint_eq(dmn_count_notices(&d, 0, "READY=1"), 1);

	/* The job ends; the daemon exits 0 within its drain timeout. */
	close(lock_fd);
	dmn_expect_exit(&d, 0, (DRAIN_S + 10) * 1000);
	ck_assert_msg(d.exited_at - signalled < DRAIN_S * 1000, "exit %lldms after SIGTERM; %s",
		      (long long)(d.exited_at - signalled), dmn_describe(&d));
	ck_assert_uint_eq(dmn_count_notices(&d, 0, "STOPPING=1"), 1);
	ck_assert_msg(strstr(d.err, "reads again"), "%s", dmn_describe(&d));
	ck_assert_int_eq(tu_count_workers_of(d.pid), 0);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* ---- a config that cannot be read without waiting ---- */

/* SIGHUP with the config path replaced: the reload fails at once and says why. */
static void reload_refused(struct daemon *d, const char *why)
{
	size_t from = d->n_notices, reloading;
	json_object *st;
	char want[600];

	dmn_signal(d, SIGHUP);
	reloading = dmn_expect_notice(d, from, "RELOADING=1", CALL_MS);
	dmn_expect_notice(d, reloading + 1, "READY=1", CALL_MS);
	snprintf(want, sizeof(want), "%s: %s", d->conf_path, why);
	dmn_expect_stderr(d, want, CALL_MS);
	st = prompt_status(d);
	ck_assert_int_eq(jint(status_pool(st, "main"), "workers_up"), 2);
	json_object_put(st);
}

START_TEST(test_reload_from_fifo_or_device)
{
	struct daemon d;
	pid_t before[DMN_WORKERS_MAX], after[DMN_WORKERS_MAX];

	dmn_init(&d);
	dmn_write_config(&d, "[pool main]\nworkers = 2\nthreads = 1\n");
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	ck_assert_int_eq(tu_find_workers(d.pid, before, DMN_WORKERS_MAX), 2);

	/* A FIFO nobody writes to: without O_NONBLOCK, open() would wait for a writer. */
	ck_assert_int_eq(unlink(d.conf_path), 0);
	ck_assert_int_eq(mkfifo(d.conf_path, 0600), 0);
	reload_refused(&d, "not a regular file (a FIFO)");
	dmn_expect_stderr(&d, "reload failed: still running the config loaded before", CALL_MS);

	/* A device that never ends, through a symlink. */
	ck_assert_int_eq(unlink(d.conf_path), 0);
	ck_assert_int_eq(symlink("/dev/zero", d.conf_path), 0);
	reload_refused(&d, "not a regular file (a character device)");

	ck_assert_int_eq(tu_find_workers(d.pid, after, DMN_WORKERS_MAX), 2);
	ck_assert_int_eq(memcmp(before, after, 2 * sizeof(pid_t)), 0);
	dmn_stop(&d);
	ck_assert_int_eq(tu_count_workers_of(d.pid), 0);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* ---- the notifier on its own ---- */

struct fake_master {
	char status[64];
	bool gone; /* freed: master_free() frees the pools before the notifier */
};

static void fake_status(void *userdata, char *buf, size_t size)
{
	struct fake_master *fm = userdata;

	ck_assert_msg(!fm->gone, "the status asked for after the master was freed");
	snprintf(buf, size, "%s", fm->status);
}

/* A datagram socket bound to a fresh abstract name; NOTIFY_SOCKET names it ("@..."). */
static int bind_receiver(struct sockaddr_un *sa, socklen_t *ret_len)
{
	static unsigned seq;
	char name[80];
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	size_t len;

	ck_assert_int_ge(fd, 0);
	snprintf(name, sizeof(name), "@bulkhead-test-notify-%d-%u-%lld", (int)getpid(), seq++,
		 (long long)tu_now_ms());
	len = strlen(name);
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	memcpy(sa->sun_path + 1, name + 1, len - 1);
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)sa, *ret_len), 0);
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", name, 1), 0);
	return fd;
}

/* Reads every datagram there is now; returns how many were fillers. Others go to texts. */
static size_t take(int fd, char **texts, size_t *n, size_t max)
{
	size_t fillers = 0;
	char buf[1024];

	for (;;) {
		ssize_t r = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ck_assert_int_eq(errno, EAGAIN);
			return fillers;
		}
		buf[r] = '\0';
		if (strcmp(buf, FILLER) == 0) {
			fillers++;
			continue;
		}
		ck_assert_uint_lt(*n, max);
		texts[(*n)++] = strdup(buf);
	}
}

/* Turns the loop for window_ms (a window, not a synchronisation); returns its wake-ups. */
static unsigned turn(sd_event *e, int window_ms)
{
	int64_t end = tu_now_ms() + window_ms;
	unsigned wakeups = 0;

	while (tu_ms_left(end) > 0) {
		ck_assert_int_ge(sd_event_run(e, (uint64_t)tu_ms_left(end) * 1000), 0);
		wakeups++;
	}
	return wakeups;
}

/*
 * Everything said while the receiver's queue is full is held, folded, and delivered in order
 * once it reads again: one WATCHDOG=1 for many pings, READY=1 with the status of when it
 * goes out, one RELOADING=1 ... READY=1 for two reloads, one STOPPING=1, the newest
 * EXTEND_TIMEOUT_USEC=.
 */
START_TEST(test_held_until_the_receiver_drains)
{
	struct fake_master fm = { .status = "starting" };
	struct sockaddr_un sa;
	socklen_t sa_len;
	struct notifier *n = NULL;
	char *texts[256], pid[32];
	size_t n_texts = 0, fillers;
	usec_t second_reload;
	unsigned wakeups;
	int64_t t0, deadline;
	sd_event *e = NULL;
	int rx = bind_receiver(&sa, &sa_len);

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	ck_assert_int_eq(setenv("WATCHDOG_USEC", "40000", 1), 0); /* a ping every 20 ms */
	ck_assert_int_eq(setenv("WATCHDOG_PID", pid, 1), 0);
	fillers = fill_queue(&sa, sa_len);
	ck_assert_int_ge(sd_event_new(&e), 0);
	ck_assert_int_eq(notifier_new(e, fake_status, &fm, &n), 0);

	t0 = tu_now_ms();
	ck_assert_int_eq(notifier_start_watchdog(n), 0);
	notify_ready(n);
	snprintf(fm.status, sizeof(fm.status), "one");
	notify_status_flush(n);
	snprintf(fm.status, sizeof(fm.status), "two");
	notify_status_flush(n);
	/* Pings and retries meet the full queue: held, not a busy loop. */
	wakeups = turn(e, 300);
	ck_assert_msg(wakeups < 100, "%u wake-ups in 300 ms", wakeups);
	notify_reloading(n);
	notify_ready(n);
	second_reload = now_usec();
	notify_reloading(n);
	snprintf(fm.status, sizeof(fm.status), "reloaded");
	notify_ready(n);
	notify_stopping(n);
	notify_stopping(n);
	notify_extend_timeout(n, 5 * USEC_PER_SEC);
	notify_extend_timeout(n, 7 * USEC_PER_SEC);
	ck_assert_int_lt(tu_now_ms() - t0, 5000); /* nothing waited for the receiver */

	/* The receiver reads again: first what filled its queue, then what was held. */
	ck_assert_uint_eq(take(rx, texts, &n_texts, 256), fillers);
	ck_assert_uint_eq(n_texts, 0);
	deadline = tu_now_ms() + 10000;
	while (n_texts < 6) {
		ck_assert_msg(tu_ms_left(deadline) > 0, "%zu datagrams after the drain", n_texts);
		ck_assert_int_ge(sd_event_run(e, 50 * 1000), 0);
		take(rx, texts, &n_texts, 256);
	}
	ck_assert_str_eq(texts[0], "WATCHDOG=1");
	ck_assert_str_eq(texts[1], "READY=1\nSTATUS=reloaded");
	ck_assert_msg(strncmp(texts[2], "RELOADING=1\nMONOTONIC_USEC=", 27) == 0, "%s", texts[2]);
	ck_assert_uint_ge(strtoull(texts[2] + 27, NULL, 10), second_reload);
	ck_assert_str_eq(texts[3], "READY=1\nSTATUS=reloaded");
	ck_assert_str_eq(texts[4], "STOPPING=1");
	ck_assert_str_eq(texts[5], "EXTEND_TIMEOUT_USEC=7000000");
	/* After them, only new pings: the status owed was carried by READY=1. */
	turn(e, 100);
	take(rx, texts, &n_texts, 256);
	for (size_t i = 6; i < n_texts; i++)
		ck_assert_msg(strcmp(texts[i], "WATCHDOG=1") == 0,
			      "more than pings after the held ones: %s", texts[i]);

	/* A new status goes out at once now. */
	snprintf(fm.status, sizeof(fm.status), "stopping");
	notify_status_flush(n);
	take(rx, texts, &n_texts, 256);
	ck_assert_str_eq(texts[n_texts - 1], "STATUS=stopping");

	notifier_free(n);
	sd_event_unref(e);
	for (size_t i = 0; i < n_texts; i++)
		free(texts[i]);
	close(rx);
}
END_TEST

/*
 * A receiver that never reads again: every call returns, and freeing takes a bounded time
 * without asking the (already freed) master for its status.
 */
START_TEST(test_receiver_never_reads)
{
	struct fake_master fm = { .status = "up" };
	struct sockaddr_un sa;
	socklen_t sa_len;
	struct notifier *n = NULL;
	char *texts[16];
	size_t n_texts = 0, fillers;
	int64_t t0;
	sd_event *e = NULL;
	int rx = bind_receiver(&sa, &sa_len);

	fillers = fill_queue(&sa, sa_len);
	ck_assert_int_ge(sd_event_new(&e), 0);
	ck_assert_int_eq(notifier_new(e, fake_status, &fm, &n), 0);
	t0 = tu_now_ms();
	notify_ready(n);
	for (int i = 0; i < 50; i++) {
		snprintf(fm.status, sizeof(fm.status), "status %d", i);
		notify_status_flush(n);
		notify_status_dirty(n);
	}
	notify_stopping(n);
	turn(e, 200);
	fm.gone = true;
	notifier_free(n);
	ck_assert_int_lt(tu_now_ms() - t0, 3000);
	sd_event_unref(e);
	/* Nothing got in: the queue held only the fillers all along. */
	ck_assert_uint_eq(take(rx, texts, &n_texts, 16), fillers);
	ck_assert_uint_eq(n_texts, 0);
	close(rx);
}
END_TEST

static Suite *notify_suite(void)
{
	Suite *s = suite_create("notify");
	TCase *tc;

	tc = tcase_create("daemon");
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_receiver_stops_reading);
	tcase_add_test(tc, test_reload_from_fifo_or_device);
	suite_add_tcase(s, tc);

	tc = tcase_create("notifier");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_held_until_the_receiver_drains);
	tcase_add_test(tc, test_receiver_never_reads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dmn_run(notify_suite(), "test-notify");
}
