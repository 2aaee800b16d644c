/* SPDX-License-Identifier: MIT */
/*
 * The harness shared by the integration tests that run a real bulkheadd ($BULKHEAD_DAEMON):
 * a private temp dir, an AF_UNIX datagram socket bound there as the service manager's
 * NOTIFY_SOCKET (no systemd involved), the daemon started with RUNTIME_DIRECTORY in that dir,
 * its stderr and every notify datagram taken in as they come, signals, a clean stop, and the
 * aftermath (no worker left below the test, no zombie, the daemon's fd count).
 *
 * Every wait is a poll() on a real event with a deadline (a datagram, stderr output, the
 * daemon's exit through its pidfd); nothing sleeps. Every wait also takes in the daemon's
 * stderr and datagrams, so the daemon never blocks on a full pipe while a test waits.
 *
 * These are Check helpers: they fail the test (ck_assert) instead of returning errors.
 * The daemon is spawned with PR_SET_PDEATHSIG (tu_spawn), so after a failed assertion it dies
 * with the test process; dmn_run() removes every temp dir after the whole run.
 */
#pragma once

#include <check.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#define DMN_NOTICES_MAX 4096 /* datagrams recorded per daemon */
#define DMN_DGRAM_MAX 4096 /* longest datagram accepted */
#define DMN_WORKERS_MAX 64 /* workers noted at READY=1 */
#define DMN_ENV_MAX 16 /* extra environment variables per daemon */
#define DMN_POLL_MAX 1024 /* fds one dmn_poll() watches besides the daemon's */
#define DMN_START_MS 30000 /* spawn -> READY=1, generous for ASan */
#define DMN_EXIT_MS 30000 /* SIGTERM -> exit when nothing is running */

struct notice {
	int64_t at; /* tu_now_ms() when received */
	char *text;
};

struct daemon {
	char *dir; /* the private temp dir, removed by dmn_free() */
	char conf_path[256]; /* DIR/test.conf */
	char notify_path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* DIR/notify */
	char run_dir[256]; /* DIR/run, the RUNTIME_DIRECTORY */
	char state_dir[256]; /* DIR/state, the STATE_DIRECTORY (the store: DIR/state/jobs.db) */
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* RUN_DIR/control.sock */
	int notify_fd;
	int err_fd; /* the daemon's stderr, non-blocking; -1 at EOF */
	int pidfd;
	pid_t pid;
	bool no_notify; /* set before dmn_start(): start without NOTIFY_SOCKET */
	/* Set before dmn_start(): a command (NULL-terminated argv) that runs the daemon's own
	 * command line given after it and execs it, so the daemon keeps its pid. */
	const char *const *wrap;
	bool notify_paused; /* datagrams are left unread: a service manager that stopped reading */
	size_t err_max; /* set before dmn_start(): > 0 fails the test if stderr grows past it */
	bool exited; /* reaped: `status` and `exited_at` are valid */
	int status;
	int64_t exited_at;
	char *err; /* everything the daemon wrote to stderr, NUL-terminated (NULL: nothing) */
	size_t err_len;
	struct notice notices[DMN_NOTICES_MAX]; /* every datagram, in order of arrival */
	size_t n_notices;
	pid_t workers[DMN_WORKERS_MAX]; /* by dmn_wait_ready(): at READY=1, sorted */
	int n_workers;
};

/* $BULKHEAD_DAEMON; fails the test if it is not set. */
const char *dmn_path(void);

/* The line of text starting with prefix (the rest of it in *ret_value, may be NULL), or NULL. */
const char *dmn_find_line(const char *text, const char *prefix, const char **ret_value);

/*
 * Does the datagram carry `key`? A key ending in '=' ("STATUS=") matches any line starting
 * with it; any other ("READY=1") must be a whole line.
 */
bool dmn_notice_has(const char *text, const char *key);

/* Makes a temp dir with a bound notify socket and fills in d's paths; nothing started yet. */
void dmn_init(struct daemon *d);

/* Writes d->conf_path. */
void dmn_write_config(struct daemon *d, const char *conf);

/*
 * Starts `bulkheadd -c CONF` with NOTIFY_SOCKET (unless d->no_notify) and RUNTIME_DIRECTORY
 * in d's dir; `env` (NULL-terminated "K=V", may be NULL) comes first and wins over those two.
 * Does not wait for anything.
 */
void dmn_start(struct daemon *d, const char *const *env);

/*
 * Waits up to DMN_START_MS for READY=1 (the first datagram on) and notes the daemon's
 * workers at that moment in d->workers / d->n_workers. Fails the test if it does not come.
 */
void dmn_wait_ready(struct daemon *d);

/* Everything received so far (status, the last datagrams, stderr), for assertion messages. */
const char *dmn_describe(struct daemon *d);

/*
 * poll()s fds[0..n) (may be none, n <= DMN_POLL_MAX) together with the daemon's notify
 * socket, stderr and pidfd for up to timeout_ms, then takes in whatever the daemon sent and
 * reaps it if it exited. fds[i].revents are set as poll() left them (0 on timeout or EINTR).
 * Returns poll()'s result.
 */
int dmn_poll(struct daemon *d, struct pollfd *fds, size_t n, int timeout_ms);

/* dmn_poll() with no fds of the caller's: waits up to timeout_ms for the daemon. */
void dmn_pump(struct daemon *d, int timeout_ms);

/* Index of the first datagram at or after `from` that has `key`, or -1. Does not wait. */
long dmn_find_notice(struct daemon *d, size_t from, const char *key);

/* Datagrams at or after `from` that have `key`. Does not wait. */
size_t dmn_count_notices(struct daemon *d, size_t from, const char *key);

/*
 * Waits up to timeout_ms for a datagram with `key` at index >= from; returns its index, or
 * -1 on timeout or when the daemon exited first.
 */
long dmn_wait_notice(struct daemon *d, size_t from, const char *key, int timeout_ms);

/* As dmn_wait_notice, failing the test if it does not come. */
size_t dmn_expect_notice(struct daemon *d, size_t from, const char *key, int timeout_ms);

/* Takes in everything for duration_ms (a window to watch, not a synchronisation). */
void dmn_watch(struct daemon *d, int duration_ms);

/* Waits up to timeout_ms for the daemon to exit; true if it did (and was reaped). */
bool dmn_wait_exit(struct daemon *d, int timeout_ms);

/* Waits up to timeout_ms for the daemon to exit with `code`; fails the test otherwise. */
void dmn_expect_exit(struct daemon *d, int code, int timeout_ms);

/* Waits up to timeout_ms for `what` on the daemon's stderr; fails the test otherwise. */
void dmn_expect_stderr(struct daemon *d, const char *what, int timeout_ms);

/* Signals the daemon, which must still be running (a reaped pid is never signalled). */
void dmn_signal(struct daemon *d, int sig);

/* SIGTERM to a running daemon, then STOPPING=1 and exit 0, each within DMN_EXIT_MS. */
void dmn_stop(struct daemon *d);

/* Kills the daemon if it still runs, closes everything, removes its dir. NULL-safe fields. */
void dmn_free(struct daemon *d);

/* Open fds of process pid, or -errno. */
int dmn_count_fds(pid_t pid);

/* A "Field:   N kB" line of /proc/PID/status (VmRSS, RssAnon, ...): N, or -errno. */
long dmn_status_kb(pid_t pid, const char *field);

/*
 * The daemon's open fds, the least seen over ~200 ms (taking in its output meanwhile): each
 * sd_notify() holds a socket for a moment, and a client just closed may not be noticed yet.
 */
int dmn_settled_fds(struct daemon *d);

/* Live bulkhead-worker processes anywhere below this test process. */
int dmn_count_our_workers(void);

/*
 * Waits until no process marked `mark` (tu_find_marked) is alive and this process (a
 * subreaper: orphans come here) has no child left, reaping them; fails the test (after
 * killing what is left) at the deadline. `what` names the event for the message.
 */
void dmn_assert_nothing_left(const char *mark, int timeout_ms, const char *what);

/* After the daemon is gone: no bulkhead-worker below this process, no zombie child. */
void dmn_assert_aftermath(void);

/*
 * A checked fixture for every test: makes the test process a child subreaper, so workers
 * orphaned by their master come to it (and count in dmn_count_our_workers()), not to PID 1.
 */
void dmn_setup(void);

/*
 * main() of a test program: clears the service-manager and socket environment the programs
 * would otherwise inherit, puts every temp dir under one root removed after the run, runs
 * suite s (CK_NORMAL) and frees it. Returns EXIT_SUCCESS or EXIT_FAILURE.
 */
int dmn_run(Suite *s, const char *name);

/* ---- running `bulkhead` beside a daemon ---- */

#define DMN_CLI_MS 30000 /* one `bulkhead` run */
#define DMN_CLI_OUTPUT_MAX (4 << 20) /* what it may print */
#define DMN_CLI_ARGS_MAX 24

struct cli_result {
	int rc; /* exit status, or 128 + signal */
	char *out, *err;
};

/*
 * Runs `$BULKHEAD_BIN ARGS...` (NULL-terminated) with extra environment `env` (may be NULL),
 * collecting its stdout and stderr; while it runs, d's stderr and datagrams are taken in
 * too (d may be NULL). stdout_path non-NULL: its stdout is that file instead (r.out stays
 * empty). Fails the test if it does not end within DMN_CLI_MS.
 */
struct cli_result dmn_cli(struct daemon *d, const char *const *env, const char *const *args,
			  const char *stdout_path);
void dmn_cli_free(struct cli_result *r);
