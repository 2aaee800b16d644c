/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead submit` of real work and the JSON of every verb, through the real binaries
 * ($BULKHEAD_DAEMON with its real workers, $BULKHEAD_BIN): a command (exec:) whose effect on
 * a file is checked, a plugin (tests/plugins/outcomes.so, probed by the daemon before it
 * runs), refusals at submit time (a missing executable, a missing plugin, an unknown symbol,
 * a constructor that crashes: exit 1 with the reason, nothing added), a command line over
 * 2 KB and up to CONTROL_SUBMIT_RUN_MAX (one over it refused, by the CLI and by the daemon),
 * --input files becoming jobs; then every verb's --json parsed with json-c: status, jobs,
 * submit, wait (and --timeout), cancel (and --group), reload (what it changed and what waits
 * for a restart), restart --wait, inject and log-level, and --json before the command.
 *
 * Nothing sleeps to synchronise: `bulkhead wait` waits for the jobs, restart --wait for the
 * workers, and the CLI's runs are drained while the daemon's stderr is taken in.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/control-proto.h"
#include "config/probe.h"
#include "ctlutil.h"
#include "daemonutil.h"
#include "testutil.h"

#define OUTPUT_MAX (4 << 20) /* what a `bulkhead` run may print */
#define ARGS_MAX 24

static const char *env_path(const char *name)
{
	const char *p = getenv(name);

	ck_assert_msg(p && *p, "%s is not set", name);
	return p;
}



/*
 * `bulkhead ARGS... --socket d->sock_path` (NULL-terminated), its stdout and stderr
 * collected while d's stderr and datagrams are taken in. global: those go before the
 * command (`bulkhead --socket P ARGS...`).
 */
static struct cli_result cli_run(struct daemon *d, const char *const *args, bool global)
{
	const char *argv[ARGS_MAX + 4];
	size_t n = 0;

	if (global) {
		argv[n++] = "--socket";
		argv[n++] = d->sock_path;
	}
	for (size_t i = 0; args[i]; i++) {
		ck_assert_uint_lt(n, ARGS_MAX);
		argv[n++] = args[i];
	}
	if (!global) {
		argv[n++] = "--socket";
		argv[n++] = d->sock_path;
	}
	argv[n] = NULL;
	return dmn_cli(d, NULL, argv, NULL);
}

static struct cli_result cli(struct daemon *d, const char *const *args)
{
	return cli_run(d, args, false);
}

static void result_free(struct cli_result *r)
{
	dmn_cli_free(r);
}

#define expect_rc(r, code, what)                                                                   \
	ck_assert_msg((r).rc == (code), "%s: exit %d, expected %d; stdout:\n%.2000s\nstderr:\n%s", \
		      (what), (r).rc, (code), (r).out, (r).err)

/* stdout of a --json run: exactly one line, a JSON object with "ok": true. */
static json_object *json_out(const struct cli_result *r, const char *what)
{
	json_object *o, *ok;
	size_t len = strlen(r->out);

	ck_assert_msg(len > 0 && r->out[len - 1] == '\n' && !memchr(r->out, '\n', len - 1),
		      "%s --json: not one line:\n%.2000s", what, r->out);
	o = json_tokener_parse(r->out);
	ck_assert_msg(o && json_object_is_type(o, json_type_object),
		      "%s --json: not an object:\n%s", what, r->out);
	ck_assert_msg(json_object_object_get_ex(o, "ok", &ok) && json_object_get_boolean(ok),
		      "%s --json: no \"ok\":true:\n%s", what, r->out);
	return o;
}

/* Runs args (a --json command), expects exit 0 and returns its parsed object. */
static json_object *cli_json(struct daemon *d, const char *const *args)
{
	struct cli_result r = cli(d, args);
	json_object *o;

	expect_rc(r, 0, args[0]);
	o = json_out(&r, args[0]);
	result_free(&r);
	return o;
}

static int64_t jobs_total(struct daemon *d)
{
	const char *args[] = { "status", "--json", NULL };
	json_object *o = cli_json(d, args);
	int64_t n = jint(jget(o, "jobs", json_type_object), "total");

	json_object_put(o);
	return n;
}

/* submit ARGS... --json: the jobs' ids into ids[] (at most max); returns how many. */
static int submit_ids(struct daemon *d, const char *const *args, int64_t *ids, int max)
{
	const char *all[ARGS_MAX];
	json_object *o, *jobs;
	size_t n = 0;
	int k;

	all[n++] = "submit";
	for (size_t i = 0; args[i]; i++)
		all[n++] = args[i];
	all[n++] = "--json";
	all[n] = NULL;
	o = cli_json(d, all);
	jobs = jget(o, "jobs", json_type_array);
	for (k = 0; k < (int)json_object_array_length(jobs) && k < max; k++) {
		json_object *j = json_object_array_get_idx(jobs, (size_t)k);

		ids[k] = jint(j, "id");
		ck_assert_str_eq(strrchr(jstr(j, "name"), '#') ? jstr(j, "group") : "",
				 jstr(j, "group"));
	}
	json_object_put(o);
	return k;
}

/*
 * `wait ID --json`: the job ends in `state`; exit 0 if that is what its group expects (done),
 * else 1.
 */
static void wait_done(struct daemon *d, int64_t id, const char *state)
{
	char ids[24];
	const char *args[] = { "wait", ids, "--json", NULL };
	json_object *o, *j;
	struct cli_result r;

	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	r = cli(d, args);
	expect_rc(r, strcmp(state, "done") == 0 ? 0 : 1, "wait");
	o = json_out(&r, "wait");
	result_free(&r);
	j = json_object_array_get_idx(jget(o, "jobs", json_type_array), 0);
	ck_assert_msg(j, "wait %s: no job", ids);
	ck_assert_str_eq(jstr(j, "state"), state);
	json_object_put(o);
}

static void start(struct daemon *d, const char *conf)
{
	dmn_init(d);
	d->err_max = OUTPUT_MAX;
	dmn_write_config(d, conf);
	dmn_start(d, NULL);
	dmn_wait_ready(d);
}

static void stop(struct daemon *d)
{
	dmn_stop(d);
	dmn_assert_aftermath();
	dmn_free(d);
}

static const char one_pool[] = "[pool main]\nworkers = 2\nthreads = 2\n";

static const char *plugin(char *buf, size_t size, const char *file, const char *symbol)
{
	snprintf(buf, size, "plugin:%s/%s:%s", env_path("BULKHEAD_TEST_PLUGINS"), file, symbol);
	return buf;
}

/* ---- submit of real work ---- */

/* A command: exec:/bin/sh -c '...' writes a file, seen after wait; named after the command. */
START_TEST(test_submit_exec)
{
	struct daemon d;
	char run[512], file[300], want[64], *text;
	int64_t id;

	start(&d, one_pool);
	snprintf(file, sizeof(file), "%s/hi.txt", d.dir);
	snprintf(run, sizeof(run), "exec:/bin/sh -c 'echo hi from {name} {id} > %s'", file);
	{
		const char *args[] = { "--pool", "main", "--run", run, NULL };

		ck_assert_int_eq(submit_ids(&d, args, &id, 1), 1);
	}
	wait_done(&d, id, "done");
	text = tu_read_file(file);
	ck_assert_ptr_nonnull(text);
	snprintf(want, sizeof(want), "hi from sh@1 %lld\n", (long long)id); /* the group, the id */
	ck_assert_str_eq(text, want);
	free(text);
	snprintf(run, sizeof(run), "exec:/bin/sh -c 'echo {arg:word} > %s'", file);
	{ /* args for a command: {arg:KEY} */
		const char *with[] = {
			"--pool", "main", "--run", run, "--arg", "word=bonjour", NULL
		};

		ck_assert_int_eq(submit_ids(&d, with, &id, 1), 1);
	}
	wait_done(&d, id, "done");
	text = tu_read_file(file);
	ck_assert_str_eq(text, "bonjour\n");
	free(text);
	stop(&d);
}
END_TEST

/* A plugin, probed by the daemon and then run; again from a relative PATH (made absolute). */
START_TEST(test_submit_plugin)
{
	struct daemon d;
	char run[4200], cwd[4096], want[64];
	int64_t id;

	start(&d, one_pool);
	plugin(run, sizeof(run), "outcomes.so", "outcome");
	{
		const char *args[] = { "--pool",    "main",  "--run",	     run, "--arg",
				       "do=result", "--arg", "text=plugged", NULL };
		const char *jobs[] = { "jobs", "--group", "outcome@1", "--json", NULL };
		json_object *o, *j;

		ck_assert_int_eq(submit_ids(&d, args, &id, 1), 1);
		wait_done(&d, id, "done");
		o = cli_json(&d, jobs);
		j = json_object_array_get_idx(jget(o, "jobs", json_type_array), 0);
		ck_assert_ptr_nonnull(j);
		snprintf(want, sizeof(want), "plugged #%lld", (long long)id); /* its code ran */
		ck_assert_str_eq(jstr(j, "result"), want);
		json_object_put(o);
	}
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(env_path("BULKHEAD_TEST_PLUGINS")), 0);
	{ /* the same file from a relative path: the verdict cached, the same group */
		const char *args[] = {
			"--pool",  "main",	"--run", "plugin:outcomes.so:outcome",
			"--arg",   "do=result", "--arg", "text=plugged",
			"--count", "3",		NULL
		};
		int64_t ids[3];

		ck_assert_int_eq(submit_ids(&d, args, ids, 3), 3);
		wait_done(&d, ids[2], "done");
	}
	ck_assert_int_eq(chdir(cwd), 0);
	stop(&d);
}
END_TEST

/* What cannot run is refused at submit time, with the reason, exit 1, nothing added. */
START_TEST(test_submit_refused)
{
	struct daemon d;
	char run[4200];
	int64_t before;
	static const struct {
		const char *file, *symbol, *exec, *why;
	} cases[] = {
		{ NULL, NULL, "exec:/nonexistent/tool --flag",
		  "COMMAND /nonexistent/tool: No such file" },
		{ NULL, NULL, "exec:no-such-tool-anywhere x",
		  "'no-such-tool-anywhere' not found in PATH" },
		{ NULL, NULL, "exec:/etc/passwd", "not executable" },
		{ NULL, NULL, "exec:/bin/echo {arg:who}", "no value for {arg:who}" },
		{ NULL, NULL, "exec:/bin/cat {input}", "give the files to submit (--input FILE)" },
		{ NULL, NULL, "exec:/bin/sh -c 'unterminated", "expected exec:COMMAND" },
		{ "missing.so", "outcome", NULL, "cannot load" },
		{ "outcomes.so", "no_such_symbol", NULL, "no_such_symbol" },
		{ "outcomes.so", "9bad", NULL, "not a C identifier" },
		{ "ctor-crash.so", "job", NULL, "constructor crashed the probe: SIGSEGV" },
		{ "no-abi.so", "job", NULL, "" },
	};

	start(&d, one_pool);
	before = jobs_total(&d);
	/* Twice: the second time, the plugins' verdicts come from the cache. */
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			const char *r_ = cases[i].exec ? cases[i].exec
						       : plugin(run, sizeof(run), cases[i].file,
								cases[i].symbol);
			const char *args[] = { "submit", "--pool", "main", "--run", r_, NULL };
			struct cli_result r = cli(&d, args);

			expect_rc(r, 1, r_);
			ck_assert_str_eq(r.out, "");
			ck_assert_msg(strstr(r.err, cases[i].why) &&
					      strstr(r.err, "bulkhead: run "),
				      "%s: stderr:\n%s", r_, r.err);
			result_free(&r);
		}
	ck_assert_int_eq(jobs_total(&d), before);
	{ /* and the daemon is fine: a good one goes through */
		const char *args[] = { "--pool", "main", "--run", "exec:/bin/true", NULL };
		int64_t id;

		ck_assert_int_eq(submit_ids(&d, args, &id, 1), 1);
		wait_done(&d, id, "done");
	}
	stop(&d);
}
END_TEST

/*
 * submitted_runs = builtin: a pool where the control socket's users may not run their own
 * code. exec: and plugin: submits are refused naming the key; builtins and the config's own
 * exec: group still run; another pool of the same daemon still takes commands.
 */
START_TEST(test_submitted_runs_builtin_only)
{
	struct daemon d;
	char run[4200];
	int64_t before, id;

	start(&d, "[pool locked]\nworkers = 1\nthreads = 1\nsubmitted_runs = builtin\n"
		  "[pool open]\nworkers = 1\nthreads = 1\n"
		  "[job own]\npool = locked\nrun = exec:/bin/true\n");
	before = jobs_total(&d);
	for (int i = 0; i < 2; i++) {
		const char *r_ = i == 0 ? "exec:/bin/true"
					: plugin(run, sizeof(run), "outcomes.so", "outcome");
		const char *args[] = { "submit", "--pool", "locked", "--run", r_, NULL };
		struct cli_result r = cli(&d, args);

		expect_rc(r, 1, r_);
		ck_assert_msg(strstr(r.err, "pool locked takes only builtin: runs from submit "
					    "(submitted_runs = builtin in "),
			      "%s: stderr:\n%s", r_, r.err);
		result_free(&r);
	}
	ck_assert_int_eq(jobs_total(&d), before);
	{
		const char *args[] = { "--pool", "locked", "--run", "builtin:noop", NULL };

		ck_assert_int_eq(submit_ids(&d, args, &id, 1), 1);
		wait_done(&d, id, "done");
	}
	{
		const char *args[] = { "own", NULL };

		ck_assert_int_eq(submit_ids(&d, args, &id, 1), 1);
		wait_done(&d, id, "done");
	}
	{
		const char *args[] = { "--pool", "open", "--run", "exec:/bin/true", NULL };

		ck_assert_int_eq(submit_ids(&d, args, &id, 1), 1);
		wait_done(&d, id, "done");
	}
	stop(&d);
}
END_TEST

/*
 * A plugin's probe runs beside the loop, never in it: while one hangs (a constructor that
 * never returns, killed after CONFIG_PROBE_TIMEOUT_MS), another client is answered, and the
 * waiting client's later request is answered after the submit's reply, in order, with its
 * "id" echoed; a first submit of a good plugin, pipelined the same way, gets its ids.
 */
START_TEST(test_probe_off_the_loop)
{
	struct daemon d;
	struct conn a, b;
	char run[4200], *req, *line;
	json_object *o;

	start(&d, one_pool);
	conn_open(&d, &a);
	conn_open(&d, &b);
	plugin(run, sizeof(run), "ctor-hang.so", "outcome");
	ck_assert_int_ge(asprintf(&req,
				  "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"%s\","
				  "\"id\":\"hang\"}\n{\"command\":\"status\",\"id\":\"after\"}\n",
				  run),
			 0);
	conn_send_ok(&d, &a, req, strlen(req));
	free(req);
	/* The other client is served meanwhile... */
	o = call(&d, &b, "{\"command\":\"status\"}");
	assert_ok(o);
	json_object_put(o);
	/* ...while the first still waits for its probe (it takes 10 s to give up). */
	conn_fill(&a);
	ck_assert_msg(!memchr(a.in ? a.in : "", '\n', a.len), "answered before its probe ended");
	line = conn_line(&d, &a, CONFIG_PROBE_TIMEOUT_MS + CALL_MS);
	ck_assert_msg(line, "no reply to the submit; %s", dmn_describe(&d));
	o = parse_reply(line);
	assert_error(o, "did not finish within 10000 ms");
	ck_assert_str_eq(jstr(o, "id"), "hang");
	json_object_put(o);
	free(line);
	line = conn_line(&d, &a, CALL_MS);
	ck_assert_ptr_nonnull(line);
	o = parse_reply(line);
	assert_ok(o);
	ck_assert_str_eq(jstr(o, "id"), "after");
	json_object_put(o);
	free(line);

	/* A good plugin, not probed yet: its ids come in place, then the next reply. */
	plugin(run, sizeof(run), "outcomes.so", "outcome");
	ck_assert_int_ge(asprintf(&req,
				  "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"%s\","
				  "\"args\":{\"do\":\"done\"},\"count\":3,\"id\":7}\n"
				  "{\"command\":\"log-level\",\"level\":\"info\",\"id\":8}\n",
				  run),
			 0);
	conn_send_ok(&d, &a, req, strlen(req));
	free(req);
	line = conn_line(&d, &a, CONFIG_PROBE_TIMEOUT_MS + CALL_MS);
	ck_assert_ptr_nonnull(line);
	o = parse_reply(line);
	assert_ok(o);
	ck_assert_int_eq(jint(o, "id"), 7);
	ck_assert_int_eq(json_object_array_length(jget(o, "ids", json_type_array)), 3);
	ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(
				 jget(o, "jobs", json_type_array), 2)),
			 "outcome@1#3");
	json_object_put(o);
	free(line);
	line = conn_line(&d, &a, CALL_MS);
	ck_assert_ptr_nonnull(line);
	o = parse_reply(line);
	ck_assert_int_eq(jint(o, "id"), 8);
	json_object_put(o);
	free(line);
	conn_close(&a);
	conn_close(&b);
	stop(&d);
}
END_TEST

/* A command line over 2 KB and up to the limit runs whole; one byte over is refused. */
START_TEST(test_long_command_line)
{
	struct daemon d;
	struct conn c;
	char file[300], *run, *word, *text, *req;
	size_t prefix, n;
	int64_t id;

	start(&d, one_pool);
	snprintf(file, sizeof(file), "%s/long.txt", d.dir);
	run = malloc(CONTROL_SUBMIT_RUN_MAX + 64);
	ck_assert_ptr_nonnull(run);
	prefix = (size_t)snprintf(run, CONTROL_SUBMIT_RUN_MAX,
				  "exec:/bin/sh -c 'printf %%s \"$1\" > %s' sh ", file);
	n = CONTROL_SUBMIT_RUN_MAX - prefix; /* exactly at the limit */
	word = run + prefix;
	memset(word, 'w', n);
	word[n] = '\0';
	ck_assert_uint_eq(strlen(run), CONTROL_SUBMIT_RUN_MAX);
	{
		const char *args[] = { "--pool", "main", "--run", run, NULL };

		ck_assert_int_eq(submit_ids(&d, args, &id, 1), 1);
	}
	wait_done(&d, id, "done");
	text = tu_read_file(file);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(strlen(text), n);
	ck_assert_uint_gt(n, 2048 * 7);
	free(text);
	/* One over: the CLI says so (usage, exit 2), nothing sent... */
	strcat(run, "w");
	{
		const char *args[] = { "submit", "--pool", "main", "--run", run, NULL };
		struct cli_result r = cli(&d, args);

		expect_rc(r, 2, "submit --run (one byte over)");
		ck_assert_ptr_nonnull(strstr(r.err, "at most 16000"));
		result_free(&r);
	}
	/* ...and the daemon refuses it too, from a client that does not check. */
	ck_assert_int_ge(
		asprintf(&req, "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"%s\"}", run),
		0);
	for (char *p = req; *p; p++) /* the command's quotes, for JSON */
		if (*p == '"' && p > req + 40 && p[1] != ',' && p[1] != '}')
			*p = '\'';
	conn_open(&d, &c);
	call_error(&d, &c, req, "at most 16000");
	free(req);
	/* args up to the limit too, once laid over the group's: one over is refused. */
	{
		char *kv = malloc(CONTROL_SUBMIT_ARGS_MAX + 8);
		json_object *o;

		ck_assert_ptr_nonnull(kv);
		memset(kv, 'v', CONTROL_SUBMIT_ARGS_MAX + 1);
		kv[CONTROL_SUBMIT_ARGS_MAX - 2] = '\0'; /* k= + value: exactly the limit */
		ck_assert_int_ge(asprintf(&req,
					  "{\"command\":\"submit\",\"pool\":\"main\",\"run\":"
					  "\"exec:/bin/true {arg:k}\",\"args\":{\"k\":\"%s\"}}",
					  kv),
				 0);
		o = call(&d, &c, req);
		assert_ok(o);
		json_object_put(o);
		free(req);
		kv[CONTROL_SUBMIT_ARGS_MAX - 2] = 'v';
		kv[CONTROL_SUBMIT_ARGS_MAX - 1] = '\0';
		ck_assert_int_ge(asprintf(&req,
					  "{\"command\":\"submit\",\"pool\":\"main\",\"run\":"
					  "\"exec:/bin/true {arg:k}\",\"args\":{\"k\":\"%s\"}}",
					  kv),
				 0);
		call_error(&d, &c, req, "args too long: at most 16000 bytes");
		free(req);
		free(kv);
	}
	conn_close(&c);
	free(run);
	stop(&d);
}
END_TEST

/* --input FILE...: one job per file, for an ad hoc command and for an `inputs` group. */
START_TEST(test_submit_input_files)
{
	struct daemon d;
	char conf[2048], in[3][300], out[300], run[512], path[400], spool[300], *text;
	const char *names[3] = { "a.txt", "b.txt", "c.txt" };
	int64_t ids[4];

	dmn_init(&d);
	snprintf(out, sizeof(out), "%s/out", d.dir);
	ck_assert_int_eq(mkdir(out, 0755), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(in[i], sizeof(in[i]), "%s/%s", d.dir, names[i]);
		ck_assert_int_eq(tu_write_file(in[i], names[i]), 0);
	}
	snprintf(spool, sizeof(spool), "%s/spool", d.dir);
	ck_assert_int_eq(mkdir(spool, 0755), 0);
	snprintf(conf, sizeof(conf),
		 "%s[job files]\nrun = exec:/bin/cp {input} %s/\ninputs = %s\n"
		 "[job drop]\nrun = exec:/bin/sh -c 'cp \"$1\" %s/s-$(basename \"$1\")' sh {input}\n"
		 "spool = %s\n",
		 one_pool, out, in[0], out, spool);
	d.err_max = OUTPUT_MAX;
	dmn_write_config(&d, conf);
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	snprintf(run, sizeof(run), "exec:/bin/sh -c 'cp \"$1\" %s/x-$(basename \"$1\")' sh {input}",
		 out);
	{
		const char *args[] = { "--pool",  "main", "--run",   run,   "--input", in[0],
				       "--input", in[1],  "--input", in[2], NULL };

		ck_assert_int_eq(submit_ids(&d, args, ids, 4), 3);
	}
	for (int i = 0; i < 3; i++) {
		wait_done(&d, ids[i], "done");
		snprintf(path, sizeof(path), "%s/x-%s", out, names[i]);
		text = tu_read_file(path);
		ck_assert_msg(text, "%s was not made", path);
		ck_assert_str_eq(text, names[i]);
		free(text);
	}
	{ /* the configured group takes more files */
		const char *args[] = { "files", "--input", in[1], "--input", in[2], NULL };

		ck_assert_int_eq(submit_ids(&d, args, ids, 4), 2);
		wait_done(&d, ids[1], "done");
		snprintf(path, sizeof(path), "%s/%s", out, names[2]);
		text = tu_read_file(path);
		ck_assert_ptr_nonnull(text);
		free(text);
	}
	{	/* a spool group takes files from elsewhere too, and leaves them there */
		const char *args[] = { "drop", "--input", in[2], NULL };

		ck_assert_int_eq(submit_ids(&d, args, ids, 4), 1);
		wait_done(&d, ids[0], "done");
		snprintf(path, sizeof(path), "%s/s-%s", out, names[2]);
		text = tu_read_file(path);
		ck_assert_msg(text, "%s was not made", path);
		ck_assert_str_eq(text, names[2]);
		free(text);
		text = tu_read_file(in[2]);
		ck_assert_msg(text, "%s was moved", in[2]);
		free(text);
	}
	{	/* but not one in its directory (it takes those by itself), nor none */
		const char *inside[] = { "submit", "drop", "--input", path, NULL };
		const char *none[] = { "submit", "drop", NULL };
		struct cli_result r;

		snprintf(path, sizeof(path), "%s/later.txt", spool);
		r = cli(&d, inside);
		expect_rc(r, 1, "submit drop --input (in the spool)");
		ck_assert_ptr_nonnull(strstr(r.err, "is in the spool directory of group drop"));
		result_free(&r);
		r = cli(&d, none);
		expect_rc(r, 1, "submit drop");
		ck_assert_ptr_nonnull(strstr(r.err, "--input FILE"));
		result_free(&r);
	}
	stop(&d);
}
END_TEST

/* ---- one JSON shape on every verb ---- */

START_TEST(test_json_every_verb)
{
	struct daemon d;
	char conf[512], ids[4][24];
	json_object *o;
	int64_t sleeping[2], id;

	start(&d, one_pool);
	{ /* status, before the command too */
		const char *args[] = { "--json", "status", NULL };
		struct cli_result r = cli_run(&d, args, true);

		expect_rc(r, 0, "--json status");
		o = json_out(&r, "--json status");
		ck_assert_int_eq(jint(o, "protocol"), CONTROL_PROTOCOL_VERSION);
		json_object_put(o);
		result_free(&r);
	}
	{ /* submit: {"ok":true,"jobs":[{id,name,group}]} */
		const char *args[] = { "--pool",  "main", "--run", "builtin:noop",
				       "--count", "2",	  NULL };
		int64_t two[2];

		ck_assert_int_eq(submit_ids(&d, args, two, 2), 2);
		id = two[1];
		snprintf(ids[0], sizeof(ids[0]), "%lld", (long long)id);
	}
	{ /* wait, then jobs */
		const char *wait[] = { "wait", ids[0], "--json", NULL };
		const char *jobs[] = { "jobs", ids[0], "--json", NULL };

		o = cli_json(&d, wait);
		ck_assert(jbool(o, "all_expected"));
		json_object_put(o);
		o = cli_json(&d, jobs);
		ck_assert_int_eq(
			jint(json_object_array_get_idx(jget(o, "jobs", json_type_array), 0), "id"),
			id);
		json_object_put(o);
	}
	{ /* wait --timeout: exit 124, nothing on stdout; then cancel and cancel --group */
		const char *args[] = { "--pool",	"main",	 "--run",
				       "builtin:sleep", "--arg", "ms=600000",
				       "--count",	"2",	 NULL };
		const char *wait[] = {
			"wait", ids[1], ids[2], "--timeout", "200ms", "--json", NULL
		};
		const char *cancel[] = { "cancel", ids[1], "--json", NULL };
		const char *cancel_group[] = { "cancel", "--group", "sleep@2", "--json", NULL };
		struct cli_result r;

		ck_assert_int_eq(submit_ids(&d, args, sleeping, 2), 2);
		snprintf(ids[1], sizeof(ids[1]), "%lld", (long long)sleeping[0]);
		snprintf(ids[2], sizeof(ids[2]), "%lld", (long long)sleeping[1]);
		r = cli(&d, wait);
		expect_rc(r, 124, "wait --timeout");
		ck_assert_str_eq(r.out, "");
		ck_assert_ptr_nonnull(strstr(r.err, "200ms passed"));
		result_free(&r);
		o = cli_json(&d, cancel);
		ck_assert_int_eq(
			json_object_array_length(jget(o, "cancelled", json_type_array)) +
				json_object_array_length(jget(o, "cancelling", json_type_array)),
			1);
		json_object_put(o);
		o = cli_json(&d, cancel_group);
		ck_assert_int_le(
			json_object_array_length(jget(o, "cancelled", json_type_array)) +
				json_object_array_length(jget(o, "cancelling", json_type_array)),
			1);
		json_object_put(o);
		wait_done(&d, sleeping[1], "cancelled");
	}
	{ /* log-level */
		const char *args[] = { "log-level", "info", "--json", NULL };

		o = cli_json(&d, args);
		ck_assert_str_eq(jstr(o, "level"), "info");
		json_object_put(o);
	}
	{ /* reload: what it changed, and what waits for a restart */
		const char *args[] = { "reload", "--json", NULL };
		struct cli_result r;
		json_object *changes, *warnings;
		bool resized = false, added = false;

		snprintf(conf, sizeof(conf),
			 "[supervisor]\nnode = elsewhere\n[pool main]\nworkers = 3\nthreads = 2\n"
			 "[pool extra]\nworkers = 1\n[job more]\nrun = builtin:noop\n");
		dmn_write_config(&d, conf);
		r = cli(&d, args);
		expect_rc(r, 0, "reload --json");
		o = json_out(&r, "reload");
		changes = jget(o, "changes", json_type_array);
		warnings = jget(o, "warnings", json_type_array);
		for (size_t i = 0; i < json_object_array_length(changes); i++) {
			const char *l =
				json_object_get_string(json_object_array_get_idx(changes, i));

			resized = resized || strstr(l, "pool main: resized from 2 to 3 workers");
			added = added || strstr(l, "pool extra: added");
		}
		ck_assert_msg(resized && added, "reload changes: %s", r.out);
		ck_assert_int_eq(json_object_array_length(warnings), 1);
		ck_assert_ptr_nonnull(strstr(
			json_object_get_string(json_object_array_get_idx(warnings, 0)), "node"));
		ck_assert_ptr_nonnull(strstr(r.err, "bulkhead: warning: node changes"));
		json_object_put(o);
		result_free(&r);
	}
	{ /* restart --wait: every worker of the pool a new process, ready */
		const char *args[] = { "restart", "extra", "--wait", "--json", NULL };

		o = cli_json(&d, args);
		ck_assert_int_eq(jint(o, "replacing"), 1);
		ck_assert_int_eq(json_object_array_length(jget(o, "replaced", json_type_array)), 1);
		json_object_put(o);
	}
	{ /* inject */
		const char *args[] = { "inject", "extra", "kill", "--json", NULL };

		o = cli_json(&d, args);
		ck_assert_str_eq(jstr(o, "worker"), "extra/0");
		ck_assert_str_eq(jstr(o, "fault"), "kill");
		ck_assert_int_gt(jint(o, "pid"), 0);
		json_object_put(o);
	}
	{ /* --json where it makes no sense: a usage error */
		const char *args[] = { "--json", "metrics", NULL };
		struct cli_result r = cli_run(&d, args, true);

		expect_rc(r, 2, "--json metrics");
		result_free(&r);
	}
	stop(&d);
}
END_TEST

static Suite *control_submit_suite(void)
{
	Suite *s = suite_create("control-submit");
	TCase *tc = tcase_create("submit");

	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_submit_exec);
	tcase_add_test(tc, test_submit_plugin);
	tcase_add_test(tc, test_submit_refused);
	tcase_add_test(tc, test_submitted_runs_builtin_only);
	tcase_add_test(tc, test_probe_off_the_loop);
	tcase_add_test(tc, test_long_command_line);
	tcase_add_test(tc, test_submit_input_files);
	tcase_add_test(tc, test_json_every_verb);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dmn_run(control_submit_suite(), "control-submit");
}
