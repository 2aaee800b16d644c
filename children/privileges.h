/* SPDX-License-Identifier: MIT */
/*
 * A worker's privileges, dropped before any job code runs (worker.c calls this before it
 * starts its job threads; plugins are loaded later, when jobs come).
 */
#pragma once

#include <sys/types.h>

/*
 * Becomes uid:gid (no supplementary groups) unless uid is (uid_t)-1; then, for any uid but
 * root, clears every capability (effective, permitted, inheritable, ambient, and the
 * bounding set where it may); always sets NO_NEW_PRIVS, so no job can gain privileges by
 * exec'ing a set-user-ID or file-capability program. Returns 0, or -errno with a message
 * logged (the worker then exits before its HELLO: a start failure, not a job's fault).
 * A change of ids clears PR_SET_PDEATHSIG: it is set again (SIGKILL), and -ESRCH returned if
 * the parent is no longer `master` by then.
 */
int privileges_drop(uid_t uid, gid_t gid, pid_t master);

/* A uid or gid option's value (0..2^32-2) into *ret; -EINVAL (logged, naming opt) if not. */
int privileges_parse_id(const char *opt, const char *arg, unsigned *ret);
