/* SPDX-License-Identifier: MIT */
/*
 * The master's event loop (see master.h): creating it and its event sources (signals,
 * the deferred retention pass, the notifier), running and freeing it, and the end of a run:
 * master_check_done() stops the loop once it is stopping and no worker is left.
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
#include <time.h>
#include <unistd.h>

#include "common/idmap.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/sched-slice.h"
#include "config/probe.h"
#include "daemon/cgroup.h"
#include "daemon/master-int.h"
#include "daemon/notify.h"
#include "daemon/policy.h"
#include "daemon/spawn-worker.h"
#include "daemon/store.h"

int master_arm_timer(struct master *m, sd_event_source **s, usec_t when, sd_event_time_handler_t cb,
		     void *userdata)
{
	int r;

	if (!*s)
		return sd_event_add_time(m->event, s, CLOCK_MONOTONIC, when, TIMER_ACCURACY, cb,
					 userdata);
	r = sd_event_source_set_time(*s, when);
	if (r < 0)
		return r;
	return sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
}

void master_disarm(sd_event_source *s)
{
	if (s)
		sd_event_source_set_enabled(s, SD_EVENT_OFF);
}

const char *const *master_lfields(struct lfields *f, const struct pool *p, const struct worker *w,
				  const struct job *j, int signo, const char *cause)
{
	int n = 0;

	if (p) {
		snprintf(f->pool, sizeof(f->pool), "POOL=%s", p->cfg.name);
		f->v[n++] = f->pool;
	}
	if (w) {
		snprintf(f->worker, sizeof(f->worker), "WORKER=%s/%u", w->pool->cfg.name, w->index);
		f->v[n++] = f->worker;
	}
	if (j) {
		char name[64];

		snprintf(f->job, sizeof(f->job), "JOB=%s",
			 ledger_job_name(p->m->ledger, j, name, sizeof(name)));
		f->v[n++] = f->job;
	}
	if (signo > 0) {
		char sig[16];

		snprintf(f->sig, sizeof(f->sig), "SIGNAL=%s", signal_name(signo, sig, sizeof(sig)));
		f->v[n++] = f->sig;
	}
	if (cause && *cause) {
		snprintf(f->cause, sizeof(f->cause), "CAUSE=%s", cause);
		f->v[n++] = f->cause;
	}
	f->v[n] = NULL;
	return f->v;
}

void master_begin_stop(struct master *m, enum job_cause cause)
{
	if (m->stopping)
		return;
	m->stopping = true;
	if (m->shared)
		shared_release_queued(m); /* not started here: the other nodes' now */
	/* A durable daemon's stop keeps them for its next start (master_keeps_jobs()). */
	for (unsigned i = 0; i < m->n_pools && !(cause == CAUSE_STOPPED && master_keeps_jobs(m));
	     i++)
		ledger_cancel_queued(m->ledger, i, cause);
	for (unsigned i = 0; i < m->n_pools; i++) {
		struct pool *p = m->pools[i];

		for (unsigned k = 0; k < p->n_slots; k++) {
			struct worker *w = p->workers[k];

			if (w->pid > 0)
				slot_stop(w, cause == CAUSE_NONE
						     ? MASTER_STOP_TIMEOUT
						     : m->config->supervisor.drain_timeout);
			else
				slot_timer_off(w);
		}
		spare_ensure(p); /* stopping: the spare is retired */
	}
}

/* READY=1 once every pool's workers have said HELLO (a failed pool counts as settled). */
void master_check_ready(struct master *m)
{
	if (!m->opts.daemon || m->ready_sent || m->stopping)
		return;
	for (unsigned i = 0; i < m->n_pools; i++) {
		struct pool *p = m->pools[i];

		if (p->state != POOL_UP)
			continue;
		for (unsigned k = 0; k < p->n_slots; k++)
			if (p->workers[k]->state != W_READY)
				return;
	}
	m->ready_sent = true;
	log_info("ready: %u pool%s up", m->n_pools, m->n_pools == 1 ? "" : "s");
	MASTER_EMIT(m, on_ready);
}

const char *master_state_path(const struct master *m)
{
	return m->opts.state;
}

bool master_keeps_jobs(const struct master *m)
{
	return m->opts.daemon && m->opts.state;
}

#define SHARED_EXIT_WAIT (5 * USEC_PER_SEC)

static int on_exit_wait(sd_event_source *s, uint64_t usec, void *userdata)
{
	master_check_done(userdata);
	return 0;
}

void master_check_done(struct master *m)
{
	MASTER_EMIT(m, on_status_dirty);
	if (!m->stopping && !m->opts.daemon && ledger_unfinished(m->ledger) == 0)
		master_begin_stop(m, CAUSE_NONE);
	if (m->stopping && m->n_alive == 0 && m->shared && shared_flush_pending(m)) {
		/* What the stop decided is written before it ends, or given up after a while
		 * (the server is away: those leases expire, and other nodes take the jobs). */
		if (!m->shared_exit_by)
			m->shared_exit_by = now_usec() + SHARED_EXIT_WAIT;
		if (now_usec() < m->shared_exit_by) {
			durable_flush(m, now_usec());
			master_arm_timer(m, &m->flush_retry, m->shared_exit_by, on_exit_wait, m);
			return;
		}
		log_warning("PostgreSQL store: the last writes are not committed: those jobs run "
			    "again on another node once their lease expires");
	}
	if (m->stopping && m->n_alive == 0) {
		m->stats.ended_at = now_usec();
		MASTER_EMIT(m, on_exit); /* the last word: how it ended */
		sd_event_exit(m->event, 0);
	}
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct master *m = userdata;

	m->stats.interrupted = true;
	if (!m->stats.interrupt_signal)
		m->stats.interrupt_signal = (int)si->ssi_signo;
	if (m->interrupts++ == 0) {
		usec_t drain = m->config->supervisor.drain_timeout;
		char d[FORMAT_DURATION_MAX];

		MASTER_EMIT(m, on_stopping, drain);
		if (master_keeps_jobs(m))
			log_notice("%s: stopping: running jobs may finish within %s (again to kill "
				   "them now); the others stay in %s for the next start",
				   strsignal((int)si->ssi_signo),
				   format_duration(d, sizeof(d), drain), m->opts.state);
		else
			log_notice("%s: stopping: queued jobs are cancelled, running jobs may "
				   "finish within %s (again to kill them now)",
				   strsignal((int)si->ssi_signo),
				   format_duration(d, sizeof(d), drain));
		master_begin_stop(m, CAUSE_STOPPED);
	} else {
		log_notice("%s again: killing every worker now", strsignal((int)si->ssi_signo));
		for (unsigned i = 0; i < m->n_pools; i++) {
			for (unsigned k = 0; k < m->pools[i]->n_slots; k++)
				slot_kill(m->pools[i]->workers[k], END_STOP, NULL);
			if (m->pools[i]->spare)
				slot_kill(m->pools[i]->spare, END_STOP, NULL);
			for (unsigned k = 0; k < MASTER_SOLO_MAX; k++)
				if (m->pools[i]->solo[k])
					slot_kill(m->pools[i]->solo[k], END_STOP, NULL);
		}
	}
	master_check_done(m);
	return 0;
}

/* Adds the pools of c, in order, as pools m->n_pools.. (indexes match the ledger's). */
static int master_add_pools(struct master *m, const struct config *c)
{
	struct pool **ps = realloc(m->pools, (m->n_pools + c->n_pools) * sizeof(*ps));
	int r;

	if (!ps)
		return -ENOMEM;
	m->pools = ps;
	for (unsigned i = 0; i < c->n_pools; i++) {
		r = pool_new(m, &c->pools[i], m->n_pools, &m->pools[m->n_pools]);
		m->n_pools++;
		if (r < 0)
			return r;
	}
	return master_sync_pools(m);
}

int master_sync_pools(struct master *m)
{
	const char **names = calloc(m->n_pools + 1, sizeof(*names));
	int r;

	if (!names)
		return -ENOMEM;
	for (unsigned i = 0; i < m->n_pools; i++)
		names[i] = m->pools[i]->cfg.name;
	r = ledger_set_pools(m->ledger, m->n_pools, names);
	free(names);
	return r;
}

/* Forgets old ended jobs (keep_ended), once per loop pass after jobs ended. */
static int on_collect(sd_event_source *s, void *userdata)
{
	struct master *m = userdata;
	uint64_t n = ledger_collect(m->ledger);

	inflight_trim(m);
	if (n > 0)
		log_debug("forgot %" PRIu64 " ended jobs (%" PRIu64 " in all; keep_ended = %u)", n,
			  ledger_forgotten(m->ledger), m->config->supervisor.keep_ended);
	return 0;
}

/* The ledger's end hook: subscribers hear of it, and retention may run. */
static void on_job_ended(void *userdata, struct job *j)
{
	struct master *m = userdata;
	/* A master died under it before: its end is written at once, not lazily, so that a
	 * kill right after it cannot count one more death against it (and blame it at three). */
	if (j->host_deaths)
		master_flush_needed(m);
	MASTER_EMIT(m, on_job_end, j->id);
	master_collect_soon(m);
}

/* Below the clients' requests and the workers' frames, above the long replies. */
#define DISPATCH_PRIORITY (SD_EVENT_PRIORITY_NORMAL + 5)

static int on_dispatch_soon(sd_event_source *s, void *userdata)
{
	struct master *m = userdata;

	/*
	 * A submit's reply waits for the write of its jobs: write them first and dispatch on
	 * the next pass, after the release of the replies (a defer above this one). The jobs
	 * start one write later; the reply does not wait for the workers' round trip. That
	 * next pass dispatches whatever came meanwhile: with requests arriving on every pass,
	 * writing first each time would never dispatch.
	 */
	if (!m->dispatch_owed && durable_flush_first(m)) {
		m->dispatch_owed = true;
		sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
		return 0;
	}
	m->dispatch_owed = false;
	for (unsigned i = 0; i < m->n_pools; i++) {
		struct pool *p = m->pools[i];

		if (!p->dispatch_pending)
			continue;
		p->dispatch_pending = false;
		dispatch_pool(p);
	}
	return 0;
}

void master_dispatch_soon(struct pool *p)
{
	p->dispatch_pending = true;
	if (p->m->dispatch_defer)
		sd_event_source_set_enabled(p->m->dispatch_defer, SD_EVENT_ONESHOT);
	else
		dispatch_pool(p); /* not set up (yet): at once */
}

void master_collect_soon(struct master *m)
{
	if (m->collect)
		sd_event_source_set_enabled(m->collect, SD_EVENT_ONESHOT);
}

/* The ledger's clock: the loop's wall-clock time of this pass (sd-event reads it once). */
static int64_t loop_wall_now(void *userdata)
{
	struct master *m = userdata;
	uint64_t t;
	struct timespec ts;

	if (sd_event_now(m->event, CLOCK_REALTIME, &t) >= 0)
		return (int64_t)t;
	clock_gettime(CLOCK_REALTIME, &ts); /* before the loop's first pass */
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void arm_hold_timer(struct master *m);

/* retry_delay: the held jobs that are due go back to their queues, and are dispatched. */
static int on_hold_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct master *m = userdata;

	if (ledger_hold_release(m->ledger, loop_wall_now(m), -1) > 0)
		for (unsigned i = 0; i < m->n_pools; i++)
			master_dispatch_soon(m->pools[i]);
	arm_hold_timer(m);
	return 0;
}

/*
 * The timer for the earliest held job: its due time is on the ledger's (wall) clock, the
 * timer's on the monotonic one; a wall clock that jumps moves a delay at most by its jump.
 */
static void arm_hold_timer(struct master *m)
{
	int64_t next = ledger_hold_next(m->ledger), wall = loop_wall_now(m);
	uint64_t mono = now_usec();

	if (next == 0) {
		master_disarm(m->hold_timer);
		return;
	}
	if (sd_event_now(m->event, CLOCK_MONOTONIC, &mono) < 0)
		mono = now_usec();
	if (master_arm_timer(m, &m->hold_timer, mono + (uint64_t)(next > wall ? next - wall : 0),
			     on_hold_timer, m) < 0) {
		/* No timer: they run again without waiting rather than never. */
		log_warning("cannot arm the retry_delay timer: held jobs run again now");
		(void)ledger_hold_release(m->ledger, INT64_MAX, -1);
		for (unsigned i = 0; i < m->n_pools; i++)
			master_dispatch_soon(m->pools[i]);
	}
}

static void on_hold(void *userdata, int64_t due)
{
	arm_hold_timer(userdata);
	(void)due;
}

/* Whether a pool of c sets memory_max or tasks_max (what cgroups would enforce). */
static bool pools_set_limits(const struct config *c)
{
	for (unsigned i = 0; i < c->n_pools; i++)
		if (c->pools[i].memory_max != UINT64_MAX || c->pools[i].tasks_max)
			return true;
	return false;
}

int master_new(struct config *c, const struct master_options *opts, struct master **ret)
{
	struct master *m;
	sigset_t ss;
	int r;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->config = c;
	if (opts)
		m->opts = *opts;
	m->worker_path = spawn_worker_path();
	if (*c->supervisor.node)
		snprintf(m->node, sizeof(m->node), "%s", c->supervisor.node);
	else if (gethostname(m->node, sizeof(m->node) - 1) < 0)
		snprintf(m->node, sizeof(m->node), "localhost");
	m->zygote = (struct zygote){ .s = { .pid = 0, .pidfd = -1, .fd = -1 } };
	master_identity_init(m);
	m->cg = cgroup_tree_open(pools_set_limits(c));
	backoff_init(&m->zygote_backoff, ZYGOTE_BACKOFF_MIN, ZYGOTE_BACKOFF_MAX);

	/*
	 * sd-event needs these blocked before it can watch signals. SIGCHLD is not watched
	 * (workers are, by pidfd: death.c) and stays blocked, as callers expect.
	 */
	sigemptyset(&ss);
	sigaddset(&ss, SIGCHLD);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGHUP); /* daemon: reload; one-shot run: stop, as SIGINT */
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = sd_event_new(&m->event);
	if (r < 0)
		goto fail;
	r = m->opts.state ? durable_open(m, c) : ledger_new_from_config(c, &m->ledger);
	if (r < 0)
		goto fail;
	ledger_set_clock(m->ledger, loop_wall_now, m);
	ledger_set_hold_hook(m->ledger, on_hold, m);
	r = ledger_set_node(m->ledger, m->node);
	if (r < 0)
		goto fail;
	r = sd_event_add_defer(m->event, &m->dispatch_defer, on_dispatch_soon, m);
	if (r >= 0)
		r = sd_event_source_set_priority(m->dispatch_defer, DISPATCH_PRIORITY);
	if (r >= 0)
		r = sd_event_source_set_enabled(m->dispatch_defer, SD_EVENT_OFF);
	if (r < 0)
		goto fail;
	r = master_add_pools(m, c);
	if (r >= 0)
		r = durable_add_gone_pools(m);
	if (r >= 0)
		r = ledger_add_end_hook(m->ledger, on_job_ended, m);
	if (r < 0)
		goto fail;
	if (m->opts.daemon) {
		/* Retention: ended jobs are forgotten from a deferred source, where no caller
		 * holds a struct job pointer. One-shot runs keep every job for their report. */
		ledger_set_keep_ended(m->ledger, c->supervisor.keep_ended);
		r = sd_event_add_defer(m->event, &m->collect, on_collect, m);
		if (r >= 0)
			r = sd_event_source_set_enabled(m->collect, SD_EVENT_OFF);
		if (r < 0)
			goto fail;
		r = sd_event_add_signal(m->event, &m->sighup, SIGHUP, reload_on_sighup, m);
		if (r < 0)
			goto fail;
	}
	r = sd_event_add_signal(m->event, &m->sigint, SIGINT, on_signal, m);
	if (r >= 0)
		r = sd_event_add_signal(m->event, &m->sigterm, SIGTERM, on_signal, m);
	if (r >= 0 && !m->opts.daemon) /* a closed terminal or ssh session */
		r = sd_event_add_signal(m->event, &m->sighup, SIGHUP, on_signal, m);
	if (r < 0)
		goto fail;
	*ret = m;
	return 0;
fail:
	m->config = NULL; /* still the caller's */
	master_free(m);
	return r;
}

int master_subscribe(struct master *m, const struct master_hooks *h, void *userdata)
{
	struct master_sub *subs = realloc(m->subs, (m->n_subs + 1) * sizeof(*subs));

	if (!subs)
		return -ENOMEM;
	m->subs = subs;
	m->subs[m->n_subs].h = h;
	m->subs[m->n_subs++].userdata = userdata;
	return 0;
}

void master_unsubscribe(struct master *m, const struct master_hooks *h, void *userdata)
{
	for (unsigned i = 0; i < m->n_subs; i++) {
		if (m->subs[i].h != h || m->subs[i].userdata != userdata)
			continue;
		memmove(&m->subs[i], &m->subs[i + 1], (m->n_subs - i - 1) * sizeof(m->subs[0]));
		m->n_subs--;
		return;
	}
}

/* Jobs that ended by running: done, failed, crashed, timed out (cancelled ones did not run). */
static uint64_t ran_to_an_end(const struct ledger_stats *s)
{
	return s->by_state[JOB_DONE] + s->by_state[JOB_FAILED] + s->by_state[JOB_CRASHED] +
	       s->by_state[JOB_TIMED_OUT];
}

int master_run(struct master *m)
{
	int r;

	(void)sched_slice_set(SCHED_SLICE_SUPERVISOR_NS); /* common/sched-slice.h */
	m->stats.started_at = now_usec();
	m->stats.ended_at_start = ran_to_an_end(ledger_stats(m->ledger));
	for (unsigned i = 0; i < m->n_pools; i++) {
		struct pool *p = m->pools[i];
		bool needed = false;

		for (unsigned g = 0; g < ledger_n_groups(m->ledger); g++)
			needed |= ledger_group(m->ledger, g)->pool == i;
		if (!needed && !m->opts.daemon)
			continue; /* a pool no job uses: nothing to start in a one-shot run */
		for (unsigned k = 0; k < p->n_slots; k++)
			slot_schedule_restart(p->workers[k], 0);
		spare_ensure(p);
	}
	master_check_done(m);
	r = sd_event_loop(m->event);
	forkserver_end(m); /* every worker is gone: no more forks */
	m->state_error = durable_close(m);
	return r;
}

void master_free(struct master *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < m->n_pools; i++)
		pool_free(m->pools[i]);
	cgroup_tree_free(m->cg); /* after the workers: what is left in a slot is killed */
	free(m->pools);
	durable_free_gone_pools(m);
	sd_event_source_disable_unref(m->sigint);
	sd_event_source_disable_unref(m->sigterm);
	sd_event_source_disable_unref(m->sighup);
	sd_event_source_disable_unref(m->collect);
	sd_event_source_disable_unref(m->flush);
	sd_event_source_disable_unref(m->flush_retry);
	sd_event_source_disable_unref(m->dispatch_defer);
	sd_event_source_disable_unref(m->reload_event);
	sd_event_source_disable_unref(m->hold_timer);
	forkserver_end(m);
	sd_event_source_disable_unref(m->zygote_timer);
	free(m->subs);
	flight_table_free(&m->flights);
	crash_notes_free(&m->crash_notes);
	ledger_free(m->ledger);
	sd_event_unref(m->event);
	config_free(m->config);
	free(m->reload_changes);
	free(m->reload_warnings);
	free(m);
}

const struct config *master_config(const struct master *m)
{
	return m->config;
}

const char *master_pool_name(const struct master *m, unsigned pool)
{
	return m->pools[pool]->cfg.name;
}

const struct pool_config *master_pool_settings(const struct master *m, unsigned pool)
{
	return &m->pools[pool]->cfg;
}

int master_state_error(const struct master *m)
{
	return m->state_error;
}

bool master_durable(const struct master *m)
{
	return m->opts.state != NULL;
}

uint64_t master_flushes(const struct master *m)
{
	return m->flushes;
}

uint64_t master_flush_next(const struct master *m)
{
	return m->shared ? shared_next_flush(m) : m->flushes + 1;
}

struct group_filter {
	const struct master *m;
	unsigned group;
};

static bool in_group(void *userdata, uint64_t id)
{
	const struct group_filter *g = userdata;
	const struct job *j = ledger_job(g->m->ledger, id);

	return j && j->group == g->group;
}

int master_read_logs(struct master *m, uint64_t job, int group, size_t tail,
		     int (*cb)(void *userdata, const struct log_line *line), void *userdata)
{
	struct group_filter g = { m, (unsigned)group };
	struct log_query q = { .first = job ? job : 1,
			       .last = job ? job : ledger_n_jobs(m->ledger),
			       .match = job ? NULL : in_group,
			       .userdata = &g,
			       .tail = tail };

	return ledger_read_logs(m->ledger, &q, cb, userdata);
}

bool master_store_dirty(const struct master *m)
{
	return m->opts.state && ledger_store_dirty(m->ledger);
}

void master_flush_needed(struct master *m)
{
	m->flush_urgent = true;
	m->flush_all = true;
}

void master_flush_needed_for_submit(struct master *m)
{
	m->flush_urgent = true;
}

const char *master_node(const struct master *m)
{
	return m->node;
}

struct store *master_shared_store(const struct master *m)
{
	return m->shared;
}

const char *master_store_path(const struct master *m)
{
	return m->opts.state;
}

uint64_t master_store_commits(const struct master *m)
{
	return ledger_store_commits(m->ledger);
}

const char *master_store_failing(const struct master *m)
{
	return m->flush_failing ? ledger_store_error(m->ledger) : NULL;
}

sd_event *master_event(struct master *m)
{
	return m->event;
}

struct ledger *master_ledger(struct master *m)
{
	return m->ledger;
}

const struct master_stats *master_stats(const struct master *m)
{
	return &m->stats;
}
