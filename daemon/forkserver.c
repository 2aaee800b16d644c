/* SPDX-License-Identifier: MIT */
/*
 * The fork server as the master uses it: started once (waited for, bounded), its workers
 * forked with CLONE_PARENT; one that fails is killed, reaped with any worker it forked but
 * never reported, and started again after a backoff without the loop waiting for it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/idmap.h"
#include "common/log.h"
#include "common/protocol.h"
#include "config/probe.h"
#include "daemon/master-int.h"
#include "daemon/notify.h"
#include "daemon/policy.h"
#include "daemon/spawn-worker.h"

static int on_zygote_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);
static int on_zygote_timeout(sd_event_source *s, uint64_t usec, void *userdata);

/* Errors of the master's own resources, or the system's: retried, never a worker fault. */
bool master_resource_error(int r)
{
	return r == -EMFILE || r == -ENFILE || r == -EAGAIN || r == -ENOMEM || r == -ENOBUFS;
}

/* Watches the fork server's socket: for its first reply while pending, else for its end. */
static void forkserver_watch(struct master *m)
{
	uint32_t events = EPOLLRDHUP | (m->zygote_pending ? EPOLLIN : 0);

	m->zygote_io = sd_event_source_disable_unref(m->zygote_io);
	if (sd_event_add_io(m->event, &m->zygote_io, m->zygote.s.fd, events, on_zygote_io, m) < 0)
		m->zygote_io = NULL; /* its end is then noticed at the next spawn */
	if (m->zygote_pending)
		master_arm_timer(m, &m->zygote_timer,
				 now_usec() + ZYGOTE_REPLY_TIMEOUT_MS * USEC_PER_MSEC,
				 on_zygote_timeout, m);
	else
		m->zygote_up_at = now_usec();
}

/* Stops the fork server (it exits at EOF, or is killed) and reaps it. */
void forkserver_end(struct master *m)
{
	m->zygote_io = sd_event_source_disable_unref(m->zygote_io);
	master_disarm(m->zygote_timer);
	m->zygote_pending = false;
	zygote_stop(&m->zygote);
}

static bool pid_is_worker(const struct master *m, pid_t pid)
{
	for (unsigned i = 0; i < m->n_pools; i++)
		for (unsigned k = 0; k < m->pools[i]->n_slots; k++)
			if (m->pools[i]->workers[k]->pid == pid)
				return true;
	return false;
}

/*
 * A fork server that failed may have forked a worker whose pid it never told us (it answered
 * too late, or died before it could): with CLONE_PARENT that worker is our child, unknown to
 * the loop. Kills and reaps every such child, so none is left running or as a zombie.
 */
static void reap_strays(struct master *m)
{
	pid_t self = getpid();
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[64], buf[512], comm[32], *p;
		int ppid, fd;
		pid_t pid = (pid_t)atoi(e->d_name);
		ssize_t n;

		if (pid <= 0 || pid == self || pid_is_worker(m, pid))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1 || ppid != self ||
		    sscanf(buf, "%*d (%31[^)]", comm) != 1 || strncmp(comm, "bulkhead-", 9) != 0)
			continue;
		log_notice("killing process %d, a worker the failed fork server started but never "
			   "reported", (int)pid);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	closedir(d);
}

/*
 * The fork server failed (why: logged here; NULL: already logged): it is killed and reaped,
 * workers are exec'd, and a new one is started at a spawn after the backoff.
 */
static void forkserver_failed(struct master *m, const char *why)
{
	usec_t now = now_usec(), delay, uptime = m->zygote_up_at ? now - m->zygote_up_at : 0;
	uint32_t rnd = 0;
	char d[FORMAT_DURATION_MAX];
	pid_t pid = m->zygote.s.pid;

	m->zygote_io = sd_event_source_disable_unref(m->zygote_io);
	master_disarm(m->zygote_timer);
	m->zygote_pending = false;
	m->zygote_up_at = 0;
	zygote_kill(&m->zygote);
	reap_strays(m);
	(void)!getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK);
	delay = backoff_next(&m->zygote_backoff, uptime, ZYGOTE_MIN_UPTIME, rnd);
	if (delay < ZYGOTE_BACKOFF_MIN)
		delay = ZYGOTE_BACKOFF_MIN;
	m->zygote_retry_at = now + delay;
	if (why && !m->zygote_never)
		log_warning("fork server [%d] failed (%s): workers are exec'd until it is started "
			    "again in %s",
			    (int)pid, why, format_duration(d, sizeof(d), delay));
}

/* Starts a new fork server if one is wanted and the backoff allows; it is not waited for. */
static void forkserver_begin(struct master *m)
{
	int r;

	if (m->zygote_never || zygote_up(&m->zygote) || now_usec() < m->zygote_retry_at)
		return;
	r = zygote_launch(m->worker_path, &m->zygote);
	if (r < 0) {
		log_debug("fork server: cannot start %s --zygote: %s", m->worker_path,
			  strerror(-r));
		forkserver_failed(m, NULL);
		return;
	}
	m->zygote_pending = true;
	forkserver_watch(m);
}

static int on_zygote_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct master *m = userdata;
	int r;

	if (m->zygote_pending) {
		r = zygote_started(&m->zygote, 0);
		if (r > 0) {
			m->zygote_pending = false;
			master_disarm(m->zygote_timer);
			forkserver_watch(m);
			log_notice("fork server [%d] is up again: workers are forked",
				   (int)m->zygote.s.pid);
			return 0;
		}
		if (r == 0 && !(revents & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)))
			return 0;
		forkserver_failed(m, r < 0 ? strerror(-r) : "it exited");
		return 0;
	}
	forkserver_failed(m, "it exited");
	return 0;
}

static int on_zygote_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct master *m = userdata;

	if (m->zygote_pending)
		forkserver_failed(m, "no reply in time");
	return 0;
}

/*
 * A new worker process for slot `index`: forked by the fork server when the config asks for
 * it and it works, else exec'd. A fork server that fails (dies, stalls, answers badly) is
 * killed, and this worker and the next ones are exec'd until a new fork server is up: it is
 * started again after a backoff (forkserver_begin), without waiting for it in the loop.
 */
int forkserver_start_worker(struct master *m, const struct worker_launch *l,
			    struct spawned_worker *s)
{
	int r;

	if (m->config->supervisor.worker_start != WORKER_START_FORK_SERVER) {
		forkserver_end(m);
	} else if (!m->zygote_tried) {
		/* The first one: started here and waited for (bounded), so that the first
		 * workers are already forked. */
		m->zygote_tried = true;
		r = zygote_start(m->worker_path, &m->zygote);
		if (r == -ENOTSUP)
			m->zygote_never = true;
		if (r < 0)
			log_warning("fork server %s --zygote could not start (%s): workers are "
				    "exec'd%s", m->worker_path, strerror(-r),
				    m->zygote_never ? " instead" : " until it is started again");
		if (r < 0)
			forkserver_failed(m, NULL);
		else
			forkserver_watch(m);
	} else {
		forkserver_begin(m);
	}
	if (zygote_up(&m->zygote) && !m->zygote_pending) {
		r = zygote_spawn(&m->zygote, l, s);
		if (r >= 0)
			return r;
		/* Our own fds or memory, or the zygote's fork hitting a process limit: not the
		 * fork server's fault. Retried later, like any start of a worker. */
		if (master_resource_error(r))
			return r;
		forkserver_failed(m, strerror(-r));
	}
	return spawn_worker(m->worker_path, l, s);
}
