/* SPDX-License-Identifier: MIT */
/*
 * Opening the SQLite store (store-sqlite.h): a new file is made whole under a temporary name
 * and renamed into place, so a file at the path was a complete store once, and one found empty
 * or short is damage, never a fresh start. An existing file must say it is a bulkhead store
 * (application_id) of a schema this build knows (user_version), and everything in it is
 * loaded into the memory store and checked on the way (store-sqlite-load.c): the first thing
 * that does not add up refuses the store, naming the row.
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

const char *const sq_meta_keys[META_N] = {
	[META_FORGOTTEN] = "forgotten",
	[META_VARIANTS_MADE] = "variants_made",
	[META_RERUNS_BYSTANDER] = "reruns_bystander",
	[META_RERUNS_SUSPECT] = "reruns_suspect",
	[META_CULPRITS] = "culprits",
	[META_HOST_DEATHS] = "host_deaths",
	[META_FORGOTTEN_RUNS] = "forgotten_runs",
	[META_FORGOTTEN_BY_STATE + JOB_QUEUED] = "forgotten_queued",
	[META_FORGOTTEN_BY_STATE + JOB_RUNNING] = "forgotten_running",
	[META_FORGOTTEN_BY_STATE + JOB_DONE] = "forgotten_done",
	[META_FORGOTTEN_BY_STATE + JOB_FAILED] = "forgotten_failed",
	[META_FORGOTTEN_BY_STATE + JOB_CRASHED] = "forgotten_crashed",
	[META_FORGOTTEN_BY_STATE + JOB_TIMED_OUT] = "forgotten_timed_out",
	[META_FORGOTTEN_BY_STATE + JOB_CANCELLED] = "forgotten_cancelled",
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

/*
 * v3: a group's exec settings and retry_delay (issue 16), as config_group_exec_format()
 * writes them: "" for the defaults, which every group of an older file has.
 */
static const char migrate_v3[] = "ALTER TABLE groups ADD COLUMN exec TEXT NOT NULL DEFAULT '';";

/*
 * v4: a job's row in two (store-sqlite-int.h): jobs keeps what is written once, job_states
 * what changes, its small counters and flags packed in one integer. The end of a job is then
 * a narrow row of its own instead of an update of 18 columns (bench/README.md, "Issue 13,
 * fourth session"), and a run of jobs accepted together one row of job_runs. Every job of an
 * older file keeps its row in jobs and gets its state row as it was; a counter out
 * of range packs to -1, which the load refuses as damage as it did the column (SQL's << and |
 * are of one precedence, left to right: hence the parentheses). The view job_rows shows the
 * two as the one row they were, for people and tests reading the file.
 */
#define V3_COUNTER_OK(c, max) "(" c " BETWEEN 0 AND " #max ")"
static const char migrate_v4[] =
	"CREATE TABLE job_states (id INTEGER PRIMARY KEY, state INTEGER NOT NULL,"
	" cause INTEGER NOT NULL, cause_detail INTEGER NOT NULL, counters INTEGER NOT NULL,"
	" started_ms INTEGER NOT NULL, ended_ms INTEGER NOT NULL, node TEXT, result TEXT,"
	" input TEXT);"
	"INSERT INTO job_states (" JOB_STATE_COLUMNS ") SELECT id, state, cause, cause_detail,"
	" CASE WHEN " V3_COUNTER_OK("attempts", 255) " AND " V3_COUNTER_OK("reruns", 65535)
	" AND " V3_COUNTER_OK("runs", 65535) " AND " V3_COUNTER_OK("host_deaths", 255)
	" AND " V3_COUNTER_OK("alone", 1) " AND " V3_COUNTER_OK("flags", 31)
	" THEN attempts | (reruns << 8) | (runs << 24) | (host_deaths << 40) | (alone << 48)"
	" | (flags << 49)"
	" ELSE -1 END, started_ms, ended_ms, node, result, input FROM jobs;"
	"CREATE TABLE jobs_v4 (id INTEGER PRIMARY KEY, grp INTEGER NOT NULL,"
	" instance INTEGER NOT NULL, flags INTEGER NOT NULL, accepted_at INTEGER NOT NULL,"
	" input TEXT);"
	"INSERT INTO jobs_v4 (" JOB_COLUMNS ") SELECT " JOB_COLUMNS " FROM jobs;"
	"DROP TABLE jobs;"
	"ALTER TABLE jobs_v4 RENAME TO jobs;"
	"CREATE TABLE job_runs (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, grp INTEGER NOT NULL,"
	" instance INTEGER NOT NULL, flags INTEGER NOT NULL, accepted_at INTEGER NOT NULL);"
	"CREATE VIEW job_rows AS WITH RECURSIVE r(id, grp, instance, flags, accepted_at, last) AS"
	" (SELECT id, grp, instance, flags, accepted_at, id + n - 1 FROM job_runs UNION ALL"
	" SELECT id + 1, grp, instance + 1, flags, accepted_at, last FROM r WHERE id < last),"
	" j(id, grp, instance, flags, accepted_at, input) AS (SELECT id, grp, instance, flags,"
	" accepted_at, NULL FROM r UNION ALL SELECT " JOB_COLUMNS " FROM jobs)"
	" SELECT j.id AS id, grp, instance, coalesce(state, 0) AS state,"
	" coalesce(cause, 0) AS cause, coalesce(cause_detail, 0) AS cause_detail,"
	" coalesce(counters >> 48 & 1, 0) AS alone, coalesce(counters & 255, 0) AS attempts,"
	" coalesce(counters >> 8 & 65535, 0) AS reruns, coalesce(counters >> 24 & 65535, 0) AS runs,"
	" coalesce(counters >> 49 & 31, j.flags) AS flags,"
	" coalesce(counters >> 40 & 255, 0) AS host_deaths, coalesce(s.input, j.input) AS input,"
	" result, accepted_at,"
	" coalesce(started_ms, 0) AS started_ms, coalesce(ended_ms, 0) AS ended_ms, node"
	" FROM j LEFT JOIN job_states s ON s.id = j.id;";

/*
 * v5: the counts a commit wrote for every job that moved (the store's by state, its runs and
 * its jobs' number in meta; each group's by state in its row) are counted from the jobs'
 * rows at the load instead; what the file keeps is what the jobs forgotten by retention
 * counted for, written only when retention forgets some. A commit that adds a job and ends
 * another then writes two pages, not four (bench/README.md, "Issue 13, fifth session"). The
 * counts of a v4 file less those of the jobs it holds are those of the jobs it forgot (the
 * runs at least 0: a job row's damaged counters, refused at the load, are no reason to refuse
 * the counter first).
 */
#define V5_FORGOTTEN(col, state)                                                           \
	"ALTER TABLE groups RENAME COLUMN " col " TO forgotten_" col ";"                       \
	"UPDATE groups SET forgotten_" col " = forgotten_" col " - coalesce((SELECT n FROM"    \
	" v5_kept k WHERE k.grp = groups.id AND k.state = " #state "), 0);"                    \
	"UPDATE meta SET key = 'forgotten_" col "', value = value - coalesce((SELECT sum(n)"   \
	" FROM v5_kept WHERE state = " #state "), 0) WHERE key = '" col "';"
static const char migrate_v5[] =
	"CREATE TEMP TABLE v5_kept AS SELECT grp, state, count(*) AS n, sum(runs) AS runs"
	" FROM job_rows GROUP BY grp, state;"
	"ALTER TABLE groups RENAME COLUMN total TO forgotten_total;"
	"UPDATE groups SET forgotten_total = forgotten_total - coalesce((SELECT sum(n)"
	" FROM v5_kept k WHERE k.grp = groups.id), 0);"
	V5_FORGOTTEN("queued", 0) V5_FORGOTTEN("running", 1) V5_FORGOTTEN("done", 2)
	V5_FORGOTTEN("failed", 3) V5_FORGOTTEN("crashed", 4) V5_FORGOTTEN("timed_out", 5)
	V5_FORGOTTEN("cancelled", 6)
	"UPDATE meta SET key = 'forgotten_runs', value = max(value - coalesce((SELECT"
	" sum(runs) FROM v5_kept), 0), 0) WHERE key = 'runs';"
	"DELETE FROM meta WHERE key = 'n_jobs';"
	"DROP TABLE v5_kept;";

_Static_assert(_JOB_STATE_MAX == 7, "put_counts names a column per state");
_Static_assert(JOB_QUEUED == 0 && CAUSE_NONE == 0, "no state row: queued, no cause (job_rows)");
_Static_assert(JOB_RUNNING == 1 && JOB_DONE == 2 && JOB_FAILED == 3 && JOB_CRASHED == 4 &&
		       JOB_TIMED_OUT == 5 && JOB_CANCELLED == 6,
	       "migrate_v5 names the states by number");

int sq_prepare(struct sq *s, sqlite3_stmt **q, const char *sql)
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
	r = sq_prepare(s, &q, "UPDATE groups SET pool_name = ? WHERE pool = ?");
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
	if (r >= 0 && version < 3)
		r = sq_exec(s, migrate_v3, "migrate it to schema version 3");
	if (r >= 0 && version < 4)
		r = sq_exec(s, migrate_v4, "migrate it to schema version 4");
	if (r >= 0 && version < 5)
		r = sq_exec(s, migrate_v5, "migrate it to schema version 5");
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
	/* A new job's row, once; its state's when it has moved, replaced at each change (an
	 * upsert would look for the row twice; an update reads it first). */
	int r = sq_prepare(s, &s->put_job,
			   "INSERT INTO jobs (" JOB_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?)");

	if (r >= 0)
		r = sq_prepare(s, &s->put_fresh,
			    "INSERT INTO job_runs (" JOB_RUN_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?)");
	if (r >= 0)
		r = sq_prepare(s, &s->put_state,
			    "INSERT OR REPLACE INTO job_states (" JOB_STATE_COLUMNS ") VALUES "
			    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");

	if (r >= 0)
		r = sq_prepare(
			s, &s->put_group,
			"INSERT OR REPLACE INTO groups (" GROUP_COLUMNS ") VALUES "
			"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
	if (r >= 0)
		r = sq_prepare(s, &s->put_counts,
			    "UPDATE groups SET forgotten_total = ?2, forgotten_queued = ?3, "
			    "forgotten_running = ?4, forgotten_done = ?5, forgotten_failed = ?6, "
			    "forgotten_crashed = ?7, forgotten_timed_out = ?8, "
			    "forgotten_cancelled = ?9 WHERE id = ?1");
	if (r >= 0)
		r = sq_prepare(s, &s->del_group, "DELETE FROM groups WHERE id = ?");
	if (r >= 0)
		r = sq_prepare(s, &s->put_input,
			    "INSERT INTO group_inputs (grp, i, path) VALUES (?, ?, ?)");
	if (r >= 0)
		r = sq_prepare(s, &s->del_inputs, "DELETE FROM group_inputs WHERE grp = ?");
	if (r >= 0)
		r = sq_prepare(s, &s->put_meta,
			    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
	if (r >= 0)
		r = sq_prepare(s, &s->del_forgotten, "DELETE FROM jobs WHERE id < ?");
	if (r >= 0)
		r = sq_prepare(s, &s->del_states, "DELETE FROM job_states WHERE id < ?");
	if (r >= 0)
		r = sq_prepare(s, &s->del_runs, "DELETE FROM job_runs WHERE id + n <= ?");
	/* A run the forgotten end in the middle of: what is kept of it (after del_runs). */
	if (r >= 0)
		r = sq_prepare(s, &s->cut_runs,
			    "UPDATE job_runs SET n = n - (?1 - id), instance = instance + (?1 - id), "
			    "id = ?1 WHERE id < ?1");
	if (r >= 0)
		r = sq_prepare(s, &s->put_key,
			    "INSERT OR REPLACE INTO submit_keys (key, first, count, request) "
			    "VALUES (?, ?, ?, ?)");
	if (r >= 0)
		r = sq_prepare(s, &s->del_keys, "DELETE FROM submit_keys WHERE first < ?");
	if (r >= 0)
		r = sq_prepare(s, &s->put_log,
			    "INSERT INTO job_logs (job, at, level, line) VALUES (?, ?, ?, ?)");
	if (r >= 0)
		r = sq_prepare(s, &s->del_logs, "DELETE FROM job_logs WHERE job < ?");
	if (r >= 0)
		r = sq_prepare(s, &s->get_logs,
			    "SELECT job, at, level, line FROM job_logs WHERE job BETWEEN ? AND ? "
			    "ORDER BY seq DESC");
	/* A flush's own: sqlite3_exec() parsed them again each time. */
	if (r >= 0)
		r = sq_prepare(s, &s->begin, "BEGIN IMMEDIATE");
	if (r >= 0)
		r = sq_prepare(s, &s->commit, "COMMIT");
	return r;
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
		r = sq_load(s);
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
