/* fs_inval.c — telling the kernel what changed: the invalidation queue
 * and its two threads.
 *
 * The kernel caches entries and attributes for the shortest freshness
 * window; what the tree says changed is invalidated by a thread of this
 * file's own (never from a request the kernel waits on), and a request
 * that made a change waits until the kernel has been told before it
 * returns. */
#include "fs_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "inodes.h"
#include "log.h"

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

void kc_push(const char *path, bool gone, bool late)
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
void kc_changed(void *arg, const char *path, bool gone)
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

void kc_start(void)
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

void kc_stop(void)
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
void kc_sync(fuse_ino_t locked, fuse_ino_t locked2)
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
