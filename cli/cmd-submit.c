/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead submit` (see commands.h): more jobs of a configured group, or an ad hoc group of
 * a builtin, a command (exec:) or a plugin. Counts, keys and the length of --run are checked
 * before anything is sent; --input paths and a plugin's PATH are made absolute here, since
 * the daemon's working directory is not ours. What cannot run is the daemon's to refuse
 * (it knows its PATH and probes the plugin): exit 1 with its reason.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/control-proto.h"

/* What the daemon takes as a submit key (daemon/submit-keys.h): said here, before it asks. */
static bool submit_key_ok(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > CONTROL_KEY_MAX)
		return false;
	for (; *key; key++)
		if (*key <= ' ' || *key > '~')
			return false;
	return true;
}

/*
 * --json: {"ok":true,"jobs":[{"id":41,"name":"ledger#41","group":"ledger"},...]}, each job
 * an object as `jobs --json` lists them (with what a submit knows of it), printed as it is
 * made (up to 100000 jobs).
 */
static void print_json(json_object *ids, json_object *jobs)
{
	fputs("{\"ok\":true,\"jobs\":[", stdout);
	for (size_t i = 0; i < jlen(ids); i++) {
		json_object *j = json_object_new_object();
		const char *name = json_object_get_string(json_object_array_get_idx(jobs, i));
		const char *hash = name ? strrchr(name, '#') : NULL;

		if (!j)
			cli_oom();
		json_object_object_add(j, "id", json_object_get(json_object_array_get_idx(ids, i)));
		json_object_object_add(j, "name", json_object_new_string(name ? name : ""));
		json_object_object_add(
			j, "group",
			json_object_new_string_len(name ? name : "",
						   hash ? (int)(hash - name)
							: (int)strlen(name ? name : "")));
		printf("%s%s", i ? "," : "",
		       json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
		json_object_put(j);
	}
	fputs("]}\n", stdout);
}

int cmd_submit(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pool", required_argument, NULL, 'p' },
		{ "run", required_argument, NULL, 'r' },
		{ "count", required_argument, NULL, 'c' },
		{ "arg", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 'S' },
		{ "input", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ "key", required_argument, NULL, 'k' },
		{},
	};
	const char *socket = NULL, *pool = NULL, *run = NULL, *key_arg = NULL;
	json_object *req = cli_request("submit"), *args = NULL, *reply, *ids, *jobs;
	json_object *inputs = NULL;
	bool json = false, counted = false;
	long count = 1;
	int o, r;

	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) >= 0) {
		const char *eq;
		char key[128];

		switch (o) {
		case 'p':
			pool = optarg;
			break;
		case 'r':
			run = optarg;
			if (strlen(run) > CONTROL_SUBMIT_RUN_MAX) {
				json_object_put(req);
				json_object_put(args);
				json_object_put(inputs);
				return cli_usage_error("submit",
						       "--run: %zu bytes long, at most %d",
						       strlen(run), CONTROL_SUBMIT_RUN_MAX);
			}
			break;
		case 'c':
			if (!cli_parse_long(optarg, 1, CONTROL_SUBMIT_MAX, &count)) {
				json_object_put(req);
				json_object_put(args);
				json_object_put(inputs);
				return cli_usage_error("submit",
						       "--count: expected 1..%d, got '%s'",
						       CONTROL_SUBMIT_MAX, optarg);
			}
			counted = true;
			break;
		case 'i': {
			/* The daemon's working directory is not ours: it takes absolute paths. */
			char cwd[PATH_MAX], abs[PATH_MAX * 2];

			if (optarg[0] != '/' && !getcwd(cwd, sizeof(cwd))) {
				json_object_put(req);
				json_object_put(args);
				json_object_put(inputs);
				return cli_usage_error("submit",
						       "--input %s: cannot tell the working "
						       "directory: %s",
						       optarg, strerror(errno));
			}
			snprintf(abs, sizeof(abs), "%s%s%s", optarg[0] == '/' ? "" : cwd,
				 optarg[0] == '/' ? "" : "/", optarg);
			if (!inputs)
				inputs = json_object_new_array();
			json_object_array_add(inputs, json_object_new_string(abs));
			break;
		}
		case 'a':
			eq = strchr(optarg, '=');
			if (!eq || eq == optarg) {
				json_object_put(req);
				json_object_put(args);
				return cli_usage_error(
					"submit", "--arg: expected KEY=VALUE, got '%s'", optarg);
			}
			if (!args)
				args = json_object_new_object();
			snprintf(key, sizeof(key), "%.*s", (int)(eq - optarg), optarg);
			json_object_object_add(args, key, json_object_new_string(eq + 1));
			break;
		case 'k':
			key_arg = optarg;
			if (!submit_key_ok(optarg)) {
				json_object_put(req);
				json_object_put(args);
				json_object_put(inputs);
				return cli_usage_error("submit",
						       "--key: expected 1..%d printable characters "
						       "without spaces, got '%s'",
						       CONTROL_KEY_MAX, optarg);
			}
			break;
		case 'j':
			json = true;
			break;
		case 'S':
			socket = optarg;
			break;
		case 'h':
			json_object_put(req);
			json_object_put(args);
			json_object_put(inputs);
			cli_usage("submit", stdout);
			return 0;
		default:
			json_object_put(req);
			json_object_put(args);
			json_object_put(inputs);
			return cli_bad_option("submit", o, argv);
		}
	}
	if ((argc - optind == 1) == (pool || run) || argc - optind > 1 || (!!pool != !!run) ||
	    (inputs && counted)) {
		json_object_put(req);
		json_object_put(args);
		json_object_put(inputs);
		return cli_usage_error("submit",
				       inputs && counted
					       ? "give --count or --input, not both (one job "
						 "per input)"
					       : "give a GROUP, or --pool and --run (not both)");
	}
	if (argc - optind == 1) {
		cli_add_string(req, "group", argv[optind]);
	} else if (strncmp(run, "plugin:", 7) == 0 && run[7] && run[7] != '/' &&
		   strchr(run + 7, ':')) {
		/* As --input: the daemon's working directory is not ours. */
		char cwd[PATH_MAX], *abs;

		if (!getcwd(cwd, sizeof(cwd))) {
			json_object_put(req);
			json_object_put(args);
			json_object_put(inputs);
			return cli_usage_error("submit",
					       "--run %s: cannot tell the working "
					       "directory: %s",
					       run, strerror(errno));
		}
		if (asprintf(&abs, "plugin:%s/%s", cwd, run + 7) < 0)
			cli_oom();
		cli_add_string(req, "pool", pool);
		cli_add_string(req, "run", abs);
		free(abs);
	} else {
		cli_add_string(req, "pool", pool);
		cli_add_string(req, "run", run);
	}
	if (inputs)
		json_object_object_add(req, "inputs", inputs);
	else
		json_object_object_add(req, "count", json_object_new_int64(count));
	if (args)
		json_object_object_add(req, "args", args);
	if (key_arg)
		cli_add_string(req, "key", key_arg);
	r = cli_call_ok(socket, req, &reply, NULL);
	if (r != 0)
		return r;
	ids = jget(reply, "ids");
	jobs = jget(reply, "jobs");
	if (json) {
		print_json(ids, jobs);
	} else {
		for (size_t i = 0; i < jlen(ids); i++)
			printf("%lld\t%s\n",
			       (long long)json_object_get_int64(json_object_array_get_idx(ids, i)),
			       json_object_get_string(json_object_array_get_idx(jobs, i)));
	}
	json_object_put(reply);
	return 0;
}
