/* SPDX-License-Identifier: MIT */
/*
 * bench-restart's pieces (bench-restart.c: the runs and the floors, the command line;
 * bench-restart-args.c: the command line's values;
 * bench-restart-report.c: the summaries, restart.md's tables and the JSON for bench/run).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "config/config.h"
#include "daemon/master.h"

struct samples {
	double *v; /* microseconds */
	size_t n, cap;
};

struct summary {
	size_t n;
	double median, p90, p99, min, max;
};

/* One master run: `workers` workers, `kills` measured kills after `warmup` unmeasured ones. */
struct restart_run {
	struct master *m;
	unsigned workers, threads, kills, warmup;
	enum worker_start start;
	bool observe; /* time the steps in between too (see on_post) */
	bool spare; /* [pool] spare = yes: a kill waits for the spare to be ready */
	bool kick_waits; /* the next kill waits for the spare's HELLO */
	unsigned n_ready; /* first HELLOs seen */
	bool started, stopping;
	unsigned next_slot, killed_slot;
	pid_t killed_pid; /* 0: no kill outstanding */
	uint64_t t0; /* ns, just before kill() */
	uint64_t t_dead; /* ns, first look after the master handled the death; 0: not yet */
	uint64_t t_spawn; /* ns, first look after the replacement was spawned; 0: not yet */
	unsigned done; /* kills whose replacement said HELLO */
	sd_event_source *kick, *guard, *post;
	struct samples lat; /* kill -> HELLO read */
	struct samples dead; /* kill -> death handled */
	struct samples spawn; /* death handled -> replacement spawned */
	struct samples hello; /* replacement spawned -> HELLO read */
	int error; /* first error, -errno */
	const char *error_what;
	/* Read after the run. */
	uint64_t restarts, worker_faults;
	char pool_state[16];
};

#define N_STARTS 2 /* enum worker_start: fork-server, exec */

struct floor_samples {
	struct samples hello; /* start called -> HELLO read */
	struct samples call; /* start called -> returned (fork or exec done) */
	struct samples start_hello; /* start returned -> HELLO read (worker start-up) */
};

struct kill_samples {
	struct samples pidfd; /* kill() -> pidfd readable */
	struct samples reap; /* kill() -> waitpid() returned */
	struct samples fork; /* fork() -> child _exit(0) -> waitpid() returned */
};

/* What one master run gives, summarised. */
struct run_summary {
	struct summary lat, dead, spawn, hello;
};

struct floor_summary {
	bool ok;
	struct summary hello, call, start_hello;
};

struct results {
	unsigned n_runs; /* pool sizes × ways to start */
	const struct restart_run *runs, *obs; /* plain and observed runs */
	const struct run_summary *sum, *osum;
	unsigned threads, kills, warmup, floor_n;
	bool spare; /* --spare */
	bool floor_wanted[N_STARTS];
	struct floor_summary floor[N_STARTS]; /* by enum worker_start */
	struct summary kill_pidfd, kill_reap, fork;
};


/* bench-restart.c */
void samples_free(struct samples *s);
void samples_summary(struct samples *s, struct summary *ret);
const char *start_name(enum worker_start start);

/* bench-restart-args.c */
#define POOL_SIZES_MAX 8 /* entries of --workers */
#define POOL_WORKERS_MAX 1024
bool arg_uint(const char *s, unsigned min, unsigned max, unsigned *ret);
bool arg_sizes(char *s, unsigned *sizes, unsigned *n); /* "1,4": at most POOL_SIZES_MAX */
bool arg_starts(char *s, enum worker_start *starts, unsigned *n); /* "fork-server,exec" */
const char *default_worker(void); /* bulkhead-worker at the top of the build tree, or NULL */

/* bench-restart-report.c */
void summarise_run(struct restart_run *r, struct run_summary *ret);
void run_free(struct restart_run *r);
void write_markdown(FILE *f, const struct results *res);
void write_json(FILE *f, const struct results *res);
void print_summary_line(const struct results *res);
/* Writes res to path with writer; 0, or -EIO (said on stderr). */
int write_file(const char *path, void (*writer)(FILE *, const struct results *),
	       const struct results *res);
