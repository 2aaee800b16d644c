/* SPDX-License-Identifier: MIT */
/*
 * Standalone runs of the worker binary, the baselines of `bulkhead experiment` (DESIGN §8):
 * the same job code as a supervised worker, without the supervisor.
 *
 *   bulkhead-worker --standalone threads|fork-per-job --jobs N --threads T
 *                   --run builtin:NAME [--args "k=v ..."] [--result-fd FD]
 *
 * threads: one process, a bare pthread pool of T threads over job ids 1..N. The next id is
 *   a counter under one mutex (one lock round trip per job, like any plain pool). No crash
 *   handler, no supervisor: the first crash ends the process, and every job not completed
 *   by then is lost.
 * fork-per-job: one process per job, at most T alive at once. A child runs its one job and
 *   _exit()s with its status. A child killed by a signal (or exiting non-zero) is run again,
 *   BH_STANDALONE_ATTEMPTS attempts in all; then its job is quarantined (signal) or failed.
 *   Nothing is lost, and nothing is shared: each job pays a fork.
 *
 * Jobs run through the worker's own job specs: job_spec_new() resolves and checks the builtin
 * and its args once, job_spec_run() runs one job (and applies the common crash=P argument),
 * as pool.c does in a supervised worker. The ids are 1..N, as the ledger numbers the jobs of a
 * one-group run, so crash=P picks the same ids in every mode.
 *
 * Counters (common/standalone.h) live in the shared file given with --result-fd (else in an
 * anonymous shared mapping, and a summary is printed at the end): one slot per job thread on
 * its own cache line, written with relaxed atomic stores, so they survive a crash and cost
 * no system call per job. The fork-per-job parent is single-threaded and uses slot 0.
 *
 * Exit codes: 0 every job ran (whatever its end), 2 usage, 4 start-up failure; a crash in
 * threads mode kills the process by its signal.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sched-slice.h"
#include "common/standalone.h"
#include "common/units.h"
#include "job-spec.h"
#include "pool.h"
#include "standalone.h"
#include "worker.h"

#define STANDALONE_JOBS_MAX 10000000ull
#define FORK_RETRY_NSEC (1000 * 1000) /* fork() said EAGAIN: try again this much later */

enum standalone_mode {
	MODE_THREADS,
	MODE_FORK_PER_JOB,
};

struct standalone {
	enum standalone_mode mode;
	uint64_t jobs;
	unsigned threads;
	const char *run;
	const char *args;
	int result_fd; /* -1: none */

	struct job_spec *spec;
	struct bh_standalone_slot *slots;
	size_t slots_size;

	pthread_mutex_t lock;
	uint64_t next_id; /* under lock */
};

struct standalone_thread {
	struct standalone *s;
	unsigned index;
	pthread_t tid;
};

static void usage(FILE *f)
{
	fputs("usage: bulkhead-worker --standalone threads|fork-per-job --jobs N --threads T\n"
	      "                       --run builtin:NAME [--args \"k=v ...\"] [--result-fd FD]\n"
	      "Runs N jobs with no supervisor (the baselines of bulkhead experiment).\n",
	      f);
}

static int parse_args(int argc, char **argv, struct standalone *s)
{
	static const struct option longopts[] = { { "standalone", required_argument, NULL, 's' },
						  { "jobs", required_argument, NULL, 'n' },
						  { "threads", required_argument, NULL, 't' },
						  { "run", required_argument, NULL, 'r' },
						  { "args", required_argument, NULL, 'a' },
						  { "result-fd", required_argument, NULL, 'f' },
						  { "help", no_argument, NULL, 'h' },
						  {} };
	bool have_mode = false;
	uint64_t v;
	int c;

	s->jobs = 0;
	s->threads = 0;
	s->args = "";
	s->result_fd = -1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0) {
		switch (c) {
		case 's':
			if (strcmp(optarg, BH_STANDALONE_THREADS) == 0)
				s->mode = MODE_THREADS;
			else if (strcmp(optarg, BH_STANDALONE_FORK_PER_JOB) == 0)
				s->mode = MODE_FORK_PER_JOB;
			else {
				log_error("--standalone %s: expected %s or %s", optarg,
					  BH_STANDALONE_THREADS, BH_STANDALONE_FORK_PER_JOB);
				return -EINVAL;
			}
			have_mode = true;
			break;
		case 'n':
			if (parse_uint(optarg, 1, STANDALONE_JOBS_MAX, &v) < 0) {
				log_error("--jobs %s: expected an integer 1..%llu", optarg,
					  STANDALONE_JOBS_MAX);
				return -EINVAL;
			}
			s->jobs = v;
			break;
		case 't':
			if (parse_uint(optarg, 1, POOL_THREADS_MAX, &v) < 0) {
				log_error("--threads %s: expected an integer 1..%d", optarg,
					  POOL_THREADS_MAX);
				return -EINVAL;
			}
			s->threads = (unsigned)v;
			break;
		case 'r':
			s->run = optarg;
			break;
		case 'a':
			s->args = optarg;
			break;
		case 'f':
			if (parse_uint(optarg, 0, INT32_MAX, &v) < 0) {
				log_error("--result-fd %s: expected a file descriptor", optarg);
				return -EINVAL;
			}
			s->result_fd = (int)v;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			log_error("unknown or incomplete option '%s'", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (!have_mode || s->jobs == 0 || s->threads == 0 || !s->run) {
		log_error("--standalone, --jobs, --threads and --run are required");
		return -EINVAL;
	}
	return 0;
}

/* Maps the counters: the caller's shared file, or an anonymous shared mapping. */
static int map_slots(struct standalone *s)
{
	unsigned n = s->mode == MODE_THREADS ? s->threads : 1;
	struct stat st;
	void *p;

	s->slots_size = bh_standalone_size(n);
	if (s->result_fd >= 0) {
		if (fstat(s->result_fd, &st) < 0)
			return log_error_errno(-errno, "--result-fd %d", s->result_fd);
		if ((uint64_t)st.st_size < s->slots_size) {
			log_error("--result-fd %d: %lld bytes, %zu needed", s->result_fd,
				  (long long)st.st_size, s->slots_size);
			return -EINVAL;
		}
		p = mmap(NULL, s->slots_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->result_fd, 0);
	} else {
		p = mmap(NULL, s->slots_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			 -1, 0);
	}
	if (p == MAP_FAILED)
		return log_error_errno(-errno, "cannot map the result counters");
	s->slots = p;
	return 0;
}

static void count(_Atomic uint64_t *c, uint64_t *local)
{
	atomic_store_explicit(c, ++*local, memory_order_relaxed);
}

/* --- threads --- */

static void *thread_main(void *arg)
{
	struct standalone_thread *t = arg;
	struct standalone *s = t->s;
	struct bh_standalone_slot *slot = &s->slots[t->index];
	struct bulkhead_job job = { .spec = s->spec };
	uint64_t done = 0, failed = 0;
	char name[16];

	snprintf(name, sizeof(name), "standalone:%u", t->index);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		uint64_t id;

		pthread_mutex_lock(&s->lock);
		id = s->next_id++;
		pthread_mutex_unlock(&s->lock);
		if (id > s->jobs)
			break;
		job.id = id;
		job.id_str[0] = '\0';
		if (job_spec_run(&job) == 0)
			count(&slot->done, &done);
		else
			count(&slot->failed, &failed);
	}
	return NULL;
}

static int run_threads(struct standalone *s)
{
	struct standalone_thread *t;
	pthread_attr_t attr;
	unsigned started = 0;
	int r = 0;

	t = calloc(s->threads, sizeof(*t));
	if (!t)
		return -ENOMEM;
	s->next_id = 1;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, POOL_THREAD_STACK);
	for (unsigned i = 0; i < s->threads; i++) {
		t[i] = (struct standalone_thread){ .s = s, .index = i };
		r = -pthread_create(&t[i].tid, &attr, thread_main, &t[i]);
		if (r < 0) {
			log_error_errno(r, "cannot start job thread %u", i);
			/* The threads already started finish the jobs; lost nothing. */
			break;
		}
		started++;
	}
	pthread_attr_destroy(&attr);
	for (unsigned i = 0; i < started; i++)
		pthread_join(t[i].tid, NULL);
	free(t);
	return started > 0 ? 0 : r;
}

/* --- fork-per-job --- */

struct child {
	pid_t pid; /* 0: free */
	uint64_t id;
	unsigned attempt; /* 1.. */
};

static _Noreturn void child_run(struct standalone *s, uint64_t id)
{
	struct bulkhead_job job = { .id = id, .spec = s->spec };
	int status;

	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	status = job_spec_run(&job);
	_exit(status == 0 ? 0 : (status & 0xff) ? status & 0xff : 1);
}

static int child_start(struct standalone *s, struct child *c, uint64_t id, unsigned attempt)
{
	pid_t pid;

	for (;;) {
		pid = fork();
		if (pid >= 0)
			break;
		if (errno != EAGAIN)
			return log_error_errno(-errno, "fork");
		nanosleep(&(struct timespec){ .tv_nsec = FORK_RETRY_NSEC }, NULL);
	}
	if (pid == 0)
		child_run(s, id);
	*c = (struct child){ .pid = pid, .id = id, .attempt = attempt };
	return 0;
}

static int run_fork_per_job(struct standalone *s)
{
	struct bh_standalone_slot *slot = &s->slots[0];
	uint64_t next = 1, done = 0, failed = 0, quarantined = 0, retries = 0;
	struct child *kids;
	unsigned alive = 0;
	int r = 0;

	kids = calloc(s->threads, sizeof(*kids));
	if (!kids)
		return -ENOMEM;
	for (;;) {
		struct child *c = NULL;
		int st;
		pid_t pid;

		for (unsigned i = 0; i < s->threads && next <= s->jobs; i++) {
			if (kids[i].pid)
				continue;
			r = child_start(s, &kids[i], next, 1);
			if (r < 0)
				goto out;
			next++;
			alive++;
		}
		if (alive == 0)
			break;
		pid = waitpid(-1, &st, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			r = log_error_errno(-errno, "waitpid");
			goto out;
		}
		for (unsigned i = 0; i < s->threads; i++)
			if (kids[i].pid == pid)
				c = &kids[i];
		if (!c)
			continue; /* not one of ours (cannot happen: we start no other child) */
		c->pid = 0;
		alive--;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			count(&slot->done, &done);
			continue;
		}
		if (c->attempt < BH_STANDALONE_ATTEMPTS) {
			count(&slot->retries, &retries);
			r = child_start(s, c, c->id, c->attempt + 1);
			if (r < 0)
				goto out;
			alive++;
			continue;
		}
		if (WIFSIGNALED(st))
			count(&slot->quarantined, &quarantined);
		else
			count(&slot->failed, &failed);
	}
out:
	/* On an error, the children still running die with us (PR_SET_PDEATHSIG). */
	free(kids);
	return r;
}

int standalone_main(int argc, char **argv)
{
	struct standalone s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	sigset_t none;
	int r;

	/* Dies with whoever started it (the experiment), like a worker with its master. */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	(void)sched_slice_set(0); /* the bare pool's threads: the default slice, as jobs have */
	log_set_program("bulkhead-worker[standalone]");
	if (parse_args(argc, argv, &s) < 0) {
		usage(stderr);
		return WORKER_EXIT_USAGE;
	}
	/* A caller's blocked signals (the master blocks SIGCHLD, SIGINT, SIGTERM) pass exec. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	r = job_spec_new(0, s.run, strlen(s.run), s.args, strlen(s.args), &s.spec);
	if (r < 0) {
		log_error_errno(r, "cannot build the job");
		return WORKER_EXIT_START;
	}
	if (!s.spec->kind) {
		job_spec_free(s.spec);
		return WORKER_EXIT_USAGE; /* job_spec_new() said why */
	}
	r = map_slots(&s);
	if (r < 0) {
		job_spec_free(s.spec);
		return WORKER_EXIT_START;
	}

	r = s.mode == MODE_THREADS ? run_threads(&s) : run_fork_per_job(&s);

	if (r == 0 && s.result_fd < 0) {
		uint64_t done = 0, failed = 0, quarantined = 0, retries = 0;

		for (size_t i = 0; i < s.slots_size / sizeof(*s.slots); i++) {
			done += atomic_load_explicit(&s.slots[i].done, memory_order_relaxed);
			failed += atomic_load_explicit(&s.slots[i].failed, memory_order_relaxed);
			quarantined +=
				atomic_load_explicit(&s.slots[i].quarantined, memory_order_relaxed);
			retries += atomic_load_explicit(&s.slots[i].retries, memory_order_relaxed);
		}
		printf("jobs %" PRIu64 " done %" PRIu64 " failed %" PRIu64 " quarantined %" PRIu64
		       " retries %" PRIu64 "\n",
		       s.jobs, done, failed, quarantined, retries);
	}
	munmap(s.slots, s.slots_size);
	job_spec_free(s.spec);
	return r < 0 ? WORKER_EXIT_START : 0;
}
