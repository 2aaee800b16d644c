/* SPDX-License-Identifier: MIT */
/*
 * Inside the spool only (spool.h is the interface): struct spool, shared by spool.c (life
 * cycle, the end hook that moves files, reloads) and spool-scan.c (the files in flight, the
 * scans of DIR and its inotify watch).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "daemon/ledger.h"
#include "daemon/master.h"

struct spool_file {
	uint64_t job; /* its job's id */
	bool ended; /* its job ended: it moves once that is written (spool.c, "jobs that ended") */
	dev_t dev; /* what DIR/name was when it was taken */
	ino_t ino;
	char name[];
};

struct spool {
	struct master *m;
	unsigned group;
	char *dir;
	bool hooked; /* subscribed to the master's job ends */
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
	struct spool_file **ending; /* ended, to move after the next write (still in files) */
	unsigned n_ending, cap_ending;
};

/* The spool's job group's name, for messages. */
static inline const char *gname(const struct spool *s)
{
	struct master_group g;

	return master_group(s->m, s->group, &g) ? g.cfg->name : "?";
}

/* spool-scan.c */

/*
 * Makes the deferred rescan, watches DIR with watch (first: a file that comes during the scan
 * is seen once either way) and takes every file in DIR now. Returns 0 or -errno (logged).
 */
int spool_scan_start(struct spool *s, bool watch);
/* Index of name in s->files, or -(insertion point) - 1. */
long spool_find(const struct spool *s, const char *name);
/*
 * Moves DIR/name, the input of job j that has ended, where its state says (done/, failed/,
 * quarantine/; a cancelled job's stays). f: what the file was when it was taken, or NULL.
 */
void spool_move_ended(struct spool *s, const struct master_job *j, const char *name,
		      const struct spool_file *f);
/* Drops s->files[pos] from the set (the caller frees it). */
void spool_remove_at(struct spool *s, unsigned pos);
/* False once the pool takes no more jobs or the master stops: nothing more is added. */
bool spool_accepting(const struct spool *s);
/* Scans DIR again soon (from the loop, not now): the backlog has room. */
void spool_arm_rescan(struct spool *s);
