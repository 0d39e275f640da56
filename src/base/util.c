/* util.c — see util.h. Allocation failure aborts: a FUSE daemon that runs
 * out of memory has no better answer, and every caller stays simple. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		abort();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		abort();
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static void buf_grow(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

void buf_reserve(struct buf *b, size_t extra)
{
	buf_grow(b, extra);
}

void buf_add(struct buf *b, const void *data, size_t n)
{
	buf_grow(b, n);
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list copy;
	va_copy(copy, ap);
	int n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0)
		return;
	buf_grow(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

char *buf_steal(struct buf *b)
{
	if (!b->data)
		return xstrdup("");
	char *p = b->data;
	buf_init(b);
	return p;
}

void fmt_number(struct buf *b, double v)
{
	char tmp[512];
	if (!isfinite(v))
		return; /* unknown: an empty value, never "inf" */
	if (v == 0) {
		buf_adds(b, "0");
		return;
	}
	int prec;
	for (prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	if (!strchr(tmp, 'e')) {
		buf_adds(b, tmp);
		return;
	}
	/* Exponent form: write it out positionally with just enough decimals.
	 */
	int exp10 = (int)floor(log10(fabs(v)));
	int decimals = prec - 1 - exp10;
	if (decimals < 0)
		decimals = 0;
	if (decimals > 340)
		decimals = 340;
	snprintf(tmp, sizeof tmp, "%.*f", decimals, v);
	buf_adds(b, tmp);
}

time_t parse_iso8601(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (!s)
		return -1;
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -1;
	if (*p == '.') /* fractional seconds: dropped */
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	long offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh = 0, mm = 0;
		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) < 1)
			return -1;
		offset = (hh * 3600L + mm * 60L) * (*p == '-' ? -1 : 1);
		p += strlen(p);
	}
	if (*p)
		return -1;
	time_t t = timegm(&tm);
	return t == (time_t)-1 ? -1 : t - offset;
}

void fmt_iso8601(char out[32], time_t t)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static bool name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool safe_name(const char *s)
{
	if (!s || !*s || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	if (strlen(s) > 255)
		return false;
	for (; *s; s++)
		if (!name_char((unsigned char)*s))
			return false;
	return true;
}

void sanitize_into(struct buf *b, const char *s)
{
	bool replaced = false;
	for (; s && *s; s++) {
		if (name_char((unsigned char)*s)) {
			buf_addc(b, *s);
			replaced = false;
		} else if (!replaced) {
			buf_addc(b, '_');
			replaced = true;
		}
	}
}

/* ---- files primefs keeps ---- */

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_CLOEXEC)

/* The fd a walk of path starts from: "/" for an absolute path. */
static int walk_start(int dirfd, const char **path)
{
	if (**path != '/')
		return dirfd;
	while (**path == '/')
		(*path)++;
	int fd = open("/", DIR_FLAGS);
	return fd >= 0 ? fd : -errno;
}

/* The next component of *p (copied into name), *p moved past it and its
 * slashes; false at the end. */
static bool next_part(const char **p, char name[NAME_MAX + 1], int *err)
{
	while (**p == '/')
		(*p)++;
	if (!**p)
		return false;
	size_t n = strcspn(*p, "/");
	if (n > NAME_MAX) {
		*err = -ENAMETOOLONG;
		return false;
	}
	memcpy(name, *p, n);
	name[n] = '\0';
	*p += n;
	while (**p == '/')
		(*p)++;
	if (!strcmp(name, ".."))
		*err = -EINVAL;
	return true;
}

int openat_nofollow(int dirfd, const char *rel, int flags, mode_t mode)
{
	int fd = walk_start(dirfd, &rel);
	if (fd < 0)
		return fd;
	char name[NAME_MAX + 1];
	int err = 0;
	for (;;) {
		bool last;
		if (!next_part(&rel, name, &err)) {
			if (!err) /* "" or "/": the start itself */
				strcpy(name, ".");
			last = true;
		} else
			last = !*rel;
		if (err)
			break;
		int nfd = last ? openat(fd, name,
					flags | O_NOFOLLOW | O_CLOEXEC, mode)
			       : openat(fd, name, DIR_FLAGS | O_NOFOLLOW);
		if (nfd < 0)
			err = -errno;
		if (fd != dirfd)
			close(fd);
		fd = nfd;
		if (err || last)
			break;
	}
	if (err && fd >= 0 && fd != dirfd)
		close(fd);
	return err ? err : fd;
}

int mkdir_p(int dirfd, const char *path, bool follow)
{
	int fd = walk_start(dirfd, &path);
	if (fd < 0)
		return fd;
	int flags = DIR_FLAGS | (follow ? 0 : O_NOFOLLOW);
	char name[NAME_MAX + 1];
	int err = 0;
	bool any = false;
	while (next_part(&path, name, &err) && !err) {
		any = true;
		int nfd = openat(fd, name, flags);
		if (nfd < 0 && errno == ENOENT &&
		    (mkdirat(fd, name, 0700) == 0 || errno == EEXIST))
			nfd = openat(fd, name, flags);
		if (nfd < 0)
			err = -errno;
		if (fd != dirfd)
			close(fd);
		fd = nfd;
		if (err)
			break;
	}
	if (!err && !any) /* nothing to make: the start itself */
		fd = fd == dirfd ? openat(dirfd, ".", DIR_FLAGS) : fd;
	if (!err && fd < 0)
		err = -errno;
	if (err && fd >= 0 && fd != dirfd)
		close(fd);
	return err ? err : fd;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int atomic_write_file(int dirfd, const char *name, const void *data, size_t len)
{
	static atomic_uint seq;
	if (!*name || strchr(name, '/') || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return -EINVAL;
	char tmp[NAME_MAX + 1];
	int fd = -1, rc = 0;
	for (int tries = 0; fd < 0 && tries < 100; tries++) {
		int n = snprintf(tmp, sizeof tmp, ".%s.%d.%u.tmp", name,
				 (int)getpid(), atomic_fetch_add(&seq, 1));
		if (n < 0 || (size_t)n >= sizeof tmp)
			return -ENAMETOOLONG;
		fd = openat(
		    dirfd, tmp,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			return -errno;
	}
	if (fd < 0)
		return -EEXIST;
	rc = write_all(fd, data, len);
	if (!rc && fsync(fd))
		rc = -errno;
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && renameat(dirfd, tmp, dirfd, name))
		rc = -errno;
	if (rc) {
		unlinkat(dirfd, tmp, 0);
		return rc;
	}
	/* The rename itself made durable (the one fsync rule, util.h). */
	int d = openat(dirfd, ".", DIR_FLAGS);
	if (d < 0 || fsync(d))
		rc = -errno;
	if (d >= 0)
		close(d);
	return rc;
}

double now_monotonic(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sleep_seconds(double s)
{
	if (s <= 0)
		return;
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}
