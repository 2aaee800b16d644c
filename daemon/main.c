/* SPDX-License-Identifier: MIT */
/*
 * bulkheadd: the supervisor as a service. Foreground (no double fork), the same master as
 * `bulkhead run` in daemon mode: it starts the config's jobs, keeps every pool's workers up
 * and waits for more work until SIGTERM. One instance per runtime directory, guarded by a
 * lock file. Exit codes: 0 clean stop, 1 fatal (or a pool failed with on_pool_failure=exit),
 * 2 usage, 65 a damaged or newer store, 74 a store that cannot be opened or written, 78
 * config error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "config/config.h"
#include "daemon/control.h"
#include "daemon/journal.h"
#include "daemon/master.h"
#include "daemon/metrics-http.h"
#include "daemon/notify.h"
#include "daemon/spawn-worker.h"
#include "daemon/spool.h"

#define DEFAULT_CONFIG BULKHEAD_SYSCONFDIR "/bulkhead/bulkhead.conf"
#define DEFAULT_RUNTIME_DIR "/run/bulkhead"
#define DEFAULT_STATE_DIR "/var/lib/bulkhead"

/* Exit codes besides 0, 1 (fatal) and 2 (usage); see bulkheadd(8). */
enum {
	EXIT_STORE_DATA = 65, /* EX_DATAERR: the store is damaged, newer, or not a store */
	EXIT_STORE_IO = 74,   /* EX_IOERR: the store cannot be opened or written */
	EXIT_CONFIG = 78,     /* EX_CONFIG: config error (also: a pool the store needs) */
};

static void usage(FILE *f)
{
	fputs("Usage: bulkheadd [-c CONFIG] [--check]\n"
	      "\n"
	      "  -c, --config FILE   config file (default " DEFAULT_CONFIG ")\n"
	      "      --check         validate the config, print the effective one, and exit\n"
	      "  -h, --help          this help\n"
	      "      --version       print the version\n"
	      "\n"
	      "Exit codes: 0 stopped cleanly, 1 fatal error, 2 usage error, 78 config error.\n",
	      f);
}

/* $RUNTIME_DIRECTORY (its first entry) or /run/bulkhead. */
static const char *runtime_dir(void)
{
	static char dir[PATH_MAX];
	const char *e = getenv("RUNTIME_DIRECTORY");

	if (!e || !*e)
		return DEFAULT_RUNTIME_DIR;
	snprintf(dir, sizeof(dir), "%.*s", (int)strcspn(e, ":"), e);
	return dir;
}

/*
 * Takes the single-instance lock, held until exit (the fd stays open). Returns 0, -EBUSY if
 * another bulkheadd holds it (its pid in *ret_other), or -errno.
 */
static int take_instance_lock(const char *dir, pid_t *ret_other)
{
	char path[PATH_MAX + 32], buf[32];
	ssize_t n;
	int fd;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/bulkheadd.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = errno == EWOULDBLOCK ? -EBUSY : -errno;

		n = pread(fd, buf, sizeof(buf) - 1, 0);
		*ret_other = n > 0 ? (buf[n] = '\0', atoi(buf)) : 0;
		close(fd);
		return r;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		int r = -errno;

		close(fd);
		return r;
	}
	return 0; /* fd deliberately kept open: the lock lives as long as we do */
}

/* Says why the control socket cannot be ours. */
static void socket_refused(const char *sock, int r)
{
	if (r > 0 || r == -EADDRINUSE)
		log_error("another daemon answers on %s; not starting", sock);
	else if (r == -ENOTSOCK)
		log_error("%s exists and is not a socket; not starting", sock);
	else
		log_error_errno(r, "cannot listen on %s", sock);
}

/* ---- sd_notify, as a subscriber of the master (DESIGN §5) ---- */

static void status_of(void *userdata, char *buf, size_t size)
{
	master_status_line(userdata, buf, size);
}

static void on_ready(void *userdata)
{
	notify_ready(userdata);
}

static void on_reloading(void *userdata)
{
	notify_reloading(userdata);
}

static void on_reloaded(void *userdata, bool ok)
{
	notify_ready(userdata); /* applied or refused: the service is ready again either way */
}

static void on_stopping(void *userdata, usec_t drain)
{
	notify_stopping(userdata);
	if (drain != USEC_INFINITY)
		notify_extend_timeout(userdata, drain + MASTER_STOP_TIMEOUT);
}

static void on_status_dirty(void *userdata)
{
	notify_status_dirty(userdata);
}

static void on_exit_(void *userdata)
{
	notify_status_flush(userdata);
}

static const struct master_hooks notify_hooks = {
	.on_ready = on_ready,
	.on_reloading = on_reloading,
	.on_reloaded = on_reloaded,
	.on_stopping = on_stopping,
	.on_status_dirty = on_status_dirty,
	.on_exit = on_exit_,
};

/*
 * The store file of config c into buf (*ret NULL: `store = memory`): `sqlite:PATH`, else
 * jobs.db in the first of $STATE_DIRECTORY (systemd's StateDirectory=), else in
 * /var/lib/bulkhead, made if it is missing (as StateDirectory= would).
 */
static void store_path(const struct config *c, char *buf, size_t size, const char **ret)
{
	const char *s = c->supervisor.store ? c->supervisor.store : "", *dir;

	*ret = buf;
	if (strcmp(s, "memory") == 0) {
		*ret = NULL;
	} else if (strncmp(s, "postgresql:", 11) == 0) {
		snprintf(buf, size, "PostgreSQL store");
	} else if (*s) {
		snprintf(buf, size, "%s", s + strlen("sqlite:"));
	} else if ((dir = getenv("STATE_DIRECTORY")) && *dir) {
		snprintf(buf, size, "%.*s/jobs.db", (int)strcspn(dir, ":"), dir);
	} else {
		if (mkdir(DEFAULT_STATE_DIR, 0750) < 0 && errno != EEXIST)
			log_warning_errno(-errno, "cannot make %s", DEFAULT_STATE_DIR);
		snprintf(buf, size, "%s/jobs.db", DEFAULT_STATE_DIR);
	}
}

/* The exit code for a store master_new() could not open (it logged why). */
static int store_exit_code(int r)
{
	switch (r) {
	case -EBADMSG:
	case -EPROTO:
	case -EINVAL:
		return EXIT_STORE_DATA;
	case -ENXIO:
		return EXIT_CONFIG;
	default:
		return EXIT_STORE_IO;
	}
}

/* The notifier of m, subscribed to it, its watchdog pings started. */
static int notify_start(struct master *m, struct notifier **ret)
{
	struct notifier *n;
	int r = notifier_new(master_event(m), status_of, m, &n);

	if (r < 0)
		return r;
	r = master_subscribe(m, &notify_hooks, n);
	if (r < 0) {
		notifier_free(n);
		return r;
	}
	r = notifier_start_watchdog(n);
	if (r < 0)
		log_warning_errno(r, "cannot start the watchdog pings");
	*ret = n;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	struct master_options mopts = { .daemon = true };
	const char *path = DEFAULT_CONFIG, *dir;
	struct master *m = NULL;
	struct spools *spools = NULL;
	struct control *ctl = NULL;
	struct metrics_http *metrics = NULL;
	struct notifier *notifier = NULL;
	char sock[PATH_MAX + 32], store[PATH_MAX + 32];
	struct config *c = NULL;
	bool check = false;
	pid_t other = 0;
	int o, r, rc;

	log_set_program("bulkheadd");
	opterr = 0;
	while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) >= 0) {
		switch (o) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("bulkheadd %s\n", BULKHEAD_VERSION);
			return 0;
		default:
			fprintf(stderr, "bulkheadd: %s: unknown option or missing argument\n",
				argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bulkheadd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	/* Plugins are probed in a throwaway worker: their constructors never run here. */
	rc = config_load_checked(path, NULL, spawn_worker_path(), 0, &c);
	if (rc != 0)
		return rc;
	if (check) {
		config_print(c, stdout);
		config_free(c);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	log_set_max_level((int)c->supervisor.log_level);
	journal_log_init("bulkheadd");

	dir = runtime_dir();
	r = take_instance_lock(dir, &other);
	if (r == -EBUSY) {
		log_error("another bulkheadd (pid %d) is running with %s/bulkheadd.lock; not starting",
			  (int)other, dir);
		config_free(c);
		return 1;
	}
	if (r < 0) {
		log_error_errno(r, "cannot take the instance lock in %s", dir);
		config_free(c);
		return 1;
	}

	if (c->supervisor.control_socket[0])
		snprintf(sock, sizeof(sock), "%s", c->supervisor.control_socket);
	else
		snprintf(sock, sizeof(sock), "%s/control.sock", dir);
	/* Before anything starts: the instance lock covers one runtime directory only. */
	r = control_probe(sock);
	if (r != 0) {
		socket_refused(sock, r);
		config_free(c);
		return 1;
	}

	log_info("starting with %s: %u pool%s, %u job group%s", path, c->n_pools,
		 c->n_pools == 1 ? "" : "s", c->n_groups, c->n_groups == 1 ? "" : "s");
	store_path(c, store, sizeof(store), &mopts.state);
	if (c->supervisor.store && strncmp(c->supervisor.store, "postgresql:", 11) == 0) {
		mopts.pg_conninfo = c->supervisor.store + 11;
		mopts.lease_ms = (int64_t)(c->supervisor.lease / USEC_PER_MSEC);
		log_info("jobs are kept in PostgreSQL, shared with the other nodes");
	} else if (mopts.state) {
		log_info("jobs are kept in %s", mopts.state);
	}
	r = master_new(c, &mopts, &m);
	if (r < 0) {
		config_free(c);
		if (mopts.state && r != -ENOMEM)
			return store_exit_code(r); /* master_new said why */
		log_error_errno(r, "cannot set up the master");
		return 1;
	}
	r = notify_start(m, &notifier);
	if (r < 0) {
		log_error_errno(r, "cannot set up sd_notify");
		master_free(m);
		return 1;
	}
	if (spools_start(m, true, &spools) < 0) {
		notifier_free(notifier);
		master_free(m);
		return 1;
	}
	/* Bound before master_run: READY=1 promises a usable control socket. */
	r = control_new(m, sock, c->supervisor.control_group, &ctl);
	if (r < 0) {
		socket_refused(sock, r);
		spools_free(spools);
		notifier_free(notifier);
		master_free(m);
		return 1;
	}
	r = metrics_http_start(m, master_event(m), c->supervisor.metrics_listen, &metrics);
	if (r < 0) {
		log_error_errno(r, "metrics_listen = %s: cannot listen", c->supervisor.metrics_listen);
		control_free(ctl);
		spools_free(spools);
		notifier_free(notifier);
		master_free(m);
		return 1;
	}
	r = master_run(m);
	if (r < 0)
		log_error_errno(r, "event loop failed");
	rc = r < 0 || master_stats(m)->pool_failure_exit ? 1 : 0;
	if (rc == 0 && master_state_error(m) < 0)
		rc = EXIT_STORE_IO; /* the last write failed: logged */
	log_info("stopped");
	spools_free(spools);
	metrics_http_free(metrics);
	control_free(ctl);
	notifier_free(notifier); /* before the master: it reads the master's status */
	master_free(m); /* and the config it owns */
	return rc;
}
