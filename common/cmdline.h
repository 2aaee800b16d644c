/* SPDX-License-Identifier: MIT */
/*
 * Command lines of exec jobs (`run = exec:COMMAND ARGS...`): splitting into words like a
 * shell does, without any expansion, and substituting the {input} {id} {name} {arg:KEY}
 * placeholders in one word. Used by the config (to check a command at load) and by the
 * worker (to start it).
 */
#pragma once

#include <stddef.h>

#define CMDLINE_WORDS_MAX 4096 /* words in one command line */

/*
 * Splits s into words separated by blanks (space, tab, newline). '...' quotes everything up
 * to the next ', "..." quotes with backslash escaping ", \, $ and ` (any other backslash is
 * kept), and outside quotes a backslash makes the next character literal. Quotes can join
 * parts of one word (a'b c'd is "ab cd") and '' is an empty word. Nothing is expanded: no
 * variables, globs, tildes or command substitution.
 *
 * Returns 0 with *ret_argv, a NULL-terminated array of *ret_argc >= 1 words allocated as
 * one block (free(argv) frees all), or -EINVAL with the reason in err (unterminated quote,
 * trailing backslash, no words, too many words), or -ENOMEM.
 */
int cmdline_split(const char *s, char ***ret_argv, size_t *ret_argc, char *err, size_t errsize);

/*
 * Lookup function for cmdline_expand: the value of placeholder `name` ("input", "id",
 * "name" or "arg:KEY"), or NULL if there is none.
 */
typedef const char *(*cmdline_lookup_fn)(void *ud, const char *name);

/*
 * Substitutes the placeholders of one word: {input}, {id}, {name} and {arg:KEY} become what
 * lookup(ud, NAME) returns; {{ and }} are a literal { and }. KEY is 1..64 characters of
 * A-Z a-z 0-9 _ . -. A NULL lookup only checks the syntax (every placeholder becomes "").
 *
 * Returns 0 with *ret (malloc'd), -EINVAL for bad syntax (a lone { or }, an unknown name,
 * a bad KEY), -ENOENT when lookup returned NULL (err names the placeholder), or -ENOMEM.
 */
int cmdline_expand(const char *word, cmdline_lookup_fn lookup, void *ud, char **ret, char *err,
		   size_t errsize);
