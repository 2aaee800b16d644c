/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead`: dispatches to the subcommands. Exit codes: see cli.h and bulkhead(1).
 *
 * Global options come before the command: --socket PATH (for the commands that talk to
 * bulkheadd, which take it after the command too; it is handed on as if given first, so one
 * given after the command wins), --json (for the commands whose usage has it, handed on
 * likewise), --help and --version. Whatever the command, its standard
 * output is flushed and closed here, and a write that failed on the way (a full disk,
 * /dev/full, a closed descriptor) is an error with its own exit code (EXIT_IO), never a
 * silent success.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

#include "cli/check-config.h"
#include "cli/cli.h"
#include "cli/command-list.h"
#include "common/log.h"

/*
 * One command in the list of the usage: "  NAME SYNOPSIS", continued lines of the synopsis
 * under its first word, then the help at CLI_HELP_COLUMN, on a line of its own when the
 * synopsis reaches too far; continued lines of the help at that column too.
 */
static void usage_command(FILE *f, const char *name, const char *usage, const char *synopsis,
			  const char *help)
{
	const char *s = synopsis ? synopsis : usage;
	int col = fprintf(f, "  %s%s", name, *s ? " " : "");

	for (const char *nl; (nl = strchr(s, '\n')); s = nl + 1) {
		fprintf(f, "%.*s\n", (int)(nl - s), s);
		col = fprintf(f, "%*s", (int)strlen(name) + 3, "");
	}
	col += fprintf(f, "%s", s);
	if (col + 2 > CLI_HELP_COLUMN) {
		fputc('\n', f);
		col = 0;
	}
	for (const char *nl; (nl = strchr(help, '\n')); help = nl + 1, col = 0)
		fprintf(f, "%*s%.*s\n", CLI_HELP_COLUMN - col, "", (int)(nl - help), help);
	fprintf(f, "%*s%s\n", CLI_HELP_COLUMN - col, "", help);
}

static void usage(FILE *f)
{
	fputs("Usage: bulkhead COMMAND [ARGS]\n"
	      "\n"
	      "Commands:\n",
	      f);
#define USAGE_COMMAND(id, name, kind, usage, synopsis, help, output) \
	usage_command(f, name, usage, synopsis, help);
	CLI_LOCAL_COMMANDS(USAGE_COMMAND)
	fputs("\n"
	      "Commands for a running bulkheadd (each takes --socket PATH, and --json\n"
	      "where its usage says, also before the command: bulkhead --json status):\n",
	      f);
	CONTROL_COMMANDS(USAGE_COMMAND)
#undef USAGE_COMMAND
	fputs("\n"
	      "The socket: --socket PATH, else $BULKHEAD_SOCKET, else\n"
	      "$RUNTIME_DIRECTORY/control.sock, else /run/bulkhead/control.sock.\n"
	      "\n"
	      "Exit codes: run: 0 every job group reached its expect, 1 some job did not;\n"
	      "            experiment: 0 done, 1 a run failed;\n"
	      "            daemon commands: 0 ok, 1 refused by the daemon or no connection,\n"
	      "            124 wait --timeout passed first;\n"
	      "            2 usage error, 74 the output could not be written, 78 config error.\n",
	      f);
}

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	bool daemon; /* talks to bulkheadd: takes --socket */
	const char *output; /* what it writes on stdout, for the message when that fails */
	const char *usage; /* --json in it: the command takes it */
} commands[] = {
#define COMMAND_ENTRY(id, name, kind, usage, synopsis, help, output) \
	{ name, cmd_##id, CLI_DAEMON_##kind, output, usage },
	CLI_COMMANDS(COMMAND_ENTRY)
#undef COMMAND_ENTRY
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

/*
 * Flushes and closes stdout. A write that failed on the way, or now, turns rc into EXIT_IO
 * with one message naming `what`. Closing a stdout that was never open and never written to
 * is fine (as gnulib's close_stdout).
 */
static int close_stdout(const char *what, int rc)
{
	bool pending = __fpending(stdout) != 0, failed = ferror(stdout) != 0;
	int err = 0;

	errno = 0;
	if (fclose(stdout) != 0 && (pending || errno != EBADF)) {
		failed = true;
		err = errno;
	}
	if (!failed)
		return rc;
	fprintf(stderr, "bulkhead: writing %s to stdout: %s\n", what,
		err ? strerror(err) : "a write failed");
	return EXIT_IO;
}

/*
 * Runs `command` with argv[0] its name; `socket` (may be NULL) is handed on as --socket, and
 * `json` as --json, both before the command's own arguments.
 */
static int run_command(const struct command *c, int argc, char **argv, const char *socket,
		       bool json)
{
	char **args;
	int rc, n = 1;

	if (!socket && !json)
		return c->run(argc, argv);
	args = calloc((size_t)argc + 4, sizeof(*args));
	if (!args) {
		fputs("bulkhead: out of memory\n", stderr);
		return EXIT_NOT_EXPECTED;
	}
	args[0] = argv[0];
	if (socket) {
		args[n++] = (char *)"--socket";
		args[n++] = (char *)socket;
	}
	if (json)
		args[n++] = (char *)"--json";
	memcpy(args + n, argv + 1, (size_t)(argc - 1) * sizeof(*args));
	rc = c->run(argc - 1 + n, args);
	free(args);
	return rc;
}

int main(int argc, char **argv)
{
	const char *socket = NULL;
	const struct command *c;
	bool json = false;
	int i;

	log_set_program("bulkhead");
	/* Global options, before the command. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return close_stdout("the usage", 0);
		}
		if (strcmp(a, "--version") == 0) {
			printf("bulkhead %s\n", BULKHEAD_VERSION);
			return close_stdout("the version", 0);
		}
		if (strcmp(a, "--json") == 0) {
			json = true;
		} else if (strncmp(a, "--socket=", 9) == 0) {
			socket = a + 9;
		} else if (strcmp(a, "--socket") == 0) {
			if (++i == argc) {
				fputs("bulkhead: option '--socket' needs an argument\n\n", stderr);
				usage(stderr);
				return EXIT_USAGE;
			}
			socket = argv[i];
		} else {
			fprintf(stderr,
				"bulkhead: unknown option '%s' (before the command: --socket, --json; "
				"a command's own options go after it)\n\n",
				a);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i == argc) {
		if (socket)
			fputs("bulkhead: no command\n\n", stderr);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[i], "help") == 0) {
		usage(stdout);
		return close_stdout("the usage", 0);
	}
	c = find_command(argv[i]);
	if (!c) {
		fprintf(stderr, "bulkhead: unknown command '%s'\n\n", argv[i]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (socket && !c->daemon) {
		fprintf(stderr,
			"bulkhead: --socket is for the commands that talk to bulkheadd, "
			"not for %s\n",
			c->name);
		return EXIT_USAGE;
	}
	if (json && (!c->daemon || !strstr(c->usage, "--json"))) {
		fprintf(stderr, "bulkhead: %s takes no --json\n", c->name);
		return EXIT_USAGE;
	}
	return close_stdout(c->output, run_command(c, argc - i, argv + i, socket, json));
}
