/* SPDX-License-Identifier: MIT */
/*
 * The SQLite store (daemon/store-sqlite.c) under the ledger: what was flushed comes back whole
 * when the file is opened again (jobs at their ids, states, counters, results, inputs, counts
 * that include forgotten jobs), nothing after the last flush does, the restart rule for jobs
 * found running, and every bad file refused with its name and reason. Real files in a temp
 * dir; the full-disk case on a small tmpfs in a mount namespace of its own (skipped where
 * that cannot be had).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/ledger.h"
#include "daemon/store-sqlite.h"
#include "daemon/store.h"
#include "daemon/submit-keys.h"

static char dir[] = "/tmp/bulkhead-store-XXXXXX";
static const char *const pools[] = { "main", "side", NULL };
static char path[256];

static void setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(strcpy(dir, "/tmp/bulkhead-store-XXXXXX")));
	snprintf(path, sizeof(path), "%s/jobs.db", dir);
}

static void teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

/* A ledger on the store at `path` (2 pools); fails the test if it cannot be opened. */
static struct ledger *open_ledger(void)
{
	struct store *st;
	struct ledger *l;
	char *err = NULL;
	int r = store_sqlite_open(path, pools, 2, &st, &err);

	ck_assert_msg(r == 0, "open: %d %s", r, err ? err : "");
	ck_assert_int_eq(ledger_new_with_store(st, &l), 0);
	return l;
}

/* Opening `path` fails with want, and the message names the file and says `says`. */
static void expect_refused(int want, const char *says)
{
	struct store *st = NULL;
	char *err = NULL;
	int r = store_sqlite_open(path, pools, 2, &st, &err);

	ck_assert_msg(r == want, "open returned %d (want %d): %s", r, want, err ? err : "");
	ck_assert_ptr_null(st);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "names no file: %s", err);
	ck_assert_msg(strstr(err, says), "'%s' does not say '%s'", err, says);
	free(err);
}

static struct group_config group(const char *name, unsigned pool, unsigned count)
{
	struct group_config g = { .pool = pool,
				  .run = "builtin:noop",
				  .kind = JOB_KIND_BUILTIN,
				  .args = "ms=1",
				  .inputs = "",
				  .spool = "",
				  .output = "",
				  .count = count,
				  .timeout = 5000000,
				  .max_attempts = 2,
				  .expect = JOB_DONE };

	snprintf(g.name, sizeof(g.name), "%s", name);
	config_group_exec_defaults(&g);
	return g;
}

/* What a ledger holds, kept after it is freed (its file is locked while it is open). */
struct snap {
	uint64_t n_jobs;
	unsigned n_groups;
	struct job *jobs; /* id 0: forgotten */
	char **results, **inputs;
	struct ledger_stats stats;
	struct group_counts *counts;
	char (*names)[CONFIG_NAME_MAX + 1];
};

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void take(struct ledger *l, struct snap *s)
{
	*s = (struct snap){ .n_jobs = ledger_n_jobs(l),
			    .n_groups = ledger_n_groups(l),
			    .stats = *ledger_stats(l) };
	s->jobs = calloc(s->n_jobs + 1, sizeof(*s->jobs));
	s->results = calloc(s->n_jobs + 1, sizeof(char *));
	s->inputs = calloc(s->n_jobs + 1, sizeof(char *));
	s->counts = calloc(s->n_groups + 1, sizeof(*s->counts));
	s->names = calloc(s->n_groups + 1, sizeof(*s->names));
	ck_assert(s->jobs && s->results && s->inputs && s->counts && s->names);
	for (uint64_t id = 1; id <= s->n_jobs; id++) {
		struct job *j = ledger_job(l, id);

		if (!j)
			continue;
		s->jobs[id] = *j;
		s->results[id] = dup_or_null(ledger_job_result(l, j));
		s->inputs[id] = dup_or_null(ledger_job_input(l, j));
	}
	for (unsigned g = 0; g < s->n_groups; g++) {
		s->counts[g] = *ledger_group_counts(l, g);
		snprintf(s->names[g], sizeof(s->names[g]), "%s", ledger_group(l, g)->name);
	}
}

static void snap_free(struct snap *s)
{
	for (uint64_t id = 0; id <= s->n_jobs; id++) {
		free(s->results[id]);
		free(s->inputs[id]);
	}
	free(s->results);
	free(s->inputs);
	free(s->jobs);
	free(s->counts);
	free(s->names);
}

static void assert_same_str(const char *a, const char *b)
{
	ck_assert_str_eq(a ? a : "(none)", b ? b : "(none)");
}

/* m holds exactly what s recorded. */
static void assert_matches(struct ledger *m, const struct snap *s)
{
	const struct ledger_stats *y = ledger_stats(m);

	ck_assert_uint_eq(ledger_n_jobs(m), s->n_jobs);
	ck_assert_uint_eq(ledger_n_groups(m), s->n_groups);
	ck_assert_uint_eq(y->runs, s->stats.runs);
	ck_assert_uint_eq(y->culprits, s->stats.culprits);
	ck_assert_uint_eq(y->reruns_suspect, s->stats.reruns_suspect);
	ck_assert_uint_eq(y->host_deaths, s->stats.host_deaths);
	for (int k = 0; k < _JOB_STATE_MAX; k++)
		ck_assert_uint_eq(y->by_state[k], s->stats.by_state[k]);
	for (unsigned g = 0; g < s->n_groups; g++) {
		const struct group_counts *c = ledger_group_counts(m, g);

		ck_assert_str_eq(ledger_group(m, g)->name, s->names[g]);
		ck_assert_uint_eq(c->total, s->counts[g].total);
		for (int k = 0; k < _JOB_STATE_MAX; k++)
			ck_assert_uint_eq(c->by_state[k], s->counts[g].by_state[k]);
	}
	for (uint64_t id = 1; id <= s->n_jobs; id++) {
		const struct job *x = &s->jobs[id], *j = ledger_job(m, id);

		if (x->id == 0) {
			ck_assert(ledger_job_forgotten(m, id));
			continue;
		}
		ck_assert_ptr_nonnull(j);
		ck_assert_uint_eq(j->group, x->group);
		ck_assert_uint_eq(j->instance, x->instance);
		ck_assert_uint_eq(j->state, x->state);
		ck_assert_uint_eq(j->cause, x->cause);
		ck_assert_int_eq(j->cause_detail, x->cause_detail);
		ck_assert_uint_eq(j->alone, x->alone);
		ck_assert_uint_eq(j->attempts, x->attempts);
		ck_assert_uint_eq(j->reruns, x->reruns);
		ck_assert_uint_eq(j->runs, x->runs);
		ck_assert_uint_eq(j->flags & ~JOB_DIRTY, x->flags & ~JOB_DIRTY);
		ck_assert_uint_eq(j->host_deaths, x->host_deaths);
		ck_assert_int_eq(j->accepted_at, x->accepted_at);
		ck_assert_uint_eq(j->started_ms, x->started_ms);
		ck_assert_uint_eq(j->ended_ms, x->ended_ms);
		assert_same_str(ledger_job_result(m, j), s->results[id]);
		assert_same_str(ledger_job_input(m, j), s->inputs[id]);
	}
}

/* Flushes l, records it, frees it (as a master killed right after its flush), reopens. */
static struct ledger *reopen(struct ledger *l, struct snap *s)
{
	ck_assert_int_eq(ledger_flush(l), 0);
	take(l, s);
	ledger_free(l);
	l = open_ledger();
	assert_matches(l, s);
	return l;
}

/* Some of everything: done, failed, crashed (a culprit), cancelled, running, queued. */
static void make_history(struct ledger *l)
{
	struct group_config a = group("alpha", 0, 6), b = group("beta", 1, 3);
	char *paths[] = { "/in/one", "/in/two", "/in/three" }, *own[] = { "/spool/x.txt" };
	uint64_t first;
	unsigned gb;
	struct job *j;

	b.inputs = "/in/*";
	b.input_paths = paths;
	b.n_inputs = 3;
	ck_assert_int_eq(ledger_add_group(l, &a, NULL), 0);
	ck_assert_int_eq(ledger_add_group(l, &b, &gb), 0);
	ck_assert_int_eq(ledger_add_input_jobs(l, gb, own, 1, &first), 0);
	ck_assert_uint_eq(first, 10); /* alpha 1..6, beta 7..9 */

	j = ledger_pop(l, 0, false); /* alpha#1: done, with a result */
	ledger_start(l, j);
	ck_assert_int_eq(ledger_set_result(l, j, "42 rows\n", 8), 0);
	ledger_finish(l, j, 0);
	j = ledger_pop(l, 0, false); /* alpha#2: failed once, re-queued for its retry */
	ledger_start(l, j);
	ledger_finish(l, j, 3);
	j = ledger_pop(l, 0, false); /* alpha#3: a culprit, re-queued alone */
	ledger_start(l, j);
	ledger_blame(l, j, CAUSE_SIGNAL, SIGSEGV);
	j = ledger_pop(l, 0, false); /* alpha#4: cancelled while queued */
	ledger_unpop(l, j);
	ck_assert_int_eq(ledger_cancel_queued_job(l, j, CAUSE_CANCELLED), 0);
	j = ledger_pop(l, 1, false); /* beta#1: running (its master will die) */
	ledger_start(l, j);
	j = ledger_pop(l, 1, false); /* beta#2: running, its cancel requested */
	ledger_start(l, j);
	ledger_request_cancel(l, j);
}

START_TEST(test_flushed_comes_back_whole)
{
	struct ledger *l = open_ledger();
	struct snap s;

	make_history(l);
	l = reopen(l, &s);
	ck_assert_str_eq(ledger_job_input(l, ledger_job(l, 8)), "/in/two");
	ck_assert_str_eq(ledger_job_input(l, ledger_job(l, 10)), "/spool/x.txt");
	ck_assert_str_eq(ledger_job_result(l, ledger_job(l, 1)), "42 rows?");
	/*
	 * The queues come back in id order: alpha#2 (its retry), #5, #6; the suspect alone;
	 * beta#3 and the spool's job.
	 */
	ck_assert_uint_eq(ledger_queued(l, 0, false), 3);
	ck_assert_uint_eq(ledger_pop(l, 0, false)->id, 2);
	ck_assert_uint_eq(ledger_pop(l, 0, false)->id, 5);
	ck_assert_uint_eq(ledger_pop(l, 0, false)->id, 6);
	ck_assert_uint_eq(ledger_queued(l, 0, true), 1);
	ck_assert_uint_eq(ledger_pop(l, 0, true)->id, 3);
	ck_assert_uint_eq(ledger_pop(l, 1, false)->id, 9);
	ck_assert_uint_eq(ledger_pop(l, 1, false)->id, 10);
	ledger_free(l);
	snap_free(&s);
}
END_TEST

static int64_t sql_int(const char *query);

/*
 * Jobs added alike and not yet changed are written by one statement per run of them: a run
 * broken by a job that started before the flush, a run after jobs already in the file, and
 * a run of a submitted group (JOB_ADHOC) come back job by job as they were.
 */
START_TEST(test_fresh_runs_come_back_whole)
{
	struct ledger *l = open_ledger();
	struct group_config a = group("alpha", 0, 100), b = group("beta", 1, 0);
	unsigned ga;
	uint64_t first;
	struct job *j;
	struct snap s;

	ck_assert_int_eq(ledger_add_group(l, &a, &ga), 0);
	j = ledger_pop(l, 0, false);
	ck_assert_uint_eq(j->id, 1);
	ledger_start(l, j); /* job 1 started: 2..100 are the run */
	l = reopen(l, &s);
	snap_free(&s);

	/* More of alpha, one of them changed in the middle; then a submitted group's. */
	ck_assert_int_eq(ledger_add_jobs(l, ga, 20, &first), 0);
	ck_assert_uint_eq(first, 101);
	ck_assert_int_eq(ledger_cancel_queued_job(l, ledger_job(l, 110), CAUSE_CANCELLED), 0);
	ck_assert_int_eq(ledger_add_variant(l, &b, "spin", 7, NULL, 0, NULL, &first), 0);
	ck_assert_uint_eq(first, 121);
	l = reopen(l, &s);
	snap_free(&s);
	ledger_free(l);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM job_rows"), 127);
	/* The runs of jobs accepted together are a row each. */
	ck_assert_int_eq(sql_int("SELECT count(*) FROM jobs"), 2); /* 1 and 110 */
	ck_assert_int_eq(sql_int("SELECT count(*) FROM job_runs"), 4);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM job_rows WHERE state = 0"), 125);
	ck_assert_int_eq(sql_int("SELECT state FROM job_rows WHERE id = 110"), JOB_CANCELLED);
	ck_assert_int_eq(sql_int("SELECT instance FROM job_rows WHERE id = 120"), 120);
	/* Jobs that never moved have no state row: the run, and the submitted ones. */
	ck_assert_int_eq(sql_int("SELECT count(*) FROM job_states WHERE id BETWEEN 2 AND 109 OR "
				 "id > 110"),
			 0);
	ck_assert_int_eq(sql_int("SELECT count(DISTINCT accepted_at) FROM job_rows WHERE id BETWEEN 2 "
				 "AND 100"),
			 1);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM job_rows WHERE id > 120 AND flags = 4 AND "
				 "instance = id - 120"),
			 7);
}
END_TEST

START_TEST(test_nothing_after_the_last_flush)
{
	struct ledger *l = open_ledger();
	struct group_config a = group("alpha", 0, 4);
	struct snap s, t;
	struct job *j;

	ck_assert_int_eq(ledger_add_group(l, &a, NULL), 0);
	ck_assert_int_eq(ledger_flush(l), 0);
	take(l, &s);
	j = ledger_pop(l, 0, false);
	ledger_start(l, j);
	ledger_finish(l, j, 0);
	ck_assert_int_eq(ledger_add_jobs(l, 0, 5, &(uint64_t){ 0 }), 0);
	/* A master killed here: what it did since its last flush was never acknowledged. */
	ledger_free(l);
	l = open_ledger();
	assert_matches(l, &s);
	ck_assert_uint_eq(ledger_job(l, 1)->state, JOB_QUEUED);
	/* The next master's own work is kept once flushed. */
	j = ledger_pop(l, 0, false);
	ledger_start(l, j);
	ledger_finish(l, j, 0);
	l = reopen(l, &t);
	ck_assert_uint_eq(ledger_job(l, 1)->state, JOB_DONE);
	ledger_free(l);
	snap_free(&s);
	snap_free(&t);
}
END_TEST

/* Opens the file again as a restarted master would, applying the restart rule. */
static struct ledger *restart(struct ledger *old)
{
	struct ledger *l;

	if (old)
		ledger_free(old);
	l = open_ledger();
	ledger_recover(l);
	ck_assert_int_eq(ledger_flush(l), 0);
	return l;
}

START_TEST(test_restart_rule)
{
	struct ledger *l = open_ledger();
	struct group_config a = group("solo", 0, 1), b = group("other", 1, 2);
	struct job *j;
	char cause[64];

	a.max_attempts = 1;
	ck_assert_int_eq(ledger_add_group(l, &a, NULL), 0);
	ck_assert_int_eq(ledger_add_group(l, &b, NULL), 0);
	ledger_start(l, ledger_pop(l, 1, false)); /* other#1 (id 2): running */
	j = ledger_pop(l, 1, false); /* other#2 (id 3): running, cancel requested */
	ledger_start(l, j);
	ledger_request_cancel(l, j);
	for (int death = 1; death <= 3; death++) {
		j = ledger_pop(l, 0, death == 3);
		ck_assert_ptr_nonnull(j);
		ck_assert_uint_eq(j->id, 1);
		ledger_start(l, j);
		ck_assert_int_eq(ledger_flush(l), 0);
		l = restart(l); /* its master died under it */
		j = ledger_job(l, 1);
		ck_assert_uint_eq(j->host_deaths, death);
		ck_assert_uint_eq(ledger_stats(l)->host_deaths, 2 + death);
		if (death < 3) {
			/* A bystander: no attempt; alone from its second such death. */
			ck_assert_uint_eq(j->state, JOB_QUEUED);
			ck_assert_uint_eq(j->attempts, 0);
			ck_assert_uint_eq(j->alone, death == 2);
		}
	}
	/* It died a third time, alone: blamed like any death, and at max_attempts it is over. */
	ck_assert_uint_eq(j->state, JOB_CRASHED);
	ck_assert_uint_eq(j->attempts, 1);
	ck_assert_str_eq(ledger_cause_string(j, cause, sizeof(cause)), "master died");
	/* other#1 was re-queued after the first death; other#2 (cancel requested) was cancelled. */
	ck_assert_uint_eq(ledger_job(l, 2)->state, JOB_QUEUED);
	ck_assert_uint_eq(ledger_job(l, 2)->host_deaths, 1);
	ck_assert_uint_eq(ledger_job(l, 3)->state, JOB_CANCELLED);
	ledger_free(l);
}
END_TEST

START_TEST(test_forgotten_rows_go)
{
	struct ledger *l = open_ledger();
	struct group_config a = group("alpha", 0, 3 * 4096 + 10);
	sqlite3 *db;
	sqlite3_int64 rows = -1;
	sqlite3_stmt *q;
	struct snap s;

	ck_assert_int_eq(ledger_add_group(l, &a, NULL), 0);
	ck_assert_int_eq(ledger_flush(l), 0); /* one run of job_runs, cut when forgotten */
	ledger_set_keep_ended(l, 100);
	for (uint64_t id = 1; id <= 3 * 4096; id++) {
		struct job *j = ledger_pop(l, 0, false);

		ck_assert_uint_eq(j->id, id);
		ledger_start(l, j);
		ledger_finish(l, j, 0);
	}
	ck_assert_int_eq(ledger_flush(l), 0); /* their rows and states in the file: then gone */
	ck_assert_uint_eq(ledger_collect(l), 2 * 4096);
	l = reopen(l, &s);
	ck_assert_uint_eq(ledger_forgotten(l), 2 * 4096);
	ck_assert(ledger_job_forgotten(l, 1));
	ck_assert_ptr_null(ledger_job(l, 2 * 4096));
	ck_assert_ptr_nonnull(ledger_job(l, 2 * 4096 + 1));
	ledger_free(l);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM job_rows", -1, &q, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	rows = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	ck_assert_int_eq(rows, 4096 + 10);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM job_states"), 4096); /* the 10 never ran */
	ck_assert_int_eq(sql_int("SELECT min(id) FROM job_states"), 2 * 4096 + 1);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM jobs"), 0);
	ck_assert_int_eq(sql_int("SELECT id * 100000000 + n * 10000 + instance FROM job_runs"),
			 (2 * 4096 + 1) * 100000000LL + (4096 + 10) * 10000LL + 2 * 4096 + 1);
	snap_free(&s);
}
END_TEST

/* Every count of l is what its jobs say (none forgotten): by group, by state, runs. */
static void assert_counts_add_up(struct ledger *l)
{
	uint64_t by_state[_JOB_STATE_MAX] = { 0 }, runs = 0;

	for (unsigned g = 0; g < ledger_n_groups(l); g++) {
		uint64_t in_group[_JOB_STATE_MAX] = { 0 };

		for (uint64_t id = 1; id <= ledger_n_jobs(l); id++)
			if (ledger_job(l, id)->group == g)
				in_group[ledger_job(l, id)->state]++;
		for (int k = 0; k < _JOB_STATE_MAX; k++)
			ck_assert_msg(ledger_group_counts(l, g)->by_state[k] == in_group[k],
				      "group %u, state %d: counted %" PRIu64 ", %" PRIu64 " jobs",
				      g, k, ledger_group_counts(l, g)->by_state[k], in_group[k]);
	}
	for (uint64_t id = 1; id <= ledger_n_jobs(l); id++) {
		by_state[ledger_job(l, id)->state]++;
		runs += ledger_job(l, id)->runs;
	}
	for (int k = 0; k < _JOB_STATE_MAX; k++)
		ck_assert_uint_eq(ledger_stats(l)->by_state[k], by_state[k]);
	ck_assert_uint_eq(ledger_stats(l)->runs, runs);
}

/* Starts jobs 1..3 of alpha (6 jobs, in the file): #1 just starts, #2 ends, #3 runs with a
 * cancel requested; then adds 2 more; and flushes partially. */
static struct ledger *partly_flushed(void)
{
	struct ledger *l = open_ledger();
	struct group_config a = group("alpha", 0, 6);
	struct job *j;

	ck_assert_int_eq(ledger_add_group(l, &a, NULL), 0);
	ck_assert_int_eq(ledger_flush(l), 0);
	ledger_start(l, ledger_pop(l, 0, false));
	ledger_start(l, j = ledger_pop(l, 0, false));
	ledger_finish(l, j, 0);
	ledger_start(l, j = ledger_pop(l, 0, false));
	ledger_request_cancel(l, j);
	ck_assert_int_eq(ledger_add_jobs(l, 0, 2, &(uint64_t){ 0 }), 0);
	ck_assert_int_eq(ledger_flush_partial(l), 0);
	return l;
}

/*
 * A partial flush leaves a start that is its job's one change: the file holds that job, and
 * every count, as if it had not started; everything else is written. A master killed then
 * runs it again as a queued job (no host death); the next full flush writes it as it is.
 */
START_TEST(test_partial_flush_leaves_starts)
{
	struct ledger *l = partly_flushed();
	struct snap s;

	/* Killed here (the file is locked while it is open): job 1 is queued in the file. */
	ledger_free(l);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM job_rows"), 8);
	ck_assert_int_eq(sql_int("SELECT state FROM job_rows WHERE id = 1"), JOB_QUEUED);
	ck_assert_int_eq(sql_int("SELECT runs + started_ms FROM job_rows WHERE id = 1"), 0);
	ck_assert_int_eq(sql_int("SELECT state FROM job_rows WHERE id = 2"), JOB_DONE);
	ck_assert_int_eq(sql_int("SELECT state FROM job_rows WHERE id = 3"), JOB_RUNNING);
	/* The counts are the rows' (schema v5): 6 queued, 1 running, 2 runs. */
	ck_assert_int_eq(sql_int("SELECT count(*) FROM job_rows WHERE state = 0"), 6);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM job_rows WHERE state = 1"), 1);
	ck_assert_int_eq(sql_int("SELECT sum(runs) FROM job_rows"), 2);
	/* The next master runs job 1 as a queued job; job 3 was running (its master died). */
	l = open_ledger();
	ck_assert_uint_eq(ledger_group_counts(l, 0)->by_state[JOB_QUEUED], 6);
	ck_assert_uint_eq(ledger_group_counts(l, 0)->by_state[JOB_RUNNING], 1);
	ck_assert_uint_eq(ledger_stats(l)->by_state[JOB_QUEUED], 6);
	ck_assert_uint_eq(ledger_stats(l)->runs, 2);
	ck_assert_uint_eq(ledger_job(l, 1)->state, JOB_QUEUED);
	ck_assert_uint_eq(ledger_job(l, 1)->runs, 0);
	ck_assert_uint_eq(ledger_job(l, 3)->state, JOB_RUNNING);
	assert_counts_add_up(l);
	ck_assert_uint_eq(ledger_recover(l), 1);
	ck_assert_uint_eq(ledger_job(l, 1)->host_deaths, 0);
	assert_counts_add_up(l);
	ledger_free(l);

	/* Job 1 ends before the next partial flush and is written ended; job 4 starts. */
	teardown();
	setup();
	l = partly_flushed();
	ledger_finish(l, ledger_job(l, 1), 0);
	ledger_start(l, ledger_pop(l, 0, false));
	ck_assert_int_eq(ledger_flush_partial(l), 0);
	ledger_free(l);
	ck_assert_int_eq(sql_int("SELECT state FROM job_rows WHERE id = 1"), JOB_DONE);
	ck_assert_int_eq(sql_int("SELECT state FROM job_rows WHERE id = 4"), JOB_QUEUED);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM job_rows WHERE state = 2"), 2);
	l = open_ledger();
	ck_assert_uint_eq(ledger_group_counts(l, 0)->by_state[JOB_DONE], 2);
	assert_counts_add_up(l);
	ledger_free(l);

	/* A full flush after a partial one writes everything as it is. */
	teardown();
	setup();
	l = reopen(partly_flushed(), &s);
	ck_assert_uint_eq(ledger_job(l, 1)->state, JOB_RUNNING);
	ck_assert_uint_eq(ledger_job(l, 1)->runs, 1);
	assert_counts_add_up(l);
	ledger_free(l);
	snap_free(&s);
}
END_TEST

/* Jobs 1..8 of alpha, not in the file yet: #1 and #2 start, #3 is assigned, #4 ends; then
 * a partial flush, their first write. */
static struct ledger *new_partly_flushed(void)
{
	struct ledger *l = open_ledger();
	struct group_config a = group("alpha", 0, 8);
	struct job *j;

	ck_assert_int_eq(ledger_add_group(l, &a, NULL), 0);
	ledger_start(l, ledger_pop(l, 0, false));
	ledger_start(l, ledger_pop(l, 0, false));
	ledger_assign(l, ledger_pop(l, 0, false));
	ledger_start(l, j = ledger_pop(l, 0, false));
	ledger_finish(l, j, 0);
	ck_assert_int_eq(ledger_flush_partial(l), 0);
	return l;
}

/*
 * New jobs whose one change is their start are written by a partial flush as queued (no
 * state row: one row write a job until its end), counted as queued; a master killed then
 * runs them again as queued jobs; the next flush writes them as they are.
 */
START_TEST(test_partial_flush_leaves_new_starts)
{
	struct ledger *l = new_partly_flushed();
	struct snap s;

	ledger_free(l); /* killed */
	ck_assert_int_eq(sql_int("SELECT count(*) FROM job_rows"), 8);
	ck_assert_int_eq(sql_int("SELECT group_concat(id) FROM job_states"), 4);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM job_rows WHERE state = 0"), 7);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM job_rows WHERE state = 1"), 0);
	ck_assert_int_eq(sql_int("SELECT sum(runs) FROM job_rows"), 1);
	l = open_ledger();
	ck_assert_uint_eq(ledger_group_counts(l, 0)->by_state[JOB_QUEUED], 7);
	ck_assert_uint_eq(ledger_group_counts(l, 0)->by_state[JOB_RUNNING], 0);
	ck_assert_uint_eq(ledger_stats(l)->runs, 1);
	ck_assert_uint_eq(ledger_stats(l)->by_state[JOB_RUNNING], 0);
	for (uint64_t id = 1; id <= 3; id++) {
		ck_assert_uint_eq(ledger_job(l, id)->state, JOB_QUEUED);
		ck_assert_uint_eq(ledger_job(l, id)->runs, 0);
	}
	assert_counts_add_up(l);
	ck_assert_uint_eq(ledger_recover(l), 0);
	ledger_free(l);

	/* Job 1 ends and job 3 starts before the next partial flush: 1 is written ended, 2 and
	 * 3 stay left (3's run now counted, and left out of the file's runs too). */
	teardown();
	setup();
	l = new_partly_flushed();
	ledger_finish(l, ledger_job(l, 1), 0);
	ledger_started(l, ledger_job(l, 3));
	ck_assert_int_eq(ledger_flush_partial(l), 0);
	ledger_free(l);
	ck_assert_int_eq(sql_int("SELECT group_concat(id, '') FROM job_states"), 14);
	ck_assert_int_eq(sql_int("SELECT state FROM job_rows WHERE id = 1"), JOB_DONE);
	ck_assert_int_eq(sql_int("SELECT sum(runs) FROM job_rows"), 2);
	l = open_ledger();
	ck_assert_uint_eq(ledger_stats(l)->runs, 2);
	ck_assert_uint_eq(ledger_job(l, 3)->state, JOB_QUEUED);
	assert_counts_add_up(l);
	ledger_free(l);

	/* A full flush after the partial one writes everything as it is. */
	teardown();
	setup();
	l = reopen(new_partly_flushed(), &s);
	ck_assert_uint_eq(ledger_job(l, 1)->state, JOB_RUNNING);
	ck_assert_uint_eq(ledger_job(l, 1)->runs, 1);
	ck_assert_uint_eq(ledger_job(l, 3)->state, JOB_RUNNING);
	ck_assert_uint_eq(ledger_job(l, 3)->runs, 0);
	assert_counts_add_up(l);
	ledger_free(l);
	snap_free(&s);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM job_states"), 4);
}
END_TEST

/* A ledger on `path` for the pools names[0 .. n - 1]. */
static int open_with_pools(const char *const *names, unsigned n, struct ledger **ret,
			   char **ret_err)
{
	struct store *st;
	int r = store_sqlite_open(path, names, n, &st, ret_err);

	if (r == 0)
		ck_assert_int_eq(ledger_new_with_store(st, ret), 0);
	return r;
}

static int64_t sql_int(const char *query)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	int64_t v;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, query, -1, &q, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

/*
 * tests/data/store-v1.db was written by bulkhead a4010fb (schema version 1, pools kept by
 * index): `bulkhead run --state` of a config with [pool main] and [pool side], [job alpha]
 * (side, 3 x noop: done) and [job beta] (main, 2 x exit code=3, max_attempts 1: crashed).
 * Opened with the pools it was written with, it is migrated in place; afterwards its groups'
 * pools are found by name, whatever their order in the config, and a pool the config dropped
 * is refused only while a group there has jobs to run.
 */
START_TEST(test_migrates_v1)
{
	static const char *const as_written[] = { "main", "side" }, *const swapped[] = { "side", "main" },
				    *const lacking[] = { "main" };
	const char *root = getenv("BULKHEAD_SOURCE_ROOT");
	char src[512], cmd[1200], *err = NULL;
	struct ledger *l;
	int alpha, beta;

	ck_assert_ptr_nonnull(root);
	snprintf(src, sizeof(src), "%s/tests/data/store-v1.db", root);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", src, path);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(sql_int("PRAGMA user_version"), 1);

	ck_assert_int_eq(open_with_pools(as_written, 2, &l, &err), 0);
	alpha = ledger_find_group(l, "alpha");
	beta = ledger_find_group(l, "beta");
	ck_assert_int_ge(alpha, 0);
	ck_assert_int_ge(beta, 0);
	ck_assert_uint_eq(ledger_group(l, (unsigned)alpha)->pool, 1);
	ck_assert_uint_eq(ledger_group(l, (unsigned)beta)->pool, 0);
	ck_assert_uint_eq(ledger_n_jobs(l), 5);
	ck_assert_uint_eq(ledger_group_counts(l, (unsigned)alpha)->by_state[JOB_DONE], 3);
	ck_assert_uint_eq(ledger_group_counts(l, (unsigned)beta)->by_state[JOB_CRASHED], 2);
	ck_assert_int_eq(ledger_job(l, 4)->attempts, 1);
	ledger_free(l);
	ck_assert_int_eq(sql_int("PRAGMA user_version"), STORE_SQLITE_VERSION);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM groups WHERE pool_name = 'side' AND "
				 "name = 'alpha'"),
			 1);

	/* The config's pools in another order: each group stays in its pool. */
	ck_assert_int_eq(open_with_pools(swapped, 2, &l, &err), 0);
	ck_assert_uint_eq(ledger_group(l, (unsigned)ledger_find_group(l, "alpha"))->pool, 0);
	ck_assert_uint_eq(ledger_group(l, (unsigned)ledger_find_group(l, "beta"))->pool, 1);
	ledger_free(l);

	/* A pool the config no longer has, whose groups have all ended: kept after the
	 * config's pools (the master adds it as removed), its group with it. */
	{
		struct store *st;
		const char *const *gone;
		unsigned n_gone;
		uint64_t id;

		ck_assert_int_eq(store_sqlite_open(path, lacking, 1, &st, &err), 0);
		gone = store_sqlite_gone_pools(st, &n_gone);
		ck_assert_uint_eq(n_gone, 1);
		ck_assert_str_eq(gone[0], "side");
		ck_assert_int_eq(ledger_new_with_store(st, &l), 0);
		alpha = ledger_find_group(l, "alpha");
		ck_assert_int_ge(alpha, 0);
		ck_assert_uint_eq(ledger_group(l, (unsigned)alpha)->pool, 1);
		ck_assert_uint_eq(ledger_group_counts(l, (unsigned)alpha)->by_state[JOB_DONE], 3);
		/* The master's pools, the store's order: the name stays written. */
		ck_assert_int_eq(ledger_set_pools(l, 2, as_written), 0);
		ck_assert_int_eq(ledger_flush(l), 0);
		ledger_free(l);
		ck_assert_int_eq(sql_int("SELECT count(*) FROM groups WHERE pool_name = 'side' AND "
					 "name = 'alpha'"),
				 1);

		/* A job of alpha not ended: refused, naming the group, the pool, the count. */
		ck_assert_int_eq(open_with_pools(as_written, 2, &l, &err), 0);
		ck_assert_int_eq(ledger_add_jobs(l, (unsigned)ledger_find_group(l, "alpha"), 1, &id),
				 0);
		ck_assert_int_eq(ledger_flush(l), 0);
		ledger_free(l);
	}
	ck_assert_int_eq(open_with_pools(lacking, 1, &l, &err), -ENXIO);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, "job group alpha") && strstr(err, "pool side") &&
			      strstr(err, "1 not ended") && strncmp(err, path, strlen(path)) == 0,
		      "%s", err);
	free(err);
}
END_TEST

/* A submit key is kept with its jobs, and forgotten with the first of them. */
START_TEST(test_submit_keys)
{
	struct ledger *l = open_ledger();
	struct group_config a = group("alpha", 0, 0);
	const struct submit_key *k;
	uint64_t first, second;
	unsigned g;
	struct snap s;

	ck_assert_int_eq(ledger_add_group(l, &a, &g), 0);
	ck_assert_int_eq(ledger_add_jobs(l, g, 4096, &first), 0);
	ck_assert_int_eq(ledger_add_key(l, "batch-1", first, 4096, 77), 0);
	ck_assert_int_eq(ledger_add_jobs(l, g, 10, &second), 0);
	ck_assert_int_eq(ledger_add_key(l, "batch-2", second, 10, 78), 0);
	ck_assert_int_eq(ledger_add_key(l, "batch-2", second, 10, 78), -EEXIST);
	ck_assert_int_eq(ledger_add_key(l, "has space", second, 10, 78), -EINVAL);
	l = reopen(l, &s);
	snap_free(&s);
	k = ledger_find_key(l, "batch-1");
	ck_assert_ptr_nonnull(k);
	ck_assert_uint_eq(k->first, first);
	ck_assert_uint_eq(k->count, 4096);
	ck_assert_uint_eq(k->request, 77);
	ck_assert_ptr_nonnull(ledger_find_key(l, "batch-2"));
	ck_assert_ptr_null(ledger_find_key(l, "batch-3"));

	/* batch-1's jobs end and are forgotten: its key goes, in memory and in the file. */
	ledger_set_keep_ended(l, 0);
	for (uint64_t id = first; id < first + 4096; id++) {
		struct job *j = ledger_pop(l, 0, false);

		ledger_start(l, j);
		ledger_finish(l, j, 0);
	}
	ck_assert_uint_eq(ledger_collect(l), 4096);
	ck_assert_ptr_null(ledger_find_key(l, "batch-1"));
	l = reopen(l, &s);
	snap_free(&s);
	ck_assert_ptr_null(ledger_find_key(l, "batch-1"));
	ck_assert_ptr_nonnull(ledger_find_key(l, "batch-2"));
	ledger_free(l);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM submit_keys"), 1);
}
END_TEST

static int join_line(void *userdata, const struct log_line *l)
{
	char *buf = userdata;
	size_t n = strlen(buf);

	snprintf(buf + n, 512 - n, "%s%" PRIu64 ":%.*s", n ? "|" : "", l->job, (int)l->len, l->text);
	return 0;
}

/* The lines of jobs first..last (the last `tail`), as "JOB:TEXT|...". */
static const char *logs_of(struct ledger *l, uint64_t first, uint64_t last, size_t tail)
{
	static char buf[512];
	struct log_query q = { .first = first, .last = last, .tail = tail };

	buf[0] = '\0';
	ck_assert_int_eq(ledger_read_logs(l, &q, join_line, buf), 0);
	return buf;
}

/* Log lines are kept with their jobs: read back before and after a flush, and forgotten. */
START_TEST(test_logs_kept)
{
	struct ledger *l = open_ledger();
	struct group_config a = group("alpha", 0, 4096 + 2);
	struct log_line ignored;
	struct snap s;

	ck_assert_int_eq(ledger_add_group(l, &a, NULL), 0);
	ck_assert_int_eq(ledger_add_log(l, ledger_job(l, 1), 6, "one", 3, &ignored), 0);
	ck_assert_int_eq(ledger_add_log(l, ledger_job(l, 2), 4, "two", 3, &ignored), 0);
	ck_assert_int_eq(ledger_flush(l), 0);
	ck_assert_int_eq(ledger_add_log(l, ledger_job(l, 1), 6, "three", 5, &ignored), 0);
	ck_assert_int_eq(ledger_add_log(l, ledger_job(l, 4097), 6, "late", 4, &ignored), 0);
	/* Written and not yet written, in the order they came. */
	ck_assert_str_eq(logs_of(l, 1, 1, 0), "1:one|1:three");
	ck_assert_str_eq(logs_of(l, 1, UINT64_MAX, 0), "1:one|2:two|1:three|4097:late");
	ck_assert_str_eq(logs_of(l, 1, UINT64_MAX, 2), "1:three|4097:late");
	l = reopen(l, &s);
	snap_free(&s);
	ck_assert_str_eq(logs_of(l, 1, UINT64_MAX, 3), "2:two|1:three|4097:late");
	/* The first chunk's jobs end and are forgotten: their lines go with them. */
	ledger_set_keep_ended(l, 0);
	for (uint64_t id = 1; id <= 4096; id++) {
		struct job *j = ledger_pop(l, 0, false);

		ledger_start(l, j);
		ledger_finish(l, j, 0);
	}
	ck_assert_uint_eq(ledger_collect(l), 4096);
	l = reopen(l, &s);
	snap_free(&s);
	ck_assert_str_eq(logs_of(l, 1, UINT64_MAX, 0), "4097:late");
	ledger_free(l);
}
END_TEST

/* ---- bad files ---- */

static void write_bytes(const char *p, const void *data, size_t len)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* A real store with some history, closed. */
static void make_store(void)
{
	struct ledger *l = open_ledger();

	make_history(l);
	ck_assert_int_eq(ledger_flush(l), 0);
	ledger_free(l);
}

static void sql(const char *stmt)
{
	sqlite3 *db;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, stmt, NULL, NULL, NULL) == SQLITE_OK, "%s: %s", stmt,
		      sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* The size of the store's WAL now (it is written while the store is open). */
static off_t wal_size(void)
{
	char wal[sizeof(path) + 8];
	struct stat st;

	snprintf(wal, sizeof(wal), "%s-wal", path);
	ck_assert_int_eq(stat(wal, &st), 0);
	return st.st_size;
}

/* The store's page size, from its header (big-endian at offset 16; 1 means 65536). */
static off_t page_size(void)
{
	unsigned char h[18];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);
	return h[16] == 0 && h[17] == 1 ? 65536 : (off_t)(h[16] << 8 | h[17]);
}

/*
 * Schema v5: a commit that only moves jobs writes their rows, not the counts (the store's
 * counters, the group's row): the next master counts those from the rows. A WAL frame is one
 * page and a 24-byte header: a job's end is one frame (v4 wrote three: its state row, the
 * group's row, the counters), a job added one (v4: three too). A blame moves a counter no row
 * keeps (culprits): that commit writes the counters' page too. The next master has every
 * count as it was.
 */
START_TEST(test_moves_write_rows_only)
{
	struct ledger *l = open_ledger();
	struct group_config a = group("alpha", 0, 8);
	off_t frame = page_size() + 24, before;
	struct job *j, *k;
	uint64_t first;
	struct snap s;

	ck_assert_int_eq(ledger_add_group(l, &a, NULL), 0);
	ledger_start(l, j = ledger_pop(l, 0, false));
	ledger_start(l, k = ledger_pop(l, 0, false));
	ck_assert_int_eq(ledger_flush(l), 0);
	before = wal_size();
	ledger_finish(l, j, 0);
	ck_assert_int_eq(ledger_flush(l), 0);
	ck_assert_int_eq(wal_size() - before, frame);
	/* A job added to the group: its row, not the group's (its counts are the rows'). */
	before = wal_size();
	ck_assert_int_eq(ledger_add_jobs(l, 0, 1, &first), 0);
	ck_assert_int_eq(ledger_flush(l), 0);
	ck_assert_int_eq(wal_size() - before, frame);
	before = wal_size();
	ledger_blame(l, k, CAUSE_SIGNAL, SIGSEGV);
	ck_assert_int_eq(ledger_flush(l), 0);
	ck_assert_int_eq(wal_size() - before, 2 * frame);
	l = reopen(l, &s);
	ck_assert_uint_eq(ledger_stats(l)->culprits, 1);
	ck_assert_uint_eq(ledger_stats(l)->runs, 2);
	ck_assert_uint_eq(ledger_group_counts(l, 0)->by_state[JOB_DONE], 1);
	ck_assert_uint_eq(ledger_group_counts(l, 0)->by_state[JOB_QUEUED], 8);
	ck_assert_uint_eq(ledger_group_counts(l, 0)->total, 9);
	assert_counts_add_up(l);
	ledger_free(l);
	snap_free(&s);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM meta WHERE key IN ('runs', 'n_jobs', 'done')"),
			 0);
}
END_TEST

/* Two rounds of test_forgotten_counts_add_up: alpha's ids 1..8192 ended, in thirds. */
static void assert_forgotten_counts(struct ledger *l)
{
	const struct group_counts *c = ledger_group_counts(l, 0);
	const uint64_t crashed = 2 * 1366, done = 2 * 1365, failed = 2 * 1365;

	ck_assert_uint_eq(c->by_state[JOB_CRASHED], crashed);
	ck_assert_uint_eq(c->by_state[JOB_DONE], done);
	ck_assert_uint_eq(c->by_state[JOB_FAILED], failed);
	ck_assert_uint_eq(c->by_state[JOB_QUEUED], 4096 + 10);
	ck_assert_uint_eq(c->total, 3 * 4096 + 10);
	ck_assert_uint_eq(ledger_group_counts(l, 1)->by_state[JOB_QUEUED], 4096);
	ck_assert_uint_eq(ledger_stats(l)->by_state[JOB_CRASHED], crashed);
	ck_assert_uint_eq(ledger_stats(l)->by_state[JOB_QUEUED], 2 * 4096 + 10);
	ck_assert_uint_eq(ledger_stats(l)->runs, 2 * 4096);
	ck_assert_uint_eq(ledger_stats(l)->culprits, crashed);
}

/*
 * What forgotten jobs counted for stays across restarts and further retention: the file keeps
 * it (meta's forgotten_*, the groups' forgotten_* columns), written when retention forgets jobs.
 */
START_TEST(test_forgotten_counts_add_up)
{
	struct ledger *l = open_ledger();
	struct group_config a = group("alpha", 0, 3 * 4096 + 10), b = group("beta", 1, 4096);
	struct snap s;

	a.max_attempts = 1; /* a blame, a failure: its end */
	ck_assert_int_eq(ledger_add_group(l, &a, NULL), 0);
	ck_assert_int_eq(ledger_add_group(l, &b, NULL), 0);
	for (unsigned round = 0; round < 2; round++) {
		ledger_set_keep_ended(l, 0); /* the config's part: set at every start */
		for (uint64_t n = 0; n < 4096; n++) {
			struct job *j = ledger_pop(l, 0, false);

			ledger_start(l, j);
			if (n % 3 == 0)
				ledger_blame(l, j, CAUSE_SIGNAL, SIGSEGV);
			else
				ledger_finish(l, j, n % 3 == 1 ? 0 : 7);
		}
		ck_assert_int_eq(ledger_flush(l), 0);
		(void)ledger_collect(l);
		l = reopen(l, &s);
		snap_free(&s);
	}
	ck_assert_uint_eq(ledger_forgotten(l), 2 * 4096);
	assert_forgotten_counts(l);
	ledger_free(l);
	ck_assert_int_eq(sql_int("SELECT value FROM meta WHERE key = 'forgotten'"), 2 * 4096);
	ck_assert_int_eq(sql_int("SELECT sum(value) FROM meta WHERE key LIKE 'forgotten\\_%' ESCAPE "
				 "'\\' AND key != 'forgotten_runs'"),
			 2 * 4096);
	ck_assert_int_eq(sql_int("SELECT forgotten_total FROM groups WHERE name = 'alpha'"), 2 * 4096);
	ck_assert_int_eq(sql_int("SELECT forgotten_total FROM groups WHERE name = 'beta'"), 0);

	/* Damage to them is refused: a count of forgotten jobs that does not add up. */
	sql("UPDATE meta SET value = value + 1 WHERE key = 'forgotten_done'");
	expect_refused(-EBADMSG, "jobs forgotten, counted");
	sql("UPDATE meta SET value = value - 1 WHERE key = 'forgotten_done';"
	    "UPDATE meta SET value = 1 WHERE key = 'forgotten_queued'");
	expect_refused(-EBADMSG, "damaged: 1 forgotten jobs queued");
}
END_TEST

/*
 * A v4 file kept every count in full: the store's in meta (n_jobs, runs, one per state), a
 * group's in its row. This test writes one from a v5 store with jobs forgotten (the
 * migration's inverse: each count plus what the rows count for it) and opens it: migrated,
 * every count is what it was, forgotten jobs included.
 */
#define V4_STATE(col, state)                                                                 \
	"ALTER TABLE groups RENAME COLUMN forgotten_" col " TO " col ";"                      \
	"UPDATE groups SET " col " = " col " + (SELECT count(*) FROM job_rows r"               \
	" WHERE r.grp = groups.id AND r.state = " #state ");"                                  \
	"UPDATE meta SET key = '" col "', value = value + (SELECT count(*) FROM job_rows"     \
	" WHERE state = " #state ") WHERE key = 'forgotten_" col "';"
START_TEST(test_migrates_v4)
{
	struct ledger *l = open_ledger();
	struct group_config a = group("alpha", 0, 2 * 4096 + 5), b = group("beta", 1, 3);
	struct snap s;

	a.max_attempts = 1;
	ck_assert_int_eq(ledger_add_group(l, &a, NULL), 0);
	ck_assert_int_eq(ledger_add_group(l, &b, NULL), 0);
	ledger_set_keep_ended(l, 0);
	for (uint64_t n = 0; n < 4096 + 2; n++) {
		struct job *j = ledger_pop(l, 0, false);

		ledger_start(l, j);
		if (n % 5 == 0)
			ledger_blame(l, j, CAUSE_SIGNAL, SIGSEGV);
		else if (n < 4096 + 1)
			ledger_finish(l, j, n % 5 == 1 ? 9 : 0);
	}
	ledger_start(l, ledger_pop(l, 1, false));
	ck_assert_int_eq(ledger_flush(l), 0);
	ck_assert_uint_eq(ledger_collect(l), 4096);
	ck_assert_int_eq(ledger_flush(l), 0);
	take(l, &s);
	ledger_free(l);
	sql("ALTER TABLE groups RENAME COLUMN forgotten_total TO total;"
	    "UPDATE groups SET total = total + (SELECT count(*) FROM job_rows r"
	    " WHERE r.grp = groups.id);" V4_STATE("queued", 0) V4_STATE("running", 1)
		    V4_STATE("done", 2) V4_STATE("failed", 3) V4_STATE("crashed", 4)
			    V4_STATE("timed_out", 5) V4_STATE("cancelled", 6)
	    "UPDATE meta SET key = 'runs', value = value + (SELECT sum(runs) FROM job_rows)"
	    " WHERE key = 'forgotten_runs';"
	    "INSERT INTO meta (key, value) SELECT 'n_jobs', max(id) FROM job_rows;"
	    "PRAGMA user_version = 4;");
	ck_assert_int_eq(sql_int("SELECT total FROM groups WHERE name = 'alpha'"), 2 * 4096 + 5);
	ck_assert_int_eq(sql_int("SELECT value FROM meta WHERE key = 'n_jobs'"), 2 * 4096 + 8);

	l = open_ledger();
	assert_matches(l, &s);
	ck_assert_uint_eq(ledger_forgotten(l), 4096);
	ledger_free(l);
	snap_free(&s);
	ck_assert_int_eq(sql_int("PRAGMA user_version"), STORE_SQLITE_VERSION);
	ck_assert_int_eq(sql_int("SELECT forgotten_total FROM groups WHERE name = 'alpha'"), 4096);
	ck_assert_int_eq(sql_int("SELECT value FROM meta WHERE key = 'forgotten_crashed'"),
			 4096 / 5 + 1);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM meta WHERE key IN ('n_jobs', 'runs', "
				 "'done')"),
			 0);
}
END_TEST

START_TEST(test_not_a_store)
{
	char junk[8192];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 3);
	write_bytes(path, junk, sizeof(junk));
	expect_refused(-EBADMSG, "damaged");
	/* Another program's database. */
	unlink(path);
	sql("CREATE TABLE t (x)");
	expect_refused(-EBADMSG, "not a bulkhead store");
}
END_TEST

START_TEST(test_empty_file)
{
	write_bytes(path, "", 0);
	expect_refused(-EBADMSG, "empty");
}
END_TEST

START_TEST(test_truncated)
{
	struct stat st;

	make_store();
	ck_assert_int_eq(stat(path, &st), 0);
	sql("PRAGMA wal_checkpoint(TRUNCATE)");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_gt(st.st_size, 8192);
	ck_assert_int_eq(truncate(path, st.st_size / 2 + 100), 0);
	expect_refused(-EBADMSG, "damaged");
}
END_TEST

/*
 * tests/data/store-v2.db was written by bulkhead 3d44ed4 (schema version 2, before the exec
 * settings): `bulkhead run --state` of a config with [pool main] and [pool side], [job alpha]
 * (side, 3 x noop: done) and [job beta] (main, exec:/bin/sh -c 'exit 3', max_attempts 1:
 * failed). It opens, is migrated to v3 in place, and its groups have the default settings.
 */
START_TEST(test_migrates_v2)
{
	static const char *const as_written[] = { "main", "side" };
	const char *root = getenv("BULKHEAD_SOURCE_ROOT");
	char src[512], cmd[1200], *err = NULL;
	struct group_config d = { 0 };
	struct ledger *l;
	int alpha, beta;

	ck_assert_ptr_nonnull(root);
	snprintf(src, sizeof(src), "%s/tests/data/store-v2.db", root);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", src, path);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(sql_int("PRAGMA user_version"), 2);

	ck_assert_int_eq(open_with_pools(as_written, 2, &l, &err), 0);
	alpha = ledger_find_group(l, "alpha");
	beta = ledger_find_group(l, "beta");
	ck_assert_int_ge(alpha, 0);
	ck_assert_int_ge(beta, 0);
	ck_assert_uint_eq(ledger_group(l, (unsigned)alpha)->pool, 1);
	ck_assert_uint_eq(ledger_group_counts(l, (unsigned)alpha)->by_state[JOB_DONE], 3);
	ck_assert_uint_eq(ledger_group_counts(l, (unsigned)beta)->by_state[JOB_FAILED], 1);
	config_group_exec_defaults(&d);
	ck_assert(config_group_exec_equal(ledger_group(l, (unsigned)alpha), &d));
	ck_assert(config_group_exec_equal(ledger_group(l, (unsigned)beta), &d));
	ledger_free(l);
	ck_assert_int_eq(sql_int("PRAGMA user_version"), STORE_SQLITE_VERSION);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM groups WHERE exec = ''"), 2);
	/* And again, now at v3. */
	ck_assert_int_eq(open_with_pools(as_written, 2, &l, &err), 0);
	ck_assert_uint_eq(ledger_n_jobs(l), 4);
	ledger_free(l);
	free(err);
}
END_TEST

/*
 * A job's input is written with its row, and again with its state: a spool's file moves
 * after its job ended (and was written), and the file must say where it is now.
 */
START_TEST(test_moved_input_kept)
{
	struct group_config a = group("alpha", 0, 1);
	char *in[] = { "/spool/a", "/spool/b", "/spool/c" };
	struct ledger *l = open_ledger();
	uint64_t first;
	unsigned ga;

	ck_assert_int_eq(ledger_add_group(l, &a, &ga), 0);
	ck_assert_int_eq(ledger_add_input_jobs(l, ga, in, 3, &first), 0);
	ck_assert_int_eq(ledger_flush(l), 0);
	/* Ended and moved after its row was written; ended and moved before its first write of
	 * the end; one left queued. */
	ck_assert_int_eq(ledger_cancel_queued_job(l, ledger_job(l, first), CAUSE_CANCELLED), 0);
	ck_assert_int_eq(ledger_flush(l), 0);
	ck_assert_int_eq(ledger_move_job_input(l, ledger_job(l, first), "/spool/done/a"), 0);
	ck_assert_int_eq(ledger_cancel_queued_job(l, ledger_job(l, first + 1), CAUSE_CANCELLED),
			 0);
	ck_assert_int_eq(ledger_move_job_input(l, ledger_job(l, first + 1), "/spool/done/b"), 0);
	ck_assert_int_eq(ledger_flush(l), 0);
	ledger_free(l);
	l = open_ledger();
	ck_assert_str_eq(ledger_job_input(l, ledger_job(l, first)), "/spool/done/a");
	ck_assert_str_eq(ledger_job_input(l, ledger_job(l, first + 1)), "/spool/done/b");
	ck_assert_str_eq(ledger_job_input(l, ledger_job(l, first + 2)), "/spool/c");
	ledger_free(l);
}
END_TEST

static char *sql_text(const char *query)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	char *v;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, query, -1, &q, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	v = strdup((const char *)sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

/*
 * A v3 store at `path`, from tests/data/store-v3.sql: `sqlite3 jobs.db .dump` of the file
 * bulkheadd e95a666 (schema version 3) left when it was SIGKILLed: [pool main] and
 * [pool side]; [job alpha] (side, 3 x noop: done), [job beta] (main, 2 x exec: printing a
 * line, exit 3, max_attempts 1: failed); then submitted with keys: 4 x noop (done), 3 x
 * exec:/bin/cat {input} with inputs (done, log lines), 3 x exec:/bin/sleep 60 (one running,
 * one assigned, one cancelled); an exec: that prints a line and SIGSEGVs itself (crashed
 * after 3 attempts), and one noop (done). Its application_id and user_version are not in a
 * dump: set here as that file had them.
 */
static void make_v3_store(const char *edit)
{
	const char *root = getenv("BULKHEAD_SOURCE_ROOT");
	char src[512], *dump;
	sqlite3 *db;
	FILE *f;
	long n;

	ck_assert_ptr_nonnull(root);
	snprintf(src, sizeof(src), "%s/tests/data/store-v3.sql", root);
	f = fopen(src, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	dump = calloc(1, (size_t)n + 1);
	ck_assert_ptr_nonnull(dump);
	ck_assert_uint_eq(fread(dump, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, dump, NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA application_id = 1112034116; "
					  "PRAGMA user_version = 3",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	if (edit)
		ck_assert_int_eq(sqlite3_exec(db, edit, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	free(dump);
}

/* Every column of every job, as one text (v3's jobs and v4's job_rows have the same). */
#define ALL_JOB_ROWS(table)                                                                    \
	"SELECT group_concat(id || ',' || grp || ',' || instance || ',' || state || ',' || "   \
	"cause || ',' || cause_detail || ',' || alone || ',' || attempts || ',' || reruns || " \
	"',' || runs || ',' || flags || ',' || host_deaths || ',' || coalesce(input, '-') || " \
	"',' || coalesce(result, '-') || ',' || accepted_at || ',' || started_ms || ',' || "  \
	"ended_ms || ',' || coalesce(node, '-'), ';') FROM (SELECT * FROM " table            \
	" ORDER BY id)"

/*
 * v3 -> v4: the job row in two. Every job comes back as it was (each column, through the
 * job_rows view and through the ledger), with its log lines and submit keys; the jobs the
 * dead master was running are found running (the orphans a restart re-queues); the file
 * opens again at v4. A counter out of range in a v3 row is still refused as damage.
 */
START_TEST(test_migrates_v3)
{
	static const char *const as_written[] = { "main", "side" };
	char *before, *after, *err = NULL;
	const struct submit_key *k;
	const struct job *j;
	struct ledger *l;

	make_v3_store(NULL);
	ck_assert_int_eq(sql_int("PRAGMA user_version"), 3);
	before = sql_text(ALL_JOB_ROWS("jobs"));

	ck_assert_int_eq(open_with_pools(as_written, 2, &l, &err), 0);
	ck_assert_uint_eq(ledger_n_jobs(l), 17);
	j = ledger_job(l, 4);
	ck_assert_int_eq(j->state, JOB_FAILED);
	ck_assert_int_eq(j->attempts, 1);
	ck_assert_int_eq(j->cause_detail, 3);
	ck_assert_str_eq(ledger_job_node(l, j), "vm");
	j = ledger_job(l, 11);
	ck_assert_int_eq(j->state, JOB_DONE);
	ck_assert_str_eq(ledger_job_input(l, j), "/tmp/row-v3/in/f2");
	ck_assert_int_eq(j->flags, JOB_HAS_INPUT | JOB_ADHOC);
	ck_assert_int_eq(ledger_job(l, 13)->state, JOB_RUNNING);
	ck_assert_int_eq(ledger_job(l, 15)->state, JOB_CANCELLED);
	ck_assert_uint_eq(ledger_job(l, 15)->ended_ms, 3793);
	j = ledger_job(l, 16);
	ck_assert_int_eq(j->state, JOB_CRASHED);
	ck_assert_int_eq(j->attempts, 3);
	ck_assert_int_eq(j->runs, 3);
	ck_assert_int_eq(j->cause_detail, 11);
	ck_assert_int_eq(ledger_job(l, 1)->accepted_at, 1796424071726270);
	ck_assert_uint_eq(ledger_job(l, 1)->started_ms, 16);
	k = ledger_find_key(l, "k-cat");
	ck_assert_ptr_nonnull(k);
	ck_assert_uint_eq(k->first, 10);
	ck_assert_uint_eq(k->count, 3);
	ck_assert_str_eq(logs_of(l, 4, 12, 0), "4:out-line-4|5:out-line-5|10:1|12:3|11:2");
	ck_assert_str_eq(logs_of(l, 16, 16, 1), "16:dying");
	ledger_free(l);
	ck_assert_int_eq(sql_int("PRAGMA user_version"), STORE_SQLITE_VERSION);
	after = sql_text(ALL_JOB_ROWS("job_rows"));
	ck_assert_str_eq(after, before);
	free(after);

	/* And again, now at v4. */
	ck_assert_int_eq(open_with_pools(as_written, 2, &l, &err), 0);
	ck_assert_uint_eq(ledger_n_jobs(l), 17);
	ck_assert_int_eq(ledger_job(l, 16)->attempts, 3);
	ledger_free(l);
	after = sql_text(ALL_JOB_ROWS("job_rows"));
	ck_assert_str_eq(after, before);
	free(after);
	free(before);

	unlink(path);
	make_v3_store("UPDATE jobs SET attempts = 256 WHERE id = 16");
	expect_refused(-EBADMSG, "job 16: a value is out of range");
	free(err);
}
END_TEST

/*
 * Schema v3: a group's exec settings and retry_delay are kept (one text column, "" for the
 * defaults), and a definition that sets them is found again as it was.
 */
START_TEST(test_exec_settings_kept)
{
	struct group_config g = group("cmd", 0, 2), d = group("plain", 1, 1);
	const struct group_config *back;
	struct ledger *l = open_ledger();
	char *err = NULL;

	g.run = "exec:/bin/true";
	g.kind = JOB_KIND_EXEC;
	g.args = "";
	g.environment = "A=1 \"B=two words\"";
	g.working_directory = "/tmp";
	g.success_exit_status[0] |= 1u << 1;
	g.nice = 5;
	g.retry_delay_min = 1000;
	g.retry_delay_max = 8000;
	ck_assert_int_eq(ledger_add_group(l, &g, NULL), 0);
	ck_assert_int_eq(ledger_add_group(l, &d, NULL), 0);
	ck_assert_int_eq(ledger_flush(l), 0);
	ledger_free(l);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM groups WHERE name = 'plain' AND exec = ''"),
			 1);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM groups WHERE name = 'cmd' AND exec LIKE "
				 "'%nice = 5%'"),
			 1);

	l = open_ledger();
	back = ledger_group(l, (unsigned)ledger_find_group(l, "cmd"));
	ck_assert(config_group_exec_equal(back, &g));
	ck_assert_str_eq(back->environment, "A=1 \"B=two words\"");
	ck_assert_int_eq(back->nice, 5);
	back = ledger_group(l, (unsigned)ledger_find_group(l, "plain"));
	ck_assert(config_group_exec_equal(back, &d));
	ledger_free(l);

	/* Damage in the column is refused, naming the group. */
	{
		sqlite3 *db;

		ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
		ck_assert_int_eq(sqlite3_exec(db, "UPDATE groups SET exec = 'nice = 99' WHERE "
						  "name = 'cmd'",
					      NULL, NULL, NULL),
				 SQLITE_OK);
		sqlite3_close(db);
	}
	expect_refused(-EBADMSG, "damaged: group cmd: its exec settings: nice = 99");
	free(err);
}
END_TEST

START_TEST(test_newer_schema)
{
	make_store();
	sql("PRAGMA user_version = 99");
	expect_refused(-EPROTO, "newer bulkhead (schema version 99; this one knows up to 5)");
}
END_TEST

#define STATE_COLUMNS \
	"(id, state, cause, cause_detail, counters, started_ms, ended_ms, node, result, input)"

START_TEST(test_rows_that_do_not_add_up)
{
	make_store();
	sql("INSERT OR REPLACE INTO job_states " STATE_COLUMNS " VALUES (3, 42, 0, 0, 0, 0, 0, NULL, "
	    "NULL, NULL)");
	expect_refused(-EBADMSG, "job 3: a value is out of range");
	unlink(path);
	make_store();
	sql("INSERT OR REPLACE INTO job_states " STATE_COLUMNS " VALUES (3, 2, 0, 0, -1, 0, 0, NULL, "
	    "NULL, NULL)");
	expect_refused(-EBADMSG, "job 3: a value is out of range");
	unlink(path);
	make_store();
	sql("DELETE FROM jobs WHERE id = 5; UPDATE job_runs SET id = id + 1, n = n - 1, "
	    "instance = instance + 1 WHERE id = 5");
	expect_refused(-EBADMSG, "job 5 is missing");
	unlink(path);
	make_store();
	sql("INSERT INTO job_runs (id, n, grp, instance, flags, accepted_at) VALUES (4, 2, 0, 4, 0, "
	    "0)");
	expect_refused(-EBADMSG, "job 4 is written twice");
	unlink(path);
	make_store();
	sql("UPDATE job_runs SET n = 0");
	expect_refused(-EBADMSG, "a value is out of range");
	unlink(path);
	make_store();
	sql("INSERT INTO job_states " STATE_COLUMNS " VALUES (999, 2, 0, 0, 0, 0, 0, NULL, NULL, "
	    "NULL)");
	expect_refused(-EBADMSG, "job 999 has a state, not a row");
	unlink(path);
	make_store();
	sql("UPDATE jobs SET grp = 7 WHERE id = 2");
	expect_refused(-EBADMSG, "job 2 names group 7");
	unlink(path);
	make_store();
	sql("UPDATE groups SET forgotten_done = forgotten_done + 1 WHERE name = 'alpha'");
	expect_refused(-EBADMSG, "group alpha: its counts of forgotten jobs add up to");
}
END_TEST

START_TEST(test_in_use)
{
	struct ledger *l = open_ledger();
	pid_t pid = fork();
	int st;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Another process, as a second master would be. */
		expect_refused(-EBUSY, "in use by another process");
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the second open was not refused");
	ledger_free(l);
	ledger_free(open_ledger());
}
END_TEST

START_TEST(test_no_directory)
{
	snprintf(path, sizeof(path), "%s/missing/jobs.db", dir);
	expect_refused(-ENOENT, "No such file or directory");
}
END_TEST

/*
 * Permissions (chmod): a store the opener may not read or write, as a user other than root
 * (root passes any mode bits), in a child that drops to nobody. Both a file of mode 0000 and
 * a directory it may not enter are refused with EACCES, naming the file.
 */
START_TEST(test_permission_denied)
{
	pid_t pid;
	int st;

	if (geteuid() != 0) {
		fprintf(stderr, "SKIP permissions: needs root to become another user\n");
		return;
	}
	make_store();
	ck_assert_int_eq(chmod(path, 0), 0);
	ck_assert_int_eq(chmod(dir, 0755), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(3);
		expect_refused(-EACCES, "Permission denied");
		/* A directory it may not write: a new store cannot be made there. */
		snprintf(path, sizeof(path), "%s/new.db", dir);
		expect_refused(-EACCES, "Permission denied");
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %#x", st);
	/* Root still can: the file is unharmed. */
	ck_assert_int_eq(chmod(path, 0600), 0);
	ledger_free(open_ledger());
}
END_TEST

/* A read-only file system (a tmpfs remounted read-only in a mount namespace of our own). */
START_TEST(test_read_only_fs)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", dir, "tmpfs", 0, "size=1m") < 0) {
		fprintf(stderr, "SKIP read-only: cannot mount a tmpfs here (%s)\n", strerror(errno));
		return;
	}
	make_store();
	ck_assert_int_eq(mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY, NULL), 0);
	expect_refused(-EROFS, "Read-only file system");
	snprintf(path, sizeof(path), "%s/new.db", dir);
	expect_refused(-EROFS, "Read-only file system");
	umount2(dir, MNT_DETACH);
}
END_TEST

/*
 * A full disk: a 256 KiB tmpfs of our own (a mount namespace of this test process). A flush
 * that cannot be written says so, loses nothing, and the next flush after space is freed
 * writes it all.
 */
START_TEST(test_full_disk)
{
	char filler[300];
	struct ledger *l;
	struct snap s;
	struct group_config a = group("alpha", 0, 10);
	uint64_t first;
	int fd, r = -1;

	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", dir, "tmpfs", 0, "size=256k") < 0) {
		fprintf(stderr, "SKIP full disk: cannot mount a small tmpfs here (%s)\n",
			strerror(errno));
		return;
	}
	l = open_ledger();
	ck_assert_int_eq(ledger_add_group(l, &a, NULL), 0);
	ck_assert_int_eq(ledger_flush(l), 0);
	/* Fill what is left. */
	snprintf(filler, sizeof(filler), "%s/filler", dir);
	fd = open(filler, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	while (write(fd, filler, sizeof(filler)) > 0)
		;
	close(fd);
	for (int i = 0; i < 50 && r != -ENOSPC; i++) {
		ck_assert_int_eq(ledger_add_jobs(l, 0, 200, &first), 0);
		r = ledger_flush(l);
	}
	ck_assert_int_eq(r, -ENOSPC);
	ck_assert_msg(strstr(ledger_store_error(l), "disk is full") &&
			      strncmp(ledger_store_error(l), path, strlen(path)) == 0,
		      "%s", ledger_store_error(l));
	/* Nothing it held was dropped: with room again, the next flush writes all of it. */
	unlink(filler);
	l = reopen(l, &s);
	ck_assert_uint_gt(ledger_n_jobs(l), 10);
	ledger_free(l);
	snap_free(&s);
	umount2(dir, MNT_DETACH);
}
END_TEST

static Suite *store_sqlite_suite(void)
{
	Suite *s = suite_create("store-sqlite");
	TCase *tc = tcase_create("durable");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_flushed_comes_back_whole);
	tcase_add_test(tc, test_fresh_runs_come_back_whole);
	tcase_add_test(tc, test_nothing_after_the_last_flush);
	tcase_add_test(tc, test_restart_rule);
	tcase_add_test(tc, test_forgotten_rows_go);
	tcase_add_test(tc, test_moves_write_rows_only);
	tcase_add_test(tc, test_forgotten_counts_add_up);
	tcase_add_test(tc, test_migrates_v4);
	tcase_add_test(tc, test_partial_flush_leaves_starts);
	tcase_add_test(tc, test_partial_flush_leaves_new_starts);
	tcase_add_test(tc, test_migrates_v1);
	tcase_add_test(tc, test_migrates_v2);
	tcase_add_test(tc, test_migrates_v3);
	tcase_add_test(tc, test_moved_input_kept);
	tcase_add_test(tc, test_exec_settings_kept);
	tcase_add_test(tc, test_submit_keys);
	tcase_add_test(tc, test_logs_kept);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_not_a_store);
	tcase_add_test(tc, test_empty_file);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_newer_schema);
	tcase_add_test(tc, test_rows_that_do_not_add_up);
	tcase_add_test(tc, test_in_use);
	tcase_add_test(tc, test_no_directory);
	tcase_add_test(tc, test_permission_denied);
	tcase_add_test(tc, test_read_only_fs);
	tcase_add_test(tc, test_full_disk);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(store_sqlite_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
