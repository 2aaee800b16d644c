/* SPDX-License-Identifier: MIT */
/*
 * A worker's death: the one place that applies the blame rules (ledger_worker_died) to the
 * jobs it held, from the evidence (CRASH frame, timeouts, why the master killed it), logs one
 * line naming the culprits, and decides the restart (at once, after a backoff, or not).
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
#include "daemon/cgroup.h"
#include "daemon/master-int.h"
#include "daemon/notify.h"
#include "daemon/policy.h"
#include "daemon/spawn-worker.h"

static void death_of(struct worker *w, int code, int status);

void death_log_final(struct master *m, struct job *j)
{
	char name[64], cause[64];
	const struct crash_note *note = NULL;
	struct lfields f;

	if (j->state != JOB_CRASHED && j->state != JOB_TIMED_OUT && j->state != JOB_FAILED)
		return;
	ledger_cause_string(j, cause, sizeof(cause));
	/* Where it crashed, if known: "SIGSEGV at 0x0 in libfoo.so:parse+0x1a7". */
	if (j->cause == CAUSE_SIGNAL)
		note = crash_notes_get(&m->crash_notes, j->id);
	log_fields(LOG_NOTICE,
		   master_lfields(&f, m->pools[ledger_group(m->ledger, j->group)->pool], NULL, j,
				  j->cause == CAUSE_SIGNAL ? j->cause_detail : 0, cause),
		   "job %s %s after %u attempt%s: %s",
		   ledger_job_name(m->ledger, j, name, sizeof(name)),
		   j->state == JOB_FAILED ? "failed" : "quarantined", j->attempts,
		   j->attempts == 1 ? "" : "s", note ? note->summary : cause);
}

/* Its process has been reaped (reap.c): judge its death. */
void death_reaped(struct worker *w, int code, int status)
{
	/* Results and a CRASH frame sent before the death are still in the socket. */
	if (w->state != W_KILLED || !w->kill_reason)
		frames_drain(w);
	death_of(w, code, status);
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
		log_fields(LOG_WARNING, master_lfields(&f, w->pool, w, first, signo, cause),
			   "worker %s %s %s %s; %zu other job%s re-queued", l, how,
			   timeouts ? "after the timeout of" : "in job", names, n - culprits,
			   n - culprits == 1 ? "" : "s");
	else if (v == DEATH_SUSPECTS)
		log_fields(LOG_WARNING, master_lfields(&f, w->pool, w, NULL, signo, NULL),
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
 * Jobs whose command, or contained process, the master killed for their timeout, on a worker
 * that died before their DONE came: blamed `timeout` as if it had, and taken out of the list
 * (they are not part of this death). Returns how many jobs are left.
 */
static size_t blame_killed_commands(struct worker *w, struct job **jobs, uint8_t *flags,
				    size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if ((flags[i] & SLOT_TIMEOUT_KILLED) && !(flags[i] & HELD_TIMED_OUT)) {
			/* A contained run stays alone for its next attempt; a command need not. */
			if (flags[i] & SLOT_CONTAINED)
				ledger_blame(w->m->ledger, jobs[i], CAUSE_TIMEOUT, 0);
			else
				ledger_blame_command(w->m->ledger, jobs[i], CAUSE_TIMEOUT, 0);
			death_log_final(w->m, jobs[i]);
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

enum death_kind death_classify(const struct death_facts *f)
{
	if (f->ending)
		return DEATH_KIND_CANCEL;
	if (f->clean)
		return DEATH_KIND_CLEAN;
	if (f->end == END_INJECT)
		return DEATH_KIND_INJECTED;
	if (f->end == END_STOP && !f->crash_frame && f->signaled &&
	    (f->status == SIGTERM || f->status == SIGKILL))
		return DEATH_KIND_STOPPED;
	if (f->end == END_TIMEOUT && !f->crash_frame && f->signaled && f->status == SIGKILL &&
	    !f->held_timed_out)
		return DEATH_KIND_TIMEOUT_ENDED;
	return DEATH_KIND_EVIDENCE;
}

bool death_counts(const struct death_facts *f)
{
	/*
	 * A clean exit after STOP is no death, and neither is a worker the master ended because
	 * it was to stop and did not in time, or could not be told (still starting).
	 */
	return !f->clean && !(f->end == END_STOP && !f->crash_frame && f->signaled &&
			      (f->status == SIGTERM || f->status == SIGKILL));
}

enum death_after death_next(const struct death_facts *f, bool retire, bool hello,
			    enum death_verdict v)
{
	if (retire)
		return AFTER_TRIM;
	if (f->ending)
		return AFTER_NOTHING;
	if (!hello)
		return AFTER_FAULT_NO_HELLO;
	if (v == DEATH_IDLE && !f->clean)
		return AFTER_FAULT_IDLE;
	return v == DEATH_CULPRIT ? AFTER_RESTART_RESET : AFTER_RESTART;
}

/* Bookkeeping of a death that counts: the slot's last death, the master's counts. */
static void count_death(struct worker *w, bool signaled, int status)
{
	struct master *m = w->m;
	char sig[16];

	const char *why = w->fenced ? " (lease lost)" : w->injected ? " (injected)" : "";

	if (w->died_oom)
		snprintf(w->last_death, sizeof(w->last_death), "memory (%s)%s",
			 signal_name(status, sig, sizeof(sig)), why);
	else if (signaled)
		snprintf(w->last_death, sizeof(w->last_death), "%s%s",
			 signal_name(status, sig, sizeof(sig)), why);
	else
		snprintf(w->last_death, sizeof(w->last_death), "exit(%d)%s", status, why);
	if (w->injected && !w->fenced)
		m->stats.injected++;
	if (w->died_oom)
		m->stats.deaths_by_memory++;
	else if (signaled && status > 0 && status < 65)
		m->stats.deaths_by_signal[status]++;
	else if (!signaled)
		m->stats.deaths_by_exit++;
}

/* The jobs a dead worker held, judged by what kind of death it was. Returns the verdict. */
static enum death_verdict judge(struct worker *w, enum death_kind kind, bool signaled,
				int status, const char *l, const char *how, struct job **jobs,
				uint8_t *flags, size_t n)
{
	struct master *m = w->m;
	struct pool *p = w->pool;
	struct lfields f;

	switch (kind) {
	case DEATH_KIND_CANCEL: {
		enum job_cause cause = p->state == POOL_FAILED    ? CAUSE_POOL_FAILED
				       : p->state == POOL_REMOVED ? CAUSE_POOL_REMOVED
								  : CAUSE_STOPPED;

		if (cause == CAUSE_STOPPED && master_keeps_jobs(m)) {
			/* Killed by our own stop: nobody's fault, they run at the next start. */
			for (size_t i = 0; i < n; i++)
				ledger_bystander(m->ledger, jobs[i], false);
			return DEATH_IDLE;
		}
		log_cancelled(w, l, jobs, n, cause);
		for (size_t i = 0; i < n; i++)
			ledger_cancel(m->ledger, jobs[i], cause);
		return DEATH_IDLE;
	}
	case DEATH_KIND_CLEAN:
		/* Stopped on purpose (a reload): it finished what it had started. */
		for (size_t i = 0; i < n; i++)
			ledger_bystander(m->ledger, jobs[i], false);
		return DEATH_IDLE;
	case DEATH_KIND_INJECTED:
		/* bulkhead inject did it: nobody's fault; every job it held runs again. */
		n = blame_killed_commands(w, jobs, flags, n);
		for (size_t i = 0; i < n; i++)
			ledger_bystander(m->ledger, jobs[i], flags[i] & HELD_STARTED);
		if (w->fenced) /* a shared store's self-fencing: nobody's fault either */
			log_fields(LOG_WARNING,
				   master_lfields(&f, p, w, NULL, signaled ? status : 0, "fenced"),
				   "worker %s %s (a job's lease was lost: another node runs it); %zu "
				   "job%s re-queued",
				   l, how, n, n == 1 ? "" : "s");
		else
			log_fields(LOG_WARNING,
				   master_lfields(&f, p, w, NULL, signaled ? status : 0,
						  "injected"),
				   "worker %s %s (injected: %s); %zu job%s re-queued", l, how,
				   w->injected, n, n == 1 ? "" : "s");
		return DEATH_CULPRIT; /* restart at once: not a worker fault */
	case DEATH_KIND_STOPPED:
		/*
		 * We asked it to stop (a reload, a restart) and ended it ourselves when it did not
		 * in time (SIGTERM, then SIGKILL): nobody's fault, except a job that timed out.
		 */
		n = blame_killed_commands(w, jobs, flags, n);
		for (size_t i = 0; i < n; i++) {
			if (flags[i] & HELD_TIMED_OUT)
				ledger_blame(m->ledger, jobs[i], CAUSE_TIMEOUT, 0);
			else
				ledger_bystander(m->ledger, jobs[i], flags[i] & HELD_STARTED);
			death_log_final(m, jobs[i]);
		}
		log_fields(LOG_NOTICE, master_lfields(&f, p, w, NULL, status, "stopped"),
			   "worker %s %s after it was asked to stop; %zu job%s re-queued", l, how,
			   n, n == 1 ? "" : "s");
		return DEATH_CULPRIT;
	case DEATH_KIND_TIMEOUT_ENDED:
		/*
		 * We killed it for a job's timeout, and that job's result came in before it died
		 * (late, but it ended): nobody's fault, and not a worker fault; what it still
		 * held runs again.
		 */
		n = blame_killed_commands(w, jobs, flags, n);
		for (size_t i = 0; i < n; i++)
			ledger_bystander(m->ledger, jobs[i], flags[i] & HELD_STARTED);
		log_fields(LOG_NOTICE, master_lfields(&f, p, w, NULL, status, "timeout"),
			   "worker %s %s by the master for a job's timeout; the job ended "
			   "meanwhile; %zu job%s re-queued",
			   l, how, n, n == 1 ? "" : "s");
		return DEATH_CULPRIT;
	case DEATH_KIND_EVIDENCE:
	default: {
		struct death d = {
			.crash_frame = w->crash_frame,
			.crash_job = w->crash.job_id,
			.crash_kind = w->crash.kind,
			.crash_signo = w->crash.signo,
			.signaled = signaled,
			.status = status,
			.solo = w->mode == MODE_SOLO,
			.oom = w->died_oom,
		};
		enum death_verdict v;

		n = blame_killed_commands(w, jobs, flags, n);
		if (n == 0)
			return DEATH_IDLE;
		v = ledger_worker_died(m->ledger, &d, jobs, flags, n);
		log_death(w, how, signaled ? status : 0, l, jobs, flags, n, v);
		for (size_t i = 0; i < n; i++)
			death_log_final(m, jobs[i]);
		return v;
	}
	}
}

static void death_of(struct worker *w, int code, int status)
{
	struct master *m = w->m;
	struct pool *p = w->pool;
	struct job *jobs[BH_ASSIGN_MAX * 2];
	uint8_t flags[BH_ASSIGN_MAX * 2];
	bool signaled = code != CLD_EXITED, hello = w->ready_at != 0;
	usec_t uptime = now_usec() - w->spawned_at;
	struct death_facts facts;
	enum death_verdict v;
	char l[64], how[64], what[96];
	size_t n;

	slot_label(w, l, sizeof(l));
	if (w->cg_fd >= 0) {
		/* The OOM killer's doing if memory.events counted a kill since it started; then
		 * whatever its jobs started and left in its cgroup goes too. */
		w->died_oom = signaled && status == SIGKILL &&
			      cgroup_slot_oom_kills(w->cg_fd) > w->oom_base;
		(void)cgroup_slot_kill(w->cg_fd);
	}
	describe_death(w, signaled, status, how, sizeof(how));
	inflight_kill_commands(w); /* no command of its jobs outlives it */
	free(w->held);
	w->held = NULL;
	n = inflight_collect(w, jobs, flags);
	idmap_clear(&w->specs); /* a new process knows none */
	w->forgets_pending = false;
	w->idle_specs = 0;

	facts = (struct death_facts){
		.ending = m->stopping || p->state != POOL_UP,
		.clean = w->state == W_STOPPING && !signaled && status == 0,
		.end = w->end,
		.crash_frame = w->crash_frame,
		.signaled = signaled,
		.status = status,
		.held_timed_out = held_timed_out(flags, n),
	};
	if (death_counts(&facts))
		count_death(w, signaled, status);
	v = judge(w, death_classify(&facts), signaled, status, l, how, jobs, flags, n);

	w->io = sd_event_source_disable_unref(w->io);
	w->child = sd_event_source_disable_unref(w->child);
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	w->pid = 0;
	slot_set_state(w, W_EMPTY);
	w->mode = MODE_SHARED;
	w->blocked = false;
	m->n_alive--;
	if (hello && !w->spare && !w->dying)
		m->stats.workers_up--; /* a dying one's slot has the spare's process, still up */

	switch (death_next(&facts, w->next == NEXT_RETIRE, hello, v)) {
	case AFTER_TRIM:
		if (w->dying) {
			spare_dead(w); /* frees w; what it held was re-queued */
			dispatch_pool(p);
		} else if (w->spare)
			spare_retired(p, w); /* frees w */
		else
			pool_trim_slots(p);
		break;
	case AFTER_NOTHING:
		break;
	case AFTER_FAULT_NO_HELLO:
		w->spare_hold = w->spare; /* its alone jobs go to a shared worker meanwhile */
		snprintf(what, sizeof(what), "%s before HELLO", how);
		slot_fault(w, uptime, what);
		dispatch_pool(p);
		break;
	case AFTER_FAULT_IDLE:
		w->spare_hold = w->spare;
		snprintf(what, sizeof(what), "%s with no job in flight", how);
		slot_fault(w, uptime, what);
		dispatch_pool(p);
		break;
	case AFTER_RESTART_RESET:
		backoff_reset(&w->backoff);
		slot_schedule_restart(w, 0);
		dispatch_pool(p);
		break;
	case AFTER_RESTART:
		slot_schedule_restart(w, 0);
		dispatch_pool(p);
		break;
	}
	pool_roll_next(p);
	master_check_done(m);
}
