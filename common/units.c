/* SPDX-License-Identifier: MIT */
/*
 * Parsing and formatting of the units the config and the command line use: durations in
 * microseconds, sizes in bytes (base 1024), rates "N/DURATION", plain integers, booleans
 * and probabilities.
 *
 * Everything is strict: the whole string must be consumed, no whitespace, no sign, no
 * exponent. Syntax errors are -EINVAL, values that do not fit are -ERANGE. Fractions are
 * computed exactly (no floating point) and rounded down, so "1.5s" is exactly 1500000 us and
 * format_duration() can promise that its output reads back to the same value.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "units.h"

struct unit {
	const char *suffix;
	uint64_t factor;
};

/* Largest first: format_duration() picks the first one that fits. */
static const struct unit duration_units[] = {
	{ "h", USEC_PER_HOUR },
	{ "min", USEC_PER_MINUTE },
	{ "s", USEC_PER_SEC },
	{ "ms", USEC_PER_MSEC },
	{ "us", 1 },
};

static const struct unit size_units[] = {
	{ "T", 1ULL << 40 }, { "G", 1ULL << 30 }, { "M", 1ULL << 20 },
	{ "K", 1ULL << 10 }, { "", 1 },
};

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

usec_t now_usec(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return 0;
	return (usec_t)ts.tv_sec * USEC_PER_SEC + (usec_t)ts.tv_nsec / 1000;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * A decimal number "123" or "1.25" at the start of s. Sets *ret_int to the integer part,
 * *ret_frac and *ret_nfrac to the span of fraction digits (none if there is no dot) and
 * returns the number of characters consumed, or -EINVAL / -ERANGE.
 */
static int parse_decimal(const char *s, uint64_t *ret_int, const char **ret_frac, size_t *ret_nfrac)
{
	const char *p = s;
	uint64_t v = 0;

	if (*p == '-')
		return -EINVAL;
	if (!is_digit(*p))
		return -EINVAL;
	for (; is_digit(*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*ret_frac = NULL;
	*ret_nfrac = 0;
	if (*p == '.') {
		const char *f = ++p;

		if (!is_digit(*p))
			return -EINVAL;
		while (is_digit(*p))
			p++;
		*ret_frac = f;
		*ret_nfrac = (size_t)(p - f);
	}
	*ret_int = v;
	return (int)(p - s);
}

/*
 * int.frac * factor, rounded down, exactly. The fraction is folded in from its last digit:
 * floor((d + floor(x)) / 10) == floor((d + x) / 10) for integer d, so each step keeps
 * t < factor and nothing overflows.
 */
static int scale(uint64_t ipart, const char *frac, size_t nfrac, uint64_t factor, uint64_t *ret)
{
	uint64_t t = 0;

	if (factor != 0 && ipart > UINT64_MAX / factor)
		return -ERANGE;
	for (size_t i = nfrac; i > 0; i--)
		t = ((uint64_t)(frac[i - 1] - '0') * factor + t) / 10;
	if (ipart * factor > UINT64_MAX - t)
		return -ERANGE;
	*ret = ipart * factor + t;
	return 0;
}

static bool all_zero(uint64_t ipart, const char *frac, size_t nfrac)
{
	if (ipart != 0)
		return false;
	for (size_t i = 0; i < nfrac; i++)
		if (frac[i] != '0')
			return false;
	return true;
}

static int parse_with_units(const char *s, const struct unit *units, size_t n_units,
			    bool unit_required, uint64_t *ret)
{
	const char *frac;
	size_t nfrac;
	uint64_t ipart;
	int r;

	if (!s)
		return -EINVAL;
	r = parse_decimal(s, &ipart, &frac, &nfrac);
	if (r < 0)
		return r;
	s += r;

	if (*s == '\0') {
		/* No unit: durations allow only zero, sizes only a whole number of bytes. */
		if (unit_required ? !all_zero(ipart, frac, nfrac) : nfrac > 0)
			return -EINVAL;
		if (ipart == UINT64_MAX)
			return -ERANGE;
		*ret = unit_required ? 0 : ipart;
		return 0;
	}
	for (size_t i = 0; i < n_units; i++) {
		uint64_t v;

		if (units[i].suffix[0] == '\0' || strcmp(s, units[i].suffix) != 0)
			continue;
		r = scale(ipart, frac, nfrac, units[i].factor, &v);
		if (r < 0)
			return r;
		/* UINT64_MAX means "infinity", which is spelled out. */
		if (v == UINT64_MAX)
			return -ERANGE;
		*ret = v;
		return 0;
	}
	return -EINVAL;
}

int parse_duration(const char *s, usec_t *ret)
{
	if (s && strcmp(s, "infinity") == 0) {
		*ret = USEC_INFINITY;
		return 0;
	}
	return parse_with_units(s, duration_units, ELEMENTSOF(duration_units), true, ret);
}

int parse_duration_range(const char *s, usec_t *ret_lo, usec_t *ret_hi)
{
	usec_t lo, hi;
	const char *dots;
	char *first;
	int r;

	if (!s)
		return -EINVAL;
	dots = strstr(s, "..");
	if (!dots) {
		r = parse_duration(s, &lo);
		if (r < 0)
			return r;
		*ret_lo = *ret_hi = lo;
		return 0;
	}
	first = strndup(s, (size_t)(dots - s));
	if (!first)
		return -ENOMEM;
	r = parse_duration(first, &lo);
	free(first);
	if (r < 0)
		return r;
	r = parse_duration(dots + 2, &hi);
	if (r < 0)
		return r;
	if (lo > hi)
		return -EINVAL;
	*ret_lo = lo;
	*ret_hi = hi;
	return 0;
}

int parse_size(const char *s, uint64_t *ret)
{
	if (s && strcmp(s, "infinity") == 0) {
		*ret = UINT64_MAX;
		return 0;
	}
	return parse_with_units(s, size_units, ELEMENTSOF(size_units), false, ret);
}

int parse_rate(const char *s, struct rate *ret)
{
	const char *slash;
	uint64_t count;
	usec_t window;
	char *first;
	int r;

	if (!s)
		return -EINVAL;
	slash = strchr(s, '/');
	if (!slash)
		return -EINVAL;
	first = strndup(s, (size_t)(slash - s));
	if (!first)
		return -ENOMEM;
	r = parse_uint(first, 0, UINT32_MAX, &count);
	free(first);
	if (r < 0)
		return r;
	r = parse_duration(slash + 1, &window);
	if (r < 0)
		return r;
	if (count < 1 || window == 0 || window == USEC_INFINITY)
		return -ERANGE;
	ret->count = (unsigned)count;
	ret->window = window;
	return 0;
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	const char *frac;
	size_t nfrac;
	uint64_t v;
	int r;

	if (!s)
		return -EINVAL;
	r = parse_decimal(s, &v, &frac, &nfrac);
	if (r < 0)
		return r;
	if (s[r] != '\0' || frac)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int parse_bool(const char *s)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return 1;
		if (strcasecmp(s, no[i]) == 0)
			return 0;
	}
	return -EINVAL;
}

int parse_probability(const char *s, double *ret)
{
	const char *frac;
	size_t nfrac;
	uint64_t ipart;
	int r;

	if (!s)
		return -EINVAL;
	r = parse_decimal(s, &ipart, &frac, &nfrac);
	if (r == -ERANGE)
		return r;
	if (r < 0 || s[r] != '\0')
		return -EINVAL;
	if (ipart > 1 || (ipart == 1 && !all_zero(0, frac, nfrac)))
		return -ERANGE;
	/* The syntax is checked: strtod() only converts, and cannot see a locale's comma here. */
	*ret = strtod(s, NULL);
	return 0;
}

/*
 * Writes v / factor as an exact decimal ("1.5") into buf, or returns -EINVAL if it has no
 * exact decimal form of at most 20 fraction digits (a third of a minute, say).
 */
static int format_exact(char *buf, size_t size, uint64_t v, uint64_t factor, const char *suffix)
{
	char frac[24];
	uint64_t rem = v % factor;
	size_t n = 0;

	while (rem != 0) {
		if (n >= 20)
			return -EINVAL;
		/* rem < factor <= 2^40, so rem * 10 cannot overflow. */
		rem *= 10;
		frac[n++] = (char)('0' + rem / factor);
		rem %= factor;
	}
	frac[n] = '\0';
	snprintf(buf, size, "%llu%s%s%s", (unsigned long long)(v / factor), n ? "." : "", frac,
		 suffix);
	return 0;
}

char *format_duration(char *buf, size_t size, usec_t u)
{
	if (size == 0)
		return buf;
	if (u == USEC_INFINITY) {
		snprintf(buf, size, "infinity");
		return buf;
	}
	if (u == 0) {
		snprintf(buf, size, "0");
		return buf;
	}
	/* The largest unit in which the value is at least 1 and exact: 90s is "1.5min". */
	for (size_t i = 0; i < ELEMENTSOF(duration_units); i++) {
		if (u < duration_units[i].factor)
			continue;
		if (format_exact(buf, size, u, duration_units[i].factor,
				 duration_units[i].suffix) >= 0)
			return buf;
	}
	snprintf(buf, size, "%lluus", (unsigned long long)u);
	return buf;
}

char *format_size(char *buf, size_t size, uint64_t bytes)
{
	char best[FORMAT_SIZE_MAX], tmp[FORMAT_SIZE_MAX];

	if (size == 0)
		return buf;
	if (bytes == UINT64_MAX) {
		snprintf(buf, size, "infinity");
		return buf;
	}
	/* The shortest exact form; on a tie the larger unit: 1536 is "1.5K", 1025 is "1025". */
	best[0] = '\0';
	for (size_t i = 0; i < ELEMENTSOF(size_units); i++) {
		if (bytes < size_units[i].factor && size_units[i].factor > 1)
			continue;
		if (format_exact(tmp, sizeof(tmp), bytes, size_units[i].factor,
				 size_units[i].suffix) < 0)
			continue;
		if (best[0] == '\0' || strlen(tmp) < strlen(best))
			memcpy(best, tmp, sizeof(best));
	}
	snprintf(buf, size, "%s", best);
	return buf;
}
