/* SPDX-License-Identifier: MIT */
/*
 * Starting one bulkhead-worker process: a fresh exec (new address space, fresh ASLR) with
 * stdin on /dev/null, stdout and stderr inherited, its end of a SOCK_SEQPACKET socketpair on
 * fd 3 and nothing else; its own process group; default signal dispositions and an empty
 * signal mask; an environment without the service manager's variables (NOTIFY_SOCKET,
 * WATCHDOG_*, LISTEN_*).
 */
#pragma once

#include <stdbool.h>
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

/* What a new worker is to be: its slot, its threads, its limits, whom it runs jobs as. */
struct worker_launch {
	const char *pool;
	unsigned index;
	unsigned threads;
	uint64_t memory_max; /* UINT64_MAX: none */
	/*
	 * The user and group it drops to before any job code runs (children/privileges.c);
	 * (uid_t)-1: it keeps the master's (it still drops capabilities it has no use for and
	 * sets NO_NEW_PRIVS).
	 */
	uid_t uid;
	gid_t gid;
	bool core_dumps; /* --core-dumps: RLIMIT_CORE unlimited, else 0 */
	bool spawner; /* --spawner: its pool has exec: groups (children/spawner.c) */
};

/*
 * Starts `path` for slot POOL/INDEX: memory_max, uid and gid are passed on unless "none".
 * Returns 0, or -errno (the exec error included: ENOENT, EACCES, ...).
 */
int spawn_worker(const char *path, const struct worker_launch *l, struct spawned_worker *ret);

/*
 * The fork server (children/zygote.c): a bulkhead-worker started once with --zygote that
 * forks new workers as the master's children on request, instead of an exec each time.
 * zygote_start() returns 0 once it has said it can, or -errno (then exec workers).
 * zygote_spawn() gives the same result as spawn_worker(); on any error the caller should
 * zygote_stop() it and go back to spawn_worker(). Both block the caller until the zygote
 * replies: zygote_start() (an exec and one test fork, once) for at most
 * ZYGOTE_REPLY_TIMEOUT_MS, zygote_spawn() (a fork: 0.1-0.3 ms) for at most
 * ZYGOTE_FORK_TIMEOUT_MS. A zygote slower than that is stopped for good and workers are
 * exec'd; the bound is what a stalled zygote can cost the master's loop, once.
 */
#define ZYGOTE_REPLY_TIMEOUT_MS 1000
#define ZYGOTE_FORK_TIMEOUT_MS 100

struct zygote {
	struct spawned_worker s; /* the zygote process itself; pid 0: not running */
};

int zygote_start(const char *path, struct zygote *z);
/*
 * zygote_start() in two halves, for a caller that must not wait: zygote_launch() starts the
 * process (0 or -errno); zygote_started() then reads its first reply, waiting at most
 * timeout_ms (0: not at all): 1 it is up, 0 no reply yet, -errno it cannot fork workers (the
 * caller then zygote_kill()s it).
 */
int zygote_launch(const char *path, struct zygote *z);
int zygote_started(struct zygote *z, int timeout_ms);
bool zygote_up(const struct zygote *z);
int zygote_spawn(struct zygote *z, const struct worker_launch *l, struct spawned_worker *ret);
/* Closes its socket, reaps it (SIGKILL after the timeout). Safe on a stopped one. */
void zygote_stop(struct zygote *z);
/* The same without the wait: for a zygote that failed (it may be stalled). */
void zygote_kill(struct zygote *z);
