/* SPDX-License-Identifier: MIT */
/*
 * Integration test of the public job API as a user gets it: installs the build tree
 * ($BULKHEAD_BUILD_ROOT) into a temp DESTDIR once, in main() (`meson install --tags
 * devel,man`: the header, bulkhead-job.pc and the man pages), then, outside the source tree:
 *   - the installed header is the source's include/bulkhead/job.h, bulkhead-job.pc gives
 *     only Cflags pointing at it (no Libs), and bulkhead-job(3) is installed;
 *   - examples/plugins/ (fragile.c, archive-verify.c, Makefile) copied into a temp directory
 *     builds with `make`, finding the header only through
 *     `PKG_CONFIG_PATH=D/.../pkgconfig PKG_CONFIG_SYSROOT_DIR=D pkg-config --cflags
 *     bulkhead-job`, with -Werror;
 *   - each result is a shared object that exports bulkhead_job_abi == BULKHEAD_JOB_ABI and
 *     its job function (dlopen with RTLD_LAZY: the bulkhead_* functions stay undefined until
 *     a worker loads it), and the real worker's `--probe` accepts it.
 * archive-verify is built only when libarchive's pkg-config file is there (Debian
 * libarchive-dev, from scripts/install-deps); otherwise that case says so and passes.
 *
 * Without pkg-config, make, cc or meson the test is skipped (exit 77) with the reason.
 */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "include/bulkhead/job.h"
#include "cmdutil.h"
#include "testutil.h"

#define SKIP_STATUS 77

static char *destdir; /* set by main() before the tests fork */
static char *pc_dir; /* D + the installed pkgconfig directory */


/* PKG_CONFIG_PATH and PKG_CONFIG_SYSROOT_DIR for the DESTDIR, and nothing else. */
static void pkg_env(char *path_var, size_t path_size, char *sysroot_var, size_t sysroot_size)
{
	snprintf(path_var, path_size, "PKG_CONFIG_PATH=%s", pc_dir);
	snprintf(sysroot_var, sysroot_size, "PKG_CONFIG_SYSROOT_DIR=%s", destdir);
}

/* `pkg-config ARG bulkhead-job` against the DESTDIR: its stdout, trimmed. */
static char *pkg_config(const char *arg)
{
	char *pkgconf = cmd_find_in_path("pkg-config"), path_var[4200], sysroot_var[4200];
	const char *argv[] = { pkgconf, arg, "bulkhead-job", NULL };
	const char *env[] = { path_var, sysroot_var, "PKG_CONFIG_LIBDIR=", NULL };
	struct cmd c = { 0 };
	size_t n;
	char *out;

	ck_assert_ptr_nonnull(pkgconf);
	pkg_env(path_var, sizeof(path_var), sysroot_var, sizeof(sysroot_var));
	ck_assert_int_eq(cmd_run(argv, env, &c), 0);
	ck_assert_msg(cmd_exited_0(&c), "pkg-config %s bulkhead-job: %s\n%s", arg,
		      tu_describe_status(c.status), c.err);
	out = c.out;
	c.out = NULL;
	cmd_free(&c);
	free(pkgconf);
	n = strlen(out);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
	return out;
}

START_TEST(test_installed_api)
{
	const char *src_root = cmd_env_required("BULKHEAD_SOURCE_ROOT");
	char *header, *src, *installed, *page, *cflags, *want;
	char *libs, *version;

	ck_assert_int_ge(asprintf(&header, "%s%s/bulkhead/job.h", destdir,
				  cmd_env_required("BULKHEAD_INCLUDE_DIR")),
			 0);
	ck_assert_int_ge(asprintf(&src, "%s/include/bulkhead/job.h", src_root), 0);
	installed = tu_read_file(header);
	ck_assert_msg(installed, "%s was not installed: %s", header, strerror(errno));
	{
		char *orig = tu_read_file(src);

		ck_assert_ptr_nonnull(orig);
		ck_assert_msg(strcmp(orig, installed) == 0, "%s differs from %s", header, src);
		free(orig);
	}

	/* Cflags point at the installed header, and there is nothing to link. */
	cflags = pkg_config("--cflags");
	ck_assert_int_ge(asprintf(&want, "-I%s%s", destdir, cmd_env_required("BULKHEAD_INCLUDE_DIR")),
			 0);
	ck_assert_msg(strcmp(cflags, want) == 0, "pkg-config --cflags: '%s', expected '%s'", cflags,
		      want);
	libs = pkg_config("--libs");
	ck_assert_msg(strcmp(libs, "") == 0, "pkg-config --libs: '%s', expected nothing", libs);
	version = pkg_config("--modversion");
	ck_assert_str_eq(version, BULKHEAD_VERSION);

	ck_assert_int_ge(asprintf(&page, "%s%s/man3/bulkhead-job.3", destdir,
				  cmd_env_required("BULKHEAD_MAN_DIR")),
			 0);
	ck_assert_msg(access(page, R_OK) == 0, "%s was not installed", page);

	free(page);
	free(version);
	free(libs);
	free(want);
	free(cflags);
	free(installed);
	free(src);
	free(header);
}
END_TEST

/*
 * Copies examples/plugins/ into a new temp directory and runs `make TARGET` there with only
 * the DESTDIR's pkg-config file to find bulkhead. Returns the directory (malloc'd).
 */
static char *build_out_of_tree(const char *target, struct cmd *ret)
{
	static const char *const files[] = { "Makefile", "fragile.c", "archive-verify.c" };
	const char *src_root = cmd_env_required("BULKHEAD_SOURCE_ROOT");
	char *make = cmd_find_in_path("make"), *dir, path_var[4200], sysroot_var[4200];
	const char *env[] = { path_var, sysroot_var, "CFLAGS=-O2 -g -Werror", "MAKEFLAGS=", NULL };

	ck_assert_ptr_nonnull(make);
	ck_assert_int_eq(tu_mkdtemp(&dir), 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *from, *to, *text;

		ck_assert_int_ge(asprintf(&from, "%s/examples/plugins/%s", src_root, files[i]), 0);
		ck_assert_int_ge(asprintf(&to, "%s/%s", dir, files[i]), 0);
		text = tu_read_file(from);
		ck_assert_msg(text, "cannot read %s", from);
		ck_assert_int_eq(tu_write_file(to, text), 0);
		free(text);
		free(to);
		free(from);
	}
	pkg_env(path_var, sizeof(path_var), sysroot_var, sizeof(sysroot_var));
	{
		const char *argv[] = { make, "-C", dir, target, NULL };

		ck_assert_int_eq(cmd_run(argv, env, ret), 0);
	}
	ck_assert_msg(cmd_exited_0(ret), "make -C %s %s: %s\n--- stdout\n%s--- stderr\n%s", dir, target,
		      tu_describe_status(ret->status), ret->out, ret->err);
	/* The compiler saw the DESTDIR's include directory, and not the source tree's. */
	ck_assert_msg(strstr(ret->out, destdir), "the build did not use -I%s...:\n%s", destdir,
		      ret->out);
	ck_assert_msg(!strstr(ret->out, src_root), "the build used the source tree:\n%s", ret->out);
	free(make);
	return dir;
}

/* so exports bulkhead_job_abi == BULKHEAD_JOB_ABI and fn; the worker's probe takes it. */
static void check_plugin(const char *so, const char *fn)
{
	const unsigned *abi;
	struct cmd c = { 0 };
	char *run;
	void *h;

	/* RTLD_LAZY: the bulkhead_* functions are the worker's, undefined here. */
	h = dlopen(so, RTLD_LAZY | RTLD_LOCAL);
	ck_assert_msg(h, "dlopen %s: %s", so, dlerror());
	abi = dlsym(h, "bulkhead_job_abi");
	ck_assert_msg(abi, "%s: no bulkhead_job_abi: %s", so, dlerror());
	ck_assert_uint_eq(*abi, BULKHEAD_JOB_ABI);
	ck_assert_msg(dlsym(h, fn), "%s: no %s: %s", so, fn, dlerror());
	dlclose(h);

	ck_assert_int_ge(asprintf(&run, "plugin:%s:%s", so, fn), 0);
	{
		const char *argv[] = { cmd_env_required("BULKHEAD_WORKER"), "--probe", run, NULL };

		ck_assert_int_eq(cmd_run(argv, NULL, &c), 0);
	}
	ck_assert_msg(cmd_exited_0(&c), "bulkhead-worker --probe %s: %s\n%s%s", run,
		      tu_describe_status(c.status), c.out, c.err);
	cmd_free(&c);
	free(run);
}

START_TEST(test_build_fragile)
{
	struct cmd c = { 0 };
	char *dir = build_out_of_tree("fragile.so", &c), *so;

	ck_assert_int_ge(asprintf(&so, "%s/fragile.so", dir), 0);
	check_plugin(so, "fragile");
	cmd_free(&c);
	free(so);
	tu_rm_rf(dir);
	free(dir);
}
END_TEST

START_TEST(test_build_archive_verify)
{
	char *pkgconf = cmd_find_in_path("pkg-config");
	const char *argv[] = { pkgconf, "--exists", "libarchive", NULL };
	struct cmd c = { 0 };
	char *dir, *so;

	ck_assert_int_eq(cmd_run(argv, NULL, &c), 0);
	free(pkgconf);
	if (!cmd_exited_0(&c)) {
		printf("SKIP test_build_archive_verify: libarchive's pkg-config file is missing "
		       "(Debian libarchive-dev; scripts/install-deps installs it)\n");
		cmd_free(&c);
		return;
	}
	cmd_free(&c);
	dir = build_out_of_tree("archive-verify.so", &c);
	ck_assert_int_ge(asprintf(&so, "%s/archive-verify.so", dir), 0);
	check_plugin(so, "archive_verify");
	cmd_free(&c);
	free(so);
	tu_rm_rf(dir);
	free(dir);
}
END_TEST

/* Installs the header, the pkg-config file and the man pages into destdir. 0, or 1. */
static int install_devel(void)
{
	const char *build = cmd_env_or_null("BULKHEAD_BUILD_ROOT");
	char *meson = cmd_env_or_null("BULKHEAD_MESON") ? strdup(getenv("BULKHEAD_MESON"))
						    : cmd_find_in_path("meson");
	const char *argv[] = { meson,	       "install", "-C",	    build,
			       "--destdir",    destdir,	  "--tags", "devel,man",
			       "--no-rebuild", "--quiet", NULL };
	struct cmd c = { 0 };
	int r;

	r = cmd_run(argv, NULL, &c);
	free(meson);
	if (r < 0) {
		fprintf(stderr, "test-plugin-build: meson install: %s\n", strerror(-r));
		return 1;
	}
	if (!cmd_exited_0(&c)) {
		fprintf(stderr, "test-plugin-build: meson install -C %s --destdir %s: %s\n%s%s\n",
			build, destdir, tu_describe_status(c.status), c.out, c.err);
		cmd_free(&c);
		return 1;
	}
	cmd_free(&c);
	return 0;
}

static Suite *plugin_build_suite(void)
{
	Suite *s = suite_create("plugin-build");
	TCase *tc = tcase_create("out-of-tree");

	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_installed_api);
	tcase_add_test(tc, test_build_fragile);
	tcase_add_test(tc, test_build_archive_verify);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	static const char *const tools[] = { "pkg-config", "make", "cc" };
	SRunner *sr;
	int failed;

	for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
		char *p = cmd_find_in_path(tools[i]);

		if (!p) {
			printf("SKIP: %s is not in PATH: cannot build a plugin against the "
			       "installed header (scripts/install-deps installs it)\n",
			       tools[i]);
			return SKIP_STATUS;
		}
		free(p);
	}
	if (!cmd_env_or_null("BULKHEAD_BUILD_ROOT") || !cmd_env_or_null("BULKHEAD_PC_DIR") ||
	    (!cmd_env_or_null("BULKHEAD_MESON") && !cmd_find_in_path("meson"))) {
		printf("SKIP: run this test with meson test (BULKHEAD_BUILD_ROOT, "
		       "BULKHEAD_PC_DIR and meson are needed)\n");
		return SKIP_STATUS;
	}
	if (tu_mkdtemp(&destdir) < 0) {
		fprintf(stderr, "test-plugin-build: cannot make a DESTDIR: %s\n", strerror(errno));
		return EXIT_FAILURE;
	}
	if (asprintf(&pc_dir, "%s%s", destdir, getenv("BULKHEAD_PC_DIR")) < 0)
		return EXIT_FAILURE;
	printf("test-plugin-build: installing into DESTDIR %s\n", destdir);
	fflush(stdout);
	if (install_devel() != 0) {
		tu_rm_rf(destdir);
		return EXIT_FAILURE;
	}

	sr = srunner_create(plugin_build_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	tu_rm_rf(destdir);
	free(destdir);
	free(pc_dir);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
