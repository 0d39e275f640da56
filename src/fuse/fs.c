/* fs.c — FUSE operations over the tree. Value files are rendered whole at
 * open into the handle, so a read never mixes two versions. Those of an
 * immutable snapshot (tree_cacheable) are opened with keep_cache, so a
 * warm read is served from the kernel's page cache; the others with
 * direct_io, so that the kernel reads to end of file whatever size an
 * earlier getattr saw (cost grows while you look at it). Files with hooks
 * (run, exit, the job files) are served by their hooks (tree.h), which
 * know nothing of FUSE: this file only turns their wake into poll
 * notifications. The kernel caches entries and attributes for the
 * shortest freshness window; what the tree says changed is invalidated
 * (attributes and cached pages: fuse_invalidate_path) by a thread of this
 * file's own (never from a request the kernel waits on), and a request
 * that made a change waits until the kernel has been told before it
 * returns. */
#include "fs.h"

#include <fuse_lowlevel.h>

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
#include "template.h"

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
	struct buf data;
	const struct file_def *file;
	bool dirty;	/* written since the last store */
	bool truncated; /* opened with O_TRUNC and nothing stored yet */
	bool refused;	/* a write failed its check: nothing is stored */
	char *path;	/* as opened: getattr by handle gets no path */
	char *pod_id;	/* the pod the file belongs to, or NULL */
	bool lease;	/* holds its pod's lease (F_LEASE opened for writing) */
	bool append;	/* O_APPEND: writes go to the end primefs knows */
	bool cached;	/* opened with keep_cache */
	unsigned long gen; /* the tree's generation when rendered */
	pthread_mutex_t ph_mu;
	struct fuse_pollhandle *ph;
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
static void kc_push(const char *path, bool gone, bool late);

/* ---- kernel caching: the invalidation queue ---- */

/* A path answered while the tree changed, or a volatile one (tree.h), is
 * invalidated this long after its answer: once the reply has reached the
 * kernel (an invalidation that comes before the reply does not stop the
 * reply from being cached when it makes a new inode). */
#define KC_LATE 0.05
/* How long a request that changed something waits for the kernel to have
 * been told; past it, the request returns anyway (logged). */
#define KC_SYNC_WAIT 5.0

struct kc_item {
	char *path;
	bool gone;
	double at; /* not before (late items) */
};

struct kc_list {
	struct kc_item *v;
	size_t n, cap;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;	/* work arrived, or stop */
	pthread_cond_t done_cv; /* done moved */
	struct kc_list now, late;
	unsigned long queued, done; /* items of `now`, ever */
	bool running, stop;
	pthread_t thread;
	struct fuse *fuse;
} kc = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void kc_add(struct kc_list *l, const char *path, bool gone, double at)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = (struct kc_item){xstrdup(path), gone, at};
}

static void kc_push(const char *path, bool gone, bool late)
{
	pthread_mutex_lock(&kc.mu);
	if (kc.running) {
		if (late) {
			kc_add(&kc.late, path, gone, now_monotonic() + KC_LATE);
		} else {
			kc_add(&kc.now, path, gone, 0);
			kc.queued++;
		}
		pthread_cond_signal(&kc.cv);
	}
	pthread_mutex_unlock(&kc.mu);
}

/* The tree's changed hook (tree.h). */
static void kc_changed(void *arg, const char *path, bool gone)
{
	(void)arg;
	kc_push(path, gone, false);
}

static void kc_wait_until(pthread_cond_t *cv, double until)
{
	struct timespec ts = {(time_t)until,
			      (long)((until - (double)(time_t)until) * 1e9)};
	pthread_cond_timedwait(cv, &kc.mu, &ts);
}

/* Tells the kernel: the path's attributes, and for a gone name every
 * cached entry under its top directory (the high-level API knows the node
 * id of the root only; an entry's attributes, wherever it is, go by its
 * path). */
static void kc_send(struct kc_item *items, size_t n)
{
	struct fuse_session *se = fuse_get_session(kc.fuse);
	char tops[8][32];
	size_t n_tops = 0;
	for (size_t i = 0; i < n; i++) {
		if (fuse_invalidate_path(kc.fuse, items[i].path) == 0)
			stats_count(ST_KERNEL_INVAL);
		if (!items[i].gone)
			continue;
		const char *p = items[i].path + 1;
		size_t len = strcspn(p, "/");
		bool seen = len >= sizeof tops[0];
		for (size_t j = 0; !seen && j < n_tops; j++)
			seen =
			    strlen(tops[j]) == len && !memcmp(tops[j], p, len);
		if (!seen && n_tops < 8) {
			memcpy(tops[n_tops], p, len);
			tops[n_tops++][len] = '\0';
		}
	}
	for (size_t j = 0; j < n_tops; j++)
		if (fuse_lowlevel_notify_inval_entry(se, FUSE_ROOT_ID, tops[j],
						     strlen(tops[j])) == 0)
			stats_count(ST_KERNEL_INVAL);
}

static void *kc_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&kc.mu);
	while (!kc.stop) {
		double now = now_monotonic();
		struct kc_list batch = kc.now;
		kc.now = (struct kc_list){NULL, 0, 0};
		size_t counted = batch.n;
		double next = now + 1;
		size_t kept = 0;
		for (size_t i = 0; i < kc.late.n; i++) {
			struct kc_item it = kc.late.v[i];
			if (it.at <= now) {
				kc_add(&batch, it.path, it.gone, 0);
				free(it.path);
			} else {
				kc.late.v[kept++] = it;
				if (it.at < next)
					next = it.at;
			}
		}
		kc.late.n = kept;
		if (!batch.n) {
			kc_wait_until(&kc.cv, next);
			continue;
		}
		pthread_mutex_unlock(&kc.mu);
		kc_send(batch.v, batch.n);
		for (size_t i = 0; i < batch.n; i++)
			free(batch.v[i].path);
		free(batch.v);
		pthread_mutex_lock(&kc.mu);
		kc.done += counted;
		pthread_cond_broadcast(&kc.done_cv);
	}
	pthread_mutex_unlock(&kc.mu);
	return NULL;
}

static void kc_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

static void kc_start(struct fuse *f)
{
	kc_cond_init(&kc.cv);
	kc_cond_init(&kc.done_cv);
	kc.fuse = f;
	kc.running = true;
	if (pthread_create(&kc.thread, NULL, kc_main, NULL)) {
		kc.running = false;
		plog("mount", "/",
		     "no invalidation thread: the kernel caches nothing");
	}
}

static void kc_stop(void)
{
	pthread_mutex_lock(&kc.mu);
	bool was = kc.running;
	kc.running = false;
	kc.stop = true;
	pthread_cond_broadcast(&kc.cv);
	pthread_cond_broadcast(&kc.done_cv);
	pthread_mutex_unlock(&kc.mu);
	if (was)
		pthread_join(kc.thread, NULL);
	struct kc_list *ls[] = {&kc.now, &kc.late};
	for (int j = 0; j < 2; j++) {
		for (size_t i = 0; i < ls[j]->n; i++)
			free(ls[j]->v[i].path);
		free(ls[j]->v);
		*ls[j] = (struct kc_list){NULL, 0, 0};
	}
}

/* A request that changed something returns once the kernel has been told
 * of every path queued so far (or after KC_SYNC_WAIT, or when it is
 * interrupted): after rmdir pods/ID, stat pods/NAME is ENOENT at once. */
static void kc_sync(void)
{
	pthread_mutex_lock(&kc.mu);
	unsigned long target = kc.queued;
	double deadline = now_monotonic() + KC_SYNC_WAIT;
	bool late = false;
	while (kc.running && kc.done < target) {
		double now = now_monotonic();
		if (now >= deadline || fuse_interrupted()) {
			late = true;
			break;
		}
		kc_wait_until(&kc.done_cv,
			      now + 0.1 < deadline ? now + 0.1 : deadline);
	}
	pthread_mutex_unlock(&kc.mu);
	if (late)
		plog("cache", "/",
		     "the kernel was not told of a change in time: it may "
		     "show the old for up to the freshness window");
}

static void fs_destroy(void *private_data)
{
	(void)private_data;
	kc_stop();
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* A reader waiting for a listing gives up when its request is. */
	cache_set_interrupt(fs()->cache, interrupted, NULL);
	/* Threads start here, after the daemon has forked. */
	guards_start(fs()->guards);
	/* O_TRUNC arrives with open, not as a separate truncate. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* ls -l and find: names and attributes in one request. */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)
		conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
	/* The kernel keeps names and attributes for the shortest freshness
	 * window: what primefs learns meanwhile (a listing that differs,
	 * its own mkdir and rmdir under both of a pod's names, refresh,
	 * config and guard writes) is invalidated by kc_main. No negative
	 * entries: a name that appears needs nothing invalidated. Contents
	 * are cached only where tree_cacheable says so. */
	kc_start(fuse_get_context()->fuse);
	tree_set_changed(fs()->tree, kc_changed, NULL);
	cfg->entry_timeout = fs()->kernel_ttl;
	cfg->attr_timeout = fs()->kernel_ttl;
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

/* A node's attributes; 0 or -errno. */
static int node_stat(struct node *n, struct stat *st)
{
	int rc = 0;
	memset(st, 0, sizeof *st);
	st->st_mode = node_mode(n);
	st->st_nlink = n->type == N_DIR ? 2 : 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_mtime = st->st_ctime = st->st_atime = n->mtime;
	st->st_blksize = 4096;
	struct buf b;
	buf_init(&b);
	off_t size = 0;
	if (n->type == N_LINK)
		rc = tree_readlink(fs()->tree, n, &b);
	else if (n->type == N_FILE && n->file->hooks && n->file->hooks->size)
		rc = n->file->hooks->size(fs()->tree, n, &size);
	else if (n->type == N_FILE &&
		 !(n->file->flags & (F_STREAM | F_WRITE_ONLY)))
		rc = tree_render(fs()->tree, n, &b);
	if (b.len)
		size = (off_t)b.len;
	st->st_size = size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	buf_free(&b);
	return rc;
}

static int fs_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	if (!(path = req_path(path, fi)))
		return -ENOENT;
	stats_count(ST_FUSE_GETATTR);
	unsigned long gen = tree_generation(fs()->tree);
	struct node n;
	int rc = tree_resolve(fs()->tree, path, &n);
	if (rc)
		return rc;
	rc = node_stat(&n, st);
	bool vol = tree_volatile(&n);
	node_release(&n);
	/* The kernel keeps this answer; one that may change by itself, or
	 * was made while the tree changed, is taken back a moment later. */
	bool changed = tree_generation(fs()->tree) != gen;
	if (rc == 0 && (vol || changed))
		kc_push(path, false, true);
	/* A listing this request fetched: the kernel is told of what it
	 * changed before this returns. Not for a name in the root: its
	 * LOOKUP holds the root's lock, which telling that a name is gone
	 * needs. */
	if (changed && strchr(path + 1, '/'))
		kc_sync();
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

/* An open directory: its names as of opendir, so that a listing read in
 * several requests is one listing. Offsets: 1 after ".", 2 after "..",
 * k + 3 after names[k] (libfuse gives READDIRPLUS attributes to the kernel
 * only in this offset mode). */
struct dirh {
	char *path;	  /* readdir may get none (nullpath_ok) */
	struct node dir;  /* with the listing the names come from */
	struct buf names; /* each NUL-ended */
	size_t *at;	  /* where each starts in names */
	size_t n, cap;
};

static int add_name(void *ctx, const char *name)
{
	struct dirh *d = ctx;
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 32;
		d->at = xrealloc(d->at, d->cap * sizeof *d->at);
	}
	d->at[d->n++] = d->names.len;
	buf_add(&d->names, name, strlen(name) + 1);
	return 0;
}

static void dirh_free(struct dirh *d)
{
	free(d->path);
	node_release(&d->dir);
	buf_free(&d->names);
	free(d->at);
	free(d);
}

static int fs_opendir(const char *path, struct fuse_file_info *fi)
{
	unsigned long gen = tree_generation(fs()->tree);
	struct dirh *d = xcalloc(1, sizeof *d);
	buf_init(&d->names);
	d->path = xstrdup(path);
	int rc = tree_resolve_dir(fs()->tree, path, &d->dir);
	if (rc == 0)
		rc = tree_list(fs()->tree, &d->dir, add_name, d);
	if (rc) {
		dirh_free(d);
		return rc;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	/* A listing this request fetched: the kernel is told of what it
	 * changed before `ls` goes on to stat what it lists. */
	if (tree_generation(fs()->tree) != gen)
		kc_sync();
	return 0;
}

static int fs_releasedir(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	dirh_free((struct dirh *)(uintptr_t)fi->fh);
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	stats_count(ST_FUSE_READDIR);
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
	bool plus = flags & FUSE_READDIR_PLUS;
	unsigned long gen = tree_generation(fs()->tree);
	struct buf p, given; /* given: paths given attributes, NUL-ended */
	buf_init(&p);
	buf_init(&given);
	(void)path; /* may be NULL (nullpath_ok): the one opendir kept */
	buf_printf(&p, "%s/", strcmp(d->path, "/") ? d->path : "");
	size_t dir_len = p.len;
	for (size_t i = off < 0 ? 0 : (size_t)off; i < d->n + 2; i++) {
		const char *name = i == 0   ? "."
				   : i == 1 ? ".."
					    : d->names.data + d->at[i - 2];
		struct stat st;
		bool attrs = false;
		if (plus && i >= 2) {
			/* Volatile files get no attributes here: the kernel
			 * keeps those of a READDIRPLUS answer. */
			struct node n;
			p.len = dir_len;
			buf_adds(&p, name);
			attrs =
			    tree_child(fs()->tree, &d->dir, name, &n) == 0 &&
			    !tree_volatile(&n) && node_stat(&n, &st) == 0;
			node_release(&n);
		}
		if (filler(buf, name, attrs ? &st : NULL, (off_t)(i + 1),
			   attrs ? FUSE_FILL_DIR_PLUS : 0))
			break;
		if (attrs)
			buf_add(&given, p.data, p.len + 1);
	}
	/* Attributes given while the tree changed are taken back. */
	if (tree_generation(fs()->tree) != gen)
		for (size_t i = 0; i < given.len;
		     i += strlen(given.data + i) + 1)
			kc_push(given.data + i, false, true);
	buf_free(&p);
	buf_free(&given);
	return 0;
}

static void poll_wake(void *arg);

static bool interrupted(void *arg)
{
	(void)arg;
	return fuse_interrupted();
}

static void handle_free(struct handle *h)
{
	pthread_mutex_destroy(&h->ph_mu);
	free(h->pod_id);
	free(h->path);
	buf_free(&h->data);
	free(h);
}

static int fs_open(const char *path, struct fuse_file_info *fi)
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
	buf_init(&h->data);
	h->file = n.file;
	h->path = xstrdup(path);
	h->append = fi->flags & O_APPEND;
	h->gen = gen;
	pthread_mutex_init(&h->ph_mu, NULL);
	if (n.dir == D_POD && n.obj) /* a pod's file: stores need the pod */
		h->pod_id = xstrdup(((const struct pod *)n.obj)->id);
	h->fh = (struct tree_handle){.tree = fs()->tree,
				     .path = h->path,
				     .pod_id = h->pod_id,
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
	 * kc_send invalidates the path. */
	h->cached = !rc && acc == O_RDONLY && tree_cacheable(&n);
	node_release(&n);
	if (rc) {
		if (h->lease)
			tree_lease(fs()->tree, h->pod_id, false);
		handle_free(h);
		return rc;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	if (h->cached)
		fi->keep_cache = 1;
	else
		fi->direct_io = 1;
	if (n.file->flags & F_STREAM)
		fi->nonseekable = 1;
	return 0;
}

static int fs_read(const char *path, char *out, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	(void)path;
	stats_count(ST_FUSE_READ);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	const struct file_hooks *hooks = h->file->hooks;
	if (hooks)
		return hooks->read ? hooks->read(&h->fh, out, size, off) : 0;
	/* Pages of an older snapshot than the tree now holds may be cached
	 * by this read after the path was invalidated: again, a moment
	 * later. */
	if (h->cached && tree_generation(fs()->tree) != h->gen)
		kc_push(h->path, false, true);
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
	return h->refused ? -EINVAL : (int)size;
}

/* close() returns what this returns: a bad template fails the close (and
 * a line bad alone failed its write already). */
static int fs_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	const struct file_hooks *hooks = h->file->hooks;
	if (hooks) {
		int rc = hooks->flush ? hooks->flush(&h->fh) : 0;
		kc_sync();
		return rc;
	}
	if (h->refused) { /* a write failed and said so: the old is kept */
		h->truncated = false;
		return -EINVAL;
	}
	if (!h->dirty || !h->file->store || (h->file->flags & F_PER_WRITE))
		return 0;
	h->dirty = false;
	h->truncated = false;
	int rc = h->file->store(fs()->tree, h->pod_id,
				h->data.data ? h->data.data : "", h->data.len);
	kc_sync();
	return rc;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
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
	if (hooks && hooks->release)
		hooks->release(&h->fh); /* no poll_wake() on h from now on */
	pthread_mutex_lock(&h->ph_mu);
	struct fuse_pollhandle *ph = h->ph;
	h->ph = NULL;
	pthread_mutex_unlock(&h->ph_mu);
	if (ph)
		fuse_pollhandle_destroy(ph);
	handle_free(h);
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
			kc_sync();
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
	kc_sync();
	return rc;
}

static int fs_rmdir(const char *path)
{
	int rc = caller_may(0, O_WRONLY);
	if (rc)
		return rc;
	rc = tree_rmdir(fs()->tree, path);
	kc_sync();
	return rc;
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

/* The hooks' wake (any thread): what a poll waits for may have come. */
static void poll_wake(void *arg)
{
	struct handle *h = arg;
	pthread_mutex_lock(&h->ph_mu);
	struct fuse_pollhandle *ph = h->ph;
	h->ph = NULL;
	pthread_mutex_unlock(&h->ph_mu);
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
	*reventsp = waits ? ready & ~(unsigned)(POLLIN | POLLRDNORM) : ready;
	return 0;
}

const struct fuse_operations primefs_ops = {
    .poll = fs_poll,
    .init = fs_init,
    .destroy = fs_destroy,
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
