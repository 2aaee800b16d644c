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
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/builtins.h"
#include "common/strutil.h"
#include "common/units.h"
#include "config/config.h"
#include "config/keys.h"

#define CONFIG_KEY_NAME_MAX 64 /* longer key names are a syntax error */
#define CONFIG_SHOW_VALUE_MAX 64 /* bytes of a value quoted in a message */
#define CONFIG_ERROR_LINE_MAX 1024 /* one message */

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
	FILE *f;
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
static ssize_t read_physical_line(struct parser *p, size_t *ret_total, bool *ret_nul)
{
	size_t n = 0, total = 0;
	bool nul = false;
	int c, last = EOF;

	for (;;) {
		c = getc_unlocked(p->f);
		if (c == EOF || c == '\n')
			break;
		if (c == '\0')
			nul = true;
		if (n < CONFIG_LINE_MAX + 1)
			p->line[n++] = (char)c;
		total++;
		last = c;
	}
	if (c == EOF && ferror(p->f)) {
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

static void check_job(struct parser *p, const struct raw_section *s, struct config *c,
		      struct group_config *g, const bool bad[_CONFIG_KEY_MAX])
{
	const char *hint,
		*names[(CONFIG_POOLS_MAX > _BH_BUILTIN_MAX ? CONFIG_POOLS_MAX : _BH_BUILTIN_MAX) +
		       1];
	const struct raw_value *pool = &s->values[CONFIG_KEY_JOB_pool];
	const char *pool_name = pool->value ? pool->value : config_keys[CONFIG_KEY_JOB_pool].def;
	char err[512];
	int b, i;

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

	if (bad[CONFIG_KEY_JOB_run] || !g->run)
		return;
	if (strncmp(g->run, "plugin:", 7) == 0) {
		value_error(p, s, CONFIG_KEY_JOB_run, g->run, "plugin jobs are not supported yet");
		return;
	}
	if (strncmp(g->run, "exec:", 5) == 0) {
		value_error(p, s, CONFIG_KEY_JOB_run, g->run, "exec jobs are not supported yet");
		return;
	}
	if (strncmp(g->run, "builtin:", 8) != 0) {
		value_error(p, s, CONFIG_KEY_JOB_run, g->run,
			    "expected builtin:NAME, plugin:PATH:SYMBOL or exec:COMMAND");
		return;
	}
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
		if (!bad[CONFIG_KEY_JOB_count]) {
			bool was_ok = c->total_jobs <= CONFIG_JOBS_MAX;

			c->total_jobs += g->count;
			if (was_ok && c->total_jobs > CONFIG_JOBS_MAX) {
				const struct raw_value *v = &s->values[CONFIG_KEY_JOB_count];
				char label[CONFIG_NAME_MAX * 2 + 64];

				parser_error(
					p, v->value ? v->line : s->line,
					"%s count = %u: too many jobs in all (%llu, at most %d)",
					section_label(s, label, sizeof(label)), g->count,
					(unsigned long long)c->total_jobs, CONFIG_JOBS_MAX);
			}
		}
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
}

static int simple_error(const char *name, int err, const char *what, char **ret_errors)
{
	if (ret_errors && asprintf(ret_errors, "%s: %s: %s\n", name, what, strerror(err)) < 0)
		*ret_errors = NULL;
	return -err;
}

int config_load_stream(FILE *f, const char *name, struct config **ret, char **ret_errors)
{
	struct parser *p;
	struct config *c = NULL;
	int r;

	assert(f);
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
	p->last_key = -1;

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

int config_load(const char *path, struct config **ret, char **ret_errors)
{
	struct stat st;
	FILE *f;
	int r;

	assert(path);
	assert(ret);
	*ret = NULL;
	if (ret_errors)
		*ret_errors = NULL;

	f = fopen(path, "re");
	if (!f)
		return simple_error(path, errno, "cannot open", ret_errors);
	if (fstat(fileno(f), &st) < 0) {
		r = simple_error(path, errno, "cannot read", ret_errors);
		fclose(f);
		return r;
	}
	if (S_ISDIR(st.st_mode)) {
		fclose(f);
		return simple_error(path, EISDIR, "cannot read", ret_errors);
	}
	r = config_load_stream(f, path, ret, ret_errors);
	fclose(f);
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
		free(c->groups[i].run);
		free(c->groups[i].args);
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

static void print_section(const struct config *c, enum config_section_kind kind, const void *base,
			  FILE *f)
{
	char a[FORMAT_DURATION_MAX], b[FORMAT_DURATION_MAX];

	for (int i = 0; i < _CONFIG_KEY_MAX; i++) {
		const struct config_key *k = &config_keys[i];
		const void *fp = (const char *)base + k->offset;
		const char *s;

		if (k->section != kind)
			continue;
		fprintf(f, "%s =", k->name);
		if (k->type != CONFIG_TYPE_STRING && k->type != CONFIG_TYPE_PATH &&
		    k->type != CONFIG_TYPE_RUN && k->type != CONFIG_TYPE_ARGS)
			fputc(' ', f);
		switch (k->type) {
		case CONFIG_TYPE_STRING:
		case CONFIG_TYPE_PATH:
		case CONFIG_TYPE_RUN:
		case CONFIG_TYPE_ARGS:
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
