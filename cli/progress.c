/* SPDX-License-Identifier: MIT */
/*
 * The live progress of `bulkhead run` on stderr. On a terminal, one line redrawn five times a
 * second (log lines clear it first, through the log hook, and it is redrawn on the next tick);
 * otherwise a plain line every PLAIN_INTERVAL. A timer on the master's event loop: no thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/run.h"
#include "common/log.h"

#define TTY_INTERVAL (200 * USEC_PER_MSEC)
#define PLAIN_INTERVAL (2 * USEC_PER_SEC)

struct progress {
	struct master *m;
	sd_event_source *timer;
	bool tty;
	bool drawn;
};

static struct progress *active; /* for the log hook */

static void clear_line(void)
{
	if (active && active->drawn) {
		(void)!write(STDERR_FILENO, "\r\033[K", 4);
		active->drawn = false;
	}
}

static uint64_t finished(const struct ledger_stats *s)
{
	return s->by_state[JOB_DONE] + s->by_state[JOB_FAILED] + s->by_state[JOB_CRASHED] +
	       s->by_state[JOB_TIMED_OUT] + s->by_state[JOB_CANCELLED];
}

static uint64_t crashes(const struct master_stats *ms)
{
	uint64_t n = ms->deaths_by_exit;

	for (int i = 0; i < 65; i++)
		n += ms->deaths_by_signal[i];
	return n;
}

static void draw(struct progress *p)
{
	const struct ledger_stats *s = master_totals(p->m);
	const struct master_stats *ms = master_stats(p->m);
	uint64_t total = master_n_jobs(p->m), done = finished(s);
	double secs = (double)(now_usec() - ms->started_at) / 1e6;
	double rate = secs > 0 ? (double)done / secs : 0;
	char eta[32] = "-", line[256];
	int n;

	if (rate > 0 && done < total)
		snprintf(eta, sizeof(eta), "%.0fs", (double)(total - done) / rate + 0.5);
	n = snprintf(line, sizeof(line),
		     "%s%llu/%llu done  %.0f jobs/s  running %llu  crashes %llu  restarts %llu  "
		     "ETA %s%s",
		     p->tty ? "\r\033[K" : "", (unsigned long long)done,
		     (unsigned long long)total, rate,
		     (unsigned long long)master_jobs_on_threads(p->m),
		     (unsigned long long)crashes(ms), (unsigned long long)ms->restarts, eta,
		     p->tty ? "" : "\n");
	if (n > 0) {
		(void)!write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n
								    : sizeof(line) - 1);
		p->drawn = p->tty;
	}
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct progress *p = userdata;

	draw(p);
	sd_event_source_set_time(s, usec + (p->tty ? TTY_INTERVAL : PLAIN_INTERVAL));
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

int progress_start(struct master *m, struct progress **ret)
{
	struct progress *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->m = m;
	p->tty = isatty(STDERR_FILENO);
	r = sd_event_add_time(master_event(m), &p->timer, CLOCK_MONOTONIC,
			      now_usec() + (p->tty ? TTY_INTERVAL : PLAIN_INTERVAL),
			      10 * USEC_PER_MSEC, on_tick, p);
	if (r < 0) {
		free(p);
		return r;
	}
	active = p;
	log_set_before_write(clear_line);
	*ret = p;
	return 0;
}

void progress_stop(struct progress *p)
{
	if (!p)
		return;
	clear_line();
	log_set_before_write(NULL);
	active = NULL;
	sd_event_source_disable_unref(p->timer);
	free(p);
}
