/* podwait.c — see podwait.h. One entry per pod waited on, kept while it
 * has waiters; each answer is numbered, and an entry records the number
 * of the last one that asked about it, with the pod's status item as
 * JSON (or its error). The mutex guards memory only: the call is made
 * with it released, `polling` keeping a second one off the wire. */
#include "podwait.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	char *id;
	int waiters;
	unsigned long answer; /* the last answer that asked about it; 0 */
	int err;	      /* that answer's errno, 0 when it came */
	char *json;	      /* the pod's item in it; NULL: not named */
};

struct podwait {
	struct api *api;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct entry *v;
	size_t n;
	bool polling;
	double last_poll;  /* when the last call ended */
	double not_before; /* the budget's word: no call before this */
	unsigned long answers;
};

struct podwait *podwait_new(struct api *api)
{
	struct podwait *w = xcalloc(1, sizeof *w);
	w->api = api;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &a);
	pthread_condattr_destroy(&a);
	w->last_poll = -INFINITY;
	return w;
}

void podwait_free(struct podwait *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n; i++) {
		free(w->v[i].id);
		free(w->v[i].json);
	}
	free(w->v);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}

static struct entry *find(struct podwait *w, const char *id)
{
	for (size_t i = 0; i < w->n; i++)
		if (!strcmp(w->v[i].id, id))
			return &w->v[i];
	return NULL;
}

/* One GET /pods/status for every pod waited on; called with w->mu held,
 * which it releases for the call. */
static void poll_status(struct podwait *w)
{
	w->polling = true;
	size_t k = 0;
	char **ids = xcalloc(w->n + 1, sizeof *ids);
	for (size_t i = 0; i < w->n; i++)
		ids[k++] = xstrdup(w->v[i].id);
	pthread_mutex_unlock(&w->mu);

	struct pod_list l;
	int rc = api_pods_status(w->api, (const char *const *)ids, k, &l);

	pthread_mutex_lock(&w->mu);
	w->polling = false;
	w->last_poll = now_monotonic();
	w->answers++;
	for (size_t i = 0; i < k; i++) {
		struct entry *e = find(w, ids[i]);
		if (e) {
			const struct pod *p = NULL;
			for (size_t j = 0; !rc && j < l.n && !p; j++)
				if (!strcmp(l.v[j].id, ids[i]))
					p = &l.v[j];
			e->answer = w->answers;
			e->err = -rc;
			free(e->json);
			e->json = p && p->json ? xstrdup(p->json) : NULL;
		}
		free(ids[i]);
	}
	free(ids);
	if (!rc)
		pod_list_free(&l);
	pthread_cond_broadcast(&w->cv);
}

int podwait_next(struct podwait *w, const char *id, unsigned long *seen,
		 double deadline, bool (*interrupted)(void *arg), void *arg,
		 struct pod *out)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&w->mu);
	struct entry *e = find(w, id);
	if (!e) {
		w->v = xrealloc(w->v, (w->n + 1) * sizeof *w->v);
		e = &w->v[w->n++];
		*e = (struct entry){.id = xstrdup(id)};
	}
	e->waiters++;
	int rc;
	for (;;) {
		e = find(w, id); /* the array may have moved */
		if (e->answer > *seen) {
			*seen = e->answer;
			rc = -e->err;
			if (!rc && e->json) {
				json_object *o = json_tokener_parse(e->json);
				if (pod_parse(o, false, out) != 0)
					pod_free(out);
				json_object_put(o);
			}
			break;
		}
		double now = now_monotonic();
		if (interrupted && interrupted(arg)) {
			rc = -EINTR;
			break;
		}
		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		double due = w->last_poll + PODWAIT_EVERY;
		if (w->not_before > due)
			due = w->not_before;
		if (!w->polling && now >= due) {
			double until;
			if (budget_pace(w->api->budget, 1, &until) ==
			    BUDGET_OK) {
				poll_status(w);
				continue;
			}
			w->not_before = due = until;
		}
		double until = now + 0.1; /* to notice interruption */
		if (!w->polling && due < until)
			until = due;
		if (deadline < until)
			until = deadline;
		struct timespec ts = {
		    (time_t)until,
		    (long)((until - (double)(time_t)until) * 1e9)};
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	}
	e = find(w, id);
	if (--e->waiters == 0) {
		free(e->id);
		free(e->json);
		*e = w->v[--w->n];
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}
