/* fs.c — FUSE operations over the tree, on libfuse's low-level API with
 * inode numbers primefs owns (inodes.h): each request's inode becomes a
 * path by walking parents, and the tree answers by path.
 *
 * Why the low-level API (issue 11, measured at 10,000 offers and 1,000
 * pods, ~216k entries): once a crawl had listed every directory
 * (READDIRPLUS makes a node per entry), the high-level API's per-path
 * node table held ~36 MiB (~177 bytes a node) for what the kernel
 * caches, and kept the daemon's peak RSS at 82 MiB, over the 64 MiB
 * goal; the listings themselves are ~18 MiB. inodes.c keeps about 42
 * bytes and the name per inode the kernel holds, and frees it at FORGET.
 * Measured after the move (bench/anchor.py, same machine): VmHWM after a
 * full crawl 70.9 -> 45.4 MiB; bench/scale.py's VmRSS after the cold crawl
 * 71.8 -> 43.5 MiB (its run peak, at a refresh that holds two offer
 * listings at once, is the cache's: 93 -> 89 MiB).
 * Owning the numbers also makes invalidation exact: a gone name is
 * invalidated in its own directory, not by dropping all under its top
 * directory, and entry and attribute timeouts are chosen per reply
 * (0 for attributes of volatile files).
 *
 * This file: the session (mount, loop, the handles the kernel left at
 * unmount), the request context every operation uses, and the table of
 * operations, which live in fs_attr.c (attributes and entries), fs_dir.c
 * (directories), fs_file.c (files and poll) and fs_make.c (making and
 * removing); fs_inval.c tells the kernel what changed. */
#include "fs_int.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "guards.h"
#include "inodes.h"
#include "lifecycle.h"
#include "log.h"

static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
struct live live_files = {&live_files, &live_files};
struct live live_dirs = {&live_dirs, &live_dirs};

void live_add(struct live *head, struct live *l)
{
	pthread_mutex_lock(&live_mu);
	l->prev = head;
	l->next = head->next;
	head->next->prev = l;
	head->next = l;
	pthread_mutex_unlock(&live_mu);
}

void live_del(struct live *l)
{
	pthread_mutex_lock(&live_mu);
	l->prev->next = l->next;
	l->next->prev = l->prev;
	pthread_mutex_unlock(&live_mu);
}

/* The first handle still on the list, or NULL. */
struct live *live_first(struct live *head)
{
	pthread_mutex_lock(&live_mu);
	struct live *l = head->next == head ? NULL : head->next;
	pthread_mutex_unlock(&live_mu);
	return l;
}

struct primefs *the_fs;
struct inodes *inos;
struct fuse_session *the_se;

struct primefs *fs(void)
{
	return the_fs;
}

/* The request this thread answers, for interrupted() and the caller's
 * uid and pid; NULL outside a request (and once it is answered). */
__thread fuse_req_t cur;

bool interrupted(void *arg)
{
	(void)arg;
	return cur && fuse_req_interrupted(cur);
}

const struct fuse_ctx *caller(void)
{
	static const struct fuse_ctx none;
	return cur ? fuse_req_ctx(cur) : &none;
}

/* Every reply goes through these: the request is gone once answered. */
int reply_err(fuse_req_t req, int rc)
{
	cur = NULL;
	return fuse_reply_err(req, rc < 0 ? -rc : rc);
}

/* Defence in depth behind default_permissions (main.c always mounts with
 * it): a caller other than the mounting user or root gets no more than
 * the bits node_mode() gives others, for an access mode O_RDONLY,
 * O_WRONLY or O_RDWR. A change to the tree (mkdir, rmdir) passes mode 0. */
int caller_may(mode_t mode, int acc)
{
	uid_t uid = caller()->uid;
	if (uid == getuid() || uid == 0)
		return 0;
	if (acc != O_WRONLY && !(mode & S_IROTH))
		return -EACCES;
	if (acc != O_RDONLY && !(mode & S_IWOTH))
		return -EACCES;
	return 0;
}

/* The path of an inode the kernel holds, appended to out; -ENOENT when
 * primefs does not know it. */
int ino_path(fuse_ino_t ino, struct buf *out)
{
	return inodes_path(inos, ino, out) ? 0 : -ENOENT;
}

/* The path of name in directory parent. */
int child_path(fuse_ino_t parent, const char *name, struct buf *out)
{
	int rc = ino_path(parent, out);
	if (rc)
		return rc;
	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	if (out->len > 1)
		buf_addc(out, '/');
	buf_adds(out, name);
	return 0;
}

/* ---- the session ---- */

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* A reader waiting for a listing gives up when its request is. */
	cache_set_interrupt(fs()->cache, interrupted, NULL);
	/* Threads start here, after the daemon has forked. */
	guards_start(fs()->guards);
	if (fs()->life)
		lifecycle_start(fs()->life);
	/* O_TRUNC arrives with open, not as a separate truncate. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* ls -l and find: names and attributes in one request. */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)
		conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
	/* The kernel keeps names and attributes for the shortest freshness
	 * window (per reply: fill_entry, reply_attr_of): what primefs learns
	 * meanwhile (a listing that differs, its own mkdir and rmdir under
	 * both of a pod's names, refresh, config and guard writes) is
	 * invalidated by kc_main. No negative entries: a name that appears
	 * needs nothing invalidated. Contents are cached only where
	 * tree_cacheable says so. */
	kc_start();
	tree_set_changed(fs()->tree, kc_changed, NULL);
}

static void ll_destroy(void *userdata)
{
	(void)userdata;
	kc_stop();
}

/* ---- operations the kernel sends with a directory locked ---- */

/* Each holds the directory's lock registered while primefs answers it, so
 * that no invalidation waits for it (fs_inval.c). */
static void locked_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	kc_dir_enter(parent);
	pfs_lookup(req, parent, name);
	kc_dir_leave(parent);
}

static void locked_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			   int to_set, struct fuse_file_info *fi)
{
	kc_dir_enter(ino);
	pfs_setattr(req, ino, attr, to_set, fi);
	kc_dir_leave(ino);
}

static void locked_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
			 mode_t mode, dev_t rdev)
{
	kc_dir_enter(parent);
	pfs_mknod(req, parent, name, mode, rdev);
	kc_dir_leave(parent);
}

static void locked_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
			 mode_t mode)
{
	kc_dir_enter(parent);
	pfs_mkdir(req, parent, name, mode);
	kc_dir_leave(parent);
}

static void locked_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	kc_dir_enter(parent);
	pfs_unlink(req, parent, name);
	kc_dir_leave(parent);
}

/* The victim's lock too: names under it wait for the rmdir. */
static void locked_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_ino_t victim = inodes_find(inos, parent, name);
	kc_dir_enter(parent);
	if (victim)
		kc_dir_enter(victim);
	pfs_rmdir(req, parent, name);
	if (victim)
		kc_dir_leave(victim);
	kc_dir_leave(parent);
}

static void locked_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			   const char *name)
{
	kc_dir_enter(parent);
	pfs_symlink(req, link, parent, name);
	kc_dir_leave(parent);
}

static void locked_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			  mode_t mode, struct fuse_file_info *fi)
{
	kc_dir_enter(parent);
	pfs_create(req, parent, name, mode, fi);
	kc_dir_leave(parent);
}

static void locked_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	kc_dir_enter(ino);
	pfs_readdir(req, ino, size, off, fi);
	kc_dir_leave(ino);
}

static void locked_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			       off_t off, struct fuse_file_info *fi)
{
	kc_dir_enter(ino);
	pfs_readdirplus(req, ino, size, off, fi);
	kc_dir_leave(ino);
}

/* rename is refused at once outside a pod's files: it registers nothing.
 * Under a pod's .fs and .home, every operation is the pod's (fs_pod.c):
 * the pfs_* entries hand the tree's paths to the ll_* operations. */
static const struct fuse_lowlevel_ops ops = {
    .init = ll_init,
    .destroy = ll_destroy,
    .lookup = locked_lookup,
    .forget = ll_forget,
    .forget_multi = ll_forget_multi,
    .getattr = pfs_getattr,
    .setattr = locked_setattr,
    .readlink = pfs_readlink,
    .mknod = locked_mknod,
    .mkdir = locked_mkdir,
    .unlink = locked_unlink,
    .rmdir = locked_rmdir,
    .symlink = locked_symlink,
    .rename = pfs_rename,
    .open = pfs_open,
    .read = pfs_read,
    .write = pfs_write,
    .flush = pfs_flush,
    .release = pfs_release,
    .opendir = pfs_opendir,
    .readdir = locked_readdir,
    .readdirplus = locked_readdirplus,
    .releasedir = pfs_releasedir,
    .statfs = pfs_statfs,
    .create = locked_create,
    .poll = ll_poll,
    .link = pfs_link,
    .fsync = pfs_fsync,
    .setxattr = pfs_setxattr,
    .getxattr = pfs_getxattr,
    .listxattr = pfs_listxattr,
    .removexattr = pfs_removexattr,
};

void fs_help(void)
{
	printf("FUSE options:\n");
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

int fs_main(struct fuse_args *args, struct primefs *pf)
{
	struct fuse_cmdline_opts o;
	if (fuse_parse_cmdline(args, &o) != 0)
		return 1;
	int rc = 0;
	if (!o.mountpoint) {
		fprintf(stderr, "error: no mountpoint specified\n");
		rc = 2;
		goto out;
	}
	the_fs = pf;
	inos = inodes_new();
	stats_add(ST_FUSE_INODES, (long)inodes_count(inos));
	the_se = fuse_session_new(args, &ops, sizeof ops, pf);
	if (!the_se) {
		rc = 3;
		goto out_inos;
	}
	if (fuse_session_mount(the_se, o.mountpoint)) {
		rc = 4;
		goto out_se;
	}
	if (fuse_daemonize(o.foreground)) {
		rc = 5;
		goto out_mount;
	}
	if (fuse_set_signal_handlers(the_se)) {
		rc = 6;
		goto out_mount;
	}
	int lrc;
	if (o.singlethread) {
		lrc = fuse_session_loop(the_se);
	} else {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(cfg, (unsigned)o.clone_fd);
		if (o.max_idle_threads != UINT_MAX) /* -1: libfuse's default */
			fuse_loop_cfg_set_idle_threads(cfg, o.max_idle_threads);
		fuse_loop_cfg_set_max_threads(cfg, o.max_threads);
		lrc = fuse_session_loop_mt(the_se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	if (lrc < 0) /* > 0: the signal that asked it to stop, a clean end */
		rc = 7;
	for (struct live *l; (l = live_first(&live_files));)
		do_release((struct handle *)((char *)l -
					     offsetof(struct handle, live)));
	for (struct live *l; (l = live_first(&live_dirs));)
		dirh_free(
		    (struct dirh *)((char *)l - offsetof(struct dirh, live)));
	fuse_remove_signal_handlers(the_se);
out_mount:
	fuse_session_unmount(the_se);
out_se:
	fuse_session_destroy(the_se);
	the_se = NULL;
out_inos:
	inodes_free(inos);
	inos = NULL;
out:
	free(o.mountpoint);
	return rc;
}
