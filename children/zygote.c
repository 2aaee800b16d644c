/* SPDX-License-Identifier: MIT */
/*
 * The fork server: `bulkhead-worker --zygote --master-pid PID`, fd 3 its socket to the
 * master (protocol in common/zygote-proto.h).
 *
 * Why: on this class of machine an exec costs about 0.5 ms of kernel time (mapping the
 * binary and the loader, relocations, page faults), a fork of a small process about
 * 0.1 ms. A worker that died is replaced by forking this idle, single-threaded process
 * instead of exec'ing a new one: the replacement is ready sooner, and a crash costs the
 * machine less CPU. The price is that workers share the zygote's address-space layout
 * (ASLR is per zygote, not per worker); `worker_start = exec` in the config turns it off.
 *
 * The zygote never runs a job, never starts a thread and holds no lock when it forks, so
 * the child starts from a clean, known state. It forks with the raw clone syscall and
 * CLONE_PARENT (glibc's fork() cannot do that), which makes the worker the master's own
 * child: the master reaps it, gets its exit status and a race-free pidfd, exactly as for
 * an exec'd worker. glibc's fork() also stores the child's thread id in the thread
 * descriptor (raise(), abort() and pthread_kill() use it); the raw clone does the same
 * with CLONE_CHILD_SETTID at the address where this glibc keeps it, which the zygote finds
 * and then checks with one real fork() at start-up (raw-clone.c; the workers it forks
 * inherit the answer, for their spawner). If that check fails it tells the master, which
 * execs workers instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sched-slice.h"
#include "common/units.h"
#include "common/zygote-proto.h"
#include "crash-trace.h"
#include "raw-clone.h"
#include "worker.h"
#include "zygote.h"

#define ZYGOTE_FD 3

/* Our own argv strings, one block: a new worker writes its command line over them. */
static char *args_area;
static size_t args_size;

/*
 * What `ps` and /proc/PID/cmdline show for a forked worker: the command line an exec'd one
 * would have. The master passes a blank padding argument so that it fits; if it does not,
 * the zygote's command line stays (the comm is right either way).
 */
static void set_cmdline(char *const *argv)
{
	size_t n = 0;

	for (char *const *a = argv; *a; a++)
		n += strlen(*a) + 1;
	if (!args_area || n > args_size)
		return;
	n = 0;
	for (char *const *a = argv; *a; a++) {
		size_t len = strlen(*a) + 1;

		memmove(args_area + n, *a, len);
		n += len;
	}
	memset(args_area + n, 0, args_size - n);
}
static void reply(int32_t pid)
{
	struct bh_zygote_reply r = { .magic = BH_ZYGOTE_MAGIC, .pid = pid };

	if (send(ZYGOTE_FD, &r, sizeof(r), MSG_NOSIGNAL) != (ssize_t)sizeof(r))
		_exit(WORKER_EXIT_MASTER_GONE);
}

/* Reads one request and its fd. Returns 1, 0 at EOF (the master is done with us). */
static int read_request(struct bh_zygote_request *req, int *ret_fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} c;
	struct iovec iov = { .iov_base = req, .iov_len = sizeof(*req) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
			     .msg_controllen = sizeof(c.buf) };
	struct cmsghdr *cm;
	int fd = -1, nfds = 0;
	ssize_t n;

	do
		n = recvmsg(ZYGOTE_FD, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 0;
	if (n < 0) {
		log_error("zygote: recvmsg: %s", strerror(errno));
		_exit(WORKER_EXIT_MASTER_GONE);
	}
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int f;

			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(f));
			if (nfds++ == 0)
				fd = f;
			else
				close(f);
		}
	}
	if ((size_t)n != sizeof(*req) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    nfds != 1 || req->magic != BH_ZYGOTE_MAGIC || (req->flags & ~(BH_ZYGOTE_CORE_DUMPS | BH_ZYGOTE_SPAWNER)) ||
	    req->threads == 0 || !memchr(req->pool, '\0', sizeof(req->pool))) {
		log_error("zygote: malformed request from the master (%zd bytes, %d fds)", n,
			  nfds);
		_exit(WORKER_EXIT_PROTOCOL);
	}
	*ret_fd = fd;
	return 1;
}

/* In the new worker: fd 3 becomes its master socket, then it is a worker like any other. */
static _Noreturn void become_worker(const struct bh_zygote_request *req, int fd, pid_t master)
{
	char s_index[16], s_threads[16], s_mpid[16], s_mem[32], s_uid[16], s_gid[16];
	char *argv[20];
	int argc = 0;

	(void)prctl(PR_SET_NAME, "bulkhead-worker");
	if (dup2(fd, ZYGOTE_FD) < 0)
		_exit(WORKER_EXIT_START);
	close(fd);
	(void)setpgid(0, 0);
	snprintf(s_index, sizeof(s_index), "%u", req->index);
	snprintf(s_threads, sizeof(s_threads), "%u", req->threads);
	snprintf(s_mpid, sizeof(s_mpid), "%d", (int)master);
	argv[argc++] = (char *)"bulkhead-worker";
	argv[argc++] = (char *)"--pool";
	argv[argc++] = (char *)req->pool;
	argv[argc++] = (char *)"--index";
	argv[argc++] = s_index;
	argv[argc++] = (char *)"--threads";
	argv[argc++] = s_threads;
	argv[argc++] = (char *)"--master-pid";
	argv[argc++] = s_mpid;
	if (req->memory_max != UINT64_MAX) {
		snprintf(s_mem, sizeof(s_mem), "%llu", (unsigned long long)req->memory_max);
		argv[argc++] = (char *)"--memory-max";
		argv[argc++] = s_mem;
	}
	if (req->uid != UINT32_MAX) {
		snprintf(s_uid, sizeof(s_uid), "%u", (unsigned)req->uid);
		snprintf(s_gid, sizeof(s_gid), "%u", (unsigned)req->gid);
		argv[argc++] = (char *)"--uid";
		argv[argc++] = s_uid;
		argv[argc++] = (char *)"--gid";
		argv[argc++] = s_gid;
	}
	if (req->flags & BH_ZYGOTE_CORE_DUMPS)
		argv[argc++] = (char *)"--core-dumps";
	if (req->flags & BH_ZYGOTE_SPAWNER)
		argv[argc++] = (char *)"--spawner";
	argv[argc] = NULL;
	/* argv[] points into our stack copies, not into the area it overwrites. */
	set_cmdline(argv);
	exit(worker_main(argc, argv));
}

int zygote_main(int argc, char **argv)
{
	struct bh_zygote_request req;
	pid_t master, *tid_slot;
	uint64_t v;
	int fd, type;
	socklen_t len = sizeof(type);

	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	log_set_program("bulkhead-zygote");
	(void)prctl(PR_SET_NAME, "bulkhead-zygote");
	(void)sched_slice_set(SCHED_SLICE_SUPERVISOR_NS);
	{
		const char *b = getenv(BH_ZYGOTE_BIND_NOW_VAR);

		if (b && strcmp(b, BH_ZYGOTE_BIND_NOW_OURS) == 0)
			unsetenv(BH_ZYGOTE_BIND_NOW_VAR); /* bound already; not for what we fork */
	}
	if (argc < 4 || argc > 5 || strcmp(argv[1], ZYGOTE_OPTION) != 0 ||
	    strcmp(argv[2], "--master-pid") != 0 || parse_uint(argv[3], 1, INT32_MAX, &v) < 0) {
		fprintf(stderr, "usage: bulkhead-worker --zygote --master-pid PID [PADDING]\n");
		return WORKER_EXIT_USAGE;
	}
	args_area = argv[0];
	args_size = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - argv[0]);
	master = (pid_t)v;
	if (getppid() != master)
		return WORKER_EXIT_MASTER_GONE;
	if (getsockopt(ZYGOTE_FD, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET) {
		log_error("fd %d is not the master's SOCK_SEQPACKET socket", ZYGOTE_FD);
		return WORKER_EXIT_USAGE;
	}
	(void)close_range(ZYGOTE_FD + 1, ~0U, 0);
	(void)fcntl(ZYGOTE_FD, F_SETFD, FD_CLOEXEC);

	tid_slot = raw_clone_tid_slot();
	if (!tid_slot) {
		log_warning("cannot fork workers here (thread id slot not found)");
		reply(-ENOTSUP);
		return WORKER_EXIT_START;
	}
	/*
	 * backtrace()'s first call dlopen()s libgcc_s (crash-trace.c): made here, once, so that
	 * every worker forked from us has it loaded already instead of each loading it at its
	 * start (about a tenth of a worker's start-up, and of a crash's cost; issue 17). It is
	 * done before the first fork, so no lock it took is held when we fork.
	 */
	crash_trace_prepare();
	reply(getpid());

	while (read_request(&req, &fd) > 0) {
		long pid = raw_clone(CLONE_PARENT, tid_slot);

		if (pid == 0)
			become_worker(&req, fd, master);
		close(fd);
		reply(pid < 0 ? -errno : (int32_t)pid);
	}
	/*
	 * EOF: the master is done with us or died. _exit, not exit: there is nothing to flush,
	 * and an exit handler (LeakSanitizer's, in a sanitized build, forks a tracer) racing our
	 * own PDEATHSIG could leave a child behind for whoever reaps the master's orphans.
	 */
	_exit(0);
}
