/* SPDX-License-Identifier: MIT */
/* The keys of `submit --key`: see submit-keys.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/submit-keys.h"

bool submit_key_valid(const char *key)
{
	size_t n = key ? strlen(key) : 0;

	if (n == 0 || n > SUBMIT_KEY_MAX)
		return false;
	for (const char *p = key; *p; p++)
		if (*p <= ' ' || *p > '~')
			return false;
	return true;
}

static uint64_t hash64(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

uint32_t submit_request_hash(const char *text)
{
	uint64_t h = hash64(text);

	return (uint32_t)(h ^ (h >> 32));
}

static size_t slot_of(const struct submit_keys *k, const char *key)
{
	size_t mask = k->cap - 1, i = (size_t)hash64(key) & mask;

	while (k->e[i].key && strcmp(k->e[i].key, key) != 0)
		i = (i + 1) & mask;
	return i;
}

const struct submit_key *submit_keys_find(const struct submit_keys *k, const char *key)
{
	size_t i;

	if (k->n == 0)
		return NULL;
	i = slot_of(k, key);
	return k->e[i].key ? &k->e[i] : NULL;
}

/* Into a table of cap slots (a power of two, more than n). */
static int rehash(struct submit_keys *k, size_t cap)
{
	struct submit_keys nk = { .e = calloc(cap, sizeof(*nk.e)), .cap = cap };

	if (!nk.e)
		return -ENOMEM;
	for (size_t i = 0; i < k->cap; i++) {
		if (!k->e[i].key)
			continue;
		nk.e[slot_of(&nk, k->e[i].key)] = k->e[i];
		nk.n++;
	}
	free(k->e);
	*k = nk;
	return 0;
}

int submit_keys_add(struct submit_keys *k, const char *key, uint64_t first, uint32_t count,
		    uint32_t request)
{
	size_t i;
	char *copy;

	if (!submit_key_valid(key))
		return -EINVAL;
	if (submit_keys_find(k, key))
		return -EEXIST;
	if ((k->n + 1) * 4 > k->cap * 3 && rehash(k, k->cap ? k->cap * 2 : 16) < 0)
		return -ENOMEM;
	copy = strdup(key);
	if (!copy)
		return -ENOMEM;
	i = slot_of(k, key);
	k->e[i] = (struct submit_key){ copy, first, count, request };
	k->n++;
	return 0;
}

size_t submit_keys_forget(struct submit_keys *k, uint64_t first_kept)
{
	struct submit_keys nk = { 0 };
	size_t kept = 0, cap = 16;

	for (size_t i = 0; i < k->cap; i++)
		kept += k->e[i].key && k->e[i].first >= first_kept;
	if (kept == k->n)
		return 0;
	/* Into a new table: removing from this one would cut probe chains. Out of memory,
	 * nothing is forgotten now; the next pass tries again. */
	while (cap * 3 < kept * 4 + 4)
		cap *= 2;
	nk.e = calloc(cap, sizeof(*nk.e));
	if (!nk.e)
		return 0;
	nk.cap = cap;
	for (size_t i = 0; i < k->cap; i++) {
		if (!k->e[i].key)
			continue;
		if (k->e[i].first < first_kept) {
			free(k->e[i].key);
			continue;
		}
		nk.e[slot_of(&nk, k->e[i].key)] = k->e[i];
		nk.n++;
	}
	free(k->e);
	kept = k->n - nk.n;
	*k = nk;
	return kept;
}

void submit_keys_clear(struct submit_keys *k)
{
	for (size_t i = 0; i < k->cap; i++)
		free(k->e[i].key);
	free(k->e);
	*k = (struct submit_keys){ 0 };
}
