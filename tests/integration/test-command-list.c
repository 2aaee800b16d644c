/* SPDX-License-Identifier: MIT */
/*
 * The command list (CLI_COMMANDS: cli/command-list.h and common/control-proto.h) against
 * everything that shows it: the generated bash completion ($BULKHEAD_COMPLETION, run by bash
 * as a shell would run it), bulkhead(1) and docs/control-protocol.md from the source tree
 * ($BULKHEAD_SOURCE_ROOT), and `bulkhead --help` ($BULKHEAD_BIN). A command added, renamed or
 * given an option in the list and not in the man page or the protocol doc fails here; the
 * completion and the usage are expansions of the list, checked here to really be. The
 * completion's names of pools and groups come from a running daemon ($BULKHEAD_DAEMON), and
 * from none quietly.
 */
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/command-list.h"
#include "cmdutil.h"
#include "common/job-state.h"
#include "daemonutil.h"
#include "testutil.h"

#define WORDS_MAX 64

struct command {
	const char *name;
	const char *usage;
	const char *synopsis;
	bool daemon;
	bool request; /* served by bulkheadd: documented in docs/control-protocol.md */
};

#define REQUEST_LOCAL false
#define REQUEST_REQUEST true
#define REQUEST_CLIENT false
static const struct command commands[] = {
#define COMMAND_ENTRY(id, name, kind, usage, synopsis, help, output) \
	{ name, usage, synopsis, CLI_DAEMON_##kind, REQUEST_##kind },
	CLI_COMMANDS(COMMAND_ENTRY)
#undef COMMAND_ENTRY
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

#define LEVEL_ITEM(name, level) name,
static const char *const levels[] = { LOG_LEVELS(LEVEL_ITEM, ) NULL };
#define FAULT_ITEM(name) name,
static const char *const faults[] = { CONTROL_FAULTS(FAULT_ITEM, ) NULL };

/* A set of words: what a completion offered, or what it should. */
struct words {
	char *w[WORDS_MAX];
	size_t n;
};

static void words_add(struct words *s, const char *word, size_t len)
{
	for (size_t i = 0; i < s->n; i++)
		if (strlen(s->w[i]) == len && strncmp(s->w[i], word, len) == 0)
			return;
	ck_assert_uint_lt(s->n, WORDS_MAX);
	s->w[s->n] = strndup(word, len);
	ck_assert_ptr_nonnull(s->w[s->n]);
	s->n++;
}

static void words_free(struct words *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->w[i]);
	s->n = 0;
}

/* "a b c" as words. */
static void words_of(struct words *s, const char *text)
{
	while (*text) {
		size_t len = strcspn(text, " \n");

		if (len)
			words_add(s, text, len);
		text += len + (text[len] != '\0');
	}
}

/* Sorted, space-separated, for messages and comparisons. */
static char *words_text(const struct words *s)
{
	char *sorted[WORDS_MAX], *text = calloc(1, 4096);

	ck_assert_ptr_nonnull(text);
	memcpy(sorted, s->w, s->n * sizeof(char *));
	for (size_t i = 1; i < s->n; i++)
		for (size_t k = i; k > 0 && strcmp(sorted[k - 1], sorted[k]) > 0; k--) {
			char *t = sorted[k];

			sorted[k] = sorted[k - 1];
			sorted[k - 1] = t;
		}
	for (size_t i = 0; i < s->n; i++) {
		ck_assert_uint_lt(strlen(text) + strlen(sorted[i]) + 2, 4096);
		strcat(text, i ? " " : "");
		strcat(text, sorted[i]);
	}
	return text;
}

static void assert_same_words(const struct words *got, const struct words *want, const char *what)
{
	char *g = words_text(got), *w = words_text(want);

	ck_assert_msg(strcmp(g, w) == 0, "%s: offered '%s', expected '%s'", what, g, w);
	free(g);
	free(w);
}

/*
 * The options a command's usage names: every "--" (alone, as check-config's "[--]") or
 * "--word" that does not follow a letter, as a person reading the usage would find them.
 */
static void usage_options(struct words *s, const char *usage)
{
	for (const char *p = usage; (p = strstr(p, "--")) != NULL;) {
		size_t len = 2;

		if (p > usage && !strchr(" [|\n", p[-1])) {
			p += 2;
			continue;
		}
		while (islower((unsigned char)p[len]) || p[len] == '-')
			len++;
		words_add(s, p, len);
		p += len;
	}
}

/* What the completion offers for the words (the last one being completed). */
static void complete(struct words *ret, const char *const *words)
{
	static const char script[] = "source \"$1\"; shift\n"
				     "compopt() { :; }\n"
				     "COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); COMPREPLY=()\n"
				     "_bulkhead\n"
				     "printf '%s\\n' \"${COMPREPLY[@]}\"\n";
	const char *argv[16] = { "bash", "--norc", "-c",
				 script, "bash",   cmd_env_required("BULKHEAD_COMPLETION") };
	char *bash = cmd_find_in_path("bash");
	struct cmd c = { 0 };
	size_t n = 6;

	ck_assert_msg(bash, "bash not found");
	argv[0] = bash;
	for (size_t i = 0; words[i]; i++) {
		ck_assert_uint_lt(n, 15);
		argv[n++] = words[i];
	}
	argv[n] = NULL;
	ck_assert_int_eq(cmd_run(argv, NULL, &c), 0);
	ck_assert_msg(cmd_exited_0(&c) && !*c.err, "bash: %s", c.err);
	*ret = (struct words){ 0 };
	words_of(ret, c.out);
	cmd_free(&c);
	free(bash);
}

static char *source_file(const char *rel)
{
	char *path, *text;

	ck_assert_int_ge(asprintf(&path, "%s/%s", cmd_env_required("BULKHEAD_SOURCE_ROOT"), rel),
			 0);
	text = tu_read_file(path);
	ck_assert_msg(text, "cannot read %s", path);
	free(path);
	return text;
}

/* s with each '-' as troff's "\-", for finding names and options in a man page. */
static char *troff(const char *s)
{
	char *t = calloc(1, strlen(s) * 2 + 1), *p = t;

	ck_assert_ptr_nonnull(t);
	for (; *s; s++) {
		if (*s == '-')
			*p++ = '\\';
		*p++ = *s;
	}
	return t;
}

/* The text of the section that starts with line `head`, up to the next line starting `next`. */
static char *section(const char *text, const char *head, const char *next)
{
	const char *start = strstr(text, head), *end;

	ck_assert_msg(start, "no '%s'", head);
	end = strstr(start + strlen(head), next);
	return strndup(start, end ? (size_t)(end - start) : strlen(start));
}

START_TEST(test_completion_commands)
{
	const char *const line[] = { "bulkhead", "", NULL };
	struct words got, want = { 0 };

	complete(&got, line);
	for (size_t i = 0; i < N_COMMANDS; i++)
		words_add(&want, commands[i].name, strlen(commands[i].name));
	words_of(&want, "help --socket --json --help --version");
	assert_same_words(&got, &want, "bulkhead <TAB>");
	words_free(&got);
	words_free(&want);
}
END_TEST

/* Each command's options: those of its usage, --socket for the daemon's, and --help. */
START_TEST(test_completion_options)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const char *const line[] = { "bulkhead", commands[i].name, "--", NULL };
		struct words got, want = { 0 };
		char what[64];

		complete(&got, line);
		usage_options(&want, commands[i].usage);
		if (commands[i].daemon)
			words_add(&want, "--socket", 8);
		words_add(&want, "--help", 6);
		snprintf(what, sizeof(what), "bulkhead %s --<TAB>", commands[i].name);
		assert_same_words(&got, &want, what);
		words_free(&got);
		words_free(&want);
	}
}
END_TEST

/* The values it offers come from their tables too. */
START_TEST(test_completion_values)
{
	const char *const level[] = { "bulkhead", "log-level", "", NULL };
	const char *const fault[] = { "bulkhead", "inject", "main", "", NULL };
	const char *const state[] = { "bulkhead", "jobs", "--state", "", NULL };
	const char *const run_state[] = { "bulkhead", "run", "x.conf", "--state", "", NULL };
	struct words got, want = { 0 };

	complete(&got, level);
	for (size_t i = 0; levels[i]; i++)
		words_add(&want, levels[i], strlen(levels[i]));
	assert_same_words(&got, &want, "bulkhead log-level <TAB>");
	words_free(&got);
	words_free(&want);

	complete(&got, fault);
	for (size_t i = 0; faults[i]; i++)
		words_add(&want, faults[i], strlen(faults[i]));
	assert_same_words(&got, &want, "bulkhead inject main <TAB>");
	words_free(&got);
	words_free(&want);

	complete(&got, state);
	for (int s = 0; s < _JOB_STATE_MAX; s++) {
		const char *name = job_state_to_string((enum job_state)s);

		words_add(&want, name, strlen(name));
	}
	assert_same_words(&got, &want, "bulkhead jobs --state <TAB>");
	words_free(&got);
	words_free(&want);

	/* run --state takes a file, not a job state. */
	complete(&got, run_state);
	for (size_t i = 0; i < got.n; i++)
		ck_assert_msg(job_state_from_string(got.w[i]) < 0,
			      "bulkhead run x.conf --state <TAB> offered the job state %s", got.w[i]);
	words_free(&got);
}
END_TEST

/*
 * bulkhead(1): the SYNOPSIS has a line for each command, in the list's order and no other,
 * naming every option of its usage (--socket has its own section); COMMANDS has an entry for
 * each; the log levels and the inject faults are the tables'.
 */
START_TEST(test_man_page)
{
	char *page = source_file("man/bulkhead.1");
	char *synopsis = section(page, ".SH SYNOPSIS\n", "\n.SH ");
	char *entries = section(page, ".SH COMMANDS\n", "\n.SH ");
	const char *at = synopsis;
	size_t n_lines = 0;

	for (const char *l = synopsis; (l = strstr(l, "\n.B bulkhead ")); l++)
		n_lines++;
	ck_assert_msg(n_lines == N_COMMANDS,
		      "bulkhead(1) SYNOPSIS: %zu command lines, %zu commands", n_lines, N_COMMANDS);
	for (size_t i = 0; i < N_COMMANDS; i++) {
		char *name = troff(commands[i].name), *line, *block, *entry, *bi, *b;
		struct words options = { 0 };

		ck_assert_int_ge(asprintf(&line, "\n.B bulkhead %s\n", name), 0);
		at = strstr(at, line);
		ck_assert_msg(at, "bulkhead(1) SYNOPSIS: no '%s' (or not in the list's order)",
			      line + 1);
		block = section(at + 1, line + 1, "\n.br\n");
		usage_options(&options, commands[i].usage);
		for (size_t k = 0; k < options.n; k++) {
			char *opt = troff(options.w[k]);

			if (strcmp(options.w[k], "--socket") != 0)
				ck_assert_msg(strstr(block, opt),
					      "bulkhead(1) SYNOPSIS of %s does not name %s:\n%s",
					      commands[i].name, options.w[k], block);
			free(opt);
		}
		words_free(&options);
		ck_assert_int_ge(asprintf(&bi, "\n.TP\n.BI \"%s ", name), 0);
		ck_assert_int_ge(asprintf(&b, "\n.TP\n.B %s\n", name), 0);
		entry = strstr(entries, bi) ? strstr(entries, bi) : strstr(entries, b);
		ck_assert_msg(entry, "bulkhead(1) COMMANDS has no entry for %s", commands[i].name);
		if (strcmp(commands[i].name, "log-level") == 0) {
			char *text = section(entry + 1, ".TP\n", "\n.TP\n");

			for (size_t k = 0; levels[k]; k++)
				ck_assert_msg(strstr(text, levels[k]),
					      "log-level in bulkhead(1): no %s", levels[k]);
			free(text);
		}
		free(bi);
		free(b);
		free(block);
		free(line);
		free(name);
	}
	{
		char *want;

		ck_assert_int_ge(asprintf(&want, "\n.BR %s\n", CONTROL_FAULT_NAMES(" | ")), 0);
		ck_assert_msg(strstr(synopsis, want), "bulkhead(1) SYNOPSIS: no '%s'", want + 1);
		free(want);
	}
	free(entries);
	free(synopsis);
	free(page);
}
END_TEST

/*
 * docs/control-protocol.md: a section for each request the daemon serves and for no other
 * name, the log levels and faults of the tables, and the protocol version.
 */
START_TEST(test_protocol_doc)
{
	char *doc = source_file("docs/control-protocol.md");
	char *requests = section(doc, "## Requests and replies\n", "\n## ");
	char *want;
	size_t n_sections = 0, n_requests = 0;

	for (const char *l = requests; (l = strstr(l, "\n### ")); l++)
		n_sections++;
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (!commands[i].request)
			continue;
		n_requests++;
		ck_assert_int_ge(asprintf(&want, "\n### %s\n", commands[i].name), 0);
		ck_assert_msg(strstr(requests, want), "docs/control-protocol.md: no '### %s'",
			      commands[i].name);
		free(want);
	}
	ck_assert_msg(n_sections == n_requests,
		      "docs/control-protocol.md: %zu sections, %zu requests", n_sections,
		      n_requests);
	ck_assert_msg(strstr(doc, "Levels: `" LOG_LEVEL_NAMES(" ") "`"),
		      "docs/control-protocol.md: log-level does not list " LOG_LEVEL_NAMES(" "));
	for (size_t i = 0; faults[i]; i++) {
		ck_assert_int_ge(asprintf(&want, "`%s`", faults[i]), 0);
		ck_assert_msg(strstr(requests, want), "docs/control-protocol.md: no fault %s",
			      want);
		free(want);
	}
	ck_assert_int_ge(asprintf(&want, "\"protocol\":%d", CONTROL_PROTOCOL_VERSION), 0);
	ck_assert_msg(strstr(doc, want), "docs/control-protocol.md: no %s", want);
	free(want);
	free(requests);
	free(doc);
}
END_TEST

/* `bulkhead --help` lists every command, and each daemon command has its usage. */
START_TEST(test_usage)
{
	const char *bin = cmd_env_required("BULKHEAD_BIN");
	struct cmd c = { 0 };

	{
		const char *argv[] = { bin, "--help", NULL };

		ck_assert_int_eq(cmd_run(argv, NULL, &c), 0);
		ck_assert(cmd_exited_0(&c));
	}
	for (size_t i = 0; i < N_COMMANDS; i++) {
		char *want;

		ck_assert_int_ge(
			asprintf(&want, "\n  %s%s", commands[i].name,
				 *(commands[i].synopsis ? commands[i].synopsis : commands[i].usage)
					 ? " "
					 : ""),
			0);
		ck_assert_msg(strstr(c.out, want), "bulkhead --help does not list %s:\n%s",
			      commands[i].name, c.out);
		free(want);
	}
	cmd_free(&c);
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const char *argv[] = { bin, commands[i].name, "--help", NULL };
		char *want;

		if (!commands[i].daemon)
			continue; /* run, check-config and experiment have usages of their own */
		ck_assert_int_ge(asprintf(&want, "Usage: bulkhead %s %s%s[--socket PATH]\n",
					  commands[i].name, commands[i].usage,
					  *commands[i].usage ? " " : ""),
				 0);
		ck_assert_int_eq(cmd_run(argv, NULL, &c), 0);
		ck_assert_msg(cmd_exited_0(&c) && strcmp(c.out, want) == 0,
			      "bulkhead %s --help:\n%s\nexpected:\n%s", commands[i].name, c.out,
			      want);
		cmd_free(&c);
		free(want);
	}
}
END_TEST

/*
 * Pool and group names from the running daemon (`status --json`, with the command line's
 * --socket); with no daemon there, none and nothing on stderr.
 */
START_TEST(test_completion_daemon_names)
{
	const char *bin = cmd_env_required("BULKHEAD_BIN");
	struct daemon d;
	struct words got, want = { 0 };

	dmn_setup();
	dmn_init(&d);
	dmn_write_config(&d, "[pool alpha]\nworkers = 1\nthreads = 1\n"
			     "[pool beta]\nworkers = 1\nthreads = 1\n"
			     "[job gamma]\npool = beta\nrun = builtin:noop\n"
			     "[job delta]\npool = alpha\nrun = builtin:noop\n");
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	{
		const char *const pools[] = { bin, "--socket", d.sock_path, "restart", "", NULL };
		const char *const after[] = { bin, "submit", "--socket", d.sock_path, "--pool", "",
					      NULL };
		const char *const groups[] = { bin, "--socket", d.sock_path, "wait", "--group", "",
					       NULL };
		const char *const group_arg[] = { bin, "--socket", d.sock_path, "submit", "g", NULL };

		complete(&got, pools);
		words_add(&want, "alpha", 5);
		words_add(&want, "beta", 4);
		assert_same_words(&got, &want, "bulkhead --socket S restart <TAB>");
		words_free(&got);
		complete(&got, after);
		assert_same_words(&got, &want, "bulkhead submit --socket S --pool <TAB>");
		words_free(&got);
		words_free(&want);
		complete(&got, groups);
		words_add(&want, "gamma", 5);
		words_add(&want, "delta", 5);
		assert_same_words(&got, &want, "bulkhead --socket S wait --group <TAB>");
		words_free(&got);
		words_free(&want);
		complete(&got, group_arg);
		words_add(&want, "gamma", 5);
		assert_same_words(&got, &want, "bulkhead --socket S submit g<TAB>");
		words_free(&got);
		words_free(&want);
	}
	dmn_stop(&d);
	{	/* no daemon: nothing offered, nothing said (complete() checks stderr) */
		const char *const pools[] = { bin, "--socket", d.sock_path, "restart", "", NULL };

		complete(&got, pools);
		ck_assert_uint_eq(got.n, 0);
		words_free(&got);
	}
	dmn_free(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("command-list");
	TCase *tc = tcase_create("command-list");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_completion_commands);
	tcase_add_test(tc, test_completion_options);
	tcase_add_test(tc, test_completion_values);
	tcase_add_test(tc, test_completion_daemon_names);
	tcase_add_test(tc, test_man_page);
	tcase_add_test(tc, test_protocol_doc);
	tcase_add_test(tc, test_usage);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
