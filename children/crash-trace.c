/* SPDX-License-Identifier: MIT */
/*
 * Crash diagnostics: after the crash handler (crash.c) has sent its CRASH frame, which alone
 * decides the blame, it calls crash_trace_send() for a second, bounded frame, CRASH_INFO: the
 * faulting thread's stack as "object:symbol+0xoffset" lines. If anything here fails, the
 * CRASH frame is already out: diagnostics never turn a culprit into suspects.
 *
 * What it uses, in a signal handler:
 *   - backtrace() (glibc, _Unwind_Backtrace underneath) into a bounded array on the stack.
 *     It is not async-signal-safe on its first call, which dlopen()s libgcc_s and allocates;
 *     crash_trace_prepare() makes that first call at every thread's start, so in the handler
 *     it only walks the stack. It unwinds through the signal frame (the kernel's
 *     __restore_rt has unwind info), so the frames below the handler are the faulting one
 *     and its callers.
 *   - dladdr() for each PC: it reads the link maps under glibc's dl_load_lock, which is
 *     recursive, so a crash inside dlopen() on this same thread does not deadlock (another
 *     thread inside dlopen() makes us wait until it is done, which it will be: it is not
 *     stopped).
 *   - formatting by hand (no snprintf: not async-signal-safe), into a stack buffer.
 * Frame 0 is the faulting instruction's PC from the ucontext (x86_64, aarch64; elsewhere the
 * first unwound frame below the handler), so the summary names the function that faulted
 * even when unwinding finds nothing more. The handler's own frames are skipped by looking
 * for that PC in what backtrace() returned. The trace ends at the job's floor (the return
 * address into job_spec_run()'s caller, which every run of a job records): below it are the
 * pool's and the C library's frames (start_thread, clone3), the same for every crash, and
 * dladdr() in the C library walks its thousands of symbols for each.
 */
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <ucontext.h>

#include "common/protocol.h"
#include "crash-trace.h"
#include "job-context.h"

#define UNWIND_MAX (BH_CRASH_FRAMES_MAX + 8) /* the handler's own frames come first */
#define OWN_FRAMES 3 /* crash_trace_send, crash_signal, the signal trampoline */

/* A bounded line being written: what does not fit is dropped. */
struct out {
	char *p;
	size_t len;
	size_t cap;
};

static void put_char(struct out *o, char c)
{
	if (o->len < o->cap)
		o->p[o->len++] = c >= 0x20 && c <= 0x7e ? c : '?';
}

static void put_str(struct out *o, const char *s)
{
	while (*s)
		put_char(o, *s++);
}

static void put_hex(struct out *o, uintptr_t v)
{
	char digits[2 * sizeof(v)];
	size_t n = 0;

	put_str(o, "0x");
	do {
		digits[n++] = "0123456789abcdef"[v & 0xf];
		v >>= 4;
	} while (v);
	while (n)
		put_char(o, digits[--n]);
}

static const char *base_name(const char *path)
{
	const char *b = path;

	for (const char *p = path; *p; p++)
		if (*p == '/' && p[1])
			b = p + 1;
	return b;
}

/* One frame: "object:symbol+0xoff", "object:+0xoff" from the object's base, or "0xPC". */
static void describe_pc(struct out *o, uintptr_t pc)
{
	Dl_info di;

	if (!dladdr((void *)pc, &di) || !di.dli_fname) {
		put_hex(o, pc);
		return;
	}
	put_str(o, di.dli_fname[0] ? base_name(di.dli_fname) : "?");
	put_char(o, ':');
	if (di.dli_sname && di.dli_saddr && pc >= (uintptr_t)di.dli_saddr) {
		put_str(o, di.dli_sname);
		put_char(o, '+');
		put_hex(o, pc - (uintptr_t)di.dli_saddr);
	} else {
		put_char(o, '+');
		put_hex(o, pc - (uintptr_t)di.dli_fbase);
	}
}

static uintptr_t fault_pc(const void *ucontext)
{
	const ucontext_t *uc = ucontext;

	if (!uc)
		return 0;
#if defined(__x86_64__)
	return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
	return (uintptr_t)uc->uc_mcontext.pc;
#else
	return 0;
#endif
}

void crash_trace_prepare(void)
{
	void *pc[1];

	(void)backtrace(pc, 1);
}

/* noinline: its frame and crash_signal's are the OWN_FRAMES the fallback skips. */
__attribute__((noinline)) void crash_trace_send(uint64_t job_id, uint64_t addr,
						const void *ucontext, const void *floor)
{
	uint8_t buf[sizeof(struct bh_frame_header) + 24 + BH_CRASH_TEXT_MAX];
	char text[BH_CRASH_TEXT_MAX];
	void *pcs[UNWIND_MAX];
	uintptr_t list[BH_CRASH_FRAMES_MAX];
	uintptr_t pc = fault_pc(ucontext);
	int n = backtrace(pcs, UNWIND_MAX);
	unsigned frames = 0, from = OWN_FRAMES;
	struct out o = { text, 0, sizeof(text) };
	struct bh_crash_info info = { .job_id = job_id, .addr = addr };
	size_t len;

	for (int i = 0; pc && i < n; i++)
		if ((uintptr_t)pcs[i] == pc) {
			from = (unsigned)i + 1;
			break;
		}
	if (pc)
		list[frames++] = pc;
	for (unsigned i = from; i < (unsigned)(n > 0 ? n : 0) && frames < BH_CRASH_FRAMES_MAX; i++) {
		if (floor && pcs[i] == floor)
			break; /* the worker's own frames, down to clone3: nothing to tell */
		list[frames++] = (uintptr_t)pcs[i];
	}
	if (frames == 0)
		return;
	for (unsigned i = 0; i < frames; i++) {
		struct out line = { text + o.len, 0, BH_CRASH_LINE_MAX };

		describe_pc(&line, list[i]);
		o.len += line.len;
		text[o.len++] = '\n';
	}
	info.text = text;
	info.len = (uint16_t)o.len;
	info.frames = (uint16_t)frames;
	len = bh_encode_crash_info(buf, sizeof(buf), &info);
	if (len == 0)
		return;
	while (send(job_context_socket(), buf, len, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}
