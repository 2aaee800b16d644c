/* SPDX-License-Identifier: MIT */
/*
 * Helpers for integration tests that start the real programs: spawning with a given fd 3,
 * waiting for an exit with a deadline (pidfd + poll, never a sleep), reading pipes and
 * files, temp dirs, counting processes, and sending/receiving protocol frames.
 *
 * Functions return 0 (or a count/length) on success and -errno on failure unless said
 * otherwise; those returning a string return NULL with errno set on failure.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t tu_now_ms(void);

/* Milliseconds left until deadline (a tu_now_ms() value), at least 0. */
int tu_ms_left(int64_t deadline);

/*
 * Starts argv[0] (a path) with argv, the current environment plus envp_extra ("K=V", NULL-
 * terminated, may be NULL; replaces a variable of the same name). stdin is /dev/null.
 * fd3 >= 0 becomes the child's fd 3 (inheritable); every other fd above 2 is closed.
 * ret_stdout_fd/ret_stderr_fd non-NULL: the child's stdout/stderr are pipes whose read ends
 * (CLOEXEC) are returned; else they are inherited. The child is in its own process group.
 * Returns 0, or -errno (also when exec fails: the child's errno is passed back).
 */
int tu_spawn(const char *const argv[], const char *const envp_extra[], int fd3, int *ret_stdout_fd,
	     int *ret_stderr_fd, pid_t *ret_pid);

/*
 * Waits up to timeout_ms (< 0: forever) for child pid to exit and reaps it. Returns 0 with
 * the wait status in *ret_status (may be NULL), -ETIMEDOUT if it is still running (not
 * reaped), or -errno.
 */
int tu_wait_exit(pid_t pid, int timeout_ms, int *ret_status);

/* SIGKILLs child pid and reaps it. Returns 0 or -errno. */
int tu_kill_wait(pid_t pid);

/* True if pid exists and is not a zombie. */
bool tu_process_alive(pid_t pid);

/* "exited 3", "killed by SIGSEGV (core dumped)": for assertion messages. Static buffer. */
const char *tu_describe_status(int status);

/* Reads fd until EOF, with a deadline. A malloc'd NUL-terminated string, or NULL (errno). */
char *tu_read_all(int fd, int timeout_ms);

/* A new directory $TMPDIR/bulkhead-test-XXXXXX (malloc'd path in *ret). */
int tu_mkdtemp(char **ret);

/* Removes path recursively (a file or a directory tree); missing is fine. */
int tu_rm_rf(const char *path);

/* Regular files in dir (any name), or -1 if it cannot be read. */
long tu_count_files(const char *dir);

/* Creates or truncates path (mode 0644) with content. */
int tu_write_file(const char *path, const char *content);

/* The whole file, malloc'd and NUL-terminated, or NULL (errno). */
char *tu_read_file(const char *path);

/* comm, state and ppid of pid from /proc/PID/stat (comm may be NULL). 0 or -errno. */
int tu_proc_stat(pid_t pid, char *comm, size_t comm_size, char *ret_state, pid_t *ret_ppid);

/* Pids of live bulkhead-worker processes whose parent is `parent`, sorted (not a fork server
 * that has not named itself yet). */
int tu_find_workers(pid_t parent, pid_t *pids, int max);
/* The same for live children of parent with this comm ("bulkhead-zygote"). */
int tu_find_children(pid_t parent, const char *comm, pid_t *pids, int max);

/*
 * The spawner of worker pid (children/spawner.c: its child named bulkhead-spawn), or -1 if
 * it has none or several for timeout_ms: a trampoline the spawner has just forked (a child of
 * the worker too) is named bulkhead-spawn until it names itself, for a few microseconds.
 */
pid_t tu_find_spawner(pid_t worker, int timeout_ms);

/*
 * Live processes (not zombies) with BHTEST_MARK=mark in their environment (a test marks the
 * commands its jobs start with it); up to max pids out. Returns how many, or -errno.
 */
int tu_find_marked(const char *mark, pid_t *pids, int max);

/* The value of name in the environment pid was started with, malloc'd, or NULL. */
char *tu_env_of(pid_t pid, const char *name);

/* VmRSS of pid in KiB from /proc/PID/status, or -errno. */
long tu_rss_kb(pid_t pid);

/* CPU ticks used by the job threads of worker pid: > 0 once a busy job really runs. */
long tu_job_thread_ticks(pid_t pid);

/*
 * The scheduler slice of thread tid in ns (se.slice in /proc/TID/sched), or -errno (-ENOENT:
 * the kernel does not show it).
 */
long tu_thread_slice(pid_t tid);

/*
 * Whether this kernel gives a thread the slice it asks for (Linux 6.12+ and se.slice shown):
 * tried on a thread of our own. *ret_default: a thread's slice when it asks for none.
 */
bool tu_slices_supported(long *ret_default);

/* Thread ids of pid, its main thread first (up to max out): how many, or -errno. */
int tu_threads(pid_t pid, pid_t *tids, int max);

/* Processes (not threads) whose comm is exactly `comm`, zombies excluded. */
int tu_count_processes_named(const char *comm);

/*
 * Live bulkhead-worker processes started by the master with this pid (their argv carries
 * --master-pid PID): precise even when other runs are going on, and it finds orphans too.
 */
int tu_count_workers_of(pid_t master);

/* Children of parent in any state, zombies too (up to max pids out; NULL: none): how many. */
int tu_children_any(pid_t parent, pid_t *pids, int max);

/* Children of this process that are zombies (exited, not yet reaped). */
int tu_count_zombie_children(void);

/* Open fds of this process (counting /proc/self/fd, excluding the one used to count). */
int tu_count_open_fds(void);

/*
 * Receives one SOCK_SEQPACKET message into buf (at least BH_FRAME_MAX bytes) within
 * timeout_ms. Returns its length (> 0), 0 at EOF, -ETIMEDOUT, -EMSGSIZE if it was longer
 * than BH_FRAME_MAX, or -errno.
 */
int tu_recv_frame(int fd, void *buf, int timeout_ms);

/* Sends one message (blocking, MSG_NOSIGNAL). Returns 0 or -errno. */
int tu_send_frame(int fd, const void *buf, size_t len);

/* Encodes and sends a SPEC / STOP frame. */
int tu_send_spec(int fd, uint32_t id, const char *run, const char *args);
int tu_send_stop(int fd);

/*
 * Sends ASSIGN frames for jobs first_id, first_id+1, ... (n of them), all of spec_id,
 * as many entries per frame as fit. Returns 0 or -errno.
 */
int tu_send_assign_range(int fd, uint64_t first_id, size_t n, uint32_t spec_id);
