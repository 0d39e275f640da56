/* sftp.h — a pod's files over SFTP, without FUSE: the client behind
 * pods/<pod>/fs and home. It runs on the pod's own SSH session (the one
 * jobs use: same host key check and login, see ssh.h), in a channel with
 * the "sftp" subsystem that the session's I/O thread drives beside the job
 * channels. Any number of threads may call it at once: their requests are
 * all in flight together, matched to replies by id.
 *
 * Every call returns 0 (or a count) or -errno: ENOENT, EEXIST, ENOTDIR,
 * EISDIR, ENOTEMPTY, EACCES, ENOSPC, EINVAL, ENOTSUP, ENAMETOOLONG (a name
 * over 255 bytes, refused before sending), EINTR (the thread's interruption
 * check said so: see sftp_set_interrupt), and for a lost or unreachable
 * pod EHOSTUNREACH, EACCES (host key changed), ENOTCONN, EIO. A log line
 * says why for the connection-level ones.
 *
 * Files: reads ahead when read in order, or a little out of order as
 * several threads reading one stream do (several READs in flight, at most
 * SFTP_READ_AHEAD bytes per file), and writes behind (several WRITEs in
 * flight, at most SFTP_WRITE_BEHIND bytes per file, the data copied;
 * contiguous small writes gathered into one WRITE, sent when full or by
 * the file's next other call, fsync or close): a write's error is returned
 * by the next write, fsync or close of the file (it sticks: close returns
 * it too), so nothing is lost silently. A lost connection is reopened at
 * the next request; a file opened read-only then reads on if it is
 * unchanged (size and mtime as at its open; what was read ahead before
 * the loss is served as it came; while the pod cannot be reached, a call
 * gives the connection's error and the next one tries again), else every later
 * call on it gives EIO (never other bytes); a file open for writing gives EIO
 * (what was in flight may or may not have been written).
 *
 * Symlinks are as the pod stores them: sftp_readlink gives the target as
 * written (mapping absolute targets into the mount is the caller's job). */
#ifndef PRIMEFS_SFTP_H
#define PRIMEFS_SFTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/types.h>

struct ssh_pool;
struct sftp;	  /* one pod's SFTP client */
struct sftp_file; /* an open file or directory */

#define SFTP_READ_AHEAD	  ((size_t)8 << 20)
#define SFTP_WRITE_BEHIND ((size_t)8 << 20)

/* Which fields of struct sftp_attr are set (the SFTP ATTRS flags). */
enum {
	SFTP_ATTR_SIZE = 1,
	SFTP_ATTR_UIDGID = 2,
	SFTP_ATTR_MODE = 4,
	SFTP_ATTR_TIMES = 8,
};

struct sftp_attr {
	unsigned flags;
	uint64_t size;
	uint32_t uid, gid;
	uint32_t mode;	      /* type and permission bits, as st_mode */
	int64_t atime, mtime; /* whole seconds */
};

struct sftp_dirent {
	char *name;
	struct sftp_attr attr;
};

/* A client for the pod pod_key reachable at conn (as ssh_run takes them);
 * connects at its first request. One per pod at a time. */
struct sftp *sftp_new(struct ssh_pool *p, const char *pod_key,
		      const char *conn);
/* Every file must be closed first. */
void sftp_free(struct sftp *f);

/* The calling thread's interruption check for its later calls (NULL: none):
 * a wait it says so for ends with -EINTR (the request may still be carried
 * out by the pod). */
void sftp_set_interrupt(bool (*interrupted)(void *arg), void *arg);

/* *out (malloc'd): the absolute, canonical form of path ("." is the
 * home directory). */
int sftp_realpath(struct sftp *f, const char *path, char **out);
int sftp_stat(struct sftp *f, const char *path, struct sftp_attr *a);
int sftp_lstat(struct sftp *f, const char *path, struct sftp_attr *a);
/* Sets what a->flags names: mode (chmod), uid and gid (numeric chown),
 * times (both: the caller fills the one it keeps from a stat), size
 * (truncate). */
int sftp_setstat(struct sftp *f, const char *path, const struct sftp_attr *a);
/* The same on a symlink itself (lsetstat@openssh.com): owner and times;
 * -ENOTSUP when the pod has not that extension. */
int sftp_lsetstat(struct sftp *f, const char *path, const struct sftp_attr *a);
/* sftp_setstat (or with nofollow sftp_lsetstat), and with after the path's
 * attributes once done (an LSTAT in the same round trip). */
int sftp_setstat_ex(struct sftp *f, const char *path, const struct sftp_attr *a,
		    bool nofollow, struct sftp_attr *after);
int sftp_mkdir(struct sftp *f, const char *path, uint32_t mode);
int sftp_rmdir(struct sftp *f, const char *path);
int sftp_unlink(struct sftp *f, const char *path);
/* Replaces to, as POSIX rename does (posix-rename@openssh.com). */
int sftp_rename(struct sftp *f, const char *from, const char *to);
/* A symlink at linkpath holding target, as written. */
int sftp_symlink(struct sftp *f, const char *target, const char *linkpath);
int sftp_readlink(struct sftp *f, const char *path, char **out);
/* A hard link to from at to (hardlink@openssh.com). */
int sftp_link(struct sftp *f, const char *from, const char *to);
int sftp_statvfs(struct sftp *f, const char *path, struct statvfs *out);

/* flags: O_RDONLY/O_WRONLY/O_RDWR with O_CREAT, O_EXCL, O_TRUNC, O_APPEND.
 * A file created with O_EXCL gets exactly mode (whatever the pod's
 * umask). */
int sftp_open(struct sftp *f, const char *path, int flags, uint32_t mode,
	      struct sftp_file **out);
/* Up to n bytes at off: fewer only at the end of the file. */
ssize_t sftp_read(struct sftp_file *h, void *buf, size_t n, uint64_t off);
/* n bytes at off, queued (the data copied): n, or the error of an earlier
 * write. */
ssize_t sftp_write(struct sftp_file *h, const void *buf, size_t n,
		   uint64_t off);
int sftp_fstat(struct sftp_file *h, struct sftp_attr *a);
int sftp_fsetstat(struct sftp_file *h, const struct sftp_attr *a);
/* Every write sent and answered, then fsync@openssh.com when the pod has
 * it. */
int sftp_fsync(struct sftp_file *h);
/* Every write sent and answered (no fsync): 0 or the first write error,
 * as close() needs it. */
int sftp_drain(struct sftp_file *h);

int sftp_opendir(struct sftp *f, const char *path, struct sftp_file **out);
/* The next batch of entries with their attributes ("." and ".." among
 * them, as the pod lists them); *n == 0 at the end. Free with
 * sftp_dirents_free. */
int sftp_readdir(struct sftp_file *d, struct sftp_dirent **ents, size_t *n);
void sftp_dirents_free(struct sftp_dirent *ents, size_t n);

/* Closes a file or directory and frees h: 0, or the first error of its
 * writes or of the close. */
int sftp_close(struct sftp_file *h);

/* ---- attributes kept (sftp_cache.c) ----
 *
 * The rule: attributes are kept for the caller's ttl from when they were
 * asked for (a listing's from its OPENDIR, a stat's from its sending), and
 * never served older. Whatever this client changes drops what is kept for
 * the paths it touches before the call returns, whatever its outcome:
 * creating, opening for writing, writing (each write, and once the
 * writes are answered: fsync, drain, close), truncating and every setstat,
 * mkdir, rmdir, unlink, symlink, link, rename (both names, and a
 * directory's whole subtree); each drops the directory's own attributes
 * too. A reply to a stat asked for before a drop is not kept. A lost
 * connection, and a new one, drop everything. Only sftp_lookup serves what
 * is kept: sftp_stat, sftp_lstat and sftp_fstat always ask the pod. */

/* The whole listing of the directory path ("." and ".." left out), kept
 * for sftp_lookup; *at: the monotonic time it was asked for. Free with
 * sftp_dirents_free. A listing is a walker's step as a lookup is (see
 * sftp_lookup): the directories above it and the names after it in its
 * directory are stated in the background, kept ttl. */
int sftp_list(struct sftp *f, const char *path, double ttl,
	      struct sftp_dirent **ents, size_t *n, double *at);
/* sftp_lstat, answered from what is kept when younger than ttl; *left:
 * how long *a stays younger than ttl. A lookup in a directory listed
 * lately also stats ahead the names that follow in the listing, in the
 * background, so that a walk in listing order finds them kept; a lookup
 * of a name whose stat is in flight waits for it. */
int sftp_lookup(struct sftp *f, const char *path, double ttl,
		struct sftp_attr *a, double *left);
/* A walker reached path by other means than a lookup (an open, a listing):
 * what sftp_lookup would send in the background, sent. */
void sftp_walked(struct sftp *f, const char *path, double ttl);

#endif
