/* SPDX-License-Identifier: MIT */
/*
 * gen-completion TEMPLATE: writes the bash completion of bulkhead(1) to stdout, the template
 * (completion/bulkhead.bash.in) with its placeholders filled in from the lists they come
 * from, so that the completion cannot drift from the program (as man/gen-conf-man.c does for
 * bulkhead.conf(5)):
 *   @COMMANDS@           every command of CLI_COMMANDS (cli/command-list.h), in order
 *   @COMMAND_OPTIONS@    one case arm per command: the --options of its usage, --socket for
 *                        those that talk to bulkheadd, --help
 *   @LOG_LEVELS@         LOG_LEVELS (common/log.h), and @LOG_LEVEL_PATTERN@ as a case pattern
 *   @FAULTS@             CONTROL_FAULTS (common/control-proto.h)
 *   @JOB_STATES@         the job states (common/job-state.h)
 *   @BUILTIN_RUNS@       builtin:NAME for every builtin (common/builtins.h)
 * Any other word between two '@' is an error, so a typo in the template fails the build.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/command-list.h"
#include "common/builtins.h"
#include "common/job-state.h"

struct command {
	const char *name;
	const char *usage;
	int daemon; /* takes --socket */
};

static const struct command commands[] = {
#define COMMAND_ENTRY(id, name, kind, usage, synopsis, help, output) \
	{ name, usage, CLI_DAEMON_##kind },
	CLI_COMMANDS(COMMAND_ENTRY)
#undef COMMAND_ENTRY
};

/* The options of a usage text: each "--word" (or a bare "--") once, in order, space-separated. */
static void usage_options(FILE *out, const char *usage)
{
	char seen[1024] = " ";

	for (const char *p = usage; (p = strstr(p, "--"));) {
		size_t len = 2;
		char word[64];

		if (p > usage && (isalnum((unsigned char)p[-1]) || p[-1] == '-')) {
			p += 2;
			continue;
		}
		while (isalnum((unsigned char)p[len]) || p[len] == '-')
			len++;
		snprintf(word, sizeof(word), " %.*s ", (int)len, p);
		if (!strstr(seen, word) && strlen(seen) + len + 1 < sizeof(seen)) {
			fprintf(out, "%.*s ", (int)len, p);
			strcat(seen, word + 1);
		}
		p += len;
	}
}

/* Writes the value of placeholder `name` to out; -ENOENT for an unknown one. */
static int fill(FILE *out, const char *name)
{
	if (strcmp(name, "COMMANDS") == 0) {
		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			fprintf(out, "%s%s", i ? " " : "", commands[i].name);
	} else if (strcmp(name, "COMMAND_OPTIONS") == 0) {
		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
			fprintf(out, "%s\t%s) opts=\"", i ? "\n" : "", commands[i].name);
			usage_options(out, commands[i].usage);
			fprintf(out, "%s--help\" ;;", commands[i].daemon ? "--socket " : "");
		}
	} else if (strcmp(name, "LOG_LEVELS") == 0) {
		fputs(LOG_LEVEL_NAMES(" "), out);
	} else if (strcmp(name, "LOG_LEVEL_PATTERN") == 0) {
		fputs(LOG_LEVEL_NAMES(" | "), out);
	} else if (strcmp(name, "FAULTS") == 0) {
		fputs(CONTROL_FAULT_NAMES(" "), out);
	} else if (strcmp(name, "JOB_STATES") == 0) {
		for (int s = 0; s < _JOB_STATE_MAX; s++)
			fprintf(out, "%s%s", s ? " " : "", job_state_to_string((enum job_state)s));
	} else if (strcmp(name, "BUILTIN_RUNS") == 0) {
		for (int b = 0; b < _BH_BUILTIN_MAX; b++)
			fprintf(out, "%sbuiltin:%s", b ? " " : "", bh_builtin_table[b].name);
	} else {
		return -ENOENT;
	}
	return 0;
}

int main(int argc, char **argv)
{
	char *line = NULL;
	size_t size = 0;
	unsigned lineno = 0;
	FILE *in;

	if (argc != 2) {
		fprintf(stderr, "usage: gen-completion TEMPLATE\n");
		return 2;
	}
	in = fopen(argv[1], "re");
	if (!in) {
		fprintf(stderr, "gen-completion: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	while (getline(&line, &size, in) > 0) {
		const char *p = line, *at;

		lineno++;
		while ((at = strchr(p, '@'))) {
			const char *end = strchr(at + 1, '@');
			char name[64];

			if (!end || (size_t)(end - at - 1) >= sizeof(name) ||
			    strspn(at + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") !=
				    (size_t)(end - at - 1)) {
				fwrite(p, 1, (size_t)(at - p) + 1, stdout); /* a lone '@' */
				p = at + 1;
				continue;
			}
			snprintf(name, sizeof(name), "%.*s", (int)(end - at - 1), at + 1);
			fwrite(p, 1, (size_t)(at - p), stdout);
			if (fill(stdout, name) < 0) {
				fprintf(stderr, "gen-completion: %s:%u: unknown placeholder @%s@\n",
					argv[1], lineno, name);
				return 1;
			}
			p = end + 1;
		}
		fputs(p, stdout);
	}
	free(line);
	fclose(in);
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}
