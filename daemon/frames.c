/* SPDX-License-Identifier: MIT */
/*
 * Frames from a worker: every one checked (state, type, length, job ids) before use; a
 * worker that breaks the protocol is killed. HELLO, DONE (results, and the special outcomes
 * of exec: jobs, cancels and contained runs), CRASH, RESULT, PROGRESS, EXEC.
 *
 * Contained runs (BH_ASSIGN_CONTAIN, children/contain.c): a job that must run alone is run by
 * its worker in a throwaway child. Its crash comes as a CRASH frame marked BH_CRASH_CONTAINED
 * (kept in w->contained: the worker is not dying), maybe its CRASH_INFO, then its DONE entry
 * with a DIED outcome, blamed like the death of a worker that ran the job alone.
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
#include <sys/fsuid.h>
#include <unistd.h>

#include "common/idmap.h"
#include "common/log.h"
#include "common/protocol.h"
#include "config/probe.h"
#include "daemon/cgroup.h"
#include "daemon/master-int.h"
#include "daemon/store.h"
#include "daemon/notify.h"
#include "daemon/policy.h"
#include "daemon/spawn-worker.h"

static int handle_done(struct worker *w, const struct bh_frame *f);

static int handle_hello(struct worker *w, const struct bh_frame *f)
{
	char l[64];

	if (w->state != W_STARTING)
		return -EPROTO;
	if (f->hello.pid != w->pid || f->hello.threads != w->q.threads)
		return -EPROTO;
	slot_set_state(w, W_READY);
	slot_timer_off(w);
	slot_cgroup_attach_spawner(w);
	log_debug("worker %s ready", slot_label(w, l, sizeof(l)));
	if (w->spare) {
		spare_ready(w);
		return 0;
	}
	w->m->stats.workers_up++;
	if (w->m->opts.on_worker_ready)
		w->m->opts.on_worker_ready(w->m->opts.userdata, w->pool->index, w->index, w->pid,
					   now_usec());
	dispatch_fill(w);
	pool_roll_next(w->pool);
	master_check_ready(w->m);
	return 0;
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
 * A contained run's process died (DIED_SIGNAL, DIED_EXIT): blamed like the death of a worker
 * that ran the job alone (death.c), by its CRASH frame's kind if one came, else by how it died
 * (a SIGKILL while the slot's cgroup counted an OOM kill: memory). The worker lives on.
 */
static void finish_died(struct worker *w, struct job *j, const struct bh_done_entry *e)
{
	struct master *m = w->m;
	const struct bh_crash *c = w->contained.job_id == j->id ? &w->contained : NULL;
	const struct group_config *gc = ledger_group(m->ledger, j->group);
	char name[64], cause[64];
	enum job_cause why;
	struct lfields f;
	uint64_t ooms;
	int detail;

	if (c && c->kind == BH_CRASH_OOM) {
		why = CAUSE_MEMORY;
		detail = c->signo;
	} else if (c && c->kind == BH_CRASH_EXIT) {
		why = CAUSE_EXIT;
		detail = e->outcome == BH_OUTCOME_DIED_EXIT ? e->status : 0;
	} else if (c) {
		why = CAUSE_SIGNAL;
		detail = c->signo;
	} else if (e->outcome == BH_OUTCOME_DIED_EXIT) {
		why = CAUSE_EXIT;
		detail = e->status;
	} else if (e->status == SIGKILL &&
		   (ooms = cgroup_slot_oom_kills(w->cg_fd)) > w->oom_base) {
		w->oom_base = ooms; /* counted here: the worker's own death is judged afresh */
		why = CAUSE_MEMORY;
		detail = e->status;
	} else {
		why = CAUSE_SIGNAL;
		detail = e->status;
	}
	w->contained.job_id = 0;
	m->stats.contained_crashes++;
	ledger_blame(m->ledger, j, why, detail);
	if (j->state != JOB_QUEUED)
		return; /* its end is logged by death_log_final() */
	log_fields(LOG_WARNING,
		   master_lfields(&f, w->pool, w, j, why == CAUSE_SIGNAL ? detail : 0,
				  ledger_cause_string(j, cause, sizeof(cause))),
		   "job %s crashed in its contained process: %s (attempt %u of %u); the worker "
		   "lives on",
		   ledger_job_name(m->ledger, j, name, sizeof(name)), cause, j->attempts,
		   gc->max_attempts);
}

/* A contained run the master killed for its timeout: blamed `timeout`; the worker lives on. */
static void timed_out_contained(struct worker *w, struct job *j)
{
	struct master *m = w->m;
	const struct group_config *gc = ledger_group(m->ledger, j->group);
	char name[64];
	struct lfields f;

	if (w->contained.job_id == j->id)
		w->contained.job_id = 0;
	ledger_blame(m->ledger, j, CAUSE_TIMEOUT, 0);
	if (j->state == JOB_QUEUED)
		log_fields(LOG_WARNING, master_lfields(&f, w->pool, w, j, 0, "timeout"),
			   "job %s: its contained process was killed for its timeout (attempt %u "
			   "of %u); the worker lives on",
			   ledger_job_name(m->ledger, j, name, sizeof(name)), j->attempts,
			   gc->max_attempts);
}

/*
 * A DONE entry that is not a plain return, or of a worker running commands or told to stop:
 * an exec: job's command was killed by a signal (blamed on the job; the worker lives on),
 * could not start, or returned; a contained run's process died. Called after
 * inflight_untrack().
 */
static int finish_special(struct worker *w, struct job *j, const struct bh_done_entry *e,
			  bool killed, bool contained)
{
	struct master *m = w->m;
	const struct group_config *gc = ledger_group(m->ledger, j->group);
	char name[64], sig[16];
	struct lfields f;

	if (e->outcome == BH_OUTCOME_CANCELLED && killed && !(j->flags & JOB_CANCEL_REQUESTED)) {
		/* A contained run killed for its timeout before its thread took it: as killed. */
		timed_out_contained(w, j);
		return 0;
	}
	if (e->outcome == BH_OUTCOME_CANCELLED) {
		/* Never started (handle_done() checked we asked for it): no attempt counted. */
		ledger_cancel(m->ledger, j, CAUSE_CANCELLED);
		return 0;
	}
	if (e->outcome == BH_OUTCOME_DIED_SIGNAL || e->outcome == BH_OUTCOME_DIED_EXIT) {
		if (!contained)
			return -EPROTO;
	} else if (e->outcome != BH_OUTCOME_RETURNED && gc->kind != JOB_KIND_EXEC) {
		return -EPROTO;
	}
	if (w->end == END_STOP && (e->outcome != BH_OUTCOME_RETURNED || e->status != 0)) {
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
				   master_lfields(&f, w->pool, w, j, killed ? 0 : e->status,
						  killed ? "timeout" : NULL),
				   "job %s: its command was killed %s%s (attempt %u of %u); the "
				   "worker lives on",
				   ledger_job_name(m->ledger, j, name, sizeof(name)),
				   killed ? "for its timeout" : "by ",
				   killed ? "" : signal_name(e->status, sig, sizeof(sig)),
				   j->attempts, gc->max_attempts);
		break;
	case BH_OUTCOME_DIED_SIGNAL:
	case BH_OUTCOME_DIED_EXIT:
		if (j->flags & JOB_CANCEL_REQUESTED)
			ledger_cancel(m->ledger, j, CAUSE_CANCELLED); /* contain.c killed it */
		else if (killed)
			timed_out_contained(w, j); /* killed for its timeout (inflight.c) */
		else
			finish_died(w, j, e);
		break;
	case BH_OUTCOME_SPAWN_FAILED:
		ledger_spawn_failed(m->ledger, j, e->status);
		if (j->state == JOB_QUEUED)
			log_fields(LOG_WARNING,
				   master_lfields(&f, w->pool, w, j, 0, "spawn failed"),
				   "job %s: its command could not start: %s (attempt %u of %u)",
				   ledger_job_name(m->ledger, j, name, sizeof(name)),
				   strerror(e->status), j->attempts, gc->max_attempts);
		break;
	default:
		return -EPROTO;
	}
	return 0;
}

/* What a DONE frame teaches the run-time estimate (see master-int.h). */
void run_learn_init(struct run_learn *rl, uint64_t run_est)
{
	*rl = (struct run_learn){ .clip = run_est ? (4 * run_est + 15) / 16 : 0 };
}

void run_learn_add(struct run_learn *rl, uint32_t run_usec)
{
	rl->sum += run_usec;
	if (rl->clip && run_usec > rl->clip) {
		rl->clipped += rl->clip;
		rl->over++;
	} else {
		rl->clipped += run_usec;
	}
}

uint64_t run_learn_sum(const struct run_learn *rl, unsigned threads)
{
	return rl->clip == 0 || rl->over > threads ? rl->sum : rl->clipped;
}

static int handle_done(struct worker *w, const struct bh_frame *f)
{
	struct master *m = w->m;
	usec_t now = now_usec();
	struct run_learn rl;

	if (w->state < W_READY)
		return -EPROTO;
	run_learn_init(&rl, w->pool->run_est);
	for (uint32_t i = 0; i < f->done.count; i++) {
		struct bh_done_entry e;
		struct flight *fl;
		struct job *j;

		if (i + 8 < f->done.count) {
			bh_frame_done_entry(f, i + 8, &e);
			flights_prefetch(&m->flights, e.job_id);
		}
		bh_frame_done_entry(f, i, &e);
		fl = inflight_find(w, e.job_id);
		j = fl ? fl->job : NULL;
		if (!j || j->state != JOB_RUNNING ||
		    (e.outcome == BH_OUTCOME_CANCELLED && !(j->flags & JOB_CANCEL_REQUESTED) &&
		     !(fl->flags & SLOT_TIMEOUT_KILLED)))
			return -EPROTO;
		run_learn_add(&rl, e.run_usec);
		if (e.outcome != BH_OUTCOME_CANCELLED) /* as the worker timed it, in µs */
			histogram_observe(&w->pool->run_time, (double)e.run_usec / 1e6);
		if (__builtin_expect(e.outcome | w->n_execs | (w->end == END_STOP), 0)) {
			struct exec_run *x = inflight_exec_find(w, j);
			bool killed = fl->slot >= 0 && (fl->flags & SLOT_TIMEOUT_KILLED);
			bool contained = fl->flags & SLOT_CONTAINED;
			int r;

			if (x)
				inflight_exec_forget(w, x);
			inflight_untrack(w, fl);
			r = finish_special(w, j, &e, killed, contained);
			if (r < 0)
				return r;
		} else {
			inflight_untrack(w, fl);
			ledger_finish(m->ledger, j, e.status);
		}
		dispatch_spec_release(w, j);
		death_log_final(m, j);
		inflight_promote(w, now);
	}
	dispatch_flush_forgets(w);
	dispatch_learn(w->pool, run_learn_sum(&rl, w->q.threads), f->done.count);
	if (inflight_count(w) == 0)
		w->mode = MODE_SHARED;
	if (w->state == W_DRAINING && w->end == END_TIMEOUT && w->n_timed_out == 0)
		slot_resume(w); /* the jobs that timed out ended after all */
	if (w->state == W_DRAINING && inflight_count(w) == w->n_timed_out)
		slot_kill(w, END_TIMEOUT, NULL);
	else
		dispatch_fill(w);
	return 0;
}

/* The job a RESULT, PROGRESS or EXEC frame names: in flight on this worker, else NULL. */
static struct job *job_in_flight(struct worker *w, uint64_t id)
{
	struct flight *f = w->state < W_READY ? NULL : inflight_find(w, id);

	if (!f || f->job->state != JOB_RUNNING)
		return NULL;
	return f->job;
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
 *
 * A master that is not root, under ProtectProc=invisible (the unit), cannot see processes of
 * another uid in /proc: it reads with the worker's ids as its file-system ids (setfsuid, which
 * its CAP_SETUID allows), and so sees exactly what that uid may see, then takes its own back.
 */
static bool is_command_of(const struct worker *w, pid_t pid)
{
	bool as_worker = w->uid != (uid_t)-1 && geteuid() != 0;
	uid_t fsuid = 0;
	gid_t fsgid = 0;
	int ppid, pgrp, tppid, tpgrp;
	bool ok;

	if (as_worker) {
		fsgid = (gid_t)setfsgid(w->gid);
		fsuid = (uid_t)setfsuid(w->uid);
	}
	ok = proc_ids(pid, &ppid, &pgrp) && pgrp == pid &&
	     (ppid == w->pid ||
	      (proc_ids(ppid, &tppid, &tpgrp) && tppid == w->pid && tpgrp == ppid));
	if (as_worker) {
		setfsuid(fsuid);
		setfsgid(fsgid);
	}
	return ok;
}

static int handle_exec(struct worker *w, const struct bh_frame *f)
{
	struct job *j = job_in_flight(w, f->exec.job_id);
	struct exec_run *x;

	if (!j || ledger_group(w->m->ledger, j->group)->kind != JOB_KIND_EXEC ||
	    inflight_exec_find(w, j))
		return -EPROTO;
	/*
	 * A command that already ended (and was reaped) is not there to kill: nothing to keep.
	 * Else it cannot be reaped before the job's DONE, so its pid stays its own until then.
	 */
	if (!is_command_of(w, f->exec.pid))
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

/* A line of the job's log (a LOG frame's, or the master's own): kept, and told to followers. */
static void job_log(struct worker *w, struct job *j, int level, const char *text, size_t len)
{
	struct log_line line;

	if (ledger_add_log(w->m->ledger, j, level, text, len, &line) >= 0)
		MASTER_EMIT(w->m, on_job_log, &line);
}

/*
 * CRASH_INFO, after the CRASH frame of the same job: the summary and the frames become the
 * job's log lines (kept as long as its logs, in every store) and its crash note (the views);
 * a crash outside any job is logged as the worker's. It never changes the blame.
 */
static void handle_crash_info(struct worker *w, const struct bh_crash_info *ci)
{
	char summary[CRASH_SUMMARY_MAX], line[CRASH_SUMMARY_MAX + 16], label[64];
	const struct bh_crash *c;
	unsigned i = 0;
	struct job *j;

	if (w->contained.job_id != 0 && !w->contained_info && ci->job_id == w->contained.job_id) {
		w->contained_info = true;
		c = &w->contained;
	} else if (w->crash_frame && !w->crash_info && ci->job_id == w->crash.job_id) {
		w->crash_info = true;
		c = &w->crash;
	} else {
		log_debug("worker %s: CRASH_INFO without its CRASH frame, ignored",
			  slot_label(w, label, sizeof(label)));
		return;
	}
	crash_summary(c, ci, summary, sizeof(summary));
	j = ci->job_id ? job_in_flight(w, ci->job_id) : NULL;
	if (!j) {
		log_warning("worker %s: %s; frames: %.*s", slot_label(w, label, sizeof(label)),
			    summary, (int)ci->len, ci->text);
		return;
	}
	snprintf(line, sizeof(line), "crash: %s", summary);
	job_log(w, j, LOG_ERR, line, strlen(line));
	/* The decoder checked that every frame ends with '\n'. */
	for (const char *p = ci->text, *end = p + ci->len, *nl; p < end; p = nl + 1, i++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		snprintf(line, sizeof(line), "crash: #%u %.*s", i, (int)(nl - p), p);
		job_log(w, j, LOG_ERR, line, strlen(line));
	}
	if (crash_notes_set(&w->m->crash_notes, j->id, summary, ci->text, ci->len) < 0)
		log_warning("no memory for the crash note of job %llu",
			    (unsigned long long)j->id);
}

/* A contained run's crash: kept for the DIED entry that follows; the worker is not dying. */
static int handle_contained_crash(struct worker *w, const struct bh_crash *c)
{
	struct flight *fl = w->state < W_READY ? NULL : inflight_find(w, c->job_id);

	if (!fl || fl->job->state != JOB_RUNNING || !(fl->flags & SLOT_CONTAINED))
		return -EPROTO;
	w->contained = *c;
	w->contained_info = false;
	crash_notes_forget(&w->m->crash_notes, c->job_id);
	return 0;
}

static int handle_frame(struct worker *w, const void *buf, size_t len)
{
	struct bh_frame f;
	int r = bh_frame_decode(buf, len, &f);

	if (r < 0 && w->crash_frame) {
		char label[64];

		/* A dying worker's diagnostics: never a reason to change its blame. */
		log_debug("worker %s: bad frame after CRASH (%s), ignored",
			  slot_label(w, label, sizeof(label)), strerror(-r));
		return 0;
	}
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
		if (f.crash.flags & BH_CRASH_CONTAINED)
			return handle_contained_crash(w, &f.crash);
		if (!w->crash_frame) {
			w->crash_frame = true;
			w->crash = f.crash;
			crash_notes_forget(&w->m->crash_notes, f.crash.job_id);
		}
		return 0;
	case BH_FRAME_CRASH_INFO:
		handle_crash_info(w, &f.crash_info);
		return 0;
	case BH_FRAME_RESULT: {
		struct job *j = job_in_flight(w, f.text.job_id);

		if (!j)
			return -EPROTO;
		ledger_set_result(w->m->ledger, j, f.text.text, f.text.len);
		return 0;
	}
	case BH_FRAME_LOG: {
		struct job *j = job_in_flight(w, f.text.job_id);

		if (!j)
			return -EPROTO;
		job_log(w, j, f.text.level, f.text.text, f.text.len);
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
bool frames_drain(struct worker *w)
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
			slot_kill(w, END_BROKEN, reason);
			return false;
		}
		if (w->state == W_KILLED)
			return false;
	}
}

int frames_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct worker *w = userdata;

	if (revents & EPOLLOUT) {
		int r = w->held ? slot_send(w, w->held, w->held_len) : 0;

		if (r != -EAGAIN) {
			bool sent = w->held && r >= 0;

			free(w->held);
			w->held = NULL;
			w->n_held = 0;
			w->blocked = false;
			sd_event_source_set_io_events(s, EPOLLIN);
			if (sent)
				inflight_promote(w,
						 now_usec()); /* its jobs reach the threads now */
			dispatch_flush_forgets(w);
			dispatch_fill(w);
		}
	}
	if ((revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !frames_drain(w))
		sd_event_source_set_enabled(s, SD_EVENT_OFF); /* the exit follows */
	else if (w->crash_frame)
		(void)spare_step_in(w); /* its process is going: the spare takes the slot now */
	master_check_done(w->m);
	return 0;
}
