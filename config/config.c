/* SPDX-License-Identifier: MIT */
/*
 * Reads bulkhead.conf into a struct config, or fails as a whole with messages that name
 * FILE:LINE, the section and the key. Keys, types, defaults and ranges come from keys.h.
 *
 * This file is the front: config_load() reads the file (read.c: a regular file of at most
 * CONFIG_FILE_MAX bytes, never waited for), feeds it line by line through libinih (read.c:
 * our own reader, which counts lines and refuses NUL bytes and over-long lines, and values.c:
 * the handler that collects raw values), then validates the whole (validate.c, values.c,
 * run-kinds.c) into a new struct config. parser.h lists the pieces.
 *
 * Parsing only collects raw strings per section and key (with their lines). Validation then
 * converts them, generically by type, into a new struct config. Errors are collected here
 * (config_error), sorted by line, and at most CONFIG_ERRORS_MAX are reported; if there was
 * any, no config is returned. Validation runs even after syntax errors, to report as much as
 * it can in one go.
 */
#include <assert.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/strutil.h"
#include "common/units.h"
#include "config/config.h"
#include "config/keys.h"
#include "config/parser.h"

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

void config_error(struct parser *p, unsigned line, const char *fmt, ...)
{
	char msg[CONFIG_ERROR_LINE_MAX], *text;
	struct config_message e;
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
	e = (struct config_message){ .line = line, .seq = p->seq++, .text = text };
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
const char *config_section_label(const struct raw_section *s, char *buf, size_t size)
{
	if (s->kind == CONFIG_SECTION_SUPERVISOR)
		return str_printf(buf, size, "[supervisor]");
	return str_printf(buf, size, "[%s %s]", config_section_names[s->kind], s->name);
}

/* A value quoted in a message: at most CONFIG_SHOW_VALUE_MAX bytes, then "...". */
const char *config_show_value(const char *v, char *buf, size_t size)
{
	if (strlen(v) > CONFIG_SHOW_VALUE_MAX)
		return str_printf(buf, size, "%.*s...", CONFIG_SHOW_VALUE_MAX, v);
	return str_printf(buf, size, "%s", v);
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
		return config_io_error(name, ENOMEM, "cannot parse", ret_errors);
	p->name = name;
	p->f = f;
	p->mem = mem;
	p->mem_len = mem_len;
	p->last_key = -1;
	p->dir = config_dir(name);
	if (!p->dir) {
		free(p);
		return config_io_error(name, ENOMEM, "cannot parse", ret_errors);
	}

	r = config_read_ini(p);
	if (r > 0 && !has_errors(p))
		/* inih saw an error that our reader let through: say where, at least. */
		config_error(p, (unsigned)r, "syntax error");
	if (p->io_error) {
		r = -p->io_error;
		config_io_error(name, p->io_error, "cannot read", ret_errors);
		parser_done(p);
		free(p);
		return r;
	}

	if (!has_errors(p) && p->n_pools == 0 && p->n_groups == 0)
		config_error(p, 0, "empty config: no [pool] or [job] sections");

	/* Validate even after syntax errors, to report as much as we can in one go. */
	c = calloc(1, sizeof(*c));
	if (!c || !(c->path = strdup(name)))
		p->oom = true;
	else
		config_validate(p, c);

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

int config_load_mem(const char *mem, size_t len, const char *name, struct config **ret,
		    char **ret_errors)
{
	assert(mem);
	return load(NULL, mem, len, name, ret, ret_errors);
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

	r = config_read_file(path, &buf, &len, ret_errors);
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
	free(c->supervisor.store);
	free(c->supervisor.node);
	free(c->supervisor.metrics_listen);
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
		free(g->environment);
		free(g->working_directory);
	}
	for (unsigned i = 0; i < c->n_pools; i++) {
		free(c->pools[i].user);
		free(c->pools[i].group);
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

bool config_group_exec_equal(const struct group_config *a, const struct group_config *b)
{
	const char *ae = a->environment ? a->environment : "",
		   *be = b->environment ? b->environment : "";
	const char *aw = a->working_directory ? a->working_directory : "",
		   *bw = b->working_directory ? b->working_directory : "";

	return strcmp(ae, be) == 0 && strcmp(aw, bw) == 0 &&
	       memcmp(a->success_exit_status, b->success_exit_status, EXIT_SET_BYTES) == 0 &&
	       a->nice == b->nice && a->retry_delay_min == b->retry_delay_min &&
	       a->retry_delay_max == b->retry_delay_max;
}
