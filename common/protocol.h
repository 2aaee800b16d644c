/* SPDX-License-Identifier: MIT */
/*
 * The master <-> worker protocol. One SOCK_SEQPACKET message carries exactly one frame:
 *
 *   struct bh_frame_header (8 bytes) | payload (header.length bytes)
 *
 * Integers are host-endian (both ends are the same machine, the worker is exec'd by the
 * master). Every frame is checked for magic, version, type, length and direction before it
 * is used; a frame that fails any check is a protocol error and the sender is not trusted
 * further (the master kills a worker that sends one).
 *
 * Frame types are numbered in ranges and never renumbered:
 *   1..31   worker -> master
 *   32..63  master -> worker
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BH_PROTO_MAGIC 0xB4B7u
#define BH_PROTO_VERSION 7 /* 2: DONE entries carry run_usec; 3: plugins, exec, inputs;
			     4: FORGET, specs sent only with the jobs that need them,
			     DONE outcome CANCELLED; 5: LOG; 6: CRASH_INFO and SPEC's exec settings;
			     7: contained runs (ASSIGN flag CONTAIN, CRASH flag CONTAINED, DONE
			     outcomes DIED_SIGNAL and DIED_EXIT) */
#define BH_FRAME_MAX (64u * 1024u)     /* hard maximum, header included */
#define BH_SPEC_STRING_MAX 16000u      /* run, args, name, output, environment, directory */
#define BH_EXIT_SET_BYTES 32u          /* SPEC: a bit for each exit code counted done */
#define BH_NICE_INHERIT 127            /* SPEC: leave the nice value as it is */
#define BH_INPUT_MAX 4096u             /* a job's input (a path), bytes */
#define BH_RESULT_MAX 255u             /* a job's result line, bytes */
#define BH_PROGRESS_MAX 1000u          /* progress is in 1/1000 */
#define BH_LOG_MAX 1024u               /* one log line of a job, bytes */
#define BH_LOG_LINES_MAX 200u          /* LOG frames of one run of a job; the rest are dropped */
_Static_assert(BH_LOG_LINES_MAX == 200, "children/job-api.c says 200");
#define BH_CRASH_FRAMES_MAX 16u        /* CRASH_INFO: stack frames, the faulting one first */
#define BH_CRASH_LINE_MAX 160u         /* CRASH_INFO: one frame, "obj:sym+0xoff", bytes */
#define BH_CRASH_TEXT_MAX (BH_CRASH_FRAMES_MAX * (BH_CRASH_LINE_MAX + 1u))

/*
 * A worker may hold a finished job's DONE entry this long (microseconds) to send it in a
 * batch with others; the master adds it to every job's deadline, so a job that ended in
 * time is never taken for a timed-out one because its result was held back.
 */
#define BH_RESULT_HOLD_USEC 2000u

enum bh_frame_type {
	/* worker -> master */
	BH_FRAME_HELLO = 1, /* worker ready: pid, threads */
	BH_FRAME_DONE = 2,  /* a batch of job results */
	BH_FRAME_CRASH = 3, /* from the crash handler: job, signal, address */
	BH_FRAME_RESULT = 4,   /* a job's result line (before its DONE entry) */
	BH_FRAME_PROGRESS = 5, /* how far a running job is */
	BH_FRAME_EXEC = 6,     /* an exec: job started its command: pid = process group */
	BH_FRAME_LOG = 7,      /* a job's log line: bulkhead_job_log(), an exec's output */
	BH_FRAME_CRASH_INFO = 8, /* after CRASH, from the crash handler: where it faulted */

	/* master -> worker */
	BH_FRAME_SPEC = 32,   /* define a job spec: id, run, args */
	BH_FRAME_ASSIGN = 33, /* a batch of jobs to run: job id, spec id */
	BH_FRAME_STOP = 34,   /* finish what is in flight, then exit 0 */
	BH_FRAME_INJECT = 35, /* raise a fault in the worker itself (bulkhead inject) */
	BH_FRAME_CANCEL = 36, /* the job should stop: bulkhead_job_cancelled() becomes true */
	BH_FRAME_INPUT = 37,  /* a job's input, sent just before the ASSIGN that names the job */
	BH_FRAME_FORGET = 38, /* drop a spec: no job of it is queued or running on the worker */
};

/* Faults a worker raises on INJECT, in its main thread (never blamed on a job). */
enum bh_inject_kind {
	BH_INJECT_SEGV = 1,  /* an invalid write: dies by SIGSEGV */
	BH_INJECT_ABORT = 2, /* abort(): dies by SIGABRT */
	BH_INJECT_HANG = 3,  /* the main thread loops forever: no more frames */
	BH_INJECT_LEAK = 4,  /* allocates until memory_max stops it, then aborts (OOM) */
};

struct bh_frame_header {
	uint16_t magic;
	uint8_t version;
	uint8_t type;
	uint32_t length; /* payload bytes after the header */
};

struct bh_hello {
	int32_t pid;
	uint32_t threads;
};

enum bh_crash_kind {
	BH_CRASH_SIGNAL = 1, /* a fatal signal in the worker */
	BH_CRASH_EXIT = 2,   /* exit() called (from a job thread if job_id != 0) */
	BH_CRASH_OOM = 3,    /* a job ran out of memory (then aborted) */
};

/*
 * CRASH flag: the crash happened in the throwaway process of a contained run (BH_ASSIGN_CONTAIN)
 * and was relayed by the worker, which lives on; the job's DONE entry (a DIED outcome)
 * follows. Without it, a CRASH frame means the worker itself is dying.
 */
#define BH_CRASH_CONTAINED 1u

struct bh_crash {
	uint64_t job_id; /* 0: not in a job (main thread, idle thread) */
	uint32_t kind;   /* enum bh_crash_kind */
	int32_t signo;   /* BH_CRASH_SIGNAL, BH_CRASH_OOM: the signal; else 0 */
	int32_t code;    /* si_code */
	uint32_t flags;  /* BH_CRASH_*; other bits must be 0 */
	uint64_t addr; /* fault address, 0 if none */
};

/*
 * CRASH_INFO: what the crash handler could find out after it sent CRASH (which alone decides
 * the blame): the fault address and the stack, frame 0 the faulting instruction, each frame
 * "OBJECT:SYMBOL+0xOFF" (or "OBJECT:+0xOFF" from the object's base when no symbol covers it,
 * "0xPC" when no object does). Payload: u64 job id (as in CRASH, 0 allowed), u64 addr, u16
 * frames (1..BH_CRASH_FRAMES_MAX), u16 text length (<= BH_CRASH_TEXT_MAX), u32 reserved (0),
 * then the text: one line per frame, each 1..BH_CRASH_LINE_MAX printable ASCII bytes and a
 * '\n'.
 */
struct bh_crash_info {
	uint64_t job_id;
	uint64_t addr;
	const char *text; /* frames, each ended by '\n'; not NUL-terminated */
	uint16_t len;
	uint16_t frames;
};

#define BH_ASSIGN_INPUT 1u /* an INPUT frame for this job came before this ASSIGN */
/*
 * Run this job contained: in a throwaway child of its job thread (children/contain.c), so that
 * its crash ends the child and not the worker. The master asks it for jobs that run alone
 * (a culprit's retries, suspects), never for exec: jobs (their command is a process already).
 */
#define BH_ASSIGN_CONTAIN 2u

struct bh_assign_entry {
	uint64_t job_id;
	uint32_t spec_id;
	uint32_t flags; /* BH_ASSIGN_*; other bits must be 0 */
};

/* How a job ended, as the worker saw it (the worker survived every one of these). */
enum bh_outcome {
	BH_OUTCOME_RETURNED = 0, /* the job returned: status 0 done, else its non-zero return */
	BH_OUTCOME_SIGNALED = 1, /* an exec: job's command was killed: status = signal number */
	BH_OUTCOME_SPAWN_FAILED = 2, /* an exec: job's command could not start: status = errno */
	BH_OUTCOME_CANCELLED = 3, /* cancelled before it started (a CANCEL came): status 0 */
	/* A contained run's process died (BH_ASSIGN_CONTAIN; a CRASH frame with
	   BH_CRASH_CONTAINED may have come first): */
	BH_OUTCOME_DIED_SIGNAL = 4, /* killed by a signal: status = signal number */
	BH_OUTCOME_DIED_EXIT = 5,   /* exited before it reported an end: status = exit code */
};

struct bh_done_entry {
	uint64_t job_id;
	int32_t status;    /* see outcome */
	uint32_t run_usec; /* how long the job ran, saturated at UINT32_MAX */
	uint32_t outcome;  /* enum bh_outcome */
	uint32_t reserved; /* 0 */
};

/*
 * A SPEC frame: everything a worker needs to run the jobs of one group. The master sends it
 * right before the first ASSIGN that names it, and FORGET once the worker holds no job of it
 * (for submitted groups; a config's groups stay defined). Ids are the master's: never reused
 * while the worker may know them.
 */
struct bh_spec {
	uint32_t id;     /* ASSIGN entries name it; 0..UINT32_MAX-1 */
	const char *run; /* "builtin:NAME", "plugin:PATH:SYMBOL" or "exec:COMMAND ARGS..." */
	const char *args;   /* "k=v k=v" */
	const char *name;   /* the group's name (logs, output file names) */
	const char *output; /* exec: directory for per-job stdout/stderr files; "" = the log */
	/* exec: settings; zeroes (NULL, false) are the defaults */
	const char *environment; /* "" or NAME=VALUE words (common/exec-settings.h) */
	const char *working_directory; /* "" or an absolute path */
	const uint8_t *success_exit_status; /* BH_EXIT_SET_BYTES; NULL: { 0 } */
	bool has_nice; /* false: leave it (BH_NICE_INHERIT on the wire) */
	int32_t nice; /* -20..19 */
};

#define BH_BATCH_HEADER_SIZE 8u /* uint32 count, uint32 reserved */
#define BH_ASSIGN_MAX                                                                              \
	((BH_FRAME_MAX - sizeof(struct bh_frame_header) - BH_BATCH_HEADER_SIZE) /                  \
	 sizeof(struct bh_assign_entry))
#define BH_DONE_MAX                                                                                \
	((BH_FRAME_MAX - sizeof(struct bh_frame_header) - BH_BATCH_HEADER_SIZE) /                  \
	 sizeof(struct bh_done_entry))

/* A decoded frame. Pointers point into the buffer that was decoded. */
struct bh_frame {
	enum bh_frame_type type;
	union {
		struct bh_hello hello;
		struct bh_crash crash;
		struct bh_crash_info crash_info;
		struct {
			uint32_t id;
			const char *run; /* none of these strings is NUL-terminated: use *_len */
			uint16_t run_len;
			const char *args;
			uint16_t args_len;
			const char *name;
			uint16_t name_len;
			const char *output;
			uint16_t output_len;
			const char *environment;
			uint16_t environment_len;
			const char *working_directory;
			uint16_t working_directory_len;
			const uint8_t *success_exit_status; /* BH_EXIT_SET_BYTES, bit 0 set */
			int32_t nice; /* -20..19 or BH_NICE_INHERIT */
		} spec;
		struct {
			uint64_t job_id;
			const char *text; /* RESULT: the result line; INPUT: the input; LOG: */
			uint16_t len;     /* the line. Not NUL-terminated, no NUL inside; RESULT */
			uint16_t level;   /* <= BH_RESULT_MAX, INPUT 1..BH_INPUT_MAX, LOG <= */
		} text;                   /* BH_LOG_MAX bytes; level: LOG's (3 err..7 debug) */
		struct {
			uint64_t job_id;
			uint32_t permille; /* 0..BH_PROGRESS_MAX */
		} progress;
		struct {
			uint64_t job_id;
			int32_t pid; /* > 0; also the command's process group */
		} exec;
		struct {
			uint64_t job_id;
		} cancel;
		struct {
			uint32_t count;
			const uint8_t *entries; /* use bh_frame_assign_entry() */
		} assign;
		struct {
			uint32_t count;
			const uint8_t *entries; /* use bh_frame_done_entry() */
		} done;
		struct {
			uint32_t kind; /* enum bh_inject_kind */
		} inject;
		struct {
			uint32_t spec_id;
		} forget;
	};
};

/*
 * Checks and decodes one frame of `len` bytes. Returns 0, or:
 *   -EBADMSG   shorter than a header, bad magic, or payload length != len - header
 *   -EPROTO    wrong protocol version
 *   -EMSGSIZE  longer than BH_FRAME_MAX
 *   -ENOMSG    unknown frame type
 *   -EINVAL    payload malformed for its type (counts, string lengths, reserved bits)
 */
int bh_frame_decode(const void *buf, size_t len, struct bh_frame *ret);

/* True if frames of this type may be sent by a worker (else by the master). */
bool bh_frame_from_worker(enum bh_frame_type type);

void bh_frame_assign_entry(const struct bh_frame *f, uint32_t i, struct bh_assign_entry *ret);
void bh_frame_done_entry(const struct bh_frame *f, uint32_t i, struct bh_done_entry *ret);

/*
 * Encoders write into buf (at least BH_FRAME_MAX bytes is always enough) and return the
 * frame length, or 0 if it does not fit. bh_encode_crash() and bh_encode_crash_info() are
 * async-signal-safe.
 */
size_t bh_encode_hello(void *buf, size_t size, int32_t pid, uint32_t threads);
size_t bh_encode_crash(void *buf, size_t size, const struct bh_crash *c);
/* CRASH_INFO from info (text as described above); 0 if it breaks a rule. Async-signal-safe. */
size_t bh_encode_crash_info(void *buf, size_t size, const struct bh_crash_info *info);
size_t bh_encode_spec(void *buf, size_t size, const struct bh_spec *s);
size_t bh_encode_result(void *buf, size_t size, uint64_t job_id, const char *text, size_t len);
/* LOG: job_id's line (<= BH_LOG_MAX bytes, no NUL) at syslog level (3..7). */
size_t bh_encode_log(void *buf, size_t size, uint64_t job_id, int level, const char *text,
		     size_t len);
size_t bh_encode_input(void *buf, size_t size, uint64_t job_id, const char *input);
size_t bh_encode_progress(void *buf, size_t size, uint64_t job_id, uint32_t permille);
size_t bh_encode_exec(void *buf, size_t size, uint64_t job_id, int32_t pid);
size_t bh_encode_cancel(void *buf, size_t size, uint64_t job_id);
size_t bh_encode_stop(void *buf, size_t size);
size_t bh_encode_inject(void *buf, size_t size, enum bh_inject_kind kind);
size_t bh_encode_forget(void *buf, size_t size, uint32_t spec_id);

/* Batch frames (ASSIGN, DONE) built entry by entry. */
struct bh_batch {
	uint8_t *buf;
	size_t size;
	uint32_t count;
	uint32_t max;
	enum bh_frame_type type;
};

void bh_batch_init(struct bh_batch *b, void *buf, size_t size, enum bh_frame_type type);
/* False when the frame is full (send it, re-init, add again). */
bool bh_batch_add_assign(struct bh_batch *b, uint64_t job_id, uint32_t spec_id, uint32_t flags);
bool bh_batch_add_done(struct bh_batch *b, uint64_t job_id, enum bh_outcome outcome,
		       int32_t status, uint32_t run_usec);
/* Writes header and count; returns the frame length (0 if empty). */
size_t bh_batch_finish(struct bh_batch *b);

/* Name of a frame type for logs ("HELLO"), "UNKNOWN" otherwise. */
const char *bh_frame_type_name(unsigned type);
