/* vanished.c — see vanished.h. */
#include "vanished.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "log.h"
#include "nodes.h"

/* How many pods one listing asks GET /pods/{id} about at most: more gone
 * at once wait for the next complete listing. */
#define VANISHED_GETS_MAX 8

struct vanished {
	struct api *api;
	struct jobs *jobs;
	pthread_mutex_t mu;
	struct snap *prev; /* the last complete listing; NULL before one */
	/* One listing is judged at a time, in order: one that comes while
	 * another is (its GETs take a while) waits here, the newest only. */
	bool busy;
	struct snap *queued;
};

struct vanished *vanished_new(struct api *api, struct jobs *jobs)
{
	struct vanished *v = xcalloc(1, sizeof *v);
	v->api = api;
	v->jobs = jobs;
	pthread_mutex_init(&v->mu, NULL);
	return v;
}

void vanished_free(struct vanished *v)
{
	if (!v)
		return;
	snap_put(v->prev);
	snap_put(v->queued);
	pthread_mutex_destroy(&v->mu);
	free(v);
}

/* What jobs_prune asks: whether a pod is still there. */
struct keep {
	const struct snap *now, *prev;
	char **gone; /* what GET /pods/{id} said is gone */
	size_t n_gone;
};

/* Whether s lists the pod (or the node: nodes.h's keys) `key`. */
static bool has(const struct snap *s, const char *key)
{
	size_t node;
	const struct pod *p = s ? nodes_find(s, key, &node) : NULL;
	return p && (node || !strcmp(p->id, key));
}

static bool kept(void *arg, const char *key)
{
	const struct keep *k = arg;
	if (has(k->now, key))
		return true;
	for (size_t i = 0; i < k->n_gone; i++) {
		size_t len = strlen(k->gone[i]);
		if (!strncmp(k->gone[i], key, len) &&
		    (!key[len] || key[len] == '-'))
			return false;
	}
	/* Before a first complete listing nothing is known gone; after,
	 * a pod neither listing has: two complete listings agree. */
	return !k->prev || has(k->prev, key);
}

/* A listing api_list_pods returned holds every page (a failed page fails
 * the listing) unless it stopped at its page cap. An empty one is more
 * likely a glitch than the end of every pod: it prunes nothing. */
static bool complete(const struct snap *s)
{
	return s->pods.n > 0 &&
	       s->pods.n < (size_t)API_MAX_PAGES * API_PAGE_SIZE;
}

/* Whether the API says the pod `id` is gone: true on 404 or when it shows
 * it DELETING or TERMINATED; false when it shows it live or cannot say. */
static bool confirmed_gone(struct vanished *v, const struct pod *p)
{
	struct pod got;
	int rc = api_get_pod(v->api, p->id, &got);
	if (rc == 0) {
		pod_free(&got);
		struct buf path;
		buf_init(&path);
		buf_printf(&path, "/pods/%s", p->dir ? p->dir : p->id);
		plog("list", path.data,
		     "a pods listing lacked pod %s, which GET /pods/{id} "
		     "still shows: kept, with its jobs",
		     p->id);
		buf_free(&path);
	}
	return rc == 1 || rc == -ENOENT;
}

/* Judges listing `s` against `prev` (may be NULL): asks, prunes. */
static void judge(struct vanished *v, const struct snap *s,
		  const struct snap *prev)
{
	struct keep k = {.now = s, .prev = prev};
	size_t asked = 0;
	for (size_t i = 0; prev && i < snap_n_pods(prev); i++) {
		const struct pod *p = snap_pod_at(prev, i);
		/* A placeholder (id = its name) is settled by the cache. */
		if (!p->id || has(s, p->id) ||
		    (p->name && !strcmp(p->name, p->id)))
			continue;
		if (asked++ >= VANISHED_GETS_MAX)
			break;
		if (confirmed_gone(v, p)) {
			k.gone =
			    xrealloc(k.gone, (k.n_gone + 1) * sizeof *k.gone);
			k.gone[k.n_gone++] = xstrdup(p->id);
		}
	}
	if (v->jobs)
		jobs_prune(v->jobs, kept, &k);
	for (size_t i = 0; i < k.n_gone; i++)
		free(k.gone[i]);
	free(k.gone);
}

void vanished_listing(void *arg, const struct snap *s)
{
	struct vanished *v = arg;
	if (s->kind != SNAP_PODS || !complete(s))
		return;
	struct snap *cur = snap_ref((struct snap *)s);
	pthread_mutex_lock(&v->mu);
	if (v->busy) {
		snap_put(v->queued);
		v->queued = cur;
		pthread_mutex_unlock(&v->mu);
		return;
	}
	v->busy = true;
	while (cur) {
		struct snap *prev = v->prev ? snap_ref(v->prev) : NULL;
		pthread_mutex_unlock(&v->mu);
		judge(v, cur, prev);
		pthread_mutex_lock(&v->mu);
		struct snap *old = v->prev;
		v->prev = cur; /* the reference moves */
		cur = v->queued;
		v->queued = NULL;
		pthread_mutex_unlock(&v->mu);
		snap_put(old);
		snap_put(prev);
		pthread_mutex_lock(&v->mu);
	}
	v->busy = false;
	pthread_mutex_unlock(&v->mu);
}
