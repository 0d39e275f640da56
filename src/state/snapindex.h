/* snapindex.h — one listing as an immutable, reference-counted snapshot,
 * and the index built over it once, when it is made: offers grouped by
 * GPU type directory, each named (naming.h) and sorted by name, with the
 * type's cheapest rentable offer; pods named and sorted by directory name
 * and by id. The tree and everything else read a listing only through the
 * functions below; how the index is laid out is this module's own. No
 * caching policy here: when a snapshot is fetched, kept or replaced is
 * cache.h's business.
 *
 * Memory (10,087 offers / 1,015 pods): the index is ~8 B an offer (a
 * pointer in its type's array) plus its directory name (~54 B), ~16 B a
 * pod (two pointers) plus its name (~30 B): under 1 MiB in all. What the
 * offers and pods themselves take is in model.h. A freed listing of 1,000
 * items or more is followed by malloc_trim, so that a refresh's pages go
 * back to the system. Lookups allocate nothing.
 *
 * A pod's offer (snap_pod_offer) is worked out once per pair of a pods
 * snapshot and an offers snapshot: the pods snapshot keeps the answers
 * for the last offers snapshot asked about (~17 B a pod), so a crawl of
 * every pods/<pod>/offer compares each pod with its type's offers once,
 * not once a read. */
#ifndef PRIMEFS_SNAPINDEX_H
#define PRIMEFS_SNAPINDEX_H

#include <stdatomic.h>

#include "api.h"
#include "sshkeys.h"

enum snap_kind {
	SNAP_OFFERS,
	SNAP_PODS,
	SNAP_HISTORY,
	SNAP_WALLET,
	SNAP_KEYS,	  /* the account's SSH keys */
	SNAP_DISKS,	  /* disks.h: disks kept as pods */
	SNAP_DISK_OFFERS, /* disks.h: one type, DISK_OFFER_TYPE */
	SNAP_KINDS
};

struct snap_index; /* snapindex.c's own */

struct snap {
	atomic_int refs;
	enum snap_kind kind;
	unsigned long serial; /* unique to this snapshot, never reused */
	time_t fetched;	      /* wall clock, for st_mtime */
	double fetched_mono;  /* when the fetch that built it started */
	/* SNAP_OFFERS: every offer, in the API's order */
	struct offer_list offers;
	/* SNAP_PODS, SNAP_HISTORY: every pod kept, in the API's order */
	struct pod_list pods;
	/* SNAP_WALLET */
	struct wallet wallet;
	/* SNAP_KEYS: every key, in the API's order, named (name_keys) */
	struct key_list keys;
	struct snap_index *ix;
};

/* A GPU type directory of an offers snapshot (opaque; valid while the
 * snapshot is held). */
struct gpu_type;

/* A snapshot of `kind` holding nothing, referenced once. */
struct snap *snap_new(enum snap_kind kind);
/* One more reference to s; returns s. */
struct snap *snap_ref(struct snap *s);
/* Drops a reference (NULL: nothing); the last one frees the snapshot. */
void snap_put(struct snap *s);

/* Builders: they take the list's contents (the list is left empty). */
struct snap *snap_from_offers(struct offer_list *l);
/* Pods deduplicated by id (naming.h), then named. */
struct snap *snap_from_pods(struct pod_list *l, bool history);

/* Keys named (naming.h); takes the list's contents. */
struct snap *snap_from_keys(struct key_list *l);
/* ---- keys: by file name in ssh_keys/, and the primary one ---- */
const struct ssh_key *snap_key(const struct snap *s, const char *dir);
const struct ssh_key *snap_key_primary(const struct snap *s);

/* ---- offers: types in name order, offers in name order ---- */
size_t snap_n_types(const struct snap *s);
const struct gpu_type *snap_type_at(const struct snap *s, size_t i);
/* By directory name; NULL when none. */
const struct gpu_type *snap_type(const struct snap *s, const char *name);
const char *type_name(const struct gpu_type *t);
size_t type_n_offers(const struct gpu_type *t);
const struct offer *type_offer_at(const struct gpu_type *t, size_t i);
/* By offer directory name; NULL when none. */
const struct offer *type_offer(const struct gpu_type *t, const char *name);
/* The cheapest offer_plain_rentable one (ties: the first name); NULL if
 * none. */
const struct offer *type_cheapest(const struct gpu_type *t);

/* ---- pods: in directory name order ---- */
size_t snap_n_pods(const struct snap *s);
const struct pod *snap_pod_at(const struct snap *s, size_t i);
/* By id first (an id always wins), then by directory name. */
const struct pod *snap_pod(const struct snap *s, const char *name);
/* By id only. */
const struct pod *snap_pod_id(const struct snap *s, const char *id);

/* The offer of `offers` pod p was rented from: the one of its GPU type
 * whose fields agree with the pod's (offer_fits_pod), or when several do,
 * the one of those whose default resources are the pod's; NULL when none
 * or still several fit. *type (may be NULL): the offer's type. Memoized in
 * `pods`, the snapshot p belongs to (NULL, or a snapshot p is not in:
 * worked out each call), for the offers snapshot last asked about.
 * Thread-safe; allocates only on a pods snapshot's first call. */
const struct offer *snap_pod_offer(const struct snap *pods, const struct pod *p,
				   const struct snap *offers,
				   const struct gpu_type **type);

#endif
