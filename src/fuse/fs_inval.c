/* fs_inval.c — telling the kernel what changed: the invalidation queue
 * and its threads.
 *
 * The kernel caches entries and attributes for the shortest freshness
 * window (per reply: fs_attr.c); what primefs learns meanwhile (a listing
 * that differs, its own mkdir and rmdir under both of a pod's names,
 * refresh, config and guard writes) is told to the kernel here. No
 * negative entries are given, so a name that appears needs nothing told.
 *
 * Who may invalidate what (the invariant; this is the one place it is
 * written):
 * - The tree says what changed (tree_set_changed), from any thread, with
 *   no lock held; kc_push only queues, never blocks.
 * - Only this file's threads call the kernel's invalidations, never a
 *   request's thread: telling a gone name takes its directory's lock,
 *   which the kernel may hold for that very request.
 * - The inodes thread tells attributes and pages. That needs no lock of a
 *   directory, so it never waits for a request.
 * - The entries threads tell gone names, each one directory at a time. A
 *   directory whose lock the kernel holds for a request primefs is
 *   answering (kc_dir_enter .. kc_dir_leave, which fs.c's locked_*
 *   wrappers put around every operation the kernel sends with a directory
 *   locked: lookup, mkdir, rmdir, unlink, create, mknod, symlink, readdir,
 *   setattr; rename is refused at once) is not taken
 *   until that request has returned, so one directory held by a slow
 *   request (a mkdir waiting for the API) never holds up the others.
 * - A request that changed something (kc_sync) returns once the kernel has
 *   been told of every inode queued so far, and of every gone name queued
 *   so far outside the directories locked for requests in progress. The
 *   names in those are told once their requests return; their inodes,
 *   told already, make a stat ask again meanwhile. So kc_sync never waits
 *   for the network, nor for a request that does; KC_SYNC_WAIT bounds it
 *   anyway (a lock the kernel took for a request no thread has read yet).
 */
#include "fs_int.h"

#include <limits.h>
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

/* A gone name to tell in its directory; seq: the item it came from
 * (KC_UNCOUNTED: a late one, which nobody waits for). */
#define KC_UNCOUNTED ULONG_MAX
struct kc_ent {
	char *name;
	unsigned long seq;
};

/* A directory with gone names to tell, or locked for requests (or both). */
struct kc_dir {
	fuse_ino_t ino;
	struct kc_ent *v; /* to tell, in order */
	size_t n, cap;
	unsigned long first; /* the oldest seq not told yet (KC_UNCOUNTED) */
	unsigned locks;	     /* requests the kernel holds its lock for */
	bool telling;	     /* an entries thread has it */
};

#define KC_ENTRY_THREADS 4

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;	/* work arrived, or stop */
	pthread_cond_t ent_cv;	/* a directory to tell, or stop */
	pthread_cond_t done_cv; /* told_inodes, a directory or a lock moved */
	struct kc_list now, late;
	struct kc_dir *dirs;
	size_t n_dirs, cap_dirs;
	unsigned long queued;	   /* items of `now`, ever */
	unsigned long told_inodes; /* items whose inodes were told */
	bool running, stop;
	pthread_t thread, ent_threads[KC_ENTRY_THREADS];
	int n_ent_threads;
} kc = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The directory ino's slot, added if need be (under kc.mu). */
static struct kc_dir *kc_dir(fuse_ino_t ino)
{
	for (size_t i = 0; i < kc.n_dirs; i++)
		if (kc.dirs[i].ino == ino)
			return &kc.dirs[i];
	if (kc.n_dirs == kc.cap_dirs) {
		kc.cap_dirs = kc.cap_dirs ? 2 * kc.cap_dirs : 16;
		kc.dirs = xrealloc(kc.dirs, kc.cap_dirs * sizeof *kc.dirs);
	}
	struct kc_dir *d = &kc.dirs[kc.n_dirs++];
	*d = (struct kc_dir){.ino = ino, .first = KC_UNCOUNTED};
	return d;
}

/* Drops d's slot if it holds nothing (under kc.mu): d is invalid after. */
static void kc_dir_tidy(struct kc_dir *d)
{
	if (d->n || d->locks || d->telling)
		return;
	free(d->v);
	*d = kc.dirs[--kc.n_dirs];
}

void kc_dir_enter(fuse_ino_t ino)
{
	pthread_mutex_lock(&kc.mu);
	kc_dir(ino)->locks++;
	pthread_cond_broadcast(&kc.done_cv);
	pthread_mutex_unlock(&kc.mu);
}

void kc_dir_leave(fuse_ino_t ino)
{
	pthread_mutex_lock(&kc.mu);
	struct kc_dir *d = kc_dir(ino);
	if (d->locks)
		d->locks--;
	if (!d->locks && d->n)
		pthread_cond_signal(&kc.ent_cv);
	kc_dir_tidy(d);
	pthread_mutex_unlock(&kc.mu);
}

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

/* The gone names among a batch's items (counted: how many of the first
 * are counted, seq of the first of them: first), to their directories'
 * slots: only names the kernel holds an inode for. An entry takes what is
 * under it with it: names under one handed over in this batch are not
 * handed over again. */
static void kc_hand_entries(struct kc_item *items, size_t n, size_t counted,
			    unsigned long first)
{
	const char *last = NULL; /* the last gone path handed over */
	size_t last_len = 0;
	for (size_t i = 0; i < n; i++) {
		const char *path = items[i].path;
		if (!items[i].gone)
			continue;
		if (last && !strncmp(path, last, last_len) &&
		    path[last_len] == '/')
			continue;
		uint64_t parent = 0;
		if (!inodes_walk(inos, path, &parent) || !parent)
			continue;
		last = path;
		last_len = strlen(path);
		unsigned long seq = i < counted ? first + i : KC_UNCOUNTED;
		pthread_mutex_lock(&kc.mu);
		struct kc_dir *d = kc_dir(parent);
		if (d->n == d->cap) {
			d->cap = d->cap ? 2 * d->cap : 8;
			d->v = xrealloc(d->v, d->cap * sizeof *d->v);
		}
		d->v[d->n++] =
		    (struct kc_ent){xstrdup(strrchr(path, '/') + 1), seq};
		if (seq < d->first)
			d->first = seq;
		if (!d->locks && !d->telling)
			pthread_cond_signal(&kc.ent_cv);
		pthread_mutex_unlock(&kc.mu);
	}
}

/* The inodes thread: takes what was queued (and late items now due),
 * tells their inodes, and hands the gone names to the entries threads. */
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
		unsigned long first = kc.told_inodes + 1;
		unsigned long upto = kc.told_inodes + counted;
		bool entries = kc.n_ent_threads > 0;
		pthread_mutex_unlock(&kc.mu);
		kc_send_inodes(batch.v, batch.n);
		if (entries)
			kc_hand_entries(batch.v, batch.n, counted, first);
		kc_list_free(&batch);
		pthread_mutex_lock(&kc.mu);
		kc.told_inodes = upto;
		pthread_cond_broadcast(&kc.done_cv);
	}
	pthread_mutex_unlock(&kc.mu);
	return NULL;
}

/* A directory with names to tell that no request holds locked and no
 * other thread tells (under kc.mu), or NULL. */
static struct kc_dir *kc_dir_ready(void)
{
	for (size_t i = 0; i < kc.n_dirs; i++) {
		struct kc_dir *d = &kc.dirs[i];
		if (d->n && !d->locks && !d->telling)
			return d;
	}
	return NULL;
}

/* An entries thread: the gone names of one directory at a time. */
static void *kc_entries_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&kc.mu);
	while (!kc.stop) {
		struct kc_dir *d = kc_dir_ready();
		if (!d) {
			pthread_cond_wait(&kc.ent_cv, &kc.mu);
			continue;
		}
		fuse_ino_t ino = d->ino;
		struct kc_ent *v = d->v;
		size_t n = d->n;
		d->v = NULL;
		d->n = d->cap = 0;
		d->telling = true;
		if (kc_dir_ready()) /* another thread takes that one */
			pthread_cond_signal(&kc.ent_cv);
		pthread_mutex_unlock(&kc.mu);
		for (size_t i = 0; i < n; i++) {
			const char *name = v[i].name;
			if (fuse_lowlevel_notify_inval_entry(the_se, ino, name,
							     strlen(name)) == 0)
				stats_count(ST_KERNEL_INVAL);
			free(v[i].name);
		}
		free(v);
		pthread_mutex_lock(&kc.mu);
		d = kc_dir(ino);
		d->telling = false;
		d->first = KC_UNCOUNTED;
		for (size_t i = 0; i < d->n; i++)
			if (d->v[i].seq < d->first)
				d->first = d->v[i].seq;
		if (d->n && !d->locks)
			pthread_cond_signal(&kc.ent_cv);
		kc_dir_tidy(d);
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
	for (int i = 0; i < KC_ENTRY_THREADS; i++)
		if (pthread_create(&kc.ent_threads[kc.n_ent_threads], NULL,
				   kc_entries_main, NULL) == 0)
			kc.n_ent_threads++;
	if (!kc.n_ent_threads)
		plog("mount", "/",
		     "no entries thread: gone names are kept by the kernel "
		     "for up to the freshness window");
	if (pthread_create(&kc.thread, NULL, kc_main, NULL)) {
		kc.running = false;
		plog("mount", "/",
		     "no invalidation thread: the kernel caches nothing");
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
	if (was)
		pthread_join(kc.thread, NULL);
	for (int i = 0; i < kc.n_ent_threads; i++)
		pthread_join(kc.ent_threads[i], NULL);
	kc.n_ent_threads = 0;
	kc_list_free(&kc.now);
	kc_list_free(&kc.late);
	for (size_t i = 0; i < kc.n_dirs; i++) {
		for (size_t j = 0; j < kc.dirs[i].n; j++)
			free(kc.dirs[i].v[j].name);
		free(kc.dirs[i].v);
	}
	free(kc.dirs);
	kc.dirs = NULL;
	kc.n_dirs = kc.cap_dirs = 0;
}

/* Whether kc_sync waits for something queued up to target (under kc.mu):
 * an inode not told, or a gone name not told in a directory no request
 * holds locked. */
static bool kc_owed(unsigned long target)
{
	if (kc.told_inodes < target)
		return true;
	for (size_t i = 0; i < kc.n_dirs; i++)
		if (kc.dirs[i].first <= target && !kc.dirs[i].locks)
			return true;
	return false;
}

/* A request that changed something returns once the kernel has been told
 * what it must (the invariant above), or after KC_SYNC_WAIT, or when it
 * is interrupted: after rmdir pods/ID, stat pods/NAME is ENOENT at once. */
void kc_sync(void)
{
	pthread_mutex_lock(&kc.mu);
	unsigned long target = kc.queued;
	double deadline = now_monotonic() + KC_SYNC_WAIT;
	bool late = false;
	while (kc.running && kc_owed(target)) {
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
