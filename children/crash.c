/* SPDX-License-Identifier: MIT */
/*
 * Crash attribution: when the worker is about to die of a fault or of exit(), tell the master
 * which job did it, in one CRASH frame, then die the way it would have died anyway.
 *
 * Fatal signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) are handled with SA_ONSTACK on a
 * per-thread alternate stack (crash_thread_init(), one mmap'd block per thread with a guard
 * page below it), so a job that overflowed its stack is caught too. The handler uses only
 * async-signal-safe calls: it claims the crash (an atomic compare-and-swap on the owner's
 * tid; the first thread wins, a second crashing thread waits in pause() for the first one to
 * kill the process, and a fault inside the owner's own handling goes straight to death), reads
 * the thread's current job from TLS (job_context_current(): initial-exec TLS, no allocation),
 * encodes the frame on its stack with bh_encode_crash() and send()s it on the master socket
 * (job_context_socket()) with MSG_NOSIGNAL (blocking: the master always reads, and a lost
 * frame would turn a culprit into suspects). Then it restores SIG_DFL and re-raises: the
 * signal stays pending while the handler runs and kills the process on return, for faults
 * (which would re-execute) and for abort() alike. A signal sent from another process
 * (si_code <= 0 and si_pid not ours) is not blamed on the job that happened to be running:
 * it is reported with job id 0.
 *
 * After the CRASH frame, a second one, CRASH_INFO (crash-trace.c): the faulting instruction's
 * object and symbol and a bounded backtrace, for the logs and reports. It comes second so that
 * nothing it does can keep the blame from the master.
 *
 * exit(): an on_exit() hook. If the exiting thread is in a job, it sends CRASH kind EXIT
 * (signo 0, code = the exit status) and _exit()s with the same status at once, so no other
 * exit handler (or sanitizer leak check) runs while other job threads are still going.
 * exit() from the main thread, outside any job, is a normal exit and is not reported.
 *
 * Held results (crash_flush_setup()): a job's crash also kills the results other jobs of the
 * worker finished and pool.c held back to batch them (up to 2 ms of them), and those jobs
 * would run again. So, after the CRASH frames and only for a fault of a job's own, the
 * handler writes the pool's eventfd (write() is async-signal-safe) and waits, polling two
 * atomics with nanosleep(), until a pass of the main thread that began after it looked has
 * sent everything it took, or CRASH_FLUSH_WAIT_NS passed (a main thread that is stuck, for
 * instance on a malloc lock the crashing thread held, costs the wait, not the report). It
 * does not wait when nothing is held: the outbox empty (pool_results_held(), an atomic
 * copy of its count) and the main thread's last pass done with all it took sent, as in a
 * solo worker running a culprit's retry (waking the main thread was 0.1-0.25 ms a crash
 * on a loaded machine).
 *
 * Once a crash is claimed, crash_reported() is true: pool.c's job threads start no job after
 * it (crash_hold_thread() parks them; the jobs they held are bystanders).
 *
 * Core dumps (crash_core_dumps(), the pool's core_dumps): RLIMIT_CORE is 0 unless the pool
 * asks for them; then it is unlimited (or the hard limit) and the process dumpable. The
 * handler's re-raise with SIG_DFL is what writes the core, where core_pattern says
 * (systemd-coredump honours the soft limit too).
 *
 * Out of memory: the `leak` builtin (and the main thread, when it cannot allocate) call
 * crash_set_oom() before abort(); the SIGABRT is then reported as kind OOM.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/protocol.h"
#include "crash-trace.h"
#include "crash.h"
#include "job-context.h"

static const int fatal_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };

static atomic_int crash_owner; /* tid of the thread reporting the crash, 0 if none */

#define CRASH_FLUSH_WAIT_NS (50 * 1000 * 1000) /* at most, for the main thread to send */
static int flush_wake_fd = -1;
static const atomic_size_t *flush_held; /* the outbox's count (pool.c) */
static atomic_uint flush_pass;      /* passes of the main thread begun */
static atomic_uint flush_pass_done; /* the last pass that sent all it took */

static bool contained_child; /* crash_contained_child() */
static __thread bool thread_oom;
static __thread void *altstack;
static __thread size_t altstack_len;

/*
 * True if the calling thread now owns the crash report; false if it already did (a second
 * fault while reporting). If another thread owns it, waits for that one to end the process.
 */
static bool crash_claim(void)
{
	int tid = (int)gettid();
	int expected = 0;

	if (atomic_compare_exchange_strong(&crash_owner, &expected, tid))
		return true;
	if (expected == tid)
		return false;
	for (;;)
		pause();
}

static void crash_send(uint64_t job_id, enum bh_crash_kind kind, int signo, int code, uint64_t addr)
{
	uint8_t buf[sizeof(struct bh_frame_header) + sizeof(struct bh_crash)];
	struct bh_crash c = {
		.job_id = job_id,
		.kind = kind,
		.signo = signo,
		.code = code,
		.addr = addr,
	};
	size_t n = bh_encode_crash(buf, sizeof(buf), &c);

	while (send(job_context_socket(), buf, n, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

static bool signal_from_outside(const siginfo_t *si)
{
	return si->si_code <= 0 && si->si_pid != getpid();
}

static bool signal_has_addr(int sig, const siginfo_t *si)
{
	return sig != SIGABRT && si->si_code > 0;
}

void crash_flush_setup(int wake_fd, const atomic_size_t *held)
{
	flush_wake_fd = wake_fd;
	flush_held = held;
}

unsigned crash_flush_pass_begin(void)
{
	return atomic_fetch_add_explicit(&flush_pass, 1, memory_order_acq_rel) + 1;
}

void crash_flush_pass_done(unsigned pass)
{
	atomic_store_explicit(&flush_pass_done, pass, memory_order_release);
}

static int64_t elapsed_ns(const struct timespec *a, const struct timespec *b)
{
	return (int64_t)(b->tv_sec - a->tv_sec) * 1000000000 + (b->tv_nsec - a->tv_nsec);
}

/* In the handler: let the main thread send the results held back (see the top). */
static void flush_held_results(void)
{
	unsigned seen = atomic_load_explicit(&flush_pass, memory_order_acquire);
	uint64_t one = 1;
	struct timespec start, now, nap = { .tv_nsec = 20 * 1000 };

	/* Nothing in the outbox, nothing in the main thread's hands: no wait. */
	if (flush_held && atomic_load_explicit(flush_held, memory_order_relaxed) == 0 &&
	    atomic_load_explicit(&flush_pass_done, memory_order_acquire) == seen)
		return;
	if (flush_wake_fd < 0 || clock_gettime(CLOCK_MONOTONIC, &start) < 0 ||
	    write(flush_wake_fd, &one, sizeof(one)) != sizeof(one))
		return;
	for (;;) {
		/* a pass that began after `seen` took every result held when we crashed */
		if ((int)(atomic_load_explicit(&flush_pass_done, memory_order_acquire) - seen) > 0)
			return;
		if (clock_gettime(CLOCK_MONOTONIC, &now) < 0 ||
		    elapsed_ns(&start, &now) >= CRASH_FLUSH_WAIT_NS)
			return;
		nanosleep(&nap, NULL);
	}
}

/*
 * In the handler, once the CRASH frame is out: the threads of this process but `keep` to
 * SCHED_IDLE, so that the rest of its life (the diagnostics, other job threads running on
 * until the signal takes them, the kernel's teardown of its memory) takes no CPU from the
 * processes that live on. A CPU that runs only SCHED_IDLE tasks counts as idle where a woken
 * thread is placed: the job thread of the spare that steps into our slot at the CRASH frame
 * lands there, instead of queueing behind the other busy one until the scheduler's periodic
 * balance moves it (measured: 2-4 ms with a CPU idle per crash on a 2-core machine,
 * bench/README.md, issue 17). The main thread (`keep`) goes last, after its pass that sends
 * the results held back. The threads are listed with open() and getdents64 (async-signal-safe
 * system calls); keep 0: all of them.
 */
static void crash_yield_cpu(pid_t keep)
{
	const struct sched_param sp = { 0 };
	char buf[2048];
	int fd;
	long n;

	if (contained_child) {
		(void)sched_setscheduler(0, SCHED_IDLE, &sp);
		return;
	}
	fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (gettid() != keep)
			(void)sched_setscheduler(0, SCHED_IDLE, &sp);
		return;
	}
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			const struct dirent64 *d = (const struct dirent64 *)(buf + off);
			pid_t tid = 0;

			for (const char *c = d->d_name; *c >= '0' && *c <= '9'; c++)
				tid = tid * 10 + (*c - '0');
			if (tid > 0 && tid != keep)
				(void)sched_setscheduler(tid, SCHED_IDLE, &sp);
			off += d->d_reclen;
		}
	}
	close(fd);
}

bool crash_reported(void)
{
	return atomic_load_explicit(&crash_owner, memory_order_acquire) != 0;
}

_Noreturn void crash_hold_thread(void)
{
	for (;;)
		pause();
}

static void crash_signal(int sig, siginfo_t *si, void *ucontext)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	int saved_errno = errno;

	if (crash_claim()) {
		struct bulkhead_job *job = job_context_current();
		uint64_t job_id = job && !signal_from_outside(si) ? job->id : 0;
		enum bh_crash_kind kind =
			sig == SIGABRT && thread_oom ? BH_CRASH_OOM : BH_CRASH_SIGNAL;

		uint64_t addr = signal_has_addr(sig, si) ? (uint64_t)(uintptr_t)si->si_addr : 0;

		crash_send(job_id, kind, sig, si->si_code, addr);
		crash_yield_cpu(getpid());
		/* Attribution is out; now, at best effort, where it happened (crash-trace.c). */
		if (!signal_from_outside(si))
			crash_trace_send(job_id, addr, ucontext, job ? job->trace_floor : NULL);
		if (job_id != 0)
			flush_held_results();
		(void)sched_setscheduler(getpid(), SCHED_IDLE, &(struct sched_param){ 0 });
	}

	/* Pending until we return (sig is blocked in here), then fatal. */
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	raise(sig);
	errno = saved_errno;
}

static void crash_on_exit(int status, void *arg)
{
	struct bulkhead_job *job = job_context_current();

	if (!job)
		return;
	if (crash_claim()) {
		crash_send(job->id, BH_CRASH_EXIT, 0, status, 0);
		crash_yield_cpu(0);
	}
	_exit(status);
}

int crash_core_dumps(bool on)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_CORE, &rl) < 0)
		return -errno;
	if (!on) {
		rl = (struct rlimit){ 0, 0 };
		return setrlimit(RLIMIT_CORE, &rl) < 0 ? -errno : 0;
	}
	/* Unlimited if we may, else up to the hard limit we were given. */
	if (setrlimit(RLIMIT_CORE, &(struct rlimit){ RLIM_INFINITY, RLIM_INFINITY }) < 0) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_CORE, &rl) < 0)
			return -errno;
		if (rl.rlim_max == 0)
			return -EPERM;
	}
	/* Dumpable: a change of ids clears it (privileges.c sets it again too). */
	return prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0 ? -errno : 0;
}

void crash_contained_child(void)
{
	crash_flush_setup(-1, NULL);
	contained_child = true;
}

void crash_set_oom(void)
{
	thread_oom = true;
}

int crash_thread_init(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = CRASH_ALTSTACK_SIZE + page;
	stack_t ss;
	void *p;
	int r;

	crash_trace_prepare(); /* backtrace()'s first call allocates: not in the handler */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* Guard page below the stack: overflowing the handler faults instead of corrupting. */
	if (mprotect(p, page, PROT_NONE) < 0)
		goto fail;
	ss = (stack_t){ .ss_sp = (uint8_t *)p + page, .ss_size = CRASH_ALTSTACK_SIZE };
	if (sigaltstack(&ss, NULL) < 0)
		goto fail;
	altstack = p;
	altstack_len = len;
	return 0;
fail:
	r = -errno;
	munmap(p, len);
	return r;
}

void crash_thread_fini(void)
{
	stack_t ss = { .ss_flags = SS_DISABLE };

	if (!altstack)
		return;
	sigaltstack(&ss, NULL);
	munmap(altstack, altstack_len);
	altstack = NULL;
}

int crash_install(void)
{
	struct sigaction sa = {
		.sa_sigaction = crash_signal,
		.sa_flags = SA_SIGINFO | SA_ONSTACK,
	};
	int r;

	r = crash_thread_init();
	if (r < 0)
		return r;
	/* Everything blocked while reporting; a synchronous fault in here still kills. */
	sigfillset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++)
		if (sigaction(fatal_signals[i], &sa, NULL) < 0)
			return -errno;
	if (on_exit(crash_on_exit, NULL) != 0)
		return -ENOMEM;
	return 0;
}
