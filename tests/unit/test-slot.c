/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the worker slot state machine (daemon/slot.c, table in master-int.h), without
 * processes: a real sd-event loop that never runs, a pool and a slot made by hand. Checks the
 * transition table entry by entry against the documented one, what each state arms (the
 * state timer, the job deadline), how reasons for ending weigh against each other, and when a
 * running worker counts as outdated.
 */
#include <check.h>
#include <stdlib.h>

#include "daemon/master-int.h"

#define MS USEC_PER_MSEC

static sd_event *event;
static struct master *m;
static struct pool *p;
static struct worker *w;

static void setup(void)
{
	ck_assert_int_ge(sd_event_new(&event), 0);
	m = calloc(1, sizeof(*m));
	p = calloc(1, sizeof(*p));
	w = calloc(1, sizeof(*w));
	ck_assert(m && p && w);
	m->event = event;
	p->m = m;
	p->cfg.kill_grace = 200 * MS;
	p->cfg.threads = 2;
	p->cfg.memory_max = UINT64_MAX;
	w->m = m;
	w->pool = p;
	w->fd = -1;
	w->deadline_at = USEC_INFINITY;
}

static void teardown(void)
{
	sd_event_source_disable_unref(w->timer);
	sd_event_source_disable_unref(w->deadline);
	free(w);
	free(p);
	free(m);
	sd_event_unref(event);
}

static int never(sd_event_source *s, uint64_t usec, void *userdata)
{
	return 0; /* the loop never runs here */
}

/* The state timer: armed (and when), or not. */
static bool timer_at(sd_event_source *s, usec_t *ret)
{
	int enabled = SD_EVENT_OFF;

	if (!s || sd_event_source_get_enabled(s, &enabled) < 0 || enabled == SD_EVENT_OFF)
		return false;
	ck_assert_int_ge(sd_event_source_get_time(s, ret), 0);
	return true;
}

/* The table of master-int.h, written out again: every pair is checked against it. */
START_TEST(test_transition_table)
{
	static const struct {
		enum worker_state from, to;
	} allowed[] = {
		{ W_EMPTY, W_STARTING },       { W_EMPTY, W_READY }, /* a spare took it over */
		{ W_STARTING, W_READY },       { W_STARTING, W_KILLED },
		{ W_STARTING, W_EMPTY },       { W_READY, W_DRAINING },
		{ W_READY, W_STOPPING },       { W_READY, W_KILLED },
		{ W_READY, W_EMPTY },	       { W_DRAINING, W_READY },
		{ W_DRAINING, W_KILLED },      { W_DRAINING, W_EMPTY },
		{ W_STOPPING, W_DRAINING },    { W_STOPPING, W_TERMINATING },
		{ W_STOPPING, W_KILLED },      { W_STOPPING, W_EMPTY },
		{ W_TERMINATING, W_DRAINING }, { W_TERMINATING, W_KILLED },
		{ W_TERMINATING, W_EMPTY },    { W_KILLED, W_EMPTY },
	};
	unsigned n = 0;

	for (int from = 0; from < _W_STATE_MAX; from++)
		for (int to = 0; to < _W_STATE_MAX; to++) {
			bool want = false;

			for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
				want |= allowed[i].from == (enum worker_state)from &&
					allowed[i].to == (enum worker_state)to;
			ck_assert_msg(slot_transition_allowed(from, to) == want, "%d -> %d", from,
				      to);
			n += want;
		}
	ck_assert_uint_eq(n, sizeof(allowed) / sizeof(allowed[0]));
	/* Nothing goes back to a state without leaving it, and out of range is refused. */
	for (int s = 0; s < _W_STATE_MAX; s++)
		ck_assert(!slot_transition_allowed(s, s));
	ck_assert(!slot_transition_allowed(_W_STATE_MAX, W_EMPTY));
	ck_assert(!slot_transition_allowed(W_EMPTY, _W_STATE_MAX));
}
END_TEST

/* A life through every state: each arms what belongs to it and disarms the rest. */
START_TEST(test_timers_per_state)
{
	usec_t at, before;

	w->spawned_at = now_usec();
	slot_set_state(w, W_STARTING);
	ck_assert(timer_at(w->timer, &at));
	ck_assert_uint_eq(at, w->spawned_at + MASTER_HELLO_TIMEOUT);

	slot_set_state(w, W_READY);
	ck_assert(!timer_at(w->timer, &at));
	ck_assert_uint_ne(w->ready_at, 0);

	/* A job deadline, as inflight_start() arms it: it survives READY <-> DRAINING. */
	ck_assert_int_ge(master_arm_timer(m, &w->deadline, now_usec() + 5 * USEC_PER_SEC,
					  never, w),
			 0);
	before = now_usec();
	slot_set_state(w, W_DRAINING);
	ck_assert(timer_at(w->timer, &at));
	ck_assert_uint_ge(at, before + p->cfg.kill_grace);
	ck_assert_uint_le(at, now_usec() + p->cfg.kill_grace);
	ck_assert(timer_at(w->deadline, &at));

	slot_set_state(w, W_READY);
	ck_assert(!timer_at(w->timer, &at));
	ck_assert(timer_at(w->deadline, &at));

	w->stop_grace = 3 * USEC_PER_SEC;
	before = now_usec();
	slot_set_state(w, W_STOPPING);
	ck_assert(timer_at(w->timer, &at));
	ck_assert_uint_ge(at, before + w->stop_grace);

	before = now_usec();
	slot_set_state(w, W_TERMINATING);
	ck_assert(timer_at(w->timer, &at));
	ck_assert_uint_ge(at, before + TERM_GRACE);
	ck_assert_uint_le(at, now_usec() + TERM_GRACE);

	slot_set_state(w, W_KILLED);
	ck_assert(!timer_at(w->timer, &at));
	ck_assert(!timer_at(w->deadline, &at));

	slot_set_state(w, W_EMPTY);
	ck_assert(!timer_at(w->timer, &at));
	ck_assert(!timer_at(w->deadline, &at));
	ck_assert_int_eq(w->state, W_EMPTY);
}
END_TEST

/* ready_at is the first HELLO of a process; DRAINING -> READY does not move it. */
START_TEST(test_ready_at_once)
{
	usec_t first;

	w->spawned_at = now_usec();
	slot_set_state(w, W_STARTING);
	ck_assert_uint_eq(w->ready_at, 0);
	slot_set_state(w, W_READY);
	first = w->ready_at;
	ck_assert_uint_gt(first, 0);
	slot_set_state(w, W_DRAINING);
	slot_set_state(w, W_READY);
	ck_assert_uint_eq(w->ready_at, first);
}
END_TEST

/* Reasons for ending weigh: an injection over a stop over a timeout over a broken frame. */
START_TEST(test_end_reasons_weigh)
{
	static const enum slot_end order[] = { END_BROKEN, END_TIMEOUT, END_STOP, END_INJECT };

	for (size_t i = 0; i < 4; i++)
		for (size_t k = 0; k < 4; k++) {
			w->end = END_NONE;
			slot_set_end(w, order[i]);
			slot_set_end(w, order[k]);
			ck_assert_int_eq(w->end, order[i > k ? i : k]);
		}
}
END_TEST

/* A running worker is outdated once the pool's threads or memory_max differ from its own. */
START_TEST(test_outdated)
{
	w->q.threads = 2;
	w->memory_max = UINT64_MAX;
	ck_assert(!slot_outdated(w)); /* no process */
	w->pid = 12345;
	ck_assert(!slot_outdated(w));
	p->cfg.threads = 4;
	ck_assert(slot_outdated(w));
	p->cfg.threads = 2;
	p->cfg.memory_max = 64u << 20;
	ck_assert(slot_outdated(w));
	p->cfg.memory_max = UINT64_MAX;
	ck_assert(!slot_outdated(w));
	w->pid = 0;
}
END_TEST

static Suite *slot_suite(void)
{
	Suite *s = suite_create("slot");
	TCase *tc = tcase_create("state");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_transition_table);
	tcase_add_test(tc, test_timers_per_state);
	tcase_add_test(tc, test_ready_at_once);
	tcase_add_test(tc, test_end_reasons_weigh);
	tcase_add_test(tc, test_outdated);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(slot_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
