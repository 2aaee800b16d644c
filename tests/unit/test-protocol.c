/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/protocol.c. Every encoder round-trips through bh_frame_decode();
 * batches fill up to BH_ASSIGN_MAX / BH_DONE_MAX and refuse one more; every rejection the
 * header promises is checked with its error code; and a fixed-seed mutation loop throws
 * damaged frames at the decoder, which must never crash and must only accept frames that
 * re-encode to the very same bytes.
 *
 * Frames to be rejected are copied into buffers of exactly their length, so that an ASan
 * build catches any read past the end.
 */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/protocol.h"

#define HDR sizeof(struct bh_frame_header)
#define OFF_MAGIC offsetof(struct bh_frame_header, magic)
#define OFF_VERSION offsetof(struct bh_frame_header, version)
#define OFF_TYPE offsetof(struct bh_frame_header, type)
#define OFF_LENGTH offsetof(struct bh_frame_header, length)

/* Valid frames of every type, built once (in the parent) by samples_setup(). */
struct sample {
	const char *name;
	enum bh_frame_type type;
	uint8_t *buf;
	size_t len;
};

#define SAMPLES_MAX 32
static struct sample samples[SAMPLES_MAX];
static size_t n_samples;

static uint8_t scratch[BH_FRAME_MAX];

/*
 * For hot loops: every passing ck_assert() writes a progress mark to Check's pipe, which costs
 * a system call; this one only calls into Check on failure.
 */
#define require(cond, ...)                         \
	do {                                       \
		if (!(cond))                       \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static uint8_t *memdup_exact(const void *p, size_t len)
{
	uint8_t *q = malloc(len ? len : 1);

	require(q, "out of memory");
	if (len)
		memcpy(q, p, len);
	return q;
}

/* Decodes a copy of exactly `len` bytes, for frames that must be rejected. */
static int decode_copy(const void *buf, size_t len)
{
	uint8_t *q = memdup_exact(buf, len);
	struct bh_frame f;
	int r = bh_frame_decode(q, len, &f);

	free(q);
	return r;
}

static void set_u32(uint8_t *buf, size_t off, uint32_t v)
{
	memcpy(buf + off, &v, sizeof(v));
}

static void set_u64(uint8_t *buf, size_t off, uint64_t v)
{
	memcpy(buf + off, &v, sizeof(v));
}

static void set_length(uint8_t *buf, uint32_t len)
{
	set_u32(buf, OFF_LENGTH, len);
}

/* A header by hand, for frames no encoder would write. */
static size_t put_raw_header(uint8_t *buf, unsigned type, size_t payload)
{
	struct bh_frame_header h = {
		.magic = BH_PROTO_MAGIC,
		.version = BH_PROTO_VERSION,
		.type = (uint8_t)type,
		.length = (uint32_t)payload,
	};

	memcpy(buf, &h, HDR);
	return HDR + payload;
}

/* Encodes f again from its decoded form; the result must equal what was decoded. */
static size_t reencode(const struct bh_frame *f, uint8_t *out)
{
	static char str[6][BH_SPEC_STRING_MAX + 1], input[BH_INPUT_MAX + 1];
	struct bh_batch b;

	switch (f->type) {
	case BH_FRAME_HELLO:
		return bh_encode_hello(out, BH_FRAME_MAX, f->hello.pid, f->hello.threads);
	case BH_FRAME_CRASH:
		return bh_encode_crash(out, BH_FRAME_MAX, &f->crash);
	case BH_FRAME_CRASH_INFO:
		return bh_encode_crash_info(out, BH_FRAME_MAX, &f->crash_info);
	case BH_FRAME_STOP:
		return bh_encode_stop(out, BH_FRAME_MAX);
	case BH_FRAME_INJECT:
		return bh_encode_inject(out, BH_FRAME_MAX, (enum bh_inject_kind)f->inject.kind);
	case BH_FRAME_FORGET:
		return bh_encode_forget(out, BH_FRAME_MAX, f->forget.spec_id);
	case BH_FRAME_SPEC: {
		const char *p[6] = { f->spec.run,    f->spec.args,        f->spec.name,
				     f->spec.output, f->spec.environment, f->spec.working_directory };
		uint16_t l[6] = { f->spec.run_len,	   f->spec.args_len,
				  f->spec.name_len,	   f->spec.output_len,
				  f->spec.environment_len, f->spec.working_directory_len };

		for (unsigned i = 0; i < 6; i++) {
			require(l[i] <= BH_SPEC_STRING_MAX, "string %u: %u bytes", i, l[i]);
			memcpy(str[i], p[i], l[i]);
			str[i][l[i]] = 0;
		}
		return bh_encode_spec(out, BH_FRAME_MAX,
				      &(struct bh_spec){ .id = f->spec.id,
							 .run = str[0],
							 .args = str[1],
							 .name = str[2],
							 .output = str[3],
							 .environment = str[4],
							 .working_directory = str[5],
							 .success_exit_status =
								 f->spec.success_exit_status,
							 .has_nice = f->spec.nice != BH_NICE_INHERIT,
							 .nice = f->spec.nice });
	}
	case BH_FRAME_RESULT:
		return bh_encode_result(out, BH_FRAME_MAX, f->text.job_id, f->text.text,
					f->text.len);
	case BH_FRAME_LOG:
		return bh_encode_log(out, BH_FRAME_MAX, f->text.job_id, f->text.level, f->text.text,
				     f->text.len);
	case BH_FRAME_INPUT:
		require(f->text.len <= BH_INPUT_MAX, "input of %u bytes", f->text.len);
		memcpy(input, f->text.text, f->text.len);
		input[f->text.len] = 0;
		return bh_encode_input(out, BH_FRAME_MAX, f->text.job_id, input);
	case BH_FRAME_PROGRESS:
		return bh_encode_progress(out, BH_FRAME_MAX, f->progress.job_id,
					  f->progress.permille);
	case BH_FRAME_EXEC:
		return bh_encode_exec(out, BH_FRAME_MAX, f->exec.job_id, f->exec.pid);
	case BH_FRAME_CANCEL:
		return bh_encode_cancel(out, BH_FRAME_MAX, f->cancel.job_id);
	case BH_FRAME_ASSIGN:
		bh_batch_init(&b, out, BH_FRAME_MAX, BH_FRAME_ASSIGN);
		for (uint32_t i = 0; i < f->assign.count; i++) {
			struct bh_assign_entry e;

			bh_frame_assign_entry(f, i, &e);
			require(bh_batch_add_assign(&b, e.job_id, e.spec_id, e.flags), "entry %u",
				i);
		}
		return bh_batch_finish(&b);
	case BH_FRAME_DONE:
		bh_batch_init(&b, out, BH_FRAME_MAX, BH_FRAME_DONE);
		for (uint32_t i = 0; i < f->done.count; i++) {
			struct bh_done_entry e;

			bh_frame_done_entry(f, i, &e);
			require(e.reserved == 0, "entry %u: reserved %u", i, e.reserved);
			require(bh_batch_add_done(&b, e.job_id, (enum bh_outcome)e.outcome,
						  e.status, e.run_usec),
				"entry %u", i);
		}
		return bh_batch_finish(&b);
	}
	ck_abort_msg("decoded an unknown frame type %d", (int)f->type);
	return 0;
}

static void add_sample(const char *name, enum bh_frame_type type, size_t len)
{
	if (len == 0 || n_samples >= SAMPLES_MAX)
		abort();
	samples[n_samples++] = (struct sample){
		.name = name, .type = type, .buf = memdup_exact(scratch, len), .len = len
	};
}

static void add_batch_sample(const char *name, enum bh_frame_type type, uint32_t n)
{
	struct bh_batch b;

	bh_batch_init(&b, scratch, sizeof(scratch), type);
	for (uint32_t i = 1; i <= n; i++) {
		/* Entries of every ASSIGN flag and every DONE outcome. */
		bool ok = type == BH_FRAME_ASSIGN
				  ? bh_batch_add_assign(&b, i * 1000003ull, i % 7, i % 4)
			  : i % 4 == 0 ? bh_batch_add_done(&b, i * 999983ull, BH_OUTCOME_RETURNED,
							   (int32_t)i - 3, i)
			  : i % 4 == 1 ? bh_batch_add_done(&b, i * 999983ull, BH_OUTCOME_SIGNALED,
							   (int32_t)(1 + i % 64), 0)
			  : i % 4 == 2 ? bh_batch_add_done(&b, i * 999983ull,
							   BH_OUTCOME_SPAWN_FAILED, 2, UINT32_MAX)
				       : bh_batch_add_done(&b, i * 999983ull, BH_OUTCOME_CANCELLED,
							   0, 0);
		if (!ok)
			abort();
	}
	add_sample(name, type, bh_batch_finish(&b));
}

#define CRASH_TEXT "crashy.so:parse_record+0x11\ncrashy.so:crash_job+0x9\nbulkhead-worker:+0x4711\n"

/* CRASH_INFO for job with the frames of text (each ended by '\n'). */
static size_t crash_info(uint8_t *buf, uint64_t job, uint64_t addr, const char *text)
{
	struct bh_crash_info ci = { .job_id = job, .addr = addr, .text = text };

	ci.len = (uint16_t)strlen(text);
	for (const char *p = text; *p; p++)
		ci.frames += *p == '\n';
	return bh_encode_crash_info(buf, BH_FRAME_MAX, &ci);
}

/* CRASH_INFO at its bounds: BH_CRASH_FRAMES_MAX frames of BH_CRASH_LINE_MAX bytes. */
static size_t crash_info_max(uint8_t *buf)
{
	static char text[BH_CRASH_TEXT_MAX + 1];

	for (unsigned i = 0; i < BH_CRASH_FRAMES_MAX; i++) {
		memset(text + i * (BH_CRASH_LINE_MAX + 1), 'a' + (char)i, BH_CRASH_LINE_MAX);
		text[i * (BH_CRASH_LINE_MAX + 1) + BH_CRASH_LINE_MAX] = '\n';
	}
	text[BH_CRASH_TEXT_MAX] = 0;
	return crash_info(buf, UINT64_MAX, UINT64_MAX, text);
}

static void samples_setup(void)
{
	static char big_run[BH_SPEC_STRING_MAX + 1], big_args[BH_SPEC_STRING_MAX + 1];
	struct bh_crash sig = {
		.job_id = 42, .kind = BH_CRASH_SIGNAL, .signo = 11, .code = 1, .addr = 0xdeadbeef
	};
	struct bh_crash ex = { .job_id = 7, .kind = BH_CRASH_EXIT, .code = 3 };
	struct bh_crash oom = { .job_id = 0, .kind = BH_CRASH_OOM, .signo = 6, .code = -6 };

	add_sample("hello", BH_FRAME_HELLO, bh_encode_hello(scratch, sizeof(scratch), 1234, 4));
	add_sample("crash-signal", BH_FRAME_CRASH, bh_encode_crash(scratch, sizeof(scratch), &sig));
	add_sample("crash-exit", BH_FRAME_CRASH, bh_encode_crash(scratch, sizeof(scratch), &ex));
	add_sample("crash-oom", BH_FRAME_CRASH, bh_encode_crash(scratch, sizeof(scratch), &oom));
	add_sample("crash-info", BH_FRAME_CRASH_INFO, crash_info(scratch, 42, 0, CRASH_TEXT));
	add_sample("crash-info-max", BH_FRAME_CRASH_INFO, crash_info_max(scratch));
	add_sample("spec", BH_FRAME_SPEC,
		   bh_encode_spec(scratch, sizeof(scratch),
				  &(struct bh_spec){ .id = 5,
						     .run = "builtin:balance",
						     .args = "iterations=100 amount=5",
						     .name = "bank" }));
	add_sample("spec-noargs", BH_FRAME_SPEC,
		   bh_encode_spec(scratch, sizeof(scratch),
				  &(struct bh_spec){ .id = 0, .run = "builtin:noop" }));
	add_sample("spec-exec", BH_FRAME_SPEC,
		   bh_encode_spec(scratch, sizeof(scratch),
				  &(struct bh_spec){ .id = 9,
						     .run = "exec:/bin/wc -l {input}",
						     .args = "",
						     .name = "count",
						     .output = "/var/lib/out" }));
	memset(big_run, 'r', BH_SPEC_STRING_MAX);
	memset(big_args, 'a', BH_SPEC_STRING_MAX);
	add_sample("spec-max", BH_FRAME_SPEC,
		   bh_encode_spec(scratch, sizeof(scratch),
				  &(struct bh_spec){ .id = UINT32_MAX - 1,
						     .run = big_run,
						     .args = big_args,
						     .name = big_args,
						     .output = big_run }));
	add_sample("stop", BH_FRAME_STOP, bh_encode_stop(scratch, sizeof(scratch)));
	add_sample("result", BH_FRAME_RESULT,
		   bh_encode_result(scratch, sizeof(scratch), 17, "3 lines", 7));
	add_sample("result-empty", BH_FRAME_RESULT,
		   bh_encode_result(scratch, sizeof(scratch), UINT64_MAX, "", 0));
	add_sample("log", BH_FRAME_LOG,
		   bh_encode_log(scratch, sizeof(scratch), 22, 6, "rows: 12", 8));
	add_sample("input", BH_FRAME_INPUT,
		   bh_encode_input(scratch, sizeof(scratch), 18, "/srv/in/a b.txt"));
	add_sample("progress", BH_FRAME_PROGRESS,
		   bh_encode_progress(scratch, sizeof(scratch), 19, 500));
	add_sample("exec", BH_FRAME_EXEC, bh_encode_exec(scratch, sizeof(scratch), 20, 31337));
	add_sample("cancel", BH_FRAME_CANCEL, bh_encode_cancel(scratch, sizeof(scratch), 21));
	add_sample("inject", BH_FRAME_INJECT,
		   bh_encode_inject(scratch, sizeof(scratch), BH_INJECT_HANG));
	add_sample("forget", BH_FRAME_FORGET, bh_encode_forget(scratch, sizeof(scratch), 77));
	add_batch_sample("assign-1", BH_FRAME_ASSIGN, 1);
	add_batch_sample("assign-3", BH_FRAME_ASSIGN, 3);
	add_batch_sample("assign-max", BH_FRAME_ASSIGN, BH_ASSIGN_MAX);
	add_batch_sample("done-1", BH_FRAME_DONE, 1);
	add_batch_sample("done-5", BH_FRAME_DONE, 5);
	add_batch_sample("done-max", BH_FRAME_DONE, BH_DONE_MAX);
}

static void samples_teardown(void)
{
	for (size_t i = 0; i < n_samples; i++)
		free(samples[i].buf);
	n_samples = 0;
}

/* Decodes s in place (must succeed) and checks that it re-encodes byte for byte. */
static void assert_roundtrip(const uint8_t *buf, size_t len, struct bh_frame *f)
{
	static uint8_t out[BH_FRAME_MAX];

	ck_assert_uint_ne(len, 0);
	ck_assert_int_eq(bh_frame_decode(buf, len, f), 0);
	ck_assert_uint_eq(reencode(f, out), len);
	ck_assert(memcmp(out, buf, len) == 0);
}

/* --- round trips ---------------------------------------------------------------------- */

START_TEST(test_hello_roundtrip)
{
	struct bh_frame f;
	size_t len;

	len = bh_encode_hello(scratch, sizeof(scratch), 4242, 8);
	ck_assert_uint_eq(len, HDR + sizeof(struct bh_hello));
	assert_roundtrip(scratch, len, &f);
	ck_assert_int_eq(f.type, BH_FRAME_HELLO);
	ck_assert_int_eq(f.hello.pid, 4242);
	ck_assert_uint_eq(f.hello.threads, 8);

	len = bh_encode_hello(scratch, sizeof(scratch), INT32_MAX, UINT32_MAX);
	assert_roundtrip(scratch, len, &f);
	ck_assert_int_eq(f.hello.pid, INT32_MAX);
	ck_assert_uint_eq(f.hello.threads, UINT32_MAX);

	/* Exactly enough room, and one byte less. */
	ck_assert_uint_eq(bh_encode_hello(scratch, HDR + 8, 1, 1), HDR + 8);
	ck_assert_uint_eq(bh_encode_hello(scratch, HDR + 7, 1, 1), 0);
	ck_assert_uint_eq(bh_encode_hello(scratch, 0, 1, 1), 0);
}
END_TEST

START_TEST(test_crash_roundtrip)
{
	const struct bh_crash cases[] = {
		{ .job_id = 1, .kind = BH_CRASH_SIGNAL, .signo = 11, .code = 1, .addr = 0x10 },
		{ .job_id = UINT64_MAX, .kind = BH_CRASH_SIGNAL, .signo = 64, .addr = UINT64_MAX },
		{ .job_id = 0, .kind = BH_CRASH_SIGNAL, .signo = 1, .code = INT32_MIN },
		{ .job_id = 9, .kind = BH_CRASH_EXIT, .signo = 0, .code = 17 },
		{ .job_id = 0, .kind = BH_CRASH_EXIT, .signo = 0, .code = -1 },
		{ .job_id = 3, .kind = BH_CRASH_OOM, .signo = 6, .code = INT32_MAX },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bh_frame f;
		size_t len = bh_encode_crash(scratch, sizeof(scratch), &cases[i]);

		ck_assert_uint_eq(len, HDR + sizeof(struct bh_crash));
		assert_roundtrip(scratch, len, &f);
		ck_assert_int_eq(f.type, BH_FRAME_CRASH);
		ck_assert(memcmp(&f.crash, &cases[i], sizeof(cases[i])) == 0);
	}
	ck_assert_uint_eq(bh_encode_crash(scratch, HDR + sizeof(struct bh_crash) - 1, &cases[0]),
			  0);
}
END_TEST

START_TEST(test_crash_info_roundtrip)
{
	struct bh_frame f;
	size_t len = crash_info(scratch, 42, 0x10, CRASH_TEXT);

	ck_assert_uint_eq(len, HDR + 24 + strlen(CRASH_TEXT));
	assert_roundtrip(scratch, len, &f);
	ck_assert_int_eq(f.type, BH_FRAME_CRASH_INFO);
	ck_assert_uint_eq(f.crash_info.job_id, 42);
	ck_assert_uint_eq(f.crash_info.addr, 0x10);
	ck_assert_uint_eq(f.crash_info.frames, 3);
	ck_assert_uint_eq(f.crash_info.len, strlen(CRASH_TEXT));
	ck_assert(memcmp(f.crash_info.text, CRASH_TEXT, f.crash_info.len) == 0);
	/* Job 0 (a crash outside any job) is allowed; the largest one fits. */
	ck_assert_uint_ne(crash_info(scratch, 0, 0, "x\n"), 0);
	len = crash_info_max(scratch);
	ck_assert_uint_eq(len, HDR + 24 + BH_CRASH_TEXT_MAX);
	assert_roundtrip(scratch, len, &f);
	ck_assert_uint_eq(f.crash_info.frames, BH_CRASH_FRAMES_MAX);
	/* Too small a buffer. */
	ck_assert_uint_eq(bh_encode_crash_info(scratch, HDR + 24 + 2,
					       &(struct bh_crash_info){ .text = "ab\n",
									.len = 3,
									.frames = 1 }),
			  0);
}
END_TEST

/* A SPEC with the given strings (NULL args/name/output: empty). */
static size_t spec(uint8_t *buf, size_t size, uint32_t id, const char *run, const char *args,
		   const char *name, const char *output)
{
	return bh_encode_spec(
		buf, size,
		&(struct bh_spec){
			.id = id, .run = run, .args = args, .name = name, .output = output });
}

#define SPEC_FIXED 56u /* u32 id, 6 x u16 lengths, i32 nice, u32 reserved, 32 bytes of exit codes */

START_TEST(test_spec_roundtrip)
{
	static char big[BH_SPEC_STRING_MAX + 2];
	struct bh_frame f;
	size_t len;

	len = spec(scratch, sizeof(scratch), 77, "builtin:sleep", "ms=5", "nap", "/out");
	ck_assert_uint_eq(len, HDR + SPEC_FIXED + 13 + 4 + 3 + 4);
	assert_roundtrip(scratch, len, &f);
	ck_assert_int_eq(f.type, BH_FRAME_SPEC);
	ck_assert_uint_eq(f.spec.id, 77);
	ck_assert_uint_eq(f.spec.run_len, 13);
	ck_assert(memcmp(f.spec.run, "builtin:sleep", 13) == 0);
	ck_assert_uint_eq(f.spec.args_len, 4);
	ck_assert(memcmp(f.spec.args, "ms=5", 4) == 0);
	ck_assert_uint_eq(f.spec.name_len, 3);
	ck_assert(memcmp(f.spec.name, "nap", 3) == 0);
	ck_assert_uint_eq(f.spec.output_len, 4);
	ck_assert(memcmp(f.spec.output, "/out", 4) == 0);
	/* Pointers point into the decoded buffer. */
	ck_assert_ptr_eq(f.spec.run, (const char *)scratch + HDR + SPEC_FIXED);
	ck_assert_ptr_eq(f.spec.args, (const char *)scratch + HDR + SPEC_FIXED + 13);
	ck_assert_ptr_eq(f.spec.name, (const char *)scratch + HDR + SPEC_FIXED + 17);
	ck_assert_ptr_eq(f.spec.output, (const char *)scratch + HDR + SPEC_FIXED + 20);

	/* NULL and "" are the same: empty. */
	len = spec(scratch, sizeof(scratch), 0, "x", NULL, NULL, NULL);
	ck_assert_uint_eq(len, HDR + SPEC_FIXED + 1);
	assert_roundtrip(scratch, len, &f);
	ck_assert_uint_eq(f.spec.run_len, 1);
	ck_assert_uint_eq(f.spec.args_len, 0);
	ck_assert_uint_eq(f.spec.name_len, 0);
	ck_assert_uint_eq(f.spec.output_len, 0);
	ck_assert_uint_eq(spec(scratch, sizeof(scratch), 0, "x", "", "", ""), len);

	/* Only output set: the others are empty and the offsets still add up. */
	len = spec(scratch, sizeof(scratch), 3, "exec:/bin/true", "", "", "/o");
	assert_roundtrip(scratch, len, &f);
	ck_assert_uint_eq(f.spec.output_len, 2);
	ck_assert(memcmp(f.spec.output, "/o", 2) == 0);

	/* The longest strings allowed (four of them still fit in a frame), and one more byte. */
	memset(big, 'z', BH_SPEC_STRING_MAX);
	big[BH_SPEC_STRING_MAX] = 0;
	len = spec(scratch, sizeof(scratch), 1, big, big, big, big);
	ck_assert_uint_eq(len, HDR + SPEC_FIXED + 4 * BH_SPEC_STRING_MAX);
	ck_assert_uint_le(len, BH_FRAME_MAX);
	assert_roundtrip(scratch, len, &f);
	ck_assert_uint_eq(f.spec.run_len, BH_SPEC_STRING_MAX);
	ck_assert_uint_eq(f.spec.args_len, BH_SPEC_STRING_MAX);
	ck_assert_uint_eq(f.spec.name_len, BH_SPEC_STRING_MAX);
	ck_assert_uint_eq(f.spec.output_len, BH_SPEC_STRING_MAX);
	big[BH_SPEC_STRING_MAX] = 'z';
	big[BH_SPEC_STRING_MAX + 1] = 0;
	ck_assert_uint_eq(spec(scratch, sizeof(scratch), 1, big, "", "", ""), 0);
	ck_assert_uint_eq(spec(scratch, sizeof(scratch), 1, "x", big, "", ""), 0);
	ck_assert_uint_eq(spec(scratch, sizeof(scratch), 1, "x", "", big, ""), 0);
	ck_assert_uint_eq(spec(scratch, sizeof(scratch), 1, "x", "", "", big), 0);

	/* An empty run is refused, and so is a buffer one byte too small. */
	ck_assert_uint_eq(spec(scratch, sizeof(scratch), 1, "", "a=b", "n", ""), 0);
	ck_assert_uint_eq(spec(scratch, HDR + SPEC_FIXED + 4, 1, "abc", "", "n", ""),
			  HDR + SPEC_FIXED + 4);
	ck_assert_uint_eq(spec(scratch, HDR + SPEC_FIXED + 3, 1, "abc", "", "n", ""), 0);
	ck_assert_uint_eq(spec(scratch, 0, 1, "abc", "", "", ""), 0);
}
END_TEST

START_TEST(test_stop_roundtrip)
{
	struct bh_frame f;
	size_t len = bh_encode_stop(scratch, sizeof(scratch));

	ck_assert_uint_eq(len, HDR);
	assert_roundtrip(scratch, len, &f);
	ck_assert_int_eq(f.type, BH_FRAME_STOP);
	ck_assert_uint_eq(bh_encode_stop(scratch, HDR), HDR);
	ck_assert_uint_eq(bh_encode_stop(scratch, HDR - 1), 0);
}
END_TEST

START_TEST(test_result_roundtrip)
{
	static char big[BH_RESULT_MAX + 1];
	struct bh_frame f;
	size_t len;

	len = bh_encode_result(scratch, sizeof(scratch), 12, "42 lines", 8);
	ck_assert_uint_eq(len, HDR + 16 + 8);
	assert_roundtrip(scratch, len, &f);
	ck_assert_int_eq(f.type, BH_FRAME_RESULT);
	ck_assert(bh_frame_from_worker(f.type));
	ck_assert_uint_eq(f.text.job_id, 12);
	ck_assert_uint_eq(f.text.len, 8);
	ck_assert(memcmp(f.text.text, "42 lines", 8) == 0);
	ck_assert_ptr_eq(f.text.text, (const char *)scratch + HDR + 16);

	/* Only len bytes count: the text need not be NUL-terminated there. */
	len = bh_encode_result(scratch, sizeof(scratch), 12, "42 lines", 2);
	assert_roundtrip(scratch, len, &f);
	ck_assert_uint_eq(f.text.len, 2);
	ck_assert(memcmp(f.text.text, "42", 2) == 0);

	/* Empty is a result too (the job cleared it). */
	len = bh_encode_result(scratch, sizeof(scratch), UINT64_MAX, "", 0);
	ck_assert_uint_eq(len, HDR + 16);
	assert_roundtrip(scratch, len, &f);
	ck_assert_uint_eq(f.text.job_id, UINT64_MAX);
	ck_assert_uint_eq(f.text.len, 0);

	/* BH_RESULT_MAX bytes and one more; job 0; a NUL inside; a buffer too small. */
	memset(big, 'r', sizeof(big));
	len = bh_encode_result(scratch, sizeof(scratch), 1, big, BH_RESULT_MAX);
	ck_assert_uint_eq(len, HDR + 16 + BH_RESULT_MAX);
	assert_roundtrip(scratch, len, &f);
	ck_assert_uint_eq(bh_encode_result(scratch, sizeof(scratch), 1, big, BH_RESULT_MAX + 1), 0);
	ck_assert_uint_eq(bh_encode_result(scratch, sizeof(scratch), 0, "x", 1), 0);
	ck_assert_uint_eq(bh_encode_result(scratch, sizeof(scratch), 1, "a\0b", 3), 0);
	ck_assert_uint_eq(bh_encode_result(scratch, HDR + 16 + 2, 1, "abc", 3), 0);
	ck_assert_uint_eq(bh_encode_result(scratch, HDR + 16 + 3, 1, "abc", 3), HDR + 16 + 3);
}
END_TEST

/* LOG: a RESULT-like text frame whose level (3..7) sits where RESULT has 0. */
START_TEST(test_log_roundtrip)
{
	static char big[BH_LOG_MAX + 1];
	struct bh_frame f;
	size_t len;

	len = bh_encode_log(scratch, sizeof(scratch), 9, 4, "disk slow", 9);
	ck_assert_uint_eq(len, HDR + 16 + 9);
	assert_roundtrip(scratch, len, &f);
	ck_assert_int_eq(f.type, BH_FRAME_LOG);
	ck_assert(bh_frame_from_worker(f.type));
	ck_assert_uint_eq(f.text.job_id, 9);
	ck_assert_uint_eq(f.text.level, 4);
	ck_assert(memcmp(f.text.text, "disk slow", 9) == 0);
	memset(big, 'l', sizeof(big));
	len = bh_encode_log(scratch, sizeof(scratch), 1, 7, big, BH_LOG_MAX);
	ck_assert_uint_eq(len, HDR + 16 + BH_LOG_MAX);
	assert_roundtrip(scratch, len, &f);
	ck_assert_uint_eq(bh_encode_log(scratch, sizeof(scratch), 1, 7, big, BH_LOG_MAX + 1), 0);
	ck_assert_uint_eq(bh_encode_log(scratch, sizeof(scratch), 1, 2, "x", 1), 0);
	ck_assert_uint_eq(bh_encode_log(scratch, sizeof(scratch), 1, 8, "x", 1), 0);
	ck_assert_uint_eq(bh_encode_log(scratch, sizeof(scratch), 0, 6, "x", 1), 0);
	/* A level out of range on the wire, and a RESULT with one: refused. */
	len = bh_encode_log(scratch, sizeof(scratch), 1, 6, "x", 1);
	scratch[HDR + 10] = 9;
	ck_assert_int_eq(bh_frame_decode(scratch, len, &f), -EINVAL);
	len = bh_encode_result(scratch, sizeof(scratch), 1, "x", 1);
	scratch[HDR + 10] = 6;
	ck_assert_int_eq(bh_frame_decode(scratch, len, &f), -EINVAL);
}
END_TEST

START_TEST(test_input_roundtrip)
{
	static char big[BH_INPUT_MAX + 2];
	struct bh_frame f;
	size_t len;

	len = bh_encode_input(scratch, sizeof(scratch), 5, "/srv/spool/a file");
	ck_assert_uint_eq(len, HDR + 16 + 17);
	assert_roundtrip(scratch, len, &f);
	ck_assert_int_eq(f.type, BH_FRAME_INPUT);
	ck_assert(!bh_frame_from_worker(f.type));
	ck_assert_uint_eq(f.text.job_id, 5);
	ck_assert_uint_eq(f.text.len, 17);
	ck_assert(memcmp(f.text.text, "/srv/spool/a file", 17) == 0);

	/* One byte, BH_INPUT_MAX bytes; empty and one byte more are refused. */
	len = bh_encode_input(scratch, sizeof(scratch), 5, "x");
	assert_roundtrip(scratch, len, &f);
	ck_assert_uint_eq(f.text.len, 1);
	memset(big, 'i', BH_INPUT_MAX);
	big[BH_INPUT_MAX] = 0;
	len = bh_encode_input(scratch, sizeof(scratch), 5, big);
	ck_assert_uint_eq(len, HDR + 16 + BH_INPUT_MAX);
	assert_roundtrip(scratch, len, &f);
	ck_assert_uint_eq(f.text.len, BH_INPUT_MAX);
	big[BH_INPUT_MAX] = 'i';
	big[BH_INPUT_MAX + 1] = 0;
	ck_assert_uint_eq(bh_encode_input(scratch, sizeof(scratch), 5, big), 0);
	ck_assert_uint_eq(bh_encode_input(scratch, sizeof(scratch), 5, ""), 0);
	ck_assert_uint_eq(bh_encode_input(scratch, sizeof(scratch), 0, "/x"), 0);
	ck_assert_uint_eq(bh_encode_input(scratch, HDR + 16 + 1, 5, "/x"), 0);
	ck_assert_uint_eq(bh_encode_input(scratch, HDR + 16 + 2, 5, "/x"), HDR + 16 + 2);
}
END_TEST

START_TEST(test_id_value_roundtrip)
{
	const uint32_t permilles[] = { 0, 1, 500, 999, BH_PROGRESS_MAX };
	const int32_t pids[] = { 1, 2, 4242, INT32_MAX };
	struct bh_frame f;
	size_t len;

	for (size_t i = 0; i < sizeof(permilles) / sizeof(permilles[0]); i++) {
		len = bh_encode_progress(scratch, sizeof(scratch), 100 + i, permilles[i]);
		ck_assert_uint_eq(len, HDR + 16);
		assert_roundtrip(scratch, len, &f);
		ck_assert_int_eq(f.type, BH_FRAME_PROGRESS);
		ck_assert(bh_frame_from_worker(f.type));
		ck_assert_uint_eq(f.progress.job_id, 100 + i);
		ck_assert_uint_eq(f.progress.permille, permilles[i]);
	}
	ck_assert_uint_eq(bh_encode_progress(scratch, sizeof(scratch), 1, BH_PROGRESS_MAX + 1), 0);
	ck_assert_uint_eq(bh_encode_progress(scratch, sizeof(scratch), 1, UINT32_MAX), 0);
	ck_assert_uint_eq(bh_encode_progress(scratch, sizeof(scratch), 0, 1), 0);

	for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++) {
		len = bh_encode_exec(scratch, sizeof(scratch), UINT64_MAX - i, pids[i]);
		ck_assert_uint_eq(len, HDR + 16);
		assert_roundtrip(scratch, len, &f);
		ck_assert_int_eq(f.type, BH_FRAME_EXEC);
		ck_assert(bh_frame_from_worker(f.type));
		ck_assert_uint_eq(f.exec.job_id, UINT64_MAX - i);
		ck_assert_int_eq(f.exec.pid, pids[i]);
	}
	ck_assert_uint_eq(bh_encode_exec(scratch, sizeof(scratch), 1, 0), 0);
	ck_assert_uint_eq(bh_encode_exec(scratch, sizeof(scratch), 1, -1), 0);
	ck_assert_uint_eq(bh_encode_exec(scratch, sizeof(scratch), 1, INT32_MIN), 0);
	ck_assert_uint_eq(bh_encode_exec(scratch, sizeof(scratch), 0, 5), 0);

	len = bh_encode_cancel(scratch, sizeof(scratch), 77);
	ck_assert_uint_eq(len, HDR + 16);
	assert_roundtrip(scratch, len, &f);
	ck_assert_int_eq(f.type, BH_FRAME_CANCEL);
	ck_assert(!bh_frame_from_worker(f.type));
	ck_assert_uint_eq(f.cancel.job_id, 77);
	ck_assert_uint_eq(bh_encode_cancel(scratch, sizeof(scratch), 0), 0);

	/* Exactly enough room, and one byte less. */
	ck_assert_uint_eq(bh_encode_progress(scratch, HDR + 16, 1, 1), HDR + 16);
	ck_assert_uint_eq(bh_encode_progress(scratch, HDR + 15, 1, 1), 0);
	ck_assert_uint_eq(bh_encode_exec(scratch, HDR + 15, 1, 1), 0);
	ck_assert_uint_eq(bh_encode_cancel(scratch, HDR + 15, 1), 0);
}
END_TEST

START_TEST(test_done_outcomes_roundtrip)
{
	const struct bh_done_entry cases[] = {
		{ .job_id = 1, .outcome = BH_OUTCOME_RETURNED, .status = 0, .run_usec = 5 },
		{ .job_id = 2, .outcome = BH_OUTCOME_RETURNED, .status = -1 },
		{ .job_id = 3, .outcome = BH_OUTCOME_RETURNED, .status = INT32_MIN },
		{ .job_id = 4, .outcome = BH_OUTCOME_SIGNALED, .status = 1 },
		{ .job_id = 5, .outcome = BH_OUTCOME_SIGNALED, .status = 9 },
		{ .job_id = 6, .outcome = BH_OUTCOME_SIGNALED, .status = 64 },
		{ .job_id = 7, .outcome = BH_OUTCOME_SPAWN_FAILED, .status = 2 },
		{ .job_id = 8,
		  .outcome = BH_OUTCOME_SPAWN_FAILED,
		  .status = INT32_MAX,
		  .run_usec = UINT32_MAX },
		{ .job_id = 9, .outcome = BH_OUTCOME_CANCELLED, .status = 0 },
		{ .job_id = 10, .outcome = BH_OUTCOME_DIED_SIGNAL, .status = 11 },
		{ .job_id = 11, .outcome = BH_OUTCOME_DIED_EXIT, .status = 3 },
	};
	const size_t n = sizeof(cases) / sizeof(cases[0]);
	struct bh_batch b;
	struct bh_frame f;
	size_t len;

	bh_batch_init(&b, scratch, sizeof(scratch), BH_FRAME_DONE);
	for (size_t i = 0; i < n; i++)
		ck_assert(bh_batch_add_done(&b, cases[i].job_id, (enum bh_outcome)cases[i].outcome,
					    cases[i].status, cases[i].run_usec));
	len = bh_batch_finish(&b);
	ck_assert_uint_eq(len, HDR + BH_BATCH_HEADER_SIZE + n * sizeof(struct bh_done_entry));
	assert_roundtrip(scratch, len, &f);
	ck_assert_uint_eq(f.done.count, n);
	for (uint32_t i = 0; i < n; i++) {
		struct bh_done_entry e;

		bh_frame_done_entry(&f, i, &e);
		ck_assert(memcmp(&e, &cases[i], sizeof(e)) == 0);
	}

	/* ASSIGN entries keep their flags. */
	bh_batch_init(&b, scratch, sizeof(scratch), BH_FRAME_ASSIGN);
	ck_assert(bh_batch_add_assign(&b, 10, 1, 0));
	ck_assert(bh_batch_add_assign(&b, 11, 2, BH_ASSIGN_INPUT));
	len = bh_batch_finish(&b);
	assert_roundtrip(scratch, len, &f);
	for (uint32_t i = 0; i < 2; i++) {
		struct bh_assign_entry e;

		bh_frame_assign_entry(&f, i, &e);
		ck_assert_uint_eq(e.job_id, 10 + i);
		ck_assert_uint_eq(e.spec_id, 1 + i);
		ck_assert_uint_eq(e.flags, i ? BH_ASSIGN_INPUT : 0);
	}
}
END_TEST

START_TEST(test_encoders_stay_in_bounds)
{
	static const struct bh_crash c = { .job_id = 1, .kind = BH_CRASH_SIGNAL, .signo = 11 };
	uint8_t buf[128];

	/* For every size too small, nothing is written at or past `size`. */
	for (size_t size = 0; size < 96; size++) {
		struct bh_batch b;

		memset(buf, 0xa5, sizeof(buf));
		bh_encode_hello(buf, size, 1, 1);
		bh_encode_crash(buf, size, &c);
		spec(buf, size, 1, "builtin:noop", "a=b", "name", "/out");
		bh_encode_stop(buf, size);
		bh_encode_inject(buf, size, BH_INJECT_SEGV);
		bh_encode_result(buf, size, 1, "result", 6);
		bh_encode_input(buf, size, 1, "/input/path");
		bh_encode_progress(buf, size, 1, 10);
		bh_encode_exec(buf, size, 1, 10);
		bh_encode_cancel(buf, size, 1);
		bh_batch_init(&b, buf, size, BH_FRAME_ASSIGN);
		while (bh_batch_add_assign(&b, 1, 1, BH_ASSIGN_INPUT))
			;
		bh_batch_finish(&b);
		bh_batch_init(&b, buf, size, BH_FRAME_DONE);
		while (bh_batch_add_done(&b, 1, BH_OUTCOME_SIGNALED, 9, 0))
			;
		bh_batch_finish(&b);
		for (size_t i = size; i < sizeof(buf); i++)
			ck_assert_msg(buf[i] == 0xa5, "size %zu: byte %zu written", size, i);
	}
}
END_TEST

static void batch_fill(enum bh_frame_type type, uint32_t max)
{
	static uint8_t buf[BH_FRAME_MAX];
	struct bh_batch b;
	struct bh_frame f;
	size_t len;

	bh_batch_init(&b, buf, sizeof(buf), type);
	ck_assert_uint_eq(b.max, max);
	ck_assert_uint_eq(bh_batch_finish(&b), 0); /* empty: nothing to send */
	size_t esz = type == BH_FRAME_ASSIGN ? sizeof(struct bh_assign_entry)
					     : sizeof(struct bh_done_entry);

	for (uint32_t i = 0; i < max; i++) {
		bool ok = type == BH_FRAME_ASSIGN
				  ? bh_batch_add_assign(&b, i + 1, i * 3, i & BH_ASSIGN_INPUT)
				  : bh_batch_add_done(&b, i + 1, BH_OUTCOME_RETURNED, -(int32_t)i,
						      i * 7);
		require(ok, "entry %u of %u refused", i, max);
	}
	ck_assert(!bh_batch_add_assign(&b, UINT64_MAX, 1, 0));
	ck_assert(!bh_batch_add_done(&b, UINT64_MAX, BH_OUTCOME_RETURNED, 1, 0));
	ck_assert_uint_eq(b.count, max);

	len = bh_batch_finish(&b);
	ck_assert_uint_eq(len, HDR + BH_BATCH_HEADER_SIZE + (size_t)max * esz);
	ck_assert_uint_le(len, BH_FRAME_MAX);
	ck_assert_uint_gt(len + esz, BH_FRAME_MAX); /* one more entry would not fit */
	assert_roundtrip(buf, len, &f);
	ck_assert_int_eq(f.type, type);
	for (uint32_t i = 0; i < max; i++) {
		if (type == BH_FRAME_ASSIGN) {
			struct bh_assign_entry e;

			bh_frame_assign_entry(&f, i, &e);
			require(e.job_id == i + 1 && e.spec_id == i * 3 &&
					e.flags == (i & BH_ASSIGN_INPUT),
				"assign entry %u", i);
		} else {
			struct bh_done_entry e;

			bh_frame_done_entry(&f, i, &e);
			require(e.job_id == i + 1 && e.status == -(int32_t)i &&
					e.run_usec == i * 7 && e.outcome == BH_OUTCOME_RETURNED &&
					e.reserved == 0,
				"done entry %u", i);
		}
	}
	ck_assert_uint_eq(type == BH_FRAME_ASSIGN ? f.assign.count : f.done.count, max);
}

START_TEST(test_assign_batch_full)
{
	batch_fill(BH_FRAME_ASSIGN, BH_ASSIGN_MAX);
}
END_TEST

START_TEST(test_done_batch_full)
{
	batch_fill(BH_FRAME_DONE, BH_DONE_MAX);
}
END_TEST

START_TEST(test_batch_small_buffers)
{
	static uint8_t big[2 * BH_FRAME_MAX];
	uint8_t buf[HDR + BH_BATCH_HEADER_SIZE + 3 * sizeof(struct bh_done_entry) + 5];
	struct bh_batch b;
	struct bh_frame f;
	size_t len;

	/* Room for exactly three entries. */
	bh_batch_init(&b, buf, sizeof(buf), BH_FRAME_DONE);
	ck_assert_uint_eq(b.max, 3);
	ck_assert(bh_batch_add_done(&b, 1, BH_OUTCOME_RETURNED, 0, 0));
	ck_assert(bh_batch_add_done(&b, 2, BH_OUTCOME_SIGNALED, 9, 0));
	ck_assert(bh_batch_add_done(&b, 3, BH_OUTCOME_SPAWN_FAILED, 2, 0));
	ck_assert(!bh_batch_add_done(&b, 4, BH_OUTCOME_RETURNED, 0, 0));
	len = bh_batch_finish(&b);
	assert_roundtrip(buf, len, &f);
	ck_assert_uint_eq(f.done.count, 3);

	/* Too small for even the batch header: nothing fits, nothing is sent. */
	bh_batch_init(&b, buf, HDR + BH_BATCH_HEADER_SIZE - 1, BH_FRAME_ASSIGN);
	ck_assert_uint_eq(b.max, 0);
	ck_assert(!bh_batch_add_assign(&b, 1, 1, 0));
	ck_assert_uint_eq(bh_batch_finish(&b), 0);
	bh_batch_init(&b, buf, HDR + BH_BATCH_HEADER_SIZE, BH_FRAME_ASSIGN);
	ck_assert_uint_eq(b.max, 0);

	/* A buffer larger than a frame still makes frames of at most BH_FRAME_MAX. */
	bh_batch_init(&b, big, sizeof(big), BH_FRAME_ASSIGN);
	ck_assert_uint_eq(b.max, BH_ASSIGN_MAX);

	/* A batch can be re-initialised and reused after it was sent. */
	bh_batch_init(&b, buf, sizeof(buf), BH_FRAME_ASSIGN);
	ck_assert(bh_batch_add_assign(&b, 99, 5, 0));
	len = bh_batch_finish(&b);
	assert_roundtrip(buf, len, &f);
	ck_assert_uint_eq(f.assign.count, 1);
}
END_TEST

START_TEST(test_samples_roundtrip)
{
	for (size_t i = 0; i < n_samples; i++) {
		struct bh_frame f;

		ck_assert_msg(bh_frame_decode(samples[i].buf, samples[i].len, &f) == 0, "%s",
			      samples[i].name);
		ck_assert_int_eq(f.type, samples[i].type);
		assert_roundtrip(samples[i].buf, samples[i].len, &f);
	}
}
END_TEST

START_TEST(test_type_names_and_direction)
{
	ck_assert_str_eq(bh_frame_type_name(BH_FRAME_HELLO), "HELLO");
	ck_assert_str_eq(bh_frame_type_name(BH_FRAME_DONE), "DONE");
	ck_assert_str_eq(bh_frame_type_name(BH_FRAME_CRASH), "CRASH");
	ck_assert_str_eq(bh_frame_type_name(BH_FRAME_SPEC), "SPEC");
	ck_assert_str_eq(bh_frame_type_name(BH_FRAME_ASSIGN), "ASSIGN");
	ck_assert_str_eq(bh_frame_type_name(BH_FRAME_STOP), "STOP");
	ck_assert_str_eq(bh_frame_type_name(BH_FRAME_RESULT), "RESULT");
	ck_assert_str_eq(bh_frame_type_name(BH_FRAME_PROGRESS), "PROGRESS");
	ck_assert_str_eq(bh_frame_type_name(BH_FRAME_EXEC), "EXEC");
	ck_assert_str_eq(bh_frame_type_name(BH_FRAME_CANCEL), "CANCEL");
	ck_assert_str_eq(bh_frame_type_name(BH_FRAME_INPUT), "INPUT");
	ck_assert_str_eq(bh_frame_type_name(0), "UNKNOWN");
	ck_assert_str_eq(bh_frame_type_name(BH_FRAME_LOG), "LOG");
	ck_assert_str_eq(bh_frame_type_name(BH_FRAME_CRASH_INFO), "CRASH_INFO");
	ck_assert_str_eq(bh_frame_type_name(9), "UNKNOWN");
	ck_assert_str_eq(bh_frame_type_name(39), "UNKNOWN");
	ck_assert_str_eq(bh_frame_type_name(UINT32_MAX), "UNKNOWN");

	ck_assert(bh_frame_from_worker(BH_FRAME_HELLO));
	ck_assert(bh_frame_from_worker(BH_FRAME_DONE));
	ck_assert(bh_frame_from_worker(BH_FRAME_CRASH));
	ck_assert(bh_frame_from_worker(BH_FRAME_CRASH_INFO));
	ck_assert(!bh_frame_from_worker(BH_FRAME_SPEC));
	ck_assert(!bh_frame_from_worker(BH_FRAME_ASSIGN));
	ck_assert(!bh_frame_from_worker(BH_FRAME_STOP));
	ck_assert(bh_frame_from_worker(BH_FRAME_RESULT));
	ck_assert(bh_frame_from_worker(BH_FRAME_PROGRESS));
	ck_assert(bh_frame_from_worker(BH_FRAME_EXEC));
	ck_assert(!bh_frame_from_worker(BH_FRAME_CANCEL));
	ck_assert(!bh_frame_from_worker(BH_FRAME_INPUT));
	ck_assert(!bh_frame_from_worker(BH_FRAME_INJECT));
	ck_assert(!bh_frame_from_worker(BH_FRAME_FORGET));

	/* The numbers are part of the protocol: never renumbered. */
	ck_assert_int_eq(BH_FRAME_HELLO, 1);
	ck_assert_int_eq(BH_FRAME_DONE, 2);
	ck_assert_int_eq(BH_FRAME_CRASH, 3);
	ck_assert_int_eq(BH_FRAME_CRASH_INFO, 8);
	ck_assert_int_eq(BH_FRAME_SPEC, 32);
	ck_assert_int_eq(BH_FRAME_ASSIGN, 33);
	ck_assert_int_eq(BH_FRAME_STOP, 34);
	ck_assert_int_eq(BH_FRAME_RESULT, 4);
	ck_assert_int_eq(BH_FRAME_PROGRESS, 5);
	ck_assert_int_eq(BH_FRAME_EXEC, 6);
	ck_assert_int_eq(BH_FRAME_INJECT, 35);
	ck_assert_int_eq(BH_FRAME_CANCEL, 36);
	ck_assert_int_eq(BH_FRAME_INPUT, 37);
	ck_assert_int_eq(BH_FRAME_FORGET, 38);
	ck_assert_int_eq(BH_OUTCOME_RETURNED, 0);
	ck_assert_int_eq(BH_OUTCOME_SIGNALED, 1);
	ck_assert_int_eq(BH_OUTCOME_SPAWN_FAILED, 2);
	ck_assert_int_eq(BH_OUTCOME_CANCELLED, 3);
	ck_assert_uint_eq(HDR, 8);
	ck_assert_uint_eq(sizeof(struct bh_crash), 32);
	ck_assert_uint_eq(sizeof(struct bh_assign_entry), 16);
	ck_assert_uint_eq(sizeof(struct bh_done_entry), 24);
}
END_TEST

/* --- rejections ----------------------------------------------------------------------- */

START_TEST(test_reject_short)
{
	const struct sample *s = &samples[0];

	for (size_t len = 0; len < HDR; len++)
		ck_assert_int_eq(decode_copy(s->buf, len), -EBADMSG);
	ck_assert_int_eq(bh_frame_decode(NULL, 0, &(struct bh_frame){ 0 }), -EBADMSG);
}
END_TEST

START_TEST(test_reject_every_prefix)
{
	for (size_t i = 0; i < n_samples; i++) {
		const struct sample *s = &samples[i];
		bool small = s->len <= 4096;

		for (size_t k = 0; k < s->len; k++) {
			int r = small ? decode_copy(s->buf, k)
				      : bh_frame_decode(s->buf, k, &(struct bh_frame){ 0 });

			require(r == -EBADMSG, "%s: prefix %zu of %zu: %d", s->name, k, s->len, r);
		}
	}
}
END_TEST

START_TEST(test_reject_truncated_payload)
{
	/* Truncated, with a header that agrees: the payload itself must be refused. */
	for (size_t i = 0; i < n_samples; i++) {
		const struct sample *s = &samples[i];
		uint8_t *q = memdup_exact(s->buf, s->len);

		for (size_t k = HDR; k < s->len; k++) {
			int r;

			set_length(q, (uint32_t)(k - HDR));
			r = s->len <= 4096 ? decode_copy(q, k)
					   : bh_frame_decode(q, k, &(struct bh_frame){ 0 });
			require(r == -EINVAL, "%s: truncated to %zu of %zu: %d", s->name, k, s->len,
				r);
		}
		free(q);
	}
}
END_TEST

START_TEST(test_reject_extended_payload)
{
	/* Extra bytes after a valid payload, header agreeing: refused. */
	for (size_t i = 0; i < n_samples; i++) {
		const struct sample *s = &samples[i];

		if (s->len + 16 > BH_FRAME_MAX)
			continue;
		for (size_t extra = 1; extra <= 16; extra++) {
			size_t len = s->len + extra;
			int r;

			memcpy(scratch, s->buf, s->len);
			memset(scratch + s->len, 'x', extra);
			set_length(scratch, (uint32_t)(len - HDR));
			r = decode_copy(scratch, len);
			ck_assert_msg(r == -EINVAL, "%s + %zu: %d", s->name, extra, r);
		}
	}
}
END_TEST

START_TEST(test_reject_bad_magic)
{
	for (size_t i = 0; i < n_samples; i++) {
		const struct sample *s = &samples[i];

		memcpy(scratch, s->buf, s->len);
		for (unsigned bit = 0; bit < 16; bit++) {
			uint16_t m = BH_PROTO_MAGIC ^ (1u << bit);

			memcpy(scratch + OFF_MAGIC, &m, 2);
			ck_assert_int_eq(decode_copy(scratch, s->len), -EBADMSG);
		}
		memset(scratch + OFF_MAGIC, 0, 2);
		ck_assert_int_eq(decode_copy(scratch, s->len), -EBADMSG);
		memset(scratch + OFF_MAGIC, 0xff, 2);
		ck_assert_int_eq(decode_copy(scratch, s->len), -EBADMSG);
	}
}
END_TEST

START_TEST(test_reject_wrong_version)
{
	for (size_t i = 0; i < n_samples; i++) {
		const struct sample *s = &samples[i];

		memcpy(scratch, s->buf, s->len);
		for (unsigned v = 0; v < 256; v++) {
			if (v == BH_PROTO_VERSION)
				continue;
			scratch[OFF_VERSION] = (uint8_t)v;
			ck_assert_int_eq(decode_copy(scratch, s->len), -EPROTO);
		}
	}
}
END_TEST

START_TEST(test_reject_length_mismatch)
{
	const uint32_t deltas[] = { 1, 2, 8, 16, 4096, 65536, 0x80000000u, 0xffffffffu };

	for (size_t i = 0; i < n_samples; i++) {
		const struct sample *s = &samples[i];
		uint32_t len = (uint32_t)(s->len - HDR);

		memcpy(scratch, s->buf, s->len);
		for (size_t d = 0; d < sizeof(deltas) / sizeof(deltas[0]); d++) {
			set_length(scratch, len + deltas[d]);
			ck_assert_int_eq(decode_copy(scratch, s->len), -EBADMSG);
			set_length(scratch, len - deltas[d]);
			ck_assert_int_eq(decode_copy(scratch, s->len), -EBADMSG);
		}
		/* The length field counts the payload only, not the header. */
		set_length(scratch, (uint32_t)s->len);
		ck_assert_int_eq(decode_copy(scratch, s->len), -EBADMSG);
	}
}
END_TEST

START_TEST(test_reject_oversized)
{
	static uint8_t big[BH_FRAME_MAX + 64];
	struct bh_frame f;
	struct bh_batch b;
	size_t len;

	/* A full batch is exactly BH_FRAME_MAX and fine... */
	bh_batch_init(&b, big, BH_FRAME_MAX, BH_FRAME_ASSIGN);
	while (bh_batch_add_assign(&b, 1, 1, 0))
		;
	len = bh_batch_finish(&b);
	ck_assert_uint_eq(len, BH_FRAME_MAX);
	ck_assert_int_eq(bh_frame_decode(big, len, &f), 0);

	/* ...one entry more, with every header field agreeing, is not. */
	memcpy(big + len, big + len - 16, 16);
	len += 16;
	set_u32(big, HDR, BH_ASSIGN_MAX + 1);
	set_length(big, (uint32_t)(len - HDR));
	ck_assert_int_eq(decode_copy(big, len), -EMSGSIZE);

	/* Whatever the content, and whatever the length field says. */
	put_raw_header(big, BH_FRAME_STOP, BH_FRAME_MAX + 1 - HDR);
	ck_assert_int_eq(decode_copy(big, BH_FRAME_MAX + 1), -EMSGSIZE);
	put_raw_header(big, BH_FRAME_STOP, 0);
	ck_assert_int_eq(decode_copy(big, BH_FRAME_MAX + 1), -EMSGSIZE);
	memset(big, 0, sizeof(big));
	ck_assert_int_eq(decode_copy(big, sizeof(big)), -EMSGSIZE);
}
END_TEST

START_TEST(test_reject_unknown_type)
{
	unsigned known = 0;

	for (unsigned t = 0; t < 256; t++) {
		size_t len;

		if (strcmp(bh_frame_type_name(t), "UNKNOWN") != 0) {
			known++;
			continue;
		}
		len = put_raw_header(scratch, t, 0);
		ck_assert_msg(decode_copy(scratch, len) == -ENOMSG, "type %u", t);
		/* With a payload that would be valid for a known type, too. */
		memcpy(scratch, samples[0].buf, samples[0].len);
		scratch[OFF_TYPE] = (uint8_t)t;
		ck_assert_msg(decode_copy(scratch, samples[0].len) == -ENOMSG, "type %u", t);
	}
	ck_assert_uint_eq(known, 15);
}
END_TEST

/*
 * Payloads that are valid under another type's header too: frames of the same shape whose
 * values happen to be in range for both. Everything else must be refused.
 */
static bool same_shape(const char *sample, enum bh_frame_type as)
{
	static const struct {
		const char *sample;
		enum bh_frame_type as;
	} ok[] = {
		{ "progress", BH_FRAME_EXEC }, /* permille 500 is a valid pid */
		{ "cancel", BH_FRAME_PROGRESS }, /* value 0 is a valid permille */
		{ "result", BH_FRAME_INPUT }, /* a non-empty text is an input... */
		{ "input", BH_FRAME_RESULT }, /* ...and a short input a result */
		/* An empty text is 16 bytes: a job id and zeros, like CANCEL. */
		{ "result-empty", BH_FRAME_PROGRESS },
		{ "result-empty", BH_FRAME_CANCEL },
		{ "cancel", BH_FRAME_RESULT },
		{ "inject", BH_FRAME_FORGET }, /* a kind is a valid spec id */
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(ok[i].sample, sample) == 0 && ok[i].as == as)
			return true;
	return false;
}

START_TEST(test_reject_wrong_type_payload)
{
	/* A valid payload under another known type's header is malformed for that type. */
	for (size_t i = 0; i < n_samples; i++) {
		const struct sample *s = &samples[i];

		for (unsigned t = 0; t < 256; t++) {
			int r;

			if (t == s->type || strcmp(bh_frame_type_name(t), "UNKNOWN") == 0)
				continue;
			memcpy(scratch, s->buf, s->len);
			scratch[OFF_TYPE] = (uint8_t)t;
			r = decode_copy(scratch, s->len);
			if (same_shape(s->name, (enum bh_frame_type)t))
				ck_assert_msg(r == 0, "%s as %s: %d", s->name,
					      bh_frame_type_name(t), r);
			else
				ck_assert_msg(r == -EINVAL, "%s as %s: %d", s->name,
					      bh_frame_type_name(t), r);
		}
	}
}
END_TEST

/* A batch frame of `n` entries by hand; entries get job ids 1..n, everything else valid. */
static size_t raw_batch(uint8_t *buf, enum bh_frame_type type, uint32_t count, uint32_t n)
{
	size_t esz = type == BH_FRAME_ASSIGN ? sizeof(struct bh_assign_entry)
					     : sizeof(struct bh_done_entry);
	size_t payload = BH_BATCH_HEADER_SIZE + (size_t)n * esz;

	put_raw_header(buf, type, payload);
	set_u32(buf, HDR, count);
	set_u32(buf, HDR + 4, 0);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *e = buf + HDR + BH_BATCH_HEADER_SIZE + (size_t)i * esz;

		memset(e, 0, esz);
		set_u64(e, 0, i + 1);
		set_u32(e, 8, 7);
	}
	return HDR + payload;
}

START_TEST(test_reject_batch)
{
	const enum bh_frame_type types[] = { BH_FRAME_ASSIGN, BH_FRAME_DONE };

	for (size_t t = 0; t < 2; t++) {
		enum bh_frame_type type = types[t];
		size_t esz = type == BH_FRAME_ASSIGN ? sizeof(struct bh_assign_entry)
						     : sizeof(struct bh_done_entry);
		uint32_t max = type == BH_FRAME_ASSIGN ? BH_ASSIGN_MAX : BH_DONE_MAX;
		size_t len;

		/* Sanity: the hand-made frame is valid. */
		len = raw_batch(scratch, type, 4, 4);
		ck_assert_int_eq(decode_copy(scratch, len), 0);

		/* Zero count, with and without entries. */
		len = raw_batch(scratch, type, 0, 0);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
		len = raw_batch(scratch, type, 0, 2);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);

		/* Count disagreeing with the entries that are there. */
		len = raw_batch(scratch, type, 5, 4);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
		len = raw_batch(scratch, type, 3, 4);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
		len = raw_batch(scratch, type, UINT32_MAX, 4);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);

		/* A payload shorter than the batch header, or not a whole number of entries. */
		put_raw_header(scratch, type, 4);
		set_u32(scratch, HDR, 1);
		ck_assert_int_eq(decode_copy(scratch, HDR + 4), -EINVAL);
		for (size_t extra = 1; extra < esz; extra++) {
			len = raw_batch(scratch, type, 1, 1);
			memset(scratch + len, 0, extra);
			set_length(scratch, (uint32_t)(len - HDR + extra));
			ck_assert_int_eq(decode_copy(scratch, len + extra), -EINVAL);
		}

		/* Reserved word in the batch header. */
		len = raw_batch(scratch, type, 4, 4);
		set_u32(scratch, HDR + 4, 1);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
		set_u32(scratch, HDR + 4, 0x80000000u);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);

		/* Job id 0 in the first, a middle and the last entry. */
		for (uint32_t i = 0; i < 4; i++) {
			len = raw_batch(scratch, type, 4, 4);
			set_u64(scratch + HDR + BH_BATCH_HEADER_SIZE + (size_t)i * esz, 0, 0);
			ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
		}

		/* Job id 0 in the last entry of a full batch. */
		len = raw_batch(scratch, type, max, max);
		ck_assert_uint_le(len, BH_FRAME_MAX);
		ck_assert_uint_gt(len + esz, BH_FRAME_MAX);
		ck_assert_int_eq(decode_copy(scratch, len), 0);
		set_u64(scratch, len - esz, 0);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	}
}
END_TEST

START_TEST(test_reject_assign_flags)
{
	/* INPUT and CONTAIN are the only flags; any other bit, in any entry, is refused. */
	const uint32_t known = BH_ASSIGN_INPUT | BH_ASSIGN_CONTAIN;

	for (uint32_t i = 0; i < 4; i++) {
		for (unsigned bit = 0; bit < 32; bit++) {
			size_t len = raw_batch(scratch, BH_FRAME_ASSIGN, 4, 4);
			uint8_t *e = scratch + HDR + BH_BATCH_HEADER_SIZE + (size_t)i * 16;

			set_u32(e, 12, 1u << bit);
			ck_assert_msg(decode_copy(scratch, len) ==
					      ((1u << bit) & known ? 0 : -EINVAL),
				      "entry %u bit %u", i, bit);
			set_u32(e, 12, BH_ASSIGN_INPUT | 1u << bit);
			ck_assert_msg(decode_copy(scratch, len) ==
					      ((1u << bit) & known ? 0 : -EINVAL),
				      "entry %u INPUT + bit %u", i, bit);
		}
	}
}
END_TEST

/* A DONE frame of one entry by hand. */
static size_t raw_done(uint8_t *buf, uint32_t outcome, int32_t status, uint32_t run_usec,
		       uint32_t reserved)
{
	struct bh_done_entry e = { .job_id = 3,
				   .status = status,
				   .run_usec = run_usec,
				   .outcome = outcome,
				   .reserved = reserved };
	size_t len = raw_batch(buf, BH_FRAME_DONE, 1, 1);

	memcpy(buf + HDR + BH_BATCH_HEADER_SIZE, &e, sizeof(e));
	return len;
}

START_TEST(test_reject_done_entry)
{
	const uint32_t bad_outcomes[] = { 6, 7, 255, 0x10000, UINT32_MAX };
	const int32_t returned[] = { 0, 1, -1, 127, INT32_MIN, INT32_MAX };
	size_t len;

	/* RETURNED: any status, any run time. */
	for (size_t i = 0; i < sizeof(returned) / sizeof(returned[0]); i++) {
		len = raw_done(scratch, BH_OUTCOME_RETURNED, returned[i], UINT32_MAX, 0);
		ck_assert_int_eq(decode_copy(scratch, len), 0);
	}
	/* SIGNALED: a signal number 1..64. */
	for (int32_t s = 1; s <= 64; s++) {
		len = raw_done(scratch, BH_OUTCOME_SIGNALED, s, 0, 0);
		ck_assert_int_eq(decode_copy(scratch, len), 0);
	}
	for (int32_t s = -1; s <= 0; s++) {
		len = raw_done(scratch, BH_OUTCOME_SIGNALED, s, 0, 0);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	}
	len = raw_done(scratch, BH_OUTCOME_SIGNALED, 65, 0, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_done(scratch, BH_OUTCOME_SIGNALED, INT32_MAX, 0, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_done(scratch, BH_OUTCOME_SIGNALED, INT32_MIN, 0, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	/* SPAWN_FAILED: a positive errno. */
	len = raw_done(scratch, BH_OUTCOME_SPAWN_FAILED, ENOENT, 0, 0);
	ck_assert_int_eq(decode_copy(scratch, len), 0);
	len = raw_done(scratch, BH_OUTCOME_SPAWN_FAILED, 0, 0, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_done(scratch, BH_OUTCOME_SPAWN_FAILED, -ENOENT, 0, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	/* CANCELLED: never started, status 0. */
	len = raw_done(scratch, BH_OUTCOME_CANCELLED, 0, 0, 0);
	ck_assert_int_eq(decode_copy(scratch, len), 0);
	len = raw_done(scratch, BH_OUTCOME_CANCELLED, 1, 0, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_done(scratch, BH_OUTCOME_CANCELLED, -1, 0, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	/* DIED_SIGNAL: a signal number 1..64; DIED_EXIT: an exit code 0..255. */
	for (int32_t s = 1; s <= 64; s++) {
		len = raw_done(scratch, BH_OUTCOME_DIED_SIGNAL, s, 0, 0);
		ck_assert_int_eq(decode_copy(scratch, len), 0);
	}
	len = raw_done(scratch, BH_OUTCOME_DIED_SIGNAL, 0, 0, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_done(scratch, BH_OUTCOME_DIED_SIGNAL, 65, 0, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	for (int32_t s = 0; s <= 255; s++) {
		len = raw_done(scratch, BH_OUTCOME_DIED_EXIT, s, 0, 0);
		ck_assert_int_eq(decode_copy(scratch, len), 0);
	}
	len = raw_done(scratch, BH_OUTCOME_DIED_EXIT, -1, 0, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_done(scratch, BH_OUTCOME_DIED_EXIT, 256, 0, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	/* Unknown outcomes, and the reserved word. */
	for (size_t i = 0; i < sizeof(bad_outcomes) / sizeof(bad_outcomes[0]); i++) {
		len = raw_done(scratch, bad_outcomes[i], 1, 0, 0);
		ck_assert_msg(decode_copy(scratch, len) == -EINVAL, "outcome %u", bad_outcomes[i]);
	}
	for (unsigned bit = 0; bit < 32; bit++) {
		len = raw_done(scratch, BH_OUTCOME_RETURNED, 0, 0, 1u << bit);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	}
}
END_TEST

START_TEST(test_spec_exec_settings)
{
	uint8_t exits[BH_EXIT_SET_BYTES] = { 0x02 }; /* 1 alone: 0 is added */
	struct bh_frame f;
	size_t len;

	len = bh_encode_spec(scratch, sizeof(scratch),
			     &(struct bh_spec){ .id = 3,
						.run = "exec:grep",
						.environment = "A=1 \"B=two words\"",
						.working_directory = "/tmp",
						.success_exit_status = exits,
						.has_nice = true,
						.nice = -20 });
	ck_assert_uint_gt(len, 0);
	ck_assert_int_eq(bh_frame_decode(scratch, len, &f), 0);
	ck_assert_int_eq(f.spec.environment_len, 17);
	ck_assert_int_eq(memcmp(f.spec.environment, "A=1 \"B=two words\"", 17), 0);
	ck_assert_int_eq(f.spec.working_directory_len, 4);
	ck_assert_int_eq(memcmp(f.spec.working_directory, "/tmp", 4), 0);
	ck_assert_int_eq(f.spec.nice, -20);
	ck_assert_uint_eq(f.spec.success_exit_status[0], 0x03);
	/* The defaults: no nice, { 0 }. */
	len = bh_encode_spec(scratch, sizeof(scratch), &(struct bh_spec){ .id = 3, .run = "x" });
	ck_assert_int_eq(bh_frame_decode(scratch, len, &f), 0);
	ck_assert_int_eq(f.spec.nice, BH_NICE_INHERIT);
	ck_assert_uint_eq(f.spec.success_exit_status[0], 0x01);
	/* Out of range: not encoded; on the wire, refused. */
	ck_assert_uint_eq(bh_encode_spec(scratch, sizeof(scratch),
					 &(struct bh_spec){ .id = 3, .run = "x", .has_nice = true,
							    .nice = 20 }),
			  0);
	len = bh_encode_spec(scratch, sizeof(scratch), &(struct bh_spec){ .id = 3, .run = "x" });
	memcpy(scratch + HDR + 16, &(int32_t){ -21 }, 4);
	ck_assert_int_eq(bh_frame_decode(scratch, len, &f), -EINVAL);
	memcpy(scratch + HDR + 16, &(int32_t){ 19 }, 4);
	ck_assert_int_eq(bh_frame_decode(scratch, len, &f), 0);
	scratch[HDR + 24] = 0; /* exit code 0 not counted done */
	ck_assert_int_eq(bh_frame_decode(scratch, len, &f), -EINVAL);
}
END_TEST

/* A SPEC frame by hand, with the length fields given separately from the bytes. */
static size_t raw_spec4(uint8_t *buf, const uint16_t l[4], uint32_t reserved, const char *bytes,
			size_t n)
{
	uint32_t id = 1;
	int32_t nice = BH_NICE_INHERIT;
	uint16_t zero[2] = { 0, 0 };

	put_raw_header(buf, BH_FRAME_SPEC, SPEC_FIXED + n);
	memcpy(buf + HDR, &id, 4);
	memcpy(buf + HDR + 4, l, 8);
	memcpy(buf + HDR + 12, zero, 4);
	memcpy(buf + HDR + 16, &nice, 4);
	memcpy(buf + HDR + 20, &reserved, 4);
	memset(buf + HDR + 24, 0, BH_EXIT_SET_BYTES);
	buf[HDR + 24] = 1;
	memcpy(buf + HDR + SPEC_FIXED, bytes, n);
	return HDR + SPEC_FIXED + n;
}

static size_t raw_spec(uint8_t *buf, uint16_t rl, uint16_t al, const char *bytes, size_t n)
{
	return raw_spec4(buf, (const uint16_t[4]){ rl, al, 0, 0 }, 0, bytes, n);
}

START_TEST(test_reject_spec)
{
	static char big[4 * BH_SPEC_STRING_MAX + 2];
	size_t len;

	len = raw_spec(scratch, 3, 2, "runab", 5);
	ck_assert_int_eq(decode_copy(scratch, len), 0);
	len = raw_spec4(scratch, (const uint16_t[4]){ 1, 1, 1, 1 }, 0, "rano", 4);
	ck_assert_int_eq(decode_copy(scratch, len), 0);

	/* Spec id UINT32_MAX is none (the worker keys its table by id + 1). */
	ck_assert_uint_eq(bh_encode_spec(scratch, sizeof(scratch),
					 &(struct bh_spec){ .id = UINT32_MAX, .run = "x" }),
			  0);
	len = raw_spec(scratch, 3, 2, "runab", 5);
	memset(scratch + HDR, 0xff, 4);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);

	/* run_len 0, with and without bytes. */
	len = raw_spec(scratch, 0, 5, "runab", 5);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_spec(scratch, 0, 0, "", 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);

	/* The reserved word. */
	for (unsigned bit = 0; bit < 32; bit++) {
		len = raw_spec4(scratch, (const uint16_t[4]){ 3, 2, 0, 0 }, 1u << bit, "runab", 5);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	}

	/* Lengths not adding up to the payload. */
	len = raw_spec(scratch, 3, 1, "runab", 5);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_spec(scratch, 3, 3, "runab", 5);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_spec(scratch, 6, 0, "runab", 5);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_spec4(scratch, (const uint16_t[4]){ 1, 1, 1, 1 }, 0, "runab", 5);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_spec4(scratch, (const uint16_t[4]){ 1, 1, 1, 3 }, 0, "runab", 5);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_spec(scratch, UINT16_MAX, UINT16_MAX, "runab", 5);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	/* Wrapping 16-bit sums do not fool it: 65535 + 6 = 5 (mod 65536). */
	len = raw_spec(scratch, UINT16_MAX, 6, "runab", 5);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_spec4(scratch, (const uint16_t[4]){ 1, UINT16_MAX, 2, 3 }, 0, "runab", 5);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);

	/* Payload shorter than the fixed part. */
	for (size_t n = 0; n < SPEC_FIXED; n++) {
		put_raw_header(scratch, BH_FRAME_SPEC, n);
		memset(scratch + HDR, 0, n);
		if (n > 4)
			scratch[HDR + 4] = 1; /* run_len 1 where it fits */
		ck_assert_int_eq(decode_copy(scratch, HDR + n), -EINVAL);
	}

	/* Embedded NUL anywhere in any of the four strings. */
	for (size_t at = 0; at < 8; at++) {
		char bytes[] = "runabnmo";

		bytes[at] = 0;
		len = raw_spec4(scratch, (const uint16_t[4]){ 3, 2, 2, 1 }, 0, bytes, 8);
		ck_assert_msg(decode_copy(scratch, len) == -EINVAL, "NUL at %zu", at);
	}

	/* Strings longer than BH_SPEC_STRING_MAX, even though the frame would fit. */
	memset(big, 'q', sizeof(big));
	len = raw_spec(scratch, BH_SPEC_STRING_MAX + 1, 0, big, BH_SPEC_STRING_MAX + 1);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_spec(scratch, 1, BH_SPEC_STRING_MAX + 1, big, BH_SPEC_STRING_MAX + 2);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_spec4(scratch, (const uint16_t[4]){ 1, 0, BH_SPEC_STRING_MAX + 1, 0 }, 0, big,
			BH_SPEC_STRING_MAX + 2);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_spec4(scratch, (const uint16_t[4]){ 1, 0, 0, BH_SPEC_STRING_MAX + 1 }, 0, big,
			BH_SPEC_STRING_MAX + 2);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_spec4(scratch,
			(const uint16_t[4]){ BH_SPEC_STRING_MAX, BH_SPEC_STRING_MAX,
					     BH_SPEC_STRING_MAX, BH_SPEC_STRING_MAX },
			0, big, 4 * BH_SPEC_STRING_MAX);
	ck_assert_int_eq(decode_copy(scratch, len), 0);
}
END_TEST

/* A RESULT or INPUT frame by hand. */
static size_t raw_text(uint8_t *buf, enum bh_frame_type type, uint64_t job, uint16_t l16,
		       uint16_t r16, uint32_t r32, const char *bytes, size_t n)
{
	put_raw_header(buf, type, 16 + n);
	set_u64(buf, HDR, job);
	memcpy(buf + HDR + 8, &l16, 2);
	memcpy(buf + HDR + 10, &r16, 2);
	set_u32(buf, HDR + 12, r32);
	memcpy(buf + HDR + 16, bytes, n);
	return HDR + 16 + n;
}

START_TEST(test_reject_text)
{
	static char big[BH_INPUT_MAX + 2];
	const enum bh_frame_type types[] = { BH_FRAME_RESULT, BH_FRAME_INPUT };
	size_t len;

	memset(big, 't', sizeof(big));
	for (size_t t = 0; t < 2; t++) {
		enum bh_frame_type type = types[t];
		size_t max = type == BH_FRAME_RESULT ? BH_RESULT_MAX : BH_INPUT_MAX;

		len = raw_text(scratch, type, 1, 3, 0, 0, "abc", 3);
		ck_assert_int_eq(decode_copy(scratch, len), 0);
		/* Job 0, reserved bits. */
		len = raw_text(scratch, type, 0, 3, 0, 0, "abc", 3);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
		for (unsigned bit = 0; bit < 16; bit++) {
			len = raw_text(scratch, type, 1, 3, (uint16_t)(1u << bit), 0, "abc", 3);
			ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
		}
		for (unsigned bit = 0; bit < 32; bit++) {
			len = raw_text(scratch, type, 1, 3, 0, 1u << bit, "abc", 3);
			ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
		}
		/* The length field disagreeing with the bytes. */
		len = raw_text(scratch, type, 1, 2, 0, 0, "abc", 3);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
		len = raw_text(scratch, type, 1, 4, 0, 0, "abc", 3);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
		len = raw_text(scratch, type, 1, UINT16_MAX, 0, 0, "abc", 3);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
		/* Shorter than the fixed part. */
		for (size_t n = 0; n < 16; n++) {
			put_raw_header(scratch, type, n);
			memset(scratch + HDR, 0, n);
			if (n >= 8)
				scratch[HDR] = 1;
			ck_assert_int_eq(decode_copy(scratch, HDR + n), -EINVAL);
		}
		/* A NUL anywhere in the text. */
		for (size_t at = 0; at < 3; at++) {
			char bytes[] = "abc";

			bytes[at] = 0;
			len = raw_text(scratch, type, 1, 3, 0, 0, bytes, 3);
			ck_assert_msg(decode_copy(scratch, len) == -EINVAL, "NUL at %zu", at);
		}
		/* The longest, and one byte more. */
		len = raw_text(scratch, type, 1, (uint16_t)max, 0, 0, big, max);
		ck_assert_int_eq(decode_copy(scratch, len), 0);
		len = raw_text(scratch, type, 1, (uint16_t)(max + 1), 0, 0, big, max + 1);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	}
	/* An empty result is fine, an empty input is not. */
	len = raw_text(scratch, BH_FRAME_RESULT, 1, 0, 0, 0, "", 0);
	ck_assert_int_eq(decode_copy(scratch, len), 0);
	len = raw_text(scratch, BH_FRAME_INPUT, 1, 0, 0, 0, "", 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
}
END_TEST

/* A PROGRESS, EXEC or CANCEL frame by hand. */
static size_t raw_id_value(uint8_t *buf, enum bh_frame_type type, uint64_t job, uint32_t value,
			   uint32_t reserved)
{
	put_raw_header(buf, type, 16);
	set_u64(buf, HDR, job);
	set_u32(buf, HDR + 8, value);
	set_u32(buf, HDR + 12, reserved);
	return HDR + 16;
}

START_TEST(test_reject_id_value)
{
	const enum bh_frame_type types[] = { BH_FRAME_PROGRESS, BH_FRAME_EXEC, BH_FRAME_CANCEL };
	size_t len;

	for (size_t t = 0; t < 3; t++) {
		enum bh_frame_type type = types[t];
		uint32_t good = type == BH_FRAME_CANCEL ? 0 : 1;

		len = raw_id_value(scratch, type, 1, good, 0);
		ck_assert_int_eq(decode_copy(scratch, len), 0);
		len = raw_id_value(scratch, type, 0, good, 0);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
		for (unsigned bit = 0; bit < 32; bit++) {
			len = raw_id_value(scratch, type, 1, good, 1u << bit);
			ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
		}
		/* Exactly 16 bytes of payload. */
		for (size_t n = 0; n < 24; n++) {
			if (n == 16)
				continue;
			len = raw_id_value(scratch, type, 1, good, 0);
			memset(scratch + len, 0, 8);
			set_length(scratch, (uint32_t)n);
			ck_assert_int_eq(decode_copy(scratch, HDR + n), -EINVAL);
		}
	}

	/* PROGRESS: 0..1000. */
	len = raw_id_value(scratch, BH_FRAME_PROGRESS, 1, BH_PROGRESS_MAX, 0);
	ck_assert_int_eq(decode_copy(scratch, len), 0);
	len = raw_id_value(scratch, BH_FRAME_PROGRESS, 1, BH_PROGRESS_MAX + 1, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_id_value(scratch, BH_FRAME_PROGRESS, 1, UINT32_MAX, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	/* EXEC: a pid > 0. */
	len = raw_id_value(scratch, BH_FRAME_EXEC, 1, 0, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_id_value(scratch, BH_FRAME_EXEC, 1, INT32_MAX, 0);
	ck_assert_int_eq(decode_copy(scratch, len), 0);
	len = raw_id_value(scratch, BH_FRAME_EXEC, 1, (uint32_t)INT32_MAX + 1, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_id_value(scratch, BH_FRAME_EXEC, 1, UINT32_MAX, 0); /* pid -1 */
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	/* CANCEL: the value word is reserved. */
	len = raw_id_value(scratch, BH_FRAME_CANCEL, 1, 1, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
}
END_TEST

static size_t raw_crash(uint8_t *buf, uint32_t kind, int32_t signo, uint32_t flags)
{
	struct bh_crash c = { .job_id = 5, .kind = kind, .signo = signo, .flags = flags };

	return bh_encode_crash(buf, BH_FRAME_MAX, &c);
}

START_TEST(test_reject_crash)
{
	const uint32_t bad_kinds[] = { 0, 4, 5, 255, 0x10001, UINT32_MAX };
	const int32_t bad_signos[] = { -1, 65, 128, INT32_MIN, INT32_MAX };
	size_t len;

	for (size_t i = 0; i < sizeof(bad_kinds) / sizeof(bad_kinds[0]); i++) {
		len = raw_crash(scratch, bad_kinds[i], 11, 0);
		ck_assert_msg(decode_copy(scratch, len) == -EINVAL, "kind %u", bad_kinds[i]);
		len = raw_crash(scratch, bad_kinds[i], 0, 0);
		ck_assert_msg(decode_copy(scratch, len) == -EINVAL, "kind %u", bad_kinds[i]);
	}
	for (uint32_t kind = BH_CRASH_SIGNAL; kind <= BH_CRASH_OOM; kind++) {
		for (size_t i = 0; i < sizeof(bad_signos) / sizeof(bad_signos[0]); i++) {
			len = raw_crash(scratch, kind, bad_signos[i], 0);
			ck_assert_msg(decode_copy(scratch, len) == -EINVAL, "kind %u signo %d",
				      kind, bad_signos[i]);
		}
		/* CONTAINED is the only flag; any other bit is refused. */
		for (unsigned bit = 0; bit < 32; bit++) {
			len = raw_crash(scratch, kind, kind == BH_CRASH_EXIT ? 0 : 9, 1u << bit);
			ck_assert_msg(decode_copy(scratch, len) ==
					      ((1u << bit) == BH_CRASH_CONTAINED ? 0 : -EINVAL),
				      "kind %u flag bit %u", kind, bit);
		}
	}

	/* SIGNAL and OOM need a signal, 1..64; EXIT has none. */
	for (int32_t signo = 1; signo <= 64; signo++) {
		len = raw_crash(scratch, BH_CRASH_SIGNAL, signo, 0);
		ck_assert_int_eq(decode_copy(scratch, len), 0);
		len = raw_crash(scratch, BH_CRASH_OOM, signo, 0);
		ck_assert_int_eq(decode_copy(scratch, len), 0);
		len = raw_crash(scratch, BH_CRASH_EXIT, signo, 0);
		ck_assert_msg(decode_copy(scratch, len) == -EINVAL, "EXIT with signo %d", signo);
	}
	len = raw_crash(scratch, BH_CRASH_SIGNAL, 0, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_crash(scratch, BH_CRASH_OOM, 0, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = raw_crash(scratch, BH_CRASH_EXIT, 0, 0);
	ck_assert_int_eq(decode_copy(scratch, len), 0);
}
END_TEST

START_TEST(test_reject_crash_info)
{
	static char long_line[BH_CRASH_LINE_MAX + 3];
	static char many[(BH_CRASH_FRAMES_MAX + 1) * 2 + 1];
	const char *bad[] = { "", "no newline", "\n", "a\n\nb\n", "tab\there\n", "del\x7f\n",
			      "high\xc3\xa9\n", "a\nb", long_line, many };
	struct bh_crash_info ci = { .job_id = 1 };
	size_t len;

	memset(long_line, 'x', BH_CRASH_LINE_MAX + 1);
	long_line[BH_CRASH_LINE_MAX + 1] = '\n';
	for (unsigned i = 0; i <= BH_CRASH_FRAMES_MAX; i++)
		memcpy(many + 2 * i, "a\n", 2);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ci.text = bad[i];
		ci.len = (uint16_t)strlen(bad[i]);
		for (ci.frames = 0; ci.frames <= BH_CRASH_FRAMES_MAX + 1; ci.frames++)
			ck_assert_msg(bh_encode_crash_info(scratch, BH_FRAME_MAX, &ci) == 0,
				      "text %zu frames %u", i, ci.frames);
	}
	/* The frame count must match the lines. */
	len = crash_info(scratch, 1, 0, "a\nb\n");
	ck_assert_uint_ne(len, 0);
	ck_assert_int_eq(decode_copy(scratch, len), 0);
	scratch[HDR + 16] = 1;
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	scratch[HDR + 16] = 2;
	/* Reserved must be 0. */
	scratch[HDR + 20] = 1;
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	scratch[HDR + 20] = 0;
	/* A text length that disagrees with the payload. */
	scratch[HDR + 18] = 3;
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	scratch[HDR + 18] = 4;
	/* A line of a control character, by hand past the encoder. */
	scratch[HDR + 24] = '\r';
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	scratch[HDR + 24] = 'a';
	ck_assert_int_eq(decode_copy(scratch, len), 0);
	/* Shorter than the fixed part. */
	len = put_raw_header(scratch, BH_FRAME_CRASH_INFO, 23);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
}
END_TEST

START_TEST(test_reject_hello)
{
	size_t len;

	len = bh_encode_hello(scratch, sizeof(scratch), 0, 4);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = bh_encode_hello(scratch, sizeof(scratch), -1, 4);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = bh_encode_hello(scratch, sizeof(scratch), INT32_MIN, 4);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = bh_encode_hello(scratch, sizeof(scratch), 100, 0);
	ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	len = bh_encode_hello(scratch, sizeof(scratch), 1, 1);
	ck_assert_int_eq(decode_copy(scratch, len), 0);
}
END_TEST

START_TEST(test_reject_stop_payload)
{
	for (size_t n = 1; n <= 64; n++) {
		size_t len = put_raw_header(scratch, BH_FRAME_STOP, n);

		memset(scratch + HDR, 0, n);
		ck_assert_int_eq(decode_copy(scratch, len), -EINVAL);
	}
}
END_TEST

/* --- mutation loop -------------------------------------------------------------------- */

#define MUTATIONS 100000

static bool valid_error(int r)
{
	return r == -EBADMSG || r == -EPROTO || r == -EMSGSIZE || r == -ENOMSG || r == -EINVAL;
}

static void mutate(uint64_t *seed, uint8_t *buf, size_t len)
{
	unsigned n = 1 + xorshift64(seed) % 4;

	for (unsigned i = 0; i < n && len > 0; i++) {
		uint64_t r = xorshift64(seed);
		/* Half the time hit the header and the fixed fields right after it. */
		size_t at = (r & 1) ? (r >> 8) % (len < 32 ? len : 32) : (r >> 8) % len;
		static const uint8_t interesting[] = { 0, 1, 0x7f, 0x80, 0xff };

		switch ((r >> 1) % 4) {
		case 0:
			buf[at] ^= (uint8_t)(1u << ((r >> 40) % 8));
			break;
		case 1:
			buf[at] = (uint8_t)(r >> 48);
			break;
		case 2:
			buf[at] = interesting[(r >> 40) % sizeof(interesting)];
			break;
		default:
			buf[at] ^= (uint8_t)(r >> 48) | 1;
			break;
		}
	}
}

START_TEST(test_mutation_loop)
{
	static uint8_t out[BH_FRAME_MAX], big[BH_FRAME_MAX + 32];
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	unsigned accepted[64] = { 0 }, errors[5] = { 0 };

	for (unsigned iter = 0; iter < MUTATIONS; iter++) {
		const struct sample *s = &samples[xorshift64(&seed) % n_samples];
		uint64_t how = xorshift64(&seed);
		size_t len = s->len;
		struct bh_frame f;
		uint8_t *q;
		int r;

		if (how % 8 == 0)
			len = xorshift64(&seed) % (s->len + 1);
		else if (how % 8 == 1)
			len = s->len + 1 + xorshift64(&seed) % 24;
		/* Exact-size heap copies of small frames (for ASan); big ones reuse one buffer. */
		q = len <= 4096 ? malloc(len ? len : 1) : big;
		require(q, "out of memory");
		memcpy(q, s->buf, len < s->len ? len : s->len);
		for (size_t i = s->len; i < len; i++)
			q[i] = (uint8_t)xorshift64(&seed);
		mutate(&seed, q, len);
		/* Mostly make the length agree, so the payload checks get exercised. */
		if ((how >> 8) % 4 != 0 && len >= HDR)
			set_length(q, (uint32_t)(len - HDR));

		r = bh_frame_decode(q, len, &f);
		if (r == 0) {
			require(reencode(&f, out) == len, "iteration %u", iter);
			require(memcmp(out, q, len) == 0, "iteration %u", iter);
			accepted[f.type % 64]++;
		} else {
			require(valid_error(r), "iteration %u: %d", iter, r);
			errors[r == -EBADMSG	? 0
			       : r == -EPROTO	? 1
			       : r == -EMSGSIZE ? 2
			       : r == -ENOMSG	? 3
						: 4]++;
		}
		if (q != big)
			free(q);
	}

	/* The loop got past the header checks for every type, and hit every kind of error. */
	ck_assert_uint_gt(accepted[BH_FRAME_HELLO], 100);
	ck_assert_uint_gt(accepted[BH_FRAME_CRASH], 100);
	ck_assert_uint_gt(accepted[BH_FRAME_SPEC], 100);
	ck_assert_uint_gt(accepted[BH_FRAME_STOP], 100);
	ck_assert_uint_gt(accepted[BH_FRAME_ASSIGN], 100);
	ck_assert_uint_gt(accepted[BH_FRAME_DONE], 100);
	ck_assert_uint_gt(accepted[BH_FRAME_RESULT], 100);
	ck_assert_uint_gt(accepted[BH_FRAME_INPUT], 100);
	ck_assert_uint_gt(accepted[BH_FRAME_PROGRESS], 100);
	ck_assert_uint_gt(accepted[BH_FRAME_EXEC], 100);
	ck_assert_uint_gt(accepted[BH_FRAME_CANCEL], 100);
	ck_assert_uint_gt(accepted[BH_FRAME_INJECT], 100);
	ck_assert_uint_gt(accepted[BH_FRAME_FORGET], 100);
	ck_assert_uint_gt(errors[0], 100);
	ck_assert_uint_gt(errors[1], 100);
	ck_assert_uint_gt(errors[2], 0);
	ck_assert_uint_gt(errors[3], 100);
	ck_assert_uint_gt(errors[4], 100);
}
END_TEST

START_TEST(test_inject_frame)
{
	uint8_t buf[64];
	struct bh_frame f;
	size_t len;

	for (int k = BH_INJECT_SEGV; k <= BH_INJECT_LEAK; k++) {
		len = bh_encode_inject(buf, sizeof(buf), (enum bh_inject_kind)k);
		ck_assert_uint_eq(len, HDR + 8);
		ck_assert_int_eq(bh_frame_decode(buf, len, &f), 0);
		ck_assert_int_eq(f.type, BH_FRAME_INJECT);
		ck_assert_uint_eq(f.inject.kind, (uint32_t)k);
		ck_assert(!bh_frame_from_worker(f.type));
		/* every truncation is refused */
		for (size_t cut = 0; cut < len; cut++)
			ck_assert_int_lt(bh_frame_decode(buf, cut, &f), 0);
	}
	/* unknown kind, reserved word set */
	len = bh_encode_inject(buf, sizeof(buf), BH_INJECT_SEGV);
	buf[HDR] = 0;
	ck_assert_int_eq(bh_frame_decode(buf, len, &f), -EINVAL);
	buf[HDR] = 9;
	ck_assert_int_eq(bh_frame_decode(buf, len, &f), -EINVAL);
	buf[HDR] = BH_INJECT_HANG;
	buf[HDR + 4] = 1;
	ck_assert_int_eq(bh_frame_decode(buf, len, &f), -EINVAL);
	ck_assert_uint_eq(bh_encode_inject(buf, HDR + 7, BH_INJECT_SEGV), 0);
	ck_assert_str_eq(bh_frame_type_name(BH_FRAME_INJECT), "INJECT");
}
END_TEST

START_TEST(test_forget_frame)
{
	uint8_t buf[64];
	struct bh_frame f;
	size_t len;

	for (uint32_t id = 0; id < 3; id++) {
		len = bh_encode_forget(buf, sizeof(buf), id * 0x7fffffffu);
		ck_assert_uint_eq(len, HDR + 8);
		ck_assert_int_eq(bh_frame_decode(buf, len, &f), 0);
		ck_assert_int_eq(f.type, BH_FRAME_FORGET);
		ck_assert_uint_eq(f.forget.spec_id, id * 0x7fffffffu);
		for (size_t cut = 0; cut < len; cut++)
			ck_assert_int_lt(bh_frame_decode(buf, cut, &f), 0);
	}
	/* UINT32_MAX is no spec id (not encoded, not decoded); the reserved word must be 0. */
	ck_assert_uint_eq(bh_encode_forget(buf, sizeof(buf), UINT32_MAX), 0);
	len = bh_encode_forget(buf, sizeof(buf), 5);
	memset(buf + HDR, 0xff, 4);
	ck_assert_int_eq(bh_frame_decode(buf, len, &f), -EINVAL);
	len = bh_encode_forget(buf, sizeof(buf), 5);
	buf[HDR + 4] = 1;
	ck_assert_int_eq(bh_frame_decode(buf, len, &f), -EINVAL);
	ck_assert_uint_eq(bh_encode_forget(buf, HDR + 7, 5), 0);
	ck_assert_str_eq(bh_frame_type_name(BH_FRAME_FORGET), "FORGET");
}
END_TEST

static Suite *protocol_suite(void)
{
	Suite *s = suite_create("protocol");
	TCase *tc;

	tc = tcase_create("roundtrip");
	tcase_add_unchecked_fixture(tc, samples_setup, samples_teardown);
	tcase_add_test(tc, test_hello_roundtrip);
	tcase_add_test(tc, test_inject_frame);
	tcase_add_test(tc, test_forget_frame);
	tcase_add_test(tc, test_crash_roundtrip);
	tcase_add_test(tc, test_crash_info_roundtrip);
	tcase_add_test(tc, test_spec_roundtrip);
	tcase_add_test(tc, test_stop_roundtrip);
	tcase_add_test(tc, test_result_roundtrip);
	tcase_add_test(tc, test_log_roundtrip);
	tcase_add_test(tc, test_input_roundtrip);
	tcase_add_test(tc, test_id_value_roundtrip);
	tcase_add_test(tc, test_done_outcomes_roundtrip);
	tcase_add_test(tc, test_encoders_stay_in_bounds);
	tcase_add_test(tc, test_assign_batch_full);
	tcase_add_test(tc, test_done_batch_full);
	tcase_add_test(tc, test_batch_small_buffers);
	tcase_add_test(tc, test_samples_roundtrip);
	tcase_add_test(tc, test_type_names_and_direction);
	suite_add_tcase(s, tc);

	tc = tcase_create("reject");
	tcase_add_unchecked_fixture(tc, samples_setup, samples_teardown);
	tcase_add_test(tc, test_reject_short);
	tcase_add_test(tc, test_reject_every_prefix);
	tcase_add_test(tc, test_reject_truncated_payload);
	tcase_add_test(tc, test_reject_extended_payload);
	tcase_add_test(tc, test_reject_bad_magic);
	tcase_add_test(tc, test_reject_wrong_version);
	tcase_add_test(tc, test_reject_length_mismatch);
	tcase_add_test(tc, test_reject_oversized);
	tcase_add_test(tc, test_reject_unknown_type);
	tcase_add_test(tc, test_reject_wrong_type_payload);
	tcase_add_test(tc, test_reject_batch);
	tcase_add_test(tc, test_reject_assign_flags);
	tcase_add_test(tc, test_reject_done_entry);
	tcase_add_test(tc, test_reject_spec);
	tcase_add_test(tc, test_spec_exec_settings);
	tcase_add_test(tc, test_reject_text);
	tcase_add_test(tc, test_reject_id_value);
	tcase_add_test(tc, test_reject_crash);
	tcase_add_test(tc, test_reject_crash_info);
	tcase_add_test(tc, test_reject_hello);
	tcase_add_test(tc, test_reject_stop_payload);
	suite_add_tcase(s, tc);

	tc = tcase_create("mutation");
	tcase_add_unchecked_fixture(tc, samples_setup, samples_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_mutation_loop);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(protocol_suite());
	int failed;

	/* Forked mode is Check's default; CK_FORK=no still works for gdb. */
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
