/* model.h — the API's objects as primefs keeps them: offers, pods (live and
 * history) and the wallet, read out of json-c trees defensively (a missing,
 * null or wrongly typed field is an unset value, never a crash) and kept as
 * small C structs plus the object's JSON text, so a 10,000-offer listing
 * does not hold 10,000 json-c trees.
 *
 * Memory, measured at bench/scale.py's 10,087 offers and 1,015 pods
 * (malloc'd bytes, mallinfo2):
 * - an offer: ~710 B = struct 480 + its JSON text deflated with a preset
 *   dictionary of the API's keys, 148 (1,124 as text; exact size) + its
 *   images array ~70; its strings are interned (str_intern), shared by
 *   all offers, so ~0 each. 10k offers: ~6.9 MiB. (Before: 1,626 B with
 *   the text kept as it is, 15.6 MiB; before that 2,981 B.) A read of
 *   its json file inflates it (~3 us).
 * - a pod: ~1,510 B = struct 304 (in the listing's array) + JSON 772 +
 *   its own strings ~436 (not interned). 1k pods: 1.5 MiB. */
#ifndef PRIMEFS_MODEL_H
#define PRIMEFS_MODEL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "util.h"

/* A number that may be unknown. Integers stay integers ("120", not "120.0"). */
struct num {
	bool set;
	bool integral;
	long long i;
	double d;
};

struct strlist {
	char **v;
	size_t n;
};

/* A resource of an offer (disk, vcpu, memory): its counts, and what a
 * unit beyond the default costs per hour (ppu < 0: not priced) in steps
 * of `step` units (0: unknown, 1 assumed). */
struct spec {
	struct num min, def, max;
	double ppu;
	int step;
};

struct offer {
	char *name; /* directory name, given by naming.c */
	/* Interned (str_intern): shared by every offer that has the value. */
	const char *cloud_id, *gpu_type, *socket, *provider, *region,
	    *data_center, *country, *stock, *security;
	struct num gpu_count, gpu_memory;
	struct num price; /* communityPrice, else onDemand (PRIME_API.md 4.1) */
	struct spec disk, vcpu, memory;
	struct strlist images; /* each string interned */
	struct num prepaid;    /* prepaidTime: hours pre-charged at order */
	int is_spot;	       /* -1 unknown */
	bool multinode;	       /* came from /availability/multi-node */
	/* Its JSON text, deflated (offer_json_text gives it back). */
	unsigned char *zjson;
	uint32_t zjson_len, json_len;
};

struct pod {
	char *dir; /* directory name, given by naming.c */
	char *id, *name, *status, *install_status, *install_failure, *gpu_type,
	    *provider, *image, *socket, *created, *updated, *terminated;
	struct num gpu_count, progress, price_hr, stopped_price_hr,
	    provisioning_price_hr, billed;
	/* One entry per node, in node order; "" for a node with none. */
	struct strlist ssh, ip;
	time_t created_t; /* -1 when createdAt is missing or unreadable */
	bool history;
	bool disk; /* a /pods/history row of type Disk (disks.h) */
	char *json;
};

/* A row of the wallet's recent_billings that names a resource. */
struct billing_row {
	char *resource_id;
	double amount_usd;
	time_t created;	    /* created_at; -1 unknown */
	time_t last_billed; /* last_billed_at; -1 when null */
};

struct wallet {
	struct num balance;
	char *currency;
	struct billing_row *rows;
	size_t n_rows;
	/* 0 when every row that may bill a listed pod was read; else rows
	 * last billed at or before this time may be missing (a page failed,
	 * or none was asked for): a pod created after it has all its rows. */
	time_t unread_until;
	char *json;
};

/* Defensive field access. */
const char *jx_str(json_object *o, const char *key);
struct num jx_num(json_object *o, const char *key);
json_object *jx_obj(json_object *o, const char *key);
json_object *jx_arr(json_object *o, const char *key);
char *jx_dup(json_object *o, const char *key);
char *json_text(json_object *o);

void num_render(struct buf *b, struct num n);

/* The one shared copy of s (NULL: NULL), counted; str_unintern drops a
 * count and frees the copy with its last. Thread-safe. str_interned: how
 * many distinct strings are held (tests). */
const char *str_intern(const char *s);
void str_unintern(const char *s);
size_t str_interned(void);

/* An offer's JSON text (compact, one line and its newline, as the API
 * sent it) is kept deflated with a preset dictionary of the API's keys:
 * offer_json_text appends it to out; offer_set_json replaces it (NULL or "":
 * none); offer_json_same: whether two offers' texts are the same. */
void offer_json_text(const struct offer *o, struct buf *out);
void offer_set_json(struct offer *o, const char *text);
bool offer_json_same(const struct offer *a, const struct offer *b);

/* Each returns 0, or -1 when `o` is not an object (nothing allocated). */
int offer_parse(json_object *o, bool multinode, struct offer *out);
void offer_free(struct offer *o);
/* Also 1 (nothing allocated) for a live pod that is gone: the API lists it
 * as DELETING or TERMINATED, so pods/ neither lists nor resolves it. An
 * ERROR installation's installationFailure goes to the log, once a pod. */
int pod_parse(json_object *o, bool history, struct pod *out);
void pod_free(struct pod *p);
int wallet_parse(json_object *o, struct wallet *out);
/* Appends the billing rows of one page of GET /billing/wallet; returns how
 * many the page held (kept or not) and lowers *oldest (may be NULL) to the
 * oldest row's last_billed_at (else created_at). */
size_t wallet_add_rows(json_object *o, struct wallet *w, time_t *oldest);
void wallet_free(struct wallet *w);

/* In stock: any stockStatus the API sends but Unavailable. */
bool offer_in_stock(const struct offer *o);
/* What cheapest/ may point at, and mkdir rent with no spot or prepaid
 * key: in stock, priced, not spot, no prepaid time. */
bool offer_plain_rentable(const struct offer *o);

/* What `status` shows: while ACTIVE, INSTALL_FAILED when installationStatus
 * is ERROR, INSTALLING while it is present and not FINISHED (as the Prime
 * CLI's list shows it); else the API's status as it is. */
const char *pod_status(const struct pod *p);
/* True when the pod runs and takes SSH: ACTIVE, installed, node 0's ssh
 * known. */
bool pod_ready(const struct pod *p);
/* Whether the pod bills: a live pod PROVISIONING, PENDING, ACTIVE (with
 * its refinements INSTALLING and INSTALL_FAILED) or STOPPED. The one
 * predicate for everything that counts a pod that bills (DESIGN.md, "Pods:
 * status, cost, rent, return"): the idle and max_cost guards act on it,
 * max_pods counts it, cost's lower bound applies to it. */
bool pod_bills(const struct pod *p);

/* USD per hour in the current state: provisioningPriceHr while
 * PROVISIONING or PENDING, stoppedPriceHr while STOPPED (each falling back
 * to priceHr when null), 0 in ERROR, else priceHr. Unset when unknown. */
struct num pod_price(const struct pod *p);

/* What the pod has cost: the sum of its rows in the wallet's
 * recent_billings (w may be NULL) plus pod_price × the time since the
 * newest row's last_billed_at (since creation when it has no row or the
 * time is null); a history pod's billed total. -1 when unknown. */
int pod_cost(const struct pod *p, const struct wallet *w, time_t now,
	     double *cost);

void strlist_free(struct strlist *l);

/* A /pods/history row that is a pod: its `type` is Instance or Cluster
 * (not a disk, sandbox, image or other resource). */
bool history_row_is_pod(json_object *o);
/* A /pods/history row that is a deleted disk: shown in history/ beside
 * the pods, with a disk's files (disks.h). */
bool history_row_is_disk(json_object *o);

/* What the pod's JSON says of the offer it was rented from; read from
 * p->json, as the API may or may not echo these keys. */
struct pod_origin {
	char *cloud_id, *data_center;
	int is_spot; /* -1 unknown */
	struct num vcpus, memory, disk;
};
void pod_origin_read(const struct pod *p, struct pod_origin *out);
void pod_origin_free(struct pod_origin *o);
/* The offer's fields agree with the pod's: GPU type, count, provider and
 * socket, and the data center, cloud id and spot flag where the pod has
 * them. */
bool offer_fits_pod(const struct offer *o, const struct pod *p,
		    const struct pod_origin *po);
/* The offer's default resources are the pod's (a tie-breaker). */
bool offer_resources_fit(const struct offer *o, const struct pod_origin *po);

#endif
