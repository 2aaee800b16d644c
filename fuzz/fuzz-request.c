/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the control socket's request parser (daemon/control-request.c).
 * Build and run: see fuzz/README.md.
 */
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_object *req = NULL;
	const char *error = NULL;

	if (control_parse_request((const char *)data, size, &req, &error) == 0) {
		/* Accepted requests are objects with a string command. */
		if (!control_request_command(req))
			__builtin_trap();
		json_object_put(req);
	} else if (!error || req) {
		__builtin_trap();
	}
	return 0;
}
