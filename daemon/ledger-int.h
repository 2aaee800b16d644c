/* SPDX-License-Identifier: MIT */
/*
 * Inside the ledger: struct ledger, shared by ledger.c (the rules), ledger-store.c (what
 * passes through to the store, and the clock the history is stamped with) and ledger-hold.c
 * (jobs held out of their queue for retry_delay).
 */
#pragma once

#include <stdint.h>

#include "daemon/ledger.h"
#include "daemon/store.h"

#define END_HOOKS_MAX 8

struct end_hook {
	ledger_end_hook_fn fn;
	void *userdata;
};

struct ledger_held {
	struct job *job;
	int64_t due; /* wall clock (l->now), µs */
};

struct ledger {
	struct store *st;
	const struct store_ops *ops;
	int64_t (*now)(void *userdata);
	void *now_data;
	uint16_t node; /* ledger_set_node(): stamped on the jobs this master starts */
	struct end_hook end_hooks[END_HOOKS_MAX];
	unsigned n_end_hooks;
	/* retry_delay: jobs held out of their queue (ledger-hold.c) */
	struct ledger_held *held;
	size_t n_held, cap_held;
	void (*hold_hook)(void *userdata, int64_t due);
	void *hold_data;
};
