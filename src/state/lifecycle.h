/* lifecycle.h — mkdir and rmdir of pods: rent the cheapest offer that fits
 * the template, return a pod, and never pay twice. Concurrent mkdirs of one
 * name create one pod.
 *
 * Never twice. A create request (POST /pods/) is sent once, never again,
 * with a time limit of its own (LIFECYCLE_CREATE_TIMEOUT). From just before
 * it is sent, the pod counts as existing — for EEXIST, max_pods and the
 * listing of pods/ — as a pending create in the cache (cache.h), listed
 * with status PENDING (the create's answer when one came, else a
 * placeholder: its name, status PENDING, its id read as the name). It
 * stays so until it is settled:
 * - it exists: a fetched listing shows it (by id when the answer gave one,
 *   else by name), whenever that listing started; the listed pod stands
 *   for it from then on;
 * - it was not created: the API answered with an error that says so (no
 *   request went out, or a 4xx such as 402 or 422): the name is freed at
 *   once and mkdir fails;
 * - it was rmdir'd: a pod with an id is terminated as any other; a
 *   placeholder (no answer, no listing shows it) is only forgotten, as
 *   there is nothing to terminate by, and that is logged: should the API
 *   list it later, it shows in pods/ again. While its request is still on
 *   the wire, rmdir fails with EBUSY.
 * A listing that does not show the pod settles nothing, whenever it
 * started: the API's listing may show new pods late, by any amount. So
 * when the answer is lost or is a 5xx or a timeout (the request may have
 * been received), mkdir fails with that error after one fresh listing (one
 * that started after the request was sent) has not shown the pod, and the
 * name stays taken and listed as PENDING until a listing shows it or it
 * is rmdir'd. A slow answer is waited for up to the create's limit. */
#ifndef PRIMEFS_LIFECYCLE_H
#define PRIMEFS_LIFECYCLE_H

#include <pthread.h>
#include <stdbool.h>

#include "cache.h"
#include "template.h"

struct creating {
	const char *name;
	bool sent; /* its create request is on the wire */
};

struct lifecycle {
	struct cache *cache;
	struct api *api;
	struct template_store *tmpl;
	const char
	    *team_id; /* from the credentials; the template may override */
	/* Called after a pod is gone (to close its SSH session); may be NULL.
	 */
	void (*on_delete)(void *arg, const char *pod_id);
	void *on_delete_arg;
	struct guards *guards; /* armed from the template at mkdir; or NULL */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct creating *creating; /* names whose mkdir is under way */
	size_t n_creating;
};

/* Seconds a create request may take, connection included: at least as
 * generous as the Prime CLI (30 s to read + 10 s to connect). */
#define LIFECYCLE_CREATE_TIMEOUT 60.0

void lifecycle_init(struct lifecycle *l, struct cache *cache, struct api *api,
		    struct template_store *tmpl, const char *team_id);
void lifecycle_destroy(struct lifecycle *l);

/* 0 or -errno, each with a line in `log`. */
int pod_create(struct lifecycle *l, const char *name);
int pod_delete(struct lifecycle *l, const char *name);
/* The same termination by id, for a guard that fired (`why` names it):
 * 0 once the API confirms (2xx, or 404: gone already), else -errno. */
int pod_terminate(struct lifecycle *l, const char *id, const char *name,
		  const char *why);

#endif
