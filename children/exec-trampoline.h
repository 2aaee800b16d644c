/* SPDX-License-Identifier: MIT */
/*
 * The exec: trampoline (exec-trampoline.c): the process a command is started through, and
 * what it and the job thread that started it (exec.c) say to each other. A leaf: it knows
 * nothing of jobs, only its command line and its report pipe.
 *
 *   bulkhead-worker --exec-command WORKER_PID [--chdir DIR] [--nice N] -- COMMAND ARGS...
 *
 * (the group's working_directory and nice: the command's side of the trampoline's vfork
 * takes them before its exec; one it cannot take is reported and nothing is started)
 * with the report pipe on EXEC_TRAMPOLINE_FD and the signals of exec_trampoline_signals()
 * blocked from its start.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define EXEC_TRAMPOLINE_OPTION "--exec-command"
#define EXEC_TRAMPOLINE_CHDIR "--chdir"
#define EXEC_TRAMPOLINE_NICE "--nice"
#define EXEC_TRAMPOLINE_FD 3
#define EXEC_TRAMPOLINE_DEATHSIG SIGHUP /* the trampoline's PDEATHSIG: end everything */

/* What the trampoline tells the job thread on its fd 3: one write each. */
enum {
	EXEC_REPORT_STARTED = 1, /* value: the command's pid (and process group) */
	EXEC_REPORT_FAILED = 2, /* value: the errno it could not be started with */
	EXEC_REPORT_ENDED = 3, /* value: the command's wait status */
	EXEC_REPORT_CHDIR_FAILED = 4, /* value: the errno of chdir(--chdir DIR) */
	EXEC_REPORT_NICE_FAILED = 5, /* value: the errno of setpriority(--nice N) */
	EXEC_REPORT_FORKED = 6, /* value: its own pid; before the first report of one the
				 * spawner forked, in the same write */
};

struct exec_report {
	int32_t kind;
	int32_t value;
};

/*
 * The signals the trampoline takes with sigwaitinfo(): SIGCHLD, its death signal, and those
 * it forwards to the command's group (SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2). Whoever
 * starts it blocks them from its first instruction, so none is lost or kills it early.
 */
void exec_trampoline_signals(sigset_t *s);

/* What the command line says: the worker, the group's settings, the command. */
struct exec_trampoline_args {
	pid_t worker; /* our parent: gone means the job thread is gone */
	const char *chdir; /* NULL: stay */
	bool has_nice;
	int nice;
	char **argv; /* the command, NULL-terminated */
	bool forked; /* by the spawner: the first report comes after EXEC_REPORT_FORKED */
};

/*
 * The next command for a trampoline that runs several (spawner.c's runner): called once a
 * command ended (ENDED reported), with the last command's fds still on 1-3. Puts the next
 * command's stdout, stderr and report pipe on 1-3, environ, and *a; false: there is none
 * (the job thread closed its end), the trampoline exits.
 */
typedef bool (*exec_trampoline_next_fn)(void *ctx, struct exec_trampoline_args *a);

/*
 * The trampoline itself, after its command line was read: what a trampoline forked by the
 * spawner (spawner.c) calls directly, with fds 0-3 and its signal mask set as the spawn
 * would set them and environ the command's environment. Runs a->argv, then, while next
 * gives one, the next command (next NULL: one command). Never returns.
 */
_Noreturn void exec_trampoline_run(struct exec_trampoline_args *a, exec_trampoline_next_fn next,
				   void *ctx);

/*
 * argv[1] is EXEC_TRAMPOLINE_OPTION. Forks and execs the command, stays its parent and a
 * subreaper until it and every descendant are gone, reports on EXEC_TRAMPOLINE_FD. Never
 * returns.
 */
_Noreturn int exec_trampoline_main(int argc, char **argv);
