/* cost.h — what a pod has cost so far, as its `cost` file shows it and
 * the max_cost guard judges it (DESIGN.md, "Pods: status, cost, rent,
 * return"): the pod's snapshot and the wallet's billing rows, the wallet
 * taken from the cache (one listing serves every pod's cost). Never lower
 * than what primefs knows: for a pod that bills (pod_bills) whose rows
 * could not all be read, at least priceHr × the hours since its creation,
 * and `log` says once that the figure is an estimate. FUSE-free. */
#ifndef PRIMEFS_COST_H
#define PRIMEFS_COST_H

#include "cache.h"

/* A pod's cost now, the wallet's billing rows taken from `cache` (a
 * struct cache; void * so that it is a guards_opts cost function): 0, or
 * -1 when unknown. */
int cost_pod_now(void *cache, const struct pod *p, double *out);
/* The same at `now`; without `fetch`, from the wallet held however old
 * (no API call: an older wallet moves money from its rows to price × time,
 * so while the price holds the figure is the same), or none. */
int cost_pod_at(void *cache, const struct pod *p, bool fetch, time_t now,
		double *out);

/* The same from a wallet in hand (NULL: none could be had) at `now`;
 * *estimate tells whether the lower bound applied. No log. */
int cost_of_pod(const struct pod *p, const struct wallet *w, time_t now,
		double *out, bool *estimate);

#endif
