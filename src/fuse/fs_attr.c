/* fs_attr.c — attributes and entries: lookup, forget, getattr, setattr,
 * readlink and statfs. Each answer says how long the kernel may keep it
 * (entries for the freshness window, attributes of volatile files not at
 * all), and one made while the tree changed is taken back (fs_inval.c). */
#include "fs_int.h"

#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "inodes.h"
#include "log.h"

/* ---- attributes and entries ---- */

/* A node's attributes; 0 or -errno. */
static int node_stat(struct node *n, struct stat *st)
{
	int rc = 0;
	memset(st, 0, sizeof *st);
	st->st_mode = node_mode(n);
	st->st_nlink = n->type == N_DIR ? 2 : 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_mtime = st->st_ctime = st->st_atime = n->mtime;
	st->st_blksize = 4096;
	struct buf b;
	buf_init(&b);
	off_t size = 0;
	if (n->type == N_LINK)
		rc = tree_readlink(fs()->tree, n, &b);
	else if (n->type == N_FILE && n->file->hooks && n->file->hooks->size)
		rc = n->file->hooks->size(fs()->tree, n, &size);
	else if (n->type == N_FILE &&
		 !(n->file->flags & (F_STREAM | F_WRITE_ONLY)) &&
		 (rc = tree_render_held(fs()->tree, n, &b)) == -EAGAIN)
		rc = 0; /* never fetched: size 0, not kept (tree_volatile) */
	if (b.len)
		size = (off_t)b.len;
	st->st_size = size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	buf_free(&b);
	return rc;
}

/* The kernel keeps an attribute answer this long: volatile files' not at
 * all (tree_volatile), the rest for the freshness window. */
static double attr_ttl(const struct node *n)
{
	return tree_volatile(n) ? 0 : fs()->kernel_ttl;
}

/* The entry of `name` in parent for node n: its attributes, and its inode
 * counted once more (the reply hands the kernel a lookup). 0 or -errno. */
int fill_entry(fuse_ino_t parent, const char *name, struct node *n,
	       struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	int rc = node_stat(n, &e->attr);
	if (rc)
		return rc;
	uint64_t gen;
	bool added;
	fuse_ino_t ino = inodes_ref(inos, parent, name, &gen, &added);
	if (!ino)
		return -ENOENT;
	if (added)
		stats_add(ST_FUSE_INODES, 1);
	e->ino = ino;
	e->generation = gen;
	e->attr.st_ino = ino;
	e->entry_timeout = fs()->kernel_ttl;
	e->attr_timeout = attr_ttl(n);
	return 0;
}

/* A lookup the kernel will not have (its reply failed): counted back. */
void unref(fuse_ino_t ino)
{
	size_t freed = inodes_forget(inos, ino, 1);
	if (freed)
		stats_add(ST_FUSE_INODES, -(long)freed);
}

/* Replies with the entry of path (name in parent), or the error. An answer
 * made while the tree changed is taken back a moment later; a listing this
 * request fetched is told to the kernel before it returns. */
void reply_entry_of(fuse_req_t req, fuse_ino_t parent, const char *name,
		    const char *path, unsigned long gen)
{
	struct node n;
	struct fuse_entry_param e;
	int rc = tree_resolve(fs()->tree, path, &n);
	if (rc == 0) {
		rc = fill_entry(parent, name, &n, &e);
		node_release(&n);
	}
	if (tree_generation(fs()->tree) != gen) {
		if (rc == 0)
			kc_push(path, true, true);
		kc_sync();
	}
	if (rc) {
		reply_err(req, rc);
		return;
	}
	cur = NULL;
	if (fuse_reply_entry(req, &e) == -ENOENT)
		unref(e.ino);
}

void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	cur = req;
	stats_count(ST_FUSE_LOOKUP);
	unsigned long gen = tree_generation(fs()->tree);
	struct buf path;
	buf_init(&path);
	int rc = child_path(parent, name, &path);
	if (rc)
		reply_err(req, rc);
	else
		reply_entry_of(req, parent, name, path.data, gen);
	buf_free(&path);
}

static void forget_one(fuse_ino_t ino, uint64_t nlookup)
{
	stats_count(ST_FUSE_FORGET);
	size_t freed = inodes_forget(inos, ino, nlookup);
	if (freed)
		stats_add(ST_FUSE_INODES, -(long)freed);
}

void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(ino, nlookup);
	fuse_reply_none(req);
}

void ll_forget_multi(fuse_req_t req, size_t count,
		     struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		forget_one(forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/* The attributes of path, for GETATTR and SETATTR's answer. */
void reply_attr_of(fuse_req_t req, fuse_ino_t ino, const char *path,
		   unsigned long gen)
{
	struct node n;
	struct stat st;
	double ttl = 0;
	int rc = tree_resolve(fs()->tree, path, &n);
	if (rc == 0) {
		rc = node_stat(&n, &st);
		ttl = attr_ttl(&n);
		node_release(&n);
	}
	st.st_ino = ino;
	/* The kernel keeps this answer; one made while the tree changed is
	 * taken back a moment later, and a listing this request fetched is
	 * told to the kernel before it returns (GETATTR holds no lock of a
	 * directory). */
	if (tree_generation(fs()->tree) != gen) {
		if (rc == 0)
			kc_push(path, false, true);
		kc_sync();
	}
	if (rc) {
		reply_err(req, rc);
		return;
	}
	cur = NULL;
	fuse_reply_attr(req, &st, ttl);
}

void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	cur = req;
	stats_count(ST_FUSE_GETATTR);
	unsigned long gen = tree_generation(fs()->tree);
	struct buf path;
	buf_init(&path);
	int rc = ino_path(ino, &path);
	if (rc)
		reply_err(req, rc);
	else
		reply_attr_of(req, ino, path.data, gen);
	buf_free(&path);
}

void ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
	cur = req;
	struct buf path, b;
	buf_init(&path);
	buf_init(&b);
	struct node n;
	int rc = ino_path(ino, &path);
	if (rc == 0 && (rc = tree_resolve(fs()->tree, path.data, &n)) == 0) {
		rc = tree_readlink(fs()->tree, &n, &b);
		node_release(&n);
	}
	if (rc) {
		reply_err(req, rc);
	} else {
		buf_addc(&b, '\0');
		cur = NULL;
		fuse_reply_readlink(req, b.data);
	}
	buf_free(&b);
	buf_free(&path);
}

/* Modes are primefs's to say, and none can change: a chmod to another
 * mode is EPERM (as /proc says for modes that are the kernel's), whoever
 * asks and whatever the object, pod directories included, so no tool is
 * told a mode took that did not. A chmod to the mode the object has (cp -p,
 * install -m of that mode) changes nothing and claims nothing: 0. */
static int do_chmod(const char *path, mode_t mode)
{
	struct node n;
	int rc = tree_resolve(fs()->tree, path, &n);
	if (rc)
		return rc;
	bool same = (mode & 07777) == (node_mode(&n) & 07777);
	node_release(&n);
	return same ? 0 : -EPERM;
}

/* chmod, chown, truncate and utimens in one request, in that order; the
 * first that fails is the answer. Owners and times are primefs's: EPERM. */
void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi)
{
	cur = req;
	unsigned long gen = tree_generation(fs()->tree);
	struct buf path;
	buf_init(&path);
	int rc = ino_path(ino, &path);
	if (rc == 0 && (to_set & FUSE_SET_ATTR_MODE))
		rc = do_chmod(path.data, attr->st_mode);
	if (rc == 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		rc = -EPERM;
	if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE))
		rc =
		    do_truncate(path.data, attr->st_size,
				fi ? (struct handle *)(uintptr_t)fi->fh : NULL);
	if (rc == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)))
		rc = -EPERM;
	if (rc)
		reply_err(req, rc);
	else
		reply_attr_of(req, ino, path.data, gen);
	buf_free(&path);
}

void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino; /* never fetches anything */
	struct statvfs st;
	memset(&st, 0, sizeof st);
	st.f_bsize = 4096;
	st.f_frsize = 4096;
	st.f_namemax = 255;
	fuse_reply_statfs(req, &st);
}
