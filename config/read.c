/* SPDX-License-Identifier: MIT */
/*
 * Reading a config: the file into memory, then its lines into libinih.
 *
 * The file (config_read_file): a regular file of at most CONFIG_FILE_MAX bytes, read whole
 * and never waited for. It is opened O_NONBLOCK (a FIFO without a writer does not hold
 * open() up), refused unless it is a regular file (a device such as /dev/zero never ends),
 * and read up to one byte past the limit, so a file that grows while it is read is caught.
 *
 * The lines (config_read_ini): libinih does the INI parsing, fed through ini_parse_stream()
 * by our own reader, because Debian's build (r55, INI_HANDLER_LINENO=0, INI_MAX_LINE=200)
 * gives the handler no line numbers, silently cuts lines at 199 bytes, reports only the first
 * syntax error, only knows ';' inline comments and never tells the handler about a section
 * that has no keys. So the reader reads one physical line at a time and:
 *   - counts lines, so the handler knows where it is;
 *   - strips a UTF-8 BOM on line 1 and the '\r' of CRLF endings;
 *   - refuses NUL bytes and lines longer than CONFIG_LINE_MAX bytes (the line is reported
 *     and inih is handed an empty line instead, so parsing goes on);
 *   - strips inline comments: '#' or ';' at the start of a line or after whitespace;
 *   - checks the syntax of each line itself (section headers, "key = value"), so that
 *     every bad line gets its own message, and records each [section] header, so that a
 *     section without keys still exists;
 *   - hands inih a canonical form of the line. A key line too long for inih's 200-byte
 *     buffer is handed over with an empty value, and the handler (values.c) takes the value
 *     from the reader instead: lines up to CONFIG_LINE_MAX bytes work, nothing is ever cut.
 * Continuation lines (indented, right after a key line) are joined to the value with one
 * space; the reader mirrors inih's rule, so the handler knows a continuation from a
 * duplicate key.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/strutil.h"
#include "config/parser.h"

#define CONFIG_KEY_NAME_MAX 64 /* longer key names are a syntax error */

/* ---- the file ---- */

int config_io_error(const char *name, int err, const char *what, char **ret_errors)
{
	if (ret_errors && asprintf(ret_errors, "%s: %s: %s\n", name, what, strerror(err)) < 0)
		*ret_errors = NULL;
	return -err;
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
int config_read_file(const char *path, char **ret_buf, size_t *ret_len, char **ret_errors)
{
	size_t len = 0, size;
	struct stat st;
	char *buf, *more;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return config_io_error(path, errno, "cannot open", ret_errors);
	if (fstat(fd, &st) < 0) {
		r = config_io_error(path, errno, "cannot read", ret_errors);
		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		if (S_ISDIR(st.st_mode))
			return config_io_error(path, EISDIR, "cannot read", ret_errors);
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
		return config_io_error(path, ENOMEM, "cannot read", ret_errors);
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
				return config_io_error(path, ENOMEM, "cannot read", ret_errors);
			}
			buf = more;
		}
		n = read(fd, buf + len, size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = config_io_error(path, errno, "cannot read", ret_errors);
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

/* ---- its lines ---- */

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > CONFIG_NAME_MAX)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
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

/* Cuts s at the first '#' or ';' that starts it or follows whitespace; returns that char. */
static char strip_comment(char *s)
{
	char cut = 0;

	for (char *c = s; *c; c++)
		if ((*c == '#' || *c == ';') && (c == s || is_space(c[-1]))) {
			cut = *c;
			*c = '\0';
			break;
		}
	strip_trailing_space(s);
	return cut;
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
		config_error(p, line, "syntax error: section header without ']'");
		return;
	}
	if (*skip_space(end + 1) != '\0') {
		config_error(p, line, "syntax error: text after the section header's ']'");
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
			config_error(p, line,
				     "syntax error: empty section header (expected [supervisor], "
				     "[pool NAME] or [job NAME])");
		else if (hint)
			config_error(p, line, "unknown section [%s%s%s] (did you mean '%s'?)", kind,
				     *name ? " " : "", name, hint);
		else
			config_error(
				p, line,
				"unknown section [%s%s%s] (expected [supervisor], [pool NAME] or "
				"[job NAME])",
				kind, *name ? " " : "", name);
		return;
	}
	k = (enum config_section_kind)i;

	if (k == CONFIG_SECTION_SUPERVISOR && *name) {
		config_error(p, line, "[supervisor %s]: [supervisor] takes no name", name);
		return;
	}
	if (k != CONFIG_SECTION_SUPERVISOR && !*name) {
		config_error(p, line, "[%s]: a name is required: [%s NAME]", kind, kind);
		return;
	}
	if (k != CONFIG_SECTION_SUPERVISOR && !valid_name(name)) {
		config_error(p, line,
			     "[%s %s]: bad name: expected 1..%d characters of A-Z a-z 0-9 _ . -",
			     kind, name, CONFIG_NAME_MAX);
		return;
	}

	for (unsigned j = 0; j < p->n_sections; j++) {
		s = &p->sections[j];
		if (s->kind == k && strcmp(s->name, name) == 0) {
			config_error(p, line, "duplicate section %s (first on line %u)",
				     config_section_label(s, label, sizeof(label)), s->line);
			return;
		}
	}
	if (k == CONFIG_SECTION_POOL && p->n_pools >= CONFIG_POOLS_MAX) {
		config_error(p, line, "[pool %s]: too many pools (at most %d)", name,
			     CONFIG_POOLS_MAX);
		return;
	}
	if (k == CONFIG_SECTION_JOB && p->n_groups >= CONFIG_GROUPS_MAX) {
		config_error(p, line, "[job %s]: too many job sections (at most %d)", name,
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
		config_error(p, p->lineno, "NUL byte in line (not a text file?)");
		return hand_over(buf, num, "");
	}
	if (total > CONFIG_LINE_MAX) {
		config_error(p, p->lineno, "line too long (%zu bytes, at most %d)", total,
			     CONFIG_LINE_MAX);
		return hand_over(buf, num, "");
	}

	s = skip_space(p->line);
	indented = s > p->line;
	if (*s == '\0' || *s == '#' || *s == ';')
		return hand_over(buf, num, "");
	p->semicolon = strip_comment(s) == ';';

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

		config_error(p, p->lineno,
			     "syntax error: expected 'key = value', '[section]' or a comment, got "
			     "'%s'",
			     config_show_value(s, shown, sizeof(shown)));
		return hand_over(buf, num, "");
	}
	*eq = '\0';
	p->key = s;
	strip_trailing_space(s);
	p->value = skip_space(eq + 1);
	if (*p->key == '\0') {
		config_error(p, p->lineno, "syntax error: '=' without a key before it");
		return hand_over(buf, num, "");
	}
	if (strlen(p->key) > CONFIG_KEY_NAME_MAX || strpbrk(p->key, ":[]")) {
		char shown[CONFIG_SHOW_VALUE_MAX + 8];

		config_error(p, p->lineno, "syntax error: bad key name '%s'",
			     config_show_value(p->key, shown, sizeof(shown)));
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

int config_read_ini(struct parser *p)
{
	return ini_parse_stream(reader, p, config_ini_handler, p);
}
