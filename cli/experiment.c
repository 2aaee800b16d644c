/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead experiment` (DESIGN §8): one workload, N jobs of one builtin with a crash rate,
 * run in each mode, and the comparison printed as one table (plus --json and --svg).
 *
 *   threads          bulkhead-worker --standalone threads: one process, a bare thread pool,
 *                    no supervisor. The first crash ends it; what it had not done is lost.
 *   threads+restart  the master, 1 worker x T threads
 *   processes        the master, T workers x 1 thread
 *   hybrid           the master, P workers x T/P threads (P: the divisor of T nearest T/2)
 *   fork-per-job     bulkhead-worker --standalone fork-per-job: a process per job, at most T
 *                    alive, 3 attempts per job
 *
 * The supervised modes run the same master as `bulkhead run`, in this process, on a config
 * built here (one [pool], one [job] group per million jobs, so job ids are 1..N in order) and
 * read back from the ledger and the master's stats. The standalone modes are child processes
 * whose counters survive their death in a memfd (common/standalone.h). Wall time is measured
 * here around each run, process start-up included.
 *
 * The common builtin argument crash=R (common/builtins.h) makes the same job ids crash in
 * every mode and on every attempt, so the modes see the same poison inputs. The ratio column
 * compares jobs/s to `threads` without crashes (an extra run when R > 0).
 *
 * Signals: the master blocks SIGINT, SIGTERM and SIGCHLD (sd-event wants them so); this file
 * blocks them from the start and waits for standalone children on a pidfd and a signalfd, so
 * Ctrl-C or SIGTERM stops the experiment in any mode (exit 1, nothing written).
 *
 * Logs: the master logs at `err` only during an experiment: a worker death per crash is the
 * experiment working, not news (`bulkhead run` shows those).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/experiment.h"
#include "common/builtins.h"
#include "common/log.h"
#include "common/standalone.h"
#include "common/strutil.h"
#include "common/units.h"
#include "config/config.h"
#include "daemon/ledger.h"
#include "daemon/master.h"
#include "daemon/spawn-worker.h"

#define EXP_JOBS_MAX 10000000ull
#define EXP_JOBS_DEFAULT 20000ull
#define EXP_THREADS_MAX 256
#define EXP_THREADS_DEFAULT 4u
#define EXP_ARGS_MAX 1024 /* bytes of all --arg together */
#define EXP_DEFAULT_JOB "spin"
#define EXP_DEFAULT_ARGS "us=100"
#define EXP_DEFAULT_CRASH_RATE "0.001"
#define EXP_GROUP_JOBS_MAX 1000000u /* a [job] group's count at most: more, more groups */
#define EXP_POOL "exp"
#define EXP_RESULT_FD 3 /* the standalone child's --result-fd */

static const char *const mode_names[_EXP_MODE_MAX + 1] = {
	[EXP_THREADS] = "threads",	     [EXP_THREADS_RESTART] = "threads+restart",
	[EXP_PROCESSES] = "processes",	     [EXP_HYBRID] = "hybrid",
	[EXP_FORK_PER_JOB] = "fork-per-job", [_EXP_MODE_MAX] = NULL,
};

struct experiment {
	uint64_t jobs;
	unsigned threads;
	enum bh_builtin builtin;
	char job[64]; /* "builtin:NAME" */
	char args[EXP_ARGS_MAX + 1]; /* the builtin's own args, as given */
	const char *crash_rate_text; /* passed on as crash=TEXT, as given */
	double crash_rate;
	enum experiment_mode modes[_EXP_MODE_MAX];
	unsigned n_modes;
	unsigned runs;
	const char *json_path;
	const char *svg_path;
	bool quiet;

	const char *worker;
	int sigfd;
	uint64_t crash_ids; /* ids in 1..jobs that crash=R picks */
	struct experiment_row rows[_EXP_MODE_MAX];
	struct experiment_row baseline; /* threads without crashes */
};

/* One run of one mode. */
struct run_result {
	uint64_t completed, failed, quarantined, cancelled, reruns, retries, restarts;
	double wall_s;
	char ended_by[32];
};

const char *experiment_mode_name(enum experiment_mode m)
{
	return (unsigned)m < _EXP_MODE_MAX ? mode_names[m] : "?";
}

/* --- the command line --- */

static void experiment_usage(FILE *f)
{
	fputs("Usage: bulkhead experiment [--jobs N] [--threads T] [--job builtin:NAME]\n"
	      "                           [--arg K=V]... [--crash-rate R] [--modes LIST]\n"
	      "                           [--runs K] [--json FILE] [--svg FILE] [--quiet]\n"
	      "Runs N jobs in each mode and compares them. Defaults: --jobs 20000 --threads 4\n"
	      "--job builtin:spin --arg us=100 --crash-rate 0.001 --runs 1 --modes all\n"
	      "(threads,threads+restart,processes,hybrid,fork-per-job).\n",
	      f);
}

static __attribute__((format(printf, 1, 2))) int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("bulkhead experiment: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	experiment_usage(stderr);
	return EXIT_USAGE;
}

/* "threads,processes" or "all" into e->modes, in the order given. */
static int parse_modes(struct experiment *e, const char *list)
{
	const char *p = list;

	e->n_modes = 0;
	if (strcmp(list, "all") == 0) {
		for (int m = 0; m < _EXP_MODE_MAX; m++)
			e->modes[e->n_modes++] = (enum experiment_mode)m;
		return 0;
	}
	for (;;) {
		size_t len = strcspn(p, ",");
		char word[64];
		int m;

		if (len == 0 || len >= sizeof(word))
			return usage_error("--modes %s: expected a comma-separated list of modes "
					   "(threads,threads+restart,processes,hybrid,"
					   "fork-per-job) or all",
					   list);
		memcpy(word, p, len);
		word[len] = '\0';
		for (m = 0; m < _EXP_MODE_MAX; m++)
			if (strcmp(word, mode_names[m]) == 0)
				break;
		if (m == _EXP_MODE_MAX) {
			const char *hint = str_did_you_mean(word, mode_names);

			if (hint)
				return usage_error("--modes %s: unknown mode '%s' (did you mean "
						   "'%s'?)",
						   list, word, hint);
			return usage_error("--modes %s: unknown mode '%s'; modes: threads "
					   "threads+restart processes hybrid fork-per-job, or all",
					   list, word);
		}
		for (unsigned i = 0; i < e->n_modes; i++)
			if (e->modes[i] == (enum experiment_mode)m)
				return usage_error("--modes %s: mode '%s' given twice", list, word);
		e->modes[e->n_modes++] = (enum experiment_mode)m;
		p += len;
		if (*p == '\0')
			return 0;
		p++;
	}
}

static int parse_job(struct experiment *e, const char *job)
{
	const char *names[_BH_BUILTIN_MAX + 1], *hint;
	int b;

	if (strncmp(job, "builtin:", 8) != 0)
		return usage_error("--job %s: expected builtin:NAME", job);
	b = bh_builtin_lookup(job + 8);
	if (b < 0) {
		for (int i = 0; i < _BH_BUILTIN_MAX; i++)
			names[i] = bh_builtin_table[i].name;
		names[_BH_BUILTIN_MAX] = NULL;
		hint = str_did_you_mean(job + 8, names);
		if (hint)
			return usage_error("--job %s: no such builtin (did you mean 'builtin:%s'?)",
					   job, hint);
		{
			char list[512] = "";

			for (int i = 0; i < _BH_BUILTIN_MAX; i++)
				str_printf(list + strlen(list), sizeof(list) - strlen(list), " %s",
					   names[i]);
			return usage_error("--job %s: no such builtin; builtins:%s", job, list);
		}
	}
	/* Jobs that cannot be timed in every mode. */
	if (b == BH_BUILTIN_DEADLOCK || b == BH_BUILTIN_LEAK || b == BH_BUILTIN_TLS)
		return usage_error("--job %s: not usable in an experiment: %s", job,
				   b == BH_BUILTIN_DEADLOCK ? "it never ends"
				   : b == BH_BUILTIN_LEAK
					   ? "it allocates until memory runs out"
					   : "it checks the supervised worker's job pool, "
					     "which the standalone modes do not have");
	e->builtin = (enum bh_builtin)b;
	snprintf(e->job, sizeof(e->job), "%s", job);
	return 0;
}

/* One --arg K=V, appended to e->args. */
static int add_arg(struct experiment *e, const char *kv)
{
	const char *eq = strchr(kv, '=');
	size_t len = strlen(e->args);

	if (!eq || eq == kv || kv[strcspn(kv, " \t\r\n")] != '\0')
		return usage_error("--arg %s: expected KEY=VALUE (no spaces)", kv);
	if ((size_t)(eq - kv) == strlen(BH_CRASH_ARG) && strncmp(kv, BH_CRASH_ARG, 5) == 0)
		return usage_error("--arg %s: use --crash-rate to set the crash rate", kv);
	if (len + (len > 0) + strlen(kv) > EXP_ARGS_MAX)
		return usage_error("--arg %s: the arguments are longer than %d bytes in all", kv,
				   EXP_ARGS_MAX);
	if (len > 0)
		e->args[len++] = ' ';
	memcpy(e->args + len, kv, strlen(kv) + 1);
	return 0;
}

/* 0 on success, else the exit code (usage), with the message written. */
static int parse_options(int argc, char **argv, struct experiment *e)
{
	static const struct option opts[] = {
		{ "jobs", required_argument, NULL, 'n' },
		{ "threads", required_argument, NULL, 't' },
		{ "job", required_argument, NULL, 'j' },
		{ "arg", required_argument, NULL, 'a' },
		{ "crash-rate", required_argument, NULL, 'c' },
		{ "modes", required_argument, NULL, 'm' },
		{ "runs", required_argument, NULL, 'k' },
		{ "json", required_argument, NULL, 'J' },
		{ "svg", required_argument, NULL, 'S' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *job = NULL;
	bool have_args = false;
	char err[256];
	uint64_t v;
	int o, r;

	e->jobs = EXP_JOBS_DEFAULT;
	e->threads = EXP_THREADS_DEFAULT;
	e->crash_rate_text = EXP_DEFAULT_CRASH_RATE;
	e->crash_rate = 0.001;
	e->runs = 1;
	r = parse_modes(e, "all");
	if (r)
		return r;
	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":qh", opts, NULL)) >= 0) {
		switch (o) {
		case 'n':
			if (parse_uint(optarg, 1, EXP_JOBS_MAX, &v) < 0)
				return usage_error("--jobs %s: expected an integer 1..%llu", optarg,
						   EXP_JOBS_MAX);
			e->jobs = v;
			break;
		case 't':
			if (parse_uint(optarg, 1, EXP_THREADS_MAX, &v) < 0)
				return usage_error("--threads %s: expected an integer 1..%d",
						   optarg, EXP_THREADS_MAX);
			e->threads = (unsigned)v;
			break;
		case 'j':
			job = optarg;
			break;
		case 'a':
			r = add_arg(e, optarg);
			if (r)
				return r;
			have_args = true;
			break;
		case 'c':
			if (parse_probability(optarg, &e->crash_rate) < 0)
				return usage_error("--crash-rate %s: expected a probability 0..1 "
						   "(0.001: one job in a thousand crashes)",
						   optarg);
			e->crash_rate_text = optarg;
			break;
		case 'm':
			r = parse_modes(e, optarg);
			if (r)
				return r;
			break;
		case 'k':
			if (parse_uint(optarg, 1, EXPERIMENT_RUNS_MAX, &v) < 0)
				return usage_error("--runs %s: expected an integer 1..%d", optarg,
						   EXPERIMENT_RUNS_MAX);
			e->runs = (unsigned)v;
			break;
		case 'J':
			e->json_path = optarg;
			break;
		case 'S':
			e->svg_path = optarg;
			break;
		case 'q':
			e->quiet = true;
			break;
		case 'h':
			experiment_usage(stdout);
			return -1;
		case ':':
			return usage_error("option '%s' needs an argument", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);

	r = parse_job(e, job ? job : "builtin:" EXP_DEFAULT_JOB);
	if (r)
		return r;
	if (!job && !have_args)
		snprintf(e->args, sizeof(e->args), "%s", EXP_DEFAULT_ARGS);
	if (e->builtin == BH_BUILTIN_HANG && !strstr(e->args, "ms="))
		return usage_error("--job builtin:hang needs --arg ms=N (it never ends otherwise)");
	if (bh_builtin_check_args(e->builtin, e->args, err, sizeof(err)) < 0)
		return usage_error("--arg: %s", err);
	return 0;
}

/* --- the runs --- */

static bool has_mode(const struct experiment *e, enum experiment_mode m)
{
	for (unsigned i = 0; i < e->n_modes; i++)
		if (e->modes[i] == m)
			return true;
	return false;
}

/* The divisor of t nearest t/2 (the smaller one on a tie): hybrid's worker count. */
static unsigned hybrid_workers(unsigned t)
{
	unsigned best = 1;

	for (unsigned d = 1; d <= t; d++)
		if (t % d == 0 && abs((int)(2 * d) - (int)t) < abs((int)(2 * best) - (int)t))
			best = d;
	return best;
}

static void mode_shape(const struct experiment *e, enum experiment_mode m, unsigned *ret_workers,
		       unsigned *ret_threads)
{
	unsigned t = e->threads;

	switch (m) {
	case EXP_THREADS:
	case EXP_THREADS_RESTART:
		*ret_workers = 1;
		*ret_threads = t;
		break;
	case EXP_PROCESSES:
	case EXP_FORK_PER_JOB:
		*ret_workers = t;
		*ret_threads = 1;
		break;
	case EXP_HYBRID:
	default:
		*ret_workers = hybrid_workers(t);
		*ret_threads = t / *ret_workers;
		break;
	}
}

/* The full args of a run: the builtin's own, plus crash=R when crashes are wanted. */
static void run_args(const struct experiment *e, bool crash, char *buf, size_t size)
{
	if (crash && e->crash_rate > 0)
		str_printf(buf, size, "%s%s%s=%s", e->args, e->args[0] ? " " : "", BH_CRASH_ARG,
			   e->crash_rate_text);
	else
		str_printf(buf, size, "%s", e->args);
}

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/*
 * Waits for child pid to end and reaps it; -EINTR (and the child killed and reaped) if
 * SIGINT or SIGTERM came first.
 */
static int wait_child(struct experiment *e, pid_t pid, int *ret_status)
{
	int pidfd = pidfd_open_(pid), r = 0;

	while (pidfd >= 0) {
		struct pollfd pfd[2] = { { .fd = pidfd, .events = POLLIN },
					 { .fd = e->sigfd, .events = POLLIN } };

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			(void)!read(e->sigfd, &si, sizeof(si));
			kill(pid, SIGKILL);
			r = -EINTR;
			break;
		}
		if (pfd[0].revents)
			break;
	}
	if (pidfd >= 0)
		close(pidfd);
	while (waitpid(pid, ret_status, 0) < 0)
		if (errno != EINTR)
			return r < 0 ? r : -errno;
	return r;
}

/* Runs `bulkhead-worker --standalone MODE` and reads its counters. */
static int run_standalone(struct experiment *e, bool fork_per_job, bool crash,
			  struct run_result *res)
{
	char jobs[24], threads[16], fdarg[16], args[EXP_ARGS_MAX + 64], sig[16];
	const char *argv[] = { "bulkhead-worker",
			       "--standalone",
			       fork_per_job ? BH_STANDALONE_FORK_PER_JOB : BH_STANDALONE_THREADS,
			       "--jobs",
			       jobs,
			       "--threads",
			       threads,
			       "--run",
			       e->job,
			       "--args",
			       args,
			       "--result-fd",
			       fdarg,
			       NULL };
	size_t size = bh_standalone_size(fork_per_job ? 1 : e->threads);
	struct bh_standalone_slot *slots;
	usec_t t0;
	pid_t pid;
	int fd, st, r;

	snprintf(jobs, sizeof(jobs), "%" PRIu64, e->jobs);
	snprintf(threads, sizeof(threads), "%u", e->threads);
	snprintf(fdarg, sizeof(fdarg), "%d", EXP_RESULT_FD);
	run_args(e, crash, args, sizeof(args));

	fd = memfd_create("bulkhead-experiment", MFD_CLOEXEC);
	if (fd < 0)
		return log_error_errno(-errno, "memfd_create");
	if (ftruncate(fd, (off_t)size) < 0) {
		r = log_error_errno(-errno, "cannot size the result memfd");
		close(fd);
		return r;
	}
	fflush(NULL);
	t0 = now_usec();
	pid = fork();
	if (pid < 0) {
		r = log_error_errno(-errno, "fork");
		close(fd);
		return r;
	}
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (fd == EXP_RESULT_FD ? fcntl(fd, F_SETFD, 0) < 0 : dup2(fd, EXP_RESULT_FD) < 0)
			_exit(127);
		execv(e->worker, (char *const *)argv);
		fprintf(stderr, "bulkhead: cannot run %s: %s\n", e->worker, strerror(errno));
		_exit(127);
	}
	r = wait_child(e, pid, &st);
	res->wall_s = (double)(now_usec() - t0) / 1e6;
	if (r < 0) {
		close(fd);
		return r;
	}

	slots = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (slots == MAP_FAILED)
		return log_error_errno(-errno, "cannot map the result memfd");
	for (size_t i = 0; i < size / sizeof(*slots); i++) {
		res->completed += atomic_load_explicit(&slots[i].done, memory_order_relaxed);
		res->failed += atomic_load_explicit(&slots[i].failed, memory_order_relaxed);
		res->quarantined +=
			atomic_load_explicit(&slots[i].quarantined, memory_order_relaxed);
		res->retries += atomic_load_explicit(&slots[i].retries, memory_order_relaxed);
	}
	munmap(slots, size);

	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFSIGNALED(st))
		snprintf(res->ended_by, sizeof(res->ended_by), "%s",
			 signal_name(WTERMSIG(st), sig, sizeof(sig)));
	else
		snprintf(res->ended_by, sizeof(res->ended_by), "exit %d", WEXITSTATUS(st));
	/* Without a supervisor, a crash ends the threads mode: that is what it measures. */
	if (!fork_per_job && !(WIFEXITED(st) && WEXITSTATUS(st) == 127))
		return 0;
	log_error("%s --standalone %s ended by %s", e->worker, argv[2], res->ended_by);
	return -ECHILD;
}

/* The config of a supervised mode: one pool, the jobs in groups of at most a million. */
static char *master_config_text(const struct experiment *e, unsigned workers, unsigned threads)
{
	char args[EXP_ARGS_MAX + 64], *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	uint64_t left = e->jobs;

	if (!f)
		return NULL;
	run_args(e, true, args, sizeof(args));
	fprintf(f, "[supervisor]\nlog_level = err\n\n[pool %s]\nworkers = %u\nthreads = %u\n",
		EXP_POOL, workers, threads);
	for (unsigned g = 1; left > 0; g++) {
		unsigned count = left > EXP_GROUP_JOBS_MAX ? EXP_GROUP_JOBS_MAX : (unsigned)left;

		fprintf(f, "\n[job job%u]\npool = %s\nrun = %s\nargs = %s\ncount = %u\n", g,
			EXP_POOL, e->job, args, count);
		left -= count;
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static int run_supervised(struct experiment *e, unsigned workers, unsigned threads,
			  struct run_result *res)
{
	struct config *c = NULL;
	struct master *m = NULL;
	const struct master_stats *ms;
	const struct ledger_stats *s;
	usec_t t0;
	char *text;
	int r;

	text = master_config_text(e, workers, threads);
	if (!text)
		return log_error_errno(-ENOMEM, "cannot build the config");
	/* Loaded as `bulkhead run` loads a file (builtins only: the probe has nothing to do). */
	r = config_load_checked("experiment", text, e->worker, 0, &c);
	free(text);
	if (r != 0) {
		log_error("the experiment's config is wrong (a bug): its errors are above");
		return -EINVAL;
	}

	t0 = now_usec();
	r = master_new(c, NULL, &m);
	if (r < 0) {
		config_free(c);
		return log_error_errno(r, "cannot set up the master");
	}
	r = master_run(m);
	res->wall_s = (double)(now_usec() - t0) / 1e6;
	if (r < 0) {
		master_free(m);
		return log_error_errno(r, "event loop failed");
	}
	ms = master_stats(m);
	s = ledger_stats(master_ledger(m));
	res->completed = s->by_state[JOB_DONE];
	res->failed = s->by_state[JOB_FAILED];
	res->quarantined = s->by_state[JOB_CRASHED] + s->by_state[JOB_TIMED_OUT];
	res->cancelled = s->by_state[JOB_CANCELLED]; /* a pool that failed, or a stop */
	res->reruns = s->reruns_bystander + s->reruns_suspect;
	res->retries = s->culprits > res->quarantined ? s->culprits - res->quarantined : 0;
	res->restarts = ms->restarts;
	r = ms->interrupted ? -EINTR : 0;
	master_free(m);
	return r;
}

static int run_once(struct experiment *e, enum experiment_mode mode, bool crash,
		    struct run_result *res)
{
	unsigned workers, threads;

	*res = (struct run_result){ 0 };
	mode_shape(e, mode, &workers, &threads);
	switch (mode) {
	case EXP_THREADS:
		return run_standalone(e, false, crash, res);
	case EXP_FORK_PER_JOB:
		return run_standalone(e, true, crash, res);
	default:
		return run_supervised(e, workers, threads, res);
	}
}

static int compare_wall(const void *a, const void *b)
{
	const struct run_result *x = *(const struct run_result *const *)a;
	const struct run_result *y = *(const struct run_result *const *)b;

	return x->wall_s < y->wall_s ? -1 : x->wall_s > y->wall_s;
}

/* Runs one mode e->runs times into row: the median run's counts, every wall time. */
static int run_mode(struct experiment *e, enum experiment_mode mode, bool crash,
		    struct experiment_row *row)
{
	struct run_result res[EXPERIMENT_RUNS_MAX], *sorted[EXPERIMENT_RUNS_MAX], *med;
	int r;

	*row = (struct experiment_row){ .mode = mode, .runs = e->runs };
	mode_shape(e, mode, &row->workers, &row->threads);
	for (unsigned k = 0; k < e->runs; k++) {
		if (!e->quiet) {
			char of[32] = "";

			if (e->runs > 1)
				snprintf(of, sizeof(of), ", run %u of %u", k + 1, e->runs);
			fprintf(stderr, "running %s%s (%u × %u)%s...\n", experiment_mode_name(mode),
				crash ? "" : " without crashes", row->workers, row->threads, of);
		}
		r = run_once(e, mode, crash, &res[k]);
		if (r < 0)
			return r;
		row->wall_s_all[k] = res[k].wall_s;
		sorted[k] = &res[k];
	}
	qsort(sorted, e->runs, sizeof(sorted[0]), compare_wall);
	med = sorted[(e->runs - 1) / 2];
	row->completed = med->completed;
	row->failed = med->failed;
	row->quarantined = med->quarantined;
	row->cancelled = med->cancelled;
	row->lost = e->jobs - med->completed - med->failed - med->quarantined - med->cancelled;
	row->reruns = med->reruns;
	row->retries = med->retries;
	row->restarts = med->restarts;
	row->wall_s = med->wall_s;
	row->jobs_per_s = med->wall_s > 0 ? (double)med->completed / med->wall_s : 0;
	snprintf(row->ended_by, sizeof(row->ended_by), "%s", med->ended_by);
	return 0;
}

/* --- output --- */

static void print_table(FILE *f, const struct experiment *e)
{
	const struct experiment_row *t = NULL;

	fprintf(f,
		"workload: %" PRIu64 " × %s%s%s, crash rate %s (%" PRIu64
		" job%s crash on every attempt), %u thread%s, %u run%s per mode\n\n",
		e->jobs, e->job, e->args[0] ? " " : "", e->args, e->crash_rate_text, e->crash_ids,
		e->crash_ids == 1 ? "" : "s", e->threads, e->threads == 1 ? "" : "s", e->runs,
		e->runs == 1 ? "" : "s");
	fprintf(f, "%-15s %7s %7s %10s %6s %12s %8s %9s %8s %9s %6s\n", "MODE", "WORKERS",
		"THREADS", "COMPLETED", "LOST", "QUARANTINED", "RE-RUNS", "RESTARTS", "WALL_S",
		"JOBS/S", "RATIO");
	for (unsigned i = 0; i < e->n_modes; i++) {
		const struct experiment_row *r = &e->rows[e->modes[i]];

		fprintf(f,
			"%-15s %7u %7u %10" PRIu64 " %6" PRIu64 " %12" PRIu64 " %8" PRIu64
			" %9" PRIu64 " %8.2f %9.0f %6.2f\n",
			experiment_mode_name(r->mode), r->workers, r->threads, r->completed,
			r->lost, r->quarantined, r->reruns, r->restarts, r->wall_s, r->jobs_per_s,
			r->ratio);
		if (r->mode == EXP_THREADS)
			t = r;
	}
	fprintf(f,
		"\nRATIO: jobs/s relative to crash-free threads (one process, %u thread%s, "
		"no supervisor): %.0f jobs/s%s.\n",
		e->threads, e->threads == 1 ? "" : "s", e->baseline.jobs_per_s,
		e->runs > 1 ? " (median run)" : "");
	if (t && t->ended_by[0])
		fprintf(f,
			"threads: the process died (%s) after %" PRIu64 " of %" PRIu64
			" jobs; the rest are lost.\n",
			t->ended_by, t->completed + t->failed, e->jobs);
	if (has_mode(e, EXP_HYBRID) && e->threads < 4)
		fprintf(f, "hybrid: with %u thread%s it is %u × %u, the same shape as %s.\n",
			e->threads, e->threads == 1 ? "" : "s", e->rows[EXP_HYBRID].workers,
			e->rows[EXP_HYBRID].threads,
			e->rows[EXP_HYBRID].workers == 1 ? "threads+restart" : "processes");
	for (unsigned i = 0; i < e->n_modes; i++) {
		const struct experiment_row *r = &e->rows[e->modes[i]];

		if (r->failed > 0)
			fprintf(f, "%s: %" PRIu64 " job%s failed (returned non-zero).\n",
				experiment_mode_name(r->mode), r->failed,
				r->failed == 1 ? "" : "s");
		if (r->cancelled > 0)
			fprintf(f, "%s: %" PRIu64 " job%s cancelled (the pool failed).\n",
				experiment_mode_name(r->mode), r->cancelled,
				r->cancelled == 1 ? "" : "s");
	}
}

static json_object *json_row(const struct experiment_row *r)
{
	json_object *o = json_object_new_object(), *walls = json_object_new_array();

	json_object_object_add(o, "mode", json_object_new_string(experiment_mode_name(r->mode)));
	json_object_object_add(o, "workers", json_object_new_int((int)r->workers));
	json_object_object_add(o, "threads", json_object_new_int((int)r->threads));
	json_object_object_add(o, "completed", json_object_new_int64((int64_t)r->completed));
	json_object_object_add(o, "failed", json_object_new_int64((int64_t)r->failed));
	json_object_object_add(o, "lost", json_object_new_int64((int64_t)r->lost));
	json_object_object_add(o, "quarantined", json_object_new_int64((int64_t)r->quarantined));
	json_object_object_add(o, "cancelled", json_object_new_int64((int64_t)r->cancelled));
	json_object_object_add(o, "reruns", json_object_new_int64((int64_t)r->reruns));
	json_object_object_add(o, "retries", json_object_new_int64((int64_t)r->retries));
	json_object_object_add(o, "restarts", json_object_new_int64((int64_t)r->restarts));
	json_object_object_add(o, "wall_s", json_object_new_double(r->wall_s));
	for (unsigned k = 0; k < r->runs; k++)
		json_object_array_add(walls, json_object_new_double(r->wall_s_all[k]));
	json_object_object_add(o, "wall_s_all", walls);
	json_object_object_add(o, "jobs_per_s", json_object_new_double(r->jobs_per_s));
	json_object_object_add(o, "ratio", json_object_new_double(r->ratio));
	json_object_object_add(o, "ended_by",
			       r->ended_by[0] ? json_object_new_string(r->ended_by) : NULL);
	return o;
}

static int write_json(const struct experiment *e, const char *path)
{
	json_object *root = json_object_new_object(), *w = json_object_new_object();
	json_object *mach = json_object_new_object(), *modes = json_object_new_array();
	struct utsname u;
	int r = 0;

	json_object_object_add(w, "jobs", json_object_new_int64((int64_t)e->jobs));
	json_object_object_add(w, "threads", json_object_new_int((int)e->threads));
	json_object_object_add(w, "job", json_object_new_string(e->job));
	json_object_object_add(w, "args", json_object_new_string(e->args));
	json_object_object_add(w, "crash_rate", json_object_new_double(e->crash_rate));
	json_object_object_add(w, "crash_ids", json_object_new_int64((int64_t)e->crash_ids));
	json_object_object_add(w, "runs", json_object_new_int((int)e->runs));
	json_object_object_add(root, "workload", w);
	json_object_object_add(mach, "cpus",
			       json_object_new_int((int)sysconf(_SC_NPROCESSORS_ONLN)));
	json_object_object_add(mach, "kernel",
			       json_object_new_string(uname(&u) == 0 ? u.release : ""));
	json_object_object_add(root, "machine", mach);
	json_object_object_add(root, "baseline_jobs_per_s",
			       json_object_new_double(e->baseline.jobs_per_s));
	for (unsigned i = 0; i < e->n_modes; i++)
		json_object_array_add(modes, json_row(&e->rows[e->modes[i]]));
	json_object_object_add(root, "modes", modes);
	if (json_object_to_file_ext(path, root, JSON_C_TO_STRING_PRETTY) < 0)
		r = errno ? -errno : -EIO;
	json_object_put(root);
	return r;
}

static int write_svg(const struct experiment *e, const char *path)
{
	struct experiment_row rows[_EXP_MODE_MAX];
	char title[EXP_ARGS_MAX + 256], subtitle[256];
	struct utsname u;
	FILE *f;
	int r;

	for (unsigned i = 0; i < e->n_modes; i++)
		rows[i] = e->rows[e->modes[i]];
	snprintf(title, sizeof(title), "%" PRIu64 " × %s%s%s, crash rate %s, %u threads", e->jobs,
		 e->job, e->args[0] ? " " : "", e->args, e->crash_rate_text, e->threads);
	snprintf(subtitle, sizeof(subtitle),
		 "%ld CPUs, Linux %s; %u run%s per mode; ratio (×): jobs/s over crash-free threads",
		 sysconf(_SC_NPROCESSORS_ONLN), uname(&u) == 0 ? u.release : "?", e->runs,
		 e->runs == 1 ? "" : "s (median)");
	f = fopen(path, "we");
	if (!f)
		return -errno;
	r = experiment_chart_svg(f, &(struct experiment_chart){
					    .title = title,
					    .subtitle = subtitle,
					    .baseline_jobs_per_s = e->baseline.jobs_per_s,
					    .rows = rows,
					    .n_rows = e->n_modes,
				    });
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	return r;
}

/* --- the command --- */

static int run_all(struct experiment *e)
{
	bool own_baseline = e->crash_rate > 0 || !has_mode(e, EXP_THREADS);
	int r;

	if (own_baseline) {
		r = run_mode(e, EXP_THREADS, false, &e->baseline);
		if (r < 0)
			return r;
	}
	for (unsigned i = 0; i < e->n_modes; i++) {
		r = run_mode(e, e->modes[i], true, &e->rows[e->modes[i]]);
		if (r < 0)
			return r;
	}
	if (!own_baseline)
		e->baseline = e->rows[EXP_THREADS];
	for (unsigned i = 0; i < e->n_modes; i++) {
		struct experiment_row *row = &e->rows[e->modes[i]];

		row->ratio =
			e->baseline.jobs_per_s > 0 ? row->jobs_per_s / e->baseline.jobs_per_s : 0;
	}
	return 0;
}

int cmd_experiment(int argc, char **argv)
{
	struct experiment e = { .sigfd = -1 };
	sigset_t ss;
	int r;

	r = parse_options(argc, argv, &e);
	if (r)
		return r < 0 ? 0 : r;
	e.worker = spawn_worker_path();
	if (access(e.worker, X_OK) < 0) {
		log_error("cannot run the worker %s: %s (set BULKHEAD_WORKER?)", e.worker,
			  strerror(errno));
		return EXIT_NOT_EXPECTED;
	}
	for (uint64_t id = 1; id <= e.jobs; id++)
		e.crash_ids += bh_crash_hit(id, e.crash_rate);

	/* As the master does (it needs them blocked), from the start: see the top. */
	sigemptyset(&ss);
	sigaddset(&ss, SIGCHLD);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	sigdelset(&ss, SIGCHLD);
	e.sigfd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
	if (e.sigfd < 0) {
		log_error_errno(-errno, "signalfd");
		return EXIT_NOT_EXPECTED;
	}
	log_set_max_level(LOG_ERR);

	r = run_all(&e);
	close(e.sigfd);
	if (r == -EINTR) {
		log_error("interrupted");
		return EXIT_NOT_EXPECTED;
	}
	if (r < 0)
		return EXIT_NOT_EXPECTED;

	print_table(stdout, &e);
	fflush(stdout);
	if (e.json_path) {
		r = write_json(&e, e.json_path);
		if (r < 0) {
			log_error_errno(r, "cannot write %s", e.json_path);
			return EXIT_IO;
		}
	}
	if (e.svg_path) {
		r = write_svg(&e, e.svg_path);
		if (r < 0) {
			log_error_errno(r, "cannot write %s", e.svg_path);
			return EXIT_IO;
		}
	}
	return 0;
}
