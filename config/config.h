/* SPDX-License-Identifier: MIT */
/*
 * The config model: what a parsed, validated bulkhead.conf says. Parsing (config.c, and the
 * pieces parser.h lists) fills a new struct config or fails as a whole; nothing half-parsed
 * is ever returned. Every key, its type, default, range and doc string is declared once in
 * keys.h.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/exec-settings.h"
#include "common/job-state.h"
#include "common/units.h"

#define CONFIG_NAME_MAX 32      /* pool and job group names: [A-Za-z0-9_.-], 1..32 chars */
#define CONFIG_POOLS_MAX 64
#define CONFIG_GROUPS_MAX 4096
#define CONFIG_JOBS_MAX 10000000 /* sum of all groups' count */
#define CONFIG_ERRORS_MAX 20     /* errors reported before giving up */
#define CONFIG_LINE_MAX 4096     /* longer lines are an error, not silently cut */
#define CONFIG_FILE_MAX (1024 * 1024) /* bytes in a config file, at most */
#define CONFIG_FILE_MAX_TEXT "1 MiB"

enum log_level {
	LOG_LEVEL_ERR = 3,
	LOG_LEVEL_WARNING = 4,
	LOG_LEVEL_NOTICE = 5,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

enum pool_failure_action {
	POOL_FAILURE_STOP,
	POOL_FAILURE_EXIT,
};

enum worker_start {
	WORKER_START_FORK_SERVER, /* fork from the zygote (children/zygote.c) */
	WORKER_START_EXEC,        /* posix_spawn each worker: fresh ASLR per worker */
};

struct supervisor_config {
	char *control_socket; /* "" = $RUNTIME_DIRECTORY/control.sock */
	char *control_group;
	enum log_level log_level;
	usec_t drain_timeout;
	unsigned keep_ended; /* bulkheadd: ended jobs kept in the ledger (ledger_collect) */
	enum worker_start worker_start;
	char *store; /* "" (bulkheadd: the default file), "memory", "sqlite:/PATH" or
		      * "postgresql:CONNINFO" */
	usec_t lease; /* postgresql: a job's lease (renewed every third of it) */
	char *node; /* "" = the host name */
	char *metrics_listen; /* "" = no HTTP endpoint; else checked by config_parse_listen() */
};

struct pool_config {
	char name[CONFIG_NAME_MAX + 1];
	unsigned line; /* line of the [pool NAME] header, 0 if implicit */
	unsigned workers;
	unsigned threads;
	usec_t backoff_min;
	usec_t backoff_max;
	usec_t min_uptime;
	struct rate max_worker_faults;
	uint64_t memory_max; /* bytes, UINT64_MAX = no limit */
	unsigned tasks_max; /* pids.max of each worker's cgroup; 0 = no limit */
	usec_t kill_grace;
	enum pool_failure_action on_pool_failure;
	char *user; /* as written; "" = the program's default */
	char *group; /* as written; "" = the user's primary group */
	int core_dumps; /* 0 no, 1 yes: RLIMIT_CORE of its workers */
	int submitted_runs; /* 0 builtin, 1 any: what `submit --run` may run in it */
	int spare; /* 0 no, 1 yes: a warm spare worker (daemon/spare.c) */
	/* Resolved by config_load: (uid_t)-1 / (gid_t)-1 when not set (the program decides). */
	uid_t uid;
	gid_t gid;
};

enum job_kind {
	JOB_KIND_BUILTIN, /* builtin:NAME */
	JOB_KIND_PLUGIN, /* plugin:PATH:SYMBOL, PATH made absolute (relative to the config) */
	JOB_KIND_EXEC, /* exec:COMMAND ARGS... */
};

struct group_config {
	char name[CONFIG_NAME_MAX + 1];
	unsigned line; /* of the [job NAME] header */
	unsigned run_line; /* of the run key: where errors about what it runs point */
	unsigned pool; /* index into config.pools */
	char *run; /* "builtin:NAME", "plugin:/abs/path.so:SYMBOL" or "exec:COMMAND ARGS..." */
	enum job_kind kind; /* from run */
	char *args; /* "k=v k=v" (builtin: checked against its argspec) */
	char *inputs; /* the glob as written, "" = none */
	char **input_paths; /* inputs expanded, sorted: job NAME#i gets input_paths[i-1] */
	unsigned n_inputs; /* with inputs set, count == n_inputs */
	char *spool; /* "" or an absolute directory: its files become jobs (count is 0) */
	char *output; /* exec: "" (stdout/stderr to the log) or an absolute directory */
	unsigned count;
	usec_t timeout; /* USEC_INFINITY = none */
	unsigned max_attempts;
	enum job_state expect; /* JOB_DONE, JOB_FAILED, JOB_CRASHED or JOB_TIMED_OUT */
	/* Exec jobs' settings (a builtin's or plugin's group keeps the defaults): */
	char *environment; /* "" or NAME=VALUE words, as written (exec_env_split()) */
	char *working_directory; /* "" (the worker's) or an absolute directory */
	uint8_t success_exit_status[EXIT_SET_BYTES]; /* exit codes counted done; 0 always */
	int nice; /* EXEC_NICE_INHERIT or EXEC_NICE_MIN..EXEC_NICE_MAX */
	/* Any kind: the wait before the next attempt after a blamed one, doubling LO..HI. */
	usec_t retry_delay_min, retry_delay_max;
};

struct config {
	char *path;
	struct supervisor_config supervisor;
	struct pool_config *pools;
	unsigned n_pools;
	struct group_config *groups;
	unsigned n_groups;
	uint64_t total_jobs; /* sum of groups' count */
};

/*
 * Reads and validates PATH. Returns 0 and *ret, or a negative errno and *ret_errors, a
 * malloc'd string of one or more lines, each naming the place:
 *   "demo.conf:12: [pool main] threads = abc: expected an integer 1..256"
 *   "demo.conf: cannot open: No such file or directory"
 *   "/dev/zero: not a regular file (a character device)"
 *   "big.conf: too large (2000000 bytes; at most 1 MiB)"
 * -EINVAL for config errors and for a file that is not a regular file, -EFBIG for one over
 * CONFIG_FILE_MAX bytes, the open/read errno for I/O errors. It never waits: a FIFO or a
 * device is refused without being read.
 */
int config_load(const char *path, struct config **ret, char **ret_errors);

/* Same, reading from an open stream; `name` is used in messages (and as path). */
int config_load_stream(FILE *f, const char *name, struct config **ret, char **ret_errors);

void config_free(struct config *c);

enum {
	/* Out of memory while loading exits 1, not 78 (check-config's documented code). */
	CONFIG_CHECK_OOM_FAILS = 1 << 0,
};

/*
 * How every program starts from a config: loads PATH (config_load()), or with text != NULL
 * that text, named PATH in messages; then, with worker != NULL, probes its plugins with that
 * bulkhead-worker (config_probe_plugins()). Returns 0 and *ret, or else prints every error on
 * stderr, one per line, each starting with PATH ("demo.conf:12: [pool main] ..."), and
 * returns the exit code to use: 78 (EX_CONFIG) for a config error, 1 (EXIT_FAILURE) when the
 * probe could not run. Blocks while the probe runs (see probe.h).
 */
int config_load_checked(const char *path, const char *text, const char *worker, unsigned flags,
			struct config **ret);

/*
 * "ADDRESS:PORT" (an IPv4 address, or an IPv6 one in brackets; a port 0..65535) into *ret
 * (a struct sockaddr_in or _in6) and its length. 0, or -EINVAL.
 */
struct sockaddr_storage;
int config_parse_listen(const char *text, struct sockaddr_storage *ret, unsigned *ret_len);

/*
 * True if a and b have the same environment, working_directory, success_exit_status, nice
 * and retry_delay (a NULL string is ""): part of a group's definition.
 */
bool config_group_exec_equal(const struct group_config *a, const struct group_config *b);

/* g's exec settings and retry_delay at their defaults (the strings NULL, meaning ""). */
static inline void config_group_exec_defaults(struct group_config *g)
{
	g->environment = NULL;
	g->working_directory = NULL;
	for (unsigned i = 0; i < EXIT_SET_BYTES; i++)
		g->success_exit_status[i] = i == 0;
	g->nice = EXEC_NICE_INHERIT;
	g->retry_delay_min = g->retry_delay_max = 0;
}

/*
 * How the stores keep them, in one text: "" for the defaults, else a "key = value" line for
 * each of them, as check-config prints them. config_group_exec_format() returns a malloc'd
 * string (NULL: out of memory); config_group_exec_parse() sets g's (the strings malloc'd, the
 * caller frees them) from one, and returns 0, -EINVAL (with the reason in err) or -ENOMEM.
 */
char *config_group_exec_format(const struct group_config *g);
int config_group_exec_parse(const char *text, struct group_config *g, char *err, size_t errlen);

/*
 * A `run` that a client submits (`bulkhead submit --run`) and its args ("k=v k=v"), checked
 * as a [job] section's would be, outside any file: exec:COMMAND ARGS... is split, its
 * placeholders checked against args (has_input: each job gets an input file) and COMMAND
 * found now (an absolute path, or in the caller's PATH); plugin:PATH:SYMBOL needs an
 * absolute PATH and a C identifier (whether it loads is the probe's, probe.h). 0, -ENOMEM,
 * or -EINVAL with the reason in err. builtin: runs are not this function's.
 */
int config_check_submitted_run(const char *run, const char *args, bool has_input, char *err,
			       size_t errlen);

/* Index of the pool called `name`, or -ENOENT. */
int config_find_pool(const struct config *c, const char *name);

/*
 * Writes the effective config (every key, defaults included, in INI form that
 * config_load reads back to an equal config) to f. Used by `bulkhead check-config`.
 */
void config_print(const struct config *c, FILE *f);

/* Names for log levels and pool-failure actions. */
const char *log_level_to_string(enum log_level l);
