/* SPDX-License-Identifier: MIT */
/*
 * The list of builtin jobs, declared once. The config validator uses it to check
 * `run = builtin:NAME` and each `args` key (with "did you mean"); the worker uses it to
 * bind each name to its function. X(IDENT, "name", "argspec"):
 * argspec is "key:type,key:type" with type one of
 *   uint   decimal unsigned integer (64 bit)
 *   size   a size, "64K" "1M" (see parse_size)
 *   bool   yes/no
 *   prob   a probability 0..1
 * Every key is optional; the worker applies the defaults documented in bulkhead.conf(5).
 *
 * Every builtin also takes the common arguments of BH_BUILTIN_COMMON_ARGS:
 *   crash  (prob) the job raises a real SIGSEGV before its own work if
 *          bh_crash_hit(its job id, crash): the same job ids crash on every attempt and in
 *          every mode of `bulkhead experiment` (a poison input, not bad luck).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BH_BUILTIN_COMMON_ARGS "crash:prob"
#define BH_CRASH_ARG "crash"

#define BH_BUILTINS(X)                                                                             \
	X(NOOP, "noop", "")                                                                        \
	X(SPIN, "spin", "us:uint")                                                                 \
	X(SLEEP, "sleep", "ms:uint")                                                               \
	X(BALANCE, "balance", "iterations:uint,amount:uint,lock:bool")                             \
	X(TLS, "tls", "rounds:uint")                                                               \
	X(FAIL, "fail", "probability:prob")                                                        \
	X(SEGV, "segv", "probability:prob")                                                        \
	X(ABORT, "abort", "probability:prob")                                                      \
	X(FPE, "fpe", "probability:prob")                                                          \
	X(ILL, "ill", "probability:prob")                                                          \
	X(BUS, "bus", "probability:prob")                                                          \
	X(STACK_OVERFLOW, "stack-overflow", "")                                                    \
	X(EXIT, "exit", "code:uint")                                                               \
	X(HANG, "hang", "ms:uint")                                                                 \
	X(DEADLOCK, "deadlock", "")                                                                \
	X(LEAK, "leak", "step:size")

enum bh_builtin {
#define BH_BUILTIN_ENUM(ident, name, spec) BH_BUILTIN_##ident,
	BH_BUILTINS(BH_BUILTIN_ENUM)
#undef BH_BUILTIN_ENUM
		_BH_BUILTIN_MAX,
};

struct bh_builtin_info {
	const char *name;
	const char *argspec;
};

/* Indexed by enum bh_builtin. */
extern const struct bh_builtin_info bh_builtin_table[_BH_BUILTIN_MAX];

/* enum bh_builtin for NAME, or -ENOENT. */
int bh_builtin_lookup(const char *name);

/*
 * Checks an `args` string ("k=v k=v", whitespace separated) against builtin b's argspec.
 * Returns 0, or -EINVAL with a message in err ("unknown argument 'iteratons' for builtin
 * balance (did you mean 'iterations'?)", "argument lock=maybe: expected yes or no").
 */
int bh_builtin_check_args(enum bh_builtin b, const char *args, char *err, size_t errlen);

/* splitmix64's output function applied to x + its increment: a well-mixed 64-bit hash. */
static inline uint64_t bh_splitmix64(uint64_t x)
{
	uint64_t z = x + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * The `crash=P` decision for job id: true if splitmix64(id) / 2^64 < p (53 bits of it).
 * Deterministic, so a retried crasher crashes again; p <= 0 never, p >= 1 always.
 */
static inline bool bh_crash_hit(uint64_t job_id, double p)
{
	return (double)(bh_splitmix64(job_id) >> 11) * 0x1.0p-53 < p;
}
