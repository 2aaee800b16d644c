/* SPDX-License-Identifier: MIT */
/*
 * The short commands that change a running daemon: reload, log-level, restart and inject (see
 * commands.h). Each takes --json: the daemon's reply, one object on one line, as `status
 * --json` prints it; a refusal is said on stderr (exit 1) either way. `restart --wait` then
 * follows `status` until every worker it replaces is a new process, ready.
 */
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/control-proto.h"
#include "common/log.h"
#include "common/strutil.h"

#define RESTART_POLL_MS 200 /* restart --wait: how often it asks for the status */

/* Prints each string of the reply's array `key` on f, after prefix. */
static void print_lines(FILE *f, json_object *reply, const char *key, const char *prefix)
{
	json_object *a = jget(reply, key);

	for (size_t i = 0; i < jlen(a); i++)
		fprintf(f, "%s%s\n", prefix,
			json_object_get_string(json_object_array_get_idx(a, i)));
}

int cmd_reload(int argc, char **argv)
{
	const char *socket = NULL;
	json_object *reply;
	bool json = false;
	int r;

	r = cli_parse_simple("reload", argc, argv, &socket, &json, NULL, NULL, NULL);
	if (r >= 0)
		return r;
	r = cli_call(socket, cli_request("reload"), &reply, NULL);
	if (r != 0)
		return r;
	if (cli_reply_ok(reply)) {
		if (json) {
			cli_print_json(reply);
		} else {
			puts("reloaded");
			print_lines(stdout, reply, "changes", "  ");
		}
		/* What waits for a restart, on stderr either way. */
		print_lines(stderr, reply, "warnings", "bulkhead: warning: ");
	} else {
		/* The config errors, one per line, each naming FILE:LINE: printed as they are. */
		const char *e = cli_reply_error(reply);

		fprintf(stderr, "%s%s", e, *e && e[strlen(e) - 1] == '\n' ? "" : "\n");
		r = EXIT_CONTROL_FAILED;
	}
	json_object_put(reply);
	return r;
}

int cmd_log_level(int argc, char **argv)
{
	const char *socket = NULL, *level, *now;
	json_object *reply, *req;
	bool json = false;
	int r;

	r = cli_parse_simple("log-level", argc, argv, &socket, &json, NULL,
			     (const char *const[]){ "LEVEL", NULL }, &level);
	if (r >= 0)
		return r;
	if (log_level_from_name(level) < 0) {
		const char *guess = str_did_you_mean(level, log_level_names);

		return cli_usage_error("log-level",
				       "unknown level '%s'%s%s%s; levels: " LOG_LEVEL_NAMES(" "),
				       level, guess ? " (did you mean '" : "", guess ? guess : "",
				       guess ? "'?)" : "");
	}
	req = cli_request("log-level");
	cli_add_string(req, "level", level);
	r = cli_call_ok(socket, req, &reply, NULL);
	if (r != 0)
		return r;
	now = jstr(reply, "level");
	if (json)
		cli_print_json(reply);
	else
		printf("log level: %s\n", now ? now : level);
	json_object_put(reply);
	return 0;
}

/* The pool `name`'s entry in a status reply, or NULL. */
static json_object *status_pool(json_object *status, const char *name, size_t len)
{
	json_object *pools = jget(status, "pools");

	for (size_t i = 0; i < jlen(pools); i++) {
		json_object *p = json_object_array_get_idx(pools, i);
		const char *n = jstr(p, "name");

		if (n && strlen(n) == len && strncmp(n, name, len) == 0)
			return p;
	}
	return NULL;
}

/*
 * restart --wait: until every slot of the target (POOL or POOL/INDEX) runs a process that
 * was not there before (`before`: the status from before the restart) and is ready. 0, or
 * EXIT_CONTROL_FAILED when the pool is gone or failed, or the daemon cannot be asked.
 */
static int wait_replaced(const char *socket, const char *target, json_object *before,
			 json_object *reply)
{
	const char *slash = strchr(target, '/');
	size_t len = slash ? (size_t)(slash - target) : strlen(target);
	long only = slash ? strtol(slash + 1, NULL, 10) : -1;
	json_object *old = status_pool(before, target, len);
	json_object *replaced = json_object_new_array();

	for (;;) {
		json_object *status, *p, *ws;
		bool done = true;
		int r = cli_call_ok(socket, cli_request("status"), &status, NULL);

		if (r != 0) {
			json_object_put(replaced);
			return r;
		}
		p = status_pool(status, target, len);
		if (!p || strcmp(fmt_str(p, "state"), "up") != 0) {
			cli_say("pool %.*s is %s: its workers are not being replaced", (int)len,
				target, p ? fmt_str(p, "state") : "gone");
			json_object_put(status);
			json_object_put(replaced);
			return EXIT_CONTROL_FAILED;
		}
		ws = jget(p, "workers");
		json_object_put(replaced);
		replaced = json_object_new_array();
		for (size_t i = 0; i < jlen(ws); i++) {
			json_object *w = json_object_array_get_idx(ws, i), *ow = NULL;
			json_object *olds = old ? jget(old, "workers") : NULL;
			int64_t slot = jint0(w, "slot"), pid = jint0(w, "pid");

			if (only >= 0 && slot != only)
				continue;
			for (size_t k = 0; k < jlen(olds); k++)
				if (jint0(json_object_array_get_idx(olds, k), "slot") == slot)
					ow = json_object_array_get_idx(olds, k);
			if (pid <= 0 || (ow && jint0(ow, "pid") == pid) ||
			    strcmp(fmt_str(w, "state"), "ready") != 0) {
				done = false;
				continue;
			}
			json_object *e = json_object_new_object();

			json_object_object_add(e, "slot", json_object_new_int64(slot));
			json_object_object_add(e, "pid", json_object_new_int64(pid));
			json_object_array_add(replaced, e);
		}
		json_object_put(status);
		if (done)
			break;
		poll(NULL, 0, RESTART_POLL_MS);
	}
	json_object_object_add(reply, "replaced", replaced);
	return 0;
}

int cmd_restart(int argc, char **argv)
{
	const char *socket = NULL, *target;
	json_object *req, *reply, *before = NULL;
	bool json = false, wait = false;
	int r;

	r = cli_parse_simple("restart", argc, argv, &socket, &json, &wait,
			     (const char *const[]){ "POOL[/INDEX]", NULL }, &target);
	if (r >= 0)
		return r;
	if (wait) {
		r = cli_call_ok(socket, cli_request("status"), &before, NULL);
		if (r != 0)
			return r;
	}
	req = cli_request("restart");
	cli_add_string(req, "target", target);
	r = cli_call_ok(socket, req, &reply, NULL);
	if (r == 0 && wait)
		r = wait_replaced(socket, target, before, reply);
	json_object_put(before);
	if (r != 0) {
		json_object_put(reply);
		return r;
	}
	if (json)
		cli_print_json(reply);
	else if (wait)
		printf("replaced %zu worker%s of %s\n", jlen(jget(reply, "replaced")),
		       jlen(jget(reply, "replaced")) == 1 ? "" : "s", target);
	else
		printf("replacing %lld worker%s of %s, one at a time\n",
		       (long long)jint0(reply, "replacing"),
		       jint0(reply, "replacing") == 1 ? "" : "s", target);
	json_object_put(reply);
	return 0;
}

int cmd_inject(int argc, char **argv)
{
#define FAULT_ITEM(name) name,
	static const char *const faults[] = { CONTROL_FAULTS(FAULT_ITEM, ) NULL };
#undef FAULT_ITEM
	const char *socket = NULL, *args[2];
	json_object *req, *reply;
	bool known = false, json = false;
	int r;

	r = cli_parse_simple("inject", argc, argv, &socket, &json, NULL,
			     (const char *const[]){ "POOL[/INDEX]", "FAULT", NULL }, args);
	if (r >= 0)
		return r;
	for (size_t i = 0; faults[i]; i++)
		known = known || strcmp(args[1], faults[i]) == 0;
	if (!known)
		return cli_usage_error(
			"inject", "unknown fault '%s' (" CONTROL_FAULT_NAMES("|") ")", args[1]);
	req = cli_request("inject");
	cli_add_string(req, "target", args[0]);
	cli_add_string(req, "fault", args[1]);
	r = cli_call_ok(socket, req, &reply, NULL);
	if (r != 0)
		return r;
	if (json)
		cli_print_json(reply);
	else
		printf("injected %s into worker %s (pid %lld)\n", args[1], fmt_str(reply, "worker"),
		       (long long)jint0(reply, "pid"));
	json_object_put(reply);
	return 0;
}
