/* sftp.c — the operations of sftp.h on paths: each builds its request,
 * waits for the reply and maps a failure to errno — in one place,
 * sftp_errno(), which asks the pod again where SFTP v3 says too little
 * (OpenSSH's server answers FAILURE for EEXIST, ENOTEMPTY, EISDIR, ENOSPC
 * and NO_SUCH_FILE for ENOTDIR). Open files are in sftp_file.c; the
 * channel and the requests' road in sftp_chan.c. */
#include "sftp_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

struct sftp *sftp_new(struct ssh_pool *p, const char *pod_key, const char *conn)
{
	struct sftp *f = xcalloc(1, sizeof *f);
	f->pool = p;
	f->key = xstrdup(pod_key);
	f->conn = xstrdup(conn ? conn : "");
	pthread_mutex_init(&f->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cond, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&f->next_id, 1);
	f->refs = 1;
	return f;
}

void sftp_free(struct sftp *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->closing = true;
	if (f->owner)
		sess_wake(f->owner); /* it closes the channel and lets go */
	sftp_unref_unlock(f);
}

/* ---- errors ---- */

/* What the status code alone says. */
static int status_errno(uint32_t st)
{
	switch (st) {
	case SSH_FX_OK:
		return 0;
	case SSH_FX_EOF:
		return -ENODATA; /* only where the caller expects it */
	case SSH_FX_NO_SUCH_FILE:
		return -ENOENT;
	case SSH_FX_PERMISSION_DENIED:
		return -EACCES;
	case SSH_FX_BAD_MESSAGE:
		return -EINVAL; /* OpenSSH: EINVAL, ENAMETOOLONG */
	case SSH_FX_OP_UNSUPPORTED:
		return -ENOTSUP;
	case SSH_FX_NO_SPACE_ON_FILESYSTEM:
		return -ENOSPC;
	case SSH_FX_QUOTA_EXCEEDED:
		return -EDQUOT;
	case SSH_FX_NO_CONNECTION:
	case SSH_FX_CONNECTION_LOST:
		return -ENOTCONN;
	default: /* FAILURE: any other errno on the pod */
		return -EIO;
	}
}

static int kind_of(struct sftp *f, const char *path)
{
	struct sftp_attr a;
	if (!path || sftp_lstat_locked(f, path, &a))
		return 0;
	return (int)(a.mode & S_IFMT) ? (int)(a.mode & S_IFMT) : -1;
}

int sftp_errno(struct sftp *f, enum sftp_op op, const struct sreq *r,
	       const char *path, const char *path2)
{
	if (r->err == SREQ_LOST) {
		pthread_mutex_unlock(&f->lock);
		plog("sftp", f->key,
		     "connection lost while a request was in flight (it may "
		     "or may not have been carried out)");
		pthread_mutex_lock(&f->lock);
		return -EIO;
	}
	if (r->err)
		return r->err;
	if (r->type != SSH_FXP_STATUS)
		return -EIO; /* a reply of the wrong type */
	int e = status_errno(r->status);
	int k;
	switch (op) {
	case OP_MKDIR:
	case OP_SYMLINK:
		if (e == -EIO && kind_of(f, path2 ? path2 : path))
			return -EEXIST;
		break;
	case OP_LINK:
		if (e == -EIO && kind_of(f, path2))
			return -EEXIST;
		if (e == -EACCES && kind_of(f, path) == S_IFDIR)
			return -EPERM;
		break;
	case OP_RMDIR:
		k = e == -EIO || e == -ENOENT ? kind_of(f, path) : 0;
		if (k == S_IFDIR && e == -EIO)
			return -ENOTEMPTY;
		if (k && k != S_IFDIR)
			return -ENOTDIR;
		break;
	case OP_UNLINK:
		if (e == -EIO && kind_of(f, path) == S_IFDIR)
			return -EISDIR;
		break;
	case OP_OPEN:
		k = e == -EIO ? kind_of(f, path) : 0;
		if (k == S_IFDIR)
			return -EISDIR;
		if (k)
			return -EEXIST; /* O_EXCL */
		break;
	case OP_OPENDIR:
		k = e == -ENOENT ? kind_of(f, path) : 0;
		if (k && k != S_IFDIR)
			return -ENOTDIR;
		break;
	case OP_RENAME: {
		if (e != -EIO && e != -ENOENT) /* ENOTDIR says NO_SUCH_FILE */
			break;
		int ks = kind_of(f, path), kd = ks ? kind_of(f, path2) : 0;
		if (ks == S_IFDIR && kd && kd != S_IFDIR)
			return -ENOTDIR;
		if (e == -ENOENT)
			break;
		if (ks && ks != S_IFDIR && kd == S_IFDIR)
			return -EISDIR;
		if (ks == S_IFDIR && kd == S_IFDIR)
			return -ENOTEMPTY;
		break;
	}
	case OP_SETSTAT:
		if (e == -EACCES)
			return -EPERM; /* chmod, chown, utime: not the owner */
		if (e == -EIO && kind_of(f, path) == S_IFDIR)
			return -EISDIR; /* truncate */
		break;
	case OP_WRITE: {
		if (e != -EIO || !f->x_statvfs)
			break;
		struct statvfs v;
		if (path && !sftp_statvfs_locked(f, path, &v) && !v.f_bavail)
			return -ENOSPC;
		break;
	}
	default:
		break;
	}
	return e;
}

/* ---- requests ---- */

int sftp_path_check(const char *path)
{
	if (!path || strlen(path) >= 4096)
		return -ENAMETOOLONG;
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "/");
		if (n > 255)
			return -ENAMETOOLONG;
		p += n;
		p += *p == '/';
	}
	return 0;
}

/* Sends r and waits: 0 with its reply, or -errno (r freed). Retries once
 * on a new session a request lost with its connection when again is set
 * (asking again changes nothing). */
int sftp_call(struct sftp *f, struct sreq *r, bool again)
{
	for (int attempt = 0;; attempt++) {
		sreq_submit(f, r);
		int rc = sreq_wait(f, r);
		if (rc)
			return rc; /* r is abandoned */
		if (r->err != SREQ_LOST || !again || attempt)
			return 0;
		r->done = r->sent = false;
		r->off = 0;
		r->err = 0;
	}
}

static void attr_from(struct sftp_attr *o, const struct sftp_attrs *a)
{
	o->flags = a->flags & 15;
	o->size = a->size;
	o->uid = a->uid;
	o->gid = a->gid;
	o->mode = a->perm;
	o->atime = a->atime;
	o->mtime = a->mtime;
}

int sftp_attr_to(struct sftp_attrs *o, const struct sftp_attr *a)
{
	memset(o, 0, sizeof *o);
	o->flags = a->flags & 15;
	o->size = a->size;
	o->uid = a->uid;
	o->gid = a->gid;
	o->perm = a->mode & 07777;
	if (a->flags & SFTP_ATTR_TIMES) {
		/* SFTP v3 carries unsigned 32-bit seconds. */
		if (a->atime < 0 || a->atime > UINT32_MAX || a->mtime < 0 ||
		    a->mtime > UINT32_MAX)
			return -EINVAL;
		o->atime = (uint32_t)a->atime;
		o->mtime = (uint32_t)a->mtime;
	}
	return 0;
}

int sftp_reply_attrs(const struct sreq *r, struct sftp_attr *a)
{
	struct sftp_dec d;
	struct sftp_attrs x;
	sftp_dec_init(&d, r->reply, r->rlen);
	if (r->type != SSH_FXP_ATTRS || !sftp_get_attrs(&d, &x))
		return -EIO;
	attr_from(a, &x);
	return 0;
}

/* A path request: type, path, and when a2 a second path. */
static struct sreq *path_req(struct sftp *f, uint8_t type, const char *ext,
			     const char *a1, const char *a2)
{
	struct buf b;
	uint32_t id =
	    ext ? sreq_begin_ext(f, &b, ext) : sreq_begin(f, &b, type);
	sftp_put_cstr(&b, a1);
	if (a2)
		sftp_put_cstr(&b, a2);
	return sreq_make(&b, id, 0);
}

static int stat_locked(struct sftp *f, uint8_t type, const char *path,
		       struct sftp_attr *a)
{
	int rc = sftp_path_check(path);
	if (rc)
		return rc;
	struct sreq *r = path_req(f, type, NULL, path, NULL);
	rc = sftp_call(f, r, true);
	if (rc)
		return rc;
	rc = r->type == SSH_FXP_ATTRS ? sftp_reply_attrs(r, a)
				      : sftp_errno(f, OP_STAT, r, path, NULL);
	sreq_free(r);
	return rc;
}

struct sreq *sftp_lstat_req(struct sftp *f, const char *path)
{
	return path_req(f, SSH_FXP_LSTAT, NULL, path, NULL);
}

int sftp_lstat_locked(struct sftp *f, const char *path, struct sftp_attr *a)
{
	return stat_locked(f, SSH_FXP_LSTAT, path, a);
}

int sftp_stat(struct sftp *f, const char *path, struct sftp_attr *a)
{
	pthread_mutex_lock(&f->lock);
	int rc = stat_locked(f, SSH_FXP_STAT, path, a);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int sftp_lstat(struct sftp *f, const char *path, struct sftp_attr *a)
{
	pthread_mutex_lock(&f->lock);
	int rc = stat_locked(f, SSH_FXP_LSTAT, path, a);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

/* A NAME reply of one entry: its name. */
static int one_name(struct sftp *f, enum sftp_op op, struct sreq *r,
		    const char *path, char **out)
{
	if (r->type != SSH_FXP_NAME)
		return sftp_errno(f, op, r, path, NULL);
	struct sftp_dec d;
	sftp_dec_init(&d, r->reply, r->rlen);
	uint32_t n;
	const char *s;
	size_t len;
	if (!sftp_get_u32(&d, &n) || n < 1 || !sftp_get_str(&d, &s, &len) ||
	    memchr(s, 0, len))
		return -EIO;
	*out = xstrndup(s, len);
	return 0;
}

static int name_call(struct sftp *f, uint8_t type, enum sftp_op op,
		     const char *path, char **out)
{
	*out = NULL;
	int rc = sftp_path_check(path);
	if (rc)
		return rc;
	pthread_mutex_lock(&f->lock);
	struct sreq *r = path_req(f, type, NULL, path, NULL);
	rc = sftp_call(f, r, true);
	if (!rc) {
		rc = one_name(f, op, r, path, out);
		sreq_free(r);
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int sftp_realpath(struct sftp *f, const char *path, char **out)
{
	return name_call(f, SSH_FXP_REALPATH, OP_STAT, path, out);
}

int sftp_readlink(struct sftp *f, const char *path, char **out)
{
	return name_call(f, SSH_FXP_READLINK, OP_STAT, path, out);
}

/* A request answered by a STATUS; again: safe to ask twice. */
static int status_call(struct sftp *f, struct sreq *r, enum sftp_op op,
		       bool again, const char *path, const char *path2)
{
	int rc = sftp_call(f, r, again);
	if (rc)
		return rc;
	rc = r->type == SSH_FXP_STATUS && r->status == SSH_FX_OK
		 ? 0
		 : sftp_errno(f, op, r, path, path2);
	sreq_free(r);
	return rc;
}

/* A request on one or two paths answered by STATUS: of type, or the
 * extension ext that the server says it has in *has (under f->lock). */
static int path_op(struct sftp *f, uint8_t type, const char *ext,
		   const bool *has, enum sftp_op op, bool again, const char *a1,
		   const char *a2)
{
	int rc = sftp_path_check(a1);
	if (!rc && a2)
		rc = sftp_path_check(a2);
	if (rc)
		return rc;
	pthread_mutex_lock(&f->lock);
	if (ext && !*has && !f->ready) {
		/* No channel yet: ask something to learn the extensions. */
		struct sftp_attr a;
		stat_locked(f, SSH_FXP_LSTAT, "/", &a);
	}
	if (ext && !*has) {
		pthread_mutex_unlock(&f->lock);
		plog("sftp", f->key, "the pod's SFTP server lacks %s", ext);
		return -ENOTSUP;
	}
	struct sreq *r = path_req(f, type, ext, a1, a2);
	rc = status_call(f, r, op, again, a1, a2);
	sftp_cache_drop(f, a1);
	if (a2)
		sftp_cache_drop(f, a2);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int sftp_rmdir(struct sftp *f, const char *path)
{
	return path_op(f, SSH_FXP_RMDIR, NULL, NULL, OP_RMDIR, false, path,
		       NULL);
}

int sftp_unlink(struct sftp *f, const char *path)
{
	return path_op(f, SSH_FXP_REMOVE, NULL, NULL, OP_UNLINK, false, path,
		       NULL);
}

int sftp_rename(struct sftp *f, const char *from, const char *to)
{
	return path_op(f, 0, "posix-rename@openssh.com", &f->x_posix_rename,
		       OP_RENAME, false, from, to);
}

int sftp_link(struct sftp *f, const char *from, const char *to)
{
	return path_op(f, 0, "hardlink@openssh.com", &f->x_hardlink, OP_LINK,
		       false, from, to);
}

int sftp_symlink(struct sftp *f, const char *target, const char *linkpath)
{
	/* OpenSSH's server takes the two the other way round from the draft
	 * (target first), as every client that talks to it does. */
	int rc = sftp_path_check(linkpath);
	if (rc)
		return rc;
	if (strlen(target) >= 4096)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&f->lock);
	struct sreq *r = path_req(f, SSH_FXP_SYMLINK, NULL, target, linkpath);
	rc = status_call(f, r, OP_SYMLINK, false, target, linkpath);
	sftp_cache_drop(f, linkpath);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static struct sreq *setstat_req(struct sftp *f, const char *path,
				const struct sftp_attrs *x)
{
	struct buf b;
	uint32_t id = sreq_begin(f, &b, SSH_FXP_SETSTAT);
	sftp_put_cstr(&b, path);
	sftp_put_attrs(&b, x);
	return sreq_make(&b, id, 0);
}

int sftp_setstat(struct sftp *f, const char *path, const struct sftp_attr *a)
{
	struct sftp_attrs x;
	int rc = sftp_path_check(path);
	if (!rc)
		rc = sftp_attr_to(&x, a);
	if (rc)
		return rc;
	pthread_mutex_lock(&f->lock);
	rc = status_call(f, setstat_req(f, path, &x), OP_SETSTAT, true, path,
			 NULL);
	sftp_cache_drop(f, path);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int sftp_setstat_ex(struct sftp *f, const char *path, const struct sftp_attr *a,
		    bool nofollow, struct sftp_attr *after)
{
	struct sftp_attrs x;
	int rc = sftp_path_check(path);
	if (!rc)
		rc = sftp_attr_to(&x, a);
	if (rc)
		return rc;
	pthread_mutex_lock(&f->lock);
	if (nofollow && !f->x_lsetstat && !f->ready) {
		/* No channel yet: ask something to learn the extensions. */
		struct sftp_attr st;
		stat_locked(f, SSH_FXP_LSTAT, "/", &st);
	}
	if (nofollow && !f->x_lsetstat) {
		pthread_mutex_unlock(&f->lock);
		return -ENOTSUP;
	}
	struct sreq *r;
	if (nofollow) {
		struct buf b;
		uint32_t id = sreq_begin_ext(f, &b, "lsetstat@openssh.com");
		sftp_put_cstr(&b, path);
		sftp_put_attrs(&b, &x);
		r = sreq_make(&b, id, 0);
	} else {
		r = setstat_req(f, path, &x);
	}
	if (!after) {
		rc = status_call(f, r, OP_SETSTAT, true, path, NULL);
		sftp_cache_drop(f, path);
		pthread_mutex_unlock(&f->lock);
		return rc;
	}
	/* The attributes after it, in the same round trip. */
	struct sreq *st = path_req(f, SSH_FXP_LSTAT, NULL, path, NULL);
	sreq_submit(f, r);
	rc = sftp_call(f, st, false);
	if (!rc)
		rc = sreq_wait(f, r);
	else
		sreq_abandon(f, r);
	if (!rc) {
		rc = r->type == SSH_FXP_STATUS && r->status == SSH_FX_OK
			 ? 0
			 : sftp_errno(f, OP_SETSTAT, r, path, NULL);
		if (!rc)
			rc = st->type == SSH_FXP_ATTRS
				 ? sftp_reply_attrs(st, after)
				 : sftp_errno(f, OP_STAT, st, path, NULL);
		sreq_free(r);
	}
	sreq_free(st);
	sftp_cache_drop(f, path);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int sftp_lsetstat(struct sftp *f, const char *path, const struct sftp_attr *a)
{
	return sftp_setstat_ex(f, path, a, true, NULL);
}

int sftp_mkdir(struct sftp *f, const char *path, uint32_t mode)
{
	int rc = sftp_path_check(path);
	if (rc)
		return rc;
	struct sftp_attrs x = {.flags = SSH_FILEXFER_ATTR_PERMISSIONS,
			       .perm = mode & 07777};
	pthread_mutex_lock(&f->lock);
	struct buf b;
	uint32_t id = sreq_begin(f, &b, SSH_FXP_MKDIR);
	sftp_put_cstr(&b, path);
	sftp_put_attrs(&b, &x);
	/* The pod's umask applies to the mode: a stat in the same round trip
	 * says whether a chmod must follow. */
	struct sreq *r = sreq_make(&b, id, 0);
	struct sreq *st = path_req(f, SSH_FXP_LSTAT, NULL, path, NULL);
	sreq_submit(f, r);
	rc = sftp_call(f, st, false);
	if (!rc)
		rc = sreq_wait(f, r);
	else
		sreq_abandon(f, r);
	if (!rc) {
		rc = r->type == SSH_FXP_STATUS && r->status == SSH_FX_OK
			 ? 0
			 : sftp_errno(f, OP_MKDIR, r, path, NULL);
		struct sftp_attr a;
		if (!rc && !sftp_reply_attrs(st, &a) &&
		    (a.mode & 07777) != (mode & 07777))
			rc = status_call(f, setstat_req(f, path, &x),
					 OP_SETSTAT, true, path, NULL);
		sreq_free(r);
	}
	sreq_free(st);
	sftp_cache_drop(f, path);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int sftp_statvfs_locked(struct sftp *f, const char *path, struct statvfs *o)
{
	if (!f->x_statvfs)
		return -ENOTSUP;
	struct sreq *r = path_req(f, 0, "statvfs@openssh.com", path, NULL);
	int rc = sftp_call(f, r, true);
	if (rc)
		return rc;
	if (r->type != SSH_FXP_EXTENDED_REPLY) {
		rc = sftp_errno(f, OP_STAT, r, path, NULL);
		sreq_free(r);
		return rc;
	}
	uint64_t v[11];
	struct sftp_dec d;
	sftp_dec_init(&d, r->reply, r->rlen);
	for (int i = 0; i < 11; i++)
		sftp_get_u64(&d, &v[i]);
	sreq_free(r);
	if (d.bad)
		return -EIO;
	memset(o, 0, sizeof *o);
	o->f_bsize = v[0];
	o->f_frsize = v[1];
	o->f_blocks = v[2];
	o->f_bfree = v[3];
	o->f_bavail = v[4];
	o->f_files = v[5];
	o->f_ffree = v[6];
	o->f_favail = v[7];
	o->f_fsid = v[8];
	o->f_flag = v[9];
	o->f_namemax = v[10];
	return 0;
}

int sftp_statvfs(struct sftp *f, const char *path, struct statvfs *out)
{
	int rc = sftp_path_check(path);
	if (rc)
		return rc;
	pthread_mutex_lock(&f->lock);
	if (!f->ready && !f->x_statvfs) {
		struct sftp_attr a; /* learn the extensions */
		stat_locked(f, SSH_FXP_LSTAT, "/", &a);
	}
	rc = sftp_statvfs_locked(f, path, out);
	pthread_mutex_unlock(&f->lock);
	return rc;
}
