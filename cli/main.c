/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead`: dispatches to the subcommands. Exit codes: see cli.h and bulkhead(1).
 *
 * Whatever the command, its standard output is flushed and closed here, and a write that
 * failed on the way (a full disk, /dev/full, a closed descriptor) is an error with its own
 * exit code (EXIT_IO), never a silent success.
 */
#include <errno.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

#include "cli/check-config.h"
#include "cli/cli.h"
#include "common/log.h"

static void usage(FILE *f)
{
	fputs("Usage: bulkhead COMMAND [ARGS]\n"
	      "\n"
	      "Commands:\n"
	      "  run CONFIG [--report-json FILE] [--quiet]\n"
	      "                         run every job of CONFIG under supervision, then exit\n"
	      "  check-config FILE      validate FILE and print the effective config\n"
	      "  experiment [--jobs N] [--threads T] [--job builtin:NAME] [--arg K=V]...\n"
	      "             [--crash-rate R] [--modes LIST] [--runs K] [--json FILE]\n"
	      "             [--svg FILE] [--quiet]\n"
	      "                         run one workload as threads, threads+restart,\n"
	      "                         processes, hybrid and fork-per-job, and compare\n"
	      "\n"
	      "Commands for a running bulkheadd (each takes --socket PATH):\n"
	      "  status [--json]        the daemon, its jobs, pools and workers\n"
	      "  jobs [--state STATE] [--group GROUP] [--limit N] [--json]\n"
	      "                         list jobs; STATE: queued running done failed crashed\n"
	      "                         timed_out cancelled; N: 1..100000 (default 1000)\n"
	      "  reload                 re-read the config (as SIGHUP does)\n"
	      "  log-level LEVEL        set the log level: debug info notice warning err\n"
	      "  top [--interval SECONDS] [--count N]\n"
	      "                         live view; one line per refresh when not on a terminal\n"
	      "  submit GROUP | --pool POOL --run builtin:NAME [--count N] [--arg K=V]...\n"
	      "                         queue jobs: more of a config group, or a new group\n"
	      "  wait ID... | --group GROUP\n"
	      "                         wait until those jobs have ended\n"
	      "  cancel ID...           cancel jobs (running ones are told to stop)\n"
	      "  restart POOL[/INDEX]   replace a pool's workers (or one) gracefully\n"
	      "  inject POOL[/INDEX] segv|abort|hang|kill|leak\n"
	      "                         make a worker die of a real fault\n"
	      "\n"
	      "The socket: --socket PATH, else $BULKHEAD_SOCKET, else\n"
	      "$RUNTIME_DIRECTORY/control.sock, else /run/bulkhead/control.sock.\n"
	      "\n"
	      "Exit codes: run: 0 every job group reached its expect, 1 some job did not;\n"
	      "            experiment: 0 done, 1 a run failed;\n"
	      "            daemon commands: 0 ok, 1 refused by the daemon or no connection;\n"
	      "            2 usage error, 74 the output could not be written, 78 config error.\n",
	      f);
}

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *output; /* what it writes on stdout, for the message when that fails */
} commands[] = {
	{ "run", cmd_run, "the report" },
	{ "check-config", cmd_check_config, "the config" },
	{ "experiment", cmd_experiment, "the comparison" },
	{ "status", cmd_status, "the status" },
	{ "jobs", cmd_jobs, "the jobs" },
	{ "reload", cmd_reload, "the reply" },
	{ "log-level", cmd_log_level, "the reply" },
	{ "top", cmd_top, "the view" },
	{ "submit", cmd_submit, "the job ids" },
	{ "wait", cmd_wait, "the jobs" },
	{ "cancel", cmd_cancel, "the reply" },
	{ "restart", cmd_restart, "the reply" },
	{ "inject", cmd_inject, "the reply" },
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

int main(int argc, char **argv)
{
	const struct command *c;

	log_set_program("bulkhead");
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	c = find_command(argv[1]);
	if (c)
		return close_stdout(c->output, c->run(argc - 1, argv + 1));
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return close_stdout("the usage", 0);
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("bulkhead %s\n", BULKHEAD_VERSION);
		return close_stdout("the version", 0);
	}
	fprintf(stderr, "bulkhead: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
