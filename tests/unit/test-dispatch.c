/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the dispatcher's arithmetic (daemon/dispatch.c): the window of jobs a
 * worker may hold, from the pool's measured run time (about 2 x BH_RESULT_HOLD_USEC of work
 * per thread, at least 2 per thread, at most what one ASSIGN frame carries); how that
 * estimate follows the DONE frames (slower jobs at once, faster ones gradually); and the rule
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
