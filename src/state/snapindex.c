/* snapindex.c — see snapindex.h. An offers snapshot's index is its types,
 * each an array of pointers into the snapshot's offers; a pods snapshot's,
 * two arrays of pointers into its pods (by directory name, by id). Lookups
 * are binary searches; nothing is built after the snapshot is made. */
#include "snapindex.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "naming.h"

/* A snapshot of this many offers or pods, freed, is worth a malloc_trim. */
#define SNAP_TRIM_ITEMS 1000

struct gpu_type {
	char *name;
	struct offer **offers; /* sorted by name */
	size_t n;
	struct offer *cheapest; /* offer_plain_rentable; NULL if none */
};

/* A pods snapshot's answers of snap_pod_offer, for the offers snapshot
 * of serial `offers` (0: none yet), by the pod's position in s->pods. */
struct offer_memo {
	pthread_mutex_t mu;
	unsigned long offers;
	const struct offer **found;
	const struct gpu_type **type;
	unsigned char *done;
};

struct snap_index {
	/* SNAP_OFFERS */
	struct gpu_type *types; /* sorted by name */
	size_t n_types;
	/* SNAP_PODS, SNAP_HISTORY */
	struct pod **by_dir; /* sorted by dir */
	struct pod **by_id;  /* sorted by id */
	struct offer_memo memo;
};

static atomic_ulong next_serial = 1;

struct snap *snap_new(enum snap_kind kind)
{
	struct snap *s = xcalloc(1, sizeof *s);
	atomic_init(&s->refs, 1);
	s->kind = kind;
	s->fetched = time(NULL);
	s->fetched_mono = now_monotonic();
	s->serial = atomic_fetch_add(&next_serial, 1);
	s->ix = xcalloc(1, sizeof *s->ix);
	pthread_mutex_init(&s->ix->memo.mu, NULL);
	return s;
}

struct snap *snap_ref(struct snap *s)
{
	atomic_fetch_add(&s->refs, 1);
	return s;
}

void snap_put(struct snap *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	struct snap_index *ix = s->ix;
	for (size_t i = 0; i < ix->n_types; i++) {
		free(ix->types[i].name);
		free(ix->types[i].offers);
	}
	free(ix->types);
	free(ix->by_dir);
	free(ix->by_id);
	pthread_mutex_destroy(&ix->memo.mu);
	free(ix->memo.found);
	free(ix->memo.type);
	free(ix->memo.done);
	free(ix);
	size_t items = s->offers.n + s->pods.n;
	offer_list_free(&s->offers);
	pod_list_free(&s->pods);
	wallet_free(&s->wallet);
	key_list_free(&s->keys);
	free(s);
	/* A big listing leaves its pages free but held by malloc: they go
	 * back to the system, so that a refresh does not keep two listings'
	 * worth of memory for good. */
	if (items >= SNAP_TRIM_ITEMS)
		malloc_trim(0);
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
		s->ix->types = xrealloc(s->ix->types, (s->ix->n_types + 1) *
							  sizeof *s->ix->types);
		struct gpu_type *g = &s->ix->types[s->ix->n_types++];
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
			/* What mkdir rents with no spot or prepaid key. */
			if (offer_plain_rentable(o) && cheaper(o, g->cheapest))
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
	if (!s || !s->ix->n_types)
		return NULL;
	return bsearch(name, s->ix->types, s->ix->n_types, sizeof *s->ix->types,
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
	s->ix->by_dir = xcalloc(s->pods.n, sizeof *s->ix->by_dir);
	s->ix->by_id = xcalloc(s->pods.n, sizeof *s->ix->by_id);
	for (size_t i = 0; i < s->pods.n; i++)
		s->ix->by_dir[i] = s->ix->by_id[i] = &s->pods.v[i];
	qsort(s->ix->by_dir, s->pods.n, sizeof *s->ix->by_dir, cmp_pod_dir);
	qsort(s->ix->by_id, s->pods.n, sizeof *s->ix->by_id, cmp_pod_id);
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
	struct pod **p = bsearch(name, s->ix->by_id, s->pods.n,
				 sizeof *s->ix->by_id, cmp_id_key);
	if (!p)
		p = bsearch(name, s->ix->by_dir, s->pods.n,
			    sizeof *s->ix->by_dir, cmp_dir_key);
	return p ? *p : NULL;
}

const struct pod *snap_pod_id(const struct snap *s, const char *id)
{
	if (!s || !s->pods.n)
		return NULL;
	struct pod **p = bsearch(id, s->ix->by_id, s->pods.n,
				 sizeof *s->ix->by_id, cmp_id_key);
	return p ? *p : NULL;
}

size_t snap_n_pods(const struct snap *s)
{
	return s ? s->pods.n : 0;
}

const struct pod *snap_pod_at(const struct snap *s, size_t i)
{
	return s && i < s->pods.n ? s->ix->by_dir[i] : NULL;
}

size_t snap_n_types(const struct snap *s)
{
	return s ? s->ix->n_types : 0;
}

const struct gpu_type *snap_type_at(const struct snap *s, size_t i)
{
	return s && i < s->ix->n_types ? &s->ix->types[i] : NULL;
}

const char *type_name(const struct gpu_type *t)
{
	return t->name;
}

size_t type_n_offers(const struct gpu_type *t)
{
	return t ? t->n : 0;
}

const struct offer *type_offer_at(const struct gpu_type *t, size_t i)
{
	return t && i < t->n ? t->offers[i] : NULL;
}

const struct offer *type_cheapest(const struct gpu_type *t)
{
	return t ? t->cheapest : NULL;
}

/* ---- a pod's offer ---- */

static const struct offer *pod_offer_scan(const struct pod *p,
					  const struct snap *offers,
					  const struct gpu_type **type)
{
	char *dir = p->gpu_type ? gpu_type_dir(p->gpu_type) : NULL;
	const struct gpu_type *g = dir ? snap_type(offers, dir) : NULL;
	free(dir);
	*type = g;
	if (!type_n_offers(g))
		return NULL;
	struct pod_origin po;
	pod_origin_read(p, &po);
	const struct offer *found = NULL, *exact_one = NULL;
	size_t fits = 0, exact = 0;
	for (size_t i = 0; i < g->n; i++) {
		const struct offer *o = g->offers[i];
		if (!offer_fits_pod(o, p, &po))
			continue;
		fits++;
		found = o;
		if (offer_resources_fit(o, &po)) {
			exact++;
			exact_one = o;
		}
	}
	if (fits > 1)
		found = exact == 1 ? exact_one : NULL;
	pod_origin_free(&po);
	return found;
}

const struct offer *snap_pod_offer(const struct snap *pods, const struct pod *p,
				   const struct snap *offers,
				   const struct gpu_type **type)
{
	const struct gpu_type *g = NULL;
	const struct offer *found = NULL;
	struct offer_memo *m = NULL;
	size_t at = 0;
	if (pods && offers && p >= pods->pods.v &&
	    p < pods->pods.v + pods->pods.n) {
		m = &pods->ix->memo;
		at = (size_t)(p - pods->pods.v);
		pthread_mutex_lock(&m->mu);
		if (m->offers == offers->serial && m->done[at]) {
			found = m->found[at];
			g = m->type[at];
			pthread_mutex_unlock(&m->mu);
			goto out;
		}
		pthread_mutex_unlock(&m->mu);
	}
	/* Worked out with no lock held: both snapshots are immutable. */
	found = offers ? pod_offer_scan(p, offers, &g) : NULL;
	if (m) {
		pthread_mutex_lock(&m->mu);
		if (m->offers != offers->serial) {
			size_t n = pods->pods.n;
			if (!m->done) {
				m->found = xcalloc(n, sizeof *m->found);
				m->type = xcalloc(n, sizeof *m->type);
				m->done = xcalloc(n, 1);
			} else {
				memset(m->done, 0, n);
			}
			m->offers = offers->serial;
		}
		m->found[at] = found;
		m->type[at] = g;
		m->done[at] = 1;
		pthread_mutex_unlock(&m->mu);
	}
out:
	if (type)
		*type = g;
	return found;
}

struct snap *snap_from_keys(struct key_list *l)
{
	struct snap *s = snap_new(SNAP_KEYS);
	s->keys = *l;
	l->v = NULL;
	l->n = 0;
	name_keys(s->keys.v, s->keys.n);
	return s;
}

const struct ssh_key *snap_key(const struct snap *s, const char *dir)
{
	for (size_t i = 0; s && i < s->keys.n; i++)
		if (s->keys.v[i].dir && !strcmp(s->keys.v[i].dir, dir))
			return &s->keys.v[i];
	return NULL;
}

const struct ssh_key *snap_key_primary(const struct snap *s)
{
	for (size_t i = 0; s && i < s->keys.n; i++)
		if (s->keys.v[i].dir && s->keys.v[i].primary)
			return &s->keys.v[i];
	return NULL;
}
