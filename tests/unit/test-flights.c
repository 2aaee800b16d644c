/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/flights.c, the master's record of which jobs each worker holds: no
 * processes, no clock. The rules checked are the ones the master's blame and timeouts stand
 * on: jobs start in the order they were assigned, at most `threads` at a time; a job leaving
 * from the middle of the FIFO (cancelled before it started) keeps the others' order; what a
 * dead worker held comes back running ones first, then the FIFO in order; the last `keep`
 * waiting jobs (an ASSIGN not sent yet) never start. A random run against a plain model
 * checks every step.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/flights.h"
#include "xorshift.h"

#define JOBS 512

struct job; /* never dereferenced here */

static struct job *J(uint64_t id)
{
	return (struct job *)(uintptr_t)(id * 8);
}

static uint64_t id_of(const struct job *j)
{
	return (uint64_t)(uintptr_t)j / 8;
}

static struct flight *assign(struct flight_table *t, struct flight_queue *q, uint64_t id,
			     uint64_t now, bool may_start)
{
	ck_assert_int_eq(flights_reserve(t, q, 1), 0);
	return flights_assign(t, q, J(id), id, q, now, may_start);
}

START_TEST(test_order_and_threads)
{
	struct flight_table t = FLIGHT_TABLE_INIT;
	struct flight_queue q = { 0 };
	struct job *jobs[16];
	uint8_t flags[16];
	struct flight *f;
	size_t n;

	ck_assert_int_eq(flight_queue_init(&q, 2), 0);
	for (uint64_t id = 1; id <= 6; id++)
		assign(&t, &q, id, 100 + id, true);
	ck_assert_uint_eq(q.n_running, 2);
	ck_assert_uint_eq(q.n_waiting, 4);
	ck_assert_uint_eq(flights_find(&t, 1)->started_at, 101);
	ck_assert_uint_eq(flights_find(&t, 3)->started_at, 0);
	ck_assert_ptr_null(flights_find(&t, 7));
	ck_assert_ptr_null(flights_find(&t, 0));
	/* Nothing starts while the threads are busy. */
	ck_assert_ptr_null(flights_promote(&t, &q, 200, 0));
	/* Job 4 is cancelled before it started: it leaves the FIFO, 3, 5, 6 keep their order. */
	flights_done(&t, &q, flights_find(&t, 4));
	ck_assert_uint_eq(q.n_waiting, 3);
	flights_done(&t, &q, flights_find(&t, 2));
	f = flights_promote(&t, &q, 300, 0);
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(f->id, 3);
	ck_assert_uint_eq(f->started_at, 300);
	ck_assert_int_eq(f->slot, 1); /* the slot job 2 left */
	ck_assert_ptr_null(flights_promote(&t, &q, 300, 0));
	/* The worker dies: running ones first (slot order), then the FIFO in order. */
	flights_find(&t, 3)->flags = 4;
	n = flights_collect(&t, &q, jobs, flags, 1);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(id_of(jobs[0]), 1);
	ck_assert_uint_eq(flags[0], 1);
	ck_assert_uint_eq(id_of(jobs[1]), 3);
	ck_assert_uint_eq(flags[1], 5);
	ck_assert_uint_eq(id_of(jobs[2]), 5);
	ck_assert_uint_eq(flags[2], 0);
	ck_assert_uint_eq(id_of(jobs[3]), 6);
	ck_assert_uint_eq(q.n_running + q.n_waiting, 0);
	ck_assert_uint_eq(t.n, 0);
	ck_assert_uint_eq(t.n_used, 0);
	flight_queue_free(&q);
	flight_table_free(&t);
}
END_TEST

/* The last `keep` waiting jobs (their ASSIGN not sent) do not start; then they do. */
/* A burst grows the table and the FIFO; once all of it is done, trimming gives it back. */
START_TEST(test_trim_after_a_burst)
{
	struct flight_table t = FLIGHT_TABLE_INIT;
	struct flight_queue q = { 0 };

	ck_assert_int_eq(flight_queue_init(&q, 2), 0);
	ck_assert_int_eq(flights_reserve(&t, &q, 5000), 0);
	for (uint64_t id = 1; id <= 5000; id++)
		flights_assign(&t, &q, J(id), id, &q, 1, true);
	ck_assert_uint_ge(t.cap_rec, 5000);
	/* Nothing is given back while anything is in flight. */
	flights_trim(&t);
	flight_queue_trim(&q);
	ck_assert_uint_ge(t.cap_rec, 5000);
	ck_assert_uint_ge(q.ring_cap, 4998);
	for (uint64_t id = 1; id <= 5000; id++)
		flights_done(&t, &q, flights_find(&t, id));
	flights_trim(&t);
	flight_queue_trim(&q);
	ck_assert_uint_eq(t.cap_rec, 0);
	ck_assert_uint_eq(t.cap, 0);
	ck_assert_uint_eq(q.ring_cap, 0);
	/* And the next burst grows it again. */
	for (uint64_t id = 5001; id <= 5010; id++)
		assign(&t, &q, id, 2, true);
	ck_assert_uint_eq(q.n_running, 2);
	ck_assert_uint_eq(q.n_waiting, 8);
	ck_assert_uint_eq(id_of(flights_find(&t, 5010)->job), 5010);
	flight_queue_free(&q);
	flight_table_free(&t);
}
END_TEST

START_TEST(test_keep_held)
{
	struct flight_table t = FLIGHT_TABLE_INIT;
	struct flight_queue q = { 0 };

	ck_assert_int_eq(flight_queue_init(&q, 4), 0);
	assign(&t, &q, 1, 10, true);
	for (uint64_t id = 2; id <= 4; id++)
		assign(&t, &q, id, 10, false); /* held: may not start */
	ck_assert_uint_eq(q.n_running, 1);
	ck_assert_uint_eq(q.n_waiting, 3);
	ck_assert_ptr_null(flights_promote(&t, &q, 20, 3));
	ck_assert_uint_eq(flights_promote(&t, &q, 20, 2)->id, 2);
	ck_assert_uint_eq(flights_promote(&t, &q, 20, 0)->id, 3);
	ck_assert_uint_eq(flights_promote(&t, &q, 20, 0)->id, 4);
	ck_assert_ptr_null(flights_promote(&t, &q, 20, 0));
	flight_queue_free(&q);
	flight_table_free(&t);
}
END_TEST

/*
 * Two workers' queues in one table, random assign / done / promote / collect, checked
 * against a model: per queue, a list of running ids and a FIFO of waiting ids.
 */
START_TEST(test_random_against_model)
{
	struct flight_table t = FLIGHT_TABLE_INIT;
	struct flight_queue q[2] = { { 0 } };
	uint64_t run[2][JOBS], wait[2][JOBS], next_id = 1;
	unsigned n_run[2] = { 0 }, n_wait[2] = { 0 }, threads[2] = { 3, 1 };
	uint32_t seed = 0xC0FFEEu + (uint32_t)_i;
	struct job *jobs[JOBS];
	uint8_t flags[JOBS];

	for (int k = 0; k < 2; k++)
		ck_assert_int_eq(flight_queue_init(&q[k], threads[k]), 0);
	for (int step = 0; step < 50000; step++) {
		int k = (int)(xorshift32(&seed) % 2), op = (int)(xorshift32(&seed) % 100);

		if (op < 45 && n_run[k] + n_wait[k] < JOBS / 2) {
			uint64_t id = next_id++;
			struct flight *f = assign(&t, &q[k], id, (uint64_t)step + 1, true);

			if (n_run[k] < threads[k] && n_wait[k] == 0) {
				ck_assert_int_ge(f->slot, 0);
				run[k][n_run[k]++] = id;
			} else {
				ck_assert_int_lt(f->slot, 0);
				wait[k][n_wait[k]++] = id;
			}
		} else if (op < 80 && n_run[k] + n_wait[k] > 0) {
			/* A DONE: mostly for a running job, now and then a cancelled waiting one. */
			bool waiting = n_wait[k] > 0 && (n_run[k] == 0 || op < 50);
			unsigned i = xorshift32(&seed) % (waiting ? n_wait[k] : n_run[k]);
			uint64_t id = waiting ? wait[k][i] : run[k][i];
			struct flight *f = flights_find(&t, id);

			ck_assert_ptr_nonnull(f);
			ck_assert_ptr_eq(f->owner, &q[k]);
			ck_assert_int_eq(f->slot < 0, waiting);
			flights_done(&t, &q[k], f);
			ck_assert_ptr_null(flights_find(&t, id));
			if (waiting) {
				memmove(&wait[k][i], &wait[k][i + 1],
					(n_wait[k] - i - 1) * sizeof(uint64_t));
				n_wait[k]--;
			} else {
				run[k][i] = run[k][--n_run[k]];
			}
		} else if (op < 97) {
			struct flight *f;

			while ((f = flights_promote(&t, &q[k], (uint64_t)step + 1, 0))) {
				ck_assert(n_wait[k] > 0 && n_run[k] < threads[k]);
				ck_assert_uint_eq(f->id, wait[k][0]); /* strictly in order */
				run[k][n_run[k]++] = wait[k][0];
				memmove(&wait[k][0], &wait[k][1], (n_wait[k] - 1) * sizeof(uint64_t));
				n_wait[k]--;
			}
			ck_assert(n_wait[k] == 0 || n_run[k] == threads[k]);
		} else {
			size_t n = flights_collect(&t, &q[k], jobs, flags, 1);

			ck_assert_uint_eq(n, n_run[k] + n_wait[k]);
			for (unsigned i = 0; i < n_wait[k]; i++) /* the FIFO last, in order */
				ck_assert_uint_eq(id_of(jobs[n_run[k] + i]), wait[k][i]);
			for (size_t i = 0; i < n; i++)
				ck_assert_uint_eq(flags[i], i < n_run[k] ? 1 : 0);
			n_run[k] = n_wait[k] = 0;
		}
		ck_assert_uint_eq(q[k].n_running, n_run[k]);
		ck_assert_uint_eq(q[k].n_waiting, n_wait[k]);
		ck_assert_uint_eq(t.n, n_run[0] + n_wait[0] + n_run[1] + n_wait[1]);
		ck_assert_uint_eq(t.n_used, t.n);
	}
	for (int k = 0; k < 2; k++)
		flight_queue_free(&q[k]);
	flight_table_free(&t);
}
END_TEST

static Suite *flights_suite(void)
{
	Suite *s = suite_create("flights");
	TCase *tc = tcase_create("flights");

	tcase_add_test(tc, test_order_and_threads);
	tcase_add_test(tc, test_keep_held);
	tcase_add_test(tc, test_trim_after_a_burst);
	tcase_add_loop_test(tc, test_random_against_model, 0, 3);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(flights_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
