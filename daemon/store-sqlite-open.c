/* SPDX-License-Identifier: MIT */
/*
 * Opening the SQLite store (store-sqlite.h): a new file is made whole under a temporary name
 * and renamed into place, so a file at the path was a complete store once, and one found empty
 * or short is damage, never a fresh start. An existing file must say it is a bulkhead store
 * (application_id) of a schema this build knows (user_version), and everything in it is
 * loaded into the memory store and checked on the way: the first thing that does not add up
 * refuses the store, naming the row.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "daemon/store-memory.h"
#include "daemon/store-sqlite.h"

#include "daemon/store-sqlite-int.h"

/* Group indexes in a file beyond this are damage (a store has a few thousand at most). */
#define STORE_GROUPS_MAX (1 << 24)

const char *const sq_meta_keys[META_N] = {
	[META_N_JOBS] = "n_jobs",
	[META_FORGOTTEN] = "forgotten",
	[META_VARIANTS_MADE] = "variants_made",
	[META_RUNS] = "runs",
	[META_RERUNS_BYSTANDER] = "reruns_bystander",
	[META_RERUNS_SUSPECT] = "reruns_suspect",
	[META_CULPRITS] = "culprits",
	[META_HOST_DEATHS] = "host_deaths",
	[META_BY_STATE + JOB_QUEUED] = "queued",
	[META_BY_STATE + JOB_RUNNING] = "running",
	[META_BY_STATE + JOB_DONE] = "done",
	[META_BY_STATE + JOB_FAILED] = "failed",
	[META_BY_STATE + JOB_CRASHED] = "crashed",
	[META_BY_STATE + JOB_TIMED_OUT] = "timed_out",
	[META_BY_STATE + JOB_CANCELLED] = "cancelled",
};

static const char schema_v1[] =
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE groups (id INTEGER PRIMARY KEY, name TEXT NOT NULL, pool INTEGER NOT NULL,"
	" run TEXT NOT NULL, kind INTEGER NOT NULL, args TEXT NOT NULL, inputs TEXT NOT NULL,"
	" spool TEXT NOT NULL, output TEXT NOT NULL, count INTEGER NOT NULL,"
	" timeout_us INTEGER NOT NULL, max_attempts INTEGER NOT NULL, expect INTEGER NOT NULL,"
	" adhoc INTEGER NOT NULL, def_hash INTEGER NOT NULL, total INTEGER NOT NULL,"
	" queued INTEGER NOT NULL, running INTEGER NOT NULL, done INTEGER NOT NULL,"
	" failed INTEGER NOT NULL, crashed INTEGER NOT NULL, timed_out INTEGER NOT NULL,"
	" cancelled INTEGER NOT NULL);"
	"CREATE TABLE group_inputs (grp INTEGER NOT NULL, i INTEGER NOT NULL,"
	" path TEXT NOT NULL, PRIMARY KEY (grp, i)) WITHOUT ROWID;"
	"CREATE TABLE jobs (id INTEGER PRIMARY KEY, grp INTEGER NOT NULL,"
	" instance INTEGER NOT NULL, state INTEGER NOT NULL, cause INTEGER NOT NULL,"
	" cause_detail INTEGER NOT NULL, alone INTEGER NOT NULL, attempts INTEGER NOT NULL,"
	" reruns INTEGER NOT NULL, runs INTEGER NOT NULL, flags INTEGER NOT NULL,"
	" host_deaths INTEGER NOT NULL, input TEXT, result TEXT);";

/*
 * Each migration takes a file from version N to N + 1, in the transaction that sets
 * user_version; a new file is made at version 1 and migrated like any other.
 * v2: a group's pool by name (pools are matched by name when the config changed between
 * runs), the keys of `submit --key`, each job's history: accepted (µs since the epoch),
 * its last start and its end (1 + ms after accepted, 0: not yet) and the node that ran it,
 * and its log lines.
 */
static const char migrate_v2[] =
	"ALTER TABLE groups ADD COLUMN pool_name TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE jobs ADD COLUMN accepted_at INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN started_ms INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN ended_ms INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN node TEXT;"
	"CREATE TABLE submit_keys (key TEXT PRIMARY KEY, first INTEGER NOT NULL,"
	" count INTEGER NOT NULL, request INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE job_logs (seq INTEGER PRIMARY KEY, job INTEGER NOT NULL,"
	" at INTEGER NOT NULL, level INTEGER NOT NULL, line TEXT NOT NULL);"
	"CREATE INDEX job_logs_by_job ON job_logs (job);";

#define JOB_COLUMNS                                                                             \
	"id, grp, instance, state, cause, cause_detail, alone, attempts, reruns, runs, flags, " \
	"host_deaths, input, result, accepted_at, started_ms, ended_ms, node"
_Static_assert(_JOB_STATE_MAX == 7, "put_counts names a column per state");
_Static_assert(JOB_QUEUED == 0 && CAUSE_NONE == 0, "put_fresh writes a queued job as 0s");
#define GROUP_COLUMNS                                                                   \
	"id, name, pool, run, kind, args, inputs, spool, output, count, timeout_us, "   \
	"max_attempts, expect, adhoc, def_hash, total, queued, running, done, failed, " \
	"crashed, timed_out, cancelled, pool_name"

static int prepare(struct sq *s, sqlite3_stmt **q, const char *sql)
{
	int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, q, NULL);

	return rc == SQLITE_OK ? 0 : sq_fail_db(s, rc, "read the schema");
}

static int pragma_int(struct sq *s, const char *sql, int64_t *ret)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);

	if (rc == SQLITE_OK) {
		rc = sqlite3_step(q);
		if (rc == SQLITE_ROW) {
			*ret = sqlite3_column_int64(q, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(q);
	return rc == SQLITE_OK ? 0 : sq_fail_db(s, rc, "read its header");
}

/* The open errno as a store error: the file or its directory cannot be used. */
static int fail_errno(struct sq *s, int err, const char *doing)
{
	return sq_fail(s, -err, "cannot %s: %s", doing, strerror(err));
}

/*
 * A new store at s->path: the schema is written under a temporary name (rollback journal, so
 * that closing it leaves one complete file), then renamed into place and its directory synced.
 */
static int create_file(struct sq *s)
{
	size_t len = strlen(s->path) + 16;
	char *tmp = malloc(len), *dir, *slash;
	sqlite3 *db = NULL;
	int fd, r = 0, rc;

	if (!tmp)
		return -ENOMEM;
	snprintf(tmp, len, "%s.new-XXXXXX", s->path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = fail_errno(s, errno, "create it");
		free(tmp);
		return r;
	}
	close(fd);
	rc = sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL; BEGIN;",
				  NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, schema_v1, NULL, NULL, NULL);
	if (rc == SQLITE_OK) {
		char sql[96];

		snprintf(sql, sizeof(sql),
			 "PRAGMA application_id=%d; PRAGMA user_version=1; COMMIT;",
			 STORE_SQLITE_APP_ID);
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK)
		r = sq_fail(s, sq_errno_of(rc), "cannot create it: %s",
			    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	if (sqlite3_close(db) != SQLITE_OK && r == 0)
		r = sq_fail(s, -EIO, "cannot create it: closing failed");
	if (r == 0 && rename(tmp, s->path) < 0)
		r = fail_errno(s, errno, "create it");
	if (r < 0)
		unlink(tmp);
	dir = strdup(s->path);
	if (r == 0 && dir) {
		slash = strrchr(dir, '/');
		if (slash)
			*(slash == dir ? slash + 1 : slash) = '\0';
		fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			if (fsync(fd) < 0)
				r = fail_errno(s, errno, "create it (sync its directory)");
			close(fd);
		}
	}
	free(dir);
	free(tmp);
	return r;
}

/* v1 -> v2: groups were kept by pool index, of the config the file was made with. */
static int migrate_to_v2(struct sq *s)
{
	sqlite3_stmt *q;
	int r = sq_exec(s, migrate_v2, "migrate it to schema version 2");

	if (r < 0)
		return r;
	r = prepare(s, &q, "UPDATE groups SET pool_name = ? WHERE pool = ?");
	for (unsigned i = 0; r >= 0 && i < s->n_pools; i++) {
		sqlite3_bind_text(q, 1, s->pools[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, i);
		if (sqlite3_step(q) != SQLITE_DONE)
			r = sq_fail_db(s, sqlite3_errcode(s->db), "migrate it to schema version 2");
		sqlite3_reset(q);
	}
	sqlite3_finalize(q);
	return r;
}

/* From `version` to STORE_SQLITE_VERSION, in one transaction: all of it or nothing. */
static int migrate(struct sq *s, int64_t version)
{
	char sql[64];
	int r = sq_exec(s, "BEGIN IMMEDIATE", "migrate it");

	if (r >= 0 && version < 2)
		r = migrate_to_v2(s);
	if (r >= 0) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d; COMMIT", STORE_SQLITE_VERSION);
		r = sq_exec(s, sql, "migrate it");
	}
	if (r < 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

static int open_db(struct sq *s)
{
	struct stat st;
	int64_t app_id, version, n_tables;
	int rc, r;

	if (stat(s->path, &st) < 0) {
		if (errno != ENOENT)
			return fail_errno(s, errno, "open it");
		r = create_file(s);
		if (r < 0)
			return r;
	} else if (!S_ISREG(st.st_mode)) {
		return sq_fail(s, -EBADMSG, "not a regular file");
	} else if (st.st_size == 0) {
		return sq_fail(s, -EBADMSG,
			       "damaged: the file is empty (a store never is once made)");
	}
	rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		return sq_fail_db(s, rc, "open it");
	sqlite3_extended_result_codes(s->db, 1);
	/* SQLite falls back to reading a file it may not write: a store must be writable. */
	if (sqlite3_db_readonly(s->db, "main") == 1 || access(s->path, W_OK) < 0) {
		struct statvfs vfs;

		if (statvfs(s->path, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
			return sq_fail(s, -EROFS, "cannot open it: Read-only file system");
		return sq_fail(s, -EACCES, "cannot open it for writing: Permission denied");
	}
	/* Ours alone while it is open: a second master on one file would lose jobs. */
	r = sq_exec(s, "PRAGMA locking_mode=EXCLUSIVE", "lock it");
	if (r >= 0)
		r = pragma_int(s, "PRAGMA application_id", &app_id);
	if (r >= 0)
		r = pragma_int(s, "PRAGMA user_version", &version);
	if (r >= 0)
		r = pragma_int(s, "SELECT count(*) FROM sqlite_master", &n_tables);
	if (r < 0)
		return r;
	if (app_id != STORE_SQLITE_APP_ID)
		return sq_fail(s, -EBADMSG,
			       "not a bulkhead store (application_id %#" PRIx64 ", %d tables)",
			       (uint64_t)app_id, (int)n_tables);
	if (version > STORE_SQLITE_VERSION)
		return sq_fail(s, -EPROTO,
			       "written by a newer bulkhead (schema version %" PRId64
			       "; this one knows up to %d): upgrade bulkhead, or point store= "
			       "at another file",
			       version, STORE_SQLITE_VERSION);
	if (version < 1)
		return sq_fail(s, -EBADMSG, "damaged: schema version %" PRId64, version);
	r = sq_exec(s, "PRAGMA journal_mode=WAL", "switch it to WAL");
	if (r >= 0)
		r = sq_exec(s, "PRAGMA synchronous=FULL", "set synchronous=FULL");
	/* A big write (a submit of 100 000) grows the WAL; after the checkpoint that follows it
	 * goes back to this size, so the files do not keep the high-water mark for good. */
	if (r >= 0)
		r = sq_exec(s, "PRAGMA journal_size_limit=4194304", "limit its WAL");
	/* Take the write lock now: another process holding it is found here, not later. */
	if (r >= 0)
		r = sq_exec(s, "BEGIN IMMEDIATE; COMMIT", "lock it");
	if (r >= 0 && version < STORE_SQLITE_VERSION)
		r = migrate(s, version);
	return r;
}

static int prepare_all(struct sq *s)
{
	/* New jobs are inserted; a job written before is updated in place (an upsert would
	 * look for the row twice). */
	int r = prepare(s, &s->put_job,
			"INSERT INTO jobs (" JOB_COLUMNS ") VALUES "
			"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");

	if (r >= 0)
		r = prepare(s, &s->put_fresh,
			    "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n "
			    "WHERE x + 1 < ?2) "
			    "INSERT INTO jobs (" JOB_COLUMNS ") SELECT ?1 + x, ?3, ?4 + x, 0, 0, 0, "
			    "0, 0, 0, 0, ?5, 0, NULL, NULL, ?6, 0, 0, NULL FROM n");
	if (r >= 0)
		r = prepare(s, &s->upd_job,
			    "UPDATE jobs SET state = ?4, cause = ?5, cause_detail = ?6, alone = ?7, "
			    "attempts = ?8, reruns = ?9, runs = ?10, flags = ?11, "
			    "host_deaths = ?12, input = ?13, result = ?14, started_ms = ?16, "
			    "ended_ms = ?17, node = ?18 WHERE id = ?1");

	if (r >= 0)
		r = prepare(
			s, &s->put_group,
			"INSERT OR REPLACE INTO groups (" GROUP_COLUMNS ") VALUES "
			"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
	if (r >= 0)
		r = prepare(s, &s->put_counts,
			    "UPDATE groups SET total = ?2, queued = ?3, running = ?4, done = ?5, "
			    "failed = ?6, crashed = ?7, timed_out = ?8, cancelled = ?9 WHERE id = ?1");
	if (r >= 0)
		r = prepare(s, &s->del_group, "DELETE FROM groups WHERE id = ?");
	if (r >= 0)
		r = prepare(s, &s->put_input,
			    "INSERT INTO group_inputs (grp, i, path) VALUES (?, ?, ?)");
	if (r >= 0)
		r = prepare(s, &s->del_inputs, "DELETE FROM group_inputs WHERE grp = ?");
	if (r >= 0)
		r = prepare(s, &s->put_meta,
			    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
	if (r >= 0)
		r = prepare(s, &s->del_forgotten, "DELETE FROM jobs WHERE id < ?");
	if (r >= 0)
		r = prepare(s, &s->put_key,
			    "INSERT OR REPLACE INTO submit_keys (key, first, count, request) "
			    "VALUES (?, ?, ?, ?)");
	if (r >= 0)
		r = prepare(s, &s->del_keys, "DELETE FROM submit_keys WHERE first < ?");
	if (r >= 0)
		r = prepare(s, &s->put_log,
			    "INSERT INTO job_logs (job, at, level, line) VALUES (?, ?, ?, ?)");
	if (r >= 0)
		r = prepare(s, &s->del_logs, "DELETE FROM job_logs WHERE job < ?");
	if (r >= 0)
		r = prepare(s, &s->get_logs,
			    "SELECT job, at, level, line FROM job_logs WHERE job BETWEEN ? AND ? "
			    "ORDER BY seq DESC");
	return r;
}

/* ---- loading ---- */

static int load_meta(struct sq *s, uint64_t *v)
{
	sqlite3_stmt *q;
	bool seen[META_N] = { false };
	int rc, r = prepare(s, &q, "SELECT key, value FROM meta");

	if (r < 0)
		return r;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(q, 0);
		int64_t value = sqlite3_column_int64(q, 1);

		for (int k = 0; key && k < META_N; k++) {
			if (strcmp(key, sq_meta_keys[k]) != 0)
				continue;
			if (value < 0) {
				sqlite3_finalize(q);
				return sq_fail(s, -EBADMSG, "damaged: counter %s is %" PRId64, key,
					       value);
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
		if (!seen[k] && v[META_N_JOBS] + seen[META_N_JOBS] > 0)
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
 * every job of g has ended; a group with jobs still to run there stops the start instead, as
 * cancelling them would be the start deciding what a reload decides.
 */
static int group_pool(struct sq *s, struct group_config *g, const struct group_counts *c,
		      const char *pool_name)
{
	uint64_t unfinished = 0;
	char **p;

	for (unsigned i = 0; pool_name && i < s->n_pools; i++)
		if (strcmp(pool_name, s->pools[i]) == 0) {
			g->pool = i;
			return 0;
		}
	for (int k = 0; k < _JOB_STATE_MAX; k++)
		if (!job_state_is_final((enum job_state)k))
			unfinished += c->by_state[k];
	if (!pool_name || !*pool_name || unfinished > 0)
		return sq_fail(s, -ENXIO,
			       "job group %s (%" PRIu64 " jobs, %" PRIu64
			       " not ended) runs in pool %s, which the config does not have: "
			       "define [pool %s] again",
			       g->name, c->total, unfinished, pool_name ? pool_name : "?",
			       pool_name ? pool_name : "?");
	p = realloc(s->pools, (s->n_pools + 2) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	s->pools = p;
	p[s->n_pools] = strdup(pool_name);
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
	const char *pool_name = (const char *)sqlite3_column_text(q, 16 + _JOB_STATE_MAX);
	const char *name = (const char *)sqlite3_column_text(q, 1);
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
		c->by_state[k] = (uint64_t)n;
		sum += (uint64_t)n;
	}
	if (sum != c->total)
		return sq_fail(s, -EBADMSG,
			       "damaged: group %s: its counts add up to %" PRIu64 ", not %" PRIu64,
			       name, sum, c->total);
	(void)pool; /* the index in the config of the last writer; the name is what counts */
	r = group_pool(s, g, c, pool_name);
	if (r < 0)
		return r;
	g->run = column_dup(q, 3);
	g->args = column_dup(q, 5);
	g->inputs = column_dup(q, 6);
	g->spool = column_dup(q, 7);
	g->output = column_dup(q, 8);
	if (!g->run || !g->args || !g->inputs || !g->spool || !g->output)
		return -ENOMEM;
	return 0;
}

static int load_groups(struct sq *s)
{
	sqlite3_stmt *q = NULL, *qi = NULL;
	int rc, r = prepare(s, &q, "SELECT " GROUP_COLUMNS " FROM groups ORDER BY id");

	if (r >= 0)
		r = prepare(s, &qi, "SELECT i, path FROM group_inputs WHERE grp = ? ORDER BY i");
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
		if (r >= 0)
			s->in_file[index] = true;
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

static int load_jobs(struct sq *s, uint64_t first)
{
	sqlite3_stmt *q;
	int rc, r = prepare(s, &q, "SELECT " JOB_COLUMNS " FROM jobs ORDER BY id");
	uint64_t next = first;

	while (r >= 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t v[12];
		const char *node;
		struct job j;

		for (int i = 0; i < 12; i++)
			v[i] = sqlite3_column_int64(q, i);
		if (v[0] != (int64_t)next) {
			r = sq_fail(s, -EBADMSG,
				    "damaged: job %" PRIu64 " is missing (next: %" PRId64 ")", next,
				    v[0]);
			break;
		}
		if (v[1] < 0 || v[1] >= INT_MAX || v[2] < 1 || v[2] > UINT32_MAX || v[3] < 0 ||
		    v[3] >= _JOB_STATE_MAX || v[4] < 0 || v[4] > UINT8_MAX || v[6] < 0 ||
		    v[6] > 1 || v[7] < 0 || v[7] > UINT8_MAX || v[8] < 0 || v[8] > UINT16_MAX ||
		    v[9] < 0 || v[9] > UINT16_MAX || v[10] < 0 ||
		    v[10] > (JOB_HAS_INPUT | JOB_CANCEL_REQUESTED | JOB_ADHOC) || v[11] < 0 ||
		    v[11] > UINT8_MAX || sqlite3_column_int64(q, 14) < 0 ||
		    sqlite3_column_int64(q, 15) < 0 || sqlite3_column_int64(q, 15) > UINT32_MAX ||
		    sqlite3_column_int64(q, 16) < 0 || sqlite3_column_int64(q, 16) > UINT32_MAX) {
			r = sq_fail(s, -EBADMSG,
				    "damaged: job %" PRIu64 ": a value is out of range", next);
			break;
		}
		j = (struct job){ .id = next,
				  .group = (uint32_t)v[1],
				  .instance = (uint32_t)v[2],
				  .state = (uint8_t)v[3],
				  .cause = (uint8_t)v[4],
				  .cause_detail = (int32_t)v[5],
				  .alone = (uint8_t)v[6],
				  .attempts = (uint8_t)v[7],
				  .reruns = (uint16_t)v[8],
				  .runs = (uint16_t)v[9],
				  .flags = (uint8_t)v[10],
				  .host_deaths = (uint8_t)v[11],
				  .accepted_at = sqlite3_column_int64(q, 14),
				  .started_ms = (uint32_t)sqlite3_column_int64(q, 15),
				  .ended_ms = (uint32_t)sqlite3_column_int64(q, 16) };
		node = (const char *)sqlite3_column_text(q, 17);
		if (node && !(j.node = s->m->node_index(s->mem, node))) {
			r = -ENOMEM; /* or more than 65 534 node names: as good as */
			break;
		}
		r = mem_restore_job(s->mem, &j, (enum job_state)j.state,
				    (const char *)sqlite3_column_text(q, 12),
				    (const char *)sqlite3_column_text(q, 13));
		if (r == -EINVAL)
			r = sq_fail(s, -EBADMSG,
				    "damaged: job %" PRIu64 " names group %" PRId64
				    ", which is not in the file",
				    next, v[1]);
		if (r >= 0 && j.state == JOB_RUNNING)
			r = add_orphan(s, s->m->job(s->mem, next));
		next++;
	}
	if (r >= 0 && rc != SQLITE_DONE)
		r = sq_fail_db(s, rc, "read its jobs");
	sqlite3_finalize(q);
	return r;
}

/* The keys of the submissions kept (their first job is). */
static int load_keys(struct sq *s)
{
	sqlite3_stmt *q;
	int rc, r = prepare(s, &q, "SELECT key, first, count, request FROM submit_keys");

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

static int load(struct sq *s)
{
	uint64_t v[META_N] = { 0 }, sum = 0;
	struct ledger_stats st = { 0 };
	int r = load_meta(s, v);

	if (r >= 0)
		r = load_groups(s);
	if (r < 0)
		return r;
	if (v[META_FORGOTTEN] > v[META_N_JOBS] || v[META_FORGOTTEN] % JOB_CHUNK != 0)
		return sq_fail(s, -EBADMSG, "damaged: %" PRIu64 " of %" PRIu64 " jobs forgotten",
			       v[META_FORGOTTEN], v[META_N_JOBS]);
	r = mem_restore_forgotten(s->mem, v[META_FORGOTTEN]);
	if (r >= 0)
		r = load_jobs(s, v[META_FORGOTTEN] + 1);
	if (r < 0)
		return r;
	if (s->m->n_jobs(s->mem) != v[META_N_JOBS])
		return sq_fail(s, -EBADMSG,
			       "damaged: its counters say %" PRIu64 " jobs, it holds %" PRIu64,
			       v[META_N_JOBS], s->m->n_jobs(s->mem));
	st.runs = v[META_RUNS];
	st.reruns_bystander = v[META_RERUNS_BYSTANDER];
	st.reruns_suspect = v[META_RERUNS_SUSPECT];
	st.culprits = v[META_CULPRITS];
	st.host_deaths = v[META_HOST_DEATHS];
	for (int k = 0; k < _JOB_STATE_MAX; k++)
		sum += st.by_state[k] = v[META_BY_STATE + k];
	if (sum != v[META_N_JOBS])
		return sq_fail(s, -EBADMSG,
			       "damaged: its counts by state add up to %" PRIu64 ", not %" PRIu64,
			       sum, v[META_N_JOBS]);
	mem_restore_stats(s->mem, &st, v[META_VARIANTS_MADE]);
	r = load_keys(s);
	if (r < 0)
		return r;
	s->new_from = v[META_N_JOBS] + 1;
	s->in_file_to = v[META_N_JOBS];
	s->kept_from = v[META_FORGOTTEN] + 1;
	return 0;
}

int store_sqlite_open(const char *path, const char *const *pools, unsigned n_pools,
		      struct store **ret, char **ret_error)
{
	struct sq *s = calloc(1, sizeof(*s));
	int r;

	*ret_error = NULL;
	if (!s)
		return -ENOMEM;
	s->base.ops = &store_sqlite_ops;
	s->pending_logs.max = STORE_LOGS_BYTES;
	s->path = strdup(path);
	r = s->path ? store_memory_new(n_pools, &s->mem) : -ENOMEM;
	if (r >= 0)
		r = sq_set_pool_names(s, n_pools, pools);
	if (r >= 0) {
		s->m = s->mem->ops;
		r = open_db(s);
	}
	if (r >= 0)
		r = prepare_all(s);
	if (r >= 0)
		r = load(s);
	if (r < 0) {
		if (r == -ENOMEM && !s->error[0])
			sq_fail(s, r, "out of memory");
		*ret_error = strdup(s->error[0] ? s->error : path);
		sq_free(&s->base);
		return r;
	}
	*ret = &s->base;
	return 0;
}
