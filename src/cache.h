/* cache.h — one listing answers every lookup, getattr, readdir and read
 * under it. Each kind of listing (offers, pods, history, wallet) is kept as
 * an immutable, reference-counted snapshot; a reader holds its snapshot for
 * as long as it needs, so a read never mixes two versions. Freshness is
 * counted from fetch time; concurrent misses share one request; no lock is
 * held across network I/O; when the API fails and a recent answer exists,
 * that answer is served and the failure logged. */
#ifndef PRIMEFS_CACHE_H
#define PRIMEFS_CACHE_H

#include <stdatomic.h>

#include "api.h"

enum snap_kind {
	SNAP_OFFERS,
	SNAP_PODS,
	SNAP_HISTORY,
	SNAP_WALLET,
	SNAP_KINDS
};

/* A failure is not retried for this long: an outage must not turn every
 * getattr into a network timeout. */
#define CACHE_FAIL_HOLDDOWN 1.0
/* How old an answer may be and still be served when the API fails. */
#define CACHE_STALE_MAX 600.0

struct gpu_type {
	char *name;
	struct offer **offers; /* sorted by name */
	size_t n;
	struct offer *cheapest; /* in stock, priced; NULL if none */
};

struct snap {
	atomic_int refs;
	enum snap_kind kind;
	time_t fetched; /* wall clock, for st_mtime */
	double fetched_mono;
	/* SNAP_OFFERS */
	struct offer_list offers;
	struct gpu_type *types; /* sorted by name */
	size_t n_types;
	/* SNAP_PODS, SNAP_HISTORY */
	struct pod_list pods;
	struct pod **by_dir; /* sorted by dir */
	struct pod **by_id;  /* sorted by id */
	/* SNAP_WALLET */
	struct wallet wallet;
};

struct cache;

struct cache *cache_new(struct api *api, const double ttl[SNAP_KINDS]);
void cache_free(struct cache *c);

enum cache_mode {
	CACHE_HELD,  /* what is held, however old; never fetches (-ENOENT) */
	CACHE_TTL,   /* fetched when older than the kind's freshness window */
	CACHE_FRESH, /* fetched after this call began (mkdir's checks) */
};

/* A referenced snapshot in *out, or -errno. */
int cache_get(struct cache *c, enum snap_kind kind, enum cache_mode mode,
	      struct snap **out);
void snap_put(struct snap *s);
/* Drops every cached answer: the next access fetches. */
void cache_refresh(struct cache *c);
/* Installs a snapshot built by the caller (tests); takes the caller's
 * reference. */
void cache_install(struct cache *c, struct snap *s);

/* A change primefs made itself (a pod created or deleted), shown at once:
 * the held pods snapshot is copied with `add` appended (taken) and the pod
 * with id `remove` left out. A listing that was on the wire meanwhile does
 * not overwrite it, as it may predate the change. */
void cache_pods_change(struct cache *c, struct pod *add, const char *remove);

/* Pod `id`, just terminated by this mount, shows in history/ at once
 * (with its last known data from the held pods snapshot) until a history
 * listing shows it. Call it before the pod leaves the pods snapshot. */
void cache_history_add(struct cache *c, const char *id);

/* Builders, exposed for unit tests: they take the list's contents. */
struct snap *snap_from_offers(struct offer_list *l);
struct snap *snap_from_pods(struct pod_list *l, bool history);

const struct gpu_type *snap_type(const struct snap *s, const char *name);
const struct offer *type_offer(const struct gpu_type *t, const char *name);
/* By id first (an id always wins), then by listed name. */
const struct pod *snap_pod(const struct snap *s, const char *name);

#endif
