/* SPDX-License-Identifier: MIT */
/*
 * The in-memory job store's groups (see store-memory.h): a config's groups stay for good;
 * submitted ones (variants, BASE@N) are found again by a hash of their definition, so the same
 * submission joins the group it made, and are freed with their last forgotten job, their slot
 * reused. Spec ids are a serial never given twice.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store-memory.h"

void mem_group_config_done(struct group_config *g)
{
	free(g->run);
	free(g->args);
	free(g->inputs);
	free(g->spool);
	free(g->output);
	free(g->environment);
	free(g->working_directory);
	if (g->input_paths)
		for (unsigned i = 0; i < g->n_inputs; i++)
			free(g->input_paths[i]);
	free(g->input_paths);
}

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

/* *dst = *src with every string copied (dst's own strings are not freed). */
int mem_group_config_copy(struct group_config *dst, const struct group_config *src)
{
	*dst = *src;
	dst->run = dup_or_empty(src->run);
	dst->args = dup_or_empty(src->args);
	dst->inputs = dup_or_empty(src->inputs);
	dst->spool = dup_or_empty(src->spool);
	dst->output = dup_or_empty(src->output);
	dst->environment = dup_or_empty(src->environment);
	dst->working_directory = dup_or_empty(src->working_directory);
	dst->input_paths = NULL;
	if (!src->input_paths)
		dst->n_inputs = 0;
	if (dst->n_inputs > 0) {
		dst->input_paths = calloc(dst->n_inputs, sizeof(char *));
		for (unsigned i = 0; dst->input_paths && i < dst->n_inputs; i++) {
			dst->input_paths[i] = strdup(src->input_paths[i]);
			if (!dst->input_paths[i]) {
				dst->n_inputs = i; /* what mem_group_config_done frees */
				break;
			}
		}
	}
	if (!dst->run || !dst->args || !dst->inputs || !dst->spool || !dst->output ||
	    !dst->environment || !dst->working_directory ||
	    (src->input_paths && src->n_inputs > 0 &&
	     (!dst->input_paths || dst->n_inputs != src->n_inputs))) {
		mem_group_config_done(dst);
		return -ENOMEM;
	}
	return 0;
}

/* A new spec id: never 0 or UINT32_MAX (not ids on the wire), never one given before. */
static uint32_t next_spec_id(struct mem *l)
{
	if (++l->spec_serial == UINT32_MAX)
		l->spec_serial = 1; /* after 4e9 groups: the first ones are long gone */
	return l->spec_serial;
}

static int add_group(struct mem *l, const struct group_config *g, bool adhoc,
		     unsigned *ret_index)
{
	struct mem_group *lg;
	struct job_queue *q;
	unsigned index;
	uint8_t flags;
	int r;

	if (g->pool >= l->n_pools)
		return -EINVAL;
	if (l->n_free_groups == 0) {
		struct mem_group *gs = realloc(l->groups, (l->n_groups + 1) * sizeof(*gs));
		unsigned *fs;

		if (!gs)
			return -ENOMEM;
		l->groups = gs;
		/* Room to give the slot back later, so that freeing never fails. */
		fs = realloc(l->free_groups, (l->n_groups + 1) * sizeof(*fs));
		if (!fs)
			return -ENOMEM;
		l->free_groups = fs;
		l->groups[l->n_groups] = (struct mem_group){ .freed = true };
		l->free_groups[l->n_free_groups++] = l->n_groups++;
	}
	r = mem_grow_jobs(l, g->count);
	if (r < 0)
		return r;
	index = l->free_groups[l->n_free_groups - 1];
	lg = &l->groups[index];
	*lg = (struct mem_group){ .adhoc = adhoc };
	r = mem_group_config_copy(&lg->cfg, g);
	if (r < 0) {
		lg->freed = true;
		return r;
	}
	l->n_free_groups--;
	lg->spec_id = next_spec_id(l);
	q = &l->queues[g->pool].ready;
	for (unsigned i = 1; i <= g->count; i++) {
		struct job *j = mem_job_slot(l, ++l->n_jobs);

		flags = (i <= lg->cfg.n_inputs ? JOB_HAS_INPUT : 0) | (adhoc ? JOB_ADHOC : 0);
		*j = (struct job){ .id = l->n_jobs, .group = index, .instance = i,
				   .state = JOB_QUEUED, .flags = flags };
		if (q->tail)
			q->tail->next = j;
		else
			q->head = j;
		q->tail = j;
		q->n++;
	}
	lg->counts.total = g->count;
	lg->counts.by_state[JOB_QUEUED] = g->count;
	lg->kept = g->count;
	l->stats.by_state[JOB_QUEUED] += g->count;
	if (ret_index)
		*ret_index = index;
	return 0;
}

int mem_add_group(struct store *st, const struct group_config *g, unsigned *ret_index)
{
	struct mem *l = MEM(st);

	return add_group(l, g, false, ret_index);
}

/* FNV-1a over what makes two submitted variants the same group. */
static uint32_t def_hash(const struct group_config *g, const char *base)
{
	const char *strs[] = { base, g->run, g->args, g->output ? g->output : "" };
	uint64_t nums[] = { g->pool, g->timeout, g->max_attempts, g->expect, g->kind };
	const char *more[] = { g->environment ? g->environment : "",
			       g->working_directory ? g->working_directory : "" };
	uint64_t more_nums[] = { (uint64_t)(int64_t)g->nice, g->retry_delay_min,
				 g->retry_delay_max };
	struct group_config d;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		for (const char *p = strs[i];; p++) {
			h = (h ^ (uint8_t)*p) * 16777619u;
			if (!*p)
				break;
		}
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		for (unsigned b = 0; b < 8; b++)
			h = (h ^ (uint8_t)(nums[i] >> (8 * b))) * 16777619u;
	/* Only when set: the hashes of the variants stores kept before they existed stay. */
	config_group_exec_defaults(&d);
	if (config_group_exec_equal(g, &d))
		return h ? h : 1;
	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
		for (const char *p = more[i];; p++) {
			h = (h ^ (uint8_t)*p) * 16777619u;
			if (!*p)
				break;
		}
	for (size_t i = 0; i < sizeof(more_nums) / sizeof(more_nums[0]); i++)
		for (unsigned b = 0; b < 8; b++)
			h = (h ^ (uint8_t)(more_nums[i] >> (8 * b))) * 16777619u;
	for (size_t i = 0; i < EXIT_SET_BYTES; i++)
		h = (h ^ g->success_exit_status[i]) * 16777619u;
	return h ? h : 1;
}

static bool same_variant(const struct mem_group *lg, const struct group_config *g,
			 const char *base)
{
	const struct group_config *c = &lg->cfg;
	size_t n = strlen(base);

	return !lg->freed && lg->adhoc && strncmp(c->name, base, n) == 0 && c->name[n] == '@' &&
	       c->pool == g->pool && strcmp(c->run, g->run) == 0 &&
	       strcmp(c->args, g->args) == 0 && strcmp(c->output, g->output ? g->output : "") == 0 &&
	       c->timeout == g->timeout && c->max_attempts == g->max_attempts &&
	       c->expect == g->expect && c->kind == g->kind && config_group_exec_equal(c, g);
}

int mem_variant_group(struct store *st, const struct group_config *g, const char *base,
		      unsigned *ret_index, bool *ret_made)
{
	struct mem *l = MEM(st);
	unsigned last = l->last_variant;
	struct idmap_entry *e;
	struct group_config gc;
	unsigned index;
	uint32_t h;
	int r;

	*ret_made = false;
	/* A client submitting the same kind of job again and again: no hash for it (its
	 * bytes one by one were 2 % of the master at 16 x 16 one-job submits). */
	if (last && last - 1 < l->n_groups && same_variant(&l->groups[last - 1], g, base)) {
		*ret_index = last - 1;
		return 0;
	}
	h = def_hash(g, base);
	e = idmap_find(&l->variants, h);
	if (e && same_variant(&l->groups[e->value - 1], g, base)) {
		*ret_index = (unsigned)(e->value - 1);
		l->last_variant = (unsigned)e->value;
		return 0;
	}
	gc = *g;
	gc.count = 0; /* the jobs come after, like those of an existing variant */
	gc.n_inputs = 0;
	gc.input_paths = NULL;
	gc.inputs = gc.spool = NULL;
	snprintf(gc.name, sizeof(gc.name), "%.*s@%" PRIu64, 24, base, l->variants_made + 1);
	r = add_group(l, &gc, true, &index);
	if (r < 0)
		return r;
	l->variants_made++;
	l->groups[index].def_hash = h;
	/* A hash another definition holds: this one is simply not found again (rare). */
	if (!e)
		(void)idmap_add(&l->variants, h, (uint64_t)index + 1);
	*ret_index = index;
	*ret_made = true;
	l->last_variant = index + 1;
	return 0;
}

int mem_add_variant(struct store *st, const struct group_config *g, const char *base,
		       unsigned count, char *const *inputs, size_t n_inputs, unsigned *ret_group,
		       uint64_t *ret_first)
{
	struct mem *l = MEM(st);
	unsigned index;
	bool made;
	int r = mem_variant_group(st, g, base, &index, &made);

	if (r < 0)
		return r;
	if (n_inputs > 0)
		r = mem_add_input_jobs(&l->base, index, inputs, n_inputs, ret_first);
	else
		r = mem_add_jobs(&l->base, index, count, ret_first);
	if (r < 0) {
		if (made)
			mem_group_release(l, index);
		return r;
	}
	if (ret_group)
		*ret_group = index;
	return 0;
}

/* A submitted group none of whose jobs is kept any more: its slot is free for the next one. */
void mem_group_release(struct mem *l, unsigned index)
{
	struct mem_group *lg = &l->groups[index];
	struct idmap_entry *e = idmap_find(&l->variants, lg->def_hash);

	if (e && e->value == (uint64_t)index + 1)
		idmap_del(&l->variants, lg->def_hash);
	if (l->last_variant == index + 1)
		l->last_variant = 0;
	mem_group_config_done(&lg->cfg);
	*lg = (struct mem_group){ .freed = true };
	l->free_groups[l->n_free_groups++] = index;
}

unsigned mem_n_groups(const struct store *st)
{
	const struct mem *l = CMEM(st);

	return l->n_groups;
}

const struct group_config *mem_group(const struct store *st, unsigned group)
{
	const struct mem *l = CMEM(st);

	return &l->groups[group].cfg;
}

int mem_find_group(const struct store *st, const char *name)
{
	const struct mem *l = CMEM(st);

	for (unsigned g = 0; g < l->n_groups; g++)
		if (!l->groups[g].freed && strcmp(l->groups[g].cfg.name, name) == 0)
			return (int)g;
	return -ENOENT;
}

int mem_rename_group(struct store *st, unsigned group, const char *name)
{
	struct mem *l = MEM(st);

	if (strlen(name) > CONFIG_NAME_MAX || mem_find_group(st, name) >= 0)
		return -EINVAL;
	snprintf(l->groups[group].cfg.name, sizeof(l->groups[group].cfg.name), "%s", name);
	return 0;
}

bool mem_group_exists(const struct store *st, unsigned group)
{
	const struct mem *l = CMEM(st);

	return group < l->n_groups && !l->groups[group].freed;
}

uint32_t mem_group_spec_id(const struct store *st, unsigned group)
{
	const struct mem *l = CMEM(st);

	return l->groups[group].spec_id;
}

unsigned mem_n_live_groups(const struct store *st)
{
	const struct mem *l = CMEM(st);

	return l->n_groups - l->n_free_groups;
}

void mem_update_group(struct store *st, unsigned group, const struct group_config *g)
{
	struct mem *l = MEM(st);
	struct group_config *cur = &l->groups[group].cfg;

	cur->timeout = g->timeout;
	cur->max_attempts = g->max_attempts;
	cur->expect = g->expect;
	cur->count = g->count;
}
