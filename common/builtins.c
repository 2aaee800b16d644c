/* SPDX-License-Identifier: MIT */
/*
 * The builtin job table and the table of their arguments, expanded from the X-macros in
 * builtins.h, and the checks the config validator runs on `run = builtin:NAME` and on `args`.
 *
 * bh_builtin_check_args() splits `args` on whitespace into key=value words and checks each
 * against the builtin's arguments: the key must be known (else a "did you mean"), given
 * once, and its value must parse as its type, within the argument's range for uint. The
 * common arguments (BH_BUILTIN_COMMON_ARGS, `crash`) are checked after the builtin's own,
 * for every builtin.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "strutil.h"
#include "units.h"

#define BH_ARGS_MAX 16 /* arguments of one builtin, the common ones included */
#define BH_ARG_NAME_MAX 32 /* an unknown key longer than this gets no "did you mean" */

const struct bh_builtin_info bh_builtin_table[_BH_BUILTIN_MAX] = {
#define BH_BUILTIN_INFO(ident, n) [BH_BUILTIN_##ident] = { .name = n },
	BH_BUILTINS(BH_BUILTIN_INFO)
#undef BH_BUILTIN_INFO
};

/* The member of bh_builtin_arg.def that holds a default of each type. */
#define BH_ARG_FIELD_UINT u
#define BH_ARG_FIELD_SIZE u
#define BH_ARG_FIELD_BOOL u
#define BH_ARG_FIELD_PROB p

const struct bh_builtin_arg bh_builtin_args[_BH_ARG_MAX] = {
#define BH_BUILTIN_ARG_INFO(b, k, name, t, d, lo, hi)       \
	[BH_ARG_##b##_##k] = { .builtin = BH_BUILTIN_##b,   \
			       .key = name,                 \
			       .type = BH_ARG_TYPE_##t,     \
			       .def.BH_ARG_FIELD_##t = (d), \
			       .min = (lo),                 \
			       .max = (hi) },
	BH_BUILTIN_ARGS(BH_BUILTIN_ARG_INFO) BH_BUILTIN_COMMON_ARGS(BH_BUILTIN_ARG_INFO)
#undef BH_BUILTIN_ARG_INFO
};

/* Each default is a value its argument accepts (sizes and probabilities: parse-checked). */
#define BH_ARG_CHECK_UINT(k, d, lo, hi) \
	_Static_assert((uint64_t)(d) - (lo) <= (uint64_t)(hi) - (lo), k ": default out of range");
#define BH_ARG_CHECK_BOOL(k, d, lo, hi) _Static_assert((d) == 0 || (d) == 1, k ": not 0 or 1");
#define BH_ARG_CHECK_SIZE(k, d, lo, hi)
#define BH_ARG_CHECK_PROB(k, d, lo, hi)
#define BH_BUILTIN_ARG_CHECK(b, k, name, t, d, lo, hi) BH_ARG_CHECK_##t(name, d, lo, hi)
BH_BUILTIN_ARGS(BH_BUILTIN_ARG_CHECK)
BH_BUILTIN_COMMON_ARGS(BH_BUILTIN_ARG_CHECK)
#undef BH_BUILTIN_ARG_CHECK

/* The arguments one builtin takes: its own, then the common ones (arg_list()). */
struct arg_list {
	unsigned n;
	const struct bh_builtin_arg *arg[BH_ARGS_MAX];
	const char *keys[BH_ARGS_MAX + 1]; /* NULL-terminated, for str_did_you_mean() */
};

int bh_builtin_lookup(const char *name)
{
	if (!name)
		return -ENOENT;
	for (int i = 0; i < _BH_BUILTIN_MAX; i++)
		if (strcmp(bh_builtin_table[i].name, name) == 0)
			return i;
	return -ENOENT;
}

const struct bh_builtin_arg *bh_builtin_arg(enum bh_builtin b, const char *key)
{
	const struct bh_builtin_arg *common = NULL;

	for (int i = 0; i < _BH_ARG_MAX; i++) {
		if (strcmp(bh_builtin_args[i].key, key) != 0)
			continue;
		if (bh_builtin_args[i].builtin == b)
			return &bh_builtin_args[i];
		if (bh_builtin_args[i].builtin == BH_BUILTIN_ALL && !common)
			common = &bh_builtin_args[i];
	}
	return common;
}

const char *bh_arg_type_name(enum bh_arg_type t)
{
	switch (t) {
	case BH_ARG_TYPE_UINT:
		return "uint";
	case BH_ARG_TYPE_SIZE:
		return "size";
	case BH_ARG_TYPE_BOOL:
		return "bool";
	case BH_ARG_TYPE_PROB:
		return "prob";
	}
	return "?";
}

/* Builtin b's own arguments, then the common ones; returns how many are its own. */
static unsigned arg_list(enum bh_builtin b, struct arg_list *l)
{
	unsigned own;

	l->n = 0;
	for (int i = 0; i < _BH_ARG_MAX && l->n < BH_ARGS_MAX; i++)
		if (bh_builtin_args[i].builtin == b)
			l->arg[l->n++] = &bh_builtin_args[i];
	own = l->n;
	for (int i = 0; i < _BH_ARG_MAX && l->n < BH_ARGS_MAX; i++)
		if (bh_builtin_args[i].builtin == BH_BUILTIN_ALL)
			l->arg[l->n++] = &bh_builtin_args[i];
	for (unsigned i = 0; i < l->n; i++)
		l->keys[i] = l->arg[i]->key;
	l->keys[l->n] = NULL;
	return own;
}

static int check_value(const struct bh_builtin_arg *a, const char *value, char *err, size_t errlen)
{
	const char *key = a->key;
	uint64_t u;
	double p;

	switch (a->type) {
	case BH_ARG_TYPE_UINT:
		if (parse_uint(value, a->min, a->max, &u) >= 0)
			return 0;
		if (a->min == 0 && a->max == UINT64_MAX)
			str_printf(err, errlen, "argument %s=%s: expected an unsigned integer", key,
				   value);
		else
			str_printf(err, errlen, "argument %s=%s: expected an integer %llu..%llu",
				   key, value, (unsigned long long)a->min,
				   (unsigned long long)a->max);
		return -EINVAL;
	case BH_ARG_TYPE_SIZE:
		if (parse_size(value, &u) >= 0)
			return 0;
		str_printf(err, errlen, "argument %s=%s: expected a size like 64K or 1M", key,
			   value);
		return -EINVAL;
	case BH_ARG_TYPE_BOOL:
		if (parse_bool(value) >= 0)
			return 0;
		str_printf(err, errlen, "argument %s=%s: expected yes or no", key, value);
		return -EINVAL;
	case BH_ARG_TYPE_PROB:
		if (parse_probability(value, &p) >= 0)
			return 0;
		str_printf(err, errlen, "argument %s=%s: expected a probability 0..1", key, value);
		return -EINVAL;
	}
	str_printf(err, errlen, "argument %s: unknown type", key);
	return -EINVAL;
}

int bh_builtin_check_args(enum bh_builtin b, const char *args, char *err, size_t errlen)
{
	const char *name, *p = args ? args : "";
	bool seen[BH_ARGS_MAX] = { false };
	struct arg_list spec;
	unsigned own;

	if (errlen > 0)
		err[0] = '\0';
	if ((unsigned)b >= _BH_BUILTIN_MAX) {
		str_printf(err, errlen, "no such builtin");
		return -EINVAL;
	}
	name = bh_builtin_table[b].name;
	own = arg_list(b, &spec);

	for (;;) {
		char key[BH_ARG_NAME_MAX + 1], *value;
		const char *word, *eq, *hint;
		size_t len, klen;
		unsigned k;
		int r;

		p += strspn(p, " \t\r\n");
		if (*p == '\0')
			return 0;
		word = p;
		len = strcspn(p, " \t\r\n");
		p += len;

		eq = memchr(word, '=', len);
		if (!eq || eq == word) {
			str_printf(err, errlen, "argument '%.*s': expected key=value", (int)len,
				   word);
			return -EINVAL;
		}
		klen = (size_t)(eq - word);
		for (k = 0; k < spec.n; k++)
			if (strlen(spec.keys[k]) == klen && strncmp(spec.keys[k], word, klen) == 0)
				break;
		if (k == spec.n) {
			str_printf(key, sizeof(key), "%.*s", (int)klen, word);
			hint = klen <= BH_ARG_NAME_MAX ? str_did_you_mean(key, spec.keys) : NULL;
			if (!hint && own == 0)
				str_printf(
					err, errlen,
					"unknown argument '%.*s' for builtin %s (it takes none but "
					"the common '%s')",
					(int)klen, word, name, BH_CRASH_ARG);
			else if (hint)
				str_printf(err, errlen,
					   "unknown argument '%.*s' for builtin %s (did you mean "
					   "'%s'?)",
					   (int)klen, word, name, hint);
			else
				str_printf(err, errlen, "unknown argument '%.*s' for builtin %s",
					   (int)klen, word, name);
			return -EINVAL;
		}
		if (seen[k]) {
			str_printf(err, errlen, "argument '%s' given twice", spec.keys[k]);
			return -EINVAL;
		}
		seen[k] = true;
		value = strndup(eq + 1, len - klen - 1);
		if (!value) {
			str_printf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		r = check_value(spec.arg[k], value, err, errlen);
		free(value);
		if (r < 0)
			return r;
	}
}
