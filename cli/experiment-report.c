/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead experiment`: what it prints and writes once every mode has run. The table on
 * stdout (one row per mode, in the order asked, and notes on what a row hides: the threads
 * mode's death, hybrid's shape with few threads, failed and cancelled jobs), `--json FILE`
 * (the workload, the machine, every row with every run's wall time) and `--svg FILE` (the
 * chart, drawn by experiment-chart.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cli/experiment.h"

void experiment_print_table(FILE *f, const struct experiment *e)
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
	if (experiment_has_mode(e, EXP_HYBRID) && e->threads < 4)
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
	json_object_object_add(o, "crashes", json_object_new_int64((int64_t)r->crashes));
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

int experiment_write_json(const struct experiment *e, const char *path)
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

int experiment_write_svg(const struct experiment *e, const char *path)
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
					    .jobs = e->jobs,
					    .rows = rows,
					    .n_rows = e->n_modes,
				    });
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	return r;
}
