/* SPDX-License-Identifier: MIT */
/*
 * The per-group settings of exec: jobs that are more than a string (exec-settings.c):
 * `environment =` assignments, the `success_exit_status =` set of exit codes, and the nice
 * value that means "leave it". Used by the config (to check them at load), the stores (to
 * keep them) and the worker (to apply them).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXEC_ENV_MAX 256 /* assignments in one environment = */
#define EXEC_NICE_MIN (-20)
#define EXEC_NICE_MAX 19
#define EXEC_NICE_INHERIT 127 /* nice = (empty): the command keeps the worker's nice value */
#define EXIT_SET_BYTES 32 /* a bit for each exit code 0..255 */

/*
 * Splits `environment =` into its NAME=VALUE assignments: words quoted like exec: command
 * lines (common/cmdline.h: "B=two words", 'C=$x'), each NAME=VALUE with NAME of A-Z a-z 0-9 _
 * not starting with a digit. "" (or blanks) is no assignment. Returns 0 with *ret (NULL-
 * terminated, one block: free(*ret) frees all; NULL when there is none) and *ret_n, or
 * -EINVAL with the reason in err, or -ENOMEM.
 */
int exec_env_split(const char *s, char ***ret, size_t *ret_n, char *err, size_t errsize);

/*
 * `success_exit_status =`: exit codes 0..255 separated by blanks, into set (0 is always in
 * it). Returns 0, or -EINVAL with the reason in err.
 */
int exit_set_parse(const char *s, uint8_t set[EXIT_SET_BYTES], char *err, size_t errsize);

/* "0 1 2": the codes of set in order (buf of at least 4 * 256 bytes holds any). */
const char *exit_set_format(const uint8_t set[EXIT_SET_BYTES], char *buf, size_t size);

static inline bool exit_set_has(const uint8_t set[EXIT_SET_BYTES], unsigned code)
{
	return code < 256 && (set[code / 8] >> (code % 8)) & 1;
}
