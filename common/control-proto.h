/* SPDX-License-Identifier: MIT */
/*
 * The control protocol of bulkheadd (docs/control-protocol.md) in one header: what the
 * daemon's server (daemon/control*.c) and the `bulkhead` command (cli/) must agree on, and
 * where they meet (as tmux's client and server meet at its protocol header). Pure:
 * no json-c, nothing of daemon/ or cli/, so a generator (completion/gen-completion.c) and
 * the tests include it too.
 *
 * The version: `status` replies carry "protocol": CONTROL_PROTOCOL_VERSION. It is raised
 * only for a change an older client would misread (a request or reply member removed or
 * given another meaning); new commands and new members keep it, since clients read replies
 * leniently. The CLI refuses a daemon that says another version; a reply without the
 * member comes from a daemon older than the member, which spoke version 1.
 *
 * The commands: CONTROL_COMMANDS(X) lists every command of `bulkhead` that talks to the
 * daemon, in the order of its usage. Each is X(id, "name", kind, usage, synopsis, help,
 * output):
 *   id        a C identifier: the server's handler is control_cmd_<id>, the CLI's cmd_<id>
 *   name      the request's "command" and the CLI's command name
 *   kind      REQUEST: a request the daemon serves (the CLI command of that name sends it);
 *             CLIENT: the CLI's own, made of other requests (top sends status)
 *   usage     the CLI's arguments: "Usage: bulkhead NAME USAGE [--socket PATH]"; every
 *             --option in it is one the command takes (the bash completion offers them)
 *   synopsis  the shorter form in the list of `bulkhead --help`, or NULL for usage
 *   help      what it does, for that list ('\n' continues it on the next line)
 *   output    what it writes on stdout, for "bulkhead: writing OUTPUT to stdout: ..."
 * Expanded by: the server's dispatch table (daemon/control-commands.c); the CLI's dispatch
 * and list of commands (cli/main.c), each command's usage (cli/commands.c) and the handlers'
 * prototypes (cli/cli.h); the bash completion (completion/gen-completion.c, at build time).
 * Checked against bulkhead(1) and docs/control-protocol.md by the command-list test.
 */
#pragma once

#include "common/log.h"

#define CONTROL_PROTOCOL_VERSION 1

#define CONTROL_STR_(x) #x
#define CONTROL_STR(x) CONTROL_STR_(x)

/* Limits both ends know (the server enforces them, the CLI checks them before sending). */
#define CONTROL_REQUEST_MAX (64u * 1024u) /* one request line, '\n' excluded */
#define CONTROL_JOBS_LIMIT_DEFAULT 1000 /* jobs listed when a request gives no "limit" */
#define CONTROL_JOBS_LIMIT_MAX 100000 /* and at most; also the ids of one cancel or wait */
#define CONTROL_SUBMIT_MAX 100000 /* jobs in one submit ("count" or "inputs") */
#define CONTROL_KEY_MAX 128 /* submit's "key": printable ASCII, no spaces */
#define CONTROL_SUBMIT_RUN_MAX 16000 /* bytes of submit's "run" (an exec: command line) */
#define CONTROL_SUBMIT_ARGS_MAX 16000 /* bytes of a job's args ("k=v k=v", once merged) */
#define CONTROL_LOGS_DEFAULT 100 /* logs: lines, by default */
#define CONTROL_LOGS_MAX 1000    /* and at most */
#define CONTROL_WAIT_LIST_MAX 1000 /* jobs listed in a wait reply (beyond: the unexpected) */

/*
 * The faults `inject` raises, X(name) with SEP between two entries, as LOG_LEVELS:
 * CONTROL_FAULT_NAMES("|") is the string literal "segv|abort|hang|kill|leak".
 */
#define CONTROL_FAULTS(X, SEP) X("segv") SEP X("abort") SEP X("hang") SEP X("kill") SEP X("leak")
#define CONTROL_FAULT_NAME(name) name
#define CONTROL_FAULT_NAMES(sep) CONTROL_FAULTS(CONTROL_FAULT_NAME, sep)

/* clang-format off */
#define CONTROL_COMMANDS(X)                                                                        \
	X(status, "status", REQUEST, "[--json]", NULL,                                             \
	  "the daemon, its jobs, pools and workers", "the status")                                 \
	X(metrics, "metrics", REQUEST, "", NULL,                                                   \
	  "the daemon's metrics in the Prometheus text format", "the metrics")                     \
	X(jobs, "jobs", REQUEST,                                                                   \
	  "[ID] [--state STATE[,STATE...]] [--group GROUP] [--since WHEN] [--reverse] "           \
	  "[--limit N] [--json]", NULL,                                                            \
	  "list jobs (ID: one job whole); STATE: queued running done\n"                           \
	  "failed crashed timed_out cancelled; WHEN: 10min (ago), @SECONDS,\n"                     \
	  "YYYY-MM-DD [HH:MM[:SS]]; N: 1.." CONTROL_STR(CONTROL_JOBS_LIMIT_MAX)                    \
	  " (default " CONTROL_STR(CONTROL_JOBS_LIMIT_DEFAULT) ")", "the jobs")                    \
	X(reload, "reload", REQUEST, "[--json]", NULL,                                             \
	  "re-read the config (as SIGHUP does); says what changed, and\n"                          \
	  "warns of what waits for a restart", "the reply")                                        \
	X(log_level, "log-level", REQUEST, "LEVEL [--json]", NULL,                                 \
	  "set the log level: " LOG_LEVEL_NAMES(" "), "the reply")                                 \
	X(top, "top", CLIENT, "[--interval SECONDS] [--count N]", NULL,                            \
	  "live view; one line per refresh when not on a terminal", "the view")                    \
	X(submit, "submit", REQUEST,                                                               \
	  "GROUP | --pool POOL --run RUN, [--count N | --input FILE...] [--arg K=V]... "          \
	  "[--key KEY] [--json]",                                                                  \
	  "GROUP | --pool POOL --run RUN [--count N] [--arg K=V]...",                              \
	  "queue jobs: more of a config group, or a new group; RUN: builtin:NAME,\n"              \
	  "exec:COMMAND ARGS... (up to " CONTROL_STR(CONTROL_SUBMIT_RUN_MAX) " bytes) or "        \
	  "plugin:PATH:SYMBOL;\nKEY: the same key again returns the same ids (a retry\n"          \
	  "after a lost reply)", "the job ids")                                                    \
	X(logs, "logs", REQUEST, "ID | GROUP [--lines N] [--follow] [--json]", NULL,               \
	  "a job's or a group's log lines (bulkhead_job_log(), commands'\n"                        \
	  "output); N: the last 1.." CONTROL_STR(CONTROL_LOGS_MAX) " (default "                    \
	  CONTROL_STR(CONTROL_LOGS_DEFAULT) "); --follow: then new ones as\n"                      \
	  "they come", "the lines")                                                                \
	X(wait, "wait", REQUEST, "ID... | --group GROUP [--timeout DURATION] [--json]",           \
	  "ID... | --group GROUP [--timeout DURATION]",                                            \
	  "wait until those jobs have ended (exit 124: DURATION passed first)", "the jobs")       \
	X(cancel, "cancel", REQUEST, "ID... | --group GROUP [--json]", "ID... | --group GROUP",    \
	  "cancel jobs (running ones are told to stop)", "the reply")                              \
	X(restart, "restart", REQUEST, "POOL[/INDEX] [--wait] [--json]", NULL,                     \
	  "replace a pool's workers (or one) gracefully; --wait: until\n"                         \
	  "the new ones are ready", "the reply")                                                   \
	X(inject, "inject", REQUEST, "POOL[/INDEX] " CONTROL_FAULT_NAMES("|") " [--json]", NULL,   \
	  "make a worker die of a real fault", "the reply")
/* clang-format on */

/*
 * For an X that keeps only the requests: CONTROL_IF_##kind(text) is the text for REQUEST,
 * nothing for CLIENT.
 */
#define CONTROL_IF_REQUEST(...) __VA_ARGS__
#define CONTROL_IF_CLIENT(...)
