/* SPDX-License-Identifier: MIT */
/*
 * The spawner (comm "bulkhead-spawn"): a small single-threaded process the worker forks
 * early in its start-up (privileges dropped and signals reset, before the crash handlers and
 * the job threads: worker.c), which forks exec: trampolines without an exec. An exec of
 * bulkhead-worker costs about 0.6 ms here, most of what a command cost the worker; a fork of
 * this small process a tenth of that (bench/README.md, "Issue 17: commands through a
 * spawner").
 *
 * A job thread sends it one request (struct request, then the strings: argv, envp, the
 * directory) with the trampoline's fds by SCM_RIGHTS: the command's stdout and stderr and
 * the report pipe's write end. The spawner forks with the raw clone syscall and
 * CLONE_PARENT | SIGCHLD (as the fork server does), so the trampoline is the worker's own
 * child exactly as a posix_spawn'ed one: the job thread waits for it, reaps it and signals
 * it as before (exec.c). The child sets itself up as the spawn did (its own process group;
 * /dev/null, stdout, stderr and the report pipe on 0-3 and no other fd; every signal at its
 * default, exec_trampoline_signals() and SIGPIPE blocked; the command's environment) and
 * runs the trampoline (exec-trampoline.c) directly. Its first report comes after
 * EXEC_REPORT_FORKED with its own pid, in the same write: the job thread learns the
 * trampoline from the report pipe, not from the spawner, so a spawner killed after the fork
 * leaves no trampoline unknown. The request also carries the trampoline's end of a stream
 * socketpair whose other end the job thread keeps: the trampoline stays after its command as
 * that thread's runner (runner_next()), reading the thread's next requests (the same
 * request, with that command's out, err and report fds) on RUNNER_FD, and exits at its EOF
 * (docs/decisions.md "A runner per job thread"). The spawner writes the new trampoline's pid
 * on that socket too (to the job thread's end), so a trampoline killed before its first
 * report is still reaped. A fork that
 * fails is reported by the spawner on the same pipe (EXEC_REPORT_FAILED). The spawner never
 * writes to its socket: a job thread waits for nothing but the report pipe.
 *
 * It dies with the worker (PR_SET_PDEATHSIG SIGKILL), holds no fd of the worker's but its
 * stdin/stdout/stderr (not the master socket), installs no crash handler, and gets the
 * worker's RLIMIT_AS (spawner_set_rlimit_as()), so commands inherit it as before. The
 * master moves it with the worker into the slot's cgroup (daemon/cgroup.c), so trampolines
 * are forked there. If it is gone (killed from outside), job threads see an EOF on their
 * report pipe with no report: it is reaped, said once, and trampolines are posix_spawn'ed
 * as `--exec-command` from then on (exec-start.c); no job fails for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "exec-trampoline.h"
#include "raw-clone.h"
#include "spawner.h"

#define SPAWNER_MAGIC 0x42485350u /* "BHSP" */
#define SPAWNER_FD 3 /* the spawner's socket, where the worker has the master's */
#define SPAWNER_FDS 4 /* out, err, report, and the runner's socket */
#define RUNNER_FD 4 /* a runner's socket, to the job thread it runs commands for */
#define RUNNER_FDS 3 /* out, err, report */
#define SPAWNER_REQUEST_MAX (16u << 20) /* bytes of strings: beyond, posix_spawn says E2BIG */

struct request {
	uint32_t magic;
	uint32_t size; /* bytes of strings that follow, each NUL-terminated */
	uint32_t argc;
	uint32_t envc;
	int32_t nice;
	uint8_t has_nice;
	uint8_t has_chdir; /* the last string is the directory */
	uint8_t pad[2];
};

extern char **environ;

/* --- the spawner process --- */

static int read_full(int fd, void *buf, size_t n)
{
	char *p = buf;

	while (n > 0) {
		ssize_t k = read(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/*
 * Reads one request's header and its nfds fds from sock. Returns false at EOF or on a
 * malformed request.
 */
static bool read_request(int sock, struct request *req, int *fds, int nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * SPAWNER_FDS)];
	} c;
	struct iovec iov = { .iov_base = req, .iov_len = sizeof(*req) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
			     .msg_controllen = sizeof(c.buf) };
	struct cmsghdr *cm;
	ssize_t n;

	mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	cm = CMSG_FIRSTHDR(&mh);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len != CMSG_LEN(sizeof(int) * (size_t)nfds)) {
		/* fds we did not ask for: closed, not left open in here */
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
			close(((int *)CMSG_DATA(cm))[i]);
		return false;
	}
	if (n != (ssize_t)sizeof(*req) || (mh.msg_flags & MSG_CTRUNC) || !cm ||
	    cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
		return false;
	memcpy(fds, CMSG_DATA(cm), sizeof(int) * (size_t)nfds);
	return req->magic == SPAWNER_MAGIC && req->size <= SPAWNER_REQUEST_MAX &&
	       req->argc > 0 && req->argc <= req->size && req->envc <= req->size;
}

/* The strings of a request into j (argv and envp malloc'd, pointing into buf). */
static bool parse_strings(const struct request *req, char *buf, struct spawner_job *j)
{
	size_t n = req->argc + req->envc + (req->has_chdir ? 1 : 0), k = 0;
	char **v = malloc((req->argc + req->envc + 2) * sizeof(*v)), *p = buf;
	char *end = buf + req->size;

	if (!v)
		return false;
	for (; k < n && p < end; k++) {
		char *z = memchr(p, '\0', (size_t)(end - p));

		if (!z)
			break;
		if (k < req->argc)
			v[k] = p;
		else if (k < req->argc + req->envc)
			v[k + 1] = p;
		else
			j->chdir = p;
		p = z + 1;
	}
	if (k != n || p != end) {
		free(v);
		return false;
	}
	v[req->argc] = NULL;
	v[req->argc + req->envc + 1] = NULL;
	j->argv = v;
	j->envp = v + req->argc + 1;
	j->has_nice = req->has_nice != 0;
	j->nice = req->nice;
	return true;
}

/* A runner's state between its commands: the buffer the current request's strings are in. */
struct runner {
	struct request req;
	struct spawner_job j;
	char *buf;
	size_t cap;
};

/* Reads the strings of a request whose header is in r->req into r->buf and r->j. */
static bool read_strings(int sock, struct runner *r)
{
	if (r->req.size + 1 > r->cap) {
		free(r->buf);
		r->cap = r->req.size + 1;
		r->buf = malloc(r->cap);
		if (!r->buf)
			r->cap = 0;
	}
	free(r->j.argv);
	r->j = (struct spawner_job){ 0 };
	return r->buf && read_full(sock, r->buf, r->req.size) == 0 &&
	       parse_strings(&r->req, r->buf, &r->j);
}

/*
 * exec_trampoline_next_fn of a runner: the last command's fds go (its output pipe's reader
 * sees our end closed), then it waits for its job thread's next request, the death signal
 * unblocked (its default: the worker is gone, so are we). See spawner_send_runner().
 */
static bool runner_next(void *ctx, struct exec_trampoline_args *a)
{
	struct runner *r = ctx;
	struct pollfd p = { .fd = RUNNER_FD, .events = POLLIN };
	int fds[RUNNER_FDS];
	sigset_t mask;

	for (int fd = 1; fd <= EXEC_TRAMPOLINE_FD; fd++)
		(void)dup2(0, fd); /* /dev/null, and 3 stays taken: received fds come above 4 */
	(void)sigprocmask(SIG_SETMASK, NULL, &mask);
	sigdelset(&mask, EXEC_TRAMPOLINE_DEATHSIG);
	while (ppoll(&p, 1, NULL, &mask) < 0 && errno == EINTR)
		;
	if (!read_request(RUNNER_FD, &r->req, fds, RUNNER_FDS))
		return false; /* EOF: the job thread is done with us */
	for (int i = 0; i < RUNNER_FDS; i++) {
		if (dup2(fds[i], i + 1) < 0)
			return false;
		close(fds[i]);
	}
	if (!read_strings(RUNNER_FD, r))
		return false;
	environ = r->j.envp;
	*a = (struct exec_trampoline_args){ .worker = a->worker, .chdir = r->j.chdir,
					    .has_nice = r->j.has_nice, .nice = r->j.nice,
					    .argv = r->j.argv };
	return true;
}

/*
 * In the new trampoline: set up as the spawn did (and the runner's socket on RUNNER_FD),
 * then the trampoline itself, which runs this command and then, as a runner, the next ones
 * its job thread sends.
 */
static _Noreturn void trampoline_child(struct runner *r, int null_fd, pid_t worker)
{
	const struct spawner_job *j = &r->j;
	int src[5] = { null_fd, j->out, j->err, j->report, j->runner };
	struct exec_trampoline_args a = { .worker = worker, .chdir = j->chdir,
					  .has_nice = j->has_nice, .nice = j->nice,
					  .argv = j->argv, .forked = true };
	sigset_t mask;

	(void)setpgid(0, 0);
	for (int i = 0; i < 5; i++)
		if (src[i] < 5 && (src[i] = fcntl(src[i], F_DUPFD, 5)) < 0)
			_exit(127);
	for (int i = 0; i < 5; i++)
		if (dup3(src[i], i, i == RUNNER_FD ? O_CLOEXEC : 0) < 0)
			_exit(127);
	(void)close_range(5, ~0U, 0);
	environ = j->envp;
	exec_trampoline_signals(&mask);
	sigaddset(&mask, SIGPIPE);
	(void)sigprocmask(SIG_SETMASK, &mask, NULL);
	(void)signal(SIGPIPE, SIG_DFL);
	exec_trampoline_run(&a, runner_next, r);
}

static _Noreturn void serve(pid_t worker, pid_t *slot, int null_fd)
{
	struct runner r = { 0 };
	sigset_t all, none;

	sigfillset(&all);
	sigemptyset(&none);
	for (;;) {
		int fds[SPAWNER_FDS];
		long pid;

		if (!read_request(SPAWNER_FD, &r.req, fds, SPAWNER_FDS))
			_exit(0); /* EOF: the worker is going; else it sent nonsense */
		if (!read_strings(SPAWNER_FD, &r))
			_exit(0);
		r.j.out = fds[0];
		r.j.err = fds[1];
		r.j.report = fds[2];
		r.j.runner = fds[3];
		/* All blocked across the fork, as posix_spawn does: none reaches the child early. */
		(void)sigprocmask(SIG_SETMASK, &all, NULL);
		pid = raw_clone(CLONE_PARENT | SIGCHLD, slot);
		if (pid == 0)
			trampoline_child(&r, null_fd, worker);
		if (pid < 0) {
			struct exec_report rep = { .kind = EXEC_REPORT_FAILED, .value = errno };

			(void)!write(r.j.report, &rep, sizeof(rep));
		} else {
			/*
			 * Its pid, to the job thread's end of its runner socket too, before our
			 * copy of the report pipe closes: should it be killed before its first
			 * report, the thread still knows whom to reap (exec-start.c).
			 */
			int32_t p32 = (int32_t)pid;

			(void)!send(r.j.runner, &p32, sizeof(p32), MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		(void)sigprocmask(SIG_SETMASK, &none, NULL);
		for (int i = 0; i < SPAWNER_FDS; i++)
			close(fds[i]);
	}
}

static _Noreturn void spawner_main(int sock, pid_t worker)
{
	pid_t *slot;
	int null_fd;

	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != worker)
		_exit(0);
	(void)prctl(PR_SET_NAME, "bulkhead-spawn");
	/* Over the master's socket: the spawner holds none of the worker's fds. */
	if (dup3(sock, SPAWNER_FD, O_CLOEXEC) < 0)
		_exit(0);
	(void)close_range(SPAWNER_FD + 1, ~0U, 0);
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	/* Every signal at its default but SIGPIPE (a report pipe whose reader is gone). */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)signal(sig, sig == SIGPIPE ? SIG_IGN : SIG_DFL);
	slot = raw_clone_tid_slot();
	if (null_fd < 0 || !slot) {
		log_warning("the spawner cannot fork here (%s); commands are started with exec",
			    null_fd < 0 ? strerror(errno) : "thread id slot not found");
		_exit(0);
	}
	serve(worker, slot, null_fd);
}

/* --- the worker's side --- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int sock = -1; /* under lock */
static pid_t pid; /* under lock */

void spawner_start(void)
{
	pid_t worker = getpid(), p;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		log_warning("cannot start the spawner: socketpair: %s", strerror(errno));
		return;
	}
	p = fork();
	if (p == 0) {
		close(sv[0]);
		spawner_main(sv[1], worker);
	}
	close(sv[1]);
	if (p < 0) {
		log_warning("cannot start the spawner: fork: %s", strerror(errno));
		close(sv[0]);
		return;
	}
	sock = sv[0];
	pid = p;
}

pid_t spawner_pid(void)
{
	pid_t p;

	pthread_mutex_lock(&lock);
	p = sock >= 0 ? pid : 0;
	pthread_mutex_unlock(&lock);
	return p;
}

int spawner_set_rlimit_as(const struct rlimit *rl)
{
	pid_t p = spawner_pid();

	return p > 0 && prlimit(p, RLIMIT_AS, rl, NULL) < 0 ? -errno : 0;
}

/* The spawner is gone: reaped, said once. Under lock. */
static void gone(void)
{
	if (sock < 0)
		return;
	close(sock);
	sock = -1;
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	log_warning("the spawner (pid %d) is gone: commands are started with exec from now on",
		    (int)pid);
}

void spawner_stop(void)
{
	pthread_mutex_lock(&lock);
	if (sock >= 0) {
		close(sock); /* its EOF: it exits */
		sock = -1;
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	pthread_mutex_unlock(&lock);
}

bool spawner_lost(void)
{
	struct pollfd p;
	bool lost;

	pthread_mutex_lock(&lock);
	/*
	 * Its socket closed too (it closes before the report pipes it held when it dies). If
	 * not, a trampoline it forked died before its first report: the spawner is fine.
	 */
	p = (struct pollfd){ .fd = sock, .events = POLLIN };
	if (sock >= 0 && poll(&p, 1, 0) == 1)
		gone();
	lost = sock < 0;
	pthread_mutex_unlock(&lock);
	return lost;
}

static int send_request(int to, const struct request *req, const int *fds, int nfds,
			const char *buf)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * SPAWNER_FDS)];
	} c;
	struct iovec iov[2] = { { .iov_base = (void *)req, .iov_len = sizeof(*req) },
				{ .iov_base = (void *)buf, .iov_len = req->size } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = c.buf,
			     .msg_controllen = sizeof(c.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	size_t left = sizeof(*req) + req->size;
	ssize_t n;

	memset(c.buf, 0, sizeof(c.buf));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	while ((n = sendmsg(to, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return -errno;
	/* The rest of the strings (a stream: the fds went with the first byte). */
	for (left -= (size_t)n; left > 0; left -= (size_t)n) {
		size_t done = sizeof(*req) + req->size - left;

		n = send(to, buf + done - sizeof(*req), left, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
	}
	return 0;
}

static size_t strings_size(char **v, uint32_t *count)
{
	size_t n = 0;

	*count = 0;
	for (; v && *v; v++, (*count)++)
		n += strlen(*v) + 1;
	return n;
}

static char *put_strings(char *p, char **v)
{
	for (; v && *v; v++) {
		size_t len = strlen(*v) + 1;

		memcpy(p, *v, len);
		p += len;
	}
	return p;
}

/* The request for j: its header in *req, its strings in *ret (malloc'd). */
static int build_request(const struct spawner_job *j, struct request *req, char **ret)
{
	size_t size;
	char *buf, *p;

	*req = (struct request){ .magic = SPAWNER_MAGIC, .nice = j->nice, .has_nice = j->has_nice,
				 .has_chdir = j->chdir != NULL };
	size = strings_size(j->argv, &req->argc) + strings_size(j->envp, &req->envc);
	if (j->chdir)
		size += strlen(j->chdir) + 1;
	if (size > SPAWNER_REQUEST_MAX)
		return -E2BIG;
	req->size = (uint32_t)size;
	buf = malloc(size ? size : 1);
	if (!buf)
		return -ENOMEM;
	p = put_strings(put_strings(buf, j->argv), j->envp);
	if (j->chdir)
		memcpy(p, j->chdir, strlen(j->chdir) + 1);
	*ret = buf;
	return 0;
}

int spawner_send(const struct spawner_job *j)
{
	int fds[SPAWNER_FDS] = { j->out, j->err, j->report, j->runner }, r;
	struct request req;
	char *buf;

	r = build_request(j, &req, &buf);
	if (r < 0)
		return r;
	pthread_mutex_lock(&lock);
	if (sock < 0)
		r = -ENOTCONN;
	else if ((r = send_request(sock, &req, fds, SPAWNER_FDS, buf)) < 0)
		gone();
	pthread_mutex_unlock(&lock);
	free(buf);
	return r < 0 ? -ENOTCONN : 0;
}

int spawner_send_runner(int runner, const struct spawner_job *j)
{
	int fds[RUNNER_FDS] = { j->out, j->err, j->report }, r;
	struct request req;
	char *buf;

	r = build_request(j, &req, &buf);
	if (r < 0)
		return r;
	r = send_request(runner, &req, fds, RUNNER_FDS, buf);
	free(buf);
	return r < 0 ? -EPIPE : 0; /* a request half sent is no request: the runner is done */
}
