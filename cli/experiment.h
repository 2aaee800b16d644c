/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead experiment` (experiment.c) and its chart (experiment-chart.c): one workload run
 * in several modes, and what each run measured.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define EXPERIMENT_RUNS_MAX 100

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
	double wall_s, jobs_per_s, ratio;
	double wall_s_all[EXPERIMENT_RUNS_MAX];
	unsigned runs;
	char ended_by[32]; /* threads: how the process died ("SIGSEGV", "exit 1"), or "" */
};

struct experiment_chart {
	const char *title; /* first line: the workload */
	const char *subtitle; /* second line: the machine, what the ratio means */
	double baseline_jobs_per_s;
	const struct experiment_row *rows;
	unsigned n_rows;
};

/* "threads", "threads+restart", ... */
const char *experiment_mode_name(enum experiment_mode m);

/* Writes the chart as a self-contained SVG document. Returns 0 or -errno (of the stream). */
int experiment_chart_svg(FILE *f, const struct experiment_chart *c);
