/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/control-request.c: the fast path for flat requests
 * (control_parse_flat()) against json-c's tokener, the reference. The fast path must take
 * the common requests, and whatever it takes must come out as the tokener makes it (same
 * types, same values); everything else it must leave to the tokener. Mutated requests
 * (a fixed seed) look for a line where the two differ.
 */
#include <check.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/control.h"
#include "xorshift.h"

/* What json-c alone makes of the line (as control_parse_request() did before): or NULL. */
static json_object *reference(const char *line, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *o = json_tokener_parse_ex(tok, line, (int)len);

	if (o && (json_tokener_get_error(tok) != json_tokener_success ||
		  json_tokener_get_parse_end(tok) != len)) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* The same object: types and values, and printed alike. */
static int same(json_object *a, json_object *b)
{
	const char *ta, *tb;

	if (!a || !b)
		return a == b;
	if (!json_object_equal(a, b))
		return 0;
	ta = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN);
	tb = json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN);
	return strcmp(ta, tb) == 0;
}

/* Whatever the fast path takes, the tokener gives alike; control_parse_request() agrees. */
static void check_line(const char *line, size_t len)
{
	json_object *flat = control_parse_flat(line, len), *ref = reference(line, len), *req;
	const char *error = NULL;
	int r = control_parse_request(line, len, &req, &error);

	if (flat && !same(flat, ref))
		ck_abort_msg("fast path and json-c differ on %.*s", (int)len, line);
	/* The whole parser: accepted exactly when json-c makes an object with a command. */
	if (r == 0)
		ck_assert_msg(same(req, ref), "%.*s", (int)len, line);
	else
		ck_assert_msg(!ref || !json_object_is_type(ref, json_type_object) ||
				      !control_request_command(ref),
			      "refused %.*s (%s)", (int)len, line, error);
	json_object_put(flat);
	json_object_put(ref);
	json_object_put(req);
}

static const char *const taken[] = {
	"{\"command\":\"submit\",\"pool\":\"main\",\"run\":\"builtin:noop\",\"count\":1}",
	"{\"command\":\"status\"}",
	"{\"command\":\"wait\",\"group\":\"noop@1\"}",
	" { \"command\" : \"jobs\" , \"limit\" : -20, \"newest\" : true, \"all\":false } ",
	"{\"command\":\"submit\",\"group\":\"g\",\"count\":999999999999999999}",
	"{\"command\":\"x\",\"zero\":0,\"neg\":-7,\"\":\"empty key\",\"s\":\"\"}",
	"{}",
	"{\"command\":1}",
	/* as many keys as it checks for doubles */
	"{\"command\":\"x\",\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,"
	"\"i\":1,\"j\":1,\"k\":1,\"l\":1,\"m\":1,\"n\":1,\"o\":1}",
};

START_TEST(test_flat_takes_common_requests)
{
	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
		json_object *o = control_parse_flat(taken[i], strlen(taken[i]));

		ck_assert_msg(o != NULL, "not taken: %s", taken[i]);
		json_object_put(o);
		check_line(taken[i], strlen(taken[i]));
	}
}
END_TEST

static const char *const declined[] = {
	"{\"command\":\"a\\\"b\"}", /* an escape */
	"{\"command\":\"caf\xc3\xa9\"}", /* non-ASCII */
	"{\"command\":\"submit\",\"args\":{\"us\":1}}", /* nesting */
	"{\"command\":\"submit\",\"inputs\":[\"/a\"]}",
	"{\"command\":\"x\",\"n\":1.5}",
	"{\"command\":\"x\",\"n\":1e3}",
	"{\"command\":\"x\",\"n\":-0}",
	"{\"command\":\"x\",\"n\":012}",
	"{\"command\":\"x\",\"n\":1234567890123456789}", /* 19 digits */
	"{\"command\":\"x\",\"n\":99999999999999999999999}",
	"{\"command\":\"x\",\"n\":null}",
	"{\"command\":\"x\",\"command\":\"y\"}", /* a key twice */
	"{\"command\":\"x\",\"a\":1,\"b\":2,\"a\":3}",
	/* more keys than it checks for doubles */
	"{\"command\":\"x\",\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,"
	"\"i\":1,\"j\":1,\"k\":1,\"l\":1,\"m\":1,\"n\":1,\"o\":1,\"p\":1}",
	"{\"command\":\t\"x\"}",
	"{\"command\":\"x\"} trailing",
	"{\"command\":\"x\"",
	"{\"command\":\"x\",}",
	"{\"command\" \"x\"}",
	"{\"command\":truex}",
	"{\"command\":\"x\"}}",
	"[\"command\"]",
	"",
	"{'command':'x'}",
};

START_TEST(test_flat_leaves_the_rest_to_json_c)
{
	for (size_t i = 0; i < sizeof(declined) / sizeof(declined[0]); i++) {
		json_object *o = control_parse_flat(declined[i], strlen(declined[i]));

		ck_assert_msg(o == NULL, "taken: %s", declined[i]);
		check_line(declined[i], strlen(declined[i]));
	}
}
END_TEST

/* A line with an embedded NUL byte, and bytes past the given length, are not read. */
START_TEST(test_flat_length_bounds)
{
	static const char line[] = "{\"command\":\"status\"}{\"command\":\"x\"}";
	static const char nul[] = "{\"command\":\"st\0tus\"}";
	json_object *o;

	check_line(line, 20);
	o = control_parse_flat(line, 20);
	ck_assert_ptr_nonnull(o);
	json_object_put(o);
	for (size_t n = 0; n < 20; n++)
		ck_assert_ptr_null(control_parse_flat(line, n));
	ck_assert_ptr_null(control_parse_flat(nul, sizeof(nul) - 1));
	check_line(nul, sizeof(nul) - 1);
}
END_TEST

START_TEST(test_flat_against_json_c_mutated)
{
	static const char alphabet[] = "{}[]\":, \t-0123456789.eEtruefalsn\\ux\xc3\x01";
	uint32_t seed = 0x13u;
	char buf[256];

	for (int round = 0; round < 200000; round++) {
		const char *base = taken[xorshift32(&seed) % (sizeof(taken) / sizeof(taken[0]))];
		size_t len = strlen(base);
		int edits = 1 + (int)(xorshift32(&seed) % 3);

		memcpy(buf, base, len);
		for (int e = 0; e < edits; e++) {
			size_t at = xorshift32(&seed) % (len + 1);
			char ch = alphabet[xorshift32(&seed) % (sizeof(alphabet) - 1)];

			switch (xorshift32(&seed) % 3) {
			case 0: /* replace */
				if (at < len)
					buf[at] = ch;
				break;
			case 1: /* insert */
				if (len + 1 < sizeof(buf)) {
					memmove(buf + at + 1, buf + at, len - at);
					buf[at] = ch;
					len++;
				}
				break;
			default: /* delete */
				if (at < len) {
					memmove(buf + at, buf + at + 1, len - at - 1);
					len--;
				}
			}
		}
		check_line(buf, len);
	}
}
END_TEST

static Suite *control_request_suite(void)
{
	Suite *s = suite_create("control-request");
	TCase *tc = tcase_create("flat");

	tcase_add_test(tc, test_flat_takes_common_requests);
	tcase_add_test(tc, test_flat_leaves_the_rest_to_json_c);
	tcase_add_test(tc, test_flat_length_bounds);
	tcase_add_test(tc, test_flat_against_json_c_mutated);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(control_request_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
