/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead run CONFIG`: a one-shot run. Loads and validates the config (exit 78 before
 * anything is spawned if it is wrong), runs the master in the foreground until every job has
 * ended, prints the per-group table and writes the JSON report. Exit 0 when every group
 * reached its `expect`, else 1.
 *
 * --state FILE records the run in a store file (daemon/durable.c) and resumes it when the
 * file already holds it: what ended stays ended (the report covers the whole run), what did
 * not runs. A file that cannot be used exits 65 (damaged, newer, another run) or 74 (I/O).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/run.h"
#include "common/log.h"
#include "config/config.h"
#include "daemon/master.h"
#include "daemon/spawn-worker.h"
#include "daemon/spool.h"

static void run_usage(FILE *f)
{
	fputs("Usage: bulkhead run CONFIG [--report-json FILE] [--quiet] [--state FILE "
	      "[--retry-failed]]\n",
	      f);
}

static bool all_expected(struct master *m)
{
	struct master_group g;

	for (unsigned i = 0; i < master_n_groups(m); i++)
		if (master_group(m, i, &g) && !g.ok)
			return false;
	return true;
}

/* Takes ownership of c. */
static int run_config(struct config *c, const char *report, bool quiet,
		      const struct master_options *o)
{
	struct master *m = NULL;
	struct progress *p = NULL;
	struct spools *spools = NULL;
	int r, rc;

	r = master_new(c, o, &m);
	if (r < 0) {
		config_free(c);
		if (o->state) /* master_new said why */
			return r == -EBADMSG || r == -EPROTO || r == -EINVAL ? EXIT_DATA : EXIT_IO;
		log_error_errno(r, "cannot set up the master");
		return EXIT_NOT_EXPECTED;
	}
	if (spools_start(m, false, &spools) < 0) {
		master_free(m);
		return EXIT_NOT_EXPECTED;
	}
	if (!quiet)
		progress_start(m, &p);
	r = master_run(m);
	progress_stop(p);
	spools_free(spools);
	if (r < 0) {
		log_error_errno(r, "event loop failed");
		master_free(m);
		return EXIT_NOT_EXPECTED;
	}
	if (!quiet)
		report_table(stdout, m);
	rc = all_expected(m) ? EXIT_ALL_EXPECTED : EXIT_NOT_EXPECTED;
	if (master_state_error(m) < 0)
		rc = EXIT_IO;
	if (report) {
		r = report_json_write(report, m);
		if (r < 0) {
			fprintf(stderr, "bulkhead: writing the report to %s: %s\n", report,
				strerror(-r));
			rc = EXIT_IO;
		}
	}
	master_free(m);
	return rc;
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "report-json", required_argument, NULL, 'r' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "state", required_argument, NULL, 's' },
		{ "retry-failed", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct master_options mo = { 0 };
	const char *report = NULL;
	struct config *c = NULL;
	bool quiet = false;
	int o, r;

	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "qh", opts, NULL)) >= 0) {
		switch (o) {
		case 'r':
			report = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 's':
			mo.state = optarg;
			break;
		case 'R':
			mo.retry_failed = true;
			break;
		case 'h':
			run_usage(stdout);
			return 0;
		default:
			fprintf(stderr, "bulkhead run: %s: unknown option or missing argument\n",
				argv[optind - 1]);
			run_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "bulkhead run: %s\n",
			argc - optind == 0 ? "missing CONFIG" : "too many arguments");
		run_usage(stderr);
		return EXIT_USAGE;
	}
	if (mo.retry_failed && !mo.state) {
		fprintf(stderr, "bulkhead run: --retry-failed needs --state FILE\n");
		run_usage(stderr);
		return EXIT_USAGE;
	}
	if (report && cli_check_output_path("--report-json", report) < 0)
		return EXIT_IO;
	/* Plugins are loaded by a throwaway worker first: a bad one is a config error. */
	r = config_load_checked(argv[optind], NULL, spawn_worker_path(), 0, &c);
	if (r != 0)
		return r;
	if (c->n_groups == 0) {
		fprintf(stderr, "%s: nothing to run: no [job NAME] sections\n", argv[optind]);
		config_free(c);
		return EXIT_CONFIG;
	}
	if (quiet)
		log_set_max_level(LOG_WARNING);
	else
		log_set_max_level((int)c->supervisor.log_level);
	return run_config(c, report, quiet, &mo);
}
