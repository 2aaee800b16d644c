/* SPDX-License-Identifier: MIT */
/*
 * exec: jobs (see exec.c): a command line split once per spec, started once per job in its
 * own process group through a trampoline that stays its parent and ends everything the
 * command started when the job ends or the worker dies; waited for by the job thread.
 */
#pragma once

#include <stddef.h>

struct bulkhead_job;
struct exec_cmd;

#define EXEC_OUTPUT_LOG_MAX (16u * 1024u) /* bytes of a job's captured output that are logged */

/*
 * Splits "COMMAND ARGS..." (common/cmdline.h) and checks the placeholders of every word.
 * Returns 0, -EINVAL with the reason in err, or -ENOMEM.
 */
int exec_cmd_new(const char *cmdline, struct exec_cmd **ret, char *err, size_t errsize);
void exec_cmd_free(struct exec_cmd *c);

/*
 * The job function of exec: specs: runs the command and waits for it. Sets job->outcome:
 * RETURNED (status = exit code), SIGNALED (status = signal) or SPAWN_FAILED (status = errno).
 */
int exec_job_run(struct bulkhead_job *job);

/*
 * The trampoline a command is started through (see exec.c): `bulkhead-worker --exec-command
 * WORKER_PID -- COMMAND ARGS...`, with the report pipe on EXEC_TRAMPOLINE_FD. Forks and
 * execs the command, stays its parent and a subreaper until it and every descendant are
 * gone. Never returns.
 */
#define EXEC_TRAMPOLINE_OPTION "--exec-command"
#define EXEC_TRAMPOLINE_FD 3
_Noreturn int exec_trampoline_main(int argc, char **argv);

/*
 * Sends sig to the process group of the job's running command (through its trampoline), if
 * it has one. Safe from any thread, against the job thread reaping the trampoline (its pid
 * is never reused under us).
 */
void exec_signal(struct bulkhead_job *job, int sig);
