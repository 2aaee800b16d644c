/* SPDX-License-Identifier: MIT */
/*
 * The ledger: every job the master accepted, its state, and the blame rules of DESIGN §3.
 * Pure bookkeeping with no processes, clocks or I/O, so each rule is unit-tested directly.
 * The rules are here (ledger.c); the jobs live in a job store behind store.h (in memory
 * today), which every state change goes through.
 *
 * Jobs are stored in fixed chunks, so a job's address never changes while the ledger grows
 * (groups added by a reload, later by submit).
 *
 * Invariants: every job is in exactly one state; a queued job is in exactly one queue of its
 * pool (`ready`, or `alone` for suspects that must run on a worker with nothing else in
 * flight); counts per group and per state always add up to the number of jobs; a job that
 * reached a final state never changes again. Nothing unfinished is ever removed: `lost` is 0
 * by construction, and the tests check the sums anyway. Ended jobs are forgotten only by
 * ledger_collect() (bulkheadd's keep_ended), with their counts kept; a submitted group goes
 * with its last job.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/job-state.h"
#include "config/config.h"

#define JOB_RERUN_MAX 10 /* bystander + suspect re-runs of one job before it is ended */
#define BYSTANDER_ALONE_AFTER 3 /* a job taken down this often by others then runs alone */

enum job_cause {
	CAUSE_NONE,
	CAUSE_STATUS,      /* the job returned non-zero; detail = status */
	CAUSE_SIGNAL,      /* died by a signal; detail = signo */
	CAUSE_EXIT,        /* called exit() / the worker exited; detail = exit code */
	CAUSE_MEMORY,      /* ran out of memory (memory_max); detail = signo */
	CAUSE_TIMEOUT,     /* ran longer than its timeout */
	CAUSE_RERUNS,      /* re-run JOB_RERUN_MAX times as bystander/suspect; detail = last signo */
	CAUSE_POOL_FAILED, /* its pool failed (max_worker_faults) */
	CAUSE_STOPPED,     /* the run was stopped (SIGINT/SIGTERM) */
	CAUSE_POOL_REMOVED, /* its pool was removed by a reload */
	CAUSE_CANCELLED,    /* cancelled by an operator (bulkhead cancel) */
	CAUSE_SPAWN,        /* an exec: job's command could not start; detail = errno */
	CAUSE_HOST_DEATH,   /* its master died under it while it ran alone (ledger_recover) */
};

/* Bits of job.flags. */
enum job_flags {
	JOB_HAS_INPUT = 1 << 0,        /* ledger_job_input() is not NULL */
	JOB_CANCEL_REQUESTED = 1 << 1, /* cancelled while running: it ends cancelled unless done */
	JOB_ADHOC = 1 << 2,            /* of a submitted group (ledger_add_variant) */
	/* The SQLite store's own (never written): its start is its one change since the store
	 * last wrote it (START_LAZY), and it has been counted as a run (START_RAN). */
	JOB_START_RAN = 1 << 5,
	JOB_START_LAZY = 1 << 6,
	JOB_DIRTY = 1 << 7,            /* the store's own: changed since it last wrote it */
};
#define JOB_STORE_FLAGS (JOB_DIRTY | JOB_START_LAZY | JOB_START_RAN)

/*
 * What few jobs have: an input given one by one (spool), a result line, progress. Allocated
 * on first use, so that a job without any costs one pointer.
 */
struct job_extra {
	char *result;      /* the last RESULT, control characters replaced; NULL = none */
	int16_t progress;  /* 0..1000 while running; -1 = none */
	char input[];      /* "" unless the job was added with an input of its own */
};

struct job {
	uint64_t id; /* 1..n, index + 1 */
	uint32_t group;
	uint32_t instance;    /* 1..count */
	uint8_t state;        /* enum job_state */
	uint8_t cause;        /* enum job_cause of the last blame / of the end */
	uint8_t alone;        /* queued as a suspect: run on an otherwise idle worker */
	uint8_t attempts;     /* attempts blamed on this job */
	uint16_t reruns;      /* bystander + suspect re-runs */
	uint16_t runs;        /* times started */
	int32_t cause_detail; /* signal number, exit code or status */
	uint8_t flags;        /* enum job_flags */
	uint8_t host_deaths;  /* masters that died while it ran (found running at a restart) */
	uint16_t node;        /* the node that started it last: ledger_job_node() (0: none) */
	struct job *next;     /* queue link while queued */
	struct job_extra *extra; /* NULL until the job has an own input, a result or progress */
	/* History (wall clock): accepted, in µs since the epoch; its last start and its end, as
	 * 1 + ms after accepted_at (0: not yet; JOB_MS_MAX: at least that much later). */
	int64_t accepted_at;
	uint32_t started_ms;
	uint32_t ended_ms;
};

/* One cache line: a million jobs are 64 MB, and the node index fits in what was padding. */
_Static_assert(sizeof(struct job) == 64, "struct job is 64 bytes");

#define JOB_MS_MAX UINT32_MAX /* 49.7 days after it was accepted, or later */

/* A history field (started_ms, ended_ms) as wall-clock µs, or 0 if not yet. */
static inline int64_t job_time(const struct job *j, uint32_t ms)
{
	return ms ? j->accepted_at + ((int64_t)ms - 1) * 1000 : 0;
}

struct job_queue {
	struct job *head;
	struct job *tail;
	uint64_t n;
};

struct group_counts {
	uint64_t total;
	uint64_t by_state[_JOB_STATE_MAX];
};

struct ledger_stats {
	uint64_t runs;              /* jobs started, re-runs included */
	uint64_t reruns_bystander; /* bystanders that had started (re-run from the start) */
	uint64_t reruns_suspect;
	uint64_t culprits;          /* blames for a crash, exit, memory or timeout */
	uint64_t host_deaths;       /* jobs found running when a durable store was opened again */
	uint64_t by_state[_JOB_STATE_MAX];
};

struct ledger;

struct store;
struct submit_key;

/* An empty ledger with queues for n_pools pools, on the in-memory store. */
int ledger_new(unsigned n_pools, struct ledger **ret);
/* A ledger on store st (store.h), which it owns from now on (ledger_free frees it). */
int ledger_new_with_store(struct store *st, struct ledger **ret);
/*
 * The wall clock the ledger stamps jobs with (µs since the epoch): the master's is its event
 * loop's time of the current pass (one clock read per pass, not per job). Default: the
 * system's CLOCK_REALTIME.
 */
void ledger_set_clock(struct ledger *l, int64_t (*now)(void *userdata), void *userdata);
/* One job per instance of every group of c, all queued (c may be freed afterwards). */
int ledger_new_from_config(const struct config *c, struct ledger **ret);
void ledger_free(struct ledger *l);

/* Grows the number of pools (never shrinks: pool indexes are stable). */
int ledger_set_pools(struct ledger *l, unsigned n_pools, const char *const *names);
/*
 * Adds a job group (copied, strings and input_paths included) and its `count` jobs, queued in
 * its pool. A config's groups stay for good. With inputs, job NAME#i has input
 * input_paths[i-1] (of the ledger's copy).
 */
int ledger_add_group(struct ledger *l, const struct group_config *g, unsigned *ret_index);
/*
 * Jobs submitted at run time: `count` jobs, or with n_inputs > 0 one job per input (as
 * ledger_add_input_jobs), of a group like g called BASE@N (g's name, count and inputs are
 * ignored). An existing submitted group of the same definition (base, pool, run, args,
 * output, timeout, max_attempts, expect) takes them, so repeating a submission adds no group;
 * else a new one is made. A submitted group is freed once every job of it has been forgotten
 * (ledger_collect), and its index may then be given to a new group. All or nothing; the
 * group and the first id out.
 */
int ledger_add_variant(struct ledger *l, const struct group_config *g, const char *base,
		       unsigned count, char *const *inputs, size_t n_inputs, unsigned *ret_group,
		       uint64_t *ret_first);
/* Group slots, freed ones included: loops over groups check ledger_group_exists(). */
unsigned ledger_n_groups(const struct ledger *l);
bool ledger_group_exists(const struct ledger *l, unsigned group);
/* Groups that exist now. */
unsigned ledger_n_live_groups(const struct ledger *l);
/*
 * The id workers know the group's spec by (SPEC, ASSIGN, FORGET): 1..UINT32_MAX-1, never
 * given to another group, so a worker that still knows an old one is never confused.
 */
uint32_t ledger_group_spec_id(const struct ledger *l, unsigned group);
const struct group_config *ledger_group(const struct ledger *l, unsigned group);
/* The index of the group called name, or -ENOENT. */
int ledger_find_group(const struct ledger *l, const char *name);
/* Another name for a group (not one in use): 0 or -EINVAL. */
int ledger_rename_group(struct ledger *l, unsigned group, const char *name);
/* `submit --key` (daemon/submit-keys.h): the submission a key made, or NULL; a new one. */
const struct submit_key *ledger_find_key(const struct ledger *l, const char *key);
int ledger_add_key(struct ledger *l, const char *key, uint64_t first, uint32_t count,
		   uint32_t request);
/* `count` more jobs of an existing group (instances numbered on), queued; first id out. */
int ledger_add_jobs(struct ledger *l, unsigned group, unsigned count, uint64_t *ret_first);
/*
 * n more jobs of an existing group, one per input (the strings are copied; each 1..4096
 * bytes, else -EINVAL), numbered on and queued; first id out. All or nothing.
 */
int ledger_add_input_jobs(struct ledger *l, unsigned group, char *const *inputs, size_t n,
			  uint64_t *ret_first);
/* The job's input (a path), or NULL if it has none. */
const char *ledger_job_input(const struct ledger *l, const struct job *j);
/*
 * Gives an ended job with an input a new one (its file moved: a spool's done/, failed/,
 * quarantine/), so views and reports say where the file is now. Pointers returned by
 * ledger_job_input() for this job before are invalid afterwards. 0, -EINVAL (the job has no
 * input, has not ended, or input is empty or too long), -ENOMEM.
 */
int ledger_move_job_input(struct ledger *l, struct job *j, const char *input);
/* The job's last result line, or NULL if it sent none. */
const char *ledger_job_result(const struct ledger *l, const struct job *j);
/* Progress of a running job in 1/1000, or -1 if it sent none. */
int ledger_job_progress(const struct ledger *l, const struct job *j);
/*
 * Stores a result line (len bytes, not NUL-terminated, cut at BH_RESULT_MAX) with control
 * characters replaced by '?'. -ENOMEM leaves the previous one.
 */
int ledger_set_result(struct ledger *l, struct job *j, const char *text, size_t len);
/* Stores a running job's progress (clamped to 0..1000); forgotten when it is started again. */
int ledger_set_progress(struct ledger *l, struct job *j, unsigned permille);

/* Cancels a job still waiting in its queue: 0, or -EBUSY if it is not in a queue. */
int ledger_cancel_queued_job(struct ledger *l, struct job *j, enum job_cause cause);

/*
 * Called once for every job that reaches a final state, right after it did. Several
 * subscribers are called in the order they were added. A hook must not add jobs or end
 * other jobs.
 */
typedef void (*ledger_end_hook_fn)(void *userdata, struct job *j);
int ledger_add_end_hook(struct ledger *l, ledger_end_hook_fn fn, void *userdata);
/* Removes the hook added with the same fn and userdata (nothing if there is none). */
void ledger_remove_end_hook(struct ledger *l, ledger_end_hook_fn fn, void *userdata);

/* A reload or a restart: the group's timeout, max_attempts, expect and count take g's. */
void ledger_update_group(struct ledger *l, unsigned group, const struct group_config *g);

uint64_t ledger_n_jobs(const struct ledger *l);
/* The job with this id, or NULL (never trust an id from a peer without this). */
struct job *ledger_job(struct ledger *l, uint64_t id);

/*
 * Retention (bulkheadd's keep_ended): ledger_collect() forgets the oldest ended jobs, a chunk
 * of 4096 at a time, while at least `keep` ended jobs stay; default UINT64_MAX, keep all.
 * A forgotten job is NULL for ledger_job() (ledger_job_forgotten() tells it from an id never
 * given); its counts stay. Call ledger_collect() where no struct job pointer of an ended job
 * is held (it frees them). While pinned (ledger_pin), nothing is forgotten: a client waiting
 * for jobs by id pins the ledger. Returns how many jobs it forgot.
 */
void ledger_set_keep_ended(struct ledger *l, uint64_t keep);
uint64_t ledger_collect(struct ledger *l);
bool ledger_job_forgotten(const struct ledger *l, uint64_t id);
uint64_t ledger_forgotten(const struct ledger *l);
void ledger_pin(struct ledger *l, bool on);
const struct ledger_stats *ledger_stats(const struct ledger *l);
const struct group_counts *ledger_group_counts(const struct ledger *l, unsigned group);
/* Jobs not yet in a final state. */
uint64_t ledger_unfinished(const struct ledger *l);
/* True if every job of the group ended in the group's `expect` state. */
bool ledger_group_ok(const struct ledger *l, unsigned group);

/* Queued jobs of a pool in its normal / alone queue. */
uint64_t ledger_queued(const struct ledger *l, unsigned pool, bool alone);
/* Takes the next queued job of that queue (NULL if empty); it stays `queued` until started. */
struct job *ledger_pop(struct ledger *l, unsigned pool, bool alone);
/* Puts a popped job back at the front of its queue (an assignment that could not be sent). */
void ledger_unpop(struct ledger *l, struct job *j);
/*
 * A popped job was handed to a worker: queued -> running. It counts as a run (runs,
 * `attempts` in reports) only once a thread starts it: ledger_started(). A job handed to a
 * worker that dies before starting it goes back without having run.
 */
void ledger_assign(struct ledger *l, struct job *j);
void ledger_started(struct ledger *l, struct job *j);
/* Both at once (a job handed over and started). */
void ledger_start(struct ledger *l, struct job *j);

/*
 * The worker reported the job's result: 0 -> done, else failed or retried (cancelled if a
 * cancel was requested).
 */
void ledger_finish(struct ledger *l, struct job *j, int status);
/*
 * The job's command could not be started (exec: spawn failed with errno err): an attempt is
 * counted, cause CAUSE_SPAWN; it is retried, and ends failed after max_attempts.
 */
void ledger_spawn_failed(struct ledger *l, struct job *j, int err);
/*
 * The job is the culprit of a worker death or a timeout: an attempt is counted; it is
 * quarantined after max_attempts, else retried alone (it never takes others down twice).
 */
void ledger_blame(struct ledger *l, struct job *j, enum job_cause cause, int detail);
/*
 * The job's own process died (an exec: job's command killed by a signal, or killed for its
 * timeout) and its worker lived on: blamed as ledger_blame, but retried with the others, as
 * nobody else was at risk.
 */
void ledger_blame_command(struct ledger *l, struct job *j, enum job_cause cause, int detail);
/*
 * A running job is to stop (bulkhead cancel): from now on, any end other than done is
 * `cancelled` (cause cancelled), and it is never re-run.
 */
void ledger_request_cancel(struct ledger *l, struct job *j);
/*
 * The job was on a worker that died for another job: re-queued at the back, no attempt
 * counted. A job that had started counts one re-run (capped at JOB_RERUN_MAX).
 */
void ledger_bystander(struct ledger *l, struct job *j, bool started);
/* The job was running on a worker that died unexplained: re-queued to run alone. */
void ledger_suspect(struct ledger *l, struct job *j, int signo);
/* Ends a queued or running job as cancelled. */
void ledger_cancel(struct ledger *l, struct job *j, enum job_cause cause);
/* Cancels every queued job of a pool (held ones too). Returns how many. */
uint64_t ledger_cancel_queued(struct ledger *l, unsigned pool, enum job_cause cause);

/*
 * Held jobs (ledger-hold.c): a job re-queued after an attempt it is blamed for (a failure,
 * a spawn failure, a crash or timeout of its own), in a group with retry_delay, waits out of
 * its queue (still QUEUED) until its delay has passed; bystander and suspect re-runs do not
 * wait. ledger_hold() holds j if it should (false: it stays in its queue); the hook (the
 * master's timer) hears of each hold's due time (the ledger's clock, µs).
 * ledger_hold_release() puts back every job due by `now` (pool < 0), or every held job of
 * `pool` (pool >= 0: it is being emptied), and returns how many; ledger_hold_take() takes
 * j out of the held ones (true if it was: the caller ends it).
 */
bool ledger_hold(struct ledger *l, struct job *j);
void ledger_set_hold_hook(struct ledger *l, void (*fn)(void *userdata, int64_t due),
			  void *userdata);
int64_t ledger_hold_next(const struct ledger *l); /* the earliest due time, 0 if none */
size_t ledger_n_held(const struct ledger *l);
size_t ledger_hold_release(struct ledger *l, int64_t now, int pool);
bool ledger_hold_take(struct ledger *l, struct job *j);

/*
 * Makes every change since the last call durable (store.h flush()): 0, or a negative errno
 * with nothing of it lost (the next call writes it). The memory store: always 0.
 */
int ledger_flush(struct ledger *l);
/*
 * The same, but a job whose start (and the run it counts) is its one change may stay
 * unwritten, as if it had not started yet (store.h flush_partial()): for a write that only
 * a submit's reply waits for. The next ledger_flush() writes it.
 */
int ledger_flush_partial(struct ledger *l);
/* What the last failed ledger_flush() met, naming the file ("" if none). */
const char *ledger_store_error(const struct ledger *l);
/* Transactions the store committed since it was opened. */
uint64_t ledger_store_commits(const struct ledger *l);
/* The node the jobs this ledger starts are stamped with (its name kept by the store). */
int ledger_set_node(struct ledger *l, const char *name);
/* The node that started j last, or NULL. */
const char *ledger_job_node(const struct ledger *l, const struct job *j);
struct log_query;
struct log_line;
/* A line job j logged (now), kept with it (*ret: the line as kept); the lines a query wants. */
int ledger_add_log(struct ledger *l, const struct job *j, int level, const char *text,
		   size_t len, struct log_line *ret);
int ledger_read_logs(struct ledger *l, const struct log_query *q,
		     int (*cb)(void *userdata, const struct log_line *line), void *userdata);
/* Whether the store holds changes not written yet. */
bool ledger_store_dirty(const struct ledger *l);

/*
 * The restart rule (DESIGN §12), for the jobs a durable store found running when it was
 * opened: their master died under them. Each is re-queued with no attempt counted and
 * host_deaths + 1, to run alone from its second such death on; one that was already running
 * alone is blamed like any death (an attempt; CAUSE_HOST_DEATH at max_attempts). A job whose
 * cancel was requested ends cancelled. Returns how many there were.
 */
uint64_t ledger_recover(struct ledger *l);

/*
 * A popped job that never started goes back to its queue as it was (a shared store's: to the
 * shared queue, for any node), nothing counted.
 */
void ledger_release(struct ledger *l, struct job *j);
/*
 * A resumed one-shot run (bulkhead run --state): the jobs its stop cancelled (CAUSE_STOPPED:
 * Ctrl-C, SIGTERM) are queued again, and with retry_failed the failed, crashed and timed-out
 * ones too, with their attempts starting over. Returns how many.
 */
uint64_t ledger_resume(struct ledger *l, bool retry_failed);

/* How a worker died, as far as the master knows. */
struct death {
	bool crash_frame;    /* a CRASH frame arrived before the death */
	uint64_t crash_job;  /* its job id (0 = outside a job) */
	uint32_t crash_kind; /* enum bh_crash_kind */
	int crash_signo;
	bool signaled; /* killed by a signal (else exited) */
	int status;    /* the signal number, or the exit code */
	bool solo;     /* the worker held one job that had to run alone */
	bool oom;      /* the OOM killer ended it in its cgroup (memory.max) */
};

enum held_flags {
	HELD_STARTED = 1 << 0,   /* the job had started on a thread */
	HELD_TIMED_OUT = 1 << 1, /* the master killed the worker because of this job's timeout */
};

enum death_verdict {
	DEATH_IDLE,     /* no job in flight: a worker fault */
	DEATH_CULPRIT,  /* at least one job was blamed */
	DEATH_SUSPECTS, /* jobs in flight but no one to blame: suspects re-run alone */
};

/*
 * Applies the blame rules to the n jobs a dead worker held (flags[i] for jobs[i]):
 * a timed-out job or the job a CRASH frame names is the culprit and the others bystanders;
 * with no such evidence, started jobs are suspects and the rest bystanders, except that a
 * job that already ran alone is the culprit. Returns what kind of death it was.
 */
enum death_verdict ledger_worker_died(struct ledger *l, const struct death *d, struct job **jobs,
				      const uint8_t *flags, size_t n);

/* "segv#3" */
char *ledger_job_name(const struct ledger *l, const struct job *j, char *buf, size_t size);
/*
 * "SIGSEGV", "timeout", "exit(7)", "status 1", "memory", "pool failed",
 * "spawn failed: No such file or directory", ""
 */
char *ledger_cause_string(const struct job *j, char *buf, size_t size);
/* "SIGSEGV" for a known signal number, else "SIG<n>". */
const char *signal_name(int signo, char *buf, size_t size);
