/* SPDX-License-Identifier: MIT */
/*
 * Reads bulkhead.conf into a struct config, or fails as a whole with messages that name
 * FILE:LINE, the section and the key. Keys, types, defaults and ranges come from keys.h.
 *
 * libinih does the INI parsing, fed through ini_parse_stream() by our own reader, because
 * Debian's build (r55, INI_HANDLER_LINENO=0, INI_MAX_LINE=200) gives the handler no line
 * numbers, silently cuts lines at 199 bytes, reports only the first syntax error, only knows
 * ';' inline comments and never tells the handler about a section that has no keys. So the
 * reader reads one physical line at a time and:
 *   - counts lines, so the handler knows where it is;
 *   - strips a UTF-8 BOM on line 1 and the '\r' of CRLF endings;
 *   - refuses NUL bytes and lines longer than CONFIG_LINE_MAX bytes (the line is reported
 *     and inih is handed an empty line instead, so parsing goes on);
 *   - strips inline comments: '#' or ';' at the start of a line or after whitespace;
 *   - checks the syntax of each line itself (section headers, "key = value"), so that
 *     every bad line gets its own message, and records each [section] header, so that a
 *     section without keys still exists;
 *   - hands inih a canonical form of the line. A key line too long for inih's 200-byte
 *     buffer is handed over with an empty value, and the handler takes the value from the
 *     reader instead: lines up to CONFIG_LINE_MAX bytes work, nothing is ever cut.
 * Continuation lines (indented, right after a key line) are joined to the value with one
 * space; the reader mirrors inih's rule, so the handler knows a continuation from a
 * duplicate key.
 *
 * Parsing only collects raw strings per section and key (with their lines). Validation then
 * converts them, generically by type, into a new struct config. Errors are collected, sorted
 * by line, and at most CONFIG_ERRORS_MAX are reported; if there was any, no config is
 * returned.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/builtins.h"
#include "common/cmdline.h"
#include "common/strutil.h"
#include "common/units.h"
#include "config/config.h"
#include "config/keys.h"

#define CONFIG_KEY_NAME_MAX 64 /* longer key names are a syntax error */
#define CONFIG_SHOW_VALUE_MAX 64 /* bytes of a value quoted in a message */
#define CONFIG_ERROR_LINE_MAX 1024 /* one message */
#define CONFIG_SYMBOL_MAX 255 /* length of SYMBOL in plugin:PATH:SYMBOL */
#define CONFIG_ARG_KEY_MAX 64 /* length of a key in args of plugin and exec jobs */
#define CONFIG_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin" /* when PATH is not set */

const struct config_key config_keys[_CONFIG_KEY_MAX] = {
#define CONFIG_KEY_INFO(sect, key, fld, typ, def_, min_, max_, choices_, doc_) \
	[CONFIG_KEY_##sect##_##key] = {                                        \
		.section = CONFIG_SECTION_##sect,                              \
		.name = #key,                                                  \
		.type = CONFIG_TYPE_##typ,                                     \
		.offset = offsetof(CONFIG_STRUCT_##sect, fld),                 \
		.def = def_,                                                   \
		.min = min_,                                                   \
		.max = max_,                                                   \
		.choices = choices_,                                           \
		.doc = doc_,                                                   \
	},
	CONFIG_KEYS(CONFIG_KEY_INFO)
#undef CONFIG_KEY_INFO
};

const char *const config_section_names[_CONFIG_SECTION_MAX] = {
	[CONFIG_SECTION_SUPERVISOR] = "supervisor",
	[CONFIG_SECTION_POOL] = "pool",
	[CONFIG_SECTION_JOB] = "job",
};

/* ENUM fields are written as int. */
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum pool_failure_action) == sizeof(int), "enum size");
_Static_assert(sizeof(enum job_state) == sizeof(int), "enum size");

/* A DURATION_RANGE fills two adjacent usec_t fields. */
_Static_assert(offsetof(struct pool_config, backoff_max) ==
		       offsetof(struct pool_config, backoff_min) + sizeof(usec_t),
	       "backoff_min and backoff_max must be adjacent");

struct raw_value {
	char *value; /* NULL: not set */
	size_t len;
	unsigned line; /* of the key */
	unsigned last_line; /* of its last continuation line, 0 if none */
};

struct raw_section {
	enum config_section_kind kind;
	char name[CONFIG_NAME_MAX + 1];
	unsigned line;
	struct raw_value values[_CONFIG_KEY_MAX];
};

struct error {
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
	struct error errors[CONFIG_ERRORS_MAX];
	unsigned n_errors, n_errors_total, seq;
	bool oom;
};

static void parser_error(struct parser *p, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void parser_error(struct parser *p, unsigned line, const char *fmt, ...)
{
	char msg[CONFIG_ERROR_LINE_MAX], *text;
	struct error e;
	unsigned i;
	va_list ap;

	p->n_errors_total++;
	/* Keep the errors sorted by (line, seq); when full, drop the last one. */
	if (p->n_errors == CONFIG_ERRORS_MAX) {
		if (p->errors[CONFIG_ERRORS_MAX - 1].line <= line)
			return;
		free(p->errors[CONFIG_ERRORS_MAX - 1].text);
		p->n_errors--;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0) {
		if (asprintf(&text, "%s:%u: %s", p->name, line, msg) < 0)
			text = NULL;
	} else if (asprintf(&text, "%s: %s", p->name, msg) < 0) {
		text = NULL;
	}
	if (!text) {
		p->oom = true;
		return;
	}
	e = (struct error){ .line = line, .seq = p->seq++, .text = text };
	for (i = p->n_errors; i > 0 && p->errors[i - 1].line > line; i--)
		p->errors[i] = p->errors[i - 1];
	p->errors[i] = e;
	p->n_errors++;
}

static bool has_errors(const struct parser *p)
{
	return p->n_errors_total > 0 || p->oom;
}

/* "[pool main]" for messages. */
static const char *section_label(const struct raw_section *s, char *buf, size_t size)
{
	if (s->kind == CONFIG_SECTION_SUPERVISOR)
		return str_printf(buf, size, "[supervisor]");
	return str_printf(buf, size, "[%s %s]", config_section_names[s->kind], s->name);
}

/* A value quoted in a message: at most CONFIG_SHOW_VALUE_MAX bytes, then "...". */
static const char *show_value(const char *v, char *buf, size_t size)
{
	if (strlen(v) > CONFIG_SHOW_VALUE_MAX)
		return str_printf(buf, size, "%.*s...", CONFIG_SHOW_VALUE_MAX, v);
	return str_printf(buf, size, "%s", v);
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > CONFIG_NAME_MAX)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static int find_key(enum config_section_kind kind, const char *name)
{
	for (int i = 0; i < _CONFIG_KEY_MAX; i++)
		if (config_keys[i].section == kind && strcmp(config_keys[i].name, name) == 0)
			return i;
	return -ENOENT;
}

static bool is_space(char c)
{
	return isspace((unsigned char)c);
}

static char *skip_space(char *s)
{
	while (*s && is_space(*s))
		s++;
	return s;
}

static void strip_trailing_space(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && is_space(s[n - 1]))
		s[--n] = '\0';
}

/* Cuts s at the first '#' or ';' that starts it or follows whitespace. */
static void strip_comment(char *s)
{
	for (char *c = s; *c; c++)
		if ((*c == '#' || *c == ';') && (c == s || is_space(c[-1]))) {
			*c = '\0';
			break;
		}
	strip_trailing_space(s);
}

/*
 * Reads one physical line into p->line, without its "\n" or "\r\n". Returns its length,
 * or -1 at the end of the file. *ret_total is the length it really had (it is not stored
 * beyond CONFIG_LINE_MAX + 1 bytes) and *ret_nul whether it held a NUL byte.
 */
static int next_char(struct parser *p)
{
	if (!p->f)
		return p->mem_pos < p->mem_len ? (unsigned char)p->mem[p->mem_pos++] : EOF;
	return getc_unlocked(p->f);
}

static ssize_t read_physical_line(struct parser *p, size_t *ret_total, bool *ret_nul)
{
	size_t n = 0, total = 0;
	bool nul = false;
	int c, last = EOF;

	for (;;) {
		c = next_char(p);
		if (c == EOF || c == '\n')
			break;
		if (c == '\0')
			nul = true;
		if (n < CONFIG_LINE_MAX + 1)
			p->line[n++] = (char)c;
		total++;
		last = c;
	}
	if (c == EOF && p->f && ferror(p->f)) {
		p->io_error = errno > 0 ? errno : EIO;
		return -1;
	}
	if (c == EOF && total == 0)
		return -1;
	p->line[n] = '\0';

	/* A UTF-8 byte order mark at the start of the file. */
	if (p->lineno == 0 && n >= 3 && memcmp(p->line, "\xef\xbb\xbf", 3) == 0) {
		memmove(p->line, p->line + 3, n - 2);
		n -= 3;
		total -= 3;
	}
	/* CRLF: the '\r' is not part of the line (nor of its length). */
	if (last == '\r') {
		total--;
		if (n > total)
			p->line[n = total] = '\0';
	}
	*ret_total = total;
	*ret_nul = nul;
	return (ssize_t)n;
}

static void begin_section(struct parser *p, char *header)
{
	char *end, *inside, *kind, *name, label[CONFIG_NAME_MAX * 2 + 64];
	static const char *const kinds[] = { "supervisor", "pool", "job", NULL };
	enum config_section_kind k;
	struct raw_section *s;
	const char *hint;
	unsigned line = p->lineno;
	int i;

	p->cur = NULL;
	p->cur_ignored = true;
	p->last_key = -1;
	p->seen_header = true;

	end = strchr(header, ']');
	if (!end) {
		parser_error(p, line, "syntax error: section header without ']'");
		return;
	}
	if (*skip_space(end + 1) != '\0') {
		parser_error(p, line, "syntax error: text after the section header's ']'");
		return;
	}
	*end = '\0';
	inside = skip_space(header + 1);
	strip_trailing_space(inside);
	kind = inside;
	name = kind + strcspn(kind, " \t\v\f\r");
	if (*name) {
		*name++ = '\0';
		name = skip_space(name);
	}

	for (i = 0; kinds[i]; i++)
		if (strcmp(kind, kinds[i]) == 0)
			break;
	if (!kinds[i]) {
		hint = str_did_you_mean(kind, kinds);
		if (*kind == '\0')
			parser_error(p, line,
				     "syntax error: empty section header (expected [supervisor], "
				     "[pool NAME] or [job NAME])");
		else if (hint)
			parser_error(p, line, "unknown section [%s%s%s] (did you mean '%s'?)", kind,
				     *name ? " " : "", name, hint);
		else
			parser_error(
				p, line,
				"unknown section [%s%s%s] (expected [supervisor], [pool NAME] or "
				"[job NAME])",
				kind, *name ? " " : "", name);
		return;
	}
	k = (enum config_section_kind)i;

	if (k == CONFIG_SECTION_SUPERVISOR && *name) {
		parser_error(p, line, "[supervisor %s]: [supervisor] takes no name", name);
		return;
	}
	if (k != CONFIG_SECTION_SUPERVISOR && !*name) {
		parser_error(p, line, "[%s]: a name is required: [%s NAME]", kind, kind);
		return;
	}
	if (k != CONFIG_SECTION_SUPERVISOR && !valid_name(name)) {
		parser_error(p, line,
			     "[%s %s]: bad name: expected 1..%d characters of A-Z a-z 0-9 _ . -",
			     kind, name, CONFIG_NAME_MAX);
		return;
	}

	for (unsigned j = 0; j < p->n_sections; j++) {
		s = &p->sections[j];
		if (s->kind == k && strcmp(s->name, name) == 0) {
			parser_error(p, line, "duplicate section %s (first on line %u)",
				     section_label(s, label, sizeof(label)), s->line);
			return;
		}
	}
	if (k == CONFIG_SECTION_POOL && p->n_pools >= CONFIG_POOLS_MAX) {
		parser_error(p, line, "[pool %s]: too many pools (at most %d)", name,
			     CONFIG_POOLS_MAX);
		return;
	}
	if (k == CONFIG_SECTION_JOB && p->n_groups >= CONFIG_GROUPS_MAX) {
		parser_error(p, line, "[job %s]: too many job sections (at most %d)", name,
			     CONFIG_GROUPS_MAX);
		return;
	}

	s = reallocarray(p->sections, p->n_sections + 1, sizeof(*s));
	if (!s) {
		p->oom = true;
		return;
	}
	p->sections = s;
	s = &p->sections[p->n_sections++];
	memset(s, 0, sizeof(*s));
	s->kind = k;
	s->line = line;
	str_printf(s->name, sizeof(s->name), "%s", name);
	if (k == CONFIG_SECTION_POOL)
		p->n_pools++;
	else if (k == CONFIG_SECTION_JOB)
		p->n_groups++;
	p->cur = s;
	p->cur_ignored = false;
}

/* Copies text plus "\n" into inih's buffer, which has room for num - 1 characters. */
static char *hand_over(char *buf, int num, const char *text)
{
	str_printf(buf, (size_t)num, "%s\n", text);
	return buf;
}

/*
 * ini_reader: returns one line per physical line of the file, in the canonical form
 * described at the top. Also the place where line-level errors are found.
 */
static char *reader(char *buf, int num, void *stream)
{
	struct parser *p = stream;
	size_t total, room = (size_t)num - 2; /* room for the text, besides "\n" and NUL */
	bool nul, indented;
	ssize_t n;
	char *s, *eq;

	assert(num >= 64);
	p->continuation = false;
	p->substituted = false;
	p->key = p->value = NULL;

	n = read_physical_line(p, &total, &nul);
	if (n < 0)
		return NULL;
	p->lineno++;

	if (nul) {
		parser_error(p, p->lineno, "NUL byte in line (not a text file?)");
		return hand_over(buf, num, "");
	}
	if (total > CONFIG_LINE_MAX) {
		parser_error(p, p->lineno, "line too long (%zu bytes, at most %d)", total,
			     CONFIG_LINE_MAX);
		return hand_over(buf, num, "");
	}

	s = skip_space(p->line);
	indented = s > p->line;
	if (*s == '\0' || *s == '#' || *s == ';')
		return hand_over(buf, num, "");
	strip_comment(s);

	if (*s == '[') {
		/* Always a header, even if indented (inih would take it for a continuation). */
		begin_section(p, s);
		p->have_prev_key = false;
		return hand_over(buf, num, "[]");
	}

	if (indented && p->have_prev_key) {
		p->continuation = true;
		if (strlen(s) + 1 > room) {
			p->substituted = true;
			p->value = s;
			return hand_over(buf, num, " -");
		}
		str_printf(buf, (size_t)num, " %s\n", s);
		return buf;
	}

	eq = strchr(s, '=');
	if (!eq) {
		char shown[CONFIG_SHOW_VALUE_MAX + 8];

		parser_error(p, p->lineno,
			     "syntax error: expected 'key = value', '[section]' or a comment, got "
			     "'%s'",
			     show_value(s, shown, sizeof(shown)));
		return hand_over(buf, num, "");
	}
	*eq = '\0';
	p->key = s;
	strip_trailing_space(s);
	p->value = skip_space(eq + 1);
	if (*p->key == '\0') {
		parser_error(p, p->lineno, "syntax error: '=' without a key before it");
		return hand_over(buf, num, "");
	}
	if (strlen(p->key) > CONFIG_KEY_NAME_MAX || strpbrk(p->key, ":[]")) {
		char shown[CONFIG_SHOW_VALUE_MAX + 8];

		parser_error(p, p->lineno, "syntax error: bad key name '%s'",
			     show_value(p->key, shown, sizeof(shown)));
		return hand_over(buf, num, "");
	}
	p->have_prev_key = true;
	if (strlen(p->key) + 3 + strlen(p->value) > room) {
		p->substituted = true;
		str_printf(buf, (size_t)num, "%s =\n", p->key);
		return buf;
	}
	str_printf(buf, (size_t)num, "%s = %s\n", p->key, p->value);
	return buf;
}

/*
 * A value, joined over its continuation lines, may be this long: config_print() writes it
 * on one line, "key = value", which must be no longer than CONFIG_LINE_MAX.
 */
static size_t value_max(int key)
{
	return CONFIG_LINE_MAX - strlen(config_keys[key].name) - 3;
}

static bool append_value(struct raw_value *v, const char *more)
{
	size_t m = strlen(more);
	char *n;

	n = realloc(v->value, v->len + 1 + m + 1);
	if (!n)
		return false;
	if (v->len > 0)
		n[v->len++] = ' ';
	memcpy(n + v->len, more, m + 1);
	v->len += m;
	v->value = n;
	return true;
}

/* ini_handler: one key line or continuation line, in the section the reader recorded. */
static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	char label[CONFIG_NAME_MAX * 2 + 64], shown[CONFIG_SHOW_VALUE_MAX + 8];
	const char *candidates[_CONFIG_KEY_MAX + 1], *hint;
	struct raw_value *v;
	unsigned n = 0;
	int k;

	if (p->substituted) {
		value = p->value;
		if (!p->continuation)
			name = p->key;
	}

	if (p->continuation) {
		if (!p->cur || p->cur_ignored || p->last_key < 0)
			return 1;
		v = &p->cur->values[p->last_key];
		if (v->len + 1 + strlen(value) > value_max(p->last_key)) {
			parser_error(
				p, p->lineno,
				"%s %s: value too long with this continuation line (at most %zu "
				"bytes, to fit on one line)",
				section_label(p->cur, label, sizeof(label)),
				config_keys[p->last_key].name, value_max(p->last_key));
			p->last_key = -1;
			return 1;
		}
		if (!append_value(v, value))
			p->oom = true;
		v->last_line = p->lineno;
		return 1;
	}

	p->last_key = -1;
	if (!p->cur) {
		if (!p->seen_header)
			parser_error(p, p->lineno,
				     "key '%s' outside any section (put it under [supervisor], "
				     "[pool NAME] or [job NAME])",
				     name);
		return 1;
	}
	if (p->cur_ignored)
		return 1;

	section_label(p->cur, label, sizeof(label));
	k = find_key(p->cur->kind, name);
	if (k < 0) {
		for (int i = 0; i < _CONFIG_KEY_MAX; i++)
			if (config_keys[i].section == p->cur->kind)
				candidates[n++] = config_keys[i].name;
		candidates[n] = NULL;
		hint = str_did_you_mean(name, candidates);
		if (hint) {
			parser_error(p, p->lineno, "%s unknown key '%s' (did you mean '%s'?)",
				     label, show_value(name, shown, sizeof(shown)), hint);
			return 1;
		}
		for (int i = 0; i < _CONFIG_KEY_MAX; i++)
			if (strcmp(config_keys[i].name, name) == 0) {
				parser_error(p, p->lineno,
					     "%s unknown key '%s' (it belongs in a [%s%s] section)",
					     label, name,
					     config_section_names[config_keys[i].section],
					     config_keys[i].section == CONFIG_SECTION_SUPERVISOR
						     ? ""
						     : " NAME");
				return 1;
			}
		parser_error(p, p->lineno, "%s unknown key '%s'", label,
			     show_value(name, shown, sizeof(shown)));
		return 1;
	}

	v = &p->cur->values[k];
	if (v->value) {
		parser_error(p, p->lineno, "%s duplicate key '%s' (first set on line %u)", label,
			     name, v->line);
		return 1;
	}
	if (strlen(value) > value_max(k)) {
		parser_error(p, p->lineno,
			     "%s %s: value too long (at most %zu bytes, to fit on one line as "
			     "'%s = VALUE')",
			     label, name, value_max(k), name);
		return 1;
	}
	v->value = strdup(value);
	if (!v->value) {
		p->oom = true;
		return 1;
	}
	v->len = strlen(value);
	v->line = p->lineno;
	p->last_key = k;
	(void)section;
	return 1;
}

/* ---- validation ---- */

static void *field_of(void *base, const struct config_key *k)
{
	return (char *)base + k->offset;
}

/* "debug, info, notice" */
static const char *choices_list(const struct config_choice *c, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (; c->name; c++) {
		str_printf(buf + n, size - n, "%s%s", n ? ", " : "", c->name);
		n = strlen(buf);
	}
	return buf;
}

/* "0..1h", "16M..infinity" */
static const char *duration_range_text(uint64_t min, uint64_t max, char *buf, size_t size)
{
	char a[FORMAT_DURATION_MAX], b[FORMAT_DURATION_MAX];

	if (min == 1 && max == USEC_INFINITY)
		return str_printf(buf, size, "> 0 or infinity");
	return str_printf(buf, size, "%s..%s", format_duration(a, sizeof(a), min),
			  format_duration(b, sizeof(b), max));
}

/*
 * Converts one value of key k into its field in base. Returns 0, or -EINVAL with a message
 * ("expected an integer 1..256") in err.
 */
static int convert(const struct config_key *k, const char *value, void *base, char *err,
		   size_t errlen)
{
	char a[FORMAT_SIZE_MAX], range[96], list[128];
	uint64_t u;
	usec_t lo, hi;
	struct rate rate;
	char *copy;
	int r;

	switch (k->type) {
	case CONFIG_TYPE_STRING:
	case CONFIG_TYPE_PATH:
	case CONFIG_TYPE_RUN:
	case CONFIG_TYPE_ARGS:
	case CONFIG_TYPE_GLOB:
	case CONFIG_TYPE_DIR:
		for (const char *c = value; *c; c++)
			if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f) {
				str_printf(err, errlen, "control characters are not allowed");
				return -EINVAL;
			}
		if (k->type == CONFIG_TYPE_STRING &&
		    (strlen(value) < k->min || strlen(value) > k->max)) {
			str_printf(err, errlen, "expected %llu..%llu characters",
				   (unsigned long long)k->min, (unsigned long long)k->max);
			return -EINVAL;
		}
		if (k->type == CONFIG_TYPE_STRING && strpbrk(value, " \t")) {
			str_printf(err, errlen, "no whitespace allowed");
			return -EINVAL;
		}
		if (k->type == CONFIG_TYPE_PATH && *value &&
		    (value[0] != '/' || strlen(value) > k->max)) {
			str_printf(err, errlen,
				   "expected an absolute path of at most %llu bytes (or nothing)",
				   (unsigned long long)k->max);
			return -EINVAL;
		}
		copy = strdup(value);
		if (!copy)
			return -ENOMEM;
		free(*(char **)field_of(base, k));
		*(char **)field_of(base, k) = copy;
		return 0;

	case CONFIG_TYPE_UINT:
		r = parse_uint(value, k->min, k->max, &u);
		if (r < 0) {
			str_printf(err, errlen, "expected an integer %llu..%llu",
				   (unsigned long long)k->min, (unsigned long long)k->max);
			return -EINVAL;
		}
		*(unsigned *)field_of(base, k) = (unsigned)u;
		return 0;

	case CONFIG_TYPE_DURATION:
		r = parse_duration(value, &lo);
		if (r < 0 || lo < k->min || lo > k->max) {
			str_printf(err, errlen, "expected a duration %s (units us, ms, s, min, h)",
				   duration_range_text(k->min, k->max, range, sizeof(range)));
			return -EINVAL;
		}
		*(usec_t *)field_of(base, k) = lo;
		return 0;

	case CONFIG_TYPE_DURATION_RANGE:
		r = parse_duration_range(value, &lo, &hi);
		if (r < 0 || lo < k->min || hi > k->max) {
			str_printf(err, errlen,
				   "expected LO..HI, two durations %s with LO <= HI, e.g. 10ms..5s",
				   duration_range_text(k->min, k->max, range, sizeof(range)));
			return -EINVAL;
		}
		((usec_t *)field_of(base, k))[0] = lo;
		((usec_t *)field_of(base, k))[1] = hi;
		return 0;

	case CONFIG_TYPE_RATE:
		r = parse_rate(value, &rate);
		if (r < 0 || rate.count < k->min || rate.count > k->max) {
			str_printf(err, errlen,
				   "expected COUNT/DURATION with COUNT %llu..%llu and a duration "
				   "> 0, e.g. 10/60s",
				   (unsigned long long)k->min, (unsigned long long)k->max);
			return -EINVAL;
		}
		*(struct rate *)field_of(base, k) = rate;
		return 0;

	case CONFIG_TYPE_SIZE:
		r = parse_size(value, &u);
		if (r < 0 || u < k->min || u > k->max) {
			str_printf(err, errlen, "expected a size %s..%s (K, M, G, T: base 1024)",
				   format_size(a, sizeof(a), k->min),
				   k->max == UINT64_MAX
					   ? "infinity"
					   : format_size(range, sizeof(range), k->max));
			return -EINVAL;
		}
		*(uint64_t *)field_of(base, k) = u;
		return 0;

	case CONFIG_TYPE_ENUM:
		for (const struct config_choice *c = k->choices; c->name; c++)
			if (strcmp(c->name, value) == 0) {
				*(int *)field_of(base, k) = c->value;
				return 0;
			}
		{
			const char *names[16], *hint;
			unsigned n = 0;

			for (const struct config_choice *c = k->choices; c->name && n < 15; c++)
				names[n++] = c->name;
			names[n] = NULL;
			hint = str_did_you_mean(value, names);
			if (hint)
				str_printf(err, errlen, "expected one of %s (did you mean '%s'?)",
					   choices_list(k->choices, list, sizeof(list)), hint);
			else
				str_printf(err, errlen, "expected one of %s",
					   choices_list(k->choices, list, sizeof(list)));
		}
		return -EINVAL;

	case CONFIG_TYPE_POOL:
		/* Resolved by the caller, which knows the pools. */
		return 0;
	}
	str_printf(err, errlen, "unknown key type");
	return -EINVAL;
}

/*
 * "demo.conf:12: [pool main] threads = abc: expected an integer 1..256", at the key's line,
 * or at the section's line (with "(the default)") when the key is not set.
 */
static void value_error(struct parser *p, const struct raw_section *s, int key, const char *value,
			const char *msg)
{
	const struct raw_value *v = &s->values[key];
	char label[CONFIG_NAME_MAX * 2 + 64], shown[CONFIG_SHOW_VALUE_MAX + 8], cont[64] = "";

	if (v->value && v->last_line)
		str_printf(cont, sizeof(cont), " (the value continues to line %u)", v->last_line);
	parser_error(p, v->value ? v->line : s->line, "%s %s = %s%s: %s%s",
		     section_label(s, label, sizeof(label)), config_keys[key].name,
		     show_value(value, shown, sizeof(shown)), v->value ? "" : " (the default)", msg,
		     cont);
}

/*
 * Fills base from section s (NULL: every default), key by key, reporting each bad value;
 * bad[k] says which keys of this section had one.
 */
static void convert_section(struct parser *p, const struct raw_section *s,
			    enum config_section_kind kind, void *base, bool bad[_CONFIG_KEY_MAX])
{
	char label[CONFIG_NAME_MAX * 2 + 64], err[512];

	if (s)
		section_label(s, label, sizeof(label));
	for (int i = 0; i < _CONFIG_KEY_MAX; i++) {
		const struct config_key *k = &config_keys[i];
		const struct raw_value *v = s ? &s->values[i] : NULL;
		const char *value;
		int r;

		bad[i] = false;
		if (k->section != kind)
			continue;
		value = v && v->value ? v->value : k->def;
		if (!value) {
			bad[i] = true;
			if (s)
				parser_error(p, s->line, "%s missing required key '%s'", label,
					     k->name);
			continue;
		}
		r = convert(k, value, base, err, sizeof(err));
		if (r == -ENOMEM) {
			p->oom = true;
			bad[i] = true;
			continue;
		}
		if (r < 0) {
			bad[i] = true;
			if (!v || !v->value) {
				/* A default that does not parse is a bug in keys.h. */
				parser_error(p, s ? s->line : 0, "%s: bad default '%s' (a bug)",
					     k->name, k->def);
				continue;
			}
			value_error(p, s, i, v->value, err);
		}
	}
}

/* ---- job groups: run kinds, inputs, spool, output ---- */

/*
 * The absolute form of a relative path, relative to the config's directory (NULL: out of
 * memory). When the directory that holds the last component exists, it is canonical
 * (realpath: no "..", no symlinks); the last component stays as written.
 */
static char *absolute_path(const struct parser *p, const char *path)
{
	char *out, *slash, *real;

	while (path[0] == '.' && path[1] == '/')
		for (path += 2; *path == '/'; path++)
			;
	if (strcmp(path, ".") == 0 || *path == '\0')
		return strdup(p->dir);
	if (asprintf(&out, "%s%s%s", p->dir, strcmp(p->dir, "/") == 0 ? "" : "/", path) < 0)
		return NULL;
	slash = strrchr(out, '/');
	if (slash == out || slash[1] == '\0')
		return out;
	*slash = '\0';
	real = realpath(out, NULL);
	*slash = '/';
	if (real) {
		char *canon;

		if (asprintf(&canon, "%s%s", strcmp(real, "/") == 0 ? "" : real, slash) >= 0) {
			free(out);
			out = canon;
		}
		free(real);
	}
	return out;
}

/* Like absolute_path() for a glob pattern: the directory's own glob characters escaped. */
static char *absolute_glob(const struct parser *p, const char *pattern)
{
	size_t n = 0;
	char *out;

	if (pattern[0] == '/')
		return strdup(pattern);
	while (pattern[0] == '.' && pattern[1] == '/')
		for (pattern += 2; *pattern == '/'; pattern++)
			;
	out = malloc(2 * strlen(p->dir) + strlen(pattern) + 2);
	if (!out)
		return NULL;
	for (const char *d = p->dir; *d; d++) {
		if (strchr("*?[]{}\\", *d))
			out[n++] = '\\';
		out[n++] = *d;
	}
	if (n != 1)
		out[n++] = '/';
	strcpy(out + n, pattern);
	return out;
}

/* Replaces the string field *field by its absolute form; false when out of memory. */
static bool make_absolute(struct parser *p, char **field, bool glob)
{
	char *abs;

	if (!*field || !**field || (*field)[0] == '/')
		return true;
	abs = glob ? absolute_glob(p, *field) : absolute_path(p, *field);
	if (!abs) {
		p->oom = true;
		return false;
	}
	free(*field);
	*field = abs;
	return true;
}

static bool is_identifier(const char *s)
{
	if (!(isalpha((unsigned char)*s) || *s == '_'))
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

/* run = plugin:PATH:SYMBOL: checks it and makes PATH absolute. */
static void check_plugin(struct parser *p, const struct raw_section *s, struct group_config *g)
{
	const char *path = g->run + 7, *colon = strrchr(path, ':'), *symbol;
	char *dir_path, *run;

	if (!colon) {
		value_error(p, s, CONFIG_KEY_JOB_run, g->run,
			    "expected plugin:PATH:SYMBOL (no ':' before SYMBOL)");
		return;
	}
	symbol = colon + 1;
	if (colon == path) {
		value_error(p, s, CONFIG_KEY_JOB_run, g->run,
			    "empty PATH: expected plugin:PATH:SYMBOL");
		return;
	}
	if (!*symbol) {
		value_error(p, s, CONFIG_KEY_JOB_run, g->run,
			    "empty SYMBOL: expected plugin:PATH:SYMBOL");
		return;
	}
	if (!is_identifier(symbol) || strlen(symbol) > CONFIG_SYMBOL_MAX) {
		char err[CONFIG_SYMBOL_MAX + 128];

		str_printf(err, sizeof(err),
			   "SYMBOL '%.64s' is not a C identifier (A-Z a-z 0-9 _, not starting "
			   "with a digit, at most %d characters)",
			   symbol, CONFIG_SYMBOL_MAX);
		value_error(p, s, CONFIG_KEY_JOB_run, g->run, err);
		return;
	}
	dir_path = strndup(path, (size_t)(colon - path));
	if (!dir_path || !make_absolute(p, &dir_path, false)) {
		p->oom = true;
		free(dir_path);
		return;
	}
	if (asprintf(&run, "plugin:%s:%s", dir_path, symbol) < 0) {
		p->oom = true;
		free(dir_path);
		return;
	}
	free(dir_path);
	if (strlen(run) > value_max(CONFIG_KEY_JOB_run)) {
		value_error(p, s, CONFIG_KEY_JOB_run, g->run, "PATH too long once made absolute");
		free(run);
		return;
	}
	free(g->run);
	g->run = run;
}

/*
 * Finds an executable regular file: cmd itself if it has a '/', else the first match in
 * PATH. Returns 0, or -errno with a reason in err.
 */
static int find_command(const char *cmd, char *err, size_t errlen)
{
	const char *path = getenv("PATH");
	struct stat st;

	if (strchr(cmd, '/')) {
		if (cmd[0] != '/') {
			str_printf(err, errlen,
				   "COMMAND '%s' must be an absolute path or a name found in PATH",
				   cmd);
			return -EINVAL;
		}
		if (stat(cmd, &st) < 0) {
			str_printf(err, errlen, "COMMAND %s: %s", cmd, strerror(errno));
			return -errno;
		}
		if (!S_ISREG(st.st_mode)) {
			str_printf(err, errlen, "COMMAND %s: not a regular file", cmd);
			return -EINVAL;
		}
		if (access(cmd, X_OK) < 0) {
			str_printf(err, errlen, "COMMAND %s: not executable (%s)", cmd,
				   strerror(errno));
			return -EACCES;
		}
		return 0;
	}
	if (!path || !*path)
		path = CONFIG_DEFAULT_PATH;
	for (const char *d = path; *d;) {
		size_t n = strcspn(d, ":");
		char full[4096];

		str_printf(full, sizeof(full), "%.*s/%s", (int)(n ? n : 1), n ? d : ".", cmd);
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
			return 0;
		d += n + (d[n] == ':');
	}
	str_printf(err, errlen, "COMMAND '%s' not found in PATH", cmd);
	return -ENOENT;
}

/* What a placeholder can stand for at load time: "" if it will have a value, else NULL. */
struct placeholder_ctx {
	const struct group_config *g;
	bool has_input;
};

static bool args_have_key(const char *args, const char *key)
{
	size_t klen = strlen(key);

	for (const char *w = args; *w;) {
		size_t len;

		w += strspn(w, " \t");
		len = strcspn(w, " \t");
		if (len > klen && w[klen] == '=' && strncmp(w, key, klen) == 0)
			return true;
		w += len;
	}
	return false;
}

static const char *placeholder_lookup(void *ud, const char *name)
{
	const struct placeholder_ctx *ctx = ud;

	if (strcmp(name, "input") == 0 || strcmp(name, "arg:input") == 0)
		return ctx->has_input || args_have_key(ctx->g->args, "input") ? "" : NULL;
	if (strncmp(name, "arg:", 4) == 0)
		return args_have_key(ctx->g->args, name + 4) ? "" : NULL;
	return "";
}

/* Never finds anything: used to see whether a word has placeholders. */
static const char *no_lookup(void *ud, const char *name)
{
	return NULL;
}

/* run = exec:COMMAND ARGS...: the words, their placeholders and the command. */
static void check_exec(struct parser *p, const struct raw_section *s, const struct group_config *g)
{
	struct placeholder_ctx ctx = { .g = g, .has_input = *g->inputs || *g->spool };
	char err[512], msg[640], **argv = NULL, *word;
	size_t argc;
	int r;

	r = cmdline_split(g->run + 5, &argv, &argc, err, sizeof(err));
	if (r == -ENOMEM) {
		p->oom = true;
		return;
	}
	if (r < 0) {
		str_printf(msg, sizeof(msg), "%s: expected exec:COMMAND ARGS...", err);
		value_error(p, s, CONFIG_KEY_JOB_run, g->run, msg);
		return;
	}
	for (size_t i = 0; i < argc; i++) {
		r = cmdline_expand(argv[i], placeholder_lookup, &ctx, &word, err, sizeof(err));
		if (r == -ENOMEM) {
			p->oom = true;
			break;
		}
		free(word);
		if (r == -ENOENT && strstr(err, "{input}"))
			str_printf(msg, sizeof(msg), "%s: the group has no inputs or spool", err);
		else if (r == -ENOENT)
			str_printf(msg, sizeof(msg), "%s: args has no such key", err);
		else if (r < 0)
			str_printf(msg, sizeof(msg), "%s", err);
		if (r < 0) {
			value_error(p, s, CONFIG_KEY_JOB_run, g->run, msg);
			free(argv);
			return;
		}
	}
	/* The command itself is checked now, so it cannot depend on the job. */
	r = cmdline_expand(argv[0], no_lookup, NULL, &word, err, sizeof(err));
	if (r == -ENOENT) {
		value_error(p, s, CONFIG_KEY_JOB_run, g->run,
			    "COMMAND cannot contain placeholders (it is checked at load)");
	} else if (r == -ENOMEM) {
		p->oom = true;
	} else if (r == 0) {
		if (find_command(word, err, sizeof(err)) < 0)
			value_error(p, s, CONFIG_KEY_JOB_run, g->run, err);
		free(word);
	}
	free(argv);
}

/* args of plugin and exec jobs: KEY=VALUE words, each KEY once. */
static int check_free_args(const struct group_config *g, char *err, size_t errlen)
{
	const char *w = g->args;

	for (;;) {
		size_t len, klen;
		const char *eq;

		w += strspn(w, " \t\r\n");
		if (!*w)
			return 0;
		len = strcspn(w, " \t\r\n");
		eq = memchr(w, '=', len);
		if (!eq || eq == w) {
			str_printf(err, errlen, "argument '%.*s': expected key=value", (int)len, w);
			return -EINVAL;
		}
		klen = (size_t)(eq - w);
		if (klen > CONFIG_ARG_KEY_MAX ||
		    strspn(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") <
			    klen) {
			str_printf(err, errlen,
				   "argument '%.*s': the key must be 1..%d characters of A-Z a-z "
				   "0-9 _ . -",
				   (int)len, w, CONFIG_ARG_KEY_MAX);
			return -EINVAL;
		}
		for (const char *o = w + len; *o;) {
			size_t olen;

			o += strspn(o, " \t\r\n");
			olen = strcspn(o, " \t\r\n");
			if (olen > klen && strncmp(o, w, klen + 1) == 0) {
				str_printf(err, errlen, "argument '%.*s' given twice", (int)klen,
					   w);
				return -EINVAL;
			}
			o += olen;
		}
		if (klen == 5 && strncmp(w, "input", 5) == 0 && (*g->inputs || *g->spool)) {
			str_printf(err, errlen,
				   "argument 'input' is set for each job by %s: leave it out",
				   *g->inputs ? "inputs" : "spool");
			return -EINVAL;
		}
		w += len;
	}
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* inputs = GLOB: expands it into g->input_paths, regular files only, sorted. */
static void expand_inputs(struct parser *p, const struct raw_section *s, struct group_config *g)
{
	unsigned max = (unsigned)config_keys[CONFIG_KEY_JOB_count].max;
	const char *written = s->values[CONFIG_KEY_JOB_inputs].value;
	glob_t gl = { 0 };
	char err[512];
	size_t n = 0;
	int r;

	r = glob(g->inputs, GLOB_NOSORT | GLOB_BRACE, NULL, &gl);
	if (r == GLOB_NOMATCH) {
		str_printf(err, sizeof(err), "no file matches %s", g->inputs);
		value_error(p, s, CONFIG_KEY_JOB_inputs, written, err);
		globfree(&gl);
		return;
	}
	if (r == GLOB_NOSPACE) {
		p->oom = true;
		globfree(&gl);
		return;
	}
	if (r != 0) {
		str_printf(err, sizeof(err), "cannot read a directory: %s", strerror(errno));
		value_error(p, s, CONFIG_KEY_JOB_inputs, written, err);
		globfree(&gl);
		return;
	}
	g->input_paths = calloc(gl.gl_pathc + 1, sizeof(char *));
	if (!g->input_paths) {
		p->oom = true;
		globfree(&gl);
		return;
	}
	for (size_t i = 0; i < gl.gl_pathc; i++) {
		struct stat st;

		if (stat(gl.gl_pathv[i], &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		g->input_paths[n] = strdup(gl.gl_pathv[i]);
		if (!g->input_paths[n]) {
			p->oom = true;
			break;
		}
		n++;
	}
	globfree(&gl);
	g->n_inputs = (unsigned)n;
	if (p->oom)
		return;
	if (n == 0) {
		str_printf(err, sizeof(err),
			   "no regular file matches %s (only directories or other files do)",
			   g->inputs);
		value_error(p, s, CONFIG_KEY_JOB_inputs, written, err);
		return;
	}
	if (n > max) {
		str_printf(err, sizeof(err), "%zu files match, at most %u", n, max);
		value_error(p, s, CONFIG_KEY_JOB_inputs, written, err);
		return;
	}
	qsort(g->input_paths, n, sizeof(char *), compare_strings);
	g->count = (unsigned)n;
}

/* A DIR key (spool, output): made absolute; the directory must exist. */
static bool check_dir(struct parser *p, const struct raw_section *s, int key, char **field)
{
	struct stat st;
	char err[512];

	if (!make_absolute(p, field, false))
		return false;
	if (stat(*field, &st) < 0) {
		str_printf(err, sizeof(err), "%s: %s", *field, strerror(errno));
		value_error(p, s, key, s->values[key].value, err);
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		str_printf(err, sizeof(err), "%s: not a directory", *field);
		value_error(p, s, key, s->values[key].value, err);
		return false;
	}
	return true;
}

/* A key that cannot be set together with another one: the error is on `key`'s line. */
static void conflict_error(struct parser *p, const struct raw_section *s, int key, int other,
			   const char *why)
{
	char err[256];

	str_printf(err, sizeof(err), "cannot be set together with %s (%s)", config_keys[other].name,
		   why);
	value_error(p, s, key, s->values[key].value, err);
}

/* inputs, spool, output and count: how many jobs, and where their files are. */
static void check_files(struct parser *p, const struct raw_section *s, struct group_config *g,
			const bool bad[_CONFIG_KEY_MAX], bool kind_known)
{
	bool count_set = s->values[CONFIG_KEY_JOB_count].value != NULL;
	bool has_inputs = !bad[CONFIG_KEY_JOB_inputs] && g->inputs && *g->inputs;
	bool has_spool = !bad[CONFIG_KEY_JOB_spool] && g->spool && *g->spool;

	if (has_spool) {
		if (count_set)
			conflict_error(p, s, CONFIG_KEY_JOB_count, CONFIG_KEY_JOB_spool,
				       "a spool makes one job per file");
		if (has_inputs)
			conflict_error(p, s, CONFIG_KEY_JOB_inputs, CONFIG_KEY_JOB_spool,
				       "choose one");
		if (check_dir(p, s, CONFIG_KEY_JOB_spool, &g->spool))
			g->count = 0;
	} else if (has_inputs) {
		if (count_set)
			conflict_error(p, s, CONFIG_KEY_JOB_count, CONFIG_KEY_JOB_inputs,
				       "count is the number of matching files");
		if (make_absolute(p, &g->inputs, true))
			expand_inputs(p, s, g);
	}

	if (!bad[CONFIG_KEY_JOB_output] && g->output && *g->output) {
		if (kind_known && g->kind != JOB_KIND_EXEC)
			value_error(p, s, CONFIG_KEY_JOB_output, g->output,
				    "output is only for exec jobs (run = exec:...)");
		else
			check_dir(p, s, CONFIG_KEY_JOB_output, &g->output);
	}
}

static void check_builtin(struct parser *p, const struct raw_section *s, struct group_config *g,
			  const bool bad[_CONFIG_KEY_MAX])
{
	const char *hint, *names[_BH_BUILTIN_MAX + 1];
	char err[512];
	int b, i;

	b = bh_builtin_lookup(g->run + 8);
	if (b < 0) {
		for (i = 0; i < _BH_BUILTIN_MAX; i++)
			names[i] = bh_builtin_table[i].name;
		names[_BH_BUILTIN_MAX] = NULL;
		hint = str_did_you_mean(g->run + 8, names);
		if (hint)
			str_printf(err, sizeof(err), "no such builtin (did you mean 'builtin:%s'?)",
				   hint);
		else
			str_printf(err, sizeof(err), "no such builtin");
		value_error(p, s, CONFIG_KEY_JOB_run, g->run, err);
		return;
	}
	if (bad[CONFIG_KEY_JOB_args])
		return;
	i = bh_builtin_check_args((enum bh_builtin)b, g->args, err, sizeof(err));
	if (i == -ENOMEM)
		p->oom = true;
	else if (i < 0)
		value_error(p, s, CONFIG_KEY_JOB_args, g->args, err);
}

static void check_job(struct parser *p, const struct raw_section *s, struct config *c,
		      struct group_config *g, const bool bad[_CONFIG_KEY_MAX])
{
	const char *hint, *names[CONFIG_POOLS_MAX + 1];
	const struct raw_value *pool = &s->values[CONFIG_KEY_JOB_pool];
	const char *pool_name = pool->value ? pool->value : config_keys[CONFIG_KEY_JOB_pool].def;
	bool run_ok = !bad[CONFIG_KEY_JOB_run] && g->run;
	char err[512];
	int i;

	g->run_line =
		s->values[CONFIG_KEY_JOB_run].value ? s->values[CONFIG_KEY_JOB_run].line : s->line;

	i = config_find_pool(c, pool_name);
	if (i >= 0) {
		g->pool = (unsigned)i;
	} else {
		for (unsigned j = 0; j < c->n_pools; j++)
			names[j] = c->pools[j].name;
		names[c->n_pools] = NULL;
		hint = str_did_you_mean(pool_name, names);
		if (hint)
			str_printf(err, sizeof(err), "no such pool (did you mean '%s'?)", hint);
		else
			str_printf(err, sizeof(err), "no such pool");
		value_error(p, s, CONFIG_KEY_JOB_pool, pool_name, err);
	}

	if (run_ok && strncmp(g->run, "builtin:", 8) == 0) {
		g->kind = JOB_KIND_BUILTIN;
	} else if (run_ok && strncmp(g->run, "plugin:", 7) == 0) {
		g->kind = JOB_KIND_PLUGIN;
	} else if (run_ok && strncmp(g->run, "exec:", 5) == 0) {
		g->kind = JOB_KIND_EXEC;
	} else if (run_ok) {
		value_error(p, s, CONFIG_KEY_JOB_run, g->run,
			    "expected builtin:NAME, plugin:PATH:SYMBOL or exec:COMMAND ARGS...");
		run_ok = false;
	}

	check_files(p, s, g, bad, run_ok);
	if (!run_ok)
		return;
	switch (g->kind) {
	case JOB_KIND_BUILTIN:
		check_builtin(p, s, g, bad);
		return;
	case JOB_KIND_PLUGIN:
		check_plugin(p, s, g);
		break;
	case JOB_KIND_EXEC:
		if (!bad[CONFIG_KEY_JOB_args] && !bad[CONFIG_KEY_JOB_inputs] &&
		    !bad[CONFIG_KEY_JOB_spool])
			check_exec(p, s, g);
		break;
	}
	if (bad[CONFIG_KEY_JOB_args])
		return;
	i = check_free_args(g, err, sizeof(err));
	if (i < 0)
		value_error(p, s, CONFIG_KEY_JOB_args, g->args, err);
}

/*
 * Adds the group's jobs to c->total_jobs (each input file is a job; a spool group has
 * count 0) and reports the group that goes over CONFIG_JOBS_MAX, on its inputs or count.
 */
static void count_jobs(struct parser *p, const struct raw_section *s, struct config *c,
		       const struct group_config *g)
{
	bool was_ok = c->total_jobs <= CONFIG_JOBS_MAX;
	char label[CONFIG_NAME_MAX * 2 + 64], shown[CONFIG_SHOW_VALUE_MAX + 8];
	const struct raw_value *v;

	c->total_jobs += g->count;
	if (!was_ok || c->total_jobs <= CONFIG_JOBS_MAX)
		return;
	section_label(s, label, sizeof(label));
	if (g->n_inputs > 0) {
		v = &s->values[CONFIG_KEY_JOB_inputs];
		parser_error(p, v->line,
			     "%s inputs = %s: too many jobs in all (%u files make %llu jobs, at "
			     "most %d)",
			     label, show_value(v->value, shown, sizeof(shown)), g->n_inputs,
			     (unsigned long long)c->total_jobs, CONFIG_JOBS_MAX);
		return;
	}
	v = &s->values[CONFIG_KEY_JOB_count];
	parser_error(p, v->value ? v->line : s->line,
		     "%s count = %u: too many jobs in all (%llu, at most %d)", label, g->count,
		     (unsigned long long)c->total_jobs, CONFIG_JOBS_MAX);
}

static void validate(struct parser *p, struct config *c)
{
	const struct raw_section *sup = NULL;
	bool bad[_CONFIG_KEY_MAX];
	unsigned np = 0, ng = 0;

	for (unsigned i = 0; i < p->n_sections; i++)
		if (p->sections[i].kind == CONFIG_SECTION_SUPERVISOR)
			sup = &p->sections[i];
	convert_section(p, sup, CONFIG_SECTION_SUPERVISOR, &c->supervisor, bad);

	c->n_pools = p->n_pools > 0 ? p->n_pools : 1;
	c->pools = calloc(c->n_pools, sizeof(*c->pools));
	c->groups = calloc(p->n_groups > 0 ? p->n_groups : 1, sizeof(*c->groups));
	if (!c->pools || !c->groups) {
		p->oom = true;
		return;
	}
	if (p->n_pools == 0) {
		/* No [pool] at all: one implicit pool "main" with every default. */
		str_printf(c->pools[0].name, sizeof(c->pools[0].name), "main");
		c->pools[0].line = 0;
		convert_section(p, NULL, CONFIG_SECTION_POOL, &c->pools[0], bad);
	}
	for (unsigned i = 0; i < p->n_sections; i++) {
		const struct raw_section *s = &p->sections[i];
		struct pool_config *pc;

		if (s->kind != CONFIG_SECTION_POOL)
			continue;
		pc = &c->pools[np++];
		memcpy(pc->name, s->name, sizeof(pc->name));
		pc->line = s->line;
		convert_section(p, s, CONFIG_SECTION_POOL, pc, bad);
	}

	for (unsigned i = 0; i < p->n_sections; i++) {
		const struct raw_section *s = &p->sections[i];
		struct group_config *g;

		if (s->kind != CONFIG_SECTION_JOB)
			continue;
		g = &c->groups[ng++];
		c->n_groups = ng;
		memcpy(g->name, s->name, sizeof(g->name));
		g->line = s->line;
		convert_section(p, s, CONFIG_SECTION_JOB, g, bad);
		check_job(p, s, c, g, bad);
		if (!bad[CONFIG_KEY_JOB_count])
			count_jobs(p, s, c, g);
	}
}

static char *join_errors(struct parser *p)
{
	size_t size = 0, n = 0;
	char *out, more[256] = "";

	if (p->oom && p->n_errors_total == 0)
		str_printf(more, sizeof(more), "%s: out of memory\n", p->name);
	else if (p->n_errors_total > p->n_errors)
		str_printf(more, sizeof(more), "%s: too many errors, %u more not shown\n", p->name,
			   p->n_errors_total - p->n_errors);
	for (unsigned i = 0; i < p->n_errors; i++)
		size += strlen(p->errors[i].text) + 1;
	size += strlen(more) + 1;
	out = malloc(size);
	if (!out)
		return NULL;
	for (unsigned i = 0; i < p->n_errors; i++) {
		size_t l = strlen(p->errors[i].text);

		memcpy(out + n, p->errors[i].text, l);
		n += l;
		out[n++] = '\n';
	}
	memcpy(out + n, more, strlen(more) + 1);
	return out;
}

static void parser_done(struct parser *p)
{
	for (unsigned i = 0; i < p->n_sections; i++)
		for (int k = 0; k < _CONFIG_KEY_MAX; k++)
			free(p->sections[i].values[k].value);
	free(p->sections);
	for (unsigned i = 0; i < p->n_errors; i++)
		free(p->errors[i].text);
	free(p->dir);
}

/*
 * The absolute directory of the config file called `name` (canonical when it exists), the
 * base of relative paths in it. A name without '/' (also a stream's name) means the
 * current directory.
 */
static char *config_dir(const char *name)
{
	const char *slash = strrchr(name, '/');
	char *dir, *real, *cwd, *out;

	if (!slash)
		dir = strdup(".");
	else if (slash == name)
		dir = strdup("/");
	else
		dir = strndup(name, (size_t)(slash - name));
	if (!dir)
		return NULL;
	real = realpath(dir, NULL);
	if (real) {
		free(dir);
		return real;
	}
	if (dir[0] == '/')
		return dir;
	cwd = getcwd(NULL, 0);
	if (!cwd)
		return dir; /* relative paths stay relative: the best we can do */
	if (asprintf(&out, "%s/%s", cwd, dir) < 0)
		out = NULL;
	free(cwd);
	free(dir);
	return out;
}

static int simple_error(const char *name, int err, const char *what, char **ret_errors)
{
	if (ret_errors && asprintf(ret_errors, "%s: %s: %s\n", name, what, strerror(err)) < 0)
		*ret_errors = NULL;
	return -err;
}

/* Parses f, or else the mem_len bytes at mem. */
static int load(FILE *f, const char *mem, size_t mem_len, const char *name, struct config **ret,
		char **ret_errors)
{
	struct parser *p;
	struct config *c = NULL;
	int r;

	assert(ret);
	if (!name)
		name = "(config)";
	if (ret_errors)
		*ret_errors = NULL;
	*ret = NULL;

	p = calloc(1, sizeof(*p));
	if (!p)
		return simple_error(name, ENOMEM, "cannot parse", ret_errors);
	p->name = name;
	p->f = f;
	p->mem = mem;
	p->mem_len = mem_len;
	p->last_key = -1;
	p->dir = config_dir(name);
	if (!p->dir) {
		free(p);
		return simple_error(name, ENOMEM, "cannot parse", ret_errors);
	}

	r = ini_parse_stream(reader, p, handler, p);
	if (r > 0 && !has_errors(p))
		/* inih saw an error that our reader let through: say where, at least. */
		parser_error(p, (unsigned)r, "syntax error");
	if (p->io_error) {
		r = -p->io_error;
		simple_error(name, p->io_error, "cannot read", ret_errors);
		parser_done(p);
		free(p);
		return r;
	}

	if (!has_errors(p) && p->n_pools == 0 && p->n_groups == 0)
		parser_error(p, 0, "empty config: no [pool] or [job] sections");

	/* Validate even after syntax errors, to report as much as we can in one go. */
	c = calloc(1, sizeof(*c));
	if (!c || !(c->path = strdup(name)))
		p->oom = true;
	else
		validate(p, c);

	if (has_errors(p)) {
		r = p->oom && p->n_errors_total == 0 ? -ENOMEM : -EINVAL;
		if (ret_errors)
			*ret_errors = join_errors(p);
		config_free(c);
		parser_done(p);
		free(p);
		return r;
	}
	parser_done(p);
	free(p);
	*ret = c;
	return 0;
}

int config_load_stream(FILE *f, const char *name, struct config **ret, char **ret_errors)
{
	assert(f);
	return load(f, NULL, 0, name, ret, ret_errors);
}

static const char *file_type(mode_t mode)
{
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	return "of another kind";
}

static int __attribute__((format(printf, 4, 5)))
file_error(const char *path, int err, char **ret_errors, const char *fmt, ...)
{
	char *what = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&what, fmt, ap) < 0)
		what = NULL;
	va_end(ap);
	if (ret_errors && (!what || asprintf(ret_errors, "%s: %s\n", path, what) < 0))
		*ret_errors = NULL;
	free(what);
	return -err;
}

/*
 * The whole of a regular file of at most CONFIG_FILE_MAX bytes, read without ever waiting:
 * opened O_NONBLOCK (a FIFO without a writer does not hold open() up), refused unless it is
 * a regular file (a device such as /dev/zero never ends), and read up to one byte past the
 * limit, so a file that grows while it is read is caught too.
 */
static int read_config_file(const char *path, char **ret_buf, size_t *ret_len, char **ret_errors)
{
	size_t len = 0, size;
	struct stat st;
	char *buf, *more;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return simple_error(path, errno, "cannot open", ret_errors);
	if (fstat(fd, &st) < 0) {
		r = simple_error(path, errno, "cannot read", ret_errors);
		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		if (S_ISDIR(st.st_mode))
			return simple_error(path, EISDIR, "cannot read", ret_errors);
		return file_error(path, EINVAL, ret_errors, "not a regular file (%s)",
				  file_type(st.st_mode));
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		close(fd);
		return file_error(path, EFBIG, ret_errors, "too large (%lld bytes; at most %s)",
				  (long long)st.st_size, CONFIG_FILE_MAX_TEXT);
	}
	size = (size_t)st.st_size + 1; /* room to see that it grew */
	buf = malloc(size);
	if (!buf) {
		close(fd);
		return simple_error(path, ENOMEM, "cannot read", ret_errors);
	}
	for (;;) {
		ssize_t n;

		if (len == size) {
			if (size > CONFIG_FILE_MAX) {
				free(buf);
				close(fd);
				return file_error(path, EFBIG, ret_errors,
						  "too large (it grew past %s while it was read)",
						  CONFIG_FILE_MAX_TEXT);
			}
			size = size * 2 > CONFIG_FILE_MAX + 1 ? CONFIG_FILE_MAX + 1 : size * 2;
			more = realloc(buf, size);
			if (!more) {
				free(buf);
				close(fd);
				return simple_error(path, ENOMEM, "cannot read", ret_errors);
			}
			buf = more;
		}
		n = read(fd, buf + len, size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = simple_error(path, errno, "cannot read", ret_errors);
			free(buf);
			close(fd);
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

int config_load(const char *path, struct config **ret, char **ret_errors)
{
	size_t len = 0;
	char *buf = NULL;
	int r;

	assert(path);
	assert(ret);
	*ret = NULL;
	if (ret_errors)
		*ret_errors = NULL;

	r = read_config_file(path, &buf, &len, ret_errors);
	if (r < 0)
		return r;
	r = load(NULL, buf, len, path, ret, ret_errors);
	free(buf);
	return r;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->supervisor.control_socket);
	free(c->supervisor.control_group);
	for (unsigned i = 0; i < c->n_groups; i++) {
		struct group_config *g = &c->groups[i];

		free(g->run);
		free(g->args);
		free(g->inputs);
		for (unsigned j = 0; g->input_paths && g->input_paths[j]; j++)
			free(g->input_paths[j]);
		free(g->input_paths);
		free(g->spool);
		free(g->output);
	}
	free(c->pools);
	free(c->groups);
	free(c);
}

int config_find_pool(const struct config *c, const char *name)
{
	if (!c || !name)
		return -ENOENT;
	for (unsigned i = 0; i < c->n_pools; i++)
		if (strcmp(c->pools[i].name, name) == 0)
			return (int)i;
	return -ENOENT;
}

const char *log_level_to_string(enum log_level l)
{
	for (const struct config_choice *c = config_log_level_choices; c->name; c++)
		if (c->value == (int)l)
			return c->name;
	return NULL;
}

static bool is_string_type(enum config_type t)
{
	return t == CONFIG_TYPE_STRING || t == CONFIG_TYPE_PATH || t == CONFIG_TYPE_RUN ||
	       t == CONFIG_TYPE_ARGS || t == CONFIG_TYPE_GLOB || t == CONFIG_TYPE_DIR;
}

static void print_section(const struct config *c, enum config_section_kind kind, const void *base,
			  FILE *f)
{
	const struct group_config *g = base;
	char a[FORMAT_DURATION_MAX], b[FORMAT_DURATION_MAX];

	for (int i = 0; i < _CONFIG_KEY_MAX; i++) {
		const struct config_key *k = &config_keys[i];
		const void *fp = (const char *)base + k->offset;
		const char *s;

		if (k->section != kind)
			continue;
		if (i == CONFIG_KEY_JOB_count && (*g->inputs || *g->spool)) {
			/* Not settable with inputs or spool; a comment says what it is. */
			fprintf(f, "# count = %u: %s\n", g->count,
				*g->spool ? "jobs come from the spool" : "one job per input file");
			continue;
		}
		fprintf(f, "%s =", k->name);
		if (!is_string_type(k->type))
			fputc(' ', f);
		switch (k->type) {
		case CONFIG_TYPE_STRING:
		case CONFIG_TYPE_PATH:
		case CONFIG_TYPE_RUN:
		case CONFIG_TYPE_ARGS:
		case CONFIG_TYPE_GLOB:
		case CONFIG_TYPE_DIR:
			s = *(char *const *)fp;
			if (s && *s)
				fprintf(f, " %s", s);
			break;
		case CONFIG_TYPE_UINT:
			fprintf(f, "%u", *(const unsigned *)fp);
			break;
		case CONFIG_TYPE_DURATION:
			fputs(format_duration(a, sizeof(a), *(const usec_t *)fp), f);
			break;
		case CONFIG_TYPE_DURATION_RANGE:
			fprintf(f, "%s..%s", format_duration(a, sizeof(a), ((const usec_t *)fp)[0]),
				format_duration(b, sizeof(b), ((const usec_t *)fp)[1]));
			break;
		case CONFIG_TYPE_RATE:
			fprintf(f, "%u/%s", ((const struct rate *)fp)->count,
				format_duration(a, sizeof(a), ((const struct rate *)fp)->window));
			break;
		case CONFIG_TYPE_SIZE:
			fputs(format_size(a, sizeof(a), *(const uint64_t *)fp), f);
			break;
		case CONFIG_TYPE_ENUM:
			for (const struct config_choice *ch = k->choices; ch->name; ch++)
				if (ch->value == *(const int *)fp)
					fputs(ch->name, f);
			break;
		case CONFIG_TYPE_POOL:
			if (*(const unsigned *)fp < c->n_pools)
				fputs(c->pools[*(const unsigned *)fp].name, f);
			break;
		}
		fputc('\n', f);
	}
}

void config_print(const struct config *c, FILE *f)
{
	fprintf(f, "# effective config of %s\n\n[supervisor]\n", c->path ? c->path : "(config)");
	print_section(c, CONFIG_SECTION_SUPERVISOR, &c->supervisor, f);
	for (unsigned i = 0; i < c->n_pools; i++) {
		fprintf(f, "\n[pool %s]%s\n", c->pools[i].name,
			c->pools[i].line == 0 ? " # implicit: the config has no [pool] section"
					      : "");
		print_section(c, CONFIG_SECTION_POOL, &c->pools[i], f);
	}
	for (unsigned i = 0; i < c->n_groups; i++) {
		fprintf(f, "\n[job %s]\n", c->groups[i].name);
		print_section(c, CONFIG_SECTION_JOB, &c->groups[i], f);
	}
}
