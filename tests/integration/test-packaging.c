/* SPDX-License-Identifier: MIT */
/*
 * Integration test of what `meson install` puts on a system: installs the build tree
 * ($BULKHEAD_BUILD_ROOT) into a temp DESTDIR once, in main(), then checks the result:
 *   - every file is where packaging/meson.build and man/meson.build say ($BULKHEAD_*_PATH);
 *   - `systemd-analyze verify --man=no --root=D --recursive-errors=no` on the installed unit
 *     prints nothing at all (it exits 0 even on unknown keys: any output is a failure);
 *   - `systemd-analyze security --offline=true` rates the unit at most EXPOSURE_MAX;
 *   - systemd-sysusers and systemd-tmpfiles accept their files;
 *   - the installed default config passes `bulkhead check-config`, and its control_group is
 *     the group sysusers.d creates;
 *   - bulkhead.conf(5) documents every key of config_keys[], and the man pages (bulkhead-job(3)
 *     included) format without groff warnings (when groff is there).
 * The job API's header and bulkhead-job.pc are tested by test-plugin-build.c, which builds
 * the example plugins against them.
 *
 * A DESTDIR is not a whole system: commands the unit runs that the OS provides, not us
 * (none now; ExecReload= was /bin/kill), are copied from the host into D so that verify can
 * find them.
 * Commands under our prefix (ExecStart=.../bulkheadd) must come from the install itself.
 *
 * Without systemd-analyze (Debian package systemd) the test is skipped: exit 77.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/keys.h"
#include "cmdutil.h"
#include "testutil.h"

#define EXPOSURE_MAX 1.1 /* issue 15: at or below 1.1 (off root, with Delegate=yes: 1.1) */
#define SKIP_STATUS 77

static char *destdir; /* set by main() before the tests fork */


/* D + an install path (absolute, as meson was configured). malloc'd, or NULL. */
static char *destdir_path(const char *path)
{
	char *p;

	return asprintf(&p, "%s%s", destdir, path) < 0 ? NULL : p;
}

/* The same, in a test. */
static char *in_destdir(const char *path)
{
	char *p = destdir_path(path);

	ck_assert_ptr_nonnull(p);
	return p;
}

static char *installed(const char *env_name)
{
	return in_destdir(cmd_env_required(env_name));
}

static char *tool(const char *name)
{
	char *p = cmd_find_in_path(name);

	ck_assert_msg(p, "%s is not in PATH", name);
	return p;
}

/* Installs the build tree into destdir. Returns 0, or 1 after saying why. */
static int install_build_tree(void)
{
	const char *build = cmd_env_or_null("BULKHEAD_BUILD_ROOT");
	char *meson = cmd_env_or_null("BULKHEAD_MESON") ? strdup(getenv("BULKHEAD_MESON"))
						    : cmd_find_in_path("meson");
	struct cmd c = { 0 };
	int r;

	if (!build || !meson) {
		fprintf(stderr, "test-packaging: %s\n",
			!build ? "BULKHEAD_BUILD_ROOT is not set (run this test with meson test)"
			       : "meson is not in PATH");
		free(meson);
		return 1;
	}
	{
		const char *argv[] = { meson,	"install",	"-C",	   build, "--destdir",
				       destdir, "--no-rebuild", "--quiet", NULL };

		r = cmd_run(argv, NULL, &c);
	}
	free(meson);
	if (r < 0) {
		fprintf(stderr, "test-packaging: meson install: %s\n", strerror(-r));
		return 1;
	}
	if (!cmd_exited_0(&c)) {
		fprintf(stderr,
			"test-packaging: meson install -C %s --destdir %s --no-rebuild: %s\n"
			"--- stdout\n%s--- stderr\n%s\n(is the build tree built? ninja -C %s)\n",
			build, destdir, tu_describe_status(c.status), c.out, c.err, build);
		cmd_free(&c);
		return 1;
	}
	cmd_free(&c);
	return 0;
}

/* Copies the host's file src to dst (creating dst's directories), mode 0755. */
static int copy_executable(const char *src, const char *dst)
{
	char *data = NULL, *dir = strdup(dst);
	size_t len = 0;
	int in, out, r = 0;
	ssize_t n;

	if (!dir)
		return -ENOMEM;
	for (char *s = strchr(dir + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			r = -errno;
		*s = '/';
	}
	free(dir);
	if (r < 0)
		return r;
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	for (;;) {
		char chunk[65536];

		n = read(in, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		cmd_append(&data, &len, chunk, (size_t)n);
	}
	close(in);
	if (n < 0 || !data) {
		free(data);
		return n < 0 ? -errno : -ENOMEM;
	}
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (out < 0 || write(out, data, len) != (ssize_t)len)
		r = -errno;
	if (out >= 0)
		close(out);
	free(data);
	return r;
}

/*
 * For each Exec*= command of the installed unit that is missing in D: outside our prefix
 * it is the OS's (e.g. /bin/kill), so the host's copy goes into D; under our prefix it must
 * come from the install, so it is left missing (and verify reports it).
 */
static int provide_os_commands(void)
{
	const char *prefix = cmd_env_or_null("BULKHEAD_PREFIX");
	const char *unit_path = cmd_env_or_null("BULKHEAD_UNIT_PATH");
	char *unit, *text, *save = NULL;
	int r = 0;

	if (!unit_path || !prefix)
		return 0; /* the tests say what is missing */
	unit = destdir_path(unit_path);
	text = unit ? tu_read_file(unit) : NULL;
	free(unit);
	if (!text)
		return 0; /* test_installed_files reports the missing unit */
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char path[4096], *eq, *dst;
		size_t plen;

		if (strncmp(line, "Exec", 4) != 0 || !(eq = strchr(line, '=')))
			continue;
		eq++;
		eq += strspn(eq, "-@:+!"); /* ExecStart= prefixes */
		snprintf(path, sizeof(path), "%.*s", (int)strcspn(eq, " \t"), eq);
		plen = strlen(prefix);
		if (path[0] != '/' || (strncmp(path, prefix, plen) == 0 && path[plen] == '/'))
			continue;
		dst = destdir_path(path);
		if (dst && access(dst, X_OK) < 0 && access(path, X_OK) == 0) {
			r = copy_executable(path, dst);
			if (r < 0)
				fprintf(stderr, "test-packaging: cannot copy %s into %s: %s\n",
					path, destdir, strerror(-r));
			else
				printf("test-packaging: %s is the OS's, not ours: copied from the "
				       "host into DESTDIR for systemd-analyze verify\n",
				       path);
		}
		free(dst);
	}
	free(text);
	return r;
}

START_TEST(test_installed_files)
{
	static const char *const files[] = {
		"BULKHEAD_UNIT_PATH",	"BULKHEAD_SYSUSERS_PATH", "BULKHEAD_TMPFILES_PATH",
		"BULKHEAD_CONFIG_PATH", "BULKHEAD_SBIN_PATH",
	};
	static const char *const pages[] = { "man1/bulkhead.1", "man5/bulkhead.conf.5",
					     "man8/bulkheadd.8", "man3/bulkhead-job.3" };
	char *unit, *text, *want;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *p = installed(files[i]);

		ck_assert_msg(access(p, R_OK) == 0, "%s (%s) was not installed: %s", files[i], p,
			      strerror(errno));
		free(p);
	}
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		char *p;

		ck_assert_int_ge(asprintf(&p, "%s%s/%s", destdir, cmd_env_required("BULKHEAD_MAN_DIR"),
					  pages[i]),
				 0);
		ck_assert_msg(access(p, R_OK) == 0, "man page %s was not installed: %s", p,
			      strerror(errno));
		free(p);
	}

	/* The unit starts the installed daemon, not something else. */
	unit = installed("BULKHEAD_UNIT_PATH");
	text = tu_read_file(unit);
	ck_assert_ptr_nonnull(text);
	ck_assert_int_ge(asprintf(&want, "\nExecStart=%s\n", cmd_env_required("BULKHEAD_SBIN_PATH")),
			 0);
	ck_assert_msg(strstr(text, want), "%s has no line '%s'", unit, want + 1);
	ck_assert_msg(!strstr(text, "@sbindir@"), "%s: @sbindir@ was not configured", unit);
	free(want);
	free(text);
	free(unit);
}
END_TEST

START_TEST(test_unit_verify)
{
	char *analyze = tool("systemd-analyze"), *root, *unit = installed("BULKHEAD_UNIT_PATH");
	struct cmd c = { 0 };
	int r;

	ck_assert_int_ge(asprintf(&root, "--root=%s", destdir), 0);
	{
		const char *argv[] = { analyze, "verify", "--man=no", root, "--recursive-errors=no",
				       unit,	NULL };
		const char *env[] = { "SYSTEMD_COLORS=0", "SYSTEMD_LOG_COLOR=0", NULL };

		r = cmd_run(argv, env, &c);
	}
	ck_assert_msg(r == 0, "systemd-analyze verify: %s", strerror(-r));
	printf("systemd-analyze verify --man=no %s --recursive-errors=no %s: %s, %zu bytes "
	       "of output\n",
	       root, unit, tu_describe_status(c.status), strlen(c.out) + strlen(c.err));
	fflush(stdout);
	ck_assert_msg(cmd_exited_0(&c) && !*c.out && !*c.err,
		      "systemd-analyze verify must print nothing; it %s and printed:\n"
		      "--- stdout\n%s--- stderr\n%s",
		      tu_describe_status(c.status), c.out, c.err);
	cmd_free(&c);
	free(root);
	free(unit);
	free(analyze);
}
END_TEST

START_TEST(test_unit_security)
{
	char *analyze = tool("systemd-analyze"), *root, *unit = installed("BULKHEAD_UNIT_PATH");
	const char *line;
	struct cmd c = { 0 };
	double exposure;
	int r;

	ck_assert_int_ge(asprintf(&root, "--root=%s", destdir), 0);
	{
		const char *argv[] = { analyze, "security", "--offline=true", "--no-pager", root,
				       unit,	NULL };
		const char *env[] = { "SYSTEMD_COLORS=0", NULL };

		r = cmd_run(argv, env, &c);
	}
	ck_assert_msg(r == 0, "systemd-analyze security: %s", strerror(-r));
	ck_assert_msg(cmd_exited_0(&c), "systemd-analyze security %s:\n%s%s",
		      tu_describe_status(c.status), c.out, c.err);
	line = strstr(c.out, "Overall exposure level for ");
	ck_assert_msg(line, "no 'Overall exposure level' in:\n%s%s", c.out, c.err);
	line = strstr(line, ": ");
	ck_assert_msg(line && sscanf(line + 2, "%lf", &exposure) == 1,
		      "cannot read the exposure level in:\n%s", c.out);
	printf("bulkhead.service: overall exposure level %.1f (goal <= %.1f, fails above %.1f)\n",
	       exposure, EXPOSURE_MAX, EXPOSURE_MAX);
	fflush(stdout);
	ck_assert_msg(exposure <= 5.0, "exposure %.1f is above 5.0:\n%s", exposure, c.out);
	ck_assert_msg(exposure <= EXPOSURE_MAX, "exposure %.1f regressed above %.1f:\n%s", exposure,
		      EXPOSURE_MAX, c.out);
	cmd_free(&c);
	free(root);
	free(unit);
	free(analyze);
}
END_TEST

/* The group that the installed sysusers.d file creates ("g NAME ..."); malloc'd. */
static char *sysusers_group(void)
{
	char *path = installed("BULKHEAD_SYSUSERS_PATH"), *text = tu_read_file(path);
	char *save = NULL, *group = NULL;

	ck_assert_ptr_nonnull(text);
	for (char *line = strtok_r(text, "\n", &save); line && !group;
	     line = strtok_r(NULL, "\n", &save)) {
		char type[8], name[64];

		if (sscanf(line, " %7s %63s", type, name) == 2 && strcmp(type, "g") == 0)
			group = strdup(name);
	}
	ck_assert_msg(group, "%s creates no group", path);
	free(text);
	free(path);
	return group;
}

START_TEST(test_sysusers_tmpfiles)
{
	char *sysusers = cmd_find_in_path("systemd-sysusers"),
	     *tmpfiles = cmd_find_in_path("systemd-tmpfiles");
	char *root, *file, *group = sysusers_group(), *want;
	struct cmd c = { 0 };

	ck_assert_int_ge(asprintf(&root, "--root=%s", destdir), 0);
	if (sysusers) {
		const char *argv[] = { sysusers, root, "--dry-run", NULL, NULL };

		file = installed("BULKHEAD_SYSUSERS_PATH");
		argv[3] = file;
		ck_assert_int_eq(cmd_run(argv, NULL, &c), 0);
		ck_assert_int_ge(asprintf(&want, "Creating group '%s'", group), 0);
		ck_assert_msg(cmd_exited_0(&c) && (strstr(c.out, want) || strstr(c.err, want)),
			      "systemd-sysusers --dry-run %s: %s\n%s%s", file,
			      tu_describe_status(c.status), c.out, c.err);
		free(want);
		/* The unit's User= (the master) and the jobs' default [pool] user. */
		for (const char *const *u = (const char *const[]){ "bulkheadd", "bulkhead", NULL };
		     *u; u++) {
			ck_assert_int_ge(asprintf(&want, "Creating user '%s'", *u), 0);
			ck_assert_msg(strstr(c.out, want) || strstr(c.err, want),
				      "systemd-sysusers --dry-run %s creates no user %s:\n%s%s",
				      file, *u, c.out, c.err);
			free(want);
		}
		cmd_free(&c);
		free(file);
	} else {
		printf("systemd-sysusers not found: the sysusers.d file is not parsed\n");
	}
	if (tmpfiles) {
		const char *argv[] = { tmpfiles, root, "--create", NULL, NULL };

		file = installed("BULKHEAD_TMPFILES_PATH");
		argv[3] = file;
		ck_assert_int_eq(cmd_run(argv, NULL, &c), 0);
		ck_assert_msg(cmd_exited_0(&c) && !*c.out && !*c.err,
			      "systemd-tmpfiles --create %s: %s\n%s%s", file,
			      tu_describe_status(c.status), c.out, c.err);
		cmd_free(&c);
		free(file);
	} else {
		printf("systemd-tmpfiles not found: the tmpfiles.d file is not parsed\n");
	}
	free(group);
	free(root);
	free(sysusers);
	free(tmpfiles);
}
END_TEST

START_TEST(test_default_config)
{
	char *config = installed("BULKHEAD_CONFIG_PATH"), *group = sysusers_group(), *want;
	const char *argv[] = { cmd_env_required("BULKHEAD_BIN"), "check-config", config, NULL };
	struct cmd c = { 0 };

	ck_assert_int_eq(cmd_run(argv, NULL, &c), 0);
	ck_assert_msg(cmd_exited_0(&c), "bulkhead check-config %s: %s\n%s", config,
		      tu_describe_status(c.status), c.err);
	/* The socket's group is the one the package creates. */
	ck_assert_int_ge(asprintf(&want, "\ncontrol_group = %s\n", group), 0);
	ck_assert_msg(strstr(c.out, want), "the default config's control_group is not '%s':\n%s",
		      group, c.out);
	free(want);
	cmd_free(&c);
	free(group);
	free(config);
}
END_TEST

START_TEST(test_man_pages)
{
	static const char *const pages[] = { "man1/bulkhead.1", "man5/bulkhead.conf.5",
					     "man8/bulkheadd.8", "man3/bulkhead-job.3" };
	char *groff = cmd_find_in_path("groff"), *conf_page, *text;

	/* bulkhead.conf(5) is generated from config_keys[]: every key has an entry. */
	ck_assert_int_ge(asprintf(&conf_page, "%s%s/man5/bulkhead.conf.5", destdir,
				  cmd_env_required("BULKHEAD_MAN_DIR")),
			 0);
	text = tu_read_file(conf_page);
	ck_assert_msg(text, "cannot read %s", conf_page);
	for (int i = 0; i < _CONFIG_KEY_MAX; i++) {
		char *entry;

		ck_assert_int_ge(asprintf(&entry, ".TP\n\\fB%s =\\fR", config_keys[i].name), 0);
		ck_assert_msg(strstr(text, entry), "%s has no entry for [%s] %s", conf_page,
			      config_section_names[config_keys[i].section], config_keys[i].name);
		free(entry);
	}
	free(text);
	free(conf_page);

	if (!groff) {
		printf("groff not found: the man pages are not formatted\n");
		return;
	}
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		char *page;
		struct cmd c = { 0 };

		ck_assert_int_ge(asprintf(&page, "%s%s/%s", destdir,
					  cmd_env_required("BULKHEAD_MAN_DIR"), pages[i]),
				 0);
		{
			const char *argv[] = { groff, "-man", "-Tutf8", "-ww", "-z", page, NULL };

			ck_assert_int_eq(cmd_run(argv, NULL, &c), 0);
		}
		ck_assert_msg(cmd_exited_0(&c) && !*c.err, "groff -man -ww %s: %s\n%s", page,
			      tu_describe_status(c.status), c.err);
		cmd_free(&c);
		free(page);
	}
	free(groff);
}
END_TEST

static Suite *packaging_suite(void)
{
	Suite *s = suite_create("packaging");
	TCase *tc = tcase_create("install");

	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_installed_files);
	tcase_add_test(tc, test_unit_verify);
	tcase_add_test(tc, test_unit_security);
	tcase_add_test(tc, test_sysusers_tmpfiles);
	tcase_add_test(tc, test_default_config);
	tcase_add_test(tc, test_man_pages);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	char *analyze = cmd_find_in_path("systemd-analyze");
	SRunner *sr;
	int failed, r;

	if (!analyze) {
		printf("SKIP: systemd-analyze is not in PATH (Debian package systemd; "
		       "scripts/install-deps installs it): cannot verify bulkhead.service\n");
		return SKIP_STATUS;
	}
	free(analyze);

	r = tu_mkdtemp(&destdir);
	if (r < 0) {
		fprintf(stderr, "test-packaging: cannot make a DESTDIR: %s\n", strerror(-r));
		return EXIT_FAILURE;
	}
	printf("test-packaging: installing into DESTDIR %s\n", destdir);
	fflush(stdout);
	if (install_build_tree() != 0 || provide_os_commands() < 0) {
		tu_rm_rf(destdir);
		return EXIT_FAILURE;
	}
	fflush(stdout);

	sr = srunner_create(packaging_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	tu_rm_rf(destdir);
	free(destdir);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
