/* collect.c — see collect.h: the lists (parsed, checked, kept one file per
 * pod key in collect/) and the files brought back (files/<id>/). Only
 * local, small files are touched under the lock; the copying itself is in
 * collect_copy.c. */
#include "collect_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "model.h"

/* ---- parsing ---- */

static void add_entry(struct strlist *out, const char *s, size_t n)
{
	out->v = xrealloc(out->v, (out->n + 1) * sizeof *out->v);
	out->v[out->n++] = xstrndup(s, n);
}

/* One entry (trimmed): normalized into out, or the reason it is refused. */
static const char *one(const char *s, size_t n, struct strlist *out)
{
	if (s[0] == '/' || s[0] == '~')
		return "an absolute path (name paths relative to the pod's "
		       "home)";
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return "a control character";
	struct buf b;
	buf_init(&b);
	const char *why = NULL;
	for (size_t i = 0; i < n && !why;) {
		size_t j = i;
		while (j < n && s[j] != '/')
			j++;
		size_t len = j - i;
		if (len == 2 && !memcmp(s + i, "..", 2))
			why = "a '..' component (only paths under the pod's "
			      "home can be collected)";
		else if (len > 255)
			why = "a name over 255 bytes";
		else if (len && !(len == 1 && s[i] == '.')) {
			if (b.len)
				buf_addc(&b, '/');
			buf_add(&b, s + i, len);
		}
		i = j + 1;
	}
	if (!why && !b.len)
		why = "no path (name what to bring back: results/, *.json)";
	if (!why)
		add_entry(out, b.data, b.len);
	buf_free(&b);
	return why;
}

int collect_parse(const char *text, size_t len, struct strlist *out,
		  struct buf *why)
{
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && text[j] != '\n' && text[j] != ',')
			j++;
		size_t a = i, z = j;
		while (a < z &&
		       (text[a] == ' ' || text[a] == '\t' || text[a] == '\r'))
			a++;
		while (z > a && (text[z - 1] == ' ' || text[z - 1] == '\t' ||
				 text[z - 1] == '\r'))
			z--;
		if (z > a) {
			const char *bad = one(text + a, z - a, out);
			if (bad) {
				buf_printf(why, "'%.*s' is refused: %s",
					   (int)(z - a), text + a, bad);
				strlist_free(out);
				memset(out, 0, sizeof *out);
				return -EINVAL;
			}
		}
		i = j + 1;
	}
	return 0;
}

/* ---- the lists kept ---- */

struct collect *collect_new(const struct collect_opts *o)
{
	struct collect *c = xcalloc(1, sizeof *c);
	c->o = *o;
	pthread_mutex_init(&c->mu, NULL);
	c->list_fd = mkdir_p(o->dir_fd, "collect", false);
	c->files_fd = mkdir_p(o->dir_fd, "files", false);
	c->tmp_fd = c->files_fd >= 0 ? mkdir_p(c->files_fd, ".tmp", false)
				     : c->files_fd;
	if (c->list_fd < 0 || c->files_fd < 0 || c->tmp_fd < 0)
		plog("collect", "/",
		     "cannot keep collect lists or files in the state "
		     "directory: %s; nothing is collected",
		     strerror(-(c->list_fd < 0	  ? c->list_fd
				: c->files_fd < 0 ? c->files_fd
						  : c->tmp_fd)));
	/* What a crash left half brought back is no file of anyone's. */
	int fd = c->tmp_fd >= 0 ? openat(c->tmp_fd, ".", O_RDONLY | O_DIRECTORY)
				: -1;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				unlinkat(c->tmp_fd, e->d_name, 0);
		closedir(d);
	} else if (fd >= 0)
		close(fd);
	return c;
}

void collect_free(struct collect *c)
{
	if (!c)
		return;
	if (c->list_fd >= 0)
		close(c->list_fd);
	if (c->files_fd >= 0)
		close(c->files_fd);
	if (c->tmp_fd >= 0)
		close(c->tmp_fd);
	for (size_t i = 0; i < c->n_done; i++)
		free(c->done[i]);
	free(c->done);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* Under c->mu: the list file's content ("" if none). */
static void read_list(struct collect *c, const char *key, struct buf *out)
{
	if (c->list_fd < 0 || !safe_name(key))
		return;
	int fd = openat_nofollow(c->list_fd, key, O_RDONLY, 0);
	if (fd < 0)
		return;
	char tmp[4096];
	ssize_t n;
	while ((n = read(fd, tmp, sizeof tmp)) > 0)
		buf_add(out, tmp, (size_t)n);
	close(fd);
}

/* Under c->mu: the index of key among the pods brought back, or -1. */
static long done_at(struct collect *c, const char *key)
{
	for (size_t i = 0; i < c->n_done; i++)
		if (!strcmp(c->done[i], key))
			return (long)i;
	return -1;
}

static void undone(struct collect *c, const char *key)
{
	long i = done_at(c, key);
	if (i >= 0) {
		free(c->done[i]);
		c->done[i] = c->done[--c->n_done];
	}
}

bool collect_mark_done(struct collect *c, const char *id)
{
	pthread_mutex_lock(&c->mu);
	bool was = done_at(c, id) >= 0;
	if (!was) {
		c->done = xrealloc(c->done, (c->n_done + 1) * sizeof *c->done);
		c->done[c->n_done++] = xstrdup(id);
	}
	pthread_mutex_unlock(&c->mu);
	return was;
}

void collect_stop(struct collect *c)
{
	if (c)
		atomic_store(&c->stopping, true);
}

/* Under c->mu: the list saved (none when empty). 0 or -errno. */
static int save(struct collect *c, const char *key, const struct strlist *l)
{
	if (c->list_fd < 0)
		return c->list_fd;
	if (!safe_name(key))
		return -EINVAL;
	if (!l->n) {
		if (unlinkat(c->list_fd, key, 0) && errno != ENOENT)
			return -errno;
		return 0;
	}
	struct buf b;
	buf_init(&b);
	for (size_t i = 0; i < l->n; i++)
		buf_printf(&b, "%s\n", l->v[i]);
	int rc = atomic_write_file(c->list_fd, key, b.data, b.len);
	buf_free(&b);
	return rc;
}

void collect_list(struct collect *c, const char *key, struct strlist *out)
{
	struct buf b, why;
	buf_init(&b);
	buf_init(&why);
	pthread_mutex_lock(&c->mu);
	read_list(c, key, &b);
	pthread_mutex_unlock(&c->mu);
	if (collect_parse(b.data ? b.data : "", b.len, out, &why))
		memset(out, 0, sizeof *out);
	buf_free(&b);
	buf_free(&why);
}

int collect_set(struct collect *c, const char *key, const char *name,
		const char *text, size_t len)
{
	struct buf why, path;
	buf_init(&why);
	buf_init(&path);
	buf_printf(&path, "/pods/%s/collect", name);
	struct strlist l;
	int rc = collect_parse(text, len, &l, &why);
	if (rc) {
		plog("write", path.data,
		     "%s; write paths relative to the pod's home, one a line "
		     "or comma-separated (results/, logs/*.txt)",
		     why.data);
	} else {
		pthread_mutex_lock(&c->mu);
		rc = save(c, key, &l);
		undone(c, key); /* a new list: brought back again */
		pthread_mutex_unlock(&c->mu);
		if (rc)
			plog("write", path.data,
			     "cannot keep the collect list in the state "
			     "directory: %s (it is as it was)",
			     strerror(-rc));
	}
	strlist_free(&l);
	buf_free(&why);
	buf_free(&path);
	return rc;
}

void collect_arm(struct collect *c, const char *key, const char *text)
{
	if (!c || !text || !*text)
		return;
	struct buf why;
	buf_init(&why);
	struct strlist l;
	int rc = collect_parse(text, strlen(text), &l, &why);
	if (rc == 0) {
		pthread_mutex_lock(&c->mu);
		rc = save(c, key, &l);
		pthread_mutex_unlock(&c->mu);
	}
	if (rc)
		plog("mkdir", key, "the template's collect is not kept: %s",
		     why.len ? why.data : strerror(-rc));
	strlist_free(&l);
	buf_free(&why);
}

void collect_render(struct collect *c, const char *key, struct buf *out)
{
	size_t before = out->len;
	if (c) {
		pthread_mutex_lock(&c->mu);
		read_list(c, key, out);
		pthread_mutex_unlock(&c->mu);
	}
	if (out->len == before)
		buf_addc(out, '\n');
}

void collect_rekey(struct collect *c, const char *from, const char *to)
{
	if (!c || c->list_fd < 0 || !strcmp(from, to) || !safe_name(from) ||
	    !safe_name(to))
		return;
	pthread_mutex_lock(&c->mu);
	struct buf b;
	buf_init(&b);
	read_list(c, from, &b);
	/* The pod's file first: a crash between leaves both, and the pod's
	 * (written last by a user, or this one) wins. */
	int rc = 0;
	if (b.len && faccessat(c->list_fd, to, F_OK, AT_SYMLINK_NOFOLLOW))
		rc = atomic_write_file(c->list_fd, to, b.data, b.len);
	if (rc == 0)
		unlinkat(c->list_fd, from, 0);
	pthread_mutex_unlock(&c->mu);
	buf_free(&b);
}

void collect_forget(struct collect *c, const char *key)
{
	if (!c || c->list_fd < 0 || !safe_name(key))
		return;
	pthread_mutex_lock(&c->mu);
	unlinkat(c->list_fd, key, 0);
	undone(c, key);
	pthread_mutex_unlock(&c->mu);
}

char *collect_tmp_name(struct collect *c, const char *id)
{
	pthread_mutex_lock(&c->mu);
	unsigned long n = ++c->tmp_seq;
	pthread_mutex_unlock(&c->mu);
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "%s.%ld.%lu", id, (long)getpid(), n);
	return buf_steal(&b);
}

int collect_open(struct collect *c, const char *id, const char *rel, int flags)
{
	if (!c || c->files_fd < 0)
		return -ENOENT;
	if (!safe_name(id) || id[0] == '.')
		return -ENOENT;
	struct buf p;
	buf_init(&p);
	buf_adds(&p, id);
	if (rel && *rel)
		buf_printf(&p, "/%s", rel);
	int fd = openat_nofollow(c->files_fd, p.data, flags, 0);
	buf_free(&p);
	return fd;
}
