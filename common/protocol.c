/* SPDX-License-Identifier: MIT */
/*
 * Encoding and checking of master <-> worker frames (see protocol.h). Nothing here
 * allocates or logs; every encoder is async-signal-safe (memcpy and arithmetic only), so the
 * worker's crash handler can use bh_encode_crash().
 */
#include <errno.h>
#include <string.h>

#include "protocol.h"

#define HDR sizeof(struct bh_frame_header)

bool bh_frame_from_worker(enum bh_frame_type type)
{
	return type >= 1 && type <= 31;
}

const char *bh_frame_type_name(unsigned type)
{
	switch (type) {
	case BH_FRAME_HELLO:
		return "HELLO";
	case BH_FRAME_DONE:
		return "DONE";
	case BH_FRAME_CRASH:
		return "CRASH";
	case BH_FRAME_SPEC:
		return "SPEC";
	case BH_FRAME_ASSIGN:
		return "ASSIGN";
	case BH_FRAME_STOP:
		return "STOP";
	case BH_FRAME_INJECT:
		return "INJECT";
	case BH_FRAME_RESULT:
		return "RESULT";
	case BH_FRAME_PROGRESS:
		return "PROGRESS";
	case BH_FRAME_EXEC:
		return "EXEC";
	case BH_FRAME_LOG:
		return "LOG";
	case BH_FRAME_CRASH_INFO:
		return "CRASH_INFO";
	case BH_FRAME_CANCEL:
		return "CANCEL";
	case BH_FRAME_INPUT:
		return "INPUT";
	case BH_FRAME_FORGET:
		return "FORGET";
	default:
		return "UNKNOWN";
	}
}

static size_t put_header(void *buf, enum bh_frame_type type, size_t payload)
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

size_t bh_encode_hello(void *buf, size_t size, int32_t pid, uint32_t threads)
{
	struct bh_hello p = { .pid = pid, .threads = threads };
	if (size < HDR + sizeof(p))
		return 0;
	memcpy((uint8_t *)buf + HDR, &p, sizeof(p));
	return put_header(buf, BH_FRAME_HELLO, sizeof(p));
}

size_t bh_encode_crash(void *buf, size_t size, const struct bh_crash *c)
{
	if (size < HDR + sizeof(*c))
		return 0;
	memcpy((uint8_t *)buf + HDR, c, sizeof(*c));
	return put_header(buf, BH_FRAME_CRASH, sizeof(*c));
}

#define CRASH_INFO_FIXED 24u /* u64 job id, u64 addr, u16 frames, u16 length, u32 reserved */

/* CRASH_INFO's text: `frames` lines of 1..BH_CRASH_LINE_MAX printable bytes, each + '\n'. */
static bool crash_text_ok(const char *text, size_t len, unsigned frames)
{
	unsigned lines = 0;
	size_t line = 0;

	if (frames < 1 || frames > BH_CRASH_FRAMES_MAX || len > BH_CRASH_TEXT_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '\n') {
			if (line == 0)
				return false;
			lines++;
			line = 0;
		} else if (c < 0x20 || c > 0x7e || ++line > BH_CRASH_LINE_MAX) {
			return false;
		}
	}
	return line == 0 && lines == frames;
}

size_t bh_encode_crash_info(void *buf, size_t size, const struct bh_crash_info *info)
{
	uint8_t *p = (uint8_t *)buf + HDR;
	uint32_t r32 = 0;

	if (!crash_text_ok(info->text, info->len, info->frames) ||
	    size < HDR + CRASH_INFO_FIXED + info->len)
		return 0;
	memcpy(p, &info->job_id, 8);
	memcpy(p + 8, &info->addr, 8);
	memcpy(p + 16, &info->frames, 2);
	memcpy(p + 18, &info->len, 2);
	memcpy(p + 20, &r32, 4);
	memcpy(p + CRASH_INFO_FIXED, info->text, info->len);
	return put_header(buf, BH_FRAME_CRASH_INFO, CRASH_INFO_FIXED + info->len);
}

/*
 * u32 id, u16 lengths of run, args, name, output, environment, working directory, i32 nice,
 * u32 reserved, the exit-code set; then the strings in that order.
 */
#define SPEC_STRINGS 6u
#define SPEC_FIXED (4u + 2u * SPEC_STRINGS + 4u + 4u + BH_EXIT_SET_BYTES)

size_t bh_encode_spec(void *buf, size_t size, const struct bh_spec *s)
{
	const char *str[SPEC_STRINGS] = { s->run,
					  s->args ? s->args : "",
					  s->name ? s->name : "",
					  s->output ? s->output : "",
					  s->environment ? s->environment : "",
					  s->working_directory ? s->working_directory : "" };
	uint8_t exits[BH_EXIT_SET_BYTES] = { 1 };
	uint16_t l16[SPEC_STRINGS];
	size_t payload = SPEC_FIXED;
	uint32_t reserved = 0;
	int32_t nice = s->has_nice ? s->nice : BH_NICE_INHERIT;
	uint8_t *p = (uint8_t *)buf + HDR;

	if (s->id == UINT32_MAX || (nice != BH_NICE_INHERIT && (nice < -20 || nice > 19)))
		return 0;
	if (s->success_exit_status)
		memcpy(exits, s->success_exit_status, sizeof(exits));
	exits[0] |= 1;
	for (unsigned i = 0; i < SPEC_STRINGS; i++) {
		size_t l = strlen(str[i]);

		if (l > BH_SPEC_STRING_MAX || (i == 0 && l == 0))
			return 0;
		l16[i] = (uint16_t)l;
		payload += l;
	}
	if (HDR + payload > size || HDR + payload > BH_FRAME_MAX)
		return 0;
	memcpy(p, &s->id, 4);
	memcpy(p + 4, l16, sizeof(l16));
	memcpy(p + 4 + sizeof(l16), &nice, 4);
	memcpy(p + 8 + sizeof(l16), &reserved, 4);
	memcpy(p + 12 + sizeof(l16), exits, sizeof(exits));
	p += SPEC_FIXED;
	for (unsigned i = 0; i < SPEC_STRINGS; i++) {
		memcpy(p, str[i], l16[i]);
		p += l16[i];
	}
	return put_header(buf, BH_FRAME_SPEC, payload);
}

/* RESULT and INPUT: u64 job id, u16 length, u16 + u32 reserved, then the bytes. */
static size_t encode_text(void *buf, size_t size, enum bh_frame_type type, uint64_t job_id,
			  const char *text, size_t len)
{
	uint8_t *p = (uint8_t *)buf + HDR;
	uint16_t l16 = (uint16_t)len, r16 = 0;
	uint32_t r32 = 0;

	if (job_id == 0 || HDR + 16 + len > size || memchr(text, 0, len))
		return 0;
	memcpy(p, &job_id, 8);
	memcpy(p + 8, &l16, 2);
	memcpy(p + 10, &r16, 2);
	memcpy(p + 12, &r32, 4);
	memcpy(p + 16, text, len);
	return put_header(buf, type, 16 + len);
}

size_t bh_encode_log(void *buf, size_t size, uint64_t job_id, int level, const char *text,
		     size_t len)
{
	size_t n;

	if (len > BH_LOG_MAX || level < 3 || level > 7)
		return 0;
	n = encode_text(buf, size, BH_FRAME_LOG, job_id, text, len);
	if (n > 0) {
		uint16_t l = (uint16_t)level;

		memcpy((uint8_t *)buf + HDR + 10, &l, 2);
	}
	return n;
}

size_t bh_encode_result(void *buf, size_t size, uint64_t job_id, const char *text, size_t len)
{
	if (len > BH_RESULT_MAX)
		return 0;
	return encode_text(buf, size, BH_FRAME_RESULT, job_id, text, len);
}

size_t bh_encode_input(void *buf, size_t size, uint64_t job_id, const char *input)
{
	size_t len = strlen(input);

	if (len == 0 || len > BH_INPUT_MAX)
		return 0;
	return encode_text(buf, size, BH_FRAME_INPUT, job_id, input, len);
}

/* PROGRESS, EXEC and CANCEL: u64 job id, u32 value, u32 reserved. */
static size_t encode_id_value(void *buf, size_t size, enum bh_frame_type type, uint64_t job_id,
			      uint32_t value)
{
	uint8_t *p = (uint8_t *)buf + HDR;
	uint32_t r32 = 0;

	if (job_id == 0 || size < HDR + 16)
		return 0;
	memcpy(p, &job_id, 8);
	memcpy(p + 8, &value, 4);
	memcpy(p + 12, &r32, 4);
	return put_header(buf, type, 16);
}

size_t bh_encode_progress(void *buf, size_t size, uint64_t job_id, uint32_t permille)
{
	if (permille > BH_PROGRESS_MAX)
		return 0;
	return encode_id_value(buf, size, BH_FRAME_PROGRESS, job_id, permille);
}

size_t bh_encode_exec(void *buf, size_t size, uint64_t job_id, int32_t pid)
{
	if (pid <= 0)
		return 0;
	return encode_id_value(buf, size, BH_FRAME_EXEC, job_id, (uint32_t)pid);
}

size_t bh_encode_cancel(void *buf, size_t size, uint64_t job_id)
{
	return encode_id_value(buf, size, BH_FRAME_CANCEL, job_id, 0);
}

size_t bh_encode_stop(void *buf, size_t size)
{
	if (size < HDR)
		return 0;
	return put_header(buf, BH_FRAME_STOP, 0);
}

size_t bh_encode_inject(void *buf, size_t size, enum bh_inject_kind kind)
{
	uint32_t p[2] = { (uint32_t)kind, 0 };

	if (size < HDR + sizeof(p))
		return 0;
	memcpy((uint8_t *)buf + HDR, p, sizeof(p));
	return put_header(buf, BH_FRAME_INJECT, sizeof(p));
}

size_t bh_encode_forget(void *buf, size_t size, uint32_t spec_id)
{
	uint32_t p[2] = { spec_id, 0 };

	if (size < HDR + sizeof(p) || spec_id == UINT32_MAX)
		return 0;
	memcpy((uint8_t *)buf + HDR, p, sizeof(p));
	return put_header(buf, BH_FRAME_FORGET, sizeof(p));
}

void bh_batch_init(struct bh_batch *b, void *buf, size_t size, enum bh_frame_type type)
{
	size_t esz = type == BH_FRAME_ASSIGN ? sizeof(struct bh_assign_entry)
					     : sizeof(struct bh_done_entry);
	if (size > BH_FRAME_MAX)
		size = BH_FRAME_MAX;
	*b = (struct bh_batch){ .buf = buf, .size = size, .type = type };
	b->max = size < HDR + BH_BATCH_HEADER_SIZE ? 0
						   : (uint32_t)((size - HDR - BH_BATCH_HEADER_SIZE) / esz);
}

static uint8_t *batch_slot(struct bh_batch *b, size_t esz)
{
	if (b->count >= b->max)
		return NULL;
	return b->buf + HDR + BH_BATCH_HEADER_SIZE + (size_t)b->count++ * esz;
}

bool bh_batch_add_assign(struct bh_batch *b, uint64_t job_id, uint32_t spec_id, uint32_t flags)
{
	struct bh_assign_entry e = { .job_id = job_id, .spec_id = spec_id, .flags = flags };
	uint8_t *p = batch_slot(b, sizeof(e));
	if (!p)
		return false;
	memcpy(p, &e, sizeof(e));
	return true;
}

bool bh_batch_add_done(struct bh_batch *b, uint64_t job_id, enum bh_outcome outcome,
		       int32_t status, uint32_t run_usec)
{
	struct bh_done_entry e = { .job_id = job_id,
				   .status = status,
				   .run_usec = run_usec,
				   .outcome = (uint32_t)outcome };
	uint8_t *p = batch_slot(b, sizeof(e));
	if (!p)
		return false;
	memcpy(p, &e, sizeof(e));
	return true;
}

size_t bh_batch_finish(struct bh_batch *b)
{
	if (b->count == 0)
		return 0;
	size_t esz = b->type == BH_FRAME_ASSIGN ? sizeof(struct bh_assign_entry)
						: sizeof(struct bh_done_entry);
	uint32_t hdr[2] = { b->count, 0 };
	memcpy(b->buf + HDR, hdr, sizeof(hdr));
	return put_header(b->buf, b->type, BH_BATCH_HEADER_SIZE + (size_t)b->count * esz);
}

void bh_frame_assign_entry(const struct bh_frame *f, uint32_t i, struct bh_assign_entry *ret)
{
	memcpy(ret, f->assign.entries + (size_t)i * sizeof(*ret), sizeof(*ret));
}

void bh_frame_done_entry(const struct bh_frame *f, uint32_t i, struct bh_done_entry *ret)
{
	memcpy(ret, f->done.entries + (size_t)i * sizeof(*ret), sizeof(*ret));
}

static bool assign_entry_ok(const uint8_t *e)
{
	struct bh_assign_entry a;

	memcpy(&a, e, sizeof(a));
	return a.job_id != 0 && a.spec_id != UINT32_MAX && (a.flags & ~(BH_ASSIGN_INPUT | BH_ASSIGN_CONTAIN)) == 0;
}

static bool done_entry_ok(const uint8_t *e)
{
	struct bh_done_entry d;

	memcpy(&d, e, sizeof(d));
	if (d.job_id == 0 || d.reserved != 0)
		return false;
	switch (d.outcome) {
	case BH_OUTCOME_RETURNED:
		return true;
	case BH_OUTCOME_SIGNALED:
		return d.status > 0 && d.status <= 64;
	case BH_OUTCOME_SPAWN_FAILED:
		return d.status > 0;
	case BH_OUTCOME_CANCELLED:
		return d.status == 0;
	case BH_OUTCOME_DIED_SIGNAL:
		return d.status > 0 && d.status <= 64;
	case BH_OUTCOME_DIED_EXIT:
		return d.status >= 0 && d.status <= 255;
	}
	return false;
}

static int decode_batch(const uint8_t *p, size_t len, size_t esz,
			bool (*entry_ok)(const uint8_t *), uint32_t *ret_count,
			const uint8_t **ret_entries)
{
	uint32_t hdr[2];
	if (len < sizeof(hdr))
		return -EINVAL;
	memcpy(hdr, p, sizeof(hdr));
	if (hdr[0] == 0 || hdr[1] != 0)
		return -EINVAL;
	if ((len - sizeof(hdr)) / esz != hdr[0] || (len - sizeof(hdr)) % esz != 0)
		return -EINVAL;
	for (uint32_t i = 0; i < hdr[0]; i++)
		if (!entry_ok(p + sizeof(hdr) + i * esz))
			return -EINVAL;
	*ret_count = hdr[0];
	*ret_entries = p + sizeof(hdr);
	return 0;
}

static int decode_spec(const uint8_t *p, size_t len, struct bh_frame *f)
{
	uint16_t l[SPEC_STRINGS];
	const char **dst[SPEC_STRINGS] = { &f->spec.run, &f->spec.args, &f->spec.name,
					   &f->spec.output, &f->spec.environment,
					   &f->spec.working_directory };
	uint16_t *dst_len[SPEC_STRINGS] = { &f->spec.run_len, &f->spec.args_len,
					    &f->spec.name_len, &f->spec.output_len,
					    &f->spec.environment_len,
					    &f->spec.working_directory_len };
	uint32_t reserved;
	size_t total = SPEC_FIXED;
	const char *str;

	if (len < SPEC_FIXED)
		return -EINVAL;
	memcpy(&f->spec.id, p, 4);
	memcpy(l, p + 4, sizeof(l));
	memcpy(&f->spec.nice, p + 4 + sizeof(l), 4);
	memcpy(&reserved, p + 8 + sizeof(l), 4);
	f->spec.success_exit_status = p + 12 + sizeof(l);
	if (reserved != 0 || l[0] == 0 || f->spec.id == UINT32_MAX ||
	    !(f->spec.success_exit_status[0] & 1) ||
	    (f->spec.nice != BH_NICE_INHERIT && (f->spec.nice < -20 || f->spec.nice > 19)))
		return -EINVAL;
	for (unsigned i = 0; i < SPEC_STRINGS; i++) {
		if (l[i] > BH_SPEC_STRING_MAX)
			return -EINVAL;
		total += l[i];
	}
	if (total != len || memchr(p + SPEC_FIXED, 0, len - SPEC_FIXED))
		return -EINVAL;
	str = (const char *)p + SPEC_FIXED;
	for (unsigned i = 0; i < SPEC_STRINGS; i++) {
		*dst[i] = str;
		*dst_len[i] = l[i];
		str += l[i];
	}
	return 0;
}

/* RESULT and INPUT: the text is min..max bytes with no NUL. */
static int decode_text(const uint8_t *p, size_t len, size_t min, size_t max, struct bh_frame *f)
{
	uint16_t l16, r16;
	uint32_t r32;

	if (len < 16)
		return -EINVAL;
	memcpy(&f->text.job_id, p, 8);
	memcpy(&l16, p + 8, 2);
	memcpy(&r16, p + 10, 2);
	memcpy(&r32, p + 12, 4);
	/* The 16 bits after the length: LOG's level, 0 in the others. */
	if (f->text.job_id == 0 || (f->type == BH_FRAME_LOG ? r16 < 3 || r16 > 7 : r16 != 0) ||
	    r32 != 0 || l16 < min || l16 > max || (size_t)16 + l16 != len ||
	    memchr(p + 16, 0, l16))
		return -EINVAL;
	f->text.text = (const char *)p + 16;
	f->text.len = l16;
	f->text.level = r16;
	return 0;
}

/* PROGRESS, EXEC, CANCEL: a job id and one 32-bit value that the caller checks. */
static int decode_id_value(const uint8_t *p, size_t len, uint64_t *ret_id, uint32_t *ret_value)
{
	uint32_t r32;

	if (len != 16)
		return -EINVAL;
	memcpy(ret_id, p, 8);
	memcpy(ret_value, p + 8, 4);
	memcpy(&r32, p + 12, 4);
	return *ret_id != 0 && r32 == 0 ? 0 : -EINVAL;
}

static int decode_payload(const uint8_t *p, size_t len, struct bh_frame *f)
{
	switch (f->type) {
	case BH_FRAME_HELLO:
		if (len != sizeof(f->hello))
			return -EINVAL;
		memcpy(&f->hello, p, len);
		if (f->hello.pid <= 0 || f->hello.threads == 0)
			return -EINVAL;
		return 0;
	case BH_FRAME_CRASH:
		if (len != sizeof(f->crash))
			return -EINVAL;
		memcpy(&f->crash, p, len);
		if (f->crash.kind < BH_CRASH_SIGNAL || f->crash.kind > BH_CRASH_OOM ||
		    (f->crash.flags & ~BH_CRASH_CONTAINED) != 0 || f->crash.signo < 0 || f->crash.signo > 64)
			return -EINVAL;
		/* A signal for SIGNAL and OOM, none for EXIT (protocol.h). */
		if ((f->crash.kind == BH_CRASH_EXIT) != (f->crash.signo == 0))
			return -EINVAL;
		return 0;
	case BH_FRAME_CRASH_INFO: {
		struct bh_crash_info *ci = &f->crash_info;
		uint32_t r32;

		if (len < CRASH_INFO_FIXED)
			return -EINVAL;
		memcpy(&ci->job_id, p, 8);
		memcpy(&ci->addr, p + 8, 8);
		memcpy(&ci->frames, p + 16, 2);
		memcpy(&ci->len, p + 18, 2);
		memcpy(&r32, p + 20, 4);
		ci->text = (const char *)p + CRASH_INFO_FIXED;
		if (r32 != 0 || (size_t)CRASH_INFO_FIXED + ci->len != len ||
		    !crash_text_ok(ci->text, ci->len, ci->frames))
			return -EINVAL;
		return 0;
	}
	case BH_FRAME_SPEC:
		return decode_spec(p, len, f);
	case BH_FRAME_ASSIGN:
		return decode_batch(p, len, sizeof(struct bh_assign_entry), assign_entry_ok,
				    &f->assign.count, &f->assign.entries);
	case BH_FRAME_DONE:
		return decode_batch(p, len, sizeof(struct bh_done_entry), done_entry_ok,
				    &f->done.count, &f->done.entries);
	case BH_FRAME_RESULT:
		return decode_text(p, len, 0, BH_RESULT_MAX, f);
	case BH_FRAME_LOG:
		return decode_text(p, len, 0, BH_LOG_MAX, f);
	case BH_FRAME_INPUT:
		return decode_text(p, len, 1, BH_INPUT_MAX, f);
	case BH_FRAME_PROGRESS: {
		uint32_t v;

		if (decode_id_value(p, len, &f->progress.job_id, &v) < 0 || v > BH_PROGRESS_MAX)
			return -EINVAL;
		f->progress.permille = v;
		return 0;
	}
	case BH_FRAME_EXEC: {
		uint32_t v;

		if (decode_id_value(p, len, &f->exec.job_id, &v) < 0 || v == 0 || v > INT32_MAX)
			return -EINVAL;
		f->exec.pid = (int32_t)v;
		return 0;
	}
	case BH_FRAME_CANCEL: {
		uint32_t v;

		if (decode_id_value(p, len, &f->cancel.job_id, &v) < 0 || v != 0)
			return -EINVAL;
		return 0;
	}

	case BH_FRAME_STOP:
		return len == 0 ? 0 : -EINVAL;
	case BH_FRAME_INJECT: {
		uint32_t q[2];

		if (len != sizeof(q))
			return -EINVAL;
		memcpy(q, p, sizeof(q));
		if (q[0] < BH_INJECT_SEGV || q[0] > BH_INJECT_LEAK || q[1] != 0)
			return -EINVAL;
		f->inject.kind = q[0];
		return 0;
	}
	case BH_FRAME_FORGET: {
		uint32_t q[2];

		if (len != sizeof(q))
			return -EINVAL;
		memcpy(q, p, sizeof(q));
		if (q[0] == UINT32_MAX || q[1] != 0)
			return -EINVAL;
		f->forget.spec_id = q[0];
		return 0;
	}
	}
	return -ENOMSG;
}

int bh_frame_decode(const void *buf, size_t len, struct bh_frame *ret)
{
	struct bh_frame_header h;

	if (len > BH_FRAME_MAX)
		return -EMSGSIZE;
	if (len < HDR)
		return -EBADMSG;
	memcpy(&h, buf, HDR);
	if (h.magic != BH_PROTO_MAGIC)
		return -EBADMSG;
	if (h.version != BH_PROTO_VERSION)
		return -EPROTO;
	if (h.length != len - HDR)
		return -EBADMSG;
	*ret = (struct bh_frame){ .type = (enum bh_frame_type)h.type };
	return decode_payload((const uint8_t *)buf + HDR, h.length, ret);
}
