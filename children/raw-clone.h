/* SPDX-License-Identifier: MIT */
/*
 * Forking with the raw clone syscall (raw-clone.c), as the fork server and the spawner do
 * (CLONE_PARENT, which glibc's fork() cannot do): where glibc keeps the thread's id, so that
 * the child can have it written there as glibc's fork() would.
 */
#pragma once

#include <sys/types.h>

/*
 * The address in the calling (single-threaded) process's thread descriptor where glibc keeps
 * its thread id, checked once with a real fork(); NULL if it cannot be found. The answer is
 * kept: a process forked from one that asked gets it without a fork.
 */
pid_t *raw_clone_tid_slot(void);

/*
 * clone(flags | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID) with slot (from
 * raw_clone_tid_slot()) as the child's tid address: 0 in the child, its pid in the parent,
 * -1 with errno.
 */
long raw_clone(unsigned long flags, pid_t *slot);
