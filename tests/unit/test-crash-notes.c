/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/crash-notes.c: the summary line of a crash ("SIGSEGV at 0x0 in
 * crashy.so:parse_record+0x11"; for SIGABRT the caller outside the C library), and the ring of
 * the last CRASH_NOTES_MAX crashes: one note per job, the newest replacing the oldest, a note
 * dropped when its job crashes again.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/crash-notes.h"

static struct bh_crash_info info_of(const char *text)
{
	struct bh_crash_info ci = { .job_id = 1, .text = text, .len = (uint16_t)strlen(text) };

	for (const char *p = text; *p; p++)
		ci.frames += *p == '\n';
	return ci;
}

static const char *summary(int signo, uint64_t addr, const char *text)
{
	static char buf[CRASH_SUMMARY_MAX];
	struct bh_crash c = { .job_id = 1, .kind = BH_CRASH_SIGNAL, .signo = signo, .addr = addr };
	struct bh_crash_info ci = info_of(text);

	return crash_summary(&c, &ci, buf, sizeof(buf));
}

START_TEST(test_summary)
{
	ck_assert_str_eq(summary(SIGSEGV, 0, "crashy.so:parse_record+0x11\ncrashy.so:run+0x9\n"),
			 "SIGSEGV at 0x0 in crashy.so:parse_record+0x11");
	ck_assert_str_eq(summary(SIGBUS, 0x7f0012340000, "a.so:+0x10\n"),
			 "SIGBUS at 0x7f0012340000 in a.so:+0x10");
	/* The others' si_addr is the instruction: no "at". */
	ck_assert_str_eq(summary(SIGFPE, 0x1234, "a.so:div+0x4\n"), "SIGFPE in a.so:div+0x4");
	ck_assert_str_eq(summary(SIGILL, 0x1234, "0x1234\n"), "SIGILL in 0x1234");
	/* SIGABRT: abort()'s caller, past the C library's frames... */
	ck_assert_str_eq(summary(SIGABRT, 0,
				 "libc.so.6:+0x8aeec\nlibc.so.6:raise+0x12\nlibc.so.6:abort+0xd3\n"
				 "libfoo.so:check+0x2a\nlibfoo.so:run+0x9\n"),
			 "SIGABRT in libfoo.so:check+0x2a");
	/* ...and frame 0 when there is nothing else. */
	ck_assert_str_eq(summary(SIGABRT, 0, "libc.so.6:+0x8aeec\nlibc.so.6:abort+0xd3\n"),
			 "SIGABRT in libc.so.6:+0x8aeec");
	ck_assert_str_eq(summary(SIGABRT, 0, "libfoo.so:+0x10\n"), "SIGABRT in libfoo.so:+0x10");
	/* Only SIGABRT skips the C library: a SIGSEGV in memcpy is in memcpy. */
	ck_assert_str_eq(summary(SIGSEGV, 0x10, "libc.so.6:memcpy+0x1d\nlibfoo.so:copy+0x4\n"),
			 "SIGSEGV at 0x10 in libc.so.6:memcpy+0x1d");
}
END_TEST

START_TEST(test_ring)
{
	static struct crash_notes n;
	const struct crash_note *e;
	char s[32];

	ck_assert_ptr_null(crash_notes_get(&n, 1));
	ck_assert_int_eq(crash_notes_set(&n, 1, "SIGSEGV in a", "a\nb\n", 4), 0);
	e = crash_notes_get(&n, 1);
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->summary, "SIGSEGV in a");
	ck_assert_str_eq(e->frames, "a\nb\n");
	/* Job 0 (no job) is never kept. */
	ck_assert_int_eq(crash_notes_set(&n, 0, "x", "x\n", 2), 0);
	ck_assert_ptr_null(crash_notes_get(&n, 0));
	/* A second crash of job 1 replaces its note (one entry). */
	ck_assert_int_eq(crash_notes_set(&n, 1, "SIGBUS in c", "c\n", 2), 0);
	ck_assert_str_eq(crash_notes_get(&n, 1)->summary, "SIGBUS in c");
	crash_notes_forget(&n, 1);
	ck_assert_ptr_null(crash_notes_get(&n, 1));
	crash_notes_forget(&n, 1);

	/* The last CRASH_NOTES_MAX jobs stay; the older ones go, oldest first. */
	for (uint64_t id = 100; id < 100 + CRASH_NOTES_MAX + 10; id++) {
		snprintf(s, sizeof(s), "S%llu", (unsigned long long)id);
		ck_assert_int_eq(crash_notes_set(&n, id, s, "f\n", 2), 0);
	}
	for (uint64_t id = 100; id < 110; id++)
		ck_assert_ptr_null(crash_notes_get(&n, id));
	for (uint64_t id = 110; id < 100 + CRASH_NOTES_MAX + 10; id++) {
		e = crash_notes_get(&n, id);
		snprintf(s, sizeof(s), "S%llu", (unsigned long long)id);
		ck_assert_msg(e && strcmp(e->summary, s) == 0, "job %llu",
			      (unsigned long long)id);
	}
	crash_notes_free(&n);
	ck_assert_ptr_null(crash_notes_get(&n, 200));
}
END_TEST

static Suite *crash_notes_suite(void)
{
	Suite *s = suite_create("crash-notes");
	TCase *tc = tcase_create("crash-notes");

	tcase_add_test(tc, test_summary);
	tcase_add_test(tc, test_ring);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(crash_notes_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
