/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for config/config.c and common/builtins.c: every kind of config error (with the
 * exact FILE:LINE message and return value), defaults, the implicit pool, continuation
 * lines, CRLF, BOM, inline comments, long lines, limits, and print -> reload round trips.
 * Configs are read from memory with fmemopen() under the name "demo.conf"; file errors use
 * a private mkdtemp() directory.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/builtins.h"
#include "common/strutil.h"
#include "config/config.h"
#include "config/keys.h"

#define MINIMAL_JOB "[job a]\nrun = builtin:noop\n"

static int load_mem(const char *text, size_t len, struct config **ret, char **ret_errors)
{
	FILE *f = fmemopen((void *)text, len, "r");
	int r;

	ck_assert_ptr_nonnull(f);
	r = config_load_stream(f, "demo.conf", ret, ret_errors);
	fclose(f);
	return r;
}

/* Loads text that must be valid; returns the config. */
static struct config *load_ok(const char *text)
{
	struct config *c = NULL;
	char *errors = NULL;
	int r = load_mem(text, strlen(text), &c, &errors);

	ck_assert_msg(r == 0, "config failed (%d):\n%.2000s\n---\n%.500s", r,
		      errors ? errors : "(none)", text);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_null(errors);
	return c;
}

/* True if one line of errors is exactly `line`. */
static int has_line(const char *errors, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = errors; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (len == n && memcmp(p, line, n) == 0)
			return 1;
		if (!nl)
			break;
		p = nl + 1;
	}
	return 0;
}

static unsigned count_lines(const char *s)
{
	unsigned n = 0;

	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

/* Loads len bytes that must fail with -EINVAL and an error line exactly `expect`. */
static char *expect_error_len(const char *text, size_t len, const char *expect)
{
	struct config *c = (struct config *)0x1;
	char *errors = NULL;
	int r = load_mem(text, len, &c, &errors);

	ck_assert_msg(r == -EINVAL, "expected -EINVAL, got %d for:\n%.500s", r, text);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(errors);
	ck_assert_msg(has_line(errors, expect), "no line\n  %.500s\nin errors:\n%.2000s", expect,
		      errors);
	return errors;
}

static void expect_error(const char *text, const char *expect)
{
	free(expect_error_len(text, strlen(text), expect));
}

/* Like expect_error, and the error is the only one. */
static void expect_only_error(const char *text, const char *expect)
{
	char *errors = expect_error_len(text, strlen(text), expect);

	ck_assert_msg(count_lines(errors) == 1, "more than one error:\n%s", errors);
	free(errors);
}

static void assert_configs_equal(const struct config *a, const struct config *b)
{
	ck_assert_str_eq(a->supervisor.control_socket, b->supervisor.control_socket);
	ck_assert_str_eq(a->supervisor.control_group, b->supervisor.control_group);
	ck_assert_int_eq(a->supervisor.log_level, b->supervisor.log_level);
	ck_assert_uint_eq(a->supervisor.drain_timeout, b->supervisor.drain_timeout);
	ck_assert_uint_eq(a->n_pools, b->n_pools);
	for (unsigned i = 0; i < a->n_pools; i++) {
		const struct pool_config *p = &a->pools[i], *q = &b->pools[i];

		ck_assert_str_eq(p->name, q->name);
		ck_assert_uint_eq(p->workers, q->workers);
		ck_assert_uint_eq(p->threads, q->threads);
		ck_assert_uint_eq(p->backoff_min, q->backoff_min);
		ck_assert_uint_eq(p->backoff_max, q->backoff_max);
		ck_assert_uint_eq(p->min_uptime, q->min_uptime);
		ck_assert_uint_eq(p->max_worker_faults.count, q->max_worker_faults.count);
		ck_assert_uint_eq(p->max_worker_faults.window, q->max_worker_faults.window);
		ck_assert_uint_eq(p->memory_max, q->memory_max);
		ck_assert_uint_eq(p->kill_grace, q->kill_grace);
		ck_assert_int_eq(p->on_pool_failure, q->on_pool_failure);
	}
	ck_assert_uint_eq(a->n_groups, b->n_groups);
	for (unsigned i = 0; i < a->n_groups; i++) {
		const struct group_config *g = &a->groups[i], *h = &b->groups[i];

		ck_assert_str_eq(g->name, h->name);
		ck_assert_uint_eq(g->pool, h->pool);
		ck_assert_str_eq(g->run, h->run);
		ck_assert_str_eq(g->args, h->args);
		ck_assert_int_eq(g->kind, h->kind);
		ck_assert_str_eq(g->inputs, h->inputs);
		ck_assert_uint_eq(g->n_inputs, h->n_inputs);
		for (unsigned j = 0; j < g->n_inputs; j++)
			ck_assert_str_eq(g->input_paths[j], h->input_paths[j]);
		ck_assert_str_eq(g->spool, h->spool);
		ck_assert_str_eq(g->output, h->output);
		ck_assert_uint_eq(g->count, h->count);
		ck_assert_uint_eq(g->timeout, h->timeout);
		ck_assert_uint_eq(g->max_attempts, h->max_attempts);
		ck_assert_int_eq(g->expect, h->expect);
		ck_assert_str_eq(g->environment, h->environment);
		ck_assert_str_eq(g->working_directory, h->working_directory);
		ck_assert_mem_eq(g->success_exit_status, h->success_exit_status, EXIT_SET_BYTES);
		ck_assert_int_eq(g->nice, h->nice);
		ck_assert_uint_eq(g->retry_delay_min, h->retry_delay_min);
		ck_assert_uint_eq(g->retry_delay_max, h->retry_delay_max);
	}
	ck_assert_uint_eq(a->total_jobs, b->total_jobs);
}

/* config_print(c), load that, compare. */
static void assert_roundtrip(const struct config *c)
{
	struct config *back;
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	ck_assert_ptr_nonnull(f);
	config_print(c, f);
	ck_assert_int_eq(fclose(f), 0);
	back = load_ok(text);
	assert_configs_equal(c, back);
	config_free(back);
	free(text);
}

static const char demo[] =
	"[supervisor]\n"
	"control_socket = /run/bulkhead/control.sock   # daemon; default "
	"$RUNTIME_DIRECTORY/control.sock\n"
	"control_group = bulkhead                      # who may use the socket besides root\n"
	"log_level = info                              # debug|info|notice|warning|err\n"
	"\n"
	"[pool main]            # a named group of identical workers\n"
	"workers = 3            # worker processes (1..1024)\n"
	"threads = 4            # job threads in each worker (1..256)\n"
	"backoff = 10ms..5s     # restart delay after a worker fault\n"
	"min_uptime = 1s        # a worker that lived this long restarts at once\n"
	"max_worker_faults = 10/60s   # more than 10 worker faults in 60 s: the pool fails\n"
	"memory_max = 512M      # per worker\n"
	"kill_grace = 1s        # on a timeout: let the other jobs of that worker finish\n"
	"on_pool_failure = stop # stop (pool stays failed) | exit (daemon exits non-zero)\n"
	"\n"
	"[job ledger]           # a job group: `count` instances named ledger#1..ledger#N\n"
	"pool = main\n"
	"run = builtin:balance  # builtin:NAME | plugin:PATH:SYMBOL | exec:COMMAND ARGS...\n"
	"args = iterations=100000 amount=5     # key=value pairs, passed to the job\n"
	"count = 100\n"
	"timeout = 30s          # per attempt\n"
	"max_attempts = 3       # attempts that the job itself is blamed for\n"
	"expect = done          # done|failed|crashed|timed_out\n";

START_TEST(test_demo)
{
	struct config *c = load_ok(demo);

	ck_assert_str_eq(c->path, "demo.conf");
	ck_assert_str_eq(c->supervisor.control_socket, "/run/bulkhead/control.sock");
	ck_assert_str_eq(c->supervisor.control_group, "bulkhead");
	ck_assert_int_eq(c->supervisor.log_level, LOG_LEVEL_INFO);
	ck_assert_uint_eq(c->supervisor.drain_timeout, 10 * USEC_PER_SEC);
	ck_assert_uint_eq(c->n_pools, 1);
	ck_assert_str_eq(c->pools[0].name, "main");
	ck_assert_uint_eq(c->pools[0].line, 6);
	ck_assert_uint_eq(c->pools[0].workers, 3);
	ck_assert_uint_eq(c->pools[0].threads, 4);
	ck_assert_uint_eq(c->pools[0].backoff_min, 10 * USEC_PER_MSEC);
	ck_assert_uint_eq(c->pools[0].backoff_max, 5 * USEC_PER_SEC);
	ck_assert_uint_eq(c->pools[0].min_uptime, USEC_PER_SEC);
	ck_assert_uint_eq(c->pools[0].max_worker_faults.count, 10);
	ck_assert_uint_eq(c->pools[0].max_worker_faults.window, 60 * USEC_PER_SEC);
	ck_assert_uint_eq(c->pools[0].memory_max, 512ULL << 20);
	ck_assert_uint_eq(c->pools[0].kill_grace, USEC_PER_SEC);
	ck_assert_int_eq(c->pools[0].on_pool_failure, POOL_FAILURE_STOP);
	ck_assert_uint_eq(c->n_groups, 1);
	ck_assert_str_eq(c->groups[0].name, "ledger");
	ck_assert_uint_eq(c->groups[0].line, 16);
	ck_assert_uint_eq(c->groups[0].pool, 0);
	ck_assert_str_eq(c->groups[0].run, "builtin:balance");
	ck_assert_str_eq(c->groups[0].args, "iterations=100000 amount=5");
	ck_assert_uint_eq(c->groups[0].count, 100);
	ck_assert_uint_eq(c->groups[0].timeout, 30 * USEC_PER_SEC);
	ck_assert_uint_eq(c->groups[0].max_attempts, 3);
	ck_assert_int_eq(c->groups[0].expect, JOB_DONE);
	ck_assert_uint_eq(c->total_jobs, 100);
	assert_roundtrip(c);
	config_free(c);
}
END_TEST

START_TEST(test_defaults_and_implicit_pool)
{
	struct config *c = load_ok(MINIMAL_JOB);

	ck_assert_str_eq(c->supervisor.control_socket, "");
	ck_assert_str_eq(c->supervisor.control_group, "bulkhead");
	ck_assert_str_eq(c->supervisor.node, "");
	ck_assert_int_eq(c->supervisor.log_level, LOG_LEVEL_INFO);
	ck_assert_uint_eq(c->supervisor.drain_timeout, 10 * USEC_PER_SEC);

	ck_assert_uint_eq(c->n_pools, 1);
	ck_assert_str_eq(c->pools[0].name, "main");
	ck_assert_uint_eq(c->pools[0].line, 0);
	ck_assert_uint_eq(c->pools[0].workers, 2);
	ck_assert_uint_eq(c->pools[0].threads, 4);
	ck_assert_uint_eq(c->pools[0].backoff_min, 10 * USEC_PER_MSEC);
	ck_assert_uint_eq(c->pools[0].backoff_max, 5 * USEC_PER_SEC);
	ck_assert_uint_eq(c->pools[0].min_uptime, USEC_PER_SEC);
	ck_assert_uint_eq(c->pools[0].max_worker_faults.count, 10);
	ck_assert_uint_eq(c->pools[0].max_worker_faults.window, 60 * USEC_PER_SEC);
	ck_assert_uint_eq(c->pools[0].memory_max, UINT64_MAX);
	ck_assert_uint_eq(c->pools[0].kill_grace, USEC_PER_SEC);
	ck_assert_int_eq(c->pools[0].on_pool_failure, POOL_FAILURE_STOP);

	ck_assert_uint_eq(c->n_groups, 1);
	ck_assert_str_eq(c->groups[0].name, "a");
	ck_assert_uint_eq(c->groups[0].line, 1);
	ck_assert_uint_eq(c->groups[0].pool, 0);
	ck_assert_str_eq(c->groups[0].run, "builtin:noop");
	ck_assert_str_eq(c->groups[0].args, "");
	ck_assert_uint_eq(c->groups[0].count, 1);
	ck_assert_uint_eq(c->groups[0].timeout, 60 * USEC_PER_SEC);
	ck_assert_uint_eq(c->groups[0].max_attempts, 3);
	ck_assert_int_eq(c->groups[0].expect, JOB_DONE);
	ck_assert_uint_eq(c->total_jobs, 1);
	assert_roundtrip(c);
	config_free(c);

	/* A pool alone is a config too; a pool with no keys exists with every default. */
	c = load_ok("[pool solo]\n");
	ck_assert_uint_eq(c->n_pools, 1);
	ck_assert_str_eq(c->pools[0].name, "solo");
	ck_assert_uint_eq(c->pools[0].line, 1);
	ck_assert_uint_eq(c->pools[0].workers, 2);
	ck_assert_uint_eq(c->n_groups, 0);
	config_free(c);

	/* With any [pool], there is no implicit "main". */
	expect_only_error("[pool solo]\n" MINIMAL_JOB,
			  "demo.conf:2: [job a] pool = main (the default): no such pool");
}
END_TEST

START_TEST(test_values)
{
	struct config *c = load_ok("[supervisor]\n"
				   "control_socket = /tmp/x.sock\n"
				   "control_group = wheel\n"
				   "node = edge-7.example\n"
				   "store = postgresql:host=/run/postgresql dbname=bh\n"
				   "lease = 2s\n"
				   "log_level = debug\n"
				   "drain_timeout = infinity\n"
				   "[pool p1]\n"
				   "workers = 1024\n"
				   "threads = 1\n"
				   "backoff = 0..0\n"
				   "min_uptime = 0\n"
				   "max_worker_faults = 1/1.5s\n"
				   "memory_max = 16M\n"
				   "kill_grace = 250ms\n"
				   "on_pool_failure = exit\n"
				   "[pool p2]\n"
				   "backoff = 1s\n"
				   "[job j1]\n"
				   "pool = p2\n"
				   "run = builtin:exit\n"
				   "args = code=255\n"
				   "count = 1000000\n"
				   "timeout = infinity\n"
				   "max_attempts = 100\n"
				   "expect = crashed\n"
				   "[job j2]\n"
				   "pool = p1\n"
				   "run = builtin:hang\n"
				   "timeout = 1us\n"
				   "expect = timed_out\n"
				   "[job j3]\n"
				   "pool = p1\n"
				   "run = builtin:fail\n"
				   "expect = failed\n");

	ck_assert_str_eq(c->supervisor.control_socket, "/tmp/x.sock");
	ck_assert_str_eq(c->supervisor.control_group, "wheel");
	ck_assert_str_eq(c->supervisor.node, "edge-7.example");
	ck_assert_str_eq(c->supervisor.store, "postgresql:host=/run/postgresql dbname=bh");
	ck_assert_uint_eq(c->supervisor.lease, 2 * USEC_PER_SEC);
	ck_assert_int_eq(c->supervisor.log_level, LOG_LEVEL_DEBUG);
	ck_assert_uint_eq(c->supervisor.drain_timeout, USEC_INFINITY);
	ck_assert_uint_eq(c->n_pools, 2);
	ck_assert_uint_eq(c->pools[0].workers, 1024);
	ck_assert_uint_eq(c->pools[0].backoff_min, 0);
	ck_assert_uint_eq(c->pools[0].backoff_max, 0);
	ck_assert_uint_eq(c->pools[0].max_worker_faults.window, 1500 * USEC_PER_MSEC);
	ck_assert_uint_eq(c->pools[0].memory_max, 16ULL << 20);
	ck_assert_int_eq(c->pools[0].on_pool_failure, POOL_FAILURE_EXIT);
	ck_assert_uint_eq(c->pools[1].backoff_min, USEC_PER_SEC);
	ck_assert_uint_eq(c->pools[1].backoff_max, USEC_PER_SEC);
	ck_assert_uint_eq(c->n_groups, 3);
	ck_assert_uint_eq(c->groups[0].pool, 1);
	ck_assert_uint_eq(c->groups[0].timeout, USEC_INFINITY);
	ck_assert_int_eq(c->groups[0].expect, JOB_CRASHED);
	ck_assert_uint_eq(c->groups[1].pool, 0);
	ck_assert_uint_eq(c->groups[1].timeout, 1);
	ck_assert_int_eq(c->groups[1].expect, JOB_TIMED_OUT);
	ck_assert_int_eq(c->groups[2].expect, JOB_FAILED);
	ck_assert_uint_eq(c->total_jobs, 1000002);

	ck_assert_int_eq(config_find_pool(c, "p2"), 1);
	ck_assert_int_eq(config_find_pool(c, "p3"), -ENOENT);
	ck_assert_int_eq(config_find_pool(c, NULL), -ENOENT);
	assert_roundtrip(c);
	config_free(c);
}
END_TEST

START_TEST(test_file_errors)
{
	char dir[] = "/tmp/bulkhead-test-config.XXXXXX", path[512], missing[128];
	struct config *c = (struct config *)0x1;
	char *errors = NULL;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));

	/* Missing. */
	snprintf(missing, sizeof(missing), "%s/missing.conf", dir);
	ck_assert_int_eq(config_load(missing, &c, &errors), -ENOENT);
	ck_assert_ptr_null(c);
	snprintf(path, sizeof(path), "%s: cannot open: No such file or directory", missing);
	ck_assert_msg(has_line(errors, path), "%s", errors);
	free(errors);

	/* A directory. */
	c = (struct config *)0x1;
	ck_assert_int_eq(config_load(dir, &c, &errors), -EISDIR);
	ck_assert_ptr_null(c);
	snprintf(path, sizeof(path), "%s: cannot read: Is a directory", dir);
	ck_assert_msg(has_line(errors, path), "%s", errors);
	free(errors);

	/* A good file, read through config_load. */
	snprintf(path, sizeof(path), "%s/good.conf", dir);
	f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	fputs(MINIMAL_JOB, f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(config_load(path, &c, &errors), 0);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->path, path);
	config_free(c);

	/* Unreadable: root reads anything, so only testable as another user. */
	ck_assert_int_eq(chmod(path, 0), 0);
	if (geteuid() == 0) {
		fprintf(stderr, "test_file_errors: running as root, skipping the EACCES case\n");
	} else {
		char expect[600];

		c = (struct config *)0x1;
		ck_assert_int_eq(config_load(path, &c, &errors), -EACCES);
		ck_assert_ptr_null(c);
		snprintf(expect, sizeof(expect), "%s: cannot open: Permission denied", path);
		ck_assert_msg(has_line(errors, expect), "%s", errors);
		free(errors);
	}

	/* A bad file names the path as given. */
	f = fopen(missing, "we");
	ck_assert_ptr_nonnull(f);
	fputs("[pool main]\nthreads = abc\n", f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(config_load(missing, &c, &errors), -EINVAL);
	snprintf(path, sizeof(path), "%s:2: [pool main] threads = abc: expected an integer 1..256",
		 missing);
	ck_assert_msg(has_line(errors, path), "%s", errors);
	free(errors);

	/* ret_errors may be NULL. */
	ck_assert_int_eq(config_load(missing, &c, NULL), -EINVAL);
	ck_assert_ptr_null(c);

	unlink(missing);
	snprintf(path, sizeof(path), "%s/good.conf", dir);
	unlink(path);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* Writes a valid config of exactly `size` bytes (a job, then comment lines) to path. */
static void write_config_of_size(const char *path, size_t size)
{
	FILE *f = fopen(path, "we");
	size_t left = size - strlen(MINIMAL_JOB);
	char comment[1000];

	ck_assert_ptr_nonnull(f);
	fputs(MINIMAL_JOB, f);

	memset(comment, 'x', sizeof(comment));
	comment[0] = '#';
	while (left > 0) {
		size_t line = left > sizeof(comment) ? sizeof(comment) : left; /* with its '\n' */

		ck_assert_uint_eq(fwrite(comment, 1, line - 1, f), line - 1);
		fputc('\n', f);
		left -= line;
	}
	ck_assert_int_eq(fclose(f), 0);
	{
		struct stat st;

		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert_int_eq(st.st_size, (off_t)size);
	}
}

/*
 * Config files are read without ever waiting (DESIGN §11): a FIFO with no writer, a device
 * that never ends, a directory and a file over CONFIG_FILE_MAX are refused with a message
 * naming the path; a file of exactly CONFIG_FILE_MAX bytes is read. Without the bounds, the
 * FIFO blocks open() and /dev/zero never ends: the test times out.
 */
START_TEST(test_file_kinds)
{
	char dir[] = "/tmp/bulkhead-test-config.XXXXXX", path[512], expect[600];
	struct config *c = (struct config *)0x1;
	char *errors = NULL;

	ck_assert_ptr_nonnull(mkdtemp(dir));

	/* A FIFO nobody writes to: open() must not wait for a writer. */
	snprintf(path, sizeof(path), "%s/fifo.conf", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(config_load(path, &c, &errors), -EINVAL);
	ck_assert_ptr_null(c);
	snprintf(expect, sizeof(expect), "%s: not a regular file (a FIFO)", path);
	ck_assert_msg(has_line(errors, expect), "%s", errors);
	free(errors);
	unlink(path);

	/* Devices that never end. */
	c = (struct config *)0x1;
	ck_assert_int_eq(config_load("/dev/zero", &c, &errors), -EINVAL);
	ck_assert_ptr_null(c);
	ck_assert_msg(has_line(errors, "/dev/zero: not a regular file (a character device)"), "%s",
		      errors);
	free(errors);
	ck_assert_int_eq(config_load("/dev/urandom", &c, NULL), -EINVAL);
	ck_assert_ptr_null(c);

	/* A directory. */
	ck_assert_int_eq(config_load(dir, &c, &errors), -EISDIR);
	snprintf(expect, sizeof(expect), "%s: cannot read: Is a directory", dir);
	ck_assert_msg(has_line(errors, expect), "%s", errors);
	free(errors);

	/* Exactly at the limit: read and parsed. */
	snprintf(path, sizeof(path), "%s/big.conf", dir);
	write_config_of_size(path, CONFIG_FILE_MAX);
	ck_assert_int_eq(config_load(path, &c, &errors), 0);
	ck_assert_ptr_null(errors);
	ck_assert_uint_eq(c->n_groups, 1);
	config_free(c);

	/* One byte more: refused before it is read. */
	write_config_of_size(path, CONFIG_FILE_MAX + 1);
	c = (struct config *)0x1;
	ck_assert_int_eq(config_load(path, &c, &errors), -EFBIG);
	ck_assert_ptr_null(c);
	snprintf(expect, sizeof(expect), "%s: too large (%d bytes; at most 1 MiB)", path,
		 CONFIG_FILE_MAX + 1);
	ck_assert_msg(has_line(errors, expect), "%s", errors);
	free(errors);
	unlink(path);

	/* A regular file whose size says 0 (as in /proc) is still read to its end. */
	ck_assert_int_eq(config_load("/proc/self/status", &c, &errors), -EINVAL);
	ck_assert_msg(strstr(errors, "/proc/self/status:1: "), "%s", errors);
	free(errors);

	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_empty)
{
	expect_only_error("", "demo.conf: empty config: no [pool] or [job] sections");
	expect_only_error("# only\n; comments\n\n   \n",
			  "demo.conf: empty config: no [pool] or [job] sections");
	expect_only_error("[supervisor]\nlog_level = debug\n",
			  "demo.conf: empty config: no [pool] or [job] sections");
}
END_TEST

START_TEST(test_syntax_errors)
{
	expect_only_error("[pool main]\nworkers 3\n",
			  "demo.conf:2: syntax error: expected 'key = value', '[section]' or a "
			  "comment, got 'workers 3'");
	expect_only_error("[pool main\n" MINIMAL_JOB,
			  "demo.conf:1: syntax error: section header without ']'");
	expect_only_error("[pool main] workers = 3\n" MINIMAL_JOB,
			  "demo.conf:1: syntax error: text after the section header's ']'");
	expect_only_error("[pool main]\n= 3\n",
			  "demo.conf:2: syntax error: '=' without a key before it");
	expect_only_error("[pool main]\nwork:ers = 3\n",
			  "demo.conf:2: syntax error: bad key name 'work:ers'");
	expect_only_error("[]\n" MINIMAL_JOB,
			  "demo.conf:1: syntax error: empty section header (expected [supervisor], "
			  "[pool NAME] or [job NAME])");
	expect_only_error("[pool]\n" MINIMAL_JOB,
			  "demo.conf:1: [pool]: a name is required: [pool NAME]");
	expect_only_error("[pool a b]\n" MINIMAL_JOB,
			  "demo.conf:1: [pool a b]: bad name: expected 1..32 characters of A-Z a-z "
			  "0-9 _ . -");
	expect_only_error(
		"[job abcdefghijabcdefghijabcdefghijabc]\nrun = builtin:noop\n",
		"demo.conf:1: [job abcdefghijabcdefghijabcdefghijabc]: bad name: expected "
		"1..32 characters of A-Z a-z 0-9 _ . -");
	expect_only_error("[supervisor x]\n" MINIMAL_JOB,
			  "demo.conf:1: [supervisor x]: [supervisor] takes no name");
	/* Several bad lines: each is reported, in order. */
	{
		static const char text[] = "[pool main]\nfoo\nbar\n" MINIMAL_JOB "baz\n";
		char *errors =
			expect_error_len(text, strlen(text),
					 "demo.conf:2: syntax error: expected 'key = value', "
					 "'[section]' or a comment, got 'foo'");

		ck_assert(has_line(errors, "demo.conf:3: syntax error: expected 'key = value', "
					   "'[section]' or a comment, got 'bar'"));
		ck_assert(has_line(errors, "demo.conf:6: syntax error: expected 'key = value', "
					   "'[section]' or a comment, got 'baz'"));
		ck_assert_uint_eq(count_lines(errors), 3);
		ck_assert(strstr(errors, ":2:") < strstr(errors, ":3:"));
		ck_assert(strstr(errors, ":3:") < strstr(errors, ":6:"));
		free(errors);
	}
	/* Names may use A-Z a-z 0-9 _ . - */
	config_free(load_ok("[pool A-z_0.9]\n[job x.y-Z_1]\npool = A-z_0.9\nrun = builtin:noop\n"));
}
END_TEST

START_TEST(test_unknown_section)
{
	expect_only_error("[jbo x]\n" MINIMAL_JOB,
			  "demo.conf:1: unknown section [jbo x] (did you mean 'job'?)");
	expect_only_error("[pools main]\n" MINIMAL_JOB,
			  "demo.conf:1: unknown section [pools main] (did you mean 'pool'?)");
	expect_only_error("[supervisr]\n" MINIMAL_JOB,
			  "demo.conf:1: unknown section [supervisr] (did you mean 'supervisor'?)");
	expect_only_error(
		"[global]\n" MINIMAL_JOB,
		"demo.conf:1: unknown section [global] (expected [supervisor], [pool NAME] "
		"or [job NAME])");
	/* The keys of an unknown section are not reported again. */
	expect_only_error("[jbo x]\nfoo = 1\nrun = builtin:noop\n" MINIMAL_JOB,
			  "demo.conf:1: unknown section [jbo x] (did you mean 'job'?)");
}
END_TEST

START_TEST(test_unknown_key)
{
	expect_only_error(
		"[pool main]\nthread = 4\n",
		"demo.conf:2: [pool main] unknown key 'thread' (did you mean 'threads'?)");
	expect_only_error("[supervisor]\nlog_levle = info\n" MINIMAL_JOB,
			  "demo.conf:2: [supervisor] unknown key 'log_levle' (did you mean "
			  "'log_level'?)");
	expect_only_error(MINIMAL_JOB "arg = x=1\n",
			  "demo.conf:3: [job a] unknown key 'arg' (did you mean 'args'?)");
	expect_only_error("[supervisor]\nworkers = 4\n" MINIMAL_JOB,
			  "demo.conf:2: [supervisor] unknown key 'workers' (it belongs in a [pool "
			  "NAME] section)");
	expect_only_error("[pool main]\nlog_level = debug\n",
			  "demo.conf:2: [pool main] unknown key 'log_level' (it belongs in a "
			  "[supervisor] section)");
	expect_only_error("[pool main]\ncolour = blue\n",
			  "demo.conf:2: [pool main] unknown key 'colour'");
	/* Keys are case-sensitive. */
	expect_only_error(
		"[pool main]\nWorkers = 4\n",
		"demo.conf:2: [pool main] unknown key 'Workers' (did you mean 'workers'?)");
}
END_TEST

START_TEST(test_wrong_values)
{
	expect_only_error("[pool main]\nthreads = abc\n",
			  "demo.conf:2: [pool main] threads = abc: expected an integer 1..256");
	expect_only_error("[pool main]\nthreads = 257\n",
			  "demo.conf:2: [pool main] threads = 257: expected an integer 1..256");
	expect_only_error("[pool main]\nworkers = 0\n",
			  "demo.conf:2: [pool main] workers = 0: expected an integer 1..1024");
	expect_only_error("[pool main]\nworkers = -1\n",
			  "demo.conf:2: [pool main] workers = -1: expected an integer 1..1024");
	expect_only_error("[pool main]\nworkers = 1025\n",
			  "demo.conf:2: [pool main] workers = 1025: expected an integer 1..1024");
	expect_only_error("[pool main]\nworkers =\n",
			  "demo.conf:2: [pool main] workers = : expected an integer 1..1024");
	expect_only_error("[pool main]\nbackoff = 5s..10ms\n",
			  "demo.conf:2: [pool main] backoff = 5s..10ms: expected LO..HI, two "
			  "durations 0..1h with LO <= HI, e.g. 10ms..5s");
	expect_only_error("[pool main]\nbackoff = 1s..2h\n",
			  "demo.conf:2: [pool main] backoff = 1s..2h: expected LO..HI, two "
			  "durations 0..1h with LO <= HI, e.g. 10ms..5s");
	expect_only_error(
		"[pool main]\nmin_uptime = 10\n",
		"demo.conf:2: [pool main] min_uptime = 10: expected a duration 0..1h (units "
		"us, ms, s, min, h)");
	expect_only_error(
		"[pool main]\nkill_grace = infinity\n",
		"demo.conf:2: [pool main] kill_grace = infinity: expected a duration 0..1h "
		"(units us, ms, s, min, h)");
	expect_only_error("[pool main]\nmax_worker_faults = 0/60s\n",
			  "demo.conf:2: [pool main] max_worker_faults = 0/60s: expected "
			  "COUNT/DURATION with COUNT 1..1024 and a duration > 0, e.g. 10/60s");
	expect_only_error("[pool main]\nmax_worker_faults = 2000/60s\n",
			  "demo.conf:2: [pool main] max_worker_faults = 2000/60s: expected "
			  "COUNT/DURATION with COUNT 1..1024 and a duration > 0, e.g. 10/60s");
	expect_only_error("[pool main]\nmemory_max = 1M\n",
			  "demo.conf:2: [pool main] memory_max = 1M: expected a size 16M..infinity "
			  "(K, M, G, T: base 1024)");
	expect_only_error(
		"[pool main]\nmemory_max = lots\n",
		"demo.conf:2: [pool main] memory_max = lots: expected a size 16M..infinity "
		"(K, M, G, T: base 1024)");
	expect_only_error(
		"[pool main]\non_pool_failure = restart\n",
		"demo.conf:2: [pool main] on_pool_failure = restart: expected one of stop, "
		"exit");
	expect_only_error("[pool main]\non_pool_failure = exti\n",
			  "demo.conf:2: [pool main] on_pool_failure = exti: expected one of stop, "
			  "exit (did you mean 'exit'?)");
	expect_only_error("[supervisor]\nlog_level = verbose\n" MINIMAL_JOB,
			  "demo.conf:2: [supervisor] log_level = verbose: expected one of debug, "
			  "info, notice, warning, err");
	expect_only_error(
		"[supervisor]\nlog_level = errr\n" MINIMAL_JOB,
		"demo.conf:2: [supervisor] log_level = errr: expected one of debug, info, "
		"notice, warning, err (did you mean 'err'?)");
	expect_only_error("[supervisor]\ndrain_timeout = 5\n" MINIMAL_JOB,
			  "demo.conf:2: [supervisor] drain_timeout = 5: expected a duration "
			  "0..infinity (units us, ms, s, min, h)");
	expect_only_error("[supervisor]\ncontrol_socket = run/x.sock\n" MINIMAL_JOB,
			  "demo.conf:2: [supervisor] control_socket = run/x.sock: expected an "
			  "absolute path of at most 107 bytes (or nothing)");
	expect_only_error("[supervisor]\ncontrol_group =\n" MINIMAL_JOB,
			  "demo.conf:2: [supervisor] control_group = : expected 1..32 characters");
	expect_only_error("[supervisor]\ncontrol_group = a b\n" MINIMAL_JOB,
			  "demo.conf:2: [supervisor] control_group = a b: no whitespace allowed");
	expect_only_error("[supervisor]\nstore = sqlite:relative.db\n" MINIMAL_JOB,
			  "demo.conf:2: [supervisor] store = sqlite:relative.db: expected "
			  "sqlite:/ABSOLUTE/PATH (at most 4000 bytes), postgresql:CONNINFO or memory");
	expect_only_error("[supervisor]\nstore = postgresql:\n" MINIMAL_JOB,
			  "demo.conf:2: [supervisor] store = postgresql:: expected "
			  "postgresql:CONNINFO (a libpq connection string or URI, e.g. "
			  "postgresql:host=/run/postgresql dbname=bulkhead)");
	expect_only_error("[supervisor]\nlease = 100ms\n" MINIMAL_JOB,
			  "demo.conf:2: [supervisor] lease = 100ms: expected a duration 300ms..1h "
			  "(units us, ms, s, min, h)");
	expect_only_error("[supervisor]\nnode = web 1\n" MINIMAL_JOB,
			  "demo.conf:2: [supervisor] node = web 1: no whitespace allowed");
	expect_only_error("[supervisor]\nnode = "
			  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" MINIMAL_JOB,
			  "demo.conf:2: [supervisor] node = "
			  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...: expected "
			  "0..64 characters");
	expect_only_error(MINIMAL_JOB "timeout = 0\n",
			  "demo.conf:3: [job a] timeout = 0: expected a duration > 0 or infinity "
			  "(units us, ms, s, min, h)");
	expect_only_error(MINIMAL_JOB "count = 0\n",
			  "demo.conf:3: [job a] count = 0: expected an integer 1..1000000");
	expect_only_error(MINIMAL_JOB "count = 1000001\n",
			  "demo.conf:3: [job a] count = 1000001: expected an integer 1..1000000");
	expect_only_error(MINIMAL_JOB "max_attempts = 101\n",
			  "demo.conf:3: [job a] max_attempts = 101: expected an integer 1..100");
	expect_only_error(MINIMAL_JOB "expect = cancelled\n",
			  "demo.conf:3: [job a] expect = cancelled: expected one of done, failed, "
			  "crashed, timed_out");
	expect_only_error(MINIMAL_JOB "expect = crashd\n",
			  "demo.conf:3: [job a] expect = crashd: expected one of done, failed, "
			  "crashed, timed_out (did you mean 'crashed'?)");
}
END_TEST

START_TEST(test_duplicates)
{
	expect_only_error("# c\n\n\n\n\n\n[pool main]\nthreads = 4\nthreads = 8\n",
			  "demo.conf:9: [pool main] duplicate key 'threads' (first set on line 8)");
	expect_only_error("[pool main]\nworkers = 1\n[job a]\nrun = builtin:noop\n[pool main]\n",
			  "demo.conf:5: duplicate section [pool main] (first on line 1)");
	expect_only_error(MINIMAL_JOB "[job a]\nrun = builtin:noop\n",
			  "demo.conf:3: duplicate section [job a] (first on line 1)");
	expect_only_error("[supervisor]\n[supervisor]\n" MINIMAL_JOB,
			  "demo.conf:2: duplicate section [supervisor] (first on line 1)");
	/* A pool and a job may share a name. */
	config_free(load_ok("[pool a]\n[job a]\npool = a\nrun = builtin:noop\n"));
}
END_TEST

START_TEST(test_outside_section)
{
	expect_only_error("workers = 3\n[pool main]\n",
			  "demo.conf:1: key 'workers' outside any section (put it under "
			  "[supervisor], [pool NAME] or [job NAME])");
}
END_TEST

START_TEST(test_missing_pool)
{
	expect_only_error("# 1\n[pool main]\n" MINIMAL_JOB "pool = mian\n",
			  "demo.conf:5: [job a] pool = mian: no such pool (did you mean 'main'?)");
	expect_only_error("[pool main]\n" MINIMAL_JOB "pool = elsewhere\n",
			  "demo.conf:4: [job a] pool = elsewhere: no such pool");
	/* Without [pool] sections the implicit pool is "main" and only "main". */
	expect_only_error(MINIMAL_JOB "pool = solo\n",
			  "demo.conf:3: [job a] pool = solo: no such pool");
}
END_TEST

START_TEST(test_missing_run)
{
	expect_only_error("[pool main]\n\n[job a]\ncount = 3\n",
			  "demo.conf:3: [job a] missing required key 'run'");
}
END_TEST

/* ---- run kinds, inputs, spool, output: a private directory as the config's directory ---- */

static char test_dir[64];

/* Makes a private directory, and makes it the current one: "demo.conf" lives there. */
static void enter_test_dir(void)
{
	str_printf(test_dir, sizeof(test_dir), "/tmp/bulkhead-test-config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(test_dir));
	ck_assert_int_eq(chdir(test_dir), 0);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void leave_test_dir(void)
{
	ck_assert_int_eq(chdir("/"), 0);
	ck_assert_int_eq(nftw(test_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "we");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
}

/* "demo.conf:LINE: [job a] " + rest, with @DIR@ in rest replaced by the test directory. */
static void expect_job_error(const char *text, unsigned line, const char *rest)
{
	char expect[1024];
	const char *at = strstr(rest, "@DIR@");

	if (at)
		snprintf(expect, sizeof(expect), "demo.conf:%u: [job a] %.*s%s%s", line,
			 (int)(at - rest), rest, test_dir, at + 5);
	else
		snprintf(expect, sizeof(expect), "demo.conf:%u: [job a] %s", line, rest);
	expect_only_error(text, expect);
}

START_TEST(test_run_kinds)
{
	struct config *c;

	expect_only_error("[job a]\nrun = /bin/true\n",
			  "demo.conf:2: [job a] run = /bin/true: expected builtin:NAME, "
			  "plugin:PATH:SYMBOL or exec:COMMAND ARGS...");
	expect_only_error("[job a]\nrun = builtin:sgev\n",
			  "demo.conf:2: [job a] run = builtin:sgev: no such builtin (did you mean "
			  "'builtin:segv'?)");
	expect_only_error("[job a]\nrun = builtin:frobnicate\n",
			  "demo.conf:2: [job a] run = builtin:frobnicate: no such builtin");
	expect_only_error("[job a]\nrun = builtin:\n",
			  "demo.conf:2: [job a] run = builtin:: no such builtin");
	/* Every builtin is accepted. */
	for (int i = 0; i < _BH_BUILTIN_MAX; i++) {
		char text[128];

		snprintf(text, sizeof(text), "[job a]\nrun = builtin:%s\n",
			 bh_builtin_table[i].name);
		c = load_ok(text);
		ck_assert_int_eq(c->groups[0].kind, JOB_KIND_BUILTIN);
		config_free(c);
	}
	/* Where the run key is: errors about what it runs (the plugin probe) point there. */
	c = load_ok("[job a]\ncount = 2\n\nrun = builtin:noop\n");
	ck_assert_uint_eq(c->groups[0].line, 1);
	ck_assert_uint_eq(c->groups[0].run_line, 4);
	config_free(c);
	/* Every string of a loaded group is set. */
	c = load_ok(MINIMAL_JOB);
	ck_assert_str_eq(c->groups[0].inputs, "");
	ck_assert_str_eq(c->groups[0].spool, "");
	ck_assert_str_eq(c->groups[0].output, "");
	ck_assert_uint_eq(c->groups[0].n_inputs, 0);
	ck_assert_uint_eq(c->groups[0].count, 1);
	config_free(c);
}
END_TEST

START_TEST(test_plugin)
{
	struct config *c;
	char want[256];

	enter_test_dir();
	/* An absolute PATH is kept; the file's existence is the probe's business. */
	c = load_ok("[job a]\nrun = plugin:/usr/lib/x.so:my_job\nargs = level=9 in.put=a=b\n");
	ck_assert_int_eq(c->groups[0].kind, JOB_KIND_PLUGIN);
	ck_assert_str_eq(c->groups[0].run, "plugin:/usr/lib/x.so:my_job");
	ck_assert_str_eq(c->groups[0].args, "level=9 in.put=a=b");
	assert_roundtrip(c);
	config_free(c);

	/* A relative PATH is relative to the config's directory. */
	c = load_ok("[job a]\nrun = plugin:./plugins/x.so:_f1\n");
	snprintf(want, sizeof(want), "plugin:%s/plugins/x.so:_f1", test_dir);
	ck_assert_str_eq(c->groups[0].run, want);
	assert_roundtrip(c);
	config_free(c);
	c = load_ok("[job a]\nrun = plugin:x.so:f\n");
	snprintf(want, sizeof(want), "plugin:%s/x.so:f", test_dir);
	ck_assert_str_eq(c->groups[0].run, want);
	config_free(c);
	/* The directory is made canonical when it exists; the file name stays. */
	ck_assert_int_eq(mkdir("sub", 0755), 0);
	c = load_ok("[job a]\nrun = plugin:sub/../sub/./x.so:f\n");
	snprintf(want, sizeof(want), "plugin:%s/sub/x.so:f", test_dir);
	ck_assert_str_eq(c->groups[0].run, want);
	config_free(c);
	c = load_ok("[job a]\nrun = plugin:nodir/../x.so:f\n");
	snprintf(want, sizeof(want), "plugin:%s/nodir/../x.so:f", test_dir);
	ck_assert_str_eq(c->groups[0].run, want);
	config_free(c);
	/* A ':' in PATH: SYMBOL is after the last one. */
	c = load_ok("[job a]\nrun = plugin:/opt/a:b/x.so:f\n");
	ck_assert_str_eq(c->groups[0].run, "plugin:/opt/a:b/x.so:f");
	config_free(c);

	expect_job_error("[job a]\nrun = plugin:/x.so\n", 2,
			 "run = plugin:/x.so: expected plugin:PATH:SYMBOL (no ':' before SYMBOL)");
	expect_job_error("[job a]\nrun = plugin:\n", 2,
			 "run = plugin:: expected plugin:PATH:SYMBOL (no ':' before SYMBOL)");
	expect_job_error("[job a]\nrun = plugin::f\n", 2,
			 "run = plugin::f: empty PATH: expected plugin:PATH:SYMBOL");
	expect_job_error("[job a]\nrun = plugin:/x.so:\n", 2,
			 "run = plugin:/x.so:: empty SYMBOL: expected plugin:PATH:SYMBOL");
	expect_job_error("[job a]\nrun = plugin:/x.so:my-job\n", 2,
			 "run = plugin:/x.so:my-job: SYMBOL 'my-job' is not a C identifier (A-Z "
			 "a-z 0-9 _, not starting with a digit, at most 255 characters)");
	expect_job_error("[job a]\nrun = plugin:/x.so:1f\n", 2,
			 "run = plugin:/x.so:1f: SYMBOL '1f' is not a C identifier (A-Z a-z 0-9 "
			 "_, not starting with a digit, at most 255 characters)");
	/* args are free KEY=VALUE words, not a builtin's. */
	expect_job_error("[job a]\nrun = plugin:/x.so:f\nargs = level\n", 3,
			 "args = level: argument 'level': expected key=value");
	expect_job_error("[job a]\nrun = plugin:/x.so:f\nargs = a=1 b=2 a=3\n", 3,
			 "args = a=1 b=2 a=3: argument 'a' given twice");
	expect_job_error("[job a]\nrun = plugin:/x.so:f\nargs = a/b=1\n", 3,
			 "args = a/b=1: argument 'a/b=1': the key must be 1..64 characters of "
			 "A-Z a-z 0-9 _ . -");
	expect_job_error("[job a]\nrun = plugin:/x.so:f\nargs = =1\n", 3,
			 "args = =1: argument '=1': expected key=value");
	leave_test_dir();
}
END_TEST

START_TEST(test_exec)
{
	struct config *c;

	enter_test_dir();
	write_file("tool", "#!/bin/sh\nexit 0\n", 0755);
	write_file("data", "x\n", 0644);
	write_file("in1", "1\n", 0644);

	c = load_ok("[job a]\nrun = exec:/bin/sh -c 'exit {arg:code}' sh {id} {name} {{x}}\n"
		    "args = code=3\n");
	ck_assert_int_eq(c->groups[0].kind, JOB_KIND_EXEC);
	ck_assert_str_eq(c->groups[0].run,
			 "exec:/bin/sh -c 'exit {arg:code}' sh {id} {name} {{x}}");
	assert_roundtrip(c);
	config_free(c);
	/* A name is looked up in PATH; {input} needs inputs or spool. */
	c = load_ok("[job a]\nrun = exec:gzip -t {input}\ninputs = in*\n");
	ck_assert_int_eq(c->groups[0].kind, JOB_KIND_EXEC);
	ck_assert_uint_eq(c->groups[0].count, 1);
	config_free(c);
	c = load_ok("[job a]\nrun = exec:cat {arg:input}\nargs = input=/etc/hostname\n");
	config_free(c);
	c = load_ok("[job a]\nrun = exec:\"/bin/sh\" -c \"echo \\\"{input}\\\"\"\nspool = .\n");
	ck_assert_uint_eq(c->groups[0].count, 0);
	config_free(c);

	expect_job_error("[job a]\nrun = exec:\n", 2,
			 "run = exec:: no command: expected exec:COMMAND ARGS...");
	expect_job_error("[job a]\nrun = exec:   \n", 2,
			 "run = exec:: no command: expected exec:COMMAND ARGS...");
	expect_job_error("[job a]\nrun = exec:sh -c 'exit 1\n", 2,
			 "run = exec:sh -c 'exit 1: unterminated ' quote: expected exec:COMMAND "
			 "ARGS...");
	expect_job_error("[job a]\nrun = exec:echo {inputs}\n", 2,
			 "run = exec:echo {inputs}: unknown placeholder {inputs} (expected "
			 "{input}, {id}, {name} or {arg:KEY}; {{ and }} for literal braces)");
	expect_job_error("[job a]\nrun = exec:echo {input\n", 2,
			 "run = exec:echo {input: unterminated placeholder '{' (write {{ for a "
			 "literal one)");
	expect_job_error("[job a]\nrun = exec:echo {input}\n", 2,
			 "run = exec:echo {input}: no value for {input}: the group has no inputs "
			 "or spool");
	expect_job_error("[job a]\nrun = exec:echo {arg:level}\nargs = leve=1\n", 2,
			 "run = exec:echo {arg:level}: no value for {arg:level}: args has no such "
			 "key");
	expect_job_error("[job a]\nrun = exec:{arg:tool} x\nargs = tool=/bin/true\n", 2,
			 "run = exec:{arg:tool} x: COMMAND cannot contain placeholders (it is "
			 "checked at load)");
	expect_job_error("[job a]\nrun = exec:./tool\n", 2,
			 "run = exec:./tool: COMMAND './tool' must be an absolute path or a name "
			 "found in PATH");
	expect_job_error("[job a]\nrun = exec:/nonexistent/tool -x\n", 2,
			 "run = exec:/nonexistent/tool -x: COMMAND /nonexistent/tool: No such "
			 "file or directory");
	expect_job_error("[job a]\nrun = exec:/etc/passwd\n", 2,
			 "run = exec:/etc/passwd: COMMAND /etc/passwd: not executable (Permission "
			 "denied)");
	expect_job_error("[job a]\nrun = exec:/tmp\n", 2,
			 "run = exec:/tmp: COMMAND /tmp: not a regular file");
	expect_job_error("[job a]\nrun = exec:no-such-command-here {id}\n", 2,
			 "run = exec:no-such-command-here {id}: COMMAND 'no-such-command-here' "
			 "not found in PATH");
	/* PATH is the loader's. */
	{
		char path[128];

		snprintf(path, sizeof(path), "/nonexistent:%s", test_dir);
		ck_assert_int_eq(setenv("PATH", path, 1), 0);
		config_free(load_ok("[job a]\nrun = exec:tool\n"));
		/* Not executable: skipped in PATH. */
		expect_job_error("[job a]\nrun = exec:data\n", 2,
				 "run = exec:data: COMMAND 'data' not found in PATH");
	}
	leave_test_dir();
}
END_TEST

START_TEST(test_inputs)
{
	struct config *c;
	char want[256];

	enter_test_dir();
	ck_assert_int_eq(mkdir("in", 0755), 0);
	ck_assert_int_eq(mkdir("in/dir.gz", 0755), 0);
	write_file("in/b.gz", "b", 0644);
	write_file("in/a.gz", "a", 0644);
	write_file("in/c.gz", "c", 0644);
	write_file("in/c.txt", "c", 0644);
	write_file("in/.hidden.gz", "h", 0644);
	ck_assert_int_eq(symlink("a.gz", "in/link.gz"), 0);
	ck_assert_int_eq(symlink("missing", "in/dangling.gz"), 0);

	/* Relative to the config's directory; regular files (also through links), sorted. */
	c = load_ok("[job a]\nrun = plugin:x.so:f\ninputs = in/*.gz\n");
	snprintf(want, sizeof(want), "%s/in/*.gz", test_dir);
	ck_assert_str_eq(c->groups[0].inputs, want);
	ck_assert_uint_eq(c->groups[0].n_inputs, 4);
	ck_assert_uint_eq(c->groups[0].count, 4);
	ck_assert_uint_eq(c->total_jobs, 4);
	{
		static const char *const names[] = { "a.gz", "b.gz", "c.gz", "link.gz" };

		for (unsigned i = 0; i < 4; i++) {
			snprintf(want, sizeof(want), "%s/in/%s", test_dir, names[i]);
			ck_assert_str_eq(c->groups[0].input_paths[i], want);
		}
	}
	assert_roundtrip(c);
	config_free(c);

	/* Braces; an absolute pattern; builtins take inputs too; total_jobs adds up. */
	snprintf(want, sizeof(want),
		 "[job a]\nrun = builtin:noop\ninputs = %s/in/{a,c}.*\n[job b]\nrun = "
		 "builtin:noop\ncount = 5\n",
		 test_dir);
	c = load_ok(want);
	ck_assert_uint_eq(c->groups[0].n_inputs, 3);
	ck_assert_uint_eq(c->total_jobs, 8);
	assert_roundtrip(c);
	config_free(c);

	expect_job_error("[job a]\nrun = builtin:noop\ninputs = in/*.xz\n", 3,
			 "inputs = in/*.xz: no file matches @DIR@/in/*.xz");
	expect_job_error("[job a]\nrun = builtin:noop\ninputs = in/dir*\n", 3,
			 "inputs = in/dir*: no regular file matches @DIR@/in/dir* (only "
			 "directories or other files do)");
	expect_job_error("[job a]\nrun = builtin:noop\ninputs = in/*.gz\ncount = 3\n", 4,
			 "count = 3: cannot be set together with inputs (count is the number of "
			 "matching files)");
	expect_job_error("[job a]\nrun = plugin:/x.so:f\ninputs = in/*.gz\nargs = input=/x\n", 4,
			 "args = input=/x: argument 'input' is set for each job by inputs: leave "
			 "it out");
	/* "inputs =" is none: count applies. */
	c = load_ok("[job a]\nrun = builtin:noop\ninputs =\ncount = 3\n");
	ck_assert_uint_eq(c->groups[0].count, 3);
	ck_assert_uint_eq(c->groups[0].n_inputs, 0);
	ck_assert_ptr_null(c->groups[0].input_paths);
	config_free(c);
	leave_test_dir();
}
END_TEST

START_TEST(test_inputs_many)
{
	char name[64], *text;
	struct config *c;

	enter_test_dir();
	ck_assert_int_eq(mkdir("in", 0755), 0);
	for (int i = 0; i < 1200; i++) {
		snprintf(name, sizeof(name), "in/f%04d", 1199 - i);
		write_file(name, "", 0644);
	}
	c = load_ok("[job a]\nrun = builtin:noop\ninputs = in/f*\n");
	ck_assert_uint_eq(c->groups[0].count, 1200);
	for (unsigned i = 0; i < 1200; i++) {
		snprintf(name, sizeof(name), "/in/f%04u", i);
		ck_assert_ptr_nonnull(strstr(c->groups[0].input_paths[i], name));
	}
	ck_assert_ptr_null(c->groups[0].input_paths[1200]);
	config_free(c);

	/* The files count towards CONFIG_JOBS_MAX, blamed on inputs. */
	ck_assert_int_ne(asprintf(&text,
				  "[job big]\nrun = builtin:noop\ncount = %d\n[job a]\nrun = "
				  "builtin:noop\ninputs = in/f*\n",
				  1000000),
			 -1);
	c = load_ok(text);
	config_free(c);
	free(text);
	{
		FILE *f;
		size_t size = 0;

		f = open_memstream(&text, &size);
		for (int i = 0; i < 10; i++)
			fprintf(f, "[job j%d]\nrun = builtin:noop\ncount = 1000000\n", i);
		fputs("[job a]\nrun = builtin:noop\ninputs = in/f*\n", f);
		fclose(f);
		expect_job_error(text, 33,
				 "inputs = in/f*: too many jobs in all (1200 files make 10001200 "
				 "jobs, at most 10000000)");
		free(text);
	}
	leave_test_dir();
}
END_TEST

START_TEST(test_spool)
{
	struct config *c;
	char want[256];

	enter_test_dir();
	ck_assert_int_eq(mkdir("spool", 0755), 0);
	write_file("file", "", 0644);
	c = load_ok("[job a]\nrun = plugin:/x.so:f\nspool = spool\n");
	snprintf(want, sizeof(want), "%s/spool", test_dir);
	ck_assert_str_eq(c->groups[0].spool, want);
	ck_assert_uint_eq(c->groups[0].count, 0);
	ck_assert_uint_eq(c->total_jobs, 0);
	assert_roundtrip(c);
	config_free(c);
	c = load_ok("[job a]\nrun = builtin:noop\nspool = ./spool/\n");
	snprintf(want, sizeof(want), "%s/spool/", test_dir);
	ck_assert_str_eq(c->groups[0].spool, want);
	config_free(c);

	expect_job_error("[job a]\nrun = builtin:noop\nspool = nope\n", 3,
			 "spool = nope: @DIR@/nope: No such file or directory");
	expect_job_error("[job a]\nrun = builtin:noop\nspool = file\n", 3,
			 "spool = file: @DIR@/file: not a directory");
	expect_job_error("[job a]\nrun = builtin:noop\nspool = /nonexistent/spool\n", 3,
			 "spool = /nonexistent/spool: /nonexistent/spool: No such file or "
			 "directory");
	expect_job_error("[job a]\nrun = builtin:noop\nspool = spool\ncount = 2\n", 4,
			 "count = 2: cannot be set together with spool (a spool makes one job per "
			 "file)");
	expect_job_error("[job a]\nrun = builtin:noop\ninputs = file\nspool = spool\n", 3,
			 "inputs = file: cannot be set together with spool (choose one)");
	expect_only_error("[supervisor]\nstore = postgresql:dbname=x\n[job a]\nrun = builtin:noop\n"
			  "spool = spool\n",
			  "demo.conf:5: [job a] spool = spool: a spool is on one host: not with "
			  "store = postgresql: (submit its files with bulkhead submit --input)");
	expect_job_error("[job a]\nrun = exec:cat\nspool = spool\nargs = input=x\n", 4,
			 "args = input=x: argument 'input' is set for each job by spool: leave it "
			 "out");
	leave_test_dir();
}
END_TEST

START_TEST(test_output)
{
	struct config *c;
	char want[256];

	enter_test_dir();
	ck_assert_int_eq(mkdir("out", 0755), 0);
	write_file("file", "", 0644);
	c = load_ok("[job a]\nrun = exec:true\noutput = out\n");
	snprintf(want, sizeof(want), "%s/out", test_dir);
	ck_assert_str_eq(c->groups[0].output, want);
	assert_roundtrip(c);
	config_free(c);

	expect_job_error("[job a]\nrun = builtin:noop\noutput = out\n", 3,
			 "output = out: output is only for exec jobs (run = exec:...)");
	expect_job_error("[job a]\nrun = plugin:/x.so:f\noutput = out\n", 3,
			 "output = out: output is only for exec jobs (run = exec:...)");
	expect_job_error("[job a]\nrun = exec:true\noutput = missing\n", 3,
			 "output = missing: @DIR@/missing: No such file or directory");
	expect_job_error("[job a]\nrun = exec:true\noutput = file\n", 3,
			 "output = file: @DIR@/file: not a directory");
	leave_test_dir();
}
END_TEST

START_TEST(test_exec_settings)
{
	struct config *c;
	char want[256];

	enter_test_dir();
	ck_assert_int_eq(mkdir("wd", 0755), 0);
	write_file("file", "", 0644);
	c = load_ok("[job a]\nrun = exec:true\nenvironment = A=1 \"B=two words\"\n"
		    "  C='$x'\nworking_directory = wd\nsuccess_exit_status = 1 255  3\n"
		    "retry_delay = 1s..1min\nnice = -5\n[job b]\nrun = builtin:noop\n");
	ck_assert_str_eq(c->groups[0].environment, "A=1 \"B=two words\" C='$x'");
	snprintf(want, sizeof(want), "%s/wd", test_dir);
	ck_assert_str_eq(c->groups[0].working_directory, want);
	ck_assert(exit_set_has(c->groups[0].success_exit_status, 0));
	ck_assert(exit_set_has(c->groups[0].success_exit_status, 1));
	ck_assert(exit_set_has(c->groups[0].success_exit_status, 3));
	ck_assert(exit_set_has(c->groups[0].success_exit_status, 255));
	ck_assert(!exit_set_has(c->groups[0].success_exit_status, 2));
	ck_assert_int_eq(c->groups[0].nice, -5);
	ck_assert_uint_eq(c->groups[0].retry_delay_min, USEC_PER_SEC);
	ck_assert_uint_eq(c->groups[0].retry_delay_max, 60 * USEC_PER_SEC);
	/* The defaults, and retry_delay for any kind. */
	ck_assert_str_eq(c->groups[1].environment, "");
	ck_assert_str_eq(c->groups[1].working_directory, "");
	ck_assert(exit_set_has(c->groups[1].success_exit_status, 0));
	ck_assert(!exit_set_has(c->groups[1].success_exit_status, 1));
	ck_assert_int_eq(c->groups[1].nice, EXEC_NICE_INHERIT);
	ck_assert_uint_eq(c->groups[1].retry_delay_max, 0);
	assert_roundtrip(c);
	/* How the stores keep them: "" for the defaults, else lines that parse back. */
	{
		struct group_config back = { 0 };
		char *text = config_group_exec_format(&c->groups[1]), err[256];

		ck_assert_str_eq(text, "");
		free(text);
		text = config_group_exec_format(&c->groups[0]);
		ck_assert_int_eq(config_group_exec_parse(text, &back, err, sizeof(err)), 0);
		ck_assert(config_group_exec_equal(&back, &c->groups[0]));
		free(text);
		free(back.environment);
		free(back.working_directory);
		ck_assert_int_eq(config_group_exec_parse("", &back, err, sizeof(err)), 0);
		ck_assert(config_group_exec_equal(&back, &c->groups[1]));
		ck_assert_int_eq(config_group_exec_parse("nice = 99\n", &back, err, sizeof(err)),
				 -EINVAL);
		ck_assert_int_eq(config_group_exec_parse("run = x\n", &back, err, sizeof(err)),
				 -EINVAL);
	}
	config_free(c);
	config_free(load_ok("[job a]\nrun = builtin:fail\nretry_delay = 10ms\n"));

	expect_job_error("[job a]\nrun = exec:true\nenvironment = A=1 B\n", 3,
			 "environment = A=1 B: 'B' is not NAME=VALUE (NAME: A-Z a-z 0-9 _, not "
			 "starting with a digit)");
	expect_job_error("[job a]\nrun = exec:true\nenvironment = 1A=x\n", 3,
			 "environment = 1A=x: '1A=x' is not NAME=VALUE (NAME: A-Z a-z 0-9 _, not "
			 "starting with a digit)");
	expect_job_error("[job a]\nrun = exec:true\nenvironment = \"A=1\n", 3,
			 "environment = \"A=1: unterminated \" quote");
	expect_job_error("[job a]\nrun = exec:true\nsuccess_exit_status = 1 256\n", 3,
			 "success_exit_status = 1 256: expected exit codes 0..255 separated by "
			 "blanks, e.g. 0 1");
	expect_job_error("[job a]\nrun = exec:true\nsuccess_exit_status = -1\n", 3,
			 "success_exit_status = -1: expected exit codes 0..255 separated by "
			 "blanks, e.g. 0 1");
	expect_job_error("[job a]\nrun = exec:true\nnice = 20\n", 3,
			 "nice = 20: expected an integer -20..19 (or nothing: the worker's)");
	expect_job_error("[job a]\nrun = exec:true\nnice = low\n", 3,
			 "nice = low: expected an integer -20..19 (or nothing: the worker's)");
	expect_job_error("[job a]\nrun = exec:true\nretry_delay = 5s..1s\n", 3,
			 "retry_delay = 5s..1s: expected LO..HI, two durations 0..1h with LO <= HI, "
			 "e.g. 10ms..5s");
	expect_only_error("[supervisor]\nstore = postgresql:dbname=x\n[job a]\nrun = builtin:noop\n"
			  "retry_delay = 1s\n",
			  "demo.conf:5: [job a] retry_delay = 1s: not with store = postgresql: yet (a "
			  "job re-queued there goes back to the shared queue, where any node may "
			  "claim it at once)");
	expect_job_error("[job a]\nrun = exec:true\nworking_directory = missing\n", 3,
			 "working_directory = missing: @DIR@/missing: No such file or directory");
	expect_job_error("[job a]\nrun = exec:true\nworking_directory = file\n", 3,
			 "working_directory = file: @DIR@/file: not a directory");
	expect_job_error("[job a]\nrun = builtin:noop\nsuccess_exit_status = 1\n", 3,
			 "success_exit_status = 1: success_exit_status is only for exec jobs (run = "
			 "exec:...): a builtin job shares its worker's process with the worker's "
			 "other jobs");
	expect_job_error("[job a]\nrun = plugin:/x.so:f\nnice = 5\n", 3,
			 "nice = 5: nice is only for exec jobs (run = exec:...): a plugin job shares "
			 "its worker's process with the worker's other jobs");
	expect_job_error("[job a]\nrun = builtin:noop\nenvironment = A=1\n", 3,
			 "environment = A=1: environment is only for exec jobs (run = exec:...): a "
			 "builtin job shares its worker's process with the worker's other jobs");
	expect_job_error("[job a]\nrun = builtin:noop\nworking_directory = wd\n", 3,
			 "working_directory = wd: working_directory is only for exec jobs (run = "
			 "exec:...): a builtin job shares its worker's process with the worker's "
			 "other jobs");
	leave_test_dir();
}
END_TEST

START_TEST(test_relative_to_file)
{
	char path[256], want[256];
	struct config *c;
	char *errors = NULL;

	/* Loaded by path from elsewhere: relative paths follow the file, not the cwd. */
	enter_test_dir();
	ck_assert_int_eq(mkdir("etc", 0755), 0);
	ck_assert_int_eq(mkdir("etc/spool", 0755), 0);
	write_file("etc/a.in", "", 0644);
	write_file("etc/job.conf",
		   "[job a]\nrun = plugin:lib/x.so:f\ninputs = *.in\n[job b]\nrun = "
		   "builtin:noop\nspool = spool\n",
		   0644);
	ck_assert_int_eq(chdir("/"), 0);
	snprintf(path, sizeof(path), "%s/etc/../etc/job.conf", test_dir);
	ck_assert_int_eq(config_load(path, &c, &errors), 0);
	snprintf(want, sizeof(want), "plugin:%s/etc/lib/x.so:f", test_dir);
	ck_assert_str_eq(c->groups[0].run, want);
	snprintf(want, sizeof(want), "%s/etc/a.in", test_dir);
	ck_assert_str_eq(c->groups[0].input_paths[0], want);
	snprintf(want, sizeof(want), "%s/etc/spool", test_dir);
	ck_assert_str_eq(c->groups[1].spool, want);
	config_free(c);
	leave_test_dir();
}
END_TEST

START_TEST(test_bad_args)
{
	expect_only_error(
		"[job a]\nrun = builtin:balance\nargs = iteratons=5\n",
		"demo.conf:3: [job a] args = iteratons=5: unknown argument 'iteratons' for "
		"builtin balance (did you mean 'iterations'?)");
	expect_only_error(
		"[job a]\nrun = builtin:balance\nargs = lock=maybe\n",
		"demo.conf:3: [job a] args = lock=maybe: argument lock=maybe: expected yes "
		"or no");
	expect_only_error(
		"[job a]\nrun = builtin:noop\nargs = x=1\n",
		"demo.conf:3: [job a] args = x=1: unknown argument 'x' for builtin noop (it "
		"takes none but the common 'crash')");
	expect_only_error(
		"[job a]\nrun = builtin:noop\nargs = crsh=0.1\n",
		"demo.conf:3: [job a] args = crsh=0.1: unknown argument 'crsh' for builtin noop "
		"(did you mean 'crash'?)");
	expect_only_error("[job a]\nrun = builtin:spin\nargs = crash=2\n",
			  "demo.conf:3: [job a] args = crash=2: argument crash=2: expected a "
			  "probability 0..1");
	expect_only_error("[job a]\nrun = builtin:exit\nargs = code=256\n",
			  "demo.conf:3: [job a] args = code=256: argument code=256: expected an "
			  "integer 0..255");
	expect_only_error("[job a]\nrun = builtin:sleep\nargs = ms=1 ms=2\n",
			  "demo.conf:3: [job a] args = ms=1 ms=2: argument 'ms' given twice");
	expect_only_error("[job a]\nrun = builtin:sleep\nargs = 10\n",
			  "demo.conf:3: [job a] args = 10: argument '10': expected key=value");
	/* args given before run is checked all the same. */
	expect_only_error(
		"[job a]\nargs = step=lots\nrun = builtin:leak\n",
		"demo.conf:2: [job a] args = step=lots: argument step=lots: expected a size "
		"like 64K or 1M");
	/* A bad run: args are not checked against anything. */
	expect_only_error("[job a]\nrun = builtin:nope\nargs = whatever\n",
			  "demo.conf:2: [job a] run = builtin:nope: no such builtin");
}
END_TEST

START_TEST(test_builtins)
{
	char err[256];

	ck_assert_int_eq(bh_builtin_lookup("noop"), BH_BUILTIN_NOOP);
	ck_assert_int_eq(bh_builtin_lookup("stack-overflow"), BH_BUILTIN_STACK_OVERFLOW);
	ck_assert_int_eq(bh_builtin_lookup("leak"), BH_BUILTIN_LEAK);
	ck_assert_int_eq(bh_builtin_lookup("Noop"), -ENOENT);
	ck_assert_int_eq(bh_builtin_lookup(""), -ENOENT);
	ck_assert_int_eq(bh_builtin_lookup(NULL), -ENOENT);
	for (int i = 0; i < _BH_BUILTIN_MAX; i++) {
		ck_assert_int_eq(bh_builtin_lookup(bh_builtin_table[i].name), i);
		ck_assert_int_eq(bh_builtin_check_args((enum bh_builtin)i, "", err, sizeof(err)),
				 0);
		ck_assert_int_eq(bh_builtin_check_args((enum bh_builtin)i, NULL, err, sizeof(err)),
				 0);
	}

	ck_assert_int_eq(bh_builtin_check_args(BH_BUILTIN_BALANCE,
					       "  iterations=100000\tamount=5 lock=no ", err,
					       sizeof(err)),
			 0);
	ck_assert_int_eq(
		bh_builtin_check_args(BH_BUILTIN_SEGV, "probability=0.5", err, sizeof(err)), 0);
	ck_assert_int_eq(bh_builtin_check_args(BH_BUILTIN_LEAK, "step=1.5M", err, sizeof(err)), 0);
	ck_assert_int_eq(bh_builtin_check_args(BH_BUILTIN_EXIT, "code=0", err, sizeof(err)), 0);
	ck_assert_int_eq(bh_builtin_check_args(BH_BUILTIN_EXIT, "code=255", err, sizeof(err)), 0);
	/* The common argument crash, for every builtin. */
	for (int i = 0; i < _BH_BUILTIN_MAX; i++)
		ck_assert_int_eq(
			bh_builtin_check_args((enum bh_builtin)i, "crash=0.001", err, sizeof(err)),
			0);
	ck_assert_int_eq(bh_builtin_check_args(BH_BUILTIN_SPIN, "us=5 crash=1", err, sizeof(err)),
			 0);
	ck_assert_int_eq(
		bh_builtin_check_args(BH_BUILTIN_SPIN, "crash=0 crash=1", err, sizeof(err)),
		-EINVAL);
	ck_assert_str_eq(err, "argument 'crash' given twice");
	/* The crash decision: deterministic per job id, and about p of the ids. */
	{
		unsigned hits = 0;

		for (uint64_t id = 1; id <= 100000; id++) {
			ck_assert(!bh_crash_hit(id, 0.0));
			ck_assert(bh_crash_hit(id, 1.0));
			ck_assert(bh_crash_hit(id, 0.01) == bh_crash_hit(id, 0.01));
			hits += bh_crash_hit(id, 0.01);
		}
		ck_assert_uint_ge(hits, 800);
		ck_assert_uint_le(hits, 1200);
	}

	ck_assert_int_eq(bh_builtin_check_args(BH_BUILTIN_EXIT, "code=-1", err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "argument code=-1: expected an integer 0..255");
	ck_assert_int_eq(bh_builtin_check_args(BH_BUILTIN_SEGV, "probability=2", err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "argument probability=2: expected a probability 0..1");
	ck_assert_int_eq(bh_builtin_check_args(BH_BUILTIN_SPIN, "us=1.5", err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "argument us=1.5: expected an unsigned integer");
	ck_assert_int_eq(bh_builtin_check_args(BH_BUILTIN_SPIN, "us=", err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "argument us=: expected an unsigned integer");
	ck_assert_int_eq(bh_builtin_check_args(BH_BUILTIN_SPIN, "=5", err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "argument '=5': expected key=value");
	ck_assert_int_eq(
		bh_builtin_check_args(BH_BUILTIN_BALANCE, "amount=1 lockk=yes", err, sizeof(err)),
		-EINVAL);
	ck_assert_str_eq(err,
			 "unknown argument 'lockk' for builtin balance (did you mean 'lock'?)");
	ck_assert_int_eq(bh_builtin_check_args(BH_BUILTIN_BALANCE, "zzz=1", err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "unknown argument 'zzz' for builtin balance");
	ck_assert_int_eq(bh_builtin_check_args(_BH_BUILTIN_MAX, "", err, sizeof(err)), -EINVAL);
	/* A tiny buffer is truncated, never overrun. */
	ck_assert_int_eq(bh_builtin_check_args(BH_BUILTIN_SPIN, "us=x", err, 8), -EINVAL);
	ck_assert_str_eq(err, "argumen");
}
END_TEST

START_TEST(test_crlf_bom)
{
	static const char text[] = "\xef\xbb\xbf[pool main]\r\n"
				   "workers = 7\r\n"
				   "\r\n"
				   "[job a]   # c\r\n"
				   "run = builtin:balance\r\n"
				   "args = iterations=5\r\n"
				   "  lock=no\r\n";
	struct config *c = load_ok(text);

	ck_assert_uint_eq(c->pools[0].workers, 7);
	ck_assert_uint_eq(c->pools[0].line, 1);
	ck_assert_str_eq(c->groups[0].args, "iterations=5 lock=no");
	ck_assert_uint_eq(c->groups[0].line, 4);
	config_free(c);

	/* Lines are still counted right. */
	expect_only_error("\xef\xbb\xbf[pool main]\r\nworkers = 0\r\n",
			  "demo.conf:2: [pool main] workers = 0: expected an integer 1..1024");
	/* A BOM anywhere else is not skipped. */
	expect_error("[pool main]\n\xef\xbb\xbfworkers = 1\n",
		     "demo.conf:2: [pool main] unknown key '\xef\xbb\xbfworkers' (did you mean "
		     "'workers'?)");
	/* No final newline. */
	c = load_ok("[pool main]\nworkers = 9");
	ck_assert_uint_eq(c->pools[0].workers, 9);
	config_free(c);
}
END_TEST

START_TEST(test_nul)
{
	static const char text[] = "[pool main]\nworkers = 2\nthr\0eads = 1\nthreads = 0\n";

	free(expect_error_len(text, sizeof(text) - 1,
			      "demo.conf:3: NUL byte in line (not a text file?)"));
	/* Parsing goes on after it. */
	free(expect_error_len(text, sizeof(text) - 1,
			      "demo.conf:4: [pool main] threads = 0: expected an integer 1..256"));
}
END_TEST

/*
 * "PREFIXiterations=1     ...     amount=1" padded with spaces inside to exactly len bytes.
 */
static char *long_args_line(const char *prefix, size_t len)
{
	char *s = malloc(len + 1);
	size_t n;

	ck_assert_ptr_nonnull(s);
	n = (size_t)snprintf(s, len + 1, "%siterations=1", prefix);
	while (n < len)
		s[n++] = ' ';
	memcpy(s + len - 8, "amount=1", 8);
	s[len] = '\0';
	return s;
}

START_TEST(test_long_lines)
{
	char *line, *text;
	struct config *c;

	/* Longer than inih's 200-byte buffer, within CONFIG_LINE_MAX: works, nothing cut. */
	line = long_args_line("args    = ", CONFIG_LINE_MAX);
	ck_assert_int_ne(
		asprintf(&text, "[job a]\nrun = builtin:balance\n%s\n# after\ncount = 2\n", line),
		-1);
	c = load_ok(text);
	ck_assert_uint_eq(strlen(c->groups[0].args), CONFIG_LINE_MAX - strlen("args    = "));
	ck_assert_int_eq(strncmp(c->groups[0].args, "iterations=1 ", 13), 0);
	ck_assert_str_eq(c->groups[0].args + strlen(c->groups[0].args) - 9, " amount=1");
	ck_assert_uint_eq(c->groups[0].count, 2);
	assert_roundtrip(c);
	config_free(c);
	free(text);
	free(line);

	/* A value must print on one line as "args = VALUE": "args=VALUE" may not use it all. */
	line = long_args_line("args=", CONFIG_LINE_MAX);
	ck_assert_int_ne(asprintf(&text, "[job a]\nrun = builtin:balance\n%s\n", line), -1);
	expect_only_error(text, "demo.conf:3: [job a] args: value too long (at most 4089 bytes, "
				"to fit on one line as 'args = VALUE')");
	free(text);
	free(line);
	line = long_args_line("args = ", CONFIG_LINE_MAX);
	ck_assert_int_ne(asprintf(&text, "[job a]\nrun = builtin:balance\n%s\n", line), -1);
	c = load_ok(text);
	assert_roundtrip(c);
	config_free(c);
	free(text);
	free(line);

	/* 250 bytes of one value word: no truncation at 199. */
	{
		char word[251], buf[400], expect[300];

		memset(word, 'p', sizeof(word) - 1);
		word[0] = '/';
		word[sizeof(word) - 1] = '\0';
		snprintf(buf, sizeof(buf), "[supervisor]\ncontrol_group = %s\n" MINIMAL_JOB, word);
		snprintf(expect, sizeof(expect),
			 "demo.conf:2: [supervisor] control_group = %.64s...: expected 1..32 "
			 "characters",
			 word);
		expect_only_error(buf, expect);
		snprintf(buf, sizeof(buf), "[supervisor]\ncontrol_socket = %s\n" MINIMAL_JOB, word);
		snprintf(
			expect, sizeof(expect),
			"demo.conf:2: [supervisor] control_socket = %.64s...: expected an absolute "
			"path of at most 107 bytes (or nothing)",
			word);
		expect_only_error(buf, expect);
	}

	/* A comment line of CONFIG_LINE_MAX bytes, with CRLF: fine. */
	line = malloc(CONFIG_LINE_MAX + 1);
	memset(line, 'x', CONFIG_LINE_MAX);
	line[0] = '#';
	line[CONFIG_LINE_MAX] = '\0';
	ck_assert_int_ne(asprintf(&text, "%s\r\n" MINIMAL_JOB, line), -1);
	config_free(load_ok(text));
	free(text);

	/* One byte more: an error naming the line, and parsing goes on. */
	line = realloc(line, CONFIG_LINE_MAX + 2);
	memset(line, 'x', CONFIG_LINE_MAX + 1);
	line[0] = '#';
	line[CONFIG_LINE_MAX + 1] = '\0';
	ck_assert_int_ne(asprintf(&text, "[pool main]\n%s\nworkers = 0\n", line), -1);
	{
		char *errors =
			expect_error_len(text, strlen(text),
					 "demo.conf:2: line too long (4097 bytes, at most 4096)");

		ck_assert(has_line(errors, "demo.conf:3: [pool main] workers = 0: expected an "
					   "integer 1..1024"));
		free(errors);
	}
	free(text);
	free(line);

	/* A huge line (1 MiB) is refused without trouble. */
	line = malloc(1 << 20);
	memset(line, 'a', (1 << 20) - 1);
	line[(1 << 20) - 1] = '\0';
	ck_assert_int_ne(asprintf(&text, MINIMAL_JOB "%s\n", line), -1);
	expect_only_error(text, "demo.conf:3: line too long (1048575 bytes, at most 4096)");
	free(text);
	free(line);
}
END_TEST

START_TEST(test_multiline)
{
	struct config *c = load_ok("[job a]\n"
				   "run = builtin:balance\n"
				   "args = iterations=100\n"
				   "       amount=5   # the amount\n"
				   "\tlock=no\n"
				   "count = 2\n");

	ck_assert_str_eq(c->groups[0].args, "iterations=100 amount=5 lock=no");
	ck_assert_uint_eq(c->groups[0].count, 2);
	assert_roundtrip(c);
	config_free(c);

	/* Tabs inside a value are kept; other control characters are refused. */
	c = load_ok("[job a]\nrun = builtin:balance\nargs = amount=1\tlock=no\n");
	ck_assert_str_eq(c->groups[0].args, "amount=1\tlock=no");
	assert_roundtrip(c);
	config_free(c);
	expect_only_error(
		"[job a]\nrun = builtin:balance\nargs = amount=1\block=no\n",
		"demo.conf:3: [job a] args = amount=1\block=no: control characters are not "
		"allowed");

	/* A continuation is not a duplicate; the same key again is. */
	expect_only_error("[job a]\nrun = builtin:balance\nargs = iterations=1\n  amount=2\nargs = "
			  "lock=no\n",
			  "demo.conf:5: [job a] duplicate key 'args' (first set on line 3)");
	/* An error in a continued value says so. */
	expect_only_error("[pool main]\nworkers = 2\n  threads = 4\n",
			  "demo.conf:2: [pool main] workers = 2 threads = 4: expected an integer "
			  "1..1024 (the value continues to line 3)");
	/* An indented first key of a section is just a key. */
	c = load_ok("[pool main]\n  workers = 5\n");
	ck_assert_uint_eq(c->pools[0].workers, 5);
	config_free(c);
	/* An indented section header is a header, not a continuation. */
	c = load_ok("[pool main]\nworkers = 5\n  [pool b]\n  workers = 6\n");
	ck_assert_uint_eq(c->n_pools, 2);
	ck_assert_uint_eq(c->pools[0].workers, 5);
	ck_assert_uint_eq(c->pools[1].workers, 6);
	config_free(c);
	/* Indented comments and blank lines between do not end the value. */
	c = load_ok(
		"[job a]\nrun = builtin:balance\nargs = amount=1\n  # a comment\n\n  lock=no\n");
	ck_assert_str_eq(c->groups[0].args, "amount=1 lock=no");
	config_free(c);
	/* A long continuation line works too. */
	{
		char *line = long_args_line("    lock=no ", 1000), *text;

		ck_assert_int_ne(asprintf(&text,
					  "[job a]\nrun = builtin:balance\nargs = x\n  "
					  "iterations=0\n%s\n",
					  line),
				 -1);
		/* "x" is no argument: the error names the key line and the last line. */
		{
			char expect[256];

			snprintf(expect, sizeof(expect),
				 "demo.conf:3: [job a] args = %.64s...: argument 'x': expected "
				 "key=value (the value continues to line 5)",
				 "x iterations=0 lock=no iterations=1                          "
				 "                       ");
			expect_only_error(text, expect);
		}
		free(text);
		ck_assert_int_ne(
			asprintf(&text, "[job a]\nrun = builtin:balance\nargs =\n%s\n", line), -1);
		/* "args =" with no value: the next indented line continues it. */
		c = load_ok(text);
		ck_assert_int_eq(strncmp(c->groups[0].args, "lock=no iterations=1 ", 21), 0);
		ck_assert_uint_eq(strlen(c->groups[0].args), 1000 - 4);
		config_free(c);
		free(text);
		free(line);
	}
}
END_TEST

START_TEST(test_inline_comments)
{
	struct config *c = load_ok("[supervisor] # the supervisor\n"
				   "control_group = a#b   # '#' after a space starts a comment\n"
				   "drain_timeout = 5s ; semicolons too\n"
				   "[pool main] ;c\n"
				   "workers = 3\t# tab before it\n"
				   "  ; an indented comment\n" MINIMAL_JOB);

	ck_assert_str_eq(c->supervisor.control_group, "a#b");
	ck_assert_uint_eq(c->supervisor.drain_timeout, 5 * USEC_PER_SEC);
	ck_assert_uint_eq(c->pools[0].workers, 3);
	config_free(c);

	/* "debug;x" is one word: the ';' has no space before it. */
	expect_error("[supervisor]\nlog_level = debug;x\n" MINIMAL_JOB,
		     "demo.conf:2: [supervisor] log_level = debug;x: expected one of debug, info, "
		     "notice, warning, err (did you mean 'debug'?)");
	/* A value that is only a comment is empty. */
	expect_only_error("[pool main]\nworkers = # none\n",
			  "demo.conf:2: [pool main] workers = : expected an integer 1..1024");
}
END_TEST

START_TEST(test_limits)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f;

	/* CONFIG_POOLS_MAX pools are fine, one more is not. */
	f = open_memstream(&text, &size);
	for (int i = 0; i <= CONFIG_POOLS_MAX; i++)
		fprintf(f, "[pool p%d]\n", i);
	fclose(f);
	expect_only_error(text, "demo.conf:65: [pool p64]: too many pools (at most 64)");
	free(text);

	f = open_memstream(&text, &size);
	for (int i = 0; i <= CONFIG_GROUPS_MAX; i++)
		fprintf(f, "[job j%d]\nrun = builtin:noop\n", i);
	fclose(f);
	expect_only_error(text,
			  "demo.conf:8193: [job j4096]: too many job sections (at most 4096)");
	free(text);

	/* CONFIG_JOBS_MAX jobs in all. */
	f = open_memstream(&text, &size);
	for (int i = 0; i < CONFIG_JOBS_MAX / 1000000; i++)
		fprintf(f, "[job j%d]\nrun = builtin:noop\ncount = 1000000\n", i);
	fclose(f);
	{
		struct config *c = load_ok(text);

		ck_assert_uint_eq(c->total_jobs, CONFIG_JOBS_MAX);
		config_free(c);
	}
	text = realloc(text, strlen(text) + 64);
	strcat(text, "[job last]\nrun = builtin:noop\n");
	expect_only_error(text, "demo.conf:31: [job last] count = 1: too many jobs in all "
				"(10000001, at most 10000000)");
	free(text);
}
END_TEST

START_TEST(test_error_cap)
{
	char *text = NULL, *errors;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	fputs("[pool main]\n", f);
	for (int i = 0; i < 30; i++)
		fprintf(f, "bad line %d\n", i);
	fclose(f);
	errors = expect_error_len(text, strlen(text),
				  "demo.conf:2: syntax error: expected 'key = value', '[section]' "
				  "or a comment, got 'bad line 0'");
	ck_assert_uint_eq(count_lines(errors), CONFIG_ERRORS_MAX + 1);
	ck_assert(has_line(errors, "demo.conf:21: syntax error: expected 'key = value', "
				   "'[section]' or a comment, got 'bad line 19'"));
	ck_assert(has_line(errors, "demo.conf: too many errors, 10 more not shown"));
	free(errors);
	free(text);

	/* The cap keeps the first errors by line, even when later checks find earlier lines. */
	f = open_memstream(&text, &size);
	fputs("[pool main]\nworkers = 0\n", f);
	for (int i = 0; i < 30; i++)
		fprintf(f, "bad line %d\n", i);
	fclose(f);
	errors = expect_error_len(
		text, strlen(text),
		"demo.conf:2: [pool main] workers = 0: expected an integer 1..1024");
	ck_assert_uint_eq(count_lines(errors), CONFIG_ERRORS_MAX + 1);
	ck_assert(has_line(errors, "demo.conf: too many errors, 11 more not shown"));
	free(errors);
	free(text);
}
END_TEST

START_TEST(test_many_errors_at_once)
{
	static const char text[] = "[pool main]\n" /* 1 */
				   "threads = abc\n" /* 2 */
				   "thread = 4\n" /* 3 */
				   "[jbo x]\n" /* 4 */
				   "[job x]\n" /* 5 */
				   "pool = mian\n" /* 6 */
				   "run = builtin:balanc\n" /* 7 */
				   "[job y]\n"; /* 8 */
	char *errors =
		expect_error_len(text, sizeof(text) - 1,
				 "demo.conf:2: [pool main] threads = abc: expected an integer "
				 "1..256");

	ck_assert(has_line(errors, "demo.conf:3: [pool main] unknown key 'thread' (did you mean "
				   "'threads'?)"));
	ck_assert(has_line(errors, "demo.conf:4: unknown section [jbo x] (did you mean 'job'?)"));
	ck_assert(has_line(errors, "demo.conf:6: [job x] pool = mian: no such pool (did you mean "
				   "'main'?)"));
	ck_assert(has_line(errors, "demo.conf:7: [job x] run = builtin:balanc: no such builtin "
				   "(did you mean 'builtin:balance'?)"));
	ck_assert(has_line(errors, "demo.conf:8: [job y] missing required key 'run'"));
	ck_assert_uint_eq(count_lines(errors), 6);
	free(errors);
}
END_TEST

START_TEST(test_misc)
{
	config_free(NULL);
	ck_assert_str_eq(log_level_to_string(LOG_LEVEL_ERR), "err");
	ck_assert_str_eq(log_level_to_string(LOG_LEVEL_WARNING), "warning");
	ck_assert_str_eq(log_level_to_string(LOG_LEVEL_NOTICE), "notice");
	ck_assert_str_eq(log_level_to_string(LOG_LEVEL_INFO), "info");
	ck_assert_str_eq(log_level_to_string(LOG_LEVEL_DEBUG), "debug");
	ck_assert_ptr_null(log_level_to_string((enum log_level)42));

	/* Every key has a name, a doc line and a default that loads (checked by loading). */
	for (int i = 0; i < _CONFIG_KEY_MAX; i++) {
		ck_assert_ptr_nonnull(config_keys[i].name);
		ck_assert_ptr_nonnull(config_keys[i].doc);
		ck_assert(config_keys[i].def || i == CONFIG_KEY_JOB_run);
	}
}
END_TEST

START_TEST(test_print)
{
	struct config *c = load_ok(MINIMAL_JOB);
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	config_print(c, f);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(text, "\n[supervisor]\ncontrol_socket =\ncontrol_group = "
					   "bulkhead\nlog_level = info\ndrain_timeout = 10s\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nworkers = 2\nthreads = 4\nbackoff = 10ms..5s\n"
					   "min_uptime = 1s\nmax_worker_faults = 10/1min\n"
					   "memory_max = infinity\ntasks_max = 0\nkill_grace = 1s\n"
					   "on_pool_failure = stop\nuser =\ngroup =\n"));
	ck_assert_ptr_nonnull(strstr(text, "\n[job a]\npool = main\nrun = builtin:noop\nargs =\n"
					   "inputs =\nspool =\noutput =\n"
					   "count = 1\ntimeout = 1min\nmax_attempts = 3\n"
					   "expect = done\n"));
	free(text);
	config_free(c);
}
END_TEST

/*
 * config_check_submitted_run(): what `submit --run` takes, checked as a [job] section's run
 * would be, and the reasons of what it refuses.
 */
START_TEST(test_submitted_run)
{
	static const struct {
		const char *run, *args;
		bool input;
		const char *why; /* NULL: accepted */
	} cases[] = {
		{ "exec:/bin/true", "", false, NULL },
		{ "exec:true", "", false, NULL }, /* found in PATH */
		{ "exec:/bin/sh -c 'echo {arg:w} {id} {name}'", "w=x", false, NULL },
		{ "exec:/bin/cat {input}", "", true, NULL },
		{ "exec:/bin/cat {input}", "", false, "--input FILE" },
		{ "exec:/bin/echo {arg:w}", "", false, "no value for {arg:w}" },
		{ "exec:/bin/true", "input=x", true, "argument 'input' is set for each job" },
		{ "exec:/bin/true", "a=1 a=2", false, "given twice" },
		{ "exec:/bin/true", "novalue", false, "expected key=value" },
		{ "exec:/nonexistent/x", "", false, "COMMAND /nonexistent/x: No such file" },
		{ "exec:relative/x", "", false, "must be an absolute path" },
		{ "exec:{arg:w}", "w=x", false, "COMMAND cannot contain placeholders" },
		{ "exec:/bin/sh -c 'open", "", false, "expected exec:COMMAND" },
		{ "exec:", "", false, "expected exec:COMMAND" },
		{ "plugin:/p/x.so:job_fn", "k=v", false, NULL }, /* loading it is the probe's */
		{ "plugin:p/x.so:job", "", false, "ABSOLUTE" },
		{ "plugin:/p/x.so", "", false, "ABSOLUTE/PATH:SYMBOL" },
		{ "plugin:/p/x.so:9x", "", false, "not a C identifier" },
		{ "shell:ls", "", false, "expected exec:COMMAND ARGS... or plugin:PATH:SYMBOL" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[640] = "";
		int r = config_check_submitted_run(cases[i].run, cases[i].args, cases[i].input,
						   err, sizeof(err));

		if (!cases[i].why) {
			ck_assert_msg(r == 0, "%s: refused: %s", cases[i].run, err);
			continue;
		}
		ck_assert_msg(r == -EINVAL, "%s (%s): %d, expected a refusal", cases[i].run,
			      cases[i].args, r);
		ck_assert_msg(strstr(err, cases[i].why), "%s: '%s' does not say '%s'", cases[i].run,
			      err, cases[i].why);
	}
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("load");

	tcase_add_test(tc, test_demo);
	tcase_add_test(tc, test_defaults_and_implicit_pool);
	tcase_add_test(tc, test_values);
	tcase_add_test(tc, test_file_errors);
	tcase_add_test(tc, test_file_kinds);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_syntax_errors);
	tcase_add_test(tc, test_unknown_section);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_wrong_values);
	tcase_add_test(tc, test_duplicates);
	tcase_add_test(tc, test_outside_section);
	tcase_add_test(tc, test_missing_pool);
	tcase_add_test(tc, test_missing_run);
	tcase_add_test(tc, test_run_kinds);
	tcase_add_test(tc, test_plugin);
	tcase_add_test(tc, test_exec_settings);
	tcase_add_test(tc, test_exec);
	tcase_add_test(tc, test_inputs);
	tcase_add_test(tc, test_inputs_many);
	tcase_add_test(tc, test_spool);
	tcase_add_test(tc, test_output);
	tcase_add_test(tc, test_relative_to_file);
	tcase_add_test(tc, test_bad_args);
	tcase_add_test(tc, test_crlf_bom);
	tcase_add_test(tc, test_nul);
	tcase_add_test(tc, test_long_lines);
	tcase_add_test(tc, test_multiline);
	tcase_add_test(tc, test_inline_comments);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_error_cap);
	tcase_add_test(tc, test_many_errors_at_once);
	tcase_add_test(tc, test_misc);
	tcase_add_test(tc, test_print);
	suite_add_tcase(s, tc);

	tc = tcase_create("submitted");
	tcase_add_test(tc, test_submitted_run);
	suite_add_tcase(s, tc);
	tc = tcase_create("builtins");
	tcase_add_test(tc, test_builtins);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
