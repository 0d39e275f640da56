/* deadmount.c — see deadmount.h. Only a mount that answers ENOTCONN and
 * that /proc/self/mountinfo lists at exactly that path as primefs's
 * (type fuse.primefs, or type fuse with source primefs) is touched. */
#include "deadmount.h"

#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *o = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* Whether mountinfo lists a primefs mount at abs. */
static bool primefs_mount_at(const char *abs)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	bool found = false;
	char *line = NULL;
	size_t cap = 0;
	while (!found && getline(&line, &cap, f) > 0) {
		/* id parent dev root MOUNTPOINT opts... - TYPE SOURCE sopts */
		char *save, *mp = NULL;
		char *tok = strtok_r(line, " \n", &save);
		for (int i = 0; tok && i < 4; i++)
			mp = tok = strtok_r(NULL, " \n", &save);
		if (!tok)
			continue;
		while ((tok = strtok_r(NULL, " \n", &save)) && strcmp(tok, "-"))
			;
		char *type = tok ? strtok_r(NULL, " \n", &save) : NULL;
		char *src = type ? strtok_r(NULL, " \n", &save) : NULL;
		if (!src)
			continue;
		unescape(mp);
		unescape(src);
		found = !strcmp(mp, abs) &&
			(!strcmp(type, "fuse.primefs") ||
			 (!strcmp(type, "fuse") && !strcmp(src, "primefs")));
	}
	free(line);
	fclose(f);
	return found;
}

/* The absolute path of p without touching p itself (a dead mount cannot
 * be resolved): its parent's real path and its own name. */
static char *absolute(const char *p)
{
	char *copy = xstrdup(p);
	size_t n = strlen(copy);
	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	char *slash = strrchr(copy, '/');
	const char *name = slash ? slash + 1 : copy;
	const char *parent = slash ? (slash == copy ? "/" : copy) : ".";
	if (slash)
		*slash = '\0';
	char real[PATH_MAX];
	char *r = NULL;
	if (realpath(parent, real)) {
		struct buf b;
		buf_init(&b);
		buf_printf(&b, "%s%s%s", real, strcmp(real, "/") ? "/" : "",
			   name);
		r = buf_steal(&b);
	}
	free(copy);
	return r;
}

static int run_fusermount(const char *abs)
{
	char *argv[] = {"fusermount3", "-u", "-z", (char *)abs, NULL};
	pid_t pid;
	int rc = posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ);
	if (rc)
		return -rc;
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EPERM;
}

static int clear_one(const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0 || errno != ENOTCONN)
		return 0;
	char *abs = absolute(path);
	if (!abs)
		return -errno;
	int rc = 0;
	if (!primefs_mount_at(abs)) {
		rc = -ENOTCONN; /* not ours: left to its owner */
		goto out;
	}
	if (geteuid() == 0)
		rc = umount2(abs, MNT_DETACH) ? -errno : 0;
	else
		rc = run_fusermount(abs);
	if (rc)
		fprintf(stderr,
			"primefs: %s is the dead mount of a primefs that was "
			"killed, and unmounting it failed (%s): run "
			"fusermount3 -u -z %s\n",
			abs, strerror(-rc), abs);
	else
		fprintf(stderr,
			"primefs: %s was the dead mount of a primefs that was "
			"killed: unmounted it\n",
			abs);
out:
	free(abs);
	return rc ? rc : 1;
}

int deadmount_clear(const char *path)
{
	/* Mounts stacked by several crashes come off one at a time. */
	int rc = 0;
	for (int i = 0; path && i < 8; i++) {
		int r = clear_one(path);
		if (r <= 0)
			return r < 0 ? r : rc;
		rc = 1;
	}
	return rc;
}
