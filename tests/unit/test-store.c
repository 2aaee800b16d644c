/* SPDX-License-Identifier: MIT */
/*
 * The job store interface (daemon/store.h) as a second backend sees it: a store that wraps
 * the in-memory one and records every call the ledger makes. Checks that the blame rules
 * reach the jobs only through the table (every transition is a requeue() or an end(), whole),
 * and that a worker's death is one batch (begin ... commit) whatever it held, as a
 * transactional backend needs.
 */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ledger.h"
#include "daemon/store.h"

struct recording {
	struct store base;
	struct store *inner;
	struct store_ops ops; /* the inner table with a few entries wrapped */
	unsigned begins, commits, requeues, ends, depth, max_depth, outside;
};

static struct recording *rec_of(struct store *st)
{
	return (struct recording *)st;
}

static void r_begin(struct store *st)
{
	struct recording *r = rec_of(st);

	r->begins++;
	if (++r->depth > r->max_depth)
		r->max_depth = r->depth;
	r->inner->ops->begin(r->inner);
}

static int r_commit(struct store *st)
{
	struct recording *r = rec_of(st);

	r->commits++;
	r->depth--;
	return r->inner->ops->commit(r->inner);
}

static void r_requeue(struct store *st, struct job *j, bool alone)
{
	struct recording *r = rec_of(st);

	r->requeues++;
	r->outside += r->depth == 0;
	r->inner->ops->requeue(r->inner, j, alone);
}

static void r_end(struct store *st, struct job *j, enum job_state s, int cause, int detail)
{
	struct recording *r = rec_of(st);

	r->ends++;
	r->outside += r->depth == 0;
	r->inner->ops->end(r->inner, j, s, cause, detail);
}

static void r_free(struct store *st)
{
	struct recording *r = rec_of(st);

	r->inner->ops->free(r->inner);
	free(r);
}

/* The wrapped store: the entries not recorded are passed on to it as they are. */
static struct store *inner_of(struct store *st)
{
	return rec_of(st)->inner;
}

static struct ledger_stats *p_stats(struct store *st)
{
	return inner_of(st)->ops->stats(inner_of(st));
}

static int p_set_pools(struct store *st, unsigned n, const char *const *names)
{
	return inner_of(st)->ops->set_pools(inner_of(st), n, names);
}

static int p_add_group(struct store *st, const struct group_config *g, unsigned *ret)
{
	return inner_of(st)->ops->add_group(inner_of(st), g, ret);
}

static struct job *p_pop(struct store *st, unsigned pool, bool alone)
{
	return inner_of(st)->ops->pop(inner_of(st), pool, alone);
}

static void p_set_state(struct store *st, struct job *j, enum job_state s)
{
	inner_of(st)->ops->set_state(inner_of(st), j, s);
}

static int p_set_progress(struct store *st, struct job *j, int permille)
{
	return inner_of(st)->ops->set_progress(inner_of(st), j, permille);
}

static void p_touch(struct store *st, struct job *j)
{
	inner_of(st)->ops->touch(inner_of(st), j);
}

static uint64_t p_n_jobs(const struct store *st)
{
	const struct recording *r = (const struct recording *)st;

	return r->inner->ops->n_jobs(r->inner);
}

static struct job *p_job(struct store *st, uint64_t id)
{
	return inner_of(st)->ops->job(inner_of(st), id);
}

static const struct group_config *p_group(const struct store *st, unsigned g)
{
	const struct recording *r = (const struct recording *)st;

	return r->inner->ops->group(r->inner, g);
}

static const struct group_counts *p_group_counts(const struct store *st, unsigned g)
{
	const struct recording *r = (const struct recording *)st;

	return r->inner->ops->group_counts(r->inner, g);
}

static struct recording *recording_new(unsigned n_pools)
{
	struct recording *r = calloc(1, sizeof(*r));

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(store_memory_new(n_pools, &r->inner), 0);
	/* Only what these tests use; anything else left NULL would crash, loudly. */
	r->ops.name = "recording";
	r->ops.free = r_free;
	r->ops.set_pools = p_set_pools;
	r->ops.add_group = p_add_group;
	r->ops.pop = p_pop;
	r->ops.set_state = p_set_state;
	r->ops.set_progress = p_set_progress;
	r->ops.touch = p_touch;
	r->ops.stats = p_stats;
	r->ops.group = p_group;
	r->ops.n_jobs = p_n_jobs;
	r->ops.job = p_job;
	r->ops.group_counts = p_group_counts;
	r->ops.requeue = r_requeue;
	r->ops.end = r_end;
	r->ops.begin = r_begin;
	r->ops.commit = r_commit;
	r->base.ops = &r->ops;
	return r;
}

START_TEST(test_death_is_one_batch)
{
	struct recording *r = recording_new(1);
	struct group_config g = { .name = "work", .pool = 0, .count = 6, .max_attempts = 2,
				  .expect = JOB_DONE };
	struct ledger *l;
	struct job *jobs[6];
	uint8_t flags[6];
	struct death d = { .crash_frame = true, .crash_kind = 1, .crash_signo = SIGSEGV,
			   .signaled = true, .status = SIGSEGV };

	ck_assert_int_eq(ledger_new_with_store(&r->base, &l), 0);
	ck_assert_int_eq(ledger_add_group(l, &g, NULL), 0);
	for (int i = 0; i < 6; i++) {
		jobs[i] = ledger_pop(l, 0, false);
		ck_assert_ptr_nonnull(jobs[i]);
		ledger_start(l, jobs[i]);
		flags[i] = i < 4 ? HELD_STARTED : 0;
	}
	d.crash_job = jobs[1]->id;
	ck_assert_int_eq(ledger_worker_died(l, &d, jobs, flags, 6), DEATH_CULPRIT);
	/* One batch, not nested, and every one of the six transitions inside it. */
	ck_assert_uint_eq(r->begins, 1);
	ck_assert_uint_eq(r->commits, 1);
	ck_assert_uint_eq(r->max_depth, 1);
	ck_assert_uint_eq(r->requeues, 6); /* the culprit retried alone, five bystanders */
	ck_assert_uint_eq(r->outside, 0);
	ck_assert_uint_eq(jobs[1]->attempts, 1);
	ck_assert(jobs[1]->alone);

	/* A second death of the culprit quarantines it: an end(), in its own batch. */
	ck_assert_ptr_eq(ledger_pop(l, 0, true), jobs[1]);
	ledger_start(l, jobs[1]);
	flags[0] = HELD_STARTED;
	ck_assert_int_eq(ledger_worker_died(l, &d, &jobs[1], flags, 1), DEATH_CULPRIT);
	ck_assert_uint_eq(r->begins, 2);
	ck_assert_uint_eq(r->ends, 1);
	ck_assert_int_eq(jobs[1]->state, JOB_CRASHED);

	/* Cancelling a pool's queue (the five bystanders) is one batch too. */
	ck_assert_uint_eq(ledger_cancel_queued(l, 0, CAUSE_STOPPED), 5);
	ck_assert_uint_eq(r->begins, 3);
	ck_assert_uint_eq(r->commits, 3);
	ck_assert_uint_eq(r->ends, 6);
	ck_assert_uint_eq(r->outside, 0);
	ledger_free(l); /* frees the recording store and the one inside */
}
END_TEST

static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("interface");

	tcase_add_test(tc, test_death_is_one_batch);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(store_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
