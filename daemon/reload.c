/* SPDX-License-Identifier: MIT */
/*
 * Reload (SIGHUP): parse and validate the whole file, then apply the difference by pool and
 * group name, or keep everything as it was. Pools roll their workers one at a time.
 */
#include <dirent.h>
#include <stdarg.h>
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

/*
 * A change the reload makes (logged at notice) or one it leaves for a restart (a warning),
 * also kept for master_reload_report(): the control's reload reply says them.
 */
static void __attribute__((format(printf, 3, 4)))
note(struct master *m, bool warning, const char *fmt, ...)
{
	FILE *f = warning ? m->reload_warnings_f : m->reload_changes_f;
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (warning)
		log_warning("%s", text);
	else
		log_notice("%s", text);
	if (f)
		fprintf(f, "%s\n", text);
}

void master_reload_report(const struct master *m, const char **ret_changes,
			  const char **ret_warnings)
{
	*ret_changes = m->reload_changes ? m->reload_changes : "";
	*ret_warnings = m->reload_warnings ? m->reload_warnings : "";
}

/*
 * Replaces the pool's outdated workers one at a time: the next one is stopped only once every
 * other slot of the pool is READY again, so the pool never has more than one worker down for
 * the roll.
 */
void pool_roll_next(struct pool *p)
{
	struct worker *next = NULL;

	if (p->state != POOL_UP || p->m->stopping)
		return;
	for (unsigned k = 0; k < p->n_slots; k++) {
		struct worker *w = p->workers[k];

		if (w->next == NEXT_RETIRE)
			continue;
		if (w->state != W_READY)
			return; /* a replacement (or a restart) is still on its way */
		if ((w->next == NEXT_REPLACE || slot_outdated(w)) && !next)
			next = w;
	}
	if (next) {
		char l[64];

		log_info("worker %s: replacing it (reload or restart)",
			 slot_label(next, l, sizeof(l)));
		slot_stop(next, p->m->config->supervisor.drain_timeout);
	} else {
		if (p->spare && p->spare->state == W_READY)
			dispatch_fill(p->spare); /* replaced if outdated, once idle */
		for (unsigned k = 0; k < MASTER_SOLO_MAX; k++)
			if (p->solo[k] && p->solo[k]->state == W_READY)
				dispatch_fill(p->solo[k]);
	}
}

/* Frees retired slots at the end of the array once their process is gone. */
void pool_trim_slots(struct pool *p)
{
	while (p->n_slots > p->cfg.workers || (p->state == POOL_REMOVED && p->n_slots > 0)) {
		struct worker *w = p->workers[p->n_slots - 1];

		if (w->next != NEXT_RETIRE || w->pid > 0)
			return;
		slot_free(w);
		p->n_slots--;
	}
}

static bool pool_config_equal(const struct pool_config *a, const struct pool_config *b)
{
	return a->workers == b->workers && a->threads == b->threads &&
	       a->backoff_min == b->backoff_min && a->backoff_max == b->backoff_max &&
	       a->min_uptime == b->min_uptime &&
	       a->max_worker_faults.count == b->max_worker_faults.count &&
	       a->max_worker_faults.window == b->max_worker_faults.window &&
	       a->memory_max == b->memory_max && a->tasks_max == b->tasks_max &&
	       a->kill_grace == b->kill_grace && a->spare == b->spare &&
	       a->on_pool_failure == b->on_pool_failure && a->uid == b->uid && a->gid == b->gid;
}

static void pool_resize(struct pool *p, unsigned workers)
{
	unsigned old = p->n_slots;

	for (unsigned k = 0; k < p->n_slots && k < workers; k++)
		if (p->workers[k]->next == NEXT_RETIRE)
			p->workers[k]->next = NEXT_RESTART;
	if (pool_grow_slots(p, workers) < 0) {
		log_error("pool %s: out of memory growing to %u workers", p->cfg.name, workers);
		return;
	}
	for (unsigned k = old; k < workers; k++)
		slot_schedule_restart(p->workers[k], 0);
	for (unsigned k = workers; k < p->n_slots; k++) {
		struct worker *w = p->workers[k];

		w->next = NEXT_RETIRE;
		if (w->pid > 0)
			slot_stop(w, p->m->config->supervisor.drain_timeout);
		else
			slot_timer_off(w);
	}
	pool_trim_slots(p);
}

/* Applies a changed [pool] section, saying what it changes. True if anything changed. */
static bool pool_reconfigure(struct pool *p, const struct pool_config *pc)
{
	bool revive = p->state == POOL_FAILED;

	if (pool_config_equal(&p->cfg, pc))
		return false;
	if (pc->max_worker_faults.count != p->cfg.max_worker_faults.count ||
	    pc->max_worker_faults.window != p->cfg.max_worker_faults.window || revive) {
		fault_window_done(&p->faults);
		if (fault_window_init(&p->faults, pc->max_worker_faults.count,
				      pc->max_worker_faults.window) < 0)
			log_error("pool %s: out of memory for the fault window", pc->name);
	}
	if (pc->workers != p->cfg.workers)
		note(p->m, false, "pool %s: resized from %u to %u workers", pc->name, p->cfg.workers,
		     pc->workers);
	if (pc->threads != p->cfg.threads || pc->memory_max != p->cfg.memory_max ||
	    pc->tasks_max != p->cfg.tasks_max || pc->uid != p->cfg.uid || pc->gid != p->cfg.gid)
		note(p->m, false,
		     "pool %s: workers replaced one at a time (threads, memory_max, tasks_max, "
		     "user or group changed)",
		     pc->name);
	else if (pc->workers == p->cfg.workers && !revive)
		note(p->m, false, "pool %s: new settings applied", pc->name);
	p->cfg = *pc;
	p->cfg.user = p->cfg.group = NULL; /* the config's strings: only uid and gid are kept */
	for (unsigned k = 0; k < p->n_slots; k++) {
		struct worker *w = p->workers[k];

		/* A worker started with other threads, memory_max or ids is replaced (slot_outdated). */
		backoff_init(&w->backoff, pc->backoff_min, pc->backoff_max);
	}
	if (revive) {
		note(p->m, false, "pool %s: changed by the reload: starting it again", pc->name);
		p->state = POOL_UP;
		for (unsigned k = 0; k < p->n_slots; k++)
			if (p->workers[k]->pid <= 0)
				slot_schedule_restart(p->workers[k], 0);
	}
	pool_resize(p, pc->workers);
	spare_ensure(p); /* started, retired or (once idle, if outdated) replaced */
	pool_roll_next(p);
	return true;
}

static void pool_remove(struct pool *p)
{
	struct master *m = p->m;
	uint64_t n;

	p->state = POOL_REMOVED;
	n = ledger_cancel_queued(m->ledger, p->index, CAUSE_POOL_REMOVED);
	note(m, false,
	     "pool %s: removed by the reload: its workers finish their jobs and stop; %llu "
	     "queued job%s cancelled",
	     p->cfg.name, (unsigned long long)n, n == 1 ? "" : "s");
	for (unsigned k = 0; k < p->n_slots; k++) {
		struct worker *w = p->workers[k];

		w->next = NEXT_RETIRE;
		if (w->pid > 0)
			slot_stop(w, m->config->supervisor.drain_timeout);
		else
			slot_timer_off(w);
	}
	pool_trim_slots(p);
	spare_ensure(p); /* removed: retired */
}

static int find_live_pool(const struct master *m, const char *name)
{
	for (unsigned i = 0; i < m->n_pools; i++)
		if (m->pools[i]->state != POOL_REMOVED && strcmp(m->pools[i]->cfg.name, name) == 0)
			return (int)i;
	return -ENOENT;
}

/* Pools of nc: new ones added, changed ones reconfigured; map[i] = master index. */
static int reload_pools(struct master *m, const struct config *nc, unsigned *map)
{
	for (unsigned i = 0; i < nc->n_pools; i++) {
		int idx = find_live_pool(m, nc->pools[i].name);
		struct pool **ps;
		int r;

		if (idx >= 0) {
			pool_reconfigure(m->pools[idx], &nc->pools[i]);
			map[i] = (unsigned)idx;
			continue;
		}
		ps = realloc(m->pools, (m->n_pools + 1) * sizeof(*ps));
		if (!ps)
			return -ENOMEM;
		m->pools = ps;
		r = pool_new(m, &nc->pools[i], m->n_pools, &m->pools[m->n_pools]);
		m->n_pools++;
		if (r >= 0)
			r = master_sync_pools(m);
		if (r < 0)
			return r;
		map[i] = m->n_pools - 1;
		note(m, false, "pool %s: added by the reload: %u worker%s started",
		     nc->pools[i].name, nc->pools[i].workers, nc->pools[i].workers == 1 ? "" : "s");
		for (unsigned k = 0; k < m->pools[map[i]]->n_slots; k++)
			slot_schedule_restart(m->pools[map[i]]->workers[k], 0);
		spare_ensure(m->pools[map[i]]);
	}
	for (unsigned i = 0; i < m->n_pools; i++) {
		struct pool *p = m->pools[i];

		if (p->state != POOL_REMOVED && config_find_pool(nc, p->cfg.name) < 0)
			pool_remove(p);
	}
	return 0;
}

/*
 * A shared store's nodes adopt the config's groups at their start, by name and definition,
 * under a lock (a group runs once across the nodes); a reload on each node would add a new
 * group once per node. So a reload that adds one is refused, saying so.
 */
static int shared_groups_unchanged(struct master *m, const struct config *nc, char **ret_errors)
{
	for (unsigned i = 0; i < nc->n_groups; i++) {
		if (ledger_find_group(m->ledger, nc->groups[i].name) >= 0)
			continue;
		if (asprintf(ret_errors,
			     "%s:%u: [job %s] is new: with store = postgresql: job groups are added "
			     "when the nodes start (each adopts them by name and definition, so a "
			     "group runs once across the nodes), not by a reload; restart the nodes "
			     "one after the other",
			     nc->path, nc->groups[i].line, nc->groups[i].name) < 0)
			*ret_errors = NULL;
		return -EINVAL;
	}
	return 0;
}

/* Job groups of nc: new ones are added with their jobs; existing ones take new limits. */
static int reload_groups(struct master *m, const struct config *nc, const unsigned *map)
{
	for (unsigned i = 0; i < nc->n_groups; i++) {
		struct group_config gc = nc->groups[i];
		int g = ledger_find_group(m->ledger, gc.name);
		unsigned added;
		int r;

		gc.pool = map[gc.pool];
		if (g >= 0) {
			const struct group_config *cur = ledger_group(m->ledger, (unsigned)g);

			if (cur->pool != gc.pool || strcmp(cur->run, gc.run) != 0 ||
			    strcmp(cur->args, gc.args) != 0 || cur->count != gc.count ||
			    !config_group_exec_equal(cur, &gc))
				note(m, true,
				     "job group %s: pool, run, args, count, the exec settings and "
				     "retry_delay of existing jobs stay as they were (a restart "
				     "applies them); timeout, max_attempts and expect are updated",
				     gc.name);
			gc.count = cur->count; /* of the jobs it has; a restart adds more */
			ledger_update_group(m->ledger, (unsigned)g, &gc);
			continue;
		}
		r = master_add_group(m, &gc, &added);
		if (r < 0)
			return r;
		note(m, false, "job group %s: added by the reload: %u job%s", gc.name, gc.count,
		     gc.count == 1 ? "" : "s");
	}
	return 0;
}

int master_reload(struct master *m, char **ret_errors)
{
	struct config *nc = NULL;
	char *errors = NULL;
	unsigned *map;
	int r;

	if (m->stopping) {
		if (ret_errors)
			*ret_errors = strdup("stopping: no reload");
		return -ESHUTDOWN;
	}
	MASTER_EMIT(m, on_reloading);
	log_notice("reloading %s", m->config->path);
	r = config_load(m->config->path, &nc, &errors);
	/*
	 * Its plugins are loaded by a throwaway worker first (this blocks the loop for as long
	 * as the probes take: a reload is rare, and a constructor must never run here).
	 */
	if (r >= 0) {
		r = config_probe_plugins(nc, m->worker_path, MASTER_RELOAD_PROBE_MS, &errors);
		if (r < 0) {
			config_free(nc);
			nc = NULL;
			if (!errors && asprintf(&errors, "cannot probe the plugins with %s: %s",
						m->worker_path, strerror(-r)) < 0)
				errors = NULL;
		}
	}
	if (r >= 0 && m->shared) {
		r = shared_groups_unchanged(m, nc, &errors);
		if (r < 0) {
			config_free(nc);
			nc = NULL;
		}
	}
	if (r < 0) {
		char *copy = errors ? strdup(errors) : NULL, *save = NULL;

		for (char *line = strtok_r(errors, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			log_error("%s", line);
		log_error("reload failed: still running the config loaded before");
		free(errors);
		MASTER_EMIT(m, on_reloaded, false);
		if (ret_errors)
			*ret_errors = copy;
		else
			free(copy);
		return r;
	}
	map = calloc(nc->n_pools ? nc->n_pools : 1, sizeof(*map));
	if (!map) {
		log_error("reload failed: out of memory; still running the config loaded before");
		config_free(nc);
		MASTER_EMIT(m, on_reloaded, false);
		return -ENOMEM;
	}
	/* The new config parsed and validated as a whole: from here on it is applied. */
	free(m->reload_changes);
	free(m->reload_warnings);
	m->reload_changes = m->reload_warnings = NULL;
	{
		size_t n1, n2;

		m->reload_changes_f = open_memstream(&m->reload_changes, &n1);
		m->reload_warnings_f = open_memstream(&m->reload_warnings, &n2);
	}
	log_set_max_level((int)nc->supervisor.log_level);
	if (m->opts.daemon) {
		ledger_set_keep_ended(m->ledger, nc->supervisor.keep_ended);
		sd_event_source_set_enabled(m->collect, SD_EVENT_ONESHOT);
	}
	if (strcmp(nc->supervisor.control_socket, m->config->supervisor.control_socket) != 0)
		note(m, true, "control_socket changes take effect at the next start");
	if (strcmp(nc->supervisor.metrics_listen, m->config->supervisor.metrics_listen) != 0)
		note(m, true, "metrics_listen changes take effect at the next start");
	if (strcmp(nc->supervisor.node, m->config->supervisor.node) != 0)
		note(m, true, "node changes take effect at the next start");
	r = reload_pools(m, nc, map);
	if (r >= 0)
		r = reload_groups(m, nc, map);
	if (r < 0)
		log_error_errno(r, "reload incomplete");
	free(map);
	config_free(m->config);
	m->config = nc;
	/* A pool that gained or lost its exec: groups: its workers replaced, with or without a
	 * spawner, one at a time once idle. */
	for (unsigned i = 0; i < m->n_pools; i++)
		if (pool_update_runs_exec(m->pools[i], nc))
			pool_roll_next(m->pools[i]);
	if (m->reload_changes_f && fclose(m->reload_changes_f) != 0) {
		free(m->reload_changes);
		m->reload_changes = NULL;
	}
	if (m->reload_warnings_f && fclose(m->reload_warnings_f) != 0) {
		free(m->reload_warnings);
		m->reload_warnings = NULL;
	}
	m->reload_changes_f = m->reload_warnings_f = NULL;
	log_notice("reloaded");
	MASTER_EMIT(m, on_reloaded, true);
	master_check_done(m);
	m->last_reload = now_usec();
	return 0;
}

static int on_reload_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct master *m = userdata;

	master_reload(m, NULL);
	m->last_reload = now_usec();
	return 0;
}

/* A SIGHUP storm is one reload: at most one per RELOAD_MIN_INTERVAL, after the last one. */
int reload_on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct master *m = userdata;
	int enabled = SD_EVENT_OFF;
	usec_t when = m->last_reload + RELOAD_MIN_INTERVAL;

	if (m->stopping)
		return 0;
	if (m->reload_event)
		sd_event_source_get_enabled(m->reload_event, &enabled);
	if (enabled != SD_EVENT_OFF)
		return 0; /* one is already pending: this SIGHUP joins it */
	if (when < now_usec())
		when = now_usec();
	master_arm_timer(m, &m->reload_event, when, on_reload_timer, m);
	return 0;
}
