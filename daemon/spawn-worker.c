/* SPDX-License-Identifier: MIT */
/*
 * Worker start-up (see spawn-worker.h). posix_spawn reports exec failures as its return value, so
 * a missing or unexecutable worker binary is an errno here, not a child that dies at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/zygote-proto.h"
#include "spawn-worker.h"

#define ENV_MAX 4096 /* environment entries passed on */

extern char **environ;

const char *spawn_worker_path(void)
{
	static char path[PATH_MAX + 32];
	const char *e = getenv("BULKHEAD_WORKER");
	char self[PATH_MAX];
	ssize_t n;

	if (e && *e)
		return e;
	if (path[0])
		return path;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(path, sizeof(path), "%s/bulkhead-worker", self);
			if (access(path, X_OK) == 0)
				return path;
		}
	}
	snprintf(path, sizeof(path), "%s/bulkhead-worker", BULKHEAD_LIBEXECDIR);
	return path;
}

static bool env_dropped(const char *kv)
{
	static const char *const drop[] = { "NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=",
					    "LISTEN_PID=",    "LISTEN_FDS=",    "LISTEN_FDNAMES=",
					    NULL };

	for (const char *const *d = drop; *d; d++)
		if (strncmp(kv, *d, strlen(*d)) == 0)
			return true;
	return false;
}

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int spawn_attrs(posix_spawnattr_t *attr, posix_spawn_file_actions_t *fa, int child_fd)
{
	sigset_t none, all;
	int r;

	sigemptyset(&none);
	sigfillset(&all);
	r = posix_spawnattr_init(attr);
	if (r)
		return -r;
	r = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
						   POSIX_SPAWN_SETPGROUP);
	if (!r)
		r = posix_spawnattr_setsigmask(attr, &none);
	if (!r)
		r = posix_spawnattr_setsigdefault(attr, &all);
	if (!r)
		r = posix_spawnattr_setpgroup(attr, 0);
	if (!r)
		r = posix_spawn_file_actions_init(fa);
	if (!r)
		r = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
	if (!r)
		r = posix_spawn_file_actions_adddup2(fa, child_fd, 3);
	return -r;
}

/* A new SOCK_SEQPACKET pair: sv[0] the master's (non-blocking), sv[1] the child's (not fd 3). */
static int new_socketpair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* The child's end must not already be fd 3: dup2 onto itself would keep CLOEXEC. */
	if (sv[1] == 3) {
		int fd = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);

		if (fd < 0)
			goto fail;
		close(sv[1]);
		sv[1] = fd;
	}
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0)
		goto fail;
	return 0;
fail:
	close(sv[0]);
	close(sv[1]);
	return -errno;
}

/*
 * posix_spawn of path with argv, its end of a new socketpair on fd 3; extra: one more
 * environment entry (NULL: none), unless the variable is set already.
 */
static int spawn_exec(const char *path, const char *const *argv, const char *extra,
		      struct spawned_worker *ret)
{
	size_t extra_name = extra ? strcspn(extra, "=") + 1 : 0;
	char **envp = NULL;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_t fa;
	int sv[2], r, n = 0;
	pid_t pid;

	r = new_socketpair(sv);
	if (r < 0)
		return r;
	envp = calloc(ENV_MAX + 1, sizeof(char *));
	if (!envp) {
		r = -ENOMEM;
		goto out_close;
	}
	for (char **e = environ; e && *e && n < ENV_MAX; e++) {
		if (env_dropped(*e))
			continue;
		if (extra && strncmp(*e, extra, extra_name) == 0)
			extra = NULL; /* the caller's own setting stands */
		envp[n++] = *e;
	}
	if (extra && n < ENV_MAX)
		envp[n++] = (char *)extra;

	r = spawn_attrs(&attr, &fa, sv[1]);
	if (r == 0)
		r = -posix_spawn(&pid, path, &fa, &attr, (char *const *)argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	free(envp);
	if (r < 0)
		goto out_close;

	close(sv[1]);
	/* Safe: the pid cannot be reused before we reap it. */
	ret->pidfd = pidfd_open_(pid);
	if (ret->pidfd < 0) {
		r = -errno;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(sv[0]);
		return r;
	}
	ret->pid = pid;
	ret->fd = sv[0];
	return 0;

out_close:
	close(sv[0]);
	close(sv[1]);
	return r;
}

int spawn_worker(const char *path, const struct worker_launch *l, struct spawned_worker *ret)
{
	char s_index[16], s_threads[16], s_mpid[16], s_mem[32], s_uid[16], s_gid[16];
	const char *argv[20];
	int argc = 0;

	snprintf(s_index, sizeof(s_index), "%u", l->index);
	snprintf(s_threads, sizeof(s_threads), "%u", l->threads);
	snprintf(s_mpid, sizeof(s_mpid), "%d", (int)getpid());
	argv[argc++] = "bulkhead-worker";
	argv[argc++] = "--pool";
	argv[argc++] = l->pool;
	argv[argc++] = "--index";
	argv[argc++] = s_index;
	argv[argc++] = "--threads";
	argv[argc++] = s_threads;
	argv[argc++] = "--master-pid";
	argv[argc++] = s_mpid;
	if (l->memory_max != UINT64_MAX) {
		snprintf(s_mem, sizeof(s_mem), "%llu", (unsigned long long)l->memory_max);
		argv[argc++] = "--memory-max";
		argv[argc++] = s_mem;
	}
	if (l->uid != (uid_t)-1) {
		snprintf(s_uid, sizeof(s_uid), "%u", (unsigned)l->uid);
		snprintf(s_gid, sizeof(s_gid), "%u", (unsigned)l->gid);
		argv[argc++] = "--uid";
		argv[argc++] = s_uid;
		argv[argc++] = "--gid";
		argv[argc++] = s_gid;
	}
	if (l->core_dumps)
		argv[argc++] = "--core-dumps";
	if (l->spawner)
		argv[argc++] = "--spawner";
	argv[argc] = NULL;
	return spawn_exec(path, argv, NULL, ret);
}

/* ---- the fork server ---- */

/* Waits up to timeout_ms for one reply. Returns its pid field or -errno. */
static int zygote_read_reply(struct zygote *z, int timeout_ms)
{
	struct bh_zygote_reply r;
	struct pollfd p = { .fd = z->s.fd, .events = POLLIN };
	ssize_t n;
	int k;

	do
		k = poll(&p, 1, timeout_ms);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return -errno;
	if (k == 0)
		return -ETIMEDOUT;
	n = recv(z->s.fd, &r, sizeof(r), MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	if (n != (ssize_t)sizeof(r) || r.magic != BH_ZYGOTE_MAGIC || r.pid == 0 ||
	    r.pid < -4095)
		return -EBADMSG;
	return r.pid;
}

int zygote_launch(const char *path, struct zygote *z)
{
	char s_mpid[16], pad[320];
	/* pad: room for the command line each forked worker writes over the zygote's. */
	const char *argv[] = { "bulkhead-worker", "--zygote", "--master-pid", s_mpid, pad, NULL };

	memset(pad, ' ', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	*z = (struct zygote){ .s = { .pid = 0, .pidfd = -1, .fd = -1 } };
	snprintf(s_mpid, sizeof(s_mpid), "%d", (int)getpid());
	return spawn_exec(path, argv, BH_ZYGOTE_BIND_NOW, &z->s);
}

int zygote_started(struct zygote *z, int timeout_ms)
{
	int r = zygote_read_reply(z, timeout_ms);

	if (r == -ETIMEDOUT && timeout_ms == 0)
		return 0;
	if (r != z->s.pid)
		return r < 0 ? r : -EBADMSG;
	return 1;
}

int zygote_start(const char *path, struct zygote *z)
{
	int r = zygote_launch(path, z);

	if (r < 0)
		return r;
	r = zygote_started(z, ZYGOTE_REPLY_TIMEOUT_MS);
	if (r <= 0) {
		zygote_stop(z);
		return r < 0 ? r : -ETIMEDOUT;
	}
	return 0;
}

bool zygote_up(const struct zygote *z)
{
	return z->s.pid > 0;
}

int zygote_spawn(struct zygote *z, const struct worker_launch *l, struct spawned_worker *ret)
{
	struct bh_zygote_request req = { .magic = BH_ZYGOTE_MAGIC, .index = l->index,
					 .threads = l->threads, .memory_max = l->memory_max,
					 .uid = l->uid, .gid = l->gid,
					 .flags = (l->core_dumps ? BH_ZYGOTE_CORE_DUMPS : 0) |
						  (l->spawner ? BH_ZYGOTE_SPAWNER : 0) };
	const char *pool = l->pool;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} c = {};
	struct iovec iov = { .iov_base = &req, .iov_len = sizeof(req) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
			     .msg_controllen = sizeof(c.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	int sv[2], r, pidfd;

	if (!zygote_up(z))
		return -ENOTCONN;
	if (strlen(pool) >= sizeof(req.pool))
		return -ENAMETOOLONG;
	memcpy(req.pool, pool, strlen(pool) + 1);
	r = new_socketpair(sv);
	if (r < 0)
		return r;
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &sv[1], sizeof(int));
	if (sendmsg(z->s.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(req))
		r = -errno;
	else
		r = zygote_read_reply(z, ZYGOTE_FORK_TIMEOUT_MS);
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return r;
	}
	/* CLONE_PARENT made it our child: the pid stays ours until we reap it. */
	pidfd = pidfd_open_(r);
	if (pidfd < 0) {
		int e = -errno;

		kill(r, SIGKILL);
		waitpid(r, NULL, 0);
		close(sv[0]);
		return e;
	}
	ret->pid = r;
	ret->pidfd = pidfd;
	ret->fd = sv[0];
	return 0;
}

void zygote_stop(struct zygote *z)
{
	struct pollfd p = { .fd = z->s.pidfd, .events = POLLIN };

	if (z->s.fd >= 0)
		close(z->s.fd); /* EOF: it exits */
	if (z->s.pid > 0) {
		if (poll(&p, 1, ZYGOTE_REPLY_TIMEOUT_MS) <= 0)
			kill(z->s.pid, SIGKILL);
		waitpid(z->s.pid, NULL, 0);
	}
	if (z->s.pidfd >= 0)
		close(z->s.pidfd);
	*z = (struct zygote){ .s = { .pid = 0, .pidfd = -1, .fd = -1 } };
}

void zygote_kill(struct zygote *z)
{
	if (z->s.pid > 0)
		kill(z->s.pid, SIGKILL);
	zygote_stop(z);
}
