/* SPDX-License-Identifier: MIT */
/*
 * The SQLite store's writing (store-sqlite.c has the operations and their marks): flush()
 * writes every marked job, group, counter, new submit key and log line in one transaction,
 * and deletes the rows of forgotten jobs; a failure writes nothing and keeps the marks. And
 * the reading of log lines: the file's, then those not written yet.
 */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log-ring.h"
#include "daemon/store-memory.h"

#include "daemon/store-sqlite-int.h"

/* ---- writing ---- */

static int bind_text(sqlite3_stmt *q, int i, const char *v)
{
	return v ? sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(q, i);
}

static int step(struct sq *s, sqlite3_stmt *q, const char *doing)
{
	int rc = sqlite3_step(q);

	sqlite3_reset(q); /* every caller binds every parameter again before the next step */
	return rc == SQLITE_DONE ? 0 : sq_fail_db(s, rc, doing);
}

/* Whether j is as a job without a state row is read back: queued, never started. */
static bool state_unmoved(const struct job *j)
{
	return j->state == JOB_QUEUED && j->cause == CAUSE_NONE && j->cause_detail == 0 &&
	       j->alone == 0 && j->attempts == 0 && j->reruns == 0 && j->runs == 0 &&
	       j->host_deaths == 0 && !(j->flags & JOB_CANCEL_REQUESTED) && j->started_ms == 0 &&
	       j->ended_ms == 0 && j->node == 0 && (!j->extra || !j->extra->result);
}

/* Job j's state row, new or in place of the one written before. */
static int write_state(struct sq *s, const struct job *j)
{
	sqlite3_stmt *q = s->put_state;

	sqlite3_bind_int64(q, 1, (sqlite3_int64)j->id);
	sqlite3_bind_int(q, 2, j->state);
	sqlite3_bind_int(q, 3, j->cause);
	sqlite3_bind_int(q, 4, j->cause_detail);
	sqlite3_bind_int64(q, 5, sq_counters(j));
	sqlite3_bind_int64(q, 6, j->started_ms);
	sqlite3_bind_int64(q, 7, j->ended_ms);
	bind_text(q, 8, s->m->node_name(s->mem, j->node));
	bind_text(q, 9, j->extra ? j->extra->result : NULL);
	bind_text(q, 10, j->extra && j->extra->input[0] ? j->extra->input : NULL);
	return step(s, q, "write a job");
}

/* A new job's row, without its state: as accepted. */
static int write_row(struct sq *s, const struct job *j)
{
	sqlite3_stmt *q = s->put_job;

	sqlite3_bind_int64(q, 1, (sqlite3_int64)j->id);
	sqlite3_bind_int64(q, 2, j->group);
	sqlite3_bind_int64(q, 3, j->instance);
	sqlite3_bind_int(q, 4, j->flags & ~(JOB_STORE_FLAGS | JOB_CANCEL_REQUESTED));
	sqlite3_bind_int64(q, 5, j->accepted_at);
	bind_text(q, 6, j->extra && j->extra->input[0] ? j->extra->input : NULL);
	return step(s, q, "write a job");
}

/* Job j: a new one (its row, and its state if it moved already), or its state (update). */
static int write_job(struct sq *s, const struct job *j, bool update)
{
	int r;

	if (update)
		return write_state(s, j);
	r = write_row(s, j);
	return r < 0 || state_unmoved(j) ? r : write_state(s, j);
}

/*
 * A submit of many jobs adds them all alike: queued, never started, one group, instances in
 * a row, one accepted time. Such a run of new jobs is written as one row of job_runs
 * (put_fresh), not a row per job: at 20 000 jobs a submit, the per-statement work was most
 * of it, and at 16 x 16 the row per job was an eighth of the master.
 */
#define FRESH_RUN_MIN 2

static bool fresh(const struct job *j)
{
	return j->state == JOB_QUEUED && j->cause == CAUSE_NONE && j->alone == 0 &&
	       j->attempts == 0 && j->reruns == 0 && j->runs == 0 && j->cause_detail == 0 &&
	       (j->flags & ~(JOB_ADHOC | JOB_STORE_FLAGS)) == 0 && j->host_deaths == 0 &&
	       !j->extra && j->started_ms == 0 && j->ended_ms == 0 && j->node == 0;
}

/*
 * A new job whose one change since its accept is its start (assigned, maybe started): a
 * partial flush writes it as queued and leaves its start for later, as left_lazy() does for
 * a job written before. At 16 x 16 about half the new jobs start before their first write;
 * written as queued they have no state row until their end (one row write, not two).
 */
static bool started_fresh(const struct job *j)
{
	return j->state == JOB_RUNNING && j->cause == CAUSE_NONE && j->alone == 0 &&
	       j->attempts == 0 && j->reruns == 0 && j->runs <= 1 && j->cause_detail == 0 &&
	       (j->flags & ~(JOB_ADHOC | JOB_STORE_FLAGS)) == 0 && j->host_deaths == 0 &&
	       !j->extra && j->ended_ms == 0;
}

/* Whether j is written as a fresh job: queued, or (partial) a start left for later. */
static bool fresh_as(const struct job *j, bool partial)
{
	return fresh(j) || (partial && started_fresh(j));
}

/*
 * New job j, written as queued by a partial flush: its start left, counted like left_lazy()'s,
 * its id kept in dirty[]'s room to join it at the commit. False if there is no room: then
 * its state is to be written now.
 */
static bool left_lazy_new(struct sq *s, const struct job *j)
{
	size_t n = s->n_dirty + s->n_lazy_new;

	if (n == s->cap_dirty) {
		size_t cap = s->cap_dirty ? 2 * s->cap_dirty : 1024;
		uint64_t *d = realloc(s->dirty, cap * sizeof(*d));

		if (!d)
			return false;
		s->dirty = d;
		s->cap_dirty = cap;
	}
	s->dirty[n] = j->id;
	s->n_lazy_new++;
	s->group_lazy[j->group]++;
	s->n_lazy++;
	return true;
}

/* How many jobs from j on (j's id .. n_jobs) are fresh and alike, for write_fresh_run(). */
static uint64_t fresh_run(struct sq *s, const struct job *j, uint64_t n_jobs, bool partial)
{
	uint64_t n = 1;

	if (!fresh_as(j, partial))
		return 0;
	for (uint64_t id = j->id + 1; id <= n_jobs && n < UINT32_MAX; id++, n++) {
		const struct job *k = s->m->job(s->mem, id);

		if (!fresh_as(k, partial) || k->group != j->group || k->instance != j->instance + n ||
		    k->accepted_at != j->accepted_at || k->flags != j->flags)
			break;
	}
	return n;
}

/*
 * n fresh jobs from j on, as write_job() would write each (no state rows), in one row of
 * job_runs; those started are left lazy, or get their state row if they cannot be.
 */
static int write_fresh_run(struct sq *s, const struct job *j, uint64_t n)
{
	sqlite3_stmt *q = s->put_fresh;
	int r;

	sqlite3_bind_int64(q, 1, (sqlite3_int64)j->id);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)n);
	sqlite3_bind_int64(q, 3, j->group);
	sqlite3_bind_int64(q, 4, j->instance);
	sqlite3_bind_int(q, 5, j->flags & ~JOB_STORE_FLAGS);
	sqlite3_bind_int64(q, 6, j->accepted_at);
	r = step(s, q, "write jobs");
	for (uint64_t i = 0; r >= 0 && i < n; i++) {
		const struct job *k = s->m->job(s->mem, j->id + i);

		if (k->state != JOB_QUEUED && !left_lazy_new(s, k))
			r = write_state(s, k);
	}
	return r;
}

/* What a group's forgotten jobs count for: all the file keeps of its counts (schema v5). */
static struct group_counts counts_written(const struct sq *s, unsigned index)
{
	return mem_group_of(s->mem, index)->gone;
}

/* A group in the file some of whose jobs retention forgot: its counts of them, in place. */
static int write_counts(struct sq *s, unsigned index)
{
	const struct group_counts c = counts_written(s, index);
	sqlite3_stmt *q = s->put_counts;
	int i = 1;

	sqlite3_bind_int64(q, i++, index);
	sqlite3_bind_int64(q, i++, (sqlite3_int64)c.total);
	for (int k = 0; k < _JOB_STATE_MAX; k++)
		sqlite3_bind_int64(q, i++, (sqlite3_int64)c.by_state[k]);
	return step(s, q, "write a group");
}

static int write_group(struct sq *s, unsigned index)
{
	const struct mem_group *lg = mem_group_of(s->mem, index);
	const struct group_config *g = &lg->cfg;
	const struct group_counts c = counts_written(s, index);
	sqlite3_stmt *q;
	char *exec;
	int r, i = 1;

	if (s->group_dirty[index] == GROUP_COUNTS && s->in_file[index] && !lg->freed)
		return write_counts(s, index);
	sqlite3_bind_int64(s->del_inputs, 1, index);
	r = step(s, s->del_inputs, "write a group");
	if (r < 0 || lg->freed) {
		if (r >= 0 && s->in_file[index]) {
			sqlite3_bind_int64(s->del_group, 1, index);
			r = step(s, s->del_group, "write a group");
		}
		return r;
	}
	q = s->put_group;
	sqlite3_bind_int64(q, i++, index);
	bind_text(q, i++, g->name);
	sqlite3_bind_int64(q, i++, g->pool);
	bind_text(q, i++, g->run);
	sqlite3_bind_int(q, i++, g->kind);
	bind_text(q, i++, g->args);
	bind_text(q, i++, g->inputs);
	bind_text(q, i++, g->spool);
	bind_text(q, i++, g->output);
	sqlite3_bind_int64(q, i++, g->count);
	sqlite3_bind_int64(q, i++, (sqlite3_int64)g->timeout);
	sqlite3_bind_int64(q, i++, g->max_attempts);
	sqlite3_bind_int(q, i++, g->expect);
	sqlite3_bind_int(q, i++, lg->adhoc);
	sqlite3_bind_int64(q, i++, lg->def_hash);
	sqlite3_bind_int64(q, i++, (sqlite3_int64)c.total);
	for (int k = 0; k < _JOB_STATE_MAX; k++)
		sqlite3_bind_int64(q, i++, (sqlite3_int64)c.by_state[k]);
	bind_text(q, i++, g->pool < s->n_pools ? s->pools[g->pool] : "");
	exec = config_group_exec_format(g);
	if (!exec) {
		sqlite3_reset(q);
		sqlite3_clear_bindings(q);
		return -ENOMEM;
	}
	bind_text(q, i++, exec);
	r = step(s, q, "write a group");
	free(exec);
	for (unsigned k = 0; r >= 0 && k < g->n_inputs; k++) {
		sqlite3_bind_int64(s->put_input, 1, index);
		sqlite3_bind_int64(s->put_input, 2, k);
		bind_text(s->put_input, 3, g->input_paths[k]);
		r = step(s, s->put_input, "write a group");
	}
	return r;
}

static int write_meta(struct sq *s)
{
	const struct ledger_stats *st = s->m->stats(s->mem);
	const struct mem_gone *gone = &MEM(s->mem)->gone;
	uint64_t v[META_N] = {
		[META_FORGOTTEN] = s->m->forgotten(s->mem),
		[META_VARIANTS_MADE] = mem_variants_made(s->mem),
		[META_RERUNS_BYSTANDER] = st->reruns_bystander,
		[META_RERUNS_SUSPECT] = st->reruns_suspect,
		[META_CULPRITS] = st->culprits,
		[META_HOST_DEATHS] = st->host_deaths,
		[META_FORGOTTEN_RUNS] = gone->runs,
	};
	int r = 0;

	for (int k = 0; k < _JOB_STATE_MAX; k++)
		v[META_FORGOTTEN_BY_STATE + k] = gone->by_state[k];
	/* Those that changed since the last commit: most commits, none (a crash's blame moves
	 * one or two, retention the forgotten ones'). */
	for (int k = 0; r >= 0 && k < META_N; k++) {
		if (s->meta_known && v[k] == s->meta_written[k])
			continue;
		bind_text(s->put_meta, 1, sq_meta_keys[k]);
		sqlite3_bind_int64(s->put_meta, 2, (sqlite3_int64)v[k]);
		r = step(s, s->put_meta, "write the counters");
	}
	memcpy(s->meta_next, v, sizeof(v));
	s->meta_wrote = r >= 0;
	return r;
}

/* A partial flush leaves j's row as it is: its start is its one change (sq_set_state()). */
static bool left_lazy(struct sq *s, const struct job *j, bool partial)
{
	if (!partial || !(j->flags & JOB_START_LAZY) || j->state != JOB_RUNNING)
		return false;
	s->group_lazy[j->group]++;
	s->n_lazy++;
	return true;
}

static int flush_all(struct sq *s, uint64_t first_kept, uint64_t n_jobs, bool partial)
{
	int r = 0;

	if (first_kept > s->kept_from) {
		/* Everything of the jobs before first_kept (cut_runs after del_runs). */
		const struct {
			sqlite3_stmt *q;
			const char *what;
		} cut[] = {
			{ s->del_forgotten, "forget jobs" },	{ s->del_states, "forget jobs" },
			{ s->del_runs, "forget jobs" },		{ s->cut_runs, "forget jobs" },
			{ s->del_keys, "forget submit keys" }, { s->del_logs, "forget log lines" },
		};

		for (size_t i = 0; r >= 0 && i < sizeof(cut) / sizeof(cut[0]); i++) {
			sqlite3_bind_int64(cut[i].q, 1, (sqlite3_int64)first_kept);
			r = step(s, cut[i].q, cut[i].what);
		}
	}
	for (const struct log_entry *e = s->pending_logs.head; r >= 0 && e; e = e->next) {
		if (e->job < first_kept)
			continue; /* forgotten with its job before it was written */
		sqlite3_bind_int64(s->put_log, 1, (sqlite3_int64)e->job);
		sqlite3_bind_int64(s->put_log, 2, e->at);
		sqlite3_bind_int(s->put_log, 3, e->level);
		sqlite3_bind_text(s->put_log, 4, e->text, e->len, SQLITE_STATIC);
		r = step(s, s->put_log, "write a log line");
	}
	for (size_t i = 0; r >= 0 && i < s->n_new_keys; i++) {
		const struct submit_key *k = s->m->find_key(s->mem, s->new_keys[i]);

		if (!k)
			continue; /* forgotten with its jobs before it was written */
		bind_text(s->put_key, 1, k->key);
		sqlite3_bind_int64(s->put_key, 2, (sqlite3_int64)k->first);
		sqlite3_bind_int64(s->put_key, 3, k->count);
		sqlite3_bind_int64(s->put_key, 4, k->request);
		r = step(s, s->put_key, "write a submit key");
	}
	for (size_t i = 0; r >= 0 && i < s->n_dirty; i++) {
		const struct job *j;

		if (s->dirty[i] < first_kept || s->dirty[i] >= s->new_from)
			continue;
		j = s->m->job(s->mem, s->dirty[i]);
		if (!left_lazy(s, j, partial))
			r = write_job(s, j, true);
	}
	for (uint64_t id = s->new_from > first_kept ? s->new_from : first_kept;
	     r >= 0 && id <= n_jobs;) {
		const struct job *j = s->m->job(s->mem, id);
		uint64_t n = id > s->in_file_to ? fresh_run(s, j, n_jobs, partial) : 0;

		if (n >= FRESH_RUN_MIN) {
			r = write_fresh_run(s, j, n);
			id += n;
		} else if (n > 0 && j->state != JOB_QUEUED && left_lazy_new(s, j)) {
			r = write_row(s, j);
			id++;
		} else {
			r = write_job(s, j, id <= s->in_file_to);
			id++;
		}
	}
	for (unsigned g = 0; r >= 0 && g < s->cap_groups; g++)
		if (s->group_dirty[g])
			r = write_group(s, g);
	if (r >= 0 && s->meta_dirty)
		r = write_meta(s);
	return r;
}

bool sq_dirty(const struct store *st)
{
	const struct sq *s = CSQ(st);

	return s->n_dirty > 0 || s->new_from <= s->m->n_jobs(s->mem) || s->meta_dirty ||
	       mem_first_kept_id(s->mem) > s->kept_from || s->n_new_keys > 0 ||
	       s->pending_logs.head;
}

/*
 * After a partial flush's commit: the starts it left stay marked (their rows as if they had
 * not started: the next flush writes them as they are); the new jobs it wrote as queued join
 * them.
 */
static void keep_lazy(struct sq *s, uint64_t first_kept)
{
	size_t kept = 0;

	for (size_t i = 0; i < s->n_dirty; i++) {
		struct job *j = s->dirty[i] >= first_kept ? s->m->job(s->mem, s->dirty[i]) : NULL;

		if (!j)
			continue;
		if (s->group_lazy[j->group] > 0 && (j->flags & JOB_START_LAZY) &&
		    j->state == JOB_RUNNING && s->dirty[i] < s->new_from) {
			s->dirty[kept++] = s->dirty[i];
			continue;
		}
		j->flags &= (uint8_t)~(JOB_DIRTY | JOB_START_LAZY | JOB_START_RAN);
	}
	for (size_t i = 0; i < s->n_lazy_new; i++) {
		struct job *j = s->m->job(s->mem, s->dirty[s->n_dirty + i]);

		j->flags |= JOB_DIRTY | JOB_START_LAZY | (j->runs ? JOB_START_RAN : 0);
		s->dirty[kept++] = j->id;
	}
	s->n_dirty = kept;
	s->n_lazy_new = 0;
}

/* The tally of left_lazy() and left_lazy_new(), back to none. */
static void lazy_clear(struct sq *s)
{
	if (!s->n_lazy)
		return;
	memset(s->group_lazy, 0, s->cap_groups * sizeof(*s->group_lazy));
	s->n_lazy = 0;
	s->n_lazy_new = 0;
}

static int flush(struct store *st, bool partial)
{
	struct sq *s = SQ(st);
	uint64_t first_kept = mem_first_kept_id(s->mem), n_jobs = s->m->n_jobs(s->mem);
	bool lazy_kept;
	int r;

	if (s->depth > 0)
		return -EBUSY; /* never half of what belongs together */
	if (!sq_dirty(st))
		return 0;
	r = step(s, s->begin, "begin a transaction");
	if (r < 0)
		return r;
	r = flush_all(s, first_kept, n_jobs, partial);
	if (r >= 0)
		r = step(s, s->commit, "commit");
	if (r < 0) {
		/* Nothing of it was written: all of it is still marked, for the next flush. */
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		s->meta_wrote = false;
		lazy_clear(s);
		return r;
	}
	lazy_kept = s->n_lazy > 0;
	if (lazy_kept)
		keep_lazy(s, first_kept);
	else
		for (size_t i = 0; i < s->n_dirty; i++) {
			struct job *j =
				s->dirty[i] >= first_kept ? s->m->job(s->mem, s->dirty[i]) : NULL;

			if (j)
				j->flags &= (uint8_t)~(JOB_DIRTY | JOB_START_LAZY | JOB_START_RAN);
		}
	if (!lazy_kept)
		s->n_dirty = 0;
	s->commits++;
	log_ring_clear(&s->pending_logs);
	for (size_t i = 0; i < s->n_new_keys; i++)
		free(s->new_keys[i]);
	s->n_new_keys = 0;
	s->new_from = n_jobs + 1;
	s->in_file_to = n_jobs;
	s->kept_from = first_kept;
	for (unsigned g = 0; g < s->cap_groups; g++) {
		if (s->group_dirty[g])
			s->in_file[g] = !mem_group_of(s->mem, g)->freed;
		s->group_dirty[g] = GROUP_CLEAN;
	}
	s->meta_dirty = false;
	if (s->meta_wrote) {
		memcpy(s->meta_written, s->meta_next, sizeof(s->meta_written));
		s->meta_known = true;
		s->meta_wrote = false;
	}
	/* What was left is still to be written: its jobs, kept in s->dirty (no counts: the
	 * file's are counted from the rows). */
	lazy_clear(s);
	s->error[0] = '\0';
	return 0;
}

int sq_flush(struct store *st)
{
	return flush(st, false);
}

int sq_flush_partial(struct store *st)
{
	return flush(st, true);
}

/* ---- log lines ---- */

int sq_add_log(struct store *st, const struct log_line *line)
{
	return log_ring_add(&SQ(st)->pending_logs, line);
}

/* The lines of the file a query wants, newest first, into *ret (the last q->tail, or all). */
static int read_file_logs(struct sq *s, const struct log_query *q, struct log_ring *ret)
{
	sqlite3_stmt *g = s->get_logs;
	struct log_ring newest_first = { 0 };
	int rc, r = 0;
	size_t n = 0;

	sqlite3_bind_int64(g, 1, (sqlite3_int64)q->first);
	sqlite3_bind_int64(g, 2, (sqlite3_int64)(q->last > INT64_MAX ? INT64_MAX : q->last));
	while ((!q->tail || n < q->tail) && (rc = sqlite3_step(g)) == SQLITE_ROW) {
		struct log_line l = { .job = (uint64_t)sqlite3_column_int64(g, 0),
				      .at = sqlite3_column_int64(g, 1),
				      .level = sqlite3_column_int(g, 2),
				      .text = (const char *)sqlite3_column_text(g, 3),
				      .len = (size_t)sqlite3_column_bytes(g, 3) };

		if (!l.text || (q->match && !q->match(q->userdata, l.job)))
			continue;
		r = log_ring_add(&newest_first, &l);
		if (r < 0)
			break;
		n++;
	}
	if (r >= 0 && q->tail && n >= q->tail)
		rc = SQLITE_DONE;
	if (r >= 0 && rc != SQLITE_DONE)
		r = sq_fail_db(s, rc, "read log lines");
	sqlite3_reset(g);
	/* Oldest first. */
	while (r >= 0 && newest_first.head) {
		struct log_entry *e = newest_first.head;

		newest_first.head = e->next;
		e->next = ret->head;
		ret->head = e;
		if (!ret->tail)
			ret->tail = e;
	}
	log_ring_clear(&newest_first);
	return r;
}

int sq_read_logs(struct store *st, const struct log_query *q,
			int (*cb)(void *userdata, const struct log_line *line), void *userdata)
{
	struct sq *s = SQ(st);
	struct log_ring all = { 0 };
	struct log_query pq = *q;
	int r = read_file_logs(s, q, &all);

	/* Then those not written yet, and the last q->tail of the whole. */
	pq.tail = 0;
	for (const struct log_entry *e = s->pending_logs.head; r >= 0 && e; e = e->next) {
		struct log_line l = { e->job, e->at, e->level, e->text, e->len };

		if (e->job >= q->first && e->job <= q->last && (!q->match || q->match(q->userdata, e->job)))
			r = log_ring_add(&all, &l);
	}
	if (r >= 0) {
		pq.first = 0;
		pq.last = UINT64_MAX;
		pq.match = NULL;
		pq.tail = q->tail;
		r = log_ring_read(&all, &pq, cb, userdata);
	}
	log_ring_clear(&all);
	return r;
}
