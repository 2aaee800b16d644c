/* SPDX-License-Identifier: MIT */
/*
 * The log module: plain "program: message" lines on stderr, "<N>message" when JOURNAL_STREAM
 * names stderr (systemd connected it to journald), errno suffixes, level filtering, and a
 * sink receiving the structured fields. Each test runs in its own forked process (Check), so
 * redirecting stderr and setting the environment stay local to it.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

#include "capture.h"

START_TEST(test_plain_lines)
{
	int fd = capture_stderr();

	unsetenv("JOURNAL_STREAM");
	log_set_program("bulkheadd");
	log_msg(LOG_WARNING, "worker %s died", "main/0");
	log_errno(LOG_ERR, -ENOENT, "cannot open %s", "x.conf");
	log_debug("not shown at the default level");
	ck_assert_str_eq(captured(fd), "bulkheadd: worker main/0 died\n"
				       "bulkheadd: cannot open x.conf: No such file or directory\n");
}
END_TEST

START_TEST(test_journal_stream_prefixes)
{
	int fd = capture_stderr();
	struct stat st;
	char env[64];

	ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	log_msg(LOG_NOTICE, "job %s quarantined", "segv#1");
	ck_assert_str_eq(captured(fd), "<5>job segv#1 quarantined\n");
}
END_TEST

START_TEST(test_journal_stream_of_another_file_is_ignored)
{
	int fd = capture_stderr();

	setenv("JOURNAL_STREAM", "1:2", 1);
	log_set_program("bulkhead");
	log_msg(LOG_NOTICE, "hello");
	ck_assert_str_eq(captured(fd), "bulkhead: hello\n");
}
END_TEST

static char sink_line[256];

static void test_sink(int level, const char *const *fields, const char *message)
{
	int n = snprintf(sink_line, sizeof(sink_line), "%d|%s", level, message);

	for (int i = 0; fields && fields[i]; i++)
		n += snprintf(sink_line + n, sizeof(sink_line) - (size_t)n, "|%s", fields[i]);
}

START_TEST(test_sink_gets_fields)
{
	const char *fields[] = { "POOL=main", "JOB=segv#1", "SIGNAL=SIGSEGV", NULL };
	int fd = capture_stderr();

	log_set_sink(test_sink);
	log_fields(LOG_WARNING, fields, "worker %s killed", "main/0");
	ck_assert_str_eq(sink_line, "4|worker main/0 killed|POOL=main|JOB=segv#1|SIGNAL=SIGSEGV");
	ck_assert_str_eq(captured(fd), ""); /* nothing went to stderr */
	log_set_sink(NULL);
}
END_TEST

static char tapped[1024];

static void test_tap(int level, const char *message)
{
	size_t n = strlen(tapped);

	snprintf(tapped + n, sizeof(tapped) - n, "%d|%s\n", level, message);
}

/* The tap sees lines at its level or above whatever the max level says; stderr does not. */
START_TEST(test_tap_sees_events_below_max_level)
{
	int fd = capture_stderr();

	unsetenv("JOURNAL_STREAM");
	log_set_program("bulkheadd");
	log_set_max_level(LOG_WARNING);
	log_set_tap(LOG_NOTICE, test_tap);
	log_notice("worker %s restarted", "main/0");
	log_warning("worker %s killed", "main/1");
	log_info("not an event");
	log_errno(LOG_ERR, -ENOENT, "cannot open %s", "x");
	log_set_tap(LOG_NOTICE, NULL);
	log_notice("after the tap");
	log_set_max_level(LOG_INFO);
	ck_assert_str_eq(tapped, "5|worker main/0 restarted\n4|worker main/1 killed\n"
				 "3|cannot open x: No such file or directory\n");
	ck_assert_str_eq(captured(fd), "bulkheadd: worker main/1 killed\n"
				       "bulkheadd: cannot open x: No such file or directory\n");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_plain_lines);
	tcase_add_test(tc, test_journal_stream_prefixes);
	tcase_add_test(tc, test_journal_stream_of_another_file_is_ignored);
	tcase_add_test(tc, test_sink_gets_fields);
	tcase_add_test(tc, test_tap_sees_events_below_max_level);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
