/* SPDX-License-Identifier: MIT */
/*
 * Every command of `bulkhead`, declared once: CLI_COMMANDS(X) is the commands that work on
 * their own (CLI_LOCAL_COMMANDS, kind LOCAL) followed by those that talk to bulkheadd
 * (CONTROL_COMMANDS of common/control-proto.h, which says what each field means). Expanded
 * by main.c (dispatch and `bulkhead --help`), commands.c (each command's usage) and
 * completion/gen-completion.c (the bash completion); the command-list test checks
 * bulkhead(1) against it. Pure, like control-proto.h.
 *
 * The local commands' own usage lines are in run.c, check-config.c and experiment.c; their
 * `usage` here lists the options the completion offers ("[--]": check-config ends its
 * options with --).
 */
#pragma once

#include "common/control-proto.h"

/* clang-format off */
#define CLI_LOCAL_COMMANDS(X)                                                                      \
	X(run, "run", LOCAL,                                                                       \
	  "CONFIG [--report-json FILE] [--quiet] [--state FILE [--retry-failed]]", NULL,         \
	  "run every job of CONFIG under supervision, then exit", "the report")                    \
	X(check_config, "check-config", LOCAL, "[--] FILE", "FILE",                                \
	  "validate FILE and print the effective config", "the config")                           \
	X(experiment, "experiment", LOCAL,                                                         \
	  "[--jobs N] [--threads T] [--job builtin:NAME] [--arg K=V]...\n"                         \
	  "[--crash-rate R] [--modes LIST] [--runs K] [--json FILE]\n"                             \
	  "[--svg FILE] [--quiet]", NULL,                                                          \
	  "run one workload as threads, threads+restart,\n"                                        \
	  "processes, hybrid and fork-per-job, and compare", "the comparison")
/* clang-format on */

#define CLI_COMMANDS(X) CLI_LOCAL_COMMANDS(X) CONTROL_COMMANDS(X)

/* Whether a kind of command talks to bulkheadd (and so takes --socket): CLI_DAEMON_##kind. */
#define CLI_DAEMON_LOCAL 0
#define CLI_DAEMON_REQUEST 1
#define CLI_DAEMON_CLIENT 1

/* The column where `bulkhead --help` starts a command's help. */
#define CLI_HELP_COLUMN 25
