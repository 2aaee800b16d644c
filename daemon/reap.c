/* SPDX-License-Identifier: MIT */
/*
 * A worker process's end: its pidfd turns readable, the master reaps it (waitid P_PIDFD) and
 * hands the status to death.c. A process a tracer holds (strace, gdb, LSan's leak check at
 * exit) is not ours to reap until the tracer lets it go, and nothing wakes us when it does:
 * that is tried again on a timer. See docs/decisions.md ("A worker's end is read from its
 * pidfd").
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "common/log.h"
#include "daemon/master-int.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define REAP_RETRY_MIN (10 * USEC_PER_MSEC)
#define REAP_RETRY_MAX USEC_PER_SEC

/* The pid of the process tracing pid (ptrace), or 0. */
static pid_t tracer_of(pid_t pid)
{
	char path[64], line[128];
	pid_t t = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "TracerPid: %d", &t) == 1)
			break;
	fclose(f);
	return t;
}

static int reap_on_timer(sd_event_source *s, uint64_t usec, void *userdata);

/*
 * Reaps the worker and judges its death. The pidfd turns readable when the process has ended,
 * but a process that a tracer (strace, gdb, LSan's leak check) holds is not the parent's to
 * wait for until the tracer lets it go: that ends with no second wake-up of the pidfd we can
 * count on, so it is tried again on a timer (10 ms doubling to 1 s) until it is reaped.
 */
static void reap_try(struct worker *w)
{
	siginfo_t si = { 0 };
	char l[64];
	int r;

	do
		r = waitid(P_PIDFD, (id_t)sd_event_source_get_io_fd(w->child), &si,
			   WEXITED | WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		log_error("worker %s: cannot reap it: %s", slot_label(w, l, sizeof(l)),
			  strerror(errno));
		/* ECHILD cannot happen to a child we have not reaped: take it as gone. */
		si.si_code = CLD_KILLED;
		si.si_status = SIGKILL;
	} else if (si.si_pid == 0) {
		if (w->reap_delay == 0) {
			pid_t t = tracer_of(w->pid);

			sd_event_source_set_enabled(w->child, SD_EVENT_OFF);
			if (t > 0)
				log_warning(
					"worker %s has ended, but a tracer (pid %d) holds it; its "
					"jobs are judged when the tracer lets it go",
					slot_label(w, l, sizeof(l)), (int)t);
			else
				log_debug(
					"worker %s has ended but cannot be reaped yet; trying again",
					slot_label(w, l, sizeof(l)));
		}
		w->reap_delay = w->reap_delay ? w->reap_delay * 2 : REAP_RETRY_MIN;
		if (w->reap_delay > REAP_RETRY_MAX)
			w->reap_delay = REAP_RETRY_MAX;
		if (master_arm_timer(w->m, &w->reap, now_usec() + w->reap_delay, reap_on_timer, w) <
		    0)
			/* Without a timer, the pidfd (level-triggered) is the retry. */
			sd_event_source_set_enabled(w->child, SD_EVENT_ON);
		return;
	}
	master_disarm(w->reap);
	w->reap_delay = 0;
	death_reaped(w, si.si_code, si.si_status);
}

int reap_on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	reap_try(userdata);
	return 0;
}

static int reap_on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	reap_try(userdata);
	return 0;
}
