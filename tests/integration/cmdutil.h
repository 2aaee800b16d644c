/* SPDX-License-Identifier: MIT */
/*
 * Running an outside command from a test (meson, make, pkg-config, cc, systemd-analyze):
 * its stdout and stderr captured, bounded, within a deadline. Shared by test-packaging and
 * test-plugin-build.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define CMD_TIMEOUT_MS (120 * 1000)
#define CMD_OUTPUT_MAX (1 << 20)

struct cmd {
	int status; /* wait status */
	char *out;
	char *err;
};

void cmd_free(struct cmd *c);
/* getenv(NAME) if set and not empty, else NULL. */
const char *cmd_env_or_null(const char *name);
/* getenv(NAME), failing the test if it is not set. */
const char *cmd_env_required(const char *name);
/* NAME searched in $PATH; a malloc'd path, or NULL. */
char *cmd_find_in_path(const char *name);
/*
 * Runs argv (env: extra VAR=VALUE entries, or NULL) with stdout and stderr captured through
 * pipes read together until both close, then reaps it; all within CMD_TIMEOUT_MS. Returns 0
 * or -errno (-ETIMEDOUT).
 */
int cmd_run(const char *const argv[], const char *const env[], struct cmd *ret);
bool cmd_exited_0(const struct cmd *c);
/* Appends n bytes to *buf (malloc'd, kept NUL-terminated), at most CMD_OUTPUT_MAX in all. */
void cmd_append(char **buf, size_t *len, const char *data, size_t n);
