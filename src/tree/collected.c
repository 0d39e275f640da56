/* collected.c — the tree's side of collect (collect.h): a live pod's
 * `collect` file (read-write, the owner's, as the guard files), and
 * history/<pod>/files/, what was brought back: a read-only directory tree
 * read from the state directory (files/<id>/, never following a link),
 * its regular files with their true sizes. A node under files/ carries its
 * path there in node->rel. */
#include "tree_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collect.h"
#include "log.h"

/* ---- pods/<pod>/collect ---- */

int r_collect(struct tree *t, const void *obj, struct buf *out)
{
	if (!t->o.collect) {
		buf_addc(out, '\n');
		return 0;
	}
	collect_render(t->o.collect, ((const struct pod *)obj)->id, out);
	return 0;
}

int w_collect(struct tree *t, const char *pod_id, const char *data, size_t len)
{
	if (!t->o.collect || !pod_id)
		return -EACCES;
	struct snap *s;
	int rc = cache_get(t->o.cache, SNAP_PODS, CACHE_HELD, &s);
	if (rc == -ENOENT)
		rc = cache_get(t->o.cache, SNAP_PODS, CACHE_TTL, &s);
	if (rc)
		return rc;
	const struct pod *p = snap_pod(s, pod_id);
	char *name = p ? xstrdup(p->dir) : NULL;
	snap_put(s);
	if (!name) {
		plog("write", pod_id, "refused: pod %s is gone", pod_id);
		return -ENOENT;
	}
	rc = collect_set(t->o.collect, pod_id, name, data, len);
	tell_pod_dirs(t, "/pods", name, pod_id);
	free(name);
	return rc;
}

/* A complete line that is refused fails the write() that wrote it. */
int c_collect(struct tree *t, const char *data, size_t len, size_t from)
{
	(void)t;
	size_t end = len;
	while (end && data[end - 1] != '\n')
		end--;
	if (end <= from)
		return 0;
	size_t start = from;
	while (start && data[start - 1] != '\n')
		start--;
	struct strlist l;
	struct buf why;
	buf_init(&why);
	int rc = collect_parse(data + start, end - start, &l, &why);
	if (rc)
		plog("write", "collect", "refused: %s", why.data);
	strlist_free(&l);
	buf_free(&why);
	return rc;
}

/* ---- history/<pod>/files/ ---- */

/* The node's file or directory under files/<id>/, opened: fd or -errno. */
static int open_rel(struct tree *t, const struct node *n, int flags)
{
	if (!t->o.collect || !n->pod_id)
		return -ENOENT;
	return collect_open(t->o.collect, n->pod_id, n->rel ? n->rel : "",
			    flags);
}

static int files_open(struct tree_handle *h, const struct node *n)
{
	int fd = open_rel(h->tree, n, O_RDONLY);
	if (fd < 0)
		return fd;
	int *p = xmalloc(sizeof *p);
	*p = fd;
	h->priv = p;
	return 0;
}

static int files_read(struct tree_handle *h, char *out, size_t size, off_t off)
{
	ssize_t n = pread(*(int *)h->priv, out, size, off);
	return n < 0 ? -errno : (int)n;
}

static void files_release(struct tree_handle *h)
{
	if (h->priv) {
		close(*(int *)h->priv);
		free(h->priv);
		h->priv = NULL;
	}
}

static int files_size(struct tree *t, const struct node *n, off_t *size)
{
	int fd = open_rel(t, n, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		return fd;
	struct stat st;
	int rc = fstat(fd, &st) ? -errno : 0;
	close(fd);
	*size = rc ? 0 : st.st_size;
	return rc;
}

static const struct file_hooks files_hooks = {
    .open = files_open,
    .read = files_read,
    .release = files_release,
    .size = files_size,
};

static const struct file_def collected_file = {
    .name = "", .flags = F_OWNER, .hooks = &files_hooks};

int step_files(struct tree *t, struct node *n, const char *name)
{
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -ENOENT;
	struct buf rel;
	buf_init(&rel);
	if (n->rel && *n->rel)
		buf_printf(&rel, "%s/", n->rel);
	buf_adds(&rel, name);
	free(n->rel);
	n->rel = buf_steal(&rel);
	int fd = open_rel(t, n, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		return fd == -ELOOP || fd == -ENOTDIR ? -ENOENT : fd;
	struct stat st;
	int rc = fstat(fd, &st) ? -errno : 0;
	close(fd);
	if (rc)
		return rc;
	n->mtime = st.st_mtime;
	if (S_ISDIR(st.st_mode))
		return 0; /* D_FILES still */
	if (!S_ISREG(st.st_mode))
		return -ENOENT;
	n->type = N_FILE;
	n->file = &collected_file;
	return 0;
}

int list_files(struct tree *t, const struct node *n, add_fn add, void *ctx)
{
	int fd = open_rel(t, n, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    (e->d_type == DT_DIR || e->d_type == DT_REG) &&
		    add(ctx, e->d_name))
			break;
	closedir(d);
	return 0;
}
