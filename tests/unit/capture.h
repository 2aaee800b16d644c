/* SPDX-License-Identifier: MIT */
/*
 * Unit-test helpers: what a function under test writes to stderr, captured in a temp file
 * (Check runs each test in its own process, so the redirection ends with the test).
 */
#pragma once

#include <check.h>
#include <stdlib.h>
#include <unistd.h>

/* Points stderr at a fresh temp file; returns its fd for reading back. */
static inline int capture_stderr(void)
{
	char path[] = "/tmp/bulkhead-test-XXXXXX";
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	return fd;
}

/* Everything captured so far (up to 8 KiB), NUL-terminated; valid until the next call. */
static inline char *captured(int fd)
{
	static char buf[8192];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	return buf;
}
