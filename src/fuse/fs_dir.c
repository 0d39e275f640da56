/* fs_dir.c — directories: opendir takes the listing once, and readdir
 * and readdirplus serve it in as many requests as the kernel makes, with
 * attributes for what is not volatile. */
#include "fs_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "inodes.h"
#include "log.h"

/* ---- directories ---- */

static int add_name(void *ctx, const char *name)
{
	struct dirh *d = ctx;
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 32;
		d->at = xrealloc(d->at, d->cap * sizeof *d->at);
	}
	d->at[d->n++] = d->names.len;
	buf_add(&d->names, name, strlen(name) + 1);
	return 0;
}

void dirh_free(struct dirh *d)
{
	live_del(&d->live);
	free(d->path);
	node_release(&d->dir);
	buf_free(&d->names);
	free(d->at);
	free(d);
}

void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	cur = req;
	stats_count(ST_FUSE_OPENDIR);
	unsigned long gen = tree_generation(fs()->tree);
	struct buf path;
	buf_init(&path);
	int rc = ino_path(ino, &path);
	if (rc) {
		buf_free(&path);
		reply_err(req, rc);
		return;
	}
	struct dirh *d = xcalloc(1, sizeof *d);
	live_add(&live_dirs, &d->live);
	buf_init(&d->names);
	d->path = buf_steal(&path);
	rc = tree_resolve_dir(fs()->tree, d->path, &d->dir);
	if (rc == 0)
		rc = tree_list(fs()->tree, &d->dir, add_name, d);
	if (rc) {
		dirh_free(d);
		reply_err(req, rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	/* A listing this request fetched: the kernel is told of what it
	 * changed before `ls` goes on to stat what it lists. */
	if (tree_generation(fs()->tree) != gen)
		kc_sync();
	cur = NULL;
	if (fuse_reply_open(req, fi) == -ENOENT)
		dirh_free(d); /* opendir was interrupted: no releasedir */
}

void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	stats_count(ST_FUSE_RELEASEDIR);
	dirh_free((struct dirh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* The inode number a plain directory entry shows: the one the kernel
 * holds for it, if any. */
#define UNKNOWN_INO 0xffffffffu

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	cur = req;
	stats_count(ST_FUSE_READDIR);
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
	unsigned long gen = tree_generation(fs()->tree);
	char *out = xmalloc(size ? size : 1);
	size_t pos = 0;
	fuse_ino_t *given = NULL; /* inodes handed out with attributes */
	size_t n_given = 0;
	struct buf p; /* an entry's path */
	buf_init(&p);
	buf_printf(&p, "%s/", strcmp(d->path, "/") ? d->path : "");
	size_t dir_len = p.len;
	for (size_t i = off < 0 ? 0 : (size_t)off; i < d->n + 2; i++) {
		const char *name = i == 0   ? "."
				   : i == 1 ? ".."
					    : d->names.data + d->at[i - 2];
		size_t need =
		    plus ? fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0)
			 : fuse_add_direntry(req, NULL, 0, name, NULL, 0);
		if (pos + need > size)
			break;
		struct fuse_entry_param e;
		memset(&e, 0, sizeof e);
		e.attr.st_ino = i == 0 ? ino : UNKNOWN_INO;
		e.attr.st_mode = S_IFDIR;
		struct node n;
		if (i >= 2 && tree_child(fs()->tree, &d->dir, name, &n) == 0) {
			/* Volatile files get no attributes here: the kernel
			 * would keep those of a READDIRPLUS answer. */
			if (plus && !tree_volatile(&n) &&
			    fill_entry(ino, name, &n, &e) == 0) {
				given = xrealloc(given,
						 (n_given + 1) * sizeof *given);
				given[n_given++] = e.ino;
				/* Attributes given while the tree changed
				 * are taken back. */
				if (tree_generation(fs()->tree) != gen) {
					p.len = dir_len;
					buf_adds(&p, name);
					kc_push(p.data, false, true);
				}
			} else {
				memset(&e, 0, sizeof e);
				e.attr.st_mode = node_mode(&n);
				fuse_ino_t known = inodes_find(inos, ino, name);
				e.attr.st_ino = known ? known : UNKNOWN_INO;
			}
			node_release(&n);
		}
		if (plus)
			pos +=
			    fuse_add_direntry_plus(req, out + pos, size - pos,
						   name, &e, (off_t)(i + 1));
		else
			pos += fuse_add_direntry(req, out + pos, size - pos,
						 name, &e.attr, (off_t)(i + 1));
	}
	cur = NULL;
	if (fuse_reply_buf(req, out, pos) == -ENOENT)
		for (size_t i = 0; i < n_given; i++)
			unref(given[i]);
	free(given);
	free(out);
	buf_free(&p);
}

void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}
