/* statedir.h — the state directory (DESIGN.md, "Command line"): where
 * guards (guards.h) and jobs (jobs.h) are kept across mounts. Its rules,
 * for every module that keeps anything there:
 *  - it is resolved once, at start (so it may be given as a symlink), and
 *    must belong to the mounting user and be writable by nobody else, or
 *    the mount is refused;
 *  - below it no symlink is ever followed: every file there is opened
 *    relative to a directory fd with openat_nofollow, and subdirectories
 *    are made with mkdir_p(..., false) (util.h);
 *  - primefs makes its directories there 0700 and its files 0600;
 *  - a record replaced whole (a pod's guards, a job's meta) is written
 *    with atomic_write_file; one that must be kept and cannot be (a full
 *    disk) fails with that errno to the writer, changes nothing, and is
 *    logged. */
#ifndef PRIMEFS_STATEDIR_H
#define PRIMEFS_STATEDIR_H

#include <stddef.h>

/* Resolves path (made 0700, with its missing parents, if it does not
 * exist) and opens it O_DIRECTORY|O_NOFOLLOW; checks with fstat that it
 * belongs to the effective user and has no group or other write bit.
 * The fd (close it), with *resolved the real path (free it); or -1 with
 * err saying why, in words for the user's terminal. */
int statedir_open(const char *path, char **resolved, char *err, size_t n);

#endif
