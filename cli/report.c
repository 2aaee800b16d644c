/* SPDX-License-Identifier: MIT */
/*
 * The end of a run, for people (report_table) and for programs (report_json_write, the
 * format of DESIGN §7). Every count comes from the ledger and the master's stats; `lost` is
 * computed (total minus every final state), never assumed.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/run.h"

#define TABLE_LIST_MAX 20 /* quarantined and failed jobs listed in the table; the JSON: all */

static const enum job_state final_states[] = { JOB_DONE, JOB_FAILED, JOB_CRASHED, JOB_TIMED_OUT,
					       JOB_CANCELLED };

static uint64_t lost(const struct ledger_stats *s, uint64_t total)
{
	uint64_t ended = 0;

	for (size_t i = 0; i < sizeof(final_states) / sizeof(final_states[0]); i++)
		ended += s->by_state[final_states[i]];
	return total - ended;
}

static double wall_seconds(const struct master_stats *ms)
{
	usec_t end = ms->ended_at ? ms->ended_at : now_usec();

	return (double)(end - ms->started_at) / 1e6;
}

static bool quarantined(const struct master_job *j)
{
	return j->state == JOB_CRASHED || j->state == JOB_TIMED_OUT;
}

static bool failed(const struct master_job *j)
{
	return j->state == JOB_FAILED;
}

/* Job id as a view, if it exists (a one-shot run forgets nothing) and matches. */
static bool job_if(struct master *m, uint64_t id, bool (*match)(const struct master_job *),
		   struct master_job *ret)
{
	return master_job(m, id, ret) == 0 && match(ret);
}

/* "quarantined (N):" or "failed (N):" and the first TABLE_LIST_MAX, with their inputs. */
static void list_jobs(FILE *f, struct master *m, const char *what,
		      bool (*match)(const struct master_job *))
{
	static const char *const heads[] = { "JOB", "STATE", "CAUSE", "ATTEMPTS", "INPUT", NULL };
	uint64_t total = master_n_jobs(m), n = 0;
	struct master_job view, *j = &view;
	bool inputs = false;
	struct table t;

	for (uint64_t id = 1; id <= total; id++)
		if (job_if(m, id, match, j)) {
			n++;
			inputs |= j->input != NULL;
		}
	if (n == 0)
		return;
	table_init(&t, heads, "lllrl");
	t.n_cols -= !inputs; /* no INPUT column when no job has one */
	for (uint64_t id = 1; id <= total && t.n_rows < TABLE_LIST_MAX; id++) {
		char name[CONFIG_NAME_MAX + 16], cause[64], attempts[16];

		if (!job_if(m, id, match, j))
			continue;
		str_printf(attempts, sizeof(attempts), "%u", j->attempts);
		master_job_cause(j, cause, sizeof(cause));
		/*
		 * A crash's summary ("SIGSEGV at 0x0 in libfoo.so:parse+0x1a7") says more than its
		 * signal; not than another cause (memory: the SIGABRT of an allocation failure).
		 */
		table_add(&t, (const char *const[]){
				      master_job_name(m, j, name, sizeof(name)),
				      job_state_to_string(j->state),
				      j->crash && strncmp(j->crash, cause, strlen(cause)) == 0 ? j->crash
												: cause,
				      attempts, j->input ? j->input : "" });
	}
	fprintf(f, "\n%s (%llu):\n", what, (unsigned long long)n);
	table_print(&t, f, "  ", 0, t.n_rows);
	if (n > t.n_rows)
		fprintf(f, "  ... and %llu more (see --report-json)\n",
			(unsigned long long)(n - t.n_rows));
	table_free(&t);
}

static void groups_table(FILE *f, struct master *m)
{
	static const char *const heads[] = { "GROUP",	"POOL",	     "EXPECT",	  "TOTAL",
					     "DONE",	"FAILED",    "CRASHED",	  "TIMED_OUT",
					     "CANCELLED", "RESULT",  NULL };
	static const enum job_state cols[] = { JOB_DONE, JOB_FAILED, JOB_CRASHED, JOB_TIMED_OUT,
					       JOB_CANCELLED };
	struct master_group mg;
	struct table t;

	table_init(&t, heads, "lllrrrrrrl");
	for (unsigned g = 0; g < master_n_groups(m); g++) {
		char n[6][24];
		const char *row[11];

		if (!master_group(m, g, &mg))
			continue;
		str_printf(n[0], sizeof(n[0]), "%llu", (unsigned long long)mg.counts->total);
		for (size_t i = 0; i < 5; i++)
			str_printf(n[i + 1], sizeof(n[i + 1]), "%llu",
				   (unsigned long long)mg.counts->by_state[cols[i]]);
		row[0] = mg.cfg->name;
		row[1] = master_pool_name(m, mg.cfg->pool);
		row[2] = job_state_to_string(mg.cfg->expect);
		for (size_t i = 0; i < 6; i++)
			row[3 + i] = n[i];
		row[9] = mg.ok ? "ok" : "NOT AS EXPECTED";
		row[10] = NULL;
		table_add(&t, row);
	}
	fputc('\n', f);
	table_print(&t, f, "", 0, t.n_rows);
	table_free(&t);
}

/*
 * Jobs per second of this run: jobs that ended by running (cancelled ones never ran), minus
 * those a resumed run found ended already, over this run's wall time.
 */
static double run_rate(const struct ledger_stats *s, const struct master_stats *ms, double wall)
{
	uint64_t ended = s->by_state[JOB_DONE] + s->by_state[JOB_FAILED] +
			 s->by_state[JOB_CRASHED] + s->by_state[JOB_TIMED_OUT];

	ended -= ended > ms->ended_at_start ? ms->ended_at_start : ended;
	return wall > 0 ? (double)ended / wall : 0;
}

/* "interrupted by SIGINT after 3.20s: ..." when a signal stopped the run. */
static void interrupted_line(FILE *f, struct master *m, const struct ledger_stats *s,
			     double wall)
{
	const struct master_stats *ms = master_stats(m);
	const char *state = master_state_path(m);
	char sig[16];

	if (!ms->interrupted)
		return;
	fprintf(f, "interrupted by %s after %.2fs: ", signal_name(ms->interrupt_signal, sig, sizeof(sig)),
		wall);
	if (state)
		fprintf(f, "%llu jobs cancelled; %s keeps them: run again with --state %s to "
			   "finish them\n",
			(unsigned long long)s->by_state[JOB_CANCELLED], state, state);
	else
		fprintf(f, "%llu jobs cancelled (with --state FILE a run can be resumed)\n",
			(unsigned long long)s->by_state[JOB_CANCELLED]);
}

void report_table(FILE *f, struct master *m)
{
	const struct ledger_stats *s = master_totals(m);
	const struct master_stats *ms = master_stats(m);
	uint64_t total = master_n_jobs(m);
	double wall = wall_seconds(ms);
	char sig[16];

	groups_table(f, m);
	fprintf(f, "\n%llu jobs in %.2fs (%.0f jobs/s): %llu done, %llu failed, %llu crashed, "
		   "%llu timed_out, %llu cancelled, %llu lost\n",
		(unsigned long long)total, wall, run_rate(s, ms, wall),
		(unsigned long long)s->by_state[JOB_DONE],
		(unsigned long long)s->by_state[JOB_FAILED],
		(unsigned long long)s->by_state[JOB_CRASHED],
		(unsigned long long)s->by_state[JOB_TIMED_OUT],
		(unsigned long long)s->by_state[JOB_CANCELLED], (unsigned long long)lost(s, total));
	interrupted_line(f, m, s, wall);
	fprintf(f, "runs: %llu (re-runs: %llu bystander, %llu suspect)\n",
		(unsigned long long)s->runs, (unsigned long long)s->reruns_bystander,
		(unsigned long long)s->reruns_suspect);
	fprintf(f, "workers: %llu started, %llu restarts, %llu worker faults, %llu contained "
		   "crashes; deaths:",
		(unsigned long long)ms->workers_started, (unsigned long long)ms->restarts,
		(unsigned long long)ms->worker_faults, (unsigned long long)ms->contained_crashes);
	for (int i = 1; i < 65; i++)
		if (ms->deaths_by_signal[i])
			fprintf(f, " %s %llu", signal_name(i, sig, sizeof(sig)),
				(unsigned long long)ms->deaths_by_signal[i]);
	if (ms->deaths_by_exit)
		fprintf(f, " exit %llu", (unsigned long long)ms->deaths_by_exit);
	fputc('\n', f);

	list_jobs(f, m, "quarantined", quarantined);
	list_jobs(f, m, "failed", failed);
}

static json_object *counts_object(const uint64_t *by_state, uint64_t total)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "total", json_object_new_int64((int64_t)total));
	for (size_t i = 0; i < sizeof(final_states) / sizeof(final_states[0]); i++)
		json_object_object_add(o, job_state_to_string(final_states[i]),
				       json_object_new_int64((int64_t)by_state[final_states[i]]));
	return o;
}

static json_object *workers_object(const struct master_stats *ms)
{
	json_object *o = json_object_new_object(), *deaths = json_object_new_object();
	char sig[16];

	json_object_object_add(o, "started", json_object_new_int64((int64_t)ms->workers_started));
	json_object_object_add(o, "restarts", json_object_new_int64((int64_t)ms->restarts));
	json_object_object_add(o, "worker_faults",
			       json_object_new_int64((int64_t)ms->worker_faults));
	json_object_object_add(o, "contained_crashes",
			       json_object_new_int64((int64_t)ms->contained_crashes));
	for (int i = 1; i < 65; i++)
		if (ms->deaths_by_signal[i])
			json_object_object_add(deaths, signal_name(i, sig, sizeof(sig)),
					       json_object_new_int64(
						       (int64_t)ms->deaths_by_signal[i]));
	if (ms->deaths_by_exit)
		json_object_object_add(deaths, "exit",
				       json_object_new_int64((int64_t)ms->deaths_by_exit));
	json_object_object_add(o, "deaths", deaths);
	return o;
}

static json_object *groups_array(struct master *m)
{
	json_object *a = json_object_new_array();
	struct master_group mg;

	for (unsigned g = 0; g < master_n_groups(m); g++) {
		const struct group_counts *gc;
		const struct group_config *gcfg;
		json_object *o, *counts;

		if (!master_group(m, g, &mg))
			continue;
		gc = mg.counts;
		gcfg = mg.cfg;
		o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string(gcfg->name));
		json_object_object_add(o, "pool",
				       json_object_new_string(master_pool_name(m, gcfg->pool)));
		json_object_object_add(o, "expect",
				       json_object_new_string(job_state_to_string(gcfg->expect)));
		counts = counts_object(gc->by_state, gc->total);
		json_object_object_foreach(counts, key, val)
			json_object_object_add(o, key, json_object_get(val));
		json_object_put(counts);
		json_object_object_add(o, "ok", json_object_new_boolean(mg.ok));
		json_object_array_add(a, o);
	}
	return a;
}

/* "frames": the lines of a crash note's frames (each ended by '\n'). */
static json_object *frames_array(const char *frames)
{
	json_object *a = json_object_new_array();

	for (const char *p = frames, *nl; *p && (nl = strchr(p, '\n')); p = nl + 1)
		json_object_array_add(a, json_object_new_string_len(p, (int)(nl - p)));
	return a;
}

/*
 * Quarantined jobs (with "state") or failed ones: job, input and result if any, cause,
 * attempts, and where it crashed if the master knows ("crash", "frames").
 */
static json_object *jobs_array(struct master *m, bool (*match)(const struct master_job *),
			       bool with_state)
{
	json_object *a = json_object_new_array();
	struct master_job view, *j = &view;

	for (uint64_t id = 1; id <= master_n_jobs(m); id++) {
		const char *input, *result;
		char name[CONFIG_NAME_MAX + 16], cause[64];
		json_object *o;

		if (!job_if(m, id, match, j))
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "job", json_object_new_string(master_job_name(
							 m, j, name, sizeof(name))));
		input = j->input;
		if (input)
			json_object_object_add(o, "input", json_object_new_string(input));
		if (with_state)
			json_object_object_add(o, "state", json_object_new_string(
								   job_state_to_string(j->state)));
		json_object_object_add(o, "attempts", json_object_new_int(j->attempts));
		json_object_object_add(o, "cause", json_object_new_string(master_job_cause(
							   j, cause, sizeof(cause))));
		result = j->result;
		if (result)
			json_object_object_add(o, "result", json_object_new_string(result));
		if (j->crash) {
			json_object_object_add(o, "crash", json_object_new_string(j->crash));
			json_object_object_add(o, "frames", frames_array(j->crash_frames));
		}
		json_object_array_add(a, o);
	}
	return a;
}

int cli_check_output_path(const char *option, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0666), r = 0;

	if (fd >= 0) {
		close(fd);
		unlink(path); /* made for the check only */
		return 0;
	}
	if (errno == EEXIST) {
		fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
	}
	r = -errno;
	fprintf(stderr, "bulkhead: %s %s: cannot write it: %s (nothing was run)\n", option, path,
		strerror(-r));
	return r;
}

/* Writes text and a newline to path (created 0666 & ~umask, or truncated); 0 or -errno. */
static int write_text_file(const char *path, const char *text)
{
	FILE *f;
	int r = 0;

	if (!text)
		return -ENOMEM;
	f = fopen(path, "we");
	if (!f)
		return -errno;
	if (fputs(text, f) < 0 || fputc('\n', f) == EOF)
		r = errno ? -errno : -EIO;
	if (fclose(f) != 0 && r == 0)
		r = errno ? -errno : -EIO;
	return r;
}

int report_json_write(const char *path, struct master *m)
{
	const struct ledger_stats *s = master_totals(m);
	const struct master_stats *ms = master_stats(m);
	uint64_t total = master_n_jobs(m);
	double wall = wall_seconds(ms);
	json_object *root = json_object_new_object(), *jobs, *reruns;
	int r = 0;

	json_object_object_add(root, "config", json_object_new_string(master_config(m)->path));
	json_object_object_add(root, "wall_seconds", json_object_new_double(wall));
	json_object_object_add(root, "jobs_per_second",
			       json_object_new_double(run_rate(s, ms, wall)));
	jobs = counts_object(s->by_state, total);
	json_object_object_add(jobs, "lost", json_object_new_int64((int64_t)lost(s, total)));
	json_object_object_add(root, "jobs", jobs);
	json_object_object_add(root, "attempts", json_object_new_int64((int64_t)s->runs));
	reruns = json_object_new_object();
	json_object_object_add(reruns, "bystander",
			       json_object_new_int64((int64_t)s->reruns_bystander));
	json_object_object_add(reruns, "suspect",
			       json_object_new_int64((int64_t)s->reruns_suspect));
	json_object_object_add(root, "reruns", reruns);
	json_object_object_add(root, "workers", workers_object(ms));
	json_object_object_add(root, "pools_failed",
			       json_object_new_int((int)master_failed_pools(m)));
	json_object_object_add(root, "interrupted", json_object_new_boolean(ms->interrupted));
	if (ms->interrupted) {
		char sig[16];

		json_object_object_add(root, "interrupted_by",
				       json_object_new_string(signal_name(ms->interrupt_signal, sig,
									  sizeof(sig))));
	}
	json_object_object_add(root, "groups", groups_array(m));
	json_object_object_add(root, "quarantined", jobs_array(m, quarantined, true));
	json_object_object_add(root, "failed", jobs_array(m, failed, false));

	r = write_text_file(path, json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY));
	json_object_put(root);
	return r;
}
