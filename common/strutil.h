/* SPDX-License-Identifier: MIT */
/* Small string helpers shared by config, cli and worker. */
#pragma once

#include <stdbool.h>

#include <stddef.h>

/* Levenshtein distance between a and b (ASCII, case-sensitive). */
unsigned str_distance(const char *a, const char *b);

/*
 * The candidate closest to `word` if it is close enough to be a plausible typo
 * (distance <= max(1, strlen(word)/3)), else NULL. `candidates` is NULL-terminated.
 */
const char *str_did_you_mean(const char *word, const char *const *candidates);

/* snprintf that never fails: truncates, always NUL-terminates. Returns buf. */
char *str_printf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there are not one
 * (overlong forms, surrogates and code points above U+10FFFF are not). s is NUL-terminated.
 */
size_t str_utf8_char(const char *s);
/* Whether all of s is valid UTF-8. */
bool str_is_utf8(const char *s);
/* Replaces every byte of s that is not part of valid UTF-8 with '?'. */
void str_fix_utf8(char *s);
