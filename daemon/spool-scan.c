/* SPDX-License-Identifier: MIT */
/*
 * Spools (see spool.h and spool.c): how files of DIR become jobs. The set of files in flight,
 * the scans of DIR (at start, after an inotify queue overflow, and for the backlog) and the
 * inotify watch of DIR through the master's event loop.
 *
 * The set is a sorted array of names (struct spool's files); taking a file inserts it and
 * batches its path into master_add_input_jobs(), SPOOL_BATCH at a time. A scan keeps the
 * smallest names not in flight in a bounded max-heap, so a huge DIR costs no more memory than
 * the bound; the names it could not keep are the backlog, scanned again once the files in
 * flight have fallen to half of the bound (spool_arm_rescan(), from spool.c's end hook).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/master.h"
#include "daemon/spool-internal.h"

#define SPOOL_BATCH 256 /* jobs added per master_add_input_jobs() call */
#define SPOOL_READS_MAX 64 /* inotify reads per wake-up, so a flood cannot hog the loop */
#define SPOOL_EVENT_BUF 16384 /* bytes per inotify read */
#define SPOOL_WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

/* Files about to be added as jobs in one call. */
struct batch {
	unsigned n;
	char *paths[SPOOL_BATCH];
	struct spool_file *files[SPOOL_BATCH];
};

/* Index of name in s->files, or -(insertion point) - 1. */
long spool_find(const struct spool *s, const char *name)
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

void spool_remove_at(struct spool *s, unsigned pos)
{
	memmove(&s->files[pos], &s->files[pos + 1], (s->n_files - pos - 1) * sizeof(s->files[0]));
	s->n_files--;
}

static void forget(struct spool *s, const struct spool_file *f)
{
	long pos = spool_find(s, f->name);

	if (pos >= 0 && s->files[pos] == f)
		spool_remove_at(s, (unsigned)pos);
}

bool spool_accepting(const struct spool *s)
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
	uint64_t next = master_n_jobs(s->m) + 1, first = 0;
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

	if (name[0] == '.' || !spool_accepting(s))
		return;
	pos = spool_find(s, name);
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

	if (!spool_accepting(s))
		return 0;
	d = opendir(s->dir);
	if (!d)
		return log_error_errno(-errno, "job group %s: cannot read %s", gname(s), s->dir);
	while ((errno = 0, de = readdir(d))) {
		if (de->d_name[0] == '.' || de->d_type == DT_DIR || spool_find(s, de->d_name) >= 0)
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

void spool_arm_rescan(struct spool *s)
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

/* Puts f in the set at its place (pos from spool_find: not there), growing it if need be. */
static int insert_file(struct spool *s, struct spool_file *f, long pos)
{
	if (s->n_files == s->n_alloc) {
		unsigned n = s->n_alloc ? s->n_alloc * 2 : 16;
		struct spool_file **v = realloc(s->files, n * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->files = v;
		s->n_alloc = n;
	}
	pos = -pos - 1;
	memmove(&s->files[pos + 1], &s->files[pos],
		(s->n_files - (size_t)pos) * sizeof(s->files[0]));
	s->files[pos] = f;
	s->n_files++;
	return 0;
}

/*
 * A durable store that was opened again holds jobs of this spool that have not ended: their
 * files are still in DIR. They are in flight already (never taken twice), and move when their
 * jobs end, like any other. A job that ended with its file still in DIR (the master died
 * between the write of its end and the move) has its file moved now. Returns how many were
 * adopted, or -ENOMEM.
 */
static long adopt(struct spool *s)
{
	size_t len = strlen(s->dir);
	long n = 0;

	for (uint64_t id = 1; id <= master_n_jobs(s->m); id++) {
		enum job_state state;
		unsigned group;
		struct master_job j;
		struct spool_file *f;
		struct stat st;
		const char *name;
		long pos;

		if (master_job_state(s->m, id, &state, &group) < 0 || group != s->group ||
		    master_job(s->m, id, &j) < 0 || !j.input ||
		    strncmp(j.input, s->dir, len) != 0 || j.input[len] != '/' ||
		    strchr(j.input + len + 1, '/'))
			continue;
		name = j.input + len + 1;
		if (job_state_is_final(state)) {
			/* Its end was written, its move was not (the master died in between). */
			if (stat(j.input, &st) == 0)
				spool_move_ended(s, &j, name, NULL);
			continue;
		}
		pos = spool_find(s, name);
		if (pos >= 0)
			continue;
		f = malloc(sizeof(*f) + strlen(name) + 1);
		if (!f)
			return -ENOMEM;
		*f = (struct spool_file){ .job = id };
		if (stat(j.input, &st) == 0) {
			f->dev = st.st_dev;
			f->ino = st.st_ino;
		}
		strcpy(f->name, name);
		if (insert_file(s, f, pos) < 0) {
			free(f);
			return -ENOMEM;
		}
		n++;
	}
	return n;
}

int spool_scan_start(struct spool *s, bool watch_dir)
{
	long adopted;
	int r;

	r = sd_event_add_defer(master_event(s->m), &s->rescan, on_rescan, s);
	if (r >= 0)
		r = sd_event_source_set_enabled(s->rescan, SD_EVENT_OFF);
	if (r < 0)
		return r;
	adopted = adopt(s);
	if (adopted < 0) {
		log_error("job group %s: out of memory", gname(s));
		return (int)adopted;
	}
	if (adopted > 0)
		log_info("job group %s: %ld files of %s have jobs already (kept from before the "
			 "restart)",
			 gname(s), adopted, s->dir);
	/* Watch first: a file that comes during the scan is seen once either way. */
	if (watch_dir) {
		r = watch(s);
		if (r < 0)
			return r;
	}
	return scan(s);
}
