/* SPDX-License-Identifier: MIT */
/*
 * The daemon's journald sink: when journald is there (JOURNAL_STREAM is set and its socket
 * exists), log lines go to the journal with their structured fields (POOL=, WORKER=, JOB=,
 * SIGNAL=, CAUSE=) through sd_journal_sendv(); otherwise nothing changes and lines go to
 * stderr ("<N>"-prefixed under systemd).
 */
#pragma once

#include <stdbool.h>

/* Installs the sink if journald is there. Returns true if it did. */
bool journal_log_init(const char *identifier);
