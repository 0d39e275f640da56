/* test_sftp.c — the SFTP client (sftp.h) against a real sshd, one scenario
 * per run, TAP on stdout; tests/test_sftp.py starts the sshd and drives it
 * as tests/test_ssh_core.py drives test_ssh:
 *
 *   test_sftp SCENARIO host=127.0.0.1 port=N user=root key=FILE
 *             known_hosts=FILE dir=DIR [full=DIR] [bytes=N]
 *
 * Scenarios: ops errors full big reconnect concurrent unreachable
 * interrupt mixed duplex parallel list chaos. The pod is this
 * machine (sshd runs as root here), so what the client did is checked
 * with local system calls on DIR. "@@ ACTION" lines ask the driver to act
 * (restart sshd, change a file) and wait for its answer on stdin; "# NAME
 * VALUE" lines carry figures. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "sftp.h"
#include "ssh.h"
#include "t.h"

static int n_args;
static char **args;
static char conn[256];
static const char *dir;

static const char *arg(const char *name, const char *def)
{
	size_t n = strlen(name);
	for (int i = 0; i < n_args; i++)
		if (!strncmp(args[i], name, n) && args[i][n] == '=')
			return args[i] + n + 1;
	return def;
}

static void action(const char *what)
{
	char line[64];
	printf("@@ %s\n", what);
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin)) {
		fprintf(stderr, "no answer to action %s\n", what);
		exit(2);
	}
}

static const char *P(const char *name)
{
	static _Thread_local char b[8][4096]; /* threads call it too */
	static _Thread_local int i;
	i = (i + 1) % 8;
	snprintf(b[i], sizeof b[i], "%s/%s", dir, name);
	return b[i];
}

static void put_file(const char *path, const char *s, size_t n)
{
	FILE *fp = fopen(path, "w");
	fwrite(s, 1, n, fp);
	fclose(fp);
}

static char *get_file(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "r");
	if (!fp)
		return NULL;
	struct buf b;
	buf_init(&b);
	char tmp[65536];
	size_t k;
	while ((k = fread(tmp, 1, sizeof tmp, fp)) > 0)
		buf_add(&b, tmp, k);
	fclose(fp);
	*n = b.len;
	return b.data ? b.data : xstrdup("");
}

/* ---- scenarios ---- */

static void sc_ops(struct sftp *f)
{
	char *s = NULL;
	CHECK(sftp_realpath(f, ".", &s) == 0);
	CHECK_STR(s, arg("home", ""));
	free(s);

	/* Create, write behind, close, read back. */
	struct sftp_file *h = NULL;
	CHECK(sftp_open(f, P("a.txt"), O_WRONLY | O_CREAT | O_EXCL, 0640, &h) ==
	      0);
	CHECK(sftp_write(h, "hello ", 6, 0) == 6);
	CHECK(sftp_write(h, "world\n", 6, 6) == 6);
	CHECK(sftp_close(h) == 0);
	struct stat st;
	CHECK(stat(P("a.txt"), &st) == 0 && st.st_size == 12);
	CHECK((st.st_mode & 07777) == 0640); /* whatever sshd's umask */
	char buf[64] = "";
	CHECK(sftp_open(f, P("a.txt"), O_RDONLY, 0, &h) == 0);
	CHECK(sftp_read(h, buf, sizeof buf, 0) == 12);
	CHECK(!memcmp(buf, "hello world\n", 12));
	CHECK(sftp_read(h, buf, sizeof buf, 12) == 0);
	CHECK(sftp_read(h, buf, 5, 6) == 5 && !memcmp(buf, "world", 5));
	struct sftp_attr a;
	CHECK(sftp_fstat(h, &a) == 0 && a.size == 12);
	CHECK(sftp_close(h) == 0);

	/* Attributes. */
	CHECK(sftp_stat(f, P("a.txt"), &a) == 0);
	CHECK(a.size == 12 && S_ISREG(a.mode) && (a.mode & 0777) == 0640);
	CHECK(a.uid == st.st_uid && a.gid == st.st_gid);
	CHECK(a.mtime == st.st_mtime);

	/* setstat: chmod, chown, utimens, truncate. */
	a.flags = SFTP_ATTR_MODE;
	a.mode = 0600;
	CHECK(sftp_setstat(f, P("a.txt"), &a) == 0);
	a.flags = SFTP_ATTR_UIDGID;
	a.uid = 1234;
	a.gid = 5678;
	CHECK(sftp_setstat(f, P("a.txt"), &a) == 0);
	a.flags = SFTP_ATTR_TIMES;
	a.atime = 1000000000;
	a.mtime = 1200000000;
	CHECK(sftp_setstat(f, P("a.txt"), &a) == 0);
	a.flags = SFTP_ATTR_SIZE;
	a.size = 5;
	CHECK(sftp_setstat(f, P("a.txt"), &a) == 0);
	CHECK(stat(P("a.txt"), &st) == 0);
	CHECK((st.st_mode & 07777) == 0600);
	CHECK(st.st_uid == 1234 && st.st_gid == 5678);
	CHECK(st.st_atime == 1000000000);
	CHECK(st.st_size == 5);
	a.flags = SFTP_ATTR_TIMES;
	a.atime = -1;
	CHECK(sftp_setstat(f, P("a.txt"), &a) == -EINVAL);

	/* mkdir (the mode exact), readdir with attributes. */
	CHECK(sftp_mkdir(f, P("d"), 0775) == 0);
	CHECK(stat(P("d"), &st) == 0 && S_ISDIR(st.st_mode) &&
	      (st.st_mode & 07777) == 0775);
	for (int i = 0; i < 250; i++) {
		char name[64];
		snprintf(name, sizeof name, "d/f%03d", i);
		put_file(P(name), "xxxxxxx", (size_t)i % 7);
	}
	struct sftp_file *d = NULL;
	CHECK(sftp_opendir(f, P("d"), &d) == 0);
	int seen = 0, good = 0, batches = 0;
	for (;;) {
		struct sftp_dirent *e;
		size_t n;
		int rc = sftp_readdir(d, &e, &n);
		if (rc || !n) {
			CHECK(rc == 0);
			break;
		}
		batches++;
		for (size_t i = 0; i < n; i++) {
			int k;
			if (sscanf(e[i].name, "f%d", &k) == 1) {
				seen++;
				good += e[i].attr.size == (uint64_t)(k % 7) &&
					S_ISREG(e[i].attr.mode) &&
					(e[i].attr.flags & SFTP_ATTR_TIMES);
			}
		}
		sftp_dirents_free(e, n);
	}
	CHECK(sftp_close(d) == 0);
	CHECK(seen == 250 && good == 250);
	CHECK(batches > 1);

	/* rename replaces its target. */
	put_file(P("r1"), "one", 3);
	put_file(P("r2"), "two", 3);
	CHECK(sftp_rename(f, P("r1"), P("r2")) == 0);
	size_t n;
	s = get_file(P("r2"), &n);
	CHECK(s && n == 3 && !memcmp(s, "one", 3));
	free(s);
	CHECK(access(P("r1"), F_OK) != 0);

	/* symlink as written, readlink, link. */
	CHECK(sftp_symlink(f, "/no/where", P("ln")) == 0);
	char target[128] = "";
	CHECK(readlink(P("ln"), target, sizeof target) == 9);
	CHECK_STR(target, "/no/where");
	CHECK(sftp_readlink(f, P("ln"), &s) == 0);
	CHECK_STR(s, "/no/where");
	free(s);
	CHECK(sftp_lstat(f, P("ln"), &a) == 0 && S_ISLNK(a.mode));
	CHECK(sftp_stat(f, P("ln"), &a) == -ENOENT);
	CHECK(sftp_link(f, P("r2"), P("hard")) == 0);
	CHECK(stat(P("hard"), &st) == 0 && st.st_nlink == 2);

	/* statvfs, fsync. */
	struct statvfs v;
	CHECK(sftp_statvfs(f, dir, &v) == 0);
	struct statvfs lv;
	statvfs(dir, &lv);
	CHECK(v.f_blocks == lv.f_blocks && v.f_bsize == lv.f_bsize);
	CHECK(sftp_open(f, P("sync"), O_RDWR | O_CREAT | O_TRUNC, 0644, &h) ==
	      0);
	CHECK(sftp_write(h, "abc", 3, 0) == 3);
	CHECK(sftp_fsync(h) == 0);
	CHECK(stat(P("sync"), &st) == 0 && st.st_size == 3);
	/* A read sees the writes before it. */
	CHECK(sftp_write(h, "def", 3, 3) == 3);
	CHECK(sftp_read(h, buf, 6, 0) == 6 && !memcmp(buf, "abcdef", 6));
	a.flags = SFTP_ATTR_SIZE;
	a.size = 1;
	CHECK(sftp_fsetstat(h, &a) == 0);
	CHECK(sftp_fstat(h, &a) == 0 && a.size == 1);
	CHECK(sftp_close(h) == 0);

	/* O_APPEND. */
	CHECK(sftp_open(f, P("sync"), O_WRONLY | O_APPEND, 0, &h) == 0);
	CHECK(sftp_write(h, "zz", 2, 0) == 2);
	CHECK(sftp_close(h) == 0);
	s = get_file(P("sync"), &n);
	CHECK(s && n == 3 && !memcmp(s, "azz", 3));
	free(s);

	/* unlink, rmdir. */
	CHECK(sftp_unlink(f, P("hard")) == 0);
	CHECK(access(P("hard"), F_OK) != 0);
	CHECK(sftp_mkdir(f, P("e"), 0755) == 0);
	CHECK(sftp_rmdir(f, P("e")) == 0);
	CHECK(access(P("e"), F_OK) != 0);
}

static void sc_errors(struct sftp *f)
{
	struct sftp_attr a;
	struct sftp_file *h = NULL;
	char *s = NULL;
	put_file(P("file"), "x", 1);
	mkdir(P("dir"), 0755);
	put_file(P("dir/in"), "x", 1);
	mkdir(P("empty"), 0755);

	CHECK(sftp_stat(f, P("nope"), &a) == -ENOENT);
	CHECK(sftp_open(f, P("nope"), O_RDONLY, 0, &h) == -ENOENT);
	CHECK(sftp_opendir(f, P("nope"), &h) == -ENOENT);
	CHECK(sftp_unlink(f, P("nope")) == -ENOENT);
	CHECK(sftp_rmdir(f, P("nope")) == -ENOENT);
	CHECK(sftp_readlink(f, P("nope"), &s) == -ENOENT);
	CHECK(sftp_rename(f, P("nope"), P("x")) == -ENOENT);
	CHECK(sftp_mkdir(f, P("nope/sub"), 0755) == -ENOENT);

	CHECK(sftp_mkdir(f, P("dir"), 0755) == -EEXIST);
	CHECK(sftp_mkdir(f, P("file"), 0755) == -EEXIST);
	CHECK(sftp_open(f, P("file"), O_WRONLY | O_CREAT | O_EXCL, 0644, &h) ==
	      -EEXIST);
	CHECK(sftp_symlink(f, "x", P("file")) == -EEXIST);
	CHECK(sftp_link(f, P("file"), P("dir")) == -EEXIST);

	CHECK(sftp_rmdir(f, P("dir")) == -ENOTEMPTY);
	CHECK(sftp_rmdir(f, P("file")) == -ENOTDIR);
	CHECK(sftp_opendir(f, P("file"), &h) == -ENOTDIR);
	CHECK(sftp_rename(f, P("empty"), P("file")) == -ENOTDIR);

	CHECK(sftp_unlink(f, P("dir")) == -EISDIR);
	CHECK(sftp_open(f, P("dir"), O_WRONLY, 0, &h) == -EISDIR);
	CHECK(sftp_rename(f, P("file"), P("empty")) == -EISDIR);
	mkdir(P("full"), 0755);
	mkdir(P("full/x"), 0755);
	CHECK(sftp_rename(f, P("empty"), P("full")) == -ENOTEMPTY);

	/* As root, sysfs still refuses a new file. */
	int rc =
	    sftp_open(f, "/sys/primefs-test", O_WRONLY | O_CREAT, 0644, &h);
	CHECK(rc == -EACCES);

	/* A name over 255 bytes: refused before sending. */
	char longname[300];
	memset(longname, 'n', 256);
	longname[256] = 0;
	CHECK(sftp_stat(f, P(longname), &a) == -ENAMETOOLONG);
	CHECK(sftp_mkdir(f, P(longname), 0755) == -ENAMETOOLONG);
	CHECK(sftp_open(f, P(longname), O_RDONLY, 0, &h) == -ENAMETOOLONG);
	longname[255] = 0;
	CHECK(sftp_stat(f, P(longname), &a) == -ENOENT);

	/* Every reply matched its request: a good call after the errors. */
	CHECK(sftp_stat(f, P("file"), &a) == 0 && a.size == 1);
}

/* Writes past a small tmpfs's end: ENOSPC from a write or the close. */
static void sc_full(struct sftp *f)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/big", arg("full", "/nonexistent"));
	struct sftp_file *h = NULL;
	CHECK(sftp_open(f, path, O_WRONLY | O_CREAT | O_TRUNC, 0644, &h) == 0);
	if (!h)
		return;
	static char chunk[65536];
	int err = 0;
	for (int i = 0; i < 64 && !err; i++) {
		ssize_t w = sftp_write(h, chunk, sizeof chunk,
				       (uint64_t)i * sizeof chunk);
		if (w < 0)
			err = (int)w;
	}
	int c = sftp_close(h);
	printf("# write_err %d\n# close_err %d\n", -err, -c);
	CHECK(err == -ENOSPC || (err == 0 && c == -ENOSPC));
	CHECK(c == -ENOSPC);
}

static long vm_hwm_kib(void)
{
	FILE *fp = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	while (fp && fgets(line, sizeof line, fp))
		if (!strncmp(line, "VmHWM:", 6))
			v = atol(line + 6);
	if (fp)
		fclose(fp);
	return v;
}

/* A big file written through the API then read back whole, with memory
 * bounded by the read-ahead and write-behind limits, not by its size. */
static void sc_big(struct sftp *f)
{
	size_t total = (size_t)atoll(arg("bytes", "268435456"));
	size_t bs = 128 << 10;
	char *b = xmalloc(bs), *r = xmalloc(bs);
	long hwm0 = vm_hwm_kib();
	struct sftp_file *h = NULL;
	double t0 = now_monotonic();
	CHECK(sftp_open(f, P("big"), O_WRONLY | O_CREAT | O_TRUNC, 0644, &h) ==
	      0);
	bool ok = h != NULL;
	for (size_t off = 0; ok && off < total; off += bs) {
		for (size_t i = 0; i < bs; i += 8)
			*(uint64_t *)(b + i) = (off + i) * 2654435761u;
		ok = sftp_write(h, b, bs, off) == (ssize_t)bs;
	}
	CHECK(ok);
	CHECK(h && sftp_close(h) == 0);
	double tw = now_monotonic() - t0;
	struct stat st;
	CHECK(stat(P("big"), &st) == 0 && (size_t)st.st_size == total);
	t0 = now_monotonic();
	CHECK(sftp_open(f, P("big"), O_RDONLY, 0, &h) == 0);
	ok = h != NULL;
	size_t off = 0;
	while (ok) {
		ssize_t n = sftp_read(h, r, bs, off);
		if (n <= 0) {
			ok = n == 0;
			break;
		}
		for (size_t i = 0; i + 8 <= (size_t)n; i += 8)
			if (*(uint64_t *)(r + i) != (off + i) * 2654435761u) {
				ok = false;
				break;
			}
		off += (size_t)n;
	}
	CHECK(ok);
	CHECK(off == total);
	CHECK(h && sftp_close(h) == 0);
	double tr = now_monotonic() - t0;
	long grew = vm_hwm_kib() - hwm0;
	printf("# write_s %.3f\n# read_s %.3f\n# hwm_growth_kib %ld\n", tw, tr,
	       grew);
	/* In flight: 8 MiB of writes, 8 MiB of reads, a copy of each
	 * reply; far below the file. */
	CHECK(grew < 96 * 1024);
	free(b);
	free(r);
}

/* A lost connection in the middle of reads: an unchanged file reads on,
 * a changed one gives EIO (never other bytes). */
static void sc_reconnect(struct sftp *f)
{
	size_t size = 4 << 20;
	char *data = xmalloc(size);
	for (size_t i = 0; i < size; i++)
		data[i] = (char)(i * 7 + i / 4096);
	put_file(P("same"), data, size);
	put_file(P("changed"), data, size);
	struct sftp_file *h1 = NULL, *h2 = NULL, *w = NULL;
	char *buf = xmalloc(size);
	CHECK(sftp_open(f, P("same"), O_RDONLY, 0, &h1) == 0);
	CHECK(sftp_open(f, P("changed"), O_RDONLY, 0, &h2) == 0);
	CHECK(sftp_open(f, P("w"), O_WRONLY | O_CREAT, 0644, &w) == 0);
	if (!h1 || !h2 || !w)
		return;
	CHECK(sftp_read(h1, buf, 1 << 20, 0) == 1 << 20);
	CHECK(sftp_read(h2, buf, 1 << 20, 0) == 1 << 20);
	CHECK(sftp_write(w, "x", 1, 0) == 1);
	struct sftp_attr a;
	CHECK(sftp_fstat(w, &a) == 0);
	action("restart"); /* sshd killed (session gone), then started */
	/* Changed on the pod meanwhile: same size, another mtime. */
	struct stat st;
	stat(P("changed"), &st);
	struct timespec ts[2] = {{st.st_atime, 0}, {st.st_mtime + 10, 0}};
	utimensat(AT_FDCWD, P("changed"), ts, 0);

	ssize_t n = sftp_read(h1, buf + (1 << 20), size - (1 << 20), 1 << 20);
	CHECK(n == (ssize_t)(size - (1 << 20)));
	CHECK(!memcmp(buf, data, size));
	/* (What it read ahead before the loss is the file as it was at its
	 * open: past that, the pod is asked again.) */
	CHECK(sftp_read(h2, buf, 1 << 20, 3 << 20) == -EIO);
	CHECK(sftp_read(h2, buf, 1 << 20, 0) == -EIO);
	CHECK(sftp_write(w, "y", 1, 1) == -EIO);
	CHECK(sftp_close(h1) == 0);
	CHECK(sftp_close(h2) == -EIO);
	CHECK(sftp_close(w) == -EIO);
	/* Path operations just work on the new session. */
	CHECK(sftp_stat(f, P("same"), &a) == 0 && a.size == size);
	free(data);
	free(buf);
}

struct worker {
	struct sftp *f;
	int id, bad;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[64], buf[8192];
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof name, "c%d-%d", w->id, i);
		struct sftp_file *h = NULL;
		size_t len = (size_t)(w->id * 100 + i) % sizeof buf;
		memset(buf, 'a' + w->id, len);
		int rc = sftp_open(w->f, P(name), O_WRONLY | O_CREAT | O_TRUNC,
				   0644, &h);
		ssize_t n = rc ? 0 : sftp_write(h, buf, len, 0);
		int c = rc ? 0 : sftp_close(h);
		if (rc || n != (ssize_t)len || c) {
			printf("# %s: open %d write %zd close %d\n", name, rc,
			       n, c);
			w->bad++;
			continue;
		}
		struct sftp_attr a;
		rc = sftp_stat(w->f, P(name), &a);
		if (rc || a.size != len) {
			printf("# %s: stat %d size %llu of %zu\n", name, rc,
			       (unsigned long long)a.size, len);
			w->bad++;
		}
		rc = sftp_open(w->f, P(name), O_RDONLY, 0, &h);
		n = rc ? 0 : sftp_read(h, buf, sizeof buf, 0);
		c = rc ? 0 : sftp_close(h);
		if (rc || n != (ssize_t)len ||
		    (len && buf[len - 1] != 'a' + w->id) || c) {
			printf("# %s: open %d read %zd of %zu close %d\n", name,
			       rc, n, len, c);
			w->bad++;
		}
	}
	return NULL;
}

/* Many threads at once on the one channel. */
static void sc_concurrent(struct sftp *f)
{
	enum { N = 8 };
	pthread_t t[N];
	struct worker w[N];
	for (int i = 0; i < N; i++) {
		w[i] = (struct worker){f, i, 0};
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	int bad = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		bad += w[i].bad;
	}
	CHECK(bad == 0);
}

/* A pod nobody answers on: the connect error, at once. */
static void sc_unreachable(struct sftp *f)
{
	(void)f;
	struct ssh_opts o = {.known_hosts = arg("known_hosts", NULL),
			     .key_path = arg("key", NULL),
			     .key_explicit = true,
			     .timeout = 5};
	struct ssh_pool *p = ssh_pool_new(&o);
	char c[128];
	snprintf(c, sizeof c, "root@127.0.0.1 -p %s", arg("closed_port", "1"));
	struct sftp *g = sftp_new(p, "pod-b", c);
	struct sftp_attr a;
	CHECK(sftp_stat(g, "/", &a) == -EHOSTUNREACH);
	/* And again: a new attempt, the same answer. */
	CHECK(sftp_stat(g, "/", &a) == -EHOSTUNREACH);
	sftp_free(g);
	ssh_pool_free(p);
}

struct bulk {
	struct sftp *f;
	const char *path;
	size_t size;
	bool write, ok;
};

static void *bulk_main(void *arg)
{
	struct bulk *b = arg;
	size_t bs = 100000; /* not a multiple of anything */
	char *buf = xmalloc(bs);
	struct sftp_file *h = NULL;
	b->ok = sftp_open(b->f, b->path,
			  b->write ? O_WRONLY | O_CREAT | O_TRUNC : O_RDONLY,
			  0644, &h) == 0;
	for (size_t off = 0; b->ok && off < b->size; off += bs) {
		size_t n = bs < b->size - off ? bs : b->size - off;
		if (b->write) {
			for (size_t i = 0; i < n; i++)
				buf[i] = (char)((off + i) % 253);
			b->ok = sftp_write(h, buf, n, off) == (ssize_t)n;
		} else {
			b->ok = sftp_read(h, buf, n, off) == (ssize_t)n;
			for (size_t i = 0; b->ok && i < n; i++)
				b->ok = buf[i] == (char)((off + i) % 251);
		}
	}
	if (h && sftp_close(h))
		b->ok = false;
	free(buf);
	return NULL;
}

/* A big upload and a big download at once on the one channel. */
static void sc_duplex(struct sftp *f)
{
	size_t size = 64 << 20;
	char *data = xmalloc(size);
	for (size_t i = 0; i < size; i++)
		data[i] = (char)(i % 251);
	put_file(P("down"), data, size);
	struct bulk up = {f, P("up"), size, true, false};
	struct bulk down = {f, P("down"), size, false, false};
	pthread_t t1, t2;
	pthread_create(&t1, NULL, bulk_main, &up);
	pthread_create(&t2, NULL, bulk_main, &down);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	CHECK(up.ok);
	CHECK(down.ok);
	size_t n = 0;
	char *got = get_file(P("up"), &n);
	bool same = got && n == size;
	for (size_t i = 0; same && i < size; i++)
		same = got[i] == (char)(i % 253);
	CHECK(same);
	free(got);
	free(data);
}

struct par {
	struct sftp_file *h;
	const char *data;
	size_t size;
	int t, n;
	bool ok;
};

static void *par_main(void *arg)
{
	struct par *p = arg;
	size_t bs = 128 << 10;
	char *buf = xmalloc(bs);
	p->ok = true;
	for (size_t off = (size_t)p->t * bs; p->ok && off < p->size;
	     off += (size_t)p->n * bs) {
		size_t want = p->size - off < bs ? p->size - off : bs;
		p->ok = sftp_read(p->h, buf, bs, off) == (ssize_t)want &&
			!memcmp(buf, p->data + off, want);
	}
	free(buf);
	return NULL;
}

/* One file read by several threads at once, each its share of the
 * blocks in order (as the kernel's reads of one stream arrive through
 * several FUSE threads), and by one thread a little out of order. */
static void sc_parallel(struct sftp *f)
{
	size_t size = (24 << 20) + 12345;
	char *data = xmalloc(size);
	for (size_t i = 0; i < size; i++)
		data[i] = (char)(i * 13 + i / 65536);
	put_file(P("p"), data, size);
	struct sftp_file *h = NULL;
	CHECK(sftp_open(f, P("p"), O_RDONLY, 0, &h) == 0);
	if (!h)
		return;
	enum { N = 4 };
	pthread_t t[N];
	struct par p[N];
	for (int i = 0; i < N; i++) {
		p[i] = (struct par){h, data, size, i, N, false};
		pthread_create(&t[i], NULL, par_main, &p[i]);
	}
	bool ok = true;
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		ok = ok && p[i].ok;
	}
	CHECK(ok);
	/* Pairs swapped: 1 0 3 2 5 4 ..., then past the end. */
	size_t bs = 100000;
	char *buf = xmalloc(bs);
	ok = true;
	for (size_t k = 0; ok && k * bs < size; k++) {
		size_t blk = k ^ 1;
		size_t off = blk * bs;
		if (off >= size)
			continue;
		size_t want = size - off < bs ? size - off : bs;
		ok = sftp_read(h, buf, bs, off) == (ssize_t)want &&
		     !memcmp(buf, data + off, want);
	}
	CHECK(ok);
	CHECK(sftp_read(h, buf, bs, size) == 0);
	CHECK(sftp_read(h, buf, bs, size - 10) == 10);
	CHECK(sftp_close(h) == 0);
	free(buf);
	free(data);
}

/* Lists list_dir (made by the driver) and says how long it took. */
static void sc_list(struct sftp *f)
{
	const char *path = arg("list_dir", dir);
	char *home = NULL;
	CHECK(sftp_realpath(f, ".", &home) == 0); /* connected first */
	free(home);
	double t0 = now_monotonic();
	struct sftp_file *d = NULL;
	size_t total = 0;
	int rc = sftp_opendir(f, path, &d);
	CHECK(rc == 0);
	while (!rc) {
		struct sftp_dirent *e;
		size_t n;
		rc = sftp_readdir(d, &e, &n);
		if (!n)
			break;
		total += n;
		sftp_dirents_free(e, n);
	}
	CHECK(rc == 0);
	CHECK(d && sftp_close(d) == 0);
	printf("# list_s %.3f\n# entries %zu\n", now_monotonic() - t0, total);
}

struct chaos {
	struct sftp *f;
	int id, ops, odd;
	atomic_bool *stop;
};

static void *chaos_main(void *arg)
{
	struct chaos *c = arg;
	char name[64], buf[70000];
	memset(buf, 'c', sizeof buf);
	for (int i = 0; !atomic_load(c->stop); i++) {
		snprintf(name, sizeof name, "x%d-%d", c->id, i % 5);
		struct sftp_file *h = NULL;
		struct sftp_attr a;
		int rc[4] = {0};
		rc[0] = sftp_open(c->f, P(name), O_RDWR | O_CREAT | O_TRUNC,
				  0644, &h);
		if (!rc[0]) {
			ssize_t w = sftp_write(h, buf, sizeof buf, 0);
			rc[1] = w < 0 ? (int)w : 0;
			ssize_t r = sftp_read(h, buf, sizeof buf, 0);
			rc[2] = r < 0 ? (int)r : 0;
			rc[3] = sftp_close(h);
		}
		int st = sftp_stat(c->f, P(name), &a);
		for (int k = 0; k < 4; k++)
			if (rc[k] && rc[k] != -EIO && rc[k] != -EHOSTUNREACH &&
			    rc[k] != -ENOTCONN) {
				printf("# %s: call %d gave %d\n", name, k,
				       rc[k]);
				c->odd++;
			}
		if (st && st != -EIO && st != -EHOSTUNREACH && st != -ENOENT)
			c->odd++;
		c->ops++;
	}
	return NULL;
}

/* Many threads at work while the pod's sshd restarts under them: every
 * call ends (no hang), with success or a connection error, and the
 * client works again afterwards. */
static void sc_chaos(struct sftp *f)
{
	enum { N = 6 };
	pthread_t t[N];
	struct chaos c[N];
	atomic_bool stop;
	atomic_init(&stop, false);
	for (int i = 0; i < N; i++) {
		c[i] = (struct chaos){f, i, 0, 0, &stop};
		pthread_create(&t[i], NULL, chaos_main, &c[i]);
	}
	sleep_seconds(1);
	action("restart");
	sleep_seconds(1.5);
	atomic_store(&stop, true);
	int ops = 0, odd = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		ops += c[i].ops;
		odd += c[i].odd;
	}
	printf("# ops %d\n", ops);
	CHECK(odd == 0);
	struct sftp_attr a;
	CHECK(sftp_stat(f, dir, &a) == 0);
}

static double intr_at;
static bool intr_later(void *arg)
{
	(void)arg;
	return now_monotonic() >= intr_at;
}

/* A frozen pod: a wait ends at the caller's interruption, with EINTR. */
static void sc_interrupt(struct sftp *f)
{
	struct sftp_attr a;
	CHECK(sftp_stat(f, dir, &a) == 0);
	struct sftp_file *h = NULL;
	put_file(P("r"), "data", 4);
	CHECK(sftp_open(f, P("r"), O_RDONLY, 0, &h) == 0);
	action("freeze");
	sftp_set_interrupt(intr_later, NULL);
	intr_at = now_monotonic() + 0.5;
	double t0 = now_monotonic();
	CHECK(sftp_stat(f, dir, &a) == -EINTR);
	char buf[8];
	intr_at = now_monotonic() + 0.3;
	if (h)
		CHECK(sftp_read(h, buf, sizeof buf, 0) == -EINTR);
	printf("# intr_s %.2f\n", now_monotonic() - t0);
	sftp_set_interrupt(NULL, NULL);
	action("thaw");
	/* The pod answers again: the file reads. */
	if (h) {
		CHECK(sftp_read(h, buf, sizeof buf, 0) == 4);
		CHECK(sftp_close(h) == 0);
	}
}

/* Files and a job on the pod's one session, at the same time. */
static void sc_mixed(struct sftp *f, struct ssh_pool *p)
{
	size_t size = 32 << 20;
	char *data = xmalloc(size);
	for (size_t i = 0; i < size; i++)
		data[i] = (char)(i % 251);
	put_file(P("m"), data, size);
	struct ssh_cmd *c = NULL;
	CHECK(ssh_run(p, "pod-a", conn, "head -c 20000000 /dev/zero", -1, NULL,
		      NULL, &c) == 0);
	struct sftp_file *h = NULL;
	CHECK(sftp_open(f, P("m"), O_RDONLY, 0, &h) == 0);
	char *buf = xmalloc(size);
	size_t got = 0;
	while (h && got < size) {
		ssize_t n = sftp_read(h, buf + got, 1 << 17, got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	CHECK(got == size && !memcmp(buf, data, size));
	CHECK(h && sftp_close(h) == 0);
	CHECK(c && ssh_cmd_wait_done(c, 60, NULL, NULL));
	if (c) {
		CHECK(ssh_cmd_total(c) == 20000000);
		ssh_cmd_put(c);
	}
	free(buf);
	free(data);
}

static struct ssh_pool *pool;
static void sc_mixed_(struct sftp *f)
{
	sc_mixed(f, pool);
}

static const struct {
	const char *name;
	void (*fn)(struct sftp *f);
} scenarios[] = {
    {"unreachable", sc_unreachable},
    {"interrupt", sc_interrupt},
    {"mixed", sc_mixed_},
    {"duplex", sc_duplex},
    {"parallel", sc_parallel},
    {"list", sc_list},
    {"chaos", sc_chaos},
    {"ops", sc_ops},
    {"errors", sc_errors},
    {"full", sc_full},
    {"big", sc_big},
    {"reconnect", sc_reconnect},
    {"concurrent", sc_concurrent},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s SCENARIO key=value...\n", argv[0]);
		return 2;
	}
	n_args = argc - 2;
	args = argv + 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_init(1000, true);
	snprintf(conn, sizeof conn, "%s@%s -p %s", arg("user", "root"),
		 arg("host", "127.0.0.1"), arg("port", "22"));
	dir = arg("dir", "/tmp");
	struct ssh_opts o = {
	    .known_hosts = arg("known_hosts", NULL),
	    .key_path = arg("key", NULL),
	    .key_explicit = true,
	    .timeout = atof(arg("timeout", "10")),
	};
	struct ssh_pool *p = ssh_pool_new(&o);
	pool = p;
	struct sftp *f = sftp_new(p, "pod-a", conn);
	size_t i;
	for (i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
		if (!strcmp(scenarios[i].name, argv[1])) {
			scenarios[i].fn(f);
			break;
		}
	sftp_free(f);
	ssh_pool_free(p);
	log_shutdown();
	if (i == sizeof scenarios / sizeof scenarios[0]) {
		fprintf(stderr, "unknown scenario %s\n", argv[1]);
		return 2;
	}
	return t_done();
}
