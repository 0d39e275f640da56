/* fs_make.c — making and removing: mkdir of pods/NAME rents (when it is
 * deliberate: intent.h), rmdir returns; nothing else can be made, removed
 * or renamed, and what is made inside a pod rented a moment ago by the
 * same process sends that pod back. */
#include "fs_int.h"

#include <errno.h>
#include <string.h>

#include "inodes.h"
#include "intent.h"
#include "log.h"

/* ---- making and removing ---- */

/* Pods rented here lately, and by whom: for the after-the-fact rule. */
static struct intent_recent recent = INTENT_RECENT_INIT;

/* Something new is being made at path, inside pods/x. When the process
 * that rented x a moment ago (or its child) makes it, that mkdir was made
 * on the way to something else (a copy): the pod goes back at once. */
static void made_inside(const char *op, const char *path)
{
	char *name;
	if (!intent_made_inside(&recent, caller()->pid, path, &name))
		return;
	plog(op, path,
	     "pod %s was rented a moment ago by the process that now creates "
	     "this inside it: that mkdir was made on the way to something "
	     "else, so the pod is returned",
	     name);
	struct buf dir;
	buf_init(&dir);
	buf_printf(&dir, "/pods/%s", name);
	int rc = tree_rmdir(fs()->tree, dir.data);
	if (rc)
		plog(op, dir.data, "returning pod %s failed (%s): rmdir it",
		     name, strerror(-rc));
	buf_free(&dir);
	free(name);
}

/* Only a deliberate mkdir of pods/NAME rents (intent.h); one made on the
 * way to something else is EPERM and sends nothing. */
static int do_mkdir(const char *path)
{
	int rc = caller_may(0, O_WRONLY);
	if (rc)
		return rc;
	static const char prefix[] = "/pods/";
	const char *name = path + sizeof prefix - 1;
	/* disks/NAME: the same intent rules as pods/NAME. */
	if (!strncmp(path, "/disks/", 7))
		name = path + 7;
	else if (strncmp(path, prefix, sizeof prefix - 1) || !*name ||
		 strchr(name, '/'))
		name = NULL;
	if (!name || !*name || strchr(name, '/')) {
		made_inside("mkdir", path);
		return tree_mkdir(fs()->tree, path);
	}
	pid_t pid = caller()->pid;
	struct buf why;
	buf_init(&why);
	if (intent_of_mkdir(pid, fs()->mountpoint, path, &why) ==
	    INTENT_INCIDENTAL) {
		plog("mkdir", path, "refused: %s; nothing was rented",
		     why.data);
		buf_free(&why);
		return -EPERM;
	}
	buf_free(&why);
	rc = tree_mkdir(fs()->tree, path);
	if (rc == 0 && strncmp(path, "/disks/", 7))
		intent_note_rent(&recent, pid, name);
	return rc;
}

void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)mode;
	cur = req;
	unsigned long gen = tree_generation(fs()->tree);
	struct buf path;
	buf_init(&path);
	int rc = child_path(parent, name, &path);
	if (rc == 0)
		rc = do_mkdir(path.data);
	kc_sync();
	if (rc)
		reply_err(req, rc);
	else
		reply_entry_of(req, parent, name, path.data, gen);
	buf_free(&path);
}

void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	cur = req;
	struct buf path;
	buf_init(&path);
	int rc = child_path(parent, name, &path);
	if (rc == 0)
		rc = caller_may(0, O_WRONLY);
	if (rc == 0) {
		rc = tree_rmdir(fs()->tree, path.data);
		kc_sync();
	}
	buf_free(&path);
	reply_err(req, rc);
}

void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	cur = req;
	struct buf path;
	buf_init(&path);
	struct node n;
	int rc = child_path(parent, name, &path);
	if (rc == 0 && (rc = tree_resolve(fs()->tree, path.data, &n)) == 0) {
		rc = n.type == N_DIR ? -EISDIR : n.dir == D_KEYS ? 0 : -EPERM;
		node_release(&n);
		/* ssh_keys/<key>: rm deletes the key (keyfiles.h) */
		if (rc == 0 && (rc = caller_may(0, O_WRONLY)) == 0) {
			rc = tree_unlink(fs()->tree, path.data);
			kc_sync();
		}
	}
	buf_free(&path);
	reply_err(req, rc);
}

/* open(O_CREAT) of a file that exists (`echo x > config`) arrives here
 * when the kernel has no entry cached: it is an open. Nothing new can be
 * created. */
void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	(void)mode;
	cur = req;
	struct buf path;
	buf_init(&path);
	struct node n;
	struct fuse_entry_param e;
	int rc = child_path(parent, name, &path);
	if (rc == 0 && (rc = tree_resolve(fs()->tree, path.data, &n)) == 0)
		node_release(&n);
	if (rc == -ENOENT) {
		made_inside("create", path.data);
		/* Only a new key in ssh_keys/ can be made (keyfiles.h). */
		rc = caller_may(0, O_WRONLY);
		if (rc == 0)
			rc = tree_key_create(fs()->tree, path.data);
	}
	if (rc == 0)
		rc = do_open(path.data, fi);
	if (rc == 0 && (rc = tree_resolve(fs()->tree, path.data, &n)) == 0) {
		rc = fill_entry(parent, name, &n, &e);
		node_release(&n);
	}
	if (rc && fi->fh) {
		do_release((struct handle *)(uintptr_t)fi->fh);
		fi->fh = 0;
	}
	buf_free(&path);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	cur = NULL;
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		do_release((struct handle *)(uintptr_t)fi->fh);
		unref(e.ino);
	}
}

/* mknod (other than of a regular file, which comes as create) and
 * symlink: nothing new can be made. */
static void refuse_new(fuse_req_t req, const char *op, fuse_ino_t parent,
		       const char *name)
{
	cur = req;
	struct buf path;
	buf_init(&path);
	struct node n;
	int rc = child_path(parent, name, &path);
	if (rc == 0 && (rc = tree_resolve(fs()->tree, path.data, &n)) == 0)
		node_release(&n);
	if (rc == -ENOENT)
		made_inside(op, path.data);
	buf_free(&path);
	reply_err(req, rc == 0 ? -EEXIST : rc == -ENOENT ? -EPERM : rc);
}

void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	      dev_t rdev)
{
	(void)mode;
	(void)rdev;
	refuse_new(req, "mknod", parent, name);
}

/* Only in ssh_keys/: `primary`, or ln -sfn's temporary name. */
void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		const char *name)
{
	cur = req;
	unsigned long gen = tree_generation(fs()->tree);
	struct buf path;
	buf_init(&path);
	int rc = child_path(parent, name, &path);
	if (rc == 0 && strncmp(path.data, "/ssh_keys/", 10)) {
		buf_free(&path);
		refuse_new(req, "symlink", parent, name);
		return;
	}
	if (rc == 0)
		rc = caller_may(0, O_WRONLY);
	if (rc == 0)
		rc = tree_symlink(fs()->tree, link, path.data);
	kc_sync();
	if (rc)
		reply_err(req, rc);
	else
		reply_entry_of(req, parent, name, path.data, gen);
	buf_free(&path);
}

/* Only a link renamed over ssh_keys/primary (ln -sfn) does anything. */
void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
	       fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	cur = req;
	struct buf from, to;
	buf_init(&from);
	buf_init(&to);
	int rc = flags & ~(unsigned)RENAME_NOREPLACE ? -EINVAL : 0;
	if (rc == 0)
		rc = child_path(parent, name, &from);
	if (rc == 0)
		rc = child_path(newparent, newname, &to);
	if (rc == 0)
		rc = caller_may(0, O_WRONLY);
	if (rc == 0)
		rc = tree_rename(fs()->tree, from.data, to.data);
	kc_sync();
	buf_free(&from);
	buf_free(&to);
	reply_err(req, rc);
}
