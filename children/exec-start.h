/* SPDX-License-Identifier: MIT */
/*
 * Starting an exec: job's trampoline (exec-start.c): through the worker's spawner, or with
 * posix_spawn of `bulkhead-worker --exec-command` when there is none. exec.c's side.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "job-context.h"

/* A started command, as the job thread holds it. */
struct exec_run_fds {
	pid_t trampoline;
	pid_t command;
	int report; /* the trampoline's fd 3, read end */
	int output; /* the command's stdout and stderr, read end (non-blocking); -1 with output = DIR */
	bool runner; /* the trampoline is this thread's runner: it stays after ENDED */
};

/*
 * Starts the trampoline for argv with envp. Returns 0 with its pid, the command's pid (from
 * its STARTED report), the report pipe and the output pipe, or -errno (also the errno the
 * command could not be started with; a setting the trampoline could not take is logged and
 * sets job->setting_failed).
 */
int exec_start(struct bulkhead_job *job, char **argv, char **envp, struct exec_run_fds *ret);

/*
 * Lets this job thread's runner (spawner_send()) go: its socket closed (a live one exits),
 * then reaped. Returns its wait status; the next command starts a new one.
 */
int exec_runner_drop(void);

/* A job thread ends: its runner, if it has one, told (EOF on its socket) and reaped. */
void exec_thread_fini(void);

/*
 * The watch of the runners' deaths (exec-start.c): started by a worker with a spawner
 * (-errno if it cannot be: then a runner killed while idle waits for its thread's next
 * command to be reaped), its epoll fd for the main thread's poll (-1: none), cleared by the
 * main thread when it turned readable, which then has the idle job threads call
 * exec_runner_check(): this thread's runner reaped if it is dead.
 */
int exec_runner_watch_start(void);
int exec_runner_watch_fd(void);
void exec_runner_watch_clear(void);
void exec_runner_check(void);
