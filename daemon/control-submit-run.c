/* SPDX-License-Identifier: MIT */
/*
 * What an ad hoc submit runs (see control-internal.h): `exec:COMMAND ARGS...` and
 * `plugin:PATH:SYMBOL` besides builtins, checked as a config's [job] section is
 * (config_check_submitted_run(): the words, the placeholders, the command found now), and a
 * plugin probed before any worker loads it. The probe runs off the loop (plugin-probe.h):
 * a submit of a plugin not probed yet waits for it (its reply keeps its place among the
 * client's), then is submitted again; a plugin known to load, or known not to, is answered
 * at once. Refused, nothing of the submit is kept.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/control-internal.h"
#include "daemon/plugin-probe.h"
#include "daemon/spawn-worker.h"

struct pending_submit {
	struct pending_submit *next;
	struct control *c;
	uint64_t query;
	json_object *req;
};

/* The group's name before @N: the command's base name, or the plugin's symbol. */
static void base_name(const char *run, char *base, size_t size)
{
	const char *from, *end;
	size_t n = 0;

	if (strncmp(run, "plugin:", 7) == 0) {
		from = strrchr(run, ':') + 1;
		end = from + strlen(from);
	} else {
		from = run + 5 + strspn(run + 5, " \t\"'");
		end = from + strcspn(from, " \t\"'");
		for (const char *p = from; p < end; p++)
			if (*p == '/')
				from = p + 1;
	}
	for (const char *p = from; p < end && n + 1 < size && n < 24; p++)
		base[n++] =
			strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
			       *p) && *p
				? *p
				: '_';
	if (n == 0)
		base[n++] = 'x';
	base[n] = '\0';
}

json_object *control_submit_check_run(struct control *c, const char *run, const char *args,
				      bool has_input, struct group_config *gc, char *base,
				      size_t base_size, bool *ret_defer)
{
	const char *reason;
	char err[640];
	int r;

	*ret_defer = false;
	if (!master_pool_settings(c->m, gc->pool)->submitted_runs)
		return control_error_reply("run %.200s%s: pool %s takes only builtin: runs from "
					   "submit (submitted_runs = builtin in %s)",
					   run, strlen(run) > 200 ? "..." : "",
					   master_pool_name(c->m, gc->pool), master_config(c->m)->path);
	r = config_check_submitted_run(run, args, has_input, err, sizeof(err));
	if (r == -ENOMEM)
		return control_error_reply("out of memory");
	if (r < 0)
		return control_error_reply("run %.200s%s: %s", run, strlen(run) > 200 ? "..." : "",
					   err);
	gc->run = (char *)run;
	gc->kind = strncmp(run, "exec:", 5) == 0 ? JOB_KIND_EXEC : JOB_KIND_PLUGIN;
	base_name(run, base, base_size);
	if (gc->kind == JOB_KIND_EXEC)
		return NULL;
	if (!c->probes) {
		r = plugin_probes_new(master_event(c->m), spawn_worker_path(), &c->probes);
		if (r < 0)
			return control_error_reply("cannot probe %s: %s", run, strerror(-r));
	}
	r = plugin_probes_known(c->probes, run, &reason);
	if (r == 1)
		return NULL;
	if (r == -EAGAIN && !c->resuming) {
		*ret_defer = true;
		return NULL;
	}
	if (r == -EAGAIN) /* resumed with a verdict, and the file changed meanwhile */
		return control_error_reply("run %s: the file changed while it was probed: submit "
					   "again",
					   run);
	return control_error_reply("run %s: %s", run, reason ? reason : "cannot load");
}

/* The probe's verdict: its refusal, or the submit again (it finds the verdict cached). */
static void on_probed(void *userdata, const char *run, const char *reason)
{
	struct pending_submit *ps = userdata, **pp;
	struct control *c = ps->c;
	json_object *o;

	for (pp = &c->pending_submits; *pp != ps; pp = &(*pp)->next)
		;
	*pp = ps->next;
	if (reason && control_query_waiting(c, ps->query)) {
		control_query_done(c, ps->query, control_error_reply("run %s: %s", run, reason));
	} else if (control_query_waiting(c, ps->query)) {
		c->resuming = ps->query;
		o = control_cmd_submit(c, ps->req);
		c->resuming = 0;
		if (o)
			control_query_done(c, ps->query, o);
	}
	json_object_put(ps->req);
	free(ps);
}

json_object *control_submit_defer(struct control *c, json_object *req, const char *run)
{
	struct pending_submit *ps = calloc(1, sizeof(*ps));
	int r;

	if (!ps)
		return control_error_reply("out of memory");
	ps->c = c;
	ps->req = json_object_get(req);
	r = plugin_probes_start(c->probes, run, on_probed, ps);
	if (r < 0) {
		json_object_put(ps->req);
		free(ps);
		return control_error_reply(r == -EBUSY ? "run %s: too many plugins being probed "
							 "at once: submit again shortly"
						       : "run %s: cannot probe it: %s",
					   run, strerror(-r));
	}
	ps->query = control_query_new(c);
	ps->next = c->pending_submits;
	c->pending_submits = ps;
	log_debug("control: submit of %s waits for its probe", run);
	return NULL;
}

bool control_submit_key_pending(const struct control *c, const char *key)
{
	for (const struct pending_submit *ps = c->pending_submits; ps; ps = ps->next) {
		json_object *k;

		if (json_object_object_get_ex(ps->req, "key", &k) &&
		    json_object_is_type(k, json_type_string) &&
		    strcmp(json_object_get_string(k), key) == 0)
			return true;
	}
	return false;
}

void control_submit_probes_free(struct control *c)
{
	struct pending_submit *ps;

	plugin_probes_free(c->probes); /* calls no callback */
	c->probes = NULL;
	while ((ps = c->pending_submits)) {
		c->pending_submits = ps->next;
		json_object_put(ps->req);
		free(ps);
	}
}
