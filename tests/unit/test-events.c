/* SPDX-License-Identifier: MIT */
/* daemon/events.c: the ring of recent events behind `top` and the status reply. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "common/log.h"
#include "daemon/events.h"

START_TEST(test_newest_first_and_bounded)
{
	char text[32];

	events_stop(); /* empty */
	ck_assert_uint_eq(events_count(), 0);
	ck_assert_ptr_null(events_newest(0));
	for (int i = 1; i <= EVENTS_MAX + 10; i++) {
		snprintf(text, sizeof(text), "event %d", i);
		events_record(LOG_WARNING, text);
	}
	ck_assert_uint_eq(events_count(), EVENTS_MAX);
	snprintf(text, sizeof(text), "event %d", EVENTS_MAX + 10);
	ck_assert_str_eq(events_newest(0)->text, text);
	ck_assert_str_eq(events_newest(EVENTS_MAX - 1)->text, "event 11"); /* 1..10 pushed out */
	ck_assert_ptr_null(events_newest(EVENTS_MAX));
	ck_assert_int_eq(events_newest(0)->level, LOG_WARNING);
	ck_assert_uint_gt(events_newest(0)->at, 0);
}
END_TEST

START_TEST(test_long_line_cut_and_tap)
{
	char line[EVENT_TEXT_MAX * 2];

	events_stop();
	events_start();
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	log_set_max_level(LOG_ERR); /* not written, still an event */
	log_notice("%s", line);
	log_info("not an event");
	log_set_max_level(LOG_INFO);
	ck_assert_uint_eq(events_count(), 1);
	ck_assert_uint_eq(strlen(events_newest(0)->text), EVENT_TEXT_MAX - 1);
	ck_assert_str_eq(events_newest(0)->text + EVENT_TEXT_MAX - 4, "...");
	events_stop();
	log_notice("after the stop");
	ck_assert_uint_eq(events_count(), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("ring");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_newest_first_and_bounded);
	tcase_add_test(tc, test_long_line_cut_and_tap);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
