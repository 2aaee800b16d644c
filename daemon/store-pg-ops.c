/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL store's table of operations (store.h; the working set is store-pg-work.c's):
 * adds buffered for the table, claimed jobs handed out, transitions marked and written at
 * the next flush, fenced on each job's lease.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/protocol.h"
#include "common/strutil.h"
#include "daemon/store-memory.h"
#include "daemon/store-pg-int.h"

#define S(st) PGS(st)
#define CS(st) CPGS(st)

static int64_t wall_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void pgs_free(struct store *st)
{
	struct pgs *s = S(st);

	if (!s)
		return;
	if (s->q)
		pg_queue_free(s->q);
	for (size_t i = 0; i < s->jobs.cap; i++) {
		struct pjob *p;

		if (!s->jobs.e[i].id)
			continue;
		p = (struct pjob *)(uintptr_t)s->jobs.e[i].value;
		if (p->j.extra) {
			free(p->j.extra->result);
			free(p->j.extra);
		}
		free(p);
	}
	idmap_clear(&s->jobs);
	idmap_clear(&s->gidx);
	for (size_t i = 0; i < s->parked.n; i++) {
		free((char *)s->parked.jobs[i].pool);
		free((char *)s->parked.jobs[i].input);
		free((char *)s->parked.jobs[i].node);
	}
	free(s->parked.jobs);
	for (unsigned i = 0; i < s->n_pools; i++)
		free(s->pools[i]);
	free(s->pools);
	free(s->ready);
	free(s->alone);
	free(s->gids);
	free(s->marked);
	free(s->adds);
	free(s->orphans);
	free(s->node);
	if (s->mem)
		s->m->free(s->mem);
	free(s);
}

static int pgs_set_pools(struct store *st, unsigned n, const char *const *names)
{
	struct pgs *s = S(st);
	struct job_queue *r, *a;
	char **ps;
	int ret = s->m->set_pools(s->mem, n, names);

	if (ret < 0 || n <= s->n_pools)
		return ret;
	r = realloc(s->ready, n * sizeof(*r));
	if (r)
		s->ready = r;
	a = realloc(s->alone, n * sizeof(*a));
	if (a)
		s->alone = a;
	ps = realloc(s->pools, n * sizeof(*ps));
	if (ps)
		s->pools = ps;
	if (!r || !a || !ps)
		return -ENOMEM;
	for (unsigned i = s->n_pools; i < n; i++) {
		s->ready[i] = s->alone[i] = (struct job_queue){ 0 };
		s->pools[i] = strdup(names ? names[i] : "");
		if (!s->pools[i])
			return -ENOMEM;
		s->n_pools = i + 1;
	}
	return 0;
}

/* ---- adds ---- */

static int64_t next_id(struct pgs *s)
{
	return ++s->next_id;
}

/* The row of group index g into the next flush, with a new id (a group made here). */
static int add_group_row(struct pgs *s, unsigned g, bool adhoc)
{
	const struct group_config *gc = s->m->group(s->mem, g);
	int64_t id = next_id(s);
	int r = pgs_map_group(s, g, id);

	if (r >= 0)
		r = pg_queue_add_group(s->q, id, gc, s->pools[gc->pool], adhoc, 0);
	s->dirty = true;
	return r;
}

/* n jobs of group g, added here: ids out; inputs[i] or none. */
static int add_jobs(struct pgs *s, unsigned g, size_t n, char *const *inputs,
		    uint64_t *ret_first)
{
	const struct group_config *gc = s->m->group(s->mem, g);
	const struct group_counts *c = s->m->group_counts(s->mem, g);
	struct group_counts *cw = (struct group_counts *)c;
	int64_t first = s->next_id + 1, now = wall_usec();
	struct pjob **as;
	int r;

	if (g >= s->cap_gids || !s->gids[g] || n == 0 || n > UINT32_MAX)
		return -EINVAL;
	for (size_t i = 0; inputs && i < n; i++) {
		if (!*inputs[i] || strlen(inputs[i]) > BH_INPUT_MAX)
			return -EINVAL;
		if (!str_is_utf8(inputs[i]))
			return -EILSEQ; /* the table's text is UTF-8: refused whole, not mangled */
	}
	if (s->n_adds + n > s->cap_adds) {
		size_t cap = s->cap_adds ? s->cap_adds : 256;

		while (cap < s->n_adds + n)
			cap *= 2;
		as = realloc(s->adds, cap * sizeof(*as));
		if (!as)
			return -ENOMEM;
		s->adds = as;
		s->cap_adds = cap;
	}
	r = pg_queue_add(s->q, s->pools[gc->pool], s->gids[g], first,
			 (int32_t)(c->total + 1), n, (const char *const *)inputs, now);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct pjob *p = calloc(1, sizeof(*p));

		if (p && idmap_add(&s->jobs, (uint64_t)(first + (int64_t)i),
				   (uint64_t)(uintptr_t)p) < 0) {
			free(p);
			p = NULL;
		}
		if (!p) {
			/* Buffered already: the jobs are in the table after the flush; only this
			 * node's view of them until then is missing. */
			log_error("out of memory keeping submitted job %" PRId64 " until written",
				  first + (int64_t)i);
			continue;
		}
		p->j = (struct job){ .id = (uint64_t)(first + (int64_t)i), .group = g,
				     .instance = (uint32_t)(c->total + 1 + i),
				     .state = JOB_QUEUED, .accepted_at = now,
				     .flags = (uint8_t)((inputs ? JOB_HAS_INPUT : 0) |
							(mem_group_of(s->mem, g)->adhoc ? JOB_ADHOC
											: 0)) };
		if (inputs) {
			size_t len = strlen(inputs[i]);

			p->j.extra = malloc(sizeof(*p->j.extra) + len + 1);
			if (p->j.extra) {
				*p->j.extra = (struct job_extra){ .progress = -1 };
				memcpy(p->j.extra->input, inputs[i], len + 1);
			}
		}
		s->n_jobs++;
		s->m->stats(s->mem)->by_state[JOB_QUEUED]++;
		s->adds[s->n_adds++] = p;
	}
	s->next_id += (int64_t)n;
	cw->total += n; /* instances go on from here */
	s->dirty = true;
	*ret_first = (uint64_t)first;
	return 0;
}

static int pgs_add_group(struct store *st, const struct group_config *g, unsigned *ret_index)
{
	struct pgs *s = S(st);
	struct group_config gc = *g;
	const struct group_counts zero = { 0 };
	unsigned index = s->m->n_groups(s->mem);
	uint64_t first;
	int r;

	gc.count = 0;
	r = mem_restore_group(s->mem, index, &gc, false, 0, &zero);
	if (r >= 0)
		r = add_group_row(s, index, false);
	if (r >= 0 && g->count > 0)
		r = add_jobs(s, index, g->count, g->n_inputs ? g->input_paths : NULL, &first);
	if (r >= 0 && ret_index)
		*ret_index = index;
	return r;
}

static int pgs_add_variant(struct store *st, const struct group_config *g, const char *base,
			   unsigned count, char *const *inputs, size_t n_inputs,
			   unsigned *ret_group, uint64_t *ret_first)
{
	struct pgs *s = S(st);
	char name[CONFIG_NAME_MAX + 40];
	unsigned index;
	bool made;
	int r = mem_variant_group(s->mem, g, base, &index, &made);

	if (r < 0)
		return r;
	if (made && (!str_is_utf8(g->run) || !str_is_utf8(g->args) || !str_is_utf8(base))) {
		mem_group_release(MEM(s->mem), index);
		return -EILSEQ; /* its row could not be written */
	}
	if (made) {
		/* Named by its row's id (N of slot S: @N.S, @N in slot 0): unique across the
		 * nodes, and kept over restarts. */
		int64_t id = s->next_id + 1, n = id & ((INT64_C(1) << PG_NODE_ID_BITS) - 1);
		char suffix[40];
		int len;

		if (id >> PG_NODE_ID_BITS)
			len = snprintf(suffix, sizeof(suffix), "@%" PRId64 ".%" PRId64, n,
				       id >> PG_NODE_ID_BITS);
		else
			len = snprintf(suffix, sizeof(suffix), "@%" PRId64, n);
		memset(name, 0, sizeof(name));
		strncpy(name, base, (size_t)(CONFIG_NAME_MAX - len));
		memcpy(name + strlen(name), suffix, (size_t)len + 1);
		if (strcmp(s->m->group(s->mem, index)->name, name) != 0)
			r = s->m->rename_group(s->mem, index, name);
		if (r >= 0)
			r = add_group_row(s, index, true);
		if (r < 0)
			return r;
	}
	r = add_jobs(s, index, n_inputs ? n_inputs : count, n_inputs ? inputs : NULL, ret_first);
	if (r >= 0 && ret_group)
		*ret_group = index;
	return r;
}

static int pgs_add_jobs(struct store *st, unsigned group, unsigned count, uint64_t *ret_first)
{
	return add_jobs(S(st), group, count, NULL, ret_first);
}

static int pgs_add_input_jobs(struct store *st, unsigned group, char *const *inputs, size_t n,
			      uint64_t *ret_first)
{
	return add_jobs(S(st), group, n, inputs, ret_first);
}

static void pgs_update_group(struct store *st, unsigned group, const struct group_config *g)
{
	S(st)->m->update_group(S(st)->mem, group, g);
}

static int pgs_rename_group(struct store *st, unsigned group, const char *name)
{
	return S(st)->m->rename_group(S(st)->mem, group, name);
}

static const struct submit_key *pgs_find_key(const struct store *st, const char *key)
{
	return CS(st)->m->find_key(CS(st)->mem, key);
}

static int pgs_add_key(struct store *st, const char *key, uint64_t first, uint32_t count,
		       uint32_t request)
{
	return S(st)->m->add_key(S(st)->mem, key, first, count, request);
}

/* ---- claims: the jobs this node claimed ---- */

static uint64_t pgs_queued(const struct store *st, unsigned pool, bool alone)
{
	const struct pgs *s = CS(st);

	return pool >= s->n_pools ? 0 : alone ? s->alone[pool].n : s->ready[pool].n;
}

static struct job *pgs_pop(struct store *st, unsigned pool, bool alone)
{
	struct pgs *s = S(st);

	if (pool >= s->n_pools)
		return NULL;
	return pgs_pq_pop(alone ? &s->alone[pool] : &s->ready[pool]);
}

static void pgs_unpop(struct store *st, struct job *j)
{
	struct pgs *s = S(st);
	unsigned p = s->m->group(s->mem, j->group)->pool;

	pgs_pq_push(j->alone ? &s->alone[p] : &s->ready[p], j, true);
}

static bool pgs_unqueue_op(struct store *st, struct job *j)
{
	return pgs_unqueue(S(st), j);
}

/* ---- transitions: marked, written at the next flush ---- */

static void pgs_set_state(struct store *st, struct job *j, enum job_state s)
{
	pgs_count_state(S(st), j, s);
	pgs_mark(S(st), j);
}

/* Back to the shared queue (any node's to claim), not this node's. */
static void pgs_requeue(struct store *st, struct job *j, bool alone)
{
	j->alone = alone;
	pgs_count_state(S(st), j, JOB_QUEUED);
	pgs_mark(S(st), j);
}

static void pgs_end(struct store *st, struct job *j, enum job_state s, int cause, int detail)
{
	j->cause = (uint8_t)cause;
	j->cause_detail = detail;
	pgs_count_state(S(st), j, s);
	pgs_mark(S(st), j);
}

static void pgs_touch(struct store *st, struct job *j)
{
	pgs_mark(S(st), j);
}

static struct ledger_stats *pgs_stats(struct store *st)
{
	return S(st)->m->stats(S(st)->mem);
}

static void pgs_begin(struct store *st)
{
	S(st)->depth++;
}

static int pgs_commit(struct store *st)
{
	S(st)->depth--;
	return 0;
}

static void to_pg_job(const struct pgs *s, const struct pjob *p, struct pg_job *out)
{
	const struct job *j = &p->j;

	*out = (struct pg_job){
		.id = (int64_t)j->id, .grp = s->gids[j->group], .lease_epoch = p->epoch,
		.accepted_at = j->accepted_at, .started_ms = j->started_ms,
		.ended_ms = j->ended_ms, .instance = (int32_t)j->instance,
		.cause_detail = j->cause_detail, .state = j->state, .cause = j->cause,
		.alone = j->alone, .attempts = j->attempts, .reruns = j->reruns, .runs = j->runs,
		.flags = j->flags & ~JOB_STORE_FLAGS, .host_deaths = j->host_deaths,
		.result = j->extra ? j->extra->result : NULL,
	};
}

/*
 * Sends what changed: the pass's adds and group rows (buffered as they came), and a write of
 * each marked job at the epoch it holds it at. A job still running here is not written (the
 * claim made it RUNNING in the table; its end says the rest). A job that ended or went back
 * to the shared queue leaves the working set: its write is the table's now.
 */
static int pgs_flush(struct store *st)
{
	struct pgs *s = S(st);
	uint64_t serial;
	int r = 0;

	if (s->depth > 0)
		return -EBUSY;
	for (size_t i = 0; i < s->n_marked; i++) {
		struct pjob *p = s->marked[i];
		struct pg_job w;

		p->marked = false;
		if (p->j.state == JOB_RUNNING && !p->lost)
			continue;
		if (!p->lost) {
			to_pg_job(s, p, &w);
			r = pg_queue_write(s->q, &w);
			if (r == -ENOMEM) {
				/* Kept marked for the next flush. */
				memmove(s->marked, s->marked + i, (s->n_marked - i) * sizeof(*s->marked));
				s->n_marked -= i;
				for (size_t k = 0; k < s->n_marked; k++)
					s->marked[k]->marked = true;
				snprintf(s->error, sizeof(s->error), "PostgreSQL store: out of memory");
				return -ENOMEM;
			}
		}
		if (p->j.state != JOB_RUNNING)
			pgs_drop_job(s, p);
	}
	s->n_marked = 0;
	serial = pg_queue_flush(s->q);
	for (size_t i = 0; i < s->n_adds; i++)
		if (s->adds[i]->add_serial == 0)
			s->adds[i]->add_serial = serial;
	s->dirty = false;
	return 0;
}

static size_t pgs_take_orphans(struct store *st, struct job ***ret)
{
	struct pgs *s = S(st);
	size_t n = s->n_orphans;

	*ret = s->orphans;
	s->orphans = NULL;
	s->n_orphans = 0;
	return n;
}

static const char *pgs_last_error(const struct store *st)
{
	return CS(st)->error;
}

static uint64_t pgs_commits(const struct store *st)
{
	return CS(st)->commits;
}

static bool pgs_dirty(const struct store *st)
{
	return CS(st)->dirty || CS(st)->n_marked > 0;
}

static uint16_t pgs_node_index(struct store *st, const char *name)
{
	return S(st)->m->node_index(S(st)->mem, name);
}

static const char *pgs_node_name(const struct store *st, uint16_t index)
{
	return CS(st)->m->node_name(CS(st)->mem, index);
}

/* ---- extras: the job's own (job_extra), as the memory store keeps them ---- */

static const char *pgs_job_input(const struct store *st, const struct job *j)
{
	return CS(st)->m->job_input(CS(st)->mem, j);
}

static int pgs_move_job_input(struct store *st, struct job *j, const char *input)
{
	return S(st)->m->move_job_input(S(st)->mem, j, input);
}

static const char *pgs_job_result(const struct store *st, const struct job *j)
{
	return CS(st)->m->job_result(CS(st)->mem, j);
}

/* Kept as valid UTF-8 (other bytes become '?', as control characters do): the table's text
 * is UTF-8, and a write it refuses would be retried for ever. */
static int pgs_set_result(struct store *st, struct job *j, const char *text, size_t len)
{
	int r = S(st)->m->set_result(S(st)->mem, j, text, len);

	if (r >= 0 && j->extra && j->extra->result)
		str_fix_utf8(j->extra->result);
	return r;
}

static int pgs_job_progress(const struct store *st, const struct job *j)
{
	return CS(st)->m->job_progress(CS(st)->mem, j);
}

static int pgs_set_progress(struct store *st, struct job *j, int permille)
{
	return S(st)->m->set_progress(S(st)->mem, j, permille);
}

static int pgs_add_log(struct store *st, const struct log_line *line)
{
	return S(st)->m->add_log(S(st)->mem, line);
}

static int pgs_read_logs(struct store *st, const struct log_query *q,
			 int (*cb)(void *userdata, const struct log_line *line), void *userdata)
{
	return S(st)->m->read_logs(S(st)->mem, q, cb, userdata);
}

/* ---- views: of the working set (bulkhead's views of every node read the table) ---- */

/* No dense ids here: loops over 1 .. n_jobs() see nothing; the table has the jobs. */
static uint64_t pgs_n_jobs(const struct store *st)
{
	return 0;
}

static struct job *pgs_job(struct store *st, uint64_t id)
{
	struct idmap_entry *e = idmap_find(&S(st)->jobs, id);

	return e ? &((struct pjob *)(uintptr_t)e->value)->j : NULL;
}

static bool pgs_job_forgotten(const struct store *st, uint64_t id)
{
	return false;
}

static unsigned pgs_n_groups(const struct store *st)
{
	return CS(st)->m->n_groups(CS(st)->mem);
}

static unsigned pgs_n_live_groups(const struct store *st)
{
	return CS(st)->m->n_live_groups(CS(st)->mem);
}

static bool pgs_group_exists(const struct store *st, unsigned group)
{
	return CS(st)->m->group_exists(CS(st)->mem, group);
}

static const struct group_config *pgs_group(const struct store *st, unsigned group)
{
	return CS(st)->m->group(CS(st)->mem, group);
}

static int pgs_find_group(const struct store *st, const char *name)
{
	return CS(st)->m->find_group(CS(st)->mem, name);
}

static uint32_t pgs_group_spec_id(const struct store *st, unsigned group)
{
	return CS(st)->m->group_spec_id(CS(st)->mem, group);
}

static const struct group_counts *pgs_group_counts(const struct store *st, unsigned group)
{
	return CS(st)->m->group_counts(CS(st)->mem, group);
}

/* Retention: the table keeps ended jobs (DESIGN §13); this node keeps none. */
static void pgs_set_keep_ended(struct store *st, uint64_t keep)
{
}

static void pgs_pin(struct store *st, bool on)
{
}

static uint64_t pgs_collect(struct store *st)
{
	return 0;
}

static uint64_t pgs_forgotten(const struct store *st)
{
	return 0;
}

const struct store_ops store_pg_ops = {
	.name = "postgresql",
	.free = pgs_free,
	.set_pools = pgs_set_pools,
	.add_group = pgs_add_group,
	.add_variant = pgs_add_variant,
	.add_jobs = pgs_add_jobs,
	.add_input_jobs = pgs_add_input_jobs,
	.update_group = pgs_update_group,
	.rename_group = pgs_rename_group,
	.find_key = pgs_find_key,
	.add_key = pgs_add_key,
	.queued = pgs_queued,
	.pop = pgs_pop,
	.unpop = pgs_unpop,
	.unqueue = pgs_unqueue_op,
	.set_state = pgs_set_state,
	.requeue = pgs_requeue,
	.end = pgs_end,
	.touch = pgs_touch,
	.stats = pgs_stats,
	.begin = pgs_begin,
	.commit = pgs_commit,
	.flush = pgs_flush,
	.take_orphans = pgs_take_orphans,
	.last_error = pgs_last_error,
	.commits = pgs_commits,
	.dirty = pgs_dirty,
	.node_index = pgs_node_index,
	.node_name = pgs_node_name,
	.job_input = pgs_job_input,
	.move_job_input = pgs_move_job_input,
	.job_result = pgs_job_result,
	.set_result = pgs_set_result,
	.job_progress = pgs_job_progress,
	.set_progress = pgs_set_progress,
	.add_log = pgs_add_log,
	.read_logs = pgs_read_logs,
	.n_jobs = pgs_n_jobs,
	.job = pgs_job,
	.job_forgotten = pgs_job_forgotten,
	.n_groups = pgs_n_groups,
	.n_live_groups = pgs_n_live_groups,
	.group_exists = pgs_group_exists,
	.group = pgs_group,
	.find_group = pgs_find_group,
	.group_spec_id = pgs_group_spec_id,
	.group_counts = pgs_group_counts,
	.set_keep_ended = pgs_set_keep_ended,
	.pin = pgs_pin,
	.collect = pgs_collect,
	.forgotten = pgs_forgotten,
};
