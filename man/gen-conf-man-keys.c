/* SPDX-License-Identifier: MIT */
/*
 * gen-conf-man: the entries of bulkhead.conf(5) that come from the tables, in roff. One
 * entry per key (name, type, doc, default, accepted values) from config_keys[] (keys.h),
 * one per builtin job (name, arguments and their types) from bh_builtin_table[]
 * (common/builtins.h), with what each builtin does from gen-conf-man.c's builtin_docs[].
 * Every text from a table is escaped for roff here.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/builtins.h"
#include "common/units.h"
#include "config/config.h"
#include "config/keys.h"
#include "man/gen-conf-man.h"

#define RANGE_TEXT_MAX 256

/*
 * Writes s as roff text: backslashes and minus signs escaped, and a '.' or '\'' that would
 * start a line made harmless.
 */
static void roff_text(const char *s, FILE *f)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", f);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", f);
		else if (*s == '-')
			fputs("\\-", f);
		else
			fputc(*s, f);
	}
}

/*
 * A doc string as a sentence: a full stop at the end, and a capital at the start unless
 * the first word is a piece of the file's syntax ("key=value", "stop:").
 */
static void roff_sentence(const char *s, FILE *f, bool capital)
{
	size_t n = strlen(s), word = strcspn(s, " ");
	bool plain = word > 0;

	for (size_t i = 0; i < word; i++)
		plain = plain && isalpha((unsigned char)s[i]);
	if (capital && plain) {
		fputc(toupper((unsigned char)s[0]), f);
		s++;
	}
	roff_text(s, f);
	if (n > 0 && s[strlen(s) - 1] != '.')
		fputc('.', f);
	fputc('\n', f);
}

static const char *type_name(const struct config_key *k)
{
	switch (k->type) {
	case CONFIG_TYPE_STRING:
		return "string";
	case CONFIG_TYPE_PATH:
		return "path";
	case CONFIG_TYPE_UINT:
		return "integer";
	case CONFIG_TYPE_DURATION:
		return "duration";
	case CONFIG_TYPE_DURATION_RANGE:
		return "LO..HI";
	case CONFIG_TYPE_RATE:
		return "COUNT/DURATION";
	case CONFIG_TYPE_SIZE:
		return "size";
	case CONFIG_TYPE_ENUM:
		return "enum";
	case CONFIG_TYPE_POOL:
		return "pool name";
	case CONFIG_TYPE_RUN:
		return "KIND:...";
	case CONFIG_TYPE_ARGS:
		return "KEY=VALUE ...";
	case CONFIG_TYPE_GLOB:
		return "glob";
	case CONFIG_TYPE_DIR:
		return "directory";
	case CONFIG_TYPE_STORE:
		return "store";
	case CONFIG_TYPE_ENVIRONMENT:
		return "NAME=VALUE ...";
	case CONFIG_TYPE_EXIT_STATUS:
		return "CODE ...";
	case CONFIG_TYPE_NICE:
		return "integer";
	}
	return "?";
}

static const char *duration_range(uint64_t min, uint64_t max, char *buf, size_t size)
{
	char a[FORMAT_DURATION_MAX], b[FORMAT_DURATION_MAX];

	if (min == 1 && max == USEC_INFINITY)
		snprintf(buf, size, "greater than 0, or infinity");
	else
		snprintf(buf, size, "%s..%s", format_duration(a, sizeof(a), min),
			 format_duration(b, sizeof(b), max));
	return buf;
}

/* The accepted values of key k, in words. */
static const char *range_text(const struct config_key *k, char *buf, size_t size)
{
	char a[FORMAT_SIZE_MAX], b[FORMAT_SIZE_MAX], r[RANGE_TEXT_MAX];
	size_t n = 0;

	switch (k->type) {
	case CONFIG_TYPE_STRING:
		snprintf(buf, size, "%llu..%llu characters, no whitespace",
			 (unsigned long long)k->min, (unsigned long long)k->max);
		break;
	case CONFIG_TYPE_PATH:
		snprintf(buf, size, "empty, or an absolute path of at most %llu bytes",
			 (unsigned long long)k->max);
		break;
	case CONFIG_TYPE_UINT:
		snprintf(buf, size, "%llu..%llu", (unsigned long long)k->min,
			 (unsigned long long)k->max);
		break;
	case CONFIG_TYPE_DURATION:
		duration_range(k->min, k->max, buf, size);
		break;
	case CONFIG_TYPE_DURATION_RANGE:
		snprintf(buf, size, "each bound %s, LO <= HI; a single duration means LO = HI",
			 duration_range(k->min, k->max, r, sizeof(r)));
		break;
	case CONFIG_TYPE_RATE:
		snprintf(buf, size, "COUNT %llu..%llu, DURATION greater than 0 and finite",
			 (unsigned long long)k->min, (unsigned long long)k->max);
		break;
	case CONFIG_TYPE_SIZE:
		snprintf(buf, size, "%s..%s", format_size(a, sizeof(a), k->min),
			 format_size(b, sizeof(b), k->max));
		break;
	case CONFIG_TYPE_ENUM:
		buf[0] = '\0';
		for (const struct config_choice *c = k->choices; c && c->name; c++) {
			snprintf(buf + n, size - n, "%s%s", n ? ", " : "one of ", c->name);
			n = strlen(buf);
		}
		break;
	case CONFIG_TYPE_POOL:
		snprintf(buf, size,
			 "the name of a [pool NAME] section of the file (or the "
			 "implicit pool main)");
		break;
	case CONFIG_TYPE_RUN:
		snprintf(buf, size,
			 "builtin:NAME with a NAME from BUILTIN JOBS below, plugin:PATH:SYMBOL or "
			 "exec:COMMAND ARGS... (RUN KINDS below)");
		break;
	case CONFIG_TYPE_ARGS:
		snprintf(
			buf, size,
			"for a builtin, the arguments it takes (BUILTIN JOBS below); for plugin and "
			"exec jobs, any words KEY=VALUE, KEY 1..64 characters of A-Z a-z 0-9 _ . -, "
			"each KEY once");
		break;
	case CONFIG_TYPE_GLOB:
		snprintf(buf, size,
			 "empty, or a glob(3) pattern (braces allowed) that matches at least one "
			 "regular file; a relative pattern is relative to the directory of the "
			 "config file");
		break;
	case CONFIG_TYPE_DIR:
		snprintf(buf, size,
			 "empty, or a directory that exists when the config is loaded; a relative "
			 "path is relative to the directory of the config file");
		break;
	case CONFIG_TYPE_STORE:
		snprintf(buf, size,
			 "empty, memory, or sqlite: and an absolute path of at most %llu bytes",
			 (unsigned long long)k->max);
		break;
	case CONFIG_TYPE_ENVIRONMENT:
		snprintf(buf, size,
			 "empty, or words NAME=VALUE (NAME of A-Z a-z 0-9 _, not starting with a "
			 "digit) quoted like exec: command lines, at most %d",
			 EXEC_ENV_MAX);
		break;
	case CONFIG_TYPE_EXIT_STATUS:
		snprintf(buf, size, "exit codes 0..255 separated by whitespace");
		break;
	case CONFIG_TYPE_NICE:
		snprintf(buf, size, "empty, or %d..%d", EXEC_NICE_MIN, EXEC_NICE_MAX);
		break;
	}
	return buf;
}

static void print_key(const struct config_key *k, FILE *f)
{
	char range[RANGE_TEXT_MAX];

	fputs(".TP\n\\fB", f);
	roff_text(k->name, f);
	fputs(" =\\fR \\fI", f);
	roff_text(type_name(k), f);
	fputs("\\fR\n", f);
	roff_sentence(k->doc, f, true);
	fputs(".br\nDefault: ", f);
	if (!k->def) {
		fputs("none: the key is required.\n", f);
	} else if (!*k->def) {
		fputs("empty.\n", f);
	} else {
		fputs("\\fB", f);
		roff_text(k->def, f);
		fputs("\\fR.\n", f);
	}
	fputs(".br\nValues: ", f);
	roff_sentence(range_text(k, range, sizeof(range)), f, false);
}

void man_print_keys(enum config_section_kind kind, FILE *f)
{
	for (int i = 0; i < _CONFIG_KEY_MAX; i++)
		if (config_keys[i].section == kind)
			print_key(&config_keys[i], f);
}

static bool builtin_docs_bad; /* a text does not fit its builtin's arguments: exit 1 */

static void doc_error(const char *builtin, const char *what, const char *key)
{
	fprintf(stderr, "gen-conf-man: builtin %s: %s '%s'\n", builtin, what, key);
	builtin_docs_bad = true;
}

/* An argument's default as a config would write it. */
static void print_default(const struct bh_builtin_arg *a, FILE *f)
{
	char buf[FORMAT_SIZE_MAX];

	switch (a->type) {
	case BH_ARG_TYPE_UINT:
		if (a->def.u == UINT64_MAX)
			fputs("forever", f);
		else
			fprintf(f, "%llu", (unsigned long long)a->def.u);
		break;
	case BH_ARG_TYPE_SIZE:
		fputs(format_size(buf, sizeof(buf), a->def.u), f);
		break;
	case BH_ARG_TYPE_BOOL:
		fputs(a->def.u ? "yes" : "no", f);
		break;
	case BH_ARG_TYPE_PROB:
		fprintf(f, "%g", a->def.p);
		break;
	}
}

/* The text of builtin b with its {default:KEY} and {range:KEY} filled in from the table. */
static void print_doc(enum bh_builtin b, const char *doc, FILE *f)
{
	const char *name = bh_builtin_table[b].name;
	bool shown[_BH_ARG_MAX] = { false };

	while (*doc) {
		const char *open = strchr(doc, '{'), *close, *colon;
		const struct bh_builtin_arg *a;
		char key[64];

		if (!open) {
			fputs(doc, f);
			break;
		}
		fwrite(doc, 1, (size_t)(open - doc), f);
		close = strchr(open, '}');
		colon = close ? memchr(open, ':', (size_t)(close - open)) : NULL;
		if (!colon) {
			doc_error(name, "unterminated placeholder at", open);
			return;
		}
		snprintf(key, sizeof(key), "%.*s", (int)(close - colon - 1), colon + 1);
		a = bh_builtin_arg(b, key);
		if (!a || a->builtin != b) {
			doc_error(name, "placeholder for an argument it does not take", key);
		} else if (strncmp(open, "{default:", 9) == 0) {
			print_default(a, f);
			shown[a - bh_builtin_args] = true;
		} else if (strncmp(open, "{range:", 7) == 0) {
			fprintf(f, "%llu..%llu", (unsigned long long)a->min,
				(unsigned long long)a->max);
		} else {
			doc_error(name, "unknown placeholder for", key);
		}
		doc = close + 1;
	}
	for (int i = 0; i < _BH_ARG_MAX; i++)
		if (bh_builtin_args[i].builtin == b && !shown[i])
			doc_error(name, "text does not give the default of",
				  bh_builtin_args[i].key);
}

/* ".TP", the name with each argument and its type, then what it does. */
void man_print_builtin(enum bh_builtin b, FILE *f)
{
	const char *name = bh_builtin_table[b].name;
	const char *doc = man_builtin_doc(name);

	fputs(".TP\n\\fBbuiltin:", f);
	roff_text(name, f);
	fputs("\\fR", f);
	for (int i = 0; i < _BH_ARG_MAX; i++) {
		if (bh_builtin_args[i].builtin != b)
			continue;
		fputs(" \\fI", f);
		roff_text(bh_builtin_args[i].key, f);
		fputs("\\fR=", f);
		roff_text(bh_arg_type_name(bh_builtin_args[i].type), f);
	}
	fputc('\n', f);
	if (doc) {
		print_doc(b, doc, f);
		fputc('\n', f);
	} else {
		fputs("(Not described yet.)\n", f);
		fprintf(stderr, "gen-conf-man: warning: builtin '%s' has no description\n", name);
	}
}

bool man_builtin_docs_bad(void)
{
	return builtin_docs_bad;
}
