/* SPDX-License-Identifier: MIT */
/*
 * Rebuilding the in-memory store from a durable one (store-sqlite.c), which keeps its working
 * set here: groups at the index they had, jobs at their id in ascending order. A group's and
 * the store's counts are those of the jobs forgotten long ago, which the file kept, and the
 * jobs restored, counted as they come. Called only on an empty store, before any other
 * operation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store-memory.h"

int mem_restore_group(struct store *st, unsigned index, const struct group_config *g, bool adhoc,
		      uint32_t def_hash, const struct group_counts *counts)
{
	struct mem *l = MEM(st);
	struct mem_group *lg;
	int r;

	if (g->pool >= l->n_pools)
		return -EINVAL;
	if (index >= l->n_groups) {
		unsigned n = index + 1;
		struct mem_group *gs = realloc(l->groups, n * sizeof(*gs));
		unsigned *fs;

		if (!gs)
			return -ENOMEM;
		l->groups = gs;
		fs = realloc(l->free_groups, n * sizeof(*fs));
		if (!fs)
			return -ENOMEM;
		l->free_groups = fs;
		for (; l->n_groups < n; l->n_groups++) {
			l->groups[l->n_groups] = (struct mem_group){ .freed = true };
			l->free_groups[l->n_free_groups++] = l->n_groups;
		}
	}
	lg = &l->groups[index];
	if (!lg->freed)
		return -EEXIST;
	r = mem_group_config_copy(&lg->cfg, g);
	if (r < 0)
		return r;
	lg->freed = false;
	lg->adhoc = adhoc;
	lg->def_hash = def_hash;
	lg->counts = *counts;
	lg->kept = 0;
	lg->spec_id = ++l->spec_serial;
	for (unsigned i = 0; i < l->n_free_groups; i++) {
		if (l->free_groups[i] != index)
			continue;
		l->free_groups[i] = l->free_groups[--l->n_free_groups];
		break;
	}
	/* As add_variant: the index finds a group again; a collision only makes a new one. */
	if (adhoc && idmap_add(&l->variants, def_hash, (uint64_t)index + 1) == -ENOMEM)
		return -ENOMEM;
	return 0;
}

void mem_restore_group_gone(struct store *st, unsigned index)
{
	struct mem_group *lg = &MEM(st)->groups[index];

	lg->gone = lg->counts;
}

int mem_restore_forgotten(struct store *st, uint64_t n_forgotten, const struct mem_gone *gone)
{
	struct mem *l = MEM(st);
	int r;

	if (l->n_jobs != 0 || n_forgotten % JOB_CHUNK != 0)
		return -EINVAL;
	r = mem_grow_jobs(l, n_forgotten);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_forgotten / JOB_CHUNK; i++) {
		mem_chunk_free(l->chunks[i]);
		l->chunks[i] = NULL;
		l->chunk_ended[i] = JOB_CHUNK;
	}
	l->first_kept = (size_t)(n_forgotten / JOB_CHUNK);
	l->n_jobs = n_forgotten;
	l->forgotten = n_forgotten;
	l->gone = *gone;
	l->stats.runs = gone->runs;
	memcpy(l->stats.by_state, gone->by_state, sizeof(l->stats.by_state));
	return 0;
}

int mem_restore_job(struct store *st, const struct job *saved, const char *input,
		    const char *result)
{
	struct mem *l = MEM(st);
	struct mem_group *lg;
	struct job *j;
	int r;

	if (saved->id != l->n_jobs + 1 || saved->group >= l->n_groups ||
	    l->groups[saved->group].freed || saved->state >= _JOB_STATE_MAX)
		return -EINVAL;
	lg = &l->groups[saved->group];
	r = mem_grow_jobs(l, 1);
	if (r < 0)
		return r;
	j = mem_job_slot(l, ++l->n_jobs);
	*j = *saved;
	j->next = NULL;
	j->extra = NULL;
	if ((input && *input) || result) {
		size_t len = input ? strlen(input) : 0;

		j->extra = malloc(sizeof(struct job_extra) + len + 1);
		if (!j->extra)
			return -ENOMEM;
		*j->extra = (struct job_extra){ .progress = -1 };
		memcpy(j->extra->input, input ? input : "", len + 1);
		if (result && !(j->extra->result = strdup(result)))
			return -ENOMEM;
	}
	lg->counts.total++;
	lg->counts.by_state[saved->state]++;
	l->stats.by_state[saved->state]++;
	l->stats.runs += saved->runs;
	if (job_state_is_final(saved->state)) {
		l->chunk_ended[(j->id - 1) / JOB_CHUNK]++;
		l->ended_kept++;
	} else if (saved->state == JOB_QUEUED) {
		struct pool_queues *q = &l->queues[lg->cfg.pool];

		mem_queue_put(saved->alone ? &q->alone : &q->ready, j, false);
	}
	lg->kept++;
	return 0;
}

void mem_restore_stats(struct store *st, const struct ledger_stats *s, uint64_t variants_made)
{
	struct mem *l = MEM(st);

	l->stats = *s;
	l->variants_made = variants_made;
}

uint64_t mem_variants_made(const struct store *st)
{
	return CMEM(st)->variants_made;
}

const struct mem_group *mem_group_of(const struct store *st, unsigned group)
{
	return &CMEM(st)->groups[group];
}

uint64_t mem_first_kept_id(const struct store *st)
{
	return (uint64_t)CMEM(st)->first_kept * JOB_CHUNK + 1;
}
