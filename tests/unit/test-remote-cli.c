/* SPDX-License-Identifier: MIT */
/*
 * The remote CLI (cli/ libremote) on its own: this executable links libremote and libcommon
 * and no supervisor code, so it is also the proof that `status`, `jobs`, `submit`, `top` and
 * the rest link none (a call into libmaster from them fails this build). The commands run
 * against a socket that is not there and against a one-shot server thread speaking the
 * control protocol (docs/control-protocol.md). Each test runs in its own forked process (Check).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/control-proto.h"

#include "capture.h"

/* Every remote command refuses an unknown option with its usage: exit 2, nothing sent. */
START_TEST(test_every_command_refuses_unknown_option)
{
	struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
#define CMD_ENTRY(id, name, kind, usage, synopsis, help, output) { name, cmd_##id },
		CONTROL_COMMANDS(CMD_ENTRY)
#undef CMD_ENTRY
	};
	int fd = capture_stderr();

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char name[64], opt[] = "--no-such-option", sock[] = "--socket",
			       path[] = "/nonexistent/control.sock";
		char *argv[] = { name, opt, sock, path, NULL };
		char want[96];

		snprintf(name, sizeof(name), "%s", cmds[i].name);
		ck_assert_int_eq(ftruncate(fd, 0), 0);
		ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
		ck_assert_msg(cmds[i].fn(4, argv) == EXIT_USAGE, "%s --no-such-option", cmds[i].name);
		snprintf(want, sizeof(want), "Usage: bulkhead %s", cmds[i].name);
		ck_assert_msg(strstr(captured(fd), want), "%s: no usage in: %s", cmds[i].name,
			      captured(fd));
	}
}
END_TEST

/* A socket that is not there: exit 1, and the message names the socket. */
START_TEST(test_missing_socket_is_named)
{
	int fd = capture_stderr();
	char name[] = "status", sock[] = "--socket", path[] = "/nonexistent/bulkhead/control.sock";
	char *argv[] = { name, sock, path, NULL };

	ck_assert_int_eq(cmd_status(3, argv), EXIT_CONTROL_FAILED);
	ck_assert_ptr_nonnull(strstr(captured(fd), "/nonexistent/bulkhead/control.sock"));
}
END_TEST

/* A one-shot control server: accepts one connection, reads one request line, answers. */
struct server {
	int listen_fd;
	char path[108];
	const char *reply;
	char request[4096];
};

static void *serve_one(void *arg)
{
	struct server *s = arg;
	int fd = accept(s->listen_fd, NULL, NULL);
	size_t n = 0;

	if (fd < 0)
		return NULL;
	while (n < sizeof(s->request) - 1) {
		ssize_t k = read(fd, s->request + n, sizeof(s->request) - 1 - n);

		if (k <= 0)
			break;
		n += (size_t)k;
		if (memchr(s->request, '\n', n))
			break;
	}
	s->request[n] = '\0';
	if (write(fd, s->reply, strlen(s->reply)) < 0)
		s->request[0] = '\0';
	close(fd);
	return NULL;
}

static void server_start(struct server *s, const char *reply, pthread_t *t)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/bulkhead-remote-XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(s->path, sizeof(s->path), "%s/control.sock", dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->path);
	s->reply = reply;
	s->request[0] = '\0';
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s->listen_fd, 0);
	ck_assert_int_eq(bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(s->listen_fd, 1), 0);
	ck_assert_int_eq(pthread_create(t, NULL, serve_one, s), 0);
}

static void server_stop(struct server *s, pthread_t t)
{
	char *dir = strdup(s->path);

	ck_assert_int_eq(pthread_join(t, NULL), 0);
	close(s->listen_fd);
	unlink(s->path);
	*strrchr(dir, '/') = '\0';
	rmdir(dir);
	free(dir);
}

/* reload sends {"command":"reload"} and says "reloaded" when the daemon answers ok. */
START_TEST(test_reload_round_trip)
{
	struct server s;
	pthread_t t;
	char name[] = "reload", sock[] = "--socket";
	char *argv[] = { name, sock, NULL, NULL };
	FILE *out = tmpfile();
	char line[64] = "";

	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(dup2(fileno(out), STDOUT_FILENO), STDOUT_FILENO);
	server_start(&s, "{\"ok\":true}\n", &t);
	argv[2] = s.path;
	ck_assert_int_eq(cmd_reload(3, argv), 0);
	fflush(stdout);
	server_stop(&s, t);
	ck_assert_ptr_nonnull(strstr(s.request, "\"command\":\"reload\""));
	rewind(out);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), out));
	ck_assert_str_eq(line, "reloaded\n");
	fclose(out);
}
END_TEST

/* A daemon speaking another protocol version is refused: exit 1, both versions named. */
START_TEST(test_other_protocol_refused)
{
	struct server s;
	pthread_t t;
	char reply[128], want[128];
	char name[] = "status", sock[] = "--socket";
	char *argv[] = { name, sock, NULL, NULL };
	int fd = capture_stderr();

	snprintf(reply, sizeof(reply), "{\"ok\":true,\"version\":\"9.0\",\"protocol\":%d}\n",
		 CONTROL_PROTOCOL_VERSION + 1);
	server_start(&s, reply, &t);
	argv[2] = s.path;
	ck_assert_int_eq(cmd_status(3, argv), EXIT_CONTROL_FAILED);
	server_stop(&s, t);
	snprintf(want, sizeof(want), "speaks control protocol %d, this bulkhead speaks %d",
		 CONTROL_PROTOCOL_VERSION + 1, CONTROL_PROTOCOL_VERSION);
	ck_assert_msg(strstr(captured(fd), want), "stderr: %s", captured(fd));
}
END_TEST

static Suite *remote_cli_suite(void)
{
	Suite *s = suite_create("remote-cli");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_every_command_refuses_unknown_option);
	tcase_add_test(tc, test_missing_socket_is_named);
	tcase_add_test(tc, test_reload_round_trip);
	tcase_add_test(tc, test_other_protocol_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(remote_cli_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
