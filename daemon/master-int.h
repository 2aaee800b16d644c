/* SPDX-License-Identifier: MIT */
/*
 * The master's insides, shared by its files (master.h is its public face). What lives where:
 *
 *   master.c      the loop and its event sources; new, run, free; the end of a run
 *   slot.c        a worker slot's life: spawn, stop, kill, state timer, restarts, faults
 *   forkserver.c  the fork server: started, used, restarted after a failure
 *   inflight.c    which jobs a worker holds, running or waiting; job deadlines
 *   dispatch.c    windows, ASSIGN, suspects on a reserved worker, specs on workers
 *   frames.c      frames from a worker, checked and handled
 *   reap.c        a worker process's end: its pidfd, reaping, a tracer holding it
 *   death.c       a worker's death: the blame rules, the log line, the restart
 *   reload.c      SIGHUP: the new config applied whole or not at all
 *   api.c         jobs added at run time, cancel, restart, inject, views, status text
 *
 * A slot goes EMPTY -> STARTING (spawned, waiting for HELLO) -> READY (takes jobs) ->
 * DRAINING (a job timed out: no new jobs, SIGKILL after kill_grace) or STOPPING (STOP sent)
 * -> KILLED (SIGKILL sent) -> EMPTY when the pidfd says it exited. Every transition to EMPTY
 * goes through death_of(), the one place that applies the blame rules
 * (ledger_worker_died) and the restart policy (policy.h). A restart is always a timer, even
 * an immediate one, so nothing recurses and a broken worker cannot spin the loop.
 *
 * Jobs with an input get an INPUT frame right before the ASSIGN that names them; once an
 * INPUT went out, that ASSIGN is sent even if the socket is full (held until it has room),
 * so a worker never keeps an input for a job it is not given. exec: jobs report their
 * command's pid (EXEC): the master kills that process group, not the worker, when the job
 * times out, and kills every such group of a worker that dies.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "common/idmap.h"
#include "common/protocol.h"
#include "daemon/crash-notes.h"
#include "daemon/flights.h"
#include "daemon/ledger.h"
#include "daemon/master.h"
#include "daemon/histogram.h"
#include "daemon/policy.h"
#include "daemon/spawn-worker.h"

#define TIMER_ACCURACY USEC_PER_MSEC
#define RELOAD_MIN_INTERVAL (100 * USEC_PER_MSEC)
#define TERM_GRACE (1 * USEC_PER_SEC) /* SIGTERM -> SIGKILL at the end of a stop */
#define RESOURCE_RETRY_MIN (50 * USEC_PER_MSEC) /* a start that lacked the master's fds... */
#define RESOURCE_RETRY_MAX (2 * USEC_PER_SEC)   /* ...is tried again, doubling up to this */
#define RESOURCE_LOG_INTERVAL (10 * USEC_PER_SEC)
#define ZYGOTE_BACKOFF_MIN (1 * USEC_PER_SEC)   /* a failed fork server is started again... */
#define ZYGOTE_BACKOFF_MAX (60 * USEC_PER_SEC)  /* ...after this, doubling up to this */
#define ZYGOTE_MIN_UPTIME (60 * USEC_PER_SEC)   /* one that served this long: minimum again */
#define SPARE_INDEX 65535u /* the spare's --index (and cgroup w.POOL.65535) */
#define SOLO_INDEX 65534u /* the first solo worker's (spare.c); the next ones count down */
/* slot flag: for its timeout, the master killed its command's group or (a CANCEL) its
 * contained process; its DONE is awaited for kill_grace, then the worker goes */
#define SLOT_TIMEOUT_KILLED (1u << 6)
#define SLOT_CONTAINED (1u << 5) /* flight flag: assigned with BH_ASSIGN_CONTAIN */

/*
 * A slot's state; slot_set_state() (slot.c) is the one writer, and arms what belongs to each
 * state: the state timer (w->timer) and the job deadline (w->deadline). Transitions:
 *
 *   EMPTY       -> STARTING        spawned (the timer: HELLO deadline)
 *               -> READY           the pool's warm spare took the slot over (spare.c)
 *   STARTING    -> READY           HELLO
 *               -> KILLED          no HELLO in time, or stopped before it could be told
 *   READY       -> DRAINING        a job timed out, or `inject hang` (the timer: kill_grace)
 *               -> STOPPING        STOP sent (the timer: the stop deadline)
 *               -> KILLED          bad frame, `inject kill`, a second SIGINT
 *   DRAINING    -> READY           the jobs that timed out ended after all
 *               -> KILLED          kill_grace over, or nothing but timed-out jobs left
 *   STOPPING    -> DRAINING        a job timed out while it finished its jobs
 *               -> TERMINATING     the stop deadline passed: SIGTERM (the timer: TERM_GRACE)
 *               -> KILLED          a second SIGINT/SIGTERM, a bad frame
 *   TERMINATING -> DRAINING, KILLED
 *   KILLED      -> (nothing but its exit)
 *   any state with a process -> EMPTY   its exit (pidfd): death_of(); the timer then is the
 *                                       restart (slot_schedule_restart)
 *
 * The job deadline runs from READY to TERMINATING; KILLED and EMPTY disarm both.
 */
enum worker_state {
	W_EMPTY,
	W_STARTING,
	W_READY,
	W_DRAINING,
	W_STOPPING,
	W_TERMINATING,
	W_KILLED,
	_W_STATE_MAX,
};

/*
 * Why a slot's process is ending. Of several reasons the latest in this list stays (an
 * injection outweighs a stop, a stop a timeout, a timeout a broken frame). Its death is judged
 * by it: only a worker's own death is a worker fault (DESIGN §11), never the master's kill for
 * a timeout, a stop or an injection.
 */
enum slot_end {
	END_NONE,    /* not ending: if it dies, it died by itself */
	END_BROKEN,  /* it broke the protocol or never said HELLO: its own fault */
	END_TIMEOUT, /* a job timed out: that job's fault, nobody's if it ended meanwhile */
	END_STOP,    /* asked to stop (STOP, then SIGTERM, SIGKILL): nobody's fault */
	END_INJECT,  /* bulkhead inject: nobody's fault */
};

/* How the dispatcher treats a READY slot. */
enum slot_mode {
	MODE_SHARED,   /* takes jobs up to its window */
	MODE_RESERVED, /* takes no new jobs until idle, then runs the next suspect alone */
	MODE_SOLO,     /* holds one job that must run alone */
};

/* What comes after this process. */
enum slot_next {
	NEXT_RESTART, /* restarted when it dies (at once or after a backoff) */
	NEXT_REPLACE, /* replaced gracefully (STOP, then a new one): `bulkhead restart` */
	NEXT_RETIRE,  /* a reload removed the slot: no restart */
};

struct pool;

/* An exec: job's command, as its EXEC frame said (checked in /proc). */
struct exec_run {
	struct job *job;
	pid_t pid; /* also its process group */
};

struct worker {
	struct master *m;
	struct pool *pool;
	unsigned index; /* SPARE_INDEX for the pool's spare */
	bool spare; /* the pool's warm spare or solo worker (spare.c): not a slot */
	bool solo; /* the solo worker: runs alone jobs, takes no slot over */
	bool spare_hold; /* spare: it died of a worker fault; alone jobs do not wait for it */
	bool dying; /* a slot's process the spare stepped in for after its CRASH (spare.c) */
	struct worker *dying_next; /* pool->dying: the next one */
	enum worker_state state;
	pid_t pid; /* 0 when there is no process */
	int fd;
	sd_event_source *io;
	sd_event_source *child;    /* its pidfd (owned): readable once the process has ended */
	sd_event_source *reap;     /* a tracer holds its exit back: try to reap again */
	usec_t reap_delay;
	sd_event_source *timer;    /* restart, HELLO deadline, kill grace, stop deadline */
	sd_event_source *soon;     /* a restart "at once" (a defer source: no timerfd round) */
	sd_event_source *deadline; /* earliest job timeout */
	usec_t deadline_at;
	usec_t spawned_at;
	unsigned spawns;
	uint64_t memory_max; /* of the running process */
	uid_t uid; /* ids the running process dropped to (-1: the master's) */
	gid_t gid;
	unsigned tasks_max; /* of the running process's cgroup */
	bool core_dumps;    /* the running process leaves a core when it crashes */
	bool spawner;       /* the running process has a spawner (--spawner) */
	int cg_fd;          /* the slot's cgroup (cgroup.h), or -1 */
	uint64_t oom_base;  /* its memory.events oom_kill when the process started */
	bool died_oom;      /* the OOM killer ended it (read at its death) */
	enum slot_next next;
	usec_t stop_grace; /* STOPPING: how long it may take */
	struct backoff backoff;

	struct flight_queue q; /* the jobs it holds: running in thread slots, waiting in a FIFO */
	unsigned n_timed_out;

	usec_t ready_at; /* its HELLO; 0: none yet */
	enum slot_end end;
	enum slot_mode mode;
	char last_death[48]; /* "SIGSEGV", "exit(3)", "" if it never died */
	const char *injected; /* with END_INJECT: the fault `bulkhead inject` gave it */
	bool fenced; /* END_INJECT by a shared store: a job's lease was lost (shared.c) */
	bool blocked;  /* socket full: wait for EPOLLOUT */
	usec_t resource_delay; /* the master lacked fds or memory to start it: next retry */
	struct idmap specs;    /* specs it knows (see "specs on workers") */
	bool forgets_pending;  /* a FORGET found the socket full */
	unsigned idle_specs;   /* specs of submitted groups it knows, with no job of them */
	bool crash_frame;
	bool crash_info; /* a CRASH_INFO came after it (only the first one counts) */
	struct bh_crash crash;
	/*
	 * The last CRASH frame of a contained run (BH_CRASH_CONTAINED: job_id 0 if none since),
	 * kept for its job's DIED entry, which follows; and whether its CRASH_INFO came.
	 */
	struct bh_crash contained;
	bool contained_info;
	const char *kill_reason; /* END_BROKEN: what it did (its frames are not read any more) */

	struct exec_run *execs; /* commands of exec: jobs in flight (EXEC came, DONE not yet) */
	unsigned n_execs;
	unsigned cap_execs;
	uint8_t *held;   /* an ASSIGN whose jobs' INPUT frames went out: sent when it can be */
	size_t held_len;
	unsigned n_held; /* its jobs: the last ones of the FIFO, not startable before it goes */
};

enum pool_state {
	POOL_UP,
	POOL_FAILED,
	POOL_REMOVED, /* gone from the config: drains, then stays as a tombstone */
};

struct pool {
	struct master *m;
	unsigned index;
	struct pool_config cfg; /* own copy: a reload changes it */
	enum pool_state state;
	struct worker **workers; /* slots; a slot index is stable */
	unsigned n_slots;        /* >= cfg.workers while retired slots wind down */
	struct fault_window faults;
	uint64_t run_est; /* jobs' mean run time, EWMA, in 1/16 us; 0 = not known yet */
	uint64_t restarts;
	uint64_t worker_faults;
	struct histogram run_time; /* of its jobs whose worker reported their end (metrics.c) */
	bool dispatch_pending; /* jobs were added: dispatch_pool() from m->dispatch_defer */
	struct worker *spare; /* [pool] spare = yes: the warm spare (spare.c), else NULL */
	struct worker *solo[MASTER_SOLO_MAX]; /* [pool] spare = yes: its solo workers (spare.c) */
	struct worker *dying; /* processes that sent CRASH, out of their slots until they die */
	bool runs_exec; /* the config has an exec: group in it: its workers get a spawner */
};

struct master {
	struct config *config; /* owned; replaced by a reload */
	struct master_options opts;
	struct master_sub {
		const struct master_hooks *h;
		void *userdata;
	} *subs; /* master_subscribe() */
	unsigned n_subs;
	bool ready_sent;
	sd_event *event;
	struct ledger *ledger;
	struct flight_table flights; /* every job on a worker, by id (flights.h) */
	struct pool **pools; /* index = pool index in the ledger; never shrinks */
	unsigned n_pools;
	char **gone_pools; /* durable_open(): pools of the store the config dropped, to add */
	unsigned n_gone_pools;
	const char *worker_path;
	struct zygote zygote; /* the fork server, if worker_start = fork-server */
	struct cgroup_tree *cg; /* per-worker cgroups (cgroup.h), or NULL: not delegated */
	uid_t job_uid; /* pools without user run jobs as this (identity.c); -1: as we are */
	gid_t job_gid;
	bool zygote_tried;    /* the first one was started */
	bool zygote_never;    /* it said it cannot fork workers here: exec for good */
	bool zygote_pending;  /* a restarted one has not said it is up yet */
	sd_event_source *zygote_io;    /* its socket: its first reply, or its end */
	sd_event_source *zygote_timer; /* a restarted one's deadline to say it is up */
	struct backoff zygote_backoff; /* between restarts after failures */
	usec_t zygote_retry_at;        /* no new fork server before this */
	usec_t zygote_up_at;
	usec_t resource_logged; /* last warning about the master's own resources */
	bool stopping;  /* no more dispatching; waiting for workers to go */
	unsigned n_alive;
	sd_event_source *sigint;
	sd_event_source *sigterm;
	sd_event_source *sighup;
	sd_event_source *collect; /* daemon: deferred ledger_collect() (keep_ended) */
	sd_event_source *flush;   /* a recorded run: the store flushed once per loop pass */
	bool flush_failing;       /* logged once until a flush works again */
	struct histogram commit_time; /* of the flushes that wrote (metrics.c) */
	uint64_t flushes;         /* flushes that succeeded */
	bool flush_urgent;        /* a reply waits for the next flush */
	bool flush_all;           /* ... one that may tell of anything, not a submit's alone */
	usec_t flushed_all_at;    /* the last flush that left nothing out (monotonic) */
	sd_event_source *dispatch_defer; /* pools with jobs added this pass are dispatched */
	bool dispatch_owed; /* the dispatch defer wrote first: its next run dispatches */
	usec_t flushed_at;        /* the last flush (monotonic) */
	char node[256];           /* this host's name: the node its jobs run on */
	struct store *shared;     /* `store = postgresql:` (shared.c): the ledger's store */
	usec_t shared_exit_by;    /* a stop's last write is waited for until then */
	sd_event_source *flush_retry; /* while failing: a pass (and so a flush) each second */
	int state_error;          /* the last flush, when the loop had ended */
	sd_event_source *reload_event; /* a SIGHUP storm is one reload */
	sd_event_source *hold_timer; /* retry_delay: the earliest held job is due */
	usec_t last_reload;
	/* What the last reload changed and what waits for a restart: lines, each ending in '\n'. */
	char *reload_changes, *reload_warnings;
	FILE *reload_changes_f, *reload_warnings_f; /* open while a reload applies */
	unsigned interrupts;
	struct master_stats stats;
	struct crash_notes crash_notes; /* the last crashes' frames, for the views */
	uint8_t buf[BH_FRAME_MAX];
	uint8_t ibuf[BH_INPUT_MAX + 64]; /* one INPUT frame */
};

/* Journal fields for one log line (see log_fields). */
struct lfields {
	char pool[48], worker[64], job[96], sig[32], cause[96];
	const char *v[6];
};

/* Calls hook `name` of every subscriber of m with the arguments after m. */
#define MASTER_EMIT(m, name, ...)                                                                  \
	do {                                                                                       \
		for (unsigned i_ = 0; i_ < (m)->n_subs; i_++)                                      \
			if ((m)->subs[i_].h->name)                                                 \
				(m)->subs[i_].h->name((m)->subs[i_].userdata, ##__VA_ARGS__);      \
	} while (0)

/* ---- master.c ---- */

struct ledger *master_ledger(struct master *m);
/* Runs ledger_collect() (keep_ended) soon, from the loop: after a ledger_pin() ends. */
void master_collect_soon(struct master *m);


int master_arm_timer(struct master *m, sd_event_source **s, usec_t when,
		     sd_event_time_handler_t cb, void *userdata);
void master_disarm(sd_event_source *s);
const char *const *master_lfields(struct lfields *f, const struct pool *p, const struct worker *w,
				  const struct job *j, int signo, const char *cause);
void master_begin_stop(struct master *m, enum job_cause cause);
void master_check_ready(struct master *m);
void master_check_done(struct master *m);

/* ---- slot.c ---- */

const char *slot_label(const struct worker *w, char *buf, size_t size);
int slot_send(struct worker *w, const void *buf, size_t len);
void slot_kill(struct worker *w, enum slot_end why, const char *reason);
/* The one writer of w->state (see the table above); arms and disarms the state's timers. */
void slot_set_state(struct worker *w, enum worker_state s);
/* True if the table above has the transition from -> to. */
bool slot_transition_allowed(enum worker_state from, enum worker_state to);
/* Its process was started with other threads, memory_max, tasks_max, user, group, core_dumps
 * or spawner (the pool has exec: groups or not) than the pool has now. */
bool slot_outdated(const struct worker *w);
/* Records why it is ending, unless it has a weightier reason already (enum slot_end). */
void slot_set_end(struct worker *w, enum slot_end why);
void slot_stop(struct worker *w, usec_t grace);
void slot_resume(struct worker *w);
int slot_on_timer(sd_event_source *s, uint64_t usec, void *userdata);
void slot_schedule_restart(struct worker *w, usec_t delay);
/* Disarms the slot's timer and a restart "at once" not yet run. */
void slot_timer_off(struct worker *w);
void slot_fault(struct worker *w, usec_t uptime, const char *what);
int pool_grow_slots(struct pool *p, unsigned n);
int pool_new(struct master *m, const struct pool_config *pc, unsigned index,
		    struct pool **ret);
void slot_free(struct worker *w);
void pool_free(struct pool *p);
struct worker *slot_new(struct pool *p, unsigned index);
/* The slot's cgroup made ready for a new process (limits of the pool now); logs a failure. */
void slot_cgroup_prepare(struct worker *w);
/*
 * Its spawner (children/spawner.c, the only child of the worker's main thread while it runs
 * no job: at HELLO, at a spare's takeover) into the slot's cgroup too, so that the
 * trampolines it forks are there. The worker may fork it before the master moved the worker.
 */
void slot_cgroup_attach_spawner(struct worker *w);
/*
 * Sets p->runs_exec from config c (children/spawner.c; docs/decisions.md "Commands through a
 * spawner"). True if it changed: its workers are outdated (slot_outdated()).
 */
bool pool_update_runs_exec(struct pool *p, const struct config *c);
/* What a slot keeps of its process's start: reset for a process that is new to it. */
void slot_process_reset(struct worker *w);

/* ---- spare.c: a pool's warm spare ---- */

/* Starts (or replaces, or retires) the pool's spare as its config and state say. */
void spare_ensure(struct pool *p);
/* w's slot is to be started: true if the spare took it over (w is READY then). */
bool spare_take_over(struct worker *w);
/* w sent CRASH: the ready spare takes its slot over now, w's process dies outside it. */
bool spare_step_in(struct worker *w);
/* A process spare_step_in() took out of its slot is gone: its struct is freed. */
void spare_dead(struct worker *d);
/* True if alone jobs (suspects) of p wait for its spare rather than reserve a shared worker. */
bool spare_runs_alone(const struct pool *p);
/* The retired spare's (or solo worker's) process is gone: its struct is freed. */
void spare_retired(struct pool *p, struct worker *s);
/* The spare said HELLO. */
void spare_ready(struct worker *s);

/* ---- forkserver.c ---- */

bool master_resource_error(int r);

/* identity.c: whom each pool's jobs run as. */
void master_identity_init(struct master *m);
/* uid:gid a new worker of pc drops to; (uid_t)-1: it keeps the master's. */
void master_pool_identity(const struct master *m, const struct pool_config *pc, uid_t *uid,
			  gid_t *gid);
void forkserver_end(struct master *m);
/* Starts the worker l describes (forked by the fork server, else exec'd). */
int forkserver_start_worker(struct master *m, const struct worker_launch *l,
			    struct spawned_worker *s);

/* ---- inflight.c ---- */

unsigned inflight_count(const struct worker *w);
void inflight_assign(struct worker *w, struct job *j, usec_t now, bool held, uint8_t flags);
/* Room for n more jobs on w: then that many inflight_assign() cannot fail. 0 or -ENOMEM. */
int inflight_reserve(struct worker *w, size_t n);
/* After a burst, with nothing in flight: the in-flight table and FIFOs shrink back. */
void inflight_trim(struct master *m);
/* The record of job_id if it is in flight on w, else NULL. */
struct flight *inflight_find(struct worker *w, uint64_t job_id);
void inflight_untrack(struct worker *w, struct flight *f);
void inflight_promote(struct worker *w, usec_t now);
struct exec_run *inflight_exec_find(struct worker *w, const struct job *j);
void inflight_exec_forget(struct worker *w, struct exec_run *x);
void inflight_kill_commands(struct worker *w);
size_t inflight_collect(struct worker *w, struct job **jobs, uint8_t *flags);

/* ---- dispatch.c ---- */

void dispatch_learn(struct pool *p, uint64_t sum_usec, uint32_t n);
/*
 * The pure parts, unit-tested: the window for a pool's run-time estimate (1/16 us; 0 not
 * known yet) and a worker's threads; the estimate after a DONE frame whose n jobs ran
 * sum_usec in all; and whether a worker holding `held` jobs of a `window` is topped up now.
 */
unsigned dispatch_window_for(uint64_t run_est, unsigned threads);
uint64_t dispatch_learn_est(uint64_t run_est, uint64_t sum_usec, uint32_t n);
bool dispatch_top_up(unsigned held, unsigned window);
void dispatch_spec_release(struct worker *w, const struct job *j);
void dispatch_flush_forgets(struct worker *w);
void dispatch_fill(struct worker *w);
void dispatch_pool(struct pool *p);

/* ---- frames.c ---- */

bool frames_drain(struct worker *w);
int frames_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/*
 * What a DONE frame teaches the pool's run-time estimate (dispatch_learn()): the sum of its
 * run times, each clipped at 4 times the estimate, unless more of them are over that than
 * the worker has threads. A stall of the whole worker (its threads preempted for a few ms
 * on a busy machine) inflates at most one job per thread, the ones running through it, and
 * the results it holds then go out in a small frame: with 1 us jobs, one such frame of 2-3
 * jobs used to move the estimate from 1 us to 1 ms at once, shrinking the window from 4095
 * to a few jobs and starving the worker for the 20 or so frames the estimate took to come
 * down (bench/README.md, issue 17). Clipped, a stall moves it by at most 4 times per frame;
 * jobs that really got slower are more than `threads` over the clip (then the plain sum is
 * learnt at once), or raise the clip 4 times per frame, which shrinks the window to its
 * minimum within a few frames even for jobs a million times longer.
 */
struct run_learn {
	uint64_t sum, clipped;
	uint64_t clip; /* us; 0: no estimate yet, learn the plain sum */
	uint32_t over;
};

void run_learn_init(struct run_learn *rl, uint64_t run_est);
void run_learn_add(struct run_learn *rl, uint32_t run_usec);
uint64_t run_learn_sum(const struct run_learn *rl, unsigned threads);

/* ---- death.c ---- */

/* What is known when a worker has died: its death is judged by this alone. */
struct death_facts {
	bool ending;         /* the run or its pool is ending: its jobs are cancelled */
	bool clean;          /* it exited 0 after STOP */
	enum slot_end end;   /* why it was ending, if it was */
	bool crash_frame;    /* a CRASH frame came */
	bool signaled;       /* killed by a signal (else it exited) */
	int status;          /* the signal, or the exit code */
	bool held_timed_out; /* it held a job that timed out */
};

/* How its jobs are judged (death.c's judge()): in this order of precedence. */
enum death_kind {
	DEATH_KIND_CANCEL,        /* run or pool ending: every job it held is cancelled */
	DEATH_KIND_CLEAN,         /* exited after STOP: what it held had not started */
	DEATH_KIND_INJECTED,      /* bulkhead inject: bystanders all, nobody's fault */
	DEATH_KIND_STOPPED,       /* ended by the master after STOP: timed-out jobs blamed */
	DEATH_KIND_TIMEOUT_ENDED, /* killed for a timeout whose job ended meanwhile */
	DEATH_KIND_EVIDENCE,      /* the blame rules on the evidence (ledger_worker_died) */
};

/* What the slot does next. */
enum death_after {
	AFTER_NOTHING,        /* the run or its pool is ending */
	AFTER_TRIM,           /* a retired slot: freed once the pool's tail is empty */
	AFTER_FAULT_NO_HELLO, /* a worker fault: died before HELLO */
	AFTER_FAULT_IDLE,     /* a worker fault: died with no job in flight, by itself */
	AFTER_RESTART_RESET,  /* restart at once, backoff starts over (not its fault) */
	AFTER_RESTART,        /* restart at once */
};

enum death_kind death_classify(const struct death_facts *f);
/* True if the death counts in workers.deaths and the slot's last_death. */
bool death_counts(const struct death_facts *f);
enum death_after death_next(const struct death_facts *f, bool retire, bool hello,
			    enum death_verdict v);

void death_log_final(struct master *m, struct job *j);
void death_reaped(struct worker *w, int code, int status);

/* ---- durable.c: a run recorded in a store file (opts.state) ---- */

/*
 * A durable daemon: a stop (SIGTERM) ends no job; queued ones and those its drain killed
 * stay in the store for the next start.
 */
bool master_keeps_jobs(const struct master *m);
/*
 * Jobs were added to p (a submit, a spool file, a reload): its workers get them later in this
 * loop pass, once every request the pass brought is in, so one ASSIGN carries them all.
 */
void master_dispatch_soon(struct pool *p);
/* The ledger told of the pools, by index and name (after pools were added). */
int master_sync_pools(struct master *m);
/* Opens the store as m->ledger, with c's groups (new file) or resumed; logs what fails. */
int durable_open(struct master *m, const struct config *c);
/* Writes what changed now (logs a failure); 0 or the store's -errno. */
int durable_flush(struct master *m, usec_t now);
/* A held reply waits for a write: written now; true if it was. */
bool durable_flush_first(struct master *m);
/* After the config's pools: the store's pools the config dropped, as removed pools. */
int durable_add_gone_pools(struct master *m);
void durable_free_gone_pools(struct master *m);
/* The last flush when the loop has ended; logs a failure. */
int durable_close(struct master *m);

/* ---- shared.c: the master on a shared store (PostgreSQL) ---- */

/* Opens it (opts.pg_conninfo) with c's groups, as m->shared; logs what fails. */
int shared_open(struct master *m, const struct config *c, struct store **ret);
/* Each pool's room, told to the shared queue (every loop pass). */
void shared_want(struct master *m);
/* The flush that will carry what is changed now (what a reply waits for). */
uint64_t shared_next_flush(const struct master *m);
/* Something is not committed yet. */
bool shared_flush_pending(const struct master *m);
/* Jobs claimed for this node and not started: back to the shared queue (a stop). */
void shared_release_queued(struct master *m);

/* ---- reap.c ---- */

/* Its pidfd is readable: reap it (or try again while a tracer holds it), then death_reaped(). */
int reap_on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* ---- reload.c ---- */

void pool_roll_next(struct pool *p);
void pool_trim_slots(struct pool *p);
int reload_on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata);

/* ---- api.c ---- */

int master_add_group(struct master *m, const struct group_config *gc, unsigned *ret_index);

