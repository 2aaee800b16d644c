/* SPDX-License-Identifier: MIT */
/*
 * The list of builtin jobs and of their arguments, declared once. The config validator and
 * the control server use it to check `run = builtin:NAME` and each `args` key (with "did you
 * mean") and value; the worker binds each name to its function (children/builtin.c) and
 * takes each absent argument's default from here; the man page (man/gen-conf-man.c) prints
 * the names, types, defaults and ranges from here.
 *
 * BH_BUILTINS: X(IDENT, "name").
 *
 * BH_BUILTIN_ARGS: A(BUILTIN, KEY, "key", TYPE, DEFAULT, MIN, MAX), a builtin's arguments in
 * the order they are documented, every one optional. TYPE is one of
 *   UINT   decimal unsigned integer (64 bit), MIN..MAX
 *   SIZE   a size, "64K" "1M" (see parse_size)
 *   BOOL   yes/no (DEFAULT 0 or 1)
 *   PROB   a probability 0..1 (DEFAULT a fraction)
 * DEFAULT is what the worker uses when the key is absent (UINT64_MAX for a time: forever).
 * MIN and MAX matter for UINT only (0 and UINT64_MAX for the others).
 *
 * BH_BUILTIN_COMMON_ARGS: the same, for the arguments every builtin also takes:
 *   crash  (prob) the job raises a real SIGSEGV before its own work if
 *          bh_crash_hit(its job id, crash): the same job ids crash on every attempt and in
 *          every mode of `bulkhead experiment` (a poison input, not bad luck).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BH_CRASH_ARG "crash"

#define BH_BUILTINS(X)                      \
	X(NOOP, "noop")                     \
	X(SPIN, "spin")                     \
	X(SLEEP, "sleep")                   \
	X(BALANCE, "balance")               \
	X(TLS, "tls")                       \
	X(FAIL, "fail")                     \
	X(SEGV, "segv")                     \
	X(ABORT, "abort")                   \
	X(FPE, "fpe")                       \
	X(ILL, "ill")                       \
	X(BUS, "bus")                       \
	X(STACK_OVERFLOW, "stack-overflow") \
	X(EXIT, "exit")                     \
	X(HANG, "hang")                     \
	X(DEADLOCK, "deadlock")             \
	X(LEAK, "leak")

#define BH_BUILTIN_ARGS(A)                                              \
	A(SPIN, US, "us", UINT, 100, 0, UINT64_MAX)                     \
	A(SLEEP, MS, "ms", UINT, 10, 0, UINT64_MAX)                     \
	A(BALANCE, ITERATIONS, "iterations", UINT, 1000, 0, UINT64_MAX) \
	A(BALANCE, AMOUNT, "amount", UINT, 1, 0, UINT64_MAX)            \
	A(BALANCE, LOCK, "lock", BOOL, 1, 0, 0)                         \
	A(TLS, ROUNDS, "rounds", UINT, 1000, 0, UINT64_MAX)             \
	A(FAIL, PROBABILITY, "probability", PROB, 1.0, 0, 0)            \
	A(SEGV, PROBABILITY, "probability", PROB, 1.0, 0, 0)            \
	A(ABORT, PROBABILITY, "probability", PROB, 1.0, 0, 0)           \
	A(FPE, PROBABILITY, "probability", PROB, 1.0, 0, 0)             \
	A(ILL, PROBABILITY, "probability", PROB, 1.0, 0, 0)             \
	A(BUS, PROBABILITY, "probability", PROB, 1.0, 0, 0)             \
	A(EXIT, CODE, "code", UINT, 1, 0, 255)                          \
	A(HANG, MS, "ms", UINT, UINT64_MAX, 0, UINT64_MAX)              \
	A(LEAK, STEP, "step", SIZE, 1u << 20, 0, 0)

#define BH_BUILTIN_COMMON_ARGS(A) A(ALL, CRASH, BH_CRASH_ARG, PROB, 0.0, 0, 0)

enum bh_builtin {
#define BH_BUILTIN_ENUM(ident, name) BH_BUILTIN_##ident,
	BH_BUILTINS(BH_BUILTIN_ENUM)
#undef BH_BUILTIN_ENUM
		_BH_BUILTIN_MAX,
};

#define BH_BUILTIN_ALL _BH_BUILTIN_MAX /* the builtin of the common arguments: every one */

struct bh_builtin_info {
	const char *name;
};

/* Indexed by enum bh_builtin. */
extern const struct bh_builtin_info bh_builtin_table[_BH_BUILTIN_MAX];

enum bh_arg_type {
	BH_ARG_TYPE_UINT,
	BH_ARG_TYPE_SIZE,
	BH_ARG_TYPE_BOOL,
	BH_ARG_TYPE_PROB,
};

/* Every argument of every builtin, then the common ones: BH_ARG_SPIN_US, BH_ARG_ALL_CRASH. */
enum bh_builtin_arg_id {
#define BH_BUILTIN_ARG_ENUM(b, k, key, type, def, min, max) BH_ARG_##b##_##k,
	BH_BUILTIN_ARGS(BH_BUILTIN_ARG_ENUM) BH_BUILTIN_COMMON_ARGS(BH_BUILTIN_ARG_ENUM)
#undef BH_BUILTIN_ARG_ENUM
		_BH_ARG_MAX,
};

struct bh_builtin_arg {
	enum bh_builtin builtin; /* BH_BUILTIN_ALL for a common argument */
	const char *key;
	enum bh_arg_type type;
	union {
		uint64_t u; /* UINT, SIZE; BOOL 0 or 1 */
		double p; /* PROB */
	} def;
	uint64_t min, max; /* UINT: the values accepted */
};

/* Indexed by enum bh_builtin_arg_id. */
extern const struct bh_builtin_arg bh_builtin_args[_BH_ARG_MAX];

/* enum bh_builtin for NAME, or -ENOENT. */
int bh_builtin_lookup(const char *name);

/*
 * The argument `key` of builtin b (its own, else a common one), or NULL. For the arguments
 * of one builtin in order: bh_builtin_args[] entries whose builtin is b.
 */
const struct bh_builtin_arg *bh_builtin_arg(enum bh_builtin b, const char *key);

/* The name of a type as the docs and messages write it: "uint", "size", "bool", "prob". */
const char *bh_arg_type_name(enum bh_arg_type t);

/*
 * Checks an `args` string ("k=v k=v", whitespace separated) against builtin b's arguments.
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
