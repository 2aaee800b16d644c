/* SPDX-License-Identifier: MIT */
/*
 * One real bulkheadd under test (see daemonutil.h): its temp dir, its notify socket, its
 * stderr pipe and its pidfd. The struct daemon owns all of them until dmn_free(); the test
 * owns the struct (usually on its stack). Each datagram is recorded with its receive time
 * (tu_now_ms()), so a test can look at the order and spacing of READY=1, STATUS=,
 * WATCHDOG=1, STOPPING=1, RELOADING=1.
 *
 * Invariants: `exited` is set only once the daemon was reaped, and a reaped pid is never
 * signalled; after that the pidfd is no longer polled, and stderr is read to its EOF.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemonutil.h"
#include "testutil.h"

/* The end of a long text, for assertion messages (Check caps their size). */
static const char *tail(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (!s)
		return "";
	return n > max ? s + n - max : s;
}

const char *dmn_path(void)
{
	const char *p = getenv("BULKHEAD_DAEMON");

	ck_assert_msg(p && *p, "BULKHEAD_DAEMON is not set");
	return p;
}

const char *dmn_find_line(const char *text, const char *prefix, const char **ret_value)
{
	size_t len = strlen(prefix);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, prefix, len) == 0) {
			if (ret_value)
				*ret_value = l + len;
			return l;
		}
	return NULL;
}

bool dmn_notice_has(const char *text, const char *key)
{
	size_t len = strlen(key);
	const char *v;

	if (!dmn_find_line(text, key, &v))
		return false;
	return key[len - 1] == '=' || *v == '\n' || *v == '\0' ||
	       /* another line further on may match exactly */
	       (strchr(v, '\n') && dmn_notice_has(strchr(v, '\n') + 1, key));
}

/* ---- starting ---- */

void dmn_init(struct daemon *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(d, 0, sizeof(*d));
	d->notify_fd = d->err_fd = d->pidfd = -1;
	ck_assert_int_eq(tu_mkdtemp(&d->dir), 0);
	snprintf(d->conf_path, sizeof(d->conf_path), "%s/test.conf", d->dir);
	snprintf(d->run_dir, sizeof(d->run_dir), "%s/run", d->dir);
	snprintf(d->state_dir, sizeof(d->state_dir), "%s/state", d->dir);
	ck_assert_int_eq(mkdir(d->state_dir, 0700), 0); /* as StateDirectory= would */
	ck_assert_int_lt(snprintf(d->notify_path, sizeof(d->notify_path), "%s/notify", d->dir),
			 (int)sizeof(d->notify_path));
	ck_assert_int_lt(
		snprintf(d->sock_path, sizeof(d->sock_path), "%s/control.sock", d->run_dir),
		(int)sizeof(d->sock_path));
	memcpy(sa.sun_path, d->notify_path, sizeof(d->notify_path));
	d->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(d->notify_fd, 0);
	ck_assert_int_eq(bind(d->notify_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

void dmn_write_config(struct daemon *d, const char *conf)
{
	ck_assert_int_eq(tu_write_file(d->conf_path, conf), 0);
}

static bool env_has(const char *const *env, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], name, len) == 0 && env[i][len] == '=')
			return true;
	return false;
}

void dmn_start(struct daemon *d, const char *const *env)
{
	static char notify_var[200], runtime_var[300], state_var[300];
	const char *argv[32];
	const char *all[DMN_ENV_MAX + 4];
	size_t n = 0, a = 0;

	for (; d->wrap && d->wrap[a]; a++) {
		ck_assert_uint_lt(a, 32 - 4);
		argv[a] = d->wrap[a];
	}
	argv[a++] = dmn_path();
	argv[a++] = "-c";
	argv[a++] = d->conf_path;
	argv[a] = NULL;

	snprintf(notify_var, sizeof(notify_var), "NOTIFY_SOCKET=%s", d->notify_path);
	snprintf(runtime_var, sizeof(runtime_var), "RUNTIME_DIRECTORY=%s", d->run_dir);
	for (size_t i = 0; env && env[i]; i++) {
		ck_assert_uint_lt(n, DMN_ENV_MAX);
		all[n++] = env[i];
	}
	if (!env_has(env, "NOTIFY_SOCKET") && !d->no_notify)
		all[n++] = notify_var;
	if (!env_has(env, "RUNTIME_DIRECTORY"))
		all[n++] = runtime_var;
	snprintf(state_var, sizeof(state_var), "STATE_DIRECTORY=%s", d->state_dir);
	if (!env_has(env, "STATE_DIRECTORY"))
		all[n++] = state_var;
	all[n] = NULL;
	ck_assert_int_eq(tu_spawn(argv, all, -1, NULL, &d->err_fd, &d->pid), 0);
	ck_assert_int_eq(fcntl(d->err_fd, F_SETFL, O_NONBLOCK), 0);
	d->pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
	ck_assert_int_ge(d->pidfd, 0);
}

void dmn_wait_ready(struct daemon *d)
{
	dmn_expect_notice(d, 0, "READY=1", DMN_START_MS);
	d->n_workers = tu_find_workers(d->pid, d->workers, DMN_WORKERS_MAX);
}

const char *dmn_describe(struct daemon *d)
{
	static char buf[6000];
	size_t len = 0;
	int64_t t0 = d->n_notices ? d->notices[0].at : 0;

	len += (size_t)snprintf(buf + len, sizeof(buf) - len, "daemon %s; %zu notices:\n",
				d->exited ? tu_describe_status(d->status) : "running",
				d->n_notices);
	for (size_t i = d->n_notices > 12 ? d->n_notices - 12 : 0;
	     i < d->n_notices && len < sizeof(buf) - 200; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "  +%lldms %.150s\n",
					(long long)(d->notices[i].at - t0), d->notices[i].text);
	if (len < sizeof(buf))
		snprintf(buf + len, sizeof(buf) - len, "stderr:\n%s", tail(d->err, 2000));
	return buf;
}

/* ---- taking in what the daemon sends ---- */

static void read_stderr(struct daemon *d)
{
	char buf[4096];

	while (d->err_fd >= 0) {
		ssize_t n = read(d->err_fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(d->err_fd);
			d->err_fd = -1;
			return;
		}
		if (d->err_max)
			ck_assert_uint_le(d->err_len + (size_t)n, d->err_max);
		d->err = realloc(d->err, d->err_len + (size_t)n + 1);
		ck_assert_ptr_nonnull(d->err);
		memcpy(d->err + d->err_len, buf, (size_t)n);
		d->err_len += (size_t)n;
		d->err[d->err_len] = '\0';
	}
}

static void read_notices(struct daemon *d)
{
	char buf[DMN_DGRAM_MAX + 1];

	for (;;) {
		ssize_t n = recv(d->notify_fd, buf, DMN_DGRAM_MAX, MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		ck_assert_msg(n >= 0, "recv on the notify socket: %s", strerror(errno));
		ck_assert_msg(n < DMN_DGRAM_MAX, "a notify datagram of %zd bytes", n);
		ck_assert_uint_lt(d->n_notices, DMN_NOTICES_MAX);
		buf[n] = '\0';
		d->notices[d->n_notices].at = tu_now_ms();
		d->notices[d->n_notices].text = strdup(buf);
		ck_assert_ptr_nonnull(d->notices[d->n_notices].text);
		d->n_notices++;
	}
}

int dmn_poll(struct daemon *d, struct pollfd *fds, size_t n, int timeout_ms)
{
	static struct pollfd all[DMN_POLL_MAX + 3];
	int r;

	ck_assert_uint_le(n, DMN_POLL_MAX);
	if (n)
		memcpy(all, fds, n * sizeof(*fds));
	all[n] = (struct pollfd){ .fd = d->notify_paused ? -1 : d->notify_fd, .events = POLLIN };
	all[n + 1] = (struct pollfd){ .fd = d->err_fd, .events = POLLIN };
	all[n + 2] = (struct pollfd){ .fd = d->exited ? -1 : d->pidfd, .events = POLLIN };
	r = poll(all, n + 3, timeout_ms);
	ck_assert_msg(r >= 0 || errno == EINTR, "poll: %s", strerror(errno));
	for (size_t i = 0; i < n; i++)
		fds[i].revents = r > 0 ? all[i].revents : 0;
	if (!d->notify_paused)
		read_notices(d);
	read_stderr(d);
	if (r > 0 && !d->exited && d->pid > 0 && (all[n + 2].revents & POLLIN)) {
		ck_assert_int_eq(tu_wait_exit(d->pid, 1000, &d->status), 0);
		d->exited = true;
		d->exited_at = tu_now_ms();
		read_stderr(d); /* whatever it wrote before it exited is in the pipe now */
		if (!d->notify_paused)
			read_notices(d);
	}
	return r;
}

void dmn_pump(struct daemon *d, int timeout_ms)
{
	dmn_poll(d, NULL, 0, timeout_ms);
}

/* ---- waiting ---- */

long dmn_find_notice(struct daemon *d, size_t from, const char *key)
{
	for (size_t i = from; i < d->n_notices; i++)
		if (dmn_notice_has(d->notices[i].text, key))
			return (long)i;
	return -1;
}

size_t dmn_count_notices(struct daemon *d, size_t from, const char *key)
{
	size_t n = 0;

	for (size_t i = from; i < d->n_notices; i++)
		n += dmn_notice_has(d->notices[i].text, key);
	return n;
}

long dmn_wait_notice(struct daemon *d, size_t from, const char *key, int timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;

	for (;;) {
		long i = dmn_find_notice(d, from, key);

		if (i >= 0)
			return i;
		if (d->exited || tu_ms_left(deadline) == 0)
			return -1;
		dmn_pump(d, tu_ms_left(deadline));
	}
}

size_t dmn_expect_notice(struct daemon *d, size_t from, const char *key, int timeout_ms)
{
	long i = dmn_wait_notice(d, from, key, timeout_ms);

	ck_assert_msg(i >= 0, "no %s within %dms; %s", key, timeout_ms, dmn_describe(d));
	return (size_t)i;
}

void dmn_watch(struct daemon *d, int duration_ms)
{
	int64_t deadline = tu_now_ms() + duration_ms;

	while (tu_ms_left(deadline) > 0 && !d->exited)
		dmn_pump(d, tu_ms_left(deadline));
}

bool dmn_wait_exit(struct daemon *d, int timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;

	while (!d->exited && tu_ms_left(deadline) > 0)
		dmn_pump(d, tu_ms_left(deadline));
	return d->exited;
}

void dmn_expect_exit(struct daemon *d, int code, int timeout_ms)
{
	ck_assert_msg(dmn_wait_exit(d, timeout_ms), "still running after %dms; %s", timeout_ms,
		      dmn_describe(d));
	ck_assert_msg(WIFEXITED(d->status) && WEXITSTATUS(d->status) == code,
		      "expected exit %d, got %s; %s", code, tu_describe_status(d->status),
		      dmn_describe(d));
}

void dmn_expect_stderr(struct daemon *d, const char *what, int timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;

	while (!(d->err && strstr(d->err, what)) && tu_ms_left(deadline) > 0 &&
	       (d->err_fd >= 0 || !d->exited))
		dmn_pump(d, tu_ms_left(deadline));
	ck_assert_msg(d->err && strstr(d->err, what), "stderr never said \"%s\"; %s", what,
		      dmn_describe(d));
}

/* ---- stopping ---- */

void dmn_signal(struct daemon *d, int sig)
{
	dmn_pump(d, 0);
	ck_assert_msg(!d->exited && d->pid > 0, "daemon gone before %s; %s", sigabbrev_np(sig),
		      dmn_describe(d));
	ck_assert_int_eq(kill(d->pid, sig), 0);
}

void dmn_stop(struct daemon *d)
{
	size_t from = d->n_notices;

	dmn_signal(d, SIGTERM);
	dmn_expect_notice(d, from, "STOPPING=1", DMN_EXIT_MS);
	dmn_expect_exit(d, 0, DMN_EXIT_MS);
}

void dmn_free(struct daemon *d)
{
	if (d->pid > 0 && !d->exited)
		tu_kill_wait(d->pid);
	if (d->notify_fd >= 0)
		close(d->notify_fd);
	if (d->err_fd >= 0)
		close(d->err_fd);
	if (d->pidfd >= 0)
		close(d->pidfd);
	for (size_t i = 0; i < d->n_notices; i++)
		free(d->notices[i].text);
	free(d->err);
	if (d->dir)
		tu_rm_rf(d->dir);
	free(d->dir);
	memset(d, 0, sizeof(*d));
}

/* ---- the aftermath ---- */

int dmn_count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

long dmn_status_kb(pid_t pid, const char *field)
{
	char path[64], *text;
	const char *v;
	long kb;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	text = tu_read_file(path);
	if (!text)
		return -errno;
	v = dmn_find_line(text, field, NULL);
	kb = v && v[strlen(field)] == ':' ? strtol(v + strlen(field) + 1, NULL, 10) : -ENOENT;
	free(text);
	return kb;
}

int dmn_settled_fds(struct daemon *d)
{
	int least = INT32_MAX;

	for (int i = 0; i < 10; i++) {
		int n = dmn_count_fds(d->pid);

		ck_assert_msg(n >= 0, "fds of %d: %s; %s", (int)d->pid, strerror(-n),
			      dmn_describe(d));
		least = n < least ? n : least;
		dmn_pump(d, 20); /* spread the samples out; take in what comes meanwhile */
	}
	return least;
}

static bool is_live_worker(pid_t pid)
{
	char comm[64], state;

	return tu_proc_stat(pid, comm, sizeof(comm), &state, NULL) == 0 &&
	       strcmp(comm, "bulkhead-worker") == 0 && state != 'Z' && state != 'X';
}

/* True if `ancestor` is pid's parent, grandparent, ... */
static bool descends_from(pid_t pid, pid_t ancestor)
{
	for (int depth = 0; depth < 64 && pid > 1; depth++) {
		char state;
		pid_t ppid;

		if (tu_proc_stat(pid, NULL, 0, &state, &ppid) < 0)
			return false;
		if (ppid == ancestor)
			return true;
		pid = ppid;
	}
	return false;
}

int dmn_count_our_workers(void)
{
	DIR *dir = opendir("/proc");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(dir);
	while ((e = readdir(dir))) {
		pid_t pid = atoi(e->d_name);

		if (pid > 0 && is_live_worker(pid) && descends_from(pid, getpid()))
			n++;
	}
	closedir(dir);
	return n;
}

void dmn_assert_aftermath(void)
{
	ck_assert_int_eq(dmn_count_our_workers(), 0);
	ck_assert_int_eq(tu_count_zombie_children(), 0);
}

/* ---- the test program ---- */

void dmn_setup(void)
{
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
}

int dmn_run(Suite *s, const char *name)
{
	SRunner *sr;
	char *root = NULL;
	int failed, r;

	/* The programs get their socket and service-manager environment from the tests only. */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	unsetenv("RUNTIME_DIRECTORY");
	unsetenv("BULKHEAD_SOCKET");
	/* Every test's temp dir lives under one root, removed even after failed tests. */
	r = tu_mkdtemp(&root);
	if (r >= 0 && setenv("TMPDIR", root, 1) < 0)
		r = -errno;
	if (r < 0) {
		fprintf(stderr, "%s: temp dir: %s\n", name, strerror(-r));
		return EXIT_FAILURE;
	}
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	tu_rm_rf(root);
	free(root);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

void dmn_assert_nothing_left(const char *mark, int timeout_ms, const char *what)
{
	int64_t deadline = tu_now_ms() + timeout_ms;
	pid_t pids[32];
	int n;

	for (;;) {
		pid_t child;
		bool none;

		while ((child = waitpid(-1, NULL, WNOHANG)) > 0)
			;
		none = child < 0 && errno == ECHILD;
		n = tu_find_marked(mark, pids, 32);
		ck_assert_int_ge(n, 0);
		if (n == 0 && none)
			return;
		if (tu_ms_left(deadline) == 0)
			break;
		poll(NULL, 0, 5); /* re-check /proc: waiting for a state, with a deadline */
	}
	for (int i = 0; i < n && i < 32; i++)
		kill(pids[i], SIGKILL);
	ck_abort_msg("%d process%s of the jobs (first %d) or children of the test left %dms "
		     "after %s",
		     n, n == 1 ? "" : "es", n ? (int)pids[0] : 0, timeout_ms, what);
}

/* ---- running `bulkhead` beside a daemon ---- */

static void cli_append(char **buf, size_t *len, const char *data, size_t n)
{
	ck_assert_uint_le(*len + n, DMN_CLI_OUTPUT_MAX);
	*buf = realloc(*buf, *len + n + 1);
	ck_assert_ptr_nonnull(*buf);
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
}

/* Reads what fd has; false at EOF or error (fd closed, set to -1). */
static bool cli_drain(int *fd, char **buf, size_t *len)
{
	char chunk[8192];

	for (;;) {
		ssize_t n = read(*fd, chunk, sizeof(chunk));

		if (n > 0) {
			cli_append(buf, len, chunk, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		close(*fd);
		*fd = -1;
		return false;
	}
}

/*
 * Runs `bulkhead ARGS...` (NULL-terminated) with extra environment `env` (may be NULL),
 * collecting its stdout and stderr; while it runs, d's stderr and datagrams are taken in
 * too (d may be NULL). stdout_path non-NULL: its stdout is that file instead (r.out stays
 * empty).
 */
struct cli_result dmn_cli(struct daemon *d, const char *const *env, const char *const *args,
			  const char *stdout_path)
{
	const char *argv[DMN_CLI_ARGS_MAX + 2] = { getenv("BULKHEAD_BIN") };
	int64_t deadline = tu_now_ms() + DMN_CLI_MS;
	struct cli_result r = { .rc = -1 };
	size_t out_len = 0, err_len = 0, n = 1;
	int out_fd, err_fd, pidfd, st;
	ck_assert_msg(argv[0] && *argv[0], "BULKHEAD_BIN is not set");
	bool running = true;
	pid_t pid;

	for (size_t i = 0; args[i]; i++) {
		ck_assert_uint_lt(n, DMN_CLI_ARGS_MAX);
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	r.out = strdup("");
	r.err = strdup("");
	if (stdout_path) {
		/* The child inherits our stdout: make it that file for the moment of the spawn. */
		int saved = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
		int fd = open(stdout_path, O_WRONLY | O_CLOEXEC);

		ck_assert_int_ge(saved, 0);
		ck_assert_msg(fd >= 0, "%s: %s", stdout_path, strerror(errno));
		fflush(stdout);
		ck_assert_int_eq(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
		ck_assert_int_eq(tu_spawn(argv, env, -1, NULL, &err_fd, &pid), 0);
		ck_assert_int_eq(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
		close(saved);
		close(fd);
		out_fd = -1;
	} else {
		ck_assert_int_eq(tu_spawn(argv, env, -1, &out_fd, &err_fd, &pid), 0);
		ck_assert_int_eq(fcntl(out_fd, F_SETFL, O_NONBLOCK), 0);
	}
	ck_assert_int_eq(fcntl(err_fd, F_SETFL, O_NONBLOCK), 0);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	ck_assert_int_ge(pidfd, 0);
	while (out_fd >= 0 || err_fd >= 0 || running) {
		struct pollfd pfd[3] = {
			{ .fd = out_fd, .events = POLLIN },
			{ .fd = err_fd, .events = POLLIN },
			{ .fd = running ? pidfd : -1, .events = POLLIN },
		};

		if (tu_ms_left(deadline) == 0) {
			tu_kill_wait(pid);
			ck_abort_msg("bulkhead %s did not finish; stderr:\n%s", args[0], r.err);
		}
		if (d)
			dmn_poll(d, pfd, 3, tu_ms_left(deadline));
		else
			ck_assert(poll(pfd, 3, tu_ms_left(deadline)) >= 0 || errno == EINTR);
		if (out_fd >= 0 && pfd[0].revents)
			cli_drain(&out_fd, &r.out, &out_len);
		if (err_fd >= 0 && pfd[1].revents)
			cli_drain(&err_fd, &r.err, &err_len);
		if (running && (pfd[2].revents & POLLIN)) {
			ck_assert_int_eq(tu_wait_exit(pid, 1000, &st), 0);
			running = false;
			r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
	}
	close(pidfd);
	return r;
}

void dmn_cli_free(struct cli_result *r)
{
	free(r->out);
	free(r->err);
}
