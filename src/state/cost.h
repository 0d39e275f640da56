/* cost.h — what a pod has cost so far, as its `cost` file shows it and
 * the max_cost guard judges it (DESIGN.md, "Pods: status, cost, rent,
 * return"): the pod's snapshot and the wallet's billing rows, the wallet
 * taken from the cache (one listing serves every pod's cost). FUSE-free. */
#ifndef PRIMEFS_COST_H
#define PRIMEFS_COST_H

#include "cache.h"

/* A pod's cost now, the wallet's billing rows taken from `cache` (a
 * struct cache; void * so that it is a guards_opts cost function): 0, or
 * -1 when unknown. */
int cost_pod_now(void *cache, const struct pod *p, double *out);

#endif
