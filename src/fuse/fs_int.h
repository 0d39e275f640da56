/* fs_int.h — what the files of the FUSE layer share: the session's
 * globals and request context (fs.c), the invalidation queue
 * (fs_inval.c), and the operations the table in fs.c names (fs_attr.c,
 * fs_dir.c, fs_file.c, fs_make.c). Nothing outside src/fuse includes it. */
#ifndef PRIMEFS_FS_INT_H
#define PRIMEFS_FS_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fs.h"

struct inodes;

/* ---- the session (fs.c) ---- */

/* Every open file and directory handle. At unmount the kernel may leave
 * RELEASE and RELEASEDIR requests unread when the loop ends: what is left
 * here then is released as those would have (fs_main). */
struct live {
	struct live *prev, *next;
};
extern struct live live_files, live_dirs;
void live_add(struct live *head, struct live *l);
void live_del(struct live *l);
/* The first handle still on the list, or NULL. */
struct live *live_first(struct live *head);

extern struct primefs *the_fs;
extern struct inodes *inos;
extern struct fuse_session *the_se;
struct primefs *fs(void);

/* The request this thread answers, for interrupted() and the caller's
 * uid and pid; NULL outside a request (and once it is answered). */
extern __thread fuse_req_t cur;
bool interrupted(void *arg);
const struct fuse_ctx *caller(void);
/* Every reply goes through these: the request is gone once answered. */
int reply_err(fuse_req_t req, int rc);
/* 0, or -EACCES for a caller other than the mounting user or root that
 * the mode's bits for others do not let in (acc: O_RDONLY, O_WRONLY or
 * O_RDWR; a change to the tree passes mode 0). */
int caller_may(mode_t mode, int acc);
/* The path of an inode the kernel holds, appended to out; -ENOENT when
 * primefs does not know it. */
int ino_path(fuse_ino_t ino, struct buf *out);
/* The path of name in directory parent. */
int child_path(fuse_ino_t parent, const char *name, struct buf *out);

/* ---- kernel caching (fs_inval.c; its header says who may invalidate
 * what) ---- */

/* Queues path to be invalidated (its inode; with gone, its entry too),
 * at once or, with late, a moment after the reply being made. */
void kc_push(const char *path, bool gone, bool late);
/* The tree's changed hook (tree.h). */
void kc_changed(void *arg, const char *path, bool gone);
void kc_start(void);
void kc_stop(void);
/* The kernel holds directory ino's lock for the request this thread
 * answers, from enter until leave (after its reply). */
void kc_dir_enter(fuse_ino_t ino);
void kc_dir_leave(fuse_ino_t ino);
/* Returns once the kernel has been told what was queued so far, but for
 * gone names in directories locked for requests in progress. */
void kc_sync(void);

/* ---- attributes and entries (fs_attr.c) ---- */

/* The entry of `name` in parent for node n: its attributes, and its inode
 * counted once more (the reply hands the kernel a lookup). 0 or -errno. */
int fill_entry(fuse_ino_t parent, const char *name, struct node *n,
	       struct fuse_entry_param *e);
/* A lookup the kernel will not have (its reply failed): counted back. */
void unref(fuse_ino_t ino);
/* Replies with the entry of path (name in parent), or the error. */
void reply_entry_of(fuse_req_t req, fuse_ino_t parent, const char *name,
		    const char *path, unsigned long gen);
/* The attributes of path, for GETATTR and SETATTR's answer. */
void reply_attr_of(fuse_req_t req, fuse_ino_t ino, const char *path,
		   unsigned long gen);

void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void ll_forget_multi(fuse_req_t req, size_t count,
		     struct fuse_forget_data *forgets);
void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ll_readlink(fuse_req_t req, fuse_ino_t ino);
void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi);
void ll_statfs(fuse_req_t req, fuse_ino_t ino);

/* ---- directories (fs_dir.c) ---- */

/* An open directory: its names as of opendir, so that a listing read in
 * several requests is one listing. Offsets: 1 after ".", 2 after "..",
 * k + 3 after names[k]. */
struct dirh {
	struct live live;
	char *path;
	struct node dir;  /* with the listing the names come from */
	struct buf names; /* each NUL-ended */
	size_t *at;	  /* where each starts in names */
	size_t n, cap;
};

void dirh_free(struct dirh *d);
void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);

/* ---- files (fs_file.c) ---- */

/* An open file. Files with hooks (run, exit, the job files: tree.h) are
 * served by them through fh; the others are rendered whole at open into
 * data, and what is written is gathered there and stored at close.
 * ph_mu guards ph: a pollhandle belongs to whoever takes it out of ph
 * under ph_mu (poll_wake, a newer poll, release), and that one destroys
 * it. Nothing else is taken under ph_mu but the hooks' poll (which takes
 * the hooks' own locks, never waiting); poll_wake takes ph_mu, so the
 * hooks never call it with their locks held. */
struct handle {
	struct tree_handle fh; /* what hooks see */
	struct live live;
	struct buf data;
	const struct file_def *file;
	bool dirty;	/* written since the last store */
	bool truncated; /* opened with O_TRUNC and nothing stored yet */
	bool refused;	/* a write failed its check: nothing is stored */
	int store_err;	/* F_STORE_LINE: the last store's, at a write */
	char *path;	/* as opened */
	char *pod_id;	/* the pod the file belongs to, or NULL */
	bool lease;	/* holds its pod's lease (F_LEASE opened for writing) */
	bool append;	/* O_APPEND: writes go to the end primefs knows */
	bool cached;	/* opened with keep_cache */
	unsigned long gen; /* the tree's generation when rendered */
	pthread_mutex_t ph_mu;
	struct fuse_pollhandle *ph;
};

/* Opens path: 0 and fi->fh set, or -errno. */
int do_open(const char *path, struct fuse_file_info *fi);
/* The last of a handle: RELEASE, or an OPEN whose reply failed. */
void do_release(struct handle *h);
/* truncate(2) of path, or ftruncate(2) of an open file (h): 0 or -errno. */
int do_truncate(const char *path, off_t size, struct handle *h);
void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi);
void ll_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size,
	      off_t off, struct fuse_file_info *fi);
void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ll_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	     struct fuse_pollhandle *ph);

/* ---- making and removing (fs_make.c) ---- */

void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	      dev_t rdev);
void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		const char *name);
void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
	       fuse_ino_t newparent, const char *newname, unsigned int flags);

/* ---- a pod's files (fs_pod.c): each serves a path under a pod's .fs
 * or .home, and hands any other to the ll_* operation of the tree ---- */

void pfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void pfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		 struct fuse_file_info *fi);
void pfs_readlink(fuse_req_t req, fuse_ino_t ino);
void pfs_statfs(fuse_req_t req, fuse_ino_t ino);
void pfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
	       mode_t mode);
void pfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       dev_t rdev);
void pfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		 const char *name);
void pfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void pfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void pfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		fuse_ino_t newparent, const char *newname, unsigned int flags);
void pfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	      const char *newname);
void pfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode, struct fuse_file_info *fi);
void pfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	      struct fuse_file_info *fi);
void pfs_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size,
	       off_t off, struct fuse_file_info *fi);
void pfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	       struct fuse_file_info *fi);
void pfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 struct fuse_file_info *fi);
void pfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi);
void pfs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void pfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		  const char *value, size_t size, int flags);
void pfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		  size_t size);
void pfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void pfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
