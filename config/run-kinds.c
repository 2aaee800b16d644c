/* SPDX-License-Identifier: MIT */
/*
 * What a job group runs: `run = builtin:NAME`, `plugin:PATH:SYMBOL` or `exec:COMMAND
 * ARGS...`, and its `args` checked against it.
 *
 * builtin: NAME must be in common/builtins.h, and args are checked against its argspec.
 * plugin: PATH and SYMBOL are checked as text and PATH is made absolute (relative to the
 * config's directory); whether the file loads is config_probe_plugins()'s (probe.c), in a
 * process of its own. exec: the words are split and their placeholders checked now, and
 * COMMAND is found in PATH now, so nothing about it depends on the job. For plugin and exec
 * jobs, args are free KEY=VALUE words, each KEY once.
 *
 * Runs after the group's values are converted (values.c) and its files are checked
 * (validate.c: an exec's {input} needs inputs or spool); errors point at the run or args line.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/builtins.h"
#include "common/cmdline.h"
#include "common/strutil.h"
#include "config/parser.h"

#define CONFIG_SYMBOL_MAX 255 /* length of SYMBOL in plugin:PATH:SYMBOL */
#define CONFIG_ARG_KEY_MAX 64 /* length of a key in args of plugin and exec jobs */
#define CONFIG_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin" /* when PATH is not set */

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
		config_value_error(p, s, CONFIG_KEY_JOB_run, g->run, err);
		return;
	}
	if (bad[CONFIG_KEY_JOB_args])
		return;
	i = bh_builtin_check_args((enum bh_builtin)b, g->args, err, sizeof(err));
	if (i == -ENOMEM)
		p->oom = true;
	else if (i < 0)
		config_value_error(p, s, CONFIG_KEY_JOB_args, g->args, err);
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
		config_value_error(p, s, CONFIG_KEY_JOB_run, g->run,
				   "expected plugin:PATH:SYMBOL (no ':' before SYMBOL)");
		return;
	}
	symbol = colon + 1;
	if (colon == path) {
		config_value_error(p, s, CONFIG_KEY_JOB_run, g->run,
				   "empty PATH: expected plugin:PATH:SYMBOL");
		return;
	}
	if (!*symbol) {
		config_value_error(p, s, CONFIG_KEY_JOB_run, g->run,
				   "empty SYMBOL: expected plugin:PATH:SYMBOL");
		return;
	}
	if (!is_identifier(symbol) || strlen(symbol) > CONFIG_SYMBOL_MAX) {
		char err[CONFIG_SYMBOL_MAX + 128];

		str_printf(err, sizeof(err),
			   "SYMBOL '%.64s' is not a C identifier (A-Z a-z 0-9 _, not starting "
			   "with a digit, at most %d characters)",
			   symbol, CONFIG_SYMBOL_MAX);
		config_value_error(p, s, CONFIG_KEY_JOB_run, g->run, err);
		return;
	}
	dir_path = strndup(path, (size_t)(colon - path));
	if (!dir_path || !config_make_absolute(p, &dir_path, false)) {
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
	if (strlen(run) > config_value_max(CONFIG_KEY_JOB_run)) {
		config_value_error(p, s, CONFIG_KEY_JOB_run, g->run,
				   "PATH too long once made absolute");
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
	const char *args;
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
		return ctx->has_input || args_have_key(ctx->args, "input") ? "" : NULL;
	if (strncmp(name, "arg:", 4) == 0)
		return args_have_key(ctx->args, name + 4) ? "" : NULL;
	return "";
}

/* Never finds anything: used to see whether a word has placeholders. */
static const char *no_lookup(void *ud, const char *name)
{
	return NULL;
}

/*
 * exec:COMMAND ARGS... (the text after "exec:"): the words, their placeholders and the
 * command. 0, -ENOMEM, or -EINVAL with the reason in err.
 */
static int check_exec_text(const char *cmdline, const char *args, bool has_input,
			   const char *no_input, char *err, size_t errlen)
{
	struct placeholder_ctx ctx = { .args = args, .has_input = has_input };
	char why[512], **argv = NULL, *word;
	size_t argc;
	int r;

	r = cmdline_split(cmdline, &argv, &argc, why, sizeof(why));
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		str_printf(err, errlen, "%s: expected exec:COMMAND ARGS...", why);
		return -EINVAL;
	}
	for (size_t i = 0; i < argc; i++) {
		r = cmdline_expand(argv[i], placeholder_lookup, &ctx, &word, why, sizeof(why));
		if (r == -ENOMEM) {
			free(argv);
			return r;
		}
		free(word);
		if (r == -ENOENT && strstr(why, "{input}"))
			str_printf(err, errlen, "%s: %s", why, no_input);
		else if (r == -ENOENT)
			str_printf(err, errlen, "%s: args has no such key", why);
		else if (r < 0)
			str_printf(err, errlen, "%s", why);
		if (r < 0) {
			free(argv);
			return -EINVAL;
		}
	}
	/* The command itself is checked now, so it cannot depend on the job. */
	r = cmdline_expand(argv[0], no_lookup, NULL, &word, why, sizeof(why));
	if (r == -ENOENT) {
		str_printf(err, errlen,
			   "COMMAND cannot contain placeholders (it is checked at load)");
		r = -EINVAL;
	} else if (r == 0) {
		r = find_command(word, err, errlen) < 0 ? -EINVAL : 0;
		free(word);
	}
	free(argv);
	return r;
}

/* run = exec:COMMAND ARGS...: the words, their placeholders and the command. */
static void check_exec(struct parser *p, const struct raw_section *s, const struct group_config *g)
{
	char err[640];
	int r;

	if (s->values[CONFIG_KEY_JOB_run].semicolon_line) {
		/* Even when what is left is a valid command, it is not the one that was written. */
		config_value_error(p, s, CONFIG_KEY_JOB_run, g->run,
				   "the command line was cut short by a comment");
		return;
	}
	r = check_exec_text(g->run + 5, g->args, *g->inputs || *g->spool,
			    "the group has no inputs or spool", err, sizeof(err));
	if (r == -ENOMEM)
		p->oom = true;
	else if (r < 0)
		config_value_error(p, s, CONFIG_KEY_JOB_run, g->run, err);
}

/*
 * args of plugin and exec jobs: KEY=VALUE words, each KEY once; `input_from` names what
 * sets argument input for each job ("inputs", "spool"), or is NULL.
 */
static int check_free_args(const char *args, const char *input_from, char *err, size_t errlen)
{
	const char *w = args;

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
		if (klen == 5 && strncmp(w, "input", 5) == 0 && input_from) {
			str_printf(err, errlen,
				   "argument 'input' is set for each job by %s: leave it out",
				   input_from);
			return -EINVAL;
		}
		w += len;
	}
}

bool config_run_kind(struct parser *p, const struct raw_section *s, struct group_config *g,
		     const bool bad[_CONFIG_KEY_MAX])
{
	if (bad[CONFIG_KEY_JOB_run] || !g->run)
		return false;
	if (strncmp(g->run, "builtin:", 8) == 0) {
		g->kind = JOB_KIND_BUILTIN;
	} else if (strncmp(g->run, "plugin:", 7) == 0) {
		g->kind = JOB_KIND_PLUGIN;
	} else if (strncmp(g->run, "exec:", 5) == 0) {
		g->kind = JOB_KIND_EXEC;
	} else {
		config_value_error(
			p, s, CONFIG_KEY_JOB_run, g->run,
			"expected builtin:NAME, plugin:PATH:SYMBOL or exec:COMMAND ARGS...");
		return false;
	}
	return true;
}

void config_check_run(struct parser *p, const struct raw_section *s, struct group_config *g,
		      const bool bad[_CONFIG_KEY_MAX])
{
	char err[512];
	int r;

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
	r = check_free_args(g->args,
			    *g->inputs ? "inputs"
			    : *g->spool ? "spool"
					: NULL,
			    err, sizeof(err));
	if (r < 0)
		config_value_error(p, s, CONFIG_KEY_JOB_args, g->args, err);
}

int config_check_submitted_run(const char *run, const char *args, bool has_input, char *err,
			       size_t errlen)
{
	const char *colon;
	int r;

	if (strncmp(run, "exec:", 5) == 0) {
		r = check_exec_text(run + 5, args, has_input,
				    "give the files to submit (--input FILE), one job each", err,
				    errlen);
	} else if (strncmp(run, "plugin:", 7) == 0) {
		colon = strrchr(run + 7, ':');
		if (!colon || colon == run + 7 || run[7] != '/') {
			str_printf(err, errlen, "expected plugin:/ABSOLUTE/PATH:SYMBOL");
			return -EINVAL;
		}
		if (!is_identifier(colon + 1) || strlen(colon + 1) > CONFIG_SYMBOL_MAX) {
			str_printf(err, errlen,
				   "SYMBOL '%.64s' is not a C identifier (A-Z a-z 0-9 _, not "
				   "starting with a digit, at most %d characters)",
				   colon + 1, CONFIG_SYMBOL_MAX);
			return -EINVAL;
		}
		r = 0;
	} else {
		str_printf(err, errlen, "expected exec:COMMAND ARGS... or plugin:PATH:SYMBOL");
		return -EINVAL;
	}
	if (r < 0)
		return r;
	return check_free_args(args, has_input ? "the input files" : NULL, err, errlen);
}
