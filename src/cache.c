/* cache.c — see cache.h. Each kind has a slot: the current snapshot, and
 * whether a fetch is under way. The slot's mutex guards those fields only;
 * the fetch itself runs unlocked, and threads that miss while it runs wait
 * on the slot's condition variable for its result. */
#include "cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "naming.h"

struct slot {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct snap *snap;
	bool fetching;
	int fail_errno;
	double fail_at;
	double ttl;
	unsigned long changes; /* bumped by cache_pods_change */
};

struct cache {
	struct api *api;
	struct slot slots[SNAP_KINDS];
	/* Pods this mount terminated that no history listing has shown yet
	 * (guarded by the history slot's mutex). */
	struct pod_list terminated;
};

static const char *const kind_names[SNAP_KINDS] = {
    [SNAP_OFFERS] = "availability",
    [SNAP_PODS] = "pods",
    [SNAP_HISTORY] = "history",
    [SNAP_WALLET] = "balance",
};

struct cache *cache_new(struct api *api, const double ttl[SNAP_KINDS])
{
	struct cache *c = xcalloc(1, sizeof *c);
	c->api = api;
	for (int k = 0; k < SNAP_KINDS; k++) {
		pthread_mutex_init(&c->slots[k].mu, NULL);
		pthread_cond_init(&c->slots[k].cv, NULL);
		c->slots[k].ttl = ttl[k];
	}
	return c;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	for (int k = 0; k < SNAP_KINDS; k++) {
		if (c->slots[k].snap)
			snap_put(c->slots[k].snap);
		pthread_mutex_destroy(&c->slots[k].mu);
		pthread_cond_destroy(&c->slots[k].cv);
	}
	pod_list_free(&c->terminated);
	free(c);
}

static struct snap *snap_new(enum snap_kind kind)
{
	struct snap *s = xcalloc(1, sizeof *s);
	atomic_init(&s->refs, 1);
	s->kind = kind;
	s->fetched = time(NULL);
	s->fetched_mono = now_monotonic();
	return s;
}

void snap_put(struct snap *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	for (size_t i = 0; i < s->n_types; i++) {
		free(s->types[i].name);
		free(s->types[i].offers);
	}
	free(s->types);
	offer_list_free(&s->offers);
	pod_list_free(&s->pods);
	free(s->by_dir);
	free(s->by_id);
	wallet_free(&s->wallet);
	free(s);
}

static struct snap *snap_get(struct snap *s)
{
	atomic_fetch_add(&s->refs, 1);
	return s;
}

/* ---- offers ---- */

struct typed {
	char *dir;
	struct offer *o;
};

static int cmp_typed(const void *a, const void *b)
{
	const struct typed *x = a, *y = b;
	return strcmp(x->dir, y->dir);
}

static int cmp_offer_name(const void *a, const void *b)
{
	const struct offer *x = *(const struct offer *const *)a;
	const struct offer *y = *(const struct offer *const *)b;
	return strcmp(x->name, y->name);
}

static bool cheaper(const struct offer *a, const struct offer *b)
{
	return !b || a->price.d < b->price.d ||
	       (a->price.d == b->price.d && strcmp(a->name, b->name) < 0);
}

struct snap *snap_from_offers(struct offer_list *l)
{
	struct snap *s = snap_new(SNAP_OFFERS);
	s->offers = *l;
	l->v = NULL;
	l->n = 0;
	size_t n = 0, skipped = 0;
	struct typed *t = xcalloc(s->offers.n, sizeof *t);
	for (size_t i = 0; i < s->offers.n; i++) {
		char *dir = gpu_type_dir(s->offers.v[i].gpu_type);
		if (!dir) {
			skipped++;
			continue;
		}
		t[n].dir = dir;
		t[n].o = &s->offers.v[i];
		n++;
	}
	if (skipped)
		plog("list", "/availability",
		     "skipped %zu offers without a usable gpuType", skipped);
	/* Stable grouping: qsort is not stable, but naming does not depend
	 * on the order within a group. */
	qsort(t, n, sizeof *t, cmp_typed);
	for (size_t from = 0; from < n;) {
		size_t to = from + 1;
		while (to < n && !strcmp(t[to].dir, t[from].dir))
			to++;
		s->types =
		    xrealloc(s->types, (s->n_types + 1) * sizeof *s->types);
		struct gpu_type *g = &s->types[s->n_types++];
		g->name = xstrdup(t[from].dir);
		g->n = to - from;
		g->offers = xcalloc(g->n, sizeof *g->offers);
		g->cheapest = NULL;
		for (size_t i = from; i < to; i++)
			g->offers[i - from] = t[i].o;
		name_offers(g->offers, g->n);
		qsort(g->offers, g->n, sizeof *g->offers, cmp_offer_name);
		for (size_t i = 0; i < g->n; i++) {
			struct offer *o = g->offers[i];
			/* Every stock value the API sends counts as in stock;
			 * an offer with no price is never chosen. */
			if (o->stock && o->price.set && cheaper(o, g->cheapest))
				g->cheapest = o;
		}
		from = to;
	}
	for (size_t i = 0; i < n; i++)
		free(t[i].dir);
	free(t);
	return s;
}

static int cmp_type_key(const void *key, const void *elem)
{
	return strcmp(key, ((const struct gpu_type *)elem)->name);
}

const struct gpu_type *snap_type(const struct snap *s, const char *name)
{
	if (!s || !s->n_types)
		return NULL;
	return bsearch(name, s->types, s->n_types, sizeof *s->types,
		       cmp_type_key);
}

static int cmp_offer_key(const void *key, const void *elem)
{
	return strcmp(key, (*(const struct offer *const *)elem)->name);
}

const struct offer *type_offer(const struct gpu_type *t, const char *name)
{
	if (!t || !t->n)
		return NULL;
	struct offer **o =
	    bsearch(name, t->offers, t->n, sizeof *t->offers, cmp_offer_key);
	return o ? *o : NULL;
}

/* ---- pods ---- */

static int cmp_pod_dir(const void *a, const void *b)
{
	return strcmp((*(struct pod *const *)a)->dir,
		      (*(struct pod *const *)b)->dir);
}

static int cmp_pod_id(const void *a, const void *b)
{
	return strcmp((*(struct pod *const *)a)->id,
		      (*(struct pod *const *)b)->id);
}

struct snap *snap_from_pods(struct pod_list *l, bool history)
{
	struct snap *s = snap_new(history ? SNAP_HISTORY : SNAP_PODS);
	s->pods = *l;
	l->v = NULL;
	l->n = 0;
	s->pods.n =
	    dedupe_pods(s->pods.v, s->pods.n, history ? "/history" : "/pods");
	/* History is named as pods/ is: by name when safe and unique there,
	 * else by id. */
	name_pods(s->pods.v, s->pods.n);
	s->by_dir = xcalloc(s->pods.n, sizeof *s->by_dir);
	s->by_id = xcalloc(s->pods.n, sizeof *s->by_id);
	for (size_t i = 0; i < s->pods.n; i++)
		s->by_dir[i] = s->by_id[i] = &s->pods.v[i];
	qsort(s->by_dir, s->pods.n, sizeof *s->by_dir, cmp_pod_dir);
	qsort(s->by_id, s->pods.n, sizeof *s->by_id, cmp_pod_id);
	return s;
}

static int cmp_dir_key(const void *key, const void *elem)
{
	return strcmp(key, (*(struct pod *const *)elem)->dir);
}

static int cmp_id_key(const void *key, const void *elem)
{
	return strcmp(key, (*(struct pod *const *)elem)->id);
}

const struct pod *snap_pod(const struct snap *s, const char *name)
{
	if (!s || !s->pods.n)
		return NULL;
	struct pod **p =
	    bsearch(name, s->by_id, s->pods.n, sizeof *s->by_id, cmp_id_key);
	if (!p)
		p = bsearch(name, s->by_dir, s->pods.n, sizeof *s->by_dir,
			    cmp_dir_key);
	return p ? *p : NULL;
}

/* ---- history: the listing plus what this mount terminated ---- */

/* A copy of a pod as a history pod, from its own JSON. */
static bool history_copy(const struct pod *p, struct pod *out)
{
	json_object *o = json_tokener_parse(p->json);
	int rc = pod_parse(o, true, out);
	json_object_put(o);
	return rc == 0;
}

static bool listed(const struct pod_list *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].id && !strcmp(l->v[i].id, id))
			return true;
	return false;
}

/* The history snapshot of listing `l` (taken): the pods this mount
 * terminated that `l` does not show yet are added; those it shows are
 * forgotten, as the API has them now. Locks the history slot briefly. */
static struct snap *history_snap(struct cache *c, struct pod_list *l)
{
	struct slot *sl = &c->slots[SNAP_HISTORY];
	pthread_mutex_lock(&sl->mu);
	struct pod_list *t = &c->terminated;
	size_t kept = 0;
	l->v = xrealloc(l->v, (l->n + t->n + 1) * sizeof *l->v);
	size_t listed_n = l->n;
	for (size_t i = 0; i < t->n; i++) {
		struct pod_list shown = {l->v, listed_n};
		if (listed(&shown, t->v[i].id)) {
			pod_free(&t->v[i]);
			continue;
		}
		if (history_copy(&t->v[i], &l->v[l->n]))
			l->n++;
		t->v[kept++] = t->v[i];
	}
	t->n = kept;
	pthread_mutex_unlock(&sl->mu);
	return snap_from_pods(l, true);
}

/* How many terminated pods are kept waiting for the history to list them. */
#define CACHE_TERMINATED_MAX 1000

void cache_history_add(struct cache *c, const char *id)
{
	struct snap *pods;
	if (cache_get(c, SNAP_PODS, CACHE_HELD, &pods))
		return;
	const struct pod *p = snap_pod(pods, id);
	struct pod copy;
	if (!p || strcmp(p->id, id) || !history_copy(p, &copy)) {
		snap_put(pods);
		return;
	}
	snap_put(pods);
	struct slot *sl = &c->slots[SNAP_HISTORY];
	pthread_mutex_lock(&sl->mu);
	struct pod_list *t = &c->terminated;
	if (t->n >= CACHE_TERMINATED_MAX) {
		pod_free(&t->v[0]);
		memmove(t->v, t->v + 1, --t->n * sizeof *t->v);
	}
	t->v = xrealloc(t->v, (t->n + 1) * sizeof *t->v);
	t->v[t->n++] = copy;
	struct snap *old = sl->snap;
	if (old) {
		/* The held history, with the pod added at once. */
		struct pod_list l = {
		    xcalloc(old->pods.n + 1, sizeof(struct pod)), 0};
		for (size_t i = 0; i < old->pods.n; i++)
			if (strcmp(old->pods.v[i].id, id) &&
			    history_copy(&old->pods.v[i], &l.v[l.n]))
				l.n++;
		if (history_copy(&copy, &l.v[l.n]))
			l.n++;
		struct snap *s = snap_from_pods(&l, true);
		s->fetched = old->fetched;
		s->fetched_mono = old->fetched_mono;
		sl->snap = s;
	}
	/* A listing on the wire now may predate the termination. */
	sl->changes++;
	pthread_mutex_unlock(&sl->mu);
	if (old)
		snap_put(old);
}

/* ---- fetching ---- */

static int fetch(struct cache *c, enum snap_kind kind, struct snap **out)
{
	int rc;
	switch (kind) {
	case SNAP_OFFERS: {
		struct offer_list l;
		if ((rc = api_list_offers(c->api, &l)))
			return rc;
		*out = snap_from_offers(&l);
		return 0;
	}
	case SNAP_PODS:
	case SNAP_HISTORY: {
		struct pod_list l;
		if ((rc = api_list_pods(c->api, kind == SNAP_HISTORY, &l)))
			return rc;
		*out = kind == SNAP_HISTORY ? history_snap(c, &l)
					    : snap_from_pods(&l, false);
		return 0;
	}
	default: {
		struct wallet w;
		if ((rc = api_get_wallet(c->api, &w)))
			return rc;
		*out = snap_new(SNAP_WALLET);
		(*out)->wallet = w;
		return 0;
	}
	}
}

int cache_get(struct cache *c, enum snap_kind kind, enum cache_mode mode,
	      struct snap **out)
{
	struct slot *sl = &c->slots[kind];
	bool cached_only = mode == CACHE_HELD;
	double began = now_monotonic();
	pthread_mutex_lock(&sl->mu);
	for (;;) {
		double now = now_monotonic();
		bool fresh =
		    sl->snap && (mode == CACHE_FRESH
				     ? sl->snap->fetched_mono >= began
				     : now - sl->snap->fetched_mono < sl->ttl);
		if (sl->snap && (cached_only || fresh)) {
			*out = snap_get(sl->snap);
			pthread_mutex_unlock(&sl->mu);
			stats_count(ST_CACHE_HITS);
			return 0;
		}
		if (cached_only) {
			pthread_mutex_unlock(&sl->mu);
			return -ENOENT;
		}
		if (sl->fail_errno && mode != CACHE_FRESH &&
		    now - sl->fail_at < CACHE_FAIL_HOLDDOWN) {
			int e = sl->fail_errno;
			if (sl->snap &&
			    now - sl->snap->fetched_mono < CACHE_STALE_MAX) {
				*out = snap_get(sl->snap);
				pthread_mutex_unlock(&sl->mu);
				stats_count(ST_STALE_SERVED);
				return 0;
			}
			pthread_mutex_unlock(&sl->mu);
			return -e;
		}
		if (!sl->fetching)
			break;
		pthread_cond_wait(&sl->cv, &sl->mu);
	}
	sl->fetching = true;
	unsigned long changes = sl->changes;
	pthread_mutex_unlock(&sl->mu);

	stats_count(ST_CACHE_MISSES);
	struct snap *fresh = NULL;
	int rc = fetch(c, kind, &fresh);

	pthread_mutex_lock(&sl->mu);
	sl->fetching = false;
	if (rc == 0) {
		if (changes == sl->changes || !sl->snap) {
			if (sl->snap)
				snap_put(sl->snap);
			sl->snap = fresh;
			*out = snap_get(fresh);
		} else {
			/* Our own change came after this listing left: the
			 * held snapshot is the newer truth. */
			*out = snap_get(sl->snap);
			snap_put(fresh);
		}
		sl->fail_errno = 0;
	} else {
		sl->fail_errno = -rc;
		sl->fail_at = now_monotonic();
		if (sl->snap && mode != CACHE_FRESH &&
		    sl->fail_at - sl->snap->fetched_mono < CACHE_STALE_MAX) {
			*out = snap_get(sl->snap);
			plog("cache", kind_names[kind],
			     "serving the answer of %.0f s ago while the API "
			     "fails",
			     sl->fail_at - sl->snap->fetched_mono);
			stats_count(ST_STALE_SERVED);
			rc = 0;
		}
	}
	pthread_cond_broadcast(&sl->cv);
	pthread_mutex_unlock(&sl->mu);
	return rc;
}

void cache_refresh(struct cache *c)
{
	for (int k = 0; k < SNAP_KINDS; k++) {
		struct slot *sl = &c->slots[k];
		pthread_mutex_lock(&sl->mu);
		struct snap *old = sl->snap;
		sl->snap = NULL;
		sl->fail_errno = 0;
		pthread_mutex_unlock(&sl->mu);
		if (old)
			snap_put(old);
	}
}

void cache_install(struct cache *c, struct snap *s)
{
	struct slot *sl = &c->slots[s->kind];
	pthread_mutex_lock(&sl->mu);
	struct snap *old = sl->snap;
	sl->snap = s;
	sl->fail_errno = 0;
	pthread_mutex_unlock(&sl->mu);
	if (old)
		snap_put(old);
}

void cache_pods_change(struct cache *c, struct pod *add, const char *remove)
{
	struct slot *sl = &c->slots[SNAP_PODS];
	pthread_mutex_lock(&sl->mu);
	struct snap *old = sl->snap;
	if (!old) {
		/* Nothing held: the next access fetches, and sees the change.
		 */
		sl->changes++;
		pthread_mutex_unlock(&sl->mu);
		if (add)
			pod_free(add);
		return;
	}
	/* A copy made from each pod's own JSON: pods are immutable once in a
	 * snapshot, and mkdir and rmdir are rare. */
	struct pod_list l = {xcalloc(old->pods.n + 1, sizeof(struct pod)), 0};
	for (size_t i = 0; i < old->pods.n; i++) {
		const struct pod *p = &old->pods.v[i];
		if (remove && !strcmp(p->id, remove))
			continue;
		json_object *o = json_tokener_parse(p->json);
		if (pod_parse(o, false, &l.v[l.n]) == 0)
			l.n++;
		json_object_put(o);
	}
	if (add)
		l.v[l.n++] = *add;
	struct snap *s = snap_from_pods(&l, false);
	/* It is as fresh as the listing it came from. */
	s->fetched = old->fetched;
	s->fetched_mono = old->fetched_mono;
	sl->snap = s;
	sl->changes++;
	pthread_mutex_unlock(&sl->mu);
	snap_put(old);
}
