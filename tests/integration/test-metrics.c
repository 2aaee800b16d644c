/* SPDX-License-Identifier: MIT */
/*
 * Metrics (issue 15), against a real bulkheadd:
 *   - `bulkhead metrics` prints the Prometheus text: the jobs by group and state, the
 *     crashes' deaths by signal, a run-time histogram whose count is the jobs that ran, the
 *     store's commits; `promtool check metrics` (Debian's, see scripts/install-deps) accepts
 *     it, a label that needs escaping included;
 *   - `[supervisor] metrics_listen` serves the same at /metrics over HTTP (a port of its own,
 *     port 0 in the config, read from the log line), 404 elsewhere, 405 for a POST; a scraper
 *     that connects and sends nothing does not hold up another scrape or the control socket;
 *     a stop closes it all (no fd left: the daemon exits);
 *   - a bad metrics_listen is a config error (78) naming the line; an address in use is
 *     refused at the start (exit 1) with the reason.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cmdutil.h"
#include "ctlutil.h"
#include "daemonutil.h"
#include "testutil.h"

#define JOBS_MS 30000

static const char conf[] = "[supervisor]\nnode = a\"b\\c\nmetrics_listen = 127.0.0.1:0\n"
			   "[pool main]\nworkers = 2\nthreads = 2\n"
			   "[job ok]\nrun = builtin:noop\ncount = 20\n"
			   "[job boom]\nrun = builtin:segv\nmax_attempts = 1\nexpect = crashed\n";

/* The value of the series line that starts with `series` + ' ' (exactly), or -1. */
static double value_of(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

/* Starts the daemon on conf and waits for all 21 jobs to end. */
static void start_and_settle(struct daemon *d)
{
	struct conn c;
	json_object *o;

	dmn_init(d);
	dmn_write_config(d, conf);
	dmn_start(d, NULL);
	dmn_wait_ready(d);
	conn_open(d, &c);
	json_object_put(call_within(d, &c, "{\"command\":\"wait\",\"group\":\"ok\"}", JOBS_MS));
	o = call_within(d, &c, "{\"command\":\"wait\",\"group\":\"boom\"}", JOBS_MS);
	assert_ok(o);
	ck_assert(jbool(o, "all_expected"));
	json_object_put(o);
	conn_close(&c);
}

/* `promtool check metrics` on text: its verdict, or skipped without promtool. */
static void assert_promtool_accepts(const char *text)
{
	char *promtool = cmd_find_in_path("promtool"), path[] = "/tmp/bulkhead-metrics-XXXXXX";
	const char *argv[] = { "/bin/sh", "-c", NULL, NULL };
	char script[512];
	struct cmd c = { 0 };
	int fd;

	if (!promtool) {
		fprintf(stderr,
			"%s: promtool not found (scripts/install-deps puts it in "
			"/usr/local/bin): its check is skipped\n",
			tcase_name());
		return;
	}
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	snprintf(script, sizeof(script), "%s check metrics < %s", promtool, path);
	argv[2] = script;
	ck_assert_int_eq(cmd_run(argv, NULL, &c), 0);
	unlink(path);
	ck_assert_msg(cmd_exited_0(&c), "promtool check metrics: %s\n%s%s",
		      tu_describe_status(c.status), c.out, c.err);
	cmd_free(&c);
	free(promtool);
}

START_TEST(test_metrics_command)
{
	const char *argv[] = { cmd_env_required("BULKHEAD_BIN"), "--socket", NULL, "metrics",
			       NULL };
	struct daemon d;
	struct cmd c = { 0 };

	start_and_settle(&d);
	argv[2] = d.sock_path;
	ck_assert_int_eq(cmd_run(argv, NULL, &c), 0);
	ck_assert_msg(cmd_exited_0(&c), "bulkhead metrics: %s\n%s", tu_describe_status(c.status),
		      c.err);
	ck_assert_double_eq(value_of(c.out, "bulkhead_jobs{group=\"ok\",state=\"done\"}"), 20);
	ck_assert_double_eq(value_of(c.out, "bulkhead_jobs{group=\"boom\",state=\"crashed\"}"), 1);
	ck_assert_double_eq(value_of(c.out, "bulkhead_jobs{group=\"ok\",state=\"queued\"}"), 0);
	ck_assert_msg(value_of(c.out, "bulkhead_worker_deaths_total{cause=\"SIGSEGV\"}") >= 1,
		      "%.1500s", c.out);
	/* Every job whose worker reported its end is in its pool's histogram, and in its +Inf
	 * bucket: the 20 done, each once (the crash reports no end: its worker died). */
	ck_assert_double_eq(
		value_of(c.out, "bulkhead_job_run_seconds_count{pool=\"main\"}"),
		value_of(c.out, "bulkhead_job_run_seconds_bucket{pool=\"main\",le=\"+Inf\"}"));
	ck_assert_msg(value_of(c.out, "bulkhead_job_run_seconds_count{pool=\"main\"}") == 20,
		      "run_seconds_count %g",
		      value_of(c.out, "bulkhead_job_run_seconds_count{pool=\"main\"}"));
	ck_assert_double_eq(value_of(c.out, "bulkhead_pool_up{pool=\"main\"}"), 1);
	ck_assert_double_eq(value_of(c.out, "bulkhead_pool_workers_wanted{pool=\"main\"}"), 2);
	/* The store (sqlite, the daemon's default) wrote, and each write was timed. */
	ck_assert_msg(value_of(c.out, "bulkhead_store_commits_total") > 0, "%.1500s", c.out);
	ck_assert_msg(value_of(c.out, "bulkhead_store_commit_seconds_count") > 0, "%.1500s", c.out);
	/* The node name's quote and backslash, escaped. */
	ck_assert_msg(strstr(c.out, "node=\"a\\\"b\\\\c\""), "%.1500s", c.out);
	assert_promtool_accepts(c.out);
	cmd_free(&c);
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

/* The port from "metrics at http://127.0.0.1:PORT/metrics" in the daemon's stderr. */
static int metrics_port(struct daemon *d)
{
	const char *p;

	dmn_expect_stderr(d, "metrics at http://127.0.0.1:", CALL_MS);
	p = strstr(d->err, "metrics at http://127.0.0.1:");
	return atoi(p + strlen("metrics at http://127.0.0.1:"));
}

static int tcp_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
		      strerror(errno));
	return fd;
}

/* One HTTP/1.0 request; the whole response (malloc'd) once the server closes. */
static char *http(struct daemon *d, int port, const char *method, const char *path)
{
	char req[256], buf[65536];
	size_t len = 0;
	int64_t deadline = tu_now_ms() + CALL_MS;
	int fd = tcp_connect(port), n;

	n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: localhost\r\n\r\n", method, path);
	ck_assert_int_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		ck_assert_msg(tu_ms_left(deadline) > 0, "no whole response to %s %s; %s", method,
			      path, dmn_describe(d));
		dmn_poll(d, &p, 1, tu_ms_left(deadline));
		if (!p.revents)
			continue;
		r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		ck_assert_int_ge(r, 0);
		if (r == 0)
			break;
		len += (size_t)r;
		ck_assert_uint_lt(len, sizeof(buf) - 1);
	}
	close(fd);
	buf[len] = '\0';
	return strdup(buf);
}

START_TEST(test_metrics_over_http)
{
	struct daemon d;
	struct conn c;
	char *resp, *body;
	int port, stalled, base;

	start_and_settle(&d);
	port = metrics_port(&d);
	base = dmn_settled_fds(&d);

	/* A scraper that connects and says nothing: the next scrape and status go on. */
	stalled = tcp_connect(port);
	resp = http(&d, port, "GET", "/metrics");
	ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0 ||
			      strncmp(resp, "HTTP/1.0 200", 12) == 0,
		      "%.200s", resp);
	ck_assert_msg(strstr(resp, "Content-Type: text/plain; version=0.0.4"), "%.400s", resp);
	body = strstr(resp, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	body += 4;
	ck_assert_double_eq(value_of(body, "bulkhead_jobs{group=\"ok\",state=\"done\"}"), 20);
	ck_assert_double_eq(value_of(body, "bulkhead_pool_up{pool=\"main\"}"), 1);
	assert_promtool_accepts(body);
	free(resp);
	conn_open(&d, &c);
	json_object_put(call(&d, &c, "{\"command\":\"status\"}"));
	conn_close(&c);
	close(stalled);

	resp = http(&d, port, "GET", "/nope");
	ck_assert_msg(strstr(resp, " 404 "), "%.200s", resp);
	free(resp);
	resp = http(&d, port, "POST", "/metrics");
	ck_assert_msg(strstr(resp, " 405 ") && strstr(resp, "Allow: GET, HEAD"), "%.300s", resp);
	free(resp);
	/* Every connection closed: the daemon's fds as before them. */
	for (int64_t deadline = tu_now_ms() + CALL_MS; dmn_count_fds(d.pid) != base;) {
		ck_assert_msg(tu_ms_left(deadline) > 0, "%d fds, %d before; %s",
			      dmn_count_fds(d.pid), base, dmn_describe(&d));
		dmn_pump(&d, 20);
	}
	dmn_stop(&d);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

START_TEST(test_metrics_listen_errors)
{
	struct daemon d;
	char text[256];
	int fd, port;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);

	dmn_init(&d);
	dmn_write_config(&d, "[supervisor]\nmetrics_listen = localhost:9464\n");
	dmn_start(&d, NULL);
	dmn_expect_exit(&d, 78, DMN_EXIT_MS);
	ck_assert_msg(strstr(d.err, "test.conf:2: [supervisor] metrics_listen = localhost:9464: "
				    "expected ADDRESS:PORT"),
		      "%s", dmn_describe(&d));
	dmn_free(&d);

	/* A port someone else holds. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	dmn_init(&d);
	snprintf(text, sizeof(text),
		 "[supervisor]\nmetrics_listen = 127.0.0.1:%d\n[pool main]\nworkers = 1\n", port);
	dmn_write_config(&d, text);
	dmn_start(&d, NULL);
	dmn_expect_exit(&d, 1, DMN_EXIT_MS);
	snprintf(text, sizeof(text), "metrics_listen = 127.0.0.1:%d: cannot listen", port);
	ck_assert_msg(strstr(d.err, text), "%s", dmn_describe(&d));
	ck_assert_int_eq(dmn_count_our_workers(), 0);
	close(fd);
	dmn_assert_aftermath();
	dmn_free(&d);
}
END_TEST

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, dmn_setup, NULL);
	tcase_add_test(tc, test_metrics_command);
	tcase_add_test(tc, test_metrics_over_http);
	tcase_add_test(tc, test_metrics_listen_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return dmn_run(metrics_suite(), "metrics");
}
