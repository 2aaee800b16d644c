/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/idmap.c: the id map the worker's spec table, the master's per-worker
 * spec bookkeeping and the ledger's variant index stand on. A random sequence of adds and
 * deletes is checked against a plain array after every step (backward-shift deletion is
 * where open addressing goes wrong), plus growth, shrinking and the refusals.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/idmap.h"
#include "xorshift.h"

#define IDS 4096u /* ids 1..IDS-1 in the random test: dense enough to collide a lot */

START_TEST(test_add_find_del)
{
	struct idmap m = IDMAP_INIT;

	ck_assert_ptr_null(idmap_find(&m, 7));
	ck_assert_int_eq(idmap_add(&m, 7, 70), 0);
	ck_assert_int_eq(idmap_add(&m, 7, 71), -EINVAL);
	ck_assert_int_eq(idmap_add(&m, 0, 1), -EINVAL);
	ck_assert_ptr_nonnull(idmap_find(&m, 7));
	ck_assert_uint_eq(idmap_find(&m, 7)->value, 70);
	idmap_find(&m, 7)->value++;
	ck_assert_uint_eq(idmap_find(&m, 7)->value, 71);
	ck_assert_ptr_null(idmap_find(&m, 0));
	ck_assert_int_eq(idmap_del(&m, 8), -ENOENT);
	ck_assert_int_eq(idmap_del(&m, 7), 0);
	ck_assert_ptr_null(idmap_find(&m, 7));
	ck_assert_uint_eq(m.n, 0);
	ck_assert_ptr_null(m.e); /* an empty map holds no memory */
	idmap_clear(&m);
}
END_TEST

/*
 * The key of reference slot id in loop _i: ids as they are (0, 1, 2), or 64-bit ids that
 * differ only in their high bits for one low part (3, 4, 5: a job id of the shared queue is
 * a node's slot × 2^40 + n, pg-nodes.h).
 */
static uint64_t key(uint32_t id, int loop)
{
	return loop < 3 ? id : ((uint64_t)(id & 7) << 40) + (id >> 3) + 1;
}

/* Random adds and deletes against a reference array, checked after each step. */
START_TEST(test_random_against_array)
{
	static uint64_t ref[IDS]; /* 0: absent, else value + 1 */
	struct idmap m = IDMAP_INIT;
	uint32_t seed = 0x1234567u + (uint32_t)_i, n = 0;

	for (uint32_t i = 0; i < IDS; i++)
		ref[i] = 0;
	for (int step = 0; step < 60000; step++) {
		uint32_t id = 1 + xorshift32(&seed) % (IDS - 1);
		bool add = xorshift32(&seed) % 3 != 0 || n < 8; /* grows, then churns */

		if (ref[id] == 0 && add) {
			ck_assert_int_eq(idmap_add(&m, key(id, _i), step), 0);
			ref[id] = (uint64_t)step + 1;
			n++;
		} else if (ref[id] != 0 && !add) {
			ck_assert_int_eq(idmap_del(&m, key(id, _i)), 0);
			ref[id] = 0;
			n--;
		}
		ck_assert_uint_eq(m.n, n);
		if (step % 997 == 0) /* a full check now and then: O(IDS) */
			for (uint32_t k = 1; k < IDS; k++) {
				struct idmap_entry *e = idmap_find(&m, key(k, _i));

				if (ref[k] == 0)
					ck_assert_ptr_null(e);
				else
					ck_assert(e && e->value + 1 == ref[k]);
			}
	}
	idmap_clear(&m);
}
END_TEST

/* Far-apart ids: an odd multiplier is a bijection on 32 bits, and never 0 for id >= 1. */
static uint32_t spread(uint32_t id)
{
	return id * 2654435761u;
}

/* Grows past many doublings, then shrinks back as entries go: memory follows the count. */
START_TEST(test_grow_and_shrink)
{
	struct idmap m = IDMAP_INIT;
	uint32_t peak;

	for (uint32_t id = 1; id <= 100000; id++)
		ck_assert_int_eq(idmap_add(&m, spread(id), id), 0);
	peak = m.cap;
	ck_assert_uint_ge(peak, 100000u * 4 / 3);
	for (uint32_t id = 1; id <= 99990; id++)
		ck_assert_int_eq(idmap_del(&m, spread(id)), 0);
	ck_assert_uint_eq(m.n, 10);
	ck_assert_uint_le(m.cap, 128);
	for (uint32_t id = 99991; id <= 100000; id++)
		ck_assert_uint_eq(idmap_find(&m, spread(id))->value, id);
	idmap_clear(&m);
	ck_assert_uint_eq(m.cap, 0);
}
END_TEST

static Suite *idmap_suite(void)
{
	Suite *s = suite_create("idmap");
	TCase *tc = tcase_create("idmap");

	tcase_add_test(tc, test_add_find_del);
	tcase_add_loop_test(tc, test_random_against_array, 0, 6);
	tcase_add_test(tc, test_grow_and_shrink);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(idmap_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
