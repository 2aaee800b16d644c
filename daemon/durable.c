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
	if (a->count != b->count)
		return "count (or how many files its inputs match)";
	if (!same_inputs(a, b))
		return "the files its inputs match";
	if (a->max_attempts != b->max_attempts)
		return "max_attempts";
	if (a->expect != b->expect)
		return "expect";
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

static int durable_on_post(sd_event_source *s, void *userdata)
{
	struct master *m = userdata;
	int r = ledger_flush(m->ledger);

	if (r < 0 && !m->flush_failing)
		log_error("%s; the run goes on, and what it does is written when it can be",
			  ledger_store_error(m->ledger));
	else if (r >= 0 && m->flush_failing)
		log_notice("%s: written again", m->opts.state);
	m->flush_failing = r < 0;
	return 0;
}

int durable_open(struct master *m, const struct config *c)
{
	struct store *st;
	char *err = NULL;
	uint64_t n;
	const char **pools = calloc(c->n_pools + 1, sizeof(*pools));
	int r;

	if (!pools)
		return -ENOMEM;
	for (unsigned i = 0; i < c->n_pools; i++)
		pools[i] = c->pools[i].name;
	r = store_sqlite_open(m->opts.state, pools, c->n_pools, &st, &err);
	free(pools);

	if (r < 0) {
		log_error("%s", err ? err : m->opts.state);
		free(err);
		return r;
	}
	r = ledger_new_with_store(st, &m->ledger);
	if (r < 0) {
		st->ops->free(st);
		return r;
	}
	if (ledger_n_groups(m->ledger) == 0) {
		for (unsigned g = 0; r >= 0 && g < c->n_groups; g++)
			r = ledger_add_group(m->ledger, &c->groups[g], NULL);
	} else {
		r = check_same_run(m, c);
		if (r < 0)
			return r;
		n = ledger_recover(m->ledger);
		if (n > 0)
			log_notice("%s: %" PRIu64
				   " jobs were running when the run stopped: they run "
				   "again",
				   m->opts.state, n);
		n = ledger_resume(m->ledger, m->opts.retry_failed);
		if (n > 0)
			log_notice("%s: resuming: %" PRIu64 " ended jobs run again", m->opts.state,
				   n);
	}
	if (r >= 0)
		r = ledger_flush(m->ledger);
	if (r < 0) {
		log_error("%s; nothing ran", ledger_store_error(m->ledger)[0]
						     ? ledger_store_error(m->ledger)
						     : strerror(-r));
		return r;
	}
	return sd_event_add_post(m->event, &m->flush, durable_on_post, m);
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
