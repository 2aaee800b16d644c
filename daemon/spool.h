/* SPDX-License-Identifier: MIT */
/*
 * Spool directories (`spool = DIR` on a job group): every regular file in DIR whose name does
 * not start with '.' becomes one job of the group, with the file's full path as its input.
 * When the job has ended, the file moves to DIR/done/, DIR/failed/ or DIR/quarantine/
 * (crashed or timed out); a cancelled job's file stays in DIR, so a daemon stopped mid-way
 * leaves every unfinished file where it was and takes it again at the next start.
 *
 * The files present at start are taken in name order. With `watch` (bulkheadd), DIR is
 * watched with inotify through the master's event loop: a file closed after writing or moved
 * in becomes a job at once; a lost inotify queue means a rescan. A name is known once: while
 * its job is queued or running, nothing more is added under that name.
 */
#pragma once

#include <stdbool.h>

#include "daemon/master.h"

#define SPOOL_FILES_MAX 4096 /* watched (bulkheadd): files in flight; the rest waits in DIR */
#define SPOOL_RUN_FILES_MAX 1000000 /* not watched (bulkhead run): files taken, as count's max */

struct spool;
struct spools;

/*
 * Starts the spool of job group `group` (a ledger index; its config has spool set): creates
 * DIR/done, DIR/failed and DIR/quarantine (0755) if missing, adds a job for every file in DIR
 * now, and with watch, watches DIR for more. Logs what went wrong and returns -errno if DIR
 * cannot be used; once started, errors (a file that cannot be moved, DIR removed) are logged
 * and never stop the master.
 */
int spool_new(struct master *m, unsigned group, bool watch, struct spool **ret);
/* Stops watching and forgets the files in flight (they stay where they are). NULL-safe. */
void spool_free(struct spool *s);

/*
 * A spool for every job group of the master's config with spool set (watch = daemon), to be
 * called after master_new and before master_run. In daemon mode it also notices reloads:
 * the spool of a job group the reload added starts then; a spool changed, removed, or given
 * to a group that existed takes effect only at the next start, which is logged once per
 * reload and group. Returns -errno if a spool cannot start at first (logged).
 */
int spools_start(struct master *m, bool daemon, struct spools **ret);
/* Call after master_run and before master_free. NULL-safe. */
void spools_free(struct spools *s);

/* Files of the spool in flight now (queued or running jobs). */
unsigned spool_in_flight(const struct spool *s);
