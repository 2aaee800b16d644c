/* SPDX-License-Identifier: MIT */
/*
 * The ledger (see ledger.h): all jobs in one array indexed by id - 1, per-pool FIFO queues
 * threaded through the jobs, and counts per state and per group kept in step by one function,
 * set_state(), which is the only place a job's state changes.
 *
 * A job stays small (it is kept for ever): inputs of `inputs = GLOB` groups are found through
 * the group (job NAME#i has input_paths[i-1]), and only what few jobs have (an input of its
 * own, a result line, progress) lives in a `job_extra` allocated on first use.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/idmap.h"
#include "common/protocol.h"
#include "ledger.h"

#define JOB_CHUNK 4096 /* jobs live in fixed chunks: a job's address never changes */

struct pool_queues {
	struct job_queue ready;
	struct job_queue alone;
};

#define END_HOOKS_MAX 8

struct ledger_group {
	struct group_config cfg; /* own copy: every string and input_paths are owned */
	struct group_counts counts;
	uint64_t kept;    /* its jobs not forgotten yet: a submitted group goes with the last */
	uint32_t spec_id; /* the id workers know its spec by: never reused */
	uint32_t def_hash; /* submitted: hash of its definition (the variants index) */
	bool adhoc;       /* submitted at run time (a variant), not from the config */
	bool freed;       /* a submitted group whose jobs were all forgotten: slot reusable */
};

struct end_hook {
	ledger_end_hook_fn fn;
	void *userdata;
};

struct ledger {
	struct job **chunks; /* NULL: a chunk whose ended jobs were forgotten */
	uint32_t *chunk_ended; /* per chunk: jobs in a final state */
	size_t n_chunks;
	size_t first_kept;   /* chunks below it are forgotten */
	uint64_t n_jobs;
	uint64_t ended_kept; /* jobs in a final state in kept chunks */
	uint64_t keep_ended; /* ledger_collect() keeps at least this many ended jobs */
	uint64_t forgotten;
	unsigned pins;
	struct pool_queues *queues; /* one per pool index */
	unsigned n_pools;
	struct ledger_group *groups;
	unsigned n_groups;          /* slots, freed ones included */
	unsigned *free_groups;      /* freed slots, reused by the next group */
	unsigned n_free_groups;
	uint32_t spec_serial;       /* the last spec id given */
	uint64_t variants_made;     /* names submitted groups: BASE@N */
	struct idmap variants;      /* def_hash -> group index + 1 (submitted groups) */
	struct ledger_stats stats;
	struct end_hook end_hooks[END_HOOKS_MAX];
	unsigned n_end_hooks;
};

int ledger_new(unsigned n_pools, struct ledger **ret)
{
	struct ledger *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return -ENOMEM;
	l->keep_ended = UINT64_MAX;
	r = ledger_set_pools(l, n_pools);
	if (r < 0) {
		free(l);
		return r;
	}
	*ret = l;
	return 0;
}

int ledger_new_from_config(const struct config *c, struct ledger **ret)
{
	struct ledger *l;
	int r = ledger_new(c->n_pools, &l);

	for (unsigned g = 0; r >= 0 && g < c->n_groups; g++)
		r = ledger_add_group(l, &c->groups[g], NULL);
	if (r < 0) {
		ledger_free(l);
		return r;
	}
	*ret = l;
	return 0;
}

int ledger_set_pools(struct ledger *l, unsigned n_pools)
{
	struct pool_queues *q;

	if (n_pools <= l->n_pools)
		return 0;
	q = realloc(l->queues, n_pools * sizeof(*q));
	if (!q)
		return -ENOMEM;
	memset(q + l->n_pools, 0, (n_pools - l->n_pools) * sizeof(*q));
	l->queues = q;
	l->n_pools = n_pools;
	return 0;
}

static struct job *job_slot(const struct ledger *l, uint64_t id)
{
	return &l->chunks[(id - 1) / JOB_CHUNK][(id - 1) % JOB_CHUNK];
}

static int grow_jobs(struct ledger *l, uint64_t n)
{
	size_t need = (size_t)((l->n_jobs + n + JOB_CHUNK - 1) / JOB_CHUNK);

	if (need > l->n_chunks) {
		struct job **c = realloc(l->chunks, need * sizeof(*c));
		uint32_t *e;

		if (!c)
			return -ENOMEM;
		l->chunks = c;
		e = realloc(l->chunk_ended, need * sizeof(*e));
		if (!e)
			return -ENOMEM;
		l->chunk_ended = e;
		for (size_t i = l->n_chunks; i < need; i++)
			e[i] = 0;
		for (; l->n_chunks < need; l->n_chunks++) {
			l->chunks[l->n_chunks] = calloc(JOB_CHUNK, sizeof(struct job));
			if (!l->chunks[l->n_chunks])
				return -ENOMEM;
		}
	}
	return 0;
}

static void group_config_done(struct group_config *g)
{
	free(g->run);
	free(g->args);
	free(g->inputs);
	free(g->spool);
	free(g->output);
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
static int group_config_copy(struct group_config *dst, const struct group_config *src)
{
	*dst = *src;
	dst->run = dup_or_empty(src->run);
	dst->args = dup_or_empty(src->args);
	dst->inputs = dup_or_empty(src->inputs);
	dst->spool = dup_or_empty(src->spool);
	dst->output = dup_or_empty(src->output);
	dst->input_paths = NULL;
	if (!src->input_paths)
		dst->n_inputs = 0;
	if (dst->n_inputs > 0) {
		dst->input_paths = calloc(dst->n_inputs, sizeof(char *));
		for (unsigned i = 0; dst->input_paths && i < dst->n_inputs; i++) {
			dst->input_paths[i] = strdup(src->input_paths[i]);
			if (!dst->input_paths[i]) {
				dst->n_inputs = i; /* what group_config_done frees */
				break;
			}
		}
	}
	if (!dst->run || !dst->args || !dst->inputs || !dst->spool || !dst->output ||
	    (src->input_paths && src->n_inputs > 0 &&
	     (!dst->input_paths || dst->n_inputs != src->n_inputs))) {
		group_config_done(dst);
		return -ENOMEM;
	}
	return 0;
}

/* A new spec id: never 0 or UINT32_MAX (not ids on the wire), never one given before. */
static uint32_t next_spec_id(struct ledger *l)
{
	if (++l->spec_serial == UINT32_MAX)
		l->spec_serial = 1; /* after 4e9 groups: the first ones are long gone */
	return l->spec_serial;
}

static int add_group(struct ledger *l, const struct group_config *g, bool adhoc,
		     unsigned *ret_index)
{
	struct ledger_group *lg;
	struct job_queue *q;
	unsigned index;
	uint8_t flags;
	int r;

	if (g->pool >= l->n_pools)
		return -EINVAL;
	if (l->n_free_groups == 0) {
		struct ledger_group *gs = realloc(l->groups, (l->n_groups + 1) * sizeof(*gs));
		unsigned *fs;

		if (!gs)
			return -ENOMEM;
		l->groups = gs;
		/* Room to give the slot back later, so that freeing never fails. */
		fs = realloc(l->free_groups, (l->n_groups + 1) * sizeof(*fs));
		if (!fs)
			return -ENOMEM;
		l->free_groups = fs;
		l->groups[l->n_groups] = (struct ledger_group){ .freed = true };
		l->free_groups[l->n_free_groups++] = l->n_groups++;
	}
	r = grow_jobs(l, g->count);
	if (r < 0)
		return r;
	index = l->free_groups[l->n_free_groups - 1];
	lg = &l->groups[index];
	*lg = (struct ledger_group){ .adhoc = adhoc };
	r = group_config_copy(&lg->cfg, g);
	if (r < 0) {
		lg->freed = true;
		return r;
	}
	l->n_free_groups--;
	lg->spec_id = next_spec_id(l);
	q = &l->queues[g->pool].ready;
	for (unsigned i = 1; i <= g->count; i++) {
		struct job *j = job_slot(l, ++l->n_jobs);

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

int ledger_add_group(struct ledger *l, const struct group_config *g, unsigned *ret_index)
{
	return add_group(l, g, false, ret_index);
}

/* FNV-1a over what makes two submitted variants the same group. */
static uint32_t def_hash(const struct group_config *g, const char *base)
{
	const char *strs[] = { base, g->run, g->args, g->output ? g->output : "" };
	uint64_t nums[] = { g->pool, g->timeout, g->max_attempts, g->expect, g->kind };
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
	return h ? h : 1;
}

static bool same_variant(const struct ledger_group *lg, const struct group_config *g,
			 const char *base)
{
	const struct group_config *c = &lg->cfg;
	size_t n = strlen(base);

	return !lg->freed && lg->adhoc && strncmp(c->name, base, n) == 0 && c->name[n] == '@' &&
	       c->pool == g->pool && strcmp(c->run, g->run) == 0 &&
	       strcmp(c->args, g->args) == 0 && strcmp(c->output, g->output ? g->output : "") == 0 &&
	       c->timeout == g->timeout && c->max_attempts == g->max_attempts &&
	       c->expect == g->expect && c->kind == g->kind;
}

static void group_release(struct ledger *l, unsigned index);

int ledger_add_variant(struct ledger *l, const struct group_config *g, const char *base,
		       unsigned count, char *const *inputs, size_t n_inputs, unsigned *ret_group,
		       uint64_t *ret_first)
{
	uint32_t h = def_hash(g, base);
	struct idmap_entry *e = idmap_find(&l->variants, h);
	struct group_config gc;
	bool made = false;
	unsigned index;
	int r;

	if (e && same_variant(&l->groups[e->value - 1], g, base)) {
		index = (unsigned)(e->value - 1);
	} else {
		gc = *g;
		gc.count = 0; /* the jobs come below, like those of an existing variant */
		gc.n_inputs = 0;
		gc.input_paths = NULL;
		gc.inputs = gc.spool = NULL;
		snprintf(gc.name, sizeof(gc.name), "%.*s@%" PRIu64, 24, base,
			 l->variants_made + 1);
		r = add_group(l, &gc, true, &index);
		if (r < 0)
			return r;
		made = true;
		l->variants_made++;
		l->groups[index].def_hash = h;
		/* A hash another definition holds: this one is simply not found again (rare). */
		if (!e)
			(void)idmap_add(&l->variants, h, (uint64_t)index + 1);
	}
	if (n_inputs > 0)
		r = ledger_add_input_jobs(l, index, inputs, n_inputs, ret_first);
	else
		r = ledger_add_jobs(l, index, count, ret_first);
	if (r < 0) {
		if (made)
			group_release(l, index);
		return r;
	}
	if (ret_group)
		*ret_group = index;
	return 0;
}

/* A submitted group none of whose jobs is kept any more: its slot is free for the next one. */
static void group_release(struct ledger *l, unsigned index)
{
	struct ledger_group *lg = &l->groups[index];
	struct idmap_entry *e = idmap_find(&l->variants, lg->def_hash);

	if (e && e->value == (uint64_t)index + 1)
		idmap_del(&l->variants, lg->def_hash);
	group_config_done(&lg->cfg);
	*lg = (struct ledger_group){ .freed = true };
	l->free_groups[l->n_free_groups++] = index;
}

unsigned ledger_n_groups(const struct ledger *l)
{
	return l->n_groups;
}

const struct group_config *ledger_group(const struct ledger *l, unsigned group)
{
	return &l->groups[group].cfg;
}

int ledger_find_group(const struct ledger *l, const char *name)
{
	for (unsigned g = 0; g < l->n_groups; g++)
		if (!l->groups[g].freed && strcmp(l->groups[g].cfg.name, name) == 0)
			return (int)g;
	return -ENOENT;
}

bool ledger_group_exists(const struct ledger *l, unsigned group)
{
	return group < l->n_groups && !l->groups[group].freed;
}

uint32_t ledger_group_spec_id(const struct ledger *l, unsigned group)
{
	return l->groups[group].spec_id;
}

unsigned ledger_n_live_groups(const struct ledger *l)
{
	return l->n_groups - l->n_free_groups;
}

void ledger_update_group(struct ledger *l, unsigned group, const struct group_config *g)
{
	struct group_config *cur = &l->groups[group].cfg;

	cur->timeout = g->timeout;
	cur->max_attempts = g->max_attempts;
	cur->expect = g->expect;
}

static void extra_free(struct job_extra *x)
{
	if (!x)
		return;
	free(x->result);
	free(x);
}

void ledger_free(struct ledger *l)
{
	if (!l)
		return;
	for (uint64_t id = (uint64_t)l->first_kept * JOB_CHUNK + 1; id <= l->n_jobs; id++)
		extra_free(job_slot(l, id)->extra);
	for (size_t i = 0; i < l->n_chunks; i++)
		free(l->chunks[i]);
	free(l->chunks);
	free(l->chunk_ended);
	for (unsigned g = 0; g < l->n_groups; g++)
		if (!l->groups[g].freed)
			group_config_done(&l->groups[g].cfg);
	free(l->groups);
	free(l->free_groups);
	idmap_clear(&l->variants);
	free(l->queues);
	free(l);
}

uint64_t ledger_n_jobs(const struct ledger *l)
{
	return l->n_jobs;
}

struct job *ledger_job(struct ledger *l, uint64_t id)
{
	if (id == 0 || id > l->n_jobs || (id - 1) / JOB_CHUNK < l->first_kept)
		return NULL;
	return job_slot(l, id);
}

bool ledger_job_forgotten(const struct ledger *l, uint64_t id)
{
	return id >= 1 && id <= l->n_jobs && (id - 1) / JOB_CHUNK < l->first_kept;
}

void ledger_set_keep_ended(struct ledger *l, uint64_t keep)
{
	l->keep_ended = keep;
}

void ledger_pin(struct ledger *l, bool on)
{
	if (on)
		l->pins++;
	else if (l->pins > 0)
		l->pins--;
}

uint64_t ledger_forgotten(const struct ledger *l)
{
	return l->forgotten;
}

/*
 * Frees the oldest chunks whose jobs have all ended, as long as keep_ended ended jobs stay
 * behind. The last chunk is never freed (jobs are still added to it). Jobs of a freed chunk
 * are gone for ledger_job(); their counts (per group, per state) stay.
 */
uint64_t ledger_collect(struct ledger *l)
{
	uint64_t n = 0;

	while (l->pins == 0 && l->first_kept + 1 < l->n_chunks &&
	       l->chunk_ended[l->first_kept] == JOB_CHUNK &&
	       l->ended_kept >= JOB_CHUNK && l->ended_kept - JOB_CHUNK >= l->keep_ended) {
		struct job *c = l->chunks[l->first_kept];

		for (size_t i = 0; i < JOB_CHUNK; i++) {
			struct ledger_group *lg = &l->groups[c[i].group];

			extra_free(c[i].extra);
			if (--lg->kept == 0 && lg->adhoc)
				group_release(l, c[i].group);
		}
		free(c);
		l->chunks[l->first_kept++] = NULL;
		l->ended_kept -= JOB_CHUNK;
		l->forgotten += JOB_CHUNK;
		n += JOB_CHUNK;
	}
	return n;
}

const struct ledger_stats *ledger_stats(const struct ledger *l)
{
	return &l->stats;
}

const struct group_counts *ledger_group_counts(const struct ledger *l, unsigned group)
{
	return &l->groups[group].counts;
}

uint64_t ledger_unfinished(const struct ledger *l)
{
	return l->stats.by_state[JOB_QUEUED] + l->stats.by_state[JOB_RUNNING];
}

bool ledger_group_ok(const struct ledger *l, unsigned group)
{
	const struct ledger_group *g = &l->groups[group];

	return g->counts.by_state[g->cfg.expect] == g->counts.total;
}

static void set_state(struct ledger *l, struct job *j, enum job_state s)
{
	if (job_state_is_final(s) && !job_state_is_final(j->state)) {
		l->chunk_ended[(j->id - 1) / JOB_CHUNK]++;
		l->ended_kept++;
	}
	l->stats.by_state[j->state]--;
	l->groups[j->group].counts.by_state[j->state]--;
	j->state = (uint8_t)s;
	l->stats.by_state[s]++;
	l->groups[j->group].counts.by_state[s]++;
}

static struct pool_queues *queues_of(struct ledger *l, const struct job *j)
{
	return &l->queues[l->groups[j->group].cfg.pool];
}

static void queue_push(struct job_queue *q, struct job *j, bool front)
{
	j->next = NULL;
	if (!q->head) {
		q->head = q->tail = j;
	} else if (front) {
		j->next = q->head;
		q->head = j;
	} else {
		q->tail->next = j;
		q->tail = j;
	}
	q->n++;
}

static struct job *queue_pop(struct job_queue *q)
{
	struct job *j = q->head;

	if (!j)
		return NULL;
	q->head = j->next;
	if (!q->head)
		q->tail = NULL;
	q->n--;
	j->next = NULL;
	return j;
}

uint64_t ledger_queued(const struct ledger *l, unsigned pool, bool alone)
{
	return alone ? l->queues[pool].alone.n : l->queues[pool].ready.n;
}

struct job *ledger_pop(struct ledger *l, unsigned pool, bool alone)
{
	return queue_pop(alone ? &l->queues[pool].alone : &l->queues[pool].ready);
}

void ledger_unpop(struct ledger *l, struct job *j)
{
	struct pool_queues *q = queues_of(l, j);

	queue_push(j->alone ? &q->alone : &q->ready, j, true);
}

void ledger_assign(struct ledger *l, struct job *j)
{
	set_state(l, j, JOB_RUNNING);
}

void ledger_started(struct ledger *l, struct job *j)
{
	if (j->extra)
		j->extra->progress = -1;
	j->runs++;
	l->stats.runs++;
}

void ledger_start(struct ledger *l, struct job *j)
{
	ledger_assign(l, j);
	ledger_started(l, j);
}

static void end_job(struct ledger *l, struct job *j, enum job_state s, enum job_cause cause,
		    int detail);

static void requeue(struct ledger *l, struct job *j, bool alone)
{
	struct pool_queues *q = queues_of(l, j);

	if (j->flags & JOB_CANCEL_REQUESTED) {
		end_job(l, j, JOB_CANCELLED, CAUSE_CANCELLED, 0);
		return;
	}
	j->alone = alone;
	set_state(l, j, JOB_QUEUED);
	queue_push(alone ? &q->alone : &q->ready, j, false);
}

static void end_job(struct ledger *l, struct job *j, enum job_state s, enum job_cause cause,
		    int detail)
{
	j->cause = (uint8_t)cause;
	j->cause_detail = detail;
	set_state(l, j, s);
	for (unsigned i = 0; i < l->n_end_hooks; i++)
		l->end_hooks[i].fn(l->end_hooks[i].userdata, j);
}

int ledger_add_end_hook(struct ledger *l, ledger_end_hook_fn fn, void *userdata)
{
	if (l->n_end_hooks >= END_HOOKS_MAX)
		return -ENOSPC;
	l->end_hooks[l->n_end_hooks++] = (struct end_hook){ fn, userdata };
	return 0;
}

void ledger_remove_end_hook(struct ledger *l, ledger_end_hook_fn fn, void *userdata)
{
	for (unsigned i = 0; i < l->n_end_hooks; i++) {
		if (l->end_hooks[i].fn != fn || l->end_hooks[i].userdata != userdata)
			continue;
		memmove(&l->end_hooks[i], &l->end_hooks[i + 1],
			(l->n_end_hooks - i - 1) * sizeof(l->end_hooks[0]));
		l->n_end_hooks--;
		return;
	}
}

int ledger_add_jobs(struct ledger *l, unsigned group, unsigned count, uint64_t *ret_first)
{
	struct ledger_group *lg = &l->groups[group];
	struct job_queue *q = &l->queues[lg->cfg.pool].ready;
	int r = grow_jobs(l, count);

	if (r < 0)
		return r;
	*ret_first = l->n_jobs + 1;
	for (unsigned i = 0; i < count; i++) {
		struct job *j = job_slot(l, ++l->n_jobs);

		*j = (struct job){ .id = l->n_jobs, .group = group,
				   .instance = (uint32_t)(lg->counts.total + 1), .state = JOB_QUEUED,
				   .flags = lg->adhoc ? JOB_ADHOC : 0 };
		queue_push(q, j, false);
		lg->kept++;
		lg->counts.total++;
		lg->counts.by_state[JOB_QUEUED]++;
		l->stats.by_state[JOB_QUEUED]++;
	}
	return 0;
}

int ledger_add_input_jobs(struct ledger *l, unsigned group, char *const *inputs, size_t n,
			  uint64_t *ret_first)
{
	struct ledger_group *lg = &l->groups[group];
	struct job_queue *q = &l->queues[lg->cfg.pool].ready;
	struct job_extra **xs;
	int r = 0;

	if (n > UINT32_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(inputs[i]);

		if (len == 0 || len > BH_INPUT_MAX)
			return -EINVAL;
	}
	r = grow_jobs(l, n);
	if (r < 0)
		return r;
	xs = calloc(n ? n : 1, sizeof(*xs));
	if (!xs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(inputs[i]);

		xs[i] = malloc(sizeof(struct job_extra) + len + 1);
		if (!xs[i]) {
			while (i > 0)
				free(xs[--i]);
			free(xs);
			return -ENOMEM;
		}
		*xs[i] = (struct job_extra){ .progress = -1 };
		memcpy(xs[i]->input, inputs[i], len + 1);
	}
	*ret_first = l->n_jobs + 1;
	for (size_t i = 0; i < n; i++) {
		struct job *j = job_slot(l, ++l->n_jobs);

		*j = (struct job){ .id = l->n_jobs,
				   .group = group,
				   .instance = (uint32_t)(lg->counts.total + 1),
				   .state = JOB_QUEUED,
				   .flags = JOB_HAS_INPUT | (lg->adhoc ? JOB_ADHOC : 0),
				   .extra = xs[i] };
		queue_push(q, j, false);
		lg->kept++;
		lg->counts.total++;
		lg->counts.by_state[JOB_QUEUED]++;
		l->stats.by_state[JOB_QUEUED]++;
	}
	free(xs);
	return 0;
}

int ledger_move_job_input(struct ledger *l, struct job *j, const char *input)
{
	size_t len = strlen(input);
	struct job_extra *x;

	if (!(j->flags & JOB_HAS_INPUT) || !job_state_is_final(j->state) || len == 0 ||
	    len > BH_INPUT_MAX)
		return -EINVAL;
	x = realloc(j->extra, sizeof(*x) + len + 1);
	if (!x)
		return -ENOMEM;
	if (!j->extra)
		*x = (struct job_extra){ .progress = -1 };
	memcpy(x->input, input, len + 1);
	j->extra = x;
	return 0;
}

const char *ledger_job_input(const struct ledger *l, const struct job *j)
{
	const struct group_config *g;

	if (!(j->flags & JOB_HAS_INPUT))
		return NULL;
	if (j->extra && j->extra->input[0])
		return j->extra->input;
	g = &l->groups[j->group].cfg;
	if (j->instance >= 1 && j->instance <= g->n_inputs)
		return g->input_paths[j->instance - 1];
	return NULL;
}

const char *ledger_job_result(const struct ledger *l, const struct job *j)
{
	return j->extra ? j->extra->result : NULL;
}

int ledger_job_progress(const struct ledger *l, const struct job *j)
{
	return j->extra && j->state == JOB_RUNNING ? j->extra->progress : -1;
}

static struct job_extra *extra_of(struct job *j)
{
	if (!j->extra) {
		j->extra = malloc(sizeof(struct job_extra) + 1);
		if (!j->extra)
			return NULL;
		*j->extra = (struct job_extra){ .progress = -1 };
		j->extra->input[0] = '\0';
	}
	return j->extra;
}

int ledger_set_result(struct ledger *l, struct job *j, const char *text, size_t len)
{
	struct job_extra *x = extra_of(j);
	char *s;

	if (!x)
		return -ENOMEM;
	if (len > BH_RESULT_MAX)
		len = BH_RESULT_MAX;
	s = malloc(len + 1);
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		s[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	s[len] = '\0';
	free(x->result);
	x->result = s;
	return 0;
}

int ledger_set_progress(struct ledger *l, struct job *j, unsigned permille)
{
	struct job_extra *x = extra_of(j);

	if (!x)
		return -ENOMEM;
	x->progress = (int16_t)(permille > 1000 ? 1000 : permille);
	return 0;
}

static bool queue_remove(struct job_queue *q, struct job *j)
{
	struct job *prev = NULL;

	for (struct job *x = q->head; x; prev = x, x = x->next) {
		if (x != j)
			continue;
		if (prev)
			prev->next = x->next;
		else
			q->head = x->next;
		if (q->tail == x)
			q->tail = prev;
		q->n--;
		x->next = NULL;
		return true;
	}
	return false;
}

int ledger_cancel_queued_job(struct ledger *l, struct job *j, enum job_cause cause)
{
	struct pool_queues *q;

	if (j->state != JOB_QUEUED)
		return -EBUSY;
	q = queues_of(l, j);
	if (!queue_remove(&q->ready, j) && !queue_remove(&q->alone, j))
		return -EBUSY; /* popped, on its way to a worker */
	end_job(l, j, JOB_CANCELLED, cause, 0);
	return 0;
}

void ledger_finish(struct ledger *l, struct job *j, int status)
{
	if (j->state != JOB_RUNNING)
		return;
	if (status == 0) {
		end_job(l, j, JOB_DONE, CAUSE_NONE, 0);
		return;
	}
	if (j->flags & JOB_CANCEL_REQUESTED) {
		end_job(l, j, JOB_CANCELLED, CAUSE_CANCELLED, 0);
		return;
	}
	j->attempts++;
	j->cause = CAUSE_STATUS;
	j->cause_detail = status;
	if (j->attempts >= l->groups[j->group].cfg.max_attempts)
		end_job(l, j, JOB_FAILED, CAUSE_STATUS, status);
	else
		requeue(l, j, false);
}

void ledger_spawn_failed(struct ledger *l, struct job *j, int err)
{
	if (j->state != JOB_RUNNING)
		return;
	if (j->flags & JOB_CANCEL_REQUESTED) {
		end_job(l, j, JOB_CANCELLED, CAUSE_CANCELLED, 0);
		return;
	}
	j->attempts++;
	j->cause = CAUSE_SPAWN;
	j->cause_detail = err;
	if (j->attempts >= l->groups[j->group].cfg.max_attempts)
		end_job(l, j, JOB_FAILED, CAUSE_SPAWN, err);
	else
		requeue(l, j, false);
}

static void blame(struct ledger *l, struct job *j, enum job_cause cause, int detail, bool alone)
{
	if (j->state != JOB_RUNNING)
		return;
	j->attempts++;
	j->cause = (uint8_t)cause;
	j->cause_detail = detail;
	l->stats.culprits++;
	if (j->attempts >= l->groups[j->group].cfg.max_attempts)
		end_job(l, j, cause == CAUSE_TIMEOUT ? JOB_TIMED_OUT : JOB_CRASHED, cause, detail);
	else
		requeue(l, j, alone);
}

void ledger_blame(struct ledger *l, struct job *j, enum job_cause cause, int detail)
{
	blame(l, j, cause, detail, true); /* it took its worker down once: never again others */
}

void ledger_blame_command(struct ledger *l, struct job *j, enum job_cause cause, int detail)
{
	blame(l, j, cause, detail, false);
}

void ledger_request_cancel(struct ledger *l, struct job *j)
{
	if (!job_state_is_final(j->state))
		j->flags |= JOB_CANCEL_REQUESTED;
}

/* Re-runs that are not the job's fault are capped so that every run ends. */
static bool rerun_allowed(struct ledger *l, struct job *j, int signo)
{
	if (j->reruns < JOB_RERUN_MAX)
		return true;
	end_job(l, j, JOB_CRASHED, CAUSE_RERUNS, signo);
	return false;
}

void ledger_bystander(struct ledger *l, struct job *j, bool started)
{
	if (j->state != JOB_RUNNING)
		return;
	/*
	 * A job that had not started lost nothing: re-queued without counting. Only started
	 * ones count towards the cap; both go to the back, behind the jobs that may crash next.
	 * A long job in a pool where others crash often could be hit again and again and reach
	 * the cap through no fault of its own: after BYSTANDER_ALONE_AFTER hits it runs alone,
	 * where no other job can take it down.
	 */
	if (started) {
		if (!rerun_allowed(l, j, 0))
			return;
		j->reruns++;
		l->stats.reruns_bystander++;
	}
	requeue(l, j, started && j->reruns >= BYSTANDER_ALONE_AFTER);
}

void ledger_suspect(struct ledger *l, struct job *j, int signo)
{
	if (j->state != JOB_RUNNING || !rerun_allowed(l, j, signo))
		return;
	j->reruns++;
	l->stats.reruns_suspect++;
	requeue(l, j, true);
}

void ledger_cancel(struct ledger *l, struct job *j, enum job_cause cause)
{
	if (job_state_is_final(j->state))
		return;
	end_job(l, j, JOB_CANCELLED, cause, 0);
}

uint64_t ledger_cancel_queued(struct ledger *l, unsigned pool, enum job_cause cause)
{
	struct pool_queues *q = &l->queues[pool];
	uint64_t n = 0;
	struct job *j;

	while ((j = queue_pop(&q->ready)) || (j = queue_pop(&q->alone))) {
		ledger_cancel(l, j, cause);
		n++;
	}
	return n;
}

static enum job_cause cause_of_crash(const struct death *d, int *ret_detail)
{
	switch (d->crash_kind) {
	case BH_CRASH_EXIT:
		*ret_detail = d->signaled ? 0 : d->status;
		return CAUSE_EXIT;
	case BH_CRASH_OOM:
		*ret_detail = d->crash_signo;
		return CAUSE_MEMORY;
	default:
		*ret_detail = d->crash_signo;
		return CAUSE_SIGNAL;
	}
}

static struct job *crash_culprit(const struct death *d, struct job **jobs, size_t n)
{
	if (!d->crash_frame || d->crash_job == 0)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (jobs[i]->id == d->crash_job)
			return jobs[i];
	return NULL; /* names a job this worker did not hold: no evidence */
}

enum death_verdict ledger_worker_died(struct ledger *l, const struct death *d, struct job **jobs,
				      const uint8_t *flags, size_t n)
{
	struct job *culprit = crash_culprit(d, jobs, n);
	bool timed_out = false;
	int detail;

	if (n == 0)
		return DEATH_IDLE;
	for (size_t i = 0; i < n; i++)
		timed_out |= flags[i] & HELD_TIMED_OUT;

	if (culprit || timed_out) {
		for (size_t i = 0; i < n; i++) {
			if (jobs[i] == culprit) {
				enum job_cause c = cause_of_crash(d, &detail);
				ledger_blame(l, jobs[i], c, detail);
			} else if (flags[i] & HELD_TIMED_OUT) {
				ledger_blame(l, jobs[i], CAUSE_TIMEOUT, 0);
			} else {
				ledger_bystander(l, jobs[i], flags[i] & HELD_STARTED);
			}
		}
		return DEATH_CULPRIT;
	}

	/* No evidence. A job that ran alone is the only one that can have done it. */
	if (d->solo && n == 1 && (flags[0] & HELD_STARTED)) {
		if (d->signaled)
			ledger_blame(l, jobs[0], CAUSE_SIGNAL, d->status);
		else
			ledger_blame(l, jobs[0], CAUSE_EXIT, d->status);
		return DEATH_CULPRIT;
	}
	for (size_t i = 0; i < n; i++) {
		if (flags[i] & HELD_STARTED)
			ledger_suspect(l, jobs[i], d->signaled ? d->status : 0);
		else
			ledger_bystander(l, jobs[i], false);
	}
	return DEATH_SUSPECTS;
}

char *ledger_job_name(const struct ledger *l, const struct job *j, char *buf, size_t size)
{
	snprintf(buf, size, "%s#%u", l->groups[j->group].cfg.name, j->instance);
	return buf;
}

const char *signal_name(int signo, char *buf, size_t size)
{
	const char *abbrev = sigabbrev_np(signo);

	if (abbrev)
		snprintf(buf, size, "SIG%s", abbrev);
	else
		snprintf(buf, size, "SIG%d", signo);
	return buf;
}

char *ledger_cause_string(const struct job *j, char *buf, size_t size)
{
	char sig[16];

	switch ((enum job_cause)j->cause) {
	case CAUSE_NONE:
		snprintf(buf, size, "%s", "");
		break;
	case CAUSE_STATUS:
		snprintf(buf, size, "status %d", j->cause_detail);
		break;
	case CAUSE_SIGNAL:
		snprintf(buf, size, "%s", signal_name(j->cause_detail, sig, sizeof(sig)));
		break;
	case CAUSE_EXIT:
		snprintf(buf, size, "exit(%d)", j->cause_detail);
		break;
	case CAUSE_MEMORY:
		snprintf(buf, size, "%s", "memory");
		break;
	case CAUSE_TIMEOUT:
		snprintf(buf, size, "%s", "timeout");
		break;
	case CAUSE_RERUNS:
		snprintf(buf, size, "%s", "too many re-runs");
		break;
	case CAUSE_POOL_FAILED:
		snprintf(buf, size, "%s", "pool failed");
		break;
	case CAUSE_STOPPED:
		snprintf(buf, size, "%s", "stopped");
		break;
	case CAUSE_POOL_REMOVED:
		snprintf(buf, size, "%s", "pool removed");
		break;
	case CAUSE_CANCELLED:
		snprintf(buf, size, "%s", "cancelled by request");
		break;
	case CAUSE_SPAWN:
		snprintf(buf, size, "spawn failed: %s", strerror(j->cause_detail));
		break;
	}
	return buf;
}
