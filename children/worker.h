/* SPDX-License-Identifier: MIT */
/* The worker process: command line, start-up and the main thread's loop (see worker.c). */
#pragma once

/* Exit codes of bulkhead-worker (a death by signal is a crash: see crash.c). */
enum {
	WORKER_EXIT_STOPPED = 0, /* STOP received, in-flight jobs finished and reported */
	WORKER_EXIT_MASTER_GONE = 1, /* the master socket closed, or the parent is not the master */
	WORKER_EXIT_USAGE = 2, /* bad command line, or fd 3 is not a SOCK_SEQPACKET socket */
	WORKER_EXIT_PROTOCOL = 3, /* the master sent a bad frame */
	WORKER_EXIT_START = 4, /* start-up failed (threads, memory, signal stacks) */
};

#define WORKER_FD 3 /* the socket to the master */

/* Runs the worker; returns its exit code (or never returns). */
int worker_main(int argc, char **argv);
