/* SPDX-License-Identifier: MIT */
/* common/sched-slice.c: the slice asked for is the slice got; nice and policy stay. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/sched-slice.h"

/* se.slice of the calling thread, or -1 where the kernel does not show it. */
static long my_slice(void)
{
	char line[256];
	long ns = -1;
	FILE *f = fopen("/proc/thread-self/sched", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "se.slice", 8) == 0)
			ns = strtol(strchr(line, ':') + 1, NULL, 10);
	fclose(f);
	return ns;
}

/* Each test runs in a thread of its own, so the changes go with it. */
static void *in_thread(void *arg)
{
	void (*fn)(void) = (void (*)(void))arg;

	fn();
	return NULL;
}

static void run_in_thread(void (*fn)(void))
{
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, in_thread, (void *)fn), 0);
	pthread_join(t, NULL);
}

static bool supported(void)
{
	long before = my_slice();
	bool ok;

	if (before < 0 || sched_slice_set(SCHED_SLICE_SUPERVISOR_NS) < 0)
		return false;
	ok = my_slice() == (long)SCHED_SLICE_SUPERVISOR_NS;
	ck_assert_int_eq(sched_slice_set(0), 0);
	return ok;
}

static void set_and_reset(void)
{
	long def;

	ck_assert_int_eq(sched_slice_set(0), 0);
	def = my_slice();
	ck_assert_int_gt(def, (long)SCHED_SLICE_SUPERVISOR_NS);
	ck_assert_int_eq(sched_slice_set(SCHED_SLICE_SUPERVISOR_NS), 0);
	ck_assert_int_eq(my_slice(), (long)SCHED_SLICE_SUPERVISOR_NS);
	ck_assert_int_eq(sched_getscheduler(0), SCHED_OTHER);
	ck_assert_int_eq(sched_slice_set(0), 0);
	ck_assert_int_eq(my_slice(), def);
}

/* A nice value given before stays (the slice is not the thread's share of the CPU). */
static void keeps_nice(void)
{
	ck_assert_int_eq(setpriority(PRIO_PROCESS, 0, 7), 0);
	ck_assert_int_eq(sched_slice_set(SCHED_SLICE_SUPERVISOR_NS), 0);
	errno = 0;
	ck_assert_int_eq(getpriority(PRIO_PROCESS, 0), 7);
	ck_assert_int_eq(my_slice(), (long)SCHED_SLICE_SUPERVISOR_NS);
}

static void keeps_batch(void)
{
	ck_assert_int_eq(sched_setscheduler(0, SCHED_BATCH, &(struct sched_param){ 0 }), 0);
	ck_assert_int_eq(sched_slice_set(SCHED_SLICE_SUPERVISOR_NS), 0);
	ck_assert_int_eq(sched_getscheduler(0), SCHED_BATCH);
	ck_assert_int_eq(my_slice(), (long)SCHED_SLICE_SUPERVISOR_NS);
}

/* SCHED_IDLE (chrt -i): left as it is, and no error. */
static void leaves_idle(void)
{
	long before;

	ck_assert_int_eq(sched_setscheduler(0, SCHED_IDLE, &(struct sched_param){ 0 }), 0);
	before = my_slice();
	ck_assert_int_eq(sched_slice_set(SCHED_SLICE_SUPERVISOR_NS), 0);
	ck_assert_int_eq(sched_getscheduler(0), SCHED_IDLE);
	ck_assert_int_eq(my_slice(), before);
}

/* A thread made by a thread with a short slice has it too: why job threads reset theirs. */
static void *report_slice(void *arg)
{
	*(long *)arg = my_slice();
	return NULL;
}

static void inherited(void)
{
	pthread_t t;
	long got = 0;

	ck_assert_int_eq(sched_slice_set(SCHED_SLICE_SUPERVISOR_NS), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, report_slice, &got), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(got, (long)SCHED_SLICE_SUPERVISOR_NS);
}

#define SLICE_TEST(name)                                                                    \
	START_TEST(test_##name)                                                             \
	{                                                                                   \
		if (!supported()) {                                                         \
			fprintf(stderr, "test_" #name ": skipped: this kernel does not give a " \
					"thread the slice it asks for (it needs Linux 6.12)\n");  \
			return;                                                             \
		}                                                                           \
		run_in_thread(name);                                                        \
	}                                                                                   \
	END_TEST

SLICE_TEST(set_and_reset)
SLICE_TEST(keeps_nice)
SLICE_TEST(keeps_batch)
SLICE_TEST(leaves_idle)
SLICE_TEST(inherited)

int main(void)
{
	Suite *s = suite_create("sched-slice");
	TCase *tc = tcase_create("slice");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_set_and_reset);
	tcase_add_test(tc, test_keeps_nice);
	tcase_add_test(tc, test_keeps_batch);
	tcase_add_test(tc, test_leaves_idle);
	tcase_add_test(tc, test_inherited);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
