/* fs.c — FUSE operations over the tree. Files are rendered whole at open
 * into the handle, so a read never mixes two versions, and opened with
 * direct_io so that the kernel reads to end of file whatever size an
 * earlier getattr saw (cost grows while you look at it). */
#include "fs.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guards.h"
#include "intent.h"
#include "log.h"
#include "runs.h"
#include "template.h"

/* Locking of a run or exit handle. FUSE may call read, write, flush and
 * poll on one handle at once (from different threads), and the watched
 * command's I/O thread calls poll_wake() at any time until its watch is
 * removed; release comes last, after every other call on the handle.
 * - h->mu guards what changes after open: cmd (and the reference it
 *   holds), cur, watch, ph, data, exit_done.
 * - Nothing waits under h->mu: no runs_start() (network), no
 *   ssh_cmd_wait() with a timeout, no fuse_notify_poll(). To use the
 *   command outside h->mu, take a reference of your own under it.
 * - The watch, if any, is on h->cmd, and is registered under h->mu (that
 *   takes only the command's lock). Whoever replaces h->cmd takes the
 *   watch out with it under h->mu, then, with h->mu released, unwatches
 *   and puts the command (drop_cmd): ssh_cmd_unwatch() waits out a
 *   running poll_wake(), which takes h->mu.
 * - A pollhandle belongs to whoever takes it out of h->ph under h->mu
 *   (poll_wake, a newer poll, release); that one destroys it. */
struct handle {
	struct buf data;
	const struct file_def *file;
	bool dirty;	/* written since the last store */
	bool truncated; /* opened with O_TRUNC and nothing stored yet */
	bool refused;	/* a write failed its check: nothing is stored */
	char *path;	/* as opened: getattr by handle gets no path */
	/* run and exit */
	char *pod_id;
	bool own;   /* opened for writing: follows its own command */
	bool lease; /* holds its pod's lease (F_LEASE opened for writing) */
	bool nonblock;
	bool too_big; /* run: the script passed RUNS_MAX_SCRIPT */
	pthread_mutex_t mu;
	struct ssh_cmd *cmd; /* followed by this handle; NULL before any */
	struct ssh_cursor cur;
	bool exit_done; /* data holds the exit text */
	struct fuse_pollhandle *ph;
	int watch; /* on cmd, or -1 */
};

static struct primefs *fs(void)
{
	return fuse_get_context()->private_data;
}

/* Defence in depth behind default_permissions (main.c always mounts with
 * it): a caller other than the mounting user or root gets no more than
 * the bits node_mode() gives others, for an access mode O_RDONLY,
 * O_WRONLY or O_RDWR. A change to the tree (mkdir, rmdir) passes mode 0. */
static int caller_may(mode_t mode, int acc)
{
	uid_t uid = fuse_get_context()->uid;
	if (uid == getuid() || uid == 0)
		return 0;
	if (acc != O_WRONLY && !(mode & S_IROTH))
		return -EACCES;
	if (acc != O_RDONLY && !(mode & S_IWOTH))
		return -EACCES;
	return 0;
}

static bool interrupted(void *arg);

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* A reader waiting for a listing gives up when its request is. */
	cache_set_interrupt(fs()->cache, interrupted, NULL);
	/* Threads start here, after the daemon has forked. */
	guards_start(fs()->guards);
	/* O_TRUNC arrives with open, not as a separate truncate. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* No kernel caching of names or attributes: a pod has two names (its
	 * own and its id), and when rmdir removes one the other must be gone
	 * too. Lookups are answered from the snapshot, in memory. */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->kernel_cache = 0;
	/* No path lock for calls on an open handle: an rmdir of the pod must
	 * not wait behind a reader blocked on its run or exit. Handlers of
	 * such calls work from the handle (getattr, readdir: its path). */
	cfg->nullpath_ok = 1;
	return fuse_get_context()->private_data;
}

/* The path of a request, or of its open file when the kernel sent none
 * (nullpath_ok: fstat, fchmod of an open file); NULL when neither. */
static const char *req_path(const char *path, struct fuse_file_info *fi)
{
	if (!path && fi)
		path = ((struct handle *)(uintptr_t)fi->fh)->path;
	return path;
}

static int fs_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	if (!(path = req_path(path, fi)))
		return -ENOENT;
	struct node n;
	int rc = tree_resolve(fs()->tree, path, &n);
	if (rc)
		return rc;
	memset(st, 0, sizeof *st);
	st->st_mode = node_mode(&n);
	st->st_nlink = n.type == N_DIR ? 2 : 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_mtime = st->st_ctime = st->st_atime = n.mtime;
	st->st_blksize = 4096;
	struct buf b;
	buf_init(&b);
	if (n.type == N_LINK)
		rc = tree_readlink(fs()->tree, &n, &b);
	else if (n.type == N_FILE &&
		 !(n.file->flags & (F_STREAM | F_WRITE_ONLY)))
		rc = tree_render(fs()->tree, &n, &b);
	st->st_size = (off_t)b.len;
	st->st_blocks = (blkcnt_t)((b.len + 511) / 512);
	buf_free(&b);
	node_release(&n);
	return rc;
}

static int fs_readlink(const char *path, char *out, size_t size)
{
	struct node n;
	int rc = tree_resolve(fs()->tree, path, &n);
	if (rc)
		return rc;
	struct buf b;
	buf_init(&b);
	rc = tree_readlink(fs()->tree, &n, &b);
	if (!rc && size) {
		size_t len = b.len < size - 1 ? b.len : size - 1;
		memcpy(out, b.data, len);
		out[len] = '\0';
	}
	buf_free(&b);
	node_release(&n);
	return rc;
}

struct fill_ctx {
	void *buf;
	fuse_fill_dir_t filler;
};

static int add_entry(void *ctx, const char *name)
{
	struct fill_ctx *f = ctx;
	return f->filler(f->buf, name, NULL, 0, 0);
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	(void)off;
	(void)flags;
	if (!path) /* nullpath_ok: the path opendir kept */
		path = (const char *)(uintptr_t)fi->fh;
	struct node n;
	int rc = tree_resolve(fs()->tree, path, &n);
	if (rc)
		return rc;
	struct fill_ctx ctx = {buf, filler};
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	rc = tree_list(fs()->tree, &n, add_entry, &ctx);
	node_release(&n);
	return rc;
}

static int fs_opendir(const char *path, struct fuse_file_info *fi)
{
	fi->fh = (uint64_t)(uintptr_t)xstrdup(path);
	return 0;
}

static int fs_releasedir(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	free((char *)(uintptr_t)fi->fh);
	return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	struct node n;
	int rc = tree_resolve(fs()->tree, path, &n);
	if (rc)
		return rc;
	int acc = fi->flags & O_ACCMODE;
	if (n.type == N_DIR)
		rc = -EISDIR;
	else if (n.type != N_FILE)
		rc = -EACCES;
	else if (acc != O_RDONLY && !n.file->store && !(n.file->flags & F_RUN))
		rc = -EACCES;
	else if (acc != O_WRONLY && (n.file->flags & F_WRITE_ONLY))
		rc = -EACCES;
	else
		rc = caller_may(node_mode(&n), acc);
	if (rc) {
		node_release(&n);
		return rc;
	}
	struct handle *h = xcalloc(1, sizeof *h);
	buf_init(&h->data);
	h->file = n.file;
	h->path = xstrdup(path);
	h->watch = -1;
	pthread_mutex_init(&h->mu, NULL);
	if (n.dir == D_POD && n.obj) /* a pod's file: stores need the pod */
		h->pod_id = xstrdup(((const struct pod *)n.obj)->id);
	if ((n.file->flags & F_LEASE) && acc != O_RDONLY) {
		h->lease = true;
		tree_lease(fs()->tree, h->pod_id, true);
	}
	if (n.file->flags & (F_RUN | F_EXIT)) {
		h->own = acc != O_RDONLY;
		h->nonblock = fi->flags & O_NONBLOCK;
		/* A reader follows the newest command as of its open. */
		if (!h->own)
			h->cmd = runs_newest(fs()->runs, h->pod_id);
	} else if (fi->flags & O_TRUNC) {
		h->truncated = true;
	} else if (!(n.file->flags & F_WRITE_ONLY)) {
		rc = tree_render(fs()->tree, &n, &h->data);
	}
	node_release(&n);
	if (rc) {
		if (h->lease)
			tree_lease(fs()->tree, h->pod_id, false);
		free(h->pod_id);
		free(h->path);
		buf_free(&h->data);
		free(h);
		return rc;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	if (n.file->flags & F_STREAM)
		fi->nonseekable = 1;
	return 0;
}

static bool interrupted(void *arg)
{
	(void)arg;
	return fuse_interrupted();
}

static void poll_wake(void *arg);

/* Without h->mu: the handle's watch on c removed (no poll_wake() runs once
 * this returns), then its reference dropped. */
static void drop_cmd(struct ssh_cmd *c, int watch)
{
	if (c && watch >= 0)
		ssh_cmd_unwatch(c, watch);
	ssh_cmd_put(c);
}

/* Everything written since the last start becomes one job, as one script
 * (byte for byte): the caller waits until it has started (or could not).
 * Nothing written: nothing to start. */
static int start_pending(struct handle *h)
{
	pthread_mutex_lock(&h->mu);
	struct buf script = h->data; /* taken whole */
	bool too_big = h->too_big;
	buf_init(&h->data);
	h->too_big = false;
	pthread_mutex_unlock(&h->mu);
	if (too_big) {
		plog("run", h->path,
		     "the script is over the limit of %zu bytes: nothing was "
		     "sent",
		     RUNS_MAX_SCRIPT);
		buf_free(&script);
		return -E2BIG;
	}
	if (!script.len) {
		buf_free(&script);
		return 0;
	}
	struct ssh_cmd *cmd = NULL;
	int rc = runs_start(fs()->runs, h->pod_id, script.data, script.len,
			    interrupted, NULL, &cmd);
	buf_free(&script);
	if (rc)
		return rc;
	pthread_mutex_lock(&h->mu);
	struct ssh_cmd *old = h->cmd;
	int watch = h->watch;
	h->cmd = cmd;
	h->watch = -1;
	h->cur = (struct ssh_cursor){0, false};
	pthread_mutex_unlock(&h->mu);
	drop_cmd(old, watch);
	/* A poll waiting on the old command looks again, at the new one. */
	poll_wake(h);
	return 0;
}

/* Output as it comes; blocks (interruptibly) until there is some or the
 * command ends. */
static int read_run(struct handle *h, char *out, size_t size)
{
	if (h->own) {
		int rc = start_pending(h);
		if (rc)
			return rc;
	}
	for (;;) {
		pthread_mutex_lock(&h->mu);
		struct ssh_cmd *c = h->cmd ? ssh_cmd_get(h->cmd) : NULL;
		bool eof = false;
		size_t n = c ? ssh_cmd_read(c, &h->cur, out, size, &eof) : 0;
		struct ssh_cursor cur = h->cur;
		pthread_mutex_unlock(&h->mu);
		int rc = 0;
		bool again = false;
		if (!c || n || eof)
			rc = (int)n; /* before any command: empty */
		else if (h->nonblock)
			rc = -EAGAIN;
		else if (fuse_interrupted())
			rc = -EINTR;
		else {
			ssh_cmd_wait(c, &cur, 0.2);
			again = true;
		}
		ssh_cmd_put(c);
		if (!again)
			return rc;
	}
}

/* Fills the handle with the exit text, once the command has ended (a
 * wait until then). Once exit_done, data no longer changes. */
static int read_exit(struct handle *h)
{
	pthread_mutex_lock(&h->mu);
	bool done = h->exit_done;
	struct ssh_cmd *c = h->cmd && !done ? ssh_cmd_get(h->cmd) : NULL;
	pthread_mutex_unlock(&h->mu);
	if (done)
		return 0;
	int rc = 0;
	while (c && !ssh_cmd_wait_done(c, 0.2)) {
		if (h->nonblock) {
			rc = -EAGAIN;
			break;
		}
		if (fuse_interrupted()) {
			rc = -EINTR;
			break;
		}
	}
	pthread_mutex_lock(&h->mu);
	if (!rc && !h->exit_done) {
		if (c)
			ssh_cmd_exit_text(c, &h->data);
		else
			buf_addc(&h->data, '\n'); /* before any command */
		h->exit_done = true;
	}
	pthread_mutex_unlock(&h->mu);
	ssh_cmd_put(c);
	return rc;
}

static int fs_read(const char *path, char *out, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	if (h->file->flags & F_RUN)
		return read_run(h, out, size);
	if (h->file->flags & F_EXIT) {
		int rc = read_exit(h);
		if (rc)
			return rc;
	}
	if (off < 0 || (size_t)off >= h->data.len)
		return 0;
	size_t n = h->data.len - (size_t)off;
	if (n > size)
		n = size;
	memcpy(out, h->data.data + off, n);
	return (int)n;
}

static int fs_write(const char *path, const char *data, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	if (h->file->flags & F_RUN) {
		/* Writes gather one script, whatever their sizes; it starts
		 * at close (fs_flush) or at the handle's next read. One too
		 * big is dropped whole: E2BIG here and at close. A pod that
		 * will never run it fails the job's first write, which a shell
		 * reports (it ignores close's error). */
		pthread_mutex_lock(&h->mu);
		bool first = !h->data.len && !h->too_big;
		pthread_mutex_unlock(&h->mu);
		if (first && size) {
			int rc = runs_check(fs()->runs, h->pod_id);
			if (rc)
				return rc;
		}
		pthread_mutex_lock(&h->mu);
		if (!h->too_big && h->data.len + size > RUNS_MAX_SCRIPT) {
			h->too_big = true;
			buf_free(&h->data);
			buf_init(&h->data);
		}
		if (!h->too_big)
			buf_add(&h->data, data, size);
		bool refused = h->too_big;
		pthread_mutex_unlock(&h->mu);
		return refused ? -E2BIG : (int)size;
	}
	if (!h->file->store)
		return -EACCES;
	if (h->file->flags & F_PER_WRITE) {
		int rc = h->file->store(fs()->tree, h->pod_id, data, size);
		return rc ? rc : (int)size;
	}
	/* Whole-file writes are gathered and stored when the file closes. */
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
	return h->refused ? -EINVAL : (int)size;
}

/* close() returns what this returns: a bad template fails the close (and
 * a line bad alone failed its write already). */
static int fs_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	if (h->file->flags & F_RUN)
		return h->own ? start_pending(h) : 0;
	if (h->refused) { /* a write failed and said so: the old is kept */
		h->truncated = false;
		return -EINVAL;
	}
	if (!h->dirty || !h->file->store || (h->file->flags & F_PER_WRITE))
		return 0;
	h->dirty = false;
	h->truncated = false;
	return h->file->store(fs()->tree, h->pod_id,
			      h->data.data ? h->data.data : "", h->data.len);
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	/* `: > config`: truncated, never written. Flush did not store it, as
	 * a shell's dup2 flushes before the write comes; an empty template
	 * cannot be invalid, so nothing is lost by storing it this late. */
	if (h->truncated && h->file->store && !(h->file->flags & F_PER_WRITE))
		h->file->store(fs()->tree, h->pod_id, "", 0);
	if (h->lease)
		tree_lease(fs()->tree, h->pod_id, false);
	pthread_mutex_lock(&h->mu);
	struct ssh_cmd *c = h->cmd;
	int watch = h->watch;
	struct fuse_pollhandle *ph = h->ph;
	h->cmd = NULL;
	h->watch = -1;
	h->ph = NULL;
	pthread_mutex_unlock(&h->mu);
	drop_cmd(c, watch); /* no poll_wake() on h from now on */
	if (ph)
		fuse_pollhandle_destroy(ph);
	pthread_mutex_destroy(&h->mu);
	free(h->pod_id);
	free(h->path);
	buf_free(&h->data);
	free(h);
	return 0;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (size < 0 || size > TEMPLATE_MAX_SIZE)
		return -EFBIG;
	if (fi) { /* ftruncate on an open writable file */
		struct handle *h = (struct handle *)(uintptr_t)fi->fh;
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
		}
		buf_free(&b);
	}
	node_release(&n);
	return rc;
}

static int fs_statfs(const char *path, struct statvfs *st)
{
	(void)path; /* never fetches anything */
	memset(st, 0, sizeof *st);
	st->f_bsize = 4096;
	st->f_frsize = 4096;
	st->f_namemax = 255;
	return 0;
}

/* Pods rented here lately, and by whom: for the after-the-fact rule. */
static struct intent_recent recent = INTENT_RECENT_INIT;

/* Something new is being made at path, inside pods/x. When the process
 * that rented x a moment ago (or its child) makes it, that mkdir was made
 * on the way to something else (a copy): the pod goes back at once. */
static void made_inside(const char *op, const char *path)
{
	char *name;
	if (!intent_made_inside(&recent, fuse_get_context()->pid, path, &name))
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
static int fs_mkdir(const char *path, mode_t mode)
{
	(void)mode;
	int rc = caller_may(0, O_WRONLY);
	if (rc)
		return rc;
	static const char prefix[] = "/pods/";
	const char *name = path + sizeof prefix - 1;
	if (strncmp(path, prefix, sizeof prefix - 1) || !*name ||
	    strchr(name, '/')) {
		made_inside("mkdir", path);
		return tree_mkdir(fs()->tree, path);
	}
	pid_t pid = fuse_get_context()->pid;
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
	if (rc == 0)
		intent_note_rent(&recent, pid, name);
	return rc;
}

static int fs_rmdir(const char *path)
{
	int rc = caller_may(0, O_WRONLY);
	return rc ? rc : tree_rmdir(fs()->tree, path);
}

static int fs_unlink(const char *path)
{
	struct node n;
	int rc = tree_resolve(fs()->tree, path, &n);
	if (rc)
		return rc;
	rc = n.type == N_DIR ? -EISDIR : -EPERM;
	node_release(&n);
	return rc;
}

/* open(O_CREAT) of a file that exists (`echo x > config`) arrives here
 * when the kernel has no entry cached: it is an open. Nothing new can be
 * created. */
static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)mode;
	struct node n;
	int rc = tree_resolve(fs()->tree, path, &n);
	node_release(&n);
	if (rc == -ENOENT) {
		made_inside("create", path);
		return -EACCES;
	}
	return rc ? rc : fs_open(path, fi);
}

/* mknod (other than of a regular file, which comes as create) and
 * symlink: nothing new can be made. */
static int refuse_new(const char *op, const char *path)
{
	struct node n;
	int rc = tree_resolve(fs()->tree, path, &n);
	node_release(&n);
	if (rc == -ENOENT)
		made_inside(op, path);
	return rc == 0 ? -EEXIST : rc == -ENOENT ? -EPERM : rc;
}

static int fs_mknod(const char *path, mode_t mode, dev_t dev)
{
	(void)mode;
	(void)dev;
	return refuse_new("mknod", path);
}

static int fs_symlink(const char *target, const char *path)
{
	(void)target;
	return refuse_new("symlink", path);
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
	(void)from;
	(void)to;
	(void)flags;
	return -EPERM;
}

/* Modes are primefs's to say, but a chmod that changes nothing (cp -p,
 * install -m of the mode a file has) or the owner's chmod of a pod
 * directory (install -d pods/x sets its mode after the rent) is a harmless
 * success, so those tools print no spurious error. Anything else: EPERM. */
static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	if (!(path = req_path(path, fi)))
		return -ENOENT;
	struct node n;
	int rc = tree_resolve(fs()->tree, path, &n);
	if (rc)
		return rc;
	uid_t uid = fuse_get_context()->uid;
	bool owner = uid == getuid() || uid == 0;
	bool same = (mode & 07777) == (node_mode(&n) & 07777);
	bool pod_dir = n.type == N_DIR && n.dir == D_POD;
	node_release(&n);
	return same || (owner && pod_dir) ? 0 : -EPERM;
}

static int fs_chown(const char *path, uid_t uid, gid_t gid,
		    struct fuse_file_info *fi)
{
	(void)path;
	(void)uid;
	(void)gid;
	(void)fi;
	return -EPERM;
}

static int fs_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	(void)path;
	(void)tv;
	(void)fi;
	return -EPERM;
}

/* From a command's I/O thread: output or the end arrived. */
static void poll_wake(void *arg)
{
	struct handle *h = arg;
	pthread_mutex_lock(&h->mu);
	struct fuse_pollhandle *ph = h->ph;
	h->ph = NULL;
	pthread_mutex_unlock(&h->mu);
	if (ph) {
		fuse_notify_poll(ph);
		fuse_pollhandle_destroy(ph);
	}
}

static int fs_poll(const char *path, struct fuse_file_info *fi,
		   struct fuse_pollhandle *ph, unsigned *reventsp)
{
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	bool run = h->file->flags & F_RUN;
	unsigned ready = POLLIN | POLLRDNORM;
	if (h->file->store || run)
		ready |= POLLOUT | POLLWRNORM;
	struct fuse_pollhandle *drop = ph; /* destroyed below unless kept */
	bool waits = false;
	pthread_mutex_lock(&h->mu);
	if (h->cmd && (run || ((h->file->flags & F_EXIT) && !h->exit_done))) {
		/* Watch first, then look: what arrives in between wakes ph
		 * (poll_wake waits for h->mu). */
		if (ph && h->watch < 0)
			h->watch = ssh_cmd_watch(h->cmd, poll_wake, h);
		waits = run ? !ssh_cmd_wait(h->cmd, &h->cur, 0)
			    : !ssh_cmd_done(h->cmd);
		if (waits && ph) {
			drop = h->ph; /* an older poll's, now unused */
			h->ph = ph;
		}
	}
	pthread_mutex_unlock(&h->mu);
	if (drop)
		fuse_pollhandle_destroy(drop);
	*reventsp = waits ? ready & ~(unsigned)(POLLIN | POLLRDNORM) : ready;
	return 0;
}

const struct fuse_operations primefs_ops = {
    .poll = fs_poll,
    .init = fs_init,
    .getattr = fs_getattr,
    .readlink = fs_readlink,
    .opendir = fs_opendir,
    .readdir = fs_readdir,
    .releasedir = fs_releasedir,
    .open = fs_open,
    .read = fs_read,
    .write = fs_write,
    .flush = fs_flush,
    .release = fs_release,
    .truncate = fs_truncate,
    .statfs = fs_statfs,
    .mkdir = fs_mkdir,
    .rmdir = fs_rmdir,
    .unlink = fs_unlink,
    .create = fs_create,
    .mknod = fs_mknod,
    .symlink = fs_symlink,
    .rename = fs_rename,
    .chmod = fs_chmod,
    .chown = fs_chown,
    .utimens = fs_utimens,
};
