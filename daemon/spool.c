/* SPDX-License-Identifier: MIT */
/*
 * Spool directories (see spool.h): the files of DIR become jobs of one group, and each file
 * moves once its job has ended.
 *
 * The files in flight (their jobs queued or running) are a sorted array of names, bounded by
 * SPOOL_FILES_MAX when DIR is watched (bulkheadd), else by SPOOL_RUN_FILES_MAX: a one-shot run
 * takes every file present at start at once, since it ends when its jobs have. Each entry
 * keeps the id of its job, so the master's on_job_end hook finds the entry from the job's input, and
 * the inode the file had when it was taken, so a file replaced under a running job is noticed
 * (and logged; it is moved as it is: a file is known by its name). Beyond the bound, files
 * wait in DIR; when the files in flight have fallen to half of it, DIR is scanned again.
 *
 * The master never waits on a spool. The end hook renames one file (done/, failed/ and
 * quarantine/ are inside DIR, so on the same file system: no data is copied) and adds nothing
 * (the master forbids it there); jobs are added from inotify events and from a deferred
 * rescan. DIR is read in full only at start, after an inotify queue overflow, and for the
 * backlog above. A scan keeps the smallest names only (a bounded heap), so a huge DIR costs
 * no more memory than the bound.
 *
 * A spool belongs to whoever started it; it subscribes to the master's job ends and
 * sources in its event loop, so it is freed after master_run and before master_free.
 *
 * This file: the life cycle of a spool (spool_new, spool_free), what it does when a job has
 * ended (on_job_end moves the file), and every spool of a config (spools_start)
 * with what a reload changes: all that the spools subscribe to in the master is here. The
 * files in flight, the scans of DIR and its inotify watch are spool-scan.c's.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/protocol.h"
#include "daemon/spool-internal.h"
#include "daemon/spool.h"

static const char *const subdirs[] = { "done", "failed", "quarantine" };

struct spools {
	struct master *m;
	struct spool **v;
	unsigned n;
	bool subscribed; /* to the master's reloads (daemon) */
};

/* ---- jobs that ended ---- */

/* The file of job j is now at path: views and reports show it there. */
static void moved(struct spool *s, const struct master_job *j, const char *path)
{
	int r = master_move_job_input(s->m, j->id, path);

	if (r < 0)
		log_debug("job group %s: job %" PRIu64 " keeps its old input path: %s", gname(s),
			  j->id, strerror(-r));
}

/*
 * rename(2) that never replaces: a file of the same name already in the subdirectory (an
 * earlier file of that name) keeps its place, and this one gets ".JOBID" appended (job ids
 * are unique). Returns 0 with the path used in dst, or -errno.
 */
static int rename_keep(const char *src, char *dst, size_t size, uint64_t job)
{
	size_t len = strlen(dst);

	if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (snprintf(dst + len, size - len, ".%" PRIu64, job) >= (int)(size - len))
		return -ENAMETOOLONG;
	return renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) == 0 ? 0 : -errno;
}

static void move_file(struct spool *s, const struct master_job *j, const char *name,
		      const struct spool_file *f, const char *sub)
{
	char src[PATH_MAX], dst[PATH_MAX];
	struct stat st;
	int r;

	snprintf(src, sizeof(src), "%s/%s", s->dir, name);
	snprintf(dst, sizeof(dst), "%s/%s/%s", s->dir, sub, name);
	if (stat(src, &st) < 0) {
		log_warning_errno(-errno, "job group %s: cannot move %s to %s/", gname(s), src,
				  sub);
		return;
	}
	if (f && (st.st_dev != f->dev || st.st_ino != f->ino))
		log_warning("job group %s: %s was replaced while its job ran; moving it to %s/ as "
			    "it is",
			    gname(s), src, sub);
	r = rename_keep(src, dst, sizeof(dst), j->id);
	if (r == -ENOENT) {
		char d[PATH_MAX];

		/* The subdirectory went away: make it again. */
		snprintf(d, sizeof(d), "%s/%s", s->dir, sub);
		if (mkdir(d, 0755) == 0 || errno == EEXIST)
			r = rename_keep(src, dst, sizeof(dst), j->id);
	}
	if (r == 0) {
		moved(s, j, dst);
		return;
	}
	log_error_errno(r, "job group %s: cannot move %s to %s/", gname(s), src, sub);
}

void spool_move_ended(struct spool *s, const struct master_job *j, const char *name,
		      const struct spool_file *f)
{
	switch (j->state) {
	case JOB_DONE:
		move_file(s, j, name, f, "done");
		break;
	case JOB_FAILED:
		move_file(s, j, name, f, "failed");
		break;
	case JOB_CRASHED:
	case JOB_TIMED_OUT:
		move_file(s, j, name, f, "quarantine");
		break;
	default:
		/* cancelled: the file stays in DIR for the next start (or scan) */
		break;
	}
}

/* Moves f (in files at pos), whose job has ended, and forgets it. */
static void finish_file(struct spool *s, struct spool_file *f)
{
	struct master_job j;
	long pos = spool_find(s, f->name);

	if (pos >= 0 && s->files[pos] == f)
		spool_remove_at(s, (unsigned)pos);
	if (master_job(s->m, f->job, &j) >= 0)
		spool_move_ended(s, &j, f->name, f);
	free(f);
}

/*
 * The files of jobs whose ends were in the write that just succeeded (and, when the spool
 * goes, after the last one). Moved before that, a file whose job's end a crash then lost
 * would be run again without its input; moved after, a crash in between leaves an ended job
 * with its file still in DIR, which the next start moves (spool-scan.c's adopt()).
 */
static void finish_ended(struct spool *s)
{
	unsigned n = s->n_ending;

	s->n_ending = 0;
	for (unsigned i = 0; i < n; i++)
		finish_file(s, s->ending[i]);
	if (n > 0 && s->backlog && s->n_files <= s->max / 2 && spool_accepting(s))
		spool_arm_rescan(s);
}

static void on_flushed(void *userdata)
{
	finish_ended(userdata);
}

static void on_job_end(void *userdata, uint64_t id)
{
	struct spool *s = userdata;
	struct master_job view, *j = &view;
	struct spool_file *f;
	const char *input, *name;
	long pos;

	if (master_job(s->m, id, j) < 0 || j->group != s->group)
		return;
	input = j->input;
	if (!input)
		return;
	name = strrchr(input, '/');
	name = name ? name + 1 : input;
	pos = spool_find(s, name);
	if (pos < 0 || s->files[pos]->job != j->id || s->files[pos]->ended)
		return;
	f = s->files[pos];
	if (master_durable(s->m)) {
		/* Kept in files (a scan does not take it again) until the end is written. */
		if (s->n_ending == s->cap_ending) {
			unsigned cap = s->cap_ending ? 2 * s->cap_ending : 64;
			struct spool_file **v = realloc(s->ending, cap * sizeof(*v));

			if (v) {
				s->ending = v;
				s->cap_ending = cap;
			}
		}
		if (s->n_ending < s->cap_ending) {
			f->ended = true;
			s->ending[s->n_ending++] = f;
			return;
		}
		/* No room to wait: moved now, as without a store. */
	}
	spool_remove_at(s, (unsigned)pos);
	spool_move_ended(s, j, f->name, f);
	free(f);
	if (s->backlog && s->n_files <= s->max / 2 && spool_accepting(s))
		spool_arm_rescan(s);
}

static const struct master_hooks job_end_hooks = {
	.on_job_end = on_job_end,
	.on_flushed = on_flushed,
};

/* ---- life cycle ---- */

static int make_subdir(struct spool *s, const char *sub)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", s->dir, sub);
	if (mkdir(path, 0755) == 0)
		return 0;
	if (errno != EEXIST)
		return log_error_errno(-errno, "job group %s: cannot create %s", gname(s), path);
	if (stat(path, &st) < 0)
		return log_error_errno(-errno, "job group %s: cannot use %s", gname(s), path);
	if (!S_ISDIR(st.st_mode))
		return log_error_errno(-ENOTDIR, "job group %s: cannot use %s", gname(s), path);
	return 0;
}

int spool_new(struct master *m, unsigned group, bool watch_dir, struct spool **ret)
{
	struct master_group g;
	const struct group_config *gc = master_group(m, group, &g) ? g.cfg : NULL;
	struct spool *s;
	int r;

	assert(gc && gc->spool && gc->spool[0]);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->m = m;
	s->group = group;
	s->inotify_fd = -1;
	s->dir = strdup(gc->spool);
	s->max = watch_dir ? SPOOL_FILES_MAX : SPOOL_RUN_FILES_MAX;
	s->n_alloc = 64;
	s->files = calloc(s->n_alloc, sizeof(*s->files));
	if (!s->dir || !s->files) {
		r = -ENOMEM;
		goto fail;
	}
	/* DIR/quarantine/NAME must fit in PATH_MAX, and DIR/NAME in an INPUT frame. */
	if (strlen(s->dir) + sizeof("/quarantine/") + NAME_MAX > PATH_MAX ||
	    strlen(s->dir) + 1 + NAME_MAX > BH_INPUT_MAX) {
		r = log_error_errno(-ENAMETOOLONG, "job group %s: spool %s", gname(s), s->dir);
		goto fail;
	}
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		r = make_subdir(s, subdirs[i]);
		if (r < 0)
			goto fail;
	}
	r = master_subscribe(m, &job_end_hooks, s);
	if (r < 0)
		goto fail;
	s->hooked = true;
	r = spool_scan_start(s, watch_dir);
	if (r < 0)
		goto fail;
	log_info("job group %s: spool %s: %u file%s taken%s", gname(s), s->dir, s->n_files,
		 s->n_files == 1 ? "" : "s", watch_dir ? ", watching for more" : "");
	*ret = s;
	return 0;
fail:
	spool_free(s);
	return r;
}

void spool_free(struct spool *s)
{
	if (!s)
		return;
	if (s->hooked)
		master_unsubscribe(s->m, &job_end_hooks, s);
	/* After master_run(): its last write is done (or failed, and the run says so). */
	finish_ended(s);
	free(s->ending);
	sd_event_source_disable_unref(s->io);
	sd_event_source_disable_unref(s->rescan);
	if (s->inotify_fd >= 0)
		close(s->inotify_fd);
	for (unsigned i = 0; i < s->n_files; i++)
		free(s->files[i]);
	free(s->files);
	free(s->dir);
	free(s);
}

unsigned spool_in_flight(const struct spool *s)
{
	return s->n_files;
}

/* ---- every spool of a config ---- */

static const struct spool *find_spool(const struct spools *sp, const char *group)
{
	for (unsigned i = 0; i < sp->n; i++)
		if (strcmp(gname(sp->v[i]), group) == 0)
			return sp->v[i];
	return NULL;
}

static bool config_has_group(const struct config *c, const char *name)
{
	for (unsigned i = 0; i < c->n_groups; i++)
		if (strcmp(c->groups[i].name, name) == 0)
			return true;
	return false;
}

/*
 * A job group the reload added with `spool = DIR`: its spool starts now (the ledger's copy of
 * the group has DIR; a group that existed before keeps its old definition, see master_reload).
 * Returns true if it did.
 */
static bool start_added(struct spools *sp, const struct group_config *gc)
{
	int g = master_find_group(sp->m, gc->name);
	struct master_group mg;
	struct spool **v;

	if (g < 0 || !master_group(sp->m, (unsigned)g, &mg) || strcmp(mg.cfg->spool, gc->spool) != 0)
		return false;
	v = realloc(sp->v, (sp->n + 1) * sizeof(*v));
	if (!v) {
		log_error("job group %s: spool %s: out of memory: not started", gc->name, gc->spool);
		return true;
	}
	sp->v = v;
	/* spool_new() logs what went wrong (DIR missing, not a directory...). */
	if (spool_new(sp->m, (unsigned)g, true, &sp->v[sp->n]) >= 0)
		sp->n++;
	return true;
}

/*
 * A reload starts the spool of a group it added; it never moves or stops one, nor gives one
 * to a group that had none: say so where it would have.
 */
static void check_reload(struct spools *sp, const struct config *c)
{
	for (unsigned i = 0; i < c->n_groups; i++) {
		const struct group_config *gc = &c->groups[i];
		const struct spool *s = find_spool(sp, gc->name);

		if (gc->spool[0] && !s && start_added(sp, gc))
			continue;
		if (gc->spool[0] && !s)
			log_warning("job group %s: spool = %s: a reload does not add a spool to a "
				    "group that had none; it takes effect at the next start",
				    gc->name, gc->spool);
		else if (gc->spool[0] && strcmp(gc->spool, s->dir) != 0)
			log_warning(
				"job group %s: spool = %s: a reload does not move a spool; still "
				"spooling %s until the next start",
				gc->name, gc->spool, s->dir);
		else if (!gc->spool[0] && s)
			log_warning("job group %s: spool removed: a reload does not stop a spool; "
				    "still spooling %s until the next start",
				    gc->name, s->dir);
	}
	for (unsigned i = 0; i < sp->n; i++)
		if (!config_has_group(c, gname(sp->v[i])))
			log_warning("job group %s: not in the reloaded config: still spooling %s "
				    "until the next start",
				    gname(sp->v[i]), sp->v[i]->dir);
}

/* A reload that was applied: start, or say what waits for the next start. */
static void on_reloaded(void *userdata, bool ok)
{
	struct spools *sp = userdata;

	if (ok)
		check_reload(sp, master_config(sp->m));
}

static const struct master_hooks spool_hooks = {
	.on_reloaded = on_reloaded,
};

int spools_start(struct master *m, bool daemon, struct spools **ret)
{
	const struct config *c = master_config(m);
	struct spools *sp;
	int r = 0;

	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	sp->m = m;
	sp->v = calloc(c->n_groups ? c->n_groups : 1, sizeof(*sp->v));
	if (!sp->v) {
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < c->n_groups; i++) {
		int g;

		if (!c->groups[i].spool[0])
			continue;
		g = master_find_group(m, c->groups[i].name);
		if (g < 0) {
			r = log_error_errno(g, "job group %s: not in the ledger",
					    c->groups[i].name);
			goto fail;
		}
		r = spool_new(m, (unsigned)g, daemon, &sp->v[sp->n]);
		if (r < 0)
			goto fail;
		sp->n++;
	}
	if (daemon) {
		r = master_subscribe(m, &spool_hooks, sp);
		if (r < 0) {
			log_error_errno(r, "cannot watch for reloads of spools");
			goto fail;
		}
		sp->subscribed = true;
	}
	*ret = sp;
	return 0;
fail:
	spools_free(sp);
	return r;
}

void spools_free(struct spools *sp)
{
	if (!sp)
		return;
	if (sp->subscribed)
		master_unsubscribe(sp->m, &spool_hooks, sp);
	for (unsigned i = 0; i < sp->n; i++)
		spool_free(sp->v[i]);
	free(sp->v);
	free(sp);
}
