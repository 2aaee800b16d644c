/* SPDX-License-Identifier: MIT */
/*
 * The worker process: command line, start-up, and the main thread's event loop.
 *
 *   bulkhead-worker --pool NAME --index N --threads T --master-pid PID [--memory-max BYTES]
 *                   [--uid UID --gid GID] [--core-dumps] [--spawner]   (worker-args.c)
 *
 * (main.c's table sends the other process kinds of this binary elsewhere:
 * `--standalone` to standalone.c, `--zygote`, `--probe`, `--exec-command`.)
 *
 * Start-up order matters: PR_SET_PDEATHSIG first, then the parent check (the master may have
 * died before the prctl), fds > 3 closed, fd 3 made CLOEXEC (no job's child inherits it),
 * privileges dropped (privileges.c: --uid/--gid, no capabilities, NO_NEW_PRIVS), RLIMIT_CORE
 * set (--core-dumps), signal mask and ignored signals reset (the master's sd-event blocks
 * signals and posix_spawn passes masks on), SIGPIPE ignored, with --spawner the spawner
 * forked (spawner.c: it forks exec: jobs' trampolines, which inherit all of the above from
 * it), crash handlers installed, job threads started (pool.c; they are all up when
 * pool_new() returns), RLIMIT_AS set (the spawner's too), and only then HELLO. HELLO
 * therefore means: every thread is named, armed and waiting for work.
 *
 * Memory limit (--memory-max): under the master's rlimit fallback, RLIMIT_AS is set to the
 * worker's VmSize once its threads are up, plus memory_max. So memory_max is the address
 * space jobs may add beyond the worker's baseline. The baseline includes each thread's
 * 4 MiB stack and its glibc malloc arena (reserved up front by a warm-up malloc, so a
 * thread's first malloc cannot fail for want of address space); a job can also fill the
 * unused part of its arena (up to 64 MiB, already counted in the baseline) before malloc
 * fails, so the limit is approximate: a cgroup's memory.max is the exact one.
 *
 * The main thread owns the spec table, the pending inputs and the DONE frames. It never
 * blocks on the master: frames are received with MSG_DONTWAIT, and results are sent with
 * MSG_DONTWAIT one frame at a time; when the socket is full the frame waits (POLLOUT) and
 * results pile up in the pool's outbox, to go out as fuller frames later. Job threads send
 * their own small frames (RESULT, PROGRESS, EXEC: job-context.c) with blocking sends,
 * each one message, and the crash handler (crash.c) sends one CRASH frame and kills the
 * process. With a spawner it also polls the watch of the job threads' runners (exec-start.c),
 * and when one dies has the idle job threads reap theirs.
 *
 * Inputs: an INPUT frame (job id, path) comes just before the ASSIGN that names the job with
 * BH_ASSIGN_INPUT. The path waits in a small hash table (at most INPUTS_PENDING_MAX) until
 * that ASSIGN takes it into the job's queue entry; from there the pool owns it. An INPUT for
 * a job that already has one, too many pending, an ASSIGN entry with BH_ASSIGN_INPUT and no
 * INPUT, or an INPUT left for an ASSIGN entry without the flag are protocol errors. Builtin
 * jobs without inputs pay one flag test per ASSIGN entry.
 *
 * Trust: the master is trusted to be the master (it is our parent and holds the other end
 * of a socketpair), but every frame is still checked; a bad one (decode error, a worker's
 * frame type, a spec defined twice or one too many, a FORGET of a spec that is undefined or
 * still has jobs here, an ASSIGN naming an undefined spec,
 * more than POOL_JOBS_MAX jobs outstanding) is logged and the worker exits 3 at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "builtin.h"
#include "common/idmap.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/sched-slice.h"
#include "common/units.h"
#include "crash.h"
#include "exec-start.h"
#include "job-context.h"
#include "job-spec.h"
#include "pool.h"
#include "privileges.h"
#include "spawner.h"
#include "worker-args.h"
#include "worker.h"

#define SPECS_MAX 65536u /* specs defined at once (the master forgets those it is done with) */
#define FRAMES_PER_ROUND 64 /* frames read before results get a turn */
#define INPUTS_PENDING_MAX BH_ASSIGN_MAX /* INPUT frames not yet taken by an ASSIGN */
#define INPUTS_SLOTS 8192u /* hash slots: a power of two, > 2 * INPUTS_PENDING_MAX */

struct input_slot {
	uint64_t job_id;
	char *input;
};

struct worker {
	struct worker_options o;
	struct pool *pool;
	bool stopping;

	struct idmap specs; /* spec id + 1 -> struct job_spec * */

	/* Results taken from the pool and not yet framed: results[results_pos..results_n). */
	const struct pool_result *results;
	size_t results_n, results_pos;

	/* Pending inputs: open addressing, linear probing; job_id 0 = an empty slot. */
	struct input_slot *inputs;
	size_t n_inputs;

	size_t tx_len; /* a DONE frame waiting in tx, 0 if none */
	uint8_t tx[BH_FRAME_MAX];
	uint8_t rx[BH_FRAME_MAX];
	struct pool_job assign[BH_ASSIGN_MAX];
};

static struct worker worker;

static _Noreturn void master_gone(const char *why)
{
	log_error("master is gone (%s), exiting", why);
	spawner_stop();
	_exit(WORKER_EXIT_MASTER_GONE);
}

static _Noreturn __attribute__((format(printf, 1, 2))) void protocol_error(const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("protocol error from master: %s", msg);
	spawner_stop();
	_exit(WORKER_EXIT_PROTOCOL);
}

/* The main thread cannot allocate: blamed on no job (job id 0), reported as OOM. */
static _Noreturn void out_of_memory(void)
{
	log_error("out of memory in the worker's main thread");
	crash_set_oom();
	abort();
}

/* --- start-up --- */

static int reset_signals(void)
{
	sigset_t all;

	sigemptyset(&all);
	if (sigprocmask(SIG_SETMASK, &all, NULL) < 0)
		return -errno;
	/* Ignored dispositions survive exec; handled ones do not. */
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;

		if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) < 0)
			continue;
		if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN)
			signal(sig, SIG_DFL);
	}
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return -errno;
	return 0;
}

static int check_master_socket(void)
{
	socklen_t len = sizeof(int);
	int type;

	if (getsockopt(WORKER_FD, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -errno;
	if (type != SOCK_SEQPACKET)
		return -ENOTSOCK;
	if (fcntl(WORKER_FD, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

static int read_vm_size(uint64_t *ret)
{
	unsigned long long pages;
	char buf[128];
	ssize_t n;
	int fd;

	fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	if (sscanf(buf, "%llu", &pages) != 1)
		return -EIO;
	*ret = (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
	return 0;
}

static int set_memory_limit(uint64_t memory_max)
{
	struct rlimit rl;
	uint64_t base = 0, limit;
	int r;

	if (memory_max == UINT64_MAX)
		return 0;
	r = read_vm_size(&base);
	if (r < 0)
		return r;
	limit = base > UINT64_MAX - memory_max ? UINT64_MAX : base + memory_max;
	if (getrlimit(RLIMIT_AS, &rl) < 0)
		return -errno;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < limit)
		limit = rl.rlim_max;
	rl.rlim_cur = rl.rlim_max = limit;
	if (setrlimit(RLIMIT_AS, &rl) < 0)
		return -errno;
	r = spawner_set_rlimit_as(&rl); /* the commands' limit, as when they were spawned */
	if (r < 0)
		return r;
	log_debug("RLIMIT_AS %" PRIu64 " bytes (baseline %" PRIu64 ")", limit, base);
	return 0;
}

static void send_hello(struct worker *w)
{
	size_t n = bh_encode_hello(w->tx, sizeof(w->tx), (int32_t)getpid(), w->o.threads);

	while (send(WORKER_FD, w->tx, n, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			master_gone(strerror(errno));
}

/* --- frames from the master --- */

/* The spec with this id (ids come checked: < UINT32_MAX), or NULL. */
static struct job_spec *spec_find(const struct worker *w, uint32_t id)
{
	struct idmap_entry *e = idmap_find(&w->specs, id + 1);

	return e ? (struct job_spec *)(uintptr_t)e->value : NULL;
}

static void handle_spec(struct worker *w, const struct bh_frame *f)
{
	uint32_t id = f->spec.id;
	struct job_spec *spec;

	if (spec_find(w, id))
		protocol_error("SPEC %" PRIu32 " defined twice", id);
	if (w->specs.n >= SPECS_MAX)
		protocol_error("SPEC %" PRIu32 ": more than %u specs defined", id, SPECS_MAX);
	if (job_spec_new_full(f, &spec) < 0 || idmap_add(&w->specs, id + 1, (uintptr_t)spec) < 0)
		out_of_memory();
}

/* The master is done with a spec: no job of it may be queued or running here. */
static void handle_forget(struct worker *w, const struct bh_frame *f)
{
	uint32_t id = f->forget.spec_id;
	struct job_spec *spec = spec_find(w, id);

	if (!spec)
		protocol_error("FORGET of undefined spec %" PRIu32, id);
	if (pool_spec_in_use(w->pool, spec))
		protocol_error("FORGET of spec %" PRIu32 " while a job of it is here", id);
	idmap_del(&w->specs, id + 1);
	job_spec_free(spec);
}

/* --- pending inputs --- */

static size_t input_slot(uint64_t job_id)
{
	return (size_t)((job_id * 0x9e3779b97f4a7c15ull) >> 40) & (INPUTS_SLOTS - 1);
}

static struct input_slot *input_find(struct worker *w, uint64_t job_id)
{
	for (size_t i = input_slot(job_id);; i = (i + 1) & (INPUTS_SLOTS - 1)) {
		if (w->inputs[i].job_id == job_id)
			return &w->inputs[i];
		if (w->inputs[i].job_id == 0)
			return NULL;
	}
}

/* Removes slot s (backward-shift deletion: no tombstones) and returns its input. */
static char *input_take(struct worker *w, struct input_slot *s)
{
	char *input = s->input;
	size_t i = (size_t)(s - w->inputs), j = i;

	for (;;) {
		size_t home;

		j = (j + 1) & (INPUTS_SLOTS - 1);
		if (w->inputs[j].job_id == 0)
			break;
		home = input_slot(w->inputs[j].job_id);
		/* Entry j may move to the hole at i if its home is not in (i, j]. */
		if (((j - home) & (INPUTS_SLOTS - 1)) >= ((j - i) & (INPUTS_SLOTS - 1))) {
			w->inputs[i] = w->inputs[j];
			i = j;
		}
	}
	w->inputs[i] = (struct input_slot){ 0 };
	w->n_inputs--;
	return input;
}

static void handle_input(struct worker *w, const struct bh_frame *f)
{
	uint64_t job_id = f->text.job_id;
	size_t i;
	char *input;

	if (!w->inputs) {
		w->inputs = calloc(INPUTS_SLOTS, sizeof(*w->inputs));
		if (!w->inputs)
			out_of_memory();
	}
	if (input_find(w, job_id))
		protocol_error("INPUT for job %" PRIu64 " twice", job_id);
	if (w->n_inputs >= INPUTS_PENDING_MAX)
		protocol_error("more than %zu INPUT frames before their ASSIGN",
			       (size_t)INPUTS_PENDING_MAX);
	input = strndup(f->text.text, f->text.len);
	if (!input)
		out_of_memory();
	for (i = input_slot(job_id); w->inputs[i].job_id != 0; i = (i + 1) & (INPUTS_SLOTS - 1))
		;
	w->inputs[i] = (struct input_slot){ .job_id = job_id, .input = input };
	w->n_inputs++;
}

static void handle_cancel(struct worker *w, const struct bh_frame *f)
{
	/* A job already finished (its DONE may be on the way) or unknown: nothing to do. */
	if (!w->stopping && !pool_cancel(w->pool, f->cancel.job_id))
		log_debug("CANCEL of job %" PRIu64 ": not running here", f->cancel.job_id);
}

static void handle_assign(struct worker *w, const struct bh_frame *f)
{
	int r;

	for (uint32_t i = 0; i < f->assign.count; i++) {
		struct bh_assign_entry e;
		const struct job_spec *spec;
		char *input = NULL;

		bh_frame_assign_entry(f, i, &e);
		spec = spec_find(w, e.spec_id);
		if (!spec)
			protocol_error("ASSIGN of job %" PRIu64 " names undefined spec %" PRIu32,
				       e.job_id, e.spec_id);
		if (e.flags & BH_ASSIGN_INPUT) {
			struct input_slot *s = w->n_inputs ? input_find(w, e.job_id) : NULL;

			if (!s)
				protocol_error("ASSIGN of job %" PRIu64
					       " with an input, but no INPUT",
					       e.job_id);
			input = input_take(w, s);
		} else if (w->n_inputs > 0 && input_find(w, e.job_id)) {
			protocol_error("INPUT for job %" PRIu64 " but its ASSIGN has no input",
				       e.job_id);
		}
		w->assign[i] = (struct pool_job){ .job_id = e.job_id,
						  .spec = spec,
						  .input = input,
						  .contain = e.flags & BH_ASSIGN_CONTAIN };
	}
	if (w->stopping) {
		/* A STOP crossed this ASSIGN: these jobs are not run, and not reported. */
		for (uint32_t i = 0; i < f->assign.count; i++)
			free(w->assign[i].input);
		return;
	}
	r = pool_submit(w->pool, w->assign, f->assign.count);
	if (r == -E2BIG)
		protocol_error("more than %u jobs outstanding", POOL_JOBS_MAX);
	if (r < 0)
		out_of_memory();
}

static void handle_frame(struct worker *w, size_t len)
{
	struct bh_frame f;
	int r;

	r = bh_frame_decode(w->rx, len, &f);
	if (r < 0)
		protocol_error("bad frame (%zu bytes): %s", len, strerror(-r));
	if (bh_frame_from_worker(f.type))
		protocol_error("unexpected %s frame", bh_frame_type_name(f.type));

	switch (f.type) {
	case BH_FRAME_SPEC:
		handle_spec(w, &f);
		break;
	case BH_FRAME_ASSIGN:
		handle_assign(w, &f);
		break;
	case BH_FRAME_INPUT:
		handle_input(w, &f);
		break;
	case BH_FRAME_CANCEL:
		handle_cancel(w, &f);
		break;
	case BH_FRAME_FORGET:
		handle_forget(w, &f);
		break;
	case BH_FRAME_STOP:
		if (!w->stopping) {
			w->stopping = true;
			pool_stop(w->pool);
		}
		break;
	case BH_FRAME_INJECT:
		/* The master asked for it (bulkhead inject): the fault is ours, not a job's. */
		builtin_inject((enum bh_inject_kind)f.inject.kind);
	default:
		protocol_error("unexpected %s frame", bh_frame_type_name(f.type));
	}
}

static void read_frames(struct worker *w)
{
	for (int i = 0; i < FRAMES_PER_ROUND; i++) {
		ssize_t n = recv(WORKER_FD, w->rx, sizeof(w->rx), MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			master_gone(strerror(errno));
		}
		if (n == 0)
			master_gone("end of file");
		if ((size_t)n > sizeof(w->rx))
			protocol_error("frame of %zd bytes (max %u)", n, BH_FRAME_MAX);
		handle_frame(w, (size_t)n);
	}
}

/* --- results to the master --- */

/* Sends results until none is left or the socket is full (then tx_len stays > 0). */
static void flush_results(struct worker *w)
{
	for (;;) {
		struct bh_batch b;

		if (w->tx_len > 0) {
			if (send(WORKER_FD, w->tx, w->tx_len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
					return;
				master_gone(strerror(errno));
			}
			w->tx_len = 0;
		}
		if (w->results_pos == w->results_n) {
			w->results_n = pool_take_results(w->pool, &w->results);
			w->results_pos = 0;
			if (w->results_n == 0)
				return;
		}
		bh_batch_init(&b, w->tx, sizeof(w->tx), BH_FRAME_DONE);
		while (w->results_pos < w->results_n) {
			const struct pool_result *r = &w->results[w->results_pos];

			if (!bh_batch_add_done(&b, r->job_id, (enum bh_outcome)r->outcome,
					       r->status, r->run_usec))
				break;
			w->results_pos++;
		}
		w->tx_len = bh_batch_finish(&b);
	}
}

static bool all_sent(struct worker *w)
{
	return w->tx_len == 0 && w->results_pos == w->results_n;
}

static void worker_loop(struct worker *w)
{
	for (;;) {
		struct pollfd pfd[4] = {
			{ .fd = WORKER_FD, .events = POLLIN | (w->tx_len > 0 ? POLLOUT : 0) },
			{ .fd = pool_eventfd(w->pool), .events = POLLIN },
			{ .fd = pool_timerfd(w->pool), .events = POLLIN },
			{ .fd = exec_runner_watch_fd(), .events = POLLIN }, /* -1: none, ignored */
		};
		unsigned pass;

		if (poll(pfd, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("poll: %s", strerror(errno));
			_exit(WORKER_EXIT_MASTER_GONE);
		}
		pass = crash_flush_pass_begin();
		if ((pfd[1].revents | pfd[2].revents) & POLLIN)
			pool_eventfd_clear(w->pool);
		if (pfd[3].revents & POLLIN) {
			exec_runner_watch_clear();
			pool_check_runners(w->pool); /* a runner died: its thread reaps it */
		}
		if (pfd[0].revents & POLLIN)
			read_frames(w);
		else if (pfd[0].revents & (POLLHUP | POLLERR))
			master_gone("hangup");
		flush_results(w);
		if (all_sent(w))
			crash_flush_pass_done(pass); /* a crashing job thread may be waiting for it */

		/* Stopped threads have pushed their last results: one more flush takes them. */
		if (w->stopping && pool_stopped(w->pool)) {
			flush_results(w);
			if (all_sent(w))
				return;
		}
	}
}

static void worker_free(struct worker *w)
{
	pool_free(w->pool); /* no job thread left to start a command */
	spawner_stop();
	for (uint32_t i = 0; i < w->specs.cap; i++)
		if (w->specs.e[i].id != 0)
			job_spec_free((struct job_spec *)(uintptr_t)w->specs.e[i].value);
	idmap_clear(&w->specs);
	for (size_t i = 0; w->inputs && i < INPUTS_SLOTS; i++)
		free(w->inputs[i].input);
	free(w->inputs);
}

int worker_main(int argc, char **argv)
{
	static char program[96];
	struct worker *w = &worker;
	int r;

	/* First, so that a master dying from here on takes us with it. */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	(void)sched_slice_set(SCHED_SLICE_SUPERVISOR_NS); /* its job threads take the default */
	log_set_program("bulkhead-worker");
	if (worker_parse_args(argc, argv, &w->o) < 0) {
		worker_usage(stderr);
		return WORKER_EXIT_USAGE;
	}
	snprintf(program, sizeof(program), "bulkhead-worker[%s/%u]", w->o.pool, w->o.index);
	log_set_program(program);
	if (getppid() != w->o.master_pid) {
		log_error("parent is %d, not the master %d: the master is gone", (int)getppid(),
			  (int)w->o.master_pid);
		return WORKER_EXIT_MASTER_GONE;
	}
	if (close_range(WORKER_FD + 1, ~0U, 0) < 0)
		log_warning("close_range: %s", strerror(errno));
	r = check_master_socket();
	if (r < 0) {
		log_error("fd %d is not the master's SOCK_SEQPACKET socket: %s", WORKER_FD,
			  strerror(-r));
		return WORKER_EXIT_USAGE;
	}
	r = privileges_drop(w->o.uid, w->o.gid, w->o.master_pid);
	if (r < 0)
		return r == -ESRCH ? WORKER_EXIT_MASTER_GONE : WORKER_EXIT_START;
	job_context_set_socket(WORKER_FD);
	job_context_set_log(w->o.pool, w->o.index);
	r = crash_core_dumps(w->o.core_dumps); /* RLIMIT_CORE: the spawner's too */
	if (r < 0)
		log_warning("cannot %s core dumps: %s", w->o.core_dumps ? "allow" : "turn off",
			    strerror(-r));
	r = reset_signals();
	if (r == 0 && w->o.spawner) {
		int e;

		spawner_start(); /* single-threaded, no handler yet: spawner.c */
		e = exec_runner_watch_start(); /* after: the spawner holds none of it */
		if (e < 0)
			log_warning("cannot watch the commands' runners (%s): one killed while "
				    "idle is reaped at its thread's next command",
				    strerror(-e));
	}
	if (r == 0)
		r = crash_install();
	if (r < 0) {
		log_error("cannot install signal handlers: %s", strerror(-r));
		return WORKER_EXIT_START;
	}
	r = pool_new(&(struct pool_options){ .name = w->o.pool,
					     .index = w->o.index,
					     .threads = w->o.threads,
					     .warm_malloc = w->o.memory_max > 0 },
		     &w->pool);
	if (r < 0) {
		log_error("cannot start %u job threads: %s", w->o.threads, strerror(-r));
		return WORKER_EXIT_START;
	}
	crash_flush_setup(pool_eventfd(w->pool), pool_results_held(w->pool)); /* a crash sends the results held first */
	if (w->o.memory_max > 0) {
		r = set_memory_limit(w->o.memory_max);
		if (r < 0) {
			log_error("cannot set RLIMIT_AS: %s", strerror(-r));
			_exit(WORKER_EXIT_START);
		}
	}
	send_hello(w);

	worker_loop(w);

	worker_free(w);
	return WORKER_EXIT_STOPPED;
}
