/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead status` and `metrics` (see commands.h; reload, log-level, restart and inject are
 * in cmd-admin.c). Replies are read leniently: a missing field shows as "-", so an older or newer
 * daemon still gives a readable table. The status printers serve `top` too.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/control-proto.h"
#include "common/log.h"

/* ---- status ---- */

static const char *const job_counts[] = { "done",      "running",   "queued", "failed", "crashed",
					  "timed_out", "cancelled", "lost",   NULL };

/* "jobs: 100 total, 90 done, ..." (no newline); `wrap`: the end states on a second line. */
void cli_print_jobs_counts(FILE *f, json_object *jobs, bool wrap)
{
	char buf[32];

	fprintf(f, "jobs: %s total", fmt_int(buf, sizeof(buf), jobs, "total"));
	for (size_t i = 0; job_counts[i]; i++)
		fprintf(f, "%s%s %s",
			wrap && strcmp(job_counts[i], "failed") == 0 ? ",\n      " : ", ",
			fmt_int(buf, sizeof(buf), jobs, job_counts[i]), job_counts[i]);
}
/* "deaths: SIGSEGV 3 SIGABRT 1", or "deaths: none". */
static void print_deaths(FILE *f, json_object *reply)
{
	json_object *deaths = jget(jget(reply, "workers"), "deaths");
	bool any = false;

	fputs("deaths:", f);
	if (deaths && json_object_is_type(deaths, json_type_object)) {
		json_object_object_foreach(deaths, name, count)
		{
			fprintf(f, " %s %lld", name, (long long)json_object_get_int64(count));
			any = true;
		}
	}
	fputs(any ? "\n" : " none\n", f);
}

/* "workers: 14 started, 9 restarts, 0 worker faults, 2 contained crashes; deaths: SIGSEGV 3\n" */
void cli_print_workers(FILE *f, json_object *reply)
{
	json_object *w = jget(reply, "workers");
	char b[4][32];

	fprintf(f, "workers: %s started, %s restarts, %s worker faults, %s contained crashes; ",
		fmt_int(b[0], sizeof(b[0]), w, "started"),
		fmt_int(b[1], sizeof(b[1]), w, "restarts"),
		fmt_int(b[2], sizeof(b[2]), w, "worker_faults"),
		fmt_int(b[3], sizeof(b[3]), w, "contained_crashes"));
	print_deaths(f, reply);
}

static const char *daemon_state(json_object *reply)
{
	return jbool(reply, "stopping") ? "stopping" : jbool(reply, "ready") ? "ready" : "starting";
}

/* "pid 1234, up 3m20s, ready" */
void cli_print_daemon(FILE *f, json_object *reply)
{
	char pid[32], up[32];
	double secs;

	fprintf(f, "pid %s, up %s, %s", fmt_int(pid, sizeof(pid), reply, "pid"),
		jnum(reply, "uptime_seconds", &secs) ? fmt_duration(up, sizeof(up), secs) : "-",
		daemon_state(reply));
}

/* Jobs on threads over threads, for a pool or a worker: "busy" in top. */
static const char *fmt_busy(char *buf, size_t size, int64_t running, int64_t threads)
{
	return str_printf(buf, size, "%lld/%lld", (long long)running, (long long)threads);
}

/*
 * The pools and their workers, each pool followed by its workers' table, indented. `busy`
 * (top): running jobs as busy/threads, for the pools too.
 */
void cli_print_pools(FILE *f, json_object *reply, bool busy)
{
	static const char *const pool_heads[] = { "NAME",     "STATE",	"WORKERS", "THREADS",
						  "RESTARTS", "FAULTS", NULL };
	static const char *const pool_heads_busy[] = { "POOL",	   "STATE",  "WORKERS", "BUSY",
						       "RESTARTS", "FAULTS", NULL };
	static const char *const worker_heads[] = { "SLOT",    "PID",	     "STATE", "UPTIME",
						    "RUNNING", "LAST-DEATH", NULL };
	static const char *const worker_heads_busy[] = { "SLOT", "PID",	       "STATE", "UPTIME",
							 "BUSY", "LAST-DEATH", NULL };
	json_object *pools = jget(reply, "pools");
	size_t n = jlen(pools), *first = calloc(n + 1, sizeof(size_t));
	struct table pt, wt;

	if (!first)
		cli_oom();
	table_init(&pt, busy ? pool_heads_busy : pool_heads, "llrrrr");
	table_init(&wt, busy ? worker_heads_busy : worker_heads, "lrllrl");
	for (size_t i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(pools, i), *ws = jget(p, "workers");
		int64_t threads = jint0(p, "threads"), running = 0;
		char b[4][32];

		first[i] = wt.n_rows;
		for (size_t k = 0; k < jlen(ws); k++) {
			json_object *w = json_object_array_get_idx(ws, k);
			bool proc = jint0(w, "pid") > 0;
			double up = 0;

			running += jint0(w, "jobs_running");
			jnum(w, "uptime_seconds", &up);
			table_add(&wt,
				  (const char *const[]){
					  fmt_int(b[0], sizeof(b[0]), w, "slot"),
					  proc ? fmt_int(b[1], sizeof(b[1]), w, "pid") : "-",
					  fmt_str(w, "state"),
					  proc ? fmt_duration(b[2], sizeof(b[2]), up) : "-",
					  busy ? fmt_busy(b[3], sizeof(b[3]),
							  jint0(w, "jobs_running"), threads)
					       : fmt_int(b[3], sizeof(b[3]), w, "jobs_running"),
					  fmt_str(w, "last_death") });
		}
		/* The spare and the solo workers ([pool] spare): their process and state only. */
		for (size_t k = 0; k <= jlen(jget(p, "solo")); k++) {
			json_object *x = k == 0 ? jget(p, "spare")
						: json_object_array_get_idx(jget(p, "solo"), k - 1);

			if (!x)
				continue;
			table_add(&wt, (const char *const[]){
					       k == 0 ? "spare" : "solo",
					       jint0(x, "pid") > 0 ? fmt_int(b[1], sizeof(b[1]), x, "pid")
								   : "-",
					       fmt_str(x, "state"), "-", "-", "-" });
		}
		str_printf(b[0], sizeof(b[0]), "%lld/%lld", (long long)jint0(p, "workers_up"),
			   (long long)jint0(p, "workers_wanted"));
		table_add(&pt,
			  (const char *const[]){ fmt_str(p, "name"), fmt_str(p, "state"), b[0],
						 busy ? fmt_busy(b[1], sizeof(b[1]), running,
								 threads * (int64_t)jlen(ws))
						      : fmt_int(b[1], sizeof(b[1]), p, "threads"),
						 fmt_int(b[2], sizeof(b[2]), p, "restarts"),
						 fmt_int(b[3], sizeof(b[3]), p, "worker_faults") });
	}
	first[n] = wt.n_rows;
	if (n == 0)
		fputs("no pools\n", f);
	else
		table_print_row(&pt, f, "", pt.heads);
	for (size_t i = 0; i < n; i++) {
		table_print_row(&pt, f, "", (const char *const *)pt.cells + i * pt.n_cols);
		if (first[i + 1] > first[i])
			table_print(&wt, f, "    ", first[i], first[i + 1]);
	}
	table_free(&pt);
	table_free(&wt);
	free(first);
}

/* A shared store's nodes (status "nodes"): a table, or nothing without a shared store. */
static void print_nodes(FILE *f, json_object *reply)
{
	static const char *const heads[] = { "NODE", "ALIVE", "HEARTBEAT", "LEASED", NULL };
	json_object *nodes = jget(reply, "nodes"), *store = jget(reply, "store");
	const char *failing = store ? jstr(store, "failing") : NULL;
	struct table t;

	if (failing && *failing)
		fprintf(f, "\nstore: %s\n", failing);
	if (!nodes)
		return;
	table_init(&t, heads, "llrr");
	for (size_t i = 0; i < jlen(nodes); i++) {
		json_object *n = json_object_array_get_idx(nodes, i);
		char b[2][32], ago[40];
		double age = 0;

		jnum(n, "heartbeat_age_seconds", &age);
		str_printf(ago, sizeof(ago), "%s ago", fmt_duration(b[0], sizeof(b[0]), age));
		table_add(&t, (const char *const[]){ fmt_str(n, "name"),
						      jbool(n, "alive") ? "yes" : "no", ago,
						      fmt_int(b[1], sizeof(b[1]), n, "jobs_leased") });
	}
	fputc('\n', f);
	table_print(&t, f, "", 0, t.n_rows);
	table_free(&t);
}

static void print_status(FILE *f, json_object *reply)
{
	const char *v = jstr(reply, "version"), *node = jstr(reply, "node");

	fprintf(f, "bulkheadd%s%s%s%s: ", v ? " " : "", v ? v : "", node ? " on " : "",
		node ? node : "");
	cli_print_daemon(f, reply);
	fputc('\n', f);
	cli_print_jobs_counts(f, jget(reply, "jobs"), false);
	fputc('\n', f);
	cli_print_workers(f, reply);
	fputc('\n', f);
	cli_print_pools(f, reply, false);
	print_nodes(f, reply);
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct cli_opts co = {};
	json_object *reply;
	char *line;
	int o, r;

	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) >= 0) {
		switch (o) {
		case 'j':
			co.json = true;
			break;
		case 'S':
			co.socket = optarg;
			break;
		case 'h':
			cli_usage("status", stdout);
			return 0;
		default:
			return cli_bad_option("status", o, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error("status", "unexpected argument '%s'", argv[optind]);
	r = cli_call_ok(co.socket, cli_request("status"), &reply, &line);
	if (r != 0)
		return r;
	if (co.json)
		printf("%s\n", line);
	else
		print_status(stdout, reply);
	json_object_put(reply);
	free(line);
	return 0;
}

/* The Prometheus text, as the daemon built it (its reply's "text"). */
int cmd_metrics(int argc, char **argv)
{
	const char *socket = NULL;
	json_object *reply, *text;
	int r;

	r = cli_parse_simple("metrics", argc, argv, &socket, NULL, NULL, NULL, NULL);
	if (r >= 0)
		return r;
	r = cli_call_ok(socket, cli_request("metrics"), &reply, NULL);
	if (r != 0)
		return r;
	if (!json_object_object_get_ex(reply, "text", &text) ||
	    !json_object_is_type(text, json_type_string)) {
		json_object_put(reply);
		fprintf(stderr, "bulkhead: the daemon's metrics reply has no text\n");
		return 1;
	}
	fwrite(json_object_get_string(text), 1, (size_t)json_object_get_string_len(text), stdout);
	json_object_put(reply);
	return 0;
}
