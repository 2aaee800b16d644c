/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead logs ID|GROUP [--lines N] [--follow] [--json]`: the lines a job or a group logged
 * (bulkhead_job_log(), an exec command's output), kept by the daemon with the job; with
 * --follow the new ones too, as they come, until interrupted or the daemon goes (pm2 logs,
 * supervisorctl tail -f and journalctl -f are the anchors).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/control-client.h"
#include "common/control-proto.h"

/* "2026-12-03 16:30:01.123 files#3 info: the line" */
static void print_line(json_object *l)
{
	char when[64], id[32], job[48];
	const char *name = jstr(l, "name"), *level = jstr(l, "level"), *text = jstr(l, "line");

	if (!name) {
		snprintf(job, sizeof(job), "job %s", fmt_int(id, sizeof(id), l, "job"));
		name = job;
	}
	printf("%s %s %s: %s\n", fmt_when(when, sizeof(when), l, "at"), name, level ? level : "info",
	       text ? text : "");
}

/* Lines after the reply, until the daemon closes the connection: 0, or EXIT_CONTROL_FAILED. */
static int follow(struct cli_session *s, bool json)
{
	for (;;) {
		char *line = NULL;
		json_object *o, *v;
		int r = control_client_receive(s->c, INT64_MAX, &line);

		if (r == -ECONNRESET) {
			cli_say("%s: the daemon closed the connection", s->path);
			return EXIT_CONTROL_FAILED;
		}
		if (r < 0) {
			cli_say("%s: %s", s->path, control_client_strerror(r));
			return EXIT_CONTROL_FAILED;
		}
		o = json_tokener_parse(line);
		if (json)
			printf("%s\n", line);
		else if (o && json_object_object_get_ex(o, "dropped", &v))
			printf("(%lld lines not shown: this client did not read them in time)\n",
			       (long long)json_object_get_int64(v));
		else if (o)
			print_line(o);
		json_object_put(o);
		free(line);
		if (fflush(stdout) != 0)
			return EXIT_CONTROL_FAILED; /* nobody reads us any more */
	}
}

int cmd_logs(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "lines", required_argument, NULL, 'n' }, { "follow", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },	    { "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },	    {},
	};
	const char *socket = NULL;
	bool json = false, following = false;
	long lines = 0, id = 0;
	struct cli_session s;
	json_object *req, *reply, *list;
	char *text = NULL;
	int o, r;

	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":hfn:", opts, NULL)) >= 0) {
		switch (o) {
		case 'n':
			if (!cli_parse_long(optarg, 1, CONTROL_LOGS_MAX, &lines))
				return cli_usage_error("logs", "--lines %s: expected 1..%d", optarg,
						       CONTROL_LOGS_MAX);
			break;
		case 'f':
			following = true;
			break;
		case 'j':
			json = true;
			break;
		case 'S':
			socket = optarg;
			break;
		case 'h':
			cli_usage("logs", stdout);
			return 0;
		default:
			return cli_bad_option("logs", o, argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("logs", argc - optind ? "one job id or group, not more"
							      : "which job (ID) or group?");
	req = cli_request("logs");
	if (argv[optind][0] >= '0' && argv[optind][0] <= '9') {
		if (!cli_parse_long(argv[optind], 1, LONG_MAX, &id)) {
			json_object_put(req);
			return cli_usage_error("logs", "'%s' is not a job id", argv[optind]);
		}
		json_object_object_add(req, "job", json_object_new_int64(id));
	} else {
		cli_add_string(req, "group", argv[optind]);
	}
	if (lines)
		json_object_object_add(req, "lines", json_object_new_int64(lines));
	if (following)
		json_object_object_add(req, "follow", json_object_new_boolean(1));
	r = cli_session_open(&s, socket, control_client_now_ms() + CONTROL_CLIENT_TIMEOUT_MS);
	if (r != 0) {
		json_object_put(req);
		return r;
	}
	r = control_client_call(s.c, json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN),
				control_client_now_ms() + CONTROL_CLIENT_TIMEOUT_MS, &text);
	json_object_put(req);
	if (r < 0) {
		cli_say("%s: %s", s.path, control_client_strerror(r));
		cli_session_close(&s);
		return EXIT_CONTROL_FAILED;
	}
	reply = cli_parse_reply(s.path, text);
	if (!reply || !cli_reply_ok(reply)) {
		if (reply)
			cli_say("%s", cli_reply_error(reply));
		json_object_put(reply);
		free(text);
		cli_session_close(&s);
		return EXIT_CONTROL_FAILED;
	}
	if (json) {
		printf("%s\n", text);
	} else if (json_object_object_get_ex(reply, "lines", &list)) {
		for (size_t i = 0; i < json_object_array_length(list); i++)
			print_line(json_object_array_get_idx(list, i));
	}
	json_object_put(reply);
	free(text);
	r = fflush(stdout) == 0 ? 0 : EXIT_CONTROL_FAILED;
	if (r == 0 && following)
		r = follow(&s, json);
	cli_session_close(&s);
	return r;
}
