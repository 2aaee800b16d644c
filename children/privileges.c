/* SPDX-License-Identifier: MIT */
/*
 * Dropping a worker's privileges (privileges.h). The order matters:
 *   1. the bounding set, while we may still have CAP_SETPCAP (EPERM without it is fine:
 *      with NO_NEW_PRIVS nothing can be gained from it later anyway);
 *   2. supplementary groups, then the gid, then the uid (the uid last: it takes away the
 *      right to change the others);
 *   3. the ambient set and then every other set, explicitly: the kernel clears them by
 *      itself only when the old ids included 0, and a master that is not root but was given
 *      CAP_SETUID (the systemd unit's AmbientCapabilities=) would otherwise pass them on;
 *   4. NO_NEW_PRIVS; dumpable again (a change of ids clears it, which would make /proc/self
 *      root's and stop LeakSanitizer's tracer in a sanitized build).
 * Then it checks what it got: every uid and gid as asked, no capability left.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/units.h"
#include "privileges.h"

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

static int caps_get(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };

	return syscall(SYS_capget, &h, d) < 0 ? -errno : 0;
}

static int caps_clear(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

static int last_cap(void)
{
	int last = CAP_LAST_CAP;

	/* The running kernel may know more than our headers: probe upwards. */
	while (last < 63 && prctl(PR_CAPBSET_READ, last + 1, 0, 0, 0) >= 0)
		last++;
	return last;
}

static int fail(const char *what, uid_t uid, gid_t gid, int e)
{
	log_error("cannot run jobs as uid %u gid %u: %s: %s", (unsigned)uid, (unsigned)gid, what,
		  strerror(e));
	return -e;
}

int privileges_parse_id(const char *opt, const char *arg, unsigned *ret)
{
	uint64_t v;

	if (parse_uint(arg, 0, UINT32_MAX - 1, &v) < 0) {
		log_error("%s %s: expected a number 0..%u", opt, arg, UINT32_MAX - 1);
		return -EINVAL;
	}
	*ret = (unsigned)v;
	return 0;
}

int privileges_drop(uid_t uid, gid_t gid, pid_t master)
{
	struct __user_cap_data_struct d[2];
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	bool change = uid != (uid_t)-1;
	int r;

	if (change && getresuid(&ru, &eu, &su) == 0 && getresgid(&rg, &eg, &sg) == 0 && ru == uid &&
	    eu == uid && su == uid && rg == gid && eg == gid && sg == gid &&
	    getgroups(0, NULL) == 0)
		change = false; /* already so: nothing to change (and maybe no right to) */

	if (uid != (uid_t)-1 && uid != 0) {
		for (int cap = 0, last = last_cap(); cap <= last; cap++)
			if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EPERM &&
			    errno != EINVAL)
				return fail("PR_CAPBSET_DROP", uid, gid, errno);
	}
	if (change) {
		if (setgroups(0, NULL) < 0)
			return fail("setgroups", uid, gid, errno);
		if (setresgid(gid, gid, gid) < 0)
			return fail("setresgid", uid, gid, errno);
		if (setresuid(uid, uid, uid) < 0)
			return fail("setresuid", uid, gid, errno);
	}
	if (!change)
		uid = geteuid();
	if (uid != 0) {
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
			return fail("PR_CAP_AMBIENT_CLEAR_ALL", uid, gid, errno);
		r = caps_clear();
		if (r < 0)
			return fail("capset", uid, gid, -r);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail("PR_SET_NO_NEW_PRIVS", uid, gid, errno);
	if (change) {
		(void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
		/* Cleared by the change of ids: armed again, then the parent looked at again. */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (getppid() != master) {
			log_error("the master %d is gone", (int)master);
			return -ESRCH;
		}
	}

	/* What we got. */
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return fail("getresuid", uid, gid, errno);
	if (change && (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid))
		return fail("ids not as asked", uid, gid, EPERM);
	r = caps_get(d);
	if (r < 0)
		return fail("capget", uid, gid, -r);
	if (uid != 0 && (d[0].effective | d[1].effective | d[0].permitted | d[1].permitted |
			 d[0].inheritable | d[1].inheritable))
		return fail("capabilities left", uid, gid, EPERM);
	return 0;
}
