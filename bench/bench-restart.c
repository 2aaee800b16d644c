/* SPDX-License-Identifier: MIT */
/*
 * bench-restart: how long a worker killed from outside takes to be replaced, against the
 * floor of what any restart has to do (bench/run turns its output into
 * bench/results/restart.md).
 *
 * Part 1, the master: a real master (the master library, daemon mode) runs one idle pool
 * with min_uptime = 0, so a worker killed from outside is a worker fault that restarts at
 * once, with each way of starting workers ([supervisor] worker_start: fork-server, exec). A
 * one-shot defer source in the master's own event loop SIGKILLs a ready worker (t0); the master's
 * on_worker_ready hook says when it read the replacement's HELLO (t1). The next kill is armed from
 * that hook: kills never overlap and nothing sleeps. A guard timer gives up if a replacement does
 * not come.
 *
 * Part 2, the floors, in the same process once the masters are gone, for each way the master
 * starts a worker: zygote_spawn() (a fork by the fork server) or spawn_worker() (an exec),
 * until the worker's HELLO frame is read, with nothing else going on; then, outside that
 * timed part, kill -> pidfd readable -> reaped for the same worker; and a bare fork() +
 * _exit() + waitpid() for context.
 *
 * With --spare the pool has a warm spare ([pool] spare = yes, daemon/spare.c): a kill's slot is
 * taken over by the spare, and each kill waits until the next spare has said HELLO.
 *
 * All times are CLOCK_MONOTONIC (the hook's time is now_usec(), the same clock in
 * microseconds). Nothing here asserts a timing: it reports, and bench/run judges. The output
 * (summaries, restart.md, the JSON) is bench-restart-report.c's.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/protocol.h"
#include "common/units.h"
#include "config/config.h"
#include "daemon/master.h"
#include "daemon/spawn-worker.h"

#define KILL_TIMEOUT (5 * USEC_PER_SEC) /* kill -> replacement's HELLO, else give up */
#define START_TIMEOUT (30 * USEC_PER_SEC) /* master start -> every worker's first HELLO */
#define HELLO_TIMEOUT_MS 5000 /* floor: spawn -> HELLO */
#define REAP_TIMEOUT_MS 5000 /* floor: kill -> pidfd readable */
#define SAMPLES_MAX 100000 /* --kills, --warmup, --floor */

#include "bench/bench-restart.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- samples ---- */

static int samples_add(struct samples *s, double us)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		double *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = us;
	return 0;
}

/* ---- part 1: restarts in the master ---- */

static void run_fail(struct restart_run *r, int err, const char *what)
{
	if (r->error == 0) {
		r->error = err;
		r->error_what = what;
	}
	if (!r->stopping) {
		r->stopping = true;
		sd_event_source_set_enabled(r->kick, SD_EVENT_OFF);
		sd_event_source_set_enabled(r->guard, SD_EVENT_OFF);
		/* The master stops on SIGTERM (blocked, read from a signalfd in its loop). */
		kill(getpid(), SIGTERM);
	}
}

static void guard_arm(struct restart_run *r, usec_t timeout)
{
	sd_event_source_set_time(r->guard, now_usec() + timeout);
	sd_event_source_set_enabled(r->guard, SD_EVENT_ONESHOT);
}

static int on_guard(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct restart_run *r = userdata;

	run_fail(r, -ETIMEDOUT,
		 r->started ? "no replacement said HELLO in time"
			    : "the workers did not all say HELLO in time");
	return 0;
}

static int on_kick(sd_event_source *s, void *userdata)
{
	struct restart_run *r = userdata;
	struct master_worker_info wi;
	struct master_pool_info pi;
	unsigned slot;

	master_pool_info(r->m, 0, &pi);
	if (r->spare && (!pi.spare_state || strcmp(pi.spare_state, "ready") != 0)) {
		r->kick_waits = true; /* on_worker_ready() kicks again */
		return 0;
	}
	slot = r->next_slot++ % r->workers;
	master_worker_info(r->m, 0, slot, &wi);
	if (wi.pid <= 0 || strcmp(wi.state, "ready") != 0) {
		run_fail(r, -ESRCH, "the worker to kill is not ready");
		return 0;
	}
	r->killed_slot = slot;
	r->killed_pid = wi.pid;
	r->t_dead = r->t_spawn = 0;
	guard_arm(r, KILL_TIMEOUT);
	r->t0 = now_ns();
	if (kill(wi.pid, SIGKILL) < 0)
		run_fail(r, -errno, "kill");
	return 0;
}

/*
 * Only in an observed run: runs after every other dispatch of the loop (sd-event dispatches
 * one source per iteration) and looks at the killed slot, to time when its death was handled
 * and when the replacement was spawned. It changes what it observes: with a post source
 * pending the loop does not sleep between dispatches, so a timer that is due runs at once
 * rather than when the timerfd fires (at the end of the timer's accuracy window). Hence the
 * plain runs give the latency and the observed ones the breakdown.
 */
static int on_post(sd_event_source *s, void *userdata)
{
	struct restart_run *r = userdata;
	struct master_worker_info wi;

	if (r->killed_pid == 0 || r->t_spawn)
		return 0;
	master_worker_info(r->m, 0, r->killed_slot, &wi);
	if (wi.pid == r->killed_pid)
		return 0;
	if (!r->t_dead)
		r->t_dead = now_ns();
	if (wi.pid > 0)
		r->t_spawn = now_ns();
	return 0;
}

static void on_worker_ready(void *userdata, unsigned pool, unsigned slot, pid_t pid, usec_t when)
{
	struct restart_run *r = userdata;
	double us;

	if (r->stopping)
		return;
	if (slot == MASTER_SLOT_SPARE) {
		if (r->kick_waits && r->killed_pid == 0) {
			r->kick_waits = false;
			sd_event_source_set_enabled(r->kick, SD_EVENT_ONESHOT);
		}
		return;
	}
	if (!r->started) {
		if (++r->n_ready == r->workers) {
			r->started = true;
			sd_event_source_set_enabled(r->kick, SD_EVENT_ONESHOT);
		}
		return;
	}
	if (r->killed_pid == 0 || slot != r->killed_slot || pid == r->killed_pid)
		return;
	us = ((double)when * 1000.0 - (double)r->t0) / 1000.0;
	if (r->done++ >= r->warmup) {
		/* Both seen, else the post source missed them: no breakdown for this kill. */
		bool parts = r->t_dead && r->t_spawn;
		double t_hello = (double)when * 1000.0;

		if (samples_add(&r->lat, us) < 0 ||
		    (parts &&
		     (samples_add(&r->dead, (double)(r->t_dead - r->t0) / 1000.0) < 0 ||
		      samples_add(&r->spawn, (double)(r->t_spawn - r->t_dead) / 1000.0) < 0 ||
		      samples_add(&r->hello, (t_hello - (double)r->t_spawn) / 1000.0) < 0))) {
			run_fail(r, -ENOMEM, "out of memory");
			return;
		}
	}
	r->killed_pid = 0;
	if (r->done == r->warmup + r->kills) {
		r->stopping = true;
		sd_event_source_set_enabled(r->guard, SD_EVENT_OFF);
		kill(getpid(), SIGTERM);
		return;
	}
	sd_event_source_set_enabled(r->kick, SD_EVENT_ONESHOT);
}

const char *start_name(enum worker_start start)
{
	return start == WORKER_START_EXEC ? "exec" : "fork-server";
}

static int write_config(const struct restart_run *r, char *path, size_t size)
{
	const char *tmp = getenv("TMPDIR");
	FILE *f;
	int fd;

	snprintf(path, size, "%s/bench-restart-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(path);
		return -ENOMEM;
	}
	/*
	 * min_uptime = 0: a worker killed from outside (a worker fault: it died with no job in
	 * flight) restarts at once. 1024 faults per second is the most the key takes, far more
	 * than the kills of one run can reach.
	 */
	fprintf(f,
		"[supervisor]\n"
		"log_level = err\n"
		"worker_start = %s\n"
		"\n"
		"[pool bench]\n"
		"workers = %u\n"
		"threads = %u\n"
		"min_uptime = 0\n"
		"max_worker_faults = 1024/1s\n"
		"spare = %s\n",
		start_name(r->start), r->workers, r->threads, r->spare ? "yes" : "no");
	if (fclose(f) != 0) {
		unlink(path);
		return -EIO;
	}
	return 0;
}

static int restart_run(struct restart_run *r)
{
	struct master_options opts = {
		.daemon = true,
		.on_worker_ready = on_worker_ready,
		.userdata = r,
	};
	struct master_pool_info pi;
	struct config *c = NULL;
	char path[PATH_MAX], *errors = NULL;
	sd_event *e;
	int ret;

	ret = write_config(r, path, sizeof(path));
	if (ret < 0) {
		fprintf(stderr, "bench-restart: cannot write a config: %s\n", strerror(-ret));
		return ret;
	}
	ret = config_load(path, &c, &errors);
	unlink(path);
	if (ret < 0) {
		fprintf(stderr, "bench-restart: config: %s\n", errors ? errors : strerror(-ret));
		free(errors);
		return ret;
	}
	ret = master_new(c, &opts, &r->m);
	if (ret < 0) {
		config_free(c);
		fprintf(stderr, "bench-restart: master_new: %s\n", strerror(-ret));
		return ret;
	}
	log_set_max_level(LOG_ERR); /* one worker-fault line per kill otherwise */
	e = master_event(r->m);
	ret = sd_event_add_defer(e, &r->kick, on_kick, r);
	if (ret >= 0)
		ret = sd_event_source_set_enabled(r->kick, SD_EVENT_OFF);
	if (ret >= 0 && r->observe)
		ret = sd_event_add_post(e, &r->post, on_post, r);
	if (ret >= 0)
		ret = sd_event_add_time(e, &r->guard, CLOCK_MONOTONIC, now_usec() + START_TIMEOUT,
					0, on_guard, r);
	if (ret >= 0)
		ret = master_run(r->m);
	if (ret < 0 && r->error == 0) {
		r->error = ret;
		r->error_what = "event loop";
	}
	r->restarts = master_stats(r->m)->restarts;
	r->worker_faults = master_stats(r->m)->worker_faults;
	master_pool_info(r->m, 0, &pi);
	snprintf(r->pool_state, sizeof(r->pool_state), "%s", pi.state);
	r->kick = sd_event_source_disable_unref(r->kick);
	r->guard = sd_event_source_disable_unref(r->guard);
	r->post = sd_event_source_disable_unref(r->post);
	master_free(r->m);
	r->m = NULL;
	if (r->error)
		fprintf(stderr, "bench-restart: %u workers, %s: %s: %s\n", r->workers,
			start_name(r->start), r->error_what, strerror(-r->error));
	return r->error;
}

/* ---- part 2: the floors ---- */

static int poll_in(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n;

	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

static int read_hello(const struct spawned_worker *s, unsigned threads)
{
	static uint8_t buf[BH_FRAME_MAX];
	struct bh_frame f;
	ssize_t len;
	int r;

	r = poll_in(s->fd, HELLO_TIMEOUT_MS);
	if (r < 0)
		return r;
	len = recv(s->fd, buf, sizeof(buf), 0);
	if (len < 0)
		return -errno;
	if (len == 0)
		return -ECONNRESET;
	r = bh_frame_decode(buf, (size_t)len, &f);
	if (r < 0)
		return r;
	if (f.type != BH_FRAME_HELLO || f.hello.pid != s->pid || f.hello.threads != threads)
		return -EPROTO;
	return 0;
}

/* One worker started the master's way, until its HELLO; then killed and reaped. */
static int floor_once(enum worker_start start, struct zygote *z, const char *path, unsigned threads,
		      bool keep, struct floor_samples *fs, struct kill_samples *ks)
{
	const struct worker_launch l = { .pool = "floor", .threads = threads,
					 .memory_max = UINT64_MAX, .uid = (uid_t)-1,
					 .gid = (gid_t)-1 };
	struct spawned_worker s;
	uint64_t t0, t1, t2, t3, t4, t5;
	int r, status;

	t0 = now_ns();
	if (start == WORKER_START_EXEC)
		r = spawn_worker(path, &l, &s);
	else
		r = zygote_spawn(z, &l, &s);
	t1 = now_ns();
	if (r < 0)
		return r;
	r = read_hello(&s, threads);
	t2 = now_ns();

	t3 = now_ns();
	kill(s.pid, SIGKILL);
	if (poll_in(s.pidfd, REAP_TIMEOUT_MS) < 0 && r == 0)
		r = -ETIMEDOUT;
	t4 = now_ns();
	while (waitpid(s.pid, &status, 0) < 0 && errno == EINTR)
		;
	t5 = now_ns();
	close(s.fd);
	close(s.pidfd);
	if (r < 0 || !keep)
		return r;
	if (samples_add(&fs->hello, (double)(t2 - t0) / 1000.0) < 0 ||
	    samples_add(&fs->call, (double)(t1 - t0) / 1000.0) < 0 ||
	    samples_add(&fs->start_hello, (double)(t2 - t1) / 1000.0) < 0 ||
	    samples_add(&ks->pidfd, (double)(t4 - t3) / 1000.0) < 0 ||
	    samples_add(&ks->reap, (double)(t5 - t3) / 1000.0) < 0)
		return -ENOMEM;
	return 0;
}

static int floor_run(enum worker_start start, const char *path, unsigned threads, unsigned n,
		     unsigned warmup, struct floor_samples *fs, struct kill_samples *ks)
{
	struct zygote z = { .s = { .pid = 0, .pidfd = -1, .fd = -1 } };
	int r = 0;

	if (start == WORKER_START_FORK_SERVER) {
		r = zygote_start(path, &z);
		if (r < 0) {
			fprintf(stderr, "bench-restart: floor: %s --zygote: %s\n", path,
				strerror(-r));
			return r;
		}
	}
	for (unsigned i = 0; i < warmup + n && r >= 0; i++) {
		r = floor_once(start, &z, path, threads, i >= warmup, fs, ks);
		if (r < 0)
			fprintf(stderr, "bench-restart: floor (%s): %s: %s\n", start_name(start),
				path, strerror(-r));
	}
	zygote_stop(&z);
	return r;
}

static int fork_run(unsigned n, unsigned warmup, struct kill_samples *ks)
{
	for (unsigned i = 0; i < warmup + n; i++) {
		uint64_t t0 = now_ns(), t1;
		pid_t pid = fork();

		if (pid < 0) {
			fprintf(stderr, "bench-restart: fork: %s\n", strerror(errno));
			return -errno;
		}
		if (pid == 0)
			_exit(0);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		t1 = now_ns();
		if (i >= warmup && samples_add(&ks->fork, (double)(t1 - t0) / 1000.0) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* ---- command line ---- */

static void usage(FILE *f)
{
	fputs("Usage: bench-restart [OPTIONS]\n"
	      "\n"
	      "  --kills N        measured kills per pool size (default 200)\n"
	      "  --warmup N       unmeasured kills (and floor rounds) first (default 10)\n"
	      "  --workers LIST   pool sizes, comma-separated (default 1,4)\n"
	      "  --start LIST     ways to start workers: fork-server,exec (default both)\n"
	      "  --threads T      threads per worker (default 2)\n"
	      "  --spare          pools with a warm spare ([pool] spare = yes)\n"
	      "  --floor N        floor rounds (default: --kills)\n"
	      "  --worker PATH    worker binary (default: bulkhead-worker of this build tree)\n"
	      "  --out FILE       markdown results (default: stdout)\n"
	      "  --json FILE      the same figures as JSON\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kills", required_argument, NULL, 'k' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "workers", required_argument, NULL, 'w' },
		{ "start", required_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 't' },
		{ "spare", no_argument, NULL, 'S' },
		{ "floor", required_argument, NULL, 'f' },
		{ "worker", required_argument, NULL, 'p' },
		{ "out", required_argument, NULL, 'o' },
		{ "json", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	enum { RUNS_MAX = POOL_SIZES_MAX * N_STARTS };
	unsigned sizes[POOL_SIZES_MAX] = { 1, 4 }, n_sizes = 2;
	enum worker_start starts[N_STARTS] = { WORKER_START_FORK_SERVER, WORKER_START_EXEC };
	unsigned n_starts = 2, threads = 2, kills = 200, warmup = 10, floor_n = 0, n_runs = 0;
	const char *worker = NULL, *out = NULL, *json = NULL;
	struct restart_run runs[RUNS_MAX] = { 0 }, obs[RUNS_MAX] = { 0 };
	struct run_summary sum[RUNS_MAX] = { 0 }, osum[RUNS_MAX] = { 0 };
	struct floor_samples fs[N_STARTS] = { 0 };
	struct kill_samples ks = { 0 };
	struct results res = { 0 };
	int o, li = 0, r = 0;
	bool spare = false;

	while ((o = getopt_long(argc, argv, "h", opts, &li)) >= 0) {
		bool ok = true;

		switch (o) {
		case 'k':
			ok = arg_uint(optarg, 1, SAMPLES_MAX, &kills);
			break;
		case 'W':
			ok = arg_uint(optarg, 0, SAMPLES_MAX, &warmup);
			break;
		case 'w':
			ok = arg_sizes(optarg, sizes, &n_sizes);
			break;
		case 's':
			ok = arg_starts(optarg, starts, &n_starts);
			break;
		case 't':
			ok = arg_uint(optarg, 1, 256, &threads);
			break;
		case 'S':
			spare = true;
			break;
		case 'f':
			ok = arg_uint(optarg, 1, SAMPLES_MAX, &floor_n);
			break;
		case 'p':
			worker = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'j':
			json = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (!ok) {
			fprintf(stderr, "bench-restart: bad value for --%s: '%s'\n", opts[li].name,
				optarg);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (floor_n == 0)
		floor_n = kills;
	if (!worker)
		worker = default_worker();
	if (!worker || access(worker, X_OK) < 0) {
		fprintf(stderr, "bench-restart: no worker binary (give --worker PATH)\n");
		return 1;
	}
	/* The master starts $BULKHEAD_WORKER: the same binary as the floors'. */
	if (setenv("BULKHEAD_WORKER", worker, 1) < 0)
		return 1;
	log_set_program("bench-restart");

	for (unsigned i = 0; i < n_sizes; i++)
		for (unsigned k = 0; k < n_starts; k++, n_runs++) {
			struct restart_run *p = &runs[n_runs], *q = &obs[n_runs];

			*p = (struct restart_run){
				.workers = sizes[i],
				.threads = threads,
				.kills = kills,
				.warmup = warmup,
				.start = starts[k],
				.spare = spare,
			};
			*q = *p;
			q->observe = true;
			if (restart_run(p) < 0 || restart_run(q) < 0)
				r = 1;
			summarise_run(p, &sum[n_runs]);
			summarise_run(q, &osum[n_runs]);
		}

	res = (struct results){
		.n_runs = n_runs,
		.runs = runs,
		.obs = obs,
		.sum = sum,
		.osum = osum,
		.threads = threads,
		.spare = spare,
		.kills = kills,
		.warmup = warmup,
		.floor_n = floor_n,
	};
	for (unsigned k = 0; k < n_starts; k++) {
		enum worker_start w = starts[k];

		res.floor_wanted[w] = true;
		res.floor[w].ok = floor_run(w, worker, threads, floor_n, warmup, &fs[w], &ks) == 0;
		if (!res.floor[w].ok)
			r = 1;
		samples_summary(&fs[w].hello, &res.floor[w].hello);
		samples_summary(&fs[w].call, &res.floor[w].call);
		samples_summary(&fs[w].start_hello, &res.floor[w].start_hello);
	}
	if (fork_run(floor_n, warmup, &ks) < 0)
		r = 1;
	samples_summary(&ks.pidfd, &res.kill_pidfd);
	samples_summary(&ks.reap, &res.kill_reap);
	samples_summary(&ks.fork, &res.fork);

	if (out) {
		if (write_file(out, write_markdown, &res) < 0)
			r = 1;
	} else {
		write_markdown(stdout, &res);
	}
	if (json && write_file(json, write_json, &res) < 0)
		r = 1;
	print_summary_line(&res);

	for (unsigned i = 0; i < n_runs; i++) {
		run_free(&runs[i]);
		run_free(&obs[i]);
	}
	for (unsigned k = 0; k < N_STARTS; k++) {
		samples_free(&fs[k].hello);
		samples_free(&fs[k].call);
		samples_free(&fs[k].start_hello);
	}
	samples_free(&ks.pidfd);
	samples_free(&ks.reap);
	samples_free(&ks.fork);
	return r;
}
