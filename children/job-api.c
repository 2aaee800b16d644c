/* SPDX-License-Identifier: MIT */
/*
 * The job API of include/bulkhead/job.h as the worker implements it: what a job function
 * (a builtin, a plugin's, the exec: runner) may call. These functions are exported from
 * bulkhead-worker (children/meson.build) for plugins; everything they need is in the job
 * context (job-context.h) and the named locks (locks.c), never in the pool or the kinds.
 *
 * bulkhead_job_arg() is a short scan of the spec's pairs (split once, when the spec was
 * built) and allocates nothing. PROGRESS is rate-limited per job (at most one frame per
 * JOB_PROGRESS_INTERVAL_USEC, except the one that reaches 1.0), so a job may call it in a
 * tight loop: a call that sends nothing costs a clock read. A job holds named locks across
 * its own calls only.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/units.h"
#include "job-context.h"
#include "locks.h"

#define JOB_PROGRESS_INTERVAL_USEC 100000u /* PROGRESS frames of one job: at most this often */

const char *bulkhead_job_id(struct bulkhead_job *job)
{
	if (job->id_str[0] == '\0')
		snprintf(job->id_str, sizeof(job->id_str), "%" PRIu64, job->id);
	return job->id_str;
}

const char *bulkhead_job_arg(struct bulkhead_job *job, const char *key)
{
	const struct job_spec *s = job->spec;
	const char *found = NULL;

	/* The job's own input comes first: an "input" in args is the group's default. */
	if (job->input && strcmp(key, "input") == 0)
		return job->input;
	/* The last occurrence wins, as in a config file. */
	for (unsigned i = 0; i < s->n_args; i++)
		if (strcmp(s->args[i].key, key) == 0)
			found = s->args[i].value;
	return found;
}

int bulkhead_lock(struct bulkhead_job *job, const char *name)
{
	pthread_mutex_t *m;
	int r;

	r = locks_get(name, &m);
	if (r < 0)
		return r;
	return -pthread_mutex_lock(m);
}

int bulkhead_unlock(struct bulkhead_job *job, const char *name)
{
	pthread_mutex_t *m;
	int r;

	r = locks_get(name, &m);
	if (r < 0)
		return r;
	return -pthread_mutex_unlock(m);
}

void bulkhead_job_result(struct bulkhead_job *job, const char *fmt, ...)
{
	char buf[BH_RESULT_MAX + 1];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > BH_RESULT_MAX) {
		n = BH_RESULT_MAX;
		/* Cut at a character boundary: drop a UTF-8 sequence the cut split. */
		for (int i = n; i > 0 && i > n - 4; i--) {
			unsigned char c = (unsigned char)buf[i - 1];

			if ((c & 0xc0) == 0xc0) { /* a lead byte: its sequence was cut */
				n = i - 1;
				break;
			}
			if ((c & 0x80) == 0) /* ASCII: nothing cut */
				break;
		}
	}
	for (int i = 0; i < n; i++) {
		unsigned char c = (unsigned char)buf[i];

		job->result[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	job->result_len = (uint16_t)n;
	job->has_result = true;
}

int bulkhead_job_cancelled(struct bulkhead_job *job)
{
	return job_context_cancel_requested(job) || job_context_stopping();
}

void bulkhead_job_progress(struct bulkhead_job *job, double fraction)
{
	uint8_t buf[sizeof(struct bh_frame_header) + 16];
	uint32_t permille;
	usec_t now;
	size_t n;

	if (!(fraction > 0)) /* NaN too */
		fraction = 0;
	if (fraction > 1)
		fraction = 1;
	permille = (uint32_t)(fraction * BH_PROGRESS_MAX + 0.5);
	if (permille == job->progress_sent)
		return;
	now = now_usec();
	if (permille < BH_PROGRESS_MAX && job->progress_sent != UINT32_MAX &&
	    now - job->progress_at < JOB_PROGRESS_INTERVAL_USEC)
		return;
	job->progress_sent = permille;
	job->progress_at = now;
	n = bh_encode_progress(buf, sizeof(buf), job->id, permille);
	if (n > 0)
		(void)job_context_send(buf, n);
}

/*
 * The line to the master too, which keeps it with the job (`bulkhead logs`): at most
 * BH_LOG_LINES_MAX a run, then one line that says the rest were dropped.
 */
static void job_send_log(struct bulkhead_job *job, int level, const char *msg)
{
	uint8_t buf[sizeof(struct bh_frame_header) + 16 + BH_LOG_MAX];
	size_t len = strlen(msg), n;

	if (job->id == 0 || job_context_socket() < 0 || job->log_lines > BH_LOG_LINES_MAX)
		return;
	if (job->log_lines++ == BH_LOG_LINES_MAX) {
		msg = "(more lines of this run: not kept, 200 a run at most)";
		level = BULKHEAD_LOG_WARNING;
		len = strlen(msg);
	}
	if (len > BH_LOG_MAX)
		len = BH_LOG_MAX;
	n = bh_encode_log(buf, sizeof(buf), job->id, level, msg, len);
	if (n > 0)
		(void)job_context_send(buf, n);
}

void bulkhead_job_log(struct bulkhead_job *job, int level, const char *fmt, ...)
{
	char job_field[32], msg[1600];
	const char *fields[] = { job_field, job_context_log_pool(), job_context_log_worker(),
				 NULL };
	va_list ap;

	if (level < BULKHEAD_LOG_ERR)
		level = BULKHEAD_LOG_ERR;
	if (level > BULKHEAD_LOG_DEBUG)
		level = BULKHEAD_LOG_DEBUG;
	if (level > log_get_max_level())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(job_field, sizeof(job_field), "JOB=%s", bulkhead_job_id(job));
	log_fields(level, fields, "job %s: %s", bulkhead_job_id(job), msg);
	job_send_log(job, level, msg);
}
