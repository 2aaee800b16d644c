/* SPDX-License-Identifier: MIT */
/*
 * The client end of the control socket (docs/control-protocol.md): connect, send one request
 * line, read one reply line, each against a deadline. Replies are read into a buffer owned
 * by the connection; a line that does not fit in CONTROL_CLIENT_REPLY_MAX is an error.
 */
#pragma once

#include <stdint.h>

#define CONTROL_CLIENT_SOCKET_DEFAULT "/run/bulkhead/control.sock"
#define CONTROL_CLIENT_REPLY_MAX (16u << 20) /* longest reply line accepted, '\n' excluded */
#define CONTROL_CLIENT_TIMEOUT_MS 15000 /* connect + request + reply, for one command */

struct control_client;

/*
 * The socket to use: `option` (--socket) if non-NULL, else $BULKHEAD_SOCKET, else
 * $RUNTIME_DIRECTORY/control.sock, else CONTROL_CLIENT_SOCKET_DEFAULT. Empty variables are unset.
 * A malloc'd string in *ret. Returns 0 or -ENOMEM.
 */
int control_client_socket_path(const char *option, char **ret);

/* Milliseconds on CLOCK_MONOTONIC, for deadlines. */
int64_t control_client_now_ms(void);

/*
 * Connects to the AF_UNIX stream socket at path before deadline (a control_client_now_ms() value).
 * Returns 0, -ENAMETOOLONG for a path that does not fit in sun_path, -ETIMEDOUT, or the
 * -errno of socket()/connect() (-ENOENT, -ECONNREFUSED, -EACCES, ...).
 */
int control_client_connect(const char *path, int64_t deadline, struct control_client **ret);

/* Closes the connection and frees it. NULL-safe. */
void control_client_free(struct control_client *c);

/* The socket (non-blocking, CLOEXEC), for a caller that polls it in its own loop. */
int control_client_fd(const struct control_client *c);

/*
 * Sends `request` (one JSON object, no newline in it) followed by '\n', before deadline.
 * Returns 0, -ETIMEDOUT, -EINVAL if request holds a newline, or -errno (-EPIPE when the
 * daemon closed the connection).
 */
int control_client_send(struct control_client *c, const char *request, int64_t deadline);

/*
 * Takes what the socket has without waiting. Returns 1 with the next reply line (malloc'd,
 * NUL-terminated, no '\n') in *ret, 0 if no complete line yet, -ECONNRESET at end of file
 * (the daemon closed the connection), -EMSGSIZE for a line longer than CONTROL_CLIENT_REPLY_MAX, or
 * -errno.
 */
int control_client_try_receive(struct control_client *c, char **ret);

/* As control_client_try_receive, waiting for a complete line until deadline (-ETIMEDOUT). */
int control_client_receive(struct control_client *c, int64_t deadline, char **ret);

/* Sends request and waits for its reply line: control_client_send + control_client_receive. */
int control_client_call(struct control_client *c, const char *request, int64_t deadline, char **ret);

/*
 * Text for an error of the functions above, for a message "PATH: TEXT": "no answer within
 * 15 s", "the daemon closed the connection", "reply larger than 16 MiB", else strerror().
 */
const char *control_client_strerror(int err);
