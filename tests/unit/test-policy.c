/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/policy.c: backoff doubling, capping, jitter bounds and reset, and the
 * worker-fault window (exactly max_faults in the window is fine, one more fails). Everything
 * is arithmetic on values passed in, so the tests drive time by hand.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "daemon/policy.h"
#include "xorshift.h"

#define MS USEC_PER_MSEC
#define SEC USEC_PER_SEC

/* A fault after a short life (uptime 0, min_uptime 1 s). */
static usec_t fault(struct backoff *b, uint32_t rnd)
{
	return backoff_next(b, 0, SEC, rnd);
}

START_TEST(test_backoff_doubles_and_caps)
{
	struct backoff b;
	/* In milliseconds: doubling from 10 ms, capped at 5 s. */
	const unsigned want[] = { 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5000, 5000, 5000 };

	backoff_init(&b, 10 * MS, 5 * SEC);
	ck_assert_uint_eq(b.current, 10 * MS);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		/* rnd = UINT32_MAX: no jitter, the delay is the current backoff. */
		ck_assert_uint_eq(fault(&b, UINT32_MAX), want[i] * MS);
		ck_assert_uint_le(b.current, b.max);
	}
	ck_assert_uint_eq(b.current, 5 * SEC);
}
END_TEST

START_TEST(test_backoff_jitter_bounds)
{
	struct backoff b;

	/* rnd = 0: the bottom of the range, current / 2, but never below min. */
	backoff_init(&b, 10 * MS, 5 * SEC);
	ck_assert_uint_eq(fault(&b, 0), 10 * MS); /* current 10 ms: 5 ms < min */
	ck_assert_uint_eq(fault(&b, 0), 10 * MS); /* current 20 ms */
	ck_assert_uint_eq(fault(&b, 0), 20 * MS); /* current 40 ms */
	ck_assert_uint_eq(fault(&b, 0), 40 * MS);

	/* Jitter does not slow the doubling down. */
	ck_assert_uint_eq(b.current, 160 * MS);
	ck_assert_uint_eq(fault(&b, UINT32_MAX), 160 * MS);

	/* Half-way. */
	backoff_init(&b, 100 * MS, 100 * SEC);
	b.current = 2 * SEC;
	usec_t d = fault(&b, UINT32_MAX / 2);
	ck_assert_uint_ge(d, 1 * SEC + 499 * MS);
	ck_assert_uint_le(d, 1 * SEC + 501 * MS);
}
END_TEST

START_TEST(test_backoff_jitter_random)
{
	uint32_t seed = 0x2545f491;

	for (int round = 0; round < 200; round++) {
		struct backoff b;
		usec_t min = 1 + xorshift32(&seed) % (100 * MS);
		usec_t max = min + (usec_t)xorshift32(&seed) * 16;
		unsigned distinct = 0;
		usec_t last = 0;

		backoff_init(&b, min, max);
		for (int i = 0; i < 64; i++) {
			usec_t cur = b.current;
			usec_t d = fault(&b, xorshift32(&seed));

			ck_assert_uint_le(d, cur);
			ck_assert_uint_ge(d, cur / 2);
			ck_assert_uint_ge(d, min);
			ck_assert_uint_le(b.current, max);
			ck_assert_uint_ge(b.current, min);
			ck_assert(b.current == max || b.current == 2 * cur);
			if (d != last)
				distinct++;
			last = d;
		}
		/* Random values do spread the delays (min is at least 1 us, max far above). */
		ck_assert_uint_gt(distinct, 8);
	}
}
END_TEST

START_TEST(test_backoff_reset_after_min_uptime)
{
	struct backoff b;

	backoff_init(&b, 10 * MS, 5 * SEC);
	for (int i = 0; i < 5; i++)
		fault(&b, UINT32_MAX);
	ck_assert_uint_eq(b.current, 320 * MS);

	/* Just short of min_uptime: still a delayed restart, and it doubles. */
	ck_assert_uint_eq(backoff_next(&b, SEC - 1, SEC, UINT32_MAX), 320 * MS);
	ck_assert_uint_eq(b.current, 640 * MS);

	/* Exactly min_uptime: at once, and the backoff starts over. */
	ck_assert_uint_eq(backoff_next(&b, SEC, SEC, UINT32_MAX), 0);
	ck_assert_uint_eq(b.current, 10 * MS);
	ck_assert_uint_eq(fault(&b, UINT32_MAX), 10 * MS);

	/* Much longer, with any jitter value. */
	fault(&b, 0);
	ck_assert_uint_eq(backoff_next(&b, 3600 * SEC, SEC, 12345), 0);
	ck_assert_uint_eq(b.current, 10 * MS);

	/* min_uptime 0: every worker lived long enough. */
	ck_assert_uint_eq(backoff_next(&b, 0, 0, UINT32_MAX), 0);
	ck_assert_uint_eq(b.current, 10 * MS);
}
END_TEST

START_TEST(test_backoff_reset)
{
	struct backoff b;

	backoff_init(&b, 10 * MS, 5 * SEC);
	for (int i = 0; i < 20; i++)
		fault(&b, 0);
	ck_assert_uint_eq(b.current, 5 * SEC);
	backoff_reset(&b);
	ck_assert_uint_eq(b.current, 10 * MS);
	ck_assert_uint_eq(fault(&b, UINT32_MAX), 10 * MS);
	ck_assert_uint_eq(b.current, 20 * MS);
	backoff_reset(&b);
	backoff_reset(&b);
	ck_assert_uint_eq(b.current, 10 * MS);
}
END_TEST

START_TEST(test_backoff_min_equals_max)
{
	struct backoff b;

	backoff_init(&b, 250 * MS, 250 * MS);
	for (int i = 0; i < 10; i++) {
		ck_assert_uint_eq(fault(&b, 0), 250 * MS);
		ck_assert_uint_eq(fault(&b, UINT32_MAX), 250 * MS);
		ck_assert_uint_eq(fault(&b, 0x9e3779b9u), 250 * MS);
		ck_assert_uint_eq(b.current, 250 * MS);
	}
}
END_TEST

START_TEST(test_backoff_min_zero)
{
	struct backoff b;

	/* 0..0: always at once. */
	backoff_init(&b, 0, 0);
	for (int i = 0; i < 10; i++) {
		ck_assert_uint_eq(fault(&b, UINT32_MAX), 0);
		ck_assert_uint_eq(b.current, 0);
	}

	/* 0..1s: the first restart is immediate, then it grows from 1 us and caps. */
	backoff_init(&b, 0, SEC);
	ck_assert_uint_eq(fault(&b, UINT32_MAX), 0);
	ck_assert_uint_eq(b.current, 1);
	ck_assert_uint_eq(fault(&b, UINT32_MAX), 1);
	ck_assert_uint_eq(b.current, 2);
	for (int i = 0; i < 40; i++) {
		usec_t cur = b.current;
		usec_t d = fault(&b, 0);

		ck_assert_uint_eq(d, cur / 2);
	}
	ck_assert_uint_eq(b.current, SEC);
	backoff_reset(&b);
	ck_assert_uint_eq(b.current, 0);
}
END_TEST

START_TEST(test_backoff_no_overflow)
{
	struct backoff b;
	uint32_t seed = 7;

	/* max = infinity: doubling saturates instead of wrapping to a small value. */
	backoff_init(&b, 1, USEC_INFINITY);
	for (int i = 0; i < 70; i++) {
		usec_t cur = b.current;
		usec_t d = fault(&b, xorshift32(&seed));

		ck_assert_uint_le(d, cur);
		ck_assert_uint_ge(d, cur / 2);
		ck_assert_uint_ge(b.current, cur);
	}
	ck_assert_uint_eq(b.current, USEC_INFINITY);
	ck_assert_uint_eq(fault(&b, UINT32_MAX), USEC_INFINITY);
	ck_assert_uint_eq(fault(&b, 0), USEC_INFINITY / 2);
	ck_assert_uint_eq(b.current, USEC_INFINITY);

	/* Just above half of a huge max. */
	backoff_init(&b, UINT64_MAX / 2 + 1, UINT64_MAX - 1);
	ck_assert_uint_eq(fault(&b, UINT32_MAX), UINT64_MAX / 2 + 1);
	ck_assert_uint_eq(b.current, UINT64_MAX - 1);
	ck_assert_uint_eq(fault(&b, UINT32_MAX), UINT64_MAX - 1);
	ck_assert_uint_eq(fault(&b, 0), UINT64_MAX / 2 + 1); /* never below min */
	ck_assert_uint_eq(b.current, UINT64_MAX - 1);

	/* Uptime near infinity is still "long enough". */
	ck_assert_uint_eq(backoff_next(&b, USEC_INFINITY, USEC_INFINITY, 0), 0);
	ck_assert_uint_eq(b.current, UINT64_MAX / 2 + 1);
}
END_TEST

START_TEST(test_backoff_max_below_min)
{
	struct backoff b;
	uint32_t seed = 99;

	/* Not a valid config; must not make the backoff grow without bound or go below min. */
	backoff_init(&b, SEC, MS);
	for (int i = 0; i < 5; i++) {
		usec_t d = fault(&b, xorshift32(&seed));

		ck_assert_uint_eq(d, SEC);
		ck_assert_uint_eq(b.current, SEC);
	}
}
END_TEST

START_TEST(test_fault_window_init_bad_args)
{
	struct fault_window w;

	ck_assert_int_eq(fault_window_init(&w, 0, 60 * SEC), -EINVAL);
	ck_assert_ptr_null(w.times);
	fault_window_done(&w);
	ck_assert_int_eq(fault_window_init(&w, 1025, 60 * SEC), -EINVAL);
	ck_assert_int_eq(fault_window_init(&w, UINT32_MAX, 60 * SEC), -EINVAL);
	ck_assert_int_eq(fault_window_init(&w, 10, 0), -EINVAL);
	fault_window_done(&w);
	fault_window_done(NULL);

	ck_assert_int_eq(fault_window_init(&w, 1, 1), 0);
	ck_assert_ptr_nonnull(w.times);
	ck_assert_uint_eq(w.n, 0);
	ck_assert_uint_eq(fault_window_count(&w, 0), 0);
	fault_window_done(&w);
	ck_assert_ptr_null(w.times);
	fault_window_done(&w); /* twice is fine */
}
END_TEST

START_TEST(test_fault_window_exact_limit)
{
	struct fault_window w;

	/* 10/60s: ten faults within a minute are fine, the eleventh fails the pool. */
	ck_assert_int_eq(fault_window_init(&w, 10, 60 * SEC), 0);
	for (unsigned i = 0; i < 10; i++) {
		ck_assert(!fault_window_add(&w, 1000 * SEC + i * SEC));
		ck_assert_uint_eq(fault_window_count(&w, 1000 * SEC + i * SEC), i + 1);
	}
	ck_assert(fault_window_add(&w, 1000 * SEC + 10 * SEC));
	ck_assert_uint_eq(fault_window_count(&w, 1010 * SEC), 11);
	fault_window_done(&w);

	/* All at the same instant. */
	ck_assert_int_eq(fault_window_init(&w, 3, SEC), 0);
	ck_assert(!fault_window_add(&w, 5));
	ck_assert(!fault_window_add(&w, 5));
	ck_assert(!fault_window_add(&w, 5));
	ck_assert(fault_window_add(&w, 5));
	ck_assert(fault_window_add(&w, 5));
	fault_window_done(&w);

	/* The 11th just inside the window (60 s - 1 us after the first) fails... */
	ck_assert_int_eq(fault_window_init(&w, 10, 60 * SEC), 0);
	for (unsigned i = 0; i < 10; i++)
		ck_assert(!fault_window_add(&w, i));
	ck_assert(fault_window_add(&w, 60 * SEC - 1));
	fault_window_done(&w);

	/* ...and exactly 60 s after the first does not: the first has left the window. */
	ck_assert_int_eq(fault_window_init(&w, 10, 60 * SEC), 0);
	for (unsigned i = 0; i < 10; i++)
		ck_assert(!fault_window_add(&w, i));
	ck_assert(!fault_window_add(&w, 60 * SEC));
	ck_assert_uint_eq(fault_window_count(&w, 60 * SEC), 10);
	fault_window_done(&w);
}
END_TEST

START_TEST(test_fault_window_spread)
{
	struct fault_window w;
	usec_t t = 0;

	/* 10/60s with a fault every 6 s: 10 per minute at most, forever fine. */
	ck_assert_int_eq(fault_window_init(&w, 10, 60 * SEC), 0);
	for (unsigned i = 0; i < 10000; i++) {
		ck_assert(!fault_window_add(&w, t));
		ck_assert_uint_le(fault_window_count(&w, t), 10);
		t += 6 * SEC;
	}
	fault_window_done(&w);

	/* Bursts of 10 separated by more than the window never fail either. */
	ck_assert_int_eq(fault_window_init(&w, 10, 60 * SEC), 0);
	t = 0;
	for (unsigned burst = 0; burst < 100; burst++) {
		for (unsigned i = 0; i < 10; i++)
			ck_assert(!fault_window_add(&w, t + i));
		t += 61 * SEC;
	}
	fault_window_done(&w);
}
END_TEST

START_TEST(test_fault_window_count)
{
	struct fault_window w;

	ck_assert_int_eq(fault_window_init(&w, 4, 10 * SEC), 0);
	ck_assert_uint_eq(fault_window_count(&w, 100 * SEC), 0);
	fault_window_add(&w, 100 * SEC);
	fault_window_add(&w, 103 * SEC);
	fault_window_add(&w, 107 * SEC);
	ck_assert_uint_eq(fault_window_count(&w, 107 * SEC), 3);
	ck_assert_uint_eq(fault_window_count(&w, 110 * SEC - 1), 3);
	ck_assert_uint_eq(fault_window_count(&w, 110 * SEC), 2);
	ck_assert_uint_eq(fault_window_count(&w, 113 * SEC), 1);
	ck_assert_uint_eq(fault_window_count(&w, 117 * SEC), 0);
	ck_assert_uint_eq(fault_window_count(&w, USEC_INFINITY), 0);

	/* The ring wraps: only the last max_faults + 1 are remembered. */
	for (unsigned i = 0; i < 20; i++)
		fault_window_add(&w, 200 * SEC + i);
	ck_assert_uint_eq(w.n, 5);
	ck_assert_uint_eq(fault_window_count(&w, 200 * SEC + 19), 5);
	ck_assert_uint_eq(fault_window_count(&w, 220 * SEC), 0);
	fault_window_done(&w);

	/* After a quiet spell the pool is fine again, and the limit still holds. */
	ck_assert_int_eq(fault_window_init(&w, 2, SEC), 0);
	ck_assert(!fault_window_add(&w, 0));
	ck_assert(!fault_window_add(&w, 1));
	ck_assert(fault_window_add(&w, 2));
	ck_assert(!fault_window_add(&w, 10 * SEC));
	ck_assert(!fault_window_add(&w, 10 * SEC + 1));
	ck_assert(fault_window_add(&w, 10 * SEC + 2));
	fault_window_done(&w);
}
END_TEST

START_TEST(test_fault_window_one)
{
	struct fault_window w;

	/* 1/10s: one fault is fine, a second within 10 s fails. */
	ck_assert_int_eq(fault_window_init(&w, 1, 10 * SEC), 0);
	ck_assert(!fault_window_add(&w, 0));
	ck_assert(!fault_window_add(&w, 10 * SEC));
	ck_assert(!fault_window_add(&w, 20 * SEC));
	ck_assert(fault_window_add(&w, 30 * SEC - 1));
	ck_assert_uint_eq(fault_window_count(&w, 30 * SEC - 1), 2);
	fault_window_done(&w);

	/* An infinite window: the second fault ever fails. */
	ck_assert_int_eq(fault_window_init(&w, 1, USEC_INFINITY), 0);
	ck_assert(!fault_window_add(&w, 0));
	ck_assert(fault_window_add(&w, USEC_INFINITY - 1));
	fault_window_done(&w);
}
END_TEST

START_TEST(test_fault_window_1024)
{
	struct fault_window w;

	ck_assert_int_eq(fault_window_init(&w, 1024, 60 * SEC), 0);
	for (unsigned i = 0; i < 1024; i++)
		ck_assert(!fault_window_add(&w, (usec_t)i * MS));
	ck_assert_uint_eq(fault_window_count(&w, 1023 * MS), 1024);
	ck_assert(fault_window_add(&w, 1024 * MS));
	ck_assert_uint_eq(fault_window_count(&w, 1024 * MS), 1025);
	ck_assert_uint_eq(w.n, FAULT_WINDOW_MAX);
	fault_window_done(&w);

	/* 1024 per minute, spaced so that exactly 1024 fit: never fails. */
	ck_assert_int_eq(fault_window_init(&w, 1024, 1024 * MS), 0);
	for (unsigned i = 0; i < 5000; i++)
		ck_assert(!fault_window_add(&w, (usec_t)i * MS));
	ck_assert_uint_eq(fault_window_count(&w, 4999 * MS), 1024);
	fault_window_done(&w);
}
END_TEST

static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc;

	tc = tcase_create("backoff");
	tcase_add_test(tc, test_backoff_doubles_and_caps);
	tcase_add_test(tc, test_backoff_jitter_bounds);
	tcase_add_test(tc, test_backoff_jitter_random);
	tcase_add_test(tc, test_backoff_reset_after_min_uptime);
	tcase_add_test(tc, test_backoff_reset);
	tcase_add_test(tc, test_backoff_min_equals_max);
	tcase_add_test(tc, test_backoff_min_zero);
	tcase_add_test(tc, test_backoff_no_overflow);
	tcase_add_test(tc, test_backoff_max_below_min);
	suite_add_tcase(s, tc);

	tc = tcase_create("fault_window");
	tcase_add_test(tc, test_fault_window_init_bad_args);
	tcase_add_test(tc, test_fault_window_exact_limit);
	tcase_add_test(tc, test_fault_window_spread);
	tcase_add_test(tc, test_fault_window_count);
	tcase_add_test(tc, test_fault_window_one);
	tcase_add_test(tc, test_fault_window_1024);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(policy_suite());
	int failed;

	/* Forked mode is Check's default; CK_FORK=no still works for gdb. */
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
