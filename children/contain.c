/* SPDX-License-Identifier: MIT */
/*
 * Contained runs. The master assigns a job with BH_ASSIGN_CONTAIN when it must run alone (a
 * culprit's retry, a suspect of a death without a report): a crash then would take down the
 * worker that runs it, and a culprit with max_attempts = 3 would cost three worker processes.
 * Run in a throwaway child of its job thread, its crash costs a fork: the worker, its threads
 * and its HELLO stay (bench/README.md, issue 17: the crash tax).
 *
 * The child: fork() from the job thread (glibc's fork, so malloc and stdio work in the child;
 * only this thread exists there), PR_SET_PDEATHSIG SIGKILL (it dies with its job thread, so
 * with the worker: a timeout, which kills the worker, ends it too), and the master socket's
 * number becomes one end of a SOCK_SEQPACKET pair to the job thread (dup3 over it): every frame
 * the job or the crash handler sends (RESULT, LOG, PROGRESS, CRASH, CRASH_INFO) reaches the job
 * thread. No held results to flush there (crash_contained_child()): they are the worker's. The
 * job runs as it would in the worker (job_spec_run(); the thread-local current job and the
 * alternate signal stack come with the fork); its end goes back in a one-entry DONE frame,
 * then _exit(0), so no exit handler runs (crash.c's on_exit hook is for exit() from a job).
 *
 * The job thread relays the child's frames to the master, those of this job only, and marks a
 * CRASH frame BH_CRASH_CONTAINED (the master then knows the worker is not dying), until the
 * child's pidfd says it is gone; then it reads what is left on the pair and reaps it. The job's
 * end: the child's DONE entry if it sent one and exited 0; else BH_OUTCOME_DIED_SIGNAL (status
 * the signal) or BH_OUTCOME_DIED_EXIT (status the exit code), which the master blames like a
 * crash of a worker running the job alone (with the CRASH frame's kind if one came: a signal,
 * memory, exit()), with no worker death.
 *
 * Cancelling it: contain_interrupt() (a CANCEL) writes the thread's eventfd; the job thread
 * then SIGKILLs the child through its pidfd (the job thread owns the child, so no pid can be
 * reused under it). A contained job is not told cooperatively: its cancel flag is in the
 * child's memory. The master ends a cancelled job's DIED end as cancelled, like an exec: job's
 * killed command. The worker's STOP does not reach the child either: a drain lets it run to
 * its end, and the master's stop deadline, which kills the worker, kills it too.
 *
 * If no child can be made (fork or the pair failing: EAGAIN, ENOMEM, EMFILE), the job runs in
 * the worker as if it had not been contained: a crash then kills the worker, as before. So
 * does an exec: job (the master never asks for one).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/protocol.h"
#include "contain.h"
#include "crash.h"
#include "job-context.h"
#include "job-kind.h"
#include "job-spec.h"

#define SETUP_FAILED 126 /* the child's exit code when it could not take its socket */

/* What the child said and how it ended. */
struct contain_end {
	bool done; /* its DONE entry came */
	int32_t status;
	enum bh_outcome outcome;
};

static uint64_t frame_job(const struct bh_frame *f)
{
	switch (f->type) {
	case BH_FRAME_RESULT:
	case BH_FRAME_LOG:
		return f->text.job_id;
	case BH_FRAME_PROGRESS:
		return f->progress.job_id;
	case BH_FRAME_CRASH:
		return f->crash.job_id;
	case BH_FRAME_CRASH_INFO:
		return f->crash_info.job_id;
	default:
		return 0;
	}
}

/* One frame of the child: relayed to the master, or its end kept. Anything else is dropped. */
static void relay_one(struct bulkhead_job *job, uint8_t *buf, size_t n, struct contain_end *end)
{
	struct bh_frame f;
	struct bh_done_entry e;

	if (bh_frame_decode(buf, n, &f) < 0 || !bh_frame_from_worker(f.type))
		return;
	if (f.type == BH_FRAME_DONE) {
		bh_frame_done_entry(&f, 0, &e);
		if (f.done.count == 1 && e.job_id == job->id) {
			end->done = true;
			end->status = e.status;
			end->outcome = (enum bh_outcome)e.outcome;
		}
		return;
	}
	/* A signal from outside the child is reported with job id 0: its death tells the rest. */
	if (frame_job(&f) != job->id)
		return;
	if (f.type == BH_FRAME_CRASH) {
		struct bh_crash c = f.crash;

		c.flags |= BH_CRASH_CONTAINED;
		n = bh_encode_crash(buf, BH_FRAME_MAX, &c);
		if (n == 0)
			return;
	} else if (f.type != BH_FRAME_RESULT && f.type != BH_FRAME_LOG &&
		   f.type != BH_FRAME_PROGRESS && f.type != BH_FRAME_CRASH_INFO) {
		return; /* EXEC: exec: jobs are never contained */
	}
	(void)job_context_send(buf, n);
}

/* Everything the child sent so far. Returns false at the end of the pair (no writer left). */
static bool relay(int sp, struct bulkhead_job *job, uint8_t *buf, struct contain_end *end)
{
	for (;;) {
		ssize_t n = recv(sp, buf, BH_FRAME_MAX, MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN;
		if (n == 0)
			return false;
		if ((size_t)n <= BH_FRAME_MAX)
			relay_one(job, buf, (size_t)n, end);
	}
}

static _Noreturn void child_main(struct bulkhead_job *job, pid_t parent, int sp_job, int sp_child)
{
	uint8_t buf[sizeof(struct bh_frame_header) + BH_BATCH_HEADER_SIZE +
		    sizeof(struct bh_done_entry)];
	struct bh_batch b;
	int status;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent ||
	    dup3(sp_child, job_context_socket(), O_CLOEXEC) < 0)
		_exit(SETUP_FAILED);
	close(sp_child);
	close(sp_job);
	crash_contained_child();
	status = job_spec_run(job);
	bh_batch_init(&b, buf, sizeof(buf), BH_FRAME_DONE);
	(void)bh_batch_add_done(&b, job->id, job->outcome, status, 0);
	(void)job_context_send(buf, bh_batch_finish(&b));
	_exit(0);
}

/* The thread's eventfd for contain_interrupt(), made at its first contained run. */
static int wake_fd(struct bulkhead_job *job)
{
	int fd = atomic_load_explicit(&job->contain_fd, memory_order_relaxed);

	if (fd < 0) {
		fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd >= 0)
			atomic_store_explicit(&job->contain_fd, fd, memory_order_release);
	}
	return fd;
}

/* Waits for the child's end, relaying its frames; kills it when the job is cancelled. */
static void wait_child(struct bulkhead_job *job, int sp, int pidfd, int efd, uint8_t *buf,
		       struct contain_end *end)
{
	struct pollfd pfd[3] = {
		{ .fd = sp, .events = POLLIN },
		{ .fd = pidfd, .events = POLLIN },
		{ .fd = efd, .events = POLLIN },
	};
	bool killed = false;

	for (;;) {
		uint64_t v;

		if (!killed && job_context_cancel_requested(job))
			killed = pidfd_send_signal(pidfd, SIGKILL, NULL, 0) == 0;
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return; /* cannot happen with valid fds; the reap below still waits */
		}
		if (pfd[0].revents && !relay(sp, job, buf, end))
			pfd[0].fd = -1; /* no writer left: only the pidfd now */
		if (pfd[2].revents)
			(void)!read(efd, &v, sizeof(v));
		if (pfd[1].revents)
			break;
	}
	if (pfd[0].fd >= 0)
		(void)relay(sp, job, buf, end);
}

int contain_run(struct bulkhead_job *job)
{
	struct contain_end end = { 0 };
	int sp[2], efd, pidfd = -1;
	pid_t parent = getpid(), pid;
	uint8_t *buf;
	siginfo_t si = { 0 };

	/* exec: jobs run their command in a process already; the master never asks (and a
	 * forked job thread must not talk to the worker's spawner, whose lock it may hold). */
	if (job->spec->kind == &exec_kind)
		return job_spec_run(job);
	efd = job_context_socket() >= 0 ? wake_fd(job) : -1;
	buf = efd >= 0 ? malloc(BH_FRAME_MAX) : NULL;
	if (!buf)
		return job_spec_run(job);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		free(buf);
		return job_spec_run(job);
	}
	atomic_store_explicit(&job->contained, true, memory_order_release);
	pid = fork();
	if (pid == 0)
		child_main(job, parent, sp[0], sp[1]);
	close(sp[1]);
	if (pid > 0)
		pidfd = (int)pidfd_open(pid, 0); /* ours until we reap it: cannot be reused */
	if (pid < 0 || pidfd < 0) {
		atomic_store_explicit(&job->contained, false, memory_order_relaxed);
		close(sp[0]);
		free(buf);
		if (pid > 0) {
			kill(pid, SIGKILL);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
		}
		return job_spec_run(job);
	}
	wait_child(job, sp[0], pidfd, efd, buf, &end);
	while (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR)
		;
	atomic_store_explicit(&job->contained, false, memory_order_relaxed);
	close(pidfd);
	close(sp[0]);
	free(buf);

	if (si.si_code == CLD_EXITED && si.si_status == 0 && end.done) {
		job->outcome = end.outcome;
		return end.status;
	}
	if (si.si_code == CLD_EXITED) {
		job->outcome = BH_OUTCOME_DIED_EXIT;
		return si.si_status;
	}
	job->outcome = BH_OUTCOME_DIED_SIGNAL;
	return si.si_status > 0 && si.si_status <= 64 ? si.si_status : SIGKILL;
}

void contain_interrupt(struct bulkhead_job *job)
{
	int fd = atomic_load_explicit(&job->contain_fd, memory_order_acquire);
	uint64_t one = 1;

	if (fd >= 0 && atomic_load_explicit(&job->contained, memory_order_acquire))
		(void)!write(fd, &one, sizeof(one));
}

void contain_thread_fini(struct bulkhead_job *job)
{
	int fd = atomic_exchange(&job->contain_fd, -1);

	if (fd >= 0)
		close(fd);
}
