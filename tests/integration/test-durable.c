/* SPDX-License-Identifier: MIT */
/*
 * bulkheadd on its SQLite store (DESIGN §12, issue 13) with the real faults: the daemon
 * SIGKILLed at random moments while clients submit, a SIGTERM with work queued, a full
 * file system under the store, and stores it must refuse. Each daemon of a test gets the
 * same STATE_DIRECTORY, so the next one starts on the store the last one left.
 *
 * What is checked is what a user relies on: every acknowledged id ends in exactly one
 * final state and none is missing, a retried submit (same --key) never makes jobs twice, a
 * config group runs once however often the daemon starts, `status` adds up with `lost` 0,
 * and after each kill no worker is left behind. Nothing sleeps to synchronise: every wait is
 * on a reply, a datagram, a line on stderr or an exit, with a deadline.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctlutil.h"
#include "daemonutil.h"
#include "testutil.h"

#define KILLS 20          /* SIGKILLs of the daemon in the random-kill test */
#define PER_SUBMIT 100    /* jobs per submit there */
#define CONFIG_JOBS 40    /* the config group's jobs */
#define KEYS_MAX 4096     /* submits in one test */
#define END_MS 120000     /* every job ended, generous for ASan on a loaded machine */

static const char conf[] = "[supervisor]\n"
			   "drain_timeout = 200ms\n"
			   "[pool main]\n"
			   "workers = 2\n"
			   "threads = 4\n"
			   "[job cfg]\n"
			   "run = builtin:sleep\n"
			   "args = ms=2\n"
			   "count = 40\n";
_Static_assert(CONFIG_JOBS == 40, "the config above has CONFIG_JOBS jobs");

/* What a submit with one key was answered: its ids, first .. first + count - 1. */
struct keyed {
	uint64_t first;
	unsigned count;
	bool acked;
};

static uint64_t prng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A STATE_DIRECTORY that outlives each daemon (dmn_free() removes a daemon's own dir). */
static void make_state_dir(char *buf, size_t size)
{
	char *dir;

	ck_assert_int_eq(tu_mkdtemp(&dir), 0);
	snprintf(buf, size, "%s", dir);
	free(dir);
}

/* Starts a daemon on the store in state_dir and waits for READY=1. */
static void start_on(struct daemon *d, const char *state_dir, const char *config)
{
	static char var[300];
	const char *env[] = { var, NULL };

	dmn_init(d);
	dmn_write_config(d, config);
	snprintf(var, sizeof(var), "STATE_DIRECTORY=%s", state_dir);
	dmn_start(d, env);
	dmn_wait_ready(d);
}

/* The client closed, a SIGTERM, the exit and its aftermath (no worker, no zombie). */
static void stop_all(struct daemon *d, struct conn *c)
{
	conn_close(c);
	dmn_stop(d);
	dmn_assert_aftermath();
	dmn_free(d);
}

/* SIGKILL, as a crash would: it exits, and none of its workers outlives it. */
static void kill_daemon(struct daemon *d)
{
	dmn_signal(d, SIGKILL);
	ck_assert(dmn_wait_exit(d, DMN_EXIT_MS));
	dmn_assert_nothing_left("bulkhead-worker", DMN_EXIT_MS, "the daemon's SIGKILL");
	dmn_free(d);
}

static json_object *submit_keyed(struct daemon *d, struct conn *c, unsigned k)
{
	char req[200];

	snprintf(req, sizeof(req),
		 "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:sleep\","
		 "\"args\":{\"ms\":\"1\"},\"count\":%d,\"key\":\"k%u\"}",
		 PER_SUBMIT, k);
	return call(d, c, req);
}

/* A submit reply's ids: consecutive, `count` of them; the first out. */
static uint64_t ids_of(json_object *o, unsigned count)
{
	json_object *ids = jget(o, "ids", json_type_array);
	uint64_t first = (uint64_t)json_object_get_int64(json_object_array_get_idx(ids, 0));

	ck_assert_uint_eq(json_object_array_length(ids), count);
	for (size_t i = 0; i < count; i++)
		ck_assert_uint_eq(json_object_get_int64(json_object_array_get_idx(ids, i)),
				  first + i);
	return first;
}

static void note_reply(struct keyed *kd, json_object *o, unsigned k)
{
	uint64_t first = ids_of(o, PER_SUBMIT);

	if (kd[k].acked)
		ck_assert_msg(kd[k].first == first,
			      "key k%u answered %" PRIu64 " first, then %" PRIu64, k, kd[k].first,
			      first);
	kd[k] = (struct keyed){ first, PER_SUBMIT, true };
}

/* status: the counts add up, lost is 0; returns the total. */
static int64_t checked_total(struct daemon *d, struct conn *c, int64_t *ret_unfinished)
{
	static const char *const states[] = { "queued", "running", "done", "failed", "crashed",
					      "timed_out", "cancelled", "lost" };
	json_object *o = call(d, c, "{\"command\":\"status\"}"), *jobs;
	int64_t sum = 0, total;

	assert_ok(o);
	jobs = jget(o, "jobs", json_type_object);
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		sum += jint(jobs, states[i]);
	total = jint(jobs, "total");
	ck_assert_msg(sum == total && jint(jobs, "lost") == 0, "status does not add up: %s",
		      jtext(o));
	if (ret_unfinished)
		*ret_unfinished = jint(jobs, "queued") + jint(jobs, "running");
	json_object_put(o);
	return total;
}

/* Waits (the `wait` command: a reply when they have all ended) for a group's jobs. */
static void wait_group_ended(struct daemon *d, struct conn *c, const char *group,
			     bool all_expected)
{
	char req[160];
	json_object *o;

	snprintf(req, sizeof(req), "{\"command\":\"wait\",\"group\":\"%s\"}", group);
	o = call_within(d, c, req, END_MS);
	assert_ok(o);
	ck_assert_msg(!all_expected || jbool(o, "all_expected"), "%s: %s", group, jtext(o));
	json_object_put(o);
}

static void wait_group(struct daemon *d, struct conn *c, const char *group)
{
	wait_group_ended(d, c, group, true);
}

/*
 * Acceptance 1 of issue 13: SIGKILL at random moments, KILLS times, with clients submitting
 * (one request left unanswered at most kills); each next daemon starts on the same store and
 * the client retries the key it had no reply for. At the end every acknowledged id is there,
 * once, ended done; the store holds nothing but those and the config group's jobs, which ran
 * once.
 */
START_TEST(test_random_kills)
{
	struct keyed *kd = calloc(KEYS_MAX, sizeof(*kd));
	uint64_t seed = (uint64_t)tu_now_ms() * 2654435761u | 1, rnd = seed;
	char state_dir[256], *line;
	unsigned next_key = 0, pending = UINT_MAX;
	struct daemon d;
	struct conn c;
	int64_t total, unfinished;
	json_object *o, *jobs;
	uint64_t acked = 0;

	ck_assert_ptr_nonnull(kd);
	make_state_dir(state_dir, sizeof(state_dir));
	start_on(&d, state_dir, conf);
	for (int round = 0; round <= KILLS; round++) {
		unsigned n;

		if (round > 0)
			start_on(&d, state_dir, conf);
		conn_open(&d, &c);
		/* The key whose reply the last kill took: the same ids, or new ones if its jobs
		 * were not on disk yet. */
		if (pending != UINT_MAX) {
			o = submit_keyed(&d, &c, pending);
			assert_ok(o);
			note_reply(kd, o, pending);
			json_object_put(o);
			pending = UINT_MAX;
		}
		if (round == KILLS)
			break;
		/* A random number of answered submits, some retried (same key, same ids)... */
		n = (unsigned)(prng(&rnd) % 8);
		for (unsigned i = 0; i < n && next_key < KEYS_MAX - 1; i++) {
			unsigned k = prng(&rnd) % 4 == 0 && next_key > 0 ? next_key - 1 : next_key++;

			o = submit_keyed(&d, &c, k);
			assert_ok(o);
			note_reply(kd, o, k);
			json_object_put(o);
		}
		/* ...then one sent and the daemon killed at once, or a little later (a reply may
		 * or may not have come: it counts only if it did). */
		pending = next_key++;
		{
			char req[200];
			size_t len;

			snprintf(req, sizeof(req),
				 "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:sleep\","
				 "\"args\":{\"ms\":\"1\"},\"count\":%d,\"key\":\"k%u\"}\n",
				 PER_SUBMIT, pending);
			len = strlen(req);
			conn_send_ok(&d, &c, req, len);
		}
		if (prng(&rnd) % 2) {
			line = conn_line(&d, &c, (int)(prng(&rnd) % 20));
			if (line) {
				o = parse_reply(line);
				assert_ok(o);
				note_reply(kd, o, pending);
				json_object_put(o);
				free(line);
			}
		}
		conn_close(&c);
		kill_daemon(&d);
	}

	/* The last daemon: everything ends. */
	/* Each ended; which final state is checked below. */
	wait_group_ended(&d, &c, "cfg", false);
	wait_group_ended(&d, &c, "sleep@1", false);
	total = checked_total(&d, &c, &unfinished);
	ck_assert_int_eq(unfinished, 0);
	for (unsigned k = 0; k < next_key; k++)
		acked += kd[k].acked ? kd[k].count : 0;
	ck_assert_msg((uint64_t)total == acked + CONFIG_JOBS,
		      "%" PRId64 " jobs in the store, %" PRIu64 " acknowledged + %d of the config "
		      "(seed %" PRIu64 ")",
		      total, acked, CONFIG_JOBS, seed);

	fprintf(stderr, "random kills: %d SIGKILLs, %u keys, %" PRIu64 " jobs acknowledged (seed %"
		PRIu64 ")\n", KILLS, next_key, acked, seed);
	/* Every acknowledged id, once, done; the config group ran once (its 40 only). */
	o = call(&d, &c, "{\"command\":\"jobs\",\"limit\":100000}");
	jobs = jget(o, "jobs", json_type_array);
	ck_assert_int_eq((int64_t)json_object_array_length(jobs), total);
	{
		unsigned char *seen = calloc((size_t)total + 2, 1);
		unsigned cfg = 0, blamed = 0;

		ck_assert_ptr_nonnull(seen);
		for (size_t i = 0; i < json_object_array_length(jobs); i++) {
			json_object *j = json_object_array_get_idx(jobs, i);
			int64_t id = jint(j, "id");

			ck_assert_msg(id >= 1 && id <= total && !seen[id], "id %" PRId64, id);
			seen[id] = 1;
			/* done, or blamed by the restart rule: a master died under it three
			 * times (DESIGN §12), which 20 kills in a few seconds can do to the
			 * jobs each new master starts first. */
			ck_assert_msg(strcmp(jstr(j, "state"), "done") == 0 ||
					      (strcmp(jstr(j, "cause"), "master died") == 0 &&
					       jint(j, "host_deaths") >= 3),
				      "%s", jtext(j));
			blamed += strcmp(jstr(j, "state"), "done") != 0;
			cfg += strcmp(jstr(j, "group"), "cfg") == 0;
		}
		ck_assert_uint_eq(cfg, CONFIG_JOBS);
		fprintf(stderr, "random kills: %u jobs blamed for three master deaths\n", blamed);
		for (unsigned k = 0; k < next_key; k++)
			for (unsigned i = 0; kd[k].acked && i < kd[k].count; i++)
				ck_assert_msg(kd[k].first + i <= (uint64_t)total &&
						      seen[kd[k].first + i],
					      "acknowledged id %" PRIu64 " (key k%u) is missing",
					      kd[k].first + i, k);
		free(seen);
	}
	json_object_put(o);
	stop_all(&d, &c);
	free(kd);
}
END_TEST

/*
 * A SIGTERM keeps what has not ended: queued jobs and those the drain killed run at the
 * next start (none ends cancelled), and `status` counts them all.
 */
START_TEST(test_stop_keeps_jobs)
{
	char state_dir[256];
	struct daemon d;
	struct conn c;
	json_object *o;
	int64_t total, unfinished;
	uint64_t first;

	make_state_dir(state_dir, sizeof(state_dir));
	start_on(&d, state_dir, "[supervisor]\ndrain_timeout = 100ms\n[pool main]\nworkers = 1\n"
			   "threads = 2\n");
	conn_open(&d, &c);
	/* Two that outlast the drain, and more queued behind them. */
	o = call(&d, &c,
		 "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:sleep\","
		 "\"args\":{\"ms\":\"600000\"},\"count\":2}");
	assert_ok(o);
	first = ids_of(o, 2);
	json_object_put(o);
	o = call(&d, &c,
		 "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:noop\",\"count\":50}");
	assert_ok(o);
	json_object_put(o);
	conn_close(&c);
	dmn_stop(&d);
	ck_assert_msg(strstr(d.err, "stay in") && strstr(d.err, "for the next start"), "%s",
		      dmn_describe(&d));
	dmn_assert_aftermath();
	dmn_free(&d);

	/* Room for the noops beside the long ones this time. */
	start_on(&d, state_dir, "[supervisor]\ndrain_timeout = 100ms\n[pool main]\nworkers = 1\n"
				"threads = 4\n");
	conn_open(&d, &c);
	total = checked_total(&d, &c, &unfinished);
	ck_assert_int_eq(total, 52);
	wait_group(&d, &c, "noop@2");
	o = call(&d, &c, "{\"command\":\"jobs\",\"state\":\"cancelled\"}");
	ck_assert_int_eq(jint(o, "total_matching"), 0);
	json_object_put(o);
	/* The long ones run again (a re-run of its master's stop, no attempt). */
	o = call(&d, &c, "{\"command\":\"jobs\",\"group\":\"sleep@1\"}");
	ck_assert_int_eq(jint(o, "total_matching"), 2);
	ck_assert_int_eq(jint(json_object_array_get_idx(jget(o, "jobs", json_type_array), 0), "id"),
			 (int64_t)first);
	ck_assert_int_eq(
		jint(json_object_array_get_idx(jget(o, "jobs", json_type_array), 0), "attempts"), 0);
	json_object_put(o);
	stop_all(&d, &c);
}
END_TEST

/* A daemon on the store in state_dir with config: group g ends, the store holds `total`. */
static void start_total_stop(const char *state_dir, const char *config, int64_t total)
{
	struct daemon d;
	struct conn c;

	start_on(&d, state_dir, config);
	conn_open(&d, &c);
	wait_group(&d, &c, "g");
	ck_assert_int_eq(checked_total(&d, &c, NULL), total);
	conn_close(&c);
	dmn_stop(&d);
	dmn_free(&d);
}

/* A config group runs once per definition; a changed one is new work, the old kept. */
START_TEST(test_config_group_once_per_definition)
{
	static const char v1[] = "[pool main]\nworkers = 1\nthreads = 2\n"
				 "[job g]\nrun = builtin:noop\ncount = 5\n";
	static const char more[] = "[pool main]\nworkers = 1\nthreads = 2\n"
				   "[job g]\nrun = builtin:noop\ncount = 8\n";
	static const char other[] = "[pool main]\nworkers = 1\nthreads = 2\n"
				    "[job g]\nrun = builtin:sleep\nargs = ms=1\ncount = 2\n";
	char state_dir[256];
	struct daemon d;
	struct conn c;
	json_object *o;

	make_state_dir(state_dir, sizeof(state_dir));
	/* The first start runs 5; the same definition again, nothing new; count 5 -> 8: three
	 * more. */
	start_total_stop(state_dir, v1, 5);
	start_total_stop(state_dir, v1, 5);
	start_total_stop(state_dir, more, 8);

	/* Another run: a new definition, two new jobs; the old group is kept as g~1. */
	start_on(&d, state_dir, other);
	conn_open(&d, &c);
	wait_group(&d, &c, "g");
	ck_assert_int_eq(checked_total(&d, &c, NULL), 10);
	o = call(&d, &c, "{\"command\":\"jobs\",\"group\":\"g~1\"}");
	ck_assert_int_eq(jint(o, "total_matching"), 8);
	json_object_put(o);
	ck_assert_msg(strstr(d.err, "job group g: its run changed"), "%s", dmn_describe(&d));
	stop_all(&d, &c);
}
END_TEST

/*
 * The exec settings are kept in the store and are part of the definition: the same config
 * again adds nothing (its settings read back equal), another environment is new work.
 */
START_TEST(test_exec_settings_in_definition)
{
	static const char v1[] = "[pool main]\nworkers = 1\nthreads = 2\n"
				 "[job g]\nrun = exec:/bin/true\ncount = 2\n"
				 "environment = A=1 \"B=two words\"\nsuccess_exit_status = 0 1\n"
				 "nice = 3\nretry_delay = 1ms..1s\n";
	static const char v2[] = "[pool main]\nworkers = 1\nthreads = 2\n"
				 "[job g]\nrun = exec:/bin/true\ncount = 2\n"
				 "environment = A=2 \"B=two words\"\nsuccess_exit_status = 0 1\n"
				 "nice = 3\nretry_delay = 1ms..1s\n";
	char state_dir[256];
	struct daemon d;
	struct conn c;

	make_state_dir(state_dir, sizeof(state_dir));
	start_total_stop(state_dir, v1, 2);
	start_total_stop(state_dir, v1, 2);
	start_on(&d, state_dir, v2);
	conn_open(&d, &c);
	wait_group(&d, &c, "g");
	ck_assert_int_eq(checked_total(&d, &c, NULL), 4);
	ck_assert_msg(strstr(d.err, "job group g: its environment, working_directory, "
				    "success_exit_status, nice or retry_delay changed"),
		      "%s", dmn_describe(&d));
	stop_all(&d, &c);
}
END_TEST

/*
 * Clients that submit without a pause (bench-durable's clients: 64 threads, 16 requests in
 * flight each, 200 000 in all): jobs run meanwhile. A reply waits for the write of its jobs,
 * which goes before their dispatch; with new requests on every pass, writing first each time
 * dispatched nothing until the clients had stopped (seen: 180 000 queued, 0 done).
 */
START_TEST(test_jobs_run_while_clients_submit)
{
	enum { TOTAL = 200000 };
	const char *bench = getenv("BULKHEAD_BENCH_DURABLE");
	char state_dir[256], total_s[16];
	int64_t deadline, done = 0, total = 0;
	struct daemon d;
	struct conn c;
	pid_t pid;
	int st;

	ck_assert_ptr_nonnull(bench);
	make_state_dir(state_dir, sizeof(state_dir));
	start_on(&d, state_dir, "[pool main]\nworkers = 2\nthreads = 2\n");
	conn_open(&d, &c);
	snprintf(total_s, sizeof(total_s), "%d", TOTAL);
	{
		const char *argv[] = { bench, "clients", d.sock_path, "64", "16", total_s,
				       "{\"command\":\"submit\",\"pool\":\"main\",\"run\":"
				       "\"builtin:noop\"}",
				       "{\"command\":\"status\"}", NULL };

		ck_assert_int_eq(tu_spawn(argv, NULL, -1, NULL, NULL, &pid), 0);
	}
	/* Some job done before every submit is in: a status now and then. */
	deadline = tu_now_ms() + END_MS;
	while (done == 0) {
		json_object *o, *jobs;

		ck_assert_msg(tu_ms_left(deadline) > 0, "no job done within %d ms; %s", END_MS,
			      dmn_describe(&d));
		dmn_pump(&d, 20);
		o = call(&d, &c, "{\"command\":\"status\"}");
		jobs = jget(o, "jobs", json_type_object);
		done = jint(jobs, "done");
		total = jint(jobs, "total");
		json_object_put(o);
		ck_assert_msg(done > 0 || total < TOTAL,
			      "all %d submitted and not one job done meanwhile; %s", TOTAL,
			      dmn_describe(&d));
	}
	ck_assert_int_lt(total, TOTAL);
	ck_assert_int_eq(tu_wait_exit(pid, END_MS, &st), 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "bench-durable clients: %d", st);
	stop_all(&d, &c);
}
END_TEST

/* The "jobs" view of job id, as text (history members only: what must outlive a restart). */
static char *history_of(struct daemon *d, struct conn *c, uint64_t id)
{
	static const char *const keys[] = { "accepted_at", "started_at", "ended_at", "run_seconds",
					    "node", "state", "runs", "attempts" };
	char req[120], *text = NULL;
	json_object *o, *j, *h = json_object_new_object();

	snprintf(req, sizeof(req), "{\"command\":\"jobs\",\"job\":%" PRIu64 "}", id);
	o = call(d, c, req);
	ck_assert_int_eq(jint(o, "total_matching"), 1);
	j = json_object_array_get_idx(jget(o, "jobs", json_type_array), 0);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_object *v;

		if (json_object_object_get_ex(j, keys[i], &v))
			json_object_object_add(h, keys[i], json_object_get(v));
	}
	ck_assert_int_eq(asprintf(&text, "%s", jtext(h)), (int)strlen(jtext(h)));
	json_object_put(h);
	json_object_put(o);
	return text;
}

/*
 * Each job's history (accepted, started, ended, run time, node) is the same after a SIGKILL;
 * the filters of `jobs` (several states, since, newest first) see it.
 */
START_TEST(test_history_after_kill)
{
	char state_dir[256], *before[4], *after;
	struct daemon d;
	struct conn c;
	json_object *o, *jobs;
	double accepted;

	make_state_dir(state_dir, sizeof(state_dir));
	/* This node has a name of its own; the next one (the host's name) keeps it for these. */
	start_on(&d, state_dir, "[supervisor]\nnode = edge-7\n[pool main]\nworkers = 1\nthreads = 1\n");
	conn_open(&d, &c);
	o = call(&d, &c, "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:sleep\","
			 "\"args\":{\"ms\":\"30\"},\"count\":3}");
	assert_ok(o);
	json_object_put(o);
	wait_group(&d, &c, "sleep@1");
	/* One that is still queued at the kill: its first job holds the only thread. */
	o = call(&d, &c, "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:sleep\","
			 "\"args\":{\"ms\":\"600000\"},\"count\":2}");
	assert_ok(o);
	json_object_put(o);
	for (uint64_t id = 1; id <= 3; id++) {
		before[id] = history_of(&d, &c, id);
		ck_assert_msg(strstr(before[id], "\"run_seconds\":0.0") &&
				      strstr(before[id], "\"node\":\"edge-7\""),
			      "%s", before[id]);
	}
	o = call(&d, &c, "{\"command\":\"jobs\",\"job\":1}");
	accepted = jdouble(json_object_array_get_idx(jget(o, "jobs", json_type_array), 0),
			   "accepted_at");
	json_object_put(o);
	conn_close(&c);
	kill_daemon(&d);

	start_on(&d, state_dir, "[supervisor]\ndrain_timeout = 100ms\n[pool main]\n"
				"workers = 1\nthreads = 1\n");
	conn_open(&d, &c);
	for (uint64_t id = 1; id <= 3; id++) {
		after = history_of(&d, &c, id);
		ck_assert_str_eq(after, before[id]);
		free(after);
		free(before[id]);
	}
	/* Several states as an array, newest first: 5 (queued), 4 (running again), 3, 2, 1. */
	o = call(&d, &c, "{\"command\":\"jobs\",\"state\":[\"done\",\"queued\",\"running\"],"
			 "\"reverse\":true}");
	jobs = jget(o, "jobs", json_type_array);
	ck_assert_int_eq(jint(o, "total_matching"), 5);
	for (size_t i = 0; i < 5; i++)
		ck_assert_int_eq(jint(json_object_array_get_idx(jobs, i), "id"), 5 - (int64_t)i);
	ck_assert_int_eq(jint(json_object_array_get_idx(jobs, 1), "host_deaths"), 1);
	json_object_put(o);
	/* Job 4 was started again, by this node: the host's name. */
	{
		char host[256] = "", want[300], *h4 = history_of(&d, &c, 4);

		ck_assert_int_eq(gethostname(host, sizeof(host) - 1), 0);
		snprintf(want, sizeof(want), "\"node\":\"%s\"", host);
		ck_assert_msg(strstr(h4, want), "%s", h4);
		free(h4);
	}
	/* since: after the first was accepted, all; far later, none. */
	{
		char req[160];

		snprintf(req, sizeof(req), "{\"command\":\"jobs\",\"since\":%lld}",
			 (long long)(accepted * 1e6) - 1000);
		o = call(&d, &c, req);
		ck_assert_int_eq(jint(o, "total_matching"), 5);
		json_object_put(o);
		o = call(&d, &c, "{\"command\":\"jobs\",\"since\":99999999999000000}");
		ck_assert_int_eq(jint(o, "total_matching"), 0);
		json_object_put(o);
		call_error(&d, &c, "{\"command\":\"jobs\",\"state\":[\"done\",7]}",
			   "expected a state name");
		call_error(&d, &c, "{\"command\":\"jobs\",\"state\":\"done,nope\"}",
			   "unknown state 'nope'");
	}
	stop_all(&d, &c);
}
END_TEST

/*
 * A spool's files whose jobs had not ended when the daemon was killed: the next daemon finds
 * their jobs in the store and does not take the files again; each file is moved once.
 */
START_TEST(test_spool_after_kill)
{
	char state_dir[256], spool[256], done[300], path[400], config[700];
	int64_t deadline;
	struct daemon d;
	struct conn c;

	make_state_dir(state_dir, sizeof(state_dir));
	make_state_dir(spool, sizeof(spool));
	for (int i = 0; i < 10; i++) {
		snprintf(path, sizeof(path), "%s/in-%02d", spool, i);
		ck_assert_int_eq(tu_write_file(path, "x"), 0);
	}
	snprintf(config, sizeof(config),
		 "[pool main]\nworkers = 1\nthreads = 2\n"
		 "[job eat]\nrun = exec:/bin/sh -c 'test -f \"$0\" && sleep 0.15' {input}\n"
		 "spool = %s\n",
		 spool);
	snprintf(done, sizeof(done), "%s/done", spool);
	start_on(&d, state_dir, config);
	/* Killed once a file has moved: some done, some running, some queued. */
	deadline = tu_now_ms() + END_MS;
	while (tu_count_files(done) < 1 && tu_ms_left(deadline) > 0)
		dmn_pump(&d, 10);
	ck_assert_int_ge(tu_count_files(done), 1);
	kill_daemon(&d);

	start_on(&d, state_dir, config);
	ck_assert_msg(strstr(d.err, "have jobs already") || tu_count_files(done) == 10, "%s",
		      dmn_describe(&d));
	conn_open(&d, &c);
	wait_group(&d, &c, "eat");
	ck_assert_int_eq(checked_total(&d, &c, NULL), 10);
	ck_assert_int_eq(tu_count_files(done), 10);
	ck_assert_int_eq(tu_count_files(spool), 0);
	stop_all(&d, &c);

	/*
	 * The other side of the window: a master that died after writing a job's end and before
	 * moving its file. Made by hand: job 1's file back in DIR, its input path as it was.
	 * The next start moves it and runs nothing again.
	 */
	{
		char db[300], from[400], sql[1000];
		sqlite3 *h;

		snprintf(db, sizeof(db), "%s/jobs.db", state_dir);
		snprintf(path, sizeof(path), "%s/in-07", spool);
		snprintf(from, sizeof(from), "%s/in-07", done);
		ck_assert_int_eq(rename(from, path), 0);
		snprintf(sql, sizeof(sql), "UPDATE job_states SET input = '%s' WHERE input = '%s'",
			 path, from);
		ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
		ck_assert_int_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
		ck_assert_int_eq(sqlite3_changes(h), 1);
		sqlite3_close(h);
	}
	start_on(&d, state_dir, config);
	conn_open(&d, &c);
	ck_assert_int_eq(tu_count_files(done), 10);
	ck_assert_int_eq(tu_count_files(spool), 0);
	ck_assert_int_eq(checked_total(&d, &c, NULL), 10);
	stop_all(&d, &c);
}
END_TEST

/* The "line"s of a logs reply (or a follow line's), joined by '|'. */
static void lines_of(json_object *reply, char *buf, size_t size)
{
	json_object *a = jget(reply, "lines", json_type_array);
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < json_object_array_length(a); i++)
		n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%s", i ? "|" : "",
				      jstr(json_object_array_get_idx(a, i), "line"));
}

/*
 * What jobs log (a command's output, through the worker) is kept with them: `logs` of a job
 * and of its group, after a SIGKILL too; a follower gets new lines as they come.
 */
START_TEST(test_logs)
{
	static const char talk[] = "[supervisor]\ndrain_timeout = 100ms\n"
				   "[pool main]\nworkers = 1\nthreads = 2\n"
				   "[job talk]\nrun = exec:/bin/sh -c 'echo first; echo second; "
				   "echo third >&2'\ncount = 2\n";
	char state_dir[256], buf[512], *line;
	struct daemon d;
	struct conn c, f;
	json_object *o;

	make_state_dir(state_dir, sizeof(state_dir));
	start_on(&d, state_dir, talk);
	conn_open(&d, &c);
	wait_group(&d, &c, "talk");
	o = call(&d, &c, "{\"command\":\"logs\",\"job\":2}");
	assert_ok(o);
	lines_of(o, buf, sizeof(buf));
	ck_assert_str_eq(buf, "first|second|third");
	ck_assert_str_eq(jstr(json_object_array_get_idx(jget(o, "lines", json_type_array), 0),
			      "name"),
			 "talk#2");
	json_object_put(o);
	o = call(&d, &c, "{\"command\":\"logs\",\"group\":\"talk\",\"lines\":4}");
	lines_of(o, buf, sizeof(buf));
	ck_assert_int_eq(json_object_array_length(jget(o, "lines", json_type_array)), 4);
	json_object_put(o);
	call_error(&d, &c, "{\"command\":\"logs\"}", "needs \"job\" or \"group\"");
	call_error(&d, &c, "{\"command\":\"logs\",\"job\":77}", "no job 77");
	call_error(&d, &c, "{\"command\":\"logs\",\"group\":\"talk\",\"lines\":0}",
		   "lines must be");

	/* A follower of the group: a job submitted now, its lines as they come. */
	conn_open(&d, &f);
	o = call(&d, &f, "{\"command\":\"logs\",\"group\":\"talk\",\"follow\":true,\"lines\":1}");
	assert_ok(o);
	json_object_put(o);
	o = call(&d, &c, "{\"command\":\"submit\",\"group\":\"talk\"}");
	assert_ok(o);
	json_object_put(o);
	for (int i = 0; i < 3; i++) {
		line = conn_line(&d, &f, CALL_MS);
		ck_assert_msg(line, "follower: line %d missing; %s", i + 1, dmn_describe(&d));
		o = parse_reply(line);
		ck_assert_int_eq(jint(o, "job"), 3);
		json_object_put(o);
		free(line);
	}
	conn_close(&f);

	/* After a SIGKILL: kept. */
	wait_group(&d, &c, "talk");
	conn_close(&c);
	kill_daemon(&d);
	start_on(&d, state_dir, talk);
	conn_open(&d, &c);
	o = call(&d, &c, "{\"command\":\"logs\",\"job\":3}");
	lines_of(o, buf, sizeof(buf));
	ck_assert_str_eq(buf, "first|second|third");
	json_object_put(o);
	stop_all(&d, &c);
}
END_TEST

/*
 * Where a job crashed (a plugin's real NULL dereference in parse_record()) is in its log
 * lines, so the durable store keeps it: `logs` of the job has it after a SIGKILL and a
 * restart, as before.
 */
START_TEST(test_crash_report_kept)
{
	const char *plugins = getenv("BULKHEAD_TEST_PLUGINS");
	char config[1024], state_dir[256], buf[2048];
	struct daemon d;
	struct conn c;
	json_object *o;

	ck_assert_msg(plugins && *plugins, "BULKHEAD_TEST_PLUGINS is not set");
	snprintf(config, sizeof(config),
		 "[pool main]\nworkers = 1\nthreads = 1\n"
		 "[job parse]\nrun = plugin:%s/crashy.so:crash_job\nmax_attempts = 1\n"
		 "expect = crashed\n",
		 plugins);
	make_state_dir(state_dir, sizeof(state_dir));
	start_on(&d, state_dir, config);
	conn_open(&d, &c);
	wait_group(&d, &c, "parse");
	for (int round = 0; round < 2; round++) {
		o = call(&d, &c, "{\"command\":\"logs\",\"job\":1}");
		assert_ok(o);
		lines_of(o, buf, sizeof(buf));
		ck_assert_msg(strncmp(buf, "crash: SIGSEGV at 0x0 in crashy.so:parse_record+0x",
				      strlen("crash: SIGSEGV at 0x0 in crashy.so:parse_record+0x")) ==
					      0 &&
				      strstr(buf, "|crash: #0 crashy.so:parse_record+0x") &&
				      strstr(buf, "|crash: #1 crashy.so:crash_job+0x"),
			      "round %d: %s", round, buf);
		json_object_put(o);
		if (round == 1)
			break;
		conn_close(&c);
		kill_daemon(&d);
		start_on(&d, state_dir, config);
		conn_open(&d, &c);
	}
	stop_all(&d, &c);
}
END_TEST

/* Starts a daemon that must exit with `code` at once, saying `says` (and the file). */
static void expect_refused_start(const char *state_dir, const char *config, int code,
				 const char *says)
{
	static char var[300];
	const char *env[] = { var, NULL };
	struct daemon d;

	dmn_init(&d);
	dmn_write_config(&d, config);
	snprintf(var, sizeof(var), "STATE_DIRECTORY=%s", state_dir);
	dmn_start(&d, env);
	dmn_expect_exit(&d, code, DMN_EXIT_MS);
	ck_assert_msg(strstr(d.err, says) && strstr(d.err, "jobs.db"), "expected '%s': %s", says,
		      dmn_describe(&d));
	ck_assert_msg(d.n_notices == 0, "it notified: %s", dmn_describe(&d));
	dmn_assert_aftermath();
	dmn_free(&d);
}

/* db becomes its good copy (db.good) with len bytes at offset overwritten. */
static void good_copy_with(const char *db, off_t offset, const void *bytes, size_t len)
{
	char cmd[700];
	int fd;

	snprintf(cmd, sizeof(cmd), "cp '%s.good' '%s'", db, db);
	ck_assert_int_eq(system(cmd), 0);
	fd = open(db, O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, bytes, len, offset), (ssize_t)len);
	close(fd);
}

/* Stores the daemon must not start on: each with its exit code and the file named. */
START_TEST(test_bad_stores)
{
	/* Jobs that cannot end before the stop (which keeps them, unfinished). */
	static const char pools2[] = "[supervisor]\ndrain_timeout = 100ms\n"
				     "[pool main]\nworkers = 1\nthreads = 1\n[pool side]\n"
				     "workers = 1\nthreads = 1\n[job s]\npool = side\n"
				     "run = builtin:sleep\nargs = ms=600000\ncount = 3\n";
	static const char pools1[] = "[pool main]\nworkers = 1\nthreads = 1\n";
	char state_dir[256], db[300], cmd[700];
	struct daemon d;
	struct stat st;

	make_state_dir(state_dir, sizeof(state_dir));
	start_on(&d, state_dir, pools2);
	snprintf(db, sizeof(db), "%s/jobs.db", state_dir);
	dmn_stop(&d);
	dmn_free(&d);

	/* A pool its unfinished jobs need is gone from the config: a config error. */
	expect_refused_start(state_dir, pools1, 78, "3 not ended) runs in pool side, which the "
						    "config does not have");
	/* Damaged: half of it gone. */
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s.good'", db, db);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(stat(db, &st), 0);
	ck_assert_int_eq(truncate(db, st.st_size / 2), 0);
	expect_refused_start(state_dir, pools2, 65, "damaged");
	/* Bytes of it overwritten. */
	good_copy_with(db, 0, "garbage!garbage!garbage!", 24);
	expect_refused_start(state_dir, pools2, 65, "damaged");
	/* Written by a newer bulkhead: user_version (big-endian at byte 60 of the header) 9. */
	good_copy_with(db, 60, "\0\0\0\x09", 4);
	expect_refused_start(state_dir, pools2, 65, "newer bulkhead");
	/* Its directory is not there: an I/O error. */
	snprintf(cmd, sizeof(cmd), "%s/gone", state_dir);
	expect_refused_start(cmd, pools2, 74, "cannot");
	/* The good copy still starts, with its jobs. */
	snprintf(cmd, sizeof(cmd), "cp '%s.good' '%s'", db, db);
	ck_assert_int_eq(system(cmd), 0);
	start_on(&d, state_dir, pools2);
	{
		struct conn c;

		conn_open(&d, &c);
		ck_assert_int_eq(checked_total(&d, &c, NULL), 3);
		conn_close(&c);
	}
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* The state of pool `name` in status, or NULL (a static copy). */
static const char *pool_state(struct daemon *d, struct conn *c, const char *name)
{
	static char state[32];
	json_object *o = call(d, c, "{\"command\":\"status\"}"), *pools;
	const char *found = NULL;

	assert_ok(o);
	pools = jget(o, "pools", json_type_array);
	for (size_t i = 0; i < json_object_array_length(pools); i++) {
		json_object *p = json_object_array_get_idx(pools, i);

		if (strcmp(jstr(p, "name"), name) == 0) {
			snprintf(state, sizeof(state), "%s", jstr(p, "state"));
			found = state;
		}
	}
	json_object_put(o);
	return found;
}

/*
 * A [pool] deleted from the config once its groups' jobs have all ended: the daemon starts,
 * the pool shows as removed, its groups keep their history; defined again, it takes its
 * groups back and runs nothing twice.
 */
START_TEST(test_pool_dropped_after_its_jobs)
{
	static const char with[] = "[pool main]\nworkers = 1\nthreads = 1\n[pool side]\n"
				   "workers = 1\nthreads = 1\n[job s]\npool = side\n"
				   "run = builtin:noop\ncount = 3\n";
	static const char without[] = "[pool main]\nworkers = 1\nthreads = 1\n";
	char state_dir[256];
	struct daemon d;
	struct conn c;
	json_object *o;

	make_state_dir(state_dir, sizeof(state_dir));
	start_on(&d, state_dir, with);
	conn_open(&d, &c);
	wait_group(&d, &c, "s");
	stop_all(&d, &c);

	start_on(&d, state_dir, without);
	conn_open(&d, &c);
	ck_assert_int_eq(checked_total(&d, &c, NULL), 3);
	ck_assert_str_eq(pool_state(&d, &c, "side"), "removed");
	ck_assert_str_eq(pool_state(&d, &c, "main"), "up");
	o = call(&d, &c, "{\"command\":\"jobs\",\"group\":\"s\",\"state\":\"done\"}");
	ck_assert_int_eq(jint(o, "total_matching"), 3);
	json_object_put(o);
	/* A submit there is refused, as after a reload that removed the pool. */
	o = call(&d, &c, "{\"command\":\"submit\",\"pool\":\"side\",\"run\":\"builtin:noop\"}");
	ck_assert_msg(!jbool(o, "ok"), "%s", jtext(o));
	json_object_put(o);
	ck_assert_msg(strstr(d.err, "pool side: no longer in the config"), "%s", dmn_describe(&d));
	stop_all(&d, &c);

	/* Defined again: the group is back in it, and nothing ran again. */
	start_on(&d, state_dir, with);
	conn_open(&d, &c);
	ck_assert_int_eq(checked_total(&d, &c, NULL), 3);
	ck_assert_str_eq(pool_state(&d, &c, "side"), "up");
	stop_all(&d, &c);
}
END_TEST

/*
 * A full file system under the store: the submit whose jobs cannot be written gets no reply
 * until they are; a new submit is refused, saying why; nothing is lost once there is room.
 */
START_TEST(test_full_disk)
{
	char filler[300], buf[4096] = { 0 };
	struct daemon d;
	struct conn c, c2;
	json_object *o;
	char *line;
	uint64_t first;
	int fd;

	dmn_init(&d);
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", d.state_dir, "tmpfs", 0, "size=2m") < 0) {
		fprintf(stderr, "SKIP full disk: cannot mount a small tmpfs here (%s)\n",
			strerror(errno));
		dmn_free(&d);
		return;
	}
	dmn_write_config(&d, "[pool main]\nworkers = 1\nthreads = 2\n");
	dmn_start(&d, NULL);
	dmn_wait_ready(&d);
	conn_open(&d, &c);
	conn_open(&d, &c2);
	o = call(&d, &c, "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:noop\","
			 "\"count\":10,\"key\":\"before\"}");
	assert_ok(o);
	json_object_put(o);

	snprintf(filler, sizeof(filler), "%s/filler", d.state_dir);
	fd = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	while (write(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	/* Big enough that its rows cannot fit in what is left. */
	conn_send_ok(&d, &c,
		     "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:noop\","
		     "\"count\":20000,\"key\":\"during\"}\n",
		     strlen("{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:noop\","
			    "\"count\":20000,\"key\":\"during\"}\n"));
	dmn_expect_stderr(&d, "disk is full", CALL_MS);
	o = call(&d, &c2, "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:noop\"}");
	assert_error(o, "not accepted");
	ck_assert_msg(strstr(jstr(o, "error"), "jobs.db") && strstr(jstr(o, "error"), "full"),
		      "%s", jtext(o));
	json_object_put(o);
	/* A window in which the held reply must not come (the time is the point here): read the
	 * socket, not only what was taken in already. */
	line = conn_line(&d, &c, 300);
	ck_assert_msg(!line && !c.eof, "a reply before its jobs were written: %s",
		      line ? line : "(closed)");

	/* Room again: the held reply comes, and the daemon says so. */
	ck_assert_int_eq(unlink(filler), 0);
	line = conn_line(&d, &c, CALL_MS);
	ck_assert_msg(line, "no reply once there was room; %s", dmn_describe(&d));
	o = parse_reply(line);
	free(line);
	assert_ok(o);
	first = ids_of(o, 20000);
	json_object_put(o);
	dmn_expect_stderr(&d, "written again", CALL_MS);
	conn_close(&c);
	conn_close(&c2);
	dmn_signal(&d, SIGKILL);
	ck_assert(dmn_wait_exit(&d, DMN_EXIT_MS));
	dmn_assert_nothing_left("bulkhead-worker", DMN_EXIT_MS, "the daemon's SIGKILL");

	/* What was acknowledged is in the store. */
	{
		static char var[300];
		const char *env[] = { var, NULL };
		char state_dir[256];
		struct daemon d2;

		snprintf(state_dir, sizeof(state_dir), "%s", d.state_dir);
		snprintf(var, sizeof(var), "STATE_DIRECTORY=%s", state_dir);
		dmn_init(&d2);
		dmn_write_config(&d2, "[pool main]\nworkers = 1\nthreads = 2\n");
		dmn_start(&d2, env);
		dmn_wait_ready(&d2);
		conn_open(&d2, &c);
		ck_assert_int_eq(checked_total(&d2, &c, NULL), 20010);
		o = call(&d2, &c,
			 "{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:noop\","
			 "\"count\":20000,\"key\":\"during\"}");
		ck_assert_uint_eq(ids_of(o, 20000), first);
		json_object_put(o);
		conn_close(&c);
		dmn_stop(&d2);
		dmn_free(&d2);
	}
	dmn_assert_aftermath();
	umount2(d.state_dir, MNT_DETACH);
	dmn_free(&d);
}
END_TEST

static Suite *durable_suite(void)
{
	Suite *s = suite_create("durable");
	TCase *tc = tcase_create("restart");

	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_random_kills);
	tcase_add_test(tc, test_stop_keeps_jobs);
	tcase_add_test(tc, test_config_group_once_per_definition);
	tcase_add_test(tc, test_exec_settings_in_definition);
	tcase_add_test(tc, test_spool_after_kill);
	tcase_add_test(tc, test_history_after_kill);
	tcase_add_test(tc, test_jobs_run_while_clients_submit);
	tcase_add_test(tc, test_logs);
	tcase_add_test(tc, test_crash_report_kept);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad");
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_bad_stores);
	tcase_add_test(tc, test_pool_dropped_after_its_jobs);
	tcase_add_test(tc, test_full_disk);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dmn_run(durable_suite(), "durable");
}

