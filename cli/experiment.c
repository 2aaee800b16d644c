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
 *
 * This file is the command: its options, the order of the runs, the ratio. One mode's runs
 * are experiment-run.c's; the table, --json and --svg are experiment-report.c's (the chart
 * itself experiment-chart.c's).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/experiment.h"
#include "common/builtins.h"
#include "common/log.h"
#include "common/strutil.h"
#include "common/units.h"
#include "daemon/spawn-worker.h"

#define EXP_JOBS_MAX 10000000ull
#define EXP_JOBS_DEFAULT 20000ull
#define EXP_THREADS_MAX 256
#define EXP_THREADS_DEFAULT 4u
#define EXP_DEFAULT_JOB "spin"
#define EXP_DEFAULT_ARGS "us=100"
#define EXP_DEFAULT_CRASH_RATE "0.001"

static const char *const mode_names[_EXP_MODE_MAX + 1] = {
	[EXP_THREADS] = "threads",	     [EXP_THREADS_RESTART] = "threads+restart",
	[EXP_PROCESSES] = "processes",	     [EXP_HYBRID] = "hybrid",
	[EXP_FORK_PER_JOB] = "fork-per-job", [_EXP_MODE_MAX] = NULL,
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

bool experiment_has_mode(const struct experiment *e, enum experiment_mode m)
{
	for (unsigned i = 0; i < e->n_modes; i++)
		if (e->modes[i] == m)
			return true;
	return false;
}

/* --- the command --- */

static int run_all(struct experiment *e)
{
	bool own_baseline = e->crash_rate > 0 || !experiment_has_mode(e, EXP_THREADS);
	struct experiment_job jobs[_EXP_MODE_MAX + 1];
	unsigned n = 0;
	int r;

	if (own_baseline)
		jobs[n++] = (struct experiment_job){ EXP_THREADS, false, &e->baseline };
	for (unsigned i = 0; i < e->n_modes; i++)
		jobs[n++] = (struct experiment_job){ e->modes[i], true, &e->rows[e->modes[i]] };
	r = experiment_run_modes(e, jobs, n);
	if (r < 0)
		return r;
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
	if ((e.json_path && cli_check_output_path("--json", e.json_path) < 0) ||
	    (e.svg_path && cli_check_output_path("--svg", e.svg_path) < 0))
		return EXIT_IO;
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

	experiment_print_table(stdout, &e);
	fflush(stdout);
	if (e.json_path) {
		r = experiment_write_json(&e, e.json_path);
		if (r < 0) {
			log_error_errno(r, "cannot write %s", e.json_path);
			return EXIT_IO;
		}
	}
	if (e.svg_path) {
		r = experiment_write_svg(&e, e.svg_path);
		if (r < 0) {
			log_error_errno(r, "cannot write %s", e.svg_path);
			return EXIT_IO;
		}
	}
	return 0;
}
