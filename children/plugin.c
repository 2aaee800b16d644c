/* SPDX-License-Identifier: MIT */
/*
 * Plugins: `run = plugin:PATH:SYMBOL`. A plugin is a shared object built against
 * include/bulkhead/job.h; it says `BULKHEAD_JOB_PLUGIN;`, which defines the constant
 * `bulkhead_job_abi`. That constant is checked before SYMBOL is even looked up, so a plugin
 * built for another ABI is refused before any of its job code runs (its constructors, if
 * any, have run: dlopen() runs them, which is why the master probes plugins in a throwaway
 * process first, see probe.c).
 *
 * RTLD_NOW makes every undefined symbol resolve at load time (a plugin calling an API
 * function this worker does not have fails here, not in the middle of a job); RTLD_LOCAL
 * keeps one plugin's symbols out of the next one's lookups. The API functions a plugin
 * calls come from bulkhead-worker itself, which exports them (children/meson.build).
 *
 * The job kind plugin:PATH:SYMBOL (plugin_kind) loads the plugin once per spec, on the main
 * thread, and closes it when the spec is freed; --probe (probe.c) shares plugin_load().
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job-kind.h"
#include "plugin.h"

#define ABI_SYMBOL "bulkhead_job_abi"

static bool is_identifier(const char *s)
{
	if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
		return false;
	for (s++; *s; s++)
		if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

int plugin_load(const char *run, void **ret_dl, bulkhead_job_fn *ret_fn, char *err, size_t errsize)
{
	const char *symbol;
	const unsigned *abi;
	char *path;
	void *dl, *fn;
	int r = 0;

	if (strncmp(run, PLUGIN_PREFIX, strlen(PLUGIN_PREFIX)) != 0) {
		snprintf(err, errsize, "not a plugin (expected plugin:PATH:SYMBOL)");
		return -EINVAL;
	}
	run += strlen(PLUGIN_PREFIX);
	/* PATH may contain ':', SYMBOL (an identifier) cannot: split at the last one. */
	symbol = strrchr(run, ':');
	if (!symbol || symbol == run || !is_identifier(symbol + 1)) {
		snprintf(err, errsize, "expected plugin:PATH:SYMBOL with SYMBOL a C identifier");
		return -EINVAL;
	}
	symbol++;
	path = strndup(run, (size_t)(symbol - 1 - run));
	if (!path) {
		snprintf(err, errsize, "out of memory");
		return -ENOMEM;
	}
	(void)dlerror();
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		const char *e = dlerror();

		snprintf(err, errsize, "cannot load: %s", e ? e : path);
		free(path);
		return -ENOENT;
	}
	abi = dlsym(dl, ABI_SYMBOL);
	if (!abi) {
		snprintf(err, errsize,
			 "not a bulkhead plugin: %s has no %s (missing BULKHEAD_JOB_PLUGIN;)", path,
			 ABI_SYMBOL);
		r = -EPROTO;
	} else if (*abi != BULKHEAD_JOB_ABI) {
		snprintf(err, errsize, "%s was built for job ABI %u, this bulkhead has ABI %u",
			 path, *abi, BULKHEAD_JOB_ABI);
		r = -EPROTO;
	} else {
		(void)dlerror();
		fn = dlsym(dl, symbol);
		if (!fn) {
			const char *e = dlerror();

			snprintf(err, errsize, "cannot find %s: %s", symbol, e ? e : path);
			r = -ENOENT;
		}
	}
	free(path);
	if (r < 0) {
		dlclose(dl);
		return r;
	}
	*ret_dl = dl;
	*ret_fn = (bulkhead_job_fn)fn;
	return 0;
}

/* --- the job kind: plugin:PATH:SYMBOL --- */

static int kind_init(struct job_spec *s, const char *run, struct job_kind_error *e)
{
	if (plugin_load(run, &s->data, &s->fn, e->buf, sizeof(e->buf)) < 0) {
		e->status = JOB_STATUS_NOT_FOUND;
		e->what = run;
		e->detail = e->buf;
		return -ENOENT;
	}
	return 0;
}

static int kind_run(struct bulkhead_job *job)
{
	return job->spec->fn(job);
}

static void kind_free(struct job_spec *s)
{
	dlclose(s->data);
}

const struct job_kind plugin_kind = {
	.prefix = PLUGIN_PREFIX,
	.init = kind_init,
	.run = kind_run,
	.free = kind_free,
};
