/* SPDX-License-Identifier: MIT */
/*
 * A run recorded in a store file (master_options.state, `bulkhead run --state FILE`): the
 * SQLite store is opened instead of the memory one; a new file takes the config's groups, a
 * file that holds a run must be of this config and is resumed (ledger_recover() for the jobs
 * its master died under, ledger_resume() for those its stop cancelled). Everything changed is
 * flushed once per loop pass, from a post source (after whatever the pass dispatched), and
 * once more when the loop ends.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/master-int.h"
#include "daemon/store-sqlite.h"

static bool same_inputs(const struct group_config *a, const struct group_config *b)
{
	if (a->n_inputs != b->n_inputs)
		return false;
	for (unsigned i = 0; i < a->n_inputs; i++)
		if (strcmp(a->input_paths[i], b->input_paths[i]) != 0)
			return false;
	return true;
}

/* What differs between group a of the file and group b of the config, or NULL. */
static const char *group_difference(const struct group_config *a, const struct group_config *b)
{
	if (strcmp(a->name, b->name) != 0)
		return "name";
	if (a->pool != b->pool)
		return "pool";
	if (strcmp(a->run, b->run) != 0)
		return "run";
	if (strcmp(a->args, b->args) != 0)
		return "args";
	if (strcmp(a->spool, b->spool) != 0)
		return "spool";
	/* A spool's group grows with the files it takes: its count is not the config's. */
	if (!b->spool[0] && a->count != b->count)
		return "count (or how many files its inputs match)";
	if (!same_inputs(a, b))
		return "the files its inputs match";
	if (a->max_attempts != b->max_attempts)
		return "max_attempts";
	if (a->expect != b->expect)
		return "expect";
	if (!config_group_exec_equal(a, b))
		return "environment, working_directory, success_exit_status, nice or retry_delay";
	return NULL;
}

/* A file that holds a run must hold this config's groups, in order. */
static int check_same_run(struct master *m, const struct config *c)
{
	unsigned n = ledger_n_groups(m->ledger);
	const char *why = NULL;

	if (n != c->n_groups) {
		log_error("%s: records a run of %u job groups, the config has %u: not the same run "
			  "(use another --state file for this one)",
			  m->opts.state, n, c->n_groups);
		return -EINVAL;
	}
	for (unsigned g = 0; g < n; g++) {
		why = group_difference(ledger_group(m->ledger, g), &c->groups[g]);
		if (!why)
			continue;
		log_error("%s: records another run: [job %s] differs in %s (use another --state "
			  "file for this one)",
			  m->opts.state, c->groups[g].name, why);
		return -EINVAL;
	}
	return 0;
}

/*
 * bulkheadd: what nobody waits for (jobs that ended, counters) is written within this long,
 * with what comes meanwhile: a job's end usually goes with the next submit's write, as in
 * any group commit, instead of costing a write of its own. A master killed meanwhile loses
 * only that: those jobs run again, and no client was told they had ended (every reply waits
 * for the write of what it tells). A one-shot run writes every pass: its record is the point.
 */
#define DURABLE_LAZY_USEC (100 * USEC_PER_MSEC)

/* A loop pass, so a flush: while writes fail (each second), or when a lazy write is due. */
static int on_flush_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	return 0;
}

static int durable_on_post(sd_event_source *s, void *userdata)
{
	struct master *m = userdata;
	usec_t now = now_usec();

	shared_want(m);
	if (m->opts.daemon && !m->flush_urgent && !m->flush_failing && !m->stopping &&
	    now < m->flushed_at + DURABLE_LAZY_USEC) {
		if (ledger_store_dirty(m->ledger))
			master_arm_timer(m, &m->flush_retry, m->flushed_at + DURABLE_LAZY_USEC,
					 on_flush_timer, m);
		return 0;
	}
	durable_flush(m, now);
	return 0;
}

/*
 * A reply waits for the write (flush_urgent): write now, before the jobs of this pass are
 * dispatched (master.c's on_dispatch_soon), so the reply goes out first. True if it wrote.
 */
bool durable_flush_first(struct master *m)
{
	if (!m->opts.state || !m->flush || !m->flush_urgent || m->flush_failing)
		return false;
	return durable_flush(m, now_usec()) >= 0;
}

/*
 * bulkheadd, when only submits' replies wait: starts that are their jobs' one change are
 * left for the next full write (ledger_flush_partial()), so that a job that ends before it
 * is written once, not twice. A reply that may tell of anything else waits for a full one,
 * and one is made at least every DURABLE_LAZY_USEC: a start stays unwritten no longer than
 * an end. A master killed meanwhile runs those jobs again as if they had not started.
 */
static bool partial_flush(const struct master *m, usec_t now)
{
	return m->opts.daemon && !m->shared && m->flush_urgent && !m->flush_all &&
	       !m->flush_failing && !m->stopping && now < m->flushed_all_at + DURABLE_LAZY_USEC;
}

int durable_flush(struct master *m, usec_t now)
{
	uint64_t commits = ledger_store_commits(m->ledger);
	usec_t t0 = now_usec();
	bool partial = partial_flush(m, now);
	int r = partial ? ledger_flush_partial(m->ledger) : ledger_flush(m->ledger);

	if (ledger_store_commits(m->ledger) != commits)
		histogram_observe(&m->commit_time, (double)(now_usec() - t0) / 1e6);
	if (r < 0 && !m->flush_failing)
		log_error("%s; %s", ledger_store_error(m->ledger),
			  m->opts.daemon ? "jobs go on, and what they do is written when it can "
					   "be; no new job is accepted until then"
					 : "the run goes on, and what it does is written when it "
					   "can be");
	else if (r >= 0 && m->flush_failing)
		log_notice("%s: written again", m->opts.state);
	m->flush_failing = r < 0;
	if (r < 0) {
		master_arm_timer(m, &m->flush_retry, now + USEC_PER_SEC, on_flush_timer, m);
		return r;
	}
	m->flushed_at = now;
	m->flush_urgent = false;
	if (!partial) {
		m->flushed_all_at = now;
		m->flush_all = false;
	}
	if (m->shared)
		return 0; /* sent: its commit moves m->flushes (shared.c) */
	m->flushes++;
	MASTER_EMIT(m, on_flushed);
	return 0;
}

/* The store of a run that has one already: jobs found running, then what the stop cancelled. */
static int resume_run(struct master *m, const struct config *c)
{
	int r = check_same_run(m, c);
	uint64_t n;

	if (r < 0)
		return r;
	n = ledger_recover(m->ledger);
	if (n > 0)
		log_notice("%s: %" PRIu64 " jobs were running when the run stopped: they run again",
			   m->opts.state, n);
	n = ledger_resume(m->ledger, m->opts.retry_failed);
	if (n > 0)
		log_notice("%s: resuming: %" PRIu64 " ended jobs run again", m->opts.state, n);
	return 0;
}

/* The definition of a config group, as far as what its jobs run goes ("": the same). */
static const char *definition_change(const struct group_config *a, const struct group_config *b)
{
	if (a->pool != b->pool)
		return "pool";
	if (a->kind != b->kind || strcmp(a->run, b->run) != 0)
		return "run";
	if (strcmp(a->args, b->args) != 0)
		return "args";
	if (strcmp(a->inputs ? a->inputs : "", b->inputs ? b->inputs : "") != 0 ||
	    (b->n_inputs > 0 && !same_inputs(a, b)))
		return "inputs";
	if (strcmp(a->spool ? a->spool : "", b->spool ? b->spool : "") != 0)
		return "spool";
	if (!config_group_exec_equal(a, b))
		return "environment, working_directory, success_exit_status, nice or retry_delay";
	return "";
}

/* A name for the earlier definition of group `name`: NAME~K, the first K free. */
static int retire_group(struct master *m, unsigned g, const char *name)
{
	char other[CONFIG_NAME_MAX + 1];

	for (unsigned k = 1; k < 100000; k++) {
		snprintf(other, sizeof(other), "%.*s~%u", CONFIG_NAME_MAX - 7, name, k);
		if (ledger_find_group(m->ledger, other) < 0)
			return ledger_rename_group(m->ledger, g, other) < 0 ? -EINVAL : 0;
	}
	return -EINVAL;
}

/*
 * bulkheadd starting on a store that holds jobs: a config group runs once per definition
 * (docs/decisions.md). The same name and definition is the same group: its jobs are not
 * added again, its limits are the config's, and a higher count adds the difference. A
 * definition that changed is new work: the earlier group keeps its jobs as NAME~K.
 */
static int adopt_config_groups(struct master *m, const struct config *c)
{
	const char *path = m->opts.state;

	for (unsigned i = 0; i < c->n_groups; i++) {
		const struct group_config *cg = &c->groups[i];
		int g = ledger_find_group(m->ledger, cg->name);
		const struct group_config *cur;
		const char *what;
		uint64_t first;
		int r;

		if (g >= 0) {
			cur = ledger_group(m->ledger, (unsigned)g);
			what = definition_change(cur, cg);
			if (!*what) {
				unsigned had = cur->count;
				struct group_config limits = *cg;

				limits.count = cur->count > cg->count ? cur->count : cg->count;
				ledger_update_group(m->ledger, (unsigned)g, &limits);
				if (cg->count > had && cg->n_inputs == 0) {
					r = ledger_add_jobs(m->ledger, (unsigned)g, cg->count - had,
							    &first);
					if (r < 0)
						return r;
					log_notice("%s: job group %s: count %u -> %u: %u more jobs",
						   path, cg->name, had, cg->count, cg->count - had);
				} else if (cg->count < had) {
					log_notice("%s: job group %s: count %u -> %u: the %u jobs "
						   "accepted stay",
						   path, cg->name, had, cg->count, had);
				}
				continue;
			}
			if (retire_group(m, (unsigned)g, cg->name) < 0) {
				log_error("%s: job group %s: no name left for its earlier definition",
					  path, cg->name);
				return -EINVAL;
			}
			log_notice("%s: job group %s: its %s changed: a new definition, %u new jobs; "
				   "the earlier one's jobs are kept as %s",
				   path, cg->name, what, cg->count,
				   ledger_group(m->ledger, (unsigned)g)->name);
		}
		r = ledger_add_group(m->ledger, cg, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The daemon's store that holds jobs already: a master died under some, and the config. */
static int resume_daemon(struct master *m, const struct config *c)
{
	uint64_t n = ledger_recover(m->ledger);

	if (n > 0)
		log_notice("%s: %" PRIu64 " jobs were running when the last master stopped: "
			   "they run again (no attempt counted)",
			   m->opts.state, n);
	return adopt_config_groups(m, c);
}

/* The store's pools after the config's (store_sqlite_gone_pools()), for durable_add_gone_pools(). */
static int keep_gone_pools(struct master *m, const struct store *st)
{
	unsigned n;
	const char *const *names = store_sqlite_gone_pools(st, &n);

	if (n == 0)
		return 0;
	m->gone_pools = calloc(n, sizeof(*m->gone_pools));
	if (!m->gone_pools)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		m->gone_pools[i] = strdup(names[i]);
		if (!m->gone_pools[i])
			return -ENOMEM;
		m->n_gone_pools = i + 1;
	}
	return 0;
}

int durable_open(struct master *m, const struct config *c)
{
	const char **pools = calloc(c->n_pools + 1, sizeof(*pools));
	struct store *st;
	char *err = NULL;
	int r;

	if (!pools)
		return -ENOMEM;
	if (m->opts.pg_conninfo) {
		free(pools);
		r = shared_open(m, c, &st);
		if (r >= 0)
			r = ledger_new_with_store(st, &m->ledger);
		else
			return r;
		if (r < 0) {
			st->ops->free(st);
			m->shared = NULL;
			return r;
		}
		goto post;
	}
	for (unsigned i = 0; i < c->n_pools; i++)
		pools[i] = c->pools[i].name;
	r = store_sqlite_open(m->opts.state, pools, c->n_pools, &st, &err);
	free(pools);
	if (r < 0) {
		log_error("%s", err ? err : m->opts.state);
		free(err);
		return r;
	}
	r = keep_gone_pools(m, st);
	if (r >= 0)
		r = ledger_new_with_store(st, &m->ledger);
	if (r < 0) {
		st->ops->free(st);
		return r;
	}
	if (ledger_n_groups(m->ledger) == 0) {
		for (unsigned g = 0; r >= 0 && g < c->n_groups; g++)
			r = ledger_add_group(m->ledger, &c->groups[g], NULL);
	} else {
		r = m->opts.daemon ? resume_daemon(m, c) : resume_run(m, c);
		if (r == -EINVAL)
			return r;
	}
	if (r >= 0)
		r = ledger_flush(m->ledger);
	if (r < 0) {
		log_error("%s; nothing ran", ledger_store_error(m->ledger)[0]
						     ? ledger_store_error(m->ledger)
						     : strerror(-r));
		return r;
	}
post:
	r = sd_event_add_post(m->event, &m->flush, durable_on_post, m);
	/* Idle: after everything else that is pending (every client's requests, every worker's
	 * frames), so one write holds all that one wake-up brought. */
	return r < 0 ? r : sd_event_source_set_priority(m->flush, SD_EVENT_PRIORITY_IDLE);
}

int durable_close(struct master *m)
{
	int r;

	if (!m->opts.state || !m->ledger)
		return 0;
	r = ledger_flush(m->ledger);
	if (r < 0)
		log_error("%s; the end of the run is not recorded", ledger_store_error(m->ledger));
	return r;
}

/*
 * Adds the pools durable_open() kept, after the config's (in the store's order, so indexes
 * match), as removed pools: a [pool] deleted from the config while its groups' jobs had all
 * ended. Their groups stay visible (status, jobs, history); nothing runs there.
 */
int durable_add_gone_pools(struct master *m)
{
	int r = 0;

	for (unsigned i = 0; r >= 0 && i < m->n_gone_pools; i++) {
		struct pool_config pc = { .max_worker_faults = { .count = 1, .window = USEC_PER_SEC } };
		struct pool **ps = realloc(m->pools, (m->n_pools + 1) * sizeof(*ps));

		if (!ps)
			return -ENOMEM;
		m->pools = ps;
		snprintf(pc.name, sizeof(pc.name), "%s", m->gone_pools[i]);
		r = pool_new(m, &pc, m->n_pools, &m->pools[m->n_pools]);
		m->n_pools++;
		if (r >= 0) {
			m->pools[m->n_pools - 1]->state = POOL_REMOVED;
			log_notice("pool %s: no longer in the config; its job groups have ended and "
				   "stay in the history",
				   pc.name);
		}
	}
	durable_free_gone_pools(m);
	return r < 0 ? r : master_sync_pools(m);
}

void durable_free_gone_pools(struct master *m)
{
	for (unsigned i = 0; i < m->n_gone_pools; i++)
		free(m->gone_pools[i]);
	free(m->gone_pools);
	m->gone_pools = NULL;
	m->n_gone_pools = 0;
}
