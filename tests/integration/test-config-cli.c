/* SPDX-License-Identifier: MIT */
/*
 * Integration test of `bulkhead check-config FILE`: runs the real binary ($BULKHEAD_BIN) on
 * the fixtures in $BULKHEAD_TEST_CONFIGS (bad-*.conf, good-*.conf) and checks the exit
 * status (0 valid, 78 config error, 2 usage), that every error on stderr names FILE:LINE
 * and the key, and that the printed effective config reads back to itself.
 *
 * Processes are started with fork/exec, their stdout and stderr read through pipes with a
 * deadline, and reaped with waitpid. Helpers are local on purpose (no testutil API).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN_DEADLINE_MS 30000
#define RUN_OUTPUT_MAX (4 << 20)

struct result {
	int status; /* exit status, or 128 + signal */
	char *out;
	char *err;
};

static const char *bin(void)
{
	const char *b = getenv("BULKHEAD_BIN");

	ck_assert_msg(b && *b, "BULKHEAD_BIN is not set");
	return b;
}

static const char *configs_dir(void)
{
	const char *d = getenv("BULKHEAD_TEST_CONFIGS");

	ck_assert_msg(d && *d, "BULKHEAD_TEST_CONFIGS is not set");
	return d;
}

static char *fixture(const char *name)
{
	char *p;

	ck_assert_int_ne(asprintf(&p, "%s/%s", configs_dir(), name), -1);
	return p;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
	ck_assert_uint_le(*len + n, RUN_OUTPUT_MAX);
	*buf = realloc(*buf, *len + n + 1);
	ck_assert_ptr_nonnull(*buf);
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
}

/*
 * Runs `bulkhead ARGS...` (NULL-terminated), collecting stdout, stderr and the status; fails
 * the test if it has not ended within deadline_ms. stdout_path non-NULL: its stdout is that
 * file (opened for writing) instead of a pipe, and r.out stays empty.
 */
static struct result run_with(const char *const *args, long deadline_ms, const char *stdout_path)
{
	int out_pipe[2], err_pipe[2], status;
	struct result r = { .status = -1 };
	size_t out_len = 0, err_len = 0;
	const char *argv[16];
	long deadline = now_ms() + deadline_ms;
	unsigned n = 0;
	int open_fds = 2;
	pid_t pid;

	argv[n++] = bin();
	for (; *args; args++) {
		ck_assert_uint_lt(n, 15);
		argv[n++] = *args;
	}
	argv[n] = NULL;

	ck_assert_int_eq(pipe2(out_pipe, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(err_pipe, O_CLOEXEC), 0);
	if (stdout_path) {
		close(out_pipe[0]);
		close(out_pipe[1]);
		out_pipe[1] = open(stdout_path, O_WRONLY | O_CLOEXEC);
		ck_assert_msg(out_pipe[1] >= 0, "%s: %s", stdout_path, strerror(errno));
		out_pipe[0] = -1;
		open_fds = 1;
	}
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (null < 0 || dup2(null, STDIN_FILENO) < 0 ||
		    dup2(out_pipe[1], STDOUT_FILENO) < 0 || dup2(err_pipe[1], STDERR_FILENO) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(out_pipe[1]);
	close(err_pipe[1]);
	r.out = strdup("");
	r.err = strdup("");

	while (open_fds > 0) {
		struct pollfd pfd[2] = {
			{ .fd = out_pipe[0], .events = POLLIN },
			{ .fd = err_pipe[0], .events = POLLIN },
		};
		long left = deadline - now_ms();
		int k;

		if (left <= 0) {
			kill(pid, SIGKILL);
			ck_abort_msg("bulkhead %s did not finish within %ld ms", argv[1],
				     deadline_ms);
		}
		k = poll(pfd, 2, (int)left);
		if (k < 0 && errno == EINTR)
			continue;
		ck_assert_int_ge(k, 0);
		for (int i = 0; i < 2; i++) {
			char buf[65536];
			ssize_t got;

			if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			got = read(pfd[i].fd, buf, sizeof(buf));
			if (got < 0 && errno == EINTR)
				continue;
			ck_assert_int_ge(got, 0);
			if (got == 0) {
				close(pfd[i].fd);
				if (i == 0)
					out_pipe[0] = -1;
				else
					err_pipe[0] = -1;
				open_fds--;
				continue;
			}
			if (i == 0)
				append(&r.out, &out_len, buf, (size_t)got);
			else
				append(&r.err, &err_len, buf, (size_t)got);
		}
	}
	while (waitpid(pid, &status, 0) < 0)
		ck_assert_int_eq(errno, EINTR);
	if (WIFEXITED(status))
		r.status = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		r.status = 128 + WTERMSIG(status);
	return r;
}

static struct result run(const char *const *args)
{
	return run_with(args, RUN_DEADLINE_MS, NULL);
}

static void result_free(struct result *r)
{
	free(r->out);
	free(r->err);
}

static struct result check_config(const char *path)
{
	const char *args[] = { "check-config", path, NULL };

	return run(args);
}

/* Every non-empty line of s starts with prefix. */
static int all_lines_start_with(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);

	while (*s) {
		const char *nl = strchr(s, '\n');

		if (strncmp(s, prefix, n) != 0)
			return 0;
		if (!nl)
			break;
		s = nl + 1;
	}
	return 1;
}

/*
 * A bad fixture: exit 78, nothing on stdout, stderr's lines all start with the path as
 * given, and stderr holds "PATH:LINE: " followed (on that line) by each of the texts.
 */
struct bad_case {
	const char *file;
	unsigned line; /* 0: an error about the whole file */
	const char *texts[3];
};

static const struct bad_case bad_cases[] = {
	{ "bad-syntax.conf", 3, { "syntax error", "threads 4" } },
	{ "bad-semicolon.conf",
	  3,
	  { "the command line was cut short by a comment",
	    "the value ends before the ' ;' on line 3: ' ;' starts a comment" } },
	{ "bad-semicolon-valid.conf",
	  3,
	  { "the command line was cut short by a comment",
	    "the value ends before the ' ;' on line 3: ' ;' starts a comment" } },
	{ "bad-section-header.conf", 1, { "syntax error", "section header without ']'" } },
	{ "bad-unknown-section.conf",
	  4,
	  { "unknown section [jbo ledger]", "did you mean 'job'?" } },
	{ "bad-unknown-key.conf",
	  3,
	  { "[pool main] unknown key 'thread'", "did you mean 'threads'?" } },
	{ "bad-wrong-type.conf", 4, { "[pool main] threads = abc: expected an integer 1..256" } },
	{ "bad-out-of-range.conf",
	  2,
	  { "[pool main] workers = 2000: expected an integer 1..1024" } },
	{ "bad-duplicate-key.conf",
	  4,
	  { "[pool main] duplicate key 'threads' (first set on line 3)" } },
	{ "bad-duplicate-section.conf", 3, { "duplicate section [pool main] (first on line 1)" } },
	{ "bad-outside-section.conf", 1, { "key 'workers' outside any section" } },
	{ "bad-missing-pool.conf",
	  5,
	  { "[job ledger] pool = mian: no such pool (did you mean 'main'?)" } },
	{ "bad-missing-run.conf", 1, { "[job ledger] missing required key 'run'" } },
	{ "bad-empty.conf", 0, { "empty config: no [pool] or [job] sections" } },
	{ "bad-comments-only.conf", 0, { "empty config: no [pool] or [job] sections" } },
	{ "bad-unknown-builtin.conf",
	  2,
	  { "[job crash] run = builtin:sgev: no such builtin", "did you mean 'builtin:segv'?" } },
	{ "bad-args.conf",
	  3,
	  { "[job ledger] args = iteratons=100 amount=5",
	    "unknown argument 'iteratons' for builtin balance (did you mean 'iterations'?)" } },
	{ "bad-exit-code.conf", 3, { "[job quit] args = code=300", "expected an integer 0..255" } },
	{ "bad-plugin.conf",
	  2,
	  { "[job p] run = plugin:/usr/lib/x.so:my-job",
	    "SYMBOL 'my-job' is not a C identifier" } },
	{ "bad-exec.conf",
	  2,
	  { "[job e] run = exec:/nonexistent/tool -v {id}",
	    "COMMAND /nonexistent/tool: No such file or directory" } },
	{ "bad-inputs.conf",
	  3,
	  { "[job in] inputs = no-such-dir/*.txt: no file matches ", "/no-such-dir/*.txt" } },
	{ "bad-spool.conf", 4, { "[job s] count = 5: cannot be set together with spool" } },
	{ "bad-output.conf", 3, { "[job o] output = inputs: output is only for exec jobs" } },
	{ "bad-run.conf",
	  2,
	  { "[job r] run = /bin/true",
	    "expected builtin:NAME, plugin:PATH:SYMBOL or exec:COMMAND ARGS..." } },
	{ "bad-crlf-bom.conf", 3, { "[pool main] threads = 0: expected an integer 1..256" } },
	{ "bad-nul.conf", 3, { "NUL byte" } },
	{ "bad-long-line.conf", 3, { "line too long", "at most 4096" } },
	{ "bad-too-many-pools.conf", 65, { "[pool p64]", "too many pools (at most 64)" } },
	{ "bad-many.conf", 2, { "[pool main] threads = abc: expected an integer 1..256" } },
};

/* The line of s that starts with prefix, as a new string, or NULL. */
static char *line_starting_with(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);

	while (s && *s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);

		if (len >= n && strncmp(s, prefix, n) == 0)
			return strndup(s, len);
		s = nl ? nl + 1 : NULL;
	}
	return NULL;
}

START_TEST(test_bad_fixture)
{
	const struct bad_case *c = &bad_cases[_i];
	char *path = fixture(c->file), *prefix, *line;
	struct result r = check_config(path);

	ck_assert_msg(r.status == 78, "%s: exit %d, expected 78; stderr:\n%s", c->file, r.status,
		      r.err);
	ck_assert_msg(r.out[0] == '\0', "%s: stdout not empty:\n%s", c->file, r.out);
	ck_assert_msg(r.err[0] != '\0', "%s: stderr empty", c->file);
	ck_assert_msg(all_lines_start_with(r.err, path), "%s: a line does not name the file:\n%s",
		      c->file, r.err);

	if (c->line > 0)
		ck_assert_int_ne(asprintf(&prefix, "%s:%u: ", path, c->line), -1);
	else
		ck_assert_int_ne(asprintf(&prefix, "%s: ", path), -1);
	line = line_starting_with(r.err, prefix);
	ck_assert_msg(line, "%s: no line starting with '%s' in:\n%s", c->file, prefix, r.err);
	for (int i = 0; i < 3 && c->texts[i]; i++)
		ck_assert_msg(strstr(line, c->texts[i]), "%s: '%s' not in: %s", c->file,
			      c->texts[i], line);
	free(line);
	free(prefix);
	free(path);
	result_free(&r);
}
END_TEST

START_TEST(test_bad_many)
{
	/* Every error is reported, one per line, in line order. */
	char *path = fixture("bad-many.conf");
	struct result r = check_config(path);
	static const char *const expect[] = {
		":2: [pool main] threads = abc: expected an integer 1..256",
		":3: [pool main] unknown key 'thread' (did you mean 'threads'?)",
		":4: unknown section [jbo x] (did you mean 'job'?)",
		":6: [job x] pool = mian: no such pool (did you mean 'main'?)",
		":7: [job x] run = builtin:balanc: no such builtin "
		"(did you mean 'builtin:balance'?)",
		":8: [job y] missing required key 'run'",
	};
	const char *s = r.err;

	ck_assert_int_eq(r.status, 78);
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		char *want;
		const char *nl = strchr(s, '\n');

		ck_assert_int_ne(asprintf(&want, "%s%s", path, expect[i]), -1);
		ck_assert_msg(nl && (size_t)(nl - s) == strlen(want) &&
				      strncmp(s, want, strlen(want)) == 0,
			      "line %zu: expected\n%s\nin:\n%s", i + 1, want, r.err);
		s = nl + 1;
		free(want);
	}
	ck_assert_str_eq(s, "");
	free(path);
	result_free(&r);
}
END_TEST

START_TEST(test_missing_and_unreadable)
{
	char *path = fixture("does-not-exist.conf"), *want;
	const char *dir = configs_dir();
	struct result r = check_config(path);

	ck_assert_int_eq(r.status, 78);
	ck_assert_str_eq(r.out, "");
	ck_assert_int_ne(asprintf(&want, "%s: cannot open: No such file or directory\n", path), -1);
	ck_assert_str_eq(r.err, want);
	free(want);
	result_free(&r);
	free(path);

	/* A directory cannot be read (EISDIR): the same kind of error. */
	r = check_config(dir);
	ck_assert_int_eq(r.status, 78);
	ck_assert_int_ne(asprintf(&want, "%s: cannot read: Is a directory\n", dir), -1);
	ck_assert_str_eq(r.err, want);
	free(want);
	result_free(&r);

	/* A file without read permission: only meaningful when not root. */
	if (geteuid() != 0) {
		char tmp[] = "/tmp/bulkhead-cli-test.XXXXXX";
		int fd = mkstemp(tmp);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, "[pool main]\n", 12), 12);
		close(fd);
		ck_assert_int_eq(chmod(tmp, 0), 0);
		r = check_config(tmp);
		unlink(tmp);
		ck_assert_int_eq(r.status, 78);
		ck_assert_int_ne(asprintf(&want, "%s: cannot open: Permission denied\n", tmp), -1);
		ck_assert_str_eq(r.err, want);
		free(want);
		result_free(&r);
	} else {
		fprintf(stderr, "test_missing_and_unreadable: running as root, skipping EACCES\n");
	}
}
END_TEST

#define BOUNDED_READ_MS 10000 /* check-config on a file it must not read: a refusal at once */

/*
 * Files check-config must refuse without reading (DESIGN §11): devices that never end and a
 * FIFO with no writer (without O_NONBLOCK, open() itself would wait for one). Each one is
 * exit 78 within BOUNDED_READ_MS, with one line naming the path and the kind of file.
 */
START_TEST(test_not_regular_files)
{
	char dir[] = "/tmp/bulkhead-cli-test.XXXXXX", fifo[128], big[128], *want;
	const char *devices[] = { "/dev/zero", "/dev/urandom" };
	struct result r;

	for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++) {
		r = run_with((const char *const[]){ "check-config", devices[i], NULL },
			     BOUNDED_READ_MS, NULL);
		ck_assert_msg(r.status == 78, "%s: exit %d: %s", devices[i], r.status, r.err);
		ck_assert_str_eq(r.out, "");
		ck_assert_int_ne(asprintf(&want, "%s: not a regular file (a character device)\n",
					  devices[i]),
				 -1);
		ck_assert_str_eq(r.err, want);
		free(want);
		result_free(&r);
	}

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo.conf", dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	r = run_with((const char *const[]){ "check-config", fifo, NULL }, BOUNDED_READ_MS, NULL);
	ck_assert_msg(r.status == 78, "FIFO: exit %d: %s", r.status, r.err);
	ck_assert_int_ne(asprintf(&want, "%s: not a regular file (a FIFO)\n", fifo), -1);
	ck_assert_str_eq(r.err, want);
	free(want);
	result_free(&r);

	/* Over the size limit: refused before it is read. */
	snprintf(big, sizeof(big), "%s/big.conf", dir);
	{
		int fd = open(big, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(ftruncate(fd, 2000000), 0);
		close(fd);
	}
	r = run_with((const char *const[]){ "check-config", big, NULL }, BOUNDED_READ_MS, NULL);
	ck_assert_int_eq(r.status, 78);
	ck_assert_int_ne(asprintf(&want, "%s: too large (2000000 bytes; at most 1 MiB)\n", big),
			 -1);
	ck_assert_str_eq(r.err, want);
	free(want);
	result_free(&r);

	unlink(big);
	unlink(fifo);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/*
 * Output that cannot be written (stdout on /dev/full, a report file there) is exit 74 with
 * one message naming what failed: never a silent exit 0 (issue 11, point 7).
 */
START_TEST(test_write_errors)
{
	char *good = fixture("good-minimal.conf"), dir[] = "/tmp/bulkhead-cli-test.XXXXXX";
	char conf[128];
	struct result r;

	r = run_with((const char *const[]){ "check-config", good, NULL }, RUN_DEADLINE_MS,
		     "/dev/full");
	ck_assert_msg(r.status == 74, "exit %d: %s", r.status, r.err);
	ck_assert_str_eq(r.err,
			 "bulkhead: writing the config to stdout: No space left on device\n");
	result_free(&r);

	r = run_with((const char *const[]){ "--help", NULL }, RUN_DEADLINE_MS, "/dev/full");
	ck_assert_int_eq(r.status, 74);
	ck_assert_ptr_nonnull(strstr(r.err, "to stdout: No space left on device"));
	result_free(&r);

	/* A whole run: the jobs are done, the table cannot be written. */
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/run.conf", dir);
	{
		FILE *f = fopen(conf, "we");

		ck_assert_ptr_nonnull(f);
		fputs("[pool main]\nworkers = 1\nthreads = 1\n[job a]\nrun = builtin:noop\n"
		      "count = 3\n",
		      f);
		ck_assert_int_eq(fclose(f), 0);
	}
	r = run_with((const char *const[]){ "run", conf, NULL }, RUN_DEADLINE_MS, "/dev/full");
	ck_assert_msg(r.status == 74, "exit %d: %s", r.status, r.err);
	ck_assert_msg(
		strstr(r.err, "bulkhead: writing the report to stdout: No space left on device\n"),
		"%s", r.err);
	result_free(&r);

	/* The JSON report to a file that cannot take it; stdout is fine. */
	r = run_with((const char *const[]){ "run", conf, "--report-json", "/dev/full", NULL },
		     RUN_DEADLINE_MS, NULL);
	ck_assert_msg(r.status == 74, "exit %d: %s", r.status, r.err);
	ck_assert_msg(strstr(r.err, "bulkhead: writing the report to /dev/full: No space left on "
				    "device\n"),
		      "%s", r.err);
	ck_assert_ptr_nonnull(strstr(r.out, "3 done"));
	result_free(&r);

	/* And all is well when it can be written. */
	r = run_with((const char *const[]){ "run", conf, NULL }, RUN_DEADLINE_MS, "/dev/null");
	ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
	result_free(&r);

	unlink(conf);
	ck_assert_int_eq(rmdir(dir), 0);
	free(good);
}
END_TEST

static const char *const good_files[] = {
	"good-minimal.conf",  "good-demo.conf",	     "good-multiline.conf",
	"good-crlf-bom.conf", "good-long-line.conf", "good-kinds.conf",
};

/*
 * The output without what may differ between a config and its printed form: the first line
 * ("# effective config of PATH") and the note on an implicit pool (printed, it is explicit).
 */
static char *normalized(const char *s)
{
	static const char note[] = " # implicit: the config has no [pool] section";
	const char *nl = strchr(s, '\n');
	char *n = strdup(nl ? nl + 1 : s), *p;

	ck_assert_ptr_nonnull(n);
	while ((p = strstr(n, note)))
		memmove(p, p + strlen(note), strlen(p + strlen(note)) + 1);
	return n;
}

START_TEST(test_good_fixture)
{
	char *path = fixture(good_files[_i]);
	char tmp[] = "/tmp/bulkhead-cli-test.XXXXXX";
	struct result r = check_config(path), again;
	int fd;

	ck_assert_msg(r.status == 0, "%s: exit %d; stderr:\n%s", good_files[_i], r.status, r.err);
	ck_assert_str_eq(r.err, "");
	ck_assert_ptr_nonnull(strstr(r.out, "\n[supervisor]\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\n[pool main]"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nworkers = "));
	ck_assert_ptr_nonnull(strstr(r.out, "\ntimeout = "));

	/* The effective config is itself a valid config, and prints the same. */
	fd = mkstemp(tmp);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, r.out, strlen(r.out)), (ssize_t)strlen(r.out));
	close(fd);
	again = check_config(tmp);
	unlink(tmp);
	ck_assert_msg(again.status == 0, "reloading the output failed:\n%s", again.err);
	{
		char *x = normalized(r.out), *y = normalized(again.out);

		ck_assert_msg(strcmp(x, y) == 0, "printed config differs:\n%.1000s\n---\n%.1000s",
			      x, y);
		free(x);
		free(y);
	}
	result_free(&again);
	result_free(&r);
	free(path);
}
END_TEST

START_TEST(test_good_values)
{
	char *path = fixture("good-demo.conf");
	struct result r = check_config(path);

	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\ncontrol_socket = /run/bulkhead/control.sock\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nworkers = 3\nthreads = 4\nbackoff = 10ms..5s\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nmemory_max = 512M\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nargs = iterations=100000 amount=5\ninputs =\n"
					    "spool =\noutput =\ncount = 100\n"));
	result_free(&r);
	free(path);

	path = fixture("good-multiline.conf");
	r = check_config(path);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\nargs = iterations=1000 amount=5 lock=yes\n"));
	result_free(&r);
	free(path);
}
END_TEST

START_TEST(test_good_kinds)
{
	/* Relative paths come out absolute, relative to the file's directory, not the cwd. */
	char *path = fixture("good-kinds.conf"), *want, dir[4096];
	struct result r;

	ck_assert_int_eq(chdir("/"), 0);
	r = check_config(path);
	ck_assert_msg(r.status == 0, "exit %d:\n%s", r.status, r.err);
	ck_assert_ptr_nonnull(realpath(configs_dir(), dir));
	ck_assert_int_ne(asprintf(&want,
				  "\n[job count-lines]\npool = main\nrun = exec:wc -l {input}\n"
				  "args =\ninputs = %s/inputs/*.txt\nspool =\noutput = %s\n"
				  "# count = 3: one job per input file\ntimeout = ",
				  dir, dir),
			 -1);
	ck_assert_msg(strstr(r.out, want), "no\n%s\nin\n%s", want, r.out);
	free(want);
	ck_assert_int_ne(asprintf(&want,
				  "\nspool = %s/spool\noutput =\n"
				  "# count = 0: jobs come from the spool\n",
				  dir),
			 -1);
	ck_assert_msg(strstr(r.out, want), "no\n%s\nin\n%s", want, r.out);
	free(want);
	result_free(&r);
	free(path);
}
END_TEST

/* Writes text to a new temp file; returns its path (malloc'd). */
static char *temp_config(const char *text)
{
	char *path = strdup("/tmp/bulkhead-cli-test.XXXXXX");
	int fd;

	ck_assert_ptr_nonnull(path);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

START_TEST(test_plugin_probe)
{
	/* check-config loads each plugin in a throwaway worker: what does not load is an error. */
	const char *dir = getenv("BULKHEAD_TEST_PLUGINS");
	static const struct {
		unsigned line;
		const char *text;
	} expect[] = {
		{ 4, "[job old] run = plugin:@/abi-old.so:outcome: @/abi-old.so was built for job "
		     "ABI " },
		{ 6, "[job none] run = plugin:@/no-abi.so:outcome: not a bulkhead plugin" },
		{ 8, "[job ctor] run = plugin:@/ctor-crash.so:outcome: constructor crashed the "
		     "probe: SIGSEGV" },
		{ 10, "[job gone] run = plugin:@/missing.so:outcome: cannot load: @/missing.so: "
		      "cannot open shared object file: No such file or directory" },
		{ 12, "[job sym] run = plugin:@/outcomes.so:nope: cannot find nope" },
	};
	char *text, *path, *good;
	struct result r;

	if (!dir || !*dir) {
		printf("SKIP test_plugin_probe: BULKHEAD_TEST_PLUGINS is not set\n");
		return;
	}
	ck_assert_int_ne(asprintf(&text,
				  "[job ok]\nrun = plugin:%s/outcomes.so:outcome\n"
				  "[job old]\nrun = plugin:%s/abi-old.so:outcome\n"
				  "[job none]\nrun = plugin:%s/no-abi.so:outcome\n"
				  "[job ctor]\nrun = plugin:%s/ctor-crash.so:outcome\n"
				  "[job gone]\nrun = plugin:%s/missing.so:outcome\n"
				  "[job sym]\nrun = plugin:%s/outcomes.so:nope\n",
				  dir, dir, dir, dir, dir, dir),
			 -1);
	path = temp_config(text);
	r = check_config(path);
	ck_assert_msg(r.status == 78, "exit %d, expected 78:\n%s", r.status, r.err);
	ck_assert_str_eq(r.out, "");
	ck_assert_msg(all_lines_start_with(r.err, path), "a line does not name the file:\n%s",
		      r.err);
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		char want[2048], *prefix;
		size_t n = 0;

		/* '@' stands for the plugin directory. */
		for (const char *t = expect[i].text; *t && n + strlen(dir) + 2 < sizeof(want);
		     t++) {
			if (*t == '@') {
				memcpy(want + n, dir, strlen(dir));
				n += strlen(dir);
			} else {
				want[n++] = *t;
			}
		}
		want[n] = '\0';
		ck_assert_int_ne(asprintf(&prefix, "%s:%u: ", path, expect[i].line), -1);
		{
			char *line = line_starting_with(r.err, prefix);

			ck_assert_msg(line, "no line starting with '%s' in:\n%s", prefix, r.err);
			ck_assert_msg(strstr(line, want), "'%s' not in: %s", want, line);
			free(line);
		}
		free(prefix);
	}
	ck_assert_msg(!strstr(r.err, "[job ok]"), "the good plugin was refused:\n%s", r.err);
	result_free(&r);
	unlink(path);
	free(path);
	free(text);

	/* The good one alone passes. */
	ck_assert_int_ne(asprintf(&text, "[job ok]\nrun = plugin:%s/outcomes.so:outcome\n", dir),
			 -1);
	good = temp_config(text);
	r = check_config(good);
	ck_assert_msg(r.status == 0, "exit %d:\n%s", r.status, r.err);
	result_free(&r);
	unlink(good);
	free(good);
	free(text);
}
END_TEST

START_TEST(test_example_full)
{
	/* config/examples/full.conf, used in the docs, stays valid. */
	const char *root = getenv("BULKHEAD_SOURCE_ROOT");
	struct result r;
	char *path;

	ck_assert_msg(root && *root, "BULKHEAD_SOURCE_ROOT is not set");
	ck_assert_int_ne(asprintf(&path, "%s/config/examples/full.conf", root), -1);
	r = check_config(path);
	ck_assert_msg(r.status == 0, "%s: exit %d:\n%s", path, r.status, r.err);
	ck_assert_ptr_nonnull(strstr(r.out, "\n[pool solo]\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nargs = iterations=100000 amount=5 lock=yes\n"));
	result_free(&r);
	free(path);
}
END_TEST

START_TEST(test_usage)
{
	static const char *const none[] = { "check-config", NULL };
	static const char *const two[] = { "check-config", "a.conf", "b.conf", NULL };
	static const char *const option[] = { "check-config", "--bogus", "a.conf", NULL };
	static const char *const help[] = { "check-config", "--help", NULL };
	char *path = fixture("good-minimal.conf");
	const char *dashdash[] = { "check-config", "--", path, NULL };
	struct result r;

	r = run(none);
	ck_assert_int_eq(r.status, 2);
	ck_assert_str_eq(r.out, "");
	ck_assert_ptr_nonnull(strstr(r.err, "Usage: bulkhead check-config FILE"));
	result_free(&r);

	r = run(two);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "Usage: bulkhead check-config FILE"));
	result_free(&r);

	r = run(option);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "--bogus"));
	ck_assert_ptr_nonnull(strstr(r.err, "Usage: bulkhead check-config FILE"));
	result_free(&r);

	r = run(help);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.err, "");
	ck_assert_ptr_nonnull(strstr(r.out, "Usage: bulkhead check-config FILE"));
	result_free(&r);

	r = run(dashdash);
	ck_assert_int_eq(r.status, 0);
	result_free(&r);
	free(path);
}
END_TEST

static Suite *config_cli_suite(void)
{
	Suite *s = suite_create("config-cli");
	TCase *tc = tcase_create("check-config");

	tcase_add_loop_test(tc, test_bad_fixture, 0,
			    (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(tc, test_bad_many);
	tcase_add_test(tc, test_missing_and_unreadable);
	tcase_add_test(tc, test_not_regular_files);
	tcase_add_test(tc, test_write_errors);
	tcase_add_loop_test(tc, test_good_fixture, 0,
			    (int)(sizeof(good_files) / sizeof(good_files[0])));
	tcase_add_test(tc, test_good_values);
	tcase_add_test(tc, test_good_kinds);
	tcase_add_test(tc, test_plugin_probe);
	tcase_add_test(tc, test_example_full);
	tcase_add_test(tc, test_usage);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (!getenv("BULKHEAD_BIN") || !getenv("BULKHEAD_TEST_CONFIGS")) {
		fprintf(stderr, "BULKHEAD_BIN or BULKHEAD_TEST_CONFIGS not set: skipping\n");
		return 77;
	}
	sr = srunner_create(config_cli_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
