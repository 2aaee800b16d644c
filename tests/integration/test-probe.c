/* SPDX-License-Identifier: MIT */
/*
 * The plugin probe: `bulkhead-worker --probe` ($BULKHEAD_WORKER) on the test plugins
 * ($BULKHEAD_TEST_PLUGINS), directly and through config_probe_run() / config_probe_plugins()
 * (config/probe.c), the way bulkheadd and the CLI use it. A plugin whose constructor crashes
 * kills the probe, never the caller; one whose constructor hangs is given up on time.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/probe.h"
#include "testutil.h"

static const char *worker(void)
{
	const char *p = getenv("BULKHEAD_WORKER");

	ck_assert_msg(p && *p, "BULKHEAD_WORKER is not set");
	return p;
}

/* "plugin:DIR/NAME.so:SYMBOL" in one of a few static buffers. */
static const char *plugin(const char *name, const char *symbol)
{
	static char buf[8][512];
	static unsigned next;
	const char *dir = getenv("BULKHEAD_TEST_PLUGINS");
	char *b = buf[next++ % 8];

	ck_assert_msg(dir && *dir, "BULKHEAD_TEST_PLUGINS is not set");
	snprintf(b, sizeof(buf[0]), "plugin:%s/%s.so:%s", dir, name, symbol);
	return b;
}

static void setup(void)
{
	struct rlimit no_core = { 0, 0 };

	setrlimit(RLIMIT_CORE, &no_core); /* the crashing constructor */
}

/* Runs `bulkhead-worker --probe` with the runs; returns the wait status and stdout. */
static int probe_cli(const char *const runs[], char **ret_out)
{
	const char *argv[16];
	int n = 0, out, status;
	pid_t pid;

	argv[n++] = worker();
	argv[n++] = "--probe";
	for (int i = 0; runs[i]; i++)
		argv[n++] = runs[i];
	argv[n] = NULL;
	ck_assert_int_eq(tu_spawn(argv, NULL, -1, &out, NULL, &pid), 0);
	*ret_out = tu_read_all(out, 20000);
	close(out);
	ck_assert_ptr_nonnull(*ret_out);
	ck_assert_int_eq(tu_wait_exit(pid, 20000, &status), 0);
	return status;
}

START_TEST(test_probe_cli)
{
	const char *good[] = { plugin("outcomes", "outcome"), plugin("outcomes", "other"), NULL };
	const char *bad[] = { plugin("outcomes", "outcome"),
			      plugin("missing", "f"),
			      plugin("outcomes", "nope"),
			      plugin("abi-old", "outcome"),
			      plugin("no-abi", "outcome"),
			      "plugin:/x.so:not-an-identifier",
			      "exec:/bin/true",
			      NULL };
	const char *crash[] = { plugin("ctor-crash", "outcome"), NULL };
	const char *none[] = { NULL };
	char *out, line[1024];
	int status;

	status = probe_cli(good, &out);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s",
		      tu_describe_status(status));
	ck_assert_str_eq(out, "");
	free(out);

	/* One line per problem, each starting with its RUN; exit 1. */
	status = probe_cli(bad, &out);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "%s",
		      tu_describe_status(status));
	snprintf(line, sizeof(line),
		 "%s: cannot load: %s/missing.so: cannot open shared object "
		 "file: No such file or directory\n",
		 bad[1], getenv("BULKHEAD_TEST_PLUGINS"));
	ck_assert_msg(strstr(out, line), "%s", out);
	ck_assert_msg(strstr(out, "undefined symbol: nope\n"), "%s", out);
	ck_assert_msg(strstr(out, "was built for job ABI 3, this bulkhead has ABI 2\n"), "%s", out);
	ck_assert_msg(strstr(out, "has no bulkhead_job_abi"), "%s", out);
	ck_assert_msg(strstr(out, "plugin:/x.so:not-an-identifier: expected plugin:PATH:SYMBOL"),
		      "%s", out);
	ck_assert_msg(strstr(out, "exec:/bin/true: not a plugin"), "%s", out);
	ck_assert_msg(!strstr(out, bad[0]), "a good plugin was reported:\n%s", out);
	{
		int lines = 0;

		for (char *p = out; *p; p++)
			lines += *p == '\n';
		ck_assert_int_eq(lines, 6);
	}
	free(out);

	/* The crashing constructor kills the probe itself. */
	status = probe_cli(crash, &out);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "%s",
		      tu_describe_status(status));
	free(out);

	status = probe_cli(none, &out);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2, "%s",
		      tu_describe_status(status));
	free(out);
}
END_TEST

START_TEST(test_probe_run)
{
	char *reason = NULL, want[1024];
	int64_t start;

	ck_assert_int_eq(config_probe_run(worker(), plugin("outcomes", "outcome"), 10000, &reason),
			 0);
	ck_assert_ptr_null(reason);

	ck_assert_int_eq(config_probe_run(worker(), plugin("missing", "f"), 10000, &reason),
			 -EINVAL);
	snprintf(want, sizeof(want),
		 "cannot load: %s/missing.so: cannot open shared object file: No such file or "
		 "directory",
		 getenv("BULKHEAD_TEST_PLUGINS"));
	ck_assert_str_eq(reason, want);
	free(reason);

	ck_assert_int_eq(config_probe_run(worker(), plugin("outcomes", "nope"), 10000, &reason),
			 -EINVAL);
	ck_assert_msg(strstr(reason, "cannot find nope: ") && strstr(reason, "undefined symbol"),
		      "%s", reason);
	free(reason);

	ck_assert_int_eq(config_probe_run(worker(), plugin("abi-old", "outcome"), 10000, &reason),
			 -EINVAL);
	ck_assert_msg(strstr(reason, "built for job ABI 3"), "%s", reason);
	free(reason);

	/* A destructor that crashes is not run by the probe: the plugin is fine. */
	ck_assert_int_eq(
		config_probe_run(worker(), plugin("dtor-crash", "outcome"), 10000, &reason), 0);
	free(reason);

	/* The probe dies by the constructor's signal; we say so and live on. */
	ck_assert_int_eq(
		config_probe_run(worker(), plugin("ctor-crash", "outcome"), 10000, &reason),
		-EINVAL);
	ck_assert_str_eq(reason, "constructor crashed the probe: SIGSEGV");
	free(reason);

	/* A constructor that never returns: given up at the deadline, probe killed. */
	start = tu_now_ms();
	ck_assert_int_eq(config_probe_run(worker(), plugin("ctor-hang", "outcome"), 300, &reason),
			 -EINVAL);
	ck_assert_str_eq(reason, "the plugin probe did not finish within 300 ms");
	ck_assert_int_lt(tu_now_ms() - start, 5000);
	free(reason);

	/* No probe to run at all. */
	ck_assert_int_eq(config_probe_run("/nonexistent/bulkhead-worker",
					  plugin("outcomes", "outcome"), 10000, &reason),
			 -ENOENT);
	ck_assert_ptr_null(reason);
	/* Something that is not a probe (exits 1 without a word, here). */
	ck_assert_int_eq(
		config_probe_run("/bin/false", plugin("outcomes", "outcome"), 10000, &reason),
		-EIO);
	ck_assert_int_eq(tu_count_zombie_children(), 0);
}
END_TEST

START_TEST(test_probe_config)
{
	struct group_config g[5] = {
		{ .name = "good", .line = 2, .run_line = 3, .kind = JOB_KIND_PLUGIN },
		{ .name = "bad", .line = 6, .run_line = 7, .kind = JOB_KIND_PLUGIN },
		{ .name = "builtin", .line = 9, .kind = JOB_KIND_BUILTIN, .run = "builtin:noop" },
		{ .name = "bad-again", .line = 11, .run_line = 12, .kind = JOB_KIND_PLUGIN },
		{ .name = "crash", .line = 15, .kind = JOB_KIND_PLUGIN }, /* no run_line: line */
	};
	struct config c = { .path = "demo.conf", .groups = g, .n_groups = 4 };
	char *errors = NULL, want[2048];

	g[0].run = (char *)plugin("outcomes", "outcome");
	g[1].run = (char *)plugin("abi-old", "outcome");
	g[3].run = g[1].run;
	g[4].run = (char *)plugin("ctor-crash", "outcome");

	/* Only builtins and good plugins: nothing to say. */
	c.n_groups = 1;
	ck_assert_int_eq(config_probe_plugins(&c, worker(), 0, &errors), 0);
	ck_assert_ptr_null(errors);

	/* One line per group that uses a bad plugin, naming the place. */
	c.n_groups = 5;
	ck_assert_int_eq(config_probe_plugins(&c, worker(), 0, &errors), -EINVAL);
	ck_assert_ptr_nonnull(errors);
	snprintf(want, sizeof(want),
		 "demo.conf:7: [job bad] run = %s: %s/abi-old.so was built for job ABI 3, this "
		 "bulkhead has ABI 2\n"
		 "demo.conf:12: [job bad-again] run = %s: %s/abi-old.so was built for job ABI 3, "
		 "this bulkhead has ABI 2\n"
		 "demo.conf:15: [job crash] run = %s: constructor crashed the probe: SIGSEGV\n",
		 g[1].run, getenv("BULKHEAD_TEST_PLUGINS"), g[1].run,
		 getenv("BULKHEAD_TEST_PLUGINS"), g[4].run);
	ck_assert_str_eq(errors, want);
	free(errors);

	/* The probe cannot run: another error, said once. */
	errors = NULL;
	ck_assert_int_eq(config_probe_plugins(&c, "/nonexistent/worker", 0, &errors), -ENOENT);
	ck_assert_str_eq(errors, "demo.conf: cannot run the plugin probe /nonexistent/worker: No "
				 "such file or directory\n");
	free(errors);
	/* ret_errors may be NULL. */
	ck_assert_int_eq(config_probe_plugins(&c, worker(), 0, NULL), -EINVAL);

	/* A reload's budget cuts a hanging constructor short: a problem, not a long wait. */
	g[0].run = (char *)plugin("ctor-hang", "outcome");
	c.n_groups = 1;
	ck_assert_int_eq(config_probe_plugins(&c, worker(), 300, &errors), -EINVAL);
	ck_assert_msg(strstr(errors, "demo.conf:3: [job good] run = "), "%s", errors);
	free(errors);
	ck_assert_int_eq(tu_count_zombie_children(), 0);
}
END_TEST

static Suite *probe_suite(void)
{
	Suite *s = suite_create("probe");
	TCase *tc = tcase_create("probe");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_probe_cli);
	tcase_add_test(tc, test_probe_run);
	tcase_add_test(tc, test_probe_config);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(probe_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
