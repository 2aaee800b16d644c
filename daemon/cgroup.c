/* SPDX-License-Identifier: MIT */
/*
 * Per-worker cgroups in a delegated cgroup v2 subtree (cgroup.h). Everything here is a plain
 * file write in the cgroup file system; nothing blocks. Without a delegated subtree (cgroup
 * v1, a hybrid host whose memory controller is v1, a unit without Delegate=yes, a master not
 * under systemd) nothing is made and memory_max falls back to RLIMIT_AS, said once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/cgroup.h"

struct cgroup_tree {
	char *dir; /* the master's cgroup, C */
	int fd; /* O_DIRECTORY on C */
	bool memory, pids;
	char **slots; /* names made under C, to remove at the end */
	unsigned n_slots;
};

/* "0::/PATH" of /proc/self/cgroup: PATH (malloc'd), or NULL (no cgroup v2 membership). */
static char *pick_v2_path(char *line)
{
	if (strncmp(line, "0::", 3) != 0)
		return NULL;
	line[strcspn(line, "\n")] = '\0';
	return strdup(line + 3);
}

/* A /proc/self/mountinfo line of the cgroup2 file system: its mount point (malloc'd). */
static char *pick_cgroup2_mount(char *line)
{
	char point[4096], *sep = strstr(line, " - ");

	if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0 ||
	    sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1)
		return NULL;
	return strdup(point);
}

/* The first non-NULL pick() of the lines of path, or NULL. */
static char *scan_lines(const char *path, char *(*pick)(char *line))
{
	char *line = NULL, *found = NULL;
	size_t size = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return NULL;
	while (!found && getline(&line, &size, f) > 0)
		found = pick(line);
	free(line);
	fclose(f);
	return found;
}

static bool delegated(const char *dir)
{
	char v[8];
	ssize_t n = getxattr(dir, "trusted.delegate", v, sizeof(v));

	if (n <= 0)
		n = getxattr(dir, "user.delegate", v, sizeof(v));
	return n == 1 && v[0] == '1';
}

static int write_at(int dirfd, const char *file, const char *text)
{
	int fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int read_at(int dirfd, const char *file, char *buf, size_t size)
{
	int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* Whether the word w is in the space-separated list s. */
static bool has_word(const char *s, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = strstr(s, w); p; p = strstr(p + 1, w))
		if ((p == s || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
			return true;
	return false;
}

struct cgroup_tree *cgroup_tree_open(bool limits_wanted)
{
	char *path = scan_lines("/proc/self/cgroup", pick_v2_path);
	char *mnt = scan_lines("/proc/self/mountinfo", pick_cgroup2_mount), ctl[256];
	struct cgroup_tree *t = NULL, *ret = NULL;
	int r = 0, sfd = -1;

	if (!path || !mnt) {
		if (limits_wanted)
			log_info(
				"no cgroup v2 hierarchy: memory_max is an RLIMIT_AS limit, tasks_max "
				"is not enforced");
		goto out;
	}
	t = calloc(1, sizeof(*t));
	if (t)
		t->fd = -1;
	if (!t || asprintf(&t->dir, "%s%s", mnt, strcmp(path, "/") == 0 ? "" : path) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if (!delegated(t->dir)) {
		if (limits_wanted)
			log_info(
				"cgroup %s is not delegated to bulkheadd (Delegate=yes): memory_max "
				"is an RLIMIT_AS limit, tasks_max is not enforced",
				t->dir);
		goto out;
	}
	t->fd = open(t->dir, O_DIRECTORY | O_PATH | O_CLOEXEC);
	/* Out of C into C/supervisor, so that C may give controllers to its children. */
	if (t->fd < 0 || (mkdirat(t->fd, "supervisor", 0755) < 0 && errno != EEXIST)) {
		r = -errno;
		goto out;
	}
	sfd = openat(t->fd, "supervisor", O_DIRECTORY | O_PATH | O_CLOEXEC);
	r = sfd < 0 ? -errno : write_at(sfd, "cgroup.procs", "0");
	if (r < 0)
		goto out;
	if (read_at(t->fd, "cgroup.controllers", ctl, sizeof(ctl)) == 0) {
		t->memory = has_word(ctl, "memory") &&
			    write_at(t->fd, "cgroup.subtree_control", "+memory") == 0;
		t->pids = has_word(ctl, "pids") &&
			  write_at(t->fd, "cgroup.subtree_control", "+pids") == 0;
	}
	log_info("workers in cgroups of their own under %s (memory.max: %s, pids.max: %s)", t->dir,
		 t->memory ? "yes" : "no, RLIMIT_AS instead", t->pids ? "yes" : "no, not enforced");
	ret = t;
	t = NULL;
out:
	if (r < 0)
		log_warning("cgroup %s: cannot set up per-worker cgroups: %s; memory_max is an "
			    "RLIMIT_AS limit",
			    t && t->dir ? t->dir : "?", strerror(-r));
	if (sfd >= 0)
		close(sfd);
	if (t) {
		if (t->fd >= 0)
			close(t->fd);
		free(t->dir);
		free(t);
	}
	free(path);
	free(mnt);
	return ret;
}

bool cgroup_tree_memory(const struct cgroup_tree *t)
{
	return t && t->memory;
}

void cgroup_tree_free(struct cgroup_tree *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->n_slots; i++) {
		int fd = openat(t->fd, t->slots[i], O_DIRECTORY | O_PATH | O_CLOEXEC);

		if (fd >= 0) {
			(void)cgroup_slot_kill(fd);
			close(fd);
		}
		/* Empty only once the kernel has reaped what it killed: best effort. */
		if (unlinkat(t->fd, t->slots[i], AT_REMOVEDIR) < 0 && errno != ENOENT)
			log_debug("cgroup %s/%s: not removed: %s", t->dir, t->slots[i],
				  strerror(errno));
		free(t->slots[i]);
	}
	free(t->slots);
	close(t->fd);
	free(t->dir);
	free(t);
}

int cgroup_slot_prepare(struct cgroup_tree *t, const char *pool, unsigned slot, uint64_t memory_max,
			unsigned tasks_max)
{
	char name[96], v[32];
	int fd, r = 0;

	snprintf(name, sizeof(name), "w.%s.%u", pool, slot);
	if (mkdirat(t->fd, name, 0755) == 0) {
		char **s = realloc(t->slots, (t->n_slots + 1) * sizeof(*s));

		if (s) {
			t->slots = s;
			if ((s[t->n_slots] = strdup(name)))
				t->n_slots++;
		}
	} else if (errno != EEXIST) {
		return -errno;
	}
	fd = openat(t->fd, name, O_DIRECTORY | O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (t->memory) {
		if (memory_max == UINT64_MAX)
			snprintf(v, sizeof(v), "max");
		else
			snprintf(v, sizeof(v), "%llu", (unsigned long long)memory_max);
		r = write_at(fd, "memory.max", v);
		/* No swap to hide in: the limit is what the jobs really use. */
		if (r == 0 && memory_max != UINT64_MAX)
			(void)write_at(fd, "memory.swap.max", "0");
	}
	if (r == 0 && t->pids) {
		if (tasks_max == 0)
			snprintf(v, sizeof(v), "max");
		else
			snprintf(v, sizeof(v), "%u", tasks_max);
		r = write_at(fd, "pids.max", v);
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int cgroup_slot_attach(int fd, pid_t pid)
{
	char v[16];

	snprintf(v, sizeof(v), "%d", (int)pid);
	return write_at(fd, "cgroup.procs", v);
}

uint64_t cgroup_slot_oom_kills(int fd)
{
	char buf[512], *p;

	if (read_at(fd, "memory.events", buf, sizeof(buf)) < 0)
		return 0;
	p = strstr(buf, "oom_kill ");
	return p ? strtoull(p + 9, NULL, 10) : 0;
}

int cgroup_slot_kill(int fd)
{
	return write_at(fd, "cgroup.kill", "1");
}
