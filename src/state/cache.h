/* cache.h — the caching policy: when a listing is fetched, kept, served
 * or replaced (what one holds and how it is looked up is snapindex.h's).
 * One listing answers every lookup, getattr, readdir and read under it.
 * Each kind of listing (offers, pods, history, wallet) is kept as an
 * immutable, reference-counted snapshot; a reader holds its snapshot for
 * as long as it needs, so a read never mixes two versions. Freshness is
 * counted from the time a fetch started. Fetches run on a thread of their
 * own, one per kind at a time: while one is slow, readers get the held
 * snapshot and the fetch refreshes it behind them (stale while
 * revalidate); only a reader with nothing usable waits long, up to a time
 * limit and no longer than its caller wants. When the API fails, the held
 * answer is served, the failure logged, and fetches back off exponentially.
 * A refresh of a held answer also waits for the API's call budget
 * (budget.h's pace, by the calls the kind's last fetch took): meanwhile
 * the freshness window stretches and the held answer is served, its age
 * noted in `log` once. A fetch the budget refuses (a Retry-After hold, the
 * hour spent) is not tried again before the budget allows, and meanwhile
 * a TTL reader gets the held answer however old (not only CACHE_STALE_MAX). */
#ifndef PRIMEFS_CACHE_H
#define PRIMEFS_CACHE_H

#include "snapindex.h"

/* After a failed fetch the next one waits 1 s, then 2, 4, ... up to 60 s
 * (reset by a success or a refresh): an outage must neither turn every
 * getattr into a network timeout nor spend the API's rate limit. */
#define CACHE_BACKOFF_MIN 1.0
#define CACHE_BACKOFF_MAX 60.0
/* How long a reader of an answer past its freshness window waits for the
 * fetch that refreshes it before it takes the held answer. */
#define CACHE_REVALIDATE_WAIT 1.0
/* How long a reader waits for a fetch unless cache_set_wait_limit says. */
#define CACHE_WAIT_DEFAULT 30.0
/* How old an answer may be and still be served when the API fails. */
#define CACHE_STALE_MAX 600.0

struct cache;

struct cache *cache_new(struct api *api, const double ttl[SNAP_KINDS]);
/* Waits for fetches still running (each has its own deadline). */
void cache_free(struct cache *c);

/* Set once at start-up, before the cache is shared between threads:
 * - the longest a reader waits for a fetch (the API call's time limit);
 * - how a reader's caller says it gave up (FUSE: the request was
 *   interrupted); the wait then ends with -EINTR (passed on to the API's
 *   client too, for a POST or DELETE waiting out a Retry-After);
 * - a function called, with no cache lock held, after a pods snapshot
 *   fetched from the API (not one made by cache_pods_change) has been
 *   installed. */
void cache_set_wait_limit(struct cache *c, double seconds);
void cache_set_interrupt(struct cache *c, bool (*interrupted)(void *arg),
			 void *arg);
void cache_set_pods_hook(struct cache *c,
			 void (*fn)(void *arg, const struct snap *s),
			 void *arg);
/* A function called each time a kind's held snapshot is replaced (a fetch
 * installed, a change of primefs's own, an install): `old` (NULL when none
 * was held) and `fresh`, both referenced for the call. For a fetch it is
 * called under the slot's mutex, before readers waiting for the fetch
 * wake (else with no cache lock held): it must take no cache lock, and
 * only queue what it has to do. What the held answer shows may have changed:
 * whoever keeps copies of it (the kernel's caches) is told here. */
void cache_set_replace_hook(struct cache *c,
			    void (*fn)(void *arg, const struct snap *old,
				       const struct snap *fresh),
			    void *arg);

enum cache_mode {
	CACHE_HELD, /* what is held, however old; never fetches (-ENOENT) */
	/* A snapshot younger than the kind's freshness window. Past it, a
	 * fetch starts and the reader waits for it up to
	 * CACHE_REVALIDATE_WAIT from its start, then gets the held snapshot
	 * (so does every reader while that fetch runs, or while fetches back
	 * off after failures). A snapshot marked stale by a refresh is not
	 * served before a fetch has been tried; it is if that fails. */
	CACHE_TTL,
	/* From a fetch that started after this call began (mkdir's checks);
	 * never a held answer when the API fails. */
	CACHE_FRESH,
	/* What is held, at once, however old (-ENOENT when nothing is); a
	 * fetch is started behind it when it is past its freshness window or
	 * marked stale by a refresh (as CACHE_TTL would, but never waiting
	 * for it): a lookup by a name the held listing has. */
	CACHE_NOWAIT,
};

/* A referenced snapshot in *out, or -errno: the fetch's error,
 * ETIMEDOUT (waited the limit), EINTR (the caller gave up), ENOENT
 * (CACHE_HELD with nothing held). */
int cache_get(struct cache *c, enum snap_kind kind, enum cache_mode mode,
	      struct snap **out);
/* Marks every held answer stale: the next access waits for a fetch; the
 * answers are kept, and served if that fetch fails. */
void cache_refresh(struct cache *c);
/* Marks one kind's held answer stale (a change of this mount's own, such
 * as a key registered): the next access waits for a fetch. */
void cache_stale(struct cache *c, enum snap_kind kind);
/* Installs a snapshot built by the caller (tests); takes the caller's
 * reference. */
void cache_install(struct cache *c, struct snap *s);

/* A change primefs made itself (a pod created or deleted), shown at once:
 * the held pods snapshot is copied with `add` appended (taken) and the pod
 * with id `remove` left out. A
 * listing that was on the wire meanwhile does not overwrite it, as it may
 * predate the change. */
void cache_pods_change(struct cache *c, struct pod *add, const char *remove);

/* Marks one kind's held answer stale, as cache_refresh does for all: a
 * change of this mount that shows in a listing it cannot patch itself (a
 * disk's pods after a pod's mkdir attached it; a deleted disk in history)
 * shows at the next read. */
void cache_stale(struct cache *c, enum snap_kind kind);

/* The same for the disks snapshot (a disk made or deleted by this mount;
 * disks are kept as pods, disks.h). */
void cache_disks_change(struct cache *c, struct pod *add, const char *remove);

/* The overlay of pending creates on every pods snapshot (pending.h): the
 * creates a fetched listing shows are settled by it (pending_settle runs
 * on the fetch's thread, no cache lock held), the others are added. Set
 * once at start-up. A change to what pending shows is made visible with
 * cache_pods_change. */
struct pending;
void cache_set_pending(struct cache *c, struct pending *p);

/* Pod `id`, just terminated by this mount, shows in history/ at once
 * (with its last known data from the held pods snapshot) until a history
 * listing shows it. Call it before the pod leaves the pods snapshot. */
void cache_history_add(struct cache *c, const char *id);

#endif
