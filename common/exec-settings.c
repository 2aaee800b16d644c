/* SPDX-License-Identifier: MIT */
/*
 * Per-group settings of exec: jobs (see exec-settings.h): environment assignments split
 * with the command-line scanner, and the set of exit codes counted done.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"
#include "exec-settings.h"
#include "strutil.h"

static bool name_ok(const char *w, size_t n)
{
	if (n == 0 || (w[0] >= '0' && w[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = w[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

int exec_env_split(const char *s, char ***ret, size_t *ret_n, char *err, size_t errsize)
{
	char **v;
	size_t n;
	int r;

	*ret = NULL;
	*ret_n = 0;
	if (s[strspn(s, " \t\r\n")] == '\0')
		return 0;
	r = cmdline_split(s, &v, &n, err, errsize);
	if (r < 0)
		return r;
	if (n > EXEC_ENV_MAX) {
		str_printf(err, errsize, "%zu assignments, at most %d", n, EXEC_ENV_MAX);
		free(v);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(v[i], '=');

		if (!eq || !name_ok(v[i], (size_t)(eq - v[i]))) {
			str_printf(err, errsize,
				   "'%.64s' is not NAME=VALUE (NAME: A-Z a-z 0-9 _, not starting "
				   "with a digit)",
				   v[i]);
			free(v);
			return -EINVAL;
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int exit_set_parse(const char *s, uint8_t set[EXIT_SET_BYTES], char *err, size_t errsize)
{
	const char *p = s;

	memset(set, 0, EXIT_SET_BYTES);
	set[0] = 1;
	for (;;) {
		unsigned long v;
		char *end;

		p += strspn(p, " \t\r\n");
		if (*p == '\0')
			return 0;
		errno = 0;
		if (*p < '0' || *p > '9')
			goto bad;
		v = strtoul(p, &end, 10);
		if (errno || v > 255 || (*end && !strchr(" \t\r\n", *end)))
			goto bad;
		set[v / 8] |= (uint8_t)(1u << (v % 8));
		p = end;
	}
bad:
	str_printf(err, errsize, "expected exit codes 0..255 separated by blanks, e.g. 0 1");
	return -EINVAL;
}

const char *exit_set_format(const uint8_t set[EXIT_SET_BYTES], char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned c = 0; c < 256; c++) {
		if (!exit_set_has(set, c))
			continue;
		str_printf(buf + n, size - n, "%s%u", n ? " " : "", c);
		n = strlen(buf);
	}
	return buf;
}
