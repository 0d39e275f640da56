/* fs_pod.c — the FUSE operations under a pod's .fs and .home, passed to
 * the pod's SFTP client (podfiles.h says which paths, sftp.h how). Each
 * pod_* operation of the table in fs.c serves a pod's path and hands any
 * other to the tree's ll_* operation.
 *
 * Inodes are primefs's own (inodes.h), one per path the kernel holds;
 * rename moves the entry, unlink and rmdir detach it. Entries and
 * attributes are kept fs_ttl from when they were asked for: by the
 * kernel, for what the client kept (sftp_lookup, sftp.h) what is left of
 * it; what this mount changes, the kernel learns from the replies and the
 * client drops. Files are opened without keep_cache, so every open
 * reads what the pod has (close-to-open); close returns the error of any
 * write (flush drains them). Only the mounting user (or root) reaches a
 * pod's files. */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inodes.h"
#include "log.h"
#include "podfiles.h"
#include "sftp.h"

/* A request on a pod's path: the path in the mount, what it is, and once
 * connected the client and the pod's path. */
struct pq {
	struct buf path;
	struct podpath pp;
	struct sftp *sf;
	struct buf remote;
	struct podids ids;
	bool handle_only; /* no path (an unlinked file still open) */
};

static void pq_free(struct pq *q)
{
	buf_free(&q->path);
	buf_free(&q->remote);
}

/* Whether ino (with name: its entry name) is a pod's path. */
static bool pq_of(struct pq *q, fuse_ino_t ino, const char *name)
{
	buf_init(&q->path);
	buf_init(&q->remote);
	q->sf = NULL;
	q->handle_only = false;
	if (ino_path(ino, &q->path) || !podfiles_split(q->path.data, &q->pp)) {
		pq_free(q);
		return false;
	}
	if (name) {
		buf_addc(&q->path, '/');
		buf_adds(&q->path, name);
		podfiles_split(q->path.data, &q->pp);
	}
	return true;
}

/* The caller's check, and the pod's client and path. */
static int pq_connect(struct pq *q, fuse_req_t req)
{
	cur = req;
	uid_t uid = caller()->uid;
	if (uid != getuid() && uid != 0)
		return -EACCES;
	sftp_set_interrupt(interrupted, NULL);
	if (q->handle_only)
		return 0;
	return podfiles_client(fs()->pods, &q->pp, interrupted, NULL, &q->sf,
			       &q->remote, &q->ids);
}

/* The pod user's ids shown as the mounting user's (podfiles.h). */
static uid_t show_uid(uint32_t id, const struct podids *ids)
{
	return ids->known && id == ids->uid ? getuid() : (uid_t)id;
}

static gid_t show_gid(uint32_t id, const struct podids *ids)
{
	return ids->known && id == ids->gid ? getgid() : (gid_t)id;
}

/* And back, for chown. */
static uint32_t pod_uid(uid_t id, const struct podids *ids)
{
	return ids->known && id == getuid() ? ids->uid : (uint32_t)id;
}

static uint32_t pod_gid(gid_t id, const struct podids *ids)
{
	return ids->known && id == getgid() ? ids->gid : (uint32_t)id;
}

static void to_stat(const struct sftp_attr *a, fuse_ino_t ino,
		    const struct podids *ids, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	st->st_mode = a->mode;
	st->st_nlink = S_ISDIR(a->mode) ? 2 : 1;
	st->st_uid = show_uid(a->uid, ids);
	st->st_gid = show_gid(a->gid, ids);
	st->st_size = (off_t)a->size;
	st->st_atime = a->atime;
	st->st_mtime = st->st_ctime = a->mtime; /* SFTP has no ctime */
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
}

/* The entry name in parent with attributes a, its inode counted once,
 * kept by the kernel ttl seconds. */
static int make_entry(fuse_ino_t parent, const char *name,
		      const struct sftp_attr *a, const struct podids *ids,
		      double ttl, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	uint64_t gen;
	bool added;
	fuse_ino_t ino = inodes_ref(inos, parent, name, &gen, &added);
	if (!ino)
		return -ENOENT;
	if (added)
		stats_add(ST_FUSE_INODES, 1);
	to_stat(a, ino, ids, &e->attr);
	e->ino = ino;
	e->generation = gen;
	e->entry_timeout = ttl;
	e->attr_timeout = ttl;
	return 0;
}

static void reply_entry(fuse_req_t req, fuse_ino_t parent, const char *name,
			const struct sftp_attr *a, const struct podids *ids,
			double ttl)
{
	struct fuse_entry_param e;
	int rc = make_entry(parent, name, a, ids, ttl, &e);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	cur = NULL;
	if (fuse_reply_entry(req, &e) == -ENOENT)
		unref(e.ino);
}

/* ---- entries and attributes ---- */

static void lookup_pod(fuse_req_t req, struct pq *q, fuse_ino_t parent,
		       const char *name)
{
	struct sftp_attr a;
	double left;
	int rc = strlen(name) > NAME_MAX ? -ENAMETOOLONG : pq_connect(q, req);
	if (!rc)
		rc =
		    sftp_lookup(q->sf, q->remote.data, fs()->fs_ttl, &a, &left);
	if (rc)
		reply_err(req, rc);
	else
		reply_entry(req, parent, name, &a, &q->ids, left);
}

void pfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pq q;
	if (!pq_of(&q, parent, name))
		return ll_lookup(req, parent, name);
	lookup_pod(req, &q, parent, name);
	pq_free(&q);
}

/* An open file. Every open file is on a list by inode, so that a change by
 * path (utimens, chmod) first sends what its files hold back: a time set
 * before the last write went would not stay. refs: the kernel's, and each
 * thread draining it; the last one closes it. */
struct pfile {
	struct sftp_file *h;
	fuse_ino_t ino;
	struct podids ids;
	int refs;
	struct pfile *prev, *next;
};

static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pfile open_files = {.prev = &open_files, .next = &open_files};

static void pfile_put(struct pfile *pf)
{
	pthread_mutex_lock(&open_mu);
	bool last = --pf->refs == 0;
	if (last) {
		pf->prev->next = pf->next;
		pf->next->prev = pf->prev;
	}
	pthread_mutex_unlock(&open_mu);
	if (last) {
		sftp_close(pf->h);
		free(pf);
	}
}

/* An open file of ino, counted (pfile_put), or NULL. */
static struct pfile *pfile_find(fuse_ino_t ino)
{
	pthread_mutex_lock(&open_mu);
	struct pfile *pf = open_files.next;
	while (pf != &open_files && pf->ino != ino)
		pf = pf->next;
	if (pf == &open_files)
		pf = NULL;
	else
		pf->refs++;
	pthread_mutex_unlock(&open_mu);
	return pf;
}

/* Every write of ino's open files sent and answered: 0 or an error. */
static int drain_ino(fuse_ino_t ino)
{
	struct pfile **v = NULL;
	size_t n = 0;
	pthread_mutex_lock(&open_mu);
	for (struct pfile *pf = open_files.next; pf != &open_files;
	     pf = pf->next)
		if (pf->ino == ino) {
			v = xrealloc(v, (n + 1) * sizeof *v);
			v[n++] = pf;
			pf->refs++;
		}
	pthread_mutex_unlock(&open_mu);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		int r = sftp_drain(v[i]->h);
		if (!rc)
			rc = r;
		pfile_put(v[i]);
	}
	free(v);
	return rc;
}

/* A pod's handles carry a tag in fh's low bits (malloc'd pointers are
 * aligned), so that a handle is known for what it is even once its path is
 * gone (an unlinked file still open). */
#define FH_FILE 1u
#define FH_DIR	2u

static struct pfile *pfile_of(const struct fuse_file_info *fi)
{
	return fi && (fi->fh & 3u) == FH_FILE
		   ? (struct pfile *)(uintptr_t)(fi->fh & ~(uint64_t)3)
		   : NULL;
}

static bool is_pod_dir(const struct fuse_file_info *fi)
{
	return (fi->fh & 3u) == FH_DIR;
}

/* pq_of, or for a pod's open file whose path is gone, its handle alone. */
static bool pq_handle(struct pq *q, fuse_ino_t ino,
		      const struct fuse_file_info *fi)
{
	if (pq_of(q, ino, NULL))
		return true;
	if (!pfile_of(fi))
		return false;
	buf_init(&q->path);
	buf_init(&q->remote);
	q->sf = NULL;
	q->handle_only = true;
	q->ids = pfile_of(fi)->ids;
	return true;
}

static void reply_attr(fuse_req_t req, fuse_ino_t ino,
		       const struct sftp_attr *a, const struct podids *ids)
{
	struct stat st;
	to_stat(a, ino, ids, &st);
	cur = NULL;
	fuse_reply_attr(req, &st, fs()->fs_ttl);
}

void pfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pq q;
	/* .fs and .home themselves: the tree answers, with no connection. */
	struct pfile *pf = NULL;
	bool have = pq_handle(&q, ino, fi);
	if (!have && !(pf = pfile_find(ino)))
		return ll_getattr(req, ino, fi);
	if (!have) {
		/* fstat of an unlinked file comes without its handle. */
		struct sftp_attr a;
		cur = req;
		sftp_set_interrupt(interrupted, NULL);
		uid_t uid = caller()->uid;
		int rc = uid != getuid() && uid != 0 ? -EACCES
						     : sftp_fstat(pf->h, &a);
		if (rc)
			reply_err(req, rc);
		else
			reply_attr(req, ino, &a, &pf->ids);
		pfile_put(pf);
		return;
	}
	if (!q.handle_only && !*q.pp.rest) {
		pq_free(&q);
		return ll_getattr(req, ino, fi);
	}
	struct sftp_attr a;
	int rc = pq_connect(&q, req);
	if (!rc)
		rc = pfile_of(fi) ? sftp_fstat(pfile_of(fi)->h, &a)
				  : sftp_lstat(q.sf, q.remote.data, &a);
	if (rc)
		reply_err(req, rc);
	else
		reply_attr(req, ino, &a, &q.ids);
	pq_free(&q);
}

/* A time of a SETATTR: whole seconds that SFTP v3 (uint32) can carry. */
static int set_time(int64_t *out, const struct timespec *ts, bool now)
{
	if (now) {
		*out = time(NULL);
		return 0;
	}
	if (ts->tv_sec < 0 || ts->tv_sec > (time_t)UINT32_MAX)
		return -EINVAL;
	*out = ts->tv_sec;
	return 0;
}

void pfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		 struct fuse_file_info *fi)
{
	struct pq q;
	if (!pq_handle(&q, ino, fi))
		return ll_setattr(req, ino, attr, to_set, fi);
	struct sftp_file *h = pfile_of(fi) ? pfile_of(fi)->h : NULL;
	struct sftp_attr now = {0}, a = {0};
	int rc = pq_connect(&q, req);
	bool times = to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME);
	bool ids = to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID);
	/* One of two times or ids: the other kept as it is. */
	if (!rc &&
	    ((times && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) !=
			   (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) ||
	     (ids && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) !=
			 (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))))
		rc = h ? sftp_fstat(h, &now)
		       : sftp_lstat(q.sf, q.remote.data, &now);
	if (!rc && (to_set & FUSE_SET_ATTR_MODE)) {
		a.flags |= SFTP_ATTR_MODE;
		a.mode = attr->st_mode & 07777;
	}
	if (!rc && ids) {
		a.flags |= SFTP_ATTR_UIDGID;
		a.uid = to_set & FUSE_SET_ATTR_UID
			    ? pod_uid(attr->st_uid, &q.ids)
			    : now.uid;
		a.gid = to_set & FUSE_SET_ATTR_GID
			    ? pod_gid(attr->st_gid, &q.ids)
			    : now.gid;
	}
	if (!rc && (to_set & FUSE_SET_ATTR_SIZE)) {
		a.flags |= SFTP_ATTR_SIZE;
		a.size = (uint64_t)attr->st_size;
	}
	if (!rc && times) {
		a.flags |= SFTP_ATTR_TIMES;
		a.atime = now.atime;
		a.mtime = now.mtime;
		if (to_set & FUSE_SET_ATTR_ATIME)
			rc = set_time(&a.atime, &attr->st_atim,
				      to_set & FUSE_SET_ATTR_ATIME_NOW);
		if (!rc && (to_set & FUSE_SET_ATTR_MTIME))
			rc = set_time(&a.mtime, &attr->st_mtim,
				      to_set & FUSE_SET_ATTR_MTIME_NOW);
	}
	if (!rc && a.flags && !h)
		rc = drain_ino(ino);
	if (!rc && a.flags && h) {
		rc = sftp_fsetstat(h, &a);
		if (!rc)
			rc = sftp_fstat(h, &now);
	} else if (!rc && a.flags) {
		/* Owner and times of the object itself, a symlink's too (cp -a
		 * and rsync -a set them on links); mode and size follow. The
		 * attributes after come in the same round trip. */
		rc = a.flags & (SFTP_ATTR_MODE | SFTP_ATTR_SIZE)
			 ? -ENOTSUP
			 : sftp_setstat_ex(q.sf, q.remote.data, &a, true, &now);
		if (rc == -ENOTSUP)
			rc = sftp_setstat_ex(q.sf, q.remote.data, &a, false,
					     &now);
	} else if (!rc) {
		rc = h ? sftp_fstat(h, &now)
		       : sftp_lstat(q.sf, q.remote.data, &now);
	}
	if (rc)
		reply_err(req, rc);
	else
		reply_attr(req, ino, &now, &q.ids);
	pq_free(&q);
}

void pfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct pq q;
	if (!pq_of(&q, ino, NULL))
		return ll_readlink(req, ino);
	char *target = NULL;
	int rc = pq_connect(&q, req);
	if (!rc)
		rc = sftp_readlink(q.sf, q.remote.data, &target);
	if (rc) {
		reply_err(req, rc);
	} else {
		struct buf b;
		buf_init(&b);
		podfiles_link_target(&q.pp, target, &b);
		buf_addc(&b, '\0');
		cur = NULL;
		fuse_reply_readlink(req, b.data);
		buf_free(&b);
	}
	free(target);
	pq_free(&q);
}

void pfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct pq q;
	if (!pq_of(&q, ino, NULL))
		return ll_statfs(req, ino);
	struct statvfs st;
	int rc = pq_connect(&q, req);
	if (!rc)
		rc = sftp_statvfs(q.sf, q.remote.data, &st);
	if (rc) {
		reply_err(req, rc);
	} else {
		cur = NULL;
		fuse_reply_statfs(req, &st);
	}
	pq_free(&q);
}

/* ---- making and removing ---- */

/* Ends a request that made name in parent: its entry, from a stat. */
static void made(fuse_req_t req, struct pq *q, fuse_ino_t parent,
		 const char *name, int rc)
{
	struct sftp_attr a;
	if (!rc)
		rc = sftp_lstat(q->sf, q->remote.data, &a);
	if (rc)
		reply_err(req, rc);
	else
		reply_entry(req, parent, name, &a, &q->ids, fs()->fs_ttl);
}

void pfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct pq q;
	if (!pq_of(&q, parent, name))
		return ll_mkdir(req, parent, name, mode);
	int rc = strlen(name) > NAME_MAX ? -ENAMETOOLONG : pq_connect(&q, req);
	if (!rc)
		rc = sftp_mkdir(q.sf, q.remote.data, mode & 07777);
	struct sftp_attr a;
	if (!rc)
		rc = sftp_lstat(q.sf, q.remote.data, &a);
	/* The mode asked for (after the caller's umask), whatever the
	 * pod's umask took away. */
	if (!rc && (a.mode & 07777) != (mode & 07777)) {
		struct sftp_attr m = {.flags = SFTP_ATTR_MODE,
				      .mode = mode & 07777};
		rc = sftp_setstat(q.sf, q.remote.data, &m);
		a.mode = (a.mode & ~07777u) | (mode & 07777);
	}
	if (rc)
		reply_err(req, rc);
	else
		reply_entry(req, parent, name, &a, &q.ids, fs()->fs_ttl);
	pq_free(&q);
}

void pfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       dev_t rdev)
{
	struct pq q;
	if (!pq_of(&q, parent, name))
		return ll_mknod(req, parent, name, mode, rdev);
	int rc = !S_ISREG(mode)		   ? -EPERM
		 : strlen(name) > NAME_MAX ? -ENAMETOOLONG
					   : pq_connect(&q, req);
	struct sftp_file *h;
	if (!rc &&
	    !(rc = sftp_open(q.sf, q.remote.data, O_WRONLY | O_CREAT | O_EXCL,
			     mode & 07777, &h)))
		rc = sftp_close(h);
	made(req, &q, parent, name, rc);
	pq_free(&q);
}

void pfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		 const char *name)
{
	struct pq q;
	if (!pq_of(&q, parent, name))
		return ll_symlink(req, link, parent, name);
	int rc = strlen(name) > NAME_MAX ? -ENAMETOOLONG : pq_connect(&q, req);
	if (!rc) /* stored as written */
		rc = sftp_symlink(q.sf, link, q.remote.data);
	made(req, &q, parent, name, rc);
	pq_free(&q);
}

static void remove_pod(fuse_req_t req, fuse_ino_t parent, const char *name,
		       struct pq *q, bool dir)
{
	int rc = strlen(name) > NAME_MAX ? -ENAMETOOLONG : pq_connect(q, req);
	if (!rc)
		rc = dir ? sftp_rmdir(q->sf, q->remote.data)
			 : sftp_unlink(q->sf, q->remote.data);
	if (!rc)
		inodes_detach(inos, parent, name);
	reply_err(req, rc);
}

void pfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pq q;
	if (!pq_of(&q, parent, name))
		return ll_unlink(req, parent, name);
	remove_pod(req, parent, name, &q, false);
	pq_free(&q);
}

void pfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pq q;
	if (!pq_of(&q, parent, name))
		return ll_rmdir(req, parent, name);
	remove_pod(req, parent, name, &q, true);
	pq_free(&q);
}

/* Whether two paths are the same pod's (the same client). */
static bool same_pod(const struct pq *a, const struct pq *b)
{
	return !strcmp(a->pp.pod, b->pp.pod) && a->pp.node == b->pp.node;
}

void pfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct pq q, to;
	bool from_pod = pq_of(&q, parent, name);
	bool to_pod = pq_of(&to, newparent, newname);
	if (!from_pod && !to_pod)
		return ll_rename(req, parent, name, newparent, newname, flags);
	int rc = !from_pod || !to_pod || !same_pod(&q, &to) ? -EXDEV
		 : strlen(newname) > NAME_MAX		    ? -ENAMETOOLONG
		 : flags & ~(unsigned)RENAME_NOREPLACE	    ? -EINVAL
							    : 0;
	if (!rc)
		rc = pq_connect(&q, req);
	if (!rc)
		rc = pq_connect(&to, req);
	struct sftp_attr a;
	if (!rc && (flags & RENAME_NOREPLACE) &&
	    sftp_lstat(to.sf, to.remote.data, &a) != -ENOENT)
		rc = -EEXIST;
	if (!rc)
		rc = sftp_rename(q.sf, q.remote.data, to.remote.data);
	if (!rc)
		inodes_move(inos, parent, name, newparent, newname);
	reply_err(req, rc);
	if (from_pod)
		pq_free(&q);
	if (to_pod)
		pq_free(&to);
}

void pfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	      const char *newname)
{
	struct pq q, to;
	bool from_pod = pq_of(&q, ino, NULL);
	bool to_pod = pq_of(&to, newparent, newname);
	int rc = !from_pod && !to_pod			      ? -EPERM
		 : !from_pod || !to_pod || !same_pod(&q, &to) ? -EXDEV
		 : strlen(newname) > NAME_MAX		      ? -ENAMETOOLONG
							      : 0;
	if (!rc)
		rc = pq_connect(&q, req);
	if (!rc)
		rc = pq_connect(&to, req);
	if (!rc) /* one file on the pod */
		rc = sftp_link(q.sf, q.remote.data, to.remote.data);
	if (to_pod)
		made(req, &to, newparent, newname, rc);
	else
		reply_err(req, rc);
	if (from_pod)
		pq_free(&q);
	if (to_pod)
		pq_free(&to);
}

/* ---- files ---- */

static int open_flags(int flags)
{
	return flags & (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND);
}

static void opened(struct fuse_file_info *fi, fuse_ino_t ino,
		   struct sftp_file *h, const struct podids *ids)
{
	struct pfile *pf = xcalloc(1, sizeof *pf);
	pf->h = h;
	pf->ids = *ids;
	pf->ino = ino;
	pf->refs = 1;
	pthread_mutex_lock(&open_mu);
	pf->next = open_files.next;
	pf->prev = &open_files;
	open_files.next->prev = pf;
	open_files.next = pf;
	pthread_mutex_unlock(&open_mu);
	fi->fh = (uint64_t)(uintptr_t)pf | FH_FILE;
	fi->keep_cache = 0; /* close-to-open: every open reads the pod */
	fi->direct_io = 0;
}

static void pfile_close(struct pfile *pf)
{
	pfile_put(pf);
}

void pfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pq q;
	if (!pq_of(&q, ino, NULL))
		return ll_open(req, ino, fi);
	struct sftp_file *h = NULL;
	int rc = pq_connect(&q, req);
	if (!rc) {
		sftp_walked(q.sf, q.remote.data, fs()->fs_ttl);
		rc = sftp_open(q.sf, q.remote.data, open_flags(fi->flags), 0,
			       &h);
	}
	if (rc) {
		reply_err(req, rc);
	} else {
		opened(fi, ino, h, &q.ids);
		cur = NULL;
		if (fuse_reply_open(req, fi) == -ENOENT)
			pfile_close(pfile_of(fi));
	}
	pq_free(&q);
}

void pfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode, struct fuse_file_info *fi)
{
	struct pq q;
	if (!pq_of(&q, parent, name))
		return ll_create(req, parent, name, mode, fi);
	struct sftp_file *h = NULL;
	int rc = strlen(name) > NAME_MAX ? -ENAMETOOLONG : pq_connect(&q, req);
	int fl = open_flags(fi->flags) | O_CREAT;
	/* A new file gets exactly the mode asked for (the kernel applied the
	 * caller's umask) only through O_EXCL: tried first. */
	bool made = false;
	if (!rc) {
		rc = sftp_open(q.sf, q.remote.data, fl | O_EXCL, mode & 07777,
			       &h);
		made = !rc;
		if (rc == -EEXIST && !(fl & O_EXCL))
			rc = sftp_open(q.sf, q.remote.data, fl & ~O_CREAT,
				       mode & 07777, &h);
	}
	/* A file just made is empty, the pod user's, of that mode: no stat
	 * (a round trip a file in cp -r). */
	struct sftp_attr a = {.flags = SFTP_ATTR_SIZE | SFTP_ATTR_UIDGID |
				       SFTP_ATTR_MODE | SFTP_ATTR_TIMES,
			      .uid = q.ids.uid,
			      .gid = q.ids.gid,
			      .mode = S_IFREG | (mode & 07777),
			      .atime = time(NULL),
			      .mtime = time(NULL)};
	if (!rc && !(made && q.ids.known) && (rc = sftp_fstat(h, &a)))
		sftp_close(h);
	struct fuse_entry_param e;
	if (!rc &&
	    (rc = make_entry(parent, name, &a, &q.ids, fs()->fs_ttl, &e)))
		sftp_close(h);
	if (rc) {
		reply_err(req, rc);
	} else {
		opened(fi, e.ino, h, &q.ids);
		cur = NULL;
		if (fuse_reply_create(req, &e, fi) == -ENOENT) {
			pfile_close(pfile_of(fi));
			unref(e.ino);
		}
	}
	pq_free(&q);
}

/* How long a read waits for a lost pod to answer again. */
#define RECONNECT_WAIT 15.0

static bool lost(ssize_t rc)
{
	return rc == -ENOTCONN || rc == -EHOSTUNREACH || rc == -ECONNREFUSED ||
	       rc == -ECONNRESET || rc == -ETIMEDOUT;
}

void pfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	      struct fuse_file_info *fi)
{
	if (!pfile_of(fi))
		return ll_read(req, ino, size, off, fi);
	cur = req;
	sftp_set_interrupt(interrupted, NULL);
	char *buf = xmalloc(size ? size : 1);
	/* A connection lost mid-read is reconnected: the file reads on if it
	 * is unchanged (sftp.h), once the pod answers again. */
	ssize_t n;
	double deadline = now_monotonic() + RECONNECT_WAIT;
	while (lost(n = sftp_read(pfile_of(fi)->h, buf, size, (uint64_t)off)) &&
	       now_monotonic() < deadline && !interrupted(NULL))
		sleep_seconds(0.2);
	if (n < 0) {
		reply_err(req, (int)n);
	} else {
		cur = NULL;
		fuse_reply_buf(req, buf, (size_t)n);
	}
	free(buf);
}

void pfs_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size,
	       off_t off, struct fuse_file_info *fi)
{
	if (!pfile_of(fi))
		return ll_write(req, ino, data, size, off, fi);
	cur = req;
	sftp_set_interrupt(interrupted, NULL);
	ssize_t n = sftp_write(pfile_of(fi)->h, data, size, (uint64_t)off);
	if (n < 0) {
		reply_err(req, (int)n);
	} else {
		cur = NULL;
		fuse_reply_write(req, (size_t)n);
	}
}

void pfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (!pfile_of(fi))
		return ll_flush(req, ino, fi);
	cur = req;
	sftp_set_interrupt(interrupted, NULL);
	/* close() returns what could not be written. */
	reply_err(req, sftp_drain(pfile_of(fi)->h));
}

void pfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (!pfile_of(fi))
		return ll_release(req, ino, fi);
	sftp_set_interrupt(NULL, NULL);
	pfile_close(pfile_of(fi));
	fuse_reply_err(req, 0);
}

void pfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	       struct fuse_file_info *fi)
{
	(void)datasync, (void)ino;
	if (!pfile_of(fi)) {
		fuse_reply_err(req, 0); /* nothing of the tree is kept back */
		return;
	}
	cur = req;
	sftp_set_interrupt(interrupted, NULL);
	reply_err(req, sftp_fsync(pfile_of(fi)->h));
}

/* ---- directories ---- */

/* An open directory of a pod: its entries as of opendir (asked for at
 * at: their attributes go to the kernel only while younger than fs_ttl). */
struct pdir {
	struct sftp_dirent *ents;
	size_t n;
	struct podids ids;
	double at;
};

void pfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pq q;
	if (!pq_of(&q, ino, NULL))
		return ll_opendir(req, ino, fi);
	struct pdir *pd = xcalloc(1, sizeof *pd);
	int rc = pq_connect(&q, req);
	if (!rc) /* kept for lookups too (sftp.h) */
		rc = sftp_list(q.sf, q.remote.data, fs()->fs_ttl, &pd->ents,
			       &pd->n, &pd->at);
	if (rc) {
		free(pd);
		reply_err(req, rc);
	} else {
		pd->ids = q.ids;
		fi->fh = (uint64_t)(uintptr_t)pd | FH_DIR;
		cur = NULL;
		if (fuse_reply_open(req, fi) == -ENOENT) {
			sftp_dirents_free(pd->ents, pd->n);
			free(pd);
		}
	}
	pq_free(&q);
}

static void pfs_readdir_any(fuse_req_t req, fuse_ino_t ino, size_t size,
			    off_t off, struct fuse_file_info *fi, bool plus)
{
	struct pdir *pd = (struct pdir *)(uintptr_t)(fi->fh & ~(uint64_t)3);
	char *out = xmalloc(size ? size : 1);
	size_t pos = 0;
	fuse_ino_t *given = NULL;
	size_t n_given = 0;
	double left = fs()->fs_ttl - (now_monotonic() - pd->at);
	for (size_t i = off < 0 ? 0 : (size_t)off; i < pd->n + 2; i++) {
		const char *name = i == 0   ? "."
				   : i == 1 ? ".."
					    : pd->ents[i - 2].name;
		size_t need =
		    plus ? fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0)
			 : fuse_add_direntry(req, NULL, 0, name, NULL, 0);
		if (pos + need > size)
			break;
		struct fuse_entry_param e;
		memset(&e, 0, sizeof e);
		e.attr.st_ino = i == 0 ? ino : 0xffffffffu;
		e.attr.st_mode = S_IFDIR;
		if (i >= 2) {
			const struct sftp_attr *a = &pd->ents[i - 2].attr;
			if (plus && (a->flags & SFTP_ATTR_MODE) && left > 0 &&
			    make_entry(ino, name, a, &pd->ids, left, &e) == 0) {
				given = xrealloc(given,
						 (n_given + 1) * sizeof *given);
				given[n_given++] = e.ino;
			} else {
				fuse_ino_t known = inodes_find(inos, ino, name);
				e.attr.st_ino = known ? known : 0xffffffffu;
				e.attr.st_mode = a->mode;
			}
		}
		if (plus)
			pos +=
			    fuse_add_direntry_plus(req, out + pos, size - pos,
						   name, &e, (off_t)(i + 1));
		else
			pos += fuse_add_direntry(req, out + pos, size - pos,
						 name, &e.attr, (off_t)(i + 1));
	}
	if (fuse_reply_buf(req, out, pos) == -ENOENT)
		for (size_t i = 0; i < n_given; i++)
			unref(given[i]);
	free(given);
	free(out);
}

void pfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 struct fuse_file_info *fi)
{
	if (!is_pod_dir(fi))
		return ll_readdir(req, ino, size, off, fi);
	pfs_readdir_any(req, ino, size, off, fi, false);
}

void pfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	if (!is_pod_dir(fi))
		return ll_readdirplus(req, ino, size, off, fi);
	pfs_readdir_any(req, ino, size, off, fi, true);
}

void pfs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (!is_pod_dir(fi))
		return ll_releasedir(req, ino, fi);
	struct pdir *pd = (struct pdir *)(uintptr_t)(fi->fh & ~(uint64_t)3);
	sftp_dirents_free(pd->ents, pd->n);
	free(pd);
	fuse_reply_err(req, 0);
}

/* ---- what SFTP v3 has not ---- */

void pfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		  const char *value, size_t size, int flags)
{
	(void)ino, (void)name, (void)value, (void)size, (void)flags;
	fuse_reply_err(req, ENOTSUP);
}

void pfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	(void)ino, (void)name, (void)size;
	fuse_reply_err(req, ENOTSUP);
}

void pfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	(void)ino, (void)size;
	fuse_reply_err(req, ENOTSUP);
}

void pfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino, (void)name;
	fuse_reply_err(req, ENOTSUP);
}
