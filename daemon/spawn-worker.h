/* SPDX-License-Identifier: MIT */
/*
 * Starting one bulkhead-worker process: a fresh exec (new address space, fresh ASLR) with
 * stdin on /dev/null, stdout and stderr inherited, its end of a SOCK_SEQPACKET socketpair on
 * fd 3 and nothing else; its own process group; default signal dispositions and an empty
 * signal mask; an environment without the service manager's variables (NOTIFY_SOCKET,
 * WATCHDOG_*, LISTEN_*).
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

struct spawned_worker {
	pid_t pid;
	int pidfd; /* CLOEXEC */
	int fd;    /* master's end: CLOEXEC, non-blocking */
};

/*
 * The worker binary: $BULKHEAD_WORKER if set, else bulkhead-worker next to the running
 * program (the build tree), else BULKHEAD_LIBEXECDIR/bulkhead-worker.
 */
const char *spawn_worker_path(void);

/*
 * Starts `path` for slot POOL/INDEX. memory_max is passed on unless UINT64_MAX.
 * Returns 0, or -errno (the exec error included: ENOENT, EACCES, ...).
 */
int spawn_worker(const char *path, const char *pool, unsigned index, unsigned threads,
		 uint64_t memory_max, struct spawned_worker *ret);
