/* holders.c — see holders.h. It reads /proc/PID/fd of every process:
 * readlink of a descriptor's link gives its path (the kernel's d_path, no
 * call into any filesystem, so none into this one while it answers). */
#include "holders.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool is_pid(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Whether link names a file called base under mnt. */
static bool matches(const char *link, const char *mnt, size_t mlen,
		    const char *base, size_t blen)
{
	size_t n = strlen(link);
	return n > mlen + blen && !strncmp(link, mnt, mlen) &&
	       link[mlen] == '/' && !strcmp(link + n - blen, base) &&
	       link[n - blen - 1] == '/';
}

/* 1 when descriptor fd of pid is open for writing (fdinfo's octal
 * `flags`), 0 when not or gone, -1 when unknown. */
static int writable(int proc, const char *pid, const char *fd)
{
	char p[320], b[512];
	snprintf(p, sizeof p, "%s/fdinfo/%s", pid, fd);
	int f = openat(proc, p, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return errno == ENOENT ? 0 : -1;
	ssize_t n = read(f, b, sizeof b - 1);
	close(f);
	if (n <= 0)
		return n == 0 ? 0 : -1;
	b[n] = '\0';
	const char *fl = strstr(b, "flags:");
	if (!fl)
		return -1;
	unsigned long flags = strtoul(fl + 6, NULL, 8);
	return (flags & O_ACCMODE) != O_RDONLY;
}

/* 1 held, 0 not, -1 unknown, for one process's fd directory. */
static int scan_fds(int proc, const char *pid, const char *mnt, size_t mlen,
		    const char *base, size_t blen)
{
	char p[64];
	snprintf(p, sizeof p, "%s/fd", pid);
	int fd = openat(proc, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) /* gone meanwhile, or not ours to see (holders.h) */
		return errno == ENOENT || errno == ESRCH || errno == EACCES ||
			       errno == EPERM
			   ? 0
			   : -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	int held = 0;
	struct dirent *e;
	char link[PATH_MAX + 1];
	while (!held && (e = readdir(d))) {
		if (!is_pid(e->d_name))
			continue;
		ssize_t n = readlinkat(dirfd(d), e->d_name, link, PATH_MAX);
		if (n < 0) {
			if (errno != ENOENT && errno != EACCES &&
			    errno != EPERM)
				held = -1;
			continue;
		}
		link[n] = '\0';
		if (matches(link, mnt, mlen, base, blen))
			held = writable(proc, pid, e->d_name);
	}
	closedir(d);
	return held;
}

int fd_holders(const char *mnt, const char *base)
{
	if (!mnt || !base || !*base)
		return -1;
	size_t mlen = strlen(mnt), blen = strlen(base);
	while (mlen && mnt[mlen - 1] == '/')
		mlen--;
	int proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = proc >= 0 ? fdopendir(dup(proc)) : NULL;
	if (!d) {
		if (proc >= 0)
			close(proc);
		return -1;
	}
	char self[32];
	snprintf(self, sizeof self, "%d", (int)getpid());
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)))
		if (is_pid(e->d_name) && strcmp(e->d_name, self))
			rc = scan_fds(proc, e->d_name, mnt, mlen, base, blen);
	closedir(d);
	close(proc);
	return rc;
}

bool proc_exiting(pid_t pid)
{
	char p[64], b[1024];
	snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
	int fd = pid > 0 ? open(p, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0)
		return false;
	ssize_t n = read(fd, b, sizeof b - 1);
	close(fd);
	if (n <= 0)
		return false;
	b[n] = '\0';
	/* "pid (comm) state ppid pgrp session tty_nr tpgid flags ...": comm
	 * may hold anything, so count from its closing parenthesis. */
	char *s = strrchr(b, ')');
	unsigned long flags = 0;
	if (!s || sscanf(s + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) != 1)
		return false;
	return flags & 0x4; /* PF_EXITING */
}
