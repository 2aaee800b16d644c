/* SPDX-License-Identifier: MIT */
/*
 * The control socket of bulkheadd (docs/control-protocol.md): an AF_UNIX stream socket,
 * 0660 root:control_group, one JSON object per line each way, every connection checked with
 * SO_PEERCRED. Served from the master's event loop with non-blocking buffers and limits, so
 * no client can stall or crash the master.
 */
#pragma once

#include <stddef.h>

#include "common/control-proto.h" /* the commands, CONTROL_REQUEST_MAX and the other limits */
#include "daemon/master.h"

/* The limits on clients: slots and deadlines atop control.c, buffers atop control-conn.c. */

struct control;
struct json_object;

/*
 * Parses one request line (without its '\n'): a JSON object with a string "command".
 * Returns 0 and the object in *ret_req (unknown commands included: they get an error reply
 * later), or a negative errno with a static reason in *ret_error. No side effects: this is
 * what the request fuzzer (fuzz/fuzz-request.c) drives.
 */
int control_parse_request(const char *line, size_t len, struct json_object **ret_req,
			  const char **ret_error);

/*
 * The parser's fast path (control_parse_request() tries it first): a flat object of strings
 * without escapes, integers and booleans, built directly. NULL for any other line (not an
 * error: json-c's tokener decides); what it returns is what the tokener would.
 */
struct json_object *control_parse_flat(const char *line, size_t len);

/* The request's "command" string, or NULL if it has none. */
const char *control_request_command(struct json_object *req);

/*
 * Whether a server answers on the socket `path`: 1 if so (a connection is accepted or
 * queued), 0 if nothing is there or the socket is stale (connection refused), -ENOTSOCK if
 * something else is there, or -errno.
 */
int control_probe(const char *path);

/*
 * Binds `path`, gives it mode 0660 and the group `group` (a missing group is logged, the
 * socket then stays root-only), and serves it on the master's event loop. A stale socket
 * there is replaced; one that answers (another daemon's, whatever its runtime directory) is
 * never touched: -EADDRINUSE. Returns 0 or -errno (-ENOTSOCK: something else is there).
 */
int control_new(struct master *m, const char *path, const char *group, struct control **ret);
void control_free(struct control *c);
