/* SPDX-License-Identifier: MIT */
/*
 * Keys and their values, as keys.h declares them.
 *
 * First, while libinih reads the file (read.c), config_ini_handler() collects each key's raw
 * string in its section (struct raw_value: the value, joined over continuation lines, and
 * the lines it came from). Unknown keys (with "did you mean"), duplicate keys and values
 * too long to print back on one line are reported there.
 *
 * Then config_convert_section() converts every key of a section, generically by its
 * CONFIG_TYPE_*, into the struct that keys.h names (a default when the key was not set),
 * checking the key's range. Whatever needs more than one key or the file system (pools,
 * run, inputs, spool, output) is validate.c's and run-kinds.c's. Errors name the key's line,
 * or the section's line for a default.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/exec-settings.h"
#include "common/strutil.h"
#include "common/units.h"
#include "config/parser.h"

/* ---- the handler: raw values ---- */

static int find_key(enum config_section_kind kind, const char *name)
{
	for (int i = 0; i < _CONFIG_KEY_MAX; i++)
		if (config_keys[i].section == kind && strcmp(config_keys[i].name, name) == 0)
			return i;
	return -ENOENT;
}

/*
 * A value, joined over its continuation lines, may be this long: config_print() writes it
 * on one line, "key = value", which must be no longer than CONFIG_LINE_MAX.
 */
size_t config_value_max(int key)
{
	return CONFIG_LINE_MAX - strlen(config_keys[key].name) - 3;
}

static bool append_value(struct raw_value *v, const char *more)
{
	size_t m = strlen(more);
	char *n;

	n = realloc(v->value, v->len + 1 + m + 1);
	if (!n)
		return false;
	if (v->len > 0)
		n[v->len++] = ' ';
	memcpy(n + v->len, more, m + 1);
	v->len += m;
	v->value = n;
	return true;
}

/* ini_handler: one key line or continuation line, in the section the reader recorded. */
int config_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	char label[CONFIG_NAME_MAX * 2 + 64], shown[CONFIG_SHOW_VALUE_MAX + 8];
	const char *candidates[_CONFIG_KEY_MAX + 1], *hint;
	struct raw_value *v;
	unsigned n = 0;
	int k;

	if (p->substituted) {
		value = p->value;
		if (!p->continuation)
			name = p->key;
	}

	if (p->continuation) {
		if (!p->cur || p->cur_ignored || p->last_key < 0)
			return 1;
		v = &p->cur->values[p->last_key];
		if (v->len + 1 + strlen(value) > config_value_max(p->last_key)) {
			config_error(
				p, p->lineno,
				"%s %s: value too long with this continuation line (at most %zu "
				"bytes, to fit on one line)",
				config_section_label(p->cur, label, sizeof(label)),
				config_keys[p->last_key].name, config_value_max(p->last_key));
			p->last_key = -1;
			return 1;
		}
		if (!append_value(v, value))
			p->oom = true;
		v->last_line = p->lineno;
		if (p->semicolon && !v->semicolon_line)
			v->semicolon_line = p->lineno;
		return 1;
	}

	p->last_key = -1;
	if (!p->cur) {
		if (!p->seen_header)
			config_error(p, p->lineno,
				     "key '%s' outside any section (put it under [supervisor], "
				     "[pool NAME] or [job NAME])",
				     name);
		return 1;
	}
	if (p->cur_ignored)
		return 1;

	config_section_label(p->cur, label, sizeof(label));
	k = find_key(p->cur->kind, name);
	if (k < 0) {
		for (int i = 0; i < _CONFIG_KEY_MAX; i++)
			if (config_keys[i].section == p->cur->kind)
				candidates[n++] = config_keys[i].name;
		candidates[n] = NULL;
		hint = str_did_you_mean(name, candidates);
		if (hint) {
			config_error(p, p->lineno, "%s unknown key '%s' (did you mean '%s'?)",
				     label, config_show_value(name, shown, sizeof(shown)), hint);
			return 1;
		}
		for (int i = 0; i < _CONFIG_KEY_MAX; i++)
			if (strcmp(config_keys[i].name, name) == 0) {
				config_error(p, p->lineno,
					     "%s unknown key '%s' (it belongs in a [%s%s] section)",
					     label, name,
					     config_section_names[config_keys[i].section],
					     config_keys[i].section == CONFIG_SECTION_SUPERVISOR
						     ? ""
						     : " NAME");
				return 1;
			}
		config_error(p, p->lineno, "%s unknown key '%s'", label,
			     config_show_value(name, shown, sizeof(shown)));
		return 1;
	}

	v = &p->cur->values[k];
	if (v->value) {
		config_error(p, p->lineno, "%s duplicate key '%s' (first set on line %u)", label,
			     name, v->line);
		return 1;
	}
	if (strlen(value) > config_value_max(k)) {
		config_error(p, p->lineno,
			     "%s %s: value too long (at most %zu bytes, to fit on one line as "
			     "'%s = VALUE')",
			     label, name, config_value_max(k), name);
		return 1;
	}
	v->value = strdup(value);
	if (!v->value) {
		p->oom = true;
		return 1;
	}
	v->len = strlen(value);
	v->line = p->lineno;
	v->semicolon_line = p->semicolon ? p->lineno : 0;
	p->last_key = k;
	(void)section;
	return 1;
}

/* ---- conversion by type ---- */

static void *field_of(void *base, const struct config_key *k)
{
	return (char *)base + k->offset;
}

/* "debug, info, notice" */
static const char *choices_list(const struct config_choice *c, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (; c->name; c++) {
		str_printf(buf + n, size - n, "%s%s", n ? ", " : "", c->name);
		n = strlen(buf);
	}
	return buf;
}

/* "0..1h", "16M..infinity" */
static const char *duration_range_text(uint64_t min, uint64_t max, char *buf, size_t size)
{
	char a[FORMAT_DURATION_MAX], b[FORMAT_DURATION_MAX];

	if (min == 1 && max == USEC_INFINITY)
		return str_printf(buf, size, "> 0 or infinity");
	return str_printf(buf, size, "%s..%s", format_duration(a, sizeof(a), min),
			  format_duration(b, sizeof(b), max));
}

/*
 * Converts one value of key k into its field in base. Returns 0, or -EINVAL with a message
 * ("expected an integer 1..256") in err.
 */
static int convert(const struct config_key *k, const char *value, void *base, char *err,
		   size_t errlen)
{
	char a[FORMAT_SIZE_MAX], range[96], list[128];
	uint64_t u;
	usec_t lo, hi;
	struct rate rate;
	char *copy;
	int r;

	switch (k->type) {
	case CONFIG_TYPE_STRING:
	case CONFIG_TYPE_PATH:
	case CONFIG_TYPE_RUN:
	case CONFIG_TYPE_ARGS:
	case CONFIG_TYPE_GLOB:
	case CONFIG_TYPE_DIR:
	case CONFIG_TYPE_STORE:
	case CONFIG_TYPE_ENVIRONMENT:
		for (const char *c = value; *c; c++)
			if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f) {
				str_printf(err, errlen, "control characters are not allowed");
				return -EINVAL;
			}
		if (k->type == CONFIG_TYPE_STRING &&
		    (strlen(value) < k->min || strlen(value) > k->max)) {
			str_printf(err, errlen, "expected %llu..%llu characters",
				   (unsigned long long)k->min, (unsigned long long)k->max);
			return -EINVAL;
		}
		if (k->type == CONFIG_TYPE_STRING && strpbrk(value, " \t")) {
			str_printf(err, errlen, "no whitespace allowed");
			return -EINVAL;
		}
		if (k->type == CONFIG_TYPE_PATH && *value &&
		    (value[0] != '/' || strlen(value) > k->max)) {
			str_printf(err, errlen,
				   "expected an absolute path of at most %llu bytes (or nothing)",
				   (unsigned long long)k->max);
			return -EINVAL;
		}
		if (k->type == CONFIG_TYPE_STORE && strncmp(value, "postgresql:", 11) == 0 &&
		    !value[11]) {
			str_printf(err, errlen,
				   "expected postgresql:CONNINFO (a libpq connection string or "
				   "URI, e.g. postgresql:host=/run/postgresql dbname=bulkhead)");
			return -EINVAL;
		}
		if (k->type == CONFIG_TYPE_STORE && *value && strcmp(value, "memory") != 0 &&
		    strncmp(value, "postgresql:", 11) != 0 &&
		    (strncmp(value, "sqlite:/", 8) != 0 || strlen(value + 7) > k->max)) {
			str_printf(err, errlen,
				   "expected sqlite:/ABSOLUTE/PATH (at most %llu bytes), "
				   "postgresql:CONNINFO or memory",
				   (unsigned long long)k->max);
			return -EINVAL;
		}
		if (k->type == CONFIG_TYPE_ENVIRONMENT) {
			char **env;
			size_t n;

			r = exec_env_split(value, &env, &n, err, errlen);
			if (r < 0)
				return r;
			free(env);
		}
		copy = strdup(value);
		if (!copy)
			return -ENOMEM;
		free(*(char **)field_of(base, k));
		*(char **)field_of(base, k) = copy;
		return 0;

	case CONFIG_TYPE_UINT:
		r = parse_uint(value, k->min, k->max, &u);
		if (r < 0) {
			str_printf(err, errlen, "expected an integer %llu..%llu",
				   (unsigned long long)k->min, (unsigned long long)k->max);
			return -EINVAL;
		}
		*(unsigned *)field_of(base, k) = (unsigned)u;
		return 0;

	case CONFIG_TYPE_DURATION:
		r = parse_duration(value, &lo);
		if (r < 0 || lo < k->min || lo > k->max) {
			str_printf(err, errlen, "expected a duration %s (units us, ms, s, min, h)",
				   duration_range_text(k->min, k->max, range, sizeof(range)));
			return -EINVAL;
		}
		*(usec_t *)field_of(base, k) = lo;
		return 0;

	case CONFIG_TYPE_DURATION_RANGE:
		r = parse_duration_range(value, &lo, &hi);
		if (r < 0 || lo < k->min || hi > k->max) {
			str_printf(err, errlen,
				   "expected LO..HI, two durations %s with LO <= HI, e.g. 10ms..5s",
				   duration_range_text(k->min, k->max, range, sizeof(range)));
			return -EINVAL;
		}
		((usec_t *)field_of(base, k))[0] = lo;
		((usec_t *)field_of(base, k))[1] = hi;
		return 0;

	case CONFIG_TYPE_RATE:
		r = parse_rate(value, &rate);
		if (r < 0 || rate.count < k->min || rate.count > k->max) {
			str_printf(err, errlen,
				   "expected COUNT/DURATION with COUNT %llu..%llu and a duration "
				   "> 0, e.g. 10/60s",
				   (unsigned long long)k->min, (unsigned long long)k->max);
			return -EINVAL;
		}
		*(struct rate *)field_of(base, k) = rate;
		return 0;

	case CONFIG_TYPE_SIZE:
		r = parse_size(value, &u);
		if (r < 0 || u < k->min || u > k->max) {
			str_printf(err, errlen, "expected a size %s..%s (K, M, G, T: base 1024)",
				   format_size(a, sizeof(a), k->min),
				   k->max == UINT64_MAX
					   ? "infinity"
					   : format_size(range, sizeof(range), k->max));
			return -EINVAL;
		}
		*(uint64_t *)field_of(base, k) = u;
		return 0;

	case CONFIG_TYPE_ENUM:
		for (const struct config_choice *c = k->choices; c->name; c++)
			if (strcmp(c->name, value) == 0) {
				*(int *)field_of(base, k) = c->value;
				return 0;
			}
		{
			const char *names[16], *hint;
			unsigned n = 0;

			for (const struct config_choice *c = k->choices; c->name && n < 15; c++)
				names[n++] = c->name;
			names[n] = NULL;
			hint = str_did_you_mean(value, names);
			if (hint)
				str_printf(err, errlen, "expected one of %s (did you mean '%s'?)",
					   choices_list(k->choices, list, sizeof(list)), hint);
			else
				str_printf(err, errlen, "expected one of %s",
					   choices_list(k->choices, list, sizeof(list)));
		}
		return -EINVAL;

	case CONFIG_TYPE_POOL:
		/* Resolved by the caller, which knows the pools. */
		return 0;

	case CONFIG_TYPE_EXIT_STATUS:
		return exit_set_parse(value, (uint8_t *)field_of(base, k), err, errlen);

	case CONFIG_TYPE_NICE: {
		long v;
		char *end;

		if (value[strspn(value, " \t")] == '\0') {
			*(int *)field_of(base, k) = EXEC_NICE_INHERIT;
			return 0;
		}
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || *end || v < EXEC_NICE_MIN || v > EXEC_NICE_MAX) {
			str_printf(err, errlen, "expected an integer %d..%d (or nothing: the worker's)",
				   EXEC_NICE_MIN, EXEC_NICE_MAX);
			return -EINVAL;
		}
		*(int *)field_of(base, k) = (int)v;
		return 0;
	}
	}
	str_printf(err, errlen, "unknown key type");
	return -EINVAL;
}

/*
 * "demo.conf:12: [pool main] threads = abc: expected an integer 1..256", at the key's line,
 * or at the section's line (with "(the default)") when the key is not set.
 */
void config_value_error(struct parser *p, const struct raw_section *s, int key, const char *value,
			const char *msg)
{
	const struct raw_value *v = &s->values[key];
	char label[CONFIG_NAME_MAX * 2 + 64], shown[CONFIG_SHOW_VALUE_MAX + 8], cont[256] = "";

	if (v->value && v->last_line)
		str_printf(cont, sizeof(cont), " (the value continues to line %u)", v->last_line);
	if (v->value && v->semicolon_line)
		str_printf(cont + strlen(cont), sizeof(cont) - strlen(cont),
			   " (the value ends before the ' ;' on line %u: ' ;' starts a comment in "
			   "bulkhead.conf; use && or a script instead)",
			   v->semicolon_line);
	config_error(p, v->value ? v->line : s->line, "%s %s = %s%s: %s%s",
		     config_section_label(s, label, sizeof(label)), config_keys[key].name,
		     config_show_value(value, shown, sizeof(shown)),
		     v->value ? "" : " (the default)", msg, cont);
}

/*
 * Fills base from section s (NULL: every default), key by key, reporting each bad value;
 * bad[k] says which keys of this section had one.
 */
void config_convert_section(struct parser *p, const struct raw_section *s,
			    enum config_section_kind kind, void *base, bool bad[_CONFIG_KEY_MAX])
{
	char label[CONFIG_NAME_MAX * 2 + 64], err[512];

	if (s)
		config_section_label(s, label, sizeof(label));
	for (int i = 0; i < _CONFIG_KEY_MAX; i++) {
		const struct config_key *k = &config_keys[i];
		const struct raw_value *v = s ? &s->values[i] : NULL;
		const char *value;
		int r;

		bad[i] = false;
		if (k->section != kind)
			continue;
		value = v && v->value ? v->value : k->def;
		if (!value) {
			bad[i] = true;
			if (s)
				config_error(p, s->line, "%s missing required key '%s'", label,
					     k->name);
			continue;
		}
		r = convert(k, value, base, err, sizeof(err));
		if (r == -ENOMEM) {
			p->oom = true;
			bad[i] = true;
			continue;
		}
		if (r < 0) {
			bad[i] = true;
			if (!v || !v->value) {
				/* A default that does not parse is a bug in keys.h. */
				config_error(p, s ? s->line : 0, "%s: bad default '%s' (a bug)",
					     k->name, k->def);
				continue;
			}
			config_value_error(p, s, i, v->value, err);
		}
	}
}

int config_group_exec_parse(const char *text, struct group_config *g, char *err, size_t errlen)
{
	static const int keys[] = { CONFIG_KEY_JOB_environment, CONFIG_KEY_JOB_working_directory,
				    CONFIG_KEY_JOB_success_exit_status, CONFIG_KEY_JOB_retry_delay,
				    CONFIG_KEY_JOB_nice };
	const char *p = text;
	int r = 0;

	config_group_exec_defaults(g);
	while (r == 0 && *p) {
		const char *nl = strchrnul(p, '\n'), *eq = memchr(p, '=', (size_t)(nl - p));
		size_t klen;
		char *value;
		int key = -1;

		if (!eq) {
			str_printf(err, errlen, "not key = value: %.*s", (int)(nl - p), p);
			r = -EINVAL;
			break;
		}
		for (klen = (size_t)(eq - p); klen > 0 && p[klen - 1] == ' '; klen--)
			;
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strlen(config_keys[keys[i]].name) == klen &&
			    strncmp(config_keys[keys[i]].name, p, klen) == 0)
				key = keys[i];
		eq++;
		eq += strspn(eq, " ");
		value = strndup(eq, (size_t)(nl - eq));
		if (!value) {
			r = -ENOMEM;
			break;
		}
		if (key < 0) {
			str_printf(err, errlen, "unknown key %.*s", (int)klen, p);
			r = -EINVAL;
		} else {
			char why[256];

			r = convert(&config_keys[key], value, g, why, sizeof(why));
			if (r == -EINVAL)
				str_printf(err, errlen, "%s = %.64s: %s", config_keys[key].name,
					   value, why);
		}
		free(value);
		p = *nl ? nl + 1 : nl;
	}
	if (r < 0) {
		free(g->environment);
		free(g->working_directory);
		config_group_exec_defaults(g);
	}
	return r;
}
