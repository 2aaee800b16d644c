/* SPDX-License-Identifier: MIT */
/*
 * The control server's `logs` (see control-internal.h and docs/control-protocol.md): the last
 * lines a job or a group logged, from the store, and with "follow" the new ones as they come,
 * one JSON object a line, for as long as the client stays. A follower that does not read is
 * not waited for: lines past what its output holds are counted and said to be dropped.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/control-internal.h"
#include "daemon/store.h"

static const char *level_name(int level)
{
	static const char *const names[] = { "emerg", "alert", "crit", "err",
					     "warning", "notice", "info", "debug" };

	return level >= 0 && level <= 7 ? names[level] : "info";
}

static json_object *line_object(struct master *m, const struct log_line *l)
{
	json_object *o = json_object_new_object();
	char name[CONFIG_NAME_MAX + 16], at[32];
	struct master_job j;

	control_add_int(o, "job", (int64_t)l->job);
	if (master_job(m, l->job, &j) == 0)
		json_object_object_add(o, "name",
				       json_object_new_string(master_job_name(m, &j, name,
									      sizeof(name))));
	snprintf(at, sizeof(at), "%" PRId64 ".%03" PRId64, l->at / 1000000, l->at / 1000 % 1000);
	json_object_object_add(o, "at", json_object_new_double_s((double)l->at / 1e6, at));
	json_object_object_add(o, "level", json_object_new_string(level_name(l->level)));
	json_object_object_add(o, "line", json_object_new_string_len(l->text, (int)l->len));
	return o;
}

struct collect {
	struct master *m;
	json_object *lines;
};

static int collect_line(void *userdata, const struct log_line *l)
{
	struct collect *c = userdata;

	json_object_array_add(c->lines, line_object(c->m, l));
	return 0;
}

json_object *control_cmd_logs(struct control *c, json_object *req)
{
	const char *group = NULL;
	int64_t job = 0, tail = CONTROL_LOGS_DEFAULT;
	struct collect col = { c->m, NULL };
	int g = -1, r;
	bool follow = false;
	json_object *v, *o;

	if (control_get_string(req, "group", &group) < 0)
		return control_error_reply("group must be a string");
	if (control_get_int(req, "job", 1, INT64_MAX, 0, &job) < 0)
		return control_error_reply("job must be a job id");
	if (control_get_int(req, "lines", 1, CONTROL_LOGS_MAX, CONTROL_LOGS_DEFAULT, &tail) < 0)
		return control_error_reply("lines must be 1..%d", CONTROL_LOGS_MAX);
	if (json_object_object_get_ex(req, "follow", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return control_error_reply("follow must be true or false");
		follow = json_object_get_boolean(v);
	}
	if (!job == !group)
		return control_error_reply("logs needs \"job\" or \"group\" (one of them)");
	if (group && (g = master_find_group(c->m, group)) < 0)
		return control_error_reply("no job group '%s'", group);
	if (job) {
		struct master_job mj;

		r = master_job(c->m, (uint64_t)job, &mj);
		if (r < 0)
			return control_error_reply("no job %" PRId64 "%s", job,
						   r == -ESTALE ? " (forgotten: keep_ended)" : "");
	}
	col.lines = json_object_new_array();
	r = master_read_logs(c->m, (uint64_t)job, g, (size_t)tail, collect_line, &col);
	if (r < 0) {
		json_object_put(col.lines);
		return control_error_reply("cannot read the logs: %s", strerror(-r));
	}
	o = control_ok_reply();
	json_object_object_add(o, "lines", col.lines);
	c->reply_not_held = true; /* lines, not the jobs' state */
	if (follow) {
		c->serving->follow_job = (uint64_t)job;
		c->serving->follow_group = g;
		c->serving->following = true;
		c->n_following++;
	}
	return o;
}

/* A job logged a line: to every client following it (or its group). */
void control_on_job_log(void *userdata, const struct log_line *l)
{
	struct control *c = userdata;
	struct client *next;
	struct master_job j;
	char note[64];

	if (c->n_following == 0 || master_job(c->m, l->job, &j) < 0)
		return;
	for (struct client *cl = c->clients; cl; cl = next) {
		next = cl->next;
		if (!cl->following ||
		    (cl->follow_job ? cl->follow_job != l->job : (int)j.group != cl->follow_group))
			continue;
		if (cl->out_len >= CONTROL_OUTPUT_MAX) {
			cl->follow_dropped++; /* it does not read: it is not waited for */
			continue;
		}
		if (cl->follow_dropped) {
			snprintf(note, sizeof(note), "{\"dropped\":%" PRIu64 "}\n", cl->follow_dropped);
			cl->follow_dropped = 0;
			if (!control_conn_append(cl, note, strlen(note)))
				continue; /* the client had to go */
		}
		if (control_conn_reply(cl, line_object(c->m, l)))
			control_conn_pump(cl, false);
	}
}
