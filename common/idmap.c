/* SPDX-License-Identifier: MIT */
/* The id map (see idmap.h). */
#include <errno.h>
#include <stdlib.h>

#include "common/idmap.h"

#define IDMAP_MIN_CAP 16u

static uint32_t slot_of(uint64_t id, uint32_t cap)
{
	return (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

struct idmap_entry *idmap_find(const struct idmap *m, uint64_t id)
{
	if (id == 0 || m->n == 0)
		return NULL;
	for (uint32_t i = slot_of(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->e[i].id == id)
			return &m->e[i];
		if (m->e[i].id == 0)
			return NULL;
	}
}

static void put(struct idmap_entry *e, uint32_t cap, uint64_t id, uint64_t value)
{
	uint32_t i = slot_of(id, cap);

	while (e[i].id != 0)
		i = (i + 1) & (cap - 1);
	e[i] = (struct idmap_entry){ .id = id, .value = value };
}

static int resize(struct idmap *m, uint32_t cap)
{
	struct idmap_entry *e = calloc(cap, sizeof(*e));

	if (!e)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->cap; i++)
		if (m->e[i].id != 0)
			put(e, cap, m->e[i].id, m->e[i].value);
	free(m->e);
	m->e = e;
	m->cap = cap;
	return 0;
}

int idmap_add(struct idmap *m, uint64_t id, uint64_t value)
{
	int r;

	if (id == 0 || idmap_find(m, id))
		return -EINVAL;
	if (m->n >= IDMAP_MAX)
		return -E2BIG;
	if ((uint64_t)(m->n + 1) * 4 > (uint64_t)m->cap * 3) {
		r = resize(m, m->cap ? m->cap * 2 : IDMAP_MIN_CAP);
		if (r < 0)
			return r;
	}
	put(m->e, m->cap, id, value);
	m->n++;
	return 0;
}

int idmap_del(struct idmap *m, uint64_t id)
{
	struct idmap_entry *s = idmap_find(m, id);
	uint32_t i, j;

	if (!s)
		return -ENOENT;
	i = j = (uint32_t)(s - m->e);
	for (;;) {
		uint32_t home;

		j = (j + 1) & (m->cap - 1);
		if (m->e[j].id == 0)
			break;
		home = slot_of(m->e[j].id, m->cap);
		/* Entry j may move into the hole at i unless its home lies in (i, j]. */
		if (((j - home) & (m->cap - 1)) >= ((j - i) & (m->cap - 1))) {
			m->e[i] = m->e[j];
			i = j;
		}
	}
	m->e[i] = (struct idmap_entry){ 0 };
	m->n--;
	if (m->n == 0)
		idmap_clear(m);
	else if (m->cap > IDMAP_MIN_CAP && (uint64_t)m->n * 8 < m->cap)
		(void)resize(m, m->cap / 2); /* on failure the bigger table stays: still correct */
	return 0;
}

void idmap_clear(struct idmap *m)
{
	free(m->e);
	*m = IDMAP_INIT;
}
