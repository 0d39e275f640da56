/* util.h — small helpers shared by the whole core: a growable byte buffer,
 * allocation that never returns NULL, number and time formatting as DESIGN.md
 * wants them (shortest exact form, no exponent; ISO-8601 UTC), the check
 * for names that may become path components, and the few ways primefs
 * touches its own files on disk. */
#ifndef PRIMEFS_UTIL_H
#define PRIMEFS_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_add(struct buf *b, const void *data, size_t n);
/* Room for `extra` more bytes and a NUL, without adding any. */
void buf_reserve(struct buf *b, size_t extra);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Takes the contents as a NUL-terminated string; the buffer is left empty. */
char *buf_steal(struct buf *b);

/* A number as the API gives it: the shortest text that reads back as the
 * same double, never with an exponent ("2.49", "1.6567999999999998"). */
void fmt_number(struct buf *b, double v);

/* Parses ISO-8601 ("2026-05-01T12:00:00.000Z", "+00:00" offsets); -1 if it
 * is not one. */
time_t parse_iso8601(const char *s);
void fmt_iso8601(char out[32], time_t t);

/* [A-Za-z0-9._-]+, not "." or "..": the names DESIGN.md lets into paths. */
bool safe_name(const char *s);
/* Appends s with every character outside [A-Za-z0-9._-] turned into '_';
 * runs of replaced characters collapse to one. */
void sanitize_into(struct buf *b, const char *s);

/* ---- files primefs keeps ----
 * Directories primefs makes are 0700 and its files 0600. Paths are taken
 * relative to a directory fd (AT_FDCWD: the current directory, or "/" for
 * an absolute path), component by component, so that a caller decides
 * from where on no symlink may be followed (statedir.h: everything below
 * the state directory). The one fsync rule: a file replaced whole is
 * replaced by atomic_write_file, which fsyncs the new file before renaming
 * it over the old one and fsyncs the directory after; once it returns 0
 * the new content is what a crash leaves, and until then the old one is,
 * whole. Appends (a job's output, known_hosts) are not fsynced. */

/* openat(2) of rel under dirfd following no symlink: each directory on the
 * way is opened O_DIRECTORY|O_NOFOLLOW, the last component with
 * flags|O_NOFOLLOW|O_CLOEXEC (mode for O_CREAT). A link anywhere fails
 * (ELOOP or ENOTDIR), as does a ".." component (EINVAL). fd or -errno. */
int openat_nofollow(int dirfd, const char *rel, int flags, mode_t mode);
/* mkdir -p: path under dirfd, each missing directory made 0700. With
 * follow false no component may be a symlink (ELOOP/ENOTDIR); with it,
 * links on the way are followed (a user's own ~/.config may be one).
 * Returns an open O_DIRECTORY fd of the directory (close it), or -errno. */
int mkdir_p(int dirfd, const char *path, bool follow);
/* Replaces the file `name` (one component, not followed if a link) in the
 * directory dirfd with len bytes of data, mode 0600: a new file beside it
 * (O_EXCL|O_NOFOLLOW, a name of its own), written whole, fsynced, renamed
 * over name, then the directory fsynced. 0, or -errno (ENOSPC on a full
 * disk) with name as it was and no new file left — but for a failed fsync
 * of the directory, after the rename, which is reported all the same. */
int atomic_write_file(int dirfd, const char *name, const void *data,
		      size_t len);

double now_monotonic(void);
/* Sleeps, in seconds; a fraction works. */
void sleep_seconds(double s);

#endif
