/* SPDX-License-Identifier: MIT */
/*
 * Named locks shared by the job threads of one worker (see locks.c). A lock is created on
 * first use and lives until the process ends.
 */
#pragma once

#include <pthread.h>

#define LOCKS_MAX 64 /* distinct names per worker */
#define LOCK_NAME_MAX 63 /* bytes, without the NUL */

/*
 * The mutex named `name`, created (unlocked) on first use. Returns 0, -EINVAL for an empty
 * or over-long name, -ENOMEM when LOCKS_MAX names exist already. Thread-safe; the pointer
 * stays valid for the life of the process.
 */
int locks_get(const char *name, pthread_mutex_t **ret);
