/* SPDX-License-Identifier: MIT */
/*
 * bench-restart's output: the samples' summaries (median, percentiles), each run summarised,
 * restart.md's tables (measures, targets, the breakdown of a restart, sanity checks) and the
 * JSON bench/run reads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench-restart.h"

void summarise_run(struct restart_run *r, struct run_summary *ret)
{
	samples_summary(&r->lat, &ret->lat);
	samples_summary(&r->dead, &ret->dead);
	samples_summary(&r->spawn, &ret->spawn);
	samples_summary(&r->hello, &ret->hello);
}

/* ---- samples: their summary ---- */

void samples_free(struct samples *s)
{
	free(s->v);
	*s = (struct samples){ 0 };
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static double percentile(const double *v, size_t n, unsigned pct)
{
	size_t rank = (n * pct + 99) / 100;

	return v[rank > 0 ? rank - 1 : 0];
}

/* Sorts s and summarises it; all zeros if empty. */
void samples_summary(struct samples *s, struct summary *ret)
{
	*ret = (struct summary){ .n = s->n };
	if (s->n == 0)
		return;
	qsort(s->v, s->n, sizeof(*s->v), cmp_double);
	ret->median = s->n % 2 ? s->v[s->n / 2] : (s->v[s->n / 2 - 1] + s->v[s->n / 2]) / 2;
	ret->p90 = percentile(s->v, s->n, 90);
	ret->p99 = percentile(s->v, s->n, 99);
	ret->min = s->v[0];
	ret->max = s->v[s->n - 1];
}

void run_free(struct restart_run *r)
{
	samples_free(&r->lat);
	samples_free(&r->dead);
	samples_free(&r->spawn);
	samples_free(&r->hello);
}

static void md_row(FILE *f, const char *what, const struct summary *s)
{
	fprintf(f, "| %s | %zu | %.1f | %.1f | %.1f | %.1f | %.1f |\n", what, s->n, s->median,
		s->p90, s->p99, s->min, s->max);
}

static void json_summary(FILE *f, const char *name, const struct summary *s)
{
	fprintf(f,
		"\"%s\": {\"n\": %zu, \"median_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, "
		"\"min_us\": %.1f, \"max_us\": %.1f}",
		name, s->n, s->median, s->p90, s->p99, s->min, s->max);
}

static const char *yes_no(bool b)
{
	return b ? "yes" : "no";
}

static const char *start_call(enum worker_start start)
{
	return start == WORKER_START_EXEC ? "`spawn_worker()` (exec)" : "`zygote_spawn()` (fork)";
}

/* The floor a run compares with: the same way of starting a worker. */
static const struct floor_summary *floor_of(const struct results *res, unsigned i)
{
	return &res->floor[res->runs[i].start];
}

/*
 * The target's floor (issue 5): an exec of the worker binary plus the round trip to its
 * HELLO, whichever way the master starts its workers.
 */
static double target_floor(const struct results *res)
{
	return res->floor[WORKER_START_EXEC].hello.median;
}

static double ratio_to_floor(const struct results *res, unsigned i)
{
	double fl = target_floor(res);

	return fl > 0 ? res->sum[i].lat.median / fl : 0;
}

/* Stricter: against the floor of the same way of starting (fork from the fork server). */
static double ratio_to_same_floor(const struct results *res, unsigned i)
{
	double fl = floor_of(res, i)->hello.median;

	return fl > 0 ? res->sum[i].lat.median / fl : 0;
}

static bool run_ok(const struct results *res, unsigned i)
{
	return res->runs[i].error == 0 && floor_of(res, i)->ok && res->sum[i].lat.n > 0;
}

static void write_measures(FILE *f, const struct results *res)
{
	char what[160];

	fprintf(f,
		"## Kill → replacement ready\n"
		"\n"
		"An idle pool (`threads = %u`, `min_uptime = 0`) in a real master (daemon mode, "
		"the master library linked into `bench/bench-restart`), once per way of starting "
		"workers (`[supervisor] worker_start`: `fork-server`, the default, forks them "
		"from the fork server; `exec` exec's each one). A one-shot defer source in the "
		"master's own event loop SIGKILLs a ready worker (t0; round robin over the pool's "
		"workers); the master's `on_worker_ready` hook gives the time it read the "
		"replacement's HELLO (t1). Latency = t1 − t0; %u kills after %u warm-up kills, "
		"one at a time, nothing "
		"sleeping. The floors are measured in the same process once the masters are gone: "
		"the call the master makes to start a worker, until the worker's HELLO frame is "
		"read, with nothing else going on (%u rounds after %u warm-up). All times in µs.\n"
		"%s\n"
		"| measure | samples | median | p90 | p99 | min | max |\n"
		"|---|--:|--:|--:|--:|--:|--:|\n",
		res->threads, res->kills, res->warmup, res->floor_n, res->warmup,
		res->spare ? "\nWith a warm spare (`[pool] spare = yes`, daemon/spare.c): the "
			     "killed worker's slot is taken over by the spare, which is READY "
			     "already (t1 is when the master did that), and each kill waits until "
			     "the next spare has said HELLO.\n"
			   : "");
	for (unsigned i = 0; i < res->n_runs; i++) {
		const struct restart_run *r = &res->runs[i];

		snprintf(what, sizeof(what), "master, %s: kill → HELLO, %u worker%s × %u threads",
			 start_name(r->start), r->workers, r->workers == 1 ? "" : "s",
			 res->threads);
		md_row(f, what, &res->sum[i].lat);
	}
	for (unsigned k = 0; k < N_STARTS; k++) {
		const struct floor_summary *fl = &res->floor[k];

		if (!res->floor_wanted[k])
			continue;
		snprintf(what, sizeof(what), "floor, %s: %s → HELLO read", start_name(k),
			 start_call(k));
		md_row(f, what, &fl->hello);
		snprintf(what, sizeof(what), "floor, %s, part: %s returns", start_name(k),
			 start_call(k));
		md_row(f, what, &fl->call);
		snprintf(what, sizeof(what), "floor, %s, part: then → HELLO read (worker start-up)",
			 start_name(k));
		md_row(f, what, &fl->start_hello);
	}
	md_row(f, "kill → pidfd readable (death noticeable; floor workers)", &res->kill_pidfd);
	md_row(f, "kill → reaped (`waitpid`; floor workers)", &res->kill_reap);
	md_row(f, "`fork()` + `_exit(0)` + `waitpid()` (context)", &res->fork);
}

static void write_targets(FILE *f, const struct results *res)
{
	fprintf(f, "\n## Against the floor\n\n"
		   "Target (issue 5): median ≤ 1000 µs and median ≤ 1.2 × the floor, an exec of "
		   "the worker binary until its HELLO (`spawn_worker()`), whichever way the master "
		   "starts workers. Stricter, for context: the ratio to the floor of the same way "
		   "of starting (for the fork server: `zygote_spawn()` → HELLO), and to that floor "
		   "plus what any supervisor pays before it can start a replacement (the killed "
		   "process must die and its pidfd turn readable).\n\n"
		   "| pool | worker_start | median µs | floor median µs | ratio | median ≤ 1 ms | "
		   "ratio ≤ 1.2 | met? | same-way floor µs | ratio to it | kill → noticed + "
		   "same-way floor µs | ratio to that |\n"
		   "|---|---|--:|--:|--:|:-:|:-:|:-:|--:|--:|--:|--:|\n");
	for (unsigned i = 0; i < res->n_runs; i++) {
		const struct summary *l = &res->sum[i].lat;
		double ratio = ratio_to_floor(res, i);
		bool ok = run_ok(res, i);
		bool fast = ok && l->median <= 1000.0, near = ok && ratio <= 1.2;
		double full = res->kill_pidfd.median + floor_of(res, i)->hello.median;

		fprintf(f,
			"| %u × %u | %s | %.1f | %.1f | %.2f | %s | %s | %s | %.1f | %.2f | %.1f | "
			"%.2f |\n",
			res->runs[i].workers, res->threads, start_name(res->runs[i].start),
			l->median, target_floor(res), ratio, yes_no(fast), yes_no(near),
			fast && near ? "met" : "missed", floor_of(res, i)->hello.median,
			ratio_to_same_floor(res, i), full, full > 0 ? l->median / full : 0);
	}
}

static void write_breakdown(FILE *f, const struct results *res)
{
	fprintf(f,
		"\n## Breakdown (medians, µs)\n"
		"\n"
		"A second run per pool size and way of starting (same kills) adds an sd-event post "
		"source, run after each dispatch, that looks at the killed slot: the first look "
		"after the master handled the death, and the first after it started the "
		"replacement. This observer changes what it observes: while a post source is "
		"pending the loop never sleeps between dispatches, so a timer that is due runs at "
		"once instead of when its timerfd fires. Its total is therefore shown next to the "
		"plain run's. Last rows: the same steps without a master (floor section). Medians "
		"of parts need not add up to the median total.\n"
		"\n"
		"| pool | worker_start | kill → death handled | → replacement started | → HELLO "
		"read | total (observed) | total (plain run) |\n"
		"|---|---|--:|--:|--:|--:|--:|\n");
	for (unsigned i = 0; i < res->n_runs; i++) {
		const struct run_summary *o = &res->osum[i];

		fprintf(f, "| master, %u × %u | %s | %.1f | %.1f | %.1f | %.1f | %.1f |\n",
			res->runs[i].workers, res->threads, start_name(res->runs[i].start),
			o->dead.median, o->spawn.median, o->hello.median, o->lat.median,
			res->sum[i].lat.median);
	}
	for (unsigned k = 0; k < N_STARTS; k++) {
		const struct floor_summary *fl = &res->floor[k];

		if (!res->floor_wanted[k])
			continue;
		fprintf(f,
			"| floor (no master) | %s | %.1f (pidfd readable) | %.1f (the call) "
			"| %.1f | %.1f | |\n",
			start_name(k), res->kill_pidfd.median, fl->call.median,
			fl->start_hello.median, res->kill_pidfd.median + fl->hello.median);
	}
}

static void write_sanity(FILE *f, const struct results *res)
{
	fprintf(f, "\n## Sanity\n\n"
		   "| pool | worker_start | run | kills (incl. warm-up) | restarts | worker faults "
		   "| pool state | error |\n"
		   "|---|---|---|--:|--:|--:|---|---|\n");
	for (unsigned i = 0; i < 2 * res->n_runs; i++) {
		const struct restart_run *r = i % 2 ? &res->obs[i / 2] : &res->runs[i / 2];

		fprintf(f, "| %u × %u | %s | %s | %u | %llu | %llu | %s | %s |\n", r->workers,
			res->threads, start_name(r->start), r->observe ? "observed" : "plain",
			r->done, (unsigned long long)r->restarts,
			(unsigned long long)r->worker_faults, r->pool_state,
			r->error ? r->error_what : "none");
	}
	for (unsigned k = 0; k < N_STARTS; k++)
		if (res->floor_wanted[k] && !res->floor[k].ok)
			fprintf(f, "\nThe %s floor failed (see stderr); its figures are missing.\n",
				start_name(k));
}

void write_markdown(FILE *f, const struct results *res)
{
	write_measures(f, res);
	write_targets(f, res);
	write_breakdown(f, res);
	write_sanity(f, res);
}

void write_json(FILE *f, const struct results *res)
{
	bool first = true;

	fprintf(f, "{\"threads\": %u, \"kills\": %u, \"warmup\": %u, \"spare\": %s,\n \"runs\": [",
		res->threads, res->kills, res->warmup, res->spare ? "true" : "false");
	for (unsigned i = 0; i < res->n_runs; i++) {
		const struct restart_run *r = &res->runs[i];
		const struct run_summary *o = &res->osum[i];

		fprintf(f,
			"%s\n  {\"workers\": %u, \"start\": \"%s\", \"ok\": %s, \"error\": %s%s%s, "
			"\"restarts\": %llu, \"floor_median_us\": %.1f, "
			"\"same_way_floor_median_us\": %.1f, ",
			i ? "," : "", r->workers, start_name(r->start),
			run_ok(res, i) ? "true" : "false", r->error ? "\"" : "",
			r->error ? r->error_what : "null", r->error ? "\"" : "",
			(unsigned long long)r->restarts, target_floor(res),
			floor_of(res, i)->hello.median);
		json_summary(f, "latency", &res->sum[i].lat);
		fprintf(f, ", \"observed\": {");
		json_summary(f, "latency", &o->lat);
		fprintf(f, ", ");
		json_summary(f, "dead", &o->dead);
		fprintf(f, ", ");
		json_summary(f, "spawn", &o->spawn);
		fprintf(f, ", ");
		json_summary(f, "hello", &o->hello);
		fprintf(f, "}}");
	}
	fprintf(f, "],\n \"floors\": {");
	for (unsigned k = 0; k < N_STARTS; k++) {
		const struct floor_summary *fl = &res->floor[k];

		if (!res->floor_wanted[k])
			continue;
		fprintf(f, "%s\n  \"%s\": {\"ok\": %s, ", first ? "" : ",", start_name(k),
			fl->ok ? "true" : "false");
		json_summary(f, "hello", &fl->hello);
		fprintf(f, ", ");
		json_summary(f, "call", &fl->call);
		fprintf(f, ", ");
		json_summary(f, "start_hello", &fl->start_hello);
		fprintf(f, "}");
		first = false;
	}
	fprintf(f, "},\n ");
	json_summary(f, "kill_pidfd", &res->kill_pidfd);
	fprintf(f, ",\n ");
	json_summary(f, "kill_reap", &res->kill_reap);
	fprintf(f, ",\n ");
	json_summary(f, "fork", &res->fork);
	fprintf(f, "}\n");
}

void print_summary_line(const struct results *res)
{
	printf("restart%s:", res->spare ? " (spare)" : "");
	for (unsigned i = 0; i < res->n_runs; i++)
		printf("%s %s %u×%u median %.1f us (%.2f × floor)", i ? "," : "",
		       start_name(res->runs[i].start), res->runs[i].workers, res->threads,
		       res->sum[i].lat.median, ratio_to_floor(res, i));
	for (unsigned k = 0; k < N_STARTS; k++)
		if (res->floor_wanted[k])
			printf("; %s floor %.1f us", start_name(k), res->floor[k].hello.median);
	printf("; fork %.1f us\n", res->fork.median);
}

int write_file(const char *path, void (*writer)(FILE *, const struct results *),
	       const struct results *res)
{
	FILE *f = fopen(path, "we");

	if (!f) {
		fprintf(stderr, "bench-restart: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	writer(f, res);
	if (fclose(f) != 0) {
		fprintf(stderr, "bench-restart: %s: write error\n", path);
		return -EIO;
	}
	return 0;
}
