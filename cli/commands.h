/* SPDX-License-Identifier: MIT */
/*
 * What the commands that talk to bulkheadd share (cmd-status.c, cmd-jobs.c, cmd-top.c): their
 * usage and argument checks, messages, one request and its reply (commands.c), lenient
 * reading of replies (here), and tables (table.c). Exit codes: see cli.h.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/strutil.h"

#define TABLE_COLS_MAX 12

/* ---- usage (commands.c) ---- */

/* "Usage: bulkhead NAME ARGS [--socket PATH]" from CONTROL_COMMANDS. */
void cli_usage(const char *name, FILE *f);
/* Prints "bulkhead NAME: MESSAGE" and the usage on stderr; returns EXIT_USAGE. */
int cli_usage_error(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For getopt_long's '?' and ':' (optstring starts with ':'): the usage error. */
int cli_bad_option(const char *name, int o, char **argv);
/* An integer min..max, the whole string. */
bool cli_parse_long(const char *s, long min, long max, long *ret);
/*
 * For commands with --socket, --help, --json (json non-NULL; also --wait with wait non-NULL)
 * and fixed positional arguments named by arg_names (NULL-terminated; NULL: none), into
 * args[]. Returns -1 to go on, else an exit code.
 */
int cli_parse_simple(const char *name, int argc, char **argv, const char **socket, bool *json,
		     bool *wait, const char *const *arg_names, const char **args);
/* A reply as one line of JSON on stdout (--json). */
void cli_print_json(json_object *reply);

/* Options that several commands share. */
struct cli_opts {
	const char *socket;
	bool json;
};

/* ---- messages (commands.c) ---- */

/* Runs before an error is printed: `top` gives the terminal back first. */
extern void (*cli_before_error)(void);
/* "bulkhead: MESSAGE" on stderr. */
void cli_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "out of memory", exit EXIT_CONTROL_FAILED. */
void cli_oom(void) __attribute__((noreturn));

/* ---- talking to the daemon (commands.c) ---- */

struct control_client;

struct cli_session {
	char *path;
	struct control_client *c;
};

/* Connects; on failure says why on stderr. 0 or EXIT_CONTROL_FAILED. */
int cli_session_open(struct cli_session *s, const char *socket_opt, int64_t deadline);
void cli_session_close(struct cli_session *s);
/*
 * Parses a reply line: a JSON object with a boolean "ok", from a daemon that speaks our
 * protocol (common/control-proto.h). NULL (and a message naming the socket) if it is not.
 */
json_object *cli_parse_reply(const char *path, const char *line);
bool cli_reply_ok(json_object *reply);
/* The "error" text of a reply, or a stand-in. */
const char *cli_reply_error(json_object *reply);
/*
 * One request, one reply, within CONTROL_CLIENT_TIMEOUT_MS: connects, sends `request`
 * (consumed), reads and parses the reply. Returns 0 with the reply (ok true or false) in
 * *ret_reply and its line in *ret_line (if non-NULL), or EXIT_CONTROL_FAILED after a message
 * on stderr.
 */
int cli_call(const char *socket_opt, json_object *request, json_object **ret_reply,
	     char **ret_line);
/*
 * For commands that stop on a refusal: an "ok": false reply is said on stderr (the daemon's
 * error text), freed, and EXIT_CONTROL_FAILED returned. On 0 the reply is ok.
 */
int cli_call_ok(const char *socket_opt, json_object *request, json_object **ret_reply,
		char **ret_line);
/*
 * cli_call_ok with a deadline of its own that is the command's to keep (wait --timeout):
 * EXIT_TIMEOUT, with nothing said, when it passes before the reply.
 */
int cli_call_wait(const char *socket_opt, json_object *request, int64_t deadline,
		  json_object **ret_reply);
/* cli_call_ok with a deadline of its own (INT64_MAX: none). */
int cli_call_until_ok(const char *socket_opt, json_object *request, int64_t deadline,
		      json_object **ret_reply, char **ret_line);
/* {"command": COMMAND}, and a string member added to a request (out of memory: exits). */
json_object *cli_request(const char *command);
void cli_add_string(json_object *o, const char *key, const char *value);

/* ---- status (cmd-status.c), also for top ---- */

/* "jobs: 100 total, 90 done, ..." (no newline); `wrap`: the end states on a second line. */
void cli_print_jobs_counts(FILE *f, json_object *jobs, bool wrap);
/* "workers: 14 started, 9 restarts, 0 worker faults; deaths: SIGSEGV 3\n" */
void cli_print_workers(FILE *f, json_object *reply);
/* "pid 1234, up 3m20s, ready" */
void cli_print_daemon(FILE *f, json_object *reply);
/*
 * The pools and their workers, each pool followed by its workers' table, indented. `busy`
 * (top): running jobs as busy/threads, for the pools too.
 */
void cli_print_pools(FILE *f, json_object *reply, bool busy);

/* ---- tables (table.c): columns as wide as their widest cell, two spaces apart ---- */

struct table {
	size_t n_cols, n_rows;
	const char *const *heads;
	const char *align; /* 'l' or 'r' per column */
	char **cells; /* n_rows * n_cols, strdup'd */
	size_t width[TABLE_COLS_MAX];
};

void table_init(struct table *t, const char *const *heads, const char *align);
/* Adds a row of n_cols cells (NULL shows as "-"). */
void table_add(struct table *t, const char *const *row);
void table_print_row(const struct table *t, FILE *f, const char *indent, const char *const *cells);
/* The header, then rows from..to-1. */
void table_print(const struct table *t, FILE *f, const char *indent, size_t from, size_t to);
void table_free(struct table *t);

/* ---- reading replies leniently ---- */

static inline json_object *jget(json_object *o, const char *key)
{
	json_object *v;

	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static inline const char *jstr(json_object *o, const char *key)
{
	json_object *v = jget(o, key);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static inline bool jnum(json_object *o, const char *key, double *ret)
{
	json_object *v = jget(o, key);

	if (!v ||
	    !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return false;
	*ret = json_object_get_double(v);
	return true;
}

/* A number as an integer, 0 if missing. */
static inline int64_t jint0(json_object *o, const char *key)
{
	double v;

	return jnum(o, key, &v) ? (int64_t)v : 0;
}

static inline bool jbool(json_object *o, const char *key)
{
	json_object *v = jget(o, key);

	return v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

static inline size_t jlen(json_object *array)
{
	return array && json_object_is_type(array, json_type_array)
		       ? json_object_array_length(array)
		       : 0;
}

/* An integer field as text, "-" if missing. */
static inline const char *fmt_int(char *buf, size_t size, json_object *o, const char *key)
{
	double v;

	if (!jnum(o, key, &v))
		return "-";
	return str_printf(buf, size, "%lld", (long long)v);
}

/*
 * A time field (seconds since the epoch, as the daemon's job views and log lines give them)
 * as local "YYYY-MM-DD HH:MM:SS.mmm", or "-" if missing or 0.
 */
const char *fmt_when(char *buf, size_t size, json_object *o, const char *key);

/* A string field, "-" if missing or empty. */
static inline const char *fmt_str(json_object *o, const char *key)
{
	const char *s = jstr(o, key);

	return s && *s ? s : "-";
}

/* 12.5s, 3m20s, 1h02m, 2d03h. */
static inline const char *fmt_duration(char *buf, size_t size, double secs)
{
	long s = (long)secs;

	if (!(secs >= 0) || secs > 1e12)
		return "-";
	if (secs < 60)
		return str_printf(buf, size, "%.1fs", secs);
	if (s < 3600)
		return str_printf(buf, size, "%ldm%02lds", s / 60, s % 60);
	if (s < 86400)
		return str_printf(buf, size, "%ldh%02ldm", s / 3600, s % 3600 / 60);
	return str_printf(buf, size, "%ldd%02ldh", s / 86400, s % 86400 / 3600);
}
