/* SPDX-License-Identifier: MIT */
/*
 * Parsing one control request line (see control.h): JSON through json-c's tokener with an
 * explicit length (no NUL needed, trailing bytes refused), then the shape every request must
 * have. Pure: no I/O, no state, so fuzz/fuzz-request.c can drive it.
 *
 * Most requests are flat ({"command":"submit","pool":"main","run":"builtin:noop","count":1}):
 * those are built directly (control_parse_flat()). The tokener cost the master more than the
 * rest of such a submit: a locale made and freed per parse (json-c 0.16), a state machine and
 * a print buffer per byte. What the fast path does not take goes to the tokener; what it
 * takes, the tokener would give alike (tests/unit/test-control-request.c compares the two).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "daemon/control.h"

#define FLAT_KEY_MAX 64
#define FLAT_KEYS_MAX 16 /* more: the tokener's */
#define FLAT_INT_DIGITS 18 /* within int64: the tokener makes an int of it as well */

static const char *flat_spaces(const char *p, const char *end)
{
	while (p < end && *p == ' ')
		p++;
	return p;
}

/* The string at p (its '"'): printable ASCII, no escape. Its text and length; p after it. */
static const char *flat_string(const char *p, const char *end, const char **ret, size_t *ret_len)
{
	const char *s;

	if (p >= end || *p != '"')
		return NULL;
	for (s = ++p; p < end && *p != '"'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f || *p == '\\')
			return NULL;
	if (p >= end)
		return NULL;
	*ret = s;
	*ret_len = (size_t)(p - s);
	return p + 1;
}

/* An integer (-?(0|[1-9][0-9]*), at most FLAT_INT_DIGITS digits, not -0), or a boolean. */
static const char *flat_scalar(const char *p, const char *end, json_object **ret)
{
	const char *d;
	int64_t v = 0;
	bool neg;

	*ret = NULL;
	if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
		*ret = json_object_new_boolean(1);
		return p + 4;
	}
	if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
		*ret = json_object_new_boolean(0);
		return p + 5;
	}
	neg = p < end && *p == '-';
	d = p + neg;
	for (p = d; p < end && *p >= '0' && *p <= '9'; p++)
		if (p - d < FLAT_INT_DIGITS)
			v = v * 10 + (*p - '0');
	if (p == d || p - d > FLAT_INT_DIGITS || (*d == '0' && (p - d > 1 || neg)))
		return NULL;
	if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
		return NULL;
	*ret = json_object_new_int64(neg ? -v : v);
	return p;
}

/* Whether the key k (n bytes) is one of the n_seen before (kept as spans of the line). */
static bool flat_seen(const char *const *seen, const size_t *seen_len, unsigned n_seen,
		      const char *k, size_t n)
{
	for (unsigned i = 0; i < n_seen; i++)
		if (seen_len[i] == n && memcmp(seen[i], k, n) == 0)
			return true;
	return false;
}

json_object *control_parse_flat(const char *line, size_t len)
{
	const char *p = flat_spaces(line, line + len), *end = line + len, *seen[FLAT_KEYS_MAX];
	size_t seen_len[FLAT_KEYS_MAX];
	unsigned n_seen = 0;
	json_object *o;

	if (p >= end || *p != '{')
		return NULL;
	o = json_object_new_object();
	p = flat_spaces(p + 1, end);
	if (o && p < end && *p == '}') {
		p++;
		goto done;
	}
	while (o) {
		char key[FLAT_KEY_MAX + 1];
		const char *k, *s;
		json_object *v;
		size_t n, n_s;

		p = flat_string(p, end, &k, &n);
		/* A key given twice: the tokener's to decide. Checked here, on a few short
		 * keys, so that json-c adds each without looking it up. */
		if (!p || n > FLAT_KEY_MAX || n_seen == FLAT_KEYS_MAX ||
		    flat_seen(seen, seen_len, n_seen, k, n))
			break;
		seen[n_seen] = k;
		seen_len[n_seen++] = n;
		memcpy(key, k, n);
		key[n] = '\0';
		p = flat_spaces(p, end);
		if (p >= end || *p != ':')
			break;
		p = flat_spaces(p + 1, end);
		if (p < end && *p == '"') {
			p = flat_string(p, end, &s, &n_s);
			v = p ? json_object_new_string_len(s, (int)n_s) : NULL;
		} else {
			p = flat_scalar(p, end, &v);
		}
		if (!p || !v ||
		    json_object_object_add_ex(o, key, v, JSON_C_OBJECT_ADD_KEY_IS_NEW) < 0) {
			json_object_put(v);
			break;
		}
		p = flat_spaces(p, end);
		if (p < end && *p == ',') {
			p = flat_spaces(p + 1, end);
			continue;
		}
		if (p < end && *p == '}') {
			p++;
			goto done;
		}
		break;
	}
	json_object_put(o);
	return NULL;
done:
	if (flat_spaces(p, end) == end)
		return o;
	json_object_put(o);
	return NULL;
}

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
	req = control_parse_flat(line, len);
	if (req)
		goto parsed;
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
parsed:
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
