/* SPDX-License-Identifier: MIT */
/*
 * The whole config: the raw sections that the reader and the handler collected become a new
 * struct config. Each section's values are converted by type (values.c); then what needs
 * more than one key, another section or the file system is checked here:
 *   - the implicit pool "main" when the file has no [pool] section at all;
 *   - a job's pool must exist (with "did you mean");
 *   - inputs, spool, output and count: which may be set together, relative paths made
 *     absolute (relative to the config's directory), the inputs glob expanded and sorted,
 *     the directories checked;
 *   - what run names (run-kinds.c);
 *   - the sum of every group's count against CONFIG_JOBS_MAX;
 *   - a pool's user and group: a name must exist on this host (a number need not).
 * Validation goes on after errors (also after syntax errors), so that one load reports as
 * much as it can; a key that had a bad value is skipped by the checks that depend on it.
 */
#include <errno.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "common/strutil.h"
#include "config/parser.h"

/* ---- paths relative to the config ---- */

/*
 * The absolute form of a relative path, relative to the config's directory (NULL: out of
 * memory). When the directory that holds the last component exists, it is canonical
 * (realpath: no "..", no symlinks); the last component stays as written.
 */
static char *absolute_path(const struct parser *p, const char *path)
{
	char *out, *slash, *real;

	while (path[0] == '.' && path[1] == '/')
		for (path += 2; *path == '/'; path++)
			;
	if (strcmp(path, ".") == 0 || *path == '\0')
		return strdup(p->dir);
	if (asprintf(&out, "%s%s%s", p->dir, strcmp(p->dir, "/") == 0 ? "" : "/", path) < 0)
		return NULL;
	slash = strrchr(out, '/');
	if (slash == out || slash[1] == '\0')
		return out;
	*slash = '\0';
	real = realpath(out, NULL);
	*slash = '/';
	if (real) {
		char *canon;

		if (asprintf(&canon, "%s%s", strcmp(real, "/") == 0 ? "" : real, slash) >= 0) {
			free(out);
			out = canon;
		}
		free(real);
	}
	return out;
}

/* Like absolute_path() for a glob pattern: the directory's own glob characters escaped. */
static char *absolute_glob(const struct parser *p, const char *pattern)
{
	size_t n = 0;
	char *out;

	if (pattern[0] == '/')
		return strdup(pattern);
	while (pattern[0] == '.' && pattern[1] == '/')
		for (pattern += 2; *pattern == '/'; pattern++)
			;
	out = malloc(2 * strlen(p->dir) + strlen(pattern) + 2);
	if (!out)
		return NULL;
	for (const char *d = p->dir; *d; d++) {
		if (strchr("*?[]{}\\", *d))
			out[n++] = '\\';
		out[n++] = *d;
	}
	if (n != 1)
		out[n++] = '/';
	strcpy(out + n, pattern);
	return out;
}

/* Replaces the string field *field by its absolute form; false when out of memory. */
bool config_make_absolute(struct parser *p, char **field, bool glob)
{
	char *abs;

	if (!*field || !**field || (*field)[0] == '/')
		return true;
	abs = glob ? absolute_glob(p, *field) : absolute_path(p, *field);
	if (!abs) {
		p->oom = true;
		return false;
	}
	free(*field);
	*field = abs;
	return true;
}

/* ---- job groups: inputs, spool, output ---- */

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* inputs = GLOB: expands it into g->input_paths, regular files only, sorted. */
static void expand_inputs(struct parser *p, const struct raw_section *s, struct group_config *g)
{
	unsigned max = (unsigned)config_keys[CONFIG_KEY_JOB_count].max;
	const char *written = s->values[CONFIG_KEY_JOB_inputs].value;
	glob_t gl = { 0 };
	char err[512];
	size_t n = 0;
	int r;

	r = glob(g->inputs, GLOB_NOSORT | GLOB_BRACE, NULL, &gl);
	if (r == GLOB_NOMATCH) {
		str_printf(err, sizeof(err), "no file matches %s", g->inputs);
		config_value_error(p, s, CONFIG_KEY_JOB_inputs, written, err);
		globfree(&gl);
		return;
	}
	if (r == GLOB_NOSPACE) {
		p->oom = true;
		globfree(&gl);
		return;
	}
	if (r != 0) {
		str_printf(err, sizeof(err), "cannot read a directory: %s", strerror(errno));
		config_value_error(p, s, CONFIG_KEY_JOB_inputs, written, err);
		globfree(&gl);
		return;
	}
	g->input_paths = calloc(gl.gl_pathc + 1, sizeof(char *));
	if (!g->input_paths) {
		p->oom = true;
		globfree(&gl);
		return;
	}
	for (size_t i = 0; i < gl.gl_pathc; i++) {
		struct stat st;

		if (stat(gl.gl_pathv[i], &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		g->input_paths[n] = strdup(gl.gl_pathv[i]);
		if (!g->input_paths[n]) {
			p->oom = true;
			break;
		}
		n++;
	}
	globfree(&gl);
	g->n_inputs = (unsigned)n;
	if (p->oom)
		return;
	if (n == 0) {
		str_printf(err, sizeof(err),
			   "no regular file matches %s (only directories or other files do)",
			   g->inputs);
		config_value_error(p, s, CONFIG_KEY_JOB_inputs, written, err);
		return;
	}
	if (n > max) {
		str_printf(err, sizeof(err), "%zu files match, at most %u", n, max);
		config_value_error(p, s, CONFIG_KEY_JOB_inputs, written, err);
		return;
	}
	qsort(g->input_paths, n, sizeof(char *), compare_strings);
	g->count = (unsigned)n;
}

/* A DIR key (spool, output): made absolute; the directory must exist. */
static bool check_dir(struct parser *p, const struct raw_section *s, int key, char **field)
{
	struct stat st;
	char err[512];

	if (!config_make_absolute(p, field, false))
		return false;
	if (stat(*field, &st) < 0) {
		str_printf(err, sizeof(err), "%s: %s", *field, strerror(errno));
		config_value_error(p, s, key, s->values[key].value, err);
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		str_printf(err, sizeof(err), "%s: not a directory", *field);
		config_value_error(p, s, key, s->values[key].value, err);
		return false;
	}
	return true;
}

/* ---- a pool's user and group ---- */

/* Why getpwnam()/getgrnam() found nothing: errno 0, ENOENT, ESRCH, EBADF, EPERM mean "none". */
static const char *lookup_error(int e, const char *none)
{
	return e == 0 || e == ENOENT || e == ESRCH || e == EBADF || e == EPERM ? none : strerror(e);
}

/* A uid or gid written as a number: 0..2^32-2 (-1 means "none" to the kernel). */
static bool parse_id(const char *text, uint32_t *ret)
{
	char *end;
	unsigned long long v;

	if (*text < '0' || *text > '9')
		return false;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || *end || v >= UINT32_MAX)
		return false;
	*ret = (uint32_t)v;
	return true;
}

/*
 * pc->user and pc->group into pc->uid and pc->gid: a name looked up (it must exist here), a
 * number taken as is. The group defaults to the user's primary group (for a uid with no
 * account: the number itself); with neither set, both stay -1 and the program decides.
 */
static void check_identity(struct parser *p, const struct raw_section *s, struct pool_config *pc,
			   const bool bad[_CONFIG_KEY_MAX])
{
	uint32_t id;

	pc->uid = (uid_t)-1;
	pc->gid = (gid_t)-1;
	if (!bad[CONFIG_KEY_POOL_user] && pc->user && *pc->user) {
		struct passwd *pw = NULL;

		errno = 0;
		if (parse_id(pc->user, &id)) {
			pc->uid = (uid_t)id;
			pw = getpwuid(pc->uid);
			pc->gid = pw ? pw->pw_gid : (gid_t)id;
		} else if ((pw = getpwnam(pc->user))) {
			pc->uid = pw->pw_uid;
			pc->gid = pw->pw_gid;
		} else {
			config_value_error(p, s, CONFIG_KEY_POOL_user, pc->user,
					   lookup_error(errno, "no such user on this host"));
		}
	}
	if (!bad[CONFIG_KEY_POOL_group] && pc->group && *pc->group) {
		struct group *gr;

		errno = 0;
		if (parse_id(pc->group, &id))
			pc->gid = (gid_t)id;
		else if ((gr = getgrnam(pc->group)))
			pc->gid = gr->gr_gid;
		else
			config_value_error(p, s, CONFIG_KEY_POOL_group, pc->group,
					   lookup_error(errno, "no such group on this host"));
	}
}

/* ---- [supervisor] metrics_listen ---- */

int config_parse_listen(const char *text, struct sockaddr_storage *ret, unsigned *ret_len)
{
	const char *colon = strrchr(text, ':');
	char host[64];
	uint32_t port;
	size_t n;

	if (!colon || !parse_id(colon + 1, &port) || port > 65535)
		return -EINVAL;
	n = (size_t)(colon - text);
	memset(ret, 0, sizeof(*ret));
	if (n >= 2 && text[0] == '[' && text[n - 1] == ']' && n - 2 < sizeof(host)) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ret;

		memcpy(host, text + 1, n - 2);
		host[n - 2] = '\0';
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -EINVAL;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*ret_len = sizeof(*a);
		return 0;
	}
	if (n == 0 || n >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, n);
	host[n] = '\0';
	{
		struct sockaddr_in *a = (struct sockaddr_in *)ret;

		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -EINVAL;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		*ret_len = sizeof(*a);
	}
	return 0;
}

static void check_metrics_listen(struct parser *p, const struct raw_section *s,
				 const struct supervisor_config *sc, const bool bad[_CONFIG_KEY_MAX])
{
	struct sockaddr_storage ss;
	unsigned len;

	if (bad[CONFIG_KEY_SUPERVISOR_metrics_listen] || !sc->metrics_listen ||
	    !*sc->metrics_listen || config_parse_listen(sc->metrics_listen, &ss, &len) == 0)
		return;
	config_value_error(p, s, CONFIG_KEY_SUPERVISOR_metrics_listen, sc->metrics_listen,
			   "expected ADDRESS:PORT, an IPv4 address or an IPv6 one in brackets and a "
			   "port 0..65535 (127.0.0.1:9464, [::1]:9464)");
}

/* A key that cannot be set together with another one: the error is on `key`'s line. */
static void conflict_error(struct parser *p, const struct raw_section *s, int key, int other,
			   const char *why)
{
	char err[256];

	str_printf(err, sizeof(err), "cannot be set together with %s (%s)", config_keys[other].name,
		   why);
	config_value_error(p, s, key, s->values[key].value, err);
}

/* inputs, spool, output and count: how many jobs, and where their files are. */
static void check_files(struct parser *p, const struct raw_section *s, struct group_config *g,
			const bool bad[_CONFIG_KEY_MAX], bool kind_known)
{
	bool count_set = s->values[CONFIG_KEY_JOB_count].value != NULL;
	bool has_inputs = !bad[CONFIG_KEY_JOB_inputs] && g->inputs && *g->inputs;
	bool has_spool = !bad[CONFIG_KEY_JOB_spool] && g->spool && *g->spool;

	if (has_spool) {
		if (count_set)
			conflict_error(p, s, CONFIG_KEY_JOB_count, CONFIG_KEY_JOB_spool,
				       "a spool makes one job per file");
		if (has_inputs)
			conflict_error(p, s, CONFIG_KEY_JOB_inputs, CONFIG_KEY_JOB_spool,
				       "choose one");
		if (check_dir(p, s, CONFIG_KEY_JOB_spool, &g->spool))
			g->count = 0;
	} else if (has_inputs) {
		if (count_set)
			conflict_error(p, s, CONFIG_KEY_JOB_count, CONFIG_KEY_JOB_inputs,
				       "count is the number of matching files");
		if (config_make_absolute(p, &g->inputs, true))
			expand_inputs(p, s, g);
	}

	if (!bad[CONFIG_KEY_JOB_output] && g->output && *g->output) {
		if (kind_known && g->kind != JOB_KIND_EXEC)
			config_value_error(p, s, CONFIG_KEY_JOB_output, g->output,
					   "output is only for exec jobs (run = exec:...)");
		else
			check_dir(p, s, CONFIG_KEY_JOB_output, &g->output);
	}
}

/*
 * The exec settings: set on a builtin or plugin group, an error (they apply to a command's
 * process; a job thread shares its worker's); working_directory must exist, like output.
 */
static void check_exec_settings(struct parser *p, const struct raw_section *s,
				struct group_config *g, const bool bad[_CONFIG_KEY_MAX],
				bool kind_known)
{
	static const int keys[] = { CONFIG_KEY_JOB_environment, CONFIG_KEY_JOB_working_directory,
				    CONFIG_KEY_JOB_success_exit_status, CONFIG_KEY_JOB_nice };
	uint8_t dflt[EXIT_SET_BYTES] = { 1 };
	bool set[] = { g->environment && *g->environment,
		       g->working_directory && *g->working_directory,
		       memcmp(g->success_exit_status, dflt, EXIT_SET_BYTES) != 0,
		       g->nice != EXEC_NICE_INHERIT };
	char err[256];

	/* What check-config prints for them (the defaults) loads again. */
	for (size_t i = 0; kind_known && g->kind != JOB_KIND_EXEC && i < 4; i++) {
		if (!set[i] || bad[keys[i]])
			continue;
		str_printf(err, sizeof(err),
			   "%s is only for exec jobs (run = exec:...): a %s job shares its "
			   "worker's process with the worker's other jobs",
			   config_keys[keys[i]].name,
			   g->kind == JOB_KIND_BUILTIN ? "builtin" : "plugin");
		config_value_error(p, s, keys[i], s->values[keys[i]].value, err);
	}
	if (!bad[CONFIG_KEY_JOB_working_directory] && g->working_directory &&
	    *g->working_directory && (!kind_known || g->kind == JOB_KIND_EXEC))
		check_dir(p, s, CONFIG_KEY_JOB_working_directory, &g->working_directory);
}

/* A job group: its pool, what it runs, its files. */
static void check_job(struct parser *p, const struct raw_section *s, struct config *c,
		      struct group_config *g, const bool bad[_CONFIG_KEY_MAX])
{
	const char *hint, *names[CONFIG_POOLS_MAX + 1];
	const struct raw_value *pool = &s->values[CONFIG_KEY_JOB_pool];
	const char *pool_name = pool->value ? pool->value : config_keys[CONFIG_KEY_JOB_pool].def;
	char err[512];
	bool run_ok;
	int i;

	g->run_line =
		s->values[CONFIG_KEY_JOB_run].value ? s->values[CONFIG_KEY_JOB_run].line : s->line;

	i = config_find_pool(c, pool_name);
	if (i >= 0) {
		g->pool = (unsigned)i;
	} else {
		for (unsigned j = 0; j < c->n_pools; j++)
			names[j] = c->pools[j].name;
		names[c->n_pools] = NULL;
		hint = str_did_you_mean(pool_name, names);
		if (hint)
			str_printf(err, sizeof(err), "no such pool (did you mean '%s'?)", hint);
		else
			str_printf(err, sizeof(err), "no such pool");
		config_value_error(p, s, CONFIG_KEY_JOB_pool, pool_name, err);
	}

	run_ok = config_run_kind(p, s, g, bad);
	check_files(p, s, g, bad, run_ok);
	check_exec_settings(p, s, g, bad, run_ok);
	if (run_ok)
		config_check_run(p, s, g, bad);
	/* A spool's files are on one host; a shared store's jobs go to any node. */
	if (g->spool && *g->spool && c->supervisor.store &&
	    strncmp(c->supervisor.store, "postgresql:", 11) == 0)
		config_value_error(p, s, CONFIG_KEY_JOB_spool, s->values[CONFIG_KEY_JOB_spool].value,
				   "a spool is on one host: not with store = postgresql: "
				   "(submit its files with bulkhead submit --input)");
	/* A re-queued job goes back to the shared queue: any node may claim it at once. */
	if (g->retry_delay_max > 0 && c->supervisor.store &&
	    strncmp(c->supervisor.store, "postgresql:", 11) == 0)
		config_value_error(p, s, CONFIG_KEY_JOB_retry_delay,
				   s->values[CONFIG_KEY_JOB_retry_delay].value,
				   "not with store = postgresql: yet (a job re-queued there goes "
				   "back to the shared queue, where any node may claim it at once)");
}

/*
 * Adds the group's jobs to c->total_jobs (each input file is a job; a spool group has
 * count 0) and reports the group that goes over CONFIG_JOBS_MAX, on its inputs or count.
 */
static void count_jobs(struct parser *p, const struct raw_section *s, struct config *c,
		       const struct group_config *g)
{
	bool was_ok = c->total_jobs <= CONFIG_JOBS_MAX;
	char label[CONFIG_NAME_MAX * 2 + 64], shown[CONFIG_SHOW_VALUE_MAX + 8];
	const struct raw_value *v;

	c->total_jobs += g->count;
	if (!was_ok || c->total_jobs <= CONFIG_JOBS_MAX)
		return;
	config_section_label(s, label, sizeof(label));
	if (g->n_inputs > 0) {
		v = &s->values[CONFIG_KEY_JOB_inputs];
		config_error(p, v->line,
			     "%s inputs = %s: too many jobs in all (%u files make %llu jobs, at "
			     "most %d)",
			     label, config_show_value(v->value, shown, sizeof(shown)), g->n_inputs,
			     (unsigned long long)c->total_jobs, CONFIG_JOBS_MAX);
		return;
	}
	v = &s->values[CONFIG_KEY_JOB_count];
	config_error(p, v->value ? v->line : s->line,
		     "%s count = %u: too many jobs in all (%llu, at most %d)", label, g->count,
		     (unsigned long long)c->total_jobs, CONFIG_JOBS_MAX);
}

void config_validate(struct parser *p, struct config *c)
{
	const struct raw_section *sup = NULL;
	bool bad[_CONFIG_KEY_MAX];
	unsigned np = 0, ng = 0;

	for (unsigned i = 0; i < p->n_sections; i++)
		if (p->sections[i].kind == CONFIG_SECTION_SUPERVISOR)
			sup = &p->sections[i];
	config_convert_section(p, sup, CONFIG_SECTION_SUPERVISOR, &c->supervisor, bad);
	check_metrics_listen(p, sup, &c->supervisor, bad);

	c->n_pools = p->n_pools > 0 ? p->n_pools : 1;
	c->pools = calloc(c->n_pools, sizeof(*c->pools));
	c->groups = calloc(p->n_groups > 0 ? p->n_groups : 1, sizeof(*c->groups));
	if (!c->pools || !c->groups) {
		p->oom = true;
		return;
	}
	if (p->n_pools == 0) {
		/* No [pool] at all: one implicit pool "main" with every default. */
		str_printf(c->pools[0].name, sizeof(c->pools[0].name), "main");
		c->pools[0].line = 0;
		config_convert_section(p, NULL, CONFIG_SECTION_POOL, &c->pools[0], bad);
		check_identity(p, NULL, &c->pools[0], bad);
	}
	for (unsigned i = 0; i < p->n_sections; i++) {
		const struct raw_section *s = &p->sections[i];
		struct pool_config *pc;

		if (s->kind != CONFIG_SECTION_POOL)
			continue;
		pc = &c->pools[np++];
		memcpy(pc->name, s->name, sizeof(pc->name));
		pc->line = s->line;
		config_convert_section(p, s, CONFIG_SECTION_POOL, pc, bad);
		check_identity(p, s, pc, bad);
	}

	for (unsigned i = 0; i < p->n_sections; i++) {
		const struct raw_section *s = &p->sections[i];
		struct group_config *g;

		if (s->kind != CONFIG_SECTION_JOB)
			continue;
		g = &c->groups[ng++];
		c->n_groups = ng;
		memcpy(g->name, s->name, sizeof(g->name));
		g->line = s->line;
		config_convert_section(p, s, CONFIG_SECTION_JOB, g, bad);
		check_job(p, s, c, g, bad);
		if (!bad[CONFIG_KEY_JOB_count])
			count_jobs(p, s, c, g);
	}
}
