/* sftp_file.c — open files and directories of sftp.h: reads ahead (a ring
 * of READs in flight, its window doubling while the file is read in
 * order, at most SFTP_READ_AHEAD bytes), writes behind (a FIFO of WRITEs
 * in flight, at most SFTP_WRITE_BEHIND bytes; the first error sticks and
 * is returned by the next call), reopens a read-only file after a lost
 * connection if it is unchanged, and lists directories with a second
 * READDIR already in flight. One call at a time per file (h->busy, a
 * sleeping lock under f->lock, never a mutex held while waiting). */
#include "sftp_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Bytes per READ and WRITE: OpenSSH's server reads at most 255 KiB per
 * request and takes packets up to 256 KiB. A WRITE's packet is exactly
 * WPACKET bytes, four of sshd's 32 KiB channel packets (an extra SSH
 * packet for a few bytes of header would cost as much as a full one). */
#define CHUNK	 ((size_t)128 << 10)
#define RA_START ((size_t)1 << 20) /* the first window from offset 0 */
#define WPACKET	 ((size_t)128 << 10)
#define RA_SLOTS ((int)(SFTP_READ_AHEAD / CHUNK) + 16)
#define WB_SLOTS 256
/* READDIRs in flight: from 4 (OpenSSH's server answers 100 names a
 * READDIR, so a directory of up to 300 names comes in one round trip, its
 * EOF with it; sshfs's 2 take a second round trip from 99), doubling with
 * each batch to 32 (10k entries take a few round trips). */
#define DIR_AHEAD     4
#define DIR_AHEAD_MAX 32

struct ra {
	struct sreq *r;
	uint64_t off;
	size_t len;
	size_t dl;     /* the reply's bytes, once looked at */
	size_t served; /* bytes copied out of it */
};

struct sftp_file {
	struct sftp *f;
	char *path;
	bool dir, rdonly, writable;
	char *handle;
	size_t hlen;
	unsigned gen;	 /* of the channel the handle belongs to */
	uint64_t size0;	 /* identity at open (read-only files) */
	uint32_t mtime0; /* for a reopen after a lost connection */
	int err;	 /* sticky: the first write error, or EIO */
	bool busy;
	/* reads ahead (or READDIRs) */
	struct ra ra[RA_SLOTS];
	int ra_head, ra_n;
	uint64_t ra_next, seq;
	size_t window;
	bool eof_known;
	uint64_t eof_at;
	/* writes behind */
	struct sreq *wq[WB_SLOTS];
	size_t wlen[WB_SLOTS];
	int wq_head, wq_n;
	size_t wq_bytes;
	/* the next WRITE, filled by contiguous writes: sent when full (its
	 * packet then fills SSH packets exactly), or before anything else
	 * on the file */
	struct buf wb;
	uint64_t wb_off;
	size_t wb_len;
};

static int wb_flush(struct sftp_file *h);

/* Waits until no other call runs on h (intr: unless interrupted). */
static int h_enter_ex(struct sftp_file *h, bool intr)
{
	struct sftp *f = h->f;
	pthread_mutex_lock(&f->lock);
	while (h->busy) {
		if (intr && sftp_interrupted()) {
			pthread_mutex_unlock(&f->lock);
			return -EINTR;
		}
		struct timespec ts;
		monotonic_abs(&ts, 0.1);
		pthread_cond_timedwait(&f->cond, &f->lock, &ts);
	}
	h->busy = true;
	return 0;
}

static int h_enter(struct sftp_file *h)
{
	return h_enter_ex(h, true);
}

static void h_leave(struct sftp_file *h)
{
	struct sftp *f = h->f;
	h->busy = false;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static uint32_t hreq_begin(struct sftp_file *h, struct buf *b, uint8_t type)
{
	uint32_t id = sreq_begin(h->f, b, type);
	sftp_put_str(b, h->handle, h->hlen);
	return id;
}

/* Sent and forgotten: the I/O thread frees it with its reply. */
static void fire_and_forget(struct sftp *f, struct sreq *r)
{
	r->abandoned = true;
	sreq_submit(f, r);
}

static void ra_pop(struct sftp_file *h)
{
	h->ra_head = (h->ra_head + 1) % RA_SLOTS;
	h->ra_n--;
}

static void ra_drop(struct sftp_file *h)
{
	while (h->ra_n) {
		sreq_abandon(h->f, h->ra[h->ra_head].r); /* NULL: nothing */
		ra_pop(h);
	}
	h->ra_head = 0;
}

static void ra_push(struct sftp_file *h, uint8_t type, uint64_t off, size_t len)
{
	struct buf b;
	uint32_t id = hreq_begin(h, &b, type);
	if (type == SSH_FXP_READ) {
		sftp_put_u64(&b, off);
		sftp_put_u32(&b, (uint32_t)len);
	}
	struct sreq *r = sreq_make(&b, id, h->gen);
	sreq_submit(h->f, r);
	struct ra *a = &h->ra[(h->ra_head + h->ra_n) % RA_SLOTS];
	*a = (struct ra){r, off, len, 0, 0};
	h->ra_n++;
}

static int parse_handle(const struct sreq *r, char **handle, size_t *hlen)
{
	struct sftp_dec d;
	const char *s;
	size_t n;
	sftp_dec_init(&d, r->reply, r->rlen);
	if (r->type != SSH_FXP_HANDLE || !sftp_get_str(&d, &s, &n) || n > 256)
		return -EIO;
	*handle = xmalloc(n ? n : 1);
	memcpy(*handle, s, n);
	*hlen = n;
	return 0;
}

/* OPEN (or OPENDIR) of path, with a STAT of it in the same round trip
 * when st. */
static int do_open(struct sftp *f, uint8_t type, const char *path,
		   uint32_t pflags, const struct sftp_attrs *x, bool again,
		   struct sftp_attr *st, bool *have_st, char **handle,
		   size_t *hlen, unsigned *gen)
{
	struct buf b;
	struct sreq *sr = NULL;
	if (st) {
		uint32_t sid = sreq_begin(f, &b, SSH_FXP_STAT);
		sftp_put_cstr(&b, path);
		sr = sreq_make(&b, sid, 0);
		sreq_submit(f, sr);
	}
	uint32_t id = sreq_begin(f, &b, type);
	sftp_put_cstr(&b, path);
	if (type == SSH_FXP_OPEN) {
		sftp_put_u32(&b, pflags);
		sftp_put_attrs(&b, x);
	}
	struct sreq *r = sreq_make(&b, id, 0);
	int rc = sftp_call(f, r, again);
	if (rc) {
		sreq_abandon(f, sr);
		return rc;
	}
	if (r->type == SSH_FXP_HANDLE) {
		rc = parse_handle(r, handle, hlen);
		*gen = r->sent_gen;
	} else {
		rc = sftp_errno(f, type == SSH_FXP_OPEN ? OP_OPEN : OP_OPENDIR,
				r, path, NULL);
	}
	sreq_free(r);
	if (sr && (rc || sreq_wait(f, sr))) {
		if (rc)
			sreq_abandon(f, sr); /* else the wait did */
	} else if (sr) {
		*have_st = !sr->err && !sftp_reply_attrs(sr, st) &&
			   sr->sent_gen == *gen;
		sreq_free(sr);
	}
	return rc;
}

static struct sftp_file *file_new(struct sftp *f, const char *path)
{
	struct sftp_file *h = xcalloc(1, sizeof *h);
	h->f = f;
	h->path = xstrdup(path);
	return h;
}

static void file_free(struct sftp_file *h)
{
	buf_free(&h->wb);
	free(h->path);
	free(h->handle);
	free(h);
}

/* A handle request on h; again when the handle's channel is gone and h
 * reopened (read-only files only). */
static int h_call(struct sftp_file *h, struct sreq *r)
{
	return sftp_call(h->f, r, false);
}

int sftp_open(struct sftp *f, const char *path, int flags, uint32_t mode,
	      struct sftp_file **out)
{
	*out = NULL;
	int rc = sftp_path_check(path);
	if (rc)
		return rc;
	int acc = flags & O_ACCMODE;
	uint32_t pf = acc == O_RDONLY	? SSH_FXF_READ
		      : acc == O_WRONLY ? SSH_FXF_WRITE
					: SSH_FXF_READ | SSH_FXF_WRITE;
	if (flags & O_CREAT)
		pf |= SSH_FXF_CREAT;
	if (flags & O_TRUNC)
		pf |= SSH_FXF_TRUNC;
	if ((flags & O_EXCL) && (flags & O_CREAT))
		pf |= SSH_FXF_EXCL;
	if (flags & O_APPEND)
		pf |= SSH_FXF_APPEND;
	struct sftp_attrs x = {0};
	if (flags & O_CREAT) {
		x.flags = SSH_FILEXFER_ATTR_PERMISSIONS;
		x.perm = mode & 07777;
	}
	struct sftp_file *h = file_new(f, path);
	h->rdonly = pf == SSH_FXF_READ;
	h->writable = pf & SSH_FXF_WRITE;
	struct sftp_attr st;
	bool have_st = false;
	pthread_mutex_lock(&f->lock);
	rc = do_open(f, SSH_FXP_OPEN, path, pf, &x, h->rdonly,
		     h->rdonly ? &st : NULL, &have_st, &h->handle, &h->hlen,
		     &h->gen);
	if (pf != SSH_FXF_READ) /* made, truncated or to be written */
		sftp_cache_drop(f, path);
	if (!rc && h->rdonly && !have_st) {
		struct buf b;
		uint32_t id = hreq_begin(h, &b, SSH_FXP_FSTAT);
		struct sreq *r = sreq_make(&b, id, h->gen);
		if (!h_call(h, r)) {
			have_st = !r->err && !sftp_reply_attrs(r, &st);
			sreq_free(r);
		}
	}
	if (have_st) {
		h->size0 = st.size;
		h->mtime0 = (uint32_t)st.mtime;
	} else if (h->rdonly) {
		h->rdonly = false; /* no identity: no reopen */
	}
	if (!rc && (pf & SSH_FXF_EXCL)) {
		/* Created by us: the mode asked for, whatever the pod's
		 * umask; checked with the writes. */
		struct buf b;
		uint32_t id = hreq_begin(h, &b, SSH_FXP_FSETSTAT);
		sftp_put_attrs(&b, &x);
		h->wq[0] = sreq_make(&b, id, h->gen);
		h->wlen[0] = 0;
		h->wq_n = 1;
		sreq_submit(f, h->wq[0]);
	}
	pthread_mutex_unlock(&f->lock);
	if (rc) {
		file_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

/* After a lost connection: the same file, unchanged, opened anew; else
 * EIO for good. */
static int h_revive(struct sftp_file *h)
{
	struct sftp *f = h->f;
	ra_drop(h);
	if (!h->rdonly || h->dir) {
		h->err = -EIO;
		pthread_mutex_unlock(&f->lock);
		plog("sftp", f->key,
		     "connection lost with %s open%s: EIO from now on", h->path,
		     h->dir ? "" : " for writing");
		pthread_mutex_lock(&f->lock);
		return h->err;
	}
	struct sftp_attr st;
	bool have_st = false;
	char *handle = NULL;
	size_t hlen;
	unsigned gen;
	int rc = do_open(f, SSH_FXP_OPEN, h->path, SSH_FXF_READ,
			 &(struct sftp_attrs){0}, true, &st, &have_st, &handle,
			 &hlen, &gen);
	/* Not reached again yet: a later call tries again. */
	if (rc == -EINTR || rc == -ENOTCONN || rc == -EHOSTUNREACH ||
	    rc == -ECONNREFUSED || rc == -ETIMEDOUT || rc == SREQ_LOST)
		return rc;
	bool same = !rc && have_st && st.size == h->size0 &&
		    (uint32_t)st.mtime == h->mtime0;
	if (!rc && !same) {
		struct buf b;
		uint32_t id = sreq_begin(f, &b, SSH_FXP_CLOSE);
		sftp_put_str(&b, handle, hlen);
		fire_and_forget(f, sreq_make(&b, id, gen));
		free(handle);
	}
	if (!same) {
		h->err = -EIO;
		pthread_mutex_unlock(&f->lock);
		plog("sftp", f->key,
		     "%s changed on the pod (or is gone) while the connection "
		     "was down: EIO from now on",
		     h->path);
		pthread_mutex_lock(&f->lock);
		return h->err;
	}
	free(h->handle);
	h->handle = handle;
	h->hlen = hlen;
	h->gen = gen;
	return 0;
}

/* The data of a done READ in the ring: 0 and *d, *dl; 1 at the end of the
 * file; -errno. */
static int slot_data(struct sftp_file *h, struct ra *a, const char **d,
		     size_t *dl)
{
	struct sreq *r = a->r;
	if (r->err == SREQ_LOST)
		return SREQ_LOST;
	if (!r->err && r->type == SSH_FXP_STATUS && r->status == SSH_FX_EOF)
		return 1;
	if (r->err || r->type != SSH_FXP_DATA)
		return sftp_errno(h->f, OP_READ, r, h->path, NULL);
	struct sftp_dec dec;
	sftp_dec_init(&dec, r->reply, r->rlen);
	if (!sftp_get_str(&dec, d, dl) || *dl > a->len || !*dl)
		return -EIO;
	a->dl = *dl;
	return 0;
}

/* Bytes [pos, end) the READ of slot a fell short of, read on their own
 * (rare: OpenSSH answers short only at the end of the file). */
static ssize_t read_rest(struct sftp_file *h, char *out, uint64_t pos, size_t n)
{
	struct buf b;
	uint32_t id = hreq_begin(h, &b, SSH_FXP_READ);
	sftp_put_u64(&b, pos);
	sftp_put_u32(&b, (uint32_t)n);
	struct sreq *r = sreq_make(&b, id, h->gen);
	int rc = sftp_call(h->f, r, false);
	if (rc)
		return rc;
	struct ra one = {r, pos, n, 0, 0};
	const char *d;
	size_t dl;
	rc = slot_data(h, &one, &d, &dl);
	ssize_t got = rc == 1 ? 0 : rc ? rc : (ssize_t)dl;
	if (!rc)
		memcpy(out, d, dl);
	sreq_free(r);
	return rc == SREQ_LOST ? -EIO : got;
}

/* Reads ahead while the file is read in order: READs of CHUNK bytes in
 * a ring, up to h->window bytes past what is asked, the window doubling
 * at each call in order. Calls a little out of order (the kernel's reads
 * of one stream handled by several threads) are served from the ring; a
 * slot goes once all its bytes were copied out. Anything else starts the
 * ring afresh. */
ssize_t sftp_read(struct sftp_file *h, void *buf, size_t n, uint64_t off)
{
	struct sftp *f = h->f;
	int err = 0;
	if (h_enter(h))
		return -EINTR;
	if (h->err || h->dir) {
		err = h->dir ? -EISDIR : h->err;
		h_leave(h);
		return err;
	}
	if (h->wb_len)
		err = wb_flush(h); /* the read must see it */
	if (err) {
		h_leave(h);
		return err;
	}
	bool in_ring =
	    h->ra_n && off >= h->ra[h->ra_head].off && off <= h->ra_next;
	if (!in_ring && off != h->seq) {
		ra_drop(h);
		h->ra_next = off;
		h->window = 0;
		h->eof_known = false;
	} else if (h->window < SFTP_READ_AHEAD) {
		/* From the start of the file: a stream, most likely. */
		h->window = h->window ? 2 * h->window : off ? CHUNK : RA_START;
	}
	size_t got = 0;
	while (got < n) {
		uint64_t pos = off + got, want_end = off + n + h->window;
		/* Not far past the size the file had at its open (one READ
		 * past it: its EOF comes with the data). */
		if (h->rdonly && want_end > h->size0 + CHUNK)
			want_end = off + n > h->size0 + CHUNK
				       ? off + n
				       : h->size0 + CHUNK;
		while (h->ra_n < RA_SLOTS && h->ra_next < want_end &&
		       !(h->eof_known && h->ra_next >= h->eof_at)) {
			ra_push(h, SSH_FXP_READ, h->ra_next, CHUNK);
			h->ra_next += CHUNK;
		}
		if (h->eof_known && pos >= h->eof_at)
			break;
		struct ra *a = NULL;
		for (int i = 0; i < h->ra_n && !a; i++) {
			struct ra *s = &h->ra[(h->ra_head + i) % RA_SLOTS];
			if (s->off <= pos && pos < s->off + s->len)
				a = s;
		}
		if (!a) { /* behind the ring, or past a full one */
			ra_drop(h);
			h->ra_next = pos;
			continue;
		}
		err = sreq_wait(f, a->r);
		if (err) {
			a->r = NULL; /* abandoned by the wait */
			ra_drop(h);
			break;
		}
		const char *d = NULL;
		size_t dl = 0;
		err = slot_data(h, a, &d, &dl);
		if (err == SREQ_LOST) {
			ra_drop(h);
			h->ra_next = pos;
			err = h_revive(h);
			if (err)
				break;
			continue;
		}
		if (err == 1) {
			err = 0;
			h->eof_known = true;
			h->eof_at = a->off;
			break;
		}
		if (err) {
			ra_drop(h);
			break;
		}
		size_t skip = (size_t)(pos - a->off);
		if (skip < dl) {
			size_t c = min_sz(n - got, dl - skip);
			memcpy((char *)buf + got, d + skip, c);
			a->served += c;
			got += c;
		} else {
			/* Short: the end of the file, if the next READ (in
			 * flight already) says so. */
			int i = (int)(a - h->ra);
			int next = (i + 1) % RA_SLOTS;
			const char *d2;
			size_t dl2;
			if (next != (h->ra_head + h->ra_n) % RA_SLOTS) {
				err = sreq_wait(f, h->ra[next].r);
				if (err) {
					h->ra[next].r = NULL; /* abandoned */
					ra_drop(h);
					break;
				}
				if (slot_data(h, &h->ra[next], &d2, &dl2) ==
				    1) {
					h->eof_known = true;
					h->eof_at = pos;
					break;
				}
			}
			size_t c = min_sz(n - got, a->len - skip);
			ssize_t k = read_rest(h, (char *)buf + got, pos, c);
			if (k < 0)
				err = (int)k;
			if (k == 0) {
				h->eof_known = true;
				h->eof_at = pos;
			}
			if (k <= 0)
				break;
			got += (size_t)k;
			a->served += (size_t)k;
		}
		/* Slots whose bytes all went out. */
		while (h->ra_n && h->ra[h->ra_head].r->done &&
		       h->ra[h->ra_head].dl &&
		       h->ra[h->ra_head].served >= h->ra[h->ra_head].len) {
			sreq_free(h->ra[h->ra_head].r);
			ra_pop(h);
		}
	}
	if (!err)
		h->seq = off + got;
	h_leave(h);
	return err ? err : (ssize_t)got;
}

/* Notes the outcome of the oldest write in flight and lets it go. */
static void wq_note(struct sftp_file *h)
{
	struct sftp *f = h->f;
	struct sreq *r = h->wq[h->wq_head];
	if (!h->err && !(r->type == SSH_FXP_STATUS && r->status == SSH_FX_OK))
		h->err = sftp_errno(f, OP_WRITE, r, h->path, NULL);
	sreq_free(r);
	h->wq_bytes -= h->wlen[h->wq_head];
	h->wq_head = (h->wq_head + 1) % WB_SLOTS;
	h->wq_n--;
}

/* Waits for the oldest write: 0 or -EINTR/-EIO (then what it did is
 * unknown, and the file says EIO from now on). */
static int wq_wait(struct sftp_file *h)
{
	int w = sreq_wait(h->f, h->wq[h->wq_head]);
	if (w) {
		if (!h->err)
			h->err = -EIO;
		h->wq_bytes -= h->wlen[h->wq_head];
		h->wq_head = (h->wq_head + 1) % WB_SLOTS;
		h->wq_n--;
		return w;
	}
	wq_note(h);
	return 0;
}

static int wq_drain(struct sftp_file *h)
{
	while (h->wq_n) {
		int w = wq_wait(h);
		if (w == -EINTR)
			return w;
	}
	return h->err;
}

/* Sends the WRITE being filled, once a slot is free. */
static int wb_flush(struct sftp_file *h)
{
	if (!h->wb_len)
		return 0;
	int err = 0;
	while (!err && h->wq_n &&
	       (h->wq_n == WB_SLOTS ||
		h->wq_bytes + h->wb_len > SFTP_WRITE_BEHIND))
		err = wq_wait(h);
	if (!err && h->err)
		err = h->err;
	if (err) {
		buf_free(&h->wb);
		h->wb_len = 0;
		return err;
	}
	/* The data's length, after length, type, id, handle and offset. */
	uint8_t *p = (uint8_t *)h->wb.data + 4 + 1 + 4 + 4 + h->hlen + 8;
	uint32_t n = (uint32_t)h->wb_len;
	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
	struct sftp_dec d;
	sftp_dec_init(&d, h->wb.data + 5, 4);
	uint32_t id = 0;
	sftp_get_u32(&d, &id);
	int slot = (h->wq_head + h->wq_n) % WB_SLOTS;
	h->wq[slot] = sreq_make(&h->wb, id, h->gen);
	h->wlen[slot] = h->wb_len;
	h->wq_n++;
	h->wq_bytes += h->wb_len;
	h->wb_len = 0;
	sreq_submit(h->f, h->wq[slot]);
	return 0;
}

ssize_t sftp_write(struct sftp_file *h, const void *buf, size_t n, uint64_t off)
{
	struct sftp *f = h->f;
	if (h_enter(h))
		return -EINTR;
	ra_drop(h); /* what it read ahead may be older than this */
	sftp_cache_drop(f, h->path);
	h->eof_known = false;
	h->seq = UINT64_MAX;
	while (h->wq_n && h->wq[h->wq_head]->done)
		wq_note(h);
	int err = h->dir ? -EISDIR : 0;
	if (!err && !h->err && h->gen != f->gen)
		err = h_revive(h); /* its channel is gone: EIO */
	if (!err && h->wb_len && off != h->wb_off + h->wb_len)
		err = wb_flush(h);
	size_t room = WPACKET - (4 + 1 + 4 + 4 + h->hlen + 8 + 4);
	for (size_t done = 0; !err && !h->err && done < n;) {
		if (!h->wb_len) {
			hreq_begin(h, &h->wb, SSH_FXP_WRITE);
			buf_reserve(&h->wb, WPACKET); /* no regrowth */
			sftp_put_u64(&h->wb, off + done);
			sftp_put_u32(&h->wb, 0); /* filled by wb_flush */
			h->wb_off = off + done;
		}
		size_t c = min_sz(room - h->wb_len, n - done);
		buf_add(&h->wb, (const char *)buf + done, c);
		h->wb_len += c;
		done += c;
		if (h->wb_len == room)
			err = wb_flush(h);
	}
	if (!err)
		err = h->err;
	h_leave(h);
	return err ? err : (ssize_t)n;
}

/* A handle request answered by STATUS or ATTRS; a read-only file
 * reopens once if its channel went. */
static int h_simple(struct sftp_file *h, uint8_t type,
		    const struct sftp_attrs *x, const char *ext,
		    struct sftp_attr *a)
{
	struct sftp *f = h->f;
	for (int attempt = 0;; attempt++) {
		struct buf b;
		uint32_t id;
		if (ext) {
			id = sreq_begin_ext(f, &b, ext);
			sftp_put_str(&b, h->handle, h->hlen);
		} else {
			id = hreq_begin(h, &b, type);
		}
		if (x)
			sftp_put_attrs(&b, x);
		struct sreq *r = sreq_make(&b, id, h->gen);
		int rc = h_call(h, r);
		if (rc)
			return rc;
		if (r->err == SREQ_LOST && !attempt && h->rdonly && !ext &&
		    type == SSH_FXP_FSTAT) {
			sreq_free(r);
			rc = h_revive(h);
			if (rc)
				return rc;
			continue;
		}
		if (a && r->type == SSH_FXP_ATTRS)
			rc = sftp_reply_attrs(r, a);
		else if (!(r->type == SSH_FXP_STATUS &&
			   r->status == SSH_FX_OK) ||
			 r->err)
			rc = sftp_errno(
			    f, type == SSH_FXP_FSETSTAT ? OP_SETSTAT : OP_STAT,
			    r, h->path, NULL);
		sreq_free(r);
		return rc;
	}
}

int sftp_fstat(struct sftp_file *h, struct sftp_attr *a)
{
	if (h_enter(h))
		return -EINTR;
	int rc = wb_flush(h);
	if (!rc)
		rc =
		    h->err ? h->err : h_simple(h, SSH_FXP_FSTAT, NULL, NULL, a);
	h_leave(h);
	return rc;
}

int sftp_fsetstat(struct sftp_file *h, const struct sftp_attr *a)
{
	struct sftp_attrs x;
	int rc = sftp_attr_to(&x, a);
	if (rc)
		return rc;
	if (h_enter(h))
		return -EINTR;
	ra_drop(h);
	rc = wb_flush(h);
	if (!rc)
		rc = h->err ? h->err
			    : h_simple(h, SSH_FXP_FSETSTAT, &x, NULL, NULL);
	sftp_cache_drop(h->f, h->path);
	h_leave(h);
	return rc;
}

int sftp_fsync(struct sftp_file *h)
{
	if (h_enter(h))
		return -EINTR;
	int rc = wb_flush(h);
	if (!rc)
		rc = wq_drain(h);
	if (!rc && h->f->x_fsync && !h->dir)
		rc = h_simple(h, 0, NULL, "fsync@openssh.com", NULL);
	if (h->writable) /* its writes are in */
		sftp_cache_drop(h->f, h->path);
	h_leave(h);
	return rc;
}

int sftp_drain(struct sftp_file *h)
{
	if (h_enter(h))
		return -EINTR;
	int rc = wb_flush(h);
	if (!rc)
		rc = wq_drain(h);
	if (h->writable) /* its writes are in */
		sftp_cache_drop(h->f, h->path);
	h_leave(h);
	return rc;
}

int sftp_close(struct sftp_file *h)
{
	struct sftp *f = h->f;
	h_enter_ex(h, false); /* a close always closes */
	ra_drop(h);
	int rc = wb_flush(h);
	int d = wq_drain(h);
	if (!rc)
		rc = d;
	if (rc == -EINTR)
		rc = -EIO; /* closed all the same */
	while (h->wq_n) {  /* left by an interruption: their replies dropped */
		sreq_abandon(f, h->wq[h->wq_head]);
		h->wq_head = (h->wq_head + 1) % WB_SLOTS;
		h->wq_n--;
	}
	/* A handle of a channel gone went with it. A file only read is
	 * closed without waiting: its CLOSE has nothing to tell. */
	if (f->ready && f->gen == h->gen) {
		struct buf b;
		uint32_t id = hreq_begin(h, &b, SSH_FXP_CLOSE);
		struct sreq *r = sreq_make(&b, id, h->gen);
		if (!h->writable) {
			fire_and_forget(f, r);
		} else if (!sftp_call(f, r, false)) {
			/* Lost: every write was answered already. */
			if (!rc && r->err != SREQ_LOST &&
			    !(r->type == SSH_FXP_STATUS &&
			      r->status == SSH_FX_OK))
				rc = sftp_errno(f, OP_WRITE, r, h->path, NULL);
			sreq_free(r);
		}
	}
	if (!rc)
		rc = h->err;
	if (h->writable)
		sftp_cache_drop(f, h->path);
	h_leave(h);
	file_free(h);
	return rc;
}

int sftp_opendir(struct sftp *f, const char *path, struct sftp_file **out)
{
	*out = NULL;
	int rc = sftp_path_check(path);
	if (rc)
		return rc;
	struct sftp_file *h = file_new(f, path);
	h->dir = true;
	pthread_mutex_lock(&f->lock);
	rc = do_open(f, SSH_FXP_OPENDIR, path, 0, NULL, true, NULL, NULL,
		     &h->handle, &h->hlen, &h->gen);
	pthread_mutex_unlock(&f->lock);
	if (rc) {
		file_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

static int parse_names(const struct sreq *r, struct sftp_dirent **ents,
		       size_t *n)
{
	struct sftp_dec d;
	uint32_t count;
	sftp_dec_init(&d, r->reply, r->rlen);
	if (!sftp_get_u32(&d, &count) || count > r->rlen / 12)
		return -EIO;
	struct sftp_dirent *e = xcalloc(count ? count : 1, sizeof *e);
	size_t k = 0;
	for (; k < count; k++) {
		const char *s, *l;
		size_t sl, ll;
		struct sftp_attrs x;
		if (!sftp_get_str(&d, &s, &sl) || !sftp_get_str(&d, &l, &ll) ||
		    !sftp_get_attrs(&d, &x) || memchr(s, 0, sl))
			break;
		e[k].name = xstrndup(s, sl);
		e[k].attr.flags = x.flags & 15;
		e[k].attr.size = x.size;
		e[k].attr.uid = x.uid;
		e[k].attr.gid = x.gid;
		e[k].attr.mode = x.perm;
		e[k].attr.atime = x.atime;
		e[k].attr.mtime = x.mtime;
	}
	if (k < count) {
		sftp_dirents_free(e, k);
		return -EIO;
	}
	*ents = e;
	*n = k;
	return 0;
}

int sftp_readdir(struct sftp_file *d, struct sftp_dirent **ents, size_t *n)
{
	struct sftp *f = d->f;
	*ents = NULL;
	*n = 0;
	if (h_enter(d))
		return -EINTR;
	int rc = d->dir ? d->err : -ENOTDIR;
	while (!rc && !d->eof_known) {
		if (d->window < DIR_AHEAD)
			d->window = DIR_AHEAD;
		while (d->ra_n < (int)d->window)
			ra_push(d, SSH_FXP_READDIR, 0, 0);
		struct sreq *r = d->ra[d->ra_head].r;
		rc = sreq_wait(f, r);
		ra_pop(d);
		if (rc)
			break;
		if (r->err == SREQ_LOST) {
			rc = h_revive(d);
		} else if (r->type == SSH_FXP_STATUS &&
			   r->status == SSH_FX_EOF) {
			d->eof_known = true;
		} else if (r->type == SSH_FXP_NAME) {
			rc = parse_names(r, ents, n);
			sreq_free(r);
			if (d->window < DIR_AHEAD_MAX)
				d->window *= 2;
			break;
		} else {
			rc = sftp_errno(f, OP_READ, r, d->path, NULL);
		}
		sreq_free(r);
	}
	if (d->eof_known)
		ra_drop(d);
	h_leave(d);
	return rc;
}

void sftp_dirents_free(struct sftp_dirent *ents, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
}
