/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the integration tests (see testutil.h). Everything waits on a deadline
 * for a real event (a pidfd, a readable fd): no sleeps. The tests run single-threaded in
 * Check's forked children, so fork() here is safe.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/protocol.h"
#include "common/sched-slice.h"
#include "testutil.h"

#define SPAWN_ENV_MAX 4096 /* variables in the child's environment */
#define HIGH_FD 100 /* where fds are parked while the child's 0..3 are set up */

extern char **environ;

int64_t tu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tu_ms_left(int64_t deadline)
{
	int64_t left = deadline - tu_now_ms();

	return left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

static bool env_overridden(const char *var, const char *const extra[])
{
	size_t len = strcspn(var, "=");

	for (size_t i = 0; extra && extra[i]; i++)
		if (strncmp(extra[i], var, len) == 0 && extra[i][len] == '=')
			return true;
	return false;
}

static char **build_env(const char *const extra[])
{
	char **env = calloc(SPAWN_ENV_MAX + 1, sizeof(*env));
	size_t n = 0;

	if (!env)
		return NULL;
	for (char **e = environ; *e && n < SPAWN_ENV_MAX; e++)
		if (!env_overridden(*e, extra))
			env[n++] = *e;
	for (size_t i = 0; extra && extra[i] && n < SPAWN_ENV_MAX; i++)
		env[n++] = (char *)extra[i];
	return env;
}

static int park(int fd)
{
	return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, HIGH_FD);
}

static _Noreturn void spawn_child(const char *const argv[], char **env, int fd3, int out, int err,
				  int report)
{
	sigset_t none;
	int devnull, e;

	/* Park everything high first, so no dup2 below clobbers a source. */
	report = park(report);
	fd3 = park(fd3);
	out = park(out);
	err = park(err);
	devnull = park(open("/dev/null", O_RDWR | O_CLOEXEC));

	setpgid(0, 0);
	/* A test that dies (a Check timeout) takes the program under test with it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (devnull < 0 || dup2(devnull, 0) < 0 || (out >= 0 && dup2(out, 1) < 0) ||
	    (err >= 0 && dup2(err, 2) < 0) || (fd3 >= 0 && dup2(fd3, 3) < 0))
		goto fail;
	if (close_range(fd3 >= 0 ? 4 : 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		goto fail;
	if (fd3 < 0)
		close(3);
	execve(argv[0], (char *const *)argv, env);
fail:
	e = errno;
	(void)!write(report, &e, sizeof(e));
	_exit(127);
}

int tu_spawn(const char *const argv[], const char *const envp_extra[], int fd3, int *ret_stdout_fd,
	     int *ret_stderr_fd, pid_t *ret_pid)
{
	int out[2] = { -1, -1 }, err[2] = { -1, -1 }, report[2] = { -1, -1 };
	char **env = NULL;
	ssize_t n;
	pid_t pid;
	int e, r;

	env = build_env(envp_extra);
	if (!env)
		return -ENOMEM;
	if (pipe2(report, O_CLOEXEC) < 0 || (ret_stdout_fd && pipe2(out, O_CLOEXEC) < 0) ||
	    (ret_stderr_fd && pipe2(err, O_CLOEXEC) < 0)) {
		r = -errno;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto out;
	}
	if (pid == 0)
		spawn_child(argv, env, fd3, out[1], err[1], report[1]);

	close(report[1]);
	report[1] = -1;
	do
		n = read(report[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	if (n == sizeof(e)) {
		waitpid(pid, NULL, 0);
		r = -e;
		goto out;
	}
	if (ret_stdout_fd) {
		*ret_stdout_fd = out[0];
		out[0] = -1;
	}
	if (ret_stderr_fd) {
		*ret_stderr_fd = err[0];
		err[0] = -1;
	}
	*ret_pid = pid;
	r = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
		if (report[i] >= 0)
			close(report[i]);
	}
	free(env);
	return r;
}

int tu_wait_exit(pid_t pid, int timeout_ms, int *ret_status)
{
	int64_t deadline = tu_now_ms() + (timeout_ms < 0 ? INT32_MAX : timeout_ms);
	int pidfd, status, r;

	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	for (;;) {
		struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
		pid_t w;

		w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			r = 0;
			if (ret_status)
				*ret_status = status;
			break;
		}
		if (w < 0) {
			r = -errno;
			break;
		}
		r = poll(&pfd, 1, tu_ms_left(deadline));
		if (r < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		if (r == 0) {
			r = -ETIMEDOUT;
			break;
		}
	}
	close(pidfd);
	return r;
}

int tu_kill_wait(pid_t pid)
{
	if (kill(pid, SIGKILL) < 0 && errno != ESRCH)
		return -errno;
	return tu_wait_exit(pid, 30000, NULL);
}

int tu_proc_stat(pid_t pid, char *comm, size_t comm_size, char *ret_state, pid_t *ret_ppid)
{
	char path[64], buf[512], *open_paren, *close_paren;
	int fd, ppid;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	open_paren = strchr(buf, '(');
	close_paren = strrchr(buf, ')');
	if (!open_paren || !close_paren || close_paren < open_paren)
		return -EIO;
	if (comm) {
		size_t len = (size_t)(close_paren - open_paren - 1);

		if (len >= comm_size)
			len = comm_size - 1;
		memcpy(comm, open_paren + 1, len);
		comm[len] = '\0';
	}
	if (sscanf(close_paren + 1, " %c %d", ret_state, &ppid) != 2)
		return -EIO;
	if (ret_ppid)
		*ret_ppid = ppid;
	return 0;
}

bool tu_process_alive(pid_t pid)
{
	char state;

	if (tu_proc_stat(pid, NULL, 0, &state, NULL) < 0)
		return false;
	return state != 'Z' && state != 'X';
}

const char *tu_describe_status(int status)
{
	static char buf[96];

	if (WIFEXITED(status))
		snprintf(buf, sizeof(buf), "exited %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, sizeof(buf), "killed by SIG%s%s",
			 sigabbrev_np(WTERMSIG(status)) ?: "?",
			 WCOREDUMP(status) ? " (core dumped)" : "");
	else
		snprintf(buf, sizeof(buf), "wait status 0x%x", status);
	return buf;
}

char *tu_read_all(int fd, int timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;
	size_t len = 0, size = 4096;
	char *buf = malloc(size);

	if (!buf)
		return NULL;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int r;

		r = poll(&pfd, 1, tu_ms_left(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(buf);
			errno = r == 0 ? ETIMEDOUT : errno;
			return NULL;
		}
		if (len + 1 >= size) {
			char *b = realloc(buf, size * 2);

			if (!b) {
				free(buf);
				return NULL;
			}
			buf = b;
			size *= 2;
		}
		n = read(fd, buf + len, size - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

int tu_mkdtemp(char **ret)
{
	const char *tmp = getenv("TMPDIR");
	char *path;

	if (asprintf(&path, "%s/bulkhead-test-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0)
		return -ENOMEM;
	if (!mkdtemp(path)) {
		int r = -errno;

		free(path);
		return r;
	}
	*ret = path;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int tu_rm_rf(const char *path)
{
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return errno == ENOENT ? 0 : -errno;
	return 0;
}

int tu_write_file(const char *path, const char *content)
{
	size_t len = strlen(content), done = 0;
	int fd, r = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (done < len) {
		ssize_t n = write(fd, content + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		done += (size_t)n;
	}
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

char *tu_read_file(const char *path)
{
	char *buf;
	int fd, e;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	/* A regular file or a /proc file: read to EOF (never blocks). */
	buf = tu_read_all(fd, INT32_MAX);
	e = errno;
	close(fd);
	errno = e;
	return buf;
}

/* Calls fn for every process in /proc; stops early if fn returns non-zero. */
static int for_each_process(int (*fn)(pid_t pid, void *userdata), void *userdata)
{
	struct dirent *de;
	DIR *d;

	d = opendir("/proc");
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end != '\0' || pid <= 0)
			continue;
		if (fn((pid_t)pid, userdata))
			break;
	}
	closedir(d);
	return 0;
}

struct count_named {
	const char *comm;
	int count;
};

static int count_named_one(pid_t pid, void *userdata)
{
	struct count_named *c = userdata;
	char comm[64], state;

	if (tu_proc_stat(pid, comm, sizeof(comm), &state, NULL) == 0 && strcmp(comm, c->comm) == 0 &&
	    state != 'Z' && state != 'X')
		c->count++;
	return 0;
}

int tu_count_processes_named(const char *comm)
{
	struct count_named c = { .comm = comm };
	int r = for_each_process(count_named_one, &c);

	return r < 0 ? r : c.count;
}

struct count_workers {
	pid_t master;
	int count;
};

static int count_workers_one(pid_t pid, void *userdata)
{
	struct count_workers *c = userdata;
	char path[64], comm[64], state, cmd[4096], want[32];
	ssize_t n;
	pid_t ppid;
	int fd;

	if (tu_proc_stat(pid, comm, sizeof(comm), &state, &ppid) < 0 || state == 'Z' ||
	    strcmp(comm, "bulkhead-worker") != 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	cmd[n] = '\0'; /* argv is NUL-separated; the last one is terminated too */
	snprintf(want, sizeof(want), "%d", (int)c->master);
	for (char *a = cmd; a < cmd + n; a += strlen(a) + 1) {
		char *next = a + strlen(a) + 1;

		if (strcmp(a, "--master-pid") == 0 && next < cmd + n && strcmp(next, want) == 0)
			c->count++;
	}
	return 0;
}

int tu_count_workers_of(pid_t master)
{
	struct count_workers c = { .master = master };
	int r = for_each_process(count_workers_one, &c);

	return r < 0 ? r : c.count;
}

static int count_zombie_one(pid_t pid, void *userdata)
{
	int *count = userdata;
	char state;
	pid_t ppid;

	if (tu_proc_stat(pid, NULL, 0, &state, &ppid) == 0 && ppid == getpid() && state == 'Z')
		(*count)++;
	return 0;
}

int tu_count_zombie_children(void)
{
	int count = 0;
	int r = for_each_process(count_zombie_one, &count);

	return r < 0 ? r : count;
}

int tu_count_open_fds(void)
{
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir("/proc/self/fd");
	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

int tu_recv_frame(int fd, void *buf, int timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int r;

		r = poll(&pfd, 1, tu_ms_left(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		n = recv(fd, buf, BH_FRAME_MAX, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n > (ssize_t)BH_FRAME_MAX)
			return -EMSGSIZE;
		return (int)n;
	}
}

int tu_send_frame(int fd, const void *buf, size_t len)
{
	for (;;) {
		if (send(fd, buf, len, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

int tu_send_spec(int fd, uint32_t id, const char *run, const char *args)
{
	static uint8_t buf[BH_FRAME_MAX];
	size_t n = bh_encode_spec(buf, sizeof(buf),
				  &(struct bh_spec){ .id = id, .run = run, .args = args });

	if (n == 0)
		return -EINVAL;
	return tu_send_frame(fd, buf, n);
}

int tu_send_stop(int fd)
{
	uint8_t buf[64];

	return tu_send_frame(fd, buf, bh_encode_stop(buf, sizeof(buf)));
}

int tu_send_assign_range(int fd, uint64_t first_id, size_t n, uint32_t spec_id)
{
	static uint8_t buf[BH_FRAME_MAX];
	struct bh_batch b;
	size_t i = 0;

	while (i < n) {
		int r;

		bh_batch_init(&b, buf, sizeof(buf), BH_FRAME_ASSIGN);
		while (i < n && bh_batch_add_assign(&b, first_id + i, spec_id, 0))
			i++;
		r = tu_send_frame(fd, buf, bh_batch_finish(&b));
		if (r < 0)
			return r;
	}
	return 0;
}

/* A fork server has a worker's name from its exec to its prctl(PR_SET_NAME): its argv says. */
static bool is_fork_server(pid_t pid)
{
	char path[64], args[64] = { 0 };
	bool yes = false;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (read(fd, args, sizeof(args) - 1) > 0) {
		size_t first = strlen(args);

		yes = first + 1 < sizeof(args) && strcmp(args + first + 1, "--zygote") == 0;
	}
	close(fd);
	return yes;
}

int tu_find_workers(pid_t parent, pid_t *pids, int max)
{
	int n = tu_find_children(parent, "bulkhead-worker", pids, max), k = 0;

	for (int i = 0; i < n; i++)
		if (!is_fork_server(pids[i]))
			pids[k++] = pids[i];
	return n < 0 ? n : k;
}

int tu_find_children(pid_t parent, const char *want, pid_t *pids, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)) && n < max) {
		pid_t pid = atoi(e->d_name), ppid;
		char comm[64], state;

		if (pid > 0 && tu_proc_stat(pid, comm, sizeof(comm), &state, &ppid) == 0 &&
		    strcmp(comm, want) == 0 && state != 'Z' && state != 'X' && ppid == parent)
			pids[n++] = pid;
	}
	closedir(d);
	for (int i = 1; i < n; i++)
		for (int k = i; k > 0 && pids[k - 1] > pids[k]; k--) {
			pid_t t = pids[k];

			pids[k] = pids[k - 1];
			pids[k - 1] = t;
		}
	return n;
}

int tu_children_any(pid_t parent, pid_t *pids, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		pid_t pid = atoi(e->d_name), ppid;
		char state;

		if (pid > 0 && tu_proc_stat(pid, NULL, 0, &state, &ppid) == 0 && ppid == parent) {
			if (pids && n < max)
				pids[n] = pid;
			n++;
		}
	}
	closedir(d);
	return n;
}

pid_t tu_find_spawner(pid_t worker, int timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;
	pid_t p[4];

	for (;;) {
		int n = tu_find_children(worker, "bulkhead-spawn", p, 4);

		if (n == 1)
			return p[0];
		if (tu_ms_left(deadline) <= 0)
			return -1;
	}
}

#define TASKS_MAX 512 /* threads of a worker looked at; POOL_THREADS_MAX is 256 */

long tu_job_thread_ticks(pid_t pid)
{
	pid_t tids[TASKS_MAX];
	int n = tu_threads(pid, tids, TASKS_MAX);
	long total = 0;

	for (int i = 1; i < n; i++) { /* tids[0]: the main thread */
		char p[96], *stat, *close_paren;
		unsigned long utime = 0;

		snprintf(p, sizeof(p), "/proc/%d/task/%d/stat", (int)pid, (int)tids[i]);
		stat = tu_read_file(p);
		if (!stat)
			continue;
		close_paren = strrchr(stat, ')');
		if (close_paren &&
		    sscanf(close_paren + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu",
			   &utime) == 1)
			total += (long)utime;
		free(stat);
	}
	return total;
}

/* The number after the ':' that follows line `key` of /proc/PID/file, or -errno. */
static long proc_number(pid_t pid, const char *file, const char *key)
{
	char path[64], *text, *p;
	long v = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	text = tu_read_file(path);
	if (!text)
		return -errno;
	p = strstr(text, key);
	if (p && (p = strchr(p, ':')))
		v = strtol(p + 1, NULL, 10);
	free(text);
	return v;
}

long tu_thread_slice(pid_t tid)
{
	return proc_number(tid, "sched", "\nse.slice");
}

static void *slice_probe(void *arg)
{
	long *got = arg;

	got[0] = sched_slice_set(SCHED_SLICE_SUPERVISOR_NS) == 0 ? tu_thread_slice(gettid()) : -1;
	got[1] = sched_slice_set(0) == 0 ? tu_thread_slice(gettid()) : -1;
	return NULL;
}

bool tu_slices_supported(long *ret_default)
{
	long got[2] = { -1, -1 };
	pthread_t t;

	if (pthread_create(&t, NULL, slice_probe, got) != 0)
		return false;
	pthread_join(t, NULL);
	*ret_default = got[1];
	return got[0] == (long)SCHED_SLICE_SUPERVISOR_NS && got[1] > 0 && got[1] != got[0];
}

int tu_threads(pid_t pid, pid_t *tids, int max)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	if (max > 0)
		tids[n++] = pid;
	while ((e = readdir(d))) {
		pid_t tid = (pid_t)atoi(e->d_name);

		if (tid > 0 && tid != pid && n < max)
			tids[n++] = tid;
	}
	closedir(d);
	return n;
}

long tu_rss_kb(pid_t pid)
{
	return proc_number(pid, "status", "\nVmRSS:");
}

/* The environment pid started with (NUL-separated entries) into buf: its length, or <= 0. */
static ssize_t read_environ(pid_t pid, char *buf, size_t size)
{
	char path[64];
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = read(fd, buf, size - 1);
	close(fd);
	if (len > 0)
		buf[len] = '\0';
	return len;
}

char *tu_env_of(pid_t pid, const char *name)
{
	static char buf[65536];
	size_t nlen = strlen(name);
	ssize_t len = read_environ(pid, buf, sizeof(buf));

	for (ssize_t i = 0; i < len; i += (ssize_t)strlen(buf + i) + 1)
		if (strncmp(buf + i, name, nlen) == 0 && buf[i + (ssize_t)nlen] == '=')
			return strdup(buf + i + nlen + 1);
	return NULL;
}

int tu_find_marked(const char *mark, pid_t *pids, int max)
{
	char want[512], buf[65536];
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -errno;
	snprintf(want, sizeof(want), "BHTEST_MARK=%s", mark);
	while ((e = readdir(d))) {
		pid_t pid = atoi(e->d_name);
		char state = 0;
		ssize_t len;

		if (pid <= 0 || tu_proc_stat(pid, NULL, 0, &state, NULL) < 0 || state == 'Z')
			continue;
		len = read_environ(pid, buf, sizeof(buf));
		if (len <= 0)
			continue;
		for (ssize_t i = 0; i < len; i += (ssize_t)strlen(buf + i) + 1) {
			if (strcmp(buf + i, want) == 0) {
				if (n < max)
					pids[n] = pid;
				n++;
				break;
			}
		}
	}
	closedir(d);
	return n;
}

long tu_count_files(const char *dir)
{
	struct dirent *de;
	long n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_type == DT_REG;
	closedir(d);
	return n;
}
