/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead experiment`: one workload run in several modes, and what each run measured.
 * Shared by its files: the command (experiment.c), one mode's runs (experiment-run.c), the
 * table and files it writes (experiment-report.c) and the chart (experiment-chart.c).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/builtins.h"

#define EXPERIMENT_RUNS_MAX 100
#define EXP_ARGS_MAX 1024 /* bytes of all --arg together */

enum experiment_mode {
	EXP_THREADS, /* one process, bare pthread pool, no supervisor */
	EXP_THREADS_RESTART, /* the master, 1 worker x T threads */
	EXP_PROCESSES, /* the master, T workers x 1 thread */
	EXP_HYBRID, /* the master, P workers x T/P threads */
	EXP_FORK_PER_JOB, /* one process per job, at most T at once, no supervisor */
	_EXP_MODE_MAX,
};

/* What one mode measured: the counts of its median run, every run's wall time. */
struct experiment_row {
	enum experiment_mode mode;
	unsigned workers, threads;
	uint64_t completed, failed, lost, quarantined, cancelled, reruns, retries, restarts;
	uint64_t crashes; /* supervised: worker deaths (the spare's included) and contained
			     crashes (a retry's, in a throwaway child of its worker) */
	double wall_s, jobs_per_s, ratio;
	double wall_s_all[EXPERIMENT_RUNS_MAX];
	unsigned runs;
	char ended_by[32]; /* threads: how the process died ("SIGSEGV", "exit 1"), or "" */
};

struct experiment_chart {
	const char *title; /* first line: the workload */
	const char *subtitle; /* second line: the machine, what the ratio means */
	double baseline_jobs_per_s;
	uint64_t jobs; /* of the workload: a mode that died shows how many of them it completed */
	const struct experiment_row *rows;
	unsigned n_rows;
};

/* One experiment: what the command line asked for, and what each mode measured. */
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

/* "threads", "threads+restart", ... */
const char *experiment_mode_name(enum experiment_mode m);
/* Whether mode m was asked for. */
bool experiment_has_mode(const struct experiment *e, enum experiment_mode m);

/* One mode to run, with crash=R in the job's args or not, and the row it fills. */
struct experiment_job {
	enum experiment_mode mode;
	bool crash;
	struct experiment_row *row;
};

/*
 * Runs each of jobs[0..n) e->runs times, round by round: every mode's run k before any mode's
 * run k + 1, so that a machine that gets slower or faster meanwhile weighs on every mode alike
 * (the ratios compare medians of runs spread over the same time). Each row gets its median
 * run's counts and every run's wall time. Returns 0, -EINTR if SIGINT or SIGTERM came (on
 * e->sigfd), or another -errno (logged).
 */
int experiment_run_modes(struct experiment *e, const struct experiment_job *jobs, unsigned n);

/* The comparison table, and notes on what its rows hide. */
void experiment_print_table(FILE *f, const struct experiment *e);
/* --json FILE and --svg FILE. Return 0 or -errno. */
int experiment_write_json(const struct experiment *e, const char *path);
int experiment_write_svg(const struct experiment *e, const char *path);

/* Writes the chart as a self-contained SVG document. Returns 0 or -errno (of the stream). */
int experiment_chart_svg(FILE *f, const struct experiment_chart *c);
