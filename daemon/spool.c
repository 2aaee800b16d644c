/* SPDX-License-Identifier: MIT */
/*
 * Spool directories (see spool.h): the files of DIR become jobs of one group, and each file
 * moves once its job has ended.
 *
 * The files in flight (their jobs queued or running) are a sorted array of names, bounded by
 * SPOOL_FILES_MAX when DIR is watched (bulkheadd), else by SPOOL_RUN_FILES_MAX: a one-shot run
 * takes every file present at start at once, since it ends when its jobs have. Each entry
 * keeps the id of its job, so the ledger's end hook finds the entry from the job's input, and
 * the inode the file had when it was taken, so a file replaced under a running job is noticed
 * (and logged; it is moved as it is: a file is known by its name). Beyond the bound, files
 * wait in DIR; when the files in flight have fallen to half of it, DIR is scanned again.
 *
 * The master never waits on a spool. The end hook renames one file (done/, failed/ and
 * quarantine/ are inside DIR, so on the same file system: no data is copied) and adds nothing
 * (the ledger forbids it there); jobs are added from inotify events and from a deferred
 * rescan. DIR is read in full only at start, after an inotify queue overflow, and for the
 * backlog above. A scan keeps the smallest names only (a bounded heap), so a huge DIR costs
 * no more memory than the bound.
 *
 * A spool belongs to whoever started it; it holds an end hook in the master's ledger and
 * sources in its event loop, so it is freed after master_run and before master_free.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/protocol.h"
#include "daemon/ledger.h"
#include "daemon/spool.h"

#define SPOOL_BATCH 256 /* jobs added per master_add_input_jobs() call */
#define SPOOL_READS_MAX 64 /* inotify reads per wake-up, so a flood cannot hog the loop */
#define SPOOL_EVENT_BUF 16384 /* bytes per inotify read */
#define SPOOL_WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

static const char *const subdirs[] = { "done", "failed", "quarantine" };

struct spool_file {
	uint64_t job; /* its job's id */
	dev_t dev; /* what DIR/name was when it was taken */
	ino_t ino;
	char name[];
};

struct spool {
	struct master *m;
	unsigned group;
	char *dir;
	bool hooked; /* our end hook is in the ledger */
	bool backlog; /* files were left in DIR: the bound was reached */
	bool backlog_logged;
	bool closed; /* the pool takes no more jobs: nothing more is added */
	int inotify_fd;
	sd_event_source *io;
	sd_event_source *rescan; /* deferred scan (ONESHOT when armed) */
	struct spool_file **files; /* n_alloc slots, n_files used, sorted by name */
	unsigned n_files;
	unsigned n_alloc;
	unsigned max; /* files in flight at most */
};

struct spools {
	struct master *m;
	struct spool **v;
	unsigned n;
	sd_event_source *post; /* notices a reload (the config pointer changes) */
	const struct config *seen;
};

/* Files about to be added as jobs in one call. */
struct batch {
	unsigned n;
	char *paths[SPOOL_BATCH];
	struct spool_file *files[SPOOL_BATCH];
};

static const char *gname(const struct spool *s)
{
	return ledger_group(master_ledger(s->m), s->group)->name;
}

/* Index of name in s->files, or -(insertion point) - 1. */
static long find(const struct spool *s, const char *name)
{
	unsigned lo = 0, hi = s->n_files;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		int c = strcmp(s->files[mid]->name, name);

		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

static void remove_at(struct spool *s, unsigned pos)
{
	memmove(&s->files[pos], &s->files[pos + 1], (s->n_files - pos - 1) * sizeof(s->files[0]));
	s->n_files--;
}

static void forget(struct spool *s, const struct spool_file *f)
{
	long pos = find(s, f->name);

	if (pos >= 0 && s->files[pos] == f)
		remove_at(s, (unsigned)pos);
}

static bool accepting(const struct spool *s)
{
	return !s->closed && !master_is_stopping(s->m);
}

static void note_backlog(struct spool *s)
{
	s->backlog = true;
	if (s->backlog_logged)
		return;
	s->backlog_logged = true;
	log_notice("job group %s: %u files of %s in flight, the most: the others wait there",
		   gname(s), s->n_files, s->dir);
}

static void batch_flush(struct spool *s, struct batch *b)
{
	struct ledger *l = master_ledger(s->m);
	uint64_t next = ledger_n_jobs(l) + 1, first = 0;
	int r;

	if (b->n == 0)
		return;
	/* The ids the jobs will get, set before they exist: the end hook may see them at once. */
	for (unsigned i = 0; i < b->n; i++)
		b->files[i]->job = next + i;
	r = master_add_input_jobs(s->m, s->group, b->paths, b->n, &first);
	if (r < 0) {
		if (r == -ESHUTDOWN) {
			if (!s->closed)
				log_notice(
					"job group %s: its pool takes no more jobs: files stay in %s",
					gname(s), s->dir);
			s->closed = true;
		} else {
			log_error_errno(r, "job group %s: cannot add %u jobs for files in %s",
					gname(s), b->n, s->dir);
			note_backlog(s); /* they wait in DIR for the next scan */
		}
		for (unsigned i = 0; i < b->n; i++) {
			forget(s, b->files[i]);
			free(b->files[i]);
		}
	} else if (first != next) {
		for (unsigned i = 0; i < b->n; i++)
			b->files[i]->job = first + i;
	}
	for (unsigned i = 0; i < b->n; i++)
		free(b->paths[i]);
	b->n = 0;
}

/*
 * Takes DIR/name if it is a regular file (symlinks followed) not in flight yet: inserted in
 * the set now, added as a job at the next batch_flush().
 */
static void take(struct spool *s, struct batch *b, const char *name)
{
	struct spool_file *f;
	struct stat st;
	char *path;
	size_t len;
	long pos;

	if (name[0] == '.' || !accepting(s))
		return;
	pos = find(s, name);
	if (pos >= 0)
		return; /* its job is queued or running */
	if (s->n_files >= s->max) {
		note_backlog(s);
		return;
	}
	if (s->n_files == s->n_alloc) {
		unsigned n = s->n_alloc * 2 < s->max ? s->n_alloc * 2 : s->max;
		struct spool_file **v = realloc(s->files, n * sizeof(*v));

		if (!v) {
			log_error("job group %s: out of memory: %s/%s waits", gname(s), s->dir,
				  name);
			note_backlog(s);
			return;
		}
		s->files = v;
		s->n_alloc = n;
	}
	if (asprintf(&path, "%s/%s", s->dir, name) < 0) {
		log_error("job group %s: out of memory: %s/%s waits", gname(s), s->dir, name);
		note_backlog(s);
		return;
	}
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
		free(path); /* gone already, a directory, a dangling link, ... */
		return;
	}
	len = strlen(name);
	f = malloc(sizeof(*f) + len + 1);
	if (!f) {
		log_error("job group %s: out of memory: %s waits", gname(s), path);
		free(path);
		note_backlog(s);
		return;
	}
	*f = (struct spool_file){ .dev = st.st_dev, .ino = st.st_ino };
	memcpy(f->name, name, len + 1);
	pos = -pos - 1;
	memmove(&s->files[pos + 1], &s->files[pos],
		(s->n_files - (size_t)pos) * sizeof(s->files[0]));
	s->files[pos] = f;
	s->n_files++;
	b->paths[b->n] = path;
	b->files[b->n] = f;
	if (++b->n == SPOOL_BATCH)
		batch_flush(s, b);
}

/* ---- scanning: the smallest `cap` names not in flight, in order ---- */

struct heap {
	char **v; /* a max-heap by strcmp, n_alloc slots */
	size_t n, n_alloc, cap;
};

static void heap_sift_down(struct heap *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, big = i;
		char *t;

		if (l < h->n && strcmp(h->v[l], h->v[big]) > 0)
			big = l;
		if (r < h->n && strcmp(h->v[r], h->v[big]) > 0)
			big = r;
		if (big == i)
			return;
		t = h->v[i];
		h->v[i] = h->v[big];
		h->v[big] = t;
		i = big;
	}
}

static void heap_sift_up(struct heap *h, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		char *t;

		if (strcmp(h->v[parent], h->v[i]) >= 0)
			return;
		t = h->v[i];
		h->v[i] = h->v[parent];
		h->v[parent] = t;
		i = parent;
	}
}

/* Keeps a copy of name if it is among the cap smallest offered; *dropped if a name was not kept. */
static int heap_offer(struct heap *h, const char *name, bool *dropped)
{
	char *copy;

	if (h->n == h->cap && (h->cap == 0 || strcmp(name, h->v[0]) >= 0)) {
		*dropped = true;
		return 0;
	}
	if (h->n == h->n_alloc && h->n < h->cap) {
		size_t n = h->n_alloc ? h->n_alloc * 2 : 64;
		char **v = realloc(h->v, (n < h->cap ? n : h->cap) * sizeof(*v));

		if (!v)
			return -ENOMEM;
		h->v = v;
		h->n_alloc = n < h->cap ? n : h->cap;
	}
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	if (h->n == h->cap) {
		*dropped = true;
		free(h->v[0]);
		h->v[0] = copy;
		heap_sift_down(h, 0);
		return 0;
	}
	h->v[h->n] = copy;
	heap_sift_up(h, h->n++);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds a job for every file in DIR not in flight yet, in name order, up to the bound. */
static int scan(struct spool *s)
{
	struct heap h = { .cap = s->max - s->n_files };
	struct batch b = { 0 };
	bool dropped = false;
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (!accepting(s))
		return 0;
	d = opendir(s->dir);
	if (!d)
		return log_error_errno(-errno, "job group %s: cannot read %s", gname(s), s->dir);
	while ((errno = 0, de = readdir(d))) {
		if (de->d_name[0] == '.' || de->d_type == DT_DIR || find(s, de->d_name) >= 0)
			continue;
		r = heap_offer(&h, de->d_name, &dropped);
		if (r < 0)
			break;
	}
	if (r == 0 && errno != 0)
		r = -errno;
	closedir(d);
	if (r < 0)
		log_error_errno(r, "job group %s: cannot read all of %s", gname(s), s->dir);
	s->backlog = false;
	if (h.n > 1)
		qsort(h.v, h.n, sizeof(*h.v), cmp_names);
	for (size_t i = 0; i < h.n; i++) {
		take(s, &b, h.v[i]);
		free(h.v[i]);
	}
	batch_flush(s, &b);
	free(h.v);
	if (dropped)
		note_backlog(s);
	else if (!s->backlog)
		s->backlog_logged = false;
	return r;
}

static int on_rescan(sd_event_source *src, void *userdata)
{
	scan(userdata);
	return 0;
}

static void arm_rescan(struct spool *s)
{
	if (s->rescan)
		sd_event_source_set_enabled(s->rescan, SD_EVENT_ONESHOT);
}

/* ---- watching ---- */

static void stop_watching(struct spool *s, const char *why)
{
	log_error("job group %s: %s %s: it is no longer watched (files in flight are still moved "
		  "when their jobs end; restart to watch it again)",
		  gname(s), s->dir, why);
	s->io = sd_event_source_disable_unref(s->io);
}

static int on_inotify(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	char buf[SPOOL_EVENT_BUF] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct spool *s = userdata;
	struct batch b = { 0 };
	bool overflow = false;
	const char *gone = NULL;

	for (unsigned k = 0; k < SPOOL_READS_MAX; k++) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			log_error_errno(-errno, "job group %s: reading the inotify events of %s",
					gname(s), s->dir);
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)(void *)p;

			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW)
				overflow = true;
			if (ev->mask & IN_DELETE_SELF)
				gone = "was removed";
			else if (ev->mask & IN_MOVE_SELF)
				gone = "was moved";
			else if (ev->mask & (IN_IGNORED | IN_UNMOUNT) && !gone)
				gone = "is gone";
			if (ev->len > 0 && !(ev->mask & IN_ISDIR) && ev->name[0])
				take(s, &b, ev->name);
		}
	}
	batch_flush(s, &b);
	if (overflow) {
		log_notice("job group %s: inotify queue overflow on %s: scanning it", gname(s),
			   s->dir);
		scan(s);
	}
	if (gone)
		stop_watching(s, gone);
	return 0;
}

static int watch(struct spool *s)
{
	int r;

	s->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->inotify_fd < 0)
		return log_error_errno(-errno, "job group %s: cannot watch %s", gname(s), s->dir);
	if (inotify_add_watch(s->inotify_fd, s->dir, SPOOL_WATCH_MASK) < 0)
		return log_error_errno(-errno, "job group %s: cannot watch %s", gname(s), s->dir);
	r = sd_event_add_io(master_event(s->m), &s->io, s->inotify_fd, EPOLLIN, on_inotify, s);
	if (r < 0)
		return log_error_errno(r, "job group %s: cannot watch %s", gname(s), s->dir);
	return 0;
}

/* ---- jobs that ended ---- */

/* The file of job j is now at path: views and reports show it there. */
static void moved(struct spool *s, struct job *j, const char *path)
{
	int r = ledger_move_job_input(master_ledger(s->m), j, path);

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

static void move_file(struct spool *s, struct job *j, const struct spool_file *f,
		      const char *sub)
{
	char src[PATH_MAX], dst[PATH_MAX];
	struct stat st;
	int r;

	snprintf(src, sizeof(src), "%s/%s", s->dir, f->name);
	snprintf(dst, sizeof(dst), "%s/%s/%s", s->dir, sub, f->name);
	if (stat(src, &st) < 0) {
		log_warning_errno(-errno, "job group %s: cannot move %s to %s/", gname(s), src,
				  sub);
		return;
	}
	if (st.st_dev != f->dev || st.st_ino != f->ino)
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

static void on_job_end(void *userdata, struct job *j)
{
	struct spool *s = userdata;
	struct ledger *l = master_ledger(s->m);
	struct spool_file *f;
	const char *input, *name;
	long pos;

	if (j->group != s->group)
		return;
	input = ledger_job_input(l, j);
	if (!input)
		return;
	name = strrchr(input, '/');
	name = name ? name + 1 : input;
	pos = find(s, name);
	if (pos < 0 || s->files[pos]->job != j->id)
		return;
	f = s->files[pos];
	remove_at(s, (unsigned)pos);
	switch (j->state) {
	case JOB_DONE:
		move_file(s, j, f, "done");
		break;
	case JOB_FAILED:
		move_file(s, j, f, "failed");
		break;
	case JOB_CRASHED:
	case JOB_TIMED_OUT:
		move_file(s, j, f, "quarantine");
		break;
	default:
		/* cancelled: the file stays in DIR for the next start (or scan) */
		break;
	}
	free(f);
	if (s->backlog && s->n_files <= s->max / 2 && accepting(s))
		arm_rescan(s);
}

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
	struct ledger *l = master_ledger(m);
	const struct group_config *gc = ledger_group(l, group);
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
	r = ledger_add_end_hook(l, on_job_end, s);
	if (r < 0)
		goto fail;
	s->hooked = true;
	r = sd_event_add_defer(master_event(m), &s->rescan, on_rescan, s);
	if (r >= 0)
		r = sd_event_source_set_enabled(s->rescan, SD_EVENT_OFF);
	if (r < 0)
		goto fail;
	/* Watch first: a file that comes during the scan is seen once either way. */
	if (watch_dir) {
		r = watch(s);
		if (r < 0)
			goto fail;
	}
	r = scan(s);
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
		ledger_remove_end_hook(master_ledger(s->m), on_job_end, s);
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
	struct ledger *l = master_ledger(sp->m);
	int g = ledger_find_group(l, gc->name);
	struct spool **v;

	if (g < 0 || strcmp(ledger_group(l, (unsigned)g)->spool, gc->spool) != 0)
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

/* Runs after every event the loop dispatched: one pointer compare unless a reload happened. */
static int on_post(sd_event_source *src, void *userdata)
{
	struct spools *sp = userdata;
	const struct config *c = master_config(sp->m);

	if (c != sp->seen) {
		sp->seen = c;
		check_reload(sp, c);
	}
	return 0;
}

int spools_start(struct master *m, bool daemon, struct spools **ret)
{
	const struct config *c = master_config(m);
	struct spools *sp;
	int r = 0;

	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	sp->m = m;
	sp->seen = c;
	sp->v = calloc(c->n_groups ? c->n_groups : 1, sizeof(*sp->v));
	if (!sp->v) {
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < c->n_groups; i++) {
		int g;

		if (!c->groups[i].spool[0])
			continue;
		g = ledger_find_group(master_ledger(m), c->groups[i].name);
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
		r = sd_event_add_post(master_event(m), &sp->post, on_post, sp);
		if (r < 0) {
			log_error_errno(r, "cannot watch for reloads of spools");
			goto fail;
		}
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
	sd_event_source_disable_unref(sp->post);
	for (unsigned i = 0; i < sp->n; i++)
		spool_free(sp->v[i]);
	free(sp->v);
	free(sp);
}
