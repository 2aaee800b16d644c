/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead experiment` end to end: the real command runs one workload in every mode (the
 * standalone threads and fork-per-job baselines in bulkhead-worker, the supervised modes in
 * the real master) and the tests check its JSON, its table, its chart and the aftermath.
 *
 * The crashing job ids are known in advance: crash=R picks the ids with bh_crash_hit(id, R)
 * (common/builtins.h), so every mode but `threads` must quarantine exactly those.
 */
#include <check.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/builtins.h"
#include "testutil.h"

#define EXPERIMENT_TIMEOUT_MS 60000

static const char *const all_modes[] = { "threads", "threads+restart", "processes", "hybrid",
					 "fork-per-job" };
#define N_MODES (sizeof(all_modes) / sizeof(all_modes[0]))

struct exp {
	int status; /* exit code, or 128 + signal */
	char *out;
	char *err;
	char *dir;
	char json[512];
	char svg[512];
	json_object *report;
};

static const char *tail(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (!s)
		return "";
	return n > 2000 ? s + n - 2000 : s;
}

static void exp_free(struct exp *x)
{
	json_object_put(x->report);
	free(x->out);
	free(x->err);
	if (x->dir)
		tu_rm_rf(x->dir);
	free(x->dir);
}

/* Runs `bulkhead experiment ARGS... --json DIR/e.json --svg DIR/e.svg`, collects everything. */
static void run_experiment(struct exp *x, const char *const *args, bool outputs)
{
	const char *argv[64];
	int n = 0, out_fd, err_fd, st;
	pid_t pid;

	memset(x, 0, sizeof(*x));
	ck_assert_int_eq(tu_mkdtemp(&x->dir), 0);
	snprintf(x->json, sizeof(x->json), "%s/e.json", x->dir);
	snprintf(x->svg, sizeof(x->svg), "%s/e.svg", x->dir);
	argv[n++] = getenv("BULKHEAD_BIN");
	argv[n++] = "experiment";
	for (; *args; args++)
		argv[n++] = *args;
	if (outputs) {
		argv[n++] = "--json";
		argv[n++] = x->json;
		argv[n++] = "--svg";
		argv[n++] = x->svg;
	}
	argv[n] = NULL;
	ck_assert_int_eq(tu_spawn(argv, NULL, -1, &out_fd, &err_fd, &pid), 0);
	x->out = tu_read_all(out_fd, EXPERIMENT_TIMEOUT_MS);
	x->err = tu_read_all(err_fd, EXPERIMENT_TIMEOUT_MS);
	close(out_fd);
	close(err_fd);
	ck_assert_int_eq(tu_wait_exit(pid, EXPERIMENT_TIMEOUT_MS, &st), 0);
	x->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	ck_assert_ptr_nonnull(x->out);
	ck_assert_ptr_nonnull(x->err);
	/* Nothing left behind: no master's worker, no zombie of ours. */
	ck_assert_int_eq(tu_count_workers_of(pid), 0);
	ck_assert_int_eq(tu_count_zombie_children(), 0);
	if (outputs && x->status == 0) {
		x->report = json_object_from_file(x->json);
		if (!x->report)
			ck_abort_msg("no JSON (exit %d); stderr:\n%s", x->status, tail(x->err));
	}
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no '%s' in %s", key,
		      json_object_to_json_string(o));
	return v;
}

static int64_t geti(json_object *o, const char *key)
{
	return json_object_get_int64(get(o, key));
}

static double getd(json_object *o, const char *key)
{
	return json_object_get_double(get(o, key));
}

static json_object *mode(struct exp *x, const char *name)
{
	json_object *modes = get(x->report, "modes");

	for (size_t i = 0; i < json_object_array_length(modes); i++) {
		json_object *m = json_object_array_get_idx(modes, i);

		if (strcmp(json_object_get_string(get(m, "mode")), name) == 0)
			return m;
	}
	ck_abort_msg("no mode %s in the JSON", name);
	return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		n--;
	return n >= k && strncmp(s + n - k, suffix, k) == 0;
}

START_TEST(test_crashes_every_mode)
{
	const char *args[] = { "--jobs",       "3000",	       "--threads", "2",       "--job",
			       "builtin:noop", "--crash-rate", "0.005",	    "--quiet", NULL };
	uint64_t crashers = 0;
	struct exp x;
	char *svg;

	for (uint64_t id = 1; id <= 3000; id++)
		crashers += bh_crash_hit(id, 0.005);
	ck_assert_uint_gt(crashers, 0);

	run_experiment(&x, args, true);
	ck_assert_msg(x.status == 0, "exit %d; stderr:\n%s", x.status, tail(x.err));

	ck_assert_int_eq(geti(get(x.report, "workload"), "jobs"), 3000);
	ck_assert_int_eq(geti(get(x.report, "workload"), "threads"), 2);
	ck_assert_str_eq(json_object_get_string(get(get(x.report, "workload"), "job")),
			 "builtin:noop");
	ck_assert_int_gt(geti(get(x.report, "machine"), "cpus"), 0);
	ck_assert(getd(x.report, "baseline_jobs_per_s") > 0);
	ck_assert_uint_eq(json_object_array_length(get(x.report, "modes")), N_MODES);

	/* No supervisor: the first crash ends the process, the rest is lost. */
	ck_assert_int_gt(geti(mode(&x, "threads"), "lost"), 0);
	ck_assert_int_lt(geti(mode(&x, "threads"), "completed"), 3000);
	ck_assert_str_eq(json_object_get_string(get(mode(&x, "threads"), "ended_by")), "SIGSEGV");
	/* Every other mode: nothing lost, exactly the poison ids quarantined. */
	for (size_t i = 1; i < N_MODES; i++) {
		json_object *m = mode(&x, all_modes[i]);

		ck_assert_msg(geti(m, "lost") == 0, "%s lost %lld", all_modes[i],
			      (long long)geti(m, "lost"));
		ck_assert_int_eq(geti(m, "completed") + geti(m, "quarantined"), 3000);
		ck_assert_msg((uint64_t)geti(m, "quarantined") == crashers,
			      "%s quarantined %lld, expected %llu", all_modes[i],
			      (long long)geti(m, "quarantined"), (unsigned long long)crashers);
		ck_assert(getd(m, "jobs_per_s") > 0);
		ck_assert(getd(m, "ratio") > 0);
	}
	/* The supervised modes restart workers; the standalone ones have none to restart. */
	ck_assert_int_ge(geti(mode(&x, "threads+restart"), "restarts"), (int64_t)crashers);
	ck_assert_int_eq(geti(mode(&x, "fork-per-job"), "restarts"), 0);
	/* hybrid with 2 threads is 1 x 2 */
	ck_assert_int_eq(geti(mode(&x, "hybrid"), "workers"), 1);
	ck_assert_int_eq(geti(mode(&x, "hybrid"), "threads"), 2);
	ck_assert_int_eq(geti(mode(&x, "processes"), "workers"), 2);
	ck_assert_int_eq(geti(mode(&x, "processes"), "threads"), 1);

	/* The table names every mode; --quiet: no progress lines. */
	ck_assert_ptr_nonnull(strstr(x.out, "MODE"));
	ck_assert_ptr_nonnull(strstr(x.out, "RATIO"));
	for (size_t i = 0; i < N_MODES; i++)
		ck_assert_msg(strstr(x.out, all_modes[i]), "table lacks %s:\n%s", all_modes[i],
			      x.out);
	ck_assert_ptr_null(strstr(x.err, "running "));

	/* The chart: an SVG document naming every mode. */
	svg = tu_read_file(x.svg);
	ck_assert_ptr_nonnull(svg);
	ck_assert(strncmp(svg, "<svg", 4) == 0 || strncmp(svg, "<?xml", 5) == 0);
	ck_assert(ends_with(svg, "</svg>"));
	for (size_t i = 0; i < N_MODES; i++)
		ck_assert_msg(strstr(svg, all_modes[i]), "chart lacks %s", all_modes[i]);
	/*
	 * threads died: no throughput bar that makes it look fast, but the death and what it
	 * completed of the workload; the baseline's label sits on the panel's title row, above
	 * every bar (y 96, the plot starts at 110).
	 */
	for (const char *t = svg; (t = strstr(t, "<title>threads: ")); t++) {
		const char *end = strstr(t, "</title>");

		ck_assert_ptr_nonnull(end);
		ck_assert_msg(strncmp(end - 7, " jobs/s", 7) != 0,
			      "threads has a throughput bar: %.80s", t);
	}
	ck_assert_msg(strstr(svg, ">died (SIGSEGV)</text>"), "no death mark");
	{
		char done[64];

		snprintf(done, sizeof(done), " of 3,000 jobs</text>");
		ck_assert_msg(strstr(svg, done), "the dead mode's completed jobs are missing");
	}
	ck_assert_msg(strstr(svg, "y=\"96.0\" font-size=\"12\" text-anchor=\"end\" "
				  "fill=\"#333333\">crash-free threads: "),
		      "the baseline's label is not in the legend row");
	free(svg);
	exp_free(&x);
}
END_TEST

/* An output that cannot be written is said before anything runs (exit 74), not after. */
START_TEST(test_unwritable_output_refused_before_the_run)
{
	const char *args[] = { "--jobs", "10000000", "--svg", "/nonexistent-dir/e.svg", NULL };
	struct exp x;

	run_experiment(&x, args, false);
	ck_assert_msg(x.status == 74, "exit %d; stderr:\n%s", x.status, x.err);
	ck_assert_msg(strstr(x.err, "--svg /nonexistent-dir/e.svg: cannot write it"),
		      "stderr does not name the option and path:\n%s", x.err);
	ck_assert_msg(!strstr(x.err, "running "), "a mode ran:\n%s", x.err);
	exp_free(&x);
}
END_TEST

START_TEST(test_no_crashes_threads_is_the_baseline)
{
	const char *args[] = { "--jobs",
			       "2000",
			       "--threads",
			       "2",
			       "--job",
			       "builtin:noop",
			       "--crash-rate",
			       "0",
			       "--modes",
			       "threads,processes",
			       NULL };
	struct exp x;

	run_experiment(&x, args, true);
	ck_assert_msg(x.status == 0, "exit %d; stderr:\n%s", x.status, tail(x.err));
	ck_assert_int_eq(geti(mode(&x, "threads"), "lost"), 0);
	ck_assert_int_eq(geti(mode(&x, "threads"), "completed"), 2000);
	ck_assert(getd(mode(&x, "threads"), "ratio") == 1.0);
	ck_assert(getd(x.report, "baseline_jobs_per_s") == getd(mode(&x, "threads"), "jobs_per_s"));
	ck_assert_int_eq(geti(mode(&x, "processes"), "lost"), 0);
	ck_assert_int_eq(geti(mode(&x, "processes"), "quarantined"), 0);
	ck_assert_int_eq(geti(mode(&x, "processes"), "completed"), 2000);
	ck_assert_uint_eq(json_object_array_length(get(x.report, "modes")), 2);
	/* Without --quiet: a progress line per run on stderr. */
	ck_assert_ptr_nonnull(strstr(x.err, "running processes (2 × 1)"));
	exp_free(&x);
}
END_TEST

START_TEST(test_runs_keep_every_wall_time)
{
	const char *args[] = { "--jobs",       "1000",	  "--threads",	       "2",	 "--job",
			       "builtin:noop", "--modes", "threads,processes", "--runs", "3",
			       "--quiet",      NULL };
	struct exp x;

	run_experiment(&x, args, true);
	ck_assert_msg(x.status == 0, "exit %d; stderr:\n%s", x.status, tail(x.err));
	for (size_t i = 0; i < 2; i++) {
		json_object *m = json_object_array_get_idx(get(x.report, "modes"), i);
		json_object *walls = get(m, "wall_s_all");
		bool found = false;

		ck_assert_uint_eq(json_object_array_length(walls), 3);
		/* The reported run is one of them (the median). */
		for (size_t k = 0; k < 3; k++)
			found |= json_object_get_double(json_object_array_get_idx(walls, k)) ==
				 getd(m, "wall_s");
		ck_assert(found);
	}
	ck_assert_int_eq(geti(get(x.report, "workload"), "runs"), 3);
	exp_free(&x);
}
END_TEST

/*
 * The modes take turns: every mode's first run before any mode's second, so that a machine
 * that slows down meanwhile weighs on each alike (the progress lines say the order).
 */
START_TEST(test_runs_take_turns)
{
	const char *args[] = { "--jobs",    "500", "--threads", "2", "--job", "builtin:noop",
			       "--modes",   "threads,processes",     "--runs", "2",	  NULL };
	const char *order[] = { "running threads (1 × 2), run 1 of 2",
				"running processes (2 × 1), run 1 of 2",
				"running threads (1 × 2), run 2 of 2",
				"running processes (2 × 1), run 2 of 2" };
	const char *at = NULL;
	struct exp x;

	run_experiment(&x, args, true);
	ck_assert_msg(x.status == 0, "exit %d; stderr:\n%s", x.status, tail(x.err));
	at = x.err;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const char *p = strstr(at, order[i]);

		ck_assert_msg(p, "no \"%s\" after the line before it; stderr:\n%s", order[i], x.err);
		at = p + strlen(order[i]);
	}
	exp_free(&x);
}
END_TEST

static const struct {
	const char *args[6];
	const char *names; /* what stderr must mention */
} usage_errors[] = {
	{ { "--frobnicate" }, "--frobnicate" },
	{ { "--jobs", "0" }, "--jobs" },
	{ { "--jobs", "abc" }, "--jobs" },
	{ { "--jobs", "10000001" }, "--jobs" },
	{ { "--threads", "0" }, "--threads" },
	{ { "--crash-rate", "2" }, "--crash-rate" },
	{ { "--job", "builtin:nope" }, "--job" },
	{ { "--job", "builtin:sgev" }, "did you mean 'builtin:segv'" },
	{ { "--modes", "bogus" }, "--modes" },
	{ { "--modes", "thread" }, "did you mean 'threads'" },
	{ { "--arg", "bad" }, "--arg" },
	{ { "--arg", "uz=5" }, "did you mean 'us'" },
	{ { "--runs", "0" }, "--runs" },
	{ { "--jobs" }, "--jobs" },
};

START_TEST(test_usage_errors_exit_2)
{
	struct exp x;

	run_experiment(&x, usage_errors[_i].args, false);
	ck_assert_msg(x.status == 2, "%s: exit %d; stderr:\n%s", usage_errors[_i].args[0], x.status,
		      x.err);
	ck_assert_msg(strstr(x.err, usage_errors[_i].names), "stderr does not name '%s':\n%s",
		      usage_errors[_i].names, x.err);
	ck_assert_str_eq(x.out, "");
	exp_free(&x);
}
END_TEST

static Suite *experiment_suite(void)
{
	Suite *s = suite_create("experiment");
	TCase *tc;

	tc = tcase_create("modes");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_crashes_every_mode);
	tcase_add_test(tc, test_no_crashes_threads_is_the_baseline);
	tcase_add_test(tc, test_runs_keep_every_wall_time);
	tcase_add_test(tc, test_runs_take_turns);
	suite_add_tcase(s, tc);

	tc = tcase_create("usage");
	tcase_add_test(tc, test_unwritable_output_refused_before_the_run);
	tcase_add_loop_test(tc, test_usage_errors_exit_2, 0,
			    sizeof(usage_errors) / sizeof(usage_errors[0]));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(experiment_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
