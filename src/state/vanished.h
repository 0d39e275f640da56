/* vanished.h — which pods a pods listing lacks for sure (DESIGN.md, "Pods:
 * status, cost, rent, return"): a listing that lacks a pod ends that
 * pod's jobs, SSH sessions and host key only when it is complete (every
 * page read) and a second complete listing, or the pod's own GET
 * /pods/{id}, agrees. Offset paging while pods are deleted elsewhere can
 * skip a live pod; that must not end its jobs.
 *
 * Fed every pods listing fetched from the API (the cache's pods hook), it
 * keeps the last complete one; the pods that listing had and this one
 * lacks are asked for one by one (a few a listing; the rest wait for the
 * next listing to agree), and jobs_prune gets a `listed` that keeps every
 * pod either listing has, but those the API said are gone. FUSE-free; no
 * lock held across the GETs. */
#ifndef PRIMEFS_VANISHED_H
#define PRIMEFS_VANISHED_H

#include "cache.h"

struct jobs;
struct vanished;

struct vanished *vanished_new(struct api *api, struct jobs *jobs);
void vanished_free(struct vanished *v);
/* The cache's pods hook (cache_set_pods_hook): arg is a struct vanished. */
void vanished_listing(void *arg, const struct snap *s);

#endif
