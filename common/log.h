/* SPDX-License-Identifier: MIT */
/*
 * Logging for the programs (not for the libraries, which return errors). Lines go to stderr,
 * with a "<N>" syslog priority prefix when stderr is connected to journald (JOURNAL_STREAM),
 * plain otherwise. A program may install a hook that runs before each line is written (the
 * progress line of `bulkhead run` clears itself there).
 */
#pragma once

#include <errno.h>
#include <syslog.h>

/*
 * The levels a user names (the config's log_level, the control request and command
 * `log-level`, the bash completion, the docs), declared once, most verbose first:
 * X(name, syslog level), with SEP between two entries. LOG_LEVEL_NAMES(" ") is the string
 * literal "debug info notice warning err"; LOG_LEVEL_NAMES("|") the same with bars.
 */
/* clang-format off */
#define LOG_LEVELS(X, SEP)                                                                  \
	X("debug", LOG_DEBUG) SEP X("info", LOG_INFO) SEP X("notice", LOG_NOTICE) SEP        \
	X("warning", LOG_WARNING) SEP X("err", LOG_ERR)
/* clang-format on */
#define LOG_LEVEL_NAME(name, level) name
#define LOG_LEVEL_NAMES(sep) LOG_LEVELS(LOG_LEVEL_NAME, sep)

/* The names of LOG_LEVELS, NULL-terminated (for str_did_you_mean). */
extern const char *const log_level_names[];

/* The syslog level called `name` in LOG_LEVELS, or -EINVAL. */
int log_level_from_name(const char *name);

void log_set_max_level(int level);
int log_get_max_level(void);
void log_set_program(const char *name);
void log_set_before_write(void (*hook)(void));

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Like log_msg, with structured fields for the journal: "POOL=main", "JOB=segv#1", ...
 * (NULL-terminated; NULL entries before the end are not allowed). On stderr only the message
 * is written; a sink (the daemon's journald sink) may keep the fields.
 */
void log_fields(int level, const char *const *fields, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Where formatted lines go instead of stderr. NULL: back to stderr. */
typedef void (*log_sink_fn)(int level, const char *const *fields, const char *message);
void log_set_sink(log_sink_fn sink);

/*
 * A tap sees every line at `level` or more severe, whatever the max level (the daemon's
 * recent events for `top`); it runs before the line is written. NULL: none.
 */
typedef void (*log_tap_fn)(int level, const char *message);
void log_set_tap(int level, log_tap_fn tap);

/* Logs with ": strerror(-err)" appended and returns err (negative), systemd style. */
int log_errno(int level, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_error_errno(err, ...) log_errno(LOG_ERR, err, __VA_ARGS__)
#define log_warning_errno(err, ...) log_errno(LOG_WARNING, err, __VA_ARGS__)
