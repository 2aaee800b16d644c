/* SPDX-License-Identifier: MIT */
/*
 * The durable job store (DESIGN §12, store-sqlite.h): SQLite 3, WAL, synchronous=FULL, the
 * file locked for one process. Its working set is the memory store (store-memory.c): every
 * operation goes to it, and what changes a job or a group marks it. flush()
 * (store-sqlite-write.c) writes everything marked in one transaction; the master calls it at
 * most once per loop pass (durable.c), so a burst of a thousand ends is one fsync, never one
 * per job. Until a flush returns 0, nothing since the last one is durable: the master answers
 * a client only after it.
 *
 * The tables (schema 5, store-sqlite-open.c): meta (the counters no job row gives back, and
 * what the forgotten jobs counted for), groups (a group's definition, its pool by name, the
 * counts of its forgotten jobs), group_inputs (an `inputs =` group's expanded paths), jobs,
 * job_runs and job_states (a job not forgotten: what is written once, a run of jobs accepted
 * together, what changes; store-sqlite-int.h), submit_keys, job_logs. The counts of the jobs
 * held are counted from their rows at the load, so moving or adding jobs marks no group and
 * no counter. A forgotten chunk's rows go at the next flush.
 *
 * Opening an existing file loads it all back at the same ids and group indexes; jobs that were
 * running stay RUNNING and are handed to the ledger as orphans (its restart rule decides).
 * Whatever does not add up (a job of a missing group, a gap in the ids, a state out of range)
 * is a damaged store, refused with the row it found, never skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/ledger.h"
#include "daemon/store-memory.h"
#include "daemon/store-sqlite.h"

#include "daemon/store-sqlite-int.h"

/* ---- errors ---- */

int sq_errno_of(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
	case SQLITE_CANTOPEN:
		return -EACCES;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_FORMAT:
	case SQLITE_SCHEMA:
	case SQLITE_MISMATCH:
	case SQLITE_CONSTRAINT:
		return -EBADMSG;
	default:
		return -EIO;
	}
}

/* Records "PATH: what: reason" as the store's error; returns err. */
int sq_fail(struct sq *s, int err, const char *fmt, ...)
{
	char what[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(s->error, sizeof(s->error), "%s: %s", s->path, what);
	return err;
}

/*
 * The same for a failed SQLite call: the reason is SQLite's message, in words, and the
 * system's error behind it when there is one (a permission, a read-only file system), which
 * then also gives the errno.
 */
int sq_fail_db(struct sq *s, int rc, const char *doing)
{
	int err = sq_errno_of(rc), sys = s->db ? sqlite3_system_errno(s->db) : 0;
	const char *why = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);

	if (sys == EACCES || sys == EPERM || sys == EROFS || sys == ENOENT || sys == EIO ||
	    sys == ENOSPC || sys == EDQUOT) {
		err = sys == EDQUOT ? -ENOSPC : -sys;
		if (err == -ENOSPC)
			return sq_fail(s, err, "the disk is full (%s)", doing);
		return sq_fail(s, err, "cannot %s: %s (%s)", doing, strerror(sys), why);
	}
	switch (-err) {
	case EBADMSG:
		return sq_fail(s, err, "damaged (%s: %s)", doing, why);
	case EBUSY:
		return sq_fail(s, err, "in use by another process (%s)", doing);
	case ENOSPC:
		return sq_fail(s, err, "the disk is full (%s)", doing);
	default:
		return sq_fail(s, err, "cannot %s: %s", doing, why);
	}
}

int sq_exec(struct sq *s, const char *sql, const char *doing)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sq_fail_db(s, rc, doing);
}

/* ---- marking what changed ---- */

int sq_grow_groups(struct sq *s, unsigned n)
{
	bool *a;
	uint8_t *b;
	uint32_t *c;

	if (n <= s->cap_groups)
		return 0;
	n = n < 2 * s->cap_groups ? 2 * s->cap_groups : n;
	a = realloc(s->in_file, n * sizeof(*a));
	if (!a)
		return -ENOMEM;
	s->in_file = a;
	b = realloc(s->group_dirty, n * sizeof(*b));
	if (!b)
		return -ENOMEM;
	s->group_dirty = b;
	c = realloc(s->group_lazy, n * sizeof(*c));
	if (!c)
		return -ENOMEM;
	s->group_lazy = c;
	memset(a + s->cap_groups, 0, (n - s->cap_groups) * sizeof(*a));
	memset(b + s->cap_groups, 0, (n - s->cap_groups) * sizeof(*b));
	memset(c + s->cap_groups, 0, (n - s->cap_groups) * sizeof(*c));
	s->cap_groups = n;
	return 0;
}

/* The group's row (what = GROUP_COUNTS: its counts of forgotten jobs) and the counters are
 * to be written. */
static void mark_group_as(struct sq *s, unsigned group, uint8_t what)
{
	/* The arrays grow when groups are added; a failure there was returned then. */
	if (group < s->cap_groups && s->group_dirty[group] < what)
		s->group_dirty[group] = what;
	s->meta_dirty = true;
}

static void mark_group(struct sq *s, unsigned group)
{
	mark_group_as(s, group, GROUP_WHOLE);
}

/*
 * j changed: written at the next flush. Never fails: room is made when jobs are added. Its
 * group's row is not: the counts of the jobs the file holds come from their rows (schema v5);
 * the counters are looked at (a blame moves some), and only those that changed are written.
 */
static void mark_job(struct sq *s, struct job *j)
{
	s->meta_dirty = true;
	j->flags &= (uint8_t)~(JOB_START_LAZY | JOB_START_RAN); /* more than its start now */
	if (j->id >= s->new_from || (j->flags & JOB_DIRTY))
		return;
	if (s->n_dirty == s->cap_dirty) {
		size_t cap = s->cap_dirty ? 2 * s->cap_dirty : 1024;
		uint64_t *d = realloc(s->dirty, cap * sizeof(*d));

		if (!d) {
			/* Without room to list it, write every kept job at the next flush. */
			s->new_from = s->kept_from;
			return;
		}
		s->dirty = d;
		s->cap_dirty = cap;
	}
	j->flags |= JOB_DIRTY;
	s->dirty[s->n_dirty++] = j->id;
}

/* After jobs or groups were added: every group slot has its marks. */
static int added(struct sq *s, int r)
{
	unsigned n = s->m->n_groups(s->mem);

	if (r >= 0 && sq_grow_groups(s, n) < 0)
		return -ENOMEM;
	s->meta_dirty = true;
	return r;
}

/* ---- the operations: the memory store's, with marks ---- */

int sq_set_pool_names(struct sq *s, unsigned n, const char *const *names)
{
	char **p;

	if (!names)
		return -EINVAL; /* a durable store keeps pools by name */
	p = calloc(n + 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		p[i] = strdup(names[i]);
		if (!p[i]) {
			for (unsigned k = 0; k < i; k++)
				free(p[k]);
			free(p);
			return -ENOMEM;
		}
	}
	for (unsigned i = 0; i < s->n_pools; i++)
		free(s->pools[i]);
	free(s->pools);
	s->pools = p;
	s->n_pools = n;
	return 0;
}

static uint16_t sq_node_index(struct store *st, const char *name)
{
	return SQ(st)->m->node_index(SQ(st)->mem, name);
}

static const char *sq_node_name(const struct store *st, uint16_t index)
{
	return CSQ(st)->m->node_name(CSQ(st)->mem, index);
}

const char *const *store_sqlite_gone_pools(const struct store *st, unsigned *ret_n)
{
	const struct sq *s = CSQ(st);

	*ret_n = s->n_gone;
	return (const char *const *)s->pools + (s->n_pools - s->n_gone);
}

static int sq_set_pools(struct store *st, unsigned n, const char *const *names)
{
	struct sq *s = SQ(st);
	int r = sq_set_pool_names(s, n, names);

	return r < 0 ? r : s->m->set_pools(s->mem, n, names);
}

static int sq_add_group(struct store *st, const struct group_config *g, unsigned *ret_index)
{
	struct sq *s = SQ(st);
	unsigned index;
	int r = added(s, s->m->add_group(s->mem, g, &index));

	if (r < 0)
		return r;
	mark_group(s, index);
	if (ret_index)
		*ret_index = index;
	return 0;
}

static int sq_add_variant(struct store *st, const struct group_config *g, const char *base,
			  unsigned count, char *const *inputs, size_t n_inputs, unsigned *ret_group,
			  uint64_t *ret_first)
{
	struct sq *s = SQ(st);
	uint64_t made = mem_variants_made(s->mem);
	unsigned group;
	int r = added(s, s->m->add_variant(s->mem, g, base, count, inputs, n_inputs, &group,
					   ret_first));

	if (r < 0)
		return r;
	/* A variant found has its row; only its counts moved, and those are its jobs' rows'. */
	if (mem_variants_made(s->mem) != made)
		mark_group(s, group);
	if (ret_group)
		*ret_group = group;
	return 0;
}

/* The group's row stays: what moved is its counts, which the new jobs' rows give back. */
static int sq_add_jobs(struct store *st, unsigned group, unsigned count, uint64_t *ret_first)
{
	struct sq *s = SQ(st);

	return added(s, s->m->add_jobs(s->mem, group, count, ret_first));
}

static int sq_add_input_jobs(struct store *st, unsigned group, char *const *inputs, size_t n,
			     uint64_t *ret_first)
{
	struct sq *s = SQ(st);

	return added(s, s->m->add_input_jobs(s->mem, group, inputs, n, ret_first));
}

static void sq_update_group(struct store *st, unsigned group, const struct group_config *g)
{
	SQ(st)->m->update_group(SQ(st)->mem, group, g);
	mark_group(SQ(st), group);
}

static int sq_rename_group(struct store *st, unsigned group, const char *name)
{
	int r = SQ(st)->m->rename_group(SQ(st)->mem, group, name);

	if (r >= 0)
		mark_group(SQ(st), group);
	return r;
}

static const struct submit_key *sq_find_key(const struct store *st, const char *key)
{
	return CSQ(st)->m->find_key(CSQ(st)->mem, key);
}

static int sq_add_key(struct store *st, const char *key, uint64_t first, uint32_t count,
		      uint32_t request)
{
	struct sq *s = SQ(st);
	char **k = realloc(s->new_keys, (s->n_new_keys + 1) * sizeof(*k));
	int r;

	if (!k)
		return -ENOMEM;
	s->new_keys = k;
	k[s->n_new_keys] = strdup(key);
	if (!k[s->n_new_keys])
		return -ENOMEM;
	r = s->m->add_key(s->mem, key, first, count, request);
	if (r < 0) {
		free(k[s->n_new_keys]);
		return r;
	}
	s->n_new_keys++;
	return 0;
}

static uint64_t sq_queued(const struct store *st, unsigned pool, bool alone)
{
	return CSQ(st)->m->queued(CSQ(st)->mem, pool, alone);
}

static struct job *sq_pop(struct store *st, unsigned pool, bool alone)
{
	return SQ(st)->m->pop(SQ(st)->mem, pool, alone);
}

static void sq_unpop(struct store *st, struct job *j)
{
	SQ(st)->m->unpop(SQ(st)->mem, j);
}

static bool sq_unqueue(struct store *st, struct job *j)
{
	return SQ(st)->m->unqueue(SQ(st)->mem, j);
}

/*
 * A queued job that starts, and whose row the file holds as it is (not marked since): its
 * start alone may wait for a full flush (sq_flush_partial()), so that a job that ends soon
 * is written once, not once started and once ended.
 */
static void sq_set_state(struct store *st, struct job *j, enum job_state state)
{
	struct sq *s = SQ(st);
	bool lazy = state == JOB_RUNNING && j->state == JOB_QUEUED && !(j->flags & JOB_DIRTY) &&
		    j->id < s->new_from;

	s->m->set_state(s->mem, j, state);
	mark_job(s, j);
	if (lazy && (j->flags & JOB_DIRTY))
		j->flags |= JOB_START_LAZY;
}

static void sq_requeue(struct store *st, struct job *j, bool alone)
{
	SQ(st)->m->requeue(SQ(st)->mem, j, alone);
	mark_job(SQ(st), j);
}

static void sq_end(struct store *st, struct job *j, enum job_state state, int cause, int detail)
{
	SQ(st)->m->end(SQ(st)->mem, j, state, cause, detail);
	mark_job(SQ(st), j);
}

/*
 * The ledger touches a job for its run counted at its start (ledger_started()) and for a
 * cancel asked while it runs: the first keeps a lazy start lazy (once), the second is more.
 */
static void sq_touch(struct store *st, struct job *j)
{
	if ((j->flags & JOB_START_LAZY) && !(j->flags & (JOB_START_RAN | JOB_CANCEL_REQUESTED))) {
		j->flags |= JOB_START_RAN;
		mark_group_as(SQ(st), j->group, GROUP_COUNTS);
		return;
	}
	mark_job(SQ(st), j);
}

/* The ledger changes a counter only with a job, which marks the counters too. */
static struct ledger_stats *sq_stats(struct store *st)
{
	return SQ(st)->m->stats(SQ(st)->mem);
}

static void sq_begin(struct store *st)
{
	SQ(st)->depth++;
}

static int sq_commit(struct store *st)
{
	if (SQ(st)->depth > 0)
		SQ(st)->depth--;
	return 0;
}

static const char *sq_job_input(const struct store *st, const struct job *j)
{
	return CSQ(st)->m->job_input(CSQ(st)->mem, j);
}

static int sq_move_job_input(struct store *st, struct job *j, const char *input)
{
	int r = SQ(st)->m->move_job_input(SQ(st)->mem, j, input);

	if (r >= 0)
		mark_job(SQ(st), j);
	return r;
}

static const char *sq_job_result(const struct store *st, const struct job *j)
{
	return CSQ(st)->m->job_result(CSQ(st)->mem, j);
}

static int sq_set_result(struct store *st, struct job *j, const char *text, size_t len)
{
	int r = SQ(st)->m->set_result(SQ(st)->mem, j, text, len);

	if (r >= 0)
		mark_job(SQ(st), j);
	return r;
}

static int sq_job_progress(const struct store *st, const struct job *j)
{
	return CSQ(st)->m->job_progress(CSQ(st)->mem, j);
}

/* Progress is not kept: it means nothing once the process that reported it is gone. */
static int sq_set_progress(struct store *st, struct job *j, int permille)
{
	return SQ(st)->m->set_progress(SQ(st)->mem, j, permille);
}

static uint64_t sq_n_jobs(const struct store *st)
{
	return CSQ(st)->m->n_jobs(CSQ(st)->mem);
}

static struct job *sq_job(struct store *st, uint64_t id)
{
	return SQ(st)->m->job(SQ(st)->mem, id);
}

static bool sq_job_forgotten(const struct store *st, uint64_t id)
{
	return CSQ(st)->m->job_forgotten(CSQ(st)->mem, id);
}

static unsigned sq_n_groups(const struct store *st)
{
	return CSQ(st)->m->n_groups(CSQ(st)->mem);
}

static unsigned sq_n_live_groups(const struct store *st)
{
	return CSQ(st)->m->n_live_groups(CSQ(st)->mem);
}

static bool sq_group_exists(const struct store *st, unsigned group)
{
	return CSQ(st)->m->group_exists(CSQ(st)->mem, group);
}

static const struct group_config *sq_group(const struct store *st, unsigned group)
{
	return CSQ(st)->m->group(CSQ(st)->mem, group);
}

static int sq_find_group(const struct store *st, const char *name)
{
	return CSQ(st)->m->find_group(CSQ(st)->mem, name);
}

static uint32_t sq_group_spec_id(const struct store *st, unsigned group)
{
	return CSQ(st)->m->group_spec_id(CSQ(st)->mem, group);
}

static const struct group_counts *sq_group_counts(const struct store *st, unsigned group)
{
	return CSQ(st)->m->group_counts(CSQ(st)->mem, group);
}

static void sq_set_keep_ended(struct store *st, uint64_t keep)
{
	SQ(st)->m->set_keep_ended(SQ(st)->mem, keep);
}

static void sq_pin(struct store *st, bool on)
{
	SQ(st)->m->pin(SQ(st)->mem, on);
}

/* Forgotten jobs' rows go at the next flush; freed groups' rows too. */
static uint64_t sq_collect(struct store *st)
{
	struct sq *s = SQ(st);
	uint64_t n = s->m->collect(s->mem);

	if (n > 0) {
		s->meta_dirty = true;
		for (unsigned g = 0; g < s->cap_groups; g++)
			if (s->in_file[g] && s->group_dirty[g] < GROUP_COUNTS)
				s->group_dirty[g] = GROUP_COUNTS; /* a freed one's row goes */
	}
	return n;
}

static uint64_t sq_forgotten(const struct store *st)
{
	return CSQ(st)->m->forgotten(CSQ(st)->mem);
}

static size_t sq_take_orphans(struct store *st, struct job ***ret)
{
	struct sq *s = SQ(st);
	size_t n = s->n_orphans;

	*ret = s->orphans;
	s->orphans = NULL;
	s->n_orphans = 0;
	return n;
}

void sq_free(struct store *st)
{
	struct sq *s = SQ(st);

	if (!s)
		return;
	sqlite3_finalize(s->begin);
	sqlite3_finalize(s->commit);
	sqlite3_finalize(s->put_job);
	sqlite3_finalize(s->put_state);
	sqlite3_finalize(s->put_fresh);
	sqlite3_finalize(s->put_counts);
	sqlite3_finalize(s->put_group);
	sqlite3_finalize(s->del_group);
	sqlite3_finalize(s->put_input);
	sqlite3_finalize(s->del_inputs);
	sqlite3_finalize(s->put_meta);
	sqlite3_finalize(s->del_forgotten);
	sqlite3_finalize(s->del_states);
	sqlite3_finalize(s->del_runs);
	sqlite3_finalize(s->cut_runs);
	sqlite3_finalize(s->put_key);
	sqlite3_finalize(s->del_keys);
	sqlite3_finalize(s->put_log);
	sqlite3_finalize(s->del_logs);
	sqlite3_finalize(s->get_logs);
	log_ring_clear(&s->pending_logs);
	sqlite3_close(s->db);
	for (size_t i = 0; i < s->n_new_keys; i++)
		free(s->new_keys[i]);
	free(s->new_keys);
	for (unsigned i = 0; i < s->n_pools; i++)
		free(s->pools[i]);
	free(s->pools);
	if (s->mem)
		s->m->free(s->mem);
	free(s->dirty);
	free(s->in_file);
	free(s->group_dirty);
	free(s->group_lazy);
	free(s->orphans);
	free(s->path);
	free(s);
}

static const char *sq_last_error(const struct store *st)
{
	return CSQ(st)->error;
}

static uint64_t sq_commits(const struct store *st)
{
	return CSQ(st)->commits;
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.free = sq_free,
	.set_pools = sq_set_pools,
	.add_group = sq_add_group,
	.add_variant = sq_add_variant,
	.add_jobs = sq_add_jobs,
	.add_input_jobs = sq_add_input_jobs,
	.update_group = sq_update_group,
	.rename_group = sq_rename_group,
	.find_key = sq_find_key,
	.add_key = sq_add_key,
	.queued = sq_queued,
	.pop = sq_pop,
	.unpop = sq_unpop,
	.unqueue = sq_unqueue,
	.set_state = sq_set_state,
	.requeue = sq_requeue,
	.end = sq_end,
	.touch = sq_touch,
	.stats = sq_stats,
	.begin = sq_begin,
	.commit = sq_commit,
	.flush = sq_flush,
	.flush_partial = sq_flush_partial,
	.commits = sq_commits,
	.add_log = sq_add_log,
	.read_logs = sq_read_logs,
	.dirty = sq_dirty,
	.take_orphans = sq_take_orphans,
	.last_error = sq_last_error,
	.node_index = sq_node_index,
	.node_name = sq_node_name,
	.job_input = sq_job_input,
	.move_job_input = sq_move_job_input,
	.job_result = sq_job_result,
	.set_result = sq_set_result,
	.job_progress = sq_job_progress,
	.set_progress = sq_set_progress,
	.n_jobs = sq_n_jobs,
	.job = sq_job,
	.job_forgotten = sq_job_forgotten,
	.n_groups = sq_n_groups,
	.n_live_groups = sq_n_live_groups,
	.group_exists = sq_group_exists,
	.group = sq_group,
	.find_group = sq_find_group,
	.group_spec_id = sq_group_spec_id,
	.group_counts = sq_group_counts,
	.set_keep_ended = sq_set_keep_ended,
	.pin = sq_pin,
	.collect = sq_collect,
	.forgotten = sq_forgotten,
};
