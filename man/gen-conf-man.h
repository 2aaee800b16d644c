/* SPDX-License-Identifier: MIT */
/*
 * gen-conf-man's pieces: the page and its prose (gen-conf-man.c), the entries generated from
 * the tables (gen-conf-man-keys.c).
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "common/builtins.h"
#include "config/keys.h"

/* gen-conf-man.c: what builtin NAME does, in roff, or NULL if builtin_docs[] has no line. */
const char *man_builtin_doc(const char *name);

/* gen-conf-man-keys.c */

/* A .TP entry, in roff, for every key of section `kind`, in keys.h's order. */
void man_print_keys(enum config_section_kind kind, FILE *f);
/*
 * A .TP entry, in roff, for builtin b: its arguments with their types, and what it does with
 * {default:KEY} and {range:KEY} filled in from bh_builtin_args[].
 */
void man_print_builtin(enum bh_builtin b, FILE *f);
/* True once a builtin's text did not fit its arguments (gen-conf-man then exits 1). */
bool man_builtin_docs_bad(void);
