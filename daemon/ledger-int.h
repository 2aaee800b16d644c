/* SPDX-License-Identifier: MIT */
/*
 * Inside the ledger: struct ledger, shared by ledger.c (the rules) and ledger-store.c (what
 * passes through to the store, and the clock the history is stamped with).
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

struct ledger {
	struct store *st;
	const struct store_ops *ops;
	int64_t (*now)(void *userdata);
	void *now_data;
	uint16_t node; /* ledger_set_node(): stamped on the jobs this master starts */
	struct end_hook end_hooks[END_HOOKS_MAX];
	unsigned n_end_hooks;
};
