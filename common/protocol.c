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

size_t bh_encode_spec(void *buf, size_t size, uint32_t id, const char *run, const char *args)
{
	size_t rl = strlen(run), al = strlen(args);
	if (rl == 0 || rl > BH_SPEC_STRING_MAX || al > BH_SPEC_STRING_MAX)
		return 0;
	size_t payload = 8 + rl + al;
	if (HDR + payload > size || HDR + payload > BH_FRAME_MAX)
		return 0;
	uint8_t *p = (uint8_t *)buf + HDR;
	uint16_t r16 = (uint16_t)rl, a16 = (uint16_t)al;
	memcpy(p, &id, 4);
	memcpy(p + 4, &r16, 2);
	memcpy(p + 6, &a16, 2);
	memcpy(p + 8, run, rl);
	memcpy(p + 8 + rl, args, al);
	return put_header(buf, BH_FRAME_SPEC, payload);
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

bool bh_batch_add_assign(struct bh_batch *b, uint64_t job_id, uint32_t spec_id)
{
	struct bh_assign_entry e = { .job_id = job_id, .spec_id = spec_id };
	uint8_t *p = batch_slot(b, sizeof(e));
	if (!p)
		return false;
	memcpy(p, &e, sizeof(e));
	return true;
}

bool bh_batch_add_done(struct bh_batch *b, uint64_t job_id, int32_t status, uint32_t run_usec)
{
	struct bh_done_entry e = { .job_id = job_id, .status = status, .run_usec = run_usec };
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

/* ASSIGN entries have reserved flags (must be 0); DONE entries a free run_usec there. */
static int decode_batch(const uint8_t *p, size_t len, size_t esz, bool check_flags,
			uint32_t *ret_count, const uint8_t **ret_entries)
{
	uint32_t hdr[2];
	if (len < sizeof(hdr))
		return -EINVAL;
	memcpy(hdr, p, sizeof(hdr));
	if (hdr[0] == 0 || hdr[1] != 0)
		return -EINVAL;
	if ((len - sizeof(hdr)) / esz != hdr[0] || (len - sizeof(hdr)) % esz != 0)
		return -EINVAL;
	for (uint32_t i = 0; i < hdr[0]; i++) {
		uint64_t id;
		uint32_t flags;
		memcpy(&id, p + sizeof(hdr) + i * esz, 8);
		memcpy(&flags, p + sizeof(hdr) + i * esz + 12, 4);
		if (id == 0 || (check_flags && flags != 0))
			return -EINVAL;
	}
	*ret_count = hdr[0];
	*ret_entries = p + sizeof(hdr);
	return 0;
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
		    f->crash.reserved != 0 || f->crash.signo < 0 || f->crash.signo > 64)
			return -EINVAL;
		/* A signal for SIGNAL and OOM, none for EXIT (protocol.h). */
		if ((f->crash.kind == BH_CRASH_EXIT) != (f->crash.signo == 0))
			return -EINVAL;
		return 0;
	case BH_FRAME_SPEC: {
		uint16_t rl, al;
		if (len < 8)
			return -EINVAL;
		memcpy(&f->spec.id, p, 4);
		memcpy(&rl, p + 4, 2);
		memcpy(&al, p + 6, 2);
		if (rl == 0 || rl > BH_SPEC_STRING_MAX || al > BH_SPEC_STRING_MAX ||
		    (size_t)8 + rl + al != len)
			return -EINVAL;
		if (memchr(p + 8, 0, (size_t)rl + al))
			return -EINVAL;
		f->spec.run = (const char *)p + 8;
		f->spec.run_len = rl;
		f->spec.args = (const char *)p + 8 + rl;
		f->spec.args_len = al;
		return 0;
	}
	case BH_FRAME_ASSIGN:
		return decode_batch(p, len, sizeof(struct bh_assign_entry), true, &f->assign.count,
				    &f->assign.entries);
	case BH_FRAME_DONE:
		return decode_batch(p, len, sizeof(struct bh_done_entry), false, &f->done.count,
				    &f->done.entries);
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
