/* statedir.c — see statedir.h: the one check of the state directory. */
#include "statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

int statedir_open(const char *path, char **resolved, char *err, size_t n)
{
	*resolved = NULL;
	/* Missing (a first mount): made, parents too (those are the user's
	 * own, such as ~/.local/state, and may be links). */
	int fd = mkdir_p(AT_FDCWD, path, true);
	if (fd < 0) {
		snprintf(err, n, "state directory %s: cannot create it: %s",
			 path, strerror(-fd));
		return -1;
	}
	close(fd);
	char *real = realpath(path, NULL);
	if (!real) {
		snprintf(err, n, "state directory %s: %s", path,
			 strerror(errno));
		return -1;
	}
	fd = open(real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st)) {
		snprintf(err, n, "state directory %s: %s", real,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		free(real);
		return -1;
	}
	const char *why = NULL;
	if (st.st_uid != geteuid())
		why = "it belongs to another user";
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		why = "others may write in it";
	if (why) {
		snprintf(err, n,
			 "refusing state directory %s: %s (owner uid %u, mode "
			 "%04o; it must be the mounting user's, uid %u, and "
			 "writable by nobody else: chown it, or chmod go-w, or "
			 "choose another with -o state=)",
			 real, why, (unsigned)st.st_uid,
			 (unsigned)(st.st_mode & 07777), (unsigned)geteuid());
		close(fd);
		free(real);
		return -1;
	}
	*resolved = real;
	return fd;
}
