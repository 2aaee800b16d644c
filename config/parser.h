/* SPDX-License-Identifier: MIT */
/*
 * Inside config/ only: the state of one config_load(), shared by the pieces of the parser.
 * config.h is the interface; nothing outside config/ includes this file.
 *
 *   config.c      config_load(): runs the pieces below in order and collects the errors;
 *                 the key table of keys.h, config_free() and the small queries
 *   read.c        the bounded file reader, and the line reader that feeds libinih (lines
 *                 counted, CRLF/BOM/NUL, over-long lines, comments, syntax, [section] headers)
 *   values.c      the libinih handler (raw values per section and key, with their lines) and
 *                 their conversion by type, as keys.h declares them
 *   validate.c    the whole config: sections into a struct config, missing pools, inputs,
 *                 spool and output, the job count
 *   run-kinds.c   what `run` says: builtin (and its args), plugin:PATH:SYMBOL, exec:COMMAND
 *   print.c       config_print(): the effective config
 *   load-checked.c  config_load_checked(): load, probe, print the errors, the exit code
 *
 * Invariants: parsing only collects raw strings (struct raw_section); validation converts
 * them into a new struct config; every error goes through config_error(), which keeps the
 * first CONFIG_ERRORS_MAX by line. If there is any, no config is returned.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/config.h"
#include "config/keys.h"

#define CONFIG_SHOW_VALUE_MAX 64 /* bytes of a value quoted in a message */

struct raw_value {
	char *value; /* NULL: not set */
	size_t len;
	unsigned line; /* of the key */
	unsigned last_line; /* of its last continuation line, 0 if none */
	unsigned semicolon_line; /* a line of it that a ' ;' comment cut short, 0 if none */
};

struct raw_section {
	enum config_section_kind kind;
	char name[CONFIG_NAME_MAX + 1];
	unsigned line;
	struct raw_value values[_CONFIG_KEY_MAX];
};

struct config_message {
	unsigned line;
	unsigned seq;
	char *text;
};

struct parser {
	const char *name; /* for messages */
	char *dir; /* absolute directory of the file: relative paths are relative to it */
	FILE *f; /* the stream read, or NULL: */
	const char *mem; /* the file's bytes, read by config_load() */
	size_t mem_len, mem_pos;
	int io_error; /* errno of a read error, 0 if none */

	/* The current physical line, as read. */
	unsigned lineno;
	char line[CONFIG_LINE_MAX + 2];

	/* What the handler needs to know about the line just handed to inih. */
	bool have_prev_key; /* mirrors inih's prev_name: an indented line continues it */
	bool continuation; /* the line is a continuation of the previous key's value */
	bool substituted; /* too long for inih: use key/value below */
	bool semicolon; /* a ' ;' comment was cut off the line */
	const char *key;
	const char *value;

	/* Sections, in file order. cur is NULL before the first header. */
	struct raw_section *sections;
	unsigned n_sections, n_pools, n_groups;
	struct raw_section *cur;
	bool seen_header; /* any section header, good or bad */
	bool cur_ignored; /* the current header was bad: drop its keys quietly */
	int last_key; /* key id of the last key line in cur, -1 if none or bad */

	/* Errors: the CONFIG_ERRORS_MAX first by line, and how many in all. */
	struct config_message errors[CONFIG_ERRORS_MAX];
	unsigned n_errors, n_errors_total, seq;
	bool oom;
};

/* config.c */

/* config_load() on the len bytes at mem, named `name` in messages (and as its path). */
int config_load_mem(const char *mem, size_t len, const char *name, struct config **ret,
		    char **ret_errors);

/* Records "NAME:LINE: message" (line 0: "NAME: message"); out of memory sets p->oom. */
void config_error(struct parser *p, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "[pool main]" for messages. */
const char *config_section_label(const struct raw_section *s, char *buf, size_t size);
/* A value quoted in a message: at most CONFIG_SHOW_VALUE_MAX bytes, then "...". */
const char *config_show_value(const char *v, char *buf, size_t size);

/* read.c */

/*
 * The whole of a regular file of at most CONFIG_FILE_MAX bytes, read without ever waiting.
 * Returns 0 and a malloc'd *ret_buf, or -errno and *ret_errors (see config_load()).
 */
int config_read_file(const char *path, char **ret_buf, size_t *ret_len, char **ret_errors);
/* "NAME: WHAT: strerror(err)\n" into *ret_errors (if not NULL); returns -err. */
int config_io_error(const char *name, int err, const char *what, char **ret_errors);
/*
 * Feeds p's file, line by line, through libinih into config_ini_handler(). Returns what
 * ini_parse_stream() returns; errors are in p, a read error in p->io_error.
 */
int config_read_ini(struct parser *p);

/* values.c */

/* ini_handler: one key line or continuation line, in the section the reader recorded. */
int config_ini_handler(void *user, const char *section, const char *name, const char *value);
/* The longest value key may have: config_print() writes "key = value" on one line. */
size_t config_value_max(int key);
/*
 * "demo.conf:12: [pool main] threads = abc: expected an integer 1..256", at the key's line,
 * or at the section's line (with "(the default)") when the key is not set.
 */
void config_value_error(struct parser *p, const struct raw_section *s, int key, const char *value,
			const char *msg);
/*
 * Fills base from section s (NULL: every default), key by key, reporting each bad value;
 * bad[k] says which keys of this section had one.
 */
void config_convert_section(struct parser *p, const struct raw_section *s,
			    enum config_section_kind kind, void *base, bool bad[_CONFIG_KEY_MAX]);

/* validate.c */

/* Fills c from p's sections: every value, every pool, every job group, their checks. */
void config_validate(struct parser *p, struct config *c);
/* Replaces the string field *field by its absolute form; false when out of memory. */
bool config_make_absolute(struct parser *p, char **field, bool glob);

/* run-kinds.c */

/*
 * Sets g->kind from g->run (builtin:, plugin: or exec:). Returns false, after saying why
 * unless bad[run] says it was said already, when it is none of them.
 */
bool config_run_kind(struct parser *p, const struct raw_section *s, struct group_config *g,
		     const bool bad[_CONFIG_KEY_MAX]);
/* Checks what g->run names, and g->args against it; a plugin's PATH is made absolute. */
void config_check_run(struct parser *p, const struct raw_section *s, struct group_config *g,
		      const bool bad[_CONFIG_KEY_MAX]);
