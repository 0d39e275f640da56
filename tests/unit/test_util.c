/* test_util.c — number and time formatting, safe names, and the helpers
 * for primefs's own files (mkdir_p, openat_nofollow, atomic_write_file). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t.h"
#include "util.h"

static char root[] = "/tmp/primefs-util-XXXXXX";

static const char *at(const char *rel)
{
	static char p[4][600];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof p[i], "%s/%s", root, rel);
	return p[i];
}

static int mode_of(const char *path)
{
	struct stat st;
	return lstat(path, &st) ? -1 : (int)(st.st_mode & 07777);
}

static char *slurp(const char *path)
{
	static char b[256];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, b, sizeof b - 1) : -1;
	if (fd >= 0)
		close(fd);
	b[n > 0 ? n : 0] = '\0';
	return n >= 0 ? b : NULL;
}

static void put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
		close(fd);
	}
}

static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	if (d)
		closedir(d);
	return n;
}

static void test_mkdir_p(void)
{
	/* Made 0700 whatever the umask, parents too; again is fine. */
	mode_t old = umask(0);
	int fd = mkdir_p(AT_FDCWD, at("a/b/c"), false);
	umask(old);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	CHECK(mode_of(at("a")) == 0700 && mode_of(at("a/b/c")) == 0700);
	fd = mkdir_p(AT_FDCWD, at("a/b/c"), false);
	CHECK(fd >= 0);
	/* The fd is the directory itself: relative paths go under it. */
	if (fd >= 0) {
		int d = mkdir_p(fd, "d//e/", false);
		CHECK(d >= 0 && mode_of(at("a/b/c/d/e")) == 0700);
		if (d >= 0)
			close(d);
		CHECK(mkdir_p(fd, "../x", false) == -EINVAL);
		close(fd);
	}
	/* A link on the way: refused without follow, nothing made beyond
	 * it; followed with it. */
	CHECK(mkdir(at("elsewhere"), 0700) == 0);
	CHECK(symlink(at("elsewhere"), at("a/link")) == 0);
	fd = mkdir_p(AT_FDCWD, at("a/link/new"), false);
	CHECK(fd == -ELOOP || fd == -ENOTDIR);
	CHECK(entries(at("elsewhere")) == 0);
	fd = mkdir_p(AT_FDCWD, at("a/link/new"), true);
	CHECK(fd >= 0 && mode_of(at("elsewhere/new")) == 0700);
	if (fd >= 0)
		close(fd);
	/* A file in the way. */
	put(at("a/file"), "x");
	CHECK(mkdir_p(AT_FDCWD, at("a/file/sub"), false) == -ENOTDIR);
}

static void test_openat_nofollow(void)
{
	int base = open(root, O_RDONLY | O_DIRECTORY);
	CHECK(base >= 0);
	put(at("elsewhere/secret"), "keep\n");
	/* A link as the last component or on the way: never followed. */
	int fd = openat_nofollow(base, "a/link/secret", O_RDONLY, 0);
	CHECK(fd == -ELOOP || fd == -ENOTDIR);
	CHECK(symlink(at("elsewhere/secret"), at("a/b/out")) == 0);
	fd = openat_nofollow(base, "a/b/out", O_WRONLY | O_TRUNC, 0);
	CHECK(fd == -ELOOP);
	fd = openat_nofollow(base, "a/b/out", O_WRONLY | O_CREAT | O_TRUNC,
			     0600);
	CHECK(fd == -ELOOP);
	CHECK_STR(slurp(at("elsewhere/secret")), "keep\n");
	CHECK(openat_nofollow(base, "a/../a/file", O_RDONLY, 0) == -EINVAL);
	/* A file made: 0600. */
	fd = openat_nofollow(base, "a/b/new", O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0 && mode_of(at("a/b/new")) == 0600);
	if (fd >= 0)
		close(fd);
	/* "" is the directory itself. */
	fd = openat_nofollow(base, "", O_RDONLY | O_DIRECTORY, 0);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	close(base);
}

static void test_atomic_write(void)
{
	int d = mkdir_p(AT_FDCWD, at("w"), false);
	CHECK(d >= 0);
	if (d < 0)
		return;
	mode_t old = umask(0);
	CHECK(atomic_write_file(d, "f", "one\n", 4) == 0);
	umask(old);
	CHECK_STR(slurp(at("w/f")), "one\n");
	CHECK(mode_of(at("w/f")) == 0600);
	/* Replaced whole; nothing left beside it. */
	CHECK(atomic_write_file(d, "f", "two\n", 4) == 0);
	CHECK_STR(slurp(at("w/f")), "two\n");
	CHECK(atomic_write_file(d, "empty", "", 0) == 0);
	CHECK_STR(slurp(at("w/empty")), "");
	CHECK(entries(at("w")) == 2);
	/* A name that is a link: the link is replaced, its target kept. */
	CHECK(symlink(at("elsewhere/secret"), at("w/link")) == 0);
	CHECK(atomic_write_file(d, "link", "new\n", 4) == 0);
	CHECK_STR(slurp(at("elsewhere/secret")), "keep\n");
	CHECK(mode_of(at("w/link")) == 0600);
	CHECK_STR(slurp(at("w/link")), "new\n");
	/* One component only. */
	CHECK(atomic_write_file(d, "a/f", "x", 1) == -EINVAL);
	CHECK(atomic_write_file(d, "..", "x", 1) == -EINVAL);
	CHECK(atomic_write_file(d, "", "x", 1) == -EINVAL);
	close(d);
	/* A directory that cannot take the new file (removed while open):
	 * the errno, and no file. */
	d = mkdir_p(AT_FDCWD, at("gone"), false);
	CHECK(d >= 0 && rmdir(at("gone")) == 0);
	if (d >= 0) {
		CHECK(atomic_write_file(d, "f", "x", 1) == -ENOENT);
		close(d);
	}
}

static const char *num(double v)
{
	static struct buf b;
	buf_free(&b);
	fmt_number(&b, v);
	return b.data ? b.data : "";
}

static const char *san(const char *s)
{
	static struct buf b;
	buf_free(&b);
	sanitize_into(&b, s);
	return b.data ? b.data : "";
}

int main(void)
{
	CHECK_STR(num(2.49), "2.49");
	CHECK_STR(num(1.6567999999999998), "1.6567999999999998");
	CHECK_STR(num(0.00014), "0.00014");
	CHECK_STR(num(1e-7), "0.0000001");
	CHECK_STR(num(1e21), "1000000000000000000000");
	CHECK_STR(num(-3.5), "-3.5");
	CHECK_STR(num(0), "0");
	CHECK_STR(num(120), "120");
	CHECK_STR(num(1.0 / 0.0), "");

	CHECK(parse_iso8601("2026-05-01T12:00:00.000Z") == 1777636800);
	CHECK(parse_iso8601("2026-05-01T12:00:00Z") == 1777636800);
	CHECK(parse_iso8601("2026-05-01T14:00:00+02:00") == 1777636800);
	CHECK(parse_iso8601("not a date") == -1);
	CHECK(parse_iso8601("") == -1);
	CHECK(parse_iso8601(NULL) == -1);
	CHECK(parse_iso8601("2026-05-01T12:00:00Zjunk") == -1);
	char out[32];
	fmt_iso8601(out, 1777636800);
	CHECK_STR(out, "2026-05-01T12:00:00Z");

	CHECK(safe_name("bench"));
	CHECK(safe_name("a.b_c-1"));
	CHECK(!safe_name(""));
	CHECK(!safe_name("."));
	CHECK(!safe_name(".."));
	CHECK(!safe_name("a/b"));
	CHECK(!safe_name("my pod"));
	CHECK(!safe_name("tab\there"));
	CHECK(!safe_name(NULL));
	CHECK(!safe_name("caf\xc3\xa9"));

	CHECK_STR(san("evil/provider x"), "evil_provider_x");
	CHECK_STR(san("a//b"), "a_b");
	CHECK_STR(san("US-KS-2"), "US-KS-2");
	CHECK_STR(san("\n\x01"), "_");

	struct buf b;
	buf_init(&b);
	for (int i = 0; i < 10000; i++)
		buf_printf(&b, "%d,", i);
	CHECK(b.len == 48890);
	buf_free(&b);

	CHECK(mkdtemp(root) != NULL);
	test_mkdir_p();
	test_openat_nofollow();
	test_atomic_write();
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	CHECK(system(cmd) == 0);
	return t_done();
}
