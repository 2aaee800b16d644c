/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of bulkhead-worker ($BULKHEAD_WORKER): each test plays the master on a
 * private socketpair (the worker's fd 3), starts the real binary, sends SPEC/ASSIGN/STOP
 * frames, reads HELLO/DONE/CRASH frames with deadlines, then checks how the worker ended
 * and that nothing is left behind (no zombie, no live worker).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/protocol.h"
#include "common/sched-slice.h"
#include "testutil.h"

#define FRAME_TIMEOUT_MS 20000 /* generous: sanitizer builds are slow */
#define QUIET_MS 200 /* "nothing happens" windows (hang, deadlock) */

struct wk {
	pid_t pid;
	int sock;
	int err; /* the worker's stderr (wk_start_capture()), else -1 */
	uint8_t buf[BH_FRAME_MAX];
};

static const char *worker_path(void)
{
	const char *p = getenv("BULKHEAD_WORKER");

	ck_assert_msg(p && *p, "BULKHEAD_WORKER is not set");
	return p;
}

/*
 * Starts a worker with the given options (after --pool/--index/--threads/--master-pid);
 * capture: its stderr goes to a pipe, w->err.
 */
static void wk_spawn(struct wk *w, const char *pool, unsigned index, unsigned threads,
		     const char *const extra[], bool capture)
{
	char idx[16], thr[16], pid[16];
	const char *argv[32];
	int sv[2], n = 0, r;

	snprintf(idx, sizeof(idx), "%u", index);
	snprintf(thr, sizeof(thr), "%u", threads);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	argv[n++] = worker_path();
	argv[n++] = "--pool";
	argv[n++] = pool;
	argv[n++] = "--index";
	argv[n++] = idx;
	argv[n++] = "--threads";
	argv[n++] = thr;
	argv[n++] = "--master-pid";
	argv[n++] = pid;
	for (int i = 0; extra && extra[i]; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	w->err = -1;
	r = tu_spawn(argv, NULL, sv[1], NULL, capture ? &w->err : NULL, &w->pid);
	ck_assert_msg(r == 0, "spawn %s: %s", argv[0], strerror(-r));
	close(sv[1]);
	w->sock = sv[0];
}

static void wk_start_full(struct wk *w, const char *pool, unsigned index, unsigned threads,
			  const char *const extra[])
{
	wk_spawn(w, pool, index, threads, extra, false);
}

/* Receives and decodes one frame; fails the test on EOF, timeout or a bad frame. */
static void wk_recv(struct wk *w, struct bh_frame *f, int timeout_ms)
{
	int n = tu_recv_frame(w->sock, w->buf, timeout_ms);

	ck_assert_msg(n != 0, "worker closed its socket unexpectedly");
	ck_assert_msg(n > 0, "no frame from the worker: %s", strerror(-n));
	ck_assert_int_eq(bh_frame_decode(w->buf, (size_t)n, f), 0);
	ck_assert_msg(bh_frame_from_worker(f->type), "worker sent a %s frame",
		      bh_frame_type_name(f->type));
}

static void wk_expect_hello(struct wk *w, unsigned threads)
{
	struct bh_frame f;

	wk_recv(w, &f, FRAME_TIMEOUT_MS);
	ck_assert_msg(f.type == BH_FRAME_HELLO, "expected HELLO, got %s",
		      bh_frame_type_name(f.type));
	ck_assert_int_eq(f.hello.pid, w->pid);
	ck_assert_uint_eq(f.hello.threads, threads);
}

static void wk_start(struct wk *w, unsigned threads)
{
	wk_start_full(w, "test", 0, threads, NULL);
	wk_expect_hello(w, threads);
}

/* wk_start(), with the worker's stderr on a pipe (w->err) to read its log. */
static void wk_start_capture(struct wk *w, unsigned threads)
{
	wk_spawn(w, "test", 0, threads, NULL, true);
	ck_assert_int_ge(w->err, 0);
	wk_expect_hello(w, threads);
}

static void wk_spec(struct wk *w, uint32_t id, const char *run, const char *args)
{
	ck_assert_int_eq(tu_send_spec(w->sock, id, run, args), 0);
}

static void wk_assign(struct wk *w, uint64_t first, size_t n, uint32_t spec)
{
	ck_assert_int_eq(tu_send_assign_range(w->sock, first, n, spec), 0);
}

/*
 * Reads DONE frames until every job in [first, first + n) reported exactly once. status
 * (indexed by id - first) and order (finishing order) may be NULL. Fails on CRASH.
 */
static void wk_collect(struct wk *w, uint64_t first, size_t n, int32_t *status, uint64_t *order)
{
	bool *seen = calloc(n, sizeof(*seen));
	size_t got = 0;

	ck_assert_ptr_nonnull(seen);
	while (got < n) {
		struct bh_frame f;

		wk_recv(w, &f, FRAME_TIMEOUT_MS);
		ck_assert_msg(f.type == BH_FRAME_DONE, "expected DONE, got %s (job %" PRIu64 ")",
			      bh_frame_type_name(f.type),
			      f.type == BH_FRAME_CRASH ? f.crash.job_id : 0);
		for (uint32_t i = 0; i < f.done.count; i++) {
			struct bh_done_entry e;

			bh_frame_done_entry(&f, i, &e);
			ck_assert_msg(e.job_id >= first && e.job_id < first + n,
				      "DONE for unknown job %" PRIu64, e.job_id);
			ck_assert_msg(!seen[e.job_id - first], "job %" PRIu64 " DONE twice",
				      e.job_id);
			seen[e.job_id - first] = true;
			if (status)
				status[e.job_id - first] = e.status;
			if (order)
				order[got] = e.job_id;
			got++;
		}
	}
	free(seen);
}

/* Nothing arrives for ms milliseconds. */
static void wk_expect_quiet(struct wk *w, int ms)
{
	int n = tu_recv_frame(w->sock, w->buf, ms);

	if (n > 0)
		ck_abort_msg("expected silence, got a frame");
	ck_assert_msg(n == -ETIMEDOUT, "expected silence, got %s",
		      n == 0 ? "end of file" : strerror(-n));
}

static void check_aftermath(struct wk *w)
{
	ck_assert_msg(!tu_process_alive(w->pid), "worker %d still alive", (int)w->pid);
	ck_assert_int_eq(tu_count_zombie_children(), 0);
	close(w->sock);
	w->sock = -1;
}

static void wk_expect_exit(struct wk *w, int code)
{
	int status, r;

	r = tu_wait_exit(w->pid, FRAME_TIMEOUT_MS, &status);
	if (r == -ETIMEDOUT)
		tu_kill_wait(w->pid);
	ck_assert_msg(r == 0, "worker did not exit: %s", strerror(-r));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == code,
		      "worker %s, expected exit %d", tu_describe_status(status), code);
	check_aftermath(w);
}

static void wk_expect_signal(struct wk *w, int sig)
{
	int status, r;

	r = tu_wait_exit(w->pid, FRAME_TIMEOUT_MS, &status);
	if (r == -ETIMEDOUT)
		tu_kill_wait(w->pid);
	ck_assert_msg(r == 0, "worker did not die: %s", strerror(-r));
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == sig,
		      "worker %s, expected death by SIG%s", tu_describe_status(status),
		      sigabbrev_np(sig));
	check_aftermath(w);
}

/* The worker is still running; SIGKILL and reap it. */
static void wk_kill(struct wk *w)
{
	ck_assert_msg(tu_process_alive(w->pid), "worker is not running");
	ck_assert_int_eq(tu_kill_wait(w->pid), 0);
	check_aftermath(w);
}

static uint8_t scratch[BH_FRAME_MAX];

static void setup(void)
{
	struct rlimit no_core = { 0, 0 };

	/* Crash tests kill workers with core-dumping signals: keep that cheap. */
	setrlimit(RLIMIT_CORE, &no_core);
}

/* --- start-up and command line --- */

START_TEST(test_hello)
{
	struct wk w;

	wk_start(&w, 3);
	ck_assert_int_eq(tu_send_stop(w.sock), 0);
	wk_expect_exit(&w, 0);
}
END_TEST

static const char *const bad_usages[][6] = {
	{ "--index", "0", "--threads", "1", NULL }, /* no --pool */
	{ "--pool", "p", "--threads", "1", NULL }, /* no --index */
	{ "--pool", "p", "--index", "0", "--threads", "0" }, /* threads out of range */
	{ "--pool", "p", "--index", "0", "--threads", "257" }, /* threads out of range */
	{ "--pool", "p", "--index", "abc", "--threads", "1" }, /* bad index */
	{ "--pool", "p", "--index", "0", "--bogus", NULL }, /* unknown option */
	{ "--pool", "p", "--index", "0", "extra", NULL }, /* stray argument */
	{ "--pool", "", "--index", "0", "--threads", "1" }, /* empty pool */
	{ "--memory-max", "lots", "--pool", "p", "--index", "0" }, /* bad size */
};

START_TEST(test_usage)
{
	const char *argv[16];
	char pid[16];
	int n = 0, status, r, sv[2];
	pid_t child;

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	argv[n++] = worker_path();
	for (int i = 0; i < 6 && bad_usages[_i][i]; i++)
		argv[n++] = bad_usages[_i][i];
	argv[n++] = "--master-pid";
	argv[n++] = pid;
	if (_i == 8) {
		argv[n++] = "--threads";
		argv[n++] = "1";
	}
	argv[n] = NULL;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(tu_spawn(argv, NULL, sv[1], NULL, NULL, &child), 0);
	close(sv[1]);
	r = tu_wait_exit(child, FRAME_TIMEOUT_MS, &status);
	ck_assert_int_eq(r, 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2, "usage case %d: %s", _i,
		      tu_describe_status(status));
	/* It never said HELLO. */
	ck_assert_int_eq(tu_recv_frame(sv[0], scratch, 0), 0);
	close(sv[0]);
	ck_assert_int_eq(tu_count_zombie_children(), 0);
}
END_TEST

START_TEST(test_no_socket)
{
	char pid[16];
	const char *argv[] = { worker_path(), "--pool", "p", "--index", "0", "--threads", "1",
			       "--master-pid", pid, NULL };
	int status;
	pid_t child;

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	ck_assert_int_eq(tu_spawn(argv, NULL, -1, NULL, NULL, &child), 0);
	ck_assert_int_eq(tu_wait_exit(child, FRAME_TIMEOUT_MS, &status), 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2, "%s",
		      tu_describe_status(status));
}
END_TEST

/* A --master-pid that is not our parent: the master is gone, exit 1 before HELLO. */
START_TEST(test_not_parent)
{
	char pid[16];
	const char *argv[] = { worker_path(), "--pool", "p", "--index", "0", "--threads", "1",
			       "--master-pid", pid, NULL };
	int status, sv[2];
	pid_t child;

	snprintf(pid, sizeof(pid), "%d", (int)getppid());
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(tu_spawn(argv, NULL, sv[1], NULL, NULL, &child), 0);
	close(sv[1]);
	ck_assert_int_eq(tu_wait_exit(child, FRAME_TIMEOUT_MS, &status), 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "%s",
		      tu_describe_status(status));
	ck_assert_int_eq(tu_recv_frame(sv[0], scratch, 0), 0);
	close(sv[0]);
}
END_TEST

static bool task_has_comm(pid_t pid, const char *want)
{
	char path[384], dirpath[64];
	bool found = false;
	struct dirent *de;
	DIR *d;

	snprintf(dirpath, sizeof(dirpath), "/proc/%d/task", (int)pid);
	d = opendir(dirpath);
	ck_assert_ptr_nonnull(d);
	while (!found && (de = readdir(d))) {
		char *comm;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/comm", dirpath, de->d_name);
		comm = tu_read_file(path);
		if (comm) {
			comm[strcspn(comm, "\n")] = '\0';
			found = strcmp(comm, want) == 0;
			free(comm);
		}
	}
	closedir(d);
	return found;
}

START_TEST(test_thread_names)
{
	struct wk w;
	char want[32];

	wk_start_full(&w, "main", 3, 4, NULL);
	wk_expect_hello(&w, 4);
	for (unsigned t = 0; t < 4; t++) {
		snprintf(want, sizeof(want), "main/3:%u", t);
		ck_assert_msg(task_has_comm(w.pid, want), "no thread named %s", want);
	}
	/* The process keeps its own name (the main thread's), so ps/pgrep find workers. */
	ck_assert_msg(task_has_comm(w.pid, "bulkhead-worker"), "main thread renamed");
	wk_kill(&w);

	/* A long pool name is cut so that the /INDEX:T suffix survives the 15-byte limit. */
	wk_start_full(&w, "averyveryverylongpoolname", 12, 2, NULL);
	wk_expect_hello(&w, 2);
	ck_assert(task_has_comm(w.pid, "averyveryv/12:0"));
	ck_assert(task_has_comm(w.pid, "averyveryv/12:1"));
	wk_kill(&w);
}
END_TEST

/* --- running jobs --- */

START_TEST(test_noop_batch)
{
	enum { N = 10000 };
	int32_t *status = calloc(N, sizeof(*status));
	struct wk w;

	wk_start(&w, 2);
	wk_spec(&w, 0, "builtin:noop", "");
	wk_assign(&w, 1, N, 0);
	wk_collect(&w, 1, N, status, NULL);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(status[i], 0);
	wk_expect_quiet(&w, 50);
	ck_assert_int_eq(tu_send_stop(w.sock), 0);
	wk_expect_exit(&w, 0);
	free(status);
}
END_TEST

/* Pipelined like a master would: keep `window` jobs outstanding, measure jobs/s. */
START_TEST(test_noop_throughput)
{
	enum { N = 400000, WINDOW = 40000 };
	bool *seen = calloc(N + 1, sizeof(*seen));
	size_t sent = 0, got = 0;
	int64_t start, elapsed;
	struct wk w;

	ck_assert_ptr_nonnull(seen);

	wk_start(&w, 2);
	wk_spec(&w, 0, "builtin:noop", "");
	start = tu_now_ms();
	while (got < N) {
		struct bh_frame f;

		if (sent < N && sent - got < WINDOW) {
			size_t n = N - sent < BH_ASSIGN_MAX ? N - sent : BH_ASSIGN_MAX;

			wk_assign(&w, 1 + sent, n, 0);
			sent += n;
			continue;
		}
		wk_recv(&w, &f, FRAME_TIMEOUT_MS);
		ck_assert_int_eq(f.type, BH_FRAME_DONE);
		for (uint32_t i = 0; i < f.done.count; i++) {
			struct bh_done_entry e;

			bh_frame_done_entry(&f, i, &e);
			ck_assert(e.job_id >= 1 && e.job_id <= N && !seen[e.job_id]);
			ck_assert_int_eq(e.status, 0);
			seen[e.job_id] = true;
		}
		got += f.done.count;
	}
	elapsed = tu_now_ms() - start;
	if (elapsed < 1)
		elapsed = 1;
	printf("worker noop throughput, 2 threads: %d jobs in %" PRId64 " ms = %.0f jobs/s\n", N,
	       elapsed, N * 1000.0 / (double)elapsed);
	fflush(stdout);
	ck_assert_uint_eq(got, N);
#if !BULKHEAD_SANITIZED
	ck_assert_msg(N * 1000.0 / (double)elapsed > 20000, "under 20k noop jobs/s");
#endif
	ck_assert_int_eq(tu_send_stop(w.sock), 0);
	wk_expect_exit(&w, 0);
	free(seen);
}
END_TEST

/* One thread: results come back exactly in assignment order, across specs and frames. */
START_TEST(test_fifo)
{
	enum { N = 3000 };
	uint64_t *order = calloc(N, sizeof(*order));
	int32_t *status = calloc(N, sizeof(*status));
	struct wk w;

	wk_start(&w, 1);
	wk_spec(&w, 0, "builtin:noop", "");
	wk_spec(&w, 1, "builtin:spin", "us=20");
	wk_spec(&w, 2, "builtin:fail", "");
	for (uint64_t id = 1; id <= N; id++)
		wk_assign(&w, id, 1, (uint32_t)(id % 3));
	wk_collect(&w, 1, N, status, order);
	for (uint64_t i = 0; i < N; i++) {
		ck_assert_uint_eq(order[i], i + 1);
		ck_assert_int_eq(status[i], (i + 1) % 3 == 2 ? 1 : 0);
	}
	ck_assert_int_eq(tu_send_stop(w.sock), 0);
	wk_expect_exit(&w, 0);
	free(order);
	free(status);
}
END_TEST

/* With T threads the first T unfinished jobs run: two hangs block the third job. */
START_TEST(test_fifo_running_set)
{
	struct wk w;

	wk_start(&w, 2);
	wk_spec(&w, 0, "builtin:hang", "");
	wk_spec(&w, 1, "builtin:noop", "");
	wk_assign(&w, 1, 2, 0);
	wk_assign(&w, 3, 1, 1);
	wk_expect_quiet(&w, QUIET_MS);
	wk_kill(&w);
}
END_TEST

START_TEST(test_fail)
{
	enum { N = 2000 };
	int32_t *status = calloc(3 * N, sizeof(*status));
	unsigned failed = 0;
	struct wk w;

	wk_start(&w, 2);
	wk_spec(&w, 0, "builtin:fail", "");
	wk_spec(&w, 1, "builtin:fail", "probability=0");
	wk_spec(&w, 2, "builtin:fail", "probability=0.5");
	wk_assign(&w, 1, N, 0);
	wk_assign(&w, 1 + N, N, 1);
	wk_assign(&w, 1 + 2 * N, N, 2);
	wk_collect(&w, 1, 3 * N, status, NULL);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(status[i], 1);
		ck_assert_int_eq(status[N + i], 0);
		ck_assert(status[2 * N + i] == 0 || status[2 * N + i] == 1);
		failed += (unsigned)status[2 * N + i];
	}
	/* 2000 fair coins: outside 700..1300 has probability ~1e-40. */
	ck_assert_msg(failed > 700 && failed < 1300, "probability=0.5 failed %u of %d", failed, N);
	ck_assert_int_eq(tu_send_stop(w.sock), 0);
	wk_expect_exit(&w, 0);
	free(status);
}
END_TEST

START_TEST(test_balance)
{
	enum { N = 400 };
	int32_t *status = calloc(N, sizeof(*status));
	struct wk w;

	wk_start(&w, 8);
	wk_spec(&w, 0, "builtin:balance", "iterations=2000 amount=5 lock=yes");
	wk_assign(&w, 1, N, 0);
	wk_collect(&w, 1, N, status, NULL);
	for (int i = 0; i < N; i++)
		ck_assert_msg(status[i] == 0, "balance job %d: status %d", i + 1, status[i]);
	ck_assert_int_eq(tu_send_stop(w.sock), 0);
	wk_expect_exit(&w, 0);
	free(status);
}
END_TEST

/* lock=no shows the race; how often depends on the machine, so this only reports it. */
START_TEST(test_balance_unlocked)
{
	enum { N = 400 };
	int32_t *status = calloc(N, sizeof(*status));
	unsigned failed = 0;
	struct wk w;

	wk_start(&w, 8);
	wk_spec(&w, 0, "builtin:balance", "iterations=20000 lock=no");
	wk_assign(&w, 1, N, 0);
	wk_collect(&w, 1, N, status, NULL);
	for (int i = 0; i < N; i++) {
		ck_assert(status[i] == 0 || status[i] == 1);
		failed += (unsigned)status[i];
	}
	printf("balance lock=no: %u of %d jobs found the balance off\n", failed, N);
	fflush(stdout);
	ck_assert_int_eq(tu_send_stop(w.sock), 0);
	wk_expect_exit(&w, 0);
	free(status);
}
END_TEST

START_TEST(test_tls)
{
	enum { N = 400 };
	int32_t *status = calloc(N, sizeof(*status));
	struct wk w;

	wk_start(&w, 8);
	wk_spec(&w, 0, "builtin:tls", "rounds=200");
	wk_assign(&w, 1, N, 0);
	wk_collect(&w, 1, N, status, NULL);
	for (int i = 0; i < N; i++)
		ck_assert_msg(status[i] == 0, "tls job %d: status %d", i + 1, status[i]);
	ck_assert_int_eq(tu_send_stop(w.sock), 0);
	wk_expect_exit(&w, 0);
	free(status);
}
END_TEST

START_TEST(test_sleep_spin_hang_finite)
{
	int32_t status[3];
	int64_t start = tu_now_ms();
	struct wk w;

	wk_start(&w, 3);
	wk_spec(&w, 0, "builtin:sleep", "ms=100");
	wk_spec(&w, 1, "builtin:spin", "us=100000");
	wk_spec(&w, 2, "builtin:hang", "ms=100");
	wk_assign(&w, 1, 1, 0);
	wk_assign(&w, 2, 1, 1);
	wk_assign(&w, 3, 1, 2);
	wk_collect(&w, 1, 3, status, NULL);
	ck_assert_int_ge(tu_now_ms() - start, 100);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(status[i], 0);
	ck_assert_int_eq(tu_send_stop(w.sock), 0);
	wk_expect_exit(&w, 0);
}
END_TEST

/* Specs that cannot run: every job fails with 127 (not found) or 2 (bad args). */
START_TEST(test_bad_specs)
{
	int32_t status[4];
	struct wk w;

	wk_start(&w, 2);
	wk_spec(&w, 0, "builtin:nope", "");
	wk_spec(&w, 1, "builtin:noop", "bogus=1");
	wk_spec(&w, 2, "plugin:/nonexistent.so:job", "");
	wk_spec(&w, 3, "builtin:balance", "lock=maybe");
	for (uint32_t i = 0; i < 4; i++)
		wk_assign(&w, 1 + i, 1, i);
	wk_collect(&w, 1, 4, status, NULL);
	ck_assert_int_eq(status[0], 127);
	ck_assert_int_eq(status[1], 2);
	ck_assert_int_eq(status[2], 127);
	ck_assert_int_eq(status[3], 2);
	ck_assert_int_eq(tu_send_stop(w.sock), 0);
	wk_expect_exit(&w, 0);
}
END_TEST

/* --- crashes --- */

struct crash_case {
	const char *builtin;
	const char *args;
	uint32_t kind;
	int signo;
	int code; /* si_code (exit status for EXIT); INT32_MIN: any */
	bool addr; /* a fault address is expected */
};

static const struct crash_case crash_cases[] = {
	{ "segv", "", BH_CRASH_SIGNAL, SIGSEGV, SEGV_MAPERR, true },
	{ "abort", "", BH_CRASH_SIGNAL, SIGABRT, SI_TKILL, false },
	{ "fpe", "", BH_CRASH_SIGNAL, SIGFPE, FPE_INTDIV, true },
	{ "ill", "", BH_CRASH_SIGNAL, SIGILL, ILL_ILLOPN, true },
	{ "bus", "probability=1", BH_CRASH_SIGNAL, SIGBUS, BUS_ADRERR, true },
	{ "stack-overflow", "", BH_CRASH_SIGNAL, SIGSEGV, INT32_MIN, true },
	{ "exit", "code=7", BH_CRASH_EXIT, 0, 7, false },
};

/*
 * Runs noops 1..40, the crashing job 41, noops 42..80 on 2 threads: exactly one CRASH
 * frame, naming job 41, and after it one CRASH_INFO for a signal; no DONE for 41, none twice;
 * then the worker's socket closes.
 */
static void run_crash_of(struct wk *w, const char *run, const struct crash_case *c,
			 const char *const extra[])
{
	enum { CULPRIT = 41, LAST = 80 };
	bool done[LAST + 1] = { false }, crashed = false, info = false;
	uint64_t addr = 0;

	wk_start_full(w, "crash", 0, 2, extra);
	wk_expect_hello(w, 2);
	wk_spec(w, 0, "builtin:noop", "");
	wk_spec(w, 1, run, c->args);
	{
		/* One frame: the worker may be dead before a second one could be sent. */
		struct bh_batch b;

		bh_batch_init(&b, scratch, sizeof(scratch), BH_FRAME_ASSIGN);
		for (uint64_t id = 1; id <= LAST; id++)
			ck_assert(bh_batch_add_assign(&b, id, id == CULPRIT ? 1 : 0, 0));
		ck_assert_int_eq(tu_send_frame(w->sock, scratch, bh_batch_finish(&b)), 0);
	}

	for (;;) {
		struct bh_frame f;
		int n = tu_recv_frame(w->sock, w->buf, FRAME_TIMEOUT_MS);

		/*
		 * A worker that dies with frames unread makes the next recv() fail once with
		 * ECONNRESET; the frames it sent before dying are still queued behind that.
		 */
		if (n == -ECONNRESET)
			continue;
		ck_assert_msg(n >= 0, "waiting for CRASH: %s", strerror(-n));
		if (n == 0)
			break;
		ck_assert_int_eq(bh_frame_decode(w->buf, (size_t)n, &f), 0);
		if (f.type == BH_FRAME_DONE) {
			for (uint32_t i = 0; i < f.done.count; i++) {
				struct bh_done_entry e;

				bh_frame_done_entry(&f, i, &e);
				ck_assert_msg(e.job_id != CULPRIT, "culprit reported DONE %d",
					      e.status);
				ck_assert(e.job_id >= 1 && e.job_id <= LAST && !done[e.job_id]);
				done[e.job_id] = true;
			}
			continue;
		}
		if (f.type == BH_FRAME_CRASH_INFO) {
			/* After the CRASH frame, once, for the same job and address; none for
			 * exit() (no signal, no stack to tell). */
			ck_assert_msg(crashed, "CRASH_INFO before CRASH");
			ck_assert_msg(!info, "two CRASH_INFO frames");
			ck_assert_int_ne(c->kind, BH_CRASH_EXIT);
			info = true;
			ck_assert_uint_eq(f.crash_info.job_id, CULPRIT);
			ck_assert_uint_eq(f.crash_info.addr, addr);
			ck_assert_uint_ge(f.crash_info.frames, 1);
			continue;
		}
		ck_assert_msg(f.type == BH_FRAME_CRASH, "unexpected %s",
			      bh_frame_type_name(f.type));
		ck_assert_msg(!crashed, "two CRASH frames");
		crashed = true;
		addr = f.crash.addr;
		ck_assert_uint_eq(f.crash.job_id, CULPRIT);
		ck_assert_uint_eq(f.crash.kind, c->kind);
		ck_assert_int_eq(f.crash.signo, c->signo);
		if (c->code != INT32_MIN)
			ck_assert_int_eq(f.crash.code, c->code);
		if (c->addr)
			ck_assert_uint_ne(f.crash.addr, 0);
		else
			ck_assert_uint_eq(f.crash.addr, 0);
	}
	ck_assert_msg(crashed, "socket closed without a CRASH frame");
	ck_assert_msg(info || c->kind == BH_CRASH_EXIT, "no CRASH_INFO after the CRASH frame");
	/*
	 * Jobs before the culprit in FIFO order were all started before it, and all but the one
	 * the other thread may still have been running had ended. Their results were held back
	 * to be batched (40 noops take far less than the 2 ms hold); the crash handler has the
	 * main thread send them before the worker dies (crash.c), so they end done instead of
	 * running again. exit() runs no handler: nothing is flushed.
	 */
	if (c->kind != BH_CRASH_EXIT) {
		unsigned before = 0;

		for (uint64_t id = 1; id < CULPRIT; id++)
			before += done[id];
		ck_assert_msg(before >= (CULPRIT - 1) / 2,
			      "%s: %u of the %d jobs before the culprit reported done", run, before,
			      CULPRIT - 1);
	}
}

static void run_crash(struct wk *w, const struct crash_case *c, const char *const extra[])
{
	char run[64];

	snprintf(run, sizeof(run), "builtin:%s", c->builtin);
	run_crash_of(w, run, c, extra);
}

START_TEST(test_crash)
{
	const struct crash_case *c = &crash_cases[_i];
	struct wk w;

	run_crash(&w, c, NULL);
	if (c->kind == BH_CRASH_EXIT)
		wk_expect_exit(&w, c->code);
	else
		wk_expect_signal(&w, c->signo);
}
END_TEST

/* A fatal signal sent from outside is not blamed on the running job: job id 0. */
START_TEST(test_crash_from_outside)
{
	struct bh_frame f;
	struct wk w;
	int n;

	wk_start(&w, 2);
	wk_spec(&w, 0, "builtin:hang", "");
	wk_assign(&w, 1, 2, 0);
	ck_assert_int_eq(kill(w.pid, SIGSEGV), 0);
	do
		n = tu_recv_frame(w.sock, w.buf, FRAME_TIMEOUT_MS);
	while (n == -ECONNRESET);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(bh_frame_decode(w.buf, (size_t)n, &f), 0);
	ck_assert_int_eq(f.type, BH_FRAME_CRASH);
	ck_assert_uint_eq(f.crash.job_id, 0);
	ck_assert_int_eq(f.crash.signo, SIGSEGV);
	ck_assert_int_eq(f.crash.code, SI_USER);
	wk_expect_signal(&w, SIGSEGV);
}
END_TEST

/* probability=0: the fault builtins just return 0. */
START_TEST(test_crash_probability_zero)
{
	static const char *const names[] = { "segv", "abort", "fpe", "ill", "bus" };
	int32_t status[5];
	char run[32];
	struct wk w;

	wk_start(&w, 2);
	for (uint32_t i = 0; i < 5; i++) {
		snprintf(run, sizeof(run), "builtin:%s", names[i]);
		wk_spec(&w, i, run, "probability=0");
		wk_assign(&w, 1 + i, 1, i);
	}
	wk_collect(&w, 1, 5, status, NULL);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(status[i], 0);
	ck_assert_int_eq(tu_send_stop(w.sock), 0);
	wk_expect_exit(&w, 0);
}
END_TEST

START_TEST(test_leak)
{
#if BULKHEAD_SANITIZED
	printf("test_leak skipped: sanitizer allocators die instead of returning NULL\n");
	fflush(stdout);
	return;
#else
	static const struct crash_case leak = {
		.builtin = "leak",
		.args = "step=1M",
		.kind = BH_CRASH_OOM,
		.signo = SIGABRT,
		.code = SI_TKILL,
	};
	static const char *const extra[] = { "--memory-max", "64M", NULL };
	struct wk w;

	run_crash(&w, &leak, extra);
	wk_expect_signal(&w, SIGABRT);
#endif
}
END_TEST

/* --- hangs --- */

START_TEST(test_hang)
{
	struct wk w;

	wk_start(&w, 1);
	wk_spec(&w, 0, "builtin:hang", "");
	wk_assign(&w, 1, 1, 0);
	wk_expect_quiet(&w, QUIET_MS);
	wk_kill(&w);
}
END_TEST

START_TEST(test_deadlock)
{
	struct wk w;

	wk_start(&w, 2);
	wk_spec(&w, 0, "builtin:deadlock", "");
	wk_spec(&w, 1, "builtin:noop", "");
	wk_assign(&w, 1, 2, 0);
	wk_assign(&w, 3, 1, 1); /* cannot start: both threads are stuck */
	wk_expect_quiet(&w, QUIET_MS);
	wk_kill(&w);
}
END_TEST

/* --- stopping and the master going away --- */

START_TEST(test_stop)
{
	int32_t status[3];
	int64_t start;
	struct wk w;

	/*
	 * One thread: 1..3 noop, 4 sleeps 300 ms, 5..20 noop. A thread takes its next job
	 * in the same step as it reports one, so once 1..3 are DONE job 4 is running: STOP
	 * then lets 4 finish and report, and drops 5..20. All in one ASSIGN frame: with three,
	 * a slow test could see DONE 1..3 before the worker even had job 4.
	 */
	wk_start(&w, 1);
	wk_spec(&w, 0, "builtin:noop", "");
	wk_spec(&w, 1, "builtin:sleep", "ms=300");
	{
		struct bh_batch b;

		bh_batch_init(&b, scratch, sizeof(scratch), BH_FRAME_ASSIGN);
		for (uint64_t id = 1; id <= 20; id++)
			ck_assert(bh_batch_add_assign(&b, id, id == 4 ? 1 : 0, 0));
		ck_assert_int_eq(tu_send_frame(w.sock, scratch, bh_batch_finish(&b)), 0);
	}
	wk_collect(&w, 1, 3, status, NULL);
	start = tu_now_ms();
	ck_assert_int_eq(tu_send_stop(w.sock), 0);
	wk_collect(&w, 4, 1, status, NULL);
	ck_assert_int_eq(status[0], 0);
	ck_assert_int_eq(tu_recv_frame(w.sock, w.buf, FRAME_TIMEOUT_MS), 0); /* then EOF */
	wk_expect_exit(&w, 0);
	ck_assert_int_lt(tu_now_ms() - start, 300 + FRAME_TIMEOUT_MS);
}
END_TEST

START_TEST(test_stop_idle)
{
	struct wk w;

	wk_start(&w, 4);
	ck_assert_int_eq(tu_send_stop(w.sock), 0);
	ck_assert_int_eq(tu_recv_frame(w.sock, w.buf, FRAME_TIMEOUT_MS), 0);
	wk_expect_exit(&w, 0);
}
END_TEST

/* The master closes its end (even with a job hanging): exit 1 at once. */
START_TEST(test_master_close)
{
	struct wk w;
	int status;

	wk_start(&w, 2);
	wk_spec(&w, 0, "builtin:hang", "");
	wk_assign(&w, 1, 1, 0);
	close(w.sock);
	ck_assert_int_eq(tu_wait_exit(w.pid, FRAME_TIMEOUT_MS, &status), 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "%s",
		      tu_describe_status(status));
	ck_assert(!tu_process_alive(w.pid));
	ck_assert_int_eq(tu_count_zombie_children(), 0);
}
END_TEST

/*
 * The master dies (SIGKILL): PR_SET_PDEATHSIG kills the worker. An intermediate process
 * plays the master's parent role (it spawns the worker, so it is the one whose death
 * counts), while this process keeps the master end of the socket open, so the worker cannot
 * notice through EOF: only the death signal can end it. We are a subreaper, so the orphaned
 * worker is ours to reap.
 */
START_TEST(test_pdeathsig)
{
	int report[2], sv[2], status;
	pid_t master, worker_pid;
	struct wk w;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	ck_assert_int_eq(pipe2(report, O_CLOEXEC), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	master = fork();
	ck_assert_int_ge(master, 0);
	if (master == 0) {
		char pid[16];
		const char *argv[] = { worker_path(), "--pool", "orphan", "--index", "0",
				       "--threads", "2", "--master-pid", pid, NULL };
		pid_t child = 0;

		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		if (tu_spawn(argv, NULL, sv[1], NULL, NULL, &child) < 0)
			_exit(1);
		(void)!write(report[1], &child, sizeof(child));
		for (;;)
			pause();
	}
	close(report[1]);
	close(sv[1]);
	ck_assert_int_eq(read(report[0], &worker_pid, sizeof(worker_pid)),
			 (ssize_t)sizeof(worker_pid));
	close(report[0]);
	w.pid = worker_pid;
	w.sock = sv[0];
	wk_expect_hello(&w, 2);
	wk_spec(&w, 0, "builtin:hang", "");
	wk_assign(&w, 1, 1, 0);

	ck_assert_int_eq(kill(master, SIGKILL), 0);
	ck_assert_int_eq(tu_wait_exit(master, FRAME_TIMEOUT_MS, NULL), 0);
	ck_assert_int_eq(tu_wait_exit(worker_pid, 5000, &status), 0);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "%s",
		      tu_describe_status(status));
	check_aftermath(&w);
}
END_TEST

/* --- bad frames from the master: exit 3 --- */

static size_t bad_frame(unsigned which, uint8_t *buf)
{
	struct bh_frame_header h = { BH_PROTO_MAGIC, BH_PROTO_VERSION, BH_FRAME_STOP, 0 };
	struct bh_batch b;

	switch (which) {
	case 0: /* garbage */
		memcpy(buf, "hello, worker!", 14);
		return 14;
	case 1: /* wrong version */
		h.version = BH_PROTO_VERSION + 1;
		memcpy(buf, &h, sizeof(h));
		return sizeof(h);
	case 2: /* a worker's frame type */
		return bh_encode_hello(buf, BH_FRAME_MAX, 1, 1);
	case 3: /* DONE, also a worker's */
		bh_batch_init(&b, buf, BH_FRAME_MAX, BH_FRAME_DONE);
		bh_batch_add_done(&b, 1, BH_OUTCOME_RETURNED, 0, 0);
		return bh_batch_finish(&b);
	case 4: /* ASSIGN naming an undefined spec */
		bh_batch_init(&b, buf, BH_FRAME_MAX, BH_FRAME_ASSIGN);
		bh_batch_add_assign(&b, 1, 99, 0);
		return bh_batch_finish(&b);
	case 5: /* oversized */
		memset(buf, 0, BH_FRAME_MAX + 100);
		h.length = BH_FRAME_MAX + 100 - sizeof(h);
		memcpy(buf, &h, sizeof(h));
		return BH_FRAME_MAX + 100;
	case 6: /* length field lies */
		h.length = 4;
		memcpy(buf, &h, sizeof(h));
		return sizeof(h);
	case 7: /* unknown type */
		h.type = 60;
		memcpy(buf, &h, sizeof(h));
		return sizeof(h);
	case 8: /* FORGET of a spec never defined */
		return bh_encode_forget(buf, BH_FRAME_MAX, 7);
	}
	return 0;
}

START_TEST(test_bad_frame)
{
	static uint8_t buf[BH_FRAME_MAX + 128];
	size_t len = bad_frame((unsigned)_i, buf);
	struct wk w;

	wk_start(&w, 2);
	ck_assert_uint_gt(len, 0);
	ck_assert_int_eq(tu_send_frame(w.sock, buf, len), 0);
	wk_expect_exit(&w, 3);
}
END_TEST

START_TEST(test_spec_twice)
{
	struct wk w;

	wk_start(&w, 1);
	wk_spec(&w, 5, "builtin:noop", "");
	wk_spec(&w, 5, "builtin:noop", "");
	wk_expect_exit(&w, 3);
}
END_TEST

/*
 * Specs come and go (FORGET): any id but UINT32_MAX is fine, a forgotten id can be defined
 * again (with another run), and the worker's memory does not grow with the number of specs
 * it was ever given, only with those it holds.
 */
START_TEST(test_spec_forget)
{
	uint8_t buf[64];
	long rss_first = 0;
	char asan[1024];
	struct wk w;

	/* ASan keeps freed memory in a quarantine (256 MB by default): none here. */
	snprintf(asan, sizeof(asan), "%s:quarantine_size_mb=0",
		 getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "");
	setenv("ASAN_OPTIONS", asan, 1);
	wk_start(&w, 2);
	for (uint32_t round = 0; round < 20000; round++) {
		uint32_t id = round % 2 ? 0xfffffffeu - round : round * 7919u;
		const char *run = round % 3 ? "builtin:noop" : "builtin:spin";

		wk_spec(&w, id, run, round % 3 ? "" : "us=1");
		wk_assign(&w, 1 + round, 1, id);
		wk_collect(&w, 1 + round, 1, NULL, NULL);
		ck_assert_int_eq(tu_send_frame(w.sock, buf, bh_encode_forget(buf, sizeof(buf), id)),
				 0);
		if (round == 1000)
			rss_first = tu_rss_kb(w.pid);
	}
	/* 19000 specs later: the same memory, give or take allocator noise. */
	ck_assert_int_gt(rss_first, 0);
	ck_assert_int_lt(tu_rss_kb(w.pid), rss_first + 512);
	/* The same id twice without a FORGET in between is still a protocol error. */
	wk_spec(&w, 3, "builtin:noop", "");
	wk_spec(&w, 3, "builtin:noop", "");
	wk_expect_exit(&w, 3);
}
END_TEST

/* FORGET of a spec whose job is still queued or running: the worker refuses it (exit 3). */
START_TEST(test_forget_in_use)
{
	uint8_t buf[64];
	struct wk w;

	wk_start(&w, 1);
	wk_spec(&w, 4, "builtin:sleep", "ms=10000");
	wk_assign(&w, 1, 2, 4); /* one running, one queued */
	ck_assert_int_eq(tu_send_frame(w.sock, buf, bh_encode_forget(buf, sizeof(buf), 4)), 0);
	wk_expect_exit(&w, 3);
}
END_TEST

/* --- the helpers themselves (other integration tests rely on them) --- */

START_TEST(test_testutil_spawn)
{
	const char *argv[] = { "/bin/sh", "-c", "echo \"$TU_FOO\"; echo oops >&2; exit 5", NULL };
	const char *env[] = { "TU_FOO=bar", NULL };
	const char *missing[] = { "/nonexistent/program", NULL };
	int out, err, status, fds = tu_count_open_fds();
	char *s;
	pid_t pid;

	ck_assert_int_eq(tu_spawn(argv, env, -1, &out, &err, &pid), 0);
	s = tu_read_all(out, FRAME_TIMEOUT_MS);
	ck_assert_str_eq(s, "bar\n");
	free(s);
	s = tu_read_all(err, FRAME_TIMEOUT_MS);
	ck_assert_str_eq(s, "oops\n");
	free(s);
	close(out);
	close(err);
	ck_assert_int_eq(tu_wait_exit(pid, FRAME_TIMEOUT_MS, &status), 0);
	ck_assert_str_eq(tu_describe_status(status), "exited 5");
	ck_assert_int_eq(tu_spawn(missing, NULL, -1, NULL, NULL, &pid), -ENOENT);
	ck_assert_int_eq(tu_count_zombie_children(), 0);
	ck_assert_int_eq(tu_count_open_fds(), fds);
}
END_TEST

START_TEST(test_testutil_wait_and_files)
{
	const char *argv[] = { "/bin/sleep", "30", NULL };
	char *dir, *path, *s;
	int status;
	pid_t pid;

	ck_assert_int_eq(tu_spawn(argv, NULL, -1, NULL, NULL, &pid), 0);
	ck_assert_int_eq(tu_wait_exit(pid, 50, &status), -ETIMEDOUT);
	ck_assert(tu_process_alive(pid));
	ck_assert_int_ge(tu_count_processes_named("sleep"), 1);
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	ck_assert_int_eq(tu_wait_exit(pid, FRAME_TIMEOUT_MS, &status), 0);
	ck_assert_str_eq(tu_describe_status(status), "killed by SIGTERM");
	ck_assert(!tu_process_alive(pid));

	ck_assert_int_eq(tu_mkdtemp(&dir), 0);
	ck_assert_int_ge(asprintf(&path, "%s/sub", dir), 0);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	free(path);
	ck_assert_int_ge(asprintf(&path, "%s/sub/file", dir), 0);
	ck_assert_int_eq(tu_write_file(path, "content\n"), 0);
	s = tu_read_file(path);
	ck_assert_str_eq(s, "content\n");
	free(s);
	free(path);
	ck_assert_int_eq(tu_rm_rf(dir), 0);
	ck_assert_int_eq(access(dir, F_OK), -1);
	free(dir);
}
END_TEST

/* --- plugins, exec jobs, inputs (protocol v3) --- */

/* The path of test plugin NAME.so, built next to the tests ($BULKHEAD_TEST_PLUGINS). */
static const char *plugin(const char *name, const char *symbol)
{
	static char buf[4][512];
	static unsigned next;
	const char *dir = getenv("BULKHEAD_TEST_PLUGINS");
	char *b = buf[next++ % 4];

	ck_assert_msg(dir && *dir, "BULKHEAD_TEST_PLUGINS is not set");
	snprintf(b, sizeof(buf[0]), "plugin:%s/%s.so:%s", dir, name, symbol);
	return b;
}

static void wk_spec_full(struct wk *w, uint32_t id, const char *run, const char *args,
			 const char *name, const char *output)
{
	size_t n = bh_encode_spec(
		scratch, sizeof(scratch),
		&(struct bh_spec){
			.id = id, .run = run, .args = args, .name = name, .output = output });

	ck_assert_uint_gt(n, 0);
	ck_assert_int_eq(tu_send_frame(w->sock, scratch, n), 0);
}

static void wk_assign_one(struct wk *w, uint64_t job, uint32_t spec, uint32_t flags)
{
	struct bh_batch b;

	bh_batch_init(&b, scratch, sizeof(scratch), BH_FRAME_ASSIGN);
	ck_assert(bh_batch_add_assign(&b, job, spec, flags));
	ck_assert_int_eq(tu_send_frame(w->sock, scratch, bh_batch_finish(&b)), 0);
}

static void wk_input(struct wk *w, uint64_t job, const char *input)
{
	size_t n = bh_encode_input(scratch, sizeof(scratch), job, input);

	ck_assert_uint_gt(n, 0);
	ck_assert_int_eq(tu_send_frame(w->sock, scratch, n), 0);
}

static void wk_cancel(struct wk *w, uint64_t job)
{
	size_t n = bh_encode_cancel(scratch, sizeof(scratch), job);

	ck_assert_int_eq(tu_send_frame(w->sock, scratch, n), 0);
}

/* Everything the worker said about one job, in the order it came. */
struct job_events {
	uint64_t id;
	bool done;
	struct bh_done_entry d;
	unsigned n_results;
	char result[BH_RESULT_MAX + 1];
	unsigned n_progress;
	uint32_t progress[16];
	pid_t exec_pid;
	unsigned n_logs; /* LOG frames, the first and the last of them */
	char first_log[BH_LOG_MAX + 1], last_log[BH_LOG_MAX + 1];
};

static struct job_events *events_of(struct job_events *ev, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ev[i].id == id)
			return &ev[i];
	ck_abort_msg("a frame about job %" PRIu64 ", not one of ours", id);
	return NULL;
}

/*
 * Reads frames until every job of ev[0..n) has its DONE (ev[i].id set by the caller). A
 * RESULT, PROGRESS or EXEC frame after the job's DONE fails, and so does a CRASH.
 */
static void wk_events(struct wk *w, struct job_events *ev, size_t n)
{
	size_t left = n;

	while (left > 0) {
		struct job_events *e;
		struct bh_frame f;

		wk_recv(w, &f, FRAME_TIMEOUT_MS);
		switch (f.type) {
		case BH_FRAME_DONE:
			for (uint32_t i = 0; i < f.done.count; i++) {
				struct bh_done_entry d;

				bh_frame_done_entry(&f, i, &d);
				e = events_of(ev, n, d.job_id);
				ck_assert_msg(!e->done, "job %" PRIu64 " DONE twice", d.job_id);
				e->done = true;
				e->d = d;
				left--;
			}
			break;
		case BH_FRAME_RESULT:
			e = events_of(ev, n, f.text.job_id);
			ck_assert_msg(!e->done, "RESULT of job %" PRIu64 " after its DONE", e->id);
			memcpy(e->result, f.text.text, f.text.len);
			e->result[f.text.len] = '\0';
			e->n_results++;
			break;
		case BH_FRAME_PROGRESS:
			e = events_of(ev, n, f.progress.job_id);
			ck_assert_msg(!e->done, "PROGRESS of job %" PRIu64 " after its DONE",
				      e->id);
			ck_assert_uint_lt(e->n_progress, 16);
			e->progress[e->n_progress++] = f.progress.permille;
			break;
		case BH_FRAME_LOG:
			e = events_of(ev, n, f.text.job_id);
			ck_assert_msg(!e->done, "LOG of job %" PRIu64 " after its DONE", e->id);
			memcpy(e->last_log, f.text.text, f.text.len);
			e->last_log[f.text.len] = '\0';
			if (e->n_logs++ == 0)
				memcpy(e->first_log, e->last_log, f.text.len + 1);
			break;
		case BH_FRAME_EXEC:
			e = events_of(ev, n, f.exec.job_id);
			ck_assert_msg(!e->done, "EXEC of job %" PRIu64 " after its DONE", e->id);
			ck_assert_msg(e->exec_pid == 0, "two EXEC frames for job %" PRIu64, e->id);
			e->exec_pid = f.exec.pid;
			break;
		default:
			ck_abort_msg("unexpected %s frame (job %" PRIu64 ")",
				     bh_frame_type_name(f.type),
				     f.type == BH_FRAME_CRASH ? f.crash.job_id : 0);
		}
	}
}

/* Runs job `id` of spec `spec` alone and returns what happened. */
static struct job_events wk_run1(struct wk *w, uint64_t id, uint32_t spec)
{
	struct job_events ev = { .id = id };

	wk_assign(w, id, 1, spec);
	wk_events(w, &ev, 1);
	return ev;
}

/* Waits for a PROGRESS frame of job `id` (nothing else may come first). */
static void wk_expect_progress(struct wk *w, uint64_t id)
{
	struct bh_frame f;

	wk_recv(w, &f, FRAME_TIMEOUT_MS);
	ck_assert_msg(f.type == BH_FRAME_PROGRESS, "expected PROGRESS, got %s",
		      bh_frame_type_name(f.type));
	ck_assert_uint_eq(f.progress.job_id, id);
}

/* Waits for the EXEC frame of job `id` (nothing else may come first). */
static pid_t wk_expect_exec(struct wk *w, uint64_t id)
{
	struct bh_frame f;

	wk_recv(w, &f, FRAME_TIMEOUT_MS);
	ck_assert_msg(f.type == BH_FRAME_EXEC, "expected EXEC, got %s", bh_frame_type_name(f.type));
	ck_assert_uint_eq(f.exec.job_id, id);
	ck_assert_int_gt(f.exec.pid, 0);
	return f.exec.pid;
}

/* STOP, EOF, exit 0; then the worker's log (if captured), malloc'd. */
static char *wk_stop_log(struct wk *w)
{
	char *log = NULL;

	ck_assert_int_eq(tu_send_stop(w->sock), 0);
	ck_assert_int_eq(tu_recv_frame(w->sock, w->buf, FRAME_TIMEOUT_MS), 0);
	if (w->err >= 0) {
		log = tu_read_all(w->err, FRAME_TIMEOUT_MS);
		ck_assert_ptr_nonnull(log);
		close(w->err);
		w->err = -1;
	}
	wk_expect_exit(w, 0);
	return log;
}

START_TEST(test_plugin_returns)
{
	struct job_events ev;
	struct wk w;

	wk_start(&w, 2);
	wk_spec(&w, 0, plugin("outcomes", "outcome"), "do=done");
	wk_spec(&w, 1, plugin("outcomes", "outcome"), "do=fail status=4");
	wk_spec(&w, 2, plugin("outcomes", "other"), "");
	ev = wk_run1(&w, 1, 0);
	ck_assert_int_eq(ev.d.status, 0);
	ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_RETURNED);
	ck_assert_uint_eq(ev.n_results + ev.n_progress + (unsigned)ev.exec_pid, 0);
	ev = wk_run1(&w, 2, 1);
	ck_assert_int_eq(ev.d.status, 4);
	ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_RETURNED);
	ev = wk_run1(&w, 3, 2);
	ck_assert_int_eq(ev.d.status, 42);
	free(wk_stop_log(&w));
}
END_TEST

/* Plugins that do not load make specs whose every job fails with 127; the worker lives. */
START_TEST(test_plugin_bad)
{
	static const char *const names[][2] = {
		{ "missing", "outcome" }, /* no such file */
		{ "outcomes", "nope" }, /* no such symbol */
		{ "abi-old", "outcome" }, /* built for another ABI */
		{ "no-abi", "outcome" }, /* not a bulkhead plugin */
	};
	const size_t n = sizeof(names) / sizeof(names[0]);
	struct job_events ev;
	char *log;
	struct wk w;

	wk_start_capture(&w, 2);
	for (uint32_t i = 0; i < n; i++)
		wk_spec(&w, i, plugin(names[i][0], names[i][1]), "do=done");
	wk_spec(&w, 9, "plugin:no-symbol-here", "");
	for (uint32_t i = 0; i < n; i++) {
		ev = wk_run1(&w, 1 + i, i);
		ck_assert_int_eq(ev.d.status, 127);
		ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_RETURNED);
	}
	ev = wk_run1(&w, 10, 9);
	ck_assert_int_eq(ev.d.status, 127);
	log = wk_stop_log(&w);
	/* Each reason is logged once, with the dynamic loader's words where it has them. */
	ck_assert_msg(strstr(log, "missing.so: cannot open shared object file"), "%s", log);
	ck_assert_msg(strstr(log, "undefined symbol: nope"), "%s", log);
	ck_assert_msg(strstr(log, "built for job ABI 3"), "%s", log);
	ck_assert_msg(strstr(log, "has no bulkhead_job_abi"), "%s", log);
	free(log);
}
END_TEST

static const struct crash_case plugin_crash_cases[] = {
	{ "segv", "do=segv", BH_CRASH_SIGNAL, SIGSEGV, SEGV_MAPERR, true },
	{ "abort", "do=abort", BH_CRASH_SIGNAL, SIGABRT, SI_TKILL, false },
	{ "fpe", "do=fpe", BH_CRASH_SIGNAL, SIGFPE, FPE_INTDIV, true },
	{ "ill", "do=ill", BH_CRASH_SIGNAL, SIGILL, ILL_ILLOPN, true },
	{ "bus", "do=bus", BH_CRASH_SIGNAL, SIGBUS, BUS_ADRERR, true },
	{ "stack", "do=stack", BH_CRASH_SIGNAL, SIGSEGV, INT32_MIN, true },
	{ "exit", "do=exit status=9", BH_CRASH_EXIT, 0, 9, false },
};

/* A plugin's crash is blamed on its job alone, exactly like a builtin's. */
START_TEST(test_plugin_crash)
{
	const struct crash_case *c = &plugin_crash_cases[_i];
	struct wk w;

	run_crash_of(&w, plugin("outcomes", "outcome"), c, NULL);
	if (c->kind == BH_CRASH_EXIT)
		wk_expect_exit(&w, c->code);
	else
		wk_expect_signal(&w, c->signo);
}
END_TEST

START_TEST(test_plugin_result)
{
	struct job_events ev[3] = { { .id = 7 }, { .id = 8 }, { .id = 9 } };
	struct wk w;

	wk_start(&w, 2);
	wk_spec(&w, 0, plugin("outcomes", "outcome"), "do=result text=hello");
	wk_spec(&w, 1, plugin("outcomes", "outcome"), "do=long-result");
	wk_spec(&w, 2, "builtin:noop", "");
	wk_assign(&w, 7, 1, 0);
	wk_assign(&w, 8, 1, 1);
	wk_assign(&w, 9, 1, 2);
	wk_events(&w, ev, 3);
	/* One RESULT, the last one set, before the DONE. */
	ck_assert_uint_eq(ev[0].n_results, 1);
	ck_assert_str_eq(ev[0].result, "hello #7");
	ck_assert_int_eq(ev[0].d.status, 0);
	/* Cut to 255 bytes, control characters replaced. */
	ck_assert_uint_eq(ev[1].n_results, 1);
	ck_assert_uint_eq(strlen(ev[1].result), BH_RESULT_MAX);
	ck_assert(memcmp(ev[1].result, "???xxx", 6) == 0);
	/* A job that sets none sends none. */
	ck_assert_uint_eq(ev[2].n_results, 0);
	free(wk_stop_log(&w));
}
END_TEST

START_TEST(test_plugin_progress)
{
	struct job_events ev = { .id = 5 };
	struct wk w;

	wk_start(&w, 1);
	wk_spec(&w, 0, plugin("outcomes", "outcome"), "do=progress");
	wk_assign(&w, 5, 1, 0);
	wk_events(&w, &ev, 1);
	ck_assert_int_eq(ev.d.status, 0);
	/*
	 * 0.25 at once; the 100000 calls right after it are within 100 ms (on a very slow
	 * machine one of them may get through); 0.5 after a pause; 1.0 at once, once.
	 */
	ck_assert_uint_ge(ev.n_progress, 3);
	ck_assert_uint_le(ev.n_progress, 5);
	ck_assert_uint_eq(ev.progress[0], 250);
	ck_assert_uint_eq(ev.progress[ev.n_progress - 2], 500);
	ck_assert_uint_eq(ev.progress[ev.n_progress - 1], 1000);
	free(wk_stop_log(&w));
}
END_TEST

START_TEST(test_plugin_log)
{
	struct job_events ev;
	struct wk w;
	char *log;

	wk_start_capture(&w, 1);
	wk_spec(&w, 0, plugin("outcomes", "outcome"), "do=log");
	ev = wk_run1(&w, 31, 0);
	ck_assert_int_eq(ev.d.status, 0);
	log = wk_stop_log(&w);
	ck_assert_msg(strstr(log, "job 31: plugin says error\n"), "%s", log);
	ck_assert_msg(strstr(log, "job 31: plugin says info\n"), "%s", log);
	ck_assert_msg(!strstr(log, "plugin says debug"), "%s", log);
	ck_assert_msg(!strstr(log, "plugin says clamped"), "%s", log); /* 99 -> debug */
	free(log);
}
END_TEST

/* The next DONE frame: exactly one entry, for job `id`. */
static struct bh_done_entry wk_expect_done1(struct wk *w, uint64_t id)
{
	struct bh_done_entry d;
	struct bh_frame f;

	wk_recv(w, &f, FRAME_TIMEOUT_MS);
	ck_assert_msg(f.type == BH_FRAME_DONE, "expected DONE, got %s", bh_frame_type_name(f.type));
	ck_assert_uint_eq(f.done.count, 1);
	bh_frame_done_entry(&f, 0, &d);
	ck_assert_uint_eq(d.job_id, id);
	return d;
}

/*
 * sleep, spin and hang without an end stop when cancelled (status 125, the worker lives on);
 * a job cancelled while queued never starts and is reported at once (CANCELLED). One thread,
 * so jobs run in order: a job's DONE comes only once the thread has taken the next one.
 */
START_TEST(test_builtins_cancelled)
{
	struct bh_done_entry d;
	int64_t deadline;
	struct wk w;

	wk_start(&w, 1);
	wk_spec(&w, 0, "builtin:spin", "us=18446744073709551615");
	wk_spec(&w, 1, "builtin:sleep", "ms=18446744073709551615");
	wk_spec(&w, 2, "builtin:hang", "");
	wk_spec(&w, 3, "builtin:noop", "");
	wk_assign(&w, 1, 1, 0);
	wk_assign(&w, 2, 1, 1);
	wk_assign(&w, 3, 1, 2);
	wk_assign(&w, 4, 2, 3);
	/* The spin really runs: its thread burns CPU. */
	deadline = tu_now_ms() + FRAME_TIMEOUT_MS;
	while (tu_job_thread_ticks(w.pid) <= 0) {
		ck_assert_msg(tu_ms_left(deadline) > 0, "the spin job does not run");
		wk_expect_quiet(&w, 10); /* nothing may come while it spins */
	}
	/* Queued: never starts, and is reported at once while the spin goes on. */
	wk_cancel(&w, 4);
	d = wk_expect_done1(&w, 4);
	ck_assert_uint_eq(d.outcome, BH_OUTCOME_CANCELLED);
	ck_assert_int_eq(d.status, 0);
	ck_assert_uint_eq(d.run_usec, 0);
	wk_cancel(&w, 1);
	d = wk_expect_done1(&w, 1);
	ck_assert_uint_eq(d.outcome, BH_OUTCOME_RETURNED);
	ck_assert_int_eq(d.status, 125);
	/* The thread took job 2 (sleep) before job 1's DONE went out. */
	wk_cancel(&w, 2);
	d = wk_expect_done1(&w, 2);
	ck_assert_uint_eq(d.outcome, BH_OUTCOME_RETURNED);
	ck_assert_int_eq(d.status, 125);
	wk_cancel(&w, 3); /* hang, running now */
	{
		struct job_events ev[2] = { { .id = 3 }, { .id = 5 } };

		wk_events(&w, ev, 2);
		ck_assert_uint_eq(ev[0].d.outcome, BH_OUTCOME_RETURNED);
		ck_assert_int_eq(ev[0].d.status, 125);
		ck_assert_uint_eq(ev[1].d.outcome, BH_OUTCOME_RETURNED);
		ck_assert_int_eq(ev[1].d.status, 0);
	}
	ck_assert_int_eq(tu_send_stop(w.sock), 0);
	wk_expect_exit(&w, 0);
}
END_TEST

/* CANCEL of a running job, of a queued one, and of one that is gone; then STOP. */
START_TEST(test_plugin_cancel)
{
	struct job_events ev[2] = { { .id = 1 }, { .id = 2 } };
	struct job_events last = { .id = 3 };
	struct bh_frame f;
	struct wk w;

	wk_start(&w, 1);
	wk_spec(&w, 0, plugin("outcomes", "outcome"), "do=cancel-wait");
	wk_spec(&w, 1, plugin("outcomes", "outcome"), "do=done");
	/* One thread: 1 runs (and says so with a PROGRESS), 2 is queued. */
	wk_assign(&w, 1, 2, 0);
	wk_expect_progress(&w, 1);
	/* Queued: it never starts, and is reported at once, while 1 still runs. */
	wk_cancel(&w, 2);
	wk_events(&w, &ev[1], 1);
	ck_assert_uint_eq(ev[1].d.outcome, BH_OUTCOME_CANCELLED);
	ck_assert_int_eq(ev[1].d.status, 0);
	ck_assert_uint_eq(ev[1].d.run_usec, 0);
	ck_assert_uint_eq(ev[1].n_results, 0);
	ck_assert_uint_eq(ev[1].n_progress, 0);
	wk_cancel(&w, 99); /* unknown: ignored */
	wk_expect_quiet(&w, QUIET_MS);
	wk_cancel(&w, 1);
	wk_events(&w, ev, 1);
	ck_assert_uint_eq(ev[0].d.outcome, BH_OUTCOME_RETURNED);
	ck_assert_int_eq(ev[0].d.status, 3);
	ck_assert_str_eq(ev[0].result, "cancelled");
	/* A CANCEL for a job that has ended changes nothing; the worker goes on. */
	wk_cancel(&w, 1);
	last = wk_run1(&w, 3, 1);
	ck_assert_int_eq(last.d.status, 0);

	/* STOP cancels what runs: the job still reports. */
	wk_assign(&w, 4, 1, 0);
	wk_expect_progress(&w, 4);
	ck_assert_int_eq(tu_send_stop(w.sock), 0);
	wk_recv(&w, &f, FRAME_TIMEOUT_MS);
	ck_assert_int_eq(f.type, BH_FRAME_RESULT);
	wk_recv(&w, &f, FRAME_TIMEOUT_MS);
	ck_assert_int_eq(f.type, BH_FRAME_DONE);
	ck_assert_int_eq(tu_recv_frame(w.sock, w.buf, FRAME_TIMEOUT_MS), 0);
	wk_expect_exit(&w, 0);
}
END_TEST

START_TEST(test_input)
{
	struct job_events ev[3] = { { .id = 11 }, { .id = 12 }, { .id = 13 } };
	struct wk w;

	wk_start(&w, 2);
	wk_spec(&w, 0, plugin("outcomes", "outcome"), "do=input input=from-args");
	wk_spec(&w, 1, plugin("outcomes", "outcome"), "do=input");
	/* Inputs for 11 and 13 (in another order than the ASSIGN), none for 12. */
	wk_input(&w, 13, "/in/thirteen");
	wk_input(&w, 11, "/in/eleven with spaces");
	wk_assign_one(&w, 11, 0, BH_ASSIGN_INPUT);
	wk_assign_one(&w, 12, 1, 0);
	wk_assign_one(&w, 13, 0, BH_ASSIGN_INPUT);
	wk_events(&w, ev, 3);
	ck_assert_str_eq(ev[0].result, "/in/eleven with spaces");
	ck_assert_int_eq(ev[1].d.status, 7); /* no input at all */
	ck_assert_str_eq(ev[2].result, "/in/thirteen");
	free(wk_stop_log(&w));
}
END_TEST

/* Each a protocol error: the worker exits 3. */
START_TEST(test_input_errors)
{
	struct wk w;

	wk_start(&w, 1);
	wk_spec(&w, 0, "builtin:noop", "");
	switch (_i) {
	case 0: /* ASSIGN says there is an input; there is none */
		wk_assign_one(&w, 1, 0, BH_ASSIGN_INPUT);
		break;
	case 1: /* two INPUTs for one job */
		wk_input(&w, 1, "/a");
		wk_input(&w, 1, "/b");
		break;
	case 2: /* an INPUT, then an ASSIGN of that job without the flag */
		wk_input(&w, 1, "/a");
		wk_assign_one(&w, 1, 0, 0);
		break;
	case 3: /* more INPUTs waiting than one ASSIGN frame can name */
		for (uint64_t i = 1; i <= BH_ASSIGN_MAX + 1; i++)
			wk_input(&w, i, "/a");
		break;
	case 4: /* the INPUT was consumed by the first ASSIGN: not there for the second */
		wk_input(&w, 1, "/a");
		wk_assign_one(&w, 1, 0, BH_ASSIGN_INPUT);
		wk_assign_one(&w, 2, 0, BH_ASSIGN_INPUT);
		break;
	}
	wk_expect_exit(&w, 3);
}
END_TEST

/* Exactly BH_ASSIGN_MAX inputs, all taken by one full ASSIGN frame: fine. */
START_TEST(test_input_full_batch)
{
	struct bh_batch b;
	struct wk w;
	char path[32];

	wk_start(&w, 4);
	wk_spec(&w, 0, "builtin:noop", "");
	for (uint64_t i = 1; i <= BH_ASSIGN_MAX; i++) {
		snprintf(path, sizeof(path), "/in/%" PRIu64, i);
		wk_input(&w, i, path);
	}
	bh_batch_init(&b, scratch, sizeof(scratch), BH_FRAME_ASSIGN);
	for (uint64_t i = 1; i <= BH_ASSIGN_MAX; i++)
		ck_assert(bh_batch_add_assign(&b, i, 0, BH_ASSIGN_INPUT));
	ck_assert_int_eq(tu_send_frame(w.sock, scratch, bh_batch_finish(&b)), 0);
	wk_collect(&w, 1, BH_ASSIGN_MAX, NULL, NULL);
	/* And again: the table is empty, deletions left it consistent. */
	wk_input(&w, BH_ASSIGN_MAX + 1, "/again");
	wk_assign_one(&w, BH_ASSIGN_MAX + 1, 0, BH_ASSIGN_INPUT);
	wk_collect(&w, BH_ASSIGN_MAX + 1, 1, NULL, NULL);
	free(wk_stop_log(&w));
}
END_TEST

/* --- exec: jobs --- */

START_TEST(test_exec_exit_codes)
{
	struct job_events ev;
	struct wk w;

	wk_start(&w, 2);
	/* Commands told of (EXEC) run past the worker's millisecond wait before it (exec.c). */
	wk_spec(&w, 0, "exec:/bin/sh -c 'sleep 0.05; exit 0'", "");
	wk_spec(&w, 1, "exec:sh -c 'exit 3'", ""); /* found in PATH */
	wk_spec(&w, 2, "exec:/bin/sh -c 'sleep 0.05; kill -9 $$'", "");
	wk_spec(&w, 3, "exec:/nonexistent/command arg", "");
	wk_spec(&w, 4, "exec:/bin/echo {input}", ""); /* jobs without an input cannot start */
	wk_spec(&w, 5, "exec:/bin/echo 'unterminated", "");

	ev = wk_run1(&w, 1, 0);
	ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_RETURNED);
	ck_assert_int_eq(ev.d.status, 0);
	ck_assert_int_gt(ev.exec_pid, 0);
	ev = wk_run1(&w, 2, 1);
	ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_RETURNED);
	ck_assert_int_eq(ev.d.status, 3);
	ev = wk_run1(&w, 3, 2);
	ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_SIGNALED);
	ck_assert_int_eq(ev.d.status, SIGKILL);
	ck_assert_int_gt(ev.exec_pid, 0);
	ev = wk_run1(&w, 4, 3);
	ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_SPAWN_FAILED);
	ck_assert_int_eq(ev.d.status, ENOENT);
	ck_assert_int_eq(ev.exec_pid, 0); /* nothing started, no EXEC */
	ev = wk_run1(&w, 5, 4);
	ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_SPAWN_FAILED);
	ck_assert_int_eq(ev.exec_pid, 0);
	ev = wk_run1(&w, 6, 5);
	ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_RETURNED);
	ck_assert_int_eq(ev.d.status, 127);
	/* The worker lived through all of it. */
	ev = wk_run1(&w, 7, 0);
	ck_assert_int_eq(ev.d.status, 0);
	free(wk_stop_log(&w));
	ck_assert_int_eq(tu_count_zombie_children(), 0);
}
END_TEST

/* Placeholders, environment, output files. */
START_TEST(test_exec_substitution)
{
	struct job_events ev;
	char *dir, path[512], *out, *err, want[1024];
	struct wk w;

	ck_assert_int_eq(tu_mkdtemp(&dir), 0);
	wk_start(&w, 1);
	wk_spec_full(&w, 0,
		     "exec:/bin/sh -c 'printf \"%s|\" \"$@\" \"$BULKHEAD_JOB_ID\" "
		     "\"$BULKHEAD_JOB_INPUT\"; echo oops >&2' sh {input} {id} {arg:color} "
		     "x{name}.{{lit}} \"two words\"",
		     "color=dark-blue other=1", "grp", dir);
	wk_input(&w, 17, "/spool/in put.txt");
	wk_assign_one(&w, 17, 0, BH_ASSIGN_INPUT);
	ev = (struct job_events){ .id = 17 };
	wk_events(&w, &ev, 1);
	ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_RETURNED);
	ck_assert_int_eq(ev.d.status, 0);

	snprintf(path, sizeof(path), "%s/grp.17.out", dir);
	out = tu_read_file(path);
	ck_assert_msg(out, "%s: %s", path, strerror(errno));
	snprintf(want, sizeof(want), "%s|17|dark-blue|xgrp.{lit}|two words|17|%s|",
		 "/spool/in put.txt", "/spool/in put.txt");
	ck_assert_str_eq(out, want);
	snprintf(path, sizeof(path), "%s/grp.17.err", dir);
	err = tu_read_file(path);
	ck_assert_ptr_nonnull(err);
	ck_assert_str_eq(err, "oops\n");
	free(out);
	free(err);
	free(wk_stop_log(&w));
	tu_rm_rf(dir);
	free(dir);
}
END_TEST

/* The command gets an empty signal mask, default dispositions, and none of our fds. */
START_TEST(test_exec_clean_child)
{
	struct job_events ev;
	char *dir, path[512], *out;
	struct wk w;

	ck_assert_int_eq(tu_mkdtemp(&dir), 0);
	wk_start(&w, 1);
	wk_spec_full(&w, 0, "exec:/bin/grep -E ^Sig(Blk|Ign): /proc/self/status", "", "sig", dir);
	wk_spec_full(&w, 1, "exec:/bin/ls -l /proc/self/fd/", "", "fds", dir);
	ev = wk_run1(&w, 1, 0);
	ck_assert_int_eq(ev.d.status, 0);
	ev = wk_run1(&w, 2, 1);
	ck_assert_int_eq(ev.d.status, 0);

	snprintf(path, sizeof(path), "%s/sig.1.out", dir);
	out = tu_read_file(path);
	ck_assert_ptr_nonnull(out);
	{
		unsigned long long blk = 1, ign = 1;

		ck_assert_int_eq(sscanf(out, "SigBlk:\t%llx\nSigIgn:\t%llx\n", &blk, &ign), 2);
		ck_assert_uint_eq(blk, 0);
		/*
		 * glibc's posix_spawn() leaves its two internal signals (32, 33: thread
		 * cancellation and setxid) ignored across the exec; every libc signal is at
		 * its default.
		 */
		ck_assert_msg((ign & ~0x180000000ull) == 0, "ignored: %llx", ign);
	}
	free(out);
	snprintf(path, sizeof(path), "%s/fds.2.out", dir);
	out = tu_read_file(path);
	ck_assert_ptr_nonnull(out);
	ck_assert_msg(!strstr(out, "socket:") && !strstr(out, "anon_inode") &&
			      !strstr(out, "pipe:"),
		      "the command inherited an fd:\n%s", out);
	free(out);
	free(wk_stop_log(&w));
	tu_rm_rf(dir);
	free(dir);
}
END_TEST

/* Without output = DIR: stdout and stderr are logged, the first 16 KiB of them. */
START_TEST(test_exec_output_logged)
{
	struct job_events ev;
	struct wk w;
	char *log;
	size_t lines = 0;

	wk_start_capture(&w, 1);
	wk_spec(&w, 0, "exec:/bin/sh -c 'echo hello; echo world >&2; printf tail'", "");
	/* 2000 lines of 50 bytes: 100 kB. */
	wk_spec(&w, 1,
		"exec:/bin/sh -c 'i=0; while [ $i -lt 2000 ]; do "
		"echo 0123456789012345678901234567890123456789012345678; "
		"i=$((i+1)); done'",
		"");
	ev = wk_run1(&w, 1, 0);
	ck_assert_int_eq(ev.d.status, 0);
	/* The master gets the lines too (LOG frames, before DONE), to keep with the job. */
	ck_assert_uint_eq(ev.n_logs, 3);
	ck_assert_str_eq(ev.first_log, "hello");
	ck_assert_str_eq(ev.last_log, "tail");
	ev = wk_run1(&w, 2, 1);
	ck_assert_int_eq(ev.d.status, 0);
	/* At most BH_LOG_LINES_MAX a run, then one line that says so. */
	ck_assert_uint_eq(ev.n_logs, BH_LOG_LINES_MAX + 1);
	ck_assert_msg(strstr(ev.last_log, "more lines of this run: not kept"), "%s", ev.last_log);
	log = wk_stop_log(&w);
	ck_assert_msg(strstr(log, "job 1: hello\n"), "%s", log);
	ck_assert_msg(strstr(log, "job 1: world\n"), "%s", log);
	ck_assert_msg(strstr(log, "job 1: tail\n"), "%s", log);
	/* 16384 bytes: 327 lines of 50, and the first 34 bytes of the next one. */
	for (char *p = log; (p = strstr(p, "job 2: 0123")); p++)
		lines++;
	ck_assert_uint_eq(lines, 328);
	ck_assert_msg(strstr(log, "job 2: 0123456789012345678901234567890123\n"), "%s", log);
	ck_assert_msg(strstr(log, "job 2: 83616 more bytes of output not logged"), "%s",
		      strstr(log, "job 2: 0123"));
	free(log);
}
END_TEST

/*
 * Starts job 1 as `sh -c 'sleep 1000 & echo $! > FIFO; TAIL'` on a fresh worker and returns
 * the command's pid (from EXEC) and the background sleep's pid (from the fifo).
 */
static void start_with_background(struct wk *w, const char *tail, char **ret_dir,
				  pid_t *ret_leader, pid_t *ret_bg)
{
	char fifo[512], cmd[1024], buf[32] = "";
	int fd;

	ck_assert_int_eq(tu_mkdtemp(ret_dir), 0);
	snprintf(fifo, sizeof(fifo), "%s/fifo", *ret_dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	wk_start(w, 1);
	snprintf(cmd, sizeof(cmd), "exec:/bin/sh -c 'sleep 1000 & echo $! > %s%s'", fifo, tail);
	wk_spec(w, 0, cmd, "");
	wk_assign(w, 1, 1, 0);
	*ret_leader = wk_expect_exec(w, 1);
	ck_assert_int_eq(poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, FRAME_TIMEOUT_MS),
			 1);
	ck_assert_int_gt(read(fd, buf, sizeof(buf) - 1), 0);
	close(fd);
	*ret_bg = (pid_t)atoi(buf);
	ck_assert_int_gt(*ret_bg, 0);
}

/*
 * The command is the leader of its own process group (its pid is the group id), and its
 * children are in that group: killing -pid ends them all. The worker lives on.
 */
START_TEST(test_exec_process_group)
{
	struct job_events ev = { .id = 1 };
	pid_t leader, grandchild;
	int pidfd;
	struct wk w;
	char *dir;

	start_with_background(&w, "; wait", &dir, &leader, &grandchild);
	ck_assert_int_eq(getpgid(leader), leader);
	ck_assert_int_eq(getpgid(grandchild), leader);
	pidfd = (int)pidfd_open(grandchild, 0);
	ck_assert_int_ge(pidfd, 0);

	ck_assert_int_eq(kill(-leader, SIGKILL), 0);
	ev.exec_pid = leader;
	wk_events(&w, &ev, 1);
	ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_SIGNALED);
	ck_assert_int_eq(ev.d.status, SIGKILL);
	/* The grandchild died too. */
	ck_assert_int_eq(
		poll(&(struct pollfd){ .fd = pidfd, .events = POLLIN }, 1, FRAME_TIMEOUT_MS), 1);
	close(pidfd);
	free(wk_stop_log(&w));
	tu_rm_rf(dir);
	free(dir);
}
END_TEST

/* A command that exits leaves nothing behind: what it started in its group is killed. */
START_TEST(test_exec_leftovers_killed)
{
	struct job_events ev = { .id = 1 };
	pid_t leader, orphan;
	int pidfd;
	struct wk w;
	char *dir;

	/*
	 * The shell starts sleep in the background, reports its pid, and exits 0 soon after:
	 * 50 ms, so that it is still running when its EXEC frame is due (after 1 ms, exec.c).
	 */
	start_with_background(&w, "; sleep 0.05", &dir, &leader, &orphan);
	pidfd = (int)pidfd_open(orphan, 0);
	ev.exec_pid = leader;
	wk_events(&w, &ev, 1);
	ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_RETURNED);
	ck_assert_int_eq(ev.d.status, 0);
	/* The background sleep is gone too (or going: its pidfd turns readable). */
	if (pidfd >= 0) {
		ck_assert_int_eq(poll(&(struct pollfd){ .fd = pidfd, .events = POLLIN }, 1,
				      FRAME_TIMEOUT_MS),
				 1);
		close(pidfd);
	}
	free(wk_stop_log(&w));
	tu_rm_rf(dir);
	free(dir);
}
END_TEST

/*
 * The worker's main thread and its spawner ask for a short scheduler slice; its job threads,
 * and the commands they start, have the default (common/sched-slice.h).
 */
START_TEST(test_exec_slices)
{
	const char *const extra[] = { "--spawner", NULL };
	struct job_events ev = { .id = 1 };
	pid_t tids[8], spawner;
	long def;
	struct wk w;
	int n;

	if (!tu_slices_supported(&def)) {
		fprintf(stderr, "test_exec_slices: skipped: this kernel does not give a thread "
				"the slice it asks for (it needs Linux 6.12)\n");
		return;
	}
	wk_start_full(&w, "test", 0, 2, extra);
	wk_expect_hello(&w, 2);
	n = tu_threads(w.pid, tids, 8);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(tu_thread_slice(tids[0]), (long)SCHED_SLICE_SUPERVISOR_NS);
	for (int i = 1; i < n; i++)
		ck_assert_int_eq(tu_thread_slice(tids[i]), def);
	spawner = tu_find_spawner(w.pid, FRAME_TIMEOUT_MS);
	ck_assert_int_gt(spawner, 0);
	ck_assert_int_eq(tu_thread_slice(spawner), (long)SCHED_SLICE_SUPERVISOR_NS);

	wk_spec(&w, 0, "exec:/bin/sleep 1000", "");
	wk_assign(&w, 1, 1, 0);
	ev.exec_pid = wk_expect_exec(&w, 1);
	ck_assert_int_eq(tu_thread_slice(ev.exec_pid), def);
	wk_cancel(&w, 1);
	wk_events(&w, &ev, 1);
	ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_SIGNALED);
	wk_kill(&w);
}
END_TEST

/* CANCEL and STOP send SIGTERM to the command's process group. */
START_TEST(test_exec_cancel)
{
	struct job_events ev = { .id = 1 };
	struct bh_frame f;
	pid_t pid;
	struct wk w;

	wk_start(&w, 2);
	wk_spec(&w, 0, "exec:/bin/sleep 1000", "");
	wk_assign(&w, 1, 1, 0);
	pid = wk_expect_exec(&w, 1);
	wk_cancel(&w, 1);
	ev.exec_pid = pid;
	wk_events(&w, &ev, 1);
	ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_SIGNALED);
	ck_assert_int_eq(ev.d.status, SIGTERM);

	/* A job cancelled while queued never starts its command. */
	wk_spec(&w, 1, plugin("outcomes", "outcome"), "do=cancel-wait");
	wk_assign(&w, 2, 2, 1); /* both threads busy... */
	for (int i = 0; i < 2; i++) {
		wk_recv(&w, &f, FRAME_TIMEOUT_MS);
		ck_assert_int_eq(f.type, BH_FRAME_PROGRESS);
	}
	wk_assign(&w, 4, 1, 0); /* ...so this one is queued */
	wk_cancel(&w, 4);
	wk_cancel(&w, 2);
	wk_cancel(&w, 3);
	{
		struct job_events e3[3] = { { .id = 2 }, { .id = 3 }, { .id = 4 } };

		wk_events(&w, e3, 3);
		ck_assert_uint_eq(e3[2].d.outcome, BH_OUTCOME_CANCELLED);
		ck_assert_int_eq(e3[2].d.status, 0);
		ck_assert_int_eq(e3[2].exec_pid, 0);
	}

	/* STOP: the running command gets SIGTERM, the job reports, the worker exits 0. */
	wk_assign(&w, 5, 1, 0);
	pid = wk_expect_exec(&w, 5);
	ck_assert_int_eq(tu_send_stop(w.sock), 0);
	wk_recv(&w, &f, FRAME_TIMEOUT_MS);
	ck_assert_int_eq(f.type, BH_FRAME_DONE);
	{
		struct bh_done_entry d;

		bh_frame_done_entry(&f, 0, &d);
		ck_assert_uint_eq(d.job_id, 5);
		ck_assert_uint_eq(d.outcome, BH_OUTCOME_SIGNALED);
		ck_assert_int_eq(d.status, SIGTERM);
	}
	ck_assert_int_eq(tu_recv_frame(w.sock, w.buf, FRAME_TIMEOUT_MS), 0);
	wk_expect_exit(&w, 0);
	ck_assert(!tu_process_alive(pid));
}
END_TEST

/*
 * Starts job 1 on a fresh worker (1 thread) as a shell that starts two processes outside
 * its process group, `setsid sleep` and a `sleep` double-forked in a session of its own (its
 * parent exits at once), writes their pids to a fifo, then runs TAIL. Returns the command's pid
 * (from EXEC) and pidfds of the two escapees.
 */
static void start_with_escapees(struct wk *w, const char *tail, char **ret_dir, pid_t *ret_leader,
				int escapees[2])
{
	char fifo[512], go[512], cmd[1400], buf[64] = "";
	int fd, a = 0, b = 0;

	ck_assert_int_eq(tu_mkdtemp(ret_dir), 0);
	snprintf(fifo, sizeof(fifo), "%s/fifo", *ret_dir);
	snprintf(go, sizeof(go), "%s/go", *ret_dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	ck_assert_int_eq(mkfifo(go, 0600), 0);
	fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	wk_start(w, 1);
	/* After the pids, the command waits on `go` until the test holds pidfds of both: a
	 * TAIL that ends the job at once must not end the escapees before they are watched. */
	snprintf(cmd, sizeof(cmd),
		 "exec:/bin/sh -c 'setsid sleep 1000 & s=$!; "
		 "d=$(setsid sh -c \"sleep 1000 >/dev/null 2>&1 & echo \\$!\"); "
		 "echo \"$s $d\" > %s; read g < %s%s'",
		 fifo, go, tail);
	wk_spec(w, 0, cmd, "");
	wk_assign(w, 1, 1, 0);
	*ret_leader = wk_expect_exec(w, 1);
	ck_assert_int_eq(poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, FRAME_TIMEOUT_MS),
			 1);
	ck_assert_int_gt(read(fd, buf, sizeof(buf) - 1), 0);
	close(fd);
	ck_assert_msg(sscanf(buf, "%d %d", &a, &b) == 2 && a > 0 && b > 0, "pids: %s", buf);
	/*
	 * Not in the command's group: a kill of the group does not reach them. `$!` is known
	 * before setsid(1) has run in the child: wait (a /proc state, with a deadline) for it.
	 */
	for (int64_t deadline = tu_now_ms() + FRAME_TIMEOUT_MS;
	     getpgid(a) == *ret_leader || getpgid(b) == *ret_leader;) {
		ck_assert_msg(tu_ms_left(deadline) > 0, "the escapees never left the group");
		poll(NULL, 0, 5);
	}
	escapees[0] = (int)pidfd_open(a, 0);
	escapees[1] = (int)pidfd_open(b, 0);
	ck_assert_int_ge(escapees[0], 0);
	ck_assert_int_ge(escapees[1], 0);
	ck_assert_int_eq(tu_write_file(go, "go\n"), 0); /* the command goes on to TAIL */
}

/* Both escapees end within FRAME_TIMEOUT_MS; else they are killed and the test fails. */
static void assert_escapees_gone(int escapees[2])
{
	int64_t deadline = tu_now_ms() + FRAME_TIMEOUT_MS;
	bool gone[2] = { false, false };

	for (int i = 0; i < 2; i++) {
		gone[i] = poll(&(struct pollfd){ .fd = escapees[i], .events = POLLIN }, 1,
			       tu_ms_left(deadline)) == 1;
		if (!gone[i])
			(void)pidfd_send_signal(escapees[i], SIGKILL, NULL, 0);
		close(escapees[i]);
	}
	ck_assert_msg(gone[0], "the setsid'd process outlived its job");
	ck_assert_msg(gone[1], "the double-forked process outlived its job");
}

/* A command that exits leaves nothing behind, also what left its process group. */
START_TEST(test_exec_escapees_killed)
{
	struct job_events ev = { .id = 1 };
	int escapees[2];
	pid_t leader;
	struct wk w;
	char *dir;

	start_with_escapees(&w, "", &dir, &leader, escapees);
	ev.exec_pid = leader;
	wk_events(&w, &ev, 1);
	ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_RETURNED);
	ck_assert_int_eq(ev.d.status, 0);
	assert_escapees_gone(escapees);
	free(wk_stop_log(&w));
	tu_rm_rf(dir);
	free(dir);
}
END_TEST

/*
 * The master's kill of the command's group (a timeout): the job is SIGNALED SIGKILL, and
 * what escaped the group goes too.
 */
START_TEST(test_exec_group_kill_takes_escapees)
{
	struct job_events ev = { .id = 1 };
	int escapees[2];
	pid_t leader;
	struct wk w;
	char *dir;

	start_with_escapees(&w, "; wait", &dir, &leader, escapees);
	ck_assert_int_eq(kill(-leader, SIGKILL), 0);
	ev.exec_pid = leader;
	wk_events(&w, &ev, 1);
	ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_SIGNALED);
	ck_assert_int_eq(ev.d.status, SIGKILL);
	assert_escapees_gone(escapees);
	free(wk_stop_log(&w));
	tu_rm_rf(dir);
	free(dir);
}
END_TEST

/*
 * The worker dies (SIGKILL, as when its master was killed): nobody is left to kill the
 * command's group, yet the command and everything it started, in its group or not, end.
 */
START_TEST(test_exec_worker_death_takes_everything)
{
	int escapees[2], leader_fd;
	pid_t leader;
	struct wk w;
	char *dir;

	start_with_escapees(&w, "; wait", &dir, &leader, escapees);
	leader_fd = (int)pidfd_open(leader, 0);
	ck_assert_int_ge(leader_fd, 0);
	ck_assert_int_eq(kill(w.pid, SIGKILL), 0);
	ck_assert_int_eq(tu_wait_exit(w.pid, FRAME_TIMEOUT_MS, NULL), 0);
	ck_assert_int_eq(
		poll(&(struct pollfd){ .fd = leader_fd, .events = POLLIN }, 1, FRAME_TIMEOUT_MS),
		1);
	close(leader_fd);
	assert_escapees_gone(escapees);
	ck_assert_int_eq(tu_count_zombie_children(), 0);
	close(w.sock);
	tu_rm_rf(dir);
	free(dir);
}
END_TEST

/* --- contained runs (BH_ASSIGN_CONTAIN, children/contain.c) --- */

/* Sends one ASSIGN frame of jobs first..last of spec 0, but job `contained` of spec 1 so. */
static void assign_around(struct wk *w, uint64_t first, uint64_t last, uint64_t contained)
{
	struct bh_batch b;

	bh_batch_init(&b, scratch, sizeof(scratch), BH_FRAME_ASSIGN);
	for (uint64_t id = first; id <= last; id++)
		ck_assert(bh_batch_add_assign(&b, id, id == contained ? 1 : 0,
					      id == contained ? BH_ASSIGN_CONTAIN : 0));
	ck_assert_int_eq(tu_send_frame(w->sock, scratch, bh_batch_finish(&b)), 0);
}

/*
 * Reads frames until jobs first..last all reported DONE; job `culprit` must crash contained:
 * one CRASH frame marked CONTAINED as crash case c says, then (a signal) one CRASH_INFO, then
 * its DONE with a DIED outcome (`died`, status `status`); every other job RETURNED 0.
 */
static void expect_contained_crash(struct wk *w, uint64_t first, uint64_t last, uint64_t culprit,
				   const struct crash_case *c, uint32_t died, int32_t status)
{
	bool done[64] = { false }, crashed = false, info = false;
	size_t left = (size_t)(last - first + 1);

	ck_assert_uint_lt(last, 64);
	while (left > 0) {
		struct bh_frame f;

		wk_recv(w, &f, FRAME_TIMEOUT_MS);
		if (f.type == BH_FRAME_CRASH) {
			ck_assert_msg(!crashed && !done[culprit], "CRASH twice, or after the DONE");
			crashed = true;
			ck_assert_uint_eq(f.crash.flags, BH_CRASH_CONTAINED);
			ck_assert_uint_eq(f.crash.job_id, culprit);
			ck_assert_uint_eq(f.crash.kind, c->kind);
			ck_assert_int_eq(f.crash.signo, c->signo);
			if (c->code != INT32_MIN)
				ck_assert_int_eq(f.crash.code, c->code);
			ck_assert(c->addr ? f.crash.addr != 0 : f.crash.addr == 0);
			continue;
		}
		if (f.type == BH_FRAME_CRASH_INFO) {
			ck_assert_msg(crashed && !info && !done[culprit],
				      "CRASH_INFO not once between CRASH and DONE");
			info = true;
			ck_assert_uint_eq(f.crash_info.job_id, culprit);
			ck_assert_uint_ge(f.crash_info.frames, 1);
			continue;
		}
		ck_assert_msg(f.type == BH_FRAME_DONE, "unexpected %s", bh_frame_type_name(f.type));
		for (uint32_t i = 0; i < f.done.count; i++) {
			struct bh_done_entry e;

			bh_frame_done_entry(&f, i, &e);
			ck_assert(e.job_id >= first && e.job_id <= last && !done[e.job_id]);
			done[e.job_id] = true;
			left--;
			if (e.job_id != culprit) {
				ck_assert_uint_eq(e.outcome, BH_OUTCOME_RETURNED);
				ck_assert_int_eq(e.status, 0);
				continue;
			}
			ck_assert_msg(crashed || c->kind == 0, "DONE of the culprit without CRASH");
			ck_assert_uint_eq(e.outcome, died);
			ck_assert_int_eq(e.status, status);
		}
	}
	ck_assert_msg(info || c->kind != BH_CRASH_SIGNAL, "no CRASH_INFO for a signal");
}

/* The worker lives on: no child left (alive or zombie), another job runs, STOP ends it. */
static void expect_worker_lives(struct wk *w, uint64_t next)
{
	pid_t kids[4];
	struct job_events ev;

	ck_assert_int_eq(tu_children_any(w->pid, kids, 4), 0);
	ev = wk_run1(w, next, 0);
	ck_assert_int_eq(ev.d.status, 0);
	ck_assert_int_eq(tu_send_stop(w->sock), 0);
	wk_expect_exit(w, 0);
}

/*
 * Every crash kind, contained: the crasher 11 among noops 1..20 on two threads. Its crash
 * comes as a CONTAINED CRASH frame (and CRASH_INFO), then its DONE with a DIED outcome; the
 * noops are all done and the worker lives on with no child left.
 */
START_TEST(test_contained_crash)
{
	const struct crash_case *c = &crash_cases[_i];
	char run[64];
	struct wk w;

	snprintf(run, sizeof(run), "builtin:%s", c->builtin);
	wk_start(&w, 2);
	wk_spec(&w, 0, "builtin:noop", "");
	wk_spec(&w, 1, run, c->args);
	assign_around(&w, 1, 20, 11);
	if (c->kind == BH_CRASH_EXIT)
		expect_contained_crash(&w, 1, 20, 11, c, BH_OUTCOME_DIED_EXIT, c->code);
	else
		expect_contained_crash(&w, 1, 20, 11, c, BH_OUTCOME_DIED_SIGNAL, c->signo);
	expect_worker_lives(&w, 21);
}
END_TEST

/* A contained job out of memory (RLIMIT_AS of the worker): kind OOM, the worker lives on. */
START_TEST(test_contained_leak)
{
#if BULKHEAD_SANITIZED
	printf("test_contained_leak skipped: sanitizer allocators die instead of returning NULL\n");
	fflush(stdout);
	return;
#else
	static const struct crash_case leak = {
		.builtin = "leak",
		.kind = BH_CRASH_OOM,
		.signo = SIGABRT,
		.code = SI_TKILL,
	};
	static const char *const extra[] = { "--memory-max", "64M", NULL };
	struct wk w;

	wk_start_full(&w, "test", 0, 2, extra);
	wk_expect_hello(&w, 2);
	wk_spec(&w, 0, "builtin:noop", "");
	wk_spec(&w, 1, "builtin:leak", "step=1M");
	assign_around(&w, 1, 4, 2);
	expect_contained_crash(&w, 1, 4, 2, &leak, BH_OUTCOME_DIED_SIGNAL, SIGABRT);
	expect_worker_lives(&w, 5);
#endif
}
END_TEST

/*
 * A contained job that returns: its RESULT, PROGRESS and LOG frames reach the master through
 * the worker, before its DONE (RETURNED, the job's status); thread-local state works there.
 */
START_TEST(test_contained_returns)
{
	static const struct {
		const char *args;
		int32_t status;
	} jobs[] = {
		{ "do=result text=hello", 0 },
		{ "do=progress", 0 },
		{ "do=log", 0 },
		{ "do=fail status=4", 4 },
	};
	struct job_events ev;
	struct wk w;

	wk_start(&w, 1);
	wk_spec(&w, 0, "builtin:noop", "");
	for (uint32_t i = 0; i < 4; i++)
		wk_spec(&w, 1 + i, plugin("outcomes", "outcome"), jobs[i].args);
	wk_spec(&w, 5, "builtin:tls", "");
	for (uint32_t i = 0; i < 5; i++) {
		ev = (struct job_events){ .id = 1 + i };
		wk_assign_one(&w, 1 + i, 1 + i, BH_ASSIGN_CONTAIN);
		wk_events(&w, &ev, 1);
		ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_RETURNED);
		ck_assert_int_eq(ev.d.status, i < 4 ? jobs[i].status : 0);
		if (i == 0)
			ck_assert_str_eq(ev.result, "hello #1");
		if (i == 1)
			ck_assert_uint_eq(ev.progress[ev.n_progress - 1], 1000);
		if (i == 2)
			ck_assert_uint_ge(ev.n_logs, 1);
	}
	expect_worker_lives(&w, 6);
}
END_TEST

/*
 * CANCEL of a contained job kills its child (DIED_SIGNAL, SIGKILL), and only it: the worker
 * lives on without a child. A STOP does not: a draining contained job runs to its end.
 */
START_TEST(test_contained_cancel_and_stop)
{
	struct job_events ev;
	struct bh_done_entry d;
	pid_t kids[4];
	struct wk w;

	wk_start(&w, 1);
	wk_spec(&w, 0, plugin("outcomes", "outcome"), "do=cancel-wait");
	wk_spec(&w, 1, plugin("outcomes", "outcome"), "do=progress");
	wk_assign_one(&w, 1, 0, BH_ASSIGN_CONTAIN);
	wk_expect_progress(&w, 1); /* relayed from the child: it runs */
	ck_assert_int_eq(tu_children_any(w.pid, kids, 4), 1);
	wk_cancel(&w, 1);
	d = wk_expect_done1(&w, 1);
	ck_assert_uint_eq(d.outcome, BH_OUTCOME_DIED_SIGNAL);
	ck_assert_int_eq(d.status, SIGKILL);
	ck_assert_int_eq(tu_children_any(w.pid, kids, 4), 0);
	ck_assert(!tu_process_alive(kids[0]));

	/* 0.25 at once, 0.5 and 1.0 after 120 ms: the STOP comes in between (or after). */
	wk_assign_one(&w, 2, 1, BH_ASSIGN_CONTAIN);
	wk_expect_progress(&w, 2);
	ck_assert_int_eq(tu_children_any(w.pid, kids, 4), 1);
	ck_assert_int_eq(tu_send_stop(w.sock), 0);
	ev = (struct job_events){ .id = 2 };
	wk_events(&w, &ev, 1);
	ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_RETURNED);
	ck_assert_int_eq(ev.d.status, 0);
	ck_assert_uint_eq(ev.progress[ev.n_progress - 1], 1000);
	wk_expect_exit(&w, 0);
	ck_assert(!tu_process_alive(kids[0]));
}
END_TEST

/* The worker killed under a contained job: its child goes too (PR_SET_PDEATHSIG). */
START_TEST(test_contained_worker_killed)
{
	pid_t kids[4];
	struct wk w;

	wk_start(&w, 1);
	wk_spec(&w, 0, plugin("outcomes", "outcome"), "do=cancel-wait");
	wk_assign_one(&w, 1, 0, BH_ASSIGN_CONTAIN);
	wk_expect_progress(&w, 1);
	ck_assert_int_eq(tu_children_any(w.pid, kids, 4), 1);
	wk_kill(&w);
	for (int64_t deadline = tu_now_ms() + FRAME_TIMEOUT_MS; tu_process_alive(kids[0]);)
		ck_assert_msg(tu_ms_left(deadline) > 0, "the contained job's process %d outlived "
							"its worker",
			      (int)kids[0]);
}
END_TEST

/*
 * An exec: job assigned CONTAIN (the master never asks) runs as it would uncontained: its
 * command's trampoline is the worker's own child, not a throwaway process's.
 */
START_TEST(test_contained_exec_runs_plain)
{
	struct job_events ev = { .id = 1 };
	pid_t command, tramp, ppid;
	char state;
	struct wk w;

	wk_start(&w, 1);
	wk_spec(&w, 0, "exec:/bin/sleep 0.2", "");
	wk_assign_one(&w, 1, 0, BH_ASSIGN_CONTAIN);
	command = wk_expect_exec(&w, 1); /* its parent is the trampoline */
	ck_assert_int_eq(tu_proc_stat(command, NULL, 0, &state, &tramp), 0);
	ck_assert_int_eq(tu_proc_stat(tramp, NULL, 0, &state, &ppid), 0);
	ck_assert_int_eq(ppid, w.pid);
	wk_events(&w, &ev, 1);
	ck_assert_uint_eq(ev.d.outcome, BH_OUTCOME_RETURNED);
	ck_assert_int_eq(ev.d.status, 0);
	expect_worker_lives(&w, 2);
}
END_TEST

static Suite *worker_suite(void)
{
	Suite *s = suite_create("worker");
	TCase *tc;

	tc = tcase_create("testutil");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_testutil_spawn);
	tcase_add_test(tc, test_testutil_wait_and_files);
	suite_add_tcase(s, tc);

	tc = tcase_create("start");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_hello);
	tcase_add_loop_test(tc, test_usage, 0, sizeof(bad_usages) / sizeof(bad_usages[0]));
	tcase_add_test(tc, test_no_socket);
	tcase_add_test(tc, test_not_parent);
	tcase_add_test(tc, test_thread_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("jobs");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_noop_batch);
	tcase_add_test(tc, test_noop_throughput);
	tcase_add_test(tc, test_fifo);
	tcase_add_test(tc, test_fifo_running_set);
	tcase_add_test(tc, test_fail);
	tcase_add_test(tc, test_balance);
	tcase_add_test(tc, test_balance_unlocked);
	tcase_add_test(tc, test_tls);
	tcase_add_test(tc, test_sleep_spin_hang_finite);
	tcase_add_test(tc, test_builtins_cancelled);
	tcase_add_test(tc, test_bad_specs);
	suite_add_tcase(s, tc);

	tc = tcase_create("crashes");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_crash, 0, sizeof(crash_cases) / sizeof(crash_cases[0]));
	tcase_add_test(tc, test_crash_probability_zero);
	tcase_add_test(tc, test_crash_from_outside);
	tcase_add_test(tc, test_leak);
	tcase_add_test(tc, test_hang);
	tcase_add_test(tc, test_deadlock);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifecycle");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_stop);
	tcase_add_test(tc, test_stop_idle);
	tcase_add_test(tc, test_master_close);
	tcase_add_test(tc, test_pdeathsig);
	tcase_add_loop_test(tc, test_bad_frame, 0, 9);
	tcase_add_test(tc, test_spec_twice);
	tcase_add_test(tc, test_spec_forget);
	tcase_add_test(tc, test_forget_in_use);
	suite_add_tcase(s, tc);

	tc = tcase_create("plugins");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_plugin_returns);
	tcase_add_test(tc, test_plugin_bad);
	tcase_add_loop_test(tc, test_plugin_crash, 0,
			    sizeof(plugin_crash_cases) / sizeof(plugin_crash_cases[0]));
	tcase_add_test(tc, test_plugin_result);
	tcase_add_test(tc, test_plugin_progress);
	tcase_add_test(tc, test_plugin_log);
	tcase_add_test(tc, test_plugin_cancel);
	tcase_add_test(tc, test_input);
	tcase_add_loop_test(tc, test_input_errors, 0, 5);
	tcase_add_test(tc, test_input_full_batch);
	suite_add_tcase(s, tc);

	tc = tcase_create("contain");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, test_contained_crash, 0,
			    sizeof(crash_cases) / sizeof(crash_cases[0]));
	tcase_add_test(tc, test_contained_leak);
	tcase_add_test(tc, test_contained_returns);
	tcase_add_test(tc, test_contained_cancel_and_stop);
	tcase_add_test(tc, test_contained_worker_killed);
	tcase_add_test(tc, test_contained_exec_runs_plain);
	suite_add_tcase(s, tc);

	tc = tcase_create("exec");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_exec_exit_codes);
	tcase_add_test(tc, test_exec_substitution);
	tcase_add_test(tc, test_exec_clean_child);
	tcase_add_test(tc, test_exec_output_logged);
	tcase_add_test(tc, test_exec_process_group);
	tcase_add_test(tc, test_exec_leftovers_killed);
	tcase_add_test(tc, test_exec_cancel);
	tcase_add_test(tc, test_exec_slices);
	tcase_add_test(tc, test_exec_escapees_killed);
	tcase_add_test(tc, test_exec_group_kill_takes_escapees);
	tcase_add_test(tc, test_exec_worker_death_takes_everything);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(worker_suite());
	int failed;

	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
