/* SPDX-License-Identifier: MIT */
/* The worker's command line (worker-args.h), checked whole before anything starts. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/units.h"
#include "pool.h"
#include "privileges.h"
#include "worker-args.h"

#define POOL_NAME_MAX 64 /* bytes of --pool */
#define WORKER_INDEX_MAX 65535

void worker_usage(FILE *f)
{
	fprintf(f, "usage: bulkhead-worker --pool NAME --index N --threads T --master-pid PID "
		   "[--memory-max BYTES] [--uid UID --gid GID] [--core-dumps] [--spawner]\n"
		   "Runs jobs for bulkheadd on socket fd 3; not meant to be started by hand.\n"
		   "bulkhead-worker --standalone threads|fork-per-job ... (add --help for more):\n"
		   "the unsupervised baselines of bulkhead experiment.\n");
}

int worker_parse_args(int argc, char **argv, struct worker_options *o)
{
	static const struct option longopts[] = {
		{ "pool", required_argument, NULL, 'p' },
		{ "index", required_argument, NULL, 'i' },
		{ "threads", required_argument, NULL, 't' },
		{ "master-pid", required_argument, NULL, 'm' },
		{ "memory-max", required_argument, NULL, 'M' },
		{ "uid", required_argument, NULL, 'u' },
		{ "gid", required_argument, NULL, 'g' },
		{ "core-dumps", no_argument, NULL, 'c' },
		{ "spawner", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	bool have_index = false, have_threads = false, have_pid = false, have_gid = false;
	uint64_t v;
	int c;

	*o = (struct worker_options){ .uid = (uid_t)-1, .gid = (gid_t)-1 };
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0) {
		switch (c) {
		case 'p':
			if (optarg[0] == '\0' || strlen(optarg) > POOL_NAME_MAX) {
				log_error("--pool: expected a name of 1..%d bytes", POOL_NAME_MAX);
				return -EINVAL;
			}
			o->pool = optarg;
			break;
		case 'i':
			if (parse_uint(optarg, 0, WORKER_INDEX_MAX, &v) < 0) {
				log_error("--index %s: expected an integer 0..%d", optarg,
					  WORKER_INDEX_MAX);
				return -EINVAL;
			}
			o->index = (unsigned)v;
			have_index = true;
			break;
		case 't':
			if (parse_uint(optarg, 1, POOL_THREADS_MAX, &v) < 0) {
				log_error("--threads %s: expected an integer 1..%d", optarg,
					  POOL_THREADS_MAX);
				return -EINVAL;
			}
			o->threads = (unsigned)v;
			have_threads = true;
			break;
		case 'm':
			if (parse_uint(optarg, 2, INT32_MAX, &v) < 0) {
				log_error("--master-pid %s: expected a process id", optarg);
				return -EINVAL;
			}
			o->master_pid = (pid_t)v;
			have_pid = true;
			break;
		case 'M':
			if (parse_size(optarg, &v) < 0 || v == 0) {
				log_error("--memory-max %s: expected a size > 0 (\"512M\")",
					  optarg);
				return -EINVAL;
			}
			o->memory_max = v;
			break;
		case 'u':
		case 'g':
			if (privileges_parse_id(c == 'u' ? "--uid" : "--gid", optarg,
						c == 'u' ? &o->uid : &o->gid) < 0)
				return -EINVAL;
			have_gid |= c == 'g';
			break;
		case 'c':
			o->core_dumps = true;
			break;
		case 's':
			o->spawner = true;
			break;
		case 'h':
			worker_usage(stdout);
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
	if ((o->uid != (uid_t)-1) != have_gid) {
		log_error("--uid and --gid go together");
		return -EINVAL;
	}
	if (!o->pool || !have_index || !have_threads || !have_pid) {
		log_error("--pool, --index, --threads and --master-pid are required");
		return -EINVAL;
	}
	return 0;
}
