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
 * Value files are rendered whole at open into the handle, so a read never
 * mixes two versions. Those of an immutable snapshot (tree_cacheable) are
 * opened with keep_cache, so a warm read is served from the kernel's page
 * cache; the others with direct_io, so that the kernel reads to end of
 * file whatever size an earlier getattr saw (cost grows while you look at
 * it). Files with hooks (run, exit, the job files) are served by their
 * hooks (tree.h), which know nothing of FUSE: this file only turns their
 * wake into poll notifications. The kernel caches entries and attributes
 * for the shortest freshness window; what the tree says changed is
 * invalidated by a thread of this file's own (never from a request the
 * kernel waits on), and a request that made a change waits until the
 * kernel has been told before it returns. */
#include "fs.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guards.h"
#include "inodes.h"
#include "intent.h"
#include "lifecycle.h"
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
/* Every open file and directory handle. At unmount the kernel may leave
 * RELEASE and RELEASEDIR requests unread when the loop ends: what is left
 * here then is released as those would have (fs_main). */
struct live {
	struct live *prev, *next;
};
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static struct live live_files = {&live_files, &live_files};
static struct live live_dirs = {&live_dirs, &live_dirs};

static void live_add(struct live *head, struct live *l)
{
	pthread_mutex_lock(&live_mu);
	l->prev = head;
	l->next = head->next;
	head->next->prev = l;
	head->next = l;
	pthread_mutex_unlock(&live_mu);
}

static void live_del(struct live *l)
{
	pthread_mutex_lock(&live_mu);
	l->prev->next = l->next;
	l->next->prev = l->prev;
	pthread_mutex_unlock(&live_mu);
}

/* The first handle still on the list, or NULL. */
static struct live *live_first(struct live *head)
{
	pthread_mutex_lock(&live_mu);
	struct live *l = head->next == head ? NULL : head->next;
	pthread_mutex_unlock(&live_mu);
	return l;
}

struct handle {
	struct tree_handle fh; /* what hooks see */
	struct live live;
	struct buf data;
	const struct file_def *file;
	bool dirty;	/* written since the last store */
	bool truncated; /* opened with O_TRUNC and nothing stored yet */
	bool refused;	/* a write failed its check: nothing is stored */
	char *path;	/* as opened */
	char *pod_id;	/* the pod the file belongs to, or NULL */
	bool lease;	/* holds its pod's lease (F_LEASE opened for writing) */
	bool append;	/* O_APPEND: writes go to the end primefs knows */
	bool cached;	/* opened with keep_cache */
	unsigned long gen; /* the tree's generation when rendered */
	pthread_mutex_t ph_mu;
	struct fuse_pollhandle *ph;
};

static struct primefs *the_fs;
static struct inodes *inos;
static struct fuse_session *the_se;

static struct primefs *fs(void)
{
	return the_fs;
}

/* The request this thread answers, for interrupted() and the caller's
 * uid and pid; NULL outside a request (and once it is answered). */
static __thread fuse_req_t cur;

static bool interrupted(void *arg)
{
	(void)arg;
	return cur && fuse_req_interrupted(cur);
}

static const struct fuse_ctx *caller(void)
{
	static const struct fuse_ctx none;
	return cur ? fuse_req_ctx(cur) : &none;
}

/* Every reply goes through these: the request is gone once answered. */
static int reply_err(fuse_req_t req, int rc)
{
	cur = NULL;
	return fuse_reply_err(req, rc < 0 ? -rc : rc);
}

/* Defence in depth behind default_permissions (main.c always mounts with
 * it): a caller other than the mounting user or root gets no more than
 * the bits node_mode() gives others, for an access mode O_RDONLY,
 * O_WRONLY or O_RDWR. A change to the tree (mkdir, rmdir) passes mode 0. */
static int caller_may(mode_t mode, int acc)
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
static int ino_path(fuse_ino_t ino, struct buf *out)
{
	return inodes_path(inos, ino, out) ? 0 : -ENOENT;
}

/* The path of name in directory parent. */
static int child_path(fuse_ino_t parent, const char *name, struct buf *out)
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

static void kc_push(const char *path, bool gone, bool late);

/* ---- kernel caching: the invalidation queue ---- */

/* A path answered while the tree changed is invalidated this long after
 * its answer: once the reply has reached the kernel (an invalidation that
 * comes before the reply does not stop the reply from being cached). */
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

/* A batch of gone names for the entries thread. */
struct kc_batch {
	struct kc_list gone;
	unsigned long upto; /* done once this batch is */
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;	/* work arrived, or stop */
	pthread_cond_t ent_cv;	/* a batch for the entries thread, or stop */
	pthread_cond_t done_cv; /* done, told_inodes or busy moved */
	struct kc_list now, late;
	struct kc_batch *batches; /* for the entries thread, in order */
	size_t n_batches, cap_batches;
	unsigned long queued, done; /* items of `now`, ever */
	unsigned long told_inodes;  /* items whose inodes were told */
	fuse_ino_t busy;	    /* the directory an entry is told in */
	bool running, stop;
	pthread_t thread, ent_thread;
} kc = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void kc_add(struct kc_list *l, const char *path, bool gone, double at)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = (struct kc_item){xstrdup(path), gone, at};
}

static void kc_list_free(struct kc_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	*l = (struct kc_list){NULL, 0, 0};
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

/* Tells the kernel of the inodes it holds among the paths: attributes and
 * pages. No lock of a directory is needed for it, so this never waits for
 * a request; a waiting request may return once they are told. */
static void kc_send_inodes(struct kc_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fuse_ino_t ino = inodes_walk(inos, items[i].path, NULL);
		if (ino &&
		    fuse_lowlevel_notify_inval_inode(the_se, ino, 0, 0) == 0)
			stats_count(ST_KERNEL_INVAL);
	}
}

/* Tells the kernel of gone names: their entries in their directories,
 * which takes that directory's lock (a request holding it, such as the
 * rmdir or lookup that fetched the change, stops waiting when this waits
 * for it). An entry takes what is under it with it: names under one told
 * in this batch are not told again. */
static void kc_send_entries(struct kc_item *items, size_t n)
{
	const char *last = NULL; /* the last gone path told */
	size_t last_len = 0;
	for (size_t i = 0; i < n; i++) {
		const char *path = items[i].path;
		if (last && !strncmp(path, last, last_len) &&
		    path[last_len] == '/')
			continue;
		uint64_t parent = 0;
		if (!inodes_walk(inos, path, &parent) || !parent)
			continue;
		last = path;
		last_len = strlen(path);
		const char *name = strrchr(path, '/') + 1;
		pthread_mutex_lock(&kc.mu);
		kc.busy = parent;
		pthread_cond_broadcast(&kc.done_cv);
		pthread_mutex_unlock(&kc.mu);
		if (fuse_lowlevel_notify_inval_entry(the_se, parent, name,
						     strlen(name)) == 0)
			stats_count(ST_KERNEL_INVAL);
		pthread_mutex_lock(&kc.mu);
		kc.busy = 0;
		pthread_mutex_unlock(&kc.mu);
	}
}

/* The inodes thread: takes what was queued (and late items now due),
 * tells their inodes, and hands the gone names to the entries thread. */
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
		unsigned long upto = kc.told_inodes + counted;
		pthread_mutex_unlock(&kc.mu);
		kc_send_inodes(batch.v, batch.n);
		struct kc_batch b = {{NULL, 0, 0}, upto};
		for (size_t i = 0; i < batch.n; i++)
			if (batch.v[i].gone)
				kc_add(&b.gone, batch.v[i].path, true, 0);
		kc_list_free(&batch);
		pthread_mutex_lock(&kc.mu);
		kc.told_inodes = upto;
		if (kc.n_batches == kc.cap_batches) {
			kc.cap_batches =
			    kc.cap_batches ? 2 * kc.cap_batches : 8;
			kc.batches = xrealloc(
			    kc.batches, kc.cap_batches * sizeof *kc.batches);
		}
		kc.batches[kc.n_batches++] = b;
		pthread_cond_signal(&kc.ent_cv);
		pthread_cond_broadcast(&kc.done_cv);
	}
	pthread_mutex_unlock(&kc.mu);
	return NULL;
}

/* The entries thread: each batch's gone names, in order. */
static void *kc_entries_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&kc.mu);
	while (!kc.stop) {
		if (!kc.n_batches) {
			pthread_cond_wait(&kc.ent_cv, &kc.mu);
			continue;
		}
		struct kc_batch b = kc.batches[0];
		memmove(kc.batches, kc.batches + 1,
			--kc.n_batches * sizeof *kc.batches);
		pthread_mutex_unlock(&kc.mu);
		kc_send_entries(b.gone.v, b.gone.n);
		kc_list_free(&b.gone);
		pthread_mutex_lock(&kc.mu);
		kc.done = b.upto;
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

static void kc_start(void)
{
	kc_cond_init(&kc.cv);
	kc_cond_init(&kc.ent_cv);
	kc_cond_init(&kc.done_cv);
	kc.running = true;
	if (pthread_create(&kc.thread, NULL, kc_main, NULL)) {
		kc.running = false;
		plog("mount", "/",
		     "no invalidation thread: the kernel caches nothing");
	} else if (pthread_create(&kc.ent_thread, NULL, kc_entries_main,
				  NULL)) {
		kc.ent_thread = kc.thread; /* joined once */
		plog("mount", "/",
		     "no entries thread: gone names are kept by the kernel "
		     "for up to the freshness window");
	}
}

static void kc_stop(void)
{
	pthread_mutex_lock(&kc.mu);
	bool was = kc.running;
	kc.running = false;
	kc.stop = true;
	pthread_cond_broadcast(&kc.cv);
	pthread_cond_broadcast(&kc.ent_cv);
	pthread_cond_broadcast(&kc.done_cv);
	pthread_mutex_unlock(&kc.mu);
	if (was) {
		pthread_join(kc.thread, NULL);
		if (!pthread_equal(kc.ent_thread, kc.thread))
			pthread_join(kc.ent_thread, NULL);
	}
	kc_list_free(&kc.now);
	kc_list_free(&kc.late);
	for (size_t i = 0; i < kc.n_batches; i++)
		kc_list_free(&kc.batches[i].gone);
	free(kc.batches);
	kc.batches = NULL;
	kc.n_batches = kc.cap_batches = 0;
}

/* A request that changed something returns once the kernel has been told
 * of every path queued so far (or after KC_SYNC_WAIT, or when it is
 * interrupted): after rmdir pods/ID, stat pods/NAME is ENOENT at once.
 * locked, locked2: directories whose lock the kernel holds for this
 * request (0: none). An entry in them cannot be told before it returns:
 * once every inode is told and the thread waits for one of them, it
 * returns (the entry is told right after; its inode's attributes, told
 * already, make a stat of it ask again). */
static void kc_sync(fuse_ino_t locked, fuse_ino_t locked2)
{
	pthread_mutex_lock(&kc.mu);
	unsigned long target = kc.queued;
	double deadline = now_monotonic() + KC_SYNC_WAIT;
	bool late = false;
	while (kc.running && kc.done < target) {
		if (kc.told_inodes >= target && kc.busy &&
		    (kc.busy == locked || kc.busy == locked2))
			break;
		double now = now_monotonic();
		if (now >= deadline || interrupted(NULL)) {
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

/* ---- attributes and entries ---- */

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

/* The kernel keeps an attribute answer this long: volatile files' not at
 * all (tree_volatile), the rest for the freshness window. */
static double attr_ttl(const struct node *n)
{
	return tree_volatile(n) ? 0 : fs()->kernel_ttl;
}

/* The entry of `name` in parent for node n: its attributes, and its inode
 * counted once more (the reply hands the kernel a lookup). 0 or -errno. */
static int fill_entry(fuse_ino_t parent, const char *name, struct node *n,
		      struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	int rc = node_stat(n, &e->attr);
	if (rc)
		return rc;
	uint64_t gen;
	bool added;
	fuse_ino_t ino = inodes_ref(inos, parent, name, &gen, &added);
	if (!ino)
		return -ENOENT;
	if (added)
		stats_add(ST_FUSE_INODES, 1);
	e->ino = ino;
	e->generation = gen;
	e->attr.st_ino = ino;
	e->entry_timeout = fs()->kernel_ttl;
	e->attr_timeout = attr_ttl(n);
	return 0;
}

/* A lookup the kernel will not have (its reply failed): counted back. */
static void unref(fuse_ino_t ino)
{
	size_t freed = inodes_forget(inos, ino, 1);
	if (freed)
		stats_add(ST_FUSE_INODES, -(long)freed);
}

/* Replies with the entry of path (name in parent), or the error. An answer
 * made while the tree changed is taken back a moment later; a listing this
 * request fetched is told to the kernel before it returns. */
static void reply_entry_of(fuse_req_t req, fuse_ino_t parent, const char *name,
			   const char *path, unsigned long gen)
{
	struct node n;
	struct fuse_entry_param e;
	int rc = tree_resolve(fs()->tree, path, &n);
	if (rc == 0) {
		rc = fill_entry(parent, name, &n, &e);
		node_release(&n);
	}
	if (tree_generation(fs()->tree) != gen) {
		if (rc == 0)
			kc_push(path, true, true);
		kc_sync(parent, 0);
	}
	if (rc) {
		reply_err(req, rc);
		return;
	}
	cur = NULL;
	if (fuse_reply_entry(req, &e) == -ENOENT)
		unref(e.ino);
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	cur = req;
	stats_count(ST_FUSE_LOOKUP);
	unsigned long gen = tree_generation(fs()->tree);
	struct buf path;
	buf_init(&path);
	int rc = child_path(parent, name, &path);
	if (rc)
		reply_err(req, rc);
	else
		reply_entry_of(req, parent, name, path.data, gen);
	buf_free(&path);
}

static void forget_one(fuse_ino_t ino, uint64_t nlookup)
{
	stats_count(ST_FUSE_FORGET);
	size_t freed = inodes_forget(inos, ino, nlookup);
	if (freed)
		stats_add(ST_FUSE_INODES, -(long)freed);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(ino, nlookup);
	fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		forget_one(forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/* The attributes of path, for GETATTR and SETATTR's answer. */
static void reply_attr_of(fuse_req_t req, fuse_ino_t ino, const char *path,
			  unsigned long gen)
{
	struct node n;
	struct stat st;
	double ttl = 0;
	int rc = tree_resolve(fs()->tree, path, &n);
	if (rc == 0) {
		rc = node_stat(&n, &st);
		ttl = attr_ttl(&n);
		node_release(&n);
	}
	st.st_ino = ino;
	/* The kernel keeps this answer; one made while the tree changed is
	 * taken back a moment later, and a listing this request fetched is
	 * told to the kernel before it returns (GETATTR holds no lock of a
	 * directory). */
	if (tree_generation(fs()->tree) != gen) {
		if (rc == 0)
			kc_push(path, false, true);
		kc_sync(0, 0);
	}
	if (rc) {
		reply_err(req, rc);
		return;
	}
	cur = NULL;
	fuse_reply_attr(req, &st, ttl);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)fi;
	cur = req;
	stats_count(ST_FUSE_GETATTR);
	unsigned long gen = tree_generation(fs()->tree);
	struct buf path;
	buf_init(&path);
	int rc = ino_path(ino, &path);
	if (rc)
		reply_err(req, rc);
	else
		reply_attr_of(req, ino, path.data, gen);
	buf_free(&path);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
	cur = req;
	struct buf path, b;
	buf_init(&path);
	buf_init(&b);
	struct node n;
	int rc = ino_path(ino, &path);
	if (rc == 0 && (rc = tree_resolve(fs()->tree, path.data, &n)) == 0) {
		rc = tree_readlink(fs()->tree, &n, &b);
		node_release(&n);
	}
	if (rc) {
		reply_err(req, rc);
	} else {
		buf_addc(&b, '\0');
		cur = NULL;
		fuse_reply_readlink(req, b.data);
	}
	buf_free(&b);
	buf_free(&path);
}

/* ---- directories ---- */

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
	live_del(&d->live);
	free(d->path);
	node_release(&d->dir);
	buf_free(&d->names);
	free(d->at);
	free(d);
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	cur = req;
	stats_count(ST_FUSE_OPENDIR);
	unsigned long gen = tree_generation(fs()->tree);
	struct buf path;
	buf_init(&path);
	int rc = ino_path(ino, &path);
	if (rc) {
		buf_free(&path);
		reply_err(req, rc);
		return;
	}
	struct dirh *d = xcalloc(1, sizeof *d);
	live_add(&live_dirs, &d->live);
	buf_init(&d->names);
	d->path = buf_steal(&path);
	rc = tree_resolve_dir(fs()->tree, d->path, &d->dir);
	if (rc == 0)
		rc = tree_list(fs()->tree, &d->dir, add_name, d);
	if (rc) {
		dirh_free(d);
		reply_err(req, rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	/* A listing this request fetched: the kernel is told of what it
	 * changed before `ls` goes on to stat what it lists. */
	if (tree_generation(fs()->tree) != gen)
		kc_sync(0, 0);
	cur = NULL;
	if (fuse_reply_open(req, fi) == -ENOENT)
		dirh_free(d); /* opendir was interrupted: no releasedir */
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	stats_count(ST_FUSE_RELEASEDIR);
	dirh_free((struct dirh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* The inode number a plain directory entry shows: the one the kernel
 * holds for it, if any. */
#define UNKNOWN_INO 0xffffffffu

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	cur = req;
	stats_count(ST_FUSE_READDIR);
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
	unsigned long gen = tree_generation(fs()->tree);
	char *out = xmalloc(size ? size : 1);
	size_t pos = 0;
	fuse_ino_t *given = NULL; /* inodes handed out with attributes */
	size_t n_given = 0;
	struct buf p; /* an entry's path */
	buf_init(&p);
	buf_printf(&p, "%s/", strcmp(d->path, "/") ? d->path : "");
	size_t dir_len = p.len;
	for (size_t i = off < 0 ? 0 : (size_t)off; i < d->n + 2; i++) {
		const char *name = i == 0   ? "."
				   : i == 1 ? ".."
					    : d->names.data + d->at[i - 2];
		size_t need =
		    plus ? fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0)
			 : fuse_add_direntry(req, NULL, 0, name, NULL, 0);
		if (pos + need > size)
			break;
		struct fuse_entry_param e;
		memset(&e, 0, sizeof e);
		e.attr.st_ino = i == 0 ? ino : UNKNOWN_INO;
		e.attr.st_mode = S_IFDIR;
		struct node n;
		if (i >= 2 && tree_child(fs()->tree, &d->dir, name, &n) == 0) {
			/* Volatile files get no attributes here: the kernel
			 * would keep those of a READDIRPLUS answer. */
			if (plus && !tree_volatile(&n) &&
			    fill_entry(ino, name, &n, &e) == 0) {
				given = xrealloc(given,
						 (n_given + 1) * sizeof *given);
				given[n_given++] = e.ino;
				/* Attributes given while the tree changed
				 * are taken back. */
				if (tree_generation(fs()->tree) != gen) {
					p.len = dir_len;
					buf_adds(&p, name);
					kc_push(p.data, false, true);
				}
			} else {
				memset(&e, 0, sizeof e);
				e.attr.st_mode = node_mode(&n);
				fuse_ino_t known = inodes_find(inos, ino, name);
				e.attr.st_ino = known ? known : UNKNOWN_INO;
			}
			node_release(&n);
		}
		if (plus)
			pos +=
			    fuse_add_direntry_plus(req, out + pos, size - pos,
						   name, &e, (off_t)(i + 1));
		else
			pos += fuse_add_direntry(req, out + pos, size - pos,
						 name, &e.attr, (off_t)(i + 1));
	}
	cur = NULL;
	if (fuse_reply_buf(req, out, pos) == -ENOENT)
		for (size_t i = 0; i < n_given; i++)
			unref(given[i]);
	free(given);
	free(out);
	buf_free(&p);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

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
static int do_open(const char *path, struct fuse_file_info *fi)
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
static void do_release(struct handle *h)
{
	const struct file_hooks *hooks = h->file->hooks;
	/* `: > config`: truncated, never written. Flush did not store it, as
	 * a shell's dup2 flushes before the write comes; an empty template
	 * cannot be invalid, so nothing is lost by storing it this late. */
	if (h->truncated && h->file->store && !(h->file->flags & F_PER_WRITE)) {
		h->file->store(fs()->tree, h->pod_id, "", 0);
		kc_sync(0, 0);
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
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
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

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
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
		kc_sync(0, 0);
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

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *data,
		     size_t size, off_t off, struct fuse_file_info *fi)
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
		int rc = hooks->flush ? hooks->flush(&h->fh) : 0;
		kc_sync(0, 0);
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
	kc_sync(0, 0);
	return rc;
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	cur = req;
	stats_count(ST_FUSE_FLUSH);
	reply_err(req, do_flush((struct handle *)(uintptr_t)fi->fh));
}

static void ll_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	cur = req;
	stats_count(ST_FUSE_RELEASE);
	do_release((struct handle *)(uintptr_t)fi->fh);
	reply_err(req, 0);
}

/* truncate(2) of path, or ftruncate(2) of an open file (h): 0 or -errno. */
static int do_truncate(const char *path, off_t size, struct handle *h)
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
			kc_sync(0, 0);
		}
		buf_free(&b);
	}
	node_release(&n);
	return rc;
}

/* Modes are primefs's to say, but a chmod that changes nothing (cp -p,
 * install -m of the mode a file has) or the owner's chmod of a pod
 * directory (install -d pods/x sets its mode after the rent) is a harmless
 * success, so those tools print no spurious error. Anything else: EPERM. */
static int do_chmod(const char *path, mode_t mode)
{
	struct node n;
	int rc = tree_resolve(fs()->tree, path, &n);
	if (rc)
		return rc;
	uid_t uid = caller()->uid;
	bool owner = uid == getuid() || uid == 0;
	bool same = (mode & 07777) == (node_mode(&n) & 07777);
	bool pod_dir = n.type == N_DIR && n.dir == D_POD;
	node_release(&n);
	return same || (owner && pod_dir) ? 0 : -EPERM;
}

/* chmod, chown, truncate and utimens in one request, in that order; the
 * first that fails is the answer. Owners and times are primefs's: EPERM. */
static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	cur = req;
	unsigned long gen = tree_generation(fs()->tree);
	struct buf path;
	buf_init(&path);
	int rc = ino_path(ino, &path);
	if (rc == 0 && (to_set & FUSE_SET_ATTR_MODE))
		rc = do_chmod(path.data, attr->st_mode);
	if (rc == 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		rc = -EPERM;
	if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE))
		rc =
		    do_truncate(path.data, attr->st_size,
				fi ? (struct handle *)(uintptr_t)fi->fh : NULL);
	if (rc == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)))
		rc = -EPERM;
	if (rc)
		reply_err(req, rc);
	else
		reply_attr_of(req, ino, path.data, gen);
	buf_free(&path);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino; /* never fetches anything */
	struct statvfs st;
	memset(&st, 0, sizeof st);
	st.f_bsize = 4096;
	st.f_frsize = 4096;
	st.f_namemax = 255;
	fuse_reply_statfs(req, &st);
}

/* ---- making and removing ---- */

/* Pods rented here lately, and by whom: for the after-the-fact rule. */
static struct intent_recent recent = INTENT_RECENT_INIT;

/* Something new is being made at path, inside pods/x. When the process
 * that rented x a moment ago (or its child) makes it, that mkdir was made
 * on the way to something else (a copy): the pod goes back at once. */
static void made_inside(const char *op, const char *path)
{
	char *name;
	if (!intent_made_inside(&recent, caller()->pid, path, &name))
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
static int do_mkdir(const char *path)
{
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
	pid_t pid = caller()->pid;
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

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	(void)mode;
	cur = req;
	unsigned long gen = tree_generation(fs()->tree);
	struct buf path;
	buf_init(&path);
	int rc = child_path(parent, name, &path);
	if (rc == 0)
		rc = do_mkdir(path.data);
	/* The kernel holds parent's lock for this request. */
	kc_sync(parent, 0);
	if (rc)
		reply_err(req, rc);
	else
		reply_entry_of(req, parent, name, path.data, gen);
	buf_free(&path);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	cur = req;
	struct buf path;
	buf_init(&path);
	int rc = child_path(parent, name, &path);
	if (rc == 0)
		rc = caller_may(0, O_WRONLY);
	if (rc == 0) {
		rc = tree_rmdir(fs()->tree, path.data);
		/* The kernel holds the locks of parent and of the victim. */
		kc_sync(parent, inodes_find(inos, parent, name));
	}
	buf_free(&path);
	reply_err(req, rc);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	cur = req;
	struct buf path;
	buf_init(&path);
	struct node n;
	int rc = child_path(parent, name, &path);
	if (rc == 0 && (rc = tree_resolve(fs()->tree, path.data, &n)) == 0) {
		rc = n.type == N_DIR ? -EISDIR : -EPERM;
		node_release(&n);
	}
	buf_free(&path);
	reply_err(req, rc);
}

/* open(O_CREAT) of a file that exists (`echo x > config`) arrives here
 * when the kernel has no entry cached: it is an open. Nothing new can be
 * created. */
static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	(void)mode;
	cur = req;
	struct buf path;
	buf_init(&path);
	struct node n;
	struct fuse_entry_param e;
	int rc = child_path(parent, name, &path);
	if (rc == 0 && (rc = tree_resolve(fs()->tree, path.data, &n)) == 0)
		node_release(&n);
	if (rc == -ENOENT) {
		made_inside("create", path.data);
		rc = -EACCES;
	}
	if (rc == 0)
		rc = do_open(path.data, fi);
	if (rc == 0 && (rc = tree_resolve(fs()->tree, path.data, &n)) == 0) {
		rc = fill_entry(parent, name, &n, &e);
		node_release(&n);
	}
	if (rc && fi->fh) {
		do_release((struct handle *)(uintptr_t)fi->fh);
		fi->fh = 0;
	}
	buf_free(&path);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	cur = NULL;
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		do_release((struct handle *)(uintptr_t)fi->fh);
		unref(e.ino);
	}
}

/* mknod (other than of a regular file, which comes as create) and
 * symlink: nothing new can be made. */
static void refuse_new(fuse_req_t req, const char *op, fuse_ino_t parent,
		       const char *name)
{
	cur = req;
	struct buf path;
	buf_init(&path);
	struct node n;
	int rc = child_path(parent, name, &path);
	if (rc == 0 && (rc = tree_resolve(fs()->tree, path.data, &n)) == 0)
		node_release(&n);
	if (rc == -ENOENT)
		made_inside(op, path.data);
	buf_free(&path);
	reply_err(req, rc == 0 ? -EEXIST : rc == -ENOENT ? -EPERM : rc);
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	(void)mode;
	(void)rdev;
	refuse_new(req, "mknod", parent, name);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	(void)link;
	refuse_new(req, "symlink", parent, name);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	(void)parent;
	(void)name;
	(void)newparent;
	(void)newname;
	(void)flags;
	fuse_reply_err(req, EPERM);
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

static void ll_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
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

static const struct fuse_lowlevel_ops ops = {
    .init = ll_init,
    .destroy = ll_destroy,
    .lookup = ll_lookup,
    .forget = ll_forget,
    .forget_multi = ll_forget_multi,
    .getattr = ll_getattr,
    .setattr = ll_setattr,
    .readlink = ll_readlink,
    .mknod = ll_mknod,
    .mkdir = ll_mkdir,
    .unlink = ll_unlink,
    .rmdir = ll_rmdir,
    .symlink = ll_symlink,
    .rename = ll_rename,
    .open = ll_open,
    .read = ll_read,
    .write = ll_write,
    .flush = ll_flush,
    .release = ll_release,
    .opendir = ll_opendir,
    .readdir = ll_readdir,
    .readdirplus = ll_readdirplus,
    .releasedir = ll_releasedir,
    .statfs = ll_statfs,
    .create = ll_create,
    .poll = ll_poll,
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
