/* SPDX-License-Identifier: MIT */
/*
 * The keys of `submit --key KEY` (DESIGN §12): a key names one accepted submission, the ids
 * it made (first .. first + count - 1) and a hash of what it asked for, so a client that
 * retries after a lost reply gets the same ids, and a key used again for another request is
 * refused. A key is kept while the first of its jobs is (retention forgets both together).
 * Open addressing with linear probing over owned strings; not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/control-proto.h"

#define SUBMIT_KEY_MAX CONTROL_KEY_MAX /* bytes, printable ASCII without spaces */

struct submit_key {
	char *key; /* NULL: an empty slot */
	uint64_t first;
	uint32_t count;
	uint32_t request; /* submit_request_hash() of what the submission asked for */
};

struct submit_keys {
	struct submit_key *e;
	size_t cap; /* 0 or a power of two */
	size_t n;
};

/* Whether key is a valid key (1..SUBMIT_KEY_MAX printable bytes, no spaces). */
bool submit_key_valid(const char *key);
/* FNV-1a over a request's canonical text (what makes two submissions the same). */
uint32_t submit_request_hash(const char *text);
const struct submit_key *submit_keys_find(const struct submit_keys *k, const char *key);
/* Adds a key not present. 0, -EEXIST, -EINVAL (not valid), -ENOMEM. */
int submit_keys_add(struct submit_keys *k, const char *key, uint64_t first, uint32_t count,
		    uint32_t request);
/* Drops the keys whose first job is below first_kept; returns how many. */
size_t submit_keys_forget(struct submit_keys *k, uint64_t first_kept);
void submit_keys_clear(struct submit_keys *k);
