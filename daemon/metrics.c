/* SPDX-License-Identifier: MIT */
/*
 * The master's metrics (metrics.h), built at each request from what `status` reads too (the
 * ledger's counts, the master's and the pools' counters) plus two histograms kept as things
 * happen: a job's run time (at its end, per pool) and a store commit's duration. Nothing is
 * kept per request; building it walks the groups once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/job-state.h"
#include "common/units.h"
#include "daemon/master-int.h"
#include "daemon/metrics.h"

/* A label value: backslash, double quote and newline escaped (the format's three). */
static void put_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void header(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Buckets (cumulative), sum and count of h; `labels` is "" or `pool="x",` (with the comma). */
static void put_histogram(FILE *f, const char *name, const char *labels, const struct histogram *h)
{
	uint64_t cum = 0;

	for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++) {
		cum += h->counts[i];
		fprintf(f, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, histogram_le[i],
			(unsigned long long)cum);
	}
	cum += h->counts[HISTOGRAM_BUCKETS];
	fprintf(f, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
	if (*labels) {
		size_t n = strlen(labels) - 1; /* without its comma */

		fprintf(f, "%s_sum{%.*s} %.6f\n%s_count{%.*s} %llu\n", name, (int)n, labels, h->sum,
			name, (int)n, labels, (unsigned long long)h->n);
	} else {
		fprintf(f, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name,
			(unsigned long long)h->n);
	}
}

static void jobs_by_group(FILE *f, struct master *m)
{
	const struct ledger *l = m->ledger;

	header(f, "bulkhead_jobs", "gauge",
	       "Jobs this master holds, by group and state (ended jobs are forgotten after "
	       "keep_ended; the counts stay).");
	for (unsigned g = 0; g < ledger_n_groups(l); g++) {
		const struct group_counts *gc;

		if (!ledger_group_exists(l, g))
			continue;
		gc = ledger_group_counts(l, g);
		for (int s = 0; s < _JOB_STATE_MAX; s++) {
			fputs("bulkhead_jobs{group=\"", f);
			put_label(f, ledger_group(l, g)->name);
			fprintf(f, "\",state=\"%s\"} %llu\n",
				job_state_to_string((enum job_state)s),
				(unsigned long long)gc->by_state[s]);
		}
	}
}

static void job_counters(FILE *f, struct master *m)
{
	const struct ledger_stats *ls = ledger_stats(m->ledger);

	header(f, "bulkhead_job_runs_total", "counter", "Job attempts started, re-runs included.");
	fprintf(f, "bulkhead_job_runs_total %llu\n", (unsigned long long)ls->runs);
	header(f, "bulkhead_job_reruns_total", "counter",
	       "Jobs run again through no fault of their own: bystanders of a worker's death "
	       "(that had started), and suspects run alone.");
	fprintf(f, "bulkhead_job_reruns_total{kind=\"bystander\"} %llu\n",
		(unsigned long long)ls->reruns_bystander);
	fprintf(f, "bulkhead_job_reruns_total{kind=\"suspect\"} %llu\n",
		(unsigned long long)ls->reruns_suspect);
	header(f, "bulkhead_job_blames_total", "counter",
	       "Attempts a job was blamed for (a crash, exit, memory or timeout).");
	fprintf(f, "bulkhead_job_blames_total %llu\n", (unsigned long long)ls->culprits);
	header(f, "bulkhead_host_deaths_total", "counter",
	       "Jobs found running when the store was opened again (their master died).");
	fprintf(f, "bulkhead_host_deaths_total %llu\n", (unsigned long long)ls->host_deaths);
}

static void worker_counters(FILE *f, struct master *m)
{
	const struct master_stats *ms = &m->stats;
	char sig[16];

	header(f, "bulkhead_workers_started_total", "counter", "Worker processes started.");
	fprintf(f, "bulkhead_workers_started_total %llu\n",
		(unsigned long long)ms->workers_started);
	header(f, "bulkhead_worker_deaths_total", "counter",
	       "Unexpected worker deaths, by cause (the signal, or exit).");
	for (int i = 1; i < 65; i++)
		if (ms->deaths_by_signal[i])
			fprintf(f, "bulkhead_worker_deaths_total{cause=\"%s\"} %llu\n",
				signal_name(i, sig, sizeof(sig)),
				(unsigned long long)ms->deaths_by_signal[i]);
	fprintf(f, "bulkhead_worker_deaths_total{cause=\"exit\"} %llu\n",
		(unsigned long long)ms->deaths_by_exit);
	fprintf(f, "bulkhead_worker_deaths_total{cause=\"memory\"} %llu\n",
		(unsigned long long)ms->deaths_by_memory);
	header(f, "bulkhead_worker_injected_deaths_total", "counter",
	       "Worker deaths caused by bulkhead inject.");
	fprintf(f, "bulkhead_worker_injected_deaths_total %llu\n",
		(unsigned long long)ms->injected);
	header(f, "bulkhead_contained_crashes_total", "counter",
	       "Crashes of jobs that ran contained (alone, in a throwaway process): no worker died.");
	fprintf(f, "bulkhead_contained_crashes_total %llu\n",
		(unsigned long long)ms->contained_crashes);
}

static void per_pool(FILE *f, struct master *m)
{
	static const struct {
		const char *name, *type, *help;
	} series[] = {
		{ "bulkhead_pool_up", "gauge",
		  "1 while the pool is up, 0 once it failed or was removed." },
		{ "bulkhead_pool_workers_ready", "gauge",
		  "Workers that said HELLO and are alive." },
		{ "bulkhead_pool_workers_wanted", "gauge", "Workers the pool should have." },
		{ "bulkhead_pool_queue_depth", "gauge",
		  "Jobs queued for the pool, not yet on a worker." },
		{ "bulkhead_worker_restarts_total", "counter",
		  "Workers started in place of another." },
		{ "bulkhead_worker_faults_total", "counter",
		  "Worker deaths counted against the pool (max_worker_faults)." },
	};

	for (size_t s = 0; s < sizeof(series) / sizeof(series[0]); s++) {
		header(f, series[s].name, series[s].type, series[s].help);
		for (unsigned p = 0; p < m->n_pools; p++) {
			struct master_pool_info pi;
			unsigned long long v;

			master_pool_info(m, p, &pi);
			switch (s) {
			case 0:
				v = strcmp(pi.state, "up") == 0;
				break;
			case 1:
				v = pi.workers_up;
				break;
			case 2:
				v = pi.workers_wanted;
				break;
			case 3:
				v = ledger_queued(m->ledger, p, false) +
				    ledger_queued(m->ledger, p, true);
				break;
			case 4:
				v = pi.restarts;
				break;
			default:
				v = pi.worker_faults;
				break;
			}
			fprintf(f, "%s{pool=\"", series[s].name);
			put_label(f, pi.name);
			fprintf(f, "\"} %llu\n", v);
		}
	}
	header(f, "bulkhead_job_run_seconds", "histogram",
	       "Run time of jobs whose worker reported their end (done, failed, a command "
	       "killed), as the worker timed it, by pool.");
	for (unsigned p = 0; p < m->n_pools; p++) {
		char *labels = NULL;
		size_t n = 0;
		FILE *lf = open_memstream(&labels, &n);

		if (!lf)
			continue;
		fputs("pool=\"", lf);
		put_label(lf, m->pools[p]->cfg.name);
		fputs("\",", lf);
		if (fclose(lf) == 0)
			put_histogram(f, "bulkhead_job_run_seconds", labels,
				      &m->pools[p]->run_time);
		free(labels);
	}
}

char *metrics_render(struct master *m, size_t *ret_len)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct timespec ts;

	if (!f)
		return NULL;
	header(f, "bulkhead_build_info", "gauge", "The running version, as a label; always 1.");
	fprintf(f, "bulkhead_build_info{version=\"%s\",node=\"", BULKHEAD_VERSION);
	put_label(f, m->node);
	fputs("\"} 1\n", f);
	header(f, "bulkhead_start_time_seconds", "gauge",
	       "When this master started, in seconds since the epoch.");
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(f, "bulkhead_start_time_seconds %.3f\n",
		(double)ts.tv_sec + ts.tv_nsec / 1e9 -
			(double)(now_usec() - m->stats.started_at) / 1e6);
	jobs_by_group(f, m);
	job_counters(f, m);
	worker_counters(f, m);
	per_pool(f, m);
	header(f, "bulkhead_store_commits_total", "counter",
	       "Transactions the store wrote since the master started.");
	fprintf(f, "bulkhead_store_commits_total %llu\n",
		(unsigned long long)ledger_store_commits(m->ledger));
	header(f, "bulkhead_store_commit_seconds", "histogram",
	       "How long a write of the store took (one per loop pass with changes).");
	put_histogram(f, "bulkhead_store_commit_seconds", "", &m->commit_time);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	*ret_len = len;
	return text;
}
