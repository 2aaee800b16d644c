/* SPDX-License-Identifier: MIT */
/*
 * Probing a config's plugins before anything runs them (see probe.c): each distinct
 * `run = plugin:PATH:SYMBOL` is loaded by `bulkhead-worker --probe` in a process of its own.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

#define CONFIG_PROBE_TIMEOUT_MS 10000 /* per probe process */
#define CONFIG_PROBE_OUTPUT_MAX 8192 /* bytes of a probe's stdout that are read */

/*
 * Probes every plugin group of c with the worker binary `worker`. Returns 0 if every plugin
 * loads; -EINVAL and *ret_errors (malloc'd, one line per problem, each ending in '\n'):
 *   "demo.conf:12: [job x] run = plugin:/p/x.so:fn: cannot load: /p/x.so: cannot open ..."
 * or another negative errno when a probe could not be run at all (*ret_errors says why).
 * Blocks for up to CONFIG_PROBE_TIMEOUT_MS per distinct plugin, and, with budget_ms > 0, for
 * at most budget_ms in all (a reload: the master's loop waits meanwhile); a probe that the
 * budget cuts short is a problem like any other. ret_errors may be NULL.
 */
int config_probe_plugins(const struct config *c, const char *worker, int budget_ms,
			 char **ret_errors);

/*
 * Probes one run string. Returns 0 (it loads), -EINVAL with *ret_reason (malloc'd, one line
 * without the newline: why it does not load, or "constructor crashed the probe: SIGSEGV",
 * or that it did not finish in time), or another negative errno (the probe could not run;
 * *ret_reason is NULL).
 */
int config_probe_run(const char *worker, const char *run, int timeout_ms, char **ret_reason);

/*
 * The same in two halves, for a caller that must not block (the master's loop, a submitted
 * plugin): config_probe_start() spawns the probe with its stdout on a pipe, whose
 * non-blocking read end is *ret_fd; once the process has ended (reaped by the caller, its
 * wait status `status`; exited false: it was killed for being late, after timeout_ms) and
 * what it wrote was read into `out` (NUL-terminated, at most CONFIG_PROBE_OUTPUT_MAX bytes),
 * config_probe_verdict() says what config_probe_run() returns (`out` is cut up).
 */
int config_probe_start(const char *worker, const char *run, pid_t *ret_pid, int *ret_fd);
int config_probe_verdict(const char *run, bool exited, int status, int timeout_ms, char *out,
			 char **ret_reason);
