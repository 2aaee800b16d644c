/* SPDX-License-Identifier: MIT */
/*
 * The in-memory job store (see store.h): all jobs in one array of fixed chunks indexed by
 * id - 1 (a job's address never changes while the store grows), per-pool FIFO queues threaded
 * through the jobs, and counts per state and per group kept in step by one function,
 * set_state(), the only place here where a job's state changes.
 *
 * A job stays small (many are kept): inputs of `inputs = GLOB` groups are found through the
 * group (job NAME#i has input_paths[i-1]), and only what few jobs have (an input of its own,
 * a result line, progress) lives in a `job_extra` allocated on first use. Ended jobs are
 * forgotten a chunk at a time (keep_ended), and a submitted group with its last job.
 *
 * It writes nothing anywhere: begin(), commit() and flush() do nothing, and everything it
 * holds is gone with the process. The SQLite store keeps its working set in one of these
 * (store-memory-restore.c rebuilds it from the file).
 */
#include <errno.h>
#include <sys/mman.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/idmap.h"
#include "common/protocol.h"
#include "daemon/ledger.h"
#include "daemon/store.h"

#include "daemon/store-memory.h"

static int mem_set_pools(struct store *st, unsigned n_pools, const char *const *names)
{
	(void)names;
	struct mem *l = MEM(st);
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

/*
 * A chunk of jobs is a mapping of its own, given back whole when retention forgets it. From
 * malloc, chunks ended up on the heap once glibc had raised its mmap threshold (it does, to
 * the size of any mapped block freed), and stayed in the process after they were forgotten:
 * RssAnon 10 MB instead of 5.5 after 300 000 jobs, measured.
 */
static struct job *chunk_new(void)
{
	void *c = mmap(NULL, JOB_CHUNK * sizeof(struct job), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return c == MAP_FAILED ? NULL : c; /* zero-filled, as calloc */
}

void mem_chunk_free(struct job *c)
{
	if (c)
		munmap(c, JOB_CHUNK * sizeof(struct job));
}

struct job *mem_job_slot(const struct mem *l, uint64_t id)
{
	return &l->chunks[(id - 1) / JOB_CHUNK][(id - 1) % JOB_CHUNK];
}

int mem_grow_jobs(struct mem *l, uint64_t n)
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
			l->chunks[l->n_chunks] = chunk_new();
			if (!l->chunks[l->n_chunks])
				return -ENOMEM;
		}
	}
	return 0;
}

static void extra_free(struct job_extra *x)
{
	if (!x)
		return;
	free(x->result);
	free(x);
}

static uint64_t mem_n_jobs(const struct store *st)
{
	const struct mem *l = CMEM(st);

	return l->n_jobs;
}

static struct job *mem_job(struct store *st, uint64_t id)
{
	struct mem *l = MEM(st);

	if (id == 0 || id > l->n_jobs || (id - 1) / JOB_CHUNK < l->first_kept)
		return NULL;
	return mem_job_slot(l, id);
}

static bool mem_job_forgotten(const struct store *st, uint64_t id)
{
	const struct mem *l = CMEM(st);

	return id >= 1 && id <= l->n_jobs && (id - 1) / JOB_CHUNK < l->first_kept;
}

static void mem_set_keep_ended(struct store *st, uint64_t keep)
{
	struct mem *l = MEM(st);

	l->keep_ended = keep;
}

static void mem_pin(struct store *st, bool on)
{
	struct mem *l = MEM(st);

	if (on)
		l->pins++;
	else if (l->pins > 0)
		l->pins--;
}

static uint64_t mem_forgotten(const struct store *st)
{
	const struct mem *l = CMEM(st);

	return l->forgotten;
}

/*
 * Frees the oldest chunks whose jobs have all ended, as long as keep_ended ended jobs stay
 * behind. The last chunk is never freed (jobs are still added to it). Jobs of a freed chunk
 * are gone for ledger_job(); their counts (per group, per state) stay, and what they counted
 * for is kept apart too (mem_gone, mem_group.gone).
 */
static uint64_t mem_collect(struct store *st)
{
	struct mem *l = MEM(st);
	uint64_t n = 0;

	while (l->pins == 0 && l->first_kept + 1 < l->n_chunks &&
	       l->chunk_ended[l->first_kept] == JOB_CHUNK &&
	       l->ended_kept >= JOB_CHUNK && l->ended_kept - JOB_CHUNK >= l->keep_ended) {
		struct job *c = l->chunks[l->first_kept];

		for (size_t i = 0; i < JOB_CHUNK; i++) {
			struct mem_group *lg = &l->groups[c[i].group];

			lg->gone.total++;
			lg->gone.by_state[c[i].state]++;
			l->gone.by_state[c[i].state]++;
			l->gone.runs += c[i].runs;
			extra_free(c[i].extra);
			if (--lg->kept == 0 && lg->adhoc)
				mem_group_release(l, c[i].group);
		}
		mem_chunk_free(c);
		l->chunks[l->first_kept++] = NULL;
		l->ended_kept -= JOB_CHUNK;
		l->forgotten += JOB_CHUNK;
		n += JOB_CHUNK;
	}
	if (n > 0) {
		submit_keys_forget(&l->keys, (uint64_t)l->first_kept * JOB_CHUNK + 1);
		log_ring_forget(&l->logs, (uint64_t)l->first_kept * JOB_CHUNK + 1);
	}
	return n;
}

static int mem_add_log(struct store *st, const struct log_line *line)
{
	return log_ring_add(&MEM(st)->logs, line);
}

static int mem_read_logs(struct store *st, const struct log_query *q,
			 int (*cb)(void *userdata, const struct log_line *line), void *userdata)
{
	return log_ring_read(&MEM(st)->logs, q, cb, userdata);
}

static uint64_t mem_commits(const struct store *st)
{
	return 0;
}

static bool mem_dirty(const struct store *st)
{
	return false;
}

static const struct submit_key *mem_find_key(const struct store *st, const char *key)
{
	return submit_keys_find(&CMEM(st)->keys, key);
}

static int mem_add_key(struct store *st, const char *key, uint64_t first, uint32_t count,
		       uint32_t request)
{
	return submit_keys_add(&MEM(st)->keys, key, first, count, request);
}

static const struct group_counts *mem_group_counts(const struct store *st, unsigned group)
{
	const struct mem *l = CMEM(st);

	return &l->groups[group].counts;
}

static void set_state(struct mem *l, struct job *j, enum job_state s)
{
	if (job_state_is_final(s) && !job_state_is_final(j->state)) {
		l->chunk_ended[(j->id - 1) / JOB_CHUNK]++;
		l->ended_kept++;
	} else if (!job_state_is_final(s) && job_state_is_final(j->state)) {
		/* Ended, and to run again (a resumed run's ledger_recover()). */
		l->chunk_ended[(j->id - 1) / JOB_CHUNK]--;
		l->ended_kept--;
	}
	l->stats.by_state[j->state]--;
	l->groups[j->group].counts.by_state[j->state]--;
	j->state = (uint8_t)s;
	l->stats.by_state[s]++;
	l->groups[j->group].counts.by_state[s]++;
}

static struct pool_queues *queues_of(struct mem *l, const struct job *j)
{
	return &l->queues[l->groups[j->group].cfg.pool];
}


void mem_queue_put(struct job_queue *q, struct job *j, bool front)
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

struct job *mem_queue_pop(struct job_queue *q)
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

static uint64_t mem_queued(const struct store *st, unsigned pool, bool alone)
{
	const struct mem *l = CMEM(st);

	return alone ? l->queues[pool].alone.n : l->queues[pool].ready.n;
}

static struct job *mem_pop(struct store *st, unsigned pool, bool alone)
{
	struct mem *l = MEM(st);

	return mem_queue_pop(alone ? &l->queues[pool].alone : &l->queues[pool].ready);
}

static void mem_unpop(struct store *st, struct job *j)
{
	struct mem *l = MEM(st);
	struct pool_queues *q = queues_of(l, j);

	mem_queue_put(j->alone ? &q->alone : &q->ready, j, true);
}

int mem_add_jobs(struct store *st, unsigned group, unsigned count, uint64_t *ret_first)
{
	struct mem *l = MEM(st);
	struct mem_group *lg = &l->groups[group];
	struct job_queue *q = &l->queues[lg->cfg.pool].ready;
	int r = mem_grow_jobs(l, count);

	if (r < 0)
		return r;
	*ret_first = l->n_jobs + 1;
	for (unsigned i = 0; i < count; i++) {
		struct job *j = mem_job_slot(l, ++l->n_jobs);

		*j = (struct job){ .id = l->n_jobs, .group = group,
				   .instance = (uint32_t)(lg->counts.total + 1), .state = JOB_QUEUED,
				   .flags = lg->adhoc ? JOB_ADHOC : 0 };
		mem_queue_put(q, j, false);
		lg->kept++;
		lg->counts.total++;
		lg->counts.by_state[JOB_QUEUED]++;
		l->stats.by_state[JOB_QUEUED]++;
	}
	return 0;
}

int mem_add_input_jobs(struct store *st, unsigned group, char *const *inputs, size_t n,
			  uint64_t *ret_first)
{
	struct mem *l = MEM(st);
	struct mem_group *lg = &l->groups[group];
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
	r = mem_grow_jobs(l, n);
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
		struct job *j = mem_job_slot(l, ++l->n_jobs);

		*j = (struct job){ .id = l->n_jobs,
				   .group = group,
				   .instance = (uint32_t)(lg->counts.total + 1),
				   .state = JOB_QUEUED,
				   .flags = JOB_HAS_INPUT | (lg->adhoc ? JOB_ADHOC : 0),
				   .extra = xs[i] };
		mem_queue_put(q, j, false);
		lg->kept++;
		lg->counts.total++;
		lg->counts.by_state[JOB_QUEUED]++;
		l->stats.by_state[JOB_QUEUED]++;
	}
	free(xs);
	return 0;
}

static int mem_move_job_input(struct store *st, struct job *j, const char *input)
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

static const char *mem_job_input(const struct store *st, const struct job *j)
{
	const struct mem *l = CMEM(st);
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

static const char *mem_job_result(const struct store *st, const struct job *j)
{
	return j->extra ? j->extra->result : NULL;
}

static int mem_job_progress(const struct store *st, const struct job *j)
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

static int mem_set_result(struct store *st, struct job *j, const char *text, size_t len)
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

static int mem_set_progress(struct store *st, struct job *j, int permille)
{
	struct job_extra *x = permille < 0 && !j->extra ? NULL : extra_of(j);

	if (permille < 0 && !x)
		return 0; /* none, and none was kept */
	if (!x)
		return -ENOMEM;
	x->progress = (int16_t)permille;
	return 0;
}

bool mem_queue_remove(struct job_queue *q, struct job *j)
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

/* ---- transitions: the ledger decided them ---- */

static void mem_set_state(struct store *st, struct job *j, enum job_state s)
{
	set_state(MEM(st), j, s);
}

static void mem_requeue(struct store *st, struct job *j, bool alone)
{
	struct mem *l = MEM(st);
	struct pool_queues *q = queues_of(l, j);

	j->alone = alone;
	set_state(l, j, JOB_QUEUED);
	mem_queue_put(alone ? &q->alone : &q->ready, j, false);
}

static void mem_end(struct store *st, struct job *j, enum job_state s, int cause, int detail)
{
	j->cause = (uint8_t)cause;
	j->cause_detail = detail;
	set_state(MEM(st), j, s);
}

static bool mem_unqueue(struct store *st, struct job *j)
{
	struct pool_queues *q = queues_of(MEM(st), j);

	return mem_queue_remove(&q->ready, j) || mem_queue_remove(&q->alone, j);
}

static void mem_touch(struct store *st, struct job *j)
{
	/* Nothing to write: the job is its own record. */
}

static struct ledger_stats *mem_stats(struct store *st)
{
	return &MEM(st)->stats;
}

static void mem_begin(struct store *st)
{
}

static int mem_commit(struct store *st)
{
	return 0;
}

static int mem_flush(struct store *st)
{
	return 0; /* nothing is ever written */
}

static const char *mem_last_error(const struct store *st)
{
	return "";
}

static size_t mem_take_orphans(struct store *st, struct job ***ret)
{
	*ret = NULL;
	return 0;
}

uint16_t mem_node_index(struct store *st, const char *name)
{
	struct mem *l = MEM(st);
	char **n;

	for (uint16_t i = 0; i < l->n_nodes; i++)
		if (strcmp(l->nodes[i], name) == 0)
			return (uint16_t)(i + 1);
	if (l->n_nodes == UINT16_MAX - 1)
		return 0;
	n = realloc(l->nodes, (l->n_nodes + 1u) * sizeof(*n));
	if (!n)
		return 0;
	l->nodes = n;
	n[l->n_nodes] = strdup(name);
	if (!n[l->n_nodes])
		return 0;
	return ++l->n_nodes;
}

const char *mem_node_name(const struct store *st, uint16_t index)
{
	const struct mem *l = CMEM(st);

	return index >= 1 && index <= l->n_nodes ? l->nodes[index - 1] : NULL;
}

static void mem_free(struct store *st)
{
	struct mem *l = MEM(st);

	if (!l)
		return;
	for (uint64_t id = (uint64_t)l->first_kept * JOB_CHUNK + 1; id <= l->n_jobs; id++)
		extra_free(mem_job_slot(l, id)->extra);
	for (size_t i = 0; i < l->n_chunks; i++)
		mem_chunk_free(l->chunks[i]);
	free(l->chunks);
	free(l->chunk_ended);
	for (unsigned g = 0; g < l->n_groups; g++)
		if (!l->groups[g].freed)
			mem_group_config_done(&l->groups[g].cfg);
	free(l->groups);
	free(l->free_groups);
	idmap_clear(&l->variants);
	submit_keys_clear(&l->keys);
	log_ring_clear(&l->logs);
	for (uint16_t i = 0; i < l->n_nodes; i++)
		free(l->nodes[i]);
	free(l->nodes);
	free(l->queues);
	free(l);
}

static const struct store_ops memory_ops = {
	.name = "memory",
	.free = mem_free,
	.set_pools = mem_set_pools,
	.add_group = mem_add_group,
	.add_variant = mem_add_variant,
	.add_jobs = mem_add_jobs,
	.add_input_jobs = mem_add_input_jobs,
	.update_group = mem_update_group,
	.queued = mem_queued,
	.pop = mem_pop,
	.unpop = mem_unpop,
	.unqueue = mem_unqueue,
	.set_state = mem_set_state,
	.requeue = mem_requeue,
	.end = mem_end,
	.touch = mem_touch,
	.stats = mem_stats,
	.begin = mem_begin,
	.commit = mem_commit,
	.flush = mem_flush,
	.take_orphans = mem_take_orphans,
	.last_error = mem_last_error,
	.commits = mem_commits,
	.node_index = mem_node_index,
	.node_name = mem_node_name,
	.add_log = mem_add_log,
	.read_logs = mem_read_logs,
	.dirty = mem_dirty,
	.job_input = mem_job_input,
	.move_job_input = mem_move_job_input,
	.job_result = mem_job_result,
	.set_result = mem_set_result,
	.job_progress = mem_job_progress,
	.set_progress = mem_set_progress,
	.n_jobs = mem_n_jobs,
	.job = mem_job,
	.job_forgotten = mem_job_forgotten,
	.n_groups = mem_n_groups,
	.n_live_groups = mem_n_live_groups,
	.group_exists = mem_group_exists,
	.group = mem_group,
	.find_group = mem_find_group,
	.rename_group = mem_rename_group,
	.find_key = mem_find_key,
	.add_key = mem_add_key,
	.group_spec_id = mem_group_spec_id,
	.group_counts = mem_group_counts,
	.set_keep_ended = mem_set_keep_ended,
	.pin = mem_pin,
	.collect = mem_collect,
	.forgotten = mem_forgotten,
};

int store_memory_new(unsigned n_pools, struct store **ret)
{
	struct mem *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return -ENOMEM;
	l->base.ops = &memory_ops;
	l->keep_ended = UINT64_MAX;
	l->logs.max = STORE_LOGS_BYTES;
	r = mem_set_pools(&l->base, n_pools, NULL);
	if (r < 0) {
		free(l);
		return r;
	}
	*ret = &l->base;
	return 0;
}
