/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the death verdict's pure parts (daemon/death.c): from what is known when a
 * worker died, what kind of death it was (in order of precedence), whether it counts as a
 * death, and what the slot does next (a worker fault only when the worker itself failed).
 * No process: the facts are written by hand, one per rule of DESIGN §3 and §11.
 */
#include <check.h>
#include <signal.h>
#include <stdlib.h>

#include "daemon/master-int.h"

static struct death_facts killed(int sig, enum slot_end end)
{
	return (struct death_facts){ .signaled = true, .status = sig, .end = end };
}

START_TEST(test_classify_precedence)
{
	struct death_facts f;

	/* The run or the pool ending outweighs everything: its jobs are cancelled. */
	f = killed(SIGSEGV, END_INJECT);
	f.ending = true;
	ck_assert_int_eq(death_classify(&f), DEATH_KIND_CANCEL);
	/* Exit 0 after STOP. */
	f = (struct death_facts){ .clean = true, .end = END_STOP };
	ck_assert_int_eq(death_classify(&f), DEATH_KIND_CLEAN);
	/* An injection: whatever it died of, even with a crash report. */
	f = killed(SIGSEGV, END_INJECT);
	f.crash_frame = true;
	ck_assert_int_eq(death_classify(&f), DEATH_KIND_INJECTED);
	/* Asked to stop, then SIGTERM or SIGKILL by the master. */
	ck_assert_int_eq(death_classify(&(struct death_facts){ .signaled = true, .status = SIGTERM,
								.end = END_STOP }),
			 DEATH_KIND_STOPPED);
	f = killed(SIGKILL, END_STOP);
	ck_assert_int_eq(death_classify(&f), DEATH_KIND_STOPPED);
	/* ...but a crash while stopping is judged on its evidence. */
	f.crash_frame = true;
	ck_assert_int_eq(death_classify(&f), DEATH_KIND_EVIDENCE);
	f = killed(SIGSEGV, END_STOP);
	ck_assert_int_eq(death_classify(&f), DEATH_KIND_EVIDENCE);
	/* The master's kill for a timeout whose job ended meanwhile: nobody's fault. */
	f = killed(SIGKILL, END_TIMEOUT);
	ck_assert_int_eq(death_classify(&f), DEATH_KIND_TIMEOUT_ENDED);
	/* With the timed-out job still held, the blame rules blame it. */
	f.held_timed_out = true;
	ck_assert_int_eq(death_classify(&f), DEATH_KIND_EVIDENCE);
	/* A worker that died by itself, or was killed from outside. */
	ck_assert_int_eq(death_classify(&(struct death_facts){ .signaled = true,
							       .status = SIGKILL }),
			 DEATH_KIND_EVIDENCE);
	ck_assert_int_eq(death_classify(&(struct death_facts){ .status = 3 }), DEATH_KIND_EVIDENCE);
	ck_assert_int_eq(death_classify(&(struct death_facts){ .status = 0 }), DEATH_KIND_EVIDENCE);
}
END_TEST

START_TEST(test_counts)
{
	struct death_facts f = { .clean = true, .end = END_STOP };

	ck_assert(!death_counts(&f));
	f = killed(SIGKILL, END_STOP); /* stopped by the master: still starting, or too slow */
	ck_assert(!death_counts(&f));
	f = killed(SIGTERM, END_STOP);
	ck_assert(!death_counts(&f));
	f = killed(SIGSEGV, END_STOP); /* crashed by itself while stopping */
	ck_assert(death_counts(&f));
	f = killed(SIGKILL, END_TIMEOUT); /* a job's timeout: counted, the job is blamed */
	ck_assert(death_counts(&f));
	f = killed(SIGSEGV, END_INJECT); /* an injection is a death, shown as injected */
	ck_assert(death_counts(&f));
	f = killed(SIGKILL, END_NONE);
	ck_assert(death_counts(&f));
	f = (struct death_facts){ .status = 127 };
	ck_assert(death_counts(&f));
}
END_TEST

START_TEST(test_next)
{
	struct death_facts f = killed(SIGSEGV, END_NONE), ending = f;

	ending.ending = true;
	ck_assert_int_eq(death_next(&f, true, true, DEATH_CULPRIT), AFTER_TRIM);
	ck_assert_int_eq(death_next(&ending, false, true, DEATH_CULPRIT), AFTER_NOTHING);
	ck_assert_int_eq(death_next(&ending, true, true, DEATH_CULPRIT), AFTER_TRIM);
	/* Before HELLO: always the worker's fault. */
	ck_assert_int_eq(death_next(&f, false, false, DEATH_CULPRIT), AFTER_FAULT_NO_HELLO);
	/* Idle and by itself: a fault; a culprit's or a suspect's death: a restart at once. */
	ck_assert_int_eq(death_next(&f, false, true, DEATH_IDLE), AFTER_FAULT_IDLE);
	ck_assert_int_eq(death_next(&f, false, true, DEATH_CULPRIT), AFTER_RESTART_RESET);
	ck_assert_int_eq(death_next(&f, false, true, DEATH_SUSPECTS), AFTER_RESTART);
	/* A clean exit after STOP (a reload's replacement) is no fault. */
	f = (struct death_facts){ .clean = true, .end = END_STOP };
	ck_assert_int_eq(death_next(&f, false, true, DEATH_IDLE), AFTER_RESTART);
}
END_TEST

static Suite *death_suite(void)
{
	Suite *s = suite_create("death");
	TCase *tc = tcase_create("verdict");

	tcase_add_test(tc, test_classify_precedence);
	tcase_add_test(tc, test_counts);
	tcase_add_test(tc, test_next);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(death_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
