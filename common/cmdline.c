/* SPDX-License-Identifier: MIT */
/*
 * Shell-like word splitting and placeholder substitution for exec jobs (see cmdline.h).
 *
 * cmdline_split() runs the same scanner twice: once to count words and bytes, once to write
 * them into a single block that holds the pointer array followed by the strings, so the
 * caller frees one pointer. The scanner is a small state machine over three states
 * (outside quotes, in '...', in "...") and never reads past the terminating NUL, whatever
 * the input. cmdline_expand() is one pass over one word, building the result in a
 * memstream.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"
#include "strutil.h"

#define CMDLINE_KEY_MAX 64 /* length of KEY in {arg:KEY} */

enum quote { Q_NONE, Q_SINGLE, Q_DOUBLE };

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The scanner's output: counts only (argv == NULL), or writes words into buf. */
struct words {
	char **argv;
	char *buf;
	size_t argc, bytes;
	bool in_word;
};

/* Starts a word if none is open (a quote does, even if the word stays empty). */
static void word_start(struct words *w)
{
	if (w->in_word)
		return;
	if (w->argv)
		w->argv[w->argc] = w->buf + w->bytes;
	w->argc++;
	w->in_word = true;
}

static void word_put(struct words *w, char c)
{
	word_start(w);
	if (w->buf)
		w->buf[w->bytes] = c;
	w->bytes++;
}

static void word_end(struct words *w)
{
	if (!w->in_word)
		return;
	if (w->buf)
		w->buf[w->bytes] = '\0';
	w->bytes++;
	w->in_word = false;
}

/* Scans s into w; see cmdline_split() for the rules. */
static int scan(const char *s, struct words *w, char *err, size_t errsize)
{
	enum quote q = Q_NONE;

	for (const char *p = s; *p; p++) {
		char c = *p;

		switch (q) {
		case Q_NONE:
			if (is_blank(c)) {
				word_end(w);
			} else if (c == '\'' || c == '"') {
				word_start(w);
				q = c == '\'' ? Q_SINGLE : Q_DOUBLE;
			} else if (c == '\\') {
				if (p[1] == '\0') {
					str_printf(err, errsize, "trailing backslash");
					return -EINVAL;
				}
				word_put(w, *++p);
			} else {
				word_put(w, c);
			}
			break;
		case Q_SINGLE:
			if (c == '\'')
				q = Q_NONE;
			else
				word_put(w, c);
			break;
		case Q_DOUBLE:
			if (c == '"')
				q = Q_NONE;
			else if (c == '\\' && p[1] && strchr("\"\\$`", p[1]))
				word_put(w, *++p);
			else
				word_put(w, c);
			break;
		}
		if (w->argc > CMDLINE_WORDS_MAX) {
			str_printf(err, errsize, "too many words (at most %d)", CMDLINE_WORDS_MAX);
			return -EINVAL;
		}
	}
	if (q != Q_NONE) {
		str_printf(err, errsize, "unterminated %s quote", q == Q_SINGLE ? "'" : "\"");
		return -EINVAL;
	}
	word_end(w);
	return 0;
}

int cmdline_split(const char *s, char ***ret_argv, size_t *ret_argc, char *err, size_t errsize)
{
	struct words count = { 0 }, w = { 0 };
	int r;

	if (errsize > 0)
		err[0] = '\0';
	*ret_argv = NULL;
	*ret_argc = 0;
	r = scan(s, &count, err, errsize);
	if (r < 0)
		return r;
	if (count.argc == 0) {
		str_printf(err, errsize, "no command");
		return -EINVAL;
	}
	w.argv = malloc((count.argc + 1) * sizeof(char *) + count.bytes);
	if (!w.argv)
		return -ENOMEM;
	w.buf = (char *)(w.argv + count.argc + 1);
	r = scan(s, &w, err, errsize);
	if (r < 0) {
		free(w.argv);
		return r;
	}
	w.argv[w.argc] = NULL;
	*ret_argv = w.argv;
	*ret_argc = w.argc;
	return 0;
}

static bool valid_key(const char *k, size_t n)
{
	if (n < 1 || n > CMDLINE_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-",
			    k[i]))
			return false;
	return true;
}

/* Checks the name between { and } (n bytes at s) and copies it into name. */
static int check_name(const char *s, size_t n, char *name, size_t size, char *err, size_t errsize)
{
	if (n >= size) {
		str_printf(err, errsize, "placeholder {%.*s...} too long", 16, s);
		return -EINVAL;
	}
	memcpy(name, s, n);
	name[n] = '\0';
	if (strcmp(name, "input") == 0 || strcmp(name, "id") == 0 || strcmp(name, "name") == 0)
		return 0;
	if (strncmp(name, "arg:", 4) == 0) {
		if (valid_key(name + 4, n - 4))
			return 0;
		str_printf(err, errsize,
			   "placeholder {%s}: KEY must be 1..%d characters of A-Z a-z 0-9 _ . -",
			   name, CMDLINE_KEY_MAX);
		return -EINVAL;
	}
	str_printf(err, errsize,
		   "unknown placeholder {%s} (expected {input}, {id}, {name} or {arg:KEY}; "
		   "{{ and }} for literal braces)",
		   name);
	return -EINVAL;
}

int cmdline_expand(const char *word, cmdline_lookup_fn lookup, void *ud, char **ret, char *err,
		   size_t errsize)
{
	char name[CMDLINE_KEY_MAX + 8], *out = NULL;
	size_t size = 0;
	FILE *f;
	int r = 0;

	if (errsize > 0)
		err[0] = '\0';
	*ret = NULL;
	f = open_memstream(&out, &size);
	if (!f)
		return -ENOMEM;
	for (const char *p = word; *p && r == 0; p++) {
		const char *end, *value;

		if (p[0] == '{' && p[1] == '{') {
			fputc('{', f);
			p++;
		} else if (p[0] == '}' && p[1] == '}') {
			fputc('}', f);
			p++;
		} else if (*p == '}') {
			str_printf(err, errsize, "lone '}' (write }} for a literal one)");
			r = -EINVAL;
		} else if (*p == '{') {
			end = strchr(p + 1, '}');
			if (!end) {
				str_printf(
					err, errsize,
					"unterminated placeholder '{' (write {{ for a literal one)");
				r = -EINVAL;
				break;
			}
			r = check_name(p + 1, (size_t)(end - p - 1), name, sizeof(name), err,
				       errsize);
			if (r < 0)
				break;
			value = lookup ? lookup(ud, name) : "";
			if (!value) {
				str_printf(err, errsize, "no value for {%s}", name);
				r = -ENOENT;
				break;
			}
			fputs(value, f);
			p = end;
		} else {
			fputc(*p, f);
		}
	}
	if (fclose(f) != 0 && r == 0)
		r = -ENOMEM;
	if (r < 0 || !out) {
		free(out);
		return r < 0 ? r : -ENOMEM;
	}
	*ret = out;
	return 0;
}
