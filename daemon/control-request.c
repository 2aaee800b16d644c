/* SPDX-License-Identifier: MIT */
/*
 * Parsing one control request line (see control.h): JSON through json-c's tokener with an
 * explicit length (no NUL needed, trailing bytes refused), then the shape every request must
 * have. Pure: no I/O, no state, so fuzz/fuzz-request.c can drive it.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <string.h>

#include "daemon/control.h"

const char *control_request_command(json_object *req)
{
	json_object *v;

	if (!json_object_is_type(req, json_type_object) ||
	    !json_object_object_get_ex(req, "command", &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int control_parse_request(const char *line, size_t len, json_object **ret_req,
			  const char **ret_error)
{
	/* One tokener for every request (the loop is one thread): a new one is two
	 * allocations and a parse stack to clear per request. */
	static struct json_tokener *tok;
	json_object *req;

	*ret_req = NULL;
	if (len > CONTROL_REQUEST_MAX) {
		*ret_error = "request too long";
		return -EMSGSIZE;
	}
	if (tok)
		json_tokener_reset(tok);
	else
		tok = json_tokener_new();
	if (!tok) {
		*ret_error = "out of memory";
		return -ENOMEM;
	}
	req = json_tokener_parse_ex(tok, line, (int)len);
	if (!req || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		json_object_put(req);
		*ret_error = "not a JSON object on one line";
		return -EBADMSG;
	}
	if (!json_object_is_type(req, json_type_object)) {
		json_object_put(req);
		*ret_error = "a request is a JSON object";
		return -EINVAL;
	}
	if (!control_request_command(req)) {
		json_object_put(req);
		*ret_error = "a request needs \"command\": a string";
		return -EINVAL;
	}
	*ret_req = req;
	return 0;
}
