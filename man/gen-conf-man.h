/* SPDX-License-Identifier: MIT */
/*
 * gen-conf-man's pieces: the page (gen-conf-man.c) calls these for the entries generated
 * from the tables (gen-conf-man-keys.c).
 */
#pragma once

#include <stdio.h>

#include "common/builtins.h"
#include "config/keys.h"

/* A .TP entry, in roff, for every key of section `kind`, in keys.h's order. */
void man_print_keys(enum config_section_kind kind, FILE *f);
/* A .TP entry, in roff, for builtin b: its arguments with their types, and what it does. */
void man_print_builtin(const struct bh_builtin_info *b, FILE *f);
