/* SPDX-License-Identifier: MIT */
/*
 * The master's event loop (see master.h).
 *
 * Each pool has `workers` slots. A slot goes EMPTY -> STARTING (spawned, waiting for HELLO)
 * -> READY (takes jobs) -> DRAINING (a job timed out: no new jobs, SIGKILL after kill_grace)
 * or STOPPING (STOP sent) -> KILLED (SIGKILL sent) -> EMPTY when the pidfd says it exited.
 * Every transition to EMPTY goes through worker_died(), the one place that applies the blame
 * rules (ledger_worker_died) and the restart policy (policy.h). A restart is always a timer,
 * even an immediate one, so nothing recurses and a broken worker cannot spin the loop.
 *
 * Which jobs are running: workers start jobs strictly in the order they were assigned, so
 * with T threads the first T unfinished jobs of a worker are the running ones. The master
 * keeps them in `slots` (with their start time, for timeouts) and the rest, assigned but not
 * started, in a FIFO. A DONE frees a slot and starts the head of the FIFO.
 *
 * Jobs with an input get an INPUT frame right before the ASSIGN that names them; once an
 * INPUT went out, that ASSIGN is sent even if the socket is full (held until it has room),
 * so a worker never keeps an input for a job it is not given. Jobs without one cost one
 * branch. exec: jobs report their command's pid (EXEC): the master kills that process group,
 * not the worker, when the job times out, and kills every such group of a worker that dies.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/idmap.h"
#include "common/log.h"
#include "common/protocol.h"
#include "config/probe.h"
#include "daemon/master.h"
#include "daemon/notify.h"
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
#define SLOT_EXEC_KILLED (1u << 6) /* slot flag: its command's group was killed (timeout) */

enum worker_state {
	W_EMPTY,
	W_STARTING,
	W_READY,
	W_DRAINING,
	W_STOPPING,
	W_KILLED,
};

/*
 * Why the master killed a worker. Its death is judged by this: only a worker's own death is a
 * worker fault (DESIGN §11), never the master's kill for a timeout, a stop or an injection.
 */
enum kill_why {
	KILL_NONE,    /* the master did not kill it: it died by itself */
	KILL_BROKEN,  /* it broke the protocol or never said HELLO: its own fault */
	KILL_TIMEOUT, /* a job timed out: that job's fault, nobody's if it ended meanwhile */
	KILL_STOP,    /* asked to stop and too slow, or the run is ending: nobody's fault */
	KILL_INJECT,  /* bulkhead inject kill */
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
	unsigned index;
	enum worker_state state;
	pid_t pid; /* 0 when there is no process */
	int fd;
	sd_event_source *io;
	sd_event_source *child;
	sd_event_source *timer;    /* restart, HELLO deadline, kill grace, stop deadline */
	sd_event_source *deadline; /* earliest job timeout */
	usec_t deadline_at;
	usec_t spawned_at;
	unsigned spawns;
	unsigned threads; /* of the running process (the pool's may change on reload) */
	bool retire;      /* a reload removed this slot: no restart */
	bool outdated;    /* a reload changed threads/memory: replace it */
	struct backoff backoff;

	struct job **slots; /* running jobs, `threads` entries */
	uint8_t *slot_flags;
	uint16_t *free_slots;
	unsigned n_free;
	unsigned n_running;
	struct job *pend_head; /* assigned, not started yet: FIFO */
	struct job *pend_tail;
	unsigned n_pending;
	unsigned n_timed_out;

	bool got_hello;
	bool stop_sent; /* STOP sent: its jobs were told to stop (cancelled(), SIGTERM) */
	bool term_sent; /* the stop deadline passed: SIGTERM sent, SIGKILL next */
	char last_death[48]; /* "SIGSEGV", "exit(3)", "" if it never died */
	const char *injected; /* the fault `bulkhead inject` gave it, NULL if none */
	bool solo;     /* holds one job that must run alone */
	bool reserved; /* takes no new jobs so that it can run the next suspect alone */
	bool blocked;  /* socket full: wait for EPOLLOUT */
	usec_t resource_delay; /* the master lacked fds or memory to start it: next retry */
	struct idmap specs;    /* specs it knows (see "specs on workers") */
	bool forgets_pending;  /* a FORGET found the socket full */
	bool crash_frame;
	struct bh_crash crash;
	enum kill_why killed; /* why the master sent SIGKILL (KILL_NONE: it did not) */
	const char *kill_reason;

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
};

struct master {
	struct config *config; /* owned; replaced by a reload */
	struct master_options opts;
	struct notifier *notifier; /* daemon mode only */
	bool ready_sent;
	sd_event *event;
	struct ledger *ledger;
	struct pool **pools; /* index = pool index in the ledger; never shrinks */
	unsigned n_pools;
	const char *worker_path;
	struct zygote zygote; /* the fork server, if worker_start = fork-server */
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
	sd_event_source *reload_event; /* a SIGHUP storm is one reload */
	usec_t last_reload;
	unsigned interrupts;
	struct master_stats stats;
	uint8_t buf[BH_FRAME_MAX];
	uint8_t ibuf[BH_INPUT_MAX + 64]; /* one INPUT frame */
};

static void worker_died(struct worker *w, int code, int status);
static void check_ready(struct master *m);
static void dispatch_pool(struct pool *p);
static void pool_roll_next(struct pool *p);
static void pool_trim_slots(struct pool *p);
static void worker_free(struct worker *w);
static int pool_grow_slots(struct pool *p, unsigned n);
static int pool_new(struct master *m, const struct pool_config *pc, unsigned index,
		    struct pool **ret);
static int worker_size_slots(struct worker *w, unsigned threads);
static void fill(struct worker *w);
static void worker_resume(struct worker *w);
static void check_done(struct master *m);
static void master_begin_stop(struct master *m, enum job_cause cause);

static unsigned inflight(const struct worker *w)
{
	return w->n_running + w->n_pending;
}

/*
 * How many jobs a worker may hold (running + queued in it). Enough queued work to keep its
 * threads busy for about QUEUE_TARGET while the master refills it, and no more: a worker
 * that dies sends its unstarted jobs back (cheap, they are not re-run), but jobs parked in
 * one worker cannot go to an idle one. Until the pool has seen a result the job time is
 * unknown (they may be long), so it starts at 2 per thread. The target is twice the time a
 * worker may hold results back (BH_RESULT_HOLD_USEC): the refill it triggers arrives while
 * the other half is still being worked off.
 */
#define QUEUE_TARGET (2 * BH_RESULT_HOLD_USEC)
#define WINDOW_PER_THREAD_MIN 2u

static unsigned window(const struct worker *w)
{
	uint64_t per_thread = WINDOW_PER_THREAD_MIN, est = w->pool->run_est;

	if (est > 0)
		per_thread = (QUEUE_TARGET * 16 + est - 1) / est;
	if (per_thread < WINDOW_PER_THREAD_MIN)
		per_thread = WINDOW_PER_THREAD_MIN;
	if (per_thread * w->threads > BH_ASSIGN_MAX)
		return BH_ASSIGN_MAX;
	return (unsigned)per_thread * w->threads;
}

/* Folds a DONE frame's mean run time (sum over n jobs) into the pool's estimate. */
static void learn_run_time(struct pool *p, uint64_t sum_usec, uint32_t n)
{
	uint64_t mean = sum_usec * 16 / n;

	if (mean == 0)
		mean = 1; /* below 1/16 us: as fast as it gets */
	if (p->run_est == 0)
		p->run_est = mean;
	else if (mean > p->run_est) /* adapt to slower jobs at once: do not hoard */
		p->run_est = mean;
	else
		p->run_est -= (p->run_est - mean) / 4;
}

static const char *wlabel(const struct worker *w, char *buf, size_t size)
{
	if (w->pid > 0)
		snprintf(buf, size, "%s/%u[%d]", w->pool->cfg.name, w->index, (int)w->pid);
	else
		snprintf(buf, size, "%s/%u", w->pool->cfg.name, w->index);
	return buf;
}

static int arm_timer(struct master *m, sd_event_source **s, usec_t when,
		     sd_event_time_handler_t cb, void *userdata)
{
	int r;

	if (!*s)
		return sd_event_add_time(m->event, s, CLOCK_MONOTONIC, when, TIMER_ACCURACY, cb,
					 userdata);
	r = sd_event_source_set_time(*s, when);
	if (r < 0)
		return r;
	return sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
}

static void disarm(sd_event_source *s)
{
	if (s)
		sd_event_source_set_enabled(s, SD_EVENT_OFF);
}

/* Journal fields for one log line (see log_fields). */
struct lfields {
	char pool[48], worker[64], job[96], sig[32], cause[96];
	const char *v[6];
};

static const char *const *lfields(struct lfields *f, const struct pool *p, const struct worker *w,
				  const struct job *j, int signo, const char *cause)
{
	int n = 0;

	if (p) {
		snprintf(f->pool, sizeof(f->pool), "POOL=%s", p->cfg.name);
		f->v[n++] = f->pool;
	}
	if (w) {
		snprintf(f->worker, sizeof(f->worker), "WORKER=%s/%u", w->pool->cfg.name, w->index);
		f->v[n++] = f->worker;
	}
	if (j) {
		char name[64];

		snprintf(f->job, sizeof(f->job), "JOB=%s",
			 ledger_job_name(p->m->ledger, j, name, sizeof(name)));
		f->v[n++] = f->job;
	}
	if (signo > 0) {
		char sig[16];

		snprintf(f->sig, sizeof(f->sig), "SIGNAL=%s", signal_name(signo, sig, sizeof(sig)));
		f->v[n++] = f->sig;
	}
	if (cause && *cause) {
		snprintf(f->cause, sizeof(f->cause), "CAUSE=%s", cause);
		f->v[n++] = f->cause;
	}
	f->v[n] = NULL;
	return f->v;
}

/* ---- sending ---- */

static int worker_send(struct worker *w, const void *buf, size_t len)
{
	if (send(w->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

static void worker_kill(struct worker *w, enum kill_why why, const char *reason)
{
	char l[64];

	if (w->pid <= 0 || w->state == W_KILLED)
		return;
	w->killed = why;
	if (reason) {
		w->kill_reason = reason;
		log_warning("worker %s: %s: killing it", wlabel(w, l, sizeof(l)), reason);
	}
	kill(w->pid, SIGKILL);
	w->state = W_KILLED;
	disarm(w->timer);
	disarm(w->deadline);
}

static int on_state_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void worker_stop(struct worker *w, usec_t grace)
{
	uint8_t buf[16];
	size_t len = bh_encode_stop(buf, sizeof(buf));

	/* A draining worker is already on its way out, after kill_grace: keep that deadline. */
	if (w->pid <= 0 || w->state >= W_DRAINING)
		return;
	/* An ASSIGN still held back never goes: its jobs are re-queued when the worker exits. */
	free(w->held);
	w->held = NULL;
	if (w->state == W_STARTING || worker_send(w, buf, len) < 0) {
		w->stop_sent = true; /* it was being stopped: its death is nobody's fault */
		worker_kill(w, KILL_STOP, NULL);
		return;
	}
	w->state = W_STOPPING;
	w->stop_sent = true;
	arm_timer(w->m, &w->timer, now_usec() + grace, on_state_timer, w);
}

/* ---- in-flight tracking ---- */

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata);

static void track_start(struct worker *w, struct job *j, usec_t now)
{
	usec_t timeout = ledger_group(w->m->ledger, j->group)->timeout;
	uint16_t slot = w->free_slots[--w->n_free];

	w->slots[slot] = j;
	w->slot_flags[slot] = 0;
	j->wslot = slot;
	j->started_at = now ? now : 1;
	w->n_running++;
	ledger_started(w->m->ledger, j);
	/* A result may be held back BH_RESULT_HOLD_USEC: a deadline allows for that. */
	if (timeout != USEC_INFINITY && now + timeout + BH_RESULT_HOLD_USEC < w->deadline_at) {
		w->deadline_at = now + timeout + BH_RESULT_HOLD_USEC;
		arm_timer(w->m, &w->deadline, w->deadline_at, on_deadline, w);
	}
}

/* held: the ASSIGN is not sent yet, so none of its jobs can have started. */
static void track_assign(struct worker *w, struct job *j, usec_t now, bool held)
{
	j->worker = w;
	j->started_at = 0;
	j->wnext = NULL;
	if (!held && w->n_running < w->threads) {
		track_start(w, j, now);
		return;
	}
	if (w->pend_tail)
		w->pend_tail->wnext = j;
	else
		w->pend_head = j;
	w->pend_tail = j;
	w->n_pending++;
}

static void untrack(struct worker *w, struct job *j)
{
	if (j->started_at) {
		if (w->slot_flags[j->wslot] & HELD_TIMED_OUT)
			w->n_timed_out--;
		w->slots[j->wslot] = NULL;
		w->free_slots[w->n_free++] = j->wslot;
		w->n_running--;
	} else {
		struct job **pp = &w->pend_head, *prev = NULL;

		while (*pp && *pp != j) {
			prev = *pp;
			pp = &(*pp)->wnext;
		}
		if (*pp) {
			*pp = j->wnext;
			if (w->pend_tail == j)
				w->pend_tail = prev;
			w->n_pending--;
		}
	}
	j->worker = NULL;
	j->wnext = NULL;
}

static void promote_pending(struct worker *w, usec_t now)
{
	while (w->pend_head && w->n_running < w->threads && w->n_pending > w->n_held) {
		struct job *j = w->pend_head;

		w->pend_head = j->wnext;
		if (!w->pend_head)
			w->pend_tail = NULL;
		w->n_pending--;
		j->wnext = NULL;
		track_start(w, j, now);
	}
}

/*
 * ---- specs on workers ----
 *
 * A worker learns a group's spec (SPEC) right before the first ASSIGN that names it, so it
 * holds only the specs of jobs it was given. For a submitted group (JOB_ADHOC) the master
 * counts that worker's jobs of it in flight (w->specs: spec id -> count | SPEC_ADHOC); when
 * the count drops to 0 the worker is told to FORGET it. A config's groups stay defined.
 * Spec ids are never reused (ledger_group_spec_id), so a FORGET that could not be sent yet
 * (socket full: w->forgets_pending, retried) never confuses a later group.
 */
#define SPEC_ADHOC (1ull << 63)

/*
 * Makes sure w knows job j's spec before j is assigned to it: 0, -EAGAIN (the socket is
 * full: assign j later), or another -errno (j cannot go to w).
 */
static int spec_ensure(struct worker *w, const struct job *j)
{
	struct ledger *l = w->m->ledger;
	uint32_t id = ledger_group_spec_id(l, j->group);
	const struct group_config *gc;
	uint8_t buf[BH_FRAME_MAX];
	size_t len;
	int r;

	if (idmap_find(&w->specs, id))
		return 0;
	gc = ledger_group(l, j->group);
	len = bh_encode_spec(buf, sizeof(buf),
			     &(struct bh_spec){ .id = id, .run = gc->run, .args = gc->args,
						.name = gc->name, .output = gc->output });
	if (len == 0) { /* a spec the config checks should have refused */
		worker_kill(w, KILL_BROKEN, "a job spec does not fit in a frame");
		return -EINVAL;
	}
	/* EAGAIN: later; EPIPE and the like: it is dying, its exit is on its way. */
	r = worker_send(w, buf, len);
	if (r == 0)
		r = idmap_add(&w->specs, id, j->flags & JOB_ADHOC ? SPEC_ADHOC : 0);
	return r;
}

/* A job of a submitted group was assigned to w / came back from it. */
static void spec_hold(struct worker *w, const struct job *j)
{
	struct idmap_entry *e;

	if (!(j->flags & JOB_ADHOC))
		return;
	e = idmap_find(&w->specs, ledger_group_spec_id(w->m->ledger, j->group));
	if (e)
		e->value++;
}

static bool send_forget(struct worker *w, uint32_t id)
{
	uint8_t buf[32];

	if (worker_send(w, buf, bh_encode_forget(buf, sizeof(buf), id)) < 0) {
		w->forgets_pending = true;
		return false;
	}
	idmap_del(&w->specs, id);
	return true;
}

static void spec_release(struct worker *w, const struct job *j)
{
	uint32_t id;
	struct idmap_entry *e;

	if (!(j->flags & JOB_ADHOC))
		return;
	id = ledger_group_spec_id(w->m->ledger, j->group);
	e = idmap_find(&w->specs, id);
	if (e && e->value > SPEC_ADHOC && --e->value == SPEC_ADHOC && !w->stop_sent)
		send_forget(w, id);
}

/* Sends the FORGETs that found the socket full. */
static void flush_forgets(struct worker *w)
{
	if (!w->forgets_pending || w->stop_sent || w->state == W_KILLED)
		return;
	w->forgets_pending = false;
again:
	for (uint32_t i = 0; i < w->specs.cap; i++) {
		const struct idmap_entry *e = &w->specs.e[i];

		if (e->id == 0 || e->value != SPEC_ADHOC)
			continue;
		if (!send_forget(w, e->id))
			return; /* still full: pending again */
		goto again; /* the table changed under us */
	}
}

/* ---- dispatch ---- */

static bool pool_has_reserved(const struct pool *p)
{
	for (unsigned i = 0; i < p->n_slots; i++)
		if (p->workers[i]->reserved)
			return true;
	return false;
}

static void worker_block(struct worker *w)
{
	w->blocked = true;
	sd_event_source_set_io_events(w->io, EPOLLIN | EPOLLOUT);
}

/* Sends the job's INPUT frame (the job has one). */
static int send_input(struct worker *w, const struct job *j)
{
	const char *input = ledger_job_input(w->m->ledger, j);
	size_t len;

	if (!input)
		return -EINVAL;
	len = bh_encode_input(w->m->ibuf, sizeof(w->m->ibuf), j->id, input);
	if (len == 0)
		return -EINVAL;
	return worker_send(w, w->m->ibuf, len);
}

/* Keeps an ASSIGN frame (whose INPUT frames went out) to send once the socket has room. */
static int hold_frame(struct worker *w, const void *buf, size_t len)
{
	w->held = malloc(len);
	if (!w->held)
		return -ENOMEM;
	memcpy(w->held, buf, len);
	w->held_len = len;
	worker_block(w);
	return 0;
}

static void assign(struct worker *w, bool alone, unsigned max)
{
	struct master *m = w->m;
	struct job *jobs[BH_ASSIGN_MAX];
	struct bh_batch b;
	unsigned n = 0, inputs = 0;
	int input_err = 0;
	size_t len;
	usec_t now;
	int r;

	bh_batch_init(&b, m->buf, sizeof(m->buf), BH_FRAME_ASSIGN);
	while (n < max && n < BH_ASSIGN_MAX) {
		struct job *j = ledger_pop(m->ledger, w->pool->index, alone);
		uint32_t flags = 0;

		if (!j)
			break;
		input_err = spec_ensure(w, j);
		if (input_err < 0) {
			ledger_unpop(m->ledger, j);
			break;
		}
		if (__builtin_expect(j->flags & JOB_HAS_INPUT, 0)) {
			input_err = send_input(w, j);
			if (input_err < 0) {
				ledger_unpop(m->ledger, j);
				break;
			}
			flags = BH_ASSIGN_INPUT;
			inputs++;
		}
		bh_batch_add_assign(&b, j->id, ledger_group_spec_id(m->ledger, j->group), flags);
		jobs[n++] = j;
	}
	len = bh_batch_finish(&b);
	if (input_err == -EAGAIN)
		worker_block(w); /* what went out is assigned below; the rest waits for room */
	if (n == 0)
		return;
	r = worker_send(w, m->buf, len);
	if (r < 0 && (inputs == 0 || r != -EAGAIN || hold_frame(w, m->buf, len) < 0)) {
		while (n > 0)
			ledger_unpop(m->ledger, jobs[--n]);
		if (r == -EAGAIN)
			worker_block(w);
		return;
	}
	now = now_usec();
	for (unsigned i = 0; i < n; i++) {
		ledger_assign(m->ledger, jobs[i]);
		track_assign(w, jobs[i], now, r < 0);
		spec_hold(w, jobs[i]);
	}
	if (r < 0)
		w->n_held = n;
	if (alone)
		w->solo = true;
}

static void fill(struct worker *w)
{
	struct ledger *l = w->m->ledger;
	unsigned pool = w->pool->index, win;

	if (w->state != W_READY || w->blocked || w->solo || w->injected || w->m->stopping)
		return;
	if (ledger_queued(l, pool, true) > 0) {
		if (inflight(w) == 0) {
			w->reserved = false;
			assign(w, true, 1);
			return;
		}
		if (!w->reserved && !pool_has_reserved(w->pool))
			w->reserved = true;
		if (w->reserved)
			return;
	} else {
		w->reserved = false;
	}
	/*
	 * Top up once a quarter of the window is free, not after every result: one ASSIGN
	 * frame then carries many jobs (with a window of a few jobs, after every one).
	 */
	win = window(w);
	if (inflight(w) + (win + 3) / 4 <= win && ledger_queued(l, pool, false) > 0)
		assign(w, false, win - inflight(w));
}

static void dispatch_pool(struct pool *p)
{
	for (unsigned i = 0; i < p->n_slots; i++)
		fill(p->workers[i]);
}

/* ---- frames from a worker ---- */

static int handle_hello(struct worker *w, const struct bh_frame *f)
{
	char l[64];

	if (w->state != W_STARTING)
		return -EPROTO;
	if (f->hello.pid != w->pid || f->hello.threads != w->threads)
		return -EPROTO;
	w->got_hello = true;
	w->state = W_READY;
	w->m->stats.workers_up++;
	disarm(w->timer);
	log_debug("worker %s ready", wlabel(w, l, sizeof(l)));
	if (w->m->opts.on_worker_ready)
		w->m->opts.on_worker_ready(w->m->opts.userdata, w->pool->index, w->index, w->pid,
					   now_usec());
	fill(w);
	pool_roll_next(w->pool);
	check_ready(w->m);
	return 0;
}

static void log_final(struct master *m, struct job *j)
{
	char name[64], cause[64];

	struct lfields f;

	if (j->state != JOB_CRASHED && j->state != JOB_TIMED_OUT && j->state != JOB_FAILED)
		return;
	ledger_cause_string(j, cause, sizeof(cause));
	log_fields(LOG_NOTICE,
		   lfields(&f, m->pools[ledger_group(m->ledger, j->group)->pool], NULL, j,
			   j->cause == CAUSE_SIGNAL ? j->cause_detail : 0, cause),
		   "job %s %s after %u attempt%s: %s",
		   ledger_job_name(m->ledger, j, name, sizeof(name)),
		   j->state == JOB_FAILED ? "failed" : "quarantined", j->attempts,
		   j->attempts == 1 ? "" : "s", cause);
}

/* The exec record of job j on w, or NULL. */
static struct exec_run *exec_find(struct worker *w, const struct job *j)
{
	for (unsigned i = 0; i < w->n_execs; i++)
		if (w->execs[i].job == j)
			return &w->execs[i];
	return NULL;
}

static void exec_forget(struct worker *w, struct exec_run *x)
{
	*x = w->execs[--w->n_execs];
}

/* Kills the process group of every command the worker's jobs started (it died or is dying). */
static void kill_commands(struct worker *w)
{
	for (unsigned i = 0; i < w->n_execs; i++)
		kill(-w->execs[i].pid, SIGKILL);
	w->n_execs = 0;
}

/*
 * A job that did not end done after its worker was told to stop (which tells every job to
 * stop: cancelled() is true, commands get SIGTERM): not its fault. At the end of the run or
 * of its pool it ends like the jobs still queued; else (a worker replaced) it runs again.
 */
static void finish_stopped(struct worker *w, struct job *j)
{
	struct master *m = w->m;
	struct pool *p = w->pool;

	if (!m->stopping && p->state == POOL_UP)
		ledger_bystander(m->ledger, j, true);
	else if (j->flags & JOB_CANCEL_REQUESTED)
		ledger_cancel(m->ledger, j, CAUSE_CANCELLED);
	else
		ledger_cancel(m->ledger, j,
			      p->state == POOL_FAILED	 ? CAUSE_POOL_FAILED
			      : p->state == POOL_REMOVED ? CAUSE_POOL_REMOVED
							 : CAUSE_STOPPED);
}

/*
 * A DONE entry that is not a plain return, or of a worker running commands or told to stop:
 * an exec: job's command was killed by a signal (blamed on the job; the worker lives on),
 * could not start, or returned. Called after untrack().
 */
static int finish_special(struct worker *w, struct job *j, const struct bh_done_entry *e,
			  bool killed)
{
	struct master *m = w->m;
	const struct group_config *gc = ledger_group(m->ledger, j->group);
	char name[64], sig[16];
	struct lfields f;

	if (e->outcome == BH_OUTCOME_CANCELLED) {
		/* Never started (handle_done() checked we asked for it): no attempt counted. */
		ledger_cancel(m->ledger, j, CAUSE_CANCELLED);
		return 0;
	}
	if (e->outcome != BH_OUTCOME_RETURNED && gc->kind != JOB_KIND_EXEC)
		return -EPROTO;
	if (w->stop_sent && (e->outcome != BH_OUTCOME_RETURNED || e->status != 0)) {
		finish_stopped(w, j);
		return 0;
	}
	switch (e->outcome) {
	case BH_OUTCOME_RETURNED:
		ledger_finish(m->ledger, j, e->status);
		break;
	case BH_OUTCOME_SIGNALED:
		if (j->flags & JOB_CANCEL_REQUESTED) {
			ledger_cancel(m->ledger, j, CAUSE_CANCELLED);
			break;
		}
		if (killed)
			ledger_blame_command(m->ledger, j, CAUSE_TIMEOUT, 0);
		else
			ledger_blame_command(m->ledger, j, CAUSE_SIGNAL, e->status);
		if (j->state == JOB_QUEUED)
			log_fields(LOG_WARNING,
				   lfields(&f, w->pool, w, j, killed ? 0 : e->status,
					   killed ? "timeout" : NULL),
				   "job %s: its command was killed %s%s (attempt %u of %u); the "
				   "worker lives on",
				   ledger_job_name(m->ledger, j, name, sizeof(name)),
				   killed ? "for its timeout" : "by ",
				   killed ? "" : signal_name(e->status, sig, sizeof(sig)),
				   j->attempts, gc->max_attempts);
		break;
	case BH_OUTCOME_SPAWN_FAILED:
		ledger_spawn_failed(m->ledger, j, e->status);
		if (j->state == JOB_QUEUED)
			log_fields(LOG_WARNING, lfields(&f, w->pool, w, j, 0, "spawn failed"),
				   "job %s: its command could not start: %s (attempt %u of %u)",
				   ledger_job_name(m->ledger, j, name, sizeof(name)),
				   strerror(e->status), j->attempts, gc->max_attempts);
		break;
	default:
		return -EPROTO;
	}
	return 0;
}

static int handle_done(struct worker *w, const struct bh_frame *f)
{
	struct master *m = w->m;
	usec_t now = now_usec();
	uint64_t run_sum = 0;

	if (w->state < W_READY)
		return -EPROTO;
	for (uint32_t i = 0; i < f->done.count; i++) {
		struct bh_done_entry e;
		struct job *j;

		bh_frame_done_entry(f, i, &e);
		j = ledger_job(m->ledger, e.job_id);
		if (!j || j->worker != w || j->state != JOB_RUNNING ||
		    (e.outcome == BH_OUTCOME_CANCELLED && !(j->flags & JOB_CANCEL_REQUESTED)))
			return -EPROTO;
		run_sum += e.run_usec;
		if (__builtin_expect(e.outcome | w->n_execs | w->stop_sent, 0)) {
			struct exec_run *x = exec_find(w, j);
			bool killed = j->started_at && (w->slot_flags[j->wslot] & SLOT_EXEC_KILLED);
			int r;

			if (x)
				exec_forget(w, x);
			untrack(w, j);
			r = finish_special(w, j, &e, killed);
			if (r < 0)
				return r;
		} else {
			untrack(w, j);
			ledger_finish(m->ledger, j, e.status);
		}
		spec_release(w, j);
		log_final(m, j);
		promote_pending(w, now);
	}
	flush_forgets(w);
	learn_run_time(w->pool, run_sum, f->done.count);
	if (inflight(w) == 0)
		w->solo = false;
	if (w->state == W_DRAINING && !w->injected && !w->stop_sent && w->n_timed_out == 0)
		worker_resume(w); /* the jobs that timed out ended after all */
	if (w->state == W_DRAINING && inflight(w) == w->n_timed_out)
		worker_kill(w, KILL_TIMEOUT, NULL);
	else
		fill(w);
	return 0;
}

/*
 * A draining worker whose timed-out jobs all sent their results after all (late, but they
 * ended): it is healthy, so it takes jobs again instead of being killed at the end of
 * kill_grace. Killing it then would re-run its other jobs for nothing.
 */
static void worker_resume(struct worker *w)
{
	char l[64];

	w->state = W_READY;
	disarm(w->timer);
	log_info("worker %s: the job that timed out ended after all; it takes jobs again",
		 wlabel(w, l, sizeof(l)));
}

/* The job a RESULT, PROGRESS or EXEC frame names: in flight on this worker, else NULL. */
static struct job *job_in_flight(struct worker *w, uint64_t id)
{
	struct job *j = ledger_job(w->m->ledger, id);

	if (w->state < W_READY || !j || j->worker != w || j->state != JOB_RUNNING)
		return NULL;
	return j;
}

/* The parent and the process group of pid, from /proc/PID/stat. */
static bool proc_ids(pid_t pid, int *ret_ppid, int *ret_pgrp)
{
	char path[64], buf[512], *p;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold anything */
	return p && sscanf(p + 1, " %*c %d %d", ret_ppid, ret_pgrp) == 2;
}

/*
 * True if pid is a process group leader whose parent is the worker's exec: trampoline (a
 * group leader whose parent is the worker, children/exec.c), or the worker: the only
 * processes an EXEC frame may make us kill. (A worker is not trusted with kill(-pid) on
 * anything else.)
 */
static bool is_command_of(pid_t pid, pid_t worker)
{
	int ppid, pgrp, tppid, tpgrp;

	if (!proc_ids(pid, &ppid, &pgrp) || pgrp != pid)
		return false;
	return ppid == worker ||
	       (proc_ids(ppid, &tppid, &tpgrp) && tppid == worker && tpgrp == ppid);
}

static int handle_exec(struct worker *w, const struct bh_frame *f)
{
	struct job *j = job_in_flight(w, f->exec.job_id);
	struct exec_run *x;

	if (!j || ledger_group(w->m->ledger, j->group)->kind != JOB_KIND_EXEC || exec_find(w, j))
		return -EPROTO;
	/*
	 * A command that already ended (and was reaped) is not there to kill: nothing to keep.
	 * Else it cannot be reaped before the job's DONE, so its pid stays its own until then.
	 */
	if (!is_command_of(f->exec.pid, w->pid))
		return 0;
	if (w->n_execs == w->cap_execs) {
		unsigned cap = w->cap_execs ? w->cap_execs * 2 : 4;

		x = realloc(w->execs, cap * sizeof(*x));
		if (!x)
			return 0; /* not killed by us on a timeout: the worker is, as before */
		w->execs = x;
		w->cap_execs = cap;
	}
	w->execs[w->n_execs++] = (struct exec_run){ .job = j, .pid = f->exec.pid };
	return 0;
}

static int handle_frame(struct worker *w, const void *buf, size_t len)
{
	struct bh_frame f;
	int r = bh_frame_decode(buf, len, &f);

	if (r < 0)
		return r;
	if (!bh_frame_from_worker(f.type))
		return -EPROTO;
	switch (f.type) {
	case BH_FRAME_HELLO:
		return handle_hello(w, &f);
	case BH_FRAME_DONE:
		return handle_done(w, &f);
	case BH_FRAME_CRASH:
		if (!w->crash_frame) {
			w->crash_frame = true;
			w->crash = f.crash;
		}
		return 0;
	case BH_FRAME_RESULT: {
		struct job *j = job_in_flight(w, f.text.job_id);

		if (!j)
			return -EPROTO;
		ledger_set_result(w->m->ledger, j, f.text.text, f.text.len);
		return 0;
	}
	case BH_FRAME_PROGRESS: {
		struct job *j = job_in_flight(w, f.progress.job_id);

		if (!j)
			return -EPROTO;
		ledger_set_progress(w->m->ledger, j, f.progress.permille);
		return 0;
	}
	case BH_FRAME_EXEC:
		return handle_exec(w, &f);
	default:
		return -EPROTO;
	}
}

/* Reads every pending frame. Returns false once the socket is at EOF or the worker is bad. */
static bool drain_frames(struct worker *w)
{
	for (;;) {
		ssize_t n = recv(w->fd, w->m->buf, sizeof(w->m->buf), MSG_DONTWAIT | MSG_TRUNC);
		int r;

		if (n < 0 && (errno == EINTR || errno == ECONNRESET))
			continue; /* a dead peer's last frames wait behind one ECONNRESET */
		if (n < 0)
			return errno == EAGAIN;
		if (n == 0)
			return false;
		if ((size_t)n > sizeof(w->m->buf))
			r = -EMSGSIZE;
		else
			r = handle_frame(w, w->m->buf, (size_t)n);
		if (r < 0) {
			char reason[96];

			snprintf(reason, sizeof(reason), "bad frame (%s)", strerror(-r));
			worker_kill(w, KILL_BROKEN, reason);
			return false;
		}
		if (w->state == W_KILLED)
			return false;
	}
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct worker *w = userdata;

	if (revents & EPOLLOUT) {
		int r = w->held ? worker_send(w, w->held, w->held_len) : 0;

		if (r != -EAGAIN) {
			bool sent = w->held && r >= 0;

			free(w->held);
			w->held = NULL;
			w->n_held = 0;
			w->blocked = false;
			sd_event_source_set_io_events(s, EPOLLIN);
			if (sent)
				promote_pending(w, now_usec()); /* its jobs reach the threads now */
			flush_forgets(w);
			fill(w);
		}
	}
	if ((revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !drain_frames(w))
		sd_event_source_set_enabled(s, SD_EVENT_OFF); /* the exit follows */
	check_done(w->m);
	return 0;
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata)
{
	struct worker *w = userdata;

	/* Results and a CRASH frame sent before the death are still in the socket. */
	if (w->state != W_KILLED || !w->kill_reason)
		drain_frames(w);
	worker_died(w, si->si_code, si->si_status);
	return 0;
}

/* ---- timers ---- */

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct worker *w = userdata;
	struct master *m = w->m;
	usec_t now = now_usec(), next = USEC_INFINITY;
	unsigned newly = 0;
	char l[64], name[64], d[FORMAT_DURATION_MAX];
	struct lfields f;

	if (w->injected)
		return 0; /* its death is on its way; no job is to blame for it */

	for (unsigned i = 0; i < w->threads; i++) {
		struct job *j = w->slots[i];
		struct exec_run *x;
		usec_t timeout, at;

		if (!j || (w->slot_flags[i] & HELD_TIMED_OUT))
			continue;
		timeout = ledger_group(m->ledger, j->group)->timeout;
		if (timeout == USEC_INFINITY)
			continue;
		at = j->started_at + timeout + BH_RESULT_HOLD_USEC;
		/* A killed command whose DONE does not come within kill_grace: as below. */
		if (w->slot_flags[i] & SLOT_EXEC_KILLED)
			at += w->pool->cfg.kill_grace;
		if (at > now) {
			if (at < next)
				next = at;
			continue;
		}
		x = w->n_execs && !(w->slot_flags[i] & SLOT_EXEC_KILLED) ? exec_find(w, j) : NULL;
		if (x) {
			/* An exec: job: its command's process group goes, the worker stays. */
			kill(-x->pid, SIGKILL);
			w->slot_flags[i] |= SLOT_EXEC_KILLED;
			at += w->pool->cfg.kill_grace;
			if (at < next)
				next = at;
			log_fields(LOG_WARNING, lfields(&f, w->pool, w, j, 0, "timeout"),
				   "job %s timed out after %s on worker %s: killing its command "
				   "(process group %d)",
				   ledger_job_name(m->ledger, j, name, sizeof(name)),
				   format_duration(d, sizeof(d), timeout), wlabel(w, l, sizeof(l)),
				   (int)x->pid);
			continue;
		}
		w->slot_flags[i] |= HELD_TIMED_OUT;
		w->n_timed_out++;
		newly++;
		log_fields(LOG_WARNING, lfields(&f, w->pool, w, j, 0, "timeout"),
			   "job %s timed out after %s on worker %s",
			   ledger_job_name(m->ledger, j, name, sizeof(name)),
			   format_duration(d, sizeof(d), timeout), wlabel(w, l, sizeof(l)));
	}
	w->deadline_at = next;
	if (next != USEC_INFINITY)
		arm_timer(m, &w->deadline, next, on_deadline, w);
	if (newly && (w->state == W_READY || w->state == W_STOPPING)) {
		w->state = W_DRAINING;
		if (inflight(w) == w->n_timed_out) {
			worker_kill(w, KILL_TIMEOUT, NULL);
		} else {
			log_info("worker %s takes no new jobs; killing it in %s unless its %u other "
				 "job%s finish first",
				 wlabel(w, l, sizeof(l)),
				 format_duration(d, sizeof(d), w->pool->cfg.kill_grace),
				 inflight(w) - w->n_timed_out,
				 inflight(w) - w->n_timed_out == 1 ? "" : "s");
			arm_timer(m, &w->timer, now + w->pool->cfg.kill_grace, on_state_timer, w);
		}
	}
	return 0;
}

static void worker_spawn(struct worker *w);

static int on_state_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct worker *w = userdata;

	switch (w->state) {
	case W_EMPTY:
		worker_spawn(w);
		break;
	case W_STARTING:
		worker_kill(w, KILL_BROKEN, "no HELLO in time");
		break;
	case W_DRAINING:
		worker_kill(w, w->injected ? KILL_INJECT : KILL_TIMEOUT, NULL);
		break;
	case W_STOPPING:
		/* The stop deadline passed: SIGTERM first, SIGKILL TERM_GRACE later. */
		if (!w->term_sent) {
			char l[64];

			w->term_sent = true;
			log_notice("worker %s did not stop in time: SIGTERM, then SIGKILL in 1s",
				   wlabel(w, l, sizeof(l)));
			kill(w->pid, SIGTERM);
			arm_timer(w->m, &w->timer, now_usec() + TERM_GRACE, on_state_timer, w);
		} else {
			worker_kill(w, KILL_STOP, NULL);
		}
		break;
	default:
		break;
	}
	return 0;
}

/* ---- life and death ---- */

static void pool_fail(struct pool *p)
{
	struct master *m = p->m;
	uint64_t n;
	char d[FORMAT_DURATION_MAX];
	struct lfields f;

	if (p->state == POOL_FAILED)
		return;
	p->state = POOL_FAILED;
	n = ledger_cancel_queued(m->ledger, p->index, CAUSE_POOL_FAILED);
	log_fields(LOG_ERR, lfields(&f, p, NULL, NULL, 0, "pool failed"),
		   "pool %s failed: more than %u worker faults within %s; %llu queued job%s "
		   "cancelled",
		  p->cfg.name, p->cfg.max_worker_faults.count,
		  format_duration(d, sizeof(d), p->cfg.max_worker_faults.window),
		  (unsigned long long)n, n == 1 ? "" : "s");
	for (unsigned i = 0; i < p->n_slots; i++) {
		struct worker *w = p->workers[i];

		if (w->pid > 0)
			worker_stop(w, m->config->supervisor.drain_timeout);
		else
			disarm(w->timer);
	}
	if (p->cfg.on_pool_failure == POOL_FAILURE_EXIT) {
		m->stats.pool_failure_exit = true;
		master_begin_stop(m, CAUSE_POOL_FAILED);
	}
	check_ready(m);
	check_done(m);
}

static void schedule_restart(struct worker *w, usec_t delay)
{
	/*
	 * sd-event may fire a timer anywhere within its accuracy to coalesce wake-ups; a
	 * restart "at once" must not wait up to TIMER_ACCURACY for that. Backoff delays keep
	 * an accuracy of an eighth of the delay.
	 */
	usec_t accuracy = delay / 8 > TIMER_ACCURACY ? TIMER_ACCURACY : delay / 8;

	if (arm_timer(w->m, &w->timer, now_usec() + delay, on_state_timer, w) >= 0)
		sd_event_source_set_time_accuracy(w->timer, accuracy > 0 ? accuracy : 1);
}

/* A worker fault (died idle, before HELLO, or could not start): backoff or pool failure. */
static void worker_fault(struct worker *w, usec_t uptime, const char *what)
{
	struct pool *p = w->pool;
	struct master *m = w->m;
	uint32_t rnd = 0;
	usec_t delay;
	char l[64], d[FORMAT_DURATION_MAX];

	struct lfields f;

	m->stats.worker_faults++;
	p->worker_faults++;
	if (fault_window_add(&p->faults, now_usec())) {
		log_fields(LOG_ERR, lfields(&f, p, w, NULL, 0, "worker fault"),
			   "worker %s %s (worker fault)", wlabel(w, l, sizeof(l)), what);
		pool_fail(p);
		return;
	}
	(void)!getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK);
	delay = backoff_next(&w->backoff, uptime, p->cfg.min_uptime, rnd);
	log_fields(LOG_WARNING, lfields(&f, p, w, NULL, 0, "worker fault"),
		   "worker %s %s (worker fault %u of %u in %s); restarting in %s",
		    wlabel(w, l, sizeof(l)), what, fault_window_count(&p->faults, now_usec()),
		    p->cfg.max_worker_faults.count,
		    format_duration(d, sizeof(d), p->cfg.max_worker_faults.window),
		    format_duration(d + 16, sizeof(d) - 16, delay));
	schedule_restart(w, delay);
}

/* Errors of the master's own resources, or the system's: retried, never a worker fault. */
static bool resource_error(int r)
{
	return r == -EMFILE || r == -ENFILE || r == -EAGAIN || r == -ENOMEM || r == -ENOBUFS;
}

/* ---- the fork server ---- */

static int on_zygote_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);
static int on_zygote_timeout(sd_event_source *s, uint64_t usec, void *userdata);

/* Watches the fork server's socket: for its first reply while pending, else for its end. */
static void zygote_watch(struct master *m)
{
	uint32_t events = EPOLLRDHUP | (m->zygote_pending ? EPOLLIN : 0);

	m->zygote_io = sd_event_source_disable_unref(m->zygote_io);
	if (sd_event_add_io(m->event, &m->zygote_io, m->zygote.s.fd, events, on_zygote_io, m) < 0)
		m->zygote_io = NULL; /* its end is then noticed at the next spawn */
	if (m->zygote_pending)
		arm_timer(m, &m->zygote_timer, now_usec() + ZYGOTE_REPLY_TIMEOUT_MS * USEC_PER_MSEC,
			  on_zygote_timeout, m);
	else
		m->zygote_up_at = now_usec();
}

/* Stops the fork server (it exits at EOF, or is killed) and reaps it. */
static void zygote_end(struct master *m)
{
	m->zygote_io = sd_event_source_disable_unref(m->zygote_io);
	disarm(m->zygote_timer);
	m->zygote_pending = false;
	zygote_stop(&m->zygote);
}

static bool pid_is_worker(const struct master *m, pid_t pid)
{
	for (unsigned i = 0; i < m->n_pools; i++)
		for (unsigned k = 0; k < m->pools[i]->n_slots; k++)
			if (m->pools[i]->workers[k]->pid == pid)
				return true;
	return false;
}

/*
 * A fork server that failed may have forked a worker whose pid it never told us (it answered
 * too late, or died before it could): with CLONE_PARENT that worker is our child, unknown to
 * the loop. Kills and reaps every such child, so none is left running or as a zombie.
 */
static void reap_strays(struct master *m)
{
	pid_t self = getpid();
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[64], buf[512], comm[32], *p;
		int ppid, fd;
		pid_t pid = (pid_t)atoi(e->d_name);
		ssize_t n;

		if (pid <= 0 || pid == self || pid_is_worker(m, pid))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1 || ppid != self ||
		    sscanf(buf, "%*d (%31[^)]", comm) != 1 || strncmp(comm, "bulkhead-", 9) != 0)
			continue;
		log_notice("killing process %d, a worker the failed fork server started but never "
			   "reported", (int)pid);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	closedir(d);
}

/*
 * The fork server failed (why: logged here; NULL: already logged): it is killed and reaped,
 * workers are exec'd, and a new one is started at a spawn after the backoff.
 */
static void zygote_failed(struct master *m, const char *why)
{
	usec_t now = now_usec(), delay, uptime = m->zygote_up_at ? now - m->zygote_up_at : 0;
	uint32_t rnd = 0;
	char d[FORMAT_DURATION_MAX];
	pid_t pid = m->zygote.s.pid;

	m->zygote_io = sd_event_source_disable_unref(m->zygote_io);
	disarm(m->zygote_timer);
	m->zygote_pending = false;
	m->zygote_up_at = 0;
	zygote_kill(&m->zygote);
	reap_strays(m);
	(void)!getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK);
	delay = backoff_next(&m->zygote_backoff, uptime, ZYGOTE_MIN_UPTIME, rnd);
	if (delay < ZYGOTE_BACKOFF_MIN)
		delay = ZYGOTE_BACKOFF_MIN;
	m->zygote_retry_at = now + delay;
	if (why && !m->zygote_never)
		log_warning("fork server [%d] failed (%s): workers are exec'd until it is started "
			    "again in %s",
			    (int)pid, why, format_duration(d, sizeof(d), delay));
}

/* Starts a new fork server if one is wanted and the backoff allows; it is not waited for. */
static void zygote_begin(struct master *m)
{
	int r;

	if (m->zygote_never || zygote_up(&m->zygote) || now_usec() < m->zygote_retry_at)
		return;
	r = zygote_launch(m->worker_path, &m->zygote);
	if (r < 0) {
		log_debug("fork server: cannot start %s --zygote: %s", m->worker_path,
			  strerror(-r));
		zygote_failed(m, NULL);
		return;
	}
	m->zygote_pending = true;
	zygote_watch(m);
}

static int on_zygote_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct master *m = userdata;
	int r;

	if (m->zygote_pending) {
		r = zygote_started(&m->zygote, 0);
		if (r > 0) {
			m->zygote_pending = false;
			disarm(m->zygote_timer);
			zygote_watch(m);
			log_notice("fork server [%d] is up again: workers are forked",
				   (int)m->zygote.s.pid);
			return 0;
		}
		if (r == 0 && !(revents & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)))
			return 0;
		zygote_failed(m, r < 0 ? strerror(-r) : "it exited");
		return 0;
	}
	zygote_failed(m, "it exited");
	return 0;
}

static int on_zygote_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct master *m = userdata;

	if (m->zygote_pending)
		zygote_failed(m, "no reply in time");
	return 0;
}

/*
 * A new worker process for slot `index`: forked by the fork server when the config asks for
 * it and it works, else exec'd. A fork server that fails (dies, stalls, answers badly) is
 * killed, and this worker and the next ones are exec'd until a new fork server is up: it is
 * started again after a backoff (zygote_begin), without waiting for it in the loop.
 */
static int start_process(struct master *m, const struct pool_config *pc, unsigned index,
			 struct spawned_worker *s)
{
	int r;

	if (m->config->supervisor.worker_start != WORKER_START_FORK_SERVER) {
		zygote_end(m);
	} else if (!m->zygote_tried) {
		/* The first one: started here and waited for (bounded), so that the first
		 * workers are already forked. */
		m->zygote_tried = true;
		r = zygote_start(m->worker_path, &m->zygote);
		if (r == -ENOTSUP)
			m->zygote_never = true;
		if (r < 0)
			log_warning("fork server %s --zygote could not start (%s): workers are "
				    "exec'd%s", m->worker_path, strerror(-r),
				    m->zygote_never ? " instead" : " until it is started again");
		if (r < 0)
			zygote_failed(m, NULL);
		else
			zygote_watch(m);
	} else {
		zygote_begin(m);
	}
	if (zygote_up(&m->zygote) && !m->zygote_pending) {
		r = zygote_spawn(&m->zygote, pc->name, index, pc->threads, pc->memory_max, s);
		if (r >= 0)
			return r;
		/* Our own fds or memory, or the zygote's fork hitting a process limit: not the
		 * fork server's fault. Retried later, like any start of a worker. */
		if (resource_error(r))
			return r;
		zygote_failed(m, strerror(-r));
	}
	return spawn_worker(m->worker_path, pc->name, index, pc->threads, pc->memory_max, s);
}

/*
 * The master could not start a worker for lack of its own resources (fds, memory, processes):
 * not the worker's fault and not counted as one; the slot tries again after a delay that
 * doubles up to RESOURCE_RETRY_MAX. One warning per RESOURCE_LOG_INTERVAL for the master.
 */
static void worker_resource_retry(struct worker *w, int err, const char *what)
{
	char l[64], d[FORMAT_DURATION_MAX];

	w->resource_delay = w->resource_delay ? w->resource_delay * 2 : RESOURCE_RETRY_MIN;
	if (w->resource_delay > RESOURCE_RETRY_MAX)
		w->resource_delay = RESOURCE_RETRY_MAX;
	if (w->m->resource_logged + RESOURCE_LOG_INTERVAL <= now_usec()) {
		w->m->resource_logged = now_usec();
		log_warning("worker %s: cannot %s: %s (the master's own resources, not a worker "
			    "fault); trying again in %s, and on until it can",
			    wlabel(w, l, sizeof(l)), what, strerror(-err),
			    format_duration(d, sizeof(d), w->resource_delay));
	} else {
		log_debug("worker %s: cannot %s: %s; again in %s", wlabel(w, l, sizeof(l)), what,
			  strerror(-err), format_duration(d, sizeof(d), w->resource_delay));
	}
	schedule_restart(w, w->resource_delay);
}

static void worker_spawn(struct worker *w)
{
	struct master *m = w->m;
	const struct pool_config *pc = &w->pool->cfg;
	struct spawned_worker s;
	char l[64], what[256];
	int r;

	if (m->stopping || w->pool->state != POOL_UP || w->retire)
		return;
	r = worker_size_slots(w, pc->threads);
	if (r < 0) {
		worker_resource_retry(w, r, "set it up");
		return;
	}
	w->outdated = false;
	r = start_process(m, pc, w->index, &s);
	if (r < 0 && resource_error(r)) {
		worker_resource_retry(w, r, "start it");
		return;
	}
	if (r < 0) {
		snprintf(what, sizeof(what), "could not start: %s: %s", m->worker_path,
			 strerror(-r));
		worker_fault(w, 0, what);
		return;
	}
	w->pid = s.pid;
	w->fd = s.fd;
	w->state = W_STARTING;
	w->spawned_at = now_usec();
	w->got_hello = w->solo = w->reserved = w->blocked = w->crash_frame = false;
	w->term_sent = w->stop_sent = false;
	w->injected = NULL;
	w->killed = KILL_NONE;
	w->kill_reason = NULL;
	w->deadline_at = USEC_INFINITY;
	r = sd_event_add_io(m->event, &w->io, w->fd, EPOLLIN, on_io, w);
	if (r >= 0)
		r = sd_event_add_child_pidfd(m->event, &w->child, s.pidfd, WEXITED, on_child, w);
	if (r < 0) {
		/* Cannot watch it: do not let it run unwatched. */
		kill(s.pid, SIGKILL);
		waitpid(s.pid, NULL, 0);
		close(s.pidfd);
		w->io = sd_event_source_unref(w->io);
		close(w->fd);
		w->pid = 0;
		w->state = W_EMPTY;
		if (resource_error(r))
			worker_resource_retry(w, r, "watch it");
		else
			worker_fault(w, 0, "could not be watched");
		return;
	}
	w->resource_delay = 0;
	sd_event_source_set_child_pidfd_own(w->child, true);
	m->n_alive++;
	m->stats.workers_started++;
	arm_timer(m, &w->timer, w->spawned_at + MASTER_HELLO_TIMEOUT, on_state_timer, w);
	if (w->spawns++ > 0) {
		struct lfields f;

		m->stats.restarts++;
		w->pool->restarts++;
		log_fields(LOG_INFO, lfields(&f, w->pool, w, NULL, 0, NULL), "worker %s restarted",
			   wlabel(w, l, sizeof(l)));
	} else {
		log_debug("worker %s started", wlabel(w, l, sizeof(l)));
	}
}

/* The jobs a worker held, in slot order then FIFO order, with their flags. */
static size_t collect_held(struct worker *w, struct job **jobs, uint8_t *flags)
{
	size_t n = 0;

	for (unsigned i = 0; i < w->threads; i++) {
		if (!w->slots[i])
			continue;
		jobs[n] = w->slots[i];
		flags[n++] = HELD_STARTED | w->slot_flags[i];
		w->slots[i] = NULL;
	}
	for (struct job *j = w->pend_head; j; j = j->wnext) {
		jobs[n] = j;
		flags[n++] = 0;
	}
	w->pend_head = w->pend_tail = NULL;
	w->n_running = w->n_pending = w->n_timed_out = w->n_held = 0;
	w->n_free = 0;
	for (unsigned i = w->threads; i > 0; i--)
		w->free_slots[w->n_free++] = (uint16_t)(i - 1);
	for (size_t i = 0; i < n; i++) {
		jobs[i]->worker = NULL;
		jobs[i]->wnext = NULL;
	}
	return n;
}

static void describe_death(const struct worker *w, bool signaled, int status, char *buf,
			   size_t size)
{
	char sig[16];

	if (signaled)
		snprintf(buf, size, "killed by %s", signal_name(status, sig, sizeof(sig)));
	else
		snprintf(buf, size, "exited with status %d", status);
}

/* One line per death, naming the culprits from the evidence (CRASH frame, timeouts). */
static void log_death(struct worker *w, const char *how, int signo, const char *l,
		      struct job **jobs, const uint8_t *flags, size_t n, enum death_verdict v)
{
	struct master *m = w->m;
	char names[256] = "", name[64], cause[64] = "";
	size_t culprits = 0, timeouts = 0, len = 0;
	struct job *first = NULL;
	struct lfields f;

	for (size_t i = 0; i < n; i++) {
		bool blamed = (flags[i] & HELD_TIMED_OUT) ||
			      (w->crash_frame && jobs[i]->id == w->crash.job_id) ||
			      (v == DEATH_CULPRIT && n == 1);

		if (!blamed)
			continue;
		culprits++;
		timeouts += (flags[i] & HELD_TIMED_OUT) != 0;
		if (!first) {
			first = jobs[i];
			ledger_cause_string(first, cause, sizeof(cause));
		}
		if (len < sizeof(names) - 1)
			len += (size_t)snprintf(names + len, sizeof(names) - len,
						"%s%s (attempt %u of %u)", culprits > 1 ? ", " : "",
						ledger_job_name(m->ledger, jobs[i], name,
								sizeof(name)),
						jobs[i]->attempts,
						ledger_group(m->ledger, jobs[i]->group)->max_attempts);
	}
	if (v == DEATH_CULPRIT)
		log_fields(LOG_WARNING, lfields(&f, w->pool, w, first, signo, cause),
			   "worker %s %s %s %s; %zu other job%s re-queued", l, how,
			   timeouts ? "after the timeout of" : "in job", names, n - culprits,
			   n - culprits == 1 ? "" : "s");
	else if (v == DEATH_SUSPECTS)
		log_fields(LOG_WARNING, lfields(&f, w->pool, w, NULL, signo, NULL),
			   "worker %s %s with %zu job%s in flight and no crash report: the "
			   "running ones re-run alone",
			   l, how, n, n == 1 ? "" : "s");
}

/* Jobs a stop or a pool's end leaves unfinished: one line naming them (the first few). */
static void log_cancelled(struct worker *w, const char *l, struct job **jobs, size_t n,
			  enum job_cause cause)
{
	char names[256] = "", name[64];
	size_t len = 0, shown = 0;
	struct job tmp = { .cause = (uint8_t)cause };
	char why[32];

	if (n == 0)
		return;
	for (size_t i = 0; i < n && shown < 8; i++, shown++)
		len += (size_t)snprintf(names + len, len < sizeof(names) ? sizeof(names) - len : 0,
					"%s%s", i ? ", " : "",
					ledger_job_name(w->m->ledger, jobs[i], name, sizeof(name)));
	log_notice("worker %s ended with %zu unfinished job%s, now cancelled (%s): %s%s", l, n,
		   n == 1 ? "" : "s", ledger_cause_string(&tmp, why, sizeof(why)), names,
		   n > shown ? ", ..." : "");
}

/*
 * Jobs whose command the master killed for their timeout, on a worker that died before their
 * DONE came: blamed `timeout` as if it had, and taken out of the list (they are not part of
 * this death). Returns how many jobs are left.
 */
static size_t blame_killed_commands(struct worker *w, struct job **jobs, uint8_t *flags,
				    size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if ((flags[i] & SLOT_EXEC_KILLED) && !(flags[i] & HELD_TIMED_OUT)) {
			ledger_blame_command(w->m->ledger, jobs[i], CAUSE_TIMEOUT, 0);
			log_final(w->m, jobs[i]);
			continue;
		}
		jobs[k] = jobs[i];
		flags[k++] = flags[i];
	}
	return k;
}

static bool held_timed_out(const uint8_t *flags, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (flags[i] & HELD_TIMED_OUT)
			return true;
	return false;
}

static void worker_died(struct worker *w, int code, int status)
{
	struct master *m = w->m;
	struct pool *p = w->pool;
	struct job *jobs[BH_ASSIGN_MAX * 2];
	uint8_t flags[BH_ASSIGN_MAX * 2];
	bool signaled = code != CLD_EXITED;
	bool clean = w->state == W_STOPPING && !signaled && status == 0, stopped;
	bool hello = w->got_hello;
	usec_t uptime = now_usec() - w->spawned_at;
	enum death_verdict v = DEATH_IDLE;
	char l[64], how[64];
	size_t n;

	wlabel(w, l, sizeof(l));
	describe_death(w, signaled, status, how, sizeof(how));
	kill_commands(w); /* no command of its jobs outlives it */
	free(w->held);
	w->held = NULL;
	n = collect_held(w, jobs, flags);
	idmap_clear(&w->specs); /* a new process knows none */
	w->forgets_pending = false;

	/*
	 * Ended by the master because it was to stop (a reload, a restart, the end of the run)
	 * and did not in time, or could not be told (still starting): not a worker death.
	 */
	stopped = w->stop_sent && !w->crash_frame && signaled &&
		  (status == SIGTERM || status == SIGKILL);
	if (!clean && !stopped) {
		char sig[16];

		if (signaled)
			snprintf(w->last_death, sizeof(w->last_death), "%s%s",
				 signal_name(status, sig, sizeof(sig)),
				 w->injected ? " (injected)" : "");
		else
			snprintf(w->last_death, sizeof(w->last_death), "exit(%d)%s", status,
				 w->injected ? " (injected)" : "");
		if (w->injected)
			m->stats.injected++;
		if (signaled && status > 0 && status < 65)
			m->stats.deaths_by_signal[status]++;
		else if (!signaled)
			m->stats.deaths_by_exit++;
	}
	if (m->stopping || p->state != POOL_UP) {
		enum job_cause cause = p->state == POOL_FAILED    ? CAUSE_POOL_FAILED
				       : p->state == POOL_REMOVED ? CAUSE_POOL_REMOVED
								  : CAUSE_STOPPED;

		log_cancelled(w, l, jobs, n, cause);
		for (size_t i = 0; i < n; i++)
			ledger_cancel(m->ledger, jobs[i], cause);
	} else if (clean) {
		/* Stopped on purpose (a reload): it finished what it had started. */
		for (size_t i = 0; i < n; i++)
			ledger_bystander(m->ledger, jobs[i], false);
	} else if (w->injected) {
		/* bulkhead inject did it: nobody's fault; every job it held runs again. */
		struct lfields f;

		n = blame_killed_commands(w, jobs, flags, n);
		for (size_t i = 0; i < n; i++)
			ledger_bystander(m->ledger, jobs[i], flags[i] & HELD_STARTED);
		v = DEATH_CULPRIT; /* restart at once: not a worker fault */
		log_fields(LOG_WARNING, lfields(&f, p, w, NULL, signaled ? status : 0, "injected"),
			   "worker %s %s (injected: %s); %zu job%s re-queued", l, how, w->injected, n,
			   n == 1 ? "" : "s");
	} else if (stopped) {
		/*
		 * We asked it to stop (a reload, a restart) and ended it ourselves when it did not
		 * in time (SIGTERM, then SIGKILL): nobody's fault, except a job that timed out.
		 */
		struct lfields f;

		n = blame_killed_commands(w, jobs, flags, n);
		for (size_t i = 0; i < n; i++) {
			if (flags[i] & HELD_TIMED_OUT)
				ledger_blame(m->ledger, jobs[i], CAUSE_TIMEOUT, 0);
			else
				ledger_bystander(m->ledger, jobs[i], flags[i] & HELD_STARTED);
			log_final(m, jobs[i]);
		}
		v = DEATH_CULPRIT; /* restart at once: not a worker fault */
		log_fields(LOG_NOTICE, lfields(&f, p, w, NULL, status, "stopped"),
			   "worker %s %s after it was asked to stop; %zu job%s re-queued", l, how,
			   n, n == 1 ? "" : "s");
	} else if (w->killed == KILL_TIMEOUT && !w->crash_frame && signaled && status == SIGKILL &&
		   !held_timed_out(flags, n)) {
		/*
		 * We killed it for a job's timeout, and that job's result came in before it died
		 * (late, but it ended): nobody's fault, and not a worker fault; what it still
		 * held runs again.
		 */
		struct lfields f;

		n = blame_killed_commands(w, jobs, flags, n);
		for (size_t i = 0; i < n; i++)
			ledger_bystander(m->ledger, jobs[i], flags[i] & HELD_STARTED);
		v = DEATH_CULPRIT; /* restart at once: not a worker fault */
		log_fields(LOG_NOTICE, lfields(&f, p, w, NULL, status, "timeout"),
			   "worker %s %s by the master for a job's timeout; the job ended "
			   "meanwhile; %zu job%s re-queued",
			   l, how, n, n == 1 ? "" : "s");
	} else if ((n = blame_killed_commands(w, jobs, flags, n)) > 0) {
		struct death d = {
			.crash_frame = w->crash_frame,
			.crash_job = w->crash.job_id,
			.crash_kind = w->crash.kind,
			.crash_signo = w->crash.signo,
			.signaled = signaled,
			.status = status,
			.solo = w->solo,
		};
		v = ledger_worker_died(m->ledger, &d, jobs, flags, n);
		log_death(w, how, signaled ? status : 0, l, jobs, flags, n, v);
		for (size_t i = 0; i < n; i++)
			log_final(m, jobs[i]);
	}

	w->io = sd_event_source_disable_unref(w->io);
	w->child = sd_event_source_disable_unref(w->child);
	disarm(w->deadline);
	disarm(w->timer);
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	w->pid = 0;
	w->state = W_EMPTY;
	w->solo = w->reserved = w->blocked = false;
	m->n_alive--;
	if (hello)
		m->stats.workers_up--;

	if (w->retire) {
		pool_trim_slots(p);
	} else if (!m->stopping && p->state == POOL_UP) {
		if (!hello) {
			char what[96];

			snprintf(what, sizeof(what), "%s before HELLO", how);
			worker_fault(w, uptime, what);
		} else if (v == DEATH_IDLE && !clean) {
			char what[96];

			snprintf(what, sizeof(what), "%s with no job in flight", how);
			worker_fault(w, uptime, what);
		} else {
			if (v == DEATH_CULPRIT)
				backoff_reset(&w->backoff);
			schedule_restart(w, 0);
		}
		dispatch_pool(p);
	}
	pool_roll_next(p);
	check_done(m);
}

/* ---- jobs added at run time (reload, submit) ---- */

int master_add_group(struct master *m, const struct group_config *gc, unsigned *ret_index)
{
	struct pool *p;
	unsigned g;
	int r;

	if (gc->pool >= m->n_pools || m->pools[gc->pool]->state != POOL_UP || m->stopping)
		return -ESHUTDOWN;
	r = ledger_add_group(m->ledger, gc, &g);
	if (r < 0)
		return r;
	p = m->pools[gc->pool];
	dispatch_pool(p);
	check_done(m);
	if (ret_index)
		*ret_index = g;
	return 0;
}

int master_add_variant(struct master *m, const struct group_config *gc, const char *base,
		       unsigned count, char *const *inputs, size_t n_inputs, uint64_t *ret_first)
{
	int r;

	if (!master_pool_accepts(m, gc->pool))
		return -ESHUTDOWN;
	r = ledger_add_variant(m->ledger, gc, base, count, inputs, n_inputs, NULL, ret_first);
	if (r < 0)
		return r;
	dispatch_pool(m->pools[gc->pool]);
	check_done(m);
	return 0;
}

int master_add_jobs(struct master *m, unsigned group, unsigned count, uint64_t *ret_first)
{
	unsigned pool = ledger_group(m->ledger, group)->pool;
	int r;

	if (m->pools[pool]->state != POOL_UP || m->stopping)
		return -ESHUTDOWN;
	r = ledger_add_jobs(m->ledger, group, count, ret_first);
	if (r < 0)
		return r;
	dispatch_pool(m->pools[pool]);
	check_done(m);
	return 0;
}

int master_add_input_jobs(struct master *m, unsigned group, char *const *inputs, size_t n,
			  uint64_t *ret_first)
{
	unsigned pool = ledger_group(m->ledger, group)->pool;
	int r;

	if (m->pools[pool]->state != POOL_UP || m->stopping)
		return -ESHUTDOWN;
	r = ledger_add_input_jobs(m->ledger, group, inputs, n, ret_first);
	if (r < 0)
		return r;
	dispatch_pool(m->pools[pool]);
	check_done(m);
	return 0;
}

int master_restart(struct master *m, unsigned pool, int slot)
{
	struct pool *p;
	unsigned n = 0;

	if (pool >= m->n_pools || m->stopping)
		return -ESHUTDOWN;
	p = m->pools[pool];
	if (p->state != POOL_UP)
		return -ESHUTDOWN;
	if (slot >= 0 && ((unsigned)slot >= p->cfg.workers || (unsigned)slot >= p->n_slots))
		return -ENOENT;
	for (unsigned k = 0; k < p->n_slots; k++) {
		struct worker *w = p->workers[k];

		if ((slot < 0 || (unsigned)slot == k) && !w->retire && w->pid > 0) {
			w->outdated = true;
			n++;
		}
	}
	log_notice("restart of %s%s%.0d requested: %u worker%s to replace, one at a time",
		   p->cfg.name, slot >= 0 ? "/" : "", slot >= 0 ? slot : 0, n, n == 1 ? "" : "s");
	pool_roll_next(p);
	return (int)n;
}

int master_inject(struct master *m, unsigned pool, int slot, const char *fault,
		  char *ret_worker, size_t size, pid_t *ret_pid)
{
	static const struct {
		const char *name;
		int kind; /* enum bh_inject_kind, 0: SIGKILL from here */
	} faults[] = { { "segv", BH_INJECT_SEGV }, { "abort", BH_INJECT_ABORT },
		       { "hang", BH_INJECT_HANG }, { "leak", BH_INJECT_LEAK }, { "kill", 0 } };
	struct pool *p;
	struct worker *w = NULL, *ready[64];
	unsigned n_ready = 0, r32 = 0;
	int kind = -1;
	const char *name = NULL;
	uint8_t buf[16];

	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		if (strcmp(faults[i].name, fault) == 0) {
			kind = faults[i].kind;
			name = faults[i].name;
		}
	if (kind < 0)
		return -EINVAL;
	if (pool >= m->n_pools || m->stopping || m->pools[pool]->state != POOL_UP)
		return -ESHUTDOWN;
	p = m->pools[pool];
	if (kind == BH_INJECT_LEAK && p->cfg.memory_max == UINT64_MAX)
		return -EDOM; /* it would eat the machine's memory */
	if (slot >= 0) {
		if ((unsigned)slot >= p->n_slots || p->workers[slot]->retire)
			return -ENOENT;
		w = p->workers[slot];
		if (w->state != W_READY || w->injected)
			return -EBUSY;
	} else {
		/* A ready worker of the pool, chosen at random. */
		for (unsigned k = 0; k < p->n_slots && n_ready < 64; k++)
			if (p->workers[k]->state == W_READY && !p->workers[k]->injected &&
			    !p->workers[k]->retire)
				ready[n_ready++] = p->workers[k];
		if (n_ready == 0)
			return -EBUSY;
		(void)!getrandom(&r32, sizeof(r32), GRND_NONBLOCK);
		w = ready[r32 % n_ready];
	}
	snprintf(ret_worker, size, "%s/%u", p->cfg.name, w->index);
	*ret_pid = w->pid;
	w->injected = name;
	log_notice("worker %s/%u[%d]: injecting %s", p->cfg.name, w->index, (int)w->pid, name);
	if (kind == 0 || worker_send(w, buf, bh_encode_inject(buf, sizeof(buf), kind)) < 0) {
		worker_kill(w, KILL_INJECT, NULL);
		return 0;
	}
	if (kind == BH_INJECT_HANG) {
		/* Its main thread stops answering: no new jobs, and after kill_grace, SIGKILL. */
		w->state = W_DRAINING;
		arm_timer(m, &w->timer, now_usec() + p->cfg.kill_grace, on_state_timer, w);
	}
	return 0;
}

bool master_pool_accepts(const struct master *m, unsigned pool)
{
	return pool < m->n_pools && m->pools[pool]->state == POOL_UP && !m->stopping;
}

int master_cancel_job(struct master *m, struct job *j)
{
	struct worker *w = j->worker;
	uint8_t buf[32];
	char name[64];
	int r = ledger_cancel_queued_job(m->ledger, j, CAUSE_CANCELLED);

	if (r >= 0) {
		check_done(m);
		return 0;
	}
	if (j->state != JOB_RUNNING || !w || w->pid <= 0 || w->state == W_KILLED)
		return r;
	if (j->flags & JOB_CANCEL_REQUESTED)
		return 1;
	ledger_request_cancel(m->ledger, j);
	/* Not sent (socket full): the job runs on, and still ends cancelled unless done. */
	if (worker_send(w, buf, bh_encode_cancel(buf, sizeof(buf), j->id)) < 0)
		log_debug("job %s: cannot send CANCEL", ledger_job_name(m->ledger, j, name,
									  sizeof(name)));
	log_info("job %s: cancel requested", ledger_job_name(m->ledger, j, name, sizeof(name)));
	return 1;
}

/* ---- reload ---- */

/*
 * Replaces the pool's outdated workers one at a time: the next one is stopped only once every
 * other slot of the pool is READY again, so the pool never has more than one worker down for
 * the roll.
 */
static void pool_roll_next(struct pool *p)
{
	struct worker *next = NULL;

	if (p->state != POOL_UP || p->m->stopping)
		return;
	for (unsigned k = 0; k < p->n_slots; k++) {
		struct worker *w = p->workers[k];

		if (w->retire)
			continue;
		if (w->state != W_READY)
			return; /* a replacement (or a restart) is still on its way */
		if (w->outdated && !next)
			next = w;
	}
	if (next) {
		char l[64];

		log_info("worker %s: replacing it (reload or restart)",
			 wlabel(next, l, sizeof(l)));
		worker_stop(next, p->m->config->supervisor.drain_timeout);
	}
}

/* Frees retired slots at the end of the array once their process is gone. */
static void pool_trim_slots(struct pool *p)
{
	while (p->n_slots > p->cfg.workers || (p->state == POOL_REMOVED && p->n_slots > 0)) {
		struct worker *w = p->workers[p->n_slots - 1];

		if (!w->retire || w->pid > 0)
			return;
		worker_free(w);
		p->n_slots--;
	}
}

static bool pool_config_equal(const struct pool_config *a, const struct pool_config *b)
{
	return a->workers == b->workers && a->threads == b->threads &&
	       a->backoff_min == b->backoff_min && a->backoff_max == b->backoff_max &&
	       a->min_uptime == b->min_uptime &&
	       a->max_worker_faults.count == b->max_worker_faults.count &&
	       a->max_worker_faults.window == b->max_worker_faults.window &&
	       a->memory_max == b->memory_max && a->kill_grace == b->kill_grace &&
	       a->on_pool_failure == b->on_pool_failure;
}

static void pool_resize(struct pool *p, unsigned workers)
{
	unsigned old = p->n_slots;

	for (unsigned k = 0; k < p->n_slots && k < workers; k++)
		p->workers[k]->retire = false;
	if (pool_grow_slots(p, workers) < 0) {
		log_error("pool %s: out of memory growing to %u workers", p->cfg.name, workers);
		return;
	}
	for (unsigned k = old; k < workers; k++)
		schedule_restart(p->workers[k], 0);
	for (unsigned k = workers; k < p->n_slots; k++) {
		struct worker *w = p->workers[k];

		w->retire = true;
		if (w->pid > 0)
			worker_stop(w, p->m->config->supervisor.drain_timeout);
		else
			disarm(w->timer);
	}
	pool_trim_slots(p);
}

/* Applies a changed [pool] section. Returns true if anything changed. */
static bool pool_reconfigure(struct pool *p, const struct pool_config *pc)
{
	bool respawn = pc->threads != p->cfg.threads || pc->memory_max != p->cfg.memory_max;
	bool revive = p->state == POOL_FAILED;

	if (pool_config_equal(&p->cfg, pc))
		return false;
	if (pc->max_worker_faults.count != p->cfg.max_worker_faults.count ||
	    pc->max_worker_faults.window != p->cfg.max_worker_faults.window || revive) {
		fault_window_done(&p->faults);
		if (fault_window_init(&p->faults, pc->max_worker_faults.count,
				      pc->max_worker_faults.window) < 0)
			log_error("pool %s: out of memory for the fault window", pc->name);
	}
	p->cfg = *pc;
	for (unsigned k = 0; k < p->n_slots; k++) {
		struct worker *w = p->workers[k];

		backoff_init(&w->backoff, pc->backoff_min, pc->backoff_max);
		if (respawn && w->pid > 0)
			w->outdated = true;
	}
	if (revive) {
		log_notice("pool %s: changed by the reload: starting it again", pc->name);
		p->state = POOL_UP;
		for (unsigned k = 0; k < p->n_slots; k++)
			if (p->workers[k]->pid <= 0)
				schedule_restart(p->workers[k], 0);
	}
	pool_resize(p, pc->workers);
	pool_roll_next(p);
	return true;
}

static void pool_remove(struct pool *p)
{
	struct master *m = p->m;
	uint64_t n;

	p->state = POOL_REMOVED;
	n = ledger_cancel_queued(m->ledger, p->index, CAUSE_POOL_REMOVED);
	log_notice("pool %s: removed by the reload: its workers finish their jobs and stop; "
		   "%llu queued job%s cancelled",
		   p->cfg.name, (unsigned long long)n, n == 1 ? "" : "s");
	for (unsigned k = 0; k < p->n_slots; k++) {
		struct worker *w = p->workers[k];

		w->retire = true;
		if (w->pid > 0)
			worker_stop(w, m->config->supervisor.drain_timeout);
		else
			disarm(w->timer);
	}
	pool_trim_slots(p);
}

static int find_live_pool(const struct master *m, const char *name)
{
	for (unsigned i = 0; i < m->n_pools; i++)
		if (m->pools[i]->state != POOL_REMOVED && strcmp(m->pools[i]->cfg.name, name) == 0)
			return (int)i;
	return -ENOENT;
}

/* Pools of nc: new ones added, changed ones reconfigured; map[i] = master index. */
static int reload_pools(struct master *m, const struct config *nc, unsigned *map)
{
	for (unsigned i = 0; i < nc->n_pools; i++) {
		int idx = find_live_pool(m, nc->pools[i].name);
		struct pool **ps;
		int r;

		if (idx >= 0) {
			if (pool_reconfigure(m->pools[idx], &nc->pools[i]))
				log_notice("pool %s: new settings applied", nc->pools[i].name);
			map[i] = (unsigned)idx;
			continue;
		}
		ps = realloc(m->pools, (m->n_pools + 1) * sizeof(*ps));
		if (!ps)
			return -ENOMEM;
		m->pools = ps;
		r = pool_new(m, &nc->pools[i], m->n_pools, &m->pools[m->n_pools]);
		m->n_pools++;
		if (r >= 0)
			r = ledger_set_pools(m->ledger, m->n_pools);
		if (r < 0)
			return r;
		map[i] = m->n_pools - 1;
		log_notice("pool %s: added by the reload", nc->pools[i].name);
		for (unsigned k = 0; k < m->pools[map[i]]->n_slots; k++)
			schedule_restart(m->pools[map[i]]->workers[k], 0);
	}
	for (unsigned i = 0; i < m->n_pools; i++) {
		struct pool *p = m->pools[i];

		if (p->state != POOL_REMOVED && config_find_pool(nc, p->cfg.name) < 0)
			pool_remove(p);
	}
	return 0;
}

/* Job groups of nc: new ones are added with their jobs; existing ones take new limits. */
static int reload_groups(struct master *m, const struct config *nc, const unsigned *map)
{
	for (unsigned i = 0; i < nc->n_groups; i++) {
		struct group_config gc = nc->groups[i];
		int g = ledger_find_group(m->ledger, gc.name);
		unsigned added;
		int r;

		gc.pool = map[gc.pool];
		if (g >= 0) {
			const struct group_config *cur = ledger_group(m->ledger, (unsigned)g);

			if (cur->pool != gc.pool || strcmp(cur->run, gc.run) != 0 ||
			    strcmp(cur->args, gc.args) != 0 || cur->count != gc.count)
				log_notice("job group %s: pool, run, args and count of existing jobs "
					   "stay as they were; timeout, max_attempts and expect are "
					   "updated", gc.name);
			ledger_update_group(m->ledger, (unsigned)g, &gc);
			continue;
		}
		r = master_add_group(m, &gc, &added);
		if (r < 0)
			return r;
		log_notice("job group %s: added by the reload: %u job%s", gc.name, gc.count,
			   gc.count == 1 ? "" : "s");
	}
	return 0;
}

int master_reload(struct master *m, char **ret_errors)
{
	struct config *nc = NULL;
	char *errors = NULL;
	unsigned *map;
	int r;

	if (m->stopping) {
		if (ret_errors)
			*ret_errors = strdup("stopping: no reload");
		return -ESHUTDOWN;
	}
	notify_reloading(m->notifier);
	log_notice("reloading %s", m->config->path);
	r = config_load(m->config->path, &nc, &errors);
	/*
	 * Its plugins are loaded by a throwaway worker first (this blocks the loop for as long
	 * as the probes take: a reload is rare, and a constructor must never run here).
	 */
	if (r >= 0) {
		r = config_probe_plugins(nc, m->worker_path, MASTER_RELOAD_PROBE_MS, &errors);
		if (r < 0) {
			config_free(nc);
			nc = NULL;
			if (!errors && asprintf(&errors, "cannot probe the plugins with %s: %s",
						m->worker_path, strerror(-r)) < 0)
				errors = NULL;
		}
	}
	if (r < 0) {
		char *copy = errors ? strdup(errors) : NULL, *save = NULL;

		for (char *line = strtok_r(errors, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			log_error("%s", line);
		log_error("reload failed: still running the config loaded before");
		free(errors);
		notify_ready(m->notifier);
		if (ret_errors)
			*ret_errors = copy;
		else
			free(copy);
		return r;
	}
	map = calloc(nc->n_pools ? nc->n_pools : 1, sizeof(*map));
	if (!map) {
		log_error("reload failed: out of memory; still running the config loaded before");
		config_free(nc);
		notify_ready(m->notifier);
		return -ENOMEM;
	}
	/* The new config parsed and validated as a whole: from here on it is applied. */
	log_set_max_level((int)nc->supervisor.log_level);
	if (m->opts.daemon) {
		ledger_set_keep_ended(m->ledger, nc->supervisor.keep_ended);
		sd_event_source_set_enabled(m->collect, SD_EVENT_ONESHOT);
	}
	if (strcmp(nc->supervisor.control_socket, m->config->supervisor.control_socket) != 0)
		log_warning("control_socket changes take effect at the next start");
	r = reload_pools(m, nc, map);
	if (r >= 0)
		r = reload_groups(m, nc, map);
	if (r < 0)
		log_error_errno(r, "reload incomplete");
	free(map);
	config_free(m->config);
	m->config = nc;
	log_notice("reloaded");
	notify_ready(m->notifier);
	check_done(m);
	m->last_reload = now_usec();
	return 0;
}

static int on_reload_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct master *m = userdata;

	master_reload(m, NULL);
	m->last_reload = now_usec();
	return 0;
}

/* A SIGHUP storm is one reload: at most one per RELOAD_MIN_INTERVAL, after the last one. */
static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct master *m = userdata;
	int enabled = SD_EVENT_OFF;
	usec_t when = m->last_reload + RELOAD_MIN_INTERVAL;

	if (m->stopping)
		return 0;
	if (m->reload_event)
		sd_event_source_get_enabled(m->reload_event, &enabled);
	if (enabled != SD_EVENT_OFF)
		return 0; /* one is already pending: this SIGHUP joins it */
	if (when < now_usec())
		when = now_usec();
	arm_timer(m, &m->reload_event, when, on_reload_timer, m);
	return 0;
}

/* ---- run control ---- */

static void master_begin_stop(struct master *m, enum job_cause cause)
{
	if (m->stopping)
		return;
	m->stopping = true;
	for (unsigned i = 0; i < m->n_pools; i++)
		ledger_cancel_queued(m->ledger, i, cause);
	for (unsigned i = 0; i < m->n_pools; i++) {
		struct pool *p = m->pools[i];

		for (unsigned k = 0; k < p->n_slots; k++) {
			struct worker *w = p->workers[k];

			if (w->pid > 0)
				worker_stop(w, cause == CAUSE_NONE ? MASTER_STOP_TIMEOUT
								   : m->config->supervisor.drain_timeout);
			else
				disarm(w->timer);
		}
	}
}

/* READY=1 once every pool's workers have said HELLO (a failed pool counts as settled). */
static void check_ready(struct master *m)
{
	if (!m->opts.daemon || m->ready_sent || m->stopping)
		return;
	for (unsigned i = 0; i < m->n_pools; i++) {
		struct pool *p = m->pools[i];

		if (p->state != POOL_UP)
			continue;
		for (unsigned k = 0; k < p->n_slots; k++)
			if (p->workers[k]->state != W_READY)
				return;
	}
	m->ready_sent = true;
	log_info("ready: %u pool%s up", m->n_pools, m->n_pools == 1 ? "" : "s");
	notify_ready(m->notifier);
}

static void check_done(struct master *m)
{
	notify_status_dirty(m->notifier);
	if (!m->stopping && !m->opts.daemon && ledger_unfinished(m->ledger) == 0)
		master_begin_stop(m, CAUSE_NONE);
	if (m->stopping && m->n_alive == 0) {
		m->stats.ended_at = now_usec();
		notify_status_flush(m->notifier); /* the last word: how it ended */
		sd_event_exit(m->event, 0);
	}
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct master *m = userdata;

	m->stats.interrupted = true;
	if (m->interrupts++ == 0) {
		usec_t drain = m->config->supervisor.drain_timeout;
		char d[FORMAT_DURATION_MAX];

		notify_stopping(m->notifier);
		if (drain != USEC_INFINITY)
			notify_extend_timeout(m->notifier, drain + MASTER_STOP_TIMEOUT);
		log_notice("%s: stopping: queued jobs are cancelled, running jobs may finish "
			   "within %s (again to kill them now)",
			   strsignal((int)si->ssi_signo), format_duration(d, sizeof(d), drain));
		master_begin_stop(m, CAUSE_STOPPED);
	} else {
		log_notice("%s again: killing every worker now", strsignal((int)si->ssi_signo));
		for (unsigned i = 0; i < m->n_pools; i++)
			for (unsigned k = 0; k < m->pools[i]->n_slots; k++)
				worker_kill(m->pools[i]->workers[k], KILL_STOP, NULL);
	}
	check_done(m);
	return 0;
}

/* ---- set-up ---- */

static struct worker *worker_new(struct pool *p, unsigned index)
{
	struct worker *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->m = p->m;
	w->pool = p;
	w->index = index;
	w->fd = -1;
	w->deadline_at = USEC_INFINITY;
	backoff_init(&w->backoff, p->cfg.backoff_min, p->cfg.backoff_max);
	return w;
}

/* Sizes the running-slot arrays for `threads` (the process about to be spawned). */
static int worker_size_slots(struct worker *w, unsigned threads)
{
	if (threads != w->threads || !w->slots) {
		free(w->slots);
		free(w->slot_flags);
		free(w->free_slots);
		w->slots = calloc(threads, sizeof(struct job *));
		w->slot_flags = calloc(threads, 1);
		w->free_slots = calloc(threads, sizeof(uint16_t));
		if (!w->slots || !w->slot_flags || !w->free_slots)
			return -ENOMEM;
		w->threads = threads;
	}
	w->n_free = 0;
	for (unsigned t = threads; t > 0; t--)
		w->free_slots[w->n_free++] = (uint16_t)(t - 1);
	return 0;
}

/* Grows the pool's slot array to n slots (new slots are EMPTY, not started). */
static int pool_grow_slots(struct pool *p, unsigned n)
{
	struct worker **ws;

	if (n <= p->n_slots)
		return 0;
	ws = realloc(p->workers, n * sizeof(*ws));
	if (!ws)
		return -ENOMEM;
	p->workers = ws;
	for (; p->n_slots < n; p->n_slots++) {
		ws[p->n_slots] = worker_new(p, p->n_slots);
		if (!ws[p->n_slots])
			return -ENOMEM;
	}
	return 0;
}

static int pool_new(struct master *m, const struct pool_config *pc, unsigned index,
		    struct pool **ret)
{
	struct pool *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->m = m;
	p->index = index;
	p->cfg = *pc;
	p->state = POOL_UP;
	*ret = p; /* freed by the caller's pool_free() on error */
	r = fault_window_init(&p->faults, pc->max_worker_faults.count,
			      pc->max_worker_faults.window);
	if (r < 0)
		return r;
	return pool_grow_slots(p, pc->workers);
}

/* Adds the pools of c, in order, as pools m->n_pools.. (indexes match the ledger's). */
static int master_add_pools(struct master *m, const struct config *c)
{
	struct pool **ps = realloc(m->pools, (m->n_pools + c->n_pools) * sizeof(*ps));
	int r;

	if (!ps)
		return -ENOMEM;
	m->pools = ps;
	for (unsigned i = 0; i < c->n_pools; i++) {
		r = pool_new(m, &c->pools[i], m->n_pools, &m->pools[m->n_pools]);
		m->n_pools++;
		if (r < 0)
			return r;
	}
	return ledger_set_pools(m->ledger, m->n_pools);
}

static void status_line(void *userdata, char *buf, size_t size)
{
	struct master *m = userdata;
	const struct ledger_stats *s = ledger_stats(m->ledger);
	unsigned pools_up = 0, pools = 0, workers = 0, wanted = 0;
	uint64_t deaths = m->stats.deaths_by_exit, running = 0, waiting = 0;

	for (unsigned i = 0; i < m->n_pools; i++) {
		struct pool *p = m->pools[i];

		if (p->state == POOL_REMOVED)
			continue;
		pools++;
		pools_up += p->state == POOL_UP;
		wanted += p->state == POOL_UP ? p->cfg.workers : 0;
		for (unsigned k = 0; k < p->n_slots; k++) {
			struct worker *w = p->workers[k];

			workers += w->pid > 0 && w->got_hello && !w->retire;
			running += w->n_running;
			waiting += w->n_pending;
		}
	}
	for (int i = 0; i < 65; i++)
		deaths += m->stats.deaths_by_signal[i];
	/* "running" is on a thread now; jobs assigned to a worker but not started are queued. */
	snprintf(buf, size,
		 "%s%u/%u pools up, %u/%u workers; jobs: %llu done, %llu running, %llu queued, "
		 "%llu failed, %llu crashed, %llu timed out; %llu worker deaths",
		 m->stopping ? "stopping: " : "", pools_up, pools, workers, wanted,
		 (unsigned long long)s->by_state[JOB_DONE], (unsigned long long)running,
		 (unsigned long long)(s->by_state[JOB_QUEUED] + waiting),
		 (unsigned long long)s->by_state[JOB_FAILED],
		 (unsigned long long)s->by_state[JOB_CRASHED],
		 (unsigned long long)s->by_state[JOB_TIMED_OUT], (unsigned long long)deaths);
}

/* Forgets old ended jobs (keep_ended), once per loop pass after jobs ended. */
static int on_collect(sd_event_source *s, void *userdata)
{
	struct master *m = userdata;
	uint64_t n = ledger_collect(m->ledger);

	if (n > 0)
		log_debug("forgot %" PRIu64 " ended jobs (%" PRIu64 " in all; keep_ended = %u)", n,
			  ledger_forgotten(m->ledger), m->config->supervisor.keep_ended);
	return 0;
}

static void on_job_ended(void *userdata, struct job *j)
{
	master_collect_soon(userdata);
}

void master_collect_soon(struct master *m)
{
	if (m->collect)
		sd_event_source_set_enabled(m->collect, SD_EVENT_ONESHOT);
}

int master_new(struct config *c, const struct master_options *opts, struct master **ret)
{
	struct master *m;
	sigset_t ss;
	int r;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->config = c;
	if (opts)
		m->opts = *opts;
	m->worker_path = spawn_worker_path();
	m->zygote = (struct zygote){ .s = { .pid = 0, .pidfd = -1, .fd = -1 } };
	backoff_init(&m->zygote_backoff, ZYGOTE_BACKOFF_MIN, ZYGOTE_BACKOFF_MAX);

	/* sd-event needs these blocked before it can watch children and signals. */
	sigemptyset(&ss);
	sigaddset(&ss, SIGCHLD);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGHUP); /* daemon: reload; one-shot run: stop, as SIGINT */
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = sd_event_new(&m->event);
	if (r < 0)
		goto fail;
	r = ledger_new_from_config(c, &m->ledger);
	if (r < 0)
		goto fail;
	r = master_add_pools(m, c);
	if (r < 0)
		goto fail;
	if (m->opts.daemon) {
		/* Retention: ended jobs are forgotten from a deferred source, where no caller
		 * holds a struct job pointer. One-shot runs keep every job for their report. */
		ledger_set_keep_ended(m->ledger, c->supervisor.keep_ended);
		r = sd_event_add_defer(m->event, &m->collect, on_collect, m);
		if (r >= 0)
			r = sd_event_source_set_enabled(m->collect, SD_EVENT_OFF);
		if (r >= 0)
			r = ledger_add_end_hook(m->ledger, on_job_ended, m);
		if (r < 0)
			goto fail;
		r = notifier_new(m->event, status_line, m, &m->notifier);
		if (r >= 0)
			r = sd_event_add_signal(m->event, &m->sighup, SIGHUP, on_sighup, m);
		if (r < 0)
			goto fail;
	}
	r = sd_event_add_signal(m->event, &m->sigint, SIGINT, on_signal, m);
	if (r >= 0)
		r = sd_event_add_signal(m->event, &m->sigterm, SIGTERM, on_signal, m);
	if (r >= 0 && !m->opts.daemon) /* a closed terminal or ssh session */
		r = sd_event_add_signal(m->event, &m->sighup, SIGHUP, on_signal, m);
	if (r < 0)
		goto fail;
	*ret = m;
	return 0;
fail:
	m->config = NULL; /* still the caller's */
	master_free(m);
	return r;
}

int master_run(struct master *m)
{
	int r;

	m->stats.started_at = now_usec();
	for (unsigned i = 0; i < m->n_pools; i++) {
		struct pool *p = m->pools[i];
		bool needed = false;

		for (unsigned g = 0; g < ledger_n_groups(m->ledger); g++)
			needed |= ledger_group(m->ledger, g)->pool == i;
		if (!needed && !m->opts.daemon)
			continue; /* a pool no job uses: nothing to start in a one-shot run */
		for (unsigned k = 0; k < p->n_slots; k++)
			schedule_restart(p->workers[k], 0);
	}
	if (m->notifier) {
		r = notifier_start_watchdog(m->notifier);

		if (r < 0)
			log_warning_errno(r, "cannot start the watchdog pings");
	}
	check_done(m);
	r = sd_event_loop(m->event);
	zygote_end(m); /* every worker is gone: no more forks */
	return r;
}

static void worker_free(struct worker *w)
{
	if (!w)
		return;
	if (w->pid > 0) {
		kill(w->pid, SIGKILL);
		kill_commands(w);
		/* The child source owns the pidfd; reap here so no zombie is left. */
		waitpid(w->pid, NULL, 0);
	}
	free(w->execs);
	free(w->held);
	idmap_clear(&w->specs);
	sd_event_source_disable_unref(w->io);
	sd_event_source_disable_unref(w->child);
	sd_event_source_disable_unref(w->timer);
	sd_event_source_disable_unref(w->deadline);
	if (w->fd >= 0)
		close(w->fd);
	free(w->slots);
	free(w->slot_flags);
	free(w->free_slots);
	free(w);
}

static void pool_free(struct pool *p)
{
	if (!p)
		return;
	for (unsigned k = 0; k < p->n_slots; k++)
		worker_free(p->workers[k]);
	free(p->workers);
	fault_window_done(&p->faults);
	free(p);
}

void master_free(struct master *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < m->n_pools; i++)
		pool_free(m->pools[i]);
	free(m->pools);
	sd_event_source_disable_unref(m->sigint);
	sd_event_source_disable_unref(m->sigterm);
	sd_event_source_disable_unref(m->sighup);
	sd_event_source_disable_unref(m->collect);
	sd_event_source_disable_unref(m->reload_event);
	notifier_free(m->notifier);
	zygote_end(m);
	sd_event_source_disable_unref(m->zygote_timer);
	ledger_free(m->ledger);
	sd_event_unref(m->event);
	config_free(m->config);
	free(m);
}

const struct config *master_config(const struct master *m)
{
	return m->config;
}

const char *master_pool_name(const struct master *m, unsigned pool)
{
	return m->pools[pool]->cfg.name;
}

sd_event *master_event(struct master *m)
{
	return m->event;
}

struct ledger *master_ledger(struct master *m)
{
	return m->ledger;
}

const struct master_stats *master_stats(const struct master *m)
{
	return &m->stats;
}

static const char *const worker_state_names[] = {
	[W_EMPTY] = "empty",	   [W_STARTING] = "starting", [W_READY] = "ready",
	[W_DRAINING] = "draining", [W_STOPPING] = "stopping", [W_KILLED] = "killed",
};

static const char *const pool_state_names[] = {
	[POOL_UP] = "up",
	[POOL_FAILED] = "failed",
	[POOL_REMOVED] = "removed",
};

unsigned master_n_pools(const struct master *m)
{
	return m->n_pools;
}

bool master_is_ready(const struct master *m)
{
	return m->ready_sent;
}

bool master_is_stopping(const struct master *m)
{
	return m->stopping;
}

void master_pool_info(const struct master *m, unsigned pool, struct master_pool_info *ret)
{
	const struct pool *p = m->pools[pool];

	*ret = (struct master_pool_info){
		.name = p->cfg.name,
		.state = pool_state_names[p->state],
		.workers_wanted = p->state == POOL_UP ? p->cfg.workers : 0,
		.threads = p->cfg.threads,
		.restarts = p->restarts,
		.worker_faults = p->worker_faults,
		.n_slots = p->n_slots,
	};
	for (unsigned k = 0; k < p->n_slots; k++)
		ret->workers_up += p->workers[k]->pid > 0 && p->workers[k]->got_hello;
}

void master_worker_info(const struct master *m, unsigned pool, unsigned slot,
			struct master_worker_info *ret)
{
	const struct worker *w = m->pools[pool]->workers[slot];

	*ret = (struct master_worker_info){
		.slot = w->index,
		.pid = w->pid > 0 ? w->pid : 0,
		.state = worker_state_names[w->state],
		.uptime = w->pid > 0 ? now_usec() - w->spawned_at : 0,
		.jobs_running = w->n_running,
		.last_death = w->last_death,
	};
}

char *master_job_worker(const struct master *m, const struct job *j, char *buf, size_t size)
{
	const struct worker *w = j->worker;

	if (w && j->state == JOB_RUNNING)
		snprintf(buf, size, "%s/%u", w->pool->cfg.name, w->index);
	else if (size)
		buf[0] = '\0';
	return buf;
}

uint64_t master_jobs_on_threads(const struct master *m)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < m->n_pools; i++)
		for (unsigned k = 0; k < m->pools[i]->n_slots; k++)
			n += m->pools[i]->workers[k]->n_running;
	return n;
}

unsigned master_failed_pools(const struct master *m)
{
	unsigned n = 0;

	for (unsigned i = 0; i < m->n_pools; i++)
		n += m->pools[i]->state == POOL_FAILED;
	return n;
}
