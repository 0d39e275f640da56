/* lifecycle.h — mkdir and rmdir of pods: rent the cheapest offer that fits
 * the template, return a pod, and never pay twice. A POST is never retried
 * blindly: when its answer is lost, a fresh listing says whether the pod
 * exists. Concurrent mkdirs of one name create one pod. */
#ifndef PRIMEFS_LIFECYCLE_H
#define PRIMEFS_LIFECYCLE_H

#include <pthread.h>

#include "cache.h"
#include "template.h"

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
	char **creating; /* names whose mkdir is under way */
	size_t n_creating;
};

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
