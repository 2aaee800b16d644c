/* SPDX-License-Identifier: MIT */
/*
 * archive-verify: checks that archives and compressed files are intact, with libarchive.
 *
 *     [job verify]
 *     run = plugin:archive-verify.so:archive_verify
 *     inputs = /var/cache/apt/archives/[a-z0-9]*.deb
 *
 * For its input file (argument "input") it reads every entry to the end, so that every
 * checksum the format has is checked: gzip and xz CRCs, zstd and bzip2 checks, tar header
 * checksums, zip CRC-32s. Archives inside the archive (a .deb's control.tar.xz and
 * data.tar.xz, a .tar.gz inside a zip) are opened and read the same way, one level deep,
 * unless the argument nested=no is given. A plain compressed file (.gz, .xz, .bz2, .zst,
 * .lz4) is read as one stream through libarchive's "raw" format.
 *
 * Result, on success (return 0):
 *     ar (GNU format): 3 entries, 1.2 MiB; inside: 2 archives, 415 entries, 4.8 MiB
 *     gzip: 1 stream, 212 KiB
 * On a corrupt, truncated or unreadable file (return 1) the result and a log line say why:
 *     corrupt: truncated input (after 2 entries)
 * A file that is neither an archive nor compressed fails too ("not an archive ...").
 *
 * Progress is reported after every entry, as the share of the file read so far, and a
 * cancelled job stops between blocks of data. Everything is local to the call, so any
 * number of job threads may run it at once.
 */
#include <archive.h>
#include <archive_entry.h>
#include <bulkhead/job.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

BULKHEAD_JOB_PLUGIN;

int archive_verify(struct bulkhead_job *job);

#define BLOCK_SIZE (64 * 1024) /* read size for the outer file */

struct totals {
	uint64_t entries, bytes; /* of the outer archive; bytes uncompressed */
	uint64_t nested, nested_entries, nested_bytes;
};

/* What a verification found: 0, or a reason in msg. */
struct check {
	struct bulkhead_job *job;
	char msg[200];
	bool cancelled;
};

/* Puts "CONTEXT: " in front of c->msg (cut to fit). */
static void add_context(struct check *c, const char *context)
{
	char old[sizeof(c->msg)];
	int n;

	memcpy(old, c->msg, sizeof(old));
	n = snprintf(c->msg, sizeof(c->msg), "%s: %s", context ? context : "(entry)", old);
	if (n < 0)
		memcpy(c->msg, old, sizeof(old));
}

/* The inner archive's reader: the outer archive's current entry, as a byte stream. */
struct nested_source {
	struct archive *outer;
	char buf[BLOCK_SIZE];
};

static la_ssize_t nested_read(struct archive *inner, void *ud, const void **ret)
{
	struct nested_source *src = ud;
	la_ssize_t n = archive_read_data(src->outer, src->buf, sizeof(src->buf));

	if (n < 0)
		archive_set_error(inner, EIO, "outer archive: %s",
				  archive_error_string(src->outer));
	*ret = src->buf;
	return n;
}

static const char *human(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	unsigned u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu bytes", (unsigned long long)bytes);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
	return buf;
}

/* Names that hold an archive or a compressed stream worth opening. */
static bool looks_nested(const char *name)
{
	static const char *const ext[] = { ".tar",  ".tgz", ".tbz2", ".txz", ".tzst", ".gz",
					   ".xz",   ".bz2", ".zst",  ".lz4", ".zip",  ".deb",
					   ".cpio", ".7z",  ".rar",  NULL };
	size_t n = name ? strlen(name) : 0;

	for (int i = 0; ext[i]; i++) {
		size_t e = strlen(ext[i]);

		if (n > e && strcmp(name + n - e, ext[i]) == 0)
			return true;
	}
	return false;
}

/*
 * Every filter, and every archive format but mtree: an mtree "archive" is a text file that
 * names files to read from the file system, and almost any text file parses as one.
 */
static void support_everything(struct archive *a)
{
	archive_read_support_filter_all(a);
	archive_read_support_format_7zip(a);
	archive_read_support_format_ar(a);
	archive_read_support_format_cab(a);
	archive_read_support_format_cpio(a);
	archive_read_support_format_iso9660(a);
	archive_read_support_format_lha(a);
	archive_read_support_format_rar(a);
	archive_read_support_format_rar5(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_xar(a);
	archive_read_support_format_zip(a);
	/* Last: a stream that is no archive format is one "data" entry (a bare .gz). */
	archive_read_support_format_raw(a);
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* Reads the current entry of a to its end; adds its size to *bytes. */
static int read_entry(struct archive *a, struct check *c, uint64_t *bytes)
{
	const void *block;
	size_t size;
	la_int64_t offset;
	unsigned blocks = 0;

	for (;;) {
		int r = archive_read_data_block(a, &block, &size, &offset);

		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN) {
			snprintf(c->msg, sizeof(c->msg), "%s", archive_error_string(a));
			return -1;
		}
		*bytes += size;
		if (++blocks % 16 == 0 && bulkhead_job_cancelled(c->job)) {
			c->cancelled = true;
			return -1;
		}
	}
}

/* Verifies the archive inside the outer archive's current entry. */
static int verify_nested(struct archive *outer, const char *name, struct totals *t, struct check *c)
{
	struct nested_source *src; /* on the heap: job threads have small stacks */
	struct archive_entry *e;
	struct archive *a;
	int r, result = 0;

	src = malloc(sizeof(*src));
	if (!src) {
		snprintf(c->msg, sizeof(c->msg), "out of memory");
		return -1;
	}
	src->outer = outer;
	a = archive_read_new();
	if (!a) {
		free(src);
		snprintf(c->msg, sizeof(c->msg), "out of memory");
		return -1;
	}
	support_everything(a);
	if (archive_read_open(a, src, NULL, nested_read, NULL) != ARCHIVE_OK) {
		snprintf(c->msg, sizeof(c->msg), "%s: %s", name, archive_error_string(a));
		result = -1;
		goto out;
	}
	t->nested++;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		t->nested_entries++;
		if (read_entry(a, c, &t->nested_bytes) < 0) {
			if (!c->cancelled) {
				add_context(c, archive_entry_pathname(e));
				add_context(c, name);
			}
			result = -1;
			goto out;
		}
	}
	if (r != ARCHIVE_EOF) {
		snprintf(c->msg, sizeof(c->msg), "%s: %s", name, archive_error_string(a));
		result = -1;
	}
out:
	archive_read_free(a);
	free(src);
	return result;
}

int archive_verify(struct bulkhead_job *job)
{
	const char *path = bulkhead_job_arg(job, "input");
	const char *nested_arg = bulkhead_job_arg(job, "nested");
	bool nested = !nested_arg || strcmp(nested_arg, "no") != 0;
	struct check c = { .job = job };
	struct totals t = { 0 };
	struct archive_entry *e;
	struct archive *a;
	char size_a[32], size_b[32];
	struct stat st = { .st_mode = S_IFREG }; /* what a failed stat() leaves */
	bool raw, compressed;
	int r;

	if (!path)
		path = bulkhead_job_arg(job, "path");
	if (!path) {
		bulkhead_job_result(job, "no input (use inputs = GLOB, spool = DIR or args = "
					 "path=FILE)");
		return 1;
	}
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
		const char *why = S_ISREG(st.st_mode) ? strerror(errno) : "not a regular file";

		bulkhead_job_result(job, "cannot open: %s", why);
		bulkhead_job_log(job, BULKHEAD_LOG_ERR, "%s: cannot open: %s", path, why);
		return 1;
	}

	a = archive_read_new();
	if (!a) {
		bulkhead_job_result(job, "out of memory");
		return 1;
	}
	support_everything(a);
	if (archive_read_open_filename(a, path, BLOCK_SIZE) != ARCHIVE_OK) {
		snprintf(c.msg, sizeof(c.msg), "%s", archive_error_string(a));
		goto fail;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		const char *name = archive_entry_pathname(e);

		t.entries++;
		if (nested && archive_format(a) != ARCHIVE_FORMAT_RAW && looks_nested(name) &&
		    archive_entry_filetype(e) == AE_IFREG) {
			uint64_t rest = 0;

			if (verify_nested(a, name, &t, &c) < 0)
				goto fail;
			/* The outer entry's size: what its inner archive was made of. */
			t.bytes += (uint64_t)archive_entry_size(e);
			/* Drain what the inner archive did not read (padding, trailing data). */
			if (read_entry(a, &c, &rest) < 0)
				goto fail;
		} else if (read_entry(a, &c, &t.bytes) < 0) {
			add_context(&c, name);
			goto fail;
		}
		if (st.st_size > 0)
			bulkhead_job_progress(job, (double)archive_filter_bytes(a, -1) /
							   (double)st.st_size);
		if (bulkhead_job_cancelled(job)) {
			c.cancelled = true;
			goto fail;
		}
	}
	if (r != ARCHIVE_EOF) {
		snprintf(c.msg, sizeof(c.msg), "%s (after %llu entries)", archive_error_string(a),
			 (unsigned long long)t.entries);
		goto fail;
	}

	raw = archive_format(a) == ARCHIVE_FORMAT_RAW;
	compressed = archive_filter_code(a, 0) != ARCHIVE_FILTER_NONE;
	if (raw && !compressed) {
		snprintf(c.msg, sizeof(c.msg), "not an archive or a compressed file");
		goto fail;
	}
	if (raw) {
		bulkhead_job_result(job, "%s: 1 stream, %s", archive_filter_name(a, 0),
				    human(t.bytes, size_a, sizeof(size_a)));
	} else {
		char inside[160] = "";

		if (t.nested > 0)
			snprintf(inside, sizeof(inside), "; inside: %llu %s, %llu %s, %s",
				 (unsigned long long)t.nested,
				 plural(t.nested, "archive", "archives"),
				 (unsigned long long)t.nested_entries,
				 plural(t.nested_entries, "entry", "entries"),
				 human(t.nested_bytes, size_b, sizeof(size_b)));
		bulkhead_job_result(
			job, "%s%s%s: %llu %s, %s%s", archive_format_name(a), compressed ? "+" : "",
			compressed ? archive_filter_name(a, 0) : "", (unsigned long long)t.entries,
			plural(t.entries, "entry", "entries"),
			human(t.bytes, size_a, sizeof(size_a)), inside);
	}
	archive_read_free(a);
	bulkhead_job_progress(job, 1.0);
	return 0;

fail:
	archive_read_free(a);
	if (c.cancelled) {
		bulkhead_job_result(job, "cancelled after %llu entries",
				    (unsigned long long)t.entries);
		return 1;
	}
	bulkhead_job_result(job, "corrupt: %s", c.msg);
	bulkhead_job_log(job, BULKHEAD_LOG_ERR, "%s: corrupt: %s", path, c.msg);
	return 1;
}
