/* sftp_cache.c — attributes kept a while (sftp.h says for how long and
 * what drops them): the listings of the directories listed lately, each
 * name with its attributes and when they were asked for, so that a lookup
 * within the ttl costs no round trip; and stats ahead: a walker's step
 * (a lookup, or a listing or open of a name the kernel had from a
 * listing: walk_step) in a listed directory sends, in the background and
 * all at once, LSTATs of the names that follow it in listing order whose
 * attributes are not fresh, so that a walker (cp -a, ls -lR, rsync, find)
 * finds them kept; or in name order, when that is the order the walker's
 * lookups follow (rsync; cp, which goes by inode number, once this mount made
 * the files). How many: as many as the walker's pace uses within half the ttl
 * (at most AHEAD_MAX), none for one slower than that. A path found by a stat
 * outside a listing is kept too (loose: the directories above a walk), and a
 * step stats again in the background the directories above it that are known
 * and half their ttl old, and beside each the name the walker will step to next
 * there: the kernel revalidates each of them once its entry expires, every
 * fs_ttl, and finds them kept. Memory work only, under f->lock (the I/O thread
 * fills what comes back: sreq.on_done); bounded: KEEP_DIRS listings, KEEP_NAMES
 * names in all, KEEP_LOOSE paths, the least recently used going first. */
#include "sftp_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define KEEP_DIRS  64
#define KEEP_NAMES 65536
#define AHEAD_MAX  32
#define KEEP_LOOSE 128

struct kname {
	char *name;
	struct sftp_attr a;
	double at;     /* when a was asked for (monotonic) */
	bool has;      /* a is set */
	uint32_t pend; /* the id of the LSTAT in flight for it; 0: none */
	double pend_at;
	size_t rank; /* in by_name */
};

struct kdir {
	char *path;
	size_t plen;
	struct kname *names;	/* in listing order */
	struct kname **by_name; /* sorted by name */
	size_t n;
	double last, gap;     /* the walker's last lookup here, its pace */
	size_t last_i;	      /* and its name (in listing order) */
	int in_list, in_name; /* how well each order foretold it */
	struct kdir *prev, *next;
};

/* A path found by a stat outside a listing. */
struct kloose {
	char *path;
	struct kname e;
	double used;
};

struct sftp_cache {
	struct kdir lru; /* most recently used first */
	size_t n_dirs, n_names;
	struct kloose loose[KEEP_LOOSE];
	size_t n_loose;
	uint64_t epoch; /* moved by every drop: a listing under way
			   across one is not kept */
};

static struct sftp_cache *cache_of(struct sftp *f)
{
	if (!f->cache) {
		f->cache = xcalloc(1, sizeof *f->cache);
		f->cache->lru.prev = f->cache->lru.next = &f->cache->lru;
	}
	return f->cache;
}

static void kdir_unlink(struct kdir *d)
{
	d->prev->next = d->next;
	d->next->prev = d->prev;
}

static void kdir_front(struct sftp_cache *c, struct kdir *d)
{
	d->next = c->lru.next;
	d->prev = &c->lru;
	c->lru.next->prev = d;
	c->lru.next = d;
}

static void kdir_free(struct sftp_cache *c, struct kdir *d)
{
	kdir_unlink(d);
	c->n_dirs--;
	c->n_names -= d->n;
	for (size_t i = 0; i < d->n; i++)
		free(d->names[i].name);
	free(d->names);
	free(d->by_name);
	free(d->path);
	free(d);
}

/* The directory part of path (*dlen bytes; the root's entries: "/") and
 * its name; false for the root or a relative path. */
static bool split(const char *path, size_t *dlen, const char **name)
{
	const char *s = strrchr(path, '/');
	if (!s || !s[1])
		return false;
	*dlen = s == path ? 1 : (size_t)(s - path);
	*name = s + 1;
	return true;
}

static struct kdir *kdir_find(struct sftp_cache *c, const char *dir,
			      size_t dlen)
{
	for (struct kdir *d = c->lru.next; d != &c->lru; d = d->next)
		if (d->plen == dlen && !memcmp(d->path, dir, dlen))
			return d;
	return NULL;
}

static int by_name(const void *x, const void *y)
{
	return strcmp((*(struct kname *const *)x)->name,
		      (*(struct kname *const *)y)->name);
}

static struct kloose *loose_find(struct sftp_cache *c, const char *path)
{
	for (size_t i = 0; i < c->n_loose; i++)
		if (!strcmp(c->loose[i].path, path))
			return &c->loose[i];
	return NULL;
}

/* The loose path e is kept for, or NULL (e is a listing's). */
static struct kloose *loose_of(struct sftp_cache *c, struct kname *e)
{
	char *p = (char *)e;
	if (p < (char *)c->loose || p >= (char *)(c->loose + KEEP_LOOSE))
		return NULL;
	return (struct kloose *)(p - offsetof(struct kloose, e));
}

static void loose_free(struct sftp_cache *c, struct kloose *l)
{
	free(l->path);
	*l = c->loose[--c->n_loose];
}

/* A loose entry for path (the least recently used one goes if full). */
static struct kname *loose_add(struct sftp_cache *c, const char *path,
			       double now)
{
	struct kloose *l = &c->loose[c->n_loose];
	if (c->n_loose == KEEP_LOOSE) {
		l = &c->loose[0];
		for (size_t i = 1; i < c->n_loose; i++)
			if (c->loose[i].used < l->used)
				l = &c->loose[i];
		free(l->path);
	} else {
		c->n_loose++;
	}
	*l = (struct kloose){.path = xstrdup(path), .used = now};
	return &l->e;
}

/* What is kept of path, and in *dp its listing (NULL: loose). */
static struct kname *entry(struct sftp *f, const char *path, struct kdir **dp)
{
	size_t dlen;
	const char *name;
	struct kdir *d = NULL;
	struct kname key = {0}, *kp = &key, **e = NULL;
	if (f->cache && split(path, &dlen, &name) &&
	    (d = kdir_find(f->cache, path, dlen))) {
		key.name = (char *)name;
		e = bsearch(&kp, d->by_name, d->n, sizeof *d->by_name, by_name);
	}
	if (dp)
		*dp = e ? d : NULL;
	if (e)
		return *e;
	struct kloose *l = f->cache ? loose_find(f->cache, path) : NULL;
	return l ? &l->e : NULL;
}

static void forget(struct sftp *f, const char *path)
{
	struct kname *e = entry(f, path, NULL);
	if (e)
		e->has = false, e->pend = 0; /* a reply in flight: not kept */
}

void sftp_cache_drop(struct sftp *f, const char *path)
{
	struct sftp_cache *c = f->cache;
	if (!c || !path)
		return;
	c->epoch++;
	forget(f, path);
	/* Its directory's own attributes (times, size), in its parent's
	 * listing. */
	size_t dlen, plen = strlen(path);
	const char *name;
	if (split(path, &dlen, &name) && dlen > 1) {
		char *dir = xstrndup(path, dlen);
		forget(f, dir);
		free(dir);
	}
	/* The listings of it and below it (a directory renamed, removed),
	 * and loose paths below it. */
	bool root = !strcmp(path, "/");
	for (struct kdir *d = c->lru.next, *next; d != &c->lru; d = next) {
		next = d->next;
		if (!strncmp(d->path, path, plen) &&
		    (!d->path[plen] || d->path[plen] == '/' || root))
			kdir_free(c, d);
	}
	for (size_t i = 0; i < c->n_loose;)
		if (!strncmp(c->loose[i].path, path, plen) &&
		    (c->loose[i].path[plen] == '/' || root))
			loose_free(c, &c->loose[i]);
		else
			i++;
}

void sftp_cache_clear(struct sftp *f)
{
	struct sftp_cache *c = f->cache;
	if (!c)
		return;
	c->epoch++;
	while (c->lru.next != &c->lru)
		kdir_free(c, c->lru.next);
	while (c->n_loose)
		loose_free(c, &c->loose[0]);
}

void sftp_cache_free(struct sftp *f)
{
	sftp_cache_clear(f);
	free(f->cache);
	f->cache = NULL;
}

/* The listing of path, read from at: kept in place of any older one. */
static void kdir_put(struct sftp_cache *c, const char *path,
		     const struct sftp_dirent *ents, size_t n, double at)
{
	struct kdir *d = kdir_find(c, path, strlen(path));
	if (d)
		kdir_free(c, d);
	n = min_sz(n, KEEP_NAMES);
	d = xcalloc(1, sizeof *d);
	d->path = xstrdup(path);
	d->plen = strlen(path);
	d->names = xcalloc(n ? n : 1, sizeof *d->names);
	d->by_name = xcalloc(n ? n : 1, sizeof *d->by_name);
	d->n = n;
	for (size_t i = 0; i < n; i++) {
		struct kname *e = &d->names[i];
		e->name = xstrdup(ents[i].name);
		e->a = ents[i].attr;
		e->at = at;
		e->has = ents[i].attr.flags & SFTP_ATTR_MODE;
		d->by_name[i] = e;
	}
	qsort(d->by_name, n, sizeof *d->by_name, by_name);
	for (size_t i = 0; i < n; i++)
		d->by_name[i]->rank = i;
	kdir_front(c, d);
	c->n_dirs++;
	c->n_names += n;
	while ((c->n_dirs > KEEP_DIRS || c->n_names > KEEP_NAMES) &&
	       c->lru.prev != d)
		kdir_free(c, c->lru.prev);
}

/* A stat ahead's reply, kept unless its name was dropped meanwhile. */
static void ahead_done(struct sftp *f, struct sreq *r)
{
	struct kname *e = entry(f, r->path, NULL);
	struct sftp_attr a;
	if (e && e->pend == r->id) {
		e->pend = 0;
		e->has = !r->err && !sftp_reply_attrs(r, &a) &&
			 (a.flags & SFTP_ATTR_MODE);
		if (e->has) {
			e->a = a;
			e->at = e->pend_at;
		}
	}
	sreq_free(r);
}

/* A score moved towards whether an order foretold a lookup. */
static void score(int *s, bool hit)
{
	*s = hit ? (*s < 8 ? *s + 1 : 8) : (*s > 0 ? *s - 1 : 0);
}

/* The walker's pace in d (the time between two of its lookups) and
 * order, at its lookup of name i. */
static void pace(struct kdir *d, size_t i, double now)
{
	if (d->last > 0) {
		d->gap = d->gap > 0 ? 0.75 * d->gap + 0.25 * (now - d->last)
				    : now - d->last;
		score(&d->in_list, i == d->last_i + 1);
		score(&d->in_name,
		      d->names[i].rank == d->names[d->last_i].rank + 1);
	}
	d->last = now;
	d->last_i = i;
}

/* The name at pos in the order the walker seems to follow. */
static struct kname *nth(struct kdir *d, size_t pos)
{
	return d->in_name > d->in_list ? d->by_name[pos] : &d->names[pos];
}

/* Whether e is worth stating again in the background: not in flight,
 * and unknown or half its ttl old. */
static bool stale(const struct kname *e, double ttl, double now)
{
	return !e->pend && (!e->has || now - e->at >= ttl / 2);
}

/* A stat of path (kept in e) sent in the background. */
static bool send_stat(struct sftp *f, struct kname *e, const char *path,
		      double now)
{
	if (sftp_path_check(path))
		return false;
	struct sreq *r = sftp_lstat_req(f, path);
	r->path = xstrdup(path);
	r->on_done = ahead_done;
	e->pend = r->id;
	e->pend_at = now;
	sreq_submit(f, r);
	return true;
}

/* A stat of d's name e sent in the background. */
static bool send_child_stat(struct sftp *f, struct kdir *d, struct kname *e,
			    double now)
{
	size_t pn = d->plen + strlen(e->name) + 2;
	char *p = xmalloc(pn);
	snprintf(p, pn, "%s/%s", d->plen == 1 ? "" : d->path, e->name);
	bool sent = send_stat(f, e, p, now);
	free(p);
	return sent;
}

/* Stats ahead of a lookup of d's name i: how many were sent. */
static size_t send_ahead(struct sftp *f, struct kdir *d, size_t i, double ttl,
			 double now)
{
	size_t k = AHEAD_MAX;
	if (d->gap > 0 && ttl / (2 * d->gap) < AHEAD_MAX)
		k = (size_t)(ttl / (2 * d->gap));
	if (d->in_name > d->in_list)
		i = d->names[i].rank;
	size_t end = min_sz(d->n, i + 1 + k), ready = 0, sent = 0;
	for (size_t j = i + 1; j < end; j++) {
		const struct kname *e = nth(d, j);
		ready += !stale(e, ttl, now);
	}
	if (k < 2 || 2 * ready >= k)
		return 0;
	for (size_t j = i + 1; j < end; j++) {
		struct kname *e = nth(d, j);
		if (!stale(e, ttl, now))
			continue;
		sent += send_child_stat(f, d, e, now);
	}
	return sent;
}

/* The directories above path that are known, stated again once half
 * their ttl old, and beside each the name the walker will step to next
 * in the listing it is in (a walk that spends longer than the ttl in each
 * directory, cp -a, finds the next one kept): how many were sent. */
static size_t refresh_above(struct sftp *f, const char *path, double ttl,
			    double now)
{
	if (!f->cache)
		return 0;
	char *p = xstrdup(path);
	size_t sent = 0;
	for (char *s = strrchr(p, '/'); s && s > p; s = strrchr(p, '/')) {
		*s = '\0';
		struct kdir *d;
		struct kname *e = entry(f, p, &d);
		struct kloose *l = e && !d ? loose_of(f->cache, e) : NULL;
		if (l)
			l->used = now;
		if (e && e->has && stale(e, ttl, now))
			sent += send_stat(f, e, p, now);
		if (d && d->last > 0 && e == &d->names[d->last_i]) {
			size_t pos =
			    d->in_name > d->in_list ? e->rank : d->last_i;
			struct kname *next =
			    pos + 1 < d->n ? nth(d, pos + 1) : NULL;
			if (next && stale(next, ttl, now))
				sent += send_child_stat(f, d, next, now);
		}
	}
	free(p);
	return sent;
}

/* A walker's step to path: a lookup, a listing or an open of it (ls -lR
 * reaches directories, and cp -a files, through names the kernel has
 * from a listing, and looks nothing up until they expire): the directories
 * above it stated again at half their ttl and, in a listing kept of its
 * directory, its pace noted and the names after it stated ahead. How many
 * stats were sent. f->lock held. */
static size_t walk_step(struct sftp *f, const char *path, double ttl,
			double now)
{
	if (ttl <= 0)
		return 0;
	struct kdir *d;
	struct kname *e = entry(f, path, &d);
	size_t ahead = refresh_above(f, path, ttl, now);
	if (d) {
		size_t i = (size_t)(e - d->names);
		kdir_unlink(d);
		kdir_front(f->cache, d);
		/* Not again for the same name (a lookup, then its listing). */
		if (d->last <= 0 || i != d->last_i)
			pace(d, i, now);
		ahead += send_ahead(f, d, i, ttl, now);
	} else if (e) {
		loose_of(f->cache, e)->used = now;
	}
	return ahead;
}

/* Kept attributes of path fresh at now: *a, and in *left how long they
 * stay so. */
static bool fresh(struct sftp *f, const char *path, double ttl,
		  struct sftp_attr *a, double *left)
{
	struct kname *e = entry(f, path, NULL);
	double age = e ? now_monotonic() - e->at : 0;
	if (!e || !e->has || age >= ttl)
		return false;
	*a = e->a;
	*left = ttl - age;
	return true;
}

void sftp_walked(struct sftp *f, const char *path, double ttl)
{
	if (sftp_path_check(path))
		return;
	pthread_mutex_lock(&f->lock);
	size_t ahead = walk_step(f, path, ttl, now_monotonic());
	pthread_mutex_unlock(&f->lock);
	stats_add(ST_PODFS_AHEAD, (long)ahead);
}

int sftp_list(struct sftp *f, const char *path, double ttl,
	      struct sftp_dirent **out, size_t *n_out, double *at)
{
	*out = NULL;
	*n_out = 0;
	pthread_mutex_lock(&f->lock);
	uint64_t epoch = cache_of(f)->epoch;
	pthread_mutex_unlock(&f->lock);
	sftp_walked(f, path, ttl);
	*at = now_monotonic();
	struct sftp_file *d = NULL;
	struct sftp_dirent *v = NULL;
	size_t n = 0, cap = 0;
	int rc = sftp_opendir(f, path, &d);
	while (!rc) {
		struct sftp_dirent *e;
		size_t k;
		rc = sftp_readdir(d, &e, &k);
		if (rc || !k)
			break;
		for (size_t i = 0; i < k; i++) {
			if (!strcmp(e[i].name, ".") ||
			    !strcmp(e[i].name, "..")) {
				free(e[i].name);
				continue;
			}
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				v = xrealloc(v, cap * sizeof *v);
			}
			v[n++] = e[i];
		}
		free(e);
	}
	if (d)
		sftp_close(d);
	if (rc) {
		sftp_dirents_free(v, n);
		return rc;
	}
	pthread_mutex_lock(&f->lock);
	if (cache_of(f)->epoch == epoch) /* else it may predate a change */
		kdir_put(f->cache, path, v, n, *at);
	pthread_mutex_unlock(&f->lock);
	*out = v;
	*n_out = n;
	return 0;
}

int sftp_lookup(struct sftp *f, const char *path, double ttl,
		struct sftp_attr *a, double *left)
{
	int rc = sftp_path_check(path);
	if (rc)
		return rc;
	pthread_mutex_lock(&f->lock);
	double now = now_monotonic(), end = now + sreq_wait_limit(f);
	size_t ahead = walk_step(f, path, ttl, now);
	struct kname *e;
	/* Kept, or a stat of it in flight (ahead, or another lookup's). */
	bool waited = false;
	while (!fresh(f, path, ttl, a, left)) {
		e = entry(f, path, NULL);
		now = now_monotonic();
		if (!e || !e->pend || !f->owner || f->closing || now >= end)
			break;
		if (sftp_interrupted()) {
			pthread_mutex_unlock(&f->lock);
			stats_add(ST_PODFS_AHEAD, (long)ahead);
			return -EINTR;
		}
		waited = true;
		struct timespec ts;
		monotonic_abs(&ts, end - now < 0.1 ? end - now : 0.1);
		pthread_cond_timedwait(&f->cond, &f->lock, &ts);
	}
	if (fresh(f, path, ttl, a, left)) {
		pthread_mutex_unlock(&f->lock);
		stats_add(ST_PODFS_AHEAD, (long)ahead);
		stats_count(waited ? ST_PODFS_WAITED : ST_PODFS_KEPT);
		return 0;
	}
	/* Asked now: the answer kept if nothing dropped it meanwhile. */
	struct sreq *r = sftp_lstat_req(f, path);
	uint32_t id = r->id;
	double asked = now_monotonic();
	if (!(e = entry(f, path, NULL)))
		e = loose_add(cache_of(f), path, asked);
	if (!e->pend)
		e->pend = id, e->pend_at = asked;
	rc = sftp_call(f, r, true);
	if (!rc) {
		rc = r->type == SSH_FXP_ATTRS
			 ? sftp_reply_attrs(r, a)
			 : sftp_errno(f, OP_STAT, r, path, NULL);
		sreq_free(r);
	}
	if ((e = entry(f, path, NULL)) && e->pend == id) {
		e->pend = 0;
		e->has = !rc && (a->flags & SFTP_ATTR_MODE);
		if (e->has) {
			e->a = *a;
			e->at = asked;
		} else if (loose_of(f->cache, e)) { /* nothing loose to keep */
			loose_free(f->cache, loose_of(f->cache, e));
		}
	}
	double age = now_monotonic() - asked;
	*left = age < ttl ? ttl - age : 0;
	pthread_mutex_unlock(&f->lock);
	stats_add(ST_PODFS_AHEAD, (long)ahead);
	stats_count(ST_PODFS_WAITED);
	return rc;
}
