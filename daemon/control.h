/* SPDX-License-Identifier: MIT */
/*
 * The control socket of bulkheadd (docs/control-protocol.md): an AF_UNIX stream socket,
 * 0660 root:control_group, one JSON object per line each way, every connection checked with
 * SO_PEERCRED. Served from the master's event loop with non-blocking buffers and limits, so
 * no client can stall or crash the master.
 */
#pragma once

#include "daemon/master.h"

#define CONTROL_REQUEST_MAX (64u * 1024u)     /* one request line */
#define CONTROL_OUTPUT_MAX (4u * 1024u * 1024u) /* replies buffered for one client */
#define CONTROL_CLIENTS_MAX 256
#define CONTROL_DEADLINE (30 * USEC_PER_SEC)  /* half a request, or unread replies */
#define CONTROL_JOBS_LIMIT_MAX 100000

struct control;

/*
 * Binds `path` (a stale socket file there is replaced: the caller holds the single-instance
 * lock), gives it mode 0660 and the group `group` (a missing group is logged, the socket then
 * stays root-only), and serves it on the master's event loop. Returns 0 or -errno.
 */
int control_new(struct master *m, const char *path, const char *group, struct control **ret);
void control_free(struct control *c);
