/* SPDX-License-Identifier: MIT */
/*
 * The commands about jobs (see commands.h): jobs (a table, or the reply as it came), submit,
 * wait and cancel. Job ids, states, counts and --input paths are checked before anything is
 * sent; --input paths are made absolute here, since the daemon's working directory is not
 * ours.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/control-proto.h"
#include "common/job-state.h"
#include "common/units.h"

/* ---- jobs ---- */

/*
 * The jobs table. PROGRESS, INPUT and RESULT are columns only when a listed job has one
 * (most jobs have none); RESULT comes last, as it may hold spaces.
 */
static void print_jobs(FILE *f, json_object *reply)
{
	static const char *const optional[] = { "progress", "input", "result" };
	static const char *const optional_heads[] = { "PROGRESS", "INPUT", "RESULT" };
	const char *heads[TABLE_COLS_MAX + 1] = { "ID",	      "NAME",  "GROUP",	 "POOL",
						  "STATE",    "ATTEMPTS", "CAUSE", "WORKER" };
	char align[TABLE_COLS_MAX + 1] = "rllllrll";
	bool show[3] = { false, false, false };
	json_object *jobs = jget(reply, "jobs");
	size_t n = jlen(jobs), n_cols = 8;
	double total;
	struct table t;

	if (n == 0) {
		fputs("no matching jobs\n", f);
		return;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < 3; k++)
			show[k] |= jget(json_object_array_get_idx(jobs, i), optional[k]) != NULL;
	for (size_t k = 0; k < 3; k++) {
		if (!show[k])
			continue;
		align[n_cols] = k == 0 ? 'r' : 'l';
		heads[n_cols++] = optional_heads[k];
	}
	align[n_cols] = '\0';
	heads[n_cols] = NULL;
	table_init(&t, heads, align);
	for (size_t i = 0; i < n; i++) {
		json_object *j = json_object_array_get_idx(jobs, i);
		const char *row[TABLE_COLS_MAX];
		char id[32], att[32], pct[32];
		size_t c = 8;
		double v;

		row[0] = fmt_int(id, sizeof(id), j, "id");
		row[1] = fmt_str(j, "name");
		row[2] = fmt_str(j, "group");
		row[3] = fmt_str(j, "pool");
		row[4] = fmt_str(j, "state");
		row[5] = fmt_int(att, sizeof(att), j, "attempts");
		row[6] = fmt_str(j, "cause");
		row[7] = fmt_str(j, "worker");
		if (show[0])
			row[c++] = jnum(j, "progress", &v) ? str_printf(pct, sizeof(pct), "%.1f%%",
									 v * 100)
							   : "-";
		if (show[1])
			row[c++] = fmt_str(j, "input");
		if (show[2])
			row[c++] = fmt_str(j, "result");
		table_add(&t, row);
	}
	table_print(&t, f, "", 0, t.n_rows);
	table_free(&t);
	if (jnum(reply, "total_matching", &total) && total > (double)n)
		fprintf(f, "%zu of %lld jobs\n", n, (long long)total);
}

/* Where it crashed, if the daemon knows: "crash" and its frames, one line each. */
static void print_crash(FILE *f, json_object *j)
{
	json_object *frames = jget(j, "frames");
	size_t n = frames && json_object_is_type(frames, json_type_array)
			   ? json_object_array_length(frames)
			   : 0;

	if (!jstr(j, "crash"))
		return;
	fprintf(f, "%-12s %s\n", "crash", jstr(j, "crash"));
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%-12s #%zu %s\n", i ? "" : "frames", i,
			json_object_get_string(json_object_array_get_idx(frames, i)));
}

/* One job whole: every member of its view, a line each. */
static void print_job(FILE *f, json_object *j)
{
	static const char *const plain[] = { "name", "group", "pool", "state", "cause", "worker",
					     "node", "input", "result" };
	char buf[64];
	double v;

	fprintf(f, "%-12s %s\n", "id", fmt_int(buf, sizeof(buf), j, "id"));
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (jget(j, plain[i]) && (*fmt_str(j, plain[i]) || i < 4))
			fprintf(f, "%-12s %s\n", plain[i], fmt_str(j, plain[i]));
	print_crash(f, j);
	fprintf(f, "%-12s %s\n", "accepted", fmt_when(buf, sizeof(buf), j, "accepted_at"));
	fprintf(f, "%-12s %s\n", "started", fmt_when(buf, sizeof(buf), j, "started_at"));
	fprintf(f, "%-12s %s\n", "ended", fmt_when(buf, sizeof(buf), j, "ended_at"));
	if (jnum(j, "run_seconds", &v))
		fprintf(f, "%-12s %.3fs\n", "run time", v);
	fprintf(f, "%-12s %s\n", "attempts", fmt_int(buf, sizeof(buf), j, "attempts"));
	fprintf(f, "%-12s %s\n", "runs", fmt_int(buf, sizeof(buf), j, "runs"));
	fprintf(f, "%-12s %s\n", "re-runs", fmt_int(buf, sizeof(buf), j, "reruns"));
	fprintf(f, "%-12s %s\n", "host deaths", fmt_int(buf, sizeof(buf), j, "host_deaths"));
	if (jnum(j, "progress", &v))
		fprintf(f, "%-12s %.1f%%\n", "progress", v * 100);
}

/*
 * --since WHEN into µs since the epoch: a duration ago ("10min", "2h", "1d"), @SECONDS, or a
 * local date and time ("2026-12-03", "2026-12-03 14:30", "2026-12-03 14:30:15"). 0 if not.
 */
static int64_t parse_since(const char *s)
{
	struct timespec now;
	struct tm tm = { .tm_isdst = -1 };
	usec_t ago;
	const char *end;
	long long secs;
	char *e;

	clock_gettime(CLOCK_REALTIME, &now);
	if (s[0] == '@') {
		errno = 0;
		secs = strtoll(s + 1, &e, 10);
		return !errno && e != s + 1 && !*e && secs > 0 ? (int64_t)secs * 1000000 : 0;
	}
	if (parse_duration(s, &ago) == 0 && ago != USEC_INFINITY) {
		int64_t t = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000 - (int64_t)ago;

		return t > 0 ? t : 1;
	}
	if (!(end = strptime(s, "%Y-%m-%d", &tm)))
		return 0;
	if (*end && !(end = strptime(end, " %H:%M", &tm)))
		return 0;
	if (*end && !(end = strptime(end, ":%S", &tm)))
		return 0;
	if (*end)
		return 0;
	secs = (long long)mktime(&tm);
	return secs > 0 ? (int64_t)secs * 1000000 : 0;
}

static int check_state(const char *s);

/* --state: one name or names separated by ','; 0 or EXIT_USAGE (said why). */
static int check_states(const char *s)
{
	char buf[256], *save = NULL;
	bool named = false;
	int r;

	if (!*s || snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return cli_usage_error("jobs", "--state: expected STATE[,STATE...]");
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		r = check_state(t);
		if (r != 0)
			return r;
		named = true;
	}
	return named ? 0 : cli_usage_error("jobs", "--state: expected STATE[,STATE...]");
}

static int check_state(const char *s)
{
	const char *names[_JOB_STATE_MAX + 1], *guess;
	char list[128] = "";

	if (job_state_from_string(s) >= 0)
		return 0;
	for (int i = 0; i < _JOB_STATE_MAX; i++) {
		names[i] = job_state_to_string((enum job_state)i);
		strncat(list, " ", sizeof(list) - strlen(list) - 1);
		strncat(list, names[i], sizeof(list) - strlen(list) - 1);
	}
	names[_JOB_STATE_MAX] = NULL;
	guess = str_did_you_mean(s, names);
	if (guess)
		return cli_usage_error("jobs", "unknown state '%s' (did you mean '%s'?); states:%s",
				       s, guess, list);
	return cli_usage_error("jobs", "unknown state '%s'; states:%s", s, list);
}

int cmd_jobs(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "group", required_argument, NULL, 'g' },
		{ "limit", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ "since", required_argument, NULL, 'i' },
		{ "reverse", no_argument, NULL, 'r' },
		{},
	};
	const char *state = NULL, *group = NULL;
	struct cli_opts co = {};
	json_object *reply, *req, *jobs;
	long limit = 0, id = 0;
	int64_t since = 0;
	bool reverse = false;
	char *line;
	int o, r;

	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":hr", opts, NULL)) >= 0) {
		switch (o) {
		case 's':
			state = optarg;
			break;
		case 'g':
			group = optarg;
			break;
		case 'l':
			if (!cli_parse_long(optarg, 1, CONTROL_JOBS_LIMIT_MAX, &limit))
				return cli_usage_error("jobs",
						       "--limit %s: expected an integer 1..%d",
						       optarg, CONTROL_JOBS_LIMIT_MAX);
			break;
		case 'i':
			since = parse_since(optarg);
			if (!since)
				return cli_usage_error("jobs",
						       "--since %s: expected a duration ago (10min, "
						       "2h), @SECONDS, or YYYY-MM-DD [HH:MM[:SS]]",
						       optarg);
			break;
		case 'r':
			reverse = true;
			break;
		case 'j':
			co.json = true;
			break;
		case 'S':
			co.socket = optarg;
			break;
		case 'h':
			cli_usage("jobs", stdout);
			return 0;
		default:
			return cli_bad_option("jobs", o, argv);
		}
	}
	if (optind < argc && !cli_parse_long(argv[optind], 1, LONG_MAX, &id))
		return cli_usage_error("jobs", "'%s' is not a job id", argv[optind]);
	if (optind + 1 < argc)
		return cli_usage_error("jobs", "unexpected argument '%s'", argv[optind + 1]);
	if (state && check_states(state) != 0)
		return EXIT_USAGE;
	if (group && !*group)
		return cli_usage_error("jobs", "--group needs a group name");
	req = cli_request("jobs");
	if (state)
		cli_add_string(req, "state", state);
	if (group)
		cli_add_string(req, "group", group);
	if (limit > 0 && json_object_object_add(req, "limit", json_object_new_int64(limit)) < 0)
		cli_oom();
	if ((id && json_object_object_add(req, "job", json_object_new_int64(id)) < 0) ||
	    (since && json_object_object_add(req, "since", json_object_new_int64(since)) < 0) ||
	    (reverse && json_object_object_add(req, "reverse", json_object_new_boolean(1)) < 0))
		cli_oom();
	r = cli_call_ok(co.socket, req, &reply, &line);
	if (r != 0)
		return r;
	jobs = jget(reply, "jobs");
	if (co.json) {
		printf("%s\n", line);
	} else if (id && jlen(jobs) == 1 && !state && !group && !since) {
		print_job(stdout, json_object_array_get_idx(jobs, 0));
	} else if (id && jlen(jobs) == 0) {
		fprintf(stderr, "bulkhead jobs: no job %ld%s\n", id,
			state || group || since ? " that matches" : " (forgotten, or not yet)");
		json_object_put(reply);
		free(line);
		return EXIT_NOT_EXPECTED;
	} else {
		print_jobs(stdout, reply);
	}
	json_object_put(reply);
	free(line);
	return 0;
}
/* ---- submit, wait, cancel, restart ---- */

/* Job ids from argv[from..argc) into a new JSON array; NULL after a usage message. */
static json_object *ids_array(const char *name, int argc, char **argv, int from)
{
	json_object *a = json_object_new_array();

	for (int i = from; i < argc; i++) {
		long id;

		if (!cli_parse_long(argv[i], 1, LONG_MAX, &id)) {
			json_object_put(a);
			cli_usage_error(name, "'%s' is not a job id", argv[i]);
			return NULL;
		}
		json_object_array_add(a, json_object_new_int64(id));
	}
	return a;
}

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

int cmd_submit(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pool", required_argument, NULL, 'p' }, { "run", required_argument, NULL, 'r' },
		{ "count", required_argument, NULL, 'c' }, { "arg", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },	   { "socket", required_argument, NULL, 'S' },
		{ "input", required_argument, NULL, 'i' }, { "help", no_argument, NULL, 'h' },
		{ "key", required_argument, NULL, 'k' },   {},
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
	if (argc - optind == 1)
		cli_add_string(req, "group", argv[optind]);
	else {
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
	if (json) {
		puts(json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PRETTY));
	} else {
		ids = jget(reply, "ids");
		jobs = jget(reply, "jobs");
		for (size_t i = 0; i < jlen(ids); i++)
			printf("%lld\t%s\n",
			       (long long)json_object_get_int64(json_object_array_get_idx(ids, i)),
			       json_object_get_string(json_object_array_get_idx(jobs, i)));
	}
	json_object_put(reply);
	return 0;
}

/* Parses "ID... [--json] [--socket P]" (and --group for wait). */
static int parse_ids_cmd(const char *name, int argc, char **argv, bool allow_group,
			 const char **socket, const char **group, bool *json, json_object **ids)
{
	static const struct option opts[] = {
		{ "group", required_argument, NULL, 'g' }, { "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 'S' }, { "help", no_argument, NULL, 'h' },
		{},
	};
	int o;

	*ids = NULL;
	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) >= 0) {
		switch (o) {
		case 'g':
			if (!allow_group)
				return cli_bad_option(name, '?', argv);
			*group = optarg;
			break;
		case 'j':
			*json = true;
			break;
		case 'S':
			*socket = optarg;
			break;
		case 'h':
			cli_usage(name, stdout);
			return 0;
		default:
			return cli_bad_option(name, o, argv);
		}
	}
	if (*group && argc > optind)
		return cli_usage_error(name, "give job ids or --group, not both");
	if (!*group && argc == optind)
		return cli_usage_error(name, allow_group ? "missing job ids (or --group)"
							 : "missing job ids");
	if (!*group) {
		*ids = ids_array(name, argc, argv, optind);
		if (!*ids)
			return EXIT_USAGE;
	}
	return -1;
}

int cmd_wait(int argc, char **argv)
{
	const char *socket = NULL, *group = NULL;
	json_object *ids, *req, *reply, *jobs;
	bool json = false;
	int r;

	r = parse_ids_cmd("wait", argc, argv, true, &socket, &group, &json, &ids);
	if (r >= 0)
		return r;
	req = cli_request("wait");
	if (group)
		cli_add_string(req, "group", group);
	else
		json_object_object_add(req, "ids", ids);
	/* No deadline: the reply comes when the jobs have ended. */
	r = cli_call_until_ok(socket, req, INT64_MAX, &reply, NULL);
	if (r != 0)
		return r;
	if (json) {
		puts(json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PRETTY));
	} else {
		jobs = jget(reply, "jobs");
		for (size_t i = 0; i < jlen(jobs); i++) {
			json_object *j = json_object_array_get_idx(jobs, i);
			const char *cause = jstr(j, "cause");
			bool has_cause = cause && *cause;

			printf("%lld\t%s\t%s%s%s%s\n", (long long)jint0(j, "id"), fmt_str(j, "name"),
			       fmt_str(j, "state"), has_cause ? " (" : "", has_cause ? cause : "",
			       has_cause ? ")" : "");
		}
		if (jbool(reply, "truncated"))
			fprintf(stderr,
				"bulkhead: %lld jobs ended; listed: the %zu that did not end as "
				"their group expects (at most %d)\n",
				(long long)jint0(reply, "total"), jlen(jobs), CONTROL_WAIT_LIST_MAX);
	}
	r = jbool(reply, "all_expected") ? 0 : EXIT_CONTROL_FAILED;
	json_object_put(reply);
	return r;
}

int cmd_cancel(int argc, char **argv)
{
	const char *socket = NULL, *group = NULL;
	json_object *ids, *req, *reply, *done, *not_done, *asked;
	bool json = false;
	int r;

	r = parse_ids_cmd("cancel", argc, argv, false, &socket, &group, &json, &ids);
	if (r >= 0)
		return r;
	req = cli_request("cancel");
	json_object_object_add(req, "ids", ids);
	r = cli_call_ok(socket, req, &reply, NULL);
	if (r != 0)
		return r;
	done = jget(reply, "cancelled");
	not_done = jget(reply, "not_cancelled");
	for (size_t i = 0; i < jlen(done); i++)
		printf("%lld\tcancelled\n",
		       (long long)json_object_get_int64(json_object_array_get_idx(done, i)));
	asked = jget(reply, "cancelling");
	for (size_t i = 0; i < jlen(asked); i++)
		printf("%lld\tcancelling (at its worker)\n",
		       (long long)json_object_get_int64(json_object_array_get_idx(asked, i)));
	for (size_t i = 0; i < jlen(not_done); i++) {
		json_object *e = json_object_array_get_idx(not_done, i);

		printf("%lld\tnot cancelled (%s)\n", (long long)jint0(e, "id"), fmt_str(e, "state"));
	}
	r = jlen(not_done) ? EXIT_CONTROL_FAILED : 0;
	json_object_put(reply);
	return r;
}
