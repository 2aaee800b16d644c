/* SPDX-License-Identifier: MIT */
/*
 * Worker slots: one process of a pool at a time, through EMPTY -> STARTING -> READY ->
 * (DRAINING | STOPPING) -> KILLED -> EMPTY (see master-int.h). Spawning, stopping and killing
 * a worker, its state timer, restarts on a timer with the pool's backoff, worker faults and
 * pool failure, and the lifetime of slots and pools.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/idmap.h"
#include "common/log.h"
#include "common/protocol.h"
#include "config/probe.h"
#include "daemon/cgroup.h"
#include "daemon/master-int.h"
#include "daemon/notify.h"
#include "daemon/policy.h"
#include "daemon/spawn-worker.h"

static void slot_spawn(struct worker *w);
static int slot_size(struct worker *w, unsigned threads);

const char *slot_label(const struct worker *w, char *buf, size_t size)
{
	char idx[16];

	if (w->spare)
		snprintf(idx, sizeof(idx), "%s", w->solo ? "solo" : "spare");
	else
		snprintf(idx, sizeof(idx), "%u", w->index);
	if (w->pid > 0)
		snprintf(buf, size, "%s/%s[%d]", w->pool->cfg.name, idx, (int)w->pid);
	else
		snprintf(buf, size, "%s/%s", w->pool->cfg.name, idx);
	return buf;
}

int slot_send(struct worker *w, const void *buf, size_t len)
{
	if (send(w->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

/* Which transitions the table in master-int.h has: a bit per target state. */
#define TO(s) (1u << (s))
static const unsigned transitions[_W_STATE_MAX] = {
	[W_EMPTY] = TO(W_STARTING) | TO(W_READY), /* READY: the spare took it over */
	[W_STARTING] = TO(W_READY) | TO(W_KILLED) | TO(W_EMPTY),
	[W_READY] = TO(W_DRAINING) | TO(W_STOPPING) | TO(W_KILLED) | TO(W_EMPTY),
	[W_DRAINING] = TO(W_READY) | TO(W_KILLED) | TO(W_EMPTY),
	[W_STOPPING] = TO(W_DRAINING) | TO(W_TERMINATING) | TO(W_KILLED) | TO(W_EMPTY),
	[W_TERMINATING] = TO(W_DRAINING) | TO(W_KILLED) | TO(W_EMPTY),
	[W_KILLED] = TO(W_EMPTY),
};

bool slot_transition_allowed(enum worker_state from, enum worker_state to)
{
	return from < _W_STATE_MAX && to < _W_STATE_MAX && (transitions[from] & TO(to));
}

void slot_set_state(struct worker *w, enum worker_state s)
{
	struct master *m = w->m;
	usec_t now = now_usec(), at = 0;

	assert(slot_transition_allowed(w->state, s));
	w->state = s;
	switch (s) {
	case W_STARTING:
		at = w->spawned_at + MASTER_HELLO_TIMEOUT;
		break;
	case W_DRAINING:
		at = now + w->pool->cfg.kill_grace;
		break;
	case W_STOPPING:
		at = now + w->stop_grace;
		break;
	case W_TERMINATING:
		at = now + TERM_GRACE;
		break;
	case W_READY:
		if (!w->ready_at)
			w->ready_at = now;
		break;
	default:
		break;
	}
	master_disarm(w->soon);
	if (at)
		master_arm_timer(m, &w->timer, at, slot_on_timer, w);
	else
		master_disarm(w->timer);
	if (s == W_KILLED || s == W_EMPTY)
		master_disarm(w->deadline);
}

void slot_set_end(struct worker *w, enum slot_end why)
{
	if (why > w->end)
		w->end = why;
}

bool pool_update_runs_exec(struct pool *p, const struct config *c)
{
	bool was = p->runs_exec;

	p->runs_exec = false;
	for (unsigned i = 0; c && i < c->n_groups && !p->runs_exec; i++)
		p->runs_exec = c->groups[i].kind == JOB_KIND_EXEC && c->groups[i].pool < c->n_pools &&
			       strcmp(c->pools[c->groups[i].pool].name, p->cfg.name) == 0;
	return p->runs_exec != was;
}

/* Job threads of its process: a solo worker runs one job at a time, so it has one. */
static unsigned slot_threads(const struct worker *w)
{
	return w->solo ? 1 : w->pool->cfg.threads;
}

bool slot_outdated(const struct worker *w)
{
	uid_t uid;
	gid_t gid;

	master_pool_identity(w->m, &w->pool->cfg, &uid, &gid);
	return w->pid > 0 &&
	       (w->q.threads != slot_threads(w) || w->memory_max != w->pool->cfg.memory_max ||
		w->tasks_max != w->pool->cfg.tasks_max || w->uid != uid || w->gid != gid ||
		w->core_dumps != (w->pool->cfg.core_dumps != 0) ||
		w->spawner != w->pool->runs_exec);
}

void slot_kill(struct worker *w, enum slot_end why, const char *reason)
{
	char l[64];

	if (w->pid <= 0 || w->state == W_KILLED)
		return;
	slot_set_end(w, why);
	if (reason) {
		w->kill_reason = reason;
		log_warning("worker %s: %s: killing it", slot_label(w, l, sizeof(l)), reason);
	}
	kill(w->pid, SIGKILL);
	/* And everything its jobs started, wherever it went (setsid, double forks). */
	if (w->cg_fd >= 0)
		(void)cgroup_slot_kill(w->cg_fd);
	slot_set_state(w, W_KILLED);
}

void slot_stop(struct worker *w, usec_t grace)
{
	uint8_t buf[16];
	size_t len = bh_encode_stop(buf, sizeof(buf));

	/* A draining worker is already on its way out, after kill_grace: keep that deadline. */
	if (w->pid <= 0 || w->state >= W_DRAINING)
		return;
	/* An ASSIGN still held back never goes: its jobs are re-queued when the worker exits. */
	free(w->held);
	w->held = NULL;
	slot_set_end(w, END_STOP); /* its death is nobody's fault from now on */
	if (w->state == W_STARTING || slot_send(w, buf, len) < 0) {
		slot_kill(w, END_STOP, NULL);
		return;
	}
	w->stop_grace = grace;
	slot_set_state(w, W_STOPPING);
}

/*
 * A draining worker whose timed-out jobs all sent their results after all (late, but they
 * ended): it is healthy, so it takes jobs again instead of being killed at the end of
 * kill_grace. Killing it then would re-run its other jobs for nothing.
 */
void slot_resume(struct worker *w)
{
	char l[64];

	w->end = END_NONE; /* it is not ending after all */
	slot_set_state(w, W_READY);
	log_info("worker %s: the job that timed out ended after all; it takes jobs again",
		 slot_label(w, l, sizeof(l)));
}

int slot_on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct worker *w = userdata;

	switch (w->state) {
	case W_EMPTY:
		slot_spawn(w);
		break;
	case W_STARTING:
		slot_kill(w, END_BROKEN, "no HELLO in time");
		break;
	case W_DRAINING:
		slot_kill(w, END_TIMEOUT, NULL); /* (an injected hang keeps END_INJECT) */
		break;
	case W_STOPPING: {
		char l[64];

		/* The stop deadline passed: SIGTERM first, SIGKILL TERM_GRACE later. */
		log_notice("worker %s did not stop in time: SIGTERM, then SIGKILL in 1s",
			   slot_label(w, l, sizeof(l)));
		kill(w->pid, SIGTERM);
		slot_set_state(w, W_TERMINATING);
		break;
	}
	case W_TERMINATING:
		slot_kill(w, END_STOP, NULL);
		break;
	default:
		break;
	}
	return 0;
}

static void pool_fail(struct pool *p)
{
	struct master *m = p->m;
	uint64_t n;
	char d[FORMAT_DURATION_MAX];
	struct lfields f;

	if (p->state == POOL_FAILED)
		return;
	p->state = POOL_FAILED;
	n = ledger_cancel_queued(m->ledger, p->index, CAUSE_POOL_FAILED);
	log_fields(LOG_ERR, master_lfields(&f, p, NULL, NULL, 0, "pool failed"),
		   "pool %s failed: more than %u worker faults within %s; %llu queued job%s "
		   "cancelled",
		   p->cfg.name, p->cfg.max_worker_faults.count,
		   format_duration(d, sizeof(d), p->cfg.max_worker_faults.window),
		   (unsigned long long)n, n == 1 ? "" : "s");
	for (unsigned i = 0; i < p->n_slots; i++) {
		struct worker *w = p->workers[i];

		if (w->pid > 0)
			slot_stop(w, m->config->supervisor.drain_timeout);
		else
			slot_timer_off(w);
	}
	spare_ensure(p); /* a failed pool has none: it is retired */
	if (p->cfg.on_pool_failure == POOL_FAILURE_EXIT) {
		m->stats.pool_failure_exit = true;
		master_begin_stop(m, CAUSE_POOL_FAILED);
	}
	master_check_ready(m);
	master_check_done(m);
}

static int slot_on_soon(sd_event_source *s, void *userdata)
{
	return slot_on_timer(s, now_usec(), userdata);
}

void slot_timer_off(struct worker *w)
{
	master_disarm(w->timer);
	master_disarm(w->soon);
}

void slot_schedule_restart(struct worker *w, usec_t delay)
{
	/*
	 * sd-event may fire a timer anywhere within its accuracy to coalesce wake-ups; a
	 * restart "at once" must not wait up to TIMER_ACCURACY for that. Backoff delays keep
	 * an accuracy of an eighth of the delay.
	 */
	usec_t accuracy = delay / 8 > TIMER_ACCURACY ? TIMER_ACCURACY : delay / 8;

	/*
	 * "At once" (a culprit's restart, the next spare: twice a crash) is a defer source,
	 * run on the loop's next turn: a timer due now would set the timerfd to now and back
	 * to the next deadline, two timerfd_settime() a restart, each a VM exit on a guest.
	 */
	master_disarm(w->soon);
	if (delay == 0 && (w->soon || sd_event_add_defer(w->m->event, &w->soon, slot_on_soon,
							  w) >= 0)) {
		master_disarm(w->timer);
		sd_event_source_set_enabled(w->soon, SD_EVENT_ONESHOT);
		return;
	}
	if (master_arm_timer(w->m, &w->timer, now_usec() + delay, slot_on_timer, w) >= 0)
		sd_event_source_set_time_accuracy(w->timer, accuracy > 0 ? accuracy : 1);
}

/* A worker fault (died idle, before HELLO, or could not start): backoff or pool failure. */
void slot_fault(struct worker *w, usec_t uptime, const char *what)
{
	struct pool *p = w->pool;
	struct master *m = w->m;
	uint32_t rnd = 0;
	usec_t delay;
	char l[64], d[FORMAT_DURATION_MAX];

	struct lfields f;

	m->stats.worker_faults++;
	p->worker_faults++;
	if (fault_window_add(&p->faults, now_usec())) {
		log_fields(LOG_ERR, master_lfields(&f, p, w, NULL, 0, "worker fault"),
			   "worker %s %s (worker fault)", slot_label(w, l, sizeof(l)), what);
		pool_fail(p);
		return;
	}
	(void)!getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK);
	delay = backoff_next(&w->backoff, uptime, p->cfg.min_uptime, rnd);
	log_fields(LOG_WARNING, master_lfields(&f, p, w, NULL, 0, "worker fault"),
		   "worker %s %s (worker fault %u of %u in %s); restarting in %s",
		   slot_label(w, l, sizeof(l)), what, fault_window_count(&p->faults, now_usec()),
		   p->cfg.max_worker_faults.count,
		   format_duration(d, sizeof(d), p->cfg.max_worker_faults.window),
		   format_duration(d + 16, sizeof(d) - 16, delay));
	slot_schedule_restart(w, delay);
}

/*
 * The master could not start a worker for lack of its own resources (fds, memory, processes):
 * not the worker's fault and not counted as one; the slot tries again after a delay that
 * doubles up to RESOURCE_RETRY_MAX. One warning per RESOURCE_LOG_INTERVAL for the master.
 */
static void slot_resource_retry(struct worker *w, int err, const char *what)
{
	char l[64], d[FORMAT_DURATION_MAX];

	w->resource_delay = w->resource_delay ? w->resource_delay * 2 : RESOURCE_RETRY_MIN;
	if (w->resource_delay > RESOURCE_RETRY_MAX)
		w->resource_delay = RESOURCE_RETRY_MAX;
	if (w->m->resource_logged + RESOURCE_LOG_INTERVAL <= now_usec()) {
		w->m->resource_logged = now_usec();
		log_warning("worker %s: cannot %s: %s (the master's own resources, not a worker "
			    "fault); trying again in %s, and on until it can",
			    slot_label(w, l, sizeof(l)), what, strerror(-err),
			    format_duration(d, sizeof(d), w->resource_delay));
	} else {
		log_debug("worker %s: cannot %s: %s; again in %s", slot_label(w, l, sizeof(l)),
			  what, strerror(-err), format_duration(d, sizeof(d), w->resource_delay));
	}
	slot_schedule_restart(w, w->resource_delay);
}

static void slot_spawn(struct worker *w)
{
	struct master *m = w->m;
	const struct pool_config *pc = &w->pool->cfg;
	/* With memory.max in the slot's cgroup, no RLIMIT_AS on top of it. */
	struct worker_launch launch = {
		.pool = pc->name, .index = w->index, .threads = slot_threads(w),
		.memory_max = cgroup_tree_memory(m->cg) ? UINT64_MAX : pc->memory_max,
		.core_dumps = pc->core_dumps != 0,
		.spawner = w->pool->runs_exec,
	};
	struct spawned_worker s;
	char l[64], what[256];
	int r;

	if (m->stopping || w->pool->state != POOL_UP || w->next == NEXT_RETIRE)
		return;
	r = slot_size(w, launch.threads);
	if (r < 0) {
		slot_resource_retry(w, r, "set it up");
		return;
	}
	w->next = NEXT_RESTART;
	/* The pool's warm spare, if it is ready, becomes this slot's process at once. */
	if (!w->spare && spare_take_over(w))
		return;
	/* Its cgroup first, limits set, so that the process is under them from its first
	 * steps; without one it runs in the master's (said once). */
	slot_cgroup_prepare(w);
	master_pool_identity(m, pc, &launch.uid, &launch.gid);
	r = forkserver_start_worker(m, &launch, &s);
	if (r < 0 && master_resource_error(r)) {
		slot_resource_retry(w, r, "start it");
		return;
	}
	if (r < 0) {
		snprintf(what, sizeof(what), "could not start: %s: %s", m->worker_path,
			 strerror(-r));
		slot_fault(w, 0, what);
		return;
	}
	w->pid = s.pid;
	w->fd = s.fd;
	w->memory_max = pc->memory_max;
	w->tasks_max = pc->tasks_max;
	w->core_dumps = launch.core_dumps;
	w->spawner = launch.spawner;
	w->died_oom = false;
	if (w->cg_fd >= 0) {
		w->oom_base = cgroup_slot_oom_kills(w->cg_fd);
		r = cgroup_slot_attach(w->cg_fd, s.pid);
		if (r < 0)
			log_warning("worker %s: not moved into its cgroup: %s",
				    slot_label(w, l, sizeof(l)), strerror(-r));
	}
	w->uid = launch.uid;
	w->gid = launch.gid;
	w->spawned_at = now_usec();
	w->ready_at = 0;
	slot_process_reset(w);
	slot_set_state(w, W_STARTING);
	r = sd_event_add_io(m->event, &w->io, w->fd, EPOLLIN, frames_on_io, w);
	if (r >= 0)
		r = sd_event_add_io(m->event, &w->child, s.pidfd, EPOLLIN, reap_on_pidfd, w);
	if (r < 0) {
		/* Cannot watch it: do not let it run unwatched. */
		kill(s.pid, SIGKILL);
		waitpid(s.pid, NULL, 0);
		close(s.pidfd);
		w->io = sd_event_source_unref(w->io);
		close(w->fd);
		w->pid = 0;
		slot_set_state(w, W_EMPTY);
		if (master_resource_error(r))
			slot_resource_retry(w, r, "watch it");
		else
			slot_fault(w, 0, "could not be watched");
		return;
	}
	w->resource_delay = 0;
	sd_event_source_set_io_fd_own(w->child, true);
	w->reap_delay = 0;
	m->n_alive++;
	m->stats.workers_started++;
	if (w->spare) {
		log_debug("worker %s started", slot_label(w, l, sizeof(l)));
	} else if (w->spawns++ > 0) {
		struct lfields f;

		m->stats.restarts++;
		w->pool->restarts++;
		log_fields(LOG_INFO, master_lfields(&f, w->pool, w, NULL, 0, NULL),
			   "worker %s restarted", slot_label(w, l, sizeof(l)));
	} else {
		log_debug("worker %s started", slot_label(w, l, sizeof(l)));
	}
}

void slot_cgroup_prepare(struct worker *w)
{
	struct master *m = w->m;
	const struct pool_config *pc = &w->pool->cfg;
	char l[64];
	int fd;

	if (!m->cg)
		return;
	fd = cgroup_slot_prepare(m->cg, pc->name, w->index, pc->memory_max, pc->tasks_max);
	if (fd < 0 && w->cg_fd < 0)
		log_warning("worker %s: no cgroup of its own: %s", slot_label(w, l, sizeof(l)),
			    strerror(-fd));
	if (fd >= 0) {
		if (w->cg_fd >= 0)
			close(w->cg_fd);
		w->cg_fd = fd;
	}
}

void slot_cgroup_attach_spawner(struct worker *w)
{
	bool as_worker = w->uid != (uid_t)-1 && geteuid() != 0;
	char path[64], buf[256], l[64], *p, *end;
	uid_t fsuid = 0;
	gid_t fsgid = 0;
	ssize_t n = -1;
	int fd;

	if (w->cg_fd < 0 || !w->spawner || w->pid <= 0)
		return;
	/* As the worker's uid, as frames.c's is_command_of() reads /proc. */
	if (as_worker) {
		fsgid = (gid_t)setfsgid(w->gid);
		fsuid = (uid_t)setfsuid(w->uid);
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)w->pid, (int)w->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (as_worker) {
		setfsuid(fsuid);
		setfsgid(fsgid);
	}
	if (n < 0) {
		log_warning("worker %s: cannot find its spawner to move into its cgroup: %s",
			    slot_label(w, l, sizeof(l)), strerror(errno));
		return;
	}
	buf[n] = '\0';
	for (p = buf;; p = end) {
		long pid = strtol(p, &end, 10);
		int r;

		if (end == p || pid <= 0)
			break;
		r = cgroup_slot_attach(w->cg_fd, (pid_t)pid);
		if (r < 0 && r != -ESRCH)
			log_warning("worker %s: its spawner %ld not moved into its cgroup: %s",
				    slot_label(w, l, sizeof(l)), pid, strerror(-r));
	}
}

void slot_process_reset(struct worker *w)
{
	w->mode = MODE_SHARED;
	w->end = END_NONE;
	w->blocked = w->crash_frame = w->crash_info = w->contained_info = false;
	w->contained.job_id = 0;
	w->injected = NULL;
	w->fenced = false;
	w->kill_reason = NULL;
	w->deadline_at = USEC_INFINITY;
}

struct worker *slot_new(struct pool *p, unsigned index)
{
	struct worker *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->m = p->m;
	w->pool = p;
	w->index = index;
	w->fd = -1;
	w->cg_fd = -1;
	w->deadline_at = USEC_INFINITY;
	backoff_init(&w->backoff, p->cfg.backoff_min, p->cfg.backoff_max);
	return w;
}

/* Sizes the in-flight queue for `threads` (the process about to be spawned); it is empty. */
static int slot_size(struct worker *w, unsigned threads)
{
	return flight_queue_init(&w->q, threads);
}

/* Grows the pool's slot array to n slots (new slots are EMPTY, not started). */
int pool_grow_slots(struct pool *p, unsigned n)
{
	struct worker **ws;

	if (n <= p->n_slots)
		return 0;
	ws = realloc(p->workers, n * sizeof(*ws));
	if (!ws)
		return -ENOMEM;
	p->workers = ws;
	for (; p->n_slots < n; p->n_slots++) {
		ws[p->n_slots] = slot_new(p, p->n_slots);
		if (!ws[p->n_slots])
			return -ENOMEM;
	}
	return 0;
}

int pool_new(struct master *m, const struct pool_config *pc, unsigned index,
		    struct pool **ret)
{
	struct pool *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->m = m;
	p->index = index;
	p->cfg = *pc;
	p->cfg.user = p->cfg.group = NULL; /* the config's strings: only uid and gid are kept */
	p->state = POOL_UP;
	(void)pool_update_runs_exec(p, m->config); /* a reload's new pool: again with its config */
	*ret = p; /* freed by the caller's pool_free() on error */
	r = fault_window_init(&p->faults, pc->max_worker_faults.count,
			      pc->max_worker_faults.window);
	if (r < 0)
		return r;
	return pool_grow_slots(p, pc->workers);
}

void slot_free(struct worker *w)
{
	if (!w)
		return;
	if (w->pid > 0) {
		kill(w->pid, SIGKILL);
		inflight_kill_commands(w);
		/* The pidfd's source closes it; reap here so no zombie is left. */
		waitpid(w->pid, NULL, 0);
	}
	free(w->execs);
	free(w->held);
	idmap_clear(&w->specs);
	sd_event_source_disable_unref(w->io);
	sd_event_source_disable_unref(w->child);
	sd_event_source_disable_unref(w->reap);
	sd_event_source_disable_unref(w->timer);
	sd_event_source_disable_unref(w->soon);
	sd_event_source_disable_unref(w->deadline);
	if (w->fd >= 0)
		close(w->fd);
	if (w->cg_fd >= 0)
		close(w->cg_fd);
	flight_queue_free(&w->q);
	free(w);
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	for (unsigned k = 0; k < p->n_slots; k++)
		slot_free(p->workers[k]);
	slot_free(p->spare);
	while (p->dying) {
		struct worker *d = p->dying;

		p->dying = d->dying_next;
		slot_free(d);
	}
	for (unsigned k = 0; k < MASTER_SOLO_MAX; k++)
		slot_free(p->solo[k]);
	free(p->workers);
	fault_window_done(&p->faults);
	free(p);
}
