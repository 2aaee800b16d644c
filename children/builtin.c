/* SPDX-License-Identifier: MIT */
/*
 * The builtin jobs (common/builtins.h lists them; this file gives each its behaviour), and
 * the job kind builtin:NAME (builtin_kind, at the end: the name and args are checked once
 * per spec, crash=P parsed once). They use the public job API (include/bulkhead/job.h) like
 * a plugin would, plus worker internals from below this file only: the job context
 * (job_context_current() for the `tls` check, the cancel flag) and crash_set_oom() for `leak`.
 *
 * Arguments are read with bulkhead_job_arg() and parsed with the common/units.h parsers on
 * each run (cheap: a short scan), with the default and range common/builtins.h declares for
 * them (BH_BUILTIN_ARGS, the one list the config check and the man page read too); the spec
 * was checked against that list when it was defined, so a parse error here cannot happen
 * unless this file reads an argument as another type: the job fails with status 2.
 *
 * The fault builtins raise the real fault from the job thread. They are compiled without
 * sanitizer instrumentation (NO_SANITIZE) so that an ASan/UBSan build still gets the real
 * signal instead of a sanitizer report. Randomness (`probability`) comes from a per-thread
 * PRNG seeded once per thread with getrandom(). The common argument crash=P is not random:
 * crash_maybe() faults for the job ids bh_crash_hit() picks, so a crasher crashes on every
 * attempt and in every mode of `bulkhead experiment`.
 *
 * balance: one `volatile unsigned long` balance per worker, shared by all balance jobs on all
 * threads (unsigned so that a lost update under lock=no wraps instead of being undefined).
 * Each job adds and subtracts `amount`, `iterations` times, each step under the named lock
 * "balance" (lock=yes) or as a bare read-modify-write (lock=no, which loses updates when two
 * threads interleave). A job cannot check "balance is 0" while other balance jobs are
 * half-way, so a separate internal mutex counts the balance jobs in progress: the job that
 * brings that count to 0 is the one that checks; if the balance is not 0 it fails (status 1)
 * and resets it to 0 so the next round starts clean. Jobs that end while others are running
 * return 0 (the loss, if any, is reported by whichever job ends last).
 *
 * sleep, spin and hang stop early when their job is cancelled (a CANCEL frame: the job's own
 * flag, not the worker's STOP, so a drain lets them finish) and return STATUS_CANCELLED, which
 * the master ends `cancelled`: sleep waits on the flag as a futex (job_context_wait_cancel()), the
 * busy loops read it with every clock read.
 *
 * deadlock: named locks "deadlock-a" and "deadlock-b". A job with an odd id takes a then b,
 * an even one b then a. After its first lock it records that it holds it and waits (condvar)
 * until a job of the other parity holds its own first lock; then it blocks on its second
 * lock forever. Without a twin it waits forever, which is a hang too.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "builtin.h"
#include "common/builtins.h"
#include "common/units.h"
#include "crash.h"
#include "job-kind.h"

#define NO_SANITIZE __attribute__((noinline, no_sanitize("address", "undefined")))

#define STATUS_FAILED 1
#define STATUS_BAD_ARGS JOB_STATUS_BAD_ARGS
#define STATUS_CANCELLED JOB_STATUS_CANCELLED

/* --- arguments: each read with its declared default and range (common/builtins.h) --- */

_Static_assert(ULONG_MAX == UINT64_MAX, "balance's amount is an unsigned long");

static const char *arg_value(struct bulkhead_job *job, enum bh_builtin_arg_id id,
			     enum bh_arg_type type)
{
	assert(bh_builtin_args[id].type == type);
	return bulkhead_job_arg(job, bh_builtin_args[id].key);
}

static int arg_uint(struct bulkhead_job *job, enum bh_builtin_arg_id id, uint64_t *ret)
{
	const struct bh_builtin_arg *a = &bh_builtin_args[id];
	const char *v = arg_value(job, id, BH_ARG_TYPE_UINT);

	if (!v) {
		*ret = a->def.u;
		return 0;
	}
	return parse_uint(v, a->min, a->max, ret);
}

static int arg_size(struct bulkhead_job *job, enum bh_builtin_arg_id id, uint64_t *ret)
{
	const char *v = arg_value(job, id, BH_ARG_TYPE_SIZE);

	if (!v) {
		*ret = bh_builtin_args[id].def.u;
		return 0;
	}
	return parse_size(v, ret);
}

static int arg_bool(struct bulkhead_job *job, enum bh_builtin_arg_id id, bool *ret)
{
	const char *v = arg_value(job, id, BH_ARG_TYPE_BOOL);
	int r;

	if (!v) {
		*ret = bh_builtin_args[id].def.u != 0;
		return 0;
	}
	r = parse_bool(v);
	if (r < 0)
		return r;
	*ret = r;
	return 0;
}

static int arg_probability(struct bulkhead_job *job, enum bh_builtin_arg_id id, double *ret)
{
	const char *v = arg_value(job, id, BH_ARG_TYPE_PROB);

	if (!v) {
		*ret = bh_builtin_args[id].def.p;
		return 0;
	}
	return parse_probability(v, ret);
}

static uint64_t job_id_number(struct bulkhead_job *job)
{
	return strtoull(bulkhead_job_id(job), NULL, 10);
}

/* --- randomness: splitmix64, one state per thread --- */

static __thread uint64_t rng_state;
static __thread bool rng_seeded;

static uint64_t rng_next(void)
{
	uint64_t z;

	if (!rng_seeded) {
		if (getrandom(&rng_state, sizeof(rng_state), GRND_NONBLOCK) !=
		    (ssize_t)sizeof(rng_state))
			rng_state = now_usec() ^ ((uint64_t)gettid() << 32);
		rng_seeded = true;
	}
	z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static bool chance(double p)
{
	if (p >= 1.0)
		return true;
	if (p <= 0.0)
		return false;
	return (double)(rng_next() >> 11) * 0x1.0p-53 < p;
}

/* 1: fire the fault, 0: this run is lucky, <0: bad argument. id: the builtin's probability. */
static int roll(struct bulkhead_job *job, enum bh_builtin_arg_id id)
{
	double p;

	if (arg_probability(job, id, &p) < 0)
		return -EINVAL;
	return chance(p) ? 1 : 0;
}

/* --- time --- */

static usec_t deadline_after(uint64_t amount, usec_t unit)
{
	usec_t now = now_usec();

	if (amount == UINT64_MAX || amount > (USEC_INFINITY - now) / unit)
		return USEC_INFINITY;
	return now + amount * unit;
}

/* Burns CPU until deadline, or until the job is cancelled (true then). */
static bool burn_until(struct bulkhead_job *job, usec_t deadline)
{
	while (now_usec() < deadline)
		if (job_context_cancel_requested(job))
			return true;
	return false;
}

/* --- the builtins --- */

static int builtin_noop(struct bulkhead_job *job)
{
	return 0;
}

static int builtin_spin(struct bulkhead_job *job)
{
	uint64_t us;

	if (arg_uint(job, BH_ARG_SPIN_US, &us) < 0)
		return STATUS_BAD_ARGS;
	return burn_until(job, deadline_after(us, 1)) ? STATUS_CANCELLED : 0;
}

static int builtin_sleep(struct bulkhead_job *job)
{
	uint64_t ms;

	if (arg_uint(job, BH_ARG_SLEEP_MS, &ms) < 0)
		return STATUS_BAD_ARGS;
	if (job_context_wait_cancel(job, deadline_after(ms, USEC_PER_MSEC)))
		return STATUS_CANCELLED;
	return 0;
}

static volatile unsigned long balance;
static unsigned balance_jobs; /* balance jobs in progress, under balance_jobs_lock */
static pthread_mutex_t balance_jobs_lock = PTHREAD_MUTEX_INITIALIZER;

static int balance_step(struct bulkhead_job *job, bool locked, unsigned long delta)
{
	unsigned long v;

	if (locked && bulkhead_lock(job, "balance") < 0)
		return -EINVAL;
	v = balance; /* a read-modify-write in two steps: what the lock protects */
	balance = v + delta;
	if (locked && bulkhead_unlock(job, "balance") < 0)
		return -EINVAL;
	return 0;
}

static int builtin_balance(struct bulkhead_job *job)
{
	uint64_t iterations, amount;
	bool locked, ok = true;
	int status = 0;

	if (arg_uint(job, BH_ARG_BALANCE_ITERATIONS, &iterations) < 0 ||
	    arg_uint(job, BH_ARG_BALANCE_AMOUNT, &amount) < 0 ||
	    arg_bool(job, BH_ARG_BALANCE_LOCK, &locked) < 0)
		return STATUS_BAD_ARGS;

	pthread_mutex_lock(&balance_jobs_lock);
	balance_jobs++;
	pthread_mutex_unlock(&balance_jobs_lock);

	for (uint64_t i = 0; i < iterations && ok; i++)
		ok = balance_step(job, locked, (unsigned long)amount) == 0 &&
		     balance_step(job, locked, -(unsigned long)amount) == 0;

	pthread_mutex_lock(&balance_jobs_lock);
	if (--balance_jobs == 0 && balance != 0) {
		ok = false;
		balance = 0;
	}
	pthread_mutex_unlock(&balance_jobs_lock);
	if (!ok)
		status = STATUS_FAILED;
	return status;
}

static __thread uint64_t tls_token;

static int builtin_tls(struct bulkhead_job *job)
{
	uint64_t rounds, base;

	if (arg_uint(job, BH_ARG_TLS_ROUNDS, &rounds) < 0)
		return STATUS_BAD_ARGS;
	base = job_id_number(job) << 24;
	for (uint64_t r = 0; r < rounds; r++) {
		uint64_t token = base ^ r;

		tls_token = token;
		sched_yield();
		if (tls_token != token || job_context_current() != job)
			return STATUS_FAILED;
	}
	return 0;
}

static int builtin_fail(struct bulkhead_job *job)
{
	int r = roll(job, BH_ARG_FAIL_PROBABILITY);

	if (r < 0)
		return STATUS_BAD_ARGS;
	return r ? STATUS_FAILED : 0;
}

static NO_SANITIZE void fault_segv(void)
{
	volatile uintptr_t addr = 16; /* below mmap_min_addr: never mapped */

	*(volatile int *)addr = 1;
}

static NO_SANITIZE void fault_fpe(void)
{
	volatile int a = 1, b = 0;
	volatile int c;

	c = a / b;
	(void)c;
}

static NO_SANITIZE void fault_ill(void)
{
	__builtin_trap(); /* ud2 on x86 */
}

/* A shared mapping of a memfd that is then truncated to 0: touching it is SIGBUS. */
static NO_SANITIZE void fault_bus(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	volatile char *p;
	int fd;

	fd = memfd_create("bulkhead-bus", MFD_CLOEXEC);
	if (fd < 0)
		return;
	if (ftruncate(fd, (off_t)page) < 0) {
		close(fd);
		return;
	}
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED || ftruncate(fd, 0) < 0) {
		close(fd);
		return;
	}
	close(fd);
	p[0] = 1;
	munmap((void *)p, page);
}

static int fault_builtin(struct bulkhead_job *job, enum bh_builtin_arg_id probability,
			 void (*fault)(void))
{
	int r = roll(job, probability);

	if (r < 0)
		return STATUS_BAD_ARGS;
	if (r == 0)
		return 0;
	fault();
	return STATUS_FAILED; /* the fault did not happen (e.g. no memfd): say so */
}

static int builtin_segv(struct bulkhead_job *job)
{
	return fault_builtin(job, BH_ARG_SEGV_PROBABILITY, fault_segv);
}

static int builtin_abort(struct bulkhead_job *job)
{
	return fault_builtin(job, BH_ARG_ABORT_PROBABILITY, abort);
}

static int builtin_fpe(struct bulkhead_job *job)
{
	return fault_builtin(job, BH_ARG_FPE_PROBABILITY, fault_fpe);
}

static int builtin_ill(struct bulkhead_job *job)
{
	return fault_builtin(job, BH_ARG_ILL_PROBABILITY, fault_ill);
}

static int builtin_bus(struct bulkhead_job *job)
{
	return fault_builtin(job, BH_ARG_BUS_PROBABILITY, fault_bus);
}

static volatile int recursion_stop;

/* Passing the frame down keeps it live, so this can be neither a loop nor a tail call. */
static NO_SANITIZE __attribute__((noclone)) unsigned long recurse(volatile char *up,
								  unsigned long depth)
{
	volatile char frame[256];

	frame[0] = (char)(up ? up[0] + 1 : 0);
	frame[sizeof(frame) - 1] = frame[0];
	if (recursion_stop)
		return depth;
	return recurse(frame, depth + 1) + (unsigned long)frame[sizeof(frame) - 1];
}

static int builtin_stack_overflow(struct bulkhead_job *job)
{
	(void)recurse(NULL, 0);
	return STATUS_FAILED; /* only if recursion_stop was set */
}

static int builtin_exit(struct bulkhead_job *job)
{
	uint64_t code;

	if (arg_uint(job, BH_ARG_EXIT_CODE, &code) < 0)
		return STATUS_BAD_ARGS;
	exit((int)code);
}

static int builtin_hang(struct bulkhead_job *job)
{
	uint64_t ms;

	if (arg_uint(job, BH_ARG_HANG_MS, &ms) < 0)
		return STATUS_BAD_ARGS;
	return burn_until(job, deadline_after(ms, USEC_PER_MSEC)) ? STATUS_CANCELLED : 0;
}

static pthread_mutex_t deadlock_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t deadlock_cond = PTHREAD_COND_INITIALIZER;
static unsigned deadlock_holding[2]; /* jobs holding their first lock, by id parity */

static int builtin_deadlock(struct bulkhead_job *job)
{
	unsigned side = (unsigned)(job_id_number(job) & 1);
	const char *first = side ? "deadlock-a" : "deadlock-b";
	const char *second = side ? "deadlock-b" : "deadlock-a";

	if (bulkhead_lock(job, first) < 0)
		return STATUS_FAILED;
	pthread_mutex_lock(&deadlock_lock);
	deadlock_holding[side]++;
	pthread_cond_broadcast(&deadlock_cond);
	while (deadlock_holding[!side] == 0)
		pthread_cond_wait(&deadlock_cond, &deadlock_lock);
	pthread_mutex_unlock(&deadlock_lock);

	/* The twin holds `second` and waits for `first`, which we hold: this never returns. */
	if (bulkhead_lock(job, second) == 0)
		bulkhead_unlock(job, second);
	bulkhead_unlock(job, first);
	return STATUS_FAILED;
}

static void *volatile leak_head;

static int builtin_leak(struct bulkhead_job *job)
{
	uint64_t step;

	if (arg_size(job, BH_ARG_LEAK_STEP, &step) < 0)
		return STATUS_BAD_ARGS;
	if (step < sizeof(void *))
		step = sizeof(void *);
	if (step > SIZE_MAX)
		step = SIZE_MAX;
	for (;;) {
		void **p = malloc((size_t)step);

		if (!p) {
			crash_set_oom();
			abort();
		}
		memset(p, 0xa5, (size_t)step);
		p[0] = leak_head; /* reachable, so the compiler keeps every allocation */
		leak_head = p;
	}
}

/*
 * The common argument crash=P: raises a real SIGSEGV in the calling job thread if
 * bh_crash_hit(job id, p), else returns at once.
 */
static void crash_maybe(struct bulkhead_job *job, double p)
{
	if (bh_crash_hit(job->id, p))
		fault_segv();
}

static const bulkhead_job_fn builtin_fns[_BH_BUILTIN_MAX] = {
	[BH_BUILTIN_NOOP] = builtin_noop,
	[BH_BUILTIN_SPIN] = builtin_spin,
	[BH_BUILTIN_SLEEP] = builtin_sleep,
	[BH_BUILTIN_BALANCE] = builtin_balance,
	[BH_BUILTIN_TLS] = builtin_tls,
	[BH_BUILTIN_FAIL] = builtin_fail,
	[BH_BUILTIN_SEGV] = builtin_segv,
	[BH_BUILTIN_ABORT] = builtin_abort,
	[BH_BUILTIN_FPE] = builtin_fpe,
	[BH_BUILTIN_ILL] = builtin_ill,
	[BH_BUILTIN_BUS] = builtin_bus,
	[BH_BUILTIN_STACK_OVERFLOW] = builtin_stack_overflow,
	[BH_BUILTIN_EXIT] = builtin_exit,
	[BH_BUILTIN_HANG] = builtin_hang,
	[BH_BUILTIN_DEADLOCK] = builtin_deadlock,
	[BH_BUILTIN_LEAK] = builtin_leak,
};

/* --- the job kind: builtin:NAME --- */

#define BUILTIN_PREFIX "builtin:"

/* The name must be a builtin, and args must fit its arguments (common/builtins.h). */
static int kind_check(struct job_spec *s, const char *run, const char *args,
		      struct job_kind_error *e)
{
	int b = bh_builtin_lookup(run + strlen(BUILTIN_PREFIX));

	if (b < 0) {
		*e = (struct job_kind_error){ .status = JOB_STATUS_NOT_FOUND,
					      .what = "unknown builtin",
					      .detail = run };
		return -ENOENT;
	}
	if (bh_builtin_check_args((enum bh_builtin)b, args, e->buf, sizeof(e->buf)) < 0) {
		e->status = JOB_STATUS_BAD_ARGS;
		e->what = "bad args";
		e->detail = e->buf;
		return -EINVAL;
	}
	s->fn = builtin_fns[b];
	return 0;
}

/* crash=P (checked already): parsed once here, so a job without it pays one comparison. */
static int kind_init(struct job_spec *s, const char *run, struct job_kind_error *e)
{
	const struct bh_builtin_arg *crash = &bh_builtin_args[BH_ARG_ALL_CRASH];
	double p = crash->def.p;

	for (unsigned i = 0; i < s->n_args; i++)
		if (strcmp(s->args[i].key, crash->key) == 0 &&
		    parse_probability(s->args[i].value, &p) < 0)
			p = crash->def.p;
	s->crash = p;
	if (!s->fn) {
		*e = (struct job_kind_error){ .status = JOB_STATUS_NOT_FOUND,
					      .what = "builtin not implemented",
					      .detail = run };
		return -ENOENT;
	}
	return 0;
}

static int kind_run(struct bulkhead_job *job)
{
	const struct job_spec *s = job->spec;

	if (s->crash > 0)
		crash_maybe(job, s->crash);
	return s->fn(job);
}

const struct job_kind builtin_kind = {
	.prefix = BUILTIN_PREFIX,
	.check = kind_check,
	.init = kind_init,
	.run = kind_run,
};

/*
 * bulkhead inject: the fault raised by the worker itself, in the calling (main) thread, so
 * that the crash handler reports it outside any job. Never returns.
 */
void builtin_inject(enum bh_inject_kind kind)
{
	switch (kind) {
	case BH_INJECT_SEGV:
		fault_segv();
		break;
	case BH_INJECT_ABORT:
		abort();
	case BH_INJECT_LEAK:
		for (;;) {
			void **p = malloc(1u << 20);

			if (!p) {
				crash_set_oom();
				abort();
			}
			memset(p, 0xa5, 1u << 20);
			p[0] = leak_head;
			leak_head = p;
		}
	case BH_INJECT_HANG:
		break;
	}
	/* A hang, and the end of every other case should the fault not kill us. */
	for (volatile unsigned long spin = 0;; spin++)
		;
}
