/* SPDX-License-Identifier: MIT */
/*
 * The worker's spawner (spawner.c): a small single-threaded child of the worker that forks
 * exec: trampolines without an exec, as the worker's own children (CLONE_PARENT). Its
 * process side, and the job threads' side: spawner_send() and spawner_send_runner().
 */
#pragma once

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

/* One trampoline to start: what `--exec-command` would be given, and its fds. */
struct spawner_job {
	char **argv; /* the command, NULL-terminated */
	char **envp; /* its environment, NULL-terminated */
	const char *chdir; /* NULL: the worker's directory */
	bool has_nice;
	int nice;
	int out, err; /* the command's stdout and stderr */
	int report; /* the trampoline's fd 3 (EXEC_TRAMPOLINE_FD) */
	int runner; /* spawner_send(): the trampoline's end of its runner socket */
};

/*
 * Forks the spawner. Called by the worker's main thread while it is still single-threaded:
 * privileges dropped, signals reset, no crash handler yet. A failure is logged: exec: jobs
 * then start their trampolines with posix_spawn.
 */
void spawner_start(void);

/* The spawner's pid, or 0 if there is none (not started, or seen gone). */
pid_t spawner_pid(void);

/* Gives the spawner (so every trampoline and command) the worker's RLIMIT_AS. */
int spawner_set_rlimit_as(const struct rlimit *rl);

/*
 * Has the spawner fork a trampoline for j (any thread; the request is written under a lock,
 * nothing waits for the spawner). The trampoline, the worker's child in a process group of
 * its own, says EXEC_REPORT_FORKED with its pid on j->report before (in the same write as)
 * its first report; a fork that failed is
 * EXEC_REPORT_FAILED there from the spawner; an EOF there with no report means the spawner
 * died first (spawner_lost()). The trampoline stays after its command as the calling job
 * thread's runner: j->runner is its end of a stream socket whose other end the job thread
 * keeps, for spawner_send_runner(); it exits when that end is closed. The caller closes its
 * copies of j's fds. Returns 0, or -ENOTCONN when there is no spawner (the caller starts
 * the trampoline itself).
 */
int spawner_send(const struct spawner_job *j);

/*
 * Sends j (but j->runner) to a runner: the trampoline spawner_send() forked, on the job
 * thread's end of its socket. Its next report on j->report is the new command's first
 * (STARTED, or why nothing was started), with no FORKED. Returns 0, -E2BIG or -ENOMEM
 * (nothing sent), or -EPIPE: it could not be sent (whole), the runner is of no more use.
 */
int spawner_send_runner(int runner, const struct spawner_job *j);

/*
 * The worker is exiting: the spawner told (EOF on its socket) and reaped, so that it is not
 * left to whoever reaps the worker's orphans. No request may follow.
 */
void spawner_stop(void);

/*
 * An EOF on a report pipe with no report: true if the spawner died (reaped, said once);
 * false if it is there (the trampoline it forked died before its first report).
 */
bool spawner_lost(void);
