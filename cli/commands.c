/* SPDX-License-Identifier: MIT */
/*
 * What the commands that talk to a running bulkheadd share (see commands.h): their usage,
 * from CONTROL_COMMANDS (common/control-proto.h), the checks of their arguments, messages,
 * and one request with its reply.
 *
 * Arguments are checked before anything is sent (a bad --state, --limit or level is a usage
 * error, exit 2). A connection that fails, a reply that says ok:false or a daemon that speaks
 * another control protocol is exit 1 with one message on stderr naming the socket.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/control-client.h"
#include "common/control-proto.h"

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

void cli_usage(const char *name, FILE *f)
{
	const struct command *c = command_find(name);

	fprintf(f, "Usage: bulkhead %s %s%s[--socket PATH]\n", name, c ? c->usage : "",
		c && *c->usage ? " " : "");
}

/* Prints "bulkhead NAME: MESSAGE" and the usage on stderr; returns EXIT_USAGE. */
int cli_usage_error(const char *name, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bulkhead %s: ", name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cli_usage(name, stderr);
	return EXIT_USAGE;
}

/* For getopt_long's '?' and ':' (optstring starts with ':'). */
int cli_bad_option(const char *name, int o, char **argv)
{
	const char *arg = argv[optind - 1];

	if (o == ':')
		return cli_usage_error(name, "option '%s' needs an argument", arg);
	if (optopt && arg[0] == '-' && arg[1] != '-')
		return cli_usage_error(name, "unknown option '-%c'", optopt);
	return cli_usage_error(name, "unknown option '%s'", arg);
}

/* An integer min..max, the whole string. */
bool cli_parse_long(const char *s, long min, long max, long *ret)
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
void (*cli_before_error)(void);

/* "bulkhead: MESSAGE" on stderr. */
void cli_say(const char *fmt, ...)
{
	va_list ap;

	if (cli_before_error)
		cli_before_error();
	fputs("bulkhead: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void cli_oom(void)
{
	cli_say("out of memory");
	exit(EXIT_CONTROL_FAILED);
}

/* ---- talking to the daemon ---- */

void cli_session_close(struct cli_session *s)
{
	control_client_free(s->c);
	free(s->path);
	*s = (struct cli_session){};
}

/* Connects; on failure says why on stderr. 0 or EXIT_CONTROL_FAILED. */
int cli_session_open(struct cli_session *s, const char *socket_opt, int64_t deadline)
{
	int r;

	*s = (struct cli_session){};
	r = control_client_socket_path(socket_opt, &s->path);
	if (r < 0) {
		cli_say("%s", strerror(-r));
		return EXIT_CONTROL_FAILED;
	}
	r = control_client_connect(s->path, deadline, &s->c);
	if (r < 0) {
		cli_say("cannot connect to %s: %s%s", s->path, control_client_strerror(r),
			r == -ENOENT || r == -ECONNREFUSED ? " (is bulkheadd running?)"
			: r == -EACCES			   ? " (root or the control group only)"
							   : "");
		cli_session_close(s);
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
		cli_say("%s: invalid reply: \"protocol\" is not an integer", path);
		return false;
	}
	version = json_object_get_int64(v);
	if (version == CONTROL_PROTOCOL_VERSION)
		return true;
	cli_say("%s: the daemon speaks control protocol %lld, this bulkhead speaks %d: use the "
		"bulkhead command of the daemon's version",
		path, (long long)version, CONTROL_PROTOCOL_VERSION);
	return false;
}

/*
 * Parses a reply line: a JSON object with a boolean "ok", from a daemon that speaks our
 * protocol. NULL (and a message naming the socket) if it is not.
 */
json_object *cli_parse_reply(const char *path, const char *line)
{
	enum json_tokener_error e;
	json_object *o = json_tokener_parse_verbose(line, &e), *ok;

	if (!o) {
		cli_say("%s: invalid reply: %s", path, json_tokener_error_desc(e));
		return NULL;
	}
	if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean)) {
		cli_say("%s: invalid reply: not an object with \"ok\"", path);
		json_object_put(o);
		return NULL;
	}
	if (!protocol_ok(path, o)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

bool cli_reply_ok(json_object *reply)
{
	json_object *ok;

	return json_object_object_get_ex(reply, "ok", &ok) && json_object_get_boolean(ok);
}

/* The "error" text of a reply, or a stand-in. */
const char *cli_reply_error(json_object *reply)
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
static int call_until_rc(const char *socket_opt, json_object *request, int64_t deadline,
			 int timeout_rc, json_object **ret_reply, char **ret_line)
{
	struct cli_session s;
	char *line = NULL;
	int r;

	r = cli_session_open(&s, socket_opt, deadline);
	if (r != 0) {
		json_object_put(request);
		return r;
	}
	r = control_client_call(s.c, json_object_to_json_string_ext(request, JSON_C_TO_STRING_PLAIN),
			 deadline, &line);
	json_object_put(request);
	if (r == -ETIMEDOUT && timeout_rc) {
		cli_session_close(&s);
		return timeout_rc;
	}
	if (r < 0) {
		cli_say("%s: %s", s.path, control_client_strerror(r));
		cli_session_close(&s);
		return EXIT_CONTROL_FAILED;
	}
	*ret_reply = cli_parse_reply(s.path, line);
	cli_session_close(&s);
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

static int call_until(const char *socket_opt, json_object *request, int64_t deadline,
		      json_object **ret_reply, char **ret_line)
{
	return call_until_rc(socket_opt, request, deadline, 0, ret_reply, ret_line);
}

int cli_call_wait(const char *socket_opt, json_object *request, int64_t deadline,
		  json_object **ret_reply)
{
	int r = call_until_rc(socket_opt, request, deadline, EXIT_TIMEOUT, ret_reply, NULL);

	if (r != 0 || cli_reply_ok(*ret_reply))
		return r;
	cli_say("%s", cli_reply_error(*ret_reply));
	json_object_put(*ret_reply);
	*ret_reply = NULL;
	return EXIT_CONTROL_FAILED;
}

int cli_call(const char *socket_opt, json_object *request, json_object **ret_reply, char **ret_line)
{
	return call_until(socket_opt, request, control_client_now_ms() + CONTROL_CLIENT_TIMEOUT_MS,
			  ret_reply, ret_line);
}

/*
 * call_until() for commands that stop on a refusal: an "ok": false reply is said on stderr
 * (the daemon's error text), freed, and EXIT_CONTROL_FAILED returned. On 0 the reply is ok.
 */
int cli_call_until_ok(const char *socket_opt, json_object *request, int64_t deadline,
		      json_object **ret_reply, char **ret_line)
{
	int r = call_until(socket_opt, request, deadline, ret_reply, ret_line);

	if (r != 0 || cli_reply_ok(*ret_reply))
		return r;
	cli_say("%s", cli_reply_error(*ret_reply));
	json_object_put(*ret_reply);
	*ret_reply = NULL;
	if (ret_line) {
		free(*ret_line);
		*ret_line = NULL;
	}
	return EXIT_CONTROL_FAILED;
}

int cli_call_ok(const char *socket_opt, json_object *request, json_object **ret_reply,
		char **ret_line)
{
	return cli_call_until_ok(socket_opt, request,
				 control_client_now_ms() + CONTROL_CLIENT_TIMEOUT_MS, ret_reply,
				 ret_line);
}

json_object *cli_request(const char *command)
{
	json_object *o = json_object_new_object();

	if (!o || json_object_object_add(o, "command", json_object_new_string(command)) < 0)
		cli_oom();
	return o;
}

void cli_add_string(json_object *o, const char *key, const char *value)
{
	if (json_object_object_add(o, key, json_object_new_string(value)) < 0)
		cli_oom();
}

/*
 * For commands with --socket, --help, --json (json non-NULL; also --wait with wait non-NULL)
 * and fixed positional arguments named by arg_names (NULL-terminated; NULL: none), into
 * args[]. Returns -1 to go on, else an exit code.
 */
int cli_parse_simple(const char *name, int argc, char **argv, const char **socket, bool *json,
		     bool *wait, const char *const *arg_names, const char **args)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ "wait", no_argument, NULL, 'w' },
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
			cli_usage(name, stdout);
			return 0;
		case 'j':
			if (json) {
				*json = true;
				break;
			}
			return cli_bad_option(name, '?', argv);
		case 'w':
			if (wait) {
				*wait = true;
				break;
			}
			return cli_bad_option(name, '?', argv);
		default:
			return cli_bad_option(name, o, argv);
		}
	}
	if (argc - optind < n_args)
		return cli_usage_error(name, "missing %s", arg_names[argc - optind]);
	if (argc - optind > n_args)
		return cli_usage_error(name, "unexpected argument '%s'", argv[optind + n_args]);
	for (int i = 0; i < n_args; i++)
		args[i] = argv[optind + i];
	return -1;
}

/* The reply line as it came, for --json: one object, on one line. */
void cli_print_json(json_object *reply)
{
	puts(json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
}

const char *fmt_when(char *buf, size_t size, json_object *o, const char *key)
{
	double v;
	time_t t;
	struct tm tm;
	char day[32];

	if (!jnum(o, key, &v) || v <= 0)
		return "-";
	t = (time_t)v;
	if (!localtime_r(&t, &tm) || !strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &tm))
		return "-";
	snprintf(buf, size, "%s.%03d", day, (int)((v - (double)t) * 1000) % 1000);
	return buf;
}
