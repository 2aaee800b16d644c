/* SPDX-License-Identifier: MIT */
/* Loading a plugin's job function (see plugin.c): the worker's specs and --probe share it. */
#pragma once

#include <stddef.h>

#include "bulkhead/job.h"

#define PLUGIN_PREFIX "plugin:"

/*
 * Loads run = "plugin:PATH:SYMBOL": dlopen(PATH, RTLD_NOW | RTLD_LOCAL), checks that its
 * `bulkhead_job_abi` is BULKHEAD_JOB_ABI, and looks SYMBOL up. Returns 0 with *ret_dl (for
 * dlclose) and *ret_fn, or a negative errno with a one-line reason in err, and nothing left
 * open: -EINVAL malformed run, -ENOENT cannot load or no such symbol, -EPROTO not a bulkhead
 * plugin or another ABI, -ENOMEM. Runs the plugin's constructors: call it where a crash is
 * affordable. Not thread-safe (dlerror()).
 */
int plugin_load(const char *run, void **ret_dl, bulkhead_job_fn *ret_fn, char *err, size_t errsize);
