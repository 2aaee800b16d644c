/* SPDX-License-Identifier: MIT */
/*
 * Inside the control server (control.h is its interface): the objects its files share and
 * the functions they call in each other. Who does what:
 *   control.c           the listening socket, who may connect, the slots, control_new/free
 *   control-conn.c      one client's connection: buffers, deadlines, reading requests and
 *                       handing each to control_dispatch, writing replies
 *   control-stream.c    long replies written as the client reads them (jobs, submit's ids,
 *                       wait) and pending waits
 *   control-commands.c  the dispatch table (CONTROL_COMMANDS of common/control-proto.h) and
 *                       the short commands: status, reload, log-level, cancel, restart, inject
 *   control-submit.c    submit
 * Everything runs on the master's event loop; a client, its stream and its wait belong to the
 * control object and are freed with it.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config/config.h"
#include "daemon/control.h"
#include "daemon/ledger.h"

#define CONTROL_OUTPUT_MAX (64u * 1024u) /* replies produced ahead of the client's reading */
#define CONTROL_HELD_MAX 1024 /* submits of one client waiting for the store's write */

/*
 * A pending `wait`: the jobs of the request's ids, or of a group with ids below `end` (its
 * jobs at the time of the request, kept as a range, never as a list). Ended jobs never start
 * again and the ledger is pinned while a wait exists, so one cursor (`pos`) finds when all
 * have ended in O(n) in all.
 */
struct swait;

struct wait {
	uint64_t *ids; /* by ids: as the request listed them */
	size_t n_ids;
	int group; /* by group: its index; -1: by ids */
	uint64_t end;
	uint64_t pos; /* members before it have ended: an index into ids, or a job id */
	uint64_t ended; /* how many (once all have: the total) */
	bool all_expected; /* of those */
	bool done; /* all ended: its reply is being streamed */
	json_object *echo; /* the request's "id", if any */
	struct master_pin *pin; /* its jobs are not forgotten until the reply is out */
};

enum stream_kind { STREAM_JOBS, STREAM_SUBMIT, STREAM_WAIT };

/*
 * One reply written as the client reads it: `head` (up to the first list's '['), the items of
 * one list (two for submit: ids, then names), then ']', `extra` members, the echoed "id" and
 * '}'. The text is what json-c would print for the whole object (JSON_C_TO_STRING_PLAIN), so
 * clients cannot tell.
 */
struct stream {
	enum stream_kind kind;
	unsigned part; /* 0: head, 1: first list, 2: second list, 3: the end */
	uint64_t first, next, end; /* jobs, submit: ids [first, end), `next` the cursor */
	uint64_t listed, max; /* items in the current list; jobs: at most `max` */
	uint32_t want_states; /* jobs: the filters: a bit per shown state (0: any), */
	int want_group;       /* a group (-1: any), */
	int64_t since;        /* a change (accepted, started, ended) at or after (0: any), */
	bool reverse;         /* and newest first (from end - 1 down to first) */
	uint32_t instance; /* submit: the instance number of id `first` */
	uint64_t durable_at; /* submit: not before master_flushes() reaches it (0: at once) */
	char name[CONFIG_NAME_MAX + 1]; /* submit: the group's name */
	size_t name_len;
	bool plain_name; /* submit: name needs no JSON escaping (written as it is) */
	char head[96];
	char extra[96];
	json_object *echo; /* the request's "id", if any */
};

/*
 * A reply that waits for the store (DESIGN §12: accepted means on disk): a submit's ids, held
 * until master_flushes() reaches durable_at, or a reply line queued behind such ones (an
 * error), so that replies keep the order of the requests. A client with held replies goes
 * on reading submits (a pipelining client fills one commit with many), nothing else.
 */
struct held {
	struct held *next;
	struct stream *stream; /* a submit's reply, or NULL: */
	char *text;            /* a whole reply line */
	uint64_t durable_at;   /* 0: waits for nothing but its turn */
	uint64_t query;        /* a reply a store query makes (control_query_done()): not yet */
	json_object *echo;     /* with query: the request's "id" */
};

struct client {
	struct control *c;
	struct client *next;
	int fd;
	sd_event_source *io;
	sd_event_source *timer;
	uid_t uid;
	pid_t pid;
	char *in; /* allocated when bytes come, freed once they are used */
	size_t in_len, in_size;
	char *out; /* replies not written yet; likewise */
	size_t out_len, out_size;
	struct stream *stream; /* a reply in progress */
	struct held *held, *held_tail; /* replies waiting for the store, in order */
	unsigned n_held;
	struct wait *wait; /* a pending wait (and, once done, the source of its reply) */
	const char *refusal; /* to be said, and the client closed, once no reply is in progress */
	usec_t idle_since, request_since, write_since; /* 0: that deadline does not run */
	usec_t timer_at; /* when its timer is armed to fire (0: off); never later than due */
	bool closing; /* close once the output is flushed */
	bool eof; /* it sent all it will: close once nothing more is owed to it */
	bool background; /* its io source is at CONTROL_STREAM_PRIORITY */
	uint32_t io_events; /* what its io source watches (client_settle) */
	bool drained;    /* the last read found no more: edge-triggered input needs no re-arm */
	bool following;  /* `logs --follow`: new lines are written to it as they come */
	uint64_t follow_job; /* that job's, or (0) the group's: */
	int follow_group;
	uint64_t follow_dropped; /* lines it had no room for since the last it got */
};

struct control {
	struct master *m;
	char *path;
	int fd;
	gid_t gid;
	bool have_gid;
	uid_t euid;
	sd_event_source *listen;
	sd_event_source *retry;
	struct client *clients;
	unsigned n_clients;
	struct client *serving; /* the client whose request is being handled */
	sd_event_source *wait_check; /* deferred: re-check pending waits once per loop pass */
	unsigned n_waiting;          /* clients with a pending wait */
	sd_event_source *release;    /* deferred: submit replies whose jobs are now on disk */
	unsigned n_held;             /* held replies waiting for a write (durable_at set) */
	unsigned n_following;        /* clients following logs */
	bool reply_not_held;         /* the reply being made tells no job state (logs) */
	uint64_t queries;            /* the last query id given (control_query_new()) */
	uint64_t query_pending;      /* the handler's reply comes from query: held for it */
	json_object *query_early;    /* that reply, if it came before the handler returned */
	struct swait *shared_waits;  /* pending waits on a shared store (control-shared-wait.c) */
	struct plugin_probes *probes; /* submitted plugins: probes and verdicts (made when needed) */
	struct pending_submit *pending_submits; /* submits waiting for their plugin's probe */
	uint64_t resuming; /* the query of the pending submit being answered now, or 0 */
	usec_t idle_timeout, request_timeout, write_timeout;
	usec_t refused_logged_at;
	unsigned refused; /* connections refused since then */
	bool accept_failing; /* out of descriptors: accepts retried on a timer */
};


/* ---- control-conn.c: a client's connection ---- */

/*
 * A client for the accepted socket cfd of the peer cr, on c's loop and in c's list. Returns 0
 * or -errno (cfd is then the caller's to close).
 */
int control_conn_new(struct control *c, int cfd, const struct ucred *cr, struct client **ret);
/* Closes and frees cl (its stream and wait too) and takes it out of the list. */
void control_conn_free(struct client *cl);
/* Queues text (or one reply line, taking the reference to o). False if cl had to go. */
bool control_conn_append(struct client *cl, const char *text, size_t len);
bool control_conn_reply(struct client *cl, json_object *o);
/* Says `why` and closes, once no reply is in progress; nothing more is read. */
void control_conn_refuse(struct client *cl, const char *why);
/*
 * Writes, produces what the output then has room for (a slice of a long reply only on its own
 * `turn`), writes that, and settles cl's events and deadline; cl may be freed.
 */
void control_conn_pump(struct client *cl, bool turn);

/* ---- control-stream.c: long replies, waits ---- */

/*
 * A stream of `kind` for the client being served (c->serving), or detached when none is (a
 * resumed submit: control_query_stream() places it); NULL when out of memory.
 */
struct stream *control_stream_new(struct control *c, enum stream_kind kind);
void control_stream_free(struct stream *s);
/*
 * Writes the next slice of cl's stream into its output; at the end frees the stream (and a
 * finished wait). False if cl had to go.
 */
bool control_stream_fill(struct client *cl);
/* Frees cl's wait, if any, and unpins the ledger. */
void control_wait_free(struct client *cl);
/* Deferred source: answers the waits whose jobs have all ended. */
int control_on_wait_check(sd_event_source *s, void *userdata);
/* The ledger's end hook: cheap unless some client is waiting. */
void control_on_job_end(void *userdata, uint64_t id);
/* Queues stream s (its durable_at set) behind cl's held replies. False if the client had to go. */
bool control_conn_hold(struct client *cl, struct stream *s);
/* Whether the client has replies waiting for the store to write their jobs. */
bool control_conn_held_for_store(const struct client *cl);
/* The store wrote: the held submit replies go out (from a deferred source). */
void control_on_flushed(void *userdata);
int control_on_release(sd_event_source *s, void *userdata);

/*
 * Replies a store query makes (a shared store's views, read from PostgreSQL): the handler
 * takes an id (control_query_new(), its request's reply is then held for it, in order) and
 * returns NULL; control_query_done() gives the reply (taking the reference), or drops it if
 * the client went meanwhile.
 */
uint64_t control_query_new(struct control *c);
void control_query_done(struct control *c, uint64_t query, json_object *reply);
/* The reply of held query h (taking the reference): its text. False when out of memory. */
bool control_held_fill(struct held *h, json_object *reply);
/* Some client still waits for query's reply. */
bool control_query_waiting(const struct control *c, uint64_t query);

/* jobs's "job", "since", "reverse" and "limit" (default CONTROL_JOBS_LIMIT_DEFAULT): NULL or
 * an error reply. */
json_object *control_read_jobs_range(json_object *req, int64_t *job, int64_t *since,
				     bool *reverse, int64_t *limit);
/* jobs's "state" filter (a name, "a,b" or an array) as a bit per state: NULL or an error. */
json_object *control_read_states(json_object *req, uint32_t *ret);

/* ---- control-submit-run.c: what an ad hoc submit runs ---- */

struct pending_submit;

/*
 * The run of an ad hoc submit (run, its merged args, whether its jobs get inputs) checked,
 * and gc's run and kind set, and `base` (the group's name before @N): NULL to go on, or an
 * error reply; or NULL with *ret_defer set: a plugin whose probe is to come (then
 * control_submit_defer()).
 */
json_object *control_submit_check_run(struct control *c, const char *run, const char *args,
				      bool has_input, struct group_config *gc, char *base,
				      size_t base_size, bool *ret_defer);
/*
 * Holds req (a reference is taken) until the probe of plugin `run` says whether it loads:
 * then it is submitted again (c->resuming set, the verdict cached) and its reply takes the
 * place of this one among the client's. NULL (the reply comes later) or an error reply.
 */
json_object *control_submit_defer(struct control *c, json_object *req, const char *run);
/* Whether a submit with this key waits for a probe. */
bool control_submit_key_pending(const struct control *c, const char *key);
/* The probes and the pending submits, at the end. */
void control_submit_probes_free(struct control *c);
/* The reply stream of the submit being resumed (c->resuming), for its held place. */
void control_query_stream(struct control *c, uint64_t query, struct stream *s);

/* ---- control-shared.c: views of a shared store (every node's jobs) ---- */

/* status's job counts and nodes, then the reply o (taken); NULL (held) or an error reply. */
json_object *control_shared_status(struct control *c, json_object *o);
json_object *control_shared_jobs(struct control *c, json_object *req);
/* The request's "ids" as an array literal ({1,2}, malloc'd) and their number: NULL, or an
 * error reply. */
json_object *control_shared_ids(json_object *req, char **ret, size_t *ret_n);
/* cancel: this node's jobs as on one host, the others' queued ones in the table. */
json_object *control_shared_cancel(struct control *c, json_object *req);
/* control-shared-wait.c: wait, read from the table; and freeing the pending ones. */
json_object *control_shared_wait(struct control *c, json_object *req);
void control_shared_waits_free(struct control *c);

/* ---- control-commands.c: the dispatch table and helpers for the handlers ---- */

/*
 * The reply to req (it passed control_parse_request) for the client being served
 * (c->serving): the handler of its command, or an error. NULL: the reply comes later (a
 * stream set up on the client, or a wait).
 */
json_object *control_dispatch(struct control *c, json_object *req);

/* The handlers that live outside control-commands.c; see CONTROL_COMMANDS. */
json_object *control_cmd_jobs(struct control *c, json_object *req);
json_object *control_cmd_wait(struct control *c, json_object *req);
json_object *control_cmd_submit(struct control *c, json_object *req);
json_object *control_cmd_logs(struct control *c, json_object *req);
/* control-logs.c: a job logged a line (the master's on_job_log hook). */
void control_on_job_log(void *userdata, const struct log_line *line);

/* {"ok":false,"error":TEXT} and {"ok":true}. */
json_object *control_error_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
json_object *control_ok_reply(void);
void control_add_int(json_object *o, const char *key, int64_t v);
/* Optional string member; -EINVAL if present and not a string. */
int control_get_string(json_object *req, const char *key, const char **ret);
/* Optional integer member in [min, max], default def if absent; -EINVAL otherwise. */
int control_get_int(json_object *req, const char *key, int64_t min, int64_t max, int64_t def,
		    int64_t *ret);
/*
 * The request's "ids" (1..CONTROL_JOBS_LIMIT_MAX known job ids) into a malloc'd array:
 * NULL, or an error reply.
 */
json_object *control_read_ids(struct master *m, json_object *req, uint64_t **ret,
			      size_t *ret_n);
