/* SPDX-License-Identifier: MIT */
/*
 * Plugins a client submits (`submit --run plugin:PATH:SYMBOL`), probed without blocking the
 * master's loop: `bulkhead-worker --probe RUN` (config/probe.h) in a child process that the
 * loop watches (its pidfd, its stdout pipe, a deadline), and the verdict kept in a small
 * cache keyed by RUN and the file's identity (device, inode, size, mtime), so the same plugin
 * is probed once until its file changes. See docs/decisions.md ("Submitted plugins are
 * probed off the loop, then cached").
 */
#pragma once

#include <systemd/sd-event.h>

#define PLUGIN_PROBE_CACHE_MAX 64 /* verdicts kept; the oldest goes first */
#define PLUGIN_PROBES_RUNNING_MAX 16 /* probes at once; beyond: "busy, try again" */

struct plugin_probes;

/* The verdict on run: reason NULL if it loads, else why not (one line). */
typedef void plugin_probe_fn(void *userdata, const char *run, const char *reason);

int plugin_probes_new(sd_event *e, const char *worker, struct plugin_probes **ret);
/* Kills and reaps the probes still running; their callbacks are not called. */
void plugin_probes_free(struct plugin_probes *p);

/*
 * What the cache knows of run: 1 it loads, 0 it does not (*ret_reason, valid until the next
 * call), -EAGAIN nothing (never probed, or the file changed since), -errno when PATH cannot
 * be stat'ed (*ret_reason says so: no probe needed).
 */
int plugin_probes_known(struct plugin_probes *p, const char *run, const char **ret_reason);

/*
 * Probes run (or joins the probe of it already running); cb is called once, from the loop,
 * with the verdict. 0, -EBUSY (too many probes at once), or -errno (it could not start).
 */
int plugin_probes_start(struct plugin_probes *p, const char *run, plugin_probe_fn *cb,
			void *userdata);
