/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for bh_frame_decode(), the first thing that touches bytes a worker or the
 * master sends. The decoder must never read outside the buffer, and any frame it accepts
 * must re-encode, through the public encoders, to exactly the bytes that were decoded: no
 * accepted frame carries anything the decoder did not check.
 *
 * Each input is tried three ways: as it is; with the header's length field patched to agree
 * with the input size; and as "type byte, then payload" behind a header built here. The last
 * two keep the fuzzer in the payload checks instead of rediscovering the magic and the length
 * field (at -O1 and above the compiler may merge the header compares so that libFuzzer's
 * comparison hints no longer find the magic). See README.md for how to build and run it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/protocol.h"

#define HDR sizeof(struct bh_frame_header)

static uint8_t out[BH_FRAME_MAX];

static size_t reencode(const struct bh_frame *f)
{
	static char str[6][BH_SPEC_STRING_MAX + 1], input[BH_INPUT_MAX + 1];
	struct bh_batch b;

	switch (f->type) {
	case BH_FRAME_HELLO:
		return bh_encode_hello(out, sizeof(out), f->hello.pid, f->hello.threads);
	case BH_FRAME_CRASH:
		return bh_encode_crash(out, sizeof(out), &f->crash);
	case BH_FRAME_CRASH_INFO:
		if (f->crash_info.frames == 0 || f->crash_info.frames > BH_CRASH_FRAMES_MAX ||
		    f->crash_info.len > BH_CRASH_TEXT_MAX)
			abort();
		return bh_encode_crash_info(out, sizeof(out), &f->crash_info);
	case BH_FRAME_STOP:
		return bh_encode_stop(out, sizeof(out));
	case BH_FRAME_INJECT:
		return bh_encode_inject(out, sizeof(out), (enum bh_inject_kind)f->inject.kind);
	case BH_FRAME_SPEC: {
		const char *p[6] = { f->spec.run,    f->spec.args,        f->spec.name,
				     f->spec.output, f->spec.environment, f->spec.working_directory };
		uint16_t l[6] = { f->spec.run_len,	   f->spec.args_len,
				  f->spec.name_len,	   f->spec.output_len,
				  f->spec.environment_len, f->spec.working_directory_len };

		for (unsigned i = 0; i < 6; i++) {
			if (l[i] > BH_SPEC_STRING_MAX)
				abort();
			memcpy(str[i], p[i], l[i]);
			str[i][l[i]] = 0;
		}
		return bh_encode_spec(out, sizeof(out),
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
		if (f->text.len > BH_RESULT_MAX)
			abort();
		return bh_encode_result(out, sizeof(out), f->text.job_id, f->text.text,
					f->text.len);
	case BH_FRAME_LOG:
		if (f->text.len > BH_LOG_MAX || f->text.level < 3 || f->text.level > 7)
			abort();
		return bh_encode_log(out, sizeof(out), f->text.job_id, f->text.level, f->text.text,
				     f->text.len);
	case BH_FRAME_FORGET:
		return bh_encode_forget(out, sizeof(out), f->forget.spec_id);
	case BH_FRAME_INPUT:
		if (f->text.len == 0 || f->text.len > BH_INPUT_MAX)
			abort();
		memcpy(input, f->text.text, f->text.len);
		input[f->text.len] = 0;
		return bh_encode_input(out, sizeof(out), f->text.job_id, input);
	case BH_FRAME_PROGRESS:
		if (f->progress.permille > BH_PROGRESS_MAX)
			abort();
		return bh_encode_progress(out, sizeof(out), f->progress.job_id,
					  f->progress.permille);
	case BH_FRAME_EXEC:
		if (f->exec.pid <= 0)
			abort();
		return bh_encode_exec(out, sizeof(out), f->exec.job_id, f->exec.pid);
	case BH_FRAME_CANCEL:
		return bh_encode_cancel(out, sizeof(out), f->cancel.job_id);
	case BH_FRAME_ASSIGN:
		bh_batch_init(&b, out, sizeof(out), BH_FRAME_ASSIGN);
		for (uint32_t i = 0; i < f->assign.count; i++) {
			struct bh_assign_entry e;

			bh_frame_assign_entry(f, i, &e);
			if (e.job_id == 0 || (e.flags & ~BH_ASSIGN_INPUT) != 0 ||
			    !bh_batch_add_assign(&b, e.job_id, e.spec_id, e.flags))
				abort();
		}
		return bh_batch_finish(&b);
	case BH_FRAME_DONE:
		bh_batch_init(&b, out, sizeof(out), BH_FRAME_DONE);
		for (uint32_t i = 0; i < f->done.count; i++) {
			struct bh_done_entry e;

			bh_frame_done_entry(f, i, &e);
			if (e.job_id == 0 || e.reserved != 0 || e.outcome > BH_OUTCOME_CANCELLED ||
			    !bh_batch_add_done(&b, e.job_id, (enum bh_outcome)e.outcome, e.status,
					       e.run_usec))
				abort();
		}
		return bh_batch_finish(&b);
	}
	abort(); /* the decoder accepted a type it does not know */
}

static void check_one(const uint8_t *buf, size_t len)
{
	struct bh_frame f;

	if (bh_frame_decode(buf, len, &f) < 0)
		return;
	if (strcmp(bh_frame_type_name(f.type), "UNKNOWN") == 0)
		abort();
	if (reencode(&f) != len || memcmp(out, buf, len) != 0)
		abort();
}

/* Decodes an exact-size heap copy (so ASan sees the end) of hdr (if any) then data. */
static void check_copy(const struct bh_frame_header *hdr, const uint8_t *data, size_t size,
		       bool patch_length)
{
	size_t off = hdr ? HDR : 0, len = off + size;
	uint8_t *copy;

	if (len == 0 || len > BH_FRAME_MAX + 1)
		return;
	copy = malloc(len);
	if (!copy)
		return;
	if (hdr)
		memcpy(copy, hdr, HDR);
	memcpy(copy + off, data, size);
	if (patch_length && len >= HDR) {
		uint32_t length = (uint32_t)(len - HDR);

		memcpy(copy + offsetof(struct bh_frame_header, length), &length, sizeof(length));
	}
	check_one(copy, len);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_one(data, size);
	check_copy(NULL, data, size, true);
	if (size >= 1) {
		struct bh_frame_header h = {
			.magic = BH_PROTO_MAGIC,
			.version = BH_PROTO_VERSION,
			.type = data[0],
			.length = (uint32_t)(size - 1),
		};

		check_copy(&h, data + 1, size - 1, false);
	}
	return 0;
}
