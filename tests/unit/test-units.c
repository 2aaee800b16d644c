/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/units.c (durations, ranges, sizes, rates, integers, booleans,
 * probabilities, formatting round trips and every error path) and common/strutil.c.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/strutil.h"
#include "common/units.h"

static usec_t dur(const char *s)
{
	usec_t u = 12345;

	ck_assert_msg(parse_duration(s, &u) == 0, "parse_duration(\"%s\") failed", s);
	return u;
}

static int dur_err(const char *s)
{
	usec_t u = 12345;
	int r = parse_duration(s, &u);

	ck_assert_msg(r < 0, "parse_duration(\"%s\") succeeded", s);
	ck_assert_msg(u == 12345, "parse_duration(\"%s\") wrote on failure", s);
	return r;
}

START_TEST(test_duration_ok)
{
	ck_assert_uint_eq(dur("0"), 0);
	ck_assert_uint_eq(dur("0s"), 0);
	ck_assert_uint_eq(dur("0.0ms"), 0);
	ck_assert_uint_eq(dur("10us"), 10);
	ck_assert_uint_eq(dur("250ms"), 250 * USEC_PER_MSEC);
	ck_assert_uint_eq(dur("1s"), USEC_PER_SEC);
	ck_assert_uint_eq(dur("1.5s"), 1500000);
	ck_assert_uint_eq(dur("2min"), 2 * USEC_PER_MINUTE);
	ck_assert_uint_eq(dur("1h"), USEC_PER_HOUR);
	ck_assert_uint_eq(dur("1.5h"), 90 * USEC_PER_MINUTE);
	ck_assert_uint_eq(dur("0.5min"), 30 * USEC_PER_SEC);
	ck_assert_uint_eq(dur("1.234567s"), 1234567);
	ck_assert_uint_eq(dur("007ms"), 7000);
	ck_assert_uint_eq(dur("infinity"), USEC_INFINITY);
	/* Rounded down to whole microseconds. */
	ck_assert_uint_eq(dur("1.0009ms"), 1000);
	ck_assert_uint_eq(dur("0.0000001s"), 0);
	ck_assert_uint_eq(dur("0.33333333333333333333333333333min"), 19999999);
	/* The largest finite value. */
	ck_assert_uint_eq(dur("18446744073709551614us"), UINT64_MAX - 1);
}
END_TEST

START_TEST(test_duration_errors)
{
	/* A unit is required except for 0. */
	ck_assert_int_eq(dur_err("1"), -EINVAL);
	ck_assert_int_eq(dur_err("1.5"), -EINVAL);
	ck_assert_int_eq(dur_err(""), -EINVAL);
	ck_assert_int_eq(dur_err("s"), -EINVAL);
	ck_assert_int_eq(dur_err("-1s"), -EINVAL);
	ck_assert_int_eq(dur_err("+1s"), -EINVAL);
	ck_assert_int_eq(dur_err(" 1s"), -EINVAL);
	ck_assert_int_eq(dur_err("1s "), -EINVAL);
	ck_assert_int_eq(dur_err("1 s"), -EINVAL);
	ck_assert_int_eq(dur_err("1S"), -EINVAL);
	ck_assert_int_eq(dur_err("1sec"), -EINVAL);
	ck_assert_int_eq(dur_err("1m"), -EINVAL);
	ck_assert_int_eq(dur_err(".5s"), -EINVAL);
	ck_assert_int_eq(dur_err("5.s"), -EINVAL);
	ck_assert_int_eq(dur_err("1.2.3s"), -EINVAL);
	ck_assert_int_eq(dur_err("1e3ms"), -EINVAL);
	ck_assert_int_eq(dur_err("0x10s"), -EINVAL);
	ck_assert_int_eq(dur_err("1s1"), -EINVAL);
	ck_assert_int_eq(dur_err("infinite"), -EINVAL);
	ck_assert_int_eq(dur_err("Infinity"), -EINVAL);
	ck_assert_int_eq(dur_err("abc"), -EINVAL);
	/* Overflow. */
	ck_assert_int_eq(dur_err("18446744073709551616us"), -ERANGE);
	ck_assert_int_eq(dur_err("18446744073709551615us"), -ERANGE); /* that is "infinity" */
	ck_assert_int_eq(dur_err("99999999999999999999999s"), -ERANGE);
	ck_assert_int_eq(dur_err("5124095577h"), -ERANGE);
	ck_assert_int_eq(parse_duration(NULL, &(usec_t){ 0 }), -EINVAL);
}
END_TEST

START_TEST(test_duration_range)
{
	usec_t lo = 1, hi = 1;

	ck_assert_int_eq(parse_duration_range("10ms..5s", &lo, &hi), 0);
	ck_assert_uint_eq(lo, 10000);
	ck_assert_uint_eq(hi, 5000000);
	ck_assert_int_eq(parse_duration_range("1.5s..2.5s", &lo, &hi), 0);
	ck_assert_uint_eq(lo, 1500000);
	ck_assert_uint_eq(hi, 2500000);
	ck_assert_int_eq(parse_duration_range("1s", &lo, &hi), 0);
	ck_assert_uint_eq(lo, USEC_PER_SEC);
	ck_assert_uint_eq(hi, USEC_PER_SEC);
	ck_assert_int_eq(parse_duration_range("0..infinity", &lo, &hi), 0);
	ck_assert_uint_eq(lo, 0);
	ck_assert_uint_eq(hi, USEC_INFINITY);
	ck_assert_int_eq(parse_duration_range("1s..1s", &lo, &hi), 0);

	lo = hi = 7;
	ck_assert_int_eq(parse_duration_range("5s..10ms", &lo, &hi), -EINVAL);
	ck_assert_int_eq(parse_duration_range("..5s", &lo, &hi), -EINVAL);
	ck_assert_int_eq(parse_duration_range("5s..", &lo, &hi), -EINVAL);
	ck_assert_int_eq(parse_duration_range("1s...2s", &lo, &hi), -EINVAL);
	ck_assert_int_eq(parse_duration_range("1s..2s..3s", &lo, &hi), -EINVAL);
	ck_assert_int_eq(parse_duration_range("1s .. 2s", &lo, &hi), -EINVAL);
	ck_assert_int_eq(parse_duration_range("1..2s", &lo, &hi), -EINVAL);
	ck_assert_int_eq(parse_duration_range("1s..99999999999999999999s", &lo, &hi), -ERANGE);
	ck_assert_int_eq(parse_duration_range("", &lo, &hi), -EINVAL);
	ck_assert_uint_eq(lo, 7);
	ck_assert_uint_eq(hi, 7);
}
END_TEST

START_TEST(test_size)
{
	uint64_t v = 0;

	ck_assert_int_eq(parse_size("0", &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(parse_size("4096", &v), 0);
	ck_assert_uint_eq(v, 4096);
	ck_assert_int_eq(parse_size("64K", &v), 0);
	ck_assert_uint_eq(v, 64 * 1024);
	ck_assert_int_eq(parse_size("512M", &v), 0);
	ck_assert_uint_eq(v, 512ULL << 20);
	ck_assert_int_eq(parse_size("1G", &v), 0);
	ck_assert_uint_eq(v, 1ULL << 30);
	ck_assert_int_eq(parse_size("1.5G", &v), 0);
	ck_assert_uint_eq(v, 3ULL << 29);
	ck_assert_int_eq(parse_size("2T", &v), 0);
	ck_assert_uint_eq(v, 2ULL << 40);
	ck_assert_int_eq(parse_size("0.5K", &v), 0);
	ck_assert_uint_eq(v, 512);
	ck_assert_int_eq(parse_size("1.0001K", &v), 0); /* rounded down */
	ck_assert_uint_eq(v, 1024);
	ck_assert_int_eq(parse_size("infinity", &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	ck_assert_int_eq(parse_size("18446744073709551614", &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX - 1);

	v = 9;
	ck_assert_int_eq(parse_size("", &v), -EINVAL);
	ck_assert_int_eq(parse_size("1.5", &v), -EINVAL); /* fraction of a byte */
	ck_assert_int_eq(parse_size("-1K", &v), -EINVAL);
	ck_assert_int_eq(parse_size("1k", &v), -EINVAL);
	ck_assert_int_eq(parse_size("1KB", &v), -EINVAL);
	ck_assert_int_eq(parse_size("1 K", &v), -EINVAL);
	ck_assert_int_eq(parse_size(" 1K", &v), -EINVAL);
	ck_assert_int_eq(parse_size("1E", &v), -EINVAL);
	ck_assert_int_eq(parse_size("K", &v), -EINVAL);
	ck_assert_int_eq(parse_size("16777216T", &v), -ERANGE);
	ck_assert_int_eq(parse_size("18446744073709551616", &v), -ERANGE);
	ck_assert_int_eq(parse_size("18446744073709551615", &v), -ERANGE); /* "infinity" */
	ck_assert_uint_eq(v, 9);
}
END_TEST

START_TEST(test_rate)
{
	struct rate r = { 0, 0 };

	ck_assert_int_eq(parse_rate("10/60s", &r), 0);
	ck_assert_uint_eq(r.count, 10);
	ck_assert_uint_eq(r.window, 60 * USEC_PER_SEC);
	ck_assert_int_eq(parse_rate("1/1.5min", &r), 0);
	ck_assert_uint_eq(r.count, 1);
	ck_assert_uint_eq(r.window, 90 * USEC_PER_SEC);

	ck_assert_int_eq(parse_rate("0/60s", &r), -ERANGE);
	ck_assert_int_eq(parse_rate("10/0", &r), -ERANGE);
	ck_assert_int_eq(parse_rate("10/infinity", &r), -ERANGE);
	ck_assert_int_eq(parse_rate("10/60", &r), -EINVAL);
	ck_assert_int_eq(parse_rate("10", &r), -EINVAL);
	ck_assert_int_eq(parse_rate("/60s", &r), -EINVAL);
	ck_assert_int_eq(parse_rate("10/", &r), -EINVAL);
	ck_assert_int_eq(parse_rate("-1/60s", &r), -EINVAL);
	ck_assert_int_eq(parse_rate("10 / 60s", &r), -EINVAL);
	ck_assert_int_eq(parse_rate("10/60s/2", &r), -EINVAL);
	ck_assert_int_eq(parse_rate("4294967296/1s", &r), -ERANGE);
	ck_assert_uint_eq(r.count, 1);
}
END_TEST

START_TEST(test_uint)
{
	uint64_t v = 0;

	ck_assert_int_eq(parse_uint("0", 0, 10, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(parse_uint("10", 0, 10, &v), 0);
	ck_assert_uint_eq(v, 10);
	ck_assert_int_eq(parse_uint("0010", 0, 10, &v), 0);
	ck_assert_uint_eq(v, 10);
	ck_assert_int_eq(parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);

	v = 5;
	ck_assert_int_eq(parse_uint("11", 0, 10, &v), -ERANGE);
	ck_assert_int_eq(parse_uint("0", 1, 10, &v), -ERANGE);
	ck_assert_int_eq(parse_uint("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
	ck_assert_int_eq(parse_uint("-1", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(parse_uint("+1", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(parse_uint("", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(parse_uint(" 1", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(parse_uint("1 ", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(parse_uint("1.0", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(parse_uint("0x1", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(parse_uint("abc", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(parse_uint(NULL, 0, 10, &v), -EINVAL);
	ck_assert_uint_eq(v, 5);
}
END_TEST

START_TEST(test_bool)
{
	ck_assert_int_eq(parse_bool("yes"), 1);
	ck_assert_int_eq(parse_bool("true"), 1);
	ck_assert_int_eq(parse_bool("on"), 1);
	ck_assert_int_eq(parse_bool("1"), 1);
	ck_assert_int_eq(parse_bool("YES"), 1);
	ck_assert_int_eq(parse_bool("no"), 0);
	ck_assert_int_eq(parse_bool("false"), 0);
	ck_assert_int_eq(parse_bool("off"), 0);
	ck_assert_int_eq(parse_bool("0"), 0);
	ck_assert_int_eq(parse_bool("maybe"), -EINVAL);
	ck_assert_int_eq(parse_bool(""), -EINVAL);
	ck_assert_int_eq(parse_bool(" yes"), -EINVAL);
	ck_assert_int_eq(parse_bool("y"), -EINVAL);
	ck_assert_int_eq(parse_bool("2"), -EINVAL);
	ck_assert_int_eq(parse_bool(NULL), -EINVAL);
}
END_TEST

START_TEST(test_probability)
{
	double p = -1;

	ck_assert_int_eq(parse_probability("0", &p), 0);
	ck_assert_double_eq(p, 0.0);
	ck_assert_int_eq(parse_probability("1", &p), 0);
	ck_assert_double_eq(p, 1.0);
	ck_assert_int_eq(parse_probability("1.000", &p), 0);
	ck_assert_double_eq(p, 1.0);
	ck_assert_int_eq(parse_probability("0.25", &p), 0);
	ck_assert_double_eq(p, 0.25);

	p = -1;
	ck_assert_int_eq(parse_probability("1.5", &p), -ERANGE);
	ck_assert_int_eq(parse_probability("1.0001", &p), -ERANGE);
	ck_assert_int_eq(parse_probability("2", &p), -ERANGE);
	ck_assert_int_eq(parse_probability("-0.5", &p), -EINVAL);
	ck_assert_int_eq(parse_probability(".5", &p), -EINVAL);
	ck_assert_int_eq(parse_probability("0.5x", &p), -EINVAL);
	ck_assert_int_eq(parse_probability("nan", &p), -EINVAL);
	ck_assert_int_eq(parse_probability("1e-3", &p), -EINVAL);
	ck_assert_int_eq(parse_probability("", &p), -EINVAL);
	ck_assert_int_eq(parse_probability("50%", &p), -EINVAL);
	ck_assert_double_eq(p, -1);
}
END_TEST

static void check_format_duration(usec_t u, const char *expect)
{
	char buf[FORMAT_DURATION_MAX];
	usec_t back;

	format_duration(buf, sizeof(buf), u);
	ck_assert_str_eq(buf, expect);
	ck_assert_int_eq(parse_duration(buf, &back), 0);
	ck_assert_uint_eq(back, u);
}

START_TEST(test_format_duration)
{
	char small[4];

	check_format_duration(0, "0");
	check_format_duration(1, "1us");
	check_format_duration(1500000, "1.5s");
	check_format_duration(250000, "250ms");
	check_format_duration(60 * USEC_PER_SEC, "1min");
	check_format_duration(90 * USEC_PER_SEC, "1.5min");
	check_format_duration(61 * USEC_PER_SEC, "61s");
	check_format_duration(USEC_PER_HOUR, "1h");
	check_format_duration(USEC_PER_HOUR + 1, "3600.000001s");
	check_format_duration(1234567, "1.234567s");
	check_format_duration(1001, "1.001ms");
	check_format_duration(USEC_INFINITY, "infinity");
	check_format_duration(UINT64_MAX - 1, "18446744073709.551614s");

	/* Truncated, still terminated. */
	format_duration(small, sizeof(small), 250000);
	ck_assert_str_eq(small, "250");
}
END_TEST

START_TEST(test_format_duration_roundtrip)
{
	/* Every value reads back to itself: a sweep over magnitudes and odd values. */
	usec_t v = 1;

	for (int i = 0; i < 64; i++, v = v * 3 + 7) {
		char buf[FORMAT_DURATION_MAX];
		usec_t back;

		if (v == USEC_INFINITY)
			break;
		format_duration(buf, sizeof(buf), v);
		ck_assert_int_eq(parse_duration(buf, &back), 0);
		ck_assert_uint_eq(back, v);
	}
}
END_TEST

static void check_format_size(uint64_t b, const char *expect)
{
	char buf[FORMAT_SIZE_MAX];
	uint64_t back;

	format_size(buf, sizeof(buf), b);
	ck_assert_str_eq(buf, expect);
	ck_assert_int_eq(parse_size(buf, &back), 0);
	ck_assert_uint_eq(back, b);
}

START_TEST(test_format_size)
{
	check_format_size(0, "0");
	check_format_size(1, "1");
	check_format_size(1024, "1K");
	check_format_size(1536, "1.5K");
	check_format_size(1025, "1025");
	check_format_size(512ULL << 20, "512M");
	check_format_size(3ULL << 29, "1.5G");
	check_format_size(16ULL << 20, "16M");
	check_format_size((1ULL << 30) + 1024, "1048577K");
	check_format_size(1ULL << 40, "1T");
	check_format_size(UINT64_MAX, "infinity");
	check_format_size(UINT64_MAX - 1, "18446744073709551614");
}
END_TEST

START_TEST(test_now)
{
	usec_t a = now_usec(), b = now_usec();

	ck_assert_uint_gt(a, 0);
	ck_assert_uint_ge(b, a);
}
END_TEST

START_TEST(test_strutil)
{
	static const char *const keys[] = { "workers", "threads", "backoff", NULL };
	static const char *const kinds[] = { "supervisor", "pool", "job", NULL };
	char buf[8];

	ck_assert_uint_eq(str_distance("", ""), 0);
	ck_assert_uint_eq(str_distance("abc", ""), 3);
	ck_assert_uint_eq(str_distance("", "abc"), 3);
	ck_assert_uint_eq(str_distance("kitten", "sitting"), 3);
	ck_assert_uint_eq(str_distance("thread", "threads"), 1);
	ck_assert_uint_eq(str_distance("jbo", "job"), 1); /* a swap counts once */
	ck_assert_uint_eq(str_distance("mian", "main"), 1);
	ck_assert_uint_eq(str_distance("same", "same"), 0);

	ck_assert_str_eq(str_did_you_mean("thread", keys), "threads");
	ck_assert_str_eq(str_did_you_mean("wrokers", keys), "workers");
	ck_assert_ptr_null(str_did_you_mean("zzzzzzz", keys));
	ck_assert_str_eq(str_did_you_mean("jbo", kinds), "job");
	ck_assert_str_eq(str_did_you_mean("pol", kinds), "pool");
	ck_assert_ptr_null(str_did_you_mean("x", kinds));
	ck_assert_ptr_null(str_did_you_mean(NULL, kinds));

	ck_assert_str_eq(str_printf(buf, sizeof(buf), "%d-%s", 12, "abcdefgh"), "12-abcd");
	ck_assert_str_eq(str_printf(buf, sizeof(buf), "%s", ""), "");
}
END_TEST

START_TEST(test_utf8)
{
	char fix[] = "a\xff" "b\xc3\xa9" "c\xed\xa0\x80" "d\xe2\x82" "\xf4\x90\x80\x80" "e\xc0\xaf";

	ck_assert(str_is_utf8(""));
	ck_assert(str_is_utf8("plain /path/file.txt"));
	ck_assert(str_is_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")); /* é € 😀 */
	ck_assert(!str_is_utf8("\xff"));
	ck_assert(!str_is_utf8("\xc0\xaf"));         /* overlong '/' */
	ck_assert(!str_is_utf8("\xe0\x80\xaf"));     /* overlong, 3 bytes */
	ck_assert(!str_is_utf8("\xed\xa0\x80"));     /* a surrogate */
	ck_assert(!str_is_utf8("\xf4\x90\x80\x80")); /* above U+10FFFF */
	ck_assert(!str_is_utf8("\xe2\x82"));         /* cut short at the end */
	ck_assert(!str_is_utf8("\x80"));              /* a continuation alone */
	str_fix_utf8(fix);
	ck_assert_str_eq(fix, "a?b\xc3\xa9" "c???d??????e??");
	ck_assert(str_is_utf8(fix));
}
END_TEST

static Suite *units_suite(void)
{
	Suite *s = suite_create("units");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_duration_ok);
	tcase_add_test(tc, test_duration_errors);
	tcase_add_test(tc, test_duration_range);
	tcase_add_test(tc, test_size);
	tcase_add_test(tc, test_rate);
	tcase_add_test(tc, test_uint);
	tcase_add_test(tc, test_bool);
	tcase_add_test(tc, test_probability);
	tcase_add_test(tc, test_format_duration);
	tcase_add_test(tc, test_format_duration_roundtrip);
	tcase_add_test(tc, test_format_size);
	tcase_add_test(tc, test_now);
	tcase_add_test(tc, test_strutil);
	tcase_add_test(tc, test_utf8);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(units_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
