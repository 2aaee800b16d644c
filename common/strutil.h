/* SPDX-License-Identifier: MIT */
/* Small string helpers shared by config, cli and worker. */
#pragma once

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
