/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the dispatcher's arithmetic (daemon/dispatch.c): the window of jobs a
 * worker may hold, from the pool's measured run time (about 2 x BH_RESULT_HOLD_USEC of work
 * per thread, at least 2 per thread, at most what one ASSIGN frame carries); how that
 * estimate follows the DONE frames (slower jobs at once, faster ones gradually, a stalled
 * worker's few inflated run times clipped: frames.c); and the rule
 * that a worker is topped up once a quarter of its window is free.
 */
#include <check.h>
#include <stdlib.h>

#include "daemon/master-int.h"

#define US 16 /* the estimate is in 1/16 us */

START_TEST(test_window)
{
	/* Nothing measured yet: 2 per thread (the jobs may be long). */
	ck_assert_uint_eq(dispatch_window_for(0, 1), 2);
	ck_assert_uint_eq(dispatch_window_for(0, 4), 8);
	/* 100 us jobs: 4 ms of work per thread is 40 jobs. */
	ck_assert_uint_eq(dispatch_window_for(100 * US, 1), 2 * BH_RESULT_HOLD_USEC / 100);
	ck_assert_uint_eq(dispatch_window_for(100 * US, 3), 3 * 2 * BH_RESULT_HOLD_USEC / 100);
	/* Rounded up: 3 us jobs. */
	ck_assert_uint_eq(dispatch_window_for(3 * US, 1), (2 * BH_RESULT_HOLD_USEC + 2) / 3);
	/* Long jobs: never below 2 per thread. */
	ck_assert_uint_eq(dispatch_window_for(1000000 * US, 2), 4);
	/* Tiny jobs: at most one ASSIGN frame, whatever the threads. */
	ck_assert_uint_eq(dispatch_window_for(1, 1), BH_ASSIGN_MAX);
	ck_assert_uint_eq(dispatch_window_for(1 * US, 256), BH_ASSIGN_MAX);
}
END_TEST

START_TEST(test_learn)
{
	uint64_t est;

	/* The first frame sets it; below 1/16 us counts as 1. */
	ck_assert_uint_eq(dispatch_learn_est(0, 1000, 10), 100 * US);
	ck_assert_uint_eq(dispatch_learn_est(0, 0, 10), 1);
	/* Slower jobs are believed at once (do not hoard a window of long jobs)... */
	ck_assert_uint_eq(dispatch_learn_est(10 * US, 500, 1), 500 * US);
	/* ...faster ones a quarter of the way at a time. */
	est = dispatch_learn_est(400 * US, 0, 1);
	ck_assert_uint_eq(est, 400 * US - (400 * US - 1) / 4);
	est = 400 * US;
	for (int i = 0; i < 60; i++)
		est = dispatch_learn_est(est, 100, 1);
	ck_assert_uint_le(est, 100 * US + 3);
	ck_assert_uint_ge(est, 100 * US);
}
END_TEST

/* The estimate after one DONE frame of n run times, through frames.c's clip. */
static uint64_t learn_frame(uint64_t est, const uint32_t *run_usec, uint32_t n, unsigned threads)
{
	struct run_learn rl;

	run_learn_init(&rl, est);
	for (uint32_t i = 0; i < n; i++)
		run_learn_add(&rl, run_usec[i]);
	return dispatch_learn_est(est, run_learn_sum(&rl, threads), n);
}

START_TEST(test_learn_stall)
{
	static const uint32_t stalled[] = { 4000, 3000, 1 }; /* 2 threads preempted 3-4 ms */
	static const uint32_t slow[] = { 1000, 1000, 1000 };
	uint32_t batch[256];
	uint64_t est;

	/* Nothing known yet: the plain mean, outliers and all. */
	ck_assert_uint_eq(learn_frame(0, stalled, 3, 2), 7001 * US / 3);
	/* 1 us jobs, 2 threads: a stall's victims move it 4 times at most, not to 2.3 ms... */
	est = learn_frame(1 * US, stalled, 3, 2);
	ck_assert_uint_eq(est, 3 * US);
	/* ...so the window stays large, and a few frames of 1 us jobs bring it back. */
	ck_assert_uint_ge(dispatch_window_for(est, 2), BH_ASSIGN_MAX / 2);
	for (int i = 0; i < 256; i++)
		batch[i] = 1;
	for (int i = 0; i < 10; i++)
		est = learn_frame(est, batch, 256, 2);
	ck_assert_uint_le(est, 2 * US);
	ck_assert_uint_eq(dispatch_window_for(est, 2), BH_ASSIGN_MAX);
	/* One stalled job among 256: the window stays at its maximum. */
	batch[0] = 4000;
	ck_assert_uint_eq(dispatch_window_for(learn_frame(1 * US, batch, 256, 2), 2),
			  BH_ASSIGN_MAX);
	/* More slow jobs than threads: jobs really got slower, believed at once. */
	ck_assert_uint_eq(learn_frame(1 * US, slow, 3, 2), 1000 * US);
	/* As many as threads (a stall or slower jobs?): 4 times per frame, and long jobs
	 * shrink the window to its minimum within a few frames all the same. */
	est = 1 * US;
	for (int i = 0; i < 12 && dispatch_window_for(est, 2) > 4; i++)
		est = learn_frame(est, slow, 2, 2);
	ck_assert_uint_eq(dispatch_window_for(est, 2), 8);
}
END_TEST

START_TEST(test_top_up)
{
	/* A window of 40: topped up once 10 are free, not before. */
	ck_assert(!dispatch_top_up(40, 40));
	ck_assert(!dispatch_top_up(31, 40));
	ck_assert(dispatch_top_up(30, 40));
	ck_assert(dispatch_top_up(0, 40));
	/* Small windows: after every result. */
	ck_assert(!dispatch_top_up(2, 2));
	ck_assert(dispatch_top_up(1, 2));
	ck_assert(!dispatch_top_up(1, 1));
	ck_assert(dispatch_top_up(0, 1));
	/* Holding more than the window (it shrank): no. */
	ck_assert(!dispatch_top_up(50, 40));
}
END_TEST

static Suite *dispatch_suite(void)
{
	Suite *s = suite_create("dispatch");
	TCase *tc = tcase_create("window");

	tcase_add_test(tc, test_window);
	tcase_add_test(tc, test_learn);
	tcase_add_test(tc, test_learn_stall);
	tcase_add_test(tc, test_top_up);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(dispatch_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
