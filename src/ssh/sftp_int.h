/* sftp_int.h — private to sftp.c and sftp_chan.c: a pod's SFTP client
 * (struct sftp) and its requests (struct sreq).
 *
 * Why our own SFTP v3 codec and not libssh2's sftp_* calls: libssh2 1.10
 * keeps one in-progress state per operation kind per SFTP handle in
 * non-blocking mode, so many FUSE threads cannot have many requests in
 * flight through it, and its reads go one buffer at a time (measured at 50
 * ms RTT: 2.8 MB/s with 32 KiB buffers, 9.4 with 128 KiB). SFTP itself
 * has no such limit: sshfs speaks it over a pipe with any number of
 * requests outstanding, matched by id. So do we: callers encode a request
 * (sftp_proto.c), queue it on the client and wait on its condition
 * variable; the session's I/O thread (sftp_chan.c) writes queued requests
 * to a channel opened with the "sftp" subsystem and a big window, reads
 * replies and hands each to the request of its id.
 *
 * Locks: f->lock guards the queue, the table of requests in flight, each
 * request's reply fields and every file's state (memory work only: the
 * I/O thread never holds it across a libssh2 call, a caller never while it
 * waits). Order: pool->lock, sess->lock, f->lock.
 *
 * Generations: each time the channel becomes ready (a new session, or a
 * new SFTP server after the old one died), f->gen grows. A request on a
 * file handle carries the generation the handle belongs to; one left from
 * an older channel is never sent (its handle means nothing to the new
 * server) but ends as lost, and the file decides whether it can reopen. */
#ifndef PRIMEFS_SFTP_INT_H
#define PRIMEFS_SFTP_INT_H

#include "sftp.h"
#include "sftp_proto.h"
#include "ssh_int.h"

/* A request's transport error: the connection (or the SFTP server) went
 * while it was in flight, or its handle's channel is gone. */
#define SREQ_LOST (-ECONNRESET)

struct sreq {
	uint32_t id;
	unsigned gen; /* 0: any channel; else only the one of this gen */
	char *pkt;    /* the encoded request; the I/O thread's once queued */
	size_t len, off;
	unsigned sent_gen; /* the channel it went out on */
	bool sent, done, abandoned;
	int err;      /* once done: 0 (a reply is here), SREQ_LOST, or -errno */
	uint8_t type; /* the reply's */
	uint32_t status; /* for SSH_FXP_STATUS */
	char *reply;	 /* the reply after type and id */
	size_t rlen;
	struct sreq *next; /* in the queue, or a bucket of the table */
	/* A request nobody waits for (sftp_cache.c's stats ahead): called
	 * once it ends, f->lock held, in place of a waiter; it frees r. */
	void (*on_done)(struct sftp *f, struct sreq *r);
	char *path; /* for on_done; freed with r */
};

#define PEND_BUCKETS 256

struct sftp {
	struct ssh_pool *pool;
	char *key, *conn;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* any request done, any file not busy */
	atomic_uint next_id;

	/* Under lock. */
	int refs;	    /* the caller's, and the serving session's */
	bool closing;	    /* sftp_free called */
	struct sess *owner; /* the session serving f, NULL if none */
	unsigned gen;	    /* the ready channel's, or the last one's */
	bool ready;	    /* a channel of generation gen is ready */
	struct sreq *q_head, *q_tail;	 /* not yet taken by the I/O thread */
	struct sreq *pend[PEND_BUCKETS]; /* taken, waiting for a reply */
	int n_pend;
	/* What the server said in its VERSION. */
	bool x_posix_rename, x_statvfs, x_hardlink, x_fsync, x_lsetstat;
	struct sftp_cache *cache; /* attributes kept (sftp_cache.c) */
};

/* The rest are called with f->lock held. */

/* A request of type with a fresh id, fields to be added to *b, then made
 * into a request by sreq_make. */
uint32_t sreq_begin(struct sftp *f, struct buf *b, uint8_t type);
/* An extended request named name. */
uint32_t sreq_begin_ext(struct sftp *f, struct buf *b, const char *name);
struct sreq *sreq_make(struct buf *b, uint32_t id, unsigned gen);
/* Queues r and wakes the serving session. */
void sreq_submit(struct sftp *f, struct sreq *r);
/* Waits for r (attaching f to a session when it has none): 0 when r is
 * done (then r->err says how), or -EINTR / -EIO, and then r was abandoned
 * (it is the I/O thread's to free). */
int sreq_wait(struct sftp *f, struct sreq *r);
/* The caller lets go of r: freed now if done or never sent, else when its
 * reply comes or its session ends. */
void sreq_abandon(struct sftp *f, struct sreq *r);
void sreq_free(struct sreq *r);
/* The calling thread's interruption check (sftp_set_interrupt) says so. */
bool sftp_interrupted(void);
/* How long a wait goes before it gives up on a pod that says nothing. */
double sreq_wait_limit(const struct sftp *f);

/* Drops a reference (f->lock held; unlocks it). */
void sftp_unref_unlock(struct sftp *f);

/* ---- sftp.c, for sftp_file.c (f->lock held) ---- */

enum sftp_op {
	OP_STAT,
	OP_OPEN,
	OP_OPENDIR,
	OP_READ,
	OP_WRITE,
	OP_CLOSE,
	OP_MKDIR,
	OP_RMDIR,
	OP_UNLINK,
	OP_RENAME,
	OP_SYMLINK,
	OP_LINK,
	OP_SETSTAT,
};

/* The one map from a failed request to -errno: the status code, refined
 * for op by asking the pod about path (and path2) where FAILURE or
 * NO_SUCH_FILE says too little; a lost connection is EIO (logged). */
int sftp_errno(struct sftp *f, enum sftp_op op, const struct sreq *r,
	       const char *path, const char *path2);
/* 0, or -ENAMETOOLONG for a component over 255 bytes or a path over
 * 4095 (the server would say only "bad message"). */
int sftp_path_check(const char *path);
/* Submits r and waits (once more on a new session when it was lost and
 * again says asking twice is harmless): 0 with r done (r->err may still
 * say SREQ_LOST), or -errno with r abandoned. */
int sftp_call(struct sftp *f, struct sreq *r, bool again);
int sftp_reply_attrs(const struct sreq *r, struct sftp_attr *a);
/* -EINVAL for times SFTP v3 cannot carry. */
int sftp_attr_to(struct sftp_attrs *o, const struct sftp_attr *a);
int sftp_lstat_locked(struct sftp *f, const char *path, struct sftp_attr *a);
int sftp_statvfs_locked(struct sftp *f, const char *path, struct statvfs *o);
/* An LSTAT of path, encoded (not sent). */
struct sreq *sftp_lstat_req(struct sftp *f, const char *path);

/* ---- sftp_cache.c (f->lock held) ---- */

/* What this client did to path (made, wrote, changed, removed, renamed
 * from or to), whatever the outcome: the rule in sftp.h. */
void sftp_cache_drop(struct sftp *f, const char *path);
/* Everything kept goes (the connection was lost or is new). */
void sftp_cache_clear(struct sftp *f);
void sftp_cache_free(struct sftp *f);

#endif
