/* SPDX-License-Identifier: MIT */
/*
 * stderr logging (see log.h). Each line is formatted into one buffer and written with one
 * write(2), so lines from the master and its workers never interleave mid-line.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define LOG_LEVEL_ITEM(name, level) name,
const char *const log_level_names[] = { LOG_LEVELS(LOG_LEVEL_ITEM, ) NULL };
#undef LOG_LEVEL_ITEM

int log_level_from_name(const char *name)
{
#define LOG_LEVEL_MATCH(n, level) \
	if (strcmp(name, n) == 0) \
		return level;
	LOG_LEVELS(LOG_LEVEL_MATCH, )
#undef LOG_LEVEL_MATCH
	return -EINVAL;
}

static int max_level = LOG_INFO;
static const char *program = "bulkhead";
static void (*before_write)(void);
static log_sink_fn sink;
static log_tap_fn tap;
static int tap_level = -1;
static int journal_stream = -1; /* -1 unknown, 0 no, 1 yes */

void log_set_max_level(int level)
{
	max_level = level;
}

int log_get_max_level(void)
{
	return max_level;
}

void log_set_program(const char *name)
{
	program = name;
}

void log_set_sink(log_sink_fn fn)
{
	sink = fn;
}

void log_set_tap(int level, log_tap_fn fn)
{
	tap = fn;
	tap_level = fn ? level : -1;
}

/* Whether a line of this level is formatted at all: written, or seen by the tap. */
static bool log_wanted(int level)
{
	return level <= max_level || level <= tap_level;
}

void log_set_before_write(void (*hook)(void))
{
	before_write = hook;
}

/* JOURNAL_STREAM=DEV:INODE names stderr when systemd connected it to journald. */
static bool stderr_is_journal(void)
{
	if (journal_stream < 0) {
		const char *e = getenv("JOURNAL_STREAM");
		unsigned long long dev, ino;
		struct stat st;

		journal_stream = 0;
		if (e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
		    st.st_dev == dev && st.st_ino == ino)
			journal_stream = 1;
	}
	return journal_stream == 1;
}

static void log_write(int level, const char *const *fields, const char *suffix,
		      const char *fmt, va_list ap)
{
	char msg[1800], line[2048];
	int n;

	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if (suffix && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", suffix);
	if (tap && level <= tap_level)
		tap(level, msg);
	if (level > max_level)
		return;
	if (sink) {
		sink(level, fields, msg);
		return;
	}
	if (stderr_is_journal())
		n = snprintf(line, sizeof(line), "<%d>%s\n", level, msg);
	else
		n = snprintf(line, sizeof(line), "%s: %s\n", program, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	if (before_write)
		before_write();
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	if (!log_wanted(level))
		return;
	va_start(ap, fmt);
	log_write(level, NULL, NULL, fmt, ap);
	va_end(ap);
}

void log_fields(int level, const char *const *fields, const char *fmt, ...)
{
	va_list ap;

	if (!log_wanted(level))
		return;
	va_start(ap, fmt);
	log_write(level, fields, NULL, fmt, ap);
	va_end(ap);
}

int log_errno(int level, int err, const char *fmt, ...)
{
	va_list ap;

	if (err > 0)
		err = -err;
	if (log_wanted(level)) {
		va_start(ap, fmt);
		log_write(level, NULL, strerror(-err), fmt, ap);
		va_end(ap);
	}
	return err;
}
