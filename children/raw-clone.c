/* SPDX-License-Identifier: MIT */
/*
 * glibc's fork() stores the child's thread id in the thread descriptor (raise(), abort() and
 * pthread_kill() use it); a raw clone does the same with CLONE_CHILD_SETTID at the address
 * where this glibc keeps it, which raw_clone_tid_slot() finds and then checks with one real
 * fork().
 */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "raw-clone.h"

#define TID_SCAN_BYTES 1024 /* the thread descriptor's tid is well inside this */

static pid_t *verified; /* kept across fork: the descriptor's address is the same there */

/* The address in the thread descriptor where glibc keeps this thread's id, or NULL. */
static pid_t *find_tid_slot(void)
{
	pid_t tid = (pid_t)syscall(SYS_gettid), *found = NULL;
	unsigned char *base = (unsigned char *)pthread_self();

	for (size_t off = 0; off + sizeof(pid_t) <= TID_SCAN_BYTES; off += sizeof(pid_t)) {
		pid_t v;

		memcpy(&v, base + off, sizeof(v));
		if (v != tid)
			continue;
		if (found)
			return NULL; /* ambiguous: do not guess */
		found = (pid_t *)(void *)(base + off);
	}
	return found;
}

/* A real fork(): glibc writes the child's tid at *slot in the child if slot is right. */
static bool tid_slot_verified(pid_t *slot)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return false;
	if (pid == 0)
		_exit(*slot == (pid_t)syscall(SYS_gettid) ? 0 : 1);
	if (waitpid(pid, &status, 0) != pid)
		return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

pid_t *raw_clone_tid_slot(void)
{
	pid_t *slot;

	if (verified && *verified == (pid_t)syscall(SYS_gettid))
		return verified;
	slot = find_tid_slot();
	if (slot && tid_slot_verified(slot))
		verified = slot;
	return slot == verified ? slot : NULL;
}

long raw_clone(unsigned long flags, pid_t *slot)
{
	return syscall(SYS_clone, flags | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID, NULL, NULL,
		       slot, 0);
}
