/* SPDX-License-Identifier: MIT */
/*
 * config_print(): the effective config, as `bulkhead check-config` and `bulkheadd --check`
 * print it. Every key of keys.h in its order, defaults included, durations and sizes in their
 * shortest exact form (common/units.h), paths as validation made them (absolute): INI that
 * config_load() reads back to an equal config. A value fits on one line (values.c keeps
 * every value to CONFIG_LINE_MAX - strlen(key) - 3 bytes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/units.h"
#include "config/config.h"
#include "config/keys.h"

static bool is_string_type(enum config_type t)
{
	return t == CONFIG_TYPE_STRING || t == CONFIG_TYPE_PATH || t == CONFIG_TYPE_RUN ||
	       t == CONFIG_TYPE_ARGS || t == CONFIG_TYPE_GLOB || t == CONFIG_TYPE_DIR ||
	       t == CONFIG_TYPE_STORE || t == CONFIG_TYPE_ENVIRONMENT || t == CONFIG_TYPE_NICE;
}

static bool is_exec_key(int i)
{
	return i == CONFIG_KEY_JOB_environment || i == CONFIG_KEY_JOB_working_directory ||
	       i == CONFIG_KEY_JOB_success_exit_status || i == CONFIG_KEY_JOB_retry_delay ||
	       i == CONFIG_KEY_JOB_nice;
}

/* Every key of section kind (only_exec: its exec settings alone). */
static void print_keys(const struct config *c, enum config_section_kind kind, const void *base,
		       bool only_exec, FILE *f)
{
	const struct group_config *g = base;
	char a[FORMAT_DURATION_MAX], b[FORMAT_DURATION_MAX], codes[4 * 256];

	for (int i = 0; i < _CONFIG_KEY_MAX; i++) {
		const struct config_key *k = &config_keys[i];
		const void *fp = (const char *)base + k->offset;
		const char *s;

		if (k->section != kind || (only_exec && !is_exec_key(i)))
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
		case CONFIG_TYPE_STORE:
		case CONFIG_TYPE_ENVIRONMENT:
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
		case CONFIG_TYPE_EXIT_STATUS:
			fputs(exit_set_format(fp, codes, sizeof(codes)), f);
			break;
		case CONFIG_TYPE_NICE:
			if (*(const int *)fp != EXEC_NICE_INHERIT)
				fprintf(f, " %d", *(const int *)fp);
			break;
		}
		fputc('\n', f);
	}
}

void config_print(const struct config *c, FILE *f)
{
	fprintf(f, "# effective config of %s\n\n[supervisor]\n", c->path ? c->path : "(config)");
	print_keys(c, CONFIG_SECTION_SUPERVISOR, &c->supervisor, false, f);
	for (unsigned i = 0; i < c->n_pools; i++) {
		fprintf(f, "\n[pool %s]%s\n", c->pools[i].name,
			c->pools[i].line == 0 ? " # implicit: the config has no [pool] section"
					      : "");
		print_keys(c, CONFIG_SECTION_POOL, &c->pools[i], false, f);
	}
	for (unsigned i = 0; i < c->n_groups; i++) {
		fprintf(f, "\n[job %s]\n", c->groups[i].name);
		print_keys(c, CONFIG_SECTION_JOB, &c->groups[i], false, f);
	}
}

char *config_group_exec_format(const struct group_config *g)
{
	struct group_config d;
	char *text = NULL;
	size_t size = 0;
	FILE *f;

	config_group_exec_defaults(&d);
	if (config_group_exec_equal(g, &d))
		return strdup("");
	f = open_memstream(&text, &size);
	if (!f)
		return NULL;
	print_keys(NULL, CONFIG_SECTION_JOB, g, true, f);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}
