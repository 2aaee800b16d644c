/* SPDX-License-Identifier: MIT */
/*
 * The ledger's state machine and every blame rule of DESIGN §3, driven directly (no
 * processes): results, retries, culprits, bystanders, suspects that re-run alone, timeouts,
 * quarantine, the re-run cap, cancellation, and the invariant that counts always add up.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/protocol.h"
#include "daemon/ledger.h"
#include "daemon/store.h"

static struct pool_config pools[2];
static struct group_config groups[3];
static struct config cfg;
static struct ledger *l;

static void setup(void)
{
	memset(pools, 0, sizeof(pools));
	memset(groups, 0, sizeof(groups));
	strcpy(pools[0].name, "main");
	strcpy(pools[1].name, "solo");
	strcpy(groups[0].name, "work");
	groups[0].pool = 0;
	groups[0].count = 4;
	groups[0].max_attempts = 3;
	groups[0].expect = JOB_DONE;
	strcpy(groups[1].name, "segv");
	groups[1].pool = 0;
	groups[1].count = 1;
	groups[1].max_attempts = 2;
	groups[1].expect = JOB_CRASHED;
	strcpy(groups[2].name, "other");
	groups[2].pool = 1;
	groups[2].count = 2;
	groups[2].max_attempts = 1;
	groups[2].expect = JOB_DONE;
	cfg = (struct config){ .pools = pools, .n_pools = 2, .groups = groups, .n_groups = 3,
			       .total_jobs = 7 };
	ck_assert_int_eq(ledger_new_from_config(&cfg, &l), 0);
}

static void teardown(void)
{
	ledger_free(l);
	l = NULL;
}

/* Counts per state must add up to the total, per group and overall. */
static void assert_sums(void)
{
	const struct ledger_stats *s = ledger_stats(l);
	uint64_t sum = 0;

	for (int i = 0; i < _JOB_STATE_MAX; i++)
		sum += s->by_state[i];
	ck_assert_uint_eq(sum, ledger_n_jobs(l));
	for (unsigned g = 0; g < cfg.n_groups; g++) {
		const struct group_counts *gc = ledger_group_counts(l, g);
		uint64_t gs = 0;

		for (int i = 0; i < _JOB_STATE_MAX; i++)
			gs += gc->by_state[i];
		ck_assert_uint_eq(gs, gc->total);
	}
}

static struct job *start_next(unsigned pool, bool alone)
{
	struct job *j = ledger_pop(l, pool, alone);

	ck_assert_ptr_nonnull(j);
	ledger_start(l, j);
	ck_assert_int_eq(j->state, JOB_RUNNING);
	return j;
}

START_TEST(test_initial_queues)
{
	ck_assert_uint_eq(ledger_n_jobs(l), 7);
	ck_assert_uint_eq(ledger_queued(l, 0, false), 5);
	ck_assert_uint_eq(ledger_queued(l, 1, false), 2);
	ck_assert_uint_eq(ledger_queued(l, 0, true), 0);
	ck_assert_uint_eq(ledger_unfinished(l), 7);
	ck_assert_ptr_null(ledger_job(l, 0));
	ck_assert_ptr_null(ledger_job(l, 8));
	ck_assert_uint_eq(ledger_job(l, 5)->group, 1);
	/* FIFO in config order */
	for (uint64_t id = 1; id <= 5; id++)
		ck_assert_uint_eq(ledger_pop(l, 0, false)->id, id);
	ck_assert_ptr_null(ledger_pop(l, 0, false));
	assert_sums();
}
END_TEST

START_TEST(test_done_and_retry_then_failed)
{
	struct job *j = start_next(0, false);
	char cause[32];

	ledger_finish(l, j, 0);
	ck_assert_int_eq(j->state, JOB_DONE);
	/* A done job never changes again. */
	ledger_finish(l, j, 1);
	ledger_blame(l, j, CAUSE_SIGNAL, SIGSEGV);
	ck_assert_int_eq(j->state, JOB_DONE);

	j = start_next(0, false); /* work#2 */
	for (int attempt = 1; attempt <= 3; attempt++) {
		ledger_finish(l, j, 5);
		ck_assert_uint_eq(j->attempts, attempt);
		if (attempt < 3) {
			ck_assert_int_eq(j->state, JOB_QUEUED);
			/* retried at the back of the queue */
			while (ledger_pop(l, 0, false) != j)
				;
			ledger_start(l, j);
		}
	}
	ck_assert_int_eq(j->state, JOB_FAILED);
	ck_assert_str_eq(ledger_cause_string(j, cause, sizeof(cause)), "status 5");
	ck_assert_uint_eq(j->runs, 3);
	assert_sums();
}
END_TEST

START_TEST(test_crash_frame_culprit_and_bystanders)
{
	struct job *a = start_next(0, false), *b = start_next(0, false);
	struct job *c = start_next(0, false), *d = start_next(0, false);
	struct job *segv = start_next(0, false);
	struct job *jobs[] = { a, segv, b, c, d };
	uint8_t flags[] = { HELD_STARTED, HELD_STARTED, HELD_STARTED, HELD_STARTED, 0 };
	struct death death = { .crash_frame = true, .crash_job = segv->id,
			       .crash_kind = BH_CRASH_SIGNAL, .crash_signo = SIGSEGV,
			       .signaled = true, .status = SIGSEGV };
	char cause[32];

	ck_assert_int_eq(ledger_worker_died(l, &death, jobs, flags, 5), DEATH_CULPRIT);
	ck_assert_uint_eq(segv->attempts, 1);
	ck_assert_int_eq(segv->state, JOB_QUEUED);
	/* The culprit is retried alone: it never takes bystanders down twice. */
	ck_assert(segv->alone);
	ck_assert_uint_eq(ledger_queued(l, 0, true), 1);
	for (int i = 0; i < 5; i++) {
		if (jobs[i] == segv)
			continue;
		ck_assert_int_eq(jobs[i]->state, JOB_QUEUED);
		ck_assert_uint_eq(jobs[i]->attempts, 0);
		ck_assert(!jobs[i]->alone);
	}
	/* Started bystanders count a re-run; d had not started: re-queued, not counted. */
	ck_assert_uint_eq(a->reruns, 1);
	ck_assert_uint_eq(d->reruns, 0);
	ck_assert_uint_eq(ledger_stats(l)->reruns_bystander, 3);
	ck_assert_uint_eq(ledger_stats(l)->culprits, 1);
	/* Bystanders went to the back, in the order they were held. */
	ck_assert_ptr_eq(ledger_pop(l, 0, false), a);
	ck_assert_ptr_eq(ledger_pop(l, 0, false), b);
	/* Second crash: max_attempts 2 reached, quarantined as crashed with its cause. */
	ck_assert_ptr_eq(ledger_pop(l, 0, true), segv);
	ledger_start(l, segv);
	ck_assert_int_eq(ledger_worker_died(l, &death, &segv, flags, 1), DEATH_CULPRIT);
	ck_assert_int_eq(segv->state, JOB_CRASHED);
	ck_assert_str_eq(ledger_cause_string(segv, cause, sizeof(cause)), "SIGSEGV");
	ck_assert(ledger_group_ok(l, 1));
	assert_sums();
}
END_TEST

START_TEST(test_exit_and_oom_causes)
{
	struct job *a = start_next(0, false), *b = start_next(0, false);
	uint8_t flags[] = { HELD_STARTED };
	struct death exit_death = { .crash_frame = true, .crash_job = a->id,
				    .crash_kind = BH_CRASH_EXIT, .signaled = false, .status = 7 };
	struct death oom = { .crash_frame = true, .crash_job = b->id, .crash_kind = BH_CRASH_OOM,
			     .crash_signo = SIGABRT, .signaled = true, .status = SIGABRT };
	char cause[32];

	ledger_worker_died(l, &exit_death, &a, flags, 1);
	ck_assert_str_eq(ledger_cause_string(a, cause, sizeof(cause)), "exit(7)");
	ledger_worker_died(l, &oom, &b, flags, 1);
	ck_assert_str_eq(ledger_cause_string(b, cause, sizeof(cause)), "memory");
	assert_sums();
}
END_TEST

START_TEST(test_no_evidence_suspects_run_alone)
{
	struct job *a = start_next(0, false), *b = start_next(0, false);
	struct job *c = start_next(0, false);
	struct job *jobs[] = { a, b, c };
	uint8_t flags[] = { HELD_STARTED, HELD_STARTED, 0 };
	struct death killed = { .signaled = true, .status = SIGKILL };
	uint8_t solo_flags[] = { HELD_STARTED };
	struct job *s;

	ck_assert_int_eq(ledger_worker_died(l, &killed, jobs, flags, 3), DEATH_SUSPECTS);
	ck_assert(a->alone && b->alone);
	ck_assert(!c->alone); /* had not started: a bystander */
	ck_assert_uint_eq(a->attempts, 0);
	ck_assert_uint_eq(ledger_queued(l, 0, true), 2);
	ck_assert_uint_eq(ledger_stats(l)->reruns_suspect, 2);
	ck_assert_uint_eq(ledger_stats(l)->reruns_bystander, 0); /* c had not started */
	ck_assert_int_eq(c->state, JOB_QUEUED);

	/* Re-run alone and done: no blame ever. */
	s = start_next(0, true);
	ck_assert_ptr_eq(s, a);
	ledger_finish(l, s, 0);
	ck_assert_int_eq(a->state, JOB_DONE);
	ck_assert_uint_eq(a->attempts, 0);

	/* Re-run alone and killed again: now it is the culprit, with the signal as cause. */
	s = start_next(0, true);
	ck_assert_ptr_eq(s, b);
	killed.solo = true;
	ck_assert_int_eq(ledger_worker_died(l, &killed, &s, solo_flags, 1), DEATH_CULPRIT);
	ck_assert_uint_eq(b->attempts, 1);
	ck_assert_int_eq(b->cause, CAUSE_SIGNAL);
	ck_assert_int_eq(b->cause_detail, SIGKILL);
	assert_sums();
}
END_TEST

START_TEST(test_crash_frame_for_unknown_job_is_no_evidence)
{
	struct job *a = start_next(0, false);
	uint8_t flags[] = { HELD_STARTED };
	struct death d = { .crash_frame = true, .crash_job = 999, .crash_kind = BH_CRASH_SIGNAL,
			   .crash_signo = SIGSEGV, .signaled = true, .status = SIGSEGV };

	ck_assert_int_eq(ledger_worker_died(l, &d, &a, flags, 1), DEATH_SUSPECTS);
	ck_assert(a->alone);
	ck_assert_uint_eq(a->attempts, 0);
	d.crash_job = 0; /* crash outside any job */
	a = start_next(0, true);
	d.solo = false;
	ck_assert_int_eq(ledger_worker_died(l, &d, &a, flags, 1), DEATH_SUSPECTS);
	assert_sums();
}
END_TEST

START_TEST(test_timeout_blame_and_quarantine)
{
	struct job *a = start_next(0, false), *b = start_next(0, false);
	struct job *jobs[] = { a, b };
	uint8_t flags[] = { HELD_STARTED | HELD_TIMED_OUT, HELD_STARTED };
	struct death killed = { .signaled = true, .status = SIGKILL };
	char cause[32];

	for (int attempt = 1; attempt <= 3; attempt++) {
		ck_assert_int_eq(ledger_worker_died(l, &killed, jobs, flags, 2), DEATH_CULPRIT);
		ck_assert_uint_eq(a->attempts, attempt);
		ck_assert_uint_eq(b->attempts, 0);
		if (attempt < 3) {
			struct job *x;

			ck_assert_ptr_eq(ledger_pop(l, 0, true), a);
			ledger_start(l, a);
			while ((x = ledger_pop(l, 0, false)) != NULL)
				if (x == b)
					ledger_start(l, x);
		}
	}
	ck_assert_int_eq(a->state, JOB_TIMED_OUT);
	ck_assert_str_eq(ledger_cause_string(a, cause, sizeof(cause)), "timeout");
	ck_assert_int_eq(b->state, JOB_QUEUED);
	assert_sums();
}
END_TEST

START_TEST(test_rerun_cap_ends_job)
{
	/*
	 * Its own ledger: one victim (pool 1, so that it can be taken back out of its queue
	 * each round) next to eleven different crashers (pool 0). The ledger does not care that
	 * a real worker serves one pool only.
	 */
	struct group_config g[2] = {
		{ .name = "victim", .pool = 1, .count = 1, .max_attempts = 3, .expect = JOB_DONE },
		{ .name = "crash", .pool = 0, .count = JOB_RERUN_MAX + 1, .max_attempts = 1,
		  .expect = JOB_CRASHED },
	};
	struct config c = { .pools = pools, .n_pools = 2, .groups = g, .n_groups = 2,
			    .total_jobs = 2 + JOB_RERUN_MAX };
	uint8_t flags[] = { HELD_STARTED, HELD_STARTED };
	struct death d = { .crash_frame = true, .crash_kind = BH_CRASH_SIGNAL,
			   .crash_signo = SIGSEGV, .signaled = true, .status = SIGSEGV };
	struct ledger *own;

	ck_assert_int_eq(ledger_new_from_config(&c, &own), 0);
	for (int i = 0; i <= JOB_RERUN_MAX; i++) {
		/* From its third hit on, the victim is queued to run alone. */
		struct job *victim = ledger_pop(own, 1, i >= BYSTANDER_ALONE_AFTER);
		struct job *crasher = ledger_pop(own, 0, false);
		struct job *held[2] = { victim, crasher };

		ck_assert_ptr_nonnull(victim);
		ck_assert_ptr_nonnull(crasher);
		ledger_start(own, victim);
		ledger_start(own, crasher);
		d.crash_job = crasher->id;
		ck_assert_int_eq(ledger_worker_died(own, &d, held, flags, 2), DEATH_CULPRIT);
		ck_assert_int_eq(crasher->state, JOB_CRASHED);
		if (i < JOB_RERUN_MAX) {
			ck_assert_int_eq(victim->state, JOB_QUEUED);
			ck_assert_uint_eq(victim->reruns, i + 1);
			ck_assert_int_eq(victim->alone, i + 1 >= BYSTANDER_ALONE_AFTER);
			ck_assert_uint_eq(ledger_queued(own, 1, true), i + 1 >= BYSTANDER_ALONE_AFTER);
		} else {
			ck_assert_int_eq(victim->state, JOB_CRASHED);
			ck_assert_int_eq(victim->cause, CAUSE_RERUNS);
			ck_assert_uint_eq(victim->attempts, 0);
		}
	}
	ck_assert_uint_eq(ledger_unfinished(own), 0);
	ledger_free(own);
}
END_TEST

START_TEST(test_idle_death_is_worker_fault)
{
	struct death d = { .signaled = true, .status = SIGKILL };

	ck_assert_int_eq(ledger_worker_died(l, &d, NULL, NULL, 0), DEATH_IDLE);
	assert_sums();
}
END_TEST

START_TEST(test_cancel_and_unpop)
{
	struct job *a = ledger_pop(l, 0, false);

	ledger_unpop(l, a);
	ck_assert_ptr_eq(ledger_pop(l, 0, false), a);
	ledger_start(l, a);
	ledger_cancel(l, a, CAUSE_STOPPED);
	ck_assert_int_eq(a->state, JOB_CANCELLED);
	ck_assert_uint_eq(ledger_cancel_queued(l, 0, CAUSE_POOL_FAILED), 4);
	ck_assert_uint_eq(ledger_queued(l, 0, false), 0);
	ck_assert_uint_eq(ledger_stats(l)->by_state[JOB_CANCELLED], 5);
	ck_assert(!ledger_group_ok(l, 0));
	ck_assert_uint_eq(ledger_unfinished(l), 2);
	assert_sums();
}
END_TEST

START_TEST(test_names)
{
	char buf[32];
	struct job *j = ledger_job(l, 3);

	ck_assert_str_eq(ledger_job_name(l, j, buf, sizeof(buf)), "work#3");
	ck_assert_str_eq(signal_name(SIGSEGV, buf, sizeof(buf)), "SIGSEGV");
	ck_assert_str_eq(signal_name(SIGKILL, buf, sizeof(buf)), "SIGKILL");
}
END_TEST

static struct job *hooked[16];
static int n_hooked;

static void end_hook(void *userdata, struct job *j)
{
	ck_assert_ptr_eq(userdata, &n_hooked);
	hooked[n_hooked++] = j;
}

START_TEST(test_add_jobs_cancel_queued_and_end_hook)
{
	uint64_t first;
	struct job *a, *b;

	ck_assert_int_eq(ledger_add_end_hook(l, end_hook, &n_hooked), 0);
	/* Three more instances of `work` (4 already): numbered on, queued at the back. */
	ck_assert_int_eq(ledger_add_jobs(l, 0, 3, &first), 0);
	ck_assert_uint_eq(first, 8);
	ck_assert_uint_eq(ledger_n_jobs(l), 10);
	ck_assert_uint_eq(ledger_job(l, 10)->instance, 7);
	ck_assert_uint_eq(ledger_group_counts(l, 0)->total, 7);
	ck_assert_uint_eq(ledger_queued(l, 0, false), 8);
	assert_sums();

	/* A queued job is taken out of the middle of its queue; others keep their order. */
	a = ledger_job(l, 9);
	ck_assert_int_eq(ledger_cancel_queued_job(l, a, CAUSE_CANCELLED), 0);
	ck_assert_int_eq(a->state, JOB_CANCELLED);
	ck_assert_uint_eq(ledger_queued(l, 0, false), 7);
	ck_assert_int_eq(n_hooked, 1);
	ck_assert_ptr_eq(hooked[0], a);
	/* Running or ended jobs are not "queued". */
	b = start_next(0, false);
	ck_assert_int_eq(ledger_cancel_queued_job(l, b, CAUSE_CANCELLED), -EBUSY);
	ck_assert_int_eq(ledger_cancel_queued_job(l, a, CAUSE_CANCELLED), -EBUSY);
	ledger_finish(l, b, 0);
	ck_assert_int_eq(n_hooked, 2);
	for (uint64_t want = 2; want <= 10; want++) {
		struct job *x;

		if (want == 9 || want == 6 || want == 7)
			continue; /* cancelled; in pool 1 */
		x = ledger_pop(l, 0, false);
		ck_assert_ptr_nonnull(x);
		ck_assert_uint_eq(x->id, want);
	}
	ck_assert_ptr_null(ledger_pop(l, 0, false));
	assert_sums();
}
END_TEST

static int hook_order[8], n_order;

static void hook_a(void *userdata, struct job *j)
{
	hook_order[n_order++] = 1;
}

static void hook_b(void *userdata, struct job *j)
{
	hook_order[n_order++] = 2;
}

START_TEST(test_end_hooks_in_order_and_removed)
{
	n_order = 0;
	ck_assert_int_eq(ledger_add_end_hook(l, hook_a, NULL), 0);
	ck_assert_int_eq(ledger_add_end_hook(l, hook_b, NULL), 0);
	ledger_finish(l, start_next(0, false), 0);
	ck_assert_int_eq(n_order, 2);
	ck_assert_int_eq(hook_order[0], 1);
	ck_assert_int_eq(hook_order[1], 2);
	ledger_remove_end_hook(l, hook_a, NULL);
	ledger_remove_end_hook(l, hook_a, NULL); /* not there: nothing */
	ledger_finish(l, start_next(0, false), 0);
	ck_assert_int_eq(n_order, 3);
	ck_assert_int_eq(hook_order[2], 2);
}
END_TEST

/* A group's inputs are copied: job NAME#i has input i, even after the caller's copy is gone. */
START_TEST(test_group_inputs_deep_copied)
{
	struct group_config g = { .name = "files", .pool = 1, .count = 3, .max_attempts = 1,
				  .expect = JOB_DONE };
	char *paths[3];
	unsigned idx;
	uint64_t first;
	struct job *j;

	for (int i = 0; i < 3; i++) {
		paths[i] = malloc(32);
		snprintf(paths[i], 32, "/in/file-%d", i + 1);
	}
	g.run = strdup("exec:/bin/true {input}");
	g.args = strdup("");
	g.inputs = strdup("/in/*");
	g.spool = strdup("");
	g.output = strdup("/out");
	g.input_paths = paths;
	g.n_inputs = 3;
	ck_assert_int_eq(ledger_add_group(l, &g, &idx), 0);
	for (int i = 0; i < 3; i++) {
		memset(paths[i], 'x', 31);
		free(paths[i]);
	}
	free(g.run);
	free(g.args);
	free(g.inputs);
	free(g.spool);
	free(g.output);
	ck_assert_str_eq(ledger_group(l, idx)->inputs, "/in/*");
	ck_assert_str_eq(ledger_group(l, idx)->output, "/out");
	ck_assert_str_eq(ledger_group(l, idx)->spool, "");
	ck_assert_uint_eq(ledger_group(l, idx)->n_inputs, 3);
	for (uint64_t id = 8; id <= 10; id++) {
		char want[32];

		j = ledger_job(l, id);
		snprintf(want, sizeof(want), "/in/file-%u", j->instance);
		ck_assert_str_eq(ledger_job_input(l, j), want);
		ck_assert_ptr_null(j->extra); /* no allocation per job for them */
	}
	/* Jobs of groups without inputs, and more jobs added by count, have none. */
	ck_assert_ptr_null(ledger_job_input(l, ledger_job(l, 1)));
	ck_assert_int_eq(ledger_add_jobs(l, idx, 1, &first), 0);
	ck_assert_ptr_null(ledger_job_input(l, ledger_job(l, first)));
	/* The other string fields of a memset config (NULL) become "". */
	ck_assert_str_eq(ledger_group(l, 0)->inputs, "");
	ck_assert_str_eq(ledger_group(l, 0)->output, "");
	assert_sums();
}
END_TEST

START_TEST(test_add_input_jobs)
{
	char *in[] = { "/spool/a", "/spool/b b" };
	char *bad[] = { "/ok", "" };
	char *toolong[1];
	uint64_t first;
	struct job *j;

	ck_assert_int_eq(ledger_add_input_jobs(l, 2, bad, 2, &first), -EINVAL);
	toolong[0] = calloc(1, BH_INPUT_MAX + 2);
	memset(toolong[0], 'a', BH_INPUT_MAX + 1);
	ck_assert_int_eq(ledger_add_input_jobs(l, 2, toolong, 1, &first), -EINVAL);
	free(toolong[0]);
	ck_assert_uint_eq(ledger_n_jobs(l), 7); /* all or nothing */

	ck_assert_int_eq(ledger_add_input_jobs(l, 2, in, 2, &first), 0);
	ck_assert_uint_eq(first, 8);
	ck_assert_uint_eq(ledger_group_counts(l, 2)->total, 4);
	j = ledger_job(l, 9);
	ck_assert_uint_eq(j->instance, 4);
	ck_assert_ptr_ne(ledger_job_input(l, j), in[1]); /* a copy */
	ck_assert_str_eq(ledger_job_input(l, j), "/spool/b b");
	ck_assert_str_eq(ledger_job_input(l, ledger_job(l, 8)), "/spool/a");
	ck_assert_uint_eq(ledger_queued(l, 1, false), 4);
	/* A result of such a job keeps its input. */
	ck_assert_int_eq(ledger_set_result(l, j, "ok", 2), 0);
	ck_assert_str_eq(ledger_job_input(l, j), "/spool/b b");
	ck_assert_int_eq(ledger_add_input_jobs(l, 2, in, 0, &first), 0);
	assert_sums();
}
END_TEST

/* keep_ended: whole chunks of ended jobs are forgotten, oldest first; counts stay. */
START_TEST(test_retention)
{
	uint64_t first, n;
	struct job *j;

	ck_assert_int_eq(ledger_add_jobs(l, 0, 3 * 4096, &first), 0);
	n = ledger_n_jobs(l); /* 7 + 12288: four chunks of 4096 */
	ck_assert_uint_eq(ledger_collect(l), 0); /* nothing ended */
	j = start_next(0, false); /* job 1 runs: its chunk cannot go */
	ledger_cancel_queued(l, 0, CAUSE_CANCELLED);
	ledger_cancel_queued(l, 1, CAUSE_CANCELLED);
	ledger_set_keep_ended(l, 4096);
	ck_assert_uint_eq(ledger_collect(l), 0);
	ledger_finish(l, j, 0);
	ck_assert_uint_eq(ledger_stats(l)->by_state[JOB_DONE], 1);

	ledger_pin(l, true); /* a client waits: nothing goes */
	ck_assert_uint_eq(ledger_collect(l), 0);
	ledger_pin(l, false);
	/* 12295 ended; each chunk freed must leave >= 4096: chunks 0 and 1 go. */
	ck_assert_uint_eq(ledger_collect(l), 8192);
	ck_assert_uint_eq(ledger_forgotten(l), 8192);
	ck_assert_ptr_null(ledger_job(l, 1));
	ck_assert(ledger_job_forgotten(l, 1));
	ck_assert(ledger_job_forgotten(l, 8192));
	ck_assert_ptr_nonnull(ledger_job(l, 8193));
	ck_assert(!ledger_job_forgotten(l, 8193));
	ck_assert(!ledger_job_forgotten(l, n + 1)); /* never given is not forgotten */
	ck_assert_ptr_null(ledger_job(l, n + 1));
	/* The counts are untouched. */
	ck_assert_uint_eq(ledger_stats(l)->by_state[JOB_DONE], 1);
	ck_assert_uint_eq(ledger_stats(l)->by_state[JOB_CANCELLED], n - 1);
	ck_assert_uint_eq(ledger_unfinished(l), 0);
	assert_sums();
	/* Nothing more to forget; new jobs go on from the last chunk. */
	ck_assert_uint_eq(ledger_collect(l), 0);
	ck_assert_int_eq(ledger_add_jobs(l, 0, 1, &first), 0);
	ck_assert_uint_eq(first, n + 1);
	ck_assert_ptr_nonnull(ledger_job(l, first));
	ledger_set_keep_ended(l, 0);
	ck_assert_uint_eq(ledger_collect(l), 4096); /* chunk 2; chunk 3 is the last */
	assert_sums();
}
END_TEST

/* A spool moves an ended job's file: the job's input follows it; its result stays. */
START_TEST(test_move_job_input)
{
	char *in[] = { "/spool/a" };
	uint64_t first;
	struct job *j;

	ck_assert_int_eq(ledger_add_input_jobs(l, 2, in, 1, &first), 0);
	j = ledger_job(l, first);
	ck_assert_int_eq(ledger_set_result(l, j, "ok", 2), 0);
	ck_assert_int_eq(ledger_move_job_input(l, j, "/spool/done/a"), -EINVAL); /* not ended */
	ck_assert_int_eq(ledger_cancel_queued_job(l, j, CAUSE_CANCELLED), 0);
	ck_assert_int_eq(ledger_move_job_input(l, j, ""), -EINVAL);
	ck_assert_int_eq(ledger_move_job_input(l, j, "/spool/done/a"), 0);
	ck_assert_str_eq(ledger_job_input(l, j), "/spool/done/a");
	ck_assert_str_eq(ledger_job_result(l, j), "ok");
	/* A job without an input gets none. */
	j = ledger_job(l, 1);
	ck_assert_int_eq(ledger_cancel_queued_job(l, j, CAUSE_CANCELLED), 0);
	ck_assert_int_eq(ledger_move_job_input(l, j, "/x"), -EINVAL);
	ck_assert_ptr_null(ledger_job_input(l, j));
	assert_sums();
}
END_TEST

START_TEST(test_result_sanitised_and_progress)
{
	struct job *j = start_next(0, false);
	char long_text[400];

	ck_assert_ptr_null(ledger_job_result(l, j));
	ck_assert_int_eq(ledger_job_progress(l, j), -1);
	ck_assert_int_eq(ledger_set_result(l, j, "a\tb\nc\x1b[31m\x7f!", 12), 0);
	ck_assert_str_eq(ledger_job_result(l, j), "a?b?c?[31m?!");
	ck_assert_int_eq(ledger_set_result(l, j, "second", 3), 0); /* not NUL-terminated */
	ck_assert_str_eq(ledger_job_result(l, j), "sec");
	memset(long_text, 'r', sizeof(long_text));
	ck_assert_int_eq(ledger_set_result(l, j, long_text, sizeof(long_text)), 0);
	ck_assert_uint_eq(strlen(ledger_job_result(l, j)), BH_RESULT_MAX);
	ck_assert_int_eq(ledger_set_result(l, j, "", 0), 0);
	ck_assert_str_eq(ledger_job_result(l, j), "");

	ck_assert_int_eq(ledger_set_progress(l, j, 250), 0);
	ck_assert_int_eq(ledger_job_progress(l, j), 250);
	ck_assert_int_eq(ledger_set_progress(l, j, 5000), 0);
	ck_assert_int_eq(ledger_job_progress(l, j), 1000);
	/* Progress belongs to a run: gone when the job ends or starts again. */
	ledger_finish(l, j, 1);
	ck_assert_int_eq(ledger_job_progress(l, j), -1);
	ck_assert_ptr_eq(ledger_pop(l, 0, false), ledger_job(l, 2));
	ledger_unpop(l, ledger_job(l, 2));
	ck_assert_str_eq(ledger_job_result(l, j), ""); /* the last result stays */
	assert_sums();
}
END_TEST

/* An exec: job's command killed by a signal: blamed, but not made to run alone. */
START_TEST(test_blame_command_not_alone)
{
	struct job *j = ledger_job(l, 5); /* segv#1, max_attempts 2 */
	char buf[64];

	for (int i = 0; i < 4; i++)
		ledger_start(l, ledger_pop(l, 0, false));
	ck_assert_ptr_eq(start_next(0, false), j);
	ledger_blame_command(l, j, CAUSE_SIGNAL, SIGSEGV);
	ck_assert_int_eq(j->state, JOB_QUEUED);
	ck_assert_int_eq(j->alone, 0);
	ck_assert_uint_eq(ledger_queued(l, 0, true), 0);
	ck_assert_ptr_eq(start_next(0, false), j);
	ledger_blame_command(l, j, CAUSE_TIMEOUT, 0);
	ck_assert_int_eq(j->state, JOB_TIMED_OUT);
	ck_assert_str_eq(ledger_cause_string(j, buf, sizeof(buf)), "timeout");
	ck_assert_uint_eq(ledger_stats(l)->culprits, 2);
	assert_sums();
}
END_TEST

START_TEST(test_spawn_failed_counts_attempts)
{
	struct job *j = start_next(0, false); /* work#1, max_attempts 3 */
	char buf[64];

	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(j->state, JOB_RUNNING);
		ledger_spawn_failed(l, j, ENOENT);
		if (i < 2) {
			ck_assert_int_eq(j->state, JOB_QUEUED);
			ck_assert_int_eq(j->alone, 0);
			while (ledger_pop(l, 0, false) != j)
				;
			ledger_start(l, j);
		}
	}
	ck_assert_int_eq(j->state, JOB_FAILED);
	ck_assert_uint_eq(j->attempts, 3);
	ck_assert_str_eq(ledger_cause_string(j, buf, sizeof(buf)),
			 "spawn failed: No such file or directory");
}
END_TEST

/* A running job cancelled by request: done if it returns 0, else cancelled, never re-run. */
/* Pops pool 0's jobs until j (the others stay queued, out of the queue). */
static void pop_until(struct job *j)
{
	struct job *p;

	while ((p = ledger_pop(l, 0, false)) != j)
		ck_assert_ptr_nonnull(p);
}

static int64_t fake_now_us;
static int64_t last_due;

static int64_t hold_clock(void *userdata)
{
	(void)userdata;
	return fake_now_us;
}

static void on_hold(void *userdata, int64_t due)
{
	(void)userdata;
	last_due = due;
}

/*
 * retry_delay: a failed (or blamed) job waits out of its queue, still queued, LO then 2 LO...
 * at most HI; due ones go back at the back of the queue; a held job can be cancelled, and an
 * emptied pool takes its held jobs with it; a bystander's re-run does not wait.
 */
START_TEST(test_retry_delay_holds)
{
	struct job *j, *k;
	uint64_t first;

	ledger_free(l);
	groups[0].retry_delay_min = 1000;
	groups[0].retry_delay_max = 3000;
	groups[0].max_attempts = 10;
	ck_assert_int_eq(ledger_new_from_config(&cfg, &l), 0);
	fake_now_us = 1000000;
	ledger_set_clock(l, hold_clock, NULL);
	ledger_set_hold_hook(l, on_hold, NULL);

	j = start_next(0, false); /* work#1 */
	ck_assert_uint_eq(ledger_queued(l, 0, false), 4);
	ledger_finish(l, j, 5);
	ck_assert_int_eq(j->state, JOB_QUEUED);
	ck_assert_uint_eq(ledger_n_held(l), 1);
	ck_assert_uint_eq(ledger_queued(l, 0, false), 4); /* not in the queue */
	ck_assert_int_eq(last_due, 1000000 + 1000);
	ck_assert_int_eq(ledger_hold_next(l), 1000000 + 1000);
	assert_sums();
	ck_assert_uint_eq(ledger_hold_release(l, 1000000 + 999, -1), 0);
	ck_assert_uint_eq(ledger_hold_release(l, 1000000 + 1000, -1), 1);
	ck_assert_uint_eq(ledger_n_held(l), 0);
	ck_assert_int_eq(ledger_hold_next(l), 0);
	ck_assert_uint_eq(ledger_queued(l, 0, false), 5);
	/* At the back: the others first. */
	for (int i = 0; i < 4; i++)
		ck_assert_ptr_ne(ledger_pop(l, 0, false), j);
	ck_assert_ptr_eq(ledger_pop(l, 0, false), j);
	ledger_start(l, j);
	ledger_blame_command(l, j, CAUSE_TIMEOUT, 0); /* a blame doubles it */
	ck_assert_int_eq(last_due, 1000000 + 2000);
	ck_assert_uint_eq(ledger_n_held(l), 1);
	/* Cancelled while it waits. */
	ck_assert_int_eq(ledger_cancel_queued_job(l, j, CAUSE_CANCELLED), 0);
	ck_assert_int_eq(j->state, JOB_CANCELLED);
	ck_assert_uint_eq(ledger_n_held(l), 0);
	assert_sums();

	/* A bystander does not wait. */
	ck_assert_int_eq(ledger_add_jobs(l, 0, 1, &first), 0);
	k = ledger_job(l, first);
	pop_until(k);
	ledger_start(l, k);
	ledger_bystander(l, k, true);
	ck_assert_int_eq(k->state, JOB_QUEUED);
	ck_assert_uint_eq(ledger_n_held(l), 0);

	/* The capped delay, and a pool emptied with a job held. */
	pop_until(k);
	ledger_start(l, k);
	k->attempts = 5;
	ledger_finish(l, k, 1);
	ck_assert_int_eq(last_due, 1000000 + 3000);
	ck_assert_uint_eq(ledger_n_held(l), 1);
	ck_assert_uint_ge(ledger_cancel_queued(l, 0, CAUSE_STOPPED), 1);
	ck_assert_int_eq(k->state, JOB_CANCELLED);
	ck_assert_uint_eq(ledger_n_held(l), 0);
	assert_sums();
}
END_TEST

START_TEST(test_cancel_requested_running_job)
{
	struct job *a = start_next(0, false), *b = start_next(0, false);
	struct job *c = start_next(0, false), *d = start_next(0, false);
	struct job *q = ledger_job(l, 5), *e;

	ledger_request_cancel(l, a);
	ledger_request_cancel(l, b);
	ledger_request_cancel(l, c);
	ledger_request_cancel(l, d);
	ledger_finish(l, a, 0);
	ck_assert_int_eq(a->state, JOB_DONE);
	ledger_finish(l, b, 15);
	ck_assert_int_eq(b->state, JOB_CANCELLED);
	ck_assert_int_eq(b->cause, CAUSE_CANCELLED);
	ck_assert_uint_eq(b->attempts, 0);
	/* On a worker that died for another job it is not re-queued either. */
	ledger_bystander(l, c, true);
	ck_assert_int_eq(c->state, JOB_CANCELLED);
	ledger_spawn_failed(l, d, EACCES);
	ck_assert_int_eq(d->state, JOB_CANCELLED);
	/* Final jobs take no request. */
	e = start_next(1, false);
	ledger_finish(l, e, 0);
	ledger_request_cancel(l, e);
	ck_assert_int_eq(e->flags & JOB_CANCEL_REQUESTED, 0);
	ck_assert_int_eq(q->state, JOB_QUEUED);
	assert_sums();
}
END_TEST

/* A submitted variant like the config's "work" group, of the same pool and limits. */
static struct group_config variant(char *run, char *args)
{
	struct group_config g = groups[0];

	g.run = run;
	g.args = args;
	g.output = (char *)"";
	g.kind = JOB_KIND_BUILTIN;
	return g;
}

/*
 * The same submission again is the same group; another definition is another group. Each
 * group has a spec id of its own, never given again, even when its slot is.
 */
START_TEST(test_variants_dedupe)
{
	struct group_config a = variant("builtin:spin", "us=5"), b = variant("builtin:spin", "us=6");
	unsigned ga, ga2, gb, gc;
	uint64_t first, second;

	ck_assert_int_eq(ledger_add_variant(l, &a, "spin", 2, NULL, 0, &ga, &first), 0);
	ck_assert_str_eq(ledger_group(l, ga)->name, "spin@1");
	ck_assert_uint_eq(first, 8);
	ck_assert_int_eq(ledger_add_variant(l, &a, "spin", 3, NULL, 0, &ga2, &second), 0);
	ck_assert_uint_eq(ga2, ga);
	ck_assert_uint_eq(second, 10);
	ck_assert_uint_eq(ledger_group_counts(l, ga)->total, 5);
	ck_assert_uint_eq(ledger_job(l, 12)->instance, 5);
	ck_assert(ledger_job(l, 12)->flags & JOB_ADHOC);
	ck_assert(!(ledger_job(l, 1)->flags & JOB_ADHOC));
	ck_assert_int_eq(ledger_add_variant(l, &b, "spin", 1, NULL, 0, &gb, &first), 0);
	ck_assert_uint_ne(gb, ga);
	ck_assert_str_eq(ledger_group(l, gb)->name, "spin@2");
	/* The same definition under another base (a variant of another group) is its own. */
	ck_assert_int_eq(ledger_add_variant(l, &a, "work", 1, NULL, 0, &gc, &first), 0);
	ck_assert_uint_ne(gc, ga);
	ck_assert_str_eq(ledger_group(l, gc)->name, "work@3");
	/* A config group is never a variant's. */
	ck_assert_int_eq(ledger_find_group(l, "spin@1"), (int)ga);
	ck_assert_uint_ne(ledger_group_spec_id(l, ga), ledger_group_spec_id(l, gb));
	ck_assert_uint_ne(ledger_group_spec_id(l, 0), ledger_group_spec_id(l, ga));
	ck_assert_uint_gt(ledger_group_spec_id(l, 0), 0);
	/* The exec settings are part of the definition: another environment, another group;
	 * the same again, the same group (with its settings kept). */
	{
		struct group_config e = variant("exec:/bin/true", ""), e2;
		unsigned ge, ge2, gf;

		e.kind = JOB_KIND_EXEC;
		config_group_exec_defaults(&e);
		e.environment = (char *)"A=1";
		e2 = e;
		ck_assert_int_eq(ledger_add_variant(l, &e, "cmd", 1, NULL, 0, &ge, &first), 0);
		ck_assert_int_eq(ledger_add_variant(l, &e2, "cmd", 1, NULL, 0, &ge2, &first), 0);
		ck_assert_uint_eq(ge2, ge);
		ck_assert_str_eq(ledger_group(l, ge)->environment, "A=1");
		e2.environment = (char *)"A=2";
		ck_assert_int_eq(ledger_add_variant(l, &e2, "cmd", 1, NULL, 0, &gf, &first), 0);
		ck_assert_uint_ne(gf, ge);
		e2 = e;
		e2.retry_delay_min = e2.retry_delay_max = 1000;
		ck_assert_int_eq(ledger_add_variant(l, &e2, "cmd", 1, NULL, 0, &gf, &first), 0);
		ck_assert_uint_ne(gf, ge);
	}
	assert_sums();
}
END_TEST

/*
 * A submitted group goes with its last job (forgotten by ledger_collect): its slot is reused
 * by the next group, with a new spec id; config groups stay whatever happens to their jobs.
 */
START_TEST(test_variant_freed_with_its_jobs)
{
	struct group_config a = variant("builtin:noop", ""), b = variant("builtin:spin", "us=1");
	unsigned ga, gb, n_before;
	uint32_t spec_a;
	uint64_t first;

	ck_assert_int_eq(ledger_add_variant(l, &a, "noop", 4096, NULL, 0, &ga, &first), 0);
	spec_a = ledger_group_spec_id(l, ga);
	n_before = ledger_n_groups(l);
	ck_assert_uint_eq(ledger_n_live_groups(l), 4);
	/* Everything ends. Chunk 0 (the config's 7 jobs, 4089 of noop@1) goes; chunk 1, the
	 * last one, is never freed: noop@1 keeps its 7 jobs there, and exists. */
	ledger_cancel_queued(l, 0, CAUSE_CANCELLED);
	ledger_cancel_queued(l, 1, CAUSE_CANCELLED);
	ledger_set_keep_ended(l, 0);
	ck_assert_uint_eq(ledger_collect(l), 4096);
	ck_assert(ledger_group_exists(l, ga));
	ck_assert_str_eq(ledger_group(l, ga)->name, "noop@1");
	ck_assert_int_eq(ledger_add_jobs(l, 0, 4096, &first), 0);
	ledger_cancel_queued(l, 0, CAUSE_CANCELLED);
	ck_assert_uint_eq(ledger_collect(l), 4096);
	/* Its last jobs went: the group is gone, its name no longer found... */
	ck_assert(!ledger_group_exists(l, ga));
	ck_assert_int_eq(ledger_find_group(l, "noop@1"), -ENOENT);
	ck_assert_uint_eq(ledger_n_live_groups(l), 3);
	/* ...the config's groups stay, counts and all... */
	ck_assert_int_eq(ledger_find_group(l, "work"), 0);
	ck_assert_uint_eq(ledger_group_counts(l, 0)->total, 4 + 4096);
	/* ...and the next group takes its slot with a new spec id. */
	ck_assert_int_eq(ledger_add_variant(l, &b, "spin", 1, NULL, 0, &gb, &first), 0);
	ck_assert_uint_eq(gb, ga);
	ck_assert_uint_eq(ledger_n_groups(l), n_before);
	ck_assert_uint_ne(ledger_group_spec_id(l, gb), spec_a);
	ck_assert_str_eq(ledger_group(l, gb)->name, "spin@2");
	/* The same definition as the freed one makes a new group: the old one is gone. */
	ck_assert_int_eq(ledger_add_variant(l, &a, "noop", 1, NULL, 0, &ga, &first), 0);
	ck_assert_str_eq(ledger_group(l, ga)->name, "noop@3");
	ck_assert_uint_eq(ledger_unfinished(l), 2);
}
END_TEST

/* Submitted with inputs: one job per input, in a variant group, each with its input. */
START_TEST(test_variant_with_inputs)
{
	struct group_config a = variant("exec:/bin/true {input}", "");
	char *in[] = { "/data/a", "/data/b" };
	unsigned g;
	uint64_t first;

	a.kind = JOB_KIND_EXEC;
	ck_assert_int_eq(ledger_add_variant(l, &a, "files", 99, in, 2, &g, &first), 0);
	ck_assert_uint_eq(ledger_group_counts(l, g)->total, 2);
	ck_assert_str_eq(ledger_job_input(l, ledger_job(l, first)), "/data/a");
	ck_assert_str_eq(ledger_job_input(l, ledger_job(l, first + 1)), "/data/b");
	/* An input that cannot be taken: nothing added, no group left behind. */
	in[1] = (char *)"";
	ck_assert_int_eq(ledger_add_variant(l, &a, "other", 1, in, 2, &g, &first), -EINVAL);
	ck_assert_int_eq(ledger_find_group(l, "other@2"), -ENOENT);
	ck_assert_uint_eq(ledger_n_live_groups(l), 4);
	assert_sums();
}
END_TEST

/* The job record stays small: it is kept for every job, for ever. */
START_TEST(test_job_size)
{
	/* 48 since the in-flight fields left it (issue 12); 64, one cache line, with its history
	 * (issue 13: accepted, started, ended). Many are kept: keep it so. */
	ck_assert_uint_le(sizeof(struct job), 64);
}
END_TEST

/* Pops the next `n` jobs of pool 0 and ends each: done (status 0), failed, or stopped. */
static void end_next(struct ledger *m, unsigned n, int how)
{
	for (unsigned i = 0; i < n; i++) {
		struct job *j = ledger_pop(m, 0, false);

		ck_assert_ptr_nonnull(j);
		if (how == 's') {
			ledger_cancel(m, j, CAUSE_STOPPED);
			continue;
		}
		ledger_start(m, j);
		ledger_finish(m, j, how == 'f' ? 1 : 0);
	}
}

/*
 * A resumed run (bulkhead run --state): what its stop cancelled queues again, failures only
 * with retry_failed, attempts starting over; retention keeps count of what ended, so a chunk
 * whose jobs run again is not forgotten under them.
 */
static int count_lines(void *userdata, const struct log_line *line)
{
	(*(size_t *)userdata)++;
	return 0;
}

/* The memory store keeps the last STORE_LOGS_BYTES of log lines, dropping the oldest. */
START_TEST(test_memory_logs_bounded)
{
	struct group_config g = groups[0];
	struct ledger *m;
	struct log_line kept;
	struct log_query all = { .first = 1, .last = UINT64_MAX }, first = { .first = 1, .last = 1 };
	char line[1024];
	size_t n = 0, n1 = 0, lines = 2 * STORE_LOGS_BYTES / sizeof(line);

	ck_assert_int_eq(ledger_new(2, &m), 0);
	g.count = 2;
	ck_assert_int_eq(ledger_add_group(m, &g, NULL), 0);
	memset(line, 'x', sizeof(line));
	for (size_t i = 0; i < lines; i++)
		ck_assert_int_eq(ledger_add_log(m, ledger_job(m, i < lines / 4 ? 1 : 2), 6, line,
						sizeof(line), &kept),
				 0);
	ck_assert_int_eq(ledger_read_logs(m, &all, count_lines, &n), 0);
	ck_assert_uint_gt(n, lines / 4);
	ck_assert_uint_le(n * sizeof(line), STORE_LOGS_BYTES);
	/* Job 1's lines were the oldest: gone. */
	ck_assert_int_eq(ledger_read_logs(m, &first, count_lines, &n1), 0);
	ck_assert_uint_eq(n1, 0);
	ledger_free(m);
}
END_TEST

/* A clock the test moves. */
static int64_t fake_now;

static int64_t fake_clock(void *userdata)
{
	return fake_now;
}

/* Each job keeps when it was accepted, last started and ended (1 + ms after accepted). */
START_TEST(test_history_times)
{
	struct group_config g = groups[0];
	struct ledger *m;
	struct job *a, *b;

	ck_assert_int_eq(ledger_new(2, &m), 0);
	g.count = 2;
	fake_now = 1700000000000000;
	ledger_set_clock(m, fake_clock, NULL);
	ck_assert_int_eq(ledger_add_group(m, &g, NULL), 0);
	a = ledger_job(m, 1);
	ck_assert_int_eq(a->accepted_at, 1700000000000000);
	ck_assert_uint_eq(a->started_ms, 0);
	ck_assert_uint_eq(a->ended_ms, 0);
	fake_now += 5000; /* 5 ms */
	a = ledger_pop(m, 0, false);
	ledger_start(m, a);
	ck_assert_int_eq(job_time(a, a->started_ms), 1700000000005000);
	ck_assert_uint_eq(a->ended_ms, 0);
	fake_now += 7000;
	ledger_finish(m, a, 0);
	ck_assert_int_eq(job_time(a, a->ended_ms), 1700000000012000);
	/* Weeks later: saturated, never wrapped. */
	b = ledger_pop(m, 0, false);
	fake_now += (int64_t)60 * 86400 * 1000000;
	ledger_start(m, b);
	ck_assert_uint_eq(b->started_ms, JOB_MS_MAX);
	/* A clock that went back: never before it was accepted. */
	fake_now = 1600000000000000;
	ledger_finish(m, b, 0);
	ck_assert_uint_eq(b->ended_ms, 1);
	ledger_free(m);
}
END_TEST

START_TEST(test_resume)
{
	struct group_config g = groups[0];
	struct ledger *m;
	struct job *j;

	ck_assert_int_eq(ledger_new(2, &m), 0);
	g.count = 4 * 4096;
	g.max_attempts = 1;
	ck_assert_int_eq(ledger_add_group(m, &g, NULL), 0);
	ledger_set_keep_ended(m, 0);
	end_next(m, 4096, 'd'); /* chunk 0: done */
	end_next(m, 4096, 's'); /* chunk 1: cancelled by a stop */
	end_next(m, 4096, 'f'); /* chunk 2: failed */
	end_next(m, 4096, 'd'); /* chunk 3: done */
	ck_assert_uint_eq(ledger_unfinished(m), 0);

	ck_assert_uint_eq(ledger_resume(m, false), 4096);
	ck_assert_uint_eq(ledger_queued(m, 0, false), 4096);
	j = ledger_job(m, 4097);
	ck_assert_uint_eq(j->state, JOB_QUEUED);
	ck_assert_uint_eq(j->cause, CAUSE_NONE);
	ck_assert_uint_eq(ledger_group_counts(m, 0)->by_state[JOB_CANCELLED], 0);
	ck_assert_uint_eq(ledger_stats(m)->by_state[JOB_QUEUED], 4096);
	/* Only chunk 0 may go: chunk 1 has jobs to run again. */
	ck_assert_uint_eq(ledger_collect(m), 4096);
	ck_assert_ptr_nonnull(ledger_job(m, 4097));

	end_next(m, 4096, 'd');
	ck_assert_uint_eq(ledger_collect(m), 2 * 4096); /* chunks 1 and 2; the last one stays */
	ck_assert_uint_eq(ledger_resume(m, false), 0);
	/* With retry_failed, chunk 2's failures are gone with their chunk; chunk 3 is all done. */
	ck_assert_uint_eq(ledger_resume(m, true), 0);
	ledger_free(m);
}
END_TEST

/* retry_failed: failed jobs queue again with their attempts starting over. */
START_TEST(test_resume_retry_failed)
{
	struct job *j;

	while ((j = ledger_pop(l, 0, false))) {
		ledger_start(l, j);
		ledger_finish(l, j, 1); /* work#1..4 (3 attempts each) and segv#1 */
	}
	while ((j = ledger_pop(l, 0, false))) {
		ledger_start(l, j);
		ledger_finish(l, j, 1);
	}
	while ((j = ledger_pop(l, 0, false))) {
		ledger_start(l, j);
		ledger_finish(l, j, 1);
	}
	ck_assert_uint_eq(ledger_group_counts(l, 0)->by_state[JOB_FAILED], 4);
	ck_assert_uint_eq(ledger_resume(l, false), 0);
	ck_assert_uint_eq(ledger_resume(l, true), 5);
	j = ledger_job(l, 1);
	ck_assert_uint_eq(j->state, JOB_QUEUED);
	ck_assert_uint_eq(j->attempts, 0);
	ck_assert_uint_eq(ledger_queued(l, 0, false), 5);
	assert_sums();
}
END_TEST

static Suite *ledger_suite(void)
{
	Suite *s = suite_create("ledger");
	TCase *tc = tcase_create("rules");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_initial_queues);
	tcase_add_test(tc, test_done_and_retry_then_failed);
	tcase_add_test(tc, test_crash_frame_culprit_and_bystanders);
	tcase_add_test(tc, test_exit_and_oom_causes);
	tcase_add_test(tc, test_no_evidence_suspects_run_alone);
	tcase_add_test(tc, test_crash_frame_for_unknown_job_is_no_evidence);
	tcase_add_test(tc, test_timeout_blame_and_quarantine);
	tcase_add_test(tc, test_rerun_cap_ends_job);
	tcase_add_test(tc, test_idle_death_is_worker_fault);
	tcase_add_test(tc, test_cancel_and_unpop);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_add_jobs_cancel_queued_and_end_hook);
	tcase_add_test(tc, test_end_hooks_in_order_and_removed);
	tcase_add_test(tc, test_group_inputs_deep_copied);
	tcase_add_test(tc, test_add_input_jobs);
	tcase_add_test(tc, test_move_job_input);
	tcase_add_test(tc, test_retention);
	tcase_add_test(tc, test_result_sanitised_and_progress);
	tcase_add_test(tc, test_blame_command_not_alone);
	tcase_add_test(tc, test_spawn_failed_counts_attempts);
	tcase_add_test(tc, test_retry_delay_holds);
	tcase_add_test(tc, test_cancel_requested_running_job);
	tcase_add_test(tc, test_job_size);
	tcase_add_test(tc, test_history_times);
	tcase_add_test(tc, test_memory_logs_bounded);
	tcase_add_test(tc, test_resume);
	tcase_add_test(tc, test_resume_retry_failed);
	tcase_add_test(tc, test_variants_dedupe);
	tcase_add_test(tc, test_variant_freed_with_its_jobs);
	tcase_add_test(tc, test_variant_with_inputs);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ledger_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
