/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/cmdline.c: splitting exec command lines (blanks, both quotes,
 * backslashes, empty words, every error) and placeholder substitution ({input} {id} {name}
 * {arg:KEY}, {{ and }}, bad syntax, missing values).
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/cmdline.h"

/* Splits s and checks it gives exactly the words given (NULL-terminated). */
static void split_ok(const char *s, ...)
{
	char **argv = (char **)1, err[256] = "x";
	size_t argc = 99, i = 0;
	const char *want;
	va_list ap;
	int r;

	r = cmdline_split(s, &argv, &argc, err, sizeof(err));
	ck_assert_msg(r == 0, "split [%s]: %d %s", s, r, err);
	ck_assert_str_eq(err, "");
	va_start(ap, s);
	while ((want = va_arg(ap, const char *))) {
		ck_assert_msg(i < argc, "split [%s]: only %zu words", s, argc);
		ck_assert_msg(strcmp(argv[i], want) == 0, "split [%s]: word %zu is [%s], not [%s]",
			      s, i, argv[i], want);
		i++;
	}
	va_end(ap);
	ck_assert_msg(i == argc, "split [%s]: %zu words, expected %zu", s, argc, i);
	ck_assert_ptr_null(argv[argc]);
	free(argv);
}

static void split_err(const char *s, const char *reason)
{
	char **argv = (char **)1, err[256] = "";
	size_t argc = 99;
	int r;

	r = cmdline_split(s, &argv, &argc, err, sizeof(err));
	ck_assert_msg(r == -EINVAL, "split [%s]: %d, expected -EINVAL", s, r);
	ck_assert_ptr_null(argv);
	ck_assert_uint_eq(argc, 0);
	ck_assert_msg(strstr(err, reason), "split [%s]: reason [%s], expected [%s]", s, err,
		      reason);
}

START_TEST(test_split_plain)
{
	split_ok("gzip", "gzip", NULL);
	split_ok("gzip -t {input}", "gzip", "-t", "{input}", NULL);
	split_ok("  a \t b\n c  ", "a", "b", "c", NULL);
	split_ok("/usr/bin/env FOO=1 sh", "/usr/bin/env", "FOO=1", "sh", NULL);
	/* Nothing is expanded. */
	split_ok("echo $HOME ~ *.c `id` $(id)", "echo", "$HOME", "~", "*.c", "`id`", "$(id)", NULL);
}
END_TEST

START_TEST(test_split_quotes)
{
	split_ok("sh -c 'echo a  b; exit 3'", "sh", "-c", "echo a  b; exit 3", NULL);
	split_ok("echo \"a  b\" c", "echo", "a  b", "c", NULL);
	/* Quotes join parts of one word. */
	split_ok("a'b c'd", "ab cd", NULL);
	split_ok("x\"y\"'z'w", "xyzw", NULL);
	/* Empty words. */
	split_ok("a '' b \"\"", "a", "", "b", "", NULL);
	split_ok("''", "", NULL);
	/* Each quote is literal inside the other. */
	split_ok("\"it's\" 'say \"hi\"'", "it's", "say \"hi\"", NULL);
	/* Nothing special inside single quotes, not even backslash. */
	split_ok("'a\\b' '\\'", "a\\b", "\\", NULL);
	/* Braces are just characters to the splitter. */
	split_ok("cp {input} '{arg:dir}/x y'", "cp", "{input}", "{arg:dir}/x y", NULL);
}
END_TEST

START_TEST(test_split_backslash)
{
	split_ok("a\\ b c", "a b", "c", NULL);
	split_ok("\\'x\\'", "'x'", NULL);
	split_ok("\\\\", "\\", NULL);
	split_ok("\\a", "a", NULL);
	/* In double quotes, only \" \\ \$ \` are escapes; other backslashes stay. */
	split_ok("\"a\\\"b\" \"c\\\\d\" \"\\$x\" \"\\`\" \"\\n\"", "a\"b", "c\\d", "$x", "`", "\\n",
		 NULL);
	/* A backslash-newline outside quotes is a literal newline in the word. */
	split_ok("a\\\nb", "a\nb", NULL);
}
END_TEST

START_TEST(test_split_errors)
{
	split_err("", "no command");
	split_err("   \t ", "no command");
	split_err("echo 'abc", "unterminated ' quote");
	split_err("echo \"abc", "unterminated \" quote");
	split_err("echo \"a\\\"", "unterminated \" quote");
	split_err("echo abc\\", "trailing backslash");
	split_err("'", "unterminated");
}
END_TEST

START_TEST(test_split_many)
{
	char *s = malloc(5 * 5000 + 1), **argv, err[128];
	size_t argc;

	ck_assert_ptr_nonnull(s);
	s[0] = '\0';
	for (int i = 0; i < 4096; i++)
		strcat(s, "a ");
	ck_assert_int_eq(cmdline_split(s, &argv, &argc, err, sizeof(err)), 0);
	ck_assert_uint_eq(argc, 4096);
	free(argv);
	strcat(s, "b");
	ck_assert_int_eq(cmdline_split(s, &argv, &argc, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "too many words"));
	free(s);
}
END_TEST

/* A lookup over a fixed table; "missing" and unknown keys give NULL. */
static const char *lookup(void *ud, const char *name)
{
	static const char *const table[][2] = {
		{ "input", "/data/in put.txt" },
		{ "id", "42" },
		{ "name", "verify" },
		{ "arg:level", "9" },
		{ "arg:a.b-c_d", "x" },
		{ "arg:empty", "" },
	};

	ck_assert_ptr_eq(ud, (void *)lookup);
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i][0], name) == 0)
			return table[i][1];
	return NULL;
}

static void expand_ok(const char *word, const char *want)
{
	char *out = (char *)1, err[256] = "x";
	int r;

	r = cmdline_expand(word, lookup, (void *)lookup, &out, err, sizeof(err));
	ck_assert_msg(r == 0, "expand [%s]: %d %s", word, r, err);
	ck_assert_str_eq(err, "");
	ck_assert_str_eq(out, want);
	free(out);
}

static void expand_err(const char *word, int want, const char *reason)
{
	char *out = (char *)1, err[256] = "";
	int r;

	r = cmdline_expand(word, lookup, (void *)lookup, &out, err, sizeof(err));
	ck_assert_msg(r == want, "expand [%s]: %d, expected %d", word, r, want);
	ck_assert_ptr_null(out);
	ck_assert_msg(strstr(err, reason), "expand [%s]: reason [%s], expected [%s]", word, err,
		      reason);
}

START_TEST(test_expand)
{
	expand_ok("", "");
	expand_ok("plain", "plain");
	expand_ok("{input}", "/data/in put.txt");
	expand_ok("--id={id}", "--id=42");
	expand_ok("{name}.{id}.out", "verify.42.out");
	expand_ok("-{arg:level}", "-9");
	expand_ok("{arg:a.b-c_d}", "x");
	expand_ok("[{arg:empty}]", "[]");
	expand_ok("{{input}}", "{input}");
	expand_ok("{{{id}}}", "{42}");
	expand_ok("a}}b{{c", "a}b{c");
	expand_ok("{input}{input}", "/data/in put.txt/data/in put.txt");
}
END_TEST

START_TEST(test_expand_errors)
{
	expand_err("{", -EINVAL, "unterminated placeholder");
	expand_err("a{input", -EINVAL, "unterminated placeholder");
	expand_err("}", -EINVAL, "lone '}'");
	expand_err("a}b", -EINVAL, "lone '}'");
	expand_err("{}", -EINVAL, "unknown placeholder {}");
	expand_err("{inputs}", -EINVAL, "unknown placeholder {inputs}");
	expand_err("{ input }", -EINVAL, "unknown placeholder");
	expand_err("{arg:}", -EINVAL, "KEY must be");
	expand_err("{arg:a b}", -EINVAL, "KEY must be");
	expand_err("{arg:a/b}", -EINVAL, "KEY must be");
	expand_err("{arg:"
		   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}",
		   -EINVAL, "too long");
	expand_err("{arg:missing}", -ENOENT, "no value for {arg:missing}");
	/* One pass: the first problem in the word is the one reported. */
	expand_err("{arg:missing}{bad}", -ENOENT, "{arg:missing}");
	expand_err("{bad}{arg:missing}", -EINVAL, "{bad}");
}
END_TEST

START_TEST(test_expand_syntax_only)
{
	char *out, err[128];

	ck_assert_int_eq(cmdline_expand("a{input}b{arg:x}{{", NULL, NULL, &out, err, sizeof(err)),
			 0);
	ck_assert_str_eq(out, "ab{");
	free(out);
	ck_assert_int_eq(cmdline_expand("{nope}", NULL, NULL, &out, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(out);
}
END_TEST

static Suite *cmdline_suite(void)
{
	Suite *s = suite_create("cmdline");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_split_plain);
	tcase_add_test(tc, test_split_quotes);
	tcase_add_test(tc, test_split_backslash);
	tcase_add_test(tc, test_split_errors);
	tcase_add_test(tc, test_split_many);
	tcase_add_test(tc, test_expand);
	tcase_add_test(tc, test_expand_errors);
	tcase_add_test(tc, test_expand_syntax_only);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cmdline_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
