/* SPDX-License-Identifier: MIT */
/*
 * The builtin job table, expanded from the X-macro in builtins.h, and the checks the config
 * validator runs on `run = builtin:NAME` and on `args`.
 *
 * An argspec is "key:type,key:type". bh_builtin_check_args() splits `args` on whitespace
 * into key=value words and checks each against the spec: the key must be known (else a
 * "did you mean"), given once, and its value must parse as its type. A few arguments have
 * a narrower range than their type; they are listed in arg_ranges[] below rather than in
 * the spec, so that the spec format the worker reads stays simple. The common arguments
 * (BH_BUILTIN_COMMON_ARGS, `crash`) are checked after the builtin's own, for every builtin.
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

#define BH_ARGS_MAX 16 /* keys in one argspec */
#define BH_ARG_NAME_MAX 32 /* length of one key in an argspec */

const struct bh_builtin_info bh_builtin_table[_BH_BUILTIN_MAX] = {
#define BH_BUILTIN_INFO(ident, n, spec) [BH_BUILTIN_##ident] = { .name = n, .argspec = spec },
	BH_BUILTINS(BH_BUILTIN_INFO)
#undef BH_BUILTIN_INFO
};

/* Arguments whose valid range is narrower than "uint". */
static const struct {
	enum bh_builtin builtin;
	const char *key;
	uint64_t min, max;
} arg_ranges[] = {
	{ BH_BUILTIN_EXIT, "code", 0, 255 },
};

struct argspec {
	unsigned n;
	char key[BH_ARGS_MAX][BH_ARG_NAME_MAX + 1];
	char type[BH_ARGS_MAX][8];
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

/*
 * Appends "key:type,key:type" to spec (which holds spec->n keys already). The specs are ours,
 * so a bad one is a bug: -EINVAL.
 */
static int argspec_parse(const char *s, struct argspec *spec)
{
	while (*s) {
		size_t klen = strcspn(s, ":,"), tlen;

		if (spec->n >= BH_ARGS_MAX || klen == 0 || klen > BH_ARG_NAME_MAX || s[klen] != ':')
			return -EINVAL;
		memcpy(spec->key[spec->n], s, klen);
		spec->key[spec->n][klen] = '\0';
		s += klen + 1;
		tlen = strcspn(s, ",");
		if (tlen == 0 || tlen >= sizeof(spec->type[0]))
			return -EINVAL;
		memcpy(spec->type[spec->n], s, tlen);
		spec->type[spec->n][tlen] = '\0';
		spec->keys[spec->n] = spec->key[spec->n];
		spec->n++;
		s += tlen;
		if (*s == ',')
			s++;
	}
	spec->keys[spec->n] = NULL;
	return 0;
}

static int check_value(enum bh_builtin b, const char *key, const char *type, const char *value,
		       char *err, size_t errlen)
{
	uint64_t u, min = 0, max = UINT64_MAX;
	double p;

	if (strcmp(type, "uint") == 0) {
		for (size_t i = 0; i < sizeof(arg_ranges) / sizeof(arg_ranges[0]); i++)
			if (arg_ranges[i].builtin == b && strcmp(arg_ranges[i].key, key) == 0) {
				min = arg_ranges[i].min;
				max = arg_ranges[i].max;
			}
		if (parse_uint(value, min, max, &u) >= 0)
			return 0;
		if (min == 0 && max == UINT64_MAX)
			str_printf(err, errlen, "argument %s=%s: expected an unsigned integer", key,
				   value);
		else
			str_printf(err, errlen, "argument %s=%s: expected an integer %llu..%llu",
				   key, value, (unsigned long long)min, (unsigned long long)max);
		return -EINVAL;
	}
	if (strcmp(type, "size") == 0) {
		if (parse_size(value, &u) >= 0)
			return 0;
		str_printf(err, errlen, "argument %s=%s: expected a size like 64K or 1M", key,
			   value);
		return -EINVAL;
	}
	if (strcmp(type, "bool") == 0) {
		if (parse_bool(value) >= 0)
			return 0;
		str_printf(err, errlen, "argument %s=%s: expected yes or no", key, value);
		return -EINVAL;
	}
	if (strcmp(type, "prob") == 0) {
		if (parse_probability(value, &p) >= 0)
			return 0;
		str_printf(err, errlen, "argument %s=%s: expected a probability 0..1", key, value);
		return -EINVAL;
	}
	str_printf(err, errlen, "builtin %s: unknown type '%s' in its argspec",
		   bh_builtin_table[b].name, type);
	return -EINVAL;
}

int bh_builtin_check_args(enum bh_builtin b, const char *args, char *err, size_t errlen)
{
	const char *name, *p = args ? args : "";
	bool seen[BH_ARGS_MAX] = { false };
	struct argspec spec;
	unsigned own;

	if (errlen > 0)
		err[0] = '\0';
	if ((unsigned)b >= _BH_BUILTIN_MAX) {
		str_printf(err, errlen, "no such builtin");
		return -EINVAL;
	}
	name = bh_builtin_table[b].name;
	spec.n = 0;
	if (argspec_parse(bh_builtin_table[b].argspec, &spec) < 0) {
		str_printf(err, errlen, "builtin %s: bad argspec", name);
		return -EINVAL;
	}
	own = spec.n;
	if (argspec_parse(BH_BUILTIN_COMMON_ARGS, &spec) < 0) {
		str_printf(err, errlen, "bad common argspec");
		return -EINVAL;
	}

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
			if (strlen(spec.key[k]) == klen && strncmp(spec.key[k], word, klen) == 0)
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
			str_printf(err, errlen, "argument '%s' given twice", spec.key[k]);
			return -EINVAL;
		}
		seen[k] = true;
		value = strndup(eq + 1, len - klen - 1);
		if (!value) {
			str_printf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		r = check_value(b, spec.key[k], spec.type[k], value, err, errlen);
		free(value);
		if (r < 0)
			return r;
	}
}
