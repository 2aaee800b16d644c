/* SPDX-License-Identifier: MIT */
/*
 * The commands about jobs (see commands.h): jobs (a table, or the reply as it came), wait
 * and cancel (submit is in cmd-submit.c). Job ids, states and counts are checked before
 * anything is sent.
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
#include "cli/control-client.h"
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
/* ---- wait, cancel ---- */

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

/* What wait and cancel take. */
struct ids_opts {
	const char *socket, *group, *timeout;
	bool json;
	json_object *ids; /* the job ids, unless --group */
};

/* Parses "ID... | --group GROUP [--json] [--socket P]" (and --timeout DURATION for wait). */
static int parse_ids_cmd(const char *name, int argc, char **argv, bool allow_timeout,
			 struct ids_opts *io)
{
	static const struct option opts[] = {
		{ "group", required_argument, NULL, 'g' },   { "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 'S' },  { "help", no_argument, NULL, 'h' },
		{ "timeout", required_argument, NULL, 't' }, {},
	};
	int o;

	*io = (struct ids_opts){};
	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) >= 0) {
		switch (o) {
		case 'g':
			io->group = optarg;
			break;
		case 't':
			if (!allow_timeout)
				return cli_bad_option(name, '?', argv);
			io->timeout = optarg;
			break;
		case 'j':
			io->json = true;
			break;
		case 'S':
			io->socket = optarg;
			break;
		case 'h':
			cli_usage(name, stdout);
			return 0;
		default:
			return cli_bad_option(name, o, argv);
		}
	}
	if (io->group && argc > optind)
		return cli_usage_error(name, "give job ids or --group, not both");
	if (!io->group && argc == optind)
		return cli_usage_error(name, "missing job ids (or --group)");
	if (!io->group) {
		io->ids = ids_array(name, argc, argv, optind);
		if (!io->ids)
			return EXIT_USAGE;
	}
	return -1;
}

int cmd_wait(int argc, char **argv)
{
	json_object *req, *reply, *jobs;
	int64_t deadline = INT64_MAX;
	struct ids_opts io;
	usec_t timeout;
	int r;

	r = parse_ids_cmd("wait", argc, argv, true, &io);
	if (r >= 0)
		return r;
	if (io.timeout && (parse_duration(io.timeout, &timeout) < 0 || timeout == 0)) {
		json_object_put(io.ids);
		return cli_usage_error("wait", "--timeout: expected a duration (30s, 5min, 1h), got "
					       "'%s'", io.timeout);
	}
	if (io.timeout && timeout != USEC_INFINITY)
		deadline = control_client_now_ms() + (int64_t)(timeout / 1000);
	req = cli_request("wait");
	if (io.group)
		cli_add_string(req, "group", io.group);
	else
		json_object_object_add(req, "ids", io.ids);
	/* No deadline but --timeout's: the reply comes when the jobs have ended. */
	r = cli_call_wait(io.socket, req, deadline, &reply);
	if (r == EXIT_TIMEOUT)
		cli_say("wait: %s passed and the jobs have not all ended", io.timeout);
	if (r != 0)
		return r;
	if (io.json) {
		cli_print_json(reply);
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

/*
 * cancel --group: the group's jobs not ended yet, asked with `jobs` (at most
 * CONTROL_JOBS_LIMIT_MAX of them: a cancel takes no more ids), as an array of ids. NULL after
 * a message (exit code in *ret).
 */
static json_object *group_ids(const char *socket, const char *group, int *ret)
{
	json_object *req = cli_request("jobs"), *reply, *jobs, *ids;

	cli_add_string(req, "group", group);
	cli_add_string(req, "state", "queued,running");
	json_object_object_add(req, "limit", json_object_new_int64(CONTROL_JOBS_LIMIT_MAX));
	*ret = cli_call_ok(socket, req, &reply, NULL);
	if (*ret != 0)
		return NULL;
	jobs = jget(reply, "jobs");
	ids = json_object_new_array();
	if (!ids)
		cli_oom();
	for (size_t i = 0; i < jlen(jobs); i++)
		json_object_array_add(ids, json_object_new_int64(
						   jint0(json_object_array_get_idx(jobs, i), "id")));
	json_object_put(reply);
	return ids;
}

int cmd_cancel(int argc, char **argv)
{
	json_object *req, *reply, *done, *not_done, *asked;
	struct ids_opts io;
	int r;

	r = parse_ids_cmd("cancel", argc, argv, false, &io);
	if (r >= 0)
		return r;
	if (io.group) {
		io.ids = group_ids(io.socket, io.group, &r);
		if (!io.ids)
			return r;
		if (json_object_array_length(io.ids) == 0) {
			/* Nothing left to cancel: the same reply a cancel of nothing would have. */
			json_object_put(io.ids);
			if (io.json)
				puts("{\"ok\":true,\"cancelled\":[],\"cancelling\":[],"
				     "\"not_cancelled\":[]}");
			else
				fprintf(stderr, "bulkhead: no job of %s is queued or running\n",
					io.group);
			return 0;
		}
	}
	req = cli_request("cancel");
	json_object_object_add(req, "ids", io.ids);
	r = cli_call_ok(io.socket, req, &reply, NULL);
	if (r != 0)
		return r;
	done = jget(reply, "cancelled");
	not_done = jget(reply, "not_cancelled");
	if (io.json) {
		cli_print_json(reply);
	} else {
		for (size_t i = 0; i < jlen(done); i++)
			printf("%lld\tcancelled\n",
			       (long long)json_object_get_int64(json_object_array_get_idx(done, i)));
		asked = jget(reply, "cancelling");
		for (size_t i = 0; i < jlen(asked); i++)
			printf("%lld\tcancelling (at its worker)\n",
			       (long long)json_object_get_int64(json_object_array_get_idx(asked, i)));
		for (size_t i = 0; i < jlen(not_done); i++) {
			json_object *e = json_object_array_get_idx(not_done, i);

			printf("%lld\tnot cancelled (%s)\n", (long long)jint0(e, "id"),
			       fmt_str(e, "state"));
		}
	}
	/* --group: a job that ended between the list and the cancel is no failure. */
	r = jlen(not_done) && !io.group ? EXIT_CONTROL_FAILED : 0;
	json_object_put(reply);
	return r;
}
