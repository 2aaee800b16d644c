/* SPDX-License-Identifier: MIT */
/*
 * The commands of `bulkhead` that talk to a running bulkheadd over its control socket
 * (docs/control-protocol.md): status, jobs, reload, log-level, top, submit, wait, cancel,
 * restart and inject.
 *
 * Arguments are checked here before anything is sent (a bad --state, --limit or level is a
 * usage error, exit 2). A connection that fails or a reply that says ok:false is exit 1 with
 * one message on stderr naming the socket. Replies are parsed with json-c and read leniently:
 * a missing field shows as "-", so an older or newer daemon still gives a readable table.
 *
 * `top` is a small event loop of its own: a timerfd paces the status requests, a signalfd
 * takes SIGINT/SIGTERM/SIGWINCH/SIGTSTP, stdin is polled for `q`. It owns the terminal while
 * it runs (alternate screen, non-canonical no-echo input) and gives it back on every way out.
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <limits.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/control-client.h"
#include "common/control-proto.h"
#include "common/job-state.h"
#include "common/log.h"
#include "common/strutil.h"

#define TOP_INTERVAL_MIN 0.1 /* seconds */
#define TOP_INTERVAL_MAX 3600.0
#define TABLE_COLS_MAX 12

/* ---- usage ---- */

struct command {
	const char *name;
	const char *usage; /* after the name, for "Usage:", without --socket */
};

static const struct command commands[] = {
#define COMMAND_ENTRY(id, name, kind, usage, synopsis, help, output) { name, usage },
	CONTROL_COMMANDS(COMMAND_ENTRY)
#undef COMMAND_ENTRY
};

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void cmd_usage(const char *name, FILE *f)
{
	const struct command *c = command_find(name);

	fprintf(f, "Usage: bulkhead %s %s%s[--socket PATH]\n", name, c ? c->usage : "",
		c && *c->usage ? " " : "");
}

/* Prints "bulkhead NAME: MESSAGE" and the usage on stderr; returns EXIT_USAGE. */
static int __attribute__((format(printf, 2, 3))) usage_error(const char *name, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bulkhead %s: ", name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cmd_usage(name, stderr);
	return EXIT_USAGE;
}

/* For getopt_long's '?' and ':' (optstring starts with ':'). */
static int bad_option(const char *name, int o, char **argv)
{
	const char *arg = argv[optind - 1];

	if (o == ':')
		return usage_error(name, "option '%s' needs an argument", arg);
	if (optopt && arg[0] == '-' && arg[1] != '-')
		return usage_error(name, "unknown option '-%c'", optopt);
	return usage_error(name, "unknown option '%s'", arg);
}

/* An integer min..max, the whole string. */
static bool parse_long(const char *s, long min, long max, long *ret)
{
	char *end;
	long v;

	if (!(s[0] >= '0' && s[0] <= '9')) /* no sign, no blanks */
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*ret = v;
	return true;
}

/* ---- errors ---- */

/* Runs before an error is printed: `top` gives the terminal back first. */
static void (*before_error)(void);

/* "bulkhead: MESSAGE" on stderr. */
static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
	va_list ap;

	if (before_error)
		before_error();
	fputs("bulkhead: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void __attribute__((noreturn)) oom(void)
{
	say("out of memory");
	exit(EXIT_CONTROL_FAILED);
}

/* ---- talking to the daemon ---- */

struct session {
	char *path;
	struct control_client *c;
};

static void session_close(struct session *s)
{
	control_client_free(s->c);
	free(s->path);
	*s = (struct session){};
}

/* Connects; on failure says why on stderr. 0 or EXIT_CONTROL_FAILED. */
static int session_open(struct session *s, const char *socket_opt, int64_t deadline)
{
	int r;

	*s = (struct session){};
	r = control_client_socket_path(socket_opt, &s->path);
	if (r < 0) {
		say("%s", strerror(-r));
		return EXIT_CONTROL_FAILED;
	}
	r = control_client_connect(s->path, deadline, &s->c);
	if (r < 0) {
		say("cannot connect to %s: %s%s", s->path, control_client_strerror(r),
		    r == -ENOENT || r == -ECONNREFUSED ? " (is bulkheadd running?)"
		    : r == -EACCES		       ? " (root or the control group only)"
						       : "");
		session_close(s);
		return EXIT_CONTROL_FAILED;
	}
	return 0;
}

/*
 * Whether the daemon speaks our protocol, if the reply says which it speaks ("protocol", in
 * status replies); one that does not say is older than the member and speaks version 1.
 * False after a message naming the socket.
 */
static bool protocol_ok(const char *path, json_object *reply)
{
	json_object *v;
	int64_t version;

	if (!json_object_object_get_ex(reply, "protocol", &v))
		return true;
	if (!json_object_is_type(v, json_type_int)) {
		say("%s: invalid reply: \"protocol\" is not an integer", path);
		return false;
	}
	version = json_object_get_int64(v);
	if (version == CONTROL_PROTOCOL_VERSION)
		return true;
	say("%s: the daemon speaks control protocol %lld, this bulkhead speaks %d: use the "
	    "bulkhead command of the daemon's version",
	    path, (long long)version, CONTROL_PROTOCOL_VERSION);
	return false;
}

/*
 * Parses a reply line: a JSON object with a boolean "ok", from a daemon that speaks our
 * protocol. NULL (and a message naming the socket) if it is not.
 */
static json_object *parse_reply(const char *path, const char *line)
{
	enum json_tokener_error e;
	json_object *o = json_tokener_parse_verbose(line, &e), *ok;

	if (!o) {
		say("%s: invalid reply: %s", path, json_tokener_error_desc(e));
		return NULL;
	}
	if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean)) {
		say("%s: invalid reply: not an object with \"ok\"", path);
		json_object_put(o);
		return NULL;
	}
	if (!protocol_ok(path, o)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static bool reply_ok(json_object *reply)
{
	json_object *ok;

	return json_object_object_get_ex(reply, "ok", &ok) && json_object_get_boolean(ok);
}

/* The "error" text of a reply, or a stand-in. */
static const char *reply_error(json_object *reply)
{
	json_object *e;

	if (json_object_object_get_ex(reply, "error", &e) &&
	    json_object_is_type(e, json_type_string))
		return json_object_get_string(e);
	return "the daemon refused the request (no error text)";
}

/*
 * One request, one reply: connects, sends `request` (consumed), reads and parses the reply.
 * Returns 0 with the reply (ok true or false) in *ret_reply and its line in *ret_line (if
 * non-NULL), or EXIT_CONTROL_FAILED after a message on stderr.
 */
static int call_until(const char *socket_opt, json_object *request, int64_t deadline,
		      json_object **ret_reply, char **ret_line)
{
	struct session s;
	char *line = NULL;
	int r;

	r = session_open(&s, socket_opt, deadline);
	if (r != 0) {
		json_object_put(request);
		return r;
	}
	r = control_client_call(s.c, json_object_to_json_string_ext(request, JSON_C_TO_STRING_PLAIN),
			 deadline, &line);
	json_object_put(request);
	if (r < 0) {
		say("%s: %s", s.path, control_client_strerror(r));
		session_close(&s);
		return EXIT_CONTROL_FAILED;
	}
	*ret_reply = parse_reply(s.path, line);
	session_close(&s);
	if (!*ret_reply) {
		free(line);
		return EXIT_CONTROL_FAILED;
	}
	if (ret_line)
		*ret_line = line;
	else
		free(line);
	return 0;
}

static int call(const char *socket_opt, json_object *request, json_object **ret_reply,
		char **ret_line)
{
	return call_until(socket_opt, request, control_client_now_ms() + CONTROL_CLIENT_TIMEOUT_MS,
			  ret_reply, ret_line);
}

/*
 * call_until() for commands that stop on a refusal: an "ok": false reply is said on stderr
 * (the daemon's error text), freed, and EXIT_CONTROL_FAILED returned. On 0 the reply is ok.
 */
static int call_until_ok(const char *socket_opt, json_object *request, int64_t deadline,
			 json_object **ret_reply, char **ret_line)
{
	int r = call_until(socket_opt, request, deadline, ret_reply, ret_line);

	if (r != 0 || reply_ok(*ret_reply))
		return r;
	say("%s", reply_error(*ret_reply));
	json_object_put(*ret_reply);
	*ret_reply = NULL;
	if (ret_line) {
		free(*ret_line);
		*ret_line = NULL;
	}
	return EXIT_CONTROL_FAILED;
}

static int call_ok(const char *socket_opt, json_object *request, json_object **ret_reply,
		   char **ret_line)
{
	return call_until_ok(socket_opt, request,
			     control_client_now_ms() + CONTROL_CLIENT_TIMEOUT_MS, ret_reply,
			     ret_line);
}

static json_object *new_request(const char *command)
{
	json_object *o = json_object_new_object();

	if (!o || json_object_object_add(o, "command", json_object_new_string(command)) < 0)
		oom();
	return o;
}

static void add_string(json_object *o, const char *key, const char *value)
{
	if (json_object_object_add(o, key, json_object_new_string(value)) < 0)
		oom();
}

/* ---- reading replies leniently ---- */

static json_object *jget(json_object *o, const char *key)
{
	json_object *v;

	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v = jget(o, key);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static bool jnum(json_object *o, const char *key, double *ret)
{
	json_object *v = jget(o, key);

	if (!v ||
	    !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return false;
	*ret = json_object_get_double(v);
	return true;
}

/* A number as an integer, 0 if missing. */
static int64_t jint0(json_object *o, const char *key)
{
	double v;

	return jnum(o, key, &v) ? (int64_t)v : 0;
}

static bool jbool(json_object *o, const char *key)
{
	json_object *v = jget(o, key);

	return v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

static size_t jlen(json_object *array)
{
	return array && json_object_is_type(array, json_type_array)
		       ? json_object_array_length(array)
		       : 0;
}

/* An integer field as text, "-" if missing. */
static const char *fmt_int(char *buf, size_t size, json_object *o, const char *key)
{
	double v;

	if (!jnum(o, key, &v))
		return "-";
	return str_printf(buf, size, "%lld", (long long)v);
}

/* A string field, "-" if missing or empty. */
static const char *fmt_str(json_object *o, const char *key)
{
	const char *s = jstr(o, key);

	return s && *s ? s : "-";
}

/* 12.5s, 3m20s, 1h02m, 2d03h. */
static const char *fmt_duration(char *buf, size_t size, double secs)
{
	long s = (long)secs;

	if (!(secs >= 0) || secs > 1e12)
		return "-";
	if (secs < 60)
		return str_printf(buf, size, "%.1fs", secs);
	if (s < 3600)
		return str_printf(buf, size, "%ldm%02lds", s / 60, s % 60);
	if (s < 86400)
		return str_printf(buf, size, "%ldh%02ldm", s / 3600, s % 3600 / 60);
	return str_printf(buf, size, "%ldd%02ldh", s / 86400, s % 86400 / 3600);
}

/* ---- tables: columns as wide as their widest cell, two spaces apart ---- */

struct table {
	size_t n_cols, n_rows;
	const char *const *heads;
	const char *align; /* 'l' or 'r' per column */
	char **cells; /* n_rows * n_cols, strdup'd */
	size_t width[TABLE_COLS_MAX];
};

static void table_init(struct table *t, const char *const *heads, const char *align)
{
	*t = (struct table){ .heads = heads, .align = align };
	while (heads[t->n_cols])
		t->n_cols++;
	for (size_t i = 0; i < t->n_cols; i++)
		t->width[i] = strlen(heads[i]);
}

/* Adds a row of n_cols cells (NULL shows as "-"). */
static void table_add(struct table *t, const char *const *row)
{
	char **cells = realloc(t->cells, (t->n_rows + 1) * t->n_cols * sizeof(char *));

	if (!cells)
		oom();
	t->cells = cells;
	for (size_t i = 0; i < t->n_cols; i++) {
		char *c = strdup(row[i] ? row[i] : "-");

		if (!c)
			oom();
		cells[t->n_rows * t->n_cols + i] = c;
		if (strlen(c) > t->width[i])
			t->width[i] = strlen(c);
	}
	t->n_rows++;
}

static void table_print_row(const struct table *t, FILE *f, const char *indent,
			    const char *const *cells)
{
	fputs(indent, f);
	for (size_t i = 0; i < t->n_cols; i++) {
		bool last = i + 1 == t->n_cols;
		int w = (int)t->width[i];

		if (t->align[i] == 'r')
			fprintf(f, "%*s", w, cells[i]);
		else
			fprintf(f, "%-*s", last ? 0 : w, cells[i]);
		fputs(last ? "\n" : "  ", f);
	}
}

/* The header, then rows from..to-1. */
static void table_print(const struct table *t, FILE *f, const char *indent, size_t from, size_t to)
{
	table_print_row(t, f, indent, t->heads);
	for (size_t r = from; r < to && r < t->n_rows; r++)
		table_print_row(t, f, indent, (const char *const *)t->cells + r * t->n_cols);
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->n_rows = 0;
}

/* ---- status ---- */

static const char *const job_counts[] = { "done",      "running",   "queued", "failed", "crashed",
					  "timed_out", "cancelled", "lost",   NULL };

/* "jobs: 100 total, 90 done, ..." (no newline); `wrap`: the end states on a second line. */
static void print_jobs_counts(FILE *f, json_object *jobs, bool wrap)
{
	char buf[32];

	fprintf(f, "jobs: %s total", fmt_int(buf, sizeof(buf), jobs, "total"));
	for (size_t i = 0; job_counts[i]; i++)
		fprintf(f, "%s%s %s",
			wrap && strcmp(job_counts[i], "failed") == 0 ? ",\n      " : ", ",
			fmt_int(buf, sizeof(buf), jobs, job_counts[i]), job_counts[i]);
}

/* Jobs that ended by running (done, failed, crashed, timed_out): the rate of `top`. */
static int64_t jobs_finished(json_object *reply)
{
	json_object *jobs = jget(reply, "jobs");

	return jint0(jobs, "done") + jint0(jobs, "failed") + jint0(jobs, "crashed") +
	       jint0(jobs, "timed_out");
}

static int64_t deaths_total(json_object *reply)
{
	json_object *deaths = jget(jget(reply, "workers"), "deaths");
	int64_t n = 0;

	if (!deaths || !json_object_is_type(deaths, json_type_object))
		return 0;
	json_object_object_foreach(deaths, name, count)
	{
		(void)name;
		n += json_object_is_type(count, json_type_int) ? json_object_get_int64(count) : 0;
	}
	return n;
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

/* "workers: 14 started, 9 restarts, 0 worker faults; deaths: SIGSEGV 3\n" */
static void print_workers(FILE *f, json_object *reply)
{
	json_object *w = jget(reply, "workers");
	char b[3][32];

	fprintf(f, "workers: %s started, %s restarts, %s worker faults; ",
		fmt_int(b[0], sizeof(b[0]), w, "started"),
		fmt_int(b[1], sizeof(b[1]), w, "restarts"),
		fmt_int(b[2], sizeof(b[2]), w, "worker_faults"));
	print_deaths(f, reply);
}

static const char *daemon_state(json_object *reply)
{
	return jbool(reply, "stopping") ? "stopping" : jbool(reply, "ready") ? "ready" : "starting";
}

/* "pid 1234, up 3m20s, ready" */
static void print_daemon(FILE *f, json_object *reply)
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
static void print_pools(FILE *f, json_object *reply, bool busy)
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
		oom();
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

static void print_status(FILE *f, json_object *reply)
{
	const char *v = jstr(reply, "version");

	fprintf(f, "bulkheadd%s%s: ", v ? " " : "", v ? v : "");
	print_daemon(f, reply);
	fputc('\n', f);
	print_jobs_counts(f, jget(reply, "jobs"), false);
	fputc('\n', f);
	print_workers(f, reply);
	fputc('\n', f);
	print_pools(f, reply, false);
}

/* Options that several commands share. */
struct common_opts {
	const char *socket;
	bool json;
};

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct common_opts co = {};
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
			cmd_usage("status", stdout);
			return 0;
		default:
			return bad_option("status", o, argv);
		}
	}
	if (optind < argc)
		return usage_error("status", "unexpected argument '%s'", argv[optind]);
	r = call_ok(co.socket, new_request("status"), &reply, &line);
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
		return usage_error("jobs", "unknown state '%s' (did you mean '%s'?); states:%s", s,
				   guess, list);
	return usage_error("jobs", "unknown state '%s'; states:%s", s, list);
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
		{},
	};
	const char *state = NULL, *group = NULL;
	struct common_opts co = {};
	json_object *reply, *req;
	long limit = 0;
	char *line;
	int o, r;

	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) >= 0) {
		switch (o) {
		case 's':
			state = optarg;
			break;
		case 'g':
			group = optarg;
			break;
		case 'l':
			if (!parse_long(optarg, 1, CONTROL_JOBS_LIMIT_MAX, &limit))
				return usage_error("jobs", "--limit %s: expected an integer 1..%d",
						   optarg, CONTROL_JOBS_LIMIT_MAX);
			break;
		case 'j':
			co.json = true;
			break;
		case 'S':
			co.socket = optarg;
			break;
		case 'h':
			cmd_usage("jobs", stdout);
			return 0;
		default:
			return bad_option("jobs", o, argv);
		}
	}
	if (optind < argc)
		return usage_error("jobs", "unexpected argument '%s'", argv[optind]);
	if (state && check_state(state) != 0)
		return EXIT_USAGE;
	if (group && !*group)
		return usage_error("jobs", "--group needs a group name");
	req = new_request("jobs");
	if (state)
		add_string(req, "state", state);
	if (group)
		add_string(req, "group", group);
	if (limit > 0 && json_object_object_add(req, "limit", json_object_new_int64(limit)) < 0)
		oom();
	r = call_ok(co.socket, req, &reply, &line);
	if (r != 0)
		return r;
	if (co.json)
		printf("%s\n", line);
	else
		print_jobs(stdout, reply);
	json_object_put(reply);
	free(line);
	return 0;
}

/* ---- reload, log-level, the reserved names ---- */

/*
 * For commands with --socket, --help and fixed positional arguments named by arg_names
 * (NULL-terminated; NULL: none), into args[]. Returns -1 to go on, else an exit code.
 */
static int parse_simple(const char *name, int argc, char **argv, const char **socket,
			const char *const *arg_names, const char **args)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int n_args = 0, o;

	while (arg_names && arg_names[n_args])
		n_args++;
	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) >= 0) {
		switch (o) {
		case 'S':
			*socket = optarg;
			break;
		case 'h':
			cmd_usage(name, stdout);
			return 0;
		default:
			return bad_option(name, o, argv);
		}
	}
	if (argc - optind < n_args)
		return usage_error(name, "missing %s", arg_names[argc - optind]);
	if (argc - optind > n_args)
		return usage_error(name, "unexpected argument '%s'", argv[optind + n_args]);
	for (int i = 0; i < n_args; i++)
		args[i] = argv[optind + i];
	return -1;
}

int cmd_reload(int argc, char **argv)
{
	const char *socket = NULL;
	json_object *reply;
	int r;

	r = parse_simple("reload", argc, argv, &socket, NULL, NULL);
	if (r >= 0)
		return r;
	r = call(socket, new_request("reload"), &reply, NULL);
	if (r != 0)
		return r;
	if (reply_ok(reply))
		puts("reloaded");
	else {
		/* The config errors, one per line, each naming FILE:LINE: printed as they are. */
		const char *e = reply_error(reply);

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
	int r;

	r = parse_simple("log-level", argc, argv, &socket, (const char *const[]){ "LEVEL", NULL },
			 &level);
	if (r >= 0)
		return r;
	if (log_level_from_name(level) < 0) {
		const char *guess = str_did_you_mean(level, log_level_names);

		return usage_error("log-level", "unknown level '%s'%s%s%s; levels: " LOG_LEVEL_NAMES(" "),
				   level, guess ? " (did you mean '" : "", guess ? guess : "",
				   guess ? "'?)" : "");
	}
	req = new_request("log-level");
	add_string(req, "level", level);
	r = call_ok(socket, req, &reply, NULL);
	if (r != 0)
		return r;
	now = jstr(reply, "level");
	printf("log level: %s\n", now ? now : level);
	json_object_put(reply);
	return 0;
}

/* ---- submit, wait, cancel, restart ---- */

/* Job ids from argv[from..argc) into a new JSON array; NULL after a usage message. */
static json_object *ids_array(const char *name, int argc, char **argv, int from)
{
	json_object *a = json_object_new_array();

	for (int i = from; i < argc; i++) {
		long id;

		if (!parse_long(argv[i], 1, LONG_MAX, &id)) {
			json_object_put(a);
			usage_error(name, "'%s' is not a job id", argv[i]);
			return NULL;
		}
		json_object_array_add(a, json_object_new_int64(id));
	}
	return a;
}

int cmd_submit(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pool", required_argument, NULL, 'p' }, { "run", required_argument, NULL, 'r' },
		{ "count", required_argument, NULL, 'c' }, { "arg", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },	   { "socket", required_argument, NULL, 'S' },
		{ "input", required_argument, NULL, 'i' }, { "help", no_argument, NULL, 'h' },
		{},
	};
	const char *socket = NULL, *pool = NULL, *run = NULL;
	json_object *req = new_request("submit"), *args = NULL, *reply, *ids, *jobs;
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
			if (!parse_long(optarg, 1, CONTROL_SUBMIT_MAX, &count)) {
				json_object_put(req);
				json_object_put(args);
				json_object_put(inputs);
				return usage_error("submit", "--count: expected 1..%d, got '%s'",
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
				return usage_error("submit", "--input %s: cannot tell the working "
						   "directory: %s", optarg, strerror(errno));
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
				return usage_error("submit", "--arg: expected KEY=VALUE, got '%s'",
						   optarg);
			}
			if (!args)
				args = json_object_new_object();
			snprintf(key, sizeof(key), "%.*s", (int)(eq - optarg), optarg);
			json_object_object_add(args, key, json_object_new_string(eq + 1));
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
			cmd_usage("submit", stdout);
			return 0;
		default:
			json_object_put(req);
			json_object_put(args);
			json_object_put(inputs);
			return bad_option("submit", o, argv);
		}
	}
	if ((argc - optind == 1) == (pool || run) || argc - optind > 1 || (!!pool != !!run) ||
	    (inputs && counted)) {
		json_object_put(req);
		json_object_put(args);
		json_object_put(inputs);
		return usage_error("submit", inputs && counted
						     ? "give --count or --input, not both (one job "
						       "per input)"
						     : "give a GROUP, or --pool and --run (not both)");
	}
	if (argc - optind == 1)
		add_string(req, "group", argv[optind]);
	else {
		add_string(req, "pool", pool);
		add_string(req, "run", run);
	}
	if (inputs)
		json_object_object_add(req, "inputs", inputs);
	else
		json_object_object_add(req, "count", json_object_new_int64(count));
	if (args)
		json_object_object_add(req, "args", args);
	r = call_ok(socket, req, &reply, NULL);
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
				return bad_option(name, '?', argv);
			*group = optarg;
			break;
		case 'j':
			*json = true;
			break;
		case 'S':
			*socket = optarg;
			break;
		case 'h':
			cmd_usage(name, stdout);
			return 0;
		default:
			return bad_option(name, o, argv);
		}
	}
	if (*group && argc > optind)
		return usage_error(name, "give job ids or --group, not both");
	if (!*group && argc == optind)
		return usage_error(name, allow_group ? "missing job ids (or --group)"
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
	req = new_request("wait");
	if (group)
		add_string(req, "group", group);
	else
		json_object_object_add(req, "ids", ids);
	/* No deadline: the reply comes when the jobs have ended. */
	r = call_until_ok(socket, req, INT64_MAX, &reply, NULL);
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
	req = new_request("cancel");
	json_object_object_add(req, "ids", ids);
	r = call_ok(socket, req, &reply, NULL);
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

int cmd_restart(int argc, char **argv)
{
	const char *socket = NULL, *target;
	json_object *req, *reply;
	int r;

	r = parse_simple("restart", argc, argv, &socket,
			 (const char *const[]){ "POOL[/INDEX]", NULL }, &target);
	if (r >= 0)
		return r;
	req = new_request("restart");
	add_string(req, "target", target);
	r = call_ok(socket, req, &reply, NULL);
	if (r != 0)
		return r;
	printf("replacing %lld worker%s of %s, one at a time\n",
	       (long long)jint0(reply, "replacing"), jint0(reply, "replacing") == 1 ? "" : "s",
	       target);
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
	bool known = false;
	int r;

	r = parse_simple("inject", argc, argv, &socket,
			 (const char *const[]){ "POOL[/INDEX]", "FAULT", NULL }, args);
	if (r >= 0)
		return r;
	for (size_t i = 0; faults[i]; i++)
		known = known || strcmp(args[1], faults[i]) == 0;
	if (!known)
		return usage_error("inject", "unknown fault '%s' (" CONTROL_FAULT_NAMES("|") ")",
				   args[1]);
	req = new_request("inject");
	add_string(req, "target", args[0]);
	add_string(req, "fault", args[1]);
	r = call_ok(socket, req, &reply, NULL);
	if (r != 0)
		return r;
	printf("injected %s into worker %s (pid %lld)\n", args[1], fmt_str(reply, "worker"),
	       (long long)jint0(reply, "pid"));
	json_object_put(reply);
	return 0;
}

/* ---- top ---- */

struct top {
	const char *socket_opt;
	int interval_ms;
	long count; /* refreshes before exiting; 0: until q */
	bool tty; /* stdout is a terminal: full screen */
	bool keys; /* stdin is a terminal too: read q */
	bool raw; /* termios changed: `saved` must be restored */
	bool screen; /* on the alternate screen */
	struct termios saved;
	struct session s;
	bool pending; /* a status request is out */
	int64_t sent_at;
	json_object *last; /* the last reply, for redraws */
	json_object *prev; /* the one before, for jobs/s */
	int64_t prev_at, last_at; /* when they came (control_client_now_ms) */
	double rate; /* jobs/s; < 0 until two replies came */
	long shown;
};

static struct top *top_active; /* for the atexit hook */

static void top_enter(struct top *t)
{
	struct termios raw;

	if (t->keys && tcgetattr(STDIN_FILENO, &t->saved) == 0) {
		raw = t->saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		t->raw = tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0;
	}
	if (t->tty) {
		/* alternate screen, cursor hidden */
		fputs("\033[?1049h\033[?25l", stdout);
		fflush(stdout);
		t->screen = true;
	}
}

static void top_leave(struct top *t)
{
	if (t->screen) {
		fputs("\033[?25h\033[?1049l", stdout);
		fflush(stdout);
		t->screen = false;
	}
	if (t->raw) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &t->saved);
		t->raw = false;
	}
}

static void top_atexit(void)
{
	if (top_active)
		top_leave(top_active);
}

/* One plain line per refresh, when stdout is not a terminal. */
static void top_print_line(struct top *t, FILE *f)
{
	json_object *r = t->last, *pools = jget(r, "pools");
	int64_t up = 0, wanted = 0, busy = 0, threads = 0;
	char rate[32] = "-";

	for (size_t i = 0; i < jlen(pools); i++) {
		json_object *p = json_object_array_get_idx(pools, i), *ws = jget(p, "workers");

		up += jint0(p, "workers_up");
		wanted += jint0(p, "workers_wanted");
		threads += jint0(p, "threads") * (int64_t)jlen(ws);
		for (size_t k = 0; k < jlen(ws); k++)
			busy += jint0(json_object_array_get_idx(ws, k), "jobs_running");
	}
	if (t->rate >= 0)
		str_printf(rate, sizeof(rate), "%.1f", t->rate);
	print_daemon(f, r);
	fprintf(f, "; %s jobs/s; ", rate);
	print_jobs_counts(f, jget(r, "jobs"), false);
	fprintf(f, "; workers %lld/%lld up, %lld/%lld threads busy; %lld restarts, %lld crashes\n",
		(long long)up, (long long)wanted, (long long)busy, (long long)threads,
		(long long)jint0(jget(r, "workers"), "restarts"), (long long)deaths_total(r));
}

static void top_frame(struct top *t, FILE *f)
{
	char rate[32] = "-";

	if (t->rate >= 0)
		str_printf(rate, sizeof(rate), "%.1f", t->rate);
	fputs("bulkhead top: ", f);
	print_daemon(f, t->last);
	fprintf(f, "; %s jobs/s; crashes %lld%s\n", rate, (long long)deaths_total(t->last),
		t->keys ? "    (q quits)" : "");
	print_jobs_counts(f, jget(t->last, "jobs"), true);
	fputc('\n', f);
	print_workers(f, t->last);
	fputc('\n', f);
	print_pools(f, t->last, true);
}

/* Renders `text` on the screen, cropped to the terminal. */
static void top_paint(const char *text)
{
	struct winsize ws = {};
	unsigned rows = 24, cols = 80, row = 0;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		rows = ws.ws_row;
		cols = ws.ws_col;
	}
	fputs("\033[H", stdout);
	for (const char *l = text; *l && row < rows; row++) {
		size_t len = strcspn(l, "\n");

		if (row > 0)
			fputs("\n", stdout);
		fprintf(stdout, "%.*s\033[K", (int)(len < cols ? len : cols), l);
		l += len + (l[len] == '\n');
	}
	fputs("\033[J", stdout);
	fflush(stdout);
}

static void top_show(struct top *t)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f;

	if (!t->last)
		return;
	if (!t->tty) {
		top_print_line(t, stdout);
		fflush(stdout);
		return;
	}
	f = open_memstream(&text, &size);
	if (!f)
		return;
	top_frame(t, f);
	if (fclose(f) == 0)
		top_paint(text);
	free(text);
}

/* A reply came: keep it, work out jobs/s, show it. */
static int top_take(struct top *t, char *line)
{
	json_object *reply = parse_reply(t->s.path, line);
	int64_t now = control_client_now_ms();
	double up0, up1, dt;

	free(line);
	if (!reply)
		return -EBADMSG;
	if (!reply_ok(reply)) {
		say("%s", reply_error(reply));
		json_object_put(reply);
		return -EPROTO;
	}
	json_object_put(t->prev);
	t->prev = t->last;
	t->prev_at = t->last_at;
	t->last = reply;
	t->last_at = now;
	t->rate = -1;
	if (t->prev) {
		/* the daemon's clock when it has one, else ours */
		if (jnum(t->prev, "uptime_seconds", &up0) && jnum(reply, "uptime_seconds", &up1) &&
		    up1 > up0)
			dt = up1 - up0;
		else
			dt = (double)(t->last_at - t->prev_at) / 1000;
		if (dt > 0)
			t->rate = (double)(jobs_finished(reply) - jobs_finished(t->prev)) / dt;
		if (t->rate < 0 && dt > 0)
			t->rate = 0; /* counts went down: a reload removed jobs */
	}
	t->shown++;
	top_show(t);
	return 0;
}

/* Sends the next status request, connecting first if needed. 0 or EXIT_CONTROL_FAILED. */
static int top_request(struct top *t)
{
	int64_t deadline = control_client_now_ms() + CONTROL_CLIENT_TIMEOUT_MS;
	int r;

	if (t->pending)
		return 0; /* the daemon is slow: no pile-up of requests */
	if (!t->s.c) {
		r = session_open(&t->s, t->socket_opt, deadline);
		if (r != 0)
			return r;
	}
	r = control_client_send(t->s.c, "{\"command\":\"status\"}", deadline);
	if (r < 0) {
		say("%s: %s", t->s.path, control_client_strerror(r));
		return EXIT_CONTROL_FAILED;
	}
	t->pending = true;
	t->sent_at = control_client_now_ms();
	return 0;
}

/* The socket is readable. 1 when done (--count reached), 0 to go on, else an exit code. */
static int top_on_socket(struct top *t)
{
	char *line;
	int r;

	for (;;) {
		r = control_client_try_receive(t->s.c, &line);
		if (r == 0)
			return 0;
		if (r == -ECONNRESET && !t->pending) {
			/* closed between requests: reconnect at the next tick */
			session_close(&t->s);
			return 0;
		}
		if (r < 0) {
			say("%s: %s", t->s.path, control_client_strerror(r));
			return EXIT_CONTROL_FAILED;
		}
		t->pending = false;
		if (top_take(t, line) < 0)
			return EXIT_CONTROL_FAILED;
		if (t->count && t->shown >= t->count)
			return 1;
	}
}

/* Stopped with ^Z: give the terminal back, stop, take it again when continued. */
static void top_suspend(struct top *t)
{
	top_leave(t);
	kill(getpid(), SIGSTOP);
	top_enter(t);
	top_show(t);
}

static int top_loop(struct top *t, int sfd, int tfd)
{
	for (;;) {
		struct pollfd pfd[4] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = tfd, .events = POLLIN },
			{ .fd = t->keys ? STDIN_FILENO : -1, .events = POLLIN },
			{ .fd = t->s.c ? control_client_fd(t->s.c) : -1, .events = POLLIN },
		};
		int timeout = -1, r;

		if (t->pending) {
			int64_t left = t->sent_at + CONTROL_CLIENT_TIMEOUT_MS - control_client_now_ms();

			if (left <= 0) {
				say("%s: %s", t->s.path, control_client_strerror(-ETIMEDOUT));
				return EXIT_CONTROL_FAILED;
			}
			timeout = (int)left;
		}
		r = poll(pfd, 4, timeout);
		if (r < 0 && errno != EINTR) {
			say("poll: %s", strerror(errno));
			return EXIT_CONTROL_FAILED;
		}
		if (r <= 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGWINCH)
					top_show(t);
				else if (si.ssi_signo == SIGTSTP)
					top_suspend(t);
				else
					return 0; /* SIGINT, SIGTERM: a normal way out */
			}
		}
		if (pfd[2].revents & (POLLIN | POLLHUP)) {
			char keys[64];
			ssize_t n = read(STDIN_FILENO, keys, sizeof(keys));

			if (n <= 0)
				t->keys = false; /* EOF: no more keys, ^C still works */
			for (ssize_t i = 0; i < n; i++)
				if (keys[i] == 'q' || keys[i] == 'Q')
					return 0;
		}
		if (pfd[3].revents) {
			r = top_on_socket(t);
			if (r != 0)
				return r == 1 ? 0 : r;
		}
		if (pfd[1].revents & POLLIN) {
			uint64_t ticks;

			if (read(tfd, &ticks, sizeof(ticks)) == sizeof(ticks)) {
				r = top_request(t);
				if (r != 0)
					return r;
			}
		}
	}
}

static int top_parse(struct top *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	double secs;
	char *end;
	int o;

	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) >= 0) {
		switch (o) {
		case 'i':
			errno = 0;
			secs = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(secs >= TOP_INTERVAL_MIN) ||
			    secs > TOP_INTERVAL_MAX)
				return usage_error("top", "--interval %s: expected seconds, %g..%g",
						   optarg, TOP_INTERVAL_MIN, TOP_INTERVAL_MAX);
			t->interval_ms = (int)(secs * 1000 + 0.5);
			break;
		case 'n':
			if (!parse_long(optarg, 1, INT32_MAX, &t->count))
				return usage_error("top", "--count %s: expected a positive integer",
						   optarg);
			break;
		case 'S':
			t->socket_opt = optarg;
			break;
		case 'h':
			cmd_usage("top", stdout);
			return 0;
		default:
			return bad_option("top", o, argv);
		}
	}
	if (optind < argc)
		return usage_error("top", "unexpected argument '%s'", argv[optind]);
	return -1;
}

/* timerfd every interval_ms, the first expiry at once; signalfd for what top handles. */
static int top_fds(struct top *t, int *ret_sfd, int *ret_tfd)
{
	struct itimerspec its = {
		.it_value = { .tv_nsec = 1 },
		.it_interval = { .tv_sec = t->interval_ms / 1000,
				 .tv_nsec = (long)(t->interval_ms % 1000) * 1000000 },
	};
	sigset_t mask;
	int sfd, tfd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGWINCH);
	sigaddset(&mask, SIGTSTP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return -errno;
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0) {
		int r = -errno;

		if (tfd >= 0)
			close(tfd);
		close(sfd);
		return r;
	}
	*ret_sfd = sfd;
	*ret_tfd = tfd;
	return 0;
}

int cmd_top(int argc, char **argv)
{
	struct top t = { .interval_ms = 1000, .rate = -1 };
	int sfd = -1, tfd = -1, r;

	r = top_parse(&t, argc, argv);
	if (r >= 0)
		return r;
	/* Connect before taking the terminal, so that an error is plain to see. */
	r = session_open(&t.s, t.socket_opt, control_client_now_ms() + CONTROL_CLIENT_TIMEOUT_MS);
	if (r != 0)
		return r;
	r = top_fds(&t, &sfd, &tfd);
	if (r < 0) {
		say("top: %s", strerror(-r));
		session_close(&t.s);
		return EXIT_CONTROL_FAILED;
	}
	t.tty = isatty(STDOUT_FILENO);
	t.keys = t.tty && isatty(STDIN_FILENO);
	top_active = &t;
	before_error = top_atexit;
	atexit(top_atexit);
	top_enter(&t);
	r = top_loop(&t, sfd, tfd);
	top_leave(&t);
	top_active = NULL;
	before_error = NULL;
	close(sfd);
	close(tfd);
	json_object_put(t.last);
	json_object_put(t.prev);
	session_close(&t.s);
	return r;
}
