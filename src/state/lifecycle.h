/* lifecycle.h — mkdir and rmdir of pods: rent the cheapest offer that fits
 * the template, return a pod, and never pay twice. Concurrent mkdirs of one
 * name create one pod.
 *
 * Never twice. A create request (POST /pods/) is sent once, never again,
 * with a time limit of its own (LIFECYCLE_CREATE_TIMEOUT). Just before it
 * is sent, it is recorded as a pending create (pending.h, which owns the
 * placeholder invariant: what a placeholder is, what settles it, how its
 * guards apply and how it survives a restart), and the template's guards
 * are armed on it (the deadline counting from the mkdir). From then on the
 * pod counts as existing — for EEXIST, max_pods and the listing of pods/ —
 * until a listing shows it or the API refuses the request:
 * - answered: the create's answer gives its id; its guards become the
 *   pod's; it is shown from the answer until a listing shows it;
 * - refused (no request went out, or a 4xx such as 402 or 422): the name
 *   is freed at once, its guards dropped, and mkdir fails;
 * - lost (a 5xx, a timeout, a reset: the request may have been received):
 *   mkdir fails with that error after one fresh listing (one that started
 *   after the request was sent) has not shown the pod; the name stays
 *   taken and listed as PENDING (a placeholder) until a listing shows it.
 *   A slow answer is waited for up to the create's limit.
 * rmdir of a placeholder makes it unwanted (it leaves pods/ at once, its
 * name stays taken; the listing that shows the pod has it terminated by
 * its id); while its request is still on the wire, rmdir fails with EBUSY.
 * rmdir of any other pod terminates it by its id. A guard never terminates
 * by a placeholder's key: one due on a placeholder makes it unwanted.
 * Before every termination, by rmdir or by a guard, what the pod's
 * `collect` names is brought back (collect.h); it is bounded in time and
 * size, and a pod that cannot be reached is terminated at once. */
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
	/* The key jobs use, whose registered id mkdir sends (jobkey.h);
	 * NULL: no sshKeyId. */
	const struct jobkey *jobkey;
	struct guards *guards; /* armed from the template at mkdir; or NULL */
	/* What to bring back before a pod goes (set from the template at
	 * mkdir, run before every DELETE); or NULL. */
	struct collect *collect;
	struct pending
	    *pending; /* requests in flight (lifecycle_set_pending) */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct creating *creating; /* names whose mkdir is under way */
	size_t n_creating;
	/* The settler thread (lifecycle_start), woken by a new request. */
	pthread_t settler;
	pthread_cond_t settle_cv;
	bool settler_started, stop;
};

/* While a request is pending, the settler has a pods listing fetched (one
 * within the pods' freshness window serves): LIFECYCLE_SETTLE_MIN s after
 * a request or a settlement, then at doubling intervals up to one every
 * LIFECYCLE_SETTLE_MAX s while none settles. */
#define LIFECYCLE_SETTLE_MIN 5.0
#define LIFECYCLE_SETTLE_MAX 300.0

/* Seconds a create request may take, connection included: at least as
 * generous as the Prime CLI (30 s to read + 10 s to connect). */
#define LIFECYCLE_CREATE_TIMEOUT 60.0

void lifecycle_init(struct lifecycle *l, struct cache *cache, struct api *api,
		    struct template_store *tmpl, const char *team_id);
void lifecycle_destroy(struct lifecycle *l);
/* The store of requests in flight (required, set once before use): its
 * settle hook and the cache's overlay are wired to this lifecycle. */
void lifecycle_set_pending(struct lifecycle *l, struct pending *p);
/* Starts the settler (after the daemon has forked): requests pending from
 * before the mount are looked for at once. lifecycle_stop ends it (also
 * done by lifecycle_destroy). */
void lifecycle_start(struct lifecycle *l);
void lifecycle_stop(struct lifecycle *l);

/* 0 or -errno, each with a line in `log`. */
int pod_create(struct lifecycle *l, const char *name);
int pod_delete(struct lifecycle *l, const char *name);
/* The same termination by id, for a guard that fired (`why` names it):
 * 0 once the API confirms (2xx, or 404: gone already), else -errno. */
int pod_terminate(struct lifecycle *l, const char *id, const char *name,
		  const char *why);

#endif
