/* SPDX-License-Identifier: MIT */
/*
 * The durable job store (DESIGN §12): one SQLite 3 file, WAL, synchronous=FULL, its working
 * set in the memory store. See store-sqlite.c.
 */
#pragma once

#include "daemon/store.h"

/* The schema this build writes; a file with a higher user_version is refused. */
#define STORE_SQLITE_VERSION 5
/* PRAGMA application_id of a bulkhead store: "BHKD". */
#define STORE_SQLITE_APP_ID 0x42484b44

/*
 * Opens (or creates, mode 0600) the store at path for the pools named pools[0 .. n_pools - 1]
 * (a group's pool is kept by name; a file of an older schema is migrated in one transaction)
 * and loads what it holds:
 * every group, and every job not forgotten, in the state it was written in (jobs that were
 * running when the last master died stay RUNNING: store.h's orphans(), for the ledger's
 * ledger_recover()). The file stays locked (exclusive) until the store is freed.
 *
 * Returns 0 and *ret, or a negative errno and *ret_error (malloc'd), one line that names the
 * file and the reason:
 *   -EBADMSG  not a bulkhead store, damaged, or inconsistent ("jobs.db: damaged: ...")
 *   -EPROTO   written by a newer bulkhead (schema version N; this one knows up to 4)
 *   -ENXIO    a group of it with jobs not ended runs in a pool that is not among pools
 *   -EBUSY    in use by another process
 *   -EACCES, -EROFS, -ENOSPC, -EIO, -ENOMEM  the file or its directory cannot be used
 */
int store_sqlite_open(const char *path, const char *const *pools, unsigned n_pools,
		      struct store **ret, char **ret_error);

/*
 * The pools the store added after pools[] when it was opened: those of groups whose jobs all
 * ended in a pool the config no longer has (indexes n_pools .. n_pools + *ret_n - 1, in this
 * order). The master adds them as removed pools.
 */
const char *const *store_sqlite_gone_pools(const struct store *st, unsigned *ret_n);
