/* SPDX-License-Identifier: MIT */
/*
 * Whom a pool's jobs run as ([pool] user and group, docs/decisions.md "Jobs without root").
 *
 * A pool that sets user (or group) runs its workers as that; one that sets neither runs them
 * as the program's default: for bulkheadd the `bulkhead` user (created by the package's
 * sysusers.d file), for `bulkhead run` the invoking user. A bulkheadd started on a host
 * without a `bulkhead` user keeps its own uid for such pools and says so once in the log.
 *
 * The master never changes its own ids: it passes uid:gid to each new worker, which drops to
 * them (children/privileges.c) before it runs any job code. A uid that runs a pool's jobs is
 * refused on the control socket (control.c), even when its group is control_group, so a job
 * cannot command the master that way either.
 */
#include <pwd.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/master-int.h"

#define DEFAULT_JOB_USER "bulkhead"

void master_identity_init(struct master *m)
{
	const struct config *c = m->config;
	bool any_default = false;
	struct passwd *pw;

	m->job_uid = (uid_t)-1;
	m->job_gid = (gid_t)-1;
	if (!m->opts.daemon)
		return; /* bulkhead run: the invoking user, as it is */
	pw = getpwnam(DEFAULT_JOB_USER);
	if (pw) {
		m->job_uid = pw->pw_uid;
		m->job_gid = pw->pw_gid;
		return;
	}
	for (unsigned i = 0; i < c->n_pools; i++)
		any_default |= c->pools[i].uid == (uid_t)-1;
	if (any_default)
		log_warning("no user '%s' on this host: pools without [pool] user run their jobs "
			    "as this daemon's uid %u (create it, see sysusers.d/bulkhead.conf, or "
			    "set user)",
			    DEFAULT_JOB_USER, (unsigned)geteuid());
}

void master_pool_identity(const struct master *m, const struct pool_config *pc, uid_t *uid,
			  gid_t *gid)
{
	*uid = pc->uid != (uid_t)-1 ? pc->uid : m->job_uid;
	*gid = pc->uid != (uid_t)-1 ? pc->gid : m->job_gid;
	if (pc->uid == (uid_t)-1 && pc->gid != (gid_t)-1) {
		/* group alone: the default user (or ours) with that group */
		if (*uid == (uid_t)-1)
			*uid = geteuid();
		*gid = pc->gid;
	}
}

bool master_uid_runs_jobs(const struct master *m, uid_t uid)
{
	const struct config *c = m->config;

	if (uid == 0 || uid == geteuid())
		return false; /* the operator: root and the daemon's own user */
	for (unsigned i = 0; i < c->n_pools; i++) {
		uid_t u;
		gid_t g;

		master_pool_identity(m, &c->pools[i], &u, &g);
		if (u == uid)
			return true;
	}
	return false;
}
