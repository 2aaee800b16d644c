/* SPDX-License-Identifier: MIT */
/*
 * The master: one thread, one sd-event loop, all state. It spawns the workers of every
 * pool, dispatches the ledger's jobs to them in batches, reads their results and crash
 * reports, applies the blame rules when one dies, restarts it under the pool's policy and
 * ends when every job has reached a final state (one-shot mode, `bulkhead run`).
 *
 * It never trusts a worker: every frame is checked (sender, state, type, length, job ids),
 * and a worker that breaks the protocol is killed. It never blocks or sleeps: timers for
 * deadlines and restarts, non-blocking sockets, pidfds for child exits.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "config/config.h"
#include "daemon/ledger.h"

#define MASTER_HELLO_TIMEOUT (10 * USEC_PER_SEC) /* spawn -> HELLO, else a worker fault */
#define MASTER_STOP_TIMEOUT (5 * USEC_PER_SEC)   /* STOP -> exit, else SIGKILL */
#define MASTER_RELOAD_PROBE_MS 2000 /* a reload's plugin probes, in all (the loop waits) */

struct master_stats {
	uint64_t workers_started; /* successful spawns */
	uint64_t restarts;        /* spawns that replaced a worker */
	uint64_t worker_faults;
	uint64_t deaths_by_signal[65]; /* unexpected worker deaths by signal */
	uint64_t deaths_by_exit;       /* unexpected worker exits */
	uint64_t deaths_by_memory;     /* ended by the OOM killer in their cgroup (memory.max) */
	unsigned workers_up;           /* said HELLO and not dead */
	uint64_t running;              /* jobs in flight */
	usec_t started_at;
	usec_t ended_at;
	bool pool_failure_exit; /* a pool with on_pool_failure=exit failed */
	bool interrupted;       /* stopped by SIGINT/SIGTERM */
	int interrupt_signal;   /* the first of them, 0 if none */
	/* jobs that had ended by running (not cancelled) when master_run() began: a resumed run */
	uint64_t ended_at_start;
	uint64_t injected;      /* worker deaths caused by bulkhead inject */
	uint64_t contained_crashes; /* jobs' crashes in a contained run: no worker died */
};

#define MASTER_SLOT_SPARE UINT_MAX /* on_worker_ready: the pool's spare ([pool] spare) */
#define MASTER_SOLO_MAX 2 /* [pool] spare = yes: solo workers per pool (daemon/spare.c) */

struct master_options {
	/*
	 * Daemon mode (bulkheadd): every pool's workers are started and kept up after the
	 * config's jobs have ended; sd_notify READY/STATUS/WATCHDOG/STOPPING; SIGTERM drains.
	 * Otherwise a one-shot run: only pools with jobs start, and the run ends with its jobs.
	 */
	bool daemon;
	/*
	 * Called each time a worker has said HELLO (it is READY), with the time the master
	 * read it, and when a pool's warm spare took a slot over (the slot is READY with the
	 * spare's pid at once); slot MASTER_SLOT_SPARE: the pool's spare said HELLO (not its
	 * solo worker). For
	 * benchmarks and tests; NULL: none.
	 */
	void (*on_worker_ready)(void *userdata, unsigned pool, unsigned slot, pid_t pid,
				usec_t when);
	void *userdata;
	/*
	 * The SQLite store file (DESIGN §12): jobs live there, written once per loop pass and
	 * once more when the loop ends. A one-shot run (`bulkhead run --state`) resumes a file
	 * that holds a run of this config; bulkheadd (`[supervisor] store`) continues what its
	 * file holds, runs a config group once per definition, and a stop keeps every job that
	 * has not ended. NULL: in memory. master_new() logs why a file cannot be used and returns
	 * -EBADMSG (damaged or not a store), -EPROTO (newer), -EINVAL (another run), -ENXIO (a
	 * group's pool is not in the config), else the I/O errno.
	 */
	const char *state;
	bool retry_failed; /* with state: failed, crashed and timed-out jobs run again */
	/*
	 * bulkheadd with `store = postgresql:CONNINFO` (DESIGN §13): the connection string
	 * (state is then a name for messages); jobs are shared with the other nodes of that
	 * database. NULL: not shared.
	 */
	const char *pg_conninfo;
	int64_t lease_ms;
};

struct master;
struct store;
struct submit_key;
struct log_line;

/*
 * What a service subscribes to, instead of polling the master (bulkheadd's sd_notify, its
 * spools). Any member may be NULL; each is called from the master's loop, in the order
 * subscribers came, and must not free the master.
 */
struct master_hooks {
	/* Every pool's workers said HELLO the first time (daemon mode only). */
	void (*on_ready)(void *userdata);
	/* A reload begins (SIGHUP, or master_reload()). */
	void (*on_reloading)(void *userdata);
	/* It ended: applied (ok), or refused with the running config kept. */
	void (*on_reloaded)(void *userdata, bool ok);
	/* SIGTERM/SIGINT: the stop begins; running jobs may take `drain` more (or forever). */
	void (*on_stopping)(void *userdata, usec_t drain);
	/* Counts changed (master_status_line() may read differently). Often: keep it cheap. */
	void (*on_status_dirty)(void *userdata);
	/* The loop ends now (every worker is gone): the last words. */
	void (*on_exit)(void *userdata);
	/* Job `id` reached its final state (master_job() reads it). No job may be added here. */
	void (*on_job_end)(void *userdata, uint64_t id);
	/* A durable store wrote everything changed so far (master_flushes() went up). */
	void (*on_flushed)(void *userdata);
	/* A job logged a line (store.h's struct log_line; kept, master_read_logs() has it). */
	void (*on_job_log)(void *userdata, const struct log_line *line);
};

/*
 * On success the master owns c (a reload replaces it; master_free frees it); on failure the
 * caller still does. opts may be NULL (one-shot run).
 */
int master_new(struct config *c, const struct master_options *opts, struct master **ret);

/* The config in force (the latest one that loaded). */
const struct config *master_config(const struct master *m);
/* Name of the pool with this index (a removed pool keeps its name). */
const char *master_pool_name(const struct master *m, unsigned pool);
/* Its settings (a removed pool keeps its last ones). */
const struct pool_config *master_pool_settings(const struct master *m, unsigned pool);
void master_free(struct master *m);
/* True if uid runs some pool's jobs and is neither root nor ours (identity.c): such a uid
 * gets no control, whatever its groups. */
bool master_uid_runs_jobs(const struct master *m, uid_t uid);

/*
 * Runs until every job has ended (one-shot) or a stop was asked for (daemon), and every
 * worker is gone.
 */
int master_run(struct master *m);
/* With opts.state: 0, or the errno of the last write (the end of the run is not recorded). */
int master_state_error(const struct master *m);
/* Whether jobs live in a durable store (opts.state). */
bool master_durable(const struct master *m);
/* The store file of opts.state, or NULL. */
const char *master_state_path(const struct master *m);
/*
 * Writes of the durable store that succeeded so far: what was accepted before a call is on
 * disk once this has gone past the value it returned then.
 */
/* What master_flushes() reaches once what is changed now is written. */
uint64_t master_flush_next(const struct master *m);
uint64_t master_flushes(const struct master *m);
/*
 * Someone waits for what changed to be on disk (a held reply): the store writes at the end
 * of this loop pass, instead of within DURABLE_LAZY_USEC.
 */
void master_flush_needed(struct master *m);
/*
 * The same for a submit's reply, which tells only of its new jobs: the write may leave the
 * starts of jobs that did nothing else for a later one (within DURABLE_LAZY_USEC).
 */
void master_flush_needed_for_submit(struct master *m);
/* Why the store's last write failed (it is retried), naming the file; NULL: it did not. */
const char *master_store_failing(const struct master *m);
/*
 * The log lines (store.h's struct log_line) of job `job`, or of group `group` (job 0), the
 * last `tail` (0: all) of them, oldest first, to cb (which returns < 0 to stop).
 */
struct log_line;
int master_read_logs(struct master *m, uint64_t job, int group, size_t tail,
		     int (*cb)(void *userdata, const struct log_line *line), void *userdata);
/* Whether the durable store holds changes not written yet. */
bool master_store_dirty(const struct master *m);
/* The durable store's file (NULL: in memory) and the transactions it committed so far. */
const char *master_store_path(const struct master *m);
/* The shared store (`store = postgresql:`, store-pg.h), or NULL. */
struct store *master_shared_store(const struct master *m);
/* This master's node name ([supervisor] node, or the host name). */
const char *master_node(const struct master *m);
uint64_t master_store_commits(const struct master *m);

sd_event *master_event(struct master *m);
const struct master_stats *master_stats(const struct master *m);

/*
 * Reloads the config file now (what SIGHUP does, without the coalescing). Returns 0, or a
 * negative errno with the config errors in *ret_errors (malloc'd, may be NULL).
 */
int master_reload(struct master *m, char **ret_errors);
/*
 * What the last reload that applied did ("pool main: resized from 2 to 3 workers", "job
 * group x: added: 4 jobs") and what it left for a restart ("node changes take effect at the
 * next start"): lines each ending in '\n', "" if none (and before any reload).
 */
void master_reload_report(const struct master *m, const char **ret_changes,
			  const char **ret_warnings);

/*
 * Jobs added at run time. master_add_group adds a job group (copied; gc->pool is a pool
 * index) and its gc->count jobs; workers already up get its spec first. master_add_jobs
 * queues `count` more jobs of an existing group. Both return -ESHUTDOWN if the pool does not
 * take jobs (failed, removed, stopping).
 */
int master_add_group(struct master *m, const struct group_config *gc, unsigned *ret_index);
int master_add_jobs(struct master *m, unsigned group, unsigned count, uint64_t *ret_first);
/*
 * Submitted work: `count` jobs (or one per input, n_inputs > 0) of a group like gc (pool
 * index in gc->pool) named BASE@N; an identical earlier submission's group takes them (see
 * ledger_add_variant). First id out; -ESHUTDOWN if the pool does not take jobs.
 */
int master_add_variant(struct master *m, const struct group_config *gc, const char *base,
		       unsigned count, char *const *inputs, size_t n_inputs, uint64_t *ret_first);
/*
 * n more jobs of an existing group, one per input (copied; see ledger_add_input_jobs),
 * queued and dispatched; first id out. -ESHUTDOWN if the pool does not take jobs.
 */
int master_add_input_jobs(struct master *m, unsigned group, char *const *inputs, size_t n,
			  uint64_t *ret_first);
bool master_pool_accepts(const struct master *m, unsigned pool);
/*
 * `submit --key` (daemon/submit-keys.h): the submission a key made (NULL: none kept), and
 * a new one for jobs first .. first + count - 1 (kept in the store with them).
 */
const struct submit_key *master_find_key(const struct master *m, const char *key);
int master_add_key(struct master *m, const char *key, uint64_t first, uint32_t count,
		   uint32_t request);
/*
 * Graceful restart of a pool's workers (slot < 0) or of one slot: each is sent STOP (it
 * finishes its running jobs) and replaced, one at a time. Returns how many will be replaced,
 * -ENOENT for a bad slot, -ESHUTDOWN if the pool is not up.
 */
int master_restart(struct master *m, unsigned pool, int slot);
/*
 * bulkhead inject: makes a worker of the pool (slot < 0: a ready one at random) die of
 * `fault` (segv, abort, hang, leak, kill). Its death is blamed on the injection: every job it
 * held is re-run, none is counted an attempt, and it restarts at once. A hang is ended with
 * SIGKILL after kill_grace. Returns 0 with the worker's name and pid; -EINVAL unknown fault,
 * -EDOM leak without memory_max, -ENOENT no such slot, -EBUSY no ready worker,
 * -ESHUTDOWN pool not up.
 */
int master_inject(struct master *m, unsigned pool, int slot, const char *fault,
		  char *ret_worker, size_t size, pid_t *ret_pid);
/*
 * Cancels job `id` (cause "cancelled by request"). A queued one ends now: 0. One on a worker
 * is sent CANCEL (taken back if not started; else it ends cancelled unless it returns 0,
 * done): 1. -EBUSY if it has ended (or is on a worker that is going away), -ENOENT no such
 * job, -ESTALE ended and forgotten.
 */
int master_cancel_job(struct master *m, uint64_t id);

/* Adds / removes a subscriber (the same hooks and userdata). 0, or -ENOMEM. */
int master_subscribe(struct master *m, const struct master_hooks *h, void *userdata);
void master_unsubscribe(struct master *m, const struct master_hooks *h, void *userdata);

/*
 * One line of pools, workers, jobs and deaths (what STATUS= says):
 * "1/1 pools up, 3/3 workers; jobs: 90 done, 4 running, 3 queued, ...".
 */
void master_status_line(const struct master *m, char *buf, size_t size);

/* A read-only view for the control socket. */
struct master_pool_info {
	const char *name;
	const char *state; /* up, failed, removed */
	unsigned workers_up;
	unsigned workers_wanted;
	unsigned threads;
	uint64_t restarts;
	uint64_t worker_faults;
	unsigned n_slots;
	pid_t spare_pid; /* its warm spare ([pool] spare): 0 when it has no process */
	const char *spare_state; /* NULL: the pool has no spare; else as a worker's state */
	unsigned n_solo; /* its solo workers (they run the suspects alone), the same */
	pid_t solo_pid[MASTER_SOLO_MAX];
	const char *solo_state[MASTER_SOLO_MAX];
};

struct master_worker_info {
	unsigned slot;
	pid_t pid; /* 0: no process */
	const char *state;
	usec_t uptime;
	unsigned jobs_running;
	const char *last_death;
};

unsigned master_n_pools(const struct master *m);
bool master_is_ready(const struct master *m);
bool master_is_stopping(const struct master *m);
void master_pool_info(const struct master *m, unsigned pool, struct master_pool_info *ret);
void master_worker_info(const struct master *m, unsigned pool, unsigned slot,
			struct master_worker_info *ret);

/* ---- views of jobs and groups (views.c): copies, or the master's strings ---- */

struct master_job {
	uint64_t id;
	unsigned group;        /* master_group() */
	uint32_t instance;     /* NAME#instance */
	enum job_state state;  /* RUNNING: on a worker (see on_thread) */
	bool on_thread;        /* a thread of its worker has it (else it waits there) */
	unsigned attempts;     /* blamed on it */
	unsigned runs;         /* starts */
	unsigned reruns;       /* as bystander or suspect */
	enum job_cause cause;
	int cause_detail;
	int progress;          /* 0..1000 while running, -1: none */
	const char *input;     /* its file, or NULL; valid until the loop runs again */
	const char *result;    /* its last result line, or NULL; the same */
	const char *worker_pool; /* while on a worker: its pool (valid as input), else NULL */
	unsigned worker_slot;    /* and its slot: "POOL/SLOT" */
	unsigned host_deaths;    /* masters that died while it ran */
	int64_t accepted_at;     /* wall clock, µs since the epoch */
	int64_t started_at;      /* its last start; 0: never started */
	int64_t ended_at;        /* 0: not ended */
	const char *node;        /* the node that ran it (this host), NULL if it never started */
	/* Where its last crash happened, if the master still knows (crash-notes.h): "SIGSEGV at
	 * 0x0 in libfoo.so:parse+0x1a7" and the frames, each ended by '\n'; else NULL. Valid
	 * as input. */
	const char *crash;
	const char *crash_frames;
};

/* Job `id`: 0, -ENOENT (never given), -ESTALE (ended and forgotten: keep_ended). */
int master_job(const struct master *m, uint64_t id, struct master_job *ret);
/* Only its state and group, for a scan over many jobs (a wait): cheaper than master_job(). */
int master_job_state(const struct master *m, uint64_t id, enum job_state *ret_state,
		     unsigned *ret_group);
/* The state as `status` and `jobs` show it: assigned but not on a thread is "queued". */
enum job_state master_job_shown_state(const struct master_job *j);
/* "segv#3". Returns buf. */
char *master_job_name(const struct master *m, const struct master_job *j, char *buf, size_t size);
/* "SIGSEGV", "timeout", "status 1", ... or "". Returns buf. */
char *master_job_cause(const struct master_job *j, char *buf, size_t size);
/* Job ids are 1..master_n_jobs() (some may be forgotten). */
uint64_t master_n_jobs(const struct master *m);
/* Counts over every job ever accepted: by state, runs, re-runs. */
const struct ledger_stats *master_totals(const struct master *m);

struct master_group {
	const struct group_config *cfg; /* the master's; valid until the loop runs again */
	const struct group_counts *counts;
	bool ok; /* every job ended as `expect` */
};

/* Group slots are 0..master_n_groups()-1; master_group() is false for a freed one. */
unsigned master_n_groups(const struct master *m);
/* Only its definition (NULL: no such group), for a scan over many jobs. */
const struct group_config *master_group_config(const struct master *m, unsigned group);
bool master_group(const struct master *m, unsigned group, struct master_group *ret);
/* The index of the group called name, or -ENOENT. */
int master_find_group(const struct master *m, const char *name);
/* An ended job's file moved (a spool's done/...): its input says where it is now. */
int master_move_job_input(struct master *m, uint64_t id, const char *input);

/*
 * A wait handle: while one exists, no job is forgotten (keep_ended), so the jobs a client
 * waits for can be read when they end. Freeing it lets retention catch up.
 */
struct master_pin;
int master_pin_new(struct master *m, struct master_pin **ret);
void master_pin_free(struct master_pin *p);

/* Jobs running on a worker thread now (assigned ones still waiting are not counted). */
uint64_t master_jobs_on_threads(const struct master *m);

/* Number of pools that failed (max_worker_faults). */
unsigned master_failed_pools(const struct master *m);
