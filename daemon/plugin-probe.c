/* SPDX-License-Identifier: MIT */
/*
 * Submitted plugins probed off the loop (see plugin-probe.h). A probe is one child process:
 * its stdout is read as it comes (at most CONFIG_PROBE_OUTPUT_MAX bytes kept), its pidfd
 * says when it ended (reaped with waitid P_PIDFD, as workers are: the master does not watch
 * SIGCHLD), and a timer SIGKILLs it after CONFIG_PROBE_TIMEOUT_MS. The verdict is
 * config_probe_verdict()'s, the same words as a config's probe.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "config/probe.h"
#include "daemon/plugin-probe.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

struct waiter {
	struct waiter *next;
	plugin_probe_fn *cb;
	void *userdata;
};

struct verdict {
	char *run;
	struct stat st; /* of PATH when it was probed */
	char *reason; /* NULL: it loads */
	uint64_t used; /* when it was made, in verdicts made: the oldest goes first */
};

struct probe {
	struct plugin_probes *p;
	struct probe *next;
	char *run;
	struct stat st;
	pid_t pid;
	int pidfd, out_fd;
	sd_event_source *child, *out, *timer;
	char buf[CONFIG_PROBE_OUTPUT_MAX];
	size_t len;
	bool late;
	struct waiter *waiters;
};

struct plugin_probes {
	sd_event *e;
	char *worker;
	struct probe *running;
	unsigned n_running;
	struct verdict cache[PLUGIN_PROBE_CACHE_MAX];
	uint64_t made;
};

/* PATH of plugin:PATH:SYMBOL, stat'ed. 0 or -errno. */
static int stat_plugin(const char *run, struct stat *st)
{
	const char *path = run + strlen("plugin:"), *colon = strrchr(path, ':');
	char file[4096];

	if (strncmp(run, "plugin:", 7) != 0 || !colon || (size_t)(colon - path) >= sizeof(file))
		return -EINVAL;
	memcpy(file, path, (size_t)(colon - path));
	file[colon - path] = '\0';
	return stat(file, st) < 0 ? -errno : 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

int plugin_probes_new(sd_event *e, const char *worker, struct plugin_probes **ret)
{
	struct plugin_probes *p = calloc(1, sizeof(*p));

	if (!p || !(p->worker = strdup(worker))) {
		free(p);
		return -ENOMEM;
	}
	p->e = e;
	*ret = p;
	return 0;
}

static void probe_free(struct probe *pr)
{
	struct waiter *w;

	sd_event_source_disable_unref(pr->child);
	sd_event_source_disable_unref(pr->out);
	sd_event_source_disable_unref(pr->timer);
	if (pr->out_fd >= 0)
		close(pr->out_fd);
	if (pr->pidfd >= 0)
		close(pr->pidfd);
	while ((w = pr->waiters)) {
		pr->waiters = w->next;
		free(w);
	}
	free(pr->run);
	free(pr);
}

void plugin_probes_free(struct plugin_probes *p)
{
	struct probe *pr;

	if (!p)
		return;
	while ((pr = p->running)) {
		siginfo_t si;

		p->running = pr->next;
		(void)kill(pr->pid, SIGKILL);
		while (waitid(P_PIDFD, (id_t)pr->pidfd, &si, WEXITED) < 0 && errno == EINTR)
			;
		probe_free(pr);
	}
	for (unsigned i = 0; i < PLUGIN_PROBE_CACHE_MAX; i++) {
		free(p->cache[i].run);
		free(p->cache[i].reason);
	}
	free(p->worker);
	free(p);
}

int plugin_probes_known(struct plugin_probes *p, const char *run, const char **ret_reason)
{
	static char why[4200];
	const char *path = run + strlen("plugin:"), *colon = strrchr(path, ':');
	struct stat st;
	int r = stat_plugin(run, &st);

	*ret_reason = NULL;
	if (r < 0) {
		snprintf(why, sizeof(why), "cannot load: %.*s: %s", colon ? (int)(colon - path) : 0,
			 path, strerror(-r));
		*ret_reason = why;
		return r;
	}
	for (unsigned i = 0; i < PLUGIN_PROBE_CACHE_MAX; i++) {
		struct verdict *v = &p->cache[i];

		if (!v->run || strcmp(v->run, run) != 0)
			continue;
		if (!same_file(&v->st, &st))
			return -EAGAIN;
		*ret_reason = v->reason;
		return v->reason ? 0 : 1;
	}
	return -EAGAIN;
}

/* Keeps the verdict, in the slot of the same run or else of the oldest. */
static void remember(struct plugin_probes *p, const char *run, const struct stat *st,
		     const char *reason)
{
	struct verdict *v = &p->cache[0];

	for (unsigned i = 0; i < PLUGIN_PROBE_CACHE_MAX; i++) {
		if (p->cache[i].run && strcmp(p->cache[i].run, run) == 0) {
			v = &p->cache[i];
			break;
		}
		if (!p->cache[i].run || p->cache[i].used < v->used)
			v = &p->cache[i];
	}
	free(v->run);
	free(v->reason);
	v->run = strdup(run);
	v->reason = reason ? strdup(reason) : NULL;
	if (!v->run || (reason && !v->reason)) { /* out of memory: not kept */
		free(v->run);
		free(v->reason);
		v->run = v->reason = NULL;
		return;
	}
	v->st = *st;
	v->used = ++p->made;
}

static void read_out(struct probe *pr)
{
	for (;;) {
		char junk[512];
		bool room = pr->len + 1 < sizeof(pr->buf);
		ssize_t n = read(pr->out_fd, room ? pr->buf + pr->len : junk,
				 room ? sizeof(pr->buf) - 1 - pr->len : sizeof(junk));

		if (n > 0) {
			if (room)
				pr->len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) { /* EOF: nothing more to watch */
			sd_event_source_set_enabled(pr->out, SD_EVENT_OFF);
		}
		return;
	}
}

static int on_out(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	read_out(userdata);
	return 0;
}

static int on_late(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct probe *pr = userdata;

	pr->late = true;
	log_warning("plugin probe of %s: not done within %d ms: killed", pr->run,
		    CONFIG_PROBE_TIMEOUT_MS);
	(void)kill(pr->pid, SIGKILL);
	return 0;
}

static int on_exit_(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct probe *pr = userdata, **pp;
	struct plugin_probes *p = pr->p;
	siginfo_t si = { 0 };
	char *reason = NULL;
	int status, r;

	do
		r = waitid(P_PIDFD, (id_t)pr->pidfd, &si, WEXITED | WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r < 0 || si.si_pid == 0)
		return 0; /* not yet (or not ours to reap: a tracer); the pidfd says again */
	status = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8 : si.si_status & 0x7f;
	read_out(pr);
	pr->buf[pr->len] = '\0';
	r = config_probe_verdict(pr->run, !pr->late, status, CONFIG_PROBE_TIMEOUT_MS, pr->buf,
				 &reason);
	if (r == -EIO && asprintf(&reason,
				  "cannot probe it: %s did not behave like "
				  "bulkhead-worker --probe",
				  p->worker) < 0)
		reason = NULL;
	if (r < 0 && !reason)
		reason = strdup("cannot probe it: out of memory");
	/* A verdict on the plugin is kept; a probe that could not tell is not. */
	if (r == 0 || r == -EINVAL)
		remember(p, pr->run, &pr->st, reason);
	for (pp = &p->running; *pp != pr; pp = &(*pp)->next)
		;
	*pp = pr->next;
	p->n_running--;
	for (struct waiter *w = pr->waiters; w; w = w->next)
		w->cb(w->userdata, pr->run, r == 0 ? NULL : reason ? reason : "cannot probe it");
	free(reason);
	probe_free(pr);
	return 0;
}

int plugin_probes_start(struct plugin_probes *p, const char *run, plugin_probe_fn *cb,
			void *userdata)
{
	struct waiter *w = calloc(1, sizeof(*w));
	struct probe *pr;
	int r;

	if (!w)
		return -ENOMEM;
	w->cb = cb;
	w->userdata = userdata;
	for (pr = p->running; pr; pr = pr->next)
		if (strcmp(pr->run, run) == 0) {
			w->next = pr->waiters;
			pr->waiters = w;
			return 0;
		}
	if (p->n_running >= PLUGIN_PROBES_RUNNING_MAX) {
		free(w);
		return -EBUSY;
	}
	pr = calloc(1, sizeof(*pr));
	if (!pr || !(pr->run = strdup(run))) {
		free(pr);
		free(w);
		return -ENOMEM;
	}
	pr->p = p;
	pr->pidfd = pr->out_fd = -1;
	pr->waiters = w;
	r = stat_plugin(run, &pr->st);
	if (r >= 0)
		r = config_probe_start(p->worker, run, &pr->pid, &pr->out_fd);
	if (r >= 0) {
		pr->pidfd = pidfd_open(pr->pid, 0);
		if (pr->pidfd < 0) {
			r = -errno;
			(void)kill(pr->pid, SIGKILL);
			(void)waitpid(pr->pid, NULL, 0);
		}
	}
	if (r >= 0)
		r = sd_event_add_io(p->e, &pr->child, pr->pidfd, EPOLLIN, on_exit_, pr);
	if (r >= 0)
		r = sd_event_add_io(p->e, &pr->out, pr->out_fd, EPOLLIN, on_out, pr);
	if (r >= 0)
		r = sd_event_add_time_relative(p->e, &pr->timer, CLOCK_MONOTONIC,
					       (uint64_t)CONFIG_PROBE_TIMEOUT_MS * 1000, 0, on_late,
					       pr);
	if (r < 0) {
		if (pr->pidfd >= 0) {
			siginfo_t si;

			(void)kill(pr->pid, SIGKILL);
			while (waitid(P_PIDFD, (id_t)pr->pidfd, &si, WEXITED) < 0 && errno == EINTR)
				;
		}
		probe_free(pr);
		return r;
	}
	pr->next = p->running;
	p->running = pr;
	p->n_running++;
	log_debug("plugin probe of %s: pid %d", run, (int)pr->pid);
	return 0;
}
