/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead experiment`: running one mode (see experiment.c for the modes).
 *
 * The standalone modes (threads, fork-per-job) are `bulkhead-worker --standalone` children,
 * whose counters survive their death in a memfd (common/standalone.h); this process waits for
 * them on a pidfd and the experiment's signalfd, so Ctrl-C or SIGTERM kills and reaps the
 * child and ends the run with -EINTR. The supervised modes run the same master as `bulkhead
 * run`, in this process, on a config built here (one [pool], one [job] group per million
 * jobs, so job ids are 1..N in order), and read the ledger and the master's stats.
 *
 * Each mode runs e->runs times, the modes in turns (run 1 of every mode, then run 2...); a
 * mode's row keeps its median run's counts (by wall time) and every run's wall time, measured
 * here around the run, process start-up included.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/experiment.h"
#include "common/builtins.h"
#include "common/log.h"
#include "common/standalone.h"
#include "common/strutil.h"
#include "common/units.h"
#include "config/config.h"
#include "daemon/master.h"

#define EXP_GROUP_JOBS_MAX 1000000u /* a [job] group's count at most: more, more groups */
#define EXP_POOL "exp"
#define EXP_RESULT_FD 3 /* the standalone child's --result-fd */

/* One run of one mode. */
struct run_result {
	uint64_t completed, failed, quarantined, cancelled, reruns, retries, restarts;
	uint64_t crashes; /* worker deaths (a spare's too: its deaths are no slot restarts) and
			     crashes of contained runs */
	double wall_s;
	char ended_by[32];
};

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
	/* spare = yes: a crash's restart is a takeover by the warm spare (daemon/spare.c). */
	fprintf(f,
		"[supervisor]\nlog_level = err\n\n[pool %s]\nworkers = %u\nthreads = %u\n"
		"spare = yes\n",
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
	s = master_totals(m);
	res->completed = s->by_state[JOB_DONE];
	res->failed = s->by_state[JOB_FAILED];
	res->quarantined = s->by_state[JOB_CRASHED] + s->by_state[JOB_TIMED_OUT];
	res->cancelled = s->by_state[JOB_CANCELLED]; /* a pool that failed, or a stop */
	res->reruns = s->reruns_bystander + s->reruns_suspect;
	res->retries = s->culprits > res->quarantined ? s->culprits - res->quarantined : 0;
	res->restarts = ms->restarts;
	res->crashes = ms->deaths_by_exit + ms->deaths_by_memory + ms->contained_crashes;
	for (int i = 0; i < 65; i++)
		res->crashes += ms->deaths_by_signal[i];
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

/* The row of a mode from its runs' results: the median run's counts, every wall time. */
static void row_finish(struct experiment *e, struct experiment_row *row,
		       const struct run_result *res)
{
	const struct run_result *sorted[EXPERIMENT_RUNS_MAX], *med;

	for (unsigned k = 0; k < e->runs; k++) {
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
	row->crashes = med->crashes;
	row->wall_s = med->wall_s;
	row->jobs_per_s = med->wall_s > 0 ? (double)med->completed / med->wall_s : 0;
	snprintf(row->ended_by, sizeof(row->ended_by), "%s", med->ended_by);
}

int experiment_run_modes(struct experiment *e, const struct experiment_job *jobs, unsigned n)
{
	struct run_result(*res)[EXPERIMENT_RUNS_MAX] = calloc(n ? n : 1, sizeof(*res));
	int r = 0;

	if (!res)
		return log_error_errno(-ENOMEM, "no memory for the experiment's results");
	for (unsigned i = 0; i < n; i++) {
		*jobs[i].row = (struct experiment_row){ .mode = jobs[i].mode, .runs = e->runs };
		mode_shape(e, jobs[i].mode, &jobs[i].row->workers, &jobs[i].row->threads);
	}
	for (unsigned k = 0; k < e->runs && r >= 0; k++)
		for (unsigned i = 0; i < n && r >= 0; i++) {
			const struct experiment_row *row = jobs[i].row;

			if (!e->quiet) {
				char of[32] = "";

				if (e->runs > 1)
					snprintf(of, sizeof(of), ", run %u of %u", k + 1, e->runs);
				fprintf(stderr, "running %s%s (%u × %u)%s...\n",
					experiment_mode_name(jobs[i].mode),
					jobs[i].crash ? "" : " without crashes", row->workers,
					row->threads, of);
			}
			r = run_once(e, jobs[i].mode, jobs[i].crash, &res[i][k]);
		}
	if (r >= 0)
		for (unsigned i = 0; i < n; i++)
			row_finish(e, jobs[i].row, res[i]);
	free(res);
	return r;
}
