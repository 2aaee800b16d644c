/* SPDX-License-Identifier: MIT */
/*
 * Every config key, declared once. CONFIG_KEYS(X) drives parsing, validation, defaults,
 * `bulkhead check-config` output (config_print) and the bulkhead.conf(5) reference.
 *
 *   X(SECTION, key, field, TYPE, "default", min, max, choices, "doc")
 *
 * SECTION   SUPERVISOR, POOL or JOB: [supervisor], [pool NAME], [job NAME]
 * key       the key's name as written in the file
 * field     the member of struct supervisor_config / pool_config / group_config it fills
 * TYPE      a CONFIG_TYPE_* below, which says what min and max mean
 * default   the value used when the key is absent, parsed like a written one;
 *           NULL means the key is required
 * choices   for ENUM: a NULL-terminated struct config_choice array; NULL otherwise
 * doc       one line for the reference
 *
 * Keys are listed in the order config_print() writes them. Append freely; the order
 * within a section is the only thing that matters.
 */
#pragma once

#include <stddef.h>

#include "common/job-state.h"
#include "common/log.h"
#include "common/units.h"
#include "config/config.h"

enum config_section_kind {
	CONFIG_SECTION_SUPERVISOR,
	CONFIG_SECTION_POOL,
	CONFIG_SECTION_JOB,
	_CONFIG_SECTION_MAX,
};

enum config_type {
	CONFIG_TYPE_STRING, /* char *, length min..max bytes, no control characters */
	CONFIG_TYPE_PATH, /* char *, "" or an absolute path of at most max bytes */
	CONFIG_TYPE_UINT, /* unsigned, min..max */
	CONFIG_TYPE_DURATION, /* usec_t, min..max; max USEC_INFINITY allows "infinity" */
	CONFIG_TYPE_DURATION_RANGE, /* usec_t field, usec_t field+1: "LO..HI", each min..max */
	CONFIG_TYPE_RATE, /* struct rate, "COUNT/DURATION", count min..max */
	CONFIG_TYPE_SIZE, /* uint64_t bytes, min..max; max UINT64_MAX allows "infinity" */
	CONFIG_TYPE_ENUM, /* an enum, one of choices */
	CONFIG_TYPE_POOL, /* unsigned index into config.pools, by pool name */
	CONFIG_TYPE_RUN, /* char *, "builtin:NAME", "plugin:/abs/PATH:SYMBOL", "exec:CMD ARGS..." */
	CONFIG_TYPE_ARGS, /* char *, "k=v k=v" (checked against run's builtin, if it is one) */
	CONFIG_TYPE_GLOB, /* char *, "" or a glob(3) pattern, made absolute (config dir) */
	CONFIG_TYPE_DIR, /* char *, "" or an existing directory, made absolute (config dir) */
	CONFIG_TYPE_STORE, /* char *, "", "memory", "sqlite:/abs/PATH" (PATH at most max bytes) or "postgresql:CONNINFO" */
	CONFIG_TYPE_ENVIRONMENT, /* char *, NAME=VALUE words (common/exec-settings.h), as written */
	CONFIG_TYPE_EXIT_STATUS, /* uint8_t[EXIT_SET_BYTES], exit codes 0..255 (0 always in it) */
	CONFIG_TYPE_NICE, /* int, "" (EXEC_NICE_INHERIT) or EXEC_NICE_MIN..EXEC_NICE_MAX */
};

struct config_choice {
	const char *name;
	int value;
};

/* The names of common/log.h (enum log_level has the syslog numbers). */
#define CONFIG_LOG_LEVEL_CHOICE(name, level) { name, level },
/* clang-format off */
static const struct config_choice config_log_level_choices[] = {
	LOG_LEVELS(CONFIG_LOG_LEVEL_CHOICE, )
	{ NULL, 0 },
};
/* clang-format on */
#undef CONFIG_LOG_LEVEL_CHOICE
_Static_assert(LOG_LEVEL_DEBUG == LOG_DEBUG && LOG_LEVEL_INFO == LOG_INFO &&
		       LOG_LEVEL_NOTICE == LOG_NOTICE && LOG_LEVEL_WARNING == LOG_WARNING &&
		       LOG_LEVEL_ERR == LOG_ERR,
	       "enum log_level has the syslog numbers");

static const struct config_choice config_pool_failure_choices[] = {
	{ "stop", POOL_FAILURE_STOP },
	{ "exit", POOL_FAILURE_EXIT },
	{ NULL, 0 },
};

static const struct config_choice config_worker_start_choices[] = {
	{ "fork-server", WORKER_START_FORK_SERVER },
	{ "exec", WORKER_START_EXEC },
	{ NULL, 0 },
};

static const struct config_choice config_submitted_runs_choices[] = {
	{ "builtin", 0 },
	{ "any", 1 },
	{ NULL, 0 },
};

static const struct config_choice config_yes_no_choices[] = {
	{ "no", 0 },
	{ "yes", 1 },
	{ NULL, 0 },
};

static const struct config_choice config_expect_choices[] = {
	{ "done", JOB_DONE },
	{ "failed", JOB_FAILED },
	{ "crashed", JOB_CRASHED },
	{ "timed_out", JOB_TIMED_OUT },
	{ NULL, 0 },
};

#define CONFIG_STRUCT_SUPERVISOR struct supervisor_config
#define CONFIG_STRUCT_POOL struct pool_config
#define CONFIG_STRUCT_JOB struct group_config

/* clang-format off */
#define CONFIG_KEYS(X)                                                                             \
	X(SUPERVISOR, control_socket, control_socket, PATH, "", 0, 107, NULL,                      \
	  "path of the control socket; empty: $RUNTIME_DIRECTORY/control.sock")          \
	X(SUPERVISOR, control_group, control_group, STRING, "bulkhead", 1, 32, NULL,              \
	  "group whose members may use the control socket besides root")                          \
	X(SUPERVISOR, log_level, log_level, ENUM, "info", 0, 0, config_log_level_choices,         \
	  "most verbose level logged")                                                             \
	X(SUPERVISOR, drain_timeout, drain_timeout, DURATION, "10s", 0, USEC_INFINITY, NULL,      \
	  "on SIGTERM, how long running jobs may finish before they end cancelled")               \
	X(SUPERVISOR, keep_ended, keep_ended, UINT, "100000", 0, 1000000000, NULL,               \
	  "bulkheadd: ended jobs kept for jobs and wait; older ones are forgotten 4096 at a "    \
	  "time, their counts stay (bulkhead run keeps all)")                                   \
	X(SUPERVISOR, store, store, STORE, "", 0, 4000, NULL,                                   \
	  "bulkheadd: where jobs are kept: sqlite:PATH (durable), postgresql:CONNINFO (shared "  \
	  "by several nodes) or memory; empty: sqlite:$STATE_DIRECTORY/jobs.db "                 \
	  "(/var/lib/bulkhead/jobs.db without systemd)")                                         \
	X(SUPERVISOR, lease, lease, DURATION, "5s", 300 * USEC_PER_MSEC, USEC_PER_HOUR, NULL,     \
	  "postgresql: how long a node holds a job it runs without renewing (every third of "   \
	  "it); a dead node's jobs run again after this")                                         \
	X(SUPERVISOR, node, node, STRING, "", 0, 64, NULL,                                        \
	  "this node's name in each job's history (bulkhead jobs ID); empty: the host name")     \
	X(SUPERVISOR, worker_start, worker_start, ENUM, "fork-server", 0, 0,                      \
	  config_worker_start_choices,                                                             \
	  "fork-server: workers are forked from an idle pre-started one (fast restarts); "      \
	  "exec: each worker is a fresh exec (its own address-space layout)")                     \
	X(SUPERVISOR, metrics_listen, metrics_listen, STRING, "", 0, 64, NULL,                      \
	  "bulkheadd: ADDRESS:PORT to serve the metrics at /metrics over HTTP (127.0.0.1:9464, "  \
	  "[::1]:9464; port 0: any free one, logged); empty: off")                                \
	X(POOL, workers, workers, UINT, "2", 1, 1024, NULL,                                        \
	  "worker processes in the pool")                                                          \
	X(POOL, threads, threads, UINT, "4", 1, 256, NULL,                                         \
	  "job threads in each worker")                                                            \
	X(POOL, backoff, backoff_min, DURATION_RANGE, "10ms..5s", 0, USEC_PER_HOUR, NULL,          \
	  "restart delay after a worker fault: starts at LO, doubles (with jitter) up to HI")     \
	X(POOL, min_uptime, min_uptime, DURATION, "1s", 0, USEC_PER_HOUR, NULL,                    \
	  "a worker that lived this long restarts at once and its backoff starts over")           \
	X(POOL, max_worker_faults, max_worker_faults, RATE, "10/60s", 1, 1024, NULL,              \
	  "more than COUNT worker faults within DURATION: the pool fails")                        \
	X(POOL, memory_max, memory_max, SIZE, "infinity", 16ULL << 20, UINT64_MAX, NULL,          \
	  "memory limit per worker (cgroup v2 memory.max where delegated, else RLIMIT_AS)")       \
	X(POOL, tasks_max, tasks_max, UINT, "0", 0, 4194304, NULL,                                 \
	  "most tasks (processes and threads) a worker and what its jobs start may have at once: "\
	  "pids.max of its cgroup where delegated (else not enforced); 0: no limit")              \
	X(POOL, kill_grace, kill_grace, DURATION, "1s", 0, USEC_PER_HOUR, NULL,                    \
	  "after a job timeout, how long the worker's other jobs may finish before SIGKILL")      \
	X(POOL, on_pool_failure, on_pool_failure, ENUM, "stop", 0, 0, config_pool_failure_choices, \
	  "stop: the pool stays failed; exit: the daemon exits non-zero")                         \
	X(POOL, user, user, STRING, "", 0, 32, NULL,                                               \
	  "user (name or uid) the workers and their jobs run as, with no capabilities; empty: "  \
	  "bulkhead for bulkheadd (if it exists), the invoking user for bulkhead run")           \
	X(POOL, group, group, STRING, "", 0, 32, NULL,                                             \
	  "group (name or gid) the workers run as, with no supplementary groups; empty: the "    \
	  "user's primary group")                                                                  \
	X(POOL, core_dumps, core_dumps, ENUM, "no", 0, 0, config_yes_no_choices,                  \
	  "yes: a worker that crashes leaves a core dump where core_pattern says (RLIMIT_CORE "  \
	  "unlimited; systemd-coredump where it is there); no: RLIMIT_CORE is 0")               \
	X(POOL, submitted_runs, submitted_runs, ENUM, "any", 0, 0, config_submitted_runs_choices, \
	  "what bulkhead submit --run may run here: any (builtin:, exec: and plugin:, that is "  \
	  "any code as the pool's user for the control socket's users) or builtin (builtins "    \
	  "only; the config's own groups run what they say)")                                     \
	X(POOL, spare, spare, ENUM, "no", 0, 0, config_yes_no_choices,                            \
	  "yes: one more worker process, started and idle, takes over a slot whose worker died "  \
	  "(at once, no start to wait for), and two more run the retries of jobs suspected of "  \
	  "crashing theirs, alone; no: none")                                                      \
	X(JOB, pool, pool, POOL, "main", 0, 0, NULL,                                               \
	  "the pool whose workers run these jobs")                                                 \
	X(JOB, run, run, RUN, NULL, 0, 0, NULL,                                                    \
	  "what to run: builtin:NAME (compiled into the worker), plugin:PATH:SYMBOL (the "        \
	  "function SYMBOL of the shared object PATH, see bulkhead-job(3)) or exec:COMMAND "       \
	  "ARGS... (a command, with {input} {id} {name} {arg:KEY} substituted)")                  \
	X(JOB, args, args, ARGS, "", 0, 0, NULL,                                                   \
	  "key=value arguments, separated by whitespace: checked against the builtin; "          \
	  "free keys for plugin and exec jobs")                                                    \
	X(JOB, inputs, inputs, GLOB, "", 0, 0, NULL,                                               \
	  "one job per regular file matching this glob(3) pattern, in sorted order, with the "    \
	  "file's path as argument input; count may not be set")                                   \
	X(JOB, spool, spool, DIR, "", 0, 0, NULL,                                                  \
	  "a directory whose files become jobs as they appear, then move to done/, failed/ or "   \
	  "quarantine/ when their job ends; count and inputs may not be set")                      \
	X(JOB, output, output, DIR, "", 0, 0, NULL,                                                \
	  "exec jobs: a directory for each job's stdout and stderr (GROUP.ID.out, GROUP.ID.err); " \
	  "empty: both go to the log, bounded")                                                    \
	X(JOB, count, count, UINT, "1", 1, 1000000, NULL,                                          \
	  "instances of the job: NAME#1 .. NAME#COUNT (not with inputs or spool)")                \
	X(JOB, timeout, timeout, DURATION, "60s", 1, USEC_INFINITY, NULL,                          \
	  "limit per attempt, from when a thread starts the job; infinity: none")                 \
	X(JOB, max_attempts, max_attempts, UINT, "3", 1, 100, NULL,                                \
	  "attempts the job itself is blamed for before it is failed or quarantined")             \
	X(JOB, expect, expect, ENUM, "done", 0, 0, config_expect_choices,                          \
	  "the end state this group should reach (decides the exit code of bulkhead run)")        \
	X(JOB, environment, environment, ENVIRONMENT, "", 0, 0, NULL,                              \
	  "exec jobs: NAME=VALUE assignments added to the command's environment, separated by "   \
	  "whitespace and quoted like exec: command lines (A=1 \"B=two words\"); a later one "     \
	  "of a NAME wins")                                                                        \
	X(JOB, working_directory, working_directory, DIR, "", 0, 0, NULL,                          \
	  "exec jobs: the directory the command starts in (it must exist when the config is "     \
	  "loaded; missing when a job starts, the attempt fails); empty: the worker's, /")         \
	X(JOB, success_exit_status, success_exit_status, EXIT_STATUS, "0", 0, 255, NULL,           \
	  "exec jobs: the exit codes that count as done, separated by whitespace (0 always "      \
	  "does), e.g. 0 1 for grep")                                                              \
	X(JOB, retry_delay, retry_delay_min, DURATION_RANGE, "0", 0, USEC_PER_HOUR, NULL,          \
	  "after an attempt the job is blamed for, how long it waits before the next: LO, "       \
	  "doubling with each attempt up to HI; re-runs that are not its fault are not delayed")  \
	X(JOB, nice, nice, NICE, "", 0, 0, NULL,                                                   \
	  "exec jobs: the command's nice value, -20..19 (below the worker's own needs "           \
	  "CAP_SYS_NICE); empty: the worker's")
/* clang-format on */

enum config_key_id {
#define CONFIG_KEY_ENUM(sect, key, field, type, def, min, max, choices, doc) \
	CONFIG_KEY_##sect##_##key,
	CONFIG_KEYS(CONFIG_KEY_ENUM)
#undef CONFIG_KEY_ENUM
		_CONFIG_KEY_MAX,
};

struct config_key {
	enum config_section_kind section;
	const char *name;
	enum config_type type;
	size_t offset; /* of the field in its section's struct */
	const char *def;
	uint64_t min, max;
	const struct config_choice *choices;
	const char *doc;
};

/* Indexed by enum config_key_id; defined in config.c. */
extern const struct config_key config_keys[_CONFIG_KEY_MAX];

/* "supervisor", "pool", "job". */
extern const char *const config_section_names[_CONFIG_SECTION_MAX];
