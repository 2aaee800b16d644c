/* SPDX-License-Identifier: MIT */
/*
 * Small string helpers: an edit distance and the "did you mean" suggestion built on it (used
 * for unknown config sections, keys, pools, builtins and builtin arguments), an snprintf
 * that cannot fail, and UTF-8 checks (a shared store keeps text in a UTF-8 database).
 *
 * The distance counts insertions, deletions, substitutions and swaps of two adjacent
 * characters (Levenshtein plus transpositions, the "optimal string alignment" variant), so
 * the commonest typos, "jbo" for "job" or "mian" for "main", cost 1.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strutil.h"

static unsigned min3(unsigned a, unsigned b, unsigned c)
{
	unsigned m = a < b ? a : b;

	return m < c ? m : c;
}

unsigned str_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned *rows, *prev2, *prev, *cur, d;

	if (la == 0)
		return (unsigned)lb;
	if (lb == 0)
		return (unsigned)la;
	/* Three rows of the dynamic programming matrix: i-2, i-1 and i. */
	rows = calloc(3 * (lb + 1), sizeof(unsigned));
	if (!rows)
		return UINT_MAX;
	prev2 = rows;
	prev = rows + (lb + 1);
	cur = rows + 2 * (lb + 1);
	for (size_t j = 0; j <= lb; j++)
		prev[j] = (unsigned)j;

	for (size_t i = 1; i <= la; i++) {
		unsigned *t;

		cur[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned cost = a[i - 1] != b[j - 1];

			cur[j] = min3(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    prev2[j - 2] + 1 < cur[j])
				cur[j] = prev2[j - 2] + 1;
		}
		t = prev2;
		prev2 = prev;
		prev = cur;
		cur = t;
	}
	d = prev[lb];
	free(rows);
	return d;
}

const char *str_did_you_mean(const char *word, const char *const *candidates)
{
	const char *best = NULL;
	unsigned best_d = UINT_MAX, limit;
	size_t len;

	if (!word || !candidates)
		return NULL;
	len = strlen(word);
	limit = len / 3 > 1 ? (unsigned)(len / 3) : 1;
	for (size_t i = 0; candidates[i]; i++) {
		unsigned d = str_distance(word, candidates[i]);

		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	return best_d <= limit ? best : NULL;
}

char *str_printf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (size == 0)
		return buf;
	va_start(ap, fmt);
	if (vsnprintf(buf, size, fmt, ap) < 0)
		buf[0] = '\0';
	va_end(ap);
	return buf;
}

size_t str_utf8_char(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n;
	uint32_t cp;

	if (u[0] < 0x80)
		return 1;
	if (u[0] >= 0xc2 && u[0] <= 0xdf)
		n = 2, cp = u[0] & 0x1f;
	else if (u[0] >= 0xe0 && u[0] <= 0xef)
		n = 3, cp = u[0] & 0x0f;
	else if (u[0] >= 0xf0 && u[0] <= 0xf4)
		n = 4, cp = u[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((u[i] & 0xc0) != 0x80)
			return 0; /* a NUL ends here too */
		cp = cp << 6 | (u[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool str_is_utf8(const char *s)
{
	while (*s) {
		size_t n = str_utf8_char(s);

		if (n == 0)
			return false;
		s += n;
	}
	return true;
}

void str_fix_utf8(char *s)
{
	while (*s) {
		size_t n = str_utf8_char(s);

		if (n == 0) {
			*s++ = '?';
			continue;
		}
		s += n;
	}
}
