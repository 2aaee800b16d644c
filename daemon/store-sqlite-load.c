/* SPDX-License-Identifier: MIT */
/*
 * Loading an opened SQLite store (store-sqlite-open.c opens, locks and migrates it):
 * everything in the file goes into the memory store and is checked on the way; the first
 * thing that does not add up refuses the store, naming the row. Counters, groups (a pool
 * the config dropped is kept, if the group's jobs have all ended), jobs (those found running
 * are the orphans of a master that died), submit keys. The counts by state and the runs are
 * those of the jobs forgotten, which the file keeps, and of the jobs it holds, counted here.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store-memory.h"
#include "daemon/store-sqlite.h"

#include "daemon/store-sqlite-int.h"

static int load_meta(struct sq *s, uint64_t *v)
{
	sqlite3_stmt *q;
	bool seen[META_N] = { false };
	int rc, r = sq_prepare(s, &q, "SELECT key, value FROM meta");

	if (r < 0)
		return r;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(q, 0);
		int64_t value = sqlite3_column_int64(q, 1);

		for (int k = 0; key && k < META_N; k++) {
			if (strcmp(key, sq_meta_keys[k]) != 0)
				continue;
			if (value < 0) {
				sqlite3_finalize(q); /* key with it: the name is sq_meta_keys[k] */
				return sq_fail(s, -EBADMSG, "damaged: counter %s is %" PRId64,
					       sq_meta_keys[k], value);
			}
			v[k] = (uint64_t)value;
			seen[k] = true;
		}
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return sq_fail_db(s, rc, "read its counters");
	s->meta_known = true;
	for (int k = 0; k < META_N; k++) {
		/* None before the first commit that wrote them; then every one. */
		if (!seen[k] && memchr(seen, true, sizeof(seen)))
			return sq_fail(s, -EBADMSG, "damaged: counter %s is missing",
				       sq_meta_keys[k]);
		s->meta_known = s->meta_known && seen[k];
		s->meta_written[k] = v[k];
	}
	return 0;
}

static char *column_dup(sqlite3_stmt *q, int i)
{
	const unsigned char *t = sqlite3_column_text(q, i);

	return strdup(t ? (const char *)t : "");
}

static int load_inputs(struct sq *s, sqlite3_stmt *qi, unsigned index, struct group_config *g)
{
	int rc;

	sqlite3_bind_int64(qi, 1, index);
	while ((rc = sqlite3_step(qi)) == SQLITE_ROW) {
		char **p;

		if (sqlite3_column_int64(qi, 0) != g->n_inputs) {
			sqlite3_reset(qi);
			return sq_fail(s, -EBADMSG, "damaged: group %s lacks input %u", g->name,
				       g->n_inputs + 1);
		}
		p = realloc(g->input_paths, (g->n_inputs + 1) * sizeof(*p));
		if (!p) {
			sqlite3_reset(qi);
			return -ENOMEM;
		}
		g->input_paths = p;
		p[g->n_inputs] = column_dup(qi, 1);
		if (!p[g->n_inputs]) {
			sqlite3_reset(qi);
			return -ENOMEM;
		}
		g->n_inputs++;
	}
	sqlite3_reset(qi);
	return rc == SQLITE_DONE ? 0 : sq_fail_db(s, rc, "read its groups");
}

/*
 * g's pool, by name, into g->pool. A pool the config no longer has is kept as a pool of the
 * store after the config's (the master adds it as removed: store_sqlite_gone_pools()) when
 * every job of g has ended (gone_pools_idle(), once the jobs are counted); a group with jobs
 * still to run there stops the start instead, as cancelling them would be the start deciding
 * what a reload decides.
 */
static int group_pool(struct sq *s, struct group_config *g, const char *pool_name)
{
	char **p;

	for (unsigned i = 0; pool_name && i < s->n_pools; i++)
		if (strcmp(pool_name, s->pools[i]) == 0) {
			g->pool = i;
			return 0;
		}
	p = realloc(s->pools, (s->n_pools + 2) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	s->pools = p;
	p[s->n_pools] = strdup(pool_name ? pool_name : "");
	if (!p[s->n_pools])
		return -ENOMEM;
	p[s->n_pools + 1] = NULL;
	g->pool = s->n_pools++;
	s->n_gone++;
	return s->m->set_pools(s->mem, s->n_pools, (const char *const *)s->pools);
}

/* One row of groups into *g and its counts; 0, or a damaged store's error. */
static int group_of_row(struct sq *s, sqlite3_stmt *q, struct group_config *g,
			struct group_counts *c)
{
	const char *pool_name = (const char *)sqlite3_column_text(q, 16 + _JOB_STATE_MAX), *exec;
	const char *name = (const char *)sqlite3_column_text(q, 1);
	char err[256];
	int64_t id = sqlite3_column_int64(q, 0), pool = sqlite3_column_int64(q, 2);
	int64_t kind = sqlite3_column_int64(q, 4), count = sqlite3_column_int64(q, 9);
	int64_t expect = sqlite3_column_int64(q, 12), max_attempts = sqlite3_column_int64(q, 11);
	uint64_t sum = 0;
	int r;

	if (!name || !*name || strlen(name) > CONFIG_NAME_MAX)
		return sq_fail(s, -EBADMSG, "damaged: group %" PRId64 " has no valid name", id);
	snprintf(g->name, sizeof(g->name), "%s", name);
	if (id < 0 || id >= STORE_GROUPS_MAX || kind < 0 || kind > JOB_KIND_EXEC || count < 0 ||
	    count > UINT_MAX || max_attempts < 1 || max_attempts > UINT_MAX ||
	    !job_state_is_final((enum job_state)expect) || expect == JOB_CANCELLED)
		return sq_fail(s, -EBADMSG, "damaged: group %s: a value is out of range", name);
	g->kind = (enum job_kind)kind;
	g->count = (unsigned)count;
	g->timeout = (usec_t)sqlite3_column_int64(q, 10);
	g->max_attempts = (unsigned)max_attempts;
	g->expect = (enum job_state)expect;
	c->total = (uint64_t)sqlite3_column_int64(q, 15);
	for (int k = 0; k < _JOB_STATE_MAX; k++) {
		int64_t n = sqlite3_column_int64(q, 16 + k);

		if (n < 0)
			return sq_fail(s, -EBADMSG, "damaged: group %s: a count is negative", name);
		/* Forgotten jobs had all ended. */
		if (n > 0 && !job_state_is_final((enum job_state)k))
			return sq_fail(s, -EBADMSG, "damaged: group %s: %" PRId64 " forgotten jobs %s",
				       name, n, job_state_to_string((enum job_state)k));
		c->by_state[k] = (uint64_t)n;
		sum += (uint64_t)n;
	}
	if (sum != c->total)
		return sq_fail(s, -EBADMSG,
			       "damaged: group %s: its counts of forgotten jobs add up to %" PRIu64
			       ", not %" PRIu64,
			       name, sum, c->total);
	(void)pool; /* the index in the config of the last writer; the name is what counts */
	r = group_pool(s, g, pool_name);
	if (r < 0)
		return r;
	g->run = column_dup(q, 3);
	g->args = column_dup(q, 5);
	g->inputs = column_dup(q, 6);
	g->spool = column_dup(q, 7);
	g->output = column_dup(q, 8);
	if (!g->run || !g->args || !g->inputs || !g->spool || !g->output)
		return -ENOMEM;
	exec = (const char *)sqlite3_column_text(q, 17 + _JOB_STATE_MAX);
	r = config_group_exec_parse(exec ? exec : "", g, err, sizeof(err));
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return sq_fail(s, -EBADMSG, "damaged: group %s: its exec settings: %s", name, err);
	return 0;
}

static int load_groups(struct sq *s)
{
	sqlite3_stmt *q = NULL, *qi = NULL;
	int rc, r = sq_prepare(s, &q, "SELECT " GROUP_COLUMNS " FROM groups ORDER BY id");

	if (r >= 0)
		r = sq_prepare(s, &qi, "SELECT i, path FROM group_inputs WHERE grp = ? ORDER BY i");
	while (r >= 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct group_config g = { 0 };
		struct group_counts c = { 0 };
		unsigned index = (unsigned)sqlite3_column_int64(q, 0);

		r = group_of_row(s, q, &g, &c);
		if (r >= 0)
			r = load_inputs(s, qi, index, &g);
		if (r >= 0 && g.n_inputs > 0 && g.n_inputs != g.count)
			r = sq_fail(s, -EBADMSG, "damaged: group %s has %u inputs for %u jobs",
				    g.name, g.n_inputs, g.count);
		if (r >= 0)
			r = sq_grow_groups(s, index + 1);
		if (r >= 0) {
			r = mem_restore_group(s->mem, index, &g, sqlite3_column_int(q, 13) != 0,
					      (uint32_t)sqlite3_column_int64(q, 14), &c);
			if (r == -EEXIST || r == -EINVAL)
				r = sq_fail(s, -EBADMSG, "damaged: group %s cannot be restored",
					    g.name);
		}
		if (r >= 0) {
			mem_restore_group_gone(s->mem, index);
			s->in_file[index] = true;
		}
		mem_group_config_done(&g);
	}
	if (r >= 0 && rc != SQLITE_DONE)
		r = sq_fail_db(s, rc, "read its groups");
	sqlite3_finalize(q);
	sqlite3_finalize(qi);
	return r;
}

static int add_orphan(struct sq *s, struct job *j)
{
	struct job **o = realloc(s->orphans, (s->n_orphans + 1) * sizeof(*o));

	if (!o)
		return -ENOMEM;
	s->orphans = o;
	o[s->n_orphans++] = j;
	return 0;
}

/*
 * Job j's state row (the one at qs, whose id is j's) into j; 0, or a damaged store's error.
 * The node, result and input stay in qs for the caller.
 */
static int state_of_row(struct sq *s, sqlite3_stmt *qs, struct job *j)
{
	int64_t state = sqlite3_column_int64(qs, 1), cause = sqlite3_column_int64(qs, 2);
	int64_t detail = sqlite3_column_int64(qs, 3), c = sqlite3_column_int64(qs, 4);
	int64_t started = sqlite3_column_int64(qs, 5), ended = sqlite3_column_int64(qs, 6);
	int64_t flags = c >> 49 & 31;

	if (state < 0 || state >= _JOB_STATE_MAX || cause < 0 || cause > UINT8_MAX ||
	    detail < INT32_MIN || detail > INT32_MAX || c < 0 || c >> SQ_COUNTERS_BITS != 0 ||
	    flags > (JOB_HAS_INPUT | JOB_CANCEL_REQUESTED | JOB_ADHOC) || started < 0 ||
	    started > UINT32_MAX || ended < 0 || ended > UINT32_MAX)
		return sq_fail(s, -EBADMSG, "damaged: job %" PRIu64 ": a value is out of range",
			       j->id);
	j->state = (uint8_t)state;
	j->cause = (uint8_t)cause;
	j->cause_detail = (int32_t)detail;
	j->attempts = (uint8_t)(c & 0xff);
	j->reruns = (uint16_t)(c >> 8 & 0xffff);
	j->runs = (uint16_t)(c >> 24 & 0xffff);
	j->host_deaths = (uint8_t)(c >> 40 & 0xff);
	j->alone = (uint8_t)(c >> 48 & 1);
	j->flags = (uint8_t)flags;
	j->started_ms = (uint32_t)started;
	j->ended_ms = (uint32_t)ended;
	return 0;
}

/* The run of jobs at qr (a row of job_runs), as the job its first would be, and its end. */
struct run {
	struct job first;
	uint64_t next, end; /* the run's next job to load; one after its last */
};

static int run_of_row(struct sq *s, sqlite3_stmt *qr, struct run *run)
{
	int64_t id = sqlite3_column_int64(qr, 0), n = sqlite3_column_int64(qr, 1);
	int64_t grp = sqlite3_column_int64(qr, 2), instance = sqlite3_column_int64(qr, 3);
	int64_t flags = sqlite3_column_int64(qr, 4), accepted = sqlite3_column_int64(qr, 5);

	if (id < 1 || n < 1 || n > UINT32_MAX || grp < 0 || grp >= INT_MAX || instance < 1 ||
	    instance + n - 1 > UINT32_MAX || (flags & ~(int64_t)JOB_ADHOC) != 0 || accepted < 0)
		return sq_fail(s, -EBADMSG, "damaged: jobs %" PRId64 "..: a value is out of range",
			       id);
	run->first = (struct job){ .id = (uint64_t)id,
				   .group = (uint32_t)grp,
				   .instance = (uint32_t)instance,
				   .flags = (uint8_t)flags,
				   .accepted_at = accepted };
	run->next = (uint64_t)id;
	run->end = (uint64_t)(id + n);
	return 0;
}

/* The row of jobs at q into *j; 0, or a damaged store's error. */
static int job_of_row(struct sq *s, sqlite3_stmt *q, struct job *j)
{
	int64_t id = sqlite3_column_int64(q, 0), grp = sqlite3_column_int64(q, 1);
	int64_t instance = sqlite3_column_int64(q, 2), flags = sqlite3_column_int64(q, 3);
	int64_t accepted = sqlite3_column_int64(q, 4);

	if (grp < 0 || grp >= INT_MAX || instance < 1 || instance > UINT32_MAX || flags < 0 ||
	    flags > (JOB_HAS_INPUT | JOB_CANCEL_REQUESTED | JOB_ADHOC) || accepted < 0)
		return sq_fail(s, -EBADMSG, "damaged: job %" PRId64 ": a value is out of range",
			       id);
	*j = (struct job){ .id = (uint64_t)id,
			   .group = (uint32_t)grp,
			   .instance = (uint32_t)instance,
			   .flags = (uint8_t)flags,
			   .accepted_at = accepted };
	return 0;
}

/*
 * The jobs (rows of jobs and runs of job_runs, written once) and their states (of those that
 * moved), each in id order, merged: a state without its job is damage, as is a job missing
 * in the run of ids or written twice.
 */
static int load_jobs(struct sq *s, uint64_t first)
{
	sqlite3_stmt *q = NULL, *qr = NULL, *qs = NULL;
	int rc = SQLITE_DONE, rcr = SQLITE_DONE, rcs = SQLITE_DONE;
	int r = sq_prepare(s, &q, "SELECT " JOB_COLUMNS " FROM jobs ORDER BY id");
	struct run run = { .next = UINT64_MAX };
	uint64_t next = first;

	if (r >= 0)
		r = sq_prepare(s, &qr, "SELECT " JOB_RUN_COLUMNS " FROM job_runs ORDER BY id");
	if (r >= 0)
		r = sq_prepare(s, &qs,
			       "SELECT " JOB_STATE_COLUMNS " FROM job_states ORDER BY id");
	if (r >= 0) {
		rc = sqlite3_step(q);
		rcr = sqlite3_step(qr);
		rcs = sqlite3_step(qs);
		if (rcr == SQLITE_ROW)
			r = run_of_row(s, qr, &run);
	}
	while (r >= 0 && (rc == SQLITE_ROW || rcr == SQLITE_ROW)) {
		uint64_t id_row = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(q, 0) : UINT64_MAX;
		uint64_t id = id_row < run.next ? id_row : run.next;
		const char *node = NULL, *result = NULL, *input = NULL;
		bool moved = false;
		struct job j;

		if (id_row == run.next) {
			r = sq_fail(s, -EBADMSG, "damaged: job %" PRIu64 " is written twice", id);
			break;
		}
		if (id != next) {
			r = sq_fail(s, -EBADMSG,
				    "damaged: job %" PRIu64 " is missing (next: %" PRIu64 ")", next,
				    id);
			break;
		}
		if (rcs == SQLITE_ROW && (uint64_t)sqlite3_column_int64(qs, 0) < id) {
			r = sq_fail(s, -EBADMSG, "damaged: job %" PRId64 " has a state, not a row",
				    (int64_t)sqlite3_column_int64(qs, 0));
			break;
		}
		if (id == id_row) {
			r = job_of_row(s, q, &j);
			input = (const char *)sqlite3_column_text(q, 5);
		} else {
			j = run.first;
			j.id = id;
			j.instance += (uint32_t)(id - run.first.id);
		}
		if (r >= 0 && rcs == SQLITE_ROW && (uint64_t)sqlite3_column_int64(qs, 0) == id) {
			moved = true;
			r = state_of_row(s, qs, &j);
			node = (const char *)sqlite3_column_text(qs, 7);
			result = (const char *)sqlite3_column_text(qs, 8);
			if (sqlite3_column_text(qs, 9))
				input = (const char *)sqlite3_column_text(qs, 9);
		}
		if (r < 0)
			break;
		if (node && !(j.node = s->m->node_index(s->mem, node))) {
			r = -ENOMEM; /* or more than 65 534 node names: as good as */
			break;
		}
		r = mem_restore_job(s->mem, &j, input, result);
		if (r == -EINVAL)
			r = sq_fail(s, -EBADMSG,
				    "damaged: job %" PRIu64 " names group %" PRIu32
				    ", which is not in the file",
				    id, j.group);
		if (r >= 0 && j.state == JOB_RUNNING)
			r = add_orphan(s, s->m->job(s->mem, id));
		if (moved)
			rcs = sqlite3_step(qs);
		if (id == id_row) {
			rc = sqlite3_step(q);
		} else if (++run.next == run.end) {
			run.next = UINT64_MAX;
			rcr = sqlite3_step(qr);
			if (rcr == SQLITE_ROW)
				r = run_of_row(s, qr, &run);
		}
		next++;
	}
	if (r >= 0 && rc != SQLITE_DONE)
		r = sq_fail_db(s, rc, "read its jobs");
	if (r >= 0 && rcr != SQLITE_DONE)
		r = sq_fail_db(s, rcr, "read its jobs");
	if (r >= 0 && rcs == SQLITE_ROW)
		r = sq_fail(s, -EBADMSG, "damaged: job %" PRId64 " has a state, not a row",
			    (int64_t)sqlite3_column_int64(qs, 0));
	if (r >= 0 && rcs != SQLITE_DONE && rcs != SQLITE_ROW)
		r = sq_fail_db(s, rcs, "read its jobs");
	sqlite3_finalize(q);
	sqlite3_finalize(qr);
	sqlite3_finalize(qs);
	return r;
}

/* Groups of the pools the config dropped (group_pool()): each with every job ended. */
static int gone_pools_idle(struct sq *s)
{
	for (unsigned g = 0; g < s->cap_groups; g++) {
		const struct mem_group *lg = s->in_file[g] ? mem_group_of(s->mem, g) : NULL;
		const char *pool;
		uint64_t unfinished;

		if (!lg || lg->cfg.pool < s->n_pools - s->n_gone)
			continue;
		pool = *s->pools[lg->cfg.pool] ? s->pools[lg->cfg.pool] : "?"; /* a v1 file's */
		unfinished = lg->counts.by_state[JOB_QUEUED] + lg->counts.by_state[JOB_RUNNING];
		if (unfinished > 0 || !*s->pools[lg->cfg.pool])
			return sq_fail(s, -ENXIO,
				       "job group %s (%" PRIu64 " jobs, %" PRIu64
				       " not ended) runs in pool %s, which the config does not "
				       "have: define [pool %s] again",
				       lg->cfg.name, lg->counts.total, unfinished, pool, pool);
	}
	return 0;
}

/* The keys of the submissions kept (their first job is). */
static int load_keys(struct sq *s)
{
	sqlite3_stmt *q;
	int rc, r = sq_prepare(s, &q, "SELECT key, first, count, request FROM submit_keys");

	while (r >= 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(q, 0);
		int64_t first = sqlite3_column_int64(q, 1), count = sqlite3_column_int64(q, 2);

		if (!submit_key_valid(key) || first < 1 || count < 1 || count > UINT32_MAX ||
		    (uint64_t)(first + count - 1) > s->m->n_jobs(s->mem)) {
			r = sq_fail(s, -EBADMSG, "damaged: submit key %s is out of range",
				    key ? key : "(null)");
			break;
		}
		r = s->m->add_key(s->mem, key, (uint64_t)first, (uint32_t)count,
				  (uint32_t)sqlite3_column_int64(q, 3));
		if (r == -EEXIST)
			r = sq_fail(s, -EBADMSG, "damaged: submit key %s twice", key);
	}
	if (r >= 0 && rc != SQLITE_DONE)
		r = sq_fail_db(s, rc, "read its submit keys");
	sqlite3_finalize(q);
	return r;
}

int sq_load(struct sq *s)
{
	uint64_t v[META_N] = { 0 }, sum = 0, in_groups = 0, n_jobs;
	struct mem_gone gone = { 0 };
	struct ledger_stats st;
	int r = load_meta(s, v);

	if (r >= 0)
		r = load_groups(s);
	if (r < 0)
		return r;
	/* What the jobs forgotten counted for: all of them had ended; the groups' rows say it
	 * for their own (a submitted group's row goes with its last job, so at most that). */
	gone.runs = v[META_FORGOTTEN_RUNS];
	for (int k = 0; k < _JOB_STATE_MAX; k++) {
		gone.by_state[k] = v[META_FORGOTTEN_BY_STATE + k];
		if (gone.by_state[k] > 0 && !job_state_is_final((enum job_state)k))
			return sq_fail(s, -EBADMSG, "damaged: %" PRIu64 " forgotten jobs %s",
				       gone.by_state[k], job_state_to_string((enum job_state)k));
		sum += gone.by_state[k];
	}
	for (unsigned g = 0; g < s->cap_groups; g++)
		if (s->in_file[g])
			in_groups += mem_group_of(s->mem, g)->gone.total;
	if (v[META_FORGOTTEN] % JOB_CHUNK != 0 || sum != v[META_FORGOTTEN] ||
	    in_groups > v[META_FORGOTTEN])
		return sq_fail(s, -EBADMSG,
			       "damaged: %" PRIu64 " jobs forgotten, counted %" PRIu64
			       " by state and %" PRIu64 " in groups",
			       v[META_FORGOTTEN], sum, in_groups);
	r = mem_restore_forgotten(s->mem, v[META_FORGOTTEN], &gone);
	if (r >= 0)
		r = load_jobs(s, v[META_FORGOTTEN] + 1);
	if (r >= 0)
		r = gone_pools_idle(s);
	if (r < 0)
		return r;
	/* By state and runs: the forgotten jobs' and those of the rows, counted as loaded. */
	st = *s->m->stats(s->mem);
	st.reruns_bystander = v[META_RERUNS_BYSTANDER];
	st.reruns_suspect = v[META_RERUNS_SUSPECT];
	st.culprits = v[META_CULPRITS];
	st.host_deaths = v[META_HOST_DEATHS];
	mem_restore_stats(s->mem, &st, v[META_VARIANTS_MADE]);
	r = load_keys(s);
	if (r < 0)
		return r;
	n_jobs = s->m->n_jobs(s->mem);
	s->new_from = n_jobs + 1;
	s->in_file_to = n_jobs;
	s->kept_from = v[META_FORGOTTEN] + 1;
	return 0;
}
