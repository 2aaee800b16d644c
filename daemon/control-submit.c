/* SPDX-License-Identifier: MIT */
/*
 * The control server's `submit` (see control-internal.h and docs/control-protocol.md): more
 * jobs of a configured group, a variant of it with other args, or an ad hoc group on a pool
 * (NAME@N) of a builtin, a command or a plugin (checked in control-submit-run.c), by count or
 * one per input file. The reply, ids and names, is a stream.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/builtins.h"
#include "common/protocol.h"
#include "common/units.h"
#include "config/keys.h"
#include "daemon/control-internal.h"
#include "daemon/submit-keys.h"

_Static_assert(CONTROL_SUBMIT_RUN_MAX <= BH_SPEC_STRING_MAX &&
		       CONTROL_SUBMIT_ARGS_MAX <= BH_SPEC_STRING_MAX,
	       "a submitted run and its args each fit in a SPEC frame's string");
_Static_assert(CONTROL_SUBMIT_RUN_MAX + CONTROL_SUBMIT_ARGS_MAX + 2 * BH_INPUT_MAX <
		       BH_FRAME_MAX,
	       "a SPEC frame holds a submitted run, its args, its name and its output");
_Static_assert(CONTROL_SUBMIT_RUN_MAX + CONTROL_SUBMIT_ARGS_MAX + 1024 < CONTROL_REQUEST_MAX,
	       "a request line holds the longest run and args");

/* src into dst (size bytes, cut to fit): snprintf's "%s" was 1 % of a one-job submit. */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * base args ("k=v k=v") with the request's "args" object laid over them, into buf. Values
 * are strings or numbers without whitespace. Returns 0 or -EINVAL with a reason.
 */
static int merge_args(const char *base, json_object *req, char *buf, size_t size,
		      const char **ret_error)
{
	json_object *args;
	size_t len = 0;
	char *copy, *save = NULL;

	buf[0] = '\0';
	if (!json_object_object_get_ex(req, "args", &args)) {
		copy_str(buf, size, base);
		return 0;
	}
	if (!json_object_is_type(args, json_type_object)) {
		*ret_error = "args must be an object of key: value";
		return -EINVAL;
	}
	copy = strdup(base);
	if (!copy)
		return -ENOMEM;
	/* Base pairs the request does not override. */
	for (char *kv = strtok_r(copy, " \t", &save); kv; kv = strtok_r(NULL, " \t", &save)) {
		size_t klen = strcspn(kv, "=");
		char key[128];

		snprintf(key, sizeof(key), "%.*s", (int)klen, kv);
		if (!json_object_object_get_ex(args, key, NULL))
			len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%s",
						len ? " " : "", kv);
	}
	free(copy);
	json_object_object_foreach(args, key, val)
	{
		const char *v;

		if (!json_object_is_type(val, json_type_string) &&
		    !json_object_is_type(val, json_type_int) &&
		    !json_object_is_type(val, json_type_double)) {
			*ret_error = "an argument value must be a string or a number";
			return -EINVAL;
		}
		v = json_object_get_string(val);
		if (!*key || strpbrk(key, " \t\n\r=") || strpbrk(v, " \t\n\r")) {
			*ret_error = "argument keys and values may not contain spaces or '='";
			return -EINVAL;
		}
		len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%s=%s",
					len ? " " : "", key, v);
	}
	if (len >= size) {
		*ret_error = "args too long: at most " CONTROL_STR(CONTROL_SUBMIT_ARGS_MAX) " bytes";
		return -EINVAL;
	}
	return 0;
}

/*
 * {"ok":true,"ids":[...],"jobs":[...]} for jobs first .. first + count - 1, streamed (up to
 * 100000 ids and names). One submit adds one group's instances in a row, so the names are
 * the group's name and consecutive instance numbers, known now: the stream needs neither the
 * jobs nor the group later, when they may have been forgotten. Returns NULL (streamed) or an
 * error reply.
 */
static json_object *submitted_reply(struct control *c, uint64_t first, unsigned count)
{
	struct master_job j, last;
	struct master_group g;
	struct stream *s;

	if (master_job(c->m, first, &j) < 0 || master_job(c->m, first + count - 1, &last) < 0 ||
	    !master_group(c->m, j.group, &g))
		return control_error_reply("the jobs were submitted, but are gone already");
	s = control_stream_new(c, STREAM_SUBMIT); /* detached when resumed (no c->serving) */
	if (!s)
		return control_error_reply("out of memory (the jobs were submitted)");
	s->first = s->next = first;
	s->end = first + count;
	if (master_durable(c->m)) { /* accepted means on disk: after the write that holds them */
		s->durable_at = master_flush_next(c->m);
		master_flush_needed_for_submit(c->m);
	}
	s->instance = j.instance;
	s->name_len = strnlen(g.cfg->name, sizeof(s->name) - 1);
	memcpy(s->name, g.cfg->name, s->name_len);
	s->name[s->name_len] = '\0';
	/* Written as it is unless json-c would escape a character (it escapes "/" too). */
	s->plain_name = true;
	for (const char *p = s->name; *p; p++)
		if (*p == '"' || *p == '\\' || *p == '/' || (unsigned char)*p < 0x20 ||
		    (unsigned char)*p >= 0x7f)
			s->plain_name = false;
	memcpy(s->head, "{\"ok\":true,\"ids\":[", sizeof("{\"ok\":true,\"ids\":["));
	if (!c->serving)
		control_query_stream(c, c->resuming, s);
	return NULL;
}

/*
 * The request's "inputs" (an array of absolute paths, 1..CONTROL_SUBMIT_MAX) into a malloc'd
 * array of pointers into req; none: *ret_n = 0. Returns an error reply, or NULL.
 */
static json_object *read_inputs(json_object *req, const char ***ret, size_t *ret_n)
{
	json_object *a;
	size_t n;

	*ret = NULL;
	*ret_n = 0;
	if (!json_object_object_get_ex(req, "inputs", &a))
		return NULL;
	if (!json_object_is_type(a, json_type_array))
		return control_error_reply("\"inputs\" must be an array of paths");
	n = json_object_array_length(a);
	if (n == 0 || n > CONTROL_SUBMIT_MAX)
		return control_error_reply("between 1 and %d inputs", CONTROL_SUBMIT_MAX);
	*ret = calloc(n, sizeof(char *));
	if (!*ret)
		return control_error_reply("out of memory");
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(a, i);
		const char *p = json_object_is_type(v, json_type_string) ? json_object_get_string(v)
									 : NULL;

		if (!p || p[0] != '/' || strlen(p) > BH_INPUT_MAX) {
			free(*ret);
			*ret = NULL;
			return control_error_reply(
				"input %zu: expected an absolute path of at most %u bytes", i + 1,
				BH_INPUT_MAX);
		}
		(*ret)[i] = p;
	}
	*ret_n = n;
	return NULL;
}

/*
 * What a configured group takes from submit (gc, group `name`), or an error reply: a spool
 * group takes files from its directory, and from submit only files elsewhere (which stay
 * where they are: the spool moves only the files it took); an `inputs =` group needs inputs;
 * builtin jobs have no use for one.
 */
static json_object *check_group_submit(const struct group_config *gc, const char **inputs,
				       size_t n_inputs)
{
	if (gc->spool && *gc->spool && n_inputs == 0)
		return control_error_reply(
			"group %s takes its jobs from its spool directory %s: put the "
			"files there, or give them to submit (--input FILE: they stay where "
			"they are)",
			gc->name, gc->spool);
	for (size_t i = 0; gc->spool && *gc->spool && i < n_inputs; i++) {
		size_t len = strlen(gc->spool);

		if (strncmp(inputs[i], gc->spool, len) == 0 && inputs[i][len] == '/' &&
		    !strchr(inputs[i] + len + 1, '/'))
			return control_error_reply("input %s is in the spool directory of group "
						   "%s, which takes it by itself",
						   inputs[i], gc->name);
	}
	if (gc->inputs && *gc->inputs && n_inputs == 0)
		return control_error_reply(
			"group %s runs one job per input file (inputs = %s): give the "
			"files to submit (--input FILE)",
			gc->name, gc->inputs);
	if (n_inputs > 0 && gc->kind == JOB_KIND_BUILTIN)
		return control_error_reply("group %s runs %s, which takes no input file", gc->name,
					   gc->run);
	return NULL;
}

/*
 * What an ad hoc group takes from a [job] section that sets nothing: the defaults of the key
 * table (config/keys.h), so a submitted job and a configured one cannot drift apart. Returns
 * 0, or -EINVAL if a default does not parse (a mistake in keys.h).
 */
static int adhoc_defaults(struct group_config *gc)
{
	const struct config_key *keys = config_keys;
	uint64_t attempts;
	int expect;

	if (parse_duration(keys[CONFIG_KEY_JOB_timeout].def, &gc->timeout) < 0 ||
	    parse_uint(keys[CONFIG_KEY_JOB_max_attempts].def, keys[CONFIG_KEY_JOB_max_attempts].min,
		       keys[CONFIG_KEY_JOB_max_attempts].max, &attempts) < 0)
		return -EINVAL;
	expect = job_state_from_string(keys[CONFIG_KEY_JOB_expect].def);
	if (expect < 0)
		return -EINVAL;
	gc->max_attempts = (unsigned)attempts;
	gc->expect = (enum job_state)expect;
	config_group_exec_defaults(gc);
	return 0;
}

/*
 * What makes two submits the same request, for a key: every member but "key" and "id", in
 * the client's order (a client that retries sends the same request again).
 */
static uint32_t request_hash(json_object *req)
{
	json_object *o = json_object_new_object();
	uint32_t h;

	if (!o)
		return 0;
	json_object_object_foreach(req, k, v)
	{
		if (strcmp(k, "key") != 0 && strcmp(k, "id") != 0)
			json_object_object_add(o, k, json_object_get(v));
	}
	h = submit_request_hash(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return h;
}

/*
 * The submission `key` made before, if any: its ids again (NULL: streamed), an error reply
 * (the key was used for another request), or *ret_new with nothing replied (a new key).
 */
static json_object *known_key(struct control *c, const char *key, uint32_t request,
			      bool *ret_new)
{
	const struct submit_key *k = master_find_key(c->m, key);

	*ret_new = !k;
	if (!k)
		return NULL;
	if (k->request != request)
		return control_error_reply("key %s was used for another request: give each "
					   "submission a key of its own",
					   key);
	return submitted_reply(c, k->first, k->count);
}

static json_object *submit(struct control *c, json_object *req, uint64_t *ret_first,
			   unsigned *ret_count);

json_object *control_cmd_submit(struct control *c, json_object *req)
{
	const char *key = NULL, *failing = master_store_failing(c->m);
	uint32_t request = 0;
	uint64_t first = 0;
	unsigned count = 0;
	json_object *o;
	bool fresh;
	int r;

	if (failing)
		return control_error_reply("not accepted: %s (nothing of this request was kept; "
					   "submit again once it can be written)",
					   failing);
	if (control_get_string(req, "key", &key) < 0 || (key && !submit_key_valid(key)))
		return control_error_reply("key must be 1..%d printable characters without spaces",
					   SUBMIT_KEY_MAX);
	if (key && !c->resuming && control_submit_key_pending(c, key))
		return control_error_reply("key %s: that submit is still being checked (its "
					   "plugin's probe): ask again once it is answered",
					   key);
	if (key) {
		request = request_hash(req);
		o = known_key(c, key, request, &fresh);
		if (!fresh)
			return o;
	}
	o = submit(c, req, &first, &count);
	if (key && count > 0) {
		r = master_add_key(c->m, key, first, count, request);
		if (r < 0)
			log_warning_errno(r, "control: submit key %s not kept (jobs %" PRIu64
					     "..%" PRIu64 " were accepted)",
					  key, first, first + count - 1);
	}
	return o;
}

/* The submit itself; *ret_count > 0 once jobs were added (first: *ret_first). */
static json_object *submit(struct control *c, json_object *req, uint64_t *ret_first,
			   unsigned *ret_count)
{
	struct master *m = c->m;
	const char *group = NULL, *pool = NULL, *run = NULL, *error = NULL, **inputs = NULL;
	struct group_config gc = { 0 };
	/* The merged args: the loop is one thread, and the store copies them (16 KB a
	 * submit from malloc was 1 % of the master's CPU at 16 x 16 submits of one job). */
	static char args[CONTROL_SUBMIT_ARGS_MAX + 1];
	char err[256], base[CONFIG_NAME_MAX + 1];
	json_object *o;
	uint64_t first;
	size_t n_inputs;
	int64_t count;
	bool defer = false;
	int r, b;

	if (control_get_string(req, "group", &group) < 0 ||
	    control_get_string(req, "pool", &pool) < 0 || control_get_string(req, "run", &run) < 0)
		return control_error_reply("group, pool and run must be strings");
	if (control_get_int(req, "count", 1, CONTROL_SUBMIT_MAX, 1, &count) < 0)
		return control_error_reply("count must be an integer 1..%d", CONTROL_SUBMIT_MAX);
	if (group && (pool || run))
		return control_error_reply("submit either a configured group, or a pool and a run");
	o = read_inputs(req, &inputs, &n_inputs);
	if (o)
		return o;
	if (n_inputs > 0 && json_object_object_get_ex(req, "count", NULL)) {
		o = control_error_reply("give a count or inputs, not both (one job per input)");
		goto out;
	}
	if (group) {
		int gi = master_find_group(m, group);
		struct master_group mg;

		if (gi < 0) {
			o = control_error_reply("no job group '%s'", group);
			goto out;
		}
		master_group(m, (unsigned)gi, &mg);
		gc = *mg.cfg;
		if (!master_pool_accepts(m, gc.pool)) {
			o = control_error_reply("pool %s takes no jobs now",
						master_pool_name(m, gc.pool));
			goto out;
		}
		o = check_group_submit(&gc, inputs, n_inputs);
		if (o)
			goto out;
		if (!json_object_object_get_ex(req, "args", NULL)) {
			/* More jobs of the group itself, numbered on. */
			if (n_inputs > 0)
				r = master_add_input_jobs(m, (unsigned)gi, (char *const *)inputs,
							  n_inputs, &first);
			else
				r = master_add_jobs(m, (unsigned)gi, (unsigned)count, &first);
			if (r >= 0) {
				*ret_first = first;
				*ret_count = (unsigned)(n_inputs ? n_inputs : (size_t)count);
			}
			o = r < 0 ? control_error_reply("cannot submit: %s", strerror(-r))
				  : submitted_reply(c, first, *ret_count);
			goto out;
		}
	} else {
		int pi = -1;

		if (!pool || !run) {
			o = control_error_reply("submit needs \"group\", or \"pool\" and \"run\"");
			goto out;
		}
		for (unsigned i = 0; i < master_n_pools(m); i++)
			if (strcmp(master_pool_name(m, i), pool) == 0 && master_pool_accepts(m, i))
				pi = (int)i;
		if (pi < 0) {
			o = control_error_reply("no pool '%s' that takes jobs", pool);
			goto out;
		}
		if (strlen(run) > CONTROL_SUBMIT_RUN_MAX) {
			o = control_error_reply("run is %zu bytes long: at most %d",
						strlen(run), CONTROL_SUBMIT_RUN_MAX);
			goto out;
		}
		if (strncmp(run, "builtin:", 8) == 0 && bh_builtin_lookup(run + 8) < 0) {
			o = control_error_reply("run %s: no such builtin", run);
			goto out;
		}
		if (strncmp(run, "builtin:", 8) == 0 && n_inputs > 0) {
			o = control_error_reply("%s takes no input file", run);
			goto out;
		}
		gc.pool = (unsigned)pi;
		gc.run = (char *)run;
		gc.kind = JOB_KIND_BUILTIN;
		if (strncmp(run, "builtin:", 8) == 0) /* else control_submit_check_run()'s */
			copy_str(base, sizeof(base), run + 8);
		gc.args = (char *)"";
		gc.output = (char *)"";
		r = adhoc_defaults(&gc);
		assert(r == 0); /* config tests load every default of keys.h */
	}
	r = merge_args(gc.args, req, args, CONTROL_SUBMIT_ARGS_MAX + 1, &error);
	if (r < 0) {
		o = control_error_reply("%s", error ? error : strerror(-r));
		goto out;
	}
	if (!group && strncmp(run, "builtin:", 8) != 0) {
		o = control_submit_check_run(c, run, args, n_inputs > 0, &gc, base, sizeof(base),
					     &defer);
		if (o)
			goto out;
		if (defer) {
			o = control_submit_defer(c, req, run);
			goto out;
		}
	}
	/* Builtins check their arguments; commands and plugins read theirs ({arg:KEY}). */
	if (gc.kind == JOB_KIND_BUILTIN && (b = bh_builtin_lookup(gc.run + 8)) >= 0 &&
	    bh_builtin_check_args((enum bh_builtin)b, args, err, sizeof(err)) < 0) {
		o = control_error_reply("args: %s", err);
		goto out;
	}
	/* A variant of a group (or an ad hoc run) is a group of its own: NAME@N. */
	gc.args = args;
	r = master_add_variant(m, &gc, group ? gc.name : base, (unsigned)count,
			       (char *const *)inputs, n_inputs, &first);
	if (r >= 0) {
		*ret_first = first;
		*ret_count = (unsigned)(n_inputs ? n_inputs : (size_t)count);
	}
	o = r < 0 ? control_error_reply("cannot submit: %s", strerror(-r))
		  : submitted_reply(c, first, *ret_count);
out:
	free(inputs);
	return o;
}
