/* fs_file.c — files: open, read, write, flush, release, truncate, poll.
 *
 * Value files are rendered whole at open into the handle, so a read never
 * mixes two versions. Those of an immutable snapshot (tree_cacheable) are
 * opened with keep_cache, so a warm read is served from the kernel's page
 * cache; the others with direct_io, so that the kernel reads to end of
 * file whatever size an earlier getattr saw (cost grows while you look at
 * it). Files with hooks (run, exit, the job files) are served by their
 * hooks (tree.h), which know nothing of FUSE: this file only turns their
 * wake into poll notifications. */
#include "fs_int.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "template.h"

/* ---- files ---- */

static void poll_wake(void *arg);

static void handle_free(struct handle *h)
{
	live_del(&h->live);
	pthread_mutex_destroy(&h->ph_mu);
	free(h->pod_id);
	free(h->path);
	buf_free(&h->data);
	free(h);
}

/* Opens path: 0 and fi->fh set, or -errno. */
int do_open(const char *path, struct fuse_file_info *fi)
{
	stats_count(ST_FUSE_OPEN);
	unsigned long gen = tree_generation(fs()->tree);
	struct node n;
	int rc = tree_resolve(fs()->tree, path, &n);
	if (rc)
		return rc;
	int acc = fi->flags & O_ACCMODE;
	if (n.type == N_DIR)
		rc = -EISDIR;
	else if (n.type != N_FILE)
		rc = -EACCES;
	else if (acc != O_RDONLY && !file_writable(n.file))
		rc = -EACCES;
	else if (acc != O_WRONLY && (n.file->flags & F_WRITE_ONLY))
		rc = -EACCES;
	else
		rc = caller_may(node_mode(&n), acc);
	if (rc) {
		node_release(&n);
		return rc;
	}
	const struct file_hooks *hooks = n.file->hooks;
	struct handle *h = xcalloc(1, sizeof *h);
	live_add(&live_files, &h->live);
	buf_init(&h->data);
	h->file = n.file;
	h->path = xstrdup(path);
	h->append = fi->flags & O_APPEND;
	h->gen = gen;
	pthread_mutex_init(&h->ph_mu, NULL);
	if (n.dir == D_POD && n.obj) /* a pod's file: stores need the pod */
		h->pod_id = xstrdup(((const struct pod *)n.obj)->id);
	else if ((n.dir == D_NODE || n.dir == D_NODEALL) && n.pod_id)
		h->pod_id = xstrdup(n.pod_id); /* a node key (nodes.h) */
	h->fh = (struct tree_handle){.tree = fs()->tree,
				     .path = h->path,
				     .pod_id = h->pod_id,
				     .mnt = fs()->mountpoint,
				     .pid = caller()->pid,
				     .acc = acc,
				     .nonblock = fi->flags & O_NONBLOCK,
				     .interrupted = interrupted,
				     .wake = poll_wake,
				     .wake_arg = h};
	if ((n.file->flags & F_LEASE) && acc != O_RDONLY) {
		h->lease = true;
		tree_lease(fs()->tree, h->pod_id, true);
	}
	if (hooks) {
		if (hooks->open)
			rc = hooks->open(&h->fh, &n);
	} else if (fi->flags & O_TRUNC) {
		h->truncated = true;
	} else if (!(n.file->flags & F_WRITE_ONLY)) {
		rc = tree_render(fs()->tree, &n, &h->data);
	}
	/* An immutable snapshot's value: the kernel keeps its pages until
	 * kc_send_inodes invalidates the inode. */
	h->cached = !rc && acc == O_RDONLY && tree_cacheable(&n);
	node_release(&n);
	if (rc) {
		if (h->lease)
			tree_lease(fs()->tree, h->pod_id, false);
		handle_free(h);
		return rc;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->keep_cache = h->cached;
	fi->direct_io = !h->cached;
	if (n.file->flags & F_STREAM)
		fi->nonseekable = 1;
	return 0;
}

/* The last of a handle: RELEASE, or an OPEN whose reply failed. */
void do_release(struct handle *h)
{
	const struct file_hooks *hooks = h->file->hooks;
	/* `: > config`: truncated, never written. Flush did not store it, as
	 * a shell's dup2 flushes before the write comes; an empty template
	 * cannot be invalid, so nothing is lost by storing it this late. */
	if (h->truncated && h->file->store && !(h->file->flags & F_PER_WRITE)) {
		h->file->store(fs()->tree, h->pod_id, "", 0);
		kc_sync();
	}
	if (h->lease)
		tree_lease(fs()->tree, h->pod_id, false);
	if (hooks && hooks->release) {
		hooks->release(&h->fh); /* no poll_wake() on h from now on */
		kc_sync(); /* a job started at the last close: its files */
	}
	pthread_mutex_lock(&h->ph_mu);
	struct fuse_pollhandle *ph = h->ph;
	h->ph = NULL;
	pthread_mutex_unlock(&h->ph_mu);
	if (ph)
		fuse_pollhandle_destroy(ph);
	handle_free(h);
}

void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	cur = req;
	struct buf path;
	buf_init(&path);
	int rc = ino_path(ino, &path);
	if (rc == 0)
		rc = do_open(path.data, fi);
	buf_free(&path);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	cur = NULL;
	if (fuse_reply_open(req, fi) == -ENOENT)
		do_release((struct handle *)(uintptr_t)fi->fh);
}

void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi)
{
	(void)ino;
	cur = req;
	stats_count(ST_FUSE_READ);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	const struct file_hooks *hooks = h->file->hooks;
	if (hooks) {
		if (!hooks->read) {
			cur = NULL;
			fuse_reply_buf(req, NULL, 0);
			return;
		}
		char *out = xmalloc(size ? size : 1);
		int n = hooks->read(&h->fh, out, size, off);
		if (n < 0) {
			reply_err(req, n);
		} else {
			cur = NULL;
			fuse_reply_buf(req, out, (size_t)n);
		}
		free(out);
		return;
	}
	/* Pages of an older snapshot than the tree now holds may be cached
	 * by this read after the inode was invalidated: again, a moment
	 * later. */
	if (h->cached && tree_generation(fs()->tree) != h->gen)
		kc_push(h->path, false, true);
	size_t n = 0;
	if (off >= 0 && (size_t)off < h->data.len) {
		n = h->data.len - (size_t)off;
		if (n > size)
			n = size;
	}
	/* Replied from a copy: once the kernel has the data, the file may be
	 * released (and h freed) before fuse_reply_buf returns. */
	char small[4096];
	char *copy = n <= sizeof small ? small : xmalloc(n);
	if (n)
		memcpy(copy, h->data.data + off, n);
	cur = NULL;
	fuse_reply_buf(req, copy, n);
	if (copy != small)
		free(copy);
}

/* Bytes taken, or -errno. */
static int do_write(struct handle *h, const char *data, size_t size, off_t off)
{
	const struct file_hooks *hooks = h->file->hooks;
	if (hooks)
		return hooks->write ? hooks->write(&h->fh, data, size, off)
				    : -EACCES;
	if (!h->file->store)
		return -EACCES;
	if (h->file->flags & F_PER_WRITE) {
		int rc = h->file->store(fs()->tree, h->pod_id, data, size);
		kc_sync();
		return rc ? rc : (int)size;
	}
	/* Whole-file writes are gathered and stored when the file closes.
	 * An append goes to the end of what was rendered at open, not to
	 * the size the kernel holds (which may be older). */
	if (h->append)
		off = (off_t)h->data.len;
	if (off < 0 || (size_t)off + size > TEMPLATE_MAX_SIZE)
		return -EFBIG;
	size_t end = (size_t)off + size;
	while (h->data.len < end) /* a hole, or the file growing */
		buf_addc(&h->data, '\0');
	memcpy(h->data.data + off, data, size);
	h->dirty = true;
	if (!h->refused && h->file->check) {
		int rc = h->file->check(fs()->tree, h->data.data, h->data.len,
					(size_t)off);
		if (rc) {
			h->refused = true;
			return rc;
		}
	}
	if (h->refused)
		return -EINVAL;
	if ((h->file->flags & F_STORE_LINE) && size && end == h->data.len &&
	    h->data.data[end - 1] == '\n') {
		h->dirty = false;
		h->truncated = false;
		h->store_err = h->file->store(fs()->tree, h->pod_id,
					      h->data.data, h->data.len);
		kc_sync();
		if (h->store_err)
			return h->store_err;
	}
	return (int)size;
}

void ll_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size,
	      off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	cur = req;
	int n = do_write((struct handle *)(uintptr_t)fi->fh, data, size, off);
	if (n < 0) {
		reply_err(req, n);
		return;
	}
	cur = NULL;
	fuse_reply_write(req, (size_t)n);
}

/* close() returns what this returns: a bad template fails the close (and
 * a line bad alone failed its write already). */
static int do_flush(struct handle *h)
{
	const struct file_hooks *hooks = h->file->hooks;
	if (hooks) {
		int rc = hooks->flush ? hooks->flush(&h->fh, caller()->pid) : 0;
		kc_sync();
		return rc;
	}
	if (h->refused) { /* a write failed and said so: the old is kept */
		h->truncated = false;
		return -EINVAL;
	}
	if (!h->dirty || !h->file->store || (h->file->flags & F_PER_WRITE))
		return h->store_err; /* F_STORE_LINE's, told again at close */
	h->dirty = false;
	h->truncated = false;
	int rc = h->file->store(fs()->tree, h->pod_id,
				h->data.data ? h->data.data : "", h->data.len);
	kc_sync();
	return rc;
}

void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	cur = req;
	stats_count(ST_FUSE_FLUSH);
	reply_err(req, do_flush((struct handle *)(uintptr_t)fi->fh));
}

void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	cur = req;
	stats_count(ST_FUSE_RELEASE);
	do_release((struct handle *)(uintptr_t)fi->fh);
	reply_err(req, 0);
}

/* truncate(2) of path, or ftruncate(2) of an open file (h): 0 or -errno. */
int do_truncate(const char *path, off_t size, struct handle *h)
{
	if (size < 0 || size > TEMPLATE_MAX_SIZE)
		return -EFBIG;
	if (h) { /* ftruncate on an open writable file */
		if (!h->file->store)
			return -EACCES;
		if (!(h->file->flags & F_PER_WRITE)) {
			while (h->data.len < (size_t)size)
				buf_addc(&h->data, '\0');
			h->data.len = (size_t)size;
			h->dirty = true;
		}
		return 0;
	}
	struct node n;
	int rc = tree_resolve(fs()->tree, path, &n);
	if (rc)
		return rc;
	if (n.type == N_DIR) {
		rc = -EISDIR;
	} else if (n.type != N_FILE || !n.file->store) {
		rc = -EACCES;
	} else if (!(rc = caller_may(node_mode(&n), O_WRONLY)) &&
		   !(n.file->flags & F_PER_WRITE)) {
		/* `truncate -s N config`: the new content, checked whole. */
		struct buf b;
		buf_init(&b);
		rc = tree_render(fs()->tree, &n, &b);
		while (rc == 0 && b.len < (size_t)size)
			buf_addc(&b, '\0');
		if (rc == 0) {
			b.len = (size_t)size;
			rc = n.file->store(fs()->tree,
					   n.dir == D_POD && n.obj
					       ? ((const struct pod *)n.obj)->id
					       : NULL,
					   b.data ? b.data : "", b.len);
			kc_sync();
		}
		buf_free(&b);
	}
	node_release(&n);
	return rc;
}

/* ---- poll ---- */

/* The hooks' wake (any thread): what a poll waits for may have come. */
static void poll_wake(void *arg)
{
	struct handle *h = arg;
	pthread_mutex_lock(&h->ph_mu);
	struct fuse_pollhandle *ph = h->ph;
	h->ph = NULL;
	pthread_mutex_unlock(&h->ph_mu);
	if (ph) {
		fuse_lowlevel_notify_poll(ph);
		fuse_pollhandle_destroy(ph);
	}
}

void ll_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	     struct fuse_pollhandle *ph)
{
	(void)ino;
	cur = req;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	const struct file_hooks *hooks = h->file->hooks;
	unsigned ready = POLLIN | POLLRDNORM;
	if (file_writable(h->file))
		ready |= POLLOUT | POLLWRNORM;
	struct fuse_pollhandle *drop = ph; /* destroyed below unless kept */
	bool waits = false;
	if (hooks && hooks->poll) {
		/* Under ph_mu: a wake that comes between the hook's look and
		 * keeping ph waits for it, and then finds ph. */
		pthread_mutex_lock(&h->ph_mu);
		waits = !hooks->poll(&h->fh, ph != NULL);
		if (waits && ph) {
			drop = h->ph; /* an older poll's, now unused */
			h->ph = ph;
		}
		pthread_mutex_unlock(&h->ph_mu);
	}
	if (drop)
		fuse_pollhandle_destroy(drop);
	cur = NULL;
	fuse_reply_poll(req, waits ? ready & ~(unsigned)(POLLIN | POLLRDNORM)
				   : ready);
}
