/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the control socket's request parser (daemon/control-request.c).
 * Build and run: see fuzz/README.md.
 */
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "daemon/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the fast path takes (control_parse_flat()), json-c's tokener gives alike. */
static void check_flat(const char *line, size_t size)
{
	json_object *flat = control_parse_flat(line, size), *ref;
	struct json_tokener *tok;

	if (!flat)
		return;
	tok = json_tokener_new();
	ref = json_tokener_parse_ex(tok, line, (int)size);
	if (!ref || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != size || !json_object_equal(flat, ref) ||
	    strcmp(json_object_to_json_string_ext(flat, JSON_C_TO_STRING_PLAIN),
		   json_object_to_json_string_ext(ref, JSON_C_TO_STRING_PLAIN)) != 0)
		__builtin_trap();
	json_object_put(ref);
	json_object_put(flat);
	json_tokener_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_object *req = NULL;
	const char *error = NULL;

	if (size <= CONTROL_REQUEST_MAX)
		check_flat((const char *)data, size);

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
