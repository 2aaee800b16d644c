/* SPDX-License-Identifier: MIT */
/*
 * The fork server ("zygote") protocol: master <-> `bulkhead-worker --zygote`, over its own
 * SOCK_SEQPACKET socketpair (fd 3 on the zygote's side). Fixed-size messages:
 *
 *   zygote -> master, once at start:  bh_zygote_reply { pid = its own pid, or -errno if it
 *                                      cannot fork workers here }
 *   master -> zygote:                  bh_zygote_request + one fd (SCM_RIGHTS): the new
 *                                      worker's end of its socketpair
 *   zygote -> master:                  bh_zygote_reply { pid of the new worker, or -errno }
 *
 * The new worker is forked with CLONE_PARENT, so it is the master's child like an exec'd one
 * (the master waits for it, gets its exit status and a race-free pidfd). Anything malformed
 * from the master makes the zygote exit; anything malformed from the zygote makes the
 * master stop using it and exec workers instead.
 */
#pragma once

#include <stdint.h>

#define BH_ZYGOTE_MAGIC 0xB4B75A47u
#define BH_ZYGOTE_POOL_MAX 64 /* bytes, NUL included */

/*
 * The fork server is started with this in its environment (unless LD_BIND_NOW is set there
 * already): the dynamic linker binds every symbol at its start, once, so no worker forked
 * from it, and no contained run's child, binds one again lazily (symbol lookups and a
 * copy-on-write fault of a GOT page each, in every new process). The fork server takes it
 * out of its environment at once: what it forks, and the commands they start, do not
 * inherit it. Any non-empty value means "bind now" to ld.so; this one says it is ours.
 */
#define BH_ZYGOTE_BIND_NOW_VAR "LD_BIND_NOW"
#define BH_ZYGOTE_BIND_NOW_OURS "bulkhead"
#define BH_ZYGOTE_BIND_NOW BH_ZYGOTE_BIND_NOW_VAR "=" BH_ZYGOTE_BIND_NOW_OURS

#define BH_ZYGOTE_CORE_DUMPS 1u /* the worker gets --core-dumps */
#define BH_ZYGOTE_SPAWNER 2u /* the worker gets --spawner */

struct bh_zygote_request {
	uint32_t magic;
	uint32_t index;
	uint32_t threads;
	uint32_t flags; /* BH_ZYGOTE_*; other bits 0 */
	uint64_t memory_max; /* UINT64_MAX: none */
	uint32_t uid; /* the worker drops to uid:gid; UINT32_MAX: it keeps the master's */
	uint32_t gid;
	char pool[BH_ZYGOTE_POOL_MAX]; /* NUL-terminated */
};

struct bh_zygote_reply {
	uint32_t magic;
	int32_t pid; /* > 0, or -errno */
};
