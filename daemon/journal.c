/* SPDX-License-Identifier: MIT */
/* journald sink for log_fields() (see journal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/journal.h"

#define JOURNAL_FIELDS_MAX 16 /* structured fields per line, besides MESSAGE etc. */

static const char *ident = "bulkheadd";

static void journal_sink(int level, const char *const *fields, const char *message)
{
	struct iovec iov[JOURNAL_FIELDS_MAX + 3];
	char msg[2048], prio[16], id[64];
	int n = 0;

	snprintf(msg, sizeof(msg), "MESSAGE=%s", message);
	snprintf(prio, sizeof(prio), "PRIORITY=%d", level);
	snprintf(id, sizeof(id), "SYSLOG_IDENTIFIER=%s", ident);
	iov[n++] = (struct iovec){ msg, strlen(msg) };
	iov[n++] = (struct iovec){ prio, strlen(prio) };
	iov[n++] = (struct iovec){ id, strlen(id) };
	for (int i = 0; fields && fields[i] && i < JOURNAL_FIELDS_MAX; i++)
		iov[n++] = (struct iovec){ (void *)fields[i], strlen(fields[i]) };
	if (sd_journal_sendv(iov, n) < 0) {
		/* journald went away: this line and the next ones go to stderr. */
		log_set_sink(NULL);
		dprintf(STDERR_FILENO, "<%d>%s\n", level, message);
	}
}

bool journal_log_init(const char *identifier)
{
	if (!getenv("JOURNAL_STREAM") || access("/run/systemd/journal/socket", W_OK) < 0)
		return false;
	ident = identifier;
	log_set_sink(journal_sink);
	return true;
}
