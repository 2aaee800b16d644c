/* SPDX-License-Identifier: MIT */
/*
 * Spool directories end to end (`spool = DIR`, daemon/spool.c): the real bulkheadd (and once
 * `bulkhead run`) on a private socket in a temp dir, real files, real inotify, real signals.
 *
 * Waiting: the test watches the spool and its done/, failed/ and quarantine/ with inotify of
 * its own and polls that fd together with the daemon's (dmn_poll), re-checking the files it
 * waits for after every wake-up, with a deadline. Nothing sleeps to synchronise. Where a test
 * must show that something was ignored (a dot-file, a directory), it drops the ignored thing
 * first and a regular file last: inotify events come in order, so once the last file has been
 * handled, so were the others.
 *
 * The spool logic does not depend on the kind of job, so most tests use builtins (noop, fail,
 * segv, spin, hang) with one spool per outcome; test_exec_inputs runs a shell script over its
 * {input} and checks that each file was run exactly once, by its full path.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemonutil.h"
#include "testutil.h"

#define WAIT_MS 30000 /* a file to reach its place, generous for ASan */
#define FLOOD_WAIT_MS 120000 /* the overflow test's thousands of files */
#define RUN_TIMEOUT_MS 60000 /* `bulkhead run` to end */
#define FLOOD_MAX 100000 /* files the overflow test is willing to make */
#define DIR_MAX 512 /* a temp dir path, with room to spare below PATH_MAX */

static const char *const subs[] = { "done", "failed", "quarantine" };

/* ---- files ---- */

static void path_of(char *buf, size_t size, const char *dir, const char *sub, const char *name)
{
	if (sub)
		snprintf(buf, size, "%s/%s/%s", dir, sub, name);
	else
		snprintf(buf, size, "%s/%s", dir, name);
}

/* DIR = d->dir/name, made now (empty). */
static void make_spool(struct daemon *d, const char *name, char *ret, size_t size)
{
	ck_assert_int_lt(snprintf(ret, size, "%s/%s", d->dir, name), (int)size);
	ck_assert_msg(mkdir(ret, 0755) == 0, "mkdir %s: %s", ret, strerror(errno));
}

/* Writes dir/name in place (open, write, close: one IN_CLOSE_WRITE). */
static void put_file(const char *dir, const char *name)
{
	char path[PATH_MAX];

	path_of(path, sizeof(path), dir, NULL, name);
	ck_assert_msg(tu_write_file(path, name) == 0, "%s: %s", path, strerror(errno));
}

/* Writes dir/.tmp-name, then renames it to dir/name (one IN_MOVED_TO). */
static void drop_content(const char *dir, const char *name, const char *content)
{
	char tmp[PATH_MAX], path[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", dir, name);
	path_of(path, sizeof(path), dir, NULL, name);
	ck_assert_int_eq(tu_write_file(tmp, content), 0);
	ck_assert_msg(rename(tmp, path) == 0, "rename %s: %s", path, strerror(errno));
}

static void drop_file(const char *dir, const char *name)
{
	drop_content(dir, name, name);
}

static bool is_file(const char *dir, const char *sub, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	path_of(path, sizeof(path), dir, sub, name);
	return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	path_of(path, sizeof(path), dir, NULL, name);
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static long count_in(const char *dir, const char *sub)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	return tu_count_files(path);
}

/* Where dir's file `name` is now: "" (still in DIR), "done", ..., or NULL (nowhere). */
static const char *where(const char *dir, const char *name)
{
	if (is_file(dir, NULL, name))
		return "";
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (is_file(dir, subs[i], name))
			return subs[i];
	return NULL;
}

/* The file is in exactly one place, and that place is `sub` ("" = DIR itself). */
static void assert_only_in(const char *dir, const char *name, const char *sub)
{
	unsigned places = is_file(dir, NULL, name);

	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		places += is_file(dir, subs[i], name);
	ck_assert_msg(places == 1, "%s/%s is in %u places", dir, name, places);
	ck_assert_msg(strcmp(where(dir, name), sub) == 0, "%s/%s is in '%s', not in '%s'", dir,
		      name, where(dir, name), sub);
}

/* ---- waiting on inotify, with a deadline ---- */

struct watch {
	int fd;
};

/* Watches dir and its subdirectories (made now if missing) for files coming and going. */
static void watch_add(struct watch *w, const char *dir)
{
	char path[PATH_MAX];

	if (w->fd <= 0) {
		w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		ck_assert_int_ge(w->fd, 0);
	}
	ck_assert_int_ge(inotify_add_watch(w->fd, dir,
					   IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
						   IN_CREATE | IN_DELETE),
			 0);
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
		if (mkdir(path, 0755) < 0)
			ck_assert_int_eq(errno, EEXIST);
		ck_assert_int_ge(
			inotify_add_watch(w->fd, path, IN_MOVED_TO | IN_CREATE | IN_DELETE), 0);
	}
}

static void watch_close(struct watch *w)
{
	if (w->fd > 0)
		close(w->fd);
	w->fd = -1;
}

/* Waits for one change (or the daemon) up to timeout_ms; takes in the events. */
static void watch_wait(struct watch *w, struct daemon *d, int timeout_ms)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct pollfd pfd = { .fd = w->fd, .events = POLLIN };

	if (d)
		dmn_poll(d, &pfd, 1, timeout_ms);
	else
		poll(&pfd, 1, timeout_ms);
	while (read(w->fd, buf, sizeof(buf)) > 0)
		;
}

typedef bool (*pred_fn)(const void *arg);

/* Waits until pred(arg) holds; fails the test with `what` after timeout_ms. */
static void wait_until(struct watch *w, struct daemon *d, pred_fn pred, const void *arg,
		       int timeout_ms, const char *what)
{
	int64_t deadline = tu_now_ms() + timeout_ms;

	while (!pred(arg)) {
		int left = tu_ms_left(deadline);

		if (left <= 0 || (d && d->exited))
			ck_abort_msg("timed out waiting for %s; %s", what,
				     d ? dmn_describe(d) : "");
		/* The deadline caps each wait; a change wakes it at once. */
		watch_wait(w, d, left < 1000 ? left : 1000);
	}
}

struct placed {
	const char *dir;
	const char *sub; /* "" = DIR itself */
	const char *const *names;
};

static bool all_placed(const void *arg)
{
	const struct placed *p = arg;

	for (size_t i = 0; p->names[i]; i++) {
		const char *at = where(p->dir, p->names[i]);

		if (!at || strcmp(at, p->sub) != 0)
			return false;
	}
	return true;
}

static void wait_placed(struct watch *w, struct daemon *d, const char *dir, const char *sub,
			const char *const *names)
{
	struct placed p = { dir, sub, names };
	char what[PATH_MAX + 64];

	snprintf(what, sizeof(what), "%s to be in %s/%s (first: %s)", names[1] ? "files" : "a file",
		 dir, sub, names[0]);
	wait_until(w, d, all_placed, &p, WAIT_MS, what);
}

struct content {
	const char *dir;
	const char *sub;
	const char *name;
	const char *text;
};

/* dir/sub/name holds text, and dir/name is gone. */
static bool has_content(const void *arg)
{
	const struct content *c = arg;
	char path[PATH_MAX];
	char *text;
	bool same;

	if (is_file(c->dir, NULL, c->name))
		return false;
	path_of(path, sizeof(path), c->dir, c->sub, c->name);
	text = tu_read_file(path);
	same = text && strcmp(text, c->text) == 0;
	free(text);
	return same;
}

struct count {
	const char *dir;
	long n;
};

static bool count_reached(const void *arg)
{
	const struct count *c = arg;

	return tu_count_files(c->dir) >= c->n;
}

/* ---- daemon set-up ---- */

static void start(struct daemon *d, const char *fmt, ...)
{
	char conf[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(conf, sizeof(conf), fmt, ap);
	va_end(ap);
	dmn_write_config(d, conf);
	dmn_start(d, NULL);
	dmn_wait_ready(d);
}

/* Neither "cannot move" nor "replaced" was logged: every file moved once, as taken. */
static void assert_clean_log(struct daemon *d)
{
	dmn_pump(d, 0);
	ck_assert_msg(!d->err || !strstr(d->err, "cannot move"), "%s", dmn_describe(d));
	ck_assert_msg(!d->err || !strstr(d->err, "replaced"), "%s", dmn_describe(d));
}

/* ---- tests ---- */

START_TEST(test_files_present_at_start)
{
	static const char *const names[] = { "a", "b", "c.txt", NULL };
	struct daemon d;
	struct watch w = { 0 };
	char spool[DIR_MAX], p[PATH_MAX + 16];
	struct stat st;

	dmn_init(&d);
	make_spool(&d, "in", spool, sizeof(spool));
	for (size_t i = 0; names[i]; i++)
		put_file(spool, names[i]);
	put_file(spool, ".hidden");
	snprintf(p, sizeof(p), "%s/sub", spool);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	put_file(p, "inner");
	start(&d,
	      "[pool main]\nworkers = 1\nthreads = 2\n"
	      "[job eat]\nrun = builtin:noop\nspool = %s\n",
	      spool);
	/* done/, failed/ and quarantine/ were made before READY, 0755. */
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", spool, subs[i]);
		ck_assert_msg(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "%s", p);
		ck_assert_int_eq(st.st_mode & 07777, 0755);
	}
	watch_add(&w, spool);
	wait_placed(&w, &d, spool, "done", names);
	for (size_t i = 0; names[i]; i++)
		assert_only_in(spool, names[i], "done");
	/* Ignored: the dot-file, the subdirectory and what is in it. */
	assert_only_in(spool, ".hidden", "");
	ck_assert(is_file(spool, "sub", "inner"));
	ck_assert_int_eq(count_in(spool, "done"), 3);
	ck_assert_int_eq(count_in(spool, "failed"), 0);
	ck_assert_int_eq(count_in(spool, "quarantine"), 0);
	ck_assert_int_eq(tu_count_files(spool), 1); /* .hidden */
	dmn_expect_stderr(&d, "spool", 0);
	ck_assert_msg(strstr(d.err, "3 files taken"), "%s", dmn_describe(&d));
	assert_clean_log(&d);
	dmn_stop(&d);
	dmn_assert_aftermath();
	watch_close(&w);
	dmn_free(&d);
}
END_TEST

START_TEST(test_files_dropped_while_running)
{
	static const char *const first[] = { "written", "renamed", "zz-last", NULL };
	struct daemon d;
	struct watch w = { 0 };
	char spool[DIR_MAX], p[PATH_MAX + 16], q[PATH_MAX + 16], name[32];
	struct count c;

	dmn_init(&d);
	make_spool(&d, "in", spool, sizeof(spool));
	watch_add(&w, spool);
	start(&d,
	      "[pool main]\nworkers = 2\nthreads = 2\n"
	      "[job eat]\nrun = builtin:noop\nspool = %s\n",
	      spool);
	/* The ignored ones first, then files, the sentinel last. */
	put_file(spool, ".dot");
	snprintf(p, sizeof(p), "%s/newdir", spool);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	snprintf(q, sizeof(q), "%s/elsewhere", d.dir);
	ck_assert_int_eq(mkdir(q, 0755), 0);
	snprintf(p, sizeof(p), "%s/moveddir", spool);
	ck_assert_int_eq(rename(q, p), 0);
	put_file(spool, "written");
	drop_file(spool, "renamed");
	put_file(spool, "zz-last");
	wait_placed(&w, &d, spool, "done", first);
	assert_only_in(spool, ".dot", "");
	ck_assert(!is_file(spool, NULL, ".tmp-renamed"));
	ck_assert(is_dir(spool, "newdir") && is_dir(spool, "moveddir"));
	ck_assert_int_eq(count_in(spool, "done"), 3);

	/* A burst, each written aside and renamed in: every one is taken exactly once. */
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "burst-%03d", i);
		drop_file(spool, name);
	}
	snprintf(p, sizeof(p), "%s/done", spool);
	c = (struct count){ p, 303 };
	wait_until(&w, &d, count_reached, &c, WAIT_MS, "303 files in done/");
	ck_assert_int_eq(tu_count_files(spool), 1); /* .dot */
	ck_assert_int_eq(count_in(spool, "done"), 303);

	/*
	 * The same name again, once its first file has left: a new job. Its file goes to
	 * done/written.JOBID; the first one keeps done/written (nothing processed is lost).
	 */
	drop_content(spool, "written", "second");
	c = (struct count){ p, 304 };
	wait_until(&w, &d, count_reached, &c, WAIT_MS, "the second 'written' in done/");
	ck_assert(has_content(&(struct content){ spool, "done", "written", "written" }));
	ck_assert_int_eq(tu_count_files(spool), 1);
	assert_clean_log(&d);
	dmn_stop(&d);
	dmn_assert_aftermath();
	watch_close(&w);
	dmn_free(&d);
}
END_TEST

START_TEST(test_outcomes_move_to_their_place)
{
	struct daemon d;
	struct watch w = { 0 };
	char ok[DIR_MAX], bad[DIR_MAX], crash[DIR_MAX], slow[DIR_MAX];

	dmn_init(&d);
	make_spool(&d, "ok", ok, sizeof(ok));
	make_spool(&d, "bad", bad, sizeof(bad));
	make_spool(&d, "crash", crash, sizeof(crash));
	make_spool(&d, "slow", slow, sizeof(slow));
	put_file(ok, "in-ok");
	put_file(bad, "in-bad");
	put_file(crash, "in-crash");
	put_file(slow, "in-slow");
	watch_add(&w, ok);
	watch_add(&w, bad);
	watch_add(&w, crash);
	watch_add(&w, slow);
	start(&d,
	      "[pool main]\nworkers = 2\nthreads = 2\n"
	      "[job ok]\nrun = builtin:noop\nspool = %s\n"
	      "[job bad]\nrun = builtin:fail\nargs = probability=1\nspool = %s\n"
	      "[job crash]\nrun = builtin:segv\nargs = probability=1\nmax_attempts = 2\nspool = %s\n"
	      "[job slow]\nrun = builtin:hang\nargs = ms=600000\ntimeout = 1s\nmax_attempts = 1\n"
	      "spool = %s\n",
	      ok, bad, crash, slow);
	wait_placed(&w, &d, ok, "done", (const char *const[]){ "in-ok", NULL });
	wait_placed(&w, &d, bad, "failed", (const char *const[]){ "in-bad", NULL });
	wait_placed(&w, &d, crash, "quarantine", (const char *const[]){ "in-crash", NULL });
	wait_placed(&w, &d, slow, "quarantine", (const char *const[]){ "in-slow", NULL });
	assert_only_in(ok, "in-ok", "done");
	assert_only_in(bad, "in-bad", "failed");
	assert_only_in(crash, "in-crash", "quarantine");
	assert_only_in(slow, "in-slow", "quarantine");

	/* A new file after a crash is still taken: the spool lives on with its pool. */
	put_file(crash, "in-crash-2");
	wait_placed(&w, &d, crash, "quarantine", (const char *const[]){ "in-crash-2", NULL });
	assert_clean_log(&d);
	dmn_stop(&d);
	dmn_assert_aftermath();
	watch_close(&w);
	dmn_free(&d);
}
END_TEST

/* Does a thread of process pid have a name starting with prefix (job threads: "POOL/N:T")? */
static bool has_thread_named(pid_t pid, const char *prefix)
{
	char path[64];
	struct dirent *e;
	bool found = false;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return false;
	while (!found && (e = readdir(d))) {
		char p[320], *comm;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/%d/task/%s/comm", (int)pid, e->d_name);
		comm = tu_read_file(p);
		found = comm && strncmp(comm, prefix, strlen(prefix)) == 0;
		free(comm);
	}
	closedir(d);
	return found;
}

/* Waits until a job thread of pool's worker burns CPU: a spin job of that pool really runs. */
static void wait_job_running(struct daemon *d, const char *pool)
{
	int64_t deadline = tu_now_ms() + WAIT_MS;
	char prefix[64];
	pid_t worker = 0;

	snprintf(prefix, sizeof(prefix), "%s/", pool);
	for (int i = 0; i < d->n_workers && !worker; i++)
		if (has_thread_named(d->workers[i], prefix))
			worker = d->workers[i];
	ck_assert_msg(worker > 0, "no worker of pool %s; %s", pool, dmn_describe(d));
	while (tu_job_thread_ticks(worker) == 0) {
		ck_assert_msg(tu_ms_left(deadline) > 0 && !d->exited, "no job running; %s",
			      dmn_describe(d));
		dmn_pump(d, 5); /* re-reads /proc: a state, polled with a deadline */
	}
}

START_TEST(test_sigterm_midway_leaves_unfinished_files)
{
	static const char *const quick[] = { "q1", "q2", NULL };
	static const char *const slow[] = { "s1", "s2", "s3", "s4", "s5", "s6", NULL };
	struct daemon d, d2;
	struct watch w = { 0 };
	char qdir[DIR_MAX], sdir[DIR_MAX];

	dmn_init(&d);
	make_spool(&d, "quick", qdir, sizeof(qdir));
	make_spool(&d, "slow", sdir, sizeof(sdir));
	for (size_t i = 0; quick[i]; i++)
		put_file(qdir, quick[i]);
	for (size_t i = 0; slow[i]; i++)
		put_file(sdir, slow[i]);
	watch_add(&w, qdir);
	watch_add(&w, sdir);
	/* Two spin jobs run (one worker, two threads), four wait; none can end by itself. */
	start(&d,
	      "[supervisor]\ndrain_timeout = 300ms\n"
	      "[pool quick]\nworkers = 1\nthreads = 1\n"
	      "[pool slow]\nworkers = 1\nthreads = 2\n"
	      "[job quick]\npool = quick\nrun = builtin:noop\nspool = %s\n"
	      "[job slow]\npool = slow\nrun = builtin:spin\nargs = us=600000000\n"
	      "timeout = 1h\nspool = %s\n",
	      qdir, sdir);
	wait_placed(&w, &d, qdir, "done", quick);
	wait_job_running(&d, "slow");
	dmn_stop(&d);
	/* Every unfinished file is where it was, whole, and nowhere else. */
	for (size_t i = 0; slow[i]; i++)
		assert_only_in(sdir, slow[i], "");
	for (size_t i = 0; quick[i]; i++)
		assert_only_in(qdir, quick[i], "done");
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		ck_assert_int_eq(count_in(sdir, subs[i]), 0);
	assert_clean_log(&d);
	dmn_assert_aftermath();

	/* The next start takes them: now they end at once. */
	dmn_init(&d2);
	start(&d2,
	      "[pool slow]\nworkers = 1\nthreads = 2\n"
	      "[job slow]\npool = slow\nrun = builtin:noop\nspool = %s\n",
	      sdir);
	wait_placed(&w, &d2, sdir, "done", slow);
	for (size_t i = 0; slow[i]; i++)
		assert_only_in(sdir, slow[i], "done");
	dmn_stop(&d2);
	dmn_assert_aftermath();
	watch_close(&w);
	dmn_free(&d2);
	dmn_free(&d);
}
END_TEST

/* The most inotify events queued per instance (the kernel's limit), or -1. */
static long max_queued_events(void)
{
	char *s = tu_read_file("/proc/sys/fs/inotify/max_queued_events");
	long n = s ? strtol(s, NULL, 10) : -1;

	free(s);
	return n;
}

START_TEST(test_overflow_and_backlog)
{
	struct daemon d;
	struct watch w = { 0 };
	char spool[DIR_MAX], done[PATH_MAX + 8], name[32];
	long n = max_queued_events() + 500;
	struct count c;

	if (n <= 500 || n > FLOOD_MAX)
		return; /* cannot overflow the queue here within reason */
	dmn_init(&d);
	make_spool(&d, "in", spool, sizeof(spool));
	watch_add(&w, spool);
	start(&d,
	      "[pool main]\nworkers = 2\nthreads = 2\n"
	      "[job eat]\nrun = builtin:noop\nspool = %s\n",
	      spool);
	/* The daemon stopped: its inotify queue fills up and overflows. */
	dmn_signal(&d, SIGSTOP);
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%06ld", i);
		put_file(spool, name);
	}
	dmn_signal(&d, SIGCONT);
	snprintf(done, sizeof(done), "%s/done", spool);
	c = (struct count){ done, n };
	wait_until(&w, &d, count_reached, &c, FLOOD_WAIT_MS, "every file in done/");
	ck_assert_int_eq(tu_count_files(done), n);
	ck_assert_int_eq(tu_count_files(spool), 0);
	dmn_expect_stderr(&d, "overflow", 0);
	dmn_expect_stderr(&d, "the most", 0); /* more than SPOOL_FILES_MAX waited */
	assert_clean_log(&d);
	dmn_stop(&d);
	dmn_assert_aftermath();
	watch_close(&w);
	dmn_free(&d);
}
END_TEST

/*
 * A reload that adds a job group with a spool starts that spool: the file already there and
 * one dropped afterwards are both done. Giving a spool to a group that existed is not done by
 * a reload (its definition stays), and the log says so.
 */
START_TEST(test_reload_starts_a_new_groups_spool)
{
	static const char *const both[] = { "waits", "later", NULL };
	struct daemon d;
	struct watch w = { 0 };
	char spool[DIR_MAX], other[DIR_MAX], conf[PATH_MAX * 3];

	dmn_init(&d);
	make_spool(&d, "in", spool, sizeof(spool));
	make_spool(&d, "other", other, sizeof(other));
	put_file(spool, "waits");
	put_file(other, "stays");
	start(&d, "[pool main]\nworkers = 1\nthreads = 1\n"
		  "[job one]\nrun = builtin:noop\n");
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 1\n"
		 "[job one]\nrun = builtin:noop\nspool = %s\n"
		 "[job late]\nrun = builtin:noop\nspool = %s\n",
		 other, spool);
	dmn_write_config(&d, conf);
	watch_add(&w, spool);
	dmn_signal(&d, SIGHUP);
	dmn_expect_stderr(&d, "job group late: spool", WAIT_MS);
	drop_file(spool, "later");
	wait_placed(&w, &d, spool, "done", both);
	/* The group that existed got no spool: its file is untouched. */
	dmn_expect_stderr(&d, "a reload does not add a spool to a group that had none", WAIT_MS);
	assert_only_in(other, "stays", "");
	assert_clean_log(&d);
	dmn_stop(&d);
	dmn_assert_aftermath();
	watch_close(&w);
	dmn_free(&d);
}
END_TEST

START_TEST(test_spool_removed_while_running)
{
	struct daemon d;
	struct watch w = { 0 };
	char spool[DIR_MAX], other[DIR_MAX];

	dmn_init(&d);
	make_spool(&d, "in", spool, sizeof(spool));
	make_spool(&d, "other", other, sizeof(other));
	watch_add(&w, other);
	start(&d,
	      "[pool main]\nworkers = 1\nthreads = 1\n"
	      "[job gone]\nrun = builtin:noop\nspool = %s\n"
	      "[job other]\nrun = builtin:noop\nspool = %s\n",
	      spool, other);
	ck_assert_int_eq(tu_rm_rf(spool), 0);
	dmn_expect_stderr(&d, "no longer watched", WAIT_MS);
	/* The master lives on, and so does the other spool. */
	put_file(other, "still");
	wait_placed(&w, &d, other, "done", (const char *const[]){ "still", NULL });
	dmn_stop(&d);
	dmn_assert_aftermath();
	watch_close(&w);
	dmn_free(&d);
}
END_TEST

START_TEST(test_run_takes_files_present_at_start)
{
	struct daemon d; /* only for its temp dir */
	char ok[DIR_MAX], bad[DIR_MAX], empty[DIR_MAX], conf[PATH_MAX * 4];
	char report[PATH_MAX], moved[PATH_MAX * 2];
	const char *argv[] = { getenv("BULKHEAD_BIN"), "run", NULL, "--quiet", "--report-json",
			       report, NULL };
	struct json_object *root, *failed, *input;
	char *err;
	int err_fd, st;
	pid_t pid;

	ck_assert_ptr_nonnull(argv[0]);
	dmn_init(&d);
	snprintf(report, sizeof(report), "%s/report.json", d.dir);
	make_spool(&d, "ok", ok, sizeof(ok));
	make_spool(&d, "bad", bad, sizeof(bad));
	make_spool(&d, "empty", empty, sizeof(empty));
	put_file(ok, "a");
	put_file(ok, "b");
	put_file(bad, "c");
	put_file(ok, ".skip");
	snprintf(
		conf, sizeof(conf),
		"[pool main]\nworkers = 1\nthreads = 2\n"
		"[job ok]\nrun = builtin:noop\nspool = %s\n"
		"[job bad]\nrun = builtin:fail\nargs = probability=1\nexpect = failed\nspool = %s\n"
		"[job empty]\nrun = builtin:noop\nspool = %s\n",
		ok, bad, empty);
	dmn_write_config(&d, conf);
	argv[2] = d.conf_path;
	ck_assert_int_eq(tu_spawn(argv, NULL, -1, NULL, &err_fd, &pid), 0);
	err = tu_read_all(err_fd, RUN_TIMEOUT_MS);
	close(err_fd);
	ck_assert_int_eq(tu_wait_exit(pid, RUN_TIMEOUT_MS, &st), 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s; stderr:\n%s",
		      tu_describe_status(st), err ? err : "");
	assert_only_in(ok, "a", "done");
	assert_only_in(ok, "b", "done");
	assert_only_in(bad, "c", "failed");
	assert_only_in(ok, ".skip", "");
	/* The report names the failed file where it is now, in failed/. */
	root = json_object_from_file(report);
	ck_assert_ptr_nonnull(root);
	ck_assert(json_object_object_get_ex(root, "failed", &failed));
	ck_assert_int_eq(json_object_array_length(failed), 1);
	ck_assert(json_object_object_get_ex(json_object_array_get_idx(failed, 0), "input", &input));
	snprintf(moved, sizeof(moved), "%s/failed/c", bad);
	ck_assert_str_eq(json_object_get_string(input), moved);
	json_object_put(root);
	ck_assert_int_eq(tu_count_workers_of(pid), 0);
	ck_assert_int_eq(tu_count_zombie_children(), 0);
	free(err);
	dmn_free(&d);
}
END_TEST

/* A spool that cannot be used at start stops bulkheadd there (exit 1), saying which and why. */
START_TEST(test_unusable_spool_stops_the_start)
{
	struct daemon d;
	char spool[DIR_MAX], conf[PATH_MAX];

	dmn_init(&d);
	make_spool(&d, "in", spool, sizeof(spool));
	put_file(spool, "done"); /* a file where done/ must be */
	put_file(spool, "a");
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 1\nthreads = 1\n"
		 "[job eat]\nrun = builtin:noop\nspool = %s\n",
		 spool);
	dmn_write_config(&d, conf);
	dmn_start(&d, NULL);
	dmn_expect_exit(&d, 1, WAIT_MS);
	ck_assert_msg(d.err && strstr(d.err, "/done: Not a directory"), "%s", dmn_describe(&d));
	assert_only_in(spool, "a", "");
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* A one-shot run is not bounded like the daemon: every file present at start is taken. */
START_TEST(test_run_takes_every_file)
{
	struct daemon d; /* only for its temp dir */
	char spool[DIR_MAX], conf[PATH_MAX], name[32], done[PATH_MAX];
	const char *argv[] = { getenv("BULKHEAD_BIN"), "run", NULL, "--quiet", NULL };
	const long n = 4096 + 1000; /* more than SPOOL_FILES_MAX */
	char *err;
	int err_fd, st;
	pid_t pid;

	ck_assert_ptr_nonnull(argv[0]);
	dmn_init(&d);
	make_spool(&d, "in", spool, sizeof(spool));
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%05ld", i);
		put_file(spool, name);
	}
	snprintf(conf, sizeof(conf),
		 "[pool main]\nworkers = 2\nthreads = 2\n"
		 "[job eat]\nrun = builtin:noop\nspool = %s\n",
		 spool);
	dmn_write_config(&d, conf);
	argv[2] = d.conf_path;
	ck_assert_int_eq(tu_spawn(argv, NULL, -1, NULL, &err_fd, &pid), 0);
	err = tu_read_all(err_fd, RUN_TIMEOUT_MS);
	close(err_fd);
	ck_assert_int_eq(tu_wait_exit(pid, RUN_TIMEOUT_MS, &st), 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s; stderr:\n%s",
		      tu_describe_status(st), err ? err : "");
	snprintf(done, sizeof(done), "%s/done", spool);
	ck_assert_int_eq(tu_count_files(done), n);
	ck_assert_int_eq(tu_count_files(spool), 0);
	free(err);
	dmn_free(&d);
}
END_TEST

/*
 * exec jobs over their {input}: each file is run once, by its full path, and its exit or
 * signal decides where it goes.
 */
START_TEST(test_exec_inputs)
{
	static const char *const good[] = { "ok-1", "ok-2", "ok-3", NULL };
	struct daemon d;
	struct watch w = { 0 };
	char spool[DIR_MAX], script[DIR_MAX], log[DIR_MAX], text[PATH_MAX * 2], line[PATH_MAX];
	char *seen;

	dmn_init(&d);
	make_spool(&d, "in", spool, sizeof(spool));
	snprintf(script, sizeof(script), "%s/job.sh", d.dir);
	snprintf(log, sizeof(log), "%s/ran.log", d.dir);
	snprintf(text, sizeof(text),
		 "echo \"$1\" >> %s\n"
		 "case \"$1\" in\n"
		 "*fail*) exit 3 ;;\n"
		 "*crash*) kill -SEGV $$ ;;\n"
		 "esac\n"
		 "exit 0\n",
		 log);
	ck_assert_int_eq(tu_write_file(script, text), 0);
	for (size_t i = 0; good[i]; i++)
		put_file(spool, good[i]);
	put_file(spool, "will-fail");
	watch_add(&w, spool);
	start(&d,
	      "[pool main]\nworkers = 1\nthreads = 2\n"
	      "[job sh]\nrun = exec:/bin/sh %s {input}\nmax_attempts = 1\nspool = %s\n",
	      script, spool);
	drop_file(spool, "will-crash");
	wait_placed(&w, &d, spool, "done", good);
	wait_placed(&w, &d, spool, "failed", (const char *const[]){ "will-fail", NULL });
	wait_placed(&w, &d, spool, "quarantine", (const char *const[]){ "will-crash", NULL });
	seen = tu_read_file(log);
	ck_assert_ptr_nonnull(seen);
	for (size_t i = 0; good[i]; i++) {
		const char *at;

		snprintf(line, sizeof(line), "%s/%s\n", spool, good[i]);
		at = strstr(seen, line);
		ck_assert_msg(at && !strstr(at + 1, line), "%s ran not once:\n%s", line, seen);
	}
	free(seen);
	assert_clean_log(&d);
	dmn_stop(&d);
	dmn_assert_aftermath();
	watch_close(&w);
	dmn_free(&d);
}
END_TEST

static Suite *spool_suite(void)
{
	Suite *s = suite_create("spool");
	TCase *tc;

	tc = tcase_create("files");
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_files_present_at_start);
	tcase_add_test(tc, test_files_dropped_while_running);
	tcase_add_test(tc, test_outcomes_move_to_their_place);
	tcase_add_test(tc, test_sigterm_midway_leaves_unfinished_files);
	tcase_add_test(tc, test_overflow_and_backlog);
	tcase_add_test(tc, test_reload_starts_a_new_groups_spool);
	tcase_add_test(tc, test_spool_removed_while_running);
	tcase_add_test(tc, test_unusable_spool_stops_the_start);
	tcase_add_test(tc, test_run_takes_files_present_at_start);
	tcase_add_test(tc, test_run_takes_every_file);
	tcase_add_test(tc, test_exec_inputs);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dmn_run(spool_suite(), "test-spool");
}
